# -*- test-case-name: tests.test_ocsp -*-
"""
OCSP checks: an asynchronous checker with a cache, the fetcher that keeps a
server's own stapled response fresh, and what an answer means under a
policy (L{judge}, L{decide}).

    checker = OCSPChecker(clock, httpPoster(reactor), responder)
    decision, facts = yield decide(checker, policy.revocation, chain, stapled, trust)

The I/O is thin: L{OCSPChecker} posts requests with Twisted's HTTP client
(never a blocking call in the reactor; every answer bounded in size and
time by L{securetcp.revocation.fetch}) and caches answers by issuer and
serial until their C{nextUpdate}; requests and responses themselves are
built and validated by pure functions (L{securetcp.revocation.ocspresponse}).
"""

from __future__ import annotations

import collections
import datetime
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp._interfaces import IOCSPChecker, IStapler
from securetcp.policy import Revocation
from securetcp.revocation.fetch import MAX_RESPONSE_BYTES, post
from securetcp.revocation.ocspresponse import (
    OCSPStatus,
    buildRequest,
    findIssuer,
    responderURL,
    validateResponse,
)

__all__ = ["DEFAULT_TTL", "Decision", "OCSPChecker", "OCSPStatus", "Poster", "StapleFetcher",
           "buildRequest", "checkerFor", "decide", "findIssuer", "httpPoster", "judge", "responderURL",
           "validateResponse"]

_log = Logger(namespace="securetcp.ocsp")

#: How long a response without nextUpdate is cached.
DEFAULT_TTL = datetime.timedelta(hours=1)


def _cacheKey(leaf: x509.Certificate, issuer: x509.Certificate) -> Tuple[bytes, int]:
    digest = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    return (digest, leaf.serial_number)


Poster = Callable[[str, bytes, float], "Deferred[bytes]"]


def httpPoster(reactor: Any, limit: int = MAX_RESPONSE_BYTES) -> Poster:
    """
    POST an OCSP request with Twisted's HTTP client and return the body,
    read only up to C{limit} bytes and within the timeout given
    (L{securetcp.revocation.fetch.post}).
    """
    def postRequest(url: str, body: bytes, timeout: float) -> Deferred[bytes]:
        return post(reactor, url, body, {b"Content-Type": [b"application/ocsp-request"],
                                         b"Accept": [b"application/ocsp-response"]},
                    timeout, limit)

    return postRequest


def _whyFailed(failure: Any, timeout: float) -> str:
    """
    A readable text for why an OCSP request failed: the request was
    cancelled by its timeout, or the errors Twisted's HTTP client wraps (in
    C{ResponseFailed} and the like, whose C{reasons} are failures).
    """
    if failure.check(CancelledError, TimeoutError):
        return f"no answer within {timeout:g} s"
    inner = getattr(failure.value, "reasons", None)
    if isinstance(inner, list) and inner:
        return "; ".join(dict.fromkeys(
            _whyFailed(f, timeout) if isinstance(f, Failure) else str(f) for f in inner))
    return str(failure.getErrorMessage() or failure.type.__name__)


@implementer(IOCSPChecker)
class OCSPChecker:
    """
    Asks OCSP responders about certificates, asynchronously, with a cache
    keyed by issuer key and serial that honours C{nextUpdate}.

    @param clock: for the cache's notion of now.
    @param post: how requests are sent (L{httpPoster} in production).
    """

    def __init__(self, clock: Any, post: Poster, responder: Optional[str] = None,
                 timeout: float = 5.0, nonce: bool = True, cacheSize: int = 10000) -> None:
        self.clock = clock
        self.post = post
        self.responder = responder
        self.timeout = timeout
        self.nonce = nonce
        self.cacheSize = cacheSize
        self._cache: collections.OrderedDict[Tuple[bytes, int], OCSPStatus] = \
            collections.OrderedDict()
        self.queries = 0

    def now(self) -> datetime.datetime:
        """
        The current time, from the checker's clock.
        """
        return datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.UTC)

    def cached(self, leaf: x509.Certificate, issuer: x509.Certificate) -> Optional[OCSPStatus]:
        key = _cacheKey(leaf, issuer)
        status = self._cache.get(key)
        if status is None:
            return None
        expiry = status.nextUpdate or None
        if expiry is not None and expiry < self.now():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return status

    def remember(self, leaf: x509.Certificate, issuer: x509.Certificate,
                 status: OCSPStatus) -> None:
        if not status.reachable:
            return
        if status.nextUpdate is None:
            status = attrs.evolve(status, nextUpdate=self.now() + DEFAULT_TTL)
        self._cache[_cacheKey(leaf, issuer)] = status
        while len(self._cache) > self.cacheSize:
            self._cache.popitem(last=False)

    def check(self, leaf: x509.Certificate, issuer: x509.Certificate) -> Deferred[OCSPStatus]:
        """
        The OCSP status of C{leaf}; never fails: an unreachable responder or
        an invalid answer is C{OCSPStatus("unknown", reachable=False)}.
        """
        hit = self.cached(leaf, issuer)
        if hit is not None:
            return succeed(hit)
        url = self.responder or responderURL(leaf)
        if url is None:
            return succeed(OCSPStatus("unknown", "no OCSP responder: the certificate names none "
                                      "and ocspResponder is not set", reachable=False))
        request, nonce = buildRequest(leaf, issuer, self.nonce)
        self.queries += 1
        d = self.post(url, request, self.timeout)

        def answered(body: bytes) -> OCSPStatus:
            status = validateResponse(body, leaf, issuer, nonce, self.now())
            self.remember(leaf, issuer, status)
            return status

        def failed(failure: Any) -> OCSPStatus:
            return OCSPStatus("unknown", f"OCSP responder {url} unreachable: "
                              f"{_whyFailed(failure, self.timeout)}", reachable=False)

        return d.addCallbacks(answered, failed)  # type: ignore[return-value]


def checkerFor(revocation: Revocation, clock: IReactorTime,
               post: Poster) -> Optional[OCSPChecker]:
    """
    The OCSP checker of a policy's C{revocation} part (C{None} when it
    neither checks OCSP nor staples).
    """
    if not (revocation.ocspEnabled or revocation.staple):
        return None
    return OCSPChecker(clock, post, revocation.ocspResponder, revocation.ocspTimeout,
                       revocation.ocspNonce)


@implementer(IStapler)
class StapleFetcher:
    """
    Keeps the server's own OCSP response fresh for stapling: fetched at
    start, refreshed half-way to its C{nextUpdate} (or hourly), and kept
    until it expires if a refresh fails.
    """

    def __init__(self, leaf: x509.Certificate, issuer: x509.Certificate, checker: OCSPChecker,
                 clock: Any) -> None:
        self.leaf, self.issuer, self.checker, self.clock = leaf, issuer, checker, clock
        self.response: bytes = b""
        self.nextUpdate: Optional[datetime.datetime] = None
        self._call: Any = None
        self.stopped = False
        self._running = False

    def current(self) -> bytes:
        """
        The DER response to staple now, or C{b""} if none is valid.
        """
        if self.nextUpdate is not None and self.nextUpdate < self.checker.now():
            return b""
        return self.response

    def start(self) -> Deferred[bool]:
        self.stopped = False
        self._running = True
        return self.refresh()

    def useCertificate(self, leaf: x509.Certificate, issuer: x509.Certificate) -> None:
        """
        Staple for a new certificate (after an explicit reload): the
        response for the old one is dropped, and one for the new one is
        fetched now if the fetcher is running.
        """
        if (leaf, issuer) == (self.leaf, self.issuer):
            return
        self.leaf, self.issuer = leaf, issuer
        self.response, self.nextUpdate = b"", None
        if self._running:
            self.refresh()

    def stop(self) -> None:
        self.stopped = True
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def refresh(self) -> Deferred[bool]:
        url = self.checker.responder or responderURL(self.leaf)
        if url is None:
            _log.error("securetcp: cannot staple: our certificate names no OCSP responder and "
                       "ocspResponder is not set")
            return succeed(False)
        request, nonce = buildRequest(self.leaf, self.issuer, self.checker.nonce)
        d = self.checker.post(url, request, self.checker.timeout)

        def answered(body: bytes) -> bool:
            status = validateResponse(body, self.leaf, self.issuer, nonce, self.checker.now())
            if status.status == "good":
                self.response, self.nextUpdate = body, status.nextUpdate
                self._schedule(status.nextUpdate)
                return True
            _log.error("securetcp: own OCSP response not stapled: {detail}",
                       detail=status.detail)
            self._schedule(None, retry=True)
            return False

        def failed(failure: Any) -> bool:
            _log.error("securetcp: fetching our OCSP response failed: {error}",
                       error=failure.getErrorMessage())
            self._schedule(None, retry=True)
            return False

        return d.addCallbacks(answered, failed)  # type: ignore[return-value]

    def _schedule(self, nextUpdate: Optional[datetime.datetime], retry: bool = False) -> None:
        if self.stopped:
            return
        if retry:
            delay = 60.0
        elif nextUpdate is None:
            delay = 3600.0
        else:
            remaining = (nextUpdate - self.checker.now()).total_seconds()
            delay = max(30.0, remaining / 2)
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self.clock.callLater(delay, self.refresh)


Decision = Tuple[Optional[Tuple[str, str]], Dict[str, Any]]


def judge(status: OCSPStatus, source: str, revocation: Revocation) -> Decision:
    """
    What an OCSP answer means under a policy's C{revocation} part, as a pure
    function: C{(rejection or None, facts for the audit record)}.

    A revoked certificate is always rejected.  Without a usable answer,
    C{ocsp=require} (or C{requireStaple}) rejects under C{mode="hard"} and
    warns under C{"soft"}; C{ocsp=prefer} always accepts with a warning.

    @param source: where the answer came from, for the audit record
        (C{"responder"}, C{"stapled"}, C{"none"}).
    """
    facts: Dict[str, Any] = {"ocsp": f"{status.status} ({source})"}
    if status.status == "good":
        return None, facts
    if status.status == "revoked":
        facts.update(revocationReason=status.revocationReason,
                     revocationTime=status.revocationTime)
        return ("revoked", status.detail), facts
    strict = revocation.ocsp == "require" or revocation.requireStaple
    if strict and revocation.mode == "hard":
        return ("revocation_unknown", status.detail), facts
    facts["revocationWarning"] = (
        f"{status.detail}; accepted under "
        + ("ocsp=prefer" if not strict else "revocation=soft"))
    return None, facts


def decide(checker: IOCSPChecker, revocation: Revocation, chain: Sequence[x509.Certificate],
           stapled: Optional[bytes],
           caCerts: Sequence[x509.Certificate]) -> Deferred[Decision]:
    """
    Establish and judge the OCSP status of C{chain}'s leaf: from a valid
    stapled response if there is one, else (unless C{ocsp=off}) by asking
    the responder through C{checker}.  Never fails.
    """
    leaf = chain[0]
    issuer = chain[1] if len(chain) > 1 else findIssuer(leaf, caCerts)
    if issuer is None:
        status = OCSPStatus("unknown", "the issuer of the peer's certificate is not known",
                            reachable=False)
        return succeed(judge(status, "none", revocation))
    if stapled:
        status = validateResponse(stapled, leaf, issuer, None, checker.now())
        if status.reachable:
            checker.remember(leaf, issuer, status)
            return succeed(judge(status, "stapled", revocation))
        if revocation.requireStaple:
            return succeed(judge(status, "stapled", revocation))
    elif revocation.requireStaple:
        return succeed((("staple_missing",
                         "the server stapled no OCSP response and requireStaple is set"),
                        {"ocsp": "missing"}))
    if revocation.ocsp == "off":
        return succeed((None, {}))
    return checker.check(leaf, issuer).addCallback(  # type: ignore[return-value]
        lambda status: judge(status, "responder", revocation))
