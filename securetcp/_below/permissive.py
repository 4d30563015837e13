# -*- test-case-name: tests.test_permissive -*-
"""
Permissive migration mode: on one port, accept TLS and — only when
explicitly enabled — plaintext, told apart by the first byte (a TLS
connection starts with a handshake record, 0x16).

Plaintext connections go straight to the application, and are audited like
TLS ones (C{connection.accepted} / C{connection.closed}) with
C{"plaintext": true} and a non-compliant verdict, so operators can see who
still has to migrate.  Off by default; the C{nist-800-52r2} profile refuses
it unless C{insecurelyAllowPlaintext=true} is also given::

    factory = SniffingFactory(tlsFactory, applicationFactory, reactor,
                              PreTLSAudit(sink, lambda: endpoint.policy, reactor),
                              timeout=10)
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from securetcp._below._audit import BelowTLSConnection, PreTLSAudit
from securetcp._below._halfclose import passReadConnectionLost, passWriteConnectionLost
from securetcp._below.proxyprotocol import proxiedBy

TLS_HANDSHAKE = 0x16


class _PlainApplication(ProtocolWrapper):
    """
    Between a plaintext peer and the application: counts bytes and audits
    the close.
    """

    def __init__(self, factory: Any, wrappedProtocol: Any, sniffer: SniffingProtocol) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        self.sniffer = sniffer
        self.bytesIn = 0
        self.bytesOut = 0

    def dataReceived(self, data: bytes) -> None:
        self.bytesIn += len(data)
        super().dataReceived(data)

    def write(self, data: bytes) -> None:
        self.bytesOut += len(data)
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    @property
    def connectionId(self) -> str:
        """
        The audit id of this connection (as its records name it).
        """
        return self.sniffer.auditConnection.connectionId


@implementer(IHalfCloseableProtocol)
class SniffingProtocol(ProtocolWrapper):
    """
    Waits for the first byte: a TLS handshake record goes to the TLS
    protocol (C{wrappedProtocol}); anything else to the application,
    unencrypted.  Half-closes pass through to either (to a plaintext
    application only if it provides L{IHalfCloseableProtocol}).
    """

    def __init__(self, factory: SniffingFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        self.mode: Optional[str] = None
        self.plain: Optional[_PlainApplication] = None
        self._timeout: Any = None
        self._pending: List[bytes] = []

    def makeConnection(self, transport: Any) -> None:
        self.connected = 1
        self.transport = transport
        self.factory.registerProtocol(self)
        # remembered now, for the audit records written after the socket closed
        self.auditConnection = BelowTLSConnection.seen(
            transport.getHost(), transport.getPeer(), proxiedBy(self))
        factory: SniffingFactory = self.factory  # type: ignore[assignment]
        self._timeout = factory.clock.callLater(factory.timeout, self._timedOut)

    def _timedOut(self) -> None:
        self._timeout = None
        factory: SniffingFactory = self.factory  # type: ignore[assignment]
        self.mode = "refused"
        factory.audit.rejected(self.auditConnection, "handshake_timeout",
                               f"no data after {factory.timeout}s")
        self.transport.abortConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.mode == "tls":
            self.wrappedProtocol.dataReceived(data)
            return
        if self.mode == "plain":
            assert self.plain is not None
            self.plain.dataReceived(data)
            return
        if not data or self.mode == "refused":
            return
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        factory: SniffingFactory = self.factory  # type: ignore[assignment]
        if data[0] == TLS_HANDSHAKE:
            self.mode = "tls"
            self.wrappedProtocol.makeConnection(self)  # type: ignore[arg-type]
            self.wrappedProtocol.dataReceived(data)
            return
        if not factory.audit.accepting():
            # as the gate does for TLS: no unaudited connections
            self._refuse("audit_unavailable",
                         "the audit log cannot be written; unaudited connections are refused")
            return
        application = factory.applicationFactory.buildProtocol(
            self.transport.getPeer())  # type: ignore[union-attr]
        if application is None:
            self._refuse("internal_error", "the application factory refused the connection")
            return
        self.started = factory.clock.seconds()
        if not factory.audit.plaintextAccepted(self.auditConnection):
            # its accepted record was not written: the application never
            # sees the connection
            self._refuse("audit_unavailable",
                         "the audit log cannot be written; unaudited connections are refused")
            return
        self.mode = "plain"
        self.plain = _PlainApplication(factory, application, self)
        self.plain.makeConnection(self.transport)
        self.plain.dataReceived(data)

    def _above(self) -> Any:
        if self.mode == "tls":
            return self.wrappedProtocol
        if self.mode == "plain" and self.plain is not None:
            return self.plain.wrappedProtocol
        return None

    def readConnectionLost(self) -> None:
        passReadConnectionLost(self.transport, self._above())

    def writeConnectionLost(self) -> None:
        passWriteConnectionLost(self._above())

    def _refuse(self, reason: str, detail: str) -> None:
        self.mode = "refused"
        factory: SniffingFactory = self.factory  # type: ignore[assignment]
        factory.audit.rejected(self.auditConnection, reason, detail)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self.mode == "tls":
            super().connectionLost(reason)
            return
        self.factory.unregisterProtocol(self)
        if self.mode == "plain" and self.plain is not None:
            factory: SniffingFactory = self.factory  # type: ignore[assignment]
            factory.audit.plaintextClosed(
                self.auditConnection, round(factory.clock.seconds() - self.started, 6),
                self.plain.bytesIn, self.plain.bytesOut)
            self.plain.connectionLost(reason)


class SniffingFactory(WrappingFactory):
    """
    Wraps a server endpoint's TLS factory; plaintext connections are handed
    to C{applicationFactory}, audited by C{audit}, and refused (as the gate
    refuses TLS ones) while C{audit} says the audit log cannot be written.

    @param audit: a L{PreTLSAudit} (TRANSITIONAL: or the endpoint's
        C{audit(protocol, event, **fields)} callback).
    @param timeout: seconds to wait for the first byte.
    """

    protocol = SniffingProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(self, tlsFactory: Any, applicationFactory: Any, clock: Any,
                 audit: PreTLSAudit, timeout: float) -> None:
        super().__init__(tlsFactory)
        self.applicationFactory = applicationFactory
        self.clock = clock
        self.audit = audit
        self.timeout = timeout
