# -*- test-case-name: tests.test_pki_authority,tests.test_pki -*-
"""
The names in a certificate, from what an operator types: a server's DNS
names and IP addresses, a device's identity and SPIFFE ID, a node's (a
server that is a client too) all of these, and an organisation.  Pure
functions with clear errors; L{securetcp._pki.authority.Authority} signs
what they return.

    subject, sans = serverNames("server", dns=["hl7.hospital.example"], ips=["127.0.0.1"])
    subject, sans = deviceNames("pump-0042", "pump-0042", trustDomain="hospital.example")
    subject, sans = nodeNames("pacs", dns=["pacs.hospital.example"], org="Radiology")
"""

from __future__ import annotations

import ipaddress
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.x509.oid import NameOID

from securetcp.errors import PKIError

#: The longest organisation name X.520 allows (ub-organization-name).
MAX_ORG_LENGTH = 64

Names = Tuple[x509.Name, List[x509.GeneralName]]


def checkDNSName(out: str, name: str, option: str = "--dns") -> x509.DNSName:
    """
    C{name} as a subject alternative name.

    @param out: what the certificate is for, named in errors.
    @param option: how the operator gave it, named in errors.
    @raise PKIError: if it is not a DNS name (a wildcard label is allowed).
    """
    labels = name.split(".")
    if (not name.isascii() or len(name) > 253 or
            any(not label or len(label) > 63 or not all(
                c.isalnum() or c in "-_*" for c in label) for label in labels)):
        raise PKIError(out, f"{option} {name!r} is not a DNS name",
                       "write e.g. --dns hl7.hospital.example")
    return x509.DNSName(name)


def _ipAddresses(out: str, ips: Sequence[str]) -> List[x509.GeneralName]:
    sans: List[x509.GeneralName] = []
    for text in ips:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise PKIError(out, f"--ip {text!r} is not an IP address",
                           "write e.g. --ip 127.0.0.1") from None
    return sans


def _organisation(out: str, org: Optional[str]) -> List[x509.NameAttribute]:
    """
    The subject's organisation attribute, if C{org} is given.
    """
    if org is None:
        return []
    if not org.strip() or len(org) > MAX_ORG_LENGTH or not org.isprintable():
        raise PKIError(out, f"--org {org!r} is not a usable organisation name",
                       f"write 1 to {MAX_ORG_LENGTH} printable characters, "
                       'e.g. --org "St. Elsewhere Radiology"')
    return [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]


def serverNames(out: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
                org: Optional[str] = None) -> Names:
    """
    The subject (its common name is the first name given, its organisation
    C{org}) and subject alternative names of a server certificate for
    C{dns} names and C{ips}.

    @param out: what the certificate is for, named in errors.
    @raise PKIError: without any name, or for a malformed one.
    """
    if not dns and not ips:
        raise PKIError(out, "a server certificate needs at least one name",
                       "add --dns NAME and/or --ip ADDRESS")
    sans: List[x509.GeneralName] = [checkDNSName(out, name) for name in dns]
    sans += _ipAddresses(out, ips)
    subject = x509.Name(_organisation(out, org) + [
        x509.NameAttribute(NameOID.COMMON_NAME, (list(dns) + list(ips))[0])])
    return subject, sans


def _spiffeID(out: str, spiffe: str) -> x509.UniformResourceIdentifier:
    if not spiffe.startswith("spiffe://") or len(spiffe) <= len("spiffe://") or any(
            not c.isprintable() or c.isspace() for c in spiffe):
        raise PKIError(out, f"--spiffe {spiffe!r} is not a SPIFFE ID",
                       "write spiffe://TRUST-DOMAIN/PATH, e.g. "
                       "spiffe://hospital.example/ward3/pump-0042")
    return x509.UniformResourceIdentifier(spiffe)


def deviceNames(out: str, deviceId: str, spiffe: Optional[str] = None,
                trustDomain: Optional[str] = None, dns: Sequence[str] = (),
                org: Optional[str] = None) -> Names:
    """
    The subject and subject alternative names of a device (client)
    certificate: C{deviceId} is the subject's common name and serialNumber
    (and C{org} its organisation); the SAN URI is C{spiffe}, or
    C{spiffe://TRUST-DOMAIN/device/DEVICE-ID}, followed by the C{dns} names.

    @param out: what the certificate is for, named in errors.
    @raise PKIError: for an unusable device identity, SPIFFE ID or name.
    """
    if not deviceId or any(c in deviceId for c in "/ \t\n,=+") or len(deviceId) > 64 or \
            not deviceId.isprintable():
        raise PKIError(out, f"--device-id {deviceId!r} is not a usable device identity",
                       "use up to 64 characters without '/', spaces, ',', '=' or '+', "
                       "e.g. pump-0042")
    if spiffe is None:
        spiffe = f"spiffe://{trustDomain or 'devices.invalid'}/device/{deviceId}"
    sans: List[x509.GeneralName] = [_spiffeID(out, spiffe)]
    sans += [checkDNSName(out, name) for name in dns]
    subject = x509.Name(_organisation(out, org) + [
        x509.NameAttribute(NameOID.COMMON_NAME, deviceId),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, deviceId)])
    return subject, sans


def nodeNames(out: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
              spiffe: Optional[str] = None, org: Optional[str] = None) -> Names:
    """
    The names of a node's certificate, valid for both server and client
    use: a server's (L{serverNames}: peers connecting to it check these),
    and the SAN URI C{spiffe} if given (for the allow-lists of servers it
    connects to, which may also match its DNS names).

    @param out: what the certificate is for, named in errors.
    @raise PKIError: without any DNS name or IP address, or for a
        malformed name.
    """
    subject, sans = serverNames(out, dns, ips, org)
    if spiffe is not None:
        sans.append(_spiffeID(out, spiffe))
    return subject, sans


#: The options that name each kind of certificate, as C{pki} spells them.
NAME_OPTIONS = {"server": ("--dns", "--ip", "--org"),
                "client": ("--device-id", "--spiffe", "--dns", "--org"),
                "node": ("--dns", "--ip", "--spiffe", "--org")}


def namesFor(out: str, kind: str, given: Mapping[str, Any],
             trustDomain: Optional[str] = None) -> Names:
    """
    The names of a C{kind} certificate from the options C{given} (by
    option: C{--dns}, C{--ip}, C{--device-id}, C{--spiffe}, C{--org}), as
    the C{issue-*} command of that kind takes them.

    @raise PKIError: for an option that does not name a C{kind}
        certificate, or as the names of that kind are refused.
    """
    takes = NAME_OPTIONS[kind]
    for option, value in given.items():
        if value and option not in takes:
            raise PKIError(out, f"{option} is not a name of a {kind} certificate",
                           f"a {kind} certificate takes " + ", ".join(takes))
    dns, ips, org = given.get("--dns", ()), given.get("--ip", ()), given.get("--org")
    if kind == "server":
        return serverNames(out, dns, ips, org)
    if kind == "node":
        return nodeNames(out, dns, ips, given.get("--spiffe"), org)
    if not given.get("--device-id"):
        raise PKIError(out, "a client certificate needs --device-id",
                       "give --device-id ID, or --accept-csr-names to take the request's names")
    return deviceNames(out, given["--device-id"], given.get("--spiffe"), trustDomain, dns, org)
