# -*- test-case-name: tests.test_auditlog -*-
"""
Checking audit files (C{python -m securetcp audit verify}), and reading
their records in chain order for L{securetcp.audit.report}::

    result = verifyFiles(["audit.jsonl.20261101T000000Z", "audit.jsonl"])
    if not result.ok:
        print(result.problems[0])

Files may be given in any order: they are put in chain order by the
sequence number of their first record.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import attrs

from securetcp.audit.chain import ZERO_HASH, recordHash
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
    """

    ok: bool
    records: int
    problems: Tuple[Problem, ...]
    firstSeq: Optional[int]
    lastSeq: Optional[int]
    lastHash: Optional[str]
    files: Tuple[str, ...]


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


class _Chain:
    """
    Walks the records of a chain in order, checking each against the one
    before it.
    """

    def __init__(self, key: Optional[bytes], partial: bool) -> None:
        self.key = key
        self.partial = partial
        self.expectedSeq: Optional[int] = None
        self.prev: Optional[str] = None
        self.count = 0
        self.firstSeq: Optional[int] = None

    def file(self, path: str) -> Optional[Problem]:
        """
        Check every record of C{path}; the first problem, if any.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return Problem(path, 0, None, f"cannot read: {e.strerror}")
        lines, torn = _lines(data)
        for number, raw in enumerate(lines, 1):
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
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return Problem(path, number, self.expectedSeq,
                           f"not a JSON record ({e}): edited or corrupted")
        missing = [k for k in _REQUIRED if k not in record]
        if missing:
            return Problem(path, number, record.get("seq"),
                           "missing field(s) " + ", ".join(missing))
        seq = record["seq"]
        if record["schema"] != SCHEMA_VERSION:
            return Problem(path, number, seq, f"unknown schema version {record['schema']!r}")
        if recordHash(record, self.key) != record["hash"]:
            return Problem(path, number, seq,
                           "hash does not match the record's content: edited"
                           + ("" if self.key else " (or written with an HMAC key)"))
        problem = self._linked(path, number, seq, record)
        if problem is None:
            self.expectedSeq = seq + 1
            self.prev = record["hash"]
            self.count += 1
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
            what = "missing" if seq > self.expectedSeq else "repeated or reordered"
            where = " at a file boundary (a rotated file is missing?)" if number == 1 else ""
            return Problem(path, number, seq,
                           f"expected record {self.expectedSeq}, found {seq}: "
                           f"records {what}{where}")
        if record["prev"] != self.prev:
            return Problem(path, number, seq,
                           "prev does not match the previous record's hash: "
                           "records deleted, reordered or edited before it")
        return None


def verifyFiles(paths: Sequence[str], key: Optional[bytes] = None,
                partial: bool = False) -> VerifyResult:
    """
    Verify schema, sequence and hash chain across C{paths}.

    @param key: the HMAC key, for chains written with one.
    @param partial: accept a chain that does not start at C{chain.started}
        (older rotated files deliberately left out).
    """
    ordered = _chainOrder(paths)
    chain = _Chain(key, partial)
    problems: List[Problem] = []
    for path in ordered:
        problem = chain.file(path)
        if problem is not None:
            problems.append(problem)
            break
    expectedSeq = chain.expectedSeq
    return VerifyResult(
        ok=not problems, records=chain.count, problems=tuple(problems),
        firstSeq=chain.firstSeq, lastSeq=(expectedSeq - 1) if expectedSeq is not None else None,
        lastHash=chain.prev, files=tuple(ordered),
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
