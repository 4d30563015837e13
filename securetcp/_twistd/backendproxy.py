# -*- test-case-name: tests.test_proxywriter,tests.test_backendproxy -*-
"""
C{twistd securetcp terminate --backend-proxy v2}: the PROXY v2 header the
backend receives before any byte of a connection, built from what the gate
verified (L{securetcp._below.proxywriter} writes it)::

    factory = SpliceFactory(far.connect, backend, reactor, emitter,
                            header=backendProxyHeader)

The header carries the real client's address (the one the audit records
name, after a PROXY header in front if there is one), the audit
connection id as C{PP2_TYPE_UNIQUE_ID}, the SNI as C{PP2_TYPE_AUTHORITY},
the ALPN protocol, C{PP2_TYPE_SSL} with the TLS version, cipher, the client
certificate's common name and the algorithms of securetcp's own
certificate, and the client certificate's SHA-256 fingerprint and URI SAN
in securetcp's TLVs C{0xE0} and C{0xE1}.
"""

from __future__ import annotations

import functools
from typing import Any, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from securetcp._below.proxywriter import (
    MAX_UNIQUE_ID,
    PP2_TYPE_ALPN,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_SECURETCP_FINGERPRINT,
    PP2_TYPE_SECURETCP_URI,
    PP2_TYPE_UNIQUE_ID,
    TLV,
    SSLFacts,
    encodeV2,
    sslTLV,
)
from securetcp._gateprotocol import GateProtocol
from securetcp._twistd.splice import auditedConnectionId

#: the values C{--backend-proxy} takes
BACKEND_PROXY_VERSIONS = ("v2",)

#: OpenSSL's short names of the usual certificate signature algorithms
#: (what HAProxy sends as C{PP2_SUBTYPE_SSL_SIG_ALG})
_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.11": "RSA-SHA256",
    "1.2.840.113549.1.1.12": "RSA-SHA384",
    "1.2.840.113549.1.1.13": "RSA-SHA512",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}


def checkBackendProxy(value: Optional[str]) -> Optional[str]:
    """
    The value of C{--backend-proxy} (or a listener's C{backend-proxy}).

    @raise ValueError: naming the values it takes.
    """
    if value is None or value in BACKEND_PROXY_VERSIONS:
        return value
    raise ValueError(f"{value!r} is not a PROXY protocol version securetcp sends; use v2 "
                     "(v1 cannot carry the client certificate's identity)")


@functools.lru_cache(maxsize=64)
def certificateAlgorithms(certificate: x509.Certificate) -> Tuple[str, str]:
    """
    The signature algorithm and key algorithm of C{certificate} as the
    PROXY protocol's C{SIG_ALG} and C{KEY_ALG} name them: C{("RSA-SHA256",
    "RSA2048")}, C{("ecdsa-with-SHA256", "EC256")}.
    """
    oid = certificate.signature_algorithm_oid.dotted_string
    signature = _SIGNATURE_NAMES.get(oid, oid)
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        keyName = f"RSA{key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        keyName = f"EC{key.curve.key_size}"
    elif isinstance(key, dsa.DSAPublicKey):
        keyName = f"DSA{key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        keyName = "ED25519"
    elif isinstance(key, ed448.Ed448PublicKey):
        keyName = "ED448"
    else:
        keyName = type(key).__name__
    return signature, keyName


def connectionTLVs(transport: Any) -> List[TLV]:
    """
    The TLVs of the admitted connection on C{transport}: the TLS transport
    the application protocol has (wrapping the L{GateProtocol} that
    admitted it), or a plaintext one of permissive mode, which gets no
    C{PP2_TYPE_SSL}.
    """
    tlvs: List[TLV] = []
    connectionId = auditedConnectionId(transport)
    if connectionId is not None:
        tlvs.append((PP2_TYPE_UNIQUE_ID, connectionId.encode("ascii")[:MAX_UNIQUE_ID]))
    gate = getattr(transport, "wrappedProtocol", None)
    if not isinstance(gate, GateProtocol) or not gate.session.get("version"):
        return tlvs
    session, identity = gate.session, gate.identity
    if session.get("alpn"):
        tlvs.append((PP2_TYPE_ALPN, session["alpn"].encode("utf-8")))
    if session.get("sni"):
        tlvs.append((PP2_TYPE_AUTHORITY, session["sni"].encode("utf-8")))
    leaf = gate.gate.inForce.materials.leaf
    signature, key = certificateAlgorithms(leaf) if leaf is not None else (None, None)
    tlvs.append(sslTLV(SSLFacts(
        version=session["version"], cipher=session.get("cipher"),
        commonName=identity.commonName[0] if identity and identity.commonName else None,
        signatureAlgorithm=signature, keyAlgorithm=key,
        certificate=identity is not None, verified=identity is not None,
        resumed=bool(session.get("resumed")))))
    if identity is not None:
        tlvs.append((PP2_TYPE_SECURETCP_FINGERPRINT, bytes.fromhex(identity.sha256)))
        if identity.uri:
            tlvs.append((PP2_TYPE_SECURETCP_URI, identity.uri[0].encode("utf-8")))
    return tlvs


def backendProxyHeader(transport: Any) -> bytes:
    """
    The PROXY v2 header for the backend of the connection on C{transport}:
    from its peer (the client) to its host (securetcp's listening address).
    """
    return encodeV2(transport.getPeer(), transport.getHost(), connectionTLVs(transport))
