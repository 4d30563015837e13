"""
Tests for L{securetcp._below.proxywriter} (the PROXY v2 header securetcp
sends its backend) and L{securetcp._twistd.backendproxy} (what it says about
a connection), checked byte by byte, and read back by securetcp's own
reader and by the C{proxy-protocol} package from PyPI.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from typing import Any, List, Optional

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.python import usage
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._below.proxyprotocol import V2_SIGNATURE, ProxyHeaderParser
from securetcp._below.proxywriter import (
    PP2_CLIENT_CERT_CONN,
    PP2_CLIENT_CERT_SESS,
    PP2_CLIENT_SSL,
    PP2_TYPE_CRC32C,
    PP2_TYPE_SECURETCP_FINGERPRINT,
    PP2_TYPE_SECURETCP_URI,
    PP2_TYPE_SSL,
    PP2_TYPE_UNIQUE_ID,
    SSLFacts,
    crc32c,
    encodeV2,
    sslTLV,
    tlv,
)
from securetcp._gateprotocol import GateProtocol
from securetcp._twistd.backendproxy import (
    backendProxyHeader,
    certificateAlgorithms,
    checkBackendProxy,
    connectionTLVs,
)
from securetcp._twistd.options import SecureTCPOptions as Options
from securetcp._twistd.splice import SpliceFactory
from securetcp.audit.emitter import AuditEmitter
from securetcp.identity import identityFromCertificate

from ._pki import sharedPKI

try:
    from proxyprotocol.v2 import ProxyProtocolV2
except ImportError:  # pragma: no cover
    ProxyProtocolV2 = None

CLIENT = IPv4Address("TCP", "192.0.2.7", 50123)
FRONT = IPv4Address("TCP", "198.51.100.1", 6661)


def _checksumHolds(header: bytes) -> bool:
    """
    The header's C{PP2_TYPE_CRC32C} value is the CRC32c of the header with
    that value zeroed (the specification's rule), read without the writer.
    """
    length = struct.unpack("!H", header[14:16])[0]
    family = header[13]
    offset = 16 + {0x11: 12, 0x21: 36}.get(family, 0)
    while offset < 16 + length:
        kind, size = struct.unpack("!BH", header[offset:offset + 3])
        if kind == PP2_TYPE_CRC32C:
            value = header[offset + 3:offset + 7]
            zeroed = header[:offset + 3] + b"\0\0\0\0" + header[offset + 7:]
            return struct.unpack("!L", value)[0] == crc32c(zeroed)
        offset += 3 + size
    return False


class EncoderTests(SynchronousTestCase):
    """
    L{encodeV2}, L{sslTLV} and L{crc32c} write what the PROXY protocol
    specification says.
    """

    def test_ipv4Layout(self) -> None:
        """
        An IPv4 connection gives the signature, version 2 and command PROXY
        (0x21), TCP over IPv4 (0x11), the length of the rest, then source
        and destination addresses and ports, then the TLVs.
        """
        header = encodeV2(CLIENT, FRONT, [(PP2_TYPE_UNIQUE_ID, b"abc")], checksum=False)
        self.assertEqual(header,
                         V2_SIGNATURE + b"\x21\x11\x00\x12"
                         + bytes([192, 0, 2, 7, 198, 51, 100, 1])
                         + struct.pack("!HH", 50123, 6661)
                         + b"\x05\x00\x03abc")

    def test_ipv6AndMapped(self) -> None:
        """
        An IPv6 end makes the header TCP over IPv6 (0x21); an IPv4 end of
        the same connection is sent as an IPv4-mapped IPv6 address.
        """
        source = IPv6Address("TCP", "2001:db8::7", 1000)
        header = encodeV2(source, FRONT, checksum=False)
        self.assertEqual(header[12:16], b"\x21\x21\x00\x24")
        self.assertEqual(header[16:32], ipaddress.IPv6Address("2001:db8::7").packed)
        self.assertEqual(header[32:48], ipaddress.IPv6Address("::ffff:198.51.100.1").packed)
        self.assertEqual(header[48:52], struct.pack("!HH", 1000, 6661))

    def test_unixIsUnspecified(self) -> None:
        """
        A connection without IP addresses (a UNIX socket) is sent as
        C{AF_UNSPEC}: no address block, the TLVs right after the header.
        """
        header = encodeV2(UNIXAddress(b"/run/s"), None, [(PP2_TYPE_UNIQUE_ID, b"x")],
                          checksum=False)
        self.assertEqual(header[12:], b"\x21\x00\x00\x04\x05\x00\x01x")

    def test_crc32cKnownValues(self) -> None:
        """
        L{crc32c} is CRC-32C (Castagnoli): the check value of C{"123456789"}
        is 0xE3069283, and of 32 zero bytes 0x8A9136AA (RFC 3720, B.4).
        """
        self.assertEqual(crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(crc32c(b"\0" * 32), 0x8A9136AA)
        self.assertEqual(crc32c(b"56789", crc32c(b"1234")), 0xE3069283)

    def test_checksumCoversTheHeader(self) -> None:
        """
        The C{PP2_TYPE_CRC32C} TLV holds the CRC32c of the whole header
        with its own value zeroed, and TLVs are sent in the order of their
        types (the checksum's among them).
        """
        header = encodeV2(CLIENT, FRONT, [(0xE0, b"f"), (PP2_TYPE_UNIQUE_ID, b"id"),
                                          (0x01, b"h2")])
        self.assertTrue(_checksumHolds(header))
        kinds = []
        offset = 28
        while offset < len(header):
            kind, size = struct.unpack("!BH", header[offset:offset + 3])
            kinds.append(kind)
            offset += 3 + size
        self.assertEqual(kinds, [0x01, PP2_TYPE_CRC32C, PP2_TYPE_UNIQUE_ID, 0xE0])
        damaged = bytearray(header)
        damaged[20] ^= 1
        self.assertFalse(_checksumHolds(bytes(damaged)))

    def test_sslClientBits(self) -> None:
        """
        C{PP2_TYPE_SSL} says SSL, and, for a verified certificate, that one
        was presented in the session and (unless resumed) on this
        connection, with verify 0; without a certificate, verify is 1.
        """
        full = sslTLV(SSLFacts(version="TLSv1.3", certificate=True, verified=True))
        self.assertEqual(full[0], PP2_TYPE_SSL)
        self.assertEqual(full[1][:5], struct.pack(
            "!BL", PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0))
        self.assertEqual(full[1][5:], b"\x21\x00\x07TLSv1.3")
        resumed = sslTLV(SSLFacts(certificate=True, verified=True, resumed=True))
        self.assertEqual(resumed[1], struct.pack("!BL", PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, 0))
        anonymous = sslTLV(SSLFacts(version="TLSv1.2", cipher="ECDHE-ECDSA-AES128-GCM-SHA256"))
        self.assertEqual(anonymous[1][:5], struct.pack("!BL", PP2_CLIENT_SSL, 1))
        self.assertIn(b"\x23\x00\x1dECDHE-ECDSA-AES128-GCM-SHA256", anonymous[1])

    def test_tooLong(self) -> None:
        """
        A TLV longer than 65535 bytes, a TLV type that is not a byte, or a
        header whose length does not fit 16 bits is refused.
        """
        self.assertRaises(ValueError, tlv, 0xE0, b"x" * 65536)
        self.assertRaises(ValueError, tlv, 256, b"")
        self.assertRaises(ValueError, encodeV2, CLIENT, FRONT,
                          [(0xE0, b"x" * 40000), (0xE1, b"x" * 40000)])

    def test_ownReaderReadsIt(self) -> None:
        """
        securetcp's own PROXY reader (the front side's) reads the header
        back: the same addresses, and what follows untouched.
        """
        header = encodeV2(CLIENT, FRONT, [sslTLV(SSLFacts(version="TLSv1.3"))])
        parsed, rest = ProxyHeaderParser(("v2",)).feed(header + b"MSH|")
        assert parsed is not None
        self.assertEqual((parsed.source, parsed.destination), (CLIENT, FRONT))
        self.assertEqual(rest, b"MSH|")


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=40)
_ascii = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                 max_size=40)
_v4 = st.ip_addresses(v=4).map(str)
_v6 = st.ip_addresses(v=6).map(str)
_port = st.integers(0, 65535)


class IndependentParserTests(SynchronousTestCase):
    """
    The C{proxy-protocol} package from PyPI (a parser nobody here wrote)
    reads every header securetcp writes, TLVs and checksum included.
    """

    def setUp(self) -> None:
        if ProxyProtocolV2 is None:
            raise SkipTest("the proxy-protocol package is not installed")

    @given(v6=st.booleans(), source=st.tuples(_v4, _v6, _port),
           destination=st.tuples(_v4, _v6, _port), version=_ascii, cipher=_ascii,
           commonName=st.none() | _text, signature=_ascii, key=_ascii,
           certificate=st.booleans(), resumed=st.booleans(),
           uniqueId=st.binary(min_size=1, max_size=128), fingerprint=st.binary(min_size=32, max_size=32),
           uri=st.none() | _text)
    def test_roundTrip(self, v6: bool, source: Any, destination: Any, version: str,
                       cipher: str, commonName: Optional[str], signature: str, key: str,
                       certificate: bool, resumed: bool, uniqueId: bytes, fingerprint: bytes,
                       uri: Optional[str]) -> None:
        """
        Addresses, C{PP2_TYPE_SSL} (bits, verify result, every sub-TLV),
        C{PP2_TYPE_UNIQUE_ID} and securetcp's C{0xE0}/C{0xE1} come back as
        written, and the parser's CRC32c check passes.
        """
        kind = IPv6Address if v6 else IPv4Address
        src = kind("TCP", source[1] if v6 else source[0], source[2])
        dst = kind("TCP", destination[1] if v6 else destination[0], destination[2])
        facts = SSLFacts(version=version, cipher=cipher, commonName=commonName,
                         signatureAlgorithm=signature, keyAlgorithm=key,
                         certificate=certificate, verified=certificate, resumed=resumed)
        tlvs = [sslTLV(facts), (PP2_TYPE_UNIQUE_ID, uniqueId),
                (PP2_TYPE_SECURETCP_FINGERPRINT, fingerprint)]
        if uri is not None:
            tlvs.append((PP2_TYPE_SECURETCP_URI, uri.encode("utf-8")))
        result: Any = ProxyProtocolV2().unpack(encodeV2(src, dst, tlvs))
        self.assertEqual((str(result.source[0]), result.source[1]),
                         (str(ipaddress.ip_address(src.host)), src.port))
        self.assertEqual((str(result.dest[0]), result.dest[1]),
                         (str(ipaddress.ip_address(dst.host)), dst.port))
        ssl = result.tlv.ssl
        self.assertTrue(ssl.has_ssl)
        self.assertEqual((ssl.has_cert_sess, ssl.has_cert_conn, ssl.verified),
                         (certificate, certificate and not resumed, certificate))
        self.assertEqual((ssl.version, ssl.cipher, ssl.sig_alg, ssl.key_alg, ssl.cn),
                         (version, cipher, signature, key, commonName))
        self.assertEqual(result.tlv.unique_id, uniqueId)
        self.assertEqual(result.tlv[PP2_TYPE_SECURETCP_FINGERPRINT], fingerprint)
        self.assertEqual(result.tlv.get(PP2_TYPE_SECURETCP_URI),
                         uri.encode("utf-8") if uri is not None else None)
        self.assertIsNotNone(result.tlv.crc32c)


class _Materials:
    def __init__(self, leaf: Any) -> None:
        self.leaf = leaf


class _InForce:
    def __init__(self, leaf: Any) -> None:
        self.materials = _Materials(leaf)


class _Factory:
    """
    What L{connectionTLVs} reads of a gate's factory: the materials in force.
    """

    def __init__(self, leaf: Any) -> None:
        self.inForce = _InForce(leaf)


def _admitted(session: Any, identity: Any, leaf: Any) -> GateProtocol:
    """
    A L{GateProtocol} that admitted a connection with C{session} and the
    peer C{identity}, serving the certificate C{leaf}.
    """
    gate = GateProtocol(_Factory(leaf), None)  # type: ignore[arg-type]
    gate.connectionId = "0123456789abcdef"
    gate.session = session
    gate.identity = identity
    return gate


class _FakeTransport:
    def __init__(self, gate: Any) -> None:
        self.wrappedProtocol = gate

    def getPeer(self) -> Any:
        return CLIENT

    def getHost(self) -> Any:
        return FRONT


class ConnectionTests(SynchronousTestCase):
    """
    L{connectionTLVs} and L{backendProxyHeader} say what the gate verified.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        with open(self.pki.path("client.pem"), "rb") as f:
            self.client = x509.load_pem_x509_certificate(f.read())
        with open(self.pki.path("server.pem"), "rb") as f:
            self.server = x509.load_pem_x509_certificate(f.read())

    def test_verifiedClient(self) -> None:
        """
        For an mTLS client: the audit connection id, the SNI, the ALPN
        protocol, C{PP2_TYPE_SSL} with the client's CN and the server
        certificate's algorithms, and the client certificate's SHA-256
        fingerprint and SPIFFE URI; the header goes from the client to
        securetcp's address.
        """
        session = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
                   "sni": "localhost", "alpn": "h2", "resumed": False}
        transport = _FakeTransport(_admitted(session, identityFromCertificate(self.client),
                                             self.server))
        tlvs = dict(connectionTLVs(transport))
        self.assertEqual(tlvs[PP2_TYPE_UNIQUE_ID], b"0123456789abcdef")
        self.assertEqual(tlvs[0x01], b"h2")
        self.assertEqual(tlvs[0x02], b"localhost")
        self.assertEqual(tlvs[PP2_TYPE_SECURETCP_FINGERPRINT],
                         hashlib.sha256(self.client.public_bytes(Encoding.DER)).digest())
        self.assertEqual(tlvs[PP2_TYPE_SECURETCP_URI],
                         b"spiffe://hospital.example/ward3/pump-0042")
        self.assertEqual(tlvs[PP2_TYPE_SSL], sslTLV(SSLFacts(
            version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", commonName="PUMP-0042",
            signatureAlgorithm="ecdsa-with-SHA256", keyAlgorithm="EC256",
            certificate=True, verified=True))[1])
        header = backendProxyHeader(transport)
        parsed, _ = ProxyHeaderParser(("v2",)).feed(header)
        assert parsed is not None
        self.assertEqual((parsed.source, parsed.destination), (CLIENT, FRONT))

    def test_noClientCertificate(self) -> None:
        """
        A TLS client without a certificate (C{securessl:}) gets
        C{PP2_TYPE_SSL} with verify 1 and no fingerprint or URI.
        """
        session = {"version": "TLSv1.2", "cipher": "ECDHE-ECDSA-AES128-GCM-SHA256"}
        tlvs = dict(connectionTLVs(_FakeTransport(_admitted(session, None, self.server))))
        self.assertEqual(tlvs[PP2_TYPE_SSL][:5], struct.pack("!BL", PP2_CLIENT_SSL, 1))
        self.assertNotIn(PP2_TYPE_SECURETCP_FINGERPRINT, tlvs)
        self.assertNotIn(PP2_TYPE_SECURETCP_URI, tlvs)

    def test_plaintext(self) -> None:
        """
        A plaintext connection of permissive mode gets its audit id and no
        C{PP2_TYPE_SSL}.
        """
        transport = _FakeTransport(None)
        transport.connectionId = "feedfacefeedface"  # type: ignore[attr-defined]
        self.assertEqual(connectionTLVs(transport), [(PP2_TYPE_UNIQUE_ID, b"feedfacefeedface")])

    def test_algorithms(self) -> None:
        """
        L{certificateAlgorithms} names the algorithms as OpenSSL (and
        HAProxy) do: C{ecdsa-with-SHA256} and C{EC256} for a P-256 key
        signed with SHA-256.
        """
        self.assertEqual(certificateAlgorithms(self.server), ("ecdsa-with-SHA256", "EC256"))


class OptionTests(SynchronousTestCase):
    """
    C{--backend-proxy} takes C{v2} only.
    """

    def test_v2(self) -> None:
        """
        C{--backend-proxy v2} is accepted; without it nothing is sent.
        """
        options = Options()
        options.parseOptions(["terminate", "--listen", "mtls:6661", "--backend",
                              "tcp:127.0.0.1:2575", "--backend-proxy", "v2"])
        self.assertEqual(options.subOptions["backend-proxy"], "v2")
        self.assertIsNone(checkBackendProxy(None))

    def test_otherVersions(self) -> None:
        """
        Any other value is refused at parse time, naming the option and
        the fix.
        """
        options = Options()
        error = self.assertRaises(usage.UsageError, options.parseOptions, [
            "terminate", "--listen", "mtls:6661", "--backend", "tcp:127.0.0.1:2575",
            "--backend-proxy", "v1"])
        self.assertIn("--backend-proxy", str(error))
        self.assertIn("use v2", str(error))


class ConfigFileTests(SynchronousTestCase):
    """
    A C{--config} file's terminate listener takes C{backend-proxy}.
    """

    def load(self, extra: str) -> Any:
        from securetcp._twistd.config import loadServiceConfig

        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[[listener]]\nname = "hl7"\nmode = "terminate"\nlisten = "mtls:6661"\n'
                    'backend = "tcp:127.0.0.1:2575"\n' + extra)
        return loadServiceConfig(path)

    def test_v2(self) -> None:
        """
        C{backend-proxy = "v2"} reaches the listener's configuration; it is
        off by default.
        """
        self.assertEqual(self.load('backend-proxy = "v2"\n').listeners[0].backendProxy, "v2")
        self.assertIsNone(self.load("").listeners[0].backendProxy)

    def test_other(self) -> None:
        """
        Another value, or the key on a listener that is not a terminate
        one, is refused naming the listener, the key and the fix.
        """
        from securetcp.errors import ServiceConfigError

        error = self.assertRaises(ServiceConfigError, self.load, 'backend-proxy = "v1"\n')
        self.assertIn("backend-proxy", str(error))
        self.assertIn('write "v2"', str(error))


class SpliceHeaderTests(SynchronousTestCase):
    """
    L{SpliceFactory}'s C{header} goes to the far side before any byte.
    """

    def setUp(self) -> None:
        self.far: Deferred[Any] = Deferred()
        self.connects: List[Any] = []

        def connectFar(factory: Any) -> Deferred[Any]:
            self.connects.append(factory)
            return self.far

        self.connectFar = connectFar

    def test_headerFirst(self) -> None:
        """
        What the peer sent while the far side was being connected follows
        the header, which is built from the accepted transport.
        """
        seen: List[Any] = []

        def header(transport: Any) -> bytes:
            seen.append(transport)
            return b"HEADER|"

        factory = SpliceFactory(self.connectFar, "tcp:127.0.0.1:2575", Clock(),
                                AuditEmitter(Logger(observer=lambda e: None)), header=header)
        front = factory.buildProtocol(None)
        accepted = StringTransport()
        front.makeConnection(accepted)
        front.dataReceived(b"MSH|1")
        far = self.connects[0].buildProtocol(None)  # the far side's protocol
        farTransport = StringTransport()
        far.makeConnection(farTransport)
        self.far.callback(far)
        self.assertEqual(seen, [accepted])
        self.assertEqual(farTransport.value(), b"HEADER|MSH|1")

    def test_headerCannotBeBuilt(self) -> None:
        """
        A header that cannot be built (L{ValueError}) closes the accepted
        connection; the far side is never connected.
        """
        def header(transport: Any) -> bytes:
            raise ValueError("too long")

        factory = SpliceFactory(self.connectFar, "tcp:127.0.0.1:2575", Clock(),
                                AuditEmitter(Logger(observer=lambda e: None)), header=header)
        front = factory.buildProtocol(None)
        accepted = StringTransport()
        front.makeConnection(accepted)
        self.assertTrue(accepted.disconnecting)
        self.assertEqual(self.connects, [])
