"""
Tests for L{securetcp.audit.queue.DiskQueue}: messages kept on disk in
order, read from a position, freed when acknowledged, bounded by size,
surviving a reopen and a torn last write.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.queue import MIN_BYTES, DiskQueue
from securetcp.errors import AuditExportError


def messages(n: int, size: int = 100) -> list:
    return [(b"%06d " % i) + b"x" * (size - 7) for i in range(n)]


def payloads(frames: list) -> list:
    return [frame[frame.index(b" ") + 1:] for _, frame in frames]


class QueueTests(SynchronousTestCase):
    """
    L{DiskQueue} keeps messages in order until they are acknowledged.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()

    def open(self, **kw: object) -> DiskQueue:
        queue = DiskQueue(self.directory, **kw)  # type: ignore[arg-type]
        self.addCleanup(queue.close)
        return queue

    def test_inOrder(self) -> None:
        """
        Appended messages are read back in order, octet-counted, across
        segment files.
        """
        queue = self.open(maxBytes=MIN_BYTES * 4, segmentBytes=MIN_BYTES // 4)
        wanted = messages(500)
        for m in wanted:
            self.assertTrue(queue.append(m))
        self.assertGreater(len([n for n in os.listdir(self.directory) if n.endswith(".queue")]),
                           1)
        frames = queue.read(queue.acked, 10**9)
        self.assertEqual(payloads(frames), wanted)
        self.assertEqual(frames[0][1], b"100 " + wanted[0])
        self.assertEqual(queue.pending, 500)

    def test_readInSteps(self) -> None:
        """
        Reading from each batch's last position continues with the next
        message, never repeating or skipping one, across segments.
        """
        queue = self.open(maxBytes=MIN_BYTES * 4, segmentBytes=MIN_BYTES // 4)
        wanted = messages(300)
        for m in wanted:
            queue.append(m)
        got, position = [], queue.acked
        while True:
            frames = queue.read(position, 777)
            if not frames:
                break
            got.extend(payloads(frames))
            position = frames[-1][0]
        self.assertEqual(got, wanted)

    def test_acknowledgeFrees(self) -> None:
        """
        Acknowledging a position frees the segments wholly before it, and
        the messages after it are still read.
        """
        queue = self.open(maxBytes=MIN_BYTES * 4, segmentBytes=MIN_BYTES // 4)
        wanted = messages(500)
        for m in wanted:
            queue.append(m)
        before = queue.size
        frames = queue.read(queue.acked, 10**9)
        position = frames[399][0]
        queue.acknowledge(position, 400)
        self.assertLess(queue.size, before)
        self.assertEqual(queue.pending, 100)
        self.assertEqual(payloads(queue.read(queue.acked, 10**9)), wanted[400:])

    def test_survivesReopen(self) -> None:
        """
        A queue opened again resumes at the acknowledged position with the
        messages not acknowledged, and knows its last message.
        """
        queue = DiskQueue(self.directory, maxBytes=MIN_BYTES * 4, segmentBytes=MIN_BYTES // 4)
        wanted = messages(300)
        for m in wanted:
            queue.append(m)
        queue.acknowledge(queue.read(queue.acked, 10**9)[149][0], 150)
        queue.close()
        again = self.open(maxBytes=MIN_BYTES * 4, segmentBytes=MIN_BYTES // 4)
        self.assertEqual(payloads(again.read(again.acked, 10**9)), wanted[150:])
        self.assertEqual(again.pending, 150)
        self.assertEqual(again.last(), wanted[-1])
        again.append(b"more")
        self.assertEqual(payloads(again.read(again.acked, 10**9))[-1], b"more")

    def test_tornTail(self) -> None:
        """
        A last frame cut short (a crash during a write) is cut off at open;
        the messages before it stay.
        """
        queue = DiskQueue(self.directory)
        for m in messages(3):
            queue.append(m)
        queue.close()
        [segment] = [n for n in os.listdir(self.directory) if n.endswith(".queue")]
        with open(os.path.join(self.directory, segment), "ab") as f:
            f.write(b"100 partial")
        again = self.open()
        self.assertEqual(payloads(again.read(again.acked, 10**9)), messages(3))
        self.assertEqual(again.pending, 3)

    def test_ackedBeyondDisk(self) -> None:
        """
        A delivered position beyond what the segments hold (a power loss
        kept the position but not the last writes) is taken as the end of
        what is on disk: messages appended after it are read, whole.
        """
        queue = DiskQueue(self.directory)
        for m in messages(3):
            queue.append(m)
        end = queue.read(queue.acked, 10**9)[-1][0]
        queue.close()
        for acked in (b"%d %d\n" % (end[0], end[1] + 500), b"%d 0\n" % (end[0] + 5)):
            with open(os.path.join(self.directory, "acked"), "wb") as f:
                f.write(acked)
            again = DiskQueue(self.directory)
            self.assertEqual(again.acked, end)
            again.append(b"new")
            self.assertEqual(payloads(again.read(again.acked, 10**9))[-1:], [b"new"])
            again.acknowledge(again.read(again.acked, 10**9)[-1][0], 1)
            end = again.acked
            again.close()

    def test_bound(self) -> None:
        """
        A message that would take the queue beyond its bound is not queued
        and is counted; once acknowledged messages free space, messages are
        queued again.
        """
        queue = self.open(maxBytes=MIN_BYTES, segmentBytes=MIN_BYTES // 4)
        accepted = 0
        for m in messages(1000):
            accepted += queue.append(m)
        self.assertLess(accepted, 1000)
        self.assertEqual(queue.dropped, 1000 - accepted)
        self.assertLessEqual(queue.size, MIN_BYTES)
        self.assertFalse(queue.append(b"x" * 100))
        frames = queue.read(queue.acked, 10**9)
        queue.acknowledge(frames[-1][0], len(frames))
        self.assertTrue(queue.append(b"x" * 100))

    def test_oneUser(self) -> None:
        """
        A directory in use by a queue cannot be opened by a second one; the
        error names the argument and says to give each export its own.
        """
        self.open()
        e = self.assertRaises(AuditExportError, DiskQueue, self.directory,
                              argument="--audit-syslog-queue")
        self.assertIn("--audit-syslog-queue", str(e))
        self.assertIn("its own queue directory", str(e))

    def test_unusable(self) -> None:
        """
        A queue directory that cannot be created is refused with the
        argument, the reason and the fix; so is a bound below the minimum.
        """
        blocker = self.mktemp()
        with open(blocker, "w"):
            pass
        e = self.assertRaises(AuditExportError, DiskQueue, os.path.join(blocker, "q"),
                              argument="--audit-syslog-queue")
        self.assertIn("cannot be created or written", str(e))
        self.assertIn("fix:", str(e))
        self.assertRaises(AuditExportError, DiskQueue, self.directory, maxBytes=1000)
