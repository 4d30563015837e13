"""
Tests for L{securetcp.revocation.crlnotify}: on Linux a replaced CRL is in
force within a second, because its directory is watched with inotify; the
poll every C{crlReload} seconds stays as the fallback.  The server tests
set C{crlReload=60}, so only inotify can explain a reload within seconds;
the CRL is replaced the way operators do it (written elsewhere, renamed
over), and C{openssl s_client} presenting the revoked certificate is
refused afterwards.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any, List, Sequence

from cryptography import x509
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from securetcp.policy import Revocation
from securetcp.revocation.crlnotify import watchCRLFiles

from ._crl import craftCRL
from ._peers import RealPeerMixin, sleep, waitUntil
from ._programs import OPENSSL

#: inotify must have made the new CRL count within this (polling: 60 s).
FAST = 3.0


def _needInotify() -> None:
    if not sys.platform.startswith("linux"):
        raise SkipTest("inotify is Linux only")
    try:
        from twisted.internet import inotify  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise SkipTest(f"no inotify: {e}") from None


def _fresh(pki: Any, revoked: Sequence[x509.Certificate] = (), number: int = 1) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    return craftCRL(pki, revoked, number=number, lastUpdate=now - datetime.timedelta(hours=1),
                    nextUpdate=now + datetime.timedelta(days=7))


def _renameOver(path: str, data: bytes) -> None:
    """
    Publish C{data} as C{path} atomically: write a temporary file in the
    same directory and rename it over.
    """
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


class WatchTests(TestCase):
    """
    L{watchCRLFiles} calls back once a CRL file changed.
    """

    def setUp(self) -> None:
        _needInotify()
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.calls: List[float] = []

    def watch(self, **revocation: Any) -> None:
        stop = watchCRLFiles(reactor, Revocation(**revocation),
                             lambda: self.calls.append(time.monotonic()))
        self.assertIsNotNone(stop)
        assert stop is not None
        self.addCleanup(stop)

    @inlineCallbacks
    def test_renameOver(self) -> Any:
        """
        A CRL file renamed over is noticed once, within a second; a change
        to another file of the directory is not.
        """
        path = os.path.join(self.directory, "devices.crl")
        with open(path, "wb") as f:
            f.write(b"one")
        self.watch(crlFiles=(path,))
        with open(os.path.join(self.directory, "unrelated.txt"), "wb") as f:
            f.write(b"x")
        started = time.monotonic()
        _renameOver(path, b"two")
        yield waitUntil(lambda: self.calls, FAST, "the change to be noticed")
        self.assertLess(self.calls[0] - started, 1.0)
        yield sleep(0.5)
        self.assertEqual(len(self.calls), 1)

    @inlineCallbacks
    def test_writtenInPlaceAndNewInDirectory(self) -> Any:
        """
        A CRL written in place, and a new file in a C{crlDir}, are noticed.
        """
        path = os.path.join(self.directory, "devices.crl")
        crlDir = os.path.join(self.directory, "crls")
        os.makedirs(crlDir)
        with open(path, "wb") as f:
            f.write(b"one")
        self.watch(crlFiles=(path,), crlDirs=(crlDir,))
        with open(path, "wb") as f:
            f.write(b"two")
        yield waitUntil(lambda: len(self.calls) == 1, FAST, "the in-place write")
        with open(os.path.join(crlDir, "other.crl"), "wb") as f:
            f.write(b"three")
        yield waitUntil(lambda: len(self.calls) == 2, FAST, "the new file in the crlDir")


class NoInotifyTests(SynchronousTestCase):
    """
    Without a reactor that has file descriptors, nothing is watched.
    """

    def test_clock(self) -> None:
        """
        With a plain L{Clock} (tests, or a reactor without file
        descriptors), L{watchCRLFiles} returns C{None}: polling only.
        """
        self.assertIsNone(watchCRLFiles(Clock(), Revocation(crlFiles=("x.crl",)), lambda: None))


class ServerReloadTests(RealPeerMixin, TestCase):
    """
    A server with C{crlReload=60} enforces a CRL renamed over its file
    within seconds.
    """

    def setUp(self) -> None:
        _needInotify()
        if OPENSSL is None:
            raise SkipTest("the openssl binary is not installed")
        super().setUp()

    @inlineCallbacks
    def test_renamedCRLEnforcedAtOnce(self) -> Any:
        """
        s_client with C{client.pem} gets through; a CRL revoking it is
        renamed over the CRL file; within L{FAST} seconds (the poll would
        take 60) C{revocation.crl_loaded} is audited, and s_client with the
        same certificate is then refused as C{revoked}.
        """
        path = self.pki.path("devices.crl")
        with open(path, "wb") as f:
            f.write(_fresh(self.pki))
        port, _, audit = yield self.listen(crl=path, crlReload="60")
        peer = yield self.sClient(port, client="client", audit=audit)
        self.assertEchoed(peer)
        with open(self.pki.path("client.pem"), "rb") as f:
            revoked = x509.load_pem_x509_certificate(f.read())
        started = time.monotonic()
        _renameOver(path, _fresh(self.pki, [revoked], number=2))
        yield waitUntil(lambda: audit.events("revocation.crl_loaded"), FAST,
                        "the renamed CRL to be loaded")
        self.assertLess(time.monotonic() - started, FAST)
        peer = yield self.sClient(port, client="client", audit=audit)
        self.assertNotEchoed(peer)
        [rejected] = audit.events("handshake.rejected")
        self.assertEqual(rejected["reason"], "revoked")

    @inlineCallbacks
    def test_sessionFromBeforeTheReloadNotResumed(self) -> Any:
        """
        A session made before a CRL revoking its client was loaded does not
        resume past it: the reload puts a new TLS context (with new ticket
        keys) in force, so the client offering its saved TLS 1.3 session
        gets a full handshake, with the verify step, and is refused as
        C{revoked}; before the reload the same session resumed.
        """
        path = self.pki.path("devices.crl")
        with open(path, "wb") as f:
            f.write(_fresh(self.pki))
        port, _, audit = yield self.listen(crl=path, crlReload="60")
        session = os.path.abspath(self.mktemp())
        peer = yield self.sClient(port, "-tls1_3", "-sess_out", session, client="client",
                                  audit=audit)
        self.assertEchoed(peer)
        peer = yield self.sClient(port, "-tls1_3", "-sess_in", session, client="client",
                                  audit=audit)
        self.assertEchoed(peer)
        self.assertEqual([r["resumed"] for r in audit.events("connection.accepted")],
                         [False, True])
        with open(self.pki.path("client.pem"), "rb") as f:
            revoked = x509.load_pem_x509_certificate(f.read())
        _renameOver(path, _fresh(self.pki, [revoked], number=2))
        yield waitUntil(lambda: audit.events("revocation.crl_loaded"), FAST,
                        "the renamed CRL to be loaded")
        peer = yield self.sClient(port, "-tls1_3", "-sess_in", session, client="client",
                                  audit=audit)
        self.assertNotEchoed(peer)
        [rejected] = audit.events("handshake.rejected")
        self.assertEqual(rejected["reason"], "revoked")
        self.assertEqual(len(audit.events("connection.accepted")), 2)


class TwistdWatchCoversCRLsTests(SynchronousTestCase):
    """
    C{twistd securetcp --watch} looks at the CRL files too (driven by a
    L{MemoryReactorClock}, so neither inotify nor the CRL poll can explain
    the reload).
    """

    def test_crlRenamedOverReloads(self) -> None:
        """
        The watched files include the C{crl=} file and C{crlDir=}
        directory; a CRL renamed over its file is in force after the
        change settled (two C{--watch} intervals).
        """
        from twisted.internet.testing import MemoryReactorClock

        from securetcp._twistd import tap

        from ._net import escape
        from ._pki import TestPKI

        pki = TestPKI.create(os.path.abspath(self.mktemp()))
        crl, crlDir = pki.path("devices.crl"), pki.path("crls")
        os.makedirs(crlDir)
        with open(crl, "wb") as f:
            f.write(_fresh(pki))
        listen = (f"mtls:6661:interface=127.0.0.1:certKey={escape(pki.path('server.pem'))}"
                  f":privateKey={escape(pki.path('server.key'))}"
                  f":caCerts={escape(pki.path('ca.pem'))}:crl={escape(crl)}"
                  f":crlDir={escape(crlDir)}:crlReload=3600")
        options = tap.Options(build=False)
        options.parseOptions(["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1",
                              "--watch", "1"])
        clock = MemoryReactorClock()
        service = tap.makeService(options, clock)
        assert isinstance(service, tap.SecureTCPService)
        self.assertIn(crl, service.watchedFiles())
        self.assertIn(crlDir, service.watchedFiles())
        service.startService()
        self.addCleanup(service.stopService)
        [endpoint] = service.secureEndpoints
        with open(pki.path("client.pem"), "rb") as f:
            client = x509.load_pem_x509_certificate(f.read())
        self.assertFalse(endpoint.creator.materials.crls.isRevoked(client))
        _renameOver(crl, _fresh(pki, [client], number=2))
        for _ in range(2):
            clock.advance(1.0)
        self.assertTrue(endpoint.creator.materials.crls.isRevoked(client))
