# -*- test-case-name: tests.test_permissive,tests.test_proxyprotocol -*-
"""
How the layers below TLS audit the connections they decide themselves (a
missing or bad PROXY header, a plaintext client in permissive mode): they
describe the connection with a L{BelowTLSConnection}, and a L{PreTLSAudit}
builds its records with L{securetcp.audit.records} and emits them through
the endpoint's L{IAuditSink}, under the policy in force::

    audit = PreTLSAudit(sink, lambda: endpoint.policy, reactor)
    factory = SniffingFactory(tlsFactory, applicationFactory, reactor, audit, 10)
    factory = ProxyHeaderFactory(factory, ("v2",), reactor, 10, audit)

The same L{IAuditSink} says whether a plaintext connection may reach the
application (fail closed, as the gate does for TLS).
"""

from __future__ import annotations

from typing import Callable, Optional

import attrs
from twisted.internet.interfaces import IAddress, IReactorTime

from securetcp._interfaces import IAuditSink
from securetcp.audit.records import (
    AuditConnection,
    PolicyNames,
    addressText,
    connectionAccepted,
    connectionClosed,
    handshakeRejected,
    newConnectionId,
)
from securetcp.policy import Role


@attrs.frozen
class BelowTLSConnection:
    """
    A connection as a layer below TLS saw it, remembered when it was made
    (its records may be written after the socket closed).

    @ivar peer: the client, as far as the layer knows it (a PROXY header's
        source, or the TCP peer).
    @ivar proxy: the load balancer that sent a PROXY header, if any.
    """

    connectionId: str
    local: Optional[str]
    peer: Optional[str]
    proxy: Optional[str] = None

    @classmethod
    def seen(cls, host: Optional[IAddress], peer: Optional[IAddress],
             proxy: Optional[str] = None) -> BelowTLSConnection:
        """
        A new connection between C{host} and C{peer}, with a fresh id.
        """
        return cls(newConnectionId(), addressText(host), addressText(peer), proxy)


class PreTLSAudit:
    """
    Audits the connections a layer below TLS decides.

    @param sink: where the records go, and whether connections may proceed.
    @param policy: returns the policy in force, named in every record.
    @param clock: the time of the records.
    """

    def __init__(self, sink: IAuditSink, policy: Callable[[], PolicyNames],
                 clock: IReactorTime) -> None:
        self._sink = sink
        self._policy = policy
        self._clock = clock

    def _connection(self, connection: BelowTLSConnection, plaintext: bool) -> AuditConnection:
        policy = self._policy()
        return AuditConnection(
            connectionId=connection.connectionId, role=Role.SERVER, local=connection.local,
            peer=connection.peer, proxy=connection.proxy, policy=policy.name,
            profile=policy.profile, plaintext=plaintext)

    def accepting(self) -> bool:
        """
        Whether a connection may reach the application unencrypted: the
        audit log can be written (see L{IAuditSink.accepting}).
        """
        return self._sink.accepting()

    def rejected(self, connection: BelowTLSConnection, reason: str, detail: str) -> None:
        """
        C{connection} was refused before TLS, for C{reason}.
        """
        self._sink.emit(handshakeRejected(self._connection(connection, False),
                                          self._clock.seconds(), reason, detail))

    def plaintextAccepted(self, connection: BelowTLSConnection) -> bool:
        """
        The plaintext C{connection} is to reach the application.

        @return: whether its record was written (see L{IAuditSink.emit}):
            if not, the connection must be refused.
        """
        return bool(self._sink.emit(connectionAccepted(self._connection(connection, True),
                                                       self._clock.seconds())))

    def plaintextClosed(self, connection: BelowTLSConnection, duration: float, bytesIn: int,
                        bytesOut: int) -> None:
        """
        The plaintext C{connection} ended after C{duration} seconds.
        """
        self._sink.emit(connectionClosed(self._connection(connection, True),
                                         self._clock.seconds(), duration, bytesIn, bytesOut))
