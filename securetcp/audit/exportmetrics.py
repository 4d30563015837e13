# -*- test-case-name: tests.test_auditexport -*-
"""
The audit export's Prometheus metrics (read when scraped), registered by
L{securetcp.metrics.SecureTCPMetrics.watchExport}::

    metrics.watchExport(export)     # an AuditSyslogExport

  - C{securetcp_export_queue_messages}: records queued, not known delivered;
  - C{securetcp_export_queue_bytes} and C{securetcp_export_queue_limit_bytes}:
    the disk queue's size and its bound;
  - C{securetcp_export_dropped_records_total}: records not queued because
    the queue was full (since start);
  - C{securetcp_export_delivered_records_total}: records counted delivered;
  - C{securetcp_export_connected}: 1 while connected to the collector.

Each has the label C{collector} (C{tls://HOST:PORT}).
"""

from __future__ import annotations

from typing import Any, Iterable, List

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["ExportCollector"]


class ExportCollector:
    """
    A C{prometheus_client} collector of one export's state.
    """

    def __init__(self, export: Any) -> None:
        self.export = export

    def describe(self) -> List[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        export, labels = self.export, ["collector"]
        queue, name = export.queue, [export.feed.collector]
        gauges = [
            ("securetcp_export_queue_messages", "Audit records queued for the collector and "
             "not known delivered", queue.pending),
            ("securetcp_export_queue_bytes", "Bytes of the export's disk queue files",
             queue.size),
            ("securetcp_export_queue_limit_bytes", "The bound of the export's disk queue; "
             "beyond it records are not queued", queue.maxBytes),
            ("securetcp_export_connected", "1 while the export is connected to the collector",
             int(export.connected)),
        ]
        for metric, help, value in gauges:
            family = GaugeMetricFamily(metric, help, labels=labels)
            family.add_metric(name, value)
            yield family
        for metric, help, value in (
                ("securetcp_export_dropped_records", "Audit records not queued for the "
                 "collector because the queue was full", queue.dropped),
                ("securetcp_export_delivered_records", "Audit records counted delivered to "
                 "the collector", export.delivered)):
            counter = CounterMetricFamily(metric, help, labels=labels)
            counter.add_metric(name, value)
            yield counter
