"""
Instructions per full TLS 1.3 handshake of the Python servers, counted by
valgrind's callgrind in the real server process (user space: the
interpreter, libc and OpenSSL; not the kernel):

    python -m benchmarks.instructions [--handshakes 1000] [--into RESULTS.json]

Each server (C{python -m benchmarks._server MODE}) runs under callgrind
with counting off; after 30 handshakes of warm-up, counting is switched on
(C{callgrind_control}) for C{--handshakes} handshakes from the C load
generator, and off again.  Unlike CPU time on a shared machine, the count
is the same from one run to the next within about 0.5 % (how the reactor's
reads and writes interleave varies a little), so it settles ratios that
the paired CPU rounds cannot at a few per cent.  It leaves out what the
kernel does (sockets) and what memory costs (cache misses), and valgrind
runs SHA-256 without the CPU's SHA instructions, so hashing reads higher
than it costs.

With C{--into}, the figures are added to a run's results file
(C{benchmarks/results/results-DATE.json}) as C{"instructions"}, for
C{python -m benchmarks --report} to show; otherwise they are printed as
JSON.  The full run (C{python -m benchmarks}) measures them itself when
valgrind is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

from ._perserver import handshakeLoad, measureEach
from ._perserver import main as commandLine
from ._perserver import table as perServerTable
from ._procs import Processes, freePort, runJSON, waitListening

#: the servers counted: each plain Twisted server and securetcp's against it
MODES = ("twisted-ssl", "securessl", "twisted-mtls", "mtls", "mtls-noaudit")


def _totals(path: str) -> int:
    """
    The instruction total of a callgrind output file (its last C{totals:}
    line; the C{summary:} near the top can be 0 when counting started off).
    """
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                total = int(line.split()[1])
    if total is None:
        raise RuntimeError(f"{path}: no totals (did callgrind finish?)")
    return total


def _toggle(pid: int, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)],
                   check=True, capture_output=True, timeout=120)


def count(mode: str, handshakes: int, loadgen: str, workDir: str,
          pki: Dict[str, str]) -> Dict[str, Any]:
    """
    Instructions per full TLS 1.3 handshake of server C{mode}.
    """
    from ._harness import CLIENT_CORE, ROOT, SERVER_CORE, _pythonEnv

    out = os.path.join(workDir, f"callgrind-{mode}.out")
    load = handshakeLoad(loadgen, mode, pki)
    with Processes() as procs:
        port = freePort()
        server = procs.start(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks._server", mode,
             str(port), workDir, workDir],
            SERVER_CORE, env=_pythonEnv(), cwd=ROOT,
            log=os.path.join(workDir, f"callgrind-{mode}.log"))
        waitListening(server, port, 600)
        runJSON(load + [f"port={port}", "n=30"], CLIENT_CORE, 600)
        _toggle(server.pid, True)
        done = runJSON(load + [f"port={port}", f"n={handshakes}"], CLIENT_CORE,
                       60 + handshakes * 2)
        _toggle(server.pid, False)
        procs.stop(server)
    if not done.get("ok"):
        raise RuntimeError(f"{mode}: no handshake completed under callgrind: {done}")
    return {"instructions_per_handshake": round(_totals(out) / done["ok"]),
            "handshakes": done["ok"]}


def measure(handshakes: int, loadgen: str, workDir: str, pki: Dict[str, str],
            modes: Sequence[str] = MODES) -> Dict[str, Any]:
    """
    L{count} for each of C{modes}; a server that fails is reported as an
    error, not counted.
    """
    return measureEach(count, handshakes, loadgen, workDir, pki, modes)


#: the ratios the report shows: (ours, theirs, what the ratio is)
RATIOS = (("securessl", "twisted-ssl", "`securessl:` vs plain Twisted `ssl:`"),
          ("mtls", "twisted-mtls", "`mtls:` full policy vs plain Twisted mTLS"),
          ("mtls", "mtls-noaudit", "AuditLogObserver (`mtls` vs `mtls-noaudit`)"))


def figure(results: Dict[str, Any], mode: str) -> Optional[int]:
    """
    A run's instructions per handshake for server C{mode}, if counted.
    """
    value = ((results.get("instructions") or {}).get(mode) or {}).get(
        "instructions_per_handshake")
    return int(value) if value else None


def sentence(results: Dict[str, Any], ours: str, theirs: str) -> str:
    """
    The instruction counts of C{ours} and C{theirs}, as a sentence for the
    report (empty if not counted).
    """
    a, b = figure(results, ours), figure(results, theirs)
    if a is None or b is None:
        return ""
    return (f" Counted in instructions instead (callgrind, this run, the server's user "
            f"space): {a:,} vs {b:,} per full handshake = {a / b:.3f}x.")


def table(results: Dict[str, Any]) -> str:
    """
    The report's table of instructions per handshake and their ratios.
    """
    return perServerTable(
        results, "instructions", "instructions_per_handshake", MODES,
        ["instructions per full TLS 1.3 handshake"],
        lambda c: [f"{c['instructions_per_handshake']:,}"], RATIOS, "instructions",
        lambda a, b: f"{a['instructions_per_handshake'] / b['instructions_per_handshake']:.3f}x")


def available() -> bool:
    """
    Whether valgrind (with C{callgrind_control}) is installed.
    """
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def main(argv: List[str]) -> int:
    return commandLine(argv, "python -m benchmarks.instructions", "instructions", available,
                       "valgrind", count, MODES)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
