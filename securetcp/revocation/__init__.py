# -*- test-case-name: tests.test_revocation,tests.test_ocsp -*-
"""
Certificate revocation: CRL sets and their reload (L{securetcp.revocation.crl}),
OCSP checks and stapling (L{securetcp.revocation.ocsp}).  The decisions are
pure functions of values (C{ocsp.judge}, C{CRLSet.isRevoked}); fetching and
file watching are kept apart from them.

    crls = loadCRLs(policy.revocation, caCerts, hard=True)
    crls.isRevoked(peerCertificate)
"""

from securetcp.revocation.crl import CRLSet, CRLWatcher, crlPaths, loadCRLs
from securetcp.revocation.ocsp import OCSPChecker, OCSPStatus, StapleFetcher

__all__ = ["CRLSet", "CRLWatcher", "OCSPChecker", "OCSPStatus", "StapleFetcher", "crlPaths",
           "loadCRLs"]
