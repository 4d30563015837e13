# -*- test-case-name: tests.test_crlnotify -*-
"""
Noticing a replaced CRL at once: on Linux, L{watchCRLFiles} watches the
directories of a policy's CRL files (and its CRL directories) with
Twisted's C{inotify} and calls back shortly after a CRL file is written,
renamed over, created or deleted; L{securetcp.revocation.crlreload} then
checks the files as its periodic poll does (which stays, as the fallback)::

    stop = watchCRLFiles(reactor, policy.revocation, watcher.check)
    ...
    if stop is not None:
        stop()

Directories are watched rather than files: renaming a new CRL over the old
one (what C{openssl ca -gencrl} scripts and configuration management do)
replaces the file, and a watch on the old file would see nothing more.
Where inotify is unavailable (another system, a reactor without file
descriptors, no inotify instances left), L{watchCRLFiles} returns C{None}
and polling alone notices changes.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Set

from twisted.internet.interfaces import IReactorFDSet, IReactorTime
from twisted.logger import Logger

from securetcp.policy import Revocation

_log = Logger(namespace="securetcp.revocation")

#: How long after the last event the files are checked: one C{rename} or
#: a write-and-close produces several events; check once, after them.
SETTLE_SECONDS = 0.1


def watchCRLFiles(reactor: Any, revocation: Revocation,
                  changed: Callable[[], Any]) -> Optional[Callable[[], None]]:
    """
    Call C{changed} (once, L{SETTLE_SECONDS} after the last of a burst of
    events) whenever a CRL file of C{revocation} may have changed.

    @return: a function that stops watching, or C{None} when the files
        cannot be watched (no inotify): then only polling notices changes.
    """
    if not (IReactorFDSet.providedBy(reactor) and IReactorTime.providedBy(reactor)):
        return None
    try:
        from twisted.internet import inotify
        from twisted.python.filepath import FilePath
    except (ImportError, OSError):  # not Linux, or no libc inotify
        return None
    interesting = _interesting(revocation)
    pending: Dict[str, Any] = {}

    def settled() -> None:
        pending.pop("call", None)
        changed()

    def event(_ignored: Any, path: Any, mask: int) -> None:
        directory, name = os.path.split(os.fsdecode(path.path))
        names = interesting.get(directory)
        if names is not None and names and name not in names:
            return
        call = pending.get("call")
        if call is not None and call.active():
            call.reset(SETTLE_SECONDS)
        else:
            pending["call"] = reactor.callLater(SETTLE_SECONDS, settled)

    mask = (inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_MOVED_FROM
            | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_ATTRIB)
    try:
        notifier = inotify.INotify(reactor)
    except (OSError, inotify.INotifyError) as e:
        _unwatched(e)
        return None
    try:
        notifier.startReading()
        for directory in interesting:
            notifier.watch(FilePath(directory), mask=mask, callbacks=[event])
    except (OSError, inotify.INotifyError) as e:
        notifier.loseConnection()
        _unwatched(e)
        return None

    def stop() -> None:
        call = pending.pop("call", None)
        if call is not None and call.active():
            call.cancel()
        notifier.loseConnection()

    return stop


def _unwatched(error: Exception) -> None:
    _log.warn("securetcp: cannot watch the CRL files ({error}); checking them every "
              "crlReload seconds only", error=str(error))


def _interesting(revocation: Revocation) -> Dict[str, Set[str]]:
    """
    The directories to watch, each with the names of the CRL files in it
    (an empty set: every file, for a C{crlDir}).
    """
    found: Dict[str, Set[str]] = {}
    for path in revocation.crlFiles:
        directory, name = os.path.split(os.path.abspath(path))
        names = found.setdefault(directory, set())
        if directory not in {os.path.abspath(d) for d in revocation.crlDirs}:
            names.add(name)
    for directory in revocation.crlDirs:
        found[os.path.abspath(directory)] = set()
    return found
