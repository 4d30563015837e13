"""
The audit export against a real collector: rsyslogd, configured as
C{docs/export.md} shows, over TLS with its OpenSSL and GnuTLS drivers,
requiring and verifying the node's client certificate.  A securetcp server
in this process audits real client connections to a local file; the
export sends that file's records to rsyslog, and the tests compare what
rsyslog wrote with the local file.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Dict, List

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.logger import Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy, clientEndpoint, serverEndpoint
from securetcp._twistd.workers import workerAuditPath
from securetcp.audit.atna import atnaMessage
from securetcp.audit.fleet import compareWithCollector, verifyCollector
from securetcp.audit.writer import AuditLogObserver
from securetcp.auditexport import auditSyslogExport

from ._jing import needJing, validateAudit
from ._peers import sleep, waitUntil
from ._pki import TestPKI
from ._recording import AuditRecorder, CountingEchoFactory
from ._rsyslog import RsyslogCollector, needRsyslog
from ._twistd import (
    HL7,
    START_TIMEOUT,
    Program,
    TapProcessMixin,
    auditRecords,
    blockUntil,
)

#: How long a test waits for the collector to have every record.
ARRIVAL = 20.0


class CollectorTestCase(TestCase):
    """
    A PKI, a local audit file with its writer, a securetcp server auditing
    to it, and helpers to run rsyslog and the export.
    """

    driver = "ossl"

    def setUp(self) -> None:
        needRsyslog(self.driver)
        self.base = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(os.path.join(self.base, "pki"))
        self.path = os.path.join(self.base, "audit.jsonl")
        self.writer = AuditLogObserver(self.path, fsync="off")
        self.addCleanup(self.writer.close)
        self.emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=LogPublisher()),
                                    observers=[self.writer])

    def collector(self, cert: str = "server", name: str = "collector",
                  **kw: Any) -> RsyslogCollector:
        collector = RsyslogCollector(os.path.join(self.base, name),
                                     self.pki.path("ca.pem"), self.pki.path(f"{cert}.pem"),
                                     self.pki.path(f"{cert}.key"), driver=self.driver, **kw)
        self.addCleanup(collector.stop)
        return collector

    def export(self, collector: RsyslogCollector, client: str = "client", **kw: Any) -> Any:
        policy = os.path.join(self.base, "syslog-client.toml")
        with open(policy, "w") as f:
            f.write(f'certKey = "{self.pki.path(client + ".pem")}"\n'
                    f'privateKey = "{self.pki.path(client + ".key")}"\n'
                    f'caCerts = "{self.pki.path("ca.pem")}"\n')
        url = kw.pop("url", f"tls://localhost:{collector.port}")
        export = auditSyslogExport(reactor, self.writer, url,
                                   policyFile=None if url.startswith("tcp:") else policy,
                                   node="node-a",
                                   queueDir=os.path.join(self.base, "queue"),
                                   emitter=self.emitter, settle=0.5, maxDelay=1.0, **kw)
        export.startService()
        self.addCleanup(export.stopService)
        return export

    @inlineCallbacks
    def serve(self) -> Any:
        """
        Our mTLS echo server, auditing to the local file.
        """
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"))
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
                                  policy, mutual=True, emitter=self.emitter)
        port = yield endpoint.listen(CountingEchoFactory())
        self.addCleanup(port.stopListening)
        self.serverPort = port.getHost().port

    @inlineCallbacks
    def connectClients(self, n: int) -> Any:
        """
        Connect C{n} clients to our server one after the other, and wait
        until the server has written each one's close record.
        """
        policy = buildPolicy(certKey=self.pki.path("client.pem"),
                             privateKey=self.pki.path("client.key"),
                             caCerts=self.pki.path("ca.pem"))
        for _ in range(n):
            closed = self.writer.written
            endpoint = clientEndpoint(reactor, TCP4ClientEndpoint(reactor, "127.0.0.1",
                                                                  self.serverPort),
                                      policy, hostname="localhost", mutual=True,
                                      emitter=AuditRecorder().emitter())
            protocol = yield endpoint.connect(CountingEchoFactory())
            protocol.transport.loseConnection()
            yield waitUntil(lambda c=closed: self.closes() > 0 and self.writer.written >= c + 2,
                            5, "the server's records")

    def closes(self) -> int:
        return sum(1 for r in self.local() if r["event"] == "connection.closed")

    def localLines(self) -> List[str]:
        with open(self.path, encoding="utf-8") as f:
            return f.read().splitlines()

    def local(self) -> List[Any]:
        return [json.loads(line) for line in self.localLines()]

    def arrived(self, collector: RsyslogCollector) -> bool:
        have = {seq for _, seq, _, _ in collector.unique()}
        return {r["seq"] for r in self.local()} <= have

    def assertSameAsLocal(self, collector: RsyslogCollector) -> None:
        """
        What the collector holds, without repeats, is the local file: every
        line exactly, in order, each once, under the node's id, with the
        record's event as MSGID.
        """
        unique = collector.unique()
        local = self.localLines()
        self.assertEqual([msg for _, _, _, msg in unique][:len(local)], local)
        seqs = [seq for _, seq, _, _ in unique]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertEqual({node for node, _, _, _ in unique}, {"node-a"})
        for _, _seq, msgid, msg in unique:
            self.assertEqual(msgid, json.loads(msg)["event"])
        # and as the collector-side verifier (audit verify --collector) sees it
        fleet = verifyCollector([collector.log])
        node = fleet.node("node-a")
        assert node is not None
        self.assertEqual(node.problems, ())
        # intact; incomplete only while the export's own TLS connection is open
        self.assertIn(node.status, ("complete", "incomplete"))
        self.assertEqual(node.firstSeq, 1)
        self.assertEqual(node.lastSeq, max(seqs))
        self.assertEqual(node.lastHash, json.loads(local[max(seqs) - 1])["hash"])
        self.assertEqual(node.records, len(unique))
        self.assertEqual(node.duplicates, len(collector.messages()) - len(unique))


class DeliveryTests(CollectorTestCase):
    """
    Records reach rsyslog as they are written, survive its outage, and are
    never sent to a collector that fails verification.
    """

    @inlineCallbacks
    def test_delivered(self) -> Any:
        """
        Every record of the local file, those written before the export
        started and those after, arrives at rsyslog exactly as written.
        """
        collector = self.collector()
        yield collector.start()
        yield self.serve()
        yield self.connectClients(2)
        export = self.export(collector)
        yield self.connectClients(3)
        yield waitUntil(lambda: self.arrived(collector), ARRIVAL, "every record at rsyslog")
        self.assertSameAsLocal(collector)
        accepted = [r for r in self.local() if r["event"] == "connection.accepted"
                    and r["role"] == "client"]
        self.assertTrue(accepted, "the export's own connection is audited")
        self.assertEqual(accepted[0]["peerIdentity"]["subject"], "CN=localhost,O=securetcp tests")
        self.assertTrue(export.connected)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            # below TLS and the gate: unacknowledged writes break the connection
            self.assertEqual(export.userTimeout, 400)

    @inlineCallbacks
    def test_collectorOutage(self) -> Any:
        """
        rsyslog stopped mid-run while clients keep connecting, then started
        again: every record arrives, in order, none twice once duplicates
        (at least once) are dropped by node, seq and hash.
        """
        collector = self.collector()
        yield collector.start()
        yield self.serve()
        export = self.export(collector)
        yield self.connectClients(3)
        yield waitUntil(lambda: self.arrived(collector), ARRIVAL, "the first records")
        yield collector.stop()
        before = len(self.localLines())
        yield self.connectClients(4)
        yield waitUntil(lambda: not export.connected, 5, "the export to see the collector gone")
        self.assertGreater(len(self.localLines()), before)
        self.assertGreater(export.queue.pending, 0)
        yield sleep(1.0)  # a few reconnection attempts fail meanwhile
        yield collector.start()
        yield waitUntil(lambda: self.arrived(collector), ARRIVAL, "every record after restart")
        self.assertSameAsLocal(collector)

    @inlineCallbacks
    def test_untrustedCollector(self) -> Any:
        """
        A collector whose certificate is not from the node's CA is refused:
        the refusal is audited in the local file, the records stay queued,
        and nothing is sent to it.
        """
        collector = self.collector(cert="server-other")
        yield collector.start()
        yield self.serve()
        export = self.export(collector)
        yield self.connectClients(1)

        def refused() -> bool:
            return any(r["event"] == "handshake.rejected" and r["role"] == "client"
                       for r in self.local())

        yield waitUntil(refused, 10, "the refusal in the local audit file")
        [rejected] = [r for r in self.local() if r["event"] == "handshake.rejected"][:1]
        self.assertEqual(rejected["reason"], "unknown_ca")
        self.assertEqual(rejected["peer"], f"127.0.0.1:{collector.port}")
        self.assertFalse(export.connected)
        self.assertGreaterEqual(export.queue.pending, len(self.localLines()) - 1)
        yield sleep(1.0)
        self.assertEqual(collector.lines(), [])

    @inlineCallbacks
    def test_collectorOfAnotherName(self) -> Any:
        """
        A collector whose certificate, from the right CA, is not valid for
        the host name of C{--audit-syslog} is refused (C{hostname_mismatch})
        and audited; nothing is sent to it.
        """
        collector = self.collector(cert="server-wrongname")
        yield collector.start()
        export = self.export(collector)
        yield waitUntil(lambda: any(r["event"] == "handshake.rejected" for r in self.local()),
                        10, "the refusal in the local audit file")
        [rejected] = [r for r in self.local() if r["event"] == "handshake.rejected"][:1]
        self.assertEqual((rejected["role"], rejected["reason"]), ("client", "hostname_mismatch"))
        self.assertFalse(export.connected)
        yield sleep(0.5)
        self.assertEqual(collector.lines(), [])

    @inlineCallbacks
    def test_collectorRequiresNodeCertificate(self) -> Any:
        """
        rsyslog refuses a node whose certificate is not from the CA of the
        nodes: nothing it was sent is written, and the records stay queued.
        """
        collector = self.collector()
        yield collector.start()
        yield self.serve()
        export = self.export(collector, client="client-other")
        yield self.connectClients(1)
        yield sleep(2.0)
        self.assertEqual(collector.lines(), [])
        self.assertEqual(export.delivered, 0)
        self.assertGreater(export.queue.pending, 0)


class RelayTests(CollectorTestCase):
    """
    C{tcp://} to the relay of C{docs/export.md} on the node's host, which
    forwards over TLS to the collector.
    """

    @inlineCallbacks
    def test_throughRelay(self) -> Any:
        """
        Every record sent over plain TCP to the local relay arrives at the
        collector exactly as a direct connection delivers it.
        """
        collector = self.collector()
        relay = self.collector(name="relay")
        relay.relayTo(collector, self.pki.path("ca.pem"), self.pki.path("client.pem"),
                      self.pki.path("client.key"))
        yield collector.start()
        yield relay.start()
        yield self.serve()
        export = self.export(relay, url=f"tcp://127.0.0.1:{relay.port}")
        yield self.connectClients(3)
        yield waitUntil(lambda: self.arrived(collector), ARRIVAL, "every record at the collector")
        self.assertSameAsLocal(collector)
        self.assertEqual(relay.lines(), [])  # it forwards, it keeps nothing
        self.assertTrue(export.connected)


class ATNATests(CollectorTestCase):
    """
    The C{atna} format: DICOM audit messages for the events ATNA asks of a
    Secure Node, through rsyslog like the C{json} format.
    """

    @inlineCallbacks
    def test_atna(self) -> Any:
        """
        Every record ATNA has a message for arrives as that message (valid
        under the DICOM schema, checked by jing), under its seq and hash,
        with the site given; the others are not sent.  A refused client
        becomes a node-authentication Security Alert.
        """
        needJing()
        collector = self.collector()
        yield collector.start()
        yield self.serve()
        export = self.export(collector, format="atna", siteId="St. Elsewhere")
        yield self.connectClients(2)
        endpoint = clientEndpoint(reactor, TCP4ClientEndpoint(reactor, "127.0.0.1",
                                                              self.serverPort),
                                  buildPolicy(caCerts=self.pki.path("ca.pem")),
                                  hostname="localhost", emitter=AuditRecorder().emitter())
        yield self.assertFailure(endpoint.connect(CountingEchoFactory()), Exception)

        def wanted() -> dict:
            return {r["seq"]: r for r in self.local()
                    if atnaMessage(r, sourceId="node-a") is not None}

        yield waitUntil(lambda: set(wanted()) <= {seq for _, seq, _, _ in collector.unique()}
                        and any(r["event"] == "handshake.rejected" for r in self.local()),
                        ARRIVAL, "every ATNA message at rsyslog")
        yield export.stopService()
        received = {seq: (msgid, msg) for _, seq, msgid, msg in collector.unique()}
        local = wanted()
        self.assertEqual(sorted(received), sorted(local))
        for seq, record in local.items():
            msgid, msg = received[seq]
            self.assertEqual(msgid, record["event"])
            self.assertEqual(msg, atnaMessage(record, sourceId="node-a", siteId="St. Elsewhere"))
        alerts = [msg for msgid, msg in received.values() if msgid == "handshake.rejected"]
        self.assertTrue(alerts)
        self.assertIn('csd-code="110113"', alerts[0])
        self.assertIn('csd-code="110126"', alerts[0])
        self.assertIn('AuditEnterpriseSiteID="St. Elsewhere"', alerts[0])
        self.assertEqual(validateAudit([msg for _, msg in received.values()]), [])


class GnuTLSDeliveryTests(CollectorTestCase):
    """
    The same with rsyslog's GnuTLS driver, checking the node's name
    (C{x509/name}) as well.
    """

    driver = "gtls"

    @inlineCallbacks
    def test_delivered(self) -> Any:
        """
        Every record arrives at rsyslog with its GnuTLS driver, which only
        accepts the node's name.
        """
        collector = self.collector(authMode="x509/name",
                                   permittedPeers=("pump-0042.ward3.hospital.example",))
        yield collector.start()
        yield self.serve()
        self.export(collector)
        yield self.connectClients(2)
        yield waitUntil(lambda: self.arrived(collector), ARRIVAL, "every record at rsyslog")
        self.assertSameAsLocal(collector)


class TwistdExportTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate --audit-syslog tls://...}, a real process,
    exports its audit file to rsyslog; its queue survives a restart of the
    node while the collector is down.
    """

    def startCollector(self, collector: RsyslogCollector) -> Program:
        rsyslogd = Program(self, collector.argv(), "rsyslogd")  # type: ignore[arg-type]
        blockUntil(collector.listening, START_TIMEOUT, "rsyslogd to listen", rsyslogd.describe)
        return rsyslogd

    def test_twistd(self) -> None:
        """
        The records of real connections through C{twistd securetcp} arrive
        at rsyslog.  Then, with rsyslog stopped, twistd handles a
        connection, is restarted and handles another: once rsyslog is back,
        every record arrives (those queued before the restart, the
        writer's C{chain.closed} and C{chain.resumed}, the new ones), and
        the collector's chain of the node is the local file.
        """
        collector = RsyslogCollector(os.path.join(self.workdir, "collector"),
                                     self.pki.path("ca.pem"), self.pki.path("server.pem"),
                                     self.pki.path("server.key"))
        rsyslogd = self.startCollector(collector)
        policy = os.path.join(self.workdir, "syslog-client.toml")
        with open(policy, "w") as f:
            f.write(f'certKey = "{self.pki.path("client.pem")}"\n'
                    f'privateKey = "{self.pki.path("client.key")}"\n'
                    f'caCerts = "{self.pki.path("ca.pem")}"\n')
        export = ("--audit-syslog", f"tls://localhost:{collector.port}",
                  "--audit-syslog-policy", policy, "--audit-syslog-node", "gw-twistd")
        backendPort, _, _ = self.backend()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, *export, listen=self.mtlsListen)
        self.exchange(port, HL7)
        self.waitForEvent("connection.closed", role="server")

        def arrived() -> bool:
            local = {r["seq"] for r in auditRecords(self.audit)}
            return local <= {seq for _, seq, _, _ in collector.unique()}

        blockUntil(arrived, 20, "every record at rsyslog", rsyslogd.describe)
        rsyslogd.stop()
        self.exchange(port, HL7)
        self.waitForEvent("connection.closed", 2, role="server")
        twistd.stop()
        _, again = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                               "--audit-log", self.audit, *export, listen=self.mtlsListen,
                               port=port)
        self.exchange(port, HL7)
        self.waitForEvent("connection.closed", 3, role="server")
        self.assertFalse(arrived())
        rsyslogd = self.startCollector(collector)
        blockUntil(arrived, 30, "every record at rsyslog after it is back", again.describe)
        events = [msgid for _, _, msgid, _ in collector.unique()]
        self.assertIn("chain.closed", events)
        self.assertIn("chain.resumed", events)
        node = verifyCollector([collector.log]).node("gw-twistd")
        assert node is not None
        self.assertEqual(node.problems, ())
        with open(self.audit, encoding="utf-8") as f:
            local = f.read().splitlines()
        unique = collector.unique()
        self.assertEqual([msg for _, _, _, msg in unique][:len(local)], local)
        self.assertEqual([seq for _, seq, _, _ in unique], sorted({s for _, s, _, _ in unique}))
        # the collector anchors the node: its local file matches what it holds
        comparison = compareWithCollector(node, [self.audit])
        self.assertIsNone(comparison.problem)
        self.assertEqual(comparison.matched, node.records)

    def test_workers(self) -> None:
        """
        With C{--workers 2}, each process exports its own audit file as the
        node C{NODE/worker-K}; the collector holds both chains, each intact
        and the same as its local file.
        """
        collector = RsyslogCollector(os.path.join(self.workdir, "collector"),
                                     self.pki.path("ca.pem"), self.pki.path("server.pem"),
                                     self.pki.path("server.key"))
        self.startCollector(collector)
        policy = os.path.join(self.workdir, "syslog-client.toml")
        with open(policy, "w") as f:
            f.write(f'certKey = "{self.pki.path("client.pem")}"\n'
                    f'privateKey = "{self.pki.path("client.key")}"\n'
                    f'caCerts = "{self.pki.path("ca.pem")}"\n')
        backendPort, _, _ = self.backend()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, "--workers", "2",
                                   "--audit-syslog", f"tls://localhost:{collector.port}",
                                   "--audit-syslog-policy", policy,
                                   "--audit-syslog-node", "gw", listen=self.mtlsListen)
        for _ in range(4):
            self.exchange(port, HL7)
        files = {f"gw/worker-{k}": workerAuditPath(self.audit, k) for k in (0, 1)}

        def arrived() -> bool:
            held: Dict[str, set] = {}
            for node, seq, _, _ in collector.unique():
                held.setdefault(node, set()).add(seq)
            return all(os.path.exists(path) and {r["seq"] for r in auditRecords(path)}
                       <= held.get(node, set()) for node, path in files.items())

        blockUntil(arrived, 30, "both workers' records at rsyslog", twistd.describe)
        fleet = verifyCollector([collector.log])
        self.assertEqual(sorted(n.node for n in fleet.nodes), sorted(files))
        for node, path in files.items():
            result = fleet.node(node)
            assert result is not None
            self.assertEqual(result.problems, ())
            self.assertIsNone(compareWithCollector(result, [path]).problem)
