"""
Where a server's time goes: a server under test run with cProfile, which
the harness switches on and off (SIGUSR1) around one load, so that start-up
and warm-up are not counted:

    python -m benchmarks._profile OUT.prof -m benchmarks._server mtls PORT PKI LOGS
    python -m benchmarks._profile OUT.prof -c "twistd code" ARGS...

L{breakdown} sums the profile's own time (cProfile's C{tottime}) into
groups (OpenSSL's C calls, securetcp's audit, the rest of securetcp,
Twisted, socket calls...) per operation, with the Python calls per
operation.  cProfile adds a cost to every Python call, so Python's share
is overstated; the C calls (OpenSSL, sockets) are timed as they are.
"""

from __future__ import annotations

import collections
import cProfile
import pstats
import runpy
import signal
import sys
from typing import Any, Dict, List, Tuple

#: (group, test on (file, function name)), first match wins
GROUPS: List[Tuple[str, Any]] = [
    ("poll (waiting)", lambda f, n: "poll" in n and "epoll" in n),
    ("OpenSSL (C: handshake, read, write, BIO)", lambda f, n: f == "~" and "_openssl." in n),
    ("sockets (C: send, recv, accept, close)", lambda f, n: f == "~" and any(
        w in n for w in ("'send'", "'recv'", "_accept", "close", "shutdown", "'sendmsg'"))),
    # the audit chain's canonical() is one call of the json module's C
    # encoder (which cProfile does not time apart): its own time is JSON's
    ("json and hashing (C)", lambda f, n: f.endswith("securetcp/audit/chain.py")
     and n == "canonical"),
    ("securetcp audit (records, emitter, chain, writer)",
     lambda f, n: "securetcp/audit" in f or "securetcp/compliance" in f),
    ("securetcp TLS transport and verify (_tls)", lambda f, n: "securetcp/_tls" in f),
    ("securetcp gate, identity, splice, other", lambda f, n: "securetcp/" in f),
    ("json and hashing (C)", lambda f, n: "json" in f or (f == "~" and (
        "_hashlib" in n or "hexdigest" in n or "encode_basestring" in n))),
    ("Twisted logger", lambda f, n: "twisted/logger" in f),
    ("Twisted TLS protocol (tls.py)", lambda f, n: "twisted/protocols" in f),
    ("Twisted reactor, transports", lambda f, n: "twisted/" in f),
    ("pyOpenSSL (Python)", lambda f, n: "OpenSSL/" in f),
    ("zope.interface", lambda f, n: "zope/" in f),
]


def _short(path: str) -> str:
    """
    A source path without the checkout's or the environment's directory.
    """
    if "/securetcp/" in path:
        return "securetcp/" + path.split("/securetcp/", 1)[1]
    return path.split("site-packages/")[-1]


def _group(file: str, name: str) -> str:
    for group, test in GROUPS:
        if test(file, name):
            return str(group)
    return "other Python and builtins"


def breakdown(path: str, operations: int) -> Dict[str, Any]:
    """
    Own time per operation (µs) and Python calls per operation, by group.
    """
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    time: Dict[str, float] = collections.Counter()
    calls: Dict[str, float] = collections.Counter()
    functions: Dict[str, float] = collections.Counter()
    for (file, _, name), (_, ncalls, tottime, _, _) in stats.items():
        group = _group(file, name)
        time[group] += tottime
        calls[group] += ncalls
        if group != "poll (waiting)":
            functions[f"{_short(file)}:{name}"] += tottime
    busy = sum(t for g, t in time.items() if g != "poll (waiting)")
    return {
        "operations": operations,
        "us_per_op": {g: t / operations * 1e6 for g, t in time.items()},
        "calls_per_op": {g: c / operations for g, c in calls.items()},
        "busy_us_per_op": busy / operations * 1e6,
        "python_calls_per_op": sum(c for g, c in calls.items()) / operations,
        "top": [(name, t / operations * 1e6) for name, t in
                sorted(functions.items(), key=lambda kv: -kv[1])[:12]],
    }


def _memoryToggle(out: str) -> Any:
    """
    With C{--memory}: the first SIGUSR1 takes a tracemalloc snapshot, the
    second another, and writes what grew in between, by source line, as
    JSON (C{[[file:line, bytes, objects], ...]}).
    """
    import gc
    import json
    import tracemalloc

    tracemalloc.start(1)
    snapshots: List[Any] = []

    def toggle(signum: int, frame: Any) -> None:
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot())
        if len(snapshots) == 2:
            grown = snapshots[1].compare_to(snapshots[0], "lineno")
            rows = [[_short(str(g.traceback[0])), g.size_diff, g.count_diff]
                    for g in grown if g.size_diff > 0]
            with open(out, "w") as f:
                json.dump({"total": sum(r[1] for r in rows), "lines": rows[:40]}, f)

    return toggle


def main(argv: List[str]) -> None:
    memory = argv[0] == "--memory"
    if memory:
        argv = argv[1:]
    out, how, target, rest = argv[0], argv[1], argv[2], argv[3:]
    profile = cProfile.Profile()
    on = [False]

    def toggle(signum: int, frame: Any) -> None:
        if not on[0]:
            on[0] = True
            profile.enable()
        else:
            profile.disable()
            on[0] = False
            profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, _memoryToggle(out) if memory else toggle)
    if how == "-m":
        sys.argv = [target] + rest
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c"] + rest
        exec(compile(target, "<benchmarks._profile>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main(sys.argv[1:])


#: (case, server, load, options, operations); loads as the harness runs them
CASES: List[Tuple[str, str, str, Dict[str, Any]]] = [
    ("twisted-mtls full", "twisted-mtls", "hs", {"n": 1000, "version": 13}),
    ("mtls full", "mtls", "hs", {"n": 1000, "version": 13}),
    ("mtls resumed", "mtls", "hs", {"n": 1000, "version": 13, "resume": 1}),
    ("twisted-ssl full", "twisted-ssl", "hs", {"n": 1000, "version": 13}),
    ("securessl full", "securessl", "hs", {"n": 1000, "version": 13}),
    ("securessl resumed", "securessl", "hs", {"n": 1000, "version": 13, "resume": 1}),
    ("terminate 16 KiB echo", "terminate", "echo", {"n": 3000, "size": 16384, "version": 13}),
    ("terminate bulk (per MiB)", "terminate", "bulk", {"bytes": 128 << 20, "version": 13}),
]


def profiled(bench: Any, procs: Any, names: List[str]) -> Dict[str, Any]:
    """
    Run each of L{CASES} whose server is in C{names} with the server under
    cProfile; the L{breakdown} of each.
    """
    import os
    import time

    from ._harness import SERVERS_BY_NAME, freePort, startServer

    out: Dict[str, Any] = {}
    for case, name, mode, options in CASES:
        if name not in names:
            continue
        server = SERVERS_BY_NAME[name]
        path = os.path.join(bench.workDir, f"profile-{case.replace(' ', '_')}.prof")
        port = freePort()
        proc = startServer(procs, server, port, bench.backend, bench.pki, bench.workDir,
                           profileTo=path)
        try:
            bench._load(server, port, "hs", 120, n=50, version=13)
            if options.get("resume"):
                bench._load(server, port, "hs", 120, n=20, version=13, resume=1)
            proc.send_signal(signal.SIGUSR1)
            result = bench._load(server, port, mode, 300, **options)
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.5)
            operations = (options["bytes"] >> 20) if mode == "bulk" else result.get("ok", 0)
            if operations:
                out[case] = breakdown(path, operations)
                out[case]["resumed"] = result.get("resumed")
        except (RuntimeError, OSError, ValueError) as e:
            out[case] = {"error": str(e)}
        finally:
            procs.stop(proc)
        print(f"  profile {case:28} " + (
            f"{out[case]['busy_us_per_op']:,.0f} µs busy per operation, "
            f"{out[case]['python_calls_per_op']:,.0f} calls" if "busy_us_per_op" in
            out.get(case, {}) else str(out.get(case))), flush=True)
    return out


def memoryProfile(bench: Any, procs: Any, name: str = "mtls", count: int = 2000
                  ) -> Dict[str, Any]:
    """
    What the Python objects of C{count} idle connections to C{name} hold,
    by source line (tracemalloc), per connection.
    """
    import json
    import os
    import subprocess
    import time

    from ._harness import SERVERS_BY_NAME, freePort, startServer
    from ._procs import releaseHeld

    server = SERVERS_BY_NAME[name]
    path = os.path.join(bench.workDir, f"memory-{name}.json")
    port = freePort()
    proc = startServer(procs, server, port, bench.backend, bench.pki, bench.workDir,
                       profileTo=path, memory=True)
    log = os.path.join(bench.workDir, "memory-client.out")
    try:
        bench._load(server, port, "hs", 120, n=50, version=13)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        client = procs.start([bench.loadgen, "idle", f"port={port}", f"n={count}",
                              "version=13"] + bench._client(server), 1,
                             stdin=subprocess.PIPE, log=log)
        try:
            deadline = time.monotonic() + 60 + count * 0.05
            while time.monotonic() < deadline:
                with open(log) as f:
                    if '"ready"' in f.read():
                        break
                time.sleep(0.5)
            time.sleep(1.0)
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1.0)
        finally:
            releaseHeld(client)
            procs.stop(client)
        with open(path) as f:
            data = json.load(f)
    except (RuntimeError, OSError, ValueError) as e:
        return {"error": str(e)}
    finally:
        procs.stop(proc)
    return {"connections": count, "bytes_per_connection": data["total"] / count,
            "lines": [[line, size / count, objects / count]
                      for line, size, objects in data["lines"]]}
