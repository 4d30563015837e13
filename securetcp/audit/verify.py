# -*- test-case-name: tests.test_auditlog,tests.test_auditverify -*-
"""
Checking audit files (C{python -m securetcp audit verify}), and reading
their records in chain order for L{securetcp.audit.report}::

    result = verifyFiles(["audit.jsonl.20261101T000000Z", "audit.jsonl"],
                         checker=CheckpointChecker(public=publicKey),
                         expectHead=Anchor(seq=None, hash=anchoredHash))
    if not result.ok:
        print(result.problems[0])
    elif not result.complete:
        print(result.completeness.summary())

Files may be given in any order: they are put in chain order by the
sequence number of their first record.  Each line must be exactly what the
writer writes (L{securetcp.audit.chain.openLine}): its hash covers its
bytes, and any other encoding of the same record is refused.  A chain is
I{broken} when a record was edited, removed, reordered or forged, a
checkpoint does not verify, or an anchored head is not in it; an unbroken
chain is I{complete} when its own records admit no loss
(L{securetcp.audit.completeness}).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import attrs

from securetcp.audit.chain import ZERO_HASH, LineError, openLine
from securetcp.audit.checkpoint import Anchor, CheckpointChecker, CheckpointError
from securetcp.audit.completeness import Completeness, CompletenessTally
from securetcp.audit.records import SCHEMA_VERSION

_REQUIRED = ("schema", "seq", "prev", "hash", "event")


@attrs.frozen
class Problem:
    """
    One break in the chain: where and what.
    """

    file: str
    line: int
    seq: Optional[int]
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        if self.seq is not None:
            where += f" (record {self.seq})"
        return f"{where}: {self.message}"


@attrs.frozen
class VerifyResult:
    """
    The outcome of L{verifyFiles}.

    @ivar ok: whether the chain is intact (not broken).
    @ivar completeness: what the intact part of the chain says is missing.
    @ivar checkpoints: how many C{chain.checkpoint} records it has.
    @ivar checkpointsVerified: how many of them had their signature
        checked (with the public key or HMAC key given).
    @ivar lastCheckpoint: the last checkpoint (the record), if any.
    """

    ok: bool
    records: int
    problems: Tuple[Problem, ...]
    firstSeq: Optional[int]
    lastSeq: Optional[int]
    lastHash: Optional[str]
    files: Tuple[str, ...]
    completeness: Completeness = attrs.field(factory=Completeness)
    checkpoints: int = 0
    checkpointsVerified: int = 0
    lastCheckpoint: Optional[Dict[str, Any]] = None

    @property
    def complete(self) -> bool:
        """
        Intact, and nothing missing.
        """
        return self.ok and self.completeness.complete

    @property
    def status(self) -> str:
        """
        C{"broken"}, C{"incomplete"} (intact, but records are missing), or
        C{"complete"}.
        """
        if not self.ok:
            return "broken"
        return "complete" if self.completeness.complete else "incomplete"


def _firstSeq(path: str) -> Tuple[int, str]:
    try:
        with open(path, "rb") as f:
            first = f.readline()
        return int(json.loads(first)["seq"]), path
    except (OSError, ValueError, KeyError, TypeError):
        return (-1, path)


def _chainOrder(paths: Sequence[str]) -> List[str]:
    return [p for _, p in sorted(_firstSeq(p) for p in paths)]


def _lines(data: bytes) -> Tuple[List[bytes], Optional[Tuple[int, int]]]:
    """
    The complete lines of a file's C{data}, and for a torn last line its
    line number and length.
    """
    lines = data.split(b"\n")
    torn: Optional[Tuple[int, int]] = None
    if lines[-1] != b"":
        torn = (len(lines), len(lines[-1]))
    lines.pop()  # empty after the last newline, or the torn tail
    return lines, torn


def _seqOf(raw: bytes) -> Optional[int]:
    try:
        seq = json.loads(raw).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


class _Chain:
    """
    Walks the records of a chain in order, checking each line's encoding
    and hash, its place after the one before it, and each checkpoint.
    """

    def __init__(self, key: Optional[bytes], partial: bool, paths: Sequence[str],
                 checker: CheckpointChecker, expectHead: Optional[Anchor]) -> None:
        self.key = key
        self.partial = partial
        self.paths = paths
        self.checker = checker
        self.expectHead = expectHead
        self.headFound = False
        self.expectedSeq: Optional[int] = None
        self.prev: Optional[str] = None
        self.count = 0
        self.firstSeq: Optional[int] = None
        self.tally = CompletenessTally()
        self.checkpoints = self.checkpointsVerified = 0
        self.lastCheckpoint: Optional[Dict[str, Any]] = None
        self.lines: List[bytes] = []

    def file(self, path: str) -> Optional[Problem]:
        """
        Check every record of C{path}; the first problem, if any.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return Problem(path, 0, None, f"cannot read: {e.strerror}")
        self.lines, torn = _lines(data)
        for number, raw in enumerate(self.lines, 1):
            problem = self.record(path, number, raw)
            if problem is not None:
                return problem
        if torn is not None:
            # reported after the complete lines before it are verified, with
            # the number of the record it should have been
            return Problem(path, torn[0], self.expectedSeq,
                           f"truncated: the last line ({torn[1]} bytes) is incomplete")
        return None

    def record(self, path: str, number: int, raw: bytes) -> Optional[Problem]:
        """
        Check one line; C{None} if it is the next record of the chain.
        """
        try:
            record = openLine(raw, self.key)
        except LineError as e:
            return Problem(path, number, _seqOf(raw) or self.expectedSeq, str(e))
        return self.accept(path, number, record)

    def accept(self, path: str, number: int, record: Dict[str, Any]) -> Optional[Problem]:
        """
        Check an opened record (L{openLine}); C{None} if it is the next
        record of the chain.
        """
        missing = [k for k in _REQUIRED if k not in record]
        if missing:
            return Problem(path, number, record.get("seq"),
                           "missing field(s) " + ", ".join(missing))
        seq = record["seq"]
        if record["schema"] != SCHEMA_VERSION:
            return Problem(path, number, seq, f"unknown schema version {record['schema']!r}")
        problem = self._linked(path, number, seq, record) or self._anchors(path, number, record)
        if problem is None:
            self.expectedSeq = seq + 1
            self.prev = record["hash"]
            self.count += 1
            self.tally.add(record, path, number)
        return problem

    def _linked(self, path: str, number: int, seq: int,
                record: Dict[str, Any]) -> Optional[Problem]:
        """
        Whether C{record} follows the one before it (or starts the chain).
        """
        if self.expectedSeq is None:
            self.firstSeq = seq
            if self.partial or (record["prev"] == ZERO_HASH
                                and record["event"] == "chain.started"):
                return None
            return Problem(path, number, seq,
                           "the chain does not start here (chain.started missing): "
                           "earlier files or records are missing; pass --partial if "
                           "they were left out on purpose")
        if seq != self.expectedSeq:
            return Problem(path, number, seq, self._misplaced(path, number, seq))
        if record["prev"] != self.prev:
            return Problem(path, number, seq,
                           "prev does not match the previous record's hash: "
                           "records deleted, reordered or edited before it")
        return None

    def _misplaced(self, path: str, number: int, seq: int) -> str:
        """
        What it means that record C{seq} is where record C{expectedSeq}
        belongs: records out of order, repeated, or missing.
        """
        expected = self.expectedSeq
        assert expected is not None
        found = self._find(expected, path, number)
        if found is not None:
            return (f"out of order: record {seq} is where record {expected} belongs, "
                    f"and record {expected} is at {found[0]}:{found[1]}: records reordered")
        if seq < expected:
            return f"expected record {expected}, found {seq}: a record repeated"
        where = " at a file boundary (a rotated file is missing?)" if number == 1 else ""
        return f"expected record {expected}, found {seq}: records missing{where}"

    def _find(self, seq: int, path: str, number: int) -> Optional[Tuple[str, int]]:
        """
        Where record C{seq} is after line C{number} of C{path}, if anywhere.
        """
        for at, raw in enumerate(self.lines[number:], number + 1):
            if _seqOf(raw) == seq:
                return path, at
        for later in self.paths[self.paths.index(path) + 1:]:
            try:
                with open(later, "rb") as f:
                    for at, raw in enumerate(f, 1):
                        if _seqOf(raw) == seq:
                            return later, at
            except OSError:
                return None
        return None

    def _anchors(self, path: str, number: int, record: Dict[str, Any]) -> Optional[Problem]:
        """
        Check a checkpoint against the record before it and its signature,
        and the record against an anchored head.
        """
        seq = record["seq"]
        head = self.expectHead
        if head is not None and head.seq == seq and head.hash != record["hash"]:
            return Problem(path, number, seq, f"the anchored head says record {seq} has hash "
                           f"{head.hash}: the chain was rewritten")
        if head is not None and head.hash == record["hash"]:
            self.headFound = True
        if record["event"] != "chain.checkpoint":
            return None
        self.checkpoints += 1
        if self.prev is not None and (record.get("coversSeq") != seq - 1
                                      or record.get("coversHash") != self.prev):
            return Problem(path, number, seq, "the checkpoint does not cover the record "
                           "before it (coversSeq, coversHash): forged or moved")
        if self.checker.canCheck(record):
            try:
                self.checker.check(record)
            except CheckpointError as e:
                return Problem(path, number, seq, f"checkpoint: {e}")
            self.checkpointsVerified += 1
        self.lastCheckpoint = record
        return None

    def end(self, path: str) -> Optional[Problem]:
        """
        What only the end of the chain tells: an anchored head not found,
        or no checkpoint signed with the public key given.
        """
        if self.expectHead is not None and not self.headFound:
            return Problem(path, len(self.lines), self.expectHead.seq,
                           f"the anchored head {self.expectHead.hash} is not in the chain: "
                           "records were removed from its end (or it was rewritten)")
        if self.checker.public is not None and not self.checkpointsVerified:
            return Problem(path, len(self.lines), None,
                           "no checkpoint signed by the given public key: the chain is not "
                           "anchored (rewritten, or written without a checkpoint key)")
        return None


def verifyFiles(paths: Sequence[str], key: Optional[bytes] = None,
                partial: bool = False, checker: Optional[CheckpointChecker] = None,
                expectHead: Optional[Anchor] = None) -> VerifyResult:
    """
    Verify the encoding, schema, sequence, hash chain and checkpoints across
    C{paths}, and tally what the chain says is missing.

    @param key: the HMAC key, for chains written with one (it also checks
        HMAC checkpoints).
    @param partial: accept a chain that does not start at C{chain.started}
        (older rotated files deliberately left out).
    @param checker: checks checkpoint signatures; with a public key, the
        chain must have at least one checkpoint signed by it.
    @param expectHead: a head kept elsewhere (an anchor): the chain must
        contain it, so a chain whose end was cut off is broken.
    """
    ordered = _chainOrder(paths)
    if checker is None or (key and not checker.hmacKey):
        checker = CheckpointChecker(public=checker.public if checker else None, hmacKey=key)
    chain = _Chain(key, partial, ordered, checker, expectHead)
    problems: List[Problem] = []
    for path in ordered:
        problem = chain.file(path)
        if problem is not None:
            problems.append(problem)
            break
    if not problems and ordered:
        problem = chain.end(ordered[-1])
        if problem is not None:
            problems.append(problem)
    expectedSeq = chain.expectedSeq
    return VerifyResult(
        ok=not problems, records=chain.count, problems=tuple(problems),
        firstSeq=chain.firstSeq, lastSeq=(expectedSeq - 1) if expectedSeq is not None else None,
        lastHash=chain.prev, files=tuple(ordered), completeness=chain.tally.result(),
        checkpoints=chain.checkpoints, checkpointsVerified=chain.checkpointsVerified,
        lastCheckpoint=chain.lastCheckpoint,
    )


def iterRecords(paths: Sequence[str]) -> Iterable[Dict[str, Any]]:
    """
    Every parseable record of C{paths}, in chain order.
    """
    for path in _chainOrder(paths):
        with open(path, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record
