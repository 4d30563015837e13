"""
What each C{resumption} mode costs the server per full TLS 1.3 handshake,
in process: securetcp's server context (C{mtls:} or C{securessl:}) built
with C{resumption=tickets} (the default: the session encrypted into each
ticket), C{cache} (OpenSSL keeps the session and sends tickets that hold
only its id) and C{off}; only the server's own calls are timed (CPU time), over
memory BIOs:

    python -m benchmarks.ticket_cost [--handshakes 2000]

OpenSSL sends two tickets per full TLS 1.3 handshake in both resuming modes
(pyOpenSSL's binding has no C{SSL_CTX_set_num_tickets} to make it one, or
none under C{off}); what differs is the work per ticket.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Any, Dict

from ._contexts import contexts, handshake
from ._pki import makePKI

MODES = ("tickets", "cache", "off")


def serverCPU(paths: Dict[str, str], mutual: bool, mode: str, count: int) -> float:
    """
    Server CPU µs per full TLS 1.3 handshake: its own handshake steps only.
    """
    from OpenSSL import SSL

    server, client = contexts(paths, mutual, resumption=mode, crl=True)
    client.set_min_proto_version(SSL.TLS1_3_VERSION)
    spent = [0.0]
    for _ in range(count):
        handshake(server, client, serverTime=spent)
    return spent[0] / count * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ticket_cost")
    parser.add_argument("--handshakes", type=int, default=2000)
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = json.loads(args.pki) if args.pki else makePKI(tempfile.mkdtemp(prefix="tickets-"))
    out: Dict[str, Any] = {"handshakes": args.handshakes}
    for mutual in (True, False):
        name = "mtls" if mutual else "securessl"
        serverCPU(paths, mutual, "tickets", 50)  # warm-up
        # alternate, so a slow phase of a shared machine hits all alike
        runs: Dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(3):
            for mode in MODES:
                runs[mode].append(serverCPU(paths, mutual, mode, args.handshakes // 3))
        out[name] = {k: sorted(v)[1] for k, v in runs.items()}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
