# -*- test-case-name: tests.test_ocsp -*-
"""
OCSP requests and responses as pure functions of values: building a
request, validating a response (signature, responder authorisation,
certificate, nonce, freshness) and saying what it asserts, and finding a
certificate's issuer::

    request, nonce = buildRequest(leaf, issuer)
    status = validateResponse(der, leaf, issuer, nonce, now)   # -> OCSPStatus

Sending requests, caching answers and stapling are in
L{securetcp.revocation.ocsp}.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

#: Allowed clock skew between us and the responder.
SKEW = datetime.timedelta(minutes=5)


@attrs.frozen
class OCSPStatus:
    """
    The outcome of one OCSP check.

    @ivar status: C{"good"}, C{"revoked"} or C{"unknown"} (the responder
        does not know the certificate, or no valid answer could be had).
    @ivar detail: why, for the audit log.
    @ivar revocationReason: e.g. C{"keyCompromise"}, when revoked.
    @ivar revocationTime: ISO time, when revoked.
    @ivar nextUpdate: until when the answer may be cached.
    @ivar reachable: C{False} when the responder could not be asked or its
        answer was invalid (as opposed to an authoritative "unknown").
    """

    status: str
    detail: str = ""
    revocationReason: Optional[str] = None
    revocationTime: Optional[str] = None
    nextUpdate: Optional[datetime.datetime] = None
    reachable: bool = True


def responderURL(certificate: x509.Certificate) -> Optional[str]:
    """
    The OCSP responder named in a certificate's Authority Information Access
    extension, if any.
    """
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return None
    for description in aia.value:
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
                description.access_location, x509.UniformResourceIdentifier):
            return description.access_location.value
    return None


def buildRequest(leaf: x509.Certificate, issuer: x509.Certificate,
                 nonce: bool = True) -> Tuple[bytes, Optional[bytes]]:
    """
    A DER OCSP request for C{leaf}, with a 16-byte nonce when asked.

    @return: the request and the nonce (or C{None}).
    """
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1())
    value = os.urandom(16) if nonce else None
    if value is not None:
        builder = builder.add_extension(x509.OCSPNonce(value), critical=False)
    request = builder.build()
    from cryptography.hazmat.primitives.serialization import Encoding

    return request.public_bytes(Encoding.DER), value


def _verifySignature(publicKey: Any, signature: bytes, data: bytes, algorithm: Any) -> bool:
    try:
        if isinstance(publicKey, rsa.RSAPublicKey):
            publicKey.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(publicKey, ec.EllipticCurvePublicKey):
            publicKey.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(publicKey, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            publicKey.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _signedByIssuer(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    return _verifySignature(issuer.public_key(), certificate.signature,
                            certificate.tbs_certificate_bytes,
                            certificate.signature_hash_algorithm)


def _responderCertificate(response: ocsp.OCSPResponse, issuer: x509.Certificate,
                          now: datetime.datetime) -> Optional[x509.Certificate]:
    """
    The certificate whose key signed C{response}, if it is authorised: the
    issuer itself, or a delegated responder certificate issued by it with
    the OCSP-signing EKU (RFC 6960 section 4.2.2.2).
    """
    def named(cert: x509.Certificate) -> bool:
        if response.responder_name is not None:
            return cert.subject == response.responder_name
        digest = hashes.Hash(hashes.SHA1())
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        # the key hash is over the BIT STRING value of the key: compare via
        # cryptography's own helper
        del digest, spki
        return x509.SubjectKeyIdentifier.from_public_key(
            cert.public_key()).digest == response.responder_key_hash

    if named(issuer):
        return issuer
    for candidate in response.certificates:
        if not named(candidate) or not _signedByIssuer(candidate, issuer):
            continue
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            continue
        if not (candidate.not_valid_before_utc - SKEW <= now <= candidate.not_valid_after_utc + SKEW):
            continue
        return candidate
    return None


def _singleResponse(response: ocsp.OCSPResponse, leaf: x509.Certificate,
                    issuer: x509.Certificate) -> Any:
    """
    The single response of C{response} about C{leaf} (serial, issuer name
    and key hashes), or C{None}.
    """
    for candidate in response.responses:
        if candidate.serial_number != leaf.serial_number:
            continue
        algorithm = candidate.hash_algorithm
        expected = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
        if (candidate.issuer_name_hash == expected.issuer_name_hash
                and candidate.issuer_key_hash == expected.issuer_key_hash):
            return candidate
    return None


def validateResponse(der: bytes, leaf: x509.Certificate, issuer: x509.Certificate,
                     nonce: Optional[bytes], now: datetime.datetime) -> OCSPStatus:
    """
    Validate a DER OCSP response for C{leaf} and say what it asserts.

    Checks: the response parses and is successful; it is signed by the
    issuer or by a responder the issuer authorised; it is about this
    certificate (serial, issuer name and key hashes); its nonce matches when
    we sent one and the responder echoed it; and C{thisUpdate} /
    C{nextUpdate} bracket now (with L{SKEW}).  Anything else gives
    C{status="unknown", reachable=False} with the reason.
    """
    def invalid(detail: str) -> OCSPStatus:
        return OCSPStatus("unknown", f"invalid OCSP response: {detail}", reachable=False)

    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        return invalid("not a DER OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return invalid(f"responder answered {response.response_status.name}")
    responder = _responderCertificate(response, issuer, now)
    if responder is None:
        return invalid("not signed by the issuer or a responder it authorised")
    if not _verifySignature(responder.public_key(), response.signature,
                            response.tbs_response_bytes, response.signature_hash_algorithm):
        return invalid("bad signature")
    single = _singleResponse(response, leaf, issuer)
    if single is None:
        return invalid("it does not cover this certificate")
    if nonce is not None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is not None and echoed != nonce:
            return invalid("nonce mismatch (a replayed response?)")
    thisUpdate = single.this_update_utc
    nextUpdate = single.next_update_utc
    if thisUpdate > now + SKEW:
        return invalid(f"thisUpdate {thisUpdate:%Y-%m-%d %H:%M} UTC is in the future")
    if nextUpdate is not None and nextUpdate < now - SKEW:
        return invalid(f"stale: nextUpdate {nextUpdate:%Y-%m-%d %H:%M} UTC has passed")
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return OCSPStatus("good", "OCSP: good", nextUpdate=nextUpdate)
    if status == ocsp.OCSPCertStatus.REVOKED:
        # the RFC 5280 name (keyCompromise), as CRL rejections record it
        reason = single.revocation_reason.value if single.revocation_reason else None
        when = single.revocation_time_utc
        return OCSPStatus("revoked", "OCSP: revoked", revocationReason=reason,
                          revocationTime=when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None,
                          nextUpdate=nextUpdate)
    return OCSPStatus("unknown", "OCSP: the responder does not know this certificate",
                      nextUpdate=nextUpdate)



def findIssuer(leaf: x509.Certificate,
               candidates: Sequence[x509.Certificate]) -> Optional[x509.Certificate]:
    """
    The certificate among C{candidates} that issued C{leaf}.
    """
    for candidate in candidates:
        if _signedByIssuer(leaf, candidate):
            return candidate
    return None
