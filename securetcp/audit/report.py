# -*- test-case-name: tests.test_auditlog -*-
"""
Summarising audit records for a compliance reviewer (C{python -m securetcp
audit report}): counts by version, cipher, identity, reason and day, and
the connections that did not meet the profile, as a dict, text or HTML::

    report = buildReport(iterRecords(paths))
    print(reportText(report, verifyFiles(paths, partial=True)))
"""

from __future__ import annotations

import collections
import html
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from securetcp.audit.verify import VerifyResult


def _host(address: Optional[str]) -> str:
    if not address:
        return "?"
    if address.startswith("[") and "]" in address:
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0]


class _Tally:
    """
    The counts of a report, as the records go by.
    """

    def __init__(self) -> None:
        counter = collections.Counter
        self.accepted = self.closed = self.bytesIn = self.bytesOut = 0
        self.byVersion: collections.Counter[str] = counter()
        self.byCipher: collections.Counter[str] = counter()
        self.byIdentity: collections.Counter[str] = counter()
        self.byDay: collections.Counter[str] = counter()
        self.rejections: collections.Counter[str] = counter()
        self.rejectedPeers: collections.Counter[str] = counter()
        self.rejectedByDay: collections.Counter[str] = counter()
        self.nonCompliant: List[Dict[str, Any]] = []
        self.first: Optional[str] = None
        self.last: Optional[str] = None

    def add(self, r: Dict[str, Any]) -> None:
        event, time = r.get("event"), r.get("time")
        if time:
            self.first = time if self.first is None or time < self.first else self.first
            self.last = time if self.last is None or time > self.last else self.last
        day = (time or "?")[:10]
        if event == "connection.accepted":
            self._accepted(r, day)
        elif event == "handshake.rejected":
            self.rejections[r.get("reason") or "?"] += 1
            self.rejectedPeers[_host(r.get("peer"))] += 1
            self.rejectedByDay[day] += 1
        elif event == "connection.closed":
            self.closed += 1
            self.bytesIn += int(r.get("bytesIn") or 0)
            self.bytesOut += int(r.get("bytesOut") or 0)

    def _accepted(self, r: Dict[str, Any], day: str) -> None:
        self.accepted += 1
        self.byVersion[r.get("version") or "?"] += 1
        self.byCipher[r.get("cipher") or "?"] += 1
        identity = (r.get("peerIdentity") or {}).get("subject") or "(no certificate)"
        self.byIdentity[identity] += 1
        self.byDay[day] += 1
        compliance = r.get("compliance") or {}
        if not compliance.get("compliant", False):
            self.nonCompliant.append({
                "time": r.get("time"), "peer": r.get("peer"), "identity": identity,
                "version": r.get("version"), "cipher": r.get("cipher"),
                "reasons": compliance.get("reasons", []),
            })

    def report(self) -> Dict[str, Any]:
        return {
            "period": {"first": self.first, "last": self.last},
            "accepted": self.accepted,
            "rejected": sum(self.rejections.values()),
            "closed": self.closed,
            "bytesIn": self.bytesIn,
            "bytesOut": self.bytesOut,
            "acceptedByVersion": dict(self.byVersion.most_common()),
            "acceptedByCipher": dict(self.byCipher.most_common()),
            "acceptedByIdentity": dict(self.byIdentity.most_common()),
            "acceptedByDay": dict(sorted(self.byDay.items())),
            "rejectedByReason": dict(self.rejections.most_common()),
            "rejectedByPeer": dict(self.rejectedPeers.most_common()),
            "rejectedByDay": dict(sorted(self.rejectedByDay.items())),
            "nonCompliant": self.nonCompliant,
        }


def buildReport(records: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """
    Summarise audit records for a compliance reviewer.
    """
    tally = _Tally()
    for record in records:
        tally.add(record)
    return tally.report()


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


def _chainLines(verified: VerifyResult) -> List[str]:
    """
    The state of the chain: INTACT only when it is complete as well.
    """
    if not verified.ok:
        return [f"chain: BROKEN: {verified.problems[0]} ({verified.records} records)"]
    completeness = verified.completeness
    if completeness.complete:
        return [f"chain: INTACT ({verified.records} records): {completeness.summary()}"]
    return ([f"chain: INCOMPLETE ({verified.records} records, the hash chain holds): "
             f"{completeness.summary()}"]
            + [f"  {line}" for line in completeness.details()])


def reportText(report: Dict[str, Any], verified: Optional[VerifyResult] = None) -> str:
    """
    The report as plain text.
    """
    out: List[str] = ["securetcp audit report", "======================"]
    if verified is not None:
        out.extend(_chainLines(verified))
    period = report["period"]
    out.append(f"period: {period['first']} .. {period['last']}")
    out.append(f"connections accepted: {report['accepted']}, rejected: {report['rejected']}, "
               f"closed: {report['closed']} (bytes in {report['bytesIn']}, out {report['bytesOut']})")
    sections = [
        ("accepted by protocol version", "acceptedByVersion"),
        ("accepted by cipher", "acceptedByCipher"),
        ("accepted by peer identity", "acceptedByIdentity"),
        ("accepted by day", "acceptedByDay"),
        ("rejected by reason", "rejectedByReason"),
        ("rejected by peer address", "rejectedByPeer"),
        ("rejected by day", "rejectedByDay"),
    ]
    for title, key in sections:
        out.append("")
        out.append(title + ":")
        if not report[key]:
            out.append("  (none)")
        for name, count in report[key].items():
            out.append(f"  {count:8d}  {name}")
    out.append("")
    out.append(f"non-compliant connections (nist-800-52r2): {len(report['nonCompliant'])}")
    for item in report["nonCompliant"]:
        out.append(f"  {item['time']} {item['peer']} {item['identity']} {item['version']} "
                   f"{item['cipher']}: {'; '.join(item['reasons'])}")
    return "\n".join(out) + "\n"


def _bars(title: str, data: Dict[str, int]) -> str:
    if not data:
        return f"<h2>{html.escape(title)}</h2><p>(none)</p>"
    width, row = 640, 22
    top = max(data.values()) or 1
    parts = [f'<h2>{html.escape(title)}</h2>',
             f'<svg width="{width}" height="{row * len(data) + 4}" role="img" '
             f'aria-label="{html.escape(title)}">']
    for i, (name, count) in enumerate(data.items()):
        bar = int((width - 300) * count / top)
        y = i * row
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{html.escape(str(name))[:40]}</text>'
                     f'<rect x="260" y="{y + 3}" width="{bar}" height="16" fill="#3b6ea5"/>'
                     f'<text x="{266 + bar}" y="{y + 15}" font-size="12">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reportHTML(report: Dict[str, Any], verified: Optional[VerifyResult] = None) -> str:
    """
    The report as a self-contained HTML page with bar charts (inline SVG).
    """
    status = ""
    if verified is not None:
        lines = _chainLines(verified)
        color = "" if verified.complete else " style='color:#b00'"
        title = {"complete": "Chain intact", "incomplete": "Chain INCOMPLETE",
                 "broken": "Chain BROKEN"}[verified.status]
        status = (f"<p{color}><strong>{title}</strong>: {html.escape(lines[0])}</p>"
                  + "".join(f"<p>{html.escape(line)}</p>" for line in lines[1:]))
    rows = "".join(
        f"<tr><td>{html.escape(str(i['time']))}</td><td>{html.escape(str(i['peer']))}</td>"
        f"<td>{html.escape(str(i['identity']))}</td><td>{html.escape(str(i['version']))}</td>"
        f"<td>{html.escape(str(i['cipher']))}</td><td>{html.escape('; '.join(i['reasons']))}</td></tr>"
        for i in report["nonCompliant"])
    period = report["period"]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>securetcp audit report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
        "<h1>securetcp audit report</h1>" + status +
        f"<p>Period {html.escape(str(period['first']))} to {html.escape(str(period['last']))}. "
        f"Accepted {report['accepted']}, rejected {report['rejected']}, closed {report['closed']}.</p>"
        + _bars("Accepted by protocol version", report["acceptedByVersion"])
        + _bars("Accepted by cipher", report["acceptedByCipher"])
        + _bars("Accepted by peer identity", report["acceptedByIdentity"])
        + _bars("Accepted by day", report["acceptedByDay"])
        + _bars("Rejected by reason", report["rejectedByReason"])
        + _bars("Rejected by peer address", report["rejectedByPeer"])
        + "<h2>Non-compliant connections (nist-800-52r2)</h2>"
        + (f"<table><tr><th>time</th><th>peer</th><th>identity</th><th>version</th>"
           f"<th>cipher</th><th>reasons</th></tr>{rows}</table>" if rows else "<p>(none)</p>")
        + "</body></html>\n"
    )
