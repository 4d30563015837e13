# -*- test-case-name: tests.test_auditexport,tests.test_auditexport_rsyslog -*-
"""
L{AuditSyslogExport}: the sending half of the audit export (see
L{securetcp.auditexport}, which builds it): the connection to the
collector, reconnecting with backoff, and delivery in order, at least
once, from the disk queue that an L{ExportFeed} fills::

    export = AuditSyslogExport(endpoint, feed, writer, reactor)
    export.startService()

A message counts as delivered when it was written to a connection that
then stayed up for C{settle} seconds, with the connection's
C{TCP_USER_TIMEOUT} at 80% of C{settle} (so the collector's TCP stack
acknowledged it); whatever was written but not counted delivered is
written again, in order, after the next connect.
"""

from __future__ import annotations

import collections
import socket
from typing import Any, Callable, Deque, Optional, Tuple

from twisted.application import service
from twisted.internet.interfaces import (
    IPushProducer,
    IReactorThreads,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp.audit.exportfeed import ExportFeed
from securetcp.audit.file import globalAuditFiles
from securetcp.audit.queue import DiskQueue, Position

__all__ = ["AuditSyslogExport"]

_log = Logger(namespace="securetcp.auditexport")


@implementer(IPushProducer)
class _Sender(Protocol):
    """
    One connection to the collector: writes what the export gives it, and
    stops while the transport's buffer is full (a streaming producer).
    """

    paused = False

    def __init__(self, export: AuditSyslogExport) -> None:
        self.export = export

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.registerProducer(self, True)
        self.export._connected(self)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.export._wake()

    def stopProducing(self) -> None:
        self.paused = True

    def dataReceived(self, data: bytes) -> None:
        pass  # a syslog collector sends nothing back

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.export._lost(self, reason)


class AuditSyslogExport(service.Service):
    """
    Sends a disk queue to a collector, in order, reconnecting with
    exponential backoff (C{minDelay} doubling up to C{maxDelay}, back to
    C{minDelay} once a connection has delivered); an L{ExportFeed} fills
    the queue from the audit file.

    @ivar connected: whether a connection to the collector is up.
    @ivar delivered: messages counted delivered since start.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, feed: ExportFeed, writer: Any,
                 clock: IReactorTime, *, settle: float = 5.0, window: int = 16 * 2**20,
                 minDelay: float = 0.5, maxDelay: float = 60.0, batch: float = 0.05,
                 threads: Optional[IReactorThreads] = None) -> None:
        """
        @param writer: the audit file's writer
            (L{securetcp.audit.writer.AuditLogObserver}), or the path of
            the file (its writer is taken from L{globalAuditFiles} while
            the service runs).
        @param batch: seconds a queued record may wait for others to be
            written with it.
        @param threads: the reactor, to hand it what a writer does in
            another thread (a timed checkpoint is written in a timer
            thread); without it, everything must happen in one thread.
        @param window: bytes written but not yet counted delivered, at most
            (what a broken connection sends again); the transport's own
            buffer is kept small besides (the sender is its producer).
        """
        self.endpoint = endpoint
        self.feed = feed
        self.queue: DiskQueue = feed.queue
        self._writer = writer
        self._opened: Any = None
        self.clock = clock
        self.settle = settle
        self.window = window
        self.batch = batch
        self._threads = threads
        self.minDelay = minDelay
        self.maxDelay = maxDelay
        self.delay = minDelay
        self.connected = False
        self.delivered = 0
        #: the TCP_USER_TIMEOUT (ms) of the connection, if one could be set
        self.userTimeout: Optional[int] = None
        self._sender: Optional[_Sender] = None
        self._sent: Position = self.queue.acked
        self._inFlight: Deque[Tuple[Position, int, int, float]] = collections.deque()
        self._inFlightBytes = 0
        self._attempt: Any = None
        self._connecting: Any = None
        self._pumping: Any = None
        self._confirming: Any = None
        self._lastProblem: Optional[str] = None
        self._lastConfirm = float("-inf")

    # -- the service ------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        writer = self._writer
        if isinstance(writer, str):
            writer = self._opened = globalAuditFiles.open(writer)
        self.feed.start(writer, onQueued=lambda: self._inReactor(self._wake),
                        later=self._later)
        self._connect()

    def stopService(self) -> Any:
        super().stopService()
        self.feed.stop()
        if self._opened is not None:
            globalAuditFiles.release(self._opened)
            self._opened = None
        for call in (self._attempt, self._pumping, self._confirming):
            if call is not None and call.active():
                call.cancel()
        self._attempt = self._pumping = self._confirming = None
        if self._connecting is not None:
            self._connecting.cancel()  # a connection being made is abandoned
        sender, self._sender = self._sender, None
        self.connected = False
        self._inFlight.clear()
        self._inFlightBytes = 0
        if sender is not None and sender.transport is not None:
            sender.transport.loseConnection()
        self.queue.close()

    def _inReactor(self, call: Callable[..., Any], *args: Any) -> None:
        """
        Call C{call} now if this is the reactor's thread, else have the
        reactor call it.
        """
        if (self._threads is not None and threadable.ioThread is not None
                and not threadable.isInIOThread()):
            self._threads.callFromThread(call, *args)
        else:
            call(*args)

    def _later(self, call: Callable[..., Any], *args: Any) -> None:
        self._inReactor(self.clock.callLater, 0, call, *args)

    # -- connecting -------------------------------------------------------

    def _connect(self) -> None:
        self._attempt = None
        if not self.running:
            return
        factory = Factory.forProtocol(lambda: _Sender(self))
        d = self._connecting = self.endpoint.connect(factory)
        d.addBoth(self._attempted)
        d.addErrback(self._failed)

    def _attempted(self, result: Any) -> Any:
        self._connecting = None
        return result

    def _failed(self, reason: Failure) -> None:
        if not self.running:
            return  # cancelled by stopService
        self._problem(f"cannot connect: {reason.getErrorMessage()}")
        self._retry()

    def _problem(self, problem: str) -> None:
        if problem != self._lastProblem:
            _log.warn("securetcp audit export to {collector}: {problem}; {pending} records "
                      "queued, retrying", collector=self.feed.collector, problem=problem,
                      pending=self.queue.pending)
        self._lastProblem = problem

    def _retry(self) -> None:
        if not self.running or self._attempt is not None:
            return
        self._attempt = self.clock.callLater(self.delay, self._connect)
        self.delay = min(self.delay * 2, self.maxDelay)

    def _connected(self, sender: _Sender) -> None:
        if not self.running:
            assert sender.transport is not None
            sender.transport.loseConnection()
            return
        if self._lastProblem is not None:
            _log.info("securetcp audit export to {collector}: connected; sending {pending} "
                      "queued records", collector=self.feed.collector,
                      pending=self.queue.pending)
        self._lastProblem = None
        self._sender, self.connected = sender, True
        self.userTimeout = _limitUnacknowledged(sender.transport, self.settle)
        self._sent = self.queue.acked
        self._pump()

    def _lost(self, sender: _Sender, reason: Failure) -> None:
        if sender is not self._sender:
            return
        self._sender, self.connected = None, False
        self._inFlight.clear()  # not counted delivered: sent again
        self._inFlightBytes = 0
        self._problem(f"connection lost: {reason.getErrorMessage()}")
        self._retry()

    # -- sending ----------------------------------------------------------

    def _wake(self) -> None:
        """
        Something was queued (or the transport can take more): write it
        within C{batch} seconds, with whatever else is queued by then, as
        one write (one TLS record, one system call) rather than one each.
        """
        if self.connected and self._pumping is None:
            self._pumping = self.clock.callLater(self.batch, self._pump)

    def _pump(self) -> None:
        """
        Write what is queued after what was written, up to the window.
        """
        self._pumping = None
        while (self._sender is not None and not self._sender.paused
               and self._inFlightBytes < self.window):
            frames = self.queue.read(self._sent, min(65536, self.window))
            if not frames:
                break
            data = b"".join(frame for _, frame in frames)
            assert self._sender.transport is not None
            self._sender.transport.write(data)
            self._sent = frames[-1][0]
            self._inFlight.append((self._sent, len(frames), len(data), self.clock.seconds()))
            self._inFlightBytes += len(data)
        self._scheduleConfirm()

    def _scheduleConfirm(self) -> None:
        """
        Confirm when the oldest write has settled, and at most once a
        second (each confirmation rewrites the queue's C{acked} file).
        """
        if self._inFlight and self._confirming is None:
            due = max(self._inFlight[0][3] + self.settle, self._lastConfirm + 1.0)
            self._confirming = self.clock.callLater(max(due - self.clock.seconds(), 0),
                                                    self._confirm)

    def _confirm(self) -> None:
        """
        Count delivered what was written C{settle} seconds ago or more on
        the connection that is still up.
        """
        self._confirming = None
        now = self._lastConfirm = self.clock.seconds()
        position, count = None, 0
        while self._inFlight and self._inFlight[0][3] + self.settle <= now:
            position, frames, size, _ = self._inFlight.popleft()
            self._inFlightBytes -= size
            count += frames
        if position is not None:
            self.queue.acknowledge(position, count)
            self.delivered += count
            # a connection that delivers: the next failure retries soon again
            # (one that breaks before it does keeps backing off)
            self.delay = self.minDelay
        self._pump()


def _limitUnacknowledged(transport: Any, settle: float) -> Optional[int]:
    """
    Make the TCP connection under C{transport} (below TLS and the gate)
    break when data it sent stays unacknowledged by the collector's TCP
    stack for 80% of C{settle} (C{TCP_USER_TIMEOUT}, Linux), so a
    connection still up C{settle} seconds after a write had that write
    acknowledged.

    @return: the timeout set, in milliseconds; C{None} where it cannot be.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    for _ in range(6):
        handle = getattr(transport, "socket", None)
        if isinstance(handle, socket.socket):
            if option is None:
                return None
            milliseconds = max(int(settle * 800), 100)
            try:
                handle.setsockopt(socket.IPPROTO_TCP, option, milliseconds)
            except OSError:
                return None
            return milliseconds
        transport = getattr(transport, "transport", None)
    return None
