# -*- test-case-name: tests.test_auditrecords -*-
"""
Tests for L{securetcp.audit.records}: the pure builders of every audit
record, and the schema they share.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Dict

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit import records
from securetcp.audit.emitter import FORMATS, WARNING_EVENTS
from securetcp.audit.records import (
    BUILDERS,
    CHAIN_EVENTS,
    EVENTS,
    SCHEMA_VERSION,
    AuditConnection,
    SessionFacts,
)
from securetcp.compliance import connectionCompliance, plaintextCompliance, policyCompliance
from securetcp.compliance.check import BENCHMARKS, checkPolicy
from securetcp.config import buildPolicy
from securetcp.policy import Role

#: The fields every connection record has.
CONNECTION_FIELDS = (
    "schema", "event", "time", "connection", "role", "local", "peer", "proxy", "sni",
    "version", "cipher", "group", "alpn", "resumed", "revocationWarning", "ocsp",
    "peerIdentity", "policy", "profile", "compliance",
)

#: 2026-11-01T10:00:00Z
NOON = 1793527200.0


class _Identity:
    """
    A peer identity that describes itself as L{PeerIdentity} does.
    """

    def asRecord(self) -> Dict[str, Any]:
        return {"subject": "CN=PUMP-0042", "sha256": "ab" * 32}


def _connection(**changes: Any) -> AuditConnection:
    values: Dict[str, Any] = dict(
        connectionId="d2a0ada86907809d", role=Role.SERVER, local="10.20.0.5:6661",
        peer="10.20.3.17:43856", policy="hl7-inbound", profile="nist-800-52r2",
        session=SessionFacts(sni="hl7.example", version="TLSv1.3",
                             cipher="TLS_AES_128_GCM_SHA256", group="secp256r1",
                             resumed=False),
        peerIdentity=_Identity())
    values.update(changes)
    return AuditConnection(**values)


class SchemaTests(SynchronousTestCase):
    """
    One builder per event, one schema version, one text form per event.
    """

    def test_everyEventHasABuilder(self) -> None:
        """
        L{BUILDERS} has exactly one builder for every event of L{EVENTS}
        and L{CHAIN_EVENTS}; every L{EVENTS} entry has a text form, and the
        warning events are events.
        """
        self.assertEqual(set(BUILDERS), set(EVENTS) | set(CHAIN_EVENTS))
        self.assertEqual(set(FORMATS), set(EVENTS))
        self.assertLessEqual(WARNING_EVENTS, set(EVENTS))

    def test_builtRecordsCarryEventAndSchema(self) -> None:
        """
        Every builder returns a JSON-ready dict naming its own event, with
        C{schema} L{SCHEMA_VERSION} and the time in ISO 8601 UTC.
        """
        policy = buildPolicy(name="hl7-inbound")
        connection = _connection()
        arguments: Dict[str, Dict[str, Any]] = {
            "connection.accepted": dict(connection=connection),
            "handshake.rejected": dict(connection=connection, reason="unknown_ca",
                                       detail="unknown CA"),
            "connection.closed": dict(connection=connection, duration=1.5, bytesIn=10,
                                      bytesOut=20),
            "connection.revoked": dict(connection=connection, detail="revoked"),
            "policy.loaded": dict(policy=policy, role=Role.SERVER, mutual=True,
                                  endpoint="TCP4ServerEndpoint(port=1)"),
            "policy.reloaded": dict(policy=policy),
            "policy.reload_refused": dict(policy=policy, detail="bad key"),
            "revocation.crl_loaded": dict(policy=policy, files=["ca.crl"], crls=1, revoked=2),
            "revocation.crl_refused": dict(policy=policy, detail="bad", file="ca.crl"),
            "revocation.crl_expired": dict(policy=policy, detail="expired", mode="soft"),
            "revocation.crl_expiring": dict(policy=policy, issuer="CN=Devices CA",
                                            nextUpdate=NOON + 86400, daysLeft=1, threshold=1),
            "certificate.expiring": dict(policy=policy, kind="ca", subject="CN=Devices CA",
                                         notAfter=NOON + 7 * 86400, daysLeft=7, threshold=7),
            "proxy.backend_failed": dict(backend="tcp:127.0.0.1:2575", peer="10.0.0.1:5000",
                                         detail="refused"),
            "chain.started": dict(algorithm="sha256"),
            "chain.resumed": dict(previousSeq=7),
            "chain.rotated": dict(previousFile="audit.jsonl.20261101T000000Z"),
            "chain.gap": dict(lost=3, since=NOON - 1),
            "chain.checkpoint": dict(coversSeq=7, coversHash="ab" * 32, algorithm="ed25519",
                                     keyId="ed25519:0123456789abcdef", signature="00" * 64,
                                     trigger="count"),
            "chain.closed": {},
            "export.dropped": dict(collector="tls://siem.example:6514", dropped=3, firstSeq=10,
                                   lastSeq=12),
        }
        for event, builder in BUILDERS.items():
            record = builder(time=NOON, **arguments[event])
            self.assertEqual(record["event"], event)
            self.assertEqual(record["schema"], SCHEMA_VERSION)
            self.assertEqual(record["time"], "2026-11-01T10:00:00.000000Z")
            self.assertEqual(json.loads(json.dumps(record)), record)

    def test_pure(self) -> None:
        """
        A builder returns equal records for equal arguments, each a fresh
        dict: changing one leaves the next untouched.
        """
        first = records.connectionAccepted(_connection(), NOON)
        first["compliance"]["reasons"].append("changed")
        first["peerIdentity"]["subject"] = "changed"
        second = records.connectionAccepted(_connection(), NOON)
        self.assertEqual(second["compliance"]["reasons"], [])
        self.assertEqual(second["peerIdentity"]["subject"], "CN=PUMP-0042")
        self.assertEqual(second, records.connectionAccepted(_connection(), NOON))

    @given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
    def test_utcTimestamp(self, seconds: float) -> None:
        """
        Times are written as ISO 8601 UTC with microseconds and a C{Z}.
        """
        self.assertRegex(records.utcTimestamp(seconds),
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    @given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
           st.sampled_from([0.0, 5e-7, -5e-7, 4.99e-7, 0.9999995]))
    def test_utcTimestampAsDatetime(self, seconds: float, nudge: float) -> None:
        """
        The text is exactly C{datetime}'s for the same time, microseconds
        rounded as C{datetime.fromtimestamp} rounds them, also when the
        rounding carries into the next second and for times a moment apart
        (the date and time of day are kept from one call to the next).
        """
        for moment in (seconds, seconds + nudge, float(int(seconds)) + nudge):
            expected = datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
            self.assertEqual(records.utcTimestamp(moment), expected)

    def test_addressText(self) -> None:
        """
        Addresses are written C{host:port}, C{[v6]:port} or C{unix:PATH}.
        """
        self.assertEqual(records.addressText(IPv4Address("TCP", "10.0.0.1", 443)),
                         "10.0.0.1:443")
        self.assertEqual(records.addressText(IPv6Address("TCP", "::1", 443)), "[::1]:443")
        self.assertEqual(records.addressText(UNIXAddress(b"/run/s.sock")), "unix:/run/s.sock")
        self.assertIsNone(records.addressText(None))

    def test_localAddressText(self) -> None:
        """
        A local address is written as L{records.addressText} writes it, and
        connections with equal local addresses share one text; an address
        that cannot be a dictionary key, and C{None}, are written as well.
        """
        first = records.localAddressText(IPv4Address("TCP", "10.0.0.1", 443))
        again = records.localAddressText(IPv4Address("TCP", "10.0.0.1", 443))
        self.assertEqual(first, "10.0.0.1:443")
        self.assertIs(again, first)
        self.assertEqual(records.localAddressText(IPv6Address("TCP", "::1", 443)), "[::1]:443")
        self.assertEqual(records.localAddressText(IPv4Address("TCP", "10.0.0.2", 443)),
                         "10.0.0.2:443")

        class Unhashable:
            __hash__ = None  # type: ignore[assignment]
            host, port = "10.0.0.3", 8443

        self.assertEqual(records.localAddressText(Unhashable()),  # type: ignore[arg-type]
                         "10.0.0.3:8443")
        self.assertIsNone(records.localAddressText(None))
        for port in range(200):  # bounded: many addresses do not grow it past its bound
            records.localAddressText(IPv4Address("TCP", "10.0.0.4", port))
        from securetcp.audit import connection
        self.assertLessEqual(len(connection._localTexts), 64)

    def test_newConnectionId(self) -> None:
        """
        Connection ids are 16 hex digits, different each time.
        """
        ids = {records.newConnectionId() for _ in range(50)}
        self.assertEqual(len(ids), 50)
        for connectionId in ids:
            self.assertRegex(connectionId, "^[0-9a-f]{16}$")


class ConnectionRecordTests(SynchronousTestCase):
    """
    The records of one connection: accepted, rejected, closed, revoked.
    """

    def test_accepted(self) -> None:
        """
        C{connection.accepted} has every connection field, the peer's
        identity as it describes itself, and the verdict of
        L{connectionCompliance} on what was negotiated.
        """
        record = records.connectionAccepted(_connection(proxy="10.9.9.9:1000"), NOON)
        self.assertEqual([k for k in CONNECTION_FIELDS if k not in record], [])
        self.assertEqual(
            {k: record[k] for k in ("connection", "role", "local", "peer", "proxy", "sni",
                                    "version", "resumed", "ocsp", "policy", "profile")},
            {"connection": "d2a0ada86907809d", "role": "server", "local": "10.20.0.5:6661",
             "peer": "10.20.3.17:43856", "proxy": "10.9.9.9:1000", "sni": "hl7.example",
             "version": "TLSv1.3", "resumed": False, "ocsp": None, "policy": "hl7-inbound",
             "profile": "nist-800-52r2"})
        self.assertEqual(record["peerIdentity"], _Identity().asRecord())
        self.assertEqual(record["compliance"], connectionCompliance(
            "TLSv1.3", "TLS_AES_128_GCM_SHA256", "secp256r1", False))
        self.assertTrue(record["compliance"]["compliant"])
        self.assertNotIn("plaintext", record)

    def test_legacy(self) -> None:
        """
        A connection under a legacy policy is never compliant.
        """
        record = records.connectionAccepted(_connection(legacy=True), NOON)
        self.assertFalse(record["compliance"]["compliant"])

    def test_plaintext(self) -> None:
        """
        A plaintext connection (permissive mode) says C{plaintext: true}, has
        no session and no identity, and the verdict of
        L{plaintextCompliance}, on its accepted and closed records.
        """
        connection = _connection(session=SessionFacts(), peerIdentity=None, plaintext=True)
        accepted = records.connectionAccepted(connection, NOON)
        closed = records.connectionClosed(connection, NOON + 2.5, 2.5, 5, 7)
        for record in (accepted, closed):
            self.assertIs(record["plaintext"], True)
            self.assertEqual(record["compliance"], plaintextCompliance())
            self.assertEqual((record["version"], record["cipher"], record["peerIdentity"]),
                             (None, None, None))
            self.assertEqual([k for k in CONNECTION_FIELDS if k not in record], [])

    def test_closed(self) -> None:
        """
        C{connection.closed} adds the duration, the bytes each way and why
        it closed (C{None} for a normal close).
        """
        record = records.connectionClosed(_connection(), NOON, 4.991152, 1024, 96)
        self.assertEqual((record["duration"], record["bytesIn"], record["bytesOut"],
                          record["closeReason"]), (4.991152, 1024, 96, None))
        cut = records.connectionClosed(_connection(), NOON, 1, 0, None, closeReason="reset")
        self.assertEqual((cut["closeReason"], cut["bytesOut"]), ("reset", None))

    def test_rejected(self) -> None:
        """
        C{handshake.rejected} has the reason and detail and no compliance
        verdict; a revocation's reason and time are added, nothing else.
        """
        record = records.handshakeRejected(
            _connection(), NOON, "revoked", "certificate revoked",
            revocation={"revocationReason": "keyCompromise",
                        "revocationTime": "2026-10-01T00:00:00+00:00", "other": 1})
        self.assertEqual((record["reason"], record["detail"], record["compliance"]),
                         ("revoked", "certificate revoked", None))
        self.assertEqual(record["revocationReason"], "keyCompromise")
        self.assertIn("revocationTime", record)
        self.assertNotIn("other", record)
        plain = records.handshakeRejected(_connection(), NOON, "unknown_ca", "no")
        self.assertNotIn("revocationReason", plain)

    def test_unknownReason(self) -> None:
        """
        A rejection reason outside the schema is a L{ValueError}.
        """
        self.assertRaises(ValueError, records.handshakeRejected, _connection(), NOON,
                          "made_up", "")

    def test_revoked(self) -> None:
        """
        C{connection.revoked} has the connection's fields, its verdict and
        the detail.
        """
        record = records.connectionRevoked(_connection(), NOON, "a reloaded CRL revokes it")
        self.assertEqual(record["detail"], "a reloaded CRL revokes it")
        self.assertTrue(record["compliance"]["compliant"])
        self.assertEqual(record["connection"], "d2a0ada86907809d")

    def test_sessionFromMapping(self) -> None:
        """
        L{SessionFacts.fromMapping} takes the keys it knows from a mapping
        and leaves the others.
        """
        facts = SessionFacts.fromMapping({"version": "TLSv1.2", "cipher": "X", "extra": 1})
        self.assertEqual(facts, SessionFacts(version="TLSv1.2", cipher="X"))


class PolicyRecordTests(SynchronousTestCase):
    """
    The records about the policy in force and its revocation data.
    """

    def test_loaded(self) -> None:
        """
        C{policy.loaded} states the policy: versions, suites, client
        authentication, and the verdict of L{policyCompliance}.
        """
        # a policy that passes check: it names its CAs and CRL
        policy = buildPolicy(name="hl7-inbound", clientAuth="required",
                             caCerts="/etc/securetcp/ca.pem", crl="/etc/securetcp/ca.crl")
        record = records.policyLoaded(policy, Role.SERVER, True,
                                      "TCP4ServerEndpoint(port=6661, interface=*)", NOON)
        self.assertEqual(record, {
            "event": "policy.loaded", "time": "2026-11-01T10:00:00.000000Z",
            "role": "server", "policy": "hl7-inbound", "profile": "nist-800-52r2",
            "endpoint": "TCP4ServerEndpoint(port=6661, interface=*)", "mutual": True,
            "minVersion": "TLSv1.2", "maxVersion": "TLSv1.3",
            "ciphers": list(policy.ciphers.tls12), "ciphersuites": list(policy.ciphers.tls13),
            "clientAuth": "required",
            "compliance": {"profile": "nist-800-52r2", "compliant": True, "reasons": []},
            "schema": 1})

    def test_loadedNotCompliant(self) -> None:
        """
        A policy beyond C{nist-800-52r2} says which profile it came from,
        then every item of C{check}'s checklist that fails, as C{"ID:
        REASON"}.
        """
        policy = buildPolicy(profile="mozilla-intermediate")
        record = records.policyLoaded(policy, Role.SERVER, False, "x", NOON)
        failing = [f"{i.id}: {i.reason}" for i in checkPolicy(
            policy, Role.SERVER, BENCHMARKS["nist-800-52r2"]) if i.status == "fail"]
        self.assertTrue(failing)
        self.assertEqual(record["compliance"], {
            "profile": "nist-800-52r2", "compliant": False,
            "reasons": policyCompliance(policy)["reasons"] + failing})
        self.assertEqual(record["compliance"]["reasons"][0],
                         "policy from profile mozilla-intermediate goes beyond nist-800-52r2")

    def test_loadedSameVerdictAsCheck(self) -> None:
        """
        C{policy.loaded} and C{check} give one verdict: an C{mtls:} server
        policy that checks no revocation fails C{check}'s C{revocation}
        item, and so is not compliant in C{policy.loaded}, which names it.
        """
        policy = buildPolicy(clientAuth="required", caCerts="/etc/securetcp/ca.pem")
        items = checkPolicy(policy, Role.SERVER, BENCHMARKS["nist-800-52r2"])
        self.assertEqual([i.id for i in items if i.status == "fail"], ["revocation"])
        record = records.policyLoaded(policy, Role.SERVER, True, "x", NOON)
        self.assertFalse(record["compliance"]["compliant"])
        [reason] = record["compliance"]["reasons"]
        self.assertTrue(reason.startswith("revocation: "), reason)

    def test_reloaded(self) -> None:
        """
        C{policy.reloaded} names the policy, its verdict, what changed and
        the certificate's fingerprints before and after.
        """
        policy = buildPolicy(name="hl7-inbound")
        record = records.policyReloaded(policy, NOON, changed=("certificate", "key"),
                                        certificateBefore="aa" * 32,
                                        certificateAfter="bb" * 32)
        self.assertEqual(
            {k: record[k] for k in ("role", "policy", "profile", "changed",
                                    "certificateBefore", "certificateAfter")},
            {"role": "server", "policy": "hl7-inbound", "profile": "nist-800-52r2",
             "changed": ["certificate", "key"], "certificateBefore": "aa" * 32,
             "certificateAfter": "bb" * 32})
        self.assertEqual(record["compliance"], policyCompliance(policy))
        unknown = records.policyReloaded(policy, NOON)
        self.assertEqual((unknown["changed"], unknown["certificateAfter"]), (None, None))

    def test_reloadRefused(self) -> None:
        """
        C{policy.reload_refused} names the running policy and why.
        """
        record = records.policyReloadRefused(buildPolicy(name="p"), "key.pem: not a key", NOON)
        self.assertEqual((record["role"], record["policy"], record["detail"]),
                         ("server", "p", "key.pem: not a key"))

    def test_crlRecords(self) -> None:
        """
        The CRL records carry the policy's names and their own facts.
        """
        policy = buildPolicy(name="p")
        loaded = records.crlLoaded(policy, ("a.crl", "b.crl"), 2, 5, NOON)
        self.assertEqual((loaded["files"], loaded["crls"], loaded["revoked"], loaded["policy"]),
                         (["a.crl", "b.crl"], 2, 5, "p"))
        refused = records.crlRefused(policy, "bad signature", "b.crl", NOON)
        self.assertEqual((refused["detail"], refused["file"]), ("bad signature", "b.crl"))
        expired = records.crlExpired(policy, "a.crl expired", "hard", NOON)
        self.assertEqual((expired["detail"], expired["mode"]), ("a.crl expired", "hard"))

    def test_backendFailed(self) -> None:
        """
        C{proxy.backend_failed} names the backend, the peer, what failed
        and the connection's id.
        """
        record = records.backendFailed("tcp:127.0.0.1:2575", "10.0.0.1:5000",
                                       "Connection refused", NOON, connectionId="ab" * 8)
        self.assertEqual(
            {k: record[k] for k in ("backend", "peer", "detail", "connection")},
            {"backend": "tcp:127.0.0.1:2575", "peer": "10.0.0.1:5000",
             "detail": "Connection refused", "connection": "ab" * 8})


class ChainRecordTests(SynchronousTestCase):
    """
    The records the audit file adds itself.
    """

    def test_resumed(self) -> None:
        """
        C{chain.resumed} says C{restart}, or C{torn_record} with the torn
        bytes and where they went.
        """
        restart = records.chainResumed(NOON, 41)
        self.assertEqual((restart["reason"], restart["previousSeq"]), ("restart", 41))
        self.assertNotIn("tornBytes", restart)
        torn = records.chainResumed(NOON, 41, 17, "audit.jsonl.torn-1")
        self.assertEqual((torn["reason"], torn["tornBytes"], torn["tornFile"]),
                         ("torn_record", 17, "audit.jsonl.torn-1"))

    def test_gap(self) -> None:
        """
        C{chain.gap} counts the lost records and says since when.
        """
        gap = records.chainGap(NOON, 3, NOON - 60)
        self.assertEqual((gap["lost"], gap["since"]), (3, "2026-11-01T09:59:00.000000Z"))
        self.assertIsNone(records.chainGap(NOON, 0, None)["since"])
