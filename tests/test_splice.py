# -*- test-case-name: tests.test_splice -*-
"""
Tests for the audit records of L{securetcp._twistd.splice}, the splice behind
C{twistd securetcp terminate} and C{originate}, in memory.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, List, Tuple

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from securetcp._tls._sendnow import RELAY_BUFFER
from securetcp._twistd.splice import SpliceFactory, auditedConnectionId
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.records import AUDIT_NAMESPACE


class _Gate:
    """
    The protocol a TLS transport wraps: the gate, which knows the audit id.
    """

    connectionId = "d2a0ada86907809d"


class _TLSTransport(StringTransport):
    """
    A transport wrapping a gate, as the TLS transport of a gated connection
    does.
    """

    def __init__(self, wrapped: Any) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "10.20.3.17", 43856))
        self.wrappedProtocol = wrapped


class BackendFailedTests(SynchronousTestCase):
    """
    A far side that cannot be reached is audited as C{proxy.backend_failed}.
    """

    def connect(self, transport: StringTransport) -> Dict[str, Any]:
        events: List[Dict[str, Any]] = []
        clock = Clock()
        clock.advance(1793527200)
        factory = SpliceFactory(lambda f: fail(ConnectionRefusedError("no one listens")),
                                "tcp:127.0.0.1:2575", clock,
                                AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                                    observer=events.append)))
        front = factory.buildProtocol(None)
        front.makeConnection(transport)
        [record] = [e["securetcp_audit"] for e in events]
        self.assertTrue(transport.disconnecting)
        return record

    def test_namesTheConnection(self) -> None:
        """
        The record names the backend, the peer, what failed, and the audit
        id of the accepted TLS connection.
        """
        record = self.connect(_TLSTransport(_Gate()))
        self.assertEqual(
            {k: record[k] for k in ("event", "backend", "peer", "connection", "time")},
            {"event": "proxy.backend_failed", "backend": "tcp:127.0.0.1:2575",
             "peer": "10.20.3.17:43856", "connection": "d2a0ada86907809d",
             "time": "2026-11-01T10:00:00.000000Z"})
        self.assertIn("no one listens", record["detail"])

    def test_plaintextFront(self) -> None:
        """
        A plaintext accepted connection (C{originate}) has no audit id.
        """
        record = self.connect(StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5000)))
        self.assertEqual((record["connection"], record["peer"]), (None, "127.0.0.1:5000"))

    def test_auditedConnectionId(self) -> None:
        """
        L{auditedConnectionId} finds the gate's id behind a TLS transport,
        a plaintext connection's own id on its transport, and C{None}
        elsewhere.
        """
        self.assertEqual(auditedConnectionId(_TLSTransport(_Gate())), "d2a0ada86907809d")
        plain = StringTransport()
        plain.connectionId = "0123456789abcdef"  # type: ignore[attr-defined]
        self.assertEqual(auditedConnectionId(plain), "0123456789abcdef")
        self.assertIsNone(auditedConnectionId(StringTransport()))
        self.assertIsNone(auditedConnectionId(None))


class RelayTests(SynchronousTestCase):
    """
    Once both sides are connected, the splice relays over TCP connections
    with the relay's buffer size, and sends what one side reads to the
    other side's socket at once.
    """

    def tcpConnection(self, protocol: Any, reactor: MemoryReactor) -> Tuple[Any, socket.socket]:
        ours, peer = socket.socketpair()
        for s in (ours, peer):
            s.setblocking(False)
            self.addCleanup(s.close)
        transport = tcp.Server(ours, protocol, ("127.0.0.1", 1), None, 1, reactor)
        protocol.makeConnection(transport)
        return transport, peer

    def test_widenedAndSentAtOnce(self) -> None:
        """
        Both TCP connections get L{RELAY_BUFFER} (larger reads, back-pressure
        once that much is queued), and bytes the accepted side reads reach
        the backend's socket without a reactor iteration.
        """
        reactor = MemoryReactor()
        backend: Dict[str, Any] = {}

        def connectFar(factory: Any) -> Any:
            far = factory.buildProtocol(None)
            backend["transport"], backend["peer"] = self.tcpConnection(far, reactor)
            return succeed(far)

        factory = SpliceFactory(connectFar, "tcp:127.0.0.1:2575", Clock(),
                                AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                                    observer=lambda e: None)))
        front = factory.buildProtocol(None)
        frontTransport, _ = self.tcpConnection(front, reactor)
        self.assertEqual((frontTransport.bufferSize, backend["transport"].bufferSize),
                         (RELAY_BUFFER, RELAY_BUFFER))
        front.dataReceived(b"MSH|^~\\&|")
        self.assertEqual(backend["peer"].recv(100), b"MSH|^~\\&|")
        self.assertEqual(reactor.getWriters(), [])
