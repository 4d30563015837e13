"""
Instructions per full TLS 1.3 handshake of the Python servers, counted by
valgrind's callgrind in the real server process (user space: the
interpreter, libc and OpenSSL; not the kernel), and where they are: in
OpenSSL (the copy inside cryptography's library, which pyOpenSSL calls),
the interpreter, libc, the system's libcrypto (which only Python's
C{hashlib} uses in these servers: the audit chain's SHA-256) or elsewhere:

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

C{securessl-resumed} is the C{securessl} server counted over resumed
handshakes (the load generator offers each connection the previous one's
ticket; the one full handshake that gets the first ticket is counted too,
a thousandth of the count at the default 1,000): how OpenSSL's own instructions for a
resumption compare with a full handshake's, with nothing else in the way.

With C{--into}, the figures are added to a run's results file
(C{benchmarks/results/results-DATE.json}) as C{"instructions"}, for
C{python -m benchmarks --report} to show; otherwise they are printed as
JSON.  The full run (C{python -m benchmarks}) measures them itself when
valgrind is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

from ._perserver import counted, handshakeLoad, measureEach
from ._perserver import main as commandLine
from ._perserver import table as perServerTable
from ._procs import Processes, freePort, runJSON, waitListening

#: the servers counted over full handshakes: each plain Twisted server and
#: securetcp's against it (what C{syscalls.py} counts too)
SERVERS = ("twisted-ssl", "securessl", "twisted-mtls", "mtls", "mtls-noaudit")

#: what is counted: L{SERVERS}, and C{securessl} over resumed handshakes
MODES = SERVERS + ("securessl-resumed",)

#: what a mode counts over resumed handshakes ends with
RESUMED = "-resumed"

#: where instructions are, by the file name of the shared object they are in
#: (the first pattern that matches), and the report's name for each
PLACES = (("openssl", re.compile(r"/cryptography/.*_rust[^/]*\.so$"),
           "cryptography's library (its OpenSSL)"),
          ("interpreter", re.compile(r"/libpython[^/]*\.so|/python3(\.\d+)?$"),
           "the interpreter"),
          ("libc", re.compile(r"/libc\.so"), "libc"),
          ("hashlib", re.compile(r"/libcrypto\.so"), "the system's libcrypto (hashlib)"),
          ("other", re.compile(r""), "other"))

_NAMED = re.compile(r"^(ob|fn|cob|cfn)=\((\d+)\)(?: (.*))?$")


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


def selfCosts(path: str) -> Dict[str, int]:
    """
    The instructions of a callgrind output file spent in each shared object
    itself (not in what it calls), by the object's file name; they add up
    to the file's total.

    The format: C{ob=} and C{fn=} set the object and function the cost
    lines after them belong to (a name is given once with its number,
    C{(7) /path}, and by the number alone after that, C{cob=} and C{cfn=}
    sharing the numbers); a cost line (a position, then the count) after a
    C{calls=} line is what that call cost, inclusive, and belongs to the
    callee.
    """
    names: Dict[str, Dict[str, str]] = {"ob": {}, "fn": {}}
    obj = ""
    costs: Dict[str, int] = {}
    afterCall = False
    with open(path) as f:
        for line in f:
            first = line[:1]
            if first.isdigit() or first in "+-*":
                if afterCall:
                    afterCall = False
                    continue
                fields = line.split()
                if len(fields) > 1:
                    costs[obj] = costs.get(obj, 0) + int(fields[1])
                continue
            if line.startswith("calls="):
                afterCall = True
                continue
            named = _NAMED.match(line.rstrip("\n"))
            if named:
                kind, number, name = named.groups()
                space = names["ob" if kind in ("ob", "cob") else "fn"]
                if name is not None:
                    space[number] = name
                if kind == "ob":
                    obj = space[number]
    return costs


def places(costs: Dict[str, int]) -> Dict[str, int]:
    """
    L{selfCosts} gathered into L{PLACES}.
    """
    out = {key: 0 for key, _, _ in PLACES}
    for obj, cost in costs.items():
        key = next(key for key, pattern, _ in PLACES if pattern.search(obj))
        out[key] += cost
    return out


def _toggle(pid: int, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)],
                   check=True, capture_output=True, timeout=120)


def count(mode: str, handshakes: int, loadgen: str, workDir: str,
          pki: Dict[str, str]) -> Dict[str, Any]:
    """
    Instructions per TLS 1.3 handshake of server C{mode} (full, or resumed
    for a mode ending in L{RESUMED}), in all and in each of L{PLACES}.
    """
    from ._harness import CLIENT_CORE, ROOT, SERVER_CORE, _pythonEnv

    out = os.path.join(workDir, f"callgrind-{mode}.out")
    resumed = mode.endswith(RESUMED)
    serverMode = mode[:-len(RESUMED)] if resumed else mode
    load = handshakeLoad(loadgen, serverMode, pki) + (["resume=1"] if resumed else [])
    with Processes() as procs:
        port = freePort()
        server = procs.start(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks._server", serverMode,
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
    if resumed and done.get("resumed", 0) < done["ok"]:
        raise RuntimeError(f"{mode}: only {done.get('resumed', 0)} of {done['ok']} "
                           "handshakes resumed under callgrind")
    total, where = _totals(out), places(selfCosts(out))
    if sum(where.values()) != total:
        raise RuntimeError(f"{mode}: the instructions by place add up to "
                           f"{sum(where.values()):,}, not the total {total:,}")
    return {"instructions_per_handshake": round(total / done["ok"]),
            "by_place": {k: round(v / done["ok"]) for k, v in where.items()},
            "handshakes": done["ok"], "resumed": done.get("resumed", 0)}


def measure(handshakes: int, loadgen: str, workDir: str, pki: Dict[str, str],
            modes: Sequence[str] = MODES) -> Dict[str, Any]:
    """
    L{count} for each of C{modes}; a server that fails is reported as an
    error, not counted.
    """
    return measureEach(count, handshakes, loadgen, workDir, pki, modes)


#: the ratios of L{SERVERS} the report shows: (ours, theirs, what the ratio is)
SERVER_RATIOS = (("securessl", "twisted-ssl", "`securessl:` vs plain Twisted `ssl:`"),
                 ("mtls", "twisted-mtls", "`mtls:` full policy vs plain Twisted mTLS"),
                 ("mtls", "mtls-noaudit", "AuditLogObserver (`mtls` vs `mtls-noaudit`)"))

#: those and the resumed handshake's
RATIOS = SERVER_RATIOS + (
    ("securessl-resumed", "securessl", "resumed vs full handshake (`securessl:`)"),)


def counts(results: Dict[str, Any], mode: str) -> Optional[Dict[str, Any]]:
    """
    A run's instruction counts for server C{mode}, if counted.
    """
    return counted(results, "instructions", mode, "instructions_per_handshake")


def figure(results: Dict[str, Any], mode: str, place: str = "") -> Optional[int]:
    """
    A run's instructions per handshake for server C{mode}, in all or in one
    of L{PLACES}, if counted.
    """
    value = counts(results, mode)
    if value is None:
        return None
    if not place:
        return int(value["instructions_per_handshake"])
    where = value.get("by_place") or {}
    return int(where[place]) if place in where else None


def sentence(results: Dict[str, Any], ours: str, theirs: str) -> str:
    """
    The instruction counts of C{ours} and C{theirs}, as a sentence for the
    report (empty if not counted); where C{ours} spends instructions in the
    system's libcrypto and C{theirs} does not (the audit chain's SHA-256),
    the same without them.
    """
    a, b = figure(results, ours), figure(results, theirs)
    if a is None or b is None:
        return ""
    text = (f" Counted in instructions instead (callgrind, this run, the server's user "
            f"space): {a:,} vs {b:,} per full handshake = {a / b:.3f}x")
    apart = [(label, figure(results, ours, key), figure(results, theirs, key))
             for key, _, label in PLACES]
    shown = [f"{label} {x - y:+,}" for label, x, y in apart
             if x is not None and y is not None and abs(x - y) >= 1000]
    text += ("; the difference by where it runs: " + ", ".join(shown) + "." if shown
             else ".")
    hashA, hashB = figure(results, ours, "hashlib"), figure(results, theirs, "hashlib")
    if hashA and hashB is not None and hashA > hashB:
        text += (f" Of the difference, {hashA - hashB:,} are hashlib's SHA-256 in the "
                 f"system's libcrypto, which valgrind runs in software and the CPU with "
                 f"its SHA instructions; without them (the most those instructions can "
                 f"save), {(a - hashA) / (b - hashB):.3f}x.")
    return text


def resumedSentence(results: Dict[str, Any], mode: str) -> str:
    """
    The instructions of C{mode}'s resumed handshakes against its full
    ones, in all and in OpenSSL, as a sentence for the report (empty if not
    counted).
    """
    full, resumed = counts(results, mode), counts(results, mode + RESUMED)
    if full is None or resumed is None:
        return ""
    text = (f" Counted in instructions (callgrind, this run, the server's user space): "
            f"{resumed['instructions_per_handshake']:,} per resumed handshake vs "
            f"{full['instructions_per_handshake']:,} per full one = "
            f"{resumed['instructions_per_handshake'] / full['instructions_per_handshake']:.2f}x")
    a, b = figure(results, mode + RESUMED, "openssl"), figure(results, mode, "openssl")
    if a and b:
        text += (f"; in cryptography's library (OpenSSL) alone {a:,} vs {b:,} = "
                 f"{a / b:.2f}x, and outside it {resumed['instructions_per_handshake'] - a:,} "
                 f"vs {full['instructions_per_handshake'] - b:,}")
    return text + "."


def _placeCells(value: Dict[str, Any]) -> List[str]:
    where = value.get("by_place") or {}
    return [f"{value['instructions_per_handshake']:,}"] + [
        f"{where[key]:,}" if key in where else "–" for key, _, _ in PLACES]


def _pairCell(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    text = f"{a['instructions_per_handshake'] / b['instructions_per_handshake']:.3f}x"
    openA, openB = (a.get("by_place") or {}).get("openssl"), (b.get("by_place") or {}).get(
        "openssl")
    return text + (f" | {openA / openB:.3f}x" if openA and openB else " | –")


def table(results: Dict[str, Any]) -> str:
    """
    The report's table of instructions per handshake, where they are, and
    their ratios.
    """
    return perServerTable(
        results, "instructions", "instructions_per_handshake", MODES,
        ["instructions per TLS 1.3 handshake (full; resumed for securessl-resumed)"]
        + [f"in {label}" for _, _, label in PLACES],
        _placeCells, RATIOS, "instructions | in cryptography's library (OpenSSL)",
        _pairCell)


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
