"""
What the audit file costs per connection, in one process, without TLS: the
gate's audit calls for one accepted connection (C{accepting()}, then the
C{connection.accepted} and C{connection.closed} records) through the
emitter an C{auditLog=} endpoint gets (the L{AuditLogObserver} writing a
file), and through the emitter of an endpoint without one (records to the
global log publisher only, as the C{mtls-noaudit} server has them)::

    python -m benchmarks.audit_records [--connections 5000] [--json]

It prints, per connection, the CPU time of each (the best of three
alternating runs; other processes on the machine make it vary): with the
connections' audit calls one after another, and with a full mTLS handshake
(in memory, not timed) before each connection's calls, as a server has
one: what the same Python costs when OpenSSL's work has just pushed it out
of the CPU's caches.  Then the
deterministic figures: Python calls (cProfile), Python bytecodes executed
and objects that reach the garbage collector's oldest generation
(L{promoted}); then the sealing of one record: the whole record encoded by
the standard library's encoder against the templates
(L{securetcp.audit.chain}).
The global log publisher keeps warnings and above, as the benchmark
servers' does.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import json
import os
import pstats
import sys
import tempfile
import time
import timeit
from typing import Any, Callable, Dict, List

from securetcp._interfaces import IAuditSink
from securetcp.audit.chain import referenceSeal, seal
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import AuditFiles
from securetcp.audit.records import (
    AuditConnection,
    SessionFacts,
    connectionAccepted,
    connectionClosed,
)
from securetcp.identity import PeerIdentity
from securetcp.policy import Role

#: the benchmark client's identity, as the gate finds it in its certificate
IDENTITY = PeerIdentity(
    subject="CN=bench-device,O=securetcp benchmark", commonName=("bench-device",),
    uri=("spiffe://bench.example/device/1",), serial="6716e0e493052ec26e8311251ff7d2d9e04cdb03",
    issuer="CN=securetcp benchmark CA,O=securetcp benchmark",
    sha256="b3cef659c4c2fb673105922616f02ac3f1ddb0e65a9787b4190ca23cbc50ac5b",
    spkiSHA256="IegZzrtdMZdx+rOj4XL0VwgRbTFQmc+tP3gEp33oufU=",
    notAfter="2027-01-05T10:08:01+00:00")


def connection(n: int) -> AuditConnection:
    """
    The n-th connection, as the gate describes it (a new one each time).
    """
    return AuditConnection(
        connectionId=os.urandom(8).hex(), role=Role.SERVER, local="127.0.0.1:30820",
        peer=f"127.0.0.1:{40000 + n % 20000}", policy="default", profile="nist-800-52r2",
        session=SessionFacts.fromMapping({"version": "TLSv1.3", "group": "secp256r1",
                                          "cipher": "TLS_AES_128_GCM_SHA256", "resumed": False}),
        peerIdentity=IDENTITY, policyReasons=())


def audited(sink: IAuditSink, n: int) -> None:
    """
    The audit calls of the n-th accepted connection, as the gate makes them.
    """
    described = connection(n)
    at = 1.7e9 + n
    if not (sink.accepting() and sink.emit(connectionAccepted(described, at))):
        raise SystemExit("the audit file refused a connection")
    sink.emit(connectionClosed(described, at + 0.5, duration=0.5, bytesIn=1, bytesOut=1,
                               closeReason=None))


def connections(sink: IAuditSink, count: int) -> None:
    """
    The audit calls of C{count} accepted connections, one after another.
    """
    for n in range(count):
        audited(sink, n)


def cpuMicroseconds(sink: IAuditSink, count: int) -> float:
    begin = time.process_time()
    connections(sink, count)
    return (time.process_time() - begin) / count * 1e6


def afterHandshakes(sink: IAuditSink, count: int, handshake: Callable[[], Any]) -> float:
    """
    CPU µs of each connection's audit calls when a full handshake (not
    timed) comes before them, as in a server.
    """
    spent = 0.0
    for n in range(count):
        handshake()
        begin = time.process_time()
        audited(sink, n)
        spent += time.process_time() - begin
    return spent / count * 1e6


def calls(sink: IAuditSink, count: int) -> float:
    profile = cProfile.Profile()
    profile.runcall(connections, sink, count)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(ncalls for (_, ncalls, _, _, _) in stats.values()) / count


def bytecodes(sink: IAuditSink, count: int) -> float:
    executed: Dict[str, int] = collections.Counter()

    def trace(frame: Any, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed["all"] += 1
        return trace

    sys.settrace(trace)
    try:
        connections(sink, count)
    finally:
        sys.settrace(None)
    return executed["all"] / count


def promoted(sink: IAuditSink, count: int) -> float:
    """
    Objects moved into the garbage collector's oldest generation per
    connection, with the young generations collected as often as a
    server's cyclic garbage has them collected (each connection of the
    benchmark server leaves some 33 objects in cycles: a collection of the
    youngest generation every 20 connections or so, of the middle one every
    200).  Here everything is freed by reference counting, so the collector
    would not run at all; in a server, what the audit code holds across
    those collections ends in the oldest generation and brings on full
    collections of the whole heap.
    """
    gc.collect()
    moved = 0
    for batch in range(count // 20):
        connections(sink, 20)
        gc.collect(0)
        if batch % 10 == 9:
            before = len(gc.get_objects(2))
            gc.collect(1)
            moved += len(gc.get_objects(2)) - before
    return moved / count


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--json", action="store_true",
                        help="print only the CPU figures, as JSON (for the benchmark run)")
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    count = args.connections
    if count < 5:
        parser.error(f"--connections: {count} is too few to measure (give 5 or more; "
                     "5000 is the default)")
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from ._contexts import contexts, handshake
    from ._pki import makePKI

    with open(os.devnull, "w") as devnull:
        globalLogBeginner.beginLoggingTo(
            [FilteringLogObserver(textFileLogObserver(devnull),
                                  [LogLevelFilterPredicate(LogLevel.warn)])],
            redirectStandardIO=False)
        directory = tempfile.mkdtemp(prefix="securetcp-audit-records-")
        paths = json.loads(args.pki) if args.pki else makePKI(directory)
        # every handshake a full one: no session is kept
        server, client = contexts(paths, mutual=True, resumption="off")
        sinks: Dict[str, IAuditSink] = {
            # a writer of its own AuditFiles: not one the other emitter consults
            "auditLog= (AuditLogObserver)": AuditEmitter(observers=[
                AuditFiles().open(os.path.join(directory, "audit.jsonl"))]),
            "no audit file": AuditEmitter()}
        cpu: Dict[str, List[float]] = {name: [] for name in sinks}
        cold: Dict[str, List[float]] = {name: [] for name in sinks}
        for _ in range(3):
            for name, sink in sinks.items():
                connections(sink, 200)  # warm up
                cpu[name].append(cpuMicroseconds(sink, count))
                # a fifth as many: each costs a handshake besides
                cold[name].append(afterHandshakes(sink, count // 5,
                                                  lambda: handshake(server, client)))
        if args.json:
            names = dict(zip(("file", "none"), sinks, strict=True))
            json.dump({"connections": count, "after_handshake_connections": count // 5,
                       "back_to_back_us": {k: min(cpu[v]) for k, v in names.items()},
                       "after_handshake_us": {k: min(cold[v]) for k, v in names.items()}},
                      sys.stdout)
            print()
            return 0
        print("per connection (accepting, connection.accepted, connection.closed), CPU µs "
              "one after another | after a full mTLS handshake each:")
        for name, sink in sinks.items():
            print(f"  {name:30} {min(cpu[name]):7.1f} | {min(cold[name]):7.1f} µs CPU"
                  f"  {calls(sink, 1000):6.1f} calls"
                  f"  {bytecodes(sink, 200):7.1f} bytecodes"
                  f"  {promoted(sink, 2000):5.2f} objects into the oldest GC generation")
    record = connectionClosed(connection(0), 1.7e9, duration=0.5, bytesIn=1, bytesOut=1,
                              closeReason=None)
    for name, sealer in (("one encoding", referenceSeal), ("templates", seal)):
        each = min(timeit.repeat(lambda s=sealer: s(record, 2, "ab" * 32),  # type: ignore[misc]
                                 number=count, repeat=3, timer=time.process_time)) / count * 1e6
        print(f"sealing one connection.closed record, {name}: {each:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
