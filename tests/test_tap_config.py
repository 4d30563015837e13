"""
Tests for C{twistd securetcp --config FILE} (L{securetcp._twistd.config}) and
C{--workers N} (L{securetcp._twistd.workers}, L{securetcp._twistd.worker}): the file's
checks and their messages, several listeners in one process, and worker
processes sharing the listening socket, each with its own audit chain.

Real processes run on free ports below 32768 with bounded waits and are
stopped in cleanup, as in L{tests.test_tap}.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import textwrap
from typing import Any, Dict, List, Set

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from securetcp._twistd import tap as _tap
from securetcp._twistd.config import LISTENER_KEYS, OPTION_KEYS, loadServiceConfig
from securetcp._twistd.workers import SharedListeners, workerAuditPath
from securetcp.errors import ServiceConfigError
from securetcp.options import Role, ownArguments

from ._net import escape as _escape
from ._net import exchangeLine
from ._pki import TestPKI
from ._programs import TWISTD
from ._twistd import (
    HL7,
    PEER_TIMEOUT,
    START_TIMEOUT,
    Program,
    TapProcessMixin,
    pidAlive,
    waitWorkerListening,
)
from ._twistd import auditEvents as _events
from ._twistd import auditRecords as _records
from ._twistd import blockUntil as _waitUntil


def _write(path: str, text: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text))
    return path


class ConfigFileTests(SynchronousTestCase):
    """
    L{loadServiceConfig} reads the listeners of a C{--config} file and
    refuses a bad one with a L{ServiceConfigError} naming the file, the
    listener and the key.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "listeners.toml")

    def load(self, text: str) -> Any:
        return loadServiceConfig(_write(self.path, text))

    def test_listeners(self) -> None:
        """
        Each C{[[listener]]} table becomes a listener with its mode and
        keys; C{audit-log} and C{policy} are taken relative to the file's
        directory; C{workers} defaults to 1.
        """
        config = self.load("""
            audit-log = "audit.jsonl"

            [[listener]]
            name = "hl7"
            mode = "terminate"
            listen = "mtls:6661"
            backend = "tcp:127.0.0.1:2575"
            policy = "hl7.toml"
            idle-timeout = 30

            [[listener]]
            mode = "serve"
            listen = "securessl:6443"
            app = "pkg.mod:factory"
            """)
        self.assertEqual(config.auditLog, os.path.join(self.directory, "audit.jsonl"))
        self.assertEqual(config.workers, 1)
        hl7, second = config.listeners
        self.assertEqual((hl7.index, hl7.name, hl7.mode, hl7.listen, hl7.backend, hl7.policy,
                          hl7.idleTimeout),
                         (1, "hl7", "terminate", "mtls:6661", "tcp:127.0.0.1:2575",
                          os.path.join(self.directory, "hl7.toml"), 30.0))
        self.assertEqual((second.index, second.name, second.mode, second.app, second.policy),
                         (2, "2", "serve", "pkg.mod:factory", None))

    def assertProblem(self, text: str, *fragments: str) -> ServiceConfigError:
        """
        Loading C{text} fails with a L{ServiceConfigError} whose message
        names the file and contains every fragment.
        """
        error = self.assertRaises(ServiceConfigError, self.load, text)
        message = str(error)
        self.assertTrue(message.startswith(self.path + ": "), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return error

    def test_optionKeys(self) -> None:
        """
        A listener key that is also an endpoint option is the option
        table's row for it, and is read as the row's kind says: the policy
        file is a path, taken from the file's directory.
        """
        self.assertEqual(OPTION_KEYS, {"policy": ownArguments(Role.SERVER)["policy"]})
        self.assertLessEqual(set(OPTION_KEYS), set(LISTENER_KEYS))
        config = self.load("""
            [[listener]]
            mode = "serve"
            listen = "mtls:1"
            app = "a:b"
            policy = "../policies/hl7.toml"
            """)
        self.assertEqual(config.listeners[0].policy,
                         os.path.join(self.directory, "..", "policies", "hl7.toml"))

    def test_fileProblems(self) -> None:
        """
        A missing file, invalid TOML, an unknown top-level key, no
        listeners and a bad C{workers} are refused, naming the key.
        """
        error = self.assertRaises(ServiceConfigError, loadServiceConfig,
                                  os.path.join(self.directory, "nope.toml"))
        self.assertIn("does not exist", str(error))
        self.assertProblem("[[listener]\n", "not valid TOML")
        self.assertProblem('auditlog = "a"\n', "key 'auditlog'", "unknown key", "audit-log")
        self.assertProblem('audit-log = "a"\n', "key 'listener'", "no listeners")
        self.assertProblem('listener = "x"\n', "key 'listener'", "array of tables")
        for workers in ("0", "1000", '"two"', "1.5", "true"):
            error = self.assertProblem(f"workers = {workers}\n[[listener]]\nmode = 'serve'\n"
                                       "listen = 'mtls:1'\napp = 'a:b'\n", "key 'workers'")
            self.assertEqual(error.key, "workers")

    def test_listenerProblems(self) -> None:
        """
        A listener without a mode, with an unknown mode or key, without a
        key its mode requires, with a key its mode does not take, with a
        non-string value or a bad idle timeout, or with another listener's
        name, is refused naming the listener's number and name and the key.
        """
        good = '[[listener]]\nname = "first"\nmode = "serve"\nlisten = "mtls:1"\napp = "a:b"\n'
        cases = [
            ('name = "tele"\nlisten = "mtls:1"\n', "listener 2 ('tele')", "mode",
             "is required"),
            ('name = "tele"\nmode = "proxy"\nlisten = "mtls:1"\n', "listener 2 ('tele')", "mode",
             "unknown mode 'proxy'"),
            ('name = "tele"\nmode = "terminate"\nlisten = "mtls:1"\n', "listener 2 ('tele')",
             "backend", "is required in mode terminate"),
            ('mode = "terminate"\nlisten = "mtls:1"\nbackend = "tcp:h:1"\napp = "a:b"\n',
             "listener 2", "app", "does not apply to mode terminate"),
            ('name = "tele"\nmode = "serve"\nlisten = "mtls:1"\napp = "a:b"\nbackedn = "x"\n',
             "listener 2 ('tele')", "backedn", "unknown key"),
            ('name = "tele"\nmode = "serve"\nlisten = 6661\napp = "a:b"\n',
             "listener 2 ('tele')", "listen", "not a non-empty string"),
            ('name = "tele"\nmode = "terminate"\nlisten = "mtls:1"\nbackend = "tcp:h:1"\n'
             'idle-timeout = -1\n', "listener 2 ('tele')", "idle-timeout", "number of seconds"),
            ('name = "first"\nmode = "serve"\nlisten = "mtls:2"\napp = "a:b"\n',
             "listener 2 ('first')", "name", "also the name of listener 1"),
        ]
        for table, listener, key, problem in cases:
            error = self.assertProblem(good + "[[listener]]\n" + table, listener,
                                       f"key {key!r}", problem)
            self.assertEqual((error.listener, error.key), (listener, key))


class ConfigOptionsTests(SynchronousTestCase):
    """
    C{twistd securetcp --config FILE}: L{_tap.Options} takes it instead of
    a mode, and L{_tap.makeService} builds every listener of the file into
    one service.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.pki = TestPKI.create(os.path.join(self.directory, "pki"))
        self.path = os.path.join(self.directory, "listeners.toml")

    def listen(self, port: int, prefix: str = "mtls", cert: str = "server.pem") -> str:
        text = (f"{prefix}:{port}:interface=127.0.0.1:certKey={_escape(self.pki.path(cert))}"
                f":privateKey={_escape(self.pki.path('server.key'))}")
        if prefix == "mtls":
            text += f":caCerts={_escape(self.pki.path('ca.pem'))}"
        return text

    def config(self, *listeners: Dict[str, Any], top: str = 'audit-log = "audit.jsonl"\n') -> str:
        lines = [top]
        for listener in listeners:
            lines.append("[[listener]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in listener.items()]
        return _write(self.path, "\n".join(lines) + "\n")

    def test_twoListeners(self) -> None:
        """
        A file with a terminate and a serve listener builds one service
        that listens on both ports when started, with the file's audit log
        shared by both.
        """
        self.config({"name": "hl7", "mode": "terminate", "listen": self.listen(6661),
                     "backend": "tcp:127.0.0.1:2575"},
                    {"name": "echo", "mode": "serve", "listen": self.listen(6662, "securessl"),
                     "app": "tests._apps:backendEchoFactory"})
        options = _tap.Options(build=False)
        options.parseOptions(["--config", self.path])
        reactor = MemoryReactorClock()
        service = _tap.makeService(options, reactor)
        self.assertEqual(service.auditLog, os.path.join(self.directory, "audit.jsonl"))
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([(p, i) for p, _, _, i in reactor.tcpServers],
                         [(6661, "127.0.0.1"), (6662, "127.0.0.1")])
        self.assertEqual([e.mutual for e in service.secureEndpoints], [True, False])

    def test_buildErrorsNameTheListener(self) -> None:
        """
        Problems found while building a listener (a missing certificate, a
        plaintext C{listen} for terminate, a bad C{backend} or C{app}) are
        L{usage.UsageError}s at parse time naming the file, the listener
        and the key.
        """
        missing = self.pki.path("missing.pem")
        cases = [
            ({"mode": "terminate", "listen": self.listen(6661, cert="missing.pem"),
              "backend": "tcp:127.0.0.1:1"}, "listen", missing),
            ({"mode": "terminate", "listen": "tcp:6661", "backend": "tcp:127.0.0.1:1"},
             "listen", "securessl: or mtls:"),
            ({"mode": "terminate", "listen": self.listen(6661), "backend": "nonsense:1"},
             "backend", "nonsense"),
            ({"mode": "serve", "listen": self.listen(6661), "app": "no_such_module_x:f"},
             "app", "cannot import"),
            ({"mode": "originate", "listen": "tcp:2576", "connect": "tcp:127.0.0.1:1"},
             "connect", "securessl: or mtls:"),
        ]
        for listener, key, problem in cases:
            ok = {"name": "ok", "mode": "serve", "listen": self.listen(6660),
                  "app": "tests._apps:backendEchoFactory"}
            self.config(ok, dict(listener, name="bad"))
            error = self.assertRaises(usage.UsageError, _tap.Options().parseOptions,
                                      ["--config", self.path])
            message = str(error)
            self.assertIn(f"{self.path}: listener 2 ('bad'): key {key!r}: ", message)
            self.assertIn(problem, message)

    def test_configAndModeExclusive(self) -> None:
        """
        C{--config} with a mode, and C{--workers} before a mode, are usage
        errors; without C{--config} or a mode the error names both.
        """
        self.config({"mode": "serve", "listen": self.listen(6661), "app": "a:b"})
        parse = _tap.Options(build=False).parseOptions
        error = self.assertRaises(usage.UsageError, parse,
                                  ["--config", self.path, "serve", "--listen", "x", "--app", "a:b"])
        self.assertIn("--config replaces the mode", str(error))
        error = self.assertRaises(usage.UsageError, _tap.Options(build=False).parseOptions,
                                  ["--workers", "2", "serve", "--listen", "x", "--app", "a:b"])
        self.assertIn("--workers goes after the mode", str(error))
        error = self.assertRaises(usage.UsageError, _tap.Options(build=False).parseOptions, [])
        self.assertIn("--config FILE", str(error))

    def test_workersOption(self) -> None:
        """
        C{--workers} takes a whole number from 1 to 256 in every mode and
        after C{--config}; anything else is a usage error naming it.
        """
        options = _tap.Options(build=False)
        options.parseOptions(["serve", "--listen", "x", "--app", "a:b", "--workers", "3"])
        self.assertEqual(options.subOptions["workers"], 3)
        options = _tap.Options(build=False)
        options.parseOptions(["demo"])
        self.assertEqual(options.subOptions["workers"], 1)
        for bad in ("0", "two", "257"):
            error = self.assertRaises(usage.UsageError, _tap.Options(build=False).parseOptions,
                                      ["demo", "--workers", bad])
            self.assertIn("--workers", str(error))
        self.config({"mode": "serve", "listen": self.listen(6661), "app": "a:b"})
        options = _tap.Options(build=False)
        options.parseOptions(["--config", self.path, "--workers", "2"])
        self.assertEqual(options["workers"], 2)


class SharedListenersTests(SynchronousTestCase):
    """
    L{SharedListeners} binds a real socket in the parent and adopts it
    into the reactor; in a worker it adopts the inherited descriptors in
    order.
    """

    def test_parentBindsAndAdopts(self) -> None:
        """
        In the parent, C{listenTCP} on port 0 binds a socket, gives its
        descriptor to C{adoptStreamPort}, and remembers the port actually
        bound, so L{SharedListeners.socketsForWorker} returns listening
        sockets on that same address.
        """
        reactor = MemoryReactorClock()
        listeners = SharedListeners()
        self.addCleanup(listeners.close)
        factory = Factory.forProtocol(Protocol)
        listeners.listenTCP(reactor, 0, factory, 50, "127.0.0.1")
        [(fd, family, adopted)] = reactor.adoptedPorts
        self.assertEqual((family, adopted), (socket.AF_INET, factory))
        [bound] = listeners.bound
        self.assertNotEqual(bound.port, 0)
        [sock] = listeners.socketsForWorker()
        try:
            self.assertEqual(sock.getsockname(), ("127.0.0.1", bound.port))
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), 1)
        finally:
            sock.close()

    def test_workerAdoptsInOrder(self) -> None:
        """
        In a worker, each C{listenTCP} adopts the next inherited descriptor
        with its address family, whatever port it names.
        """
        sockets = [socket.socket(socket.AF_INET6 if n else socket.AF_INET) for n in range(2)]
        sockets[0].bind(("127.0.0.1", 0))
        sockets[1].bind(("::1", 0))
        for sock in sockets:
            sock.listen(5)
        fds = [os.dup(s.fileno()) for s in sockets]
        for sock in sockets:
            sock.close()
        reactor = MemoryReactorClock()
        listeners = SharedListeners(fds)
        factory = Factory.forProtocol(Protocol)
        listeners.listenTCP(reactor, 6661, factory)
        listeners.listenTCP(reactor, 6662, factory, interface="::1")
        self.assertEqual([family for _, family, _ in reactor.adoptedPorts],
                         [socket.AF_INET, socket.AF_INET6])

    def test_workerAuditPath(self) -> None:
        """
        Worker K writes C{AUDIT.worker-K}.
        """
        self.assertEqual(workerAuditPath("/var/log/a.jsonl", 1), "/var/log/a.jsonl.worker-1")


class ConfigProcessTests(TapProcessMixin, SynchronousTestCase):
    """
    Real C{twistd securetcp --config} processes, with and without workers.
    """

    def tlsExchange(self, port: int, line: bytes) -> bytes:
        """
        One mTLS connection from Python's C{ssl} with the test client
        certificate: send C{line}, return the answer line.
        """
        return exchangeLine(self.pki.path("ca.pem"), self.pki.path("client.pem"),
                            self.pki.path("client.key"), port, line, PEER_TIMEOUT)

    def listenString(self, port: int) -> str:
        return (f"mtls:{port}:interface=127.0.0.1"
                f":certKey={_escape(self.pki.path('server.pem'))}"
                f":privateKey={_escape(self.pki.path('server.key'))}"
                f":caCerts={_escape(self.pki.path('ca.pem'))}")

    def startConfig(self, listeners: List[Dict[str, Any]], top: str = "",
                    ready: bytes = b"") -> Program:
        """
        Write a config file with C{listeners} and the test's audit log, run
        C{twistd -n securetcp --config} on it, and wait for every listener
        (and C{ready}) to show up in its log.
        """
        path = os.path.join(self.workdir, "listeners.toml")
        lines = [f"audit-log = {json.dumps(self.audit)}", top]
        for listener in listeners:
            lines.append("[[listener]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in listener.items()]
        _write(path, "\n".join(lines) + "\n")
        program = Program(self, [TWISTD, "-n", "--pidfile=", "securetcp", "--config", path],
                          "twistd-config")
        for listener in listeners:
            port = int(listener["listen"].split(":")[1])
            program.waitFor(b"starting on %d" % port, START_TIMEOUT, f"{listener['name']}")
        if ready:
            program.waitFor(ready, START_TIMEOUT, repr(ready))
        return program

    def test_twoListenersOneProcess(self) -> None:
        """
        One twistd process serves both listeners of a config file: an mTLS
        terminate job in front of the plaintext backend and an mTLS serve
        job with an echo application; both answer, and the one shared audit
        file has an accepted connection on each port and verifies.
        """
        from ._net import freePort as _freePort

        backendPort, backend, count = self.backend()
        terminatePort, servePort = _freePort(), _freePort()
        while servePort == terminatePort:
            servePort = _freePort()
        twistd = self.startConfig([
            {"name": "hl7", "mode": "terminate", "listen": self.listenString(terminatePort),
             "backend": f"tcp:127.0.0.1:{backendPort}"},
            {"name": "echo", "mode": "serve", "listen": self.listenString(servePort),
             "app": "tests._apps:backendEchoFactory"},
        ])
        self.assertEqual(self.tlsExchange(terminatePort, HL7), b"backend:" + HL7 + b"\n")
        self.assertEqual(self.tlsExchange(servePort, b"ping"), b"backend:ping\n")
        self.assertEqual(self.connectionCount(count), 1)
        accepted = self.waitForEvent("connection.accepted", 2)
        self.assertEqual(sorted(r["local"].rsplit(":", 1)[1] for r in accepted),
                         sorted([str(terminatePort), str(servePort)]))
        self.waitForEvent("connection.closed", 2)
        twistd.stop()
        self.assertVerifies(self.audit)

    def startWorkers(self) -> Any:
        """
        C{twistd securetcp --config} with one serve listener and
        C{workers = 2}; wait until worker 1 listens too.

        @return: the port and the L{Program}.
        """
        from ._net import freePort as _freePort

        port = _freePort()
        twistd = self.startConfig(
            [{"name": "echo", "mode": "serve", "listen": self.listenString(port),
              "app": "tests._apps:backendEchoFactory"}],
            top="workers = 2", ready=b"worker 1 (pid ")
        waitWorkerListening(twistd, port)
        return port, twistd

    def workerRecords(self, name: str) -> Dict[int, List[Dict[str, Any]]]:
        return {k: _events(workerAuditPath(self.audit, k), name) for k in (0, 1)}

    def test_workersShareTheSocket(self) -> None:
        """
        With C{workers = 2}, connections to the one port are accepted by
        both processes: each worker's audit file has C{connection.accepted}
        records tagged with its own C{worker} number and C{pid} (worker 0 is
        the twistd process); each file verifies as its own chain; and when
        twistd stops, worker 1 is gone too.
        """
        port, twistd = self.startWorkers()
        workersSeen: Set[int] = set()
        for n in range(40):
            self.assertEqual(self.tlsExchange(port, b"line %d" % n), b"backend:line %d\n" % n)
            if n >= 9:
                accepted = self.workerRecords("connection.accepted")
                workersSeen = {k for k, records in accepted.items() if records}
                if workersSeen == {0, 1}:
                    break
        self.assertEqual(workersSeen, {0, 1}, "not both workers accepted connections")
        accepted = self.workerRecords("connection.accepted")
        pids = {}
        for k, records in accepted.items():
            self.assertEqual({(r["worker"], r["pid"]) for r in records},
                             {(k, records[0]["pid"])})
            pids[k] = records[0]["pid"]
        self.assertEqual(pids[0], twistd.pid)
        self.assertNotEqual(pids[1], twistd.pid)
        self.assertFalse(os.path.exists(self.audit), "no unsuffixed audit file with workers")

        twistd.stop()
        _waitUntil(lambda: not pidAlive(pids[1]), PEER_TIMEOUT, "worker 1 to end")
        for k in (0, 1):
            self.assertVerifies(workerAuditPath(self.audit, k))

    def test_workerEndsWithItsParent(self) -> None:
        """
        When the twistd process is killed outright (SIGKILL, no cleanup),
        worker 1 notices its standard input closing and ends by itself: no
        orphan keeps the port.
        """
        port, twistd = self.startWorkers()
        started = [line for line in (twistd.out + twistd.err).split(b"\n")
                   if b"started worker 1 (pid " in line]
        self.assertTrue(started, twistd.describe())
        pid = int(started[0].split(b"(pid ")[1].split(b")")[0])
        self.assertTrue(pidAlive(pid))
        os.kill(twistd.pid, signal.SIGKILL)
        twistd.process.wait(PEER_TIMEOUT)
        _waitUntil(lambda: not pidAlive(pid), PEER_TIMEOUT, "the orphaned worker to end")
        with socket.socket() as probe:
            probe.settimeout(PEER_TIMEOUT)
            self.assertNotEqual(probe.connect_ex(("127.0.0.1", port)), 0)

    def test_terminateWorkersCommandLine(self) -> None:
        """
        C{twistd securetcp terminate --workers 2} (no config file) starts
        worker 1, which proxies to the backend too; the files are
        C{AUDIT.worker-0} and C{AUDIT.worker-1}.
        """
        backendPort, backend, count = self.backend()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, "--workers", "2",
                                   listen=self.mtlsListen)
        waitWorkerListening(twistd, port)
        for n in range(40):
            self.assertEqual(self.tlsExchange(port, b"line %d" % n), b"backend:line %d\n" % n)
            accepted = self.workerRecords("connection.accepted")
            if n >= 9 and all(accepted.values()):
                break
        self.assertTrue(all(self.workerRecords("connection.accepted").values()),
                        [_records(workerAuditPath(self.audit, k)) for k in (0, 1)])
        twistd.stop()
        for k in (0, 1):
            self.assertVerifies(workerAuditPath(self.audit, k))
