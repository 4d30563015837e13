# -*- test-case-name: tests.test_expiry -*-
"""
The daily expiry check of C{twistd securetcp}: at start and then every day
on the given clock, each secure server endpoint's certificate, CA
certificates and CRLs in force are judged (L{securetcp.compliance.expiry})
and every due warning is audited (C{certificate.expiring},
C{revocation.crl_expiring}, both at C{warn} level, so they are the log
warning too)::

    check = ExpiryCheck(clock, emitter, lambda: top.secureEndpoints, (30, 7, 1))
    check.start()
    ...
    check.stop()

What a reload put in force is what the next check reads.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from twisted.internet.task import LoopingCall

from securetcp._interfaces import IAuditSink
from securetcp.audit.records import certificateExpiring, crlExpiring
from securetcp.compliance.expiry import (
    CRL,
    DAY,
    ExpiryWarning,
    dueWarnings,
    materialDeadlines,
)


def endpointWarnings(endpoint: Any, now: float,
                     thresholds: Sequence[int]) -> List[ExpiryWarning]:
    """
    The warnings due at C{now} for the materials in force at a
    L{securetcp.endpoints.SecureServerEndpoint}.
    """
    materials = endpoint.creator.materials
    crls = materials.crls.crls if materials.crls is not None else ()
    return dueWarnings(materialDeadlines(materials.chain, materials.trust, crls), now,
                       thresholds)


def warningRecord(policy: Any, warning: ExpiryWarning, time: float) -> Dict[str, Any]:
    """
    The audit record of C{warning} for C{policy}.
    """
    deadline = warning.deadline
    if deadline.kind == CRL:
        return crlExpiring(policy, deadline.subject, deadline.at, warning.daysLeft,
                           warning.threshold, time)
    return certificateExpiring(policy, deadline.kind, deadline.subject, deadline.at,
                               warning.daysLeft, warning.threshold, time)


class ExpiryCheck:
    """
    Audit the due expiry warnings of some endpoints now and every
    C{interval} seconds (a day) on C{clock}.
    """

    def __init__(self, clock: Any, emitter: IAuditSink,
                 endpoints: Callable[[], Iterable[Any]], thresholds: Sequence[int],
                 interval: float = DAY) -> None:
        self.clock = clock
        self.emitter = emitter
        self.endpoints = endpoints
        self.thresholds = tuple(thresholds)
        self.interval = interval
        self._loop: Optional[LoopingCall] = None

    def check(self) -> int:
        """
        Audit every warning due now; how many there were.
        """
        now = self.clock.seconds()
        count = 0
        for endpoint in self.endpoints():
            for warning in endpointWarnings(endpoint, now, self.thresholds):
                self.emitter.emit(warningRecord(endpoint.policy, warning, now))
                count += 1
        return count

    def start(self) -> None:
        """
        Check now, then every C{interval} seconds (nothing without thresholds).
        """
        if not self.thresholds or self._loop is not None:
            return
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        """
        Stop checking.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
