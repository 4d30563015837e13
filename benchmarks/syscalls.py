"""
System calls per full TLS 1.3 handshake of the Python servers, counted by
C{strace -c} attached to the real server process:

    python -m benchmarks.syscalls [--handshakes 1000] [--into RESULTS.json]

Each server (C{python -m benchmarks._server MODE}) gets 300 handshakes of
warm-up from the C load generator; then strace is attached for
C{--handshakes} more and detached.  strace slows every call down, so its
times are not reported, only the counts, which repeat from one run to the
next (how the reactor's reads and writes interleave varies them by a
fraction of a call).  They are the kernel's side of the handshake that
L{benchmarks.instructions} leaves out: a C{sendto} on loopback also runs
the receiver's TCP input, so each send costs tens of microseconds, where an
C{epoll_ctl} or C{getsockname} costs about one.

With C{--into}, the figures are added to a run's results file
(C{benchmarks/results/results-DATE.json}) as C{"syscalls"}, for
C{python -m benchmarks --report} to show; otherwise they are printed as
JSON.  The full run (C{python -m benchmarks}) counts them itself when
strace is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from ._perserver import counted, handshakeLoad, measureEach
from ._perserver import main as commandLine
from ._perserver import table as perServerTable
from ._procs import Processes, freePort, runJSON, waitListening
from .instructions import SERVER_RATIOS as RATIOS
from .instructions import SERVERS as MODES


def parse(text: str) -> Dict[str, int]:
    """
    The calls per system call name of a C{strace -c} summary.
    """
    calls: Dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    return calls


def count(mode: str, handshakes: int, loadgen: str, workDir: str,
          pki: Dict[str, str]) -> Dict[str, Any]:
    """
    System calls per full TLS 1.3 handshake of server C{mode}: in all, and
    per name.
    """
    from ._harness import CLIENT_CORE, ROOT, SERVER_CORE, _pythonEnv

    out = os.path.join(workDir, f"strace-{mode}.out")
    load = handshakeLoad(loadgen, mode, pki)
    with Processes() as procs:
        port = freePort()
        server = procs.start(
            [sys.executable, "-m", "benchmarks._server", mode, str(port), workDir, workDir],
            SERVER_CORE, env=_pythonEnv(), cwd=ROOT,
            log=os.path.join(workDir, f"strace-{mode}.log"))
        waitListening(server, port)
        runJSON(load + [f"port={port}", "n=300"], CLIENT_CORE, 120)
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(server.pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
        try:
            done = runJSON(load + [f"port={port}", f"n={handshakes}"], CLIENT_CORE,
                           60 + handshakes)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(60)
        procs.stop(server)
    if not done.get("ok"):
        raise RuntimeError(f"{mode}: no handshake completed under strace: {done}")
    with open(out) as f:
        calls = parse(f.read())
    ok = done["ok"]
    return {"syscalls_per_handshake": round(sum(calls.values()) / ok, 2),
            "per_name": {name: round(n / ok, 2) for name, n in
                         sorted(calls.items(), key=lambda kv: -kv[1]) if n / ok >= 0.01},
            "handshakes": ok}


def measure(handshakes: int, loadgen: str, workDir: str, pki: Dict[str, str],
            modes: Sequence[str] = MODES) -> Dict[str, Any]:
    """
    L{count} for each of C{modes}; a server that fails is reported as an
    error, not counted.
    """
    return measureEach(count, handshakes, loadgen, workDir, pki, modes)


def _counted(results: Dict[str, Any], mode: str) -> Optional[Dict[str, Any]]:
    return counted(results, "syscalls", mode, "syscalls_per_handshake")


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    """
    The system calls whose counts per handshake differ by at least 0.5.
    """
    names = sorted(set(a["per_name"]) | set(b["per_name"]))
    parts = [f"{name} {a['per_name'].get(name, 0):g} vs {b['per_name'].get(name, 0):g}"
             for name in names
             if abs(a["per_name"].get(name, 0) - b["per_name"].get(name, 0)) >= 0.5]
    return "; ".join(parts) if parts else "none by half a call or more"


def sentence(results: Dict[str, Any], ours: str, theirs: str) -> str:
    """
    The system calls of C{ours} and C{theirs} per handshake, as a sentence
    for the report (empty if not counted).
    """
    a, b = _counted(results, ours), _counted(results, theirs)
    if a is None or b is None:
        return ""
    return (f" System calls per handshake (strace, this run): "
            f"{a['syscalls_per_handshake']:g} vs {b['syscalls_per_handshake']:g}; those that "
            f"differ: {_differences(a, b)}.")


def table(results: Dict[str, Any]) -> str:
    """
    The report's table of system calls per handshake: the total and the
    sends, and the differences of each ratio's pair.
    """
    return perServerTable(
        results, "syscalls", "syscalls_per_handshake", MODES,
        ["system calls per full TLS 1.3 handshake", "of which `sendto`"],
        lambda c: [f"{c['syscalls_per_handshake']:g}", f"{c['per_name'].get('sendto', 0):g}"],
        RATIOS, "system calls that differ, per handshake", _differences)


def available() -> bool:
    """
    Whether strace is installed.
    """
    return bool(shutil.which("strace"))


def main(argv: List[str]) -> int:
    return commandLine(argv, "python -m benchmarks.syscalls", "syscalls", available,
                       "strace", count, MODES)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
