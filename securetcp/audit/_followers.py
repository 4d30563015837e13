# -*- test-case-name: tests.test_auditexport -*-
"""
Who follows an audit file writer's chain: callables told every sealed line
as it is written (the audit export queues them for the collector)::

    head = writer.follow(queueLine)      # under the writer's lock
    ...
    writer.unfollow(queueLine)
"""

from __future__ import annotations

from typing import Any, Callable, List

from twisted.logger import Logger

_log = Logger(namespace="securetcp.auditexport")

#: Told each sealed line (bytes with its newline) just after it is written.
Follower = Callable[[bytes], None]


class ChainFollowers:
    """
    The followers of a writer (mixed into
    L{securetcp.audit.writer.AuditLogObserver}).
    """

    _followers: List[Follower] = []
    _lock: Any

    def follow(self, follower: Follower, catchUp: Callable[[int], None]) -> None:
        """
        Tell C{follower} every line written from now on.  First, under the
        writer's lock (so that no line is written meanwhile), call
        C{catchUp} with the C{seq} of the last line written: the follower
        reads the lines it missed up to there from the file.
        """
        with self._lock:
            catchUp(self._seq)  # type: ignore[attr-defined]
            self._followers = [*self._followers, follower]

    def unfollow(self, follower: Follower) -> None:
        """
        Stop telling C{follower} the lines written.
        """
        with self._lock:
            self._followers = [f for f in self._followers if f != follower]

    def _tellFollowers(self, line: bytes) -> None:
        """
        Tell every follower C{line}; a follower's failure is logged and
        never reaches the writer (the line is written whatever they do).
        """
        for follower in self._followers:
            try:
                follower(line)
            except Exception:
                _log.failure("securetcp: an audit file follower failed on a record")
