# -*- test-case-name: tests.test_auditlog,tests.test_auditpackage -*-
"""
The audit trail:

  - L{securetcp.audit.records}: the schema, and a pure builder per record;
  - L{securetcp.audit.emitter}: L{AuditEmitter}, which emits records
    through L{twisted.logger} and to audit files, and says whether
    connections may proceed;
  - L{securetcp.audit.chain}: how records are sealed into a hash chain;
  - L{securetcp.audit.writer}: L{AuditLogObserver}, which writes the chain
    to a file;
  - L{securetcp.audit.file}: L{AuditFiles}, which owns the writers (one
    per file), and L{auditLogObserver};
  - L{securetcp.audit.checkpoint} and L{securetcp.audit.anchor}: signed
    checkpoints of the head of a chain, and its clean end;
  - L{securetcp.audit.verify}, L{securetcp.audit.completeness} and
    L{securetcp.audit.report}: checking audit files (intact, complete,
    anchored) and summarising them;
  - L{securetcp.audit.atna}: L{atnaMessage}, a record as an IHE ATNA
    (DICOM PS3.15 A.5) audit message;
  - L{securetcp.audit.rfc5424} and L{securetcp.audit.fleet}:
    L{verifyCollector}, checking every node's chain in a syslog
    collector's file, and a node's local file against it.

    emitter = AuditEmitter(observers=[auditLogObserver("/var/log/securetcp/audit.jsonl")])
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.logger import LogPublisher, textFileLogObserver

from securetcp.audit.atna import atnaMessage
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import AuditFiles, AuditLogObserver, auditLogObserver, globalAuditFiles
from securetcp.audit.fleet import verifyCollector
from securetcp.audit.records import (
    AUDIT_NAMESPACE,
    CHAIN_EVENTS,
    EVENTS,
    REJECTION_REASONS,
    SCHEMA_VERSION,
    utcTimestamp,
)
from securetcp.audit.report import buildReport
from securetcp.audit.verify import VerifyResult, verifyFiles

__all__ = [
    "AUDIT_NAMESPACE",
    "AuditEmitter",
    "AuditFiles",
    "AuditLogObserver",
    "CHAIN_EVENTS",
    "EVENTS",
    "REJECTION_REASONS",
    "SCHEMA_VERSION",
    "VerifyResult",
    "atnaMessage",
    "auditLogObserver",
    "buildReport",
    "globalAuditFiles",
    "twistdLogger",
    "utcTimestamp",
    "verifyCollector",
    "verifyFiles",
]


def twistdLogger() -> Any:
    """
    A log observer factory for C{twistd --logger=securetcp.audit.twistdLogger}:
    the usual text log on standard output, plus the audit records written to
    the file named by the C{SECURETCP_AUDIT_LOG} environment variable
    (default C{securetcp-audit.jsonl}) as a hash chain.  Lets an unmodified
    twistd application keep a tamper-evident audit trail::

        SECURETCP_AUDIT_LOG=/var/log/securetcp/audit.jsonl \\
            twistd -n --logger=securetcp.audit.twistdLogger web --listen "mtls:..."

    The file's writer is the one of L{globalAuditFiles}: an endpoint whose
    C{auditLog=} names the same file shares it (each record is written
    once), and endpoints refuse connections while it cannot be written.
    """
    path = os.environ.get("SECURETCP_AUDIT_LOG", "securetcp-audit.jsonl")
    return LogPublisher(textFileLogObserver(sys.stdout), auditLogObserver(path))
