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

Twisted's in-memory transport cannot half-close (its C{loseWriteConnection}
does nothing); with C{halfClose=True} the connection uses
L{HalfCloseableTransport}, which can, as TCP does.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.task import Clock
from twisted.test.iosim import FakeTransport, IOPump, connectedServerAndClient
from zope.interface import implementer

__all__ = [
    "SERVER_ADDRESS",
    "CLIENT_ADDRESS",
    "HalfCloseableTransport",
    "HalfClosePump",
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


class HalfCloseableTransport(FakeTransport):
    """
    An in-memory transport that half-closes as TCP does: after
    C{loseWriteConnection()}, or C{loseConnection()}, once what was written
    has been delivered, a FIN goes to the peer: its protocol gets
    C{readConnectionLost()} if it provides L{IHalfCloseableProtocol}, else
    the connection closes.  After C{loseWriteConnection()} this side's
    protocol gets C{writeConnectionLost()}.  L{HalfClosePump} delivers the
    FIN.

    @ivar finSent: the FIN has been delivered to the peer.
    @ivar finReceived: the peer's FIN has been delivered here.
    """

    writeClosing = False
    finSent = False
    finReceived = False

    def loseWriteConnection(self) -> None:
        self.writeClosing = True

    def write(self, data: bytes) -> None:
        if self.finSent:
            return
        super().write(data)


class HalfClosePump(IOPump):
    """
    An L{IOPump} for L{HalfCloseableTransport}s: when no data moves, it
    delivers a pending FIN before a pending close (as TCP's close sends a
    FIN first).
    """

    def pump(self, debug: bool = False, advanceClock: bool = True) -> bool:
        if advanceClock:
            self.clock.advance(0)
        serverData = self.serverIO.getOutBuffer()
        clientData = self.clientIO.getOutBuffer()
        self.clientIO._checkProducer()
        self.serverIO._checkProducer()
        if clientData:
            self.serverIO.bufferReceived(clientData)
        if serverData:
            self.clientIO.bufferReceived(serverData)
        if clientData or serverData:
            return True
        for mine, theirs in ((self.clientIO, self.serverIO), (self.serverIO, self.clientIO)):
            if (mine.writeClosing or mine.disconnecting) and not mine.finSent \
                    and not mine.disconnected:
                mine.finSent = True
                theirs.finReceived = True
                ours = IHalfCloseableProtocol(mine.protocol, None)
                if ours is not None and not mine.disconnecting:
                    ours.writeConnectionLost()
                peer = IHalfCloseableProtocol(theirs.protocol, None)
                if peer is not None and not theirs.disconnecting:
                    peer.readConnectionLost()
                elif not mine.disconnecting:
                    theirs.loseConnection()
                return True
        # a close: IOPump's way
        return bool(super().pump(debug, advanceClock=False))


def _connectHalfCloseable(server: IProtocol, client: IProtocol, clock: Clock,
                          greet: bool) -> HalfClosePump:
    serverIO = HalfCloseableTransport(server, isServer=True,
                                      hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS)
    clientIO = HalfCloseableTransport(client, isServer=False,
                                      hostAddress=CLIENT_ADDRESS, peerAddress=SERVER_ADDRESS)
    server.makeConnection(serverIO)
    client.makeConnection(clientIO)
    pump = HalfClosePump(client, server, clientIO, serverIO, False, clock=clock)
    if greet:
        pump.flush()
    return pump


def connectProtocols(
    serverFactory: IProtocolFactory,
    clientFactory: IProtocolFactory,
    clock: Clock,
    greet: bool = True,
    halfClose: bool = False,
) -> Tuple[Any, Any, IOPump]:
    """
    Build one protocol from each factory and connect them in memory with
    addresses L{SERVER_ADDRESS} and L{CLIENT_ADDRESS}.

    @param greet: pump until quiet before returning (completing a TLS
        handshake, for instance).
    @param halfClose: connect them with L{HalfCloseableTransport}s and a
        L{HalfClosePump}.
    @return: C{(client, server, pump)}, in the order Twisted's
        C{connectedServerAndClient} uses.
    """
    if halfClose:
        server = serverFactory.buildProtocol(CLIENT_ADDRESS)
        client = clientFactory.buildProtocol(SERVER_ADDRESS)
        assert server is not None and client is not None
        return client, server, _connectHalfCloseable(server, client, clock, greet)
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
    halfClose: bool = False,
) -> InMemoryConnection:
    """
    Connect a securetcp server endpoint's wrapping (its C{wrapFactory}) to a
    securetcp client endpoint's wrapping in memory, and (with C{greet}) pump
    until quiet, which completes or fails the handshake.

    Both endpoints must have been built with C{clock=clock}.

    @param halfClose: see L{connectProtocols}.
    """
    serverTLS = serverEndpoint.wrapFactory(serverApp)
    clientTLS, clientGate = clientEndpoint.wrapFactory(clientApp)
    client, server, pump = connectProtocols(serverTLS, clientTLS, clock, greet, halfClose)
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

    def __init__(self, serverFactory: IProtocolFactory, clock: Clock,
                 halfClose: bool = False) -> None:
        self.serverFactory = serverFactory
        self.clock = clock
        self.halfClose = halfClose
        self.pump: Optional[IOPump] = None
        self.server: Any = None
        self.client: Any = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        self.client, self.server, self.pump = connectProtocols(
            self.serverFactory, protocolFactory, self.clock, greet=False,
            halfClose=self.halfClose)
        return succeed(self.client)
