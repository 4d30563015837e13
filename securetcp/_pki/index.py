# -*- test-case-name: tests.test_pki -*-
"""
The entries of a CA directory's C{index.json}: one per certificate
issued, with its status and revocation, and the CRL entries they become.

    item = entryFor(cert, "node", "/srv/ca/out/pacs.pem", moment, sans, {"csr": path})
    revokedEntries(index)      # [Revoked(serial, time, reason), ...]
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from securetcp._pki.authority import Revoked

#: The kinds of certificate the CA issues, as C{index.json} names them.
KINDS = ("server", "client", "node")

#: RFC 5280 revocation reasons, by the names C{revoke --reason} accepts.
REASONS: Dict[str, x509.ReasonFlags] = {
    flag.value: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl
}

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@attrs.frozen
class Issued:
    """
    What an C{issue-*} or C{sign-csr} command wrote.

    @ivar certificate: path of the certificate (PEM).
    @ivar key: path of its private key (PEM, mode 0600); C{None} for a
        certificate signed from a request, whose key stays with the
        requester.
    @ivar serial: the serial number, in hex.
    @ivar subject: the subject, RFC 4514.
    """

    certificate: str
    key: Optional[str]
    serial: str
    subject: str


def stamp(moment: datetime.datetime) -> str:
    """
    C{moment} as the index writes times (UTC, to the second).
    """
    return moment.strftime(_STAMP)


def describeSAN(name: x509.GeneralName) -> str:
    """
    A subject alternative name as the index lists it: C{dns:NAME},
    C{ip:ADDRESS}, C{uri:URI}.
    """
    kind = {x509.DNSName: "dns", x509.IPAddress: "ip",
            x509.UniformResourceIdentifier: "uri"}[type(name)]
    return f"{kind}:{name.value}"


def entryFor(cert: x509.Certificate, kind: str, path: str, moment: datetime.datetime,
             sans: Sequence[x509.GeneralName], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """
    The index entry of C{cert}, a certificate of C{kind} issued at
    C{moment} and written to C{path}, valid (not revoked).
    """
    return {
        "serial": format(cert.serial_number, "x"), "kind": kind,
        "subject": cert.subject.rfc4514_string(),
        "sans": [describeSAN(n) for n in sans],
        "notBefore": stamp(cert.not_valid_before_utc),
        "notAfter": stamp(cert.not_valid_after_utc),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "file": path, "issued": stamp(moment),
        "status": "valid", "revocationReason": None, "revocationTime": None,
        **extra,
    }


def revokedEntries(index: Mapping[str, Any]) -> List[Revoked]:
    """
    Every revoked certificate of C{index}, as CRL entries.
    """
    return [
        Revoked(int(entry["serial"], 16),
                datetime.datetime.strptime(entry["revocationTime"], _STAMP)
                .replace(tzinfo=datetime.UTC),
                REASONS[entry["revocationReason"] or "unspecified"])
        for entry in index["certificates"] if entry["status"] == "revoked"
    ]
