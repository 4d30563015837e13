# -*- test-case-name: tests.test_metrics,tests.test_metrics_twistd,tests.test_metrics_multiprocess,tests.test_metrics_workers -*-
"""
C{twistd securetcp --metrics ENDPOINT}: serve C{/metrics}, C{/healthz} and
C{/readyz} (L{securetcp.metrics.metricsResource}) on an endpoint string,
which may itself be C{securessl:} or C{mtls:}::

    metrics = SecureTCPMetrics()
    watchEndpoint(metrics, "mtls:6661", endpoint)   # each secure server endpoint
    MetricsService(reactor, "tcp:9464:interface=127.0.0.1", metrics,
                   top).setServiceParent(top)

With C{--workers N}, L{newMetrics} and L{addMetrics} use
C{prometheus_client}'s multiprocess mode (L{securetcp._metricsfiles}): the
twistd process makes a fresh directory for this run (removed when its
reactor has shut down) that its workers inherit as
C{PROMETHEUS_MULTIPROC_DIR}; every process writes its values there (its
live ones every L{HEARTBEAT} seconds, L{MetricsSync}), and the twistd
process alone serves C{/metrics}, merging them, with C{/healthz} and
C{/readyz}.  A worker that ended no longer counts in the live gauges.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, List, Optional

from twisted.application import service
from twisted.internet.task import LoopingCall

from securetcp._twistd.listening import ListeningService
from securetcp._twistd.options import JobError
from securetcp._twistd.service import redact
from securetcp.metrics import CountingSink, SecureTCPMetrics

#: Seconds between two beats of the reactor heartbeat C{/healthz} reads, and
#: between two copies of a worker's live values to its metrics files.
HEARTBEAT = 1.0

#: Where a worker finds the metrics directory of its twistd process.
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def newMetrics(reactor: Any, workers: int, worker: Any) -> SecureTCPMetrics:
    """
    The metrics of C{--metrics}: of this process alone; with C{workers}
    above 1 (in the twistd process) or in a C{worker}, in multiprocess
    mode.  The twistd process makes the directory, fresh for this run,
    and removes it once C{reactor} has shut down (after its workers ended).

    @raise JobError: in a worker started without the directory.
    """
    if worker is None and workers <= 1:
        return SecureTCPMetrics()
    if worker is not None:
        directory = os.environ.get(DIRECTORY_VARIABLE, "")
        if not os.path.isdir(directory):
            raise JobError("metrics", f"this worker was started without its twistd "
                           f"process's metrics directory ({DIRECTORY_VARIABLE})")
        return SecureTCPMetrics(multiprocessDir=directory)
    directory = tempfile.mkdtemp(prefix="securetcp-metrics-")
    reactor.addSystemEventTrigger("after", "shutdown", shutil.rmtree, directory, True)
    return SecureTCPMetrics(multiprocessDir=directory)


def discard(metrics: Optional[SecureTCPMetrics], worker: Any) -> None:
    """
    The service was not built after all: in the twistd process (not a
    C{worker}), remove the metrics directory it made, if any.
    """
    if worker is None and metrics is not None and metrics.multiprocessDir is not None:
        shutil.rmtree(metrics.multiprocessDir, True)


def addMetrics(top: Any, reactor: Any, description: str, metrics: SecureTCPMetrics,
               worker: Any) -> None:
    """
    Count every secure server endpoint of C{top} (a
    L{securetcp._twistd.service.SecureTCPService}, with the endpoints it
    was built with) in C{metrics}.  In the twistd process, serve them,
    C{/healthz} and C{/readyz} on C{description} (C{--metrics}), and with
    workers stop counting the live gauges of a worker that ended; in a
    worker, copy the live values to the files (L{MetricsSync}).
    """
    from securetcp._metricsfiles import processEnded

    for endpoint, listen in zip(top.secureEndpoints, top.listenDescriptions, strict=True):
        watchEndpoint(metrics, listenerLabel(listen), endpoint)
    if worker is not None:
        MetricsSync(reactor, metrics).setServiceParent(top)
        # the connections the shutdown closes count too
        reactor.addSystemEventTrigger("after", "shutdown", metrics.sync)
        return
    MetricsService(reactor, description, metrics, top).setServiceParent(top)
    directory = metrics.multiprocessDir
    if top.supervisor is not None and directory is not None:
        top.supervisor.onEnded.append(lambda pid: processEnded(directory, pid))


class MetricsSync(service.Service):
    """
    While running, copies a worker's live values (L{SecureTCPMetrics.sync})
    to its metrics files every L{HEARTBEAT} seconds, and once more when it
    stops.
    """

    def __init__(self, clock: Any, metrics: SecureTCPMetrics) -> None:
        self.metrics = metrics
        self.loop = LoopingCall(metrics.sync)
        self.loop.clock = clock

    def startService(self) -> None:
        super().startService()
        self.loop.start(HEARTBEAT, now=True)

    def stopService(self) -> Any:
        if self.loop.running:
            self.loop.stop()
        self.metrics.sync()
        return super().stopService()


def listenerLabel(description: str) -> str:
    """
    The C{listener} label of an endpoint string: its type and port (or
    first argument), e.g. C{mtls:6661}; never a file name or passphrase.
    """
    fields = description.split(":")
    return ":".join(fields[:2])


def watchEndpoint(metrics: SecureTCPMetrics, label: str, endpoint: Any) -> None:
    """
    Count the connections and audit records of C{endpoint} (a
    L{securetcp.endpoints.SecureServerEndpoint}, before it listens) as
    listener C{label}, and report the certificates and CRLs in force.
    """
    endpoint.observe(metrics.listener(label), lambda sink: CountingSink(sink, metrics))
    metrics.watchMaterials(label, lambda: endpoint.creator.materials)
    if endpoint.ocsp is not None:
        metrics.watchOCSP(label, endpoint.ocsp)


class MetricsService(service.MultiService):
    """
    Listens on C{description} with the metrics, health and readiness
    resource while running (refusing to run without listening, like every
    listener); C{/readyz} is ready while every listening service of C{top}
    listens, C{top}'s audit sink accepts and, with C{--workers}, every
    worker runs.

    @raise JobError: for C{--metrics}, if C{description} is no endpoint
        string.
    """

    def __init__(self, reactor: Any, description: str, metrics: SecureTCPMetrics,
                 top: Any) -> None:
        from twisted.internet.endpoints import serverFromString
        from twisted.web.server import Site

        super().__init__()
        self.metrics = metrics
        self.top = top
        self.resource: Any = metrics.resource(reactor, self.problems, HEARTBEAT)
        try:
            endpoint = serverFromString(reactor, description)
        except ValueError as e:
            raise JobError("metrics", str(e)) from None
        site = Site(self.resource)
        site.log = lambda request: None  # type: ignore[method-assign]
        self.listening = ListeningService(endpoint, site, "--metrics " + redact(description),
                                          reactor)
        self.listening.setServiceParent(self)

    def problems(self) -> List[str]:
        """
        Why this process is not ready (besides the materials in force).
        """
        found = []
        for child in self.top:
            if isinstance(child, ListeningService) and child.port is None:
                found.append(f"{child.description}: not listening")
        if not self.top.emitter.accepting():
            found.append("the audit log cannot be written; connections are refused")
        supervisor = getattr(self.top, "supervisor", None)
        if supervisor is not None and supervisor.running and supervisor.listeners.bound:
            found.extend(f"worker {index} is not running"
                         for index in range(1, supervisor.count)
                         if index not in supervisor.workers)
        return found

    def startService(self) -> None:
        super().startService()
        self.resource.heartbeat.start(HEARTBEAT, now=True)

    def stopService(self) -> Any:
        if self.resource.heartbeat.running:
            self.resource.heartbeat.stop()
        return super().stopService()
