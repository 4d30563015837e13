# -*- test-case-name: tests.test_compliance -*-
"""
The compliance verdict of a negotiated connection against the
C{nist-800-52r2} profile, as a pure function of values.

    >>> verdict("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1", legacy=False)
    {'profile': 'nist-800-52r2', 'compliant': True, 'reasons': []}
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Tuple

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, TLSVersion, canonicalGroup

NIST_PROFILE = "nist-800-52r2"

NIST_TLS12 = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-AES256-CCM",
})
NIST_TLS13 = frozenset({
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_CCM_SHA256",
})


def verdict(
    version: Optional[str],
    cipher: Optional[str],
    group: Optional[str],
    legacy: bool,
) -> Dict[str, Any]:
    """
    Judge a negotiated version, cipher and group (see L{_judge}); a fresh
    dict each time, computed once per combination.
    """
    compliant, reasons = _judge(version, cipher, group, legacy)
    return {"profile": NIST_PROFILE, "compliant": compliant, "reasons": list(reasons)}


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
