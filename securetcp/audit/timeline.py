# -*- test-case-name: tests.test_auditreport -*-
"""
When things happened, for L{securetcp.audit.report}: connections accepted
and rejected per interval (a minute, an hour or a day, chosen from the
period so that a chart has a readable number of bars), and the trail's
own events (the chain starting, resuming after a restart or a crash,
rotating, losing records, being checkpointed and closed; policies loaded
and reloaded; CRLs loaded and refused) described in one line each::

    counts = Timeline()
    counts.add("2026-11-01T10:00:03.000000Z", accepted=True)
    counts.asDict("2026-11-01T10:00:00.000000Z", "2026-11-01T11:00:00.000000Z")
    trailEvent(record, node="audit.jsonl")
"""

from __future__ import annotations

import collections
import datetime
from typing import Any, Callable, Dict, List, Optional

#: The intervals of a timeline, shortest first, and the longest period
#: (seconds) each is chosen for: at most 120 minutes, 120 hours, or days.
INTERVALS = (("minute", 60, 120 * 60), ("hour", 3600, 120 * 3600), ("day", 86400, None))

_FORMATS = {"minute": "%Y-%m-%dT%H:%MZ", "hour": "%Y-%m-%dT%H:00Z", "day": "%Y-%m-%d"}


def parseTime(text: Optional[str]) -> Optional[datetime.datetime]:
    """
    The moment of a record's C{time} (C{2026-11-01T10:00:00.000000Z}), or
    C{None} if it has none that can be read.
    """
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def chooseInterval(first: Optional[str], last: Optional[str]) -> str:
    """
    The interval for a period from C{first} to C{last}: C{minute} up to two
    hours, C{hour} up to five days, C{day} beyond.
    """
    start, end = parseTime(first), parseTime(last)
    span = (end - start).total_seconds() if start and end else 0.0
    for name, _, longest in INTERVALS:
        if longest is None or span <= longest:
            return name
    return "day"  # pragma: no cover (the last interval has no limit)


def _floor(moment: datetime.datetime, interval: str) -> datetime.datetime:
    moment = moment.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    if interval in ("hour", "day"):
        moment = moment.replace(minute=0)
    if interval == "day":
        moment = moment.replace(hour=0)
    return moment


def bucketOf(time: Optional[str], interval: str) -> Optional[str]:
    """
    The label of the interval that C{time} falls in.
    """
    moment = parseTime(time)
    if moment is None:
        return None
    return _floor(moment, interval).strftime(_FORMATS[interval])


class Timeline:
    """
    The times of accepted and rejected connections, counted per interval
    once the period (and so the interval) is known.
    """

    def __init__(self) -> None:
        self.accepted: List[datetime.datetime] = []
        self.rejected: List[datetime.datetime] = []

    def add(self, time: Optional[str], accepted: bool) -> None:
        """
        Take a connection accepted (or rejected) at C{time}.
        """
        moment = parseTime(time)
        if moment is not None:
            (self.accepted if accepted else self.rejected).append(moment)

    def asDict(self, first: Optional[str], last: Optional[str]) -> Dict[str, Any]:
        """
        C{interval}, and C{buckets}: every interval from C{first} to
        C{last} (empty ones too) with its C{start}, C{accepted} and
        C{rejected} counts.
        """
        interval = chooseInterval(first, last)
        start, end = parseTime(first), parseTime(last)
        if start is None or end is None:
            return {"interval": interval, "buckets": []}
        step = dict((name, seconds) for name, seconds, _ in INTERVALS)[interval]
        counts: Dict[datetime.datetime, List[int]] = collections.OrderedDict()
        at = _floor(start, interval)
        while at <= end:
            counts[at] = [0, 0]
            at += datetime.timedelta(seconds=step)
        for index, moments in enumerate((self.accepted, self.rejected)):
            for moment in moments:
                bucket = counts.get(_floor(moment, interval))
                if bucket is not None:
                    bucket[index] += 1
        return {"interval": interval, "buckets": [
            {"start": at.strftime(_FORMATS[interval]), "accepted": a, "rejected": r}
            for at, (a, r) in counts.items()]}


def _short(fingerprint: Any) -> str:
    return str(fingerprint)[:16] if fingerprint else "?"


def _verdictText(record: Dict[str, Any]) -> str:
    compliance = record.get("compliance") or {}
    if compliance.get("compliant"):
        return f"compliant with {compliance.get('profile')}"
    return (f"NOT compliant with {compliance.get('profile')}: "
            + "; ".join(compliance.get("reasons") or ["(no reason given)"]))


def _policyLoaded(r: Dict[str, Any]) -> str:
    return (f"policy {r.get('policy')} ({r.get('role')}, {r.get('endpoint')}) loaded: "
            f"{_verdictText(r)}")


def _policyReloaded(r: Dict[str, Any]) -> str:
    changed = ", ".join(r.get("changed") or []) or "nothing named"
    return (f"policy {r.get('policy')} reloaded (changed: {changed}; certificate "
            f"{_short(r.get('certificateBefore'))} -> {_short(r.get('certificateAfter'))}): "
            f"{_verdictText(r)}")


def _resumed(r: Dict[str, Any]) -> str:
    reason = r.get("reason")
    what = {"restart": "after a clean stop", "crash": "after a CRASH (no chain.closed)",
            "torn_record": f"after a crash: a torn record of {r.get('tornBytes')} bytes "
                           f"moved aside to {r.get('tornFile')}"}.get(str(reason), str(reason))
    return f"chain resumed after record {r.get('previousSeq')} {what}"


#: One line for each event of the trail's own history, by event.
_DESCRIBE: Dict[str, Callable[[Dict[str, Any]], str]] = {
    "chain.started": lambda r: f"chain started ({r.get('algorithm')})",
    "chain.resumed": _resumed,
    "chain.rotated": lambda r: f"file rotated (the records before are in {r.get('previousFile')})",
    "chain.gap": lambda r: (f"GAP: {r.get('lost')} record(s) lost since {r.get('since')}, "
                            f"{r.get('refused') or 0} connection(s) refused audit_unavailable"),
    "chain.checkpoint": lambda r: (f"checkpoint ({r.get('algorithm')}, key {r.get('keyId')}, "
                                   f"{r.get('trigger')}) covers records ..{r.get('coversSeq')}"),
    "chain.closed": lambda r: "chain closed cleanly",
    "policy.loaded": _policyLoaded,
    "policy.reloaded": _policyReloaded,
    "policy.reload_refused": lambda r: f"reload REFUSED (the running policy stays): "
                                       f"{r.get('detail')}",
    "revocation.crl_loaded": lambda r: (f"{r.get('crls')} CRL(s) loaded, {r.get('revoked')} "
                                        f"revoked serial(s), from "
                                        f"{', '.join(r.get('files') or [])}"),
    "revocation.crl_refused": lambda r: f"CRL REFUSED (the previous CRLs stay): "
                                        f"{r.get('detail')}",
    "revocation.crl_expired": lambda r: f"CRL EXPIRED ({r.get('mode')}): {r.get('detail')}",
    "connection.revoked": lambda r: f"connection {r.get('connection')} from {r.get('peer')} "
                                    f"closed: its certificate was revoked",
    "proxy.backend_failed": lambda r: f"backend {r.get('backend')} failed for "
                                      f"{r.get('peer')}: {r.get('detail')}",
    "export.dropped": lambda r: (f"export queue FULL: records {r.get('firstSeq')}.."
                                 f"{r.get('lastSeq')} not sent to {r.get('collector')}"),
}


def _refusedMessage(r: Dict[str, Any]) -> str:
    refused = r.get("refused") or {}
    return (f"connection {r.get('connection')} from {r.get('peer')} CLOSED: message "
            f"{refused.get('message')} refused ({refused.get('reason')}): {refused.get('detail')}")


def _attention(record: Dict[str, Any]) -> bool:
    """
    Whether an event of the trail is one a reviewer must look at.
    """
    event = record.get("event")
    if event == "connection.closed":
        return True  # only one with refused is on the trail
    if event in ("chain.gap", "policy.reload_refused", "revocation.crl_refused",
                 "revocation.crl_expired", "proxy.backend_failed", "export.dropped"):
        return True
    if event == "chain.resumed":
        return record.get("reason") != "restart"
    if event in ("policy.loaded", "policy.reloaded"):
        return not (record.get("compliance") or {}).get("compliant", False)
    return False


def trailEvent(record: Dict[str, Any], node: str) -> Optional[Dict[str, Any]]:
    """
    The trail's own event that C{record} is (C{time}, C{node}, C{event},
    C{text}, C{attention}: whether a reviewer must look at it), or C{None}
    for a connection's record (but a C{connection.closed} for a refused
    message of an identity binding: C{refused}).
    """
    describe = _DESCRIBE.get(str(record.get("event")))
    if record.get("event") == "connection.closed" and record.get("refused"):
        describe = _refusedMessage
    if describe is None:
        return None
    return {"time": record.get("time"), "node": node, "seq": record.get("seq"),
            "event": record.get("event"), "text": describe(record),
            "attention": _attention(record)}
