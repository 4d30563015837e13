"""
Tests for L{securetcp._twistd.sdnotify} and for C{twistd securetcp} under
systemd: the notify datagrams (to a real C{NOTIFY_SOCKET} the test binds),
when the service sends them, and socket activation through Twisted's
C{systemd:} endpoint with C{systemd-socket-activate} as the launcher.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from typing import Any, Dict, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._twistd.listening import ListeningService
from securetcp._twistd.sdnotify import (
    SystemdNotifier,
    notifyMessage,
    socketAddress,
    watchdogSeconds,
)
from securetcp._twistd.service import SecureTCPService

from ._net import escape, freePort
from ._programs import TWISTD
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, Program, TapProcessMixin


class NotifyMessageTests(SynchronousTestCase):
    """
    The datagram, the socket address and the watchdog interval.
    """

    def test_lines(self) -> None:
        """
        L{notifyMessage} writes one C{KEY=VALUE} line per field, in order.
        """
        self.assertEqual(notifyMessage(RELOADING="1", MONOTONIC_USEC="42"),
                         b"RELOADING=1\nMONOTONIC_USEC=42\n")

    def test_newlineRefused(self) -> None:
        """
        A value with a newline would say another field: L{ValueError}.
        """
        self.assertRaises(ValueError, notifyMessage, STATUS="ok\nREADY=1")

    def test_abstractSocket(self) -> None:
        """
        A leading C{@} names an abstract socket (a leading NUL byte); a
        path stays as it is.
        """
        self.assertEqual(socketAddress("@securetcp/notify"), "\0securetcp/notify")
        self.assertEqual(socketAddress("/run/systemd/notify"), "/run/systemd/notify")

    def test_watchdogHalf(self) -> None:
        """
        The watchdog is fed every half C{WATCHDOG_USEC}, only when it is
        set, positive, and meant for this process (C{WATCHDOG_PID}).
        """
        self.assertEqual(watchdogSeconds({"WATCHDOG_USEC": "30000000"}, 7), 15.0)
        self.assertEqual(watchdogSeconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 7),
                         15.0)
        self.assertIsNone(watchdogSeconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"},
                                          7))
        self.assertIsNone(watchdogSeconds({}, 7))
        self.assertIsNone(watchdogSeconds({"WATCHDOG_USEC": "0"}, 7))
        self.assertIsNone(watchdogSeconds({"WATCHDOG_USEC": "soon"}, 7))

    def test_noSocketNoNotifier(self) -> None:
        """
        Outside systemd (no C{NOTIFY_SOCKET}, or not an absolute path or
        abstract name) there is no notifier.
        """
        self.assertIsNone(SystemdNotifier.fromEnvironment({}))
        self.assertIsNone(SystemdNotifier.fromEnvironment({"NOTIFY_SOCKET": "relative"}))
        notifier = SystemdNotifier.fromEnvironment({"NOTIFY_SOCKET": "@x",
                                                    "WATCHDOG_USEC": "2000000"})
        assert notifier is not None
        self.assertEqual((notifier.address, notifier.watchdogInterval), ("\0x", 1.0))


def _listener(test: SynchronousTestCase, abstract: bool) -> Any:
    """
    A bound C{AF_UNIX} datagram socket, closed in cleanup, and its
    C{NOTIFY_SOCKET} value.
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    test.addCleanup(s.close)
    if abstract:
        name = f"securetcp-test-{os.getpid()}-{id(test)}"
        s.bind("\0" + name)
        return s, "@" + name
    directory = tempfile.mkdtemp(prefix="stcp-")
    test.addCleanup(shutil.rmtree, directory, True)
    path = os.path.join(directory, "notify")
    s.bind(path)
    return s, path


class NotifierSocketTests(SynchronousTestCase):
    """
    L{SystemdNotifier} sends to a real datagram socket.
    """

    def test_pathSocket(self) -> None:
        """
        A datagram arrives at a socket named by a path.
        """
        s, value = _listener(self, abstract=False)
        notifier = SystemdNotifier.fromEnvironment({"NOTIFY_SOCKET": value})
        assert notifier is not None
        self.assertTrue(notifier.ready("up"))
        s.settimeout(PEER_TIMEOUT)
        self.assertEqual(s.recv(4096), b"READY=1\nSTATUS=up\n")

    def test_abstractSocket(self) -> None:
        """
        A datagram arrives at an abstract socket (C{@name}).
        """
        s, value = _listener(self, abstract=True)
        notifier = SystemdNotifier.fromEnvironment({"NOTIFY_SOCKET": value})
        assert notifier is not None
        notifier.monotonic = lambda: "123"
        self.assertTrue(notifier.reloading())
        s.settimeout(PEER_TIMEOUT)
        self.assertEqual(s.recv(4096), b"RELOADING=1\nMONOTONIC_USEC=123\nSTATUS=reloading\n")

    def test_nobodyListening(self) -> None:
        """
        With nothing bound at the address the datagram is dropped and the
        notifier says so (the service runs on).
        """
        notifier = SystemdNotifier("\0securetcp-nobody-" + str(os.getpid()))
        self.assertFalse(notifier.stopping())


class _Recorder(SystemdNotifier):
    def __init__(self, watchdogInterval: Optional[float] = None) -> None:
        super().__init__("\0unused", watchdogInterval, lambda: "99")
        self.sent: List[Dict[str, str]] = []

    def notify(self, **fields: str) -> bool:
        self.sent.append(fields)
        return True


class _LateEndpoint:
    def __init__(self) -> None:
        self.listening: Deferred[Any] = Deferred()

    def listen(self, factory: Any) -> Deferred[Any]:
        return self.listening


class _Port:
    def stopListening(self) -> None:
        return None


class ServiceNotifyTests(SynchronousTestCase):
    """
    L{SecureTCPService} with a notifier: when each message is sent.
    """

    def service(self, notifier: SystemdNotifier, listeners: int = 2) -> Any:
        clock = Clock()
        top = SecureTCPService(clock, None, watchInterval=0, notifier=notifier)
        endpoints = [_LateEndpoint() for _ in range(listeners)]
        for i, endpoint in enumerate(endpoints):
            ListeningService(endpoint, object(), f"tcp:{i}", clock).setServiceParent(top)  # type: ignore[arg-type]
        return clock, top, endpoints

    def test_readyOnceAllListen(self) -> None:
        """
        C{READY=1} is sent once every listener listens, not before.
        """
        notifier = _Recorder()
        clock, top, endpoints = self.service(notifier)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        endpoints[0].listening.callback(_Port())
        self.assertEqual(notifier.sent, [])
        endpoints[1].listening.callback(_Port())
        self.assertEqual(notifier.sent, [{"READY": "1", "STATUS": "listening on 2 endpoint(s)"}])

    def test_reloadAndStop(self) -> None:
        """
        A reload is bracketed by C{RELOADING=1} (with C{MONOTONIC_USEC})
        and C{READY=1}; stopping sends C{STOPPING=1}.
        """
        notifier = _Recorder()
        clock, top, endpoints = self.service(notifier, listeners=0)
        top.startService()
        del notifier.sent[:]
        self.assertTrue(top.reload())
        top.stopService()
        self.assertEqual(notifier.sent, [
            {"RELOADING": "1", "MONOTONIC_USEC": "99", "STATUS": "reloading"},
            {"READY": "1", "STATUS": "listening (reloaded)"},
            {"STOPPING": "1", "STATUS": "stopping"}])

    def test_watchdog(self) -> None:
        """
        With a watchdog interval, C{WATCHDOG=1} is sent at start and every
        interval on the given clock, and no more after stopping.
        """
        notifier = _Recorder(watchdogInterval=15.0)
        clock, top, endpoints = self.service(notifier, listeners=0)
        top.startService()
        clock.advance(15)
        clock.advance(15)
        top.stopService()
        clock.advance(60)
        watchdogs = [m for m in notifier.sent if m == {"WATCHDOG": "1"}]
        self.assertEqual(len(watchdogs), 3)

    def test_noNotifier(self) -> None:
        """
        Without a notifier the service starts, reloads and stops as before.
        """
        clock, top, endpoints = self.service(None, listeners=0)  # type: ignore[arg-type]
        top.startService()
        self.assertTrue(top.reload())
        top.stopService()


def _messages(s: socket.socket, until: bytes, timeout: float) -> List[bytes]:
    """
    The datagrams that arrive on C{s} until one contains C{until}
    (bounded by C{timeout}).
    """
    got: List[bytes] = []
    deadline = time.monotonic() + timeout
    while not any(until in m for m in got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {until!r} within {timeout}s; got {got}")
        s.settimeout(left)
        try:
            got.append(s.recv(4096))
        except TimeoutError:
            continue
    return got


def _fields(message: bytes) -> Dict[str, str]:
    return dict(line.split("=", 1) for line in message.decode().splitlines())


class TwistdNotifyTests(TapProcessMixin, SynchronousTestCase):
    """
    A real C{twistd -n securetcp terminate} with C{NOTIFY_SOCKET} (and
    C{WATCHDOG_USEC}) set speaks the notify protocol to the socket the
    test binds.
    """

    def test_lifecycle(self) -> None:
        """
        C{READY=1} arrives once the port accepts connections; C{WATCHDOG=1}
        keeps arriving; SIGHUP gives C{RELOADING=1} with a current
        C{MONOTONIC_USEC} then C{READY=1}; SIGTERM gives C{STOPPING=1} and
        the process ends (with status 0, or by SIGTERM as newer twistd
        re-raises it).
        """
        s, value = _listener(self, abstract=True)
        backendPort, _, _ = self.backend()
        self.environment = {"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1000000"}
        port = freePort()
        twistd = Program(self, [TWISTD, "-n", "--pidfile=", "securetcp", "terminate",
                                "--backend", f"tcp:127.0.0.1:{backendPort}",
                                "--audit-log", self.audit] + self.mtlsListen(port), "twistd")
        first = _messages(s, b"READY=1", START_TIMEOUT)
        # the port accepts connections as soon as READY=1 is there
        socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT).close()
        self.assertTrue(twistd.running, twistd.describe())
        self.exchange(port, b"ready")
        _messages(s, b"WATCHDOG=1", PEER_TIMEOUT)
        self.assertFalse([m for m in first if b"STOPPING" in m or b"RELOADING" in m])

        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        os.kill(twistd.pid, signal.SIGHUP)
        reload = [m for m in _messages(s, b"READY=1", PEER_TIMEOUT) if b"WATCHDOG" not in m]
        self.assertEqual(len(reload), 2, reload)
        reloading = _fields(reload[0])
        self.assertEqual(reloading["RELOADING"], "1")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.assertTrue(before <= int(reloading["MONOTONIC_USEC"]) <= after, reloading)
        self.assertEqual(_fields(reload[1])["READY"], "1")
        self.waitForEvent("policy.reloaded")

        os.kill(twistd.pid, signal.SIGTERM)
        _messages(s, b"STOPPING=1", PEER_TIMEOUT)
        self.assertIn(twistd.waitExit(), (0, -signal.SIGTERM), twistd.describe())


class SocketActivationTests(TapProcessMixin, SynchronousTestCase):
    """
    C{systemd-socket-activate} (systemd's own launcher) listens and starts
    C{twistd securetcp terminate} on the first connection, handing it the
    listening socket; the C{mtls:} endpoint adopts it through
    C{endpoint=systemd:domain=INET:index=0}.
    """

    def setUp(self) -> None:
        self.activate = shutil.which("systemd-socket-activate")
        if self.activate is None:
            raise SkipTest("systemd-socket-activate is not installed (Debian package systemd)")
        super().setUp()

    def test_activated(self) -> None:
        """
        A client connecting to the port systemd-socket-activate holds gets
        through the adopted mTLS listener to the backend, and the audit
        file records the connection.
        """
        backendPort, _, count = self.backend()
        port = freePort()
        listen = ("mtls:endpoint=systemd\\:domain=INET\\:index=0"
                  f":certKey={escape(self.pki.path('server.pem'))}"
                  f":privateKey={escape(self.pki.path('server.key'))}"
                  f":caCerts={escape(self.pki.path('ca.pem'))}")
        assert self.activate is not None
        # it passes on only PATH, HOME, USER and TERM, and what -E names;
        # Twisted adopts inherited sockets only with their names (--fdname)
        launcher = Program(self, [self.activate, "-l", f"127.0.0.1:{port}", "-E", "PYTHONPATH",
                                  "--fdname=securetcp",
                                  TWISTD, "-n",
                                  "--pidfile=", "securetcp", "terminate", "--listen", listen,
                                  "--backend", f"tcp:127.0.0.1:{backendPort}",
                                  "--audit-log", self.audit], "activate")
        launcher.waitFor(b"Listening on", START_TIMEOUT, "systemd-socket-activate to listen")
        peer = self.sClient(port)
        peer.send(b"activated\n")
        peer.waitFor(b"backend:activated\n", START_TIMEOUT + PEER_TIMEOUT,
                     "the answer through the activated twistd")
        peer.closeStdin()
        self.assertEqual(peer.waitExit(), 0, peer.describe())
        self.waitForEvent("connection.accepted")
        self.assertEqual(self.connectionCount(count), 1)
        self.assertTrue(launcher.running, launcher.describe())

