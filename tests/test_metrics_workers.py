"""
Tests for C{twistd securetcp terminate --workers 2 --metrics ENDPOINT}: a
real twistd process and its worker, real TLS clients (C{openssl
s_client}) whose connections land on both processes, and the one
C{/metrics} endpoint, which reports the whole service; its exposition is
checked by C{promtool check metrics}.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any, List, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._twistd.metricsservice import DIRECTORY_VARIABLE, newMetrics
from securetcp._twistd.options import JobError
from securetcp._twistd.workers import WorkerRole, WorkerSupervisor, workerAuditPath

from ._net import freePort
from ._scrape import Samples, fetch, parse
from ._twistd import (
    PEER_TIMEOUT,
    START_TIMEOUT,
    Program,
    TapProcessMixin,
    auditEvents,
    blockUntil,
    pidAlive,
    waitWorkerListening,
)

PROMTOOL = shutil.which("promtool")

class WorkerMetricsDirectoryTests(SynchronousTestCase):
    """
    A worker writes its metrics into the directory its twistd process made
    for the run, named in its environment.
    """

    def test_workerWithoutDirectory(self) -> None:
        """
        A worker started without that directory (or with one that is gone)
        refuses C{--metrics}, naming the option and the variable, rather
        than counting into files nobody reads.
        """
        role = WorkerRole(1, 2, ())
        for value in (None, os.path.join(self.mktemp(), "gone")):
            environ = {k: v for k, v in os.environ.items() if k != DIRECTORY_VARIABLE}
            if value is not None:
                environ[DIRECTORY_VARIABLE] = value
            self.patch(os, "environ", environ)
            e = self.assertRaises(JobError, newMetrics, None, 2, role)
            self.assertEqual(e.key, "metrics")
            self.assertIn(DIRECTORY_VARIABLE, e.problem)


class WorkersMetricsTests(TapProcessMixin, SynchronousTestCase):
    """
    One C{/metrics} for a twistd process (worker 0) and its worker 1.
    """

    def start(self) -> Tuple[int, int, Program]:
        backendPort, _backend, _count = self.backend()
        metricsPort = freePort()
        port, twistd = self.twistd(
            "terminate", "--backend", f"tcp:127.0.0.1:{backendPort}", "--audit-log",
            self.audit, "--workers", "2", "--metrics", f"tcp:{metricsPort}:interface=127.0.0.1",
            listen=self.mtlsListen)
        twistd.waitFor(b"starting on %d" % metricsPort, PEER_TIMEOUT, "/metrics to listen")
        waitWorkerListening(twistd, port)
        self.started = time.monotonic()
        return port, metricsPort, twistd

    def accepted(self) -> List[int]:
        """
        How many connections each process (0, 1) accepted, by its audit file.
        """
        return [len(auditEvents(workerAuditPath(self.audit, k), "connection.accepted"))
                for k in (0, 1)]

    def closed(self) -> int:
        return sum(len(auditEvents(workerAuditPath(self.audit, k), "connection.closed"))
                   for k in (0, 1))

    def load(self, port: int) -> List[bytes]:
        """
        Lines exchanged through C{openssl s_client}, one connection each,
        until both processes accepted some (at most 40).
        """
        lines = []
        for n in range(40):
            line = b"line %d" % n
            self.exchange(port, line)
            lines.append(line)
            if n >= 5 and all(self.accepted()):
                break
        self.assertTrue(all(self.accepted()), f"not both processes accepted: {self.accepted()}")
        blockUntil(lambda: self.closed() == len(lines), PEER_TIMEOUT, "every close record")
        return lines

    def scrape(self, metricsPort: int, ready: Any) -> Samples:
        """
        C{/metrics} once C{ready(samples)} (the worker copies its live
        values every second).
        """
        seen: List[str] = []

        def scraped() -> Samples:
            status, body = fetch(metricsPort, "/metrics")
            self.assertEqual(status, 200)
            seen[:] = [body]
            found = parse(body)
            return found if ready(found) else {}

        return blockUntil(scraped, PEER_TIMEOUT, "the expected /metrics", lambda: seen[0])

    def workerPid(self, twistd: Program) -> int:
        [pid] = re.findall(rb"started worker 1 \(pid (\d+)\)", twistd.out + twistd.err)[-1:]
        return int(pid)

    def test_totalsOfBothWorkers(self) -> None:
        """
        After connections that landed on both processes, C{/metrics} counts
        every one of them: accepted handshakes and their durations equal
        the connections made, bytes each way are the sums of both
        processes, no connection is open, the certificate in force is
        reported once, and C{/readyz} is ready.  Both processes write to
        one fresh directory, named in the worker's environment, which is
        gone once twistd stopped.
        """
        port, metricsPort, twistd = self.start()
        lines = self.load(port)
        listener = (("listener", f"mtls:{port}"),)
        received = sum(len(line) + 1 for line in lines)
        sent = sum(len(b"backend:" + line) + 1 for line in lines)
        found = self.scrape(metricsPort, lambda s: s.get(
            ("securetcp_received_bytes_total", listener)) == received)
        self.assertEqual(found[("securetcp_handshakes_total", listener + (
            ("outcome", "accepted"), ("reason", "")))], len(lines))
        self.assertEqual(found[("securetcp_handshake_duration_seconds_count", listener)],
                         len(lines))
        self.assertEqual(found[("securetcp_sent_bytes_total", listener)], sent)
        self.assertEqual(found[("securetcp_open_connections", listener)], 0)
        self.assertGreaterEqual(found[("securetcp_audit_records_total",
                                       (("result", "written"),))], 2 * len(lines))
        own = [k for k in found
               if k[0] == "securetcp_certificate_expiry_seconds" and ("role", "own") in k[1]]
        self.assertEqual(len(own), 1)
        self.assertEqual(fetch(metricsPort, "/readyz"), (200, "ready\n"))

        with open(f"/proc/{self.workerPid(twistd)}/environ", "rb") as f:
            environment = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if item)
        directory = environment[b"PROMETHEUS_MULTIPROC_DIR"].decode()
        files = os.listdir(directory)
        self.assertIn(f"counter_{twistd.pid}.db", files)
        self.assertIn(f"counter_{self.workerPid(twistd)}.db", files)
        twistd.stop()
        self.assertFalse(os.path.exists(directory))

    def test_promtool(self) -> None:
        """
        C{promtool check metrics} finds nothing wrong in the merged
        exposition of both processes.
        """
        if PROMTOOL is None:
            raise SkipTest("promtool is not installed (Debian package prometheus)")
        port, metricsPort, _twistd = self.start()
        lines = self.load(port)
        listener = (("listener", f"mtls:{port}"),)
        self.scrape(metricsPort, lambda s: s.get(("securetcp_handshakes_total", listener + (
            ("outcome", "accepted"), ("reason", "")))) == len(lines))
        status, body = fetch(metricsPort, "/metrics")
        result = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode("utf-8"),
                                capture_output=True, timeout=PEER_TIMEOUT)
        self.assertEqual(result.returncode, 0, (result.stdout + result.stderr).decode())

    def test_killedWorker(self) -> None:
        """
        Connections held open on both processes are counted open; when
        worker 1 is killed (SIGKILL), its open connections no longer count
        (only worker 0's stay) while the handshakes it accepted still do;
        twistd starts a new worker 1 and C{/readyz} is ready again.
        """
        port, metricsPort, twistd = self.start()
        held: List[Program] = []
        for n in range(20):
            peer = self.sClient(port)
            peer.send(b"held %d\n" % n)
            peer.waitFor(b"backend:held %d\n" % n, PEER_TIMEOUT, "the backend's answer")
            held.append(peer)
            if all(self.accepted()):
                break
        onFirst, onWorker = self.accepted()
        self.assertTrue(onFirst and onWorker, "not both processes hold a connection")
        listener = (("listener", f"mtls:{port}"),)
        accepted = ("securetcp_handshakes_total", listener + (
            ("outcome", "accepted"), ("reason", "")))
        self.scrape(metricsPort, lambda s: s.get(
            ("securetcp_open_connections", listener)) == len(held))
        pid = self.workerPid(twistd)
        # twistd restarts a worker that lived longer than this
        time.sleep(max(0.0, WorkerSupervisor.minimumLife + 0.5 - (time.monotonic() - self.started)))
        os.kill(pid, signal.SIGKILL)
        blockUntil(lambda: not pidAlive(pid), PEER_TIMEOUT, "worker 1 to end")
        found = self.scrape(metricsPort, lambda s: s.get(
            ("securetcp_open_connections", listener)) == onFirst)
        self.assertEqual(found[accepted], len(held))
        blockUntil(lambda: self.workerPid(twistd) != pid, START_TIMEOUT, "a new worker 1",
                   twistd.describe)
        blockUntil(lambda: fetch(metricsPort, "/readyz") == (200, "ready\n"), START_TIMEOUT,
                   "/readyz to be ready again")
