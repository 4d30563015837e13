# -*- test-case-name: tests.test_auditqueue -*-
"""
L{DiskQueue}: the store of store-and-forward.  Messages wait on disk, in
order, until the collector has them; the queue survives a restart of the
process and is bounded by size::

    queue = DiskQueue("/var/spool/securetcp/export", maxBytes=64 * 2**20)
    queue.append(b"<85>1 2026-...")        # False: the queue is full
    for position, frame in queue.read(queue.acked, 65536):
        transport.write(frame)              # octet-counted: b"123 <85>1 ..."
    queue.acknowledge(position, count)      # delivered up to there: freed

On disk: numbered segment files (C{000000000001.queue}, ...), each a run
of octet-counted frames (RFC 6587 3.4.1: the length in decimal, a space,
the message), which is exactly what is sent; a file C{acked} holding the
position (segment and offset) of the first message not known delivered;
and C{lock}, which one queue holds (C{flock}) while it is open.

Durability:

  - messages are written to the operating system before they are read
    (so before they are sent: every 50 ms at most while connected), and
    whenever the write buffer fills; what a crash of the process loses from
    the buffer is in the local audit file, and the next start queues it
    again from there (it queues what the file holds beyond the queue's
    last message).  A segment is C{fsync}ed when
    the next one starts (in a thread, so a slow disk never holds up the
    reactor) and when the queue closes.  After a power loss the last
    messages of the open segment may be missing from the queue; they are in
    the local audit file, whose own C{fsync} policy applies, and the next
    start queues what the file holds beyond the queue's last message;
  - C{acked} is replaced by a rename, not C{fsync}ed: after a power loss
    it may be an older position (or unreadable, which means the start of
    the queue), and that only sends messages again (delivery is at least
    once);
  - a torn last frame (a crash during a write) is cut off at open.

The bound, C{maxBytes}, counts every segment file still on disk.  A
message that would go beyond it is not queued: L{append} returns C{False},
L{dropped} counts it, and the caller (L{securetcp.auditexport}) audits the
loss.  Appending never waits for the collector or for space.  A queue may
be used from several threads (its writer may append in a timer thread).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any, BinaryIO, Callable, List, Optional, Tuple, TypeVar, cast

from securetcp.errors import AuditExportError

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = ["DiskQueue", "Position"]

#: A place in the queue: (segment number, byte offset in that segment).
Position = Tuple[int, int]

_SEGMENT = re.compile(r"(\d{12})\.queue\Z")
MIN_BYTES = 64 * 1024


_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(method: _F) -> _F:
    """
    Run C{method} holding the queue's lock.
    """
    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            return method(self, *args, **kwargs)

    return cast(_F, locked)


def _syncAndClose(segment: BinaryIO) -> None:
    try:
        os.fsync(segment.fileno())
    except OSError:
        pass
    segment.close()


def _segmentName(number: int) -> str:
    return f"{number:012d}.queue"


def _frames(data: bytes) -> List[int]:
    """
    The end offsets of the whole frames at the start of C{data}.
    """
    ends, at = [], 0
    while at < len(data):
        space = data.find(b" ", at, at + 12)
        if space == -1 or not data[at:space].isdigit():
            break
        end = space + 1 + int(data[at:space])
        if end > len(data):
            break
        ends.append(end)
        at = end
    return ends


class DiskQueue:
    """
    An append-only queue of messages in segment files (see the module).

    @ivar acked: the position of the first message not known delivered.
    @ivar pending: how many messages are queued from L{acked} on.
    @ivar dropped: messages refused because the queue was full, since open.
    """

    def __init__(self, directory: str, maxBytes: int = 64 * 2**20,
                 segmentBytes: Optional[int] = None, argument: str = "queue") -> None:
        """
        @param argument: how errors name the directory (C{--audit-syslog-queue}).
        @raise AuditExportError: if the directory cannot be created or
            written, is in use by another queue, or C{maxBytes} is too small.
        """
        if maxBytes < MIN_BYTES:
            raise AuditExportError(argument + " bound", maxBytes, "is too small",
                                   f"allow at least {MIN_BYTES} bytes")
        self.directory = os.path.abspath(directory)
        self.maxBytes = maxBytes
        self.segmentBytes = max(MIN_BYTES // 4, min(segmentBytes or maxBytes // 8, 8 * 2**20))
        self._argument = argument
        #: a writer may write (and so append) in another thread than the reactor's
        self._mutex = threading.RLock()
        self.dropped = 0
        self._lock = self._open()
        self._segments = self._existing()
        self.acked = self._readAcked()
        self._sizes = {n: os.path.getsize(self._path(n)) for n in self._segments}
        self._repairTail()
        self.acked = self._clamp(self.acked)
        self._file = open(self._path(self._segments[-1]), "ab")
        self.pending = self._count(self.acked)

    # -- opening ----------------------------------------------------------

    def _fail(self, problem: str, fix: str) -> AuditExportError:
        return AuditExportError(self._argument, self.directory, problem, fix)

    def _open(self) -> Optional[int]:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.directory, "lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as e:
            raise self._fail(f"cannot be created or written: {e.strerror}",
                             "create the directory, writable by the user securetcp runs "
                             "as, or choose another one") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._fail("is in use by another export (in this process or another)",
                                 "give every exported audit file its own queue "
                                 "directory") from None
        probe = os.path.join(self.directory, ".probe")
        try:
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError as e:
            os.close(fd)
            raise self._fail(f"cannot be written: {e.strerror}",
                             "make it writable by the user securetcp runs as") from None
        return fd

    def _path(self, number: int) -> str:
        return os.path.join(self.directory, _segmentName(number))

    def _existing(self) -> List[int]:
        numbers = sorted(int(m.group(1)) for m in map(_SEGMENT.match, os.listdir(self.directory))
                         if m)
        if not numbers:
            open(self._path(1), "ab").close()
            numbers = [1]
        return numbers

    def _readAcked(self) -> Position:
        try:
            with open(os.path.join(self.directory, "acked"), "rb") as f:
                segment, offset = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            return (self._segments[0], 0)
        if segment < self._segments[0]:
            return (self._segments[0], 0)
        return (segment, offset)

    def _clamp(self, position: Position) -> Position:
        """
        A delivered position within what is on disk: after a power loss
        C{acked} may name more than the segments kept (what it names beyond
        them is gone, and new messages are appended there).
        """
        segment, offset = position
        last = self._segments[-1]
        if segment > last:
            return (last, self._sizes[last])
        return (segment, min(offset, self._sizes.get(segment, 0)))

    def _repairTail(self) -> None:
        """
        Cut a torn last frame off the last segment.
        """
        last = self._segments[-1]
        with open(self._path(last), "rb") as f:
            data = f.read()
        ends = _frames(data)
        good = ends[-1] if ends else 0
        if good != len(data):
            os.truncate(self._path(last), good)
            self._sizes[last] = good

    def _count(self, start: Position) -> int:
        count = 0
        for number in self._segments:
            if number < start[0]:
                continue
            with open(self._path(number), "rb") as f:
                f.seek(start[1] if number == start[0] else 0)
                count += len(_frames(f.read()))
        return count

    # -- using ------------------------------------------------------------

    @property
    @_locked
    def size(self) -> int:
        """
        The bytes of every segment file on disk.
        """
        return sum(self._sizes.values())

    @_locked
    def last(self) -> Optional[bytes]:
        """
        The last message queued (delivered or not), if any is on disk.
        """
        self._flush()
        for number in reversed(self._segments):
            with open(self._path(number), "rb") as f:
                data = f.read()
            ends = _frames(data)
            if ends:
                start = ends[-2] if len(ends) > 1 else 0
                frame = data[start:ends[-1]]
                return frame[frame.index(b" ") + 1:]
        return None

    @_locked
    def append(self, message: bytes) -> bool:
        """
        Queue one message, unless that would take the queue beyond its
        bound.

        @return: whether it was queued.
        @raise OSError: if it cannot be written.
        """
        frame = b"%d %s" % (len(message), message)
        if sum(self._sizes.values()) + len(frame) > self.maxBytes:
            self.dropped += 1
            return False
        current = self._segments[-1]
        if self._sizes[current] > 0 and self._sizes[current] + len(frame) > self.segmentBytes:
            self._file.flush()
            # fsync in a thread: a long one must not hold up the reactor
            threading.Thread(target=_syncAndClose, args=(self._file,), daemon=True).start()
            current += 1
            self._segments.append(current)
            self._sizes[current] = 0
            self._file = open(self._path(current), "ab")
        self._file.write(frame)  # flushed when read, or when the buffer is full
        self._sizes[current] += len(frame)
        self.pending += 1
        return True

    @_locked
    def read(self, start: Position, maxBytes: int) -> List[Tuple[Position, bytes]]:
        """
        The frames from C{start} on, about C{maxBytes} of them (at least
        one, if there is one), each with the position just after it.
        """
        self._flush()
        found: List[Tuple[Position, bytes]] = []
        total = 0
        segment, offset = start
        for number in self._segments:
            if number < segment:
                continue
            if number > segment:
                offset = 0
            with open(self._path(number), "rb") as f:
                f.seek(offset)
                data = f.read(max(maxBytes - total, 0) + 65536)
                ends = _frames(data)
                if not ends:
                    data += f.read()  # one frame longer than asked for
                    ends = _frames(data)
            at = 0
            for end in ends:
                found.append(((number, offset + end), data[at:end]))
                total += end - at
                at = end
                if total >= maxBytes:
                    return found
            if offset + at < self._sizes.get(number, 0):
                return found  # the rest of this segment first
        return found

    def _flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    @_locked
    def acknowledge(self, position: Position, count: int) -> None:
        """
        The C{count} messages before C{position} are delivered: record it,
        and delete the segments wholly before it.
        """
        path = os.path.join(self.directory, "acked")
        with open(path + ".new", "wb") as f:
            f.write(b"%d %d\n" % position)
        os.replace(path + ".new", path)
        self.acked = position
        self.pending = max(self.pending - count, 0)
        while len(self._segments) > 1 and self._segments[0] < position[0]:
            old = self._segments.pop(0)
            os.unlink(self._path(old))
            del self._sizes[old]

    @_locked
    def close(self) -> None:
        """
        Flush, C{fsync} and close the open segment, and give up the lock.
        """
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
