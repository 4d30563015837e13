"""
Tests for L{securetcp.gate}: what the application sees of a TLS or mutual
TLS connection, and what the audit log says about it, over connections made
in memory (no sockets) with a L{Clock} shared by both sides.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any, Dict, List, Optional

from cryptography import x509
from twisted.internet import ssl
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy
from securetcp.audit.records import policyLoaded
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import HandshakeRejected
from securetcp.identity import spkiDigest
from securetcp.policy import LegacyProfileWarning, Role

from ._iosim import (
    InMemoryClientEndpoint,
    connectEndpoints,
    connectProtocols,
    connectRaw,
)
from ._pki import sharedPKI
from ._recording import RECORD_KEYS, RecordingFactory

#: A line of patient data, as an HL7 v2 PID segment carries it.  It must
#: never reach the audit log.
HL7 = b"PID|1||12345^^^HOSP^MR||DOE^JOHN||19700101|M\r"


class PlainProtocol(Protocol):
    """
    A peer that does not speak TLS: it writes C{greeting} (if any) and
    records that its connection was lost.
    """

    greeting = b""
    lost: Any = None

    def connectionMade(self) -> None:
        if self.greeting:
            self.transport.write(self.greeting)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = reason


def plainPeer(greeting: bytes) -> Any:
    """
    A factory of L{PlainProtocol}s that write C{greeting}.
    """

    def build() -> PlainProtocol:
        protocol = PlainProtocol()
        protocol.greeting = greeting
        return protocol

    return build


class GateTestCase(SynchronousTestCase):
    """
    Shared fixtures: the test PKI, one L{Clock}, an audit emitter whose
    records are kept in C{self.records}, and builders for endpoints.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(
            Logger(namespace=AUDIT_NAMESPACE, observer=self.events.append))

    @property
    def records(self) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events]

    def recordsOf(self, role: str, event: str) -> List[Dict[str, Any]]:
        return [r for r in self.records if r["role"] == role and r["event"] == event]

    def serverEndpoint(self, mutual: bool = True, cert: str = "server",
                       **options: Any) -> SecureServerEndpoint:
        settings = dict(certKey=self.pki.path(f"{cert}.pem"),
                        privateKey=self.pki.path(f"{cert}.key"),
                        caCerts=self.pki.path("ca.pem"))
        settings.update(options)
        return SecureServerEndpoint(self.clock, None, buildPolicy(**settings),
                                    mutual=mutual, clock=self.clock,
                                    emitter=self.emitter)

    def clientEndpoint(self, cert: Optional[str] = "client", hostname: str = "localhost",
                       inner: Any = None, **options: Any) -> SecureClientEndpoint:
        settings: Dict[str, Any] = dict(caCerts=self.pki.path("ca.pem"))
        if cert:
            settings.update(certKey=self.pki.path(f"{cert}.pem"),
                            privateKey=self.pki.path(f"{cert}.key"))
        settings.update(options)
        return SecureClientEndpoint(self.clock, inner, buildPolicy(**settings),
                                    hostname=hostname, mutual=bool(cert),
                                    clock=self.clock, emitter=self.emitter)

    def twistedClient(self, cert: Optional[str], version: str,
                      app: Factory) -> TLSMemoryBIOFactory:
        """
        A client that is not securetcp: Twisted's own TLS client, presenting
        C{cert} (any certificate, even one securetcp would refuse to load,
        such as an expired one) and speaking only TLS C{version}.
        """

        def read(name: str) -> str:
            with open(self.pki.path(name)) as f:
                return f.read()

        own = None
        if cert is not None:
            own = ssl.PrivateCertificate.loadPEM(read(f"{cert}.pem") + read(f"{cert}.key"))
        pinned = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[version]
        options = ssl.optionsForClientTLS(
            "localhost", trustRoot=ssl.Certificate.loadPEM(read("ca.pem")),
            clientCertificate=own,
            extraCertificateOptions=dict(raiseMinimumTo=pinned,
                                         lowerMaximumSecurityTo=pinned))
        return TLSMemoryBIOFactory(options, True, app, clock=self.clock)

    def certificate(self, name: str) -> x509.Certificate:
        with open(self.pki.path(f"{name}.pem"), "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    def pin(self, name: str) -> str:
        return "sha256/" + base64.b64encode(spkiDigest(self.certificate(name))).decode()


class AdmissionTests(GateTestCase):
    """
    A verified, authorised peer reaches the application, and only after the
    handshake.
    """

    def connectGood(self) -> Any:
        self.serverApp = RecordingFactory(echo=True)
        self.clientApp = RecordingFactory()
        return connectEndpoints(self.serverEndpoint(), self.clientEndpoint(),
                                self.serverApp, self.clientApp, self.clock)

    def test_goodClientAdmitted(self) -> None:
        """
        An mTLS server admits a client whose certificate chains to its CA:
        exactly one application protocol is built on each side, and the
        client's C{whenReady} fires with the client's application protocol.
        """
        connection = self.connectGood()
        self.assertEqual(len(self.serverApp.built), 1)
        self.assertEqual(len(self.clientApp.built), 1)
        self.assertIs(self.successResultOf(connection.clientGate.whenReady),
                      self.clientApp.built[0])
        self.assertEqual([r["event"] for r in self.records if r["role"] == "server"],
                         ["connection.accepted"])

    def test_sessionHoldsOnlyKnownFacts(self) -> None:
        """
        An admitted connection keeps what its handshake negotiated without
        the facts it lacks (no ALPN here), C{resumed=False} kept; its records
        still carry every session field, those it lacks as C{None}.
        """
        connection = self.connectGood()
        session = connection.serverGate.session
        self.assertEqual(set(session), {"version", "cipher", "group", "sni", "resumed"})
        self.assertIs(session["resumed"], False)
        self.assertIsNone(session.get("alpn"))
        accepted = [r for r in self.records if r["role"] == "server"][0]
        self.assertEqual((accepted["alpn"], accepted["sni"], accepted["resumed"]),
                         (None, session["sni"], False))
        self.assertEqual(accepted["version"], session["version"])

    def test_applicationOnlyAfterHandshake(self) -> None:
        """
        The application protocol is neither built nor connected while the
        handshake is in progress; it gets C{makeConnection} only once the
        handshake has completed.
        """
        serverApp = RecordingFactory()
        connection = connectEndpoints(self.serverEndpoint(), self.clientEndpoint(),
                                      serverApp, RecordingFactory(), self.clock,
                                      greet=False)
        self.assertEqual(serverApp.built, [])
        # ClientHello in, ServerHello ... Finished out: not done yet.
        connection.pump.pump()
        self.assertEqual(serverApp.built, [])
        self.assertEqual(self.records, [])
        connection.pump.flush()
        self.assertEqual(len(serverApp.built), 1)
        self.assertTrue(serverApp.built[0].handshakeDoneAtMakeConnection)

    def test_dataRoundTrip(self) -> None:
        """
        Bytes the client application writes reach the server application,
        and its reply reaches the client application.
        """
        connection = self.connectGood()
        self.clientApp.built[0].transport.write(b"MSH|ping\r")
        connection.pump.flush()
        self.assertEqual(b"".join(self.serverApp.built[0].received), b"MSH|ping\r")
        self.assertEqual(b"".join(self.clientApp.built[0].received), b"MSH|ping\r")

    def test_peerCertificateInApplication(self) -> None:
        """
        C{transport.getPeerCertificate()} works in the application on both
        sides and returns the peer's certificate.
        """
        self.connectGood()
        serverSees = self.serverApp.built[0].peerCertificate
        clientSees = self.clientApp.built[0].peerCertificate
        self.assertEqual(serverSees.to_cryptography(), self.certificate("client"))
        self.assertEqual(clientSees.to_cryptography(), self.certificate("server"))

    def test_acceptedThenClosedRecords(self) -> None:
        """
        An accepted connection is audited as C{connection.accepted} and, when
        it ends, C{connection.closed} with its duration and the counts of
        application bytes each way.
        """
        connection = self.connectGood()
        self.clientApp.built[0].transport.write(b"x" * 100)
        connection.pump.flush()
        self.serverApp.built[0].transport.write(b"y" * 7)
        connection.pump.flush()
        self.clock.advance(2.5)
        self.clientApp.built[0].transport.loseConnection()
        connection.pump.flush()

        server = [r for r in self.records if r["role"] == "server"]
        self.assertEqual([r["event"] for r in server],
                         ["connection.accepted", "connection.closed"])
        closed = server[1]
        self.assertEqual(closed["connection"], server[0]["connection"])
        self.assertEqual(closed["duration"], 2.5)
        self.assertEqual(closed["bytesIn"], 100)
        self.assertEqual(closed["bytesOut"], 100 + 7)  # echo + reply

        [clientClosed] = self.recordsOf("client", "connection.closed")
        self.assertEqual(clientClosed["bytesOut"], 100)
        self.assertEqual(clientClosed["bytesIn"], 100 + 7)
        self.assertIsNotNone(self.serverApp.built[0].lost)

    def test_recordSchema(self) -> None:
        """
        Accepted, closed and rejected records all carry every key of the
        documented schema; the accepted record names the addresses, SNI,
        negotiated parameters, peer identity, policy and compliance.
        """
        connection = self.connectGood()
        self.clientApp.built[0].transport.loseConnection()
        connection.pump.flush()
        connectProtocols(self.serverEndpoint().wrapFactory(RecordingFactory()),
                         self.twistedClient("client-other", "TLSv1.3", RecordingFactory()),
                         self.clock)
        events = {(r["role"], r["event"]) for r in self.records}
        self.assertEqual(events, {
            ("server", "connection.accepted"), ("server", "connection.closed"),
            ("client", "connection.accepted"), ("client", "connection.closed"),
            ("server", "handshake.rejected"),
        })
        for record in self.records:
            missing = [k for k in RECORD_KEYS if k not in record]
            self.assertEqual(missing, [], record["event"])
            json.dumps(record)

        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual(accepted["schema"], 1)
        self.assertEqual(accepted["local"], "127.0.0.1:6661")
        self.assertEqual(accepted["peer"], "127.0.0.1:40404")
        self.assertEqual(accepted["sni"], "localhost")
        self.assertEqual(accepted["version"], "TLSv1.3")
        self.assertIsNotNone(accepted["cipher"])
        self.assertEqual(accepted["time"], "1970-01-01T00:00:00.000000Z")
        self.assertEqual(accepted["policy"], "default")
        self.assertEqual(accepted["profile"], "nist-800-52r2")
        self.assertEqual(accepted["compliance"]["compliant"], True)
        self.assertIn("spiffe://hospital.example/ward3/pump-0042",
                      accepted["peerIdentity"]["san"]["uri"])

    def test_policyVerdictInAccepted(self) -> None:
        """
        C{connection.accepted} carries, besides the verdict on what was
        negotiated, the policy's own verdict (C{compliance.policy}): the one
        C{policy.loaded} and C{check} give.  An C{mtls:} policy that checks
        no revocation fails C{check}'s C{revocation} item; with a CRL it
        passes.
        """
        for crl, failing in [(None, ["revocation"]), (self.writeCRL(), [])]:
            self.events.clear()
            options = {"crl": crl} if crl else {}
            server = self.serverEndpoint(**options)
            connectEndpoints(server, self.clientEndpoint(), RecordingFactory(),
                             RecordingFactory(), self.clock)
            [accepted] = self.recordsOf("server", "connection.accepted")
            loaded = policyLoaded(server.policy, Role.SERVER, True, "x", 0,
                                  server.creator.materials.leaf)
            self.assertTrue(accepted["compliance"]["compliant"])
            self.assertEqual(accepted["compliance"]["policy"], {
                "compliant": loaded["compliance"]["compliant"],
                "reasons": loaded["compliance"]["reasons"]})
            self.assertEqual([r.split(":")[0] for r in loaded["compliance"]["reasons"]],
                             failing)

    def writeCRL(self) -> str:
        """
        An empty CRL of the test CA, in a file.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(self.pki.crl())
        return path

    def test_legacyProfileNotCompliant(self) -> None:
        """
        A connection accepted under the C{legacy} profile is audited with
        C{compliance.compliant} false, whatever it negotiated.
        """
        serverApp = RecordingFactory()
        connectEndpoints(self.serverEndpoint(profile="legacy"), self.clientEndpoint(),
                         serverApp, RecordingFactory(), self.clock)
        self.flushWarnings()
        self.assertEqual(len(serverApp.built), 1)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual(accepted["profile"], "legacy")
        self.assertIs(accepted["compliance"]["compliant"], False)
        self.assertTrue(accepted["compliance"]["reasons"])

    def test_legacyProfileWarns(self) -> None:
        """
        Building a C{legacy} policy warns with L{LegacyProfileWarning}.
        """
        self.serverEndpoint(profile="legacy")
        warnings = [w for w in self.flushWarnings()
                    if w["category"] is LegacyProfileWarning]
        self.assertEqual(len(warnings), 1)
        self.assertIn("insecure", warnings[0]["message"])


class ClientAuthMatrixTests(GateTestCase):
    """
    An mTLS server rejects clients without an acceptable certificate, under
    TLS 1.2 and under TLS 1.3, before they reach the application, and audits
    the reason.  The clients are Twisted's own TLS clients, so they can
    present certificates securetcp would refuse to load.
    """

    def attempt(self, cert: Optional[str], version: str) -> RecordingFactory:
        serverApp = RecordingFactory()
        server = self.serverEndpoint(minVersion=version, maxVersion=version)
        clientApp = RecordingFactory(greeting=HL7)
        connectProtocols(server.wrapFactory(serverApp),
                         self.twistedClient(cert, version, clientApp), self.clock)
        return serverApp

    def assertRejected(self, cert: Optional[str], version: str, reason: str) -> None:
        serverApp = self.attempt(cert, version)
        self.assertEqual(serverApp.built, [])
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual(rejected["reason"], reason)
        self.assertEqual(self.recordsOf("server", "connection.accepted"), [])
        self.assertEqual(self.recordsOf("server", "connection.closed"), [])
        for record in self.records:
            self.assertNotIn(HL7.decode().strip(), json.dumps(record))

    def assertAccepted(self, version: str) -> None:
        serverApp = self.attempt("client", version)
        self.assertEqual(len(serverApp.built), 1)
        self.assertEqual(b"".join(serverApp.built[0].received), HL7)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual(accepted["version"], version)

    def test_noCertificateTLS12(self) -> None:
        """
        Under TLS 1.2, a client that sends no certificate is rejected as
        C{no_client_certificate}.
        """
        self.assertRejected(None, "TLSv1.2", "no_client_certificate")

    def test_noCertificateTLS13(self) -> None:
        """
        Under TLS 1.3, a client that sends no certificate is rejected as
        C{no_client_certificate}.
        """
        self.assertRejected(None, "TLSv1.3", "no_client_certificate")

    def test_untrustedCATLS12(self) -> None:
        """
        Under TLS 1.2, a client certificate from a CA the server does not
        trust is rejected as C{unknown_ca}.
        """
        self.assertRejected("client-other", "TLSv1.2", "unknown_ca")

    def test_untrustedCATLS13(self) -> None:
        """
        Under TLS 1.3, a client certificate from a CA the server does not
        trust is rejected as C{unknown_ca}.
        """
        self.assertRejected("client-other", "TLSv1.3", "unknown_ca")

    def test_expiredTLS12(self) -> None:
        """
        Under TLS 1.2, an expired client certificate is rejected as
        C{expired}.
        """
        self.assertRejected("client-expired", "TLSv1.2", "expired")

    def test_expiredTLS13(self) -> None:
        """
        Under TLS 1.3, an expired client certificate is rejected as
        C{expired}.
        """
        self.assertRejected("client-expired", "TLSv1.3", "expired")

    def test_wrongKeyUsageTLS12(self) -> None:
        """
        Under TLS 1.2, a client certificate whose extended key usage is
        serverAuth only is rejected as C{wrong_key_usage}.
        """
        self.assertRejected("client-eku", "TLSv1.2", "wrong_key_usage")

    def test_wrongKeyUsageTLS13(self) -> None:
        """
        Under TLS 1.3, a client certificate whose extended key usage is
        serverAuth only is rejected as C{wrong_key_usage}.
        """
        self.assertRejected("client-eku", "TLSv1.3", "wrong_key_usage")

    def test_goodTLS12(self) -> None:
        """
        Under TLS 1.2, a client with a valid certificate from the trusted CA
        reaches the application, and its first bytes with it.
        """
        self.assertAccepted("TLSv1.2")

    def test_goodTLS13(self) -> None:
        """
        Under TLS 1.3, a client with a valid certificate from the trusted CA
        reaches the application, and its first bytes with it.
        """
        self.assertAccepted("TLSv1.3")


class ServerVerificationTests(GateTestCase):
    """
    A securetcp client verifies the server's name and, if pinned, key.
    """

    def test_hostnameMismatchWhenReady(self) -> None:
        """
        A server whose certificate is not valid for the expected hostname
        makes the client gate's C{whenReady} fail with
        L{HandshakeRejected} C{hostname_mismatch}; the client application is
        never built.
        """
        clientApp = RecordingFactory()
        connection = connectEndpoints(
            self.serverEndpoint(mutual=False, cert="server-wrongname"),
            self.clientEndpoint(cert=None), RecordingFactory(), clientApp, self.clock)
        failure = self.failureResultOf(connection.clientGate.whenReady, HandshakeRejected)
        self.assertEqual(failure.value.reason, "hostname_mismatch")
        self.assertEqual(clientApp.built, [])
        [rejected] = self.recordsOf("client", "handshake.rejected")
        self.assertEqual(rejected["reason"], "hostname_mismatch")

    def test_hostnameMismatchConnect(self) -> None:
        """
        L{SecureClientEndpoint.connect}'s L{Deferred} fails with
        L{HandshakeRejected} C{hostname_mismatch} when the server's
        certificate is not valid for the expected hostname.
        """
        server = self.serverEndpoint(mutual=False, cert="server-wrongname")
        inner = InMemoryClientEndpoint(server.wrapFactory(RecordingFactory()), self.clock)
        clientApp = RecordingFactory()
        d = self.clientEndpoint(cert=None, inner=inner).connect(clientApp)
        self.assertNoResult(d)
        assert inner.pump is not None
        inner.pump.flush()
        failure = self.failureResultOf(d, HandshakeRejected)
        self.assertEqual(failure.value.reason, "hostname_mismatch")
        self.assertEqual(clientApp.built, [])

    def test_connectFiresWithApplication(self) -> None:
        """
        L{SecureClientEndpoint.connect}'s L{Deferred} fires with the
        application protocol once the server is verified, not before.
        """
        server = self.serverEndpoint()
        inner = InMemoryClientEndpoint(server.wrapFactory(RecordingFactory()), self.clock)
        clientApp = RecordingFactory()
        d = self.clientEndpoint(inner=inner).connect(clientApp)
        self.assertNoResult(d)
        assert inner.pump is not None
        inner.pump.flush()
        self.assertIs(self.successResultOf(d), clientApp.built[0])

    def test_ipAddressHostname(self) -> None:
        """
        A client expecting an IP address accepts a server whose certificate
        lists that address.
        """
        clientApp = RecordingFactory()
        connection = connectEndpoints(self.serverEndpoint(mutual=False),
                                      self.clientEndpoint(cert=None, hostname="127.0.0.1"),
                                      RecordingFactory(), clientApp, self.clock)
        self.successResultOf(connection.clientGate.whenReady)
        self.assertEqual(len(clientApp.built), 1)

    def test_serverPinAdmits(self) -> None:
        """
        A client pinning the server's SPKI connects to it.
        """
        connection = connectEndpoints(
            self.serverEndpoint(mutual=False),
            self.clientEndpoint(cert=None, pinSPKI=self.pin("server")),
            RecordingFactory(), RecordingFactory(), self.clock)
        self.successResultOf(connection.clientGate.whenReady)

    def test_serverPinDenies(self) -> None:
        """
        A client pinning another key refuses the server with
        C{pin_mismatch}.
        """
        clientApp = RecordingFactory()
        connection = connectEndpoints(
            self.serverEndpoint(mutual=False),
            self.clientEndpoint(cert=None, pinSPKI=self.pin("client2")),
            RecordingFactory(), clientApp, self.clock)
        failure = self.failureResultOf(connection.clientGate.whenReady, HandshakeRejected)
        self.assertEqual(failure.value.reason, "pin_mismatch")
        self.assertEqual(clientApp.built, [])


class AuthorisationTests(GateTestCase):
    """
    An mTLS server admits only the clients its allow-list and pins name.
    """

    def attempt(self, client: str, **serverOptions: Any) -> RecordingFactory:
        serverApp = RecordingFactory()
        self.connection = connectEndpoints(self.serverEndpoint(**serverOptions),
                                           self.clientEndpoint(cert=client),
                                           serverApp, RecordingFactory(), self.clock)
        return serverApp

    def assertClientAlerted(self) -> None:
        """
        The refused client was told by the C{bad_certificate} alert during
        the handshake: its connect() fails with L{HandshakeRejected}.
        """
        failure = self.failureResultOf(self.connection.clientGate.whenReady,
                                       HandshakeRejected)
        self.assertEqual(failure.value.reason, "bad_certificate")

    def test_allowPeersAdmits(self) -> None:
        """
        A client whose SPIFFE URI matches an C{allowPeers} rule reaches the
        application.
        """
        serverApp = self.attempt("client", allowPeers="uri:spiffe://hospital.example/ward3/*")
        self.assertEqual(len(serverApp.built), 1)
        self.assertEqual(len(self.recordsOf("server", "connection.accepted")), 1)

    def test_allowPeersDenies(self) -> None:
        """
        A client with a valid certificate that matches no C{allowPeers} rule
        never reaches the application and is audited as
        C{identity_not_allowed}, with its identity; the client is told by an
        alert in the handshake.
        """
        serverApp = self.attempt("client2", allowPeers="uri:spiffe://hospital.example/ward3/*")
        self.assertEqual(serverApp.built, [])
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual(rejected["reason"], "identity_not_allowed")
        self.assertIn("PUMP-0099", rejected["peerIdentity"]["subject"])
        self.assertClientAlerted()

    def test_pinAdmits(self) -> None:
        """
        A client whose key matches a C{pinSPKI} pin reaches the application.
        """
        serverApp = self.attempt("client", pinSPKI=self.pin("client"))
        self.assertEqual(len(serverApp.built), 1)

    def test_pinCAAdmits(self) -> None:
        """
        A pin on the issuing CA's key admits every client it issued.
        """
        serverApp = self.attempt("client2", pinSPKI=self.pin("ca"))
        self.assertEqual(len(serverApp.built), 1)

    def test_pinDenies(self) -> None:
        """
        A client whose chain matches no pin never reaches the application
        and is audited as C{pin_mismatch}; the client is told by an alert.
        """
        serverApp = self.attempt("client2", pinSPKI=self.pin("client"))
        self.assertEqual(serverApp.built, [])
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual(rejected["reason"], "pin_mismatch")
        self.assertClientAlerted()


class MisbehavingPeerTests(GateTestCase):
    """
    Peers that never complete a handshake are dropped and audited.
    """

    def test_handshakeTimeout(self) -> None:
        """
        A client that connects and sends nothing is dropped once the
        policy's C{handshakeTimeout} has passed, audited as
        C{handshake_timeout}, and never reaches the application.
        """
        serverApp = RecordingFactory()
        server = self.serverEndpoint(handshakeTimeout=5)
        connection = connectRaw(server, serverApp, plainPeer(b""), self.clock)
        self.clock.advance(4.9)
        connection.pump.flush()
        self.assertEqual(self.records, [])
        self.assertIsNone(connection.client.lost)

        self.clock.advance(0.1)
        connection.pump.flush()
        [rejected] = self.records
        self.assertEqual(rejected["event"], "handshake.rejected")
        self.assertEqual(rejected["reason"], "handshake_timeout")
        self.assertIsNotNone(connection.client.lost)
        self.assertEqual(serverApp.built, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeoutCancelledOnAdmission(self) -> None:
        """
        The handshake timeout does not fire for a connection that completed
        its handshake.
        """
        serverApp = RecordingFactory()
        connection = connectEndpoints(self.serverEndpoint(handshakeTimeout=5),
                                      self.clientEndpoint(), serverApp,
                                      RecordingFactory(), self.clock)
        self.clock.advance(60)
        connection.pump.flush()
        self.assertIsNone(serverApp.built[0].lost)
        self.assertEqual(self.recordsOf("server", "handshake.rejected"), [])

    def test_notTLS(self) -> None:
        """
        A peer that sends plaintext (an HTTP request) is rejected as
        C{not_tls} and never reaches the application.
        """
        serverApp = RecordingFactory()
        connection = connectRaw(self.serverEndpoint(), serverApp,
                                plainPeer(b"GET / HTTP/1.0\r\n\r\n"), self.clock)
        self.assertEqual(serverApp.built, [])
        [rejected] = self.records
        self.assertEqual(rejected["reason"], "not_tls")
        self.assertIsNotNone(connection.client.lost)


    def test_malformedClientHello(self) -> None:
        """
        A ClientHello whose server name is malformed (16 KB long, or with
        NUL bytes) is the peer's error: it is rejected as C{not_tls} (a
        malformed handshake), never C{internal_error}, and the detail
        names what OpenSSL found.
        """
        for name, hello in [("nul", _clientHello(b"a\0\0\0b")),
                            ("16k", _clientHello(b"a" * 16384))]:
            self.events.clear()
            serverApp = RecordingFactory()
            connection = connectRaw(self.serverEndpoint(), serverApp, plainPeer(hello),
                                    self.clock)
            self.assertEqual(serverApp.built, [], name)
            [rejected] = self.records
            self.assertEqual(rejected["reason"], "not_tls", (name, rejected))
            self.assertTrue(rejected["detail"], name)
            self.assertIsNotNone(connection.client.lost, name)


def _clientHello(serverName: bytes) -> bytes:
    """
    The first bytes of a real TLS client (pyOpenSSL's), its server name
    (SNI) extension replaced by one naming C{serverName}, whatever it holds,
    in as many records as it needs.
    """
    from OpenSSL import SSL

    client = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    client.set_tlsext_host_name(b"localhost")
    client.set_connect_state()
    try:
        client.do_handshake()
    except SSL.WantReadError:
        pass
    body = client.bio_read(1 << 17)[9:]  # after the record and handshake headers
    i = 2 + 32
    i += 1 + body[i]  # session id
    i += 2 + struct.unpack(">H", body[i:i + 2])[0]  # cipher suites
    i += 1 + body[i]  # compression methods
    extensions, rest = body[i + 2:], b""
    while extensions:
        kind, length = struct.unpack(">HH", extensions[:4])
        if kind == 0:  # server_name
            entry = b"\0" + struct.pack(">H", len(serverName)) + serverName
            data = struct.pack(">H", len(entry)) + entry
            rest += struct.pack(">HH", 0, len(data)) + data
        else:
            rest += extensions[:4 + length]
        extensions = extensions[4 + length:]
    body = body[:i] + struct.pack(">H", len(rest)) + rest
    message = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"".join(b"\x16\x03\x01" + struct.pack(">H", len(message[k:k + 16384]))
                    + message[k:k + 16384] for k in range(0, len(message), 16384))


class NoPayloadTests(GateTestCase):
    """
    No application byte ever reaches the audit log or any log event.
    """

    def test_payloadNeverLogged(self) -> None:
        """
        An HL7 PID segment sent over accepted connections (both ways), by a
        rejected client and as plaintext appears in no audit record and in
        the text of no log event.
        """
        logged: List[Dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.emitter = AuditEmitter()  # the default: through the global publisher

        # accepted, both ways
        serverApp = RecordingFactory(echo=True)
        clientApp = RecordingFactory(greeting=HL7)
        connection = connectEndpoints(self.serverEndpoint(), self.clientEndpoint(),
                                      serverApp, clientApp, self.clock)
        clientApp.built[0].transport.loseConnection()
        connection.pump.flush()
        self.assertEqual(b"".join(serverApp.built[0].received), HL7)
        self.assertEqual(b"".join(clientApp.built[0].received), HL7)

        # rejected: untrusted client certificate, under each version
        for version in ("TLSv1.2", "TLSv1.3"):
            rejectedApp = RecordingFactory()
            connectProtocols(self.serverEndpoint().wrapFactory(rejectedApp),
                             self.twistedClient("client-other", version,
                                                RecordingFactory(greeting=HL7)),
                             self.clock)
            self.assertEqual(rejectedApp.built, [])
        # rejected: not on the allow-list; refused in the handshake, so the
        # client (TLS 1.3) learns it by an alert before its application
        # could write
        refused = connectEndpoints(self.serverEndpoint(allowPeers="cn:NOBODY"),
                                   self.clientEndpoint(), RecordingFactory(),
                                   RecordingFactory(greeting=HL7), self.clock)
        self.failureResultOf(refused.clientGate.whenReady, HandshakeRejected)
        # rejected: the payload as plaintext
        connectRaw(self.serverEndpoint(), RecordingFactory(), plainPeer(HL7), self.clock)

        audit = [e["securetcp_audit"] for e in logged if "securetcp_audit" in e]
        events = sorted({(r["role"], r["event"], r.get("reason")) for r in audit})
        self.assertEqual(events, [
            ("client", "connection.accepted", None),
            ("client", "connection.closed", None),
            ("client", "handshake.rejected", "bad_certificate"),
            ("server", "connection.accepted", None),
            ("server", "connection.closed", None),
            ("server", "handshake.rejected", "identity_not_allowed"),
            ("server", "handshake.rejected", "not_tls"),
            ("server", "handshake.rejected", "unknown_ca"),
        ])
        needles = [HL7.strip().decode(), "DOE^JOHN", "12345^^^HOSP"]
        for record in audit:
            text = json.dumps(record)
            for needle in needles:
                self.assertNotIn(needle, text)
        for event in logged:
            text = formatEvent(event) + repr(event)
            for needle in needles:
                self.assertNotIn(needle, text)


class _InForce:
    """
    The policy and materials in force, as far as the records' verdict reads
    them.
    """

    def __init__(self, policy: Any, leaf: Any) -> None:
        self.policy = policy
        self.materials = type("Materials", (), {"leaf": leaf})()


class PolicyVerdictOnceTests(SynchronousTestCase):
    """
    The policy verdict that every connection record carries is worked out
    once, not per record.
    """

    def test_workedOutAgainOnlyWhenSomethingChanges(self) -> None:
        """
        The gate asks L{policyVerdict} again only when the policy in force
        or our certificate changes (a reload) or a new UTC day begins;
        otherwise each record gets the verdict it was given the first time.
        """
        from securetcp import gate as _gate

        asked: List[Any] = []

        def policyVerdict(policy: Any, role: Role, leaf: Any = None,
                          hostname: Optional[str] = None) -> Dict[str, Any]:
            asked.append((policy.name, leaf))
            return {"reasons": [f"{policy.name} {leaf} {len(asked)}"]}

        now = [86400.0 * 20000 + 10]
        self.patch(_gate, "policyVerdict", policyVerdict)
        self.patch(_gate.time, "time", lambda: now[0])
        first = buildPolicy()
        inForce = _InForce(first, "leaf1")
        factory = _gate.GateFactory(Factory(), Role.SERVER, Clock(), AuditEmitter(),
                                    inForce)  # type: ignore[arg-type]
        self.assertEqual(factory._policyReasons(first), ("default leaf1 1",))
        self.assertEqual(factory._policyReasons(first), ("default leaf1 1",))
        inForce.materials.leaf = "leaf2"
        self.assertEqual(factory._policyReasons(first), ("default leaf2 2",))
        second = buildPolicy(name="other")
        inForce.policy = second
        self.assertEqual(factory._policyReasons(second), ("other leaf2 3",))
        now[0] += 86400 - 11  # the last second of the day
        self.assertEqual(factory._policyReasons(second), ("other leaf2 3",))
        now[0] += 1  # the next day
        self.assertEqual(factory._policyReasons(second), ("other leaf2 4",))
        self.assertEqual(len(asked), 4)


class _AuditedGate:
    """
    A connection as L{GateFactory.auditConnection} reads it.
    """

    connectionId = "0123456789abcdef"
    local = "127.0.0.1:6661"
    peer = "127.0.0.1:40000"
    proxy = None
    identity = None
    inspection = None

    def __init__(self, session: Any) -> None:
        self.session = session


class SessionFactsOnceTests(SynchronousTestCase):
    """
    The session facts of the connection records are read once per shared
    session record, not per record.
    """

    def factory(self) -> Any:
        from securetcp.gate import GateFactory

        return GateFactory(Factory(), Role.SERVER, Clock(), AuditEmitter(),
                           _InForce(buildPolicy(), None))  # type: ignore[arg-type]

    def test_sharedRecordReadOnce(self) -> None:
        """
        Connections whose session is the same shared, read-only session
        record (L{sessionRecord}) get the same L{SessionFacts}, with what
        that record says; a connection's own session record (a plain dict,
        as when an OCSP answer was added to it) is read each time.
        """
        from securetcp._tls.session import NegotiatedSession, sessionRecord
        from securetcp.audit.records import SessionFacts

        factory = self.factory()
        shared = sessionRecord(NegotiatedSession(
            version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", group="secp256r1", alpn=None,
            serverName="example.com", resumed=False, peerChain=()))
        first, second = (factory.auditConnection(_AuditedGate(shared)).session  # type: ignore
                         for _ in range(2))
        self.assertIs(first, second)
        self.assertEqual(first, SessionFacts(sni="example.com", version="TLSv1.3",
                                             cipher="TLS_AES_128_GCM_SHA256",
                                             group="secp256r1", resumed=False))
        own = dict(shared, ocsp="good (stapled)")
        before = factory.auditConnection(_AuditedGate(own)).session  # type: ignore
        own["ocsp"] = "good"
        after = factory.auditConnection(_AuditedGate(own)).session  # type: ignore
        self.assertEqual((before.ocsp, after.ocsp), ("good (stapled)", "good"))
        self.assertEqual(after.version, "TLSv1.3")

    def test_everyField(self) -> None:
        """
        L{GateFactory.auditConnection} describes a connection by what the
        connection (its id, addresses, session, peer identity, identity
        binding) and the policy in force (name, profile, legacy, verdict)
        say, each in its own field.
        """
        from securetcp.audit.records import AuditConnection, SessionFacts

        class Identity:
            def asRecord(self) -> Dict[str, Any]:
                return {"subject": "CN=peer"}

        class Inspection:
            def record(self) -> Dict[str, Any]:
                return {"protocol": "hl7"}

        factory = self.factory()
        policy = buildPolicy(name="other", profile="legacy")
        self.flushWarnings()
        factory.inForce.policy = policy
        gate = _AuditedGate({"version": "TLSv1.2", "sni": "example.com"})
        gate.proxy = "10.0.0.9:5000"  # type: ignore[assignment]
        gate.identity = Identity()  # type: ignore[assignment]
        gate.inspection = Inspection()  # type: ignore[assignment]
        self.assertEqual(factory.auditConnection(gate), AuditConnection(  # type: ignore
            connectionId="0123456789abcdef", role=Role.SERVER, local="127.0.0.1:6661",
            peer="127.0.0.1:40000", proxy="10.0.0.9:5000", policy="other",
            profile="legacy", legacy=True,
            session=SessionFacts(version="TLSv1.2", sni="example.com"),
            peerIdentity=gate.identity, plaintext=False,
            policyReasons=factory._policyReasons(policy), binding={"protocol": "hl7"}))

    def test_manyRecords(self) -> None:
        """
        However many distinct shared session records there are (the SNI and
        ALPN come from peers), each connection's facts are its record's.
        """
        from securetcp._tls.session import NegotiatedSession, sessionRecord

        factory = self.factory()
        for n in range(300):
            name = f"host{n}.example.com"
            shared = sessionRecord(NegotiatedSession(
                version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", group="secp256r1",
                alpn=None, serverName=name, resumed=False, peerChain=()))
            for _ in range(2):
                facts = factory.auditConnection(_AuditedGate(shared)).session  # type: ignore
                self.assertEqual(facts.sni, name)
