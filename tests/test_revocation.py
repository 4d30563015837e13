# -*- test-case-name: tests.test_revocation -*-
"""
Tests for certificate revocation by CRL (L{securetcp.revocation}, the CRL
part of L{securetcp._tls.context} and L{securetcp.gate}, and the C{crl*}
endpoint options).

CRLs are made the way an operator makes them, with C{openssl ca -revoke}
and C{openssl ca -gencrl} against a minimal C{openssl ca} database next to
the test CA; only CRLs the C{openssl} binary will not write (one already
expired) are built with C{cryptography}.

Three kinds of test:

  - loading and checking CRLs, and the endpoint options, with no connection;
  - handshakes in memory (L{tests._iosim}) with a L{Clock}, including live
    reload of the CRL files while connections are up;
  - real peers over loopback: C{openssl s_client} against our C{mtls:}
    server, and our C{securessl:} / C{mtls:} clients against
    C{openssl s_server}.

OCSP and stapling are not implemented and not tested here.
"""

from __future__ import annotations

import datetime
import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.task import Clock
from twisted.logger import Logger, globalLogPublisher
from twisted.test.proto_helpers import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, HandshakeRejected, buildPolicy
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import CredentialError, EndpointArgumentError, PolicyError
from securetcp.policy import Revocation
from securetcp.revocation.crl import CRLSet, crlPaths, loadCRLs, sourcesChanged

from ._crl import CRLAuthority, craftCRL
from ._iosim import connectProtocols
from ._net import escape as _escape
from ._peers import LINE, PROCESS_TIMEOUT, RealPeerMixin
from ._peers import waitUntil as _waitUntil
from ._pki import TestPKI, addIntermediate
from ._pki import sharedPKI as _sharedPKI
from ._programs import needOpenSSL as _needOpenSSL
from ._programs import runOpenSSL as _openssl
from ._recording import AuditRecorder, CollectorFactory, CountingEchoFactory, RecordingFactory

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)


def _readCertificate(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _readCRL(path: str) -> x509.CertificateRevocationList:
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"-----"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def sharedPKI() -> TestPKI:
    """
    One read-only test PKI, with an intermediate CA, for the module's
    in-memory tests (each test keeps its own C{openssl ca} database
    elsewhere).
    """
    return _sharedPKI("revocation", addIntermediate)


def _flipSignatureByte(path: str) -> None:
    """
    Flip the last byte of a DER CRL: inside its signature, so it still
    parses but no longer verifies.
    """
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 0x01
    with open(path, "wb") as f:
        f.write(bytes(data))


class CRLFixture:
    """
    Per test: an C{openssl ca} database for the shared PKI's CA in the
    test's temporary directory, and helpers to publish CRL files.
    """

    pki: TestPKI
    work: str

    def setUpCRLs(self) -> None:
        self.pki = sharedPKI()
        self.work = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(self.work)
        self.authority = CRLAuthority(self.pki, os.path.join(self.work, "ca-db"))
        self._kept: List[Any] = []
        self.addCleanup(self._closeKept)  # type: ignore[attr-defined]

    def _closeKept(self) -> None:
        for f in self._kept:
            f.close()

    def path(self, name: str) -> str:
        return os.path.join(self.work, name)

    def cert(self, name: str) -> x509.Certificate:
        return _readCertificate(self.pki.path(f"{name}.pem"))

    def crl(self, name: str = "crl.pem", revoke: Sequence[str] = (),
            authority: Optional[CRLAuthority] = None, **options: Any) -> str:
        """
        Revoke the PKI's certificates C{revoke} and write the CA's CRL to
        C{name} in the work directory.
        """
        authority = authority or self.authority
        for certificate in revoke:
            authority.revoke(self.pki.path(f"{certificate}.pem"))
        return authority.generate(self.path(name), **options)

    def replace(self, path: str, data: Optional[bytes] = None, source: Optional[str] = None,
                revoke: Sequence[str] = (), authority: Optional[CRLAuthority] = None) -> None:
        """
        Replace the CRL file C{path} atomically, as a CA's publishing job
        does: write a new file next to it (with C{data}, a copy of
        C{source}, or a CRL freshly generated after revoking C{revoke}) and
        C{os.rename} it over the old one.  The old file is kept open so its
        inode cannot be reused: the new file's inode differs.
        """
        new = path + ".new"
        if data is not None:
            with open(new, "wb") as f:
                f.write(data)
        elif source is not None:
            shutil.copyfile(source, new)
        else:
            authority = authority or self.authority
            for certificate in revoke:
                authority.revoke(self.pki.path(f"{certificate}.pem"))
            authority.generate(new)
        if os.path.exists(path):
            self._kept.append(open(path, "rb"))
        before = os.stat(path).st_ino if os.path.exists(path) else None
        os.rename(new, path)
        assert os.stat(path).st_ino != before


# -- 1. loading and checking CRLs; the options ------------------------------


class LoadCRLsTests(CRLFixture, SynchronousTestCase):
    """
    L{loadCRLs} accepts CRLs in PEM and DER, from files and directories,
    and refuses, naming the file, every CRL it cannot trust.
    """

    def setUp(self) -> None:
        self.setUpCRLs()
        self.caCerts = [self.pki.ca]

    def load(self, files: Sequence[str] = (), dirs: Sequence[str] = (),
             caCerts: Optional[List[x509.Certificate]] = None, **kwargs: Any) -> CRLSet:
        return loadCRLs(Revocation(crlFiles=files, crlDirs=dirs),
                        self.caCerts if caCerts is None else caCerts, **kwargs)

    def assertRefused(self, path: str, problem: str, field: str = "crl",
                      **kwargs: Any) -> CredentialError:
        files = [path] if field == "crl" else []
        dirs = [path] if field == "crlDir" else []
        error = self.assertRaises(CredentialError, self.load, files, dirs, **kwargs)
        self.assertEqual((error.field, error.path), (field, path))
        self.assertIn(problem, error.problem)
        self.assertIn(path, str(error))
        return error

    def test_pem(self) -> None:
        """
        A PEM CRL from C{openssl ca -gencrl -crldays 2} loads: the
        certificate it revokes is revoked, another one of the same CA is
        not, and its validity, CRL number and source file are kept.
        """
        path = self.crl(revoke=["client"], days=2)
        crls = self.load([path])
        self.assertEqual(len(crls.crls), 1)
        [crl] = crls.crls
        self.assertEqual(crl.next_update_utc - crl.last_update_utc, 2 * _DAY)
        self.assertTrue(crls.isRevoked(self.cert("client")))
        self.assertFalse(crls.isRevoked(self.cert("client2")))
        self.assertEqual(crls.number(self.pki.ca.subject.public_bytes()), 1)
        self.assertEqual([p for p, _ in crls.sources], [path])
        self.assertEqual(crls.expired, ())

    def test_der(self) -> None:
        """
        A DER CRL (C{openssl crl -outform DER}) loads like its PEM form.
        """
        path = self.crl("crl.der", revoke=["client"], der=True)
        with open(path, "rb") as f:
            self.assertNotIn(b"-----BEGIN", f.read())
        crls = self.load([path])
        self.assertTrue(crls.isRevoked(self.cert("client")))
        self.assertFalse(crls.isRevoked(self.cert("client2")))

    def test_severalPEMInOneFile(self) -> None:
        """
        A PEM file may hold several CRLs (here: the root CA's and the
        intermediate CA's); each is verified against its own issuer and
        every certificate they list is revoked.
        """
        inter = CRLAuthority(self.pki, self.path("inter-db"), ca="intermediate")
        self.crl("root.pem", revoke=["client"])
        self.crl("inter.pem", revoke=["client-inter"], authority=inter)
        with open(self.path("both.pem"), "wb") as f:
            for name in ("root.pem", "inter.pem"):
                with open(self.path(name), "rb") as part:
                    f.write(part.read())
        caCerts = [self.pki.ca, _readCertificate(self.pki.path("intermediate.pem"))]
        crls = self.load([self.path("both.pem")], caCerts=caCerts)
        self.assertEqual(len(crls.crls), 2)
        self.assertTrue(crls.isRevoked(self.cert("client")))
        self.assertTrue(crls.isRevoked(self.cert("client-inter")))
        self.assertFalse(crls.isRevoked(self.cert("client2")))

    def test_crlDir(self) -> None:
        """
        Every file of a C{crlDir} directory is read as CRLs, PEM or DER, in
        name order; dot files are skipped.
        """
        directory = self.path("crls")
        os.makedirs(directory)
        self.crl("crls/a.der", revoke=["client"], der=True)
        self.crl("crls/b.pem", revoke=["client2"])
        with open(os.path.join(directory, ".partial"), "wb") as f:
            f.write(b"not a CRL, and hidden")
        crls = self.load(dirs=[directory])
        self.assertEqual([p for p, _ in crls.sources],
                         [os.path.join(directory, "a.der"), os.path.join(directory, "b.pem")])
        self.assertEqual(crlPaths(Revocation(crlDirs=[directory])),
                         [os.path.join(directory, "a.der"), os.path.join(directory, "b.pem")])
        self.assertTrue(crls.isRevoked(self.cert("client")))
        self.assertTrue(crls.isRevoked(self.cert("client2")))
        self.assertFalse(crls.isRevoked(self.cert("server")))

    def test_unparseable(self) -> None:
        """
        A file that is neither a PEM nor a DER CRL is refused as not a
        readable CRL; so is a PEM certificate given as a CRL, and a PEM CRL
        with a corrupted body.
        """
        garbage = self.path("garbage.crl")
        with open(garbage, "wb") as f:
            f.write(os.urandom(300))
        self.assertRefused(garbage, "is not a readable CRL")
        self.assertRefused(self.pki.path("ca.pem"), "is not a readable CRL")
        broken = self.crl("broken.pem")
        with open(broken) as f:
            lines = f.read().splitlines()
        lines[2] = "A" * len(lines[2])
        with open(broken, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.assertRefused(broken, "is not a readable CRL")

    def test_wrongIssuer(self) -> None:
        """
        A CRL signed by a CA that is not one of the policy's CAs (the other
        CA, through its own C{openssl ca}) is refused, naming that issuer.
        """
        other = CRLAuthority(self.pki, self.path("other-db"), ca="other-ca")
        path = self.crl("other.pem", revoke=["client-other"], authority=other)
        error = self.assertRefused(path, "which is not one of the policy's CAs")
        self.assertIn("untrusted CA", error.problem)

    def test_badSignature(self) -> None:
        """
        A CRL whose signature does not verify against its issuer (one byte of
        the signature flipped) is refused.
        """
        path = self.crl("crl.der", revoke=["client"], der=True)
        _flipSignatureByte(path)
        _readCRL(path)  # it still parses
        self.assertRefused(path, "signature does not verify")

    def test_forgedIssuerName(self) -> None:
        """
        A CRL that names the trusted CA as issuer but is signed with another
        key (the other CA's) is refused: the name alone is not trusted.
        """
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.pki.ca.subject)
            .last_update(_NOW - _DAY).next_update(_NOW + _DAY)
            .sign(self.pki.otherCAKey, hashes.SHA256())  # type: ignore[arg-type]
        )
        path = self.path("forged.pem")
        with open(path, "wb") as f:
            f.write(crl.public_bytes(serialization.Encoding.PEM))
        self.assertRefused(path, "signature does not verify")

    def test_missing(self) -> None:
        """
        A CRL file or directory that does not exist, or a directory given as
        a file and a file as a directory, is refused with a
        L{CredentialError} naming it and the option.
        """
        self.assertRefused(self.path("nope.pem"), "CRL file does not exist")
        self.assertRefused(self.path("nodir"), "CRL directory does not exist", field="crlDir")
        self.assertRefused(self.work, "is not a file")
        self.assertRefused(self.crl(), "is not a directory", field="crlDir")

    def test_expiredHardFailsAtStart(self) -> None:
        """
        Under hard fail an expired CRL is refused when the CRLs are first
        loaded, saying when it expired; a server endpoint whose policy names
        one cannot be created.
        """
        path = self.path("expired.pem")
        with open(path, "wb") as f:
            f.write(craftCRL(self.pki, [self.cert("client")]))
        error = self.assertRefused(path, "expired on", hard=True)
        self.assertIn("revocation=soft", error.fix)
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"), crl=path)
        self.assertEqual(policy.revocation.mode, "hard")
        error = self.assertRaises(CredentialError, SecureServerEndpoint,
                                  Clock(), None, policy, mutual=True)
        self.assertEqual(error.path, path)

    def test_expiredSoftLoads(self) -> None:
        """
        Under soft fail an expired CRL loads, still revokes what it lists,
        and is named in C{expired}; so does a server endpoint.
        """
        path = self.path("expired.pem")
        with open(path, "wb") as f:
            f.write(craftCRL(self.pki, [self.cert("client")]))
        crls = self.load([path], hard=False)
        self.assertTrue(crls.isRevoked(self.cert("client")))
        [description] = crls.expired
        self.assertIn(path, description)
        self.assertIn("expired on", description)
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"), crl=path, revocation="soft")
        endpoint = SecureServerEndpoint(Clock(), None, policy, mutual=True)
        self.assertEqual(len(endpoint.creator.crls.expired), 1)

    def test_lowerNumberRefusedOnReload(self) -> None:
        """
        On reload (with the CRLs in force as C{previous}) a CRL with a lower
        CRL number than the one in force is refused as a replay; an equal
        or higher number is accepted.
        """
        self.authority.setNumber(7)
        old = self.crl("old.pem")
        current = self.load([self.crl("current.pem", revoke=["client"])])
        self.assertEqual(current.number(self.pki.ca.subject.public_bytes()), 8)
        self.assertRefused(old, "has CRL number 7, lower than the 8 in force", previous=current)
        self.assertEqual(len(self.load([old]).crls), 1)  # fine without a predecessor
        newer = self.load([self.crl("newer.pem")], previous=current)
        self.assertEqual(newer.number(self.pki.ca.subject.public_bytes()), 9)

    def test_entry(self) -> None:
        """
        L{CRLSet.entry} gives the revocation reason, by its RFC 5280 name,
        and the revocation time of a revoked certificate, and C{None} for
        one that is not revoked; a revocation without a reason code has a
        C{None} reason.
        """
        self.authority.revoke(self.pki.path("client.pem"), "keyCompromise")
        _openssl("ca", "-config", self.authority.config, "-revoke",
                 self.pki.path("client2.pem"))
        path = self.crl()
        crls = self.load([path])
        revoked = _readCRL(path).get_revoked_certificate_by_serial_number(
            self.cert("client").serial_number)
        assert revoked is not None
        self.assertEqual(crls.entry(self.cert("client")), {
            "revocationReason": "keyCompromise",
            "revocationTime": revoked.revocation_date_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        self.assertIsNone(crls.entry(self.cert("client2"))["revocationReason"])
        self.assertIsNone(crls.entry(self.cert("server")))
        self.assertIsNone(crls.entry(self.cert("client-other")))

    def test_sourcesChanged(self) -> None:
        """
        L{sourcesChanged} is false while the CRL files are untouched, and
        true once one is atomically replaced or removed.
        """
        path = self.crl()
        revocation = Revocation(crlFiles=[path])
        crls = loadCRLs(revocation, self.caCerts)
        self.assertFalse(sourcesChanged(crls, revocation))
        self.replace(path, source=path)
        self.assertTrue(sourcesChanged(crls, revocation))
        os.remove(path)
        self.assertTrue(sourcesChanged(crls, revocation))


class RevocationOptionsTests(CRLFixture, SynchronousTestCase):
    """
    The endpoint-string options C{crl}, C{crlDir}, C{revocation},
    C{revocationScope}, C{crlReload} and C{crlEnforceLive}.
    """

    def setUp(self) -> None:
        self.setUpCRLs()

    def server(self, prefix: str = "mtls", withCA: bool = True, **options: str) -> Any:
        arguments = {"certKey": self.pki.path("server.pem"),
                     "privateKey": self.pki.path("server.key")}
        if withCA:
            arguments["caCerts"] = self.pki.path("ca.pem")
        arguments.update(options)
        return serverFromString(MemoryReactor(), f"{prefix}:0:interface=127.0.0.1:" + ":".join(
            f"{k}={_escape(v)}" for k, v in arguments.items()))

    def test_optionsMapOntoPolicy(self) -> None:
        """
        C{crl=a.pem,b.pem}, C{crlDir=}, C{revocation=soft},
        C{revocationScope=chain}, C{crlReload=5} and C{crlEnforceLive=true}
        become the policy's L{Revocation}, and the CRLs are loaded when the
        endpoint is created.
        """
        a = self.crl("a.pem", revoke=["client"])
        b = self.crl("b.pem", revoke=["client2"], der=True)
        directory = self.path("crls")
        os.makedirs(directory)
        self.crl("crls/c.pem")
        endpoint = self.server(crl=f"{a},{b}", crlDir=directory, revocation="soft",
                               revocationScope="chain", crlReload="5", crlEnforceLive="true")
        self.assertEqual(endpoint.policy.revocation, Revocation(
            crlFiles=(a, b), crlDirs=(directory,), mode="soft", scope="chain",
            reloadInterval=5.0, enforceOnLive=True))
        self.assertEqual(len(endpoint.creator.crls.crls), 3)
        self.assertTrue(endpoint.creator.crls.isRevoked(self.cert("client")))
        self.assertTrue(endpoint.creator.crls.isRevoked(self.cert("client2")))

    def test_defaults(self) -> None:
        """
        With only C{crl=}, revocation is hard, of the leaf, reloaded every
        60 seconds, and does not close live connections; without it,
        revocation is off and no CRLs are loaded.
        """
        endpoint = self.server(crl=self.crl())
        self.assertEqual(endpoint.policy.revocation,
                         Revocation(crlFiles=(self.path("crl.pem"),)))
        self.assertEqual((endpoint.policy.revocation.mode, endpoint.policy.revocation.scope,
                          endpoint.policy.revocation.reloadInterval,
                          endpoint.policy.revocation.enforceOnLive),
                         ("hard", "leaf", 60.0, False))
        plain = self.server()
        self.assertFalse(plain.policy.revocation.enabled)
        self.assertIsNone(plain.creator.crls)

    def test_crlWithoutCA(self) -> None:
        """
        CRLs need a CA to verify them: an C{mtls:} server with C{crl=} but no
        C{caCerts} fails when parsed (it names the missing C{caCerts}); so
        does a C{securessl:} server (naming C{crl}) and an C{mtls:} client,
        whose CRL cannot be verified without one.
        """
        crl = self.crl()
        error = self.assertRaises(EndpointArgumentError, self.server, withCA=False, crl=crl)
        self.assertEqual(error.argument, "caCerts")
        error = self.assertRaises(EndpointArgumentError, self.server, "securessl",
                                  withCA=False, crl=crl)
        self.assertEqual(error.argument, "crl")
        self.assertIn("no CA is configured", error.problem)
        description = ("mtls:host=127.0.0.1:port=6661:"
                       f"certKey={_escape(self.pki.path('client.pem'))}:"
                       f"privateKey={_escape(self.pki.path('client.key'))}:crl={_escape(crl)}")
        error = self.assertRaises(EndpointArgumentError, clientFromString,
                                  MemoryReactor(), description)
        self.assertEqual((error.argument, error.path), ("crl", crl))

    def test_badValues(self) -> None:
        """
        Invalid values of the revocation options are refused when the string
        is parsed, with an L{EndpointArgumentError} naming the argument.
        """
        crl = self.crl()
        for argument, value, problem in [
            ("revocation", "maybe", "unknown value"),
            ("revocationScope", "tree", "unknown value"),
            ("crlReload", "-1", "between 0 (off) and 86400"),
            ("crlReload", "soon", "not a number"),
            ("crlEnforceLive", "perhaps", "not a boolean"),
        ]:
            error = self.assertRaises(EndpointArgumentError, self.server,
                                      crl=crl, **{argument: value})
            self.assertEqual((error.argument, error.value), (argument, value))
            self.assertIn(problem, error.problem)
            self.assertIn(argument, str(error))

    def test_badCRLFileNamed(self) -> None:
        """
        A CRL file the endpoint cannot use is reported at parse time as an
        L{EndpointArgumentError} for C{crl} whose C{path} and C{cause} name
        the file.
        """
        garbage = self.path("garbage.pem")
        with open(garbage, "wb") as f:
            f.write(b"-----BEGIN X509 CRL-----\nnonsense\n-----END X509 CRL-----\n")
        error = self.assertRaises(EndpointArgumentError, self.server, crl=garbage)
        self.assertEqual((error.argument, error.path), ("crl", garbage))
        self.assertIsInstance(error.cause, CredentialError)

    def test_policyFunctionsValidate(self) -> None:
        """
        L{buildPolicy} applies the same validation: C{revocation=maybe} and
        C{crlReload=-1} raise L{PolicyError} naming the option.
        """
        for argument, value in [("revocation", "maybe"), ("crlReload", -1)]:
            error = self.assertRaises(PolicyError, buildPolicy, **{argument: value})
            self.assertEqual(error.field, argument)


# -- 2. handshakes in memory ------------------------------------------------


def _direct(f: Any, *args: Any, **kwargs: Any) -> Any:
    """
    A C{runInThread} that calls C{f} right away, so a reload is synchronous.
    """
    return f(*args, **kwargs)


class InMemoryTestCase(CRLFixture, SynchronousTestCase):
    """
    Shared fixtures: the PKI and CA database, one L{Clock}, the audit records
    in C{self.records}, and in-memory connections of securetcp clients to
    one wrapped server factory.
    """

    def setUp(self) -> None:
        self.setUpCRLs()
        self.clock = Clock()
        self.clientOutcomes: List[Any] = []
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                           observer=self.events.append))

    @property
    def records(self) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events]

    def serverRecords(self, event: Optional[str] = None) -> List[Dict[str, Any]]:
        return [r for r in self.records if r.get("role") == "server"
                and (event is None or r["event"] == event)]

    def serverEndpoint(self, **options: Any) -> SecureServerEndpoint:
        settings: Dict[str, Any] = dict(certKey=self.pki.path("server.pem"),
                                        privateKey=self.pki.path("server.key"),
                                        caCerts=self.pki.path("ca.pem"))
        settings.update(options)
        return SecureServerEndpoint(self.clock, None, buildPolicy(**settings),
                                    mutual=True, clock=self.clock, emitter=self.emitter,
                                    runInThread=_direct)

    def serve(self, endpoint: SecureServerEndpoint) -> Tuple[Any, RecordingFactory]:
        """
        Wrap an application factory with C{endpoint} and start it as a
        listening port would (which starts the CRL watcher).
        """
        app = RecordingFactory(echo=True)
        tls = endpoint.wrapFactory(app)
        tls.doStart()
        self.addCleanup(tls.doStop)
        return tls, app

    def connect(self, serverTLS: Any, client: str) -> Tuple[Any, Any, Any]:
        """
        Connect a securetcp C{mtls} client presenting C{client}'s
        certificate to C{serverTLS} in memory and complete the handshake.

        @return: C{(client TLS protocol, server TLS protocol, pump)}
        """
        policy = buildPolicy(caCerts=self.pki.path("ca.pem"),
                             certKey=self.pki.path(f"{client}.pem"),
                             privateKey=self.pki.path(f"{client}.key"))
        endpoint = SecureClientEndpoint(self.clock, None, policy, hostname="localhost",
                                        mutual=True, clock=self.clock, emitter=self.emitter)
        clientTLS, gate = endpoint.wrapFactory(RecordingFactory())
        # keep how the client's connect() would have ended (and consume a
        # HandshakeRejected, which is not this module's subject)
        self.clientOutcomes.append(gate.whenReady)
        gate.whenReady.addErrback(lambda f: f.value)
        return connectProtocols(serverTLS, clientTLS, self.clock)

    def outcome(self, serverTLS: Any, client: str) -> Dict[str, Any]:
        """
        Connect C{client} and return the server's audit record of it
        (C{connection.accepted} or C{handshake.rejected}).
        """
        before = len(self.serverRecords())
        self.connect(serverTLS, client)
        [record] = [r for r in self.serverRecords()[before:]
                    if r["event"] in ("connection.accepted", "handshake.rejected")]
        return record

    def assertRejected(self, record: Dict[str, Any], reason: str) -> None:
        self.assertEqual((record["event"], record.get("reason")), ("handshake.rejected", reason),
                         record)

    def assertAccepted(self, record: Dict[str, Any]) -> None:
        self.assertEqual(record["event"], "connection.accepted", record)


class HandshakeTests(InMemoryTestCase):
    """
    A server with CRLs rejects revoked clients, with the CRL entry in the
    audit record, and accepts the others; hard and soft fail differ when
    revocation status is unknown.
    """

    def revokedAndGood(self, version: str) -> None:
        crl = self.crl(revoke=["client"])
        tls, app = self.serve(self.serverEndpoint(crl=crl, minVersion=version,
                                                  maxVersion=version))
        record = self.outcome(tls, "client")
        self.assertRejected(record, "revoked")
        self.assertEqual(record["version"], version)
        self.assertIn("certificate revoked", record["detail"])
        self.assertEqual(record["revocationReason"], "keyCompromise")
        entry = _readCRL(crl).get_revoked_certificate_by_serial_number(
            self.cert("client").serial_number)
        assert entry is not None
        self.assertEqual(record["revocationTime"],
                         entry.revocation_date_utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.assertEqual(record["peerIdentity"]["subject"], self.cert("client").subject
                         .rfc4514_string())
        self.assertEqual(app.built, [])
        told = self.successResultOf(self.clientOutcomes[-1])
        # the client is told, with the certificate_revoked alert: under TLS
        # 1.3 it arrives after the client's side of the handshake, and the
        # client waits for the server's acceptance before connect() fires
        self.assertIsInstance(told, HandshakeRejected)
        self.assertEqual(told.reason, "revoked")
        accepted = self.outcome(tls, "client2")
        self.assertAccepted(accepted)
        self.assertEqual(accepted["version"], version)
        self.assertIsNone(accepted["revocationWarning"])
        self.assertEqual(len(app.built), 1)

    def test_revokedRejectedTLS12(self) -> None:
        """
        Under TLS 1.2 a client whose certificate the CRL revokes is rejected
        with reason C{revoked}, its record carrying C{revocationReason}
        C{keyCompromise} and the C{revocationTime} of the CRL entry, and
        never reaches the application; an unrevoked client is accepted.
        """
        self.revokedAndGood("TLSv1.2")

    def test_revokedRejectedTLS13(self) -> None:
        """
        Under TLS 1.3, where the client finishes its side of the handshake
        before the server judges its certificate, a revoked client is still
        rejected as C{revoked} with the CRL entry (and its connect() fails
        with L{HandshakeRejected} C{revoked}), and an unrevoked one is
        accepted.
        """
        self.revokedAndGood("TLSv1.3")

    def test_derAndDirectory(self) -> None:
        """
        Revocations in a DER CRL given as C{crl=} and in a C{crlDir} are
        both enforced.
        """
        der = self.crl("crl.der", revoke=["client"], der=True)
        directory = self.path("crls")
        os.makedirs(directory)
        other = CRLAuthority(self.pki, self.path("second-db"))
        self.crl("crls/root.pem", revoke=["client2"], authority=other)
        tls, _ = self.serve(self.serverEndpoint(crl=der))
        self.assertRejected(self.outcome(tls, "client"), "revoked")
        tls, _ = self.serve(self.serverEndpoint(crlDir=directory))
        self.assertRejected(self.outcome(tls, "client2"), "revoked")
        self.assertAccepted(self.outcome(tls, "client"))

    def chainScope(self, mode: str, scope: str) -> Dict[str, Any]:
        """
        A server trusting the root and the intermediate CA, with a CRL of
        the intermediate only (none of the root, which would cover the
        intermediate): the outcome for the intermediate's client.
        """
        inter = CRLAuthority(self.pki, self.path("inter-db"), ca="intermediate")
        crl = self.crl("inter.pem", authority=inter)
        tls, _ = self.serve(self.serverEndpoint(caCerts=self.pki.path("trust-inter.pem"),
                                                crl=crl, revocation=mode,
                                                revocationScope=scope))
        return self.outcome(tls, "client-inter")

    def test_chainScopeHard(self) -> None:
        """
        With C{revocationScope=chain} under C{revocation=hard}, a client
        whose intermediate CA no CRL covers is rejected with
        C{revocation_unknown}.
        """
        record = self.chainScope("hard", "chain")
        self.assertRejected(record, "revocation_unknown")
        self.assertIn("depth 1", record["detail"])

    def test_chainScopeSoft(self) -> None:
        """
        Under C{revocation=soft} the same client is accepted and the
        accepted record's C{revocationWarning} says which certificate's
        status is unknown.
        """
        record = self.chainScope("soft", "chain")
        self.assertAccepted(record)
        self.assertIn("revocation status unknown at depth 1", record["revocationWarning"])
        self.assertIn("revocation=soft", record["revocationWarning"])

    def test_leafScopeIgnoresIntermediate(self) -> None:
        """
        With C{revocationScope=leaf} (the default) only the client's own
        certificate is checked, which the intermediate's CRL covers: it is
        accepted under hard fail, without a warning.
        """
        record = self.chainScope("hard", "leaf")
        self.assertAccepted(record)
        self.assertIsNone(record["revocationWarning"])

    def test_chainScopeRevokedIntermediate(self) -> None:
        """
        With C{revocationScope=chain} and a root CRL that revokes the
        intermediate CA, the intermediate's client is rejected as
        C{revoked} even though its own certificate is not revoked; with
        C{leaf} it is accepted.
        """
        inter = CRLAuthority(self.pki, self.path("inter-db"), ca="intermediate")
        crls = [self.crl("inter.pem", authority=inter), self.crl("root.pem",
                                                                revoke=["intermediate"])]
        options = dict(caCerts=self.pki.path("trust-inter.pem"), crl=",".join(crls))
        tls, _ = self.serve(self.serverEndpoint(revocationScope="chain", **options))
        self.assertRejected(self.outcome(tls, "client-inter"), "revoked")
        tls, _ = self.serve(self.serverEndpoint(revocationScope="leaf", **options))
        self.assertAccepted(self.outcome(tls, "client-inter"))

    def expiredCRLServer(self, revoked: Sequence[str] = ()) -> Any:
        path = self.path("expired.pem")
        with open(path, "wb") as f:
            f.write(craftCRL(self.pki, [self.cert(n) for n in revoked]))
        tls, _ = self.serve(self.serverEndpoint(crl=path, revocation="soft"))
        return tls

    def test_expiredCRLSoft(self) -> None:
        """
        Under C{revocation=soft} an expired CRL leaves the revocation status
        unknown: a client it does not list is accepted with a
        C{revocationWarning}.
        """
        record = self.outcome(self.expiredCRLServer(), "client")
        self.assertAccepted(record)
        self.assertIn("revocation status unknown at depth 0 (X509 verify code 12)",
                      record["revocationWarning"])

    def test_expiredCRLSoftStillRevokes(self) -> None:
        """
        Soft fail tolerates an expired CRL, not a revocation: a client the
        expired CRL lists is still rejected as C{revoked}.
        """
        tls = self.expiredCRLServer(revoked=["client"])
        self.assertRejected(self.outcome(tls, "client"), "revoked")
        self.assertAccepted(self.outcome(tls, "client2"))

    def test_noCRLForIssuerHard(self) -> None:
        """
        Under hard fail with C{revocationScope=leaf}, a client of a trusted
        CA for which no CRL is loaded is rejected with C{revocation_unknown};
        under soft fail it is accepted with a warning.
        """
        rootOnly = self.crl("root.pem")
        options = dict(caCerts=self.pki.path("trust-inter.pem"), crl=rootOnly)
        tls, _ = self.serve(self.serverEndpoint(**options))
        self.assertRejected(self.outcome(tls, "client-inter"), "revocation_unknown")
        tls, _ = self.serve(self.serverEndpoint(revocation="soft", **options))
        record = self.outcome(tls, "client-inter")
        self.assertAccepted(record)
        self.assertIn("X509 verify code 3", record["revocationWarning"])


# -- 3. live reload ---------------------------------------------------------


class LiveReloadTests(InMemoryTestCase):
    """
    A running server re-reads its CRL files when they change: a new CRL
    applies to new handshakes (and, with C{crlEnforceLive}, to connected
    peers); a CRL it cannot trust is refused and the previous one stays.
    """

    @property
    def firstCRL(self) -> str:
        """
        A copy of the first CRL published (CRL number 1, revoking nothing).
        """
        return self.path("first-crl.pem")

    def start(self, enforce: bool = False, interval: str = "5") -> None:
        self.crlPath = self.crl()
        shutil.copyfile(self.crlPath, self.firstCRL)
        self.endpoint = self.serverEndpoint(crl=self.crlPath, crlReload=interval,
                                            crlEnforceLive=str(enforce).lower())
        self.tls, self.app = self.serve(self.endpoint)

    def revokeClient(self) -> None:
        """
        Revoke C{client.pem} with C{openssl ca}, publish the new CRL and let
        the periodic check run.
        """
        self.replace(self.crlPath, revoke=["client"])
        self.clock.advance(5)

    def named(self, name: str) -> List[Dict[str, Any]]:
        return [r for r in self.records if r["event"] == name]

    def assertStillInForce(self) -> None:
        """
        The CRL revoking C{client} is (still) the one in force.
        """
        self.assertRejected(self.outcome(self.tls, "client"), "revoked")
        self.assertAccepted(self.outcome(self.tls, "client2"))

    def test_unchangedNothingHappens(self) -> None:
        """
        While the CRL file does not change, the periodic check emits nothing
        and keeps the same CRLs.
        """
        self.start()
        crls = self.endpoint.creator.crls
        self.clock.advance(5 * 3)
        self.assertEqual(self.records, [])
        self.assertIs(self.endpoint.creator.crls, crls)

    def test_reloadRevokesNewHandshakes(self) -> None:
        """
        After the CRL file is atomically replaced by one revoking a
        connected client, the next check (C{crlReload} seconds later)
        emits C{revocation.crl_loaded}; new handshakes by that client are
        rejected as C{revoked}, while without C{crlEnforceLive} its
        existing connection stays up and keeps working.
        """
        self.start(enforce=False)
        client, server, pump = self.connect(self.tls, "client")
        [live] = self.app.built
        self.replace(self.crlPath, revoke=["client"])
        self.clock.advance(4)
        self.assertEqual(self.named("revocation.crl_loaded"), [])
        self.clock.advance(1)
        [loaded] = self.named("revocation.crl_loaded")
        self.assertEqual((loaded["files"], loaded["crls"], loaded["revoked"]),
                         ([self.crlPath], 1, 1))
        self.assertEqual((loaded["role"], loaded["policy"]), ("server", self.endpoint.policy.name))
        self.assertIn("time", loaded)
        self.assertStillInForce()
        self.assertEqual(self.named("connection.revoked"), [])
        client.wrappedProtocol.application.transport.write(b"still here\n")
        pump.flush()
        self.assertIsNone(live.lost)
        self.assertIn(b"still here\n", b"".join(self.app.received))

    def test_enforceLiveClosesRevoked(self) -> None:
        """
        With C{crlEnforceLive=true}, a reload that revokes a connected
        client closes that connection and emits C{connection.revoked} with
        its peer identity; another connected client stays up.
        """
        self.start(enforce=True)
        _, _, revokedPump = self.connect(self.tls, "client")
        _, _, goodPump = self.connect(self.tls, "client2")
        revokedApp, goodApp = self.app.built
        self.revokeClient()
        revokedPump.flush()
        goodPump.flush()
        [event] = self.named("connection.revoked")
        self.assertEqual(event["peerIdentity"]["subject"],
                         self.cert("client").subject.rfc4514_string())
        self.assertIn("revokes", event["detail"])
        self.assertIsNotNone(revokedApp.lost)
        self.assertIsNone(goodApp.lost)
        closed = self.serverRecords("connection.closed")
        self.assertEqual([c["connection"] for c in closed], [event["connection"]])
        self.assertStillInForce()

    def refused(self, problem: str, **replacement: Any) -> Dict[str, Any]:
        """
        With the CRL revoking C{client} in force, replace the file by
        C{replacement}: the reload is refused with an audit event naming
        the file and C{problem}, and the previous CRL stays in force.
        """
        self.start(enforce=True)
        self.revokeClient()
        inForce = self.endpoint.creator.crls
        _, _, pump = self.connect(self.tls, "client2")
        self.replace(self.crlPath, **replacement)
        self.clock.advance(5)
        [event] = self.named("revocation.crl_refused")
        self.assertEqual(event["file"], self.crlPath)
        self.assertIn(problem, event["detail"])
        self.assertEqual(len(self.named("revocation.crl_loaded")), 1)
        self.assertIs(self.endpoint.creator.crls, inForce)
        pump.flush()
        self.assertIsNone(self.app.built[0].lost)  # nothing was enforced
        self.assertStillInForce()
        return event

    def test_refusedGarbage(self) -> None:
        """
        A CRL file replaced by garbage is refused as unreadable.
        """
        self.refused("is not a readable CRL", data=os.urandom(200))

    def test_refusedWrongCA(self) -> None:
        """
        A CRL signed by a CA that is not the policy's is refused.
        """
        other = CRLAuthority(self.pki, self.path("other-db"), ca="other-ca")
        self.refused("not one of the policy's CAs", authority=other)

    def test_refusedBadSignature(self) -> None:
        """
        A CRL whose signature does not verify is refused.
        """
        corrupt = self.path("corrupt.der")
        self.authority.generate(corrupt, der=True)
        _flipSignatureByte(corrupt)
        self.refused("signature does not verify", source=corrupt)

    def test_refusedLowerNumber(self) -> None:
        """
        Replaying the older CRL (lower CRL number, not listing the revoked
        client) is refused, so the revocation cannot be undone by an
        attacker who can write the file.
        """
        event = self.refused("lower than the 2 in force", source=self.firstCRL)
        self.assertIn("CRL number 1", event["detail"])

    def test_recoversAfterRefusal(self) -> None:
        """
        After a refused CRL, a good newer one is loaded at the next check.
        """
        self.refused("is not a readable CRL", data=b"oops")
        self.replace(self.crlPath, revoke=["client2"])
        self.clock.advance(5)
        self.assertEqual(len(self.named("revocation.crl_loaded")), 2)
        self.assertRejected(self.outcome(self.tls, "client2"), "revoked")

    def test_reloadOnDemand(self) -> None:
        """
        With the periodic check off (C{crlReload=0}), a changed CRL is not
        noticed until C{endpoint.reloadCRLs()}, which fires with C{True},
        emits C{revocation.crl_loaded} and (with C{crlEnforceLive})
        disconnects the connected revoked client; a refused CRL makes it
        fire with C{False}.
        """
        self.start(enforce=True, interval="0")
        _, _, pump = self.connect(self.tls, "client")
        self.replace(self.crlPath, revoke=["client"])
        self.clock.advance(3600)
        self.assertEqual(self.named("revocation.crl_loaded"), [])
        self.assertAccepted(self.outcome(self.tls, "client"))

        self.assertIs(self.successResultOf(self.endpoint.reloadCRLs()), True)
        pump.flush()
        self.assertEqual(len(self.named("revocation.crl_loaded")), 1)
        self.assertEqual(len(self.named("connection.revoked")), 2)
        self.assertIsNotNone(self.app.built[0].lost)
        self.assertStillInForce()

        self.replace(self.crlPath, data=b"garbage")
        self.assertIs(self.successResultOf(self.endpoint.reloadCRLs()), False)
        self.assertEqual(len(self.named("revocation.crl_refused")), 1)
        self.assertStillInForce()

    def test_changeDuringReloadLookedAtAgain(self) -> None:
        """
        A change noticed while a reload is still parsing (in a thread) is
        not lost: once that reload is done, the files are checked again and
        the newer CRL is loaded (an inotify event can come at any time).
        """
        from securetcp.revocation.crlreload import CRLWatcher

        self.start()
        held: List[Tuple[Deferred[Any], Any]] = []

        def later(parse: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            held.append((d, parse))
            return d

        watcher = CRLWatcher(self.endpoint.creator, self.clock, self.emitter.emit,
                             runInThread=later)
        self.replace(self.crlPath, revoke=["client"])
        watcher.check()
        first, parse = held[0]
        parsed = parse()  # read while only the first change was published
        self.replace(self.crlPath, revoke=["client2"])
        self.assertIs(self.successResultOf(watcher.check()), False)  # busy
        first.callback(parsed)
        self.clock.advance(0)
        second, parse = held[1]
        second.callback(parse())
        self.assertEqual(len(self.named("revocation.crl_loaded")), 2)
        self.assertRejected(self.outcome(self.tls, "client2"), "revoked")

    def test_hardReloadOfExpiredCRL(self) -> None:
        """
        Under hard fail a reloaded CRL that has already expired is refused,
        as it is at start: C{revocation.crl_refused} names the file and the
        expiry, no C{revocation.crl_loaded} follows, and the CRL in force
        stays, so devices are still accepted (not C{revocation_unknown}).
        """
        self.start()
        self.replace(self.crlPath, data=craftCRL(self.pki, number=99))
        self.clock.advance(5)
        [refused] = self.named("revocation.crl_refused")
        self.assertEqual(refused["file"], self.crlPath)
        self.assertIn("expired on", refused["detail"])
        self.assertIn("revocation=hard", refused["detail"])
        self.assertEqual(self.named("revocation.crl_loaded"), [])
        self.assertEqual(self.named("revocation.crl_expired"), [])
        self.assertAccepted(self.outcome(self.tls, "client2"))

    def test_refusedNumberDoesNotBlockNext(self) -> None:
        """
        After an expired CRL numbered 50 is refused under hard fail, the
        CA's next good CRL (numbered 2, below the refused one) is loaded
        at the next check and revokes what it lists: a refused CRL's number
        never locks the server out of the CA's real CRLs.
        """
        self.start()
        self.replace(self.crlPath, data=craftCRL(self.pki, number=50))
        self.clock.advance(5)
        self.assertEqual(len(self.named("revocation.crl_refused")), 1)
        self.replace(self.crlPath, revoke=["client"])
        self.clock.advance(5)
        self.assertEqual(len(self.named("revocation.crl_refused")), 1)
        self.assertEqual(len(self.named("revocation.crl_loaded")), 1)
        self.assertEqual(self.endpoint.creator.crls.numbers[0][1], 2)
        self.assertStillInForce()

    def test_softReloadOfExpiredCRL(self) -> None:
        """
        Under soft fail an expired CRL is still loaded on reload (with a
        C{revocation.crl_expired} event, mode C{soft}): its revocations
        apply, and peers it does not list are accepted.
        """
        self.crlPath = self.crl()
        self.endpoint = self.serverEndpoint(crl=self.crlPath, crlReload="5", revocation="soft")
        self.tls, self.app = self.serve(self.endpoint)
        self.replace(self.crlPath, data=craftCRL(self.pki, [self.cert("client")], number=99))
        self.clock.advance(5)
        self.assertEqual(len(self.named("revocation.crl_loaded")), 1)
        [expired] = self.named("revocation.crl_expired")
        self.assertEqual(expired["mode"], "soft")
        self.assertStillInForce()

    def test_expiredInPlaceKeptOnReload(self) -> None:
        """
        Under hard fail, a CRL loaded while valid that has since expired
        does not block a reload of the files: a reload that finds it
        unchanged keeps it (its expiry is audited as
        C{revocation.crl_expired}).
        """
        now = datetime.datetime.now(datetime.UTC)
        fresh = self.path("fresh.pem")
        with open(fresh, "wb") as f:
            f.write(craftCRL(self.pki, number=7, lastUpdate=now - datetime.timedelta(days=1),
                             nextUpdate=now + datetime.timedelta(days=30)))
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"), crl=fresh)
        trust = [self.cert("ca")]
        inForce = loadCRLs(policy.revocation, trust, hard=True)
        later = now + datetime.timedelta(days=40)
        self.assertRaises(CredentialError, loadCRLs, policy.revocation, trust,
                          now=later, hard=True)
        again = loadCRLs(policy.revocation, trust, previous=inForce, now=later, hard=True)
        self.assertEqual(len(again.expired), 1)


# -- 4. real peers over loopback -------------------------------------------


class RealPeerRevocationTests(RealPeerMixin, TestCase):
    """
    CRLs against peers nobody here wrote: C{openssl s_client} as the client
    of our C{mtls:} server, and C{openssl s_server} as the server of our
    client endpoints.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()
        self.authority = CRLAuthority(self.pki, os.path.join(self.pki.directory, "ca-db"))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)

    def makeCRL(self, revoke: Sequence[str]) -> str:
        for name in revoke:
            self.authority.revoke(self.pki.path(f"{name}.pem"))
        return self.authority.generate(self.pki.path("crl.pem"), hours=1)

    def description(self, prefix: str, **options: str) -> str:
        return prefix + ":" + ":".join(f"{k}={_escape(v)}" for k, v in options.items())

    def listenString(self, crl: str) -> Any:
        description = self.description(
            "mtls", port="0", interface="127.0.0.1", certKey=self.pki.path("server.pem"),
            privateKey=self.pki.path("server.key"), caCerts=self.pki.path("ca.pem"), crl=crl)
        factory = CountingEchoFactory()
        d = serverFromString(reactor, description).listen(factory)

        def listening(port: Any) -> Tuple[int, CountingEchoFactory]:
            self.addCleanup(port.stopListening)
            return port.getHost().port, factory

        return d.addCallback(listening)

    async def serverMatrix(self, version: str) -> None:
        port, factory = await self.listenString(self.makeCRL(["client"]))
        peer = await self.sClient(port, version, client="client", audit=self.audit)
        self.assertNotEchoed(peer)
        self.assertIn(b"alert certificate revoked", peer.err, peer.describe())
        record = self.audit.events("handshake.rejected")[-1]
        self.assertEqual(record["reason"], "revoked", record)
        self.assertEqual(record["revocationReason"], "keyCompromise")
        self.assertEqual(record["version"], {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version])
        self.assertEqual((factory.built, factory.made), (0, 0))
        peer = await self.sClient(port, version, client="client2", audit=self.audit)
        self.assertEchoed(peer)
        self.assertEqual((factory.built, factory.made), (1, 1))

    def test_serverRejectsRevokedTLS12(self) -> Any:
        """
        Our C{mtls:} server from an endpoint string with C{crl=crl.pem}
        rejects C{openssl s_client -tls1_2} presenting a revoked
        certificate, which is told so by the alert C{certificate revoked},
        audits it as C{revoked}, and echoes for an unrevoked client.
        """
        return Deferred.fromCoroutine(self.serverMatrix("-tls1_2"))

    def test_serverRejectsRevokedTLS13(self) -> Any:
        """
        The same under C{-tls1_3}: the revoked client gets the alert
        C{certificate revoked} after its side of the handshake, never
        reaches the application, and an unrevoked client is echoed.
        """
        return Deferred.fromCoroutine(self.serverMatrix("-tls1_3"))

    def clientDescription(self, prefix: str, port: int, crl: str) -> str:
        options = dict(host="127.0.0.1", port=str(port), caCerts=self.pki.path("ca.pem"),
                       hostname="localhost", crl=crl)
        if prefix == "mtls":
            options.update(certKey=self.pki.path("client.pem"),
                           privateKey=self.pki.path("client.key"))
        return self.description(prefix, **options)

    async def clientOutcome(self, prefix: str, crl: str, *serverArgs: str) -> Any:
        """
        Connect our C{prefix} client with C{crl=crl} to an C{s_server}
        presenting C{server.pem}.

        @return: the connected application protocol, or the
            L{HandshakeRejected}.
        """
        port, _ = await self.sServer("server", *serverArgs)
        factory = CollectorFactory()
        d = clientFromString(reactor, self.clientDescription(prefix, port, crl)).connect(factory)
        timeout = reactor.callLater(PROCESS_TIMEOUT, d.cancel)
        try:
            app = await d
        except HandshakeRejected as e:
            self.assertEqual(factory.protocols, [])
            return e
        finally:
            if timeout.active():
                timeout.cancel()
        return app

    async def clientMatrix(self, prefix: str, *serverArgs: str) -> None:
        # both CRLs are made before any peer runs
        fresh = CRLAuthority(self.pki, os.path.join(self.pki.directory, "fresh-db"))
        notListing = fresh.generate(self.pki.path("fresh-crl.pem"), hours=1)
        revoking = self.makeCRL(["server"])
        error = await self.clientOutcome(prefix, revoking, *serverArgs)
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revoked", error)
        record = self.audit.events("handshake.rejected")[-1]
        self.assertEqual((record["role"], record["reason"], record["revocationReason"]),
                         ("client", "revoked", "keyCompromise"))

        app = await self.clientOutcome(prefix, notListing, *serverArgs)
        self.assertNotIsInstance(app, HandshakeRejected)
        self.assertTrue(app.connected)
        app.transport.write(LINE + b"\n")
        await _waitUntil(lambda: LINE[::-1] in app.data or app.lost.called, PROCESS_TIMEOUT,
                         "the reversed line from s_server")
        self.assertIn(LINE[::-1], app.data)
        app.transport.loseConnection()
        await app.lost

    def test_secureSSLClientRefusesRevokedServer(self) -> Any:
        """
        A C{securessl:} client endpoint with C{crl=} listing C{server.pem}
        refuses C{openssl s_server} presenting it with L{HandshakeRejected}
        reason C{revoked}; with a CRL that does not list it, it connects
        and exchanges data.
        """
        return Deferred.fromCoroutine(self.clientMatrix("securessl", "-rev"))

    def test_mtlsClientRefusesRevokedServer(self) -> Any:
        """
        An C{mtls:} client endpoint with C{crl=} refuses a revoked
        C{openssl s_server} that demands a client certificate, and connects
        (presenting its certificate) when the CRL does not list the server.
        """
        return Deferred.fromCoroutine(self.clientMatrix(
            "mtls", "-rev", "-Verify", "1", "-CAfile", self.pki.path("ca.pem"),
            "-verify_return_error"))
