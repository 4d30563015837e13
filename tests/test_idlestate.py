"""
Tests for what an admitted, idle connection keeps (L{securetcp._gateprotocol},
L{securetcp._tls.session}): only what its later audit records, a CRL reload
or the metrics need, and per-connection state shared where it can be,
without any change to what the connection does or what its records say.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from securetcp import buildPolicy
from securetcp._tls import _binding
from securetcp._tls import session as sessionModule
from securetcp._tls.session import NegotiatedSession, sessionRecord
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint

from ._iosim import connectEndpoints
from ._pki import sharedPKI
from ._recording import AuditRecorder, RecordingFactory


class IdleStateTests(SynchronousTestCase):
    """
    An admitted server connection drops the handshake's notes, shares its
    session record, and joins the gate's live set only when something uses it.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.audit = AuditRecorder()
        self.emitter = self.audit.emitter()

    def serverEndpoint(self, **options: Any) -> SecureServerEndpoint:
        settings = dict(certKey=self.pki.path("server.pem"),
                        privateKey=self.pki.path("server.key"),
                        caCerts=self.pki.path("ca.pem"))
        settings.update(options)
        return SecureServerEndpoint(self.clock, None, buildPolicy(**settings), mutual=True,
                                    clock=self.clock, emitter=self.emitter)

    def clientEndpoint(self, name: str = "client") -> SecureClientEndpoint:
        return SecureClientEndpoint(
            self.clock, None, buildPolicy(caCerts=self.pki.path("ca.pem"),
                                          certKey=self.pki.path(f"{name}.pem"),
                                          privateKey=self.pki.path(f"{name}.key")),
            hostname="localhost", mutual=True, clock=self.clock, emitter=self.emitter)

    def connect(self, server: Optional[SecureServerEndpoint] = None,
                client: str = "client") -> Any:
        connection = connectEndpoints(server or self.serverEndpoint(), self.clientEndpoint(client),
                                      RecordingFactory(echo=True), RecordingFactory(),
                                      self.clock)
        self.assertIsNotNone(connection.serverGate.application)
        return connection

    def accepted(self) -> List[Dict[str, Any]]:
        return [r for r in self.audit.events("connection.accepted") if r["role"] == "server"]

    def test_serverDropsFactsOnceAdmitted(self) -> None:
        """
        Once a server admitted a connection, its TLS transport holds no
        L{ConnectionFacts} (nothing reads them after the handshake) and its
        gate no address object, while
        the client keeps its own (they hold the staple it was sent).  The
        connection still carries data, and its accepted record still names
        the peer and the negotiated session.
        """
        connection = self.connect()
        self.assertIsNone(connection.server.securetcpFacts)
        self.assertIsNone(connection.serverGate.addr)  # the application was built with it
        self.assertNotIn("write", vars(connection.server))  # no bound method of its own
        self.assertIsNotNone(connection.client.securetcpFacts)
        connection.client.wrappedProtocol.application.transport.write(b"ping")
        connection.pump.flush()
        self.assertEqual(connection.server.bytesOut, 4)
        [record] = self.accepted()
        self.assertEqual(record["peerIdentity"]["subject"],
                         connection.serverGate.identity.subject)
        self.assertEqual(record["version"], connection.serverGate.session["version"])

    def test_sessionRecordShared(self) -> None:
        """
        Two connections that negotiated the same share one session record,
        which cannot be changed in place (a change made for one connection
        can never show in another's records).
        """
        server = self.serverEndpoint()
        first, second = self.connect(server), self.connect(server)
        self.assertIs(first.serverGate.session, second.serverGate.session)
        with self.assertRaises(TypeError):
            first.serverGate.session["version"] = "forged"  # type: ignore[index]
        self.assertEqual(self.accepted()[0]["version"], self.accepted()[1]["version"])

    def test_sessionRecordByEveryFact(self) -> None:
        """
        L{sessionRecord} gives a different record for sessions that differ
        in any fact, the same one for equal sessions, and stays bounded
        whatever names peers send.
        """
        def session(**changes: Any) -> NegotiatedSession:
            facts: Dict[str, Any] = dict(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256",
                                         group="x25519", alpn=None, serverName=None,
                                         resumed=False, peerChain=())
            facts.update(changes)
            return NegotiatedSession(**facts)

        self.patch(sessionModule, "_records", {})
        base = sessionRecord(session())
        self.assertIs(sessionRecord(session()), base)
        for change in (dict(version="TLSv1.2"), dict(cipher="TLS_AES_256_GCM_SHA384"),
                       dict(group="secp256r1"), dict(alpn="h2"), dict(serverName="a.example"),
                       dict(resumed=True)):
            other = sessionRecord(session(**change))
            self.assertIsNot(other, base, change)
            self.assertEqual(dict(other), session(**change).asRecord())
        for n in range(sessionModule._RECORDS_BOUND + 10):
            sessionRecord(session(serverName=f"host{n}.example"))
        self.assertLessEqual(len(sessionModule._records), sessionModule._RECORDS_BOUND)

    def test_liveOnlyWhenUsed(self) -> None:
        """
        An admitted connection joins its gate's live set only when a
        reloaded CRL may disconnect it (C{revocation.enforceOnLive}) or the
        metrics count its bytes; either way its open count is kept.
        """
        plain = self.connect()
        self.assertEqual(plain.serverGate.gate.live, set())
        self.assertEqual(plain.serverGate.gate.openConnections, 1)
        enforcing = self.connect(self.serverEndpoint(crlEnforceLive="true"))
        self.assertEqual(enforcing.serverGate.gate.live, {enforcing.serverGate})
        self.assertEqual(len(enforcing.serverGate.peerChain), 2)

    def test_peerCertificateConvertedOnce(self) -> None:
        """
        The peer certificate of a connection (what a resumed session's
        chain is read from) is converted once per certificate, known by the
        SHA-256 of its DER: the same certificate again gives the conversion
        already made, a different one its own, each equal to what pyOpenSSL
        converts.
        """
        known: Dict[bytes, Any] = {}
        server = self.serverEndpoint()
        handles = [self.connect(server, name).server.getHandle()
                   for name in ("client", "client", "client2")]
        first, again, other = (_binding.peerCertificate(h, known) for h in handles)
        self.assertEqual(first, handles[0].get_peer_certificate(as_cryptography=True))
        self.assertIs(again, first)
        self.assertEqual(other, handles[2].get_peer_certificate(as_cryptography=True))
        self.assertNotEqual(other, first)
        self.assertEqual(set(known), {hashlib.sha256(c.public_bytes(Encoding.DER)).digest()
                                      for c in (first, other)})
