# -*- test-case-name: tests.test_fetch -*-
"""
Every HTTP response securetcp fetches (OCSP answers for peers, its own
stapled response) is read through L{post}: bounded in size
(L{MAX_RESPONSE_BYTES} by default) and in time, so a responder that
announces or streams gigabytes, or trickles, costs at most that much
memory and that many seconds::

    body = yield post(reactor, "http://ocsp.example/", request,
                      {b"Content-Type": [b"application/ocsp-request"]}, timeout=5.0)

A response larger than the bound fails with L{ResponseTooLarge} as soon as
it is known (from its C{Content-Length}, or once that many bytes came),
and the connection is closed: nothing more is read.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Dict, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

#: No response securetcp fetches may be larger (an OCSP response is a few
#: kilobytes; a large one with many certificates stays well below this).
MAX_RESPONSE_BYTES = 64 * 1024


class ResponseTooLarge(ValueError):
    """
    A fetched response is (or announces to be) larger than allowed; the
    connection was closed without reading the rest.

    @ivar url: what was fetched.
    @ivar limit: the most bytes allowed.
    @ivar announced: the C{Content-Length} it announced, if any.
    @ivar received: the bytes of its body read before giving up.
    """

    def __init__(self, url: str, limit: int, announced: Optional[int], received: int) -> None:
        self.url, self.limit, self.announced, self.received = url, limit, announced, received
        size = (f"announces {announced} bytes" if announced is not None
                else f"sent more than {limit} bytes")
        super().__init__(f"the response from {url} {size}; at most {limit} bytes are read")


class _BoundedBody(Protocol):
    """
    Collects a response body of at most C{limit} bytes into C{finished}.
    """

    def __init__(self, url: str, limit: int, announced: Optional[int],
                 finished: Deferred[bytes]) -> None:
        self.url, self.limit, self.announced = url, limit, announced
        self.finished = finished
        self.received = 0
        self.chunks: List[bytes] = []

    def connectionMade(self) -> None:
        if self.announced is not None and self.announced > self.limit:
            self._refuse()

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.received += len(data)
        if self.received > self.limit:
            self._refuse()
            return
        self.chunks.append(data)

    def _refuse(self) -> None:
        self.chunks = []
        if not self.finished.called:
            self.finished.errback(ResponseTooLarge(self.url, self.limit, self.announced,
                                                   self.received))
        producer: Any = self.transport  # the response's producer: closes the connection
        producer.stopProducing()

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        if self.finished.called:
            return
        if reason.check(ResponseDone):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def readBounded(response: Any, url: str, limit: int = MAX_RESPONSE_BYTES) -> Deferred[bytes]:
    """
    The body of C{response} (an C{IResponse}), if it is at most C{limit}
    bytes; cancelling the result closes the connection.
    """
    length = response.length if isinstance(response.length, int) else None
    holder: Dict[str, _BoundedBody] = {}

    def cancel(d: Deferred[bytes]) -> None:
        body = holder.get("body")
        producer: Any = body.transport if body is not None else None
        if producer is not None:
            producer.stopProducing()

    finished: Deferred[bytes] = Deferred(cancel)
    holder["body"] = _BoundedBody(url, limit, length, finished)
    response.deliverBody(holder["body"])
    return finished


def post(reactor: Any, url: str, body: bytes, headers: Dict[bytes, List[bytes]],
         timeout: float, limit: int = MAX_RESPONSE_BYTES) -> Deferred[bytes]:
    """
    POST C{body} to C{url} and return the response's body: it fails if the
    answer is not HTTP 200, is larger than C{limit} bytes
    (L{ResponseTooLarge}), or has not fully come within C{timeout} seconds
    (Twisted's C{TimeoutError}, naming the seconds); the connection is
    then closed.
    """
    from twisted.web.client import Agent, FileBodyProducer
    from twisted.web.http_headers import Headers

    agent = Agent(reactor, connectTimeout=timeout)
    d = agent.request(b"POST", url.encode("ascii"), Headers(headers),
                      FileBodyProducer(BytesIO(body)))

    def gotResponse(response: Any) -> Deferred[bytes]:
        if response.code != 200:
            raise ValueError(f"HTTP {response.code} from {url}")
        return readBounded(response, url, limit)

    answer: Deferred[bytes] = d.addCallback(gotResponse)  # type: ignore[assignment]

    def timedOut(failure: Failure) -> Failure:
        from twisted.internet.defer import TimeoutError

        if failure.check(TimeoutError):
            raise TimeoutError(f"no complete response from {url} within {timeout:g} s")
        return failure

    answer.addTimeout(timeout, reactor)
    return answer.addErrback(timedOut)
