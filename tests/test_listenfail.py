"""
Tests for L{securetcp._twistd.listening}: C{twistd securetcp} and
C{python -m securetcp demo} end with a non-zero status and one line naming
the endpoint when they cannot listen (a port already in use, an interface
that does not resolve), instead of running on with nothing listening.

The process tests bind a socket on 127.0.0.1 first, then start the real
program on that port and wait (bounded) for it to end.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, List

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from securetcp._twistd.listening import CannotListen, ListeningService

from ._net import escape
from ._programs import TWISTD
from ._twistd import START_TIMEOUT, Program, TapProcessMixin, auditEvents


class _Endpoint:
    """
    An endpoint whose C{listen} returns the Deferred given.
    """

    def __init__(self, result: Deferred[Any]) -> None:
        self.result = result
        self.factories: List[Any] = []

    def listen(self, factory: Any) -> Deferred[Any]:
        self.factories.append(factory)
        return self.result


class _Port:
    stopped = False

    def stopListening(self) -> None:
        self.stopped = True


class ListeningServiceTests(SynchronousTestCase):
    """
    L{ListeningService} listens when started and refuses to run without.
    """

    def setUp(self) -> None:
        self.reported: List[str] = []

    def service(self, endpoint: _Endpoint, reactor: Any = None) -> ListeningService:
        return ListeningService(endpoint, Factory.forProtocol(Protocol),  # type: ignore[arg-type]
                                "mtls:6661:interface=127.0.0.1" if reactor is None
                                else "mtls:6661", reactor, report=self.reported.append)

    def test_listens(self) -> None:
        """
        Started, the service listens with its factory; stopped, it stops
        listening.
        """
        port = _Port()
        endpoint = _Endpoint(succeed(port))
        service = self.service(endpoint)
        service.privilegedStartService()
        service.startService()
        self.assertEqual(endpoint.factories, [service.factory])
        self.assertIs(service.port, port)
        service.stopService()
        self.assertTrue(port.stopped)

    def test_failsAtStart(self) -> None:
        """
        A listen that fails at once raises L{CannotListen}, a L{SystemExit}
        with status 1 whose one-line message names the endpoint and the
        operating system's reason.
        """
        error = CannotListenError("127.0.0.1", 6661, OSError(98, "Address already in use"))
        service = self.service(_Endpoint(fail(error)))
        raised = self.assertRaises(CannotListen, service.privilegedStartService)
        self.assertIsInstance(raised, SystemExit)
        self.assertEqual(raised.code, 1)
        self.assertEqual(len(str(raised).splitlines()), 1)
        self.assertIn("cannot listen on mtls:6661:interface=127.0.0.1", str(raised))
        self.assertIn("Address already in use", str(raised))
        self.assertEqual(self.reported, [str(raised)])

    def test_failsLater(self) -> None:
        """
        A listen that fails after the reactor started stops the reactor,
        and the process then exits with status 1.
        """
        reactor = MemoryReactorClock()
        waiting: Deferred[Any] = Deferred()
        service = self.service(_Endpoint(waiting), reactor)
        service.privilegedStartService()
        service.startService()
        self.assertFalse(reactor.hasStopped)
        waiting.errback(CannotListenError("no.such.host", 6661, OSError("unknown host")))
        self.assertTrue(reactor.hasStopped)
        [(exit, args, kwargs)] = reactor.triggers["after"]["shutdown"]
        self.assertEqual((exit, args), (os._exit, (1,)))
        [line] = self.reported
        self.assertIn("cannot listen on mtls:6661", line)
        self.assertIn("unknown host", line)


class ListenFailureProcessTests(TapProcessMixin, SynchronousTestCase):
    """
    Real processes on a port already taken on 127.0.0.1, or an interface
    that does not resolve, end with status 1 and one line naming it.
    """

    def taken(self) -> int:
        """
        A port on 127.0.0.1 a socket of this test listens on.
        """
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        return int(holder.getsockname()[1])

    def twistdOn(self, listen: str, *extra: str) -> Program:
        assert TWISTD is not None
        return Program(self, [TWISTD, "-n", "--pidfile=", "securetcp", "terminate",  # type: ignore[arg-type]
                              "--listen", listen, "--backend", "tcp:127.0.0.1:1",
                              "--audit-log", self.audit, *extra], "twistd-listen")

    def mtls(self, port: int, interface: str = "127.0.0.1") -> str:
        return (f"mtls:{port}:interface={interface}"
                f":certKey={escape(self.pki.path('server.pem'))}"
                f":privateKey={escape(self.pki.path('server.key'))}"
                f":caCerts={escape(self.pki.path('ca.pem'))}")

    def assertOneLine(self, program: Program, *wanted: str) -> None:
        status = program.waitExit(START_TIMEOUT)
        self.assertEqual(status, 1, program.describe())
        lines = program.err.decode().splitlines()
        self.assertEqual(len(lines), 1, program.describe())
        for text in wanted:
            self.assertIn(text, lines[0])
        self.assertNotIn("Unhandled Error", (program.out + program.err).decode())
        self.assertNotIn("Traceback", (program.out + program.err).decode())

    def test_portInUse(self) -> None:
        """
        twistd on a port already in use exits with status 1 and one line
        on standard error naming the endpoint and the reason; its audit
        file claims no C{policy.loaded} for the listener that never
        listened.
        """
        port = self.taken()
        program = self.twistdOn(self.mtls(port))
        self.assertOneLine(program, f"cannot listen on mtls:{port}:interface=127.0.0.1",
                           "Address already in use")
        self.assertEqual(auditEvents(self.audit, "policy.loaded"), [])

    def test_portInUseWithWorkers(self) -> None:
        """
        With C{--workers 2} the parent cannot listen either: it exits with
        status 1 and one line, and starts no worker.
        """
        port = self.taken()
        program = self.twistdOn(self.mtls(port), "--workers", "2")
        self.assertOneLine(program, f"cannot listen on mtls:{port}", "Address already in use")
        self.assertNotIn(b"started worker", program.out)

    def test_unresolvableInterface(self) -> None:
        """
        An C{interface=} that does not resolve ends twistd the same way.
        """
        program = self.twistdOn(self.mtls(self.taken(), "no-such-host.invalid"))
        self.assertOneLine(program, "interface=no-such-host.invalid", "cannot listen")

    def test_demoPortInUse(self) -> None:
        """
        C{python -m securetcp demo --port P} with P taken prints the
        problem and exits with status 1 (it used to hang).
        """
        port = self.taken()
        program = Program(self, [sys.executable, "-m", "securetcp", "demo",  # type: ignore[arg-type]
                                 "--dir", os.path.join(self.workdir, "demo"),
                                 "--port", str(port)], "demo-listen")
        self.assertOneLine(program, f"cannot listen on 127.0.0.1:{port}",
                           "Address already in use")
