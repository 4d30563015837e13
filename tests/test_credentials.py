"""
Tests for L{securetcp.materials} through the endpoints that use it: the
table of bad inputs, each of which must fail when the endpoint is parsed or
constructed, with a message naming the problem (and the file, if any).

Every row is tried both as an endpoint string (C{securessl:}/C{mtls:}, parsed
by Twisted's L{serverFromString} against a L{MemoryReactor}) and, where it is
not about the string itself, through L{securetcp.serverEndpoint}.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from twisted.internet.endpoints import TCP4ServerEndpoint, clientFromString, serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from securetcp import serverEndpoint
from securetcp.config import POLICY_OPTIONS, buildPolicy
from securetcp.endpoints import SecureServerEndpoint
from securetcp.errors import CredentialError, EndpointArgumentError, PolicyError
from securetcp.materials import Materials, loadCredentials
from securetcp.policy import KeyStrength, LegacyProfileWarning, TLSPolicy

from ._pki import TestPKI, sharedPKI
from ._pki import cachedKey as _key

PASSPHRASE = b"correct horse battery staple"
P12_PASSPHRASE = b"p12-secret"
ENV_VAR = "SECURETCP_TEST_KEY_PASSPHRASE"


def _addCredentialFiles(pki: TestPKI) -> None:
    """
    Add the files these tests need to C{pki}: an encrypted key, PKCS#12
    bundles, files that hold no PEM, a weak RSA key and a P-224 key.
    """
    pki.issue("encrypted", "localhost", dns=["localhost"], server=True,
              passphrase=PASSPHRASE)
    pki.issue("weak-rsa", "localhost", dns=["localhost"], server=True,
              keyKind="rsa", bits=1024)
    pki.issue("p224", "localhost", dns=["localhost"], server=True, bits=224)
    with open(pki.path("server.pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    key: Any = _key("ec", 256, "server")
    pki.write("server.p12", pkcs12.serialize_key_and_certificates(
        b"server", key, cert, [pki.ca],
        serialization.BestAvailableEncryption(P12_PASSPHRASE)))
    pki.write("server-plain.p12", pkcs12.serialize_key_and_certificates(
        b"server", key, cert, None, serialization.NoEncryption()))
    pki.write("cert-only.p12", pkcs12.serialize_key_and_certificates(
        b"server", None, cert, None, serialization.NoEncryption()))
    pki.write("notpem.txt", b"this is not a certificate\n")
    pki.write("passphrase.txt", PASSPHRASE + b"\nsecond line ignored\n")
    os.makedirs(pki.path("empty-dir"))


def _pki() -> TestPKI:
    """
    One test PKI for the whole module, made on first use, with the extra
    files these tests need.
    """
    return sharedPKI("credentials", _addCredentialFiles)


def _p(name: str) -> str:
    return _pki().path(name)


def _esc(text: str) -> str:
    """
    Escape a value for an endpoint string.
    """
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _server(*args: str) -> str:
    """
    A working C{securessl:} server string plus C{args}.
    """
    return ":".join(["securessl:0", f"certKey={_esc(_p('server.pem'))}",
                     f"privateKey={_esc(_p('server.key'))}", *args])


class BadInputMixin:
    """
    Assertions for the bad input table.
    """

    def assertStringFails(self, description: str, argument: Optional[str], *words: str,
                          path: Optional[str] = None, client: bool = False
                          ) -> EndpointArgumentError:
        """
        Parsing C{description} raises L{EndpointArgumentError} naming
        C{argument}, with C{words} in its message and, for a file problem,
        the file's C{path}.
        """
        parse = clientFromString if client else serverFromString
        error = self.assertRaises(  # type: ignore[attr-defined]
            EndpointArgumentError, parse, MemoryReactor(), description)
        self.assertIsInstance(error, PolicyError)  # type: ignore[attr-defined]
        self.assertIsInstance(error, ValueError)  # type: ignore[attr-defined]
        self.assertEqual(error.argument, argument)  # type: ignore[attr-defined]
        for word in words:
            self.assertIn(word, str(error))  # type: ignore[attr-defined]
        if path is not None:
            self.assertEqual(error.path, path)  # type: ignore[attr-defined]
            self.assertIn(path, str(error))  # type: ignore[attr-defined]
            self.assertIsInstance(error.cause, CredentialError)  # type: ignore[attr-defined]
        return error

    def assertPolicyFails(self, policy: TLSPolicy, field: str, *words: str,
                          path: Optional[str] = None, mutual: bool = False) -> PolicyError:
        """
        L{serverEndpoint} with C{policy} raises a L{PolicyError} naming
        C{field}.
        """
        reactor = MemoryReactor()
        error = self.assertRaises(  # type: ignore[attr-defined]
            PolicyError, serverEndpoint, reactor, TCP4ServerEndpoint(reactor, 0), policy,
            mutual=mutual)
        self.assertEqual(error.field, field)  # type: ignore[attr-defined]
        for word in words:
            self.assertIn(word, str(error))  # type: ignore[attr-defined]
        if path is not None:
            self.assertIsInstance(error, CredentialError)  # type: ignore[attr-defined]
            self.assertEqual(error.path, path)  # type: ignore[attr-defined]
        return error


def _policy(**options: Any) -> TLSPolicy:
    return buildPolicy(**options)


def _cert(name: str) -> x509.Certificate:
    with open(_p(name), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


class WorkingInputTests(SynchronousTestCase):
    """
    The good rows of the table: these build an endpoint.
    """

    def assertKeyOf(self, materials: Materials, name: str) -> None:
        """
        The key of C{materials} is the private key of certificate C{name}.
        """
        assert materials.key is not None
        self.assertEqual(materials.key.public_key(), _cert(name).public_key())

    def test_plain(self) -> None:
        """
        A certificate and its unencrypted key make a server endpoint, from a
        string and from Python.
        """
        endpoint = serverFromString(MemoryReactor(), _server())
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        self.assertTrue(IStreamServerEndpoint.providedBy(endpoint))
        reactor = MemoryReactor()
        serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0),
                       _policy(certKey=_p("server.pem"), privateKey=_p("server.key")))

    def test_bundle(self) -> None:
        """
        As with C{ssl:}, C{privateKey} alone may hold both key and
        certificate: the certificate is loaded as the whole chain, with the
        key that matches it.
        """
        endpoint = serverFromString(MemoryReactor(),
                                    f"securessl:0:privateKey={_esc(_p('server-bundle.pem'))}")
        materials = endpoint.creator.materials
        self.assertEqual(materials.chain, (_cert("server.pem"),))
        self.assertKeyOf(materials, "server.pem")

    def test_encryptedKeyEnvPassphrase(self) -> None:
        """
        An encrypted key opens with C{passphrase=env:VAR}.
        """
        os.environ[ENV_VAR] = PASSPHRASE.decode()
        self.addCleanup(os.environ.pop, ENV_VAR, None)
        endpoint = serverFromString(
            MemoryReactor(),
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:"
            f"privateKey={_esc(_p('encrypted.key'))}:passphrase=env\\:{ENV_VAR}")
        self.assertIsInstance(endpoint, SecureServerEndpoint)

    def test_encryptedKeyFilePassphrase(self) -> None:
        """
        An encrypted key opens with C{passphrase=file:PATH}, which reads the
        file's first line: the key loaded is the certificate's.
        """
        endpoint = serverFromString(
            MemoryReactor(),
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:"
            f"privateKey={_esc(_p('encrypted.key'))}:"
            f"passphrase={_esc('file:' + _p('passphrase.txt'))}")
        materials = endpoint.creator.materials
        self.assertEqual(materials.chain, (_cert("encrypted.pem"),))
        self.assertKeyOf(materials, "encrypted.pem")

    def test_pkcs12(self) -> None:
        """
        An encrypted PKCS#12 bundle (with its CA) opens with its passphrase;
        its whole chain is loaded.
        """
        endpoint = serverFromString(
            MemoryReactor(),
            f"securessl:0:pkcs12={_esc(_p('server.p12'))}:"
            f"passphrase=pass\\:{P12_PASSPHRASE.decode()}")
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        loaded = loadCredentials(endpoint.policy.credentials, KeyStrength())
        self.assertEqual(len(loaded.chain), 2)
        self.assertEqual(loaded.chain[1], _pki().ca)

    def test_pkcs12Unencrypted(self) -> None:
        """
        An unencrypted PKCS#12 bundle needs no passphrase: its certificate
        (the whole chain: the bundle holds no CA) and key are loaded, and
        the C{caCerts} of the C{mtls:} server are its trust anchors.
        """
        endpoint = serverFromString(MemoryReactor(),
                                    f"mtls:0:pkcs12={_esc(_p('server-plain.p12'))}:"
                                    f"caCerts={_esc(_p('ca.pem'))}")
        materials = endpoint.creator.materials
        self.assertEqual(materials.chain, (_cert("server.pem"),))
        self.assertKeyOf(materials, "server.pem")
        self.assertEqual(materials.trust, (_pki().ca,))

    def test_weakKeyUnderLegacy(self) -> None:
        """
        The legacy profile accepts a 1024-bit RSA key (and says it is
        insecure).
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            serverFromString(MemoryReactor(),
                             f"securessl:0:profile=legacy:certKey={_esc(_p('weak-rsa.pem'))}:"
                             f"privateKey={_esc(_p('weak-rsa.key'))}")
        self.assertTrue(any(issubclass(w.category, LegacyProfileWarning) for w in caught))


class FileProblemTests(SynchronousTestCase, BadInputMixin):
    """
    Bad files: each fails at parse time naming the argument and the file.
    """

    def test_missingCertificate(self) -> None:
        """
        A certificate file that does not exist.
        """
        missing = _p("nope.pem")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(missing)}:privateKey={_esc(_p('server.key'))}",
            "certKey", "does not exist", path=missing)
        self.assertPolicyFails(_policy(certKey=missing, privateKey=_p("server.key")),
                               "certKey", "does not exist", path=missing)

    def test_missingKey(self) -> None:
        """
        A key file that does not exist.
        """
        missing = _p("nope.key")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('server.pem'))}:privateKey={_esc(missing)}",
            "privateKey", "does not exist", path=missing)
        self.assertPolicyFails(_policy(certKey=_p("server.pem"), privateKey=missing),
                               "privateKey", "does not exist", path=missing)

    def test_defaultKeyMissing(self) -> None:
        """
        Without C{certKey} or C{privateKey}, C{server.pem} in the current
        directory is used, as C{ssl:} does; when it is not there, the error
        says so and names the directory.
        """
        error = self.assertStringFails("securessl:0", "privateKey", "does not exist",
                                       os.getcwd(), path="server.pem")
        self.assertIn("relative paths", str(error))

    def test_missingCA(self) -> None:
        """
        A CA file that does not exist.
        """
        missing = _p("nope-ca.pem")
        self.assertStringFails(_server(f"caCerts={_esc(missing)}").replace(
            "securessl:", "mtls:", 1), "caCerts", "does not exist", path=missing)

    def test_missingExtraChain(self) -> None:
        """
        An intermediate-chain file that does not exist.
        """
        missing = _p("nope-chain.pem")
        self.assertStringFails(_server(f"extraCertChain={_esc(missing)}"),
                               "extraCertChain", "does not exist", path=missing)

    def test_missingCADir(self) -> None:
        """
        A CA directory that does not exist, and one that holds no CA.
        """
        missing = _p("nope-dir")
        self.assertStringFails(_server(f"caCertsDir={_esc(missing)}"),
                               "caCertsDir", "does not exist", path=missing)
        empty = _p("empty-dir")
        self.assertStringFails(_server(f"caCertsDir={_esc(empty)}"),
                               "caCertsDir", "holds no CA certificate", path=empty)

    def test_directoryAsCertificate(self) -> None:
        """
        A directory given as a certificate file (as root can read any file,
        unreadable files are tested this way).
        """
        directory = _pki().directory
        self.assertStringFails(
            f"securessl:0:certKey={_esc(directory)}:privateKey={_esc(_p('server.key'))}",
            "certKey", "is a directory", path=directory)
        self.assertPolicyFails(_policy(certKey=directory, privateKey=_p("server.key")),
                               "certKey", "is a directory", path=directory)

    def test_directoryAsKey(self) -> None:
        """
        A directory given as a key file.
        """
        directory = _pki().directory
        self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('server.pem'))}:privateKey={_esc(directory)}",
            "privateKey", "is a directory", path=directory)

    def test_noPEMCertificate(self) -> None:
        """
        A certificate file that holds no certificate.
        """
        path = _p("notpem.txt")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(path)}:privateKey={_esc(_p('server.key'))}",
            "certKey", "holds no readable certificate", path=path)

    def test_noPEMKey(self) -> None:
        """
        A key file that holds no key (here: a certificate).
        """
        path = _p("server.pem")
        self.assertStringFails(f"securessl:0:certKey={_esc(path)}:privateKey={_esc(path)}",
                               "privateKey", "holds no PEM private key", path=path)

    def test_noPEMCA(self) -> None:
        """
        A CA file that holds no certificate.
        """
        path = _p("notpem.txt")
        self.assertStringFails(_server(f"caCerts={_esc(path)}"), "caCerts",
                               "holds no readable certificate", path=path)

    def test_keyDoesNotMatch(self) -> None:
        """
        A key that is not the certificate's.
        """
        key = _p("client.key")
        error = self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('server.pem'))}:privateKey={_esc(key)}",
            "privateKey", "does not match", _p("server.pem"), path=key)
        self.assertIn("generated with this certificate", error.fix)
        self.assertPolicyFails(_policy(certKey=_p("server.pem"), privateKey=key),
                               "privateKey", "does not match", path=key)

    def test_encryptedKeyWithoutPassphrase(self) -> None:
        """
        An encrypted key without a passphrase.
        """
        key = _p("encrypted.key")
        error = self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:privateKey={_esc(key)}",
            "privateKey", "encrypted", "no passphrase", path=key)
        self.assertIn("passphrase=env:", error.fix)
        self.assertPolicyFails(_policy(certKey=_p("encrypted.pem"), privateKey=key),
                               "privateKey", "no passphrase", path=key)

    def test_encryptedKeyWrongPassphrase(self) -> None:
        """
        An encrypted key with the wrong passphrase; the passphrase itself is
        not shown.
        """
        key = _p("encrypted.key")
        error = self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:privateKey={_esc(key)}:"
            "passphrase=pass\\:hunter2", "privateKey", "wrong passphrase", path=key)
        self.assertNotIn("hunter2", str(error))

    def test_passphraseVariableUnset(self) -> None:
        """
        C{passphrase=env:VAR} with the variable not set.
        """
        os.environ.pop(ENV_VAR, None)
        self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:"
            f"privateKey={_esc(_p('encrypted.key'))}:passphrase=env\\:{ENV_VAR}",
            "passphrase", ENV_VAR, "is not set")

    def test_passphraseFileMissing(self) -> None:
        """
        C{passphrase=file:PATH} with no such file.
        """
        missing = _p("nope-passphrase.txt")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(_p('encrypted.pem'))}:"
            f"privateKey={_esc(_p('encrypted.key'))}:passphrase={_esc('file:' + missing)}",
            "passphrase", "does not exist", path=missing)

    def test_badPassphraseSource(self) -> None:
        """
        A passphrase that names no source is refused without showing it.
        """
        error = self.assertStringFails(_server("passphrase=hunter2"), "passphrase",
                                       "unknown passphrase source")
        self.assertNotIn("hunter2", str(error))

    def test_pkcs12WrongPassphrase(self) -> None:
        """
        A PKCS#12 bundle with the wrong (or no) passphrase.
        """
        bundle = _p("server.p12")
        self.assertStringFails(f"securessl:0:pkcs12={_esc(bundle)}:passphrase=pass\\:nope",
                               "pkcs12", "cannot open the PKCS#12 bundle", path=bundle)
        self.assertStringFails(f"securessl:0:pkcs12={_esc(bundle)}",
                               "pkcs12", "cannot open", path=bundle)

    def test_pkcs12NotABundle(self) -> None:
        """
        A PEM file given as a PKCS#12 bundle.
        """
        path = _p("server.pem")
        self.assertStringFails(f"securessl:0:pkcs12={_esc(path)}", "pkcs12",
                               "not PKCS#12", path=path)

    def test_pkcs12WithoutKey(self) -> None:
        """
        A PKCS#12 bundle that holds a certificate but no key.
        """
        path = _p("cert-only.p12")
        self.assertStringFails(f"securessl:0:pkcs12={_esc(path)}", "pkcs12",
                               "lacks a certificate or a key", path=path)

    def test_pkcs12WithCertKey(self) -> None:
        """
        C{pkcs12} together with C{certKey}.
        """
        self.assertStringFails(_server(f"pkcs12={_esc(_p('server.p12'))}"), "pkcs12",
                               "cannot be combined")

    def test_expiredCertificate(self) -> None:
        """
        Our own certificate has expired.
        """
        cert = _p("server-expired.pem")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(cert)}:privateKey={_esc(_p('server-expired.key'))}",
            "certKey", "expired on", path=cert)
        self.assertPolicyFails(_policy(certKey=cert, privateKey=_p("server-expired.key")),
                               "certKey", "expired", path=cert)

    def test_weakRSAKey(self) -> None:
        """
        A 1024-bit RSA key is too weak under the default profile.
        """
        cert = _p("weak-rsa.pem")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(cert)}:privateKey={_esc(_p('weak-rsa.key'))}",
            "certKey", "own key too weak", "1024", path=cert)
        self.assertPolicyFails(_policy(certKey=cert, privateKey=_p("weak-rsa.key")),
                               "certKey", "too weak", path=cert)

    def test_weakECKey(self) -> None:
        """
        A P-224 key is too weak under the default profile.
        """
        cert = _p("p224.pem")
        self.assertStringFails(
            f"securessl:0:certKey={_esc(cert)}:privateKey={_esc(_p('p224.key'))}",
            "certKey", "own key too weak", "224", path=cert)

    def test_badDHParameters(self) -> None:
        """
        A file that holds no DH parameters.
        """
        self.assertStringFails(_server(f"dhParameters={_esc(_p('server.pem'))}"),
                               "dhParameters", "not a PEM DH parameters file")


class PolicyProblemTests(SynchronousTestCase, BadInputMixin):
    """
    Bad policy values in endpoint strings.
    """

    def test_unknownProfile(self) -> None:
        """
        An unknown profile.
        """
        error = self.assertStringFails(_server("profile=nist-800-52r3"), "profile",
                                       "unknown profile", "nist-800-52r2")
        self.assertEqual(error.value, "nist-800-52r3")

    def test_unknownCipher(self) -> None:
        """
        An unknown TLS 1.2 cipher name.
        """
        error = self.assertStringFails(_server("ciphers=ECDHE-RSA-AES128-GCM-SHA256,RC4-MD5"),
                                       "ciphers", "RC4-MD5", "unknown TLS 1.2 cipher")
        self.assertEqual(error.value, "RC4-MD5")

    def test_unknownSuite(self) -> None:
        """
        An unknown TLS 1.3 suite name.
        """
        self.assertStringFails(_server("ciphersuites=TLS_AES_512_GCM_SHA512"),
                               "ciphersuites", "TLS_AES_512_GCM_SHA512", "unknown TLS 1.3")

    def test_unknownGroup(self) -> None:
        """
        An unknown key-exchange group.
        """
        self.assertStringFails(_server("groups=P-192"), "groups", "P-192")

    def test_minAboveMax(self) -> None:
        """
        C{minVersion} above C{maxVersion}.
        """
        self.assertStringFails(_server("minVersion=TLSv1.3", "maxVersion=TLSv1.2"),
                               "minVersion", "above maxVersion")

    def test_unknownVersions(self) -> None:
        """
        An unknown version names the argument it was given as.
        """
        self.assertStringFails(_server("minVersion=TLSv9"), "minVersion", "TLSv9")
        self.assertStringFails(_server("maxVersion=TLSv9"), "maxVersion", "TLSv9")

    def test_oldVersionOutsideLegacy(self) -> None:
        """
        TLS 1.0 outside the legacy profile.
        """
        self.assertStringFails(_server("minVersion=TLSv1"), "minVersion", "legacy")

    def test_mtlsWithoutCA(self) -> None:
        """
        An C{mtls:} server without a CA to verify clients with.
        """
        error = self.assertStringFails(_server().replace("securessl:", "mtls:", 1),
                                       "caCerts", "needs the CA")
        self.assertIn("caCerts=", error.fix)
        self.assertPolicyFails(_policy(certKey=_p("server.pem"), privateKey=_p("server.key")),
                               "caCerts", mutual=True)

    def test_clientAuthWithoutCA(self) -> None:
        """
        A C{securessl:} server asking for client certificates without a CA.
        """
        self.assertStringFails(_server("clientAuth=required"), "caCerts")

    def test_malformedAllowList(self) -> None:
        """
        A malformed allow-list rule.
        """
        for rule in ["ward3", "dns\\:bad..name", "ip\\:10.0.0.300", "host\\:x",
                     "uri\\:hospital.example/ward3"]:
            self.assertStringFails(_server(f"caCerts={_esc(_p('ca.pem'))}",
                                           f"allowPeers={rule}").replace(
                "securessl:", "mtls:", 1), "allowPeers")

    def test_malformedPin(self) -> None:
        """
        A malformed pin.
        """
        self.assertStringFails(_server("pinSPKI=sha256/short"), "pinSPKI",
                               "not a SHA-256 SPKI pin")

    def test_badTimeout(self) -> None:
        """
        A handshake timeout that is not a number of seconds up to 600.
        """
        for value in ("soon", "0", "601", "nan"):
            self.assertStringFails(_server(f"handshakeTimeout={value}"), "handshakeTimeout")

    def test_serverHostname(self) -> None:
        """
        A hostname on a server.
        """
        self.assertStringFails(_server("hostname=lab.example"), "hostname",
                               "only clients")

    def test_clientClientAuth(self) -> None:
        """
        A client asking for client certificates.
        """
        self.assertStringFails("securessl:localhost:443:clientAuth=required", "clientAuth",
                               client=True)

    def test_mtlsClientWithoutCertificate(self) -> None:
        """
        An C{mtls:} client without its own certificate.
        """
        self.assertStringFails(f"mtls:localhost:443:caCerts={_esc(_p('ca.pem'))}",
                               "certKey", "must present a certificate", client=True)


class StringProblemTests(SynchronousTestCase, BadInputMixin):
    """
    Malformed endpoint strings.
    """

    def test_unknownArgument(self) -> None:
        """
        An unknown argument is named, and the error lists the valid ones.
        """
        error = self.assertStringFails(_server("certkey=x.pem"), "certkey",
                                       "unknown securessl: argument", "certKey", "caCerts")
        for name in ("port", "interface", "backlog", "endpoint", "policy"):
            self.assertIn(name, error.valid)
        self.assertTrue(set(POLICY_OPTIONS) <= set(error.valid))

    def test_unknownClientArgument(self) -> None:
        """
        Clients list their own valid arguments.
        """
        error = self.assertStringFails("mtls:localhost:443:interface=lo", "interface",
                                       "unknown mtls: argument", client=True)
        self.assertIn("host", error.valid)
        self.assertIn("bindAddress", error.valid)

    def test_emptyValue(self) -> None:
        """
        An argument with an empty value.
        """
        self.assertStringFails(_server("caCerts="), "caCerts", "empty value")

    def test_tooManyPositionals(self) -> None:
        """
        More positional arguments than the prefix takes; the fix shows how
        to escape a colon.
        """
        error = self.assertStringFails(_server().replace(":0:", ":0:1:", 1), None,
                                       "too many positional arguments")
        self.assertIn("\\:", error.fix)
        self.assertStringFails("securessl:localhost:443:444", None, "too many", client=True)

    def test_unescapedColonInValue(self) -> None:
        """
        An unescaped colon in a value (a Windows path) shows up as too many
        positional arguments.
        """
        self.assertStringFails(_server("caCerts=C:/ca.pem").replace(":0:", ":", 1) + ":0",
                               None, "too many positional arguments")

    def test_noPort(self) -> None:
        """
        A server string without a port.
        """
        self.assertStringFails(_server().replace(":0:", ":", 1), "port", "no port")
        self.assertStringFails("securessl:localhost", "port", "no port", client=True)
        self.assertStringFails("securessl:port=443", "host", "no host", client=True)

    def test_badPort(self) -> None:
        """
        A port that is not an integer from 0 to 65535 (1 to 65535 for a
        client).
        """
        for port in ("http", "65536", "-1", "4.5"):
            self.assertStringFails(_server().replace(":0:", f":{port}:", 1), "port")
        self.assertStringFails("securessl:localhost:0", "port", "between 1 and 65535",
                               client=True)

    def test_portTwice(self) -> None:
        """
        A port given both positionally and as C{port=}.
        """
        self.assertStringFails(_server("port=443"), "port", "given twice")
        self.assertStringFails("securessl:localhost:443:port=444", "port", "given twice",
                               client=True)

    def test_badBacklog(self) -> None:
        """
        A backlog that is not a positive integer.
        """
        self.assertStringFails(_server("backlog=0"), "backlog")
        self.assertStringFails(_server("backlog=lots"), "backlog", "not an integer")

    def test_endpointWithPort(self) -> None:
        """
        C{endpoint=} combined with a port or interface.
        """
        self.assertStringFails(_server("endpoint=tcp\\:444"), "endpoint",
                               "cannot be combined")
        self.assertStringFails(
            _server("endpoint=tcp\\:444", "interface=127.0.0.1").replace(":0:", ":", 1),
            "endpoint", "cannot be combined")
        self.assertStringFails("securessl:localhost:443:endpoint=tcp\\:h\\:1", "endpoint",
                               "cannot be combined", client=True)

    def test_badInnerEndpoint(self) -> None:
        """
        An inner endpoint string that Twisted cannot parse, whatever Twisted
        raises for it.
        """
        for inner in ["bogus\\:1", "tcp\\:notaport", "systemd\\:domain=INET\\:index=99",
                      "ssl\\:0\\:privateKey=/nonexistent.pem",
                      # the inner string ends in a lone backslash
                      "tcp\\:0\\\\"]:
            self.assertStringFails(_server(f"endpoint={inner}").replace(":0:", ":", 1),
                                   "endpoint", "invalid inner endpoint string")

    def test_innerEndpoint(self) -> None:
        """
        A valid inner endpoint string is used instead of a port.
        """
        endpoint = serverFromString(MemoryReactor(),
                                    _server("endpoint=tcp6\\:0").replace(":0:", ":", 1))
        self.assertIsInstance(endpoint, SecureServerEndpoint)

    def test_badClientHost(self) -> None:
        """
        A host that is neither a DNS name nor an IP address (an empty label,
        a space) is refused when the string is parsed.
        """
        self.assertStringFails("securessl:a..b:443", "host", "not a DNS name or IP address",
                               client=True)
        self.assertStringFails("securessl:a b:443", "host", "not a DNS name or IP address",
                               client=True)

    def test_badClientTimeout(self) -> None:
        """
        A connect timeout that is not a positive number.
        """
        for value in ("soon", "0", "-3"):
            self.assertStringFails(f"securessl:localhost:443:timeout={value}", "timeout",
                                   client=True)
