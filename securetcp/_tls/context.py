# -*- test-case-name: tests.test_materials,tests.test_verify,tests.test_endpoints -*-
"""
OpenSSL contexts from (policy, role, materials), with no I/O, and the
connection creators Twisted asks for a new C{OpenSSL.SSL.Connection} per
connection.

    materials = loadMaterials(policy, Role.SERVER)      # every file, read once
    creator = ServerConnectionCreator(policy, materials)
    GatedTLSFactory(creator, False, wrapped, reactor)

A context is never changed once a connection may use it.  A CRL reload
builds a new one from the same materials with new CRLs
(L{ConnectionCreator.prepareCRLs}, then L{ConnectionCreator.install}); an
explicit reload swaps in new policy and materials (L{ConnectionCreator.swap}).
Either way the creator's reference is swapped; open connections keep theirs.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import attrs
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from zope.interface import implementer

from securetcp._catalogue import TLSVersion
from securetcp._interfaces import ICRLTarget
from securetcp._tls import _binding
from securetcp._tls.session import connectionFacts
from securetcp._tls.verify import setVerify, verifyCheck
from securetcp.errors import PolicyError, UnsupportedByOpenSSLError
from securetcp.materials import Materials
from securetcp.policy import ClientAuth, Role, TLSPolicy
from securetcp.revocation.crl import CRLSet

#: OpenSSL's protocol version constants, by policy version.
PROTOCOLS = {
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


_groupAvailability: Dict[str, bool] = {}


def groupAvailable(name: str) -> bool:
    """
    Whether the linked OpenSSL implements the group C{name}.
    """
    if name not in _groupAvailability:
        scratch = SSL.Context(SSL.TLS_METHOD)
        _groupAvailability[name] = _binding.setGroups(scratch, name.encode("ascii"))
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
    for name in policy.ciphers.tls13:
        scratch = SSL.Context(SSL.TLS_METHOD)
        scratch.set_tls13_ciphersuites(name.encode("ascii"))
        if name not in SSL.Connection(scratch, None).get_cipher_list():
            raise UnsupportedByOpenSSLError(
                "ciphersuites", name,
                f"the linked {openSSLVersion()} does not offer this suite",
                "remove it from ciphersuites",
            )


# -- building a context: a function of (policy, role, materials) ------------


def buildContext(policy: TLSPolicy, role: Role, materials: Materials,
                 staple: Optional[Callable[[], bytes]] = None) -> SSL.Context:
    """
    Build the OpenSSL context for C{policy} in C{role} from C{materials}
    (L{securetcp.materials.loadMaterials}).  Reads no file: everything comes
    from C{materials}, except the system trust store (C{trust.system}),
    which OpenSSL itself looks up.

    @param staple: (servers) returns the DER OCSP response to staple now.
    @raise PolicyError: (or a subclass) naming what is wrong.
    """
    ctx = _protocolContext(policy, role)
    _useOwn(ctx, policy, materials)
    _useTrust(ctx, policy, materials)
    check = verifyCheck(policy, materials.crls if policy.revocation.crlEnabled else None)
    if role is Role.SERVER:
        _serverSide(ctx, policy, materials, check, staple)
    else:
        setVerify(ctx, SSL.VERIFY_PEER, check, policy.keys)
        if policy.revocation.ocspEnabled:
            ctx.set_ocsp_client_callback(_recordStaple)
        if policy.alpn:
            ctx.set_alpn_protos([p.encode("utf-8") for p in policy.alpn])
    return ctx


def _protocolContext(policy: TLSPolicy, role: Role) -> SSL.Context:
    """
    A context with the policy's versions, ciphers, suites and groups.
    """
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(PROTOCOLS[policy.versions.minimum])
    ctx.set_max_proto_version(PROTOCOLS[policy.versions.maximum])
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
    if not _binding.setGroups(ctx, ":".join(groups).encode("ascii")):  # pragma: no cover
        raise UnsupportedByOpenSSLError("groups", groups, "OpenSSL refused the group list",
                                        "check the group names")
    return ctx


def _useOwn(ctx: SSL.Context, policy: TLSPolicy, materials: Materials) -> None:
    """
    Our chain, key and DH parameters.
    """
    if materials.chain and materials.key is not None:
        ctx.use_certificate(crypto.X509.from_cryptography(materials.chain[0]))
        for extra in materials.chain[1:]:
            ctx.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(materials.key))  # type: ignore[arg-type]
        ctx.check_privatekey()
    if materials.dhParameters is not None and not _binding.useDHParameters(
            ctx, materials.dhParameters):
        raise PolicyError("dhParameters", policy.credentials.dhParameters,
                          "OpenSSL cannot use these DH parameters",
                          "make them with openssl dhparam -out dh.pem 2048")


def _useTrust(ctx: SSL.Context, policy: TLSPolicy, materials: Materials) -> None:
    """
    The trust anchors: the policy's CAs, and the system store if asked.
    """
    if materials.trust:
        store = ctx.get_cert_store()
        assert store is not None
        for ca in materials.trust:
            try:
                store.add_cert(crypto.X509.from_cryptography(ca))
            except crypto.Error:  # pragma: no cover
                pass  # the same CA twice
    if policy.trust.system:
        ctx.set_default_verify_paths()


_VERIFY_MODES = {
    ClientAuth.NONE: SSL.VERIFY_NONE,
    ClientAuth.OPTIONAL: SSL.VERIFY_PEER,
    ClientAuth.REQUIRED: SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
}


def _serverSide(ctx: SSL.Context, policy: TLSPolicy, materials: Materials, check: Any,
                staple: Optional[Callable[[], bytes]]) -> None:
    mode = _VERIFY_MODES[policy.peer.clientAuth]
    if mode == SSL.VERIFY_NONE:
        ctx.set_verify(mode, None)
    else:
        setVerify(ctx, mode, check, policy.keys)
    if materials.trust and policy.peer.clientAuth is not ClientAuth.NONE:
        ctx.set_client_ca_list([crypto.X509.from_cryptography(c).get_subject()
                                for c in materials.trust])
    _resumption(ctx, policy)
    ctx.set_tlsext_servername_callback(_recordServerName)
    if policy.alpn:
        ctx.set_alpn_select_callback(_alpnSelector(policy.alpn))
    if staple is not None:
        ctx.set_ocsp_server_callback(lambda conn, data: staple())


def _resumption(ctx: SSL.Context, policy: TLSPolicy) -> None:
    """
    How clients may resume: from sessions kept in this context's cache
    (clients hold only ids), from tickets holding the session encrypted
    under this context's key, or not at all.  A session resumes only on the context
    that made it: a reload puts a new one in force.
    """
    ctx.set_session_id(hashlib.sha256(repr(policy).encode()).hexdigest()[:32].encode())
    if policy.resumption == "off":
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_options(SSL.OP_NO_TICKET)
        return
    ctx.set_timeout(policy.resumptionLifetime)
    if policy.resumption == "cache":
        # TLS 1.3 tickets then hold session ids: no session is encrypted, but
        # each stays in memory, with the peer's certificates, until it
        # expires or OpenSSL's cache (20,480) is full
        ctx.set_options(SSL.OP_NO_TICKET)


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


# -- the connection creators ----------------------------------------------


@attrs.frozen
class PreparedCRLs:
    """
    A context built for new CRLs, not yet in force: what
    L{ConnectionCreator.prepareCRLs} returns and L{ConnectionCreator.install}
    takes.

    @ivar base: the materials in force when it was built.
    """

    base: Materials
    materials: Materials
    context: SSL.Context


@implementer(ICRLTarget)
class ConnectionCreator:
    """
    Holds the policy, the materials and the context new connections use,
    and makes a connection from that context per TLS connection.
    """

    def __init__(self, policy: TLSPolicy, role: Role, materials: Materials,
                 hostname: Optional[str] = None,
                 staple: Optional[Callable[[], bytes]] = None) -> None:
        self.role = role
        self.hostname = hostname
        self._staple = staple
        self.context = buildContext(policy, role, materials, staple)
        self.policy = policy
        self.materials = materials

    @property
    def crls(self) -> Optional[CRLSet]:
        """
        The CRLs in force.
        """
        return self.materials.crls

    def swap(self, policy: TLSPolicy, materials: Materials) -> None:
        """
        Build a context for C{policy} and C{materials} and use it for new
        connections; the old context stays with the connections using it.

        @raise PolicyError: and keep the current context, if building fails.
        """
        context = buildContext(policy, self.role, materials, self._staple)
        self.policy, self.materials, self.context = policy, materials, context

    def prepareCRLs(self, crls: CRLSet) -> PreparedCRLs:
        """
        Build (without installing) a context that uses C{crls} with the
        materials in force.  No I/O; safe off the reactor thread, since the
        new context is not shared yet.
        """
        base = self.materials
        materials = base.withCRLs(crls)
        return PreparedCRLs(base, materials,
                            buildContext(self.policy, self.role, materials, self._staple))

    def install(self, prepared: PreparedCRLs) -> None:
        """
        Use C{prepared} for new connections: one reference swap, on the
        reactor thread.  If the materials were reloaded meanwhile, the CRLs
        are put into the new ones (and the context built again).
        """
        if prepared.base is not self.materials:
            prepared = self.prepareCRLs(prepared.materials.crls)  # type: ignore[arg-type]
        self.materials, self.context = prepared.materials, prepared.context

    def _connection(self, tlsProtocol: object) -> SSL.Connection:
        # Twisted keeps the TLS protocol as the connection's app data; our
        # per-connection facts ride on that protocol (a GatedTLSProtocol)
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        return connection


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator(ConnectionCreator):
    """
    Server side: Twisted calls L{serverConnectionForTLS} per connection.
    """

    def __init__(self, policy: TLSPolicy, materials: Materials,
                 staple: Optional[Callable[[], bytes]] = None) -> None:
        super().__init__(policy, Role.SERVER, materials, staple=staple)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = self._connection(tlsProtocol)
        connection.set_accept_state()
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class ClientConnectionCreator(ConnectionCreator):
    """
    Client side: sends SNI for a DNS C{hostname}.
    """

    def __init__(self, policy: TLSPolicy, materials: Materials,
                 hostname: Optional[str]) -> None:
        super().__init__(policy, Role.CLIENT, materials, hostname)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = self._connection(tlsProtocol)
        if self.hostname and not isIP(self.hostname):
            connection.set_tlsext_host_name(self.hostname.encode("idna"))
        if self.policy.revocation.ocspEnabled:
            connection.request_ocsp()
        connection.set_connect_state()
        return connection


def isIP(text: str) -> bool:
    """
    Whether C{text} is an IPv4 or IPv6 address.
    """
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
