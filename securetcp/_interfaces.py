# -*- test-case-name: tests.test_gate,tests.test_auditlog,tests.test_auditemitter -*-
"""
The small interfaces that collaborators are typed by when they are passed to
a constructor, so that no module needs to import the one that implements them:

    gate = GateFactory(application, policy, Role.SERVER, clock, sink, ...)

where C{sink} provides L{IAuditSink} (an L{securetcp.audit.AuditEmitter}, or a
test's recorder).
"""

from __future__ import annotations

from typing import Any, Dict

from twisted.logger import ILogObserver
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


class IAuditFile(ILogObserver):
    """
    A log observer that writes audit records to a file, and knows whether
    connections may proceed as far as that file is concerned (an
    L{securetcp.audit.writer.AuditLogObserver}).  An
    L{securetcp.audit.emitter.AuditEmitter} is given the ones it writes to.
    """

    def accepting() -> bool:
        """
        Whether new connections may proceed: C{False} while the file cannot
        be written and its policy is to refuse connections then.  May try
        to write (a probe), so that a repaired file is seen at once.
        """
