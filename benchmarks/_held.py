"""
Many idle mTLS connections held open against one server process, and what
a new client's handshake costs meanwhile:

    python -m benchmarks --held 100000      # this measurement alone
    python -m benchmarks                    # the full run includes it

The C load generator opens the connections one after another (each a full
mTLS handshake and a 1-byte echo) from several loopback source addresses
(127.0.0.2, 127.0.0.3, ...: one source address has only about 28,000
ephemeral ports towards one server port) and keeps them idle.  While they
are held, another load generator makes new handshakes one at a time; the
harness reports their latency (p50/p99, connect to first echoed byte), the
server's CPU per handshake, and the server's resident memory per held
connection.

The harness raises its own open-file limit (inherited by the server and
the load generator) to what the count needs; that takes root, or a hard
limit already high enough.  The server's memory floor: how much of a held
connection is OpenSSL's own state (L{opensslFloor}).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any, Dict, Optional

from ._procs import Processes, freePort, releaseHeld, residentKiB

#: connections per loopback source address (of about 28,000 ports each)
PER_SOURCE = 10000
#: new handshakes measured while the connections are held
PROBE_HANDSHAKES = 1000


def raiseFileLimit(needed: int) -> Optional[str]:
    """
    Raise this process's open-file limit (soft and hard) to at least
    C{needed}, so that the processes it starts may open that many.

    @return: why it could not, or C{None}.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                ceiling = int(f.read())
        except (OSError, ValueError):
            ceiling = needed
        if ceiling < needed:
            return (f"fs.nr_open is {ceiling:,}, below the {needed:,} files needed "
                    f"(sysctl -w fs.nr_open={needed})")
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        except (ValueError, OSError) as e:
            return (f"the open-file limit cannot be raised from {hard:,} to {needed:,} "
                    f"({e}): that needs root with CAP_SYS_RESOURCE (a container may drop "
                    f"it), or a hard limit set that high beforehand (ulimit -Hn)")
        return None
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    return None


def availableKiB() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def held(bench: Any, procs: Processes, server: Any, count: int) -> Dict[str, Any]:
    """
    On a fresh C{server}: hold C{count} idle connections and measure new
    handshakes meanwhile (see the module docstring).
    """
    from ._harness import CLIENT_CORE, startServer

    wanted = count
    limited = raiseFileLimit(count + 10000)
    if limited is not None:
        # hold as many as this machine lets a process open, and say why
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        count = max(0, min(count, hard - 1000))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # the server and the load generator each hold the connections; about
    # 40 KiB each side, with room to spare
    needKiB = count * 120
    if availableKiB() < needKiB or not count:
        return {"connections": wanted, "error": limited or (
            f"{availableKiB() >> 20} GiB of memory available, {needKiB >> 20} GiB wanted")}
    port = freePort()
    proc = startServer(procs, server, port, bench.backend, bench.pki, bench.workDir)
    out: Dict[str, Any] = {"connections": count, "wanted": wanted, "limited": limited,
                           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                           "sources": max(1, -(-count // PER_SOURCE))}
    log = os.path.join(bench.workDir, "held-client.out")
    try:
        bench._load(server, port, "hs", 120, n=50, version=13)
        out["baseline"] = _probe(bench, proc, server, port)
        time.sleep(0.5)
        out["rss_before_kib"] = before = residentKiB(proc.pid)
        args = [bench.loadgen, "idle", f"port={port}", f"n={count}", "version=13",
                f"sources={out['sources']}", f"progress={max(1000, count // 20)}"
                ] + bench._client(server)
        client = procs.start(args, CLIENT_CORE, stdin=subprocess.PIPE, log=log)
        try:
            ready = _waitReady(log, client, timeout=120 + count * 0.02)
            time.sleep(2.0)
            out["rss_after_kib"] = after = residentKiB(proc.pid)
            out["client_rss_kib"] = residentKiB(client.pid)
            opened = ready.get("ok", 0)
            out.update(opened=opened, failed=ready.get("failed"), open_s=ready.get("open_s"))
            out["kib_per_connection"] = (after - before) / opened if opened else None
            out["while_held"] = _probe(bench, proc, server, port)
            out["server_alive"] = proc.poll() is None
        finally:
            releaseHeld(client)
            try:
                client.wait(120)
            except subprocess.TimeoutExpired:
                pass
            procs.stop(client)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        out["error"] = str(e)
    finally:
        procs.stop(proc)
    return out


def _probe(bench: Any, proc: Any, server: Any, port: int) -> Dict[str, Any]:
    r = bench.measured(proc, server, port, "hs", 300, n=PROBE_HANDSHAKES, version=13)
    first = r.get("first_byte_us") or {}
    return {"ok": r.get("ok"), "failed": r.get("failed"),
            "p50_ms": first.get("p50", 0) / 1000 if first else None,
            "p99_ms": first.get("p99", 0) / 1000 if first else None,
            "cpu_us_per_handshake": r["server_cpu_s"] / r["ok"] * 1e6 if r.get("ok") else None}


def _waitReady(log: str, client: subprocess.Popen[bytes], timeout: float) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = 0
    while time.monotonic() < deadline:
        with open(log) as f:
            lines = [line for line in f.read().splitlines() if line.startswith("{")]
        for line in lines[shown:]:
            data = json.loads(line)
            if data.get("ready"):
                return data  # type: ignore[no-any-return]
            print(f"    held: {data.get('opening'):,} open after {data.get('open_s')} s",
                  flush=True)
        shown = len(lines)
        if client.poll() is not None:
            raise RuntimeError(f"the load generator holding the connections exited "
                               f"({client.returncode}) before it was ready")
        time.sleep(1.0)
    raise RuntimeError("the load generator did not open the connections in time")


def opensslFloor(workDir: str, pki: Dict[str, str], connections: int = 2000) -> Dict[str, Any]:
    """
    OpenSSL's own memory per idle server connection (a process with nothing
    but pyOpenSSL and securetcp's context: L{benchmarks.openssl_memory}),
    for TLS and mTLS, with the buffers released as securetcp has them, and for
    mTLS with C{resumption=tickets} (no sessions kept in OpenSSL's cache).
    """
    from ._harness import CLIENT_CORE, ROOT, _pythonEnv

    out: Dict[str, Any] = {"connections": connections}
    for variant in ("tls_release", "mtls_release", "mtls_release_tickets"):
        try:
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.openssl_memory", "--variant", variant,
                 "--connections", str(connections), "--pki", json.dumps(pki)],
                capture_output=True, text=True, check=True, timeout=600, cwd=ROOT,
                env=_pythonEnv(), preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}))
            out[variant] = float(done.stdout.split()[-1])
        except (subprocess.SubprocessError, OSError, ValueError, IndexError) as e:
            out[variant] = None
            out["error"] = str(e)
    return out


def _inProcess(module: str, pki: Dict[str, str], *arguments: str) -> Dict[str, Any]:
    """
    What an in-process measurement (C{python -m benchmarks.MODULE}, with
    the run's certificates) prints as JSON, run in a process of its own.
    """
    from ._harness import CLIENT_CORE, ROOT, _pythonEnv

    try:
        done = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{module}", *arguments, "--pki", json.dumps(pki)],
            capture_output=True, text=True, check=True, timeout=600, cwd=ROOT,
            env=_pythonEnv(), preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}))
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        return {"error": str(e)}


def ticketCost(pki: Dict[str, str], handshakes: int = 1500) -> Dict[str, Any]:
    """
    Server CPU per TLS 1.3 handshake under each session `resumption` mode
    (L{benchmarks.ticket_cost}), in a process of its own.
    """
    return _inProcess("ticket_cost", pki, "--handshakes", str(handshakes))


def auditRecords(pki: Dict[str, str], connections: int = 3000) -> Dict[str, Any]:
    """
    CPU per connection of the audit calls with and without the audit file,
    one connection after another and each after a full mTLS handshake
    (L{benchmarks.audit_records}), in a process of its own.
    """
    return _inProcess("audit_records", pki, "--connections", str(connections), "--json")
