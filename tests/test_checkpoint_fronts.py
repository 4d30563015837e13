# -*- test-case-name: tests.test_checkpoint_fronts -*-
"""
Tests for the audit checkpoint options outside the writer's own keywords:
the C{audit-checkpoint-*} keys of a C{twistd securetcp --config} file, the
C{auditCheckpoint*} arguments next to C{auditLog=} in C{securessl:}/C{mtls:}
strings, and C{--audit-checkpoint-key} read while twistd parses; each
problem named with the key or argument and the fix, and real C{twistd
securetcp} processes whose chains carry checkpoints that C{python -m
securetcp audit verify --checkpoint-key PUB} verifies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict, List

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from securetcp._twistd import tap as _tap
from securetcp._twistd.config import loadServiceConfig
from securetcp.audit.file import auditLogObserver, globalAuditFiles
from securetcp.errors import EndpointArgumentError, ServiceConfigError

from ._net import escape
from ._pki import TestPKI
from ._programs import TWISTD, subprocessEnvironment
from ._twistd import START_TIMEOUT, TapProcessMixin, auditEvents, auditRecords, blockUntil


def writeKeys(directory: str, name: str) -> List[str]:
    """
    An Ed25519 key pair as PEM files C{NAME.key} and C{NAME.pub}.
    """
    key = Ed25519PrivateKey.generate()
    paths = [os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pub")]
    with open(paths[0], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(paths[1], "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return paths


def verifyWithKey(test: SynchronousTestCase, public: str, path: str) -> str:
    """
    Run C{python -m securetcp audit verify --checkpoint-key PUBLIC PATH},
    assert that it finds the chain intact, and give its output.
    """
    result = subprocess.run([sys.executable, "-m", "securetcp", "audit", "verify",
                             "--checkpoint-key", public, path], capture_output=True,
                            env=subprocessEnvironment(), timeout=START_TIMEOUT)
    out = (result.stdout + result.stderr).decode()
    test.assertEqual(result.returncode, 0, out)
    test.assertIn("INTACT", out)
    return out


class _Nothing(Protocol):
    pass


class ConfigKeyTests(SynchronousTestCase):
    """
    The C{audit-checkpoint-*} keys of a C{--config} file.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.key, self.public = writeKeys(self.base, "checkpoint")

    def load(self, top: str) -> Any:
        path = os.path.join(self.base, "securetcp.toml")
        with open(path, "w") as f:
            f.write(top + '\n[[listener]]\nmode = "terminate"\nlisten = "mtls:6661"\n'
                    'backend = "tcp:127.0.0.1:2575"\n')
        return loadServiceConfig(path)

    def test_given(self) -> None:
        """
        The key (taken from the file's directory) and the numbers reach the
        audit file's writer options; without them there are none.
        """
        config = self.load('audit-log = "a.jsonl"\naudit-checkpoint-key = "checkpoint.key"\n'
                           'audit-checkpoint-every = 5\naudit-checkpoint-interval = 2.5\n')
        self.assertEqual(config.auditOptions, {"checkpointKey": self.key, "checkpointEvery": 5,
                                               "checkpointInterval": 2.5})
        config = self.load('audit-log = "a.jsonl"\naudit-checkpoint-key = "checkpoint.key"\n')
        self.assertEqual(config.auditOptions, {"checkpointKey": self.key, "checkpointEvery": 100,
                                               "checkpointInterval": 60.0})
        self.assertEqual(self.load('audit-log = "a.jsonl"\n').auditOptions, {})

    def test_refused(self) -> None:
        """
        Each problem is a L{ServiceConfigError} naming the file, the key and
        the fix: no audit file, numbers without the key, a key file that is
        missing or not an Ed25519 private key, numbers quoted or out of
        range.
        """
        key = 'audit-log = "a.jsonl"\naudit-checkpoint-key = "checkpoint.key"\n'
        cases = [
            ('audit-checkpoint-key = "checkpoint.key"\n', "audit-checkpoint-key", "audit-log"),
            ('audit-log = "a.jsonl"\naudit-checkpoint-every = 5\n', "audit-checkpoint-every",
             "give audit-checkpoint-key too"),
            ('audit-log = "a.jsonl"\naudit-checkpoint-interval = 5\n',
             "audit-checkpoint-interval", "give audit-checkpoint-key too"),
            ('audit-log = "a.jsonl"\naudit-checkpoint-key = "nope.key"\n',
             "audit-checkpoint-key", "readable PEM Ed25519 private key"),
            ('audit-log = "a.jsonl"\naudit-checkpoint-key = "checkpoint.pub"\n',
             "audit-checkpoint-key", "openssl genpkey -algorithm ed25519"),
            ('audit-log = "a.jsonl"\naudit-checkpoint-key = 3\n', "audit-checkpoint-key",
             "path string"),
            (key + 'audit-checkpoint-every = "5"\n', "audit-checkpoint-every", "unquoted"),
            (key + "audit-checkpoint-every = 0\n", "audit-checkpoint-every", "at least 1"),
            (key + "audit-checkpoint-interval = 0\n", "audit-checkpoint-interval",
             "more than 0"),
            (key + "audit-checkpoint-interval = true\n", "audit-checkpoint-interval",
             "more than 0"),
        ]
        for top, name, fix in cases:
            e = self.assertRaises(ServiceConfigError, self.load, top)
            self.assertEqual((e.key, e.listener), (name, None), top)
            self.assertIn(fix, str(e), top)
            self.assertIn("securetcp.toml", str(e))
        e = self.assertRaises(ServiceConfigError, self.load,
                              'audit-log = "a.jsonl"\naudit-checkpoint-key = "nope.key"\n')
        self.assertIn(os.path.join(self.base, "nope.key"), str(e))


class CommandLineKeyTests(SynchronousTestCase):
    """
    C{--audit-checkpoint-key} is read while twistd parses the options.
    """

    def test_badKeyFile(self) -> None:
        """
        A key file that is missing, or not an Ed25519 private key, is a
        usage error naming C{--audit-checkpoint-key}, the file and the fix,
        before anything starts.
        """
        base = os.path.abspath(self.mktemp())
        pki = TestPKI.create(base)
        _, public = writeKeys(base, "checkpoint")
        listen = (f"mtls:0:interface=127.0.0.1:certKey={escape(pki.path('server.pem'))}"
                  f":privateKey={escape(pki.path('server.key'))}"
                  f":caCerts={escape(pki.path('ca.pem'))}")
        for key, fix in [(os.path.join(base, "nope.key"), "readable PEM"),
                         (public, "openssl genpkey")]:
            e = self.assertRaises(usage.UsageError, _tap.Options().parseOptions,
                                  ["terminate", "--listen", listen, "--backend",
                                   "tcp:127.0.0.1:1", "--audit-log",
                                   os.path.join(base, "audit.jsonl"),
                                   "--audit-checkpoint-key", key])
            self.assertTrue(str(e).startswith(f"--audit-checkpoint-key: {key}: "), str(e))
            self.assertIn(fix, str(e))


class CommandLineNumberTests(SynchronousTestCase):
    """
    C{--audit-checkpoint-every} and C{--audit-checkpoint-interval} mean
    something only with C{--audit-checkpoint-key}.
    """

    def parse(self, *extra: str) -> Any:
        from securetcp._twistd.options import SecureTCPOptions

        options = SecureTCPOptions()
        options.parseOptions(["terminate", "--listen", "mtls:6661", "--backend",
                              "tcp:127.0.0.1:2575", "--audit-log", "a.jsonl", *extra])
        return options.subOptions

    def test_withoutKey(self) -> None:
        """
        Either number without the key is a usage error naming it and the
        fix, rather than silently ignored.
        """
        for name in ("--audit-checkpoint-every", "--audit-checkpoint-interval"):
            e = self.assertRaises(usage.UsageError, self.parse, name, "5")
            self.assertTrue(str(e).startswith(f"{name} applies to signed checkpoints only"))
            self.assertIn("--audit-checkpoint-key FILE", str(e))

    def test_withKey(self) -> None:
        """
        With the key, the numbers are checked (whole records from 1, seconds
        above 0) and default to 100 and 60.
        """
        key = ("--audit-checkpoint-key", "k.pem")
        sub = self.parse(*key)
        self.assertEqual((sub["audit-checkpoint-every"], sub["audit-checkpoint-interval"]),
                         (100, 60.0))
        for bad in (["--audit-checkpoint-every", "0"], ["--audit-checkpoint-every", "x"],
                    ["--audit-checkpoint-interval", "0"], ["--audit-checkpoint-interval", "-1"]):
            e = self.assertRaises(usage.UsageError, self.parse, *key, *bad)
            self.assertIn(bad[0], str(e))
            self.assertNotIn("signed checkpoints only", str(e))


class EndpointArgumentTests(SynchronousTestCase):
    """
    C{auditCheckpointKey}, C{auditCheckpointEvery} and
    C{auditCheckpointInterval} next to C{auditLog=}.
    """

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(self.base)
        self.key, self.public = writeKeys(self.base, "checkpoint")
        self.audit = os.path.join(self.base, "audit.jsonl")
        self.reactor = MemoryReactorClock()

    def server(self, extra: str) -> Any:
        return serverFromString(
            self.reactor, f"mtls:6661:interface=127.0.0.1"
            f":certKey={escape(self.pki.path('server.pem'))}"
            f":privateKey={escape(self.pki.path('server.key'))}"
            f":caCerts={escape(self.pki.path('ca.pem'))}" + extra)

    def test_serverCheckpoints(self) -> None:
        """
        A server string's writer signs a checkpoint every
        C{auditCheckpointEvery} records, and at close; the chain verifies
        with the public key.
        """
        endpoint = self.server(f":auditLog={escape(self.audit)}"
                               f":auditCheckpointKey={escape(self.key)}"
                               ":auditCheckpointEvery=1:auditCheckpointInterval=30")
        writer = auditLogObserver(self.audit)
        self.assertEqual((writer.checkpointEvery, writer.checkpointInterval), (1, 30.0))
        endpoint.listen(Factory.forProtocol(_Nothing))
        writer.close()
        globalAuditFiles.release(writer)
        events = [r["event"] for r in auditRecords(self.audit)]
        self.assertIn("policy.loaded", events)
        self.assertGreaterEqual(events.count("chain.checkpoint"), 2)
        self.assertEqual(events[-1], "chain.closed")
        verifyWithKey(self, self.public, self.audit)

    def test_client(self) -> None:
        """
        A client string takes the same arguments.
        """
        clientFromString(self.reactor, f"mtls:localhost:6661:caCerts={escape(self.pki.path('ca.pem'))}"
                         f":certKey={escape(self.pki.path('client.pem'))}"
                         f":privateKey={escape(self.pki.path('client.key'))}"
                         f":auditLog={escape(self.audit)}"
                         f":auditCheckpointKey={escape(self.key)}:auditCheckpointEvery=7")
        writer = auditLogObserver(self.audit)
        self.addCleanup(globalAuditFiles.release, writer)
        self.addCleanup(globalAuditFiles.release, writer)
        self.assertEqual(writer.checkpointEvery, 7)

    def test_refused(self) -> None:
        """
        Each problem is an L{EndpointArgumentError} naming the argument and
        the fix, at parse time: no C{auditLog}, numbers without the key, a
        key file missing or not an Ed25519 private key, numbers out of
        range.
        """
        log = f":auditLog={escape(self.audit)}"
        key = log + f":auditCheckpointKey={escape(self.key)}"
        cases = [
            (f":auditCheckpointKey={escape(self.key)}", "auditCheckpointKey", "auditLog=FILE"),
            (":auditCheckpointEvery=5", "auditCheckpointEvery", "auditLog=FILE"),
            (log + ":auditCheckpointEvery=5", "auditCheckpointEvery", "auditCheckpointKey=FILE"),
            (log + ":auditCheckpointInterval=5", "auditCheckpointInterval",
             "auditCheckpointKey=FILE"),
            (log + f":auditCheckpointKey={escape(self.base)}/nope.key", "auditCheckpointKey",
             "readable PEM"),
            (log + f":auditCheckpointKey={escape(self.public)}", "auditCheckpointKey",
             "openssl genpkey"),
            (key + ":auditCheckpointEvery=0", "auditCheckpointEvery", "auditCheckpointEvery=100"),
            (key + ":auditCheckpointEvery=lots", "auditCheckpointEvery",
             "auditCheckpointEvery=100"),
            (key + ":auditCheckpointInterval=-1", "auditCheckpointInterval",
             "auditCheckpointInterval=60"),
            (key + ":auditCheckpointInterval=inf", "auditCheckpointInterval",
             "auditCheckpointInterval=60"),
        ]
        for extra, argument, fix in cases:
            e = self.assertRaises(EndpointArgumentError, self.server, extra)
            self.assertEqual(e.argument, argument, extra)
            self.assertIn(fix, str(e), extra)
        self.assertFalse(os.path.exists(self.audit))


class TwistdCheckpointTests(TapProcessMixin, SynchronousTestCase):
    """
    Real C{twistd securetcp} processes, with openssl s_client as the
    client: checkpoints from a C{--config} file's keys and from
    C{auditCheckpointKey=} in a C{--listen} string.
    """

    def checkpoints(self, public: str) -> List[Dict[str, Any]]:
        """
        The chain's checkpoints, after C{audit verify --checkpoint-key}
        verified every one of them.
        """
        found = auditEvents(self.audit, "chain.checkpoint")
        out = verifyWithKey(self, public, self.audit)
        self.assertIn(f"checkpoints: {len(found)} ({len(found)} signature(s) verified)", out)
        return found

    def test_configFile(self) -> None:
        """
        C{audit-checkpoint-key} and C{audit-checkpoint-every = 2} in a
        C{--config} file: the chain has checkpoints every 2 records while it
        serves, and ends closed; every checkpoint verifies with the public
        key.
        """
        key, public = writeKeys(self.workdir, "checkpoint")
        backendPort, backend, _ = self.backend()
        config = os.path.join(self.workdir, "securetcp.toml")

        def write(port: int) -> List[str]:
            listen = self.mtlsListen(port)[1].replace("\\", "\\\\")
            with open(config, "w") as f:
                f.write(f'audit-log = "audit.jsonl"\naudit-checkpoint-key = "checkpoint.key"\n'
                        f'audit-checkpoint-every = 2\n\n[[listener]]\nmode = "terminate"\n'
                        f'listen = "{listen}"\nbackend = "tcp:127.0.0.1:{backendPort}"\n')
            return ["--config", config]

        port, program = self.startConfig(write)
        self.exchange(port, b"hello")
        self.waitForEvent("connection.closed", 1)
        program.stop()
        blockUntil(lambda: auditRecords(self.audit)[-1]["event"] == "chain.closed",
                   START_TIMEOUT, "chain.closed")
        self.assertIn("count", [r["trigger"] for r in self.checkpoints(public)])

    def startConfig(self, write: Any) -> Any:
        """
        C{twistd -n securetcp --config FILE}, the file written by
        C{write(port)}.
        """
        def argv(port: int) -> List[str]:
            return [str(TWISTD), "-n", "--pidfile=", "securetcp", *write(port)]

        return self.startListening(argv, "twistd", lambda p: b"starting on %d" % p)

    def test_listenString(self) -> None:
        """
        C{auditLog=...:auditCheckpointKey=...} in the C{--listen} string of
        C{terminate}: the endpoint's own chain carries a checkpoint every 2
        records, each verifying with the public key.
        """
        key, public = writeKeys(self.workdir, "checkpoint")
        backendPort, backend, _ = self.backend()

        def listen(port: int) -> List[str]:
            option, value = self.mtlsListen(port)
            return [option, value + f":auditLog={escape(self.audit)}"
                    f":auditCheckpointKey={escape(key)}:auditCheckpointEvery=2"]

        port, program = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                    listen=listen)
        self.exchange(port, b"hello")
        self.waitForEvent("connection.closed", 1)
        self.waitForEvent("chain.checkpoint", 2, trigger="count")
        program.stop()
        self.assertGreaterEqual(len(self.checkpoints(public)), 2)
