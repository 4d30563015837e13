# -*- test-case-name: tests.test_proxyprotocol -*-
"""
The PROXY protocol (v1 and v2), parsed I{below} TLS, so a load balancer in
TCP passthrough keeps the real client address in the audit log.

The parser is sans-IO::

    parser = ProxyHeaderParser(versions=("v1", "v2"))
    header, rest = parser.feed(data)     # header is None until complete

and L{ProxyHeaderFactory} wraps the TLS factory: the TLS layer (and the
gate) are connected only once the header has been read, and see the original
client as C{getPeer()}.  A connection without a valid header is refused and
audited as C{proxy_header_invalid}::

    factory = ProxyHeaderFactory(tlsFactory, ("v1", "v2"), reactor, timeout=10,
                                 audit=PreTLSAudit(sink, lambda: endpoint.policy, reactor))
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, Optional, Sequence, Tuple

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IHalfCloseableProtocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from securetcp._below._audit import BelowTLSConnection, PreTLSAudit
from securetcp._below._halfclose import passReadConnectionLost, passWriteConnectionLost
from securetcp.audit.records import addressText

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107
V2_MAX = 16 + 216 + 65535  # header + addresses + TLVs (bounded by the length field)


class InvalidProxyHeader(ValueError):
    """
    The connection did not start with a valid PROXY header.
    """


@attrs.frozen
class ProxyHeader:
    """
    What the load balancer said: the original source and destination
    (C{None} for C{UNKNOWN} / C{LOCAL}, when the balancer itself connected).
    """

    version: str
    source: Optional[IAddress]
    destination: Optional[IAddress]


def _address(host: str, port: int) -> IAddress:
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        return IPv4Address("TCP", host, port)
    return IPv6Address("TCP", host, port)


class ProxyHeaderParser:
    """
    Reads one PROXY header, v1 or v2 (as allowed), from the start of a
    connection.
    """

    def __init__(self, versions: Sequence[str] = ("v1", "v2")) -> None:
        self.versions = tuple(versions)
        self._buffer = b""

    def feed(self, data: bytes) -> Tuple[Optional[ProxyHeader], bytes]:
        """
        @return: the header and the bytes after it, or C{(None, b"")} while
            more is needed.
        @raise InvalidProxyHeader: when the bytes cannot be a header.
        """
        self._buffer += data
        buf = self._buffer
        if buf[:1] == b"P":
            if "v1" not in self.versions:
                raise InvalidProxyHeader("PROXY v1 header, but only v2 is accepted")
            return self._v1(buf)
        if buf[:1] == b"\r":
            if "v2" not in self.versions:
                raise InvalidProxyHeader("PROXY v2 header, but only v1 is accepted")
            return self._v2(buf)
        if buf:
            raise InvalidProxyHeader("the connection does not start with a PROXY header")
        return None, b""

    def _v1(self, buf: bytes) -> Tuple[Optional[ProxyHeader], bytes]:
        prefix = b"PROXY "
        if len(buf) < len(prefix):
            if not prefix.startswith(buf):
                raise InvalidProxyHeader("not a PROXY v1 header")
            return None, b""
        if not buf.startswith(prefix):
            raise InvalidProxyHeader("not a PROXY v1 header")
        end = buf.find(b"\r\n")
        if end == -1:
            if len(buf) > V1_MAX:
                raise InvalidProxyHeader("PROXY v1 header longer than 107 bytes")
            return None, b""
        if end + 2 > V1_MAX:
            raise InvalidProxyHeader("PROXY v1 header longer than 107 bytes")
        line, rest = buf[:end], buf[end + 2:]
        parts = line.decode("ascii", "replace").split(" ")
        if len(parts) >= 2 and parts[1] == "UNKNOWN":
            return ProxyHeader("v1", None, None), rest
        if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
            raise InvalidProxyHeader(f"malformed PROXY v1 header {line[:60]!r}")
        try:
            if not all(p.isascii() and p.isdigit() for p in parts[4:6]):
                raise ValueError("ports are decimal digits")  # int() takes "+80", "8_0"
            src, dst = ipaddress.ip_address(parts[2]), ipaddress.ip_address(parts[3])
            sport, dport = int(parts[4]), int(parts[5])
        except ValueError:
            raise InvalidProxyHeader(f"malformed PROXY v1 addresses {line[:60]!r}") from None
        if (src.version == 4) != (parts[1] == "TCP4") or src.version != dst.version or not (
                0 <= sport <= 65535 and 0 <= dport <= 65535):
            raise InvalidProxyHeader(f"inconsistent PROXY v1 header {line[:60]!r}")
        return ProxyHeader("v1", _address(str(src), sport), _address(str(dst), dport)), rest

    def _v2(self, buf: bytes) -> Tuple[Optional[ProxyHeader], bytes]:
        if len(buf) < 16:
            if not V2_SIGNATURE.startswith(buf[:12]):
                raise InvalidProxyHeader("not a PROXY v2 signature")
            return None, b""
        if buf[:12] != V2_SIGNATURE:
            raise InvalidProxyHeader("not a PROXY v2 signature")
        versionCommand, family = buf[12], buf[13]
        (length,) = struct.unpack("!H", buf[14:16])
        if versionCommand >> 4 != 2:
            raise InvalidProxyHeader(f"PROXY v2 header with version {versionCommand >> 4}")
        if len(buf) < 16 + length:
            return None, b""
        body, rest = buf[16:16 + length], buf[16 + length:]
        command = versionCommand & 0x0F
        if command == 0:  # LOCAL: the balancer's own connection (health check)
            return ProxyHeader("v2", None, None), rest
        if command != 1:
            raise InvalidProxyHeader(f"PROXY v2 command {command}")
        if family == 0x11:  # TCP over IPv4
            if length < 12:
                raise InvalidProxyHeader("PROXY v2 IPv4 addresses truncated")
            src, dst = str(ipaddress.IPv4Address(body[0:4])), str(ipaddress.IPv4Address(body[4:8]))
            sport, dport = struct.unpack("!HH", body[8:12])
        elif family == 0x21:  # TCP over IPv6
            if length < 36:
                raise InvalidProxyHeader("PROXY v2 IPv6 addresses truncated")
            src, dst = (str(ipaddress.IPv6Address(body[0:16])),
                        str(ipaddress.IPv6Address(body[16:32])))
            sport, dport = struct.unpack("!HH", body[32:36])
        elif family == 0x00:
            return ProxyHeader("v2", None, None), rest
        else:
            raise InvalidProxyHeader(f"PROXY v2 address family 0x{family:02x} is not TCP")
        return ProxyHeader("v2", _address(src, sport), _address(dst, dport)), rest


@implementer(IHalfCloseableProtocol)
class ProxyHeaderProtocol(ProtocolWrapper):
    """
    Reads the PROXY header, then connects the wrapped (TLS) protocol, which
    sees the original client as C{getPeer()}.  Half-closes pass through to
    it (the TLS transport tells a half-close from a truncation).

    @ivar proxiedBy: the address of the balancer that connected to us.
    """

    def __init__(self, factory: ProxyHeaderFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        self.header: Optional[ProxyHeader] = None
        self._parser = ProxyHeaderParser(factory.versions)
        self._timeout: Any = None
        self._refused = False
        self.proxiedBy: Optional[str] = None

    def makeConnection(self, transport: Any) -> None:
        # connect ourselves only: the wrapped protocol waits for the header
        self.connected = 1
        self.transport = transport
        self.factory.registerProtocol(self)
        # for the audit of a connection refused before the header is read:
        # the balancer is all we know of the peer
        self.auditConnection = BelowTLSConnection.seen(
            transport.getHost(), transport.getPeer(), addressText(transport.getPeer()))
        self.proxiedBy = self.auditConnection.proxy
        factory: ProxyHeaderFactory = self.factory  # type: ignore[assignment]
        self._timeout = factory.clock.callLater(factory.timeout, self._timedOut)

    def dataReceived(self, data: bytes) -> None:
        if self.header is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._refused:
            return
        try:
            header, rest = self._parser.feed(data)
        except InvalidProxyHeader as e:
            self._refuse("proxy_header_invalid", str(e))
            return
        if header is None:
            return
        self._cancel()
        self.header = header
        self.wrappedProtocol.makeConnection(self)  # type: ignore[arg-type]
        if rest:
            self.wrappedProtocol.dataReceived(rest)

    def readConnectionLost(self) -> None:
        passReadConnectionLost(self.transport,
                               self.wrappedProtocol if self.header is not None else None)

    def writeConnectionLost(self) -> None:
        passWriteConnectionLost(self.wrappedProtocol if self.header is not None else None)

    def getPeer(self) -> IAddress:
        if self.header is not None and self.header.source is not None:
            return self.header.source
        return self.transport.getPeer()  # type: ignore[union-attr]

    def getHost(self) -> IAddress:
        if self.header is not None and self.header.destination is not None:
            return self.header.destination
        return self.transport.getHost()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        self._cancel()
        if self.header is not None:
            super().connectionLost(reason)
            return
        self.factory.unregisterProtocol(self)
        if not self._refused:
            self._audit("peer_closed", "the connection closed before a complete PROXY header")

    def _timedOut(self) -> None:
        self._timeout = None
        factory: ProxyHeaderFactory = self.factory  # type: ignore[assignment]
        self._refuse("handshake_timeout",
                     f"no complete PROXY header after {factory.timeout}s")

    def _refuse(self, reason: str, detail: str) -> None:
        self._refused = True
        self._cancel()
        self._audit(reason, detail)
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _audit(self, reason: str, detail: str) -> None:
        factory: ProxyHeaderFactory = self.factory  # type: ignore[assignment]
        factory.audit.rejected(self.auditConnection, reason, detail)

    def _cancel(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None


class ProxyHeaderFactory(WrappingFactory):
    """
    Wraps the TLS factory of a server endpoint with PROXY header parsing.

    @param audit: a L{PreTLSAudit}, to audit a connection refused before TLS
        (TRANSITIONAL: or the endpoint's C{reject(protocol, reason, detail)}
        callback).
    """

    protocol = ProxyHeaderProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(self, wrappedFactory: Any, versions: Sequence[str], clock: Any,
                 timeout: float, audit: PreTLSAudit) -> None:
        super().__init__(wrappedFactory)
        self.versions = tuple(versions)
        self.clock = clock
        self.timeout = timeout
        self.audit = audit

    def logPrefix(self) -> str:
        inner = getattr(self.wrappedFactory, "logPrefix", None)
        return f"{inner() if inner else type(self.wrappedFactory).__name__} (PROXY)"


def proxiedBy(transport: Any) -> Optional[str]:
    """
    The address of the load balancer that relayed this connection with a
    PROXY header (see L{securetcp._below.proxyprotocol}), if any.
    """
    for _ in range(4):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
        found = getattr(transport, "proxiedBy", None)
        if isinstance(found, str):
            return found
    return None
