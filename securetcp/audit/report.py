# -*- test-case-name: tests.test_auditlog,tests.test_auditreport -*-
"""
Summarising audit trails for a compliance reviewer (C{python -m securetcp
audit report}): a verdict (complete, incomplete or broken), the period,
the nodes and files covered, the policies in force with their compliance
verdict, who was accepted and who was rejected (by certificate identity
and by reason, with first and last seen), timelines, and the trail's own
events::

    nodes = [Node(name, files, verifyFiles(files, partial=True))
             for name, files in groupNodes(paths)]
    report = auditReport(nodes)

L{securetcp.audit.reporttext} and L{securetcp.audit.reporthtml} render the
same dict as text and as a self-contained HTML page; C{--json} prints it.
Identities are read from records (subjects, with every attribute named by
L{readableName}); no record carries application data, and neither does a
report.
"""

from __future__ import annotations

import collections
import itertools
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import attrs

from securetcp.audit.completeness import Completeness
from securetcp.audit.readable import readableName
from securetcp.audit.timeline import Timeline, parseTime, trailEvent
from securetcp.audit.verify import VerifyResult, iterRecords

_T = TypeVar("_T")

#: What no certificate is listed as.
NO_CERTIFICATE = "(no certificate)"

#: The sections of a report, in order: the key of each in the JSON
#: report, and its title in the text and HTML reports.
SECTIONS = (
    ("verdict", "Verdict"),
    ("period", "Period covered"),
    ("nodes", "Nodes and files"),
    ("policies", "Policies in force"),
    ("rejectedByIdentity", "Rejections by certificate identity"),
    ("rejectionReasons", "Rejections by reason"),
    ("acceptedPeers", "Accepted peers (least recently seen first)"),
    ("timeline", "Timeline"),
    ("trail", "The trail's own events"),
    ("acceptedByVersion", "Accepted by protocol version"),
    ("acceptedByCipher", "Accepted by cipher"),
    ("rejectedByPeer", "Rejected by peer address"),
    ("nonCompliant", "Non-compliant connections (nist-800-52r2)"),
)

#: The suffix the writer gives a rotated file (C{.20261101T000000Z}, C{-1}).
_ROTATED = re.compile(r"\.\d{8}T\d{6}Z(-\d+)?$")


def _host(address: Optional[str]) -> str:
    if not address:
        return "?"
    if address.startswith("[") and "]" in address:
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0]


def identityOf(record: Dict[str, Any]) -> str:
    """
    The readable subject of a record's peer certificate, or
    L{NO_CERTIFICATE}.
    """
    identity = record.get("peerIdentity")
    subject = identity.get("subject") if isinstance(identity, dict) else None
    return readableName(subject) if isinstance(subject, str) and subject else NO_CERTIFICATE


class _Seen:
    """
    How often something was seen, first and last, and why.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: Optional[str] = None
        self.last: Optional[str] = None
        self.reasons: collections.Counter[str] = collections.Counter()
        self.peers: collections.Counter[str] = collections.Counter()

    def add(self, time: Optional[str], reason: Optional[str] = None,
            peer: Optional[str] = None) -> None:
        self.count += 1
        if time and (self.first is None or time < self.first):
            self.first = time
        if time and (self.last is None or time > self.last):
            self.last = time
        if reason is not None:
            self.reasons[reason] += 1
        if peer is not None:
            self.peers[_host(peer)] += 1


def _seenList(key: str, seen: Dict[str, _Seen], end: Optional[str], byLast: bool = False,
              withWhat: str = "reasons") -> List[Dict[str, Any]]:
    """
    C{seen} as a list of dicts (C{key}, C{count}, C{first}, C{last},
    C{quietSeconds}: from the last seen to the end of the period, C{peers}:
    the addresses it came from, most frequent first, and C{withWhat}: what
    it was seen with); most seen first, or least recently seen first.
    """
    endTime = parseTime(end)
    out: List[Dict[str, Any]] = []
    for name, s in seen.items():
        last = parseTime(s.last)
        quiet = (endTime - last).total_seconds() if endTime and last else None
        out.append({key: name, "count": s.count, "first": s.first, "last": s.last,
                    "quietSeconds": quiet, withWhat: dict(s.reasons.most_common()),
                    "peers": dict(s.peers.most_common(5))})
    if byLast:
        out.sort(key=lambda d: (d["last"] or "", -d["count"], d[key]))
    else:
        out.sort(key=lambda d: (-d["count"], d[key]))
    return out


def _policyEntry(r: Dict[str, Any], node: str) -> Dict[str, Any]:
    compliance = r.get("compliance") or {}
    return {"time": r.get("time"), "node": node, "event": r.get("event"),
            "policy": r.get("policy"), "profile": r.get("profile"), "role": r.get("role"),
            "endpoint": r.get("endpoint"), "compliant": bool(compliance.get("compliant")),
            "verdictProfile": compliance.get("profile"),
            "reasons": list(compliance.get("reasons") or []),
            "changed": r.get("changed"), "certificateBefore": r.get("certificateBefore"),
            "certificateAfter": r.get("certificateAfter"), "inForce": False}


class _Tally:
    """
    The facts of a report, as the records go by.
    """

    def __init__(self) -> None:
        counter = collections.Counter
        self.accepted = self.closed = self.bytesIn = self.bytesOut = 0
        self.byVersion: collections.Counter[str] = counter()
        self.byCipher: collections.Counter[str] = counter()
        self.byIdentity: collections.Counter[str] = counter()
        self.byDay: collections.Counter[str] = counter()
        self.rejections: collections.Counter[str] = counter()
        #: accepted connections closed for a refused later message, by reason
        self.closedRefused: collections.Counter[str] = counter()
        self.rejectedPeers: collections.Counter[str] = counter()
        self.rejectedByDay: collections.Counter[str] = counter()
        self.rejectedIdentities: Dict[str, _Seen] = collections.defaultdict(_Seen)
        self.rejectedReasons: Dict[str, _Seen] = collections.defaultdict(_Seen)
        self.acceptedIdentities: Dict[str, _Seen] = collections.defaultdict(_Seen)
        self.nonCompliant: List[Dict[str, Any]] = []
        self.policies: List[Dict[str, Any]] = []
        self.trail: List[Dict[str, Any]] = []
        self.timeline = Timeline()
        self.first: Optional[str] = None
        self.last: Optional[str] = None

    def add(self, r: Dict[str, Any], node: str = "") -> None:
        event, time = r.get("event"), r.get("time")
        if time:
            self.first = time if self.first is None or time < self.first else self.first
            self.last = time if self.last is None or time > self.last else self.last
        day = (time or "?")[:10]
        if event == "connection.accepted":
            self._accepted(r, day)
        elif event == "handshake.rejected":
            self._rejected(r, day)
        elif event == "connection.closed":
            self.closed += 1
            self.bytesIn += int(r.get("bytesIn") or 0)
            self.bytesOut += int(r.get("bytesOut") or 0)
            if r.get("refused"):
                self.closedRefused[str(r["refused"].get("reason") or "?")] += 1
        elif event in ("policy.loaded", "policy.reloaded"):
            self.policies.append(_policyEntry(r, node))
        described = trailEvent(r, node)
        if described is not None:
            self.trail.append(described)

    def _rejected(self, r: Dict[str, Any], day: str) -> None:
        reason, time, identity = str(r.get("reason") or "?"), r.get("time"), identityOf(r)
        self.rejections[r.get("reason") or "?"] += 1
        self.rejectedPeers[_host(r.get("peer"))] += 1
        self.rejectedByDay[day] += 1
        self.rejectedIdentities[identity].add(time, reason, r.get("peer"))
        self.rejectedReasons[reason].add(time, identity, r.get("peer"))
        self.timeline.add(time, accepted=False)

    def _accepted(self, r: Dict[str, Any], day: str) -> None:
        self.accepted += 1
        self.byVersion[r.get("version") or "?"] += 1
        self.byCipher[r.get("cipher") or "?"] += 1
        identity = identityOf(r)
        self.byIdentity[identity] += 1
        self.byDay[day] += 1
        self.acceptedIdentities[identity].add(r.get("time"), None, r.get("peer"))
        self.timeline.add(r.get("time"), accepted=True)
        compliance = r.get("compliance") or {}
        if not compliance.get("compliant", False):
            self.nonCompliant.append({
                "time": r.get("time"), "peer": r.get("peer"), "identity": identity,
                "version": r.get("version"), "cipher": r.get("cipher"),
                "reasons": compliance.get("reasons", []),
            })

    def _policiesInForce(self) -> List[Dict[str, Any]]:
        latest: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
        for entry in self.policies:
            latest[(entry["node"], entry["policy"], entry["role"])] = entry
        inForce = {id(entry) for entry in latest.values()}
        return [dict(entry, inForce=id(entry) in inForce) for entry in self.policies]

    def report(self) -> Dict[str, Any]:
        return {
            "period": {"first": self.first, "last": self.last},
            "accepted": self.accepted,
            "rejected": sum(self.rejections.values()),
            "closed": self.closed,
            "bytesIn": self.bytesIn,
            "bytesOut": self.bytesOut,
            "policies": self._policiesInForce(),
            "acceptedByVersion": dict(self.byVersion.most_common()),
            "acceptedByCipher": dict(self.byCipher.most_common()),
            "acceptedByIdentity": dict(self.byIdentity.most_common()),
            "acceptedByDay": dict(sorted(self.byDay.items())),
            "acceptedPeers": _seenList("identity", self.acceptedIdentities, self.last,
                                       byLast=True, withWhat="reasons"),
            "rejectedByReason": dict(self.rejections.most_common()),
            "closedRefusedByReason": dict(self.closedRefused.most_common()),
            "rejectedByPeer": dict(self.rejectedPeers.most_common()),
            "rejectedByDay": dict(sorted(self.rejectedByDay.items())),
            "rejectedByIdentity": _seenList("identity", self.rejectedIdentities, self.last),
            "rejectionReasons": _seenList("reason", self.rejectedReasons, self.last,
                                          withWhat="identities"),
            "timeline": self.timeline.asDict(self.first, self.last),
            "trail": sorted(self.trail, key=lambda e: (e["time"] or "", e["node"])),
            "nonCompliant": self.nonCompliant,
        }


def buildReport(records: Iterable[Dict[str, Any]], node: str = "") -> Dict[str, Any]:
    """
    Summarise audit records (of one node, named C{node}) for a compliance
    reviewer.
    """
    tally = _Tally()
    for record in records:
        tally.add(record, node)
    return tally.report()


# -- nodes and verdicts ------------------------------------------------------


@attrs.frozen
class Node:
    """
    One chain: an audit file and its rotated files (a node, or one
    worker's file), with its verification.
    """

    name: str
    files: Tuple[str, ...]
    verified: VerifyResult


def nodeName(path: str) -> str:
    """
    The node an audit file belongs to: its path without the suffix that
    rotation adds (C{audit.jsonl.20261101T000000Z} is C{audit.jsonl}'s).
    """
    return _ROTATED.sub("", path)


def groupNodes(paths: Sequence[str]) -> List[Tuple[str, Tuple[str, ...]]]:
    """
    C{paths} grouped by node (L{nodeName}), in the order the nodes are
    first named.
    """
    groups: Dict[str, List[str]] = collections.OrderedDict()
    for path in paths:
        groups.setdefault(nodeName(path), []).append(path)
    return [(name, tuple(files)) for name, files in groups.items()]


def mergeVerified(results: Sequence[VerifyResult]) -> VerifyResult:
    """
    The verification of several chains as one: broken if any is, and
    everything each says is missing.
    """
    if len(results) == 1:
        return results[0]
    restarts: collections.Counter[str] = collections.Counter()
    for r in results:
        restarts.update(r.completeness.restarts)
    completeness = Completeness(
        gaps=_joined(r.completeness.gaps for r in results),
        torn=_joined(r.completeness.torn for r in results),
        refusals=_joined(r.completeness.refusals for r in results),
        unclosed=_joined(r.completeness.unclosed for r in results),
        restarts=dict(restarts),
        closedCleanly=all(r.completeness.closedCleanly for r in results))
    return VerifyResult(
        ok=all(r.ok for r in results), records=sum(r.records for r in results),
        problems=_joined(r.problems for r in results), firstSeq=None, lastSeq=None,
        lastHash=None, files=_joined(r.files for r in results), completeness=completeness,
        checkpoints=sum(r.checkpoints for r in results),
        checkpointsVerified=sum(r.checkpointsVerified for r in results))


def _joined(tuples: Iterable[Tuple[_T, ...]]) -> Tuple[_T, ...]:
    return tuple(itertools.chain.from_iterable(tuples))


def verdict(verified: VerifyResult, nodes: int = 1) -> Dict[str, Any]:
    """
    The verdict a reviewer can quote: C{status} (C{complete},
    C{incomplete} or C{broken}), C{text} (one line saying it), the counts
    of what is missing, and for a broken chain where (C{brokenAt}:
    C{FILE:LINE}).
    """
    completeness = verified.completeness
    where = f"{len(verified.files)} file(s) of {nodes} node(s)"
    facts: Dict[str, Any] = {
        "status": verified.status, "records": verified.records, "files": len(verified.files),
        "nodes": nodes, "lost": completeness.lost, "gaps": len(completeness.gaps),
        "tornRecords": len(completeness.torn), "refused": completeness.refused,
        "unclosed": len(completeness.unclosed), "crashes": completeness.restarts.get("crash", 0),
        "brokenAt": None, "problem": None}
    if not verified.ok:
        problem = verified.problems[0]
        facts.update(brokenAt=f"{problem.file}:{problem.line}", problem=str(problem))
        text = (f"BROKEN at {problem.file}:{problem.line}: {problem.message} "
                f"({verified.records} records verified before it)")
    elif completeness.complete:
        text = (f"COMPLETE: {verified.records} records in {where}, the hash chain holds "
                f"and nothing is missing")
    else:
        text = (f"INCOMPLETE: {verified.records} records in {where}, the hash chain holds "
                f"but {completeness.summary()}")
    facts["text"] = text
    return facts


def chainSummary(verified: VerifyResult) -> Dict[str, Any]:
    """
    The state of the chain for the JSON report: C{chain} (C{ok}: not
    broken; C{status}: C{complete}, C{incomplete} or C{broken}) and
    C{completeness} (the gaps, refusals and unclosed connections).
    """
    return {
        "chain": {"ok": verified.ok, "status": verified.status, "records": verified.records,
                  "problem": str(verified.problems[0]) if verified.problems else None,
                  "lastSeq": verified.lastSeq, "lastHash": verified.lastHash,
                  "checkpoints": verified.checkpoints,
                  "checkpointsVerified": verified.checkpointsVerified},
        "completeness": verified.completeness.asDict(),
    }


def _nodeSection(node: Node, report: Dict[str, Any]) -> Dict[str, Any]:
    keep = ("period", "accepted", "rejected", "closed", "policies", "trail")
    section = {"node": node.name, "files": list(node.verified.files or node.files),
               "verdict": verdict(node.verified)}
    section.update({k: report[k] for k in keep})
    section.update(chainSummary(node.verified))
    return section


def auditReport(nodes: Sequence[Node]) -> Dict[str, Any]:
    """
    The whole report over C{nodes}: the facts of every record together
    (as L{buildReport}), the C{verdict} over every chain, the merged
    C{chain} and C{completeness}, and a section per node (C{nodes}).
    """
    total = _Tally()
    sections = []
    for node in nodes:
        own = _Tally()
        for record in iterRecords(node.files):
            own.add(record, node.name)
            total.add(record, node.name)
        sections.append(_nodeSection(node, own.report()))
    report = total.report()
    merged = mergeVerified([node.verified for node in nodes])
    report["verdict"] = verdict(merged, len(nodes))
    report["nodes"] = sections
    report.update(chainSummary(merged))
    return report
