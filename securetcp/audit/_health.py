# -*- test-case-name: tests.test_auditlog,tests.test_failclosed -*-
"""
Whether an audit file writer's file can be written, and what was lost
while it could not: the part of L{securetcp.audit.writer.AuditLogObserver}
that answers L{IAuditFile.accepting} and L{IAuditFile.wrote}, counts the
records lost, and writes the C{chain.gap} record owed once writing works
again::

    if writer.accepting():          # not failing, or its gap record written
        ...
    writer.wrote(record)            # True, False, or None (not known here)
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from twisted.logger import Logger

from securetcp.audit.records import chainGap

_log = Logger(namespace="securetcp.auditlog")

#: a remembered outcome: the record's id, its C{time}, the record itself if
#: it failed, and whether it was written
Outcome = Tuple[int, Any, Optional[Dict[str, Any]], bool]


class FileHealth:
    """
    Failures, losses and outcomes of a writer (mixed into
    L{securetcp.audit.writer.AuditLogObserver}, which provides the
    attributes declared here).
    """

    path: str
    onFailure: str
    failing: bool
    lost: int
    refused: int
    _lock: Any
    _lostSince: Optional[float]
    _now: Callable[[], float]
    _append: Callable[..., None]
    _reopen: Callable[[], None]

    def _trackOutcomes(self, remembered: int) -> None:
        """
        Set up the outcomes L{wrote} tells (the writer's constructor calls this).

        The last record is held with its outcome.  The others are
        remembered by id, a failed one held as well (so that its id is not
        reused meanwhile), a written one with its C{time} text (the very
        string object) instead: held, a record would live for as many
        records as are remembered, long enough to outlive the young
        generations of Python's garbage collector and bring on full
        collections of a server's whole heap.
        """
        self._outcomes: Deque[Outcome] = collections.deque(maxlen=remembered)
        self._lastOutcome: Tuple[Optional[Dict[str, Any]], bool] = (None, False)

    def _outcome(self, record: Dict[str, Any], written: bool) -> None:
        self._lastOutcome = (record, written)
        self._outcomes.append((id(record), record.get("time"), None if written else record,
                               written))

    def _writeGap(self) -> None:
        if self.lost or self.refused:
            self._append(chainGap(self._now(), self.lost, self._lostSince, self.refused))
            self.lost = self.refused = 0
            self._lostSince = None

    def _failed(self, error: Exception, record: Dict[str, Any]) -> None:
        self.lost += 1
        if self._lostSince is None:
            self._lostSince = self._now()
        if (record.get("event"), record.get("reason")) == ("handshake.rejected",
                                                           "audit_unavailable"):
            self.refused += 1
        if self.failing:
            return
        self.failing = True
        _log.critical(
            "securetcp audit log {path} cannot be written ({error}); {action}",
            path=self.path, error=str(error),
            action="new connections are REFUSED until it can" if self.onFailure == "refuse"
            else "connections CONTINUE and their audit records are LOST")

    def _recovered(self) -> None:
        if not self.failing:
            return
        self.failing = False
        _log.info("securetcp audit log {path} is writable again", path=self.path)

    def wrote(self, record: Dict[str, Any]) -> Optional[bool]:
        """
        Whether C{record} (this dict, among the last few) was written;
        C{None} if it was not given here or C{onFailure="continue"}.  A
        written record other than the last is recognised by its id and its
        C{time} text (that string object), a failed one by itself.
        """
        if self.onFailure != "refuse":
            return None
        last = self._lastOutcome  # the latest outcome: the common case, without the lock
        if last[0] is record:
            return last[1]
        key, witness = id(record), record.get("time")
        with self._lock:
            for seen, when, held, done in reversed(self._outcomes):
                if seen == key and (held is record if held is not None else when is witness):
                    return done
            return None

    def probe(self) -> bool:
        """
        While failing, write the C{chain.gap} record owed, if any.  That
        does not make the file healthy; only a real record written does.

        @return: whether a real record is worth trying: the file is not
            failing, or its gap record is written.
        """
        with self._lock:
            if not self.failing:
                return True
            try:
                self._reopen()
                self._writeGap()
            except (OSError, ValueError):
                return False
            return True

    def accepting(self) -> bool:
        """
        Whether a new connection may try to proceed: always with
        C{onFailure="continue"}; with C{"refuse"}, what L{probe} says.
        """
        if self.onFailure != "refuse" or not self.failing:
            return True
        return self.probe()

