# -*- test-case-name: tests.test_compliance,tests.test_auditrecords -*-
"""
The one compliance verdict on a policy, as C{python -m securetcp check}
gives it: the items of the C{nist-800-52r2} checklist
(L{securetcp.compliance.check.checkPolicy}, with the policy's role and its
own certificate) that fail.  C{policy.loaded}, C{policy.reloaded} and every
C{connection.accepted} record carry it::

    >>> policyVerdict(policy, Role.SERVER, leaf)
    {'profile': 'nist-800-52r2', 'compliant': False,
     'reasons': ['revocation: no client certificate is checked for revocation ...']}

C{check} judges the groups the linked OpenSSL offers; here the groups the
policy names are judged (this module does not touch OpenSSL).  A verdict
is computed once per policy, role, certificate and day, judging the
certificate as at the end of that day (so it fails on the day it expires,
as early as C{check} run that day could).
"""

from __future__ import annotations

import datetime
import functools
from typing import Any, Dict, Optional, Tuple

from cryptography import x509

from securetcp.compliance import NIST_PROFILE, policyCompliance
from securetcp.compliance.check import BENCHMARKS, FAIL, certificateFacts, checkPolicy
from securetcp.policy import Role, TLSPolicy


def policyVerdict(policy: TLSPolicy, role: Role, leaf: Optional[x509.Certificate] = None,
                  hostname: Optional[str] = None,
                  now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """
    The C{compliance} dict of a policy record: C{compliant} only when no
    item of C{check}'s checklist fails (and the policy stays within
    C{nist-800-52r2}); C{reasons} says why not, each failing item as
    C{"ID: REASON"}.

    @param leaf: the policy's own certificate, if it has one.
    @param hostname: (clients) the name the server is checked against.
    @param now: the day the certificate is judged (default: today).
    """
    day = (now or datetime.datetime.now(datetime.UTC)).date()
    reasons = _failing(policy, role, leaf, hostname, day)
    return {"profile": NIST_PROFILE, "compliant": not reasons, "reasons": list(reasons)}


@functools.lru_cache(maxsize=64)
def _failing(policy: TLSPolicy, role: Role, leaf: Optional[x509.Certificate],
             hostname: Optional[str], day: datetime.date) -> Tuple[str, ...]:
    endOfDay = datetime.datetime.combine(day, datetime.time.max, datetime.UTC)
    items = checkPolicy(policy, role, BENCHMARKS[NIST_PROFILE],
                        certificate=certificateFacts(leaf) if leaf is not None else None,
                        now=endOfDay, hostname=hostname)
    return tuple(policyCompliance(policy)["reasons"]) + tuple(
        f"{i.id}: {i.reason}" for i in items if i.status == FAIL)
