"""
The side-by-side run: every server under test on core 0, the C load
generator (and the plaintext echo backend of the proxies) on core 1.

    results = run(Settings.quick(), workDir)

Server CPU time is read from C{/proc/PID/stat} before and after each load,
so the figures are CPU per operation, not wall-clock rates (the machine is
shared).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import instructions, syscalls
from ._held import auditRecords, held, opensslFloor, ticketCost
from ._pki import makePKI
from ._procs import (
    ALL_CPUS,
    Processes,
    cpuSeconds,
    cpuSplit,
    descendants,
    freePort,
    releaseHeld,
    residentKiB,
    runJSON,
    treeCPUSeconds,
    waitListening,
)
from ._profile import memoryProfile, profiled

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVER_CORE = 0
CLIENT_CORE = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    """
    How much work each measurement does.
    """

    name: str
    handshakes: int
    repeats: int
    bulkBytes: int
    echoes: int
    idle: Tuple[int, ...]
    idleLarge: int
    #: the paired phase: rounds of alternating handshake measurements
    pairedRounds: int
    pairedHandshakes: int
    #: handshakes per client in the --workers measurement
    workerHandshakes: int
    #: the paired phase's echoes and bulk bytes per round (terminate, stunnel)
    pairedEchoes: int = 4000
    pairedBulk: int = 256 << 20
    #: idle mTLS connections held while new handshakes are measured
    #: (L{benchmarks._held}); 0: not measured
    held: int = 0
    #: profile the servers (L{benchmarks._profile})
    profile: bool = True

    @classmethod
    def quick(cls) -> Settings:
        return cls("quick", handshakes=400, repeats=1, bulkBytes=512 << 20, echoes=10000,
                   idle=(2000,), idleLarge=0, pairedRounds=3, pairedHandshakes=400,
                   workerHandshakes=150, pairedEchoes=2000, pairedBulk=128 << 20)

    @classmethod
    def full(cls) -> Settings:
        # 21 paired rounds: with 9, the medians' ratios moved by up to 0.15x
        # from one run to the next on a shared two-core machine
        return cls("full", handshakes=1200, repeats=3, bulkBytes=2048 << 20, echoes=20000,
                   idle=(2000,), idleLarge=10000, pairedRounds=21, pairedHandshakes=800,
                   workerHandshakes=400, held=100000)


@dataclasses.dataclass(frozen=True)
class Server:
    """
    One server under test.

    @ivar kind: C{python} (benchmarks/_server.py), C{twistd} (the
        C{twistd securetcp terminate} proxy) or C{stunnel}.
    @ivar tests: which measurements to run against it.
    @ivar plain: it speaks plain TCP, not TLS (the load generator's
        C{plain=1}).
    """

    name: str
    kind: str
    mutual: bool
    label: str
    tests: Tuple[str, ...]
    plain: bool = False


_ALL = ("handshake13", "handshake12", "resumed13", "bulk", "echo", "idle")

SERVERS: Tuple[Server, ...] = (
    Server("twisted-ssl", "python", False, "plain Twisted `ssl:` (CertificateOptions)", _ALL),
    Server("securessl", "python", False, "securetcp `securessl:`", _ALL),
    Server("terminate", "twistd", False,
           "`twistd securetcp terminate` (securessl:) -> plaintext echo backend", _ALL),
    Server("stunnel", "stunnel", False, "stunnel4 -> plaintext echo backend", _ALL),
    Server("tcp-splice", "python", False,
           "no TLS: `terminate`'s splice from plain TCP -> plaintext echo backend "
           "(a proxy on Twisted's reactor before any TLS)", ("echo",), plain=True),
    Server("twisted-mtls", "python", True, "plain Twisted CertificateOptions mTLS", _ALL),
    Server("mtls", "python", True, "securetcp `mtls:` + CRL + AuditLogObserver (full policy)",
           _ALL),
    Server("mtls-noaudit", "python", True, "securetcp `mtls:` + CRL, no audit observer",
           ("handshake13", "resumed13")),
    Server("mtls-tickets", "python", True,
           "securetcp `mtls:` full policy with `resumption=tickets` (sessions in encrypted tickets)",
           ("handshake13", "resumed13")),
    Server("mtls-crl100k", "python", True,
           "securetcp `mtls:` + 100,000-entry CRL + AuditLogObserver", ("handshake13",)),
    Server("stunnel-mtls", "stunnel", True,
           "stunnel4 mTLS (verifyChain, CRLfile) -> plaintext echo backend",
           ("handshake13", "handshake12", "resumed13")),
    Server("stunnel-mtls-crl100k", "stunnel", True,
           "stunnel4 mTLS with the 100,000-entry CRL (is the CRL cost OpenSSL's?)",
           ("handshake13",)),
)


SERVERS_BY_NAME = {s.name: s for s in SERVERS}


# -- prerequisites -----------------------------------------------------------

INSTALL_HINT = "apt-get install -y gcc libssl-dev stunnel4   (as root, Debian/Ubuntu)"


def missingPrerequisites() -> List[str]:
    """
    What this machine lacks to run the harness (the harness never installs
    anything itself).
    """
    missing = []
    if shutil.which("gcc") is None:
        missing.append("gcc (C compiler for the load generator)")
    elif not os.path.exists("/usr/include/openssl/ssl.h"):
        missing.append("libssl-dev (OpenSSL headers for the load generator)")
    if shutil.which("stunnel4") is None and shutil.which("stunnel") is None:
        missing.append("stunnel4 (the Debian package; the reference TLS proxy)")
    if not os.path.exists("/proc/self/stat"):
        missing.append("Linux /proc (CPU time and memory are read from it)")
    return missing


def buildLoadgen(workDir: str) -> str:
    """
    Compile benchmarks/loadgen.c against the system OpenSSL.
    """
    binary = os.path.join(workDir, "loadgen")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", binary, os.path.join(HERE, "loadgen.c"),
                    "-lssl", "-lcrypto"], check=True, timeout=120)
    return binary


# -- machine facts -------------------------------------------------------------


def machineFacts(loadgen: str) -> Dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from OpenSSL import SSL

    import twisted

    stunnelVersion = ""
    stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
    if stunnel:
        out = subprocess.run([stunnel, "-version"], capture_output=True, timeout=10, check=False)
        text = (out.stdout + out.stderr).decode(errors="replace").splitlines()
        stunnelVersion = "; ".join(line.strip() for line in text
                                   if line.startswith(("stunnel ", "Compiled with", "Running with")))
    systemSSL = subprocess.run(["openssl", "version"], capture_output=True, timeout=10,
                               check=False).stdout.decode().strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "pyOpenSSL_openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "system_openssl": systemSSL,
        "stunnel": stunnelVersion,
    }


# -- servers -------------------------------------------------------------------


def _pythonEnv() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


#: twistd itself (``python -m twisted`` is the newer ``twist`` command)
_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


def _stunnelConfig(server: Server, port: int, backend: int, pki: Dict[str, str],
                   workDir: str) -> str:
    lines = [
        "foreground = yes",
        "pid =",
        f"output = {os.path.join(workDir, server.name + '.log')}",
        f"[{server.name}]",
        f"accept = 127.0.0.1:{port}",
        f"connect = 127.0.0.1:{backend}",
        f"cert = {pki['serverBundle']}",
        "sslVersionMin = TLSv1.2",
        "sslVersionMax = TLSv1.3",
    ]
    if server.mutual:
        crl = pki["crlBig"] if server.name.endswith("crl100k") else pki["crl"]
        lines += [f"CAfile = {pki['ca']}", f"CRLfile = {crl}",
                  "verifyChain = yes", "requireCert = yes"]
    path = os.path.join(workDir, server.name + ".conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def startServer(procs: Processes, server: Server, port: int, backend: int,
                pki: Dict[str, str], workDir: str,
                profileTo: Optional[str] = None,
                memory: bool = False) -> subprocess.Popen[bytes]:
    """
    Start C{server} on 127.0.0.1:C{port}, pinned to the server core, and
    wait until it listens.

    @param profileTo: (Python servers) run it under cProfile, switched on
        and off by SIGUSR1, writing here (L{benchmarks._profile}).
    """
    log = os.path.join(workDir, server.name + ".out")
    python = [sys.executable] + (["-m", "benchmarks._profile"] + (["--memory"] if memory else [])
                                 + [profileTo] if profileTo else [])
    if server.kind == "python":
        args = python + ["-m", "benchmarks._server", server.name, str(port), workDir,
                         workDir] + ([str(backend)] if server.plain else [])
        proc = procs.start(args, SERVER_CORE, env=_pythonEnv(), cwd=ROOT, log=log)
    elif server.kind == "twistd":
        listen = (f"securessl:{port}:interface=127.0.0.1:certKey={pki['serverCert']}"
                  f":privateKey={pki['serverKey']}")
        args = python + ["-c", _TWISTD, "-n", "--pidfile=",
                "--logfile", os.path.join(workDir, "twistd.log"),
                "securetcp", "terminate", "--listen", listen,
                "--backend", f"tcp:127.0.0.1:{backend}"]
        proc = procs.start(args, SERVER_CORE, env=_pythonEnv(), cwd=workDir, log=log)
    else:
        stunnel = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"
        conf = _stunnelConfig(server, port, backend, pki, workDir)
        proc = procs.start([stunnel, conf], SERVER_CORE, cwd=workDir, log=log)
    waitListening(proc, port, 120.0 if profileTo else 30.0)
    return proc


# -- measurements ----------------------------------------------------------------


class Bench:
    def __init__(self, settings: Settings, workDir: str, loadgen: str,
                 pki: Dict[str, str], backend: int) -> None:
        self.settings = settings
        self.workDir = workDir
        self.loadgen = loadgen
        self.pki = pki
        self.backend = backend
        self.backendPid: Optional[int] = None

    def _client(self, server: Server) -> List[str]:
        if server.plain:
            return ["plain=1"]
        if server.mutual:
            return [f"cert={self.pki['clientCert']}", f"key={self.pki['clientKey']}"]
        return []

    def _load(self, server: Server, port: int, mode: str, timeout: float,
              **options: Any) -> Dict[str, Any]:
        args = [self.loadgen, mode, f"port={port}"] + self._client(server) + [
            f"{k}={v}" for k, v in options.items()]
        return runJSON(args, CLIENT_CORE, timeout)

    def warmUp(self, server: Server, port: int) -> None:
        """
        A few operations first, so that lazily initialised state is not
        charged to the first measurement.
        """
        if server.plain:
            self._load(server, port, "echo", 120, n=30, size=16384)
        else:
            self._load(server, port, "hs", 120, n=30, version=13)

    def measured(self, proc: subprocess.Popen[bytes], server: Server, port: int, mode: str,
                 timeout: float, **options: Any) -> Dict[str, Any]:
        """
        Run one load and add the server's CPU seconds spent meanwhile: in
        all, in user space and in the kernel.
        """
        user, system = cpuSplit(proc.pid)
        result = self._load(server, port, mode, timeout, **options)
        userAfter, systemAfter = cpuSplit(proc.pid)
        result["server_user_s"] = userAfter - user
        result["server_sys_s"] = systemAfter - system
        result["server_cpu_s"] = result["server_user_s"] + result["server_sys_s"]
        return result

    def handshakes(self, proc: subprocess.Popen[bytes], server: Server, port: int,
                   version: int, resume: bool) -> Dict[str, Any]:
        n = self.settings.handshakes
        runs = [self.measured(proc, server, port, "hs", 300, n=n, version=version,
                              resume=int(resume))
                for _ in range(self.settings.repeats)]
        perOp = [r["server_cpu_s"] / r["ok"] * 1e6 if r["ok"] else None for r in runs]
        good = [p for p in perOp if p is not None]
        last = runs[-1]
        return {
            "runs": runs,
            "cpu_us_per_handshake": statistics.median(good) if good else None,
            "cpu_us_per_handshake_runs": perOp,
            "ok": sum(r["ok"] for r in runs),
            "failed": sum(r["failed"] for r in runs),
            "resumed_fraction": (sum(r["resumed"] for r in runs) / max(1, sum(r["ok"] for r in runs))),
            "latency_first_byte_us": last.get("first_byte_us"),
            "latency_handshake_us": last.get("handshake_us"),
            "negotiated": {k: last.get(k) for k in ("version", "cipher", "group")},
            "wall_per_s": (sum(r["ok"] for r in runs) / sum(r["wall_s"] for r in runs)
                           if sum(r["wall_s"] for r in runs) else None),
        }

    def bulk(self, proc: subprocess.Popen[bytes], server: Server, port: int) -> Dict[str, Any]:
        r = self.measured(proc, server, port, "bulk", 300, bytes=self.settings.bulkBytes,
                          version=13)
        ok = r.get("received") == self.settings.bulkBytes
        gb = self.settings.bulkBytes / 1e9
        return {"run": r, "complete": ok,
                "cpu_s_per_gb": r["server_cpu_s"] / gb if ok else None,
                "wall_mb_per_s": self.settings.bulkBytes / 1e6 / r["wall_s"] if ok else None}

    def echo(self, proc: subprocess.Popen[bytes], server: Server, port: int) -> Dict[str, Any]:
        r = self.measured(proc, server, port, "echo", 300, n=self.settings.echoes, size=16384,
                          version=13)
        ok = r.get("ok") == self.settings.echoes
        return {"run": r, "complete": ok,
                "cpu_us_per_echo": r["server_cpu_s"] / r["ok"] * 1e6 if r.get("ok") else None,
                "rtt_us": r.get("rtt_us")}

    def idle(self, procs: Processes, server: Server, count: int) -> Dict[str, Any]:
        """
        On a fresh server: RSS after a short warm-up, then with C{count} idle
        TLS connections open (each completed a handshake and a 1-byte echo).
        """
        port = freePort()
        proc = startServer(procs, server, port, self.backend, self.pki, self.workDir)
        try:
            self._load(server, port, "hs", 120, n=50, version=13)
            time.sleep(0.5)
            before = residentKiB(proc.pid)
            args = [self.loadgen, "idle", f"port={port}", f"n={count}", "version=13"] + \
                self._client(server)
            client = procs.start(args, CLIENT_CORE, stdin=subprocess.PIPE,
                                 log=os.path.join(self.workDir, "idle-client.out"))
            try:
                ready = self._waitReady(client, timeout=60 + count * 0.02)
                time.sleep(1.0)
                after = residentKiB(proc.pid)
                opened = ready.get("ok", 0)
            finally:
                releaseHeld(client)
                procs.stop(client)
            return {
                "connections": count, "opened": opened, "failed": ready.get("failed"),
                "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_connection": (after - before) / opened if opened else None,
                "open_s": ready.get("open_s"),
                "server_alive": proc.poll() is None,
            }
        finally:
            procs.stop(proc)

    def _waitReady(self, client: subprocess.Popen[bytes], timeout: float) -> Dict[str, Any]:
        out = os.path.join(self.workDir, "idle-client.out")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(out) as f:
                for line in f.read().splitlines()[::-1]:
                    if line.startswith("{") and "ready" in line:
                        os.truncate(out, 0)
                        return json.loads(line)  # type: ignore[no-any-return]
            if client.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("the idle-connection client did not get ready")

    def runServer(self, procs: Processes, server: Server) -> Dict[str, Any]:
        result: Dict[str, Any] = {"label": server.label, "mutual": server.mutual,
                                  "kind": server.kind}
        port = freePort()
        proc = startServer(procs, server, port, self.backend, self.pki, self.workDir)
        try:
            self.warmUp(server, port)
            result["rss_warm_kib"] = residentKiB(proc.pid)
            for test in server.tests:
                started = time.monotonic()
                try:
                    if test == "handshake13":
                        result[test] = self.handshakes(proc, server, port, 13, False)
                    elif test == "handshake12":
                        result[test] = self.handshakes(proc, server, port, 12, False)
                    elif test == "resumed13":
                        result[test] = self.handshakes(proc, server, port, 13, True)
                    elif test == "bulk":
                        result[test] = self.bulk(proc, server, port)
                    elif test == "echo":
                        result[test] = self.echo(proc, server, port)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    result[test] = {"error": str(e)}
                if test in result:
                    result[test]["elapsed_s"] = round(time.monotonic() - started, 2)
                    _progress(server.name, test, result[test])
            result["server_alive_after"] = proc.poll() is None
        finally:
            procs.stop(proc)
        if "idle" in server.tests:
            sizes = list(self.settings.idle)
            if self.settings.idleLarge and server.name in ("mtls", "twisted-mtls"):
                sizes.append(self.settings.idleLarge)
            result["idle"] = {}
            for count in sizes:
                started = time.monotonic()
                try:
                    result["idle"][str(count)] = self.idle(procs, server, count)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    result["idle"][str(count)] = {"error": str(e)}
                result["idle"][str(count)]["elapsed_s"] = round(time.monotonic() - started, 2)
                _progress(server.name, f"idle {count}", result["idle"][str(count)])
        if server.name.startswith("mtls") and server.name != "mtls-noaudit":
            result["audit_records"] = _countLines(os.path.join(self.workDir, f"audit-{server.name}.jsonl"))
        return result


PAIRED: Dict[str, Tuple[str, ...]] = {
    "twisted-ssl": ("handshake13",),
    "securessl": ("handshake13", "resumed13"),
    "twisted-mtls": ("handshake13",),
    "mtls": ("handshake13", "resumed13"),
    "mtls-noaudit": ("handshake13", "resumed13"),
    "mtls-tickets": ("handshake13", "resumed13"),
    "terminate": ("echo", "bulk"),
    "stunnel": ("echo", "bulk"),
    "tcp-splice": ("echo",),
}

#: what a paired measurement's figure is, per test
PAIRED_FIGURE = {"handshake13": "cpu_us_per_handshake", "resumed13": "cpu_us_per_handshake",
                 "echo": "cpu_us_per_echo", "bulk": "cpu_s_per_gb"}


def _pairedRound(bench: Bench, proc: subprocess.Popen[bytes], server: Server, port: int,
                 test: str) -> Dict[str, Any]:
    settings = bench.settings
    if test == "echo":
        r = bench.measured(proc, server, port, "echo", 300, n=settings.pairedEchoes,
                           size=16384, version=13)
        perEcho = 1e6 / r["ok"] if r.get("ok") == settings.pairedEchoes else None
        return {"cpu_us_per_echo": r["server_cpu_s"] * perEcho if perEcho else None,
                "user_us": r["server_user_s"] * perEcho if perEcho else None,
                "sys_us": r["server_sys_s"] * perEcho if perEcho else None,
                "ok": r.get("ok", 0), "resumed": 0}
    if test == "bulk":
        r = bench.measured(proc, server, port, "bulk", 300, bytes=settings.pairedBulk,
                           version=13)
        ok = r.get("received") == settings.pairedBulk
        return {"cpu_s_per_gb": r["server_cpu_s"] / (settings.pairedBulk / 1e9) if ok else None,
                "ok": int(ok), "resumed": 0}
    r = bench.measured(proc, server, port, "hs", 300, n=settings.pairedHandshakes, version=13,
                       resume=int(test == "resumed13"))
    perOp = 1e6 / r["ok"] if r["ok"] else None
    return {"cpu_us_per_handshake": r["server_cpu_s"] * perOp if perOp else None,
            "user_us": r["server_user_s"] * perOp if perOp else None,
            "sys_us": r["server_sys_s"] * perOp if perOp else None,
            "ok": r["ok"], "resumed": r["resumed"]}


def paired(bench: Bench, procs: Processes, servers: List[Server]) -> Dict[str, Any]:
    """
    The ratios that decide targets, measured with all the servers running at
    once (idle ones cost nothing) and their measurements alternating, round
    after round, so slow phases of the shared machine hit all of them alike.
    """
    settings = bench.settings
    chosen = [s for s in servers if s.name in PAIRED]
    if not chosen:
        return {}
    running = []
    for server in chosen:
        port = freePort()
        proc = startServer(procs, server, port, bench.backend, bench.pki, bench.workDir)
        bench.warmUp(server, port)
        running.append((server, port, proc))
    out: Dict[str, Any] = {s.name: {t: [] for t in PAIRED[s.name]} for s in chosen}
    try:
        for round in range(settings.pairedRounds):
            order = running[round % len(running):] + running[:round % len(running)]
            for server, port, proc in order:
                for test in PAIRED[server.name]:
                    out[server.name][test].append(_pairedRound(bench, proc, server, port, test))
    finally:
        for _, _, proc in running:
            procs.stop(proc)
    summary: Dict[str, Any] = {}
    for name, tests in out.items():
        summary[name] = {}
        for test, runs in tests.items():
            figure = PAIRED_FIGURE[test]
            values = [r[figure] for r in runs if r[figure]]
            summary[name][test] = {
                figure: statistics.median(values) if values else None,
                "runs_us": values,
                "resumed_fraction": sum(r["resumed"] for r in runs) / max(1, sum(r["ok"] for r in runs)),
            }
            for part in ("user_us", "sys_us"):
                split = [r[part] for r in runs if r.get(part) is not None]
                if split:
                    summary[name][test][part] = statistics.median(split)
            _progress(name, f"paired {test}", summary[name][test])
    return summary


def _countLines(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _progress(server: str, test: str, data: Dict[str, Any]) -> None:
    keys = ("cpu_us_per_handshake", "resumed_fraction", "cpu_s_per_gb", "cpu_us_per_echo",
            "kib_per_connection", "opened", "error")
    shown = ", ".join(f"{k}={data[k]:.3g}" if isinstance(data[k], float) else f"{k}={data[k]}"
                      for k in keys if k in data)
    print(f"  {server:14} {test:12} {shown}  ({data.get('elapsed_s', '')} s)", flush=True)


def workersScaling(bench: Bench, procs: Processes, clients: int = 12) -> Dict[str, Any]:
    """
    Handshakes per second of C{twistd securetcp terminate --workers 1} and
    C{--workers 2}.  Both need both CPUs, so here the server processes and
    C{clients} concurrent load generators share the two CPUs (no pinning).
    """
    out: Dict[str, Any] = {"clients": clients}
    n = bench.settings.workerHandshakes
    for workers in (1, 2):
        port = freePort()
        listen = (f"securessl:{port}:interface=127.0.0.1:certKey={bench.pki['serverCert']}"
                  f":privateKey={bench.pki['serverKey']}")
        args = [sys.executable, "-c", _TWISTD, "-n", "--pidfile=",
                "--logfile", os.path.join(bench.workDir, f"twistd-workers{workers}.log"),
                "securetcp", "terminate", "--workers", str(workers), "--listen", listen,
                "--backend", f"tcp:127.0.0.1:{bench.backend}"]
        proc = procs.start(args, None, env=_pythonEnv(), cwd=bench.workDir,
                           log=os.path.join(bench.workDir, f"workers{workers}.out"))
        tree: List[int] = []
        try:
            waitListening(proc, port)
            time.sleep(2.0 if workers > 1 else 0.5)  # let the workers start
            tree = descendants(proc.pid)
            for _ in range(4 * workers):
                runJSON([bench.loadgen, "hs", f"port={port}", "n=25", "version=13"], None, 120)
            before = treeCPUSeconds(tree)
            backendBefore = cpuSeconds(bench.backendPid) if bench.backendPid else 0.0
            clientsBefore = _childrenCPUSeconds()
            started = time.monotonic()
            loads = [procs.start([bench.loadgen, "hs", f"port={port}", f"n={n}", "version=13"],
                                 None, stdin=subprocess.DEVNULL,
                                 log=os.path.join(bench.workDir, f"workers{workers}-{k}.json"))
                     for k in range(clients)]
            for load in loads:
                load.wait(300)
            wall = time.monotonic() - started
            cpu = treeCPUSeconds(tree) - before
            clientCPU = _childrenCPUSeconds() - clientsBefore
            backendCPU = (cpuSeconds(bench.backendPid) - backendBefore) if bench.backendPid else 0.0
            done = 0
            for k in range(clients):
                with open(os.path.join(bench.workDir, f"workers{workers}-{k}.json")) as f:
                    lines = [line for line in f.read().splitlines() if line.startswith("{")]
                done += json.loads(lines[-1])["ok"] if lines else 0
            out[str(workers)] = {
                "processes": len(tree), "handshakes": done, "wall_s": round(wall, 3),
                "handshakes_per_s": done / wall if wall else None,
                "cpu_us_per_handshake": cpu / done * 1e6 if done else None,
                "client_cpu_us_per_handshake": clientCPU / done * 1e6 if done else None,
                "backend_cpu_us_per_handshake": backendCPU / done * 1e6 if done else None,
                # CPUs kept busy by server, load generators and backend together
                "cpus_busy": round((cpu + clientCPU + backendCPU) / wall, 2) if wall else None,
            }
        except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as e:
            out[str(workers)] = {"error": str(e)}
        finally:
            procs.stop(proc)
            for pid in tree[1:]:  # the workers stop with their parent; make sure
                try:
                    os.kill(pid, 15)
                except OSError:
                    pass
        _progress("terminate", f"workers {workers}", out[str(workers)])
    one, two = out.get("1", {}).get("handshakes_per_s"), out.get("2", {}).get("handshakes_per_s")
    out["ratio"] = two / one if one and two else None
    # The most two workers can reach here: every CPU busy, each handshake
    # costing the server, client and backend CPU measured with two workers.
    perHandshake = [out.get("2", {}).get(k) for k in
                    ("cpu_us_per_handshake", "client_cpu_us_per_handshake",
                     "backend_cpu_us_per_handshake")]
    if one and all(v is not None for v in perHandshake):
        ceiling = len(ALL_CPUS) / (sum(perHandshake) / 1e6)  # type: ignore[arg-type]
        out["ceiling_handshakes_per_s"] = ceiling
        out["ceiling_ratio"] = ceiling / one
    return out


def _childrenCPUSeconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workersAvailable() -> bool:
    """
    Whether C{twistd securetcp terminate} has a C{--workers} option yet.
    """
    out = subprocess.run([sys.executable, "-c", _TWISTD, "securetcp", "terminate", "--help"],
                         capture_output=True, env=_pythonEnv(), timeout=60, check=False)
    return b"--workers" in out.stdout + out.stderr


def run(settings: Settings, workDir: str, only: Optional[List[str]] = None) -> Dict[str, Any]:
    """
    The whole side-by-side run; returns the results (JSON-ready).
    """
    started = time.monotonic()
    loadgen = buildLoadgen(workDir)
    servers = [s for s in SERVERS if not only or s.name in only]
    bigCRL = 100_000 if any(s.name.endswith("crl100k") for s in servers) else 0
    pki = makePKI(workDir, bigCRL=bigCRL)
    results: Dict[str, Any] = {
        "settings": dataclasses.asdict(settings),
        "machine": machineFacts(loadgen),
        "servers": {},
        "notes": {
            "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
            "handshake": "connect, full handshake, 1-byte echo, close_notify, close",
            "bulk": "one TLS 1.3 connection; bytes sent one way and echoed back; "
                    "CPU s per GB of payload sent",
            "echo": "one TLS 1.3 connection; write 16 KiB, read 16 KiB back",
        },
    }
    with Processes() as procs:
        backendPort = freePort()
        backend = procs.start([loadgen, "backend", f"port={backendPort}"], CLIENT_CORE,
                              log=os.path.join(workDir, "backend.out"))
        waitListening(backend, backendPort)
        bench = Bench(settings, workDir, loadgen, pki, backendPort)
        bench.backendPid = backend.pid
        for server in servers:
            print(f"{server.name}: {server.label}", flush=True)
            try:
                results["servers"][server.name] = bench.runServer(procs, server)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                results["servers"][server.name] = {"label": server.label, "error": str(e)}
                print(f"  {server.name} failed: {e}", flush=True)
        if settings.pairedRounds and any(s.name in PAIRED for s in servers):
            print("paired: alternating handshake measurements", flush=True)
            try:
                results["paired"] = paired(bench, procs, servers)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                results["paired"] = {"error": str(e)}
        if settings.profile:
            print("profiles: servers under cProfile (where the time goes)", flush=True)
            results["profiles"] = profiled(bench, procs, [s.name for s in servers])
            if any(s.name == "mtls" for s in servers):
                results["memory_profile"] = memoryProfile(bench, procs)
                _progress("mtls", "memory", results["memory_profile"])
        if any(s.name == "mtls" for s in servers):
            print("openssl floor: memory per idle connection of OpenSSL alone", flush=True)
            results["openssl_floor"] = opensslFloor(workDir, pki)
            _progress("openssl", "floor", results["openssl_floor"])
            print("tickets: server CPU per handshake under each resumption mode",
                  flush=True)
            results["ticket_cost"] = ticketCost(pki)
            print(f"  {results['ticket_cost']}", flush=True)
            print("audit cost: CPU per connection of the audit calls, in process", flush=True)
            results["audit_cost"] = auditRecords(pki)
            print(f"  {results['audit_cost']}", flush=True)
        if settings.name == "full" and instructions.available() and \
                {"mtls", "securessl"} <= {s.name for s in servers}:
            print("instructions: each Python server under callgrind", flush=True)
            results["instructions"] = instructions.measure(1000, loadgen, workDir, pki)
        if settings.name == "full" and syscalls.available() and \
                {"mtls", "securessl"} <= {s.name for s in servers}:
            print("syscalls: each Python server under strace -c", flush=True)
            results["syscalls"] = syscalls.measure(1000, loadgen, workDir, pki)
        if settings.held and any(s.name == "mtls" for s in servers):
            print(f"held: {settings.held:,} idle mTLS connections, new handshakes meanwhile",
                  flush=True)
            results["held"] = held(bench, procs, SERVERS_BY_NAME["mtls"], settings.held)
            _progress("mtls", "held", results["held"])
        results["workers_option"] = workersAvailable()
        if results["workers_option"] and any(s.name == "terminate" for s in servers):
            print("workers: terminate --workers 1 vs 2 (all CPUs shared)", flush=True)
            results["workers"] = workersScaling(bench, procs)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def runHeld(count: int, workDir: str) -> Dict[str, Any]:
    """
    The held-connections measurement alone (C{python -m benchmarks --held N}):
    C{count} idle connections to the C{mtls} server, new handshakes meanwhile.
    """
    started = time.monotonic()
    loadgen = buildLoadgen(workDir)
    pki = makePKI(workDir, bigCRL=0)
    results: Dict[str, Any] = {"machine": machineFacts(loadgen), "mode": "held"}
    with Processes() as procs:
        bench = Bench(Settings.quick(), workDir, loadgen, pki, 0)
        results["openssl_floor"] = opensslFloor(workDir, pki)
        _progress("openssl", "floor", results["openssl_floor"])
        results["held"] = held(bench, procs, SERVERS_BY_NAME["mtls"], count)
        _progress("mtls", "held", results["held"])
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results
