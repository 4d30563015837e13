"""
Tests for L{securetcp.protocols.hl7}: the MSH segment of an MLLP-framed
HL7 v2 message, read with the separators the message itself declares,
bounded; everything else refused with L{MalformedMessage}; and the
application reject acknowledgement.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.protocols import MalformedMessage
from securetcp.protocols.hl7 import (
    MAX_HEADER,
    MessageHeader,
    frame,
    parseFirstMessage,
    rejectACK,
)

MESSAGE = (b"MSH|^~\\&|PUMP|WARD3^1.2.3^ISO|HIS|HOSP|20260101120000||ORU^R01^ORU_R01|MSG42|P|2.5\r"
           b"PID|1||PID-4711-XYZ||Doe^Jane\r")


class ParseTests(SynchronousTestCase):
    """
    L{parseFirstMessage} reads the MSH segment as soon as it is complete.
    """

    def test_header(self) -> None:
        """
        MSH-3 to MSH-6, MSH-9 to MSH-12 are read, each field as sent with
        its components; the separators are MSH-1 and MSH-2.
        """
        header = parseFirstMessage(frame(MESSAGE))
        self.assertEqual(header, MessageHeader(
            "|", "^~\\&", "PUMP", "WARD3^1.2.3^ISO", "HIS", "HOSP", "ORU^R01^ORU_R01", "MSG42",
            "P", "2.5"))

    def test_otherSeparators(self) -> None:
        """
        A message that declares other separators in MSH-1 and MSH-2 is
        read with them.
        """
        header = parseFirstMessage(b"\x0bMSH#$~\\&#LAB#LAB1$x#HIS#HOSP\r")
        assert header is not None
        self.assertEqual((header.fieldSeparator, header.sendingFacility), ("#", "LAB1$x"))

    def test_needsMore(self) -> None:
        """
        Until the MSH segment ends (carriage return, line feed or the end
        block) the reader asks for more bytes, however the message is cut.
        """
        framed = frame(MESSAGE)
        end = framed.index(b"\r")
        for i in range(end):
            self.assertIsNone(parseFirstMessage(framed[:i]), i)
        self.assertIsNotNone(parseFirstMessage(framed[:end + 1]))
        self.assertEqual(parseFirstMessage(b"\x0bMSH|^~\\&|A|B\x1c\r").sendingFacility, "B")

    def test_shortFields(self) -> None:
        """
        A header that stops after MSH-4 has empty fields after it.
        """
        header = parseFirstMessage(b"\x0bMSH|^~\\&|A|B\r")
        assert header is not None
        self.assertEqual((header.receivingFacility, header.controlId), ("", ""))

    def test_latin1(self) -> None:
        """
        A header that is not UTF-8 is read as ISO 8859-1.
        """
        header = parseFirstMessage(b"\x0bMSH|^~\\&|A|K\xf6ln\r")
        assert header is not None
        self.assertEqual(header.sendingFacility, "K\u00f6ln")

    def test_malformed(self) -> None:
        """
        No start block, no MSH segment, a letter as field separator or a
        missing MSH-2 is L{MalformedMessage} naming the problem.
        """
        for data, problem in [
                (b"MSH|^~\\&|A\r", "not MLLP's start block"),
                (b"\x0bPID|1\r", "does not start with an MSH segment"),
                (b"\x0bEVN", "does not start with an MSH segment"),
                (b"\x0bMSHA^~\\&\r", "not a usable field separator"),
                (b"\x0bMSH||A\r", "MSH-2"),
                (b"\x0bMSH|^~1&|A\r", "MSH-2")]:
            with self.assertRaises(MalformedMessage) as caught:
                parseFirstMessage(data)
            self.assertIn(problem, caught.exception.problem)
            self.assertEqual(caught.exception.protocol, "hl7")

    def test_bound(self) -> None:
        """
        An MSH segment still open after L{MAX_HEADER} bytes is refused.
        """
        data = b"\x0bMSH|^~\\&|" + b"A" * MAX_HEADER
        with self.assertRaises(MalformedMessage) as caught:
            parseFirstMessage(data)
        self.assertIn(f"exceeds the bound of {MAX_HEADER}", caught.exception.problem)
        self.assertIsNone(parseFirstMessage(data[:MAX_HEADER - 1]))

    @given(st.binary(max_size=600))
    def test_fuzz(self, data: bytes) -> None:
        """
        Any bytes give a header, C{None} or L{MalformedMessage}; C{None}
        only below L{MAX_HEADER} bytes.
        """
        for candidate in (data, b"\x0bMSH" + data, b"\x0bMSH|^~\\&|" + data):
            try:
                header = parseFirstMessage(candidate)
            except MalformedMessage:
                continue
            if header is None:
                self.assertLess(len(candidate), MAX_HEADER)

    @given(st.binary(min_size=1, max_size=64))
    def test_fuzzLong(self, piece: bytes) -> None:
        """
        At or beyond L{MAX_HEADER} bytes the reader always decides.
        """
        tail = piece * (MAX_HEADER // len(piece) + 1)
        try:
            self.assertIsNotNone(parseFirstMessage(b"\x0bMSH|^~\\&|" + tail))
        except MalformedMessage:
            pass


class RejectACKTests(SynchronousTestCase):
    """
    L{rejectACK} answers the sender with MSA-1 C{AR}.
    """

    def test_ack(self) -> None:
        """
        The acknowledgement goes from the message's receiver to its
        sender, echoes its control ID in MSA-2, is MLLP-framed and names no
        field of the message beyond the header's identifiers.
        """
        header = parseFirstMessage(frame(MESSAGE))
        assert header is not None
        ack = rejectACK(header, "ACK1", "20260102030405", "not authorized")
        self.assertTrue(ack.startswith(b"\x0b") and ack.endswith(b"\x1c\r"))
        msh, msa = ack[1:-2].decode().split("\r")[:2]
        self.assertEqual(msh, "MSH|^~\\&|HIS|HOSP|PUMP|WARD3^1.2.3^ISO|20260102030405||ACK^R01|"
                              "ACK1|P|2.5")
        self.assertEqual(msa, "MSA|AR|MSG42|not authorized")
        self.assertNotIn(b"PID", ack)
        self.assertEqual(parseFirstMessage(ack).sendingFacility, "HOSP")
