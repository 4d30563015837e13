"""
Tests for L{securetcp.audit.rfc5424}, L{securetcp.audit.fleet} and
C{python -m securetcp audit verify --collector}: verifying the audit
records a syslog collector received from many nodes, and a node's local
file against them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, List, Optional, Sequence, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._cli import main
from securetcp.audit import records
from securetcp.audit.atna import atnaMessage
from securetcp.audit.chain import ZERO_HASH, seal
from securetcp.audit.fleet import compareWithCollector, verifyCollector
from securetcp.audit.rfc5424 import (
    SD_ID,
    SyslogLineError,
    exportedRecord,
    parseSyslogLine,
)

from ._jing import validateAudit
from ._net import freePort

NOON = 1793527200.0  # 2026-11-01T10:00:00Z

#: A sealed record: seq, hash, event, and its line without the newline.
Sealed = Tuple[int, str, str, bytes]


def chain(count: int, start: int = 0, key: Optional[bytes] = None,
          prev: str = ZERO_HASH, closed: bool = True) -> List[Sealed]:
    """
    A chain of C{count} records from C{start}: C{chain.started} first (at
    0), then connections accepted and closed, C{chain.closed} last.
    """
    out: List[Sealed] = []
    for seq in range(start, start + count):
        if seq == 0:
            record = records.chainStarted(NOON, "sha256")
        elif closed and seq == start + count - 1:
            record = records.chainClosed(NOON + seq)
        else:
            record = {"event": "proxy.backend_failed", "time": "2026-11-01T10:00:00.000000Z",
                      "connection": None, "backend": "tcp:127.0.0.1:6000", "peer": None,
                      "detail": f"refused {seq}"}
        line, prev = seal(record, seq, prev, key)
        out.append((seq, prev, record["event"], line.rstrip(b"\n")))
    return out


def escapeParam(value: str) -> str:
    """
    An RFC 5424 PARAM-VALUE: C{"}, C{\\} and C{]} escaped.
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslogLine(node: str, sealed: Sealed, *, app: str = "securetcp",
               sdHash: Optional[str] = None, message: Optional[bytes] = None) -> bytes:
    """
    The line a collector stores for C{sealed}, exported by C{node} (as
    C{RSYSLOG_SyslogProtocol23Format} writes it).
    """
    seq, digest, event, line = sealed
    sd = (f'[{SD_ID} node="{escapeParam(node)}" seq="{seq}" '
          f'hash="{sdHash or digest}"]').encode()
    header = (f"<110>1 2026-11-01T10:00:00.000000+00:00 node-host {app} 4242 "
              f"{event} ").encode()
    return header + sd + b" " + (line if message is None else message)


def writeCollector(directory: str, lines: Sequence[bytes], name: str = "collected.log") -> str:
    """
    A collector's file with C{lines}.
    """
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))
    return path


def writeLocal(directory: str, sealed: Sequence[Sealed], name: str = "audit.jsonl") -> str:
    """
    A node's local audit file holding C{sealed}.
    """
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(b"".join(s[3] + b"\n" for s in sealed))
    return path


def cli(*argv: str) -> Tuple[int, str]:
    """
    Run C{python -m securetcp} with C{argv}: the exit status and what it printed.
    """
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


class SyslogLineTests(SynchronousTestCase):
    """
    L{parseSyslogLine} and L{exportedRecord} read the lines a collector stores.
    """

    def test_fields(self) -> None:
        """
        The header fields (C{None} for C{-}), every structured-data element
        with its parameters unescaped, and the MSG without its BOM.
        """
        line = parseSyslogLine(
            b'<110>1 2026-11-01T10:00:00Z gw-1 securetcp - chain.closed '
            b'[other@1 a="x"][securetcp@32473 node="gw \\"1\\" \\\\ [a\\]" seq="9" '
            b'hash="' + b"ab" * 32 + b'"] \xef\xbb\xbf{"x":1}')
        self.assertEqual((line.priority, line.timestamp, line.hostname, line.appName,
                          line.procId, line.msgId),
                         (110, "2026-11-01T10:00:00Z", "gw-1", "securetcp", None,
                          "chain.closed"))
        self.assertEqual(line.structuredData["other@1"], {"a": "x"})
        self.assertEqual(line.message, b'{"x":1}')
        exported = exportedRecord(line)
        assert exported is not None
        self.assertEqual((exported.node, exported.seq, exported.hash, exported.event),
                         ('gw "1" \\ [a]', 9, "ab" * 32, "chain.closed"))

    @given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                   max_size=30))
    def test_escapedValues(self, node: str) -> None:
        """
        Any node name, escaped as RFC 5424 says, reads back as it was.
        """
        raw = syslogLine(node.replace("\n", " ") or "x", chain(1)[0])
        exported = exportedRecord(parseSyslogLine(raw))
        assert exported is not None
        self.assertEqual(exported.node, node.replace("\n", " ") or "x")

    def test_notOurs(self) -> None:
        """
        Another program's message, or one without the securetcp element,
        carries no record.
        """
        sealed = chain(1)[0]
        other = parseSyslogLine(syslogLine("gw-1", sealed, app="sshd"))
        self.assertIsNone(exportedRecord(other))
        plain = parseSyslogLine(b"<13>1 2026-11-01T10:00:00Z gw-1 securetcp 1 - - hello")
        self.assertIsNone(exportedRecord(plain))
        self.assertEqual(plain.message, b"hello")

    def test_malformed(self) -> None:
        """
        A line that is not RFC 5424, an unterminated structured-data value,
        or a securetcp element without node, with a bad seq or a bad hash,
        is an error saying what is wrong.
        """
        for raw, text in [
                (b"Nov  1 10:00:00 gw-1 securetcp: hello", "not an RFC 5424 message"),
                (b'<13>1 - gw securetcp 1 x [a b="c] hi', "no closing quote"),
                (b"<13>1 - gw securetcp 1 x [a b=c] hi", 'expected NAME="VALUE"'),
                (b"<13>1 - gw securetcp 1 x hi", "expected structured data"),
                (b'<13>1 - gw securetcp 1 x [securetcp@32473 seq="1" hash="' + b"a" * 64
                 + b'"] {}', "has no node"),
                (b'<13>1 - gw securetcp 1 x [securetcp@32473 node="n" seq="-1" hash="'
                 + b"a" * 64 + b'"] {}', "is not a sequence number"),
                (b'<13>1 - gw securetcp 1 x [securetcp@32473 node="n" seq="1" hash="AB"] {}',
                 "is not 64 hex digits")]:
            error = self.assertRaises(SyslogLineError, lambda line: exportedRecord(
                parseSyslogLine(line)), raw)
            self.assertIn(text, str(error), raw)


class FleetTests(SynchronousTestCase):
    """
    L{verifyCollector} verifies each node's chain separately.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.one, self.two = chain(6), chain(5, start=20)

    def collect(self, lines: Sequence[bytes]) -> Any:
        """
        Verify a collector's file holding C{lines}.
        """
        return verifyCollector([writeCollector(self.directory, lines)])

    def interleaved(self) -> List[bytes]:
        """
        Both nodes' lines, interleaved, with a line of another program.
        """
        lines = [syslogLine("gw-1", s) for s in self.one[:3]]
        lines.append(b"<38>1 2026-11-01T10:00:00Z gw-1 sshd 99 - - Accepted publickey")
        lines += [syslogLine("gw-2", s) for s in self.two]
        lines += [syslogLine("gw-1", s) for s in self.one[3:]]
        return lines

    def test_nodes(self) -> None:
        """
        Each node's chain is verified on its own, and reported with its
        first and last seq and last hash; a chain the collector holds from
        its middle (export enabled later) starts there; other programs'
        lines are counted and skipped.
        """
        fleet = self.collect(self.interleaved())
        self.assertEqual((fleet.status, fleet.lines, fleet.ignored, fleet.problems),
                         ("complete", 12, 1, ()))
        one, two = fleet.nodes
        self.assertEqual((one.node, one.records, one.firstSeq, one.lastSeq, one.lastHash,
                          one.midway), ("gw-1", 6, 0, 5, self.one[-1][1], False))
        self.assertEqual((two.node, two.records, two.firstSeq, two.lastSeq, two.lastHash,
                          two.midway), ("gw-2", 5, 20, 24, self.two[-1][1], True))

    def test_duplicates(self) -> None:
        """
        Records delivered again (at-least-once: after a reconnection the
        node resends what was not acknowledged) are dropped and counted.
        """
        lines = [syslogLine("gw-1", s) for s in self.one[:4]]
        lines += [syslogLine("gw-1", s) for s in self.one[2:]]
        [node] = self.collect(lines).nodes
        self.assertEqual((node.status, node.records, node.duplicates, node.lastSeq),
                         ("complete", 6, 2, 5))

    @given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=5))
    def test_resends(self, resends: List[Tuple[int, int]]) -> None:
        """
        However often a node resends records it had sent (from any record
        up to the last one sent), the collector's view is the whole chain,
        every resent record counted as a duplicate.
        """
        records_ = chain(12)
        lines, sent = [], 0
        for after, back in sorted(resends):
            lines += [syslogLine("gw-1", s) for s in records_[sent:after + 1]]
            sent = max(sent, after + 1)
            start = min(back, sent - 1) if sent else 0
            lines += [syslogLine("gw-1", s) for s in records_[start:sent]]
        lines += [syslogLine("gw-1", s) for s in records_[sent:]]
        [node] = self.collect(lines).nodes
        self.assertEqual((node.status, node.records, node.duplicates),
                         ("complete", 12, len(lines) - 12))

    def assertBroken(self, lines: Sequence[bytes], line: int, text: str) -> None:
        """
        Node gw-1's chain is broken at C{line} with a message containing
        C{text}, and node gw-2's stays intact.
        """
        lines = list(lines) + [syslogLine("gw-2", s) for s in self.two]
        fleet = self.collect(lines)
        one, two = fleet.nodes
        self.assertEqual((fleet.status, one.status, two.status),
                         ("broken", "broken", "complete"))
        [problem] = one.problems
        self.assertEqual(problem.line, line, str(problem))
        self.assertIn(text, str(problem))

    def test_gap(self) -> None:
        """
        A record missing is an error at the line after the gap.
        """
        lines = [syslogLine("gw-1", s) for s in self.one[:2] + self.one[3:]]
        self.assertBroken(lines, 3, "expected record 2, found 3: records missing")

    def test_reordered(self) -> None:
        """
        Records out of order are an error.
        """
        one = self.one
        lines = [syslogLine("gw-1", s) for s in [one[0], one[2], one[1]] + one[3:]]
        self.assertBroken(lines, 2, "expected record 1, found 2")

    def test_edited(self) -> None:
        """
        A record whose line does not match its hash is an error.
        """
        seq, digest, event, line = self.one[2]
        edited = (seq, digest, event, line.replace(b"refused 2", b"refused 9"))
        lines = [syslogLine("gw-1", s) for s in self.one[:2] + [edited] + self.one[3:]]
        self.assertBroken(lines, 3, "hash does not match")

    def test_structuredDataDisagrees(self) -> None:
        """
        Structured data naming another hash than the record's is an error.
        """
        lines = [syslogLine("gw-1", s) for s in self.one]
        lines[1] = syslogLine("gw-1", self.one[1], sdHash="cd" * 32)
        self.assertBroken(lines, 2, "the structured data says record 1")

    def test_msgIdDisagrees(self) -> None:
        """
        A MSGID naming another event than the record's is an error.
        """
        lines = [syslogLine("gw-1", s) for s in self.one]
        seq, digest, _, line = self.one[1]
        lines[1] = syslogLine("gw-1", (seq, digest, "handshake.rejected", line))
        self.assertBroken(lines, 2, "the MSGID says handshake.rejected")

    def test_forked(self) -> None:
        """
        A second record with a seq already seen and another hash (the chain
        rewritten, or another node under the same name) is an error.
        """
        other = chain(3, prev="ee" * 32, closed=False)
        lines = [syslogLine("gw-1", s) for s in self.one] + [syslogLine("gw-1", other[2])]
        self.assertBroken(lines, 7, "a second record 2 with another hash")

    def test_malformedLine(self) -> None:
        """
        A malformed line is an error naming its line; the nodes' chains are
        still verified.
        """
        lines = self.interleaved()
        lines.insert(2, b"garbage")
        fleet = self.collect(lines)
        [problem] = fleet.problems
        self.assertEqual((fleet.status, problem.line), ("broken", 3))
        self.assertIn("malformed line: not an RFC 5424 message", str(problem))
        self.assertEqual([n.status for n in fleet.nodes], ["complete", "complete"])

    def test_keyed(self) -> None:
        """
        Chains written with an HMAC key verify with it, and not without.
        """
        key = b"k" * 32
        lines = [syslogLine("gw-1", s) for s in chain(4, key=key)]
        path = writeCollector(self.directory, lines)
        self.assertEqual(verifyCollector([path], key).status, "complete")
        self.assertEqual(verifyCollector([path]).status, "broken")

    def test_rotatedFiles(self) -> None:
        """
        A chain continues across the collector's rotated files, oldest first.
        """
        old = writeCollector(self.directory, [syslogLine("gw-1", s) for s in self.one[:3]],
                             "collected.log.1")
        new = writeCollector(self.directory, [syslogLine("gw-1", s) for s in self.one[3:]])
        self.assertEqual(verifyCollector([old, new]).nodes[0].records, 6)
        self.assertEqual(verifyCollector([new, old]).status, "broken")


class CompareTests(SynchronousTestCase):
    """
    L{compareWithCollector}: the collector is each node's external anchor.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.records = chain(8, closed=False)
        collector = writeCollector(self.directory,
                                   [syslogLine("gw-1", s) for s in self.records[:6]])
        [self.node] = verifyCollector([collector]).nodes

    def test_matches(self) -> None:
        """
        Local files that hold the collector's records, and more not yet
        exported, match.
        """
        comparison = compareWithCollector(
            self.node, [writeLocal(self.directory, self.records)])
        self.assertEqual((comparison.problem, comparison.matched, comparison.notExported,
                          comparison.localLastSeq), (None, 6, 2, 7))

    def test_tailRemoved(self) -> None:
        """
        A local file that ends before the collector's last record lost its
        tail, which no check of the local file alone can see.
        """
        comparison = compareWithCollector(
            self.node, [writeLocal(self.directory, self.records[:4])])
        self.assertIn("the local tail was removed: the collector holds records 4..5",
                      comparison.problem or "")

    def test_divergence(self) -> None:
        """
        A local chain rewritten from some record on (consistent in itself)
        differs from the collector at that record.
        """
        tampered = chain(1, start=3, prev=self.records[2][1], closed=True)
        comparison = compareWithCollector(
            self.node, [writeLocal(self.directory, self.records[:3] + tampered)])
        self.assertIn("divergence at record 3", comparison.problem or "")
        self.assertIn(tampered[0][1], comparison.problem or "")


class RealFileTests(SynchronousTestCase):
    """
    The lines of an audit file as the writer writes them, exported as the
    C{json} format sends them.
    """

    def test_writerFile(self) -> None:
        """
        An audit file's lines as MSG (with resends) verify at the
        collector; the file itself matches the collector, and once its last
        two records are cut off, C{audit verify --collector --node} finds
        the tail removed although the file alone still verifies.
        """
        from securetcp.audit.writer import AuditLogObserver

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "audit.jsonl")
        writer = AuditLogObserver(path, fsync="off", now=lambda: NOON)
        self.addCleanup(writer.close)
        for n in range(5):
            writer.write(records.backendFailed("tcp:127.0.0.1:6000", None, f"refused {n}",
                                               NOON))
        writer.close()
        with open(path, "rb") as f:
            raw = f.read().splitlines()
        sealed = [(json.loads(line)["seq"], json.loads(line)["hash"],
                   json.loads(line)["event"], line) for line in raw]
        lines = [syslogLine("gw-1", s) for s in sealed[:4] + sealed[1:]]
        collector = writeCollector(directory, lines)
        [node] = verifyCollector([collector]).nodes
        self.assertEqual((node.status, node.records, node.duplicates, node.midway),
                         ("complete", len(raw), 3, False))
        status, out = cli("audit", "verify", "--collector", collector, "--node", "gw-1", path)
        self.assertEqual(status, 0, out)
        with open(path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in raw[:-2]))
        self.assertTrue(cli("audit", "verify", path)[0] in (0, 3))
        status, out = cli("audit", "verify", "--collector", collector, "--node", "gw-1", path)
        self.assertEqual(status, 1, out)
        self.assertIn("the local tail was removed", out)


class CommandTests(SynchronousTestCase):
    """
    C{python -m securetcp audit verify --collector FILE [--node NODE FILE...]}.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.one, self.two = chain(6), chain(5, start=20)
        lines = [syslogLine("gw-1", s) for s in self.one]
        lines += [syslogLine("gw-2", s) for s in self.two + self.two[-2:]]
        self.collector = writeCollector(self.directory, lines)

    def test_fleet(self) -> None:
        """
        Every node's chain with its records, last hash, where it starts and
        how many duplicates were dropped; exit 0.
        """
        status, out = cli("audit", "verify", "--collector", self.collector)
        self.assertEqual(status, 0, out)
        self.assertIn("13 line(s): 11 record(s) of 2 node(s), 2 duplicate(s) dropped", out)
        self.assertIn(f"node gw-1: OK: records 0..5 (6 records), last hash {self.one[-1][1]}",
                      out)
        self.assertIn("node gw-2: OK: records 20..24 (5 records), last hash "
                      f"{self.two[-1][1]}; starts at record 20", out)

    def test_fleetBroken(self) -> None:
        """
        A broken node's chain says where and why; exit 1.
        """
        with open(self.collector, "ab") as f:
            f.write(syslogLine("gw-1", chain(1, start=9, closed=False)[0]) + b"\n")
        status, out = cli("audit", "verify", "--collector", self.collector)
        self.assertEqual(status, 1, out)
        self.assertIn("node gw-1: BROKEN: ", out)
        self.assertIn(":14 (record 9): expected record 6, found 9", out)

    def test_malformedLines(self) -> None:
        """
        Malformed lines are named by file and line (the first ten, then how
        many more), with how the collector must store its messages; exit 1.
        """
        with open(self.collector, "ab") as f:
            f.write(b"Nov  1 10:00:00 gw-1 securetcp: hello\n" * 12)
        status, out = cli("audit", "verify", "--collector", self.collector)
        self.assertEqual(status, 1, out)
        self.assertIn(f"BROKEN: {self.collector}:14: malformed line: not an RFC 5424 message",
                      out)
        self.assertIn("... and 2 more malformed line(s)", out)
        self.assertIn("RSYSLOG_SyslogProtocol23Format", out)
        self.assertIn("node gw-1: OK", out)

    def test_local(self) -> None:
        """
        A node's local file that holds everything the collector holds: its
        own verdict, then that it matches the collector; exit 0.
        """
        local = writeLocal(self.directory, self.one)
        status, out = cli("audit", "verify", "--collector", self.collector, "--node", "gw-1",
                          local)
        self.assertEqual(status, 0, out)
        self.assertIn("OK: 6 records in 1 file(s)", out)
        self.assertIn("MATCHES COLLECTOR: 6 record(s) of node gw-1", out)

    def test_localTailRemoved(self) -> None:
        """
        A local file cut short (an intact chain on its own) is broken held
        against the collector; exit 1.
        """
        local = writeLocal(self.directory, self.one[:4])
        status, out = cli("audit", "verify", "--collector", self.collector, "--node", "gw-1",
                          local)
        self.assertEqual(status, 1, out)
        self.assertIn("BROKEN: the local tail was removed: the collector holds records 4..5",
                      out)

    def test_usage(self) -> None:
        """
        Usage errors exit 2: --node without --collector, local files without
        --node when the collector holds several nodes, a node it does not
        hold, --expect-head without local files, and nothing to verify.
        """
        local = writeLocal(self.directory, self.one)
        for argv, text in [
                (("--node", "gw-1", local), "--node needs --collector"),
                (("--collector", self.collector, local), "holds records of 2 nodes (gw-1, "
                 "gw-2): name the one whose local files these are with --node NODE"),
                (("--collector", self.collector, "--node", "gw-9", local),
                 "no record of node 'gw-9' (its nodes: gw-1, gw-2)"),
                (("--collector", self.collector, "--expect-head", "ab" * 32),
                 "apply to a node's local files"),
                ((), "name the audit files to verify")]:
            errors = io.StringIO()
            self.patch(sys, "stderr", errors)
            status, out = cli("audit", "verify", *argv)
            self.assertEqual(status, 2, (argv, out))
            self.assertIn(text, errors.getvalue())

    def test_atnaOnly(self) -> None:
        """
        ATNA (XML) messages carry some events only: counted, not a chain.
        """
        lines = [syslogLine("gw-3", s, message=b'<?xml version="1.0"?><AuditMessage/>')
                 for s in self.one]
        path = writeCollector(self.directory, lines, "atna.log")
        status, out = cli("audit", "verify", "--collector", path)
        self.assertEqual(status, 0, out)
        self.assertIn("node gw-3: 6 ATNA message(s), no chain to verify", out)
        self.assertEqual(json.loads(self.one[0][3])["seq"], 0)


#: rsyslog as a collector: plain TCP in, every message stored one RFC 5424
#: line each with the standard template
RSYSLOG_CONF = """\
global(workDirectory="{directory}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
*.* action(type="omfile" file="{directory}/collected.log"
           template="RSYSLOG_SyslogProtocol23Format")
"""


class RsyslogTests(SynchronousTestCase):
    """
    What a real rsyslogd stores for hand-built messages, received over
    plain TCP, verifies.
    """

    def startRsyslog(self) -> Tuple[int, str]:
        """
        Start rsyslogd listening on 127.0.0.1 (stopped by the test's
        cleanup): its port and the file it writes.
        """
        rsyslogd = shutil.which("rsyslogd") or (
            "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
        if rsyslogd is None:
            raise SkipTest("rsyslogd (Debian package rsyslog) is not installed")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        port = freePort()
        conf = os.path.join(directory, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(RSYSLOG_CONF.format(directory=directory, port=port))
        log = open(os.path.join(directory, "rsyslogd.out"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [rsyslogd, "-n", "-f", conf, "-i", os.path.join(directory, "rsyslogd.pid")],
            stdout=log, stderr=subprocess.STDOUT)

        def stop() -> None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait(10)
        self.addCleanup(stop)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(directory, "rsyslogd.out")) as f:
                        raise AssertionError(f"rsyslogd did not listen: {f.read()}")
                time.sleep(0.05)
        return port, os.path.join(directory, "collected.log")

    def test_rsyslogCollector(self) -> None:
        """
        Messages sent to rsyslogd as the export sends them (two nodes, one
        record delivered twice, a node name with characters RFC 5424
        escapes, a BOM before one message, another program's message) come
        out of its C{RSYSLOG_SyslogProtocol23Format} file as lines that
        verify: each node's chain intact, the duplicate dropped, the other
        program skipped; and a node's local file missing its tail is found.
        """
        port, collected = self.startRsyslog()
        one, two = chain(5), chain(4, start=10)
        odd = 'gw "radiology" [2]\\'
        lines = [syslogLine("gw-1", s) for s in one[:3]]
        lines.append(syslogLine(odd, two[0], message=b"\xef\xbb\xbf" + two[0][3]))
        lines += [syslogLine(odd, s) for s in two[1:]]
        lines += [syslogLine("gw-1", s) for s in one[2:]]  # record 2 again
        lines.append(b"<38>1 2026-11-01T10:00:00Z gw-1 sshd 99 - - Accepted publickey")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sender:
            sender.sendall(b"".join(line + b"\n" for line in lines))
        deadline = time.monotonic() + 15
        while True:
            if os.path.exists(collected):
                with open(collected, "rb") as f:
                    if f.read().count(b"\n") >= len(lines):
                        break
            self.assertLess(time.monotonic(), deadline, "rsyslogd did not write every line")
            time.sleep(0.05)
        fleet = verifyCollector([collected])
        self.assertEqual((fleet.status, fleet.ignored, fleet.problems),
                         ("complete", 1, ()))
        first, second = fleet.nodes
        self.assertEqual((first.node, first.records, first.duplicates, first.lastHash),
                         (odd, 4, 0, two[-1][1]))
        self.assertEqual((second.node, second.records, second.duplicates, second.lastHash),
                         ("gw-1", 5, 1, one[-1][1]))
        directory = os.path.dirname(collected)
        status, out = cli("audit", "verify", "--collector", collected, "--node", "gw-1",
                          writeLocal(directory, one[:3]))
        self.assertEqual(status, 1, out)
        self.assertIn("the local tail was removed: the collector holds records 3..4", out)

    def test_rsyslogATNA(self) -> None:
        """
        ATNA messages sent as the MSG come out of rsyslogd's file unchanged
        (one line each, byte for byte), still valid audit messages; the
        verifier counts them for their node and does not take them for a
        chain.
        """
        port, collected = self.startRsyslog()
        sealed = chain(4)
        documents = [atnaMessage(json.loads(s[3]), sourceId="gw-atna", siteId="St. Elsewhere")
                     for s in sealed]
        sent = [d for d in documents if d is not None]
        self.assertEqual(len(sent), 2)  # chain.started and chain.closed
        lines = [syslogLine("gw-atna", s, message=d.encode("utf-8"))
                 for s, d in zip(sealed, documents, strict=True) if d is not None]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sender:
            sender.sendall(b"".join(line + b"\n" for line in lines))
        deadline = time.monotonic() + 15
        while True:
            if os.path.exists(collected):
                with open(collected, "rb") as f:
                    stored = f.read().splitlines()
                if len(stored) >= len(lines):
                    break
            self.assertLess(time.monotonic(), deadline, "rsyslogd did not write every line")
            time.sleep(0.05)
        received = [parseSyslogLine(line).message.decode("utf-8") for line in stored]
        self.assertEqual(received, sent)
        self.assertEqual(validateAudit(received), [])
        [node] = verifyCollector([collected]).nodes
        self.assertEqual((node.node, node.atna, node.records), ("gw-atna", 2, 0))
