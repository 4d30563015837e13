"""
What the audit export costs the server: full-policy mTLS handshakes
(C{mtls:} + CRL + the audit file) with the export on (to a real rsyslogd
over mutually authenticated TLS, configured as C{docs/export.md} shows)
and off, the two servers running side by side and measured alternately,
round after round (the harness's paired method), so the shared machine's
slow phases hit both alike::

    python -m benchmarks.export_overhead                  # 5 rounds x 800 handshakes
    python -m benchmarks.export_overhead --rounds 3 --handshakes 400

Prints, per server, the server's CPU µs per full TLS 1.3 mTLS handshake
(median of the rounds, and each round), the ratio, and how many of the
records the exporting server wrote rsyslog received.  Needs what the
harness needs (gcc, libssl-dev) and rsyslogd with its OpenSSL driver.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List

from benchmarks import _harness
from benchmarks._harness import (
    CLIENT_CORE,
    ROOT,
    Bench,
    Server,
    Settings,
    buildLoadgen,
    paired,
)
from benchmarks._pki import makePKI
from benchmarks._procs import Processes, freePort, waitListening

SERVERS = [
    Server("mtls", "python", True, "securetcp `mtls:` + CRL + audit file (full policy)",
           ("handshake13",)),
    Server("mtls-export", "python", True, "the same + audit export to rsyslog over TLS",
           ("handshake13",)),
]


def rsyslogConfig(workDir: str, pki: Dict[str, str], port: int) -> str:
    """
    The collector configuration of docs/export.md, in C{workDir}.
    """
    with open(os.path.join(ROOT, "docs", "export.md"), encoding="utf-8") as f:
        text = re.search(r"<!-- rsyslog-collector -->\n```text\n(.*?)```", f.read(),
                         re.S).group(1)  # type: ignore[union-attr]
    os.makedirs(os.path.join(workDir, "rsyslog"), exist_ok=True)
    for old, new in {"/var/spool/rsyslog": os.path.join(workDir, "rsyslog"),
                     "/etc/rsyslog-tls/nodes-ca.pem": pki["ca"],
                     "/etc/rsyslog-tls/collector.pem": pki["serverCert"],
                     "/etc/rsyslog-tls/collector.key": pki["serverKey"],
                     "/var/log/securetcp/fleet.log": os.path.join(workDir, "fleet.log"),
                     'port="6514"': f'port="{port}"',
                     'address="0.0.0.0"': 'address="127.0.0.1"'}.items():
        text = text.replace(old, new)
    path = os.path.join(workDir, "rsyslog.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def _lines(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=800)
    parser.add_argument("--collector-down", action="store_true",
                        help="point the export at a closed port: records are queued on disk "
                             "and never sent (the cost of the queue alone)")
    options = parser.parse_args(argv)
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.path.exists(rsyslogd):
        print("rsyslogd is not installed (Debian: rsyslog rsyslog-openssl)", file=sys.stderr)
        return 2
    workDir = tempfile.mkdtemp(prefix="securetcp-export-bench-")
    settings = Settings("export", handshakes=options.handshakes, repeats=1, bulkBytes=0,
                        echoes=0, idle=(), idleLarge=0, pairedRounds=options.rounds,
                        pairedHandshakes=options.handshakes, workerHandshakes=0)
    loadgen = buildLoadgen(workDir)
    pki = makePKI(workDir)
    _harness.PAIRED = {s.name: ("handshake13",) for s in SERVERS}  # type: ignore[misc]
    results: Dict[str, Any] = {}
    with Processes() as procs:
        port = freePort()
        conf = rsyslogConfig(workDir, pki, port)
        collector = procs.start([rsyslogd, "-n", "-f", conf, "-i",
                                 os.path.join(workDir, "rsyslogd.pid")], CLIENT_CORE,
                                log=os.path.join(workDir, "rsyslogd.out"))
        waitListening(collector, port)
        target = freePort() if options.collector_down else port
        os.environ["SECURETCP_BENCH_SYSLOG"] = f"tls://localhost:{target}"
        bench = Bench(settings, workDir, loadgen, pki, 0)
        results["paired"] = paired(bench, procs, SERVERS)
        time.sleep(3)  # the export's last records: sent, and written by rsyslog
        results["records_written"] = _lines(os.path.join(workDir, "audit-mtls-export.jsonl"))
        results["records_at_collector"] = _lines(os.path.join(workDir, "fleet.log"))
    on = results["paired"]["mtls-export"]["handshake13"]
    off = results["paired"]["mtls"]["handshake13"]
    results["ratio"] = on["cpu_us_per_handshake"] / off["cpu_us_per_handshake"]
    print(json.dumps(results, indent=1))
    print(f"full mTLS handshake, server CPU: {on['cpu_us_per_handshake']:.0f} µs with the "
          f"export vs {off['cpu_us_per_handshake']:.0f} µs without = {results['ratio']:.2f}x; "
          f"rsyslog received {results['records_at_collector']} of "
          f"{results['records_written']} records")
    shutil.rmtree(workDir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
