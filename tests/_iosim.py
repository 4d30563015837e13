"""
In-memory TLS connections for securetcp's tests, on top of Twisted's private
C{twisted.test.iosim}.  This is the only module under C{tests/} that imports
it, so a change in Twisted's private helper is fixed in one place.

    clock = Clock()
    server = SecureServerEndpoint(clock, None, serverPolicy, clock=clock)
    client = SecureClientEndpoint(clock, None, clientPolicy, clock=clock)
    connection = connectEndpoints(server, client, serverApp, clientApp, clock)
    connection.pump.flush()

Both sides, both C{TLSMemoryBIOFactory}s and the pump share one
L{twisted.internet.task.Clock}: the TLS layer aggregates small writes and
flushes them with C{clock.callLater(0, ...)}, which only runs when the pump
advances that same clock.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.test.iosim import FakeTransport, IOPump, connectedServerAndClient
from zope.interface import implementer

__all__ = [
    "SERVER_ADDRESS",
    "CLIENT_ADDRESS",
    "InMemoryConnection",
    "InMemoryClientEndpoint",
    "IOPump",
    "connectEndpoints",
    "connectProtocols",
]

#: The address the in-memory server listens on, as both sides see it.
SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 6661)
#: The address the in-memory client connects from.
CLIENT_ADDRESS = IPv4Address("TCP", "127.0.0.1", 40404)


def _serverTransport(protocol: IProtocol) -> FakeTransport:
    return FakeTransport(protocol, isServer=True,
                         hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS)


def _clientTransport(protocol: IProtocol) -> FakeTransport:
    return FakeTransport(protocol, isServer=False,
                         hostAddress=CLIENT_ADDRESS, peerAddress=SERVER_ADDRESS)


def connectProtocols(
    serverFactory: IProtocolFactory,
    clientFactory: IProtocolFactory,
    clock: Clock,
    greet: bool = True,
) -> Tuple[Any, Any, IOPump]:
    """
    Build one protocol from each factory and connect them in memory with
    addresses L{SERVER_ADDRESS} and L{CLIENT_ADDRESS}.

    @param greet: pump until quiet before returning (completing a TLS
        handshake, for instance).
    @return: C{(client, server, pump)}, in the order Twisted's
        C{connectedServerAndClient} uses.
    """
    return connectedServerAndClient(
        lambda: serverFactory.buildProtocol(CLIENT_ADDRESS),
        lambda: clientFactory.buildProtocol(SERVER_ADDRESS),
        clientTransportFactory=_clientTransport,
        serverTransportFactory=_serverTransport,
        greet=greet,
        clock=clock,
    )


@attrs.define
class InMemoryConnection:
    """
    One in-memory connection between a securetcp server and client.

    @ivar client: the client's TLS protocol (a C{GatedTLSProtocol}).
    @ivar server: the server's TLS protocol.
    @ivar pump: moves bytes between them; C{pump.flush()} until quiet.
    @ivar clientGate: the client's C{ClientGateFactory}, or C{None} when the
        client is not a securetcp endpoint.
    """

    client: Any
    server: Any
    pump: IOPump
    clientGate: Any = None

    @property
    def serverGate(self) -> Any:
        """
        The server's C{GateProtocol} for this connection.
        """
        return self.server.wrappedProtocol

    @property
    def clientGateProtocol(self) -> Any:
        """
        The client's C{GateProtocol} for this connection.
        """
        return self.client.wrappedProtocol


def connectEndpoints(
    serverEndpoint: Any,
    clientEndpoint: Any,
    serverApp: IProtocolFactory,
    clientApp: IProtocolFactory,
    clock: Clock,
    greet: bool = True,
) -> InMemoryConnection:
    """
    Connect a securetcp server endpoint's wrapping (its C{wrapFactory}) to a
    securetcp client endpoint's wrapping in memory, and (with C{greet}) pump
    until quiet, which completes or fails the handshake.

    Both endpoints must have been built with C{clock=clock}.
    """
    serverTLS = serverEndpoint.wrapFactory(serverApp)
    clientTLS, clientGate = clientEndpoint.wrapFactory(clientApp)
    client, server, pump = connectProtocols(serverTLS, clientTLS, clock, greet)
    return InMemoryConnection(client, server, pump, clientGate)


def connectRaw(
    serverEndpoint: Any,
    serverApp: IProtocolFactory,
    clientProtocol: Callable[[], IProtocol],
    clock: Clock,
    greet: bool = True,
) -> InMemoryConnection:
    """
    Connect a plain (not TLS) client protocol to a securetcp server endpoint's
    wrapping, for peers that misbehave: send nothing, or send plaintext.
    """
    serverTLS = serverEndpoint.wrapFactory(serverApp)

    class _One:
        def buildProtocol(self, addr: Any) -> IProtocol:
            return clientProtocol()

    client, server, pump = connectProtocols(serverTLS, _One(), clock, greet)  # type: ignore[arg-type]
    return InMemoryConnection(client, server, pump)


@implementer(IStreamClientEndpoint)
class InMemoryClientEndpoint:
    """
    An inner client endpoint for L{securetcp.endpoints.SecureClientEndpoint}
    whose C{connect} connects, in memory, to C{serverFactory}.  The pump of
    the last connection is L{pump}; nothing moves until it is pumped.
    """

    def __init__(self, serverFactory: IProtocolFactory, clock: Clock) -> None:
        self.serverFactory = serverFactory
        self.clock = clock
        self.pump: Optional[IOPump] = None
        self.server: Any = None
        self.client: Any = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        self.client, self.server, self.pump = connectProtocols(
            self.serverFactory, protocolFactory, self.clock, greet=False)
        return succeed(self.client)
