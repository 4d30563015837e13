# -*- test-case-name: tests.test_compliance -*-
"""
The compliance verdicts the audit records carry, against the
C{nist-800-52r2} profile, as pure functions of values: one for a negotiated
connection, one for a policy, one for a plaintext connection (permissive
migration mode).  Each returns the record's C{compliance} dict::

    >>> connectionCompliance("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1",
    ...                      legacy=False)
    {'profile': 'nist-800-52r2', 'compliant': True, 'reasons': []}
    >>> plaintextCompliance()["compliant"]
    False

The checklist behind C{python -m securetcp check} is L{securetcp.compliance.check}.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from securetcp._catalogue import (
    GROUPS,
    NIST_TLS12,
    NIST_TLS13,
    TLS12_CIPHERS,
    TLS13_SUITES,
    TLSVersion,
    canonicalGroup,
)

if TYPE_CHECKING:  # pragma: no cover
    from securetcp.policy import TLSPolicy

__all__ = ["NIST_PROFILE", "NIST_TLS12", "NIST_TLS13", "PLAINTEXT_REASON", "connectionCompliance",
           "plaintextCompliance", "policyCompliance"]

NIST_PROFILE = "nist-800-52r2"

#: The one reason a plaintext connection (permissive migration mode) gives.
PLAINTEXT_REASON = "plaintext: no TLS (permissive migration mode)"

def _compliance(compliant: bool, reasons: Tuple[str, ...]) -> Dict[str, Any]:
    """
    The C{compliance} dict of an audit record: a fresh one each time.
    """
    return {"profile": NIST_PROFILE, "compliant": compliant, "reasons": list(reasons)}


def connectionCompliance(
    version: Optional[str],
    cipher: Optional[str],
    group: Optional[str],
    legacy: bool,
) -> Dict[str, Any]:
    """
    The verdict on a negotiated version, cipher and group (see L{_judge}),
    computed once per combination.

    @param legacy: whether the connection ran under a legacy (explicitly
        insecure) policy; such connections are never compliant.
    """
    return _compliance(*_judge(version, cipher, group, legacy))


#: The former name of L{connectionCompliance}, until the gate's audit records
#: come from L{securetcp.audit.records}.


def policyCompliance(policy: TLSPolicy) -> Dict[str, Any]:
    """
    The verdict on a policy as a whole (L{TLSPolicy.compliant}): a policy
    that goes beyond C{nist-800-52r2} says which profile it came from.
    """
    if policy.compliant:
        return _compliance(True, ())
    return _compliance(
        False, (f"policy from profile {policy.profile} goes beyond {NIST_PROFILE}",))


def plaintextCompliance() -> Dict[str, Any]:
    """
    The verdict on a plaintext connection: never compliant.
    """
    return _compliance(False, (PLAINTEXT_REASON,))


@functools.lru_cache(maxsize=1024)
def _judge(
    version: Optional[str],
    cipher: Optional[str],
    group: Optional[str],
    legacy: bool,
) -> Tuple[bool, Tuple[str, ...]]:
    """
    Judge a negotiated version, cipher and group.

    @param legacy: whether the connection ran under a legacy (explicitly
        insecure) policy; such connections are never compliant.
    @return: C{{"profile", "compliant", "reasons"}}; C{reasons} lists every
        failed requirement.
    """
    reasons: List[str] = []
    if legacy:
        reasons.append("legacy policy: weaker than nist-800-52r2 allowed")
    parsed: Optional[TLSVersion]
    try:
        parsed = TLSVersion.parse(version) if version else None
    except ValueError:
        parsed = None
    if parsed is None:
        reasons.append(f"unknown protocol version {version!r}")
    elif parsed < TLSVersion.TLSv1_2:
        reasons.append(f"protocol version {parsed.value} is below TLSv1.2")
    if cipher:
        if parsed is TLSVersion.TLSv1_3 or cipher in TLS13_SUITES:
            if cipher not in NIST_TLS13:
                reasons.append(f"TLS 1.3 suite {cipher} is not NIST-approved here")
        elif cipher not in NIST_TLS12:
            info = TLS12_CIPHERS.get(cipher)
            if info is None:
                why = "unknown"
            elif info.kx == "RSA":
                why = "no forward secrecy"
            elif not info.aead:
                why = "CBC mode"
            elif info.enc == "CHACHA20":
                why = "ChaCha20 is not NIST-approved"
            else:
                why = "not ECDHE"
            reasons.append(f"cipher {cipher} is outside the profile ({why})")
    if group:
        try:
            groupInfo = GROUPS[canonicalGroup(group)]
        except KeyError:
            reasons.append(f"key-exchange group {group} is unknown")
        else:
            if not groupInfo.nist:
                reasons.append(f"key-exchange group {group} is not a NIST curve")
    return not reasons, tuple(reasons)
