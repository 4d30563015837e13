"""
Tests for half-closes through TLS: L{securetcp.gate.GatedTLSProtocol} (the
peer's close_notify becomes C{readConnectionLost()}, C{loseWriteConnection()}
sends close_notify and keeps reading), L{securetcp.gate.GateProtocol}
(passes them to an application that provides L{IHalfCloseableProtocol}) and
L{securetcp._twistd.splice} (C{twistd securetcp terminate} and C{originate} carry
them across, both ways).

In memory (no sockets, one L{Clock}), under TLS 1.3 and TLS 1.2; over real
loopback sockets with Twisted on both sides; and against peers nobody here
wrote: C{socat} as TLS client, TLS server and plaintext backend, and
Python's C{ssl} module (CPython and the system OpenSSL) for the direction
socat cannot express (receive close_notify, then keep writing).
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import socket
import ssl
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import (
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp._tls._halfclose import GatedTLSProtocol
from securetcp._tls.session import TLSError, ZeroReturnError
from securetcp._twistd.splice import SpliceFactory
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint

from ._iosim import InMemoryClientEndpoint, connectEndpoints, connectProtocols
from ._net import escape
from ._pki import sharedPKI
from ._recording import RecordingProducer
from ._twistd import PEER_TIMEOUT, Program, TapProcessMixin

SOCAT = shutil.which("socat")
VERSIONS = ("TLSv1.3", "TLSv1.2")


# -- application protocols ---------------------------------------------------


class Recorder(Protocol):
    """
    An application protocol that records what happens to it, in order, in
    C{events}: C{("data", bytes)}, C{"readLost"}, C{"writeLost"},
    C{("lost", reason)}.  It does not take half-closes.

    @ivar greeting: written when connected.
    @ivar halfCloseAfterGreeting: call C{loseWriteConnection()} after the
        greeting.
    @ivar replyOnEOF: on C{readConnectionLost()}, write C{b"got N bytes"}
        and close.
    @ivar answerOnEOF: on C{readConnectionLost()}, write this and
        half-close.
    @ivar later: if set, called with the reply or answer function, to call
        it later (C{readConnectionLost()} does not write then).
    """

    greeting = b""
    halfCloseAfterGreeting = False
    replyOnEOF = False
    answerOnEOF = b""
    later: Optional[Callable[[Callable[[], None]], Any]] = None

    def __init__(self) -> None:
        self.events: List[Any] = []
        self.lost: Optional[Failure] = None
        self.whenLost: Deferred[None] = Deferred()
        self.stateAtReadLost: Optional[Tuple[bool, bool]] = None

    @property
    def received(self) -> bytes:
        return b"".join(e[1] for e in self.events if isinstance(e, tuple) and e[0] == "data")

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.greeting:
            self.transport.write(self.greeting)
        if self.halfCloseAfterGreeting:
            self.transport.loseWriteConnection()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.events.append(("data", data))

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.events.append(("lost", reason))
        self.lost = reason
        self.whenLost.callback(None)


@implementer(IHalfCloseableProtocol)
class HalfCloser(Recorder):
    """
    A L{Recorder} that takes half-closes.
    """

    def readConnectionLost(self) -> None:
        assert self.transport is not None
        self.events.append("readLost")
        # (connected, disconnecting) of the transport, when it says
        self.stateAtReadLost = (bool(getattr(self.transport, "connected", True)),
                                bool(getattr(self.transport, "disconnecting", False)))
        if self.later is not None:
            self.later(self.respond)
        else:
            self.respond()

    def respond(self) -> None:
        assert self.transport is not None
        if self.replyOnEOF:
            self.transport.write(b"got %d bytes" % len(self.received))
            self.transport.loseConnection()
        if self.answerOnEOF:
            self.transport.write(self.answerOnEOF)
            self.transport.loseWriteConnection()  # type: ignore[attr-defined]

    def writeConnectionLost(self) -> None:
        self.events.append("writeLost")


class Built(Factory):
    """
    Builds C{protocolClass} protocols with the given attributes and keeps
    every one it built.
    """

    def __init__(self, protocolClass: type = HalfCloser, **attributes: Any) -> None:
        self.protocolClass = protocolClass
        self.attributes = attributes
        self.built: List[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        protocol = self.protocolClass()
        protocol.__dict__.update(self.attributes)
        protocol.factory = self
        self.built.append(protocol)
        return protocol


def eventNames(protocol: Recorder) -> List[str]:
    """
    The kinds of C{protocol}'s events, in order (C{"data"} once per run of
    data), and the type of the C{connectionLost} reason; without
    C{"writeLost"}, whose place depends on when the transport reports it.
    """
    names: List[str] = []
    for event in protocol.events:
        if event == "writeLost":
            continue
        if isinstance(event, tuple) and event[0] == "lost":
            names.append("lost:" + event[1].type.__name__)
        elif isinstance(event, tuple):
            if not names or names[-1] != "data":
                names.append("data")
        else:
            names.append(event)
    return names


class AuditMixin:
    """
    One L{Clock} and an audit emitter whose records are kept.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI("halfclose")
        self.clock = Clock()
        self.logged: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(
            Logger(namespace=AUDIT_NAMESPACE, observer=self.logged.append))

    def records(self, role: str, event: str) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.logged
                if e["securetcp_audit"].get("role") == role
                and e["securetcp_audit"]["event"] == event]

    def policySettings(self, version: Optional[str] = None,
                       server: bool = True) -> Dict[str, Any]:
        settings: Dict[str, Any] = dict(caCerts=self.pki.path("ca.pem"))
        name = "server" if server else "client"
        settings.update(certKey=self.pki.path(f"{name}.pem"),
                        privateKey=self.pki.path(f"{name}.key"))
        if version is not None:
            settings.update(minVersion=version, maxVersion=version)
        return settings

    def policy(self, version: Optional[str] = None, server: bool = True) -> Any:
        return buildPolicy(**self.policySettings(version, server))

    def serverEndpoint(self, version: Optional[str] = None, inner: Any = None,
                       reactor: Any = None) -> SecureServerEndpoint:
        return SecureServerEndpoint(reactor or self.clock, inner, self.policy(version),
                                    mutual=True, clock=reactor or self.clock,
                                    emitter=self.emitter)

    def clientEndpoint(self, inner: Any = None, reactor: Any = None) -> SecureClientEndpoint:
        return SecureClientEndpoint(reactor or self.clock, inner,
                                    self.policy(server=False), hostname="localhost",
                                    mutual=True, clock=reactor or self.clock,
                                    emitter=self.emitter)

    def assertCleanClose(self, role: str, version: str) -> Dict[str, Any]:
        """
        C{role}'s side audited one connection, closed normally (no TLS
        error) under C{version}.
        """
        [closed] = self.records(role, "connection.closed")
        self.assertIsNone(closed["closeReason"], closed)  # type: ignore[attr-defined]
        self.assertEqual(closed["version"], version)  # type: ignore[attr-defined]
        return closed


# -- in memory ------------------------------------------------------------------


class _InMemoryHalfCloseTests(AuditMixin):
    """
    A securetcp server and a securetcp client in memory, connected by
    transports that half-close as TCP does; one subclass per TLS version.
    """

    version: str

    def connect(self, serverApp: Built, clientApp: Built) -> Any:
        connection = connectEndpoints(self.serverEndpoint(self.version), self.clientEndpoint(),
                                      serverApp, clientApp, self.clock, halfClose=True)
        self.assertEqual(len(serverApp.built), 1)  # type: ignore[attr-defined]
        self.assertEqual(len(clientApp.built), 1)  # type: ignore[attr-defined]
        return connection

    def test_clientHalfCloseServerReplies(self) -> None:
        """
        The client writes a request and calls C{loseWriteConnection()}: the
        server application gets the request, then C{readConnectionLost()}
        with its connection still open, and its reply reaches the client.
        When the server closes, both applications get C{connectionLost}
        with L{ConnectionDone}, and both audit records say the connection
        closed normally, with the byte counts.
        """
        serverApp, clientApp = Built(replyOnEOF=True), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        for part in (b"MSH|", b"request", b"|END"):
            client.transport.write(part)
        client.transport.loseWriteConnection()
        connection.pump.flush()

        self.assertEqual(eventNames(server), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(server.received, b"MSH|request|END")
        self.assertEqual(server.stateAtReadLost, (True, False))
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(client.received, b"got 15 bytes")
        serverClosed = self.assertCleanClose("server", self.version)
        self.assertEqual((serverClosed["bytesIn"], serverClosed["bytesOut"]), (15, 12))
        clientClosed = self.assertCleanClose("client", self.version)
        self.assertEqual((clientClosed["bytesIn"], clientClosed["bytesOut"]), (12, 15))

    def test_serverHalfClosesClientKeepsWriting(self) -> None:
        """
        A server application that writes a greeting and half-closes: the
        client application gets the greeting and C{readConnectionLost()},
        and what it writes afterwards still reaches the server.  When the
        client half-closes too, close_notify has gone both ways and both
        applications get C{connectionLost} with L{ConnectionDone}.
        """
        serverApp = Built(greeting=b"HELLO", halfCloseAfterGreeting=True)
        clientApp = Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        connection.pump.flush()
        self.assertEqual(eventNames(client), ["data", "readLost"])
        self.assertEqual(client.received, b"HELLO")
        self.assertEqual(client.stateAtReadLost, (True, False))
        self.assertEqual(eventNames(server), [])

        client.transport.write(b"still talking")
        connection.pump.flush()
        self.assertEqual(server.received, b"still talking")
        self.assertIsNone(server.lost)

        client.transport.loseWriteConnection()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
        self.assertCleanClose("server", self.version)
        self.assertCleanClose("client", self.version)

    def test_finAfterCloseNotifyKeepsConnection(self) -> None:
        """
        The TCP FIN that follows the client's close_notify does not end the
        server's connection: after it has arrived the server application
        can still write, and the client reads it.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        client.transport.loseWriteConnection()
        connection.pump.flush()
        self.assertTrue(connection.server.transport.finReceived)
        self.assertTrue(connection.client.writeClosed)
        self.assertTrue(connection.server.readClosed)
        self.assertEqual(eventNames(server), ["readLost"])
        self.assertEqual(client.events, ["writeLost"])

        server.transport.write(b"late reply")
        connection.pump.flush()
        self.assertEqual(client.received, b"late reply")
        server.transport.loseConnection()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["readLost", "lost:ConnectionDone"])
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])

    def test_notHalfCloseableApplicationIsClosed(self) -> None:
        """
        A server application that does not provide L{IHalfCloseableProtocol}
        gets the request and then C{connectionLost} with L{ConnectionDone},
        as without half-close support; the client's connection closes too.
        """
        serverApp, clientApp = Built(Recorder), Built()
        connection = self.connect(serverApp, clientApp)
        self.assertFalse(IHalfCloseableProtocol.providedBy(connection.serverGate))
        self.assertTrue(IHalfCloseableProtocol.providedBy(connection.clientGateProtocol))
        server, client = serverApp.built[0], clientApp.built[0]
        client.transport.write(b"request")
        client.transport.loseWriteConnection()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "lost:ConnectionDone"])
        self.assertEqual(server.received, b"request")
        self.assertEqual(eventNames(client), ["readLost", "lost:ConnectionDone"])
        self.assertCleanClose("server", self.version)

    def test_finWithoutCloseNotifyIsTruncation(self) -> None:
        """
        A TCP FIN without close_notify is not a half-close: the application
        gets no C{readConnectionLost()} but C{connectionLost} with
        L{ConnectionLost}, as without half-close support.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        client.transport.write(b"partial")
        connection.pump.flush()
        connection.client.transport.loseWriteConnection()  # TCP only
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "lost:ConnectionLost"])
        self.assertIsInstance(server.lost.value, ConnectionLost)
        self.assertIsNotNone(client.lost)
        [closed] = self.records("server", "connection.closed")
        self.assertIsNone(closed["closeReason"])

    def test_bufferedWritesPrecedeCloseNotify(self) -> None:
        """
        Small writes that the TLS layer is still aggregating when
        C{loseWriteConnection()} is called are sent before close_notify:
        every byte arrives before the peer's C{readConnectionLost()}.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        parts = [b"%04d," % n for n in range(500)]
        for part in parts:
            client.transport.write(part)
        client.transport.loseWriteConnection()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "readLost"])
        self.assertEqual(server.received, b"".join(parts))

    def test_writesAfterLoseWriteConnectionDropped(self) -> None:
        """
        Bytes written after C{loseWriteConnection()} are dropped (as TCP
        drops them), without an error and without being counted.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        client.transport.write(b"before")
        client.transport.loseWriteConnection()
        client.transport.write(b"after")
        connection.pump.flush()
        client.transport.write(b"much later")
        connection.pump.flush()
        self.assertEqual(server.received, b"before")
        self.assertEqual(eventNames(server), ["data", "readLost"])
        self.assertIsNone(client.lost)
        self.assertEqual(connection.client.bytesOut, len(b"before"))

    def test_writeNowSendsAtOnceInOrder(self) -> None:
        """
        C{writeNow()} encrypts its bytes at once, with no timed call left
        for them: they reach the peer without the clock moving, after what
        an earlier C{write()} left in Twisted's aggregation of small
        writes; both are counted in C{bytesOut}.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        connection.pump.flush()
        calls = len(self.clock.getDelayedCalls())
        client.transport.writeNow(b"alone,")
        self.assertEqual(len(self.clock.getDelayedCalls()), calls)
        client.transport.write(b"first,")
        client.transport.writeNow(b"second")
        connection.pump.pump(advanceClock=False)
        self.assertEqual(server.received, b"alone,first,second")
        self.assertEqual(connection.client.bytesOut, len(b"alone,first,second"))

    def test_writeNowAfterLoseWriteConnectionDropped(self) -> None:
        """
        C{writeNow()} after C{loseWriteConnection()} drops its bytes as
        C{write()} does, uncounted, and after the connection is lost too.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        client.transport.writeNow(b"before")
        client.transport.loseWriteConnection()
        client.transport.writeNow(b"after")
        connection.pump.flush()
        self.assertEqual(server.received, b"before")
        self.assertEqual(eventNames(server), ["data", "readLost"])
        self.assertEqual(connection.client.bytesOut, len(b"before"))
        client.transport.loseConnection()
        connection.pump.flush()
        client.transport.writeNow(b"lost")
        self.assertEqual(connection.client.bytesOut, len(b"before"))

    def test_producerDefersCloseNotify(self) -> None:
        """
        With a producer registered, close_notify waits until it is
        unregistered (as C{loseWriteConnection} on TCP does); writes made
        meanwhile still go out.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        producer = RecordingProducer()
        client.transport.registerProducer(producer, True)
        client.transport.loseWriteConnection()
        client.transport.write(b"from the producer")
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data"])
        client.transport.unregisterProducer()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "readLost"])
        self.assertEqual(server.received, b"from the producer")
        self.assertNotIn("stop", producer.calls)

    def test_bothHalfCloseAtOnce(self) -> None:
        """
        When both sides half-close at the same time, both applications get
        C{readConnectionLost()} and then C{connectionLost} with
        L{ConnectionDone}.
        """
        serverApp, clientApp = Built(), Built()
        connection = self.connect(serverApp, clientApp)
        server, client = serverApp.built[0], clientApp.built[0]
        server.transport.write(b"s")
        client.transport.write(b"c")
        server.transport.loseWriteConnection()
        client.transport.loseWriteConnection()
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
        self.assertCleanClose("server", self.version)
        self.assertCleanClose("client", self.version)

    def test_closeNotifyLeavesNoReferenceCycle(self) -> None:
        """
        The C{ZeroReturnError} that ends a read at the peer's close_notify
        is freed as soon as the TLS transport has handled it (passed up as a
        half-close, or closing the connection), not left in a reference
        cycle with the transport's frame for the garbage collector (which
        would keep the connection's objects until it runs).
        """
        gc.collect()
        if gc.isenabled():
            gc.disable()
            self.addCleanup(gc.enable)
        serverApp, clientApp = Built(Recorder), Built()
        connection = self.connect(serverApp, clientApp)
        client = clientApp.built[0]
        client.transport.write(b"request")
        client.transport.loseWriteConnection()
        connection.pump.flush()
        # the server closed at the client's close_notify; the client got the
        # server's close_notify as a half-close
        self.assertEqual(eventNames(serverApp.built[0]), ["data", "lost:ConnectionDone"])
        self.assertEqual(eventNames(client), ["readLost", "lost:ConnectionDone"])
        self.assertEqual([o for o in gc.get_objects() if isinstance(o, ZeroReturnError)], [])

    def test_writeRefusedByTLSEndsConnection(self) -> None:
        """
        A write that OpenSSL refuses with a TLS error (here: once a
        close_notify went out behind the transport's back) ends the
        connection: the application gets C{connectionLost} with that error.
        """
        serverApp, clientApp = Built(Recorder), Built()
        connection = self.connect(serverApp, clientApp)
        server = serverApp.built[0]
        server.transport.getHandle().shutdown()
        server.transport.writeNow(b"too late")
        connection.pump.flush()
        self.assertEqual(eventNames(server), ["lost:Error"])
        self.assertIsInstance(server.lost.value, TLSError)


class InMemoryHalfCloseTLS13Tests(_InMemoryHalfCloseTests, SynchronousTestCase):
    """
    Half-closes in memory under TLS 1.3.
    """

    version = "TLSv1.3"


class InMemoryHalfCloseTLS12Tests(_InMemoryHalfCloseTests, SynchronousTestCase):
    """
    Half-closes in memory under TLS 1.2.
    """

    version = "TLSv1.2"


class GateHalfCloseTests(AuditMixin, SynchronousTestCase):
    """
    The interfaces the half-close support declares, and the gate's part
    before and after admission.
    """

    def test_tlsProtocolIsHalfCloseable(self) -> None:
        """
        L{GatedTLSProtocol} provides L{IHalfCloseableProtocol} (towards the
        TCP transport below it) and has C{loseWriteConnection}, whatever
        transport it runs on.
        """
        connection = connectEndpoints(self.serverEndpoint(), self.clientEndpoint(),
                                      Built(), Built(), self.clock, halfClose=True)
        self.assertIsInstance(connection.server, GatedTLSProtocol)
        self.assertTrue(verifyObject(IHalfCloseableProtocol, connection.server))
        self.assertIn("loseWriteConnection", vars(GatedTLSProtocol))

    def test_gateProvidesWhatApplicationProvides(self) -> None:
        """
        The gate provides L{IHalfCloseableProtocol} once it has admitted an
        application that does, and not before.
        """
        connection = connectEndpoints(self.serverEndpoint(), self.clientEndpoint(),
                                      Built(), Built(Recorder), self.clock,
                                      halfClose=True, greet=False)
        self.assertFalse(IHalfCloseableProtocol.providedBy(connection.serverGate))
        connection.pump.flush()
        self.assertTrue(verifyObject(IHalfCloseableProtocol, connection.serverGate))
        self.assertFalse(IHalfCloseableProtocol.providedBy(connection.clientGateProtocol))


    def test_closeNotifyBeforeAdmissionCloses(self) -> None:
        """
        A close_notify that arrives while the server waits for an OCSP
        answer (before the application is connected) closes the connection
        as it always did, even for an application that takes half-closes:
        the peer is audited as C{peer_closed}, and the answer arriving later
        connects nobody.
        """
        serverApp = Built()
        answer: Deferred[bytes] = Deferred()
        asked: List[str] = []

        def post(url: str, body: bytes, timeout: float) -> Deferred[bytes]:
            asked.append(url)
            return answer

        endpoint = SecureServerEndpoint(
            self.clock, None, buildPolicy(ocsp="prefer", ocspResponder="http://ocsp.invalid/",
                                          **self.policySettings()),
            mutual=True, clock=self.clock, emitter=self.emitter, ocspPost=post)
        tls = endpoint.wrapFactory(serverApp)
        clientApp = Built()
        clientTLS, _ = self.clientEndpoint().wrapFactory(clientApp)
        client, server, pump = connectProtocols(tls, clientTLS, self.clock, halfClose=True)
        self.assertEqual(asked, ["http://ocsp.invalid/"])  # the answer is awaited
        [clientProtocol] = clientApp.built
        clientProtocol.transport.write(b"request")
        clientProtocol.transport.loseWriteConnection()
        pump.flush()
        [rejected] = self.records("server", "handshake.rejected")
        self.assertEqual(rejected["reason"], "peer_closed")
        # the responder cannot be reached: under ocsp=prefer the peer would
        # be admitted now, but it has gone
        answer.errback(ConnectionRefusedError())
        pump.flush()
        self.assertEqual(serverApp.built, [])
        self.assertEqual(eventNames(clientProtocol), ["readLost", "lost:ConnectionDone"])


# -- the splice, in memory -------------------------------------------------------


class _Splice:
    """
    C{terminate} in memory: a securetcp client, the splice behind a
    securetcp server endpoint, and a plaintext backend reached through
    C{connectFar}; L{flush} pumps both connections until quiet.
    """

    def __init__(self, test: AuditMixin, backend: Built, idleTimeout: float = 0,
                 far: Optional[Deferred[Any]] = None, client: Optional[Built] = None) -> None:
        self.clock = test.clock
        self.backend = backend
        self.backendPump: Any = None
        self.farDeferred = far
        self.far: Any = None
        splice = SpliceFactory(self.connectFar, "memory backend", test.clock, test.emitter,
                               idleTimeout)
        self.client = client or Built()
        self.connection = connectEndpoints(test.serverEndpoint(), test.clientEndpoint(),
                                           splice, self.client, test.clock, halfClose=True)

    def connectFar(self, factory: Factory) -> Deferred[Any]:
        far, backend, self.backendPump = connectProtocols(self.backend, factory, self.clock,
                                                          greet=False, halfClose=True)
        self.far = far
        if self.farDeferred is not None:
            return self.farDeferred.addCallback(lambda _: far)
        return succeed(far)

    def flush(self) -> None:
        for _ in range(100):
            moved = self.connection.pump.flush()
            if self.backendPump is not None:
                moved = self.backendPump.flush() or moved
            if not moved:
                return
        raise AssertionError("the connections never went quiet")


class SpliceHalfCloseTests(AuditMixin, SynchronousTestCase):
    """
    The splice behind C{terminate} (TLS in front, plaintext behind) carries
    half-closes both ways, in memory.
    """

    def test_clientHalfCloseReachesBackend(self) -> None:
        """
        The TLS client's close_notify becomes the backend's end of stream
        (C{readConnectionLost()}); the backend's reply still reaches the
        client, and when the backend closes every connection closes
        cleanly.
        """
        splice = _Splice(self, Built(replyOnEOF=True))
        client = splice.client.built[0]
        client.transport.write(b"request")
        client.transport.loseWriteConnection()
        splice.flush()
        [backend] = splice.backend.built
        self.assertEqual(eventNames(backend), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(backend.received, b"request")
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(client.received, b"got 7 bytes")
        self.assertTrue(splice.connection.server.transport.disconnected)
        self.assertTrue(splice.far.transport.disconnected)
        self.assertCleanClose("server", "TLSv1.3")

    def test_backendHalfCloseReachesClient(self) -> None:
        """
        The backend's end of stream becomes close_notify to the TLS client
        (its C{readConnectionLost()}); what the client writes afterwards
        still reaches the backend, and the client's own close_notify then
        ends the backend's stream and closes everything.
        """
        splice = _Splice(self, Built(greeting=b"READY", halfCloseAfterGreeting=True))
        client = splice.client.built[0]
        splice.flush()
        self.assertEqual(eventNames(client), ["data", "readLost"])
        self.assertEqual(client.received, b"READY")
        client.transport.write(b"more data")
        splice.flush()
        [backend] = splice.backend.built
        self.assertEqual(backend.received, b"more data")
        client.transport.loseWriteConnection()
        splice.flush()
        self.assertEqual(eventNames(backend), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
        self.assertCleanClose("server", "TLSv1.3")

    def test_halfCloseWhileBackendConnects(self) -> None:
        """
        A client that sends its request and close_notify before the backend
        connection is up: the backend gets the request, then the end of
        stream, and the reply comes back.
        """
        far: Deferred[Any] = Deferred()
        splice = _Splice(self, Built(replyOnEOF=True), far=far)
        client = splice.client.built[0]
        client.transport.write(b"early")
        client.transport.loseWriteConnection()
        splice.flush()
        self.assertEqual(splice.backend.built[0].events, [])
        far.callback(None)
        splice.flush()
        [backend] = splice.backend.built
        self.assertEqual(eventNames(backend), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(client.received, b"got 5 bytes")
        self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])

    def test_flowControlKeptForOpenDirection(self) -> None:
        """
        After the client half-closes, the direction still open (backend to
        client) keeps its flow control: the TLS side still has the backend
        connection registered as its producer, to pause it when the client
        reads slowly.  The finished direction has no producer left.
        """
        splice = _Splice(self, Built())
        client = splice.client.built[0]
        client.transport.loseWriteConnection()
        splice.flush()
        tls = splice.connection.server
        self.assertIsNotNone(tls._producer)  # backend -> client: flow control
        self.assertIsNone(splice.far.transport.producer)  # client -> backend: done
        self.assertEqual(eventNames(splice.backend.built[0]), ["readLost"])

    def test_idleTimeoutAfterHalfClose(self) -> None:
        """
        A half-closed splice in which nothing moves is closed by the idle
        timeout, both sides.
        """
        splice = _Splice(self, Built(), idleTimeout=5)
        client = splice.client.built[0]
        client.transport.loseWriteConnection()
        splice.flush()
        self.assertIsNone(client.lost)
        self.clock.advance(5)
        splice.flush()
        self.assertIsNotNone(client.lost)
        self.assertIsNotNone(splice.backend.built[0].lost)
        [closed] = self.records("server", "connection.closed")
        self.assertEqual(closed["closeReason"], "idle for 5 s")

    def test_backendUnreachable(self) -> None:
        """
        When the backend cannot be reached, the client's connection is
        closed at once, even though the splice had paused reading it while
        the backend was being connected: the client sees the end, and the
        connection has one C{connection.closed} record naming the backend,
        after a C{proxy.backend_failed} record with its connection id.
        """
        far: Deferred[Any] = Deferred()
        splice = _Splice(self, Built(), far=far)
        client = splice.client.built[0]
        splice.flush()
        client.transport.write(b"hello")
        splice.flush()
        far.errback(Failure(ConnectionLost("connection refused")))
        splice.flush()
        self.assertEqual(eventNames(client), ["readLost"])
        self.assertEqual(self.records("server", "connection.closed"), [])
        client.transport.loseConnection()
        splice.flush()
        self.assertIsNotNone(client.lost)
        [accepted] = self.records("server", "connection.accepted")
        [closed] = self.records("server", "connection.closed")
        failed = [e["securetcp_audit"] for e in self.logged
                  if e["securetcp_audit"]["event"] == "proxy.backend_failed"]
        self.assertEqual([f["connection"] for f in failed], [accepted["connection"]])
        self.assertEqual(closed["connection"], accepted["connection"])
        self.assertIn("the backend memory backend could not be reached", closed["closeReason"])

    def test_backendUnreachableSilentPeer(self) -> None:
        """
        A client that does not finish the close after the backend could not
        be reached is dropped after the splice's C{closeTimeout}, and its
        connection closed and recorded once.
        """
        far: Deferred[Any] = Deferred()
        splice = _Splice(self, Built(), far=far)
        client = splice.client.built[0]
        splice.flush()
        far.errback(Failure(ConnectionLost("connection refused")))
        splice.flush()
        self.assertIsNone(client.lost)
        self.clock.advance(10)
        splice.flush()
        self.assertIsNotNone(client.lost)
        self.assertEqual(len(self.records("server", "connection.closed")), 1)

    def test_lostBackendClosesClient(self) -> None:
        """
        A backend connection that is lost (a reset, not a half-close)
        closes the TLS client's connection without close_notify: the client
        sees a truncation (C{ConnectionLost}), not a clean end.
        """
        splice = _Splice(self, Built(Recorder), client=Built(Recorder))
        client = splice.client.built[0]
        splice.flush()
        splice.far.connectionLost(Failure(ConnectionLost("reset")))
        splice.flush()
        self.assertEqual(eventNames(client), ["lost:ConnectionLost"])


class OriginateSpliceTests(AuditMixin, SynchronousTestCase):
    """
    The splice behind C{originate} (plaintext in front, TLS behind) carries
    half-closes both ways, in memory.
    """

    def connect(self, server: Built) -> Tuple[Any, Any, Any]:
        """
        A plaintext client, through the splice, to a securetcp server whose
        application C{server} builds.

        @return: the plaintext client protocol, the front pump and the
            inner client endpoint (whose C{pump} carries the TLS side).
        """
        inner = InMemoryClientEndpoint(self.serverEndpoint().wrapFactory(server), self.clock,
                                       halfClose=True)
        splice = SpliceFactory(self.clientEndpoint(inner).connect, "memory", self.clock,
                               self.emitter)
        plain = Built()
        client, front, pump = connectProtocols(splice, plain, self.clock, greet=False,
                                               halfClose=True)
        self.flush(pump, inner)
        return plain.built[0], pump, inner

    def flush(self, pump: Any, inner: Any) -> None:
        for _ in range(100):
            moved = pump.flush()
            if inner.pump is not None:
                moved = inner.pump.flush() or moved
            if not moved:
                return
        raise AssertionError("the connections never went quiet")

    def test_plainHalfCloseBecomesCloseNotify(self) -> None:
        """
        The plaintext client's FIN becomes close_notify to the TLS server
        (its application's C{readConnectionLost()}); the reply comes back
        to the plaintext client, and everything closes.
        """
        server = Built(replyOnEOF=True)
        plain, pump, inner = self.connect(server)
        plain.transport.write(b"order")
        plain.transport.loseWriteConnection()
        self.flush(pump, inner)
        [app] = server.built
        self.assertEqual(eventNames(app), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(plain.received, b"got 5 bytes")
        self.assertEqual(eventNames(plain), ["data", "readLost", "lost:ConnectionDone"])
        self.assertCleanClose("client", "TLSv1.3")

    def test_closeNotifyBecomesPlainHalfClose(self) -> None:
        """
        The TLS server's close_notify becomes a FIN to the plaintext client
        (its C{readConnectionLost()}), which can still send to the server.
        """
        server = Built(greeting=b"BANNER", halfCloseAfterGreeting=True)
        plain, pump, inner = self.connect(server)
        self.assertEqual(eventNames(plain), ["data", "readLost"])
        plain.transport.write(b"answer")
        plain.transport.loseWriteConnection()
        self.flush(pump, inner)
        [app] = server.built
        self.assertEqual(app.received, b"answer")
        self.assertEqual(eventNames(app), ["data", "readLost", "lost:ConnectionDone"])
        self.assertEqual(eventNames(plain), ["data", "readLost", "lost:ConnectionDone"])
        self.assertCleanClose("client", "TLSv1.3")


# -- real sockets, Twisted both sides ------------------------------------------


class LoopbackHalfCloseTests(AuditMixin, TestCase):
    """
    A securetcp server and client over real loopback TCP in this process's
    reactor: the kernel's FIN after close_notify, and Twisted's client
    endpoint wrapper, are the real ones.
    """

    timeout = 30

    def shortly(self, f: Callable[[], None]) -> None:
        """
        Call C{f} in 0.2 seconds, by when the peer's FIN has arrived.
        """
        from twisted.internet import reactor

        reactor.callLater(0.2, f)  # type: ignore[attr-defined]

    @inlineCallbacks
    def exchange(self, version: str, serverApp: Built, clientApp: Built,
                 drive: Callable[[Any], Any]) -> Any:
        from twisted.internet import reactor

        server = self.serverEndpoint(version, TCP4ServerEndpoint(reactor, 0,
                                                                 interface="127.0.0.1"),
                                     reactor=reactor)
        port = yield server.listen(serverApp)
        self.addCleanup(port.stopListening)
        client = self.clientEndpoint(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), reactor=reactor)
        protocol = yield client.connect(clientApp)
        self.addCleanup(lambda: protocol.transport.abortConnection()
                        if protocol.lost is None else None)
        drive(protocol)
        yield protocol.whenLost.addTimeout(PEER_TIMEOUT, reactor)
        yield serverApp.built[0].whenLost.addTimeout(PEER_TIMEOUT, reactor)
        return serverApp.built[0], protocol

    @inlineCallbacks
    def test_requestEOFResponse(self) -> Any:
        """
        Under TLS 1.3 and 1.2, a client that writes a request and
        half-closes (close_notify, then the kernel's FIN) gets the server's
        reply, written a moment after the FIN has arrived, and both sides
        end with L{ConnectionDone}.  The server's transport (the TLS
        protocol) carries the TCP transport's L{ITCPTransport} and
        L{IHalfCloseableDescriptor}, whose C{loseWriteConnection} it
        implements.
        """
        for version in VERSIONS:
            self.logged.clear()

            def drive(client: Any) -> None:
                client.transport.write(b"x" * 100000)
                client.transport.loseWriteConnection()

            server, client = yield self.exchange(
                version, Built(replyOnEOF=True, later=self.shortly), Built(), drive)
            self.assertEqual(server.received, b"x" * 100000)
            self.assertEqual(eventNames(server), ["data", "readLost", "lost:ConnectionDone"])
            self.assertEqual(client.received, b"got 100000 bytes")
            self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
            self.assertTrue(ITCPTransport.providedBy(server.transport))
            self.assertTrue(verifyObject(IHalfCloseableDescriptor, server.transport))
            self.assertCleanClose("server", version)
            self.assertCleanClose("client", version)

    @inlineCallbacks
    def test_serverHalfClosesClientWrites(self) -> Any:
        """
        Under TLS 1.3 and 1.2, a server that greets and half-closes: the
        client gets the greeting and C{readConnectionLost()}, then, a moment
        after the server's FIN has arrived, writes and half-closes; the
        server gets the data, and both sides end with L{ConnectionDone}.
        """
        for version in VERSIONS:
            self.logged.clear()
            server, client = yield self.exchange(
                version, Built(greeting=b"GREETING", halfCloseAfterGreeting=True),
                Built(answerOnEOF=b"y" * 50000, later=self.shortly), lambda client: None)
            self.assertEqual(client.received, b"GREETING")
            self.assertEqual(eventNames(client), ["data", "readLost", "lost:ConnectionDone"])
            self.assertEqual(server.received, b"y" * 50000)
            self.assertEqual(eventNames(server), ["data", "readLost", "lost:ConnectionDone"])
            self.assertCleanClose("server", version)


# -- real peers ---------------------------------------------------------------------


#: The start of every backend script below: listen on 127.0.0.1:argv[1],
#: say so, then serve each connection with the C{serve} put in place of
#: C{SERVE}.
_BACKEND = r'''
import hashlib, socket, struct, sys, time

port = int(sys.argv[1])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(8)
print("backend listening on %d" % port, flush=True)
SERVE
while True:
    serve(listener.accept()[0])
'''

EOF_BACKEND = _BACKEND.replace("SERVE", r'''
def serve(connection):
    data = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    time.sleep(0.3)  # answer after the proxy has seen the client's FIN, if any
    connection.sendall(b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
    connection.close()
''')

RESET_BACKEND = _BACKEND.replace("SERVE", r'''
def serve(connection):
    connection.recv(65536)
    connection.sendall(b"the first half of the answer")
    # then a reset (SO_LINGER 0), as a backend that crashes mid-answer
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
''')


def _digestLine(data: bytes) -> bytes:
    return b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())


class RealPeerHalfCloseTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate} and C{originate} between peers nobody
    here wrote: C{socat} as TLS client, TLS server and plaintext backend,
    and Python's C{ssl} module as TLS client.
    """

    def setUp(self) -> None:
        if SOCAT is None:
            raise SkipTest("socat is not installed (CI installs it: see .ci/run)")
        super().setUp()

    def scriptBackend(self, name: str, source: str) -> int:
        """
        Run the backend script C{source} as C{name}; its port.
        """
        script = os.path.join(self.workdir, f"{name}.py")
        with open(script, "w") as f:
            f.write(source)
        port, _ = self.startListening(lambda p: [sys.executable, script, str(p)],
                                      name, lambda p: b"backend listening on %d" % p)
        return int(port)

    def eofBackend(self) -> int:
        """
        A backend that reads until end of stream, then answers with the
        byte count and SHA-256 of what it read, and closes.
        """
        return self.scriptBackend("eof-backend", EOF_BACKEND)

    def terminateTo(self, backendPort: int, version: str, extra: str = "") -> int:
        def listen(p: int) -> List[str]:
            option, value = self.mtlsListen(p)
            return [option, f"{value}:minVersion={version}:maxVersion={version}{extra}"]

        port, _ = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                              "--audit-log", self.audit, listen=listen)
        return int(port)

    def socatListening(self, name: str, *argv: str) -> Tuple[int, Program]:
        """
        Start C{socat -d -d ARGV} (its listening address takes the port)
        and wait until it listens.
        """
        assert SOCAT is not None
        port, program = self.startListening(
            lambda p: [SOCAT, "-d", "-d"] + [a.replace("PORT", str(p)) for a in argv], name,
            lambda p: b"listening on AF=2 127.0.0.1:%d" % p)
        return int(port), program

    def assertCleanlyAudited(self, version: str, bytesIn: int, bytesOut: int,
                             role: str = "server") -> None:
        [closed] = self.waitForEvent("connection.closed", role=role)
        self.assertEqual((closed["version"], closed["closeReason"]), (version, None), closed)
        self.assertEqual((closed["bytesIn"], closed["bytesOut"]), (bytesIn, bytesOut), closed)

    def socatClient(self, version: str) -> None:
        request = os.urandom(300000)
        port = self.terminateTo(self.eofBackend(), version)
        assert SOCAT is not None
        started = time.monotonic()
        socat = Program(self, [
            SOCAT, "-t", "5", "-",
            f"OPENSSL:127.0.0.1:{port},cert={self.pki.path('client.pem')}"
            f",key={self.pki.path('client.key')},cafile={self.pki.path('ca.pem')}"
            ",verify=1"], "socat-client", stdin=True)
        socat.send(request)
        socat.closeStdin()
        self.assertEqual(socat.waitExit(), 0, socat.describe())
        # well within socat's -t 5: both directions ended by themselves
        self.assertLess(time.monotonic() - started, 4.0, socat.describe())
        self.assertEqual(socat.out, _digestLine(request), socat.describe())
        self.assertCleanlyAudited(version, len(request), len(_digestLine(request)))

    def test_socatClientThroughTerminateTLS13(self) -> None:
        """
        C{socat} as mTLS client (TLS 1.3) sends a request on its standard
        input to C{terminate}; at its end of input it sends close_notify
        and FIN, which reach the backend as end of stream; the backend's
        answer (byte count and SHA-256 of the request) comes back to socat,
        which ends by itself well before its timeout.  The audit records a
        normal close.
        """
        self.socatClient("TLSv1.3")

    def test_socatClientThroughTerminateTLS12(self) -> None:
        """
        The same exchange as L{test_socatClientThroughTerminateTLS13}, under
        TLS 1.2.
        """
        self.socatClient("TLSv1.2")

    def test_socatServerBehindOriginate(self) -> None:
        """
        C{socat OPENSSL-LISTEN} (verifying our client certificate) runs
        C{sha256sum} on what it receives.  A plaintext client sends data to
        C{originate} and shuts down its write side: originate sends
        close_notify, socat ends sha256sum's input, and the digest comes
        back to the plaintext client through the half-closed connection.
        socat exits with status 0 (a FIN without close_notify would be an
        error to it).
        """
        assert SOCAT is not None
        data = os.urandom(200000)
        tlsPort, socat = self.socatListening(
            "socat-server", "-t", "1",
            f"OPENSSL-LISTEN:PORT,bind=127.0.0.1,reuseaddr,cert={self.pki.path('server.pem')}"
            f",key={self.pki.path('server.key')},cafile={self.pki.path('ca.pem')},verify=1",
            "SYSTEM:sha256sum,pipes")
        connect = (f"mtls:host=127.0.0.1:port={tlsPort}"
                   f":caCerts={escape(self.pki.path('ca.pem'))}"
                   f":certKey={escape(self.pki.path('client.pem'))}"
                   f":privateKey={escape(self.pki.path('client.key'))}:hostname=localhost")
        plainPort, _ = self.twistd("originate", "--connect", connect, "--audit-log", self.audit,
                                   name="originate",
                                   listen=lambda p: ["--listen", f"tcp:{p}:interface=127.0.0.1"])
        expected = hashlib.sha256(data).hexdigest().encode() + b"  -\n"
        with socket.create_connection(("127.0.0.1", plainPort), timeout=PEER_TIMEOUT) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                chunk = s.recv(65536)  # bounded by the socket timeout
                if not chunk:
                    break
                received += chunk
        self.assertEqual(received, expected)
        self.assertEqual(socat.waitExit(), 0, socat.describe())
        self.assertNotIn(b" E ", socat.err, socat.describe())
        [closed] = self.waitForEvent("connection.closed", role="client")
        self.assertEqual((closed["bytesOut"], closed["bytesIn"]), (len(data), len(expected)))

    def pythonRequestThenFIN(self, version: str, extra: str = "", prefix: bytes = b"") -> None:
        port = self.terminateTo(self.eofBackend(), version, extra)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(self.pki.path("ca.pem"))
        context.load_cert_chain(self.pki.path("client.pem"), self.pki.path("client.key"))
        context.minimum_version = context.maximum_version = {
            "TLSv1.3": ssl.TLSVersion.TLSv1_3, "TLSv1.2": ssl.TLSVersion.TLSv1_2}[version]
        # the ssl module's SSLSocket cannot send close_notify without
        # waiting for the peer's; its SSLObject over memory BIOs can
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        sock = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(prefix.replace(b"PORT", str(port).encode()))

        def send() -> None:
            sock.sendall(outgoing.read())

        def receive() -> None:
            data = sock.recv(65536)  # bounded by the socket timeout
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                send()
                receive()
        send()
        request = os.urandom(250000)
        tls.write(request)
        try:
            tls.unwrap()  # sends close_notify, then wants the server's
        except ssl.SSLWantReadError:
            pass
        send()
        sock.shutdown(socket.SHUT_WR)  # and a real FIN
        reply = b""
        while True:
            try:
                reply += tls.read(65536)
            except ssl.SSLWantReadError:
                receive()
            except ssl.SSLZeroReturnError:
                break  # the server's close_notify
        self.assertEqual(tls.version(), version)
        self.assertEqual(reply, _digestLine(request))
        self.assertEqual(sock.recv(100), b"")  # then its FIN
        self.assertCleanlyAudited(version, len(request), len(_digestLine(request)))

    def test_pythonRequestThenFINTLS13(self) -> None:
        """
        Python's C{ssl} (an C{SSLObject} over memory BIOs, on a socket)
        sends a request, close_notify and a TCP FIN to C{terminate}; the
        backend answers after that FIN has reached the proxy, and the
        answer comes back, followed by close_notify (not a truncation) and
        FIN (TLS 1.3).
        """
        self.pythonRequestThenFIN("TLSv1.3")

    def test_backendResetIsNotACleanEnd(self) -> None:
        """
        A backend that resets the connection half-way through its answer:
        the TLS client (Python's C{ssl}) gets the first half and then the
        end of the connection I{without} close_notify, so it can tell the
        answer was cut short; the proxy stays up.
        """
        port = self.terminateTo(self.scriptBackend("reset-backend", RESET_BACKEND), "TLSv1.3")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(self.pki.path("ca.pem"))
        context.load_cert_chain(self.pki.path("client.pem"), self.pki.path("client.key"))
        for _ in range(2):  # and the proxy is still there for the next client
            raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
            self.addCleanup(raw.close)
            s = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            s.sendall(b"request\n")
            got = b""
            with self.assertRaises((ssl.SSLEOFError, ConnectionResetError)):
                while True:
                    chunk = s.recv(65536)  # bounded by the socket timeout
                    # a clean close_notify would end the loop with b"" here
                    self.assertNotEqual(chunk, b"", "close_notify after a backend reset")
                    got += chunk
            self.assertEqual(got, b"the first half of the answer")
        closed = self.waitForEvent("connection.closed", count=2)
        for record in closed:
            self.assertIn("the proxied plaintext connection broke off", record["closeReason"])
            self.assertIn("non-clean", record["closeReason"])

    def test_pythonRequestThenFINBehindPROXYHeader(self) -> None:
        """
        With C{proxyProtocol=v1} (the header read below TLS), the same
        request, close_notify and FIN, after a PROXY header as a load
        balancer sends it, still get the backend's answer: the FIN reaches
        the TLS layer as the end of a half-closed stream.
        """
        self.pythonRequestThenFIN(
            "TLSv1.3", ":proxyProtocol=v1",
            prefix=b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 PORT\r\n")
        [closed] = self.waitForEvent("connection.closed")
        self.assertEqual((closed["peer"], closed["proxy"])[0], "192.0.2.10:40000", closed)

    def test_plaintextHalfCloseInPermissiveMode(self) -> None:
        """
        In permissive migration mode a plaintext client that sends its
        request and shuts down its write side (FIN) gets the backend's
        answer, as it would through a plain TCP proxy.
        """
        port = self.terminateTo(self.eofBackend(), "TLSv1.3",
                                ":permissive=true:insecurelyAllowPlaintext=true")
        request = b"MSH|^~\\&|" + os.urandom(100000)
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                chunk = s.recv(65536)  # bounded by the socket timeout
                if not chunk:
                    break
                received += chunk
        self.assertEqual(received, _digestLine(request))
        [closed] = self.waitForEvent("connection.closed")
        self.assertTrue(closed.get("plaintext"), closed)
        self.assertEqual((closed["bytesIn"], closed["bytesOut"]),
                         (len(request), len(_digestLine(request))), closed)

    def test_pythonRequestThenFINTLS12(self) -> None:
        """
        The same exchange as L{test_pythonRequestThenFINTLS13}, under TLS
        1.2.
        """
        self.pythonRequestThenFIN("TLSv1.2")

    def pythonClientBackendHalfCloses(self, version: str) -> None:
        assert SOCAT is not None
        greeting = os.path.join(self.workdir, "greeting.txt")
        with open(greeting, "wb") as f:
            f.write(b"220 ready, send your data\n")
        received = os.path.join(self.workdir, "received.bin")
        # the backend: send the greeting file and shut down its write side
        # at the file's end, while writing whatever arrives to received.bin
        backendPort, backend = self.socatListening(
            "socat-backend", "-t", "10", "TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr",
            f"OPEN:{greeting}!!OPEN:{received},creat,trunc")
        port = self.terminateTo(backendPort, version)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(self.pki.path("ca.pem"))
        context.load_cert_chain(self.pki.path("client.pem"), self.pki.path("client.key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
        self.addCleanup(raw.close)
        # a TCP FIN without close_notify would raise SSLEOFError here
        s = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        self.assertEqual(s.version(), version)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break  # close_notify: the backend's end of stream
            got += chunk
        self.assertEqual(got, b"220 ready, send your data\n")
        data = os.urandom(150000)
        s.sendall(data)  # after the server's close_notify
        plain = s.unwrap()  # our close_notify; the server's came already
        self.assertEqual(plain.recv(100), b"")  # then the server closes TCP
        self.assertEqual(backend.waitExit(), 0, backend.describe())
        with open(received, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertCleanlyAudited(version, len(data), len(b"220 ready, send your data\n"))

    def test_pythonClientAfterBackendHalfClosesTLS13(self) -> None:
        """
        A plaintext backend (C{socat TCP-LISTEN}) sends a greeting and shuts
        down its write side: the Python C{ssl} client gets the greeting and
        then close_notify (an empty read, not a ragged EOF), still sends
        150 kB, which the backend receives whole, and closes with its own
        close_notify, after which everything closes (TLS 1.3).
        """
        self.pythonClientBackendHalfCloses("TLSv1.3")

    def test_pythonClientAfterBackendHalfClosesTLS12(self) -> None:
        """
        The same exchange as
        L{test_pythonClientAfterBackendHalfClosesTLS13}, under TLS 1.2.
        """
        self.pythonClientBackendHalfCloses("TLSv1.2")

