# -*- test-case-name: tests.test_metrics,tests.test_metrics_twistd -*-
"""
C{twistd securetcp --metrics ENDPOINT}: serve C{/metrics}, C{/healthz} and
C{/readyz} (L{securetcp.metrics.metricsResource}) on an endpoint string,
which may itself be C{securessl:} or C{mtls:}::

    metrics = SecureTCPMetrics()
    watchEndpoint(metrics, "mtls:6661", endpoint)   # each secure server endpoint
    MetricsService(reactor, "tcp:9464:interface=127.0.0.1", metrics,
                   top).setServiceParent(top)
"""

from __future__ import annotations

from typing import Any, List

from twisted.application import service

from securetcp._twistd.listening import ListeningService
from securetcp._twistd.options import JobError
from securetcp._twistd.service import redact
from securetcp.metrics import CountingSink, SecureTCPMetrics

#: Seconds between two beats of the reactor heartbeat C{/healthz} reads.
HEARTBEAT = 1.0


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
    listens and C{top}'s audit sink accepts.

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
        return found

    def startService(self) -> None:
        super().startService()
        self.resource.heartbeat.start(HEARTBEAT, now=True)

    def stopService(self) -> Any:
        if self.resource.heartbeat.running:
            self.resource.heartbeat.stop()
        return super().stopService()
