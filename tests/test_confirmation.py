# -*- test-case-name: tests.test_confirmation -*-
"""
Tests for the TLS 1.3 client's wait for the server's acceptance
(L{securetcp.gate.ClientGateFactory}, C{GateProtocol._admitWhenConfirmed},
C{GatedTLSProtocol.whenPeerHeard}), in memory.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import HandshakeRejected
from securetcp.gate import CONFIRMATION_WINDOW

from ._iosim import InMemoryConnection, connectEndpoints
from ._pki import sharedPKI
from ._recording import RecordingFactory


class ConfirmationTests(SynchronousTestCase):
    """
    A TLS 1.3 client is admitted once the server's bytes after the
    handshake arrived without an alert, or after the confirmation window.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(
            Logger(namespace=AUDIT_NAMESPACE, observer=self.events.append))

    def recordsOf(self, role: str, event: str) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events
                if e["securetcp_audit"]["role"] == role
                and e["securetcp_audit"]["event"] == event]

    def connect(self, client: Optional[str] = "client",
                version: str = "TLSv1.3") -> InMemoryConnection:
        server = SecureServerEndpoint(
            self.clock, None,
            buildPolicy(certKey=self.pki.path("server.pem"),
                        privateKey=self.pki.path("server.key"),
                        caCerts=self.pki.path("ca.pem"), minVersion=version,
                        maxVersion=version),
            mutual=True, clock=self.clock, emitter=self.emitter)
        options: Dict[str, Any] = {"caCerts": self.pki.path("ca.pem")}
        if client is not None:
            options.update(certKey=self.pki.path(f"{client}.pem"),
                           privateKey=self.pki.path(f"{client}.key"))
        endpoint = SecureClientEndpoint(self.clock, None, buildPolicy(**options),
                                        hostname="localhost", mutual=client is not None,
                                        clock=self.clock, emitter=self.emitter)
        self.clientApp = RecordingFactory()
        return connectEndpoints(server, endpoint, RecordingFactory(), self.clientApp,
                                self.clock, greet=False)

    def untilClientHandshook(self, connection: InMemoryConnection) -> None:
        """
        Pump until the client's side of the handshake is over (its gate
        has the negotiated session), and no further.
        """
        for _ in range(20):
            if connection.clientGateProtocol.session:
                return
            connection.pump.pump()
        self.fail("the client's handshake did not complete")

    def test_waitsForServerBytes(self) -> None:
        """
        After its handshake the TLS 1.3 client is not yet connected; the
        server's session tickets confirm it, with no time passing.
        """
        connection = self.connect()
        self.untilClientHandshook(connection)
        self.assertNoResult(connection.clientGate.whenReady)
        self.assertEqual(self.clientApp.built, [])
        connection.pump.flush()
        self.assertTrue(connection.client.heardAfterHandshake)
        self.assertIs(self.successResultOf(connection.clientGate.whenReady),
                      self.clientApp.built[0])
        self.assertEqual(len(self.recordsOf("client", "connection.accepted")), 1)

    def test_silentServerWindow(self) -> None:
        """
        A server that sends nothing after the handshake is taken to have
        accepted when the confirmation window ends, not before.
        """
        connection = self.connect()
        self.untilClientHandshook(connection)
        self.clock.advance(CONFIRMATION_WINDOW - 0.01)
        self.assertNoResult(connection.clientGate.whenReady)
        self.clock.advance(0.01)
        self.successResultOf(connection.clientGate.whenReady)
        self.assertEqual(len(self.clientApp.built), 1)

    def test_refusedAfterHandshake(self) -> None:
        """
        A server refusing the client's certificate after the client's TLS
        1.3 handshake: connect() fails with L{HandshakeRejected}
        C{unknown_ca}, the client's audit has the rejection and no
        acceptance, and the application is never built.
        """
        connection = self.connect("client-other")
        connection.pump.flush()
        failure = self.failureResultOf(connection.clientGate.whenReady, HandshakeRejected)
        self.assertEqual(failure.value.reason, "unknown_ca")
        self.assertEqual(self.clientApp.built, [])
        self.assertEqual(self.recordsOf("client", "connection.accepted"), [])
        [rejected] = self.recordsOf("client", "handshake.rejected")
        self.assertEqual((rejected["reason"], rejected["version"]), ("unknown_ca", "TLSv1.3"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_tls12NoWait(self) -> None:
        """
        Under TLS 1.2 the server has judged the client before the client's
        handshake ends: the client is admitted at once.
        """
        connection = self.connect(version="TLSv1.2")
        self.untilClientHandshook(connection)
        self.successResultOf(connection.clientGate.whenReady)

    def test_heardBeforeAsked(self) -> None:
        """
        L{whenPeerHeard} calls back at once when the peer's bytes after the
        handshake were already read (an OCSP decision that took longer than
        the server's tickets).
        """
        connection = self.connect()
        connection.pump.flush()
        called: List[bool] = []
        connection.client.whenPeerHeard(lambda: called.append(True))
        self.assertEqual(called, [True])
