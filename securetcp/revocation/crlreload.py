# -*- test-case-name: tests.test_revocation,tests.test_reload_live -*-
"""
Reloading the CRLs while the server runs: L{CRLWatcher} reads the CRL files
when they change (and on demand), and puts the new CRLs into the materials
in force; no certificate or key is read again.

    watcher = CRLWatcher(creator, clock, emit, runInThread=threads)
    watcher.start()            # each listening port starts it
    yield watcher.reload()     # True: new CRLs in force; False: refused

With a reactor that has file descriptors, on Linux, the CRL files are also
watched with inotify (L{securetcp.revocation.crlnotify}), so a replaced
CRL is in force within a fraction of a second; the poll every
C{crlReload} seconds stays as the fallback.

A refused CRL (unparseable, wrongly signed, older than the one in force)
leaves the last good ones in force and is audited as
C{revocation.crl_refused}.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp._filewatch import SharedWatch
from securetcp._interfaces import ICRLTarget, ICRLWatcher
from securetcp.audit.records import crlExpired, crlLoaded, crlRefused
from securetcp.policy import TLSPolicy
from securetcp.revocation.crl import CRLSet, loadCRLs, sourceSignatures
from securetcp.revocation.crlnotify import watchCRLFiles

_log = Logger(namespace="securetcp.revocation")


def reactorThreads(reactor: Any) -> Optional[Callable[..., Deferred[Any]]]:
    """
    How a L{CRLWatcher} runs its parsing on C{reactor}: in the reactor's
    thread pool (C{None}, Twisted's C{deferToThread}, for a reactor without
    threads).
    """
    if not IReactorThreads.providedBy(reactor):
        return None

    def run(f: Callable[[], Any]) -> Deferred[Any]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), f)

    return run


@implementer(ICRLWatcher)
class CRLWatcher(SharedWatch):
    """
    Reloads the CRLs of a connection creator (an L{ICRLTarget}) when their
    files change: at once when inotify says so (a C{clock} that is a real
    reactor, on Linux), every C{policy.revocation.reloadInterval} seconds
    and on demand.  Only the CRLs change: the new ones go into the materials in
    force (no certificate or key is read again).

    Parsing, verifying and building the new context run in C{runInThread}
    (the reactor's thread pool in production, a direct call in tests); the
    new context is swapped in on the reactor thread, so no handshake ever
    sees a half-built one.

    @param onReloaded: called with the new L{CRLSet} after a swap (the
        server uses it to close connections a new CRL revokes).
    """

    def __init__(self, target: ICRLTarget, clock: IReactorTime,
                 emit: Callable[[Dict[str, Any]], object],
                 runInThread: Optional[Callable[..., Deferred[Any]]] = None,
                 onReloaded: Optional[Callable[[CRLSet], None]] = None) -> None:
        self.target = target
        self.clock = clock
        self.emit = emit
        self.onReloaded = onReloaded
        if runInThread is None:
            from twisted.internet.threads import deferToThread

            runInThread = deferToThread
        self._run = runInThread
        self._loop: Optional[LoopingCall] = None
        self._users = 0
        self._busy = False
        self._refused: Any = None
        self._pendingSignatures: Any = None
        self._stopNotify: Optional[Callable[[], None]] = None
        self._again = False

    @property
    def busy(self) -> bool:
        """
        Whether a reload is under way.
        """
        return self._busy

    def start(self) -> None:
        """
        Start the periodic check (each listening port that uses the CRLs
        starts it; it runs until the last one stops it).
        """
        self._users += 1
        interval = self.target.policy.revocation.reloadInterval
        if interval > 0 and self._loop is None:
            self._loop = LoopingCall(self.check)
            self._loop.clock = self.clock
            self._loop.start(interval, now=False)
            self._stopNotify = watchCRLFiles(self.clock, self.target.policy.revocation,
                                             self.check)

    def check(self) -> Deferred[bool]:
        """
        Reload if any CRL file changed.
        """
        current = self.target.materials.crls
        if current is None:
            return succeed(False)
        now = sourceSignatures(self.target.policy.revocation)
        if now is not None and (now == current.sources or now == self._refused):
            # unchanged, or the same files that were refused last time:
            # one crl_refused record per bad file, not one per poll
            return succeed(False)
        return self.reload()

    def reload(self) -> Deferred[bool]:
        """
        Read the CRL files now and swap them in if they are acceptable.

        @return: a Deferred firing with C{True} if new CRLs are in force,
            C{False} if they were refused (the old ones stay).
        """
        if self._busy:
            self._again = True  # look again once this one is done
            return succeed(False)
        self._busy = True
        self._again = False
        target = self.target
        policy = target.policy
        self._pendingSignatures = sourceSignatures(policy.revocation)
        materials = target.materials

        def parse() -> Tuple[CRLSet, Any]:
            # parsing, verifying and building the context (adding every CRL
            # to a new X509 store) all happen here, off the reactor thread;
            # the reactor only swaps one reference
            crls = loadCRLs(policy.revocation, materials.trust, previous=materials.crls,
                            hard=policy.revocation.mode == "hard")
            return crls, target.prepareCRLs(crls)

        # a swap that fails (the context cannot be rebuilt) is refused like
        # a bad CRL: the previous context stays, the periodic check goes on
        d: Deferred[bool] = maybeDeferred(self._run, parse).addCallback(self._swap, policy)
        return d.addErrback(self._refuse)

    def _done(self) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.clock.callLater(0, self.check)

    def _swap(self, built: Tuple[CRLSet, Any], policy: TLSPolicy) -> bool:
        self._done()
        crls, prepared = built
        self.target.install(prepared)
        now = self.clock.seconds()
        self.emit(crlLoaded(policy, [p for p, _ in crls.sources], len(crls.crls),
                            len(crls.revoked), now))
        for description in crls.expired:
            self.emit(crlExpired(policy, description, policy.revocation.mode, now))
        if self.onReloaded is not None:
            self.onReloaded(crls)
        return True

    def _refuse(self, failure: Failure) -> bool:
        self._done()
        self._refused = self._pendingSignatures
        error = failure.value
        detail = str(error)
        self.emit(crlRefused(self.target.policy, detail, getattr(error, "path", None),
                             self.clock.seconds()))
        _log.error("securetcp: new CRL refused, the previous CRLs stay in force: {detail}",
                   detail=detail)
        return False
