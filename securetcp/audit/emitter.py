# -*- test-case-name: tests.test_auditemitter,tests.test_auditlog -*-
"""
L{AuditEmitter}, the L{IAuditSink} that endpoints, gates and the twistd
service are given: it sends the records built by L{securetcp.audit.records}
through L{twisted.logger} (the C{securetcp.audit} namespace), to the audit
files it was given as well, and says whether new connections may proceed
(fail closed: not while one of those files cannot be written)::

    writer = auditLogObserver("/var/log/securetcp/audit.jsonl")
    emitter = AuditEmitter(observers=[writer])
    if emitter.accepting() and emitter.emit(connectionAccepted(connection, now)):
        ...   # written to every file that refuses connections: go on

One fallback: an emitter whose records go to the global log publisher (the
default) also consults the writers of
L{securetcp.audit.file.globalAuditFiles}, since that publisher may carry
its records to them (C{twistd --logger=securetcp.audit.twistdLogger}, the
twistd service's C{--audit-log}, an L{auditLogObserver} added to the global
log publisher by hand).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from twisted.logger import Logger, LogLevel, LogPublisher, globalLogPublisher
from zope.interface import implementer

from securetcp._interfaces import IAuditFile, IAuditSink
from securetcp.audit._seen import AuditEvent
from securetcp.audit.file import globalAuditFiles
from securetcp.audit.records import AUDIT_NAMESPACE, EVENTS, SCHEMA_VERSION
from securetcp.audit.writer import AuditLogObserver

#: Events logged at C{warn} level; the others at C{info}.
WARNING_EVENTS = frozenset({
    "handshake.rejected", "revocation.crl_refused", "revocation.crl_expired",
    "connection.revoked", "policy.reload_refused", "proxy.backend_failed",
    "certificate.expiring", "revocation.crl_expiring", "export.dropped",
})

#: The text form of each event, as twistd's log shows it.
FORMATS = {
    "connection.accepted": "securetcp: accepted {securetcp_audit[peer]} "
    "{securetcp_audit[version]} {securetcp_audit[cipher]}",
    "handshake.rejected": "securetcp: rejected {securetcp_audit[peer]}: "
    "{securetcp_audit[reason]}",
    "connection.closed": "securetcp: closed {securetcp_audit[peer]} after "
    "{securetcp_audit[duration]}s",
    "policy.loaded": "securetcp: policy {securetcp_audit[policy]} "
    "({securetcp_audit[profile]}) loaded for {securetcp_audit[role]}",
    "revocation.crl_loaded": "securetcp: CRLs loaded ({securetcp_audit[revoked]} revoked)",
    "revocation.crl_refused": "securetcp: new CRL refused: {securetcp_audit[detail]}",
    "revocation.crl_expired": "securetcp: CRL expired: {securetcp_audit[detail]}",
    "revocation.crl_expiring": "securetcp: the CRL of {securetcp_audit[issuer]} reaches its "
    "nextUpdate in {securetcp_audit[daysLeft]} day(s) ({securetcp_audit[nextUpdate]})",
    "certificate.expiring": "securetcp: certificate {securetcp_audit[subject]} expires in "
    "{securetcp_audit[daysLeft]} day(s) ({securetcp_audit[notAfter]}; {securetcp_audit[kind]})",
    "connection.revoked": "securetcp: disconnected revoked peer {securetcp_audit[peer]}",
    "policy.reloaded": "securetcp: policy {securetcp_audit[policy]} reloaded",
    "policy.reload_refused": "securetcp: reload refused, running configuration kept: "
    "{securetcp_audit[detail]}",
    "proxy.backend_failed": "securetcp: backend {securetcp_audit[backend]} failed for "
    "{securetcp_audit[peer]}: {securetcp_audit[detail]}",
    "export.dropped": "securetcp: audit export queue full: records {securetcp_audit[firstSeq]} to "
    "{securetcp_audit[lastSeq]} not sent to {securetcp_audit[collector]}",
}


@implementer(IAuditSink)
class AuditEmitter:
    """
    Emits audit records through a L{Logger} in the C{securetcp.audit}
    namespace, and to the audit files C{observers}.

    @param logger: where records go besides C{observers}; by default a
        logger of the global log publisher.  Tests pass one with their own
        observer.
    @param observers: the audit files this emitter writes to; it refuses
        new connections while one of them refuses (L{IAuditFile.accepting}).
    """

    def __init__(self, logger: Optional[Logger] = None,
                 observers: Sequence[IAuditFile] = ()) -> None:
        self.logger = logger or Logger(namespace=AUDIT_NAMESPACE)
        self.observers = tuple(observers)
        self._route = self.logger
        if self.observers:
            self._route = Logger(namespace=self.logger.namespace, source=self.logger.source,
                                 observer=LogPublisher(self.logger.observer, *self.observers))
        #: whether the records reach the global log publisher (see above)
        self._global = self.logger.observer is globalLogPublisher
        #: whether L{emit} may make the log event itself, as a plain
        #: L{Logger}'s C{emit} would
        self._plain = type(self._route) is Logger
        #: the writers of L{globalAuditFiles} consulted besides C{observers},
        #: for the files' generation they were read in
        self._extra: Tuple[int, Tuple[AuditLogObserver, ...]] = (-1, ())

    def emit(self, record: Dict[str, Any]) -> bool:
        """
        Emit one record (which must have an C{event} key from L{EVENTS}).

        @return: whether no consulted file that refuses connections failed
            to write it (L{IAuditFile.wrote}).
        @raise ValueError: for an event the schema does not have.
        """
        event = record["event"]
        if event not in EVENTS:
            raise ValueError(f"{event!r} is not an audit event of the schema")
        record.setdefault("schema", SCHEMA_VERSION)
        level = LogLevel.warn if event in WARNING_EVENTS else LogLevel.info
        route = self._route
        if self._plain:
            # the event Logger.emit makes, without its checks of what is known
            # here; an AuditEvent, which writers need not hold (securetcp.audit._seen)
            route.observer(AuditEvent(securetcp_audit=record, securetcp_event=event,
                                      log_logger=route, log_level=level,
                                      log_namespace=route.namespace, log_source=route.source,
                                      log_format=FORMATS[event], log_time=time.time()))
        else:
            route.emit(level, FORMATS[event], securetcp_audit=record, securetcp_event=event)
        written = True
        for f in self.observers:  # every one is asked (none short-circuits)
            if f.wrote(record) is False:
                written = False
        if self._global and self._extra != (globalAuditFiles.generation, ()):
            for f in self._globalFiles():
                if f.wrote(record) is False:
                    written = False
        return written

    def _globalFiles(self) -> Tuple[AuditLogObserver, ...]:
        """
        The open writers of L{globalAuditFiles} that are not C{observers}.
        """
        generation, files = self._extra
        if generation != globalAuditFiles.generation:
            generation = globalAuditFiles.generation
            files = tuple(w for w in globalAuditFiles.writers()
                          if not any(w is f for f in self.observers))
            self._extra = (generation, files)
        if files and any(w.closed for w in files):
            files = tuple(w for w in files if not w.closed)
        return files

    def consulted(self) -> List[IAuditFile]:
        """
        The audit files whose state decides L{accepting}: C{observers}, and
        (for records that go to the global log publisher) the writers of
        L{globalAuditFiles}.
        """
        files: List[IAuditFile] = list(self.observers)
        if self._global:
            files.extend(self._globalFiles())
        return files

    def accepting(self) -> bool:
        """
        Whether new connections may proceed: no consulted file refuses.
        Every failing one is probed, so each writes its C{chain.gap} record
        as soon as it can.
        """
        accepting = True
        for f in self.observers:  # every one is probed (none short-circuits)
            if not f.accepting():
                accepting = False
        if self._global and self._extra != (globalAuditFiles.generation, ()):
            for f in self._globalFiles():
                if not f.accepting():
                    accepting = False
        return accepting
