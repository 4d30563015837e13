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
from typing import Any, Callable, Dict, List, Sequence

from ._pki import makePKI

#: C{count(mode, handshakes, loadgen, workDir, pki)}: one server's figures
Count = Callable[[str, int, str, str, Dict[str, str]], Dict[str, Any]]


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
