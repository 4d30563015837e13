# -*- test-case-name: tests.test_originaterefusal -*-
"""
C{twistd securetcp originate} in front of an C{openssl s_server} that
demands a client certificate (C{-Verify 1}) and refuses ours: the refusal is
audited as a rejection by the remote (C{handshake.rejected} with the reason
its alert gives), never as C{connection.accepted}, and C{audit report}
counts it as rejected.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any, List

from twisted.trial.unittest import SynchronousTestCase

from ._net import escape as _escape
from ._programs import OPENSSL, SOURCE_ROOT, subprocessEnvironment
from ._twistd import PEER_TIMEOUT, TapProcessMixin, auditEvents


class OriginateRefusedTests(TapProcessMixin, SynchronousTestCase):
    """
    C{originate} whose remote server refuses its client certificate.
    """

    def sServer(self, version: str) -> int:
        """
        C{openssl s_server -Verify 1} (TLS C{version}) trusting only the
        PKI's CA, on a free port.
        """
        def argv(port: int) -> List[str]:
            return [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", version,
                    "-cert", self.pki.path("server.pem"), "-key", self.pki.path("server.key"),
                    "-CAfile", self.pki.path("ca.pem"), "-Verify", "1",
                    "-verify_return_error", "-rev"]

        port, _ = self.startListening(argv, "s_server", lambda p: b"ACCEPT")
        return port

    def originate(self, remotePort: int, client: str) -> int:
        connect = (f"mtls:host=127.0.0.1:port={remotePort}"
                   f":caCerts={_escape(self.pki.path('ca.pem'))}"
                   f":certKey={_escape(self.pki.path(client + '.pem'))}"
                   f":privateKey={_escape(self.pki.path(client + '.key'))}:hostname=localhost")
        port, _ = self.twistd(
            "originate", "--connect", connect, "--audit-log", self.audit, name="originate",
            listen=lambda p: ["--listen", f"tcp:{p}:interface=127.0.0.1"])
        return port

    def report(self) -> Any:
        result = subprocess.run(
            [sys.executable, "-m", "securetcp", "audit", "report", "--json", self.audit],
            capture_output=True, timeout=PEER_TIMEOUT, cwd=SOURCE_ROOT,
            env=subprocessEnvironment())
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def assertRefusedByRemote(self, version: str) -> None:
        port = self.originate(self.sServer(version), "client-other")
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
            s.sendall(b"MSH|^~\\&|anyone there?\r\n")
            received = b""
            while True:
                data = s.recv(65536)  # bounded by the socket timeout
                if not data:
                    break
                received += data
        self.assertEqual(received, b"")
        [rejected] = self.waitForEvent("handshake.rejected")
        self.assertEqual((rejected["role"], rejected["reason"]), ("client", "unknown_ca"),
                         rejected)
        self.assertIn("unknown ca", rejected["detail"])
        [failed] = self.waitForEvent("proxy.backend_failed")
        self.assertIn("unknown_ca", failed["detail"])
        self.assertEqual(auditEvents(self.audit, "connection.accepted"), [])
        self.assertEqual(auditEvents(self.audit, "connection.closed"), [])
        report = self.report()
        self.assertEqual((report["accepted"], report["rejected"]), (0, 1), report)
        self.assertEqual(report["rejectedByReason"], {"unknown_ca": 1})

    def test_refusedTLS13(self) -> None:
        """
        Under TLS 1.3, where the remote refuses after originate's handshake
        is over, the refusal is C{handshake.rejected} C{unknown_ca} (with
        C{proxy.backend_failed}), never C{connection.accepted}/C{closed};
        the plaintext client is closed without a byte; C{audit report}
        counts one rejection and no acceptance.
        """
        self.assertRefusedByRemote("-tls1_3")

    def test_refusedTLS12(self) -> None:
        """
        Under TLS 1.2 the same refusal is audited the same way.
        """
        self.assertRefusedByRemote("-tls1_2")

    def test_acceptedTLS13(self) -> None:
        """
        The same remote accepting originate's valid certificate: the line
        comes back reversed, audited as C{connection.accepted}.
        """
        port = self.originate(self.sServer("-tls1_3"), "client")
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as s:
            s.sendall(b"hello\n")
            received = b""
            while b"olleh" not in received:
                data = s.recv(65536)
                self.assertTrue(data, f"closed early; got {received!r}")
                received += data
        [accepted] = self.waitForEvent("connection.accepted")
        self.assertEqual(accepted["version"], "TLSv1.3")
        self.assertEqual(auditEvents(self.audit, "handshake.rejected"), [])
