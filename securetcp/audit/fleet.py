# -*- test-case-name: tests.test_fleetverify -*-
"""
Verifying what a syslog collector holds from many nodes (C{python -m
securetcp audit verify --collector FILE}), and holding a node's local audit
file against it (C{--node NODE FILE...})::

    fleet = verifyCollector(["/var/log/securetcp/collected.log"])
    for node in fleet.nodes:
        print(node.node, node.status, node.lastSeq, node.lastHash)
    drift = compareWithCollector(fleet.node("gw-1"), ["audit.jsonl"])
    if drift.problem is not None:
        print(drift.problem)

Each line is an RFC 5424 message (L{securetcp.audit.rfc5424}); securetcp's
carry their node, seq and hash in structured data and, in the C{json}
format, the record's sealed line as the MSG.  Each node's records are a
chain of their own, checked as C{audit verify --partial} checks a file:
every line's encoding and hash, seq after seq, C{prev} after C{hash}.
Delivery is at least once, so a record received again (same node, seq and
hash) is dropped and counted; a chain whose first record the collector
holds is not C{chain.started} (export was enabled later) starts there,
with that record's C{prev} unchecked.  A gap, a reordering, a second record
with the same seq but another hash, or a record that does not verify
breaks the node's chain.  Lines of other programs are counted and skipped.

The collector is each node's external anchor: a local file that lacks
records the collector holds lost its tail, and one whose record differs
from the collector's record with the same seq was rewritten.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import attrs

from securetcp.audit.chain import ZERO_HASH, LineError, openLine
from securetcp.audit.checkpoint import CheckpointChecker
from securetcp.audit.completeness import Completeness
from securetcp.audit.rfc5424 import (
    ExportedRecord,
    SyslogLineError,
    exportedRecord,
    parseSyslogLine,
)
from securetcp.audit.verify import Problem, _Chain, _lines, iterRecords

__all__ = ["Comparison", "FleetResult", "NodeResult", "compareWithCollector",
           "verifyCollector"]


@attrs.frozen
class NodeResult:
    """
    What the collector holds of one node's chain.

    @ivar records: records verified (duplicates not counted).
    @ivar duplicates: records received again, dropped.
    @ivar midway: the first record held is not the start of the chain
        (C{chain.started}): its C{prev} was not checked.
    @ivar atna: ATNA (XML) messages, which carry only some events and
        cannot be checked as a chain.
    @ivar unchecked: the node's records after its first problem.
    @ivar hashes: the hash of each verified record, by seq.
    """

    node: str
    records: int
    duplicates: int
    firstSeq: Optional[int]
    lastSeq: Optional[int]
    lastHash: Optional[str]
    midway: bool
    problems: Tuple[Problem, ...]
    completeness: Completeness = attrs.field(factory=Completeness)
    atna: int = 0
    unchecked: int = 0
    hashes: Dict[int, str] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def status(self) -> str:
        """
        C{"broken"}, C{"incomplete"} or C{"complete"}, as for a file.
        """
        if self.problems:
            return "broken"
        return "complete" if self.completeness.complete else "incomplete"


@attrs.frozen
class FleetResult:
    """
    The outcome of L{verifyCollector}.

    @ivar lines: lines read; C{ignored} of them other programs' messages.
    @ivar problems: lines that are not RFC 5424 messages or whose securetcp
        element is malformed (they belong to no node).
    """

    files: Tuple[str, ...]
    lines: int
    ignored: int
    problems: Tuple[Problem, ...]
    nodes: Tuple[NodeResult, ...]

    @property
    def status(self) -> str:
        """
        The worst status of the nodes (C{"broken"} with a malformed line).
        """
        statuses = {node.status for node in self.nodes}
        if self.problems or "broken" in statuses:
            return "broken"
        return "incomplete" if "incomplete" in statuses else "complete"

    def node(self, name: str) -> Optional[NodeResult]:
        """
        The result of the node C{name}, if the collector holds any of its records.
        """
        return next((n for n in self.nodes if n.node == name), None)


class _Node:
    """
    One node's chain as its records arrive, duplicates dropped.
    """

    def __init__(self, name: str, key: Optional[bytes], paths: Sequence[str]) -> None:
        self.name = name
        self.key = key
        self.chain = _Chain(key, True, paths, CheckpointChecker(hmacKey=key), None)
        self.hashes: Dict[int, str] = {}
        self.duplicates = self.atna = self.unchecked = 0
        self.midway = False
        self.problem: Optional[Problem] = None

    def add(self, path: str, number: int, exported: ExportedRecord) -> None:
        """
        Check the record of line C{number} of C{path}.
        """
        if self.problem is not None:
            self.unchecked += 1
            return
        if exported.message.lstrip().startswith(b"<"):
            self.atna += 1
            return
        self.problem = self._check(path, number, exported)

    def _check(self, path: str, number: int, exported: ExportedRecord) -> Optional[Problem]:
        try:
            record = openLine(exported.message, self.key)
        except LineError as e:
            return Problem(path, number, exported.seq, str(e))
        if (record.get("seq"), record.get("hash")) != (exported.seq, exported.hash):
            return Problem(path, number, exported.seq,
                           f"the structured data says record {exported.seq} "
                           f"with hash {exported.hash}, the message holds record "
                           f"{record.get('seq')} with hash {record.get('hash')}")
        if exported.event is not None and exported.event != record.get("event"):
            return Problem(path, number, exported.seq,
                           f"the MSGID says {exported.event}, the message holds a "
                           f"{record.get('event')} record")
        known = self.hashes.get(exported.seq)
        if known == exported.hash:
            self.duplicates += 1
            return None
        if known is not None:
            return Problem(path, number, exported.seq,
                           f"a second record {exported.seq} with another "
                           f"hash ({exported.hash}, the first had {known}): the node's chain "
                           "was rewritten or restarted under the same node name")
        first = self.chain.expectedSeq is None
        problem = self.chain.accept(path, number, record)
        if problem is not None:
            return problem
        if first:
            self.midway = not (record["prev"] == ZERO_HASH
                               and record["event"] == "chain.started")
        self.hashes[exported.seq] = exported.hash
        return None

    def result(self) -> NodeResult:
        """
        What was found.
        """
        chain = self.chain
        expected = chain.expectedSeq
        return NodeResult(
            node=self.name, records=chain.count, duplicates=self.duplicates,
            firstSeq=chain.firstSeq, lastSeq=expected - 1 if expected is not None else None,
            lastHash=chain.prev, midway=self.midway,
            problems=(self.problem,) if self.problem is not None else (),
            completeness=chain.tally.result(), atna=self.atna, unchecked=self.unchecked,
            hashes=self.hashes)


def verifyCollector(paths: Sequence[str], key: Optional[bytes] = None) -> FleetResult:
    """
    Verify every node's chain in a collector's files C{paths} (oldest
    first, as they were written).

    @param key: the HMAC key, for chains written with one.
    """
    nodes: Dict[str, _Node] = {}
    problems: List[Problem] = []
    lines = ignored = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problems.append(Problem(path, 0, None, f"cannot read: {e.strerror}"))
            continue
        complete, torn = _lines(data)
        for number, raw in enumerate(complete, 1):
            lines += 1
            if not raw.strip():
                continue
            try:
                exported = exportedRecord(parseSyslogLine(raw.rstrip(b"\r")))
            except SyslogLineError as e:
                problems.append(Problem(path, number, None, f"malformed line: {e}"))
                continue
            if exported is None:
                ignored += 1
                continue
            if exported.node not in nodes:
                nodes[exported.node] = _Node(exported.node, key, paths)
            nodes[exported.node].add(path, number, exported)
        if torn is not None:
            problems.append(Problem(path, torn[0], None, f"truncated: the last line "
                                    f"({torn[1]} bytes) is incomplete"))
    return FleetResult(files=tuple(paths), lines=lines, ignored=ignored,
                       problems=tuple(problems),
                       nodes=tuple(nodes[name].result() for name in sorted(nodes)))


@attrs.frozen
class Comparison:
    """
    A node's local files held against the collector's records of it.

    @ivar matched: records both hold, with the same hash.
    @ivar localLastSeq: the last record of the local files.
    @ivar notExported: local records after the collector's last one (not
        delivered yet, or export enabled later).
    @ivar problem: the divergence or the removed tail, if any.
    """

    matched: int
    localLastSeq: Optional[int]
    notExported: int
    problem: Optional[str]


def compareWithCollector(node: NodeResult, paths: Sequence[str]) -> Comparison:
    """
    Compare the records of the local files C{paths} (verify them first)
    with what the collector holds of C{node}: every record both hold must
    have the same hash, and the local files must reach the collector's
    last record.
    """
    matched = notExported = 0
    localLast: Optional[int] = None
    for record in iterRecords(paths):
        seq, digest = record.get("seq"), record.get("hash")
        if not isinstance(seq, int):
            continue
        held = node.hashes.get(seq)
        if held is not None and held != digest:
            return Comparison(matched, seq, notExported, (
                f"divergence at record {seq}: the local file has hash {digest}, the "
                f"collector {held}: the local chain was rewritten from there on (or the "
                f"collector holds another node's records under the name {node.node})"))
        matched += held is not None
        if node.lastSeq is not None and seq > node.lastSeq:
            notExported += 1
        localLast = seq
    if node.lastSeq is not None and (localLast is None or localLast < node.lastSeq):
        start = node.firstSeq if localLast is None else max(localLast + 1, node.firstSeq or 0)
        return Comparison(matched, localLast, notExported, (
            f"the local tail was removed: the collector holds records {start}.."
            f"{node.lastSeq} of node {node.node} (last hash {node.lastHash}), the local "
            f"files end at record {localLast if localLast is not None else '(none)'}"))
    return Comparison(matched, localLast, notExported, None)
