# -*- test-case-name: tests.test_pki -*-
"""
A small certificate authority, for development and for provisioning
devices: C{python -m securetcp pki}, and the test and benchmark PKIs.

    python -m securetcp pki init --dir ca --name "Hospital devices CA"
    python -m securetcp pki issue-server --dir ca --out server --dns hl7.hospital.example --ip 127.0.0.1
    python -m securetcp pki issue-client --dir ca --out pump-0042 --device-id pump-0042
    python -m securetcp pki revoke --dir ca pump-0042.pem --reason keyCompromise
    python -m securetcp pki crl --dir ca --out devices.crl

L{Authority} (in L{securetcp._pki.authority}) issues keys, certificates
and CRLs as values, writing nothing; L{CertificateAuthority} (in
L{securetcp._pki.directory}) keeps one in a directory with an index of
what it issued and revoked; L{securetcp._pki.names} builds certificate
names from what an operator types.  Keys are ECDSA P-256 unless RSA is
asked for.
"""

from securetcp._pki.authority import (
    Authority,
    Credential,
    PrivateKey,
    Revoked,
    Validity,
    certificatePEM,
    keyPEM,
    newKey,
)
from securetcp._pki.directory import DEFAULT_DAYS, REASONS, CertificateAuthority, Issued
from securetcp._pki.names import deviceNames, serverNames

__all__ = [
    "DEFAULT_DAYS",
    "REASONS",
    "Authority",
    "CertificateAuthority",
    "Credential",
    "Issued",
    "PrivateKey",
    "Revoked",
    "Validity",
    "certificatePEM",
    "deviceNames",
    "keyPEM",
    "newKey",
    "serverNames",
]
