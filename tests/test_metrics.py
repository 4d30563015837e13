"""
Tests for L{securetcp.metrics}: what the gate counts for a listener, the
audit records, reloads, certificate and CRL expiry, and the answers of
C{/metrics}, C{/healthz} and C{/readyz}, over connections made in memory.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from cryptography import x509
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest
from zope.interface.verify import verifyObject

from securetcp import buildPolicy
from securetcp._interfaces import IAuditSink, IGateMetrics
from securetcp._twistd.metricsservice import listenerLabel
from securetcp._twistd.service import SecureTCPService
from securetcp._twistd.tap import Options
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import PolicyError
from securetcp.identity import identityFromCertificate
from securetcp.metrics import CountingSink, SecureTCPMetrics

from ._iosim import connectEndpoints
from ._net import escape
from ._pki import sharedPKI
from ._recording import AuditRecorder, RecordingFactory

LISTENER = "mtls:6661"


def samples(metrics: SecureTCPMetrics) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """
    Every sample of C{metrics}' exposition, parsed by C{prometheus_client}:
    C{(name, sorted labels) -> value}.
    """
    from prometheus_client.exposition import generate_latest

    text = generate_latest(metrics.registry).decode("utf-8")
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def handshakes(outcome: str, reason: str = "") -> Tuple[str, Tuple[Tuple[str, str], ...]]:
    return ("securetcp_handshakes_total",
            (("listener", LISTENER), ("outcome", outcome), ("reason", reason)))


def perListener(name: str) -> Tuple[str, Tuple[Tuple[str, str], ...]]:
    return (name, (("listener", LISTENER),))


class _Sink:
    """
    An audit sink that writes (or fails to write) as told.
    """

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.records: List[Dict[str, Any]] = []

    def emit(self, record: Dict[str, Any]) -> bool:
        self.records.append(record)
        return self.ok

    def accepting(self) -> bool:
        return self.ok


class GateMetricsTests(SynchronousTestCase):
    """
    A server endpoint observed by a listener's metrics counts handshakes by
    outcome and reason, their duration, open connections and bytes.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.audit = AuditRecorder()
        self.metrics = SecureTCPMetrics(wallClock=lambda: 1_800_000_000.0)

    def connect(self, clientCert: Optional[str] = "client", **server: Any) -> Any:
        settings = dict(certKey=self.pki.path("server.pem"),
                        privateKey=self.pki.path("server.key"), caCerts=self.pki.path("ca.pem"))
        settings.update(server)
        endpoint = SecureServerEndpoint(self.clock, None, buildPolicy(**settings), mutual=True,
                                        clock=self.clock, emitter=self.audit.emitter())
        endpoint.observe(self.metrics.listener(LISTENER),
                         lambda sink: CountingSink(sink, self.metrics))
        self.endpoint = endpoint
        clientSettings: Dict[str, Any] = dict(caCerts=self.pki.path("ca.pem"))
        if clientCert:
            clientSettings.update(certKey=self.pki.path(f"{clientCert}.pem"),
                                  privateKey=self.pki.path(f"{clientCert}.key"))
        client = SecureClientEndpoint(self.clock, None, buildPolicy(**clientSettings),
                                      hostname="localhost", mutual=bool(clientCert),
                                      clock=self.clock, emitter=self.audit.emitter())
        self.serverApp = RecordingFactory(echo=True)
        self.clientApp = RecordingFactory()
        connection = connectEndpoints(endpoint, client, self.serverApp, self.clientApp,
                                      self.clock, greet=False)
        # a refused client's connect() fails; that is not what these tests check
        connection.clientGate.whenReady.addErrback(lambda failure: None)
        return connection

    def certificate(self, name: str) -> x509.Certificate:
        with open(self.pki.path(f"{name}.pem"), "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    def test_listenerProvidesInterface(self) -> None:
        """
        A listener's metrics provide L{IGateMetrics}; a L{CountingSink}
        provides L{IAuditSink}.
        """
        self.assertTrue(verifyObject(IGateMetrics, self.metrics.listener(LISTENER)))
        self.assertTrue(verifyObject(IAuditSink, CountingSink(_Sink(True), self.metrics)))
        self.assertIs(self.metrics.listener(LISTENER), self.metrics.listener(LISTENER))

    def test_acceptedCounted(self) -> None:
        """
        An admitted connection counts one accepted handshake (empty reason)
        with its duration, is an open connection until it closes, and its
        application bytes count each way.
        """
        connection = self.connect()
        self.clock.advance(0.02)
        connection.pump.flush()
        found = samples(self.metrics)
        self.assertEqual(found[handshakes("accepted")], 1.0)
        self.assertEqual(found[perListener("securetcp_handshake_duration_seconds_count")], 1.0)
        self.assertAlmostEqual(found[perListener("securetcp_handshake_duration_seconds_sum")],
                               0.02, places=6)
        self.assertEqual(found[perListener("securetcp_open_connections")], 1.0)

        self.clientApp.built[0].transport.write(b"x" * 100)
        connection.pump.flush()
        found = samples(self.metrics)
        self.assertEqual(found[perListener("securetcp_received_bytes_total")], 100.0)
        self.assertEqual(found[perListener("securetcp_sent_bytes_total")], 100.0)  # echo

        self.clientApp.built[0].transport.loseConnection()
        connection.pump.flush()
        found = samples(self.metrics)
        self.assertEqual(found[perListener("securetcp_open_connections")], 0.0)
        self.assertEqual(found[perListener("securetcp_received_bytes_total")], 100.0)
        self.assertEqual(found[perListener("securetcp_sent_bytes_total")], 100.0)

    def test_rejectedCounted(self) -> None:
        """
        A client without a certificate counts as a rejected handshake with
        its reason; nothing counts as accepted.
        """
        connection = self.connect(clientCert=None)
        connection.pump.flush()
        found = samples(self.metrics)
        self.assertEqual(found[handshakes("rejected", "no_client_certificate")], 1.0)
        self.assertEqual(found.get(handshakes("accepted")), 0.0)
        self.assertEqual(found[perListener("securetcp_open_connections")], 0.0)
        self.assertEqual(found[perListener("securetcp_handshake_duration_seconds_count")], 1.0)

    def test_messageRefusedCounted(self) -> None:
        """
        An admitted HL7 connection closed because its identity binding
        refused a later message counts in
        C{securetcp_messages_refused_total} by reason; its handshake stays
        accepted.
        """
        def message(facility: bytes) -> bytes:
            return (b"\x0bMSH|^~\\&|PUMP|" + facility
                    + b"|HIS|HOSP|20260101||ORU^R01|1|P|2.5\r\x1c\r")

        connection = self.connect(binding="hl7", clientAuth="required",
                                  bind="uri:spiffe://hospital.example/ward3/*, "
                                       "hl7SendingFacility=WARD3")
        connection.pump.flush()
        self.clientApp.built[0].transport.write(message(b"WARD3") + message(b"WARD9"))
        connection.pump.flush()
        found = samples(self.metrics)
        self.assertEqual(found[("securetcp_messages_refused_total",
                                (("listener", LISTENER),
                                 ("reason", "protocol_identity_mismatch")))], 1.0)
        self.assertEqual(found[handshakes("accepted")], 1.0)
        self.assertEqual(found[perListener("securetcp_open_connections")], 0.0)

    def test_noPeerInLabels(self) -> None:
        """
        No label carries the peer's address or identity.
        """
        connection = self.connect()
        connection.pump.flush()
        identity = identityFromCertificate(self.certificate("client"))
        peerNames = [*identity.commonName, *identity.uri, *identity.dns]
        self.assertTrue(peerNames, identity)
        connection = self.connect(clientCert=None)
        connection.pump.flush()
        for _name, labels in samples(self.metrics):
            for _key, value in labels:
                self.assertNotIn("127.0.0.1", value)
                self.assertNotIn("40404", value)
                for peerName in peerNames:
                    self.assertNotIn(peerName, value)

    def test_auditRecordsCounted(self) -> None:
        """
        The records of an observed endpoint count as written; a sink that
        fails counts them as failed.
        """
        connection = self.connect()
        connection.pump.flush()
        written = len([r for r in self.audit.records if r["role"] == "server"])
        found = samples(self.metrics)
        self.assertEqual(found[("securetcp_audit_records_total", (("result", "written"),))],
                         float(written))
        self.assertGreaterEqual(written, 1)
        failing = CountingSink(_Sink(False), self.metrics)
        self.assertFalse(failing.emit({"event": "connection.accepted"}))
        self.assertEqual(samples(self.metrics)[("securetcp_audit_records_total",
                                                (("result", "failed"),))], 1.0)

    def test_expiry(self) -> None:
        """
        The seconds to the notAfter of our certificate and of each trust
        anchor, and to the nextUpdate of a CRL, and the CRL's age, are
        reported for the listener.
        """
        crl = self.pki.crl()
        path = os.path.join(self.mktemp())
        with open(path, "wb") as f:
            f.write(crl)
        self.connect(crl=path)
        self.metrics.watchMaterials(LISTENER, lambda: self.endpoint.creator.materials)
        materials = self.endpoint.creator.materials
        now = 1_800_000_000.0
        found = samples(self.metrics)
        expiry = {labels: value for (name, labels), value in found.items()
                  if name == "securetcp_certificate_expiry_seconds"}
        leaf = materials.leaf
        own = [v for labels, v in expiry.items() if ("role", "own") in labels]
        self.assertEqual(own, [leaf.not_valid_after_utc.timestamp() - now])
        cas = [v for labels, v in expiry.items() if ("role", "ca") in labels]
        self.assertEqual(cas, [c.not_valid_after_utc.timestamp() - now
                               for c in materials.trust])
        [loaded] = materials.crls.crls
        issuer = (("issuer", loaded.issuer.rfc4514_string()), ("listener", LISTENER))
        self.assertEqual(found[("securetcp_crl_next_update_seconds", issuer)],
                         loaded.next_update_utc.timestamp() - now)
        self.assertEqual(found[("securetcp_crl_age_seconds", issuer)],
                         now - loaded.last_update_utc.timestamp())

    def test_reloadsCounted(self) -> None:
        """
        A reload of the twistd service counts by its result.
        """
        class Refusing:
            policy = None

            def reload(self) -> None:
                raise PolicyError("certKey", "x.pem", "cannot be read", "fix it")

        top = SecureTCPService(Clock(), None, _Sink(True), watchInterval=0,
                               metrics=self.metrics)
        self.assertTrue(top.reload())
        top.addSecureEndpoint(Refusing(), "mtls:6661")
        self.assertFalse(top.reload())
        found = samples(self.metrics)
        self.assertEqual(found[("securetcp_reloads_total", (("result", "ok"),))], 1.0)
        self.assertEqual(found[("securetcp_reloads_total", (("result", "refused"),))], 1.0)

    def test_ocsp(self) -> None:
        """
        OCSP answers count by status and source; the queries sent to
        responders are read from the checker.
        """
        class Checker:
            queries = 3

        listener = self.metrics.listener(LISTENER)
        listener.ocspAnswered("good (responder)")
        listener.ocspAnswered("good (responder)")
        listener.ocspAnswered("revoked (stapled)")
        listener.ocspAnswered("missing")
        self.metrics.watchOCSP(LISTENER, Checker())
        found = samples(self.metrics)

        def results(status: str, source: str) -> float:
            return found[("securetcp_ocsp_results_total", (
                ("listener", LISTENER), ("source", source), ("status", status)))]

        self.assertEqual(results("good", "responder"), 2.0)
        self.assertEqual(results("revoked", "stapled"), 1.0)
        self.assertEqual(results("missing", "none"), 1.0)
        self.assertEqual(found[perListener("securetcp_ocsp_queries_total")], 3.0)

    def test_listenerLabel(self) -> None:
        """
        The listener label of an endpoint string is its type and port:
        never a file name or a passphrase.
        """
        self.assertEqual(listenerLabel("mtls:6661:certKey=/etc/s.pem:passphrase=x"),
                         "mtls:6661")


def get(resource: Any, path: bytes) -> Tuple[int, bytes, bytes]:
    """
    GET C{path} (one segment) of C{resource}: the status code, content
    type and body.
    """
    request = DummyRequest([path])
    child = resource.getChildWithDefault(path, request)
    body = child.render(request)
    return (request.responseCode or 200,
            request.responseHeaders.getRawHeaders(b"content-type")[0], body)


class ResourceTests(SynchronousTestCase):
    """
    The resource serving C{/metrics}, C{/healthz} and C{/readyz}.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.now = 1_800_000_000.0
        self.metrics = SecureTCPMetrics(wallClock=lambda: self.now)
        self.problems: List[str] = []
        self.resource = self.metrics.resource(self.clock, lambda: self.problems)

    def test_metrics(self) -> None:
        """
        C{/metrics} is the exposition of C{prometheus_client}, with its
        content type.
        """
        self.metrics.listener(LISTENER).admitted(0.01)
        code, contentType, body = get(self.resource, b"metrics")
        self.assertEqual(code, 200)
        self.assertEqual(contentType, CONTENT_TYPE_LATEST.encode("ascii"))
        self.assertIn(b'securetcp_handshakes_total{listener="mtls:6661",outcome="accepted",'
                      b'reason=""} 1.0', body)

    def test_healthz(self) -> None:
        """
        C{/healthz} is 200 while the heartbeat beats, and 503 with the
        heartbeat's age once the reactor stopped turning for ten beats.
        """
        self.resource.heartbeat.start(1.0)
        self.clock.advance(5)
        code, _, body = get(self.resource, b"healthz")
        self.assertEqual((code, body), (200, b"ok: reactor heartbeat 0.0s old\n"))
        self.clock.rightNow += 12.5  # time passes, the reactor does not turn
        code, _, body = get(self.resource, b"healthz")
        self.assertEqual((code, body), (503, b"unhealthy: reactor heartbeat 12.5s old\n"))
        self.resource.heartbeat.stop()

    def test_readyz(self) -> None:
        """
        C{/readyz} is 200 without problems, and 503 with one reason a line
        otherwise.
        """
        self.assertEqual(get(self.resource, b"readyz")[::2], (200, b"ready\n"))
        self.problems.append("mtls:6661: not listening")
        self.assertEqual(get(self.resource, b"readyz")[::2],
                         (503, b"not ready: mtls:6661: not listening\n"))

    def test_readyzExpiredCertificate(self) -> None:
        """
        C{/readyz} is 503 when our certificate expired or a CRL is past its
        nextUpdate.
        """
        endpoint = SecureServerEndpoint(
            self.clock, None, buildPolicy(certKey=self.pki.path("server.pem"),
                                          privateKey=self.pki.path("server.key")),
            clock=self.clock, emitter=AuditRecorder().emitter())
        self.metrics.watchMaterials(LISTENER, lambda: endpoint.creator.materials)
        leaf = endpoint.creator.materials.leaf
        self.now = leaf.not_valid_before_utc.timestamp() + 1
        self.assertEqual(get(self.resource, b"readyz")[::2], (200, b"ready\n"))
        self.now = leaf.not_valid_after_utc.timestamp() + 1
        self.assertEqual(get(self.resource, b"readyz")[::2],
                         (503, b"not ready: mtls:6661: our certificate expired\n"))

    def test_readyzExpiredCRL(self) -> None:
        """
        C{/readyz} is 503 when a CRL in force is past its nextUpdate.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(self.pki.crl())
        endpoint = SecureServerEndpoint(
            self.clock, None, buildPolicy(certKey=self.pki.path("server.pem"),
                                          privateKey=self.pki.path("server.key"),
                                          caCerts=self.pki.path("ca.pem"), crl=path),
            mutual=True, clock=self.clock, emitter=AuditRecorder().emitter())
        self.metrics.watchMaterials(LISTENER, lambda: endpoint.creator.materials)
        [crl] = endpoint.creator.materials.crls.crls
        self.now = crl.next_update_utc.timestamp() + 1
        code, _, body = get(self.resource, b"readyz")
        self.assertEqual(code, 503)
        self.assertIn(b"not ready: mtls:6661: a CRL is past its nextUpdate\n", body)


class MetricsOptionTests(SynchronousTestCase):
    """
    C{--metrics} on the command line of C{twistd securetcp}.
    """

    def argv(self, *extra: str) -> List[str]:
        pki = sharedPKI()
        listen = (f"mtls:0:interface=127.0.0.1:certKey={escape(pki.path('server.pem'))}"
                  f":privateKey={escape(pki.path('server.key'))}"
                  f":caCerts={escape(pki.path('ca.pem'))}")
        return ["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1", *extra]

    def test_badEndpoint(self) -> None:
        """
        A C{--metrics} that is no endpoint string is a one-line usage error
        naming the option.
        """
        error = self.assertRaises(usage.UsageError, Options().parseOptions,
                                  self.argv("--metrics", "nonsense:1"))
        self.assertTrue(str(error).startswith("--metrics: "), str(error))
        self.assertNotIn("\n", str(error))

    def test_withWorkers(self) -> None:
        """
        C{--metrics} is accepted with C{--workers} above 1 (one endpoint
        for every worker: L{tests.test_metrics_multiprocess}).
        """
        options = Options(build=False)
        options.parseOptions(self.argv("--workers", "2", "--metrics", "tcp:0"))
        self.assertEqual((options.subOptions["workers"], options.subOptions["metrics"]),
                         (2, "tcp:0"))

    def test_built(self) -> None:
        """
        With C{--metrics}, the service counts its secure listener under the
        listener label C{mtls:PORT} and reloads, and serves the metrics.
        """
        options = Options()
        options.parseOptions(self.argv("--metrics", "tcp:0:interface=127.0.0.1"))
        top = options.service
        self.assertIsInstance(top.metrics, SecureTCPMetrics)  # type: ignore[union-attr]
        [endpoint] = top.secureEndpoints  # type: ignore[union-attr]
        self.assertEqual(endpoint.metrics, top.metrics.listener("mtls:0"))  # type: ignore
        self.assertEqual([type(s).__name__ for s in top],  # type: ignore[union-attr]
                         ["ListeningService", "MetricsService"])
