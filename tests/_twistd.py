"""
Driving real C{twistd securetcp} processes from L{SynchronousTestCase}s:
L{Program} (a subprocess whose output goes to files, stopped in cleanup),
bounded blocking waits, reading audit files, and L{TapProcessMixin}, which
gives each test a PKI, a working directory, a plaintext echo backend,
C{twistd securetcp} on a free port and C{openssl s_client}.

    class Tests(TapProcessMixin, SynchronousTestCase):
        def test_x(self):
            backendPort, backend, count = self.backend()
            port, twistd = self.terminate(backendPort)
            self.exchange(port, b"hello")
            self.waitForEvent("connection.accepted")

Nothing here runs in the trial reactor: every wait blocks, bounded by
L{START_TIMEOUT} or L{PEER_TIMEOUT}.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp.audit.verify import verifyFiles

from ._net import escape, freePort
from ._pki import TestPKI
from ._programs import OPENSSL, TWISTD, subprocessEnvironment

# Every wait below is bounded by one of these.
START_TIMEOUT = 15.0
PEER_TIMEOUT = 10.0

#: An HL7 v2 message with patient data, as a backend would exchange it.
HL7 = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ORU^R01|MSG-7731|P|2.5"
       b"|PID|||MRN-4711||DOE^JANE")


def blockUntil(condition: Callable[[], Any], timeout: float, what: str,
               describe: Callable[[], str] = lambda: "") -> Any:
    """
    Block, polling C{condition} every 50 ms, until it returns something
    true, and return that; fail after C{timeout} seconds, naming C{what}
    was awaited and adding C{describe()}.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{describe()}")
        time.sleep(0.05)


def auditRecords(path: str) -> List[Dict[str, Any]]:
    """
    The complete records of an audit file (a line being written is skipped).
    """
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    return [json.loads(line) for line in data.split(b"\n")[:-1] if line]


def auditEvents(path: str, name: str) -> List[Dict[str, Any]]:
    """
    The complete records of event C{name} in the audit file C{path}.
    """
    return [r for r in auditRecords(path) if r.get("event") == name]


def waitWorkerListening(twistd: Program, port: int) -> None:
    """
    Wait until twistd's log relays worker 1's "starting on PORT" line.
    """
    pattern = re.compile(rb"worker 1 \(pid \d+\): [^\n]*starting on %d" % port)
    blockUntil(lambda: pattern.search(twistd.out + twistd.err), START_TIMEOUT,
               "worker 1 to listen", twistd.describe)


def pidAlive(pid: int) -> bool:
    """
    Whether process C{pid} runs (a zombie does not).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers signal 0; look at its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


#: A plaintext line echo server (it answers C{backend:LINE}) run as
#: C{python BACKEND PORT COUNT-FILE}; it counts its connections in the file.
BACKEND = r'''
import os, sys
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

port, countFile = int(sys.argv[1]), sys.argv[2]

class Echo(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self):
        self.factory.count += 1
        with open(countFile + ".tmp", "w") as f:
            f.write(str(self.factory.count))
        os.replace(countFile + ".tmp", countFile)

    def lineReceived(self, line):
        self.sendLine(b"backend:" + line)

factory = Factory.forProtocol(Echo)
factory.count = 0
factory.noisy = False
reactor.listenTCP(port, factory, interface="127.0.0.1")
print("backend listening on %d" % port, flush=True)
reactor.run()
'''


class Program:
    """
    A subprocess whose standard output and error go to files, stopped in
    cleanup (TERM, then KILL).  Its environment is this process's, with
    the test's C{environment} (a dict), if it has one, added.
    """

    def __init__(self, test: SynchronousTestCase, argv: Sequence[str], name: str,
                 stdin: bool = False, cwd: Optional[str] = None) -> None:
        self.argv = list(argv)
        base = os.path.join(test.workdir, f"{name}-{next(test.counter)}")
        self.outPath, self.errPath = base + ".out", base + ".err"
        self._out = open(self.outPath, "wb")
        self._err = open(self.errPath, "wb")
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=self._out, stderr=self._err,
            env={**subprocessEnvironment(), **getattr(test, "environment", {})},
            cwd=cwd or test.workdir)
        test.addCleanup(self.stop)

    @property
    def pid(self) -> int:
        """
        The process id.
        """
        return self.process.pid

    @property
    def out(self) -> bytes:
        """
        Everything written to standard output so far.
        """
        with open(self.outPath, "rb") as f:
            return f.read()

    @property
    def err(self) -> bytes:
        """
        Everything written to standard error so far.
        """
        with open(self.errPath, "rb") as f:
            return f.read()

    @property
    def running(self) -> bool:
        """
        Whether the program has not ended yet.
        """
        return self.process.poll() is None

    def send(self, data: bytes) -> None:
        """
        Write C{data} to the program's standard input.
        """
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def closeStdin(self) -> None:
        """
        Close the program's standard input, if it has one open.
        """
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def waitFor(self, text: bytes, timeout: float = PEER_TIMEOUT, what: str = "") -> None:
        """
        Wait until C{text} shows up on standard output or error; fail if
        the program ends without it.
        """
        def seen() -> bool:
            if text in self.out + self.err:
                return True
            if not self.running and text not in self.out + self.err:
                raise AssertionError(f"{what or text!r}: the program ended first\n"
                                     f"{self.describe()}")
            return False

        blockUntil(seen, timeout, what or repr(text), self.describe)

    def waitExit(self, timeout: float = PEER_TIMEOUT) -> int:
        """
        Wait for the program to end by itself; fail (and kill it) if it
        does not within C{timeout} seconds.
        """
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"{self.argv[:3]} did not end within {timeout}s\n"
                                 f"{self.describe()}") from None

    def stop(self) -> None:
        """
        Close standard input, terminate the program (KILL after 5 s) and close
        its output files.
        """
        self.closeStdin()
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._out.close()
        self._err.close()

    def describe(self) -> str:
        """
        The command line, exit status and output, for failure messages.
        """
        return (f"argv: {self.argv}\nexit: {self.process.poll()}\n"
                f"stdout: {self.out.decode('utf-8', 'replace')}\n"
                f"stderr: {self.err.decode('utf-8', 'replace')}")


class TapProcessMixin:
    """
    Fixtures for real C{twistd securetcp} processes: a PKI and a working
    directory per test, a plaintext echo backend, twistd on a free port,
    and C{openssl s_client}.
    """

    workdir: str

    def setUp(self) -> None:
        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        if OPENSSL is None:
            raise SkipTest("the openssl binary is not installed")
        self.workdir = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(self.workdir)
        self.counter = iter(range(1, 1000))
        self.pki = TestPKI.create(os.path.join(self.workdir, "pki"))
        self.backendScript = os.path.join(self.workdir, "backend.py")
        with open(self.backendScript, "w") as f:
            f.write(BACKEND)
        self.audit = os.path.join(self.workdir, "audit.jsonl")

    # -- programs -----------------------------------------------------------

    def startListening(self, argv: Callable[[int], List[str]], name: str,
                       ready: Callable[[int], bytes], port: Optional[int] = None) -> Any:
        """
        Start C{argv(port)} on a free port (or C{port}) and wait until
        C{ready(port)} shows up in its output; try other ports if the
        chosen one was taken meanwhile.

        @return: the port and the L{Program}.
        """
        for _attempt in range(3):
            number = port or freePort()
            program = Program(self, argv(number), name)  # type: ignore[arg-type]
            try:
                program.waitFor(ready(number), START_TIMEOUT, f"{name} to listen")
            except AssertionError:
                if port is None and b"Address already in use" in program.out + program.err:
                    continue
                raise
            return number, program
        raise AssertionError(f"{name}: no free port after 3 attempts")

    def backend(self, port: Optional[int] = None) -> Any:
        """
        The plaintext echo backend (it answers C{backend:LINE}), counting
        its connections in a file.

        @return: the port, the L{Program} and the count file's path.
        """
        count = os.path.join(self.workdir, f"backend-connections-{next(self.counter)}")
        number, program = self.startListening(
            lambda p: [sys.executable, self.backendScript, str(p), count], "backend",
            lambda p: b"backend listening on %d" % p, port)
        return number, program, count

    def twistd(self, mode: str, *args: str, name: str = "twistd",
               listen: Optional[Callable[[int], List[str]]] = None,
               port: Optional[int] = None) -> Any:
        """
        Run C{twistd -n --pidfile= securetcp MODE} with C{listen(port)} and
        C{args}, and wait until it listens.

        @return: the port and the L{Program}.
        """
        def argv(p: int) -> List[str]:
            extra = listen(p) if listen is not None else []
            return [TWISTD, "-n", "--pidfile=", "securetcp", mode] + extra + list(args)

        return self.startListening(argv, name, lambda p: b"starting on %d" % p, port)

    def mtlsListen(self, port: int, cert: str = "server") -> List[str]:
        """
        C{--listen mtls:PORT} on 127.0.0.1 with the PKI's C{cert} and CA.
        """
        return ["--listen",
                f"mtls:{port}:interface=127.0.0.1"
                f":certKey={escape(self.pki.path(cert + '.pem'))}"
                f":privateKey={escape(self.pki.path(cert + '.key'))}"
                f":caCerts={escape(self.pki.path('ca.pem'))}"]

    def terminate(self, backendPort: int, port: Optional[int] = None) -> Any:
        """
        C{twistd securetcp terminate} with C{mtls:} in front of
        127.0.0.1:C{backendPort}, writing L{audit}.
        """
        return self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                           "--audit-log", self.audit, listen=self.mtlsListen, port=port)

    def sClient(self, port: int, client: Optional[str] = "client",
                ca: Optional[str] = None, *extra: str) -> Program:
        """
        C{openssl s_client -quiet} to 127.0.0.1:C{port}, presenting
        C{client}'s certificate (if any); it ends when its standard input
        is closed or the server closes.
        """
        argv = [OPENSSL, "s_client", "-quiet", "-no_ign_eof", "-connect", f"127.0.0.1:{port}",
                "-servername", "localhost", "-CAfile", ca or self.pki.path("ca.pem"),
                "-verify_return_error"]
        if client is not None:
            argv += ["-cert", self.pki.path(f"{client}.pem"),
                     "-key", self.pki.path(f"{client}.key")]
        return Program(self, argv + list(extra), "s_client", stdin=True)  # type: ignore[arg-type]

    def exchange(self, port: int, line: bytes, client: Optional[str] = "client") -> Program:
        """
        Send C{line} through s_client, wait for the backend's answer, then
        close; fail unless s_client ends cleanly.
        """
        peer = self.sClient(port, client)
        peer.send(line + b"\n")
        peer.waitFor(b"backend:" + line + b"\n", PEER_TIMEOUT, "the backend's answer")
        peer.closeStdin()
        self.assertEqual(peer.waitExit(), 0, peer.describe())  # type: ignore[attr-defined]
        return peer

    def waitForEvent(self, name: str, count: int = 1, **fields: Any) -> List[Dict[str, Any]]:
        """
        Wait (bounded) until the audit file holds C{count} C{name} records
        with C{fields}.
        """
        def found() -> List[Dict[str, Any]]:
            matching = [r for r in auditEvents(self.audit, name)
                        if all(r.get(k) == v for k, v in fields.items())]
            return matching if len(matching) >= count else []

        return blockUntil(found, PEER_TIMEOUT, f"{count} {name} {fields} audit record(s)",
                          lambda: "\n".join(json.dumps(r) for r in auditRecords(self.audit)))

    def connectionCount(self, countFile: str) -> int:
        """
        How many connections the backend counting in C{countFile} has had.
        """
        if not os.path.exists(countFile):
            return 0
        with open(countFile) as f:
            return int(f.read())

    def assertVerifies(self, path: str, complete: bool = True) -> None:
        """
        C{python -m securetcp audit verify PATH} passes, and so does
        L{verifyFiles}: the chain is intact and complete (exit status 0,
        C{OK:}), or, if not C{complete}, intact but incomplete (exit status
        3, C{INCOMPLETE:}).
        """
        result = subprocess.run([sys.executable, "-m", "securetcp", "audit", "verify", path],
                                capture_output=True, env=subprocessEnvironment(), cwd=self.workdir,
                                timeout=START_TIMEOUT)
        self.assertEqual(result.returncode, 0 if complete else 3,  # type: ignore[attr-defined]
                         (result.stdout + result.stderr).decode())
        self.assertTrue(result.stdout.startswith(  # type: ignore[attr-defined]
            b"OK:" if complete else b"INCOMPLETE:"), result.stdout)
        self.assertTrue(verifyFiles([path]).ok)  # type: ignore[attr-defined]
