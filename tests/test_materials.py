"""
Tests for L{securetcp.materials}: what a policy needs from disk is read once,
by L{loadMaterials}, into a frozen L{Materials}; contexts are built from it
with no I/O; a CRL reload replaces only the CRLs (never the certificate or
key); an explicit reload reads everything again and is audited as
C{policy.reloaded}, naming what changed and the certificate fingerprints
before and after.
"""

from __future__ import annotations

import builtins
import datetime
import os
import shutil
from typing import Any, Dict, List, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp._tls.context import ServerConnectionCreator, buildContext
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import CredentialError, PolicyError
from securetcp.materials import Materials, loadMaterials
from securetcp.policy import Role, TLSPolicy

from ._iosim import connectEndpoints
from ._pki import FFDHE2048, TestPKI

_NOW = datetime.datetime.now(datetime.UTC)


def _certificate(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def writeCRL(pki: TestPKI, name: str, revoked: Sequence[x509.Certificate] = (),
             number: int = 1) -> str:
    """
    Write a CRL of the test CA, numbered C{number}, revoking C{revoked}.
    """
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(pki.ca.subject)  # type: ignore[attr-defined]
               .last_update(_NOW - datetime.timedelta(minutes=1))
               .next_update(_NOW + datetime.timedelta(days=7))
               .add_extension(x509.CRLNumber(number), critical=False))
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(certificate.serial_number)
            .revocation_date(_NOW - datetime.timedelta(minutes=1)).build())
    crl = builder.sign(pki.caKey, hashes.SHA256())  # type: ignore[attr-defined]
    path = pki.path(name + ".new")
    with open(path, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))
    os.rename(path, pki.path(name))
    return pki.path(name)


def renewServer(pki: TestPKI, name: str) -> x509.Certificate:
    """
    Issue a new server certificate and key (same names, new key and
    serial) and rename them over C{server.pem} and C{server.key}.
    """
    staging = TestPKI(pki.path("staging"), pki.authority)
    os.makedirs(staging.directory, exist_ok=True)
    certificate = staging.issue(name, "localhost", dns=["localhost"], ips=["127.0.0.1"],
                                server=True)
    os.rename(staging.path(f"{name}.key"), pki.path("server.key"))
    os.rename(staging.path(f"{name}.pem"), pki.path("server.pem"))
    return certificate


class _Reads:
    """
    Counts the files opened (through L{builtins.open}) while installed.
    """

    def __init__(self, test: SynchronousTestCase) -> None:
        self.paths: List[str] = []
        real = builtins.open

        def counting(file: Any, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(os.path.abspath(file) if isinstance(file, str) else file)
            return real(file, *args, **kwargs)

        test.patch(builtins, "open", counting)

    def count(self, path: str) -> int:
        return self.paths.count(os.path.abspath(path))


def _noFiles(test: SynchronousTestCase) -> None:
    """
    Make every attempt to open, stat or list a file fail for the rest of
    C{test}.
    """
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"file access while building a context: {args!r}")

    for module, name in ((builtins, "open"), (os, "stat"), (os, "listdir"),
                         (os.path, "exists"), (os.path, "isfile")):
        test.patch(module, name, refused)


class LoadMaterialsTests(SynchronousTestCase):
    """
    L{loadMaterials} reads what a policy names, once, into a L{Materials}.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.pki.write("dh.pem", FFDHE2048)
        self.crl = writeCRL(self.pki, "crl.pem", [_certificate(self.pki.path("client2.pem"))])

    def fullPolicy(self, **changes: Any) -> TLSPolicy:
        """
        A server policy that names every kind of file.
        """
        options: Dict[str, Any] = dict(
            certKey=self.pki.path("server.pem"), privateKey=self.pki.path("server.key"),
            extraCertChain=self.pki.path("ca.pem"), caCerts=self.pki.path("ca.pem"),
            clientAuth="required", crl=self.crl, dhParameters=self.pki.path("dh.pem"),
            staple=True, ocspResponder="http://ocsp.invalid/")
        options.update(changes)
        return buildPolicy(**options)

    def test_everythingLoaded(self) -> None:
        """
        The materials hold our chain (leaf first) and the key of its leaf,
        the DH parameters, the trust anchors, the CRLs and the issuer our
        stapled OCSP requests name; the fingerprint is the leaf's SHA-256.
        """
        materials = loadMaterials(self.fullPolicy(), Role.SERVER)
        leaf = _certificate(self.pki.path("server.pem"))
        self.assertEqual(materials.chain, (leaf, self.pki.ca))  # type: ignore[attr-defined]
        assert materials.key is not None
        self.assertEqual(materials.key.public_key(), leaf.public_key())
        self.assertEqual(materials.dhParameters, FFDHE2048)
        self.assertEqual(materials.trust, (self.pki.ca,))  # type: ignore[attr-defined]
        assert materials.crls is not None
        self.assertTrue(materials.crls.isRevoked(_certificate(self.pki.path("client2.pem"))))
        self.assertEqual(materials.stapleIssuer, self.pki.ca)  # type: ignore[attr-defined]
        self.assertEqual(materials.fingerprint, _fingerprint(leaf))

    def test_eachFileReadOnce(self) -> None:
        """
        Building a stapling server endpoint reads its certificate, key, CA,
        CRL and DH files exactly once each (the key used to be read three
        times).
        """
        policy = self.fullPolicy()
        reads = _Reads(self)
        SecureServerEndpoint(Clock(), None, policy, mutual=True,  # type: ignore[arg-type]
                             ocspPost=lambda url, body, timeout: None)  # type: ignore[arg-type, return-value]
        for name in ("server.pem", "server.key", "ca.pem", "crl.pem", "dh.pem"):
            self.assertEqual(reads.count(self.pki.path(name)), 1 + (name == "ca.pem"), name)

    def test_clientRole(self) -> None:
        """
        A client's materials have no stapling issuer (only servers staple).
        """
        materials = loadMaterials(self.fullPolicy(
            clientAuth="none", certKey=self.pki.path("client.pem"),
            privateKey=self.pki.path("client.key")), Role.CLIENT)
        self.assertIsNone(materials.stapleIssuer)
        self.assertEqual(len(materials.chain), 2)

    def test_noCredentials(self) -> None:
        """
        A policy without credentials (a one-way client) has an empty chain,
        no key and no fingerprint.
        """
        materials = loadMaterials(buildPolicy(caCerts=self.pki.path("ca.pem")), Role.CLIENT)
        self.assertEqual((materials.chain, materials.key, materials.fingerprint), ((), None, None))
        self.assertEqual(materials.trust, (self.pki.ca,))  # type: ignore[attr-defined]

    def test_stapleNeedsIssuer(self) -> None:
        """
        A stapling server whose issuer is neither in its chain nor among its
        CAs is refused when its materials are loaded, naming C{staple}.
        """
        policy = self.fullPolicy(extraCertChain=None, caCerts=self.pki.path("other-ca.pem"),
                                 crl=None)
        error = self.assertRaises(PolicyError, loadMaterials, policy, Role.SERVER)
        self.assertEqual(error.field, "staple")
        self.assertIn("issued ours", str(error))

    def test_badDHParameters(self) -> None:
        """
        A file that holds no DH parameters is refused when loaded, naming the
        file.
        """
        policy = self.fullPolicy(dhParameters=self.pki.path("server.pem"))
        error = self.assertRaises(CredentialError, loadMaterials, policy, Role.SERVER)
        self.assertEqual((error.field, error.path), ("dhParameters", self.pki.path("server.pem")))
        self.assertIn("not a PEM DH parameters file", str(error))

    def test_unusableDHParameters(self) -> None:
        """
        A DH parameters block that OpenSSL cannot parse is refused when the
        context is built (so an endpoint refuses it when created), naming
        the file.
        """
        path = self.pki.write("bad-dh.pem", b"-----BEGIN DH PARAMETERS-----\nAAAA\n"
                                            b"-----END DH PARAMETERS-----\n")
        policy = self.fullPolicy(dhParameters=path, staple=False, crl=None)
        materials = loadMaterials(policy, Role.SERVER)
        error = self.assertRaises(PolicyError, buildContext, policy, Role.SERVER, materials)
        self.assertEqual((error.field, error.value), ("dhParameters", path))

    def test_withCRLs(self) -> None:
        """
        L{Materials.withCRLs} makes new materials that differ only in their
        CRLs.
        """
        materials = loadMaterials(self.fullPolicy(), Role.SERVER)
        newer = writeCRL(self.pki, "crl.pem", number=2)
        crls = loadMaterials(self.fullPolicy(crl=newer), Role.SERVER).crls
        changed = materials.withCRLs(crls)
        self.assertIs(changed.crls, crls)
        self.assertEqual(attrs.evolve(changed, crls=materials.crls), materials)
        self.assertEqual(changed.changesFrom(materials), ["crls"])

    def test_changesFrom(self) -> None:
        """
        L{Materials.changesFrom} names what differs: a renewed certificate
        and key are C{certificate} and C{key}; new CAs are C{trust}; the
        same files read again change nothing.
        """
        policy = self.fullPolicy()
        before = loadMaterials(policy, Role.SERVER)
        self.assertEqual(loadMaterials(policy, Role.SERVER).changesFrom(before), [])
        renewServer(self.pki, "server-renewed")
        self.assertEqual(loadMaterials(policy, Role.SERVER).changesFrom(before),
                         ["certificate", "key"])
        otherTrust = loadMaterials(self.fullPolicy(caCerts=self.pki.path("other-ca.pem"),
                                                   crl=None, staple=False), Role.SERVER)
        self.assertIn("trust", otherTrust.changesFrom(before))


class BuildContextTests(SynchronousTestCase):
    """
    L{buildContext} is a function of (policy, role, materials): it reads no
    file.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.pki.write("dh.pem", FFDHE2048)
        crl = writeCRL(self.pki, "crl.pem")
        self.policy = buildPolicy(
            certKey=self.pki.path("server.pem"), privateKey=self.pki.path("server.key"),
            extraCertChain=self.pki.path("ca.pem"), caCerts=self.pki.path("ca.pem"),
            clientAuth="required", crl=crl, dhParameters=self.pki.path("dh.pem"),
            alpn="hl7-mllp")

    def test_noFileRead(self) -> None:
        """
        With the files gone and every file access refused, server and client
        contexts are still built from loaded materials, and use them.
        """
        server = loadMaterials(self.policy, Role.SERVER)
        client = loadMaterials(buildPolicy(
            certKey=self.pki.path("client.pem"), privateKey=self.pki.path("client.key"),
            caCerts=self.pki.path("ca.pem"), crl=self.pki.path("crl.pem")), Role.CLIENT)
        self.assertEqual(client.leaf, _certificate(self.pki.path("client.pem")))
        shutil.rmtree(self.pki.directory)
        _noFiles(self)
        context = buildContext(self.policy, Role.SERVER, server)
        buildContext(self.policy, Role.CLIENT, client)
        served = SSL.Connection(context, None).get_certificate()
        assert served is not None
        self.assertEqual(served.to_cryptography(), server.leaf)

    def test_creatorNoFileRead(self) -> None:
        """
        A connection creator built from loaded materials reads no file, nor
        does a context it prepares for new CRLs.
        """
        materials = loadMaterials(self.policy, Role.SERVER)
        shutil.rmtree(self.pki.directory)
        _noFiles(self)
        creator = ServerConnectionCreator(self.policy, materials)
        assert materials.crls is not None
        prepared = creator.prepareCRLs(attrs.evolve(materials.crls))
        creator.install(prepared)
        self.assertIs(creator.context, prepared.context)


class CRLReloadKeepsCertificateTests(SynchronousTestCase):
    """
    In memory: a CRL reload after the certificate and key files were
    replaced keeps serving the old certificate; an explicit reload serves
    the new one and is audited with both fingerprints.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.clock = Clock()
        self.records: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(
            namespace=AUDIT_NAMESPACE,
            observer=lambda event: self.records.append(event["securetcp_audit"])))
        self.crl = writeCRL(self.pki, "crl.pem")
        self.endpoint = SecureServerEndpoint(
            self.clock, None, self.serverPolicy(), mutual=True,  # type: ignore[arg-type]
            clock=self.clock, emitter=self.emitter, runInThread=lambda f: _succeed(f()))
        self.old = _certificate(self.pki.path("server.pem"))

    def serverPolicy(self) -> TLSPolicy:
        return buildPolicy(certKey=self.pki.path("server.pem"),
                           privateKey=self.pki.path("server.key"),
                           caCerts=self.pki.path("ca.pem"), crl=self.crl)

    def events(self, name: str) -> List[Dict[str, Any]]:
        return [r for r in self.records if r["event"] == name]

    def served(self) -> x509.Certificate:
        """
        The certificate a client gets in an in-memory handshake.
        """
        client = SecureClientEndpoint(
            self.clock, None, buildPolicy(  # type: ignore[arg-type]
                caCerts=self.pki.path("ca.pem"), certKey=self.pki.path("client.pem"),
                privateKey=self.pki.path("client.key")),
            hostname="localhost", mutual=True, clock=self.clock, emitter=self.emitter)
        connection = connectEndpoints(self.endpoint, client, Factory.forProtocol(Protocol),
                                      Factory.forProtocol(Protocol), self.clock)
        self.assertIsNotNone(connection.serverGate.application, "the handshake failed")
        certificate = connection.client.getPeerCertificate()
        connection.client.loseConnection()
        connection.pump.flush()
        return certificate.to_cryptography()  # type: ignore[no-any-return]

    def test_crlReloadKeepsCertificate(self) -> None:
        """
        After the certificate and key files are replaced, a CRL reload puts
        the new CRL in force (it revokes a client) and reads neither
        certificate nor key: the old certificate is still served, and the
        only records are C{revocation.crl_loaded}, no C{policy.reloaded}.
        """
        self.assertEqual(self.served(), self.old)
        renewServer(self.pki, "server-renewed")
        writeCRL(self.pki, "crl.pem", [_certificate(self.pki.path("client2.pem"))], number=2)
        reads = _Reads(self)
        self.assertIs(self.successResultOf(self.endpoint.reloadCRLs()), True)
        self.assertEqual(reads.count(self.pki.path("server.pem")), 0)
        self.assertEqual(reads.count(self.pki.path("server.key")), 0)
        assert self.endpoint.creator.crls is not None
        self.assertTrue(self.endpoint.creator.crls.isRevoked(
            _certificate(self.pki.path("client2.pem"))))
        self.assertEqual(self.served(), self.old)
        self.assertEqual(len(self.events("revocation.crl_loaded")), 1)
        self.assertEqual(self.events("policy.reloaded"), [])

    def test_explicitReloadServesNew(self) -> None:
        """
        L{SecureServerEndpoint.reload} reads the new certificate and key and
        serves them; it is audited as C{policy.reloaded} naming what changed
        and the SHA-256 fingerprints of the certificate before and after.
        """
        renewServer(self.pki, "server-renewed")
        self.successResultOf(self.endpoint.reloadCRLs())
        new = _certificate(self.pki.path("server.pem"))
        self.endpoint.reload()
        self.assertEqual(self.served(), new)
        [reloaded] = self.events("policy.reloaded")
        self.assertEqual(reloaded["certificateBefore"], _fingerprint(self.old))
        self.assertEqual(reloaded["certificateAfter"], _fingerprint(new))
        self.assertEqual(reloaded["changed"], ["certificate", "key"])
        self.assertEqual(self.endpoint.creator.materials.fingerprint, _fingerprint(new))

    def test_reloadWithPolicy(self) -> None:
        """
        A reload given a new policy names C{policy} among what changed; the
        same certificate keeps the same fingerprint before and after.
        """
        self.endpoint.reload(attrs.evolve(self.serverPolicy(), handshakeTimeout=5.0))
        [reloaded] = self.events("policy.reloaded")
        self.assertEqual(reloaded["changed"], ["policy"])
        self.assertEqual(reloaded["certificateBefore"], reloaded["certificateAfter"])
        self.assertEqual(self.endpoint.policy.handshakeTimeout, 5.0)

    def test_refusedReloadKeepsAll(self) -> None:
        """
        A reload that cannot read a usable key is refused
        (C{policy.reload_refused} naming the file): the old certificate,
        key and CRLs stay in force.
        """
        materials = self.endpoint.creator.materials
        self.pki.write("server.key", b"-----BEGIN PRIVATE KEY-----\ngarbage\n"
                                     b"-----END PRIVATE KEY-----\n")
        self.assertRaises(CredentialError, self.endpoint.reload)
        [refused] = self.events("policy.reload_refused")
        self.assertIn(self.pki.path("server.key"), refused["detail"])
        self.assertIs(self.endpoint.creator.materials, materials)
        self.assertEqual(self.served(), self.old)


def _succeed(result: Any) -> Any:
    from twisted.internet.defer import succeed

    return succeed(result)


class MaterialsValueTests(SynchronousTestCase):
    """
    L{Materials} is a frozen value.
    """

    def test_frozen(self) -> None:
        """
        Its fields cannot be assigned.
        """
        materials = Materials()
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, materials, "chain", ())
        self.assertIsNone(materials.leaf)
