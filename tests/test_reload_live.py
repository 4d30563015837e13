# -*- test-case-name: tests.test_reload_live -*-
"""
Reloading C{twistd securetcp} while it serves: issue 5's "reload under
load", and the file watching of C{--watch}.

  - L{ReloadUnderLoadTests}: a real C{twistd -n securetcp terminate} process
    with C{mtls:...:crl=crl.pem:crlReload=1} in front of a plaintext echo
    backend (in the trial reactor), under a continuous load of good
    securetcp clients (TLS 1.2 and 1.3, several at a time).  While the load
    runs, the server certificate and key are replaced by a new pair for the
    same names (renamed over the old files), and C{openssl ca -revoke} /
    C{-gencrl} revoke one device and publish a new CRL.  With C{--watch 1}
    the file watcher picks up the new pair by itself; with C{--watch 0} a
    SIGHUP does.
  - L{CRLReloadKeepsCertificateTests}: a real C{twistd -n securetcp
    terminate} with a CRL, probed by C{openssl s_client}: a CRL reload after
    the certificate and key files were replaced keeps serving the old
    certificate; SIGHUP then serves the new one, audited as
    C{policy.reloaded} naming both fingerprints.
  - L{FileWatchTests}: the watcher of L{securetcp._twistd.tap.SecureTCPService}
    in-process, against a L{MemoryReactorClock}: one reload per settled
    change, none for an unchanged interval, one C{policy.reload_refused} for
    a garbage file however long it stays, and a reload again once a good
    file is restored.

Every program runs as a subprocess with C{PYTHONPATH} set to the directory
holding the C{securetcp} package, on a free port below 32768; every wait is
bounded, and every process is stopped in cleanup.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL
from twisted.internet import endpoints as _endpoints
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from securetcp import HandshakeRejected, buildPolicy, clientEndpoint
from securetcp._twistd import tap as _tap
from securetcp.endpoints import SecureClientEndpoint

from ._crl import CRLAuthority
from ._net import escape as _escape
from ._net import freePort as _freePort
from ._peers import LINE, LineClientFactory, PeerProcess, RealPeerMixin
from ._peers import bounded as _bounded
from ._peers import runOpenSSLWithReactor as _openssl
from ._peers import sleep as _sleep
from ._peers import waitUntil as _waitUntil
from ._pki import TestPKI
from ._programs import OPENSSL, TWISTD
from ._programs import needOpenSSL as _needOpenSSL
from ._programs import subprocessEnvironment as _env
from ._recording import AuditRecorder, CountingEchoFactory
from ._twistd import TapProcessMixin
from ._twistd import auditEvents as _events
from ._twistd import auditRecords as _records

_log = Logger(namespace="tests.test_reload_live")

#: C{--watch} and C{crlReload} of the process under load, in seconds.
POLL = 1.0
#: What a reload may take beyond its poll intervals on a loaded machine.
SLACK = 1.5
#: How long the good clients handshake before anything is replaced, and how
#: long they go on after the revoked device was turned away.
WARM_UP = 0.7
COOL_DOWN = 0.5
#: Good clients handshaking at the same time, and the most exchanges each
#: may make (the load is bounded even if the stop signal never came).
WORKERS = 4
PER_WORKER = 1500
#: Bounds on one exchange (connect, handshake, echo, close), on twistd's
#: start and on its whole life.
EXCHANGE_TIMEOUT = 5.0
START_TIMEOUT = 15.0
PROCESS_LIFETIME = 60.0

#: One good exchange: when it started and ended, what went wrong (C{None}:
#: nothing) and the serial number of the server certificate it saw.
Outcome = Tuple[float, float, Optional[str], Optional[int]]


def _certificate(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _replacePair(pki: TestPKI, name: str, cn: str) -> x509.Certificate:
    """
    Issue a new server certificate and key (a new key, serial and CN, the
    same C{localhost}/C{127.0.0.1} names) into temporary files and rename
    them over C{server.key} and C{server.pem}, key first, in quick
    succession: each file is replaced atomically, and the watcher only
    reloads once both have stayed the same for an interval.

    @return: the new certificate.
    """
    staging = TestPKI(os.path.join(pki.directory, "staging"), pki.authority)
    os.makedirs(staging.directory, exist_ok=True)
    certificate = staging.issue(name, cn, dns=["localhost"], ips=["127.0.0.1"], server=True)
    os.rename(staging.path(f"{name}.key"), pki.path("server.key"))
    os.rename(staging.path(f"{name}.pem"), pki.path("server.pem"))
    return certificate


class ReloadUnderLoadTests(RealPeerMixin, TestCase):
    """
    C{twistd securetcp terminate} reloads a renewed server certificate and
    key (by its file watcher, or on SIGHUP) and a new CRL (by its CRL
    watcher) while good clients keep handshaking: not one good handshake
    fails, new connections get the new certificate, the revoked device is
    turned away, and the audit chain records both reloads and verifies.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        super().setUp()
        self.pki.issue("client3", "PUMP-0100", uris=["spiffe://hospital.example/ward9/pump-0100"],
                       server=False)
        self.authority = CRLAuthority(self.pki, os.path.join(self.pki.directory, "ca-db"))
        self.crlPath = self.authority.generate(self.pki.path("crl.pem"))
        self.auditPath = self.pki.path("audit.jsonl")
        self.device = _certificate(self.pki.path("client.pem")).subject.rfc4514_string()
        self.good = {_certificate(self.pki.path(f"{n}.pem")).subject.rfc4514_string()
                     for n in ("client2", "client3")}
        self.clientAudit = AuditRecorder()

    # -- the processes --------------------------------------------------------

    async def backend(self) -> int:
        """
        The plaintext echo backend, in the trial reactor.
        """
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            CountingEchoFactory())
        self.addCleanup(port.stopListening)
        return port.getHost().port  # type: ignore[no-any-return]

    async def twistd(self, backendPort: int, watch: float) -> Tuple[int, PeerProcess]:
        """
        Start C{twistd -n securetcp terminate} with C{mtls:} (CRL checked and
        reloaded every L{POLL} seconds) on a free port in front of
        127.0.0.1:C{backendPort}, with C{--watch WATCH}, writing the audit
        file; wait until it listens, and stop it in cleanup.
        """
        assert TWISTD is not None
        for _attempt in range(3):
            port = _freePort()
            listen = (f"mtls:{port}:interface=127.0.0.1"
                      f":certKey={_escape(self.pki.path('server.pem'))}"
                      f":privateKey={_escape(self.pki.path('server.key'))}"
                      f":caCerts={_escape(self.pki.path('ca.pem'))}"
                      f":crl={_escape(self.crlPath)}:crlReload={POLL:g}")
            argv = [TWISTD, "-n", "--pidfile=", "securetcp", "terminate", "--listen", listen,
                    "--backend", f"tcp:127.0.0.1:{backendPort}", "--audit-log", self.auditPath,
                    "--watch", f"{watch:g}"]
            process = PeerProcess.spawn(argv, env=_env(), path=self.pki.directory,
                                        timeout=PROCESS_LIFETIME)
            self.addCleanup(process.stop)
            ready = b"starting on %d" % port
            await _waitUntil(lambda p=process, r=ready: r in p.out + p.err or not p.running,
                             START_TIMEOUT, "twistd to listen")
            if process.running:
                return port, process
            if b"Address already in use" not in process.out + process.err:
                break
        raise AssertionError(f"twistd did not start:\n{process.describe()}")

    async def stopTwistd(self, process: PeerProcess) -> None:
        await process.stop()
        self.assertFalse(process.killed, f"twistd did not stop on TERM:\n{process.describe()}")

    async def auditVerifies(self) -> None:
        """
        C{python -m securetcp audit verify} accepts the audit file.
        """
        verify = PeerProcess.spawn([sys.executable, "-m", "securetcp", "audit", "verify",
                                    self.auditPath], env=_env(), path=self.pki.directory,
                                   timeout=START_TIMEOUT)
        await verify.ended
        self.assertEqual(verify.exitCode, 0, verify.describe())
        self.assertTrue(verify.out.startswith(b"OK:"), verify.describe())

    def events(self, name: str) -> List[Dict[str, Any]]:
        return [r for r in _records(self.auditPath) if r.get("event") == name]

    async def waitForEvent(self, name: str, count: int, timeout: float) -> float:
        """
        Wait (at most C{timeout} seconds) until the audit file holds
        C{count} C{name} records.

        @return: C{time.monotonic()} when they were seen.
        """
        try:
            await _waitUntil(lambda: len(self.events(name)) >= count, timeout, name)
        except AssertionError as e:
            raise AssertionError(f"{e}\n" + "\n".join(
                json.dumps(r) for r in _records(self.auditPath)
                if not r.get("event", "").startswith("connection."))) from None
        return time.monotonic()

    # -- the clients ----------------------------------------------------------

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

    async def exchange(self, endpoint: SecureClientEndpoint) -> Tuple[Optional[str], Optional[int]]:
        """
        One complete exchange through the proxy: connect, send L{LINE}, wait
        for the backend's echo, close.

        @return: what went wrong (C{None} if nothing) and the serial number
            of the certificate the server presented.
        """
        serial = None
        try:
            app = await _bounded(endpoint.connect(LineClientFactory()), EXCHANGE_TIMEOUT)
            assert app.transport is not None
            serial = app.transport.getPeerCertificate().get_serial_number()
            app.transport.write(LINE + b"\n")
            if not await _bounded(app.echoed, EXCHANGE_TIMEOUT):
                raise AssertionError("the connection was lost before the echo")
        except HandshakeRejected as e:
            return f"rejected: {e.reason}", serial
        except Exception as e:  # a refused connection, a timeout, no echo: all count
            return f"{type(e).__name__}: {e}", serial
        app.transport.loseConnection()
        try:
            await _bounded(app.lost, EXCHANGE_TIMEOUT)
        except (CancelledError, TimeoutError):
            return "the connection did not close", serial
        return None, serial

    async def worker(self, endpoint: SecureClientEndpoint, stop: List[bool],
                     outcomes: List[Outcome]) -> None:
        """
        Exchange over C{endpoint} again and again until C{stop} is set (at
        most L{PER_WORKER} times), appending an L{Outcome} for each.
        """
        for _ in range(PER_WORKER):
            if stop:
                return
            start = time.monotonic()
            problem, serial = await self.exchange(endpoint)
            outcomes.append((start, time.monotonic(), problem, serial))

    # -- the scenario ---------------------------------------------------------

    def deviceRejections(self) -> List[Dict[str, Any]]:
        return [r for r in self.events("handshake.rejected")
                if (r.get("peerIdentity") or {}).get("subject") == self.device]

    async def reloadUnderLoad(self, watch: float) -> None:
        port, twistd = await self.twistd(await self.backend(), watch)
        oldSerial = _certificate(self.pki.path("server.pem")).serial_number
        device = self.client(port, "client")
        goods = [self.client(port, "client2"), self.client(port, "client3", maxVersion="TLSv1.2"),
                 self.client(port, "client2", maxVersion="TLSv1.2"), self.client(port, "client3")]
        self.assertEqual(await self.exchange(device), (None, oldSerial),
                         "the device was not served before it was revoked")

        stop: List[bool] = []
        outcomes: List[Outcome] = []
        workers = [Deferred.fromCoroutine(self.worker(goods[i % len(goods)], stop, outcomes))
                   for i in range(WORKERS)]
        try:
            await _sleep(WARM_UP)
            before = len(outcomes)

            # (a) a renewed certificate and key for the same names
            replacing = time.monotonic()
            new = _replacePair(self.pki, "server-renewed", "localhost (renewed)")
            replaced = time.monotonic()
            if watch:
                # seen within one interval, read once it settled for another
                # (a third if the two renames straddled a check)
                bound = 3 * watch + SLACK
            else:
                twistd.transport.signalProcess("HUP")
                bound = SLACK
            reloadedSeen = await self.waitForEvent("policy.reloaded", 1, bound)
            duringReload = len(outcomes) - before

            # (b) revoke the device and publish a new CRL, as an operator does
            await _openssl("ca", "-config", self.authority.config, "-revoke",
                           self.pki.path("client.pem"), "-crl_reason", "keyCompromise")
            await _openssl("ca", "-config", self.authority.config, "-gencrl",
                           "-out", self.crlPath + ".new")
            os.rename(self.crlPath + ".new", self.crlPath)
            published = time.monotonic()
            crlSeen = await self.waitForEvent("revocation.crl_loaded", 1, 2 * POLL + SLACK)

            # the device's first try after the CRL is in force is turned away
            deviceTry = await self.exchange(device)
            self.assertIsNotNone(deviceTry[0], "the revoked device got in after the CRL "
                                 "was loaded")
            await _waitUntil(self.deviceRejections, EXCHANGE_TIMEOUT,
                             "the device's handshake.rejected record")

            afterRevocation = len(outcomes)
            await _sleep(COOL_DOWN)
            self.assertGreater(len(outcomes), afterRevocation,
                               "no good client handshook after the revocation")
        finally:
            stop.append(True)
            for w in workers:
                await w
        await self.stopTwistd(twistd)

        # not one good exchange failed, before, during or after the reloads
        failures = [problem for _, _, problem, _ in outcomes if problem is not None]
        self.assertEqual(failures, [], f"{len(failures)} of {len(outcomes)} good exchanges failed")
        self.assertGreater(before, 0, "no good client handshook before the reloads")
        # good exchanges were under way while the pair was replaced and reloaded
        overlapping = [o for o in outcomes if o[0] < reloadedSeen and o[1] > replacing]
        self.assertGreater(len(overlapping), 0, "no good client handshook during the reload")

        # the old certificate until the replacement, the new one after the
        # reload (an exchange in flight meanwhile may get either)
        self.assertEqual({s for _, end, _, s in outcomes if end < replacing}, {oldSerial})
        afterReload = [s for start, _, _, s in outcomes if start > reloadedSeen]
        self.assertGreater(len(afterReload), 0)
        self.assertEqual(set(afterReload), {new.serial_number})

        # the audit chain: both reloads, the rejection, every good handshake
        self.assertEqual(len(self.events("policy.reloaded")), 1)
        self.assertEqual(self.events("policy.reload_refused"), [])
        [loaded] = self.events("revocation.crl_loaded")
        self.assertEqual((loaded["files"], loaded["revoked"]), ([self.crlPath], 1))
        self.assertEqual(self.events("revocation.crl_refused"), [])
        [rejection] = self.deviceRejections()
        self.assertEqual((rejection["reason"], rejection.get("revocationReason")),
                         ("revoked", "keyCompromise"), rejection)
        goodAccepted = [r for r in self.events("connection.accepted")
                        if r["peerIdentity"]["subject"] in self.good]
        self.assertEqual(len(goodAccepted), len(outcomes))
        self.assertEqual({r["version"] for r in goodAccepted}, {"TLSv1.2", "TLSv1.3"})
        self.assertEqual([r for r in self.events("handshake.rejected")
                          if (r.get("peerIdentity") or {}).get("subject") in self.good], [])
        await self.auditVerifies()

        straddling = [o for o in outcomes if o[0] < replaced and o[1] > reloadedSeen]
        _log.info("reload under load ({trigger}): {handshakes} good exchanges, 0 failed; "
                  "{overlapping} under way between replacing the pair and seeing policy.reloaded "
                  "({reload:.3f}s later; {during} completed, {straddling} spanning all of "
                  "it); new certificate served to "
                  "{after}; CRL loaded {crl:.3f}s after publishing; device rejected ({problem})",
                  trigger=f"--watch {watch:g}" if watch else "SIGHUP, --watch 0",
                  handshakes=len(outcomes), overlapping=len(overlapping), during=duringReload, reload=reloadedSeen - replaced,
                  straddling=len(straddling), after=len(afterReload), crl=crlSeen - published,
                  problem=deviceTry[0])

    def test_watchedReloadUnderLoad(self) -> Any:
        """
        With C{--watch 1}, while good clients (TLS 1.2 and 1.3) keep
        handshaking through C{twistd securetcp terminate}: a renewed server
        certificate and key renamed over the old files are reloaded by the
        watcher (one C{policy.reloaded}, no C{policy.reload_refused}) and
        every connection started after it gets the new certificate; a CRL
        revoking a device, published with C{openssl ca}, is loaded
        (C{revocation.crl_loaded}) and the device is rejected as
        C{revoked}; not one good exchange fails, and C{python -m securetcp
        audit verify} accepts the audit file.
        """
        return Deferred.fromCoroutine(self.reloadUnderLoad(POLL))

    def test_sighupReloadUnderLoad(self) -> Any:
        """
        With C{--watch 0}, the same renewal under load is picked up by
        SIGHUP: one C{policy.reloaded}, the new certificate for every
        connection started after it, the new CRL loaded and the device
        rejected, not one good exchange failed, and the audit file
        verifies.
        """
        return Deferred.fromCoroutine(self.reloadUnderLoad(0))


class FileWatchTests(SynchronousTestCase):
    """
    The file watcher of L{_tap.SecureTCPService} (C{--watch}), driven by a
    L{MemoryReactorClock}.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        self.clock = MemoryReactorClock()
        listen = (f"mtls:6661:interface=127.0.0.1"
                  f":certKey={_escape(self.pki.path('server.pem'))}"
                  f":privateKey={_escape(self.pki.path('server.key'))}"
                  f":caCerts={_escape(self.pki.path('ca.pem'))}")
        options = _tap.Options(build=False)
        options.parseOptions(["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1",
                              "--watch", "1"])
        self.service = _tap.makeService(options, self.clock)
        assert isinstance(self.service, _tap.SecureTCPService)
        [self.endpoint] = self.service.secureEndpoints
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.original = _certificate(self.pki.path("server.pem")).serial_number

    def served(self) -> int:
        """
        The serial number of the certificate new connections get.
        """
        connection = SSL.Connection(self.endpoint.creator.context, None)
        return connection.get_certificate().get_serial_number()  # type: ignore[no-any-return]

    def tick(self, intervals: int = 1) -> None:
        for _ in range(intervals):
            self.clock.advance(1.0)

    def counts(self) -> Tuple[int, int]:
        """
        How many C{policy.reloaded} and C{policy.reload_refused} records
        there are.
        """
        return (len(self.audit.events("policy.reloaded")),
                len(self.audit.events("policy.reload_refused")))

    def garbageKey(self) -> None:
        new = self.pki.path("server.key.new")
        with open(new, "wb") as f:
            f.write(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
        os.rename(new, self.pki.path("server.key"))

    def test_watchedFiles(self) -> None:
        """
        The watcher looks at the certificate, key and CA files of the
        C{--listen} string.
        """
        self.assertEqual(self.service.watchedFiles(),
                         [self.pki.path(n) for n in ("server.pem", "server.key", "ca.pem")])

    def test_unchanged(self) -> None:
        """
        Intervals in which no watched file changed reload nothing.
        """
        self.tick(10)
        self.assertEqual(self.counts(), (0, 0))
        self.assertEqual(self.served(), self.original)

    def test_changedReloadsOnceSettled(self) -> None:
        """
        A renewed certificate and key are read one interval after the check
        that saw them change (once they stayed the same), reloaded exactly
        once (C{policy.reloaded}), and served from then on; later unchanged
        intervals reload nothing.
        """
        new = _replacePair(self.pki, "server-renewed", "localhost (renewed)")
        self.tick()
        self.assertEqual(self.counts(), (0, 0), "reloaded before the files settled")
        self.assertEqual(self.served(), self.original)
        self.tick()
        self.assertEqual(self.counts(), (1, 0))
        self.assertEqual(self.served(), new.serial_number)
        self.tick(10)
        self.assertEqual(self.counts(), (1, 0))

    def test_stillChangingWaits(self) -> None:
        """
        A file that changes again at every check is not read until it has
        stayed the same for one interval.
        """
        for i in range(3):
            _replacePair(self.pki, f"server-step{i}", f"localhost (step {i})")
            self.tick()
            self.assertEqual(self.counts(), (0, 0), f"reloaded during step {i}")
        self.tick()
        self.assertEqual(self.counts(), (1, 0))
        self.assertEqual(self.served(), _certificate(self.pki.path("server.pem")).serial_number)

    def test_garbageRefusedOnceThenRestored(self) -> None:
        """
        A garbage key is refused once (one C{policy.reload_refused}, naming
        the file), not again at every later interval while it stays, and
        the running certificate keeps being served; a good pair renamed over
        it next is reloaded (C{policy.reloaded}) and served.
        """
        self.garbageKey()
        self.tick(2)
        self.assertEqual(self.counts(), (0, 1))
        [refused] = self.audit.events("policy.reload_refused")
        self.assertIn("server.key", refused["detail"])
        self.assertEqual(self.served(), self.original)
        self.tick(20)
        self.assertEqual(self.counts(), (0, 1), "the same bad file was refused again")
        self.assertEqual(self.served(), self.original)

        new = _replacePair(self.pki, "server-restored", "localhost (restored)")
        self.tick(2)
        self.assertEqual(self.counts(), (1, 1))
        self.assertEqual(self.served(), new.serial_number)
        self.tick(10)
        self.assertEqual(self.counts(), (1, 1))

    def test_sighupNotRepeatedByWatcher(self) -> None:
        """
        Files that a SIGHUP reload already read are not reloaded a second
        time by the watcher: a renewed pair reloaded on SIGHUP gives one
        C{policy.reloaded}, and a garbage key refused on SIGHUP one
        C{policy.reload_refused}, however many intervals follow.
        """
        new = _replacePair(self.pki, "server-renewed", "localhost (renewed)")
        self.service._hangup()  # what the SIGHUP handler runs in the reactor
        self.assertEqual(self.counts(), (1, 0))
        self.assertEqual(self.served(), new.serial_number)
        self.tick(5)
        self.assertEqual(self.counts(), (1, 0), "the watcher reloaded the same files again")

        self.garbageKey()
        self.service._hangup()
        self.assertEqual(self.counts(), (1, 1))
        self.tick(5)
        self.assertEqual(self.counts(), (1, 1), "the watcher refused the same file again")
        self.assertEqual(self.served(), new.serial_number)


class PolicyFileReloadTests(SynchronousTestCase):
    """
    A reload of L{_tap.SecureTCPService} re-reads each endpoint's policy
    file and endpoint-string arguments into a new policy (through the
    parser's policy-building function): no throwaway endpoint is built.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        self.policyFile = self.pki.path("policy.toml")
        self.writePolicy(10)
        listen = (f"mtls:6661:interface=127.0.0.1:policy={_escape(self.policyFile)}"
                  f":certKey={_escape(self.pki.path('server.pem'))}"
                  f":privateKey={_escape(self.pki.path('server.key'))}")
        options = _tap.Options(build=False)
        options.parseOptions(["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1",
                              "--watch", "0"])
        self.service = _tap.makeService(options, MemoryReactorClock())
        assert isinstance(self.service, _tap.SecureTCPService)
        [self.endpoint] = self.service.secureEndpoints

    def writePolicy(self, timeout: int) -> None:
        with open(self.policyFile + ".new", "w") as f:
            f.write(f'caCerts = "{self.pki.path("ca.pem")}"\n'
                    f"handshakeTimeout = {timeout}\n")
        os.rename(self.policyFile + ".new", self.policyFile)

    def test_policyFileReread(self) -> None:
        """
        After the policy file changes, a reload (what SIGHUP runs) puts its
        new values in force, keeps the string's arguments, and audits
        C{policy.reloaded} naming C{policy} as changed, with the same
        certificate fingerprint before and after; no endpoint string is
        parsed again.
        """
        self.assertEqual(self.endpoint.policy.handshakeTimeout, 10)
        self.writePolicy(7)

        def noThrowaway(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a reload parsed an endpoint string again")

        self.patch(_endpoints, "serverFromString", noThrowaway)
        self.assertTrue(self.service.reload())
        self.assertEqual(self.endpoint.policy.handshakeTimeout, 7)
        self.assertEqual(self.endpoint.policy.credentials.certificateFile,
                         self.pki.path("server.pem"))
        [reloaded] = self.audit.events("policy.reloaded")
        self.assertEqual(reloaded["changed"], ["policy"])
        self.assertEqual(reloaded["certificateBefore"], reloaded["certificateAfter"])

    def test_badPolicyFileRefused(self) -> None:
        """
        A policy file that became invalid is refused on reload
        (C{policy.reload_refused} naming the file and key); the running
        policy stays.
        """
        self.writePolicy(0)
        self.assertFalse(self.service.reload())
        [refused] = self.audit.events("policy.reload_refused")
        self.assertIn(self.policyFile, refused["detail"])
        self.assertIn("handshakeTimeout", refused["detail"])
        self.assertEqual(self.endpoint.policy.handshakeTimeout, 10)


class _SynchronousPool:
    """
    A thread pool that runs each call at once, in the calling thread.
    """

    def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any,
                                 **kwargs: Any) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)


@implementer(IReactorThreads)
class SynchronousThreadsClock(MemoryReactorClock):
    """
    A L{MemoryReactorClock} whose thread pool runs calls at once: what an
    endpoint built on it runs "in a thread" (CRL parsing) is synchronous.
    """

    def getThreadPool(self) -> _SynchronousPool:
        return _SynchronousPool()

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)

    def callInThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)

    def suggestThreadPoolSize(self, size: int) -> None:
        pass


class ReloadKeepsCRLsTests(SynchronousTestCase):
    """
    A reload of the certificate and key (by the file watcher here; SIGHUP
    runs the same L{_tap.SecureTCPService.reload}) reads the CRL file
    again, under the same rules as the CRL watcher.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        authority = CRLAuthority(self.pki, os.path.join(self.pki.directory, "ca-db"))
        self.older = authority.generate(self.pki.path("older.crl"))  # CRL number 1
        authority.revoke(self.pki.path("client.pem"))
        self.crlPath = authority.generate(self.pki.path("crl.pem"))  # 2, revoking client
        self.clock = SynchronousThreadsClock()  # CRLs are parsed synchronously
        listen = (f"mtls:6661:interface=127.0.0.1"
                  f":certKey={_escape(self.pki.path('server.pem'))}"
                  f":privateKey={_escape(self.pki.path('server.key'))}"
                  f":caCerts={_escape(self.pki.path('ca.pem'))}"
                  f":crl={_escape(self.crlPath)}:crlReload=1")
        options = _tap.Options(build=False)
        options.parseOptions(["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1",
                              "--watch", "1"])
        service = _tap.makeService(options, self.clock)
        assert isinstance(service, _tap.SecureTCPService)
        [self.endpoint] = service.secureEndpoints
        service.startService()
        self.addCleanup(service.stopService)
        # a real port starts its factory, which starts the CRL watcher
        factory = self.clock.tcpServers[-1][1]
        factory.doStart()
        self.addCleanup(factory.doStop)
        self.original = _certificate(self.pki.path("server.pem")).serial_number

    def test_replayedCRLNotReinstated(self) -> None:
        """
        An older CRL (a lower CRL number, not revoking the device) renamed
        over the CRL file is refused by the CRL watcher
        (C{revocation.crl_refused}); a renewed certificate and key reloaded
        next do not bring it in through the back door: the reload is refused
        (C{policy.reload_refused} naming the CRL file), the CRL revoking the
        device and the running certificate stay in force.
        """
        device = _certificate(self.pki.path("client.pem")).serial_number
        self.assertEqual({s for _, s in self.endpoint.creator.crls.revoked}, {device})
        replay = self.pki.path("crl.pem.new")
        with open(self.older, "rb") as source, open(replay, "wb") as target:
            target.write(source.read())
        os.rename(replay, self.crlPath)
        self.clock.advance(1.0)
        [refused] = self.audit.events("revocation.crl_refused")
        self.assertIn("lower than the 2 in force", refused["detail"])

        _replacePair(self.pki, "server-renewed", "localhost (renewed)")
        for _ in range(3):
            self.clock.advance(1.0)
        self.assertEqual({s for _, s in self.endpoint.creator.crls.revoked}, {device},
                         "the reload reinstated a replayed older CRL")
        self.assertEqual(self.audit.events("policy.reloaded"), [])
        [reloadRefused] = self.audit.events("policy.reload_refused")
        self.assertIn(self.crlPath, reloadRefused["detail"])
        connection = SSL.Connection(self.endpoint.creator.context, None)
        self.assertEqual(connection.get_certificate().get_serial_number(), self.original)
        self.assertEqual(len(self.audit.events("revocation.crl_refused")), 1)


#: The first PEM certificate s_client prints: the server's.
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                              re.DOTALL)


class CRLReloadKeepsCertificateTests(TapProcessMixin, SynchronousTestCase):
    """
    Against C{openssl s_client}: a CRL reload never changes the certificate
    C{twistd securetcp} serves; only an explicit reload (SIGHUP) does, and
    it is audited with the fingerprints before and after.
    """

    def setUp(self) -> None:
        super().setUp()
        self.authority = CRLAuthority(self.pki, os.path.join(self.workdir, "ca-db"))
        self.crlPath = self.pki.path("crl.pem")
        self.publishCRL()

    def publishCRL(self) -> None:
        """
        Write the CA's current CRL next to the CRL file and rename it over
        that file (so the CRL watcher never reads half a file).
        """
        self.authority.generate(self.crlPath + ".new")
        os.rename(self.crlPath + ".new", self.crlPath)

    def listen(self, port: int) -> List[str]:
        return ["--listen",
                f"mtls:{port}:interface=127.0.0.1"
                f":certKey={_escape(self.pki.path('server.pem'))}"
                f":privateKey={_escape(self.pki.path('server.key'))}"
                f":caCerts={_escape(self.pki.path('ca.pem'))}"
                f":crl={_escape(self.crlPath)}:crlReload=1"]

    def servedFingerprint(self, port: int) -> str:
        """
        The SHA-256 fingerprint of the certificate C{openssl s_client}
        gets from 127.0.0.1:C{port} in a complete mTLS handshake.
        """
        assert OPENSSL is not None
        result = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-CAfile", self.pki.path("ca.pem"), "-verify_return_error",
             "-cert", self.pki.path("client.pem"), "-key", self.pki.path("client.key")],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=START_TIMEOUT)
        self.assertIn(b"Verify return code: 0 (ok)", result.stdout,
                      result.stdout.decode("utf-8", "replace")
                      + result.stderr.decode("utf-8", "replace"))
        match = _PEM_CERTIFICATE.search(result.stdout)
        assert match is not None, result.stdout
        return x509.load_pem_x509_certificate(match.group(0)).fingerprint(
            hashes.SHA256()).hex()

    def waitForRecord(self, name: str, count: int) -> Dict[str, Any]:
        """
        Wait (bounded) until the audit file holds C{count} C{name} records;
        the last one.
        """
        def found() -> List[Dict[str, Any]]:
            records = _events(self.audit, name)
            return records if len(records) >= count else []

        deadline = time.monotonic() + START_TIMEOUT
        while not found():
            self.assertLess(time.monotonic(), deadline,
                            f"no {count} {name} record(s) in the audit file:\n"
                            + "\n".join(json.dumps(r) for r in _records(self.audit)))
            time.sleep(0.05)
        return found()[-1]

    def test_crlReloadKeepsCertificateUntilSIGHUP(self) -> None:
        """
        C{twistd securetcp terminate} with C{crl=...:crlReload=1} and
        C{--watch 0}: the certificate and key files are replaced, then a new
        CRL is published and loaded (C{revocation.crl_loaded}); s_client
        still gets the old certificate and nothing was audited as
        C{policy.reloaded}.  After SIGHUP s_client gets the new certificate,
        and the C{policy.reloaded} record names the old and new SHA-256
        fingerprints; the audit file verifies.
        """
        backendPort, _, _ = self.backend()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, "--watch", "0",
                                   listen=self.listen)
        old = _certificate(self.pki.path("server.pem")).fingerprint(hashes.SHA256()).hex()
        self.assertEqual(self.servedFingerprint(port), old)

        new = _replacePair(self.pki, "server-renewed", "localhost (renewed)").fingerprint(
            hashes.SHA256()).hex()
        self.assertNotEqual(new, old)
        self.authority.revoke(self.pki.path("client2.pem"))
        self.publishCRL()
        loaded = self.waitForRecord("revocation.crl_loaded", 1)
        self.assertEqual(loaded["revoked"], 1)
        self.assertEqual(self.servedFingerprint(port), old)
        self.assertEqual(_events(self.audit, "policy.reloaded"), [])

        twistd.process.send_signal(signal.SIGHUP)
        reloaded = self.waitForRecord("policy.reloaded", 1)
        self.assertEqual((reloaded["certificateBefore"], reloaded["certificateAfter"]),
                         (old, new))
        self.assertIn("certificate", reloaded["changed"])
        self.assertEqual(self.servedFingerprint(port), new)
        self.assertTrue(twistd.running, twistd.describe())
        twistd.stop()
        self.assertVerifies(self.audit)
