# -*- test-case-name: tests.test_pki -*-
"""
A small certificate authority on disk, for development and for
provisioning devices: C{python -m securetcp pki}.

    python -m securetcp pki init --dir ca --name "Hospital devices CA"
    python -m securetcp pki issue-server --dir ca --out server --dns hl7.hospital.example --ip 127.0.0.1
    python -m securetcp pki issue-client --dir ca --out pump-0042 --device-id pump-0042
    python -m securetcp pki revoke --dir ca pump-0042.pem --reason keyCompromise
    python -m securetcp pki crl --dir ca --out devices.crl

The CA directory holds C{ca.pem}, C{ca.key} (mode 0600, unencrypted: there
is no HSM here, whoever can read the file can issue certificates),
C{index.json} (every issued certificate with its status and revocation
reason and time), C{crlnumber} (the number of the last CRL) and
C{issued/SERIAL.pem}.  Keys are ECDSA P-256 unless RSA is asked for.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securetcp.errors import PKIError

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
INDEX = "index.json"
CRL_NUMBER = "crlnumber"
ISSUED = "issued"
_LOCK = ".lock"

#: RFC 5280 revocation reasons, by the names C{revoke --reason} accepts.
REASONS: Dict[str, x509.ReasonFlags] = {
    flag.value: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl
}

DEFAULT_DAYS = {"ca": 3650, "server": 397, "client": 397, "crl": 7}
MIN_RSA_BITS = 2048


@attrs.frozen
class Issued:
    """
    What an C{issue-*} command wrote.

    @ivar certificate: path of the certificate (PEM).
    @ivar key: path of its private key (PEM, mode 0600).
    @ivar serial: the serial number, in hex.
    @ivar subject: the subject, RFC 4514.
    """

    certificate: str
    key: str
    serial: str
    subject: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _newKey(rsaBits: Optional[int]) -> PrivateKey:
    if rsaBits is None:
        return ec.generate_private_key(ec.SECP256R1())
    if rsaBits < MIN_RSA_BITS:
        raise PKIError(f"--rsa {rsaBits}", f"RSA keys shorter than {MIN_RSA_BITS} bits are "
                       "refused by every securetcp profile but legacy",
                       f"use --rsa {MIN_RSA_BITS} or more, or leave --rsa out for ECDSA P-256")
    return rsa.generate_private_key(65537, rsaBits)


def _keyPEM(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certPEM(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _writeAtomically(path: str, data: bytes, mode: int) -> None:
    """
    Write C{data} to a temporary file in C{path}'s directory with C{mode}
    and rename it over C{path}, so a reader never sees half a file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class CertificateAuthority:
    """
    The CA in one directory.  Open an existing one with L{open}, create one
    with L{create}.
    """

    def __init__(self, directory: str, cert: x509.Certificate, key: PrivateKey,
                 index: Dict[str, Any]) -> None:
        self.directory = directory
        self.cert = cert
        self.key = key
        self.index = index

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    # -- creating and opening ---------------------------------------------

    @classmethod
    def create(cls, directory: str, name: str, days: int = DEFAULT_DAYS["ca"],
               rsaBits: Optional[int] = None, trustDomain: Optional[str] = None,
               force: bool = False) -> CertificateAuthority:
        """
        Create a self-signed CA in C{directory} (created with mode 0700 if
        missing).

        @raise PKIError: if a CA is there already and not C{force}.
        """
        if not name.strip():
            raise PKIError(directory, "the CA needs a name", 'give --name "Hospital devices CA"')
        _positive("--days", days)
        directory = os.path.abspath(directory)
        if os.path.exists(os.path.join(directory, CA_CERT)) or os.path.exists(
                os.path.join(directory, CA_KEY)):
            if not force:
                raise PKIError(directory, "already holds a CA (ca.pem / ca.key)",
                               "choose another --dir, or add --force to replace it and "
                               "everything it issued")
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise PKIError(directory, "is not a directory", "choose another --dir")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        key = _newKey(rsaBits)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        index: Dict[str, Any] = {
            "version": 1,
            "ca": {"subject": subject.rfc4514_string(), "serial": format(cert.serial_number, "x"),
                   "created": _stamp(now), "trustDomain": trustDomain},
            "certificates": [],
        }
        ca = cls(directory, cert, key, index)
        with ca._locked():
            _writeAtomically(ca.path(CA_KEY), _keyPEM(key), 0o600)
            _writeAtomically(ca.path(CA_CERT), _certPEM(cert), 0o644)
            _writeAtomically(ca.path(CRL_NUMBER), b"0\n", 0o644)
            ca._saveIndex()
            os.makedirs(ca.path(ISSUED), mode=0o700, exist_ok=True)
        return ca

    @classmethod
    def open(cls, directory: str) -> CertificateAuthority:
        """
        Open the CA in C{directory}.

        @raise PKIError: if there is none, or its files are unusable.
        """
        directory = os.path.abspath(directory)
        if not os.path.isdir(directory):
            raise PKIError(directory, "CA directory does not exist",
                           "create a CA first: python -m securetcp pki init --dir "
                           f"{directory} --name NAME")
        for name in (CA_CERT, CA_KEY, INDEX):
            if not os.path.isfile(os.path.join(directory, name)):
                raise PKIError(directory, f"holds no CA ({name} is missing)",
                               "give the --dir of `pki init`, or run `pki init` there")
        try:
            with open(os.path.join(directory, CA_CERT), "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            with open(os.path.join(directory, CA_KEY), "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            with open(os.path.join(directory, INDEX), encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError, TypeError) as e:
            raise PKIError(directory, f"cannot read the CA: {e}",
                           "restore ca.pem, ca.key and index.json from your backup") from None
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise PKIError(os.path.join(directory, CA_KEY), "is not an ECDSA or RSA key")
        return cls(directory, cert, key, index)

    # -- the index ----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """
        Hold an exclusive lock on the CA directory (another pki command
        waits).
        """
        import fcntl

        fd = os.open(self.path(_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _saveIndex(self) -> None:
        data = json.dumps(self.index, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        _writeAtomically(self.path(INDEX), data, 0o644)

    def _reload(self) -> None:
        with open(self.path(INDEX), encoding="utf-8") as f:
            self.index = json.load(f)

    def entry(self, serial: int) -> Optional[Dict[str, Any]]:
        """
        The index entry of the certificate with C{serial}, or C{None}.
        """
        wanted = format(serial, "x")
        for item in self.index["certificates"]:
            if item["serial"] == wanted:
                return item  # type: ignore[no-any-return]
        return None

    # -- issuing ------------------------------------------------------------

    def _issue(self, out: str, kind: str, subject: x509.Name, sans: List[x509.GeneralName],
               usage: x509.ObjectIdentifier, days: int, rsaBits: Optional[int],
               force: bool, extra: Dict[str, Any]) -> Issued:
        _positive("--days", days)
        certPath, keyPath = _outPaths(out)
        if not force:
            for path in (certPath, keyPath):
                if os.path.exists(path):
                    raise PKIError(path, "already exists",
                                   "choose another --out, or add --force to overwrite it")
        key = _newKey(rsaBits)
        now = _now()
        notAfter = min(now + datetime.timedelta(days=days), self.cert.not_valid_after_utc)
        isRSA = isinstance(key, rsa.RSAPrivateKey)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(notAfter)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=isRSA and kind == "server",
                                         data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        serial = format(cert.serial_number, "x")
        with self._locked():
            self._reload()
            _writeAtomically(keyPath, _keyPEM(key), 0o600)
            _writeAtomically(certPath, _certPEM(cert), 0o644)
            os.makedirs(self.path(ISSUED), mode=0o700, exist_ok=True)
            _writeAtomically(self.path(os.path.join(ISSUED, serial + ".pem")),
                             _certPEM(cert), 0o644)
            self.index["certificates"].append({
                "serial": serial, "kind": kind, "subject": subject.rfc4514_string(),
                "sans": [_describeSAN(n) for n in sans],
                "notBefore": _stamp(cert.not_valid_before_utc),
                "notAfter": _stamp(cert.not_valid_after_utc),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "file": os.path.abspath(certPath), "issued": _stamp(now),
                "status": "valid", "revocationReason": None, "revocationTime": None,
                **extra,
            })
            self._saveIndex()
        return Issued(os.path.abspath(certPath), os.path.abspath(keyPath), serial,
                      subject.rfc4514_string())

    def issueServer(self, out: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
                    days: int = DEFAULT_DAYS["server"], rsaBits: Optional[int] = None,
                    force: bool = False) -> Issued:
        """
        Issue a server certificate (serverAuth) for C{dns} names and C{ips}.
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
        return self._issue(out, "server", subject, sans, ExtendedKeyUsageOID.SERVER_AUTH, days,
                           rsaBits, force, {})

    def issueClient(self, out: str, deviceId: str, spiffe: Optional[str] = None,
                    days: int = DEFAULT_DAYS["client"], rsaBits: Optional[int] = None,
                    force: bool = False) -> Issued:
        """
        Issue a device (client) certificate (clientAuth): C{deviceId} is the
        subject's common name and serialNumber, and the SAN URI is
        C{spiffe}, or C{spiffe://TRUST-DOMAIN/device/DEVICE-ID} with the
        CA's trust domain.
        """
        if not deviceId or any(c in deviceId for c in "/ \t\n,=+") or len(deviceId) > 64:
            raise PKIError(out, f"--device-id {deviceId!r} is not a usable device identity",
                           "use up to 64 characters without '/', spaces, ',', '=' or '+', "
                           "e.g. pump-0042")
        if spiffe is None:
            domain = self.index["ca"].get("trustDomain") or "devices.invalid"
            spiffe = f"spiffe://{domain}/device/{deviceId}"
        elif not spiffe.startswith("spiffe://") or len(spiffe) <= len("spiffe://") or " " in spiffe:
            raise PKIError(out, f"--spiffe {spiffe!r} is not a SPIFFE ID",
                           "write spiffe://TRUST-DOMAIN/PATH, e.g. "
                           "spiffe://hospital.example/ward3/pump-0042")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, deviceId),
                             x509.NameAttribute(NameOID.SERIAL_NUMBER, deviceId)])
        return self._issue(out, "client", subject, [x509.UniformResourceIdentifier(spiffe)],
                           ExtendedKeyUsageOID.CLIENT_AUTH, days, rsaBits, force,
                           {"deviceId": deviceId})

    # -- revoking -----------------------------------------------------------

    def revoke(self, certPath: Optional[str] = None, serial: Optional[str] = None,
               reason: str = "unspecified") -> Dict[str, Any]:
        """
        Mark a certificate this CA issued as revoked in the index; the next
        L{crl} lists it.

        @return: its index entry.
        @raise PKIError: for an unknown reason, a certificate of another CA,
            or one this CA has no record of.
        """
        if reason not in REASONS:
            raise PKIError(reason, "unknown revocation reason",
                           "use one of " + ", ".join(REASONS))
        if certPath is not None:
            try:
                with open(certPath, "rb") as f:
                    data = f.read()
                cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                        else x509.load_der_x509_certificate(data))
            except OSError as e:
                raise PKIError(certPath, f"cannot be read: {e.strerror}",
                               "give the certificate file to revoke") from None
            except ValueError:
                raise PKIError(certPath, "is not a certificate (PEM or DER)",
                               "give the .pem file written by issue-server or issue-client"
                               ) from None
            if cert.issuer != self.cert.subject or not _signedBy(cert, self.cert):
                raise PKIError(certPath, "was not issued by this CA "
                               f"({self.cert.subject.rfc4514_string()})",
                               "give the --dir of the CA that issued it")
            number = cert.serial_number
        elif serial is not None:
            try:
                number = int(serial.replace(":", ""), 16)
            except ValueError:
                raise PKIError(serial, "is not a hexadecimal serial number") from None
        else:
            raise PKIError(self.directory, "nothing to revoke", "give CERT.pem or --serial")
        with self._locked():
            self._reload()
            entry = self.entry(number)
            if entry is None:
                raise PKIError(certPath or serial or "", "is not in this CA's index.json "
                               f"(serial {number:x})",
                               "give a certificate issued by this CA's pki commands")
            if entry["status"] == "revoked":
                return entry
            entry.update(status="revoked", revocationReason=reason,
                         revocationTime=_stamp(_now()))
            self._saveIndex()
        return entry

    # -- CRLs ---------------------------------------------------------------

    def crl(self, out: str, days: int = DEFAULT_DAYS["crl"]) -> int:
        """
        Write a CRL of every revoked certificate to C{out} (PEM, replaced
        atomically), with the next CRL number.

        @return: its CRL number.
        """
        _positive("--days", days)
        with self._locked():
            self._reload()
            try:
                with open(self.path(CRL_NUMBER), encoding="ascii") as f:
                    number = int(f.read().strip() or "0") + 1
            except FileNotFoundError:
                number = 1
            except ValueError:
                raise PKIError(self.path(CRL_NUMBER), "does not hold a number",
                               "write the number of the last CRL issued into it") from None
            now = _now()
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(self.cert.subject)
                .last_update(now - datetime.timedelta(minutes=5))
                .next_update(now + datetime.timedelta(days=days))
                .add_extension(x509.CRLNumber(number), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
            )
            for entry in self.index["certificates"]:
                if entry["status"] != "revoked":
                    continue
                when = datetime.datetime.strptime(entry["revocationTime"],
                                                  "%Y-%m-%dT%H:%M:%SZ").replace(
                                                      tzinfo=datetime.UTC)
                revoked = (x509.RevokedCertificateBuilder()
                           .serial_number(int(entry["serial"], 16))
                           .revocation_date(when))
                reason = REASONS[entry["revocationReason"] or "unspecified"]
                if reason is not x509.ReasonFlags.unspecified:
                    revoked = revoked.add_extension(x509.CRLReason(reason), critical=False)
                builder = builder.add_revoked_certificate(revoked.build())
            crl = builder.sign(self.key, hashes.SHA256())
            _writeAtomically(out, crl.public_bytes(serialization.Encoding.PEM), 0o644)
            _writeAtomically(self.path(CRL_NUMBER), f"{number}\n".encode("ascii"), 0o644)
        return number


def _positive(option: str, days: int) -> None:
    if days < 1:
        raise PKIError(f"{option} {days}", "must be at least 1")


def _outPaths(out: str) -> Tuple[str, str]:
    """
    C{server} -> (C{server.pem}, C{server.key}); C{server.pem} too.
    """
    base = out[:-4] if out.endswith(".pem") else out
    if not os.path.basename(base):
        raise PKIError(out, "is not a file name", "write e.g. --out pump-0042")
    directory = os.path.dirname(os.path.abspath(base))
    if not os.path.isdir(directory):
        raise PKIError(out, f"the directory {directory} does not exist", "create it first")
    return base + ".pem", base + ".key"


def _signedBy(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # InvalidSignature, ValueError, TypeError
        return False
    return True


def _describeSAN(name: x509.GeneralName) -> str:
    kind = {x509.DNSName: "dns", x509.IPAddress: "ip",
            x509.UniformResourceIdentifier: "uri"}[type(name)]
    return f"{kind}:{name.value}"
