# -*- test-case-name: tests.test_gate,tests.test_halfclose -*-
"""
The gate: a protocol wrapper between TLS and the application.

The application protocol is the caller's, unchanged.  It is built, and gets
C{makeConnection}, only after the handshake completed, the peer's chain
verified and its identity authorised; a peer that fails any check never
reaches it.  The gate also enforces the handshake timeout, turns on
TCP_NODELAY and emits the audit events::

    gate = GateFactory(appFactory, Role.SERVER, clock, sink, creator,
                       limits=Limits(maxConnections=1000))
    tls = TLSMemoryBIOFactory(creator, False, gate, clock=clock)
    tls.protocol = GatedTLSProtocol

Everything the gate works with is given to its factory when it is built
(typed by the interfaces of L{securetcp._interfaces}): the audit sink, the
clock, the connection creator (the policy and materials in force: the CRLs
and trust anchors), the OCSP checker, the staple fetcher, the CRL watcher
and the limits.

The TLS layer half-closes both ways, as TCP does: an application that
provides L{IHalfCloseableProtocol} gets C{readConnectionLost()} when the
peer sends close_notify (and may go on writing), and its
C{transport.loseWriteConnection()} sends our close_notify and shuts down
the TCP write side while the peer's data still arrives.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from securetcp._below.proxyprotocol import proxiedBy
from securetcp._interfaces import (
    IAuditSink,
    ICRLWatcher,
    IMaterialsInForce,
    IOCSPChecker,
    IStapler,
)
from securetcp._tls.session import (
    NegotiatedSession,
    connectionFacts,
    lossReason,
    negotiated,
    partialSession,
    tlsErrorDetail,
)
from securetcp._tls.verify import peerRejection
from securetcp.audit.records import addressText, utcTimestamp
from securetcp.compliance import verdict
from securetcp.errors import HandshakeRejected, PolicyError
from securetcp.identity import PeerIdentity, identityFromCertificate
from securetcp.policy import Role, TLSPolicy


def _limit(name: str) -> Any:
    def check(instance: Any, attribute: Any, value: Optional[int]) -> None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise PolicyError(name, value, "must be a positive integer",
                              f"give {name}=N with N >= 1, or leave it out")
    return check


@attrs.frozen
class Limits:
    """
    How many connections a server gate lets in; beyond them a new
    connection is refused and audited.  C{None}: no limit.

    @ivar maxConnections: connections open at once.
    @ivar maxHandshakes: handshakes in progress at once.
    """

    maxConnections: Optional[int] = attrs.field(default=None,
                                                validator=_limit("maxConnections"))
    maxHandshakes: Optional[int] = attrs.field(default=None, validator=_limit("maxHandshakes"))


@implementer(IHandshakeListener)
class GateProtocol(Protocol):
    """
    Sits on top of a L{GatedTLSProtocol}; hands the connection to the
    application protocol once every check has passed.

    It passes half-closes through to an application that provides
    L{IHalfCloseableProtocol}: the gate provides that interface itself from
    the moment such an application is admitted.  Before admission (while
    an OCSP answer is awaited) the peer's close_notify closes the connection
    as it always did: the peer is audited as C{peer_closed} and nothing
    reaches the application.
    """

    transport: Any
    application: Optional[IProtocol] = None
    _done = False
    _handshaking = False
    local: Optional[str] = None
    peer: Optional[str] = None
    proxy: Optional[str] = None

    def __init__(self, factory: GateFactory, addr: Optional[IAddress]) -> None:
        self.gate = factory
        self.addr = addr
        self.connectionId = os.urandom(8).hex()
        self.bytesIn = 0
        self.identity: Optional[PeerIdentity] = None
        self.session: Dict[str, Any] = {}
        self._timeout: Any = None
        self._rejected: Optional[Tuple[str, str]] = None
        self._buffer: List[bytes] = []
        self.peerChain: Tuple[Any, ...] = ()
        self._revocationExtra: Dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        self.started = self.gate.clock.seconds()
        self.local = addressText(transport.getHost())
        self.peer = addressText(transport.getPeer())
        self.proxy = proxiedBy(transport)
        if self.proxy is not None:
            # built before the PROXY header was read: the application factory
            # gets the original client, as getPeer() reports it
            self.addr = transport.getPeer()
        self._timeout = self.gate.clock.callLater(
            self.gate.policy.handshakeTimeout, self._handshakeTimedOut
        )
        gate = self.gate
        gate.openConnections += 1
        gate.handshaking += 1
        self._handshaking = True
        super().makeConnection(transport)
        limits = gate.limits
        if limits.maxConnections is not None and gate.openConnections > limits.maxConnections:
            self._reject("connection_limit",
                         f"maxConnections={limits.maxConnections} connections are already open")
            self.transport.abortConnection()
        elif limits.maxHandshakes is not None and gate.handshaking > limits.maxHandshakes:
            self._reject("handshake_limit",
                         f"maxHandshakes={limits.maxHandshakes} handshakes are already in "
                         "progress")
            self.transport.abortConnection()

    def _handshakeOver(self) -> None:
        if self._handshaking:
            self._handshaking = False
            self.gate.handshaking -= 1

    def handshakeCompleted(self) -> None:
        self._handshakeOver()
        connection = self.transport.getHandle()
        session = negotiated(connection)
        self.session = session.asRecord()
        self.peerChain = session.peerChain
        facts = connectionFacts(connection)
        if facts is not None and facts.revocationWarning:
            self.session["revocationWarning"] = facts.revocationWarning
        decision = self._check(session)
        if decision is not None:
            self._reject(*decision)
            self.transport.abortConnection()
            return
        if self.gate.ocsp is not None and session.peerChain:
            # the application waits for the OCSP answer (or the decision not
            # to wait); data that arrives meanwhile is buffered
            stapled = facts.stapled if facts is not None else None
            self.gate.ocspDecision(session.peerChain, stapled).addCallback(self._afterOCSP)
            return
        self._admit()

    def _afterOCSP(self, outcome: Tuple[Optional[Tuple[str, str]], Dict[str, Any]]) -> None:
        decision, facts = outcome
        if self._done or self._rejected is not None:
            return
        self.session.update({k: v for k, v in facts.items() if k != "revocationWarning"})
        if facts.get("revocationWarning"):
            self.session["revocationWarning"] = facts["revocationWarning"]
        if decision is not None:
            self._revocationExtra = {k: v for k, v in facts.items()
                                     if k in ("revocationReason", "revocationTime")}
            self._reject(*decision)
            self.transport.abortConnection()
            return
        self._admit()

    def _check(self, session: NegotiatedSession) -> Optional[Tuple[str, str]]:
        chain = session.peerChain
        if chain:
            self.identity = identityFromCertificate(chain[0])
        return peerRejection(self.gate.policy, self.gate.role, self.gate.hostname, chain,
                             self.identity)

    def _admit(self) -> None:
        self._cancelTimeout()
        if not self.gate.emitter.accepting():
            self._reject("audit_unavailable",
                         "the audit log cannot be written; unaudited connections are refused")
            self.transport.abortConnection()
            return
        application = self.gate.wrappedFactory.buildProtocol(self.addr)  # type: ignore[arg-type]
        if application is None:
            self._reject("internal_error", "the application factory refused the connection")
            self.transport.loseConnection()
            return
        self.application = application
        if IHalfCloseableProtocol.providedBy(application):
            # from now on the peer's close_notify is a half-close
            alsoProvides(self, IHalfCloseableProtocol)
        self.gate.emit(self, "connection.accepted")
        if not self.gate.emitter.accepting():
            self.application = None
            self._reject("audit_unavailable",
                         "the audit log cannot be written; unaudited connections are refused")
            self.transport.abortConnection()
            return
        application.makeConnection(self.transport)
        if IHandshakeListener.providedBy(application):
            application.handshakeCompleted()
        # only now is the application connected: a client endpoint's
        # connect() fires here, with a protocol that has its transport
        self.gate.live.add(self)
        self._forgetHandshake()
        self.gate.admitted(self, application)
        buffered, self._buffer = self._buffer, []
        for data in buffered:
            application.dataReceived(data)

    def _forgetHandshake(self) -> None:
        """
        Drop what only the handshake needed, so an idle connection holds
        less: the converted chain (kept only when a reloaded CRL may have to
        disconnect this peer) and the verify callback's notes.
        """
        if not self.gate.policy.revocation.enforceOnLive:
            self.peerChain = ()
        facts = connectionFacts(self.transport.getHandle())
        if facts is not None:
            facts.chain.clear()
            facts.peerLeaf = None

    def dataReceived(self, data: bytes) -> None:
        self.bytesIn += len(data)
        if self.application is not None:
            self.application.dataReceived(data)
        elif self._rejected is None:
            self._buffer.append(data)

    def readConnectionLost(self) -> None:
        """
        The peer sent close_notify (L{IHalfCloseableProtocol}, provided only
        once a half-closeable application is admitted): pass it on.
        """
        above = IHalfCloseableProtocol(self.application, None)
        if above is not None:
            above.readConnectionLost()

    def writeConnectionLost(self) -> None:
        """
        Our write side has been shut down (L{IHalfCloseableProtocol}).
        """
        above = IHalfCloseableProtocol(self.application, None)
        if above is not None:
            above.writeConnectionLost()

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self._cancelTimeout()
        if self._done:
            return
        self._done = True
        self._handshakeOver()
        self.gate.openConnections -= 1
        self.gate.live.discard(self)
        if self.application is not None:
            # e.g. a TLS 1.3 server refusing our certificate after our side
            # of the handshake had completed
            closeReason = (getattr(self.transport, "closeNote", None)
                           or tlsErrorDetail(reason.value))
            self.gate.emit(self, "connection.closed",
                           closeReason=closeReason,
                           duration=round(self.gate.clock.seconds() - self.started, 6),
                           bytesIn=self.bytesIn,
                           bytesOut=getattr(self.transport, "bytesOut", None))
            application, self.application = self.application, None
            application.connectionLost(reason)
            return
        if self._rejected is None:
            self._reject(*lossReason(reason.value, self._handle(),
                                     getattr(self.transport, "firstByte", None),
                                     self.gate.role))
        self.gate.failed(self, self._rejected or ("internal_error", ""))

    # -- helpers -------------------------------------------------------

    def _reject(self, reason: str, detail: str) -> None:
        if self._rejected is not None:
            return
        self._cancelTimeout()
        self._rejected = (reason, detail)
        self._buffer = []
        handle = self._handle()
        facts = connectionFacts(handle)
        if self.identity is None and facts is not None and facts.peerLeaf is not None:
            self.identity = identityFromCertificate(facts.peerLeaf)
        if not self.session and handle is not None:
            self.session = partialSession(handle)
        extra: Dict[str, Any] = dict(self._revocationExtra)
        crls = self.gate.inForce.materials.crls
        if reason == "revoked" and crls is not None and facts is not None \
                and facts.peerLeaf is not None:
            # a CRL entry wins; else keep what OCSP said (the CRL may not list it)
            extra = crls.entry(facts.revokedCert or facts.peerLeaf) or extra
        self.gate.emit(self, "handshake.rejected", reason=reason, detail=detail, **extra)

    def _handshakeTimedOut(self) -> None:
        self._timeout = None
        self._reject("handshake_timeout",
                     f"no completed handshake after {self.gate.policy.handshakeTimeout}s")
        self.transport.abortConnection()

    def _cancelTimeout(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None

    def _handle(self) -> Any:
        try:
            return self.transport.getHandle()
        except AttributeError:  # pragma: no cover
            return None


class GateFactory(Factory):
    """
    Builds a L{GateProtocol} per connection for the application factory
    C{wrappedFactory}.
    """

    protocol = GateProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        role: Role,
        clock: IReactorTime,
        emitter: IAuditSink,
        inForce: IMaterialsInForce,
        *,
        hostname: Optional[str] = None,
        ocsp: Optional[IOCSPChecker] = None,
        stapler: Optional[IStapler] = None,
        crlWatcher: Optional[ICRLWatcher] = None,
        limits: Limits = Limits(),
    ) -> None:
        """
        @param emitter: where audit records go, and whether connections may
            proceed (fail closed).
        @param inForce: the policy and materials in force (the connection
            creator): the CRLs and trust anchors the checks use.
        @param hostname: (clients) the name the server's certificate must
            be valid for.
        @param ocsp: the OCSP checker, when the policy asks for OCSP.
        @param stapler: (servers) keeps our stapled OCSP response fresh
            while a port listens.
        @param crlWatcher: (servers) reloads the CRLs while a port listens.
        @param limits: (servers) how many connections are let in.
        """
        self.wrappedFactory = wrappedFactory
        self.role = role
        self.clock = clock
        self.emitter = emitter
        self.inForce = inForce
        self.hostname = hostname
        self.ocsp = ocsp
        self.stapler = stapler
        self.crlWatcher = crlWatcher
        self.limits = limits
        self.live: set[GateProtocol] = set()
        self.openConnections = 0
        self.handshaking = 0

    @property
    def policy(self) -> TLSPolicy:
        """
        The policy in force (it changes on reload).
        """
        policy: TLSPolicy = self.inForce.policy
        return policy

    def ocspDecision(self, chain: Tuple[Any, ...], stapled: Optional[bytes]
                     ) -> Deferred[Tuple[Optional[Tuple[str, str]], Dict[str, Any]]]:
        """
        Decide on the peer's OCSP status with L{securetcp.revocation.ocsp.decide}:
        C{(rejection or None, facts for the audit record)}.  Never fails.
        """
        from securetcp.revocation.ocsp import decide

        assert self.ocsp is not None
        return decide(self.ocsp, self.policy.revocation, chain, stapled,
                      self.inForce.materials.trust)

    def revokeLive(self, crls: Any) -> None:
        """
        Disconnect every connected peer that C{crls} revokes (the leaf, or
        any certificate of its chain under C{revocationScope=chain}), and
        audit each as C{connection.revoked}.
        """
        wholeChain = self.policy.revocation.scope == "chain"
        for gate in list(self.live):
            chain = gate.peerChain if wholeChain else gate.peerChain[:1]
            if any(crls.isRevoked(c) for c in chain):
                self.emit(gate, "connection.revoked",
                          detail="a reloaded CRL revokes the peer's certificate")
                gate.transport.abortConnection()

    def buildProtocol(self, addr: Optional[IAddress]) -> GateProtocol:
        return GateProtocol(self, addr)

    def doStart(self) -> None:
        self.wrappedFactory.doStart()
        if self.numPorts == 0:
            if self.crlWatcher is not None:
                self.crlWatcher.start()
            if self.stapler is not None:
                self.stapler.start()
        super().doStart()

    def doStop(self) -> None:
        self.wrappedFactory.doStop()
        if self.numPorts == 1:
            if self.crlWatcher is not None:
                self.crlWatcher.stop()
            if self.stapler is not None:
                self.stapler.stop()
        super().doStop()

    def logPrefix(self) -> str:
        inner = getattr(self.wrappedFactory, "logPrefix", None)
        name = inner() if inner else self.wrappedFactory.__class__.__name__
        return f"{name} (securetcp)"

    def admitted(self, gate: GateProtocol, application: IProtocol) -> None:
        """
        Called when C{gate} hands its connection to C{application}.
        """

    def failed(self, gate: GateProtocol, rejection: Tuple[str, str]) -> None:
        """
        Called when C{gate}'s connection ended without reaching the
        application.
        """

    def emit(self, gate: GateProtocol, event: str, **extra: Any) -> None:
        local, peer = gate.local, gate.peer
        policy = self.policy
        record: Dict[str, Any] = {
            "event": event,
            "time": utcTimestamp(self.clock.seconds()),
            "connection": gate.connectionId,
            "role": self.role.value,
            "local": local,
            "peer": peer,
            "proxy": gate.proxy,
            "sni": gate.session.get("sni"),
            "version": gate.session.get("version"),
            "cipher": gate.session.get("cipher"),
            "group": gate.session.get("group"),
            "alpn": gate.session.get("alpn"),
            "resumed": gate.session.get("resumed"),
            "revocationWarning": gate.session.get("revocationWarning"),
            "ocsp": gate.session.get("ocsp"),
            "peerIdentity": gate.identity.asRecord() if gate.identity else None,
            "policy": policy.name,
            "profile": policy.profile,
        }
        if event == "handshake.rejected":
            # no data was protected: there is nothing to judge
            record["compliance"] = None
        else:
            record["compliance"] = verdict(
                gate.session.get("version"), gate.session.get("cipher"),
                gate.session.get("group"), policy.legacy)
        record.update(extra)
        self.emitter.emit(record)


class ClientGateFactory(GateFactory):
    """
    The client side: L{whenReady} fires with the application protocol once
    the server is verified, or fails with L{HandshakeRejected}.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.whenReady: Deferred[IProtocol] = Deferred()
        self._attempts = 0

    def buildProtocol(self, addr: Optional[IAddress]) -> GateProtocol:
        # An inner endpoint may connect more than once for one connect()
        # (HostnameEndpoint races addresses); whenReady fails only when
        # every attempt has.
        self._attempts += 1
        return super().buildProtocol(addr)

    def admitted(self, gate: GateProtocol, application: IProtocol) -> None:
        if not self.whenReady.called:
            self.whenReady.callback(application)

    def failed(self, gate: GateProtocol, rejection: Tuple[str, str]) -> None:
        self._attempts -= 1
        if not self.whenReady.called and self._attempts <= 0:
            self.whenReady.errback(HandshakeRejected(*rejection))
