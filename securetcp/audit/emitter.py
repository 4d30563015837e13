# -*- test-case-name: tests.test_auditlog -*-
"""
L{AuditEmitter}: sends the records built by L{securetcp.audit.records}
through L{twisted.logger}, in the C{securetcp.audit} namespace::

    emitter = AuditEmitter()
    emitter.emit(connectionAccepted(connection, time=clock.seconds()))
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from twisted.logger import Logger, LogLevel

from securetcp.audit.records import AUDIT_NAMESPACE, EVENTS, SCHEMA_VERSION

#: Events logged at C{warn} level; the others at C{info}.
WARNING_EVENTS = frozenset({
    "handshake.rejected", "revocation.crl_refused", "revocation.crl_expired",
    "connection.revoked", "policy.reload_refused", "proxy.backend_failed",
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
    "connection.revoked": "securetcp: disconnected revoked peer {securetcp_audit[peer]}",
    "policy.reloaded": "securetcp: policy {securetcp_audit[policy]} reloaded",
    "policy.reload_refused": "securetcp: reload refused, running configuration kept: "
    "{securetcp_audit[detail]}",
    "proxy.backend_failed": "securetcp: backend {securetcp_audit[backend]} failed for "
    "{securetcp_audit[peer]}: {securetcp_audit[detail]}",
}


class AuditHealth:
    """
    Which audit files with C{onFailure="refuse"} cannot be written now.  The
    gate refuses new connections while any cannot.
    """

    def __init__(self) -> None:
        self._failing: Dict[int, Any] = {}

    def fail(self, observer: object) -> None:
        self._failing[id(observer)] = observer

    def recover(self, observer: object) -> None:
        self._failing.pop(id(observer), None)

    @property
    def accepting(self) -> bool:
        """
        Whether new connections may proceed: every refusing audit file is
        writable.  A failing file is probed (it tries to write its
        C{chain.gap} record) so the first connection after a repair is
        already accepted.
        """
        for observer in list(self._failing.values()):
            probe = getattr(observer, "probe", None)
            if probe is not None and probe():
                self.recover(observer)
        return not self._failing


auditHealth = AuditHealth()


class AuditEmitter:
    """
    Emits audit records through a L{Logger} in the C{securetcp.audit}
    namespace.

    @ivar logger: the L{Logger} used; tests pass one with their own observer.
    """

    def __init__(self, logger: Optional[Logger] = None) -> None:
        self.logger = logger or Logger(namespace=AUDIT_NAMESPACE)

    def emit(self, record: Dict[str, Any]) -> None:
        """
        Emit one record (which must have an C{event} key from L{EVENTS}).
        """
        event = record["event"]
        assert event in EVENTS, event
        record.setdefault("schema", SCHEMA_VERSION)
        level = LogLevel.warn if event in WARNING_EVENTS else LogLevel.info
        self.logger.emit(
            level,
            FORMATS[event],
            securetcp_audit=record,
            securetcp_event=event,
        )
