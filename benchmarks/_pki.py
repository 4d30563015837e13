"""
Throw-away ECDSA P-256 certificates for one benchmark run, issued by the
project's own L{securetcp._pki.Authority} and written into a temporary
directory (never committed): a CA, a server certificate for
127.0.0.1/localhost, a client certificate, a small CRL and optionally a
large one (revoking other serial numbers than the client's).

    paths = makePKI(directory, bigCRL=100_000)
    paths["serverCert"], paths["clientKey"], paths["crl"], paths["crlBig"]
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Dict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securetcp._pki import Authority, Revoked, Validity, certificatePEM, keyPEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securetcp benchmark"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: str, data: bytes) -> str:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(data)
    return path


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _derInt(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _bigCRL(ca: Authority, now: datetime.datetime, count: int) -> bytes:
    """
    A v2 CRL revoking serials 1..count, DER-encoded by hand: cryptography's
    builder (and so L{Authority.crl}) copies its list on every addition,
    which takes minutes for 100,000 entries.  Checked by parsing it back and
    verifying its signature.
    """
    caKey, caName = ca.key, ca.certificate.subject
    assert isinstance(caKey, ec.EllipticCurvePrivateKey)

    def utc(t: datetime.datetime) -> bytes:
        return _der(0x17, t.strftime("%y%m%d%H%M%SZ").encode("ascii"))

    ecdsaSHA256 = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))
    revokedAt = utc(now - datetime.timedelta(hours=2))
    revoked = b"".join(_der(0x30, _derInt(serial) + revokedAt) for serial in range(1, count + 1))
    crlNumber = _der(0x30, _der(0x06, bytes.fromhex("551d14")) + _der(0x04, _derInt(1)))
    tbs = _der(0x30, _derInt(1) + ecdsaSHA256 + caName.public_bytes()
               + utc(now - datetime.timedelta(hours=1)) + utc(now + datetime.timedelta(days=7))
               + (_der(0x30, revoked) if count else b"")
               + _der(0xA0, _der(0x30, crlNumber)))
    signature = caKey.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _der(0x30, tbs + ecdsaSHA256 + _der(0x03, b"\x00" + signature))
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(caKey.public_key()) and len(crl) == count
    return crl.public_bytes(serialization.Encoding.PEM)


def makePKI(directory: str, bigCRL: int = 0) -> Dict[str, str]:
    """
    Write the benchmark PKI into C{directory} and return the paths.

    @param bigCRL: if non-zero, also write C{crlBig}, a CRL with this many
        revoked serial numbers (none of them the client's).
    """
    now = datetime.datetime.now(datetime.UTC)
    validity = Validity(now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    ca = Authority.create(_name("securetcp benchmark CA"), validity=validity)
    paths: Dict[str, str] = {
        "ca": _write(os.path.join(directory, "ca.pem"), certificatePEM(ca.certificate))}
    _write(os.path.join(directory, "ca.key"), keyPEM(ca.key))

    def leaf(name: str, cn: str, usage: x509.ObjectIdentifier, sans: list) -> None:
        issued = ca.issue(_name(cn), [usage], sans, validity=validity)
        paths[f"{name}Cert"] = _write(os.path.join(directory, f"{name}.pem"),
                                      certificatePEM(issued.certificate))
        paths[f"{name}Key"] = _write(os.path.join(directory, f"{name}.key"), keyPEM(issued.key))

    leaf("server", "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf("client", "bench-device", ExtendedKeyUsageOID.CLIENT_AUTH,
         [x509.UniformResourceIdentifier("spiffe://bench.example/device/1")])
    # stunnel wants certificate and key in one file
    with open(paths["serverCert"], "rb") as c, open(paths["serverKey"], "rb") as k:
        paths["serverBundle"] = _write(os.path.join(directory, "server-bundle.pem"),
                                       c.read() + k.read())
    revokedAt = now - datetime.timedelta(hours=2)
    small = ca.crl([Revoked(serial, revokedAt) for serial in range(1, 11)], 1,
                   Validity(now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)))
    paths["crl"] = _write(os.path.join(directory, "ca.crl"),
                          small.public_bytes(serialization.Encoding.PEM))
    if bigCRL:
        paths["crlBig"] = _write(os.path.join(directory, "ca-big.crl"),
                                 _bigCRL(ca, now, bigCRL))
    return paths
