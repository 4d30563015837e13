"""
Tests for L{securetcp.profiles}: the exact content of every named profile,
and that the linked OpenSSL knows every name a profile uses.
"""

from __future__ import annotations

import warnings

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, TLSVersion
from securetcp._tls.context import buildContext, effectiveGroups, groupAvailable
from securetcp.materials import loadMaterials
from securetcp.policy import Credentials, LegacyProfileWarning, Role, TLSPolicy
from securetcp.profiles import (
    DEFAULT_PROFILE,
    LEGACY,
    MOZILLA_INTERMEDIATE,
    MOZILLA_MODERN,
    NIST_800_52R2,
    PROFILES,
    Profile,
)

from ._pki import TestPKI, sharedPKI


def _pki() -> TestPKI:
    return sharedPKI("profiles")

def _serverPolicy(profile: Profile) -> TLSPolicy:
    pki = _pki()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyProfileWarning)
        return TLSPolicy.fromProfile(
            profile.name,
            credentials=Credentials(certificate=pki.path("server.pem"),
                                    privateKey=pki.path("server.key")))


GCM12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
)
CHACHA12 = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305")
TLS13_ALL = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)


class ProfileContentTests(SynchronousTestCase):
    """
    Each profile has exactly the content its documentation promises.
    """

    def assertProfile(self, profile: Profile, **expected: object) -> None:
        for field, value in expected.items():
            self.assertEqual(getattr(profile, field), value, f"{profile.name}.{field}")

    def test_registry(self) -> None:
        """
        L{PROFILES} holds the six documented profiles under their names, and
        the default is C{nist-800-52r2}.
        """
        self.assertEqual(list(PROFILES), ["nist-800-52r2", "mozilla-modern",
                                          "mozilla-intermediate", "legacy",
                                          "dicom-bcp195-rfc8996",
                                          "dicom-bcp195-rfc8996-modified"])
        for name, profile in PROFILES.items():
            self.assertEqual(profile.name, name)
            self.assertTrue(profile.description)
        self.assertEqual(DEFAULT_PROFILE, "nist-800-52r2")
        self.assertIs(PROFILES[DEFAULT_PROFILE], NIST_800_52R2)

    def test_nist(self) -> None:
        """
        C{nist-800-52r2}: TLS 1.2 and 1.3, ECDHE with AES-GCM, the two
        AES-GCM TLS 1.3 suites, P-256 and P-384 with the optional P-256
        ML-KEM hybrid, RSA >= 2048 and EC >= 256 bits.
        """
        self.assertProfile(
            NIST_800_52R2,
            minVersion=TLSVersion.TLSv1_2, maxVersion=TLSVersion.TLSv1_3,
            tls12=GCM12,
            tls13=("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"),
            optionalGroups=("SecP256r1MLKEM768",),
            groups=("secp256r1", "secp384r1"),
            minRSABits=2048, minECBits=256, legacy=False,
        )

    def test_nistHasNoChaCha(self) -> None:
        """
        C{nist-800-52r2} offers no ChaCha20 at all, and only ECDHE with
        AES-GCM: ChaCha20 is not NIST-approved.
        """
        for name in NIST_800_52R2.tls12:
            info = TLS12_CIPHERS[name]
            self.assertNotIn("CHACHA", name)
            self.assertEqual((info.kx, info.enc, info.aead), ("ECDHE", "AESGCM", True), name)
        for name in NIST_800_52R2.tls13:
            self.assertNotIn("CHACHA", name)
            self.assertEqual(TLS13_SUITES[name], "AESGCM", name)

    def test_nistGroupsAreNIST(self) -> None:
        """
        Every group of C{nist-800-52r2}, optional or not, is NIST-approved.
        """
        for name in NIST_800_52R2.groups + NIST_800_52R2.optionalGroups:
            self.assertTrue(GROUPS[name].nist, name)

    def test_mozillaModern(self) -> None:
        """
        C{mozilla-modern}: TLS 1.3 only, all three common suites, X25519
        first with its ML-KEM hybrid when available.
        """
        self.assertProfile(
            MOZILLA_MODERN,
            minVersion=TLSVersion.TLSv1_3, maxVersion=TLSVersion.TLSv1_3,
            tls12=(), tls13=TLS13_ALL,
            optionalGroups=("X25519MLKEM768",),
            groups=("X25519", "secp256r1", "secp384r1"),
            minRSABits=2048, minECBits=256, legacy=False,
        )

    def test_mozillaIntermediate(self) -> None:
        """
        C{mozilla-intermediate}: TLS 1.2 (ECDHE with AES-GCM or ChaCha20) and
        TLS 1.3.
        """
        self.assertProfile(
            MOZILLA_INTERMEDIATE,
            minVersion=TLSVersion.TLSv1_2, maxVersion=TLSVersion.TLSv1_3,
            tls12=GCM12 + CHACHA12, tls13=TLS13_ALL,
            optionalGroups=("X25519MLKEM768",),
            groups=("X25519", "secp256r1", "secp384r1"),
            minRSABits=2048, minECBits=256, legacy=False,
        )
        for name in MOZILLA_INTERMEDIATE.tls12:
            info = TLS12_CIPHERS[name]
            self.assertEqual((info.kx, info.aead), ("ECDHE", True), name)

    def test_legacy(self) -> None:
        """
        C{legacy}: TLS 1.0 to 1.3, AEAD then CBC and static-RSA suites, a
        P-521 group, RSA keys down to 1024 bits, flagged as legacy.
        """
        self.assertProfile(
            LEGACY,
            minVersion=TLSVersion.TLSv1, maxVersion=TLSVersion.TLSv1_3,
            tls12=GCM12 + CHACHA12 + (
                "ECDHE-ECDSA-AES128-SHA256",
                "ECDHE-RSA-AES128-SHA256",
                "ECDHE-ECDSA-AES128-SHA",
                "ECDHE-RSA-AES128-SHA",
                "ECDHE-ECDSA-AES256-SHA384",
                "ECDHE-RSA-AES256-SHA384",
                "ECDHE-ECDSA-AES256-SHA",
                "ECDHE-RSA-AES256-SHA",
                "AES128-GCM-SHA256",
                "AES256-GCM-SHA384",
                "AES128-SHA256",
                "AES256-SHA256",
                "AES128-SHA",
                "AES256-SHA",
            ),
            tls13=TLS13_ALL,
            optionalGroups=("X25519MLKEM768",),
            groups=("X25519", "secp256r1", "secp384r1", "secp521r1"),
            minRSABits=1024, minECBits=256, legacy=True,
        )
        self.assertIn("INSECURE", LEGACY.description)

    def test_onlyLegacyIsWeak(self) -> None:
        """
        Only the legacy profile goes below TLS 1.2, uses non-AEAD or
        static-RSA suites, accepts RSA keys below 2048 bits or carries the
        legacy flag.
        """
        for profile in PROFILES.values():
            weak = (
                profile.minVersion < TLSVersion.TLSv1_2
                or any(not TLS12_CIPHERS[c].aead or TLS12_CIPHERS[c].kx == "RSA"
                       for c in profile.tls12)
                or profile.minRSABits < 2048
                or profile.legacy
            )
            self.assertEqual(weak, profile is LEGACY, profile.name)

    def test_namesInCatalogue(self) -> None:
        """
        Every cipher, suite and group of every profile is in securetcp's
        catalogue, with no duplicates and no group both required and
        optional.
        """
        for profile in PROFILES.values():
            for name in profile.tls12:
                self.assertIn(name, TLS12_CIPHERS, profile.name)
            for name in profile.tls13:
                self.assertIn(name, TLS13_SUITES, profile.name)
            for name in profile.groups + profile.optionalGroups:
                self.assertIn(name, GROUPS, profile.name)
            for names in (profile.tls12, profile.tls13,
                          profile.groups + profile.optionalGroups):
                self.assertEqual(len(set(names)), len(names), profile.name)

    def test_docExample(self) -> None:
        """
        The example in the module docstring holds.
        """
        self.assertEqual(PROFILES["nist-800-52r2"].tls13,
                         ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"))


class ProfilesInOpenSSLTests(SynchronousTestCase):
    """
    The linked OpenSSL knows every name in every profile: a server context
    builds from each, and offers exactly the profile's suites.
    """

    def test_contextsBuild(self) -> None:
        """
        A server context builds from every profile, and a connection made
        from it offers every TLS 1.2 cipher and TLS 1.3 suite of the
        profile (so none was silently dropped by OpenSSL).
        """
        for profile in PROFILES.values():
            policy = _serverPolicy(profile)
            context = buildContext(policy, Role.SERVER, loadMaterials(policy, Role.SERVER))
            self.assertIsInstance(context, SSL.Context)
            offered = SSL.Connection(context, None).get_cipher_list()
            for name in profile.tls12 + profile.tls13:
                self.assertIn(name, offered, profile.name)

    def test_effectiveGroups(self) -> None:
        """
        A profile's groups are offered in order, behind its optional groups,
        each of which is offered exactly when the linked OpenSSL implements
        it.
        """
        for profile in PROFILES.values():
            policy = _serverPolicy(profile)
            offered = effectiveGroups(policy)
            available = tuple(g for g in profile.optionalGroups if groupAvailable(g))
            self.assertEqual(offered, available + profile.groups, profile.name)
            for name in profile.groups:
                self.assertTrue(groupAvailable(name), name)

    def test_groupAvailableUnknown(self) -> None:
        """
        L{groupAvailable} is false for a group OpenSSL does not implement.
        """
        self.assertFalse(groupAvailable("securetcpNoSuchGroup"))
