# -*- test-case-name: tests.test_endpointaudit_close -*-
"""
Tests for the end of an endpoint string's C{auditLog=} chain: the writer a
C{securessl:}/C{mtls:} string opens is closed, with C{chain.closed}, when
the reactor shuts down; shown on a L{MemoryReactorClock} and on a real
C{twistd securetcp terminate} stopped with SIGTERM.
"""

from __future__ import annotations

import os
from typing import Any, List

from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.file import auditLogObserver, globalAuditFiles

from ._net import escape
from ._pki import TestPKI
from ._twistd import TapProcessMixin, auditEvents, auditRecords


def shutdownTriggers(reactor: MemoryReactorClock) -> List[Any]:
    """
    The C{after shutdown} triggers C{reactor} was given.
    """
    return list(reactor.triggers.get("after", {}).get("shutdown", []))


class ShutdownTriggerTests(SynchronousTestCase):
    """
    C{auditLog=} on a reactor that records its system event triggers.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(self.base)
        self.audit = os.path.join(self.base, "audit.jsonl")
        self.reactor = MemoryReactorClock()

    def credentials(self, who: str) -> str:
        return (f":certKey={escape(self.pki.path(who + '.pem'))}"
                f":privateKey={escape(self.pki.path(who + '.key'))}"
                f":caCerts={escape(self.pki.path('ca.pem'))}"
                f":auditLog={escape(self.audit)}")

    def shutDown(self) -> None:
        for f, args, kwargs in shutdownTriggers(self.reactor):
            f(*args, **kwargs)

    def test_serverClosesAtShutdown(self) -> None:
        """
        A server string with C{auditLog=} adds one C{after shutdown}
        trigger; once it ran, the file is no longer open in the process and
        its chain ends with C{chain.closed}.
        """
        serverFromString(self.reactor, "mtls:6661:interface=127.0.0.1"
                         + self.credentials("server"))
        self.assertEqual(len(shutdownTriggers(self.reactor)), 1)
        self.assertIn(self.audit, [w.path for w in globalAuditFiles.writers()])
        self.shutDown()
        self.assertNotIn(self.audit, [w.path for w in globalAuditFiles.writers()])
        self.assertEqual(auditRecords(self.audit)[-1]["event"], "chain.closed")

    def test_lastUserCloses(self) -> None:
        """
        A server and a client string naming the same file share its writer:
        the chain is closed once, after both triggers ran, and a writer
        still used by someone else (here this test) stays open.
        """
        serverFromString(self.reactor, "mtls:6661:interface=127.0.0.1"
                         + self.credentials("server"))
        clientFromString(self.reactor, "mtls:localhost:6661" + self.credentials("client"))
        ours = auditLogObserver(self.audit)
        self.assertEqual(len(shutdownTriggers(self.reactor)), 2)
        self.shutDown()
        self.assertFalse(ours.closed)
        globalAuditFiles.release(ours)
        self.assertTrue(ours.closed)
        self.assertEqual([r["event"] for r in auditRecords(self.audit)].count("chain.closed"), 1)

    def test_noAuditLogNoTrigger(self) -> None:
        """
        Without C{auditLog=} nothing is added to the shutdown.
        """
        serverFromString(self.reactor, "mtls:6661:interface=127.0.0.1"
                         + self.credentials("server").split(":auditLog=")[0])
        self.assertEqual(shutdownTriggers(self.reactor), [])


class TwistdShutdownTests(TapProcessMixin, SynchronousTestCase):
    """
    A real C{twistd securetcp terminate} whose C{--listen} string names the
    audit file.
    """

    def test_sigtermClosesChain(self) -> None:
        """
        Stopped with SIGTERM (which C{twistd} passes on as the process's own
        end, so no C{atexit} handler runs), the process has ended the
        C{auditLog=} chain with C{chain.closed}, after the records of the
        connection it served, and C{python -m securetcp audit verify} finds
        it intact and complete.
        """
        backendPort, _backend, _count = self.backend()

        def listen(port: int) -> List[str]:
            option, value = self.mtlsListen(port)
            return [option, value + f":auditLog={escape(self.audit)}"]

        port, program = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                    listen=listen)
        self.exchange(port, b"hello")
        self.waitForEvent("connection.closed")
        program.stop()
        self.assertFalse(program.running)
        events = [r["event"] for r in auditRecords(self.audit)]
        self.assertEqual(events[-1], "chain.closed", program.describe())
        self.assertEqual(events.count("chain.closed"), 1)
        self.assertLess(events.index("connection.closed"), events.index("chain.closed"))
        self.assertEqual(len(auditEvents(self.audit, "chain.closed")), 1)
        self.assertVerifies(self.audit)

    def test_sharedWithAuditLogOption(self) -> None:
        """
        With C{--audit-log F} and C{auditLog=F} naming the same file, its
        one writer is closed once, by the last of its two users: the chain
        ends with a single C{chain.closed} and verifies.
        """
        backendPort, _backend, _count = self.backend()

        def listen(port: int) -> List[str]:
            option, value = self.mtlsListen(port)
            return [option, value + f":auditLog={escape(self.audit)}"]

        port, program = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                    "--audit-log", self.audit, listen=listen)
        self.exchange(port, b"hello")
        self.waitForEvent("connection.closed")
        program.stop()
        events = [r["event"] for r in auditRecords(self.audit)]
        self.assertEqual(events[-1], "chain.closed", program.describe())
        self.assertEqual(events.count("chain.closed"), 1)
        self.assertEqual(events.count("connection.accepted"), 1)
        self.assertVerifies(self.audit)
