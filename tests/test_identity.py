"""
Tests for L{securetcp.identity}: allow-list rules, SPKI pins, reading a
peer's identity from its certificate, and the authorisation decision.
"""

from __future__ import annotations

import base64
import hashlib
import string

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.errors import PolicyError
from securetcp.identity import (
    IDENTITY_KINDS,
    IdentityPattern,
    PeerIdentity,
    authorise,
    identityFromCertificate,
    parseIdentityPattern,
    parsePin,
    spkiDigest,
)

from ._pki import TestPKI, sharedPKI


def _pki() -> TestPKI:
    return sharedPKI("identity")

def _cert(name: str) -> x509.Certificate:
    with open(_pki().path(name), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _matches(rule: str, **identity: object) -> bool:
    return parseIdentityPattern(rule).matches(PeerIdentity(**identity))  # type: ignore[arg-type]


DIGEST = hashlib.sha256(b"a public key").digest()


class PatternParsingTests(SynchronousTestCase):
    """
    Tests for L{parseIdentityPattern}.
    """

    def test_kinds(self) -> None:
        """
        Each kind parses into an L{IdentityPattern} that keeps the kind and
        pattern and prints as it was written.
        """
        for text in ["dns:device-*.ward3.hospital.example", "ip:10.20.0.0/16",
                     "uri:spiffe://hospital.example/ward3/*",
                     "email:*@lab.hospital.example", "cn:PUMP-0042"]:
            rule = parseIdentityPattern(text)
            self.assertIsInstance(rule, IdentityPattern)
            self.assertEqual(str(rule), text)
            self.assertEqual(rule.kind, text.partition(":")[0])
        self.assertEqual(IDENTITY_KINDS, ("dns", "ip", "uri", "email", "cn"))

    def test_kindCaseAndBlanks(self) -> None:
        """
        The kind is case-insensitive; blanks around kind and pattern are
        ignored.
        """
        rule = parseIdentityPattern(" DNS : lab.example.org ")
        self.assertEqual((rule.kind, rule.pattern), ("dns", "lab.example.org"))

    def test_equality(self) -> None:
        """
        Two rules parsed from the same text are equal.
        """
        self.assertEqual(parseIdentityPattern("uri:spiffe://x/*"),
                         parseIdentityPattern("uri:spiffe://x/*"))
        self.assertNotEqual(parseIdentityPattern("cn:a"), parseIdentityPattern("cn:b"))

    def assertRejected(self, text: object, field: str = "allowPeers") -> PolicyError:
        error = self.assertRaises(PolicyError, parseIdentityPattern, text)
        self.assertEqual(error.field, field)
        self.assertEqual(error.value, text)
        self.assertTrue(error.fix)
        return error

    def test_noKind(self) -> None:
        """
        A rule without C{KIND:} is refused, and the fix shows every kind.
        """
        error = self.assertRejected("device-7.example.org")
        for kind in IDENTITY_KINDS:
            self.assertIn(kind + ":", error.fix)

    def test_notText(self) -> None:
        """
        A rule that is not text is refused with a L{PolicyError}.
        """
        self.assertRejected(None)
        self.assertRejected(42)

    def test_unknownKind(self) -> None:
        """
        An unknown kind is refused, naming it.
        """
        error = self.assertRejected("host:lab.example.org")
        self.assertIn("'host'", error.problem)

    def test_emptyPattern(self) -> None:
        """
        A kind without a pattern is refused.
        """
        for text in ["dns:", "cn:  ", "uri:"]:
            self.assertRejected(text)

    def test_malformedDNS(self) -> None:
        """
        DNS patterns with characters a DNS name cannot hold, empty labels or
        C{**} are refused.
        """
        for text in ["dns:bad name.example", "dns:a..b", "dns:**.example",
                     "dns:lab/ward.example", "dns:.example", "dns:ex@mple.org"]:
            self.assertRejected(text)

    def test_malformedIP(self) -> None:
        """
        IP patterns that are not an address or a CIDR network are refused.
        """
        for text in ["ip:10.0.0.300", "ip:lab.example.org", "ip:10.0.0.0/33",
                     "ip:10.*.0.1", "ip:2001:db8::/129"]:
            self.assertRejected(text)

    def test_malformedURI(self) -> None:
        """
        URI patterns without a scheme are refused.
        """
        self.assertRejected("uri:hospital.example/ward3/*")

    def test_malformedEmail(self) -> None:
        """
        E-mail patterns need exactly one C{@}.
        """
        self.assertRejected("email:lab.hospital.example")
        self.assertRejected("email:a@b@c.example")

    def test_customField(self) -> None:
        """
        The error names the field the caller says the rule came from.
        """
        error = self.assertRaises(PolicyError, parseIdentityPattern, "bogus",
                                  field="allow")
        self.assertEqual(error.field, "allow")


class PatternMatchingTests(SynchronousTestCase):
    """
    Tests for L{IdentityPattern.matches}: C{*} matches a run of characters
    within one label.
    """

    def test_dnsWildcardWithinOneLabel(self) -> None:
        """
        In a DNS pattern, C{*} matches within one label and never crosses a
        dot.
        """
        rule = "dns:*.ward3.hospital.example"
        self.assertTrue(_matches(rule, dns=("pump1.ward3.hospital.example",)))
        self.assertFalse(_matches(rule, dns=("a.pump1.ward3.hospital.example",)))
        self.assertFalse(_matches(rule, dns=("ward3.hospital.example",)))
        self.assertFalse(_matches(rule, dns=("pump1.ward9.hospital.example",)))

    def test_dnsPartialLabel(self) -> None:
        """
        C{*} can stand for part of a label, including none of it.
        """
        rule = "dns:device-*.example"
        self.assertTrue(_matches(rule, dns=("device-42.example",)))
        self.assertTrue(_matches(rule, dns=("device-.example",)))
        self.assertFalse(_matches(rule, dns=("device-4.2.example",)))
        self.assertFalse(_matches(rule, dns=("sensor-42.example",)))

    def test_dnsCaseInsensitive(self) -> None:
        """
        DNS names match case-insensitively; a trailing dot on the pattern is
        ignored.
        """
        self.assertTrue(_matches("dns:Lab.Example.ORG.", dns=("lab.example.org",)))

    def test_dnsExact(self) -> None:
        """
        A pattern without C{*} matches only that name, not a suffix or
        prefix of it.
        """
        self.assertTrue(_matches("dns:lab.example.org", dns=("lab.example.org",)))
        self.assertFalse(_matches("dns:lab.example.org", dns=("xlab.example.org",)))
        self.assertFalse(_matches("dns:lab.example.org", dns=("lab.example.org.evil",)))

    def test_dnsAnySAN(self) -> None:
        """
        A rule matches if any of the peer's DNS names matches; other SAN
        kinds are not looked at.
        """
        rule = "dns:lab.example.org"
        self.assertTrue(_matches(rule, dns=("a.example", "lab.example.org")))
        self.assertFalse(_matches(rule, commonName=("lab.example.org",),
                                  uri=("lab.example.org",)))

    def test_ipNetwork(self) -> None:
        """
        An IP rule matches addresses inside its network, IPv4 or IPv6.
        """
        self.assertTrue(_matches("ip:10.20.0.0/16", ip=("10.20.3.4",)))
        self.assertFalse(_matches("ip:10.20.0.0/16", ip=("10.21.0.1",)))
        self.assertTrue(_matches("ip:10.0.0.7", ip=("10.0.0.7",)))
        self.assertFalse(_matches("ip:10.0.0.7", ip=("10.0.0.8",)))
        self.assertTrue(_matches("ip:2001:db8::/32", ip=("2001:db8::1",)))
        self.assertFalse(_matches("ip:2001:db8::/32", ip=("10.0.0.1",)))

    def test_ipNonStrict(self) -> None:
        """
        An address with a prefix length means its network.
        """
        self.assertTrue(_matches("ip:10.0.0.7/8", ip=("10.9.9.9",)))

    def test_ipIgnoresGarbage(self) -> None:
        """
        A SAN value that is not an IP address never matches and never
        raises.
        """
        self.assertFalse(_matches("ip:0.0.0.0/0", ip=("not-an-ip",)))
        self.assertTrue(_matches("ip:0.0.0.0/0", ip=("not-an-ip", "1.2.3.4")))

    def test_spiffeURI(self) -> None:
        """
        In a URI pattern, C{*} never crosses a C{/}: a SPIFFE rule for a
        ward admits that ward's workloads, not deeper paths or other wards.
        """
        rule = "uri:spiffe://hospital.example/ward3/*"
        self.assertTrue(_matches(rule, uri=("spiffe://hospital.example/ward3/pump-0042",)))
        self.assertFalse(_matches(rule, uri=("spiffe://hospital.example/ward3/a/pump",)))
        self.assertFalse(_matches(rule, uri=("spiffe://hospital.example/ward9/pump-0099",)))
        self.assertFalse(_matches(rule, uri=("spiffe://evil.example/ward3/pump",)))

    def test_urn(self) -> None:
        """
        A C{urn:} pattern needs no C{://}.
        """
        self.assertTrue(_matches("uri:urn:uuid:*", uri=("urn:uuid:1234",)))

    def test_emailDomainLabels(self) -> None:
        """
        In an e-mail pattern, C{*} never crosses a dot in the domain.
        """
        rule = "email:*@*.hospital.example"
        self.assertTrue(_matches(rule, email=("bob@lab.hospital.example",)))
        self.assertFalse(_matches(rule, email=("bob@a.lab.hospital.example",)))
        self.assertFalse(_matches("email:*@lab.hospital.example",
                                  email=("bob@sub.lab.hospital.example",)))

    def test_emailLocalPart(self) -> None:
        """
        The local part is not a domain: C{*} there matches dotted local parts
        such as C{jane.doe}, but not across the C{@}.
        """
        rule = "email:*@lab.hospital.example"
        self.assertTrue(_matches(rule, email=("alice@lab.hospital.example",)))
        self.assertTrue(_matches(rule, email=("jane.doe@lab.hospital.example",)))
        self.assertFalse(_matches(rule, email=("a@b@lab.hospital.example",)))
        self.assertFalse(_matches(rule, email=("alice@lab.hospital.example.evil",)))

    def test_commonName(self) -> None:
        """
        A C{cn:} rule matches the subject's common name; C{*} matches
        anything there.
        """
        self.assertTrue(_matches("cn:PUMP-0042", commonName=("PUMP-0042",)))
        self.assertFalse(_matches("cn:PUMP-0042", commonName=("PUMP-00420",)))
        self.assertTrue(_matches("cn:PUMP-*", commonName=("PUMP-a.b/c",)))
        self.assertFalse(_matches("cn:PUMP-*", dns=("PUMP-1",)))

    def test_regexCharactersAreLiteral(self) -> None:
        """
        Characters special to regular expressions are matched literally.
        """
        self.assertFalse(_matches("cn:PUMP.0042", commonName=("PUMPX0042",)))
        self.assertTrue(_matches("cn:a+b(c)", commonName=("a+b(c)",)))


class PinTests(SynchronousTestCase):
    """
    Tests for L{parsePin}.
    """

    def test_hpkpForm(self) -> None:
        """
        C{sha256/BASE64} gives the digest; the prefix is case-insensitive.
        """
        b64 = base64.b64encode(DIGEST).decode()
        self.assertEqual(parsePin("sha256/" + b64), DIGEST)
        self.assertEqual(parsePin("SHA256/" + b64), DIGEST)

    def test_base64(self) -> None:
        """
        Bare base64 gives the digest.
        """
        self.assertEqual(parsePin(base64.b64encode(DIGEST).decode()), DIGEST)

    def test_hex(self) -> None:
        """
        64 hex digits, either case, give the digest; blanks around are
        ignored.
        """
        self.assertEqual(parsePin(DIGEST.hex()), DIGEST)
        self.assertEqual(parsePin(" " + DIGEST.hex().upper() + "\n"), DIGEST)

    def test_certificatePin(self) -> None:
        """
        The pin of a real certificate's key round-trips, as the identity's
        C{spkiSHA256} prints it.
        """
        cert = _cert("server.pem")
        identity = identityFromCertificate(cert)
        self.assertEqual(parsePin("sha256/" + identity.spkiSHA256), spkiDigest(cert))

    def test_bad(self) -> None:
        """
        Anything that is not a 32-byte digest in one of the forms is refused
        naming C{pinSPKI} and showing how to compute a pin.
        """
        sha1 = hashlib.sha1(b"x").digest()
        for text in ["", "sha256/", "not a pin", DIGEST.hex()[:-1], "g" * 64,
                     base64.b64encode(sha1).decode(),
                     "sha1/" + base64.b64encode(DIGEST).decode(),
                     base64.b64encode(DIGEST).decode()[:-2],
                     base64.b64encode(DIGEST + b"x").decode(),
                     DIGEST.hex() + "00"]:
            error = self.assertRaises(PolicyError, parsePin, text)
            self.assertEqual(error.field, "pinSPKI")
            self.assertEqual(error.value, text)
            self.assertIn("openssl", error.fix)

    def test_customField(self) -> None:
        """
        The error names the field the caller gives.
        """
        self.assertEqual(self.assertRaises(PolicyError, parsePin, "x", "pins").field,
                         "pins")


class IdentityFromCertificateTests(SynchronousTestCase):
    """
    Tests for L{identityFromCertificate}.
    """

    def test_client(self) -> None:
        """
        A device certificate's subject, common name, DNS and SPIFFE SANs,
        serial, issuer, fingerprints and expiry are read.
        """
        cert = _cert("client.pem")
        identity = identityFromCertificate(cert)
        self.assertEqual(identity.commonName, ("PUMP-0042",))
        self.assertIn("CN=PUMP-0042", identity.subject)
        self.assertEqual(identity.dns, ("pump-0042.ward3.hospital.example",))
        self.assertEqual(identity.uri, ("spiffe://hospital.example/ward3/pump-0042",))
        self.assertEqual((identity.ip, identity.email), ((), ()))
        self.assertEqual(identity.serial, format(cert.serial_number, "x"))
        self.assertIn("CN=securetcp test CA", identity.issuer)
        self.assertEqual(identity.sha256, cert.fingerprint(hashes.SHA256()).hex())
        self.assertEqual(base64.b64decode(identity.spkiSHA256), spkiDigest(cert))
        self.assertEqual(identity.notAfter, cert.not_valid_after_utc.isoformat())

    def test_serverIP(self) -> None:
        """
        IP address SANs are read as text.
        """
        identity = identityFromCertificate(_cert("server.pem"))
        self.assertEqual(identity.ip, ("127.0.0.1",))
        self.assertEqual(identity.dns, ("localhost",))

    def test_noSAN(self) -> None:
        """
        A certificate without a SAN extension has empty SANs and still its
        common name.
        """
        identity = identityFromCertificate(_cert("client-other.pem"))
        self.assertEqual((identity.dns, identity.ip, identity.uri, identity.email),
                         ((), (), (), ()))
        self.assertEqual(identity.commonName, ("PUMP-ROGUE",))
        self.assertIn("CN=untrusted CA", identity.issuer)

    def test_asRecord(self) -> None:
        """
        L{PeerIdentity.asRecord} gives the audit log's JSON-ready shape.
        """
        identity = identityFromCertificate(_cert("client.pem"))
        record = identity.asRecord()
        self.assertEqual(set(record), {"subject", "san", "serial", "issuer", "sha256",
                                       "spkiSHA256", "notAfter"})
        self.assertEqual(record["san"], {"dns": list(identity.dns), "ip": [],
                                         "uri": list(identity.uri), "email": []})

    def test_allowListOnRealCertificate(self) -> None:
        """
        The documented SPIFFE rule admits the ward-3 device and not the
        ward-9 one.
        """
        rule = parseIdentityPattern("uri:spiffe://hospital.example/ward3/*")
        self.assertTrue(rule.matches(identityFromCertificate(_cert("client.pem"))))
        self.assertFalse(rule.matches(identityFromCertificate(_cert("client2.pem"))))


class AuthoriseTests(SynchronousTestCase):
    """
    Tests for L{authorise}.
    """

    def setUp(self) -> None:
        self.leaf = _cert("client.pem")
        self.ca = _cert("ca.pem")
        self.identity = identityFromCertificate(self.leaf)
        self.chain = [spkiDigest(self.leaf), spkiDigest(self.ca)]

    def test_nothingConfigured(self) -> None:
        """
        Without an allow-list or pins, any verified peer is allowed.
        """
        self.assertIsNone(authorise(self.identity, self.chain, (), ()))

    def test_allowed(self) -> None:
        """
        A peer matching any rule of the allow-list is allowed.
        """
        rules = [parseIdentityPattern("cn:OTHER"),
                 parseIdentityPattern("dns:*.ward3.hospital.example")]
        self.assertIsNone(authorise(self.identity, self.chain, rules, ()))

    def test_notAllowed(self) -> None:
        """
        A peer matching no rule is refused as C{identity_not_allowed}, naming
        its subject.
        """
        rules = [parseIdentityPattern("uri:spiffe://hospital.example/ward9/*")]
        reason, detail = authorise(self.identity, self.chain, rules, ())  # type: ignore[misc]
        self.assertEqual(reason, "identity_not_allowed")
        self.assertIn("PUMP-0042", detail)

    def test_noSubject(self) -> None:
        """
        A refused peer without a subject is described as such.
        """
        result = authorise(PeerIdentity(), [], [parseIdentityPattern("cn:x")], ())
        self.assertEqual(result, ("identity_not_allowed",
                                  "peer (no subject) matches no rule of allowPeers"))

    def test_pinOnLeaf(self) -> None:
        """
        A pin matching the leaf's key allows the peer.
        """
        self.assertIsNone(authorise(self.identity, self.chain, (), [spkiDigest(self.leaf)]))

    def test_pinOnCA(self) -> None:
        """
        A pin matching any certificate of the chain (here the CA) allows the
        peer.
        """
        self.assertIsNone(authorise(self.identity, self.chain, (), [DIGEST, spkiDigest(self.ca)]))

    def test_pinMismatch(self) -> None:
        """
        When no certificate in the chain matches a pin, the peer is refused
        as C{pin_mismatch}.
        """
        reason, _ = authorise(self.identity, self.chain, (), [DIGEST])  # type: ignore[misc]
        self.assertEqual(reason, "pin_mismatch")

    def test_pinCheckedFirst(self) -> None:
        """
        A pin mismatch is reported even when the identity is allowed; an
        allowed pin does not excuse an identity that is not.
        """
        allowed = [parseIdentityPattern("cn:PUMP-0042")]
        denied = [parseIdentityPattern("cn:PUMP-0099")]
        self.assertEqual(authorise(self.identity, self.chain, allowed, [DIGEST])[0],  # type: ignore[index]
                         "pin_mismatch")
        self.assertEqual(
            authorise(self.identity, self.chain, denied, [spkiDigest(self.leaf)])[0],  # type: ignore[index]
            "identity_not_allowed")
        self.assertIsNone(authorise(self.identity, self.chain, allowed, [spkiDigest(self.ca)]))


_KIND = st.one_of(st.sampled_from(IDENTITY_KINDS + ("DNS", " ip ", "host", "")), st.text(max_size=5))
_PATTERN_CHARS = string.ascii_letters + string.digits + ".-*_/:@[]%?#~ \t\\+()"
_RULES = st.one_of(
    st.text(),
    st.builds(lambda k, p: f"{k}:{p}", _KIND, st.text(alphabet=_PATTERN_CHARS, max_size=30)),
    st.builds(lambda k, p: f"{k}:{p}", _KIND, st.text(max_size=30)),
)
_IDENTITIES = st.builds(
    PeerIdentity,
    commonName=st.lists(st.text(max_size=20), max_size=2).map(tuple),
    dns=st.lists(st.text(alphabet=_PATTERN_CHARS, max_size=20), max_size=2).map(tuple),
    ip=st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=10)),
                max_size=2).map(tuple),
    uri=st.lists(st.text(max_size=20), max_size=2).map(tuple),
    email=st.lists(st.text(alphabet=_PATTERN_CHARS, max_size=20), max_size=2).map(tuple),
)
_PINS = st.one_of(
    st.text(),
    st.binary(min_size=30, max_size=34).map(lambda b: base64.b64encode(b).decode()),
    st.binary(min_size=30, max_size=34).map(lambda b: "sha256/" + base64.b64encode(b).decode()),
    st.binary(min_size=31, max_size=33).map(lambda b: b.hex()),
    st.text(alphabet=string.hexdigits, min_size=62, max_size=66),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=40, max_size=48),
)


class ParsingProperties(SynchronousTestCase):
    """
    Properties of the parsers over arbitrary text: the only way they fail is
    a L{PolicyError}.
    """

    @settings(max_examples=300)
    @given(_RULES, _IDENTITIES)
    def test_parseIdentityPatternTotal(self, text: str, identity: PeerIdentity) -> None:
        """
        L{parseIdentityPattern} on any text either returns an
        L{IdentityPattern} of a known kind, whose C{matches} answers a bool
        for any identity, or raises L{PolicyError}; never anything else.
        """
        try:
            rule = parseIdentityPattern(text)
        except PolicyError as e:
            self.assertEqual(e.field, "allowPeers")
            return
        self.assertIsInstance(rule, IdentityPattern)
        self.assertIn(rule.kind, IDENTITY_KINDS)
        self.assertIsInstance(rule.matches(identity), bool)

    @settings(max_examples=300)
    @given(_PINS)
    def test_parsePinTotal(self, text: str) -> None:
        """
        L{parsePin} on any text either returns a 32-byte digest or raises
        L{PolicyError}; never anything else.
        """
        try:
            digest = parsePin(text)
        except PolicyError as e:
            self.assertEqual(e.field, "pinSPKI")
            return
        self.assertIsInstance(digest, bytes)
        self.assertEqual(len(digest), 32)
