# -*- test-case-name: tests.test_halfclose,tests.test_fences,tests.test_gate,tests.test_tlssends -*-
"""
L{GatedTLSProtocol}: Twisted's TLS transport with what the gate needs from
below, and half-closes both ways.  It overrides and reads private names of
Twisted's C{twisted.protocols.tls}, each listed in L{TWISTED_PRIVATE_NAMES}
with what it is needed for; a test checks that the installed Twisted still
has every one and says which is gone if a release drops one.  This is the
one module that depends on them::

    tls = GatedTLSFactory(creator, False, gate, clock)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import (
    BufferingTLSTransport,
    TLSMemoryBIOFactory,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp._tls._recordio import EXHAUSTED, encrypt, feed, pendingRecords, readPlaintext
from securetcp._tls._sendnow import sendNow
from securetcp._tls.context import ClientConnectionCreator, ServerConnectionCreator
from securetcp._tls.session import ConnectionFacts, TLSError, WantReadError, ZeroReturnError
from securetcp.policy import Role

#: The private names of Twisted's C{BufferingTLSTransport} (and its base
#: C{TLSMemoryBIOProtocol}) that L{GatedTLSProtocol} overrides or reads:
#: C{(name, what securetcp needs it for)}.  A dotted name is an attribute of
#: an attribute; C{__init__:NAME} is a parameter of C{__init__}.
TWISTED_PRIVATE_NAMES: Tuple[Tuple[str, str], ...] = (
    ("_tlsConnection", "the OpenSSL connection: reading after close_notify, shutdown()"),
    ("_flushReceiveBIO", "overridden: the peer's close_notify becomes a half-close"),
    ("_flushSendBIO", "overridden: all records at once; sending our close_notify and what "
                      "was written before it"),
    ("_lostTLSConnection", "whether the TLS connection already ended"),
    ("_aborted", "whether abortConnection was called"),
    ("_shutdownTLS", "closing when close_notify went both ways"),
    ("_tlsShutdownFinished", "ending the connection after a TLS error"),
    ("_aggregator", "flushing small writes before close_notify"),
    ("_aggregator.flush", "flushing small writes before close_notify"),
    ("_aggregator.write", "write(): the bytes are counted, then aggregated as Twisted does"),
    ("_aggregator._buffer", "_flushReceiveBIO: whether a reply will carry a read's records"),
    ("_producer", "waiting for a registered producer before close_notify"),
    ("_appSendBuffer", "waiting for writes queued before the handshake ended"),
    ("_handshakeDone", "sending close_notify only after the handshake; whether the "
                       "peer's bytes came after it (whenPeerHeard)"),
    ("_write", "overridden: nothing is written after our close_notify; all records at once"),
    ("_bufferedWrite", "_write: what waits for a renegotiation"),
    ("_unbufferPendingWrites", "dataReceived: writes that waited for a renegotiation"),
    ("__init__:_connectWrapped", "passed on by our __init__"),
    ("_connectWrapped", "makeConnection: whether the application is connected at once"),
    ("factory._creatorCallable", "makeConnection: the OpenSSL connection (ours: our creator's)"),
    ("_checkHandshakeStatus", "makeConnection: starting the handshake"),
)

#: what Twisted's C{TLSMemoryBIOProtocol.makeConnection} reads and calls, as L{GatedTLSProtocol.
#: makeConnection} repeats it (tests.test_fences fails for a release that changes it)
TWISTED_MAKE_CONNECTION_NAMES = frozenset({
    "_tlsConnection", "factory", "_creatorCallable", "_appSendBuffer", "providedBy",
    "directlyProvides", "Protocol", "makeConnection", "registerProtocol",
    "_connectWrapped", "ProtocolWrapper", "_checkHandshakeStatus"})


@implementer(IHalfCloseableProtocol)
class GatedTLSProtocol(BufferingTLSTransport):
    """
    Twisted's TLS transport, plus what the gate needs from below: the count
    of application bytes written, whether the first bytes looked like TLS,
    and TCP_NODELAY; and half-closes both ways, which Twisted's TLS layer
    does not have:

      - The peer's close_notify, when the protocol above provides
        L{IHalfCloseableProtocol}, becomes its C{readConnectionLost()}; the
        connection stays open for writing.  Otherwise the connection closes,
        as in Twisted.
      - Towards TCP this transport is itself an L{IHalfCloseableProtocol}:
        the TCP read EOF that follows a close_notify is expected and changes
        nothing; a TCP read EOF without close_notify is a truncation and
        closes the connection with the reason Twisted gives it.
      - L{loseWriteConnection} flushes what the application wrote, sends
        close_notify and shuts down the TCP write side; the peer's data
        still arrives (OpenSSL reads after sending close_notify, TLS 1.2
        and 1.3).
      - Once close_notify went both ways the TCP connection is closed, and
        the protocol above gets C{connectionLost} with L{ConnectionDone}.
    """

    transport: Any
    bytesOut = 0
    firstByte: Optional[int] = None
    #: what the verify callback and SNI learn about this connection
    securetcpFacts: Optional[ConnectionFacts] = None
    #: the peer's close_notify arrived and was passed up as a half-close
    readClosed = False
    #: why L{closeTruncated} ended the connection, for the audit record
    closeNote: Optional[str] = None
    #: L{loseWriteConnection} was called
    _writeClosing = False
    #: our close_notify has been sent after L{loseWriteConnection}
    writeClosed = False
    _connectionLostDone = False
    #: bytes the peer sent after the handshake were read without a TLS error
    heardAfterHandshake = False
    #: see L{whenPeerHeard}
    _peerHeard: Optional[Callable[[], None]] = None

    def __init__(self, factory: Any, wrappedProtocol: IProtocol, _connectWrapped: bool = True) -> None:
        super().__init__(factory, wrappedProtocol, _connectWrapped)
        self.securetcpFacts = ConnectionFacts(factory.role)
        # drop the bound write Twisted sets per connection: write() below counts, then aggregates
        try:
            del self.write
        except AttributeError:  # pragma: no cover (a Twisted that sets none)
            pass

    def write(self, data: bytes) -> None:  # type: ignore[override]
        if self.writeClosed or (self._writeClosing and self._producer is None):
            # like TCP after loseWriteConnection: the bytes are dropped
            return
        self.bytesOut += len(data)
        self._aggregator.write(data)

    def writeSequence(self, sequence: Iterable[bytes]) -> None:
        self.write(b"".join(sequence))

    def writeNow(self, data: bytes) -> None:
        """
        L{write} C{data}, encrypted now: what earlier writes left in
        Twisted's aggregation of small writes goes first, and no timed call
        is made to send C{data} at the next reactor iteration.  For a relay,
        each of whose writes is one read of the other side; TCP's own
        buffering and back-pressure (a registered producer) are unchanged.
        """
        if self._lostTLSConnection or self.writeClosed or self._writeClosing:
            self.write(data)  # the ordinary way decides what is dropped
            return
        self.bytesOut += len(data)
        self._aggregator.flush()
        if not self.disconnecting or self._producer is not None:
            self._write(data)  # TLSMemoryBIOProtocol.write

    def makeConnection(self, transport: Any) -> None:
        if ITCPTransport.providedBy(transport):
            try:
                transport.setTcpNoDelay(True)
            except OSError:  # pragma: no cover
                pass
        if not self._connectWrapped:
            super().makeConnection(transport)
            return
        # Twisted's TLSMemoryBIOProtocol.makeConnection, without its loop of directlyProvides
        # over the transport's interfaces (ProtocolWrapper.makeConnection declares them all
        # at once): about a hundred Python calls less, the same interfaces in the end
        self._tlsConnection = self.factory._creatorCallable(self)
        self._appSendBuffer = []
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        ProtocolWrapper.makeConnection(self, transport)
        self._checkHandshakeStatus()

    def whenPeerHeard(self, callback: Callable[[], None]) -> None:
        """
        Call C{callback} once bytes the peer sent after the handshake
        (application data, or a TLS 1.3 session ticket) have been read
        without a TLS error (at once if they already were): a TLS 1.3
        server sends them only once it has accepted our Finished, and our
        certificate.
        """
        if self.heardAfterHandshake:
            callback()
        else:
            self._peerHeard = callback

    def dataReceived(self, data: bytes) -> None:
        if self.heardAfterHandshake and not self._writeClosing:
            # the steady state: Twisted's dataReceived after the handshake,
            # with nothing of the handshake or the close left to check
            feed(self._tlsConnection, data)
            if self._appSendBuffer:
                self._unbufferPendingWrites()
            self._flushReceiveBIO()
            return
        if self.firstByte is None and data:
            self.firstByte = data[0]
        handshook = self._handshakeDone
        super().dataReceived(data)
        if handshook and not self.heardAfterHandshake and not self._lostTLSConnection:
            self.heardAfterHandshake = True
            waiting, self._peerHeard = self._peerHeard, None
            if waiting is not None:
                waiting()
        # the handshake may just have completed, or writes that waited
        # for it have gone out: a pending close_notify may now be sent
        if self._writeClosing:
            self._sendCloseNotify()

    # -- half-close: the peer's side -----------------------------------

    def _flushReceiveBIO(self) -> None:
        # Twisted's loop, except for close_notify (see _peerClosedWrite); each pass delivers every
        # record OpenSSL has, joined, then meets what ended the read as Twisted's recv() would have
        stop: Optional[BaseException] = None
        while not self._lostTLSConnection and not self.readClosed:
            try:
                if stop is not None:
                    raise stop
                data, stop = readPlaintext(self._tlsConnection)
                if stop is EXHAUSTED:  # never raised: its WantReadError
                    if data and not self._aborted:
                        self.wrappedProtocol.dataReceived(data)
                    break
                if not data:
                    continue
            except WantReadError:
                break
            except ZeroReturnError:
                if self._halfCloseable():
                    self._peerClosedWrite()
                else:
                    self._shutdownTLS()
                    self._tlsShutdownFinished(None)
            except TLSError:
                self._tlsShutdownFinished(Failure())
            else:
                if not self._aborted:
                    self.wrappedProtocol.dataReceived(data)
        stop = None  # a raised stop's traceback holds this frame: no cycle through it
        # what OpenSSL wrote (tickets after the Finished) waits for a reply being aggregated
        if self._tlsConnection is not None and not (
                self._handshakeDone and getattr(self._aggregator, "_buffer", None)):
            self._flushSendBIO()

    def _flushSendBIO(self) -> None:
        # Twisted's, with every record in the BIO sent (Twisted's: 32 KiB), at once if TCP has none queued
        for piece in pendingRecords(self._tlsConnection):
            sendNow(self.transport, piece)

    def _halfCloseable(self) -> bool:
        """Whether the peer's close_notify goes up as a half-close: wanted, nobody closing."""
        return (not self.disconnecting and not self._aborted
                and IHalfCloseableProtocol.providedBy(self.wrappedProtocol))

    def _peerClosedWrite(self) -> None:
        """
        The peer sent close_notify: tell the protocol above, and close the
        connection if our close_notify has gone out already.
        """
        self.readClosed = True
        bothClosed = self.writeClosed
        IHalfCloseableProtocol(self.wrappedProtocol).readConnectionLost()
        if bothClosed and not self._connectionLostDone and not self.disconnecting:
            # shutdown() now reports both close_notify alerts, and closes TCP
            self._shutdownTLS()

    def readConnectionLost(self, reason: Optional[Failure] = None) -> None:
        """
        TCP's read side ended (L{IHalfCloseableProtocol}, as the TCP
        transport calls it).  After close_notify this is the peer's normal
        FIN.  Without one it is a truncation, and the connection ends at
        once, as it does in Twisted (where the TCP transport ends it): the
        protocol above gets C{connectionLost} with the same reason.
        """
        if self._lostTLSConnection or self.readClosed:
            return
        # what TLSMemoryBIOProtocol.connectionLost does: let OpenSSL see the
        # end of the stream, and report what it makes of it
        self._tlsConnection.bio_shutdown()
        self._flushReceiveBIO()
        if self.readClosed or self._tlsConnection is None:
            # the stream's last bytes were a close_notify after all
            return
        self._lostTLSConnection = True
        transport = self.transport
        self.connectionLost(Failure(ConnectionDone()))
        # the TCP transport would have closed the socket without flushing
        # (the peer has gone); its connectionLost will find us done
        transport.abortConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        # called once by the transport, or first by readConnectionLost
        if self._connectionLostDone:
            return
        self._connectionLostDone = True
        super().connectionLost(reason)

    def writeConnectionLost(self, reason: Optional[Failure] = None) -> None:
        """
        TCP's write side has been shut down (after L{loseWriteConnection});
        passed up to a protocol that wants half-close notifications.
        """
        above = IHalfCloseableProtocol(self.wrappedProtocol, None)
        if above is not None:
            above.writeConnectionLost()

    # -- half-close: our side ------------------------------------------

    def loseWriteConnection(self) -> None:
        """
        Half-close: send what the application wrote, then close_notify,
        then shut down the TCP write side (once any registered producer is
        unregistered, as with C{loseConnection}).  Reading goes on; when
        the peer's close_notify arrives the connection closes.
        """
        if (self._writeClosing or self.disconnecting or not self.connected
                or self._lostTLSConnection):
            return
        self._writeClosing = True
        self._aggregator.flush()
        self._sendCloseNotify()

    def _sendCloseNotify(self) -> None:
        """
        Send the close_notify L{loseWriteConnection} asked for, if nothing
        has to go out before it.
        """
        if (not self._writeClosing or self.writeClosed or self.disconnecting
                or self._lostTLSConnection or not self._handshakeDone
                or self._appSendBuffer or self._producer is not None):
            return
        self.writeClosed = True
        try:
            bothClosed = self._tlsConnection.shutdown()
        except TLSError:
            self._tlsShutdownFinished(Failure())
            return
        self._flushSendBIO()
        if bothClosed:
            # the peer's close_notify came first: nothing can follow
            self.transport.loseConnection()
            return
        lower = getattr(self.transport, "loseWriteConnection", None)
        if lower is not None:
            lower()

    def closeTruncated(self, why: str) -> None:
        """
        Send what was written, then close TCP I{without} close_notify, so
        the peer sees that the stream was cut short (a proxy whose other
        side broke off).  C{why} becomes the C{closeReason} of the audit
        record.
        """
        if self.disconnecting or self._lostTLSConnection or self.transport is None:
            return
        self.closeNote = why
        self._aggregator.flush()
        self._flushSendBIO()
        self.writeClosed = True
        self.transport.loseConnection()

    def _write(self, bytes: bytes) -> None:
        # Twisted's, with every record of the write encrypted first, sent at once if TCP has none queued
        if self.writeClosed or self._lostTLSConnection:
            # OpenSSL refuses to write after close_notify; so does TCP
            return
        taken, records, stop = encrypt(self._tlsConnection, bytes)
        for piece in records:
            sendNow(self.transport, piece)
        if isinstance(stop, WantReadError):
            self._bufferedWrite(bytes[taken:])
        elif isinstance(stop, TLSError):  # not raised here: no reference cycle through this frame
            self._tlsShutdownFinished(Failure(stop))
        elif stop is not None:
            raise stop

    def unregisterProducer(self) -> None:
        super().unregisterProducer()
        self._sendCloseNotify()


class GatedTLSFactory(TLSMemoryBIOFactory):
    """
    Twisted's TLS factory, making a L{GatedTLSProtocol} (with the
    L{ConnectionFacts} of its C{role}) per connection.
    """

    protocol = GatedTLSProtocol

    def __init__(self, creator: Any, isClient: bool, wrappedFactory: IProtocolFactory,
                 clock: IReactorTime) -> None:
        super().__init__(creator, isClient, wrappedFactory, clock=clock)
        self.role = Role.CLIENT if isClient else Role.SERVER
        # ours make whole connections: Twisted's wrapper would reset their state once more
        if isClient and isinstance(creator, ClientConnectionCreator):
            self._creatorCallable = creator.clientConnectionForTLS
        elif not isClient and isinstance(creator, ServerConnectionCreator):
            self._creatorCallable = creator.serverConnectionForTLS
