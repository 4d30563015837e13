"""
Tests for L{securetcp.audit.atna}: IHE ATNA audit messages (DICOM PS3.15
A.5) from sealed audit records, validated against the standard's schema by
Debian's C{jing}.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp.audit import records
from securetcp.audit.atna import ATNA_EVENTS, atnaMessage
from securetcp.audit.chain import ZERO_HASH, seal
from securetcp.audit.connection import AuditConnection, SessionFacts
from securetcp.config import buildPolicy
from securetcp.identity import PeerIdentity
from securetcp.policy import Role

from ._jing import validateAudit

NOON = 1793527200.0  # 2026-11-01T10:00:00Z


def sealed(record: Dict[str, Any], seq: int = 7, prev: str = ZERO_HASH) -> Dict[str, Any]:
    """
    C{record} as its line in an audit file reads back: sealed, then parsed.
    """
    line, _ = seal(record, seq, prev)
    parsed: Dict[str, Any] = json.loads(line)
    return parsed


def connection(role: Role = Role.SERVER, peer: Optional[str] = "10.0.3.17:43856",
               local: Optional[str] = "10.0.0.5:6661",
               identity: Optional[PeerIdentity] = None) -> AuditConnection:
    """
    A connection as its records describe it.
    """
    return AuditConnection(connectionId="0123456789abcdef", role=role, local=local,
                           peer=peer, policy="hl7-inbound", profile="nist-800-52r2",
                           session=SessionFacts(version="TLSv1.3", sni="gw.example"),
                           peerIdentity=identity)


MODALITY = PeerIdentity(subject="CN=modality-7,O=Radiology", dns=("modality-7.example",),
                        serial="1f", issuer="CN=Hospital CA", sha256="ab" * 32,
                        notAfter="2027-01-01T00:00:00Z")


def everyEvent() -> Dict[str, Dict[str, Any]]:
    """
    One record of every event of the audit schema, from its builder.
    """
    policy = buildPolicy(name="hl7-inbound", clientAuth="required")
    conn = connection(identity=MODALITY)
    return {
        "connection.accepted": records.connectionAccepted(conn, NOON),
        "handshake.rejected": records.handshakeRejected(conn, NOON, "unknown_ca", "no CA"),
        "connection.closed": records.connectionClosed(conn, NOON, 1.5, 10, 20),
        "connection.revoked": records.connectionRevoked(conn, NOON, "serial 1f revoked"),
        "policy.loaded": records.policyLoaded(policy, Role.SERVER, True, "tcp:6661", NOON),
        "policy.reloaded": records.policyReloaded(policy, NOON, changed=["certificate"],
                                                  certificateBefore="aa" * 32,
                                                  certificateAfter="bb" * 32),
        "policy.reload_refused": records.policyReloadRefused(policy, "bad key", NOON),
        "revocation.crl_loaded": records.crlLoaded(policy, ["ca.crl"], 1, 3, NOON),
        "revocation.crl_refused": records.crlRefused(policy, "bad CRL", "ca.crl", NOON),
        "revocation.crl_expired": records.crlExpired(policy, "expired", "hard", NOON),
        "revocation.crl_expiring": records.crlExpiring(policy, "CN=CA", NOON, 3, 7, NOON),
        "certificate.expiring": records.certificateExpiring(policy, "certificate", "CN=gw",
                                                            NOON, 3, 30, NOON),
        "proxy.backend_failed": records.backendFailed("tcp:127.0.0.1:6000", None, "refused",
                                                      NOON),
        "chain.started": records.chainStarted(NOON, "sha256"),
        "chain.resumed": records.chainResumed(NOON, 41, clean=False),
        "chain.checkpoint": records.chainCheckpoint(NOON, 6, "cd" * 32, "ed25519", "k1",
                                                    "ef" * 64, "count"),
        "chain.closed": records.chainClosed(NOON),
        "chain.rotated": records.chainRotated(NOON, "audit.jsonl.1"),
        "chain.gap": records.chainGap(NOON, 5, NOON - 60, refused=2),
        # as the audit export writes it (records.exportDropped)
        "export.dropped": {"event": "export.dropped", "time": "2026-11-01T10:00:00.000000Z",
                           "collector": "tls://collector.example:6514", "dropped": 3,
                           "firstSeq": 40, "lastSeq": 42, "schema": 1},
    }


def parse(document: Optional[str]) -> ET.Element:
    """
    The C{AuditMessage} element of a document that must exist.
    """
    assert document is not None
    return ET.fromstring(document.encode("utf-8"))


def detail(element: ET.Element, kind: str) -> str:
    """
    The decoded value of the ParticipantObjectDetail C{kind} under C{element}.
    """
    import base64

    [found] = [d for d in element.iter("ParticipantObjectDetail") if d.get("type") == kind]
    return base64.b64decode(found.get("value", "")).decode("utf-8")


def codes(element: ET.Element, tag: str) -> List[str]:
    """
    The csd-code of every C{tag} element under C{element}.
    """
    return [e.get("csd-code", "") for e in element.iter(tag)]


class EventCoverageTests(SynchronousTestCase):
    """
    Every event of the audit schema has a decision: a message or none.
    """

    def test_everyEventDecided(self) -> None:
        """
        L{ATNA_EVENTS} names every event of the audit schema and the audit
        file, so a new event cannot slip through without a decision.
        """
        schema = set(records.EVENTS) | set(records.CHAIN_EVENTS)
        self.assertEqual(schema - set(ATNA_EVENTS), set())
        # the audit export's own event, decided here before it joins the schema
        self.assertEqual(set(ATNA_EVENTS) - schema - {"export.dropped"}, set())
        self.assertEqual(set(everyEvent()), set(ATNA_EVENTS))

    def test_messageOrNone(self) -> None:
        """
        L{atnaMessage} returns a message exactly for the events
        L{ATNA_EVENTS} maps, with the EventID it names, and C{None} for the
        others.
        """
        for event, record in everyEvent().items():
            document = atnaMessage(sealed(record), sourceId="gw-1")
            expected = ATNA_EVENTS[event]
            if expected is None:
                self.assertIsNone(document, event)
                continue
            message = parse(document)
            [eventId] = codes(message, "EventID")
            self.assertIn(f"({eventId})", expected, event)
            [typeCode] = codes(message, "EventTypeCode")
            self.assertIn(f"({typeCode})", expected, event)


# text the records could carry, XML markup and characters XML cannot hold included
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_address = st.one_of(
    st.none(),
    st.builds(lambda a, p: f"{a}:{p}", st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
    st.builds(lambda a, p: f"[{a}]:{p}", st.ip_addresses(v=6).map(str), st.integers(0, 65535)),
    st.builds(lambda n: f"unix:{n}", _text),
    st.builds(lambda h, p: f"{h}:{p}", st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
              st.integers(0, 65535)),
)
_identity = st.one_of(st.none(), st.builds(
    PeerIdentity, subject=_text, dns=st.lists(_text, max_size=2).map(tuple),
    uri=st.lists(_text, max_size=1).map(tuple), serial=_text, issuer=_text,
    sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True)))


@st.composite
def _records(draw: Any, event: Optional[str] = None) -> Dict[str, Any]:
    """
    A sealed record of an event ATNA maps (C{event}, or any), with
    generated field values.
    """
    policy = buildPolicy(name="hl7-inbound", clientAuth="required")
    time = draw(st.floats(0, 4102444800, allow_nan=False))
    conn = AuditConnection(
        connectionId=draw(_text), role=draw(st.sampled_from(list(Role))),
        local=draw(_address), peer=draw(_address), proxy=draw(_address),
        policy="hl7-inbound", profile="nist-800-52r2", peerIdentity=draw(_identity),
        session=SessionFacts(sni=draw(st.none() | _text), version="TLSv1.2"))
    event = event or draw(st.sampled_from(sorted(e for e, m in ATNA_EVENTS.items() if m)))
    text = draw(_text)
    record = {
        "handshake.rejected": lambda: records.handshakeRejected(
            conn, time, draw(st.sampled_from(sorted(records.REJECTION_REASONS))), text,
            {"revocationReason": draw(_text)}),
        "connection.revoked": lambda: records.connectionRevoked(conn, time, text),
        "policy.loaded": lambda: records.policyLoaded(
            policy, draw(st.sampled_from(list(Role))), draw(st.booleans()), text, time),
        "policy.reloaded": lambda: records.policyReloaded(
            policy, time, changed=draw(st.none() | st.lists(_text, max_size=3)),
            certificateBefore=draw(st.none() | _text), certificateAfter=text),
        "policy.reload_refused": lambda: records.policyReloadRefused(policy, text, time),
        "revocation.crl_loaded": lambda: records.crlLoaded(
            policy, draw(st.lists(_text, max_size=3)), 1, draw(st.integers(0, 10**6)), time),
        "revocation.crl_refused": lambda: records.crlRefused(
            policy, text, draw(st.none() | _text), time),
        "chain.gap": lambda: records.chainGap(time, draw(st.integers(0, 10**9)),
                                              draw(st.none() | st.just(time)),
                                              draw(st.integers(0, 10))),
        "chain.started": lambda: records.chainStarted(time, draw(st.sampled_from(
            ["sha256", "hmac-sha256"]))),
        "chain.resumed": lambda: records.chainResumed(
            time, draw(st.integers(0, 10**9)), draw(st.none() | st.integers(1, 99)), text,
            clean=draw(st.booleans())),
        "chain.closed": lambda: records.chainClosed(time),
        "export.dropped": lambda: {"event": "export.dropped", "time": records.utcTimestamp(time),
                                   "collector": text, "dropped": draw(st.integers(1, 10**6)),
                                   "firstSeq": 1, "lastSeq": 2},
    }[event]()
    return sealed(record, seq=draw(st.integers(0, 2**53)),
                  prev=draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)))


class SchemaTests(SynchronousTestCase):
    """
    Every message validates against the schema of DICOM PS3.15 A.5.1.1,
    checked by an independent validator (C{jing}).
    """

    def test_generatedRecordsValidate(self) -> None:
        """
        Messages for generated records of every mapped event, with any text
        in their fields (markup, control characters, any script), are valid
        audit messages: one C{jing} run validates them all.
        """
        documents: List[str] = []
        seen = set()

        def collect(record: Dict[str, Any], site: Optional[str], source: str) -> None:
            document = atnaMessage(record, sourceId=source, siteId=site)
            assert document is not None
            # one line, whatever the record holds
            assert "\n" not in document and "\r" not in document
            parse(document)
            seen.add(record["event"])
            documents.append(document)

        # every mapped event gets its share of examples (a draw among all
        # of them leaves some events out, depending on the seed)
        mapped = sorted(e for e, m in ATNA_EVENTS.items() if m)
        for event in mapped:
            settings(max_examples=max(200 // len(mapped), 10))(
                given(_records(event), st.one_of(st.none(), _text),
                      _text.filter(lambda t: bool(t.strip())))(collect))()
        documents.extend(m for m in (atnaMessage(sealed(r), sourceId="gw-1", siteId="site")
                                     for r in everyEvent().values()) if m is not None)
        self.assertEqual(seen, {e for e, m in ATNA_EVENTS.items() if m})
        self.assertGreater(len(documents), 150)
        self.assertEqual(validateAudit(documents), [])

    def test_realAuditFile(self) -> None:
        """
        Every line of an audit file as the writer writes it (its chain
        records included: started, checkpoint-free closed, resumed after a
        restart) gives a valid message or none, as L{ATNA_EVENTS} says.
        """
        from securetcp.audit.writer import AuditLogObserver

        path = self.mktemp()
        for _ in range(2):  # started ... closed, then resumed ... closed
            writer = AuditLogObserver(path, fsync="off", now=lambda: NOON)
            self.addCleanup(writer.close)
            for record in everyEvent().values():
                if not record["event"].startswith("chain."):
                    writer.write(record)
            writer.close()
        with open(path, "rb") as f:
            lines = [json.loads(line) for line in f]
        messages = [(r["event"], atnaMessage(r, sourceId="gw-1")) for r in lines]
        for event, message in messages:
            self.assertEqual(message is None, ATNA_EVENTS[event] is None, event)
        self.assertEqual({e for e, m in messages if m is not None},
                         {e for e, m in ATNA_EVENTS.items() if m} - {"chain.gap"})
        self.assertEqual(validateAudit([m for _, m in messages if m is not None]), [])

    def test_validatorRejects(self) -> None:
        """
        The validator is not a formality: a message without its
        AuditSourceIdentification, or with an outcome the schema does not
        know, is refused.
        """
        document = atnaMessage(sealed(everyEvent()["handshake.rejected"]), sourceId="gw-1")
        assert document is not None
        start = document.index("<AuditSourceIdentification")
        end = document.index("</AuditSourceIdentification>") + len(
            "</AuditSourceIdentification>")
        problems = validateAudit([document[:start] + document[end:],
                                  document.replace('EventOutcomeIndicator="4"',
                                                   'EventOutcomeIndicator="5"')])
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("AuditSourceIdentification", problems[0])
        self.assertIn("EventOutcomeIndicator", problems[1])


def participants(message: ET.Element) -> List[ET.Element]:
    """
    The ActiveParticipant elements of a message.
    """
    return list(message.iter("ActiveParticipant"))


class FieldTests(SynchronousTestCase):
    """
    Where each field of a message comes from (docs/atna.md states it).
    """

    def test_refusedHandshake(self) -> None:
        """
        A refused handshake on a server is a Security Alert (110113) of
        type Node Authentication (110126), a minor failure (4) described by
        its reason and detail; securetcp is the destination (110152), not
        the requestor, at its local IP address (type 2); the peer is the
        requestor and source (110153), named by its certificate subject and
        first subjectAltName, at its IP address; the alert subject is the
        peer node with its certificate's fingerprint.
        """
        record = sealed(everyEvent()["handshake.rejected"], seq=42)
        message = parse(atnaMessage(record, sourceId="gw-1", siteId="St. Elsewhere"))
        event = message.find("EventIdentification")
        assert event is not None
        self.assertEqual((event.get("EventActionCode"), event.get("EventOutcomeIndicator"),
                          event.get("EventDateTime")),
                         ("E", "4", "2026-11-01T10:00:00.000000Z"))
        self.assertEqual(codes(event, "EventID"), ["110113"])
        self.assertEqual(codes(event, "EventTypeCode"), ["110126"])
        self.assertEqual(event.findtext("EventOutcomeDescription"), "unknown_ca: no CA")
        ours, peer = participants(message)
        self.assertEqual(
            (ours.get("UserID"), ours.get("UserIsRequestor"), ours.get("NetworkAccessPointID"),
             ours.get("NetworkAccessPointTypeCode"), codes(ours, "RoleIDCode")),
            ("securetcp", "false", "10.0.0.5", "2", ["110152"]))
        self.assertEqual(
            (peer.get("UserID"), peer.get("AlternativeUserID"), peer.get("UserIsRequestor"),
             peer.get("NetworkAccessPointID"), peer.get("NetworkAccessPointTypeCode"),
             codes(peer, "RoleIDCode")),
            ("CN=modality-7,O=Radiology", "modality-7.example", "true", "10.0.3.17", "2",
             ["110153"]))
        source = message.find("AuditSourceIdentification")
        assert source is not None
        self.assertEqual((source.get("AuditSourceID"), source.get("AuditEnterpriseSiteID"),
                          codes(source, "AuditSourceTypeCode")),
                         ("gw-1", "St. Elsewhere", ["4"]))
        subject, policy, chained = message.iter("ParticipantObjectIdentification")
        self.assertEqual((codes(policy, "ParticipantObjectIDTypeCode"),
                          policy.get("ParticipantObjectID"), detail(policy, "profile")),
                         (["policy"], "hl7-inbound", "nist-800-52r2"))
        self.assertEqual(codes(subject, "ParticipantObjectIDTypeCode"), ["110182"])
        self.assertEqual(subject.get("ParticipantObjectID"), "10.0.3.17")
        self.assertEqual(detail(subject, "sha256"), "ab" * 32)
        self.assertEqual(detail(subject, "Alert Description"), "unknown_ca: no CA")
        self.assertEqual(chained.get("ParticipantObjectID"), record["hash"])
        self.assertEqual((detail(chained, "seq"), detail(chained, "hash"),
                          detail(chained, "prev"), detail(chained, "event")),
                         ("42", record["hash"], ZERO_HASH, "handshake.rejected"))

    def test_refusedLaterMessage(self) -> None:
        """
        An accepted connection closed because a later message of its
        identity binding was refused (C{connection.closed} with C{refused})
        is a Node Authentication alert too, described by the message's
        number, reason and detail; a normal close is no message.
        """
        conn = connection()
        refused = records.connectionClosed(
            conn, NOON, 1.5, 10, 20, closeReason="protocol_identity_mismatch: x",
            refused={"reason": "protocol_identity_mismatch", "message": 2,
                     "detail": "hl7SendingFacility 'WARD9' is not allowed",
                     "claims": {"hl7SendingFacility": "WARD9"}})
        message = parse(atnaMessage(sealed(refused), sourceId="gw-1"))
        event = message.find("EventIdentification")
        assert event is not None
        self.assertEqual((codes(event, "EventID"), codes(event, "EventTypeCode"),
                          event.get("EventOutcomeIndicator")), (["110113"], ["110126"], "4"))
        self.assertEqual(event.findtext("EventOutcomeDescription"),
                         "connection closed, message 2 refused: protocol_identity_mismatch: "
                         "hl7SendingFacility 'WARD9' is not allowed")
        self.assertIsNone(atnaMessage(sealed(records.connectionClosed(conn, NOON, 1.5, 10, 20)),
                                      sourceId="gw-1"))
        document = atnaMessage(sealed(refused), sourceId="gw-1")
        assert document is not None
        self.assertEqual(validateAudit([document]), [])

    def test_clientSide(self) -> None:
        """
        When securetcp connected (client role) it is the requestor and the
        source, the peer the destination; a peer without a certificate is
        named by its address, and a host name is a machine-name access
        point (type 1); no site ID, no AuditEnterpriseSiteID.
        """
        conn = connection(role=Role.CLIENT, peer="ris.example:2575", local=None)
        record = sealed(records.handshakeRejected(conn, NOON, "hostname_mismatch", "x"))
        message = parse(atnaMessage(record, sourceId="gw-1"))
        ours, peer = participants(message)
        self.assertEqual((ours.get("UserIsRequestor"), codes(ours, "RoleIDCode"),
                          ours.get("NetworkAccessPointID")), ("true", ["110153"], None))
        self.assertEqual((peer.get("UserID"), peer.get("UserIsRequestor"),
                          codes(peer, "RoleIDCode"), peer.get("NetworkAccessPointID"),
                          peer.get("NetworkAccessPointTypeCode")),
                         ("ris.example:2575", "false", ["110152"], "ris.example", "1"))
        source = message.find("AuditSourceIdentification")
        assert source is not None
        self.assertNotIn("AuditEnterpriseSiteID", source.attrib)

    def test_applicationActivity(self) -> None:
        """
        The audit writer's start and stop are Application Activity (110100)
        Start (110120) and Stop (110121), securetcp as the Application
        (110150); a start after a crash is a minor failure (4).
        """
        for record, (typeCode, outcome) in [
                (records.chainStarted(NOON, "sha256"), ("110120", "0")),
                (records.chainResumed(NOON, 3, clean=True), ("110120", "0")),
                (records.chainResumed(NOON, 3, clean=False), ("110120", "4")),
                (records.chainClosed(NOON), ("110121", "0"))]:
            message = parse(atnaMessage(sealed(record), sourceId="gw-1"))
            event = message.find("EventIdentification")
            assert event is not None
            self.assertEqual((codes(event, "EventID"), codes(event, "EventTypeCode"),
                              event.get("EventOutcomeIndicator")),
                             (["110100"], [typeCode], outcome), record["event"])
            [ours] = participants(message)
            self.assertEqual((ours.get("UserIsRequestor"), codes(ours, "RoleIDCode")),
                             ("false", ["110150"]))

    def test_configuration(self) -> None:
        """
        A policy put in force (loaded, reloaded, CRLs loaded) is a Security
        Alert of type Security Configuration (110129), a success; a refused
        reload is a minor failure.  The policy is a participant object (a
        security resource) with what changed, e.g. the certificate's
        fingerprints before and after.
        """
        every = everyEvent()
        for event, outcome in [("policy.loaded", "0"), ("policy.reloaded", "0"),
                               ("revocation.crl_loaded", "0"),
                               ("policy.reload_refused", "4"),
                               ("revocation.crl_refused", "4")]:
            message = parse(atnaMessage(sealed(every[event]), sourceId="gw-1"))
            event_ = message.find("EventIdentification")
            assert event_ is not None
            self.assertEqual((codes(event_, "EventID"), codes(event_, "EventTypeCode"),
                              event_.get("EventOutcomeIndicator")),
                             (["110113"], ["110129"], outcome), event)
            policy = next(message.iter("ParticipantObjectIdentification"))
            self.assertEqual((policy.get("ParticipantObjectID"),
                              policy.get("ParticipantObjectTypeCodeRole")),
                             ("hl7-inbound", "13"))
        reloaded = parse(atnaMessage(sealed(every["policy.reloaded"]), sourceId="gw-1"))
        self.assertEqual((detail(reloaded, "certificateBefore"),
                          detail(reloaded, "certificateAfter")), ("aa" * 32, "bb" * 32))

    def test_exportDropped(self) -> None:
        """
        Records the export could not queue for the collector are a Security
        Alert of type Audit Recording Stopped, a minor failure (they stay
        in the local file), naming them and the collector.
        """
        message = parse(atnaMessage(sealed(everyEvent()["export.dropped"]), sourceId="gw-1"))
        event = message.find("EventIdentification")
        assert event is not None
        self.assertEqual((codes(event, "EventTypeCode"), event.get("EventOutcomeIndicator")),
                         (["110133"], "4"))
        self.assertIn("3 audit record(s) (40..42) not sent to the collector "
                      "tls://collector.example:6514", event.findtext("EventOutcomeDescription")
                      or "")

    def test_auditGap(self) -> None:
        """
        Records lost while the audit file could not be written are a
        Security Alert of type Audit Recording Stopped (110133), a serious
        failure (8), saying how many and since when.
        """
        message = parse(atnaMessage(sealed(everyEvent()["chain.gap"]), sourceId="gw-1"))
        event = message.find("EventIdentification")
        assert event is not None
        self.assertEqual((codes(event, "EventTypeCode"), event.get("EventOutcomeIndicator")),
                         (["110133"], "8"))
        self.assertIn("5 audit record(s) lost since 2026-11-01T09:59:00",
                      event.findtext("EventOutcomeDescription") or "")

    def test_unsafeText(self) -> None:
        """
        Markup, line breaks and characters XML cannot carry in a record's
        text keep the document well-formed and on one line.
        """
        conn = connection(identity=PeerIdentity(subject='CN=<x> & "y"\x00', sha256="0" * 64))
        record = sealed(records.handshakeRejected(conn, NOON, "bad_certificate",
                                                  "line\nbreak\x1b]0;\x07"))
        document = atnaMessage(record, sourceId="gw\t1")
        assert document is not None
        self.assertNotIn("\n", document)
        message = parse(document)
        _, peer = participants(message)
        self.assertEqual(peer.get("UserID"), 'CN=<x> & "y"\ufffd')
        self.assertEqual(message.findtext("EventIdentification/EventOutcomeDescription"),
                         "bad_certificate: line\nbreak\ufffd]0;\ufffd")

    def test_noSource(self) -> None:
        """
        An empty AuditSourceID is refused: an ARR could not tell the nodes
        apart.
        """
        record = sealed(records.chainClosed(NOON))
        for source in ("", "  "):
            error = self.assertRaises(ValueError, atnaMessage, record, sourceId=source)
            self.assertIn("sourceId", str(error))

    def test_badTime(self) -> None:
        """
        A record whose time is not an ISO 8601 time is refused with a
        ValueError naming the record.
        """
        record = dict(sealed(records.chainClosed(NOON)), time="yesterday")
        error = self.assertRaises(ValueError, atnaMessage, record, sourceId="gw-1")
        self.assertIn("'yesterday'", str(error))


class ConformanceStatementTests(SynchronousTestCase):
    """
    docs/atna.md, the conformance statement, says what the code does.
    """

    def test_everyEventStated(self) -> None:
        """
        Every event has a row of the events table, and a mapped event's row
        names its EventID and EventTypeCode.
        """
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "docs", "atna.md")
        if not os.path.exists(path):
            raise SkipTest(f"{path} is not available (docs are not next to the tests)")
        with open(path, encoding="utf-8") as f:
            rows = [line for line in f if line.startswith("| `")]
        for event, message in ATNA_EVENTS.items():
            [row] = [r for r in rows if f"`{event}`" in r.split("|")[1]]
            if message is None:
                self.assertIn("| none |", row, event)
                continue
            for code in re.findall(r"\((\d{6})\)", message):
                self.assertIn(code, row, event)
