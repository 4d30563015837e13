# -*- test-case-name: tests.test_auditfiles,tests.test_auditlog -*-
"""
The exclusive lock an audit file writer holds on its file.
"""

from __future__ import annotations

import os
from typing import Optional

from securetcp.errors import AuditLogError

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]


def lockFile(path: str) -> Optional[int]:
    """
    Open C{path} (creating it) and take an exclusive lock on it.

    @return: the descriptor holding the lock (C{None} where there are no
        locks).
    @raise AuditLogError: if another writer holds the lock.
    @raise OSError: if the file cannot be opened.
    """
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise AuditLogError(
            path, "another audit log writer, in this process or another, is writing it",
            "let everything in one process that names this file share one writer "
            "(auditLog=, --audit-log and auditLogObserver() do), and give every "
            "process its own file") from None
    return fd
