# -*- test-case-name: tests.test_pki -*-
"""
C{python -m securetcp pki init|issue-server|issue-client|issue-node|sign-csr|revoke|crl}:
a CA on disk for development and device provisioning (see docs/pki.md)::

    python -m securetcp pki init --dir ca --name "Hospital devices CA"
    python -m securetcp pki issue-server --dir ca --out server --dns localhost
    python -m securetcp pki issue-client --dir ca --out pump-0042 --device-id PUMP-0042
    python -m securetcp pki issue-node --dir ca --out pacs --dns pacs.hospital.example
    python -m securetcp pki sign-csr --dir ca --csr ct1.csr --out ct1 --as node --dns ct1.example
    python -m securetcp pki revoke --dir ca pump-0042.pem
    python -m securetcp pki crl --dir ca --out devices.crl
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

_DAYS = "validity in days (default: CA 3650, certificates 397, CRL 7)"


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
    _addIssuing(pkiSub)
    pkiRevoke = pkiSub.add_parser("revoke", help="mark a certificate revoked (then run crl)")
    pkiRevoke.add_argument("certificate", nargs="?", metavar="CERT.pem")
    pkiRevoke.add_argument("--serial", help="the serial number (hex) instead of CERT.pem")
    pkiRevoke.add_argument("--reason", default="unspecified",
                           help="RFC 5280 reason, e.g. keyCompromise, superseded, "
                           "cessationOfOperation (default unspecified)")
    pkiCRL = pkiSub.add_parser("crl", help="write a CRL of every revoked certificate")
    pkiCRL.add_argument("--out", required=True, help="the CRL file (PEM), replaced atomically")
    pkiCRL.add_argument("--days", type=int, help=_DAYS)
    for each in (pkiInit, pkiRevoke, pkiCRL):
        each.add_argument("--dir", required=True, help="the CA directory")
    pkiInit.add_argument("--days", type=int, help=_DAYS)
    pkiInit.add_argument("--rsa", type=int, metavar="BITS",
                         help="an RSA key of BITS (>= 2048) instead of ECDSA P-256")


def _addIssuing(pkiSub: Any) -> None:
    """
    The commands that issue a certificate: C{issue-server},
    C{issue-client}, C{issue-node} (for a new key each) and C{sign-csr}
    (for the key of a request), with the names each takes.
    """
    server = pkiSub.add_parser("issue-server", help="issue a server certificate (serverAuth)")
    client = pkiSub.add_parser("issue-client",
                               help="issue a device (client) certificate (clientAuth)")
    node = pkiSub.add_parser("issue-node", help="issue a certificate for both server and "
                             "client use (serverAuth and clientAuth), e.g. a DICOM node")
    sign = pkiSub.add_parser("sign-csr", help="certify the key of a certificate signing "
                             "request (the key stays with the requester)")
    sign.add_argument("--csr", required=True, metavar="FILE",
                      help="the request (PEM or DER), e.g. from openssl req -new")
    sign.add_argument("--as", dest="kind", required=True, choices=("server", "client", "node"),
                      help="the kind of certificate, as issue-server, issue-client, issue-node")
    sign.add_argument("--accept-csr-names", action="store_true",
                      help="take the request's subject and subjectAltNames (DNS, IP, URI) "
                      "instead of names given here")
    for each in (server, client, node, sign):
        each.add_argument("--dir", required=True, help="the CA directory")
        each.add_argument("--out", required=True,
                          help="writes OUT.pem (sign-csr) or OUT.pem and OUT.key")
        each.add_argument("--dns", action="append", default=[], help="DNS name (repeatable)")
        each.add_argument("--org", help="the subject's organisation (O)")
        each.add_argument("--days", type=int, help=_DAYS)
        each.add_argument("--force", action="store_true",
                          help="overwrite OUT.pem (and OUT.key)")
    for each in (server, node, sign):
        each.add_argument("--ip", action="append", default=[], help="IP address (repeatable)")
    client.add_argument("--device-id", required=True,
                        help="the device's identity: subject CN and serialNumber")
    sign.add_argument("--device-id", help="(--as client) the device's identity")
    for each in (client, node, sign):
        each.add_argument("--spiffe", help="SAN URI (client default: "
                          "spiffe://TRUST-DOMAIN/device/ID; node: none)")
    for each in (server, client, node):
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
            days = args.days if args.days is not None else 3650
            ca = CertificateAuthority.create(args.dir, args.name, days, args.rsa,
                                             args.trust_domain, args.force)
            print(f"created CA {ca.cert.subject.rfc4514_string()!r} in {ca.directory} "
                  f"(ca.pem; ca.key is unencrypted, mode 0600: keep it offline)", file=out)
            return 0
        ca = CertificateAuthority.open(args.dir)
        if args.pkiCommand == "revoke":
            entry = ca.revoke(args.certificate, args.serial, args.reason)
            print(f"revoked {entry['subject']} serial {entry['serial']} "
                  f"({entry['revocationReason']}, {entry['revocationTime']}); "
                  "publish a new CRL with `pki crl`", file=out)
        elif args.pkiCommand == "crl":
            number = ca.crl(args.out, args.days if args.days is not None else 7)
            print(f"wrote CRL number {number} to {os.path.abspath(args.out)}", file=out)
        else:
            _issue(ca, args, out)
    except PKIError as e:
        print(f"securetcp pki: {e}", file=sys.stderr)
        return 1
    return 0


def _issue(ca: Any, args: argparse.Namespace, out: TextIO) -> None:
    """
    C{issue-server}, C{issue-client}, C{issue-node} or C{sign-csr}: issue,
    and say what was written.
    """
    days = args.days if args.days is not None else 397
    if args.pkiCommand == "issue-server":
        issued = ca.issueServer(args.out, args.dns, args.ip, days, args.rsa, args.force,
                                args.org)
    elif args.pkiCommand == "issue-client":
        issued = ca.issueClient(args.out, args.device_id, args.spiffe, days, args.rsa,
                                args.force, args.dns, args.org)
    elif args.pkiCommand == "issue-node":
        issued = ca.issueNode(args.out, args.dns, args.ip, args.spiffe, args.org, days,
                              args.rsa, args.force)
    else:
        issued = ca.signRequest(args.csr, args.out, args.kind, args.accept_csr_names,
                                args.dns, args.ip, args.device_id, args.spiffe, args.org,
                                days, args.force)
    written = f"key {issued.key}, mode 0600" if issued.key else "its key stays with the requester"
    print(f"issued {issued.subject} serial {issued.serial}: {issued.certificate} "
          f"({written})", file=out)
