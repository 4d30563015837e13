# -*- test-case-name: tests.test_filewatch,tests.test_crlnotify -*-
"""
Reloading a server endpoint's certificate, key and CA files when they
change, for an unmodified application that listens on an endpoint string
with C{reload=watch} (L{securetcp.endpoints.SecureServerEndpoint} builds
it; its gate starts it while a port listens)::

    watcher = CredentialWatcher(reactor, lambda: credentialFiles(endpoint.policy),
                                endpoint.reload, interval=5.0)
    watcher.start()
    ...
    watcher.stop()

The files are polled every C{interval} seconds, and on Linux watched with
Twisted's C{inotify} as well, so a change is noticed at once.  A change is
acted on only once the files have stayed the same for L{SETTLE_SECONDS}
(a certificate and key written one after the other, or a file still being
written, are read once, complete).  C{reload} then reads and checks them
(the key must match the certificate); when it refuses them (it audits
C{policy.reload_refused}), the configuration in force stays, a warning is
logged, and the next change of the files is tried again.

L{watchDirectories}, the inotify part, is shared with the CRL watcher
(L{securetcp.revocation.crlnotify}).  L{reloadInterval} checks C{reload}
and C{reloadPoll} the same way for endpoint strings and for
L{securetcp.endpoints.serverEndpoint}.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from twisted.internet.interfaces import IReactorFDSet, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from securetcp._fields import asciiNumber
from securetcp._interfaces import ICredentialWatcher
from securetcp.errors import PolicyError
from securetcp.policy import TLSPolicy

_log = Logger(namespace="securetcp.reload")

#: How long the files must stay the same before they are read.
SETTLE_SECONDS = 0.5

Signature = Tuple[Tuple[str, Any], ...]


def reloadInterval(reload: Optional[str], reloadPoll: Any) -> Optional[float]:
    """
    The poll interval of C{reload="watch"} (C{reloadPoll}, default 5
    seconds), or C{None} (no watching) without it.

    @raise PolicyError: naming C{reload} or C{reloadPoll}, for an unknown
        mode, a poll interval without C{reload="watch"}, or one that is not
        a number of seconds from 0.1 to 86400.
    """
    if reload is not None and reload != "watch":
        raise PolicyError("reload", reload, "not a reload mode",
                          "write reload=watch to reload the certificate, key and CA files "
                          "when they change")
    if reload is None:
        if reloadPoll is not None:
            raise PolicyError("reloadPoll", reloadPoll, "has no effect without reload=watch",
                              "add reload=watch, or leave reloadPoll out")
        return None
    if reloadPoll is None:
        return 5.0
    try:
        seconds = asciiNumber(reloadPoll)
        if not (math.isfinite(seconds) and 0.1 <= seconds <= 86400):
            raise ValueError
    except ValueError:
        raise PolicyError("reloadPoll", reloadPoll, "not a number of seconds from 0.1 to "
                          "86400", "write e.g. reloadPoll=5") from None
    return seconds


def credentialFiles(policy: TLSPolicy) -> Tuple[str, ...]:
    """
    The files (and CA directories) a server's C{policy} reads its
    certificate, key, chain, CAs and DH parameters from.
    """
    credentials, trust = policy.credentials, policy.trust
    found = []
    for path in (credentials.certificateFile, credentials.keyFile, credentials.extraChain,
                 credentials.pkcs12, credentials.dhParameters, trust.caFile, trust.caDir):
        if path and path not in found:
            found.append(path)
    return tuple(found)


def _digest(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def signature(paths: Sequence[str]) -> Signature:
    """
    What the files at C{paths} hold now: a digest of each file's content
    (C{None} if it cannot be read), and of each file of a directory.
    """
    result: List[Tuple[str, Any]] = []
    for path in paths:
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                names = []
            result.append((path, tuple((n, _digest(os.path.join(path, n))) for n in names)))
        else:
            result.append((path, _digest(path)))
    return tuple(result)


class SharedWatch:
    """
    What the file watchers (L{CredentialWatcher}, and the CRL watcher
    L{securetcp.revocation.crlreload.CRLWatcher}) share: each listening
    port that uses one calls C{start} (which counts it in C{_users} and,
    the first time, starts the poll C{_loop} and the inotify watch whose
    stop function is C{_stopNotify}); L{stop} undoes that once the last of
    them has stopped.
    """

    _users: int
    _loop: Optional[LoopingCall]
    _stopNotify: Optional[Callable[[], None]]

    @property
    def notified(self) -> bool:
        """
        Whether the files are watched with inotify (not only polled).
        """
        return self._stopNotify is not None

    def stop(self) -> None:
        """
        One user stopped; after the last one (a stop without a start does
        nothing), stop polling and watching, and L{_stopped}.
        """
        self._users = max(0, self._users - 1)
        if self._users:
            return
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._stopNotify is not None:
            stop, self._stopNotify = self._stopNotify, None
            stop()
        self._stopped()

    def _stopped(self) -> None:
        """
        What else a watcher undoes once its last user stopped.
        """


@implementer(ICredentialWatcher)
class CredentialWatcher(SharedWatch):
    """
    Calls C{reload} when the files C{paths()} names changed and then stayed
    the same for L{SETTLE_SECONDS}.

    @ivar reloads: how many reloads succeeded; C{refused}: and failed.
    """

    def __init__(self, reactor: Any, paths: Callable[[], Sequence[str]],
                 reload: Callable[[], Any], interval: float = 5.0,
                 settle: float = SETTLE_SECONDS) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.paths = paths
        self.reload = reload
        self.interval = interval
        self.settle = settle
        self.reloads = self.refused = 0
        self._users = 0
        self._seen: Signature = ()
        self._candidate: Optional[Signature] = None
        self._loop: Optional[LoopingCall] = None
        self._settling: Any = None
        self._stopNotify: Optional[Callable[[], None]] = None

    def start(self) -> None:
        """
        Start watching (each listening port starts it; it runs until the
        last one stops it).
        """
        self._users += 1
        if self._loop is not None:
            return
        self._seen, self._candidate = signature(self.paths()), None
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)
        paths = self.paths()
        self._stopNotify = watchDirectories(
            self.reactor, [p for p in paths if not os.path.isdir(p)],
            [p for p in paths if os.path.isdir(p)], self._soon, _unwatched)

    def _stopped(self) -> None:
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = None

    def _soon(self) -> None:
        """
        Check L{SETTLE_SECONDS} from now (again, if already planned).
        """
        if self._settling is not None and self._settling.active():
            self._settling.reset(self.settle)
        else:
            self._settling = self.clock.callLater(self.settle, self.check)

    def check(self) -> None:
        """
        Compare the files with what was last read: a first difference is
        looked at again after L{SETTLE_SECONDS}; one that stayed is
        reloaded.
        """
        now = signature(self.paths())
        if now == self._seen:
            self._candidate = None
            return
        if now != self._candidate:
            self._candidate = now
            self._soon()
            return
        self._seen, self._candidate = now, None
        self._reload()

    def _reload(self) -> None:
        try:
            self.reload()
        except PolicyError as e:
            self.refused += 1
            _log.warn("securetcp: the changed certificate, key or CA files cannot be used "
                      "({error}); the ones in force stay, and the next change is tried",
                      error=str(e))
            return
        except Exception:
            self.refused += 1
            _log.failure("securetcp: reloading the changed certificate files failed; the "
                         "ones in force stay")
            return
        self.reloads += 1
        _log.info("securetcp: reloaded the changed certificate, key or CA files")


def watchDirectories(reactor: Any, files: Iterable[str], directories: Iterable[str],
                     changed: Callable[[], Any],
                     unwatched: Callable[[Exception], None]) -> Optional[Callable[[], None]]:
    """
    Call C{changed} whenever one of C{files}, or any file in one of
    C{directories}, is written, created, renamed or deleted.  Directories
    are watched with inotify, rather than files: renaming a new file over
    the old one (what renewal scripts and configuration management do)
    replaces the file, and a watch on the old file would see nothing more.

    @param unwatched: called with the error when inotify cannot watch them.
    @return: a function that stops watching, or C{None} without inotify
        (another system, a reactor without file descriptors, no inotify
        instances left): then only polling notices changes.
    """
    if not (IReactorFDSet.providedBy(reactor) and IReactorTime.providedBy(reactor)):
        return None
    try:
        from twisted.internet import inotify
        from twisted.python.filepath import FilePath
    except (ImportError, OSError):  # not Linux, or no libc inotify
        return None
    # each directory, with the names of the files in it (empty: every file)
    interesting: Dict[str, Set[str]] = {}
    for path in files:
        directory, name = os.path.split(os.path.abspath(path))
        interesting.setdefault(directory, set()).add(name)
    for directory in directories:
        interesting[os.path.abspath(directory)] = set()

    def event(_ignored: Any, path: Any, mask: int) -> None:
        directory, name = os.path.split(os.fsdecode(path.path))
        names = interesting.get(directory)
        if names is None or not names or name in names:
            changed()

    mask = (inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_MOVED_FROM
            | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_ATTRIB)
    notifier = None
    try:
        notifier = inotify.INotify(reactor)
        notifier.startReading()
        for directory in interesting:
            notifier.watch(FilePath(directory), mask=mask, callbacks=[event])
    except (OSError, inotify.INotifyError) as e:
        if notifier is not None:
            notifier.loseConnection()
        unwatched(e)
        return None
    return notifier.loseConnection


def _unwatched(error: Exception) -> None:
    _log.warn("securetcp: cannot watch the certificate files ({error}); checking them "
              "every reloadPoll seconds only", error=str(error))
