"""
Tests for L{securetcp._filewatch}: C{reload=watch} on C{securessl:}/C{mtls:}
server strings, driven by a L{Clock} (the polling path), from the watcher
alone up to an endpoint parsed from a string and started as a listening
port starts it.
"""

from __future__ import annotations

import os
from typing import Any, List, Tuple

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from securetcp._filewatch import (
    SETTLE_SECONDS,
    CredentialWatcher,
    SharedWatch,
    credentialFiles,
    signature,
    watchDirectories,
)
from securetcp.config import buildPolicy
from securetcp.endpoints import serverEndpoint
from securetcp.errors import EndpointArgumentError, PolicyError

from ._net import escape
from ._pki import TestPKI
from ._recording import AuditRecorder


class SignatureTests(SynchronousTestCase):
    """
    L{signature} and L{credentialFiles} say what the watcher compares.
    """

    def test_contentNotTimes(self) -> None:
        """
        The signature changes with a file's content, stays with the same
        content rewritten, says C{None} for a missing file, and covers
        every file of a directory.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "a.pem")
        with open(path, "w") as f:
            f.write("one")
        before = signature([path, directory])
        with open(path, "w") as f:
            f.write("one")
        self.assertEqual(signature([path, directory]), before)
        with open(os.path.join(directory, "b.pem"), "w") as f:
            f.write("two")
        self.assertNotEqual(signature([path, directory]), before)
        self.assertEqual(signature([path + ".gone"]), ((path + ".gone", None),))

    def test_credentialFiles(self) -> None:
        """
        A server's certificate, key and CA files are watched, once each.
        """
        pki = TestPKI.create(os.path.abspath(self.mktemp()))
        policy = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                             caCerts=pki.path("ca.pem"))
        self.assertEqual(credentialFiles(policy),
                         tuple(pki.path(n) for n in ("server.pem", "server.key", "ca.pem")))

    def test_noInotifyWithoutFileDescriptors(self) -> None:
        """
        A clock that is not a reactor with file descriptors gets no inotify
        watch: polling alone notices changes.
        """
        self.assertIsNone(watchDirectories(Clock(), [self.mktemp()], [], lambda: None,
                                           self.fail))


class InotifyTests(TestCase):
    """
    L{watchDirectories} on the real reactor (Linux): a file renamed over a
    watched one is noticed without polling.
    """

    timeout = 10

    async def test_renameNoticed(self) -> None:
        """
        Renaming a new file over a watched one calls back; the watch stops
        when asked.
        """
        from twisted.internet import reactor

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "server.pem")
        with open(path, "w") as f:
            f.write("old")
        noticed: Deferred[None] = Deferred()
        stop = watchDirectories(reactor, [path], [],
                                lambda: None if noticed.called else noticed.callback(None),
                                lambda error: None)
        if stop is None:
            raise SkipTest("inotify is not available here")
        self.addCleanup(stop)
        with open(path + ".new", "w") as f:
            f.write("new")
        os.rename(path + ".new", path)
        await noticed


class WatcherTests(SynchronousTestCase):
    """
    L{CredentialWatcher} on a L{Clock}: polling, settling, refusals.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = os.path.abspath(self.mktemp())
        self.write("first")
        self.calls: List[str] = []
        self.fail_: Any = None
        self.watcher = CredentialWatcher(self.clock, lambda: [self.path], self.reload,
                                         interval=5.0)
        self.watcher.start()
        self.addCleanup(self.watcher.stop)

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def reload(self) -> None:
        with open(self.path) as f:
            self.calls.append(f.read())
        if self.fail_ is not None:
            raise self.fail_

    def test_unchanged(self) -> None:
        """
        Polls of files that did not change reload nothing.
        """
        self.clock.pump([5.0] * 10)
        self.assertEqual(self.calls, [])

    def test_reloadOnceSettled(self) -> None:
        """
        A change seen by a poll is reloaded once it has stayed the same for
        L{SETTLE_SECONDS}, exactly once.
        """
        self.write("second")
        self.clock.advance(5.0)
        self.assertEqual(self.calls, [], "reloaded before the file settled")
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(self.calls, ["second"])
        self.clock.pump([5.0] * 5)
        self.assertEqual(self.calls, ["second"])
        self.assertEqual((self.watcher.reloads, self.watcher.refused), (1, 0))

    def test_stillBeingWritten(self) -> None:
        """
        A file that changes again before it settles is read only once it
        stops changing: what is reloaded is the complete file.
        """
        self.write("sec")
        self.clock.advance(5.0)
        for text in ("secon", "second", "second\n"):
            self.write(text)
            self.clock.advance(SETTLE_SECONDS)
            self.assertEqual(self.calls, [])
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(self.calls, ["second\n"])

    def test_refusedKeepsWatching(self) -> None:
        """
        A reload that refuses the files (L{PolicyError}: a key that does
        not match, a half-written file) is counted and logged; the same
        files are not tried again, the next change is.
        """
        logged: List[Any] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.fail_ = PolicyError("privateKey", "server.key", "does not match the certificate",
                                 "give the key of certKey")
        self.write("mismatch")
        self.clock.pump([5.0, SETTLE_SECONDS])
        self.assertEqual(self.calls, ["mismatch"])
        self.assertEqual(self.watcher.refused, 1)
        self.assertTrue(any("the ones in force stay" in str(e.get("log_format", ""))
                            for e in logged))
        self.clock.pump([5.0] * 5)
        self.assertEqual(self.calls, ["mismatch"], "the same files were tried again")
        self.fail_ = None
        self.write("fixed")
        self.clock.pump([5.0, SETTLE_SECONDS])
        self.assertEqual(self.calls, ["mismatch", "fixed"])
        self.assertEqual(self.watcher.reloads, 1)

    def test_stopAfterLastUser(self) -> None:
        """
        Each listening port starts the watcher; it stops polling when the
        last one stops it.
        """
        self.watcher.start()
        self.watcher.stop()
        self.write("changed")
        self.clock.pump([5.0, SETTLE_SECONDS])
        self.assertEqual(self.calls, ["changed"])
        self.watcher.stop()
        self.write("again")
        self.clock.pump([5.0, SETTLE_SECONDS] * 3)
        self.assertEqual(self.calls, ["changed"])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.watcher.start()  # for the cleanup's stop


    def test_stopCancelsSettling(self) -> None:
        """
        A change noticed and still settling when the last user stops is
        never acted on: the stop leaves no delayed call behind.
        """
        self.write("changed")
        self.clock.advance(5.0)
        self.assertTrue(self.clock.getDelayedCalls(), "no settle planned")
        self.watcher.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(self.calls, [])
        self.watcher.start()  # for the cleanup's stop


class _Counted(SharedWatch):
    """
    The smallest watcher: a poll on a L{Clock} and a recorded inotify stop.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._users = 0
        self._loop = None
        self._stopNotify = None
        self.events: List[str] = []

    def start(self) -> None:
        from twisted.internet.task import LoopingCall

        self._users += 1
        if self._loop is None:
            self._loop = LoopingCall(lambda: self.events.append("poll"))
            self._loop.clock = self.clock
            self._loop.start(1.0, now=False)
            self._stopNotify = lambda: self.events.append("unwatched")

    def _stopped(self) -> None:
        self.events.append("stopped")


class SharedWatchTests(SynchronousTestCase):
    """
    L{SharedWatch.stop}, the reference-counted stop the certificate and CRL
    watchers share.
    """

    def test_lastUserStops(self) -> None:
        """
        With two users, the first stop changes nothing; the second stops the
        poll, stops the inotify watch and calls C{_stopped}, once each.
        """
        clock = Clock()
        watch = _Counted(clock)
        watch.start()
        watch.start()
        self.assertTrue(watch.notified)
        watch.stop()
        clock.advance(1.0)
        self.assertEqual(watch.events, ["poll"])
        watch.stop()
        self.assertEqual(watch.events, ["poll", "unwatched", "stopped"])
        self.assertFalse(watch.notified)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopWithoutStart(self) -> None:
        """
        A stop with no user left does no harm: the count stays at zero and
        a later start watches again.
        """
        clock = Clock()
        watch = _Counted(clock)
        watch.stop()
        self.assertEqual(watch._users, 0)
        watch.start()
        clock.advance(1.0)
        watch.stop()
        self.assertEqual(watch.events, ["stopped", "poll", "unwatched", "stopped"])

    def test_bothWatchersShareIt(self) -> None:
        """
        The certificate watcher and the CRL watcher both stop through it.
        """
        from securetcp.revocation.crlreload import CRLWatcher

        self.assertTrue(issubclass(CredentialWatcher, SharedWatch))
        self.assertTrue(issubclass(CRLWatcher, SharedWatch))
        self.assertNotIn("stop", vars(CredentialWatcher))
        self.assertNotIn("stop", vars(CRLWatcher))


class _Nothing(Protocol):
    pass


class EndpointStringTests(SynchronousTestCase):
    """
    C{reload=watch} on an C{mtls:} string: the parsed endpoint reloads its
    certificate when the files change, once its port listens.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.audit = AuditRecorder()
        globalLogPublisher.addObserver(self.audit)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, self.audit)  # type: ignore[arg-type]
        self.reactor = MemoryReactorClock()

    def description(self, extra: str = ":reload=watch:reloadPoll=2") -> str:
        return (f"mtls:6661:interface=127.0.0.1"
                f":certKey={escape(self.pki.path('server.pem'))}"
                f":privateKey={escape(self.pki.path('server.key'))}"
                f":caCerts={escape(self.pki.path('ca.pem'))}" + extra)

    def listen(self) -> Any:
        endpoint = serverFromString(self.reactor, self.description())
        endpoint.listen(Factory.forProtocol(_Nothing))
        factory = self.reactor.tcpServers[-1][1]
        factory.doStart()  # as the listening port does
        self.addCleanup(factory.doStop)
        return endpoint

    def served(self, endpoint: Any) -> int:
        connection = SSL.Connection(endpoint.creator.context, None)
        return connection.get_certificate().get_serial_number()  # type: ignore[no-any-return]

    def replace(self, name: str, key: bool = True) -> x509.Certificate:
        """
        Issue a new server certificate (and key) and rename it over the
        served one; without C{key}, the old key stays (a mismatch).
        """
        staging = TestPKI(os.path.join(self.pki.directory, "staging"), self.pki.authority)
        os.makedirs(staging.directory, exist_ok=True)
        certificate = staging.issue(name, "localhost", dns=["localhost"], ips=["127.0.0.1"])
        if key:
            os.rename(staging.path(f"{name}.key"), self.pki.path("server.key"))
        os.rename(staging.path(f"{name}.pem"), self.pki.path("server.pem"))
        return certificate

    def counts(self) -> Tuple[int, int]:
        return (len(self.audit.events("policy.reloaded")),
                len(self.audit.events("policy.reload_refused")))

    def test_rotations(self) -> None:
        """
        Each rotation of the certificate and key is served after the next
        poll and the settling time, audited as C{policy.reloaded} with
        what changed and both fingerprints; a new certificate without its
        key is refused (C{policy.reload_refused}) and the one in force
        stays, until the key follows.
        """
        endpoint = self.listen()
        original = self.served(endpoint)
        for i in range(3):
            new = self.replace(f"rotated{i}")
            self.reactor.pump([2.0, SETTLE_SECONDS])
            self.assertEqual(self.served(endpoint), new.serial_number)
            self.assertEqual(self.counts(), (i + 1, 0))
        reloaded = self.audit.events("policy.reloaded")[-1]
        self.assertEqual(reloaded["changed"], ["certificate", "key"])
        self.assertNotEqual(reloaded["certificateBefore"], reloaded["certificateAfter"])
        self.assertNotEqual(self.served(endpoint), original)

        inForce = self.served(endpoint)
        self.replace("mismatched", key=False)
        self.reactor.pump([2.0, SETTLE_SECONDS])
        self.assertEqual(self.counts(), (3, 1))
        self.assertEqual(self.served(endpoint), inForce)
        os.rename(os.path.join(self.pki.directory, "staging", "mismatched.key"),
                  self.pki.path("server.key"))
        self.reactor.pump([2.0, SETTLE_SECONDS])
        self.assertEqual(self.counts(), (4, 1))
        self.assertNotEqual(self.served(endpoint), inForce)

    def test_offByDefault(self) -> None:
        """
        Without C{reload=watch} there is no watcher.
        """
        endpoint = serverFromString(self.reactor, self.description(""))
        self.assertIsNone(endpoint.credentialWatcher)

    def test_badArguments(self) -> None:
        """
        An unknown reload mode, C{reloadPoll} without C{reload=watch}, or a
        poll interval out of range is refused at parse time, naming the
        argument and the fix.
        """
        for extra, argument, fix in [
                (":reload=inotify", "reload", "write reload=watch"),
                (":reloadPoll=5", "reloadPoll", "add reload=watch"),
                (":reload=watch:reloadPoll=0", "reloadPoll", "reloadPoll=5"),
                (":reload=watch:reloadPoll=soon", "reloadPoll", "reloadPoll=5")]:
            error = self.assertRaises(EndpointArgumentError, serverFromString, self.reactor,
                                      self.description(extra))
            self.assertIn(argument, str(error))
            self.assertIn(fix, str(error))


class PythonEndpointTests(SynchronousTestCase):
    """
    C{reload} and C{reloadPoll} of L{serverEndpoint}: the same options as
    the endpoint string's, for applications that build their endpoint in
    Python.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))
        self.reactor = MemoryReactorClock()

    def endpoint(self, **kwargs: Any) -> Any:
        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"))
        return serverEndpoint(self.reactor,
                              TCP4ServerEndpoint(self.reactor, 6661, interface="127.0.0.1"),
                              policy, mutual=True, **kwargs)

    def test_rotation(self) -> None:
        """
        With C{reload="watch", reloadPoll=2}, a rotated certificate and
        key are served after the next poll, as with the string's
        C{reload=watch:reloadPoll=2}; C{reloadPoll} defaults to 5 seconds,
        and without C{reload} nothing is watched.
        """
        self.assertIsNone(self.endpoint().credentialWatcher)
        self.assertEqual(self.endpoint(reload="watch").credentialWatcher.interval, 5.0)
        endpoint = self.endpoint(reload="watch", reloadPoll=2)
        self.assertEqual(endpoint.credentialWatcher.interval, 2.0)
        endpoint.listen(Factory.forProtocol(_Nothing))
        factory = self.reactor.tcpServers[-1][1]
        factory.doStart()
        self.addCleanup(factory.doStop)
        before = SSL.Connection(endpoint.creator.context, None).get_certificate()
        staging = TestPKI(os.path.join(self.pki.directory, "staging"), self.pki.authority)
        os.makedirs(staging.directory)
        new = staging.issue("rotated", "localhost", dns=["localhost"])
        os.rename(staging.path("rotated.key"), self.pki.path("server.key"))
        os.rename(staging.path("rotated.pem"), self.pki.path("server.pem"))
        self.reactor.pump([1.0, SETTLE_SECONDS])
        self.assertEqual(SSL.Connection(endpoint.creator.context, None)
                         .get_certificate().get_serial_number(), before.get_serial_number())
        self.reactor.pump([1.0, SETTLE_SECONDS])
        self.assertEqual(SSL.Connection(endpoint.creator.context, None)
                         .get_certificate().get_serial_number(), new.serial_number)

    def test_badArguments(self) -> None:
        """
        The string's refusals, as a L{PolicyError} naming the keyword and
        the fix: an unknown mode, C{reloadPoll} without C{reload="watch"},
        a poll interval out of range or not a number.
        """
        for kwargs, argument, fix in [
                ({"reload": "inotify"}, "reload", "write reload=watch"),
                ({"reloadPoll": 5}, "reloadPoll", "add reload=watch"),
                ({"reload": "watch", "reloadPoll": 0}, "reloadPoll", "reloadPoll=5"),
                ({"reload": "watch", "reloadPoll": float("inf")}, "reloadPoll", "reloadPoll=5"),
                ({"reload": "watch", "reloadPoll": "soon"}, "reloadPoll", "reloadPoll=5")]:
            error = self.assertRaises(PolicyError, self.endpoint, **kwargs)
            self.assertEqual(error.field, argument)
            self.assertIn(fix, error.fix)


class TwistdSecureTCPTests(SynchronousTestCase):
    """
    C{twistd securetcp} reloads its listeners' files itself (C{--watch}).
    """

    def test_refused(self) -> None:
        """
        C{reload=watch} on a C{twistd securetcp --listen} string is refused
        at parse time, pointing to C{--watch}, rather than reloading every
        change twice.
        """
        from twisted.python import usage

        from securetcp._twistd import tap

        pki = TestPKI.create(os.path.abspath(self.mktemp()))
        listen = (f"mtls:6661:interface=127.0.0.1:certKey={escape(pki.path('server.pem'))}"
                  f":privateKey={escape(pki.path('server.key'))}"
                  f":caCerts={escape(pki.path('ca.pem'))}:reload=watch")
        options = tap.Options(build=False)
        options.parseOptions(["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1"])
        error = self.assertRaises(usage.UsageError, tap.makeService, options,
                                  MemoryReactorClock())
        self.assertIn("--listen", str(error))
        self.assertIn("--watch", str(error))
