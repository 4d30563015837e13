# -*- test-case-name: tests.test_auditverify -*-
"""
Whether an audit trail is complete: what a verified chain says it is
missing.  A chain can be intact (nothing edited, removed or reordered) and
still admit, in its own records, that records are missing:

  - C{chain.gap}: records lost while the file could not be written;
  - C{chain.resumed} with reason C{torn_record}: a half-written record was
    moved aside;
  - C{handshake.rejected} with reason C{audit_unavailable} (and a gap's
    C{refused} count): connections refused because they could not be
    audited;
  - a C{connection.accepted} with no C{connection.closed}: a connection
    whose end was never recorded (the writer stopped, crashed or lost the
    record), or one still open when the file was read.

L{securetcp.audit.verify} tallies these as it verifies::

    tally = CompletenessTally()
    tally.add(record, "audit.jsonl", 12)
    completeness = tally.result()
    completeness.complete, completeness.asDict()
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Tuple

import attrs


def _where(record: Dict[str, Any], path: str, line: int) -> Dict[str, Any]:
    return {"file": path, "line": line, "seq": record.get("seq"), "time": record.get("time")}


@attrs.frozen
class Completeness:
    """
    What an intact chain says is missing from it.

    @ivar gaps: each C{chain.gap} (where, C{lost}, C{since}, C{refused}).
    @ivar torn: each C{chain.resumed} with reason C{torn_record}.
    @ivar refusals: each connection refused with C{audit_unavailable}.
    @ivar unclosed: each accepted connection without a close record;
        C{mayBeOpen} when it was accepted after the last start of a chain
        that does not end with C{chain.closed} (the writer may still be
        running, and the connection still open).
    @ivar restarts: how many times the chain resumed, by reason.
    @ivar closedCleanly: whether the chain ends with C{chain.closed}.
    """

    gaps: Tuple[Dict[str, Any], ...] = ()
    torn: Tuple[Dict[str, Any], ...] = ()
    refusals: Tuple[Dict[str, Any], ...] = ()
    unclosed: Tuple[Dict[str, Any], ...] = ()
    restarts: Dict[str, int] = attrs.field(factory=dict)
    closedCleanly: bool = False

    @property
    def lost(self) -> int:
        """
        How many records the chain says were lost (gaps and torn records).
        """
        return sum(int(g.get("lost") or 0) for g in self.gaps) + len(self.torn)

    @property
    def refused(self) -> int:
        """
        How many connections were refused because they could not be audited.
        """
        return len(self.refusals) + sum(int(g.get("refused") or 0) for g in self.gaps)

    @property
    def complete(self) -> bool:
        """
        Whether nothing is missing: no lost record, no refusal for want of
        an audit log, no connection without its close record.
        """
        return not (self.gaps or self.torn or self.refused or self.unclosed)

    def asDict(self) -> Dict[str, Any]:
        """
        JSON-ready, for C{audit report --json}.
        """
        return {"complete": self.complete, "lost": self.lost, "gaps": list(self.gaps),
                "tornRecords": list(self.torn), "refused": self.refused,
                "refusals": list(self.refusals), "unclosed": list(self.unclosed),
                "restarts": dict(self.restarts), "closedCleanly": self.closedCleanly}

    def summary(self) -> str:
        """
        One line saying what is missing.
        """
        if self.complete:
            return ("complete: no records lost, no connection refused for want of an "
                    "audit log, every accepted connection has its close record")
        parts = []
        if self.lost:
            parts.append(f"{self.lost} record(s) lost ({len(self.gaps)} gap(s), "
                         f"{len(self.torn)} torn record(s))")
        if self.refused:
            parts.append(f"{self.refused} connection(s) refused audit_unavailable")
        if self.unclosed:
            parts.append(f"{len(self.unclosed)} accepted connection(s) without a close record")
        return "; ".join(parts)

    def details(self) -> List[str]:
        """
        One line per missing thing, naming where the chain says so.
        """
        out = []
        for g in self.gaps:
            out.append(f"gap: {g['file']}:{g['line']} (record {g['seq']}): {g.get('lost')} "
                       f"record(s) lost since {g.get('since')}"
                       + (f", {g['refused']} connection(s) refused" if g.get("refused") else ""))
        for t in self.torn:
            out.append(f"torn record: {t['file']}:{t['line']} (record {t['seq']}): "
                       f"{t.get('tornBytes')} bytes moved aside to {t.get('tornFile')}")
        for r in self.refusals:
            out.append(f"refused: {r['file']}:{r['line']} (record {r['seq']}): "
                       f"{r.get('peer')} at {r['time']}: audit_unavailable")
        for u in self.unclosed:
            out.append(f"unclosed: {u['file']}:{u['line']} (record {u['seq']}): connection "
                       f"{u.get('connection')} from {u.get('peer')} accepted at {u['time']}"
                       + (" (may still be open: the chain does not end with chain.closed)"
                          if u["mayBeOpen"] else ""))
        return out


class CompletenessTally:
    """
    Builds a L{Completeness} from a chain's verified records, in order.
    """

    def __init__(self) -> None:
        self.gaps: List[Dict[str, Any]] = []
        self.torn: List[Dict[str, Any]] = []
        self.refusals: List[Dict[str, Any]] = []
        self.unclosed: List[Dict[str, Any]] = []
        self.open: Dict[Any, Dict[str, Any]] = collections.OrderedDict()
        self.restarts: collections.Counter[str] = collections.Counter()
        self.lastEvent: Any = None

    def add(self, record: Dict[str, Any], path: str, line: int) -> None:
        """
        Take one verified record, at C{line} of C{path}.
        """
        event = record.get("event")
        self.lastEvent = event
        if event == "connection.accepted":
            self.open[record.get("connection")] = dict(
                _where(record, path, line), connection=record.get("connection"),
                peer=record.get("peer"))
        elif event == "connection.closed":
            connection = record.get("connection")
            if self.open.pop(connection, None) is None:
                # its close came after the writer restarted: late, but there
                self.unclosed = [u for u in self.unclosed if u["connection"] != connection]
        elif event == "handshake.rejected" and record.get("reason") == "audit_unavailable":
            self.refusals.append(dict(_where(record, path, line), peer=record.get("peer"),
                                      connection=record.get("connection")))
        elif event == "chain.gap":
            self.gaps.append(dict(_where(record, path, line), lost=record.get("lost"),
                                  since=record.get("since"), refused=record.get("refused")))
        elif event in ("chain.resumed", "chain.closed"):
            # the writer stopped: a connection still open then never gets its close
            self._stopped(mayBeOpen=False)
            if event == "chain.resumed":
                self.restarts[str(record.get("reason"))] += 1
                if record.get("reason") == "torn_record":
                    self.torn.append(dict(_where(record, path, line),
                                          tornBytes=record.get("tornBytes"),
                                          tornFile=record.get("tornFile")))

    def _stopped(self, mayBeOpen: bool) -> None:
        for entry in self.open.values():
            self.unclosed.append(dict(entry, mayBeOpen=mayBeOpen))
        self.open.clear()

    def result(self) -> Completeness:
        """
        The completeness of the records taken so far.
        """
        unclosed = list(self.unclosed)
        unclosed.extend(dict(entry, mayBeOpen=True) for entry in self.open.values())
        return Completeness(tuple(self.gaps), tuple(self.torn), tuple(self.refusals),
                            tuple(unclosed), dict(self.restarts),
                            self.lastEvent == "chain.closed")
