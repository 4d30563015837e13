# -*- test-case-name: tests.test_auditlog -*-
"""
C{python -m securetcp audit verify|report FILE...}: check an audit trail's
schema, sequence and hash chain, or summarise it for a compliance
reviewer::

    python -m securetcp audit verify audit.jsonl.2 audit.jsonl.1 audit.jsonl
    python -m securetcp audit report audit.jsonl --html report.html
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, TextIO


def addParser(sub: Any) -> None:
    """
    Add the C{audit} command and its subcommands to C{sub}.
    """
    audit = sub.add_parser("audit", help="verify or summarise audit files")
    auditSub = audit.add_subparsers(dest="auditCommand", required=True)
    verify = auditSub.add_parser("verify", help="check schema, sequence and hash chain")
    verify.add_argument("files", nargs="+", help="the audit file and its rotated files")
    verify.add_argument("--key", help="HMAC key source (env:NAME, file:PATH) for keyed chains")
    verify.add_argument("--partial", action="store_true",
                        help="accept a chain whose first files were left out on purpose")
    verify.set_defaults(handler=verifyCommand)
    report = auditSub.add_parser("report", help="summary for a compliance reviewer")
    report.add_argument("files", nargs="+")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument("--html", metavar="FILE", help="also write an HTML page with charts")
    report.add_argument("--key", help="HMAC key source for keyed chains")
    report.set_defaults(handler=reportCommand)


def _readKey(source: Optional[str]) -> Optional[bytes]:
    if not source:
        return None
    from securetcp.materials import readPassphrase

    return readPassphrase(source)


def verifyCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Verify audit files: exit 0 when the chain holds, 1 at the first break,
    2 when the key cannot be read.
    """
    from securetcp.audit.verify import verifyFiles
    from securetcp.errors import PolicyError

    try:
        key = _readKey(args.key)
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 2
    result = verifyFiles(args.files, key=key, partial=args.partial)
    if result.ok:
        print(f"OK: {result.records} records in {len(result.files)} file(s), "
              f"records {result.firstSeq}..{result.lastSeq}, last hash {result.lastHash}",
              file=out)
        return 0
    print(f"BROKEN: {result.problems[0]}", file=out)
    print(f"({result.records} records verified before it)", file=out)
    return 1


def reportCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Summarise audit files (text, JSON, HTML); exit 1 when the chain is
    broken.
    """
    from securetcp.audit.report import buildReport, reportHTML, reportText
    from securetcp.audit.verify import iterRecords, verifyFiles

    verified = verifyFiles(args.files, key=_readKey(args.key), partial=True)
    report = buildReport(iterRecords(args.files))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(reportHTML(report, verified))
    if args.json:
        report["chain"] = {"ok": verified.ok, "records": verified.records,
                           "problem": str(verified.problems[0]) if verified.problems else None}
        print(json.dumps(report, indent=2), file=out)
    else:
        out.write(reportText(report, verified))
    return 0 if verified.ok else 1
