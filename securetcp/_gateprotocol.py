# -*- test-case-name: tests.test_gate,tests.test_halfclose -*-
"""
One connection's way through the gate (L{GateProtocol}): the handshake, the
peer's checks (name, allow-list, pins), revocation (OCSP may be awaited),
the audit record, and only then the application protocol::

    gate = GateFactory(appFactory, Role.SERVER, clock, sink, creator)
    gate.buildProtocol(address)       # a GateProtocol, on a GatedTLSProtocol

Built by L{securetcp.gate.GateFactory}, whose collaborators it uses (L{Gate}
says which); a peer that fails any check never reaches the application.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Tuple
from typing import Protocol as TypingProtocol

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
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from securetcp._below.proxyprotocol import proxiedBy
from securetcp._everymessage import MessageGuard
from securetcp._firstmessage import FirstMessageInspection
from securetcp._interfaces import IAuditSink, IMaterialsInForce, IOCSPChecker
from securetcp._limits import Limits
from securetcp._tls.session import (
    NO_SESSION,
    ConnectionFacts,
    NegotiatedSession,
    connectionFacts,
    forgetFacts,
    lossReason,
    negotiated,
    partialSession,
    sessionRecord,
    tlsErrorDetail,
)
from securetcp._tls.verify import peerRejection
from securetcp.audit.records import (
    AuditConnection,
    addressText,
    connectionAccepted,
    connectionClosed,
    handshakeRejected,
    localAddressText,
)
from securetcp.identity import PeerIdentity, identityFromCertificate
from securetcp.policy import Role, TLSPolicy

#: An OCSP decision: C{(rejection or None, facts for the audit record)}.
Decision = Tuple[Optional[Tuple[str, str]], Dict[str, Any]]


class Gate(TypingProtocol):
    """
    What a L{GateProtocol} uses of the factory that built it (a
    L{securetcp.gate.GateFactory}).
    """

    wrappedFactory: IProtocolFactory
    role: Role
    clock: IReactorTime
    emitter: IAuditSink
    inForce: IMaterialsInForce
    hostname: Optional[str]
    ocsp: Optional[IOCSPChecker]
    limits: Limits
    metrics: Optional[Any]
    #: (clients, TLS 1.3) how long to wait for the server's acceptance
    confirmationWindow: float
    live: Set[GateProtocol]
    openConnections: int
    handshaking: int

    @property
    def policy(self) -> TLSPolicy: ...

    def ocspDecision(self, chain: Tuple[Any, ...], stapled: Optional[bytes]
                     ) -> Deferred[Decision]: ...

    def auditConnection(self, gate: GateProtocol) -> AuditConnection: ...

    def admitted(self, gate: GateProtocol, application: IProtocol) -> None: ...

    def failed(self, gate: GateProtocol, rejection: Tuple[str, str]) -> None: ...

    def closed(self, gate: GateProtocol) -> None: ...


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
    #: reads the first message for the policy's identity binding, if any
    inspection: Optional[FirstMessageInspection] = None
    #: once admitted, judges every later message (a binding whose protocol needs it)
    guard: Optional[MessageGuard] = None
    _done = False
    _handshaking = False
    #: (TLS 1.3 clients) waiting for the server to accept our side
    _confirming = False
    local: Optional[str] = None
    peer: Optional[str] = None
    proxy: Optional[str] = None
    _revocationExtra: Dict[str, Any] = {}  # replaced, never changed in place
    #: what arrived before the application was admitted (a list, once any did)
    _buffer: Sequence[bytes] = ()
    #: the session facts (L{sessionRecord}): may be shared, never changed in place
    session: Mapping[str, Any] = NO_SESSION

    def __init__(self, factory: Gate, addr: Optional[IAddress]) -> None:
        self.gate = factory
        self.addr = addr
        self.connectionId = os.urandom(8).hex()
        self.bytesIn = 0
        self.identity: Optional[PeerIdentity] = None
        self._timeout: Any = None
        self._rejected: Optional[Tuple[str, str]] = None
        self.peerChain: Tuple[Any, ...] = ()

    # -- lifecycle -----------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        self.started = self.gate.clock.seconds()
        self.local = localAddressText(transport.getHost())
        self.peer = addressText(transport.getPeer())
        self.proxy = proxiedBy(transport)
        if self.proxy is not None:
            # built before the PROXY header was read: the application factory
            # gets the original client, as getPeer() reports it
            self.addr = transport.getPeer()
        gate = self.gate
        self._timeout = gate.clock.callLater(gate.inForce.policy.handshakeTimeout,
                                             self._handshakeTimedOut)
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
        # our TLS transport keeps them (it is the connection's app data)
        facts = getattr(self.transport, "securetcpFacts", None) or connectionFacts(connection)
        session = negotiated(connection, facts)
        self.session = sessionRecord(session)
        self.peerChain = session.peerChain
        if facts is not None and facts.revocationWarning:
            self.session = {**self.session, "revocationWarning": facts.revocationWarning}
        decision = self._check(session, facts)
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
        self._admitWhenConfirmed()

    def _afterOCSP(self, outcome: Decision) -> None:
        decision, facts = outcome
        if self._done or self._rejected is not None:
            return
        session = dict(self.session)  # a copy: the record may be shared
        session.update({k: v for k, v in facts.items() if k != "revocationWarning"})
        if facts.get("revocationWarning"):
            session["revocationWarning"] = facts["revocationWarning"]
        self.session = session
        if decision is not None:
            self._revocationExtra = {k: v for k, v in facts.items()
                                     if k in ("revocationReason", "revocationTime")}
            self._reject(*decision)
            self.transport.abortConnection()
            return
        self._admitWhenConfirmed()

    def _admitWhenConfirmed(self) -> None:
        """
        Admit now, except a TLS 1.3 client, which first waits for the
        server's acceptance (see L{securetcp.gate.ClientGateFactory}).
        """
        transport = self.transport
        if (self.gate.role is not Role.CLIENT or self.session.get("version") != "TLSv1.3"
                or not hasattr(transport, "whenPeerHeard")):
            self._admit()
            return
        self._confirming = True
        self._cancelTimeout()
        self._timeout = self.gate.clock.callLater(self.gate.confirmationWindow,
                                                  self._confirmed)
        transport.whenPeerHeard(self._confirmed)

    def _confirmed(self) -> None:
        if self._confirming and not self._done and self._rejected is None:
            self._confirming = False
            self._admit()

    def _check(self, session: NegotiatedSession,
               facts: Optional[ConnectionFacts]) -> Optional[Tuple[str, str]]:
        chain = session.peerChain
        if chain:
            self.identity = identityFromCertificate(chain[0])
        return peerRejection(self.gate.inForce.policy, self.gate.role, self.gate.hostname, chain,
                             self.identity, authorised=facts is not None and facts.authorised)

    def _admit(self) -> None:
        self._cancelTimeout()
        policy = self.gate.inForce.policy
        if self.inspection is None and policy.binding.enabled:
            self.inspection = FirstMessageInspection(self)  # calls _admit() or _reject()
            return
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
        # the application sees the connection only once its accepted record
        # is written to every audit file that refuses connections
        if not self.gate.emitter.emit(connectionAccepted(self.gate.auditConnection(self),
                                                         self.gate.clock.seconds())):
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
        enforceOnLive = policy.revocation.enforceOnLive
        if enforceOnLive or self.gate.metrics is not None:
            # a reloaded CRL may disconnect it, or the metrics count its bytes
            self.gate.live.add(self)
        self._forgetHandshake(enforceOnLive)
        self.gate.admitted(self, application)
        self.guard = self.inspection.guard(application) if self.inspection else None
        buffered, self._buffer = self._buffer, ()
        for data in buffered:
            (self.guard or application).dataReceived(data)

    def _forgetHandshake(self, enforceOnLive: bool) -> None:
        """
        Drop what only the handshake needed, so an idle connection holds
        less: the peer's address object (the application was built with it),
        the converted chain (kept only when a reloaded CRL may have to
        disconnect this peer) and the verify callback's notes (L{forgetFacts}).
        """
        self.addr, self.peerChain = None, (self.peerChain if enforceOnLive else ())
        forgetFacts(self.transport, self.gate.role)

    def dataReceived(self, data: bytes) -> None:
        self.bytesIn += len(data)
        if self.application is not None:
            (self.guard or self.application).dataReceived(data)
        elif self._rejected is None:
            if not isinstance(self._buffer, list):
                self._buffer = []
            self._buffer.append(data)
            if self._confirming:
                self._confirmed()  # the server spoke: it accepted us
            elif self.inspection is not None:
                self.inspection.dataReceived()

    def readConnectionLost(self) -> None:
        """The peer sent close_notify (L{IHalfCloseableProtocol}): pass it on."""
        above = IHalfCloseableProtocol(self.application, None)
        if above is not None:
            above.readConnectionLost()

    def writeConnectionLost(self) -> None:
        """Our write side has been shut down (L{IHalfCloseableProtocol}): pass it on."""
        above = IHalfCloseableProtocol(self.application, None)
        if above is not None:
            above.writeConnectionLost()

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        if self._timeout is not None:
            self._cancelTimeout()
        if self._done:
            return
        self._done = True
        if self._handshaking:
            self._handshakeOver()
        self.gate.openConnections -= 1
        self.gate.live.discard(self)
        if self.application is not None:
            # e.g. a TLS 1.3 server refusing our certificate after our side
            # of the handshake had completed
            refused = self.guard.lost() if self.guard is not None else None
            closeReason = (refused[0] if refused else None) or (
                getattr(self.transport, "closeNote", None) or tlsErrorDetail(reason.value))
            now = self.gate.clock.seconds()
            self.gate.emitter.emit(connectionClosed(
                self.gate.auditConnection(self), now, duration=round(now - self.started, 6),
                bytesIn=self.bytesIn, bytesOut=getattr(self.transport, "bytesOut", None),
                closeReason=closeReason, refused=refused[1] if refused else None))
            self.gate.closed(self)
            application, self.application = self.application, None
            application.connectionLost(reason)
            return
        if self._rejected is None and self.inspection is not None:
            self._reject(*self.inspection.lost())
        if self._rejected is None:
            self._reject(*lossReason(reason.value, self._handle(),
                                     getattr(self.transport, "firstByte", None), self.gate.role))
        self.gate.failed(self, self._rejected or ("internal_error", ""))

    # -- helpers -------------------------------------------------------

    def _reject(self, reason: str, detail: str) -> None:
        if self._rejected is not None:
            return
        self._cancelTimeout()
        self._rejected = (reason, detail)
        self._buffer = ()
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
        self.gate.emitter.emit(handshakeRejected(self.gate.auditConnection(self),
                                                 self.gate.clock.seconds(), reason, detail,
                                                 revocation=extra))

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
