"""
Tests for L{securetcp._pki} and C{python -m securetcp pki}: a CA on disk
that issues server and device certificates, revokes them and publishes
CRLs that securetcp servers load; end to end with C{twistd securetcp serve}
and C{openssl s_client}.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from typing import Any, List, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp._pki import CertificateAuthority
from securetcp.identity import identityFromCertificate
from securetcp.policy import Revocation
from securetcp.revocation.crl import loadCRLs

from ._net import escape as _escape
from ._programs import subprocessEnvironment as _env
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, TapProcessMixin
from ._twistd import auditEvents as _events


class _Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"backend:" + data)


#: an echo application for C{--app tests.test_pki:echoFactory}; it answers
#: C{backend:LINE} like the test backend of L{tests.test_tap}
echoFactory = Factory.forProtocol(_Echo)


def _load(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class PKICommandTests(SynchronousTestCase):
    """
    C{python -m securetcp pki}, run in-process through L{main}.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.ca = os.path.join(self.base, "ca")
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def pki(self, *argv: str) -> Tuple[int, str]:
        """
        Run C{pki ARGV}; return the exit status and standard output.
        """
        out = io.StringIO()
        status = main(["pki", *argv], out)
        return status, out.getvalue()

    def ok(self, *argv: str) -> str:
        status, out = self.pki(*argv)
        self.assertEqual(status, 0, self.stderr.getvalue())
        return out

    def out(self, name: str) -> str:
        return os.path.join(self.base, name)

    def init(self, *extra: str) -> None:
        self.ok("init", "--dir", self.ca, "--name", "Hospital devices CA", *extra)

    def test_init(self) -> None:
        """
        C{pki init} writes a self-signed ECDSA P-256 CA certificate named by
        C{--name} with the CA basic constraint and certificate and CRL
        signing key usage, its key with mode 0600, an empty C{index.json}
        and C{crlnumber} 0.
        """
        self.init()
        cert = _load(os.path.join(self.ca, "ca.pem"))
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "Hospital devices CA")
        self.assertEqual(cert.subject, cert.issuer)
        self.assertTrue(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertTrue(usage.key_cert_sign and usage.crl_sign)
        self.assertIsInstance(cert.public_key(), ec.EllipticCurvePublicKey)
        self.assertEqual(cert.public_key().curve.name, "secp256r1")  # type: ignore[union-attr]
        self.assertEqual(_mode(os.path.join(self.ca, "ca.key")), 0o600)
        with open(os.path.join(self.ca, "index.json")) as f:
            self.assertEqual(json.load(f)["certificates"], [])
        with open(os.path.join(self.ca, "crlnumber")) as f:
            self.assertEqual(f.read().strip(), "0")

    def test_reinitRefused(self) -> None:
        """
        C{pki init} over an existing CA fails with status 1 and a message
        naming the directory and C{--force}, leaving the CA unchanged; with
        C{--force} it replaces it.
        """
        self.init()
        before = _load(os.path.join(self.ca, "ca.pem"))
        status, _ = self.pki("init", "--dir", self.ca, "--name", "Other CA")
        self.assertEqual(status, 1)
        self.assertIn(self.ca, self.stderr.getvalue())
        self.assertIn("already holds a CA", self.stderr.getvalue())
        self.assertIn("--force", self.stderr.getvalue())
        self.assertEqual(_load(os.path.join(self.ca, "ca.pem")), before)
        self.init("--force")
        self.assertNotEqual(_load(os.path.join(self.ca, "ca.pem")), before)

    def test_missingCADirectory(self) -> None:
        """
        Every command but C{init} fails with status 1 and a message naming
        the missing CA directory and C{pki init}.
        """
        for argv in (["issue-server", "--out", self.out("s"), "--dns", "localhost"],
                     ["issue-client", "--out", self.out("c"), "--device-id", "pump-1"],
                     ["revoke", self.out("c.pem")], ["crl", "--out", self.out("crl.pem")]):
            self.stderr.truncate(0)
            status, _ = self.pki(argv[0], "--dir", self.ca, *argv[1:])
            self.assertEqual(status, 1, argv)
            self.assertIn(f"{self.ca}: CA directory does not exist", self.stderr.getvalue())
            self.assertIn("pki init", self.stderr.getvalue())

    def test_issueServer(self) -> None:
        """
        C{pki issue-server} writes OUT.pem (serverAuth, the C{--dns} and
        C{--ip} names as SANs, issued by the CA) and OUT.key (mode 0600),
        and records the certificate in C{index.json}.
        """
        self.init()
        self.ok("issue-server", "--dir", self.ca, "--out", self.out("server"), "--dns",
                "hl7.hospital.example", "--dns", "localhost", "--ip", "127.0.0.1",
                "--days", "30")
        cert = _load(self.out("server.pem"))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName),
                         ["hl7.hospital.example", "localhost"])
        self.assertEqual([str(a) for a in san.get_values_for_type(x509.IPAddress)],
                         ["127.0.0.1"])
        self.assertEqual(list(cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value), [ExtendedKeyUsageOID.SERVER_AUTH])
        cert.verify_directly_issued_by(_load(os.path.join(self.ca, "ca.pem")))
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        self.assertTrue(29 < lifetime.days <= 30, lifetime)
        self.assertEqual(_mode(self.out("server.key")), 0o600)
        [entry] = CertificateAuthority.open(self.ca).index["certificates"]
        self.assertEqual((entry["serial"], entry["kind"], entry["status"]),
                         (format(cert.serial_number, "x"), "server", "valid"))

    def test_issueRefusals(self) -> None:
        """
        A server certificate without any name, an RSA key under 2048 bits,
        and an C{--out} whose files exist (without C{--force}) are refused
        with status 1 and a message saying what to do.
        """
        self.init()
        self.ok("issue-server", "--dir", self.ca, "--out", self.out("server"), "--dns", "a.example")
        cases = [
            (["issue-server", "--out", self.out("nameless")], "--dns"),
            (["issue-server", "--out", self.out("weak"), "--dns", "a.example", "--rsa", "1024"],
             "2048"),
            (["issue-server", "--out", self.out("server"), "--dns", "a.example"], "--force"),
            (["issue-client", "--out", self.out("bad"), "--device-id", "a/b"], "device"),
            (["issue-client", "--out", self.out("bad"), "--device-id", "d",
              "--spiffe", "https://x"], "SPIFFE"),
        ]
        for argv, fix in cases:
            self.stderr.truncate(0)
            self.stderr.seek(0)
            status, _ = self.pki(argv[0], "--dir", self.ca, *argv[1:])
            self.assertEqual(status, 1, argv)
            self.assertIn(fix, self.stderr.getvalue(), argv)
        self.ok("issue-server", "--dir", self.ca, "--out", self.out("server"), "--dns",
                "b.example", "--force")

    def test_rsa(self) -> None:
        """
        C{--rsa BITS} makes an RSA key of that size instead of ECDSA P-256.
        """
        self.init("--rsa", "2048")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump"), "--device-id",
                "pump-1", "--rsa", "2048")
        for path in (os.path.join(self.ca, "ca.pem"), self.out("pump.pem")):
            key = _load(path).public_key()
            self.assertIsInstance(key, rsa.RSAPublicKey)
            self.assertEqual(key.key_size, 2048)  # type: ignore[union-attr]

    def test_issueClient(self) -> None:
        """
        C{pki issue-client} writes a clientAuth certificate whose subject
        common name and serialNumber are the device identity and whose SAN
        URI is C{--spiffe}; without C{--spiffe} the URI is
        C{spiffe://TRUST-DOMAIN/device/ID} with the CA's C{--trust-domain}.
        """
        self.init("--trust-domain", "hospital.example")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump-0042"), "--device-id",
                "pump-0042", "--spiffe", "spiffe://hospital.example/ward3/pump-0042")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump-7"), "--device-id",
                "pump-7")
        cert = _load(self.out("pump-0042.pem"))
        identity = identityFromCertificate(cert)
        self.assertEqual(identity.commonName, ("pump-0042",))
        self.assertEqual(identity.uri, ("spiffe://hospital.example/ward3/pump-0042",))
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value,
                         "pump-0042")
        self.assertEqual(list(cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value), [ExtendedKeyUsageOID.CLIENT_AUTH])
        self.assertEqual(identityFromCertificate(_load(self.out("pump-7.pem"))).uri,
                         ("spiffe://hospital.example/device/pump-7",))
        self.assertEqual(_mode(self.out("pump-0042.key")), 0o600)

    def test_revokeAndCRL(self) -> None:
        """
        C{pki revoke CERT --reason keyCompromise} marks the certificate
        revoked in C{index.json} with reason and time; C{pki crl} then
        writes a CRL that L{loadCRLs} accepts under the CA, listing it with
        its reason, with a CRL number one higher each time.
        """
        self.init()
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump"), "--device-id",
                "pump-1")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("other"), "--device-id",
                "pump-2")
        revoked, kept = _load(self.out("pump.pem")), _load(self.out("other.pem"))
        self.ok("crl", "--dir", self.ca, "--out", self.out("crl.pem"))
        self.ok("revoke", "--dir", self.ca, self.out("pump.pem"), "--reason", "keyCompromise")
        entry = CertificateAuthority.open(self.ca).entry(revoked.serial_number)
        assert entry is not None
        self.assertEqual((entry["status"], entry["revocationReason"]),
                         ("revoked", "keyCompromise"))
        self.assertRegex(entry["revocationTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.ok("crl", "--dir", self.ca, "--out", self.out("crl.pem"), "--days", "2")

        caCert = _load(os.path.join(self.ca, "ca.pem"))
        crls = loadCRLs(Revocation(crlFiles=(self.out("crl.pem"),)), [caCert])
        self.assertTrue(crls.isRevoked(revoked))
        self.assertFalse(crls.isRevoked(kept))
        self.assertEqual(crls.entry(revoked)["revocationReason"], "keyCompromise")  # type: ignore
        self.assertEqual(crls.number(caCert.subject.public_bytes()), 2)
        with open(self.out("crl.pem"), "rb") as f:
            crl = x509.load_pem_x509_crl(f.read())
        self.assertEqual((crl.next_update_utc - crl.last_update_utc).days, 2)  # type: ignore

    def test_revokeUnknown(self) -> None:
        """
        Revoking a certificate another CA issued, a file that is not a
        certificate, or with an unknown reason fails with status 1 and a
        message naming the file or reason.
        """
        self.init()
        other = os.path.join(self.base, "other-ca")
        self.ok("init", "--dir", other, "--name", "Other CA")
        self.ok("issue-client", "--dir", other, "--out", self.out("foreign"), "--device-id", "x")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump"), "--device-id", "p")
        with open(self.out("junk.pem"), "w") as f:
            f.write("not a certificate\n")
        cases = [([self.out("foreign.pem")], "was not issued by this CA"),
                 ([self.out("junk.pem")], "is not a certificate"),
                 ([self.out("missing.pem")], "cannot be read"),
                 ([self.out("pump.pem"), "--reason", "stolen"], "unknown revocation reason"),
                 (["--serial", "abcdef"], "is not in this CA's index.json")]
        for argv, problem in cases:
            self.stderr.truncate(0)
            self.stderr.seek(0)
            status, _ = self.pki("revoke", "--dir", self.ca, *argv)
            self.assertEqual(status, 1, argv)
            self.assertIn(problem, self.stderr.getvalue(), argv)
        self.assertEqual(CertificateAuthority.open(self.ca).index["certificates"][0]["status"],
                         "valid")


class PKIEndToEndTests(TapProcessMixin, SynchronousTestCase):
    """
    Certificates from C{python -m securetcp pki} (run as a subprocess) work
    with C{twistd securetcp serve} under C{mtls:}, and its CRL revokes a
    device.
    """

    def run_pki(self, *argv: str) -> None:
        result = subprocess.run([sys.executable, "-m", "securetcp", "pki", *argv],
                                capture_output=True, env=_env(), cwd=self.workdir,
                                timeout=START_TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr.decode())

    def listen(self, port: int) -> List[str]:
        p = self.path
        return ["--listen",
                f"mtls:{port}:interface=127.0.0.1:certKey={_escape(p('server.pem'))}"
                f":privateKey={_escape(p('server.key'))}:caCerts={_escape(p('ca/ca.pem'))}"
                f":crl={_escape(p('devices.crl'))}"
                ":allowPeers=uri\\:spiffe\\://hospital.example/ward3/*"]

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    def sClientDevice(self, port: int, device: str) -> Any:
        return self.sClient(port, None, self.path("ca/ca.pem"), "-cert",
                            self.path(f"{device}.pem"), "-key", self.path(f"{device}.key"))

    def test_issueServeRevoke(self) -> None:
        """
        With a CA, server and device certificates and an empty CRL from
        C{pki}, s_client presenting the device certificate exchanges a line
        with the mTLS server; after C{pki revoke --reason keyCompromise},
        C{pki crl} and SIGHUP, the same device is rejected as C{revoked}
        (with the reason) while another device still gets through, and the
        audit file verifies.
        """
        import signal

        self.run_pki("init", "--dir", "ca", "--name", "Hospital devices CA",
                     "--trust-domain", "hospital.example")
        self.run_pki("issue-server", "--dir", "ca", "--out", "server", "--dns", "localhost",
                     "--ip", "127.0.0.1")
        for device in ("pump-0042", "pump-0043"):
            self.run_pki("issue-client", "--dir", "ca", "--out", device, "--device-id", device,
                         "--spiffe", f"spiffe://hospital.example/ward3/{device}")
        self.run_pki("crl", "--dir", "ca", "--out", "devices.crl")
        port, twistd = self.twistd("serve", "--app", "tests.test_pki:echoFactory",
                                   "--audit-log", self.audit, listen=self.listen)

        def exchange(device: str, line: bytes) -> None:
            peer = self.sClientDevice(port, device)
            peer.send(line + b"\n")
            peer.waitFor(b"backend:" + line, PEER_TIMEOUT, "the echo")
            peer.closeStdin()
            self.assertEqual(peer.waitExit(), 0, peer.describe())

        exchange("pump-0042", b"before revocation")
        [accepted] = self.waitForEvent("connection.accepted")
        self.assertIn("spiffe://hospital.example/ward3/pump-0042", json.dumps(accepted))

        self.run_pki("revoke", "--dir", "ca", "pump-0042.pem", "--reason", "keyCompromise")
        self.run_pki("crl", "--dir", "ca", "--out", "devices.crl")
        os.kill(twistd.pid, signal.SIGHUP)
        self.waitForEvent("policy.reloaded")

        peer = self.sClientDevice(port, "pump-0042")
        peer.send(b"after revocation\n")
        peer.waitExit()
        self.assertNotIn(b"backend:", peer.out)
        [rejected] = self.waitForEvent("handshake.rejected")
        self.assertEqual((rejected["reason"], rejected.get("revocationReason")),
                         ("revoked", "keyCompromise"))
        exchange("pump-0043", b"another device")
        self.assertEqual(len(_events(self.audit, "connection.accepted")), 2)
        twistd.stop()
        self.assertVerifies(self.audit)
