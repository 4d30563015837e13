# -*- test-case-name: tests.test_verify,tests.test_endpoints,tests.test_profiles -*-
"""
The only module that touches C{OpenSSL.SSL}: builds one immutable context
per policy and role, and the connection creators Twisted asks for a new
C{OpenSSL.SSL.Connection} per connection.

    >>> creator = serverCreator(policy)          # builds and checks the context
    >>> TLSMemoryBIOFactory(creator, False, wrapped, clock=reactor)

A context is never changed once a connection may use it; a reload builds a
new one and swaps the creator's reference (L{ConnectionCreator.swap}).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.logger import Logger
from zope.interface import implementer

from securetcp._catalogue import TLSVersion
from securetcp._reasons import reasonForErrorString, reasonForVerifyCode
from securetcp.errors import PolicyError, UnsupportedByOpenSSLError
from securetcp.materials import certificateKeyProblem, loadCADir, loadCAFile, loadCredentials
from securetcp.policy import ClientAuth, Role, TLSPolicy

#: The TLS errors the TLS transport (L{securetcp.gate}) tells apart, so that
#: it need not import C{OpenSSL} itself.
TLSError = SSL.Error
WantReadError = SSL.WantReadError
ZeroReturnError = SSL.ZeroReturnError

_log = Logger(namespace="securetcp.context")

_PROTOCOL = {
    TLSVersion.TLSv1: SSL.TLS1_VERSION,
    TLSVersion.TLSv1_1: SSL.TLS1_1_VERSION,
    TLSVersion.TLSv1_2: SSL.TLS1_2_VERSION,
    TLSVersion.TLSv1_3: SSL.TLS1_3_VERSION,
}


def openSSLVersion() -> str:
    """
    The version string of the OpenSSL that pyOpenSSL is linked with.
    """
    return SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii")


# -- groups: pyOpenSSL has no public setter for a list of groups ----------


def _groupsSetter() -> Callable[[SSL.Context, bytes], int]:
    """
    The binding's C{SSL_CTX_set1_groups_list} (or its older alias
    C{SSL_CTX_set1_curves_list}).  This is the one place that reaches into
    pyOpenSSL's private binding.

    @raise UnsupportedByOpenSSLError: when neither is exposed.
    """
    try:
        from OpenSSL._util import lib  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover
        lib = None
    for name in ("SSL_CTX_set1_groups_list", "SSL_CTX_set1_curves_list"):
        function = getattr(lib, name, None)
        if function is not None:
            return lambda ctx, text: function(ctx._context, text)
    raise UnsupportedByOpenSSLError(
        "groups", None,
        "this pyOpenSSL/cryptography build exposes no way to set key-exchange "
        "groups",
        "install a pyOpenSSL and cryptography release listed in setup.cfg",
    )


_groupAvailability: Dict[str, bool] = {}


def groupAvailable(name: str) -> bool:
    """
    Whether the linked OpenSSL implements the group C{name}.
    """
    if name not in _groupAvailability:
        scratch = SSL.Context(SSL.TLS_METHOD)
        _groupAvailability[name] = _groupsSetter()(scratch, name.encode("ascii")) == 1
    return _groupAvailability[name]


def effectiveGroups(policy: TLSPolicy) -> Tuple[str, ...]:
    """
    The groups a context built from C{policy} offers, in order.

    @raise UnsupportedByOpenSSLError: when a required group is missing.
    """
    out = [g for g in policy.groups.optional if groupAvailable(g)]
    for name in policy.groups.required:
        if not groupAvailable(name):
            raise UnsupportedByOpenSSLError(
                "groups", name,
                f"the linked {openSSLVersion()} does not implement this group",
                "remove it from groups, or make it optional",
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _secLevel(policy: TLSPolicy) -> str:
    return ":@SECLEVEL=0" if policy.legacy else ":@SECLEVEL=2"


def _checkCiphers(policy: TLSPolicy) -> None:
    scratch = SSL.Context(SSL.TLS_METHOD)
    for name in policy.ciphers.tls12:
        try:
            scratch.set_cipher_list((name + _secLevel(policy)).encode("ascii"))
        except SSL.Error:
            raise UnsupportedByOpenSSLError(
                "ciphers", name,
                f"the linked {openSSLVersion()} does not offer this cipher",
                "remove it from ciphers",
            ) from None
    if policy.ciphers.tls13:
        for name in policy.ciphers.tls13:
            scratch = SSL.Context(SSL.TLS_METHOD)
            scratch.set_tls13_ciphersuites(name.encode("ascii"))
            names = SSL.Connection(scratch, None).get_cipher_list()
            if name not in names:
                raise UnsupportedByOpenSSLError(
                    "ciphersuites", name,
                    f"the linked {openSSLVersion()} does not offer this suite",
                    "remove it from ciphersuites",
                )


# -- per-connection facts ------------------------------------------------


@attrs.define
class ConnectionFacts:
    """
    What the verify callback and SNI learned about one connection, kept on
    the C{OpenSSL.SSL.Connection} as its app data.
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


#: X509 verify codes that mean "revocation status unknown" (no CRL for the
#: issuer, CRL expired or not yet valid): accepted with a warning under
#: revocation=soft.
_REVOCATION_UNKNOWN = (3, 11, 12)

_REVOKED = 23  # X509_V_ERR_CERT_REVOKED: the peer gets the certificate_revoked alert
_KEY_TOO_SMALL = (66, 67)  # X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_KEY_TOO_SMALL
_UNSPECIFIED = 1  # X509_V_ERR_UNSPECIFIED

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

    @classmethod
    def of(cls, certificate: x509.Certificate, strength: Any) -> SeenCertificate:
        return cls(certificate, certificate.issuer.public_bytes(), certificate.serial_number,
                   certificate.issuer == certificate.subject,
                   certificateKeyProblem(certificate, strength))


#: A verify check: C{(connection, seen, errno, depth, ok)} to C{None} (accept)
#: or the X509 verify code to reject the certificate with.
VerifyCheck = Callable[[SSL.Connection, SeenCertificate, int, int, int], Optional[int]]


def _verifyErrorString(code: int) -> str:
    try:
        from OpenSSL._util import ffi, lib  # type: ignore[attr-defined]

        return str(ffi.string(lib.X509_verify_cert_error_string(code)).decode("ascii", "replace"))
    except Exception:  # pragma: no cover
        return f"X509 verify code {code}"


def _verifyCallback(policy: TLSPolicy, crls: Any = None) -> VerifyCheck:
    """
    The verify check: records why OpenSSL rejected a certificate, checks key
    sizes, and checks revocation against C{crls} (a
    L{securetcp.revocation.CRLSet}) itself: a set lookup per certificate.
    OpenSSL's own CRL check would verify the CRL's signature again on every
    handshake (and re-read a large CRL entry by entry).  A rejection carries
    the X509 verify code, so the peer still gets the precise alert
    (C{certificate_revoked} for a revoked certificate).
    """
    soft = policy.revocation.mode == "soft"
    wholeChain = policy.revocation.scope == "chain"
    crlEnabled = policy.revocation.crlEnabled

    def fail(facts: Optional[ConnectionFacts], code: int, depth: int, message: str) -> int:
        if facts is not None and facts.verifyCode is None:
            facts.verifyCode, facts.verifyDepth, facts.verifyMessage = code, depth, message
        return code

    def revocation(facts: Optional[ConnectionFacts], seen: SeenCertificate,
                   depth: int) -> Optional[int]:
        if depth > 0 and (not wholeChain or seen.selfIssued):
            return None  # leaf scope, or the trust anchor itself
        if (seen.issuer, seen.serial) in crls.revoked:
            if facts is not None:
                facts.revokedCert = seen.certificate
            return fail(facts, _REVOKED, depth, "certificate revoked")
        problem = crls.issuerProblem(seen.issuer, time.time())
        if problem is None:
            return None
        why = {3: "no CRL for the issuer", 11: "the issuer's CRL is not yet valid",
               12: "the issuer's CRL has expired"}[problem]
        if soft:
            if facts is not None and facts.revocationWarning is None:
                facts.revocationWarning = (
                    f"revocation status unknown at depth {depth} (X509 verify code "
                    f"{problem}); {why}; accepted under revocation=soft")
            return None
        return fail(facts, problem, depth, why)

    def verify(conn: SSL.Connection, seen: SeenCertificate, errno: int, depth: int,
               ok: int) -> Optional[int]:
        facts = connectionFacts(conn)
        if facts is not None:
            facts.chain[depth] = seen.certificate
            if depth == 0 and facts.peerLeaf is None:
                facts.peerLeaf = seen.certificate
        if not ok:
            if soft and errno in _REVOCATION_UNKNOWN and crlEnabled:
                if facts is not None and facts.revocationWarning is None:
                    facts.revocationWarning = (
                        f"revocation status unknown at depth {depth} (X509 verify code "
                        f"{errno}); accepted under revocation=soft")
                return None
            return fail(facts, errno, depth, _verifyErrorString(errno))
        if seen.keyProblem:
            if facts is not None and facts.weakKey is None:
                facts.weakKey = f"certificate at depth {depth}: {seen.keyProblem}"
            return _KEY_TOO_SMALL[min(depth, 1)]
        if crls is not None:
            return revocation(facts, seen, depth)
        return None

    return verify


def _verifyBinding() -> Tuple[Any, ...]:
    """
    What L{_setVerify} needs from pyOpenSSL's binding.

    @raise AttributeError: (or C{ImportError}) if any piece is missing.
    """
    from OpenSSL._util import ffi, lib  # type: ignore[attr-defined]

    return (ffi, SSL.Connection._reverse_mapping,  # type: ignore[attr-defined]
            lib.SSL_get_ex_data_X509_STORE_CTX_idx(), lib.EVP_get_digestbyname(b"sha256"),
            lib.X509_STORE_CTX_get_ex_data, lib.X509_STORE_CTX_get_current_cert,
            lib.X509_STORE_CTX_get_error, lib.X509_STORE_CTX_get_error_depth,
            lib.X509_STORE_CTX_set_error, lib.X509_digest, lib.X509_up_ref,
            crypto.X509._from_raw_x509_ptr,  # type: ignore[attr-defined]
            lib.SSL_CTX_set_verify, lib.X509_V_OK)


def _setVerify(ctx: SSL.Context, mode: int, check: VerifyCheck, strength: Any) -> None:
    """
    Make C{check} the verify callback of C{ctx}.

    pyOpenSSL's C{set_verify} cannot tell OpenSSL I{why} a certificate was
    rejected (the peer would get a generic alert), and converts every
    certificate of every handshake.  So the callback is installed through
    the binding: it sets the X509 verify code of a rejection (hence the
    alert), and keeps the conversion of each certificate it has seen.  Falls
    back to C{set_verify} if the binding lacks what it needs.
    """
    try:
        (ffi, reverse, index, sha256, getData, getCert, getError, getDepth, setError, digest,
         upRef, fromPointer, setVerify, verifyOK) = _verifyBinding()
    except (ImportError, AttributeError):
        def adapter(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int,
                    ok: int) -> bool:
            seen = SeenCertificate.of(cert.to_cryptography(), strength)
            return check(conn, seen, errno, depth, ok) is None

        ctx.set_verify(mode, adapter)
        return

    cache: Dict[bytes, SeenCertificate] = {}

    def callback(ok: int, store: Any) -> int:
        try:
            conn = reverse[getData(store, index)]
            x509Pointer = getCert(store)
            if x509Pointer == ffi.NULL:
                # no certificate to judge (OpenSSL names none for some chain
                # errors): keep OpenSSL's verdict, and never accept unseen
                errno = getError(store)
                code = errno if not ok and errno else _UNSPECIFIED
                facts = connectionFacts(conn)
                if facts is not None and facts.verifyCode is None:
                    facts.verifyCode, facts.verifyDepth = code, getDepth(store)
                    facts.verifyMessage = _verifyErrorString(code)
                setError(store, code)
                return 0
            out, size = ffi.new("unsigned char[64]"), ffi.new("unsigned int *")
            if digest(x509Pointer, sha256, out, size) != 1:
                raise ValueError("X509_digest failed")
            key = bytes(ffi.buffer(out, size[0]))
            seen = cache.get(key)
            if seen is None:
                upRef(x509Pointer)
                seen = SeenCertificate.of(fromPointer(x509Pointer).to_cryptography(), strength)
                if len(cache) >= VERIFY_CACHE_SIZE:
                    cache.clear()
                cache[key] = seen
            code = check(conn, seen, getError(store), getDepth(store), ok)
        except Exception as e:  # never let an exception cross into OpenSSL
            code = _UNSPECIFIED
            _log.failure("securetcp's certificate verify callback failed; the "
                         "certificate is rejected")
            facts = connectionFacts(reverse.get(getData(store, index)))
            if facts is not None and facts.verifyCode is None:
                facts.verifyCode, facts.verifyDepth = code, getDepth(store)
                facts.internalError = f"internal error in the verify callback: {e!r}"
                facts.verifyMessage = facts.internalError
        if code is None:
            setError(store, verifyOK)
            return 1
        setError(store, code)
        return 0

    raw = ffi.callback("int (*)(int, X509_STORE_CTX *)", callback)
    ctx._securetcpVerify = raw  # type: ignore[attr-defined]  # lives as long as ctx
    setVerify(ctx._context, mode, raw)  # type: ignore[attr-defined]


def loadTrust(policy: TLSPolicy) -> List[x509.Certificate]:
    """
    The CA certificates of C{policy}'s C{caCerts} file and C{caCertsDir}.
    """
    caCerts: List[x509.Certificate] = []
    if policy.trust.caFile:
        caCerts = loadCAFile(policy.trust.caFile)
    if policy.trust.caDir:
        caCerts = caCerts + loadCADir(policy.trust.caDir)
    return caCerts


def buildContext(policy: TLSPolicy, role: Role, crls: Any = None,
                 caCerts: Optional[List[x509.Certificate]] = None,
                 staple: Optional[Callable[[], bytes]] = None) -> SSL.Context:
    """
    Build the OpenSSL context for C{policy} in C{role}.  Loads and checks
    every file the policy names.

    @param crls: the L{securetcp.revocation.CRLSet} to use; loaded from the
        policy's files when C{None} and revocation is enabled.
    @param caCerts: the already loaded CA certificates, if any.
    @param staple: (servers) returns the DER OCSP response to staple now.
    @raise PolicyError: (or a subclass) naming what is wrong.
    """
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(_PROTOCOL[policy.versions.minimum])
    ctx.set_max_proto_version(_PROTOCOL[policy.versions.maximum])
    options = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
    if role is Role.SERVER:
        options |= SSL.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_options(options)
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)

    _checkCiphers(policy)
    cipherList = ":".join(policy.ciphers.tls12) or "ECDHE-ECDSA-AES128-GCM-SHA256"
    ctx.set_cipher_list((cipherList + _secLevel(policy)).encode("ascii"))
    ctx.set_tls13_ciphersuites(":".join(policy.ciphers.tls13).encode("ascii"))
    groups = effectiveGroups(policy)
    if _groupsSetter()(ctx, ":".join(groups).encode("ascii")) != 1:  # pragma: no cover
        raise UnsupportedByOpenSSLError("groups", groups, "OpenSSL refused the group list",
                                        "check the group names")

    if policy.credentials.configured:
        own = loadCredentials(policy.credentials, policy.keys)
        ctx.use_certificate(crypto.X509.from_cryptography(own.chain[0]))
        for extra in own.chain[1:]:
            ctx.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(own.key))  # type: ignore[arg-type]
        ctx.check_privatekey()
    if policy.credentials.dhParameters:
        from securetcp.materials import _read

        _read("dhParameters", policy.credentials.dhParameters, "DH parameters")
        try:
            ctx.load_tmp_dh(policy.credentials.dhParameters.encode())
        except SSL.Error:
            raise PolicyError("dhParameters", policy.credentials.dhParameters,
                              "not a PEM DH parameters file",
                              "make one with openssl dhparam -out dh.pem 2048") from None

    trust = policy.trust
    if caCerts is None:
        caCerts = loadTrust(policy)
    if trust.caFile or trust.caDir:
        store = ctx.get_cert_store()
        assert store is not None
        for ca in caCerts:
            try:
                store.add_cert(crypto.X509.from_cryptography(ca))
            except crypto.Error:  # pragma: no cover
                pass  # the same CA twice
    if trust.system:
        ctx.set_default_verify_paths()
    if policy.revocation.crlEnabled and crls is None:
        from securetcp.revocation.crl import loadCRLs

        crls = loadCRLs(policy.revocation, caCerts, hard=policy.revocation.mode == "hard")

    verifyCRLs = crls if policy.revocation.crlEnabled else None
    verify = _verifyCallback(policy, verifyCRLs)
    if role is Role.SERVER:
        mode = {
            ClientAuth.NONE: SSL.VERIFY_NONE,
            ClientAuth.OPTIONAL: SSL.VERIFY_PEER,
            ClientAuth.REQUIRED: SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
        }[policy.peer.clientAuth]
        if mode == SSL.VERIFY_NONE:
            ctx.set_verify(mode, None)
        else:
            _setVerify(ctx, mode, verify, policy.keys)
        if caCerts and policy.peer.clientAuth is not ClientAuth.NONE:
            ctx.set_client_ca_list([crypto.X509.from_cryptography(c).get_subject() for c in caCerts])
        ctx.set_session_id(hashlib.sha256(repr(policy).encode()).hexdigest()[:32].encode())
        ctx.set_tlsext_servername_callback(_recordServerName)
        if policy.alpn:
            ctx.set_alpn_select_callback(_alpnSelector(policy.alpn))
        if staple is not None:
            ctx.set_ocsp_server_callback(lambda conn, data: staple())
    else:
        _setVerify(ctx, SSL.VERIFY_PEER, verify, policy.keys)
        if policy.revocation.ocspEnabled:
            ctx.set_ocsp_client_callback(_recordStaple)
        if policy.alpn:
            ctx.set_alpn_protos([p.encode("utf-8") for p in policy.alpn])
    return ctx


def _recordStaple(conn: SSL.Connection, response: bytes, data: Any) -> bool:
    # judged by the gate once the chain is known; an absent staple is b""
    facts = connectionFacts(conn)
    if facts is not None:
        facts.stapled = response or None
    return True


def _recordServerName(conn: SSL.Connection) -> None:
    facts = connectionFacts(conn)
    name = conn.get_servername()
    if facts is not None and name:
        facts.serverName = name.decode("ascii", "replace")


def _alpnSelector(protocols: Sequence[str]) -> Callable[[SSL.Connection, List[bytes]], Any]:
    ours = [p.encode("utf-8") for p in protocols]

    def select(conn: SSL.Connection, offered: List[bytes]) -> Any:
        for p in ours:
            if p in offered:
                return p
        return SSL.NO_OVERLAPPING_PROTOCOLS

    return select


class ConnectionCreator:
    """
    Holds the current context for one policy and role and makes a
    connection from it per TLS connection.
    """

    def __init__(self, policy: TLSPolicy, role: Role, hostname: Optional[str] = None,
                 staple: Optional[Callable[[], bytes]] = None) -> None:
        self.policy = policy
        self.role = role
        self.hostname = hostname
        self.staple = staple
        self.caCerts, self.crls = self._load(policy)
        self.context = buildContext(policy, role, self.crls, self.caCerts, staple)

    @staticmethod
    def _load(policy: TLSPolicy, previous: Any = None) -> Tuple[List[x509.Certificate], Any]:
        caCerts = loadTrust(policy)
        crls = None
        if policy.revocation.crlEnabled:
            from securetcp.revocation.crl import loadCRLs

            # on reload, the CRLs in force are the predecessors: a replayed
            # older CRL that the CRL watcher refused is refused here too
            crls = loadCRLs(policy.revocation, caCerts, previous=previous,
                            hard=policy.revocation.mode == "hard")
        return caCerts, crls

    def swap(self, policy: TLSPolicy) -> None:
        """
        Build a context for C{policy} and use it for new connections; the
        old context stays with the connections already using it.

        @raise PolicyError: and keep the current context, if building fails.
        """
        caCerts, crls = self._load(policy, previous=self.crls)
        context = buildContext(policy, self.role, crls, caCerts, self.staple)
        self.policy, self.context, self.caCerts, self.crls = policy, context, caCerts, crls

    def contextFor(self, crls: Any) -> SSL.Context:
        """
        Build (without installing) a context that uses C{crls}.  Safe to call
        off the reactor thread: the new context is not shared yet.
        """
        return buildContext(self.policy, self.role, crls, self.caCerts, self.staple)

    def install(self, context: SSL.Context, crls: Any) -> None:
        """
        Use C{context} (built by L{contextFor} for C{crls}) for new
        connections: one reference swap, on the reactor thread.
        """
        self.context, self.crls = context, crls

    def useStapler(self, staple: Callable[[], bytes]) -> None:
        """
        Staple what C{staple()} returns: rebuilds the context with the OCSP
        server callback.
        """
        self.staple = staple
        self.context = buildContext(self.policy, self.role, self.crls, self.caCerts, staple)

    def _connection(self, tlsProtocol: object) -> SSL.Connection:
        # Twisted keeps the TLS protocol as the connection's app data; our
        # per-connection facts ride on that protocol.
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        try:
            tlsProtocol.securetcpFacts = ConnectionFacts(self.role)  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover
            pass
        return connection


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator(ConnectionCreator):
    """
    Server side: Twisted calls L{serverConnectionForTLS} per connection.
    """

    def __init__(self, policy: TLSPolicy, staple: Optional[Callable[[], bytes]] = None) -> None:
        super().__init__(policy, Role.SERVER, staple=staple)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = self._connection(tlsProtocol)
        connection.set_accept_state()
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class ClientConnectionCreator(ConnectionCreator):
    """
    Client side: sends SNI for a DNS C{hostname}.
    """

    def __init__(self, policy: TLSPolicy, hostname: Optional[str]) -> None:
        super().__init__(policy, Role.CLIENT, hostname)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = self._connection(tlsProtocol)
        if self.hostname and not _isIP(self.hostname):
            connection.set_tlsext_host_name(self.hostname.encode("idna"))
        if self.policy.revocation.ocspEnabled:
            connection.request_ocsp()
        connection.set_connect_state()
        return connection


def _isIP(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# -- reading a finished (or failed) handshake ---------------------------


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


def connectionFacts(connection: Any) -> Optional[ConnectionFacts]:
    """
    The L{ConnectionFacts} recorded for an C{OpenSSL.SSL.Connection}.
    """
    if connection is None:
        return None
    facts = getattr(connection.get_app_data(), "securetcpFacts", None)
    return facts if isinstance(facts, ConnectionFacts) else None


def negotiated(connection: SSL.Connection) -> NegotiatedSession:
    """
    Read what C{connection} negotiated.
    """
    facts = connectionFacts(connection)
    chain: Tuple[x509.Certificate, ...] = ()
    if facts is not None and facts.chain and 0 in facts.chain:
        # the verify callback already saw (and converted) every certificate
        # of the verified chain, leaf at depth 0
        chain = tuple(facts.chain[d] for d in sorted(facts.chain))
        verified = None
    else:
        verified = connection.get_verified_chain(as_cryptography=True)
    if chain:
        pass
    elif verified:
        chain = tuple(verified)
    else:
        presented = connection.get_peer_cert_chain(as_cryptography=True)
        chain = tuple(presented or ())
    alpn = connection.get_alpn_proto_negotiated()
    getGroup = getattr(connection, "get_group_name", None)
    serverName = facts.serverName if facts else None
    if serverName is None and facts is not None and facts.role is Role.CLIENT:
        raw = connection.get_servername()
        serverName = raw.decode("ascii", "replace") if raw else None
    return NegotiatedSession(
        version=connection.get_protocol_version_name(),
        cipher=connection.get_cipher_name(),
        group=getGroup() if getGroup else None,
        alpn=alpn.decode("utf-8", "replace") if alpn else None,
        serverName=serverName,
        resumed=_sessionReused(connection),
        peerChain=chain,
    )


def _sessionReused(connection: SSL.Connection) -> Optional[bool]:
    try:
        from OpenSSL._util import lib  # type: ignore[attr-defined]

        return bool(lib.SSL_session_reused(connection._ssl))  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover
        return None


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
    if facts is not None and facts.weakKey:
        return ("weak_key", facts.weakKey)
    if facts is not None and facts.verifyCode is not None:
        return (reasonForVerifyCode(facts.verifyCode),
                f"{facts.verifyMessage} (X509 verify code {facts.verifyCode}, "
                f"depth {facts.verifyDepth})")
    if isinstance(error, SSL.Error):
        texts = []
        for entry in error.args[0] if error.args and isinstance(error.args[0], list) else []:
            if isinstance(entry, tuple) and entry:
                texts.append(str(entry[-1]))
        text = "; ".join(texts) or str(error)
        return (reasonForErrorString(text) or "internal_error", text)
    return ("peer_closed", str(error) or type(error).__name__)


# -- probing a live server (python -m securetcp probe) -------------------


@attrs.frozen
class ProbedHandshake:
    """
    One client handshake made by L{probeHandshake}: what it negotiated,
    what the server presented and asked for.
    """

    connected: bool
    error: Optional[str]
    offered: bool
    version: Optional[str]
    cipher: Optional[str]
    group: Optional[str]
    chain: Tuple[x509.Certificate, ...]
    verifyError: Optional[str]
    clientCertRequested: bool
    ocspStapled: bool


def probeHandshake(host: str, port: int, *, serverName: Optional[str] = None,
                   caFile: Optional[str] = None, certFile: Optional[str] = None,
                   keyFile: Optional[str] = None, versions: Optional[Tuple[TLSVersion,
                                                                           TLSVersion]] = None,
                   cipherList: str = "DEFAULT:@SECLEVEL=0",
                   timeout: float = 10.0) -> ProbedHandshake:
    """
    Make one blocking client handshake with C{host:port}, offering
    C{versions} (default: everything the linked OpenSSL can) and
    C{cipherList} for TLS 1.2 and older.  The chain is verified against
    C{caFile} (default: the system store) but a failure is recorded, not
    fatal, so that what the server presented can still be reported.
    Meant for the C{probe} command, never for serving connections.
    """
    import select
    import socket

    ctx = SSL.Context(SSL.TLS_METHOD)
    low, high = versions or (TLSVersion.TLSv1, TLSVersion.TLSv1_3)
    ctx.set_min_proto_version(_PROTOCOL[low])
    ctx.set_max_proto_version(_PROTOCOL[high])
    ctx.set_cipher_list(cipherList.encode("ascii"))
    if caFile:
        ctx.load_verify_locations(caFile)
    else:
        ctx.set_default_verify_paths()
    if certFile:
        ctx.use_certificate_chain_file(certFile)
        ctx.use_privatekey_file(keyFile or certFile)
    verifyErrors: List[str] = []

    def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int,
               ok: int) -> bool:
        if not ok and not verifyErrors:
            from OpenSSL._util import ffi, lib  # type: ignore[attr-defined]

            text = ffi.string(lib.X509_verify_cert_error_string(errno)).decode("ascii")
            verifyErrors.append(f"{text} (X509 verify code {errno}, depth {depth})")
        return True

    ctx.set_verify(SSL.VERIFY_PEER, verify)
    stapled: List[bool] = []

    def ocsp(conn: SSL.Connection, data: bytes, _: Any) -> bool:
        stapled.append(bool(data))
        return True

    ctx.set_ocsp_client_callback(ocsp)
    requested: List[bool] = []

    def info(conn: SSL.Connection, where: int, ret: int) -> None:
        if b"certificate request" in conn.get_state_string():
            requested.append(True)

    sock = socket.create_connection((host, port), timeout=timeout)
    conn = SSL.Connection(ctx, sock)
    conn.set_info_callback(info)
    name = serverName or (None if _isIP(host) else host)
    if name:
        conn.set_tlsext_host_name(name.encode("idna"))
    conn.request_ocsp()
    conn.set_connect_state()
    error: Optional[str] = None
    try:
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                if not select.select([sock], [], [], timeout)[0]:
                    raise TimeoutError("no answer from the server") from None
    except SSL.Error as e:
        error = classifyFailure(e, None)[1]
    except OSError as e:
        error = str(e) or type(e).__name__
    connected = error is None
    offered = not (error and ("no protocols available" in error
                              or "no ciphers available" in error))
    chain = tuple(conn.get_peer_cert_chain(as_cryptography=True) or ())
    result = ProbedHandshake(
        connected=connected, error=error, offered=offered,
        version=conn.get_protocol_version_name() if connected else None,
        cipher=conn.get_cipher_name() if connected else None,
        group=conn.get_group_name() if connected else None,
        chain=chain, verifyError=verifyErrors[0] if verifyErrors else None,
        clientCertRequested=bool(requested), ocspStapled=any(stapled),
    )
    try:
        if connected:
            conn.shutdown()
    except (SSL.Error, OSError):
        pass
    sock.close()
    return result
