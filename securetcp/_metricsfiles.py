# -*- test-case-name: tests.test_metrics_multiprocess,tests.test_metrics_workers -*-
"""
The metrics of several processes in one exposition, with
C{prometheus_client}'s multiprocess mode (used by C{twistd securetcp
--workers N --metrics ENDPOINT}; see L{securetcp.metrics.SecureTCPMetrics}'s
C{multiprocessDir})::

    useDirectory(directory)              # every process, before its metrics
    mirror = Mirror()                    # what collectors read live ...
    mirror.collectors.append(collector)
    mirror.sync()                        # ... copied into this process's files
    SyncedCollector(registry, directory, mirror.sync)   # the scraping process
    processEnded(directory, pid)         # a process that ended

Each process writes its counters, histograms and gauges to its own files
in C{directory} (named by its pid, so two processes' series never
collide); the scraping process merges them: counters and histograms are
summed (those of ended processes included, so totals never go back),
gauges per their C{multiprocess_mode} (L{GAUGE_MODES}).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Tuple

from prometheus_client import values
from prometheus_client.metrics import Counter, Gauge
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["GAUGE_MODES", "Mirror", "SyncedCollector", "processEnded", "useDirectory"]

#: How the gauges of several processes merge (by metric name); the others
#: are summed over the live processes (C{livesum}).
GAUGE_MODES: Dict[str, Any] = {
    # connected only while every live process's export is connected
    "securetcp_export_connected": "livemin",
}


def useDirectory(directory: str) -> None:
    """
    Make every C{prometheus_client} metric value this process creates from
    now on live in a file of C{directory} (C{PROMETHEUS_MULTIPROC_DIR},
    which child processes inherit).  C{prometheus_client} reads that
    variable only when it is first imported; a process that imported it
    before gets the same multiprocess value class now.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()


def processEnded(directory: str, pid: int) -> None:
    """
    The process C{pid} ended: its live gauges (C{live*} modes) no longer
    count; its counters and histograms still do.
    """
    mark_process_dead(pid, directory)


class Mirror:
    """
    Copies what C{collectors} (C{prometheus_client} collectors reading this
    process's state when collected) report into multiprocess metrics of the
    same names: gauges are set, counters increased by what they grew.
    """

    def __init__(self) -> None:
        self.collectors: List[Any] = []
        self._metrics: Dict[str, Any] = {}
        self._pushed: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}

    def sync(self) -> None:
        """
        Read every collector now and write what it reports.
        """
        for collector in self.collectors:
            for family in collector.collect():
                self._copy(family)

    def _copy(self, family: Any) -> None:
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith("_total"):
                continue  # _created: not kept in multiprocess mode
            metric = self._metric(family, sample.labels)
            child = metric.labels(**sample.labels) if sample.labels else metric
            if family.type == "gauge":
                child.set(sample.value)
                continue
            key = (family.name, tuple(sorted(sample.labels.items())))
            grown = sample.value - self._pushed.get(key, 0.0)
            if grown > 0:
                child.inc(grown)
                self._pushed[key] = sample.value

    def _metric(self, family: Any, labels: Dict[str, str]) -> Any:
        metric = self._metrics.get(family.name)
        if metric is None:
            names = sorted(labels)
            if family.type == "gauge":
                metric = Gauge(family.name, family.documentation, names, registry=None,
                               multiprocess_mode=GAUGE_MODES.get(family.name, "livesum"))
            else:
                metric = Counter(family.name, family.documentation, names, registry=None)
            self._metrics[family.name] = metric
        return metric


class SyncedCollector(MultiProcessCollector):
    """
    The merged metrics of every process writing to C{directory}, read
    after C{sync()} brought this process's own up to date.
    """

    def __init__(self, registry: Any, directory: str, sync: Callable[[], None]) -> None:
        self._sync = sync
        super().__init__(registry, directory)

    def collect(self) -> Iterable[Any]:
        self._sync()
        return super().collect()  # type: ignore[no-any-return]
