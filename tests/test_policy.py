"""
Tests for L{securetcp.policy}: building L{TLSPolicy} values, changing them,
and every invalid value or combination being refused with a L{PolicyError}
that names the field, the value and the fix.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import attrs
from twisted.trial.unittest import SynchronousTestCase

from securetcp._catalogue import TLSVersion
from securetcp._spelling import inUserSpelling, optionForField
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern
from securetcp.policy import (
    Ciphers,
    ClientAuth,
    Credentials,
    Groups,
    KeyStrength,
    LegacyProfileWarning,
    PeerVerification,
    Role,
    TLSPolicy,
    TrustAnchors,
    Versions,
)
from securetcp.profiles import DEFAULT_PROFILE, PROFILES

NIST = PROFILES["nist-800-52r2"]
_SERVER_CREDENTIALS = Credentials(certificate="server.pem", privateKey="server.key")


def _legacy(**changes: Any) -> TLSPolicy:
    """
    A policy from the legacy profile, without letting its warning escape.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyProfileWarning)
        return TLSPolicy.fromProfile("legacy", **changes)


class PolicyErrorAssertions:
    """
    Mixin: assert that something raises a L{PolicyError} that names the
    field, carries the offending value and says how to fix it.
    """

    def assertFieldError(
        self, field: str, spelled: str, call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> PolicyError:
        """
        Like L{assertPolicyError} for an error of a policy part, which names
        the field by its path (C{versions.minimum}); through the option
        table, its users read it as the option C{spelled} (C{minVersion}),
        in the field, the message and the fix.
        """
        error = self.assertPolicyError(field, call, *args, **kwargs)
        translated = inUserSpelling(error)
        self.assertEqual(translated.field, spelled)  # type: ignore[attr-defined]
        self.assertIn(spelled, str(translated))  # type: ignore[attr-defined]
        self.assertEqual(translated.value, error.value)  # type: ignore[attr-defined]
        self.assertNotIn(field, translated.fix)  # type: ignore[attr-defined]
        return error

    def assertPolicyError(
        self, field: str, call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> PolicyError:
        error = self.assertRaises(PolicyError, call, *args, **kwargs)  # type: ignore[attr-defined]
        self.assertIsInstance(error, ValueError)  # type: ignore[attr-defined]
        self.assertEqual(error.field, field)  # type: ignore[attr-defined]
        self.assertTrue(error.problem)  # type: ignore[attr-defined]
        self.assertTrue(error.fix, f"{error!s} has no fix")  # type: ignore[attr-defined]
        self.assertIn(field, str(error))  # type: ignore[attr-defined]
        self.assertIn(error.fix, str(error))  # type: ignore[attr-defined]
        return error


class TLSVersionTests(SynchronousTestCase):
    """
    Tests for L{TLSVersion}.
    """

    def test_parseSpellings(self) -> None:
        """
        L{TLSVersion.parse} accepts the spellings people write for each
        version, case-insensitively and with surrounding blanks.
        """
        table = {
            TLSVersion.TLSv1: ["TLSv1", "TLSv1.0", "tlsv1", "1.0", "1", "TLS1_0",
                               "tls1.0", "TLSv1_0"],
            TLSVersion.TLSv1_1: ["TLSv1.1", "TLSv1_1", "1.1", "tls1.1", "TLS1_1"],
            TLSVersion.TLSv1_2: ["TLSv1.2", "TLSv1_2", "1.2", "tls1.2", "TLS1_2",
                                 " TLSV1.2 ", "1_2"],
            TLSVersion.TLSv1_3: ["TLSv1.3", "TLSv1_3", "1.3", "tls1.3", "TLS1_3"],
        }
        for version, spellings in table.items():
            for spelling in spellings:
                self.assertIs(TLSVersion.parse(spelling), version, spelling)

    def test_parseRejects(self) -> None:
        """
        L{TLSVersion.parse} raises L{ValueError} for anything that is not a
        TLS version it knows.
        """
        for text in ["", "SSLv3", "TLSv9", "1.4", "2", "TLSv1.2.1", "tls", "v1.2"]:
            self.assertRaises(ValueError, TLSVersion.parse, text)

    def test_ordering(self) -> None:
        """
        Versions are ordered by age.
        """
        self.assertTrue(TLSVersion.TLSv1 < TLSVersion.TLSv1_1 < TLSVersion.TLSv1_2
                        < TLSVersion.TLSv1_3)
        self.assertTrue(TLSVersion.TLSv1_3 >= TLSVersion.TLSv1_3)
        self.assertTrue(TLSVersion.TLSv1_2 <= TLSVersion.TLSv1_3)
        self.assertTrue(TLSVersion.TLSv1_2 > TLSVersion.TLSv1_1)
        self.assertEqual(max(TLSVersion.TLSv1_2, TLSVersion.TLSv1), TLSVersion.TLSv1_2)


class VersionsTests(SynchronousTestCase, PolicyErrorAssertions):
    """
    Tests for L{Versions}.
    """

    def test_defaults(self) -> None:
        """
        By default a policy negotiates TLS 1.2 and 1.3.
        """
        versions = Versions()
        self.assertEqual((versions.minimum, versions.maximum),
                         (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3))

    def test_acceptsText(self) -> None:
        """
        L{Versions} converts written versions to L{TLSVersion}.
        """
        versions = Versions("1.3", "TLSv1_3")
        self.assertEqual((versions.minimum, versions.maximum),
                         (TLSVersion.TLSv1_3, TLSVersion.TLSv1_3))

    def test_minimumAboveMaximum(self) -> None:
        """
        A minimum above the maximum is refused, naming C{versions.minimum}
        (the option C{minVersion}).
        """
        error = self.assertFieldError("versions.minimum", "minVersion",
                                      Versions, "TLSv1.3", "TLSv1.2")
        self.assertEqual(error.value, "TLSv1.3")
        self.assertIn("TLSv1.2", error.problem)

    def test_unknownMinimum(self) -> None:
        """
        An unknown minimum version is refused naming C{versions.minimum}
        (C{minVersion}) and listing the versions there are.
        """
        error = self.assertFieldError("versions.minimum", "minVersion", Versions, "TLSv9")
        self.assertEqual(error.value, "TLSv9")
        self.assertIn("TLSv1.3", error.fix)

    def test_unknownMaximum(self) -> None:
        """
        An unknown maximum version is refused naming C{versions.maximum}
        (C{maxVersion}), not the minimum.
        """
        error = self.assertFieldError("versions.maximum", "maxVersion",
                                      Versions, "TLSv1.2", "SSLv3")
        self.assertEqual(error.value, "SSLv3")

    def test_raiseMinimumTo(self) -> None:
        """
        L{Versions.raiseMinimumTo} returns a copy whose minimum is the given
        version, and leaves the original alone.
        """
        versions = Versions("TLSv1.2", "TLSv1.3")
        raised = versions.raiseMinimumTo(TLSVersion.TLSv1_3)
        self.assertEqual(raised.minimum, TLSVersion.TLSv1_3)
        self.assertEqual(raised.maximum, TLSVersion.TLSv1_3)
        self.assertEqual(versions.minimum, TLSVersion.TLSv1_2)

    def test_raiseMinimumToNeverLowers(self) -> None:
        """
        L{Versions.raiseMinimumTo} never lowers the minimum: asking for an
        older version keeps the current one.
        """
        versions = Versions("TLSv1.3", "TLSv1.3")
        self.assertEqual(versions.raiseMinimumTo(TLSVersion.TLSv1).minimum,
                         TLSVersion.TLSv1_3)
        self.assertEqual(versions.raiseMinimumTo("1.2"), versions)

    def test_raiseMinimumToText(self) -> None:
        """
        L{Versions.raiseMinimumTo} accepts a written version.
        """
        self.assertEqual(Versions().raiseMinimumTo("tls1.3").minimum,
                         TLSVersion.TLSv1_3)

    def test_raiseMinimumAboveMaximum(self) -> None:
        """
        Raising the minimum above the maximum is refused.
        """
        versions = Versions("TLSv1.2", "TLSv1.2")
        self.assertFieldError("versions.minimum", "minVersion",
                              versions.raiseMinimumTo, TLSVersion.TLSv1_3)

    def test_includes(self) -> None:
        """
        L{Versions.includes} says whether a version is within the range.
        """
        versions = Versions("TLSv1.2", "TLSv1.2")
        self.assertTrue(versions.includes(TLSVersion.TLSv1_2))
        self.assertFalse(versions.includes(TLSVersion.TLSv1_3))
        self.assertFalse(versions.includes(TLSVersion.TLSv1_1))


class PartsTests(SynchronousTestCase, PolicyErrorAssertions):
    """
    Tests for the validating parts of a policy: L{Ciphers}, L{Groups},
    L{Credentials}, L{PeerVerification}, L{KeyStrength}.
    """

    def test_ciphersFromText(self) -> None:
        """
        Cipher lists may be written comma-, colon- or space-separated;
        duplicates are dropped and order kept.
        """
        ciphers = Ciphers("ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES128-GCM-SHA256:"
                          "ECDHE-RSA-AES128-GCM-SHA256",
                          "TLS_AES_256_GCM_SHA384 TLS_AES_128_GCM_SHA256")
        self.assertEqual(ciphers.tls12, ("ECDHE-RSA-AES128-GCM-SHA256",
                                         "ECDHE-ECDSA-AES128-GCM-SHA256"))
        self.assertEqual(ciphers.tls13, ("TLS_AES_256_GCM_SHA384",
                                         "TLS_AES_128_GCM_SHA256"))

    def test_unknownCipher(self) -> None:
        """
        An unknown TLS 1.2 cipher name is refused naming C{ciphers.tls12}
        (C{ciphers}) and the
        name, and the fix lists the names securetcp knows.
        """
        error = self.assertFieldError("ciphers.tls12", "ciphers",
                                      Ciphers, ["ECDHE-RSA-AES128-GCM-SHA257"])
        self.assertEqual(error.value, "ECDHE-RSA-AES128-GCM-SHA257")
        self.assertIn("ECDHE-RSA-AES128-GCM-SHA256", error.fix)

    def test_unknownSuite(self) -> None:
        """
        An unknown TLS 1.3 suite name is refused naming C{ciphers.tls13}
        (C{ciphersuites}).
        """
        error = self.assertFieldError("ciphers.tls13", "ciphersuites",
                                      Ciphers, (), ["TLS_AES_512_GCM_SHA512"])
        self.assertEqual(error.value, "TLS_AES_512_GCM_SHA512")
        self.assertIn("TLS_AES_128_GCM_SHA256", error.fix)

    def test_tls12SuiteInTLS13List(self) -> None:
        """
        A TLS 1.2 cipher name given as a TLS 1.3 suite is refused.
        """
        self.assertFieldError("ciphers.tls13", "ciphersuites",
                              Ciphers, (), ["ECDHE-RSA-AES128-GCM-SHA256"])

    def test_groupsCanonical(self) -> None:
        """
        Group names are canonicalised (NIST spellings and OpenSSL aliases)
        and de-duplicated.
        """
        groups = Groups("P-256, prime256v1, SECP384R1, x25519", ["secp256r1mlkem768"])
        self.assertEqual(groups.required, ("secp256r1", "secp384r1", "X25519"))
        self.assertEqual(groups.optional, ("SecP256r1MLKEM768",))

    def test_unknownGroup(self) -> None:
        """
        An unknown group is refused naming C{groups.required} (the option
        C{groups}) and the group.
        """
        error = self.assertFieldError("groups.required", "groups", Groups, ["brainpoolP256r1"])
        self.assertEqual(error.value, "brainpoolP256r1")
        self.assertIn("secp256r1", error.fix)

    def test_unknownOptionalGroup(self) -> None:
        """
        An unknown optional group is refused just like a required one.
        """
        self.assertFieldError("groups.optional", "groups", Groups, ["secp256r1"], ["kyber9000"])

    def test_emptyGroups(self) -> None:
        """
        A policy needs at least one key-exchange group.
        """
        self.assertPolicyError("groups", Groups)
        self.assertPolicyError("groups", Groups, "", "")

    def test_onlyOptionalGroups(self) -> None:
        """
        Optional groups alone are enough to construct L{Groups}.
        """
        self.assertEqual(Groups((), ["X25519MLKEM768"]).optional, ("X25519MLKEM768",))

    def test_pkcs12WithCertKey(self) -> None:
        """
        A PKCS#12 bundle cannot be combined with a certificate or key file.
        """
        error = self.assertFieldError("credentials.pkcs12", "pkcs12",
                                      Credentials, certificate="c.pem",
                                       pkcs12="bundle.p12")
        self.assertEqual(error.value, "bundle.p12")
        self.assertFieldError("credentials.pkcs12", "pkcs12", Credentials, privateKey="k.pem",
                               pkcs12="bundle.p12")

    def test_badPassphraseSource(self) -> None:
        """
        A passphrase must name its source; the refused value is never shown,
        since it may well be the secret itself.
        """
        error = self.assertFieldError("credentials.passphrase", "passphrase",
                                      Credentials, certificate="c.pem",
                                       passphrase="hunter2")
        self.assertNotIn("hunter2", str(error))
        self.assertNotEqual(error.value, "hunter2")
        self.assertIn("env:", error.fix)

    def test_passphraseSources(self) -> None:
        """
        C{env:}, C{file:} and C{pass:} passphrase sources are accepted.
        """
        for source in ["env:KEY_PASS", "file:/run/secrets/key", "pass:text"]:
            self.assertEqual(Credentials(certificate="c", passphrase=source).passphrase,
                             source)

    def test_credentialsFiles(self) -> None:
        """
        As with Twisted's C{ssl:}, the certificate defaults to the key's file
        and the key to the certificate's file.
        """
        self.assertEqual(Credentials(privateKey="both.pem").certificateFile, "both.pem")
        self.assertEqual(Credentials(certificate="both.pem").keyFile, "both.pem")
        self.assertFalse(Credentials().configured)
        self.assertTrue(Credentials(pkcs12="b.p12").configured)

    def test_emptyPathsAreNone(self) -> None:
        """
        An empty path means "not given".
        """
        self.assertFalse(TrustAnchors(caFile="", caDir="").configured)
        self.assertTrue(TrustAnchors(system=True).configured)
        self.assertFalse(TrustAnchors(system=True).private)
        self.assertIsNone(Credentials(certificate="").certificate)

    def test_badHostname(self) -> None:
        """
        A hostname that is neither a DNS name nor an IP address is refused.
        """
        for bad in ["bad host", "a..b", "-leading.example", "under/score", "x" * 64 + ".org",
                    "ex ample.org"]:
            error = self.assertFieldError("peer.hostname", "hostname",
                                          PeerVerification, hostname=bad)
            self.assertEqual(error.value, bad)

    def test_goodHostnames(self) -> None:
        """
        DNS names and IP addresses (IPv6 optionally in brackets) are accepted;
        an empty hostname means none.
        """
        self.assertEqual(PeerVerification(hostname="lab.example.org.").hostname,
                         "lab.example.org.")
        self.assertEqual(PeerVerification(hostname="127.0.0.1").hostname, "127.0.0.1")
        self.assertEqual(PeerVerification(hostname="[::1]").hostname, "::1")
        self.assertIsNone(PeerVerification(hostname="").hostname)

    def test_unknownClientAuth(self) -> None:
        """
        An unknown client-certificate mode is refused naming
        C{peer.clientAuth} (C{clientAuth}).
        """
        self.assertFieldError("peer.clientAuth", "clientAuth",
                              PeerVerification, clientAuth="sometimes")
        self.assertIs(PeerVerification(clientAuth="REQUIRED").clientAuth,
                      ClientAuth.REQUIRED)

    def test_allowListFromText(self) -> None:
        """
        An allow-list may be written as comma-separated rules.
        """
        peer = PeerVerification(allow="dns:*.example.org, uri:spiffe://example.org/*")
        self.assertEqual([str(p) for p in peer.allow],
                         ["dns:*.example.org", "uri:spiffe://example.org/*"])
        self.assertIsInstance(peer.allow[0], IdentityPattern)

    def test_badAllowList(self) -> None:
        """
        A malformed allow-list rule is refused naming C{peer.allow}
        (C{allowPeers}).
        """
        self.assertFieldError("peer.allow", "allowPeers", PeerVerification, allow="ward3")

    def test_badPin(self) -> None:
        """
        A malformed pin is refused naming C{peer.pins} (C{pinSPKI}).
        """
        self.assertFieldError("peer.pins", "pinSPKI", PeerVerification, pins="sha256/nope")

    def test_keyStrengthFloors(self) -> None:
        """
        RSA keys below 1024 bits and EC keys below 224 bits are never
        accepted, whatever the profile; no option sets them, so the error
        names the field.
        """
        self.assertPolicyError("keys.minRSABits", KeyStrength, minRSABits=512)
        self.assertPolicyError("keys.minECBits", KeyStrength, minECBits=192)
        self.assertIsNone(optionForField("keys.minRSABits"))


class TLSPolicyConstructionTests(SynchronousTestCase, PolicyErrorAssertions):
    """
    Tests for building a L{TLSPolicy}.
    """

    def test_default(self) -> None:
        """
        C{TLSPolicy()} is the default profile's policy.
        """
        policy = TLSPolicy()
        self.assertEqual(policy.profile, DEFAULT_PROFILE)
        self.assertEqual(policy.versions, Versions(NIST.minVersion, NIST.maxVersion))
        self.assertEqual(policy.ciphers, Ciphers(NIST.tls12, NIST.tls13))
        self.assertEqual(policy.groups, Groups(NIST.groups, NIST.optionalGroups))
        self.assertEqual(policy.keys, KeyStrength(NIST.minRSABits, NIST.minECBits))
        self.assertEqual(policy.handshakeTimeout, 10.0)
        self.assertFalse(policy.legacy)
        self.assertEqual(policy, TLSPolicy.fromProfile())

    def test_fromProfile(self) -> None:
        """
        L{TLSPolicy.fromProfile} takes every part of the profile's content.
        """
        for name, profile in PROFILES.items():
            policy = _legacy() if profile.legacy else TLSPolicy.fromProfile(name)
            self.assertEqual(policy.profile, name)
            self.assertEqual((policy.versions.minimum, policy.versions.maximum),
                             (profile.minVersion, profile.maxVersion))
            self.assertEqual(policy.ciphers.tls12, profile.tls12)
            self.assertEqual(policy.ciphers.tls13, profile.tls13)
            self.assertEqual(policy.groups.required, profile.groups)
            self.assertEqual(policy.groups.optional, profile.optionalGroups)
            self.assertEqual((policy.keys.minRSABits, policy.keys.minECBits),
                             (profile.minRSABits, profile.minECBits))
            self.assertEqual(policy.legacy, profile.legacy)

    def test_fromProfileChanges(self) -> None:
        """
        Keyword arguments of L{TLSPolicy.fromProfile} replace the profile's
        fields.
        """
        policy = TLSPolicy.fromProfile("mozilla-modern", name="telemetry",
                                       handshakeTimeout="2.5", alpn="h2,http/1.1")
        self.assertEqual(policy.name, "telemetry")
        self.assertEqual(policy.handshakeTimeout, 2.5)
        self.assertEqual(policy.alpn, ("h2", "http/1.1"))
        self.assertEqual(policy.versions.minimum, TLSVersion.TLSv1_3)

    def test_unknownProfile(self) -> None:
        """
        An unknown profile is refused naming C{profile}, and the fix lists
        the profiles there are.
        """
        error = self.assertPolicyError("profile", TLSPolicy.fromProfile, "nist-800-52r3")
        self.assertEqual(error.value, "nist-800-52r3")
        for name in PROFILES:
            self.assertIn(name, error.fix)
        self.assertPolicyError("profile", TLSPolicy, profile="modern")

    def test_frozen(self) -> None:
        """
        A policy cannot be changed in place.
        """
        policy = TLSPolicy()
        self.assertRaises(attrs.exceptions.FrozenInstanceError,
                          setattr, policy, "legacy", True)

    def test_tlsBelow12OutsideLegacy(self) -> None:
        """
        TLS 1.0 and 1.1 are refused outside the legacy profile, and the fix
        points at it.
        """
        for version in ("TLSv1", "TLSv1.1"):
            error = self.assertFieldError("versions.minimum", "minVersion", TLSPolicy,
                                           versions=Versions(version))
            self.assertIn("legacy", error.fix)

    def test_tlsBelow12InLegacy(self) -> None:
        """
        The legacy profile allows TLS 1.0.
        """
        self.assertEqual(_legacy().versions.minimum, TLSVersion.TLSv1)

    def test_cbcOutsideLegacy(self) -> None:
        """
        A CBC (non-AEAD) cipher is refused outside the legacy profile,
        naming the cipher.
        """
        error = self.assertFieldError(
            "ciphers.tls12", "ciphers", TLSPolicy,
            ciphers=Ciphers(NIST.tls12 + ("ECDHE-RSA-AES128-SHA256",), NIST.tls13))
        self.assertEqual(error.value, "ECDHE-RSA-AES128-SHA256")
        self.assertIn("legacy", error.fix)

    def test_staticRSAOutsideLegacy(self) -> None:
        """
        A static-RSA suite is refused outside the legacy profile even when it
        is AEAD, because it has no forward secrecy.
        """
        error = self.assertFieldError(
            "ciphers.tls12", "ciphers", TLSPolicy,
            ciphers=Ciphers(("AES128-GCM-SHA256",), NIST.tls13))
        self.assertEqual(error.value, "AES128-GCM-SHA256")

    def test_weakCiphersInLegacy(self) -> None:
        """
        The legacy profile allows CBC and static-RSA suites.
        """
        policy = _legacy()
        self.assertIn("AES128-SHA", policy.ciphers.tls12)
        self.assertIn("ECDHE-RSA-AES128-SHA", policy.ciphers.tls12)

    def test_weakRSAOutsideLegacy(self) -> None:
        """
        A minimum RSA size below 2048 bits is refused outside the legacy
        profile.
        """
        self.assertPolicyError("keys.minRSABits", TLSPolicy, keys=KeyStrength(minRSABits=1024))
        self.assertEqual(_legacy().keys.minRSABits, 1024)

    def test_noTLS12Cipher(self) -> None:
        """
        A policy that negotiates TLS 1.2 needs TLS 1.2 ciphers.
        """
        self.assertFieldError("ciphers.tls12", "ciphers",
                              TLSPolicy, ciphers=Ciphers((), NIST.tls13))
        policy = TLSPolicy(versions=Versions("TLSv1.3"), ciphers=Ciphers((), NIST.tls13))
        self.assertEqual(policy.ciphers.tls12, ())

    def test_noTLS13Suite(self) -> None:
        """
        A policy that negotiates TLS 1.3 needs TLS 1.3 suites.
        """
        self.assertFieldError("ciphers.tls13", "ciphersuites",
                              TLSPolicy, ciphers=Ciphers(NIST.tls12, ()))
        policy = TLSPolicy(versions=Versions("TLSv1.2", "TLSv1.2"),
                           ciphers=Ciphers(NIST.tls12, ()))
        self.assertEqual(policy.ciphers.tls13, ())

    def test_handshakeTimeout(self) -> None:
        """
        The handshake timeout is a number of seconds above 0 and at most 600.
        """
        self.assertEqual(TLSPolicy(handshakeTimeout="2.5").handshakeTimeout, 2.5)
        self.assertEqual(TLSPolicy(handshakeTimeout=600).handshakeTimeout, 600.0)
        for bad in ["abc", None, 0, -1, 600.5, "nan", "inf", "-inf", "",
                    "\N{FULLWIDTH DIGIT FIVE}", "1_0"]:
            error = self.assertPolicyError("handshakeTimeout", TLSPolicy,
                                           handshakeTimeout=bad)
            self.assertEqual(error.value, bad)

    def test_name(self) -> None:
        """
        The name, copied into every audit record, is 1 to 128 printable
        characters of any script: a longer one, an empty one, one that is
        not text, and one holding a control character or an invisible
        format character (a bidirectional override or isolate, a zero-width
        space) is refused, naming the character and where it is.
        """
        for good in ("hl7-inbound", "x" * 128, "Station S\N{LATIN SMALL LETTER U WITH DIAERESIS}d 3",
                     "\N{CJK UNIFIED IDEOGRAPH-75C5}\N{CJK UNIFIED IDEOGRAPH-9662}"):
            self.assertEqual(TLSPolicy(name=good).name, good)
        self.assertEqual(TLSPolicy().name, "default")
        for bad, problem in [("x" * 129, "longer than 128"), ("", "empty"),
                             (42, "expected a string"),
                             ("a\x00b", "U+0000 (a control character) at position 1"),
                             ("a\nb", "U+000A"), ("a\tb", "U+0009"),
                             ("ward\N{RIGHT-TO-LEFT OVERRIDE}3",
                              "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 4"),
                             ("\N{LEFT-TO-RIGHT ISOLATE}x", "U+2066"),
                             ("a\N{ZERO WIDTH SPACE}b", "U+200B"),
                             ("a\N{LINE SEPARATOR}b", "U+2028")]:
            error = self.assertPolicyError("name", TLSPolicy, name=bad)
            self.assertIn(problem, error.problem)
        error = self.assertPolicyError("name", TLSPolicy, name="y" * 100_000)
        self.assertLess(len(str(error)), 300)

    def test_alpn(self) -> None:
        """
        ALPN names are 1 to 255 bytes; they may be given as text or a list.
        """
        self.assertEqual(TLSPolicy(alpn=["h2", "http/1.1"]).alpn, ("h2", "http/1.1"))
        self.assertEqual(TLSPolicy(alpn="mllp").alpn, ("mllp",))
        self.assertEqual(TLSPolicy(alpn="").alpn, ())
        self.assertEqual(TLSPolicy(alpn=["\N{SNOWMAN}" * 85]).alpn, ("\N{SNOWMAN}" * 85,))
        self.assertPolicyError("alpn", TLSPolicy, alpn=["h2", ""])
        self.assertPolicyError("alpn", TLSPolicy, alpn=["x" * 256])
        self.assertPolicyError("alpn", TLSPolicy, alpn=["\N{SNOWMAN}" * 86])


class TLSPolicyChangeTests(SynchronousTestCase, PolicyErrorAssertions):
    """
    Tests for changing a policy with L{attrs.evolve} and the C{with*}
    helpers.
    """

    def test_evolve(self) -> None:
        """
        L{attrs.evolve} returns a new policy and leaves the original alone.
        """
        policy = TLSPolicy()
        changed = attrs.evolve(policy, name="hl7-inbound")
        self.assertEqual(changed.name, "hl7-inbound")
        self.assertEqual(policy.name, "default")

    def test_evolveValidates(self) -> None:
        """
        L{attrs.evolve} validates the result like construction does.
        """
        self.assertFieldError("versions.minimum", "minVersion", attrs.evolve, TLSPolicy(),
                               versions=Versions("TLSv1"))
        self.assertPolicyError("handshakeTimeout", attrs.evolve, TLSPolicy(),
                               handshakeTimeout=0)

    def test_withVersions(self) -> None:
        """
        L{TLSPolicy.withVersions} changes the given end of the range only.
        """
        policy = TLSPolicy().withVersions(minimum="TLSv1.3")
        self.assertEqual((policy.versions.minimum, policy.versions.maximum),
                         (TLSVersion.TLSv1_3, TLSVersion.TLSv1_3))
        policy = TLSPolicy().withVersions(maximum=TLSVersion.TLSv1_2)
        self.assertEqual((policy.versions.minimum, policy.versions.maximum),
                         (TLSVersion.TLSv1_2, TLSVersion.TLSv1_2))

    def test_withVersionsValidates(self) -> None:
        """
        L{TLSPolicy.withVersions} refuses what construction refuses.
        """
        self.assertFieldError("versions.minimum", "minVersion",
                              TLSPolicy().withVersions, minimum="TLSv1.1")
        self.assertFieldError("versions.minimum", "minVersion", TLSPolicy().withVersions,
                               minimum="TLSv1.3", maximum="TLSv1.2")

    def test_withTrust(self) -> None:
        """
        L{TLSPolicy.withTrust} replaces the trust anchors.
        """
        trust = TrustAnchors(caFile="ca.pem")
        policy = TLSPolicy()
        self.assertEqual(policy.withTrust(trust).trust, trust)
        self.assertEqual(policy.trust, TrustAnchors())

    def test_withCredentials(self) -> None:
        """
        L{TLSPolicy.withCredentials} replaces the own credentials.
        """
        self.assertEqual(TLSPolicy().withCredentials(_SERVER_CREDENTIALS).credentials,
                         _SERVER_CREDENTIALS)

    def test_withPeer(self) -> None:
        """
        L{TLSPolicy.withPeer} replaces the peer verification.
        """
        peer = PeerVerification(clientAuth=ClientAuth.OPTIONAL, allow="cn:PUMP-0042")
        self.assertEqual(TLSPolicy().withPeer(peer).peer, peer)


class RequireForTests(SynchronousTestCase, PolicyErrorAssertions):
    """
    Tests for L{TLSPolicy.requireFor}: what each role needs.
    """

    def test_serverWithoutCredentials(self) -> None:
        """
        A server needs its own certificate and key.
        """
        self.assertPolicyError("certKey", TLSPolicy().requireFor, Role.SERVER)

    def test_server(self) -> None:
        """
        A server with credentials is fine as it is.
        """
        policy = TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
        self.assertEqual(policy.requireFor(Role.SERVER), policy)

    def test_mutualServerWithoutCA(self) -> None:
        """
        A mutual-TLS server needs the CA that issues client certificates.
        """
        policy = TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
        error = self.assertPolicyError("caCerts", policy.requireFor, Role.SERVER,
                                       mutual=True)
        self.assertIn("caCerts=", error.fix)

    def test_mutualServerWithSystemCAsOnly(self) -> None:
        """
        The system CA store does not count: a server verifying client
        certificates needs a private CA.
        """
        policy = (TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
                  .withTrust(TrustAnchors(system=True)))
        self.assertPolicyError("caCerts", policy.requireFor, Role.SERVER, mutual=True)

    def test_optionalClientAuthWithoutCA(self) -> None:
        """
        A one-way server that asks for optional client certificates also
        needs the CA.
        """
        policy = (TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
                  .withPeer(PeerVerification(clientAuth="optional")))
        self.assertPolicyError("caCerts", policy.requireFor, Role.SERVER)

    def test_mutualServerRequiresClientCertificate(self) -> None:
        """
        For mutual TLS, a server's client-certificate mode becomes
        C{required}; the original policy is unchanged.
        """
        policy = (TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
                  .withTrust(TrustAnchors(caFile="ca.pem")))
        mutual = policy.requireFor(Role.SERVER, mutual=True)
        self.assertIs(mutual.peer.clientAuth, ClientAuth.REQUIRED)
        self.assertIs(policy.peer.clientAuth, ClientAuth.NONE)

    def test_mutualServerOptional(self) -> None:
        """
        C{mtls:} always requires a client certificate, so an explicitly
        optional mode is refused.
        """
        policy = (TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
                  .withTrust(TrustAnchors(caFile="ca.pem"))
                  .withPeer(PeerVerification(clientAuth="optional")))
        self.assertPolicyError("clientAuth", policy.requireFor, Role.SERVER, mutual=True)

    def test_serverWithHostname(self) -> None:
        """
        Only clients verify a hostname.
        """
        policy = (TLSPolicy().withCredentials(_SERVER_CREDENTIALS)
                  .withPeer(PeerVerification(hostname="lab.example")))
        self.assertPolicyError("hostname", policy.requireFor, Role.SERVER)

    def test_clientWithClientAuth(self) -> None:
        """
        A client policy may not ask for client certificates.
        """
        policy = TLSPolicy().withPeer(PeerVerification(clientAuth="required"))
        error = self.assertPolicyError("clientAuth", policy.requireFor, Role.CLIENT)
        self.assertEqual(error.value, "required")

    def test_clientDefaultsToSystemTrust(self) -> None:
        """
        A client without trust anchors trusts the system store.
        """
        policy = TLSPolicy().requireFor(Role.CLIENT)
        self.assertTrue(policy.trust.system)

    def test_clientKeepsPrivateTrust(self) -> None:
        """
        A client with a CA file keeps only that CA.
        """
        trust = TrustAnchors(caFile="ca.pem")
        self.assertEqual(TLSPolicy().withTrust(trust).requireFor(Role.CLIENT).trust, trust)

    def test_mutualClientWithoutCredentials(self) -> None:
        """
        An C{mtls:} client must present a certificate.
        """
        self.assertPolicyError("certKey", TLSPolicy().requireFor, Role.CLIENT, mutual=True)


class ComplianceTests(SynchronousTestCase):
    """
    Tests for L{TLSPolicy.compliant}.
    """

    def test_nist(self) -> None:
        """
        The default profile is compliant.
        """
        self.assertTrue(TLSPolicy().compliant)

    def test_nistWithCCM(self) -> None:
        """
        Adding the NIST-approved CCM suites keeps a policy compliant.
        """
        policy = TLSPolicy(ciphers=Ciphers(
            NIST.tls12 + ("ECDHE-ECDSA-AES128-CCM",),
            NIST.tls13 + ("TLS_AES_128_CCM_SHA256",)))
        self.assertTrue(policy.compliant)

    def test_strongerKeys(self) -> None:
        """
        Demanding larger keys keeps a policy compliant.
        """
        self.assertTrue(TLSPolicy(keys=KeyStrength(3072, 384)).compliant)

    def test_otherProfiles(self) -> None:
        """
        The Mozilla profiles (X25519, ChaCha20) and the legacy profile are not
        compliant.
        """
        self.assertFalse(TLSPolicy.fromProfile("mozilla-modern").compliant)
        self.assertFalse(TLSPolicy.fromProfile("mozilla-intermediate").compliant)
        self.assertFalse(_legacy().compliant)

    def test_chacha(self) -> None:
        """
        ChaCha20 is allowed outside the legacy profile but not compliant.
        """
        policy = TLSPolicy(ciphers=Ciphers(NIST.tls12 + ("ECDHE-RSA-CHACHA20-POLY1305",),
                                           NIST.tls13))
        self.assertFalse(policy.compliant)
        policy = TLSPolicy(ciphers=Ciphers(NIST.tls12, ("TLS_CHACHA20_POLY1305_SHA256",)))
        self.assertFalse(policy.compliant)

    def test_nonNISTGroup(self) -> None:
        """
        A non-NIST group, even an optional one, makes a policy non-compliant.
        """
        self.assertFalse(TLSPolicy(groups=Groups(["X25519"])).compliant)
        self.assertFalse(TLSPolicy(groups=Groups(["P-256"], ["X25519MLKEM768"])).compliant)
        self.assertTrue(TLSPolicy(groups=Groups(["P-384"], ["SecP384r1MLKEM1024"])).compliant)

    def test_legacyFlag(self) -> None:
        """
        A policy with the legacy flag is never compliant, even when its
        settings are.
        """
        self.assertFalse(TLSPolicy(legacy=True).compliant)


class LegacyWarningTests(SynchronousTestCase):
    """
    Tests for L{LegacyProfileWarning}.
    """

    def test_legacyWarns(self) -> None:
        """
        Building a policy from the legacy profile warns, pointing at the
        caller, and says the profile is insecure.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            TLSPolicy.fromProfile("legacy")
        legacy = [w for w in caught if issubclass(w.category, LegacyProfileWarning)]
        self.assertEqual(len(legacy), 1)
        self.assertIn("insecure", str(legacy[0].message))
        self.assertEqual(legacy[0].filename, __file__)
        self.assertTrue(issubclass(LegacyProfileWarning, UserWarning))

    def test_otherProfilesDoNotWarn(self) -> None:
        """
        No other profile warns.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, profile in PROFILES.items():
                if not profile.legacy:
                    TLSPolicy.fromProfile(name)
        self.assertEqual([w for w in caught
                          if issubclass(w.category, LegacyProfileWarning)], [])
