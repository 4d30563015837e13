"""
Real peers run with the reactor, for L{twisted.trial.unittest.TestCase}s
over loopback: external programs (C{openssl s_client}, C{s_server},
C{curl}, C{twistd}) as L{PeerProcess}es killed after a timeout, bounded
waiting, and L{RealPeerMixin}, which serves our C{mtls:} / C{securessl:}
echo server on 127.0.0.1:0 and runs C{s_client} / C{s_server} against it.

    class Tests(RealPeerMixin, TestCase):
        @inlineCallbacks
        def test_x(self):
            port, factory, audit = yield self.listen()
            peer = yield self.sClient(port, client="client", audit=audit)
            self.assertEchoed(peer)

Never run a blocking C{subprocess.run} while a server of the test is in
the trial reactor: use L{PeerProcess} or L{runOpenSSLWithReactor}.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from securetcp import LegacyProfileWarning, buildPolicy, serverEndpoint

from ._net import freePort
from ._pki import TestPKI
from ._programs import OPENSSL, needOpenSSL
from ._recording import AuditRecorder, CountingEchoFactory

# Every wait below is bounded by one of these.
PROCESS_TIMEOUT = 15.0
SETTLE_TIMEOUT = 5.0
#: The line a real peer sends and expects echoed.
LINE = b"hello from a real peer"


# -- small asynchronous helpers ------------------------------------------


def sleep(seconds: float) -> Deferred[None]:
    """
    A L{Deferred} that fires after C{seconds} of the reactor's time.
    """
    return deferLater(reactor, seconds, lambda: None)


@inlineCallbacks
def waitUntil(condition: Callable[[], bool], timeout: float, what: str) -> Any:
    """
    Poll C{condition} with the reactor until it is true; fail after
    C{timeout} seconds, naming C{what} was awaited.
    """
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        yield sleep(0.02)


async def bounded(d: Deferred[Any], timeout: float) -> Any:
    """
    Await C{d}, cancelling it after C{timeout} seconds.
    """
    return await d.addTimeout(timeout, reactor)


def openConnections() -> List[Any]:
    """
    The TCP connections the reactor is reading from or writing to.
    """
    from twisted.internet import tcp

    selectables = set(reactor.getReaders()) | set(reactor.getWriters())
    return [s for s in selectables if isinstance(s, tcp.Connection)]


class PeerProcess(ProcessProtocol):
    """
    An external program run with the reactor.  C{stdin} is written at
    start; stdin is closed as soon as C{expect} shows up on stdout (so
    C{s_client} says goodbye cleanly), or at C{closeAfter}; the program is
    killed after C{timeout} seconds.  C{ended} fires with C{self}.
    """

    exitCode: Optional[int] = None
    killed = False

    def __init__(self, stdin: bytes = b"", expect: Optional[bytes] = None,
                 timeout: float = PROCESS_TIMEOUT, closeAfter: Optional[float] = None) -> None:
        self.stdin = stdin
        self.expect = expect
        self.timeout = timeout
        self.closeAfter = closeAfter
        self.out = b""
        self.err = b""
        self.ended: Deferred[PeerProcess] = Deferred()
        self.running = False
        self._stdinClosed = False
        self._timers: List[Any] = []

    @classmethod
    def spawn(cls, argv: Sequence[str], env: Optional[Dict[str, str]] = None,
              path: Optional[str] = None, **kwargs: Any) -> PeerProcess:
        """
        Start C{argv} (with this process's environment unless C{env}) and
        return its L{PeerProcess}; C{kwargs} go to the constructor.
        """
        proto = cls(**kwargs)
        reactor.spawnProcess(proto, argv[0], list(argv),
                             env=env if env is not None else dict(os.environ), path=path)
        return proto

    def connectionMade(self) -> None:
        self.running = True
        self._timers.append(reactor.callLater(self.timeout, self.kill))
        if self.closeAfter is not None:
            self._timers.append(reactor.callLater(self.closeAfter, self.closeStdin))
        if self.stdin:
            self.transport.write(self.stdin)
        if self.expect is None and self.closeAfter is None and not self.stdin:
            self.closeStdin()

    def closeStdin(self) -> None:
        """
        Close the program's standard input (once, while it runs).
        """
        if not self._stdinClosed and self.running:
            self._stdinClosed = True
            self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if self.expect is not None and self.expect in self.out:
            self.closeStdin()

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def kill(self, signal: str = "KILL") -> None:
        """
        Send the program C{signal} if it is still running.
        """
        if self.running:
            self.killed = self.killed or signal == "KILL"
            try:
                self.transport.signalProcess(signal)
            except Exception:  # pragma: no cover - already gone
                pass

    @inlineCallbacks
    def stop(self) -> Any:
        """
        Terminate the program (TERM, then KILL) and wait for it to end.
        """
        if self.running:
            self.kill("TERM")
            timer = reactor.callLater(3, self.kill)
            yield self.ended
            if timer.active():
                timer.cancel()

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        if isinstance(reason.value, (ProcessDone, ProcessTerminated)):
            self.exitCode = reason.value.exitCode
        self.ended.callback(self)

    def describe(self) -> str:
        """
        How the program ended and what it wrote, for failure messages.
        """
        return (f"exit {self.exitCode} killed={self.killed}\nstdout: "
                f"{self.out.decode('utf-8', 'replace')}\nstderr: "
                f"{self.err.decode('utf-8', 'replace')}")


async def runOpenSSLWithReactor(*argv: str) -> None:
    """
    Run the C{openssl} binary with the reactor (never blocking it, since a
    server of the test is serving meanwhile); fail with its output if it
    fails.
    """
    assert OPENSSL is not None
    process = PeerProcess.spawn([OPENSSL, *argv], timeout=PROCESS_TIMEOUT)
    await process.ended
    if process.exitCode != 0:
        raise AssertionError(f"openssl {' '.join(argv)} failed:\n{process.describe()}")


class LineClient(Protocol):
    """
    A client application: C{echoed} fires with C{True} when L{LINE} comes
    back, with C{False} if the connection is lost first; C{lost} fires (and
    C{closed} is set) when it is lost.
    """

    closed = False

    def __init__(self) -> None:
        self.data = b""
        self.echoed: Deferred[bool] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if LINE + b"\n" in self.data and not self.echoed.called:
            self.echoed.callback(True)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.closed = True
        if not self.echoed.called:
            self.echoed.callback(False)
        if not self.lost.called:
            self.lost.callback(None)


class LineClientFactory(Factory):
    """
    Builds L{LineClient}s.
    """

    noisy = False

    def buildProtocol(self, addr: Any) -> LineClient:
        protocol = LineClient()
        protocol.factory = self
        return protocol


class RealPeerMixin:
    """
    Shared fixtures: a PKI per test, our server in-process, s_client and
    s_server runners, and waiting for connections to settle.
    """

    pki: TestPKI

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.addCleanup(self._settle)

    @inlineCallbacks
    def _settle(self) -> Any:
        """
        Wait (bounded) until no TCP connection is left in the reactor, so
        the test ends with a clean reactor.
        """
        yield waitUntil(lambda: not openConnections(), SETTLE_TIMEOUT,
                        "every TCP connection to close")
        yield sleep(0)

    # -- our server -------------------------------------------------------

    @inlineCallbacks
    def listen(self, mutual: bool = True, **options: Any) -> Any:
        """
        Our server endpoint on 127.0.0.1:0 with an echo application.

        @return: C{(port number, CountingEchoFactory, AuditRecorder)}
        """
        options.setdefault("certKey", self.pki.path("server.pem"))
        options.setdefault("privateKey", self.pki.path("server.key"))
        if mutual or options.get("clientAuth"):
            options.setdefault("caCerts", self.pki.path("ca.pem"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LegacyProfileWarning)
            policy = buildPolicy(**options)
        audit = AuditRecorder()
        factory = CountingEchoFactory()
        inner = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        endpoint = serverEndpoint(reactor, inner, policy, mutual=mutual,
                                  emitter=audit.emitter())
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        return port.getHost().port, factory, audit

    # -- openssl s_client -------------------------------------------------

    @inlineCallbacks
    def sClient(self, port: int, *args: str, client: Optional[str] = None,
                audit: Optional[AuditRecorder] = None) -> Any:
        """
        Run C{openssl s_client} against 127.0.0.1:C{port}, presenting
        C{client}'s certificate if given, send L{LINE} and wait for it to
        exit (it closes once the line is echoed, or when the server drops
        it).  With C{audit}, also wait until the server has finished with
        the connection.
        """
        before = audit.finished() if audit is not None else 0
        argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}",
                "-servername", "localhost", "-CAfile", self.pki.path("ca.pem"),
                "-verify_return_error", "-nocommands", "-brief"]
        if client is not None:
            argv += ["-cert", self.pki.path(f"{client}.pem"),
                     "-key", self.pki.path(f"{client}.key")]
        argv += list(args)
        peer = PeerProcess.spawn(argv, stdin=LINE + b"\n", expect=LINE + b"\n")
        yield peer.ended
        self.assertFalse(peer.killed, f"s_client {args} timed out:\n{peer.describe()}")
        if audit is not None:
            yield waitUntil(lambda: audit.finished() > before, SETTLE_TIMEOUT,
                            "the server's audit event")
        return peer

    def assertEchoed(self, peer: PeerProcess) -> None:
        """
        Fail unless C{peer} received L{LINE} back.
        """
        self.assertIn(LINE + b"\n", peer.out, peer.describe())

    def assertNotEchoed(self, peer: PeerProcess) -> None:
        """
        Fail if C{peer} received L{LINE} back.
        """
        self.assertNotIn(LINE, peer.out, peer.describe())

    # -- openssl s_server -------------------------------------------------

    @inlineCallbacks
    def sServer(self, name: str, *args: str) -> Any:
        """
        Start C{openssl s_server} with the certificate C{name} on a free
        port of 127.0.0.1, wait until it accepts, and stop it in cleanup.

        @return: the port number and the L{PeerProcess}.
        """
        needOpenSSL()
        for _attempt in range(3):
            port = freePort()
            argv = [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}",
                    "-cert", self.pki.path(f"{name}.pem"),
                    "-key", self.pki.path(f"{name}.key")] + list(args)
            server = PeerProcess.spawn(argv, timeout=50, expect=None, closeAfter=50)
            self.addCleanup(server.stop)
            yield waitUntil(lambda server=server: b"ACCEPT" in server.out or not server.running,
                            PROCESS_TIMEOUT, "openssl s_server to accept")
            if server.running:
                return port, server
        raise AssertionError(f"openssl s_server did not start:\n{server.describe()}")
