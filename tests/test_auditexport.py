"""
Tests for the audit export without a network: L{ExportFeed} (the sealed
lines of an audit file queued as syslog messages, catching up from the
file, the bound audited), L{AuditSyslogExport} (in order, at least once,
reconnecting with backoff, all driven by a L{Clock}) and
L{auditSyslogExport}'s errors at start.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, List, Optional

from prometheus_client.exposition import generate_latest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.atna import atnaMessage
from securetcp.audit.chain import ZERO_HASH, seal
from securetcp.audit.exportfeed import ExportFeed, atnaFormat, jsonFormat, queuedSeq
from securetcp.audit.queue import MIN_BYTES, DiskQueue
from securetcp.audit.records import chainCheckpoint, chainGap, chainStarted
from securetcp.audit.syslog import SyslogIdentity, readFrames
from securetcp.audit.writer import AuditLogObserver
from securetcp.auditexport import AuditSyslogExport, auditSyslogExport, parseCollector
from securetcp.errors import AuditExportError
from securetcp.metrics import SecureTCPMetrics

from ._recording import AuditRecorder

IDENTITY = SyslogIdentity(node="gw-1", hostname="gw-1.example", procid="1")


class FakeEndpoint:
    """
    A client endpoint whose connections the test makes succeed or fail.
    """

    def __init__(self) -> None:
        self.attempts: List[Any] = []
        self.outcomes: List[Optional[Failure]] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        self.attempts.append(factory)
        outcome = self.outcomes.pop(0) if self.outcomes else Failure(ConnectionRefusedError())
        if outcome is not None:
            return fail(outcome)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.protocol, self.transport = protocol, transport
        return succeed(protocol)


def sentSeqs(data: bytes) -> List[int]:
    messages, rest = readFrames(data)
    assert rest == b""
    return [queuedSeq(m) for m in messages]  # type: ignore[misc]


class ExportTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.base = self.mktemp()
        os.makedirs(self.base)
        self.path = os.path.join(self.base, "audit.jsonl")
        self.audit = AuditRecorder()
        self.writer = self.newWriter()

    def newWriter(self) -> AuditLogObserver:
        writer = AuditLogObserver(self.path, fsync="off", now=self.clock.seconds)
        self.addCleanup(writer.close)
        return writer

    def newExport(self, maxBytes: int = 64 * 2**20, **kw: Any) -> AuditSyslogExport:
        queue = DiskQueue(os.path.join(self.base, "queue"), maxBytes,
                          segmentBytes=MIN_BYTES // 4)
        self.addCleanup(queue.close)
        feed = ExportFeed(queue, jsonFormat(IDENTITY), self.audit.emitter(), self.clock,
                          "tls://siem.example:6514")
        self.endpoint = FakeEndpoint()
        return AuditSyslogExport(self.endpoint, feed, self.writer, self.clock, **kw)

    def write(self, n: int) -> None:
        for i in range(n):
            self.writer.write(chainGap(self.clock.seconds(), i, None))

    def localLines(self) -> List[bytes]:
        with open(self.path, "rb") as f:
            return [line for line in f.read().split(b"\n") if line]


class FeedTests(ExportTestCase):
    """
    The feed queues the local file's sealed lines, as they are written and
    those written before it started.
    """

    def test_linesAsWritten(self) -> None:
        """
        Every line the writer writes is queued as a message whose MSG is
        the line exactly, after the lines already in the file.
        """
        self.write(3)
        export = self.newExport()
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        self.write(2)
        self.clock.advance(0.05)  # the batch delay
        messages, _ = readFrames(self.endpoint.transport.value())
        local = self.localLines()
        self.assertEqual(len(messages), 6)
        self.assertEqual([m.split(b"] ", 1)[1] for m in messages], local)

    def test_catchUpAfterRestart(self) -> None:
        """
        An export started again queues the records written while it was
        stopped (the writer's close and resume records among them), and
        no record twice.
        """
        export = self.newExport()
        export.startService()
        self.write(2)
        export.stopService()
        self.write(2)
        self.writer.close()
        self.writer = self.newWriter()  # chain.resumed
        again = self.newExport()
        again.startService()
        self.addCleanup(again.stopService)
        frames = again.queue.read(again.queue.acked, 10**9)
        seqs = [queuedSeq(f) for _, f in frames]
        self.assertEqual(seqs, list(range(1, len(self.localLines()) + 1)))
        events = [json.loads(line)["event"] for line in self.localLines()]
        self.assertIn("chain.closed", events)
        self.assertEqual(events[-1], "chain.resumed")

    def test_catchUpAcrossRotation(self) -> None:
        """
        Records written to a file since rotated away while the export was
        stopped are queued from the rotated file, in order.
        """
        self.writer.close()
        os.unlink(self.path)
        self.writer = AuditLogObserver(self.path, fsync="off", maxBytes=4096,
                                       now=self.clock.seconds)
        self.addCleanup(self.writer.close)
        export = self.newExport()
        export.startService()
        export.stopService()
        for i in range(40):
            self.writer.write(chainGap(self.clock.seconds(), i, None))
            self.clock.advance(1)
        self.assertGreater(len(os.listdir(self.base)), 2)
        again = self.newExport()
        again.startService()
        self.addCleanup(again.stopService)
        seqs = [queuedSeq(f) for _, f in again.queue.read(again.queue.acked, 10**9)]
        self.assertEqual(seqs, list(range(1, self.writer.lastSeq + 1)))

    def test_newQueueOnLongFile(self) -> None:
        """
        A new queue on an audit file longer than half its bound does not
        send the history: it starts with the records written from then on.
        """
        while os.path.getsize(self.path) <= MIN_BYTES // 2:
            self.write(10)
        head = self.writer.lastSeq
        export = self.newExport(maxBytes=MIN_BYTES)
        export.startService()
        self.addCleanup(export.stopService)
        self.assertEqual(export.queue.pending, 0)
        self.write(2)
        seqs = [queuedSeq(f) for _, f in export.queue.read(export.queue.acked, 10**9)]
        self.assertEqual(seqs, [head + 1, head + 2])

    def test_boundAudited(self) -> None:
        """
        At the bound, records are not queued; when one is queued again an
        C{export.dropped} record names the first and last not queued, goes
        to the local file and is queued itself.
        """
        export = self.newExport(maxBytes=MIN_BYTES)
        export.startService()
        self.addCleanup(export.stopService)
        while export.feed.dropping == 0:
            self.write(1)
        self.write(4)
        firstDropped = self.writer.lastSeq - 4
        self.assertEqual(export.feed.dropping, 5)
        # the collector comes back and takes everything queued
        self.endpoint.outcomes = [None]
        self.clock.advance(export.delay)
        self.clock.advance(export.settle)
        self.assertEqual(export.queue.pending, 0)
        self.write(1)
        self.clock.advance(0.05)  # the batch delay
        [dropped] = self.audit.events("export.dropped")
        self.assertEqual((dropped["dropped"], dropped["firstSeq"], dropped["lastSeq"]),
                         (5, firstDropped, firstDropped + 4))
        self.assertEqual(dropped["collector"], "tls://siem.example:6514")


class FormatTests(SynchronousTestCase):
    """
    The formats of the MSG: the sealed line (C{json}) or its ATNA message.
    """

    def test_atna(self) -> None:
        """
        The C{atna} format sends a record's DICOM audit message, with the
        node id as AuditSourceID and the site, under the record's seq and
        hash; a record ATNA has no message for is not sent.
        """
        started, _ = seal(chainStarted(0, "sha256"), 1, ZERO_HASH)
        record = json.loads(started)
        message = atnaFormat(IDENTITY, "gw-1", "St. Elsewhere")(started.rstrip(b"\n"), record)
        assert message is not None
        head, xml = message.split(b"] ", 1)
        self.assertIn(b'seq="1" hash="' + record["hash"].encode(), head)
        self.assertEqual(xml.decode(), atnaMessage(record, sourceId="gw-1",
                                                   siteId="St. Elsewhere"))
        checkpoint, _ = seal(chainCheckpoint(0, 1, "ab" * 32, "ed25519", "k", "00", "count"), 2,
                             record["hash"])
        self.assertIsNone(atnaFormat(IDENTITY, "gw-1")(checkpoint, json.loads(checkpoint)))


class QueueFailureTests(ExportTestCase):
    """
    A queue that cannot be written loses records for the collector only,
    and says so.
    """

    def test_unwritable(self) -> None:
        """
        Records that cannot be written to the queue (a full disk) are
        counted as not queued; once writing works, C{export.dropped} names
        them, and the local file has every record.
        """
        export = self.newExport()
        export.startService()
        self.addCleanup(export.stopService)
        real = export.queue.append
        failing = [True]

        def append(message: bytes) -> bool:
            if failing[0]:
                raise OSError(28, "No space left on device")
            return real(message)

        export.queue.append = append  # type: ignore[method-assign]
        self.write(3)
        failing[0] = False
        self.write(1)
        self.clock.advance(0.05)  # the batch delay
        [dropped] = self.audit.events("export.dropped")
        self.assertEqual((dropped["dropped"], dropped["firstSeq"], dropped["lastSeq"]), (3, 2, 4))
        self.assertEqual(len(self.localLines()), 5)
        self.flushLoggedErrors()


class ThreadTests(ExportTestCase):
    """
    A writer may write in another thread (a timed checkpoint is written in
    a timer thread): the export then hands its work to the reactor.
    """

    def test_lineFromAnotherThread(self) -> None:
        """
        A record written in another thread is queued there, and the export
        is woken through the reactor's C{callFromThread}, which sends it.
        """
        handed: List[Any] = []

        class Threads:
            def callFromThread(self, call: Any, *args: Any) -> None:
                handed.append((call, args))

        self.patch(threadable, "ioThread", threadable.getThreadID())
        queue = DiskQueue(os.path.join(self.base, "queue"))
        self.addCleanup(queue.close)
        feed = ExportFeed(queue, jsonFormat(IDENTITY), self.audit.emitter(), self.clock,
                          "tls://siem.example:6514")
        endpoint = FakeEndpoint()
        endpoint.outcomes = [None]
        export = AuditSyslogExport(endpoint, feed, self.writer, self.clock, threads=Threads())
        export.startService()
        self.addCleanup(export.stopService)
        before = len(endpoint.transport.value())
        thread = threading.Thread(target=self.write, args=(1,))
        thread.start()
        thread.join(10)
        self.assertEqual(queue.pending, 2)
        self.assertEqual(len(handed), 1)
        for call, args in handed:
            call(*args)
        self.clock.advance(export.batch)
        self.assertGreater(len(endpoint.transport.value()), before)
        self.assertEqual(sentSeqs(endpoint.transport.value()), [1, 2])


class DeliveryTests(ExportTestCase):
    """
    L{AuditSyslogExport} delivers in order, at least once, and reconnects
    with backoff.
    """

    def test_backoff(self) -> None:
        """
        Failed connection attempts are retried after 0.5, 1, 2, ... seconds,
        up to C{maxDelay}; a connection that delivers resets the delay.
        """
        export = self.newExport(maxDelay=4.0)
        export.startService()
        self.addCleanup(export.stopService)
        times = []
        for _ in range(6):
            before = len(self.endpoint.attempts)
            step = 0.0
            while len(self.endpoint.attempts) == before:
                self.clock.advance(0.25)
                step += 0.25
            times.append(step)
        self.assertEqual(times, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0])
        self.endpoint.outcomes = [None]
        self.clock.advance(4.0)
        self.assertTrue(export.connected)
        self.clock.advance(export.settle)
        self.assertEqual(export.delay, 0.5)

    def test_backoffWhileNothingDelivered(self) -> None:
        """
        A collector that accepts connections and drops them before anything
        counts delivered (one refusing the node's certificate after a TLS
        1.3 handshake) is retried with growing delays, not every 0.5 s.
        """
        export = self.newExport(maxDelay=8.0)
        export.startService()
        self.addCleanup(export.stopService)
        delays = []
        for _ in range(5):
            self.endpoint.outcomes = [None]
            self.clock.advance(export.delay)
            self.assertTrue(export.connected)
            self.endpoint.protocol.connectionLost(Failure(ConnectionLost()))
            delays.append(export.delay)
        self.assertEqual(delays, [2.0, 4.0, 8.0, 8.0, 8.0])

    def test_settleThenDelivered(self) -> None:
        """
        Messages written count delivered only once the connection stayed up
        C{settle} seconds; then the queue forgets them.
        """
        export = self.newExport()
        self.write(3)
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        self.assertEqual(sentSeqs(self.endpoint.transport.value()), [1, 2, 3, 4])
        self.assertEqual(export.queue.pending, 4)
        self.clock.advance(export.settle - 0.1)
        self.assertEqual(export.queue.pending, 4)
        self.clock.advance(0.1)
        self.assertEqual((export.queue.pending, export.delivered), (0, 4))

    def test_resendAfterLoss(self) -> None:
        """
        Messages written within C{settle} seconds before the connection was
        lost are sent again after the next connect, in order, after those
        delivered and before the new ones.
        """
        export = self.newExport()
        self.write(2)
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        self.clock.advance(export.settle)      # 1..3 delivered
        self.write(2)                          # 4, 5
        self.clock.advance(0.05)  # the batch delay
        self.assertEqual(sentSeqs(self.endpoint.transport.value()), [1, 2, 3, 4, 5])
        self.endpoint.protocol.connectionLost(Failure(ConnectionLost()))
        self.write(1)                          # 6, queued while down
        self.endpoint.outcomes = [None]
        self.clock.advance(export.minDelay)
        self.assertEqual(sentSeqs(self.endpoint.transport.value()), [4, 5, 6])

    def test_restartResends(self) -> None:
        """
        A new export on the same queue (a restart of the node) sends from
        the first message not counted delivered.
        """
        export = self.newExport()
        self.write(2)
        self.endpoint.outcomes = [None]
        export.startService()
        self.clock.advance(export.settle)
        self.write(2)
        self.clock.advance(0.05)  # the batch delay
        export.stopService()
        again = self.newExport()
        self.endpoint.outcomes = [None]
        again.startService()
        self.addCleanup(again.stopService)
        self.assertEqual(sentSeqs(self.endpoint.transport.value()), [4, 5])

    def test_stopWhileConnecting(self) -> None:
        """
        Stopping the export while a connection is being made cancels it:
        nothing is left behind in the reactor.
        """
        cancelled: List[Deferred[Any]] = []
        pending: Deferred[Any] = Deferred(cancelled.append)
        export = self.newExport()
        export.endpoint = type("Slow", (), {"connect": lambda self, f: pending})()
        export.startService()
        export.stopService()
        self.assertEqual(cancelled, [pending])
        self.assertIsNone(self.successResultOf(pending))  # the failure was handled
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_confirmationsCoalesced(self) -> None:
        """
        However often records are written, the queue's position is
        recorded at most once a second.
        """
        export = self.newExport()
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        acknowledged = []
        real = export.queue.acknowledge

        def acknowledge(position: Any, count: int) -> None:
            acknowledged.append(self.clock.seconds())
            real(position, count)

        export.queue.acknowledge = acknowledge  # type: ignore[method-assign]
        for _ in range(100):
            self.write(1)
            self.clock.advance(0.05)
        self.clock.advance(export.settle + 1)
        self.assertEqual(export.queue.pending, 0)
        gaps = [b - a for a, b in zip(acknowledged, acknowledged[1:], strict=False)]
        self.assertTrue(all(gap >= 1.0 for gap in gaps), acknowledged)
        self.assertLessEqual(len(acknowledged), 8)

    def test_producer(self) -> None:
        """
        The sender is the transport's streaming producer: while the
        transport says its buffer is full, nothing more is written; when it
        resumes, the rest follows in order.
        """
        export = self.newExport()
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        transport = self.endpoint.transport
        self.assertTrue(transport.streaming)
        transport.producer.pauseProducing()
        self.write(3)
        self.clock.advance(0.05)  # the batch delay
        self.assertEqual(sentSeqs(transport.value()), [1])
        transport.producer.resumeProducing()
        self.clock.advance(0.05)  # the batch delay
        self.assertEqual(sentSeqs(transport.value()), [1, 2, 3, 4])

    def test_window(self) -> None:
        """
        No more than C{window} bytes are written ahead of what counts
        delivered; the rest follows as they are.
        """
        self.write(200)
        export = self.newExport(window=4096)
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)
        first = len(self.endpoint.transport.value())
        self.assertLess(first, 4096 + 1024)
        while export.queue.pending:
            self.clock.advance(export.settle)
        self.assertEqual(sentSeqs(self.endpoint.transport.value()), list(range(1, 202)))


class MetricsTests(ExportTestCase):
    """
    The export's state as Prometheus metrics.
    """

    def test_metrics(self) -> None:
        """
        L{SecureTCPMetrics.watchExport} reports the queue (messages, bytes,
        bound), drops, deliveries and the connection, by collector.
        """
        metrics = SecureTCPMetrics()
        export = self.newExport()
        metrics.watchExport(export)
        self.write(2)
        self.endpoint.outcomes = [None]
        export.startService()
        self.addCleanup(export.stopService)

        def value(name: str) -> float:
            found = metrics.registry.get_sample_value(
                name, {"collector": "tls://siem.example:6514"})
            assert found is not None, name
            return found

        self.assertEqual(value("securetcp_export_queue_messages"), 3)
        self.assertEqual(value("securetcp_export_connected"), 1)
        self.assertEqual(value("securetcp_export_delivered_records_total"), 0)
        self.assertGreater(value("securetcp_export_queue_bytes"), 0)
        self.assertEqual(value("securetcp_export_queue_limit_bytes"), 64 * 2**20)
        self.assertEqual(value("securetcp_export_dropped_records_total"), 0)
        self.clock.advance(export.settle)
        self.assertEqual(value("securetcp_export_queue_messages"), 0)
        self.assertEqual(value("securetcp_export_delivered_records_total"), 3)
        self.assertIn(b"# TYPE securetcp_export_queue_messages gauge",
                      generate_latest(metrics.registry))


class ConfigurationTests(SynchronousTestCase):
    """
    Bad configuration fails at start, naming the argument and the fix.
    """

    def test_collectorAddress(self) -> None:
        """
        C{tls://HOST:PORT} and C{tcp://HOST:PORT} (IPv6 in brackets) are
        collector addresses; anything else is refused with the forms.
        """
        self.assertEqual(parseCollector("tls://siem.example:6514"),
                         ("tls", "siem.example", 6514))
        self.assertEqual(parseCollector("tcp://[::1]:514"), ("tcp", "::1", 514))
        for bad in ("siem:6514", "udp://siem:514", "tls://siem", "tls://siem:0",
                    "tls://siem:70000", "tls://:6514", ""):
            e = self.assertRaises(AuditExportError, parseCollector, bad)
            self.assertIn("--audit-syslog", str(e))
            self.assertIn("tls://HOST:PORT", str(e))

    def test_policyNeeded(self) -> None:
        """
        A tls:// collector without a client policy file, or with one that
        does not exist, is refused naming --audit-syslog-policy.
        """
        queue = self.mktemp()
        reactor = MemoryReactorClock()
        e = self.assertRaises(AuditExportError, auditSyslogExport, reactor, "a.jsonl",
                              "tls://127.0.0.1:6514", queueDir=queue)
        self.assertIn("--audit-syslog-policy", str(e))
        e = self.assertRaises(AuditExportError, auditSyslogExport, reactor, "a.jsonl",
                              "tls://127.0.0.1:6514", policyFile="/nonexistent.toml",
                              queueDir=queue)
        self.assertIn("/nonexistent.toml", str(e))
        self.assertIn("does not exist", str(e))

    def test_badFormatAndNode(self) -> None:
        """
        An unknown format or a node id with spaces is refused.
        """
        reactor = MemoryReactorClock()
        e = self.assertRaises(AuditExportError, auditSyslogExport, reactor, "a.jsonl",
                              "tcp://127.0.0.1:514", queueDir=self.mktemp(), format="xml")
        self.assertIn("--audit-syslog-format", str(e))
        e = self.assertRaises(AuditExportError, auditSyslogExport, reactor, "a.jsonl",
                              "tcp://127.0.0.1:514", queueDir=self.mktemp(), node="a b")
        self.assertIn("--audit-syslog-node", str(e))

    def test_plainTCP(self) -> None:
        """
        A tcp:// collector needs no policy (a local relay) and refuses one.
        """
        reactor = MemoryReactorClock()
        export = auditSyslogExport(reactor, "a.jsonl", "tcp://127.0.0.1:514",
                                   queueDir=self.mktemp())
        self.addCleanup(export.queue.close)
        self.assertEqual(export.feed.collector, "tcp://127.0.0.1:514")
        e = self.assertRaises(AuditExportError, auditSyslogExport, reactor, "a.jsonl",
                              "tcp://127.0.0.1:514", policyFile="p.toml",
                              queueDir=self.mktemp())
        self.assertIn("needs a tls:// collector", str(e))
