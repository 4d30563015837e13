# -*- test-case-name: tests.test_cli -*-
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
from typing import Dict, List

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
    now = datetime.datetime.now(datetime.UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = _name("securetcp development CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName).issuer_name(caName)
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(caKey.public_key()),
                       critical=False)
        .sign(caKey, hashes.SHA256())
    )

    def issue(cn: str, sans: List[x509.GeneralName], usage: x509.ObjectIdentifier) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(caName)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                caKey.public_key()), critical=False)
            .sign(caKey, hashes.SHA256())
        )
        return cert, key

    server, serverKey = issue(
        "localhost",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ExtendedKeyUsageOID.SERVER_AUTH)
    client, clientKey = issue(
        "demo-device-0001",
        [x509.UniformResourceIdentifier("spiffe://securetcp.demo/device/0001")],
        ExtendedKeyUsageOID.CLIENT_AUTH)

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def keyPem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    _write(paths["ca"], pem(ca))
    _write(paths["serverCert"], pem(server))
    _write(paths["serverKey"], keyPem(serverKey), private=True)
    _write(paths["clientCert"], pem(client))
    _write(paths["clientKey"], keyPem(clientKey), private=True)
    return paths
