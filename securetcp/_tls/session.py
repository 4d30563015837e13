# -*- test-case-name: tests.test_gate,tests.test_verify -*-
"""
What one TLS connection learned, and how it ended: the facts the verify
callback and SNI record on the connection (L{ConnectionFacts}), what a
completed handshake negotiated (L{negotiated}), and why a failed one failed
(L{classifyFailure}, as an audit C{reason} and detail)::

    session = negotiated(tlsTransport.getHandle())
    session.version, session.cipher, session.peerChain
    reason, detail = classifyFailure(error, tlsTransport.getHandle())
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple

import attrs
from cryptography import x509
from OpenSSL import SSL
from twisted.internet.error import ConnectionDone, ConnectionLost

from securetcp._reasons import reasonForErrorCode, reasonForErrorString, reasonForVerifyCode
from securetcp._tls import _binding
from securetcp.policy import Role

#: The TLS errors the TLS transport (L{securetcp._tls._halfclose}) tells
#: apart, so that it need not import C{OpenSSL} itself.
TLSError = SSL.Error
WantReadError = SSL.WantReadError
ZeroReturnError = SSL.ZeroReturnError


@attrs.define
class ConnectionFacts:
    """
    What the verify callback and SNI learned about one connection, kept on
    the C{OpenSSL.SSL.Connection}'s app data (Twisted's TLS protocol).
    """

    role: Role
    verifyCode: Optional[int] = None
    verifyDepth: Optional[int] = None
    verifyMessage: str = ""
    weakKey: Optional[str] = None
    serverName: Optional[str] = None
    peerLeaf: Optional[x509.Certificate] = None
    revocationWarning: Optional[str] = None
    stapled: Optional[bytes] = None
    revokedCert: Optional[x509.Certificate] = None
    #: an exception in the verify callback (a bug): the certificate was rejected
    internalError: Optional[str] = None
    #: the certificates the verify callback accepted, by depth
    chain: Dict[int, x509.Certificate] = attrs.field(factory=dict)
    #: a certificate above the leaf matched a pin
    pinned: bool = False
    #: the verify step of the leaf decided the allow-list and pins: passed
    authorised: bool = False
    #: ... or refused, as C{(reason, detail)} (C{identity_not_allowed},
    #: C{pin_mismatch})
    refusal: Optional[Tuple[str, str]] = None

    def rejected(self, code: int, depth: int, message: str) -> int:
        """
        Record the first rejection of the chain (later ones say less), and
        return C{code}.
        """
        if self.verifyCode is None:
            self.verifyCode, self.verifyDepth, self.verifyMessage = code, depth, message
        return code


def connectionFacts(connection: Any) -> Optional[ConnectionFacts]:
    """
    The L{ConnectionFacts} recorded for an C{OpenSSL.SSL.Connection}.
    """
    if connection is None:
        return None
    facts = getattr(connection.get_app_data(), "securetcpFacts", None)
    return facts if isinstance(facts, ConnectionFacts) else None


def forgetFacts(tls: Any, role: Role) -> None:
    """
    The handshake over the TLS transport C{tls} was judged and its
    connection admitted: drop what its L{ConnectionFacts} hold.  A server
    drops them altogether: no verify step runs after the handshake
    (renegotiation is off, and a server asks for no post-handshake
    authentication), and nothing reads them once the connection is
    admitted.  A client keeps them, slimmed: they hold the OCSP staple the
    server sent.
    """
    if role is Role.SERVER and getattr(tls, "securetcpFacts", None) is not None:
        tls.securetcpFacts = None
        return
    facts = connectionFacts(tls.getHandle())
    if facts is not None:
        facts.chain.clear()
        facts.peerLeaf = None


@attrs.frozen
class NegotiatedSession:
    """
    What a completed handshake negotiated, and the peer's chain.
    """

    version: Optional[str]
    cipher: Optional[str]
    group: Optional[str]
    alpn: Optional[str]
    serverName: Optional[str]
    resumed: Optional[bool]
    peerChain: Tuple[x509.Certificate, ...]

    def asRecord(self) -> Dict[str, Any]:
        """
        The session facts as audit records name them, those not C{None}
        (read them with C{get}): a connection keeps this dict while it is
        open, and without the facts it lacks (commonly ALPN, or SNI) it
        fits the smallest dict.
        """
        record = {"version": self.version, "cipher": self.cipher, "group": self.group,
                  "alpn": self.alpn, "sni": self.serverName, "resumed": self.resumed}
        return {name: value for name, value in record.items() if value is not None}


#: the session record of a connection whose handshake has not completed
NO_SESSION: Mapping[str, Any] = MappingProxyType({})

#: one shared, read-only session record per distinct negotiated session
#: (L{sessionRecord}); bounded, since the SNI and ALPN come from the peer
_records: Dict[Tuple[Any, ...], Mapping[str, Any]] = {}
_RECORDS_BOUND = 1024


def sessionRecord(session: NegotiatedSession) -> Mapping[str, Any]:
    """
    C{session.asRecord()}, read-only and shared by every connection that
    negotiated the same (a server's connections mostly did): an idle
    connection holds no dict, and no version, cipher or group name, of its
    own.  Copy it to change it.
    """
    key = (session.version, session.cipher, session.group, session.alpn,
           session.serverName, session.resumed)
    record = _records.get(key)
    if record is None:
        if len(_records) >= _RECORDS_BOUND:
            _records.clear()
        record = _records[key] = MappingProxyType(session.asRecord())
    return record


def _peerChain(connection: SSL.Connection,
               facts: Optional[ConnectionFacts]) -> Tuple[x509.Certificate, ...]:
    if facts is not None and facts.chain and 0 in facts.chain:
        # the verify callback already saw (and converted) every certificate
        # of the verified chain, leaf at depth 0
        return tuple(map(facts.chain.__getitem__, sorted(facts.chain)))
    verified = connection.get_verified_chain(as_cryptography=True)
    if verified:
        return tuple(verified)
    # no verify step ran (a resumed session): the session carries the
    # peer's certificate, verified when it was made.  The chain OpenSSL
    # keeps is the one the peer sent (from a server's cache: without the
    # leaf, with whatever else the client sent, verified or not), so the
    # leaf alone is known
    if len(_leaves) >= _LEAVES_BOUND:
        _leaves.clear()
    try:
        leaf = _binding.peerCertificate(connection, _leaves)
    except (AttributeError, ValueError):  # pragma: no cover (no binding)
        leaf = connection.get_peer_certificate(as_cryptography=True)
    return (leaf,) if leaf is not None else ()


#: the peer certificates of resumed sessions, converted once each: by the
#: SHA-256 of their DER (a different certificate is converted afresh)
_leaves: Dict[bytes, x509.Certificate] = {}
_LEAVES_BOUND = 4096


def negotiated(connection: SSL.Connection,
               facts: Optional[ConnectionFacts] = None) -> NegotiatedSession:
    """
    Read what C{connection} negotiated (with its L{ConnectionFacts}, if the
    caller has them already).
    """
    if facts is None:
        facts = connectionFacts(connection)
    alpn = connection.get_alpn_proto_negotiated()
    getGroup = getattr(connection, "get_group_name", None)
    serverName = facts.serverName if facts else None
    if serverName is None and facts is not None and facts.role is Role.CLIENT:
        raw = connection.get_servername()
        serverName = raw.decode("ascii", "replace") if raw else None
    # positional (keywords to a class cost a dict per call): version,
    # cipher, group, alpn, serverName, resumed, peerChain
    return NegotiatedSession(
        connection.get_protocol_version_name(),
        connection.get_cipher_name(),
        getGroup() if getGroup else None,
        alpn.decode("utf-8", "replace") if alpn else None,
        serverName,
        _binding.sessionReused(connection),
        _peerChain(connection, facts),
    )


def partialSession(connection: SSL.Connection) -> Dict[str, Any]:
    """
    What a handshake that did not complete had agreed on, for the audit
    record of its rejection.
    """
    facts = connectionFacts(connection)
    try:
        return {
            "version": connection.get_protocol_version_name()
            if facts and facts.peerLeaf is not None else None,
            "cipher": connection.get_cipher_name(),
            "group": None,
            "alpn": None,
            "sni": facts.serverName if facts else None,
        }
    except Exception:  # pragma: no cover
        return {}


def lossReason(error: Optional[BaseException], connection: Any, firstByte: Optional[int],
               role: Role) -> Tuple[str, str]:
    """
    Why a connection ended before it reached the application, as
    C{(reason, detail)}: C{error} ended it, C{firstByte} is the first byte
    the peer sent (C{None}: nothing).
    """
    facts = connectionFacts(connection)
    verifyFailed = facts is not None and (facts.verifyCode is not None or bool(facts.weakKey))
    if firstByte is None:
        if verifyFailed:
            return classifyFailure(error, connection)
        return ("peer_closed", "the peer closed the connection before sending anything")
    if firstByte != 0x16 and role is Role.SERVER:
        return ("not_tls", f"the first byte was 0x{firstByte:02x}, not a TLS handshake record")
    if isinstance(error, (ConnectionDone, ConnectionLost)) and not verifyFailed:
        return ("peer_closed", "the peer closed the connection during the handshake")
    return classifyFailure(error, connection)


def tlsErrorDetail(error: Optional[BaseException]) -> Optional[str]:
    """
    OpenSSL's description of C{error} if it is a TLS error, else C{None}.
    """
    if isinstance(error, SSL.Error):
        return classifyFailure(error, None)[1]
    return None


def classifyFailure(error: Optional[BaseException], connection: Any) -> Tuple[str, str]:
    """
    Turn a handshake failure into C{(reason, detail)}, using what the verify
    callback recorded first (it knows more than the alert does).
    """
    facts = connectionFacts(connection)
    if facts is not None and facts.internalError:
        return ("internal_error", facts.internalError)
    if facts is not None and facts.refusal is not None:
        return facts.refusal
    if facts is not None and facts.weakKey:
        return ("weak_key", facts.weakKey)
    if facts is not None and facts.verifyCode is not None:
        return (reasonForVerifyCode(facts.verifyCode),
                f"{facts.verifyMessage} (X509 verify code {facts.verifyCode}, "
                f"depth {facts.verifyDepth})")
    if isinstance(error, SSL.Error):
        return _classifyTLSError(error)
    return ("peer_closed", str(error) or type(error).__name__)


def _classifyTLSError(error: SSL.Error) -> Tuple[str, str]:
    """
    C{(reason, detail)} of a TLS error: from the first of its OpenSSL error
    codes that L{reasonForErrorCode} knows; failing that (another library,
    a string table that cannot be read), from its text.
    """
    entries = [entry for entry in
               (error.args[0] if error.args and isinstance(error.args[0], list) else [])
               if isinstance(entry, tuple) and entry]
    text = "; ".join(str(entry[-1]) for entry in entries) or str(error)
    for entry in entries:
        code = _binding.errorCode(str(entry[0]), str(entry[-1]))
        reason = reasonForErrorCode(*code) if code is not None else None
        if reason is not None:
            return (reason, text)
    return (reasonForErrorString(text) or "internal_error", text)
