"""
Tests for L{securetcp._everymessage} and L{securetcp.protocols.hl7.MLLPStream}:
with an HL7 binding every MLLP-framed message of a connection, not only the
first, is judged by the C{[[bind]]} rules before the application sees it; a
later message that claims another identity (or cannot be read) closes the
connection, nothing of it reaches the application, and the connection's
C{connection.closed} record says why, with identifiers only.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from securetcp._everymessage import MessageGuard
from securetcp.binding import BINDINGS, FirstMessage
from securetcp.protocols import MalformedMessage
from securetcp.protocols.hl7 import MAX_HEADER, MessageHeader, MLLPStream, frame

from ._binding import WARD3, InspectionTestCase, hl7, mqttConnect

#: Patient data: never in an audit record.
PATIENT = b"PID|1||PID-4711-XYZ^^^HOSP^MR||Doe^Jane||19700101|F\r"


def message(facility: bytes, controlId: bytes = b"MSG42", body: bytes = PATIENT) -> bytes:
    """
    An MLLP-framed HL7 v2 message from C{facility} with control ID C{controlId}.
    """
    return frame(b"MSH|^~\\&|PUMP|" + facility + b"|HIS|HOSP|20260101120000||ORU^R01|"
                 + controlId + b"|P|2.5\r" + body)


def passed(items: List[Any]) -> bytes:
    return b"".join(i for i in items if isinstance(i, bytes))


def facilities(items: List[Any]) -> List[str]:
    return [i.sendingFacility for i in items if isinstance(i, MessageHeader)]


class MLLPStreamTests(SynchronousTestCase):
    """
    L{MLLPStream} yields each message's header before any byte of that
    message, passes every byte on unchanged, and keeps at most the start
    of one message.
    """

    def test_severalInOneChunk(self) -> None:
        """
        Three messages in one chunk: three headers, each before its own
        bytes, and every byte passed on.
        """
        data = message(b"A") + message(b"B") + message(b"C")
        items = MLLPStream().receive(data)
        self.assertEqual(facilities(items), ["A", "B", "C"])
        self.assertEqual(passed(items), data)
        for n in range(3):
            index = [i for i, item in enumerate(items) if isinstance(item, MessageHeader)][n]
            self.assertEqual(passed(items[:index]), data[:n * len(message(b"A"))])

    def test_byteByByte(self) -> None:
        """
        Split at every byte: a header comes out when its MSH segment's
        carriage return arrives, and no byte of a message before it.
        """
        data = message(b"A") + message(b"B")
        stream, out = MLLPStream(), []
        for i in range(len(data)):
            items = stream.receive(data[i:i + 1])
            if facilities(items):
                # the header first, when its segment's carriage return arrives
                self.assertIsInstance(items[0], MessageHeader)
                self.assertEqual(data[i:i + 1], b"\r")
            out += items
        self.assertEqual(facilities(out), ["A", "B"])
        self.assertEqual(passed(out), data)
        second = out.index([i for i in out if isinstance(i, MessageHeader)][1])
        self.assertEqual(passed(out[:second]), message(b"A"))

    def test_splitEverywhere(self) -> None:
        """
        Whatever two chunks a stream of two messages arrives in, the same
        headers and the same bytes come out.
        """
        data = message(b"A") + message(b"B")
        for cut in range(len(data) + 1):
            stream = MLLPStream()
            items = stream.receive(data[:cut]) + stream.receive(data[cut:])
            self.assertEqual((facilities(items), passed(items)), (["A", "B"], data), cut)

    def test_longBody(self) -> None:
        """
        A message far longer than the bound passes (only its header has to
        fit within it), its body as it arrives.
        """
        body = b"OBX|1|ED|PDF||" + b"x" * 100_000 + b"\r"
        stream = MLLPStream()
        first = stream.receive(message(b"A", body=body)[:50_000])
        self.assertEqual(facilities(first), ["A"])
        self.assertEqual(len(passed(first)), 50_000)
        rest = stream.receive(message(b"A", body=body)[50_000:] + message(b"B"))
        self.assertEqual(facilities(rest), ["B"])

    def test_junkBetween(self) -> None:
        """
        A byte other than the start block between messages ends the stream
        with a L{MalformedMessage}, after the message before it.
        """
        items = MLLPStream().receive(message(b"A") + b"\nGET /")
        self.assertEqual(passed(items), message(b"A"))
        self.assertIsInstance(items[-1], MalformedMessage)
        self.assertIn("0x0a between messages", items[-1].problem)

    def test_endBlockWithoutReturn(self) -> None:
        """
        An end block C{0x1c} not followed by C{0x0d} is malformed.
        """
        items = MLLPStream().receive(message(b"A")[:-1] + b"X")
        self.assertIn("follows MLLP's 0x1c end block", items[-1].problem)

    def test_oversizedHeader(self) -> None:
        """
        A later message whose MSH segment does not end within L{MAX_HEADER}
        bytes is refused as exceeding the bound; nothing of it passes.
        """
        stream = MLLPStream()
        items = stream.receive(message(b"A"))
        items += stream.receive(b"\x0bMSH|^~\\&|" + b"A" * 3000)
        items += stream.receive(b"A" * 3000)
        self.assertEqual(passed(items), message(b"A"))
        self.assertIn("exceeds the bound", items[-1].problem)
        self.assertEqual(stream.receive(message(b"B")), [])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(st.binary(max_size=600), st.sampled_from(
        [message(b"A"), message(b"B")[:30], b"\x1c", b"\x1c\r", b"\x0bMSH|^~\\&|", b"\r",
         b"\x0b", b"x" * 5000])), max_size=30))
    def test_fuzz(self, chunks: List[bytes]) -> None:
        """
        Whatever arrives: no exception, what passes is a prefix of the
        stream, what is held is below the bound, and after a problem
        nothing more comes out.
        """
        stream, out = MLLPStream(), []
        for chunk in chunks:
            out += stream.receive(chunk)
            self.assertLess(len(stream._header), MAX_HEADER)
        data = b"".join(chunks)
        self.assertTrue(data.startswith(passed(out)))
        problems = [i for i, item in enumerate(out) if isinstance(item, MalformedMessage)]
        self.assertIn(problems, ([], [len(out) - 1]))


class GatedTests(InspectionTestCase):
    """
    Through a real gate in memory: every message is judged.
    """

    rules = dict(binding="hl7", bind=f"{WARD3}, hl7SendingFacility=WARD3")

    def closed(self, connection: Any) -> Dict[str, Any]:
        """
        The connection is closed; return its C{connection.closed} record,
        checked for patient data.
        """
        connection.pump.flush()
        self.assertIsNotNone(self.serverApp.built[0].lost)
        records = self.serverRecords()
        self.assertEqual([r["event"] for r in records],
                         ["connection.accepted", "connection.closed"])
        for needle in ("PID-4711", "Doe", "19700101"):
            self.assertNotIn(needle, json.dumps(records))
        return records[1]

    def test_allowed(self) -> None:
        """
        Every allowed message reaches the application unchanged, and a
        normal close has no C{refused} part.
        """
        connection = self.connect(message(b"WARD3") + message(b"WARD3", b"MSG43"),
                                  **self.rules)
        self.clientApp.built[0].transport.write(message(b"WARD3", b"MSG44"))
        connection.pump.flush()
        self.assertEqual(b"".join(self.serverApp.received),
                         message(b"WARD3") + message(b"WARD3", b"MSG43")
                         + message(b"WARD3", b"MSG44"))
        self.clientApp.built[0].transport.loseConnection()
        record = self.closed(connection)
        self.assertNotIn("refused", record)
        self.assertIsNone(record["closeReason"])

    def test_laterMismatch(self) -> None:
        """
        A second message as another facility, in the same chunk as the
        first: the first reaches the application, nothing of the second;
        the connection is closed, its record says which message was refused
        and what it claimed (identifiers only), and the peer gets no answer
        without C{hl7RejectAck}.
        """
        connection = self.connect(message(b"WARD3") + message(b"WARD9", b"MSG43"),
                                  **self.rules)
        self.assertEqual(b"".join(self.serverApp.received), message(b"WARD3"))
        record = self.closed(connection)
        refused = record["refused"]
        self.assertEqual((refused["reason"], refused["message"]),
                         ("protocol_identity_mismatch", 2))
        self.assertEqual(refused["claims"]["hl7SendingFacility"], "WARD9")
        self.assertIn("hl7SendingFacility 'WARD9'", refused["detail"])
        self.assertTrue(record["closeReason"].startswith("protocol_identity_mismatch: "))
        # the record of the connection still says what admitted it
        self.assertEqual(record["binding"]["claims"]["hl7SendingFacility"], "WARD3")
        self.assertEqual(self.clientReceived(), b"")
        self.assertIsNotNone(self.clientApp.built[0].lost)

    def test_rejectAck(self) -> None:
        """
        With C{hl7RejectAck}, the refused later message gets the reject
        ACK, echoing its own control ID (MSA-2).
        """
        connection = self.connect(message(b"WARD3"), hl7RejectAck=True, **self.rules)
        self.clientApp.built[0].transport.write(message(b"WARD9", b"MSG43"))
        connection.pump.flush()
        self.assertIn(b"\rMSA|AR|MSG43|", self.clientReceived())
        self.assertEqual(b"".join(self.serverApp.received), message(b"WARD3"))
        self.assertEqual(self.closed(connection)["refused"]["message"], 2)

    def test_interleaved(self) -> None:
        """
        Messages cut anywhere across writes (a header split over two
        chunks, a chunk holding one message's end and the next one's
        start): the allowed ones arrive whole and in order, nothing of the
        refused third one.
        """
        allowed = message(b"WARD3") + message(b"WARD3", b"MSG43")
        data = allowed + message(b"WARD9", b"MSG44") + message(b"WARD3", b"MSG45")
        first = len(message(b"WARD3"))
        cuts = [20, 40, first - 1, first + 10, first + 40, len(allowed) + 25, len(data)]
        connection = self.connect(data[:cuts[0]], **self.rules)
        for start, end in zip(cuts, cuts[1:], strict=False):
            self.clientApp.built[0].transport.write(data[start:end])
            connection.pump.flush()
        self.assertEqual(b"".join(self.serverApp.received), allowed)
        self.assertEqual(self.closed(connection)["refused"]["message"], 3)

    def test_laterMalformed(self) -> None:
        """
        Data that is not an MLLP frame after an allowed message closes the
        connection as C{protocol_malformed}; the message before it arrived.
        """
        connection = self.connect(message(b"WARD3") + b"GET / HTTP/1.1\r\n", **self.rules)
        self.assertEqual(b"".join(self.serverApp.received), message(b"WARD3"))
        refused = self.closed(connection)["refused"]
        self.assertEqual((refused["reason"], refused["claims"]), ("protocol_malformed", None))

    def test_laterOversized(self) -> None:
        """
        A later MSH segment longer than the bound closes the connection as
        C{protocol_oversized}.
        """
        connection = self.connect(message(b"WARD3") + b"\x0bMSH|^~\\&|" + b"A" * 5000,
                                  **self.rules)
        self.assertEqual(b"".join(self.serverApp.received), message(b"WARD3"))
        self.assertEqual(self.closed(connection)["refused"]["reason"], "protocol_oversized")

    def test_onceForMQTT(self) -> None:
        """
        MQTT names its identity once per connection: no guard, the gate
        hands later data straight to the application.
        """
        connection = self.connect(mqttConnect(b"PUMP-0042"), binding="mqtt",
                                  bind="cn:PUMP-*, mqttClientId={cn}")
        self.assertIsNone(connection.serverGate.guard)
        self.clientApp.built[0].transport.write(b"anything")
        connection.pump.flush()
        self.assertEqual(self.serverApp.received[-1], b"anything")

    def test_hl7Guarded(self) -> None:
        """
        The HL7 binding puts a guard in the data path.
        """
        connection = self.connect(hl7(b"WARD3"), **self.rules)
        self.assertIsInstance(connection.serverGate.guard, MessageGuard)


class FakeInspection:
    """
    What L{MessageGuard} uses of an inspection: refuses every claim of
    C{WARD9}, on a clock and a string transport.
    """

    def __init__(self, rejectAck: bool = False) -> None:
        self.clock = Clock()
        self.connection = SimpleNamespace(transport=StringTransport(),
                                          gate=SimpleNamespace(clock=self.clock))
        self.binding = SimpleNamespace(timeout=5.0, hl7RejectAck=rejectAck)

    def claims(self, message: FirstMessage) -> Dict[str, Optional[str]]:
        return dict(message.claims)

    def problem(self, e: MalformedMessage) -> Tuple[str, str]:
        return ("protocol_malformed", e.problem)

    def verdict(self, message: FirstMessage) -> Optional[Tuple[str, bytes]]:
        if message.claims["hl7SendingFacility"] != "WARD9":
            return None
        return "WARD9 refused", b"NO"


class Application:
    def __init__(self) -> None:
        self.received: List[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class GuardTests(SynchronousTestCase):
    """
    L{MessageGuard} alone.
    """

    def guard(self) -> Tuple[MessageGuard, FakeInspection, Application]:
        inspection, application = FakeInspection(), Application()
        stream = BINDINGS["hl7"].stream()  # type: ignore[attr-defined]
        return MessageGuard(inspection, stream, application), inspection, application

    def test_firstNotJudgedAgain(self) -> None:
        """
        The first message was judged before admission: the guard passes it
        on whatever it claims, and judges the second.
        """
        guard, inspection, application = self.guard()
        guard.dataReceived(message(b"WARD9") + message(b"WARD9"))
        self.assertEqual(b"".join(application.received), message(b"WARD9"))
        self.assertEqual(guard.refused["message"], 2)  # type: ignore[index]
        self.assertEqual(inspection.connection.transport.value(), b"NO")

    def test_dropsPeerThatDoesNotClose(self) -> None:
        """
        After a refusal the connection is closed; a peer that does not
        finish the close is dropped after the binding's timeout, and
        nothing it sends meanwhile reaches the application.
        """
        guard, inspection, application = self.guard()
        guard.dataReceived(message(b"WARD3") + message(b"WARD9"))
        transport = inspection.connection.transport
        self.assertTrue(transport.disconnecting)
        guard.dataReceived(message(b"WARD3"))
        self.assertEqual(b"".join(application.received), message(b"WARD3"))
        aborted: List[bool] = []
        transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        inspection.clock.advance(5)
        self.assertEqual(aborted, [True])
        reason, refused = guard.lost()  # type: ignore[misc]
        self.assertEqual(reason, "protocol_identity_mismatch: WARD9 refused")

    def test_lostCancelsTimer(self) -> None:
        """
        A connection lost after a refusal leaves no timer behind; one lost
        without a refusal has no close reason of the guard's.
        """
        guard, inspection, _ = self.guard()
        guard.dataReceived(message(b"WARD3") + message(b"WARD9"))
        guard.lost()
        self.assertEqual(inspection.clock.getDelayedCalls(), [])
        self.assertIsNone(self.guard()[0].lost())

    def test_brokenStream(self) -> None:
        """
        A stream that raises closes the connection as C{internal_error};
        the exception does not escape.
        """
        guard, inspection, _ = self.guard()

        class Broken:
            def receive(self, data: bytes) -> List[Any]:
                raise RuntimeError("bug")

        guard.stream = Broken()  # type: ignore[assignment]
        guard.dataReceived(b"x")
        self.assertEqual(guard.refused["reason"], "internal_error")  # type: ignore[index]
        self.flushLoggedErrors(RuntimeError)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(
        [message(b"WARD3"), message(b"WARD9"), message(b"WARD3")[:25], b"\x1c\r"])),
        max_size=20))
    def test_fuzz(self, chunks: List[bytes]) -> None:
        """
        Whatever the peer sends after a first message: no exception, the
        application gets a prefix of the stream in which no message but
        the first is from C{WARD9}.
        """
        guard, _, application = self.guard()
        data = message(b"WARD3") + b"".join(chunks)
        guard.dataReceived(message(b"WARD3"))
        for chunk in chunks:
            guard.dataReceived(chunk)
        got = b"".join(application.received)
        self.assertTrue(data.startswith(got))
        self.assertNotIn("WARD9", facilities(MLLPStream().receive(got)))
