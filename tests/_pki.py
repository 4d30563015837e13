"""
The test PKI: CAs, server and client certificates with the properties each
test needs (expired, wrong EKU, weak key, other CA, ...), issued by the
project's own L{securetcp._pki.Authority} and written to a directory as PEM
files, and CRLs of its CA.

    pki = TestPKI.create(self.mktemp())
    pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem")
    pki = sharedPKI("revocation", addIntermediate)     # one per test run

What that authority deliberately refuses to make (certificates for weak
keys, self-signed end-entity certificates, an impostor of the CA) is
crafted by hand at the end of this module, with L{craftCertificate}, and
nowhere else in the tests.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securetcp._pki import Authority, PrivateKey, Revoked, Validity, certificatePEM, keyPEM
from securetcp.errors import PKIError

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)
#: How long the test PKI's certificates are valid (started a day ago), and
#: its expired ones were.
VALID = Validity(_NOW - _DAY, _NOW + 365 * _DAY)
EXPIRED = Validity(_NOW - 30 * _DAY, _NOW - _DAY)

# Key generation dominates test time; share keys by name within a process.
_KEYS: Dict[Tuple[str, str, int], PrivateKey] = {}


def cachedKey(kind: str = "ec", bits: int = 256, name: str = "") -> PrivateKey:
    """
    The key called C{name} of this kind (C{"ec"} with a curve of C{bits}
    bits, including the weak P-224, or C{"rsa"} of C{bits} bits, including
    weak ones): made on first use, the same for the rest of the run.
    """
    cacheKey = (name, kind, bits)
    if cacheKey not in _KEYS:
        if kind == "rsa":
            _KEYS[cacheKey] = rsa.generate_private_key(65537, bits)
        else:
            curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 224: ec.SECP224R1()}[bits]
            _KEYS[cacheKey] = ec.generate_private_key(curve)
    return _KEYS[cacheKey]


def testName(cn: str) -> x509.Name:
    """
    A subject in the test PKI's organisation with common name C{cn}.
    """
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securetcp tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


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

    @ivar authority: the trusted CA; C{ca} and C{caKey} are its certificate
        and key.
    @ivar otherAuthority: the untrusted CA; C{otherCA} and C{otherCAKey}.
    """

    __test__ = False

    def __init__(self, directory: str, authority: Optional[Authority] = None,
                 otherAuthority: Optional[Authority] = None) -> None:
        """
        A PKI in C{directory} with these CAs, without writing anything; use
        L{create} for a new one with every file.
        """
        self.directory = directory
        if authority is not None:
            self.authority = authority
        if otherAuthority is not None:
            self.otherAuthority = otherAuthority

    ca = property(lambda self: self.authority.certificate, doc="The trusted CA's certificate.")
    caKey = property(lambda self: self.authority.key, doc="The trusted CA's key.")
    otherCA = property(lambda self: self.otherAuthority.certificate,
                       doc="The untrusted CA's certificate.")
    otherCAKey = property(lambda self: self.otherAuthority.key, doc="The untrusted CA's key.")

    def path(self, name: str) -> str:
        """
        The path of the file C{name} in the PKI's directory.
        """
        return os.path.join(self.directory, name)

    def write(self, name: str, data: bytes) -> str:
        """
        Write C{data} to the file C{name} in the PKI's directory; return its path.
        """
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    @classmethod
    def create(cls, directory: str) -> TestPKI:
        """
        Make the CAs and every file listed above in C{directory}.
        """
        os.makedirs(directory, exist_ok=True)
        pki = cls(directory)
        pki.authority = pki.makeCA("ca", "securetcp test CA")
        pki.otherAuthority = pki.makeCA("other-ca", "untrusted CA")
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

    def makeCA(self, name: str, cn: str) -> Authority:
        """
        A self-signed CA with no limit on intermediate CAs, written to
        C{NAME.pem} and C{NAME.key}.
        """
        authority = Authority.create(testName(cn), cachedKey("ec", 256, name),
                                     Validity(_NOW - _DAY, _NOW + 3650 * _DAY), pathLength=None)
        self.writeCredential(name, authority.certificate, authority.key)
        return authority

    def writeCredential(self, name: str, certificate: x509.Certificate, key: PrivateKey,
                        chain: Sequence[x509.Certificate] = (),
                        passphrase: Optional[bytes] = None) -> None:
        """
        Write C{NAME.pem} (C{certificate}, then C{chain}) and C{NAME.key}
        (encrypted with C{passphrase}, if given).
        """
        self.write(f"{name}.pem", b"".join(certificatePEM(c) for c in [certificate, *chain]))
        self.write(f"{name}.key", keyPEM(key, passphrase))

    def issue(self, name: str, cn: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
              uris: Sequence[str] = (), server: bool = True, expired: bool = False,
              eku: Optional[List[x509.ObjectIdentifier]] = None, issuer: str = "ca",
              keyKind: str = "ec", bits: int = 256, passphrase: Optional[bytes] = None,
              ocspURL: Optional[str] = None,
              caIssuersURL: Optional[str] = None) -> x509.Certificate:
        """
        Issue C{NAME.pem}, C{NAME.key} and C{NAME-bundle.pem} (both in one
        file, for C{curl --cert} and C{openssl -cert}) from the CA (C{issuer}
        C{"ca"}) or the untrusted one (C{"other"}): for serverAuth (or
        clientAuth, or the C{eku} given), valid for a year or C{expired},
        with the given names and, for a weak key, crafted by hand.
        """
        key = cachedKey(keyKind, bits, name)
        authority = self.authority if issuer == "ca" else self.otherAuthority
        sans: List[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        usage = eku if eku is not None else [
            ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
        validity = EXPIRED if expired else VALID
        try:
            cert = authority.issue(testName(cn), usage, sans, key, validity, ocspURL,
                                   caIssuersURL).certificate
        except PKIError:
            # a key the project's CA refuses to certify: a negative test's
            cert = craftCertificate(testName(cn), key, authority, validity, usage, sans)
        self.writeCredential(name, cert, key, passphrase=passphrase)
        self.write(f"{name}-bundle.pem", certificatePEM(cert) + keyPEM(key))
        return cert

    def crl(self, revoked: Sequence[x509.Certificate] = (), number: int = 1,
            lastUpdate: datetime.datetime = _NOW - _DAY,
            nextUpdate: datetime.datetime = _NOW + 7 * _DAY,
            reason: x509.ReasonFlags = x509.ReasonFlags.unspecified) -> bytes:
        """
        A PEM CRL of the CA, listing C{revoked} as revoked at C{lastUpdate}
        for C{reason}.
        """
        entries = [Revoked(c.serial_number, lastUpdate, reason) for c in revoked]
        crl = self.authority.crl(entries, number, Validity(lastUpdate, nextUpdate))
        return crl.public_bytes(serialization.Encoding.PEM)


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


def sharedPKI(name: str = "shared",
              extend: Optional[Callable[[TestPKI], object]] = None) -> TestPKI:
    """
    One read-only L{TestPKI} per C{name} for the whole test run, made on
    first use (issuing certificates dominates the run time), in a directory
    removed when the process exits.

    @param extend: called once with the new PKI, to add the files a module
        needs (e.g. L{addIntermediate}).
    """
    if name not in _SHARED:
        pki = TestPKI.create(scratchDirectory(f"securetcp-{name}-"))
        if extend is not None:
            extend(pki)
        _SHARED[name] = pki
    return _SHARED[name]


# -- additions some tests need -------------------------------------------------


#: the OCSP responder named in C{client-aia.pem}'s AIA extension
AIA_URL = "http://ocsp.devices.hospital.example/ocsp"


def addIntermediate(pki: TestPKI) -> None:
    """
    Add C{intermediate.pem}/C{.key} (a CA issued by C{ca.pem}),
    C{client-inter.pem} (leaf + intermediate) and C{client-inter.key} (a
    client it issued), and C{trust-inter.pem} (both CAs) to C{pki}.
    """
    intermediate = pki.authority.issueAuthority(
        testName("securetcp test intermediate CA"), cachedKey("ec", 256, "intermediate"),
        Validity(_NOW - _DAY, _NOW + 3000 * _DAY))
    pki.writeCredential("intermediate", intermediate.certificate, intermediate.key)
    leaf = intermediate.issue(
        testName("PUMP-0777"), [ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.UniformResourceIdentifier("spiffe://hospital.example/ward7/pump-0777")],
        cachedKey("ec", 256, "client-inter"), VALID)
    pki.writeCredential("client-inter", leaf.certificate, leaf.key, [intermediate.certificate])
    pki.write("trust-inter.pem", certificatePEM(pki.ca) + certificatePEM(intermediate.certificate))


def addOCSPCertificates(pki: TestPKI) -> None:
    """
    Add to C{pki}: C{responder} (issued by the CA, OCSP-signing EKU),
    C{responder-noeku} (issued by the CA, clientAuth only),
    C{responder-other} (OCSP-signing EKU, issued by the untrusted CA),
    C{stranger} (self-signed), C{impostor} (self-signed, with the CA's own
    subject name), C{client-aia} (a client whose AIA names L{AIA_URL}) and
    C{server-good} (another valid server for localhost).
    """
    signing = [ExtendedKeyUsageOID.OCSP_SIGNING]
    pki.issue("responder", "securetcp test OCSP responder", eku=signing)
    pki.issue("responder-noeku", "securetcp test not a responder",
              eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    pki.issue("responder-other", "securetcp rogue OCSP responder", eku=signing, issuer="other")
    key = cachedKey("ec", 256, "stranger")
    pki.writeCredential("stranger", craftCertificate(testName("stranger"), key, None, VALID,
                                                     signing), key)
    key = cachedKey("ec", 256, "impostor")
    pki.writeCredential("impostor", craftCertificate(pki.ca.subject, key, None, VALID), key)
    pki.issue("client-aia", "PUMP-0123", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], ocspURL=AIA_URL,
              caIssuersURL="http://ca.example/ca.der")
    pki.issue("server-good", "localhost", dns=["localhost"], ips=["127.0.0.1"], server=True)


# -- what the project's CA deliberately cannot make ----------------------------


def craftCertificate(subject: x509.Name, key: PrivateKey, issuer: Optional[Authority],
                     validity: Validity,
                     usages: Optional[Sequence[x509.ObjectIdentifier]] = None,
                     sans: Sequence[x509.GeneralName] = ()) -> x509.Certificate:
    """
    A certificate for C{key} that L{Authority} refuses to issue, for
    negative tests: for a weak key, self-signed by C{key} when C{issuer} is
    C{None} (with any subject, even a CA's), or with no extensions at all.
    It has exactly the extensions asked for: the end-entity basic
    constraint and C{usages} (if given), C{sans} (if any) and the issuer's
    key identifier (if issued).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.notBefore).not_valid_after(validity.notAfter)
    )
    if usages is not None:
        builder = (
            builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False))
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer.key if issuer is not None else key, hashes.SHA256())


#: RFC 7919 ffdhe2048, as C{openssl genpkey -genparam -algorithm DH -pkeyopt
#: group:ffdhe2048} writes it (generating DH parameters in a test is slow).
FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""
