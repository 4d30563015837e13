"""
Tests for when L{SecureServerEndpoint.listen} audits C{policy.loaded}: once
the inner endpoint listens, so that an audit trail never claims a policy
was loaded for a listener that never listened (a port in use).
"""

from __future__ import annotations

import socket
from typing import Any, List

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from securetcp import buildPolicy
from securetcp.endpoints import serverEndpoint

from ._pki import sharedPKI
from ._recording import AuditRecorder


class _Later:
    """
    An inner endpoint whose C{listen} fires when the test says.
    """

    def __init__(self) -> None:
        self.listening: Deferred[Any] = Deferred()

    def listen(self, factory: Any) -> Deferred[Any]:
        return self.listening


class ListenAuditTests(SynchronousTestCase):
    """
    C{policy.loaded} follows the listen's outcome.
    """

    def setUp(self) -> None:
        pki = sharedPKI()
        self.policy = buildPolicy(certKey=pki.path("server.pem"),
                                  privateKey=pki.path("server.key"))
        self.audit = AuditRecorder()

    def endpoint(self, inner: Any) -> Any:
        return serverEndpoint(MemoryReactorClock(), inner, self.policy,
                              emitter=self.audit.emitter())

    def test_portInUse(self) -> None:
        """
        A listen on a port another socket holds (a real one, on
        127.0.0.1) fails as Twisted's endpoint fails, and audits nothing.
        """
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        inner = TCP4ServerEndpoint(reactor, holder.getsockname()[1], interface="127.0.0.1")
        failure = self.failureResultOf(self.endpoint(inner).listen(Factory.forProtocol(Protocol)),
                                       CannotListenError)
        self.assertIn("Address already in use", str(failure.value))
        self.assertEqual(self.audit.records, [])

    def test_afterListening(self) -> None:
        """
        C{policy.loaded} is audited when the inner endpoint's listen
        succeeds, not before, and the port is given back; a listen that
        fails later audits nothing either.
        """
        inner = _Later()
        listening = self.endpoint(inner).listen(Factory.forProtocol(Protocol))
        self.assertEqual(self.audit.records, [])
        port = object()
        inner.listening.callback(port)
        self.assertIs(self.successResultOf(listening), port)
        [loaded] = self.audit.events("policy.loaded")
        self.assertEqual((loaded["role"], loaded["policy"]), ("server", self.policy.name))

        failing = _Later()
        listened: List[Any] = []
        self.endpoint(failing).listen(Factory.forProtocol(Protocol)).addErrback(listened.append)
        failing.listening.errback(CannotListenError("127.0.0.1", 6661, OSError(98, "in use")))
        self.assertEqual(len(listened), 1)
        self.assertEqual(len(self.audit.events("policy.loaded")), 1)
