# -*- test-case-name: tests.test_auditlog -*-
"""
L{AuditLogObserver}: writes the C{securetcp.audit} events as a
tamper-evident chain of JSON lines.

Each line is one record with a schema version, a sequence number, the hash
of the record before it (C{prev}) and its own hash (see
L{securetcp.audit.chain})::

    observer = auditLogObserver("/var/log/securetcp/audit.jsonl")
    globalLogPublisher.addObserver(observer)

Every record is flushed to the operating system before the next event is
processed.  On start the chain continues from the last record of an existing
file (a torn last line is moved aside and a C{chain.resumed} record says
so); rotation by size or day keeps the chain unbroken across files.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from twisted.logger import ILogObserver, Logger
from zope.interface import implementer

from securetcp.audit.chain import ZERO_HASH, recordHash, resumeChain, seal
from securetcp.audit.records import chainGap, chainRotated, chainStarted
from securetcp.errors import AuditLogError

__all__ = ["ZERO_HASH", "AuditLogObserver", "auditLogObserver", "readChain", "recordHash"]

_log = Logger(namespace="securetcp.auditlog")

FSYNC_MODES = ("always", "interval", "off")
FAILURE_MODES = ("refuse", "continue")


@implementer(ILogObserver)
class AuditLogObserver:
    """
    An L{ILogObserver} that keeps the C{securetcp.audit} events and writes
    them as a hash chain of JSON lines.  Thread-safe.  Build it with
    L{auditLogObserver}.

    @ivar path: the active file.
    @ivar failing: whether the last write failed.
    @ivar lost: records that could not be written since the last success.
    """

    def __init__(self, path: str, fsync: str = "interval", fsyncInterval: float = 1.0,
                 maxBytes: Optional[int] = None, daily: bool = False,
                 onFailure: str = "refuse", key: Optional[bytes] = None,
                 now: Callable[[], float] = time.time) -> None:
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
        self._now = now
        self._lock = threading.RLock()
        self._file: Any = None
        self._size = 0
        self._seq = 0
        self._prev = ZERO_HASH
        self._day: Optional[str] = None
        self._lastFsync = now()
        self._fsyncTimer: Optional[threading.Timer] = None
        self.failing = False
        self.lost = 0
        self._lostSince: Optional[float] = None
        self.written = 0
        self._open()

    # -- opening, resuming, rotating -------------------------------------

    def _open(self) -> None:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise AuditLogError(self.path, "the directory does not exist",
                                f"create {directory} or choose another auditLog path")
        if os.path.isdir(self.path):
            raise AuditLogError(self.path, "is a directory", "give a file name")
        resumed: Optional[Dict[str, Any]] = None
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            self._seq, self._prev, resumed = resumeChain(self.path, self._key, self._now())
        try:
            self._file = open(self.path, "ab")
        except OSError as e:
            raise AuditLogError(self.path, f"cannot open for appending: {e.strerror}",
                                "fix the permissions or choose another path") from None
        self._size = self._file.tell()
        self._day = self._today()
        if resumed is None:
            self._append(chainStarted(self._now(), "hmac-sha256" if self._key else "sha256"))
        else:
            self._append(resumed)

    def _today(self) -> str:
        return datetime.datetime.fromtimestamp(self._now(), datetime.UTC).strftime(
            "%Y-%m-%d")

    def _rotateIfDue(self, incoming: int) -> bool:
        due = False
        if self.maxBytes is not None and self._size + incoming > self.maxBytes and self._size > 0:
            due = True
        if self.daily and self._today() != self._day:
            due = True
        if not due:
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
        self._file = open(self.path, "ab")
        self._size = 0
        self._day = self._today()
        self._append(chainRotated(self._now(), os.path.basename(target)), rotate=False)
        return True

    # -- writing -------------------------------------------------------

    def _append(self, record: Dict[str, Any], rotate: bool = True) -> None:
        line, digest = seal(record, self._seq + 1, self._prev, self._key)
        if rotate and self._rotateIfDue(len(line)):
            # a chain.rotated record came first: seal again after it
            line, digest = seal(record, self._seq + 1, self._prev, self._key)
        goodSize = self._size
        try:
            self._file.write(line)
            self._file.flush()
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
        self._sync()

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
        Append one audit record to the chain.

        @return: whether it was written.  A failure is never silent: it is
            logged, counted in L{lost}, reported to the gate (which refuses
            new connections when C{onFailure="refuse"}), and recorded in a
            C{chain.gap} record once writing works again.
        """
        from securetcp.audit.records import auditHealth

        with self._lock:
            try:
                if self._file is None or self._file.closed:
                    self._file = open(self.path, "ab")
                    self._size = self._file.tell()
                if self.failing:
                    self._append(chainGap(self._now(), self.lost, self._lostSince))
                self._append(record)
            except (OSError, ValueError) as e:
                self.lost += 1
                if not self.failing:
                    self.failing = True
                    self._lostSince = self._now()
                    if self.onFailure == "refuse":
                        auditHealth.fail(self)
                    _log.critical(
                        "securetcp audit log {path} cannot be written ({error}); "
                        "{action}", path=self.path, error=str(e),
                        action="new connections are REFUSED until it can"
                        if self.onFailure == "refuse"
                        else "connections CONTINUE and their audit records are LOST")
                return False
            if self.failing:
                self.failing = False
                self.lost = 0
                self._lostSince = None
                auditHealth.recover(self)
                _log.info("securetcp audit log {path} is writable again", path=self.path)
            return True

    def probe(self) -> bool:
        """
        While failing, try to write the C{chain.gap} record now.

        @return: whether the file can be written again.
        """
        from securetcp.audit.records import auditHealth

        with self._lock:
            if not self.failing:
                return True
            try:
                if self._file is None or self._file.closed:
                    self._file = open(self.path, "ab")
                    self._size = self._file.tell()
                self._append(chainGap(self._now(), self.lost, self._lostSince))
            except (OSError, ValueError):
                return False
            self.failing = False
            self.lost = 0
            self._lostSince = None
            auditHealth.recover(self)
            _log.info("securetcp audit log {path} is writable again", path=self.path)
            return True

    def __call__(self, event: Dict[str, Any]) -> None:
        record = event.get("securetcp_audit")
        if record is None or event.get("log_namespace") != "securetcp.audit":
            return
        self.write(record)

    def close(self) -> None:
        """
        Flush, fsync and close the file.
        """
        with self._lock:
            if self._fsyncTimer is not None:
                self._fsyncTimer.cancel()
                self._fsyncTimer = None
            if self._file is not None and not self._file.closed:
                try:
                    self._file.flush()
                    if self.fsync != "off":
                        os.fsync(self._file.fileno())
                finally:
                    self._file.close()

    @property
    def lastHash(self) -> str:
        return self._prev

    @property
    def lastSeq(self) -> int:
        return self._seq


_observers: Dict[str, AuditLogObserver] = {}
_observersLock = threading.Lock()


def auditLogObserver(path: str, **options: Any) -> AuditLogObserver:
    """
    The L{AuditLogObserver} for C{path}, created on first use.  Endpoints
    that name the same file share one observer, so they share one chain.

    @param options: C{fsync} ("always", "interval" (default), "off"),
        C{fsyncInterval} (seconds, default 1.0), C{maxBytes}, C{daily},
        C{onFailure} ("refuse" (default) or "continue"), C{key} (bytes, for
        an HMAC-SHA256 chain).
    @raise AuditLogError: when the file cannot be used.
    """
    real = os.path.realpath(path)
    with _observersLock:
        observer = _observers.get(real)
        if observer is None or (observer._file is not None and observer._file.closed):
            observer = AuditLogObserver(path, **options)
            _observers[real] = observer
        return observer


def readChain(path: str) -> List[Dict[str, Any]]:
    """
    Every record of one audit file (for tests and tools that trust it).
    """
    with open(path, "rb") as f:
        return [json.loads(line) for line in f if line.strip()]
