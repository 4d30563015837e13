# -*- test-case-name: tests.test_revocation -*-
"""
Certificate revocation lists: loading and checking them (their reload while
the server runs is L{securetcp.revocation.crlreload}).

    crls = loadCRLs(policy.revocation, caCerts)      # errors name the file
    crls.isRevoked(peerCertificate)

A CRL is accepted only if it parses, is signed by one of the policy's CAs,
(on reload) does not carry a lower CRL number than the one in force and,
under C{revocation=hard}, has not expired (at start and on reload alike).
A refused CRL leaves the last good one in force and is audited.  A reload
replaces the CRLs only: the certificate and key in force stay.  OCSP is in
L{securetcp.revocation.ocsp}.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import attrs
from cryptography import x509

from securetcp.errors import CredentialError
from securetcp.policy import Revocation

FileSignature = Tuple[int, int, int, int]  # inode, device, size, mtime_ns


@attrs.frozen
class CRLSet:
    """
    The CRLs in force: immutable; a reload makes a new one.

    @ivar crls: the verified CRLs.
    @ivar sources: the signature (inode, device, size, mtime) of each file
        they came from, to notice changes (an atomic rename or a symlink swap
        changes the inode).
    @ivar revoked: (issuer DER name, serial) of every revoked certificate.
    @ivar expired: descriptions of CRLs whose nextUpdate has passed.
    """

    crls: Tuple[x509.CertificateRevocationList, ...]
    sources: Tuple[Tuple[str, FileSignature], ...]
    revoked: frozenset = frozenset()
    numbers: Tuple[Tuple[bytes, int], ...] = ()
    expired: Tuple[str, ...] = ()
    #: issuer DER name -> (thisUpdate, nextUpdate or None) of its newest CRL,
    #: as POSIX timestamps
    windows: Dict[bytes, Tuple[float, Optional[float]]] = attrs.field(factory=dict)

    def issuerProblem(self, issuer: bytes, now: float) -> Optional[int]:
        """
        Why the revocation status of a certificate from C{issuer} cannot be
        established now, as an X509 verify code (3: no CRL for the issuer,
        11: its CRL is not valid yet, 12: its CRL has expired), or C{None}.
        """
        window = self.windows.get(issuer)
        if window is None:
            return 3
        thisUpdate, nextUpdate = window
        if thisUpdate > now + 300:
            return 11
        if nextUpdate is not None and nextUpdate < now:
            return 12
        return None

    def isRevoked(self, certificate: x509.Certificate) -> bool:
        """
        Whether C{certificate} is on one of these CRLs.
        """
        return (certificate.issuer.public_bytes(), certificate.serial_number) in self.revoked

    def entry(self, certificate: x509.Certificate) -> Optional[Dict[str, Any]]:
        """
        The revocation entry of C{certificate}: reason code and time, or
        C{None} if it is not revoked.
        """
        for crl in self.crls:
            if crl.issuer != certificate.issuer:
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if revoked is None:
                continue
            reason = None
            try:
                # the RFC 5280 name, e.g. keyCompromise, as the audit schema documents
                reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
            except x509.ExtensionNotFound:
                pass
            return {"revocationReason": reason,
                    "revocationTime": revoked.revocation_date_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return None

    def number(self, issuer: bytes) -> Optional[int]:
        return dict(self.numbers).get(issuer)


def _signature(path: str) -> FileSignature:
    st = os.stat(path)
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def crlPaths(revocation: Revocation) -> List[str]:
    """
    Every CRL file the policy names, directories expanded.

    @raise CredentialError: when a named file or directory does not exist.
    """
    paths: List[str] = []
    for path in revocation.crlFiles:
        if not os.path.isfile(path):
            raise CredentialError("crl", path,
                                  "is not a file" if os.path.exists(path) else "CRL file does not exist",
                                  "check the path, or remove it from crl=")
        paths.append(path)
    for directory in revocation.crlDirs:
        if not os.path.isdir(directory):
            raise CredentialError("crlDir", directory,
                                  "is not a directory" if os.path.exists(directory)
                                  else "CRL directory does not exist",
                                  "create it or fix the path")
        for name in sorted(os.listdir(directory)):
            full = os.path.join(directory, name)
            if os.path.isfile(full) and not name.startswith("."):
                paths.append(full)
    return paths


def _parse(path: str, data: bytes) -> List[x509.CertificateRevocationList]:
    field = "crl"
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            out = []
            for block in data.split(b"-----END X509 CRL-----")[:-1]:
                start = block.index(b"-----BEGIN X509 CRL-----")
                out.append(x509.load_pem_x509_crl(block[start:] + b"-----END X509 CRL-----\n"))
            return out
        return [x509.load_der_x509_crl(data)]
    except ValueError:
        raise CredentialError(field, path, "is not a readable CRL (PEM or DER)",
                              "give the file written by your CA, e.g. openssl ca -gencrl") from None


@attrs.define
class _Gathered:
    """
    What L{loadCRLs} has gathered so far.
    """

    crls: List[x509.CertificateRevocationList] = attrs.field(factory=list)
    sources: List[Tuple[str, FileSignature]] = attrs.field(factory=list)
    revoked: Set[Tuple[bytes, int]] = attrs.field(factory=set)
    numbers: Dict[bytes, int] = attrs.field(factory=dict)
    expired: List[str] = attrs.field(factory=list)
    windows: Dict[bytes, Tuple[float, Optional[float]]] = attrs.field(factory=dict)

    def crlSet(self) -> CRLSet:
        return CRLSet(tuple(self.crls), tuple(self.sources), frozenset(self.revoked),
                      tuple(self.numbers.items()), tuple(self.expired), self.windows)


def loadCRLs(
    revocation: Revocation,
    caCerts: Sequence[x509.Certificate],
    previous: Optional[CRLSet] = None,
    now: Optional[datetime.datetime] = None,
    hard: Optional[bool] = None,
) -> CRLSet:
    """
    Read, parse and verify every CRL of C{revocation}.

    @param previous: the CRLs in force, on reload: a CRL whose number is
        lower than its predecessor's is refused.  Only CRLs in force count:
        a refused CRL's number never blocks the next one.
    @raise CredentialError: naming the file, for a missing, unreadable,
        unparseable, wrongly signed or older CRL, or (under hard fail, at
        start and on reload) an expired one that is not already in force.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    gathered = _Gathered()
    for path in crlPaths(revocation):
        try:
            signature = _signature(path)
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CredentialError("crl", path, f"cannot be read: {e.strerror}",
                                  "fix its permissions") from None
        for crl in _parse(path, data):
            _checkIssuer(crl, path, caCerts)
            # the rules of start-up hold on reload too, so an expired CRL
            # never replaces a good one under hard fail; one already in force
            # that expired in place stays (its expiry is audited)
            refuseExpired = bool(hard) and (previous is None or crl not in previous.crls)
            _gather(gathered, crl, path, previous, now, refuseExpired)
        gathered.sources.append((path, signature))
    return gathered.crlSet()


def _checkIssuer(crl: x509.CertificateRevocationList, path: str,
                 caCerts: Sequence[x509.Certificate]) -> None:
    issuers = [ca for ca in caCerts if ca.subject == crl.issuer]
    if not issuers:
        raise CredentialError(
            "crl", path,
            f"is issued by {crl.issuer.rfc4514_string()}, which is not one of the "
            "policy's CAs", "add that CA to caCerts, or remove the CRL")
    if not any(_signedBy(crl, ca) for ca in issuers):
        raise CredentialError("crl", path,
                              "its signature does not verify against its issuer CA",
                              "the file is corrupt or forged; fetch it again from the CA")


def _gather(gathered: _Gathered, crl: x509.CertificateRevocationList, path: str,
            previous: Optional[CRLSet], now: datetime.datetime,
            refuseExpired: bool) -> None:
    """
    Add one verified CRL, refusing a replayed older one and (when
    C{refuseExpired}) an expired one.
    """
    issuerKey = crl.issuer.public_bytes()
    number = _crlNumber(crl)
    if previous is not None and number is not None:
        old = previous.number(issuerKey)
        if old is not None and number < old:
            raise CredentialError(
                "crl", path,
                f"has CRL number {number}, lower than the {old} in force (a replayed "
                "older CRL?)", "publish the newest CRL")
    if number is not None:
        gathered.numbers[issuerKey] = max(number, gathered.numbers.get(issuerKey, number))
    nextUpdate = crl.next_update_utc
    if nextUpdate is not None and nextUpdate < now:
        if refuseExpired:
            raise CredentialError(
                "crl", path,
                f"expired on {nextUpdate:%Y-%m-%d %H:%M} UTC; under revocation=hard "
                "every peer of this CA would be rejected",
                "publish a fresh CRL, or use revocation=soft")
        gathered.expired.append(f"{path}: CRL of {crl.issuer.rfc4514_string()} expired on "
                                f"{nextUpdate:%Y-%m-%d %H:%M} UTC")
    for entry in crl:
        gathered.revoked.add((issuerKey, entry.serial_number))
    thisUpdate = crl.last_update_utc.timestamp()
    windows = gathered.windows
    if issuerKey not in windows or windows[issuerKey][0] < thisUpdate:
        windows[issuerKey] = (thisUpdate,
                              nextUpdate.timestamp() if nextUpdate is not None else None)
    gathered.crls.append(crl)


def _signedBy(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _crlNumber(crl: x509.CertificateRevocationList) -> Optional[int]:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def sourceSignatures(revocation: Revocation) -> Optional[Tuple[Tuple[str, FileSignature], ...]]:
    """
    The (path, signature) of every CRL file now, or C{None} if they cannot
    be listed (a missing file or directory).
    """
    try:
        paths = crlPaths(revocation)
        return tuple((p, _signature(p)) for p in paths)
    except (CredentialError, OSError):
        return None


def sourcesChanged(current: CRLSet, revocation: Revocation) -> bool:
    """
    Whether any CRL file was added, removed, replaced or modified.
    """
    now = sourceSignatures(revocation)
    return now is None or now != current.sources
