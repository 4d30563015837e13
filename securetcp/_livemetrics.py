# -*- test-case-name: tests.test_metrics,tests.test_metrics_multiprocess -*-
"""
The C{prometheus_client} collectors of L{securetcp.metrics.SecureTCPMetrics}
for what is read when scraped rather than counted as it happens::

    live = LiveCollector(metrics)
    registry.register(live)              # one process: everything
    Families(live.process)               # what each process counts
    Families(live.service)               # what its processes share
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["Families", "LiveCollector"]


class LiveCollector:
    """
    What is read when scraped: open connections, bytes of live
    connections, certificate and CRL expiry.
    """

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def describe(self) -> List[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        return [*self.process(), *self.service()]

    def process(self) -> List[Any]:
        """
        What this process counts: its open connections, bytes and OCSP
        queries.
        """
        opened = GaugeMetricFamily("securetcp_open_connections", "Connections open through "
                                   "the gate (handshaking or admitted)", labels=["listener"])
        received = CounterMetricFamily("securetcp_received_bytes", "Application bytes "
                                       "received from peers on admitted connections",
                                       labels=["listener"])
        sent = CounterMetricFamily("securetcp_sent_bytes", "Application bytes sent to peers "
                                   "on admitted connections", labels=["listener"])
        for name, count, bytesIn, bytesOut in self.metrics.openConnections():
            opened.add_metric([name], count)
            received.add_metric([name], bytesIn)
            sent.add_metric([name], bytesOut)
        queries = CounterMetricFamily("securetcp_ocsp_queries", "Requests sent to OCSP "
                                      "responders (not answered from the cache)",
                                      labels=["listener"])
        for name, count in self.metrics.ocspQueries():
            queries.add_metric([name], count)
        return [opened, received, sent, queries]

    def service(self) -> List[Any]:
        """
        What every process of a service shares: the expiry of the
        certificates and CRLs in force.
        """
        families = {
            "certificate": GaugeMetricFamily(
                "securetcp_certificate_expiry_seconds", "Seconds until the notAfter of an "
                "own certificate or trust anchor (negative: expired)",
                labels=["listener", "role", "subject", "fingerprint"]),
            "crl": GaugeMetricFamily(
                "securetcp_crl_next_update_seconds", "Seconds until the nextUpdate of a CRL "
                "in force (negative: past)", labels=["listener", "issuer"]),
            "crl_age": GaugeMetricFamily(
                "securetcp_crl_age_seconds", "Seconds since the thisUpdate of a CRL in force",
                labels=["listener", "issuer"]),
        }
        for kind, labels, seconds in self.metrics.expiries():
            families[kind].add_metric(list(labels), seconds)
        return list(families.values())


class Families:
    """
    A collector of what C{families()} returns when collected.
    """

    def __init__(self, families: Callable[[], List[Any]]) -> None:
        self.collect = families

    def describe(self) -> List[Any]:
        return []
