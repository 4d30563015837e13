# -*- test-case-name: tests.test_auditfiles -*-
"""
Tests for L{securetcp.audit.file}: who owns an audit file's writer.  One
writer per file, shared by everyone who names it; options are never
ignored; a second writer for a file fails at start; one event is written
once.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections import Counter
from typing import Any, Dict, List

from twisted.logger import Logger, LogLevel, LogPublisher, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import AuditFiles, auditLogObserver, globalAuditFiles, readChain
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.audit.verify import verifyFiles
from securetcp.audit.writer import AuditLogObserver
from securetcp.errors import AuditLogError


def _accepted(n: int) -> Dict[str, Any]:
    return {"event": "connection.accepted", "connection": f"{n:016x}",
            "peer": f"127.0.0.1:{40000 + n}"}


class _Files(SynchronousTestCase):
    """
    A fresh directory for audit files, and an L{AuditFiles} closed at
    cleanup.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "audit.jsonl")
        self.files = AuditFiles()
        self.addCleanup(self.files.closeAll)

    def events(self) -> Counter[str]:
        return Counter(r["event"] for r in readChain(self.path))


class SharingTests(_Files):
    """
    Everyone who names a file through one L{AuditFiles} gets its one writer.
    """

    def test_sameWriter(self) -> None:
        """
        The same file, named again (with the same options, with none, or by
        another spelling of its path), gives the same writer; the file has
        one chain.
        """
        first = self.files.open(self.path, fsync="off")
        self.assertIs(self.files.open(self.path, fsync="off"), first)
        self.assertIs(self.files.open(self.path), first)
        self.assertIs(self.files.open(os.path.join(self.directory, ".", "audit.jsonl")), first)
        os.symlink(self.path, os.path.join(self.directory, "link.jsonl"))
        self.assertIs(self.files.open(os.path.join(self.directory, "link.jsonl")), first)
        self.assertEqual(self.files.writers(), [first])
        self.assertEqual(self.events(), {"chain.started": 1})

    def test_eachEventOnce(self) -> None:
        """
        An event that reaches the shared writer by two routes (the global
        log publisher, as twistd's C{--audit-log} observes it, and an
        endpoint's own C{auditLog=} route) is written once.
        """
        writer = self.files.open(self.path, fsync="off")
        service = LogPublisher(writer)  # --audit-log: observes every audit event
        endpoint = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                       observer=LogPublisher(service, writer)))
        for n in range(5):
            endpoint.emit(_accepted(n))
        AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=service)).emit(_accepted(9))
        self.assertEqual(self.events(), {"chain.started": 1, "connection.accepted": 6})
        self.assertEqual(len({r["connection"] for r in readChain(self.path)[1:]}), 6)
        self.assertTrue(verifyFiles([self.path]).ok)

    def test_sameEventTwiceInARow(self) -> None:
        """
        The same event delivered twice in a row is written once; two events
        with equal records are two records.
        """
        writer = self.files.open(self.path, fsync="off")
        event = {"log_namespace": AUDIT_NAMESPACE, "securetcp_audit": _accepted(1)}
        writer(event)
        writer(event)
        writer(dict(event))
        self.assertEqual(self.events(), {"chain.started": 1, "connection.accepted": 2})

    def test_releaseClosesAfterLastUser(self) -> None:
        """
        The writer stays open until each caller of C{open} has released it.
        """
        first = self.files.open(self.path, fsync="off")
        self.files.open(self.path)
        self.files.release(first)
        self.assertFalse(first.closed)
        self.assertTrue(first.write(_accepted(1)))
        self.files.release(first)
        self.assertTrue(first.closed)
        self.assertEqual(self.files.writers(), [])

    def test_closedByOwner(self) -> None:
        """
        After its writer was closed, naming the file opens a new writer,
        which continues the chain.
        """
        first = self.files.open(self.path, fsync="off")
        first.close()
        second = self.files.open(self.path, fsync="off")
        self.assertIsNot(second, first)
        self.assertEqual(readChain(self.path)[-1]["event"], "chain.resumed")

    def test_auditLogObserverShares(self) -> None:
        """
        L{auditLogObserver} gives the writer of L{globalAuditFiles}: the
        same one for the same file.
        """
        writer = auditLogObserver(self.path, fsync="off")
        self.addCleanup(globalAuditFiles.release, writer)
        again = auditLogObserver(self.path)
        self.addCleanup(globalAuditFiles.release, again)
        self.assertIs(again, writer)
        self.assertIn(writer, globalAuditFiles.writers())


class ConflictTests(_Files):
    """
    Options are never ignored: asking for a file with options other than
    those it is open with fails at once, naming the file and the fix.
    """

    def test_conflictingOption(self) -> None:
        """
        A file open with C{fsync="interval"} asked for with
        C{fsync="always"} is an L{AuditLogError} naming the file, both
        values and the fix; the writer keeps its options.
        """
        writer = self.files.open(self.path)
        error = self.assertRaises(AuditLogError, self.files.open, self.path, fsync="always")
        self.assertEqual(error.path, self.path)
        self.assertIn(self.path, str(error))
        self.assertIn("fsync='interval'", str(error))
        self.assertIn("fsync='always'", str(error))
        self.assertIn("same options", error.fix)
        self.assertEqual(writer.fsync, "interval")

    def test_globalConflict(self) -> None:
        """
        L{auditLogObserver} refuses a second call with other options (it
        used to return the first writer, silently ignoring them).
        """
        writer = auditLogObserver(self.path, fsync="off")
        self.addCleanup(globalAuditFiles.release, writer)
        error = self.assertRaises(AuditLogError, auditLogObserver, self.path, fsync="always")
        self.assertIn("fsync='off'", str(error))

    def test_eachOption(self) -> None:
        """
        Every option is compared; the same values are accepted.
        """
        options: Dict[str, Any] = dict(fsync="off", fsyncInterval=2.0, maxBytes=8192,
                                       daily=True, onFailure="continue", key=b"k")
        writer = self.files.open(self.path, **options)
        self.assertIs(self.files.open(self.path, **options), writer)
        for name, other in (("fsync", "always"), ("fsyncInterval", 1.0), ("maxBytes", None),
                            ("daily", False), ("onFailure", "refuse"), ("key", b"other")):
            error = self.assertRaises(AuditLogError, self.files.open, self.path, **{name: other})
            self.assertIn("already open", str(error), name)

    def test_keyNotShown(self) -> None:
        """
        A conflicting HMAC key is reported without either key.
        """
        self.files.open(self.path, key=b"secret one")
        error = self.assertRaises(AuditLogError, self.files.open, self.path, key=b"secret two")
        self.assertNotIn("secret", str(error))
        self.assertIn("an HMAC key", str(error))
        error = self.assertRaises(AuditLogError, self.files.open, self.path, key=None)
        self.assertIn("no HMAC key", str(error))

    def test_unknownOption(self) -> None:
        """
        An option that does not exist is a L{TypeError} naming it.
        """
        error = self.assertRaises(TypeError, self.files.open, self.path, fsink="off")
        self.assertIn("fsink", str(error))


class SecondWriterTests(_Files):
    """
    A file has one writer: a second one, not shared through the same
    L{AuditFiles}, fails at start and leaves the file alone.
    """

    def assertRefused(self, error: AuditLogError) -> None:
        self.assertEqual(error.path, self.path)
        self.assertIn("another audit log writer", str(error))
        self.assertIn("share one writer", error.fix)

    def test_directWriter(self) -> None:
        """
        An L{AuditLogObserver} built directly for a file that a writer has
        open is refused with an L{AuditLogError} naming the file and the
        fix; the file is not touched.  Once the first writer is closed a new
        one can open it.
        """
        first = self.files.open(self.path, fsync="off")
        first.write(_accepted(1))
        with open(self.path, "rb") as f:
            before = f.read()
        self.assertRefused(self.assertRaises(AuditLogError, AuditLogObserver, self.path))
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)
        first.close()
        AuditLogObserver(self.path, fsync="off").close()
        self.assertTrue(verifyFiles([self.path]).ok)

    def test_twoOwners(self) -> None:
        """
        Two L{AuditFiles} cannot both write one file.
        """
        self.files.open(self.path)
        other = AuditFiles()
        self.addCleanup(other.closeAll)
        self.assertRefused(self.assertRaises(AuditLogError, other.open, self.path))

    def test_afterRotation(self) -> None:
        """
        After a rotation the writer has the new file, and no other writer
        can open it.
        """
        writer = self.files.open(self.path, fsync="off", maxBytes=4096)
        for n in range(60):
            writer.write(_accepted(n))
        self.assertEqual(readChain(self.path)[0]["event"], "chain.rotated")
        self.assertRefused(self.assertRaises(AuditLogError, AuditLogObserver, self.path))

    def test_reopenAfterClose(self) -> None:
        """
        A closed writer given a record again reopens its file; if another
        writer has the file meanwhile, the record is not written (no second
        chain in one file) and the loss is logged as critical.
        """
        logged: List[Dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        first = AuditLogObserver(self.path, fsync="off", onFailure="continue")
        first.close()
        self.assertTrue(first.write(_accepted(1)))
        self.assertFalse(first.closed)
        first.close()
        second = AuditLogObserver(self.path, fsync="off")
        self.addCleanup(second.close)
        self.assertFalse(first.write(_accepted(2)))
        self.assertEqual(first.lost, 1)
        critical = [e for e in logged if e.get("log_level") == LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertTrue(verifyFiles([self.path]).ok)

    def test_unwritableDirectory(self) -> None:
        """
        A file that cannot be created is an L{AuditLogError} naming it.
        """
        if os.getuid() != 0:
            os.chmod(self.directory, 0o500)
            self.addCleanup(os.chmod, self.directory, 0o700)
            expected = errno.EACCES
        else:
            # root writes through permissions, not into an immutable directory
            chattr = shutil.which("chattr")
            if chattr is None or subprocess.run([chattr, "+i", self.directory],
                                                capture_output=True).returncode != 0:
                self.skipTest("as root, an unwritable directory needs chattr +i, which this "
                              "filesystem or machine does not allow")
            self.addCleanup(subprocess.run, [chattr, "-i", self.directory], capture_output=True)
            expected = errno.EPERM
        error = self.assertRaises(AuditLogError, self.files.open, self.path)
        self.assertIn(os.strerror(expected), str(error))
        self.assertIn(self.path, str(error))
