"""
Tests for L{securetcp.revocation.fetch}: every response securetcp fetches
(OCSP checks and its own staple) is bounded in size and time.  Each test
runs a real HTTP server on 127.0.0.1 (a raw Twisted protocol, so it can lie
about C{Content-Length}, stream zeros without end, or stall) and fetches
from it with Twisted's HTTP client, as the server does.
"""

from __future__ import annotations

import time
from typing import Any, List, Optional

from cryptography import x509
from twisted.internet import reactor
from twisted.internet.defer import Deferred, TimeoutError, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.trial.unittest import TestCase

from securetcp.revocation.fetch import MAX_RESPONSE_BYTES, ResponseTooLarge, post
from securetcp.revocation.ocsp import OCSPChecker, httpPoster

from ._pki import sharedPKI

#: What the streaming server writes at a time.
CHUNK = b"\0" * 16384


class _Responder(Protocol):
    """
    Answers any request once its headers came: C{length} (or none) as
    C{Content-Length}, then C{body}, then (with C{stream}) zeros until the
    client goes away; counts the bytes of body it wrote.
    """

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.buffer = b""
        self.loop: Optional[LoopingCall] = None

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer or self.loop is not None or self.server.answered:
            return
        self.server.answered = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
        if self.server.length is not None:
            head += b"Content-Length: %d\r\n" % self.server.length
        else:
            head += b"Connection: close\r\n"
        assert self.transport is not None
        self.transport.write(head + b"\r\n" + self.server.body)
        self.server.written += len(self.server.body)
        if self.server.stream:
            self.loop = LoopingCall(self.more)
            self.loop.start(0.001)
        elif self.server.length is None:
            self.transport.loseConnection()

    def more(self) -> None:
        assert self.transport is not None
        for _ in range(16):
            self.transport.write(CHUNK)
            self.server.written += len(CHUNK)

    def connectionLost(self, reason: Any = None) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.server.closed.append(time.monotonic())


class _Server(Factory):
    def __init__(self, length: Optional[int], body: bytes = b"", stream: bool = False) -> None:
        self.length, self.body, self.stream = length, body, stream
        self.written = 0
        self.answered = False
        self.closed: List[float] = []

    def buildProtocol(self, addr: Any) -> _Responder:
        return _Responder(self)


class BoundedFetchTests(TestCase):
    """
    L{post} refuses responses above the bound, stops reading them, and
    gives up after the timeout, each with a readable reason.
    """

    def serve(self, server: _Server) -> str:
        port = reactor.listenTCP(0, server, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/"

    def closed(self, server: _Server) -> Deferred[None]:
        """
        Fires once the server saw the connection close (bounded).
        """
        d: Deferred[None] = Deferred()

        def poll(left: int) -> None:
            if server.closed:
                d.callback(None)
            elif left == 0:
                d.errback(AssertionError("the client never closed the connection"))
            else:
                reactor.callLater(0.05, poll, left - 1)  # type: ignore[attr-defined]

        poll(100)
        return d

    @inlineCallbacks
    def test_announcedTooLarge(self) -> Any:
        """
        A response announcing C{Content-Length: 2000000000} and streaming
        zeros is refused from its headers, before any of its body is kept:
        L{ResponseTooLarge} names the URL, the announced size and the bound,
        and the connection is closed while the server has written only a
        tiny part of what it announced.
        """
        server = _Server(2_000_000_000, stream=True)
        url = self.serve(server)
        failure = yield self.assertFailure(post(reactor, url, b"req", {}, 10.0),
                                           ResponseTooLarge)
        self.assertEqual((failure.announced, failure.limit), (2_000_000_000, MAX_RESPONSE_BYTES))
        self.assertLessEqual(failure.received, MAX_RESPONSE_BYTES)
        self.assertIn(url, str(failure))
        self.assertIn("announces 2000000000 bytes", str(failure))
        self.assertIn(f"at most {MAX_RESPONSE_BYTES} bytes", str(failure))
        yield self.closed(server)
        self.assertLess(server.written, 50 * 2**20)

    @inlineCallbacks
    def test_streamedTooLarge(self) -> Any:
        """
        A response without C{Content-Length} that streams zeros is read
        only until it passes the bound (a 64 KiB read at most beyond it),
        then refused and the connection closed.
        """
        server = _Server(None, stream=True)
        url = self.serve(server)
        failure = yield self.assertFailure(post(reactor, url, b"req", {}, 10.0),
                                           ResponseTooLarge)
        self.assertIsNone(failure.announced)
        self.assertGreater(failure.received, MAX_RESPONSE_BYTES)
        self.assertLessEqual(failure.received, MAX_RESPONSE_BYTES + 65536)
        self.assertIn(f"sent more than {MAX_RESPONSE_BYTES} bytes", str(failure))
        yield self.closed(server)

    @inlineCallbacks
    def test_smallerLimit(self) -> Any:
        """
        The bound is a parameter: with 1000 bytes, a 1001-byte answer is
        refused and a 1000-byte answer is returned whole.
        """
        url = self.serve(_Server(1001, b"x" * 1001))
        yield self.assertFailure(post(reactor, url, b"req", {}, 10.0, limit=1000),
                                 ResponseTooLarge)
        url = self.serve(_Server(1000, b"y" * 1000))
        body = yield post(reactor, url, b"req", {}, 10.0, limit=1000)
        self.assertEqual(body, b"y" * 1000)

    @inlineCallbacks
    def test_stalled(self) -> Any:
        """
        A responder that sends its headers and then nothing fails after
        the timeout, naming the URL and the seconds, and the connection is
        closed.
        """
        server = _Server(5000, b"z" * 10)
        url = self.serve(server)
        started = time.monotonic()
        failure = yield self.assertFailure(post(reactor, url, b"req", {}, 0.5), TimeoutError)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn(f"no complete response from {url} within 0.5 s", str(failure))
        yield self.closed(server)

    @inlineCallbacks
    def test_ocspCheckerReportsIt(self) -> Any:
        """
        Through L{httpPoster}, as the server checks a peer, a 2 GB
        responder makes the OCSP status C{unknown} (unreachable), with the
        size refusal as its detail.
        """
        pki = sharedPKI()
        server = _Server(2_000_000_000, stream=True)
        url = self.serve(server)
        checker = OCSPChecker(reactor, httpPoster(reactor), url, timeout=10.0)
        with open(pki.path("client.pem"), "rb") as f:
            leaf = x509.load_pem_x509_certificate(f.read())
        with open(pki.path("ca.pem"), "rb") as f:
            issuer = x509.load_pem_x509_certificate(f.read())
        status = yield checker.check(leaf, issuer)
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIn("announces 2000000000 bytes", status.detail)
        yield self.closed(server)
