"""
Servers behind a load balancer, in memory: PROXY protocol headers (v1
lines and v2 binary headers with TLVs) as a load balancer writes them, a
client that sends one before its TLS (or plaintext) protocol, and
L{InMemoryTestCase}, whose server endpoints listen through
L{CapturingEndpoint} so connections made in memory get every wrapper
C{listen} adds.

    class Tests(InMemoryTestCase):
        def test_x(self):
            app = AddressRecordingFactory()
            server = self.listen(app, proxyProtocol="v2")
            tls, gate = self.tlsClient(RecordingFactory())
            client, proto, pump = connectThrough(server, v2Proxy(), self.clock, tls)
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp._below.proxyprotocol import V2_SIGNATURE
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint

from ._iosim import CLIENT_ADDRESS, IOPump, connectProtocols
from ._pki import TestPKI, sharedPKI

#: The original client, as a load balancer's PROXY header names it.
CLIENT_V4 = IPv4Address("TCP", "203.0.113.7", 51515)
CLIENT_V6 = IPv6Address("TCP", "2001:db8::7", 51516)
#: The address the client connected to, on the load balancer.
FRONT_V4 = IPv4Address("TCP", "198.51.100.1", 443)
FRONT_V6 = IPv6Address("TCP", "2001:db8::1", 443)
#: The load balancer, as the in-memory server sees its TCP peer.
BALANCER = f"{CLIENT_ADDRESS.host}:{CLIENT_ADDRESS.port}"


# -- building headers -------------------------------------------------------


def v1(family: str, source: str, destination: str, sport: Any, dport: Any) -> bytes:
    """
    A PROXY v1 line.
    """
    return f"PROXY {family} {source} {destination} {sport} {dport}\r\n".encode("ascii")


def v2(command: int = 1, family: int = 0x11, body: bytes = b"", version: int = 2) -> bytes:
    """
    A PROXY v2 header with C{body} (addresses, then TLVs) after it.
    """
    return (V2_SIGNATURE + bytes([(version << 4) | command, family])
            + struct.pack("!H", len(body)) + body)


def v2Addresses(source: Any, destination: Any) -> Tuple[int, bytes]:
    """
    The family byte and address block of a v2 header for two Twisted
    addresses of the same family.
    """
    kind = socket.AF_INET if isinstance(source, IPv4Address) else socket.AF_INET6
    family = 0x11 if kind == socket.AF_INET else 0x21
    return family, (socket.inet_pton(kind, source.host) + socket.inet_pton(kind, destination.host)
                    + struct.pack("!HH", source.port, destination.port))


def v2Proxy(source: Any = CLIENT_V4, destination: Any = FRONT_V4, tlvs: bytes = b"") -> bytes:
    """
    A v2 C{PROXY} header naming C{source} and C{destination}.
    """
    family, body = v2Addresses(source, destination)
    return v2(1, family, body + tlvs)


def tlv(kind: int, value: bytes) -> bytes:
    """
    One v2 type-length-value entry.
    """
    return bytes([kind]) + struct.pack("!H", len(value)) + value



# -- in memory ----------------------------------------------------------------


@implementer(IStreamServerEndpoint)
class CapturingEndpoint:
    """
    An inner server endpoint that keeps the factory it is asked to listen
    with, so in-memory connections get every wrapper C{listen} adds.
    """

    factory: Any = None

    def listen(self, factory: IProtocolFactory) -> Deferred[None]:
        self.factory = factory
        return succeed(None)


class HeaderFirst(Protocol):
    """
    A client that writes raw bytes (a PROXY header, as a load balancer
    would) and then hands the connection to C{inner} (a TLS client, or a
    plaintext one).
    """

    def __init__(self, header: bytes, inner: Optional[IProtocol]) -> None:
        self.header = header
        self.inner = inner
        self.lost: Any = None
        self.received = b""

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        if self.header:
            transport.write(self.header)
        if self.inner is not None:
            self.inner.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.inner is not None:
            self.inner.dataReceived(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = reason
        if self.inner is not None:
            self.inner.connectionLost(reason)


class _OneProtocol:
    """
    A protocol factory whose protocols C{build} makes.
    """
    def __init__(self, build: Callable[[], IProtocol]) -> None:
        self.build = build

    def buildProtocol(self, addr: Any) -> IProtocol:
        return self.build()


def connectThrough(serverFactory: IProtocolFactory, header: bytes, clock: Clock,
                   clientFactory: Optional[IProtocolFactory] = None,
                   greet: bool = True) -> Tuple[HeaderFirst, Any, IOPump]:
    """
    Connect, in memory, a client that sends C{header} and then runs a
    protocol of C{clientFactory} (a TLS client factory; none: send nothing
    more) to C{serverFactory} (what a server endpoint's C{listen} passed
    to its inner endpoint).  The server sees the client as L{BALANCER}.

    @return: the L{HeaderFirst} client, the server's outermost protocol and
        the pump.
    """
    def build() -> HeaderFirst:
        inner = clientFactory.buildProtocol(None) if clientFactory is not None else None
        return HeaderFirst(header, inner)

    client, server, pump = connectProtocols(serverFactory, _OneProtocol(build),  # type: ignore
                                            clock, greet)
    return client, server, pump


class EchoProtocol(Protocol):
    """
    Echoes, and records its peer and host as the transport reports them.
    """

    def connectionMade(self) -> None:
        self.peer = self.transport.getPeer()
        self.host = self.transport.getHost()
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.transport.write(data)


class AddressRecordingFactory(Factory):
    """
    Builds L{EchoProtocol}s, keeping each with the address C{buildProtocol}
    was given.
    """

    def __init__(self) -> None:
        self.built: List[Tuple[Any, EchoProtocol]] = []

    def buildProtocol(self, addr: Any) -> EchoProtocol:
        protocol = EchoProtocol()
        protocol.factory = self
        self.built.append((addr, protocol))
        return protocol


class InMemoryTestCase(SynchronousTestCase):
    """
    A test PKI, one L{Clock}, an audit emitter keeping its records, and
    builders for server endpoints (listening through L{CapturingEndpoint})
    and securetcp clients.
    """

    def setUp(self) -> None:
        self.pki: TestPKI = sharedPKI()
        self.clock = Clock()
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(
            Logger(namespace=AUDIT_NAMESPACE, observer=self.events.append))

    @property
    def records(self) -> List[Dict[str, Any]]:
        """
        The audit records emitted so far, but C{policy.loaded}.
        """
        return [e["securetcp_audit"] for e in self.events
                if e["securetcp_audit"]["event"] != "policy.loaded"]

    def recordsOf(self, role: str, event: str) -> List[Dict[str, Any]]:
        """
        The records of C{event} by the C{role} side.
        """
        return [r for r in self.records if r["role"] == role and r["event"] == event]

    def listen(self, app: IProtocolFactory, mutual: bool = True,
               proxyProtocol: Optional[str] = None, permissive: bool = False,
               insecurelyAllowPlaintext: bool = False, **options: Any) -> Any:
        """
        A server endpoint for C{app}; listen, and return the factory its
        inner endpoint was given.
        """
        settings = dict(certKey=self.pki.path("server.pem"),
                        privateKey=self.pki.path("server.key"),
                        caCerts=self.pki.path("ca.pem"))
        settings.update(options)
        inner = CapturingEndpoint()
        endpoint = SecureServerEndpoint(
            self.clock, inner, buildPolicy(**settings), mutual=mutual, clock=self.clock,
            emitter=self.emitter, proxyProtocol=proxyProtocol, permissive=permissive,
            insecurelyAllowPlaintext=insecurelyAllowPlaintext)
        self.successResultOf(endpoint.listen(app))
        return inner.factory

    def tlsClient(self, app: IProtocolFactory, cert: Optional[str] = "client") -> Any:
        """
        A securetcp client's TLS factory and its gate factory.
        """
        settings: Dict[str, Any] = dict(caCerts=self.pki.path("ca.pem"))
        if cert:
            settings.update(certKey=self.pki.path(f"{cert}.pem"),
                            privateKey=self.pki.path(f"{cert}.key"))
        client = SecureClientEndpoint(self.clock, None, buildPolicy(**settings),
                                      hostname="localhost", mutual=bool(cert),
                                      clock=self.clock, emitter=self.emitter)
        return client.wrapFactory(app)
