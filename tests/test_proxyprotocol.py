# -*- test-case-name: tests.test_proxyprotocol -*-
"""
Tests for L{securetcp._below.proxyprotocol}: the sans-IO PROXY header parser (v1
and v2), servers with C{proxyProtocol=} over connections made in memory,
and a real HAProxy (C{send-proxy-v2}) in front of an C{mtls:} server.

The real-HAProxy tests need the C{haproxy} and C{openssl} binaries and are
skipped without them.  Every external program runs with the reactor, on a
free port below 32768, is killed after a bounded time, and is stopped in
cleanup.
"""

from __future__ import annotations

import os
import shutil
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from securetcp import AUDIT_NAMESPACE, AuditEmitter, HandshakeRejected, buildPolicy
from securetcp._below._audit import PreTLSAudit
from securetcp._below.proxyprotocol import (
    V2_SIGNATURE,
    InvalidProxyHeader,
    ProxyHeader,
    ProxyHeaderFactory,
    ProxyHeaderParser,
)

from ._iosim import CLIENT_ADDRESS
from ._net import listeningOn
from ._pki import sharedPKI
from ._proxy import (
    BALANCER,
    CLIENT_V4,
    CLIENT_V6,
    FRONT_V4,
    FRONT_V6,
    AddressRecordingFactory,
    InMemoryTestCase,
    connectThrough,
    tlv,
    v1,
    v2,
    v2Addresses,
    v2Proxy,
)
from ._recording import RecordingFactory

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
OPENSSL = shutil.which("openssl")


def parseAll(data: bytes, versions: Tuple[str, ...] = ("v1", "v2")
             ) -> Tuple[Optional[ProxyHeader], bytes]:
    return ProxyHeaderParser(versions).feed(data)


def parseChunks(chunks: List[bytes], versions: Tuple[str, ...] = ("v1", "v2")
                ) -> Tuple[Optional[ProxyHeader], bytes]:
    """
    Feed C{chunks} one by one until a header comes out; the bytes after it
    are those the feed returned plus every later chunk.
    """
    parser = ProxyHeaderParser(versions)
    for i, chunk in enumerate(chunks):
        header, rest = parser.feed(chunk)
        if header is not None:
            return header, rest + b"".join(chunks[i + 1:])
        assert rest == b"", "bytes returned without a header"
    return None, b""


def outcome(parse: Callable[[], Tuple[Optional[ProxyHeader], bytes]]) -> Any:
    """
    What C{parse} did: its result, or C{"invalid"}.  Any other exception
    propagates.
    """
    try:
        return parse()
    except InvalidProxyHeader:
        return "invalid"


class ParserV1Tests(SynchronousTestCase):
    """
    L{ProxyHeaderParser} reads PROXY protocol version 1 (text) headers.
    """

    def test_tcp4(self) -> None:
        """
        A C{TCP4} line names the source and destination as
        L{IPv4Address}es; the bytes after the line are returned.
        """
        header, rest = parseAll(v1("TCP4", "203.0.113.7", "198.51.100.1", 51515, 443)
                                + b"\x16\x03\x01after")
        self.assertEqual(header, ProxyHeader("v1", CLIENT_V4, FRONT_V4))
        self.assertEqual(rest, b"\x16\x03\x01after")

    def test_tcp6(self) -> None:
        """
        A C{TCP6} line names the source and destination as
        L{IPv6Address}es.
        """
        header, rest = parseAll(v1("TCP6", "2001:db8::7", "2001:db8::1", 51516, 443))
        self.assertEqual(header, ProxyHeader("v1", CLIENT_V6, FRONT_V6))
        self.assertEqual(rest, b"")

    def test_unknown(self) -> None:
        """
        C{PROXY UNKNOWN} (the balancer could not tell) parses with no
        addresses, whatever follows C{UNKNOWN} on the line.
        """
        self.assertEqual(parseAll(b"PROXY UNKNOWN\r\nrest"),
                         (ProxyHeader("v1", None, None), b"rest"))
        self.assertEqual(parseAll(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
                         (ProxyHeader("v1", None, None), b""))

    def test_portBounds(self) -> None:
        """
        Ports 0 and 65535 are valid.
        """
        header, _ = parseAll(v1("TCP4", "10.0.0.1", "10.0.0.2", 0, 65535))
        assert header is not None
        self.assertEqual((header.source.port, header.destination.port),  # type: ignore[union-attr]
                         (0, 65535))

    def test_byteByByte(self) -> None:
        """
        A header delivered one byte at a time is read once complete: every
        earlier C{feed} returns C{(None, b"")}.
        """
        data = v1("TCP6", "2001:db8::7", "2001:db8::1", 51516, 443) + b"tail"
        parser = ProxyHeaderParser()
        results = [parser.feed(data[i:i + 1]) for i in range(len(data) - 4)]
        self.assertEqual(results[:-1], [(None, b"")] * (len(results) - 1))
        self.assertEqual(results[-1], (ProxyHeader("v1", CLIENT_V6, FRONT_V6), b""))

    def test_longest(self) -> None:
        """
        The longest valid line (107 bytes with CRLF) is accepted.
        """
        address = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        line = v1("TCP6", address, address, 65535, 65535)
        self.assertEqual(len(line), 104)
        header, _ = parseAll(b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n")
        self.assertEqual(header, ProxyHeader("v1", None, None))
        header, _ = parseAll(line)
        self.assertIsNotNone(header)

    def test_tooLong(self) -> None:
        """
        A line longer than 107 bytes is refused, both when 108 bytes arrive
        without a CRLF and when the overlong line arrives complete.
        """
        self.assertRaises(InvalidProxyHeader, parseAll, b"PROXY TCP4 " + b"1" * 97)
        self.assertEqual(parseAll(b"PROXY TCP4 " + b"1" * 96), (None, b""))
        self.assertRaises(InvalidProxyHeader, parseAll,
                          b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n")
        self.assertRaises(InvalidProxyHeader, parseAll,
                          v1("TCP4", "203.0.113.7", "198.51.100.1", "0" * 80 + "1", 443))

    def test_badSignature(self) -> None:
        """
        Data that starts like C{PROXY } but is not, or that does not start
        with a header at all (a TLS ClientHello, an HTTP request), is
        refused.
        """
        for data in (b"PROXX", b"PROXY\r\n", b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
                     b"\x16\x03\x01\x00\xa5", b"GET / HTTP/1.1\r\n", b"\x00"):
            self.assertRaises(InvalidProxyHeader, parseAll, data)

    def test_badPorts(self) -> None:
        """
        Ports that are not decimal numbers from 0 to 65535 are refused.
        """
        for sport in ("65536", "-1", "http", "+80", "8_0", "0x50", "", "99999999999"):
            for line in (v1("TCP4", "203.0.113.7", "198.51.100.1", sport, 443),
                         v1("TCP4", "203.0.113.7", "198.51.100.1", 443, sport)):
                self.assertEqual(outcome(lambda line=line: parseAll(line)), "invalid", line)

    def test_badAddresses(self) -> None:
        """
        Addresses that are not IP addresses are refused.
        """
        for address in ("example.com", "256.1.1.1", "1.2.3", ""):
            self.assertRaises(InvalidProxyHeader, parseAll,
                              v1("TCP4", address, "198.51.100.1", 1, 2))

    def test_familyMismatch(self) -> None:
        """
        A C{TCP4} line with an IPv6 address (source or destination), or a
        C{TCP6} line with an IPv4 address, is refused.
        """
        for line in (v1("TCP4", "2001:db8::7", "198.51.100.1", 1, 2),
                     v1("TCP4", "203.0.113.7", "2001:db8::1", 1, 2),
                     v1("TCP6", "203.0.113.7", "2001:db8::1", 1, 2),
                     v1("TCP6", "2001:db8::7", "198.51.100.1", 1, 2)):
            self.assertRaises(InvalidProxyHeader, parseAll, line)

    def test_malformed(self) -> None:
        """
        An unknown protocol, missing or extra fields, or doubled spaces are
        refused.
        """
        for line in (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
                     b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                     b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                     b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
                     b"PROXY \r\n"):
            self.assertRaises(InvalidProxyHeader, parseAll, line)

    def test_v1Only(self) -> None:
        """
        A parser for v1 only refuses a v2 header as soon as its first byte
        arrives.
        """
        parser = ProxyHeaderParser(versions=("v1",))
        self.assertRaises(InvalidProxyHeader, parser.feed, v2Proxy()[:1])
        self.assertEqual(ProxyHeaderParser(versions=("v1",)).feed(
            v1("TCP4", "203.0.113.7", "198.51.100.1", 51515, 443)),
            (ProxyHeader("v1", CLIENT_V4, FRONT_V4), b""))


class ParserV2Tests(SynchronousTestCase):
    """
    L{ProxyHeaderParser} reads PROXY protocol version 2 (binary) headers.
    """

    def test_proxyIPv4(self) -> None:
        """
        A v2 C{PROXY} header over TCP/IPv4 names the source and destination;
        the bytes after it are returned.
        """
        self.assertEqual(parseAll(v2Proxy() + b"\x16\x03\x01"),
                         (ProxyHeader("v2", CLIENT_V4, FRONT_V4), b"\x16\x03\x01"))

    def test_proxyIPv6(self) -> None:
        """
        A v2 C{PROXY} header over TCP/IPv6 names the source and destination.
        """
        self.assertEqual(parseAll(v2Proxy(CLIENT_V6, FRONT_V6)),
                         (ProxyHeader("v2", CLIENT_V6, FRONT_V6), b""))

    def test_local(self) -> None:
        """
        A v2 C{LOCAL} header (the balancer's own connection, e.g. a health
        check) parses with no addresses, whatever its address block holds.
        """
        self.assertEqual(parseAll(v2(0, 0x00) + b"after"),
                         (ProxyHeader("v2", None, None), b"after"))
        family, body = v2Addresses(CLIENT_V4, FRONT_V4)
        self.assertEqual(parseAll(v2(0, family, body)), (ProxyHeader("v2", None, None), b""))

    def test_unspecifiedFamily(self) -> None:
        """
        A v2 C{PROXY} header with the C{UNSPEC} family carries no addresses.
        """
        self.assertEqual(parseAll(v2(1, 0x00)), (ProxyHeader("v2", None, None), b""))

    def test_tlvs(self) -> None:
        """
        TLVs after the addresses (ALPN, authority, a CRC, a custom type)
        are skipped: the header is read up to its length field and the
        bytes after it are returned.
        """
        tlvs = (tlv(0x01, b"h2") + tlv(0x02, b"hl7.hospital.example")
                + tlv(0x03, b"\x00\x00\x00\x00") + tlv(0xE0, b"x" * 300))
        for source, destination in ((CLIENT_V4, FRONT_V4), (CLIENT_V6, FRONT_V6)):
            self.assertEqual(parseAll(v2Proxy(source, destination, tlvs) + b"\x16rest"),
                             (ProxyHeader("v2", source, destination), b"\x16rest"))

    def test_byteByByte(self) -> None:
        """
        A v2 header (with TLVs) delivered one byte at a time is read once
        complete; every earlier C{feed} returns C{(None, b"")}, and the
        bytes after it come with the last one.
        """
        data = v2Proxy(CLIENT_V6, FRONT_V6, tlv(0x01, b"h2"))
        parser = ProxyHeaderParser()
        results = [parser.feed(data[i:i + 1]) for i in range(len(data))]
        self.assertEqual(results[:-1], [(None, b"")] * (len(data) - 1))
        self.assertEqual(results[-1], (ProxyHeader("v2", CLIENT_V6, FRONT_V6), b""))
        self.assertEqual(parseChunks([data[:5], data[5:20], data[20:] + b"\x16", b"more"]),
                         (ProxyHeader("v2", CLIENT_V6, FRONT_V6), b"\x16more"))

    def test_incomplete(self) -> None:
        """
        Until the whole address block announced by the length field has
        arrived, C{feed} asks for more.
        """
        data = v2Proxy()
        for end in range(len(data)):
            self.assertEqual(parseAll(data[:end]), (None, b""), end)

    def test_badSignature(self) -> None:
        """
        A header starting with C{\\r} whose 12-byte signature is wrong is
        refused, as soon as the wrong byte is seen.
        """
        bad = bytearray(v2Proxy())
        bad[7] ^= 0xFF
        self.assertRaises(InvalidProxyHeader, parseAll, bytes(bad))
        self.assertRaises(InvalidProxyHeader, parseAll, bytes(bad[:8]))
        self.assertRaises(InvalidProxyHeader, parseAll, b"\r\n\r\nGET")

    def test_badVersion(self) -> None:
        """
        A version other than 2 in the high nibble is refused.
        """
        family, body = v2Addresses(CLIENT_V4, FRONT_V4)
        for version in (0, 1, 3, 15):
            self.assertRaises(InvalidProxyHeader, parseAll, v2(1, family, body, version))

    def test_unknownCommand(self) -> None:
        """
        A command other than C{LOCAL} (0) or C{PROXY} (1) is refused.
        """
        family, body = v2Addresses(CLIENT_V4, FRONT_V4)
        for command in (2, 7, 15):
            self.assertRaises(InvalidProxyHeader, parseAll, v2(command, family, body))

    def test_unknownFamily(self) -> None:
        """
        Address families other than TCP over IPv4 or IPv6 (UDP, UNIX
        sockets, unknown values) are refused.
        """
        body = b"\x00" * 216
        for family in (0x12, 0x22, 0x31, 0x32, 0x41, 0x10, 0x13, 0xFF):
            self.assertRaises(InvalidProxyHeader, parseAll, v2(1, family, body))

    def test_truncatedAddresses(self) -> None:
        """
        An address block shorter than the family needs is refused.
        """
        _, body4 = v2Addresses(CLIENT_V4, FRONT_V4)
        _, body6 = v2Addresses(CLIENT_V6, FRONT_V6)
        for family, body in ((0x11, body4[:11]), (0x11, b""), (0x21, body6[:35]),
                             (0x21, body4)):
            self.assertRaises(InvalidProxyHeader, parseAll, v2(1, family, body))

    def test_v2Only(self) -> None:
        """
        A parser for v2 only refuses a v1 header as soon as its first byte
        arrives, and a parser for v1 and v2 reads either.
        """
        parser = ProxyHeaderParser(versions=("v2",))
        self.assertRaises(InvalidProxyHeader, parser.feed, b"P")
        both = [v1("TCP4", "203.0.113.7", "198.51.100.1", 51515, 443), v2Proxy()]
        self.assertEqual([parseAll(h)[0] for h in both],
                         [ProxyHeader("v1", CLIENT_V4, FRONT_V4),
                          ProxyHeader("v2", CLIENT_V4, FRONT_V4)])


#: Bytes that look like the start of a header more often than random ones.
_headerish = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda tail: b"PROXY " + tail, st.binary(max_size=120)),
    st.builds(lambda tail: b"PROXY " + tail.encode("ascii") + b"\r\n",
              st.text(alphabet="TCPUNKOW46 .:0123456789abcdef-+_", max_size=110)),
    st.builds(lambda head, length, tail: V2_SIGNATURE + head + struct.pack("!H", length) + tail,
              st.binary(min_size=2, max_size=2), st.integers(0, 80), st.binary(max_size=100)),
)


class ParserPropertyTests(SynchronousTestCase):
    """
    Whatever bytes arrive, L{ProxyHeaderParser} either reads a header, asks
    for more, or raises L{InvalidProxyHeader}; and how the bytes are split
    across C{feed} calls does not change the outcome.
    """

    @given(data=_headerish, cuts=st.lists(st.integers(0, 400), max_size=8),
           versions=st.sampled_from([("v1",), ("v2",), ("v1", "v2")]))
    def test_parseAskOrRaise(self, data: bytes, cuts: List[int],
                             versions: Tuple[str, ...]) -> None:
        """
        Arbitrary bytes, fed whole or in arbitrary pieces, give a header and
        the bytes after it (a suffix of the input), C{(None, b"")}, or
        L{InvalidProxyHeader} -- nothing else, and the same either way.
        """
        whole = outcome(lambda: parseAll(data, versions))
        points = sorted({min(c, len(data)) for c in cuts})
        chunks = [data[a:b] for a, b in zip([0] + points, points + [len(data)], strict=True)]
        pieces = outcome(lambda: parseChunks(chunks, versions))
        self.assertEqual(whole, pieces)
        if whole != "invalid":
            header, rest = whole
            if header is None:
                self.assertEqual(rest, b"")
            else:
                self.assertIsInstance(header, ProxyHeader)
                self.assertIn(header.version, versions)
                self.assertTrue(data.endswith(rest))
                self.assertLess(len(rest), len(data))


# -- in memory ----------------------------------------------------------------


class ProxyProtocolInMemoryTests(InMemoryTestCase):
    """
    A server endpoint with C{proxyProtocol=} reads the PROXY header below
    TLS: the application and the audit log see the original client, and a
    connection without a valid header never gets to TLS.
    """

    def test_v2Accepted(self) -> None:
        """
        With C{proxyProtocol=v2}, a v2 header followed by a TLS handshake is
        accepted; the audit records name the header's source as C{peer},
        its destination as C{local}, and the real TCP peer (the balancer) as
        C{proxy}.
        """
        app = AddressRecordingFactory()
        factory = self.listen(app, proxyProtocol="v2")
        clientApp = RecordingFactory()
        tls, gate = self.tlsClient(clientApp)
        client, server, pump = connectThrough(factory, v2Proxy(), self.clock, tls)
        clientProtocol = self.successResultOf(gate.whenReady)
        clientProtocol.transport.write(b"MSH|ping")
        pump.flush()
        self.assertEqual(b"".join(clientApp.built[0].received), b"MSH|ping")

        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual((accepted["peer"], accepted["proxy"], accepted["local"]),
                         ("203.0.113.7:51515", BALANCER, "198.51.100.1:443"))
        self.assertIsNotNone(accepted["version"])
        self.assertTrue(accepted["compliance"]["compliant"])
        self.assertNotIn("plaintext", accepted)

        clientProtocol.transport.loseConnection()
        pump.flush()
        [closed] = self.recordsOf("server", "connection.closed")
        self.assertEqual((closed["peer"], closed["proxy"]), ("203.0.113.7:51515", BALANCER))
        self.assertEqual(closed["bytesIn"], len(b"MSH|ping"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_applicationSeesOriginalClient(self) -> None:
        """
        The application protocol's C{transport.getPeer()} (and the address
        its factory's C{buildProtocol} gets) is the original client, and
        C{transport.getHost()} the address it connected to on the balancer.
        """
        app = AddressRecordingFactory()
        factory = self.listen(app, proxyProtocol="v2")
        tls, gate = self.tlsClient(RecordingFactory())
        connectThrough(factory, v2Proxy(CLIENT_V6, FRONT_V6), self.clock, tls)
        self.successResultOf(gate.whenReady)
        [(addr, protocol)] = app.built
        self.assertEqual((protocol.peer, protocol.host), (CLIENT_V6, FRONT_V6))
        self.assertEqual(addr, CLIENT_V6)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual(accepted["peer"], "[2001:db8::7]:51516")
        self.assertEqual(accepted["local"], "[2001:db8::1]:443")

    def test_headerSplitAcrossWrites(self) -> None:
        """
        A header that arrives in pieces, with the first TLS bytes in the
        same write as its last piece, is read before TLS starts.
        """
        app = AddressRecordingFactory()
        factory = self.listen(app, proxyProtocol="v2")
        tls, gate = self.tlsClient(RecordingFactory())
        header = v2Proxy(tlvs=tlv(0x02, b"hl7.hospital.example"))
        client, server, pump = connectThrough(factory, b"", self.clock, greet=False)
        for i in range(0, len(header) - 3, 3):
            client.transport.write(header[i:i + 3])
            pump.pump()
        self.assertEqual(self.records, [])
        # the rest of the header and the ClientHello arrive together
        client.transport.write(header[i + 3:])
        client.inner = tls.buildProtocol(None)
        client.inner.makeConnection(client.transport)
        pump.flush()
        self.successResultOf(gate.whenReady)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual((accepted["peer"], accepted["proxy"]), ("203.0.113.7:51515", BALANCER))

    def test_noHeaderRefused(self) -> None:
        """
        A TLS client that connects without a PROXY header is refused before
        TLS: C{handshake.rejected} with reason C{proxy_header_invalid},
        audited with the balancer's (the TCP peer's) address as C{peer}
        and C{proxy}; the application never sees it.
        """
        app = AddressRecordingFactory()
        factory = self.listen(app, proxyProtocol="v2")
        tls, gate = self.tlsClient(RecordingFactory())
        client, server, pump = connectThrough(factory, b"", self.clock, tls)
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual(rejected["reason"], "proxy_header_invalid")
        self.assertEqual((rejected["peer"], rejected["proxy"], rejected["local"]),
                         (BALANCER, BALANCER, "127.0.0.1:6661"))
        self.assertIsNone(rejected["version"])
        self.assertIsNone(rejected["compliance"])
        self.assertTrue(rejected["detail"])
        self.assertEqual(app.built, [])
        self.assertIsNotNone(client.lost)
        self.failureResultOf(gate.whenReady)
        self.assertEqual(self.recordsOf("server", "connection.accepted"), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wrongVersionRefused(self) -> None:
        """
        With C{proxyProtocol=v1}, a v2 header is refused as
        C{proxy_header_invalid}; with C{v2}, a v1 header is.  With C{any},
        both are accepted.
        """
        line = v1("TCP4", "203.0.113.7", "198.51.100.1", 51515, 443)
        for setting, header, accepted in (("v1", v2Proxy(), False), ("v2", line, False),
                                          ("v1", line, True), ("any", line, True),
                                          ("any", v2Proxy(), True)):
            del self.events[:]
            app = AddressRecordingFactory()
            tls, gate = self.tlsClient(RecordingFactory())
            connectThrough(self.listen(app, proxyProtocol=setting), header, self.clock, tls)
            if accepted:
                self.successResultOf(gate.whenReady)
                [record] = self.recordsOf("server", "connection.accepted")
                self.assertEqual(record["peer"], "203.0.113.7:51515")
            else:
                self.failureResultOf(gate.whenReady)
                [record] = self.recordsOf("server", "handshake.rejected")
                self.assertEqual(record["reason"], "proxy_header_invalid", setting)
                self.assertEqual(app.built, [])

    def test_garbageHeaderRefused(self) -> None:
        """
        A malformed header (here a v2 header of an unknown command) is
        refused as C{proxy_header_invalid} and the connection is closed.
        """
        family, body = v2Addresses(CLIENT_V4, FRONT_V4)
        factory = self.listen(AddressRecordingFactory(), proxyProtocol="v2")
        client, server, pump = connectThrough(factory, v2(5, family, body), self.clock)
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual((rejected["reason"], rejected["peer"]),
                         ("proxy_header_invalid", BALANCER))
        self.assertIsNotNone(client.lost)

    def test_auditedThroughSink(self) -> None:
        """
        The PROXY layer builds its own rejection records and emits them
        through the L{IAuditSink} of its L{PreTLSAudit}, naming the balancer
        as C{peer} and C{proxy} and the policy in force.
        """
        self.clock.advance(1793527200)
        family, body = v2Addresses(CLIENT_V4, FRONT_V4)
        audit = PreTLSAudit(self.emitter, lambda: buildPolicy(name="behind-haproxy"),
                            self.clock)
        factory = ProxyHeaderFactory(Factory.forProtocol(Protocol), ("v2",), self.clock, 5,
                                     audit)
        client, server, pump = connectThrough(factory, v2(5, family, body), self.clock)
        [rejected] = self.records
        self.assertEqual(
            {k: rejected[k] for k in ("event", "reason", "peer", "proxy", "local", "policy",
                                      "role", "compliance", "time")},
            {"event": "handshake.rejected", "reason": "proxy_header_invalid",
             "peer": BALANCER, "proxy": BALANCER, "local": "127.0.0.1:6661",
             "policy": "behind-haproxy", "role": "server", "compliance": None,
             "time": "2026-11-01T10:00:00.000000Z"})
        self.assertRegex(rejected["connection"], "^[0-9a-f]{16}$")
        self.assertIsNotNone(client.lost)

    def test_silentDroppedAtHandshakeTimeout(self) -> None:
        """
        A connection that sends nothing, or only part of a header, is
        dropped when C{handshakeTimeout} expires and audited as
        C{handshake_timeout} with the balancer's address.
        """
        for header in (b"", v2Proxy()[:20]):
            del self.events[:]
            factory = self.listen(AddressRecordingFactory(), proxyProtocol="v2",
                                  handshakeTimeout=5)
            client, server, pump = connectThrough(factory, header, self.clock)
            self.clock.advance(4.9)
            pump.flush()
            self.assertEqual(self.records, [])
            self.assertIsNone(client.lost)
            self.clock.advance(0.1)
            pump.flush()
            [rejected] = self.records
            self.assertEqual((rejected["event"], rejected["reason"], rejected["peer"],
                              rejected["proxy"]),
                             ("handshake.rejected", "handshake_timeout", BALANCER, BALANCER))
            self.assertIsNotNone(client.lost)
            self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closedBeforeHeader(self) -> None:
        """
        A connection closed before its header is complete is audited as
        C{peer_closed}, once.
        """
        factory = self.listen(AddressRecordingFactory(), proxyProtocol="v2")
        client, server, pump = connectThrough(factory, v2Proxy()[:10], self.clock)
        client.transport.loseConnection()
        pump.flush()
        [rejected] = self.records
        self.assertEqual((rejected["reason"], rejected["peer"]), ("peer_closed", BALANCER))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_localCommand(self) -> None:
        """
        After a v2 C{LOCAL} header (the balancer's own connection), the
        connection proceeds with the real TCP peer as its C{peer}.
        """
        app = AddressRecordingFactory()
        tls, gate = self.tlsClient(RecordingFactory())
        connectThrough(self.listen(app, proxyProtocol="v2"), v2(0, 0x00), self.clock, tls)
        self.successResultOf(gate.whenReady)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual(accepted["peer"], BALANCER)
        self.assertEqual(app.built[0][1].peer, CLIENT_ADDRESS)

    def test_rejectionAfterHeaderNamesClient(self) -> None:
        """
        A TLS rejection after a valid header (here: no client certificate
        for an C{mtls:} server) is audited with the header's source as
        C{peer} and the balancer as C{proxy}.
        """
        app = AddressRecordingFactory()
        tls, gate = self.tlsClient(RecordingFactory(), cert=None)
        connectThrough(self.listen(app, proxyProtocol="v2"), v2Proxy(), self.clock, tls)
        [rejected] = self.recordsOf("server", "handshake.rejected")
        self.assertEqual((rejected["reason"], rejected["peer"], rejected["proxy"]),
                         ("no_client_certificate", "203.0.113.7:51515", BALANCER))
        self.assertEqual(app.built, [])
        # the client (TLS 1.3) is told too, before its connect() fires
        told = self.failureResultOf(gate.whenReady, HandshakeRejected)
        self.assertEqual(told.value.reason, "no_client_certificate")

    def test_withoutProxyProtocol(self) -> None:
        """
        Without C{proxyProtocol=}, records have C{proxy} null and the TCP
        peer as C{peer}.
        """
        tls, gate = self.tlsClient(RecordingFactory())
        connectThrough(self.listen(AddressRecordingFactory()), b"", self.clock, tls)
        self.successResultOf(gate.whenReady)
        [accepted] = self.recordsOf("server", "connection.accepted")
        self.assertEqual((accepted["peer"], accepted["proxy"]), (BALANCER, None))

    def test_unknownSettingRefused(self) -> None:
        """
        A C{proxyProtocol} other than C{v1}, C{v2} or C{any} is refused when
        the endpoint is built.
        """
        from securetcp.errors import PolicyError

        error = self.assertRaises(PolicyError, self.listen, Factory(), proxyProtocol="v3")
        self.assertEqual(error.field, "proxyProtocol")


# -- a real HAProxy -----------------------------------------------------------



class RealHAProxyTests(TestCase):
    """
    HAProxy in TCP mode with C{send-proxy-v2}, in front of an in-process
    C{mtls:} server with C{proxyProtocol=v2}, driven by C{openssl s_client}.
    """

    timeout = 30

    def setUp(self) -> None:
        if HAPROXY is None:
            raise SkipTest("haproxy is not installed (apt-get install haproxy)")
        if OPENSSL is None:
            raise SkipTest("the openssl binary is not installed")
        from ._net import freePort as _freePort

        self.freePort = _freePort
        self.pki = sharedPKI()
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(
            Logger(namespace=AUDIT_NAMESPACE, observer=self.events.append))

    def records(self, event: str) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events
                if e["securetcp_audit"]["event"] == event]

    @inlineCallbacks
    def listenMTLS(self) -> Any:
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        from securetcp import serverEndpoint

        policy = buildPolicy(certKey=self.pki.path("server.pem"),
                             privateKey=self.pki.path("server.key"),
                             caCerts=self.pki.path("ca.pem"))
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
                                  policy, mutual=True, emitter=self.emitter, proxyProtocol="v2")
        self.app = AddressRecordingFactory()
        port = yield endpoint.listen(self.app)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @inlineCallbacks
    def startHAProxy(self, backendPort: int) -> Any:
        """
        Run C{haproxy -db} on a free port in front of C{backendPort},
        connecting from 127.0.0.2 so its address is told apart from the
        client's; wait until it listens.

        @return: its port.
        """
        from ._peers import PeerProcess
        from ._peers import waitUntil as _waitUntil

        for _attempt in range(3):
            port = self.freePort()
            config = os.path.join(self.workdir, f"haproxy-{port}.cfg")
            with open(config, "w") as f:
                f.write(HAPROXY_CONFIG.format(port=port, backend=backendPort))
            process = PeerProcess.spawn([HAPROXY, "-db", "-f", config], timeout=self.timeout,
                                        path=self.workdir)
            self.addCleanup(process.stop)
            try:
                yield _waitUntil(lambda port=port, process=process: (
                    listeningOn(port) or not process.running), 10, "haproxy to listen")
            except AssertionError:
                raise AssertionError(f"haproxy did not listen\n{process.describe()}") from None
            if process.running:
                self.haproxy = process
                return port
        raise AssertionError(f"haproxy did not start\n{process.describe()}")

    def sClient(self, port: int, line: bytes, bind: Optional[int] = None) -> Any:
        from ._peers import PeerProcess

        argv = [OPENSSL, "s_client", "-quiet", "-no_ign_eof", "-connect", f"127.0.0.1:{port}",
                "-servername", "localhost", "-CAfile", self.pki.path("ca.pem"),
                "-verify_return_error", "-cert", self.pki.path("client.pem"),
                "-key", self.pki.path("client.key")]
        if bind is not None:
            argv += ["-bind", f"127.0.0.1:{bind}"]
        return PeerProcess.spawn(argv, stdin=line + b"\n", expect=line, timeout=15)

    @inlineCallbacks
    def test_throughHAProxy(self) -> Any:
        """
        C{openssl s_client} exchanges data with the C{mtls:} server through
        HAProxy; the audit records name s_client's address as C{peer},
        HAProxy's frontend as C{local} and HAProxy's own address as
        C{proxy}, and the application sees s_client's address.
        """
        from ._peers import waitUntil as _waitUntil

        ourPort = yield self.listenMTLS()
        haproxyPort = yield self.startHAProxy(ourPort)
        bind = self.freePort()
        line = b"MSH|through haproxy"
        peer = self.sClient(haproxyPort, line, bind)
        yield peer.ended
        self.assertIn(line, peer.out, peer.describe())
        yield _waitUntil(lambda: bool(self.records("connection.closed")), 10,
                         "connection.closed")
        [accepted] = self.records("connection.accepted")
        self.assertEqual(accepted["peer"], f"127.0.0.1:{bind}")
        self.assertEqual(accepted["local"], f"127.0.0.1:{haproxyPort}")
        self.assertTrue(accepted["proxy"].startswith("127.0.0.2:"), accepted["proxy"])
        self.assertIn("PUMP-0042", accepted["peerIdentity"]["subject"])
        [(addr, protocol)] = self.app.built
        self.assertEqual((protocol.peer.host, protocol.peer.port), ("127.0.0.1", bind))
        self.assertEqual(protocol.received, line + b"\n")
        self.assertEqual(self.records("handshake.rejected"), [])

    @inlineCallbacks
    def test_bypassRefused(self) -> Any:
        """
        A client that connects to the C{proxyProtocol=v2} server directly,
        bypassing HAProxy, is refused as C{proxy_header_invalid} and never
        reaches the application, while a client through HAProxy still
        works.
        """
        from ._peers import waitUntil as _waitUntil

        ourPort = yield self.listenMTLS()
        haproxyPort = yield self.startHAProxy(ourPort)
        bind = self.freePort()
        direct = self.sClient(ourPort, b"MSH|direct", bind)
        yield direct.ended
        self.assertNotEqual(direct.exitCode, 0, direct.describe())
        self.assertNotIn(b"MSH|direct", direct.out)
        yield _waitUntil(lambda: bool(self.records("handshake.rejected")), 10,
                         "handshake.rejected")
        [rejected] = self.records("handshake.rejected")
        self.assertEqual((rejected["reason"], rejected["peer"], rejected["proxy"]),
                         ("proxy_header_invalid", f"127.0.0.1:{bind}", f"127.0.0.1:{bind}"))
        self.assertEqual(self.app.built, [])

        through = self.sClient(haproxyPort, b"MSH|through")
        yield through.ended
        self.assertIn(b"MSH|through", through.out, through.describe())
        self.assertEqual(len(self.app.built), 1)


HAPROXY_CONFIG = """\
global
    maxconn 64

defaults
    mode tcp
    timeout connect 5s
    timeout client 15s
    timeout server 15s

frontend front
    bind 127.0.0.1:{port}
    default_backend securetcp

backend securetcp
    server s 127.0.0.1:{backend} send-proxy-v2 source 127.0.0.2
"""
