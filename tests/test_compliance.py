# -*- test-case-name: tests.test_compliance -*-
"""
Tests for L{securetcp.compliance}: the verdicts on a negotiated connection,
a policy and a plaintext connection against C{nist-800-52r2}.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, VERSION_NAMES
from securetcp.compliance import (
    NIST_PROFILE,
    NIST_TLS12,
    NIST_TLS13,
    connectionCompliance,
    plaintextCompliance,
    policyCompliance,
)
from securetcp.policy import Ciphers, TLSPolicy
from securetcp.profiles import PROFILES

NIST = PROFILES["nist-800-52r2"]


class VerdictTests(SynchronousTestCase):
    """
    Tests for L{connectionCompliance}.
    """

    def judge(self, version: Optional[str], cipher: Optional[str],
              group: Optional[str], legacy: bool = False) -> Dict[str, Any]:
        result = connectionCompliance(version, cipher, group, legacy=legacy)
        self.assertEqual(set(result), {"profile", "compliant", "reasons"})
        self.assertEqual(result["profile"], NIST_PROFILE)
        self.assertEqual(result["compliant"], not result["reasons"])
        return result

    def assertCompliant(self, version: str, cipher: str, group: str) -> None:
        result = self.judge(version, cipher, group)
        self.assertEqual(result["reasons"], [], (version, cipher, group))
        self.assertTrue(result["compliant"])

    def assertNotCompliant(self, version: Optional[str], cipher: Optional[str],
                           group: Optional[str], *words: str,
                           legacy: bool = False) -> Dict[str, Any]:
        result = self.judge(version, cipher, group, legacy)
        self.assertFalse(result["compliant"], (version, cipher, group))
        text = " ".join(result["reasons"])
        for word in words:
            self.assertIn(word, text)
        return result

    def test_docExample(self) -> None:
        """
        The module docstring's example holds.
        """
        self.assertEqual(
            connectionCompliance("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1", legacy=False),
            {"profile": "nist-800-52r2", "compliant": True, "reasons": []})

    def test_tls13AESGCM(self) -> None:
        """
        TLS 1.3 with an AES-GCM suite on a NIST group (or the P-256 ML-KEM
        hybrid) is compliant.
        """
        self.assertCompliant("TLSv1.3", "TLS_AES_128_GCM_SHA256", "secp256r1")
        self.assertCompliant("TLSv1.3", "TLS_AES_256_GCM_SHA384", "secp384r1")
        self.assertCompliant("TLSv1.3", "TLS_AES_128_GCM_SHA256", "SecP256r1MLKEM768")

    def test_tls13CCM(self) -> None:
        """
        TLS 1.3 with AES-128-CCM is NIST-approved.
        """
        self.assertCompliant("TLSv1.3", "TLS_AES_128_CCM_SHA256", "secp256r1")

    def test_tls12ECDHEGCM(self) -> None:
        """
        TLS 1.2 with ECDHE and AES-GCM is compliant; group aliases are
        understood.
        """
        self.assertCompliant("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", "P-384")
        self.assertCompliant("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "prime256v1")

    def test_chacha13(self) -> None:
        """
        The TLS 1.3 ChaCha20 suite is not compliant.
        """
        self.assertNotCompliant("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", "secp256r1",
                                "TLS_CHACHA20_POLY1305_SHA256")

    def test_chacha12(self) -> None:
        """
        A TLS 1.2 ChaCha20 suite is not compliant, and the reason says so.
        """
        self.assertNotCompliant("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305", "secp256r1",
                                "ChaCha20")

    def test_ccm8(self) -> None:
        """
        TLS 1.3 AES-128-CCM-8 (short tag) is not compliant.
        """
        self.assertNotCompliant("TLSv1.3", "TLS_AES_128_CCM_8_SHA256", "secp256r1")

    def test_oldVersions(self) -> None:
        """
        TLS 1.0 and 1.1 are not compliant whatever the cipher.
        """
        self.assertNotCompliant("TLSv1", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1",
                                "TLSv1 is below TLSv1.2")
        self.assertNotCompliant("TLSv1.1", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1",
                                "below TLSv1.2")

    def test_unknownVersion(self) -> None:
        """
        A version that cannot be read is not compliant.
        """
        self.assertNotCompliant("SSLv3", "ECDHE-RSA-AES128-GCM-SHA256", "secp256r1",
                                "unknown protocol version")
        self.assertNotCompliant(None, None, None, "unknown protocol version")

    def test_cbc(self) -> None:
        """
        A CBC suite is not compliant.
        """
        self.assertNotCompliant("TLSv1.2", "ECDHE-RSA-AES128-SHA256", "secp256r1",
                                "CBC mode")

    def test_staticRSA(self) -> None:
        """
        A static-RSA suite is not compliant, even an AEAD one.
        """
        self.assertNotCompliant("TLSv1.2", "AES128-GCM-SHA256", None, "no forward secrecy")

    def test_dhe(self) -> None:
        """
        A finite-field DHE suite is outside the profile.
        """
        self.assertNotCompliant("TLSv1.2", "DHE-RSA-AES128-GCM-SHA256", "ffdhe2048",
                                "not ECDHE")

    def test_unknownCipher(self) -> None:
        """
        A cipher missing from the catalogue is not compliant.
        """
        self.assertNotCompliant("TLSv1.2", "CAMELLIA128-SHA", "secp256r1", "unknown")

    def test_x25519(self) -> None:
        """
        X25519, X448 and the X25519 ML-KEM hybrid are not NIST groups.
        """
        for group in ("X25519", "X448", "X25519MLKEM768"):
            self.assertNotCompliant("TLSv1.3", "TLS_AES_128_GCM_SHA256", group,
                                    f"{group} is not a NIST curve")

    def test_unknownGroup(self) -> None:
        """
        A group missing from the catalogue is not compliant.
        """
        self.assertNotCompliant("TLSv1.3", "TLS_AES_128_GCM_SHA256", "brainpoolP256r1",
                                "unknown")

    def test_everyFailureListed(self) -> None:
        """
        Every failed requirement is listed, not only the first.
        """
        result = self.assertNotCompliant("TLSv1", "AES128-SHA", "X25519", legacy=True)
        self.assertEqual(len(result["reasons"]), 4)

    def test_legacyAlwaysNonCompliant(self) -> None:
        """
        A connection under a legacy policy is never compliant, even with the
        strongest parameters, and the reason says why.
        """
        self.assertNotCompliant("TLSv1.3", "TLS_AES_256_GCM_SHA384", "secp384r1",
                                "legacy policy", legacy=True)

    @given(
        st.sampled_from(VERSION_NAMES + (None, "SSLv3")),
        st.one_of(st.none(), st.sampled_from(sorted(TLS12_CIPHERS) + sorted(TLS13_SUITES))),
        st.one_of(st.none(), st.sampled_from(sorted(GROUPS) + ["P-256", "bogus"])),
    )
    def test_legacyProperty(self, version: Optional[str], cipher: Optional[str],
                            group: Optional[str]) -> None:
        """
        Under a legacy policy, every negotiated combination is non-compliant
        with a reason naming the legacy policy; the verdict never raises.
        """
        result = self.judge(version, cipher, group, legacy=True)
        self.assertFalse(result["compliant"])
        self.assertTrue(any("legacy" in r for r in result["reasons"]))


class ConsistencyTests(SynchronousTestCase):
    """
    The verdict agrees with the profiles and with L{TLSPolicy.compliant}.
    """

    def test_nistProfileCompliant(self) -> None:
        """
        Every suite and group the C{nist-800-52r2} profile offers makes a
        compliant connection.
        """
        for group in NIST.groups + NIST.optionalGroups:
            for cipher in NIST.tls12:
                self.assertTrue(connectionCompliance("TLSv1.2", cipher, group, False)["compliant"])
            for suite in NIST.tls13:
                self.assertTrue(connectionCompliance("TLSv1.3", suite, group, False)["compliant"])

    def test_chachaProfilesNot(self) -> None:
        """
        Every ChaCha20 suite of the Mozilla profiles makes a non-compliant
        connection.
        """
        for name in ("mozilla-modern", "mozilla-intermediate"):
            profile = PROFILES[name]
            for cipher in profile.tls12 + profile.tls13:
                if "CHACHA" in cipher:
                    version = "TLSv1.3" if cipher in TLS13_SUITES else "TLSv1.2"
                    self.assertFalse(connectionCompliance(version, cipher, "secp256r1", False)["compliant"])

    def test_policyAgrees(self) -> None:
        """
        A policy made of exactly the suites the verdict accepts is compliant,
        and adding any suite the verdict refuses makes it non-compliant.
        """
        tls12 = sorted(NIST_TLS12)
        tls13 = sorted(NIST_TLS13)
        self.assertTrue(TLSPolicy(ciphers=Ciphers(tls12, tls13)).compliant)
        for name, info in TLS12_CIPHERS.items():
            if name in NIST_TLS12 or not info.aead or info.kx == "RSA":
                continue  # refused outright outside legacy
            self.assertFalse(TLSPolicy(ciphers=Ciphers(tls12 + [name], tls13)).compliant, name)
        for name in TLS13_SUITES:
            if name not in NIST_TLS13:
                self.assertFalse(TLSPolicy(ciphers=Ciphers(tls12, tls13 + [name])).compliant,
                                 name)


class OtherVerdictTests(SynchronousTestCase):
    """
    The verdicts on a policy as a whole and on a plaintext connection, in
    the same shape as the connection verdict.
    """

    def test_freshVerdicts(self) -> None:
        """
        Each call of L{connectionCompliance} returns a fresh dict: changing
        one leaves the next untouched.
        """
        first = connectionCompliance("TLSv1", "AES128-SHA", "secp256r1", False)
        first["reasons"].clear()
        self.assertTrue(connectionCompliance("TLSv1", "AES128-SHA", "secp256r1",
                                             False)["reasons"])

    def test_compliantPolicy(self) -> None:
        """
        A policy within C{nist-800-52r2} is compliant, with no reasons.
        """
        self.assertEqual(policyCompliance(TLSPolicy()),
                         {"profile": NIST_PROFILE, "compliant": True, "reasons": []})

    def test_policyBeyondProfile(self) -> None:
        """
        A policy beyond C{nist-800-52r2} is not compliant; its one reason
        names the profile it came from.
        """
        policy = TLSPolicy(ciphers=Ciphers(sorted(NIST_TLS12), ["TLS_CHACHA20_POLY1305_SHA256"]),
                           profile="mozilla-modern")
        self.assertFalse(policy.compliant)
        self.assertEqual(policyCompliance(policy), {
            "profile": NIST_PROFILE, "compliant": False,
            "reasons": ["policy from profile mozilla-modern goes beyond nist-800-52r2"]})

    def test_plaintext(self) -> None:
        """
        A plaintext connection is never compliant, and says why.
        """
        self.assertEqual(plaintextCompliance(), {
            "profile": NIST_PROFILE, "compliant": False,
            "reasons": ["plaintext: no TLS (permissive migration mode)"]})
