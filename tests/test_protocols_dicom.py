"""
Tests for L{securetcp.protocols.dicom}: reading the A-ASSOCIATE-RQ that real
dcmtk requestors send, refusing everything else with L{MalformedMessage},
bounded; and A-ASSOCIATE-RJ PDUs that a real dcmtk requestor understands.
"""

from __future__ import annotations

import struct
from typing import Any, List, Optional, Sequence, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from securetcp.protocols import MalformedMessage
from securetcp.protocols.dicom import (
    CALLED_AE_NOT_RECOGNIZED,
    CALLING_AE_NOT_RECOGNIZED,
    DICOM_APPLICATION_CONTEXT,
    MAX_ASSOCIATE_RQ,
    NO_REASON_GIVEN,
    AssociateRequest,
    associateReject,
    parseAssociateRequest,
)

from ._dcmtk import ECHOSCU, ECHOSCU_RQ, STORESCU, dicomFile, needDcmtk
from ._peers import PeerProcess

_VERIFICATION = "1.2.840.10008.1.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"


def _item(itemType: int, value: bytes) -> bytes:
    return struct.pack(">BBH", itemType, 0, len(value)) + value


def _presentationContext(contextID: int, abstract: str, transfers: Sequence[str]) -> bytes:
    subItems = _item(0x30, abstract.encode()) + b"".join(
        _item(0x40, t.encode()) for t in transfers)
    return _item(0x20, bytes([contextID, 0, 0xFF, 0]) + subItems)


def buildRequest(called: bytes = b"PACS", calling: bytes = b"PUMP3",
                 items: Optional[bytes] = None, version: int = 1) -> bytes:
    """
    An A-ASSOCIATE-RQ PDU with the given raw AE title fields (padded with
    spaces to 16 bytes) and variable items (by default an application
    context, one Verification presentation context, user information).
    """
    if items is None:
        items = (_item(0x10, DICOM_APPLICATION_CONTEXT.encode())
                 + _presentationContext(1, _VERIFICATION, [_IMPLICIT_LE])
                 + _item(0x50, _item(0x51, struct.pack(">I", 16384))))
    body = (struct.pack(">HH", version, 0) + called.ljust(16, b" ")
            + calling.ljust(16, b" ") + bytes(32) + items)
    return struct.pack(">BBI", 1, 0, len(body)) + body


class RealRequestTests(SynchronousTestCase):
    """
    L{parseAssociateRequest} reads the request a real dcmtk requestor sent.
    """

    def test_echoscu(self) -> None:
        """
        The AE titles of echoscu's request are read without their padding,
        with the protocol version and the DICOM application context.
        """
        self.assertEqual(parseAssociateRequest(ECHOSCU_RQ),
                         AssociateRequest(calledAE="PACS", callingAE="PUMP3",
                                          protocolVersion=1,
                                          applicationContext=DICOM_APPLICATION_CONTEXT))

    def test_everyPrefixNeedsMore(self) -> None:
        """
        Every proper prefix of a valid request, from empty to one byte
        short, asks for more bytes.
        """
        for n in range(len(ECHOSCU_RQ)):
            self.assertIsNone(parseAssociateRequest(ECHOSCU_RQ[:n]), n)

    def test_bytesAfterIgnored(self) -> None:
        """
        Bytes after the PDU are not read: the request is returned.
        """
        request = parseAssociateRequest(ECHOSCU_RQ + b"\x04\x00garbage")
        self.assertEqual(request, parseAssociateRequest(ECHOSCU_RQ))

    def test_leadingSpaces(self) -> None:
        """
        Leading spaces of an AE title are not significant either; spaces
        inside it are kept.
        """
        request = parseAssociateRequest(buildRequest(b"  PACS A", b" PUMP 3"))
        assert request is not None
        self.assertEqual((request.calledAE, request.callingAE), ("PACS A", "PUMP 3"))

    def test_fullLengthTitles(self) -> None:
        """
        An AE title may use all 16 bytes and any character of the default
        repertoire but the backslash.
        """
        request = parseAssociateRequest(buildRequest(b"ABCDEFGHIJKLMNOP", b"a-b_c.d*e?f/g~h["))
        assert request is not None
        self.assertEqual(request.calledAE, "ABCDEFGHIJKLMNOP")
        self.assertEqual(request.callingAE, "a-b_c.d*e?f/g~h[")

    def test_itemsInAnyOrder(self) -> None:
        """
        The variable items may come in any order; the application context
        name may carry one NUL of padding.
        """
        items = (_item(0x50, b"") + _presentationContext(1, _VERIFICATION, [_IMPLICIT_LE])
                 + _item(0x10, b"1.2.840.10008.3.1.1.1\x00"))
        request = parseAssociateRequest(buildRequest(items=items))
        assert request is not None
        self.assertEqual(request.applicationContext, DICOM_APPLICATION_CONTEXT)

    def test_otherVersionBits(self) -> None:
        """
        Only bit 0 of the protocol version is tested (PS3.8 9.3.2); the
        field is reported as sent.
        """
        request = parseAssociateRequest(buildRequest(version=0x8003))
        assert request is not None
        self.assertEqual(request.protocolVersion, 0x8003)


class MalformedRequestTests(SynchronousTestCase):
    """
    Anything but an A-ASSOCIATE-RQ raises L{MalformedMessage} for C{dicom},
    as early as the bytes show it.
    """

    def assertMalformed(self, data: bytes, problem: str) -> None:
        """
        C{data} raises L{MalformedMessage} for C{dicom} whose problem
        contains C{problem}.
        """
        error = self.assertRaises(MalformedMessage, parseAssociateRequest, data)
        self.assertEqual(error.protocol, "dicom")
        self.assertIn(problem, error.problem)

    def test_otherPDUs(self) -> None:
        """
        Other PDU types (A-ASSOCIATE-AC, P-DATA-TF, A-ABORT), a TLS
        ClientHello and HTTP are refused from their first byte.
        """
        for first in (b"\x02", b"\x04\x00\x00", b"\x07", b"\x16\x03\x01", b"GET / HTTP/1.1"):
            self.assertMalformed(first, "is not A-ASSOCIATE-RQ")

    def test_tooShort(self) -> None:
        """
        A declared length too small for the fixed fields is refused.
        """
        self.assertMalformed(b"\x01\x00\x00\x00\x00\x43", "shorter than the 68 fixed bytes")

    def test_tooLongFromTheHeader(self) -> None:
        """
        A declared length beyond L{MAX_ASSOCIATE_RQ} is refused from the
        6-byte header alone, before anything is buffered; one at the bound
        is awaited.
        """
        self.assertMalformed(struct.pack(">BBI", 1, 0, MAX_ASSOCIATE_RQ - 5), "exceeds")
        self.assertMalformed(struct.pack(">BBI", 1, 0, 0xFFFFFFFF), "exceeds")
        self.assertIsNone(parseAssociateRequest(struct.pack(">BBI", 1, 0, MAX_ASSOCIATE_RQ - 6)))

    def test_version(self) -> None:
        """
        A protocol version without bit 0 (version 1) is refused as soon as
        its two bytes arrive.
        """
        self.assertMalformed(buildRequest(version=2)[:8], "lacks version 1")

    def test_aeTitleCharacters(self) -> None:
        """
        A backslash, a control character (NUL padding included), DEL or a
        byte beyond ASCII in an AE title is refused as soon as that title's
        16 bytes arrive.
        """
        for bad in (b"PACS\\1", b"PACS\x00", b"\x00" * 16, b"PA\nCS", b"PACS\x7f", b"P\xc4CS"):
            self.assertMalformed(buildRequest(called=bad)[:26], "called AE title has the byte")
            self.assertMalformed(buildRequest(calling=bad)[:42], "calling AE title has the byte")

    def test_aeTitleAllSpaces(self) -> None:
        """
        An AE title of 16 spaces ("no name") is refused.
        """
        self.assertMalformed(buildRequest(called=b""), "called AE title is all spaces")
        self.assertMalformed(buildRequest(calling=b""), "calling AE title is all spaces")

    def test_items(self) -> None:
        """
        Variable items that do not tile the PDU, are of a type an
        A-ASSOCIATE-RQ cannot carry, or lack a mandatory item, are refused.
        """
        context = _item(0x10, DICOM_APPLICATION_CONTEXT.encode())
        presentation = _presentationContext(1, _VERIFICATION, [_IMPLICIT_LE])
        user = _item(0x50, b"")
        cases: List[Tuple[bytes, str]] = [
            (context + presentation + user + b"\x00", "stray bytes"),
            (context + presentation + b"\x50\x00\x00\x09", "declares 9 bytes"),
            (context + presentation + user + _item(0x21, b""), "item type 0x21 is not allowed"),
            (presentation + user, "no application context"),
            (context + user, "no presentation context"),
            (context + presentation, "0 user information items"),
            (context + presentation + user + user, "2 user information items"),
            (context + context + presentation + user, "more than one application context"),
            (_item(0x10, b"1.2.x") + presentation + user, "not a UID"),
            (_item(0x10, b"") + presentation + user, "not a UID"),
            (_item(0x10, b"1" * 65) + presentation + user, "not a UID"),
            (context + _item(0x20, b"\x01\x00") + user, "shorter than 4 bytes"),
            (context + _item(0x20, b"\x01\x00\xff\x00\x30\x00\x00\x05") + user,
             "in a presentation context item"),
            (context + presentation + _item(0x50, b"\x51\x00\x00"), "stray bytes at the end of "
                                                                    "the user information"),
        ]
        for items, problem in cases:
            self.assertMalformed(buildRequest(items=items), problem)


class RejectTests(SynchronousTestCase):
    """
    L{associateReject} builds A-ASSOCIATE-RJ PDUs (PS3.8 9.3.4).
    """

    def test_callingAE(self) -> None:
        """
        The default is a permanent rejection by the service user; the PDU is
        type 0x03, length 4, reserved byte, result, source, reason.
        """
        self.assertEqual(associateReject(CALLING_AE_NOT_RECOGNIZED),
                         bytes.fromhex("03 00 00000004 00 01 01 03"))
        self.assertEqual(associateReject(CALLED_AE_NOT_RECOGNIZED),
                         bytes.fromhex("03 00 00000004 00 01 01 07"))
        self.assertEqual(associateReject(NO_REASON_GIVEN, result=2, source=3),
                         bytes.fromhex("03 00 00000004 00 02 03 01"))

    def test_undefined(self) -> None:
        """
        A result, source, or reason for that source that PS3.8 does not
        define is a L{ValueError} naming it.
        """
        for kwargs in ({"result": 0}, {"result": 3}, {"source": 0}, {"source": 4}):
            self.assertRaises(ValueError, associateReject, 1, **kwargs)
        for reason, source in ((4, 1), (8, 1), (0, 1), (3, 2), (7, 3), (0, 3)):
            error = self.assertRaises(ValueError, associateReject, reason, source=source)
            self.assertIn(f"reason {reason} is not defined for source {source}", str(error))


_TITLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                        blacklist_characters="\\"), min_size=1, max_size=16)
_UID = st.from_regex(r"\A[1-9][0-9]{0,8}(\.[0-9]{1,8}){1,6}\Z")


@st.composite
def _requests(draw: Any) -> Tuple[bytes, str, str]:
    called, calling = draw(_TITLE), draw(_TITLE)
    contexts = b"".join(
        _presentationContext(2 * i + 1, draw(_UID), draw(st.lists(_UID, min_size=1, max_size=3)))
        for i in range(draw(st.integers(1, 4))))
    user = _item(0x50, b"".join(_item(t, v) for t, v in draw(
        st.lists(st.tuples(st.integers(0x51, 0x59), st.binary(max_size=20)), max_size=4))))
    items = [_item(0x10, DICOM_APPLICATION_CONTEXT.encode()), contexts, user]
    order = draw(st.permutations(items))
    return buildRequest(called.encode(), calling.encode(), b"".join(order)), called, calling


def _outcome(data: bytes) -> Optional[AssociateRequest]:
    """
    Parse C{data}; only L{MalformedMessage} may escape, and C{None} only
    for a prefix shorter than the length its header declares, within the
    bound.
    """
    try:
        result = parseAssociateRequest(data)
    except MalformedMessage as e:
        assert e.protocol == "dicom"
        raise
    if result is None:
        assert not data or data[0] == 1
        if len(data) >= 6:
            declared = 6 + struct.unpack(">I", data[2:6])[0]
            assert len(data) < declared <= MAX_ASSOCIATE_RQ
    return result


class FuzzTests(SynchronousTestCase):
    """
    Hypothesis properties: valid requests of every shape round-trip and
    their prefixes wait; anything else raises L{MalformedMessage} only, and
    never makes the reader wait beyond L{MAX_ASSOCIATE_RQ}.
    """

    @given(_requests())
    def test_validRoundTrip(self, request: Tuple[bytes, str, str]) -> None:
        """
        A valid request parses to its AE titles; each prefix asks for more.
        """
        data, called, calling = request
        parsed = parseAssociateRequest(data)
        assert parsed is not None
        self.assertEqual((parsed.calledAE, parsed.callingAE), (called, calling))
        for n in range(0, len(data), 7):
            self.assertIsNone(parseAssociateRequest(data[:n]))

    @given(st.binary(max_size=300))
    def test_arbitraryBytes(self, data: bytes) -> None:
        """
        Arbitrary bytes, alone or after a valid header, give a request,
        C{None} within the bound, or L{MalformedMessage}; nothing else.
        """
        for candidate in (data, ECHOSCU_RQ[:6] + data, ECHOSCU_RQ[:74] + data):
            try:
                _outcome(candidate)
            except MalformedMessage:
                pass

    @given(st.data())
    def test_mutatedRealRequest(self, data: Any) -> None:
        """
        echoscu's request with bytes replaced, inserted or removed gives a
        request, C{None} within the bound, or L{MalformedMessage}; and a
        request read from it has AE titles of the default repertoire.
        """
        pdu = bytearray(ECHOSCU_RQ)
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(pdu) - 1))
            action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
            byte = data.draw(st.integers(0, 255))
            if action == "replace":
                pdu[at] = byte
            elif action == "insert":
                pdu.insert(at, byte)
            else:
                del pdu[at]
        try:
            result = _outcome(bytes(pdu))
        except MalformedMessage:
            return
        if result is not None:
            for title in (result.calledAE, result.callingAE):
                self.assertTrue(title and title.isascii() and title.isprintable())
                self.assertNotIn("\\", title)


class _RejectingServer(Protocol):
    """
    A minimal DICOM acceptor: reads the A-ASSOCIATE-RQ with
    L{parseAssociateRequest}, records it and the bytes, answers with the
    factory's A-ASSOCIATE-RJ.
    """

    factory: _RejectingFactory

    def connectionMade(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        request = parseAssociateRequest(self.buffer)
        if request is not None:
            self.factory.received.append((request, self.buffer))
            self.transport.write(self.factory.answer)
            self.transport.loseConnection()


class _RejectingFactory(Factory):
    protocol = _RejectingServer

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received: List[Tuple[AssociateRequest, bytes]] = []


class RealPeerTests(TestCase):
    """
    Real dcmtk requestors (echoscu, storescu) over loopback: their requests
    are read, and they understand our rejections.
    """

    def setUp(self) -> None:
        needDcmtk()

    @inlineCallbacks
    def _reject(self, argv: Sequence[str], answer: bytes, *after: str) -> Any:
        factory = _RejectingFactory(answer)
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        process = PeerProcess.spawn([*argv, "127.0.0.1", str(port.getHost().port),
                                        *after])
        self.addCleanup(process.stop)
        yield process.ended
        return factory.received, process

    @inlineCallbacks
    def test_echoscuRejected(self) -> None:
        """
        echoscu's request gives its -aet and -aec; echoscu reports each of
        our rejections with the result, source and reason we sent.
        """
        assert ECHOSCU is not None
        cases = [
            (associateReject(CALLING_AE_NOT_RECOGNIZED),
             ["Rejected Permanent, Source: Service User", "Calling AE Title Not Recognized"]),
            (associateReject(CALLED_AE_NOT_RECOGNIZED),
             ["Rejected Permanent, Source: Service User", "Called AE Title Not Recognized"]),
            (associateReject(2, result=2, source=3),
             ["Rejected Transient, Source: Service Provider (Presentation",
              "Local Limit Exceeded"]),
        ]
        for answer, expected in cases:
            received, process = yield self._reject(
                [ECHOSCU, "-aet", "WARD3PUMP", "-aec", "ARCHIVE"], answer)
            self.assertEqual([r for r, _ in received],
                             [AssociateRequest(calledAE="ARCHIVE", callingAE="WARD3PUMP")])
            output = (process.out + process.err).decode()
            self.assertNotEqual(process.exitCode, 0, process.describe())
            self.assertIn("Association Rejected", output)
            for text in expected:
                self.assertIn(text, output)

    @inlineCallbacks
    def test_storescu(self) -> None:
        """
        storescu's request (a presentation context per transfer syntax it
        may use) is read in full; its AE titles are its -aet and -aec; its
        bytes hold no patient data (the association precedes the data set).
        """
        assert STORESCU is not None
        path = dicomFile(self.mktemp())
        received, process = yield self._reject(
            [STORESCU, "-aet", "CT01", "-aec", "PACS-MAIN"],
            associateReject(CALLED_AE_NOT_RECOGNIZED), path)
        [(request, raw)] = received
        self.assertEqual((request.calledAE, request.callingAE), ("PACS-MAIN", "CT01"))
        self.assertGreater(len(raw), len(ECHOSCU_RQ))
        self.assertNotIn(b"Doe", raw)
        self.assertIn("Called AE Title Not Recognized", (process.out + process.err).decode())

