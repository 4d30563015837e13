# -*- test-case-name: tests.test_pki -*-
"""
A small certificate authority, for development and for provisioning
devices: C{python -m securetcp pki}, and the test and benchmark PKIs.

    python -m securetcp pki init --dir ca --name "Hospital devices CA"
    python -m securetcp pki issue-server --dir ca --out server --dns hl7.hospital.example --ip 127.0.0.1
    python -m securetcp pki issue-client --dir ca --out pump-0042 --device-id pump-0042
    python -m securetcp pki issue-node --dir ca --out pacs --dns pacs.hospital.example
    python -m securetcp pki sign-csr --dir ca --csr ct1.csr --out ct1 --as node --dns ct1.hospital.example
    python -m securetcp pki revoke --dir ca pump-0042.pem --reason keyCompromise
    python -m securetcp pki crl --dir ca --out devices.crl

L{Authority} (in L{securetcp._pki.authority}) issues keys, certificates
and CRLs as values, writing nothing; L{CertificateAuthority} (in
L{securetcp._pki.directory}) keeps one in a directory with an index of
what it issued and revoked (L{securetcp._pki.index}); L{securetcp._pki.names}
builds certificate names from what an operator types, and
L{securetcp._pki.requests} reads and checks certificate signing requests.
Keys are ECDSA P-256 unless RSA is asked for.
"""

from securetcp._pki.authority import (
    CLIENT_USAGES,
    NODE_USAGES,
    SERVER_USAGES,
    Authority,
    Credential,
    PrivateKey,
    PublicKey,
    Revoked,
    Validity,
    certificatePEM,
    checkPublicKey,
    keyPEM,
    newKey,
)
from securetcp._pki.directory import DEFAULT_DAYS, CertificateAuthority
from securetcp._pki.index import KINDS, REASONS, Issued
from securetcp._pki.names import deviceNames, nodeNames, serverNames

__all__ = [
    "CLIENT_USAGES",
    "DEFAULT_DAYS",
    "KINDS",
    "NODE_USAGES",
    "REASONS",
    "SERVER_USAGES",
    "Authority",
    "CertificateAuthority",
    "Credential",
    "Issued",
    "PrivateKey",
    "PublicKey",
    "Revoked",
    "Validity",
    "certificatePEM",
    "checkPublicKey",
    "deviceNames",
    "keyPEM",
    "newKey",
    "nodeNames",
    "serverNames",
]
