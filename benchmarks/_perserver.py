"""
What the per-server counts (L{benchmarks.instructions},
L{benchmarks.syscalls}) share: one count for each Python server, and their
command line, which prints the counts as JSON or adds them to a run's
results file::

    result = measureEach(count, handshakes, loadgen, workDir, pki, MODES)
    sys.exit(main(argv, "python -m benchmarks.syscalls", "syscalls", available,
                  "strace", count, MODES))
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._pki import makePKI

#: C{count(mode, handshakes, loadgen, workDir, pki)}: one server's figures
Count = Callable[[str, int, str, str, Dict[str, str]], Dict[str, Any]]


def handshakeLoad(loadgen: str, mode: str, pki: Dict[str, str]) -> List[str]:
    """
    The load generator's command for full TLS 1.3 handshakes with server
    C{mode} (presenting the client certificate to an mTLS server);
    C{port=} and C{n=} go after it.
    """
    client = (["cert=" + pki["clientCert"], "key=" + pki["clientKey"]]
              if "mtls" in mode else [])
    return [loadgen, "hs", "version=13"] + client


def counted(results: Dict[str, Any], key: str, mode: str,
            figure: str) -> Optional[Dict[str, Any]]:
    """
    Server C{mode}'s counts under C{key} in a run's results, if it has
    C{figure}.
    """
    value = (results.get(key) or {}).get(mode) or {}
    return value if figure in value else None


def table(results: Dict[str, Any], key: str, figure: str, modes: Sequence[str],
          columns: Sequence[str], cells: Callable[[Dict[str, Any]], Sequence[str]],
          pairs: Sequence[Tuple[str, str, str]], pairColumn: str,
          pairCell: Callable[[Dict[str, Any], Dict[str, Any]], str]) -> str:
    """
    A report table of per-server counts: a row per server of C{modes}
    (C{cells} of its counts, or why it was not counted), then a row per
    pair of C{pairs} (C{(ours, theirs, label)}) with C{pairCell}.
    """
    rows = ["| server | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for mode in modes:
        value = counted(results, key, mode, figure)
        if value is None:
            error = ((results.get(key) or {}).get(mode) or {}).get("error", "not counted")
            shown = [error] + ["–"] * (len(columns) - 1)
        else:
            shown = list(cells(value))
        rows.append(f"| {mode} | " + " | ".join(shown) + " |")
    # C{pairColumn} (and each C{pairCell}) may be several columns, " | " apart
    wide = pairColumn.count(" | ") + 1
    rows += ["", f"| pair | {pairColumn} |", "|---" * (wide + 1) + "|"]
    for ours, theirs, label in pairs:
        a, b = counted(results, key, ours, figure), counted(results, key, theirs, figure)
        rows.append(f"| {label} | "
                    f"{pairCell(a, b) if a and b else ' | '.join(['–'] * wide)} |")
    return "\n".join(rows)


def measureEach(count: Count, handshakes: int, loadgen: str, workDir: str,
                pki: Dict[str, str], modes: Sequence[str]) -> Dict[str, Any]:
    """
    C{count} for each of C{modes}; a server that fails is reported as an
    error, not counted.
    """
    result: Dict[str, Any] = {"handshakes": handshakes}
    for mode in modes:
        try:
            result[mode] = count(mode, handshakes, loadgen, workDir, pki)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            result[mode] = {"error": str(e)}
        print(f"  {mode}: {result[mode]}", flush=True)
    return result


def main(argv: List[str], prog: str, key: str, available: Callable[[], bool], needs: str,
         count: Count, modes: Sequence[str]) -> int:
    """
    The command line of a per-server count: C{--handshakes N}, and
    C{--into RESULTS.json} to add the counts to that file under C{key}.
    """
    from ._harness import buildLoadgen

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--handshakes", type=int, default=1000)
    parser.add_argument("--into", metavar="RESULTS.json",
                        help="add the figures to this run's results file")
    args = parser.parse_args(argv)
    if args.handshakes < 1:
        parser.error(f"--handshakes: {args.handshakes} is not a count of handshakes "
                     "(give 1 or more; 1000 is the default)")
    if not available():
        print(f"needs {needs} (apt-get install {needs})", file=sys.stderr)
        return 2
    workDir = tempfile.mkdtemp(prefix=f"securetcp-{key}-")
    try:
        pki = makePKI(workDir)
        result = measureEach(count, args.handshakes, buildLoadgen(workDir), workDir, pki,
                             modes)
    finally:
        shutil.rmtree(workDir, ignore_errors=True)
    if args.into:
        with open(args.into) as f:
            results = json.load(f)
        results[key] = result
        with open(args.into, "w") as f:
            json.dump(results, f, indent=2)
    else:
        print(json.dumps(result, indent=2))
    return 0
