"""
C{reload=watch} with an unmodified application: Twisted's own C{twistd web}
listening on an C{mtls:...:reload=watch} string serves C{curl} in a loop
(a new TLS connection per request, two at a time) and one long-lived
keep-alive connection (Python's C{ssl}), while the server certificate and
key are rotated several times, then cut short.  No request fails, the
long-lived connection keeps its session, C{openssl s_client} sees each new
certificate served, and the cut-short file is refused.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import threading
import time
from typing import Any, Dict, List

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ._net import escape
from ._pki import TestPKI
from ._programs import CURL, OPENSSL, TWISTD
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, TapProcessMixin, auditEvents, blockUntil

ROTATIONS = 3
PAGE = b"It works under rotation\n"


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


class _KeepAlive(threading.Thread):
    """
    One TLS connection (Python's C{ssl} module, with the client
    certificate) sending C{GET /} again and again, keep-alive, until
    stopped; it notes every status and the certificate it was served.
    """

    def __init__(self, port: int, pki: TestPKI) -> None:
        super().__init__(daemon=True)
        context = ssl.create_default_context(cafile=pki.path("ca.pem"))
        context.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
        self.tls = context.wrap_socket(raw, server_hostname="localhost")
        self.served = self.tls.getpeercert(binary_form=True)
        self.statuses: List[str] = []
        self.error: Any = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            reader = self.tls.makefile("rb")
            while not self.stopping.is_set():
                self.tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                status = reader.readline().decode().strip()
                length = 0
                while True:
                    line = reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = reader.read(length)
                self.statuses.append(status if body == PAGE else f"{status} {body!r}")
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.tls.close()


class ReloadWatchUnderLoadTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd web} with C{reload=watch}: certificate rotations under load.
    """

    def setUp(self) -> None:
        super().setUp()
        if CURL is None:
            raise SkipTest("curl is not installed")
        site = os.path.join(self.workdir, "site")
        os.makedirs(site)
        with open(os.path.join(site, "index.html"), "wb") as f:
            f.write(PAGE)
        self.site = site

    def web(self) -> int:
        """
        Start C{twistd -n web} on an C{mtls:...:reload=watch:reloadPoll=1}
        string with an audit file; return its port.
        """
        def argv(port: int) -> List[str]:
            listen = (f"mtls:{port}:interface=127.0.0.1"
                      f":certKey={escape(self.pki.path('server.pem'))}"
                      f":privateKey={escape(self.pki.path('server.key'))}"
                      f":caCerts={escape(self.pki.path('ca.pem'))}"
                      f":auditLog={escape(self.audit)}:reload=watch:reloadPoll=1")
            assert TWISTD is not None
            return [TWISTD, "-n", "--pidfile=", "web", "--listen", listen, "--path", self.site]

        port, self.twistdWeb = self.startListening(argv, "twistd web",
                                                   lambda p: b"starting on %d" % p)
        return port  # type: ignore[no-any-return]

    def servedFingerprint(self, port: int) -> bytes:
        """
        The SHA-256 fingerprint of the certificate C{openssl s_client}
        is served now.
        """
        assert OPENSSL is not None
        done = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-CAfile", self.pki.path("ca.pem"), "-cert", self.pki.path("client.pem"),
             "-key", self.pki.path("client.key")],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=PEER_TIMEOUT)
        found = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                          done.stdout, re.S)
        assert found is not None, done.stdout + done.stderr
        return _fingerprint(x509.load_pem_x509_certificate(found.group(0)))

    def rotate(self, name: str) -> x509.Certificate:
        """
        Issue a new server certificate and key and rename them over the
        served ones, key first (as a renewal script would).
        """
        staging = TestPKI(os.path.join(self.pki.directory, "staging"), self.pki.authority)
        os.makedirs(staging.directory, exist_ok=True)
        certificate = staging.issue(name, f"localhost ({name})", dns=["localhost"],
                                    ips=["127.0.0.1"], server=True)
        os.rename(staging.path(f"{name}.key"), self.pki.path("server.key"))
        os.rename(staging.path(f"{name}.pem"), self.pki.path("server.pem"))
        return certificate

    def curlLoop(self, port: int, stop: threading.Event, results: Dict[str, List[str]],
                 name: str) -> None:
        """
        Run C{curl} with the client certificate, 20 requests per run, each
        on a new connection (C{Connection: close}), until stopped; note
        every status code and every failure.
        """
        assert CURL is not None
        while not stop.is_set():
            done = subprocess.run(
                [CURL, "-sS", "--max-time", str(PEER_TIMEOUT), "-H", "Connection: close",
                 "--cacert", self.pki.path("ca.pem"), "--cert", self.pki.path("client.pem"),
                 "--key", self.pki.path("client.key"),
                 "--resolve", f"localhost:{port}:127.0.0.1", "-o", "/dev/null",
                 "-w", "%{http_code}\\n", f"https://localhost:{port}/?n=[1-20]"],
                capture_output=True, timeout=START_TIMEOUT)
            results[name] += done.stdout.decode().split()
            if done.returncode != 0 or done.stderr:
                results[name].append(f"curl exit {done.returncode}: {done.stderr.decode()}")

    def moreRequests(self, results: Dict[str, List[str]]) -> None:
        """
        Wait until the load made at least 10 more requests.
        """
        before = sum(len(r) for r in results.values())
        blockUntil(lambda: sum(len(r) for r in results.values()) >= before + 10,
                   START_TIMEOUT, "more requests")

    def test_rotationsUnderLoad(self) -> None:
        """
        Three rotations of the certificate and key while two curl loops and
        a keep-alive connection make requests: every request is answered
        with the page (0 failures), the keep-alive connection is never
        dropped and keeps the certificate it started with, each new
        certificate is served (seen by C{openssl s_client}) and audited as
        C{policy.reloaded} with the fingerprints before and after; a
        certificate file then cut short is refused (C{policy.reload_refused},
        once) while the last good certificate goes on being served.
        """
        port = self.web()
        original = self.servedFingerprint(port)
        keepAlive = _KeepAlive(port, self.pki)
        keepAlive.start()
        stop = threading.Event()
        results: Dict[str, List[str]] = {"a": [], "b": []}
        loops = [threading.Thread(target=self.curlLoop, args=(port, stop, results, n),
                                  daemon=True) for n in results]
        for loop in loops:
            loop.start()
        try:
            blockUntil(lambda: all(len(r) >= 5 for r in results.values()), START_TIMEOUT,
                       "the load to start", self.twistdWeb.describe)
            served = [original]
            for i in range(ROTATIONS):
                new = _fingerprint(self.rotate(f"rotated{i}"))
                blockUntil(lambda new=new: self.servedFingerprint(port) == new, START_TIMEOUT,
                           f"rotation {i} to be served", self.twistdWeb.describe)
                served.append(new)
                self.moreRequests(results)
            # a half-written certificate is refused; the one in force stays
            with open(self.pki.path("server.pem"), "r+b") as f:
                f.truncate(200)
            blockUntil(lambda: auditEvents(self.audit, "policy.reload_refused"),
                       START_TIMEOUT, "the half-written certificate to be refused")
            self.moreRequests(results)
            self.assertEqual(self.servedFingerprint(port), served[-1])
        finally:
            stop.set()
            keepAlive.stopping.set()
            for loop in loops:
                loop.join(START_TIMEOUT)
            keepAlive.join(PEER_TIMEOUT)
        codes = results["a"] + results["b"]
        failed = [c for c in codes if c != "200"]
        self.assertEqual(failed, [], f"{len(failed)} of {len(codes)} requests failed")
        self.assertGreater(len(codes), 60)
        self.assertIsNone(keepAlive.error)
        self.assertEqual(set(keepAlive.statuses), {"HTTP/1.1 200 OK"})
        self.assertGreater(len(keepAlive.statuses), 10)
        self.assertEqual(_fingerprint(x509.load_der_x509_certificate(keepAlive.served)),
                         original)
        self.assertEqual(len(set(served)), ROTATIONS + 1)
        reloaded = auditEvents(self.audit, "policy.reloaded")
        self.assertEqual([(r["certificateBefore"], r["certificateAfter"]) for r in reloaded],
                         [(served[i].hex(), served[i + 1].hex()) for i in range(ROTATIONS)])
        [refused] = auditEvents(self.audit, "policy.reload_refused")
        self.assertIn("server.pem", refused["detail"])
