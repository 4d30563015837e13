"""
Tests for L{securetcp.binding}: the binding part of a policy (its rules,
claim patterns with certificate substitutions, the decision), the same
from endpoint strings, policy files and Python with the same errors, and
the shipped L{IIdentityBinding}s.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from securetcp._parsers import _policyFor
from securetcp.binding import (
    BINDINGS,
    ClaimPattern,
    FirstMessage,
    IdentityBinding,
    IIdentityBinding,
    bindingRules,
    judge,
)
from securetcp.config import buildPolicy, loadPolicyFile
from securetcp.errors import EndpointArgumentError, PolicyError, PolicyFileError
from securetcp.identity import PeerIdentity
from securetcp.materials import loadMaterials
from securetcp.policy import Role
from securetcp.protocols import MalformedMessage

from ._net import escape
from ._pki import sharedPKI


@implementer(IIdentityBinding)
class HelloBinding:
    """
    A protocol whose first line is C{HELLO NAME}: the binding of
    docs/bindings.md's example.
    """

    name = "hello"
    claimKeys = {"helloName": "the NAME of the HELLO line"}
    maxBytes = 256

    def read(self, data: bytes) -> Optional[FirstMessage]:
        line, newline, _ = data.partition(b"\n")
        if not newline:
            return None
        if not line.startswith(b"HELLO "):
            raise MalformedMessage("hello", "the first line is not HELLO NAME")
        return FirstMessage({"helloName": line[6:].decode("ascii", "replace")})

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        return b"DENIED\n"


PUMP = PeerIdentity(subject="CN=PUMP-3A", commonName=("PUMP-3A",),
                    uri=("spiffe://hospital.example/ward3/pump-3a",), serial="1f")


class ClaimPatternTests(SynchronousTestCase):
    """
    L{ClaimPattern}: C{*} and the certificate's fields in braces.
    """

    def test_wildcard(self) -> None:
        """
        C{*} matches any run of characters (none too); the rest literally
        and case-sensitively.
        """
        pattern = ClaimPattern.parse("PUMP3*")
        for claimed, expected in [("PUMP3", True), ("PUMP3-ICU", True), ("pump3", False),
                                  ("XPUMP3", False), (None, False)]:
            self.assertEqual(pattern.matches(claimed, PUMP), expected, claimed)
        self.assertTrue(ClaimPattern.parse("*").matches(None, PUMP))

    def test_substitution(self) -> None:
        """
        C{{cn}}, C{{uri}} and C{{serial}} stand for the certificate's
        values; a field the certificate lacks matches nothing.
        """
        self.assertTrue(ClaimPattern.parse("{cn}").matches("PUMP-3A", PUMP))
        self.assertTrue(ClaimPattern.parse("dev-{serial}").matches("dev-1f", PUMP))
        self.assertTrue(ClaimPattern.parse("{uri}").matches(PUMP.uri[0], PUMP))
        self.assertFalse(ClaimPattern.parse("{cn}").matches("PUMP-3B", PUMP))
        self.assertFalse(ClaimPattern.parse("{dns}").matches("", PUMP))

    def test_substitutionIsLiteral(self) -> None:
        """
        A certificate value is matched literally: its C{*} or regular
        expression characters are no wildcards.
        """
        odd = PeerIdentity(commonName=("P*.+",))
        self.assertTrue(ClaimPattern.parse("{cn}").matches("P*.+", odd))
        self.assertFalse(ClaimPattern.parse("{cn}").matches("PXX.+", odd))
        self.assertFalse(ClaimPattern.parse("{cn}").matches("P*..", odd))

    @given(st.text(max_size=20), st.text(max_size=20))
    def test_substitutionFuzz(self, cn: str, claimed: str) -> None:
        """
        C{{cn}} matches the certificate's common name exactly, whatever
        characters it holds, and nothing else.
        """
        identity = PeerIdentity(commonName=(cn,))
        pattern = ClaimPattern.parse("{cn}")
        self.assertTrue(pattern.matches(cn, identity))
        self.assertEqual(pattern.matches(claimed, identity), claimed == cn)

    def test_badPatterns(self) -> None:
        """
        An unknown field or a lone brace is refused, naming the fix.
        """
        for text, problem in [("{cm}", "unknown certificate field {cm}"),
                              ("A{cn", "unmatched brace"), ("A}", "unmatched brace")]:
            with self.assertRaises(PolicyError) as caught:
                ClaimPattern.parse(text)
            self.assertIn(problem, caught.exception.problem)


class JudgeTests(SynchronousTestCase):
    """
    L{judge}: the first rule whose peer matches decides.
    """

    rules = bindingRules("uri:spiffe://hospital.example/ward3/pump-3a, hl7SendingFacility=ICU;"
                         "uri:spiffe://hospital.example/ward3/*, hl7SendingFacility=WARD3|W3,"
                         " hl7SendingApplication=PUMP*")

    def test_firstMatchDecides(self) -> None:
        """
        The specific rule before the general one decides for its peer.
        """
        self.assertIsNone(judge(self.rules, PUMP, {"hl7SendingFacility": "ICU"}))
        key, detail = judge(self.rules, PUMP, {"hl7SendingFacility": "WARD3"}) or ("", "")
        self.assertEqual(key, "hl7SendingFacility")
        self.assertIn("'WARD3' is not one the rule for uri:spiffe://hospital.example/ward3/"
                      "pump-3a allows (ICU)", detail)

    def test_everyClaim(self) -> None:
        """
        Every claim a rule names must match; claims it does not name are
        not checked.
        """
        other = PeerIdentity(uri=("spiffe://hospital.example/ward3/pump-9",))
        claims = {"hl7SendingFacility": "W3", "hl7SendingApplication": "PUMP9",
                  "hl7ReceivingFacility": "ANY"}
        self.assertIsNone(judge(self.rules, other, claims))
        claims["hl7SendingApplication"] = "LAB"
        self.assertEqual((judge(self.rules, other, claims) or ("",))[0], "hl7SendingApplication")

    def test_severalProtocols(self) -> None:
        """
        A rule may name the claims of several protocols (one registry for
        the HL7, DICOM and MQTT listeners): each protocol checks its own,
        and a rule naming none of a protocol's claims does not apply to it.
        """
        rules = bindingRules([
            {"peer": "cn:PUMP-*", "dicomCallingAE": "PUMP3*"},
            {"peer": "uri:spiffe://hospital.example/ward3/*", "hl7SendingFacility": "WARD3",
             "dicomCallingAE": "INF*", "mqttClientId": "{cn}"}])
        part = IdentityBinding("hl7", rules)
        self.assertEqual(len(part.rules), 2)
        self.assertIsNone(judge(rules, PUMP, {"hl7SendingFacility": "WARD3"}))
        self.assertIsNone(judge(rules, PUMP, {"mqttClientId": "PUMP-3A"}))
        self.assertEqual((judge(rules, PUMP, {"mqttClientId": "PUMP-9"}) or ("",))[0],
                         "mqttClientId")
        self.assertIsNone(judge(rules, PUMP, {"dicomCallingAE": "PUMP3X",
                                              "dicomCalledAE": "PACS"}))
        self.assertEqual((judge(rules, PUMP, {"dicomCallingAE": "INF1",
                                              "dicomCalledAE": "PACS"}) or ("",))[0],
                         "dicomCallingAE")
        pumpOnly = PeerIdentity(commonName=("PUMP-7",))
        self.assertEqual((judge(rules, pumpOnly, {"hl7SendingFacility": "WARD3"}) or ("",))[0],
                         "")

    def test_noRule(self) -> None:
        """
        A peer no rule matches, or no certificate, is refused with key C{""}.
        """
        self.assertEqual(judge(self.rules, PeerIdentity(subject="CN=X"), {})[0:1], ("",))
        self.assertIn("(no certificate)", (judge(self.rules, None, {}) or ("", ""))[1])

    def test_longClaimShortened(self) -> None:
        """
        A long claimed value is shortened in the detail.
        """
        detail = (judge(self.rules, PUMP, {"hl7SendingFacility": "X" * 5000}) or ("", ""))[1]
        self.assertLess(len(detail), 400)


def _errorOf(build: Any, *args: Any, **kwargs: Any) -> PolicyError:
    try:
        build(*args, **kwargs)
    except PolicyError as e:
        return e
    raise AssertionError("no error")


class PolicyTests(SynchronousTestCase):
    """
    The binding options, from Python, endpoint strings and policy files.
    """

    def test_sameEverywhere(self) -> None:
        """
        A policy file's C{[[bind]]} tables, inline rules in an endpoint
        string and the same from Python give one policy.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write('binding = "dicom"\n[[bind]]\npeer = "cn:CT-*"\n'
                    'dicomCallingAE = ["{cn}", "CT*"]\ndicomCalledAE = "PACS"\n')
        fromFile = loadPolicyFile(path)
        inline = r"cn\:CT-*, dicomCallingAE={cn}|CT*, dicomCalledAE=PACS"
        fromString = _policyFor("mtls", _parse(f"mtls:binding=dicom:bind={inline}")[1],
                                serverDefaults=False)
        fromPython = buildPolicy(binding="dicom", bind=[
            {"peer": "cn:CT-*", "dicomCallingAE": ["{cn}", "CT*"], "dicomCalledAE": "PACS"}])
        self.assertEqual(fromFile, fromPython)
        self.assertEqual(fromString, fromPython)
        self.assertIs(fromPython.binding.protocol, BINDINGS["dicom"])

    def test_oneTable(self) -> None:
        """
        The policy part takes one table (or one rule) without a list
        around it.
        """
        one = IdentityBinding(rules={"peer": "cn:X", "mqttClientId": "{cn}"})
        self.assertEqual(one, IdentityBinding(rules=[{"peer": "cn:X", "mqttClientId": "{cn}"}]))
        self.assertEqual(IdentityBinding(rules=one.rules[0]), one)

    def test_inferredProtocol(self) -> None:
        """
        Rules whose claims are one protocol's need no C{binding=}.
        """
        self.assertIs(buildPolicy(bind="cn:X, mqttClientId={cn}").binding.protocol,
                      BINDINGS["mqtt"])

    def test_errors(self) -> None:
        """
        An unknown protocol, a claim of another protocol, a bad matcher and
        a rule without claims are errors naming the option.
        """
        for options, field, problem in [
                (dict(binding="smtp"), "binding", "unknown protocol binding"),
                (dict(binding="hl7", bind="cn:X, mqttClientId=A"), "bind",
                 "no rule names a claim of binding=hl7"),
                (dict(binding="hl7", bind="cn:X, hl7SendingFacilty=A"), "bind",
                 "hl7SendingFacilty is not a claim of binding=hl7 (nor of another protocol)"),
                (dict(bind="cn:X, hl7SendingFacilty=A"), "bind",
                 "hl7SendingFacilty is not a claim of any protocol"),
                (dict(bind="cn:X, mqttClientId=A, dicomCalledAE=B"), "bind",
                 "not all those of one protocol"),
                (dict(bind="cm:X, mqttClientId=A"), "bind", "unknown identity kind"),
                (dict(bind="cn:X"), "bind", "constrains no claim"),
                (dict(bind="cn:X, mqttClientId"), "bind", "is not CLAIM=PATTERN"),
                (dict(bind=[{"mqttClientId": "A"}]), "bind", "needs a peer"),
                (dict(bindingTimeout="0"), "bindingTimeout", "more than 0")]:
            error = _errorOf(buildPolicy, **options)
            self.assertEqual(error.field, field, options)
            self.assertIn(problem, error.problem, options)

    def test_fileErrors(self) -> None:
        """
        A bad rule in a policy file names the file and the key.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write('[[bind]]\npeer = "cn:X"\nhl7SendingFacilty = ["A"]\n')
        error = _errorOf(loadPolicyFile, path)
        self.assertIsInstance(error, PolicyFileError)
        self.assertIn(path, str(error))
        self.assertIn("bind", str(error))

    def test_whereItApplies(self) -> None:
        """
        A binding needs a server that requires client certificates and
        rules; a client refuses it.
        """
        policy = buildPolicy(certKey="s.pem", caCerts="ca.pem", binding="hl7")
        self.assertIn("no rule", _errorOf(policy.requireFor, Role.SERVER, True).problem)
        policy = buildPolicy(certKey="s.pem", caCerts="ca.pem", bind="cn:X, hl7SendingFacility=A")
        self.assertIn("not required", _errorOf(policy.requireFor, Role.SERVER).problem)
        self.assertEqual(policy.requireFor(Role.SERVER, True).binding, policy.binding)
        self.assertIn("only servers", _errorOf(policy.requireFor, Role.CLIENT).problem)
        policy = buildPolicy(certKey="s.pem", caCerts="ca.pem", bindings="b.toml")
        self.assertEqual(_errorOf(policy.requireFor, Role.SERVER, True).field, "bindings")

    def test_bindingsFile(self) -> None:
        """
        A bindings file is read with the other files; a missing one, other
        keys, or a claim of another protocol name the bindings file.
        """
        path = os.path.abspath(self.mktemp())
        policy = buildPolicy(binding="mqtt", bindings=path)
        self.assertIn("bindings file does not exist",
                      str(_errorOf(loadMaterials, policy, Role.SERVER)))
        for text, problem in [('minVersion = "TLSv1.3"\n', "holds only [[bind]] rules"),
                              ('[[bind]]\npeer = "cn:A"\nmqttClientID = "B"\n',
                               "mqttClientID is not a claim of binding=mqtt")]:
            with open(path, "w") as f:
                f.write(text)
            error = _errorOf(loadMaterials, policy, Role.SERVER)
            self.assertIn(path, str(error))
            self.assertIn(problem, str(error))
        with open(path, "w") as f:
            f.write('[[bind]]\npeer = "cn:A"\nmqttClientId = "{cn}"\n')
        self.assertEqual([str(r) for r in loadMaterials(policy, Role.SERVER).bindingRules],
                         ["cn:A, mqttClientId={cn}"])

    def test_ownBinding(self) -> None:
        """
        From Python, the protocol may be any L{IIdentityBinding} provider
        (the example of docs/bindings.md); rules are checked against its
        claims, and it reads and refuses as it says.
        """
        mine = HelloBinding()
        self.assertTrue(verifyObject(IIdentityBinding, mine))
        part = IdentityBinding(mine, rules="cn:PUMP-*, helloName={cn}")
        self.assertIs(part.protocol, mine)
        message = mine.read(b"HELLO PUMP-3A\nrest")
        assert message is not None
        self.assertIsNone(judge(part.rules, PUMP, message.claims))
        self.assertIsNone(mine.read(b"HELLO PU"))
        self.assertEqual(mine.refusal(message, "helloName", part, 0), b"DENIED\n")
        self.assertIn("no rule names a claim of binding=hello",
                      _errorOf(IdentityBinding, mine, rules="cn:A, hl7SendingFacility=B").problem)


class EndpointStringTests(SynchronousTestCase):
    """
    A Twisted application gets a binding from its C{mtls:} endpoint string.
    """

    def setUp(self) -> None:
        pki = sharedPKI()
        self.base = (f"mtls:6661:certKey={escape(pki.path('server.pem'))}"
                     f":privateKey={escape(pki.path('server.key'))}"
                     f":caCerts={escape(pki.path('ca.pem'))}")

    def test_endpoint(self) -> None:
        """
        C{binding=} and C{bind=} give a server endpoint whose policy binds.
        """
        endpoint = serverFromString(MemoryReactor(), self.base + r":binding=hl7:bind=uri\:"
                                    r"spiffe\://hospital.example/ward3/*, hl7SendingFacility=W3")
        self.assertIs(endpoint.policy.binding.protocol, BINDINGS["hl7"])

    def test_errors(self) -> None:
        """
        Bad binding arguments are L{EndpointArgumentError}s naming the
        argument, raised when the string is parsed.
        """
        for extra, argument, problem in [
                (":binding=smtp:bind=cn\\:A, hl7SendingFacility=B", "binding", "unknown protocol"),
                (":bind=cn\\:A, hl7SendingFacilty=B", "bind", "not a claim of any protocol"),
                (":bind=cn\\:A, hl7SendingFacility=B, mqttClientId=C", "bind",
                 "not all those of one protocol"),
                (":binding=mqtt", "binding", "no rule"),
                (":bindings=/nonexistent.toml:binding=dicom", "bindings", "does not exist"),
                (":bind=cn\\:A, hl7SendingFacility=B:permissive=true:profile=mozilla-modern",
                 "permissive", "would be bypassed")]:
            with self.assertRaises(EndpointArgumentError) as caught:
                serverFromString(MemoryReactor(), self.base + extra)
            self.assertIn(problem, str(caught.exception), extra)
            self.assertIn(argument, str(caught.exception), extra)


class ShippedBindingsTests(SynchronousTestCase):
    """
    The bindings securetcp ships provide L{IIdentityBinding}.
    """

    def test_interface(self) -> None:
        """
        Each provides the interface, under its own name.
        """
        for name, binding in BINDINGS.items():
            self.assertTrue(verifyObject(IIdentityBinding, binding))
            self.assertEqual(binding.name, name)

    def test_hl7RefusalOnlyIfAsked(self) -> None:
        """
        HL7 answers a refusal with a reject ACK only under C{hl7RejectAck}.
        """
        hl7 = BINDINGS["hl7"]
        message = hl7.read(b"\x0bMSH|^~\\&|A|B|C|D|||ADT^A01|7|P|2.5\r")
        assert isinstance(message, FirstMessage)
        self.assertEqual(hl7.refusal(message, "hl7SendingFacility", IdentityBinding(), 0), b"")
        ack = hl7.refusal(message, "", IdentityBinding(hl7RejectAck=True), 1767225600)
        self.assertIn(b"|20260101000000+0000||ACK^A01|", ack)
        self.assertIn(b"MSA|AR|7|", ack)
