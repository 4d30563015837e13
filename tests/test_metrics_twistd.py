"""
Tests for C{twistd securetcp --metrics}: a real C{twistd -n securetcp
terminate} process, real TLS clients (C{openssl s_client}), and its
C{/metrics}, C{/healthz} and C{/readyz} read over HTTP; the exposition is
checked by C{promtool check metrics} and scraped by a real Prometheus
server (both from Debian's C{prometheus} package).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from typing import Dict, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ._net import freePort
from ._scrape import fetch, parse
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, Program, TapProcessMixin, blockUntil

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

#: A Prometheus server configuration scraping the metrics endpoint every second.
PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: securetcp
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


class MetricsProcessTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate --metrics tcp:PORT:interface=127.0.0.1}.
    """

    def start(self, metrics: str = "tcp:{port}:interface=127.0.0.1") -> Tuple[int, int]:
        backendPort, _backend, _count = self.backend()
        self.metricsPort = freePort()
        port, self.process = self.twistd(
            "terminate", "--backend", f"tcp:127.0.0.1:{backendPort}", "--audit-log",
            self.audit, "--metrics", metrics.format(port=self.metricsPort),
            listen=self.mtlsListen)
        self.process.waitFor(b"starting on %d" % self.metricsPort, PEER_TIMEOUT,
                             "the metrics endpoint to listen")
        return port, self.metricsPort

    def test_scrapedAfterRealClients(self) -> None:
        """
        After two clients exchanged a line and one without a certificate
        was refused, C{/metrics} counts two accepted handshakes, one
        rejected as C{no_client_certificate}, the bytes each way and the
        audit records written; the labels name the listener, no peer.
        """
        port, metricsPort = self.start()
        self.exchange(port, b"first")
        self.exchange(port, b"second")
        anonymous = self.sClient(port, None)
        anonymous.closeStdin()
        anonymous.waitExit()
        self.waitForEvent("handshake.rejected", reason="no_client_certificate")
        self.waitForEvent("connection.closed", count=2)
        listener = f"mtls:{port}"

        def scraped() -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
            status, body = fetch(metricsPort, "/metrics")
            self.assertEqual(status, 200)
            self.body = body
            found = parse(body)
            key = ("securetcp_open_connections", (("listener", listener),))
            return found if found.get(key) == 0.0 else {}

        found = blockUntil(scraped, PEER_TIMEOUT, "no open connection in /metrics",
                           lambda: self.body)
        label = (("listener", listener),)
        self.assertEqual(found[("securetcp_handshakes_total", label + (
            ("outcome", "accepted"), ("reason", "")))], 2.0)
        self.assertEqual(found[("securetcp_handshakes_total", label + (
            ("outcome", "rejected"), ("reason", "no_client_certificate")))], 1.0)
        self.assertEqual(found[("securetcp_handshake_duration_seconds_count", label)], 3.0)
        # "first\n" and "second\n" in; "backend:first\n" and "backend:second\n" out
        self.assertEqual(found[("securetcp_received_bytes_total", label)], 13.0)
        self.assertEqual(found[("securetcp_sent_bytes_total", label)], 29.0)
        self.assertGreaterEqual(
            found[("securetcp_audit_records_total", (("result", "written"),))], 5.0)
        self.assertEqual(
            found.get(("securetcp_audit_records_total", (("result", "failed"),))), 0.0)
        own = [v for (name, labels), v in found.items()
               if name == "securetcp_certificate_expiry_seconds" and ("role", "own") in labels]
        self.assertEqual(len(own), 1)
        self.assertGreater(own[0], 86400)
        self.assertNotIn("127.0.0.1:", self.body.replace(f"listener=\"{listener}\"", ""))

    def test_healthAndReadiness(self) -> None:
        """
        C{/healthz} and C{/readyz} answer 200 with their reason while the
        process listens and its audit log can be written.
        """
        _port, metricsPort = self.start()
        status, body = fetch(metricsPort, "/healthz")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith("ok: reactor heartbeat "), body)
        self.assertEqual(fetch(metricsPort, "/readyz"), (200, "ready\n"))

    def test_promtool(self) -> None:
        """
        C{promtool check metrics} finds nothing wrong in the exposition.
        """
        if PROMTOOL is None:
            raise SkipTest("promtool is not installed (Debian package prometheus)")
        port, metricsPort = self.start()
        self.exchange(port, b"hello")
        status, body = fetch(metricsPort, "/metrics")
        self.assertEqual(status, 200)
        result = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode("utf-8"),
                                capture_output=True, timeout=PEER_TIMEOUT)
        self.assertEqual(result.returncode, 0, (result.stdout + result.stderr).decode())

    def test_scrapedByPrometheus(self) -> None:
        """
        A real Prometheus server scrapes the endpoint and its query API
        answers the accepted handshake count of the listener.
        """
        if PROMETHEUS is None:
            raise SkipTest("prometheus is not installed (Debian package prometheus)")
        port, metricsPort = self.start()
        self.exchange(port, b"hello")
        config = os.path.join(self.workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(PROMETHEUS_CONFIG.format(port=metricsPort))
        serverPort = freePort()
        server = Program(self, [PROMETHEUS, f"--config.file={config}",  # type: ignore[arg-type]
                                "--storage.tsdb.path=" + os.path.join(self.workdir, "tsdb"),
                                f"--web.listen-address=127.0.0.1:{serverPort}"], "prometheus")
        query = ("/api/v1/query?query=securetcp_handshakes_total%7Boutcome%3D%22accepted%22%7D")

        def answered() -> list:
            try:
                status, body = fetch(serverPort, query)
            except OSError:
                return []
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return result

        [series] = blockUntil(answered, 2 * START_TIMEOUT, "Prometheus to scrape securetcp",
                              server.describe)
        self.assertEqual(series["metric"]["listener"], f"mtls:{port}")
        self.assertEqual(series["metric"]["job"], "securetcp")
        self.assertEqual(series["value"][1], "1")

    def test_overMutualTLS(self) -> None:
        """
        C{--metrics} takes an C{mtls:} string: a scraper presenting a
        certificate of the CA reads C{/metrics} over TLS; one without is
        refused, and both are audited.
        """
        import ssl

        listen = self.mtlsListen(0)[1].replace("mtls:0:", "mtls:{port}:")
        _port, metricsPort = self.start(listen)
        context = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        context.load_cert_chain(self.pki.path("client.pem"), self.pki.path("client.key"))
        url = f"https://localhost:{metricsPort}/metrics"
        with urllib.request.urlopen(url, context=context, timeout=PEER_TIMEOUT) as response:
            self.assertEqual(response.status, 200)
            self.assertIn(b"securetcp_handshakes_total", response.read())
        anonymous = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        self.assertRaises(OSError, lambda: urllib.request.urlopen(
            url, context=anonymous, timeout=PEER_TIMEOUT).read())
        self.waitForEvent("connection.accepted")
        self.waitForEvent("handshake.rejected", reason="no_client_certificate")
