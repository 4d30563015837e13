# -*- test-case-name: tests.test_peerrefusal -*-
"""
A server that refuses our client, as our client reports it: C{openssl
s_server} (the system OpenSSL 3) demanding a client certificate
(C{-Verify 1}) against our C{mtls:}/C{securessl:} client (the
C{cryptography} wheel's OpenSSL, 4 here).  The refusal is
L{HandshakeRejected} with the reason classified from OpenSSL's error codes
(however each OpenSSL spells the alert), under TLS 1.2 and also under TLS
1.3, where the refusal arrives after our side of the handshake is over; the
application is never built, and the audit log says C{handshake.rejected},
never C{connection.accepted}.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from securetcp import HandshakeRejected, buildPolicy
from securetcp.endpoints import clientEndpoint
from securetcp.gate import GateFactory

from ._peers import LINE, PROCESS_TIMEOUT, RealPeerMixin
from ._peers import waitUntil as _waitUntil
from ._programs import needOpenSSL as _needOpenSSL
from ._recording import AuditRecorder, CollectorFactory


class ServerRefusesClientTests(RealPeerMixin, TestCase):
    """
    Our client endpoint against C{openssl s_server -Verify 1}.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    @inlineCallbacks
    def connect(self, port: int, client: Optional[str]) -> Any:
        """
        Connect our client to 127.0.0.1:C{port}, presenting C{client}'s
        certificate (none if C{None}).

        @return: C{(protocol or the HandshakeRejected, CollectorFactory,
            AuditRecorder)}.
        """
        options = {"caCerts": self.pki.path("ca.pem")}
        if client is not None:
            options.update(certKey=self.pki.path(f"{client}.pem"),
                           privateKey=self.pki.path(f"{client}.key"))
        audit = AuditRecorder()
        endpoint = clientEndpoint(reactor, TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                                  buildPolicy(**options), hostname="localhost",
                                  mutual=client is not None, emitter=audit.emitter())
        factory = CollectorFactory()
        d = endpoint.connect(factory)
        timeout = reactor.callLater(PROCESS_TIMEOUT, d.cancel)
        try:
            outcome = yield d
        except HandshakeRejected as e:
            outcome = e
        finally:
            if timeout.active():
                timeout.cancel()
        return outcome, factory, audit

    @inlineCallbacks
    def assertRefused(self, version: str, client: Optional[str], reason: str,
                      alert: str) -> Any:
        """
        s_server (TLS C{version}) refuses C{client}: our connect() fails
        with L{HandshakeRejected} C{reason}, whose detail is OpenSSL's text
        of the C{alert}; the application is never built; the audit log has
        the rejection and no acceptance.
        """
        port, _ = yield self.sServer("server", "-rev", version, "-Verify", "1",
                                     "-CAfile", self.pki.path("ca.pem"),
                                     "-verify_return_error")
        error, factory, audit = yield self.connect(port, client)
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, reason, str(error))
        self.assertIn(alert, error.detail)
        self.assertEqual(factory.protocols, [])
        self.assertEqual(audit.events("connection.accepted"), [])
        [rejected] = audit.events("handshake.rejected")
        self.assertEqual((rejected["role"], rejected["reason"]), ("client", reason))

    def test_untrustedCertificateTLS13(self) -> Any:
        """
        Under TLS 1.3 a server that does not trust our certificate sends
        C{unknown_ca} after our handshake completed: connect() fails with
        L{HandshakeRejected} C{unknown_ca}, not a connection that then
        loses a raw C{OpenSSL.SSL.Error}.
        """
        return self.assertRefused("-tls1_3", "client-other", "unknown_ca", "unknown ca")

    def test_untrustedCertificateTLS12(self) -> Any:
        """
        Under TLS 1.2 the same refusal is L{HandshakeRejected}
        C{unknown_ca}.
        """
        return self.assertRefused("-tls1_2", "client-other", "unknown_ca", "unknown ca")

    def test_noCertificateTLS13(self) -> Any:
        """
        Under TLS 1.3 a client without a certificate gets the server's
        C{certificate_required} alert: L{HandshakeRejected}
        C{no_client_certificate}.
        """
        return self.assertRefused("-tls1_3", None, "no_client_certificate",
                                  "certificate required")

    def test_noCertificateTLS12(self) -> Any:
        """
        Under TLS 1.2 the server refuses a client without a certificate
        with the C{handshake_failure} alert, which OpenSSL 4 spells C{tls
        alert handshake failure} and OpenSSL 3 C{sslv3 alert handshake
        failure}: it is C{peer_rejected} (from the alert's code), not
        C{no_shared_cipher}.
        """
        return self.assertRefused("-tls1_2", None, "peer_rejected", "handshake failure")

    @inlineCallbacks
    def assertAccepted(self, *serverArgs: str) -> Any:
        """
        s_server (with C{serverArgs}) accepts our certificate: connect()
        fires with the application, whose line comes back reversed.

        @return: how long connect() took, in seconds.
        """
        port, _ = yield self.sServer("server", "-rev", "-Verify", "1",
                                     "-CAfile", self.pki.path("ca.pem"),
                                     "-verify_return_error", *serverArgs)
        started = time.monotonic()
        app, factory, audit = yield self.connect(port, "client")
        took = time.monotonic() - started
        self.assertNotIsInstance(app, HandshakeRejected)
        self.assertEqual(factory.protocols, [app])
        self.assertEqual(audit.events("handshake.rejected"), [])
        [accepted] = audit.events("connection.accepted")
        self.assertEqual(accepted["version"], "TLSv1.3")
        app.transport.write(LINE + b"\n")
        yield _waitUntil(lambda: LINE[::-1] in app.data or app.lost.called, PROCESS_TIMEOUT,
                         "the reversed line from s_server")
        self.assertIn(LINE[::-1], app.data)
        app.transport.loseConnection()
        yield app.lost
        return took

    @inlineCallbacks
    def test_acceptedTLS13(self) -> Any:
        """
        Under TLS 1.3 a server that accepts our certificate (and sends its
        session tickets, as OpenSSL does) is confirmed by them: connect()
        fires long before the confirmation window (here 20 s) ends.
        """
        self.patch(GateFactory, "confirmationWindow", 20.0)
        took = yield self.assertAccepted("-tls1_3")
        self.assertLess(took, 10.0)

    @inlineCallbacks
    def test_acceptedSilentServerTLS13(self) -> Any:
        """
        A TLS 1.3 server that accepts our certificate but sends no session
        ticket and waits for us to speak is taken to have accepted once the
        confirmation window has passed: connect() fires, and the exchange
        works.
        """
        self.assertEqual(GateFactory.confirmationWindow, 1.0)
        self.patch(GateFactory, "confirmationWindow", 0.5)
        took = yield self.assertAccepted("-tls1_3", "-num_tickets", "0")
        self.assertGreaterEqual(took, 0.5)
