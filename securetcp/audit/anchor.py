# -*- test-case-name: tests.test_checkpoints -*-
"""
How an audit file writer anchors its chain: signed C{chain.checkpoint}
records every so many records and seconds and at a clean close, and the
C{chain.closed} record that tells the next writer the chain ended
cleanly.  L{ChainAnchoring} is the part of
L{securetcp.audit.writer.AuditLogObserver} that does it::

    writer = AuditLogObserver(path, checkpointKey="/etc/securetcp/checkpoint.key",
                              checkpointEvery=100, checkpointInterval=60.0)
    writer.checkpoint()      # sign the head now
    writer.close()           # checkpoint, then chain.closed

A checkpoint covers the record just before it (its C{coversSeq} and
C{coversHash}); see L{securetcp.audit.checkpoint} for the signatures.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from twisted.logger import Logger

from securetcp.audit.checkpoint import CheckpointSigner, checkpointMessage, checkpointSigner
from securetcp.audit.records import chainCheckpoint, chainClosed, chainResumed
from securetcp.errors import AuditLogError

_log = Logger(namespace="securetcp.auditlog")

#: Schedules a call after some seconds (C{threading.Timer}-like: the
#: result has C{cancel()}); a test's stand-in fires it by hand.
Schedule = Callable[[float, Callable[[], None]], Any]

#: By default a checkpoint is written after this many records ...
CHECKPOINT_EVERY = 100
#: ... or this many seconds after the first record it is to cover.
CHECKPOINT_INTERVAL = 60.0

#: Room left for a checkpoint record when rotating before it (bytes).
_CHECKPOINT_ROOM = 1024


def threadTimer(delay: float, call: Callable[[], None]) -> Any:
    """
    Call C{call} in a daemon thread after C{delay} seconds.
    """
    timer = threading.Timer(delay, call)
    timer.daemon = True
    timer.start()
    return timer


class ChainAnchoring:
    """
    Checkpoints and the clean end of a writer's chain (a mix-in of
    L{securetcp.audit.writer.AuditLogObserver}, which provides the
    attributes declared here).

    @ivar lastCheckpoint: the last checkpoint written (the record, with
        its C{seq} and C{hash}), or C{None}.
    """

    path: str
    closed: bool
    failing: bool
    _lock: Any
    _file: Any
    _seq: int
    _prev: str
    _now: Callable[[], float]
    _append: Callable[..., None]
    _rotateIfDue: Callable[[int], bool]

    def _anchorChain(self, path: str, key: Optional[bytes], checkpointKey: Any = None,
                     checkpointEvery: int = CHECKPOINT_EVERY,
                     checkpointInterval: float = CHECKPOINT_INTERVAL,
                     schedule: Schedule = threadTimer) -> None:
        """
        Set up checkpoints (the writer's constructor calls this).

        @param checkpointKey: sign a C{chain.checkpoint} with this Ed25519
            private key (or the PEM file of one) every C{checkpointEvery}
            records, C{checkpointInterval} seconds after the first record
            not yet covered, and at C{close()}.  Without it, a chain with an
            HMAC C{key} gets checkpoints signed with that key; a chain with
            neither has none.
        @param schedule: times the interval (a test's stand-in).
        @raise AuditLogError: for a bad key file or numbers.
        """
        if int(checkpointEvery) < 1 or not float(checkpointInterval) > 0:
            raise AuditLogError(path, f"checkpointEvery={checkpointEvery!r}, "
                                f"checkpointInterval={checkpointInterval!r}",
                                "give at least 1 record and more than 0 seconds")
        self._signer: Optional[CheckpointSigner] = checkpointSigner(checkpointKey, key)
        self._signerGiven = checkpointKey is not None
        self.checkpointEvery = int(checkpointEvery)
        self.checkpointInterval = float(checkpointInterval)
        self._schedule = schedule
        self._uncovered = 0
        self._checkpointTimer: Any = None
        self.lastCheckpoint: Optional[Dict[str, Any]] = None
        self._endedCleanly = False

    def _anchorSettings(self) -> Dict[str, Any]:
        return {"checkpointKey": self._signer if self._signerGiven else None,
                "checkpointEvery": self.checkpointEvery,
                "checkpointInterval": self.checkpointInterval}

    def _covered(self, record: Dict[str, Any]) -> None:
        """
        C{record} was written: one more record no checkpoint covers yet.
        Write a checkpoint when one is due, or time the next one.
        """
        if self._signer is None or record.get("event") == "chain.checkpoint":
            return
        self._uncovered += 1
        if self._uncovered >= self.checkpointEvery:
            self._checkpointQuietly("count")
        elif self._checkpointTimer is None:
            self._checkpointTimer = self._schedule(self.checkpointInterval,
                                                   self._timedCheckpoint)

    def _timedCheckpoint(self) -> None:
        with self._lock:
            self._checkpointTimer = None
            if not self.closed and self._file is not None and not self._file.closed:
                self._checkpointQuietly("interval")

    def _checkpointQuietly(self, trigger: str) -> None:
        """
        Write a checkpoint; a failure is logged (the records stay uncovered
        until the next one), never raised into the write that made it due.
        """
        try:
            self.checkpoint(trigger)
        except (OSError, ValueError) as e:
            _log.error("securetcp audit log {path}: cannot write a checkpoint ({error})",
                       path=self.path, error=str(e))

    def _cancelCheckpointTimer(self) -> None:
        if self._checkpointTimer is not None:
            self._checkpointTimer.cancel()
            self._checkpointTimer = None

    def checkpoint(self, trigger: str = "interval") -> Optional[Dict[str, Any]]:
        """
        Sign the head of the chain now with a C{chain.checkpoint} record.

        @param trigger: why: C{count}, C{interval} or C{shutdown}.
        @return: the checkpoint as written (with its C{seq} and C{hash}),
            or C{None} without a checkpoint key or when every record is
            already covered.
        @raise OSError: if it cannot be written.
        """
        with self._lock:
            if self._signer is None or self._uncovered == 0:
                return None
            self._cancelCheckpointTimer()
            # rotate first, so that the record it covers is the one just before it
            self._rotateIfDue(_CHECKPOINT_ROOM)
            signer = self._signer
            record = chainCheckpoint(self._now(), self._seq, self._prev, signer.algorithm,
                                     signer.keyId, signer.sign(checkpointMessage(self._seq,
                                                                                 self._prev)),
                                     trigger)
            self._append(record, rotate=False)
            self._uncovered = 0
            self.lastCheckpoint = dict(record, seq=self._seq, hash=self._prev)
            return self.lastCheckpoint

    def _closeChain(self) -> None:
        """
        End the chain cleanly (once): a last checkpoint, then
        C{chain.closed}, so that the next writer resumes with reason
        C{restart}.  Not while the file cannot be written: the next start
        then says C{crash}.
        """
        self._cancelCheckpointTimer()
        if self.closed or self.failing or self._file is None or self._file.closed:
            return
        try:
            self.checkpoint("shutdown")
            self._append(chainClosed(self._now()), rotate=False)
            self._endedCleanly = True
        except (OSError, ValueError) as e:
            _log.error("securetcp audit log {path}: cannot close the chain ({error})",
                       path=self.path, error=str(e))

    def _reopened(self, afterClose: bool) -> None:
        """
        The file was opened again; after C{close()} the chain resumes, with
        reason C{restart} if C{close()} ended it with C{chain.closed}.
        """
        if afterClose:
            clean, self._endedCleanly = self._endedCleanly, False
            self._append(chainResumed(self._now(), self._seq, clean=clean))
