# -*- test-case-name: tests.test_auditexport -*-
"""
Who follows an audit file writer's chain: callables told every sealed line
as it is written (the audit export queues them for the collector)::

    writer.follow(queueLine, catchUp)    # queueLine(line, record); catchUp(head) first
    ...
    writer.unfollow(queueLine)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from twisted.logger import Logger

_log = Logger(namespace="securetcp.auditexport")

#: Told each sealed line (bytes with its newline) just after it is written,
#: with its record: the record as given to the writer plus its C{seq} and
#: C{hash} (not C{prev}: parse the line for the whole sealed record).
Follower = Callable[[bytes, Dict[str, Any]], None]


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

    def _tellFollowers(self, line: bytes, record: Dict[str, Any], digest: str) -> None:
        """
        Tell every follower C{line} (just written, as record C{self._seq}
        with hash C{digest}); a follower's failure is logged and never
        reaches the writer (the line is written whatever they do).
        """
        if not self._followers:
            return
        sealed = dict(record, seq=self._seq, hash=digest)  # type: ignore[attr-defined]
        for follower in self._followers:
            try:
                follower(line, sealed)
            except Exception:
                _log.failure("securetcp: an audit file follower failed on a record")
