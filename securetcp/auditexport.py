# -*- test-case-name: tests.test_auditexport,tests.test_auditexport_rsyslog -*-
"""
The audit export: the sealed records of a local audit file, sent as RFC
5424 syslog messages to a collector (rsyslog, syslog-ng, a SIEM, an IHE
ATNA Audit Record Repository) over mutually authenticated TLS (RFC 5425)
or plain TCP (RFC 6587, for a local relay), with a disk queue in between
so that nothing is lost while the collector is down::

    from securetcp import auditLogObserver, auditSyslogExport

    writer = auditLogObserver("/var/log/securetcp/audit.jsonl")
    export = auditSyslogExport(reactor, writer, "tls://siem.example:6514",
                               policyFile="/etc/securetcp/syslog-client.toml",
                               queueDir="/var/spool/securetcp/export")
    export.setServiceParent(application)      # an IService

The TLS connection is a L{securetcp.endpoints.SecureClientEndpoint} under
the client policy file: it presents the node's certificate (the collector
authenticates the node, as IHE ITI-19 asks), verifies the collector's
chain and host name, under the NIST profile unless the file says
otherwise.  Its refusals are audited like any other handshake.

Delivery is at least once, in order.  TCP tells the sender nothing about
what the collector did with the bytes, so a message counts as delivered
when it was written to a connection that then stayed up for C{settle}
seconds (default 5), and that connection's C{TCP_USER_TIMEOUT} (Linux) is
set to 80% of C{settle}, so it would have broken had the collector's TCP
stack not acknowledged the write by then.  A collector that stops, crashes,
resets or vanishes within that time gets the messages again after the next
connect, from the first one not counted delivered.  The collector drops
the duplicates by the C{seq} and C{hash} every message carries.
"""

from __future__ import annotations

import collections
import os
import re
import socket
from typing import Any, Deque, Optional, Tuple

from twisted.application import service
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IPushProducer, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp._interfaces import IAuditSink
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.exportfeed import ExportFeed, MessageFormat, atnaFormat, jsonFormat
from securetcp.audit.file import globalAuditFiles
from securetcp.audit.queue import DiskQueue, Position
from securetcp.audit.syslog import SyslogIdentity, validNodeId
from securetcp.config import loadPolicyFile
from securetcp.endpoints import clientEndpoint
from securetcp.errors import AuditExportError, PolicyError

__all__ = ["FORMATS", "AuditSyslogExport", "auditSyslogExport", "parseCollector"]

_log = Logger(namespace="securetcp.auditexport")

#: The formats of the MSG part (see L{securetcp.audit.syslog}).
FORMATS = ("json", "atna")

_URL = re.compile(r"(tls|tcp)://(\[[0-9a-fA-F:.]+\]|[^:/\[\]\s]+):(\d{1,5})\Z")


def parseCollector(url: str, argument: str = "--audit-syslog") -> Tuple[str, str, int]:
    """
    The scheme (C{tls} or C{tcp}), host and port of a collector address
    C{tls://HOST:PORT} or C{tcp://HOST:PORT} (an IPv6 address in brackets).

    @raise AuditExportError: naming C{argument}, for anything else.
    """
    found = _URL.match(url or "")
    if found is None or not 0 < int(found.group(3)) < 65536:
        raise AuditExportError(argument, url, "is not a collector address",
                               "write tls://HOST:PORT (syslog over TLS, RFC 5425, usually "
                               "port 6514) or tcp://HOST:PORT (plain TCP to a local relay)")
    return found.group(1), found.group(2).strip("[]"), int(found.group(3))


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
                 minDelay: float = 0.5, maxDelay: float = 60.0, batch: float = 0.05) -> None:
        """
        @param writer: the audit file's writer
            (L{securetcp.audit.writer.AuditLogObserver}), or the path of
            the file (its writer is taken from L{globalAuditFiles} while
            the service runs).
        @param batch: seconds a queued record may wait for others to be
            written with it.
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
        self.feed.start(writer, onQueued=self._wake)
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
        sender, self._sender = self._sender, None
        self.connected = False
        self._inFlight.clear()
        self._inFlightBytes = 0
        if sender is not None and sender.transport is not None:
            sender.transport.loseConnection()
        self.queue.close()

    # -- connecting -------------------------------------------------------

    def _connect(self) -> None:
        self._attempt = None
        if not self.running:
            return
        factory = Factory.forProtocol(lambda: _Sender(self))
        d = self.endpoint.connect(factory)
        d.addErrback(self._failed)

    def _failed(self, reason: Failure) -> None:
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


def _formatFor(name: str, identity: SyslogIdentity, sourceId: str,
               siteId: Optional[str]) -> MessageFormat:
    if name == "json":
        return jsonFormat(identity)
    return atnaFormat(identity, sourceId, siteId)


def collectorEndpoint(reactor: Any, url: str, policyFile: Optional[str],
                      emitter: IAuditSink, clock: IReactorTime) -> IStreamClientEndpoint:
    """
    The client endpoint to the collector C{url}: over TLS, a
    L{securetcp.endpoints.SecureClientEndpoint} under C{policyFile} that
    presents the node's certificate and checks the collector's host name.

    @raise AuditExportError: naming the argument and the fix.
    """
    scheme, host, port = parseCollector(url)
    inner = HostnameEndpoint(reactor, host.encode("idna") if not _isAddress(host) else host,
                             port, timeout=10)
    if scheme == "tcp":
        if policyFile is not None:
            raise AuditExportError("--audit-syslog-policy", policyFile,
                                   "a client policy needs a tls:// collector",
                                   f"write tls://{host}:{port}, or give no policy")
        return inner
    if policyFile is None:
        raise AuditExportError("--audit-syslog-policy", None,
                               "a tls:// collector needs a client policy file",
                               "give a TOML policy with certKey, privateKey and caCerts: "
                               "the node's certificate and the collector's CA")
    try:
        policy = loadPolicyFile(policyFile)
        return clientEndpoint(reactor, inner, policy, hostname=host, mutual=True,
                              clock=clock, emitter=emitter)
    except PolicyError as e:
        raise AuditExportError("--audit-syslog-policy", policyFile, str(e),
                               "fix the client policy file") from None


def _isAddress(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def auditSyslogExport(reactor: Any, writer: Any, collector: str, *,
                      policyFile: Optional[str] = None, format: str = "json",
                      node: Optional[str] = None, queueDir: str,
                      queueBytes: int = 64 * 2**20, emitter: Optional[IAuditSink] = None,
                      clock: Optional[IReactorTime] = None,
                      sourceId: Optional[str] = None, siteId: Optional[str] = None,
                      **tuning: Any) -> AuditSyslogExport:
    """
    The export of the audit file of C{writer} (its writer, or its path) to
    C{collector} (C{tls://HOST:PORT} or C{tcp://HOST:PORT}), as a service.

    @param policyFile: the client policy file (TOML: C{certKey},
        C{privateKey}, C{caCerts}, ...); required for C{tls://}.
    @param format: C{json} or C{atna}.
    @param node: the node id the collector groups records by (default:
        this host's name); every audit file sending to one collector needs
        its own.
    @param queueDir: the disk queue's directory (one per exported file).
    @param queueBytes: the queue's bound in bytes.
    @param emitter: where the export's own records go (C{export.dropped},
        the TLS connection's records); by default the global log publisher.
    @param sourceId: the ATNA AuditSourceID (default: the node id).
    @param siteId: the ATNA AuditEnterpriseSiteID (hospital, department), if any.
    @param tuning: C{settle}, C{window}, C{minDelay}, C{maxDelay}, C{batch} (see
        L{AuditSyslogExport}).
    @raise AuditExportError: naming the argument and the fix.
    """
    clock = clock or reactor
    emitter = emitter or AuditEmitter()
    if format not in FORMATS:
        raise AuditExportError("--audit-syslog-format", format, "unknown format",
                               "use " + " or ".join(FORMATS))
    node = node if node is not None else socket.gethostname()
    if not validNodeId(node):
        raise AuditExportError("--audit-syslog-node", node, "is not a node id",
                               "use 1 to 255 printable ASCII characters without spaces, "
                               'quotes, backslashes or "]"')
    identity = SyslogIdentity(node=node, hostname=socket.getfqdn() or "-",
                              procid=str(os.getpid()))
    message = _formatFor(format, identity, sourceId or node, siteId)
    endpoint = collectorEndpoint(reactor, collector, policyFile, emitter, clock)
    queue = DiskQueue(queueDir, queueBytes, argument="--audit-syslog-queue")
    feed = ExportFeed(queue, message, emitter, clock, collector)
    return AuditSyslogExport(endpoint, feed, writer, clock, **tuning)
