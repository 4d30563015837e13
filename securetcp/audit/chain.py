# -*- test-case-name: tests.test_auditlog,tests.test_auditfiles -*-
"""
The hash chain of an audit file: how a record is sealed into one line
(canonical JSON, C{seq}, C{prev} and C{hash}), and how a writer continues
the chain of an existing file::

    line, digest = seal(record, seq=42, prev=previousHash)
    seq, prev, resumed = resumeChain("/var/log/securetcp/audit.jsonl", key=None,
                                     now=time.time())

C{hash} is SHA-256, or HMAC-SHA256 with a key, over the canonical JSON of
the record without C{hash}; the first record's C{prev} is L{ZERO_HASH}.
L{securetcp.audit.file} writes chains, L{securetcp.audit.verify} checks them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from twisted.logger import Logger

from securetcp.audit._canonical import canonical, referenceBody, sealedBody
from securetcp.audit.records import chainResumed
from securetcp.errors import AuditLogError

#: The C{prev} of the first record of a chain.
ZERO_HASH = "0" * 64

_log = Logger(namespace="securetcp.auditlog")


def _digest(body: bytes, key: Optional[bytes]) -> str:
    if key:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def recordHash(record: Dict[str, Any], key: Optional[bytes] = None) -> str:
    """
    The hash of a record: over its canonical JSON without the C{hash} field.
    """
    return _digest(canonical({k: v for k, v in record.items() if k != "hash"}), key)


class LineError(ValueError):
    """
    A line of an audit file that is not a sealed record in the canonical
    encoding, or whose hash does not match its bytes.
    """


def _noDuplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    record: Dict[str, Any] = {}
    for name, value in pairs:
        if name in record:
            raise LineError(f"duplicate key {name!r}: edited")
        record[name] = value
    return record


_HASHED = re.compile(rb',"hash":"([0-9a-f]{64})"}\Z')


def openLine(raw: bytes, key: Optional[bytes] = None) -> Dict[str, Any]:
    """
    The record of one line of an audit file (without its newline), after
    checking that the line is exactly what L{seal} writes: the canonical
    JSON of the record (no duplicate keys, no whitespace, sorted keys,
    ASCII with the standard escapes) with C{hash} appended, and that
    C{hash} is the digest of those exact bytes.

    @raise LineError: naming what is wrong.
    """
    match = _HASHED.search(raw)
    if match is None:
        raise LineError("the line does not end with its hash member: edited or corrupted")
    body = raw[:match.start()] + b"}"
    try:
        record = json.loads(body, object_pairs_hook=_noDuplicates)
    except LineError:
        raise
    except ValueError as e:
        raise LineError(f"not a JSON record ({e}): edited or corrupted") from None
    if not isinstance(record, dict):
        raise LineError("not a JSON object: edited or corrupted")
    if "hash" in record:
        raise LineError("duplicate key 'hash': edited")
    try:
        again = canonical(record)
    except ValueError as e:
        raise LineError(f"not in the canonical encoding ({e}): edited") from None
    if again != body:
        raise LineError("not in the canonical encoding (whitespace, key order, escapes or "
                        "number format differ from what the writer writes): edited")
    digest = match.group(1).decode("ascii")
    if not hmac.compare_digest(_digest(body, key), digest):
        raise LineError("hash does not match the record's content: edited"
                        + ("" if key else " (or written with an HMAC key)"))
    record["hash"] = digest
    return record


def seal(record: Dict[str, Any], seq: int, prev: str,
         key: Optional[bytes] = None) -> Tuple[bytes, str]:
    """
    Add C{schema}, C{seq}, C{prev} and C{hash} to a copy of C{record}.

    @return: the JSON line (with its newline) and the record's hash.
    """
    body = sealedBody(record, seq, prev)
    digest = (hmac.new(key, body, hashlib.sha256) if key else hashlib.sha256(body)).hexdigest()
    # the line is the hashed canonical JSON with the hash appended as its
    # last member: encoded once, and verifiable by re-encoding without it
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def referenceSeal(record: Dict[str, Any], seq: int, prev: str,
                  key: Optional[bytes] = None) -> Tuple[bytes, str]:
    """
    What L{seal} gives, by encoding the whole record in one call of the
    standard library's encoder (the reference its templates must match).
    """
    body = referenceBody(record, seq, prev)
    digest = (hmac.new(key, body, hashlib.sha256) if key else hashlib.sha256(body)).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def lastCompleteLine(path: str) -> Tuple[bytes, int]:
    """
    The last complete line of C{path} (without its newline) and the offset
    just after it; any bytes after that offset are a torn line.
    """
    size = os.path.getsize(path)
    data = b""
    base = size
    with open(path, "rb") as f:
        while base > 0:
            step = min(base, 65536)
            base -= step
            f.seek(base)
            data = f.read(step) + data
            last = data.rfind(b"\n")
            if last == -1:
                continue
            previous = data.rfind(b"\n", 0, last)
            if previous != -1 or base == 0:
                return data[previous + 1:last], base + last + 1
    return b"", 0


def _moveTornTail(path: str, goodEnd: int, now: float) -> Tuple[int, str]:
    """
    Move the bytes of C{path} after C{goodEnd} (a torn last line) to
    C{PATH.torn-SECONDS} and cut the file there.

    @return: how many bytes were moved, and the base name they went to.
    """
    with open(path, "rb") as f:
        f.seek(goodEnd)
        torn = f.read()
    aside = f"{path}.torn-{int(now)}"
    with open(aside, "wb") as f:
        f.write(torn)
    with open(path, "r+b") as f:
        f.truncate(goodEnd)
    _log.warn("securetcp audit log {path}: the last record was torn "
              "({n} bytes, kept in {aside}); the chain resumes after it",
              path=path, n=len(torn), aside=aside)
    return len(torn), os.path.basename(aside)


def resumeChain(path: str, key: Optional[bytes], now: float
                ) -> Tuple[int, str, Dict[str, Any]]:
    """
    Continue the chain of the non-empty file C{path}: a torn last line is
    moved aside first, then the last complete record must verify.

    @return: the last record's C{seq} and C{hash}, and the
        C{chain.resumed} record to write next.
    @raise AuditLogError: if the file holds no complete record, or its
        last record does not verify (with C{key}).
    """
    line, goodEnd = lastCompleteLine(path)
    tornBytes: Optional[int] = None
    tornFile: Optional[str] = None
    if goodEnd < os.path.getsize(path):
        tornBytes, tornFile = _moveTornTail(path, goodEnd, now)
    if not line:
        raise AuditLogError(path, "holds no complete audit record",
                            "move the file aside to start a new chain")
    try:
        last = openLine(line, key)
        seq, digest = int(last["seq"]), str(last["hash"])
    except (LineError, KeyError, TypeError) as e:
        raise AuditLogError(
            path, f"the last record does not verify ({e})",
            "run `python -m securetcp audit verify` on it, then move it aside "
            "to start a new chain") from None
    # a writer that stopped cleanly ended its chain with chain.closed
    clean = last.get("event") == "chain.closed"
    return seq, digest, chainResumed(now, seq, tornBytes, tornFile, clean=clean)
