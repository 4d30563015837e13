# -*- test-case-name: tests.test_realpeers -*-
"""
Real-socket tests against peers nobody here wrote: the C{openssl} binary
(C{s_client} and C{s_server}), C{curl}, and an unmodified C{twistd web}
listening on an C{mtls:} endpoint string.

Every server we run in-process listens on port 0 of 127.0.0.1; external
servers get a free port below 32768.  External programs run with the
reactor (never a blocking C{subprocess.run} while our own server is in the
trial reactor), each with a timeout after which it is killed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import clientFromString
from twisted.trial.unittest import SkipTest, TestCase

from securetcp import HandshakeRejected
from securetcp._tls.context import openSSLVersion

from ._net import escape as _escape
from ._net import freePort as _freePort
from ._peers import LINE, PROCESS_TIMEOUT, SETTLE_TIMEOUT, PeerProcess, RealPeerMixin
from ._peers import waitUntil as _waitUntil
from ._programs import CURL, SOURCE_ROOT, TWISTD
from ._programs import needOpenSSL as _needOpenSSL
from ._recording import CollectorFactory


def _spkiPin(certificatePath: str) -> str:
    with open(certificatePath, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


class TwistdWebTests(RealPeerMixin, TestCase):
    """
    An unmodified C{twistd web} behind an C{mtls:} endpoint string, with
    C{curl} as the client.
    """

    @inlineCallbacks
    def test_twistdWebBehindMTLS(self) -> Any:
        """
        C{twistd web --listen mtls:...} serves a file to C{curl} presenting
        a trusted client certificate; C{curl} without a certificate, with
        one from an untrusted CA or with an expired one fails, and the web
        application never sees those requests (no access-log line), while
        the good request is logged.
        """
        if CURL is None:
            raise SkipTest("the curl binary is not installed")
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        with open(os.path.join(root, "file.txt"), "wb") as f:
            f.write(b"securetcp served this\n")
        pki = self.pki
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [SOURCE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"

        twistd = None
        for _attempt in range(3):
            port = _freePort()
            listen = (f"mtls:{port}:interface=127.0.0.1"
                      f":certKey={_escape(pki.path('server.pem'))}"
                      f":privateKey={_escape(pki.path('server.key'))}"
                      f":caCerts={_escape(pki.path('ca.pem'))}")
            twistd = PeerProcess.spawn(
                [TWISTD, "-n", "--pidfile=", "web", "--listen", listen, "--path", root],
                env=env, path=root, timeout=45, closeAfter=0)
            self.addCleanup(twistd.stop)
            yield _waitUntil(lambda twistd=twistd, port=port: not twistd.running or _canConnect(port),
                             PROCESS_TIMEOUT, "twistd to listen")
            if twistd.running:
                break
        self.assertTrue(twistd.running, f"twistd did not start:\n{twistd.describe()}")

        def curl(case: str, *certArgs: str) -> PeerProcess:
            return PeerProcess.spawn(
                [CURL, "-sS", "--max-time", "10", "--resolve", f"localhost:{port}:127.0.0.1",
                 "--cacert", pki.path("ca.pem")] + list(certArgs)
                + [f"https://localhost:{port}/file.txt?case={case}"])

        good = yield curl("good", "--cert", pki.path("client.pem"),
                          "--key", pki.path("client.key")).ended
        self.assertEqual((good.exitCode, good.out), (0, b"securetcp served this\n"),
                         good.describe())
        mark = len(twistd.out)
        bad = {}
        for case, certName in [("none", None), ("other", "client-other"),
                               ("expired", "client-expired")]:
            certArgs = [] if certName is None else [
                "--cert", pki.path(f"{certName}.pem"), "--key", pki.path(f"{certName}.key")]
            bad[case] = yield curl(case, *certArgs).ended
        for case, result in bad.items():
            self.assertNotEqual(result.exitCode, 0, f"{case}: {result.describe()}")
            self.assertNotIn(b"securetcp served this", result.out)

        # Let twistd log the rejections, then stop it so its log is complete.
        yield _waitUntil(lambda: twistd.out[mark:].count(b"securetcp: rejected") >= 3,
                         SETTLE_TIMEOUT, "twistd to log three rejections")
        yield twistd.stop()
        log = twistd.out.decode("utf-8", "replace")
        self.assertRegex(log, r'"GET /file\.txt\?case=good HTTP/1\.1" 200')
        for case in bad:
            self.assertNotIn(f"case={case}", log)
        self.assertEqual(log.count('"GET '), 1, log)
        rejected = log[len(twistd.out[:mark].decode("utf-8", "replace")):]
        for reason in ("no_client_certificate", "unknown_ca", "expired"):
            self.assertRegex(rejected, r"securetcp: rejected 127\.0\.0\.1:\d+: " + reason)


def _canConnect(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ServerProfileTests(RealPeerMixin, TestCase):
    """
    Our server under a profile, probed by C{openssl s_client}.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    @inlineCallbacks
    def test_defaultProfileVersionsAndCiphers(self) -> Any:
        """
        Under the default profile the server refuses TLS 1.0 and 1.1
        (C{protocol_version_refused}) and the TLS 1.2 suites without forward
        secrecy or AEAD (C{no_shared_cipher}), never building the
        application for them, and accepts an ECDHE-ECDSA AES-GCM TLS 1.2
        client and a TLS 1.3 client, whose lines are echoed.
        """
        port, factory, audit = yield self.listen(mutual=False)
        refused = [
            (("-tls1", "-cipher", "DEFAULT@SECLEVEL=0"), "protocol_version_refused",
             b"alert protocol version"),
            (("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), "protocol_version_refused",
             b"alert protocol version"),
            (("-tls1_2", "-cipher", "AES128-SHA"), "no_shared_cipher",
             b"alert handshake failure"),
            (("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"), "no_shared_cipher",
             b"alert handshake failure"),
            (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"), "no_shared_cipher",
             b"alert handshake failure"),
        ]
        for args, reason, alert in refused:
            peer = yield self.sClient(port, *args, audit=audit)
            self.assertNotEqual(peer.exitCode, 0, f"{args}: {peer.describe()}")
            self.assertNotEchoed(peer)
            # the client was told why, with the standard alert
            self.assertIn(alert, peer.err, f"{args}: {peer.describe()}")
            record = audit.records[-1]
            self.assertEqual((record["event"], record["reason"]),
                             ("handshake.rejected", reason), f"{args}: {record}")
        self.assertEqual((factory.built, factory.made), (0, 0))

        accepted = [
            (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"),
             ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")),
            (("-tls1_3",), ("TLSv1.3", "TLS_AES_128_GCM_SHA256")),
        ]
        for args, (version, cipher) in accepted:
            peer = yield self.sClient(port, *args, audit=audit)
            self.assertEchoed(peer)
            record = audit.events("connection.accepted")[-1]
            self.assertEqual((record["version"], record["cipher"]), (version, cipher))
        self.assertEqual((factory.built, factory.made), (2, 2))

    @inlineCallbacks
    def test_legacyProfileAcceptsTLS10(self) -> Any:
        """
        Under the C{legacy} profile the server accepts a TLS 1.0 client
        (which itself allows SECLEVEL 0), audits the connection as TLSv1
        and not compliant, and echoes its line.
        """
        port, factory, audit = yield self.listen(mutual=False, profile="legacy")
        peer = yield self.sClient(port, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0",
                                  audit=audit)
        rejected = audit.events("handshake.rejected")
        self.assertEqual(rejected, [], f"linked {openSSLVersion()}: {rejected}\n"
                         f"{peer.describe()}")
        self.assertEchoed(peer)
        record = audit.events("connection.accepted")[-1]
        self.assertEqual(record["version"], "TLSv1")
        self.assertFalse(record["compliance"]["compliant"], record["compliance"])
        self.assertEqual((factory.built, factory.made), (1, 1))


class ClientAgainstSServerTests(RealPeerMixin, TestCase):
    """
    Our C{securessl:} and C{mtls:} client endpoints against
    C{openssl s_server}.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    def clientString(self, prefix: str, port: int, **extra: str) -> str:
        options = {"host": "127.0.0.1", "port": str(port),
                   "caCerts": self.pki.path("ca.pem"), "hostname": "localhost"}
        options.update(extra)
        return prefix + ":" + ":".join(f"{k}={_escape(v)}" for k, v in options.items())

    @inlineCallbacks
    def exchange(self, description: str, send: bytes, until: bytes) -> Any:
        """
        Connect with the endpoint string C{description}, send C{send}, and
        wait until C{until} arrives; then close.

        @return: the bytes received.
        """
        factory = CollectorFactory()
        app = yield clientFromString(reactor, description).connect(factory)
        self.assertTrue(app.connected)
        app.transport.write(send)
        yield _waitUntil(lambda: until in app.data or app.lost.called, PROCESS_TIMEOUT,
                         f"{until!r} from s_server")
        app.transport.loseConnection()
        yield app.lost
        return app.data

    @inlineCallbacks
    def rejection(self, serverName: str) -> Any:
        """
        Connect our C{securessl:} client to an s_server using the
        certificate C{serverName}; the connection must fail.

        @return: the L{HandshakeRejected}.
        """
        port, _ = yield self.sServer(serverName, "-www")
        factory = CollectorFactory()
        d = clientFromString(reactor, self.clientString("securessl", port)).connect(factory)
        timeout = reactor.callLater(PROCESS_TIMEOUT, d.cancel)
        try:
            yield d
        except HandshakeRejected as e:
            error = e
        else:
            self.fail(f"connected to s_server with {serverName}")
        finally:
            if timeout.active():
                timeout.cancel()
        self.assertEqual(factory.protocols, [])  # the application was never built
        return error

    @inlineCallbacks
    def test_secureSSLClientVerifiesSServer(self) -> Any:
        """
        A C{securessl:} client endpoint connects to C{openssl s_server -www}
        with a valid certificate for C{localhost} and the application gets
        the page it serves.
        """
        port, _ = yield self.sServer("server", "-www")
        data = yield self.exchange(self.clientString("securessl", port),
                                   b"GET / HTTP/1.0\r\n\r\n", b"</HTML>")
        self.assertIn(b"HTTP/1.0 200 ok", data)
        self.assertIn(b"New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256", data)

    @inlineCallbacks
    def test_mtlsClientPresentsCertificateToSServer(self) -> Any:
        """
        An C{mtls:} client endpoint connects to C{openssl s_server -rev
        -Verify 1}, which demands and verifies a client certificate, and the
        application's line comes back reversed.
        """
        port, server = yield self.sServer("server", "-rev", "-Verify", "1",
                                          "-CAfile", self.pki.path("ca.pem"),
                                          "-verify_return_error")
        description = self.clientString(
            "mtls", port, certKey=self.pki.path("client.pem"),
            privateKey=self.pki.path("client.key"))
        data = yield self.exchange(description, LINE + b"\n", LINE[::-1])
        self.assertIn(LINE[::-1], data)
        # s_server reports on stdout and stderr; it verified our certificate
        yield _waitUntil(lambda: b"Verification: OK" in server.out + server.err,
                         SETTLE_TIMEOUT, "s_server to report the verified client")
        self.assertIn(b"CN = PUMP-0042", server.out + server.err)

    @inlineCallbacks
    def test_hostnameMismatch(self) -> Any:
        """
        A server whose certificate is for another name is rejected with
        C{hostname_mismatch}, and the message names the expected host.
        """
        error = yield self.rejection("server-wrongname")
        self.assertEqual(error.reason, "hostname_mismatch")
        self.assertIn("localhost", str(error))

    @inlineCallbacks
    def test_unknownCA(self) -> Any:
        """
        A server whose certificate comes from an untrusted CA is rejected
        with C{unknown_ca}, and the message says the issuer is unknown.
        """
        error = yield self.rejection("server-other")
        self.assertEqual(error.reason, "unknown_ca")
        self.assertIn("issuer certificate", str(error))

    @inlineCallbacks
    def test_wrongKeyUsage(self) -> Any:
        """
        A server certificate whose extended key usage is only clientAuth is
        rejected with C{wrong_key_usage}, and the message says the purpose
        is wrong.
        """
        error = yield self.rejection("server-eku")
        self.assertEqual(error.reason, "wrong_key_usage")
        self.assertIn("purpose", str(error))

    @inlineCallbacks
    def test_expired(self) -> Any:
        """
        An expired server certificate is rejected with C{expired}, and the
        message says it has expired.
        """
        error = yield self.rejection("server-expired")
        self.assertEqual(error.reason, "expired")
        self.assertIn("expired", error.detail)


class ClientAuthMatrixTests(RealPeerMixin, TestCase):
    """
    Our C{mtls} server against C{openssl s_client} presenting good and bad
    client certificates, under TLS 1.2 and TLS 1.3.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    CASES = [
        (None, "no_client_certificate", {"-tls1_2": b"alert handshake failure",
                                         "-tls1_3": b"alert certificate required"}),
        ("client-other", "unknown_ca", b"alert unknown ca"),
        ("client-expired", "expired", b"alert certificate expired"),
        ("client-eku", "wrong_key_usage", b"alert unsupported certificate"),
        # OpenSSL accepts a P-224 key under TLS 1.2; securetcp's key-size
        # check does not.  TLS 1.3 has no P-224 signature scheme, so there
        # the client cannot use that certificate and sends none.
        ("client-p224", {"-tls1_2": "weak_key", "-tls1_3": "no_client_certificate"},
         {"-tls1_2": b"alert bad certificate", "-tls1_3": b"alert certificate required"}),
    ]

    @inlineCallbacks
    def matrix(self, version: str) -> Any:
        port, factory, audit = yield self.listen(mutual=True)
        for client, reason, alert in self.CASES:
            peer = yield self.sClient(port, version, client=client, audit=audit)
            self.assertNotEchoed(peer)
            # the real client was told why, with the standard TLS alert
            if isinstance(alert, dict):
                alert = alert[version]
            if isinstance(reason, dict):
                reason = reason[version]
            self.assertIn(alert, peer.err, f"{version} {client}: {peer.describe()}")
            if version == "-tls1_3":
                # s_client finished its side of the handshake (and verified
                # us) before the server judged its certificate
                self.assertIn(b"Verification: OK", peer.err, peer.describe())
            record = audit.records[-1]
            self.assertEqual((record["event"], record.get("reason")),
                             ("handshake.rejected", reason),
                             f"{version} {client}: {record}\n{peer.describe()}")
        self.assertEqual((factory.built, factory.made), (0, 0))
        peer = yield self.sClient(port, version, client="client", audit=audit)
        self.assertEchoed(peer)
        accepted = audit.events("connection.accepted")
        self.assertEqual(len(accepted), 1)
        self.assertEqual(accepted[0]["version"], {"-tls1_2": "TLSv1.2",
                                                  "-tls1_3": "TLSv1.3"}[version])
        self.assertIn("spiffe://hospital.example/ward3/pump-0042",
                      accepted[0]["peerIdentity"]["san"]["uri"])
        self.assertEqual((factory.built, factory.made), (1, 1))

    def test_clientAuthTLS12(self) -> Any:
        """
        Under TLS 1.2 the mtls server rejects a client without a
        certificate (C{no_client_certificate}), from an untrusted CA
        (C{unknown_ca}), expired (C{expired}) or without the clientAuth EKU
        (C{wrong_key_usage}) or with a key below the profile's minimum
        (C{weak_key}) without ever building the application, and
        echoes for a good client.
        """
        return self.matrix("-tls1_2")

    def test_clientAuthTLS13(self) -> Any:
        """
        Under TLS 1.3, where the client finishes its handshake before the
        server has judged its certificate, the same bad clients are
        rejected with the same reasons and never reach the application, and
        a good client is echoed.
        """
        return self.matrix("-tls1_3")


class AuthorisationTests(RealPeerMixin, TestCase):
    """
    Identity allow-lists and SPKI pins on our mtls server, with
    C{openssl s_client} as the client.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    @inlineCallbacks
    def admitsOnly(self, reason: str, **options: Any) -> Any:
        port, factory, audit = yield self.listen(mutual=True, **options)
        for version in ("-tls1_2", "-tls1_3"):
            peer = yield self.sClient(port, version, client="client2", audit=audit)
            self.assertNotEchoed(peer)
            # refused in the handshake: told by an alert, not a TCP reset
            self.assertIn(b"alert bad certificate", peer.err, f"{version}: {peer.describe()}")
            self.assertNotIn(b"errno=104", peer.err, f"{version}: {peer.describe()}")
            record = audit.records[-1]
            self.assertEqual((record["event"], record.get("reason")),
                             ("handshake.rejected", reason), f"{version}: {record}")
            self.assertEqual(record["peerIdentity"]["san"]["uri"],
                             ["spiffe://hospital.example/ward9/pump-0099"])
            self.assertEqual((factory.built, factory.made), (0, 0))
        for n, version in enumerate(("-tls1_2", "-tls1_3"), 1):
            peer = yield self.sClient(port, version, client="client", audit=audit)
            self.assertEchoed(peer)
            self.assertEqual((factory.built, factory.made), (n, n))

    def test_allowPeersSPIFFE(self) -> Any:
        """
        C{allowPeers=uri:spiffe://hospital.example/ward3/*} admits the
        ward-3 device and rejects a valid ward-9 device with
        C{identity_not_allowed}, before its application is built; the
        refused device gets the C{bad_certificate} alert.
        """
        return self.admitsOnly("identity_not_allowed",
                               allowPeers="uri:spiffe://hospital.example/ward3/*")

    def test_pinSPKI(self) -> Any:
        """
        A C{pinSPKI} of C{client.pem}'s key admits that client and rejects
        another valid client with C{pin_mismatch} and the C{bad_certificate}
        alert.
        """
        return self.admitsOnly("pin_mismatch",
                               pinSPKI=_spkiPin(self.pki.path("client.pem")))


class ResumptionTests(RealPeerMixin, TestCase):
    """
    TLS 1.3 session resumption on our mtls server, with C{openssl s_client}
    saving its session and offering it again.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    @inlineCallbacks
    def test_resumedPeerAuthorisedAndAudited(self) -> Any:
        """
        A client that resumes its session (no verify step runs) is judged
        and audited as the peer the session was made with: the allow-list
        admits it, and its C{connection.accepted} and C{connection.closed}
        records say C{resumed} and carry its identity.
        """
        port, factory, audit = yield self.listen(
            mutual=True, allowPeers="uri:spiffe://hospital.example/ward3/*")
        session = os.path.abspath(self.mktemp())
        first = yield self.sClient(port, "-tls1_3", "-sess_out", session, client="client",
                                   audit=audit)
        self.assertEchoed(first)
        self.assertTrue(os.path.exists(session), first.describe())
        again = yield self.sClient(port, "-tls1_3", "-sess_in", session, client="client",
                                   audit=audit)
        self.assertEchoed(again)
        self.assertEqual((factory.built, factory.made), (2, 2))
        for event in ("connection.accepted", "connection.closed"):
            records = audit.events(event)
            self.assertEqual([r["resumed"] for r in records], [False, True])
            for record in records:
                self.assertEqual(record["peerIdentity"]["san"]["uri"],
                                 ["spiffe://hospital.example/ward3/pump-0042"], record)


class PythonClientRefusedTests(RealPeerMixin, TestCase):
    """
    Python's C{ssl} client (its own OpenSSL 3, not the C{cryptography}
    wheel's) refused by our server's allow-list: it is told by a TLS alert.
    """

    def refusal(self, version: ssl.TLSVersion, port: int) -> str:
        """
        Connect (in a thread) as C{client2} with TLS C{version}, send a line
        and read: the error the client sees, as text.
        """
        context = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        context.minimum_version = context.maximum_version = version
        context.load_cert_chain(self.pki.path("client2.pem"), self.pki.path("client2.key"))
        with socket.create_connection(("127.0.0.1", port), timeout=PROCESS_TIMEOUT) as raw:
            try:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    # TLS 1.3: our side of the handshake is over before the
                    # server judged our certificate; its alert comes on read
                    tls.sendall(LINE + b"\n")
                    data = tls.recv(1024)
            except ssl.SSLError as e:
                return f"SSLError: {e}"
            except OSError as e:
                return f"{type(e).__name__}: {e}"
        return f"no error; received {data!r}"

    @inlineCallbacks
    def test_identityNotAllowedAlert(self) -> Any:
        """
        A valid client that matches no C{allowPeers} rule gets an
        C{SSLError} naming the C{bad_certificate} alert (not a
        C{ConnectionResetError}) under TLS 1.2 and 1.3, and the audit record
        says C{identity_not_allowed}.
        """
        port, factory, audit = yield self.listen(
            mutual=True, allowPeers="uri:spiffe://hospital.example/ward3/*")
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            before = audit.finished()
            seen = yield threads.deferToThread(self.refusal, version, port)
            self.assertTrue(seen.startswith("SSLError"), f"{version}: {seen}")
            self.assertIn("BAD_CERTIFICATE", seen, f"{version}: {seen}")
            yield _waitUntil(lambda before=before: audit.finished() > before, SETTLE_TIMEOUT,
                             "the server's audit event")
            record = audit.records[-1]
            self.assertEqual((record["event"], record.get("reason")),
                             ("handshake.rejected", "identity_not_allowed"), f"{version}: {record}")
        self.assertEqual((factory.built, factory.made), (0, 0))
