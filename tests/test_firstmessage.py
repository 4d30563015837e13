"""
Tests for L{securetcp._firstmessage}: a server gate with an identity
binding reads the peer's first message, admits a peer whose claims its
C{[[bind]]} rules allow with every byte unchanged, and refuses any other
(politely where the protocol can) before the application sees a byte, each
audited; in memory, with securetcp's own client.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any, List, Optional

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from securetcp._firstmessage import FirstMessageInspection
from securetcp.binding import BINDINGS, FirstMessage, IIdentityBinding
from securetcp.config import buildPolicy
from securetcp.endpoints import SecureServerEndpoint
from securetcp.identity import PeerIdentity
from securetcp.materials import Materials
from securetcp.protocols.dicom import associateReject
from securetcp.protocols.mqtt import notAuthorized

from ._binding import WARD3, InspectionTestCase, hl7, mqttConnect
from ._dcmtk import ECHOSCU_RQ


class FakeConnection:
    """
    What L{FirstMessageInspection} uses of a gate's connection, recording
    the verdict: a server policy with C{binding}, a clock, no materials.
    """

    def __init__(self, **binding: Any) -> None:
        self.clock = Clock()
        self.gate = SimpleNamespace(policy=buildPolicy(**binding), clock=self.clock,
                                    inForce=SimpleNamespace(materials=Materials()))
        self.transport = StringTransport()
        self.identity = PeerIdentity(commonName=("PUMP-0042",),
                                     uri=("spiffe://hospital.example/ward3/pump-0042",))
        self._buffer: List[bytes] = []
        self._timeout: Any = None
        self._rejected: Any = None
        self.inspection: Any = None
        self.admitted = 0

    def _admit(self) -> None:
        # as the gate does: inspect first, then admit
        if self.inspection is None:
            self.inspection = FirstMessageInspection(self)  # type: ignore[arg-type]
            return
        self.admitted += 1

    def _reject(self, reason: str, detail: str) -> None:
        self._rejected = (reason, detail)


#: A valid start of each shipped binding's first message, and its rules.
STARTS = {
    "hl7": (b"\x0bMSH|^~\\&|PUMP|", f"{WARD3}, hl7SendingFacility=WARD3"),
    "dicom": (ECHOSCU_RQ[:20], f"{WARD3}, dicomCallingAE=PUMP3"),
    "mqtt": (b"\x10\x80\x02\x00\x04MQTT\x05", "cn:PUMP-*, mqttClientId={cn}"),
}


class EarlyMessageTests(SynchronousTestCase):
    """
    A first message that arrived before the inspection started (while the
    gate awaited an OCSP answer) is judged at once.
    """

    def test_admittedOnce(self) -> None:
        """
        The connection is admitted exactly once, the inspection known to
        the gate before.
        """
        connection = FakeConnection(bind=STARTS["mqtt"][1])
        connection._buffer.append(mqttConnect(b"PUMP-0042"))
        connection._admit()
        self.assertEqual(connection.admitted, 1)
        self.assertIsInstance(connection.inspection, FirstMessageInspection)

    def test_refused(self) -> None:
        """
        A refused claim that arrived early is refused, with its CONNACK.
        """
        connection = FakeConnection(bind=STARTS["mqtt"][1])
        connection._buffer.append(mqttConnect(b"PUMP-0099"))
        connection._admit()
        self.assertEqual(connection.admitted, 0)
        self.assertEqual(connection._rejected[0], "protocol_identity_mismatch")
        self.assertEqual(connection.transport.value(), notAuthorized(5))


class AfterOCSPTests(InspectionTestCase):
    """
    Through a real gate: a first message that arrives while the server
    awaits the OCSP answer is judged when the answer comes.
    """

    def connectAwaitingOCSP(self, first: bytes) -> Any:
        answer: Deferred[bytes] = Deferred()
        pki = self.pki
        self.server = SecureServerEndpoint(
            self.clock, None, buildPolicy(
                certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                caCerts=pki.path("ca.pem"), ocsp="prefer", ocspResponder="http://ocsp.invalid/",
                bind="cn:PUMP-*, mqttClientId={cn}"),
            mutual=True, clock=self.clock, emitter=self.emitter,
            ocspPost=lambda url, body, timeout: answer)
        connection = self.connect(first)
        self.assertEqual(self.serverApp.built, [])  # the answer is awaited
        answer.errback(ConnectionRefusedError())  # ocsp=prefer: go on without it
        connection.pump.flush()
        return connection

    def test_admitted(self) -> None:
        """
        The allowed CONNECT, buffered meanwhile, reaches the application
        once, whole.
        """
        self.connectAwaitingOCSP(mqttConnect(b"PUMP-0042"))
        self.assertEqual(len(self.serverApp.built), 1)
        self.assertEqual(b"".join(self.serverApp.received), mqttConnect(b"PUMP-0042"))

    def test_refused(self) -> None:
        """
        A refused CONNECT, buffered meanwhile, gets its CONNACK.
        """
        self.connectAwaitingOCSP(mqttConnect(b"PUMP-0099"))
        self.assertRefused("protocol_identity_mismatch")
        self.assertEqual(self.clientReceived(), notAuthorized(5))


class BoundTests(SynchronousTestCase):
    """
    Whatever a peer sends, the inspection decides or keeps less than the
    binding's bound, and no exception escapes it.
    """

    @given(st.sampled_from(sorted(STARTS)), st.booleans(),
           st.lists(st.binary(max_size=3000), max_size=12))
    def test_fuzz(self, name: str, validStart: bool, chunks: List[bytes]) -> None:
        """
        Chunks of any bytes (after a valid start of the message, or not):
        until the verdict, what is buffered stays below C{maxBytes}; a
        verdict is admission or one of the binding's reasons.
        """
        start, rules = STARTS[name]
        connection = FakeConnection(binding=name, bind=rules)
        connection._buffer.append(start if validStart else b"")
        connection._admit()
        inspection = connection.inspection
        bound = BINDINGS[name].maxBytes
        for chunk in chunks:
            if connection.admitted or connection._rejected:
                break
            connection._buffer.append(chunk)
            inspection.dataReceived()
            if not (connection.admitted or connection._rejected):
                self.assertLess(sum(map(len, connection._buffer)), bound)
        if connection._rejected:
            self.assertIn(connection._rejected[0], (
                "protocol_malformed", "protocol_oversized", "protocol_identity_mismatch"))

    def test_oversizedUnderTheReader(self) -> None:
        """
        A binding whose reader still asks for more at C{maxBytes} is
        refused as C{protocol_oversized} all the same.
        """
        connection = FakeConnection(binding="mqtt", bind=STARTS["mqtt"][1])
        connection._admit()
        inspection = connection.inspection
        inspection.binding = attrs.evolve(inspection.binding, protocol=Patient())
        connection._buffer.append(b"x" * 10)
        inspection.dataReceived()
        self.assertEqual(connection._rejected[0], "protocol_oversized")
        self.assertEqual(connection.transport.value(), b"")


class BrokenBindingTests(SynchronousTestCase):
    """
    A binding of one's own that raises is contained: the connection is
    refused, and the error logged.
    """

    def test_readRaises(self) -> None:
        """
        An exception from C{read} refuses the connection as
        C{internal_error}.
        """
        connection = FakeConnection(binding="mqtt", bind=STARTS["mqtt"][1])
        connection._buffer.append(b"x")
        connection.gate.policy = attrs.evolve(connection.gate.policy, binding=attrs.evolve(
            connection.gate.policy.binding, protocol=Broken()))
        connection._admit()
        self.assertEqual(connection._rejected[0], "internal_error")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_refusalRaises(self) -> None:
        """
        An exception from C{refusal} still refuses the claim, without an
        answer.
        """
        connection = FakeConnection(binding="mqtt", bind=STARTS["mqtt"][1])
        connection._buffer.append(b"y")
        connection.gate.policy = attrs.evolve(connection.gate.policy, binding=attrs.evolve(
            connection.gate.policy.binding, protocol=Broken()))
        connection._admit()
        self.assertEqual(connection._rejected[0], "protocol_identity_mismatch")
        self.assertEqual(connection.transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


@implementer(IIdentityBinding)
class Broken:
    """
    A binding that fails on C{x} in C{read}, and always in C{refusal}.
    """

    name = "broken"
    claimKeys = {"mqttClientId": "the client identifier"}
    maxBytes = 10

    def read(self, data: bytes) -> Optional[FirstMessage]:
        if data == b"x":
            raise ZeroDivisionError()
        return FirstMessage({"mqttClientId": "someone else"})

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        raise ZeroDivisionError()


@implementer(IIdentityBinding)
class Patient:
    """
    A binding that always wants more bytes, with a bound of 10.
    """

    name = "patient"
    claimKeys = {"mqttClientId": "the client identifier"}
    maxBytes = 10

    def read(self, data: bytes) -> Optional[FirstMessage]:
        return None

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        return b""


class HL7Tests(InspectionTestCase):
    """
    HL7 v2 over MLLP: MSH-4 bound to the certificate.
    """

    rules = dict(binding="hl7", bind=f"{WARD3}, hl7SendingFacility=WARD3")

    def test_admitted(self) -> None:
        """
        A sender whose MSH-4 its rule allows reaches the application with
        every byte it sent, unchanged (patient data included); the accepted
        record names the protocol and the claims, and afterwards each later
        message the rules allow reaches the application unchanged too (HL7
        claims an identity in every message: see L{tests.test_everymessage}).
        """
        connection = self.connect(hl7(b"WARD3"), **self.rules)
        self.assertEqual(b"".join(self.serverApp.received), hl7(b"WARD3"))
        [accepted] = self.serverRecords()
        self.assertEqual(accepted["event"], "connection.accepted")
        self.assertEqual(accepted["binding"]["protocol"], "hl7")
        self.assertEqual(accepted["binding"]["claims"]["hl7SendingFacility"], "WARD3")
        self.assertNotIn("PID-4711", json.dumps(accepted))
        gate = connection.serverGate
        self.assertIs(gate.application, self.serverApp.built[0])
        self.clientApp.built[0].transport.write(hl7(b"WARD3"))
        connection.pump.flush()
        self.assertEqual(b"".join(self.serverApp.received), hl7(b"WARD3") * 2)

    def test_mismatch(self) -> None:
        """
        A sender whose certificate may not claim its MSH-4 is refused as
        C{protocol_identity_mismatch}, audited with the claim and its
        certificate identity, never its message; without C{hl7RejectAck}
        it gets no answer, just the close.
        """
        self.connect(hl7(b"WARD9"), **self.rules)
        record = self.assertRefused("protocol_identity_mismatch")
        self.assertEqual(record["binding"]["claims"]["hl7SendingFacility"], "WARD9")
        self.assertIn("spiffe://hospital.example/ward3/pump-0042",
                      record["peerIdentity"]["san"]["uri"])
        self.assertIn("hl7SendingFacility 'WARD9'", record["detail"])
        self.assertEqual(self.clientReceived(), b"")
        self.assertIsNotNone(self.clientApp.built[0].lost)

    def test_noRule(self) -> None:
        """
        A peer no rule matches is refused, whatever it claims.
        """
        self.connect(hl7(b"WARD3"), cert="client2", **self.rules)
        record = self.assertRefused("protocol_identity_mismatch")
        self.assertIn("no bind rule matches the peer", record["detail"])

    def test_rejectAck(self) -> None:
        """
        With C{hl7RejectAck}, a refused sender gets an application reject
        acknowledgement of its message first.
        """
        self.connect(hl7(b"WARD9"), hl7RejectAck=True, **self.rules)
        self.assertRefused("protocol_identity_mismatch")
        self.assertIn(b"\rMSA|AR|MSG42|", self.clientReceived())

    def test_inPieces(self) -> None:
        """
        A header that arrives a byte at a time is judged once complete; the
        application then gets every byte.
        """
        connection = self.connect(b"", **self.rules)
        message = hl7(b"WARD3")
        for i in range(len(message)):
            self.clientApp.built[0].transport.write(message[i:i + 1])
            connection.pump.flush()
            if i < message.index(b"\r"):
                self.assertEqual(self.serverApp.built, [])
        self.assertEqual(b"".join(self.serverApp.received), message)

    def test_timeout(self) -> None:
        """
        A peer that sends no complete first message within
        C{bindingTimeout} is refused as C{protocol_timeout}.
        """
        connection = self.connect(b"\x0bMSH|^~\\&|PU", bindingTimeout=3, **self.rules)
        self.clock.advance(2.9)
        self.assertEqual(self.serverRecords(), [])
        self.clock.advance(0.2)
        connection.pump.flush()
        self.assertIn("bindingTimeout=3s", self.assertRefused("protocol_timeout")["detail"])

    def test_peerClosed(self) -> None:
        """
        A peer that closes before its first message is complete is
        C{peer_closed}, saying so.
        """
        connection = self.connect(b"\x0bMSH|^~\\&|PU", **self.rules)
        self.clientApp.built[0].transport.loseConnection()
        connection.pump.flush()
        record = self.assertRefused("peer_closed")
        self.assertIn("before its first hl7 message was complete (12 bytes)", record["detail"])

    def test_malformed(self) -> None:
        """
        A first message of another protocol is C{protocol_malformed}.
        """
        self.connect(b"GET / HTTP/1.1\r\n\r\n", **self.rules)
        self.assertIn("MLLP", self.assertRefused("protocol_malformed")["detail"])

    def test_oversized(self) -> None:
        """
        An MSH segment that does not end within the bound is
        C{protocol_oversized}.
        """
        self.connect(b"\x0bMSH|^~\\&|" + b"A" * 5000, **self.rules)
        self.assertRefused("protocol_oversized")

    def test_bindingsFile(self) -> None:
        """
        Rules from a bindings file (C{bindings=}) are read when the
        endpoint is built, and apply after those of C{bind}.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(f'[[bind]]\npeer = "{WARD3}"\nhl7SendingFacility = ["WARD9"]\n')
        self.connect(hl7(b"WARD9"), binding="hl7", bindings=path)
        self.assertEqual(len(self.serverApp.built), 1)

    def test_bindingsFileReloaded(self) -> None:
        """
        A reload reads the bindings file again: its new rules decide the
        next connections, and C{policy.reloaded} says the bindings changed.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(f'[[bind]]\npeer = "{WARD3}"\nhl7SendingFacility = ["WARD9"]\n')
        self.connect(hl7(b"WARD7"), binding="hl7", bindings=path)
        self.assertEqual(self.serverApp.built, [])
        with open(path, "w") as f:
            f.write(f'[[bind]]\npeer = "{WARD3}"\nhl7SendingFacility = ["WARD7"]\n')
        self.server.reload()
        [reloaded] = [r for r in self.serverRecords() if r["event"] == "policy.reloaded"]
        self.assertEqual(reloaded["changed"], ["bindings"])
        self.connect(hl7(b"WARD7"))
        self.assertEqual(len(self.serverApp.built), 1)


class MQTTTests(InspectionTestCase):
    """
    MQTT: the client identifier bound to the certificate's common name.
    """

    rules = dict(bind="cn:PUMP-*, mqttClientId={cn}")

    def test_admitted(self) -> None:
        """
        A client whose identifier is its certificate's CN is admitted.
        """
        self.connect(mqttConnect(b"PUMP-0042"), **self.rules)
        self.assertEqual(b"".join(self.serverApp.received), mqttConnect(b"PUMP-0042"))

    def test_refused(self) -> None:
        """
        A client claiming another device's identifier gets the CONNACK "not
        authorized" of its protocol level and is refused.
        """
        self.connect(mqttConnect(b"PUMP-0099"), **self.rules)
        record = self.assertRefused("protocol_identity_mismatch")
        self.assertEqual(record["binding"]["claims"]["mqttClientId"], "PUMP-0099")
        self.assertEqual(self.clientReceived(), notAuthorized(5))


class DICOMTests(InspectionTestCase):
    """
    DICOM: the calling and called AE titles of the A-ASSOCIATE-RQ.
    """

    def test_admitted(self) -> None:
        """
        A calling AE title the rule allows is admitted.
        """
        self.connect(ECHOSCU_RQ, bind=f"{WARD3}, dicomCallingAE=PUMP3*, dicomCalledAE=PACS")
        self.assertEqual(b"".join(self.serverApp.received), ECHOSCU_RQ)

    def test_callingRefused(self) -> None:
        """
        Another calling AE title gets an A-ASSOCIATE-RJ, calling AE title
        not recognised.
        """
        self.connect(ECHOSCU_RQ, bind=f"{WARD3}, dicomCallingAE=CT1")
        record = self.assertRefused("protocol_identity_mismatch")
        self.assertEqual(record["binding"]["claims"],
                         {"dicomCallingAE": "PUMP3", "dicomCalledAE": "PACS"})
        self.assertEqual(self.clientReceived(), associateReject(3))

    def test_calledRefused(self) -> None:
        """
        A called AE title the peer may not address gets an A-ASSOCIATE-RJ,
        called AE title not recognised.
        """
        self.connect(ECHOSCU_RQ, bind=f"{WARD3}, dicomCalledAE=ARCHIVE")
        self.assertRefused("protocol_identity_mismatch")
        self.assertEqual(self.clientReceived(), associateReject(7))
