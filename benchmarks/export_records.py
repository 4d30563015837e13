"""
What the audit export costs per record, in one process: the audit file's
writer alone, then the writer with the export to a real rsyslogd over TLS
(configured as C{docs/export.md} shows), each writing the same records as
fast as the reactor lets them, in batches of 10 a millisecond; the CPU
time of the process (user and system) per record::

    python -m benchmarks.export_records [--records 20000]

Each measurement runs in a fresh process; they alternate, twice each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List

from benchmarks._harness import ROOT, _pythonEnv
from benchmarks._pki import makePKI
from benchmarks._procs import freePort, waitListening
from benchmarks.export_overhead import rsyslogConfig


def measure(workDir: str, exportTo: str, records: int) -> float:
    """
    CPU µs per record in this process (C{exportTo}: a collector URL, or
    C{""} for the writer alone).
    """
    from twisted.internet import reactor, task

    from securetcp import auditLogObserver, auditSyslogExport
    from securetcp.audit.records import chainGap

    writer = auditLogObserver(os.path.join(workDir, f"audit-{time.time()}.jsonl"))
    if exportTo:
        auditSyslogExport(reactor, writer, exportTo,
                          policyFile=os.path.join(workDir, "client.toml"),
                          queueDir=os.path.join(workDir, f"queue-{time.time()}")).startService()
    record = dict(chainGap(0, 1, None), padding="x" * 1200)
    state = {"written": 0, "start": 0.0, "cpu": 0.0}

    def batch() -> None:
        for _ in range(10):
            writer.write(dict(record))
        state["written"] += 10
        if state["written"] >= records:
            loop.stop()
            reactor.callLater(1.0, done)  # type: ignore[attr-defined]

    def done() -> None:
        state["cpu"] = time.process_time() - state["start"]
        reactor.stop()  # type: ignore[attr-defined]

    def go() -> None:
        state["start"] = time.process_time()
        loop.start(0.001)

    loop = task.LoopingCall(batch)
    reactor.callLater(1.0, go)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return state["cpu"] / records * 1e6


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        workDir, url = options.child
        print(f"{measure(workDir, url if url != '-' else '', options.records):.1f}")
        return 0
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    workDir = tempfile.mkdtemp(prefix="securetcp-export-records-")
    pki = makePKI(workDir)
    with open(os.path.join(workDir, "client.toml"), "w") as f:
        f.write(f'certKey = "{pki["clientCert"]}"\nprivateKey = "{pki["clientKey"]}"\n'
                f'caCerts = "{pki["ca"]}"\n')
    port = freePort()
    collector = subprocess.Popen([rsyslogd, "-n", "-f", rsyslogConfig(workDir, pki, port),
                                  "-i", os.path.join(workDir, "rsyslogd.pid")])
    try:
        waitListening(collector, port)
        results = {"writer alone": [], "writer + export": []}
        for _ in range(2):
            for name, url in (("writer alone", "-"), ("writer + export",
                                                      f"tls://localhost:{port}")):
                out = subprocess.run([sys.executable, "-m", "benchmarks.export_records",
                                      "--records", str(options.records), "--child", workDir,
                                      url], capture_output=True, text=True, env=_pythonEnv(),
                                     cwd=ROOT, timeout=300, check=True)
                results[name].append(float(out.stdout.split()[-1]))
    finally:
        collector.terminate()
        collector.wait(10)
    for name, values in results.items():
        print(f"{name}: {', '.join(f'{v:.1f}' for v in values)} µs CPU per record")
    shutil.rmtree(workDir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
