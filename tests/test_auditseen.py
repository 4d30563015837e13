# -*- test-case-name: tests.test_auditseen -*-
"""
Tests for L{securetcp.audit._seen} and for what an audit file writer keeps
alive: an event delivered again is recognised, yet the writer holds neither
the events an emitter makes nor the records it wrote (but the last), so that
records do not outlive the young generations of Python's garbage collector.
"""

from __future__ import annotations

import errno
import os
import weakref
from typing import Any, Dict, List

from twisted.logger import Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit._seen import AuditEvent, SeenEvents
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import AuditFiles, readChain
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.audit.writer import AuditLogObserver

from ._files import FileWrapper


class _Record(dict):  # type: ignore[type-arg]
    """A record that can be weakly referenced (a plain C{dict} cannot)."""

    __slots__ = ("__weakref__",)


def _accepted(n: int) -> _Record:
    return _Record(event="connection.accepted", connection=f"{n:016x}",
                   peer=f"127.0.0.1:{40000 + n}", time=f"2026-01-01T00:00:{n:02d}.000000Z")


def _event(record: Dict[str, Any]) -> AuditEvent:
    return AuditEvent(log_namespace=AUDIT_NAMESPACE, securetcp_audit=record)


class SeenEventsTests(SynchronousTestCase):
    """
    L{SeenEvents} recognises an event seen before, by identity.
    """

    def test_auditEventAgain(self) -> None:
        """
        An L{AuditEvent} is seen again as long as it lives; an equal one
        is another event.
        """
        seen = SeenEvents(4)
        event = _event({"event": "connection.accepted"})
        self.assertFalse(seen.again(event))
        self.assertTrue(seen.again(event))
        self.assertFalse(seen.again(AuditEvent(event)))

    def test_auditEventNotHeld(self) -> None:
        """
        Remembering an L{AuditEvent} does not keep it alive, and it is
        forgotten when it dies.
        """
        seen = SeenEvents(4)
        event = _event({"event": "connection.accepted"})
        seen.again(event)
        ref = weakref.ref(event)
        del event
        self.assertIsNone(ref())
        self.assertEqual(seen._weak, {})

    def test_plainEventsHeld(self) -> None:
        """
        A plain C{dict} event is held while remembered (its id cannot be
        reused meanwhile): the last C{bound} of them are seen again.
        """
        seen = SeenEvents(2)
        events: List[Dict[str, Any]] = [{"n": n} for n in range(3)]
        for event in events:
            self.assertFalse(seen.again(event))
        self.assertTrue(seen.again(events[2]))
        self.assertTrue(seen.again(events[1]))
        self.assertFalse(seen.again(events[0]))  # forgotten: the oldest of three

    def test_bounded(self) -> None:
        """
        At most C{bound} live L{AuditEvent}s are remembered, the oldest
        forgotten first.
        """
        seen = SeenEvents(2)
        events = [_event({"n": n}) for n in range(3)]
        for event in events:
            seen.again(event)
        self.assertEqual(len(seen._weak), 2)
        self.assertTrue(seen.again(events[2]))
        self.assertFalse(seen.again(events[0]))


class WriterHoldsLittleTests(SynchronousTestCase):
    """
    A writer reached through an emitter holds none of the events and none
    of the records but the last, and still writes each event once.
    """

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.path = os.path.join(directory, "audit.jsonl")
        files = AuditFiles()
        self.addCleanup(files.closeAll)
        self.writer = files.open(self.path, fsync="off")

    def test_emitterEventsAreAuditEvents(self) -> None:
        """
        The events an L{AuditEmitter} makes are L{AuditEvent}s: C{dict}s
        with the keys L{Logger.emit} gives.
        """
        events: List[Dict[str, Any]] = []
        AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=events.append)).emit(
            _accepted(1))
        self.assertIs(type(events[0]), AuditEvent)
        self.assertIsInstance(events[0], dict)
        self.assertEqual(events[0]["log_namespace"], AUDIT_NAMESPACE)
        self.assertIn("log_time", events[0])

    def test_recordsNotHeld(self) -> None:
        """
        After three records emitted, the writer keeps only the last alive;
        each was written once, and it can still tell of each that it was
        written.
        """
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None),
                               observers=[self.writer])
        records = [_accepted(n) for n in range(3)]
        refs = [weakref.ref(r) for r in records]
        for record in records:
            self.assertTrue(emitter.emit(record))
        self.assertEqual([self.writer.wrote(r) for r in records], [True] * 3)
        del records, record
        self.assertEqual([ref() is None for ref in refs], [True, True, False])
        self.assertEqual([r["event"] for r in readChain(self.path)],
                         ["chain.started"] + ["connection.accepted"] * 3)

    def test_twoRoutesOnce(self) -> None:
        """
        An emitter's event that reaches the writer by two routes (a
        publisher the writer observes, and the emitter's own route) is
        written once.
        """
        service = LogPublisher(self.writer)
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=service),
                               observers=[self.writer])
        for n in range(3):
            self.assertTrue(emitter.emit(_accepted(n)))
        self.assertEqual([r["event"] for r in readChain(self.path)],
                         ["chain.started"] + ["connection.accepted"] * 3)

    def test_failedRecordKnown(self) -> None:
        """
        A record whose writing failed is known as not written after another
        record was written since; a record never given is not known.
        """
        broken: List[bool] = [False]

        class Breakable(FileWrapper):
            def write(self, data: bytes) -> int:
                if broken[0]:
                    raise OSError(errno.EIO, "input/output error")
                return super().write(data)

        path = os.path.join(os.path.dirname(self.path), "breakable.jsonl")
        writer = AuditLogObserver(path, fsync="off",
                                  openFile=lambda p, mode: Breakable(open(p, mode)))
        self.addCleanup(writer.close)
        failed = _accepted(1)
        broken[0] = True
        self.assertFalse(writer.write(failed))
        broken[0] = False
        self.assertTrue(writer.write(_accepted(2)))
        self.assertIs(writer.wrote(failed), False)
        self.assertIsNone(writer.wrote(_accepted(3)))
