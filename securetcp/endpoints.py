# -*- test-case-name: tests.test_endpoints -*-
"""
Server and client endpoints that wrap any stream endpoint with a policy, and
the C{securessl:} / C{mtls:} endpoint-string parsers.

From Python::

    inner = TCP4ServerEndpoint(reactor, 6661, interface="127.0.0.1")
    endpoint = serverEndpoint(reactor, inner, policy, mutual=True)
    endpoint.listen(HL7Factory())

From a string (any Twisted application that takes endpoint strings)::

    serverFromString(reactor, "mtls:6661:certKey=server.pem:"
                              "privateKey=server.key:caCerts=devices-ca.pem")
    clientFromString(reactor, "securessl:host=lab.example:port=6661:"
                              "caCerts=ca.pem")

Every error in an endpoint string is raised when it is parsed, as
L{EndpointArgumentError}; a policy or file problem keeps its own type
(L{PolicyError} and subclasses, all L{ValueError}s).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from securetcp._tls._halfclose import GatedTLSProtocol
from securetcp._tls.context import ClientConnectionCreator, ServerConnectionCreator
from securetcp.audit.records import AuditEmitter, utcTimestamp
from securetcp.errors import PolicyError
from securetcp.gate import ClientGateFactory, GateFactory
from securetcp.policy import Role, TLSPolicy

_log = Logger(namespace="securetcp")


def _newId() -> str:
    import os

    return os.urandom(8).hex()


def describeEndpoint(endpoint: Any) -> str:
    """
    A short description of an inner endpoint for the audit log, without
    any secret.
    """
    port = getattr(endpoint, "_port", None)
    interface = getattr(endpoint, "_interface", None)
    kind = type(endpoint).__name__
    if port is not None:
        return f"{kind}(port={port}, interface={interface or '*'})"
    return kind


def _policyLoaded(emitter: AuditEmitter, clock: IReactorTime, policy: TLSPolicy,
                  role: Role, mutual: bool, endpoint: str) -> None:
    emitter.emit({
        "event": "policy.loaded",
        "time": utcTimestamp(clock.seconds()),
        "role": role.value,
        "policy": policy.name,
        "profile": policy.profile,
        "endpoint": endpoint,
        "mutual": mutual,
        "minVersion": policy.versions.minimum.value,
        "maxVersion": policy.versions.maximum.value,
        "ciphers": list(policy.ciphers.tls12),
        "ciphersuites": list(policy.ciphers.tls13),
        "clientAuth": policy.peer.clientAuth.value,
        "compliance": {"profile": "nist-800-52r2", "compliant": policy.compliant,
                       "reasons": [] if policy.compliant else
                       [f"policy from profile {policy.profile} goes beyond nist-800-52r2"]},
    })
    if policy.legacy:
        _log.warn(
            "securetcp: policy {name!r} uses the INSECURE legacy profile "
            "(TLS 1.0+, CBC ciphers); every connection is audited as "
            "non-compliant", name=policy.name)


@implementer(IStreamServerEndpoint)
class SecureServerEndpoint:
    """
    A server endpoint that speaks TLS under a L{TLSPolicy} on top of any
    inner stream server endpoint.  Build it with L{serverEndpoint}.

    The context is built (and every file read) when the endpoint is created,
    so configuration errors surface before anything listens.
    """

    def __init__(self, reactor: Any, inner: IStreamServerEndpoint, policy: TLSPolicy,
                 mutual: bool = False, clock: Optional[IReactorTime] = None,
                 emitter: Optional[AuditEmitter] = None, proxyProtocol: Optional[str] = None,
                 permissive: bool = False, insecurelyAllowPlaintext: bool = False) -> None:
        if proxyProtocol not in (None, "v1", "v2", "any"):
            raise PolicyError("proxyProtocol", proxyProtocol, "unknown PROXY protocol version",
                              "use v1, v2 or any")
        if permissive and policy.profile == "nist-800-52r2" and not insecurelyAllowPlaintext:
            raise PolicyError(
                "permissive", True,
                "permissive mode accepts unencrypted connections, which the nist-800-52r2 "
                "profile refuses", "add insecurelyAllowPlaintext=true to migrate on purpose")
        self.proxyProtocol = proxyProtocol
        self.permissive = permissive
        #: refuse (and audit) connections beyond these; None: no limit
        self.maxConnections: Optional[int] = None
        self.maxHandshakes: Optional[int] = None
        self._reactor = reactor
        self._inner = inner
        self.mutual = mutual
        self.policy = policy.requireFor(Role.SERVER, mutual)
        self.creator = ServerConnectionCreator(self.policy)
        self._clock: IReactorTime = clock or reactor
        self._emitter = emitter or AuditEmitter()
        self._watchers: list[Any] = []
        self._gates: list[GateFactory] = []
        #: how CRL files are parsed on reload: the reactor's thread pool by
        #: default; tests may set a direct call
        self._runInThread: Any = None
        #: how OCSP requests are sent: Twisted's HTTP client by default
        self.ocspPost: Any = None
        self.ocsp = _ocspChecker(self)
        self.stapler = None
        if self.policy.revocation.staple:
            self.stapler = _stapler(self)
            self.creator.useStapler(self.stapler.current)

    def _emitRecord(self, record: Dict[str, Any]) -> None:
        record.setdefault("time", utcTimestamp(self._clock.seconds()))
        record.setdefault("role", Role.SERVER.value)
        record.setdefault("policy", self.policy.name)
        record.setdefault("profile", self.policy.profile)
        self._emitter.emit(record)

    def reload(self, policy: TLSPolicy) -> None:
        """
        Use C{policy} (with freshly read certificates, keys, CAs and CRLs)
        for new connections; connections already open keep the context they
        started with.  Audited as C{policy.reloaded}.

        @raise PolicyError: and keep the running configuration (audited as
            C{policy.reload_refused}), if the new policy cannot be used.
        """
        before = self.creator.crls
        try:
            policy = policy.requireFor(Role.SERVER, self.mutual)
            self.creator.swap(policy)
        except PolicyError as e:
            self._emitter.emit({"event": "policy.reload_refused",
                                "time": utcTimestamp(self._clock.seconds()),
                                "role": Role.SERVER.value, "policy": self.policy.name,
                                "profile": self.policy.profile, "detail": str(e)})
            raise
        self.policy = policy
        for gate in self._gates:
            gate.policy = policy
        after = self.creator.crls
        if after is not None and (before is None or after.sources != before.sources):
            # the reload read newer CRLs before the CRL watcher did: say so,
            # and enforce them on live connections as the watcher would
            self._emitRecord({"event": "revocation.crl_loaded",
                              "files": [p for p, _ in after.sources],
                              "crls": len(after.crls), "revoked": len(after.revoked)})
            if policy.revocation.enforceOnLive:
                for gate in self._gates:
                    gate.revokeLive(after)
        self._emitter.emit({"event": "policy.reloaded",
                            "time": utcTimestamp(self._clock.seconds()),
                            "role": Role.SERVER.value, "policy": policy.name,
                            "profile": policy.profile,
                            "compliance": {"profile": "nist-800-52r2",
                                           "compliant": policy.compliant, "reasons": []}})

    def reloadCRLs(self) -> Deferred[bool]:
        """
        Re-read the CRL files now (as the periodic check does when they
        change) and swap them in if they verify.

        @return: fires with C{True} if new CRLs are in force, C{False} if
            they were refused (the previous ones stay; an audit event says
            why).
        """
        from twisted.internet.defer import gatherResults

        from securetcp.revocation.crl import CRLWatcher

        watchers = self._watchers or [CRLWatcher(self.creator, self._clock, self._emitRecord,
                                                 runInThread=self._runInThread)]
        return gatherResults([w.reload() for w in watchers]).addCallback(all)

    def wrapFactory(self, factory: IProtocolFactory) -> TLSMemoryBIOFactory:
        """
        The factory that puts TLS and the gate in front of C{factory}.
        """
        gate = GateFactory(factory, self.policy, Role.SERVER, self._clock, self._emitter)
        gate.creator = self.creator
        gate.ocsp = self.ocsp
        gate.stapler = self.stapler
        gate.maxConnections = self.maxConnections
        gate.maxHandshakes = self.maxHandshakes
        self._gates.append(gate)
        if self.policy.revocation.crlEnabled:
            from securetcp.revocation.crl import CRLWatcher

            gate.watcher = CRLWatcher(
                self.creator, self._clock, self._emitRecord, runInThread=self._runInThread,
                onReloaded=gate.revokeLive if self.policy.revocation.enforceOnLive else None)
            self._watchers.append(gate.watcher)
        tls = TLSMemoryBIOFactory(self.creator, False, gate, clock=self._clock)
        tls.protocol = GatedTLSProtocol
        return tls

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        _policyLoaded(self._emitter, self._clock, self.policy, Role.SERVER,
                      self.mutual, describeEndpoint(self._inner))
        factory: Any = self.wrapFactory(protocolFactory)
        if self.permissive:
            from securetcp._below.permissive import SniffingFactory

            factory = SniffingFactory(factory, protocolFactory, self._clock, self._preTLSAudit,
                                      self.policy.handshakeTimeout)
        if self.proxyProtocol is not None:
            from securetcp._below.proxyprotocol import ProxyHeaderFactory

            versions = ("v1", "v2") if self.proxyProtocol == "any" else (self.proxyProtocol,)
            factory = ProxyHeaderFactory(
                factory, versions, self._clock, self.policy.handshakeTimeout,
                lambda protocol, reason, detail: self._preTLSAudit(
                    protocol, "handshake.rejected", reason=reason, detail=detail))
        return self._inner.listen(factory)

    def _preTLSAudit(self, protocol: Any, event: str, **extra: Any) -> None:
        """
        Audit a connection decided before TLS: a bad PROXY header, or a
        plaintext connection in permissive mode.
        """
        from securetcp._below.proxyprotocol import proxiedBy
        from securetcp.audit.records import addressText as _address

        plaintext = getattr(protocol, "mode", None) == "plain"
        facts = protocol.__dict__
        if "auditLocal" not in facts:
            # remembered while the socket exists: the close comes after it
            facts["auditLocal"] = _address(protocol.getHost())
            facts["auditPeer"] = _address(protocol.getPeer())
            facts["auditProxy"] = getattr(protocol, "proxiedBy", None) or proxiedBy(protocol)
        record: Dict[str, Any] = {
            "event": event,
            "connection": facts.setdefault("connectionId", _newId()),
            "local": facts["auditLocal"],
            "peer": facts["auditPeer"],
            "proxy": facts["auditProxy"],
            "sni": None, "version": None, "cipher": None, "group": None, "alpn": None,
            "peerIdentity": None,
        }
        if plaintext:
            record["plaintext"] = True
            record["compliance"] = {
                "profile": "nist-800-52r2", "compliant": False,
                "reasons": ["plaintext: no TLS (permissive migration mode)"]}
        else:
            record["compliance"] = None
        record.update(extra)
        self._emitRecord(record)


@implementer(IStreamClientEndpoint)
class SecureClientEndpoint:
    """
    A client endpoint that connects over any inner stream client endpoint and
    verifies the server under a L{TLSPolicy}.  C{connect} fires with the
    application protocol only after the server is verified and authorised,
    or fails with L{securetcp.errors.HandshakeRejected}.
    """

    def __init__(self, reactor: Any, inner: IStreamClientEndpoint, policy: TLSPolicy,
                 hostname: Optional[str] = None, mutual: bool = False,
                 clock: Optional[IReactorTime] = None,
                 emitter: Optional[AuditEmitter] = None) -> None:
        self._reactor = reactor
        self._inner = inner
        self.mutual = mutual
        self.policy = policy.requireFor(Role.CLIENT, mutual)
        self.hostname = hostname or self.policy.peer.hostname
        self.creator = ClientConnectionCreator(self.policy, self.hostname)
        self._clock: IReactorTime = clock or reactor
        self._emitter = emitter or AuditEmitter()
        self.ocspPost: Any = None
        self.ocsp = _ocspChecker(self)

    def wrapFactory(
        self, protocolFactory: IProtocolFactory
    ) -> Tuple[TLSMemoryBIOFactory, ClientGateFactory]:
        """
        The factory that puts TLS and the gate in front of C{protocolFactory},
        and the gate factory (whose C{whenReady} fires with the application
        protocol once the server is verified).
        """
        gate = ClientGateFactory(protocolFactory, self.policy, Role.CLIENT, self._clock,
                                 self._emitter, hostname=self.hostname)
        gate.creator = self.creator
        gate.ocsp = self.ocsp
        tls = TLSMemoryBIOFactory(self.creator, True, gate, clock=self._clock)
        tls.protocol = GatedTLSProtocol
        return tls, gate

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        tls, gate = self.wrapFactory(protocolFactory)
        connecting = self._inner.connect(tls)
        tlsProtocol: Dict[str, Any] = {}

        def cancel(d: Deferred[IProtocol]) -> None:
            if "p" in tlsProtocol:
                tlsProtocol["p"].abortConnection()
            else:
                connecting.cancel()

        result: Deferred[IProtocol] = Deferred(cancel)

        def connected(p: Any) -> None:
            tlsProtocol["p"] = p

        def connectFailed(f: Any) -> None:
            if not result.called:
                result.errback(f)

        connecting.addCallbacks(connected, connectFailed)
        gate.whenReady.addCallbacks(
            lambda app: result.callback(app) if not result.called else None,
            lambda f: result.errback(f) if not result.called else None,
        )
        return result


class _LazyPost:
    """
    Sends OCSP requests with the endpoint's C{ocspPost} if a test set one,
    else with Twisted's HTTP client on the endpoint's reactor.
    """

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    def __call__(self, url: str, body: bytes, timeout: float) -> Any:
        post = self.endpoint.ocspPost
        if post is None:
            from securetcp.revocation.ocsp import httpPoster

            post = httpPoster(self.endpoint._reactor)
        return post(url, body, timeout)


def _ocspChecker(endpoint: Any) -> Any:
    revocation = endpoint.policy.revocation
    if not (revocation.ocspEnabled or revocation.staple):
        return None
    from securetcp.revocation.ocsp import OCSPChecker

    return OCSPChecker(endpoint._clock, _LazyPost(endpoint), revocation.ocspResponder,
                       revocation.ocspTimeout, revocation.ocspNonce)


def _stapler(endpoint: Any) -> Any:
    from securetcp.materials import loadCredentials
    from securetcp.revocation.ocsp import StapleFetcher, findIssuer

    policy = endpoint.policy
    own = loadCredentials(policy.credentials, policy.keys)
    leaf = own.chain[0]
    issuer = own.chain[1] if len(own.chain) > 1 else findIssuer(
        leaf, endpoint.creator.caCerts)
    if issuer is None:
        raise PolicyError("staple", True,
                          "stapling needs the certificate of the CA that issued ours",
                          "add it to extraCertChain (or after our certificate in certKey)")
    return StapleFetcher(leaf, issuer, endpoint.ocsp, endpoint._clock)


def serverEndpoint(reactor: Any, inner: IStreamServerEndpoint, policy: TLSPolicy, *,
                   mutual: bool = False, clock: Optional[IReactorTime] = None,
                   emitter: Optional[AuditEmitter] = None,
                   proxyProtocol: Optional[str] = None, permissive: bool = False,
                   insecurelyAllowPlaintext: bool = False) -> SecureServerEndpoint:
    """
    Wrap C{inner} with TLS under C{policy}; with C{mutual}, require and
    verify client certificates.

    @param proxyProtocol: C{"v1"}, C{"v2"} or C{"any"}: every connection
        starts with a PROXY header (read before TLS) naming the real client.
    @param permissive: also accept plaintext on the same port (migration
        mode; audited as non-compliant).  Under C{nist-800-52r2} it needs
        C{insecurelyAllowPlaintext=True} as well.
    @raise PolicyError: if the policy cannot serve (missing credentials or
        CA, unreadable files, ...).
    """
    return SecureServerEndpoint(reactor, inner, policy, mutual, clock, emitter, proxyProtocol,
                                permissive, insecurelyAllowPlaintext)


def clientEndpoint(reactor: Any, inner: IStreamClientEndpoint, policy: TLSPolicy, *,
                   hostname: Optional[str] = None, mutual: bool = False,
                   clock: Optional[IReactorTime] = None,
                   emitter: Optional[AuditEmitter] = None) -> SecureClientEndpoint:
    """
    Connect over C{inner} and verify the server under C{policy} (its
    certificate must be valid for C{hostname}); with C{mutual}, present our
    own certificate.
    """
    return SecureClientEndpoint(reactor, inner, policy, hostname, mutual, clock, emitter)
