"""
How long a CRL reload blocks the reactor, with a 100,000-entry CRL.

    python -m benchmarks.crl_reload [--entries N] [--reloads K]

A server endpoint with C{crl=} runs in this process under the real reactor;
a timer that should fire every millisecond records how late it fires while
C{reloadCRLs()} re-reads, verifies and swaps the CRL (parsing and building
the new context happen in the reactor's thread pool; the reactor only swaps
a reference).  Prints the worst and median lateness during reloads and at
rest, as JSON.  Not a test: figures go to docs/revocation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from ._pki import makePKI


def _measure(entries: int, reloads: int) -> Dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.internet.protocol import Factory, Protocol
    from twisted.internet.task import LoopingCall
    from twisted.logger import Logger

    from securetcp import AUDIT_NAMESPACE, AuditEmitter, buildPolicy, serverEndpoint

    directory = tempfile.mkdtemp(prefix="securetcp-crl-")
    paths = makePKI(directory, bigCRL=entries)
    policy = buildPolicy(certKey=paths["serverCert"], privateKey=paths["serverKey"],
                         caCerts=paths["ca"], crl=paths["crlBig"], crlReload=0)
    endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
                              policy, mutual=True,
                              emitter=AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                                          observer=lambda event: None)))
    lateness: List[float] = []
    phase: Dict[str, List[float]] = {"rest": [], "reload": []}
    state = {"phase": "rest", "last": time.perf_counter()}

    def tick() -> None:
        now = time.perf_counter()
        late = now - state["last"] - 0.001
        state["last"] = now
        phase[state["phase"]].append(max(0.0, late))
        lateness.append(late)

    ticker = LoopingCall(tick)
    results: Dict[str, Any] = {}

    def run(port: Any) -> Any:
        from twisted.internet.defer import inlineCallbacks
        from twisted.internet.task import deferLater

        @inlineCallbacks
        def go() -> Any:
            ticker.start(0.001)
            yield deferLater(reactor, 0.5, lambda: None)
            durations = []
            for _ in range(reloads):
                # touch the file so the reload really re-reads it
                os.utime(paths["crlBig"])
                state["phase"] = "reload"
                started = time.perf_counter()
                ok = yield endpoint.reloadCRLs()
                durations.append(time.perf_counter() - started)
                state["phase"] = "rest"
                assert ok, "the CRL reload was refused"
                yield deferLater(reactor, 0.3, lambda: None)
            ticker.stop()
            yield port.stopListening()
            results.update({
                "entries": entries,
                "reloads": reloads,
                "reloadSeconds": [round(d, 3) for d in durations],
                "reactorLatenessDuringReloadMaxMs": round(max(phase["reload"]) * 1000, 2),
                "reactorLatenessDuringReloadMedianMs": round(
                    statistics.median(phase["reload"]) * 1000, 3),
                "reactorLatenessAtRestMaxMs": round(max(phase["rest"]) * 1000, 2),
            })

        return go()

    d = endpoint.listen(Factory.forProtocol(Protocol))
    d.addCallback(run)
    d.addErrback(lambda f: results.update(error=f.getErrorMessage()))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crl_reload")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--reloads", type=int, default=3)
    args = parser.parse_args(argv)
    results = _measure(args.entries, args.reloads)
    print(json.dumps(results, indent=2))
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
