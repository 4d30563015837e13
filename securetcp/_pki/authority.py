# -*- test-case-name: tests.test_pki_authority -*-
"""
Keys, certificates and CRLs as values: an L{Authority} (a CA certificate
and its private key, in memory) issues server, device and intermediate CA
certificates and signs CRLs, and writes nothing anywhere.  The CA on disk
(L{securetcp._pki.CertificateAuthority}) keeps one in a directory; tests
and benchmarks use it directly.

    ca = Authority.create(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Devices CA")]))
    server = ca.issue(serverName, [ExtendedKeyUsageOID.SERVER_AUTH],
                      sans=[x509.DNSName("localhost")], validity=Validity.days(90))
    certificatePEM(server.certificate), keyPEM(server.key)
    crl = ca.crl([Revoked(serial, when, x509.ReasonFlags.key_compromise)], number=2,
                 validity=Validity.days(7))

A key made elsewhere (the public key of a certificate signing request) is
certified the same way, without its private key::

    certificate = ca.certify(subject, NODE_USAGES, sans, request.public_key())

What it will not do, on purpose: sign a key every securetcp profile
refuses (RSA under 2048 bits, an elliptic curve other than P-256, P-384 or
P-521), or issue a certificate that outlives its CA.
"""

from __future__ import annotations

import datetime
from typing import Optional, Sequence, Union

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from securetcp.errors import PKIError

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey]

#: The extended key usages of a server, a client (device) and a node that
#: is both (a DICOM node acting as SCU and SCP with one certificate).
SERVER_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH,)
CLIENT_USAGES = (ExtendedKeyUsageOID.CLIENT_AUTH,)
NODE_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)

MIN_RSA_BITS = 2048
#: The elliptic curves a key may be on.
CURVES = ("secp256r1", "secp384r1", "secp521r1")
#: How far before the moment of issue a validity period starts, so a peer
#: whose clock is a little behind accepts a certificate at once.
CLOCK_SKEW = datetime.timedelta(minutes=5)


def now() -> datetime.datetime:
    """
    The current time, in UTC.
    """
    return datetime.datetime.now(datetime.UTC)


@attrs.frozen
class Validity:
    """
    When a certificate is valid, or when a CRL was issued and when the next
    one is due.

    @ivar notBefore: the start (a certificate's notBefore, a CRL's
        thisUpdate).
    @ivar notAfter: the end (a certificate's notAfter, a CRL's nextUpdate).
    """

    notBefore: datetime.datetime
    notAfter: datetime.datetime

    @classmethod
    def days(cls, days: int, at: Optional[datetime.datetime] = None) -> Validity:
        """
        From L{CLOCK_SKEW} before C{at} (by default, now) to C{days} days
        after it.

        @raise PKIError: if C{days} is less than 1.
        """
        if days < 1:
            raise PKIError(f"--days {days}", "must be at least 1")
        moment = at if at is not None else now()
        return cls(moment - CLOCK_SKEW, moment + datetime.timedelta(days=days))


@attrs.frozen
class Credential:
    """
    A certificate and its private key.
    """

    certificate: x509.Certificate
    key: PrivateKey


@attrs.frozen
class Revoked:
    """
    One entry of a CRL.

    @ivar serial: the revoked certificate's serial number.
    @ivar time: when it was revoked.
    @ivar reason: why; C{unspecified} is written as no reason at all, as
        RFC 5280 asks.
    """

    serial: int
    time: datetime.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def newKey(rsaBits: Optional[int] = None) -> PrivateKey:
    """
    A new ECDSA P-256 key, or an RSA key of C{rsaBits} bits.

    @raise PKIError: for RSA shorter than L{MIN_RSA_BITS}.
    """
    if rsaBits is None:
        return ec.generate_private_key(ec.SECP256R1())
    if rsaBits < MIN_RSA_BITS:
        raise PKIError(f"--rsa {rsaBits}", f"RSA keys shorter than {MIN_RSA_BITS} bits are "
                       "refused by every securetcp profile but legacy",
                       f"use --rsa {MIN_RSA_BITS} or more, or leave --rsa out for ECDSA P-256")
    return rsa.generate_private_key(65537, rsaBits)


def _checkStrength(key: Union[PrivateKey, PublicKey]) -> None:
    """
    Refuse an RSA key under L{MIN_RSA_BITS} bits or an elliptic-curve key
    on a curve not in L{CURVES}.
    """
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < MIN_RSA_BITS:
            raise PKIError(f"RSA-{key.key_size} key", "is refused by every securetcp profile "
                           "but legacy", f"use RSA-{MIN_RSA_BITS} or more, or ECDSA P-256")
    elif key.curve.name not in CURVES:
        raise PKIError(f"ECDSA {key.curve.name} key", "is not on a curve securetcp accepts",
                       "use ECDSA P-256, P-384 or P-521")


def checkKey(key: object) -> PrivateKey:
    """
    C{key}, if this authority would sign it.

    @raise PKIError: if it is not an ECDSA key on one of L{CURVES} or an RSA
        key of at least L{MIN_RSA_BITS} bits.
    """
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise PKIError(type(key).__name__, "is not an ECDSA or RSA private key")
    _checkStrength(key)
    return key


def checkPublicKey(key: object) -> PublicKey:
    """
    C{key}, a public key made elsewhere, if this authority would certify
    it: the same rules as L{checkKey}.

    @raise PKIError: if L{checkKey} would refuse its private key.
    """
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise PKIError(type(key).__name__, "is not an ECDSA or RSA public key",
                       "make an ECDSA P-256 key, or RSA of at least "
                       f"{MIN_RSA_BITS} bits")
    _checkStrength(key)
    return key


def certificatePEM(certificate: x509.Certificate) -> bytes:
    """
    C{certificate} as PEM.
    """
    return certificate.public_bytes(serialization.Encoding.PEM)


def keyPEM(key: PrivateKey, passphrase: Optional[bytes] = None) -> bytes:
    """
    C{key} as PKCS#8 PEM, encrypted with C{passphrase} if one is given.
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def _keyUsage(signsCertificates: bool, keyEncipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=keyEncipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=signsCertificates,
                         crl_sign=signsCertificates, encipher_only=False, decipher_only=False)


def _authorityInformation(ocspURL: Optional[str],
                          caIssuersURL: Optional[str]) -> Optional[x509.AuthorityInformationAccess]:
    descriptions = []
    if caIssuersURL is not None:
        descriptions.append(x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(caIssuersURL)))
    if ocspURL is not None:
        descriptions.append(x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocspURL)))
    return x509.AuthorityInformationAccess(descriptions) if descriptions else None


@attrs.frozen
class Authority:
    """
    A certificate authority in memory: its certificate and private key.

    @ivar certificate: the CA certificate.
    @ivar key: its private key.
    """

    certificate: x509.Certificate
    key: PrivateKey

    @classmethod
    def create(cls, subject: x509.Name, key: Optional[PrivateKey] = None,
               validity: Optional[Validity] = None, pathLength: Optional[int] = 0) -> Authority:
        """
        A self-signed CA named C{subject}.

        @param key: its key (by default a new ECDSA P-256 key).
        @param validity: by default ten years from now.
        @param pathLength: how many intermediate CAs may follow it (C{0}:
            it issues end-entity certificates only; C{None}: no limit).
        """
        key = checkKey(key if key is not None else newKey())
        validity = validity or Validity.days(3650)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity.notBefore).not_valid_after(validity.notAfter)
            .add_extension(x509.BasicConstraints(ca=True, path_length=pathLength), critical=True)
            .add_extension(_keyUsage(True, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def _builder(self, subject: x509.Name, key: Union[PrivateKey, PublicKey],
                 validity: Optional[Validity]) -> x509.CertificateBuilder:
        """
        A certificate for C{key} named C{subject}, issued by this CA, valid
        for C{validity} (by default 397 days) but never longer than the CA,
        with the key identifiers of both.
        """
        validity = validity or Validity.days(397)
        public = key if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) \
            else key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity.notBefore)
            .not_valid_after(min(validity.notAfter, self.certificate.not_valid_after_utc))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )

    def issue(self, subject: x509.Name, usages: Sequence[x509.ObjectIdentifier],
              sans: Sequence[x509.GeneralName] = (), key: Optional[PrivateKey] = None,
              validity: Optional[Validity] = None, ocspURL: Optional[str] = None,
              caIssuersURL: Optional[str] = None) -> Credential:
        """
        An end-entity certificate named C{subject} for the extended key
        C{usages} (e.g. C{serverAuth}) and subject alternative names
        C{sans}, and its key.

        @param key: the key to certify (by default a new ECDSA P-256 key).
        @param validity: by default 397 days from now; cut at the CA's end.
        @param ocspURL: the OCSP responder to name in the Authority
            Information Access extension, if any.
        @param caIssuersURL: where the CA's certificate is published, for
            the same extension, if anywhere.
        @raise PKIError: if C{key} is one L{checkKey} refuses.
        """
        key = checkKey(key if key is not None else newKey())
        return Credential(self.certify(subject, usages, sans, key.public_key(), validity,
                                       ocspURL, caIssuersURL), key)

    def certify(self, subject: x509.Name, usages: Sequence[x509.ObjectIdentifier],
                sans: Sequence[x509.GeneralName], key: PublicKey,
                validity: Optional[Validity] = None, ocspURL: Optional[str] = None,
                caIssuersURL: Optional[str] = None) -> x509.Certificate:
        """
        An end-entity certificate for the public C{key} (from a certificate
        signing request, say), as L{issue} makes one for a new key.

        @raise PKIError: if C{key} is one L{checkPublicKey} refuses.
        """
        key = checkPublicKey(key)
        encipherment = isinstance(key, rsa.RSAPublicKey) and (
            ExtendedKeyUsageOID.SERVER_AUTH in usages)
        builder = (
            self._builder(subject, key, validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_keyUsage(False, encipherment), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)),
                                            critical=False)
        access = _authorityInformation(ocspURL, caIssuersURL)
        if access is not None:
            builder = builder.add_extension(access, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issueAuthority(self, subject: x509.Name, key: Optional[PrivateKey] = None,
                       validity: Optional[Validity] = None,
                       pathLength: Optional[int] = 0) -> Authority:
        """
        An intermediate CA named C{subject}, issued by this one.

        @param pathLength: as for L{create}.
        """
        key = checkKey(key if key is not None else newKey())
        certificate = (
            self._builder(subject, key, validity or Validity.days(3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=pathLength), critical=True)
            .add_extension(_keyUsage(True, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return Authority(certificate, key)

    def crl(self, revoked: Sequence[Revoked] = (), number: int = 1,
            validity: Optional[Validity] = None) -> x509.CertificateRevocationList:
        """
        A CRL listing C{revoked}, with CRL number C{number}.

        @param validity: its thisUpdate and nextUpdate (by default, a week
            from now).
        """
        validity = validity or Validity.days(7)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(validity.notBefore)
            .next_update(validity.notAfter)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        for entry in revoked:
            item = (x509.RevokedCertificateBuilder()
                    .serial_number(entry.serial).revocation_date(entry.time))
            if entry.reason is not x509.ReasonFlags.unspecified:
                item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
            builder = builder.add_revoked_certificate(item.build())
        return builder.sign(self.key, hashes.SHA256())
