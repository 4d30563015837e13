# -*- test-case-name: tests.test_auditlog,tests.test_auditfiles -*-
"""
L{AuditLogObserver}: writes the C{securetcp.audit} events to one file as a
tamper-evident chain of JSON lines (see L{securetcp.audit.chain})::

    writer = AuditLogObserver("/var/log/securetcp/audit.jsonl", fsync="always")
    globalLogPublisher.addObserver(writer)

Build it through L{securetcp.audit.file.auditLogObserver} (or an
L{securetcp.audit.file.AuditFiles}), which gives everyone who names one file the
same writer.  A writer holds an exclusive lock on its file (C{flock}) while it has
it open: a second writer for the same file, in this process or another, fails at
start with an L{AuditLogError}.

Every record is flushed to the operating system before the next event is
processed.  On start the chain continues from the last record of an existing file
(a torn last line is moved aside and a C{chain.resumed} record says so); rotation
by size or day keeps the chain unbroken across files.  A writer writes each log
event at most once, however many routes (log publishers) deliver it.
"""

from __future__ import annotations

import datetime
import errno
import os
import threading
import time
from typing import IO, Any, Callable, Dict, Optional

from twisted.logger import Logger
from zope.interface import implementer

from securetcp._interfaces import IAuditFile
from securetcp.audit._followers import ChainFollowers
from securetcp.audit._health import FileHealth
from securetcp.audit._lock import lockFile as _lockFile
from securetcp.audit._seen import SeenEvents
from securetcp.audit.anchor import ChainAnchoring
from securetcp.audit.chain import ZERO_HASH, resumeChain, seal
from securetcp.audit.records import AUDIT_NAMESPACE, chainRotated, chainStarted
from securetcp.errors import AuditLogError

_log = Logger(namespace="securetcp.auditlog")

FSYNC_MODES = ("always", "interval", "off")
FAILURE_MODES = ("refuse", "continue")

#: How many recent log events a writer remembers, so that one delivered
#: again (by a second log publisher) is not written twice.
_REMEMBERED = 256

#: How many outcomes of recent writes a writer remembers for L{wrote}
#: (asked just after the write, by the emitter that wrote)
_OUTCOMES = 32

#: What a writer opens its file with: C{open}, or a test's stand-in.
OpenFile = Callable[[str, str], IO[bytes]]


def openUnbuffered(path: str, mode: str) -> IO[bytes]:
    """
    C{open} without a write buffer: a writer writes each record with one
    call anyway, and flushes it at once.
    """
    return open(path, mode, buffering=0)  # noqa: SIM115


@implementer(IAuditFile)
class AuditLogObserver(ChainAnchoring, ChainFollowers, FileHealth):
    """
    An L{IAuditFile} (an L{ILogObserver}) that keeps the C{securetcp.audit}
    events and writes them as a hash chain of JSON lines.  Thread-safe.

    @ivar path: the active file.
    @ivar failing: whether the last write failed.
    @ivar lost: records that could not be written since the last C{chain.gap} record.
    @ivar refused: of those, the C{audit_unavailable} refusals.
    @ivar closed: whether L{close} was called (a later record reopens the
        file, if no other writer took it meanwhile).
    """

    def __init__(self, path: str, fsync: str = "interval", fsyncInterval: float = 1.0,
                 maxBytes: Optional[int] = None, daily: bool = False,
                 onFailure: str = "refuse", key: Optional[bytes] = None,
                 now: Callable[[], float] = time.time, openFile: OpenFile = openUnbuffered,
                 **checkpoints: Any) -> None:
        if fsync not in FSYNC_MODES:
            raise AuditLogError(path, f"unknown fsync mode {fsync!r}",
                                "use " + ", ".join(FSYNC_MODES))
        if onFailure not in FAILURE_MODES:
            raise AuditLogError(path, f"unknown onFailure mode {onFailure!r}",
                                "use refuse or continue")
        if maxBytes is not None and maxBytes < 4096:
            raise AuditLogError(path, f"maxBytes={maxBytes} is too small",
                                "rotate at 4096 bytes or more")
        self.path = os.path.abspath(path)
        self.fsync = fsync
        self.fsyncInterval = fsyncInterval
        self.maxBytes = maxBytes
        self.daily = daily
        self.onFailure = onFailure
        self._key = key
        self._anchorChain(path, key, **checkpoints)  # see ChainAnchoring
        self._now = now
        self._openFile = openFile
        self._lock = threading.RLock()
        self._file: Any = None
        self._locked: Optional[int] = None
        self._size = self._seq = 0
        self._prev = ZERO_HASH
        self._day: Optional[str] = None
        self._lastFsync = now()
        self._fsyncTimer: Optional[threading.Timer] = None
        self._seen = SeenEvents(_REMEMBERED)
        self.failing = False
        self.lost = self.refused = 0
        self._lostSince: Optional[float] = None
        self._trackOutcomes(_OUTCOMES)  # see FileHealth
        self.written, self.closed = 0, False
        self._open()

    def settings(self) -> Dict[str, Any]:
        """
        The options this writer was built with (as L{auditLogObserver}
        takes them).
        """
        return {"fsync": self.fsync, "fsyncInterval": self.fsyncInterval,
                "maxBytes": self.maxBytes, "daily": self.daily,
                "onFailure": self.onFailure, "key": self._key, **self._anchorSettings()}

    # -- opening, resuming, rotating -------------------------------------

    def _open(self) -> None:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise AuditLogError(self.path, "the directory does not exist",
                                f"create {directory} or choose another auditLog path")
        if os.path.isdir(self.path):
            raise AuditLogError(self.path, "is a directory", "give a file name")
        try:
            # before anything is read: the file is ours alone from here on
            self._locked = _lockFile(self.path)
            resumed: Optional[Dict[str, Any]] = None
            if os.path.getsize(self.path) > 0:
                self._seq, self._prev, resumed = resumeChain(self.path, self._key, self._now())
            self._file = self._openFile(self.path, "ab")
        except OSError as e:
            self._unlock()
            raise AuditLogError(self.path, f"cannot open for appending: {e.strerror}",
                                "fix its permissions (or its attributes: lsattr, chattr -i) or "
                                "choose another path") from None
        except AuditLogError:
            self._unlock()
            raise
        self._size = self._file.tell()
        self._day = self._today()
        try:
            self._append(resumed or chainStarted(self._now(),
                                                 "hmac-sha256" if self._key else "sha256"))
        except OSError as e:
            self._unlock()
            raise AuditLogError(self.path, f"cannot be written: {e.strerror}",
                                "free space on its filesystem (or fix what stops writing "
                                "there) or choose another path") from None

    def _unlock(self) -> None:
        if self._locked is not None:
            os.close(self._locked)
            self._locked = None

    def _reopen(self) -> None:
        """
        Open the file again after a failed write or L{close}, taking its
        lock again if L{close} gave it up.
        """
        if self._file is None or self._file.closed:
            if self._locked is None:
                self._locked = _lockFile(self.path)
            wasClosed, self.closed = self.closed, False
            self._file = self._openFile(self.path, "ab")
            self._size = self._file.tell()
            self._reopened(wasClosed)

    def _today(self) -> str:
        return datetime.datetime.fromtimestamp(self._now(), datetime.UTC).strftime(
            "%Y-%m-%d")

    def _rotateIfDue(self, incoming: int) -> bool:
        bySize = self.maxBytes is not None and 0 < self._size and self._size + incoming > self.maxBytes
        if not bySize and not (self.daily and self._today() != self._day):
            return False
        self._sync(force=True)
        self._file.close()
        stamp = datetime.datetime.fromtimestamp(self._now(), datetime.UTC).strftime(
            "%Y%m%dT%H%M%SZ")
        target = f"{self.path}.{stamp}"
        n = 1
        while os.path.exists(target):
            target = f"{self.path}.{stamp}-{n}"
            n += 1
        os.rename(self.path, target)
        previousLock, self._locked = self._locked, _lockFile(self.path)
        if previousLock is not None:
            os.close(previousLock)
        self._file = self._openFile(self.path, "ab")
        self._size = 0
        self._day = self._today()
        self._append(chainRotated(self._now(), os.path.basename(target)), rotate=False)
        return True

    # -- writing -------------------------------------------------------

    def _append(self, record: Dict[str, Any], rotate: bool = True) -> None:
        line, digest = seal(record, self._seq + 1, self._prev, self._key)
        if rotate and (self.maxBytes is not None or self.daily) and self._rotateIfDue(len(line)):
            # a chain.rotated record came first: seal again after it
            line, digest = seal(record, self._seq + 1, self._prev, self._key)
        goodSize = self._size
        try:
            self._put(line)
        except (OSError, ValueError):
            # Keep the file ending on a whole record, and drop the line from
            # the write buffer too: left there, it would be flushed with the
            # next record and repeat this record's sequence number.  Closing
            # discards the buffer; the next write reopens the file.
            try:
                self._file.close()
            except (OSError, ValueError):
                pass
            self._file = None
            try:
                os.truncate(self.path, goodSize)
            except OSError:
                pass
            raise
        self._size += len(line)
        self._seq += 1
        self._prev = digest
        self.written += 1
        if self._followers:
            self._tellFollowers(line, record, digest)
        if self.fsync != "off":
            self._sync()
        if rotate and self._signer is not None:
            self._covered(record)

    def _put(self, line: bytes) -> None:
        """
        Write C{line} to the file and flush it to the operating system: one
        write for the whole line, unless the file takes only part of it.
        """
        written = self._file.write(line)
        while written is not None and written < len(line):  # the rest, as a flush would
            more = self._file.write(line[written:])
            if not more:
                raise OSError(errno.EIO, "the file took only part of a record")
            written += more
        self._file.flush()

    def _sync(self, force: bool = False) -> None:
        if self.fsync == "off" or self._file is None:
            return
        if self.fsync == "always" or force:
            os.fsync(self._file.fileno())
            self._lastFsync = self._now()
            return
        if self._now() - self._lastFsync >= self.fsyncInterval:
            os.fsync(self._file.fileno())
            self._lastFsync = self._now()
        elif self._fsyncTimer is None:
            timer = threading.Timer(self.fsyncInterval, self._timedSync)
            timer.daemon = True
            self._fsyncTimer = timer
            timer.start()

    def _timedSync(self) -> None:
        with self._lock:
            self._fsyncTimer = None
            try:
                if self._file is not None and not self._file.closed:
                    os.fsync(self._file.fileno())
                    self._lastFsync = self._now()
            except (OSError, ValueError):
                pass

    def write(self, record: Dict[str, Any]) -> bool:
        """
        Append one audit record (after a C{chain.gap} record for what was
        lost or refused since the last one).

        @return: whether it was written (under the C{fsync} mode), as
            L{wrote} tells later.  A failure is logged, counted in L{lost}
            (a refusal in L{refused} too) and recorded in a C{chain.gap}
            record once writing works again.
        """
        with self._lock:
            return self._write(record)

    def _write(self, record: Dict[str, Any]) -> bool:
        """
        L{write}, under the lock.
        """
        try:
            if self._file is None or self._file.closed:
                self._reopen()
            if self.lost or self.refused:
                self._writeGap()
            self._append(record)
        except (OSError, ValueError) as e:
            self._failed(e, record)
            self._outcome(record, False)
            return False
        if self.failing:
            self._recovered()
        self._lastOutcome = (record, True)  # what _outcome does
        self._outcomes.append((id(record), record.get("time"), None, True))
        return True

    def __call__(self, event: Dict[str, Any]) -> None:
        """
        Write the record of a C{securetcp.audit} event, once: an event
        delivered again (the same event, through a second log publisher
        this writer also observes) is not written again.
        """
        record = event.get("securetcp_audit")
        if record is None or event.get("log_namespace") != AUDIT_NAMESPACE:
            return
        with self._lock:
            if not self._seen.again(event):
                self._write(record)

    def close(self) -> None:
        """
        Flush, fsync and close the file, and give up its lock.
        """
        with self._lock:
            if self._fsyncTimer is not None:
                self._fsyncTimer.cancel()
                self._fsyncTimer = None
            self._closeChain()
            self.closed = True
            try:
                if self._file is not None and not self._file.closed:
                    try:
                        self._file.flush()
                        if self.fsync != "off":
                            os.fsync(self._file.fileno())
                    finally:
                        self._file.close()
            finally:
                self._unlock()

    @property
    def lastHash(self) -> str:
        return self._prev

    @property
    def lastSeq(self) -> int:
        return self._seq
