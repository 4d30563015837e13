# -*- test-case-name: tests.test_credentials,tests.test_materials,tests.test_purpose -*-
"""
What a policy needs from disk, read once: our certificate chain and key
(checked to match), DH parameters, the trust anchors, the CRLs in force and
what stapling needs.  Every file problem is a L{CredentialError} naming the
file and the fix.

    materials = loadMaterials(policy, Role.SERVER)
    materials.leaf.subject, materials.fingerprint
    context = buildContext(policy, Role.SERVER, materials)    # no I/O

A context is built from (policy, role, materials) with no I/O
(L{securetcp._tls.context}); a CRL reload replaces only the CRLs
(L{Materials.withCRLs}); certificates and keys change only when the
materials are loaded again (an explicit reload).

Everything here uses C{cryptography} only.  The readers of single files
are in L{securetcp._readers}; their public names are importable from here.
"""

from __future__ import annotations

import datetime
from typing import List, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from securetcp._readers import (
    LoadedCredentials,
    certificateKeyProblem,
    keyProblem,
    loadCADir,
    loadCAFile,
    loadCertificates,
    loadCredentials,
    loadDHParameters,
    loadTrust,
    publicKeyBytes,
    readPassphrase,
)
from securetcp.binding import BindingRule
from securetcp.config import readBindingsFile
from securetcp.errors import PolicyError
from securetcp.policy import Role, TLSPolicy
from securetcp.revocation.crl import CRLSet, loadCRLs
from securetcp.revocation.ocspresponse import findIssuer

__all__ = [
    "LoadedCredentials", "Materials", "certificateKeyProblem", "keyProblem", "loadCADir",
    "loadCAFile", "loadCertificates", "loadCredentials", "loadDHParameters", "loadMaterials",
    "loadTrust", "readPassphrase",
]


@attrs.frozen
class Materials:
    """
    What one policy needs from disk in one role, read once by
    L{loadMaterials}.  Immutable: a CRL reload makes a new value with
    L{withCRLs}; an explicit reload loads a new one.

    @ivar chain: our certificate chain, leaf first (empty when the policy
        names no credentials).
    @ivar key: the private key of C{chain[0]}, checked to match it.
    @ivar dhParameters: the PEM DH parameters, if the policy names a file.
    @ivar trust: the trust anchors (C{caCerts} and C{caCertsDir}).
    @ivar crls: the CRLs in force, when the policy checks CRLs.
    @ivar stapleIssuer: the certificate of the CA that issued ours, when a
        server staples OCSP responses (its request names leaf and issuer).
    """

    chain: Tuple[x509.Certificate, ...] = ()
    key: Optional[PrivateKeyTypes] = attrs.field(default=None, eq=False, repr=False)
    dhParameters: Optional[bytes] = None
    trust: Tuple[x509.Certificate, ...] = ()
    crls: Optional[CRLSet] = None
    stapleIssuer: Optional[x509.Certificate] = None
    #: the rules of the policy's bindings file (C{bindings=})
    bindingRules: Tuple[BindingRule, ...] = ()

    @property
    def leaf(self) -> Optional[x509.Certificate]:
        """
        Our own certificate, or C{None}.
        """
        return self.chain[0] if self.chain else None

    @property
    def fingerprint(self) -> Optional[str]:
        """
        The SHA-256 fingerprint (lowercase hex) of our own certificate, as
        audit records write certificate fingerprints; C{None} without one.
        """
        leaf = self.leaf
        return leaf.fingerprint(hashes.SHA256()).hex() if leaf is not None else None

    def withCRLs(self, crls: Optional[CRLSet]) -> Materials:
        """
        The same materials with C{crls} in force instead.
        """
        return attrs.evolve(self, crls=crls)

    def changesFrom(self, before: Materials) -> List[str]:
        """
        What differs from C{before}, in a fixed order: C{certificate} (our
        leaf), C{chain} (the certificates sent after it), C{key},
        C{dhParameters}, C{trust}, C{crls} (their files) and C{bindings}
        (the rules of the bindings file).
        """
        changed = []
        if self.fingerprint != before.fingerprint:
            changed.append("certificate")
        if self.chain[1:] != before.chain[1:]:
            changed.append("chain")
        if _keyBytes(self.key) != _keyBytes(before.key):
            changed.append("key")
        if self.dhParameters != before.dhParameters:
            changed.append("dhParameters")
        if self.trust != before.trust:
            changed.append("trust")
        if _crlSources(self.crls) != _crlSources(before.crls):
            changed.append("crls")
        if self.bindingRules != before.bindingRules:
            changed.append("bindings")
        return changed


def _keyBytes(key: Optional[PrivateKeyTypes]) -> Optional[bytes]:
    return publicKeyBytes(key) if key is not None else None


def _crlSources(crls: Optional[CRLSet]) -> object:
    return None if crls is None else (crls.sources, crls.numbers)


def loadMaterials(policy: TLSPolicy, role: Role, previous: Optional[Materials] = None,
                  now: Optional[datetime.datetime] = None) -> Materials:
    """
    Read everything C{policy} needs from disk in C{role}, once.

    @param previous: the materials in force, on reload: a CRL older than
        the one it replaces is refused (a replayed CRL).
    @raise PolicyError: (a L{CredentialError} for a file) naming the file
        and the fix, when anything cannot be used.
    """
    trust = tuple(loadTrust(policy.trust))
    crls = None
    if policy.revocation.crlEnabled:
        crls = loadCRLs(policy.revocation, trust,
                        previous=previous.crls if previous is not None else None,
                        hard=policy.revocation.mode == "hard")
    chain: Tuple[x509.Certificate, ...] = ()
    key = None
    if policy.credentials.configured:
        own = loadCredentials(policy.credentials, policy.keys, now, role.value)
        chain, key = tuple(own.chain), own.key
    dhParameters = None
    if policy.credentials.dhParameters:
        dhParameters = loadDHParameters(policy.credentials.dhParameters)
    stapleIssuer = None
    if role is Role.SERVER and policy.revocation.staple and chain:
        stapleIssuer = _stapleIssuer(chain, trust)
    rules: Tuple[BindingRule, ...] = ()
    if policy.binding.file and policy.binding.protocol is not None:
        rules = readBindingsFile(policy.binding.file, policy.binding.protocol)
    return Materials(chain, key, dhParameters, trust, crls, stapleIssuer, rules)


def _stapleIssuer(chain: Sequence[x509.Certificate],
                  trust: Sequence[x509.Certificate]) -> x509.Certificate:
    issuer = chain[1] if len(chain) > 1 else findIssuer(chain[0], trust)
    if issuer is None:
        raise PolicyError("staple", True,
                          "stapling needs the certificate of the CA that issued ours",
                          "add it to extraCertChain (or after our certificate in certKey)")
    return issuer


#: No certificate, key, CA bundle or CRL file securetcp reads may be larger.
