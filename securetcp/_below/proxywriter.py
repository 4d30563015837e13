# -*- test-case-name: tests.test_proxywriter -*-
"""
Writing a PROXY protocol v2 header, with TLVs, for the service I{behind}
C{twistd securetcp terminate} (C{--backend-proxy v2}): the real client's
address, and what the TLS handshake verified about it.  Sans-IO; the
reader of the front side is L{securetcp._below.proxyprotocol}::

    header = encodeV2(source, destination, [
        sslTLV(SSLFacts(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384",
                        commonName="PUMP-0042", certificate=True, verified=True)),
        (PP2_TYPE_UNIQUE_ID, b"6f1c0c8a2d4e9b17"),
        (PP2_TYPE_SECURETCP_FINGERPRINT, sha256OfTheClientCertificate),
    ])

The numbers are those of the PROXY protocol specification (HAProxy's
C{proxy-protocol.txt}, section 2.2); securetcp's own TLVs are in the range
the specification leaves to applications (C{0xE0}-C{0xEF}):

  - C{0xE0} (L{PP2_TYPE_SECURETCP_FINGERPRINT}): the SHA-256 fingerprint of
    the client's certificate, 32 raw bytes (of its DER encoding);
  - C{0xE1} (L{PP2_TYPE_SECURETCP_URI}): the client certificate's first URI
    subject alternative name (a SPIFFE ID), UTF-8.

Every header carries a C{PP2_TYPE_CRC32C} TLV, the CRC32c of the whole
header, so a receiver that checks it (HAProxy does) detects a header
damaged on the way.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress

from securetcp._below.proxyprotocol import V2_SIGNATURE

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_SECURETCP_FINGERPRINT = 0xE0
PP2_TYPE_SECURETCP_URI = 0xE1

PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04

#: the specification's bound on C{PP2_TYPE_UNIQUE_ID}
MAX_UNIQUE_ID = 128

_COMMAND_PROXY = 0x21  # version 2, PROXY
_AF_UNSPEC, _TCP4, _TCP6 = 0x00, 0x11, 0x21

TLV = Tuple[int, bytes]


@attrs.frozen
class SSLFacts:
    """
    What C{PP2_TYPE_SSL} says about the client's TLS connection.

    @ivar certificate: the client presented a certificate (on this
        connection, or, if C{resumed}, in the session it resumed).
    @ivar verified: ... and it was verified (the gate admits no other).
    @ivar signatureAlgorithm: and C{keyAlgorithm}: of the certificate
        securetcp presented (the specification's "frontend" certificate),
        e.g. C{"ecdsa-with-SHA256"} and C{"EC256"}.
    """

    version: Optional[str] = None
    cipher: Optional[str] = None
    commonName: Optional[str] = None
    signatureAlgorithm: Optional[str] = None
    keyAlgorithm: Optional[str] = None
    certificate: bool = False
    verified: bool = False
    resumed: bool = False


def tlv(kind: int, value: bytes) -> bytes:
    """
    One TLV: type, 16-bit big-endian length, value.

    @raise ValueError: for a type outside 0-255 or a value longer than
        65535 bytes.
    """
    if not 0 <= kind <= 0xFF:
        raise ValueError(f"TLV type {kind!r} is not a byte")
    if len(value) > 0xFFFF:
        raise ValueError(f"TLV 0x{kind:02x} is {len(value)} bytes long; at most 65535 fit")
    return struct.pack("!BH", kind, len(value)) + value


def sslTLV(facts: SSLFacts) -> TLV:
    """
    The C{PP2_TYPE_SSL} TLV of C{facts}: the client bits, the verify
    result (0: a certificate was presented and verified), and the
    sub-TLVs of the facts known.
    """
    client = PP2_CLIENT_SSL
    if facts.certificate:
        client |= PP2_CLIENT_CERT_SESS
        if not facts.resumed:
            client |= PP2_CLIENT_CERT_CONN
    verify = 0 if facts.certificate and facts.verified else 1
    subs = [(PP2_SUBTYPE_SSL_VERSION, facts.version), (PP2_SUBTYPE_SSL_CN, facts.commonName),
            (PP2_SUBTYPE_SSL_CIPHER, facts.cipher),
            (PP2_SUBTYPE_SSL_SIG_ALG, facts.signatureAlgorithm),
            (PP2_SUBTYPE_SSL_KEY_ALG, facts.keyAlgorithm)]
    body = b"".join(tlv(kind, value.encode("utf-8")) for kind, value in subs if value)
    return PP2_TYPE_SSL, struct.pack("!BL", client, verify) + body


def _addresses(source: Optional[IAddress], destination: Optional[IAddress]) -> Tuple[int, bytes]:
    """
    The address family byte and block: TCP over IPv4 when both ends are
    IPv4, over IPv6 when one is IPv6 (an IPv4 end as C{::ffff:a.b.c.d}),
    C{AF_UNSPEC} (no addresses) for anything else (a UNIX socket).
    """
    ends: List[Tuple[Any, int]] = []
    for address in (source, destination):
        if not isinstance(address, (IPv4Address, IPv6Address)):
            return _AF_UNSPEC, b""
        host = address.host.split("%", 1)[0]  # an IPv6 scope is not sent
        ends.append((ipaddress.ip_address(host), address.port))
    (src, sport), (dst, dport) = ends
    if src.version == 4 and dst.version == 4:
        return _TCP4, src.packed + dst.packed + struct.pack("!HH", sport, dport)

    def six(ip: object) -> bytes:
        if isinstance(ip, ipaddress.IPv4Address):
            return ipaddress.IPv6Address("::ffff:" + str(ip)).packed
        assert isinstance(ip, ipaddress.IPv6Address)
        return ip.packed

    return _TCP6, six(src) + six(dst) + struct.pack("!HH", sport, dport)


def encodeV2(source: Optional[IAddress], destination: Optional[IAddress],
             tlvs: Iterable[TLV] = (), checksum: bool = True) -> bytes:
    """
    A PROXY v2 header (command C{PROXY}) for a connection from C{source}
    to C{destination}, with C{tlvs} and (if C{checksum}) a
    C{PP2_TYPE_CRC32C} TLV, in the order of their types (stable), so that
    a receiver that re-encodes the TLVs to check the CRC computes it over
    the same bytes.

    @raise ValueError: if the header would be longer than the 16-bit
        length field allows, or a TLV is malformed.
    """
    family, addresses = _addresses(source, destination)
    items = list(tlvs)
    if checksum:
        items.append((PP2_TYPE_CRC32C, b"\x00\x00\x00\x00"))
    items.sort(key=lambda item: item[0])
    encoded = [tlv(kind, value) for kind, value in items]
    length = len(addresses) + sum(len(e) for e in encoded)
    if length > 0xFFFF:
        raise ValueError(f"a PROXY v2 header of {length} bytes after its first 16 does "
                         "not fit the 16-bit length field")
    header = V2_SIGNATURE + struct.pack("!BBH", _COMMAND_PROXY, family, length) + addresses
    if not checksum:
        return header + b"".join(encoded)
    at = len(header) + 3 + sum(len(e) for e, (kind, _) in zip(encoded, items, strict=True)
                               if kind < PP2_TYPE_CRC32C)
    header += b"".join(encoded)
    return header[:at] + struct.pack("!L", crc32c(header)) + header[at + 4:]


def _crcTable() -> Sequence[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crcTable()


def crc32c(data: bytes, crc: int = 0) -> int:
    """
    The CRC32c (Castagnoli) of C{data}, continuing from C{crc}, as the
    PROXY protocol's C{PP2_TYPE_CRC32C} (and iSCSI, RFC 3720) compute it.
    """
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
