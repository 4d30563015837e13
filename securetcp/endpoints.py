# -*- test-case-name: tests.test_endpoints,tests.test_materials,tests.test_limits,tests.test_listenaudit -*-
"""
Server and client endpoints that wrap any stream endpoint with a policy
(the C{securessl:} / C{mtls:} strings build them: L{securetcp._parsers}).

    inner = TCP4ServerEndpoint(reactor, 6661, interface="127.0.0.1")
    endpoint = serverEndpoint(reactor, inner, policy, mutual=True,
                              limits=Limits(maxConnections=1000))
    endpoint.listen(HL7Factory())
    ...
    endpoint.reload()          # certificates, keys, CAs, CRLs read again

An endpoint reads the policy's files once, when it is built
(L{securetcp.materials.loadMaterials}); a configuration error is a
L{PolicyError} (a L{ValueError}) naming the file and the fix.  It builds its
collaborators from the policy (connection creator, OCSP checker, staple
fetcher, CRL watcher) and hands them to each gate it makes; what it is given
(audit sink, clock, limits, thread runner, OCSP poster) comes in through its
constructor.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from zope.interface import implementer

from securetcp._below._audit import PreTLSAudit
from securetcp._filewatch import CredentialWatcher, credentialFiles, reloadInterval
from securetcp._interfaces import IAuditSink, IGateMetrics, IStapler
from securetcp._tls._halfclose import GatedTLSFactory
from securetcp._tls.context import ClientConnectionCreator, ServerConnectionCreator
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.records import (
    crlLoaded,
    policyLoaded,
    policyReloaded,
    policyReloadRefused,
)
from securetcp.errors import PolicyError
from securetcp.gate import ClientGateFactory, GateFactory, Limits
from securetcp.materials import Materials, loadMaterials
from securetcp.policy import Role, TLSPolicy
from securetcp.revocation.crl import CRLSet
from securetcp.revocation.crlreload import CRLWatcher, reactorThreads
from securetcp.revocation.ocsp import OCSPChecker, Poster, StapleFetcher, checkerFor, httpPoster

__all__ = ["Limits", "SecureClientEndpoint", "SecureServerEndpoint", "clientEndpoint",
           "describeEndpoint", "serverEndpoint"]

_log = Logger(namespace="securetcp")


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


def _policyLoaded(port: Any, emitter: IAuditSink, clock: IReactorTime, policy: TLSPolicy,
                  role: Role, mutual: bool, endpoint: str, leaf: Any = None) -> Any:
    """
    Audit C{policy.loaded} once C{port} listens; give C{port} back.
    """
    emitter.emit(policyLoaded(policy, role, mutual, endpoint, clock.seconds(), leaf))
    if policy.legacy:
        _log.warn(
            "securetcp: policy {name!r} uses the INSECURE legacy profile "
            "(TLS 1.0+, CBC ciphers); every connection is audited as "
            "non-compliant", name=policy.name)
    return port


@implementer(IStreamServerEndpoint)
class SecureServerEndpoint:
    """
    A server endpoint that speaks TLS under a L{TLSPolicy} on top of any
    inner stream server endpoint.  Build it with L{serverEndpoint}.

    Every file the policy names is read when the endpoint is created (once:
    L{securetcp.materials.loadMaterials}), so configuration errors surface
    before anything listens.  Only L{reload} reads them again; a CRL reload
    reads the CRL files only.
    """

    def __init__(self, reactor: Any, inner: IStreamServerEndpoint, policy: TLSPolicy,
                 mutual: bool = False, clock: Optional[IReactorTime] = None,
                 emitter: Optional[IAuditSink] = None, proxyProtocol: Optional[str] = None,
                 permissive: bool = False, insecurelyAllowPlaintext: bool = False, *,
                 limits: Limits = Limits(),
                 rereadPolicy: Optional[Callable[[], TLSPolicy]] = None,
                 runInThread: Optional[Callable[..., Deferred[Any]]] = None,
                 ocspPost: Optional[Poster] = None,
                 stapler: Optional[IStapler] = None,
                 reloadPoll: Optional[float] = None) -> None:
        """
        @param limits: refuse (and audit) connections beyond these.
        @param reloadPoll: (C{reload=watch}) watch the certificate, key and
            CA files while a port listens, polling every C{reloadPoll}
            seconds (and with inotify), and L{reload} when they changed.
        @param rereadPolicy: reads the policy again for L{reload} (the
            endpoint-string parser passes one that re-reads the policy
            file and applies the string's arguments); without it, a reload
            re-reads the files of the policy in force.
        @param runInThread: how CRL files are parsed on reload: the
            reactor's thread pool by default (a direct call in tests).
        @param ocspPost: how OCSP requests are sent: Twisted's HTTP client
            on C{reactor} by default.
        @param stapler: what to staple instead of fetching our own OCSP
            response (tests).
        """
        _checkBelowTLS(policy, proxyProtocol, permissive, insecurelyAllowPlaintext)
        self.proxyProtocol = proxyProtocol
        self.permissive = permissive
        self.limits = limits
        self._reactor = reactor
        self._inner = inner
        self.mutual = mutual
        self._clock: IReactorTime = clock or reactor
        self._emitter: IAuditSink = emitter or AuditEmitter()
        self._rereadPolicy = rereadPolicy
        #: the thread runner given (C{None}: the reactor's thread pool)
        self._runInThread = runInThread
        policy = policy.requireFor(Role.SERVER, mutual)
        materials = loadMaterials(policy, Role.SERVER)
        self.ocsp = checkerFor(policy.revocation, self._clock, ocspPost or httpPoster(reactor))
        self.stapler = stapler or _stapler(materials, self.ocsp, self._clock)
        self.creator = ServerConnectionCreator(
            policy, materials, staple=self.stapler.current if self.stapler else None)
        self.crlWatcher: Optional[CRLWatcher] = None
        if policy.revocation.crlEnabled:
            self.crlWatcher = CRLWatcher(self.creator, self._clock, self._emitter.emit,
                                         runInThread=runInThread or reactorThreads(reactor),
                                         onReloaded=self._revokeLive)
        self._gates: List[GateFactory] = []
        self.metrics: Optional[IGateMetrics] = None
        self.credentialWatcher: Optional[CredentialWatcher] = None
        if reloadPoll is not None:
            self.credentialWatcher = CredentialWatcher(
                reactor, lambda: credentialFiles(self.policy), self.reload, reloadPoll)

    def observe(self, metrics: IGateMetrics,
                sink: Optional[Callable[[IAuditSink], IAuditSink]] = None) -> None:
        """
        Count the connections of the next L{listen} with C{metrics} (see
        L{securetcp.metrics}), and send its audit records through
        C{sink(the audit sink)} (e.g. a L{securetcp.metrics.CountingSink}).
        """
        self.metrics = metrics
        if sink is not None:
            self._emitter = sink(self._emitter)

    @property
    def policy(self) -> TLSPolicy:
        """
        The policy in force (L{reload} changes it).
        """
        return self.creator.policy

    def reload(self, policy: Optional[TLSPolicy] = None) -> None:
        """
        Read the policy's files again (certificates, keys, CAs, CRLs, DH
        parameters) and use them with C{policy} for new connections;
        connections already open keep the context they started with.
        Audited as C{policy.reloaded}, naming what changed and the SHA-256
        fingerprints of the certificate before and after.

        @param policy: the new policy; by default the policy is read again
            (C{rereadPolicy}), or the one in force is kept.
        @raise PolicyError: and keep the running configuration (audited as
            C{policy.reload_refused}), if the new policy cannot be used.
        """
        before, oldPolicy = self.creator.materials, self.creator.policy
        try:
            if policy is None:
                policy = self._rereadPolicy() if self._rereadPolicy else oldPolicy
            policy = policy.requireFor(Role.SERVER, self.mutual)
            materials = loadMaterials(policy, Role.SERVER, previous=before)
            self.creator.swap(policy, materials)
        except PolicyError as e:
            self._emitter.emit(policyReloadRefused(oldPolicy, str(e), self._clock.seconds()))
            raise
        if self.stapler is not None and materials.stapleIssuer is not None:
            assert materials.leaf is not None
            self.stapler.useCertificate(materials.leaf, materials.stapleIssuer)
        after = materials.crls
        if after is not None and (before.crls is None or after.sources != before.crls.sources):
            # the reload read newer CRLs before the CRL watcher did: say so,
            # and enforce them on live connections as the watcher would
            self._emitter.emit(crlLoaded(policy, [p for p, _ in after.sources], len(after.crls),
                                         len(after.revoked), self._clock.seconds()))
            self._revokeLive(after)
        changed = (["policy"] if policy != oldPolicy else []) + materials.changesFrom(before)
        self._emitter.emit(policyReloaded(policy, self._clock.seconds(), changed=changed,
                                          certificateBefore=before.fingerprint,
                                          certificateAfter=materials.fingerprint,
                                          leaf=materials.leaf))

    def _revokeLive(self, crls: CRLSet) -> None:
        if self.policy.revocation.enforceOnLive:
            for gate in self._gates:
                gate.revokeLive(crls)

    def reloadCRLs(self) -> Deferred[bool]:
        """
        Re-read the CRL files now (as the periodic check does when they
        change) and swap them in if they verify; nothing else is read.

        @return: fires with C{True} if new CRLs are in force, C{False} if
            they were refused (the previous ones stay; an audit event says
            why) or the policy checks no CRLs.
        """
        if self.crlWatcher is None:
            return succeed(False)
        return self.crlWatcher.reload()

    def wrapFactory(self, factory: IProtocolFactory) -> GatedTLSFactory:
        """
        The factory that puts TLS and the gate in front of C{factory}.
        """
        gate = GateFactory(factory, Role.SERVER, self._clock, self._emitter, self.creator,
                           ocsp=self.ocsp, stapler=self.stapler, crlWatcher=self.crlWatcher,
                           credentialWatcher=self.credentialWatcher, limits=self.limits,
                           metrics=self.metrics)
        self._gates.append(gate)
        return GatedTLSFactory(self.creator, False, gate, self._clock)

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        # policy.loaded once listening: a listen that fails (port in use) audits nothing
        policy, leaf = self.policy, self.creator.materials.leaf
        factory: Any = self.wrapFactory(protocolFactory)
        audit = PreTLSAudit(self._emitter, lambda: self.policy, self._clock)
        if self.permissive:
            from securetcp._below.permissive import SniffingFactory

            factory = SniffingFactory(factory, protocolFactory, self._clock, audit,
                                      self.policy.handshakeTimeout)
        if self.proxyProtocol is not None:
            from securetcp._below.proxyprotocol import ProxyHeaderFactory

            versions = ("v1", "v2") if self.proxyProtocol == "any" else (self.proxyProtocol,)
            factory = ProxyHeaderFactory(factory, versions, self._clock,
                                         self.policy.handshakeTimeout, audit)
        return self._inner.listen(factory).addCallback(
            _policyLoaded, self._emitter, self._clock, policy, Role.SERVER, self.mutual,
            describeEndpoint(self._inner), leaf)


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
                 emitter: Optional[IAuditSink] = None, *,
                 ocspPost: Optional[Poster] = None) -> None:
        """
        @param ocspPost: how OCSP requests are sent: Twisted's HTTP client
            on C{reactor} by default.
        """
        self._reactor = reactor
        self._inner = inner
        self.mutual = mutual
        self.policy = policy.requireFor(Role.CLIENT, mutual)
        self.hostname = hostname or self.policy.peer.hostname
        self.creator = ClientConnectionCreator(
            self.policy, loadMaterials(self.policy, Role.CLIENT), self.hostname)
        self._clock: IReactorTime = clock or reactor
        self._emitter: IAuditSink = emitter or AuditEmitter()
        self.ocsp = checkerFor(self.policy.revocation, self._clock,
                               ocspPost or httpPoster(reactor))

    def wrapFactory(
        self, protocolFactory: IProtocolFactory
    ) -> Tuple[GatedTLSFactory, ClientGateFactory]:
        """
        The factory that puts TLS and the gate in front of C{protocolFactory},
        and the gate factory (whose C{whenReady} fires with the application
        protocol once the server is verified).
        """
        gate = ClientGateFactory(protocolFactory, Role.CLIENT, self._clock, self._emitter,
                                 self.creator, hostname=self.hostname, ocsp=self.ocsp)
        return GatedTLSFactory(self.creator, True, gate, self._clock), gate

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


def _checkBelowTLS(policy: TLSPolicy, proxyProtocol: Optional[str], permissive: bool,
                   insecurelyAllowPlaintext: bool) -> None:
    if proxyProtocol not in (None, "v1", "v2", "any"):
        raise PolicyError("proxyProtocol", proxyProtocol, "unknown PROXY protocol version",
                          "use v1, v2 or any")
    if permissive and policy.profile == "nist-800-52r2" and not insecurelyAllowPlaintext:
        raise PolicyError(
            "permissive", True,
            "permissive mode accepts unencrypted connections, which the nist-800-52r2 "
            "profile refuses", "add insecurelyAllowPlaintext=true to migrate on purpose")
    if permissive and policy.binding.protocol is not None:
        raise PolicyError("permissive", True,
                          "a plaintext peer has no certificate to bind its claims to, so the "
                          "identity binding would be bypassed", "leave permissive off, or "
                          "the binding (bind, bindings)")


def _stapler(materials: Materials, checker: Optional[OCSPChecker],
             clock: IReactorTime) -> Optional[StapleFetcher]:
    if materials.stapleIssuer is None or materials.leaf is None:
        return None
    assert checker is not None
    return StapleFetcher(materials.leaf, materials.stapleIssuer, checker, clock)


def serverEndpoint(reactor: Any, inner: IStreamServerEndpoint, policy: TLSPolicy, *,
                   mutual: bool = False, clock: Optional[IReactorTime] = None,
                   emitter: Optional[IAuditSink] = None,
                   proxyProtocol: Optional[str] = None, permissive: bool = False,
                   insecurelyAllowPlaintext: bool = False,
                   limits: Limits = Limits(), reload: Optional[str] = None,
                   reloadPoll: Optional[float] = None) -> SecureServerEndpoint:
    """
    Wrap C{inner} with TLS under C{policy}; with C{mutual}, require and
    verify client certificates.

    @param proxyProtocol: C{"v1"}, C{"v2"} or C{"any"}: every connection
        starts with a PROXY header (read before TLS) naming the real client.
    @param permissive: also accept plaintext on the same port (migration
        mode; audited as non-compliant).  Under C{nist-800-52r2} it needs
        C{insecurelyAllowPlaintext=True} as well.
    @param limits: refuse (and audit) connections beyond these.
    @param reload: C{"watch"}: while a port listens, watch the certificate,
        key and CA files (inotify, and polling) and reload them when they
        change, keeping open connections (C{reload=watch}).
    @param reloadPoll: with C{reload="watch"}, seconds between polls
        (0.1 to 86400; default 5).
    @raise PolicyError: if the policy cannot serve (missing credentials or
        CA, unreadable files, ...), or for a bad C{reload}/C{reloadPoll}.
    """
    return SecureServerEndpoint(reactor, inner, policy, mutual, clock, emitter, proxyProtocol,
                                permissive, insecurelyAllowPlaintext, limits=limits,
                                reloadPoll=reloadInterval(reload, reloadPoll))


def clientEndpoint(reactor: Any, inner: IStreamClientEndpoint, policy: TLSPolicy, *,
                   hostname: Optional[str] = None, mutual: bool = False,
                   clock: Optional[IReactorTime] = None,
                   emitter: Optional[IAuditSink] = None) -> SecureClientEndpoint:
    """
    Connect over C{inner} and verify the server under C{policy} (its
    certificate must be valid for C{hostname}); with C{mutual}, present our
    own certificate.
    """
    return SecureClientEndpoint(reactor, inner, policy, hostname, mutual, clock, emitter)
