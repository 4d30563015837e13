"""
An in-process PKI for tests: CAs, server and client certificates with the
properties each test needs (expired, wrong EKU, weak key, other CA, ...),
written to a temporary directory as PEM files.

    pki = TestPKI.create(self.mktemp())
    pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem")
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Dict, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)

# Key generation dominates test time; share keys by name within a process.
_KEYS: Dict[Tuple[str, str, int], object] = {}


def _key(kind: str = "ec", bits: int = 256, name: str = "") -> object:
    cacheKey = (name, kind, bits)
    if cacheKey not in _KEYS:
        if kind == "rsa":
            _KEYS[cacheKey] = rsa.generate_private_key(65537, bits)
        else:
            curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 224: ec.SECP224R1()}[bits]
            _KEYS[cacheKey] = ec.generate_private_key(curve)
    return _KEYS[cacheKey]


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securetcp tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _keyPem(key: object, passphrase: Optional[bytes] = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


class TestPKI:
    """
    A directory of test certificates.  Files:

      - C{ca.pem}/C{ca.key}: the trusted CA; C{other-ca.pem}: an untrusted one
      - C{server.pem}/C{server.key}: localhost, 127.0.0.1 (serverAuth)
      - C{client.pem}/C{client.key}: device, spiffe URI, serial known (clientAuth)
      - C{client2.pem}: another valid device, not on allow-lists
      - C{client-other.pem}: issued by the untrusted CA
      - C{client-expired.pem}, C{client-eku.pem} (serverAuth only),
        C{client-p224.pem} (a P-224 key: below the default profile's minimum)
      - C{server-expired.pem}, C{server-eku.pem} (clientAuth only),
        C{server-other.pem} (untrusted CA), C{server-wrongname.pem}
    """

    __test__ = False

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def write(self, name: str, data: bytes) -> str:
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    @classmethod
    def create(cls, directory: str) -> TestPKI:
        os.makedirs(directory, exist_ok=True)
        pki = cls(directory)
        pki.ca, pki.caKey = pki.makeCA("ca", "securetcp test CA")
        pki.otherCA, pki.otherCAKey = pki.makeCA("other-ca", "untrusted CA")
        pki.issue("server", "localhost", dns=["localhost"], ips=["127.0.0.1"], server=True)
        pki.issue("client", "PUMP-0042", uris=["spiffe://hospital.example/ward3/pump-0042"],
                  dns=["pump-0042.ward3.hospital.example"], server=False)
        pki.issue("client2", "PUMP-0099", uris=["spiffe://hospital.example/ward9/pump-0099"],
                  dns=["pump-0099.ward9.hospital.example"], server=False)
        pki.issue("client-other", "PUMP-ROGUE", server=False, issuer="other")
        pki.issue("client-expired", "PUMP-OLD", server=False, expired=True)
        pki.issue("client-eku", "PUMP-EKU", server=False, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        pki.issue("client-p224", "PUMP-P224", server=False, bits=224)
        pki.issue("server-expired", "localhost", dns=["localhost"], ips=["127.0.0.1"],
                  server=True, expired=True)
        pki.issue("server-eku", "localhost", dns=["localhost"], ips=["127.0.0.1"],
                  server=True, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        pki.issue("server-other", "localhost", dns=["localhost"], ips=["127.0.0.1"],
                  server=True, issuer="other")
        pki.issue("server-wrongname", "elsewhere.example", dns=["elsewhere.example"],
                  server=True)
        return pki

    def makeCA(self, name: str, cn: str) -> Tuple[x509.Certificate, object]:
        key = _key("ec", 256, name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - _DAY).not_valid_after(_NOW + 3650 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                         False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)  # type: ignore[attr-defined]
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        )
        self.write(f"{name}.pem", _pem(cert))
        self.write(f"{name}.key", _keyPem(key))
        return cert, key

    def issue(self, name: str, cn: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
              uris: Sequence[str] = (), server: bool = True, expired: bool = False,
              eku: Optional[List[x509.ObjectIdentifier]] = None, issuer: str = "ca",
              keyKind: str = "ec", bits: int = 256,
              passphrase: Optional[bytes] = None) -> x509.Certificate:
        key = _key(keyKind, bits, name)
        caCert, caKey = (self.ca, self.caKey) if issuer == "ca" else (self.otherCA, self.otherCAKey)
        if expired:
            start, end = _NOW - 30 * _DAY, _NOW - _DAY
        else:
            start, end = _NOW - _DAY, _NOW + 365 * _DAY
        sans: List[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        usage = eku if eku is not None else [
            ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(caCert.subject)
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                caCert.public_key()), critical=False)  # type: ignore[arg-type]
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(caKey, hashes.SHA256())  # type: ignore[arg-type]
        self.write(f"{name}.pem", _pem(cert))
        self.write(f"{name}.key", _keyPem(key, passphrase))
        # key and certificate in one file, for curl --cert and openssl -cert
        self.write(f"{name}-bundle.pem", _pem(cert) + _keyPem(key))
        return cert


_SHARED: Dict[str, TestPKI] = {}


def scratchDirectory(prefix: str) -> str:
    """
    A temporary directory removed when the test process exits.
    """
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


def sharedPKI(name: str = "shared") -> TestPKI:
    """
    One read-only L{TestPKI} per C{name} for the whole test run, made on
    first use (issuing certificates dominates the run time), in a directory
    removed when the process exits.
    """
    if name not in _SHARED:
        _SHARED[name] = TestPKI.create(scratchDirectory(f"securetcp-{name}-"))
    return _SHARED[name]
