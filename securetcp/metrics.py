# -*- test-case-name: tests.test_metrics,tests.test_metrics_twistd -*-
"""
Prometheus metrics of the gate and the materials in force, with
C{prometheus_client}, and the health and readiness answers of a process::

    metrics = SecureTCPMetrics()                  # its own CollectorRegistry
    # or, in each of several processes (securetcp._metricsfiles):
    metrics = SecureTCPMetrics(multiprocessDir=directory)
    endpoint.observe(metrics.listener("hl7"))     # a SecureServerEndpoint
    metrics.watchMaterials("hl7", lambda: endpoint.creator.materials)
    root = metrics.resource(clock, ready=lambda: [])   # /metrics /healthz /readyz

The gate is given a L{ListenerMetrics} (it provides
L{securetcp._interfaces.IGateMetrics}); per connection it costs two or
three increments of pre-bound counters.  Labels carry only the outcome, the
rejection reason and the listener's name: never a peer address or identity.
Open connections and bytes of live connections are read when scraped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from cryptography.hazmat.primitives.hashes import SHA256
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource
from zope.interface import implementer

from securetcp._interfaces import IAuditSink, IGateMetrics
from securetcp._livemetrics import Families, LiveCollector

__all__ = ["CountingSink", "ListenerMetrics", "SecureTCPMetrics", "metricsResource"]

#: Bucket bounds (seconds) of the handshake duration histogram.
HANDSHAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@implementer(IGateMetrics)
class ListenerMetrics:
    """
    The metrics of one listener, with its label children bound once.
    """

    def __init__(self, metrics: SecureTCPMetrics, name: str) -> None:
        self._metrics = metrics
        self.name = name
        self._accepted = metrics.handshakes.labels("accepted", "", name)
        self._rejected: Dict[str, Any] = {}
        self._ocsp: Dict[str, Any] = {}
        self._duration = metrics.handshakeSeconds.labels(name)
        #: application bytes of the admitted connections that closed
        self.closedIn = self.closedOut = 0
        #: the gate factories whose open connections and live bytes count
        self.gates: List[Any] = []

    def admitted(self, seconds: float) -> None:
        self._accepted.inc()
        self._duration.observe(seconds)

    def rejected(self, reason: str, seconds: float) -> None:
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = self._metrics.handshakes.labels(
                "rejected", reason, self.name)
        child.inc()
        self._duration.observe(seconds)

    def closed(self, bytesIn: int, bytesOut: Optional[int],
               refused: Optional[str] = None) -> None:
        self.closedIn += bytesIn
        self.closedOut += bytesOut or 0
        if refused is not None:
            self._metrics.messagesRefused.labels(refused, self.name).inc()

    def ocspAnswered(self, answer: str) -> None:
        child = self._ocsp.get(answer)
        if child is None:
            status, _, source = answer.partition(" (")
            child = self._ocsp[answer] = self._metrics.ocspResults.labels(
                status, source.rstrip(")") or "none", self.name)
        child.inc()

    def gateStarted(self, gate: Any) -> None:
        self.gates.append(gate)


@implementer(IAuditSink)
class CountingSink:
    """
    An L{IAuditSink} that counts the records C{sink} wrote and failed to
    write, and passes everything on.
    """

    def __init__(self, sink: IAuditSink, metrics: SecureTCPMetrics) -> None:
        self.sink = sink
        self._written = metrics.auditRecords.labels("written")
        self._failed = metrics.auditRecords.labels("failed")

    def emit(self, record: Dict[str, Any]) -> bool:
        ok = self.sink.emit(record)
        (self._written if ok else self._failed).inc()
        return ok

    def accepting(self) -> bool:
        return self.sink.accepting()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


class SecureTCPMetrics:
    """
    Every securetcp metric, in one registry (C{registry}: a new
    C{CollectorRegistry} by default, so two instances never clash; pass
    C{prometheus_client.REGISTRY} to add them to the process's default).

    With C{multiprocessDir}, one of several processes writing to that
    directory (L{securetcp._metricsfiles}): this process's values go to
    its files there, and C{registry} exposes every process's, merged, with
    the expiry of the materials this process has in force.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None,
                 wallClock: Callable[[], float] = time.time,
                 multiprocessDir: Optional[str] = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._now = wallClock
        #: the directory of every process's values, in multiprocess mode
        self.multiprocessDir = multiprocessDir
        #: with C{multiprocessDir}: the L{securetcp._metricsfiles.Mirror} of
        #: this process's live values (see L{sync})
        self.mirror: Any = None
        if multiprocessDir is not None:
            from securetcp._metricsfiles import Mirror, useDirectory

            useDirectory(multiprocessDir)
            self.mirror = Mirror()
        # in multiprocess mode the values live in files, merged when scraped
        r = self.registry if multiprocessDir is None else None
        self.handshakes = Counter(
            "securetcp_handshakes", "TLS handshakes through the gate by outcome "
            "(accepted or rejected) and rejection reason",
            ["outcome", "reason", "listener"], registry=r)
        self.handshakeSeconds = Histogram(
            "securetcp_handshake_duration_seconds", "Seconds from TCP accept to the gate's "
            "decision (accepted or rejected)", ["listener"], buckets=HANDSHAKE_BUCKETS,
            registry=r)
        self.auditRecords = Counter(
            "securetcp_audit_records", "Audit records by whether every audit file that "
            "refuses connections wrote them", ["result"], registry=r)
        self.ocspResults = Counter(
            "securetcp_ocsp_results", "OCSP status of peers' certificates by status and "
            "where it came from (responder: asked or cached, stapled, none)",
            ["status", "source", "listener"], registry=r)
        self.messagesRefused = Counter(
            "securetcp_messages_refused", "Admitted connections closed because the identity "
            "binding refused a later message, by rejection reason", ["reason", "listener"],
            registry=r)
        self.reloads = Counter(
            "securetcp_reloads", "Explicit reloads (SIGHUP or changed files) by result",
            ["result"], registry=r)
        self._listeners: Dict[str, ListenerMetrics] = {}
        self._materials: List[Tuple[str, Callable[[], Any]]] = []
        self._checkers: List[Tuple[str, Any]] = []
        live = LiveCollector(self)
        if multiprocessDir is None:
            self.registry.register(live)
            return
        from securetcp._metricsfiles import SyncedCollector

        self.mirror.collectors.append(Families(live.process))
        SyncedCollector(self.registry, multiprocessDir, self.sync)
        self.registry.register(Families(live.service))

    def sync(self) -> None:
        """
        With C{multiprocessDir}: write this process's live values (open
        connections, bytes, OCSP queries, the export's state) to its files,
        where the process serving C{/metrics} reads them.  Every process
        does so every second, and the serving one before each scrape.
        """
        if self.mirror is not None:
            self.mirror.sync()

    def listener(self, name: str) -> ListenerMetrics:
        """
        The metrics of the listener C{name} (one object per name).
        """
        if name not in self._listeners:
            self._listeners[name] = ListenerMetrics(self, name)
        return self._listeners[name]

    def watchMaterials(self, name: str, materials: Callable[[], Any]) -> None:
        """
        Report the certificates and CRLs of C{materials()} (the
        L{securetcp.materials.Materials} in force of listener C{name}).
        """
        self._materials.append((name, materials))

    def watchOCSP(self, name: str, checker: Any) -> None:
        """
        Report the queries C{checker} (an L{securetcp.revocation.ocsp.OCSPChecker}
        of listener C{name}) sent to OCSP responders (answers from its
        cache are not queries).
        """
        self._checkers.append((name, checker))

    def watchExport(self, export: Any) -> None:
        """
        Report the state of C{export} (an
        L{securetcp.auditexport.AuditSyslogExport}): its queue, drops,
        deliveries and connection (L{securetcp.audit.exportmetrics}).
        """
        from securetcp.audit.exportmetrics import ExportCollector

        if self.mirror is not None:
            self.mirror.collectors.append(ExportCollector(export))
        else:
            self.registry.register(ExportCollector(export))

    def ocspQueries(self) -> Iterable[Tuple[str, int]]:
        """
        C{(listener, queries sent to OCSP responders)}.
        """
        for name, checker in self._checkers:
            yield name, checker.queries

    def reloaded(self, ok: bool) -> None:
        """
        Count one explicit reload and its result.
        """
        self.reloads.labels("ok" if ok else "refused").inc()

    def openConnections(self) -> Iterable[Tuple[str, int, int, int]]:
        """
        C{(listener, open connections, bytes in, bytes out)}: bytes of the
        admitted connections, closed or still open.
        """
        for name, listener in self._listeners.items():
            opened, bytesIn, bytesOut = 0, listener.closedIn, listener.closedOut
            for gate in listener.gates:
                opened += gate.openConnections
                for live in list(gate.live):
                    bytesIn += live.bytesIn
                    bytesOut += getattr(live.transport, "bytesOut", 0) or 0
            yield name, opened, bytesIn, bytesOut

    def expiries(self) -> Iterable[Tuple[str, Tuple[str, ...], float]]:
        """
        C{(kind, labels, seconds)}: C{("certificate", (listener, "own" or
        "ca", subject, fingerprint), seconds to notAfter)} for every own
        certificate and trust anchor; C{("crl", (listener, issuer), seconds
        to nextUpdate)} and C{("crl_age", (listener, issuer), seconds since
        thisUpdate)} for every CRL in force.
        """
        now = self._now()
        for name, materials in self._materials:
            m = materials()
            for role, certificates in (("own", m.chain), ("ca", m.trust)):
                for c in certificates:
                    short = c.fingerprint(_SHA256).hex()[:16]
                    yield ("certificate", (name, role, c.subject.rfc4514_string(), short),
                           _notAfter(c) - now)
            for crl in (m.crls.crls if m.crls is not None else ()):
                issuer = (name, crl.issuer.rfc4514_string())
                yield "crl_age", issuer, now - _stamp(crl.last_update_utc)
                if crl.next_update_utc is not None:
                    yield "crl", issuer, _stamp(crl.next_update_utc) - now

    def problems(self) -> List[str]:
        """
        Why the materials in force make this process unready: an own
        certificate expired (or not valid yet), a CRL past its nextUpdate.
        """
        found = []
        now = self._now()
        for name, materials in self._materials:
            m = materials()
            if m.leaf is not None and _notAfter(m.leaf) <= now:
                found.append(f"{name}: our certificate expired")
            elif m.leaf is not None and _stamp(m.leaf.not_valid_before_utc) > now:
                found.append(f"{name}: our certificate is not valid yet")
            windows = m.crls.windows.values() if m.crls is not None else ()
            if any(nextUpdate is not None and nextUpdate < now for _, nextUpdate in windows):
                found.append(f"{name}: a CRL is past its nextUpdate")
        return found

    def resource(self, clock: IReactorTime, ready: Callable[[], List[str]],
                 heartbeat: float = 1.0) -> Resource:
        """
        The C{twisted.web} resource serving C{/metrics}, C{/healthz} and
        C{/readyz} (see L{metricsResource}).
        """
        return metricsResource(self, clock, ready, heartbeat)


_SHA256 = SHA256()


def _stamp(when: datetime) -> float:
    return when.replace(tzinfo=when.tzinfo or UTC).timestamp()


def _notAfter(certificate: Any) -> float:
    return _stamp(certificate.not_valid_after_utc)


class _Text(Resource):
    isLeaf = True

    def __init__(self, answer: Callable[[], Tuple[int, bytes, bytes]]) -> None:
        super().__init__()
        self._answer = answer

    def render_GET(self, request: Any) -> bytes:
        code, contentType, body = self._answer()
        request.setResponseCode(code)
        request.setHeader(b"content-type", contentType)
        return body


def metricsResource(metrics: SecureTCPMetrics, clock: IReactorTime,
                    ready: Callable[[], List[str]], heartbeat: float = 1.0) -> Resource:
    """
    A resource with three children, to serve or to mount in an application:
    C{metrics} (the exposition of C{metrics.registry} by
    C{prometheus_client}), C{healthz} (200 while C{clock} runs a heartbeat
    every C{heartbeat} seconds, 503 when it is more than ten beats late)
    and C{readyz} (200, or 503 with one reason a line: C{ready()} and
    C{metrics.problems()}).  Its C{heartbeat} attribute is the
    L{twisted.internet.task.LoopingCall}; start it with C{.start(heartbeat)}.
    """
    from twisted.internet.task import LoopingCall

    beats = [clock.seconds()]
    loop = LoopingCall(lambda: beats.__setitem__(0, clock.seconds()))
    loop.clock = clock
    plain = b"text/plain; charset=utf-8"

    def exposition() -> Tuple[int, bytes, bytes]:
        return 200, CONTENT_TYPE_LATEST.encode("ascii"), generate_latest(metrics.registry)

    def health() -> Tuple[int, bytes, bytes]:
        late = clock.seconds() - beats[0]
        if loop.running and late > 10 * heartbeat:
            return 503, plain, f"unhealthy: reactor heartbeat {late:.1f}s old\n".encode()
        return 200, plain, f"ok: reactor heartbeat {late:.1f}s old\n".encode()

    def readiness() -> Tuple[int, bytes, bytes]:
        problems = list(ready()) + metrics.problems()
        if problems:
            return 503, plain, "".join(f"not ready: {p}\n" for p in problems).encode()
        return 200, plain, b"ready\n"

    root = Resource()
    root.putChild(b"metrics", _Text(exposition))
    root.putChild(b"healthz", _Text(health))
    root.putChild(b"readyz", _Text(readiness))
    root.heartbeat = loop  # type: ignore[attr-defined]
    return root
