"""
Tests for L{securetcp._tls._recordio}: the TLS transport's data path reads
the plaintext of many records at once and encrypts a whole write before
reading its records out, with pyOpenSSL's own exceptions where OpenSSL
stops.
"""

from __future__ import annotations

from typing import Tuple

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from securetcp._tls import _recordio

from ._pki import sharedPKI


def _pair(version: int = SSL.TLS1_3_VERSION) -> Tuple[SSL.Connection, SSL.Connection]:
    """
    A server and a client connection on memory BIOs, handshake done.
    """
    pki = sharedPKI()
    serverContext = SSL.Context(SSL.TLS_METHOD)
    serverContext.use_certificate_chain_file(pki.path("server.pem"))
    serverContext.use_privatekey_file(pki.path("server.key"))
    serverContext.set_max_proto_version(version)
    clientContext = SSL.Context(SSL.TLS_METHOD)
    clientContext.set_max_proto_version(version)
    server, client = SSL.Connection(serverContext), SSL.Connection(clientContext)
    server.set_accept_state()
    client.set_connect_state()
    for _ in range(10):
        for one in (client, server):
            try:
                one.do_handshake()
            except SSL.WantReadError:
                pass
        _move(client, server)
        _move(server, client)
    _move(client, server)
    return server, client


def _move(source: SSL.Connection, target: SSL.Connection) -> int:
    """
    Pass what C{source} has to send to C{target}; how many bytes.
    """
    moved = 0
    while True:
        try:
            data = source.bio_read(65536)
        except SSL.WantReadError:
            return moved
        target.bio_write(data)
        moved += len(data)


def _sendAll(connection: SSL.Connection, data: bytes) -> None:
    """
    Encrypt all of C{data} (pyOpenSSL's send takes one record at a time).
    """
    taken = 0
    while taken < len(data):
        taken += connection.send(data[taken:])


def _drainPlaintext(connection: SSL.Connection) -> bytes:
    got = []
    while True:
        try:
            got.append(connection.recv(65536))
        except (SSL.WantReadError, SSL.ZeroReturnError):
            return b"".join(got)


class ReadPlaintextTests(SynchronousTestCase):
    """
    L{_recordio.readPlaintext} returns every buffered record's plaintext in
    one piece, and what ended the read.
    """

    def test_manyRecordsOneRead(self) -> None:
        """
        The plaintext of several records comes back in one read, and the
        read ended with L{_recordio.EXHAUSTED} (where pyOpenSSL raises
        L{SSL.WantReadError}) when the records ran out.
        """
        server, client = _pair()
        _recordio.readPlaintext(server)  # the client's session tickets, none
        for chunk in (b"a" * 20000, b"b" * 3, b"c" * 40000):
            _sendAll(client, chunk)
        _move(client, server)
        data, stop = _recordio.readPlaintext(server)
        self.assertEqual(data, b"a" * 20000 + b"b" * 3 + b"c" * 40000)
        self.assertIs(stop, _recordio.EXHAUSTED)

    def test_limit(self) -> None:
        """
        A read stops at L{_recordio.CHUNK} bytes with no exception; the
        next read returns the rest.
        """
        server, client = _pair()
        payload = bytes(range(256)) * (_recordio.CHUNK // 256 + 10)
        _sendAll(client, payload)
        _move(client, server)
        first, stop = _recordio.readPlaintext(server)
        self.assertEqual((len(first), stop), (_recordio.CHUNK, None))
        rest, stop = _recordio.readPlaintext(server)
        self.assertEqual(first + rest, payload)
        self.assertIs(stop, _recordio.EXHAUSTED)

    def test_closeNotifyAfterData(self) -> None:
        """
        Data followed by a close_notify: the data, and
        L{SSL.ZeroReturnError} as what ended the read.
        """
        server, client = _pair(SSL.TLS1_2_VERSION)
        client.send(b"last words")
        client.shutdown()
        _move(client, server)
        data, stop = _recordio.readPlaintext(server)
        self.assertEqual(data, b"last words")
        self.assertIsInstance(stop, SSL.ZeroReturnError)

    def test_corruptRecord(self) -> None:
        """
        A record that does not decrypt ends the read with pyOpenSSL's
        L{SSL.Error}, after the plaintext of the records before it.
        """
        server, client = _pair()
        _recordio.readPlaintext(server)
        client.send(b"good")
        _move(client, server)
        client.send(b"bad record")
        record = bytearray(client.bio_read(65536))
        record[-1] ^= 1
        server.bio_write(bytes(record))
        data, stop = _recordio.readPlaintext(server)
        self.assertEqual(data, b"good")
        self.assertIsInstance(stop, SSL.Error)
        self.assertNotIsInstance(stop, SSL.WantReadError)


class EncryptTests(SynchronousTestCase):
    """
    L{_recordio.encrypt} encrypts a whole write and returns its records.
    """

    def test_wholeWrite(self) -> None:
        """
        Every byte is taken, and the records (in pieces of at most
        L{_recordio.CHUNK} bytes) decrypt to the write.
        """
        server, client = _pair()
        payload = bytes(range(256)) * (_recordio.CHUNK // 128)
        taken, pieces, stop = _recordio.encrypt(server, payload)
        self.assertEqual((taken, stop), (len(payload), None))
        self.assertGreater(len(pieces), 1)
        self.assertTrue(all(len(p) <= _recordio.CHUNK for p in pieces))
        for piece in pieces:
            client.bio_write(piece)
        self.assertEqual(_drainPlaintext(client), payload)

    def test_recordsBeforeIncluded(self) -> None:
        """
        Records waiting in the outgoing BIO before the write (here a
        close_notify's predecessor, earlier plaintext) come first.
        """
        server, client = _pair()
        server.send(b"first ")
        taken, pieces, stop = _recordio.encrypt(server, b"second")
        self.assertEqual((taken, stop), (6, None))
        client.bio_write(b"".join(pieces))
        self.assertEqual(_drainPlaintext(client), b"first second")

    def test_nothing(self) -> None:
        """
        An empty write takes nothing and returns no records.
        """
        server, _ = _pair()
        self.assertEqual(_recordio.encrypt(server, b""), (0, [], None))

    def test_stoppedShort(self) -> None:
        """
        A write OpenSSL refuses (after our close_notify) takes nothing and
        returns the L{SSL.Error} pyOpenSSL's C{send} raises.
        """
        server, _ = _pair()
        server.shutdown()
        server.bio_read(65536)
        taken, pieces, stop = _recordio.encrypt(server, b"too late")
        self.assertEqual((taken, pieces), (0, []))
        self.assertIsInstance(stop, SSL.Error)


class PendingRecordsTests(SynchronousTestCase):
    """
    L{_recordio.pendingRecords} returns what waits in the outgoing BIO.
    """

    def test_closeNotify(self) -> None:
        """
        A close_notify waiting to go out comes back, and then nothing.
        """
        server, client = _pair(SSL.TLS1_2_VERSION)
        server.shutdown()
        pieces = _recordio.pendingRecords(server)
        self.assertEqual(len(pieces), 1)
        client.bio_write(pieces[0])
        self.assertRaises(SSL.ZeroReturnError, client.recv, 10)
        self.assertEqual(_recordio.pendingRecords(server), [])


class FeedTests(SynchronousTestCase):
    """
    L{_recordio.feed} gives OpenSSL the peer's bytes, as C{bio_write} does.
    """

    def test_inPieces(self) -> None:
        """
        A record given in pieces decrypts once the last piece is in.
        """
        server, client = _pair()
        _recordio.readPlaintext(server)
        _sendAll(client, b"in three pieces")
        record = client.bio_read(65536)
        _recordio.feed(server, record[:3])
        _recordio.feed(server, b"")
        self.assertEqual(_recordio.readPlaintext(server)[0], b"")
        _recordio.feed(server, record[3:10])
        _recordio.feed(server, record[10:])
        data, stop = _recordio.readPlaintext(server)
        self.assertEqual(data, b"in three pieces")
        self.assertIs(stop, _recordio.EXHAUSTED)
