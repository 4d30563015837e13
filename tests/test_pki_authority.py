"""
Tests for L{securetcp._pki.authority} and L{securetcp._pki.names}: keys,
certificates and CRLs issued as values, in memory, by the same code as
C{python -m securetcp pki}.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from twisted.trial.unittest import SynchronousTestCase

from securetcp._pki import (
    NODE_USAGES,
    Authority,
    Revoked,
    Validity,
    certificatePEM,
    checkPublicKey,
    deviceNames,
    keyPEM,
    newKey,
    nodeNames,
    serverNames,
)
from securetcp._pki.authority import CLOCK_SKEW, checkKey
from securetcp._pki.names import namesFor
from securetcp.errors import PKIError
from securetcp.policy import Revocation
from securetcp.revocation.crl import loadCRLs

from ._pki import cachedKey

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_DAY = datetime.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _extension(certificate: x509.Certificate, kind: type) -> object:
    return certificate.extensions.get_extension_for_class(kind).value  # type: ignore[arg-type]


class ValidityTests(SynchronousTestCase):
    """
    L{Validity}: when a certificate is valid, or when a CRL is current.
    """

    def test_days(self) -> None:
        """
        L{Validity.days} starts L{CLOCK_SKEW} before the given moment and
        ends that many days after it.
        """
        moment = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        self.assertEqual(Validity.days(10, moment),
                         Validity(moment - CLOCK_SKEW, moment + 10 * _DAY))

    def test_daysAtLeastOne(self) -> None:
        """
        L{Validity.days} refuses fewer than one day with a L{PKIError}
        naming C{--days} and the value.
        """
        for days in (0, -3):
            error = self.assertRaises(PKIError, Validity.days, days)
            self.assertIn(f"--days {days}", str(error))


class KeyTests(SynchronousTestCase):
    """
    L{newKey} and L{checkKey}: the keys the authority makes and signs.
    """

    def test_newKey(self) -> None:
        """
        L{newKey} makes an ECDSA P-256 key, or RSA of the size asked for;
        RSA under 2048 bits is refused naming C{--rsa}.
        """
        key = newKey()
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.assertEqual(key.curve.name, "secp256r1")
        self.assertEqual(newKey(2048).key_size, 2048)
        error = self.assertRaises(PKIError, newKey, 1024)
        self.assertIn("--rsa 1024", str(error))

    def test_checkKeyRefusesWeakKeys(self) -> None:
        """
        L{checkKey} refuses RSA under 2048 bits and curves other than P-256,
        P-384 and P-521, naming the key; it returns the keys it accepts.
        """
        for key, named in [(cachedKey("rsa", 1024, "weak"), "RSA-1024"),
                           (cachedKey("ec", 224, "weak"), "secp224r1")]:
            error = self.assertRaises(PKIError, checkKey, key)
            self.assertIn(named, str(error))
        good = cachedKey("ec", 384, "good")
        self.assertIs(checkKey(good), good)
        self.assertRaises(PKIError, checkKey, "not a key")


class AuthorityTests(SynchronousTestCase):
    """
    L{Authority} issues CA, server, device and intermediate certificates
    and CRLs as values.
    """

    def setUp(self) -> None:
        self.ca = Authority.create(_name("Test CA"))

    def test_create(self) -> None:
        """
        L{Authority.create} makes a self-signed CA certificate: the CA basic
        constraint with path length 0 (or the one asked for), certificate
        and CRL signing key usage, a subject key identifier, ten years by
        default.
        """
        certificate = self.ca.certificate
        self.assertEqual(certificate.subject, certificate.issuer)
        certificate.verify_directly_issued_by(certificate)
        constraints = _extension(certificate, x509.BasicConstraints)
        self.assertEqual((constraints.ca, constraints.path_length), (True, 0))  # type: ignore
        usage = _extension(certificate, x509.KeyUsage)
        self.assertTrue(usage.key_cert_sign and usage.crl_sign)  # type: ignore[attr-defined]
        _extension(certificate, x509.SubjectKeyIdentifier)
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        self.assertEqual(lifetime, 3650 * _DAY + CLOCK_SKEW)
        unlimited = Authority.create(_name("Root"), pathLength=None).certificate
        self.assertIsNone(_extension(unlimited, x509.BasicConstraints).path_length)  # type: ignore

    def test_issueServer(self) -> None:
        """
        L{Authority.issue} makes an end-entity certificate issued by the CA
        with the given names, extended key usage, both key identifiers, and
        digital signature key usage (key encipherment too for an RSA
        server key), with its key.
        """
        subject, sans = serverNames("server", ["localhost"], ["127.0.0.1"])
        server = self.ca.issue(subject, [SERVER_AUTH], sans)
        certificate = server.certificate
        certificate.verify_directly_issued_by(self.ca.certificate)
        self.assertEqual(certificate.public_key(), server.key.public_key())
        self.assertFalse(_extension(certificate, x509.BasicConstraints).ca)  # type: ignore
        self.assertEqual(list(_extension(certificate, x509.ExtendedKeyUsage)),  # type: ignore
                         [SERVER_AUTH])
        self.assertEqual(list(_extension(certificate, x509.SubjectAlternativeName)),  # type: ignore
                         sans)
        authorityKey = _extension(certificate, x509.AuthorityKeyIdentifier)
        self.assertEqual(authorityKey.key_identifier,  # type: ignore[attr-defined]
                         _extension(self.ca.certificate, x509.SubjectKeyIdentifier).digest)  # type: ignore
        self.assertFalse(_extension(certificate, x509.KeyUsage).key_encipherment)  # type: ignore
        rsaServer = self.ca.issue(subject, [SERVER_AUTH], sans, key=newKey(2048))
        self.assertTrue(_extension(rsaServer.certificate, x509.KeyUsage).key_encipherment)  # type: ignore
        rsaClient = self.ca.issue(subject, [CLIENT_AUTH], key=newKey(2048))
        self.assertFalse(_extension(rsaClient.certificate, x509.KeyUsage).key_encipherment)  # type: ignore

    def test_issueWithoutNames(self) -> None:
        """
        Without subject alternative names the certificate has no such
        extension (an empty one is not allowed).
        """
        device = self.ca.issue(_name("PUMP-1"), [CLIENT_AUTH])
        self.assertRaises(x509.ExtensionNotFound,
                          device.certificate.extensions.get_extension_for_class,
                          x509.SubjectAlternativeName)

    def test_issueValidity(self) -> None:
        """
        The certificate is valid for the L{Validity} given, but never longer
        than the CA: a validity in the past makes an expired certificate.
        """
        now = datetime.datetime.now(datetime.UTC)
        expired = Validity(now - 30 * _DAY, now - _DAY)
        certificate = self.ca.issue(_name("old"), [CLIENT_AUTH], validity=expired).certificate
        self.assertEqual((certificate.not_valid_before_utc, certificate.not_valid_after_utc),
                         (expired.notBefore.replace(microsecond=0),
                          expired.notAfter.replace(microsecond=0)))
        long = self.ca.issue(_name("long"), [CLIENT_AUTH], validity=Validity.days(20000))
        self.assertEqual(long.certificate.not_valid_after_utc,
                         self.ca.certificate.not_valid_after_utc)

    def test_issueRefusesWeakKeys(self) -> None:
        """
        L{Authority.issue} refuses to certify a key L{checkKey} refuses.
        """
        weak = cachedKey("rsa", 1024, "weak")
        self.assertRaises(PKIError, self.ca.issue, _name("weak"), [SERVER_AUTH], key=weak)

    def test_certify(self) -> None:
        """
        L{Authority.certify} certifies a public key made elsewhere (no
        private key needed) as L{Authority.issue} does a new one: issued by
        the CA, with the names and usages given, key encipherment for an
        RSA server key.
        """
        subject, sans = nodeNames("node", ["pacs.example"])
        key = cachedKey("rsa", 2048, "elsewhere")
        certificate = self.ca.certify(subject, NODE_USAGES, sans, key.public_key())
        certificate.verify_directly_issued_by(self.ca.certificate)
        self.assertEqual(certificate.public_key(), key.public_key())
        self.assertEqual(list(_extension(certificate, x509.ExtendedKeyUsage)),  # type: ignore
                         [SERVER_AUTH, CLIENT_AUTH])
        self.assertTrue(_extension(certificate, x509.KeyUsage).key_encipherment)  # type: ignore
        self.assertFalse(_extension(certificate, x509.BasicConstraints).ca)  # type: ignore

    def test_certifyRefusesWeakKeys(self) -> None:
        """
        L{Authority.certify} refuses the public keys whose private keys
        L{checkKey} refuses, by the same rules (L{checkPublicKey}).
        """
        for key, named in [(cachedKey("rsa", 1024, "weak"), "RSA-1024"),
                           (cachedKey("ec", 224, "weak"), "secp224r1")]:
            error = self.assertRaises(PKIError, self.ca.certify, _name("weak"), [CLIENT_AUTH],
                                      (), key.public_key())  # type: ignore[arg-type]
            self.assertIn(named, str(error))
            self.assertRaises(PKIError, checkKey, key)
        self.assertRaises(PKIError, checkPublicKey, cachedKey().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.assertEqual(checkPublicKey(cachedKey().public_key()).curve.name,  # type: ignore
                         "secp256r1")

    def test_authorityInformationAccess(self) -> None:
        """
        With C{ocspURL} and C{caIssuersURL} the certificate names its OCSP
        responder and where its issuer is published.
        """
        device = self.ca.issue(_name("PUMP-1"), [CLIENT_AUTH], ocspURL="http://ocsp.example/",
                               caIssuersURL="http://ca.example/ca.der").certificate
        access = _extension(device, x509.AuthorityInformationAccess)
        self.assertEqual([(d.access_method, d.access_location.value)
                          for d in access],  # type: ignore[attr-defined]
                         [(AuthorityInformationAccessOID.CA_ISSUERS, "http://ca.example/ca.der"),
                          (AuthorityInformationAccessOID.OCSP, "http://ocsp.example/")])

    def test_issueAuthority(self) -> None:
        """
        L{Authority.issueAuthority} makes an intermediate CA issued by this
        one, which issues certificates of its own.
        """
        root = Authority.create(_name("Root"), pathLength=None)
        intermediate = root.issueAuthority(_name("Intermediate"))
        intermediate.certificate.verify_directly_issued_by(root.certificate)
        constraints = _extension(intermediate.certificate, x509.BasicConstraints)
        self.assertEqual((constraints.ca, constraints.path_length), (True, 0))  # type: ignore
        leaf = intermediate.issue(_name("PUMP-7"), [CLIENT_AUTH]).certificate
        leaf.verify_directly_issued_by(intermediate.certificate)

    def test_crl(self) -> None:
        """
        L{Authority.crl} signs a CRL with the given number and validity,
        listing each revoked serial with its reason (none for
        C{unspecified}), which L{loadCRLs} accepts under the CA.
        """
        device = self.ca.issue(_name("PUMP-1"), [CLIENT_AUTH]).certificate
        when = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        validity = Validity.days(2)
        crl = self.ca.crl([Revoked(device.serial_number, when, x509.ReasonFlags.key_compromise),
                           Revoked(7, when)], number=5, validity=validity)
        self.assertTrue(crl.is_signature_valid(self.ca.key.public_key()))  # type: ignore[arg-type]
        self.assertEqual(_extension(crl, x509.CRLNumber).crl_number, 5)  # type: ignore
        self.assertEqual(crl.next_update_utc, validity.notAfter.replace(microsecond=0))
        entry = crl.get_revoked_certificate_by_serial_number(device.serial_number)
        assert entry is not None
        self.assertEqual(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason,
                         x509.ReasonFlags.key_compromise)
        plain = crl.get_revoked_certificate_by_serial_number(7)
        assert plain is not None
        self.assertEqual(len(plain.extensions), 0)
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(crl.public_bytes(serialization.Encoding.PEM))
        crls = loadCRLs(Revocation(crlFiles=(path,)), [self.ca.certificate])
        self.assertTrue(crls.isRevoked(device))

    def test_pem(self) -> None:
        """
        L{certificatePEM} and L{keyPEM} write PEM that reads back as the
        same certificate and key; with a passphrase the key is encrypted
        and reads back only with it.
        """
        server = self.ca.issue(_name("localhost"), [SERVER_AUTH])
        self.assertEqual(x509.load_pem_x509_certificate(certificatePEM(server.certificate)),
                         server.certificate)
        plain = serialization.load_pem_private_key(keyPEM(server.key), None)
        self.assertEqual(plain.public_key(), server.key.public_key())
        encrypted = keyPEM(server.key, b"secret")
        self.assertIn(b"ENCRYPTED", encrypted)
        self.assertRaises(TypeError, serialization.load_pem_private_key, encrypted, None)
        again = serialization.load_pem_private_key(encrypted, b"secret")
        self.assertEqual(again.public_key(), server.key.public_key())


class NamesTests(SynchronousTestCase):
    """
    L{serverNames} and L{deviceNames}: certificate names from what an
    operator types.
    """

    def test_serverNames(self) -> None:
        """
        The common name is the first name given; every DNS name and IP
        address is a subject alternative name.
        """
        subject, sans = serverNames("server", ["hl7.example", "localhost"], ["127.0.0.1"])
        self.assertEqual(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "hl7.example")
        self.assertEqual([n.value for n in sans][:2], ["hl7.example", "localhost"])
        self.assertEqual(str(sans[2].value), "127.0.0.1")

    def test_serverNamesRefused(self) -> None:
        """
        No name, a malformed DNS name or IP address is refused with a
        L{PKIError} naming the option.
        """
        for dns, ips, named in [((), (), "--dns"), ([".bad"], (), "--dns '.bad'"),
                                ((), ["300.1.1.1"], "--ip '300.1.1.1'")]:
            error = self.assertRaises(PKIError, serverNames, "out", dns, ips)
            self.assertIn(named, str(error))

    def test_deviceNames(self) -> None:
        """
        The device identity is the common name and serialNumber; the SAN
        URI is the SPIFFE ID given, or one in the trust domain; a bad
        identity or SPIFFE ID is refused naming the option.
        """
        subject, sans = deviceNames("out", "pump-7", trustDomain="hospital.example")
        self.assertEqual(subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value, "pump-7")
        self.assertEqual([n.value for n in sans], ["spiffe://hospital.example/device/pump-7"])
        _, sans = deviceNames("out", "pump-7", "spiffe://h.example/ward/7")
        self.assertEqual([n.value for n in sans], ["spiffe://h.example/ward/7"])
        self.assertIn("--device-id", str(self.assertRaises(PKIError, deviceNames, "o", "a/b")))
        self.assertIn("--spiffe", str(self.assertRaises(PKIError, deviceNames, "o", "d",
                                                        "https://x")))

    def test_organisationAndDeviceDNSNames(self) -> None:
        """
        C{org} becomes the subject's organisation, before the common name;
        a device's C{dns} names follow its SPIFFE ID as SANs; a server's
        names are unchanged without C{org}.
        """
        subject, sans = deviceNames("out", "pump-7", dns=["pump-7.ward3.example"], org="Ward 3")
        self.assertEqual([(a.oid, a.value) for a in subject],
                         [(NameOID.ORGANIZATION_NAME, "Ward 3"), (NameOID.COMMON_NAME, "pump-7"),
                          (NameOID.SERIAL_NUMBER, "pump-7")])
        self.assertEqual([n.value for n in sans],
                         ["spiffe://devices.invalid/device/pump-7", "pump-7.ward3.example"])
        subject, _ = serverNames("out", ["a.example"], org="Radiology")
        self.assertEqual(subject.rfc4514_string(), "CN=a.example,O=Radiology")
        self.assertEqual(serverNames("out", ["a.example"])[0].rfc4514_string(), "CN=a.example")

    def test_nodeNames(self) -> None:
        """
        A node has a server's names (at least one DNS name or IP address)
        and, if given, a SPIFFE ID.
        """
        subject, sans = nodeNames("node", ["pacs.example"], ["10.0.0.5"],
                                  "spiffe://hospital.example/node/pacs")
        self.assertEqual(subject.rfc4514_string(), "CN=pacs.example")
        self.assertEqual([str(n.value) for n in sans],
                         ["pacs.example", "10.0.0.5", "spiffe://hospital.example/node/pacs"])
        self.assertIn("--dns", str(self.assertRaises(PKIError, nodeNames, "node",
                                                     spiffe="spiffe://h.example/n")))

    def test_namesRefused(self) -> None:
        """
        An organisation that is empty, too long or not printable, and a
        DNS name with a blank, an empty label or a non-ASCII letter, are
        refused naming the option.
        """
        for org in ("", " ", "x" * 65, "Ward\n3", "Ward\N{RIGHT-TO-LEFT OVERRIDE}3"):
            self.assertIn("--org", str(self.assertRaises(PKIError, serverNames, "o", ["a.example"],
                                                         org=org)))
        for dns in ("a b.example", "a..example", "caf\N{LATIN SMALL LETTER E WITH ACUTE}.example",
                    "", "a.example."):
            self.assertIn("--dns", str(self.assertRaises(PKIError, deviceNames, "o", "d",
                                                         dns=[dns])))
        self.assertEqual(serverNames("o", ["*.ward3.example"])[1][0].value, "*.ward3.example")

    def test_namesFor(self) -> None:
        """
        L{namesFor} builds a kind's names from the C{pki} options given,
        refusing an option that kind does not take and a client without a
        device identity.
        """
        subject, sans = namesFor("o", "client", {"--device-id": "pump-1", "--dns": ["p.example"]},
                                 "hospital.example")
        self.assertEqual([n.value for n in sans],
                         ["spiffe://hospital.example/device/pump-1", "p.example"])
        self.assertEqual(namesFor("o", "node", {"--dns": ["n.example"]}),
                         nodeNames("o", ["n.example"]))
        self.assertIn("--ip is not a name of a client certificate", str(self.assertRaises(
            PKIError, namesFor, "o", "client", {"--device-id": "d", "--ip": ["10.0.0.1"]})))
        self.assertIn("--device-id", str(self.assertRaises(PKIError, namesFor, "o", "client",
                                                           {"--dns": ["p.example"]})))
        self.assertIn("--spiffe is not a name of a server certificate", str(self.assertRaises(
            PKIError, namesFor, "o", "server", {"--dns": ["s"], "--spiffe": "spiffe://h/x"})))
