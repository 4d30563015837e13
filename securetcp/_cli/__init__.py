# -*- test-case-name: tests.test_cli -*-
"""
C{python -m securetcp}: the command line.

    python -m securetcp demo              # an mTLS echo server with a dev PKI
    python -m securetcp profiles          # list profiles
    python -m securetcp profiles nist-800-52r2   # one profile's exact content
    python -m securetcp check ENDPOINT_OR_POLICY_FILE [--client] [--json]
    python -m securetcp probe HOST:PORT [--cacert CA] [--cert C --key K]
    python -m securetcp pki init|issue-server|issue-client|revoke|crl --dir CA ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple


def _profiles(args: argparse.Namespace, out: TextIO) -> int:
    from securetcp.profiles import PROFILES

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


def _loadTarget(target: str, client: bool) -> Tuple[Any, Optional[str]]:
    """
    The policy of a TOML policy file or endpoint string, parsed and built
    exactly as a server (or, with C{client}, a client) would, and the
    hostname a client endpoint verifies.

    @raise ValueError: (L{PolicyError} and subclasses) for any problem.
    """
    from twisted.internet.testing import MemoryReactor

    from securetcp._tls.context import buildContext
    from securetcp.config import loadPolicyFile
    from securetcp.policy import Role

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if os.path.isfile(target) and target.endswith(".toml"):
            policy = loadPolicyFile(target)
            buildContext(policy, Role.CLIENT if client else Role.SERVER)
            return policy, policy.peer.hostname
        from twisted.internet.endpoints import clientFromString, serverFromString

        parse = clientFromString if client else serverFromString
        endpoint: Any = parse(MemoryReactor(), target)
        return endpoint.policy, getattr(endpoint, "hostname", None)


def _ownCertificate(policy: Any) -> Any:
    """
    The L{securetcp.compliance.check.CertificateFacts} of C{policy}'s own certificate,
    or C{None}.
    """
    from securetcp.compliance.check import certificateFacts
    from securetcp.materials import loadCertificates, loadCredentials

    creds = policy.credentials
    if not creds.configured:
        return None
    if creds.pkcs12:
        return certificateFacts(loadCredentials(creds, policy.keys).chain[0])
    return certificateFacts(loadCertificates("certKey", creds.certificateFile)[0])


def _check(args: argparse.Namespace, out: TextIO) -> int:
    """
    Parse a policy file or endpoint string exactly as a server would, build
    its context, measure it item by item against a benchmark (NIST SP
    800-52r2 by default) and print the checklist and the effective policy.
    Exit status: 0 nothing failed, 1 configuration error, 3 an item failed.
    """
    from securetcp._tls.context import effectiveGroups, openSSLVersion
    from securetcp.compliance.check import BENCHMARKS, checkPolicy, exitStatus, failed, renderText
    from securetcp.policy import Role

    role = Role.CLIENT if args.client else Role.SERVER
    try:
        policy, hostname = _loadTarget(args.target, args.client)
        groups = effectiveGroups(policy)
        cert = _ownCertificate(policy)
    except ValueError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1
    results = {
        name: checkPolicy(policy, role, benchmark, certificate=cert,
                          offeredGroups=groups, hostname=hostname)
        for name, benchmark in BENCHMARKS.items()
    }
    items = results[args.profile]
    status = exitStatus(items)
    effective = {
        "policy": policy.name, "profile": policy.profile,
        "compliantWith": {"nist-800-52r2": policy.compliant},
        "minVersion": policy.versions.minimum.value,
        "maxVersion": policy.versions.maximum.value,
        "ciphers": list(policy.ciphers.tls12),
        "ciphersuites": list(policy.ciphers.tls13),
        "groups": list(groups),
        "clientAuth": policy.peer.clientAuth.value,
        "allowPeers": [str(p) for p in policy.peer.allow],
        "handshakeTimeout": policy.handshakeTimeout,
        "openssl": openSSLVersion(),
    }
    if args.json:
        effective["check"] = {
            "role": role.value, "benchmark": args.profile,
            "result": "fail" if status else "pass",
            "items": [i.asDict() for i in items],
            "certificate": cert.asDict() if cert is not None else None,
            "benchmarks": {name: ("fail" if failed(r) else "pass")
                           for name, r in results.items()},
        }
        print(json.dumps(effective, indent=2), file=out)
        return status
    print(f"securetcp check: policy {policy.name!r} (profile {policy.profile}) as a "
          f"{role.value}, against {BENCHMARKS[args.profile].title}", file=out)
    out.write(renderText(items))
    print("", file=out)
    for name, r in results.items():
        if name != args.profile:
            bad = failed(r)
            verdict = ("FAIL (" + ", ".join(i.id for i in bad) + ")") if bad else "PASS"
            print(f"against {name}: {verdict}", file=out)
    print("", file=out)
    print("effective policy:", file=out)
    for key, value in effective.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "(none)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"  {key}: {value}", file=out)
    return status


_CBC_CIPHERS = ("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
                "ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
                "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:AES128-SHA:AES256-SHA:"
                "AES128-SHA256:AES256-SHA256:@SECLEVEL=0")


def _hostPort(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (write e.g. 127.0.0.1:6661 or "
                         "[::1]:6661)")
    return host.strip("[]"), int(port)


def _hostnameProblem(cert: Any, name: str) -> Optional[str]:
    from service_identity import CertificateError, VerificationError
    from service_identity.cryptography import (
        verify_certificate_hostname,
        verify_certificate_ip_address,
    )

    try:
        try:
            import ipaddress

            ipaddress.ip_address(name)
        except ValueError:
            verify_certificate_hostname(cert, name)
        else:
            verify_certificate_ip_address(cert, name)
    except (VerificationError, CertificateError) as e:
        return f"not valid for {name}: {e}"
    return None


def _probe(args: argparse.Namespace, out: TextIO) -> int:
    """
    Connect to a running server, report what it negotiated and presented
    and whether it refuses TLS 1.0, TLS 1.1 and CBC suites, with the same
    verdicts as C{check}.
    """
    from securetcp._catalogue import TLSVersion
    from securetcp._tls.context import probeHandshake
    from securetcp.compliance.check import (
        BENCHMARKS,
        Attempt,
        ProbeFacts,
        certificateFacts,
        checkNegotiated,
        exitStatus,
        renderText,
    )

    benchmark = BENCHMARKS[args.profile]
    try:
        host, port = _hostPort(args.target)
        common: Dict[str, Any] = dict(serverName=args.servername, caFile=args.cacert,
                                      certFile=args.cert, keyFile=args.key,
                                      timeout=args.timeout)
        main = probeHandshake(host, port, **common)
        tries: Dict[str, Any] = {
            "TLSv1": dict(versions=(TLSVersion.TLSv1, TLSVersion.TLSv1)),
            "TLSv1.1": dict(versions=(TLSVersion.TLSv1_1, TLSVersion.TLSv1_1)),
            "nonAEAD": dict(versions=(TLSVersion.TLSv1_2, TLSVersion.TLSv1_2),
                            cipherList=_CBC_CIPHERS),
        }
        if benchmark.minVersion > TLSVersion.TLSv1_2:
            tries["TLSv1.2"] = dict(versions=(TLSVersion.TLSv1_2, TLSVersion.TLSv1_2))
        attempts = {}
        for name, extra in tries.items():
            a = probeHandshake(host, port, **common, **extra)
            attempts[name] = Attempt(a.connected, a.error, a.version, a.cipher, a.offered)
    except Exception as e:  # OSError, an unreadable --cert, a bad argument
        print(f"securetcp: cannot probe {args.target}: {e}", file=sys.stderr)
        return 1
    name = args.servername or host
    facts = ProbeFacts(
        main=Attempt(main.connected, main.error, main.version, main.cipher, main.offered),
        group=main.group,
        chain=tuple(certificateFacts(c) for c in main.chain),
        verifyError=main.verifyError,
        hostnameError=_hostnameProblem(main.chain[0], name) if main.chain else None,
        clientCertRequested=main.clientCertRequested,
        ocspStapled=main.ocspStapled,
        attempts=attempts,
    )
    items = checkNegotiated(facts, benchmark)
    status = exitStatus(items)
    if args.json:
        print(json.dumps({
            "target": args.target, "benchmark": args.profile,
            "result": "fail" if status else "pass",
            "negotiated": {"version": main.version, "cipher": main.cipher,
                           "group": main.group, "error": main.error},
            "certificates": [c.asDict() for c in facts.chain],
            "clientCertRequested": main.clientCertRequested,
            "ocspStapled": main.ocspStapled,
            "attempts": {k: {"connected": a.connected, "error": a.error,
                             "version": a.version, "cipher": a.cipher,
                             "offered": a.offered} for k, a in attempts.items()},
            "items": [i.asDict() for i in items],
        }, indent=2), file=out)
        return status
    print(f"securetcp probe: {args.target} against {benchmark.title}", file=out)
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
    return status


def _readKey(source: Optional[str]) -> Optional[bytes]:
    if not source:
        return None
    from securetcp.materials import readPassphrase

    return readPassphrase(source)


def _auditVerify(args: argparse.Namespace, out: TextIO) -> int:
    from securetcp.audit.verify import verifyFiles
    from securetcp.errors import PolicyError

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
    from securetcp.audit.report import buildReport, reportHTML, reportText
    from securetcp.audit.verify import iterRecords, verifyFiles

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

    from securetcp._pki.development import ensureDevelopmentPKI
    from securetcp.audit.records import AUDIT_NAMESPACE
    from securetcp.config import buildPolicy
    from securetcp.endpoints import serverEndpoint
    from securetcp.errors import PolicyError

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
        endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, args.port, backlog=1024,
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


def _pkiCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    C{pki init | issue-server | issue-client | revoke | crl}: a CA on disk
    for development and device provisioning (see docs/pki.md).
    """
    from securetcp._pki import CertificateAuthority
    from securetcp.errors import PKIError

    try:
        if args.pkiCommand == "init":
            ca = CertificateAuthority.create(args.dir, args.name, args.days or 3650, args.rsa,
                                             args.trust_domain, args.force)
            print(f"created CA {ca.cert.subject.rfc4514_string()!r} in {ca.directory} "
                  f"(ca.pem; ca.key is unencrypted, mode 0600: keep it offline)", file=out)
            return 0
        ca = CertificateAuthority.open(args.dir)
        if args.pkiCommand in ("issue-server", "issue-client"):
            if args.pkiCommand == "issue-server":
                issued = ca.issueServer(args.out, args.dns, args.ip, args.days or 397,
                                        args.rsa, args.force)
            else:
                issued = ca.issueClient(args.out, args.device_id, args.spiffe,
                                        args.days or 397, args.rsa, args.force)
            print(f"issued {issued.subject} serial {issued.serial}: {issued.certificate} "
                  f"(key {issued.key}, mode 0600)", file=out)
        elif args.pkiCommand == "revoke":
            entry = ca.revoke(args.certificate, args.serial, args.reason)
            print(f"revoked {entry['subject']} serial {entry['serial']} "
                  f"({entry['revocationReason']}, {entry['revocationTime']}); "
                  "publish a new CRL with `pki crl`", file=out)
        else:
            number = ca.crl(args.out, args.days or 7)
            print(f"wrote CRL number {number} to {os.path.abspath(args.out)}", file=out)
    except PKIError as e:
        print(f"securetcp pki: {e}", file=sys.stderr)
        return 1
    return 0


def buildParser() -> argparse.ArgumentParser:
    """
    The parser of C{python -m securetcp}, with every subcommand and option
    (docs/cli.md documents each; C{tests.test_cli_docs} checks it does).
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
    from securetcp.compliance.check import BENCHMARKS

    check = sub.add_parser(
        "check", help="measure a policy file or endpoint string against NIST SP 800-52r2 "
        "or a Mozilla profile (exit 0: all pass, 1: configuration error, 3: a check failed)")
    check.add_argument("target", help="a .toml policy file or an endpoint string")
    check.add_argument("--client", action="store_true",
                       help="parse the endpoint string as a client endpoint")
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.add_argument("--profile", choices=list(BENCHMARKS), default="nist-800-52r2",
                       help="the benchmark whose failures set the exit status")
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
    pki = sub.add_parser("pki", help="a small CA on disk for development and device "
                         "provisioning (ECDSA P-256; keys unencrypted on disk)")
    pkiSub = pki.add_subparsers(dest="pkiCommand", required=True)
    pkiInit = pkiSub.add_parser("init", help="create a CA in --dir")
    pkiInit.add_argument("--name", required=True, help='the CA\'s name, e.g. "Hospital '
                         'devices CA"')
    pkiInit.add_argument("--trust-domain", help="SPIFFE trust domain of device identities "
                         "(default devices.invalid)")
    pkiInit.add_argument("--force", action="store_true",
                         help="replace a CA already in --dir (and forget what it issued)")
    pkiServer = pkiSub.add_parser("issue-server", help="issue a server certificate")
    pkiServer.add_argument("--out", required=True, help="writes OUT.pem and OUT.key")
    pkiServer.add_argument("--dns", action="append", default=[], help="DNS name (repeatable)")
    pkiServer.add_argument("--ip", action="append", default=[], help="IP address (repeatable)")
    pkiClient = pkiSub.add_parser("issue-client", help="issue a device (client) certificate")
    pkiClient.add_argument("--out", required=True, help="writes OUT.pem and OUT.key")
    pkiClient.add_argument("--device-id", required=True,
                           help="the device's identity: subject CN and serialNumber")
    pkiClient.add_argument("--spiffe", help="SAN URI (default spiffe://TRUST-DOMAIN/device/ID)")
    for issuing in (pkiServer, pkiClient):
        issuing.add_argument("--force", action="store_true", help="overwrite OUT.pem/OUT.key")
    pkiRevoke = pkiSub.add_parser("revoke", help="mark a certificate revoked (then run crl)")
    pkiRevoke.add_argument("certificate", nargs="?", metavar="CERT.pem")
    pkiRevoke.add_argument("--serial", help="the serial number (hex) instead of CERT.pem")
    pkiRevoke.add_argument("--reason", default="unspecified",
                           help="RFC 5280 reason, e.g. keyCompromise, superseded, "
                           "cessationOfOperation (default unspecified)")
    pkiCRL = pkiSub.add_parser("crl", help="write a CRL of every revoked certificate")
    pkiCRL.add_argument("--out", required=True, help="the CRL file (PEM), replaced atomically")
    for each in (pkiInit, pkiServer, pkiClient, pkiRevoke, pkiCRL):
        each.add_argument("--dir", required=True, help="the CA directory")
    for each in (pkiInit, pkiServer, pkiClient, pkiCRL):
        each.add_argument("--days", type=int, help="validity in days (default: CA 3650, "
                          "certificates 397, CRL 7)")
    for each in (pkiInit, pkiServer, pkiClient):
        each.add_argument("--rsa", type=int, metavar="BITS",
                          help="an RSA key of BITS (>= 2048) instead of ECDSA P-256")
    return parser


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """
    Run the command line; returns the exit status.
    """
    args = buildParser().parse_args(argv)
    stream = out or sys.stdout
    if args.command == "audit":
        handler = {"verify": _auditVerify, "report": _auditReport}[args.auditCommand]
    else:
        handler = {"demo": _demo, "profiles": _profiles, "check": _check,
                   "probe": _probe, "pki": _pkiCommand}[args.command]
    return handler(args, stream)


def run(argv: Optional[List[str]] = None) -> None:
    sys.exit(main(argv))
