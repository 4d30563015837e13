"""
Tests for expiry warnings: the pure judge (L{securetcp.compliance.expiry}),
the daily check of C{twistd securetcp} (L{securetcp._twistd.expiry}) on a
L{Clock}, its C{--expiry-warn} option, the audit records, C{python -m
securetcp check}'s C{expiry:} lines, and a real C{twistd securetcp}
auditing a certificate that expires soon.
"""

from __future__ import annotations

import datetime
import io
import json
import os
from types import SimpleNamespace
from typing import Any, Dict, List

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp._pki.authority import Authority, Validity, certificatePEM, keyPEM, newKey
from securetcp._twistd.expiry import ExpiryCheck
from securetcp._twistd.tap import Options
from securetcp.audit.emitter import AuditEmitter
from securetcp.compliance.expiry import (
    CA,
    CERTIFICATE,
    CRL,
    DAY,
    Deadline,
    dueWarnings,
    expiryReport,
    materialDeadlines,
    parseThresholds,
)
from securetcp.config import buildPolicy

from ._net import escape
from ._pki import testName
from ._twistd import TapProcessMixin

#: a fixed moment for the pure tests
NOW = 1_800_000_000.0
MOMENT = datetime.datetime.fromtimestamp(NOW, datetime.UTC)


def _deadline(days: float, kind: str = CERTIFICATE, subject: str = "CN=x") -> Deadline:
    return Deadline(kind, subject, NOW + days * DAY)


class JudgeTests(SynchronousTestCase):
    """
    L{dueWarnings}: what is due at a time for some deadlines.
    """

    def test_thresholds(self) -> None:
        """
        A deadline within the largest threshold is due, naming the smallest
        threshold it is within and the whole days left (rounded down);
        one further away is not.
        """
        deadlines = [_deadline(31), _deadline(30), _deadline(20), _deadline(6.5),
                     _deadline(0.5)]
        due = dueWarnings(deadlines, NOW, (30, 7, 1))
        self.assertEqual([(w.daysLeft, w.threshold) for w in due],
                         [(0, 1), (6, 7), (20, 30), (30, 30)])

    def test_passed(self) -> None:
        """
        A deadline already passed stays due, with negative days.
        """
        [warning] = dueWarnings([_deadline(-2, CRL)], NOW)
        self.assertEqual((warning.daysLeft, warning.threshold), (-2, 1))
        self.assertIn("expired 2 day(s) ago", warning.describe())

    def test_none(self) -> None:
        """
        Without thresholds nothing is ever due.
        """
        self.assertEqual(dueWarnings([_deadline(-2), _deadline(1)], NOW, ()), [])

    def test_parseThresholds(self) -> None:
        """
        C{30,7,1} (in any order) is the thresholds largest first; C{0}
        alone turns warnings off; anything else is a L{ValueError}.
        """
        self.assertEqual(parseThresholds("30,7,1"), (30, 7, 1))
        self.assertEqual(parseThresholds("7, 30"), (30, 7))
        self.assertEqual(parseThresholds("0"), ())
        for bad in ("", "thirty", "7,0", "-1", "1.5"):
            self.assertRaises(ValueError, parseThresholds, bad)

    def test_materialDeadlines(self) -> None:
        """
        Our certificate (the chain's first), each CA once (from the chain
        and the trust anchors) and each CRL's nextUpdate are deadlines.
        """
        ca, leaf, crl = _materials(leafDays=5, crlDays=2)
        deadlines = materialDeadlines((leaf, ca), (ca,), (crl,))
        self.assertEqual([(d.kind, d.subject) for d in deadlines], [
            (CERTIFICATE, "CN=device.example,O=securetcp tests"),
            (CA, "CN=expiry CA,O=securetcp tests"),
            (CRL, "CN=expiry CA,O=securetcp tests")])
        self.assertEqual(deadlines[0].at, NOW + 5 * DAY)
        self.assertEqual(deadlines[2].at, NOW + 2 * DAY)

    def test_report(self) -> None:
        """
        L{expiryReport} lists every deadline soonest first, with its days
        left and the threshold it is within, if any.
        """
        report = expiryReport([_deadline(400, CA), _deadline(5)], NOW)
        self.assertEqual([(e["kind"], e["daysLeft"], e["warning"]) for e in report],
                         [(CERTIFICATE, 5, 7), (CA, 400, None)])


def _materials(leafDays: int, crlDays: int, caDays: int = 3650) -> Any:
    """
    A CA, a certificate it issued expiring C{leafDays} after L{NOW}, and
    its CRL whose nextUpdate is C{crlDays} after L{NOW}.
    """
    ca = Authority.create(testName("expiry CA"), validity=Validity(
        MOMENT - datetime.timedelta(days=1), MOMENT + datetime.timedelta(days=caDays)))
    leaf = ca.issue(testName("device.example"), [ExtendedKeyUsageOID.SERVER_AUTH],
                    [x509.DNSName("device.example")], newKey(),
                    Validity(MOMENT - datetime.timedelta(days=1),
                             MOMENT + datetime.timedelta(days=leafDays))).certificate
    crl = ca.crl(validity=Validity(MOMENT - datetime.timedelta(days=1),
                                   MOMENT + datetime.timedelta(days=crlDays)))
    return ca.certificate, leaf, crl


class _Sink:
    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def emit(self, record: Dict[str, Any]) -> bool:
        self.records.append(record)
        return True


def _endpoint(leafDays: int, crlDays: int) -> Any:
    ca, leaf, crl = _materials(leafDays, crlDays)
    materials = SimpleNamespace(chain=(leaf,), trust=(ca,), crls=SimpleNamespace(crls=(crl,)))
    return SimpleNamespace(creator=SimpleNamespace(materials=materials),
                           policy=buildPolicy(name="hl7-inbound"))


class ExpiryCheckTests(SynchronousTestCase):
    """
    L{ExpiryCheck} audits what is due at start and once a day on its clock.
    """

    def test_daily(self) -> None:
        """
        At start and then every day, every due warning is audited, until
        stopped; a deadline entering a threshold later is audited from then.
        """
        clock = Clock()
        clock.advance(NOW)
        sink = _Sink()
        endpoint = _endpoint(leafDays=10, crlDays=2)
        check = ExpiryCheck(clock, sink, lambda: [endpoint], (7, 1))
        check.start()
        self.assertEqual([(r["event"], r["daysLeft"], r["threshold"]) for r in sink.records],
                         [("revocation.crl_expiring", 2, 7)])
        clock.advance(DAY)
        clock.advance(DAY)
        clock.advance(DAY)
        self.assertEqual([(r["event"], r["daysLeft"], r["threshold"]) for r in sink.records], [
            ("revocation.crl_expiring", 2, 7),
            ("revocation.crl_expiring", 1, 1),
            ("revocation.crl_expiring", 0, 1),
            ("revocation.crl_expiring", -1, 1),
            ("certificate.expiring", 7, 7)])
        certificate = sink.records[4]
        self.assertEqual((certificate["kind"], certificate["subject"], certificate["policy"],
                          certificate["notAfter"]),
                         ("certificate", "CN=device.example,O=securetcp tests", "hl7-inbound",
                          "2027-01-25T08:00:00.000000Z"))
        check.stop()
        clock.advance(10 * DAY)
        self.assertEqual(len(sink.records), 5)

    def test_readsWhatIsInForce(self) -> None:
        """
        Each check reads the materials in force then: after a reload put a
        renewed certificate in, the warnings about the old one stop.
        """
        clock = Clock()
        clock.advance(NOW)
        sink = _Sink()
        endpoint = _endpoint(leafDays=5, crlDays=60)
        check = ExpiryCheck(clock, sink, lambda: [endpoint], (30, 7, 1))
        check.start()
        self.addCleanup(check.stop)
        endpoint.creator.materials = _endpoint(leafDays=400, crlDays=60).creator.materials
        clock.advance(DAY)
        self.assertEqual([(r["event"], r["daysLeft"]) for r in sink.records],
                         [("certificate.expiring", 5)])

    def test_off(self) -> None:
        """
        Without thresholds the check never runs.
        """
        clock = Clock()
        clock.advance(NOW)
        sink = _Sink()
        check = ExpiryCheck(clock, sink, lambda: [_endpoint(leafDays=1, crlDays=1)], ())
        check.start()
        clock.advance(DAY)
        check.stop()
        self.assertEqual(sink.records, [])

    def test_logWarning(self) -> None:
        """
        Through an L{AuditEmitter}, a warning is a log event at C{warn}
        level saying what expires and when.
        """
        events: List[Dict[str, Any]] = []
        clock = Clock()
        clock.advance(NOW)
        emitter = AuditEmitter(logger=Logger(observer=events.append))
        ExpiryCheck(clock, emitter, lambda: [_endpoint(leafDays=3, crlDays=60)], (30, 7, 1)).check()
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["securetcp_event"], "certificate.expiring")
        self.assertEqual(formatEvent(event),
                         "securetcp: certificate CN=device.example,O=securetcp tests expires "
                         "in 3 day(s) (2027-01-18T08:00:00.000000Z; certificate)")


def _terminate(*extra: str) -> Any:
    options = Options(build=False)
    options.parseOptions(["terminate", "--listen", "mtls:6661", "--backend",
                          "tcp:127.0.0.1:2575", *extra])
    return options.subOptions


class OptionTests(SynchronousTestCase):
    """
    C{--expiry-warn} of C{twistd securetcp}.
    """

    def test_default(self) -> None:
        """
        By default warnings come at 30, 7 and 1 days.
        """
        self.assertEqual(_terminate()["expiry-warn"], (30, 7, 1))

    def test_given(self) -> None:
        """
        C{--expiry-warn 14,3} warns at 14 and 3 days; C{0} never.
        """
        self.assertEqual(_terminate("--expiry-warn", "3,14")["expiry-warn"], (14, 3))
        self.assertEqual(_terminate("--expiry-warn", "0")["expiry-warn"], ())

    def test_bad(self) -> None:
        """
        A bad value is a usage error naming the option.
        """
        e = self.assertRaises(usage.UsageError, _terminate, "--expiry-warn", "soon")
        self.assertIn("--expiry-warn", str(e))


def _writeSoonExpiring(directory: str, leafDays: int) -> Dict[str, str]:
    """
    A CA and a localhost server certificate expiring in C{leafDays} days
    from now, written to C{directory}.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca = Authority.create(testName("expiry CA"))
    key = newKey()
    leaf = ca.issue(testName("localhost"), [ExtendedKeyUsageOID.SERVER_AUTH],
                    [x509.DNSName("localhost")], key,
                    Validity(now - datetime.timedelta(days=1),
                             now + datetime.timedelta(days=leafDays))).certificate
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "soon.pem", "soon.key")}
    for name, data in (("ca.pem", certificatePEM(ca.certificate)),
                       ("soon.pem", certificatePEM(leaf)), ("soon.key", keyPEM(key))):
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths


class CheckCommandTests(SynchronousTestCase):
    """
    C{python -m securetcp check} shows the days left.
    """

    def test_expiryLines(self) -> None:
        """
        The text output lists our certificate (within a threshold: a
        warning) and the CA with their days left; C{--json} carries the
        same under C{check.expiry}.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        paths = _writeSoonExpiring(directory, leafDays=5)
        target = (f"mtls:6661:certKey={escape(paths['soon.pem'])}"
                  f":privateKey={escape(paths['soon.key'])}:caCerts={escape(paths['ca.pem'])}")
        out = io.StringIO()
        main(["check", target], out)
        text = out.getvalue()
        self.assertIn("expiry:\n  certificate CN=localhost,O=securetcp tests: ", text)
        self.assertIn(", 4 day(s) left  WARNING (within 7 days)", text)
        self.assertRegex(text, r"  CA CN=expiry CA,O=securetcp tests: \S+, 364[89] day\(s\) left\n")
        out = io.StringIO()
        main(["check", "--json", target], out)
        expiry = json.loads(out.getvalue())["check"]["expiry"]
        self.assertEqual([(e["kind"], e["warning"]) for e in expiry],
                         [("certificate", 7), ("ca", None)])


class TwistdExpiryTests(TapProcessMixin, SynchronousTestCase):
    """
    A real C{twistd securetcp terminate} whose certificate expires soon.
    """

    def test_auditedAtStart(self) -> None:
        """
        A certificate expiring in 5 days is audited (and logged) as
        C{certificate.expiring} within the 7-day threshold when the
        service starts.
        """
        paths = _writeSoonExpiring(self.workdir, leafDays=5)
        backendPort, _, _ = self.backend()

        def listen(port: int) -> List[str]:
            return ["--listen", f"mtls:{port}:interface=127.0.0.1"
                    f":certKey={escape(paths['soon.pem'])}:privateKey={escape(paths['soon.key'])}"
                    f":caCerts={escape(paths['ca.pem'])}"]

        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, listen=listen)
        [record] = self.waitForEvent("certificate.expiring", kind="certificate")
        self.assertEqual((record["daysLeft"], record["threshold"]), (4, 7))
        twistd.waitFor(b"expires in 4 day(s)", what="the log warning")
