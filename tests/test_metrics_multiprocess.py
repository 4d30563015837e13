"""
Tests for L{securetcp._metricsfiles} and L{securetcp.metrics.SecureTCPMetrics}
in multiprocess mode, and how C{twistd securetcp --workers N --metrics}
builds it: several processes are stood in for, within this one, by
C{prometheus_client} value classes with their own process identifiers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any, Dict, Iterator, List, Tuple

from prometheus_client import values
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from securetcp._metricsfiles import processEnded
from securetcp._twistd import metricsservice
from securetcp._twistd.tap import Options, makeService
from securetcp.metrics import SecureTCPMetrics

from ._net import escape
from ._pki import sharedPKI

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]
VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def samples(metrics: SecureTCPMetrics) -> Samples:
    """
    Every sample of C{metrics}' exposition: C{(name, sorted labels) -> value}.
    """
    text = generate_latest(metrics.registry).decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class _Gate:
    """
    What L{securetcp.metrics.ListenerMetrics} reads of a gate factory.
    """

    def __init__(self, openConnections: int) -> None:
        self.openConnections = openConnections
        self.live: set = set()


class _Queue:
    pending, size, maxBytes, dropped = 2, 100, 1000, 1


class _Feed:
    collector = "tls://collector:6514"


class _Export:
    """
    What L{securetcp.audit.exportmetrics.ExportCollector} reads of an export.
    """

    def __init__(self, connected: bool) -> None:
        self.queue, self.feed, self.connected, self.delivered = _Queue(), _Feed(), connected, 5


class ProcessesMixin:
    """
    Stands in for processes: L{process} makes C{prometheus_client} create
    metric values as process C{pid} would; everything is restored after
    the test.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(self.directory)
        saved, variable = values.ValueClass, os.environ.get(VARIABLE)
        self.classes: List[Any] = []

        def restore() -> None:
            for valueClass in self.classes:
                valueClass.close_all_files()
            values.ValueClass = saved
            if variable is None:
                os.environ.pop(VARIABLE, None)
            else:
                os.environ[VARIABLE] = variable

        self.addCleanup(restore)  # type: ignore[attr-defined]
        self.pids: Dict[int, Any] = {}

    @contextlib.contextmanager
    def process(self, pid: int) -> Iterator[None]:
        if pid not in self.pids:
            self.pids[pid] = values.MultiProcessValue(lambda: pid)
            self.classes.append(self.pids[pid])
        before, values.ValueClass = values.ValueClass, self.pids[pid]
        try:
            yield
        finally:
            values.ValueClass = before

    def metrics(self, pid: int) -> SecureTCPMetrics:
        with self.process(pid):
            return SecureTCPMetrics(multiprocessDir=self.directory)


class MultiprocessTests(ProcessesMixin, SynchronousTestCase):
    """
    Two processes' metrics, exposed by the one that serves C{/metrics}.
    """

    def test_countersSummed(self) -> None:
        """
        Handshakes, their durations and audit records counted in two
        processes are exposed as their sums, under the same labels.
        """
        serving, other = self.metrics(101), self.metrics(102)
        with self.process(101):
            serving.listener("mtls:6661").admitted(0.01)
            serving.listener("mtls:6661").rejected("no_client_certificate", 0.01)
        with self.process(102):
            for _ in range(3):
                other.listener("mtls:6661").admitted(0.02)
        with self.process(101):
            found = samples(serving)
        labels = (("listener", "mtls:6661"),)
        self.assertEqual(found[("securetcp_handshakes_total", labels + (
            ("outcome", "accepted"), ("reason", "")))], 4.0)
        self.assertEqual(found[("securetcp_handshakes_total", labels + (
            ("outcome", "rejected"), ("reason", "no_client_certificate")))], 1.0)
        self.assertEqual(found[("securetcp_handshake_duration_seconds_count", labels)], 5.0)
        self.assertEqual(sorted(os.listdir(self.directory)),
                         ["counter_101.db", "counter_102.db", "gauge_livesum_101.db",
                          "histogram_101.db", "histogram_102.db"])

    def test_liveValuesSynced(self) -> None:
        """
        Open connections (summed over the live processes) and bytes (a
        counter) are what each process last synced; the serving process
        syncs its own when scraped; syncing again does not count bytes
        twice.
        """
        serving, other = self.metrics(101), self.metrics(102)
        with self.process(101):
            serving.listener("mtls:6661").gateStarted(_Gate(2))
            serving.listener("mtls:6661").closed(10, 20)
        with self.process(102):
            other.listener("mtls:6661").gateStarted(_Gate(1))
            other.listener("mtls:6661").closed(5, 7)
            other.sync()
            other.sync()
        with self.process(101):
            found = samples(serving)
            again = samples(serving)
        labels = (("listener", "mtls:6661"),)
        self.assertEqual(found[("securetcp_open_connections", labels)], 3.0)
        self.assertEqual(found[("securetcp_received_bytes_total", labels)], 15.0)
        self.assertEqual(found[("securetcp_sent_bytes_total", labels)], 27.0)
        self.assertEqual(again, found)

    def test_endedProcess(self) -> None:
        """
        Once a process ended, its open connections no longer count; what it
        counted stays in the totals.
        """
        serving, other = self.metrics(101), self.metrics(102)
        with self.process(102):
            other.listener("mtls:6661").gateStarted(_Gate(4))
            other.listener("mtls:6661").admitted(0.01)
            other.sync()
        processEnded(self.directory, 102)
        with self.process(101):
            serving.listener("mtls:6661").gateStarted(_Gate(1))
            found = samples(serving)
        labels = (("listener", "mtls:6661"),)
        self.assertEqual(found[("securetcp_open_connections", labels)], 1.0)
        self.assertEqual(found[("securetcp_handshakes_total", labels + (
            ("outcome", "accepted"), ("reason", "")))], 1.0)

    def test_export(self) -> None:
        """
        Each process's audit export: queues and counts are summed;
        C{securetcp_export_connected} is 1 only while every live process's
        export is connected.
        """
        serving, other = self.metrics(101), self.metrics(102)
        with self.process(101):
            serving.watchExport(_Export(True))
        with self.process(102):
            other.watchExport(_Export(False))
            other.sync()
        with self.process(101):
            found = samples(serving)
        name = (("collector", "tls://collector:6514"),)
        self.assertEqual(found[("securetcp_export_queue_messages", name)], 4.0)
        self.assertEqual(found[("securetcp_export_dropped_records_total", name)], 2.0)
        self.assertEqual(found[("securetcp_export_delivered_records_total", name)], 10.0)
        self.assertEqual(found[("securetcp_export_connected", name)], 0.0)
        processEnded(self.directory, 102)
        with self.process(101):
            self.assertEqual(samples(serving)[("securetcp_export_connected", name)], 1.0)

    def test_expiryOnce(self) -> None:
        """
        The expiry of the certificates in force is read by the serving
        process when scraped, once, not once per process.
        """
        from securetcp import buildPolicy
        from securetcp._fields import Role
        from securetcp.materials import loadMaterials

        pki = sharedPKI()
        policy = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                             caCerts=pki.path("ca.pem"))
        materials = loadMaterials(policy, Role.SERVER)
        serving, other = self.metrics(101), self.metrics(102)
        for metrics, pid in ((serving, 101), (other, 102)):
            metrics.watchMaterials("mtls:6661", lambda: materials)
            with self.process(pid):
                metrics.sync()
        with self.process(101):
            found = samples(serving)
        own = [k for k in found
               if k[0] == "securetcp_certificate_expiry_seconds" and ("role", "own") in k[1]]
        self.assertEqual(len(own), 1)


class WorkersBuildTests(ProcessesMixin, SynchronousTestCase):
    """
    How C{twistd securetcp --workers 2 --metrics ENDPOINT} builds its
    metrics, in the twistd process and in a worker.
    """

    def build(self, *, worker: Any = None, backend: str = "tcp:127.0.0.1:1") -> Any:
        pki = sharedPKI()
        listen = (f"mtls:0:interface=127.0.0.1:certKey={escape(pki.path('server.pem'))}"
                  f":privateKey={escape(pki.path('server.key'))}"
                  f":caCerts={escape(pki.path('ca.pem'))}")
        options = Options(build=False, worker=worker)
        options.parseOptions(["terminate", "--listen", listen, "--backend", backend,
                              "--workers", "2", "--metrics", "tcp:0:interface=127.0.0.1"])
        self.reactor = MemoryReactorClock()
        with self.process(101 if worker is None else 102):
            return makeService(options, self.reactor)

    def test_parent(self) -> None:
        """
        The twistd process makes a fresh directory, names it in
        C{PROMETHEUS_MULTIPROC_DIR} for its workers, removes it once its
        reactor has shut down, serves the metrics, and is not ready while
        a worker does not run.
        """
        top = self.build()
        directory = top.metrics.multiprocessDir
        self.addCleanup(shutil.rmtree, directory, True)
        self.assertTrue(os.path.basename(directory).startswith("securetcp-metrics-"))
        self.assertEqual(os.environ[VARIABLE], directory)
        self.assertIn("MetricsService", [type(s).__name__ for s in top])
        [service] = [s for s in top if type(s).__name__ == "MetricsService"]
        top.supervisor.running = True
        top.supervisor.listeners.bound.append(object())
        self.assertIn("worker 1 is not running", service.problems())
        for f, args, kwargs in self.reactor.triggers["after"]["shutdown"]:
            f(*args, **kwargs)
        self.assertFalse(os.path.exists(directory))

    def test_notBuiltNoDirectory(self) -> None:
        """
        When the service cannot be built (here: a bad C{--backend}), the
        usage error names the option and the directory made for the
        metrics is removed at once.
        """
        from twisted.python import usage

        error = self.assertRaises(usage.UsageError, self.build, backend="nonsense:1")
        self.assertTrue(str(error).startswith("--backend: "), str(error))
        directory = os.environ[VARIABLE]
        self.assertTrue(os.path.basename(directory).startswith("securetcp-metrics-"))
        self.assertFalse(os.path.exists(directory))

    def test_workerEndedNoLongerLive(self) -> None:
        """
        The twistd process stops counting the live gauges of a worker that
        ended (by its pid).
        """
        top = self.build()
        directory = top.metrics.multiprocessDir
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "gauge_livesum_4242.db")
        with open(path, "wb"):
            pass
        [ended] = top.supervisor.onEnded
        ended(4242)
        self.assertFalse(os.path.exists(path))

    def test_worker(self) -> None:
        """
        A worker uses the directory its environment names, serves nothing
        itself, and copies its live values every second.
        """
        from securetcp._twistd.workers import WorkerRole

        os.environ[VARIABLE] = self.directory
        top = self.build(worker=WorkerRole(1, 2, [3]))
        self.assertEqual(top.metrics.multiprocessDir, self.directory)
        names = [type(s).__name__ for s in top]
        self.assertNotIn("MetricsService", names)
        self.assertIn("MetricsSync", names)

    def test_workerWithoutDirectory(self) -> None:
        """
        A worker started without the directory refuses to start, naming
        C{--metrics}.
        """
        from twisted.python import usage

        from securetcp._twistd.workers import WorkerRole

        os.environ.pop(VARIABLE, None)
        error = self.assertRaises(usage.UsageError, self.build, worker=WorkerRole(1, 2, [3]))
        self.assertIn("--metrics: this worker was started without", str(error))

    def test_syncService(self) -> None:
        """
        L{metricsservice.MetricsSync} syncs at start, every second and at
        stop.
        """
        calls: List[int] = []

        class Counting:
            def sync(self) -> None:
                calls.append(1)

        clock = MemoryReactorClock()
        sync = metricsservice.MetricsSync(clock, Counting())  # type: ignore[arg-type]
        sync.startService()
        clock.advance(metricsservice.HEARTBEAT)
        sync.stopService()
        self.assertEqual(len(calls), 3)
        self.assertEqual(clock.getDelayedCalls(), [])


class PrometheusClientFenceTests(SynchronousTestCase):
    """
    What L{securetcp._metricsfiles.useDirectory} takes from
    C{prometheus_client} beyond its documented settings is still there.
    """

    def test_valueClass(self) -> None:
        """
        C{prometheus_client.values} has the module-level C{ValueClass} every
        metric value is made from, and C{MultiProcessValue()} makes a class
        that says it is the multiprocess one (what C{useDirectory} checks
        before replacing it); a release that drops either fails here, by
        name, rather than in a worker.
        """
        self.assertTrue(hasattr(values, "ValueClass"), "prometheus_client.values.ValueClass")
        made = values.MultiProcessValue()
        self.assertIs(getattr(made, "_multiprocess", None), True,
                      "prometheus_client.values.MultiProcessValue()._multiprocess")
