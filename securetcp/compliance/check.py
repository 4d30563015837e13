# -*- test-case-name: tests.test_check -*-
"""
The compliance checklist behind C{python -m securetcp check} and C{probe}:
how a policy (or what a live server negotiated) measures, item by item,
against NIST SP 800-52r2 and the Mozilla server-side TLS profiles.

Everything here is a pure function of values: a L{TLSPolicy}, the facts of
a certificate (L{CertificateFacts}), the groups the linked OpenSSL offers,
the time.  Reading files and opening sockets is the caller's job::

    >>> facts = certificateFacts(cert)
    >>> items = checkPolicy(policy, Role.SERVER, BENCHMARKS["nist-800-52r2"],
    ...                     certificate=facts, now=now)
    >>> exitStatus(items)          # 0 when nothing failed, 3 otherwise
    0

Each L{CheckItem} says C{pass}, C{fail} or C{n/a}, why, which document
section it is about, and which option changes it.  The pieces live in
their own modules, and this one gathers them:

  - L{securetcp.compliance.catalogue}: verdicts, L{CheckItem}, the
    L{BENCHMARKS};
  - L{securetcp.compliance.certificates}: L{CertificateFacts} and the
    certificate judgements C{check} and C{probe} share;
  - L{securetcp.compliance.judges}: one judge per item of a policy's
    checklist, in L{POLICY_JUDGES};
  - L{securetcp.compliance.negotiated}: L{checkNegotiated} for C{probe};
  - L{securetcp.compliance.render}: L{exitStatus}, L{renderText}.
"""

from __future__ import annotations

import datetime
from typing import List, Optional, Sequence

from securetcp.compliance.catalogue import (
    BENCHMARKS,
    FAIL,
    MAX_HANDSHAKE_TIMEOUT,
    NOT_APPLICABLE,
    PASS,
    RENEW_WITHIN_DAYS,
    Benchmark,
    CheckItem,
)
from securetcp.compliance.certificates import (
    CertificateFacts,
    certificateFacts,
    judgeCertificateKey,
    judgeCertificateSignature,
    judgeCertificateValidity,
)
from securetcp.compliance.judges import POLICY_JUDGES, Situation
from securetcp.compliance.negotiated import Attempt, ProbeFacts, checkNegotiated
from securetcp.compliance.render import exitStatus, failed, renderText
from securetcp.policy import Role, TLSPolicy

__all__ = [
    "BENCHMARKS", "FAIL", "MAX_HANDSHAKE_TIMEOUT", "NOT_APPLICABLE", "PASS",
    "RENEW_WITHIN_DAYS", "Attempt", "Benchmark", "CertificateFacts", "CheckItem",
    "POLICY_JUDGES", "ProbeFacts", "Situation", "certificateFacts", "checkNegotiated",
    "checkPolicy", "exitStatus", "failed", "judgeCertificateKey",
    "judgeCertificateSignature", "judgeCertificateValidity", "renderText",
]


def checkPolicy(
    policy: TLSPolicy,
    role: Role,
    benchmark: Benchmark,
    certificate: Optional[CertificateFacts] = None,
    now: Optional[datetime.datetime] = None,
    offeredGroups: Optional[Sequence[str]] = None,
    hostname: Optional[str] = None,
) -> List[CheckItem]:
    """
    Measure C{policy}, used in C{role}, against C{benchmark}: run every
    judge of L{POLICY_JUDGES}.

    @param certificate: the facts of the policy's own certificate, read by
        the caller (C{None}: none configured).
    @param now: the time certificates are judged at (default: now).
    @param offeredGroups: the groups the linked OpenSSL really offers under
        the policy (default: every group the policy names).
    @param hostname: (clients) the name the server's certificate is checked
        against, when the endpoint supplies it rather than the policy.
    @return: the checklist, in a fixed order.
    """
    situation = Situation(policy, role, benchmark, certificate,
                          now or datetime.datetime.now(datetime.UTC), offeredGroups, hostname)
    items = (judge(situation) for judge in POLICY_JUDGES)
    return [i for i in items if i is not None]
