"""
Tests for L{securetcp.compliance.check} (the compliance checklist, a pure function of
values) and for the C{python -m securetcp check} and C{probe} commands that
use it, including C{probe} against our own server in-process and against
C{openssl s_server}.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import socket
import subprocess
import time
import warnings
from typing import Any, List, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from securetcp import Ciphers, Groups, Revocation, TLSPolicy, buildPolicy, serverEndpoint
from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, TLSVersion
from securetcp._cli import main
from securetcp.compliance.check import (
    BENCHMARKS,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    POLICY_JUDGES,
    Attempt,
    CertificateFacts,
    CheckItem,
    ProbeFacts,
    Situation,
    certificateFacts,
    checkNegotiated,
    checkPolicy,
    exitStatus,
    renderText,
)
from securetcp.options import OPTIONS
from securetcp.policy import ClientAuth, PeerVerification, Role, TrustAnchors

from ._net import freePort
from ._pki import TestPKI

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
NIST = BENCHMARKS["nist-800-52r2"]
MODERN = BENCHMARKS["mozilla-modern"]
INTERMEDIATE = BENCHMARKS["mozilla-intermediate"]
OPENSSL = shutil.which("openssl")


def facts(keyType: str = "EC", keyBits: int = 256, curve: Optional[str] = "secp256r1",
          signatureHash: Optional[str] = "sha256", days: int = 90,
          start: datetime.datetime = NOW - DAY) -> CertificateFacts:
    """
    Certificate facts for the pure tests.
    """
    return CertificateFacts("CN=server", "CN=CA", keyType, keyBits, curve, signatureHash,
                            start, start + days * DAY)


def byId(items: Sequence[CheckItem]) -> dict[str, CheckItem]:
    return {i.id: i for i in items}


def serverPolicy(**changes: Any) -> TLSPolicy:
    """
    A NIST server policy with mutual TLS and a hard-fail CRL: everything
    the checklist asks for.
    """
    policy = TLSPolicy.fromProfile(
        "nist-800-52r2",
        trust=TrustAnchors(caFile="ca.pem"),
        peer=PeerVerification(clientAuth=ClientAuth.REQUIRED),
        revocation=Revocation(crlFiles=("devices.crl",)),
    )
    return attrs.evolve(policy, **changes) if changes else policy


def statuses(items: Sequence[CheckItem]) -> dict[str, str]:
    return {i.id: i.status for i in items}


class PolicyChecklistTests(SynchronousTestCase):
    """
    L{checkPolicy} judges each setting of a policy against a benchmark.
    """

    def test_fullyConfiguredServerPasses(self) -> None:
        """
        A NIST server policy with mTLS, a CRL under hard fail and a P-256
        certificate passes every item; OCSP stapling is not applicable
        because it is not available in this version.
        """
        items = checkPolicy(serverPolicy(), Role.SERVER, NIST, facts(), NOW)
        self.assertEqual(exitStatus(items), 0)
        self.assertEqual([i.id for i in items if i.status != PASS], ["ocspStapling"])
        self.assertIn("OCSP", byId(items)["ocspStapling"].reason)

    def test_itemsCoverTheRequirements(self) -> None:
        """
        The checklist has an item for versions, both cipher lists, groups,
        key size, validity, client authentication, revocation,
        renegotiation, compression, stapling and the handshake timeout.
        """
        ids = {i.id for i in checkPolicy(serverPolicy(), Role.SERVER, NIST, facts(), NOW)}
        for wanted in ("versions.minimum", "versions.tls13", "ciphers.tls12", "ciphers.tls13",
                       "groups", "certificate.key", "certificate.validity", "clientAuth",
                       "revocation", "renegotiation", "compression", "ocspStapling",
                       "resumption", "handshakeTimeout"):
            self.assertIn(wanted, ids)

    def test_noCRLFails(self) -> None:
        """
        A server that verifies client certificates without a CRL fails the
        revocation item, naming the C{crl} key.
        """
        items = byId(checkPolicy(serverPolicy(revocation=Revocation()), Role.SERVER, NIST,
                                 facts(), NOW))
        self.assertEqual(items["revocation"].status, FAIL)
        self.assertEqual(items["revocation"].key, "crl")

    def test_resumptionCachePasses(self) -> None:
        """
        A server resuming from its session cache (the default) passes the
        resumption item of every benchmark, naming the mode.
        """
        for benchmark in BENCHMARKS.values():
            item = byId(checkPolicy(serverPolicy(), Role.SERVER, benchmark, facts(),
                                    NOW))["resumption"]
            self.assertEqual((item.status, item.key), (PASS, "resumption"), benchmark.name)
            self.assertIn("resumption=cache", item.reason)

    def test_resumptionTickets(self) -> None:
        """
        Session tickets under the context's own key fail the benchmarks that
        ask for ticket keys changed regularly (BCP 195, Mozilla), and pass
        SP 800-52r2, which does not, with the same caveat: the key lives as
        long as the TLS context.
        """
        policy = serverPolicy(resumption="tickets")
        for benchmark in BENCHMARKS.values():
            item = byId(checkPolicy(policy, Role.SERVER, benchmark, facts(), NOW))["resumption"]
            wanted = PASS if benchmark is NIST else FAIL
            self.assertEqual((item.status, item.key), (wanted, "resumption"), benchmark.name)
            self.assertIn("resumption=tickets: the ticket key is made with the TLS context",
                          item.reason)

    def test_softRevocationPassesWithCaveat(self) -> None:
        """
        C{revocation=soft} passes, and the reason says that unknown status
        is accepted.
        """
        policy = serverPolicy(revocation=Revocation(crlFiles=("d.crl",), mode="soft"))
        item = byId(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))["revocation"]
        self.assertEqual(item.status, PASS)
        self.assertIn("revocation=soft", item.reason)

    def test_oneWayServer(self) -> None:
        """
        Without client authentication the client-authentication, trust and
        revocation items are not applicable, so a one-way TLS server can
        pass.
        """
        policy = TLSPolicy.fromProfile("nist-800-52r2")
        items = checkPolicy(policy, Role.SERVER, NIST, facts(), NOW)
        s = statuses(items)
        self.assertEqual((s["clientAuth"], s["trust"], s["revocation"]),
                         (NOT_APPLICABLE,) * 3)
        self.assertEqual(exitStatus(items), 0)

    def test_systemStoreForClientsFails(self) -> None:
        """
        Trusting the system CA store for client certificates fails: any
        certificate from a public CA would authenticate.
        """
        policy = serverPolicy(trust=TrustAnchors(caFile="ca.pem", system=True))
        item = byId(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))["trust"]
        self.assertEqual((item.status, item.key), (FAIL, "systemCAs"))

    def test_legacyFails(self) -> None:
        """
        A legacy policy fails the profile, version, cipher and peer-key
        items.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            policy = TLSPolicy.fromProfile("legacy")
        s = statuses(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))
        for item in ("profile", "versions.minimum", "ciphers.tls12", "groups", "peer.keys"):
            self.assertEqual(s[item], FAIL, item)

    def test_noTLS13Fails(self) -> None:
        """
        A policy capped at TLS 1.2 fails the TLS 1.3 item (required since
        2024) and its TLS 1.3 suites are not applicable.
        """
        policy = serverPolicy().withVersions(maximum="TLSv1.2")
        s = statuses(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))
        self.assertEqual((s["versions.tls13"], s["ciphers.tls13"]), (FAIL, NOT_APPLICABLE))

    def test_mozillaIntermediateAgainstNIST(self) -> None:
        """
        A mozilla-intermediate policy fails NIST on ChaCha20 and X25519 but
        passes its own benchmark.
        """
        policy = attrs.evolve(serverPolicy(), profile="mozilla-intermediate",
                              ciphers=Ciphers(BENCHMARKS["mozilla-intermediate"].tls12,
                                              ("TLS_CHACHA20_POLY1305_SHA256",)),
                              groups=Groups(("X25519", "secp256r1")))
        nist = byId(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))
        self.assertEqual(nist["ciphers.tls12"].status, FAIL)
        self.assertIn("ChaCha20-Poly1305 is not NIST-approved", nist["ciphers.tls12"].reason)
        self.assertEqual(nist["ciphers.tls13"].status, FAIL)
        self.assertIn("X25519", nist["groups"].reason)
        self.assertEqual(exitStatus(checkPolicy(policy, Role.SERVER, INTERMEDIATE, facts(),
                                                NOW)), 0)

    def test_modernWantsTLS13Only(self) -> None:
        """
        Against mozilla-modern a TLS 1.2 minimum fails; a TLS 1.3-only
        policy passes and its TLS 1.2 list is not applicable.
        """
        self.assertEqual(statuses(checkPolicy(serverPolicy(), Role.SERVER, MODERN, facts(),
                                              NOW))["versions.minimum"], FAIL)
        modern = attrs.evolve(TLSPolicy.fromProfile("mozilla-modern"),
                              peer=PeerVerification(clientAuth=ClientAuth.REQUIRED),
                              trust=TrustAnchors(caFile="ca.pem"),
                              revocation=Revocation(crlFiles=("d.crl",)))
        items = checkPolicy(modern, Role.SERVER, MODERN, facts(), NOW)
        self.assertEqual(statuses(items)["ciphers.tls12"], NOT_APPLICABLE)
        self.assertEqual(exitStatus(items), 0)

    def test_stapling(self) -> None:
        """
        A server whose certificate names an OCSP responder fails the
        stapling item unless it staples; without a responder there is
        nothing to staple.  A version without stapling says it is not
        available.
        """
        withResponder = attrs.evolve(facts(), ocspURL="http://ocsp.example")
        if "staple" not in attrs.fields_dict(Revocation):
            item = byId(checkPolicy(serverPolicy(), Role.SERVER, NIST, withResponder,
                                    NOW))["ocspStapling"]
            self.assertEqual(item.status, NOT_APPLICABLE)
            self.assertIn("not available in this version", item.reason)
            return
        item = byId(checkPolicy(serverPolicy(), Role.SERVER, NIST, withResponder,
                                NOW))["ocspStapling"]
        self.assertEqual((item.status, item.key), (FAIL, "staple"))
        stapling = serverPolicy(revocation=Revocation(crlFiles=("d.crl",), staple=True))
        self.assertEqual(statuses(checkPolicy(stapling, Role.SERVER, NIST, withResponder,
                                              NOW))["ocspStapling"], PASS)
        self.assertEqual(statuses(checkPolicy(serverPolicy(), Role.SERVER, NIST, facts(),
                                              NOW))["ocspStapling"], NOT_APPLICABLE)

    def test_probeStapling(self) -> None:
        """
        The probe fails a server that staples nothing although its
        certificate names an OCSP responder.
        """
        leaf = attrs.evolve(facts(), ocspURL="http://ocsp.example")
        self.assertEqual(statuses(checkNegotiated(probeFacts(chain=(leaf,)), NIST, NOW))
                         ["ocspStapling"], FAIL)
        self.assertEqual(statuses(checkNegotiated(probeFacts(chain=(leaf,), ocspStapled=True),
                                                  NIST, NOW))["ocspStapling"], PASS)

    def test_handshakeTimeout(self) -> None:
        """
        A handshake timeout above 30 seconds fails, naming the key.
        """
        item = byId(checkPolicy(serverPolicy(handshakeTimeout=60), Role.SERVER, NIST,
                                facts(), NOW))["handshakeTimeout"]
        self.assertEqual((item.status, item.key), (FAIL, "handshakeTimeout"))

    def test_clientRole(self) -> None:
        """
        For a client, server authentication passes only with a hostname (or
        pins or an allow-list), and revocation needs a CRL.
        """
        policy = TLSPolicy.fromProfile("nist-800-52r2", trust=TrustAnchors(caFile="ca.pem"))
        s = statuses(checkPolicy(policy, Role.CLIENT, NIST, None, NOW))
        self.assertEqual((s["serverAuth"], s["revocation"]), (FAIL, FAIL))
        self.assertEqual(s["certificate.key"], NOT_APPLICABLE)
        self.assertEqual(
            statuses(checkPolicy(policy, Role.CLIENT, NIST, None, NOW,
                                 hostname="hl7.example"))["serverAuth"], PASS)

    def test_offeredGroups(self) -> None:
        """
        The groups judged are the ones the caller says OpenSSL offers, so an
        optional group the linked OpenSSL lacks does not count.
        """
        policy = serverPolicy(groups=Groups(("secp256r1",), ("X25519MLKEM768",)))
        self.assertEqual(statuses(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW))
                         ["groups"], FAIL)
        self.assertEqual(statuses(checkPolicy(policy, Role.SERVER, NIST, facts(), NOW,
                                              offeredGroups=("secp256r1",)))["groups"], PASS)

    def test_renderText(self) -> None:
        """
        The text form shows each verdict, the section and the key to change
        for items that did not pass, and a count.
        """
        text = renderText(checkPolicy(serverPolicy(revocation=Revocation()), Role.SERVER,
                                      NIST, facts(), NOW))
        self.assertIn("FAIL  revocation checking", text)
        self.assertIn("change: crl", text)
        self.assertIn("SP 800-52r2 3.7", text)
        self.assertIn(" failed, ", text.splitlines()[-1])


class CertificateJudgementTests(SynchronousTestCase):
    """
    Own-certificate items: key type and size, validity, signature.
    """

    def judge(self, cert: Optional[CertificateFacts], benchmark: Any = NIST,
              now: datetime.datetime = NOW) -> dict[str, str]:
        return statuses(checkPolicy(serverPolicy(), Role.SERVER, benchmark, cert, now))

    def test_keys(self) -> None:
        """
        RSA below 2048 bits and P-224 fail; RSA 2048 passes NIST and
        intermediate but not modern (ECDSA only); Ed25519 fails.
        """
        self.assertEqual(self.judge(facts("RSA", 1024, None))["certificate.key"], FAIL)
        self.assertEqual(self.judge(facts("EC", 224, "secp224r1"))["certificate.key"], FAIL)
        self.assertEqual(self.judge(facts("RSA", 2048, None))["certificate.key"], PASS)
        self.assertEqual(self.judge(facts("RSA", 2048, None), INTERMEDIATE)["certificate.key"],
                         PASS)
        self.assertEqual(self.judge(facts("RSA", 4096, None), MODERN)["certificate.key"], FAIL)
        self.assertEqual(self.judge(facts("Ed25519", 256, None))["certificate.key"], FAIL)

    def test_validity(self) -> None:
        """
        Expired and not-yet-valid certificates fail; a lifetime over 366
        days fails the Mozilla profiles only.
        """
        self.assertEqual(self.judge(facts(start=NOW - 100 * DAY))["certificate.validity"],
                         FAIL)
        self.assertEqual(self.judge(facts(start=NOW + DAY))["certificate.validity"], FAIL)
        long = facts(days=800)
        self.assertEqual(self.judge(long)["certificate.validity"], PASS)
        self.assertEqual(self.judge(long, INTERMEDIATE)["certificate.validity"], FAIL)

    def test_signature(self) -> None:
        """
        A SHA-1 signature fails.
        """
        self.assertEqual(self.judge(facts(signatureHash="sha1"))["certificate.signature"],
                         FAIL)

    def test_noCertificate(self) -> None:
        """
        Without a certificate the certificate items are not applicable.
        """
        s = self.judge(None)
        self.assertEqual({s["certificate.key"], s["certificate.validity"],
                          s["certificate.signature"]}, {NOT_APPLICABLE})

    def test_certificateFacts(self) -> None:
        """
        L{certificateFacts} reads the key type, curve, hash, subject and
        dates of a real certificate.
        """
        pki = TestPKI.create(self.mktemp())
        with open(pki.path("server.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        got = certificateFacts(cert)
        self.assertEqual((got.keyType, got.keyBits, got.curve, got.signatureHash),
                         ("EC", 256, "secp256r1", "sha256"))
        self.assertIn("CN=localhost", got.subject)
        self.assertEqual(got.notAfter, cert.not_valid_after_utc)
        self.assertEqual(got.extendedKeyUsage, ("1.3.6.1.5.5.7.3.1",))


_TLS12 = sorted(n for n, c in TLS12_CIPHERS.items() if c.aead and c.kx != "RSA")
_TLS13 = sorted(TLS13_SUITES)
_GROUPS = sorted(GROUPS)


@st.composite
def policies(draw: Any) -> TLSPolicy:
    """
    Valid non-legacy policies with any mix of catalogue ciphers, suites,
    groups, versions and timeouts.
    """
    tls12 = draw(st.lists(st.sampled_from(_TLS12), min_size=1, unique=True))
    tls13 = draw(st.lists(st.sampled_from(_TLS13), min_size=1, unique=True))
    groups = draw(st.lists(st.sampled_from(_GROUPS), min_size=1, unique=True))
    maximum = draw(st.sampled_from([TLSVersion.TLSv1_2, TLSVersion.TLSv1_3]))
    policy = TLSPolicy.fromProfile(
        "nist-800-52r2", ciphers=Ciphers(tls12, tls13), groups=Groups(groups),
        handshakeTimeout=draw(st.floats(min_value=0.5, max_value=600)),
        revocation=draw(st.sampled_from([Revocation(), Revocation(crlFiles=("c.crl",))])))
    return policy.withVersions(maximum=maximum)


class ChecklistProperties(SynchronousTestCase):
    """
    Properties of the checklist over generated policies.
    """

    @given(policies(), st.sampled_from(list(BENCHMARKS)), st.sampled_from(list(Role)))
    def test_wellFormed(self, policy: TLSPolicy, name: str, role: Role) -> None:
        """
        Every item has a known status, a reference and a reason; every
        failed item names the key to change; the exit status is 3 exactly
        when an item failed.
        """
        items = checkPolicy(policy, role, BENCHMARKS[name], facts(), NOW)
        for item in items:
            self.assertIn(item.status, (PASS, FAIL, NOT_APPLICABLE))
            self.assertTrue(item.reference and item.reason)
            if item.status == FAIL:
                self.assertIsNotNone(item.key, item)
        self.assertEqual(exitStatus(items), 3 if any(i.status == FAIL for i in items) else 0)
        self.assertEqual(len({i.id for i in items}), len(items))

    @given(policies(), st.sampled_from(list(BENCHMARKS)), st.sampled_from(list(Role)))
    def test_keysAreOptions(self, policy: TLSPolicy, name: str, role: Role) -> None:
        """
        The key every item names is an option of the option table, spelled
        as users write it.
        """
        for item in checkPolicy(policy, role, BENCHMARKS[name], facts(), NOW):
            if item.key is not None:
                self.assertIn(item.key, OPTIONS, item)

    @given(policies(), st.sampled_from(list(BENCHMARKS)), st.sampled_from(list(Role)))
    def test_oneItemPerJudge(self, policy: TLSPolicy, name: str, role: Role) -> None:
        """
        L{checkPolicy} is its judges run in order: each judge gives one item
        or (an item for the other role) none, and judging again gives the
        same items.
        """
        items = checkPolicy(policy, role, BENCHMARKS[name], facts(), NOW)
        judged = [judge(Situation(policy, role, BENCHMARKS[name], facts(), NOW))
                  for judge in POLICY_JUDGES]
        self.assertEqual([i for i in judged if i is not None], items)
        self.assertEqual(sum(1 for i in judged if i is None), 1)

    @given(policies().filter(lambda p: p.versions.maximum is TLSVersion.TLSv1_3))
    def test_agreesWithCompliant(self, policy: TLSPolicy) -> None:
        """
        The NIST checklist's profile, version, cipher, group and key items
        all pass exactly when L{TLSPolicy.compliant} says the policy stays
        within nist-800-52r2.
        """
        items = checkPolicy(policy, Role.SERVER, NIST, facts(), NOW)
        policyItems = {"profile", "versions.minimum", "ciphers.tls12", "ciphers.tls13",
                       "groups", "peer.keys"}
        bad = [i for i in items if i.id in policyItems and i.status == FAIL]
        self.assertEqual(not bad, policy.compliant)


def probeFacts(**changes: Any) -> ProbeFacts:
    """
    The facts of a probe of a compliant mTLS server.
    """
    refused = Attempt(False, "tls alert handshake failure")
    values: dict[str, Any] = dict(
        main=Attempt(True, None, "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
        group="secp256r1", chain=(facts(),), verifyError=None, hostnameError=None,
        clientCertRequested=True, ocspStapled=False,
        attempts={"TLSv1": refused, "TLSv1.1": refused, "nonAEAD": refused})
    values.update(changes)
    return ProbeFacts(**values)


class NegotiatedChecklistTests(SynchronousTestCase):
    """
    L{checkNegotiated} judges what a live server negotiated and presented.
    """

    def test_compliantServer(self) -> None:
        """
        A server that negotiated TLS 1.3 with a NIST suite and group,
        presented a valid verified certificate and refused the old versions
        and CBC suites passes.
        """
        items = checkNegotiated(probeFacts(), NIST, NOW)
        self.assertEqual(exitStatus(items), 0, renderText(items))
        self.assertEqual(statuses(items)["refuses.nonAEAD"], PASS)

    def test_acceptedOldVersion(self) -> None:
        """
        A server that accepted TLS 1.0 fails, naming C{minVersion}.
        """
        attempts = dict(probeFacts().attempts)
        attempts["TLSv1"] = Attempt(True, None, "TLSv1", "ECDHE-RSA-AES128-SHA")
        item = byId(checkNegotiated(probeFacts(attempts=attempts), NIST, NOW))["refuses.TLSv1"]
        self.assertEqual((item.status, item.key), (FAIL, "minVersion"))

    def test_notOffered(self) -> None:
        """
        An attempt the local OpenSSL could not even offer is not applicable.
        """
        attempts = dict(probeFacts().attempts)
        attempts["TLSv1"] = Attempt(False, "no protocols available", offered=False)
        self.assertEqual(statuses(checkNegotiated(probeFacts(attempts=attempts), NIST, NOW))
                         ["refuses.TLSv1"], NOT_APPLICABLE)

    def test_weakNegotiation(self) -> None:
        """
        TLS 1.2 although TLS 1.3 was offered, a ChaCha20 suite, X25519 and
        an unverified chain each fail.
        """
        items = statuses(checkNegotiated(probeFacts(
            main=Attempt(True, None, "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"),
            group="x25519", verifyError="unable to get local issuer certificate"), NIST, NOW))
        for item in ("versions.tls13", "ciphers.tls12", "groups", "certificate.chain"):
            self.assertEqual(items[item], FAIL, item)

    def test_failedHandshake(self) -> None:
        """
        A failed handshake is a failure that says the server wanted a
        client certificate when it asked for one.
        """
        items = byId(checkNegotiated(probeFacts(
            main=Attempt(False, "tls alert handshake failure"), chain=()), NIST, NOW))
        self.assertEqual(items["handshake"].status, FAIL)
        self.assertIn("--cert", items["handshake"].reason)


# -- the commands ------------------------------------------------------------


def run(*argv: str) -> Tuple[int, str]:
    """
    Run C{python -m securetcp} in-process; return the status and output.
    """
    out = io.StringIO()
    status = main(list(argv), out)
    return status, out.getvalue()


def writeCRL(pki: TestPKI, name: str = "devices.crl",
             revoked: Sequence[x509.Certificate] = ()) -> str:
    """
    Write a CRL signed by the test CA.
    """
    now = datetime.datetime.now(datetime.UTC)
    return pki.write(name, pki.crl(revoked, 1, now - DAY, now + 7 * DAY))


class CheckCommandTests(SynchronousTestCase):
    """
    C{python -m securetcp check} parses like a server, prints the checklist
    and the effective policy, and exits 0, 1 or 3.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(self.mktemp())
        self.mtls = (f"mtls:6661:certKey={self.pki.path('server.pem')}:"
                     f"privateKey={self.pki.path('server.key')}:caCerts={self.pki.path('ca.pem')}")

    def test_endpointWithoutCRL(self) -> None:
        """
        An mtls: string without a CRL exits 3 and says which key to add.
        """
        status, out = run("check", self.mtls)
        self.assertEqual(status, 3, out)
        self.assertIn("FAIL  revocation checking", out)
        self.assertIn("change: crl", out)
        self.assertIn("effective policy:", out)
        self.assertIn("against mozilla-modern: FAIL", out)

    def test_endpointWithCRL(self) -> None:
        """
        With a CRL the same string passes: exit 0.
        """
        status, out = run("check", self.mtls + f":crl={writeCRL(self.pki)}")
        self.assertEqual(status, 0, out)
        self.assertIn("EC secp256r1", out)

    def test_json(self) -> None:
        """
        C{--json} keeps every field the command printed before and adds the
        checklist.
        """
        status, out = run("check", "--json", self.mtls + f":crl={writeCRL(self.pki)}")
        data = json.loads(out)
        for key in ("policy", "profile", "compliantWith", "minVersion", "maxVersion",
                    "ciphers", "ciphersuites", "groups", "clientAuth", "allowPeers",
                    "handshakeTimeout", "openssl"):
            self.assertIn(key, data)
        self.assertEqual(data["check"]["result"], "pass")
        self.assertEqual(data["check"]["benchmark"], "nist-800-52r2")
        self.assertIn("ocspStapling", [i["id"] for i in data["check"]["items"]])
        self.assertIn("CN=localhost", data["check"]["certificate"]["subject"])

    def test_effectivePolicyFromTheTable(self) -> None:
        """
        The effective policy shows every option of the option table, with
        its value as it would be written, in text and in JSON.
        """
        crl = writeCRL(self.pki)
        status, out = run("check", "--json", self.mtls + f":crl={crl}:ocsp=prefer")
        data = json.loads(out)
        for name in OPTIONS:
            if name != "name":  # shown as "policy"
                self.assertIn(name, data)
        self.assertEqual((data["crl"], data["ocsp"], data["clientAuth"], data["systemCAs"]),
                         ([crl], "prefer", "required", False))
        self.assertEqual(data["caCerts"], self.pki.path("ca.pem"))
        status, out = run("check", self.mtls + f":crl={crl}")
        effective = out.split("effective policy:\n")[1]
        for name in OPTIONS:
            if name != "name":
                self.assertIn(f"\n  {name}: ", "\n" + effective)
        self.assertIn(f"  crl: {crl}\n", effective)
        self.assertIn("  crlEnforceLive: false\n", effective)
        self.assertIn("  hostname: (none)\n", effective)

    def test_mozillaProfile(self) -> None:
        """
        C{--profile mozilla-modern} judges against Mozilla Modern: a NIST
        policy with TLS 1.2 fails it.
        """
        status, out = run("check", "--profile", "mozilla-modern",
                          self.mtls + f":crl={writeCRL(self.pki)}")
        self.assertEqual(status, 3)
        self.assertIn("Mozilla Server Side TLS 6.0, Modern", out)

    def test_policyFile(self) -> None:
        """
        A TOML policy file is checked (its own certificate read), relative
        paths taken from its directory.
        """
        crl = writeCRL(self.pki)
        path = self.pki.write("hl7.toml", (
            'certKey = "server.pem"\nprivateKey = "server.key"\ncaCerts = "ca.pem"\n'
            f'clientAuth = "required"\ncrl = ["{os.path.basename(crl)}"]\n').encode())
        status, out = run("check", path)
        self.assertEqual(status, 0, out)

    def test_configurationError(self) -> None:
        """
        A bad endpoint string or policy file exits 1.
        """
        self.assertEqual(run("check", self.mtls + ":minVersion=TLSv1.1")[0], 1)
        bad = self.pki.write("bad.toml", b'clientAuth = "sometimes"\n')
        self.assertEqual(run("check", bad)[0], 1)

    def test_legacy(self) -> None:
        """
        A legacy policy exits 3.
        """
        status, out = run("check", self.mtls + ":profile=legacy")
        self.assertEqual(status, 3)
        self.assertIn("FAIL  profile", out)

    def test_client(self) -> None:
        """
        C{--client} checks a client string: the endpoint's host is the name
        the server is verified against.
        """
        status, out = run("check", "--client", "--json",
                          f"securessl:host=localhost:port=6661:caCerts={self.pki.path('ca.pem')}"
                          f":crl={writeCRL(self.pki)}")
        items = {i["id"]: i for i in json.loads(out)["check"]["items"]}
        self.assertEqual(items["serverAuth"]["status"], "pass")
        self.assertIn("localhost", items["serverAuth"]["reason"])
        self.assertEqual(status, 0, out)


def startSServer(test: SynchronousTestCase, args: List[str], cwd: str) -> int:
    """
    Start C{openssl s_server} on a free port of 127.0.0.1; it is killed in
    cleanup.  Returns the port once it accepts connections.
    """
    if OPENSSL is None:
        raise SkipTest("the openssl binary is not installed")
    port = freePort()
    proc = subprocess.Popen([OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-quiet",
                             "-www", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop() -> None:
        proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()

    test.addCleanup(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"s_server exited: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
    raise AssertionError("s_server did not start")


class ProbeSServerTests(SynchronousTestCase):
    """
    C{python -m securetcp probe} against C{openssl s_server}.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(self.mktemp())

    def test_compliantSServer(self) -> None:
        """
        An s_server restricted to NIST suites and groups and requiring a
        client certificate passes; the probe reports that it asked for one.
        """
        port = startSServer(self, [
            "-cert", "server.pem", "-key", "server.key", "-Verify", "1", "-CAfile", "ca.pem",
            "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-ciphersuites",
            "TLS_AES_128_GCM_SHA256", "-groups", "P-256:P-384"], self.pki.directory)
        status, out = run("probe", f"127.0.0.1:{port}", "--cacert", self.pki.path("ca.pem"),
                          "--cert", self.pki.path("client.pem"),
                          "--key", self.pki.path("client.key"), "--servername", "localhost")
        self.assertEqual(status, 0, out)
        self.assertIn("client certificate requested: yes", out)
        self.assertIn("PASS  TLS 1.0 refused", out)
        self.assertIn("PASS  non-AEAD (CBC) TLS 1.2 suites refused", out)

    def test_defaultSServer(self) -> None:
        """
        A default s_server accepts CBC suites and X25519: the probe fails it
        (exit 3) and says so.
        """
        port = startSServer(self, ["-cert", "server.pem", "-key", "server.key"],
                            self.pki.directory)
        status, out = run("probe", "--json", f"127.0.0.1:{port}",
                          "--cacert", self.pki.path("ca.pem"))
        self.assertEqual(status, 3, out)
        data = json.loads(out)
        items = {i["id"]: i for i in data["items"]}
        self.assertEqual(items["refuses.nonAEAD"]["status"], "fail")
        self.assertFalse(data["clientCertRequested"])
        self.assertEqual(data["negotiated"]["version"], "TLSv1.3")

    def test_untrustedAndWrongName(self) -> None:
        """
        Probing with another CA or a name the certificate is not for fails
        the chain item.
        """
        port = startSServer(self, ["-cert", "server.pem", "-key", "server.key", "-groups",
                                   "P-256"], self.pki.directory)
        status, out = run("probe", "--json", f"127.0.0.1:{port}",
                          "--cacert", self.pki.path("other-ca.pem"),
                          "--servername", "elsewhere.example")
        items = {i["id"]: i for i in json.loads(out)["items"]}
        self.assertEqual(items["certificate.chain"]["status"], "fail")
        self.assertIn("elsewhere.example", items["certificate.chain"]["reason"])
        self.assertEqual(status, 3)

    def test_nothingListening(self) -> None:
        """
        A port nothing listens on, or a malformed target, exits 1.
        """
        self.assertEqual(run("probe", f"127.0.0.1:{freePort()}", "--timeout", "2")[0], 1)
        self.assertEqual(run("probe", "no-port-here")[0], 1)


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class ProbeOwnServerTests(TestCase):
    """
    C{probe} against securetcp's own server, in-process (the probe runs in
    a thread while the reactor serves).
    """

    @inlineCallbacks
    def listen(self, mutual: bool, **options: Any) -> Any:
        self.pki = TestPKI.create(self.mktemp())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            policy = buildPolicy(certKey=self.pki.path("server.pem"),
                                 privateKey=self.pki.path("server.key"),
                                 caCerts=self.pki.path("ca.pem"), **options)
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0,
                                                              interface="127.0.0.1"),
                                  policy, mutual=mutual)
        port = yield endpoint.listen(Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def probe(self, *argv: str) -> Any:
        return threads.deferToThread(run, "probe", *argv)

    @inlineCallbacks
    def test_mutualTLSServer(self) -> None:
        """
        Our mtls server under nist-800-52r2 passes the probe: NIST version,
        suite and group, a verified certificate, a client certificate
        requested, TLS 1.0/1.1 and CBC suites refused.
        """
        port = yield self.listen(True)
        status, out = yield self.probe("--json", f"127.0.0.1:{port}",
                                       "--cacert", self.pki.path("ca.pem"),
                                       "--cert", self.pki.path("client.pem"),
                                       "--key", self.pki.path("client.key"),
                                       "--servername", "localhost")
        data = json.loads(out)
        self.assertEqual(status, 0, out)
        self.assertTrue(data["clientCertRequested"])
        self.assertEqual(data["negotiated"]["version"], "TLSv1.3")
        self.assertIn(data["negotiated"]["cipher"], NIST.tls13)
        for attempt in ("TLSv1", "TLSv1.1", "nonAEAD"):
            self.assertFalse(data["attempts"][attempt]["connected"], attempt)

    @inlineCallbacks
    def test_oneWayServerMozilla(self) -> None:
        """
        A one-way securessl server under mozilla-intermediate probed against
        that profile passes and did not ask for a client certificate.
        """
        port = yield self.listen(False, profile="mozilla-intermediate")
        status, out = yield self.probe(f"127.0.0.1:{port}", "--profile",
                                       "mozilla-intermediate",
                                       "--cacert", self.pki.path("ca.pem"))
        self.assertEqual(status, 0, out)
        self.assertIn("client certificate requested: no", out)

    @inlineCallbacks
    def test_legacyServerFails(self) -> None:
        """
        A server under the legacy profile accepts CBC suites, and the probe
        fails it.
        """
        port = yield self.listen(False, profile="legacy")
        status, out = yield self.probe(f"127.0.0.1:{port}", "--cacert",
                                       self.pki.path("ca.pem"))
        self.assertEqual(status, 3, out)
        self.assertIn("FAIL  non-AEAD (CBC) TLS 1.2 suites refused", out)
