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

from typing import Any, Callable, Dict, Optional

from twisted.logger import Logger

from securetcp._filewatch import watchDirectories
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
    pending: Dict[str, Any] = {}

    def settled() -> None:
        pending.pop("call", None)
        changed()

    def event() -> None:
        call = pending.get("call")
        if call is not None and call.active():
            call.reset(SETTLE_SECONDS)
        else:
            pending["call"] = reactor.callLater(SETTLE_SECONDS, settled)

    stopWatching = watchDirectories(reactor, revocation.crlFiles, revocation.crlDirs, event,
                                    _unwatched)
    if stopWatching is None:
        return None

    def stop() -> None:
        call = pending.pop("call", None)
        if call is not None and call.active():
            call.cancel()
        stopWatching()

    return stop


def _unwatched(error: Exception) -> None:
    _log.warn("securetcp: cannot watch the CRL files ({error}); checking them every "
              "crlReload seconds only", error=str(error))
