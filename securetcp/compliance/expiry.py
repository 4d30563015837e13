# -*- test-case-name: tests.test_expiry -*-
"""
Which expiry warnings are due: our own certificate, the CA certificates
(those in our chain and the trust anchors) and each CRL's C{nextUpdate},
against thresholds in days (by default 30, 7 and 1).  Pure functions of
the certificates, the CRLs and the time; C{twistd securetcp} asks daily
(L{securetcp._twistd.expiry}), C{python -m securetcp check} once::

    deadlines = materialDeadlines(materials.chain, materials.trust, crls)
    for warning in dueWarnings(deadlines, now, DEFAULT_THRESHOLDS):
        warning.deadline.kind, warning.daysLeft, warning.threshold
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes

#: Warn this many days before (and again at each smaller number).
DEFAULT_THRESHOLDS: Tuple[int, ...] = (30, 7, 1)

#: What a deadline is about.
CERTIFICATE, CA, CRL = "certificate", "ca", "crl"

DAY = 86400.0


@attrs.frozen
class Deadline:
    """
    When one certificate or CRL stops being usable.

    @ivar kind: L{CERTIFICATE} (our own), L{CA} or L{CRL}.
    @ivar subject: the certificate's subject, or the CRL's issuer (RFC 4514).
    @ivar at: its C{notAfter} (a CRL's C{nextUpdate}), POSIX seconds.
    """

    kind: str
    subject: str
    at: float

    def daysLeft(self, now: float) -> float:
        """
        Days from C{now} to the deadline (negative once it has passed).
        """
        return (self.at - now) / DAY


@attrs.frozen
class ExpiryWarning:
    """
    A deadline within a threshold.

    @ivar daysLeft: days left, rounded down (negative: passed).
    @ivar threshold: the smallest threshold (days) the deadline is within.
    """

    deadline: Deadline
    daysLeft: int
    threshold: int

    def describe(self) -> str:
        """
        One line for the log and for C{check}.
        """
        what = {CERTIFICATE: "certificate", CA: "CA certificate",
                CRL: "CRL nextUpdate of"}[self.deadline.kind]
        if self.daysLeft < 0:
            return f"{what} {self.deadline.subject} expired {-self.daysLeft} day(s) ago"
        return (f"{what} {self.deadline.subject} expires in {self.daysLeft} day(s) "
                f"(warning at {self.threshold})")


def parseThresholds(text: str) -> Tuple[int, ...]:
    """
    C{"30,7,1"} as thresholds, largest first; C{"0"} as none (no warnings).

    @raise ValueError: not a comma-separated list of positive whole days.
    """
    if text.strip() == "0":
        return ()
    try:
        days = sorted({int(part) for part in text.split(",")}, reverse=True)
    except ValueError:
        raise ValueError(f"{text!r}: write whole days separated by commas, "
                         "e.g. 30,7,1") from None
    if not days or days[-1] < 1:
        raise ValueError(f"{text!r}: every threshold must be at least 1 day (0 alone: off)")
    return tuple(days)


def _certificateDeadline(kind: str, certificate: x509.Certificate) -> Deadline:
    return Deadline(kind, certificate.subject.rfc4514_string(),
                    certificate.not_valid_after_utc.timestamp())


def materialDeadlines(chain: Sequence[x509.Certificate], trust: Iterable[x509.Certificate],
                      crls: Iterable[x509.CertificateRevocationList]) -> Tuple[Deadline, ...]:
    """
    The deadlines of our chain (its first certificate ours, the rest CAs),
    the trust anchors and the CRLs that have a C{nextUpdate}; each
    certificate once.
    """
    deadlines: List[Deadline] = []
    seen = set()
    for index, certificate in enumerate([*chain, *trust]):
        key = certificate.fingerprint(hashes.SHA256())
        if key in seen:
            continue
        seen.add(key)
        deadlines.append(_certificateDeadline(CERTIFICATE if index == 0 and chain else CA,
                                              certificate))
    for crl in crls:
        if crl.next_update_utc is not None:
            deadlines.append(Deadline(CRL, crl.issuer.rfc4514_string(),
                                      crl.next_update_utc.timestamp()))
    return tuple(deadlines)


def dueWarnings(deadlines: Iterable[Deadline], now: float,
                thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> List[ExpiryWarning]:
    """
    A warning for every deadline within the largest threshold of C{now}
    (or passed), soonest first, naming the smallest threshold it is within.
    """
    if not thresholds:
        return []
    warnings = []
    for deadline in deadlines:
        left = deadline.daysLeft(now)
        if left > max(thresholds):
            continue
        threshold = min(t for t in thresholds if left <= t)
        warnings.append(ExpiryWarning(deadline, math.floor(left), threshold))
    return sorted(warnings, key=lambda w: w.deadline.at)


def expiryReport(deadlines: Iterable[Deadline], now: float,
                 thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> List[Dict[str, Any]]:
    """
    What C{check} shows: every deadline, soonest first, with its days left
    and the smallest threshold it is within (C{None}: not within one).
    """
    deadlines = tuple(deadlines)
    due = {w.deadline: w.threshold for w in dueWarnings(deadlines, now, thresholds)}
    return [{"kind": d.kind, "subject": d.subject,
             "expires": datetime.datetime.fromtimestamp(d.at, datetime.UTC).strftime(
                 "%Y-%m-%dT%H:%M:%SZ"),
             "daysLeft": math.floor(d.daysLeft(now)), "warning": due.get(d)}
            for d in sorted(deadlines, key=lambda d: d.at)]


def reportLine(entry: Dict[str, Any]) -> str:
    """
    One line of L{expiryReport} for people.
    """
    what = {CERTIFICATE: "certificate", CA: "CA", CRL: "CRL nextUpdate"}[entry["kind"]]
    days = entry["daysLeft"]
    left = f"{days} day(s) left" if days >= 0 else f"EXPIRED {-days} day(s) ago"
    warn = f"  WARNING (within {entry['warning']} days)" if entry["warning"] else ""
    return f"{what} {entry['subject']}: {entry['expires']}, {left}{warn}"
