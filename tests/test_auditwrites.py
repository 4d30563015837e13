# -*- test-case-name: tests.test_auditwrites -*-
"""
Tests for how L{securetcp.audit.writer.AuditLogObserver} puts records in
its file (one unbuffered write per record, the rest of a line a file took
only part of), and for what L{securetcp.audit.emitter.AuditEmitter} keeps
between records (the log event it makes, the global writers it consults).
"""

from __future__ import annotations

import io
import os
from typing import Any, Dict, List

from twisted.logger import Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import globalAuditFiles, readChain
from securetcp.audit.records import AUDIT_NAMESPACE, backendFailed
from securetcp.audit.writer import AuditLogObserver, openUnbuffered

from ._files import FileWrapper


class _Partial(FileWrapper):
    """
    A file that takes at most C{most} bytes per write (and nothing once
    C{most} is 0), counting the writes.
    """

    def __init__(self, real: Any, most: int) -> None:
        super().__init__(real)
        self.most = most
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        return super().write(bytes(data[:self.most]))


def _path(test: SynchronousTestCase) -> str:
    directory = os.path.abspath(test.mktemp())
    os.makedirs(directory)
    return os.path.join(directory, "audit.jsonl")


def _record(time: float) -> Dict[str, Any]:
    return backendFailed("tcp:127.0.0.1:7", "10.0.0.1:5000", "connection refused", time)


def _verifies(path: str) -> bool:
    return main(["audit", "verify", path], out=io.StringIO()) == 0


class WriteTests(SynchronousTestCase):
    """
    Each record is one write of its whole line to an unbuffered file.
    """

    def test_unbuffered(self) -> None:
        """
        A writer opens its file without a write buffer, and writes each
        record's line with one write call.
        """
        files: List[_Partial] = []

        def opener(path: str, mode: str) -> Any:
            real = openUnbuffered(path, mode)
            self.assertIsInstance(real, io.FileIO)
            files.append(_Partial(real, 1 << 20))
            return files[-1]

        writer = AuditLogObserver(_path(self), fsync="off", openFile=opener)
        self.addCleanup(writer.close)
        for n in range(3):
            self.assertTrue(writer.write(_record(float(n))))
        self.assertEqual(files[0].writes, 4)  # chain.started and three records
        self.assertEqual(len(readChain(writer.path)), 4)

    def test_partialWrite(self) -> None:
        """
        When the file takes only part of a line, the writer writes the rest
        (as a buffered file's flush would): the line is whole, the chain
        verifies.
        """
        writer = AuditLogObserver(_path(self), fsync="off",
                                  openFile=lambda p, m: _Partial(openUnbuffered(p, m), 100))
        self.addCleanup(writer.close)
        self.assertTrue(writer.write(_record(1.0)))
        writer.close()
        self.assertEqual([r["event"] for r in readChain(writer.path)],
                         ["chain.started", "proxy.backend_failed", "chain.closed"])
        self.assertTrue(_verifies(writer.path))

    def test_nothingTaken(self) -> None:
        """
        When the file takes none of a line, the write fails: the record is
        not written, the file still ends on a whole record, and the writer
        refuses connections until a record can be written again.
        """
        files: List[_Partial] = []

        def opener(path: str, mode: str) -> Any:
            files.append(_Partial(openUnbuffered(path, mode), 1 << 20))
            return files[-1]

        writer = AuditLogObserver(_path(self), fsync="off", openFile=opener)
        self.addCleanup(writer.close)
        size = os.path.getsize(writer.path)
        files[-1].most = 10  # part of the line, then nothing
        original = files[-1].write

        def once(data: bytes) -> int:
            files[-1].most = 0 if files[-1].writes else 10
            return original(data)

        files[-1].write = once  # type: ignore[method-assign]
        self.assertFalse(writer.write(_record(1.0)))
        self.assertEqual(os.path.getsize(writer.path), size)
        self.assertTrue(writer.failing)
        self.assertTrue(writer.write(_record(2.0)))
        self.assertEqual([r["event"] for r in readChain(writer.path)],
                         ["chain.started", "chain.gap", "proxy.backend_failed"])
        self.assertEqual(readChain(writer.path)[1]["lost"], 1)


class EmitterTests(SynchronousTestCase):
    """
    What an emitter makes per record, and keeps between records.
    """

    def test_eventAsLoggerMakes(self) -> None:
        """
        The log event an emitter makes for a record has what L{Logger.emit}
        would give it: the same keys and values (but the time).
        """
        made: List[Dict[str, Any]] = []
        logger = Logger(namespace=AUDIT_NAMESPACE, observer=made.append)
        record = {"event": "handshake.rejected", "peer": "10.0.0.1:5000",
                  "reason": "unknown_ca"}
        AuditEmitter(logger).emit(record)
        logger.emit(LogLevel.warn, made[0]["log_format"], securetcp_audit=record,
                    securetcp_event="handshake.rejected")
        ours, theirs = made
        self.assertEqual(list(ours), list(theirs))
        self.assertEqual({k: v for k, v in ours.items() if k != "log_time"},
                         {k: v for k, v in theirs.items() if k != "log_time"})

    def test_globalWritersFollowed(self) -> None:
        """
        An emitter consults the writers of L{globalAuditFiles} open when it
        emits: one opened after the emitter was made is asked, one closed
        or released is not.
        """
        emitter = AuditEmitter()
        before = emitter.consulted()
        writer = globalAuditFiles.open(_path(self), fsync="off")
        self.addCleanup(globalAuditFiles.release, writer)
        self.assertEqual(emitter.consulted(), before + [writer])
        writer.close()
        self.assertEqual(emitter.consulted(), before)
        again = globalAuditFiles.open(writer.path, fsync="off")
        self.addCleanup(globalAuditFiles.release, again)
        self.assertIn(again, emitter.consulted())
        self.assertTrue(emitter.accepting())
