"""
Limits on concurrent connections and handshakes: over them, a new
connection is refused before the handshake and audited with the reason.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, List

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp.endpoints import Limits, SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import PolicyError

from ._iosim import connectProtocols
from ._net import escape
from ._peers import RealPeerMixin
from ._pki import TestPKI
from ._recording import AuditRecorder, CountingEchoFactory


class _Silent(Protocol):
    """
    A peer that connects and sends nothing (a handshake that never ends).
    """


class LimitTests(SynchronousTestCase):
    """
    C{maxConnections} and C{maxHandshakes} refuse the connections beyond
    them, audited as C{connection_limit} and C{handshake_limit}.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(self.mktemp())
        self.clock = Clock()
        self.records: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(
            namespace=AUDIT_NAMESPACE,
            observer=lambda event: self.records.append(event["securetcp_audit"])))

    def server(self, **limits: int) -> SecureServerEndpoint:
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"))
        return SecureServerEndpoint(self.clock, None, policy, mutual=True,  # type: ignore[arg-type]
                                    clock=self.clock, emitter=self.emitter,
                                    limits=Limits(**limits))

    def client(self) -> SecureClientEndpoint:
        policy = buildPolicy(certKey=self.pki.path("client.pem"),
                             privateKey=self.pki.path("client.key"),
                             caCerts=self.pki.path("ca.pem"))
        return SecureClientEndpoint(self.clock, None, policy, hostname="localhost",  # type: ignore[arg-type]
                                    mutual=True, clock=self.clock, emitter=AuditEmitter(
                                        Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None)))

    def connect(self, serverTLS: Any, secure: bool = True) -> Any:
        """
        Connect one client to the (shared) server factory C{serverTLS}:
        a securetcp mTLS client, or a silent peer.
        """
        if secure:
            clientTLS, gate = self.client().wrapFactory(Factory.forProtocol(Protocol))
            # a refused client's connect() result is not what these tests check
            gate.whenReady.addErrback(lambda failure: None)
        else:
            clientTLS = Factory.forProtocol(_Silent)
        client, server, pump = connectProtocols(serverTLS, clientTLS, self.clock)
        return client, server, pump

    def reasons(self) -> List[str]:
        return [r["reason"] for r in self.records if r["event"] == "handshake.rejected"]

    def test_handshakeLimit(self) -> None:
        """
        With C{maxHandshakes=1}, a second connection arriving while a first
        handshake is still in progress is refused as C{handshake_limit};
        once the first is over, new handshakes are accepted again.
        """
        tls = self.server(maxHandshakes=1).wrapFactory(Factory.forProtocol(Protocol))
        stalledClient, _, stalledPump = self.connect(tls, secure=False)
        _, refused, _ = self.connect(tls, secure=False)
        self.assertEqual(self.reasons(), ["handshake_limit"])
        self.assertFalse(refused.connected)
        stalledClient.transport.loseConnection()
        stalledPump.flush()
        _, good, _ = self.connect(tls)
        self.assertIsNotNone(good.wrappedProtocol.application)

    def test_connectionLimit(self) -> None:
        """
        With C{maxConnections=1}, a second client is refused as
        C{connection_limit} while the first is connected, and accepted after
        it has gone.
        """
        tls = self.server(maxConnections=1).wrapFactory(Factory.forProtocol(Protocol))
        firstClient, first, firstPump = self.connect(tls)
        self.assertIsNotNone(first.wrappedProtocol.application)
        _, second, _ = self.connect(tls)
        self.assertFalse(second.connected)
        self.assertEqual(self.reasons(), ["connection_limit"])
        self.assertEqual([r["event"] for r in self.records].count("connection.accepted"), 1)
        firstClient.loseConnection()
        firstPump.flush()
        _, third, _ = self.connect(tls)
        self.assertIsNotNone(third.wrappedProtocol.application)

    def test_limitsValidated(self) -> None:
        """
        L{Limits} is a frozen value that refuses a limit that is not a
        positive integer, naming it.
        """
        for name, value in (("maxConnections", 0), ("maxHandshakes", -1),
                            ("maxConnections", "many")):
            error = self.assertRaises(PolicyError, Limits, **{name: value})
            self.assertEqual(error.field, name)
        self.assertEqual(Limits(), Limits(None, None))
        self.assertRaises(AttributeError, setattr, Limits(), "maxConnections", 5)

    def test_endpointArguments(self) -> None:
        """
        C{maxConnections=} and C{maxHandshakes=} are server endpoint
        arguments; a value that is not a positive integer is refused.
        """
        base = (f"mtls:0:certKey={self.pki.path('server.pem')}:"
                f"privateKey={self.pki.path('server.key')}:caCerts={self.pki.path('ca.pem')}")
        endpoint = serverFromString(MemoryReactorClock(),
                                    base + ":maxConnections=100:maxHandshakes=10")
        self.assertEqual((endpoint.limits.maxConnections, endpoint.limits.maxHandshakes),
                         (100, 10))
        for bad in ("maxConnections=0", "maxHandshakes=many"):
            self.assertRaises(ValueError, serverFromString, MemoryReactorClock(),
                              base + ":" + bad)


class RealPeerLimitTests(RealPeerMixin, TestCase):
    """
    Over real sockets: an C{mtls:} server with C{maxConnections=1} refuses
    C{openssl s_client} while another connection holds the slot, and
    serves it once the slot is free.
    """

    @inlineCallbacks
    def test_connectionLimitAgainstOpenSSL(self) -> Any:
        """
        While a silent TCP connection occupies the only slot, s_client is
        refused before the handshake and audited as C{connection_limit};
        after that connection closes, s_client's line is echoed.
        """
        audit = AuditRecorder()
        factory = CountingEchoFactory()
        description = (f"mtls:0:interface=127.0.0.1:maxConnections=1"
                       f":certKey={escape(self.pki.path('server.pem'))}"
                       f":privateKey={escape(self.pki.path('server.key'))}"
                       f":caCerts={escape(self.pki.path('ca.pem'))}")
        # the endpoint's default audit sink emits to the global log publisher
        globalLogPublisher.addObserver(audit)
        self.addCleanup(globalLogPublisher.removeObserver, audit)
        endpoint = serverFromString(reactor, description)
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        holder = socket.create_connection(("127.0.0.1", number))
        self.addCleanup(holder.close)
        yield deferLater(reactor, 0.2, lambda: None)  # the server accepts it
        peer = yield self.sClient(number, client="client", audit=audit)
        self.assertNotEchoed(peer)
        self.assertEqual([r["reason"] for r in audit.events("handshake.rejected")],
                         ["connection_limit"])
        holder.close()
        yield deferLater(reactor, 0.2, lambda: None)
        peer = yield self.sClient(number, client="client", audit=audit)
        self.assertEchoed(peer)
