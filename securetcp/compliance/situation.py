# -*- test-case-name: tests.test_check -*-
"""
L{Situation}: what the judges of a policy (L{securetcp.compliance.judges})
look at: the policy, its role, the benchmark, the facts of its own
certificate and the time::

    situation = Situation(policy, Role.SERVER, BENCHMARKS["nist-800-52r2"])
    situation.verifiesPeer
"""

from __future__ import annotations

import datetime
from typing import Optional, Sequence, Tuple

import attrs

from securetcp._catalogue import canonicalGroup
from securetcp.compliance.catalogue import Benchmark
from securetcp.compliance.certificates import CertificateFacts
from securetcp.policy import ClientAuth, Role, TLSPolicy


def _canonical(groups: Sequence[str]) -> Tuple[str, ...]:
    out = []
    for g in groups:
        try:
            out.append(canonicalGroup(g))
        except KeyError:
            out.append(g)
    return tuple(out)


@attrs.frozen
class Situation:
    """
    What the judges of a policy look at.

    @ivar certificate: the facts of the policy's own certificate, read by
        the caller (C{None}: none configured).
    @ivar now: the time certificates are judged at.
    @ivar offeredGroups: the groups the linked OpenSSL really offers under
        the policy (C{None}: every group the policy names).
    @ivar hostname: (clients) the name the server's certificate is checked
        against, when the endpoint supplies it rather than the policy.
    """

    policy: TLSPolicy
    role: Role
    benchmark: Benchmark
    certificate: Optional[CertificateFacts] = None
    now: datetime.datetime = attrs.field(
        factory=lambda: datetime.datetime.now(datetime.UTC))
    offeredGroups: Optional[Sequence[str]] = None
    hostname: Optional[str] = None

    @property
    def server(self) -> bool:
        return self.role is Role.SERVER

    @property
    def verifiesPeer(self) -> bool:
        """
        Whether the peer's certificate is verified at all: always for a
        client, for a server only when it asks for client certificates.
        """
        return not self.server or self.policy.peer.clientAuth is not ClientAuth.NONE

    @property
    def groups(self) -> Tuple[str, ...]:
        groups = self.policy.groups
        return _canonical(self.offeredGroups if self.offeredGroups is not None
                          else groups.optional + groups.required)
