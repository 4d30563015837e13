"""
Tests for L{securetcp.config}: flat options, TOML policy files and endpoint
arguments all become the same L{TLSPolicy}, and every problem in a policy
file is a L{PolicyFileError} naming the file and the key.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional

from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from securetcp._catalogue import TLSVersion
from securetcp._parsers import CLIENT_ARGUMENTS, SERVER_ARGUMENTS
from securetcp.config import POLICY_OPTIONS, buildPolicy, loadPolicyFile, policyFromOptions
from securetcp.errors import EndpointArgumentError, PolicyError, PolicyFileError
from securetcp.policy import (
    ClientAuth,
    Credentials,
    Groups,
    LegacyProfileWarning,
    Role,
    TLSPolicy,
    TrustAnchors,
)

from ._pki import TestPKI, sharedPKI


def _pki() -> TestPKI:
    return sharedPKI("config")

PIN = "sha256/" + "A" * 43 + "="


class BuildPolicyTests(SynchronousTestCase):
    """
    Tests for L{buildPolicy} and L{policyFromOptions}.
    """

    def test_default(self) -> None:
        """
        Without options, the policy is the default profile's.
        """
        self.assertEqual(buildPolicy(), TLSPolicy.fromProfile())

    def test_profile(self) -> None:
        """
        C{profile} picks the starting profile.
        """
        self.assertEqual(buildPolicy(profile="mozilla-modern"),
                         TLSPolicy.fromProfile("mozilla-modern"))

    def test_everyOption(self) -> None:
        """
        Every option sets its part of the policy.
        """
        policy = buildPolicy(
            name="hl7-inbound", minVersion="TLSv1.2", maxVersion="1.3",
            ciphers="ECDHE-ECDSA-AES128-GCM-SHA256,ECDHE-RSA-AES128-GCM-SHA256",
            ciphersuites="TLS_AES_256_GCM_SHA384",
            groups="P-384,?SecP384r1MLKEM1024", caCerts="ca.pem", caCertsDir="cas",
            systemCAs="yes", certKey="server.pem", privateKey="server.key",
            extraCertChain="chain.pem", passphrase="env:KEY_PASS", dhParameters="dh.pem",
            clientAuth="optional", hostname="lab.example",
            allowPeers="dns:*.ward3.example,uri:spiffe://hospital.example/ward3/*",
            pinSPKI=PIN, handshakeTimeout="2.5", alpn="mllp",
        )
        self.assertEqual(policy.name, "hl7-inbound")
        self.assertEqual((policy.versions.minimum, policy.versions.maximum),
                         (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3))
        self.assertEqual(policy.ciphers.tls12, ("ECDHE-ECDSA-AES128-GCM-SHA256",
                                                "ECDHE-RSA-AES128-GCM-SHA256"))
        self.assertEqual(policy.ciphers.tls13, ("TLS_AES_256_GCM_SHA384",))
        self.assertEqual(policy.groups, Groups(["secp384r1"], ["SecP384r1MLKEM1024"]))
        self.assertEqual(policy.trust, TrustAnchors("ca.pem", "cas", True))
        self.assertEqual(policy.credentials, Credentials(
            certificate="server.pem", privateKey="server.key", extraChain="chain.pem",
            passphrase="env:KEY_PASS", dhParameters="dh.pem"))
        self.assertIs(policy.peer.clientAuth, ClientAuth.OPTIONAL)
        self.assertEqual(policy.peer.hostname, "lab.example")
        self.assertEqual([str(p) for p in policy.peer.allow],
                         ["dns:*.ward3.example", "uri:spiffe://hospital.example/ward3/*"])
        self.assertEqual(len(policy.peer.pins), 1)
        self.assertEqual(policy.handshakeTimeout, 2.5)
        self.assertEqual(policy.alpn, ("mllp",))

    def test_optionalGroups(self) -> None:
        """
        In C{groups}, a C{?} prefix makes a group optional; groups may be
        separated by commas or colons.
        """
        self.assertEqual(buildPolicy(groups="?X25519MLKEM768:X25519, P-256").groups,
                         Groups(["X25519", "secp256r1"], ["X25519MLKEM768"]))
        self.assertEqual(buildPolicy(groups=["?SecP256r1MLKEM768", "P-256"]).groups,
                         Groups(["secp256r1"], ["SecP256r1MLKEM768"]))

    def test_listValues(self) -> None:
        """
        List options accept Python lists as well as comma-separated text.
        """
        policy = buildPolicy(ciphersuites=["TLS_AES_128_GCM_SHA256"],
                             allowPeers=["cn:PUMP-0042", "ip:10.0.0.0/8"],
                             alpn=["h2", "http/1.1"])
        self.assertEqual(policy.ciphers.tls13, ("TLS_AES_128_GCM_SHA256",))
        self.assertEqual([str(p) for p in policy.peer.allow], ["cn:PUMP-0042", "ip:10.0.0.0/8"])
        self.assertEqual(policy.alpn, ("h2", "http/1.1"))

    def test_systemCAs(self) -> None:
        """
        C{systemCAs} takes the usual spellings of true and false, and refuses
        anything else naming the option.
        """
        for text in ("true", "1", "YES", "on", True):
            self.assertTrue(buildPolicy(systemCAs=text).trust.system)
        for text in ("false", "0", "no", "Off", False):
            self.assertFalse(buildPolicy(systemCAs=text).trust.system)
        error = self.assertRaises(PolicyError, buildPolicy, systemCAs="maybe")
        self.assertEqual(error.field, "systemCAs")

    def test_unknownOption(self) -> None:
        """
        An unknown option is refused naming it, and the fix lists the valid
        options.
        """
        error = self.assertRaises(PolicyError, buildPolicy, certkey="server.pem")
        self.assertEqual((error.field, error.value), ("certkey", "server.pem"))
        for name in POLICY_OPTIONS:
            self.assertIn(name, error.fix)

    def test_invalidValue(self) -> None:
        """
        An invalid value is refused naming the option it was given as.
        """
        for option, value in [("minVersion", "TLSv9"), ("maxVersion", "TLSv9"),
                              ("profile", "nist"), ("clientAuth", "always"),
                              ("ciphers", "RC4-MD5"), ("ciphersuites", "TLS_NULL"),
                              ("groups", "P-192"), ("groups", ""),
                              ("hostname", "a b"), ("allowPeers", "x"),
                              ("pinSPKI", "x"), ("handshakeTimeout", "0"),
                              ("alpn", ["x" * 300])]:
            error = self.assertRaises(PolicyError, buildPolicy, **{option: value})
            self.assertEqual(error.field, option, (option, value))

    def test_base(self) -> None:
        """
        Options apply on top of a base policy, which keeps everything they
        do not mention.
        """
        base = buildPolicy(name="inbound", certKey="server.pem", caCerts="ca.pem",
                           profile="mozilla-intermediate")
        policy = policyFromOptions({"clientAuth": "required"}, base)
        self.assertIs(policy.peer.clientAuth, ClientAuth.REQUIRED)
        self.assertEqual((policy.name, policy.profile, policy.credentials, policy.trust),
                         (base.name, base.profile, base.credentials, base.trust))

    def test_baseNewProfile(self) -> None:
        """
        A C{profile} option over a base takes the new profile's content but
        keeps the base's name, trust, credentials and peer rules.
        """
        base = buildPolicy(name="inbound", certKey="server.pem", caCerts="ca.pem",
                           allowPeers="cn:PUMP-0042", profile="mozilla-intermediate")
        policy = policyFromOptions({"profile": "nist-800-52r2"}, base)
        self.assertEqual(policy.ciphers, TLSPolicy().ciphers)
        self.assertEqual((policy.name, policy.credentials, policy.trust, policy.peer),
                         (base.name, base.credentials, base.trust, base.peer))

    def test_pkcs12ReplacesCertKey(self) -> None:
        """
        Over a base with a certificate and key, C{pkcs12} replaces them, and
        the other way round.
        """
        base = buildPolicy(certKey="server.pem", privateKey="server.key")
        bundled = policyFromOptions({"pkcs12": "server.p12"}, base)
        self.assertEqual(bundled.credentials, Credentials(pkcs12="server.p12"))
        back = policyFromOptions({"certKey": "other.pem"}, bundled)
        self.assertEqual(back.credentials, Credentials(certificate="other.pem"))

    def test_pkcs12AndCertKey(self) -> None:
        """
        Giving C{pkcs12} together with C{certKey} is refused.
        """
        error = self.assertRaises(PolicyError, buildPolicy, pkcs12="s.p12", certKey="s.pem")
        self.assertEqual(error.field, "pkcs12")

    def test_baseDir(self) -> None:
        """
        With a C{baseDir}, relative paths (and C{file:} passphrases) are
        resolved against it; absolute paths and other sources are kept.
        """
        base = os.path.abspath("somewhere")
        policy = policyFromOptions(
            {"certKey": "server.pem", "privateKey": os.path.abspath("k.pem"),
             "caCerts": "cas/ca.pem", "passphrase": "file:pass.txt"},
            baseDir=base)
        self.assertEqual(policy.credentials.certificate, os.path.join(base, "server.pem"))
        self.assertEqual(policy.credentials.privateKey, os.path.abspath("k.pem"))
        self.assertEqual(policy.trust.caFile, os.path.join(base, "cas", "ca.pem"))
        self.assertEqual(policy.credentials.passphrase,
                         "file:" + os.path.join(base, "pass.txt"))
        policy = policyFromOptions({"certKey": "s.pem", "passphrase": "pass:x.txt"},
                                   baseDir=base)
        self.assertEqual(policy.credentials.passphrase, "pass:x.txt")

    def test_noBaseDir(self) -> None:
        """
        Without a C{baseDir}, relative paths are kept as written (and are
        then taken from the current directory).
        """
        self.assertEqual(buildPolicy(certKey="server.pem").credentials.certificate,
                         "server.pem")

    def test_legacyWarns(self) -> None:
        """
        Choosing the legacy profile through options warns too.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            policy = buildPolicy(profile="legacy")
        self.assertTrue(policy.legacy)
        self.assertTrue(any(issubclass(w.category, LegacyProfileWarning) for w in caught))


class PolicyFileTests(SynchronousTestCase):
    """
    Tests for L{loadPolicyFile}.
    """

    def writeFile(self, text: str, name: str = "policy.toml",
                  directory: Optional[str] = None) -> str:
        directory = directory or self.mktemp()
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def assertFileError(self, path: str, key: Optional[str], *words: str) -> PolicyFileError:
        error = self.assertRaises(PolicyFileError, loadPolicyFile, path)
        self.assertIsInstance(error, PolicyError)
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.path, path)
        self.assertEqual(error.key, key)
        self.assertTrue(str(error).startswith(path), str(error))
        if key is not None:
            self.assertIn(repr(key), str(error))
        for word in words:
            self.assertIn(word, str(error))
        self.assertTrue(error.fix)
        return error

    def test_docExample(self) -> None:
        """
        The example in the module docstring loads, with paths taken from the
        file's directory.
        """
        path = self.writeFile(
            'name = "hl7-inbound"\n'
            'profile = "nist-800-52r2"\n'
            'certKey = "server.pem"\n'
            'privateKey = "server.key"\n'
            'caCerts = "devices-ca.pem"\n'
            'clientAuth = "required"\n'
            'allowPeers = ["uri:spiffe://hospital.example/ward3/*"]\n')
        directory = os.path.dirname(os.path.abspath(path))
        policy = loadPolicyFile(path)
        self.assertEqual(policy.name, "hl7-inbound")
        self.assertEqual(policy.credentials.certificate, os.path.join(directory, "server.pem"))
        self.assertEqual(policy.credentials.privateKey, os.path.join(directory, "server.key"))
        self.assertEqual(policy.trust.caFile, os.path.join(directory, "devices-ca.pem"))
        self.assertIs(policy.peer.clientAuth, ClientAuth.REQUIRED)
        self.assertEqual([str(p) for p in policy.peer.allow],
                         ["uri:spiffe://hospital.example/ward3/*"])

    def test_relativeToFileNotCwd(self) -> None:
        """
        Relative paths are resolved from the policy file's directory even
        when the file is named relatively from elsewhere; C{file:}
        passphrases too.
        """
        directory = os.path.join(self.mktemp(), "etc", "securetcp")
        path = self.writeFile('certKey = "certs/server.pem"\n'
                              'caCertsDir = "../cas"\n'
                              'passphrase = "file:secret.txt"\n', directory=directory)
        policy = loadPolicyFile(os.path.relpath(path))
        absolute = os.path.abspath(directory)
        self.assertEqual(policy.credentials.certificate,
                         os.path.join(absolute, "certs", "server.pem"))
        self.assertEqual(policy.trust.caDir, os.path.join(absolute, "..", "cas"))
        self.assertEqual(policy.credentials.passphrase,
                         "file:" + os.path.join(absolute, "secret.txt"))

    def test_absolutePathKept(self) -> None:
        """
        Absolute paths in a policy file are used as written.
        """
        path = self.writeFile('caCerts = "/etc/ssl/devices-ca.pem"\n')
        self.assertEqual(loadPolicyFile(path).trust.caFile, "/etc/ssl/devices-ca.pem")

    def test_lists(self) -> None:
        """
        List options may be TOML arrays, and C{?} marks optional groups.
        """
        path = self.writeFile(
            'ciphers = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]\n'
            'ciphersuites = ["TLS_AES_256_GCM_SHA384"]\n'
            'groups = ["?SecP384r1MLKEM1024", "P-384"]\n'
            'allowPeers = ["cn:PUMP-0042", "dns:*.ward3.example"]\n'
            f'pinSPKI = ["{PIN}"]\n'
            'alpn = ["mllp"]\n')
        policy = loadPolicyFile(path)
        self.assertEqual(policy.ciphers.tls12, ("ECDHE-ECDSA-AES256-GCM-SHA384",
                                                "ECDHE-RSA-AES256-GCM-SHA384"))
        self.assertEqual(policy.ciphers.tls13, ("TLS_AES_256_GCM_SHA384",))
        self.assertEqual(policy.groups, Groups(["secp384r1"], ["SecP384r1MLKEM1024"]))
        self.assertEqual(len(policy.peer.allow), 2)
        self.assertEqual(len(policy.peer.pins), 1)
        self.assertEqual(policy.alpn, ("mllp",))

    def test_scalars(self) -> None:
        """
        Numbers and booleans are accepted where they make sense.
        """
        path = self.writeFile('handshakeTimeout = 5\nsystemCAs = true\nminVersion = 1.3\n')
        policy = loadPolicyFile(path)
        self.assertEqual(policy.handshakeTimeout, 5.0)
        self.assertTrue(policy.trust.system)
        self.assertEqual(policy.versions.minimum, TLSVersion.TLSv1_3)

    def test_sameAsBuildPolicy(self) -> None:
        """
        A policy file and L{buildPolicy} with the same (absolute) values give
        equal policies.
        """
        options = {"name": "x", "profile": "mozilla-intermediate", "minVersion": "TLSv1.3",
                   "caCerts": "/ca.pem", "clientAuth": "required",
                   "allowPeers": "cn:PUMP-0042", "handshakeTimeout": "3"}
        path = self.writeFile("".join(f'{k} = "{v}"\n' for k, v in options.items()))
        self.assertEqual(loadPolicyFile(path), buildPolicy(**options))

    def test_base(self) -> None:
        """
        A policy file can be applied on top of a base policy.
        """
        path = self.writeFile('clientAuth = "optional"\n')
        base = buildPolicy(name="base", caCerts="/ca.pem")
        policy = loadPolicyFile(path, base)
        self.assertEqual((policy.name, policy.trust.caFile), ("base", "/ca.pem"))
        self.assertIs(policy.peer.clientAuth, ClientAuth.OPTIONAL)

    def test_missingFile(self) -> None:
        """
        A missing policy file is refused naming it.
        """
        path = os.path.abspath(os.path.join(self.mktemp(), "nope.toml"))
        self.assertFileError(path, None, "does not exist")

    def test_directory(self) -> None:
        """
        A directory given as the policy file is refused naming it.
        """
        path = self.mktemp()
        os.makedirs(path)
        self.assertFileError(path, None, "directory")

    def test_badTOML(self) -> None:
        """
        A file that is not TOML is refused naming the file and the position.
        """
        path = self.writeFile('certKey = "server.pem\nclientAuth = required\n')
        self.assertFileError(path, None, "not valid TOML", "line 1")

    def test_notUTF8(self) -> None:
        """
        A file that is not UTF-8 is refused as a L{PolicyFileError}, not a
        bare L{UnicodeDecodeError}.
        """
        path = self.writeFile("")
        with open(path, "wb") as f:
            f.write(b'name = "caf\xe9"\n')
        self.assertFileError(path, None, "UTF-8")

    def test_nulInPath(self) -> None:
        """
        A path with a NUL character is refused as a L{PolicyFileError}.
        """
        self.assertFileError("policy\x00.toml", None)

    def test_unknownKey(self) -> None:
        """
        An unknown key is refused naming the file and the key, and the fix
        lists the valid keys.
        """
        path = self.writeFile('name = "x"\ncertkey = "server.pem"\n')
        error = self.assertFileError(path, "certkey", "unknown policy option")
        self.assertIn("certKey", error.fix)

    def test_table(self) -> None:
        """
        A TOML table is refused naming its key: policy files are flat.
        """
        path = self.writeFile('name = "x"\n[tls]\nminVersion = "TLSv1.3"\n')
        self.assertFileError(path, "tls", "tables are not policy options")

    def test_inlineTable(self) -> None:
        """
        An inline table is refused too.
        """
        path = self.writeFile('certKey = { file = "server.pem" }\n')
        self.assertFileError(path, "certKey", "tables")

    def test_nonStringListItems(self) -> None:
        """
        List items must be strings.
        """
        path = self.writeFile('ciphers = ["ECDHE-RSA-AES128-GCM-SHA256", 7]\n')
        self.assertFileError(path, "ciphers", "only strings")

    def test_listForSingleValue(self) -> None:
        """
        A list given for a key that takes one value is refused naming the
        key, instead of being turned into a nonsense path.
        """
        path = self.writeFile('certKey = ["server.pem", "other.pem"]\n')
        self.assertFileError(path, "certKey", "not a list")

    def test_unsupportedType(self) -> None:
        """
        TOML values with no meaning in a policy (dates) are refused.
        """
        path = self.writeFile("handshakeTimeout = 1979-05-27T07:32:00Z\n")
        self.assertFileError(path, "handshakeTimeout", "unsupported value type")

    def test_invalidValue(self) -> None:
        """
        An invalid value is refused naming the file, the key and the value.
        """
        for key, value in [("minVersion", "TLSv9"), ("maxVersion", "TLSv9"),
                           ("profile", "nist-800-52r3"), ("clientAuth", "always"),
                           ("groups", "P-192"), ("allowPeers", "ward3")]:
            path = self.writeFile(f'{key} = "{value}"\n')
            self.assertFileError(path, key, repr(value))

    def test_invalidCombination(self) -> None:
        """
        An invalid combination is refused naming the file and the key at
        fault.
        """
        path = self.writeFile('minVersion = "TLSv1.3"\nmaxVersion = "TLSv1.2"\n')
        self.assertFileError(path, "minVersion", "above maxVersion")
        path = self.writeFile('certKey = "a.pem"\npkcs12 = "a.p12"\n')
        self.assertFileError(path, "pkcs12", "cannot be combined")


class NameRuleTests(SynchronousTestCase):
    """
    The policy's C{name} is held to one rule wherever it is written.
    """

    def test_sameEverywhere(self) -> None:
        """
        A name with a right-to-left override, or one of 100 000 characters,
        is refused with the same problem from an endpoint string, a TOML
        policy file (naming the file and the key) and L{buildPolicy}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for bad, toml in [("ward\N{RIGHT-TO-LEFT OVERRIDE}3", "ward\\u202E3"),
                          ("n" * 100_000, "n" * 100_000)]:
            fromPython = self.assertRaises(PolicyError, buildPolicy, name=bad)
            path = os.path.join(directory, "policy.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f'name = "{toml}"\n')
            fromFile = self.assertRaises(PolicyFileError, loadPolicyFile, path)
            fromString = self.assertRaises(EndpointArgumentError, serverFromString,
                                           MemoryReactor(), f"securessl:0:name={bad}")
            self.assertEqual((fromFile.path, fromFile.key), (path, "name"))
            self.assertEqual((fromPython.field, fromString.argument), ("name", "name"))
            self.assertEqual({fromPython.problem, fromFile.problem, fromString.problem},
                             {fromPython.problem})


class EndpointArgumentsTests(SynchronousTestCase):
    """
    Endpoint strings take the same option names, with the same meaning.
    """

    def test_sameNames(self) -> None:
        """
        Every policy option is a valid argument of both endpoint kinds, and
        the endpoints' own arguments do not clash with policy options.
        """
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  "securessl:0:nosuchoption=1")
        self.assertTrue(set(POLICY_OPTIONS) <= set(error.valid))
        self.assertEqual(set(SERVER_ARGUMENTS) & set(POLICY_OPTIONS), set())
        self.assertEqual(set(CLIENT_ARGUMENTS) & set(POLICY_OPTIONS), set())

    def test_sameAsPolicyFile(self) -> None:
        """
        An endpoint string and a policy file saying the same things give the
        same policy; relative paths in the file are taken from its directory.
        """
        pki = _pki()
        options = {"name": "hl7", "profile": "nist-800-52r2", "minVersion": "TLSv1.2",
                   "groups": "?SecP256r1MLKEM768,P-256",
                   "ciphersuites": "TLS_AES_256_GCM_SHA384",
                   "certKey": pki.path("server.pem"), "privateKey": pki.path("server.key"),
                   "caCerts": pki.path("ca.pem"), "allowPeers": "cn:PUMP-0042",
                   "handshakeTimeout": "4"}
        description = "mtls:0:" + ":".join(
            f"{k}={v.replace(':', chr(92) + ':')}" for k, v in options.items())
        endpoint = serverFromString(MemoryReactor(), description)
        fileOptions = dict(options, certKey="server.pem", privateKey="server.key",
                           caCerts="ca.pem")
        path = os.path.join(pki.directory, "policy.toml")
        with open(path, "w") as f:
            f.write("".join(f'{k} = "{v}"\n' for k, v in fileOptions.items()))
        fromFile = loadPolicyFile(path).requireFor(Role.SERVER, mutual=True)
        self.assertEqual(endpoint.policy, fromFile)  # type: ignore[attr-defined]

    def test_policyArgument(self) -> None:
        """
        C{policy=FILE} loads the file, and other arguments override its keys.
        """
        pki = _pki()
        path = os.path.join(pki.directory, "inbound.toml")
        with open(path, "w") as f:
            f.write('name = "inbound"\ncertKey = "server.pem"\nprivateKey = "server.key"\n'
                    'handshakeTimeout = 3\n')
        endpoint = serverFromString(MemoryReactor(),
                                    f"securessl:0:policy={path}:handshakeTimeout=7")
        self.assertEqual(endpoint.policy.name, "inbound")  # type: ignore[attr-defined]
        self.assertEqual(endpoint.policy.handshakeTimeout, 7.0)  # type: ignore[attr-defined]
        self.assertEqual(endpoint.policy.credentials.certificate,  # type: ignore[attr-defined]
                         pki.path("server.pem"))

    def test_policyArgumentBadFile(self) -> None:
        """
        A bad policy file named by C{policy=} surfaces as an
        L{EndpointArgumentError} whose cause names the file.
        """
        path = os.path.abspath(self.mktemp())
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  f"securessl:0:policy={path}")
        self.assertIsInstance(error.cause, PolicyFileError)
        self.assertEqual(error.cause.path, path)  # type: ignore[union-attr]
        self.assertIn(path, str(error.cause))
