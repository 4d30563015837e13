# -*- test-case-name: tests.test_check -*-
"""
C{python -m securetcp check TARGET}: parse a policy file or endpoint string
exactly as a server (or, with C{--client}, a client) would, build its
context, measure it item by item against a benchmark, and print the
checklist and the effective policy::

    python -m securetcp check hl7-inbound.toml
    python -m securetcp check --json "mtls:6661:certKey=server.pem:...:crl=devices.crl"

The effective policy is every option of the option table
(L{securetcp.options}) with its value in this policy, spelled as users
write it.  Exit status: 0 nothing failed, 1 configuration error, 3 an item
failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from securetcp._optionviews import effectiveOptions
from securetcp.compliance.check import (
    BENCHMARKS,
    CertificateFacts,
    CheckItem,
    certificateFacts,
    checkPolicy,
    exitStatus,
    failed,
    renderText,
)
from securetcp.policy import Role, TLSPolicy


def addParser(sub: Any) -> None:
    """
    Add the C{check} command to the subcommands C{sub}.
    """
    check = sub.add_parser(
        "check", help="measure a policy file or endpoint string against NIST SP 800-52r2, "
        "a Mozilla profile or a DICOM PS3.15 profile (exit 0: all pass, 1: configuration error, 3: a check failed)")
    check.add_argument("target", help="a .toml policy file or an endpoint string")
    check.add_argument("--client", action="store_true",
                       help="parse the endpoint string as a client endpoint")
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.add_argument("--profile", choices=list(BENCHMARKS), default="nist-800-52r2",
                       help="the benchmark whose failures set the exit status")
    check.set_defaults(handler=checkCommand)


def loadTarget(target: str, client: bool) -> Tuple[TLSPolicy, Optional[str]]:
    """
    The policy of a TOML policy file or endpoint string, parsed and built
    exactly as a server (or, with C{client}, a client) would, and the
    hostname a client endpoint verifies.

    @raise ValueError: (L{PolicyError} and subclasses) for any problem.
    """
    from twisted.internet.endpoints import clientFromString, serverFromString
    from twisted.internet.testing import MemoryReactor

    from securetcp._tls.context import buildContext
    from securetcp.config import loadPolicyFile
    from securetcp.materials import loadMaterials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if os.path.isfile(target) and target.endswith(".toml"):
            policy = loadPolicyFile(target)
            role = Role.CLIENT if client else Role.SERVER
            buildContext(policy, role, loadMaterials(policy, role))
            return policy, policy.peer.hostname
        parse = clientFromString if client else serverFromString
        endpoint: Any = parse(MemoryReactor(), target)
        return endpoint.policy, getattr(endpoint, "hostname", None)


def ownCertificate(policy: TLSPolicy) -> Optional[CertificateFacts]:
    """
    The facts of C{policy}'s own certificate, or C{None}.
    """
    from securetcp.materials import loadCertificates, loadCredentials

    creds = policy.credentials
    if not creds.configured:
        return None
    if creds.pkcs12:
        return certificateFacts(loadCredentials(creds, policy.keys).chain[0])
    path = creds.certificateFile
    assert path is not None  # configured, and not a bundle
    return certificateFacts(loadCertificates("certKey", path)[0])


def expiryOf(policy: TLSPolicy, role: Role, now: Optional[float] = None) -> List[Dict[str, Any]]:
    """
    The days left of C{policy}'s own certificate, its CA certificates and
    its CRLs, soonest first (L{securetcp.compliance.expiry.expiryReport}).
    """
    import time

    from securetcp.compliance.expiry import expiryReport, materialDeadlines
    from securetcp.materials import loadMaterials

    materials = loadMaterials(policy, role)
    crls = materials.crls.crls if materials.crls is not None else ()
    return expiryReport(materialDeadlines(materials.chain, materials.trust, crls),
                        time.time() if now is None else now)


def effectivePolicy(policy: TLSPolicy, groups: Sequence[str]) -> Dict[str, Any]:
    """
    What C{check} prints as the effective policy: the policy's name,
    profile and compliance, every option's value (the groups as the linked
    OpenSSL offers them), and the OpenSSL version.
    """
    from securetcp._tls.context import openSSLVersion

    options = effectiveOptions(policy)
    del options["name"]  # shown as "policy"
    return {"policy": policy.name, "profile": options.pop("profile"),
            "compliantWith": {"nist-800-52r2": policy.compliant},
            **options, "groups": list(groups), "openssl": openSSLVersion()}


def checkCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Check a policy file or endpoint string (see the module docstring).
    """
    from securetcp._tls.context import effectiveGroups

    role = Role.CLIENT if args.client else Role.SERVER
    try:
        policy, hostname = loadTarget(args.target, args.client)
        groups = effectiveGroups(policy)
        cert = ownCertificate(policy)
        expiry = expiryOf(policy, role)
    except ValueError as e:
        print(f"securetcp: {e}", file=sys.stderr)
        return 1
    results = {
        name: checkPolicy(policy, role, benchmark, certificate=cert,
                          offeredGroups=groups, hostname=hostname)
        for name, benchmark in BENCHMARKS.items()
    }
    effective = effectivePolicy(policy, groups)
    if args.json:
        items = results[args.profile]
        effective["check"] = {
            "role": role.value, "benchmark": args.profile,
            "result": "fail" if exitStatus(items) else "pass",
            "items": [i.asDict() for i in items],
            "certificate": cert.asDict() if cert is not None else None,
            "expiry": expiry,
            "benchmarks": {name: ("fail" if failed(r) else "pass")
                           for name, r in results.items()},
        }
        print(json.dumps(effective, indent=2), file=out)
    else:
        print(f"securetcp check: policy {policy.name!r} (profile {policy.profile}) as a "
              f"{role.value}, against {BENCHMARKS[args.profile].title}", file=out)
        _printText(out, args.profile, results, effective, expiry)
    return exitStatus(results[args.profile])


def _shown(value: Any) -> str:
    """
    An effective value as text: lists comma-separated, booleans as they
    are written in options.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "(none)" if value is None else str(value)


def _printText(out: TextIO, benchmark: str, results: Dict[str, List[CheckItem]],
               effective: Dict[str, Any], expiry: List[Dict[str, Any]]) -> None:
    from securetcp.compliance.expiry import reportLine

    out.write(renderText(results[benchmark]))
    print("", file=out)
    if expiry:
        print("expiry:", file=out)
        for entry in expiry:
            print(f"  {reportLine(entry)}", file=out)
        print("", file=out)
    for name, r in results.items():
        if name != benchmark:
            bad = failed(r)
            verdict = ("FAIL (" + ", ".join(i.id for i in bad) + ")") if bad else "PASS"
            print(f"against {name}: {verdict}", file=out)
    print("", file=out)
    print("effective policy:", file=out)
    for key, value in effective.items():
        print(f"  {key}: {_shown(value)}", file=out)
