# -*- test-case-name: tests.test_tap,tests.test_halfclose,tests.test_splice -*-
"""
The plaintext/TLS splice behind C{twistd securetcp terminate} and
C{originate}: every accepted connection is joined to a new connection to
the far side, with flow control both ways, an idle timeout, and an audit
record when the far side cannot be reached::

    factory = SpliceFactory(backend.connect, "tcp:127.0.0.1:2575", reactor,
                            AuditEmitter(), idleTimeout=300)

Half-closes go through both ways: when one side's peer ends its stream (a
TCP FIN, or a TLS close_notify), the other side's write side is closed with
C{loseWriteConnection()} (TCP: shutdown; TLS: close_notify, then shutdown)
and the opposite direction keeps flowing.  Once both directions have ended,
both connections are closed.  A connection lost in any other way (a reset,
an error, a TLS peer's FIN without close_notify) closes the other side:
cleanly if that is a plaintext connection (what was forwarded is delivered,
then a FIN), and without close_notify if it is the TLS one, so that the
TLS peer sees the stream was cut short.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, INegotiated
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from securetcp._interfaces import IAuditSink
from securetcp._tls._sendnow import sendNow, widen
from securetcp.audit.records import addressText, backendFailed


@implementer(IHalfCloseableProtocol)
class _Half(Protocol):
    """
    One side of a spliced connection; writes what it reads to the other
    side, with flow control both ways, and passes a half-close on.
    """

    other: Optional[_Half] = None
    idle: Any = None
    #: this side's peer will send nothing more (FIN or close_notify)
    readClosed = False
    #: this side's write side was closed, because the other side's peer
    #: ended its stream
    writeClosed = False

    def link(self, other: _Half) -> None:
        self.other = other
        other.other = self
        # back-pressure: a side that cannot keep up pauses the other's reading
        self.transport.registerProducer(other.transport, True)  # type: ignore[union-attr]
        other.transport.registerProducer(self.transport, True)  # type: ignore[union-attr]
        # larger reads, and a longer queue before the other side is paused
        widen(self.transport)
        widen(other.transport)

    def dataReceived(self, data: bytes) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            # a TLS side encrypts each read at once (writeNow), rather than
            # at the next reactor iteration as Twisted does for small writes;
            # a TCP side sends it at once if nothing is queued
            transport: Any = other.transport
            writeNow = getattr(transport, "writeNow", None)
            if writeNow is None:
                sendNow(transport, data)
            else:
                writeNow(data)
        if self.idle is not None:
            self.idle.reset()

    def readConnectionLost(self) -> None:
        """
        This side's peer ended its stream: end the other side's write
        side; close both once both directions have ended.
        """
        self.readClosed = True
        other = self.other
        if other is None or other.transport is None:
            if self.transport is not None:
                self.transport.loseConnection()
            return
        other.closeWrite()
        if other.readClosed:
            self.closeBoth()

    def writeConnectionLost(self) -> None:
        """
        Our write side is shut down (L{IHalfCloseableProtocol}); nothing to
        do.
        """

    def closeWrite(self) -> None:
        """
        Half-close this side's connection: what was written goes out, then
        the end of the stream (TCP FIN, or TLS close_notify and FIN).
        """
        if self.writeClosed or self.transport is None:
            return
        self.writeClosed = True
        transport: Any = self.transport
        # the producer feeding this transport is the other side, whose
        # peer has just ended its stream: a registered producer would hold
        # the half-close back
        try:
            transport.unregisterProducer()
        except Exception:
            pass
        loseWrite = getattr(transport, "loseWriteConnection", None)
        if loseWrite is None:
            transport.loseConnection()
        else:
            loseWrite()

    def closeBoth(self) -> None:
        """
        Both directions have ended: close both connections.
        """
        for half in (self, self.other):
            if half is not None and half.transport is not None:
                half.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        other, self.other = self.other, None
        if other is not None:
            other.other = None
            if other.transport is not None:
                try:
                    other.transport.unregisterProducer()  # type: ignore[attr-defined]
                except Exception:
                    pass
                if (reason is not None and not reason.check(ConnectionDone)
                        and INegotiated.providedBy(other.transport)):
                    # this side broke (a reset, an error): end the TLS side
                    # without close_notify, so that its peer cannot take a
                    # stream cut short for a complete one
                    closeTruncated = getattr(other.transport, "closeTruncated", None)
                    if closeTruncated is None:
                        other.transport.abortConnection()
                    else:
                        closeTruncated("the proxied plaintext connection broke off: "
                                       + reason.getErrorMessage())
                else:
                    other.transport.loseConnection()
        if self.idle is not None:
            self.idle.stop()


def auditedConnectionId(transport: Any) -> Optional[str]:
    """
    The audit id of the connection C{transport} belongs to, as its
    C{connection.accepted} record names it: the transport's own (a
    plaintext connection of permissive mode), or that of the gate the TLS
    transport wraps; C{None} for a connection that is not audited.
    """
    for holder in (transport, getattr(transport, "wrappedProtocol", None)):
        connectionId = getattr(holder, "connectionId", None)
        if isinstance(connectionId, str):
            return connectionId
    return None


class _IdleTimer:
    def __init__(self, clock: Any, seconds: float, onIdle: Callable[[], None]) -> None:
        self._clock, self._seconds, self._onIdle = clock, seconds, onIdle
        self._call = clock.callLater(seconds, onIdle) if seconds > 0 else None

    def reset(self) -> None:
        if self._call is not None and self._call.active():
            self._call.reset(self._seconds)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class _Front(_Half):
    """
    The accepted side; connects to the far side when it arrives.
    """

    def __init__(self, factory: SpliceFactory) -> None:
        self.factory = factory
        self.pending: List[bytes] = []
        #: the far side is being connected
        self.connecting = True

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.pauseProducing()  # type: ignore[attr-defined]
        if self.factory.header is not None:
            # built now, while the gate still holds what it verified; sent
            # to the far side before any byte of the peer's
            try:
                self.pending.append(self.factory.header(self.transport))
            except ValueError as e:
                self.connecting = False
                self._closeFront(f"no header for the far side: {e}", self.factory.closeTimeout)
                return
        if self.factory.idleTimeout:
            self.idle = _IdleTimer(self.factory.clock, self.factory.idleTimeout,
                                   self._idleTimedOut)
        far = Factory.forProtocol(_Half)
        far.noisy = False
        d = self.factory.connectFar(far)
        d.addCallbacks(self._connected, self._failed)

    def _idleTimedOut(self) -> None:
        # Nothing moved either way: close both sides.  The producers are
        # unregistered first (a TLS transport does not close while one is
        # registered), and the far side is aborted: it may be stalled with
        # unread data, which a clean close would wait for forever.
        other = self.other
        for half in (self, other):
            if half is not None and half.transport is not None:
                try:
                    half.transport.unregisterProducer()  # type: ignore[attr-defined]
                except Exception:
                    pass
        if other is not None and other.transport is not None:
            other.transport.abortConnection()  # type: ignore[attr-defined]
        self._closeFront(f"idle for {self.factory.idleTimeout:g} s", self.factory.idleTimeout)

    def _closeFront(self, why: str, bound: float) -> None:
        """
        Close the accepted side, noting C{why} for its audit record: read
        again (back-pressure or a pending far side may have paused us) so
        the peer's close_notify or FIN is seen, and drop a peer that does
        not finish the close within C{bound} seconds.
        """
        transport: Any = self.transport
        if transport is None:
            return
        if getattr(transport, "closeNote", "") is None:
            transport.closeNote = why
        transport.resumeProducing()
        transport.loseConnection()
        if self.idle is not None:
            self.idle.stop()
        self.idle = _IdleTimer(self.factory.clock, bound, transport.abortConnection)

    def _connected(self, far: _Half) -> None:
        self.connecting = False
        if self.transport is None or not getattr(self.transport, "connected", True):
            far.transport.loseConnection()  # type: ignore[union-attr]
            return
        far.idle = self.idle
        self.link(far)
        for data in self.pending:
            far.transport.write(data)  # type: ignore[union-attr]
        self.pending = []
        if self.readClosed:
            # the peer ended its stream while the far side was connecting
            far.closeWrite()
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def readConnectionLost(self) -> None:
        if self.connecting:
            # remembered; passed on once the far side is connected
            self.readClosed = True
            return
        super().readConnectionLost()

    def _failed(self, failure: Any) -> None:
        self.connecting = False
        transport = self.transport
        self.factory.emitter.emit(backendFailed(
            self.factory.farDescription,
            addressText(transport.getPeer()) if transport is not None else None,
            failure.getErrorMessage(), self.factory.clock.seconds(),
            connectionId=auditedConnectionId(transport)))
        self._closeFront(f"the backend {self.factory.farDescription} could not be reached: "
                         + failure.getErrorMessage(), self.factory.closeTimeout)

    def dataReceived(self, data: bytes) -> None:
        if self.other is None:
            self.pending.append(data)
        else:
            super().dataReceived(data)


class SpliceFactory(Factory):
    """
    For every accepted connection, connect to the far side with
    C{connectFar(factory)} and splice the two.

    @param idleTimeout: seconds without data either way before both sides
        are closed (0: never).
    @param closeTimeout: seconds the accepted side's peer has to finish a
        close we began (idle, or the far side unreachable) before the
        connection is aborted.
    @param header: called with each accepted connection's transport, the
        bytes to send the far side first (C{--backend-proxy}: a PROXY
        header, L{securetcp._twistd.backendproxy.backendProxyHeader}).
    """

    noisy = False

    def __init__(self, connectFar: Callable[[Any], Any], farDescription: str, clock: Any,
                 emitter: IAuditSink, idleTimeout: float = 0,
                 closeTimeout: float = 10.0,
                 header: Optional[Callable[[Any], bytes]] = None) -> None:
        self.connectFar = connectFar
        self.header = header
        self.closeTimeout = closeTimeout
        self.farDescription = farDescription
        self.clock = clock
        self.emitter = emitter
        self.idleTimeout = idleTimeout

    def buildProtocol(self, addr: Any) -> _Front:
        front = _Front(self)
        front.factory = self
        return front
