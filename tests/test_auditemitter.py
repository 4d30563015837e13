# -*- test-case-name: tests.test_auditemitter -*-
"""
Tests for L{securetcp.audit.emitter.AuditEmitter}, the L{IAuditSink} that
emits audit records and says whether new connections may proceed.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from twisted.logger import Logger, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from securetcp._interfaces import IAuditFile, IAuditSink
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import AuditFiles, globalAuditFiles, readChain
from securetcp.audit.records import AUDIT_NAMESPACE


@implementer(IAuditFile)
class _File:
    """
    An audit file that keeps what it observes and accepts connections as
    told, counting how often it was asked.
    """

    def __init__(self, accepting: bool = True) -> None:
        self.events: List[Dict[str, Any]] = []
        self.answer = accepting
        self.asked = 0

    def __call__(self, event: Dict[str, Any]) -> None:
        self.events.append(event)

    def accepting(self) -> bool:
        self.asked += 1
        return self.answer

    def wrote(self, record: Dict[str, Any]) -> Optional[bool]:
        return None


def _record() -> Dict[str, Any]:
    return {"event": "handshake.rejected", "peer": "10.0.0.1:5000", "reason": "unknown_ca"}


class EmitTests(SynchronousTestCase):
    """
    L{AuditEmitter.emit} sends records to its logger and its audit files.
    """

    def setUp(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.logger = Logger(namespace=AUDIT_NAMESPACE, observer=self.events.append)

    def test_interfaces(self) -> None:
        """
        L{AuditEmitter} provides L{IAuditSink}.
        """
        self.assertTrue(verifyObject(IAuditSink, AuditEmitter()))
        self.assertTrue(verifyObject(IAuditSink, AuditEmitter(self.logger, [_File()])))

    def test_toLoggerAndFiles(self) -> None:
        """
        A record goes, as one log event, to the logger's observer and to
        every audit file given: at C{warn} level for a rejection, with the
        schema version and its text form.
        """
        files = [_File(), _File()]
        AuditEmitter(self.logger, files).emit(_record())
        [event] = self.events
        self.assertEqual([f.events for f in files], [[event], [event]])
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["log_namespace"], AUDIT_NAMESPACE)
        self.assertEqual(event["securetcp_event"], "handshake.rejected")
        self.assertEqual(event["securetcp_audit"]["schema"], 1)
        self.assertEqual(formatEvent(event), "securetcp: rejected 10.0.0.1:5000: unknown_ca")

    def test_unknownEvent(self) -> None:
        """
        A record of an event the schema does not have is a L{ValueError}.
        """
        self.assertRaises(ValueError, AuditEmitter(self.logger).emit, {"event": "made.up"})
        self.assertEqual(self.events, [])

    def test_realFileOnce(self) -> None:
        """
        A writer given as an audit file, and also observing the emitter's
        logger, writes each record once.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        files = AuditFiles()
        self.addCleanup(files.closeAll)
        writer = files.open(os.path.join(directory, "audit.jsonl"), fsync="off")
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=writer), [writer])
        emitter.emit(_record())
        self.assertEqual([r["event"] for r in readChain(writer.path)],
                         ["chain.started", "handshake.rejected"])


class AcceptingTests(SynchronousTestCase):
    """
    L{AuditEmitter.accepting} consults the audit files its records reach.
    """

    def test_ownFiles(self) -> None:
        """
        Connections may proceed while every audit file given accepts them;
        each is asked every time (so each failing one is probed).
        """
        good, bad = _File(), _File(accepting=False)
        emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None),
                               [good, bad])
        self.assertFalse(emitter.accepting())
        self.assertFalse(emitter.accepting())
        self.assertEqual((good.asked, bad.asked), (2, 2))
        bad.answer = True
        self.assertTrue(emitter.accepting())
        self.assertTrue(AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                            observer=lambda e: None)).accepting())

    def test_globalFiles(self) -> None:
        """
        An emitter whose records go to the global log publisher (the
        default) also consults the writers of L{globalAuditFiles}, which
        that publisher may reach; each file once.  An emitter with its own
        logger does not.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        writer = globalAuditFiles.open(os.path.join(directory, "audit.jsonl"), fsync="off")
        self.addCleanup(globalAuditFiles.release, writer)
        default = AuditEmitter()
        self.assertIn(writer, default.consulted())
        named = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE), [writer])
        self.assertEqual([f for f in named.consulted() if f is writer], [writer])
        own = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=lambda e: None))
        self.assertNotIn(writer, own.consulted())
        self.assertIs(Logger(namespace=AUDIT_NAMESPACE).observer, globalLogPublisher)

    def test_writerIsAuditFile(self) -> None:
        """
        L{securetcp.audit.writer.AuditLogObserver} provides L{IAuditFile}:
        an emitter can be given one.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        files = AuditFiles()
        self.addCleanup(files.closeAll)
        writer = files.open(os.path.join(directory, "audit.jsonl"), fsync="off")
        self.assertTrue(verifyObject(IAuditFile, writer))
        self.assertTrue(AuditEmitter(observers=[writer]).accepting())
