# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{securetcp._twistd.tap}, the C{twistd securetcp} command: its options,
the service it builds (against a L{MemoryReactorClock}), its plugin, and
real C{twistd} processes on 127.0.0.1 in front of, behind and in place of
plaintext services, driven by C{openssl s_client} and plain sockets.

Every program here runs as a subprocess with C{PYTHONPATH} set to the
directory holding the C{securetcp} package, on a free port below 32768;
every wait is bounded, and every process is stopped in cleanup.  Nothing
runs in the trial reactor, so these are L{SynchronousTestCase}s.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

from securetcp._twistd import tap as _tap
from securetcp.endpoints import SecureServerEndpoint

from ._net import escape as _escape
from ._net import freePort as _freePort
from ._pki import TestPKI
from ._programs import TWISTD
from ._programs import subprocessEnvironment as _env
from ._twistd import HL7, PEER_TIMEOUT, START_TIMEOUT, Program, TapProcessMixin
from ._twistd import auditEvents as _events
from ._twistd import blockUntil as _waitUntil

# -- application factories for --app ----------------------------------------

#: a protocol factory, for C{--app tests.test_tap:appFactory}
appFactory = Factory.forProtocol(Protocol)


def makeAppFactory() -> Factory:
    """
    A callable returning a protocol factory, for
    C{--app tests.test_tap:makeAppFactory}.
    """
    return appFactory


#: neither a factory nor callable
notAFactory = "not a factory"


def returnsNotAFactory() -> int:
    """
    A callable that returns something other than a protocol factory.
    """
    return 42


def needsArguments(port: int, interface: str) -> Factory:
    """
    A callable that cannot be called without arguments.
    """
    return appFactory


# -- options and the service --------------------------------------------------


class OptionsTests(SynchronousTestCase):
    """
    L{_tap.Options} parses every mode, and L{_tap.makeService} builds the
    service for it (against a L{MemoryReactorClock}), failing early and
    clearly on bad input.
    """

    def setUp(self) -> None:
        self.pki = TestPKI.create(os.path.abspath(self.mktemp()))

    def parse(self, *argv: str) -> _tap.Options:
        options = _tap.Options(build=False)
        options.parseOptions(list(argv))
        return options

    def test_parseReportsConfigurationErrors(self) -> None:
        """
        As twistd uses it, L{_tap.Options} builds the service while parsing,
        so a missing certificate, a bad C{--app} or a bad C{--backend} is a
        L{usage.UsageError} (which twistd prints as one line) rather than an
        exception from C{makeService}.
        """
        missing = os.path.join(self.pki.directory, "no-such-server.pem")
        listen = (f"mtls:0:interface=127.0.0.1:certKey={_escape(missing)}"
                  f":privateKey={_escape(self.pki.path('server.key'))}"
                  f":caCerts={_escape(self.pki.path('ca.pem'))}")
        cases = [
            (["terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1"], missing),
            (["serve", "--listen", self.secureListen(port=0), "--app", "tests.test_tap"],
             "module:name"),
            (["terminate", "--listen", self.secureListen(port=0), "--backend", "nonsense:1"],
             "--backend"),
        ]
        for argv, problem in cases:
            error = self.assertRaises(usage.UsageError, _tap.Options().parseOptions, argv)
            self.assertIn(problem, str(error))

    def secureListen(self, prefix: str = "mtls", port: int = 6661) -> str:
        listen = (f"{prefix}:{port}:interface=127.0.0.1"
                  f":certKey={_escape(self.pki.path('server.pem'))}"
                  f":privateKey={_escape(self.pki.path('server.key'))}")
        if prefix == "mtls":
            listen += f":caCerts={_escape(self.pki.path('ca.pem'))}"
        return listen

    def build(self, *argv: str) -> Any:
        """
        Parse C{argv}, make the service with a L{MemoryReactorClock}, start
        it (stopped again in cleanup).

        @return: the reactor and the service.
        """
        reactor = MemoryReactorClock()
        service = _tap.makeService(self.parse(*argv), reactor)
        self.assertTrue(IService.providedBy(service))
        service.startService()
        self.addCleanup(service.stopService)
        return reactor, service

    def test_terminate(self) -> None:
        """
        C{terminate} takes C{--listen}, C{--backend}, C{--audit-log},
        C{--policy} and C{--idle-timeout} (as seconds).
        """
        options = self.parse("terminate", "--listen", "mtls:6661", "--backend",
                             "tcp:127.0.0.1:2575", "--audit-log", "audit.jsonl",
                             "--policy", "hl7.toml", "--idle-timeout", "30")
        self.assertEqual(options.subCommand, "terminate")
        sub = options.subOptions
        self.assertEqual(
            (sub["listen"], sub["backend"], sub["audit-log"], sub["policy"], sub["idle-timeout"]),
            ("mtls:6661", "tcp:127.0.0.1:2575", "audit.jsonl", "hl7.toml", 30.0))

    def test_originate(self) -> None:
        """
        C{originate} takes C{--listen} and C{--connect}; the short forms
        are C{-l} and C{-c}, and the idle timeout defaults to 0 (never).
        """
        options = self.parse("originate", "-l", "tcp:2576:interface=127.0.0.1",
                             "-c", "mtls:host=hl7.example:port=6661")
        self.assertEqual(options.subCommand, "originate")
        sub = options.subOptions
        self.assertEqual((sub["listen"], sub["connect"], sub["idle-timeout"], sub["audit-log"]),
                         ("tcp:2576:interface=127.0.0.1", "mtls:host=hl7.example:port=6661",
                          0.0, None))

    def test_serve(self) -> None:
        """
        C{serve} takes C{--listen} and C{--app}.
        """
        options = self.parse("serve", "--listen", "mtls:6661", "--app", "pkg.hl7:factory")
        self.assertEqual(options.subCommand, "serve")
        self.assertEqual((options.subOptions["listen"], options.subOptions["app"]),
                         ("mtls:6661", "pkg.hl7:factory"))

    def test_demo(self) -> None:
        """
        C{demo} needs no options: the state directory defaults to
        C{securetcp-demo} and the port to 6661; both can be given.
        """
        options = self.parse("demo")
        self.assertEqual((options.subCommand, options.subOptions["dir"],
                          options.subOptions["port"]), ("demo", "securetcp-demo", "6661"))
        options = self.parse("demo", "--dir", "d", "--port", "7000")
        self.assertEqual((options.subOptions["dir"], options.subOptions["port"]), ("d", "7000"))

    def test_noMode(self) -> None:
        """
        Without a mode, parsing fails with a L{usage.UsageError} listing the
        modes.
        """
        error = self.assertRaises(usage.UsageError, self.parse)
        for mode in ("terminate", "originate", "serve", "demo"):
            self.assertIn(mode, str(error))

    def test_missingRequired(self) -> None:
        """
        Each mode's required options are required: leaving one out is a
        L{usage.UsageError} naming it.
        """
        cases = {
            "terminate": {"--listen": "mtls:6661", "--backend": "tcp:127.0.0.1:2575"},
            "originate": {"--listen": "tcp:2576", "--connect": "mtls:host=h:port=1"},
            "serve": {"--listen": "mtls:6661", "--app": "pkg:factory"},
        }
        for mode, required in cases.items():
            for missing in required:
                argv = [mode]
                for option, value in required.items():
                    if option != missing:
                        argv += [option, value]
                error = self.assertRaises(usage.UsageError, self.parse, *argv)
                self.assertIn(missing, str(error), f"{mode} without {missing}")

    def test_idleTimeoutNotANumber(self) -> None:
        """
        An C{--idle-timeout} that is not a number is a L{usage.UsageError}
        naming the option.
        """
        error = self.assertRaises(usage.UsageError, self.parse, "terminate", "--listen",
                                  "mtls:6661", "--backend", "tcp:127.0.0.1:1",
                                  "--idle-timeout", "soon")
        self.assertIn("--idle-timeout", str(error))

    def test_idleTimeoutOneRule(self) -> None:
        """
        C{--idle-timeout} on the command line and C{idle-timeout} in a
        C{--config} file follow one rule: a negative, infinite or NaN
        timeout is refused by both, naming the option, and C{0} and a
        positive number are accepted by both.
        """
        from securetcp._twistd.config import loadServiceConfig
        from securetcp.errors import ServiceConfigError

        path = os.path.join(os.path.abspath(self.mktemp()))
        os.makedirs(path)
        path = os.path.join(path, "listeners.toml")

        def fromFile(value: str) -> float:
            with open(path, "w") as f:
                f.write('[[listener]]\nmode = "terminate"\nlisten = "mtls:1"\n'
                        f'backend = "tcp:127.0.0.1:1"\nidle-timeout = {value}\n')
            [listener] = loadServiceConfig(path).listeners
            return listener.idleTimeout

        def fromCommandLine(value: str) -> float:
            options = self.parse("terminate", "--listen", "mtls:6661", "--backend",
                                 "tcp:127.0.0.1:1", "--idle-timeout", value)
            return float(options.subOptions["idle-timeout"])

        for value in ("-1", "-0.5", "inf", "nan"):
            error = self.assertRaises(usage.UsageError, fromCommandLine, value)
            self.assertIn("--idle-timeout", str(error))
            self.assertIn("not a number of seconds", str(error))
            fileError = self.assertRaises(ServiceConfigError, fromFile, value)
            self.assertIn("idle-timeout", str(fileError))
            self.assertIn("not a number of seconds", str(fileError))
        for value, seconds in (("0", 0.0), ("30", 30.0), ("2.5", 2.5)):
            self.assertEqual((fromCommandLine(value), fromFile(value)), (seconds, seconds))

    def test_watchNotASeconds(self) -> None:
        """
        A C{--watch} that is not a number of seconds, or is negative, is a
        L{usage.UsageError} naming the option.
        """
        for value in ("soon", "-1"):
            error = self.assertRaises(usage.UsageError, self.parse, "terminate", "--listen",
                                      "mtls:6661", "--backend", "tcp:127.0.0.1:1",
                                      "--watch", value)
            self.assertIn("--watch", str(error))

    def test_terminateService(self) -> None:
        """
        For C{terminate}, L{_tap.makeService} builds a service whose
        L{SecureServerEndpoint} (mutual for C{mtls:}) listens on the port and
        interface of C{--listen} when the service starts.
        """
        reactor, service = self.build("terminate", "--listen", self.secureListen(port=6661),
                                      "--backend", "tcp:127.0.0.1:2575")
        [endpoint] = service.secureEndpoints
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        self.assertTrue(endpoint.mutual)
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (6661, "127.0.0.1"))
        self.assertEqual(reactor.tcpClients, [])  # the backend is only dialled per connection

    def test_sslAlias(self) -> None:
        """
        C{ssl:} in C{--listen} is accepted as an alias of C{securessl:}: a
        one-way TLS endpoint under the policy.
        """
        reactor, service = self.build("terminate", "--listen", self.secureListen("ssl", 6662),
                                      "--backend", "tcp:127.0.0.1:2575")
        [endpoint] = service.secureEndpoints
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        self.assertFalse(endpoint.mutual)
        self.assertTrue(service.listenDescriptions[0].startswith("securessl:"))
        self.assertEqual([(p, i) for p, _, _, i in reactor.tcpServers], [(6662, "127.0.0.1")])

    def test_plainListenRefused(self) -> None:
        """
        For C{terminate} and C{serve}, a C{--listen} that is neither
        C{securessl:} nor C{mtls:} is a L{usage.UsageError} from
        L{_tap.makeService}, before anything listens.
        """
        for argv in (["terminate", "--listen", "tcp:6661", "--backend", "tcp:127.0.0.1:1"],
                     ["serve", "--listen", "tls:6661", "--app", "tests.test_tap:appFactory"]):
            reactor = MemoryReactorClock()
            error = self.assertRaises(usage.UsageError, _tap.makeService,
                                      self.parse(*argv), reactor)
            self.assertIn("securessl: or mtls:", str(error))
            self.assertEqual(reactor.tcpServers, [])

    def test_originateNeedsSecureConnect(self) -> None:
        """
        For C{originate}, a plaintext C{--connect} is a L{usage.UsageError}.
        """
        error = self.assertRaises(
            usage.UsageError, _tap.makeService,
            self.parse("originate", "--listen", "tcp:2576", "--connect", "tcp:127.0.0.1:6661"),
            MemoryReactorClock())
        self.assertIn("securessl: or mtls:", str(error))

    def test_originateService(self) -> None:
        """
        For C{originate}, the service listens in plaintext where
        C{--listen} says, and nothing is dialled until a client connects.
        """
        connect = (f"mtls:host=127.0.0.1:port=6661:caCerts={_escape(self.pki.path('ca.pem'))}"
                   f":certKey={_escape(self.pki.path('client.pem'))}"
                   f":privateKey={_escape(self.pki.path('client.key'))}:hostname=localhost")
        reactor, service = self.build("originate", "--listen", "tcp:2576:interface=127.0.0.1",
                                      "--connect", connect)
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (2576, "127.0.0.1"))
        self.assertIsInstance(factory, _tap.SpliceFactory)
        self.assertEqual(reactor.tcpClients, [])

    def test_serveApplication(self) -> None:
        """
        For C{serve}, C{--app} names a protocol factory, or a callable that
        returns one, and the secure endpoint listens with it.
        """
        for spec in ("tests.test_tap:appFactory", "tests.test_tap:makeAppFactory"):
            reactor, service = self.build("serve", "--listen", self.secureListen(port=6663),
                                          "--app", spec)
            [(port, factory, _, interface)] = reactor.tcpServers
            self.assertEqual((port, interface), (6663, "127.0.0.1"))
            # TLS, then the gate, then the application factory itself
            self.assertIs(factory.wrappedFactory.wrappedFactory, appFactory)

    def test_badApp(self) -> None:
        """
        A bad C{--app} is a L{usage.UsageError} that quotes it and says what
        is wrong: no colon, a module that cannot be imported, a missing
        attribute, or something that is not (and does not return) a
        protocol factory.
        """
        cases = {
            "tests.test_tap": "module:name",
            "no_such_module_for_securetcp:factory": "cannot import",
            "tests.test_tap:noSuchFactory": "has no noSuchFactory",
            "tests.test_tap:notAFactory": "protocol factory",
            "tests.test_tap:returnsNotAFactory": "protocol factory",
            "tests.test_tap:needsArguments": "protocol factory",
        }
        for spec, problem in cases.items():
            options = self.parse("serve", "--listen", self.secureListen(port=6664), "--app", spec)
            error = self.assertRaises(usage.UsageError, _tap.makeService, options,
                                      MemoryReactorClock())
            self.assertIn(spec, str(error))
            self.assertIn(problem, str(error), spec)

    def test_badCertificatePath(self) -> None:
        """
        A certificate path in C{--listen} that does not exist fails in
        L{_tap.makeService} (not when a peer connects) with an error naming
        the file and the argument.
        """
        missing = os.path.join(self.pki.directory, "no-such-server.pem")
        listen = (f"mtls:6661:certKey={_escape(missing)}"
                  f":privateKey={_escape(self.pki.path('server.key'))}"
                  f":caCerts={_escape(self.pki.path('ca.pem'))}")
        reactor = MemoryReactorClock()
        error = self.assertRaises(
            (usage.UsageError, ValueError), _tap.makeService,
            self.parse("terminate", "--listen", listen, "--backend", "tcp:127.0.0.1:1"), reactor)
        self.assertIn(missing, str(error))
        self.assertIn("certKey", str(error))
        self.assertEqual(reactor.tcpServers, [])

    def test_badBackend(self) -> None:
        """
        A C{--backend} that is not a client endpoint string is a
        L{usage.UsageError} naming C{--backend}.
        """
        error = self.assertRaises(
            usage.UsageError, _tap.makeService,
            self.parse("terminate", "--listen", self.secureListen(), "--backend", "nonsense:1"),
            MemoryReactorClock())
        self.assertIn("--backend", str(error))

    def test_demoService(self) -> None:
        """
        For C{demo}, L{_tap.makeService} creates the development PKI in
        C{--dir} and listens on C{--port} of 127.0.0.1.
        """
        directory = os.path.abspath(self.mktemp())
        reactor, service = self.build("demo", "--dir", directory, "--port", "7001")
        for name in ("dev-ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
            self.assertTrue(os.path.exists(os.path.join(directory, name)), name)
        self.assertEqual([(p, i) for p, _, _, i in reactor.tcpServers], [(7001, "127.0.0.1")])


class PluginTests(SynchronousTestCase):
    """
    The dropin makes C{securetcp} a twistd command.
    """

    def test_oneServiceMaker(self) -> None:
        """
        The dropin provides exactly one L{IServiceMaker}, named
        C{securetcp}, whose options are L{_tap.Options}; no other plugin
        takes that name.
        """
        from twisted.plugins import securetcp_plugins

        makers = [value for value in vars(securetcp_plugins).values()
                  if IServiceMaker.providedBy(value)]
        self.assertEqual([m.tapname for m in makers], ["securetcp"])
        self.assertTrue(verifyObject(IServiceMaker, makers[0]))
        self.assertIsInstance(makers[0].options(), _tap.Options)
        import twisted.plugins

        named = [m for m in getPlugins(IServiceMaker, twisted.plugins)
                 if m.tapname == "securetcp"]
        self.assertEqual(len(named), 1)

    def test_twistdHelpListsSecuretcp(self) -> None:
        """
        C{twistd --help}, run with the package on C{PYTHONPATH}, lists the
        C{securetcp} command.
        """
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        result = subprocess.run([TWISTD, "--help"], capture_output=True, env=_env(), cwd=cwd,
                                timeout=START_TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout.decode(), r"\n\s+securetcp\s+Hardened TLS")

    def twistd(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        return subprocess.run([TWISTD, "-n", "--pidfile=", "securetcp", *argv],
                              capture_output=True, env=_env(), cwd=cwd, timeout=START_TIMEOUT)

    def test_help(self) -> None:
        """
        C{twistd securetcp --help} shows one usage line naming the command
        once, no epytext markup, and each example on a line of its own.
        """
        result = self.twistd("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        text = result.stdout.decode()
        self.assertEqual(text.splitlines()[0],
                         "Usage: twistd [options] securetcp (terminate|originate|serve|demo) "
                         "[options] | --config FILE [--workers N]")
        self.assertNotIn("securetcp securetcp", text)
        self.assertNotIn("C{", text)
        examples = [line.strip() for line in text.splitlines()
                    if line.startswith("  twistd -n securetcp")]
        self.assertEqual(len(examples), 6, text)
        self.assertTrue(all(e.count("twistd -n") == 1 for e in examples), examples)

    def test_modeHelp(self) -> None:
        """
        C{twistd securetcp terminate --help} starts with one usage line: the
        command, the mode and the mode's own arguments.
        """
        result = self.twistd("terminate", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.decode().splitlines()[0],
                         "Usage: twistd [options] securetcp terminate --listen SECURE_ENDPOINT "
                         "--backend PLAIN_ENDPOINT")

    def test_usageErrorFirstLine(self) -> None:
        """
        A bad argument ends twistd with status 1, and the first line of its
        output is the problem (not twistd's help); the second says where
        the help is.
        """
        for argv, first in (
                (["terminate", "--bogus"],
                 "twistd securetcp terminate: option --bogus not recognized"),
                (["terminate", "--listen", "mtls:6661"],
                 "twistd securetcp terminate: --backend is required"),
                (["--bogus"], "twistd securetcp: option --bogus not recognized")):
            result = self.twistd(*argv)
            self.assertEqual(result.returncode, 1, result)
            lines = (result.stderr + result.stdout).decode().splitlines()
            self.assertEqual(lines[0], first)
            self.assertIn("--help' for the options", lines[1])
            self.assertNotIn("Options:", "\n".join(lines))

    def test_parseOutsideTwistdRaises(self) -> None:
        """
        Parsed outside twistd (no parent options), a bad argument is still
        a L{usage.UsageError}, for callers that handle it.
        """
        self.assertRaises(usage.UsageError, _tap.Options(build=False).parseOptions,
                          ["terminate", "--bogus"])


# -- real processes -----------------------------------------------------------


class TerminateTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate}: mTLS in front of a plaintext backend.
    """

    def test_endToEnd(self) -> None:
        """
        A client without a certificate is rejected with
        C{no_client_certificate} and the backend never sees a connection;
        s_client with a trusted client certificate exchanges an HL7 line
        with the backend through the proxy; the audit file verifies with
        C{python -m securetcp audit verify}, and the HL7 data appears
        nowhere in it (nor in the twistd log).
        """
        backendPort, backend, count = self.backend()
        port, twistd = self.terminate(backendPort)

        anonymous = self.sClient(port, None)
        anonymous.send(HL7 + b"\n")
        anonymous.waitExit()
        [rejected] = self.waitForEvent("handshake.rejected")
        self.assertEqual(rejected["reason"], "no_client_certificate")
        self.assertNotIn(b"backend:", anonymous.out)
        self.assertEqual(self.connectionCount(count), 0)

        self.exchange(port, HL7)
        self.assertEqual(self.connectionCount(count), 1)
        [accepted] = self.waitForEvent("connection.accepted")
        self.assertIn("PUMP-0042", json.dumps(accepted))
        self.waitForEvent("connection.closed")

        twistd.stop()
        self.assertFalse(twistd.running)
        self.assertVerifies(self.audit)
        with open(self.audit, "rb") as f:
            audit = f.read()
        for fragment in (HL7, b"MSG-7731", b"MRN-4711", b"DOE^JANE", b"LAB|HOSP"):
            self.assertNotIn(fragment, audit)
            self.assertNotIn(fragment, twistd.out + twistd.err)

    def test_backendDown(self) -> None:
        """
        When nobody listens on the backend port, the TLS client is closed
        cleanly, the audit file has a C{proxy.backend_failed} record naming
        the backend, and the proxy keeps running: once the backend is
        started, the next client gets through.
        """
        backendPort = _freePort()
        port, twistd = self.terminate(backendPort)
        peer = self.sClient(port)
        peer.send(b"anyone there?\n")
        self.assertEqual(peer.waitExit(), 0, peer.describe())
        self.assertNotIn(b"backend:", peer.out)
        self.assertNotIn(b":error:", peer.err, peer.describe())
        [failed] = self.waitForEvent("proxy.backend_failed")
        self.assertEqual(failed["backend"], f"tcp:127.0.0.1:{backendPort}")
        self.assertIn("refused", failed["detail"])
        self.assertTrue(twistd.running, twistd.describe())

        _, backend, count = self.backend(backendPort)
        self.exchange(port, b"second attempt")
        self.assertEqual(self.connectionCount(count), 1)
        self.assertTrue(twistd.running, twistd.describe())

    def test_backendKilledMidStream(self) -> None:
        """
        When the backend dies while clients are connected, every client
        sees its connection closed and the audit file records each close
        with the bytes it carried; the proxy stays up, a client arriving
        while the backend is down is closed cleanly with a
        C{proxy.backend_failed} record, and a client connecting after the
        backend is back gets through.
        """
        backendPort, backend, count = self.backend()
        port, twistd = self.terminate(backendPort)
        peers = []
        for n in range(2):
            peer = self.sClient(port)
            line = b"line %d" % n
            peer.send(line + b"\n")
            peer.waitFor(b"backend:" + line + b"\n", PEER_TIMEOUT, "the backend's answer")
            peers.append(peer)
        self.assertEqual(self.connectionCount(count), 2)

        backend.process.kill()
        backend.process.wait(5)
        for peer in peers:
            peer.waitExit()  # the proxy closed it; stdin is still open
        self.assertTrue(twistd.running, twistd.describe())
        # the audit trail shows both connections ending, with what they carried
        closed = self.waitForEvent("connection.closed", count=2)
        self.assertEqual(sorted(r["bytesIn"] for r in closed), [7, 7])
        self.assertEqual(sorted(r["bytesOut"] for r in closed), [15, 15])
        # and, while the backend is down, a new client's failed relay
        peer = self.sClient(port)
        peer.send(b"anyone there?\n")
        self.assertEqual(peer.waitExit(), 0, peer.describe())
        [failed] = self.waitForEvent("proxy.backend_failed")
        self.assertIn("refused", failed["detail"])

        _, backend, count = self.backend(backendPort)
        self.exchange(port, b"after the restart")
        self.assertEqual(self.connectionCount(count), 1)
        self.assertTrue(twistd.running, twistd.describe())


class OriginateTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp originate} in front of C{terminate}: plaintext in,
    mTLS across, plaintext out.
    """

    def test_backToBack(self) -> None:
        """
        A plaintext socket client talks to a plaintext backend through
        originate (which presents the client certificate and verifies the
        server as C{localhost}) and terminate: lines go through and the
        answers come back, and closing the client closes the chain.
        """
        backendPort, backend, count = self.backend()
        port, terminate = self.terminate(backendPort)
        connect = (f"mtls:host=127.0.0.1:port={port}"
                   f":caCerts={_escape(self.pki.path('ca.pem'))}"
                   f":certKey={_escape(self.pki.path('client.pem'))}"
                   f":privateKey={_escape(self.pki.path('client.key'))}:hostname=localhost")
        originatePort, originate = self.twistd(
            "originate", "--connect", connect, name="originate",
            listen=lambda p: ["--listen", f"tcp:{p}:interface=127.0.0.1"])

        with socket.create_connection(("127.0.0.1", originatePort), timeout=PEER_TIMEOUT) as s:
            received = b""
            for line in (HL7, b"second line"):
                s.sendall(line + b"\n")
                expected = b"backend:" + line + b"\n"
                while expected not in received:
                    data = s.recv(65536)
                    self.assertTrue(data, f"closed early; got {received!r}")
                    received += data
            s.shutdown(socket.SHUT_WR)
            while True:
                data = s.recv(65536)  # bounded by the socket timeout
                if not data:
                    break
                received += data
        self.assertEqual(received, b"backend:" + HL7 + b"\nbackend:second line\n")
        self.assertEqual(self.connectionCount(count), 1)
        [accepted] = self.waitForEvent("connection.accepted")
        self.assertIn("PUMP-0042", json.dumps(accepted))
        self.assertTrue(terminate.running and originate.running)


class ReloadTests(TapProcessMixin, SynchronousTestCase):
    """
    SIGHUP makes C{twistd securetcp} re-read its certificate and key.
    """

    def subject(self, port: int) -> bytes:
        """
        The server certificate's subject line as s_client reports it, after
        exchanging a line through the proxy.
        """
        peer = self.exchange(port, b"which certificate?")
        match = re.search(rb"depth=0 ([^\n]*)", peer.err)
        self.assertIsNotNone(match, peer.describe())
        return match.group(1)  # type: ignore[union-attr]

    def test_sighupReload(self) -> None:
        """
        After the certificate and key files are replaced and SIGHUP is
        sent, new connections get the new certificate while the process
        keeps running (C{policy.reloaded}); after the key is overwritten
        with garbage and SIGHUP is sent again, the process keeps running and
        serving the previous certificate, and the audit file has
        C{policy.reload_refused}.
        """
        backendPort, backend, count = self.backend()
        port, twistd = self.terminate(backendPort)
        self.assertIn(b"CN = localhost", self.subject(port))

        shutil.copyfile(self.pki.path("server-wrongname.pem"), self.pki.path("server.pem"))
        shutil.copyfile(self.pki.path("server-wrongname.key"), self.pki.path("server.key"))
        os.kill(twistd.pid, signal.SIGHUP)
        self.waitForEvent("policy.reloaded")
        self.assertIn(b"CN = elsewhere.example", self.subject(port))
        self.assertTrue(twistd.running, twistd.describe())

        with open(self.pki.path("server.key"), "wb") as f:
            f.write(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
        os.kill(twistd.pid, signal.SIGHUP)
        [refused] = self.waitForEvent("policy.reload_refused")
        self.assertIn("server.key", refused["detail"])
        self.assertTrue(twistd.running, twistd.describe())
        self.assertIn(b"CN = elsewhere.example", self.subject(port))
        self.assertEqual(len(_events(self.audit, "policy.reloaded")), 1)
        self.assertTrue(twistd.running, twistd.describe())
        twistd.stop()
        self.assertVerifies(self.audit)


class DemoTests(TapProcessMixin, SynchronousTestCase):
    """
    The demo, as C{twistd securetcp demo} and as C{python -m securetcp
    demo}: the command it shows works as printed.
    """

    LINE = b"MSH|^~\\&|DEMO|HOSP|hello from the demo test"

    def runPrintedCommand(self, command: str) -> Program:
        """
        Run the printed C{openssl s_client} command as it is, send
        L{LINE}, wait for the echo, then close its input.
        """
        argv = shlex.split(command)
        self.assertEqual(argv[:2], ["openssl", "s_client"])
        peer = Program(self, argv, "printed-s_client", stdin=True)
        peer.send(self.LINE + b"\n")
        peer.waitFor(self.LINE + b"\n", PEER_TIMEOUT, "the echo")
        peer.closeStdin()
        self.assertEqual(peer.waitExit(), 0, peer.describe())
        return peer

    def test_twistdDemo(self) -> None:
        """
        C{twistd -n securetcp demo --dir D --port P} creates the development
        CA and certificates in D, logs the s_client command, which (run as
        logged) gets its line echoed, and D/audit.jsonl verifies.
        """
        directory = os.path.join(self.workdir, "demo")
        port, twistd = self.twistd("demo", "--dir", directory, name="demo",
                                   listen=lambda p: ["--port", str(p)])
        for name in ("dev-ca.pem", "client.pem", "client.key", "server.pem", "server.key"):
            self.assertTrue(os.path.exists(os.path.join(directory, name)), name)
        match = re.search(rb"connect with: (openssl s_client [^\n]*)", twistd.out)
        self.assertIsNotNone(match, twistd.describe())
        command = match.group(1).decode()  # type: ignore[union-attr]
        self.assertIn(f"127.0.0.1:{port}", command)
        self.runPrintedCommand(command)
        audit = os.path.join(directory, "audit.jsonl")
        _waitUntil(lambda: _events(audit, "connection.closed"), PEER_TIMEOUT,
                   "the demo's connection.closed record")
        twistd.stop()
        self.assertVerifies(audit)
        self.assertEqual(len(_events(audit, "connection.accepted")), 1)

    def test_pythonDashMDemo(self) -> None:
        """
        C{python -m securetcp demo --dir D --port 0}, the README's main
        command, prints an C{openssl s_client} command that, run as printed,
        gets its line echoed.
        """
        directory = os.path.join(self.workdir, "demo")
        demo = Program(self, [sys.executable, "-m", "securetcp", "demo", "--dir", directory,
                              "--port", "0"], "python-m-demo")
        demo.waitFor(b"press Ctrl-C to stop", START_TIMEOUT, "the demo to print its command")
        match = re.search(rb"^\s*(openssl s_client [^\n]*)$", demo.out, re.MULTILINE)
        self.assertIsNotNone(match, demo.describe())
        command = match.group(1).decode()  # type: ignore[union-attr]
        self.assertNotIn("127.0.0.1:0 ", command)
        self.runPrintedCommand(command)
        demo.waitFor(b'"connection.accepted"', PEER_TIMEOUT, "the printed audit record")
        self.assertTrue(demo.running, demo.describe())


class TwistdStartupTests(TapProcessMixin, SynchronousTestCase):
    """
    Configuration errors stop C{twistd securetcp} at start.
    """

    def test_badCertificatePathExits(self) -> None:
        """
        With a certificate path that does not exist, twistd exits at start
        with a message naming the file, and never listens.  The exit status
        is non-zero with Twisted 26.10 and later; older twistd exits 0 after
        any usage error (a Twisted behaviour documented in docs/twistd.md).
        """
        from twisted import version as twistedVersion

        missing = os.path.join(self.workdir, "no-such.pem")
        port = _freePort()
        listen = ["--listen", f"mtls:{port}:interface=127.0.0.1:certKey={_escape(missing)}"
                  f":privateKey={_escape(self.pki.path('server.key'))}"
                  f":caCerts={_escape(self.pki.path('ca.pem'))}"]
        program = Program(self, [TWISTD, "-n", "--pidfile=", "securetcp", "terminate"] + listen
                          + ["--backend", "tcp:127.0.0.1:1"], "twistd-bad")
        status = program.waitExit(START_TIMEOUT)
        if (twistedVersion.major, twistedVersion.minor) >= (26, 10):
            self.assertNotEqual(status, 0)
        output = program.out + program.err
        self.assertIn(missing.encode(), output)
        self.assertNotIn(b"starting on", output)
