# -*- test-case-name: tests.test_verify,tests.test_revocation -*-
"""
The verify step: what securetcp checks of each certificate of the peer's
chain during the handshake (OpenSSL's verdict, key sizes, revocation against
the CRLs in force), recorded on the connection's L{ConnectionFacts} and
answered with the X509 verify code, so that the peer gets the precise alert.
The allow-list and pins are decided in the verify step of the leaf (the
last one), so a refused peer gets a C{bad_certificate} alert rather than a
TCP reset, and the facts keep the reason (C{identity_not_allowed},
C{pin_mismatch}).  What is checked once the handshake is over: the server's
name (by a client), and the allow-list and pins of a resumed session (no
verify step runs for it).

    check = verifyCheck(policy, materials.crls)
    setVerify(context, SSL.VERIFY_PEER, check, policy.keys)
    peerRejection(policy, Role.CLIENT, "lab.example", chain, identity)
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.logger import Logger

from securetcp._tls import _binding
from securetcp._tls.session import ConnectionFacts, connectionFacts
from securetcp.identity import PeerIdentity, authorise, identityFromCertificate, spkiDigest
from securetcp.materials import certificateKeyProblem
from securetcp.policy import KeyStrength, Role, TLSPolicy
from securetcp.revocation.crl import CRLSet

_log = Logger(namespace="securetcp.context")

#: X509 verify codes that mean "revocation status unknown" (no CRL for the
#: issuer, CRL expired or not yet valid): accepted with a warning under
#: revocation=soft.
_REVOCATION_UNKNOWN = (3, 11, 12)
_UNKNOWN_WHY = {3: "no CRL for the issuer", 11: "the issuer's CRL is not yet valid",
                12: "the issuer's CRL has expired"}

_REVOKED = 23  # X509_V_ERR_CERT_REVOKED: the peer gets the certificate_revoked alert
_KEY_TOO_SMALL = (66, 67)  # X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_KEY_TOO_SMALL
_UNSPECIFIED = 1  # X509_V_ERR_UNSPECIFIED
#: X509_V_ERR_CERT_REJECTED: a peer refused by the allow-list or the pins
#: (OpenSSL sends the C{bad_certificate} alert for it).
_REFUSED = 28

#: How many certificates one context's verify callback remembers (by the
#: SHA-256 of their DER), so that a peer that reconnects costs no conversion,
#: no key check and no name encoding.
VERIFY_CACHE_SIZE = 4096


@attrs.frozen
class SeenCertificate:
    """
    What the verify callback needs of one certificate, worked out once.
    """

    certificate: x509.Certificate
    issuer: bytes
    serial: int
    selfIssued: bool
    keyProblem: Optional[str]
    #: the SHA-256 of its SubjectPublicKeyInfo (what pins name)
    spki: bytes

    @classmethod
    def of(cls, certificate: x509.Certificate, strength: KeyStrength) -> SeenCertificate:
        return cls(certificate, certificate.issuer.public_bytes(), certificate.serial_number,
                   certificate.issuer == certificate.subject,
                   certificateKeyProblem(certificate, strength), spkiDigest(certificate))


#: A verify check: C{(connection, seen, errno, depth, ok)} to C{None} (accept)
#: or the X509 verify code to reject the certificate with.
VerifyCheck = Callable[[Optional[SSL.Connection], SeenCertificate, int, int, int], Optional[int]]

#: A part of a check (revocation, authorisation): C{(facts, seen, depth)} to
#: C{None} or a code.
_PartCheck = Callable[[Optional[ConnectionFacts], SeenCertificate, int], Optional[int]]


def _warn(facts: Optional[ConnectionFacts], text: str) -> None:
    if facts is not None and facts.revocationWarning is None:
        facts.revocationWarning = text


def _fail(facts: Optional[ConnectionFacts], code: int, depth: int, message: str) -> int:
    return facts.rejected(code, depth, message) if facts is not None else code


def _revocationCheck(policy: TLSPolicy, crls: CRLSet) -> _PartCheck:
    """
    Revocation of one certificate against C{crls}: a set lookup, not
    OpenSSL's own CRL check (which would verify each CRL's signature again
    on every handshake).
    """
    soft = policy.revocation.mode == "soft"
    wholeChain = policy.revocation.scope == "chain"

    def revocation(facts: Optional[ConnectionFacts], seen: SeenCertificate,
                   depth: int) -> Optional[int]:
        if depth > 0 and (not wholeChain or seen.selfIssued):
            return None  # leaf scope, or the trust anchor itself
        if (seen.issuer, seen.serial) in crls.revoked:
            if facts is not None:
                facts.revokedCert = seen.certificate
            return _fail(facts, _REVOKED, depth, "certificate revoked")
        problem = crls.issuerProblem(seen.issuer, time.time())
        if problem is None:
            return None
        why = _UNKNOWN_WHY[problem]
        if soft:
            _warn(facts, f"revocation status unknown at depth {depth} (X509 verify code "
                         f"{problem}); {why}; accepted under revocation=soft")
            return None
        return _fail(facts, problem, depth, why)

    return revocation


def verifyCheck(policy: TLSPolicy, crls: Optional[CRLSet] = None) -> VerifyCheck:
    """
    The verify check of C{policy}: records why OpenSSL rejected a
    certificate, checks key sizes, and checks revocation against C{crls}
    (the CRLs in force, if the policy checks CRLs), then, at the leaf, the
    allow-list and pins.  A rejection carries the X509 verify code, so the
    peer still gets the precise alert (C{certificate_revoked} for a revoked
    certificate, C{bad_certificate} for one the allow-list or pins refuse).
    """
    soft = policy.revocation.mode == "soft"
    crlEnabled = policy.revocation.crlEnabled
    revocation = _revocationCheck(policy, crls) if crls is not None and crlEnabled else None
    # under leaf scope the revocation check has nothing to do above the leaf
    wholeChain = policy.revocation.scope == "chain"
    authorising = bool(policy.peer.allow or policy.peer.pins)
    authorisation = _authorisationCheck(policy)

    def verify(conn: Optional[SSL.Connection], seen: SeenCertificate, errno: int, depth: int,
               ok: int) -> Optional[int]:
        # connectionFacts(conn), inlined: this runs for every certificate
        facts = getattr(conn.get_app_data(), "securetcpFacts", None) if conn is not None else None
        if not isinstance(facts, ConnectionFacts):
            facts = None
        else:
            facts.chain[depth] = seen.certificate
            if depth == 0 and facts.peerLeaf is None:
                facts.peerLeaf = seen.certificate
        if not ok:
            if soft and errno in _REVOCATION_UNKNOWN and crlEnabled:
                _warn(facts, f"revocation status unknown at depth {depth} (X509 verify code "
                             f"{errno}); accepted under revocation=soft")
                return None
            return _fail(facts, errno, depth, _binding.verifyErrorString(errno))
        if seen.keyProblem:
            if facts is not None and facts.weakKey is None:
                facts.weakKey = f"certificate at depth {depth}: {seen.keyProblem}"
            return _KEY_TOO_SMALL[min(depth, 1)]
        if revocation is not None and (depth == 0 or wholeChain):
            code = revocation(facts, seen, depth)
            if code is not None:
                return code
        if authorising:
            return authorisation(facts, seen, depth)
        return None

    return verify


def _authorisationCheck(policy: TLSPolicy) -> _PartCheck:
    """
    The allow-list and pins, decided at the leaf (the last verify step, so
    every other certificate of the chain has been seen): a refusal is
    answered with X509_V_ERR_CERT_REJECTED (the peer gets the
    C{bad_certificate} alert) and its reason is kept on the facts.
    """
    allow, pins = policy.peer.allow, policy.peer.pins

    def authorisation(facts: Optional[ConnectionFacts], seen: SeenCertificate,
                      depth: int) -> Optional[int]:
        if facts is None:
            return None  # no facts to decide on: the gate decides after the handshake
        if depth > 0:
            if pins and seen.spki in pins:
                facts.pinned = True
            return None
        refusal = authorise(identityFromCertificate(seen.certificate), [seen.spki], allow,
                            () if facts.pinned else pins)
        facts.authorised = refusal is None
        if refusal is None:
            return None
        facts.refusal = refusal
        return _fail(facts, _REFUSED, depth, refusal[1])

    return authorisation


def setVerify(ctx: SSL.Context, mode: int, check: VerifyCheck, strength: KeyStrength) -> None:
    """
    Make C{check} the verify callback of C{ctx}.

    pyOpenSSL's C{set_verify} cannot tell OpenSSL I{why} a certificate was
    rejected (the peer would get a generic alert), and converts every
    certificate of every handshake.  So the callback is installed through
    the binding (L{securetcp._tls._binding}): it sets the X509 verify code
    of a rejection (hence the alert), and keeps the conversion of each
    certificate it has seen.  Falls back to C{set_verify} if the binding
    lacks what it needs.
    """
    try:
        pieces = _binding.verifyPieces()
    except (ImportError, AttributeError):
        def adapter(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int,
                    ok: int) -> bool:
            seen = SeenCertificate.of(cert.to_cryptography(), strength)
            return check(conn, seen, errno, depth, ok) is None

        ctx.set_verify(mode, adapter)
        return
    _binding.installVerifyCallback(ctx, mode, _callback(check, strength), pieces)


def _callback(check: VerifyCheck, strength: KeyStrength) -> _binding.RawVerify:
    cache: Dict[bytes, SeenCertificate] = {}

    def callback(ok: int, step: _binding.VerifyStep) -> int:
        try:
            conn = step.connection()
            key = step.fingerprint()
            if key is None:
                return _noCurrentCertificate(ok, step)
            seen = cache.get(key)
            if seen is None:
                seen = SeenCertificate.of(step.certificate(), strength)
                if len(cache) >= VERIFY_CACHE_SIZE:
                    cache.clear()
                cache[key] = seen
            code = check(conn, seen, step.error, step.depth, ok)
        except Exception as e:  # never accept on a bug
            code = _UNSPECIFIED
            _log.failure("securetcp's certificate verify callback failed; the "
                         "certificate is rejected")
            _internalError(step, e)
        return step.setError(code)

    return callback


def _noCurrentCertificate(ok: int, step: _binding.VerifyStep) -> int:
    """
    OpenSSL names no certificate to judge (it does for some chain errors):
    keep OpenSSL's verdict, and never accept what was not seen.
    """
    errno = step.error
    code = errno if not ok and errno else _UNSPECIFIED
    facts = connectionFacts(step.connection())
    if facts is not None:
        facts.rejected(code, step.depth, _binding.verifyErrorString(code))
    return step.setError(code)


def _internalError(step: _binding.VerifyStep, error: Exception) -> None:
    try:
        facts = connectionFacts(step.connection())
    except Exception:  # pragma: no cover
        return
    if facts is not None and facts.verifyCode is None:
        facts.internalError = f"internal error in the verify callback: {error!r}"
        facts.rejected(_UNSPECIFIED, step.depth, facts.internalError)


def peerRejection(policy: TLSPolicy, role: Role, hostname: Optional[str],
                  chain: Sequence[x509.Certificate],
                  identity: Optional[PeerIdentity],
                  authorised: bool = False) -> Optional[Tuple[str, str]]:
    """
    Whether the peer whose verified chain is C{chain} (leaf first, with the
    leaf's C{identity}) may pass: a client checks the server's name against
    C{hostname}; both sides apply the policy's allow-list and pins, unless
    the verify step already did (C{authorised}).

    @return: C{None}, or the rejection as C{(reason, detail)}.
    """
    if role is Role.CLIENT:
        if not chain:
            return ("no_server_certificate", "the server presented no certificate")
        if hostname:
            problem = hostnameProblem(chain[0], hostname)
            if problem:
                return ("hostname_mismatch", problem)
    elif not chain and (policy.peer.allow or policy.peer.pins):
        return ("no_client_certificate",
                "an allow-list or pins are set but the client sent no certificate")
    if chain and (policy.peer.allow or policy.peer.pins) and not authorised:
        assert identity is not None
        return authorise(identity, [spkiDigest(c) for c in chain],
                         policy.peer.allow, policy.peer.pins)
    return None


def hostnameProblem(leaf: Any, hostname: str) -> Optional[str]:
    """
    Why the server certificate C{leaf} is not valid for C{hostname} (a DNS
    name or an IP address), or C{None}.
    """
    from service_identity import CertificateError, VerificationError
    from service_identity.cryptography import (
        verify_certificate_hostname,
        verify_certificate_ip_address,
    )

    try:
        try:
            verify_certificate_ip_address(leaf, str(ipaddress.ip_address(hostname)))
        except ValueError:
            verify_certificate_hostname(leaf, hostname)
    except VerificationError as e:
        return f"the server's certificate is not valid for {hostname!r}: {e}"
    except CertificateError as e:
        return f"the server's certificate names no usable identity: {e}"
    return None
