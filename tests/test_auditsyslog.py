"""
Tests for L{securetcp.audit.syslog}: the RFC 5424 message of a sealed
audit line, and octet-counting framing (RFC 5425, RFC 6587).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.chain import ZERO_HASH, seal
from securetcp.audit.records import chainStarted
from securetcp.audit.syslog import (
    SD_ID,
    SyslogIdentity,
    octetFrame,
    readFrames,
    severityOf,
    syslogMessage,
    validNodeId,
)

IDENTITY = SyslogIdentity(node="gw-1", hostname="gw-1.example", procid="4242")

#: The wire contract, as the collector side parses it.
CONTRACT = re.compile(
    rb'<(\d+)>1 (\S+) (\S+) securetcp (\S+) (\S+) '
    rb'\[securetcp@32473 node="([^"]+)" seq="(\d+)" hash="([0-9a-f]{64})"\] (.*)\Z', re.S)


def sealed(record: dict, seq: int = 1) -> bytes:
    line, _ = seal(record, seq, ZERO_HASH)
    return line


class MessageTests(SynchronousTestCase):
    """
    L{syslogMessage} follows the wire contract.
    """

    def test_contract(self) -> None:
        """
        A message is C{<PRI>1 TIMESTAMP HOSTNAME securetcp PROCID MSGID
        [securetcp@32473 node= seq= hash=] MSG}, with the record's time,
        its event as MSGID and the sealed line, without its newline, as MSG.
        """
        line = sealed(chainStarted(1765000000.25, "sha256"), seq=7)
        message = syslogMessage(line, IDENTITY)
        found = CONTRACT.match(message)
        assert found is not None, message
        pri, time, host, procid, msgid, node, seq, digest, msg = found.groups()
        self.assertEqual((pri, host, procid, msgid, node, seq),
                         (b"85", b"gw-1.example", b"4242", b"chain.started", b"gw-1", b"7"))
        self.assertEqual(time, b"2025-12-06T05:46:40.250000Z")
        self.assertEqual(msg, line.rstrip(b"\n"))
        self.assertIn(digest.decode(), msg.decode())
        self.assertFalse(msg.startswith(b"\xef\xbb\xbf"))
        self.assertEqual(SD_ID, "securetcp@32473")

    def test_warnings(self) -> None:
        """
        Refusals and losses are severity 4 (PRI 84), the rest 5 (PRI 85),
        under facility 10 (security/authorization).
        """
        self.assertEqual(severityOf("handshake.rejected"), 4)
        self.assertEqual(severityOf("chain.gap"), 4)
        self.assertEqual(severityOf("export.dropped"), 4)
        self.assertEqual(severityOf("connection.accepted"), 5)
        record = {"event": "handshake.rejected", "time": "2026-01-01T00:00:00.000000Z",
                  "seq": 1, "hash": "ab" * 32}
        self.assertTrue(syslogMessage(b"{}", IDENTITY, record=record).startswith(b"<84>1 "))

    def test_otherMessage(self) -> None:
        """
        C{msg} replaces the line as the MSG (the atna format's XML); the
        structured data still names the line's seq and hash.
        """
        line = sealed(chainStarted(0, "sha256"))
        message = syslogMessage(line, IDENTITY, msg=b"<AuditMessage/>")
        self.assertTrue(message.endswith(b'"] <AuditMessage/>'))
        self.assertIn(b' seq="1" ', message)

    def test_badHeaderFields(self) -> None:
        """
        A host name or process id that is not printable ASCII is sent as
        the nil value C{-}; a time that is not an RFC 5424 timestamp too.
        """
        identity = SyslogIdentity(node="n", hostname="h\u00e9", procid="")
        record = {"event": "chain.started", "time": "yesterday", "seq": 1, "hash": "0" * 64}
        message = syslogMessage(b"{}", identity, record=record)
        self.assertTrue(message.startswith(b"<85>1 - - securetcp - chain.started "), message)

    def test_nodeIds(self) -> None:
        """
        A node id is 1 to 255 printable ASCII characters without C{"},
        C{\\} or C{]} (so it is written unescaped); others are refused.
        """
        for good in ("gw-1", "host.example/worker-2", "a" * 255):
            self.assertTrue(validNodeId(good), good)
        for bad in ("", "two words", 'q"uote', "back\\slash", "br]acket", "a" * 256, "\u00e9"):
            self.assertFalse(validNodeId(bad), bad)
            self.assertRaises(ValueError, SyslogIdentity, node=bad)


class FramingTests(SynchronousTestCase):
    """
    Octet counting: C{LEN SP MSG}, read back whole however it is cut.
    """

    def test_frame(self) -> None:
        """
        A frame is the message's length in bytes, a space and the message.
        """
        self.assertEqual(octetFrame(b"<85>1 - - - - - - hi"), b"20 <85>1 - - - - - - hi")

    @given(st.lists(st.binary(min_size=1, max_size=300), max_size=8),
           st.integers(min_value=1, max_value=50))
    def test_roundTrip(self, messages: list, cut: int) -> None:
        """
        Frames fed in pieces of any size come out as the messages, in order.
        """
        stream = b"".join(octetFrame(m) for m in messages)
        received, rest = [], b""
        for at in range(0, len(stream), cut):
            done, rest = readFrames(rest + stream[at:at + cut])
            received.extend(done)
        self.assertEqual((received, rest), (messages, b""))

    def test_notFramed(self) -> None:
        """
        A stream that is not octet-counted is refused.
        """
        for bad in (b"<85>1 hello", b"012 abc", b"1234567890123 x"):
            self.assertRaises(ValueError, readFrames, bad)
