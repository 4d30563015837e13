# -*- test-case-name: tests.test_tap -*-
"""
A development-only PKI: one CA, a server certificate for localhost and
127.0.0.1, and a client (device) certificate, written as PEM files.

    paths = ensureDevelopmentPKI("securetcp-demo")
    paths["ca"], paths["serverCert"], paths["clientKey"]

Every subject says DEVELOPMENT ONLY; never use these files in production.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Dict

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securetcp._pki.authority import Authority, Validity, certificatePEM, keyPEM, now

_LABEL = "securetcp DEVELOPMENT ONLY - NOT FOR PRODUCTION"

FILES = {
    "ca": "dev-ca.pem",
    "serverCert": "server.pem",
    "serverKey": "server.key",
    "clientCert": "client.pem",
    "clientKey": "client.key",
}


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _LABEL),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _write(path: str, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensureDevelopmentPKI(directory: str) -> Dict[str, str]:
    """
    Create the development CA and certificates in C{directory} unless they
    are already there.

    @return: the paths, keyed as in L{FILES}.
    """
    os.makedirs(directory, exist_ok=True)
    paths = {k: os.path.join(directory, v) for k, v in FILES.items()}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    moment = now()
    hour = datetime.timedelta(hours=1)
    ca = Authority.create(_name("securetcp development CA"),
                          validity=Validity(moment - hour, moment + datetime.timedelta(days=365)))
    leaves = Validity(moment - hour, moment + datetime.timedelta(days=90))
    server = ca.issue(
        _name("localhost"), [ExtendedKeyUsageOID.SERVER_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        validity=leaves)
    client = ca.issue(
        _name("demo-device-0001"), [ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.UniformResourceIdentifier("spiffe://securetcp.demo/device/0001")],
        validity=leaves)
    _write(paths["ca"], certificatePEM(ca.certificate))
    _write(paths["serverCert"], certificatePEM(server.certificate))
    _write(paths["serverKey"], keyPEM(server.key), private=True)
    _write(paths["clientCert"], certificatePEM(client.certificate))
    _write(paths["clientKey"], keyPEM(client.key), private=True)
    return paths
