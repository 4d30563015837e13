# -*- test-case-name: tests.test_ocsp -*-
"""
Tests for OCSP checking and stapling (L{securetcp.revocation.ocsp}, the OCSP part of
L{securetcp._tls.context} and L{securetcp.gate}, and the C{ocsp*} /
C{staple} / C{requireStaple} endpoint options).

Four kinds of test:

  - pure decisions: L{validateResponse}, L{responderURL}, L{buildRequest}
    and L{findIssuer} on responses built with C{cryptography}'s
    C{OCSPResponseBuilder}, no reactor;
  - L{OCSPChecker} with a fake C{post} and a L{Clock}: cache, failures,
    nonce;
  - handshakes in memory (L{tests._iosim}) with the endpoints' C{ocspPost}
    being L{FakeResponder}, which answers like a responder of the test CA,
    at once or when the test says so;
  - real peers over loopback: the C{openssl ocsp} responder (behind a tiny
    HTTP front on 127.0.0.1 in the test reactor, because C{openssl ocsp
    -port} binds every interface), C{openssl s_client} (with C{-status})
    and C{openssl s_server} (with C{-status_file}).
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, clientFromString, serverFromString
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from securetcp import AUDIT_NAMESPACE, AuditEmitter, HandshakeRejected, buildPolicy
from securetcp._interfaces import IStapler
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.revocation.ocsp import (
    DEFAULT_TTL,
    OCSPChecker,
    buildRequest,
    findIssuer,
    httpPoster,
    responderURL,
    validateResponse,
)

from ._crl import CRLAuthority, craftCRL
from ._iosim import connectProtocols
from ._net import escape as _escape
from ._peers import LINE, PROCESS_TIMEOUT, PeerProcess, RealPeerMixin
from ._peers import waitUntil as _waitUntil
from ._pki import AIA_URL, TestPKI, addOCSPCertificates
from ._pki import sharedPKI as _sharedPKI
from ._programs import OPENSSL
from ._programs import needOpenSSL as _needOpenSSL
from ._programs import runOpenSSL as _openssl
from ._recording import AuditRecorder, CollectorFactory, CountingEchoFactory, RecordingFactory

_NOW = datetime.datetime.now(datetime.UTC)
_MINUTE = datetime.timedelta(minutes=1)
_HOUR = datetime.timedelta(hours=1)
_DAY = datetime.timedelta(days=1)

#: what our endpoints are told the responder is, for in-memory tests (the
#: fake post answers whatever the URL)
RESPONDER = "http://ocsp.hospital.example:2560"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _der(response: ocsp.OCSPResponse) -> bytes:
    return response.public_bytes(serialization.Encoding.DER)


def sharedPKI() -> TestPKI:
    """
    One read-only test PKI, with OCSP responders and a certificate naming
    one, for the module's tests that run no external program.
    """
    return _sharedPKI("ocsp", addOCSPCertificates)


def _cert(pki: TestPKI, name: str) -> x509.Certificate:
    with open(pki.path(f"{name}.pem"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _privateKey(pki: TestPKI, name: str) -> Any:
    with open(pki.path(f"{name}.key"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


# -- making OCSP responses with cryptography ---------------------------------

_STATUS = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
           "unknown": ocsp.OCSPCertStatus.UNKNOWN}
_UNSET: Any = object()


def ocspResponse(pki: TestPKI, leaf: x509.Certificate, status: str = "good", *,
                 signer: Optional[str] = None, include: Sequence[str] = (),
                 byName: bool = False, nonce: Optional[bytes] = None,
                 thisUpdate: Optional[datetime.datetime] = None,
                 nextUpdate: Any = _UNSET,
                 revokedAt: Optional[datetime.datetime] = None,
                 reason: Optional[x509.ReasonFlags] = x509.ReasonFlags.key_compromise) -> bytes:
    """
    A DER OCSP response about C{leaf} (issued by C{pki}'s CA) asserting
    C{status}, the way a responder writes one.

    @param signer: the PKI file name whose key signs it; the CA by default.
    @param include: PKI certificates to put in the response's C{certs}.
    @param byName: identify the responder by name rather than key hash.
    @param nextUpdate: default an hour from C{thisUpdate}; C{None}: absent.
    """
    thisUpdate = thisUpdate or _utcnow() - _MINUTE
    if nextUpdate is _UNSET:
        nextUpdate = thisUpdate + _HOUR
    revoked = status == "revoked"
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=pki.ca, algorithm=hashes.SHA1(), cert_status=_STATUS[status],
        this_update=thisUpdate, next_update=nextUpdate,
        revocation_time=(revokedAt or thisUpdate - _DAY) if revoked else None,
        revocation_reason=reason if revoked else None)
    if signer is None:
        signerCert, signerKey = pki.ca, pki.caKey
    else:
        signerCert, signerKey = _cert(pki, signer), _privateKey(pki, signer)
    encoding = ocsp.OCSPResponderEncoding.NAME if byName else ocsp.OCSPResponderEncoding.HASH
    builder = builder.responder_id(encoding, signerCert)
    if include:
        builder = builder.certificates([_cert(pki, name) for name in include])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return _der(builder.sign(signerKey, hashes.SHA256()))


def _requestNonce(request: ocsp.OCSPRequest) -> Optional[bytes]:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


@implementer(IStapler)
class FixedStaple:
    """
    An L{IStapler} that staples the same response, C{der}, and fetches
    nothing.
    """

    def __init__(self, der: bytes) -> None:
        self.der = der

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def current(self) -> bytes:
        return self.der

    def useCertificate(self, leaf: Any, issuer: Any) -> None:
        pass


class FakeResponder:
    """
    A C{post} (for L{OCSPChecker} and the endpoints' C{ocspPost}) that
    answers like an OCSP responder of the test CA: C{good} for every
    certificate of the PKI unless C{statuses} says otherwise, with
    C{thisUpdate} a minute before C{clock}'s now and C{nextUpdate} an hour
    after, echoing the nonce.

    @ivar hold: keep each answer in C{pending} until L{release}.
    @ivar failWith: fail every request with this exception instead.
    @ivar requests: C{(url, request, timeout)} of every request.
    """

    def __init__(self, pki: TestPKI, clock: Any, statuses: Optional[Dict[str, str]] = None,
                 hold: bool = False) -> None:
        self.pki = pki
        self.clock = clock
        self.statuses = dict(statuses or {})
        self.hold = hold
        self.failWith: Optional[Exception] = None
        self.echoNonce = True
        self.requests: List[Tuple[str, ocsp.OCSPRequest, float]] = []
        self.pending: List[Tuple[Deferred[bytes], bytes]] = []
        self.known: Dict[int, Tuple[str, x509.Certificate]] = {}
        for name in ("server", "server-good", "client", "client2", "client-expired",
                     "client-eku", "client-aia"):
            cert = _cert(pki, name)
            self.known[cert.serial_number] = (name, cert)

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.UTC)

    def __call__(self, url: str, body: bytes, timeout: float) -> Deferred[bytes]:
        request = ocsp.load_der_ocsp_request(body)
        self.requests.append((url, request, timeout))
        if self.failWith is not None:
            return fail(self.failWith)
        name, cert = self.known[request.serial_number]
        der = ocspResponse(self.pki, cert, self.statuses.get(name, "good"),
                           nonce=_requestNonce(request) if self.echoNonce else None,
                           thisUpdate=self.now() - _MINUTE)
        if self.hold:
            d: Deferred[bytes] = Deferred()
            self.pending.append((d, der))
            return d
        return succeed(der)

    def release(self) -> None:
        """
        Deliver every held answer.
        """
        pending, self.pending = self.pending, []
        for d, der in pending:
            d.callback(der)


# -- 1. validating responses ---------------------------------------------------


class ValidateResponseTests(SynchronousTestCase):
    """
    L{validateResponse} says what a response asserts about a certificate,
    and refuses (C{unknown}, C{reachable=False}) any response it cannot
    trust.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.leaf = _cert(self.pki, "client")

    def validate(self, der: bytes, nonce: Optional[bytes] = None,
                 leaf: Optional[x509.Certificate] = None) -> Any:
        return validateResponse(der, leaf or self.leaf, self.pki.ca, nonce, _utcnow())

    def assertRefused(self, status: Any, detail: str) -> None:
        self.assertEqual((status.status, status.reachable), ("unknown", False), status)
        self.assertIn(detail, status.detail)

    def test_good(self) -> None:
        """
        A C{good} response signed by the issuer gives C{good}, reachable,
        with the response's C{nextUpdate}.
        """
        thisUpdate = (_utcnow() - _MINUTE).replace(microsecond=0)
        status = self.validate(ocspResponse(self.pki, self.leaf, thisUpdate=thisUpdate))
        self.assertEqual((status.status, status.reachable), ("good", True))
        self.assertEqual(status.nextUpdate, thisUpdate + _HOUR)
        self.assertIsNone(status.revocationReason)

    def test_revoked(self) -> None:
        """
        A C{revoked} response gives C{revoked} with the RFC 5280 reason name
        (C{keyCompromise}, as CRL rejections record it) and the revocation
        time in ISO form.
        """
        when = datetime.datetime(2024, 3, 1, 12, 30, 5, tzinfo=datetime.UTC)
        status = self.validate(ocspResponse(self.pki, self.leaf, "revoked", revokedAt=when))
        self.assertEqual(status.status, "revoked")
        self.assertTrue(status.reachable)
        self.assertEqual(status.revocationReason, "keyCompromise")
        self.assertEqual(status.revocationTime, "2024-03-01T12:30:05Z")

    def test_revokedWithoutReason(self) -> None:
        """
        A C{revoked} response without a reason code still gives C{revoked},
        with C{revocationReason} C{None}.
        """
        status = self.validate(ocspResponse(self.pki, self.leaf, "revoked", reason=None))
        self.assertEqual((status.status, status.revocationReason), ("revoked", None))

    def test_unknown(self) -> None:
        """
        An authoritative C{unknown} answer is C{unknown} but reachable: the
        responder was asked and answered.
        """
        status = self.validate(ocspResponse(self.pki, self.leaf, "unknown"))
        self.assertEqual((status.status, status.reachable), ("unknown", True))

    def test_delegatedResponder(self) -> None:
        """
        A response signed by a responder certificate that the issuer gave the
        OCSP-signing EKU, included in the response, is accepted, whether the
        responder is named by key hash or by name.
        """
        for byName in (False, True):
            der = ocspResponse(self.pki, self.leaf, signer="responder", include=["responder"],
                               byName=byName)
            self.assertEqual(self.validate(der).status, "good", byName)

    def test_delegatedWithoutEKU(self) -> None:
        """
        A responder certificate issued by the CA but without the OCSP-signing
        EKU is not authorised: its response is refused.
        """
        der = ocspResponse(self.pki, self.leaf, "revoked", signer="responder-noeku",
                           include=["responder-noeku"])
        self.assertRefused(self.validate(der), "not signed by the issuer")

    def test_delegatedByAnotherCA(self) -> None:
        """
        A responder with the OCSP-signing EKU issued by another CA is not
        authorised by the leaf's issuer.
        """
        der = ocspResponse(self.pki, self.leaf, signer="responder-other",
                           include=["responder-other"])
        self.assertRefused(self.validate(der), "not signed by the issuer")

    def test_unrelatedKey(self) -> None:
        """
        A response signed by an unrelated (self-signed) key is refused, with
        or without its certificate in the response.
        """
        for include in ([], ["stranger"]):
            der = ocspResponse(self.pki, self.leaf, signer="stranger", include=include)
            self.assertRefused(self.validate(der), "not signed by the issuer")

    def test_impostorNamedAsIssuer(self) -> None:
        """
        A response whose responder ID is the issuer's name but which is
        signed by another key fails the signature check.
        """
        der = ocspResponse(self.pki, self.leaf, signer="impostor", byName=True)
        self.assertRefused(self.validate(der), "bad signature")

    def test_badSignature(self) -> None:
        """
        A response whose signature was altered (its last byte flipped) is
        refused as a bad signature.
        """
        der = bytearray(ocspResponse(self.pki, self.leaf))
        der[-1] ^= 0x01
        self.assertRefused(self.validate(bytes(der)), "bad signature")

    def test_wrongSerial(self) -> None:
        """
        A valid response about another certificate of the same CA does not
        vouch for this one.
        """
        der = ocspResponse(self.pki, _cert(self.pki, "client2"))
        self.assertRefused(self.validate(der), "does not cover this certificate")

    def test_nonce(self) -> None:
        """
        When a nonce was sent, an echo of it is accepted, a different nonce
        is refused as a possible replay, and a response with no nonce is
        accepted (many responders pre-sign their answers).
        """
        nonce = os.urandom(16)
        self.assertEqual(self.validate(ocspResponse(self.pki, self.leaf, nonce=nonce),
                                       nonce=nonce).status, "good")
        self.assertRefused(
            self.validate(ocspResponse(self.pki, self.leaf, nonce=os.urandom(16)), nonce=nonce),
            "nonce mismatch")
        self.assertEqual(self.validate(ocspResponse(self.pki, self.leaf), nonce=nonce).status,
                         "good")

    def test_thisUpdateInFuture(self) -> None:
        """
        A response whose C{thisUpdate} is beyond the allowed clock skew in
        the future is refused; one a minute ahead is within the skew.
        """
        self.assertRefused(
            self.validate(ocspResponse(self.pki, self.leaf, thisUpdate=_utcnow() + _HOUR)),
            "in the future")
        self.assertEqual(self.validate(
            ocspResponse(self.pki, self.leaf, thisUpdate=_utcnow() + _MINUTE)).status, "good")

    def test_stale(self) -> None:
        """
        A response whose C{nextUpdate} has passed is refused as stale.
        """
        der = ocspResponse(self.pki, self.leaf, thisUpdate=_utcnow() - 2 * _DAY,
                           nextUpdate=_utcnow() - _DAY)
        self.assertRefused(self.validate(der), "stale")

    def test_noNextUpdate(self) -> None:
        """
        A response without C{nextUpdate} is valid, with C{nextUpdate}
        C{None}.
        """
        status = self.validate(ocspResponse(self.pki, self.leaf, nextUpdate=None))
        self.assertEqual((status.status, status.nextUpdate), ("good", None))

    def test_unsuccessful(self) -> None:
        """
        A response whose status is not C{successful} (malformedRequest,
        internalError, tryLater, sigRequired, unauthorized) is refused,
        naming the status.
        """
        for code in ocsp.OCSPResponseStatus:
            if code is ocsp.OCSPResponseStatus.SUCCESSFUL:
                continue
            der = _der(ocsp.OCSPResponseBuilder.build_unsuccessful(code))
            self.assertRefused(self.validate(der), code.name)

    def test_garbage(self) -> None:
        """
        Bytes that are not a DER OCSP response are refused.
        """
        for data in (b"", b"<html>502 Bad Gateway</html>", b"\x30\x03\x0a\x01"):
            self.assertRefused(self.validate(data), "not a DER OCSP response")


class RequestAndResponderTests(SynchronousTestCase):
    """
    L{responderURL}, L{buildRequest} and L{findIssuer}.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()

    def test_responderURL(self) -> None:
        """
        L{responderURL} reads the OCSP URL from the certificate's Authority
        Information Access extension (not its caIssuers entry), and is
        C{None} for a certificate without one.
        """
        self.assertEqual(responderURL(_cert(self.pki, "client-aia")), AIA_URL)
        self.assertIsNone(responderURL(_cert(self.pki, "client")))

    def test_buildRequest(self) -> None:
        """
        L{buildRequest} asks about the leaf's serial under its issuer's name
        and key hashes, with a 16-byte nonce that it returns, or none.
        """
        leaf = _cert(self.pki, "client")
        der, nonce = buildRequest(leaf, self.pki.ca)
        request = ocsp.load_der_ocsp_request(der)
        self.assertEqual(request.serial_number, leaf.serial_number)
        expected = ocsp.OCSPRequestBuilder().add_certificate(
            leaf, self.pki.ca, hashes.SHA1()).build()
        self.assertEqual((request.issuer_name_hash, request.issuer_key_hash),
                         (expected.issuer_name_hash, expected.issuer_key_hash))
        assert nonce is not None
        self.assertEqual(len(nonce), 16)
        self.assertEqual(_requestNonce(request), nonce)
        der, nonce = buildRequest(leaf, self.pki.ca, nonce=False)
        self.assertIsNone(nonce)
        self.assertIsNone(_requestNonce(ocsp.load_der_ocsp_request(der)))

    def test_findIssuer(self) -> None:
        """
        L{findIssuer} picks the certificate that signed the leaf, not one
        that merely has the issuer's name.
        """
        leaf = _cert(self.pki, "client")
        impostor = _cert(self.pki, "impostor")
        self.assertEqual(findIssuer(leaf, [self.pki.otherCA, impostor, self.pki.ca]),
                         self.pki.ca)
        self.assertIsNone(findIssuer(leaf, [self.pki.otherCA, impostor]))


# -- 2. the checker: cache, failures, nonce -------------------------------------


class OCSPCheckerTests(SynchronousTestCase):
    """
    L{OCSPChecker} asks the responder, caches good answers until their
    C{nextUpdate}, and turns every failure into C{unknown}.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.clock.advance(time.time())
        self.responder = FakeResponder(self.pki, self.clock)
        self.leaf = _cert(self.pki, "client")

    def checker(self, **kwargs: Any) -> OCSPChecker:
        kwargs.setdefault("responder", RESPONDER)
        return OCSPChecker(self.clock, self.responder, **kwargs)

    def test_cachedUntilNextUpdate(self) -> None:
        """
        An answer is served from the cache until its C{nextUpdate}; after
        that the responder is asked again.
        """
        checker = self.checker()
        first = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual(first.status, "good")
        self.clock.advance(50 * 60)
        self.assertEqual(self.successResultOf(checker.check(self.leaf, self.pki.ca)), first)
        self.assertEqual((checker.queries, len(self.responder.requests)), (1, 1))
        self.clock.advance(11 * 60)
        again = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual(again.status, "good")
        self.assertEqual(checker.queries, 2)
        self.assertGreater(again.nextUpdate, first.nextUpdate)

    def test_revokedCached(self) -> None:
        """
        A C{revoked} answer is cached like a good one.
        """
        self.responder.statuses["client"] = "revoked"
        checker = self.checker()
        for _ in range(2):
            status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
            self.assertEqual(status.status, "revoked")
        self.assertEqual(checker.queries, 1)

    def test_unreachableNotCached(self) -> None:
        """
        When the post fails (connection refused) the status is C{unknown}
        and C{reachable} is false, the detail names the responder, and
        nothing is cached: the next check asks again.
        """
        self.responder.failWith = ConnectionRefusedError()
        checker = self.checker()
        status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIn(RESPONDER, status.detail)
        self.assertIn("unreachable", status.detail)
        self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual(checker.queries, 2)

    def test_timeoutIsReadable(self) -> None:
        """
        A request cut off by its timeout (Twisted's HTTP client wraps the
        cancellation in C{ResponseNeverReceived}) is described in words:
        "no answer within N s", never the repr of a Failure.  Other wrapped
        errors are given by their messages.
        """
        from twisted.internet.defer import CancelledError
        from twisted.python.failure import Failure
        from twisted.web._newclient import ResponseNeverReceived

        checker = self.checker()
        self.responder.failWith = ResponseNeverReceived([Failure(CancelledError())])
        status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual(status.detail, f"OCSP responder {RESPONDER} unreachable: "
                         f"no answer within {checker.timeout:g} s")
        self.responder.failWith = ResponseNeverReceived(
            [Failure(ConnectionRefusedError("refused here"))])
        status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual(status.detail, f"OCSP responder {RESPONDER} unreachable: "
                         "Connection was refused by other side: refused here.")

    def test_invalidAnswerNotCached(self) -> None:
        """
        An answer that does not validate is C{unknown}, not reachable, and
        not cached.
        """
        checker = OCSPChecker(self.clock, lambda url, body, timeout: succeed(b"garbage"),
                              RESPONDER)
        status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIsNone(checker.cached(self.leaf, self.pki.ca))

    def test_timeout(self) -> None:
        """
        With L{httpPoster}, a responder that does not answer within
        C{timeout} seconds gives C{unknown}, not reachable, and nothing is
        cached; the request went to the responder's host and port.
        """
        memory = MemoryReactorClock()
        memory.advance(time.time())
        checker = OCSPChecker(memory, httpPoster(memory), "http://127.0.0.1:2560/ocsp",
                              timeout=3.0)
        d = checker.check(self.leaf, self.pki.ca)
        self.assertEqual([c[:2] for c in memory.tcpClients], [("127.0.0.1", 2560)])
        memory.advance(2.9)
        self.assertNoResult(d)
        memory.advance(0.2)
        status = self.successResultOf(d)
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIsNone(checker.cached(self.leaf, self.pki.ca))

    def test_cacheBounded(self) -> None:
        """
        The cache holds at most C{cacheSize} answers, dropping the least
        recently used.
        """
        checker = self.checker(cacheSize=2)
        a, b, c = (_cert(self.pki, n) for n in ("client", "client2", "client-expired"))
        for leaf in (a, b, a, c):
            self.successResultOf(checker.check(leaf, self.pki.ca))
        self.assertEqual(checker.queries, 3)
        self.assertEqual(len(checker._cache), 2)
        self.assertIsNone(checker.cached(b, self.pki.ca))
        self.assertIsNotNone(checker.cached(a, self.pki.ca))
        self.assertIsNotNone(checker.cached(c, self.pki.ca))

    def test_nonce(self) -> None:
        """
        With C{nonce} on (the default, C{ocspNonce=true}) each request
        carries a fresh 16-byte nonce; with it off, none.
        """
        checker = self.checker()
        self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.successResultOf(checker.check(_cert(self.pki, "client2"), self.pki.ca))
        nonces = [_requestNonce(r) for _, r, _ in self.responder.requests]
        self.assertEqual([len(n or b"") for n in nonces], [16, 16])
        self.assertNotEqual(nonces[0], nonces[1])
        checker = self.checker(nonce=False)
        self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertIsNone(_requestNonce(self.responder.requests[-1][1]))

    def test_nonceMismatch(self) -> None:
        """
        A responder that answers with another request's nonce (a replay) is
        not believed.
        """
        stale = ocspResponse(self.pki, self.leaf, "good", nonce=b"0" * 16)
        checker = OCSPChecker(self.clock, lambda url, body, timeout: succeed(stale), RESPONDER)
        status = self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIn("nonce", status.detail)

    def test_responderFromAIA(self) -> None:
        """
        Without C{ocspResponder} the certificate's AIA responder is asked;
        with it, the configured URL wins; with neither, nobody is asked and
        the status is C{unknown}.
        """
        aia = _cert(self.pki, "client-aia")
        self.successResultOf(self.checker(responder=None).check(aia, self.pki.ca))
        self.successResultOf(self.checker().check(aia, self.pki.ca))
        self.assertEqual([url for url, _, _ in self.responder.requests], [AIA_URL, RESPONDER])
        status = self.successResultOf(self.checker(responder=None).check(self.leaf, self.pki.ca))
        self.assertEqual((status.status, status.reachable), ("unknown", False))
        self.assertIn("no OCSP responder", status.detail)
        self.assertEqual(len(self.responder.requests), 2)

    def test_noNextUpdateCachedForDefaultTTL(self) -> None:
        """
        An answer without C{nextUpdate} is cached for L{DEFAULT_TTL}.
        """
        der = ocspResponse(self.pki, self.leaf, nextUpdate=None,
                           thisUpdate=datetime.datetime.fromtimestamp(
                               self.clock.seconds(), datetime.UTC) - _MINUTE)
        checker = OCSPChecker(self.clock, lambda url, body, timeout: succeed(der), RESPONDER,
                              nonce=False)
        self.successResultOf(checker.check(self.leaf, self.pki.ca))
        self.clock.advance(DEFAULT_TTL.total_seconds() - 1)
        self.assertIsNotNone(checker.cached(self.leaf, self.pki.ca))
        self.clock.advance(2)
        self.assertIsNone(checker.cached(self.leaf, self.pki.ca))


# -- 3. handshakes in memory -----------------------------------------------------


class InMemoryOCSPTestCase(SynchronousTestCase):
    """
    Shared fixtures: the PKI, one L{Clock} set to the real time (responses
    are judged by it), a L{FakeResponder} and the audit records.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.clock.advance(time.time())
        self.responder = FakeResponder(self.pki, self.clock)
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                           observer=self.events.append))

    def records(self, role: str, event: Optional[str] = None) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events
                if e["securetcp_audit"].get("role") == role
                and (event is None or e["securetcp_audit"]["event"] == event)]

    def outcomes(self, role: str) -> List[Dict[str, Any]]:
        return [r for r in self.records(role)
                if r["event"] in ("connection.accepted", "handshake.rejected")]

    def serverEndpoint(self, mutual: bool = True, stapler: Any = None,
                       **options: Any) -> SecureServerEndpoint:
        settings: Dict[str, Any] = dict(certKey=self.pki.path("server.pem"),
                                        privateKey=self.pki.path("server.key"),
                                        caCerts=self.pki.path("ca.pem"))
        settings.update(options)
        return SecureServerEndpoint(self.clock, None, buildPolicy(**settings),
                                    mutual=mutual, clock=self.clock, emitter=self.emitter,
                                    ocspPost=self.responder, stapler=stapler)

    def clientEndpoint(self, client: Optional[str] = "client",
                       responder: Optional[FakeResponder] = None,
                       **options: Any) -> SecureClientEndpoint:
        settings: Dict[str, Any] = dict(caCerts=self.pki.path("ca.pem"))
        if client is not None:
            settings.update(certKey=self.pki.path(f"{client}.pem"),
                            privateKey=self.pki.path(f"{client}.key"))
        settings.update(options)
        return SecureClientEndpoint(self.clock, None, buildPolicy(**settings),
                                    hostname="localhost", mutual=client is not None,
                                    clock=self.clock, emitter=self.emitter,
                                    ocspPost=responder or self.responder)

    def serve(self, endpoint: SecureServerEndpoint) -> Tuple[Any, RecordingFactory]:
        """
        Wrap an echoing application with C{endpoint} and start it as a
        listening port would (which starts the staple fetcher).
        """
        app = RecordingFactory(echo=True)
        tls = endpoint.wrapFactory(app)
        tls.doStart()
        self.addCleanup(tls.doStop)
        return tls, app

    def connect(self, serverTLS: Any, client: SecureClientEndpoint
                ) -> Tuple[Any, Any, Any, Deferred[Any], RecordingFactory]:
        """
        Connect C{client} to C{serverTLS} in memory and pump until quiet.

        @return: C{(client TLS protocol, server TLS protocol, pump, the
            client's whenReady, the client's application factory)}; a
            L{HandshakeRejected} of whenReady is consumed into its result.
        """
        clientApp = RecordingFactory()
        clientTLS, gate = client.wrapFactory(clientApp)
        ready = gate.whenReady
        ready.addErrback(lambda f: f.value)
        c, s, pump = connectProtocols(serverTLS, clientTLS, self.clock)
        return c, s, pump, ready, clientApp


class ServerOCSPTests(InMemoryOCSPTestCase):
    """
    A server with C{ocsp=prefer|require} asks the responder about each
    client's certificate and holds the application back until it answers.
    """

    def goodAfterAnswer(self, version: str) -> None:
        self.responder.hold = True
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER,
                                                  minVersion=version, maxVersion=version))
        client, server, pump, ready, clientApp = self.connect(tls, self.clientEndpoint())
        # the handshake is done, the answer is pending: no application yet
        self.assertEqual(len(self.responder.pending), 1)
        self.assertEqual(app.built, [])
        self.assertEqual(self.outcomes("server"), [])
        # the client has been admitted (it does not check OCSP); what it
        # sends now waits for the server's application
        [clientProtocol] = clientApp.built
        clientProtocol.transport.write(b"sent while the server waits for OCSP")
        pump.flush()
        self.assertEqual(app.built, [])
        self.assertEqual(app.received, [])
        self.responder.release()
        pump.flush()
        self.assertEqual(len(app.built), 1)
        self.assertEqual(b"".join(app.received), b"sent while the server waits for OCSP")
        self.assertEqual(b"".join(clientApp.received), b"sent while the server waits for OCSP")
        [record] = self.outcomes("server")
        self.assertEqual(record["event"], "connection.accepted", record)
        self.assertEqual(record["ocsp"], "good (responder)")
        self.assertEqual(record["version"], version)
        self.assertIsNone(record["revocationWarning"])
        [(url, request, timeout)] = self.responder.requests
        self.assertEqual(url, RESPONDER)
        self.assertEqual(request.serial_number, _cert(self.pki, "client").serial_number)
        self.assertEqual(timeout, 5.0)

    def test_goodAfterAnswerTLS12(self) -> None:
        """
        Under TLS 1.2, the server builds the application only when the
        responder's C{good} answer arrives; data the client sent meanwhile
        is delivered then, and the accepted record says C{ocsp: "good
        (responder)"}.
        """
        self.goodAfterAnswer("TLSv1.2")

    def test_goodAfterAnswerTLS13(self) -> None:
        """
        The same under TLS 1.3.
        """
        self.goodAfterAnswer("TLSv1.3")

    def revoked(self, version: str) -> None:
        self.responder.statuses["client"] = "revoked"
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER,
                                                  minVersion=version, maxVersion=version))
        client, server, pump, ready, clientApp = self.connect(tls, self.clientEndpoint())
        [record] = self.outcomes("server")
        self.assertEqual((record["event"], record["reason"]), ("handshake.rejected", "revoked"),
                         record)
        self.assertEqual(record["revocationReason"], "keyCompromise")
        expected = (self.responder.now() - _MINUTE - _DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(record["revocationTime"], expected)
        self.assertEqual(record["ocsp"], "revoked (responder)")
        self.assertEqual(record["version"], version)
        self.assertEqual(record["peerIdentity"]["subject"],
                         _cert(self.pki, "client").subject.rfc4514_string())
        self.assertEqual(app.built, [])
        self.assertTrue(server.disconnected or server.transport.disconnecting)
        # another client is still admitted
        self.connect(tls, self.clientEndpoint("client2"))
        self.assertEqual(len(app.built), 1)

    def test_revokedTLS12(self) -> None:
        """
        Under TLS 1.2 a client the responder says is revoked is rejected
        with reason C{revoked}, its C{revocationReason} and
        C{revocationTime}, and never reaches the application.
        """
        self.revoked("TLSv1.2")

    def test_revokedTLS13(self) -> None:
        """
        The same under TLS 1.3.
        """
        self.revoked("TLSv1.3")

    def unreachable(self, **options: Any) -> Tuple[Dict[str, Any], RecordingFactory]:
        self.responder.failWith = ConnectionRefusedError()
        tls, app = self.serve(self.serverEndpoint(ocspResponder=RESPONDER, **options))
        self.connect(tls, self.clientEndpoint())
        [record] = self.outcomes("server")
        return record, app

    def test_unreachableRequireHard(self) -> None:
        """
        Under C{ocsp=require} and C{revocation=hard} (the default), a
        responder that cannot be reached means C{revocation_unknown}.
        """
        record, app = self.unreachable(ocsp="require")
        self.assertEqual((record["event"], record["reason"]),
                         ("handshake.rejected", "revocation_unknown"), record)
        self.assertIn("unreachable", record["detail"])
        self.assertEqual(record["ocsp"], "unknown (responder)")
        self.assertEqual(app.built, [])

    def test_unreachableRequireSoft(self) -> None:
        """
        Under C{ocsp=require} and C{revocation=soft} the client is accepted,
        and the record carries a C{revocationWarning}.
        """
        record, app = self.unreachable(ocsp="require", revocation="soft")
        self.assertEqual(record["event"], "connection.accepted", record)
        self.assertIn("unreachable", record["revocationWarning"])
        self.assertIn("revocation=soft", record["revocationWarning"])
        self.assertEqual(len(app.built), 1)

    def test_unreachablePrefer(self) -> None:
        """
        Under C{ocsp=prefer} (even with C{revocation=hard}) the client is
        accepted with a C{revocationWarning}.
        """
        record, app = self.unreachable(ocsp="prefer")
        self.assertEqual(record["event"], "connection.accepted", record)
        self.assertIn("ocsp=prefer", record["revocationWarning"])
        self.assertEqual(len(app.built), 1)

    def test_preferRejectsRevoked(self) -> None:
        """
        C{ocsp=prefer} still rejects a client the responder says is revoked.
        """
        self.responder.statuses["client"] = "revoked"
        tls, app = self.serve(self.serverEndpoint(ocsp="prefer", ocspResponder=RESPONDER))
        self.connect(tls, self.clientEndpoint())
        [record] = self.outcomes("server")
        self.assertEqual(record.get("reason"), "revoked", record)
        self.assertEqual(app.built, [])

    def test_unknownRequireHard(self) -> None:
        """
        An authoritative C{unknown} answer is not C{good}: under
        C{ocsp=require} and C{revocation=hard} it is C{revocation_unknown}.
        """
        self.responder.statuses["client"] = "unknown"
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER))
        self.connect(tls, self.clientEndpoint())
        [record] = self.outcomes("server")
        self.assertEqual(record.get("reason"), "revocation_unknown", record)
        self.assertEqual(record["ocsp"], "unknown (responder)")

    def test_cachedAcrossConnections(self) -> None:
        """
        A second connection of the same client is judged from the cache:
        the responder is asked once.
        """
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER))
        self.connect(tls, self.clientEndpoint())
        self.connect(tls, self.clientEndpoint())
        self.assertEqual(len(app.built), 2)
        self.assertEqual(len(self.responder.requests), 1)
        self.assertEqual([r["ocsp"] for r in self.outcomes("server")],
                         ["good (responder)", "good (responder)"])

    def test_peerLeavesWhilePending(self) -> None:
        """
        A client that disconnects while the server waits for the responder
        is audited once as C{peer_closed}; the answer arriving later admits
        nobody.
        """
        self.responder.hold = True
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER))
        client, server, pump, ready, clientApp = self.connect(tls, self.clientEndpoint())
        [clientProtocol] = clientApp.built
        clientProtocol.transport.write(b"never delivered")
        clientProtocol.transport.loseConnection()
        pump.flush()
        [record] = self.outcomes("server")
        self.assertEqual(record.get("reason"), "peer_closed", record)
        self.responder.release()
        pump.flush()
        self.clock.advance(60)
        pump.flush()
        self.assertEqual(app.built, [])
        self.assertEqual(app.received, [])
        self.assertEqual(len(self.outcomes("server")), 1)

    def test_handshakeTimeoutWhilePending(self) -> None:
        """
        A responder answer that never comes is bounded by the handshake
        timeout: the client is rejected, and a late answer admits nobody.
        """
        self.responder.hold = True
        tls, app = self.serve(self.serverEndpoint(ocsp="prefer", ocspResponder=RESPONDER,
                                                  handshakeTimeout=10))
        self.connect(tls, self.clientEndpoint())
        self.clock.advance(11)
        [record] = self.outcomes("server")
        self.assertEqual(record.get("reason"), "handshake_timeout", record)
        self.responder.release()
        self.assertEqual(app.built, [])

    def test_revokedWithCRL(self) -> None:
        """
        With a CRL (that does not list the client) and OCSP together, an
        OCSP C{revoked} answer is rejected as C{revoked} and the record
        keeps the OCSP C{revocationReason} and C{revocationTime}.
        """
        crl = self.pki.write("empty-crl.pem", craftCRL(self.pki, lastUpdate=_utcnow() - _HOUR,
                                                       nextUpdate=_utcnow() + _DAY))
        self.responder.statuses["client"] = "revoked"
        tls, app = self.serve(self.serverEndpoint(ocsp="require", ocspResponder=RESPONDER,
                                                  crl=crl))
        self.connect(tls, self.clientEndpoint())
        [record] = self.outcomes("server")
        self.assertEqual(record.get("reason"), "revoked", record)
        self.assertEqual(record["revocationReason"], "keyCompromise")
        self.assertIsNotNone(record["revocationTime"])

    def test_aiaResponder(self) -> None:
        """
        Without C{ocspResponder}, the server asks the responder named in the
        client certificate's AIA extension.
        """
        tls, app = self.serve(self.serverEndpoint(ocsp="require"))
        self.connect(tls, self.clientEndpoint("client-aia"))
        self.assertEqual([url for url, _, _ in self.responder.requests], [AIA_URL])
        self.assertEqual(len(app.built), 1)

    def test_offAsksNobody(self) -> None:
        """
        With C{ocsp=off} (the default) no responder is asked.
        """
        tls, app = self.serve(self.serverEndpoint())
        self.connect(tls, self.clientEndpoint())
        self.assertEqual(self.responder.requests, [])
        self.assertEqual(len(app.built), 1)
        self.assertIsNone(self.outcomes("server")[0]["ocsp"])


class ClientOCSPTests(InMemoryOCSPTestCase):
    """
    A client with C{ocsp=require} asks about the server's certificate; with
    C{requireStaple} it judges the response the server stapled.  A server
    with C{staple=true} staples the response its fetcher got.
    """

    def test_clientWaitsAndRejectsRevokedServer(self) -> None:
        """
        A client with C{ocsp=require} does not fire C{connect} while the
        answer is pending, and fails with L{HandshakeRejected} C{revoked}
        when the responder says the server is revoked.
        """
        self.responder.hold = True
        self.responder.statuses["server"] = "revoked"
        tls, app = self.serve(self.serverEndpoint(mutual=False))
        client = self.clientEndpoint(None, ocsp="require", ocspResponder=RESPONDER)
        _, _, pump, ready, clientApp = self.connect(tls, client)
        self.assertNoResult(ready)
        self.responder.release()
        pump.flush()
        error = self.successResultOf(ready)
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revoked")
        self.assertEqual(clientApp.built, [])
        [record] = self.outcomes("client")
        self.assertEqual((record["revocationReason"], record["ocsp"]),
                         ("keyCompromise", "revoked (responder)"))

    def test_clientAcceptsGoodServer(self) -> None:
        """
        A client with C{ocsp=require} connects to a server the responder
        says is good.
        """
        tls, app = self.serve(self.serverEndpoint(mutual=False))
        client = self.clientEndpoint(None, ocsp="require", ocspResponder=RESPONDER)
        _, _, pump, ready, clientApp = self.connect(tls, client)
        self.assertEqual(self.successResultOf(ready), clientApp.built[0])
        self.assertEqual(self.outcomes("client")[0]["ocsp"], "good (responder)")

    def staplingServer(self, version: Optional[str] = None) -> Tuple[Any, RecordingFactory]:
        options: Dict[str, Any] = dict(staple=True, ocspResponder=RESPONDER)
        if version:
            options.update(minVersion=version, maxVersion=version)
        return self.serve(self.serverEndpoint(mutual=False, **options))

    def test_stapledGood(self) -> None:
        """
        A server with C{staple=true} fetches its own response when it
        starts and staples it, under TLS 1.2 and 1.3; a client with
        C{requireStaple=true} accepts it without asking any responder
        (C{ocsp: "good (stapled)"}).
        """
        for version in ("TLSv1.2", "TLSv1.3"):
            tls, app = self.staplingServer(version)
            self.assertEqual(self.responder.requests[-1][1].serial_number,
                             _cert(self.pki, "server").serial_number)
            clientResponder = FakeResponder(self.pki, self.clock)
            client = self.clientEndpoint(None, clientResponder, requireStaple=True)
            clientTLS, _, _, ready, clientApp = self.connect(tls, client)
            self.assertEqual(self.successResultOf(ready), clientApp.built[0], version)
            record = self.outcomes("client")[-1]
            self.assertEqual((record["event"], record["ocsp"], record["version"]),
                             ("connection.accepted", "good (stapled)", version))
            self.assertEqual(clientResponder.requests, [])
            stapled = clientTLS.securetcpFacts.stapled
            self.assertEqual(ocsp.load_der_ocsp_response(stapled).serial_number,
                             _cert(self.pki, "server").serial_number)

    def test_stapleRefreshed(self) -> None:
        """
        The staple fetcher asks again half-way to the response's
        C{nextUpdate}, and stops asking when the server stops.
        """
        endpoint = self.serverEndpoint(mutual=False, staple=True, ocspResponder=RESPONDER)
        tls = endpoint.wrapFactory(RecordingFactory())
        tls.doStart()
        self.assertEqual(len(self.responder.requests), 1)
        first = endpoint.stapler.current()
        self.clock.advance(29 * 60)
        self.assertEqual(len(self.responder.requests), 1)
        self.clock.advance(2 * 60)
        self.assertEqual(len(self.responder.requests), 2)
        self.assertNotEqual(endpoint.stapler.current(), first)
        tls.doStop()
        self.clock.advance(24 * 3600)
        self.assertEqual(len(self.responder.requests), 2)

    def test_stapleKeptUntilExpiry(self) -> None:
        """
        When a refresh fails, the fetcher keeps stapling the response it has
        until that response's C{nextUpdate}, then staples nothing.
        """
        endpoint = self.serverEndpoint(mutual=False, staple=True, ocspResponder=RESPONDER)
        tls = endpoint.wrapFactory(RecordingFactory())
        tls.doStart()
        self.addCleanup(tls.doStop)
        first = endpoint.stapler.current()
        self.assertNotEqual(first, b"")
        self.responder.failWith = ConnectionRefusedError()
        self.clock.advance(40 * 60)
        self.assertEqual(len(self.responder.requests), 2)
        self.assertEqual(endpoint.stapler.current(), first)
        self.clock.advance(25 * 60)
        self.assertEqual(endpoint.stapler.current(), b"")

    def test_noStapleWhenResponderDown(self) -> None:
        """
        A server whose staple fetch failed staples nothing (and retries);
        a client with C{requireStaple} rejects it as C{staple_missing}.
        """
        self.responder.failWith = ConnectionRefusedError()
        tls, app = self.staplingServer()
        self.assertEqual(self.serverEndpointStapled(tls), b"")
        client = self.clientEndpoint(None, requireStaple=True)
        _, _, _, ready, _ = self.connect(tls, client)
        self.assertEqual(self.successResultOf(ready).reason, "staple_missing")
        self.responder.failWith = None
        self.clock.advance(61)
        _, _, _, ready, _ = self.connect(tls, client)
        self.assertNotIsInstance(self.successResultOf(ready), HandshakeRejected)

    def serverEndpointStapled(self, tls: Any) -> bytes:
        return tls.wrappedFactory.stapler.current()  # type: ignore[no-any-return]

    def test_requireStapleMissing(self) -> None:
        """
        A client with C{requireStaple=true} rejects a server that staples
        nothing with reason C{staple_missing}.
        """
        for version in ("TLSv1.2", "TLSv1.3"):
            tls, app = self.serve(self.serverEndpoint(mutual=False, minVersion=version,
                                                      maxVersion=version))
            _, _, _, ready, clientApp = self.connect(
                tls, self.clientEndpoint(None, requireStaple=True))
            error = self.successResultOf(ready)
            self.assertIsInstance(error, HandshakeRejected)
            self.assertEqual(error.reason, "staple_missing", version)
            self.assertEqual(clientApp.built, [])
            record = self.outcomes("client")[-1]
            self.assertEqual((record["reason"], record["ocsp"]), ("staple_missing", "missing"))

    def stapling(self, der: bytes) -> Any:
        tls, app = self.serve(self.serverEndpoint(mutual=False, stapler=FixedStaple(der)))
        _, _, _, ready, _ = self.connect(tls, self.clientEndpoint(None, requireStaple=True))
        return self.successResultOf(ready)

    def test_requireStapleRevoked(self) -> None:
        """
        A client with C{requireStaple=true} rejects a server stapling a
        response that says it is revoked, with reason C{revoked}.
        """
        error = self.stapling(ocspResponse(self.pki, _cert(self.pki, "server"), "revoked"))
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revoked")
        record = self.outcomes("client")[-1]
        self.assertEqual((record["ocsp"], record["revocationReason"]),
                         ("revoked (stapled)", "keyCompromise"))

    def test_requireStapleInvalid(self) -> None:
        """
        A stapled response signed by an unrelated key is not believed: under
        C{requireStaple} and C{revocation=hard} it is C{revocation_unknown}.
        """
        error = self.stapling(ocspResponse(self.pki, _cert(self.pki, "server"),
                                           signer="stranger", include=["stranger"]))
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revocation_unknown")

    def test_requireStapleForAnotherCertificate(self) -> None:
        """
        A valid response about another certificate (a server replaying a
        sibling's staple) does not satisfy C{requireStaple}: judged by the
        client's gate it is C{revocation_unknown}; over the wire the linked
        OpenSSL does not even send a staple that does not match the
        server's certificate, so the client sees C{staple_missing}.
        """
        server, sibling = _cert(self.pki, "server"), _cert(self.pki, "server-good")
        client = self.clientEndpoint(None, requireStaple=True)
        _, gate = client.wrapFactory(RecordingFactory())
        decision, facts = self.successResultOf(gate.ocspDecision(
            (server, self.pki.ca), ocspResponse(self.pki, sibling)))
        assert decision is not None
        self.assertEqual(decision[0], "revocation_unknown")
        self.assertIn("does not cover this certificate", decision[1])
        self.assertEqual(facts, {"ocsp": "unknown (stapled)"})
        error = self.stapling(ocspResponse(self.pki, sibling))
        self.assertIsInstance(error, HandshakeRejected)
        self.assertIn(error.reason, ("revocation_unknown", "staple_missing"))


# -- 4. real peers over loopback ---------------------------------------------------


class OCSPAuthority:
    """
    An C{openssl ca} database of the PKI's CA (as L{CRLAuthority} keeps for
    CRLs), marking certificates valid or revoked, and C{openssl ocsp}
    answering requests from it.
    """

    def __init__(self, pki: TestPKI, directory: str) -> None:
        self.pki = pki
        self.directory = directory
        self.ca = CRLAuthority(pki, directory)
        self.index = os.path.join(directory, "index.txt")
        # server.pem and server-good.pem share their subject
        with open(self.index + ".attr", "w") as f:
            f.write("unique_subject = no\n")

    def valid(self, *names: str) -> None:
        for name in names:
            _openssl("ca", "-config", self.ca.config, "-valid", self.pki.path(f"{name}.pem"))

    def revoke(self, *names: str) -> None:
        for name in names:
            self.ca.revoke(self.pki.path(f"{name}.pem"))

    def responderArgv(self, request: str, response: str) -> List[str]:
        """
        The real responder: C{openssl ocsp} answering one request file.
        """
        assert OPENSSL is not None
        return [OPENSSL, "ocsp", "-index", self.index, "-CA", self.pki.path("ca.pem"),
                "-rsigner", self.pki.path("ca.pem"), "-rkey", self.pki.path("ca.key"),
                "-ndays", "1", "-reqin", request, "-respout", response]

    def staple(self, name: str) -> str:
        """
        Write C{name}.ocsp.der: the responder's answer about C{name}, as
        C{openssl s_server -status_file} serves it (blocking: call it before
        any server runs).
        """
        request = os.path.join(self.directory, f"{name}.req.der")
        response = self.pki.path(f"{name}.ocsp.der")
        _openssl("ocsp", "-issuer", self.pki.path("ca.pem"), "-cert", self.pki.path(f"{name}.pem"),
                 "-no_nonce", "-reqout", request)
        _openssl(*self.responderArgv(request, response)[1:])
        return response


class OCSPFront(Resource):
    """
    A tiny HTTP front (RFC 6960 appendix A, POST) for the C{openssl ocsp}
    responder: each request is written to a file and answered by a fresh
    C{openssl ocsp -reqin ... -respout ...} run with the reactor.
    """

    isLeaf = True

    def __init__(self, authority: OCSPAuthority) -> None:
        super().__init__()
        self.authority = authority
        self.count = 0
        self.processes: List[PeerProcess] = []

    def render_POST(self, request: Any) -> Any:
        self.count += 1
        base = os.path.join(self.authority.directory, f"http-{self.count}")
        with open(base + ".req.der", "wb") as f:
            f.write(request.content.read())
        process = PeerProcess.spawn(self.authority.responderArgv(base + ".req.der",
                                                                 base + ".resp.der"))
        self.processes.append(process)

        def answered(process: PeerProcess) -> None:
            if process.exitCode != 0 or not os.path.exists(base + ".resp.der"):
                request.setResponseCode(500)
                request.write(process.describe().encode())
            else:
                request.setHeader(b"Content-Type", b"application/ocsp-response")
                with open(base + ".resp.der", "rb") as f:
                    request.write(f.read())
            request.finish()

        process.ended.addCallback(answered)
        return NOT_DONE_YET

    async def stop(self) -> None:
        for process in self.processes:
            await process.stop()


class RealOCSPMixin(RealPeerMixin):
    """
    A fresh PKI and C{openssl ca} database per test, and the audit records
    of endpoints built from strings.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()
        self.pki.issue("server-good", "localhost", dns=["localhost"], ips=["127.0.0.1"],
                       server=True)
        self.authority = OCSPAuthority(self.pki, os.path.join(self.pki.directory, "ca-db"))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[attr-defined]

    def description(self, prefix: str, **options: str) -> str:
        return prefix + ":" + ":".join(f"{k}={_escape(v)}" for k, v in options.items())

    async def clientOutcome(self, server: str, *serverArgs: str, **options: str) -> Any:
        """
        Connect our C{securessl:} client with C{options} to an C{s_server}
        presenting C{server}.

        @return: the connected application protocol, or the
            L{HandshakeRejected}.
        """
        port, _ = await self.sServer(server, "-rev", *serverArgs)
        factory = CollectorFactory()
        description = self.description(
            "securessl", host="127.0.0.1", port=str(port), caCerts=self.pki.path("ca.pem"),
            hostname="localhost", **options)
        d = clientFromString(reactor, description).connect(factory)
        timeout = reactor.callLater(PROCESS_TIMEOUT, d.cancel)
        try:
            app = await d
        except HandshakeRejected as e:
            self.assertEqual(factory.protocols, [])  # type: ignore[attr-defined]
            return e
        finally:
            if timeout.active():
                timeout.cancel()
        return app

    async def assertConnects(self, app: Any) -> None:
        self.assertNotIsInstance(app, HandshakeRejected)  # type: ignore[attr-defined]
        self.assertTrue(app.connected)  # type: ignore[attr-defined]
        app.transport.write(LINE + b"\n")
        await _waitUntil(lambda: LINE[::-1] in app.data or app.lost.called, PROCESS_TIMEOUT,
                         "the reversed line from s_server")
        self.assertIn(LINE[::-1], app.data)  # type: ignore[attr-defined]
        app.transport.loseConnection()
        await app.lost


class RealResponderTests(RealOCSPMixin, TestCase):
    """
    The real C{openssl ocsp} responder, on 127.0.0.1 behind L{OCSPFront},
    asked by our server about C{openssl s_client}s and by our client about
    C{openssl s_server}, and fetched for stapling.
    """

    def setUp(self) -> None:
        super().setUp()
        # the CA database is written before anything listens
        self.authority.valid("client2", "server-good")
        self.authority.revoke("client", "server")
        self.front = OCSPFront(self.authority)
        d = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(self.front))

        def listening(port: Any) -> None:
            self.addCleanup(port.stopListening)
            self.addCleanup(lambda: Deferred.fromCoroutine(self.front.stop()))
            self.responderURL = f"http://127.0.0.1:{port.getHost().port}"

        return d.addCallback(listening)  # type: ignore[return-value]

    async def serverMatrix(self, version: str) -> None:
        description = self.description(
            "mtls", port="0", interface="127.0.0.1", certKey=self.pki.path("server.pem"),
            privateKey=self.pki.path("server.key"), caCerts=self.pki.path("ca.pem"),
            ocsp="require", ocspResponder=self.responderURL)
        factory = CountingEchoFactory()
        port = await serverFromString(reactor, description).listen(factory)
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        peer = await self.sClient(number, version, client="client", audit=self.audit)
        self.assertNotEchoed(peer)
        record = self.audit.events("handshake.rejected")[-1]
        self.assertEqual((record["reason"], record["revocationReason"], record["ocsp"]),
                         ("revoked", "keyCompromise", "revoked (responder)"), record)
        self.assertEqual(record["version"], {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version])
        self.assertEqual((factory.built, factory.made), (0, 0))
        peer = await self.sClient(number, version, client="client2", audit=self.audit)
        self.assertEchoed(peer)
        self.assertEqual((factory.built, factory.made), (1, 1))
        accepted = self.audit.events("connection.accepted")[-1]
        self.assertEqual(accepted["ocsp"], "good (responder)")
        self.assertEqual(self.front.count, 2)

    def test_serverRejectsRevokedTLS12(self) -> Any:
        """
        Our C{mtls:} server from an endpoint string with C{ocsp=require} and
        C{ocspResponder} asks the real responder and rejects C{openssl
        s_client -tls1_2} presenting a revoked certificate (C{revoked},
        C{keyCompromise}); a valid client is echoed.
        """
        return Deferred.fromCoroutine(self.serverMatrix("-tls1_2"))

    def test_serverRejectsRevokedTLS13(self) -> Any:
        """
        The same under C{-tls1_3}.
        """
        return Deferred.fromCoroutine(self.serverMatrix("-tls1_3"))

    async def clientMatrix(self) -> None:
        error = await self.clientOutcome("server", ocsp="require",
                                         ocspResponder=self.responderURL)
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revoked", error)
        record = self.audit.events("handshake.rejected")[-1]
        self.assertEqual((record["role"], record["revocationReason"]), ("client", "keyCompromise"))
        app = await self.clientOutcome("server-good", ocsp="require",
                                       ocspResponder=self.responderURL)
        await self.assertConnects(app)

    def test_clientRejectsRevokedServer(self) -> Any:
        """
        Our C{securessl:} client with C{ocsp=require} refuses C{openssl
        s_server} presenting a certificate the responder says is revoked,
        and connects to one presenting a valid certificate.
        """
        return Deferred.fromCoroutine(self.clientMatrix())

    async def stapleMatrix(self) -> None:
        description = self.description(
            "securessl", port="0", interface="127.0.0.1",
            certKey=self.pki.path("server-good.pem"), privateKey=self.pki.path("server-good.key"),
            caCerts=self.pki.path("ca.pem"), staple="true", ocspResponder=self.responderURL)
        endpoint = serverFromString(reactor, description)
        port = await endpoint.listen(CountingEchoFactory())
        self.addCleanup(port.stopListening)
        await _waitUntil(lambda: endpoint.stapler.current() != b"", PROCESS_TIMEOUT,
                         "the server to fetch its OCSP response")
        for version in ("-tls1_2", "-tls1_3"):
            before = self.audit.finished()
            peer = PeerProcess.spawn([
                OPENSSL, "s_client", "-connect", f"127.0.0.1:{port.getHost().port}",
                "-servername", "localhost", "-CAfile", self.pki.path("ca.pem"),
                "-verify_return_error", "-status", version])
            self.addCleanup(peer.stop)
            await peer.ended
            self.assertFalse(peer.killed, peer.describe())
            self.assertIn(b"OCSP Response Status: successful", peer.out, peer.describe())
            self.assertIn(b"Cert Status: good", peer.out, peer.describe())
            await _waitUntil(lambda before=before: self.audit.finished() > before,
                             PROCESS_TIMEOUT, "the server's audit event")

    def test_stapleToSClient(self) -> Any:
        """
        Our C{securessl:} server with C{staple=true} fetches its response
        from the real responder and staples it: C{openssl s_client -status}
        shows C{OCSP Response Status: successful} and C{Cert Status: good}
        under TLS 1.2 and 1.3.
        """
        return Deferred.fromCoroutine(self.stapleMatrix())


class RealStapleTests(RealOCSPMixin, TestCase):
    """
    Our client with C{requireStaple=true} against C{openssl s_server
    -status_file}, serving responses made by C{openssl ocsp}.
    """

    async def stapleMatrix(self) -> None:
        # every response is made before any peer runs
        self.authority.valid("server-good")
        self.authority.revoke("server")
        good = self.authority.staple("server-good")
        revoked = self.authority.staple("server")
        app = await self.clientOutcome("server-good", "-status_file", good, requireStaple="true")
        await self.assertConnects(app)
        self.assertEqual(self.audit.events("connection.accepted")[-1]["ocsp"], "good (stapled)")
        error = await self.clientOutcome("server", "-status_file", revoked, requireStaple="true")
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "revoked", error)
        self.assertEqual(self.audit.events("handshake.rejected")[-1]["revocationReason"],
                         "keyCompromise")
        error = await self.clientOutcome("server-good", requireStaple="true")
        self.assertIsInstance(error, HandshakeRejected)
        self.assertEqual(error.reason, "staple_missing", error)

    def test_requireStaple(self) -> Any:
        """
        Our C{securessl:} client with C{requireStaple=true} connects to
        C{s_server} stapling a good response, and rejects one stapling a
        revoked response (C{revoked}) and one stapling nothing
        (C{staple_missing}).
        """
        return Deferred.fromCoroutine(self.stapleMatrix())


class JudgeTests(SynchronousTestCase):
    """
    L{securetcp.revocation.ocsp.judge}, the pure OCSP decision, for every answer and
    every C{ocsp} / C{revocation} setting.
    """

    def test_table(self) -> None:
        """
        C{good} is accepted; C{revoked} is rejected with its reason and time
        whatever the settings; no usable answer is rejected as
        C{revocation_unknown} only under C{ocsp=require} with hard fail, and
        otherwise accepted with a warning naming why.
        """
        from securetcp.policy import Revocation
        from securetcp.revocation.ocsp import OCSPStatus, judge

        good = OCSPStatus("good", "OCSP: good")
        revoked = OCSPStatus("revoked", "OCSP: revoked", revocationReason="keyCompromise",
                             revocationTime="2026-11-23T00:00:00Z")
        down = OCSPStatus("unknown", "responder unreachable", reachable=False)
        for ocspMode in ("prefer", "require"):
            for mode in ("hard", "soft"):
                revocation = Revocation(ocsp=ocspMode, mode=mode)
                self.assertEqual(judge(good, "responder", revocation),
                                 (None, {"ocsp": "good (responder)"}))
                decision, facts = judge(revoked, "stapled", revocation)
                self.assertEqual(decision, ("revoked", "OCSP: revoked"))
                self.assertEqual((facts["revocationReason"], facts["revocationTime"]),
                                 ("keyCompromise", "2026-11-23T00:00:00Z"))
                decision, facts = judge(down, "responder", revocation)
                if ocspMode == "require" and mode == "hard":
                    self.assertEqual(decision, ("revocation_unknown", "responder unreachable"))
                    self.assertNotIn("revocationWarning", facts)
                else:
                    self.assertIsNone(decision)
                    expected = "ocsp=prefer" if ocspMode == "prefer" else "revocation=soft"
                    self.assertIn(expected, facts["revocationWarning"])
