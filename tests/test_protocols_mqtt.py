"""
Tests for L{securetcp.protocols.mqtt}: the client identifier and user name
of the CONNECT packet of MQTT 3.1, 3.1.1 and 5, bounded; everything else
refused with L{MalformedMessage}; and the CONNACK "not authorized".
"""

from __future__ import annotations

import struct
from typing import Optional

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.protocols import MalformedMessage
from securetcp.protocols.mqtt import MAX_CONNECT, Connect, notAuthorized, parseConnect


def _text(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect(level: int = 4, clientId: bytes = b"pump-7", username: Optional[bytes] = None,
            password: Optional[bytes] = None, will: bool = False) -> bytes:
    """
    A CONNECT packet as a client of C{level} sends it.
    """
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    flags |= 0x04 if will else 0
    name = b"MQIsdp" if level == 3 else b"MQTT"
    body = _text(name) + bytes([level, flags]) + b"\x00\x3c"
    if level == 5:
        body += b"\x05\x11\x00\x00\x00\x0a"  # session expiry interval
    body += _text(clientId)
    if will:
        body += (b"\x00" if level == 5 else b"") + _text(b"ward3/lwt") + _text(b"gone")
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return b"\x10" + _varint(len(body)) + body


class ParseTests(SynchronousTestCase):
    """
    L{parseConnect} reads a complete CONNECT.
    """

    def test_levels(self) -> None:
        """
        The client identifier and user name of 3.1, 3.1.1 and 5 CONNECTs
        are read, after the will of each; the password is not kept.
        """
        for level in (3, 4, 5):
            packet = connect(level, b"pump-7", b"nurse", b"secret", will=True)
            self.assertEqual(parseConnect(packet), Connect(level, "pump-7", "nurse"))
            self.assertNotIn("secret", repr(parseConnect(packet)))
        self.assertEqual(parseConnect(connect(clientId=b"")), Connect(4, "", None))

    def test_needsMore(self) -> None:
        """
        Every prefix of a CONNECT asks for more bytes; bytes after it are
        the next packet's.
        """
        packet = connect(5, b"pump-7", b"nurse")
        for i in range(len(packet)):
            self.assertIsNone(parseConnect(packet[:i]), i)
        self.assertEqual(parseConnect(packet + b"\x30\x00").clientId, "pump-7")

    def test_malformed(self) -> None:
        """
        Another first packet, another protocol, the reserved flag, a field
        overrunning the packet, bytes after the last field, a bad UTF-8
        string and a five-byte length are L{MalformedMessage}.
        """
        good = connect()
        for data, problem in [
                (b"\x30\x00", "not a CONNECT"),
                (b"\x10\x08" + _text(b"HTTP") + b"\x04\x00", "is not MQTT"),
                (good[:9] + b"\x03" + good[10:], "reserved connect flag"),
                (good[:1] + bytes([good[1] - 2]) + good[2:-2], "runs beyond"),
                (good[:1] + bytes([good[1] + 1]) + good[2:] + b"x", "beyond its last field"),
                (connect(clientId=b"\xff\xfe"), "not UTF-8"),
                (connect(clientId=b"a\x00b"), "U+0000"),
                (b"\x10\xff\xff\xff\xff\x01", "beyond four bytes")]:
            with self.assertRaises(MalformedMessage) as caught:
                parseConnect(data)
            self.assertIn(problem, caught.exception.problem)

    def test_bound(self) -> None:
        """
        A CONNECT longer than L{MAX_CONNECT} is refused as soon as its
        length is read, before its bytes arrive.
        """
        with self.assertRaises(MalformedMessage) as caught:
            parseConnect(b"\x10" + _varint(MAX_CONNECT))
        self.assertIn("exceeds", caught.exception.problem)

    @given(st.binary(max_size=300))
    def test_fuzz(self, data: bytes) -> None:
        """
        Any bytes give a CONNECT, C{None} or L{MalformedMessage}; C{None}
        only while the packet can still fit within L{MAX_CONNECT}.
        """
        for candidate in (data, b"\x10" + data, connect()[:12] + data):
            try:
                parsed = parseConnect(candidate)
            except MalformedMessage:
                continue
            if parsed is None:
                self.assertLess(len(candidate), MAX_CONNECT)

    @given(st.integers(3, 5), st.binary(max_size=40), st.one_of(st.none(), st.binary(max_size=20)),
           st.booleans())
    def test_fuzzFields(self, level: int, clientId: bytes, username: Optional[bytes],
                        will: bool) -> None:
        """
        Well-formed CONNECTs with any field bytes are read, or refused as
        malformed when a string is not UTF-8 or holds U+0000.
        """
        try:
            parsed = parseConnect(connect(level, clientId, username, b"pw", will))
        except MalformedMessage:
            return
        assert parsed is not None
        self.assertEqual(parsed.clientId.encode("utf-8"), clientId)


class NotAuthorizedTests(SynchronousTestCase):
    """
    L{notAuthorized} is the CONNACK of the client's protocol level.
    """

    def test_connack(self) -> None:
        """
        3.1 and 3.1.1: return code 5; 5: reason code 0x87 and an empty
        property length.
        """
        self.assertEqual(notAuthorized(4), b"\x20\x02\x00\x05")
        self.assertEqual(notAuthorized(3), b"\x20\x02\x00\x05")
        self.assertEqual(notAuthorized(5), b"\x20\x03\x00\x87\x00")
