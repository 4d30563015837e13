# -*- test-case-name: tests.test_protocols_hl7,tests.test_everymessage -*-
"""
The messages of HL7 v2 over MLLP (the first, L{parseFirstMessage}, and
every one of a connection, L{MLLPStream}), each read as far as its message
header (MSH): who the sender says it is (MSH-3, MSH-4) and whom it addresses
(MSH-5, MSH-6).  The field separator and the encoding characters are taken
from the MSH segment itself (MSH-1, MSH-2), as HL7 v2 defines them::

    >>> header = parseFirstMessage(b"\\x0bMSH|^~\\\\&|PUMP|WARD3|HIS|HOSP|"
    ...                            b"20260101||ORU^R01|42|P|2.5\\r")
    >>> header.sendingFacility
    'WARD3'

MLLP frames a message as C{0x0B} message C{0x1C 0x0D}.  Only the header is
needed to judge the sender, so the reader decides as soon as the MSH
segment is complete, without waiting for the rest of a message that may be
large; it never keeps more than L{MAX_HEADER} bytes.  L{MLLPStream} reads
every message of a connection the same way, and L{rejectACK} builds the
application reject acknowledgement (MSA-1 C{AR}) to answer with.
"""

from __future__ import annotations

from typing import List, Optional, Union

import attrs

from securetcp.protocols import MalformedMessage

#: MLLP's start block, end block and carriage return.
START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
#: The most bytes of a first message read before its MSH segment must be
#: complete (an MSH segment is a few hundred bytes).
MAX_HEADER = 4096

_NAME = "hl7"


@attrs.frozen
class MessageHeader:
    """
    What the MSH segment of a message says; every field as it was sent,
    components and escape sequences included (C{"WARD3^1.2.3^ISO"}).

    @ivar fieldSeparator: MSH-1.
    @ivar encodingCharacters: MSH-2 (component, repetition, escape,
        subcomponent and optionally truncation characters).
    @ivar sendingApplication: MSH-3.
    @ivar sendingFacility: MSH-4.
    @ivar receivingApplication: MSH-5.
    @ivar receivingFacility: MSH-6.
    @ivar messageType: MSH-9.
    @ivar controlId: MSH-10, which an acknowledgement echoes.
    @ivar processingId: MSH-11.
    @ivar version: MSH-12.
    """

    fieldSeparator: str
    encodingCharacters: str
    sendingApplication: str = ""
    sendingFacility: str = ""
    receivingApplication: str = ""
    receivingFacility: str = ""
    messageType: str = ""
    controlId: str = ""
    processingId: str = ""
    version: str = ""


def _decode(segment: bytes) -> str:
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        # HL7 v2 often travels as ISO 8859-1 (MSH-18); every byte is a character
        return segment.decode("latin-1")


def parseFirstMessage(data: bytes) -> Optional[MessageHeader]:
    """
    Read the MSH segment of the first MLLP-framed message in C{data} (the
    bytes received so far).

    @return: the header, or C{None} when more bytes are needed.
    @raise MalformedMessage: when C{data} does not start an MLLP-framed
        HL7 v2 message with an MSH segment, or the segment is not complete
        within L{MAX_HEADER} bytes.
    """
    if not data:
        return None
    if data[:1] != START_BLOCK:
        raise MalformedMessage(_NAME, f"the first byte is 0x{data[0]:02x}, not MLLP's start "
                                      "block 0x0b")
    body = data[1:MAX_HEADER]
    end = _segmentEnd(body)
    if end is None:
        if len(data) >= MAX_HEADER:
            raise MalformedMessage(_NAME, f"the MSH segment exceeds the bound of {MAX_HEADER} "
                                          "bytes")
        if len(body) >= 3 and body[:3] != b"MSH":
            raise MalformedMessage(_NAME, "the message does not start with an MSH segment")
        return None
    return _header(_decode(body[:end]))


def _segmentEnd(body: bytes) -> Optional[int]:
    """
    Where the first segment of C{body} ends: at its carriage return (or
    line feed, which some senders use), or at the end block.
    """
    ends = [i for i in (body.find(b"\r"), body.find(b"\n"), body.find(b"\x1c")) if i >= 0]
    return min(ends) if ends else None


def _header(segment: str) -> MessageHeader:
    if not segment.startswith("MSH") or len(segment) < 5:
        raise MalformedMessage(_NAME, "the message does not start with an MSH segment")
    separator = segment[3]
    if separator.isalnum() or separator in " \t":
        raise MalformedMessage(_NAME, f"MSH-1 {separator!r} is not a usable field separator")
    fields = segment.split(separator)
    encoding = fields[1]
    if not 2 <= len(encoding) <= 5 or separator in encoding or any(
            c.isalnum() or c.isspace() for c in encoding):
        raise MalformedMessage(_NAME, "MSH-2 does not hold the encoding characters")
    # fields[0] is "MSH" and MSH-1 is the separator itself: MSH-n is fields[n - 1]
    fields += [""] * (12 - len(fields))
    return MessageHeader(separator, encoding, *fields[2:6], *fields[8:12])


#: What L{MLLPStream.receive} returns: bytes to pass on, the header of the
#: next message (judge it before passing on what follows), or the problem
#: that ends the stream.
StreamItem = Union[bytes, MessageHeader, MalformedMessage]


class MLLPStream:
    """
    Every MLLP-framed message of one connection, in order: the header of
    each message as soon as its MSH segment is complete, and the bytes of
    the stream between, unchanged::

        stream = MLLPStream()
        for item in stream.receive(data):
            ...   # bytes: pass on; MessageHeader: judge first; MalformedMessage: stop

    A header's own bytes come right after it, so nothing of a message is
    passed on before its header is judged.  The bytes of a message whose
    header is out are passed on as they arrive (a message of any length
    costs a C{bytes.find} per chunk); only a message's start, until its
    MSH segment is complete, is kept: at most L{MAX_HEADER} bytes.  Between
    messages only a start block may come: anything else (or a header that
    L{parseFirstMessage} refuses) is the last item, a L{MalformedMessage}.
    """

    def __init__(self) -> None:
        #: C{"between"} messages, reading a message's C{"header"}, in its
        #: C{"body"}, just after its end block's C{"fs"}, or C{"done"}
        self.state = "between"
        self._header = b""

    def receive(self, data: bytes) -> List[StreamItem]:
        """
        Read the next bytes of the stream.
        """
        items: List[StreamItem] = []
        while data and self.state != "done":
            data = self._step(data, items)
        return items

    def _step(self, data: bytes, items: List[StreamItem]) -> bytes:
        state = self.state
        if state == "body":
            end = data.find(b"\x1c")
            if end < 0:
                items.append(data)
                return b""
            items.append(data[:end + 1])
            self.state = "fs"
            return data[end + 1:]
        if state == "fs":
            if data[:1] != b"\r":
                return self._fail(items, f"0x{data[0]:02x} follows MLLP's 0x1c end block, "
                                         "not 0x0d")
            items.append(data[:1])
            self.state = "between"
            return data[1:]
        if state == "between":
            if data[:1] != START_BLOCK:
                return self._fail(items, f"0x{data[0]:02x} between messages, not MLLP's "
                                         "start block 0x0b")
            self.state = "header"
        held = self._header + data[:MAX_HEADER]
        try:
            header = parseFirstMessage(held)
        except MalformedMessage as e:
            return self._fail(items, e.problem)
        if header is None:
            self._header = held  # shorter than MAX_HEADER: all of data is in it
            return b""
        items.append(header)
        if self._header:
            items.append(self._header)
        self._header = b""
        self.state = "body"
        return data  # its end block, and the next message, are still to be found

    def _fail(self, items: List[StreamItem], problem: str) -> bytes:
        items.append(MalformedMessage(_NAME, problem))
        self.state = "done"
        self._header = b""
        return b""


def frame(message: bytes) -> bytes:
    """
    C{message} framed for MLLP.
    """
    return START_BLOCK + message + END_BLOCK


def rejectACK(header: MessageHeader, controlId: str, timestamp: str,
              text: str = "") -> bytes:
    """
    The MLLP-framed application reject acknowledgement (MSA-1 C{AR}) of the
    message whose header is C{header}: from its receiver to its sender,
    echoing its control ID (MSA-2).

    @param controlId: the acknowledgement's own control ID (MSH-10).
    @param timestamp: its date and time (MSH-7), C{YYYYMMDDHHMMSS}.
    @param text: a short reason (MSA-3); never patient data.
    """
    f = header.fieldSeparator
    component = header.encodingCharacters[0]
    trigger = header.messageType.split(component)[1:2]
    msh = f.join(["MSH", header.encodingCharacters, header.receivingApplication,
                  header.receivingFacility, header.sendingApplication, header.sendingFacility,
                  timestamp, "", component.join(["ACK", *trigger]), controlId,
                  header.processingId or "P", header.version or "2.5"])
    msa = f.join(["MSA", "AR", header.controlId] + ([text] if text else []))
    return frame((msh + "\r" + msa + "\r").encode("utf-8"))
