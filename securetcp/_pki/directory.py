# -*- test-case-name: tests.test_pki -*-
"""
The certificate authority in a directory, behind C{python -m securetcp
pki}: C{ca.pem}, C{ca.key} (mode 0600, unencrypted: there is no HSM here,
whoever can read the file can issue certificates), C{index.json} (every
issued certificate with its status and revocation reason and time),
C{crlnumber} (the number of the last CRL) and C{issued/SERIAL.pem}.

    ca = CertificateAuthority.create("ca", "Hospital devices CA")
    ca.issueClient("pump-0042", "pump-0042", dns=["pump-0042.ward3.example"])
    ca.issueNode("pacs", dns=["pacs.hospital.example"], org="Radiology")
    ca.signRequest("modality.csr", "modality", "node", dns=["ct1.hospital.example"])
    ca.revoke("pump-0042.pem", reason="keyCompromise")
    ca.crl("devices.crl")
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from securetcp._pki.authority import (
    CLIENT_USAGES,
    NODE_USAGES,
    SERVER_USAGES,
    Authority,
    PrivateKey,
    Validity,
    certificatePEM,
    keyPEM,
    newKey,
    now,
)
from securetcp._pki.files import (
    CA_CERT,
    CA_KEY,
    INDEX,
    outPaths,
    readCA,
    readCertificate,
    readCRLNumber,
    writeAtomically,
)
from securetcp._pki.index import REASONS, Issued, entryFor, revokedEntries, stamp
from securetcp._pki.names import Names, deviceNames, namesFor, nodeNames, serverNames
from securetcp._pki.requests import readRequest, refuseGivenNames, requestKey, requestNames
from securetcp.errors import PKIError

CRL_NUMBER = "crlnumber"
ISSUED = "issued"
_LOCK = ".lock"

DEFAULT_DAYS = {"ca": 3650, "server": 397, "client": 397, "node": 397, "crl": 7}

#: The extended key usages of each kind of certificate.
USAGES: Mapping[str, Tuple[x509.ObjectIdentifier, ...]] = {
    "server": SERVER_USAGES, "client": CLIENT_USAGES, "node": NODE_USAGES}


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
        """
        The path of C{name} in the CA directory.
        """
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
                   "created": stamp(moment),
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
        cert, key, index = readCA(directory)
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

    def _record(self, certPath: str, keyPath: Optional[str], kind: str,
                cert: x509.Certificate, key: Optional[PrivateKey], sans: Sequence[x509.GeneralName],
                extra: Mapping[str, Any]) -> Issued:
        """
        Write C{cert} (and C{key}, if there is one) and its copy in
        C{issued/}, and record it in the index.
        """
        moment = now()
        serial = format(cert.serial_number, "x")
        with self._locked():
            self._reload()
            if keyPath is not None and key is not None:
                writeAtomically(keyPath, keyPEM(key), 0o600)
            writeAtomically(certPath, certificatePEM(cert), 0o644)
            os.makedirs(self.path(ISSUED), mode=0o700, exist_ok=True)
            writeAtomically(self.path(os.path.join(ISSUED, serial + ".pem")),
                            certificatePEM(cert), 0o644)
            self.index["certificates"].append(
                entryFor(cert, kind, os.path.abspath(certPath), moment, sans, extra))
            self._saveIndex()
        return Issued(os.path.abspath(certPath),
                      os.path.abspath(keyPath) if keyPath is not None else None, serial,
                      cert.subject.rfc4514_string())

    def _issue(self, out: str, kind: str, names: Names, days: int, rsaBits: Optional[int],
               force: bool, extra: Mapping[str, Any]) -> Issued:
        """
        Issue a certificate of C{kind} with C{names} for a new key, written
        to C{OUT.pem} and C{OUT.key}.
        """
        validity = Validity.days(days)
        certPath, keyPath = outPaths(out)
        _refuseExisting((certPath, keyPath), force)
        subject, sans = names
        issued = self.authority.issue(subject, USAGES[kind], sans, newKey(rsaBits), validity)
        return self._record(certPath, keyPath, kind, issued.certificate, issued.key, sans, extra)

    def issueServer(self, out: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
                    days: int = DEFAULT_DAYS["server"], rsaBits: Optional[int] = None,
                    force: bool = False, org: Optional[str] = None) -> Issued:
        """
        Issue a server certificate (serverAuth) for C{dns} names and C{ips},
        of organisation C{org}.
        """
        return self._issue(out, "server", serverNames(out, dns, ips, org), days, rsaBits,
                           force, {})

    def issueClient(self, out: str, deviceId: str, spiffe: Optional[str] = None,
                    days: int = DEFAULT_DAYS["client"], rsaBits: Optional[int] = None,
                    force: bool = False, dns: Sequence[str] = (),
                    org: Optional[str] = None) -> Issued:
        """
        Issue a device (client) certificate (clientAuth): C{deviceId} is the
        subject's common name and serialNumber, C{org} its organisation;
        the SAN URI is C{spiffe}, or C{spiffe://TRUST-DOMAIN/device/DEVICE-ID}
        with the CA's trust domain, and the C{dns} names follow it.
        """
        names = deviceNames(out, deviceId, spiffe, self.index["ca"].get("trustDomain"), dns,
                            org)
        return self._issue(out, "client", names, days, rsaBits, force, {"deviceId": deviceId})

    def issueNode(self, out: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
                  spiffe: Optional[str] = None, org: Optional[str] = None,
                  days: int = DEFAULT_DAYS["node"], rsaBits: Optional[int] = None,
                  force: bool = False) -> Issued:
        """
        Issue a node certificate, valid for both server and client use
        (serverAuth and clientAuth: a DICOM node that is both SCU and SCP
        uses one): the names of a server certificate, and the SAN URI
        C{spiffe} if given.
        """
        return self._issue(out, "node", nodeNames(out, dns, ips, spiffe, org), days, rsaBits,
                           force, {})

    def signRequest(self, csrPath: str, out: str, kind: str, acceptRequestNames: bool = False,
                    dns: Sequence[str] = (), ips: Sequence[str] = (),
                    deviceId: Optional[str] = None, spiffe: Optional[str] = None,
                    org: Optional[str] = None, days: Optional[int] = None,
                    force: bool = False) -> Issued:
        """
        Certify the key of the certificate signing request in C{csrPath} as
        a C{kind} (C{"server"}, C{"client"} or C{"node"}) certificate,
        written to C{OUT.pem} (the key stays with the requester).

        The request's signature and key are checked first.  Its names are
        taken only if C{acceptRequestNames}; otherwise they are built from
        C{dns}, C{ips}, C{deviceId}, C{spiffe} and C{org} as the C{issue-*}
        commands build them.

        @raise PKIError: naming the request for a bad signature, a weak key
            or names that cannot be used; naming the option for a missing
            or misplaced one.
        """
        if kind not in USAGES:
            raise PKIError(kind, "is not a kind of certificate", "use server, client or node")
        request = readRequest(csrPath)
        key = requestKey(csrPath, request)
        given = {"--dns": dns, "--ip": ips, "--device-id": deviceId, "--spiffe": spiffe,
                 "--org": org}
        if acceptRequestNames:
            refuseGivenNames(csrPath, given)
            names = requestNames(csrPath, request, kind)
        else:
            names = namesFor(out, kind, given, self.index["ca"].get("trustDomain"))
        certPath = outPaths(out)[0]
        _refuseExisting((certPath,), force)
        cert = self.authority.certify(names[0], USAGES[kind], names[1], key,
                                      Validity.days(days if days is not None else DEFAULT_DAYS[kind]))
        return self._record(certPath, None, kind, cert, None, names[1], {
            "csr": os.path.abspath(csrPath),
            "namesFrom": "csr" if acceptRequestNames else "command line",
            **({"deviceId": deviceId} if deviceId is not None else {})})

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
                         revocationTime=stamp(now()))
            self._saveIndex()
        return entry

    # -- CRLs ---------------------------------------------------------------

    def crl(self, out: str, days: int = DEFAULT_DAYS["crl"]) -> int:
        """
        Write a CRL of every revoked certificate to C{out} (PEM, replaced
        atomically), with the next CRL number.

        @return: its CRL number.
        """
        validity = Validity.days(days)
        with self._locked():
            self._reload()
            number = readCRLNumber(self.path(CRL_NUMBER)) + 1
            crl = self.authority.crl(revokedEntries(self.index), number, validity)
            writeAtomically(out, crl.public_bytes(serialization.Encoding.PEM), 0o644)
            writeAtomically(self.path(CRL_NUMBER), f"{number}\n".encode("ascii"), 0o644)
        return number


def _signedBy(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # InvalidSignature, ValueError, TypeError
        return False
    return True


def _refuseExisting(paths: Sequence[str], force: bool) -> None:
    """
    Refuse to overwrite any of C{paths} unless C{force}.
    """
    if not force:
        for path in paths:
            if os.path.exists(path):
                raise PKIError(path, "already exists",
                               "choose another --out, or add --force to overwrite it")

