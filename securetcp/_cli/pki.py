# -*- test-case-name: tests.test_pki -*-
"""
C{python -m securetcp pki init|issue-server|issue-client|revoke|crl}: a CA
on disk for development and device provisioning (see docs/pki.md)::

    python -m securetcp pki init --dir ca --name "Hospital devices CA"
    python -m securetcp pki issue-server --dir ca --out server --dns localhost
    python -m securetcp pki issue-client --dir ca --out pump-0042 --device-id PUMP-0042
    python -m securetcp pki revoke --dir ca pump-0042.pem
    python -m securetcp pki crl --dir ca --out devices.crl
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO


def addParser(sub: Any) -> None:
    """
    Add the C{pki} command and its subcommands to C{sub}.
    """
    pki = sub.add_parser("pki", help="a small CA on disk for development and device "
                         "provisioning (ECDSA P-256; keys unencrypted on disk)")
    pki.set_defaults(handler=pkiCommand)
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
    _addCommon(pkiInit, pkiServer, pkiClient, pkiRevoke, pkiCRL)


def _addCommon(pkiInit: Any, pkiServer: Any, pkiClient: Any, pkiRevoke: Any,
               pkiCRL: Any) -> None:
    """
    The options several C{pki} subcommands share: C{--dir}, C{--days},
    C{--rsa}.
    """
    for each in (pkiInit, pkiServer, pkiClient, pkiRevoke, pkiCRL):
        each.add_argument("--dir", required=True, help="the CA directory")
    for each in (pkiInit, pkiServer, pkiClient, pkiCRL):
        each.add_argument("--days", type=int, help="validity in days (default: CA 3650, "
                          "certificates 397, CRL 7)")
    for each in (pkiInit, pkiServer, pkiClient):
        each.add_argument("--rsa", type=int, metavar="BITS",
                          help="an RSA key of BITS (>= 2048) instead of ECDSA P-256")


def pkiCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Run one C{pki} subcommand; exit 1 on a L{PKIError}, naming the problem.
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
            _issue(ca, args, out)
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


def _issue(ca: Any, args: argparse.Namespace, out: TextIO) -> None:
    """
    C{issue-server} or C{issue-client}: issue, and say what was written.
    """
    if args.pkiCommand == "issue-server":
        issued = ca.issueServer(args.out, args.dns, args.ip, args.days or 397,
                                args.rsa, args.force)
    else:
        issued = ca.issueClient(args.out, args.device_id, args.spiffe,
                                args.days or 397, args.rsa, args.force)
    print(f"issued {issued.subject} serial {issued.serial}: {issued.certificate} "
          f"(key {issued.key}, mode 0600)", file=out)
