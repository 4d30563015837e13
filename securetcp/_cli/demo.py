# -*- test-case-name: tests.test_cli_docs -*-
"""
C{python -m securetcp demo}: an mTLS echo server on 127.0.0.1 under the
C{nist-800-52r2} profile, with a development PKI made on first use, that
prints every audit record::

    python -m securetcp demo --dir securetcp-demo --port 6661
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, TextIO


def addParser(sub: Any) -> None:
    """
    Add the C{demo} command to the subcommands C{sub}.
    """
    demo = sub.add_parser("demo", help="run an mTLS echo server with a development PKI")
    demo.add_argument("--dir", default="securetcp-demo",
                      help="directory for the development CA and certificates")
    demo.add_argument("--port", type=int, default=6661, help="port on 127.0.0.1 (0: any)")
    demo.set_defaults(handler=demoCommand)


def _printAudit(out: TextIO) -> Any:
    """
    An observer that prints each audit record as a JSON line.
    """
    from securetcp.audit.records import AUDIT_NAMESPACE

    def printAudit(event: Dict[str, Any]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and "securetcp_audit" in event:
            print(json.dumps(event["securetcp_audit"], sort_keys=True), file=out, flush=True)

    return printAudit


def _listening(out: TextIO, directory: str) -> Any:
    """
    What to do once listening: say where, and how to connect.
    """

    def listening(port: Any) -> None:
        number = port.getHost().port
        d = os.path.abspath(directory)
        print(f"securetcp demo: mTLS echo server on 127.0.0.1:{number} "
              f"(profile nist-800-52r2; DEVELOPMENT certificates in {d})", file=out)
        print("connect with:", file=out)
        print(f"  openssl s_client -connect 127.0.0.1:{number} -CAfile {d}/dev-ca.pem "
              f"-cert {d}/client.pem -key {d}/client.key", file=out)
        print("press Ctrl-C to stop", file=out, flush=True)

    return listening


def demoCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Run the demo server until interrupted.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import globalLogBeginner

    from securetcp._pki.development import ensureDevelopmentPKI
    from securetcp.config import buildPolicy
    from securetcp.endpoints import serverEndpoint
    from securetcp.errors import PolicyError

    paths = ensureDevelopmentPKI(args.dir)
    globalLogBeginner.beginLoggingTo([_printAudit(out)], redirectStandardIO=False)

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    try:
        policy = buildPolicy(name="demo", certKey=paths["serverCert"],
                             privateKey=paths["serverKey"], caCerts=paths["ca"],
                             clientAuth="required")
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, args.port, backlog=1024,
                                                              interface="127.0.0.1"),
                                  policy, mutual=True)
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1

    problems: List[str] = []

    def failed(f: Any) -> None:
        problems.append(f"securetcp: cannot listen on 127.0.0.1:{args.port}: "
                        f"{f.getErrorMessage()}")
        if reactor.running:
            reactor.stop()

    endpoint.listen(Factory.forProtocol(Echo)).addCallbacks(_listening(out, args.dir), failed)
    if not problems:  # a port that is taken fails at once: never run the reactor then
        reactor.run()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0
