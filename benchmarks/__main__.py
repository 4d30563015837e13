"""
Run the side-by-side benchmark:

    python -m benchmarks [--quick] [--only NAME,...] [--no-docs]

Writes benchmarks/results/results-DATE.json and latest.json, prints the
tables, and rewrites docs/performance.md (unless --no-docs or --only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import List, Optional

from . import _harness, _profile, _report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer operations per measurement (about 2 minutes)")
    parser.add_argument("--only", default="",
                        help="comma-separated server names: " + ", ".join(
                            s.name for s in _harness.SERVERS))
    parser.add_argument("--no-docs", action="store_true",
                        help="do not rewrite docs/performance.md")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (certificates, logs)")
    parser.add_argument("--held", type=int, metavar="N", default=None,
                        help="only hold N idle mTLS connections and measure new handshakes "
                             "meanwhile (the full run holds 100,000); writes the JSON only")
    parser.add_argument("--report", metavar="JSON",
                        help="only write docs/performance.md again from the results of a "
                             "run (benchmarks/results/results-DATE.json): its figures, "
                             "this checkout's report text")
    args = parser.parse_args(argv)
    if args.report:
        return _reportOnly(args.report)

    if not sys.platform.startswith("linux"):
        print("the harness reads /proc and pins CPUs: it runs on Linux only", file=sys.stderr)
        return 2
    missing = _harness.missingPrerequisites()
    if missing:
        print("missing prerequisites:\n  " + "\n  ".join(missing), file=sys.stderr)
        print(f"install them with:\n  {_harness.INSTALL_HINT}", file=sys.stderr)
        return 2
    cpus = os.sched_getaffinity(0)
    if not {_harness.SERVER_CORE, _harness.CLIENT_CORE} <= cpus:
        print(f"needs CPUs {_harness.SERVER_CORE} and {_harness.CLIENT_CORE}; this process "
              f"may use {sorted(cpus)}", file=sys.stderr)
        return 2
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - {s.name for s in _harness.SERVERS}
    if unknown:
        parser.error(f"unknown server names: {', '.join(sorted(unknown))}")

    settings = _harness.Settings.quick() if args.quick else _harness.Settings.full()
    # the harness itself stays off the server's CPU
    os.sched_setaffinity(0, {_harness.CLIENT_CORE})
    workDir = tempfile.mkdtemp(prefix="securetcp-bench-")
    if args.held is not None:
        return _heldOnly(args.held, workDir, args.keep)
    print(f"securetcp benchmark ({settings.name}); work directory {workDir}", flush=True)
    try:
        results = _harness.run(settings, workDir, only or None)
    finally:
        if not args.keep:
            shutil.rmtree(workDir, ignore_errors=True)

    resultsDir = os.path.join(_harness.HERE, "results")
    os.makedirs(resultsDir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"results-{stamp}.json", "latest.json"):
        with open(os.path.join(resultsDir, name), "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    print()
    print(_report.sideBySide(results))
    print()
    print(_report.ratios(results))
    print()
    print(_report.overheads(results))
    print()
    print(_report.targetsTable(results))
    print(f"\nresults: {os.path.join(resultsDir, 'latest.json')}  ({results['elapsed_s']} s)")

    charts = _report.charts(results, resultsDir)
    if charts:
        print(f"charts in {resultsDir}: {', '.join(charts)}")
    if not args.no_docs and not only:
        docs = os.path.join(_harness.ROOT, "docs")
        command = "python -m benchmarks" + (" --quick" if args.quick else "")
        with open(os.path.join(docs, "performance.md"), "w", encoding="utf-8") as f:
            f.write(_report.document(results, charts, command))
        print(f"wrote {os.path.join(docs, 'performance.md')}")
    return 0


def _reportOnly(path: str) -> int:
    with open(path) as f:
        results = json.load(f)
    # the file's keys are sorted: put the servers, their paired measurements
    # and the profiles back in the run's order
    order = {server.name: i for i, server in enumerate(_harness.SERVERS)}
    for key in ("servers", "paired"):
        if isinstance(results.get(key), dict):
            results[key] = dict(sorted(results[key].items(),
                                       key=lambda item: order.get(item[0], len(order))))
    for name, tests in (results.get("paired") or {}).items():
        if isinstance(tests, dict) and name in _harness.PAIRED:
            run = _harness.PAIRED[name]
            results["paired"][name] = dict(sorted(
                tests.items(), key=lambda item: run.index(item[0]) if item[0] in run
                else len(run)))
    cases = [case for case, *_ in _profile.CASES]
    if isinstance(results.get("profiles"), dict):
        results["profiles"] = dict(sorted(
            results["profiles"].items(),
            key=lambda item: cases.index(item[0]) if item[0] in cases else len(cases)))
    command = "python -m benchmarks" + (
        " --quick" if results.get("settings", {}).get("name") == "quick" else "")
    target = os.path.join(_harness.ROOT, "docs", "performance.md")
    with open(target, "w", encoding="utf-8") as f:
        f.write(_report.document(results, [], command))
    print(f"wrote {target} from {path}")
    return 0


def _heldOnly(count: int, workDir: str, keep: bool) -> int:
    print(f"securetcp benchmark: {count:,} held mTLS connections; work directory {workDir}",
          flush=True)
    try:
        results = _harness.runHeld(count, workDir)
    finally:
        if not keep:
            shutil.rmtree(workDir, ignore_errors=True)
    resultsDir = os.path.join(_harness.HERE, "results")
    os.makedirs(resultsDir, exist_ok=True)
    path = os.path.join(resultsDir, f"held-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    print()
    print(_report.heldTable(results))
    print(f"\nresults: {path}  ({results['elapsed_s']} s)")
    return 0 if "error" not in results.get("held", {}) else 1


if __name__ == "__main__":
    sys.exit(main())
