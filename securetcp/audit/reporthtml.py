# -*- test-case-name: tests.test_auditreport,tests.test_auditlog -*-
"""
An audit report (L{securetcp.audit.report.auditReport}) as one
self-contained HTML page: no script, no font, no style sheet or image
from anywhere else, and a print style sheet so that it prints (or saves
as PDF) as it reads on screen::

    with open("report.html", "w", encoding="utf-8") as f:
        f.write(reportHTML(auditReport(nodes), merged))

Its one chart, the timeline, is inline SVG drawn by L{timelineSVG}: the
accepted and rejected connections per interval as stacked bars, and the
trail's own events as numbered marks on the same time axis (the numbers
are those of the events table below it).  A charting library would mean
shipping and inlining its script (the page must work offline and print
without running anything); one small function drawing rectangles is less
to keep, and is tested.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Dict, List, Optional, Sequence

from securetcp.audit.report import SECTIONS
from securetcp.audit.reporttext import chainLines, quiet
from securetcp.audit.timeline import INTERVALS, parseTime
from securetcp.audit.verify import VerifyResult

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#111}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #999;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top;
overflow-wrap:break-word}td:last-child{overflow-wrap:anywhere}h3{overflow-wrap:anywhere}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.banner{border:3px solid;padding:.6em 1em;font-size:1.1em}
.complete{border-color:#2a7a2a;background:#eef8ee}
.incomplete{border-color:#b86e00;background:#fff5e5}
.broken{border-color:#b00;background:#fdecec}
.attention{color:#b00;font-weight:bold}.bar{background:#3b6ea5;height:.8em}
.node{border-left:4px solid #999;padding-left:1em;margin:1em 0}
svg text{font-size:11px;font-family:sans-serif}
@media print{body{margin:0;max-width:none;font-size:10pt}
h2{break-after:avoid}tr,.banner,svg,.node{break-inside:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()
           ) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class='n'>{_e(v)}</td>" if i in numeric else f"<td>{_e(v)}</td>"
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _x(moment: Any, start: Any, step: float, barWidth: float, left: float) -> float:
    return left + (moment - start).total_seconds() / step * barWidth


def timelineSVG(timeline: Dict[str, Any], trail: Sequence[Dict[str, Any]],
                width: int = 860, height: int = 180) -> str:
    """
    The timeline as inline SVG: per interval, a bar of accepted connections
    with the rejected ones stacked on it, and under the bars a numbered
    mark for each of the C{trail}'s events (red when it needs attention),
    all on one time axis.
    """
    buckets = timeline["buckets"]
    if not buckets:
        return "<p>(no timed records)</p>"
    left, top, lane = 48.0, 10.0, 58.0
    plot = width - left - 10
    barWidth = plot / len(buckets)
    step = float(dict((n, s) for n, s, _ in INTERVALS)[timeline["interval"]])
    start = parseTime(buckets[0]["start"])
    peak = max(b["accepted"] + b["rejected"] for b in buckets) or 1
    scale = (height - top - 20) / peak
    base = height - 20
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' "
             f"height='{int(height + lane)}' role='img' aria-label='timeline'>",
             f"<line x1='{left}' y1='{base}' x2='{width - 10}' y2='{base}' stroke='#333'/>",
             f"<text x='{left - 4}' y='{top + 8}' text-anchor='end'>{peak}</text>",
             f"<text x='{left - 4}' y='{base}' text-anchor='end'>0</text>"]
    for i, b in enumerate(buckets):
        x = left + i * barWidth
        for count, offset, colour in ((b["accepted"], 0, "#3b6ea5"),
                                      (b["rejected"], b["accepted"], "#c0392b")):
            if count:
                parts.append(f"<rect x='{x:.1f}' y='{base - (offset + count) * scale:.1f}' "
                             f"width='{max(barWidth - 1, 1):.1f}' height='{count * scale:.1f}' "
                             f"fill='{colour}'><title>{_e(b['start'])}: {count}</title></rect>")
    for i, anchor in sorted({(0, "start"), (len(buckets) // 2, "middle"),
                             (len(buckets) - 1, "end")}):
        x = left + (i + (1 if anchor == "end" else 0)) * barWidth
        parts.append(f"<text x='{x:.1f}' y='{base + 14}' text-anchor='{anchor}'>"
                     f"{_e(buckets[i]['start'])}</text>")
    lastX, row = -100.0, 0
    for n, event in enumerate(trail, 1):
        moment = parseTime(event["time"])
        if moment is None or start is None:
            continue
        x = _x(moment, start, step, barWidth, left)
        # marks closer than a label's width go on the next row (of three)
        row, lastX = ((row + 1) % 3 if x - lastX < 14 else 0), x
        colour = "#b00" if event["attention"] else "#555"
        parts.append(f"<g><title>{_e(event['time'])} {_e(event['text'])}</title>"
                     f"<line x1='{x:.1f}' y1='{base + 18}' x2='{x:.1f}' "
                     f"y2='{base + 26 + row * 12}' stroke='{colour}' stroke-width='2'/>"
                     f"<text x='{x:.1f}' y='{base + 38 + row * 12}' fill='{colour}' "
                     f"text-anchor='middle'>{n}</text></g>")
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return ("<p><span style='color:#3b6ea5'>&#9632;</span> accepted "
            "<span style='color:#c0392b'>&#9632;</span> rejected; numbered marks: the "
            "trail's own events below (<span class='attention'>red</span>: look at it)</p>")


def _banner(report: Dict[str, Any], verified: Optional[VerifyResult]) -> str:
    facts = report["verdict"]
    title = {"complete": "Chain intact and complete", "incomplete": "Chain INCOMPLETE",
             "broken": "Chain BROKEN"}[facts["status"]]
    lines = chainLines(verified)[1:] if verified is not None else []
    counts = (f"<p>{facts['records']} records, {facts['files']} file(s), {facts['nodes']} "
              f"node(s); lost {facts['lost']} in {facts['gaps']} gap(s), "
              f"{facts['tornRecords']} torn; refused audit_unavailable {facts['refused']}; "
              f"without close record {facts['unclosed']}; crashes {facts['crashes']}</p>")
    text = facts["text"].split(": ", 1)[-1] if facts["status"] != "broken" else facts["text"]
    return (f"<div class='banner {facts['status']}'><strong>{title}</strong>: "
            f"{_e(text)}{counts}"
            + "".join(f"<div>{_e(line.strip())}</div>" for line in lines[:50])
            + (f"<div>... {len(lines) - 50} more</div>" if len(lines) > 50 else "")
            + "</div>")


def _period(report: Dict[str, Any]) -> str:
    p = report["period"]
    return (f"<p>From <strong>{_e(p['first'])}</strong> to <strong>{_e(p['last'])}</strong>. "
            f"Accepted {report['accepted']}, rejected {report['rejected']}, closed "
            f"{report['closed']} (bytes in {report['bytesIn']}, out {report['bytesOut']}).</p>")


def _nodes(report: Dict[str, Any]) -> str:
    out = []
    for node in report["nodes"]:
        v, p = node["verdict"], node["period"]
        out.append(
            f"<div class='node'><h3>{_e(node['node'])}: {_e(v['status'].upper())}</h3>"
            f"<p class='{'' if v['status'] == 'complete' else 'attention'}'>{_e(v['text'])}</p>"
            f"<p>{_e(p['first'])} to {_e(p['last'])}; accepted {node['accepted']}, rejected "
            f"{node['rejected']}, closed {node['closed']}; {len(node['trail'])} trail "
            f"event(s)</p><ul>" + "".join(f"<li>{_e(f)}</li>" for f in node["files"])
            + "</ul></div>")
    return "".join(out) or "<p>(none)</p>"


def _policies(report: Dict[str, Any]) -> str:
    rows = [(p["time"], p["node"], p["event"], p["policy"], p["role"], p["profile"],
             "in force" if p["inForce"] else "superseded",
             ("compliant" if p["compliant"] else "NOT compliant: " + "; ".join(p["reasons"])),
             (f"{p['certificateBefore']} -> {p['certificateAfter']}"
              if p["event"] == "policy.reloaded" else ""))
            for p in report["policies"]]
    # the fingerprints last: the one column allowed to break anywhere
    return _table(("time", "node", "event", "policy", "role", "profile", "state",
                   "compliance verdict", "certificate (SHA-256) before -> after"), rows)


def _seen(items: List[Dict[str, Any]], key: str, what: Optional[str]) -> str:
    headers = [key, "count", "first seen", "last seen", "last seen (from the end)",
               "peer addresses"] + ([what] if what else [])
    rows = [[i[key], i["count"], i["first"], i["last"], quiet(i["quietSeconds"]),
             ", ".join(i["peers"])]
            + ([", ".join(f"{k} ({v})" for k, v in list(i[what].items())[:5])] if what else [])
            for i in items]
    return _table(headers, rows, numeric=(1,))


def _counts(data: Dict[str, int]) -> str:
    top = max(data.values(), default=1) or 1
    rows = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{v}</td><td style='width:40%'>"
                   f"<div class='bar' style='width:{100 * v / top:.0f}%'></div></td></tr>"
                   for k, v in data.items())
    return f"<table>{rows}</table>" if rows else "<p>(none)</p>"


def _trail(report: Dict[str, Any]) -> str:
    rows = "".join(
        f"<tr class='{'attention' if e['attention'] else ''}'><td class='n'>{n}</td>"
        f"<td>{_e(e['time'])}</td><td>{_e(e['node'])}</td><td>{_e(e['event'])}</td>"
        f"<td>{_e(e['text'])}</td></tr>"
        for n, e in enumerate(report["trail"], 1))
    return (f"<table><tr><th>#</th><th>time</th><th>node</th><th>event</th><th>what</th></tr>"
            f"{rows}</table>" if rows else "<p>(none)</p>")


def _section(key: str, report: Dict[str, Any], verified: Optional[VerifyResult]) -> str:
    if key == "verdict":
        return _banner(report, verified)
    if key == "timeline":
        return (f"<p>Per {_e(report['timeline']['interval'])}.</p>"
                + timelineSVG(report["timeline"], report["trail"]) + _legend())
    renderers: Dict[str, Callable[[Dict[str, Any]], str]] = {
        "period": _period, "nodes": _nodes, "policies": _policies, "trail": _trail,
        "rejectedByIdentity": lambda r: _seen(r["rejectedByIdentity"], "identity", "reasons"),
        "rejectionReasons": lambda r: _seen(r["rejectionReasons"], "reason", "identities"),
        "acceptedPeers": lambda r: _seen(r["acceptedPeers"], "identity", None),
        "nonCompliant": lambda r: _table(
            ("time", "peer", "identity", "version", "cipher", "reasons"),
            [(i["time"], i["peer"], i["identity"], i["version"], i["cipher"],
              "; ".join(i["reasons"])) for i in r["nonCompliant"]]),
    }
    render = renderers.get(key)
    return render(report) if render is not None else _counts(report[key])


def reportHTML(report: Dict[str, Any], verified: Optional[VerifyResult] = None) -> str:
    """
    The report as a self-contained HTML page: every section of
    L{securetcp.audit.report.SECTIONS} in order, each with its key as
    C{id}, the verdict banner first.
    """
    body = "".join(f"<section id='{key}'><h2>{_e(title)}</h2>"
                   f"{_section(key, report, verified)}</section>"
                   for key, title in SECTIONS if key in report)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>securetcp audit report</title>"
            f"<style>{_STYLE}</style></head><body><h1>securetcp audit report</h1>"
            f"{body}</body></html>\n")
