# -*- test-case-name: tests.test_auditverify -*-
"""
Tests for L{securetcp.audit.verify} and L{securetcp.audit.completeness}:
verification that checks the exact bytes of every line (so a duplicate
key, whitespace, key order or another escape is refused, naming the file
and line), reordering reported as such, removal of the tail found with an
anchored head, and completeness (gaps, C{audit_unavailable} refusals,
unclosed connections) reported by C{audit verify} and C{audit report} with
three exit statuses.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp.audit.chain import LineError, canonical, openLine, seal
from securetcp.audit.checkpoint import Anchor, parseAnchor
from securetcp.audit.records import chainGap
from securetcp.audit.verify import verifyFiles
from securetcp.audit.writer import AuditLogObserver

from ._recording import fileLines as _lines
from ._recording import writeFileLines as _writeLines

NOON = 1793530800.0  # 2026-11-01T11:00:00Z


def _accepted(n: int, peer: str = "") -> Dict[str, Any]:
    return {"event": "connection.accepted", "time": "2026-11-01T10:00:00.000000Z",
            "connection": f"{n:016x}", "role": "server", "local": "127.0.0.1:6661",
            "peer": peer or f"127.0.0.1:{40000 + n}", "version": "TLSv1.3",
            "cipher": "TLS_AES_256_GCM_SHA384", "peerIdentity": {"subject": "CN=PUMP-0042"},
            "compliance": {"compliant": True, "reasons": []}}


def _closed(n: int) -> Dict[str, Any]:
    return dict(_accepted(n), event="connection.closed", time="2026-11-01T10:00:05.000000Z",
                closeReason=None, duration=5.0, bytesIn=10, bytesOut=20)


def _refused(n: int) -> Dict[str, Any]:
    return dict(_accepted(n), event="handshake.rejected", version=None, cipher=None,
                peerIdentity=None, compliance=None, reason="audit_unavailable",
                detail="the audit log cannot be written")


def _cli(*argv: str) -> Tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


class _ChainCase(SynchronousTestCase):
    """
    A complete chain of 4 connections (accepted, then closed), closed
    cleanly: lines 1 (chain.started), 2-5 (accepted), 6-9 (closed), 10
    (chain.closed).
    """

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.path = os.path.join(directory, "audit.jsonl")
        writer = AuditLogObserver(self.path, fsync="off", now=lambda: NOON)
        self.addCleanup(writer.close)
        for n in range(4):
            writer.write(_accepted(n))
        for n in range(4):
            writer.write(_closed(n))
        writer.close()
        self.lines = _lines(self.path)
        self.assertEqual(len(self.lines), 10)

    def assertBroken(self, line: int, *texts: str, **options: Any) -> str:
        """
        L{verifyFiles} and C{audit verify} (exit status 1) find the chain
        broken at C{line} of the file, saying C{texts}.
        """
        result = verifyFiles([self.path], **options)
        self.assertFalse(result.ok)
        self.assertEqual(result.status, "broken")
        problem = result.problems[0]
        self.assertEqual((problem.file, problem.line), (self.path, line), str(problem))
        for text in texts:
            self.assertIn(text, problem.message)
        status, out = _cli("audit", "verify", self.path)
        self.assertEqual(status, 1, out)
        self.assertIn(f"BROKEN: {self.path}:{line}", out)
        return problem.message

    def tamper(self, index: int, old: bytes, new: bytes) -> None:
        """
        Replace C{old} by C{new} (once) in line C{index} (0-based).
        """
        self.assertIn(old, self.lines[index])
        self.lines[index] = self.lines[index].replace(old, new, 1)
        _writeLines(self.path, self.lines)


class EncodingTests(_ChainCase):
    """
    Every line must be exactly what the writer writes: the hash covers its
    bytes, and any other encoding of the same record is refused.
    """

    def test_clean(self) -> None:
        """
        The untouched chain is intact and complete: exit status 0, C{OK}
        and C{INTACT}.
        """
        result = verifyFiles([self.path])
        self.assertEqual((result.ok, result.complete, result.status), (True, True, "complete"))
        status, out = _cli("audit", "verify", self.path)
        self.assertEqual(status, 0, out)
        self.assertTrue(out.startswith("OK: 10 records in 1 file(s), records 1..10"), out)
        self.assertIn("INTACT: complete", out)

    def test_duplicateKey(self) -> None:
        """
        A duplicate key injected in front of the real one (which a JSON
        parser would let win) is refused, naming the file and line, though
        re-encoding the parsed record would give the original bytes.
        """
        self.tamper(2, b'{"cipher"', b'{"peer":"10.66.66.66:4444","cipher"')
        record = json.loads(self.lines[2])
        self.assertEqual(record["peer"], "127.0.0.1:40001")  # the injected one is hidden
        self.assertBroken(3, "duplicate key 'peer'")

    def test_duplicateKeyAfter(self) -> None:
        """
        A duplicate key after the real one (which a JSON parser lets win)
        is refused too.
        """
        self.tamper(2, b',"prev"', b',"peer":"10.66.66.66:4444","prev"')
        self.assertEqual(json.loads(self.lines[2])["peer"], "10.66.66.66:4444")
        self.assertBroken(3, "duplicate key 'peer'")

    def test_whitespace(self) -> None:
        """
        Whitespace between members is refused.
        """
        self.tamper(3, b',"peer":', b', "peer": ')
        self.assertBroken(4, "not in the canonical encoding")

    def test_trailingWhitespace(self) -> None:
        """
        Whitespace after the record (before the newline) is refused.
        """
        self.tamper(3, b"}\n", b"} \n")
        self.assertBroken(4, "does not end with its hash")

    def test_keyOrder(self) -> None:
        """
        The same members in another order are refused.
        """
        self.tamper(4, b'"cipher":"TLS_AES_256_GCM_SHA384","compliance":'
                    b'{"compliant":true,"reasons":[]},',
                    b'"compliance":{"compliant":true,"reasons":[]},'
                    b'"cipher":"TLS_AES_256_GCM_SHA384",')
        self.assertBroken(5, "not in the canonical encoding")

    def test_escapes(self) -> None:
        """
        A character written as another escape (C{\\u0050} for C{P}, or an
        upper-case hex escape) is refused.
        """
        self.tamper(4, b"PUMP-0042", b"\\u0050UMP-0042")
        self.assertEqual(json.loads(self.lines[4])["peerIdentity"]["subject"], "CN=PUMP-0042")
        self.assertBroken(5, "not in the canonical encoding")

    def test_numberFormat(self) -> None:
        """
        A number written another way (C{5.0} as C{5.00}) is refused.
        """
        self.tamper(6, b'"duration":5.0', b'"duration":5.00')
        self.assertBroken(7, "not in the canonical encoding")

    def test_hashCoversBytes(self) -> None:
        """
        L{openLine} accepts exactly the line L{seal} writes, and its hash is
        the SHA-256 of the line's bytes without the hash member.
        """
        line, digest = seal(_accepted(1), 2, "0" * 64)
        record = openLine(line.rstrip(b"\n"))
        self.assertEqual(record["hash"], digest)
        self.assertEqual(canonical({k: v for k, v in record.items() if k != "hash"}) ,
                         line[:line.index(b',"hash"')] + b"}")
        self.assertRaises(LineError, openLine, line.rstrip(b"\n").replace(b":2,", b":3,"))

    def test_canonicalIsJSONDumps(self) -> None:
        """
        L{canonical} gives exactly C{json.dumps} with sorted keys, no
        whitespace, ASCII escapes and no NaN, for nested values, escapes and
        numbers; it refuses what C{json.dumps} refuses with the same errors,
        and a refused record leaves nothing behind that changes the next one.
        """
        def dumps(record: Dict[str, Any]) -> bytes:
            return json.dumps(record, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=True, allow_nan=False).encode("ascii")

        records: List[Dict[str, Any]] = [
            {}, {"b": 1, "a": [1, 2.5, None, True, False, "\u00e9\u2028\"\\\x00"],
                 "c": {"z": 1e300, "y": -0.0, "x": 10**30, "w": []}}]
        for record in records:
            self.assertEqual(canonical(record), dumps(record))
        for bad, error in [({"a": float("nan")}, ValueError), ({"a": object()}, TypeError),
                           ({1: 2, "a": 1}, TypeError)]:
            self.assertRaises(error, canonical, bad)
            self.assertRaises(error, dumps, bad)
        circular: Dict[str, Any] = {}
        circular["self"] = circular
        self.assertRaises(ValueError, canonical, circular)
        nested = {"inner": {"v": object()}}
        self.assertRaises(TypeError, canonical, nested)
        self.assertEqual(canonical(nested["inner"] | {"v": 1}), b'{"v":1}')
        self.assertEqual(canonical(records[1]), dumps(records[1]))


class OrderTests(_ChainCase):
    """
    Reordered records are reported as out of order, naming where the
    missing one is; removed ones as missing.
    """

    def test_swapped(self) -> None:
        """
        Two swapped lines are out of order, not missing.
        """
        self.lines[2], self.lines[5] = self.lines[5], self.lines[2]
        _writeLines(self.path, self.lines)
        message = self.assertBroken(3, "out of order", "records reordered")
        self.assertIn(f"record 3 is at {self.path}:6", message)
        self.assertNotIn("missing", message)

    def test_adjacentSwap(self) -> None:
        """
        Two neighbouring lines swapped are out of order too.
        """
        self.lines[7], self.lines[8] = self.lines[8], self.lines[7]
        _writeLines(self.path, self.lines)
        self.assertBroken(8, "out of order")

    def test_removed(self) -> None:
        """
        A removed line is missing.
        """
        del self.lines[4]
        _writeLines(self.path, self.lines)
        self.assertBroken(5, "records missing")

    def test_repeated(self) -> None:
        """
        A line copied again is a repeated record.
        """
        self.lines.insert(5, self.lines[3])
        _writeLines(self.path, self.lines)
        self.assertBroken(6, "repeated")


class TailTests(_ChainCase):
    """
    Removing whole records from the end cannot be seen in a bare chain; an
    anchored head (C{--expect-head}, C{--expect-head-file}) finds it.
    """

    def cutTail(self, records: int) -> None:
        _writeLines(self.path, self.lines[:-records])

    def test_tailRemovedUnseenWithoutAnchor(self) -> None:
        """
        Without an anchor, a chain cut after a whole record still holds
        (the documented limit of a hash chain); it only no longer ends with
        C{chain.closed}.
        """
        self.cutTail(3)
        result = verifyFiles([self.path])
        self.assertTrue(result.ok)
        self.assertFalse(result.completeness.closedCleanly)

    def test_expectHead(self) -> None:
        """
        C{--expect-head HASH} (or C{SEQ:HASH}) of the last record finds the
        cut tail (exit status 1); the whole chain passes with it.
        """
        head = json.loads(self.lines[-1])
        for anchor in (head["hash"], f"{head['seq']}:{head['hash']}"):
            status, out = _cli("audit", "verify", "--expect-head", anchor, self.path)
            self.assertEqual(status, 0, out)
        self.cutTail(2)
        for anchor in (head["hash"], f"{head['seq']}:{head['hash']}"):
            status, out = _cli("audit", "verify", "--expect-head", anchor, self.path)
            self.assertEqual(status, 1, out)
            self.assertIn("is not in the chain: records were removed from its end", out)

    def test_expectHeadFile(self) -> None:
        """
        C{--expect-head-file} takes the last line of a file of copied
        records (here the chain's own last record).
        """
        anchorFile = self.path + ".anchor"
        with open(anchorFile, "wb") as f:
            f.write(self.lines[4] + self.lines[-1])
        status, out = _cli("audit", "verify", "--expect-head-file", anchorFile, self.path)
        self.assertEqual(status, 0, out)
        self.cutTail(1)
        status, out = _cli("audit", "verify", "--expect-head-file", anchorFile, self.path)
        self.assertEqual(status, 1, out)

    def test_rewrittenAtAnchoredSeq(self) -> None:
        """
        A chain whose record at the anchored C{seq} has another hash was
        rewritten.
        """
        head = json.loads(self.lines[-1])
        result = verifyFiles([self.path], expectHead=Anchor(head["seq"], "ab" * 32))
        self.assertFalse(result.ok)
        self.assertIn("rewritten", result.problems[0].message)

    def test_badAnchor(self) -> None:
        """
        An anchor that is not a hash is a usage error (exit status 2).
        """
        status, out = _cli("audit", "verify", "--expect-head", "12:xyz", self.path)
        self.assertEqual(status, 2, out)
        self.assertRaises(ValueError, parseAnchor, "{}")


class CompletenessTests(SynchronousTestCase):
    """
    C{audit verify} and C{audit report} list what an intact chain says it
    is missing, and exit 3 for it.
    """

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.path = os.path.join(directory, "audit.jsonl")
        writer = AuditLogObserver(self.path, fsync="off", now=lambda: NOON)
        self.addCleanup(writer.close)
        writer.write(_accepted(1))
        writer.write(chainGap(NOON, 21, NOON - 60))
        for n in range(2, 4):
            writer.write(_refused(n))
        writer.write(_accepted(4))
        writer.write(_closed(4))
        writer.write(_accepted(5, peer="10.1.2.3:5555"))
        writer.close()

    def test_verifyFiles(self) -> None:
        """
        L{verifyFiles} tallies the gap, the refusals and the two unclosed
        connections; the chain is intact but incomplete.
        """
        result = verifyFiles([self.path])
        self.assertEqual((result.ok, result.complete, result.status),
                         (True, False, "incomplete"))
        completeness = result.completeness
        self.assertEqual((completeness.lost, completeness.refused), (21, 2))
        self.assertEqual([u["connection"] for u in completeness.unclosed],
                         [f"{1:016x}", f"{5:016x}"])
        # the writer closed the chain: neither can still be open
        self.assertEqual([u["mayBeOpen"] for u in completeness.unclosed], [False, False])
        self.assertTrue(completeness.closedCleanly)

    def test_verifyCommand(self) -> None:
        """
        C{audit verify} says INCOMPLETE (never OK nor INTACT), lists the gap,
        the refusals and the unclosed connections with their lines, and
        exits 3.
        """
        status, out = _cli("audit", "verify", self.path)
        self.assertEqual(status, 3, out)
        self.assertTrue(out.startswith("INCOMPLETE: the chain holds"), out)
        self.assertNotIn("OK", out)
        self.assertNotIn("INTACT", out)
        self.assertIn("21 record(s) lost (1 gap(s), 0 torn record(s))", out)
        self.assertIn("2 connection(s) refused audit_unavailable", out)
        self.assertIn("2 accepted connection(s) without a close record", out)
        self.assertIn(f"gap: {self.path}:3 (record 3): 21 record(s) lost", out)
        self.assertIn(f"refused: {self.path}:4 (record 4): 127.0.0.1:40002", out)
        self.assertIn(f"unclosed: {self.path}:8 (record 8): connection {5:016x} from "
                      "10.1.2.3:5555", out)

    def test_reportJSON(self) -> None:
        """
        C{audit report --json} carries the chain's status and a
        C{completeness} member listing the gaps, refusals and unclosed
        connections; it exits 3.
        """
        status, out = _cli("audit", "report", "--json", self.path)
        self.assertEqual(status, 3, out)
        report = json.loads(out)
        self.assertEqual((report["chain"]["ok"], report["chain"]["status"]),
                         (True, "incomplete"))
        completeness = report["completeness"]
        self.assertFalse(completeness["complete"])
        self.assertEqual(completeness["lost"], 21)
        self.assertEqual([(g["seq"], g["lost"]) for g in completeness["gaps"]], [(3, 21)])
        self.assertEqual(completeness["refused"], 2)
        self.assertEqual([r["peer"] for r in completeness["refusals"]],
                         ["127.0.0.1:40002", "127.0.0.1:40003"])
        self.assertEqual([(u["connection"], u["peer"]) for u in completeness["unclosed"]],
                         [(f"{1:016x}", "127.0.0.1:40001"), (f"{5:016x}", "10.1.2.3:5555")])
        self.assertEqual(report["rejectedByReason"], {"audit_unavailable": 2})

    def test_reportText(self) -> None:
        """
        The text report says INCOMPLETE, not INTACT, and lists what is
        missing.
        """
        status, out = _cli("audit", "report", self.path)
        self.assertEqual(status, 3, out)
        self.assertIn("chain: INCOMPLETE", out)
        self.assertNotIn("INTACT", out)
        self.assertIn("gap:", out)
        self.assertIn("unclosed:", out)

    def test_stillOpen(self) -> None:
        """
        A connection accepted after the last start of a chain that does not
        end with C{chain.closed} may still be open, and is marked so.
        """
        lines = _lines(self.path)
        _writeLines(self.path, lines[:-1])  # as if the writer were still running
        result = verifyFiles([self.path])
        self.assertEqual([u["mayBeOpen"] for u in result.completeness.unclosed],
                         [True, True])
        status, out = _cli("audit", "verify", self.path)
        self.assertIn("may still be open", out)

    def test_brokenWins(self) -> None:
        """
        A broken chain exits 1, whatever it says about completeness.
        """
        lines = _lines(self.path)
        del lines[3]
        _writeLines(self.path, lines)
        self.assertEqual(_cli("audit", "verify", self.path)[0], 1)
        self.assertEqual(_cli("audit", "report", self.path)[0], 1)


class ReportAddressTests(SynchronousTestCase):
    """
    The report reads any peer address a record may carry.
    """

    def test_oddAddresses(self) -> None:
        """
        A peer that starts with C{[} but has no C{]} is counted under itself
        rather than raising.
        """
        from securetcp.audit.report import buildReport

        report = buildReport([dict(_refused(1), peer="["), dict(_refused(2), peer="[::1]:5")])
        self.assertEqual(report["rejectedByPeer"], {"[": 1, "::1": 1})
