# -*- test-case-name: tests.test_auditexport -*-
"""
L{ExportFeed}: what the audit export queues.  It follows an audit file's
writer (L{securetcp.audit.writer.AuditLogObserver.follow}), turns every
sealed line into a syslog message (L{securetcp.audit.syslog}) in the
export's format, and appends it to the disk queue
(L{securetcp.audit.queue.DiskQueue}); the sender
(L{securetcp.auditexport}) takes it from there::

    feed = ExportFeed(queue, jsonFormat(identity), emitter, clock, "tls://siem:6514")
    feed.start(writer, onQueued=sender.wake)   # catches up, then follows the file
    ...
    feed.stop()

The local audit file stays the source of truth: every message is made from
a line of it, after the line is written.  On start the feed catches up
from the file: every record after the last one queued (found in the queue
itself), in the active file and, when it was rotated meanwhile, in the
files before it.  A queue that is new starts with the active file, or,
when that is longer than half the queue's bound, with the records written
from then on.

When the queue is full (its bound), or cannot be written (a full disk),
records are not queued: the feed logs it at once, counts it, and once a record is queued again it emits an
C{export.dropped} record (which the local file keeps and the collector
receives) naming the first and last C{seq} that were not queued.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Iterator, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from securetcp._interfaces import IAuditSink
from securetcp.audit.queue import DiskQueue
from securetcp.audit.records import exportDropped
from securetcp.audit.syslog import SyslogIdentity, syslogMessage

__all__ = ["ExportFeed", "MessageFormat", "atnaFormat", "jsonFormat"]

_log = Logger(namespace="securetcp.auditexport")

#: Makes the message of one sealed line (bytes, without its newline) and
#: its record (at least C{event}, C{time}, C{seq} and C{hash}; parse the
#: line for more); C{None}: the record is not sent in this format.
MessageFormat = Callable[[bytes, Dict[str, Any]], Optional[bytes]]

_SEQ = re.compile(rb' seq="(\d+)"')
#: How many rotated files a catch-up walks back through at most.
_MOST_FILES = 32


def jsonFormat(identity: SyslogIdentity) -> MessageFormat:
    """
    The C{json} format: the sealed line itself is the MSG.
    """
    def message(line: bytes, record: Dict[str, Any]) -> Optional[bytes]:
        return syslogMessage(line, identity, record=record)

    return message


def atnaFormat(identity: SyslogIdentity, sourceId: str,
               siteId: Optional[str] = None) -> MessageFormat:
    """
    The C{atna} format: the record's DICOM PS3.15 A.5 audit message
    (L{securetcp.audit.atna.atnaMessage}, UTF-8, one line, no BOM) is the
    MSG; records ATNA has no message for are not sent.
    """
    from securetcp.audit.atna import atnaMessage

    def message(line: bytes, record: Dict[str, Any]) -> Optional[bytes]:
        if "prev" not in record:
            record = json.loads(line)  # the whole sealed record, as the file has it
        xml = atnaMessage(record, sourceId=sourceId, siteId=siteId)
        if xml is None:
            return None
        return syslogMessage(line, identity, record=record, msg=xml.encode("utf-8"))

    return message


def queuedSeq(message: Optional[bytes]) -> Optional[int]:
    """
    The C{seq} of a queued message (from its structured data).
    """
    if message is None:
        return None
    found = _SEQ.search(message)
    return int(found.group(1)) if found else None


class ExportFeed:
    """
    Queues every sealed line of one audit file for the collector.

    @ivar lastSeq: the C{seq} of the last record given to the feed.
    @ivar dropping: records not queued since the last one queued.
    """

    def __init__(self, queue: DiskQueue, format: MessageFormat, emitter: IAuditSink,
                 clock: IReactorTime, collector: str) -> None:
        """
        @param collector: the collector, as C{export.dropped} names it.
        """
        self.queue = queue
        self._format = format
        self._emitter = emitter
        self._clock = clock
        self.collector = collector
        self._onQueued: Callable[[], None] = lambda: None
        self._later: Callable[..., Any] = lambda call, *args: clock.callLater(0, call, *args)
        self.lastSeq: Optional[int] = queuedSeq(queue.last())
        self.dropping = 0
        self._firstDropped = self._lastDropped = 0
        self._writer: Any = None

    def start(self, writer: Any, onQueued: Callable[[], None] = lambda: None,
              later: Optional[Callable[..., Any]] = None) -> None:
        """
        Catch up from C{writer}'s file, then follow it, calling C{onQueued}
        after each message queued (in the thread that wrote the line).

        @param later: C{later(call, *args)} has the reactor call C{call}
            soon, from whatever thread it is called (by default
            C{clock.callLater(0, ...)}: the writer writes in the reactor's
            thread only).
        """
        self._writer, self._onQueued = writer, onQueued
        if later is not None:
            self._later = later
        writer.follow(self.lineWritten, lambda head: self.catchUp(writer.path, head))

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.unfollow(self.lineWritten)
            self._writer = None

    def catchUp(self, path: str, head: int) -> None:
        """
        Queue the records of C{path} (and of the files it was rotated from,
        as far back as needed) after L{lastSeq}, up to C{head}.
        """
        if self.lastSeq is None and _size(path) > self.queue.maxBytes // 2:
            # a new queue on a long file: the history would crowd out the
            # records to come; start at the head (the collector's chain of
            # this node then starts there)
            _log.info("securetcp audit export: a new queue starts after record {head} of "
                      "{path} (the file is too long to send whole)", head=head, path=path)
            self.lastSeq = head
            return
        files = [path]
        while self.lastSeq is not None and len(files) < _MOST_FILES:
            previous = _previousFile(files[0], self.lastSeq)
            if previous is None:
                break
            files.insert(0, previous)
        for name in files:
            for line in _lines(name):
                if self.lastSeq is not None and _lineSeq(line) <= self.lastSeq:
                    continue
                if _lineSeq(line) > head:
                    return
                self.lineWritten(line)

    def lineWritten(self, line: bytes, record: Optional[Dict[str, Any]] = None) -> None:
        """
        Queue the message of one sealed line (as the writer wrote it).

        @param record: what the writer tells of the line's record (at least
            its C{event}, C{time}, C{seq} and C{hash}); by default, the line
            is parsed.
        """
        line = line.rstrip(b"\n")
        if record is None:
            record = json.loads(line)
        seq = int(record["seq"])
        self.lastSeq = seq
        message = self._format(line, record)
        if message is None:
            return
        try:
            queued = self.queue.append(message)
            why = f"is full ({self.queue.size} bytes)"
        except OSError as e:
            queued, why = False, f"cannot be written ({e.strerror})"
        if not queued:
            if not self.dropping:
                self._firstDropped = seq
                _log.critical("securetcp audit export: the queue {directory} {why}; records "
                              "are NOT queued for {collector} until it has room",
                              directory=self.queue.directory, why=why,
                              collector=self.collector)
            self.dropping += 1
            self._lastDropped = seq
            return
        if self.dropping:
            dropped, first, last = self.dropping, self._firstDropped, self._lastDropped
            self.dropping = 0
            # not now: this runs inside the writer, which is writing a line
            self._later(self._emitter.emit, exportDropped(self.collector, dropped, first, last,
                                                          time=self._clock.seconds()))
        self._onQueued()


def _lineSeq(line: bytes) -> int:
    return int(json.loads(line)["seq"])


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _lines(path: str) -> Iterator[bytes]:
    """
    The whole lines of an audit file, one at a time (a torn last one is
    left out).
    """
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n") and line.strip():
                    yield line.rstrip(b"\n")
    except OSError:
        return


def _previousFile(path: str, lastSeq: int) -> Optional[str]:
    """
    The file C{path} was rotated from, if C{path} starts after C{lastSeq}
    + 1 (so records between are there).
    """
    line = next(iter(_lines(path)), None)
    if line is None:
        return None
    first = json.loads(line)
    if int(first["seq"]) <= lastSeq + 1 or first.get("event") != "chain.rotated":
        return None
    previous = os.path.join(os.path.dirname(path), str(first.get("previousFile", "")))
    return previous if os.path.isfile(previous) else None
