# -*- test-case-name: tests.test_fleetverify -*-
"""
C{python -m securetcp audit verify --collector FILE [--node NODE FILE...]}:
every node's chain in a syslog collector's file, or one node's local audit
files held against the collector's records of it::

    python -m securetcp audit verify --collector /var/log/remote/securetcp.log
    python -m securetcp audit verify --collector securetcp.log.1 \\
        --collector securetcp.log --node gw-1 /var/log/securetcp/audit.jsonl

Exit statuses as for C{audit verify}: 0 complete, 3 intact but incomplete,
1 broken (a node's chain, a malformed line, a local tail removed or a
divergence), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, TextIO

from securetcp.audit.fleet import FleetResult, NodeResult, compareWithCollector, verifyCollector

_COMPLETE, _BROKEN, _USAGE, _INCOMPLETE = 0, 1, 2, 3
_STATUS = {"complete": _COMPLETE, "broken": _BROKEN, "incomplete": _INCOMPLETE}
_RANK = {_COMPLETE: 0, _INCOMPLETE: 1, _BROKEN: 2}
#: How many malformed lines are shown.
SHOWN_PROBLEMS = 10


def _usage(message: str) -> int:
    print(f"securetcp: audit verify: {message}", file=sys.stderr)
    return _USAGE


def _worst(*statuses: int) -> int:
    return max(statuses, key=lambda s: _RANK.get(s, 3))


def _key(args: argparse.Namespace) -> Any:
    if not args.key:
        return None
    from securetcp.materials import readPassphrase

    return readPassphrase(args.key)


def _nodeLine(node: NodeResult) -> str:
    status = node.status.upper() if node.status != "complete" else "OK"
    if node.records == 0 and not node.problems:
        return (f"node {node.node}: {node.atna} ATNA message(s), no chain to verify "
                "(ATNA messages carry some events only; export the json format to verify "
                "the chain)")
    text = f"node {node.node}: {status}: "
    if node.problems:
        text += (f"{node.problems[0]} ({node.records} record(s) verified before it, "
                 f"{node.unchecked} after it unchecked)")
        return text
    text += (f"records {node.firstSeq}..{node.lastSeq} ({node.records} records), "
             f"last hash {node.lastHash}")
    if node.midway:
        text += (f"; starts at record {node.firstSeq} (the records before it were not "
                 "exported: its prev is unchecked)")
    if node.duplicates:
        text += f"; {node.duplicates} duplicate(s) dropped"
    if node.status == "incomplete":
        text += f"; {node.completeness.summary()}"
    return text


def _printFleet(fleet: FleetResult, out: TextIO, only: Optional[str] = None) -> None:
    records = sum(n.records for n in fleet.nodes)
    duplicates = sum(n.duplicates for n in fleet.nodes)
    print(f"collector: {len(fleet.files)} file(s), {fleet.lines} line(s): {records} "
          f"record(s) of {len(fleet.nodes)} node(s), {duplicates} duplicate(s) dropped, "
          f"{fleet.ignored} line(s) of other programs skipped", file=out)
    for problem in fleet.problems[:SHOWN_PROBLEMS]:
        print(f"BROKEN: {problem}", file=out)
    if len(fleet.problems) > SHOWN_PROBLEMS:
        print(f"... and {len(fleet.problems) - SHOWN_PROBLEMS} more malformed line(s)",
              file=out)
    if fleet.problems:
        print("(the collector must store one RFC 5424 message per line: rsyslog's "
              "RSYSLOG_SyslogProtocol23Format template)", file=out)
    for node in fleet.nodes:
        if only is None or node.node == only:
            print(_nodeLine(node), file=out)


def _checkUsage(args: argparse.Namespace) -> Optional[str]:
    if not args.collector:
        return "--node needs --collector FILE (the collector's records to hold it against)"
    if not args.files and (args.expect_head or args.expect_head_file or args.checkpoint_key
                           or args.partial):
        return ("--expect-head, --expect-head-file, --checkpoint-key and --partial apply to "
                "a node's local files: give them with --node NODE FILE...")
    return None


def _pickNode(args: argparse.Namespace, fleet: FleetResult) -> Optional[NodeResult]:
    """
    The node whose local files are compared: C{--node}, or the only one.
    """
    names = ", ".join(n.node for n in fleet.nodes) or "none"
    if args.node is None:
        if len(fleet.nodes) == 1:
            return fleet.nodes[0]
        _usage(f"the collector holds records of {len(fleet.nodes)} nodes ({names}): "
               "name the one whose local files these are with --node NODE")
        return None
    node = fleet.node(args.node)
    if node is None:
        _usage(f"the collector holds no record of node {args.node!r} (its nodes: {names})")
    return node


def fleetCommand(args: argparse.Namespace, out: TextIO,
                 verifyLocal: Callable[[argparse.Namespace, TextIO], int]) -> int:
    """
    Verify the collector's files C{args.collector}; with local files, verify
    them (with C{verifyLocal}, as C{audit verify} does) and hold them
    against the collector's records of C{--node}.
    """
    from securetcp.errors import PolicyError

    problem = _checkUsage(args)
    if problem is not None:
        return _usage(problem)
    try:
        key = _key(args)
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return _USAGE
    fleet = verifyCollector(args.collector, key)
    if not args.files:
        if args.node is not None and fleet.node(args.node) is None:
            return _usage(f"the collector holds no record of node {args.node!r}")
        _printFleet(fleet, out, args.node)
        if args.node is not None:
            node = fleet.node(args.node)
            assert node is not None
            return _worst(_STATUS[node.status], _BROKEN if fleet.problems else _COMPLETE)
        return _STATUS[fleet.status]
    node = _pickNode(args, fleet)
    if node is None:
        return _USAGE
    local = verifyLocal(args, out)
    if local == _USAGE:
        return local
    _printFleet(fleet, out, node.node)
    comparison = compareWithCollector(node, args.files)
    if comparison.problem is not None:
        print(f"BROKEN: {comparison.problem}", file=out)
        return _BROKEN
    print(f"MATCHES COLLECTOR: {comparison.matched} record(s) of node {node.node} held by "
          f"both agree; the local files reach the collector's last record "
          f"{node.lastSeq}; {comparison.notExported} local record(s) after it are not at "
          "the collector yet", file=out)
    return _worst(local, _STATUS[node.status], _BROKEN if fleet.problems else _COMPLETE)
