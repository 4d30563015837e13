"""
CRLs for tests, made the way an operator makes them: L{CRLAuthority} runs
C{openssl ca -revoke} and C{openssl ca -gencrl} against a minimal
C{openssl ca} database for one CA of a L{TestPKI}; L{craftCRL} builds the
CRLs the C{openssl} binary will not write (one already expired) with the
test PKI's own L{TestPKI.crl}.

    authority = CRLAuthority(pki, os.path.join(work, "ca-db"))
    authority.revoke(pki.path("client.pem"))
    authority.generate(os.path.join(work, "crl.pem"))
    stale = craftCRL(pki)
"""

from __future__ import annotations

import datetime
import os
from typing import Optional, Sequence

from cryptography import x509

from ._pki import TestPKI
from ._programs import needOpenSSL, runOpenSSL

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)


class CRLAuthority:
    """
    A minimal C{openssl ca} set-up for one CA of a L{TestPKI}: its database
    (C{index.txt}) and C{crlnumber} live in C{directory}; the CA certificate
    and key are the PKI's C{NAME.pem} and C{NAME.key}.
    """

    def __init__(self, pki: TestPKI, directory: str, ca: str = "ca", number: int = 1) -> None:
        needOpenSSL()
        os.makedirs(directory, exist_ok=True)
        self.pki = pki
        self.directory = directory
        self.config = os.path.join(directory, f"{ca}-openssl-ca.cnf")
        with open(os.path.join(directory, "index.txt"), "w"):
            pass
        self.setNumber(number)
        with open(self.config, "w") as f:
            f.write(
                "[ ca ]\n"
                "default_ca = CA_default\n"
                "[ CA_default ]\n"
                f"database = {os.path.join(directory, 'index.txt')}\n"
                f"crlnumber = {os.path.join(directory, 'crlnumber')}\n"
                f"certificate = {pki.path(ca + '.pem')}\n"
                f"private_key = {pki.path(ca + '.key')}\n"
                "default_md = sha256\n"
                "default_crl_days = 30\n"
            )

    def setNumber(self, number: int) -> None:
        """
        Make C{number} the next CRL's CRL number.
        """
        with open(os.path.join(self.directory, "crlnumber"), "w") as f:
            f.write(f"{number:04X}\n")

    def revoke(self, certificatePath: str, reason: str = "keyCompromise") -> None:
        """
        C{openssl ca -revoke}: record C{certificatePath} as revoked.
        """
        runOpenSSL("ca", "-config", self.config, "-revoke", certificatePath,
                 "-crl_reason", reason)

    def generate(self, out: str, hours: Optional[int] = None, days: Optional[int] = None,
                 der: bool = False) -> str:
        """
        C{openssl ca -gencrl}: write the current CRL to C{out} (PEM, or DER
        through C{openssl crl -outform DER}).
        """
        argv = ["ca", "-config", self.config, "-gencrl"]
        if hours is not None:
            argv += ["-crlhours", str(hours)]
        if days is not None:
            argv += ["-crldays", str(days)]
        if der:
            pem = out + ".pem-tmp"
            runOpenSSL(*argv, "-out", pem)
            runOpenSSL("crl", "-in", pem, "-outform", "DER", "-out", out)
            os.remove(pem)
        else:
            runOpenSSL(*argv, "-out", out)
        return out


def craftCRL(pki: TestPKI, revoked: Sequence[x509.Certificate] = (), number: int = 1,
             lastUpdate: datetime.datetime = _NOW - 2 * _DAY,
             nextUpdate: datetime.datetime = _NOW - _DAY) -> bytes:
    """
    A PEM CRL of C{pki}'s CA that C{openssl ca} will not write: by default
    one whose nextUpdate has already passed; C{revoked} are listed as
    revoked at C{lastUpdate} for C{keyCompromise}.
    """
    return pki.crl(revoked, number, lastUpdate, nextUpdate, x509.ReasonFlags.key_compromise)
