# -*- test-case-name: tests.test_gate,tests.test_halfclose,tests.test_limits -*-
"""
The gate: a protocol wrapper between TLS and the application (one
L{GateProtocol} per connection, L{securetcp._gateprotocol}), and the
factories that build it with their collaborators.

The application protocol is the caller's, unchanged.  It is built, and gets
C{makeConnection}, only after the handshake completed, the peer's chain
verified and its identity authorised; a peer that fails any check never
reaches it.  The gate also enforces the handshake timeout, turns on
TCP_NODELAY and emits the audit events::

    gate = GateFactory(appFactory, Role.SERVER, clock, sink, creator,
                       limits=Limits(maxConnections=1000))
    tls = GatedTLSFactory(creator, False, gate, clock)

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

import time
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IReactorTime
from twisted.internet.protocol import Factory

from securetcp._gateprotocol import Decision, GateProtocol, Limits
from securetcp._interfaces import (
    IAuditSink,
    ICredentialWatcher,
    ICRLWatcher,
    IGateMetrics,
    IMaterialsInForce,
    IOCSPChecker,
    IStapler,
)
from securetcp.audit.records import AuditConnection, SessionFacts, connectionRevoked
from securetcp.compliance.verdict import policyVerdict
from securetcp.errors import HandshakeRejected
from securetcp.policy import Role, TLSPolicy
from securetcp.revocation.crl import CRLSet
from securetcp.revocation.ocsp import decide

#: Seconds a TLS 1.3 client waits, at most, for a silent server's acceptance.
CONFIRMATION_WINDOW = 1.0

#: How many shared session records a factory keeps the facts of (L{GateFactory._sessionFacts}).
_SESSIONS_BOUND = 64

__all__ = ["ClientGateFactory", "GateFactory", "GateProtocol", "Limits"]


class GateFactory(Factory):
    """
    Builds a L{GateProtocol} per connection for the application factory
    C{wrappedFactory}.
    """

    protocol = GateProtocol  # type: ignore[assignment]
    noisy = False
    #: (TLS 1.3 clients) how long, at most, a client waits after its
    #: handshake for the server to show it accepted the client's
    #: certificate (see L{ClientGateFactory})
    confirmationWindow = CONFIRMATION_WINDOW

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
        credentialWatcher: Optional[ICredentialWatcher] = None,
        limits: Limits = Limits(),
        metrics: Optional[IGateMetrics] = None,
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
        @param credentialWatcher: (servers, C{reload=watch}) reloads the
            certificate, key and CA files while a port listens.
        @param limits: (servers) how many connections are let in.
        @param metrics: (servers) what counts handshakes, their outcome and
            the bytes of closed connections (see L{securetcp.metrics}).
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
        self.credentialWatcher = credentialWatcher
        self.limits = limits
        self.metrics = metrics
        if metrics is not None:
            metrics.gateStarted(self)
        self.live: set[GateProtocol] = set()
        #: the policy verdict of the records: (policy, leaf, until, reasons)
        self._verdict: Optional[Tuple[Any, Any, float, Tuple[str, ...]]] = None
        #: the facts of the shared session records (see L{_sessionFacts}), by id
        self._sessions: Dict[int, Tuple[Mapping[str, Any], SessionFacts]] = {}
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
                     ) -> Deferred[Decision]:
        """
        Decide on the peer's OCSP status with L{securetcp.revocation.ocsp.decide}:
        C{(rejection or None, facts for the audit record)}.  Never fails.
        """
        assert self.ocsp is not None
        decided = decide(self.ocsp, self.policy.revocation, chain, stapled,
                         self.inForce.materials.trust)
        if self.metrics is not None:
            decided.addCallback(self._countOCSP)
        return decided

    def _countOCSP(self, decision: Decision) -> Decision:
        answer = decision[1].get("ocsp")
        if answer is not None and self.metrics is not None:
            self.metrics.ocspAnswered(answer)
        return decision

    def revokeLive(self, crls: CRLSet) -> None:
        """
        Disconnect every connected peer that C{crls} revokes (the leaf, or
        any certificate of its chain under C{revocationScope=chain}), and
        audit each as C{connection.revoked}.
        """
        wholeChain = self.policy.revocation.scope == "chain"
        for gate in list(self.live):
            chain = gate.peerChain if wholeChain else gate.peerChain[:1]
            if any(crls.isRevoked(c) for c in chain):
                self.emitter.emit(connectionRevoked(
                    self.auditConnection(gate), self.clock.seconds(),
                    "a reloaded CRL revokes the peer's certificate"))
                gate.transport.abortConnection()

    def buildProtocol(self, addr: Optional[IAddress]) -> GateProtocol:
        return GateProtocol(self, addr)

    def doStart(self) -> None:
        self.wrappedFactory.doStart()
        if self.numPorts == 0:
            if self.crlWatcher is not None:
                self.crlWatcher.start()
            if self.credentialWatcher is not None:
                self.credentialWatcher.start()
            if self.stapler is not None:
                self.stapler.start()
        super().doStart()

    def doStop(self) -> None:
        self.wrappedFactory.doStop()
        if self.numPorts == 1:
            if self.crlWatcher is not None:
                self.crlWatcher.stop()
            if self.credentialWatcher is not None:
                self.credentialWatcher.stop()
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
        if self.metrics is not None:
            self.metrics.admitted(self.clock.seconds() - gate.started)

    def failed(self, gate: GateProtocol, rejection: Tuple[str, str]) -> None:
        """
        Called when C{gate}'s connection ended without reaching the
        application.
        """
        if self.metrics is not None:
            self.metrics.rejected(rejection[0], self.clock.seconds() - gate.started)

    def closed(self, gate: GateProtocol) -> None:
        """
        Called when C{gate}'s admitted connection closed.
        """
        if self.metrics is not None:
            refused = gate.guard.refused if gate.guard is not None else None
            self.metrics.closed(gate.bytesIn, getattr(gate.transport, "bytesOut", None),
                                refused["reason"] if refused else None)

    def auditConnection(self, gate: GateProtocol) -> AuditConnection:
        """
        What the audit records of C{gate}'s connection say about it.
        """
        policy: TLSPolicy = self.inForce.policy
        # positional, in the order of the fields (connectionId, role, local,
        # peer, policy, profile, proxy, legacy, session, peerIdentity,
        # plaintext, policyReasons, binding): keywords to a class cost a
        # dict per call, and this runs twice per connection
        return AuditConnection(
            gate.connectionId, self.role, gate.local, gate.peer, policy.name, policy.profile,
            gate.proxy, policy.legacy, self._sessionFacts(gate.session), gate.identity, False,
            self._policyReasons(policy),
            gate.inspection.record() if gate.inspection is not None else None)

    def _sessionFacts(self, session: Mapping[str, Any]) -> SessionFacts:
        """
        L{SessionFacts.fromMapping}C{(session)}, made once per shared,
        read-only session record (L{securetcp._tls.session.sessionRecord}:
        most connections of a server negotiated the same) and reused, as
        the facts are frozen; a connection's own record is read afresh.
        """
        known = self._sessions.get(id(session))
        if known is not None and known[0] is session:
            return known[1]
        facts = SessionFacts.fromMapping(session)
        if type(session) is MappingProxyType:
            if len(self._sessions) >= _SESSIONS_BOUND:
                self._sessions.clear()
            # the record is kept with its facts: its id is not reused meanwhile
            self._sessions[id(session)] = (session, facts)
        return facts

    def _policyReasons(self, policy: TLSPolicy) -> Tuple[str, ...]:
        """
        What C{policy}'s checklist fails (L{policyVerdict}), worked out again
        only when the policy or our certificate changes (a reload) or the
        UTC day does (the certificate is judged per day).
        """
        leaf = self.inForce.materials.leaf
        now = time.time()
        known = self._verdict
        if known is not None and known[0] is policy and known[1] is leaf and now < known[2]:
            return known[3]
        reasons = tuple(policyVerdict(policy, self.role, leaf, self.hostname)["reasons"])
        nextDay = (now // 86400 + 1) * 86400
        self._verdict = (policy, leaf, nextDay, reasons)
        return reasons


class ClientGateFactory(GateFactory):
    """
    The client side: L{whenReady} fires with the application protocol once
    the server is verified, or fails with L{HandshakeRejected}.

    Under TLS 1.3 the server judges the client's certificate after the
    client's handshake is over, and refuses it with an alert.  So a TLS 1.3
    client is admitted only once the server's next bytes (its session
    tickets, or its first data) arrived without an alert, or after
    L{confirmationWindow} seconds of silence: a refusal is then
    L{HandshakeRejected} with its reason (C{unknown_ca},
    C{no_client_certificate}...), never a connection that succeeds and then
    loses a raw C{OpenSSL.SSL.Error}.  It costs one round trip before
    C{connect()} fires, or the window against a server that sends no
    tickets and waits for the client to speak first.
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
