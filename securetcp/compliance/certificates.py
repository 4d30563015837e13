# -*- test-case-name: tests.test_check,tests.test_purpose -*-
"""
The facts of a certificate the checklist needs (L{CertificateFacts}) and
the judgements of a certificate that C{check} (our own) and C{probe}
(the server's) share: key type and size, validity, signature, purpose::

    >>> facts = certificateFacts(cert)
    >>> judgeCertificateKey(BENCHMARKS["nist-800-52r2"], facts).status
    'pass'
"""

from __future__ import annotations

import datetime
from typing import Dict, Optional, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from securetcp.compliance.catalogue import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    RENEW_WITHIN_DAYS,
    Benchmark,
    CheckItem,
    item,
)
from securetcp.options import OPTIONS_BY_FIELD

#: the option that names our own certificate: what changes these items
_CERT = OPTIONS_BY_FIELD["credentials.certificate"].name


@attrs.frozen
class CertificateFacts:
    """
    What the checklist needs to know about a certificate.

    @ivar keyType: C{"RSA"}, C{"EC"}, C{"Ed25519"}, C{"Ed448"}, C{"DSA"}.
    @ivar keyBits: the key size in bits (the curve size for EC).
    @ivar curve: the curve's name for EC keys (e.g. C{"secp256r1"}).
    @ivar signatureHash: the signature's hash (e.g. C{"sha256"}), if any.
    @ivar extendedKeyUsage: dotted OIDs of the EKU extension, or C{None}
        when the certificate has none.
    @ivar ocspURL: the OCSP responder its issuer names (AIA), if any.
    """

    subject: str
    issuer: str
    keyType: str
    keyBits: int
    curve: Optional[str]
    signatureHash: Optional[str]
    notBefore: datetime.datetime
    notAfter: datetime.datetime
    extendedKeyUsage: Optional[Tuple[str, ...]] = None
    ocspURL: Optional[str] = None

    @property
    def keyDescription(self) -> str:
        if self.keyType == "EC":
            return f"EC {self.curve} ({self.keyBits} bits)"
        return f"{self.keyType} {self.keyBits} bits"

    def asDict(self) -> Dict[str, object]:
        return {"subject": self.subject, "issuer": self.issuer,
                "key": self.keyDescription, "signatureHash": self.signatureHash,
                "notBefore": self.notBefore.isoformat(),
                "notAfter": self.notAfter.isoformat()}


def certificateFacts(cert: x509.Certificate) -> CertificateFacts:
    """
    The L{CertificateFacts} of a certificate.
    """
    key = cert.public_key()
    curve: Optional[str] = None
    if isinstance(key, rsa.RSAPublicKey):
        kind, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        kind, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        kind, bits = "DSA", key.key_size
    else:  # pragma: no cover
        kind, bits = type(key).__name__, 0
    digest = cert.signature_hash_algorithm
    try:
        eku: Optional[Tuple[str, ...]] = tuple(
            oid.dotted_string for oid in
            cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = None
    ocsp: Optional[str] = None
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        pass
    else:
        for access in aia:
            if access.access_method == x509.oid.AuthorityInformationAccessOID.OCSP:
                ocsp = str(access.access_location.value)
                break
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        keyType=kind, keyBits=bits, curve=curve,
        signatureHash=digest.name if digest is not None else None,
        notBefore=cert.not_valid_before_utc,
        notAfter=cert.not_valid_after_utc,
        extendedKeyUsage=eku,
        ocspURL=ocsp,
    )


def judgeCertificateKey(b: Benchmark, cert: Optional[CertificateFacts],
                        whose: str = "own") -> CheckItem:
    """
    Whether a certificate's public key is of an allowed type and size.
    """
    title = f"{whose} certificate key type and size"
    if cert is None:
        return item(b, "certificate.key", title, NOT_APPLICABLE,
                    "no certificate configured", _CERT)
    described = cert.keyDescription
    if cert.keyType == "RSA":
        if b.minRSABits == 0:
            return item(b, "certificate.key", title, FAIL,
                        f"{described}: {b.title} specifies ECDSA certificates",
                        _CERT)
        if cert.keyBits < b.minRSABits:
            return item(b, "certificate.key", title, FAIL,
                        f"{described} is below {b.minRSABits} bits", _CERT)
        return item(b, "certificate.key", title, PASS,
                    f"{described} (at least {b.minRSABits})", _CERT)
    if cert.keyType == "EC":
        if cert.curve not in b.curves:
            return item(b, "certificate.key", title, FAIL,
                        f"{described}: curve not one of {', '.join(sorted(b.curves))}",
                        _CERT)
        return item(b, "certificate.key", title, PASS, described, _CERT)
    return item(b, "certificate.key", title, FAIL,
                f"{described}: not an RSA or ECDSA key of {b.title}", _CERT)


def judgeCertificateValidity(b: Benchmark, cert: Optional[CertificateFacts],
                             now: datetime.datetime, whose: str = "own") -> CheckItem:
    """
    Whether a certificate is valid at C{now} (and, for benchmarks that limit
    it, whether its lifetime is short enough).
    """
    title = f"{whose} certificate validity"
    if cert is None:
        return item(b, "certificate.validity", title, NOT_APPLICABLE,
                    "no certificate configured", _CERT)
    if now < cert.notBefore:
        return item(b, "certificate.validity", title, FAIL,
                    f"not valid before {cert.notBefore.isoformat()}", _CERT)
    if now >= cert.notAfter:
        return item(b, "certificate.validity", title, FAIL,
                    f"expired on {cert.notAfter.isoformat()}", _CERT)
    lifetime = (cert.notAfter - cert.notBefore).days
    if b.maxLifetimeDays is not None and lifetime > b.maxLifetimeDays:
        return item(b, "certificate.validity", title, FAIL,
                    f"lifetime of {lifetime} days is above {b.maxLifetimeDays}", _CERT)
    left = (cert.notAfter - now).days
    note = f"; renew soon (within {RENEW_WITHIN_DAYS} days)" if left < RENEW_WITHIN_DAYS else ""
    return item(b, "certificate.validity", title, PASS,
                f"valid until {cert.notAfter.isoformat()} ({left} days left){note}",
                _CERT)


_WEAK_HASHES = ("md5", "sha1", "sha224")


def judgeCertificateSignature(b: Benchmark, cert: Optional[CertificateFacts],
                              whose: str = "own") -> CheckItem:
    """
    Whether a certificate is signed with SHA-256 or better.
    """
    title = f"{whose} certificate signature"
    if cert is None:
        return item(b, "certificate.signature", title, NOT_APPLICABLE,
                    "no certificate configured", _CERT)
    if cert.signatureHash in _WEAK_HASHES:
        return item(b, "certificate.signature", title, FAIL,
                    f"signed with {cert.signatureHash}; reissue it with SHA-256 or better",
                    _CERT)
    what = cert.signatureHash or f"{cert.keyType} (no separate hash)"
    return item(b, "certificate.signature", title, PASS, f"signed with {what}", _CERT)


#: the extended key usage each role's certificate needs (dotted OID, name)
_PURPOSE_OIDS = {"server": ("1.3.6.1.5.5.7.3.1", "serverAuth"),
                 "client": ("1.3.6.1.5.5.7.3.2", "clientAuth")}


def judgeCertificatePurpose(b: Benchmark, cert: Optional[CertificateFacts], role: str,
                            whose: str = "own") -> CheckItem:
    """
    Whether a certificate may serve as a TLS C{role} (C{"server"} or
    C{"client"}) certificate: an extended key usage extension, when there
    is one, must include serverAuth (clientAuth), or every peer refuses it.
    """
    title = f"{whose} certificate purpose"
    if cert is None:
        return item(b, "certificate.purpose", title, NOT_APPLICABLE,
                    "no certificate configured", _CERT)
    oid, name = _PURPOSE_OIDS[role]
    if cert.extendedKeyUsage is None:
        return item(b, "certificate.purpose", title, PASS,
                    "no extended key usage extension: any purpose", _CERT)
    if oid not in cert.extendedKeyUsage:
        return item(b, "certificate.purpose", title, FAIL,
                    f"extended key usage {', '.join(cert.extendedKeyUsage)} lacks {name}: "
                    f"peers refuse it as a TLS {role} certificate", _CERT)
    return item(b, "certificate.purpose", title, PASS,
                f"extended key usage includes {name}", _CERT)
