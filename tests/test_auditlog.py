# -*- test-case-name: tests.test_auditlog -*-
"""
Tests for L{securetcp.audit.file.AuditLogObserver} (the hash-chained JSON
lines audit file), L{securetcp.audit.verify} (verification and reports) and
the C{python -m securetcp audit} command line, ending with an unmodified
C{twistd web} on an C{mtls:} endpoint with C{auditLog=}, driven by C{curl},
C{openssl s_client} and raw sockets.

Everything but the C{twistd} tests is synchronous and needs no reactor.  The
C{twistd} tests run the server as a subprocess and its clients with blocking
C{subprocess.run}/sockets, each with a timeout; nothing runs in the trial
reactor there.
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet import ssl
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    LogPublisher,
    formatEvent,
    globalLogPublisher,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

import securetcp
from securetcp._cli import main
from securetcp.audit import file as _auditfile
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import ZERO_HASH, AuditLogObserver, readChain, recordHash
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.audit.report import buildReport
from securetcp.audit.verify import iterRecords, verifyFiles
from securetcp.config import buildPolicy
from securetcp.endpoints import SecureServerEndpoint
from securetcp.errors import AuditLogError

from ._files import FileWrapper
from ._net import escape as _escape
from ._net import exchangeLine
from ._net import freePort as _freePort
from ._pki import TestPKI
from ._recording import fileLines as _lines
from ._recording import writeFileLines as _writeLines

#: A line of patient data, as an HL7 v2 PID segment carries it.  It must
#: never reach the audit log, nor the server's own log.
HL7 = b"PID|1||12345^^^HOSP^MR||DOE^JOHN||19700101|M"

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
_TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
TWISTD = _TWISTD if os.path.exists(_TWISTD) else shutil.which("twistd")
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(securetcp.__file__)))

#: Every wait in this module is bounded by one of these (seconds).
START_TIMEOUT = 15.0
CLIENT_TIMEOUT = 10.0
SETTLE_TIMEOUT = 8.0


# -- helpers ---------------------------------------------------------------


def _accepted(n: int) -> Dict[str, Any]:
    """
    An audit record shaped like the gate's C{connection.accepted}.
    """
    return {
        "event": "connection.accepted", "time": "2026-11-01T10:00:00.000000Z",
        "connection": f"{n:016x}", "role": "server", "local": "127.0.0.1:6661",
        "peer": f"127.0.0.1:{40000 + n}", "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384", "peerIdentity": {"subject": "CN=PUMP-0042"},
        "compliance": {"compliant": True, "reasons": []},
    }


def _closed(n: int) -> Dict[str, Any]:
    """
    The C{connection.closed} record of the connection of L{_accepted}C{(n)}.
    """
    return dict(_accepted(n), event="connection.closed", time="2026-11-01T10:00:05.000000Z",
                closeReason=None, duration=5.0, bytesIn=10, bytesOut=20)


def _observer(test: SynchronousTestCase, path: Optional[str] = None,
              **options: Any) -> AuditLogObserver:
    """
    An L{AuditLogObserver} on a fresh file (or C{path}), closed at cleanup.
    """
    if path is None:
        directory = os.path.abspath(test.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "audit.jsonl")
    options.setdefault("fsync", "off")
    observer = AuditLogObserver(path, **options)
    test.addCleanup(observer.close)
    return observer


def _cli(*argv: str) -> Tuple[int, str]:
    """
    Run C{python -m securetcp} in-process; return its status and output.
    """
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def _captureLog(test: SynchronousTestCase) -> List[Dict[str, Any]]:
    """
    Every event of the global log publisher while C{test} runs.
    """
    events: List[Dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class _Disk:
    """
    What an observer opens its files with (its C{openFile}): real files,
    whose writes fail as on a full disk while L{full} is true.
    """

    full = False
    #: writes longer than this fail too (a disk with only this much room)
    room: Optional[int] = None

    def __call__(self, path: str, mode: str) -> _DiskFile:
        return _DiskFile(self, open(path, mode))  # noqa: SIM115


class _DiskFile(FileWrapper):
    """
    A file on a L{_Disk}.
    """

    def __init__(self, disk: _Disk, real: Any) -> None:
        super().__init__(real)
        self.disk = disk

    def write(self, data: bytes) -> int:
        if self.disk.full or (self.disk.room is not None and len(data) > self.disk.room):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def _breakDisk(test: SynchronousTestCase, disk: _Disk) -> Callable[[], None]:
    """
    Make every write to C{disk} fail with ENOSPC until the returned function
    is called.
    """
    disk.full = True

    def repair() -> None:
        disk.full = False

    test.addCleanup(repair)
    return repair


# -- 1. the chain ----------------------------------------------------------


class ChainFormatTests(SynchronousTestCase):
    """
    The format of the chain, and L{AuditLogObserver} as a log observer.
    """

    def test_chainFields(self) -> None:
        """
        Every record carries C{schema}, C{seq}, C{prev} and C{hash}; the first
        is C{chain.started} with a C{prev} of 64 zeros; each C{prev} is the
        hash of the record before it; each hash is the SHA-256 of the record
        without it; closing ends it with C{chain.closed}; and L{verifyFiles}
        accepts the file.
        """
        observer = _observer(self)
        for n in range(5):
            self.assertTrue(observer.write(_accepted(n)))
        observer.close()
        records = readChain(observer.path)
        self.assertEqual(len(records), 7)
        self.assertEqual(records[-1]["event"], "chain.closed")
        self.assertEqual(records[0]["event"], "chain.started")
        self.assertEqual(records[0]["prev"], ZERO_HASH)
        self.assertEqual(records[0]["algorithm"], "sha256")
        for index, record in enumerate(records):
            for key in ("schema", "seq", "prev", "hash"):
                self.assertIn(key, record)
            self.assertEqual(record["schema"], 1)
            self.assertEqual(record["seq"], index + 1)
            self.assertEqual(record["hash"], recordHash(record))
            self.assertRegex(record["hash"], "^[0-9a-f]{64}$")
            if index:
                self.assertEqual(record["prev"], records[index - 1]["hash"])
        self.assertEqual(records[-2]["peer"], "127.0.0.1:40004")
        self.assertEqual(observer.lastHash, records[-1]["hash"])
        self.assertEqual(observer.lastSeq, 7)
        result = verifyFiles([observer.path])
        self.assertTrue(result.ok, result.problems)
        self.assertEqual((result.records, result.firstSeq, result.lastSeq),
                         (7, 1, 7))
        self.assertEqual(result.lastHash, records[-1]["hash"])

    def test_hmacKey(self) -> None:
        """
        With a C{key}, the hashes are HMAC-SHA256: they differ from the plain
        SHA-256 of the same record, verification without the key (or with
        another key) fails and says an HMAC key may be why, and verification
        with the key, in Python or with C{audit verify --key}, passes.
        """
        key = b"audit chain secret"
        observer = _observer(self, key=key)
        observer.write(_accepted(1))
        observer.close()
        records = readChain(observer.path)
        self.assertEqual(records[0]["algorithm"], "hmac-sha256")
        for record in records:
            self.assertEqual(record["hash"], recordHash(record, key))
            self.assertNotEqual(record["hash"], recordHash(record))
        unkeyed = verifyFiles([observer.path])
        self.assertFalse(unkeyed.ok)
        self.assertIn("HMAC", unkeyed.problems[0].message)
        self.assertFalse(verifyFiles([observer.path], key=b"another key").ok)
        self.assertTrue(verifyFiles([observer.path], key=key).ok)
        self.assertEqual(_cli("audit", "verify", observer.path)[0], 1)
        status, out = _cli("audit", "verify", "--key", "pass:audit chain secret",
                           observer.path)
        # intact; incomplete only because connection 1 was never closed
        self.assertEqual(status, 3, out)
        self.assertIn("INCOMPLETE: the chain holds", out)
        self.assertIn("1 accepted connection(s) without a close record", out)

    def test_ignoresOtherEvents(self) -> None:
        """
        The observer writes only events of the C{securetcp.audit} namespace
        that carry a record; other log events leave the file untouched.
        """
        observer = _observer(self)
        before = _lines(observer.path)
        observer({"log_namespace": "twisted.web", "log_format": "GET /",
                  "log_level": LogLevel.info})
        observer({"log_namespace": "other", "securetcp_audit": _accepted(1)})
        observer({"log_namespace": AUDIT_NAMESPACE, "log_format": "no record"})
        Logger(namespace="elsewhere", observer=observer).info("hello {x}", x=HL7)
        self.assertEqual(_lines(observer.path), before)
        self.assertEqual(observer.lastSeq, 1)
        observer({"log_namespace": AUDIT_NAMESPACE, "securetcp_audit": _accepted(2)})
        self.assertEqual(len(_lines(observer.path)), 2)

    def test_isLogObserver(self) -> None:
        """
        L{AuditLogObserver} provides L{ILogObserver}, and composes inside a
        L{LogPublisher} with another observer: audit events reach both, other
        events only the other one.
        """
        observer = _observer(self)
        self.assertTrue(verifyObject(ILogObserver, observer))
        other: List[Dict[str, Any]] = []
        publisher = LogPublisher(observer, other.append)
        AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=publisher)).emit(_accepted(7))
        Logger(namespace="app", observer=publisher).info("unrelated")
        self.assertEqual(len(other), 2)
        self.assertEqual(other[0]["securetcp_audit"]["peer"], "127.0.0.1:40007")
        records = readChain(observer.path)
        self.assertEqual([r["event"] for r in records],
                         ["chain.started", "connection.accepted"])
        self.assertEqual(records[1]["peer"], "127.0.0.1:40007")

    def test_threadSafe(self) -> None:
        """
        N threads writing M records each through the observer produce exactly
        N*M + 1 records (with C{chain.started}), numbered without gaps, and
        the chain verifies.
        """
        threads, each = 8, 150
        observer = _observer(self)
        start = threading.Barrier(threads)

        def work(t: int) -> None:
            start.wait(timeout=10)
            for n in range(each):
                observer({"log_namespace": AUDIT_NAMESPACE,
                          "securetcp_audit": dict(_accepted(n), thread=t)})

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
            self.assertFalse(worker.is_alive())
        observer.close()
        records = readChain(observer.path)
        self.assertEqual(records.pop()["event"], "chain.closed")
        self.assertEqual(len(records), threads * each + 1)
        self.assertEqual([r["seq"] for r in records], list(range(1, threads * each + 2)))
        self.assertEqual(Counter(r.get("thread") for r in records[1:]),
                         {t: each for t in range(threads)})
        self.assertTrue(verifyFiles([observer.path]).ok)


# -- 2. tampering ----------------------------------------------------------


class TamperingTests(SynchronousTestCase):
    """
    Every kind of tampering with a file is found by L{verifyFiles} and by
    C{python -m securetcp audit verify}, which name the first bad record.
    """

    def setUp(self) -> None:
        self.observer = _observer(self)
        for n in range(9):
            self.observer.write(_accepted(n))
        for n in range(9):
            self.observer.write(_closed(n))
        self.observer.close()
        self.path = self.observer.path
        self.lines = _lines(self.path)
        # chain.started, 9 accepted, 9 closed, chain.closed
        self.assertEqual(len(self.lines), 20)

    def assertBroken(self, paths: Sequence[str], record: int) -> None:
        """
        L{verifyFiles} and the CLI both reject C{paths}, naming C{record}.
        """
        result = verifyFiles(paths)
        self.assertFalse(result.ok)
        problem = str(result.problems[0])
        self.assertRegex(problem, rf"\brecord {record}\b")
        status, out = _cli("audit", "verify", *paths)
        self.assertEqual(status, 1, out)
        self.assertIn("BROKEN", out)
        self.assertRegex(out, rf"\brecord {record}\b")

    def test_clean(self) -> None:
        """
        An untouched file passes: exit status 0 and a summary of the chain,
        which is complete (every connection closed).
        """
        status, out = _cli("audit", "verify", self.path)
        self.assertEqual(status, 0, out)
        self.assertIn("OK: 20 records in 1 file(s), records 1..20", out)
        self.assertIn("INTACT: complete", out)

    def test_editOneByte(self) -> None:
        """
        Changing one byte of a middle record breaks its hash.
        """
        line = self.lines[4]
        at = line.index(b'"peer":"127.0.0.1:4000') + len(b'"peer":"127.0.0.1:4000')
        self.lines[4] = line[:at] + b"9" + line[at + 1:]
        _writeLines(self.path, self.lines)
        self.assertBroken([self.path], 5)
        self.assertIn("edited", str(verifyFiles([self.path]).problems[0]))

    def test_deleteLine(self) -> None:
        """
        Deleting a record leaves a gap in the sequence.
        """
        del self.lines[5]
        _writeLines(self.path, self.lines)
        self.assertBroken([self.path], 6)
        self.assertIn("missing", str(verifyFiles([self.path]).problems[0]))

    def test_swapLines(self) -> None:
        """
        Swapping two records breaks the sequence where the first of them was.
        """
        self.lines[3], self.lines[6] = self.lines[6], self.lines[3]
        _writeLines(self.path, self.lines)
        self.assertBroken([self.path], 4)

    def test_truncateMidLine(self) -> None:
        """
        Cutting the file in the middle of its last record is reported as a
        truncation of that record, after the records before it verified.
        """
        cut = sum(map(len, self.lines[:9])) + len(self.lines[9]) // 2
        with open(self.path, "r+b") as f:
            f.truncate(cut)
        self.assertBroken([self.path], 10)
        result = verifyFiles([self.path])
        self.assertIn("truncated", str(result.problems[0]))
        self.assertEqual(result.records, 9)
        status, out = _cli("audit", "verify", self.path)
        self.assertIn("(9 records verified before it)", out)

    def test_truncateMidLineEarlier(self) -> None:
        """
        Cutting the file in the middle of a middle record (losing everything
        after it) is reported at that record.
        """
        cut = sum(map(len, self.lines[:4])) + 17
        with open(self.path, "r+b") as f:
            f.truncate(cut)
        self.assertBroken([self.path], 5)

    def test_removeRotatedFile(self) -> None:
        """
        Removing a middle file of a rotation set leaves a gap at a file
        boundary; with every file present the set verifies.
        """
        observer = _observer(self, maxBytes=4096)
        for n in range(40):
            observer.write(_accepted(n))
        observer.close()
        files = sorted(glob.glob(observer.path + "*"),
                       key=lambda p: readChain(p)[0]["seq"])
        self.assertGreaterEqual(len(files), 3, files)
        self.assertTrue(verifyFiles(files).ok)
        # intact; incomplete because the connections were never closed
        self.assertEqual(_cli("audit", "verify", *files)[0], 3)
        missing = files[1]
        firstMissing = readChain(missing)[0]["seq"]
        os.remove(missing)
        rest = [f for f in files if f != missing]
        self.assertBroken(rest, firstMissing)
        self.assertIn("file boundary", str(verifyFiles(rest).problems[0]))


# -- 3. resuming -----------------------------------------------------------


class ResumeTests(SynchronousTestCase):
    """
    Reopening an existing file continues its chain.
    """

    def test_restart(self) -> None:
        """
        Closing and reopening continues C{seq} and C{prev} with a
        C{chain.resumed} record whose reason is C{restart}.
        """
        first = _observer(self)
        first.write(_accepted(1))
        first.close()
        last = readChain(first.path)[-1]
        self.assertEqual(last["event"], "chain.closed")
        second = _observer(self, path=first.path)
        second.write(_accepted(2))
        second.close()
        records = readChain(first.path)
        resumed = records[3]
        self.assertEqual(resumed["event"], "chain.resumed")
        self.assertEqual(resumed["reason"], "restart")
        self.assertEqual(resumed["seq"], last["seq"] + 1)
        self.assertEqual(resumed["prev"], last["hash"])
        self.assertEqual(resumed["previousSeq"], last["seq"])
        self.assertEqual(records[4]["seq"], 5)
        self.assertEqual(records[4]["prev"], resumed["hash"])
        self.assertEqual([r["event"] for r in records].count("chain.started"), 1)
        self.assertTrue(verifyFiles([first.path]).ok)

    def test_tornLastLine(self) -> None:
        """
        A half-written last record is moved aside to a C{.torn-*} file, the
        file is cut back to the last good record, and C{chain.resumed} says
        C{torn_record} with the number of bytes; the file verifies.
        """
        first = _observer(self)
        first.write(_accepted(1))
        first.close()
        with open(first.path, "rb") as f:
            original = f.read()
        whole = _lines(first.path)[-1]
        torn = whole[: len(whole) // 2]
        with open(first.path, "ab") as f:
            f.write(torn)
        self.assertFalse(verifyFiles([first.path]).ok)

        second = _observer(self, path=first.path, now=lambda: 1700000000.0)
        second.close()
        asides = glob.glob(first.path + ".torn-*")
        self.assertEqual(asides, [first.path + ".torn-1700000000"])
        with open(asides[0], "rb") as f:
            self.assertEqual(f.read(), torn)
        records = readChain(first.path)
        self.assertEqual(len(records), 5)
        self.assertEqual(records.pop()["event"], "chain.closed")
        resumed = records[-1]
        self.assertEqual(resumed["event"], "chain.resumed")
        self.assertEqual(resumed["reason"], "torn_record")
        self.assertEqual(resumed["tornBytes"], len(torn))
        self.assertEqual(resumed["tornFile"], os.path.basename(asides[0]))
        self.assertEqual(resumed["prev"], records[2]["hash"])
        with open(first.path, "rb") as f:
            self.assertTrue(f.read().startswith(original))
        self.assertTrue(verifyFiles([first.path]).ok)
        # intact, but the torn record is lost (and connection 1 never closed)
        status, out = _cli("audit", "verify", first.path)
        self.assertEqual(status, 3, out)
        self.assertIn("1 torn record(s)", out)

    def test_lastRecordDoesNotVerify(self) -> None:
        """
        A file whose last complete record does not verify is refused at open
        with an L{AuditLogError} naming the file, the problem and a fix.
        """
        first = _observer(self)
        first.write(_accepted(1))
        first.close()
        lines = _lines(first.path)
        lines[-1] = lines[-1].replace(b"chain.closed", b"chain.closeD")
        _writeLines(first.path, lines)
        error = self.assertRaises(AuditLogError, AuditLogObserver, first.path)
        self.assertEqual(error.path, first.path)
        self.assertIn("the last record does not verify", str(error))
        self.assertIn(first.path, str(error))
        self.assertIn("audit verify", error.fix)
        # the file was not touched
        self.assertEqual(_lines(first.path), lines)


# -- 4. rotation -----------------------------------------------------------


class RotationTests(SynchronousTestCase):
    """
    Rotation by size and by day keeps one unbroken chain across files.
    """

    def assertRotationSet(self, path: str, files: List[str]) -> None:
        """
        Each file after the first starts with C{chain.rotated} naming the
        file before it, and the set verifies in any order.
        """
        ordered = sorted(files, key=lambda p: readChain(p)[0]["seq"])
        self.assertEqual(ordered[-1], path)
        self.assertEqual(readChain(ordered[0])[0]["event"], "chain.started")
        for before, after in zip(ordered, ordered[1:], strict=False):
            head = readChain(after)[0]
            self.assertEqual(head["event"], "chain.rotated")
            self.assertEqual(head["previousFile"], os.path.basename(before))
            self.assertEqual(head["prev"], readChain(before)[-1]["hash"])
        shuffled = list(files)
        random.Random(4).shuffle(shuffled)
        for order in (shuffled, list(reversed(ordered)), ordered):
            result = verifyFiles(order)
            self.assertTrue(result.ok, result.problems)
            self.assertEqual(list(result.files), ordered)
        # intact; incomplete because the connections were never closed
        self.assertEqual(_cli("audit", "verify", *shuffled)[0], 3)

    def test_bySize(self) -> None:
        """
        With C{maxBytes}, a file never grows past it; the next record goes
        to a new file.
        """
        observer = _observer(self, maxBytes=4096)
        for n in range(60):
            observer.write(_accepted(n))
        observer.close()
        files = glob.glob(observer.path + "*")
        self.assertGreaterEqual(len(files), 4)
        for name in files:
            self.assertLessEqual(os.path.getsize(name), 4096)
        self.assertRotationSet(observer.path, files)
        total = sum(len(readChain(f)) for f in files)
        # chain.started, the records, a chain.rotated per file, chain.closed
        self.assertEqual(total, 1 + 60 + (len(files) - 1) + 1)

    def test_byDay(self) -> None:
        """
        With C{daily}, the first record written on a new (UTC) day goes to a
        new file, and the old one is named after the time of rotation.
        """
        clock = [1793518800.0]  # 2026-11-01T07:40:00Z
        observer = _observer(self, daily=True, now=lambda: clock[0])
        observer.write(_accepted(1))
        clock[0] += 3600
        observer.write(_accepted(2))
        self.assertEqual(glob.glob(observer.path + ".*"), [])
        clock[0] += 86400  # 2026-11-02
        observer.write(_accepted(3))
        clock[0] += 86400 * 2  # 2026-11-04
        observer.write(_accepted(4))
        observer.close()
        rotated = sorted(glob.glob(observer.path + ".*"))
        self.assertEqual([os.path.basename(p) for p in rotated],
                         ["audit.jsonl.20261102T084000Z", "audit.jsonl.20261104T084000Z"])
        self.assertEqual([r["event"] for r in readChain(rotated[0])],
                         ["chain.started", "connection.accepted", "connection.accepted"])
        self.assertEqual([r["event"] for r in readChain(observer.path)],
                         ["chain.rotated", "connection.accepted", "chain.closed"])
        self.assertRotationSet(observer.path, rotated + [observer.path])

    def test_tooSmall(self) -> None:
        """
        C{maxBytes} below 4096 is refused with L{AuditLogError}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        error = self.assertRaises(AuditLogError, AuditLogObserver,
                                  os.path.join(directory, "a.jsonl"), maxBytes=100)
        self.assertIn("maxBytes=100", str(error))


# -- 5. failure ------------------------------------------------------------


class _CountingFactory(Factory):
    """
    Counts how many application protocols were connected.
    """

    def __init__(self) -> None:
        self.connected = 0

    def buildProtocol(self, addr: Any) -> Protocol:
        factory = self

        class Counted(Protocol):
            def connectionMade(self) -> None:
                factory.connected += 1

        return Counted()


class FailureTests(SynchronousTestCase):
    """
    A file that cannot be written is never a silent loss.
    """

    def setUp(self) -> None:
        self.log = _captureLog(self)

    def critical(self) -> List[str]:
        return [formatEvent(e) for e in self.log
                if e.get("log_level") == LogLevel.critical
                and e.get("log_namespace") == "securetcp.auditlog"]

    def test_refuse(self) -> None:
        """
        With C{onFailure="refuse"} (the default), a failing write makes
        the observer's C{accepting()} false, and so that of an
        L{AuditEmitter} given it, and logs a critical event; once writes
        work again a C{chain.gap} record says how many records were lost,
        C{accepting} is true again, and the chain verifies.
        """
        disk = _Disk()
        observer = _observer(self, openFile=disk)
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None),
                               observers=[observer])
        self.assertEqual(observer.onFailure, "refuse")
        observer.write(_accepted(1))
        repair = _breakDisk(self, disk)
        self.assertTrue(emitter.accepting())
        self.assertFalse(observer.write(_accepted(2)))
        self.assertFalse(emitter.accepting())
        self.assertFalse(observer.accepting())
        self.assertTrue(observer.failing)
        self.assertFalse(observer.write(_accepted(3)))
        self.assertFalse(emitter.accepting())
        self.assertEqual(observer.lost, 2)
        critical = self.critical()
        self.assertEqual(len(critical), 1, critical)
        self.assertIn(observer.path, critical[0])
        self.assertIn("No space left on device", critical[0])
        self.assertIn("REFUSED", critical[0])

        repair()
        self.assertTrue(observer.write(_accepted(4)))
        self.assertTrue(emitter.accepting())
        self.assertFalse(observer.failing)
        observer.close()
        records = readChain(observer.path)
        self.assertEqual([r["event"] for r in records],
                         ["chain.started", "connection.accepted", "chain.gap",
                          "connection.accepted", "chain.closed"])
        self.assertEqual(records[2]["lost"], 2)
        self.assertIsNotNone(records[2]["since"])
        self.assertEqual(records[3]["peer"], "127.0.0.1:40004")
        self.assertTrue(verifyFiles([observer.path]).ok)

    def test_shortProbeIsNotHealth(self) -> None:
        """
        A failing file whose C{chain.gap} record fits but whose next real
        record does not is not healthy: the probe writes the gap (with the
        lost records and the refusals among them), the emitter reports that
        the C{connection.accepted} record did not reach the file (so the
        gate refuses that connection), and only a real record written makes
        the file healthy again.  The chain verifies.
        """
        disk = _Disk()
        observer = _observer(self, openFile=disk)
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None),
                               observers=[observer])
        self.assertTrue(emitter.emit(_accepted(1)))
        repair = _breakDisk(self, disk)
        self.assertFalse(emitter.emit(_accepted(2)))
        self.assertFalse(emitter.emit({"event": "handshake.rejected",
                                       "reason": "audit_unavailable"}))
        self.assertEqual((observer.lost, observer.refused), (2, 1))
        repair()
        disk.room = 400
        big = dict(_accepted(3), pad="x" * 1000)
        self.assertTrue(emitter.accepting())
        self.assertTrue(observer.failing)
        self.assertFalse(emitter.emit(big))
        self.assertIs(observer.wrote(big), False)
        self.assertTrue(observer.failing)
        disk.room = None
        self.assertTrue(emitter.emit(_accepted(4)))
        self.assertFalse(observer.failing)
        observer.close()
        self.assertEqual(
            [(r["event"], r.get("lost"), r.get("refused"), r.get("connection"))
             for r in readChain(observer.path)],
            [("chain.started", None, None, None),
             ("connection.accepted", None, None, f"{1:016x}"),
             ("chain.gap", 2, 1, None), ("chain.gap", 1, 0, None),
             ("connection.accepted", None, None, f"{4:016x}"),
             ("chain.closed", None, None, None)])
        self.assertTrue(verifyFiles([observer.path]).ok)

    def test_continue(self) -> None:
        """
        With C{onFailure="continue"}, C{accepting} stays true, but the loss is
        logged as critical and recorded in a C{chain.gap} record.
        """
        disk = _Disk()
        observer = _observer(self, onFailure="continue", openFile=disk)
        repair = _breakDisk(self, disk)
        self.assertFalse(observer.write(_accepted(1)))
        self.assertFalse(observer.write(_accepted(2)))
        self.assertFalse(observer.write(_accepted(3)))
        self.assertTrue(observer.accepting())
        critical = self.critical()
        self.assertEqual(len(critical), 1, critical)
        self.assertIn("LOST", critical[0])
        repair()
        self.assertTrue(observer.write(_accepted(4)))
        observer.close()
        records = readChain(observer.path)
        self.assertEqual([r["event"] for r in records],
                         ["chain.started", "chain.gap", "connection.accepted",
                          "chain.closed"])
        self.assertEqual(records[1]["lost"], 3)
        self.assertTrue(verifyFiles([observer.path]).ok)

    def test_gateRefusesWhileFailing(self) -> None:
        """
        While the audit file cannot be written, the gate refuses a verified
        client with C{audit_unavailable} and the application never sees it:
        neither the client whose own C{connection.accepted} record could not
        be written, nor the next one.  The first connection after the repair
        is admitted: the gate probes the failing file, which writes its
        C{chain.gap} record first.
        """
        try:
            from ._iosim import connectProtocols
        except ImportError as e:  # pragma: no cover
            raise SkipTest(f"tests._iosim has no in-memory connect helper: {e}")
        pki = TestPKI.create(self.mktemp())
        clock = Clock()
        disk = _Disk()
        observer = _observer(self, openFile=disk)
        seen: List[Dict[str, Any]] = []
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=seen.append),
                               observers=[observer])
        server = SecureServerEndpoint(
            clock, None, buildPolicy(certKey=pki.path("server.pem"),
                                     privateKey=pki.path("server.key"),
                                     caCerts=pki.path("ca.pem")),
            mutual=True, clock=clock, emitter=emitter)

        def read(name: str) -> str:
            with open(pki.path(name)) as f:
                return f.read()

        # a client that is not securetcp (and so has no audit file of its own)
        options = ssl.optionsForClientTLS(
            "localhost", trustRoot=ssl.Certificate.loadPEM(read("ca.pem")),
            clientCertificate=ssl.PrivateCertificate.loadPEM(
                read("client.pem") + read("client.key")))
        app = _CountingFactory()

        def connect() -> Any:
            client = TLSMemoryBIOFactory(options, True, Factory.forProtocol(Protocol),
                                         clock=clock)
            return connectProtocols(server.wrapFactory(app), client, clock)

        def serverRecords() -> List[Tuple[str, Optional[str]]]:
            return [(e["securetcp_audit"]["event"], e["securetcp_audit"].get("reason"))
                    for e in seen]

        repair = _breakDisk(self, disk)
        connect()  # its own connection.accepted record cannot be written
        self.assertFalse(emitter.accepting())
        connect()  # refused before the application is built
        self.assertEqual(app.connected, 0)
        self.assertEqual(serverRecords(), [("connection.accepted", None),
                                           ("handshake.rejected", "audit_unavailable"),
                                           ("handshake.rejected", "audit_unavailable")])
        self.assertEqual(observer.lost, 3)

        repair()
        client, _, pump = connect()
        self.assertEqual(app.connected, 1)
        self.assertTrue(emitter.accepting())
        client.loseConnection()
        pump.flush()
        observer.close()
        self.assertEqual(
            [(r["event"], r.get("reason"), r.get("lost")) for r in readChain(observer.path)],
            [("chain.started", None, None), ("chain.gap", None, 3),
             ("connection.accepted", None, None), ("connection.closed", None, None),
             ("chain.closed", None, None)])
        self.assertTrue(verifyFiles([observer.path]).ok)

    def test_realFileSizeLimit(self) -> None:
        """
        A real failure: in a subprocess whose file size limit (RLIMIT_FSIZE,
        SIGXFSZ ignored) stops the file from growing, writes fail with EFBIG,
        C{accepting} is false and a critical event is logged; when the limit
        is raised again a C{chain.gap} record with the number lost is
        written, C{accepting} is true, and no failed record (or part of one)
        reaches the file: the chain verifies.
        """
        try:
            import resource  # noqa: F401
        except ImportError:  # pragma: no cover
            raise SkipTest("no resource module on this platform")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "audit.jsonl")
        script = textwrap.dedent("""
            import json, os, resource, signal, sys
            from twisted.logger import LogLevel, globalLogPublisher
            from securetcp.audit.file import AuditLogObserver
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            critical = []
            globalLogPublisher.addObserver(
                lambda e: critical.append(e["log_format"])
                if e.get("log_level") == LogLevel.critical else None)
            path, slack = sys.argv[1], int(sys.argv[2])
            observer = AuditLogObserver(path, fsync="always")
            observer.write({"event": "connection.closed", "n": 0})
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + slack, hard))
            failed = [observer.write({"event": "connection.closed", "n": n})
                      for n in (1, 2, 3)]
            during = observer.accepting()
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            after = observer.write({"event": "connection.closed", "n": 4})
            observer.close()
            print(json.dumps({"failed": failed, "during": during, "after": after,
                              "accepting": observer.accepting(),
                              "critical": len(critical)}))
        """)
        env = dict(os.environ, PYTHONPATH=SOURCE_ROOT)
        for slack in (0, 40):
            target = f"{path}.{slack}"
            done = subprocess.run([sys.executable, "-c", script, target, str(slack)],
                                  env=env, capture_output=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr.decode())
            outcome = json.loads(done.stdout)
            self.assertEqual(outcome, {"failed": [False, False, False], "during": False,
                                       "after": True, "accepting": True, "critical": 1})
            records = readChain(target)
            self.assertEqual([(r["event"], r.get("n"), r.get("lost")) for r in records],
                             [("chain.started", None, None),
                              ("connection.closed", 0, None),
                              ("chain.gap", None, 3),
                              ("connection.closed", 4, None),
                              ("chain.closed", None, None)])
            result = verifyFiles([target])
            self.assertTrue(result.ok, f"slack {slack}: {result.problems}")


# -- 6. fsync --------------------------------------------------------------


class FsyncTests(SynchronousTestCase):
    """
    The C{fsync} modes decide how often records are forced to disk.
    """

    def setUp(self) -> None:
        self.synced: List[int] = []
        self.patch(_auditfile.os, "fsync", self.synced.append)

    def test_always(self) -> None:
        """
        C{fsync="always"} calls C{os.fsync} for every record.
        """
        observer = _observer(self, fsync="always")
        self.assertEqual(len(self.synced), 1)  # chain.started
        for n in range(10):
            observer.write(_accepted(n))
        self.assertEqual(len(self.synced), 11)
        self.assertEqual(set(self.synced), {observer._file.fileno()})

    def test_off(self) -> None:
        """
        C{fsync="off"} never calls C{os.fsync}, not even at close.
        """
        observer = _observer(self, fsync="off")
        for n in range(10):
            observer.write(_accepted(n))
        observer.close()
        self.assertEqual(self.synced, [])

    def test_interval(self) -> None:
        """
        C{fsync="interval"} calls C{os.fsync} at most once per interval while
        records arrive, and once more at close.
        """
        clock = [1000.0]
        observer = _observer(self, fsync="interval", fsyncInterval=60.0,
                             now=lambda: clock[0])
        for n in range(20):
            clock[0] += 1
            observer.write(_accepted(n))
        self.assertEqual(len(self.synced), 0)  # 20s < 60s
        for n in range(100):
            clock[0] += 1
            observer.write(_accepted(n))
        # 120 seconds of records: at most one fsync per 60 seconds
        self.assertEqual(len(self.synced), 2)
        observer.close()
        self.assertEqual(len(self.synced), 3)

    def test_intervalTimer(self) -> None:
        """
        With C{fsync="interval"}, a record written just after an fsync is
        forced to disk by a timer once the interval has passed, even when no
        other record follows.
        """
        # the observer's clock stands still, so only the timer can sync
        observer = _observer(self, fsync="interval", fsyncInterval=0.05,
                             now=lambda: 1000.0)
        observer.write(_accepted(1))
        self.assertEqual(self.synced, [])
        deadline = time.monotonic() + 5
        while not self.synced and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(len(self.synced), 1)
        observer.close()
        self.assertEqual(len(self.synced), 2)


# -- 7. report -------------------------------------------------------------


def _reportRecords() -> List[Dict[str, Any]]:
    records = [
        _accepted(1),
        dict(_accepted(2), time="2026-11-02T09:00:00.000000Z"),
        dict(_accepted(3), version="TLSv1.2", cipher="ECDHE-ECDSA-AES128-GCM-SHA256",
             peerIdentity={"subject": "CN=PUMP-0099"}),
        dict(_accepted(4), version="TLSv1", cipher="ECDHE-ECDSA-AES128-SHA",
             time="2026-11-02T11:00:00.000000Z", peerIdentity=None,
             compliance={"compliant": False, "reasons": ["TLSv1 is below TLS 1.2"]}),
        {"event": "handshake.rejected", "time": "2026-11-01T12:00:00.000000Z",
         "peer": "10.0.0.9:5000", "reason": "unknown_ca"},
        {"event": "handshake.rejected", "time": "2026-11-02T12:00:00.000000Z",
         "peer": "10.0.0.9:5001", "reason": "unknown_ca"},
        {"event": "handshake.rejected", "time": "2026-11-02T12:30:00.000000Z",
         "peer": "[2001:db8::1]:443", "reason": "expired"},
        {"event": "connection.closed", "time": "2026-11-01T10:00:01.000000Z",
         "connection": f"{1:016x}", "bytesIn": 100, "bytesOut": 20},
        {"event": "connection.closed", "time": "2026-11-02T11:00:01.000000Z",
         "connection": f"{4:016x}", "bytesIn": 5, "bytesOut": 7},
    ]
    return records


class ReportTests(SynchronousTestCase):
    """
    L{buildReport} and C{python -m securetcp audit report}.
    """

    def test_buildReport(self) -> None:
        """
        The report counts accepted connections by version, cipher, identity
        and day, rejections by reason, peer host and day, totals bytes, and
        lists the connections that did not meet the profile.
        """
        report = buildReport(_reportRecords())
        self.assertEqual((report["accepted"], report["rejected"], report["closed"]), (4, 3, 2))
        self.assertEqual((report["bytesIn"], report["bytesOut"]), (105, 27))
        self.assertEqual(report["acceptedByVersion"], {"TLSv1.3": 2, "TLSv1.2": 1, "TLSv1": 1})
        self.assertEqual(report["acceptedByCipher"],
                         {"TLS_AES_256_GCM_SHA384": 2, "ECDHE-ECDSA-AES128-GCM-SHA256": 1,
                          "ECDHE-ECDSA-AES128-SHA": 1})
        self.assertEqual(report["acceptedByIdentity"],
                         {"CN=PUMP-0042": 2, "CN=PUMP-0099": 1, "(no certificate)": 1})
        self.assertEqual(report["acceptedByDay"], {"2026-11-01": 2, "2026-11-02": 2})
        self.assertEqual(report["rejectedByReason"], {"unknown_ca": 2, "expired": 1})
        self.assertEqual(report["rejectedByPeer"], {"10.0.0.9": 2, "2001:db8::1": 1})
        self.assertEqual(report["rejectedByDay"], {"2026-11-01": 1, "2026-11-02": 2})
        self.assertEqual(report["period"], {"first": "2026-11-01T10:00:00.000000Z",
                                            "last": "2026-11-02T12:30:00.000000Z"})
        self.assertEqual(report["nonCompliant"], [{
            "time": "2026-11-02T11:00:00.000000Z", "peer": "127.0.0.1:40004",
            "identity": "(no certificate)", "version": "TLSv1",
            "cipher": "ECDHE-ECDSA-AES128-SHA", "reasons": ["TLSv1 is below TLS 1.2"]}])

    def writeChain(self) -> str:
        """
        A complete chain: the report's records, and the close records of the
        two connections they leave open.
        """
        observer = _observer(self)
        for record in _reportRecords() + [_closed(2), _closed(3)]:
            observer.write(record)
        observer.close()
        return observer.path

    def test_cliJSON(self) -> None:
        """
        C{audit report --json} prints the report as valid JSON, with the
        chain's state, and skips the chain's own records.
        """
        path = self.writeChain()
        status, out = _cli("audit", "report", path, "--json")
        self.assertEqual(status, 0, out)
        report = json.loads(out)
        chain = report["chain"]
        self.assertEqual({k: chain[k] for k in ("ok", "status", "records", "problem")},
                         {"ok": True, "status": "complete", "records": 13, "problem": None})
        self.assertTrue(report["completeness"]["complete"])
        self.assertEqual(report["rejectedByReason"], {"unknown_ca": 2, "expired": 1})
        self.assertEqual(report["accepted"], 4)
        self.assertEqual(len(report["nonCompliant"]), 1)
        self.assertEqual(buildReport(iterRecords([path]))["accepted"], 4)

    def test_cliText(self) -> None:
        """
        C{audit report} prints a text summary that says whether the chain is
        intact, and exits non-zero for a broken chain.
        """
        path = self.writeChain()
        status, out = _cli("audit", "report", path)
        self.assertEqual(status, 0, out)
        self.assertIn("chain: INTACT (13 records)", out)
        self.assertIn("unknown_ca", out)
        lines = _lines(path)
        del lines[3]
        _writeLines(path, lines)
        status, out = _cli("audit", "report", path)
        self.assertEqual(status, 1)
        self.assertIn("chain: BROKEN", out)

    def test_cliHTML(self) -> None:
        """
        C{audit report --html FILE} writes an HTML page with SVG charts.
        """
        path = self.writeChain()
        page = os.path.abspath(self.mktemp()) + ".html"
        status, out = _cli("audit", "report", path, "--html", page)
        self.assertEqual(status, 0, out)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertIn("<svg", html)
        self.assertIn("Chain intact", html)
        self.assertIn("unknown_ca", html)


# -- 8 and 9. an unmodified twistd with real peers -------------------------


def _waitFor(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _events(path: str) -> List[Dict[str, Any]]:
    try:
        return readChain(path)
    except (OSError, ValueError):
        return []


class Twistd:
    """
    An unmodified C{twistd -n web} subprocess serving C{root}, its output
    (stdout and stderr) in C{self.logPath}.

    @ivar probes: connections made to find out that it listens; each is
        audited as a C{peer_closed} rejection.
    """

    def __init__(self, test: SynchronousTestCase, pki: TestPKI, root: str,
                 auditLog: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 twistdArgs: Sequence[str] = (), port: Optional[int] = None,
                 command: Optional[Callable[[str], List[str]]] = None) -> None:
        self.test = test
        self.pki = pki
        self.root = root
        self.auditLog = auditLog
        self.env = env or {}
        self.twistdArgs = list(twistdArgs)
        self.port = port
        #: the twistd subcommand and its options, given the listen string
        self.command = command or (lambda listen: ["web", "--listen", listen,
                                                   "--path", self.root])
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.probes = 0
        self.logPath = os.path.join(root, f"twistd-{random.randrange(1 << 30)}.log")

    def listenString(self, port: int) -> str:
        pki = self.pki
        listen = (f"mtls:{port}:interface=127.0.0.1"
                  f":certKey={_escape(pki.path('server.pem'))}"
                  f":privateKey={_escape(pki.path('server.key'))}"
                  f":caCerts={_escape(pki.path('ca.pem'))}"
                  f":handshakeTimeout=2")
        if self.auditLog:
            listen += f":auditLog={_escape(self.auditLog)}"
        return listen

    def start(self) -> Twistd:
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [SOURCE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        for _attempt in range(3):
            port = self.port or _freePort()
            argv = ([TWISTD, "-n", "--pidfile="] + self.twistdArgs
                    + self.command(self.listenString(port)))
            with open(self.logPath, "ab") as log:
                self.process = subprocess.Popen(argv, env=env, cwd=self.root, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
            self.test.addCleanup(self.kill)
            deadline = time.monotonic() + START_TIMEOUT
            while self.process.poll() is None and time.monotonic() < deadline:
                if self._probe(port):
                    self.port = port
                    return self
                time.sleep(0.05)
            self.kill()
            if self.port is not None:
                break
        raise AssertionError(f"twistd did not start listening:\n{self.log()}")

    def _probe(self, port: int) -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
        self.probes += 1
        return True

    def log(self) -> str:
        try:
            with open(self.logPath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """
        SIGTERM, and wait (bounded) for a clean exit.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=SETTLE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"twistd did not stop on SIGTERM:\n{self.log()}")
        # twistd ends by re-raising the signal once it has shut down cleanly
        self.test.assertIn(status, (0, -signal.SIGTERM), self.log())
        self.test.assertIn("Server Shut Down.", self.log())

    def kill(self) -> None:
        """
        SIGKILL (if it still runs) and reap.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=SETTLE_TIMEOUT)

    # -- clients --------------------------------------------------------

    def curl(self, cert: Optional[str], data: Optional[bytes] = None
             ) -> subprocess.CompletedProcess[bytes]:
        pki = self.pki
        argv = [CURL, "-sS", "--max-time", str(CLIENT_TIMEOUT),
                "--resolve", f"localhost:{self.port}:127.0.0.1",
                "--cacert", pki.path("ca.pem")]
        if cert:
            argv += ["--cert", pki.path(f"{cert}.pem"), "--key", pki.path(f"{cert}.key")]
        if data is not None:
            argv += ["--data-binary", "@-"]
        argv.append(f"https://localhost:{self.port}/file.txt")
        return subprocess.run(argv, input=data, capture_output=True,
                              timeout=CLIENT_TIMEOUT + 5)

    def exchange(self, line: bytes) -> bytes:
        """
        Connect with the C{client} certificate, send C{line}, and read until
        the answer ends with a newline; then close.
        """
        return exchangeLine(self.pki.path("ca.pem"), self.pki.path("client.pem"),
                            self.pki.path("client.key"), self.port, line, CLIENT_TIMEOUT)

    def sClientTLS11(self) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.port}", "-tls1_1",
             "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=CLIENT_TIMEOUT)

    def plaintext(self, data: bytes) -> bytes:
        """
        Send C{data} unencrypted and read until the server closes.
        """
        received = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT) as s:
            s.sendall(data)
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except ConnectionResetError:
                pass
        return received

    def silent(self) -> socket.socket:
        """
        Connect and send nothing; the caller waits for the server to close.
        """
        s = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
        self.test.addCleanup(s.close)
        return s


def _echoBackend(test: SynchronousTestCase) -> int:
    """
    A plaintext line echo server on 127.0.0.1 (in a thread of this
    process), stopped at cleanup.

    @return: its port.
    """
    import socketserver

    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(b"backend:" + line)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=SETTLE_TIMEOUT)

    test.addCleanup(stop)
    return int(server.server_address[1])


def _waitClosedByServer(s: socket.socket) -> float:
    """
    Wait (bounded by the socket's timeout) until the server closes C{s}.
    """
    started = time.monotonic()
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


class TwistdTests(SynchronousTestCase):
    """
    An unmodified C{twistd web} behind an C{mtls:} endpoint string writing
    an audit file, driven by real peers.
    """

    def setUp(self) -> None:
        for name, tool in (("twistd", TWISTD), ("curl", CURL), ("openssl", OPENSSL)):
            if tool is None:
                raise SkipTest(f"{name} is not installed")
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        with open(os.path.join(self.root, "file.txt"), "wb") as f:
            f.write(b"securetcp served this\n")
        self.audit = os.path.join(self.root, "audit.jsonl")

    def waitForRecords(self, path: str, count: Callable[[List[Dict[str, Any]]], bool],
                       what: str) -> None:
        _waitFor(lambda: count(_events(path)), SETTLE_TIMEOUT, what)

    def assertNoPatientData(self, *paths: str) -> None:
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            self.assertNotIn(HL7, data, path)
            self.assertNotIn(b"DOE^JOHN", data, path)
            self.assertNotIn(b"12345^^^HOSP", data, path)

    def assertVerifies(self, *paths: str) -> None:
        result = verifyFiles(paths)
        self.assertTrue(result.ok, result.problems)
        status, out = _cli("audit", "verify", *paths)
        self.assertEqual(status, 0, out)

    def rejections(self, records: List[Dict[str, Any]], probes: int) -> Counter[str]:
        """
        The rejection reasons, after checking that the readiness probes are
        the only C{peer_closed} ones.
        """
        reasons = Counter(r["reason"] for r in records if r["event"] == "handshake.rejected")
        self.assertEqual(reasons.pop("peer_closed", 0), probes)
        return reasons

    def test_realPeers(self) -> None:
        """
        Every client of C{twistd web --listen mtls:...:auditLog=FILE} leaves
        exactly its record in the file: one C{connection.accepted} and one
        C{connection.closed} for the good client (whose request carried
        patient data), one C{handshake.rejected} with the right reason for
        each bad one (untrusted CA, expired, no certificate, TLS 1.1,
        plaintext, silence); the chain verifies, and the patient data is
        neither in the audit file nor in twistd's own log.
        """
        server = Twistd(self, self.pki, self.root, auditLog=self.audit).start()
        silent = server.silent()  # times out after 2 s, meanwhile the others run

        good = server.curl("client", data=HL7 + b"\r\n")
        self.assertEqual(good.returncode, 0, good.stderr)
        self.assertIn(b"405", good.stdout)  # twisted.web refuses POST on a file
        for cert in ("client-other", "client-expired", None):
            bad = server.curl(cert)
            self.assertNotEqual(bad.returncode, 0, (cert, bad))
            self.assertNotIn(b"securetcp served this", bad.stdout)
        old = server.sClientTLS11()
        self.assertNotEqual(old.returncode, 0, old.stdout + old.stderr)
        self.assertEqual(server.plaintext(b"\x00\xffgarbage\r\n" + HL7 + b"\r\n"), b"")
        waited = _waitClosedByServer(silent)
        self.assertLess(waited, CLIENT_TIMEOUT - 1)

        self.waitForRecords(self.audit, lambda rs: sum(
            r["event"] == "handshake.rejected" for r in rs) >= 6 + server.probes,
            "six rejections")
        server.stop()
        records = readChain(self.audit)
        events = Counter(r["event"] for r in records)
        self.assertEqual(events["connection.accepted"], 1, records)
        self.assertEqual(events["connection.closed"], 1, records)
        self.assertEqual(events["chain.started"], 1)
        self.assertEqual(events["policy.loaded"], 1)
        accepted = [r for r in records if r["event"] == "connection.accepted"][0]
        closed = [r for r in records if r["event"] == "connection.closed"][0]
        self.assertEqual(accepted["connection"], closed["connection"])
        self.assertIn("PUMP-0042", json.dumps(accepted["peerIdentity"]))
        self.assertEqual(accepted["version"], "TLSv1.3")
        self.assertGreater(closed["bytesIn"], len(HL7))
        self.assertEqual(self.rejections(records, server.probes), {
            "unknown_ca": 1, "expired": 1, "no_client_certificate": 1,
            "protocol_version_refused": 1, "not_tls": 1, "handshake_timeout": 1})
        self.assertVerifies(self.audit)
        self.assertNoPatientData(self.audit, server.logPath)
        log = server.log()
        self.assertIn('"POST /file.txt HTTP/1.1" 405', log)
        self.assertEqual(log.count('"POST '), 1)

    def test_twistdLogger(self) -> None:
        """
        C{twistd --logger=securetcp.audit.twistdLogger} with
        C{SECURETCP_AUDIT_LOG} set writes the audit chain of an endpoint that
        names no C{auditLog=}, and still writes the usual text log.
        """
        server = Twistd(self, self.pki, self.root,
                        env={"SECURETCP_AUDIT_LOG": self.audit},
                        twistdArgs=["--logger=securetcp.audit.twistdLogger"]).start()
        good = server.curl("client", data=HL7)
        self.assertEqual(good.returncode, 0, good.stderr)
        bad = server.curl("client-other")
        self.assertNotEqual(bad.returncode, 0)
        self.assertEqual(server.plaintext(HL7 + b"\r\n"), b"")
        self.waitForRecords(self.audit, lambda rs: sum(
            r["event"] == "handshake.rejected" for r in rs) >= 2 + server.probes
            and any(r["event"] == "connection.closed" for r in rs), "the records")
        server.stop()
        records = readChain(self.audit)
        events = Counter(r["event"] for r in records)
        self.assertEqual((events["connection.accepted"], events["connection.closed"]), (1, 1))
        self.assertEqual(self.rejections(records, server.probes),
                         {"unknown_ca": 1, "not_tls": 1})
        self.assertVerifies(self.audit)
        self.assertNoPatientData(self.audit, server.logPath)
        log = server.log()
        self.assertIn("securetcp: rejected", log)
        self.assertIn('"POST /file.txt HTTP/1.1" 405', log)

    def assertEachRecordOnce(self, records: List[Dict[str, Any]], connections: int) -> None:
        """
        The file of one endpoint's run has one start, one C{policy.loaded},
        an accepted and a closed record for each of C{connections}, and no
        connection has the same event twice.
        """
        events = Counter(r["event"] for r in records)
        self.assertEqual((events["chain.started"], events["policy.loaded"],
                          events["connection.accepted"], events["connection.closed"]),
                         (1, 1, connections, connections), records)
        pairs = Counter((r["event"], r["connection"]) for r in records if "connection" in r)
        self.assertEqual([pair for pair, n in pairs.items() if n > 1], [])

    def test_serviceAndEndpointNameOneFile(self) -> None:
        """
        C{twistd securetcp terminate --audit-log FILE --listen
        "mtls:...:auditLog=FILE"}: the service's audit log and the
        endpoint's are one file, written by one writer, and every record is
        in it once: one C{policy.loaded}, one C{connection.accepted} and one
        C{connection.closed} per client, one rejection per readiness probe;
        the chain verifies.
        """
        backend = _echoBackend(self)
        server = Twistd(self, self.pki, self.root, auditLog=self.audit, command=lambda listen: [
            "securetcp", "terminate", "--listen", listen,
            "--backend", f"tcp:127.0.0.1:{backend}", "--audit-log", self.audit]).start()
        for n in range(3):
            self.assertEqual(server.exchange(b"HL7 %d" % n), b"backend:HL7 %d\n" % n)
        self.waitForRecords(self.audit, lambda rs: sum(
            r["event"] == "connection.closed" for r in rs) >= 3, "three closed records")
        server.stop()
        records = readChain(self.audit)
        self.assertEachRecordOnce(records, 3)
        self.assertEqual(self.rejections(records, server.probes), {})
        self.assertVerifies(self.audit)

    def test_twistdLoggerAndEndpointNameOneFile(self) -> None:
        """
        C{twistd --logger=securetcp.audit.twistdLogger} writing to FILE and
        an endpoint with C{auditLog=FILE} share one writer: each record is
        written once.
        """
        server = Twistd(self, self.pki, self.root, auditLog=self.audit,
                        env={"SECURETCP_AUDIT_LOG": self.audit},
                        twistdArgs=["--logger=securetcp.audit.twistdLogger"]).start()
        self.assertEqual(server.curl("client").returncode, 0)
        self.assertNotEqual(server.curl("client-other").returncode, 0)
        self.waitForRecords(self.audit, lambda rs: any(
            r["event"] == "connection.closed" for r in rs) and any(
            r.get("reason") == "unknown_ca" for r in rs), "the records")
        server.stop()
        records = readChain(self.audit)
        self.assertEachRecordOnce(records, 1)
        self.assertEqual(self.rejections(records, server.probes), {"unknown_ca": 1})
        self.assertVerifies(self.audit)

    def test_killAndRestart(self) -> None:
        """
        After C{kill -9} a restarted twistd continues the same file with a
        C{chain.resumed} record whose reason is C{crash} (the killed writer
        never closed the chain); the chain verifies and counts exactly the
        successful connections of both runs.
        """
        first = Twistd(self, self.pki, self.root, auditLog=self.audit).start()
        for _ in range(2):
            self.assertEqual(first.curl("client").returncode, 0)
        self.assertNotEqual(first.curl("client-expired").returncode, 0)
        self.waitForRecords(self.audit, lambda rs: sum(
            r["event"] == "connection.closed" for r in rs) >= 2 and any(
            r.get("reason") == "expired" for r in rs), "two closed records and a rejection")
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=SETTLE_TIMEOUT)

        second = Twistd(self, self.pki, self.root, auditLog=self.audit,
                        port=first.port).start()
        successes = 2
        for _ in range(3):
            if second.curl("client").returncode == 0:
                successes += 1
        self.assertEqual(successes, 5)
        self.waitForRecords(self.audit, lambda rs: sum(
            r["event"] == "connection.closed" for r in rs) >= 5, "five closed records")
        second.stop()
        records = readChain(self.audit)
        events = Counter(r["event"] for r in records)
        self.assertEqual(events["connection.accepted"], successes)
        self.assertEqual(events["connection.closed"], successes)
        self.assertEqual(events["chain.started"], 1)
        self.assertEqual(events["chain.resumed"], 1)
        resumed = [r for r in records if r["event"] == "chain.resumed"][0]
        self.assertEqual(resumed["reason"], "crash")
        self.assertEqual(self.rejections(records, first.probes + second.probes),
                         {"expired": 1})
        self.assertVerifies(self.audit)
