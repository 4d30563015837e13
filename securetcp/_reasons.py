# -*- test-case-name: tests.test_reasons -*-
"""
The closed list of machine-readable rejection reasons, and the pure mappings
onto it from OpenSSL's certificate-verification codes and from its error
codes (library, reason), with OpenSSL's error strings as the fallback.

    >>> reasonForVerifyCode(10)
    'expired'
    >>> reasonForErrorCode(SSL_LIBRARY, ALERT_REASON_OFFSET + 48)  # peer's unknown_ca
    'unknown_ca'

The error codes are OpenSSL's C{ERR_LIB_*} and C{SSL_R_*} numbers, which
OpenSSL never renumbers: the same under OpenSSL 3 and 4, whatever the text
says (OpenSSL 4 spells the peer's handshake_failure alert C{"tls alert
handshake failure"}, OpenSSL 3 C{"sslv3 alert handshake failure"}).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

#: Every reason a handshake.rejected audit event (or L{HandshakeRejected})
#: can carry, with its meaning.
REJECTION_REASONS: Mapping[str, str] = {
    "unknown_ca": "the peer's chain does not lead to a trusted CA",
    "expired": "a certificate in the peer's chain has expired",
    "not_yet_valid": "a certificate in the peer's chain is not valid yet",
    "bad_signature": "a signature in the peer's chain does not verify",
    "wrong_key_usage": "the peer's certificate is not for this purpose (EKU/key usage)",
    "weak_key": "a key in the peer's chain is below the policy's minimum size",
    "bad_certificate": "the peer's certificate is malformed or otherwise unacceptable",
    "revoked": "the peer's certificate has been revoked",
    "revocation_unknown": "the revocation status of the peer's chain cannot be established (no CRL for its issuer, CRL expired, OCSP responder unreachable or its answer invalid) under revocation=hard",
    "staple_missing": "the server stapled no OCSP response but the policy requires one (requireStaple)",
    "hostname_mismatch": "the server's certificate is not valid for the expected name",
    "identity_not_allowed": "the peer's identity matches no rule of the allow-list",
    "pin_mismatch": "no certificate in the peer's chain matches a pinned key",
    "no_client_certificate": "the client sent no certificate but one is required",
    "no_server_certificate": "the server presented no certificate",
    "protocol_version_refused": "the peer offered no protocol version the policy allows",
    "no_shared_cipher": "the peer offered no cipher suite or group the policy allows",
    "peer_rejected": "the peer aborted the handshake with an alert",
    "handshake_timeout": "the handshake did not complete in time",
    "not_tls": "the peer did not speak TLS",
    "proxy_header_invalid": "proxyProtocol is on and the connection did not start with a valid PROXY header",
    "peer_closed": "the peer closed the connection during the handshake",
    "audit_unavailable": "the audit log cannot be written and the policy refuses unaudited connections",
    "connection_limit": "maxConnections connections were already open",
    "handshake_limit": "maxHandshakes handshakes were already in progress",
    "protocol_identity_mismatch": "the first message of the application protocol (or a later HL7 message) claims an identity (HL7 MSH-4, DICOM calling AE title, MQTT client identifier...) that the binding rules do not allow the peer's certificate",
    "protocol_malformed": "identity binding: the first message (or a later HL7 message) is not one the protocol expects",
    "protocol_oversized": "identity binding: the first message (or a later HL7 message's MSH) was still incomplete at the protocol's bound",
    "protocol_timeout": "identity binding: the first message did not arrive within bindingTimeout",
    "internal_error": "an unexpected error inside securetcp or OpenSSL",
}

_VERIFY_CODES: Dict[int, str] = {
    2: "unknown_ca",  # unable to get issuer certificate
    3: "revocation_unknown",  # unable to get the issuer's CRL
    4: "bad_signature",  # unable to decrypt certificate signature
    5: "bad_signature",
    6: "bad_signature",
    7: "bad_signature",  # certificate signature failure
    8: "revocation_unknown",  # CRL signature failure
    9: "not_yet_valid",
    10: "expired",
    11: "revocation_unknown",  # CRL not yet valid
    12: "revocation_unknown",  # CRL has expired
    13: "bad_certificate",
    14: "bad_certificate",
    18: "unknown_ca",  # self-signed leaf
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    22: "bad_certificate",  # chain too long
    23: "revoked",
    24: "unknown_ca",  # invalid CA certificate
    25: "bad_certificate",  # path length exceeded
    26: "wrong_key_usage",  # unsupported certificate purpose
    27: "unknown_ca",  # certificate not trusted
    28: "unknown_ca",  # certificate rejected
    32: "wrong_key_usage",  # key usage does not include certificate signing
    62: "hostname_mismatch",
    63: "hostname_mismatch",
    64: "hostname_mismatch",
    66: "weak_key",  # end-entity key too small for the security level
    67: "weak_key",  # CA key too small
    68: "weak_key",  # CA signature digest too weak
}


def reasonForVerifyCode(code: int) -> str:
    """
    The rejection reason for an OpenSSL C{X509_V_ERR_*} code.
    """
    return _VERIFY_CODES.get(code, "bad_certificate")


#: OpenSSL's C{ERR_LIB_SSL}: the library of every TLS error classified here.
SSL_LIBRARY = 20

#: OpenSSL's C{SSL_AD_REASON_OFFSET}: the reason code of an alert received
#: from the peer is this plus the alert's number (RFC 8446, section 6).
ALERT_REASON_OFFSET = 1000

#: The peer's alert (its TLS number) to the reason; any other alert is
#: C{peer_rejected}.  What the peer refused is our side of the handshake.
_PEER_ALERTS: Dict[int, str] = {
    40: "peer_rejected",  # handshake_failure: the peer says no more than that
    41: "no_client_certificate",  # no_certificate (SSL 3)
    42: "bad_certificate",
    43: "wrong_key_usage",  # unsupported_certificate
    44: "revoked",
    45: "expired",
    46: "bad_certificate",  # certificate_unknown
    48: "unknown_ca",
    51: "bad_signature",  # decrypt_error
    70: "protocol_version_refused",
    71: "no_shared_cipher",  # insufficient_security
    116: "no_client_certificate",  # certificate_required (TLS 1.3)
}

#: OpenSSL's own verdicts (C{SSL_R_*} reason codes of C{ERR_LIB_SSL}).
_SSL_REASONS: Dict[int, str] = {
    199: "no_client_certificate",  # peer did not return a certificate
    116: "protocol_version_refused",  # bad protocol version number
    191: "protocol_version_refused",  # no protocols available
    258: "protocol_version_refused",  # unsupported protocol
    396: "protocol_version_refused",  # version too low
    101: "no_shared_cipher",  # no suitable key share
    118: "no_shared_cipher",  # no suitable signature algorithm
    181: "no_shared_cipher",  # no ciphers available
    193: "no_shared_cipher",  # no shared cipher
    295: "no_shared_cipher",  # no suitable groups
    410: "no_shared_cipher",  # no shared groups
    155: "not_tls",  # https proxy request
    156: "not_tls",  # http request
    198: "not_tls",  # packet length too long
    252: "not_tls",  # unknown protocol
    267: "not_tls",  # wrong version number
    313: "not_tls",  # record layer failure
    # a malformed handshake from the peer: garbage framed as TLS records
    152: "not_tls",  # excessive message size
    159: "not_tls",  # length mismatch
    160: "not_tls",  # length too short
    182: "not_tls",  # not on record boundary
    244: "not_tls",  # unexpected message
    294: "peer_closed",  # unexpected eof while reading
}


def reasonForErrorCode(library: int, reason: int) -> Optional[str]:
    """
    The rejection reason for OpenSSL's error code C{(library, reason)}, or
    C{None} when it is not one securetcp classifies (then
    L{reasonForErrorString} is the fallback).
    """
    if library != SSL_LIBRARY:
        return None
    if reason >= ALERT_REASON_OFFSET:
        return _PEER_ALERTS.get(reason - ALERT_REASON_OFFSET, "peer_rejected")
    return _SSL_REASONS.get(reason)


# The fallback, for an error whose code is not known (an OpenSSL whose
# string table cannot be read, an error of another library): substrings of
# OpenSSL's error reason strings, most specific first.
_ERROR_STRINGS = (
    ("peer did not return a certificate", "no_client_certificate"),
    ("certificate required", "no_client_certificate"),
    ("unsupported protocol", "protocol_version_refused"),
    ("no protocols available", "protocol_version_refused"),
    ("protocol version", "protocol_version_refused"),
    ("version too low", "protocol_version_refused"),
    ("no shared cipher", "no_shared_cipher"),
    ("no suitable key share", "no_shared_cipher"),
    ("no suitable signature algorithm", "no_shared_cipher"),
    ("no shared group", "no_shared_cipher"),
    ("no suitable group", "no_shared_cipher"),
    ("no ciphers available", "no_shared_cipher"),
    ("sslv3 alert handshake failure", "peer_rejected"),
    ("tls alert handshake failure", "peer_rejected"),
    ("handshake failure", "no_shared_cipher"),
    ("http request", "not_tls"),
    ("https proxy request", "not_tls"),
    ("wrong version number", "not_tls"),
    ("packet length too long", "not_tls"),
    ("record layer failure", "not_tls"),
    ("unknown protocol", "not_tls"),
    ("tlsv1 alert unknown ca", "unknown_ca"),
    ("alert unknown ca", "unknown_ca"),
    ("alert certificate expired", "expired"),
    ("alert certificate revoked", "revoked"),
    ("alert bad certificate", "bad_certificate"),
    ("alert unsupported certificate", "wrong_key_usage"),
    ("alert certificate unknown", "bad_certificate"),
    ("alert decrypt error", "bad_signature"),
    ("alert protocol version", "protocol_version_refused"),
    ("alert insufficient security", "no_shared_cipher"),
    ("alert", "peer_rejected"),
    # a malformed handshake from the peer (our own parser's verdict, so
    # after the alerts the peer sent us): garbage framed as TLS records
    ("unexpected message", "not_tls"),
    ("excessive message size", "not_tls"),
    ("not on record boundary", "not_tls"),
    ("length too short", "not_tls"),
    ("length mismatch", "not_tls"),
    # a ClientHello whose extensions do not parse (an oversized or
    # NUL-containing server name): the peer's bytes, never our error
    ("bad extension", "not_tls"),
    ("bad packet length", "not_tls"),
    ("decode error", "not_tls"),
    ("unexpected eof", "peer_closed"),
)


def reasonForErrorString(text: str) -> Optional[str]:
    """
    The rejection reason for an OpenSSL error reason string such as
    C{"no shared cipher"}, or C{None} when it says nothing we know.
    """
    lowered = text.lower()
    for needle, reason in _ERROR_STRINGS:
        if needle in lowered:
            return reason
    return None
