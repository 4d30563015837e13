# -*- test-case-name: tests.test_pki -*-
"""
The certificate authority in a directory, behind C{python -m securetcp
pki}: C{ca.pem}, C{ca.key} (mode 0600, unencrypted: there is no HSM here,
whoever can read the file can issue certificates), C{index.json} (every
issued certificate with its status and revocation reason and time),
C{crlnumber} (the number of the last CRL) and C{issued/SERIAL.pem}.

    ca = CertificateAuthority.create("ca", "Hospital devices CA")
    ca.issueClient("pump-0042", "pump-0042")
    ca.revoke("pump-0042.pem", reason="keyCompromise")
    ca.crl("devices.crl")
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securetcp._pki.authority import (
    Authority,
    PrivateKey,
    Revoked,
    Validity,
    certificatePEM,
    keyPEM,
    newKey,
    now,
)
from securetcp._pki.files import outPaths, readCertificate, writeAtomically
from securetcp._pki.names import deviceNames, serverNames
from securetcp.errors import PKIError

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


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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

    @property
    def authority(self) -> Authority:
        """
        This CA in memory, to issue and sign with.
        """
        return Authority(self.cert, self.key)

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
        moment = now()
        validity = Validity.days(days, moment)
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
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        authority = Authority.create(subject, newKey(rsaBits), validity)
        cert, key = authority.certificate, authority.key
        index: Dict[str, Any] = {
            "version": 1,
            "ca": {"subject": subject.rfc4514_string(), "serial": format(cert.serial_number, "x"),
                   "created": _stamp(moment),
                   "trustDomain": trustDomain},
            "certificates": [],
        }
        ca = cls(directory, cert, key, index)
        with ca._locked():
            writeAtomically(ca.path(CA_KEY), keyPEM(key), 0o600)
            writeAtomically(ca.path(CA_CERT), certificatePEM(cert), 0o644)
            writeAtomically(ca.path(CRL_NUMBER), b"0\n", 0o644)
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
        writeAtomically(self.path(INDEX), data, 0o644)

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
        moment = now()
        validity = Validity.days(days, moment)
        certPath, keyPath = outPaths(out)
        if not force:
            for path in (certPath, keyPath):
                if os.path.exists(path):
                    raise PKIError(path, "already exists",
                                   "choose another --out, or add --force to overwrite it")
        issued = self.authority.issue(subject, [usage], sans, newKey(rsaBits), validity)
        cert, key = issued.certificate, issued.key
        serial = format(cert.serial_number, "x")
        with self._locked():
            self._reload()
            writeAtomically(keyPath, keyPEM(key), 0o600)
            writeAtomically(certPath, certificatePEM(cert), 0o644)
            os.makedirs(self.path(ISSUED), mode=0o700, exist_ok=True)
            writeAtomically(self.path(os.path.join(ISSUED, serial + ".pem")),
                             certificatePEM(cert), 0o644)
            self.index["certificates"].append({
                "serial": serial, "kind": kind, "subject": subject.rfc4514_string(),
                "sans": [_describeSAN(n) for n in sans],
                "notBefore": _stamp(cert.not_valid_before_utc),
                "notAfter": _stamp(cert.not_valid_after_utc),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "file": os.path.abspath(certPath), "issued": _stamp(moment),
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
        subject, sans = serverNames(out, dns, ips)
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
        subject, sans = deviceNames(out, deviceId, spiffe,
                                    self.index["ca"].get("trustDomain"))
        return self._issue(out, "client", subject, sans, ExtendedKeyUsageOID.CLIENT_AUTH, days,
                           rsaBits, force, {"deviceId": deviceId})

    # -- revoking -----------------------------------------------------------

    def _serialToRevoke(self, certPath: Optional[str], serial: Optional[str]) -> int:
        """
        The serial number of C{certPath} (a certificate this CA issued), or
        C{serial} (hexadecimal, colons allowed).
        """
        if certPath is not None:
            cert = readCertificate(certPath)
            if cert.issuer != self.cert.subject or not _signedBy(cert, self.cert):
                raise PKIError(certPath, "was not issued by this CA "
                               f"({self.cert.subject.rfc4514_string()})",
                               "give the --dir of the CA that issued it")
            return cert.serial_number
        if serial is not None:
            try:
                return int(serial.replace(":", ""), 16)
            except ValueError:
                raise PKIError(serial, "is not a hexadecimal serial number") from None
        raise PKIError(self.directory, "nothing to revoke", "give CERT.pem or --serial")

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
        number = self._serialToRevoke(certPath, serial)
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
                         revocationTime=_stamp(now()))
            self._saveIndex()
        return entry

    # -- CRLs ---------------------------------------------------------------

    def _nextCRLNumber(self) -> int:
        """
        One more than the number of the last CRL written.
        """
        try:
            with open(self.path(CRL_NUMBER), encoding="ascii") as f:
                return int(f.read().strip() or "0") + 1
        except FileNotFoundError:
            return 1
        except ValueError:
            raise PKIError(self.path(CRL_NUMBER), "does not hold a number",
                           "write the number of the last CRL issued into it") from None

    def _revoked(self) -> List[Revoked]:
        """
        Every revoked certificate in the index, as CRL entries.
        """
        return [
            Revoked(int(entry["serial"], 16),
                    datetime.datetime.strptime(entry["revocationTime"], "%Y-%m-%dT%H:%M:%SZ")
                    .replace(tzinfo=datetime.UTC),
                    REASONS[entry["revocationReason"] or "unspecified"])
            for entry in self.index["certificates"] if entry["status"] == "revoked"
        ]

    def crl(self, out: str, days: int = DEFAULT_DAYS["crl"]) -> int:
        """
        Write a CRL of every revoked certificate to C{out} (PEM, replaced
        atomically), with the next CRL number.

        @return: its CRL number.
        """
        validity = Validity.days(days)
        with self._locked():
            self._reload()
            number = self._nextCRLNumber()
            crl = self.authority.crl(self._revoked(), number, validity)
            writeAtomically(out, crl.public_bytes(serialization.Encoding.PEM), 0o644)
            writeAtomically(self.path(CRL_NUMBER), f"{number}\n".encode("ascii"), 0o644)
        return number


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
