"""
Tests for the audit export's options of C{twistd securetcp}
(L{securetcp._twistd.export}): on the command line and in C{--config}
files, every problem reported at parse time naming the option and the
fix, and the export service built beside the audit file.
"""

from __future__ import annotations

import os
from typing import Any, List

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from securetcp._twistd import tap as _tap
from securetcp._twistd.export import EXPORT_KEYS, EXPORT_PARAMETERS, forWorker, parseSize
from securetcp._twistd.workers import WorkerRole
from securetcp.auditexport import AuditSyslogExport
from securetcp.errors import ServiceConfigError

from ._net import escape
from ._pki import TestPKI


class ExportOptionTests(SynchronousTestCase):
    """
    C{--audit-syslog} and its companions on the command line.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(os.path.join(self.base, "pki"))
        self.audit = os.path.join(self.base, "audit.jsonl")
        self.policy = os.path.join(self.base, "syslog-client.toml")
        with open(self.policy, "w") as f:
            f.write(f'certKey = "{self.pki.path("client.pem")}"\n'
                    f'privateKey = "{self.pki.path("client.key")}"\n'
                    f'caCerts = "{self.pki.path("ca.pem")}"\n')

    def argv(self, *extra: str, audit: bool = True) -> List[str]:
        listen = (f"mtls:0:interface=127.0.0.1:certKey={escape(self.pki.path('server.pem'))}"
                  f":privateKey={escape(self.pki.path('server.key'))}"
                  f":caCerts={escape(self.pki.path('ca.pem'))}")
        return (["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1"]
                + (["--audit-log", self.audit] if audit else []) + list(extra))

    def refused(self, *extra: str, audit: bool = True) -> str:
        e = self.assertRaises(usage.UsageError, _tap.Options().parseOptions,
                              self.argv(*extra, audit=audit))
        return str(e)

    def build(self, *extra: str) -> Any:
        options = _tap.Options()
        options.parseOptions(self.argv(*extra))
        return options.service

    def exports(self, service: Any) -> List[AuditSyslogExport]:
        found = [s for s in service if isinstance(s, AuditSyslogExport)]
        for export in found:
            self.addCleanup(export.queue.close)
        return found

    def test_built(self) -> None:
        """
        With C{--audit-syslog} and a client policy, the service has an
        export of the audit file, queueing next to it by default.
        """
        service = self.build("--audit-syslog", "tls://localhost:6514",
                             "--audit-syslog-policy", self.policy,
                             "--audit-syslog-node", "mri-gw-1")
        [export] = self.exports(service)
        self.assertEqual(export.queue.directory, self.audit + ".export")
        self.assertEqual(export.queue.maxBytes, 64 * 2**20)
        self.assertEqual(export.feed.collector, "tls://localhost:6514")
        self.assertTrue(export.endpoint.mutual)

    def test_queueOptions(self) -> None:
        """
        C{--audit-syslog-queue} and C{--audit-syslog-queue-size} set the
        queue's directory and bound.
        """
        queue = os.path.join(self.base, "spool")
        service = self.build("--audit-syslog", "tcp://127.0.0.1:514",
                             "--audit-syslog-queue", queue,
                             "--audit-syslog-queue-size", "2M")
        [export] = self.exports(service)
        self.assertEqual((export.queue.directory, export.queue.maxBytes), (queue, 2 * 2**20))

    def test_noExport(self) -> None:
        """
        Without C{--audit-syslog} there is no export.
        """
        self.assertEqual(self.exports(self.build()), [])

    def test_errors(self) -> None:
        """
        Each problem is one usage error naming the option and the fix.
        """
        blocker = os.path.join(self.base, "file")
        with open(blocker, "w"):
            pass
        tls = ["--audit-syslog", "tls://localhost:6514"]
        cases = [
            ((*tls, "--audit-syslog-policy", self.policy), False,
             ["--audit-syslog", "--audit-log FILE"]),
            (("--audit-syslog", "syslog.example:6514"), True,
             ["--audit-syslog", "tls://HOST:PORT"]),
            (tls, True, ["--audit-syslog-policy", "needs a client policy file"]),
            ((*tls, "--audit-syslog-policy", os.path.join(self.base, "nope.toml")), True,
             ["--audit-syslog-policy", "nope.toml"]),
            ((*tls, "--audit-syslog-policy", self.policy, "--audit-syslog-format", "cef"), True,
             ["--audit-syslog-format", "json or atna"]),
            ((*tls, "--audit-syslog-policy", self.policy, "--audit-syslog-queue-size", "lots"),
             True, ["--audit-syslog-queue-size", "64M"]),
            ((*tls, "--audit-syslog-policy", self.policy, "--audit-syslog-node", "two words"),
             True, ["--audit-syslog-node"]),
            ((*tls, "--audit-syslog-policy", self.policy, "--audit-syslog-queue",
              os.path.join(blocker, "q")), True, ["--audit-syslog-queue", "cannot be created"]),
            (("--audit-syslog-node", "n1"), True, ["--audit-syslog-node", "audit-syslog"]),
        ]
        for extra, audit, words in cases:
            message = self.refused(*extra, audit=audit)
            for word in words:
                self.assertIn(word, message, (extra, message))

    def test_companionsWithoutCollector(self) -> None:
        """
        Every C{--audit-syslog-*} option given without C{--audit-syslog} is
        refused, naming the option and the fix, rather than silently
        ignored (also those with a default: C{--audit-syslog-format},
        C{--audit-syslog-queue-size}).
        """
        values = {"--audit-syslog-policy": self.policy, "--audit-syslog-format": "json",
                  "--audit-syslog-node": "gw-1", "--audit-syslog-site": "ward-3",
                  "--audit-syslog-queue": os.path.join(self.base, "spool"),
                  "--audit-syslog-queue-size": "64M"}
        self.assertEqual(sorted(values), sorted(f"--{p[0]}" for p in EXPORT_PARAMETERS
                                                if p[0] != "audit-syslog"))
        for option, value in values.items():
            message = self.refused(option, value)
            self.assertTrue(message.startswith(f"{option}: applies to the audit export only"),
                            message)
            self.assertIn("--audit-syslog on the command line", message)

    def test_workers(self) -> None:
        """
        With C{--workers}, each process exports its own audit file
        (C{FILE.worker-K}) as the node C{NODE/worker-K}, with its own queue.
        """
        options = _tap.Options(build=False, worker=WorkerRole(1, 2, ()))
        options.parseOptions(self.argv("--workers", "2", "--audit-syslog", "tcp://127.0.0.1:514",
                                       "--audit-syslog-node", "gw"))
        service = _tap.makeService(options, MemoryReactorClock())
        [export] = self.exports(service)
        self.assertEqual(export._writer, self.audit + ".worker-1")
        self.assertEqual(export.queue.directory, self.audit + ".worker-1.export")
        settings = options.subOptions["export"]
        self.assertEqual(forWorker(settings, 3, self.audit + ".worker-3"),
                         attrs.evolve(settings, auditLog=self.audit + ".worker-3",
                                      node="gw/worker-3",
                                      queue=self.audit + ".worker-3.export"))
        given = attrs.evolve(settings, queue="/spool/export")
        self.assertEqual(forWorker(given, 3, self.audit + ".worker-3").queue,
                         "/spool/export/worker-3")

    def test_sizes(self) -> None:
        """
        A size is bytes, or a number with K, M or G.
        """
        self.assertEqual([parseSize(v) for v in ("65536", "64K", "64M", "1G", "2mb", 70000)],
                         [65536, 65536, 64 * 2**20, 2**30, 2 * 2**20, 70000])
        for bad in ("", "M", "-1", "1.5M", True):
            self.assertRaises(ValueError, parseSize, bad)


class ExportConfigTests(SynchronousTestCase):
    """
    The same keys at the top level of a C{--config} file.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(os.path.join(self.base, "pki"))
        with open(os.path.join(self.base, "client.toml"), "w") as f:
            f.write('certKey = "pki/client.pem"\nprivateKey = "pki/client.key"\n'
                    'caCerts = "pki/ca.pem"\n')

    def config(self, top: str) -> str:
        path = os.path.join(self.base, "securetcp.toml")
        with open(path, "w") as f:
            f.write(top + '\naudit-log = "audit.jsonl"\n\n[[listener]]\nmode = "terminate"\n'
                    f'listen = "mtls:0:interface=127.0.0.1:certKey={self.pki.path("server.pem")}'
                    f':privateKey={self.pki.path("server.key")}:caCerts={self.pki.path("ca.pem")}"'
                    '\nbackend = "tcp:127.0.0.1:1"\n')
        return path

    def test_built(self) -> None:
        """
        The keys build the export; its paths are taken from the file's
        directory.
        """
        path = self.config('audit-syslog = "tls://localhost:6514"\n'
                           'audit-syslog-policy = "client.toml"\n'
                           'audit-syslog-queue = "spool"\naudit-syslog-queue-size = "1M"\n'
                           'audit-syslog-node = "gw-7"\n')
        options = _tap.Options(build=False)
        options.parseOptions(["--config", path])
        service = _tap.makeService(options, MemoryReactorClock())
        [export] = [s for s in service if isinstance(s, AuditSyslogExport)]
        self.addCleanup(export.queue.close)
        self.assertEqual(export.queue.directory, os.path.join(self.base, "spool"))
        self.assertEqual(export.queue.maxBytes, 2**20)

    def test_keysWithoutCollector(self) -> None:
        """
        Every C{audit-syslog-*} key of a file without C{audit-syslog} is
        refused, naming the file, the key and the fix, rather than
        silently ignored.
        """
        values = {"audit-syslog-policy": "client.toml", "audit-syslog-format": "atna",
                  "audit-syslog-node": "gw-1", "audit-syslog-site": "ward-3",
                  "audit-syslog-queue": "spool", "audit-syslog-queue-size": "1M"}
        self.assertEqual(sorted(values), sorted(set(EXPORT_KEYS) - {"audit-syslog"}))
        for key, value in values.items():
            options = _tap.Options(build=False)
            options.parseOptions(["--config", self.config(f'{key} = "{value}"\n')])
            e = self.assertRaises(ServiceConfigError, _tap.makeService, options,
                                  MemoryReactorClock())
            self.assertEqual(e.key, key)
            self.assertIn("securetcp.toml", str(e))
            self.assertIn("applies to the audit export only", e.problem)
            self.assertIn("audit-syslog in --config", e.fix)

    def test_errors(self) -> None:
        """
        A problem names the file and the key.
        """
        cases = [
            ('audit-syslog = "udp://x:514"\n', ["securetcp.toml", "'audit-syslog'",
                                                "tls://HOST:PORT"]),
            ('audit-syslog = "tls://localhost:6514"\naudit-syslog-policy = "nope.toml"\n',
             ["'audit-syslog-policy'", "nope.toml"]),
            ('audit-syslog = "tls://localhost:6514"\naudit-syslog-policy = "client.toml"\n'
             'audit-syslog-queue-size = true\n', ["'audit-syslog-queue-size'"]),
        ]
        for top, words in cases:
            options = _tap.Options(build=False)
            options.parseOptions(["--config", self.config(top)])
            e = self.assertRaises(ServiceConfigError, _tap.makeService, options,
                                  MemoryReactorClock())
            for word in words:
                self.assertIn(word, str(e), top)
