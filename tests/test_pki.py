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
from typing import Any, Dict, List, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp._pki import CertificateAuthority
from securetcp.identity import identityFromCertificate
from securetcp.policy import Revocation
from securetcp.revocation.crl import loadCRLs

from ._net import escape as _escape
from ._programs import OPENSSL, needOpenSSL
from ._programs import subprocessEnvironment as _env
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, TapProcessMixin
from ._twistd import auditEvents as _events


def _load(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class _PKICommands:
    """
    Running C{python -m securetcp pki} in-process through L{main}, in a
    temporary directory, with standard error captured.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(self.base)
        self.ca = os.path.join(self.base, "ca")
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)  # type: ignore[attr-defined]

    def pki(self, *argv: str) -> Tuple[int, str]:
        """
        Run C{pki ARGV}; return the exit status and standard output.
        """
        out = io.StringIO()
        status = main(["pki", *argv], out)
        return status, out.getvalue()

    def ok(self, *argv: str) -> str:
        status, out = self.pki(*argv)
        self.assertEqual(status, 0, self.stderr.getvalue())  # type: ignore[attr-defined]
        return out

    def out(self, name: str) -> str:
        return os.path.join(self.base, name)

    def init(self, *extra: str) -> None:
        self.ok("init", "--dir", self.ca, "--name", "Hospital devices CA", *extra)

    def failing(self, *argv: str) -> str:
        """
        Run C{pki ARGV}, which must fail with status 1; return its one-line
        message on standard error.
        """
        self.stderr.truncate(0)
        self.stderr.seek(0)
        status, _ = self.pki(*argv)
        self.assertEqual(status, 1, argv)  # type: ignore[attr-defined]
        message = self.stderr.getvalue()
        self.assertEqual(message.count("\n"), 1, message)  # type: ignore[attr-defined]
        return message


class PKICommandTests(_PKICommands, SynchronousTestCase):
    """
    C{python -m securetcp pki}, run in-process through L{main}.
    """

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


def _openssl(*argv: str, cwd: str) -> subprocess.CompletedProcess[bytes]:
    """
    Run the system C{openssl} with C{argv} in C{cwd}, to its end.
    """
    needOpenSSL()
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *argv], capture_output=True, cwd=cwd, timeout=PEER_TIMEOUT)


def _purposes(certificate: str, ca: str, cwd: str) -> Dict[str, bool]:
    """
    Whether C{openssl verify -purpose sslserver} and C{-purpose sslclient}
    accept C{certificate} under C{ca}.
    """
    return {purpose: _openssl("verify", "-purpose", purpose, "-CAfile", ca, certificate,
                              cwd=cwd).returncode == 0
            for purpose in ("sslserver", "sslclient")}


def _usages(certificate: x509.Certificate) -> List[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _sans(certificate: x509.Certificate) -> List[str]:
    return [str(n.value) for n in certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value]


_BOTH = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


class NodeAndNamesTests(_PKICommands, SynchronousTestCase):
    """
    C{pki issue-client --dns --org} and C{pki issue-node}: a certificate
    valid for both server and client use.
    """

    def test_issueClientNames(self) -> None:
        """
        C{issue-client} adds each C{--dns} name after the SPIFFE ID and
        writes C{--org} as the subject's organisation.
        """
        self.init("--trust-domain", "hospital.example")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("pump"), "--device-id",
                "pump-0042", "--dns", "pump-0042.ward3.example", "--dns", "pump-0042.local",
                "--org", "Ward 3")
        cert = _load(self.out("pump.pem"))
        self.assertEqual(_sans(cert), ["spiffe://hospital.example/device/pump-0042",
                                       "pump-0042.ward3.example", "pump-0042.local"])
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value,
                         "Ward 3")
        self.assertEqual(_usages(cert), [ExtendedKeyUsageOID.CLIENT_AUTH])
        identity = identityFromCertificate(cert)
        self.assertEqual(identity.dns, ("pump-0042.ward3.example", "pump-0042.local"))

    def test_issueNode(self) -> None:
        """
        C{issue-node} writes OUT.pem and OUT.key: serverAuth and clientAuth,
        the C{--dns} and C{--ip} names (the first as CN), the C{--spiffe}
        URI, the C{--org} organisation; the index records it as a node.
        """
        self.init()
        self.ok("issue-node", "--dir", self.ca, "--out", self.out("pacs"), "--dns",
                "pacs.hospital.example", "--ip", "10.20.0.7", "--spiffe",
                "spiffe://hospital.example/node/pacs", "--org", "Radiology", "--days", "30")
        cert = _load(self.out("pacs.pem"))
        self.assertEqual(_usages(cert), _BOTH)
        self.assertEqual(_sans(cert), ["pacs.hospital.example", "10.20.0.7",
                                       "spiffe://hospital.example/node/pacs"])
        self.assertEqual(cert.subject.rfc4514_string(), "CN=pacs.hospital.example,O=Radiology")
        cert.verify_directly_issued_by(_load(os.path.join(self.ca, "ca.pem")))
        self.assertEqual(_mode(self.out("pacs.key")), 0o600)
        [entry] = CertificateAuthority.open(self.ca).index["certificates"]
        self.assertEqual((entry["kind"], entry["sans"][1]), ("node", "ip:10.20.0.7"))
        self.assertIn("needs at least one name", self.failing(
            "issue-node", "--dir", self.ca, "--out", self.out("nameless"), "--spiffe",
            "spiffe://hospital.example/node/x"))
        self.assertIn("--org", self.failing("issue-node", "--dir", self.ca, "--out",
                                            self.out("o"), "--dns", "a.example", "--org", ""))

    def test_openSSLPurposes(self) -> None:
        """
        C{openssl verify} accepts the node certificate both as an SSL
        server and as an SSL client, a server certificate only as a server
        and a device certificate only as a client.
        """
        self.init()
        self.ok("issue-node", "--dir", self.ca, "--out", self.out("node"), "--dns", "localhost")
        self.ok("issue-server", "--dir", self.ca, "--out", self.out("server"), "--dns", "s.example")
        self.ok("issue-client", "--dir", self.ca, "--out", self.out("client"), "--device-id", "d")
        ca = os.path.join(self.ca, "ca.pem")
        self.assertEqual(_purposes("node.pem", ca, self.base),
                         {"sslserver": True, "sslclient": True})
        self.assertEqual(_purposes("server.pem", ca, self.base),
                         {"sslserver": True, "sslclient": False})
        self.assertEqual(_purposes("client.pem", ca, self.base),
                         {"sslserver": False, "sslclient": True})


class SignRequestTests(_PKICommands, SynchronousTestCase):
    """
    C{pki sign-csr}: certifying the key of a request made by C{openssl req}.
    """

    def request(self, name: str, *extra: str, key: Tuple[str, ...] = (
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")) -> str:
        """
        Make NAME.key and NAME.csr with C{openssl req -new}, adding
        C{extra} (C{-subj}, C{-addext}); return the request's path.
        """
        made = _openssl("req", "-new", *key, "-nodes", "-keyout", f"{name}.key",
                        "-out", f"{name}.csr", *extra, cwd=self.base)
        self.assertEqual(made.returncode, 0, made.stderr.decode())
        return self.out(f"{name}.csr")

    def sign(self, csr: str, out: str, kind: str, *extra: str) -> x509.Certificate:
        self.ok("sign-csr", "--dir", self.ca, "--csr", csr, "--out", self.out(out),
                "--as", kind, *extra)
        return _load(self.out(f"{out}.pem"))

    def test_namesFromCommandLine(self) -> None:
        """
        By default the names come from the command line, not the request,
        and nothing else the request asks for (here, to be a CA) is
        copied: the certificate certifies the request's key as a server,
        no key file is written, and the index records the request.
        """
        self.init()
        csr = self.request("device", "-subj", "/CN=evil.example", "-addext",
                           "subjectAltName=DNS:evil.example", "-addext",
                           "basicConstraints=critical,CA:TRUE")
        cert = self.sign(csr, "ct1", "server", "--dns", "ct1.hospital.example", "--org", "CT")
        self.assertEqual(_sans(cert), ["ct1.hospital.example"])
        self.assertEqual(cert.subject.rfc4514_string(), "CN=ct1.hospital.example,O=CT")
        self.assertEqual(_usages(cert), [ExtendedKeyUsageOID.SERVER_AUTH])
        self.assertFalse(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        with open(csr, "rb") as f:
            self.assertEqual(cert.public_key(),
                             x509.load_pem_x509_csr(f.read()).public_key())
        self.assertFalse(os.path.exists(self.out("ct1.key")))
        [entry] = CertificateAuthority.open(self.ca).index["certificates"]
        self.assertEqual((entry["kind"], entry["csr"], entry["namesFrom"], entry["status"]),
                         ("server", csr, "command line", "valid"))
        self.assertTrue(os.path.exists(os.path.join(self.ca, "issued",
                                                    entry["serial"] + ".pem")))
        self.assertEqual(_purposes("ct1.pem", os.path.join(self.ca, "ca.pem"), self.base),
                         {"sslserver": True, "sslclient": False})

    def test_acceptRequestNames(self) -> None:
        """
        With C{--accept-csr-names} the request's subject and its DNS, IP
        and URI names are taken; as a node, OpenSSL accepts the certificate
        as server and client; the index says where the names came from.
        """
        self.init()
        csr = self.request("modality", "-subj", "/O=Radiology/CN=ct2.hospital.example",
                           "-addext", "subjectAltName=DNS:ct2.hospital.example,IP:10.1.2.3,"
                           "URI:spiffe://hospital.example/node/ct2")
        cert = self.sign(csr, "modality", "node", "--accept-csr-names")
        self.assertEqual(cert.subject.rfc4514_string(), "CN=ct2.hospital.example,O=Radiology")
        self.assertEqual(_sans(cert), ["ct2.hospital.example", "10.1.2.3",
                                       "spiffe://hospital.example/node/ct2"])
        self.assertEqual(_usages(cert), _BOTH)
        self.assertEqual(_purposes("modality.pem", os.path.join(self.ca, "ca.pem"), self.base),
                         {"sslserver": True, "sslclient": True})
        [entry] = CertificateAuthority.open(self.ca).index["certificates"]
        self.assertEqual((entry["kind"], entry["namesFrom"]), ("node", "csr"))

    def test_asClient(self) -> None:
        """
        C{--as client} certifies a device's own key with C{--device-id}
        (and the CA's trust domain) as a device certificate; an RSA request
        and a DER request are accepted.
        """
        self.init("--trust-domain", "hospital.example")
        der = self.out("pump.der")
        csr = self.request("pump", "-subj", "/CN=whatever", "-outform", "DER",
                           key=("-newkey", "rsa:2048"))
        os.rename(csr, der)
        cert = self.sign(der, "pump", "client", "--device-id", "pump-0042")
        identity = identityFromCertificate(cert)
        self.assertEqual((identity.commonName, identity.uri),
                         (("pump-0042",), ("spiffe://hospital.example/device/pump-0042",)))
        self.assertEqual(_usages(cert), [ExtendedKeyUsageOID.CLIENT_AUTH])
        self.assertIsInstance(cert.public_key(), rsa.RSAPublicKey)
        self.assertEqual(_purposes("pump.pem", os.path.join(self.ca, "ca.pem"), self.base),
                         {"sslserver": False, "sslclient": True})

    def test_refusedRequests(self) -> None:
        """
        A request whose signature does not verify (altered after signing),
        one for an RSA-1024 key or a key on a curve securetcp does not
        accept, a file that is no request and a missing file are refused
        with status 1 and one line naming the file, and nothing is issued.
        """
        self.init()
        good = self.request("good", "-subj", "/CN=pump-0042", "-outform", "DER")
        with open(good, "rb") as f:
            data = f.read()
        altered = self.out("altered.csr")
        with open(altered, "wb") as f:
            f.write(data.replace(b"pump-0042", b"pump-0043"))
        weak = self.request("weak", "-subj", "/CN=weak", key=("-newkey", "rsa:1024"))
        curve = self.request("k1", "-subj", "/CN=k1",
                             key=("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"))
        for csr, problem in [(altered, "its signature does not verify"),
                             (weak, "RSA-1024 key"), (curve, "secp256k1"),
                             (self.out("good.key"), "is not a certificate signing request"),
                             (self.out("missing.csr"), "cannot be read")]:
            message = self.failing("sign-csr", "--dir", self.ca, "--csr", csr, "--out",
                                   self.out("x"), "--as", "client", "--device-id", "d")
            self.assertIn(f"{csr}: ", message)
            self.assertIn(problem, message)
        self.assertEqual(CertificateAuthority.open(self.ca).index["certificates"], [])
        self.assertFalse(os.path.exists(self.out("x.pem")))

    def test_refusedNames(self) -> None:
        """
        Names on the command line and C{--accept-csr-names} together, a
        client without C{--device-id}, an option that does not name the
        kind asked for, a server request without a DNS name or IP address,
        and an existing C{--out} (without C{--force}) are refused.
        """
        self.init()
        csr = self.request("r", "-subj", "/CN=r.example")
        sign = ("sign-csr", "--dir", self.ca, "--csr", csr, "--out", self.out("r"))
        for extra, problem in [
                (("--as", "node", "--accept-csr-names", "--dns", "a.example"), "not both"),
                (("--as", "client"), "needs --device-id"),
                (("--as", "client", "--device-id", "d", "--ip", "10.0.0.1"),
                 "--ip is not a name of a client certificate"),
                (("--as", "server", "--accept-csr-names"), "no DNS name or IP address"),
                (("--as", "server"), "needs at least one name")]:
            self.assertIn(problem, self.failing(*sign, *extra))
        self.ok(*sign, "--as", "client", "--accept-csr-names")
        self.assertIn("--force", self.failing(*sign, "--as", "client", "--accept-csr-names"))
        self.ok(*sign, "--as", "client", "--accept-csr-names", "--force")
        exit = self.assertRaises(SystemExit, self.pki, *sign, "--as", "admin")
        self.assertEqual(exit.code, 2)
        self.assertIn("invalid choice: 'admin'", self.stderr.getvalue())


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
        port, twistd = self.twistd("serve", "--app", "tests._apps:backendEchoFactory",
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

    def test_nodeCertificateBothWays(self) -> None:
        """
        A node certificate from C{pki issue-node} serves as the mTLS
        server's certificate, and C{openssl s_client} presenting the same
        certificate as its client certificate (checking the server's name)
        is accepted and exchanges a line; so is a node certificate from
        C{pki sign-csr --as node} for a key and request made by
        C{openssl req}.  The audit records each node's identity.  A server
        certificate (serverAuth only), which the allow-list would let in by
        its DNS name, is refused as a client certificate.
        """
        self.run_pki("init", "--dir", "ca", "--name", "Imaging CA")
        self.run_pki("issue-node", "--dir", "ca", "--out", "pacs", "--dns", "localhost",
                     "--ip", "127.0.0.1", "--spiffe", "spiffe://hospital.example/node/pacs",
                     "--org", "Radiology")
        made = subprocess.run(
            [OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "ct1.key", "-out", "ct1.csr", "-subj", "/CN=ct1"],
            capture_output=True, cwd=self.workdir, timeout=PEER_TIMEOUT)
        self.assertEqual(made.returncode, 0, made.stderr.decode())
        self.run_pki("sign-csr", "--dir", "ca", "--csr", "ct1.csr", "--out", "ct1", "--as",
                     "node", "--dns", "ct1.hospital.example", "--spiffe",
                     "spiffe://hospital.example/node/ct1")
        p = self.path

        def listen(port: int) -> List[str]:
            return ["--listen",
                    f"mtls:{port}:interface=127.0.0.1:certKey={_escape(p('pacs.pem'))}"
                    f":privateKey={_escape(p('pacs.key'))}:caCerts={_escape(p('ca/ca.pem'))}"
                    ":allowPeers=uri\\:spiffe\\://hospital.example/node/*,dns\\:localhost"]

        port, twistd = self.twistd("serve", "--app", "tests._apps:backendEchoFactory",
                                   "--audit-log", self.audit, listen=listen)
        for node in ("pacs", "ct1"):
            peer = self.sClient(port, None, p("ca/ca.pem"), "-cert", p(f"{node}.pem"),
                                "-key", p(f"{node}.key"), "-verify_hostname", "localhost")
            peer.send(node.encode("ascii") + b"\n")
            peer.waitFor(b"backend:" + node.encode("ascii"), PEER_TIMEOUT, "the echo")
            peer.closeStdin()
            self.assertEqual(peer.waitExit(), 0, peer.describe())
        accepted = self.waitForEvent("connection.accepted", 2)
        self.assertIn("spiffe://hospital.example/node/pacs", json.dumps(accepted[0]))
        self.assertIn("spiffe://hospital.example/node/ct1", json.dumps(accepted[1]))

        self.run_pki("issue-server", "--dir", "ca", "--out", "websrv", "--dns", "localhost")
        peer = self.sClient(port, None, p("ca/ca.pem"), "-cert", p("websrv.pem"),
                            "-key", p("websrv.key"))
        peer.send(b"server certificate\n")
        peer.waitExit()
        self.assertNotIn(b"backend:", peer.out)
        [rejected] = self.waitForEvent("handshake.rejected")
        self.assertEqual(rejected["reason"], "wrong_key_usage")
        twistd.stop()
        self.assertVerifies(self.audit)
