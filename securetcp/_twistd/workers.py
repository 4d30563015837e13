# -*- test-case-name: tests.test_tap_config -*-
"""
C{--workers N}: N processes accept connections on the same listening
sockets.

The twistd process (worker 0) binds every TCP listener itself, then starts
N-1 worker processes (C{python -m securetcp._twistd.worker}) that run the same
configuration but adopt an inherited listening descriptor instead of
binding.  On Linux each worker gets its own C{SO_REUSEPORT} socket bound
to the same address, so the kernel spreads new connections over the
processes; elsewhere they all share the one socket.

    listeners = SharedListeners()
    endpoint = serverFromString(ListeningReactor(reactor, listeners), description)
    ...
    WorkerSupervisor(reactor, listeners, argv, count).setServiceParent(top)

Each worker writes its own audit chain (C{AUDIT.worker-K}) and tags its
records with C{worker} and C{pid}.  A worker's standard input is a pipe
from the parent: when the parent goes away, however it ends, the worker
stops.  The parent stops its workers when it stops, forwards SIGHUP to
them, and restarts a worker that dies.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import attrs
from twisted.application import service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from zope.interface import directlyProvides, providedBy

_log = Logger(namespace="securetcp.workers")

#: the first descriptor number a worker finds its listening sockets at
FIRST_FD = 3

#: C{SO_REUSEPORT} balances connections between sockets only on Linux
BALANCED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@attrs.frozen
class WorkerRole:
    """
    What a worker process is: its index (1..count-1; the parent is 0), the
    number of workers, and the descriptors of its listening sockets in
    listener order.
    """

    index: int
    count: int
    fds: Sequence[int]


def workerAuditPath(path: str, index: int) -> str:
    """
    The audit file of worker C{index}: C{audit.jsonl.worker-0}, ...
    """
    return f"{path}.worker-{index}"


@attrs.define
class _Bound:
    family: int
    interface: str
    port: int
    backlog: int
    shared: Optional[socket.socket] = None


class SharedListeners:
    """
    The TCP listeners of a set of workers.

    In the parent (C{inherited} is C{None}) C{listenTCP} binds the socket
    and remembers where; L{socketsForWorker} makes the descriptors a worker
    inherits.  In a worker, the k-th C{listenTCP} adopts the k-th inherited
    descriptor: the worker runs the same configuration, so it asks in the
    same order.
    """

    def __init__(self, inherited: Optional[Sequence[int]] = None) -> None:
        self.inherited = list(inherited) if inherited is not None else None
        self.bound: List[_Bound] = []
        self._next = 0

    def listenTCP(self, reactor: Any, port: int, factory: Any, backlog: int = 50,
                  interface: str = "") -> Any:
        if self.inherited is not None:
            return self._adopt(reactor, port, factory, interface)
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        sock = self._bind(family, interface, port, backlog)
        actual = sock.getsockname()[1]
        bound = _Bound(family, interface, actual, backlog)
        if not BALANCED:
            bound.shared = sock.dup()
        try:
            listening = reactor.adoptStreamPort(sock.fileno(), family, factory)
        finally:
            sock.close()
        self.bound.append(bound)
        return listening

    def _bind(self, family: int, interface: str, port: int, backlog: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if BALANCED:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((interface or ("::" if family == socket.AF_INET6 else ""), port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise CannotListenError(interface, port, e) from None
        return sock

    def _adopt(self, reactor: Any, port: int, factory: Any, interface: str) -> Any:
        assert self.inherited is not None
        if self._next >= len(self.inherited):
            raise CannotListenError(interface, port, OSError(
                "this worker was given fewer listening sockets than its configuration has "
                "TCP listeners"))
        fd = self.inherited[self._next]
        self._next += 1
        sock = socket.socket(fileno=fd)
        try:
            sock.setblocking(False)
            return reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        finally:
            sock.close()

    def socketsForWorker(self) -> List[socket.socket]:
        """
        The listening sockets to hand to a new worker, in listener order;
        the caller closes them once the worker has them.
        """
        sockets = []
        try:
            for bound in self.bound:
                if bound.shared is not None:
                    sockets.append(bound.shared.dup())
                else:
                    sockets.append(self._bind(bound.family, bound.interface, bound.port,
                                              bound.backlog))
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    def close(self) -> None:
        for bound in self.bound:
            if bound.shared is not None:
                bound.shared.close()
                bound.shared = None


class ListeningReactor:
    """
    A reactor that is the real one except that C{listenTCP} goes through
    L{SharedListeners}; the other ways of listening are refused, since a
    worker could not share them.
    """

    def __init__(self, reactor: Any, listeners: SharedListeners) -> None:
        self._reactor = reactor
        self._listeners = listeners
        directlyProvides(self, providedBy(reactor))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        return self._listeners.listenTCP(self._reactor, port, factory, backlog, interface)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise CannotListenError(None, None, OSError(
            "--workers shares TCP listeners only; a unix: or other listener cannot be "
            "shared between worker processes"))

    listenUNIX = listenSSL = listenUDP = adoptStreamPort = _refuse


class _WorkerProcess(ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.started = time.monotonic()
        self.ended: Deferred[None] = Deferred()
        self.pid: Optional[int] = None
        self._buffers: Dict[int, bytes] = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        self.pid = self.transport.pid  # type: ignore[union-attr]

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        buffered = self._buffers.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        self._buffers[childFD] = rest
        for line in lines:
            self._relay(childFD, line)

    def _relay(self, childFD: int, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            (_log.info if childFD == 1 else _log.warn)(
                "worker {worker} (pid {pid}): {line}", worker=self.index, pid=self.pid,
                line=text)

    def processEnded(self, reason: Any) -> None:
        for fd, rest in self._buffers.items():
            if rest:
                self._relay(fd, rest)
        self.ended.callback(None)
        self.supervisor._ended(self, reason)


class WorkerSupervisor(service.Service):
    """
    Starts workers 1..N-1 once the parent listens, relays their log lines,
    forwards SIGHUP, restarts a worker that dies (unless it died within
    L{minimumLife} seconds of starting), and stops them all when it stops.

    @ivar workers: the running L{_WorkerProcess}es, by index.
    """

    minimumLife = 2.0
    stopTimeout = 10.0

    def __init__(self, reactor: Any, listeners: SharedListeners, argv: Sequence[str],
                 count: int) -> None:
        self.reactor = reactor
        self.listeners = listeners
        self.argv = list(argv)
        self.count = count
        self.workers: Dict[int, _WorkerProcess] = {}
        #: called with the pid of each worker that ended
        self.onEnded: List[Callable[[int], None]] = []
        self._stopping = False

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        if not self.listeners.bound:
            _log.error("securetcp: --workers {n}: nothing listens on TCP here, so no worker "
                       "is started", n=self.count)
            return
        for index in range(1, self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        try:
            sockets = self.listeners.socketsForWorker()
        except OSError as e:
            _log.error("securetcp: cannot start worker {worker}: {error}", worker=index,
                       error=str(e))
            return
        childFDs: Dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        for offset, sock in enumerate(sockets):
            childFDs[FIRST_FD + offset] = sock.fileno()
        spec = {"worker": index, "workers": self.count, "argv": self.argv,
                "fds": [FIRST_FD + n for n in range(len(sockets))]}
        env = dict(os.environ)
        # the worker imports what this process imports (securetcp, --app modules)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else os.getcwd()
                                            for p in sys.path)
        process = _WorkerProcess(self, index)
        try:
            self.reactor.spawnProcess(
                process, sys.executable,
                [sys.executable, "-m", "securetcp._twistd.worker", json.dumps(spec)],
                env=env, path=os.getcwd(), childFDs=childFDs)
        finally:
            for sock in sockets:
                sock.close()
        self.workers[index] = process
        _log.info("securetcp: started worker {worker} (pid {pid})", worker=index,
                  pid=process.pid)

    def _ended(self, process: _WorkerProcess, reason: Any) -> None:
        if self.workers.get(process.index) is process:
            del self.workers[process.index]
        for ended in self.onEnded:
            if process.pid is not None:
                ended(process.pid)
        if self._stopping:
            return
        lived = time.monotonic() - process.started
        status = getattr(reason.value, "exitCode", None)
        signalled = getattr(reason.value, "signal", None)
        how = f"signal {signalled}" if signalled else f"status {status}"
        if lived < self.minimumLife:
            _log.error("securetcp: worker {worker} (pid {pid}) ended with {how} after "
                       "{lived:.1f}s; not restarting it", worker=process.index,
                       pid=process.pid, how=how, lived=lived)
            return
        _log.warn("securetcp: worker {worker} (pid {pid}) ended with {how}; restarting it",
                  worker=process.index, pid=process.pid, how=how)
        self._spawn(process.index)

    def signalAll(self, signum: int) -> None:
        for process in list(self.workers.values()):
            try:
                process.transport.signalProcess(signum)  # type: ignore[union-attr]
            except Exception:  # it ended meanwhile
                pass

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        self._stopping = True
        running = list(self.workers.values())
        for process in running:
            try:
                process.transport.closeStdin()  # type: ignore[union-attr]
            except Exception:
                pass
        self.signalAll(signal.SIGTERM)

        def kill() -> None:
            self.signalAll(signal.SIGKILL)

        killer = self.reactor.callLater(self.stopTimeout, kill)
        done = DeferredList([p.ended for p in running])

        def finished(result: Any) -> None:
            if killer.active():
                killer.cancel()
            self.listeners.close()

        done.addCallback(finished)
        return done
