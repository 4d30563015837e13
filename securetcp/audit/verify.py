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


def verifyFiles(paths: Sequence[str], key: Optional[bytes] = None,
                partial: bool = False) -> VerifyResult:
    """
    Verify schema, sequence and hash chain across C{paths}.

    @param key: the HMAC key, for chains written with one.
    @param partial: accept a chain that does not start at C{chain.started}
        (older rotated files deliberately left out).
    """
    ordered = [p for _, p in sorted(_firstSeq(p) for p in paths)]
    problems: List[Problem] = []
    expectedSeq: Optional[int] = None
    prev: Optional[str] = None
    count = 0
    firstSeq: Optional[int] = None
    for path in ordered:
        try:
            f = open(path, "rb")
        except OSError as e:
            problems.append(Problem(path, 0, None, f"cannot read: {e.strerror}"))
            break
        with f:
            data = f.read()
        torn: Optional[Tuple[int, int]] = None
        if data and not data.endswith(b"\n"):
            # reported after the complete lines before it are verified, with
            # the number of the record it should have been
            torn = (data.count(b"\n") + 1, len(data.rsplit(b"\n", 1)[-1]))
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            lines.pop()  # the torn tail, reported below
        for number, raw in enumerate(lines, 1):
            if problems:
                break
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                problems.append(Problem(path, number, expectedSeq,
                                        f"not a JSON record ({e}): edited or corrupted"))
                break
            missing = [k for k in _REQUIRED if k not in record]
            if missing:
                problems.append(Problem(path, number, record.get("seq"),
                                        "missing field(s) " + ", ".join(missing)))
                break
            seq = record["seq"]
            if record["schema"] != SCHEMA_VERSION:
                problems.append(Problem(path, number, seq,
                                        f"unknown schema version {record['schema']!r}"))
                break
            if recordHash(record, key) != record["hash"]:
                problems.append(Problem(path, number, seq,
                                        "hash does not match the record's content: edited"
                                        + ("" if key else " (or written with an HMAC key)")))
                break
            if expectedSeq is None:
                firstSeq = seq
                if record["prev"] != ZERO_HASH or record["event"] != "chain.started":
                    if not partial:
                        problems.append(Problem(
                            path, number, seq,
                            "the chain does not start here (chain.started missing): "
                            "earlier files or records are missing; pass --partial if "
                            "they were left out on purpose"))
                        break
            else:
                if seq != expectedSeq:
                    what = "missing" if seq > expectedSeq else "repeated or reordered"
                    where = " at a file boundary (a rotated file is missing?)" if number == 1 else ""
                    problems.append(Problem(path, number, seq,
                                            f"expected record {expectedSeq}, found {seq}: "
                                            f"records {what}{where}"))
                    break
                if record["prev"] != prev:
                    problems.append(Problem(path, number, seq,
                                            "prev does not match the previous record's hash: "
                                            "records deleted, reordered or edited before it"))
                    break
            expectedSeq = seq + 1
            prev = record["hash"]
            count += 1
        if torn is not None and not problems:
            problems.append(Problem(path, torn[0], expectedSeq,
                                    f"truncated: the last line ({torn[1]} bytes) is incomplete"))
        if problems:
            break
    return VerifyResult(
        ok=not problems, records=count, problems=tuple(problems), firstSeq=firstSeq,
        lastSeq=(expectedSeq - 1) if expectedSeq is not None else None,
        lastHash=prev, files=tuple(ordered),
    )


def iterRecords(paths: Sequence[str]) -> Iterable[Dict[str, Any]]:
    """
    Every parseable record of C{paths}, in chain order.
    """
    ordered = [p for _, p in sorted(_firstSeq(p) for p in paths)]
    for path in ordered:
        with open(path, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record
