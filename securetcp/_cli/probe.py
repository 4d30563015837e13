# -*- test-case-name: tests.test_check -*-
"""
C{python -m securetcp probe HOST:PORT}: connect to a running TLS server,
report what it negotiated and presented, and whether it refuses TLS 1.0,
TLS 1.1 and CBC suites, with the same verdicts as C{check}::

    python -m securetcp probe 127.0.0.1:6661 --cacert ca.pem --cert c.pem --key c.key

Exit status: 0 nothing failed, 1 cannot probe, 3 an item failed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import Any, Dict, List, Optional, TextIO, Tuple

from securetcp._catalogue import TLSVersion
from securetcp.compliance.check import (
    BENCHMARKS,
    Attempt,
    Benchmark,
    CheckItem,
    ProbeFacts,
    certificateFacts,
    checkNegotiated,
    exitStatus,
    renderText,
)

_CBC_CIPHERS = ("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
                "ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
                "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:AES128-SHA:AES256-SHA:"
                "AES128-SHA256:AES256-SHA256:@SECLEVEL=0")


def addParser(sub: Any) -> None:
    """
    Add the C{probe} command to the subcommands C{sub}.
    """
    probe = sub.add_parser(
        "probe", help="connect to a running TLS server and judge what it negotiates "
        "(exit 0: all pass, 1: cannot connect, 3: a check failed)")
    probe.add_argument("target", metavar="HOST:PORT")
    probe.add_argument("--cacert", help="CA file to verify the server with "
                       "(default: the system store)")
    probe.add_argument("--cert", help="client certificate (PEM) to present")
    probe.add_argument("--key", help="the client certificate's key (default: --cert)")
    probe.add_argument("--servername", help="SNI name and name the certificate is "
                       "checked against (default: HOST)")
    probe.add_argument("--json", action="store_true", help="print JSON instead of text")
    probe.add_argument("--profile", choices=list(BENCHMARKS), default="nist-800-52r2")
    probe.add_argument("--timeout", type=float, default=10.0,
                       help="seconds to wait for each handshake")
    probe.set_defaults(handler=probeCommand)


def hostPort(text: str) -> Tuple[str, int]:
    """
    C{HOST:PORT} (C{[::1]:PORT} for IPv6) as a host and a port.

    @raise ValueError: naming the text, when it is not that.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (write e.g. 127.0.0.1:6661 or "
                         "[::1]:6661)")
    return host.strip("[]"), int(port)


def hostnameProblem(cert: Any, name: str) -> Optional[str]:
    """
    Why C{cert} is not valid for C{name} (a DNS name or an IP address), or
    C{None} when it is.
    """
    from service_identity import CertificateError, VerificationError
    from service_identity.cryptography import (
        verify_certificate_hostname,
        verify_certificate_ip_address,
    )

    try:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            verify_certificate_hostname(cert, name)
        else:
            verify_certificate_ip_address(cert, name)
    except (VerificationError, CertificateError) as e:
        return f"not valid for {name}: {e}"
    return None


def _attempt(a: Any) -> Attempt:
    return Attempt(a.connected, a.error, a.version, a.cipher, a.offered)


def gatherFacts(args: argparse.Namespace, benchmark: Benchmark) -> Tuple[Any, ProbeFacts]:
    """
    Make the handshakes C{probe} needs: the full one, then the refusal
    tests; return the full one as the linked OpenSSL reported it, and the
    facts.

    @raise Exception: when the server cannot be probed.
    """
    from securetcp._tls.probe import probeHandshake

    host, port = hostPort(args.target)
    common: Dict[str, Any] = dict(serverName=args.servername, caFile=args.cacert,
                                  certFile=args.cert, keyFile=args.key, timeout=args.timeout)
    main = probeHandshake(host, port, **common)
    tries: Dict[str, Any] = {
        "TLSv1": dict(versions=(TLSVersion.TLSv1, TLSVersion.TLSv1)),
        "TLSv1.1": dict(versions=(TLSVersion.TLSv1_1, TLSVersion.TLSv1_1)),
        "nonAEAD": dict(versions=(TLSVersion.TLSv1_2, TLSVersion.TLSv1_2),
                        cipherList=_CBC_CIPHERS),
    }
    if benchmark.minVersion > TLSVersion.TLSv1_2:
        tries["TLSv1.2"] = dict(versions=(TLSVersion.TLSv1_2, TLSVersion.TLSv1_2))
    if benchmark.requireTLS12:
        tries["acceptsTLSv1.2"] = dict(versions=(TLSVersion.TLSv1_2, TLSVersion.TLSv1_2))
    attempts = {name: _attempt(probeHandshake(host, port, **common, **extra))
                for name, extra in tries.items()}
    name = args.servername or host
    return main, ProbeFacts(
        main=_attempt(main),
        group=main.group,
        chain=tuple(certificateFacts(c) for c in main.chain),
        verifyError=main.verifyError,
        hostnameError=hostnameProblem(main.chain[0], name) if main.chain else None,
        clientCertRequested=main.clientCertRequested,
        ocspStapled=main.ocspStapled,
        attempts=attempts,
    )


def probeCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Probe a server (see the module docstring).
    """
    benchmark = BENCHMARKS[args.profile]
    try:
        main, facts = gatherFacts(args, benchmark)
    except Exception as e:  # OSError, an unreadable --cert, a bad argument
        print(f"securetcp: cannot probe {args.target}: {e}", file=sys.stderr)
        return 1
    items = checkNegotiated(facts, benchmark)
    if args.json:
        _printJSON(out, args, main, facts, items)
    else:
        _printText(out, args.target, benchmark, main, facts, items)
    return exitStatus(items)


def _printJSON(out: TextIO, args: argparse.Namespace, main: Any, facts: ProbeFacts,
               items: List[CheckItem]) -> None:
    print(json.dumps({
        "target": args.target, "benchmark": args.profile,
        "result": "fail" if exitStatus(items) else "pass",
        "negotiated": {"version": main.version, "cipher": main.cipher,
                       "group": main.group, "error": main.error},
        "certificates": [c.asDict() for c in facts.chain],
        "clientCertRequested": main.clientCertRequested,
        "ocspStapled": main.ocspStapled,
        "attempts": {k: {"connected": a.connected, "error": a.error,
                         "version": a.version, "cipher": a.cipher,
                         "offered": a.offered} for k, a in facts.attempts.items()},
        "items": [i.asDict() for i in items],
    }, indent=2), file=out)


def _printText(out: TextIO, target: str, benchmark: Benchmark, main: Any,
               facts: ProbeFacts, items: List[CheckItem]) -> None:
    print(f"securetcp probe: {target} against {benchmark.title}", file=out)
    if main.connected:
        print(f"negotiated: {main.version} {main.cipher} group {main.group or 'unknown'}",
              file=out)
    else:
        print(f"handshake failed: {main.error}", file=out)
    for depth, cert in enumerate(facts.chain):
        print(f"certificate {depth}: {cert.subject}; issuer {cert.issuer}; "
              f"{cert.keyDescription}; expires {cert.notAfter.isoformat()}", file=out)
    print("client certificate requested: "
          + ("yes" if main.clientCertRequested else "no"), file=out)
    out.write(renderText(items))
