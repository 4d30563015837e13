# -*- test-case-name: tests.test_revocation_live -*-
"""
Revocation over real sockets on 127.0.0.1 with the real reactor: what the
in-memory tests of L{tests.test_revocation} and L{tests.test_ocsp} show
with a L{Clock}, shown here with wall-clock time, the reactor's thread pool
and real peers.

  - L{ReloadUnderLoadTests}: an C{mtls:} server from an endpoint string with
    C{crl=...:crlReload=1:crlEnforceLive=true} (CRLs parsed in the
    reactor's thread pool, as in production) under a continuous load of
    good securetcp clients, while C{openssl ca -revoke} / C{-gencrl}
    revoke one device and then garbage replaces the CRL file;
  - L{ResponderDownTests}: an C{mtls:} server with C{ocsp=require} whose
    responder URL names a port nobody listens on, against C{openssl
    s_client}, under C{revocation=soft} and C{revocation=hard}.

The responder-up cases (a good client accepted, a revoked one rejected, by
the real C{openssl ocsp} responder behind a front on 127.0.0.1) are proven
by L{tests.test_ocsp.RealResponderTests} and not repeated here.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from cryptography import x509
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.logger import Logger, globalLogPublisher
from twisted.trial.unittest import TestCase

from securetcp import HandshakeRejected, buildPolicy, clientEndpoint
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint

from ._crl import CRLAuthority
from ._net import escape as _escape
from ._net import freePort as _freePort
from ._peers import LINE, PROCESS_TIMEOUT, LineClient, LineClientFactory, RealPeerMixin
from ._peers import bounded as _bounded
from ._peers import runOpenSSLWithReactor as _openssl
from ._peers import sleep as _sleep
from ._peers import waitUntil as _waitUntil
from ._programs import needOpenSSL as _needOpenSSL
from ._recording import AuditRecorder, CountingEchoFactory

_log = Logger(namespace="tests.test_revocation_live")

#: C{crlReload} of the server under load, in seconds.
POLL = 1.0
#: What a reload may take beyond two poll intervals (thread pool, context
#: build, a handshake already in flight on a loaded reactor).
SLACK = 1.0
#: How long the good clients keep handshaking before the device is revoked.
WARM_UP = 1.0
#: How long they go on after the corrupt CRL was refused.
COOL_DOWN = 0.5
#: Good clients handshaking at the same time, and the most handshakes each
#: may make (the load is bounded even if the stop signal never came).
WORKERS = 4
PER_WORKER = 1500
#: Bound on one exchange (connect, handshake, echo, close).
EXCHANGE_TIMEOUT = 5.0


def _subject(path: str) -> str:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).subject.rfc4514_string()


class TimedAuditRecorder(AuditRecorder):
    """
    An L{AuditRecorder} that also notes when (C{time.monotonic()}) each
    record arrived.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arrived: List[float] = []

    def __call__(self, event: Dict[str, Any]) -> None:
        record = event.get("securetcp_audit")
        if record is not None:
            self.records.append(record)
            self.arrived.append(time.monotonic())

    def first(self, match: Callable[[Dict[str, Any]], bool],
              after: float = 0.0) -> Optional[Tuple[float, Dict[str, Any]]]:
        """
        The arrival time and record of the first record matching C{match}
        that arrived at or after C{after}.
        """
        for arrived, record in zip(self.arrived, self.records, strict=True):
            if arrived >= after and match(record):
                return arrived, record
        return None


def _publish(path: str, write: Callable[[str], Any]) -> None:
    """
    Publish a CRL file as a CA's job does: C{write} a temporary file next
    to C{path}, then rename it over C{path}.
    """
    new = path + ".new"
    write(new)
    os.rename(new, path)


class ReloadUnderLoadTests(RealPeerMixin, TestCase):
    """
    A CRL revoking one device, published while good clients keep
    handshaking, takes effect within two poll intervals without failing any
    good client's handshake and closes the device's open connection; a
    corrupt CRL published next is refused and the previous one stays in
    force.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()
        self.pki.issue("client3", "PUMP-0100", uris=["spiffe://hospital.example/ward9/pump-0100"],
                       server=False)
        self.authority = CRLAuthority(self.pki, os.path.join(self.pki.directory, "ca-db"))
        self.crlPath = self.authority.generate(self.pki.path("devices.crl"))
        self.device = _subject(self.pki.path("client.pem"))
        self.good = {_subject(self.pki.path(f"{n}.pem")) for n in ("client2", "client3")}
        self.audit = TimedAuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        self.clientAudit = AuditRecorder()

    async def serve(self) -> Tuple[SecureServerEndpoint, int]:
        description = "mtls:" + ":".join(f"{k}={_escape(v)}" for k, v in dict(
            port="0", interface="127.0.0.1", certKey=self.pki.path("server.pem"),
            privateKey=self.pki.path("server.key"), caCerts=self.pki.path("ca.pem"),
            crl=self.crlPath, crlReload=str(POLL), crlEnforceLive="true").items())
        endpoint = serverFromString(reactor, description)
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        self.assertIsNone(endpoint._runInThread)  # the reactor's thread pool
        port = await endpoint.listen(CountingEchoFactory())
        # cleanups run last-first: once the port has stopped (and with it the
        # periodic check), wait for a reload still running in a thread
        self.addCleanup(self._reloadsFinished, endpoint)
        self.addCleanup(port.stopListening)
        return endpoint, port.getHost().port

    async def _reloadsFinishedAsync(self, endpoint: SecureServerEndpoint) -> None:
        await _waitUntil(lambda: endpoint.crlWatcher is None or not endpoint.crlWatcher.busy,
                         PROCESS_TIMEOUT, "the CRL reload thread")

    def _reloadsFinished(self, endpoint: SecureServerEndpoint) -> Deferred[None]:
        return Deferred.fromCoroutine(self._reloadsFinishedAsync(endpoint))

    def client(self, port: int, name: str, **options: str) -> SecureClientEndpoint:
        """
        securetcp's own C{mtls} client endpoint presenting C{name}'s
        certificate to 127.0.0.1:C{port}.
        """
        policy = buildPolicy(caCerts=self.pki.path("ca.pem"), certKey=self.pki.path(f"{name}.pem"),
                             privateKey=self.pki.path(f"{name}.key"), **options)
        return clientEndpoint(reactor, TCP4ClientEndpoint(reactor, "127.0.0.1", port), policy,
                              hostname="localhost", mutual=True,
                              emitter=self.clientAudit.emitter())

    async def connect(self, endpoint: SecureClientEndpoint) -> LineClient:
        """
        Connect, send L{LINE} and wait for its echo.

        @raise Exception: L{HandshakeRejected}, a timeout, or
            C{AssertionError} when the line did not come back.
        """
        app = await _bounded(endpoint.connect(LineClientFactory()), EXCHANGE_TIMEOUT)
        app.transport.write(LINE + b"\n")
        if not await _bounded(app.echoed, EXCHANGE_TIMEOUT):
            raise AssertionError("the connection was lost before the echo")
        return app

    async def exchange(self, endpoint: SecureClientEndpoint) -> Optional[str]:
        """
        One complete exchange: connect, echo, close.

        @return: C{None} if it worked, else what went wrong.
        """
        try:
            app = await self.connect(endpoint)
        except HandshakeRejected as e:
            return f"rejected: {e.reason}"
        except Exception as e:  # a refused connection, a timeout, no echo: all count
            return f"{type(e).__name__}: {e}"
        assert app.transport is not None
        app.transport.loseConnection()
        try:
            await _bounded(app.lost, EXCHANGE_TIMEOUT)
        except (CancelledError, TimeoutError):
            return "the connection did not close"
        return None

    async def worker(self, endpoint: SecureClientEndpoint, stop: List[bool],
                     outcomes: List[Tuple[float, float, Optional[str]]]) -> None:
        """
        Exchange over C{endpoint} again and again until C{stop} is set (at
        most L{PER_WORKER} times); append C{(start, end, problem)} of each to
        C{outcomes}.
        """
        for _ in range(PER_WORKER):
            if stop:
                return
            start = time.monotonic()
            problem = await self.exchange(endpoint)
            outcomes.append((start, time.monotonic(), problem))

    async def reloadUnderLoad(self) -> None:
        endpoint, port = await self.serve()
        device = self.client(port, "client")
        goods = [self.client(port, "client2"), self.client(port, "client3", maxVersion="TLSv1.2"),
                 self.client(port, "client2", maxVersion="TLSv1.2"), self.client(port, "client3")]

        held = await self.connect(device)
        [heldAccepted] = self.audit.events("connection.accepted")

        stop: List[bool] = []
        outcomes: List[Tuple[float, float, Optional[str]]] = []
        workers = [Deferred.fromCoroutine(self.worker(goods[i % len(goods)], stop, outcomes))
                   for i in range(WORKERS)]
        try:
            await _sleep(WARM_UP)
            before = len(outcomes)

            # revoke the device as an operator does, and publish the new CRL
            await _openssl("ca", "-config", self.authority.config, "-revoke",
                           self.pki.path("client.pem"), "-crl_reason", "keyCompromise")
            await _openssl("ca", "-config", self.authority.config, "-gencrl",
                           "-out", self.crlPath + ".new")
            os.rename(self.crlPath + ".new", self.crlPath)
            renamed = time.monotonic()

            # the device tries again and again until it is turned away
            deviceTries: List[Optional[str]] = []

            def deviceRejected(record: Dict[str, Any]) -> bool:
                return (record["event"] == "handshake.rejected"
                        and (record.get("peerIdentity") or {}).get("subject") == self.device)

            deadline = renamed + 2 * POLL + SLACK + EXCHANGE_TIMEOUT
            while self.audit.first(deviceRejected, renamed) is None \
                    and time.monotonic() < deadline:
                deviceTries.append(await self.exchange(device))
            found = self.audit.first(deviceRejected, renamed)
            self.assertIsNotNone(found, f"the revoked device was never rejected: {deviceTries}")
            assert found is not None
            rejectedAt, rejection = found
            self.assertEqual((rejection["reason"], rejection["revocationReason"]),
                             ("revoked", "keyCompromise"), rejection)
            self.assertIsNotNone(deviceTries[-1], "the device's rejected try looked fine")
            loaded = self.audit.first(lambda r: r["event"] == "revocation.crl_loaded", renamed)
            assert loaded is not None
            self.assertLessEqual(rejectedAt - renamed, 2 * POLL + SLACK,
                                 f"the device was first rejected {rejectedAt - renamed:.3f}s "
                                 "after the new CRL was published")

            # the device's open connection was closed and audited (a probe
            # of the device admitted just before the swap may be closed too)
            try:
                await _bounded(held.lost, EXCHANGE_TIMEOUT)
            except TimeoutError:
                self.fail("the revoked device's open connection was not closed")
            revoked = self.audit.events("connection.revoked")
            self.assertEqual({r["peerIdentity"]["subject"] for r in revoked}, {self.device})
            self.assertIn(heldAccepted["connection"], [r["connection"] for r in revoked])
            inForce = endpoint.creator.crls
            self.assertEqual(len(inForce.revoked), 1)

            # a corrupt CRL is refused; the previous one stays in force
            def garbage(new: str) -> None:
                with open(new, "wb") as f:
                    f.write(b"-----BEGIN X509 CRL-----\nnot a CRL at all\n"
                            + os.urandom(300) + b"\n-----END X509 CRL-----\n")

            _publish(self.crlPath, garbage)
            corrupted = time.monotonic()
            await _waitUntil(
                lambda: self.audit.first(lambda r: r["event"] == "revocation.crl_refused",
                                         corrupted) is not None,
                2 * POLL + SLACK, "revocation.crl_refused")
            found = self.audit.first(lambda r: r["event"] == "revocation.crl_refused",
                                     corrupted)
            assert found is not None
            refusedAt, refused = found
            self.assertEqual(refused["file"], self.crlPath)
            self.assertIn("is not a readable CRL", refused["detail"])
            self.assertIs(endpoint.creator.crls, inForce)
            rejectedBefore = len([r for r in self.audit.records if deviceRejected(r)])
            problem = await self.exchange(device)
            self.assertIsNotNone(problem, "the revoked device got in after the corrupt CRL")
            await _waitUntil(
                lambda: len([r for r in self.audit.records if deviceRejected(r)]) > rejectedBefore,
                EXCHANGE_TIMEOUT, "the device's rejection after the corrupt CRL")
            self.assertEqual(
                [r for r in self.audit.records if deviceRejected(r)][-1]["reason"], "revoked")
            afterCorrupt = len(outcomes)
            await _sleep(COOL_DOWN)
            self.assertGreater(len(outcomes), afterCorrupt,
                               "no good client handshook after the corrupt CRL")
        finally:
            stop.append(True)
            for w in workers:
                await w
            if not held.closed:
                held.transport.abortConnection()  # type: ignore[union-attr]

        # no good client's handshake failed, before, during or after the reloads
        failures = [problem for _, _, problem in outcomes if problem is not None]
        self.assertEqual(failures, [], f"{len(failures)} of {len(outcomes)} good exchanges failed")
        self.assertGreater(before, 0, "no good client handshook before the revocation")
        self.assertGreater(len(outcomes), 2 * WORKERS)
        serverRejected = [r for r in self.audit.events("handshake.rejected")
                          if (r.get("peerIdentity") or {}).get("subject") in self.good]
        self.assertEqual(serverRejected, [])
        goodAccepted = [r for r in self.audit.events("connection.accepted")
                        if r["peerIdentity"]["subject"] in self.good]
        self.assertEqual(len(goodAccepted), len(outcomes))
        self.assertEqual({r["version"] for r in goodAccepted}, {"TLSv1.2", "TLSv1.3"})
        self.assertEqual(len(self.audit.events("revocation.crl_loaded")), 1)
        # good exchanges were under way while the new context was swapped in
        straddling = [o for o in outcomes if o[0] < loaded[0] < o[1]]
        self.assertGreater(len(straddling), 0)
        _log.info("reload under load: {handshakes} good exchanges (0 failed, {straddling} "
                  "spanning the swap); {tries} device tries after publishing; CRL loaded "
                  "after {reload:.3f}s; device first rejected after {latency:.3f}s (bound "
                  "{bound}s); corrupt CRL refused after {refusal:.3f}s ({refusals} "
                  "crl_refused records)",
                  handshakes=len(outcomes), straddling=len(straddling), tries=len(deviceTries),
                  reload=loaded[0] - renamed, latency=rejectedAt - renamed,
                  bound=2 * POLL + SLACK, refusal=refusedAt - corrupted,
                  refusals=len(self.audit.events("revocation.crl_refused")))

    def test_reloadUnderLoad(self) -> Any:
        """
        An C{mtls:} server with C{crl=FILE:crlReload=1:crlEnforceLive=true}
        serving a continuous load of good clients (TLS 1.2 and 1.3): after
        C{openssl ca -revoke} and C{-gencrl} publish a CRL revoking a device
        (renamed over the old file), the device's new handshakes are
        rejected as C{revoked} within two poll intervals, its connection
        that was open is closed and audited as C{connection.revoked}; a
        garbage CRL renamed over it next is audited as
        C{revocation.crl_refused} and the previous CRL stays in force (the
        device is still rejected); and not one good client's exchange fails
        throughout.
        """
        return Deferred.fromCoroutine(self.reloadUnderLoad())


class ResponderDownTests(RealPeerMixin, TestCase):
    """
    An C{mtls:} server with C{ocsp=require} whose OCSP responder cannot be
    reached (a free port of 127.0.0.1 nobody listens on): C{revocation=soft}
    admits C{openssl s_client} with a warning naming the responder,
    C{revocation=hard} rejects it as C{revocation_unknown}.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        # picked free and never bound
        self.responder = f"http://127.0.0.1:{_freePort()}"

    async def serve(self, mode: str) -> Tuple[int, CountingEchoFactory]:
        description = "mtls:" + ":".join(f"{k}={_escape(v)}" for k, v in dict(
            port="0", interface="127.0.0.1", certKey=self.pki.path("server.pem"),
            privateKey=self.pki.path("server.key"), caCerts=self.pki.path("ca.pem"),
            ocsp="require", ocspResponder=self.responder, revocation=mode).items())
        factory = CountingEchoFactory()
        port = await serverFromString(reactor, description).listen(factory)
        self.addCleanup(port.stopListening)
        return port.getHost().port, factory

    async def soft(self) -> None:
        port, factory = await self.serve("soft")
        for made, version in enumerate(("-tls1_2", "-tls1_3"), 1):
            peer = await self.sClient(port, version, client="client2", audit=self.audit)
            self.assertEchoed(peer)
            self.assertEqual(factory.made, made)
            record = self.audit.events("connection.accepted")[-1]
            self.assertEqual(record["version"], {"-tls1_2": "TLSv1.2",
                                                 "-tls1_3": "TLSv1.3"}[version])
            self.assertEqual(record["ocsp"], "unknown (responder)", record)
            warning = record["revocationWarning"]
            self.assertIn(f"OCSP responder {self.responder} unreachable", warning)
            self.assertIn("accepted under revocation=soft", warning)
        self.assertEqual(self.audit.events("handshake.rejected"), [])

    def test_unreachableSoftAccepts(self) -> Any:
        """
        Under C{ocsp=require} and C{revocation=soft}, C{openssl s_client}
        with a good certificate (TLS 1.2 and 1.3) reaches the application
        and is echoed; its C{connection.accepted} record says C{ocsp:
        "unknown (responder)"} and carries a C{revocationWarning} naming the
        unreachable responder's URL.
        """
        return Deferred.fromCoroutine(self.soft())

    async def hard(self) -> None:
        port, factory = await self.serve("hard")
        for version in ("-tls1_2", "-tls1_3"):
            peer = await self.sClient(port, version, client="client2", audit=self.audit)
            self.assertNotEchoed(peer)
            record = self.audit.events("handshake.rejected")[-1]
            self.assertEqual((record["reason"], record["ocsp"]),
                             ("revocation_unknown", "unknown (responder)"), record)
            self.assertIn(f"OCSP responder {self.responder} unreachable", record["detail"])
        self.assertEqual((factory.built, factory.made), (0, 0))
        self.assertEqual(self.audit.events("connection.accepted"), [])

    def test_unreachableHardRejects(self) -> Any:
        """
        Under C{ocsp=require} and C{revocation=hard} (the default), the same
        C{openssl s_client} never reaches the application: its
        C{handshake.rejected} record has reason C{revocation_unknown} and a
        detail naming the unreachable responder.
        """
        return Deferred.fromCoroutine(self.hard())
