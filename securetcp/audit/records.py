# -*- test-case-name: tests.test_auditlog,tests.test_docs -*-
"""
The audit event schema, and how events are emitted.

Every connection produces events through L{twisted.logger} under the
C{securetcp.audit} namespace.  Each event carries one JSON-ready dict, its
I{record}, under the key C{securetcp_audit}::

    from twisted.logger import globalLogPublisher
    def show(event):
        if event.get("log_namespace") == AUDIT_NAMESPACE:
            print(event["securetcp_audit"]["event"])
    globalLogPublisher.addObserver(show)

The events (C{record["event"]}) are:

  - C{connection.accepted}: handshake done, peer verified and authorised;
    the application now has the connection.
  - C{handshake.rejected}: the peer never reached the application;
    C{reason} is one of L{REJECTION_REASONS}.
  - C{connection.closed}: an accepted connection ended; C{duration} (seconds),
    C{bytesIn} and C{bytesOut} (application bytes).
  - C{policy.loaded}: an endpoint started using a policy.

No record ever contains application data.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Optional

from twisted.internet.interfaces import IAddress
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from securetcp._interfaces import IAuditSink
from securetcp._reasons import REJECTION_REASONS

__all__ = [
    "CHAIN_EVENTS",
    "AUDIT_NAMESPACE",
    "SCHEMA_VERSION",
    "EVENTS",
    "REJECTION_REASONS",
    "AuditEmitter",
]

AUDIT_NAMESPACE = "securetcp.audit"
SCHEMA_VERSION = 1

EVENTS = {
    "connection.accepted": "the peer was verified and authorised and handed to the application",
    "handshake.rejected": "the connection failed a check and never reached the application",
    "connection.closed": "an accepted connection ended",
    "policy.loaded": "a server endpoint started listening under a policy",
    "revocation.crl_loaded": "new CRLs were verified and are in force for new handshakes",
    "revocation.crl_refused": "new CRL files were refused; the previous CRLs stay in force",
    "revocation.crl_expired": "a CRL in force has passed its nextUpdate",
    "connection.revoked": "a connected peer was revoked by a reloaded CRL and disconnected",
    "policy.reloaded": "certificates, keys, CAs, CRLs and policy were re-read and are in force",
    "policy.reload_refused": "a reload failed validation; the running configuration stays",
    "proxy.backend_failed": "the backend could not be reached or failed; the TLS peer was closed",
}

#: Records the audit file itself adds to keep the chain verifiable.
CHAIN_EVENTS = {
    "chain.started": "first record of a new chain",
    "chain.resumed": "the writer restarted and continues the chain (reason: restart or torn_record)",
    "chain.rotated": "first record of a new file after rotation; names the previous file",
    "chain.gap": "records were lost while the file could not be written (lost: how many)",
}

_FORMATS = {
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


def utcTimestamp(seconds: float) -> str:
    """
    ISO 8601 UTC time with microseconds and a C{Z}.
    """
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@implementer(IAuditSink)
class AuditEmitter:
    """
    Emits audit records through a L{Logger} in the C{securetcp.audit}
    namespace.

    @ivar logger: the L{Logger} used; tests pass one with their own observer.
    """

    def __init__(self, logger: Optional[Logger] = None) -> None:
        self.logger = logger or Logger(namespace=AUDIT_NAMESPACE)

    def accepting(self) -> bool:
        """
        Whether new connections may proceed (L{auditHealth}).
        """
        return auditHealth.accepting

    def emit(self, record: Dict[str, Any]) -> None:
        """
        Emit one record (which must have an C{event} key from L{EVENTS}).
        """
        event = record["event"]
        assert event in EVENTS, event
        record.setdefault("schema", SCHEMA_VERSION)
        level = LogLevel.warn if event in (
            "handshake.rejected", "revocation.crl_refused", "revocation.crl_expired",
            "connection.revoked", "policy.reload_refused",
            "proxy.backend_failed") else LogLevel.info
        self.logger.emit(
            level,
            _FORMATS[event],
            securetcp_audit=record,
            securetcp_event=event,
        )


def addressText(address: Optional[IAddress]) -> Optional[str]:
    """
    An address as audit records write it: C{host:port}, C{[v6]:port} or
    C{unix:PATH}.
    """
    if address is None:
        return None
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return f"unix:{name.decode() if isinstance(name, bytes) else name}"
    return str(address)
