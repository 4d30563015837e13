# -*- test-case-name: tests.test_auditlog -*-
"""
C{python -m securetcp audit verify|report FILE...}: check an audit trail's
encoding, sequence, hash chain, checkpoints and completeness, or summarise
it for a compliance reviewer::

    python -m securetcp audit verify audit.jsonl.2 audit.jsonl.1 audit.jsonl
    python -m securetcp audit verify --checkpoint-key checkpoint.pub \\
        --expect-head-file /mnt/elsewhere/checkpoints.jsonl audit.jsonl
    python -m securetcp audit report audit.jsonl --html report.html
    python -m securetcp audit verify --collector /var/log/collector/securetcp.log
    python -m securetcp audit verify --collector collected.log --node gw-1 audit.jsonl

Both exit 0 when the chain is intact and complete, 3 when intact but
incomplete (records lost, connections refused for want of an audit log,
connections without a close record), 1 when broken, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, List, Optional, Sequence, TextIO

#: Exit statuses of C{audit verify} and C{audit report} (2 is a usage error).
COMPLETE, BROKEN, USAGE, INCOMPLETE = 0, 1, 2, 3
_STATUS = {"complete": COMPLETE, "broken": BROKEN, "incomplete": INCOMPLETE}


def _addChainOptions(parser: Any) -> None:
    parser.add_argument("--key", help="HMAC key source (env:NAME, file:PATH) for keyed chains")
    parser.add_argument("--checkpoint-key", metavar="PUBLIC_KEY",
                        help="Ed25519 public key (PEM) that signed the chain's checkpoints; "
                        "the chain must have at least one checkpoint it verifies")
    head = parser.add_mutually_exclusive_group()
    head.add_argument("--expect-head", metavar="HASH",
                      help="a head kept elsewhere (HASH or SEQ:HASH): the chain must contain it")
    head.add_argument("--expect-head-file", metavar="FILE",
                      help="a file whose last line is a copied checkpoint record (or "
                      "SEQ:HASH): the chain must contain that head")


def addParser(sub: Any) -> None:
    """
    Add the C{audit} command and its subcommands to C{sub}.
    """
    audit = sub.add_parser("audit", help="verify or summarise audit files")
    auditSub = audit.add_subparsers(dest="auditCommand", required=True)
    verify = auditSub.add_parser("verify", help="check encoding, sequence, hash chain, "
                                 "checkpoints and completeness")
    verify.add_argument("files", nargs="*", help="the audit file and its rotated files "
                        "(with --collector: the local files of the --node to compare)")
    _addChainOptions(verify)
    verify.add_argument("--partial", action="store_true",
                        help="accept a chain whose first files were left out on purpose")
    verify.add_argument("--collector", action="append", metavar="FILE",
                        help="a syslog collector's file of exported records (RFC 5424 "
                        "lines) from many nodes: verify each node's chain; repeat for "
                        "rotated files, oldest first")
    verify.add_argument("--node", help="with --collector and FILE...: the node whose local "
                        "files FILE... are held against the collector's records")
    verify.set_defaults(handler=verifyCommand)
    report = auditSub.add_parser("report", help="summary for a compliance reviewer")
    report.add_argument("files", nargs="+", help="the audit files of one or more nodes, "
                        "each with its rotated files")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML "
                        "page (verdict, timeline, identities, the trail's events)")
    _addChainOptions(report)
    report.set_defaults(handler=reportCommand)


def _readKey(source: Optional[str]) -> Optional[bytes]:
    if not source:
        return None
    from securetcp.materials import readPassphrase

    return readPassphrase(source)


def _verify(args: argparse.Namespace, partial: bool,
            files: Optional[Sequence[str]] = None) -> Any:
    """
    Verify C{files} (default: C{args.files}) with the keys and anchor the
    options give.

    @raise PolicyError: for an unusable C{--key}.
    @raise AuditLogError: for an unusable C{--checkpoint-key} or anchor.
    @raise ValueError: for a bad C{--expect-head}.
    """
    from securetcp.audit.checkpoint import (
        CheckpointChecker,
        loadCheckpointPublicKey,
        parseAnchor,
        readAnchor,
    )
    from securetcp.audit.verify import verifyFiles

    key = _readKey(args.key)
    public = loadCheckpointPublicKey(args.checkpoint_key) if args.checkpoint_key else None
    anchor = None
    if args.expect_head:
        anchor = parseAnchor(args.expect_head)
    elif args.expect_head_file:
        anchor = readAnchor(args.expect_head_file)
    return verifyFiles(args.files if files is None else files, key=key, partial=partial,
                       checker=CheckpointChecker(public=public, hmacKey=key),
                       expectHead=anchor)


def _verifyOrFail(args: argparse.Namespace, partial: bool,
                  files: Optional[Sequence[str]] = None) -> Any:
    from securetcp.errors import AuditLogError, PolicyError

    try:
        return _verify(args, partial, files)
    except (PolicyError, AuditLogError) as e:
        print(f"securetcp: {e}", file=sys.stderr)
    except ValueError as e:
        print(f"securetcp: --expect-head: {e}", file=sys.stderr)
    return None


def _checkpointLine(result: Any) -> str:
    if not result.checkpoints:
        return "checkpoints: none (nothing anchors the head)"
    last = result.lastCheckpoint
    after = (result.lastSeq or 0) - last["seq"]
    return (f"checkpoints: {result.checkpoints} ({result.checkpointsVerified} signature(s) "
            f"verified), the last ({last['algorithm']}, key {last['keyId']}) is record "
            f"{last['seq']} and covers records ..{last['coversSeq']}; "
            f"{after} record(s) after it")


def verifyCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Verify audit files: exit 0 when the chain is intact and complete, 3
    when intact but incomplete, 1 when broken, 2 when a key or anchor
    cannot be used.
    """
    if args.collector or args.node:
        from securetcp._cli.fleet import fleetCommand

        return fleetCommand(args, out, _verifyLocal)
    if not args.files:
        print("securetcp: audit verify: name the audit files to verify (or --collector FILE)",
              file=sys.stderr)
        return USAGE
    return _verifyLocal(args, out)


def _verifyLocal(args: argparse.Namespace, out: TextIO) -> int:
    """
    Verify the audit files C{args.files}, printing the verdict; the exit status.
    """
    result = _verifyOrFail(args, args.partial)
    if result is None:
        return USAGE
    if not result.ok:
        print(f"BROKEN: {result.problems[0]}", file=out)
        print(f"({result.records} records verified before it)", file=out)
        return BROKEN
    chain = (f"{result.records} records in {len(result.files)} file(s), "
             f"records {result.firstSeq}..{result.lastSeq}, last hash {result.lastHash}")
    completeness = result.completeness
    if completeness.complete:
        print(f"OK: {chain}", file=out)
        print(f"INTACT: {completeness.summary()}", file=out)
    else:
        print(f"INCOMPLETE: the chain holds ({chain}), but {completeness.summary()}",
              file=out)
        for line in completeness.details():
            print(f"  {line}", file=out)
    print(_checkpointLine(result), file=out)
    return _STATUS[result.status]


def _nodes(args: argparse.Namespace) -> Optional[List[Any]]:
    """
    The nodes C{args.files} name (an audit file and its rotated files, or
    one worker's file), each verified as C{audit verify --partial} does;
    C{None} after printing a usage error.
    """
    from securetcp.audit.report import Node, groupNodes

    groups = groupNodes(args.files)
    if len(groups) > 1 and (args.expect_head or args.expect_head_file):
        print(f"securetcp: --expect-head names the head of one chain, and the files given "
              f"are {len(groups)} nodes' ({', '.join(name for name, _ in groups)}): "
              f"report on one node with it", file=sys.stderr)
        return None
    nodes = []
    for name, files in groups:
        verified = _verifyOrFail(args, True, files)
        if verified is None:
            return None
        nodes.append(Node(name, files, verified))
    return nodes


def reportCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Summarise audit files (text, JSON, HTML), a section per node; exit as
    C{audit verify} does over every node (the summary is printed whatever
    the state of the chains).
    """
    from securetcp.audit.report import auditReport, mergeVerified
    from securetcp.audit.reporthtml import reportHTML
    from securetcp.audit.reporttext import reportText

    nodes = _nodes(args)
    if nodes is None:
        return USAGE
    verified = mergeVerified([node.verified for node in nodes])
    report = auditReport(nodes)
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(reportHTML(report, verified))
        except OSError as e:
            print(f"securetcp: --html {args.html}: cannot write: {e.strerror}",
                  file=sys.stderr)
            return BROKEN
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        out.write(reportText(report, verified))
    return _STATUS[verified.status]
