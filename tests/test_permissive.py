# -*- test-case-name: tests.test_permissive -*-
"""
Tests for L{securetcp._below.permissive}, permissive migration mode: one port
that accepts TLS and, only when explicitly allowed, plaintext, with every
plaintext connection audited as non-compliant.

Endpoint strings are parsed against a L{MemoryReactor}; connections are
made in memory with a shared L{Clock}; one test runs a real
C{twistd securetcp terminate} with C{permissive=true} as a subprocess
(bounded waits, stopped in cleanup).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List

from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from securetcp import EndpointArgumentError, buildPolicy, serverEndpoint
from securetcp._below._audit import PreTLSAudit
from securetcp._below.permissive import SniffingFactory
from securetcp._interfaces import IAuditFile
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.compliance import plaintextCompliance
from securetcp.errors import PolicyError

from ._iosim import CLIENT_ADDRESS
from ._net import escape as _escape
from ._pki import sharedPKI
from ._programs import subprocessEnvironment as _env
from ._proxy import (
    BALANCER,
    CLIENT_V4,
    AddressRecordingFactory,
    InMemoryTestCase,
    connectThrough,
    v1,
    v2Proxy,
)
from ._recording import RECORD_KEYS, RecordingFactory
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, TapProcessMixin

#: A line of patient data sent in plaintext: it must never reach the audit log.
HL7 = b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ORU^R01|MSG-8812|P|2.5\r"


class PermissiveParseTests(SynchronousTestCase):
    """
    C{permissive=true} is refused under the default C{nist-800-52r2}
    profile unless C{insecurelyAllowPlaintext=true} says it is on purpose.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()

    def server(self, extra: str) -> Any:
        return serverFromString(
            MemoryReactor(),
            f"mtls:0:interface=127.0.0.1:certKey={_escape(self.pki.path('server.pem'))}"
            f":privateKey={_escape(self.pki.path('server.key'))}"
            f":caCerts={_escape(self.pki.path('ca.pem'))}" + extra)

    def test_refusedUnderNIST(self) -> None:
        """
        Under C{nist-800-52r2}, C{permissive=true} alone is an
        L{EndpointArgumentError} at parse time naming C{permissive} and the
        fix.
        """
        for extra in (":permissive=true", ":permissive=true:insecurelyAllowPlaintext=false"):
            error = self.assertRaises(EndpointArgumentError, self.server, extra)
            self.assertEqual(error.argument, "permissive")
            self.assertIn("insecurelyAllowPlaintext=true", str(error))

    def test_allowedOnPurpose(self) -> None:
        """
        With C{insecurelyAllowPlaintext=true} as well, the endpoint is built
        in permissive mode; without C{permissive} it is not.
        """
        endpoint = self.server(":permissive=true:insecurelyAllowPlaintext=true")
        self.assertTrue(endpoint.permissive)
        self.assertFalse(self.server("").permissive)
        self.assertFalse(self.server(":insecurelyAllowPlaintext=true").permissive)

    def test_otherProfiles(self) -> None:
        """
        Other profiles allow C{permissive=true} without
        C{insecurelyAllowPlaintext}.
        """
        endpoint = self.server(":profile=mozilla-intermediate:permissive=true")
        self.assertTrue(endpoint.permissive)

    def test_notABoolean(self) -> None:
        """
        A C{permissive} value that is not a boolean is an
        L{EndpointArgumentError} naming it.
        """
        error = self.assertRaises(EndpointArgumentError, self.server,
                                  ":permissive=maybe:insecurelyAllowPlaintext=true")
        self.assertEqual(error.argument, "permissive")

    def test_pythonAPI(self) -> None:
        """
        L{serverEndpoint} refuses C{permissive=True} under C{nist-800-52r2}
        with a L{PolicyError} about C{permissive}, unless
        C{insecurelyAllowPlaintext=True}.
        """
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"))
        error = self.assertRaises(PolicyError, serverEndpoint, MemoryReactor(), None, policy,
                                  permissive=True)
        self.assertEqual(error.field, "permissive")
        endpoint = serverEndpoint(MemoryReactor(), None, policy,  # type: ignore[arg-type]
                                  permissive=True, insecurelyAllowPlaintext=True)
        self.assertTrue(endpoint.permissive)


class PermissiveInMemoryTests(InMemoryTestCase):
    """
    In permissive mode, one port takes TLS clients (audited as usual) and
    plaintext clients (handed to the application unencrypted, audited with
    C{plaintext: true} as non-compliant).
    """

    def listenPermissive(self, app: Any, **options: Any) -> Any:
        return self.listen(app, permissive=True, insecurelyAllowPlaintext=True, **options)

    def test_tlsClient(self) -> None:
        """
        A TLS client is accepted and audited as without permissive mode:
        compliant, no C{plaintext} field.
        """
        app = AddressRecordingFactory()
        tls, gate = self.tlsClient(RecordingFactory())
        client, server, pump = connectThrough(self.listenPermissive(app), b"", self.clock, tls)
        clientApp = self.successResultOf(gate.whenReady)
        clientApp.transport.write(HL7)
        pump.flush()
        [(addr, protocol)] = app.built
        self.assertEqual(protocol.received, HL7)
        self.assertNotIn(HL7, client.received)  # the echo came back encrypted
        clientApp.transport.loseConnection()
        pump.flush()
        [accepted] = self.recordsOf("server", "connection.accepted")
        [closed] = self.recordsOf("server", "connection.closed")
        for record in (accepted, closed):
            self.assertNotIn("plaintext", record)
            self.assertTrue(record["compliance"]["compliant"])
            self.assertIsNotNone(record["version"])
            self.assertEqual(record["peer"], BALANCER)
        self.assertEqual(closed["bytesIn"], len(HL7))

    def test_plaintextClient(self) -> None:
        """
        A client whose first byte is not a TLS handshake record reaches the
        application unencrypted (its first bytes included) and is audited
        with C{connection.accepted} and C{connection.closed} records that
        say C{plaintext: true}, are not compliant, count the bytes each
        way, and carry every field a TLS record has -- but no payload.
        """
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(self.listenPermissive(app), HL7, self.clock)
        [(addr, protocol)] = app.built
        self.assertEqual(protocol.received, HL7)
        self.assertEqual(client.received, HL7)  # echoed in the clear
        self.assertEqual((addr, protocol.peer), (CLIENT_ADDRESS, CLIENT_ADDRESS))
        [accepted] = self.records
        self.assertEqual(accepted["event"], "connection.accepted")
        self.clock.advance(2.5)
        client.transport.write(b"more")
        pump.flush()
        client.transport.loseConnection()
        pump.flush()
        [accepted, closed] = self.records
        self.assertEqual(closed["event"], "connection.closed")
        for record in (accepted, closed):
            self.assertTrue(record["plaintext"])
            self.assertFalse(record["compliance"]["compliant"])
            self.assertTrue(record["compliance"]["reasons"])
            self.assertEqual((record["version"], record["cipher"], record["peerIdentity"]),
                             (None, None, None))
            self.assertEqual((record["peer"], record["local"], record["proxy"]),
                             (BALANCER, "127.0.0.1:6661", None))
            for key in RECORD_KEYS:
                self.assertIn(key, record)
        self.assertEqual(accepted["connection"], closed["connection"])
        self.assertEqual((closed["bytesIn"], closed["bytesOut"]),
                         (len(HL7) + 4, len(HL7) + 4))
        self.assertEqual(closed["duration"], 2.5)
        self.assertIsNotNone(protocol.transport)
        self.assertNotIn("MSG-8812", json.dumps(self.records))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_applicationClosesPlaintext(self) -> None:
        """
        When the application closes a plaintext connection, it is audited
        as C{connection.closed} once.
        """
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(self.listenPermissive(app), b"hello",
                                              self.clock)
        app.built[0][1].transport.loseConnection()
        pump.flush()
        self.assertIsNotNone(client.lost)
        self.assertEqual([r["event"] for r in self.records],
                         ["connection.accepted", "connection.closed"])

    def test_silentClientDropped(self) -> None:
        """
        A client that sends nothing is dropped when C{handshakeTimeout}
        expires, audited as C{handshake_timeout}, and never reaches the
        application.
        """
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(
            self.listenPermissive(app, handshakeTimeout=3), b"", self.clock)
        self.clock.advance(2.9)
        pump.flush()
        self.assertEqual((self.records, client.lost), ([], None))
        self.clock.advance(0.1)
        pump.flush()
        [rejected] = self.records
        self.assertEqual((rejected["event"], rejected["reason"], rejected["peer"]),
                         ("handshake.rejected", "handshake_timeout", BALANCER))
        self.assertNotIn("plaintext", rejected)
        self.assertIsNotNone(client.lost)
        self.assertEqual(app.built, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_withProxyProtocol(self) -> None:
        """
        With C{proxyProtocol} as well, the PROXY header comes first, then
        plaintext: the application sees the header's source as its peer,
        and the records name it as C{peer} and the balancer as C{proxy}.
        A TLS client after a header works on the same endpoint.
        """
        for header in (v2Proxy(), v1("TCP4", "203.0.113.7", "198.51.100.1", 51515, 443)):
            del self.events[:]
            app = AddressRecordingFactory()
            factory = self.listenPermissive(app, proxyProtocol="any")
            client, server, pump = connectThrough(factory, header + HL7, self.clock)
            [(addr, protocol)] = app.built
            self.assertEqual((protocol.received, client.received), (HL7, HL7))
            self.assertEqual((addr, protocol.peer), (CLIENT_V4, CLIENT_V4))
            client.transport.loseConnection()
            pump.flush()
            [accepted, closed] = self.records
            for record in (accepted, closed):
                self.assertTrue(record["plaintext"])
                self.assertEqual((record["peer"], record["proxy"], record["local"]),
                                 ("203.0.113.7:51515", BALANCER, "198.51.100.1:443"))

        del self.events[:]
        app = AddressRecordingFactory()
        tls, gate = self.tlsClient(RecordingFactory())
        connectThrough(self.listenPermissive(app, proxyProtocol="v2"), v2Proxy(), self.clock,
                       tls)
        self.successResultOf(gate.whenReady)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertNotIn("plaintext", accepted)
        self.assertEqual((accepted["peer"], accepted["proxy"]), ("203.0.113.7:51515", BALANCER))

    def test_withProxyProtocolNoHeader(self) -> None:
        """
        With C{proxyProtocol} as well, plaintext without a PROXY header is
        refused as C{proxy_header_invalid}: permissive mode does not relax
        the header.
        """
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(
            self.listenPermissive(app, proxyProtocol="v2"), HL7, self.clock)
        [rejected] = self.records
        self.assertEqual(rejected["reason"], "proxy_header_invalid")
        self.assertEqual(app.built, [])
        self.assertIsNotNone(client.lost)

    def test_applicationRefuses(self) -> None:
        """
        When the application factory returns C{None} for a plaintext
        client, the connection is closed and audited as
        C{handshake.rejected} with reason C{internal_error}, as for TLS.
        """

        class Refusing(Factory):
            def buildProtocol(self, addr: Any) -> None:
                return None

        client, server, pump = connectThrough(self.listenPermissive(Refusing()), b"hi",
                                              self.clock)
        self.assertIsNotNone(client.lost)
        [rejected] = self.records
        self.assertEqual((rejected["event"], rejected["reason"], rejected["compliance"]),
                         ("handshake.rejected", "internal_error", None))

    def test_auditUnavailable(self) -> None:
        """
        While a refusing audit log cannot be written, a plaintext client is
        refused with C{audit_unavailable} and never reaches the
        application, as a TLS client would be.
        """
        sniffing = _Sniffing(self.clock, observers=[_Unwritable()])
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(sniffing.factory(app), HL7, self.clock)
        self.assertEqual(app.built, [])
        self.assertIsNotNone(client.lost)
        self.assertEqual(client.received, b"")
        [rejected] = sniffing.records
        self.assertEqual((rejected["event"], rejected["reason"]),
                         ("handshake.rejected", "audit_unavailable"))

    def test_acceptedRecordNotWritten(self) -> None:
        """
        A file that seemed writable but does not write the plaintext
        client's C{connection.accepted} record: the client is refused
        (C{audit_unavailable}) and the application never sees it.
        """
        sniffing = _Sniffing(self.clock, observers=[_Unwritable(accepting=True)])
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(sniffing.factory(app), HL7, self.clock)
        self.assertEqual([p for _, p in app.built if p.transport is not None], [])
        self.assertIsNotNone(client.lost)
        self.assertEqual(client.received, b"")
        self.assertEqual([(r["event"], r.get("reason")) for r in sniffing.records],
                         [("connection.accepted", None),
                          ("handshake.rejected", "audit_unavailable")])


@implementer(IAuditFile)
class _Unwritable:
    """
    An audit file that cannot be written, and refuses connections (or,
    with C{accepting}, lets them try and fails to write their records).
    """

    def __init__(self, accepting: bool = False) -> None:
        self.answer = accepting

    def __call__(self, event: Dict[str, Any]) -> None:
        pass

    def accepting(self) -> bool:
        return self.answer

    def wrote(self, record: Dict[str, Any]) -> bool:
        return False


class _Sniffing:
    """
    A L{SniffingFactory} auditing through an L{AuditEmitter} (given
    C{observers}) under a policy that tests may change.
    """

    def __init__(self, clock: Clock, observers: Any = ()) -> None:
        self.clock = clock
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                           observer=self.events.append), observers)
        self.policy = buildPolicy(name="migrating", profile="mozilla-intermediate")

    @property
    def records(self) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events]

    def factory(self, app: Any) -> SniffingFactory:
        audit = PreTLSAudit(self.emitter, lambda: self.policy, self.clock)
        return SniffingFactory(Factory.forProtocol(Protocol), app, self.clock, audit, 3)


class PreTLSAuditTests(SynchronousTestCase):
    """
    The layer below TLS builds its records with the audit record builders
    and emits them through the L{IAuditSink} it is given.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1793527200)
        self.sniffing = _Sniffing(self.clock)

    def test_plaintextRecords(self) -> None:
        """
        A plaintext client's C{connection.accepted} and C{connection.closed}
        records carry the connection's id and addresses, C{plaintext: true},
        the plaintext verdict, the time, and the name of the policy in force
        when each was written.
        """
        app = AddressRecordingFactory()
        client, server, pump = connectThrough(self.sniffing.factory(app), HL7, self.clock)
        self.sniffing.policy = buildPolicy(name="reloaded", profile="mozilla-intermediate")
        self.clock.advance(2)
        client.transport.loseConnection()
        pump.flush()
        accepted, closed = self.sniffing.records
        self.assertEqual((accepted["event"], closed["event"]),
                         ("connection.accepted", "connection.closed"))
        for record in (accepted, closed):
            self.assertIs(record["plaintext"], True)
            self.assertEqual(record["compliance"], plaintextCompliance())
            self.assertEqual((record["peer"], record["role"], record["proxy"]),
                             (BALANCER, "server", None))
        self.assertEqual(accepted["connection"], closed["connection"])
        self.assertEqual((accepted["policy"], closed["policy"]), ("migrating", "reloaded"))
        self.assertEqual((accepted["time"], closed["time"]),
                         ("2026-11-01T10:00:00.000000Z", "2026-11-01T10:00:02.000000Z"))
        self.assertEqual((closed["duration"], closed["bytesIn"]), (2, len(HL7)))

    def test_timeout(self) -> None:
        """
        A silent client is rejected C{handshake_timeout}, with no verdict.
        """
        connectThrough(self.sniffing.factory(AddressRecordingFactory()), b"", self.clock)
        self.clock.advance(3)
        [rejected] = self.sniffing.records
        self.assertEqual((rejected["reason"], rejected["compliance"], rejected["policy"]),
                         ("handshake_timeout", None, "migrating"))
        self.assertNotIn("plaintext", rejected)


class PermissiveTwistdTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate} with C{permissive=true}: TLS and plaintext
    clients on one port both reach the backend, and the audit report lists
    the plaintext one as non-compliant.
    """

    def plainExchange(self, port: int, line: bytes) -> int:
        """
        Send C{line} in plaintext and wait for the backend's answer.

        @return: our local port.
        """
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
            local = s.getsockname()[1]
            s.sendall(line + b"\n")
            answer = b""
            deadline = time.monotonic() + PEER_TIMEOUT
            while b"\n" not in answer and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertEqual(answer, b"backend:" + line + b"\n")
        return int(local)

    def test_terminatePermissive(self) -> None:
        """
        A plaintext client and an C{openssl s_client} with a client
        certificate both exchange a line with the backend through one
        permissive port; the plaintext connection is audited with
        C{plaintext: true}, and C{python -m securetcp audit report --json}
        lists it (and only it) among C{nonCompliant}.
        """
        backendPort, backend, count = self.backend()

        def listen(port: int) -> List[str]:
            option, value = self.mtlsListen(port)
            return [option, value + ":permissive=true:insecurelyAllowPlaintext=true"]

        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, listen=listen)
        plainPort = self.plainExchange(port, b"plain MSG-8812")
        self.exchange(port, b"tls MSG-8813")
        self.assertEqual(self.connectionCount(count), 2)
        closed = self.waitForEvent("connection.closed", 2)
        [plainClosed] = [r for r in closed if r.get("plaintext")]
        self.assertEqual(plainClosed["peer"], f"127.0.0.1:{plainPort}")
        self.assertEqual(plainClosed["bytesIn"], len(b"plain MSG-8812\n"))

        result = subprocess.run(
            [sys.executable, "-m", "securetcp", "audit", "report", "--json", self.audit],
            capture_output=True, env=_env(), cwd=self.workdir, timeout=START_TIMEOUT)
        self.assertEqual(result.returncode, 0, (result.stdout + result.stderr).decode())
        report: Dict[str, Any] = json.loads(result.stdout)
        self.assertEqual(report["accepted"], 2)
        [nonCompliant] = report["nonCompliant"]
        self.assertEqual(nonCompliant["peer"], f"127.0.0.1:{plainPort}")
        self.assertTrue(nonCompliant["reasons"])

        twistd.stop()
        self.assertVerifies(self.audit)
        with open(self.audit, "rb") as f:
            self.assertNotIn(b"MSG-881", f.read())
