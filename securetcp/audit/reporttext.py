# -*- test-case-name: tests.test_auditreport,tests.test_auditlog -*-
"""
An audit report (L{securetcp.audit.report.auditReport}) as plain text:
the same sections, in the same order, as the HTML page and the JSON::

    print(reportText(auditReport(nodes), merged))
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from securetcp.audit.completeness import Completeness
from securetcp.audit.report import SECTIONS
from securetcp.audit.verify import VerifyResult


def chainLines(verified: VerifyResult) -> List[str]:
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


def quiet(seconds: Optional[float]) -> str:
    """
    How long before the end of the period something was last seen.
    """
    if seconds is None:
        return "?"
    if seconds < 60:
        return "at the end"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min before the end"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h before the end"
    return f"{hours // 24} days before the end"


def _seen(items: List[Dict[str, Any]], key: str, extra: Callable[[Dict[str, Any]], str]
          ) -> List[str]:
    if not items:
        return ["  (none)"]
    return [f"  {i['count']:8d}  {i[key]}\n            first {i['first']}, last {i['last']} "
            f"({quiet(i['quietSeconds'])}){extra(i)}" for i in items]


def _counts(data: Dict[str, int]) -> List[str]:
    if not data:
        return ["  (none)"]
    return [f"  {count:8d}  {name}" for name, count in data.items()]


def _verdictSection(report: Dict[str, Any], verified: Optional[VerifyResult]) -> List[str]:
    out = []
    if "verdict" in report:
        v = report["verdict"]
        out = [f"VERDICT: {v['text']}",
               f"  {v['records']} records, {v['files']} file(s), {v['nodes']} node(s); lost "
               f"{v['lost']} in {v['gaps']} gap(s), {v['tornRecords']} torn; refused "
               f"audit_unavailable {v['refused']}; without close record {v['unclosed']}; "
               f"crashes {v['crashes']}"]
    if verified is not None:
        out.extend(chainLines(verified))
    return out


def _nodesSection(report: Dict[str, Any]) -> List[str]:
    out = []
    for node in report.get("nodes", []):
        period = node["period"]
        out.append(f"  node {node['node']}: {node['verdict']['status'].upper()}")
        out.append(f"    {node['verdict']['text']}")
        out.append(f"    period {period['first']} .. {period['last']}; accepted "
                   f"{node['accepted']}, rejected {node['rejected']}, closed {node['closed']}")
        out.extend(f"    file {f}" for f in node["files"])
        out.extend(f"    {line}" for line in _details(node))
    return out or ["  (one set of records, not verified)"]


def _details(node: Dict[str, Any]) -> List[str]:
    c = node["completeness"]
    completeness = Completeness(tuple(c["gaps"]), tuple(c["tornRecords"]),
                                tuple(c["refusals"]), tuple(c["unclosed"]))
    return completeness.details()


def _policiesSection(report: Dict[str, Any]) -> List[str]:
    out = []
    for p in report["policies"]:
        state = "IN FORCE" if p["inForce"] else "superseded"
        verdict = ("compliant" if p["compliant"] else "NOT compliant: " + "; ".join(p["reasons"]))
        out.append(f"  {p['time']} {p['node']}: {p['event']} {p['policy']} ({p['role']}, "
                   f"profile {p['profile']}) [{state}]")
        if p["event"] == "policy.reloaded":
            out.append(f"    certificate {p['certificateBefore']} -> {p['certificateAfter']}")
        out.append(f"    {p['verdictProfile']}: {verdict}")
    return out or ["  (no policy.loaded or policy.reloaded record)"]


def _timelineSection(report: Dict[str, Any]) -> List[str]:
    timeline = report["timeline"]
    out = [f"  per {timeline['interval']} (accepted, rejected); empty intervals left out"]
    out.extend(f"  {b['start']:>17}  {b['accepted']:8d} {b['rejected']:8d}"
               for b in timeline["buckets"] if b["accepted"] or b["rejected"])
    return out


def _trailSection(report: Dict[str, Any]) -> List[str]:
    return [f"  {e['time']} {'!!' if e['attention'] else '  '} {e['node']}: {e['text']}"
            for e in report["trail"]] or ["  (none)"]


def _nonCompliantSection(report: Dict[str, Any]) -> List[str]:
    return [f"  {i['time']} {i['peer']} {i['identity']} {i['version']} "
            f"{i['cipher']}: {'; '.join(i['reasons'])}"
            for i in report["nonCompliant"]] or ["  (none)"]


def _sectionLines(key: str, report: Dict[str, Any],
                  verified: Optional[VerifyResult]) -> List[str]:
    if key == "verdict":
        return _verdictSection(report, verified)
    if key == "period":
        period = report["period"]
        return [f"  {period['first']} .. {period['last']}",
                f"  connections accepted: {report['accepted']}, rejected: "
                f"{report['rejected']}, closed: {report['closed']} (bytes in "
                f"{report['bytesIn']}, out {report['bytesOut']})"] + [
                f"  closed for a refused message: {reason} {count}"
                for reason, count in report.get("closedRefusedByReason", {}).items()]
    simple: Dict[str, Callable[[Dict[str, Any]], List[str]]] = {
        "nodes": _nodesSection, "policies": _policiesSection, "timeline": _timelineSection,
        "trail": _trailSection, "nonCompliant": _nonCompliantSection,
        "rejectedByIdentity": lambda r: _seen(
            r["rejectedByIdentity"], "identity",
            lambda i: "\n            reasons: " + ", ".join(
                f"{k} {v}" for k, v in i["reasons"].items())),
        "rejectionReasons": lambda r: _seen(
            r["rejectionReasons"], "reason",
            lambda i: f"\n            {len(i['identities'])} identit(y/ies): "
                      + ", ".join(f"{k} {v}" for k, v in list(i["identities"].items())[:3])
                      + (", ..." if len(i["identities"]) > 3 else "")),
        "acceptedPeers": lambda r: _seen(r["acceptedPeers"], "identity", lambda i: ""),
    }
    if key in simple:
        return simple[key](report)
    return _counts(report[key])


def reportText(report: Dict[str, Any], verified: Optional[VerifyResult] = None) -> str:
    """
    The report as plain text, every section of
    L{securetcp.audit.report.SECTIONS} in order (with the chain's state
    when C{verified} is given).
    """
    out: List[str] = ["securetcp audit report", "======================"]
    for key, title in SECTIONS:
        if key not in report and key != "verdict":
            continue
        out.append("")
        out.append(title + ":")
        out.extend(_sectionLines(key, report, verified))
    return "\n".join(out) + "\n"
