# -*- test-case-name: tests.test_pki_authority,tests.test_pki -*-
"""
The names in a certificate, from what an operator types: a server's DNS
names and IP addresses, a device's identity and SPIFFE ID.  Pure functions
with clear errors; L{securetcp._pki.authority.Authority} signs what they
return.

    subject, sans = serverNames("server", dns=["hl7.hospital.example"], ips=["127.0.0.1"])
    subject, sans = deviceNames("pump-0042", "pump-0042", trustDomain="hospital.example")
"""

from __future__ import annotations

import ipaddress
from typing import List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.x509.oid import NameOID

from securetcp.errors import PKIError


def serverNames(out: str, dns: Sequence[str] = (),
                ips: Sequence[str] = ()) -> Tuple[x509.Name, List[x509.GeneralName]]:
    """
    The subject (its common name is the first name given) and subject
    alternative names of a server certificate for C{dns} names and C{ips}.

    @param out: what the certificate is for, named in errors.
    @raise PKIError: without any name, or for a malformed one.
    """
    if not dns and not ips:
        raise PKIError(out, "a server certificate needs at least one name",
                       "add --dns NAME and/or --ip ADDRESS")
    sans: List[x509.GeneralName] = []
    for name in dns:
        if not name or " " in name or name.startswith(".") or name.endswith("."):
            raise PKIError(out, f"--dns {name!r} is not a DNS name",
                           "write e.g. --dns hl7.hospital.example")
        sans.append(x509.DNSName(name))
    for text in ips:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise PKIError(out, f"--ip {text!r} is not an IP address",
                           "write e.g. --ip 127.0.0.1") from None
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (list(dns) + list(ips))[0])])
    return subject, sans


def deviceNames(out: str, deviceId: str, spiffe: Optional[str] = None,
                trustDomain: Optional[str] = None) -> Tuple[x509.Name, List[x509.GeneralName]]:
    """
    The subject and subject alternative name of a device (client)
    certificate: C{deviceId} is the subject's common name and serialNumber,
    and the SAN URI is C{spiffe}, or C{spiffe://TRUST-DOMAIN/device/DEVICE-ID}.

    @param out: what the certificate is for, named in errors.
    @raise PKIError: for an unusable device identity or SPIFFE ID.
    """
    if not deviceId or any(c in deviceId for c in "/ \t\n,=+") or len(deviceId) > 64:
        raise PKIError(out, f"--device-id {deviceId!r} is not a usable device identity",
                       "use up to 64 characters without '/', spaces, ',', '=' or '+', "
                       "e.g. pump-0042")
    if spiffe is None:
        spiffe = f"spiffe://{trustDomain or 'devices.invalid'}/device/{deviceId}"
    elif not spiffe.startswith("spiffe://") or len(spiffe) <= len("spiffe://") or " " in spiffe:
        raise PKIError(out, f"--spiffe {spiffe!r} is not a SPIFFE ID",
                       "write spiffe://TRUST-DOMAIN/PATH, e.g. "
                       "spiffe://hospital.example/ward3/pump-0042")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, deviceId),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, deviceId)])
    return subject, [x509.UniformResourceIdentifier(spiffe)]
