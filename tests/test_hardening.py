# -*- test-case-name: tests.test_hardening -*-
"""
Hardening: securetcp against hostile peers, load and faults, with real
sockets and real peers.

  - L{HostileBytesTests}: an in-process C{mtls:} server on port 0 of
    127.0.0.1 fed plaintext, random bytes, SSLv2 hellos, cut and oversized
    ClientHellos, renegotiation, KeyUpdate floods and a peer that never
    reads; a good client runs alongside each to show nobody else waits.
  - L{LoadTests}: a storm of handshakes and thousands of idle connections
    against one C{twistd securetcp demo} process; every connection is
    audited exactly once, and the server's memory is measured.
  - L{FaultTests}: C{twistd securetcp terminate} whose audit file becomes
    unwritable, whose CRL directory disappears, whose backend refuses,
    resets or stalls; C{audit verify} passes afterwards.

Counts and bounds are in C{docs/hardening.md}, with the measured figures.
The load sizes can be raised with C{SECURETCP_HARDENING_HANDSHAKES},
C{SECURETCP_HARDENING_IDLE} and C{SECURETCP_HARDENING_CONCURRENCY}.

Every wait is bounded; every process is stopped and every connection closed
in cleanup; only 127.0.0.1 is used, on port 0 or a free port below 32768.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from securetcp import buildPolicy, clientEndpoint, serverEndpoint
from securetcp._pki.development import ensureDevelopmentPKI
from securetcp.audit.file import readChain
from securetcp.audit.verify import verifyFiles

from ._crl import craftCRL
from ._net import escape as _escape
from ._net import freePort as _freePort
from ._peers import PeerProcess, RealPeerMixin
from ._peers import sleep as _sleep
from ._peers import waitUntil as _waitUntil
from ._programs import OPENSSL, SOURCE_ROOT, TWISTD
from ._programs import needOpenSSL as _needOpenSSL
from ._recording import AuditRecorder
from ._twistd import TapProcessMixin
from ._twistd import auditEvents as _events
from ._twistd import auditRecords as _records
from ._twistd import blockUntil as _blockingWaitUntil

_log = Logger(namespace="tests.hardening")

#: Every wait below is bounded by one of these (seconds).
PEER_TIMEOUT = 15.0
#: How long a good client's whole exchange (TCP connect, mTLS handshake,
#: one echoed line, close) may take while a hostile peer is being handled.
GOOD_CLIENT_BOUND = 3.0
#: The servers' handshake timeout in the hostile-bytes tests.
HANDSHAKE_TIMEOUT = 1.0
LINE = b"a line from a good client"

#: OpenSSL 3's largest acceptable ClientHello message (CLIENT_HELLO_MAX_LENGTH).
CLIENT_HELLO_MAX_LENGTH = 131396


def _count(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _figure(name: str, value: Any) -> None:
    """
    Record a measured figure: in the test log, and on standard error when
    C{SECURETCP_HARDENING_VERBOSE} is set.
    """
    _log.info("hardening figure {name} = {value}", name=name, value=value)
    if os.environ.get("SECURETCP_HARDENING_VERBOSE"):
        sys.stderr.write(f"\n[hardening] {name} = {value}\n")


# -- TLS bytes ---------------------------------------------------------------


def clientHello(serverName: bytes = b"localhost") -> bytes:
    """
    A real TLS 1.2-1.3 ClientHello (one record), as pyOpenSSL's client
    writes it.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    connection.set_tlsext_host_name(serverName)
    connection.set_connect_state()
    try:
        connection.do_handshake()
    except SSL.WantReadError:
        pass
    return connection.bio_read(65536)


def _record(body: bytes, contentType: int = 0x16) -> bytes:
    return bytes([contentType]) + b"\x03\x01" + struct.pack(">H", len(body)) + body


def _inRecords(message: bytes) -> bytes:
    """
    A handshake message split over as many records as TLS needs (at most
    2**14 bytes each).
    """
    return b"".join(_record(message[k:k + 16384]) for k in range(0, len(message), 16384))


def maximumClientHello() -> Tuple[bytes, int]:
    """
    A real ClientHello grown to (nearly) the largest size OpenSSL accepts:
    its cipher list filled to 65534 bytes with unassigned suites, and its
    extensions to 65535 bytes with a padding extension (RFC 7685).

    @return: the records carrying it and the handshake message's length.
    """
    hello = clientHello()[5:]  # the handshake message
    body = hello[4:]
    i = 2 + 32
    session = body[i:i + 1 + body[i]]
    i += len(session)
    (cipherLength,) = struct.unpack(">H", body[i:i + 2])
    ciphers = body[i + 2:i + 2 + cipherLength]
    i += 2 + cipherLength
    compression = body[i:i + 1 + body[i]]
    i += len(compression)
    (extensionLength,) = struct.unpack(">H", body[i:i + 2])
    extensions = body[i + 2:i + 2 + extensionLength]
    filler = b"".join(struct.pack(">H", 0xFE00 + (k % 0xFF))  # unassigned suites
                      for k in range((65534 - len(ciphers)) // 2))
    ciphers += filler
    room = 65535 - len(extensions) - 4
    extensions += struct.pack(">HH", 21, room) + b"\0" * room
    grown = (body[:2 + 32] + session + struct.pack(">H", len(ciphers)) + ciphers
             + compression + struct.pack(">H", len(extensions)) + extensions)
    message = b"\x01" + struct.pack(">I", len(grown))[1:] + grown
    return _inRecords(message), len(message)


SSLV2_CLIENT_HELLO = bytes.fromhex(
    # SSLv2 record header (0x80 | length), CLIENT-HELLO, version 0.2,
    # cipher-specs, no session id, 16-byte challenge
    "802e0100020015000000100700c00500800300800100800600400400800200800000"
    "000000000000000000000000000000")


def sslv2CompatibleHello() -> bytes:
    """
    An SSLv2-format ClientHello that asks for TLS 1.2 (what old clients
    send to reach a TLS server), offering two ECDHE AES-GCM suites.
    """
    ciphers = bytes.fromhex("00c02b00c02f")
    challenge = bytes(range(16))
    body = b"\x01\x03\x03" + struct.pack(">HHH", len(ciphers), 0, len(challenge)) \
        + ciphers + challenge
    return bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body


def tlsRecords(data: bytes) -> Tuple[List[Tuple[int, bytes]], bytes]:
    """
    Split C{data} into TLS records.

    @return: C{[(content type, body), ...]} and what is left after the
        last complete record.
    @raise AssertionError: if a record header is not TLS.
    """
    out: List[Tuple[int, bytes]] = []
    while len(data) >= 5:
        contentType, major, minor, length = data[0], data[1], data[2], \
            struct.unpack(">H", data[3:5])[0]
        if contentType not in (0x14, 0x15, 0x16, 0x17) or major != 3 or minor > 4:
            raise AssertionError(f"not a TLS record: {data[:16].hex()}")
        if len(data) < 5 + length:
            break
        out.append((contentType, data[5:5 + length]))
        data = data[5 + length:]
    return out, data


# -- peers --------------------------------------------------------------------


class RawPeer(Protocol):
    """
    A hostile peer: writes C{data} as soon as it is connected and keeps
    what comes back.  It closes when C{closeWhen(received)} says so, and
    otherwise waits for the server.

    @ivar closed: fires with C{self} when the connection is gone.
    """

    def __init__(self, data: bytes, closeWhen: Optional[Callable[[bytes], bool]] = None
                 ) -> None:
        self.data = data
        self.closeWhen = closeWhen
        self.received = b""
        self.closed: Deferred[RawPeer] = Deferred()
        self.started = 0.0
        self.elapsed: Optional[float] = None
        self.address = ""
        #: whether the parallel good client was done before this closed
        self.parallelDoneWhileOpen = False

    def connectionMade(self) -> None:
        self.started = reactor.seconds()
        host = self.transport.getHost()  # type: ignore[union-attr]
        self.address = f"{host.host}:{host.port}"
        self.transport.write(self.data)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.closeWhen is not None and self.closeWhen(self.received):
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.elapsed = reactor.seconds() - self.started
        self.closed.callback(self)


class LineClient(Protocol):
    """
    A good client's application: sends L{LINE}, closes once it is echoed.
    """

    def __init__(self) -> None:
        self.received = b""
        self.done: Deferred[bytes] = Deferred()
        self.local = ""

    def connectionMade(self) -> None:
        host = self.transport.getHost()  # type: ignore[union-attr]
        self.local = f"{host.host}:{host.port}"
        self.transport.write(LINE + b"\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if LINE + b"\n" in self.received:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.done.called:
            self.done.callback(self.received)


class LineEcho(Protocol):
    """
    Echoes everything; the server-side application for good clients.  Keeps
    its C{OpenSSL.SSL.Connection} in C{tls}.
    """

    tls: Any = None

    def connectionMade(self) -> None:
        self.tls = self.transport.getHandle()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


@implementer(IPushProducer)
class Firehose(Protocol):
    """
    A producer-aware server application that writes C{chunk}s as fast as
    the transport lets it: one per reactor turn while not paused, until
    C{limit} bytes are written.
    """

    chunk = b"\x5a" * 65536

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written = 0
        self.paused = False
        self.pauses = 0
        self.stopped = False
        self._call: Any = None

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and not self.paused and not self.stopped:
            self._call = reactor.callLater(0, self._pump)

    def _pump(self) -> None:
        self._call = None
        if self.paused or self.stopped or self.written >= self.limit:
            return
        self.transport.write(self.chunk)  # type: ignore[union-attr]
        self.written += len(self.chunk)
        self._schedule()

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class ChoosingFactory(Factory):
    """
    Builds the protocols queued in C{first} for the first connections, then
    L{LineEcho}s; keeps every protocol it built.
    """

    noisy = False

    def __init__(self, first: Sequence[Protocol] = ()) -> None:
        self.first = list(first)
        self.built: List[Protocol] = []

    def buildProtocol(self, addr: Any) -> Protocol:
        protocol = self.first.pop(0) if self.first else LineEcho()
        protocol.factory = self
        self.built.append(protocol)
        return protocol


class Reader(Protocol):
    """
    A client application that reads nothing until told to: it pauses its
    transport as soon as it is connected.
    """

    def __init__(self) -> None:
        self.received = 0
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.lost.called:
            self.lost.callback(None)


# -- the hostile-bytes tests ---------------------------------------------------


class HostileMixin(RealPeerMixin):
    """
    Our C{mtls:} server in-process with a short handshake timeout, an
    in-process good client, and hostile raw peers.
    """

    @inlineCallbacks
    def serve(self, factory: Optional[ChoosingFactory] = None, **options: Any) -> Any:
        """
        Listen on 127.0.0.1:0 under C{nist-800-52r2} with client
        certificates required and a 1 s handshake timeout.

        @return: C{(port number, factory, AuditRecorder)}
        """
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"),
                             handshakeTimeout=options.pop("handshakeTimeout",
                                                          HANDSHAKE_TIMEOUT),
                             **options)
        audit = AuditRecorder()
        factory = factory or ChoosingFactory()
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
                                  policy, mutual=True, emitter=audit.emitter())
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        self.audit = audit
        return self.port, factory, audit

    def clientPolicy(self) -> Any:
        return buildPolicy(certKey=self.pki.path("client.pem"),
                           privateKey=self.pki.path("client.key"),
                           caCerts=self.pki.path("ca.pem"))

    @inlineCallbacks
    def connectGood(self, protocol: Protocol, port: Optional[int] = None) -> Any:
        """
        Connect a good mTLS client (securetcp's own client endpoint) whose
        application is C{protocol}; fires once the server is verified.
        """
        endpoint = clientEndpoint(
            reactor, TCP4ClientEndpoint(reactor, "127.0.0.1", port or self.port, timeout=5),
            self.clientPolicy(), hostname="localhost", mutual=True,
            emitter=AuditRecorder().emitter())
        app = yield endpoint.connect(Factory.forProtocol(lambda: protocol)).addTimeout(
            PEER_TIMEOUT, reactor)
        return app

    @inlineCallbacks
    def goodExchange(self, port: Optional[int] = None) -> Any:
        """
        A good client connects, gets L{LINE} echoed and closes, within
        L{GOOD_CLIENT_BOUND} seconds.

        @return: how long it took.
        """
        started = reactor.seconds()
        client = LineClient()
        yield self.connectGood(client, port)
        received = yield client.done.addTimeout(PEER_TIMEOUT, reactor)
        elapsed = reactor.seconds() - started
        self.assertEqual(received, LINE + b"\n")  # type: ignore[attr-defined]
        self.assertLess(elapsed, GOOD_CLIENT_BOUND)  # type: ignore[attr-defined]
        return elapsed

    @inlineCallbacks
    def rejection(self, address: str) -> Any:
        """
        The server's C{handshake.rejected} record for the peer at
        C{address}, once there is one (bounded); it must be the only record
        of that connection.
        """
        def mine() -> List[Dict[str, Any]]:
            return [r for r in self.audit.records if r.get("peer") == address]

        yield _waitUntil(lambda: any(r["event"] == "handshake.rejected" for r in mine()),
                         PEER_TIMEOUT, f"the rejection of {address}")
        records = mine()
        self.assertEqual([r["event"] for r in records],  # type: ignore[attr-defined]
                         ["handshake.rejected"], records)
        return records[0]

    @inlineCallbacks
    def attack(self, data: bytes, closeWhen: Optional[Callable[[bytes], bool]] = None
               ) -> Any:
        """
        Connect a L{RawPeer} writing C{data}; while it is being handled, a
        good client completes its exchange; wait (bounded) for the hostile
        connection to end, then check that a fresh good client still gets
        through.

        @return: the L{RawPeer}, the server's record for it, and how long
            the parallel good client took.
        """
        peer = RawPeer(data, closeWhen)
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), peer)
        parallel = yield self.goodExchange()
        peer.parallelDoneWhileOpen = not peer.closed.called
        yield peer.closed.addTimeout(PEER_TIMEOUT, reactor)
        record = yield self.rejection(peer.address)
        yield self.goodExchange()  # the server is alive afterwards
        return peer, record, parallel

    def assertOnlyAlerts(self, data: bytes) -> List[Tuple[int, int]]:
        """
        C{data} is nothing but complete TLS alert records.

        @return: the C{(level, description)} of each alert.
        """
        records, rest = tlsRecords(data)
        self.assertEqual(rest, b"", f"a partial record: {data.hex()}")  # type: ignore
        alerts = []
        for contentType, body in records:
            self.assertEqual((contentType, len(body)), (0x15, 2),  # type: ignore
                             f"not an alert: {data.hex()}")
            alerts.append((body[0], body[1]))
        return alerts


class HostileBytesTests(HostileMixin, TestCase):
    """
    Hostile bytes against our in-process C{mtls:} server: every one is
    refused with the right audit reason and never answered in plaintext; a
    good client in parallel is not delayed, and the server keeps serving.
    """

    def setUp(self) -> None:
        super().setUp()
        return self.serve()  # type: ignore[no-any-return]

    @inlineCallbacks
    def test_plaintextHTTP(self) -> Any:
        """
        An HTTP request is rejected as C{not_tls} and gets no answer but TLS
        alerts (no HTTP response); a parallel good client is served.
        """
        peer, record, parallel = yield self.attack(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: scanner\r\n\r\n")
        self.assertEqual(record["reason"], "not_tls")
        self.assertOnlyAlerts(peer.received)
        self.assertNotIn(b"HTTP", peer.received)
        _figure("plaintext HTTP: parallel good client (s)", round(parallel, 3))

    @inlineCallbacks
    def test_randomBytes(self) -> Any:
        """
        Random bytes are rejected as C{not_tls}, both bare and framed as a
        TLS handshake record (OpenSSL then answers with one
        C{unexpected_message} alert, and nothing else).
        """
        rng = random.Random(20261123)
        noise = bytes(rng.randrange(256) for _ in range(4096))
        if noise[0] == 0x16:  # pragma: no cover - the seed says otherwise
            noise = b"\x00" + noise
        peer, record, _ = yield self.attack(noise)
        self.assertEqual(record["reason"], "not_tls", record)
        self.assertOnlyAlerts(peer.received)

        framed = _record(bytes(rng.randrange(256) for _ in range(512)))
        peer, record, _ = yield self.attack(framed)
        self.assertEqual(record["reason"], "not_tls", record)
        self.assertEqual(self.assertOnlyAlerts(peer.received), [(2, 10)])

    @inlineCallbacks
    def test_sslv2Hello(self) -> Any:
        """
        A classic SSLv2 CLIENT-HELLO (first byte 0x80) and an SSLv2-format
        hello asking for TLS 1.2 are both rejected as C{not_tls}, with no
        answer but alerts.
        """
        for hello in (SSLV2_CLIENT_HELLO, sslv2CompatibleHello()):
            peer, record, _ = yield self.attack(hello)
            self.assertEqual(record["reason"], "not_tls", record)
            self.assertIn("0x80", record["detail"])
            self.assertOnlyAlerts(peer.received)

    @inlineCallbacks
    def test_halfClientHello(self) -> Any:
        """
        The first half of a real ClientHello, with the connection left
        open, is dropped when the handshake timeout (1 s) expires and
        audited as C{handshake_timeout}; nothing is sent to it, and a good
        client connecting meanwhile is served before the stalled one is
        dropped.
        """
        hello = clientHello()
        peer, record, parallel = yield self.attack(hello[:len(hello) // 2])
        self.assertEqual(record["reason"], "handshake_timeout")
        self.assertEqual(peer.received, b"")
        self.assertTrue(peer.parallelDoneWhileOpen,
                        "the good client had to wait for the stalled one")
        assert peer.elapsed is not None
        self.assertGreaterEqual(peer.elapsed, HANDSHAKE_TIMEOUT * 0.9)
        self.assertLess(peer.elapsed, HANDSHAKE_TIMEOUT + 2)
        _figure("half ClientHello: dropped after (s)", round(peer.elapsed, 3))
        _figure("half ClientHello: parallel good client (s)", round(parallel, 3))

    @inlineCallbacks
    def test_maximumClientHello(self) -> Any:
        """
        A ClientHello of nearly the largest size OpenSSL accepts (a 65534
        byte cipher list and 65535 bytes of extensions, in nine records) is
        answered with a TLS handshake (the ServerHello), never with
        plaintext; when the peer then goes away the server audits
        C{peer_closed}.
        """
        records, length = maximumClientHello()
        self.assertGreater(length, CLIENT_HELLO_MAX_LENGTH - 300)
        self.assertLessEqual(length, CLIENT_HELLO_MAX_LENGTH)
        peer, record, parallel = yield self.attack(
            records, closeWhen=lambda received: len(received) >= 5)
        self.assertEqual(record["reason"], "peer_closed", record)
        self.assertEqual(peer.received[:1], b"\x16")  # a handshake record
        tlsRecords(peer.received)  # nothing but TLS
        _figure("maximum ClientHello: message bytes", length)

    @inlineCallbacks
    def test_oversizedClientHello(self) -> Any:
        """
        A ClientHello that announces a 16 MiB message is refused at once
        (no waiting for, or buffering of, the announced bytes) with one
        C{illegal_parameter} alert and audited as C{not_tls}.
        """
        announced = _record(b"\x01\xff\xff\xff" + b"\0" * 16380)
        peer, record, _ = yield self.attack(announced)
        self.assertEqual(record["reason"], "not_tls", record)
        self.assertIn("excessive message size", record["detail"])
        self.assertEqual(self.assertOnlyAlerts(peer.received), [(2, 47)])
        assert peer.elapsed is not None
        self.assertLess(peer.elapsed, HANDSHAKE_TIMEOUT)


class RealClientHostileTests(HostileMixin, TestCase):
    """
    Renegotiation, KeyUpdate floods and a peer that never reads, against
    our in-process C{mtls:} server.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    def sClientArgv(self, *extra: str) -> List[str]:
        assert OPENSSL is not None
        return [OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.port}",
                "-servername", "localhost", "-CAfile", self.pki.path("ca.pem"),
                "-cert", self.pki.path("client.pem"), "-key", self.pki.path("client.key"),
                "-verify_return_error", *extra]

    @inlineCallbacks
    def test_renegotiationRefused(self) -> Any:
        """
        Under TLS 1.2, an C{openssl s_client} that asks to renegotiate
        (its C{R} command) is refused: the server answers the new
        ClientHello with a C{no_renegotiation} alert, never renegotiates,
        and the connection ends (s_client gives up); the connection is
        audited once (accepted, then closed), a good client in parallel is
        served, and the server keeps serving.
        """
        port, factory, audit = yield self.serve()
        peer = PeerProcess.spawn(self.sClientArgv("-tls1_2", "-brief"), stdin=b"hello\n")
        yield _waitUntil(lambda: b"hello\n" in peer.out or not peer.running, PEER_TIMEOUT,
                         "the first line to be echoed")
        self.assertIn(b"hello\n", peer.out, peer.describe())
        peer.transport.write(b"R\n")
        parallel = yield self.goodExchange()
        yield _waitUntil(lambda: not peer.running, 5, "s_client to end")
        self.assertFalse(peer.killed, peer.describe())
        output = peer.out + peer.err
        self.assertIn(b"RENEGOTIATING", output, peer.describe())
        self.assertIn(b"no renegotiation", output, peer.describe())
        first = factory.built[0]
        self.assertEqual(first.tls.total_renegotiations(), 0)  # type: ignore[attr-defined]
        yield _waitUntil(lambda: len(audit.events("connection.closed")) >= 2, PEER_TIMEOUT,
                         "the closed records")
        accepted = [r for r in audit.events("connection.accepted") if r["version"] == "TLSv1.2"]
        closed = [r for r in audit.events("connection.closed") if r["version"] == "TLSv1.2"]
        self.assertEqual((len(accepted), len(closed)), (1, 1), audit.records)
        self.assertEqual(accepted[0]["connection"], closed[0]["connection"])
        self.assertEqual(audit.events("handshake.rejected"), [])
        yield self.goodExchange()
        _figure("renegotiation: parallel good client (s)", round(parallel, 3))

    @inlineCallbacks
    def test_keyUpdateFlood(self) -> Any:
        """
        Under TLS 1.3, an C{openssl s_client} sends hundreds of KeyUpdates
        (its C{K} and C{k} commands, half of them asking for an update in
        return): the server processes every one, answers those that ask,
        keeps the connection (a line sent afterwards is echoed), and good
        clients connecting during the flood are served within the bound.
        """
        count = _count("SECURETCP_HARDENING_KEYUPDATES", 300)
        port, factory, audit = yield self.serve()
        peer = PeerProcess.spawn(self.sClientArgv("-tls1_3", "-msg"), stdin=b"hello\n",
                                 timeout=PEER_TIMEOUT + count * 0.05)
        yield _waitUntil(lambda: b"\nhello\n" in peer.out or not peer.running, PEER_TIMEOUT,
                         "the first line to be echoed")
        self.assertIn(b"\nhello\n", peer.out, peer.describe())
        latencies: List[float] = []
        flooding = [True]

        @inlineCallbacks
        def goodClients() -> Any:
            while flooding[0]:
                latencies.append((yield self.goodExchange()))
                yield _sleep(0.05)

        parallel = goodClients()
        started = reactor.seconds()
        for n in range(count):
            peer.transport.write(b"K\n" if n % 2 == 0 else b"k\n")
            yield _sleep(0.005)  # s_client takes one command per read
        flooding[0] = False
        yield parallel
        sent = re.findall(rb">>> TLS 1\.3, Handshake \[length 0005\], KeyUpdate\s+18 00 00 01 0(\d)",
                          peer.out)
        yield _waitUntil(lambda: peer.out.count(b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
                         >= 1, PEER_TIMEOUT, "the server's KeyUpdate")
        peer.transport.write(b"after the flood\n")
        yield _waitUntil(lambda: b"\nafter the flood\n" in peer.out or not peer.running,
                         PEER_TIMEOUT, "the line after the flood to be echoed")
        elapsed = reactor.seconds() - started
        self.assertIn(b"\nafter the flood\n", peer.out, peer.describe()[-2000:])
        answered = peer.out.count(b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
        requested = sent.count(b"1")
        peer.closeStdin()
        yield peer.ended
        self.assertGreaterEqual(len(sent), count // 2, "s_client sent too few KeyUpdates")
        self.assertGreaterEqual(answered, 1)
        self.assertLessEqual(answered, requested)
        self.assertTrue(latencies, "no good client ran during the flood")
        self.assertEqual(audit.events("handshake.rejected"), [])
        yield _waitUntil(lambda: len(audit.events("connection.closed"))
                         == len(audit.events("connection.accepted")), PEER_TIMEOUT,
                         "every connection to be closed")
        yield self.goodExchange()
        _figure("KeyUpdate flood: sent / asking for an answer / answered",
                f"{len(sent)} / {requested} / {answered} in {elapsed:.2f}s")
        _figure("KeyUpdate flood: good clients during it, worst (s)",
                f"{len(latencies)}, {max(latencies):.3f}")

    @inlineCallbacks
    def test_neverReadingClient(self) -> Any:
        """
        A client completes the handshake and never reads while the server's
        producer-aware application writes as fast as it can: the transport
        pauses the application (an C{IPushProducer} registered on the gated
        TLS transport), the bytes written stop growing and Twisted's own
        buffer stays small; a good client is served meanwhile; once the
        client reads, it gets every byte, and the audit record counts them.
        """
        firehose = Firehose(limit=512 * 1024 * 1024)
        port, factory, audit = yield self.serve(ChoosingFactory([firehose]))
        reader = Reader()
        yield self.connectGood(reader)
        yield _waitUntil(lambda: firehose.paused, PEER_TIMEOUT, "the application to be paused")
        yield _sleep(1.0)
        held = firehose.written
        tcp = firehose.transport.transport  # type: ignore[union-attr]
        buffered = len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
        yield _sleep(1.0)
        self.assertTrue(firehose.paused)
        self.assertEqual(firehose.written, held, "the application kept writing")
        self.assertLess(held, 64 * 1024 * 1024)
        self.assertLess(buffered, 1024 * 1024)
        parallel = yield self.goodExchange()

        firehose.limit = held  # write nothing more; let the reader drain it
        reader.transport.resumeProducing()  # type: ignore[union-attr]
        yield _waitUntil(lambda: reader.received >= held, PEER_TIMEOUT, "the reader to catch up")
        self.assertEqual(reader.received, held)
        reader.transport.loseConnection()  # type: ignore[union-attr]
        yield reader.lost.addTimeout(PEER_TIMEOUT, reactor)
        yield _waitUntil(lambda: len(audit.events("connection.closed")) >= 2, PEER_TIMEOUT,
                         "the closed records")
        closed = [r for r in audit.events("connection.closed") if r["bytesOut"] == held]
        self.assertEqual(len(closed), 1, audit.events("connection.closed"))
        _figure("never-reading client: bytes accepted before the pause",
                f"{held} ({firehose.pauses} pause(s))")
        _figure("never-reading client: bytes in Twisted's buffer while paused", buffered)
        _figure("never-reading client: parallel good client (s)", round(parallel, 3))


# -- load -------------------------------------------------------------------------


def _rss(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes (Linux).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _env() -> Dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = SOURCE_ROOT + (os.pathsep + env["PYTHONPATH"]
                                       if env.get("PYTHONPATH") else "")
    return env


class Holder(Protocol):
    """
    An idle client application: holds its connection open and says nothing.
    """

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.lost.called:
            self.lost.callback(None)


class LoadTests(TestCase):
    """
    One C{twistd securetcp serve} process (an echo application behind
    C{mtls:} under C{nist-800-52r2}, with the development PKI and an audit
    file) against a storm of handshakes and thousands of idle connections
    from securetcp's own client endpoint in this process.  Its sessions
    stay resumable for one second (C{resumptionLifetime=1}), so that
    OpenSSL's session cache, which clears expired sessions every 255 new
    ones, gives back what one round of connections left in it before the
    next round ends: what remains after a round is then what leaks.
    """

    #: handshakes in the storm, concurrent connections, idle connections
    handshakes = _count("SECURETCP_HARDENING_HANDSHAKES", 1000)
    concurrency = _count("SECURETCP_HARDENING_CONCURRENCY", 100)
    idle = _count("SECURETCP_HARDENING_IDLE", 2000)
    #: seconds a test may take: trial's default 120 is too short for the
    #: full-size run (10,000 idle connections, twice, take about 140 s)
    timeout = 120 + (handshakes + idle) // 100

    def setUp(self) -> Any:
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        if not os.path.exists("/proc/self/status"):
            raise SkipTest("needs /proc to measure the server's memory")
        if "select" in type(reactor).__name__.lower() and self.idle > 900:
            raise SkipTest("the select reactor cannot hold this many connections")
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = self.idle + 512
        if soft < needed:
            if hard != resource.RLIM_INFINITY and hard < needed:
                raise SkipTest(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.clientAudit = AuditRecorder()
        return self.startServer()

    @inlineCallbacks
    def startServer(self) -> Any:
        assert TWISTD is not None
        self.demo = os.path.join(self.workdir, "demo")
        pki = ensureDevelopmentPKI(self.demo)
        self.audit = os.path.join(self.demo, "audit.jsonl")
        for _attempt in range(3):
            port = _freePort()
            listen = (f"mtls:{port}:interface=127.0.0.1:backlog=1024:certKey="
                      f"{pki['serverCert']}:privateKey={pki['serverKey']}:caCerts={pki['ca']}"
                      f":resumptionLifetime=1:auditLog={self.audit}")
            server = PeerProcess.spawn(
                [TWISTD, "-n", "--pidfile=", "securetcp", "serve", "--listen", listen,
                 "--app", "tests._apps:echoFactory"], env=_env(), path=self.workdir, timeout=600,
                closeAfter=600)
            self.addCleanup(server.stop)
            marker = b"starting on %d" % port
            yield _waitUntil(lambda s=server, m=marker: m in s.out or not s.running,
                             PEER_TIMEOUT, "twistd securetcp demo to listen")
            if server.running:
                break
        else:
            raise AssertionError(f"twistd did not start:\n{server.describe()}")
        self.server, self.port = server, port
        self.pid = server.transport.pid
        policy = buildPolicy(certKey=os.path.join(self.demo, "client.pem"),
                             privateKey=os.path.join(self.demo, "client.key"),
                             caCerts=os.path.join(self.demo, "dev-ca.pem"))
        self.endpoint = clientEndpoint(
            reactor, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=30), policy,
            hostname="localhost", mutual=True, emitter=self.clientAudit.emitter())

    def serverRecords(self, event: str) -> List[Dict[str, Any]]:
        return [r for r in _records(self.audit) if r.get("event") == event]

    @inlineCallbacks
    def waitForServerRecords(self, accepted: int, closed: int) -> Any:
        """
        Wait (bounded) until the server's audit file holds at least
        C{accepted} and C{closed} records.
        """
        yield _waitUntil(lambda: len(self.serverRecords("connection.accepted")) >= accepted
                         and len(self.serverRecords("connection.closed")) >= closed, 120,
                         f"{accepted} accepted and {closed} closed audit records")

    @inlineCallbacks
    def exchanges(self, count: int) -> Any:
        """
        C{count} good clients, L{concurrency} at a time, each connecting,
        getting its line echoed and closing.

        @return: a L{Counter} of the successful clients' local addresses,
            and one of the failures.
        """
        semaphore = DeferredSemaphore(self.concurrency)
        peers: Counter[str] = Counter()
        failures: Counter[str] = Counter()

        @inlineCallbacks
        def one() -> Any:
            client = LineClient()
            try:
                yield self.endpoint.connect(Factory.forProtocol(lambda: client)).addTimeout(
                    60, reactor)
                received = yield client.done.addTimeout(60, reactor)
            except Exception as e:
                failures[f"{type(e).__name__}: {e}"[:120]] += 1
                return
            if received == LINE + b"\n":
                peers[client.local] += 1
            else:
                failures[f"received {received[:40]!r}"] += 1

        yield gatherResults([semaphore.run(one) for _ in range(count)])
        return peers, failures

    def assertAuditedOnce(self, peers: Counter[str], before: Dict[str, int]) -> None:
        """
        The server's new accepted and closed records are exactly one per
        client in C{peers}: same peers, same counts, each connection id
        once in each.
        """
        for event in ("connection.accepted", "connection.closed"):
            records = self.serverRecords(event)[before[event]:]
            self.assertEqual(Counter(r["peer"] for r in records), peers, event)
            ids = [r["connection"] for r in records]
            self.assertEqual(len(ids), len(set(ids)), f"duplicated {event} records")
        accepted = {r["connection"] for r in self.serverRecords("connection.accepted")}
        closed = {r["connection"] for r in self.serverRecords("connection.closed")}
        self.assertEqual(accepted, closed)

    def counts(self) -> Dict[str, int]:
        return {e: len(self.serverRecords(e)) for e in
                ("connection.accepted", "connection.closed", "handshake.rejected")}

    @inlineCallbacks
    def warmUp(self) -> Any:
        peers, failures = yield self.exchanges(min(50, self.handshakes))
        self.assertEqual(failures, Counter())
        yield self.waitForServerRecords(sum(peers.values()), sum(peers.values()))
        yield _sleep(0.5)
        return _rss(self.pid)

    @inlineCallbacks
    def test_handshakeStorm(self) -> Any:
        """
        A storm of L{handshakes} mTLS handshakes (L{concurrency} at a time)
        against one server process: every valid client gets its line
        echoed, and the server's audit file has exactly one
        C{connection.accepted} and one C{connection.closed} per client
        (matched by peer address); none is rejected, the chain verifies,
        and the server's memory after the storm stays within a generous
        bound of where it started.
        """
        baseline = yield self.warmUp()
        before = self.counts()
        started = reactor.seconds()
        peers, failures = yield self.exchanges(self.handshakes)
        elapsed = reactor.seconds() - started
        self.assertEqual(failures, Counter(), "valid clients failed")
        self.assertEqual(sum(peers.values()), self.handshakes)
        clientClosed = [r for r in self.clientAudit.records if r["event"] == "connection.closed"]
        self.assertGreaterEqual(len(clientClosed), self.handshakes)
        yield self.waitForServerRecords(before["connection.accepted"] + self.handshakes,
                                        before["connection.closed"] + self.handshakes)
        yield _sleep(0.5)  # nothing more may arrive
        self.assertAuditedOnce(peers, before)
        self.assertEqual(self.counts()["handshake.rejected"], 0)
        after = _rss(self.pid)
        yield self.server.stop()
        self.assertTrue(verifyFiles([self.audit]).ok, verifyFiles([self.audit]).problems)
        self.assertLess(after - baseline, 100 * 1024 * 1024)
        _figure("handshake storm", f"{self.handshakes} handshakes, {self.concurrency} at a time, "
                f"{elapsed:.1f}s ({self.handshakes / elapsed:.0f}/s), 0 failures")
        _figure("handshake storm: server RSS", f"{_mib(baseline)} before, {_mib(after)} after")

    @inlineCallbacks
    def holdAndClose(self) -> Any:
        """
        Open L{idle} connections (L{concurrency} handshakes at a time),
        check that all are open at once and audited as accepted, then close
        them all and check that each is audited once as closed.

        @return: how long opening took, the server's RSS with all open and
            after they closed.
        """
        before = self.counts()
        semaphore = DeferredSemaphore(self.concurrency)
        holders: List[Holder] = []
        failures: Counter[str] = Counter()

        @inlineCallbacks
        def one() -> Any:
            holder = Holder()
            try:
                yield self.endpoint.connect(Factory.forProtocol(lambda: holder)).addTimeout(
                    60, reactor)
            except Exception as e:
                failures[f"{type(e).__name__}: {e}"[:120]] += 1
                return
            holders.append(holder)

        started = reactor.seconds()
        yield gatherResults([semaphore.run(one) for _ in range(self.idle)])
        opened = reactor.seconds() - started
        self.addCleanup(lambda: [h.transport.abortConnection() for h in holders
                                 if h.transport is not None and not h.lost.called])
        self.assertEqual(failures, Counter(), "valid clients failed")
        self.assertEqual(len(holders), self.idle)
        yield self.waitForServerRecords(before["connection.accepted"] + self.idle, 0)
        yield _sleep(0.5)
        self.assertEqual(sum(not h.lost.called for h in holders), self.idle,
                         "idle connections were closed")
        peak = _rss(self.pid)
        peers: Counter[str] = Counter()
        for holder in holders:
            host = holder.transport.getHost()  # type: ignore[union-attr]
            peers[f"{host.host}:{host.port}"] += 1
            holder.transport.loseConnection()  # type: ignore[union-attr]
        yield gatherResults([h.lost for h in holders]).addTimeout(120, reactor)
        yield self.waitForServerRecords(before["connection.accepted"] + self.idle,
                                        before["connection.closed"] + self.idle)
        yield _sleep(1.0)
        after = _rss(self.pid)
        self.assertAuditedOnce(peers, before)
        return opened, peak, after

    @inlineCallbacks
    def test_idleConnections(self) -> Any:
        """
        Twice, L{idle} concurrent mTLS connections are opened, all held open
        at once, then closed: each is audited once as accepted and once as
        closed, none is rejected, and the chain verifies.  The memory the
        first round took is reused by the second (CPython and the C
        allocator keep freed memory for reuse rather than give it back): the
        second round adds almost nothing, so nothing leaks per connection.
        """
        baseline = yield self.warmUp()
        opened1, peak1, after1 = yield self.holdAndClose()
        opened2, peak2, after2 = yield self.holdAndClose()
        self.assertEqual(self.counts()["handshake.rejected"], 0)
        yield self.server.stop()
        self.assertTrue(verifyFiles([self.audit]).ok, verifyFiles([self.audit]).problems)
        # a leak of even 4 KiB per connection would show as idle * 4 KiB
        self.assertLess(after2 - after1, max(16 * 1024 * 1024, self.idle * 4096))
        self.assertLess(peak2 - peak1, max(16 * 1024 * 1024, self.idle * 4096))
        perConnection = (peak1 - baseline) / self.idle
        _figure("idle connections", f"{self.idle} opened in {opened1:.1f}s and {opened2:.1f}s, "
                "all held at once, all closed, twice")
        _figure("idle connections: server RSS",
                f"{_mib(baseline)} before, {_mib(peak1)} with all open "
                f"({perConnection / 1024:.1f} KiB each), {_mib(after1)} after closing; "
                f"second round {_mib(peak2)} open, {_mib(after2)} closed")


# -- faults -------------------------------------------------------------------------


MODAL_BACKEND = r'''
import json, os, socket, sys
from twisted.internet import reactor
from twisted.internet.task import LoopingCall
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

port, modeFile, stateFile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
state = {"open": 0, "total": 0}

def save():
    with open(stateFile + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(stateFile + ".tmp", stateFile)

class Backend(LineReceiver):
    """echo: answers backend:LINE; reset: RST on the first bytes; stall: never reads"""
    delimiter = b"\n"

    def connectionMade(self):
        with open(modeFile) as f:
            self.mode = f.read().strip()
        state["open"] += 1
        state["total"] += 1
        save()
        if self.mode == "stall":
            # read nothing, but notice (from TCP_INFO) when the proxy drops us
            self.transport.pauseProducing()
            self.watch = LoopingCall(self.peek)
            self.watch.start(0.1)

    def peek(self):
        # tcpi_state: 1 is ESTABLISHED; a FIN or RST from the proxy ends it
        info = self.transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        if info[0] != 1:
            self.transport.abortConnection()

    def dataReceived(self, data):
        if self.mode == "reset":
            self.transport.abortConnection()
        elif self.mode == "echo":
            LineReceiver.dataReceived(self, data)

    def lineReceived(self, line):
        self.sendLine(b"backend:" + line)

    def connectionLost(self, reason):
        if getattr(self, "watch", None) is not None and self.watch.running:
            self.watch.stop()
        state["open"] -= 1
        save()

factory = Factory.forProtocol(Backend)
factory.noisy = False
save()
reactor.listenTCP(port, factory, interface="127.0.0.1")
print("backend listening on %d" % port, flush=True)
reactor.run()
'''


class PipedProgram:
    """
    A subprocess whose output goes to a pipe read by a thread (so that the
    process's file size limit does not apply to its log), stopped in
    cleanup.
    """

    def __init__(self, test: SynchronousTestCase, argv: Sequence[str], cwd: str) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=_env(), cwd=cwd)
        self._chunks: List[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        test.addCleanup(self.stop)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):  # type: ignore
            self._chunks.append(chunk)

    @property
    def out(self) -> bytes:
        return b"".join(self._chunks)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)

    def describe(self) -> str:
        return f"argv: {self.argv}\nexit: {self.process.poll()}\n" \
            f"output: {self.out.decode('utf-8', 'replace')}"


def _readUntilClosed(s: socket.socket, stopAt: Optional[bytes] = None) -> Tuple[bytes, float]:
    """
    Read from C{s} until the server closes it (or C{stopAt} arrives),
    bounded by the socket's timeout.

    @return: what was read, and how long it took.
    """
    started = time.monotonic()
    data = b""
    try:
        while stopAt is None or stopAt not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    return data, time.monotonic() - started


def _floodUntilClosed(s: ssl.SSLSocket, total: int) -> Tuple[bytes, float, int]:
    """
    Send up to C{total} bytes on C{s} and read what comes back, from this
    thread alone (one SSL connection must never be read in one thread while
    another writes to it: OpenSSL's connection objects are not thread-safe),
    until the server closes the connection, bounded by the socket's timeout.

    @return: what was read, how long it took, and how many bytes were sent.
    """
    deadline, size = s.gettimeout() or PEER_TIMEOUT, total
    s.setblocking(False)
    started = time.monotonic()
    block, data = b"x" * 65536, b""
    while time.monotonic() - started < deadline:
        readable, writable, _ = select.select([s], [s] if total > 0 else [], [], 0.1)
        try:
            if readable or s.pending():
                got = s.recv(65536)
                if not got:
                    break
                data += got
            if writable and total > 0:
                total -= s.send(block[:total])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            continue
        except (ssl.SSLError, OSError):
            break
    return data, time.monotonic() - started, size - total


class FaultTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate} (mTLS in front of a plaintext backend,
    writing an audit file) when its audit file cannot be written, its CRL
    directory disappears and its backend refuses, resets or stalls.  The
    client side is Python's C{ssl} module (OpenSSL).  Replacing the
    certificate or key with garbage before a SIGHUP is covered by
    L{tests.test_tap.ReloadTests.test_sighupReload}.
    """

    def tlsConnect(self, port: int, client: str = "client") -> ssl.SSLSocket:
        """
        A TLS connection to 127.0.0.1:C{port} presenting C{client}'s
        certificate, verifying the server as C{localhost}.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(self.pki.path("ca.pem"))
        context.load_cert_chain(self.pki.path(f"{client}.pem"), self.pki.path(f"{client}.key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
        self.addCleanup(raw.close)
        s = context.wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(s.close)
        return s

    def lineThrough(self, port: int, line: bytes, client: str = "client") -> bytes:
        """
        Send C{line} and read until the backend's answer arrives or the
        server closes; then close.

        @return: what came back.
        """
        with self.tlsConnect(port, client) as s:
            s.sendall(line + b"\n")
            data, _ = _readUntilClosed(s, b"backend:" + line + b"\n")
        return data

    def assertThrough(self, port: int, line: bytes) -> None:
        self.assertEqual(self.lineThrough(port, line), b"backend:" + line + b"\n")

    def refusedEither(self, port: int, line: bytes, client: str = "client") -> float:
        """
        Send C{line}; the server closes the connection without any answer
        from the backend.

        @return: how long until the close.
        """
        with self.tlsConnect(port, client) as s:
            try:
                s.sendall(line + b"\n")
            except (ssl.SSLError, OSError):
                pass
            data, elapsed = _readUntilClosed(s)
        self.assertNotIn(b"backend:", data)
        return elapsed

    def modalBackend(self, port: int) -> Tuple[str, str]:
        """
        Start L{MODAL_BACKEND} on C{port} in C{echo} mode.

        @return: the mode file and the state file.
        """
        script = os.path.join(self.workdir, "modal-backend.py")
        with open(script, "w") as f:
            f.write(MODAL_BACKEND)
        mode, state = os.path.join(self.workdir, "mode"), os.path.join(self.workdir, "state")
        with open(mode, "w") as f:
            f.write("echo")
        self.startListening(lambda p: [sys.executable, script, str(p), mode, state],
                            "modal-backend", lambda p: b"backend listening on %d" % p, port)
        return mode, state

    def backendState(self, state: str) -> Dict[str, int]:
        with open(state) as f:
            return json.load(f)  # type: ignore[no-any-return]

    def finish(self, twistd: Any, complete: bool = True) -> List[Dict[str, Any]]:
        """
        Stop C{twistd}; the audit file verifies (and is complete, unless
        not C{complete}: then it says it is not), states the policy, and
        audits each accepted connection once as closed.

        @return: the audit records.
        """
        twistd.stop()
        self.assertVerifies(self.audit, complete=complete)
        records = readChain(self.audit)
        [loaded] = [r for r in records if r["event"] == "policy.loaded"]
        self.assertEqual((loaded["profile"], loaded["clientAuth"]), ("nist-800-52r2", "required"))
        accepted = [r["connection"] for r in records if r["event"] == "connection.accepted"]
        closed = [r["connection"] for r in records if r["event"] == "connection.closed"]
        self.assertEqual(sorted(accepted), sorted(closed))
        return records

    def test_auditFileUnwritable(self) -> None:
        """
        When the audit file stops growing (the server's file size limit is
        lowered to its size: writes fail with EFBIG), the next verified
        client is refused with C{audit_unavailable} before any backend
        connection and so is the one after; twistd logs it as critical and
        keeps running, and the file keeps ending on a whole record.  Once
        the limit is lifted, the next client gets through, a C{chain.gap}
        record counts the three lost records, and C{audit verify} finds the
        chain intact and reports it incomplete (exit status 3) for them.
        """
        try:
            import resource
            resource.prlimit  # noqa: B018
        except (ImportError, AttributeError):
            raise SkipTest("needs resource.prlimit (Linux)")
        backendPort, backend, count = self.backend()
        port = _freePort()
        assert TWISTD is not None
        twistd = PipedProgram(self, [TWISTD, "-n", "--pidfile=", "securetcp", "terminate",
                                     *self.mtlsListen(port),
                                     "--backend", f"tcp:127.0.0.1:{backendPort}",
                                     "--audit-log", self.audit], self.workdir)
        _blockingWaitUntil(lambda: b"starting on %d" % port in twistd.out, PEER_TIMEOUT,
                           "twistd to listen", twistd.describe)
        self.assertThrough(port, b"before")
        self.waitForEvent("connection.closed")
        size = os.path.getsize(self.audit)
        limits = resource.prlimit(twistd.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(twistd.pid, resource.RLIMIT_FSIZE, (size, limits[1]))
        try:
            for n in range(2):
                self.refusedEither(port, b"while unwritable %d" % n)
            _blockingWaitUntil(lambda: b"cannot be written" in twistd.out, PEER_TIMEOUT,
                               "the critical log line", twistd.describe)
            self.assertIn(b"REFUSED", twistd.out)
            self.assertTrue(twistd.running, twistd.describe())
            self.assertEqual(os.path.getsize(self.audit), size)
            self.assertEqual(self.connectionCount(count), 1)
        finally:
            resource.prlimit(twistd.pid, resource.RLIMIT_FSIZE, limits)
        self.assertThrough(port, b"after")
        self.assertEqual(self.connectionCount(count), 2)
        [gap] = self.waitForEvent("chain.gap")
        self.assertEqual(gap["lost"], 3)
        self.waitForEvent("connection.closed", 2)
        records = self.finish(twistd, complete=False)
        self.assertEqual(verifyFiles([self.audit]).completeness.lost, 3)
        self.assertEqual(sum(r["event"] == "connection.accepted" for r in records), 2)
        self.assertNotIn(b"while unwritable", open(self.audit, "rb").read())

    def test_crlDirectoryDisappears(self) -> None:
        """
        When the C{crlDir} directory disappears, the periodic check
        (C{crlReload=1}) audits C{revocation.crl_refused} naming it and the
        CRLs loaded before stay in force: the revoked client is still
        rejected as C{revoked}, a good one still gets through.  A SIGHUP
        meanwhile is refused (C{policy.reload_refused}) and changes nothing.
        When the directory comes back with a new CRL, it is loaded
        (C{revocation.crl_loaded}) and applies; C{audit verify} passes.
        """
        import datetime

        from cryptography import x509

        with open(self.pki.path("client2.pem"), "rb") as f:
            client2 = x509.load_pem_x509_certificate(f.read())
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
        crlDir = os.path.join(self.workdir, "crls")
        os.makedirs(crlDir)
        with open(os.path.join(crlDir, "ca.crl.pem"), "wb") as f:
            f.write(craftCRL(self.pki, [client2], number=1, nextUpdate=later))
        backendPort, backend, count = self.backend()

        def listen(p: int) -> List[str]:
            option, value = self.mtlsListen(p)
            return [option, value + f":crlDir={_escape(crlDir)}:crlReload=1"]

        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, listen=listen)

        def revokedStillRejected(times: int) -> None:
            self.refusedEither(port, b"revoked device", client="client2")
            self.waitForEvent("handshake.rejected", times, reason="revoked")
            self.assertThrough(port, b"good device")

        revokedStillRejected(1)
        shutil.rmtree(crlDir)
        [refused] = self.waitForEvent("revocation.crl_refused")[:1]
        self.assertIn("crls", refused["detail"])
        self.assertIn("does not exist", refused["detail"])
        revokedStillRejected(2)

        os.kill(twistd.pid, signal.SIGHUP)
        [reload] = self.waitForEvent("policy.reload_refused")
        self.assertIn("crlDir", reload["detail"])
        revokedStillRejected(3)
        self.assertTrue(twistd.running, twistd.describe())

        os.makedirs(crlDir + ".new")
        with open(os.path.join(crlDir + ".new", "ca.crl.pem"), "wb") as f:
            f.write(craftCRL(self.pki, [], number=2, nextUpdate=later))
        os.rename(crlDir + ".new", crlDir)
        self.waitForEvent("revocation.crl_loaded")
        self.assertEqual(self.lineThrough(port, b"no longer revoked", client="client2"),
                         b"backend:no longer revoked\n")
        refusals = len(_events(self.audit, "revocation.crl_refused"))
        records = self.finish(twistd)
        self.assertEqual(sum(r.get("reason") == "revoked" for r in records), 3)
        _figure("CRL directory missing: crl_refused records (one per crlReload check)", refusals)

    def test_backendRefusesResetsStalls(self) -> None:
        """
        Behind C{terminate --idle-timeout 1}: a backend that refuses the
        connection gets the TLS client closed cleanly and a
        C{proxy.backend_failed} record; one that resets the connection gets
        the client closed; one that accepts and never reads or answers gets
        the client closed after the idle timeout, and its own connection
        closed too, also when the client had sent it megabytes.  The proxy
        serves a good backend after each, and C{audit verify} passes.
        """
        backendPort = _freePort()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, "--idle-timeout", "1",
                                   listen=self.mtlsListen)
        # refused: nobody listens yet
        self.refusedEither(port, b"anyone there?")
        [failed] = self.waitForEvent("proxy.backend_failed")
        self.assertIn("refused", failed["detail"])

        mode, state = self.modalBackend(backendPort)
        self.assertThrough(port, b"echo")

        with open(mode, "w") as f:
            f.write("reset")
        reset = self.refusedEither(port, b"reset me")
        self.assertLess(reset, 1.0)
        self.assertTrue(twistd.running, twistd.describe())
        with open(mode, "w") as f:
            f.write("echo")
        self.assertThrough(port, b"after the reset")

        with open(mode, "w") as f:
            f.write("stall")
        stalled = self.refusedEither(port, b"stall me")
        self.assertGreaterEqual(stalled, 0.9)
        self.assertLess(stalled, 4.0)
        _blockingWaitUntil(lambda: self.backendState(state)["open"] == 0, PEER_TIMEOUT,
                           "the stalled backend connection to be closed")

        # megabytes towards a backend that never reads
        with self.tlsConnect(port) as s:
            data, flooded, sent = _floodUntilClosed(s, 8 * 1024 * 1024)
        self.assertEqual(data, b"")
        self.assertGreater(sent, 1024 * 1024)
        self.assertLess(flooded, 4.0)
        _blockingWaitUntil(lambda: self.backendState(state)["open"] == 0, PEER_TIMEOUT,
                           "the flooded stalled backend connection to be closed",
                           lambda: json.dumps(self.backendState(state)))

        with open(mode, "w") as f:
            f.write("echo")
        self.assertThrough(port, b"after the stall")
        self.assertTrue(twistd.running, twistd.describe())
        self.waitForEvent("connection.closed", 7)
        records = self.finish(twistd)
        self.assertEqual(sum(r["event"] == "proxy.backend_failed" for r in records), 1)
        self.assertEqual(sum(r["event"] == "handshake.rejected" for r in records), 0)
        _figure("backend faults: reset closed after (s)", round(reset, 3))
        _figure("backend faults: stalled closed after (s)", round(stalled, 3))
        _figure("backend faults: stalled with 8 MiB upload closed after (s)", round(flooded, 3))
