# -*- test-case-name: tests.test_auditreport -*-
"""
Tests for the audit report a compliance reviewer signs off
(L{securetcp.audit.report}, L{securetcp.audit.reporttext},
L{securetcp.audit.reporthtml}, L{securetcp.audit.timeline},
L{securetcp.audit.readable} and C{python -m securetcp audit report}):
a verdict first, the period, the nodes, the policies in force with their
verdict, who was rejected and who was accepted (first and last seen),
timelines with the trail's own events, readable names, one file, rotated
files and many nodes, as text, JSON and a self-contained HTML page that
headless Chromium renders.

Every trail here is written by the audit writer from the record builders
(L{securetcp.audit.writer}, L{securetcp.audit.records}), with a clock the
test moves.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._cli import main
from securetcp.audit import records
from securetcp.audit.readable import readableName
from securetcp.audit.records import AuditConnection, SessionFacts
from securetcp.audit.report import (
    SECTIONS,
    Node,
    auditReport,
    buildReport,
    groupNodes,
    mergeVerified,
    nodeName,
)
from securetcp.audit.reporthtml import reportHTML, timelineSVG
from securetcp.audit.reporttext import _sectionLines, reportText
from securetcp.audit.timeline import Timeline, bucketOf, chooseInterval, trailEvent
from securetcp.audit.verify import verifyFiles
from securetcp.audit.writer import AuditLogObserver
from securetcp.config import buildPolicy
from securetcp.identity import PeerIdentity
from securetcp.policy import Role

#: 2026-11-01T10:00:00Z
NOON = 1793527200.0

#: The detail of every rejection written here: free text the report does
#: not copy (it reports identities, reasons and times).
DETAIL = "alert 42 from the peer: bad certificate (x-unique-detail)"

#: How long headless Chromium may take to render a report (seconds).
CHROMIUM_TIMEOUT = 60

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _NoTimer:
    """
    A checkpoint timer that never fires (checkpoints come by count and at
    close).
    """

    def cancel(self) -> None:
        pass


def _noTimer(delay: float, call: Any) -> _NoTimer:
    return _NoTimer()


def _connection(n: int, subject: Optional[str], peer: Optional[str] = None,
                version: str = "TLSv1.3") -> AuditConnection:
    return AuditConnection(
        connectionId=f"{n:016x}", role=Role.SERVER, local="10.0.0.5:6661",
        peer=peer or f"10.0.1.{n % 250}:{40000 + n}", policy="hl7-inbound",
        profile="nist-800-52r2",
        session=SessionFacts(version=version, cipher="TLS_AES_128_GCM_SHA256",
                             group="x25519"),
        peerIdentity=PeerIdentity(subject=subject, sha256="ab" * 32) if subject else None)


def _device(k: int) -> str:
    """
    The subject of device C{k}, as C{cryptography} writes it: the
    serialNumber attribute has no short name, so it is a dotted OID.
    """
    return f"2.5.4.5=dev{k},CN=dev{k}"


class _Trail:
    """
    Writes an audit trail with the writer, at times the test chooses.
    """

    def __init__(self, test: SynchronousTestCase, path: str, **options: Any) -> None:
        self.test = test
        self.path = path
        self.clock = [NOON]
        self.options = dict(options, fsync="off", now=lambda: self.clock[0])
        self.writer = self.start()
        self.n = 0

    def start(self) -> AuditLogObserver:
        writer = AuditLogObserver(self.path, **self.options)
        self.test.addCleanup(writer.close)
        return writer

    def at(self, seconds: float) -> float:
        self.clock[0] = NOON + seconds
        return self.clock[0]

    def accept(self, seconds: float, subject: Optional[str], duration: float = 5.0) -> None:
        self.n += 1
        connection = _connection(self.n, subject)
        self.writer.write(records.connectionAccepted(connection, self.at(seconds)))
        self.writer.write(records.connectionClosed(
            connection, self.at(seconds + duration), duration, 100, 200))

    def reject(self, seconds: float, subject: Optional[str], reason: str,
               peer: Optional[str] = None) -> None:
        self.n += 1
        self.writer.write(records.handshakeRejected(
            _connection(self.n, subject, peer), self.at(seconds), reason, DETAIL))

    def crash(self, seconds: float) -> None:
        """
        The writer dies (its lock dropped as by a killed process) and a
        new one resumes the chain.
        """
        self.writer._file.close()  # nothing more from the dead writer, not even at cleanup
        self.writer._unlock()
        self.at(seconds)
        self.writer = self.start()

    def close(self, seconds: float) -> None:
        self.at(seconds)
        self.writer.close()


def _directory(test: SynchronousTestCase) -> str:
    directory = os.path.abspath(test.mktemp())
    os.makedirs(directory)
    return directory


def _dayWithACrash(test: SynchronousTestCase, path: str) -> _Trail:
    """
    An hour of a node: a policy loaded; six devices connecting every few
    minutes (dev5 stops after 20 minutes); a revoked pump retrying every
    minute; clients without a certificate; a gap; a crash; a reload that
    changes the certificate; CRLs loaded and refused; checkpoints; a clean
    close.
    """
    policy = buildPolicy(name="hl7-inbound")
    trail = _Trail(test, path, checkpointKey=Ed25519PrivateKey.generate(),
                   checkpointEvery=50, schedule=_noTimer)
    trail.writer.write(records.policyLoaded(policy, Role.SERVER, True, "tcp:6661",
                                            trail.at(1)))
    trail.writer.write(records.crlLoaded(policy, ["ca.crl"], 1, 3, trail.at(2)))
    for minute in range(60):
        for k in range(6):
            if minute % 5 == k % 5 and not (k == 5 and minute > 20):
                trail.accept(minute * 60 + k, _device(k))
        trail.reject(minute * 60 + 30, "CN=PUMP-0042", "revoked")
        if minute % 15 == 0:
            trail.reject(minute * 60 + 40, None, "handshake_timeout", peer="203.0.113.9:5000")
        if minute == 25:
            trail.writer.write(records.chainGap(trail.at(minute * 60 + 45), 4,
                                                trail.clock[0] - 30, refused=1))
        if minute == 30:
            trail.crash(minute * 60 + 50)
            trail.writer.write(records.policyReloaded(
                policy, trail.at(minute * 60 + 51), changed=["certificate", "key"],
                certificateBefore="aa" * 32, certificateAfter="bb" * 32))
        if minute == 45:
            trail.writer.write(records.crlRefused(policy, "ca.crl: bad signature", "ca.crl",
                                                  trail.at(minute * 60 + 55)))
    trail.close(3600)
    return trail


class ReadableNameTests(SynchronousTestCase):
    """
    L{readableName} names every attribute of a distinguished name.
    """

    def test_dottedOID(self) -> None:
        """
        The serialNumber attribute, which C{cryptography} writes as a
        dotted OID, reads C{serialNumber}; short names stay as they are.
        """
        self.assertEqual(readableName("2.5.4.5=dev1,CN=dev1"), "serialNumber=dev1, CN=dev1")
        self.assertEqual(readableName("CN=PUMP-0042,O=Hospital,C=DE"),
                         "CN=PUMP-0042, O=Hospital, C=DE")
        self.assertEqual(readableName("2.5.4.97=VATDE-123+CN=x"),
                         "organizationIdentifier=VATDE-123+CN=x")
        self.assertEqual(readableName("1.2.840.113549.1.9.1=a@b.example,2.5.4.4=Doe"),
                         "emailAddress=a@b.example, surname=Doe")

    def test_escapes(self) -> None:
        """
        Escaped characters in values stay escaped, so the name still reads
        as one distinguished name.
        """
        self.assertEqual(readableName(r"CN=a\,b,O=c"), r"CN=a\,b, O=c")

    def test_unknownAndUnreadable(self) -> None:
        """
        An OID with no name stays dotted; a string that is not a
        distinguished name is returned as it is.
        """
        self.assertEqual(readableName("1.2.3.4=x"), "1.2.3.4=x")
        self.assertEqual(readableName("not a name"), "not a name")
        self.assertEqual(readableName(""), "")


class TimelineTests(SynchronousTestCase):
    """
    L{securetcp.audit.timeline}: intervals from the period, counts per
    interval, the trail's events described.
    """

    def test_interval(self) -> None:
        """
        Minutes up to two hours, hours up to five days, days beyond.
        """
        self.assertEqual(chooseInterval("2026-11-01T10:00:00Z", "2026-11-01T11:59:00Z"),
                         "minute")
        self.assertEqual(chooseInterval("2026-11-01T10:00:00Z", "2026-11-03T10:00:00Z"),
                         "hour")
        self.assertEqual(chooseInterval("2026-11-01T10:00:00Z", "2026-12-01T10:00:00Z"),
                         "day")
        self.assertEqual(chooseInterval(None, None), "minute")

    def test_buckets(self) -> None:
        """
        Every interval of the period is listed, empty ones too, with its
        accepted and rejected counts.
        """
        timeline = Timeline()
        timeline.add("2026-11-01T10:00:03.000000Z", accepted=True)
        timeline.add("2026-11-01T10:00:59.000000Z", accepted=False)
        timeline.add("2026-11-01T10:02:00.000000Z", accepted=True)
        timeline.add(None, accepted=True)
        self.assertEqual(
            timeline.asDict("2026-11-01T10:00:03.000000Z", "2026-11-01T10:02:00.000000Z"),
            {"interval": "minute", "buckets": [
                {"start": "2026-11-01T10:00Z", "accepted": 1, "rejected": 1},
                {"start": "2026-11-01T10:01Z", "accepted": 0, "rejected": 0},
                {"start": "2026-11-01T10:02Z", "accepted": 1, "rejected": 0}]})
        self.assertEqual(bucketOf("2026-11-01T10:59:00.5Z", "hour"), "2026-11-01T10:00Z")
        self.assertEqual(bucketOf("2026-11-01T10:59:00.5Z", "day"), "2026-11-01")

    def test_trailEvents(self) -> None:
        """
        A crash, a gap and a refused CRL need attention; a clean restart
        and a checkpoint do not; a connection's record is not the trail's.
        """
        resumed = records.chainResumed(NOON, 7, clean=False)
        event = trailEvent(resumed, "node-a")
        assert event is not None
        self.assertTrue(event["attention"])
        self.assertIn("CRASH", event["text"])
        self.assertEqual(event["node"], "node-a")
        restart = trailEvent(records.chainResumed(NOON, 7), "n")
        gap = trailEvent(records.chainGap(NOON, 3, NOON - 1), "n")
        checkpoint = trailEvent(records.chainCheckpoint(NOON, 7, "ab" * 32, "ed25519", "k",
                                                        "00", "count"), "n")
        assert restart is not None and gap is not None and checkpoint is not None
        self.assertEqual((restart["attention"], gap["attention"], checkpoint["attention"]),
                         (False, True, False))
        self.assertIsNone(trailEvent(records.connectionAccepted(_connection(1, None), NOON),
                                     "n"))

    def test_refusedMessage(self) -> None:
        """
        An accepted connection closed because a later message of its
        identity binding was refused is on the trail, marked for attention,
        and counted by reason (C{closedRefusedByReason}, a line of the
        text); a normal close is neither.
        """
        refused = records.connectionClosed(
            _connection(1, None), NOON, 1.0, 10, 0, "protocol_identity_mismatch: x",
            refused={"reason": "protocol_identity_mismatch", "message": 2,
                     "detail": "hl7SendingFacility 'WARD9' is not allowed",
                     "claims": {"hl7SendingFacility": "WARD9"}})
        normal = records.connectionClosed(_connection(2, None), NOON, 1.0, 10, 0)
        event = trailEvent(refused, "n")
        assert event is not None
        self.assertTrue(event["attention"])
        self.assertIn("message 2 refused (protocol_identity_mismatch)", event["text"])
        self.assertIsNone(trailEvent(normal, "n"))
        report = buildReport([refused, normal, refused])
        self.assertEqual(report["closedRefusedByReason"], {"protocol_identity_mismatch": 2})
        self.assertEqual(report["closed"], 3)
        self.assertIn("  closed for a refused message: protocol_identity_mismatch 2",
                      _sectionLines("period", report, None))

    def test_svg(self) -> None:
        """
        L{timelineSVG} draws a bar per non-empty count and a numbered mark
        per event, on one axis: an event at the start of the third minute
        is two bars' widths from the first.
        """
        timeline = {"interval": "minute", "buckets": [
            {"start": "2026-11-01T10:00Z", "accepted": 2, "rejected": 1},
            {"start": "2026-11-01T10:01Z", "accepted": 0, "rejected": 0},
            {"start": "2026-11-01T10:02Z", "accepted": 1, "rejected": 0}]}
        trail = [{"time": "2026-11-01T10:02:00.000000Z", "text": "chain resumed <crash>",
                  "attention": True}]
        svg = timelineSVG(timeline, trail, width=358)
        self.assertTrue(svg.startswith("<svg"))
        self.assertEqual(svg.count("<rect"), 3)
        # left margin 48, plot 300 wide: bars of 100; the event at 48 + 200
        self.assertIn("x1='248.0'", svg)
        self.assertIn("&lt;crash&gt;", svg)
        self.assertEqual(timelineSVG({"interval": "minute", "buckets": []}, []),
                         "<p>(no timed records)</p>")


def _report(paths: List[str]) -> Tuple[Dict[str, Any], Any]:
    nodes = [Node(name, files, verifyFiles(files, partial=True))
             for name, files in groupNodes(paths)]
    return auditReport(nodes), mergeVerified([n.verified for n in nodes])


def _cli(*argv: str) -> Tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


class ReportTests(SynchronousTestCase):
    """
    The report of one node's hour with a gap, a crash, a reload and many
    identities.
    """

    def setUp(self) -> None:
        self.path = os.path.join(_directory(self), "audit.jsonl")
        _dayWithACrash(self, self.path)
        self.report, self.verified = _report([self.path])

    def test_verdict(self) -> None:
        """
        The verdict comes first: incomplete, with the counts of what is
        missing (the records lost in the gap, the refusal among them) and
        the crash.
        """
        verdict = self.report["verdict"]
        self.assertEqual(verdict["status"], "incomplete")
        self.assertEqual((verdict["lost"], verdict["gaps"], verdict["refused"],
                          verdict["crashes"]), (4, 1, 1, 1))
        self.assertTrue(verdict["text"].startswith("INCOMPLETE: "), verdict["text"])
        text = reportText(self.report, self.verified)
        self.assertIn("VERDICT: INCOMPLETE", text.split("\n")[4])
        self.assertIn("lost 4 in 1 gap(s), 0 torn; refused audit_unavailable 1; without "
                      "close record 0; crashes 1", text.split("\n")[5])
        self.assertNotIn("INTACT", text)
        page = reportHTML(self.report, self.verified)
        self.assertLess(page.index("Chain INCOMPLETE"), page.index("<section id='period'>"))
        self.assertIn("crashes 1", page)

    def test_period(self) -> None:
        """
        The period runs from the chain's start to its close.
        """
        self.assertEqual(self.report["period"], {"first": "2026-11-01T10:00:00.000000Z",
                                                 "last": "2026-11-01T11:00:00.000000Z"})

    def test_policies(self) -> None:
        """
        The load and the reload are listed with their verdict (as C{check}
        gives it) and the certificate fingerprints; the reload is in force,
        the load superseded.
        """
        policies = self.report["policies"]
        self.assertEqual([(p["event"], p["inForce"]) for p in policies],
                         [("policy.loaded", False), ("policy.reloaded", True)])
        reloaded = policies[1]
        self.assertEqual((reloaded["certificateBefore"], reloaded["certificateAfter"]),
                         ("aa" * 32, "bb" * 32))
        policy = buildPolicy(name="hl7-inbound")
        expected = records.policyReloaded(policy, NOON)["compliance"]
        self.assertEqual((reloaded["compliant"], reloaded["reasons"]),
                         (expected["compliant"], expected["reasons"]))

    def test_rejectedByIdentity(self) -> None:
        """
        The revoked pump retrying every minute leads the rejections by
        identity, with its count, first and last seen, and reason; clients
        without a certificate are listed as such.
        """
        rejected = self.report["rejectedByIdentity"]
        self.assertEqual(
            {k: rejected[0][k] for k in ("identity", "count", "first", "last", "reasons")},
            {"identity": "CN=PUMP-0042", "count": 60, "first": "2026-11-01T10:00:30.000000Z",
             "last": "2026-11-01T10:59:30.000000Z", "reasons": {"revoked": 60}})
        self.assertEqual(rejected[1]["identity"], "(no certificate)")
        self.assertEqual(rejected[1]["peers"], {"203.0.113.9": 4})
        reasons = {r["reason"]: r for r in self.report["rejectionReasons"]}
        self.assertEqual(reasons["handshake_timeout"]["count"], 4)
        self.assertEqual(reasons["revoked"]["identities"], {"CN=PUMP-0042": 60})

    def test_acceptedPeers(self) -> None:
        """
        Accepted peers are listed by readable identity, least recently
        seen first: the device that stopped connecting comes first, with
        its last seen time.
        """
        peers = self.report["acceptedPeers"]
        self.assertEqual(peers[0]["identity"], "serialNumber=dev5, CN=dev5")
        self.assertEqual(peers[0]["last"], "2026-11-01T10:20:05.000000Z")
        self.assertGreater(peers[0]["quietSeconds"], 39 * 60)
        self.assertEqual(len(peers), 6)
        self.assertNotIn("2.5.4.5", json.dumps(self.report))

    def test_timeline(self) -> None:
        """
        An hour is counted per minute; the trail's events (start, loads,
        gap, crash, reload, checkpoints, close) are on the same axis.
        """
        timeline = self.report["timeline"]
        self.assertEqual(timeline["interval"], "minute")
        self.assertEqual(len(timeline["buckets"]), 61)
        self.assertEqual(sum(b["rejected"] for b in timeline["buckets"]), 64)
        self.assertEqual(sum(b["accepted"] for b in timeline["buckets"]),
                         self.report["accepted"])
        events = [e["event"] for e in self.report["trail"]]
        for event in ("chain.started", "policy.loaded", "revocation.crl_loaded",
                      "chain.gap", "chain.resumed", "policy.reloaded",
                      "revocation.crl_refused", "chain.checkpoint", "chain.closed"):
            self.assertIn(event, events)
        crash = [e for e in self.report["trail"] if e["event"] == "chain.resumed"]
        self.assertEqual(len(crash), 1)
        self.assertTrue(crash[0]["attention"])

    def test_jsonHasEverySection(self) -> None:
        """
        C{audit report --json} has every section of the HTML page, and
        the text has every section's title.
        """
        status, out = _cli("audit", "report", "--json", self.path)
        self.assertEqual(status, 3, out)
        report = json.loads(out)
        for key, _ in SECTIONS:
            self.assertIn(key, report)
        text = reportText(self.report, self.verified)
        page = reportHTML(self.report, self.verified)
        for key, title in SECTIONS:
            self.assertIn(title + ":", text)
            self.assertIn(f"<section id='{key}'>", page)

    def test_selfContained(self) -> None:
        """
        The page loads nothing from anywhere: no script, no link, no source,
        no URL in its style; and it has a print style sheet.
        """
        page = reportHTML(self.report, self.verified).lower()
        for fetching in ("<script", "<link", "src=", "href=", "url(", "@import", "<img"):
            self.assertNotIn(fetching, page)
        self.assertIn("@media print", page)
        self.assertIn("<svg", page)

    def test_identifiersOnly(self) -> None:
        """
        The report names peers by identity, reason and address; a
        connection's free-text detail is not copied into it.
        """
        page = reportHTML(self.report, self.verified)
        text = reportText(self.report, self.verified)
        for rendered in (page, text, json.dumps(self.report)):
            self.assertNotIn("x-unique-detail", rendered)
        self.assertIn("serialNumber=dev1, CN=dev1", page)
        self.assertIn("serialNumber=dev1, CN=dev1", text)


class NodesTests(SynchronousTestCase):
    """
    Rotated files are one node; different files (a worker's, another
    host's) are a section each.
    """

    def test_nodeName(self) -> None:
        """
        The suffix rotation adds is not part of the node's name; a worker's
        file is a node of its own.
        """
        self.assertEqual(nodeName("/l/audit.jsonl.20261101T000000Z"), "/l/audit.jsonl")
        self.assertEqual(nodeName("/l/audit.jsonl.20261101T000000Z-2"), "/l/audit.jsonl")
        self.assertEqual(nodeName("/l/audit.jsonl.worker-1"), "/l/audit.jsonl.worker-1")
        self.assertEqual(groupNodes(["a.jsonl", "b.jsonl", "a.jsonl.20261101T000000Z"]),
                         [("a.jsonl", ("a.jsonl", "a.jsonl.20261101T000000Z")),
                          ("b.jsonl", ("b.jsonl",))])

    def test_rotatedSet(self) -> None:
        """
        A rotated set is verified as one chain and reported as one node.
        """
        path = os.path.join(_directory(self), "audit.jsonl")
        trail = _Trail(self, path, maxBytes=4096)
        for i in range(40):
            trail.accept(i * 60, _device(i % 3))
        trail.close(3000)
        files = sorted(os.listdir(os.path.dirname(path)))
        self.assertGreater(len(files), 2)
        status, out = _cli("audit", "report", "--json",
                           *[os.path.join(os.path.dirname(path), f) for f in files])
        self.assertEqual(status, 0, out)
        report = json.loads(out)
        self.assertEqual([n["node"] for n in report["nodes"]], [path])
        self.assertEqual(len(report["nodes"][0]["files"]), len(files))
        self.assertEqual(report["verdict"]["status"], "complete")
        self.assertIn("chain.rotated", [e["event"] for e in report["trail"]])
        self.assertEqual(report["accepted"], 40)

    def test_manyNodes(self) -> None:
        """
        Two nodes' files: a section each, the verdict over both (one
        incomplete makes the whole incomplete), the facts of both together.
        """
        directory = _directory(self)
        first = os.path.join(directory, "audit.jsonl.worker-0")
        second = os.path.join(directory, "audit.jsonl.worker-1")
        one = _Trail(self, first)
        one.accept(10, _device(1))
        one.close(60)
        _dayWithACrash(self, second)
        status, out = _cli("audit", "report", "--json", first, second)
        self.assertEqual(status, 3, out)
        report = json.loads(out)
        self.assertEqual([(n["node"], n["verdict"]["status"]) for n in report["nodes"]],
                         [(first, "complete"), (second, "incomplete")])
        self.assertEqual(report["verdict"]["status"], "incomplete")
        self.assertEqual(report["verdict"]["nodes"], 2)
        self.assertEqual({e["node"] for e in report["trail"]}, {first, second})
        status, text = _cli("audit", "report", first, second)
        self.assertIn(f"node {first}: COMPLETE", text)
        self.assertIn(f"node {second}: INCOMPLETE", text)

    def test_anchorNeedsOneNode(self) -> None:
        """
        An anchored head belongs to one chain: with two nodes' files it is
        a usage error.
        """
        directory = _directory(self)
        paths = []
        for name in ("a.jsonl", "b.jsonl"):
            trail = _Trail(self, os.path.join(directory, name))
            trail.close(1)
            paths.append(trail.path)
        status, out = _cli("audit", "report", "--expect-head", "ab" * 32, *paths)
        self.assertEqual(status, 2)

    def test_htmlUnwritable(self) -> None:
        """
        An C{--html} file that cannot be written is one line on standard
        error and exit status 1.
        """
        path = os.path.join(_directory(self), "audit.jsonl")
        _Trail(self, path).close(1)
        page = os.path.join(path + ".missing", "report.html")
        status, out = _cli("audit", "report", "--html", page, path)
        self.assertEqual(status, 1, out)
        self.assertFalse(os.path.exists(page))

    def test_broken(self) -> None:
        """
        A broken chain's verdict names the file and line.
        """
        path = os.path.join(_directory(self), "audit.jsonl")
        trail = _Trail(self, path)
        for i in range(5):
            trail.accept(i, _device(i))
        trail.close(10)
        with open(path, "rb") as f:
            lines = f.readlines()
        del lines[3]
        with open(path, "wb") as f:
            f.writelines(lines)
        status, out = _cli("audit", "report", "--json", path)
        self.assertEqual(status, 1)
        verdict = json.loads(out)["verdict"]
        self.assertEqual(verdict["brokenAt"], f"{path}:4")
        self.assertTrue(verdict["text"].startswith(f"BROKEN at {path}:4"), verdict["text"])


def _chromium(html: str, directory: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """
    Run headless Chromium on the page C{html} (a file in C{directory}),
    with a profile of its own and nothing fetched in the background.
    """
    if CHROMIUM is None:
        raise SkipTest("chromium is not installed (Debian: apt-get install chromium)")
    profile = tempfile.mkdtemp(dir=directory)
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}",
         *arguments, html],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False)


class ChromiumTests(SynchronousTestCase):
    """
    Headless Chromium renders the page: it loads, logs no console error,
    and every section is in the document it builds.
    """

    def setUp(self) -> None:
        self.directory = _directory(self)
        self.path = os.path.join(self.directory, "audit.jsonl")
        _dayWithACrash(self, self.path)
        self.page = os.path.join(self.directory, "report.html")
        status, out = _cli("audit", "report", self.path, "--html", self.page)
        self.assertEqual(status, 3, out)

    def test_dumpDOM(self) -> None:
        """
        The DOM Chromium built has every section, the banner and the
        timeline; no console message was logged.
        """
        done = _chromium(self.page, self.directory, "--dump-dom")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        for key, _title in SECTIONS:
            self.assertIn(f'<section id="{key}">', done.stdout)
        self.assertIn("Chain INCOMPLETE", done.stdout)
        self.assertIn("<svg", done.stdout)
        self.assertNotIn("CONSOLE", done.stderr)

    def test_screenshot(self) -> None:
        """
        Chromium draws the page into a PNG.
        """
        png = os.path.join(self.directory, "report.png")
        done = _chromium(self.page, self.directory, f"--screenshot={png}",
                         "--window-size=1100,2400", "--hide-scrollbars")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        keep = os.environ.get("SECURETCP_REPORT_PNG")  # to look at it
        if keep:
            shutil.copy(png, keep)

    def test_printToPDF(self) -> None:
        """
        Chromium prints the page to PDF (with its print style sheet).
        """
        pdf = os.path.join(self.directory, "report.pdf")
        done = _chromium(self.page, self.directory, f"--print-to-pdf={pdf}",
                         "--no-pdf-header-footer")
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        with open(pdf, "rb") as f:
            self.assertEqual(f.read(5), b"%PDF-")
        self.assertGreater(os.path.getsize(pdf), 10000)
