# -*- test-case-name: tests.test_reload_live,tests.test_tap,tests.test_sdnotify,tests.test_expiry -*-
"""
The service of C{twistd securetcp}: the listening endpoints, the audit log
observer, and reloading (on SIGHUP, and when a watched certificate, key, CA
or policy file changed and settled)::

    top = SecureTCPService(reactor, "audit.jsonl", watchInterval=5.0)
    top.addSecureEndpoint(endpoint, description)
    ...
    top.reload()     # each secure endpoint re-reads its policy and files

A reload re-reads each secure server endpoint's policy (its policy file and
endpoint-string arguments) and the files it names; the endpoint audits it
as C{policy.reloaded}, or C{policy.reload_refused} and keeps the running
configuration.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any, Callable, Dict, List, Optional, Sequence

from twisted.application import service
from twisted.logger import Logger, globalLogPublisher

from securetcp._interfaces import IAuditSink
from securetcp._twistd.expiry import ExpiryCheck
from securetcp._twistd.sdnotify import SystemdLifecycle, SystemdNotifier
from securetcp._twistd.workers import WorkerSupervisor
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.errors import PolicyError

_log = Logger(namespace="securetcp.tap")


class SecureTCPService(service.MultiService):
    """
    The twistd service: listening endpoints, the audit log observer and
    reloading on SIGHUP or when a watched file changed.
    """

    def __init__(self, reactor: Any, auditLog: Optional[str],
                 emitter: Optional[IAuditSink] = None, *,
                 auditFields: Optional[Dict[str, Any]] = None,
                 supervisor: Optional[WorkerSupervisor] = None,
                 watchInterval: float = 5.0,
                 auditOptions: Optional[Dict[str, Any]] = None,
                 notifier: Optional[SystemdNotifier] = None,
                 expiryWarnings: Sequence[int] = (),
                 metrics: Any = None) -> None:
        """
        @param auditLog: the audit file to open while the service runs.
        @param emitter: where the jobs' audit records go.
        @param auditFields: with --workers: C{{"worker": K}}, added (with
            C{pid}) to every record.
        @param supervisor: with --workers, in the parent: the
            L{securetcp._twistd.workers.WorkerSupervisor}; it gets SIGHUP too.
        @param watchInterval: seconds between checks of the files the
            policies name (0: only SIGHUP reloads).
        @param auditOptions: the options of C{auditLog}'s writer (see
            L{securetcp.audit.file.auditLogObserver}).
        @param notifier: tells systemd when the service is ready, reloads
            and stops, and feeds its watchdog (L{securetcp._twistd.sdnotify}).
        @param expiryWarnings: audit, at start and daily, certificates, CAs
            and CRLs expiring within these many days (L{ExpiryCheck}).
        """
        super().__init__()
        self.reactor = reactor
        self.auditLog = auditLog
        self.auditOptions = auditOptions or {}
        self.emitter: IAuditSink = emitter or AuditEmitter()
        self.secureEndpoints: List[Any] = []
        self.listenDescriptions: List[str] = []
        self.auditFields = auditFields
        self.supervisor = supervisor
        self.watchInterval = watchInterval
        self._watch: Any = None
        self._seen: Any = None
        self._candidate: Any = None
        self._observer: Any = None
        self._published: Any = None
        self._previousHandler: Any = None
        self._shutdownTrigger: Any = None
        self._shuttingDown = False
        self.notifier = notifier
        self._systemd: Optional[SystemdLifecycle] = None
        self.expiry = ExpiryCheck(reactor, self.emitter, lambda: self.secureEndpoints,
                                  expiryWarnings)
        #: with --metrics, the L{securetcp.metrics.SecureTCPMetrics} counting reloads
        self.metrics: Any = metrics

    def addSecureEndpoint(self, endpoint: Any, description: str) -> None:
        """
        Reload C{endpoint} (a L{securetcp.endpoints.SecureServerEndpoint}
        built from C{description}) with the others, and watch its files.
        """
        self.secureEndpoints.append(endpoint)
        self.listenDescriptions.append(description)

    def _openAuditLog(self) -> None:
        if self.auditLog and self._observer is None:
            from securetcp.audit.file import globalAuditFiles
            from securetcp.errors import AuditLogError

            try:
                self._observer = globalAuditFiles.open(self.auditLog, **self.auditOptions)
            except AuditLogError as e:
                # one line naming the file and the fix, not a traceback
                raise SystemExit(f"twistd securetcp: {e}") from None
            self._published = self._observer
            if self.auditFields is not None:
                self._published = _tagging(self._observer,
                                           {**self.auditFields, "pid": os.getpid()})
            globalLogPublisher.addObserver(self._published)

    def privilegedStartService(self) -> None:
        # twistd starts listening (and each endpoint emits policy.loaded)
        # here, before startService: the audit file must already be open
        self._openAuditLog()
        super().privilegedStartService()

    def startService(self) -> None:
        self._openAuditLog()
        self._watchShutdown()
        if hasattr(signal, "SIGHUP"):
            self._previousHandler = signal.signal(
                signal.SIGHUP, lambda *a: self.reactor.callFromThread(self._hangup))
        super().startService()
        if self.watchInterval > 0 and self.secureEndpoints:
            from twisted.internet.task import LoopingCall

            self._seen = self.fileSignatures()
            self._watch = LoopingCall(self._checkFiles)
            self._watch.clock = self.reactor
            self._watch.start(self.watchInterval, now=False)
        self.expiry.start()
        if self.notifier is not None:
            self._systemd = SystemdLifecycle(self.notifier, self.reactor, self)

    def watchedFiles(self) -> List[str]:
        """
        The certificate, key, CA, CRL and policy files (and CRL
        directories) the secure endpoints were built from.  CRLs also have
        their own watcher (inotify, and every C{crlReload} seconds); this
        one covers them too, at the C{--watch} interval.
        """
        paths: List[str] = []
        for endpoint, description in zip(self.secureEndpoints, self.listenDescriptions,
                                         strict=False):
            policy = endpoint.policy
            credentials = policy.credentials
            for path in (credentials.certificateFile, credentials.keyFile,
                         credentials.extraChain, credentials.pkcs12, credentials.dhParameters,
                         policy.trust.caFile, policy.trust.caDir, _policyFileOf(description),
                         *policy.revocation.crlFiles, *policy.revocation.crlDirs):
                if path and path not in paths:
                    paths.append(path)
        return paths

    def fileSignatures(self) -> Dict[str, Any]:
        signatures: Dict[str, Any] = {}
        for path in self.watchedFiles():
            try:
                st = os.stat(path)
                signatures[path] = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
            except OSError:
                signatures[path] = None
        return signatures

    def _checkFiles(self) -> None:
        """
        Reload when a watched file changed and has stayed the same for one
        interval (so a file being written is not read half-way).
        """
        now = self.fileSignatures()
        if now == self._seen:
            return
        if self._candidate != now:
            self._candidate = now  # changed: wait one interval for it to settle
            return
        self._candidate = None
        self._seen = now
        _log.info("securetcp: certificate, key, CA, CRL or policy files changed; reloading")
        self.reload()

    def _hangup(self) -> None:
        if self._watch is not None:
            # what this reload reads, the watcher need not read again
            self._seen, self._candidate = self.fileSignatures(), None
        self.reload()
        if self.supervisor is not None:
            self.supervisor.signalAll(signal.SIGHUP)

    def stopService(self) -> Any:
        if self._systemd is not None:
            self._systemd.stop()
            self._systemd = None
        self.expiry.stop()
        d = super().stopService()

        def cleanup(result: Any) -> Any:
            if self._shutdownTrigger is not None:
                self.reactor.removeSystemEventTrigger(self._shutdownTrigger)
                self._shutdownTrigger = None
            if not self._shuttingDown:
                self._releaseAuditLog()
            return result

        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self._watch = None
        if self._previousHandler is not None and hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._previousHandler)
        if d is None:
            return cleanup(None)
        return d.addBoth(cleanup)

    def _watchShutdown(self) -> None:
        """
        When the reactor shuts down (twistd stops this service in the same
        phase, after this trigger), keep the audit file until the reactor
        has closed the connections still open, so that their close records
        are written before the chain is closed.
        """
        add = getattr(self.reactor, "addSystemEventTrigger", None)
        if add is not None and self._observer is not None and self._shutdownTrigger is None:
            def shuttingDown() -> None:
                self._shutdownTrigger = None
                self._shuttingDown = True
                self.reactor.addSystemEventTrigger("after", "shutdown", self._releaseAuditLog)

            self._shutdownTrigger = add("before", "shutdown", shuttingDown)

    def _releaseAuditLog(self) -> None:
        if self._observer is not None:
            from securetcp.audit.file import globalAuditFiles

            globalLogPublisher.removeObserver(self._published)
            globalAuditFiles.release(self._observer)
            self._observer = self._published = None

    def reload(self) -> bool:
        """
        Have every secure server endpoint re-read its policy (the policy
        file and the endpoint string's arguments) and the files it names,
        and swap them in; an endpoint keeps its running configuration if
        anything is wrong (it audits either outcome).

        @return: whether every endpoint reloaded.
        """
        if self.notifier is not None:
            self.notifier.reloading()
        ok = self._reloadEndpoints()
        if self.notifier is not None:
            self.notifier.ready("listening (reloaded)" if ok else
                                "listening (reload refused, running configuration kept)")
        return ok

    def _reloadEndpoints(self) -> bool:
        ok = True
        for endpoint, description in zip(self.secureEndpoints, self.listenDescriptions,
                                         strict=True):
            try:
                endpoint.reload()
            except (PolicyError, ValueError) as e:
                ok = False
                _log.error("securetcp: reload refused, running configuration kept: {error}",
                           error=str(e))
            else:
                _log.info("securetcp: reloaded {description}", description=redact(description))
        if self.metrics is not None:
            self.metrics.reloaded(ok)
        return ok


def _policyFileOf(description: str) -> Optional[str]:
    """
    The C{policy=} file named in an endpoint string, if any.
    """
    parts = re.split(r"(?<!\\):", description)
    for part in parts:
        if part.startswith("policy="):
            return part[len("policy="):].replace("\\:", ":")
    return None


def _tagging(observer: Any, fields: Dict[str, Any]) -> Callable[[Dict[str, Any]], None]:
    """
    An observer that adds C{fields} to every audit record before
    C{observer} writes it.  The record itself is tagged (not a copy), so
    that the emitter can still ask the writer whether it wrote that record
    (L{securetcp._interfaces.IAuditFile.wrote}): the gate's fail-closed
    check depends on it.
    """
    def tag(event: Dict[str, Any]) -> None:
        record = event.get("securetcp_audit")
        if record is not None and event.get("log_namespace") == AUDIT_NAMESPACE:
            record.update(fields)
        observer(event)

    return tag


def redact(description: str) -> str:
    parts = description.split(":")
    return ":".join("passphrase=***" if p.startswith("passphrase=") else p for p in parts)


