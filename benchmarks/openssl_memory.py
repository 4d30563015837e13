"""
How much of the memory an idle TLS connection holds is OpenSSL's own.

    python -m benchmarks.openssl_memory [--connections N]

Completes N server handshakes in memory, with nothing but pyOpenSSL (no
Twisted, no securetcp protocol objects), keeps the server connections and
reports the growth of the process's resident memory per connection, for
the context securetcp builds (with C{SSL_MODE_RELEASE_BUFFERS}) and, for
comparison, the same context without releasing buffers; one-way TLS and
mTLS; key exchange on P-256, and (C{tls_release_mlkem}) on the P-256 +
ML-KEM-768 hybrid that OpenSSL 3.5+ clients negotiate with the default
profile; and (C{mtls_release_tickets}) with C{resumption=tickets} instead of
the default cache, where OpenSSL's session cache keeps no session.  Each client connection is freed once its handshake is done, so what
remains is the server side.  Prints JSON.  Not a test: the figures explain
the idle-memory row of docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from typing import Any, Dict

from ._contexts import contexts
from ._contexts import handshake as handshakeBetween
from ._pki import makePKI


def _rssKiB() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _perConnection(paths: Dict[str, str], mutual: bool, release: bool, count: int,
                   group: str = "P-256", resumption: str = "tickets") -> float:
    from OpenSSL import SSL
    from OpenSSL._util import lib

    # one group offered: P-256, as the harness's load generator does, or the
    # P-256 + ML-KEM-768 hybrid that OpenSSL 3.5+ clients negotiate with a
    # nist-800-52r2 server
    server, client = contexts(paths, mutual, resumption=resumption, group=group)
    if not release:
        lib.SSL_CTX_clear_mode(server._context, SSL.MODE_RELEASE_BUFFERS)

    def handshake() -> Any:
        s, c = handshakeBetween(server, client, rounds=8)
        # one byte each way, as the harness's idle clients do
        c.send(b"x")
        s.bio_write(c.bio_read(65536))
        s.recv(1)
        s.send(b"x")
        c.bio_write(s.bio_read(65536))
        c.recv(1)
        return s

    warm = [handshake() for _ in range(50)]
    gc.collect()
    before = _rssKiB()
    kept = []
    for n in range(count):
        kept.append(handshake())
        if n % 20 == 0:
            # free the finished client connections as we go, so that their
            # memory is reused rather than counted
            gc.collect()
    gc.collect()
    grown = _rssKiB() - before
    del warm, kept
    return grown / count


VARIANTS = ("tls_release", "tls_norelease", "mtls_release", "mtls_norelease",
            "tls_release_mlkem", "mtls_release_tickets")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.openssl_memory")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--variant", choices=VARIANTS,
                        help="measure one variant in this process (default: each in its own)")
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        paths = json.loads(args.pki) if args.pki else makePKI(
            tempfile.mkdtemp(prefix="securetcp-mem-"))
        mutual = args.variant.startswith("mtls")
        release = "_release" in args.variant
        group = "SecP256r1MLKEM768" if args.variant.endswith("_mlkem") else "P-256"
        resumption = "tickets" if args.variant.endswith("_tickets") else "cache"
        print(round(_perConnection(paths, mutual, release, args.connections, group,
                                   resumption), 1))
        return 0
    import subprocess

    from OpenSSL import SSL

    paths = makePKI(tempfile.mkdtemp(prefix="securetcp-mem-"))
    out: Dict[str, Any] = {
        "openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "connections": args.connections,
    }
    for variant in VARIANTS:
        # a fresh process each: memory freed by one measurement would be
        # reused by the next and hide its growth
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.openssl_memory", "--variant", variant,
             "--connections", str(args.connections), "--pki", json.dumps(paths)],
            capture_output=True, text=True, check=True, timeout=600)
        out[f"{variant}_kib_per_connection"] = float(done.stdout.split()[-1])
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
