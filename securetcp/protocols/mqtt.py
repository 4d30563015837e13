# -*- test-case-name: tests.test_protocols_mqtt -*-
"""
The first packet of MQTT 3.1.1 and 5 (also 3.1): the CONNECT, read for the
client identifier and the user name it claims; and the CONNACK that refuses
a client as "not authorized"::

    >>> connect = parseConnect(b"\\x10\\x10\\x00\\x04MQTT\\x04\\x02\\x00\\x3c"
    ...                        b"\\x00\\x04pump")
    >>> connect.clientId, connect.level
    ('pump', 4)
    >>> notAuthorized(connect.level)
    b' \\x02\\x00\\x05'

The remaining length is MQTT's variable-length integer (at most four
bytes); a CONNECT longer than L{MAX_CONNECT} bytes is refused as soon as
its length is read.  The password is skipped, never kept.
"""

from __future__ import annotations

import struct
from typing import Optional, Tuple

import attrs

from securetcp.protocols import MalformedMessage

#: The most bytes of a CONNECT packet (fixed header included) read.
MAX_CONNECT = 65536
#: MQTT's protocol levels: 3.1, 3.1.1, 5.
LEVELS = {3: "3.1", 4: "3.1.1", 5: "5"}

_NAME = "mqtt"
_CONNECT = 0x10
_USERNAME, _PASSWORD, _WILL = 0x80, 0x40, 0x04


@attrs.frozen
class Connect:
    """
    What a CONNECT claims.

    @ivar level: the protocol level (3, 4 for 3.1.1, 5).
    @ivar clientId: the client identifier (empty: the server is to assign one).
    @ivar username: the user name, C{None} if none was given.
    """

    level: int
    clientId: str
    username: Optional[str] = None


def _varint(data: bytes, at: int) -> Optional[Tuple[int, int]]:
    """
    MQTT's variable-length integer at C{at}: C{(value, next offset)}, or
    C{None} when its bytes have not all arrived.
    """
    value = 0
    for i in range(4):
        if at + i >= len(data):
            return None
        byte = data[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, at + i + 1
    raise MalformedMessage(_NAME, "a variable-length integer runs beyond four bytes")


class _Reader:
    """
    Reads the fields of a complete packet body, refusing any that overruns it.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def take(self, n: int, what: str) -> bytes:
        if self.at + n > len(self.body):
            raise MalformedMessage(_NAME, f"the {what} runs beyond the CONNECT packet")
        chunk = self.body[self.at:self.at + n]
        self.at += n
        return chunk

    def binary(self, what: str) -> bytes:
        (n,) = struct.unpack(">H", self.take(2, what))
        return self.take(n, what)

    def text(self, what: str) -> str:
        raw = self.binary(what)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage(_NAME, f"the {what} is not UTF-8") from None
        if "\x00" in text:
            raise MalformedMessage(_NAME, f"the {what} holds U+0000")
        return text

    def properties(self, what: str) -> None:
        decoded = _varint(self.body, self.at)
        if decoded is None:
            raise MalformedMessage(_NAME, f"the {what} run beyond the CONNECT packet")
        length, self.at = decoded
        self.take(length, what)


def parseConnect(data: bytes) -> Optional[Connect]:
    """
    Read the CONNECT packet at the start of C{data} (the bytes received so far).

    @return: what it claims, or C{None} when more bytes are needed.
    @raise MalformedMessage: when C{data} does not start with a well-formed
        CONNECT of MQTT 3.1, 3.1.1 or 5, or the packet exceeds L{MAX_CONNECT}.
    """
    if not data:
        return None
    if data[0] != _CONNECT:
        raise MalformedMessage(_NAME, f"the first packet (0x{data[0]:02x}) is not a CONNECT")
    decoded = _varint(data, 1)
    if decoded is None:
        return None
    length, start = decoded
    if start + length > MAX_CONNECT:
        raise MalformedMessage(_NAME, f"the CONNECT packet of {start + length} bytes exceeds "
                                      f"the bound of {MAX_CONNECT}")
    if len(data) < start + length:
        return None
    return _connect(_Reader(data[start:start + length]))


def _connect(body: _Reader) -> Connect:
    name = body.binary("protocol name")
    (level,) = body.take(1, "protocol level")
    if (name, level) not in ((b"MQTT", 4), (b"MQTT", 5), (b"MQIsdp", 3)):
        raise MalformedMessage(_NAME, f"protocol {name[:8]!r} level {level} is not MQTT "
                                      "3.1, 3.1.1 or 5")
    (flags,) = body.take(1, "connect flags")
    if flags & 0x01:
        raise MalformedMessage(_NAME, "the reserved connect flag is set")
    body.take(2, "keep alive")
    if level == 5:
        body.properties("properties")
    clientId = body.text("client identifier")
    if flags & _WILL:
        if level == 5:
            body.properties("will properties")
        body.text("will topic")
        body.binary("will payload")
    username = body.text("user name") if flags & _USERNAME else None
    if flags & _PASSWORD:
        body.binary("password")
    if body.at != len(body.body):
        raise MalformedMessage(_NAME, "the CONNECT packet has bytes beyond its last field")
    return Connect(level, clientId, username)


def notAuthorized(level: int) -> bytes:
    """
    The CONNACK that refuses a client of protocol C{level}: return code 5
    ("not authorized") in 3.1 and 3.1.1, reason code 0x87 ("Not
    authorized") with no properties in 5.
    """
    if level == 5:
        return b"\x20\x03\x00\x87\x00"
    return b"\x20\x02\x00\x05"
