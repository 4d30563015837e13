# -*- test-case-name: tests.test_revocation,tests.test_ocsp,tests.test_materials -*-
"""
Certificate revocation: CRL sets (L{securetcp.revocation.crl}) and their
reload (L{securetcp.revocation.crlreload}), OCSP requests and responses
(L{securetcp.revocation.ocspresponse}), OCSP checks and stapling
(L{securetcp.revocation.ocsp}).  The decisions are pure functions of values
(C{ocsp.judge}, C{CRLSet.isRevoked}, C{validateResponse}); fetching and file
watching are kept apart from them.

    crls = loadCRLs(policy.revocation, caCerts, hard=True)
    crls.isRevoked(peerCertificate)
"""

from securetcp.revocation.crl import CRLSet, crlPaths, loadCRLs
from securetcp.revocation.crlreload import CRLWatcher
from securetcp.revocation.ocsp import OCSPChecker, OCSPStatus, StapleFetcher

__all__ = ["CRLSet", "CRLWatcher", "OCSPChecker", "OCSPStatus", "StapleFetcher", "crlPaths",
           "loadCRLs"]
