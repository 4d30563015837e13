"""
Tests for the DICOM PS3.15 annex B profiles in L{securetcp.profiles} and
their benchmarks in L{securetcp.compliance.catalogue}: the content follows
B.12 / B.13, and C{check} says which of their requirements a policy meets.
"""

from __future__ import annotations

import datetime
import io
import json
from typing import Dict, List

from twisted.trial.unittest import SynchronousTestCase

from securetcp import Ciphers, TLSPolicy, Versions
from securetcp._catalogue import TLS12_CIPHERS, TLSVersion
from securetcp._cli import main
from securetcp.compliance.check import (
    BENCHMARKS,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Attempt,
    CertificateFacts,
    ProbeFacts,
    checkNegotiated,
    checkPolicy,
)
from securetcp.policy import Role
from securetcp.profiles import PROFILES

from ._pki import TestPKI

B12 = "dicom-bcp195-rfc8996"
B13 = "dicom-bcp195-rfc8996-modified"
#: RFC 9325 section 4.2: the TLS 1.2 suites it recommends.
RFC9325_TLS12 = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                 "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"}
B13_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
             "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256"}
NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _facts(keyType: str = "EC", bits: int = 256) -> CertificateFacts:
    return CertificateFacts("CN=archive", "CN=CA", keyType, bits,
                            "secp256r1" if keyType == "EC" else None, "sha256",
                            NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=90))


def _items(policy: TLSPolicy, benchmark: str, role: Role = Role.SERVER) -> Dict[str, str]:
    return {i.id: i.status for i in checkPolicy(policy, role, BENCHMARKS[benchmark],
                                                _facts(), NOW)}


class ContentTests(SynchronousTestCase):
    """
    The two profiles hold what PS3.15 B.12 and B.13 require.
    """

    def test_versions(self) -> None:
        """
        Both offer TLS 1.2 (which the profiles require) and TLS 1.3, and
        nothing older (RFC 8996).
        """
        for name in (B12, B13):
            profile = PROFILES[name]
            self.assertEqual((profile.minVersion, profile.maxVersion),
                             (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3), name)
            self.assertFalse(profile.legacy)

    def test_b12(self) -> None:
        """
        B.12: exactly the four RFC 9325 TLS 1.2 suites, the three AEAD TLS
        1.3 suites, X25519 and P-256 (RFC 9325 4.2.1) and P-384.
        """
        profile = PROFILES[B12]
        self.assertEqual(set(profile.tls12), RFC9325_TLS12)
        self.assertEqual(set(profile.tls13), {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                              "TLS_CHACHA20_POLY1305_SHA256"})
        self.assertEqual(profile.groups, ("X25519", "secp256r1", "secp384r1"))

    def test_b13(self) -> None:
        """
        B.13: ECDHE only, with AEAD suites (AES-CCM and ChaCha20 too); every
        TLS 1.3 suite servers must support but CCM_8; only curves of 256 bits
        or more, so not X25519.
        """
        profile = PROFILES[B13]
        self.assertTrue(RFC9325_TLS12 <= set(profile.tls12))
        for name in profile.tls12:
            info = TLS12_CIPHERS[name]
            self.assertEqual(info.kx, "ECDHE", name)
            self.assertTrue(info.aead, name)
        self.assertIn("ECDHE-ECDSA-AES128-CCM", profile.tls12)
        self.assertIn("ECDHE-RSA-CHACHA20-POLY1305", profile.tls12)
        self.assertEqual(set(profile.tls13), B13_TLS13)
        self.assertEqual(profile.groups, ("secp256r1", "secp384r1", "secp521r1"))

    def test_keySizes(self) -> None:
        """
        Both hold keys to RSA 2048 and EC 256 bits.
        """
        for name in (B12, B13):
            self.assertEqual((PROFILES[name].minRSABits, PROFILES[name].minECBits), (2048, 256))


class CheckTests(SynchronousTestCase):
    """
    C{check} measures policies against the two DICOM benchmarks.
    """

    def test_profilesPassTheirOwn(self) -> None:
        """
        A server policy of each profile passes the profile's version,
        cipher, group and key items, on both roles.
        """
        for name in (B12, B13):
            for role in Role:
                items = _items(TLSPolicy.fromProfile(name), name, role)
                for id in ("versions.minimum", "versions.tls13", "ciphers.tls12",
                           "ciphers.tls13", "groups", "peer.keys", "certificate.key"):
                    self.assertEqual(items[id], PASS, (name, role, id))

    def test_tls13OnlyFails(self) -> None:
        """
        A TLS 1.3-only policy fails versions.minimum against both DICOM
        benchmarks (they require TLS 1.2), though it passes NIST's.
        """
        policy = TLSPolicy.fromProfile(B12, versions=Versions(TLSVersion.TLSv1_3,
                                                              TLSVersion.TLSv1_3))
        self.assertEqual(_items(policy, B12)["versions.minimum"], FAIL)
        self.assertEqual(_items(policy, B13)["versions.minimum"], FAIL)
        self.assertEqual(_items(policy, "nist-800-52r2")["versions.minimum"], PASS)

    def test_b12AgainstB13(self) -> None:
        """
        The B.12 profile measured against B.13 fails the groups (X25519 is
        below 256 bits) and, as a server, the TLS 1.3 suites (the CCM ones
        are missing); as a client its suites pass.
        """
        policy = TLSPolicy.fromProfile(B12)
        server = _items(policy, B13)
        self.assertEqual(server["groups"], FAIL)
        self.assertEqual(server["ciphers.tls13"], FAIL)
        self.assertEqual(_items(policy, B13, Role.CLIENT)["ciphers.tls13"], PASS)

    def test_b13ServerWithoutASuite(self) -> None:
        """
        A B.13 server that drops one TLS 1.3 suite fails ciphers.tls13,
        naming it; a B.13 server capped at TLS 1.2 fails it too.
        """
        profile = PROFILES[B13]
        fewer = TLSPolicy.fromProfile(
            B13, ciphers=Ciphers(profile.tls12, profile.tls13[:-1]))
        [item] = [i for i in checkPolicy(fewer, Role.SERVER, BENCHMARKS[B13], _facts(), NOW)
                  if i.id == "ciphers.tls13"]
        self.assertEqual(item.status, FAIL)
        self.assertIn("TLS_AES_128_CCM_SHA256", item.reason)
        self.assertIn("PS3.15 B.13", item.reference)
        capped = TLSPolicy.fromProfile(B13, versions=Versions(TLSVersion.TLSv1_2,
                                                              TLSVersion.TLSv1_2))
        self.assertEqual(_items(capped, B13)["ciphers.tls13"], FAIL)

    def test_ccm8Said(self) -> None:
        """
        A B.13 server passes ciphers.tls13 with every suite but CCM_8, and
        the reason says why CCM_8 cannot be offered; a client may list it.
        """
        [item] = [i for i in checkPolicy(TLSPolicy.fromProfile(B13), Role.SERVER,
                                         BENCHMARKS[B13], _facts(), NOW)
                  if i.id == "ciphers.tls13"]
        self.assertEqual(item.status, PASS)
        self.assertIn("TLS_AES_128_CCM_8_SHA256, also listed by B.13, cannot be offered",
                      item.reason)
        self.assertIn("TLS_AES_128_CCM_8_SHA256", BENCHMARKS[B13].tls13)

    def test_otherSuitesFail(self) -> None:
        """
        ChaCha20 for TLS 1.2 is outside B.12 (RFC 9325's list), not B.13.
        """
        policy = TLSPolicy.fromProfile(B13)
        self.assertEqual(_items(policy, B12)["ciphers.tls12"], FAIL)
        self.assertEqual(_items(policy, B13)["ciphers.tls12"], PASS)

    def test_references(self) -> None:
        """
        Every item of a DICOM checklist names PS3.15 or says it is
        securetcp's own requirement.
        """
        for name in (B12, B13):
            for item in checkPolicy(TLSPolicy.fromProfile(name), Role.SERVER,
                                    BENCHMARKS[name], _facts(), NOW):
                self.assertTrue("PS3.15" in item.reference or "securetcp" in item.reference,
                                (name, item.id, item.reference))


def _probed(tls12: Attempt) -> Dict[str, str]:
    """
    The statuses of C{probe}'s items against B.12 for a server that
    negotiated TLS 1.3 and answered C{tls12} to a TLS 1.2-only client.
    """
    refused = Attempt(False, "tls alert protocol version")
    facts = ProbeFacts(
        main=Attempt(True, None, "TLSv1.3", "TLS_AES_128_GCM_SHA256"), group="secp256r1",
        chain=(_facts(),), verifyError=None, hostnameError=None, clientCertRequested=True,
        ocspStapled=False,
        attempts={"TLSv1": refused, "TLSv1.1": refused, "nonAEAD": refused,
                  "acceptsTLSv1.2": tls12})
    return {i.id: i.status for i in checkNegotiated(facts, BENCHMARKS[B12], NOW)}


class ProbeTests(SynchronousTestCase):
    """
    C{probe} against a DICOM benchmark also checks that the server speaks
    TLS 1.2, which the profiles require.
    """

    def test_acceptsTLS12(self) -> None:
        """
        A server that completes a TLS 1.2-only handshake with a suite of
        the profile passes accepts.TLSv1.2; one that refuses it, or picks a
        suite outside the profile, fails; a local OpenSSL that cannot offer
        TLS 1.2 makes it not applicable.
        """
        ok = Attempt(True, None, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(_probed(ok)["accepts.TLSv1.2"], PASS)
        self.assertEqual(_probed(Attempt(False, "tls alert handshake failure"))
                         ["accepts.TLSv1.2"], FAIL)
        self.assertEqual(_probed(Attempt(True, None, "TLSv1.2", "DHE-RSA-AES128-GCM-SHA256"))
                         ["accepts.TLSv1.2"], FAIL)
        self.assertEqual(_probed(Attempt(False, "no protocols available", offered=False))
                         ["accepts.TLSv1.2"], NOT_APPLICABLE)

    def test_notForOthers(self) -> None:
        """
        The NIST benchmark has no accepts.TLSv1.2 item.
        """
        refused = Attempt(False, "x")
        facts = ProbeFacts(
            main=Attempt(True, None, "TLSv1.3", "TLS_AES_128_GCM_SHA256"), group="secp256r1",
            chain=(_facts(),), verifyError=None, hostnameError=None, clientCertRequested=True,
            ocspStapled=False, attempts={"TLSv1": refused, "acceptsTLSv1.2": refused})
        self.assertNotIn("accepts.TLSv1.2",
                         [i.id for i in checkNegotiated(facts, BENCHMARKS["nist-800-52r2"], NOW)])


class CheckCommandTests(SynchronousTestCase):
    """
    C{python -m securetcp check --profile dicom-...} on an endpoint string.
    """

    def runCommand(self, *argv: str) -> tuple[int, str]:
        """
        Run C{python -m securetcp ARGV} in-process: the status and output.
        """
        out = io.StringIO()
        return main(list(argv), out), out.getvalue()

    def test_endpoint(self) -> None:
        """
        An mtls: string with profile=dicom-bcp195-rfc8996 is measured against
        B.12: its protocol items pass (only revocation fails, no CRL is
        given), and the other DICOM benchmark is reported on one line.
        """
        pki = TestPKI.create(self.mktemp())
        target = (f"mtls:2762:certKey={pki.path('server.pem')}:"
                  f"privateKey={pki.path('server.key')}:caCerts={pki.path('ca.pem')}"
                  f":profile={B12}")
        status, out = self.runCommand("check", "--json", "--profile", B12, target)
        data = json.loads(out)
        self.assertEqual(data["check"]["benchmark"], B12)
        failed: List[str] = [i["id"] for i in data["check"]["items"] if i["status"] == FAIL]
        self.assertEqual(failed, ["revocation"])
        self.assertEqual(status, 3)
        self.assertEqual(data["check"]["benchmarks"][B13], "fail")
        status, text = self.runCommand("check", "--profile", B12, target)
        self.assertIn("DICOM PS3.15 B.12", text)
        self.assertIn(f"against {B13}: FAIL (ciphers.tls13, groups, revocation)", text)
