"""
End to end: C{twistd securetcp terminate --backend-proxy v2} in front of a
real HAProxy (C{accept-proxy}, which checks the header's CRC32c) and of a
backend that reads the header with the C{proxy-protocol} package from PyPI,
with real TLS clients (C{curl}, C{openssl s_client}) presenting a client
certificate; and behind HAProxy as a TCP balancer (C{send-proxy-v2}), where
the header names the original client.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ._net import freePort, listeningOn
from ._programs import CURL
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, Program, TapProcessMixin, blockUntil

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)

#: HAProxy as an HTTP backend that takes the PROXY header from securetcp
#: and answers with what it learned from it
HAPROXY_CONFIG = """\
global
    log stderr format raw local0 info
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend behind_securetcp
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string \
"src=%[src] sport=%[src_port] uid=%[fc_pp_unique_id] authority=%[fc_pp_authority]\\n"
"""

#: A backend (C{python SCRIPT PORT OUT}) that reads the PROXY v2 header
#: with the C{proxy-protocol} package, writes what it read to OUT as JSON,
#: then answers each line with C{backend:LINE}.
PARSING_BACKEND = r'''
import json, socket, struct, sys
from proxyprotocol.v2 import ProxyProtocolV2

port, out = int(sys.argv[1]), sys.argv[2]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(5)
print("backend listening on %d" % port, flush=True)
while True:
    conn, _ = server.accept()
    data = b""
    while len(data) < 16 or len(data) < 16 + struct.unpack("!H", data[14:16])[0]:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    size = 16 + struct.unpack("!H", data[14:16])[0]
    result = ProxyProtocolV2().unpack(data[:size])
    ssl = result.tlv.ssl
    facts = {
        "source": [str(result.source[0]), result.source[1]],
        "dest": [str(result.dest[0]), result.dest[1]],
        "uniqueId": result.tlv.unique_id.decode(), "authority": result.tlv.authority,
        "crc32c": result.tlv.crc32c, "ssl": ssl.has_ssl, "certConn": ssl.has_cert_conn,
        "certSess": ssl.has_cert_sess, "verified": ssl.verified, "version": ssl.version,
        "cn": ssl.cn, "cipher": ssl.cipher, "sigAlg": ssl.sig_alg, "keyAlg": ssl.key_alg,
        "fingerprint": result.tlv[0xE0].hex(), "uri": result.tlv[0xE1].decode(),
    }
    with open(out + ".tmp", "w") as f:
        json.dump(facts, f)
    import os
    os.replace(out + ".tmp", out)
    rest = data[size:]
    with conn:
        while True:
            while b"\n" in rest:
                line, rest = rest.split(b"\n", 1)
                conn.sendall(b"backend:" + line + b"\n")
            chunk = conn.recv(4096)
            if not chunk:
                break
            rest += chunk
'''



#: HAProxy in TCP mode in front of securetcp (C{proxyProtocol=v2}),
#: connecting from 127.0.0.2 so its address is told apart from the client's
HAPROXY_FRONT_CONFIG = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend balancer
    bind 127.0.0.1:{port}
    default_backend securetcp
backend securetcp
    server s 127.0.0.1:{securetcp} send-proxy-v2 source 127.0.0.2
"""


class BackendProxyTests(TapProcessMixin, SynchronousTestCase):
    """
    The backend of C{terminate --backend-proxy v2} learns the real client
    and its verified certificate from the header, before any byte.
    """

    def terminateWithProxy(self, backendPort: int, front: str = "") -> Any:
        """
        C{twistd securetcp terminate --backend-proxy v2} in front of
        127.0.0.1:C{backendPort}, with C{front} added to its C{mtls:} string.
        """
        def listen(port: int) -> List[str]:
            argv = self.mtlsListen(port)
            argv[-1] += front
            return argv

        return self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                           "--backend-proxy", "v2", "--audit-log", self.audit, listen=listen)

    def clientFingerprint(self) -> str:
        with open(self.pki.path("client.pem"), "rb") as f:
            certificate = x509.load_pem_x509_certificate(f.read())
        return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()

    def parsingBackend(self) -> Tuple[int, str]:
        """
        Start L{PARSING_BACKEND}; return its port and the file it writes.
        """
        try:
            import proxyprotocol  # noqa: F401
        except ImportError:
            raise SkipTest("the proxy-protocol package is not installed") from None
        script = os.path.join(self.workdir, "parsing-backend.py")
        with open(script, "w") as f:
            f.write(PARSING_BACKEND)
        out = os.path.join(self.workdir, "header.json")
        backendPort, _ = self.startListening(
            lambda p: [sys.executable, script, str(p), out], "parsing backend",
            lambda p: b"backend listening on %d" % p)
        return backendPort, out

    def test_independentParser(self) -> None:
        """
        A backend reading the header with the C{proxy-protocol} package
        gets s_client's address (the audit record's C{peer}), securetcp's
        listening address, the audit connection id, the SNI, C{PP2_TYPE_SSL}
        (client certificate presented on this connection and verified,
        TLS 1.3, the cipher, the client's CN, the server certificate's
        algorithms), the client certificate's SHA-256 fingerprint and its
        SPIFFE ID, with a CRC32c it checks; then the data flows as before.
        """
        backendPort, out = self.parsingBackend()
        port, _ = self.terminateWithProxy(backendPort)
        self.exchange(port, b"MSH|^~\\&|PUMP")
        accepted = self.waitForEvent("connection.accepted")[0]
        with open(out) as f:
            facts: Dict[str, Any] = json.load(f)
        host, peerPort = accepted["peer"].rsplit(":", 1)
        self.assertEqual(facts["source"], [host, int(peerPort)])
        self.assertEqual(facts["dest"], ["127.0.0.1", port])
        self.assertEqual(facts["uniqueId"], accepted["connection"])
        self.assertEqual(facts["authority"], "localhost")
        self.assertIsNotNone(facts["crc32c"])
        self.assertEqual(
            {k: facts[k] for k in ("ssl", "certConn", "certSess", "verified", "version", "cn",
                                   "cipher", "sigAlg", "keyAlg")},
            {"ssl": True, "certConn": True, "certSess": True, "verified": True,
             "version": "TLSv1.3", "cn": "PUMP-0042", "cipher": accepted["cipher"],
             "sigAlg": "ecdsa-with-SHA256", "keyAlg": "EC256"})
        self.assertEqual(facts["fingerprint"], self.clientFingerprint())
        self.assertEqual(facts["fingerprint"], accepted["peerIdentity"]["sha256"])
        self.assertEqual(facts["uri"], "spiffe://hospital.example/ward3/pump-0042")

    def startHAProxy(self, template: str = HAPROXY_CONFIG, **values: int) -> int:
        """
        Run C{haproxy -db} with C{template} on a free port; wait until it
        listens.
        """
        if HAPROXY is None:
            raise SkipTest("haproxy is not installed (apt-get install haproxy)")
        port = freePort()
        config = os.path.join(self.workdir, f"haproxy-{port}.cfg")
        with open(config, "w") as f:
            f.write(template.format(port=port, **values))
        assert HAPROXY is not None
        process = Program(self, [HAPROXY, "-db", "-f", config], "haproxy")
        blockUntil(lambda: listeningOn(port) or not process.running, START_TIMEOUT,
                   "haproxy to listen", process.describe)
        if not process.running:
            raise AssertionError(f"haproxy did not start\n{process.describe()}")
        self.haproxy = process
        return port

    def test_haproxyAcceptsIt(self) -> None:
        """
        HAProxy with C{accept-proxy} (which checks the CRC32c) takes the
        header from securetcp: C{curl} with a client certificate through
        C{terminate} is answered by HAProxy with curl's own address and
        port as C{src} (what the audit record names), the audit connection
        id as C{fc_pp_unique_id} and the SNI as C{fc_pp_authority}.
        """
        if CURL is None:
            raise SkipTest("curl is not installed")
        haproxyPort = self.startHAProxy()
        port, _ = self.terminateWithProxy(haproxyPort)
        answers = []
        for _ in range(2):
            done = subprocess.run(
                [CURL, "-sS", "--max-time", str(PEER_TIMEOUT),
                 "--cacert", self.pki.path("ca.pem"), "--cert", self.pki.path("client.pem"),
                 "--key", self.pki.path("client.key"),
                 "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
                capture_output=True, timeout=START_TIMEOUT)
            self.assertEqual(done.returncode, 0, done.stderr.decode() + self.haproxy.describe())
            answers.append(done.stdout.decode().strip())
        accepted = self.waitForEvent("connection.accepted", 2)
        expected = [f"src={r['peer'].rsplit(':', 1)[0]} sport={r['peer'].rsplit(':', 1)[1]} "
                    f"uid={r['connection']} authority=localhost" for r in accepted]
        self.assertEqual(sorted(answers), sorted(expected))

    def test_behindABalancer(self) -> None:
        """
        Behind HAProxy in TCP mode (C{send-proxy-v2} to C{proxyProtocol=v2}),
        the header to the backend names the original client (s_client,
        bound to a known port), not the balancer, which the audit record
        names as C{proxy}.
        """
        backendPort, out = self.parsingBackend()
        port, _ = self.terminateWithProxy(backendPort, ":proxyProtocol=v2")
        balancer = self.startHAProxy(HAPROXY_FRONT_CONFIG, securetcp=port)
        clientPort = freePort()
        peer = self.sClient(balancer, "client", None, "-bind", f"127.0.0.1:{clientPort}")
        peer.send(b"ORM|1\n")
        peer.waitFor(b"backend:ORM|1\n", PEER_TIMEOUT, "the backend's answer")
        peer.closeStdin()
        accepted = self.waitForEvent("connection.accepted")[0]
        with open(out) as f:
            facts: Dict[str, Any] = json.load(f)
        self.assertEqual(facts["source"], ["127.0.0.1", clientPort])
        self.assertEqual(accepted["peer"], f"127.0.0.1:{clientPort}")
        self.assertTrue(accepted["proxy"].startswith("127.0.0.2:"), accepted)
        self.assertEqual(facts["cn"], "PUMP-0042")
