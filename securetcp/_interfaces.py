# -*- test-case-name: tests.test_gate,tests.test_auditlog -*-
"""
The small interfaces that collaborators are typed by when they are passed to
a constructor, so that no module needs to import the one that implements them:

    gate = GateFactory(application, policy, Role.SERVER, clock, sink, ...)

where C{sink} provides L{IAuditSink} (an L{securetcp.audit.AuditEmitter}, or a
test's recorder).
"""

from __future__ import annotations

from typing import Any, Dict

from zope.interface import Interface


class IAuditSink(Interface):
    """
    Where audit records go.  The gate and the endpoints emit through it and
    ask it whether a new connection may proceed (fail closed).
    """

    def emit(record: Dict[str, Any]) -> None:
        """
        Emit one audit record (a JSON-ready dict built by
        L{securetcp.audit.records}).
        """

    def accepting() -> bool:
        """
        Whether new connections may proceed: every audit destination that
        refuses connections while it fails can be written now.
        """
