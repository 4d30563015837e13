"""
Tests for L{securetcp._tls._sendnow}: a relay's writes to a TCP transport
go to the socket at once when nothing is queued, and otherwise queue as
Twisted's C{write()} does, with back-pressure kept.
"""

from __future__ import annotations

import socket
from typing import Any, List, Tuple

from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import SynchronousTestCase

from securetcp._tls import _sendnow

from ._recording import RecordingProducer


def _received(peer: socket.socket) -> bytes:
    got = []
    while True:
        try:
            got.append(peer.recv(1 << 20))
        except BlockingIOError:
            return b"".join(got)


class SendNowTests(SynchronousTestCase):
    """
    L{_sendnow.sendNow} on a TCP transport over a socket pair.
    """

    def connection(self) -> Tuple[tcp.Server, socket.socket, MemoryReactor]:
        ours, peer = socket.socketpair()
        for s in (ours, peer):
            s.setblocking(False)
            self.addCleanup(s.close)
        reactor = MemoryReactor()
        transport = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), None, 1, reactor)
        return transport, peer, reactor

    def test_sentAtOnce(self) -> None:
        """
        With nothing queued, the bytes reach the socket at once: nothing
        is queued and no writer is registered with the reactor.
        """
        transport, peer, reactor = self.connection()
        _sendnow.sendNow(transport, b"hello")
        self.assertEqual(_received(peer), b"hello")
        self.assertEqual(transport.dataBuffer, b"")
        self.assertEqual(transport._tempDataBuffer, [])
        self.assertEqual(reactor.getWriters(), [])

    def test_afterQueuedBytes(self) -> None:
        """
        Bytes already queued keep their place: the new ones queue after
        them and nothing is sent ahead.
        """
        transport, peer, reactor = self.connection()
        transport.write(b"first ")
        _sendnow.sendNow(transport, b"second")
        self.assertEqual(_received(peer), b"")
        transport.doWrite()
        self.assertEqual(_received(peer), b"first second")

    def test_fullSocketQueuesRestAndPausesProducer(self) -> None:
        """
        What the socket does not take is queued, the reactor is asked to
        write it, and a producer writing to the transport is paused once
        more than the transport's buffer size is queued (back-pressure);
        it resumes when the queue drains.
        """
        transport, peer, reactor = self.connection()
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        payload = b"x" * (transport.bufferSize * 8)
        _sendnow.sendNow(transport, payload)
        self.assertEqual(producer.calls, ["pause"])
        self.assertIn(transport, reactor.getWriters())
        got = _received(peer)
        while transport.dataBuffer or transport._tempDataBuffer:
            transport.doWrite()
            got += _received(peer)
        self.assertEqual(got, payload)
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_notTCP(self) -> None:
        """
        Any other transport gets an ordinary C{write()}.
        """
        transport = StringTransport()
        _sendnow.sendNow(transport, b"plain")
        self.assertEqual(transport.value(), b"plain")

    def test_afterLoseWriteConnection(self) -> None:
        """
        After C{loseWriteConnection()} nothing is sent at once: the write
        goes the ordinary way.
        """
        transport, peer, reactor = self.connection()
        transport.loseWriteConnection()
        calls: List[Any] = []
        self.patch(transport, "write", calls.append)
        _sendnow.sendNow(transport, b"late")
        self.assertEqual((calls, _received(peer)), ([b"late"], b""))


class WidenTests(SynchronousTestCase):
    """
    L{_sendnow.widen} gives the TCP connection under a transport the
    relay's buffer size.
    """

    def test_underWrappers(self) -> None:
        """
        The TCP connection under protocol wrappers (a TLS transport, a
        PROXY header reader) gets L{_sendnow.RELAY_BUFFER}: larger reads,
        and a longer queue before its producer is paused.
        """
        ours, peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        transport = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), None, 1, MemoryReactor())
        wrapper = ProtocolWrapper(WrappingFactory(None), Protocol())
        wrapper.makeConnection(transport)
        _sendnow.widen(wrapper)
        self.assertEqual(transport.bufferSize, _sendnow.RELAY_BUFFER)

    def test_noTCP(self) -> None:
        """
        A transport with no TCP connection under it is left alone.
        """
        transport = StringTransport()
        _sendnow.widen(transport)
        self.assertFalse(hasattr(transport, "bufferSize"))


class TwistedNamesTests(SynchronousTestCase):
    """
    L{_sendnow.TWISTED_TCP_NAMES} are all still there in the installed
    Twisted.
    """

    def test_present(self) -> None:
        """
        A Twisted TCP connection has every private name L{_sendnow.sendNow}
        reads; a release that dropped one fails here, naming it.
        """
        ours, peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        transport = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), None, 1, MemoryReactor())
        missing = [f"{name} ({purpose})" for name, purpose in _sendnow.TWISTED_TCP_NAMES
                   if not hasattr(transport, name)]
        self.assertEqual(missing, [])
