# -*- test-case-name: tests.test_cli -*-
"""
C{python -m securetcp}: the command line.

    python -m securetcp demo              # an mTLS echo server with a dev PKI
    python -m securetcp profiles          # list profiles
    python -m securetcp profiles nist-800-52r2   # one profile's exact content
    python -m securetcp check ENDPOINT_OR_POLICY_FILE
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, List, Optional, Sequence, TextIO


def _profiles(args: argparse.Namespace, out: TextIO) -> int:
    from .profiles import PROFILES

    if not args.name:
        for p in PROFILES.values():
            print(f"{p.name:22} {p.description}", file=out)
        return 0
    if args.name not in PROFILES:
        print(f"securetcp: unknown profile {args.name!r}; use one of "
              + ", ".join(PROFILES), file=sys.stderr)
        return 2
    p = PROFILES[args.name]
    print(json.dumps({
        "name": p.name, "description": p.description,
        "minVersion": p.minVersion.value, "maxVersion": p.maxVersion.value,
        "ciphers": list(p.tls12), "ciphersuites": list(p.tls13),
        "optionalGroups": list(p.optionalGroups), "groups": list(p.groups),
        "minRSABits": p.minRSABits, "minECBits": p.minECBits, "legacy": p.legacy,
    }, indent=2), file=out)
    return 0


def _check(args: argparse.Namespace, out: TextIO) -> int:
    """
    Parse a policy file or endpoint string exactly as a server would, build
    its context, and print the effective policy.
    """
    from twisted.internet.testing import MemoryReactor

    from ._context import effectiveGroups, openSSLVersion
    from .config import loadPolicyFile
    from .errors import PolicyError

    target = args.target
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if os.path.isfile(target) and target.endswith(".toml"):
                policy = loadPolicyFile(target)
            else:
                from twisted.internet.endpoints import clientFromString, serverFromString

                parse = clientFromString if args.client else serverFromString
                endpoint: Any = parse(MemoryReactor(), target)
                policy = endpoint.policy
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1
    print(json.dumps({
        "policy": policy.name, "profile": policy.profile,
        "compliantWith": {"nist-800-52r2": policy.compliant},
        "minVersion": policy.versions.minimum.value,
        "maxVersion": policy.versions.maximum.value,
        "ciphers": list(policy.ciphers.tls12),
        "ciphersuites": list(policy.ciphers.tls13),
        "groups": list(effectiveGroups(policy)),
        "clientAuth": policy.peer.clientAuth.value,
        "allowPeers": [str(p) for p in policy.peer.allow],
        "handshakeTimeout": policy.handshakeTimeout,
        "openssl": openSSLVersion(),
    }, indent=2), file=out)
    return 0 if policy.compliant else 3


def _readKey(source: Optional[str]) -> Optional[bytes]:
    if not source:
        return None
    from .credentials import readPassphrase

    return readPassphrase(source)


def _auditVerify(args: argparse.Namespace, out: TextIO) -> int:
    from ._auditcheck import verifyFiles
    from .errors import PolicyError

    try:
        key = _readKey(args.key)
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 2
    result = verifyFiles(args.files, key=key, partial=args.partial)
    if result.ok:
        print(f"OK: {result.records} records in {len(result.files)} file(s), "
              f"records {result.firstSeq}..{result.lastSeq}, last hash {result.lastHash}",
              file=out)
        return 0
    print(f"BROKEN: {result.problems[0]}", file=out)
    print(f"({result.records} records verified before it)", file=out)
    return 1


def _auditReport(args: argparse.Namespace, out: TextIO) -> int:
    from ._auditcheck import buildReport, iterRecords, reportHTML, reportText, verifyFiles

    verified = verifyFiles(args.files, key=_readKey(args.key), partial=True)
    report = buildReport(iterRecords(args.files))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(reportHTML(report, verified))
    if args.json:
        report["chain"] = {"ok": verified.ok, "records": verified.records,
                           "problem": str(verified.problems[0]) if verified.problems else None}
        print(json.dumps(report, indent=2), file=out)
    else:
        out.write(reportText(report, verified))
    return 0 if verified.ok else 1


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import globalLogBeginner

    from ._devpki import ensureDevelopmentPKI
    from .audit import AUDIT_NAMESPACE
    from .config import buildPolicy
    from .endpoints import serverEndpoint
    from .errors import PolicyError

    paths = ensureDevelopmentPKI(args.dir)

    def printAudit(event: dict) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and "securetcp_audit" in event:
            print(json.dumps(event["securetcp_audit"], sort_keys=True), file=out, flush=True)

    globalLogBeginner.beginLoggingTo([printAudit], redirectStandardIO=False)  # type: ignore[list-item]

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    try:
        policy = buildPolicy(name="demo", certKey=paths["serverCert"],
                             privateKey=paths["serverKey"], caCerts=paths["ca"],
                             clientAuth="required")
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, args.port,
                                                              interface="127.0.0.1"),
                                  policy, mutual=True)
    except PolicyError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1

    def listening(port: Any) -> None:
        number = port.getHost().port
        d = os.path.abspath(args.dir)
        print(f"securetcp demo: mTLS echo server on 127.0.0.1:{number} "
              f"(profile nist-800-52r2; DEVELOPMENT certificates in {d})", file=out)
        print("connect with:", file=out)
        print(f"  openssl s_client -connect 127.0.0.1:{number} -CAfile {d}/dev-ca.pem "
              f"-cert {d}/client.pem -key {d}/client.key", file=out)
        print("press Ctrl-C to stop", file=out, flush=True)

    def failed(f: Any) -> None:
        print(f"securetcp: cannot listen: {f.getErrorMessage()}", file=sys.stderr)
        reactor.stop()

    endpoint.listen(Factory.forProtocol(Echo)).addCallbacks(listening, failed)
    reactor.run()
    return 0


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """
    Run the command line; returns the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m securetcp",
                                     description="securetcp: hardened TLS and mTLS for Twisted")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run an mTLS echo server with a development PKI")
    demo.add_argument("--dir", default="securetcp-demo",
                      help="directory for the development CA and certificates")
    demo.add_argument("--port", type=int, default=6661, help="port on 127.0.0.1 (0: any)")
    profiles = sub.add_parser("profiles", help="list profiles or show one's exact content")
    profiles.add_argument("name", nargs="?")
    check = sub.add_parser("check", help="validate a policy file or endpoint string")
    check.add_argument("target", help="a .toml policy file or an endpoint string")
    check.add_argument("--client", action="store_true",
                       help="parse the endpoint string as a client endpoint")
    audit = sub.add_parser("audit", help="verify or summarise audit files")
    auditSub = audit.add_subparsers(dest="auditCommand", required=True)
    verify = auditSub.add_parser("verify", help="check schema, sequence and hash chain")
    verify.add_argument("files", nargs="+", help="the audit file and its rotated files")
    verify.add_argument("--key", help="HMAC key source (env:NAME, file:PATH) for keyed chains")
    verify.add_argument("--partial", action="store_true",
                        help="accept a chain whose first files were left out on purpose")
    report = auditSub.add_parser("report", help="summary for a compliance reviewer")
    report.add_argument("files", nargs="+")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument("--html", metavar="FILE", help="also write an HTML page with charts")
    report.add_argument("--key", help="HMAC key source for keyed chains")
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    if args.command == "audit":
        handler = {"verify": _auditVerify, "report": _auditReport}[args.auditCommand]
    else:
        handler = {"demo": _demo, "profiles": _profiles, "check": _check}[args.command]
    return handler(args, stream)


def run(argv: Optional[List[str]] = None) -> None:
    sys.exit(main(argv))
