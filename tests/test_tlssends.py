"""
Tests for how L{securetcp._tls._halfclose.GatedTLSProtocol} hands a TLS 1.3
server's session tickets to TCP: with the reply to the bytes that came with
the client's Finished when there is one (one write for both, as Twisted's
buffered transport would merge them), and at once when there is none.

In memory: a pyOpenSSL client over memory BIOs, the server's TCP transport
a L{StringTransport} that records each write.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

from OpenSSL import SSL
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from securetcp._tls._halfclose import GatedTLSFactory, GatedTLSProtocol
from securetcp._tls.context import ServerConnectionCreator
from securetcp.config import buildPolicy
from securetcp.materials import loadMaterials
from securetcp.policy import Role

from ._pki import sharedPKI

#: the content type of a TLS 1.3 record that carries anything after the handshake
APPLICATION_DATA = 23


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


class WriteRecorder(StringTransport):
    """
    A TCP transport that keeps each write apart.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: List[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


def records(data: bytes) -> List[int]:
    """
    The content types of the TLS records that make up C{data}.
    """
    types = []
    while data:
        kind, _, length = struct.unpack("!BHH", data[:5])
        types.append(kind)
        data = data[5 + length:]
    return types


class TicketSendTests(SynchronousTestCase):
    """
    A TLS 1.3 server's session tickets and the application's reply.
    """

    def handshake(self, withFinished: bytes) -> Tuple[SSL.Connection, WriteRecorder, Clock]:
        """
        Run a TLS 1.3 handshake with an echo server up to the client's
        Finished, which goes with C{withFinished} (application data, if
        any); the server's writes before it are cleared.
        """
        pki = sharedPKI("tlssends")
        policy = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"))
        clock = Clock()
        factory = GatedTLSFactory(ServerConnectionCreator(policy, loadMaterials(policy, Role.SERVER)),
                                  False, Factory.forProtocol(Echo), clock)
        server = factory.buildProtocol(None)
        assert isinstance(server, GatedTLSProtocol)
        transport = WriteRecorder()
        server.makeConnection(transport)
        client = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
        client.set_connect_state()
        for _ in range(3):  # a HelloRetryRequest, if the server wants another group
            try:
                client.do_handshake()
                break
            except SSL.WantReadError:
                server.dataReceived(client.bio_read(1 << 16))
                client.bio_write(b"".join(transport.writes))
                del transport.writes[:]
        self.assertEqual(client.get_protocol_version_name(), "TLSv1.3")
        if withFinished:
            client.send(withFinished)
        del transport.writes[:]
        server.dataReceived(client.bio_read(1 << 16))
        return client, transport, clock

    def test_ticketsGoWithTheReply(self) -> None:
        """
        When the client's first bytes come with its Finished, the tickets
        wait for the echo: nothing is written until the aggregated reply
        goes out, and then one write carries the two tickets and the echo,
        which the client reads.
        """
        client, transport, clock = self.handshake(b"ping")
        self.assertEqual(transport.writes, [])
        clock.advance(0)
        self.assertEqual(len(transport.writes), 1)
        self.assertEqual(records(transport.writes[0]), [APPLICATION_DATA] * 3)
        client.bio_write(transport.writes[0])
        self.assertEqual(client.recv(100), b"ping")

    def test_ticketsAtOnceWithoutReply(self) -> None:
        """
        When the client's Finished comes alone, the two tickets are written
        at once, in the read that completed the handshake.
        """
        client, transport, clock = self.handshake(b"")
        self.assertEqual(len(transport.writes), 1)
        self.assertEqual(records(transport.writes[0]), [APPLICATION_DATA] * 2)
        clock.advance(0)
        self.assertEqual(len(transport.writes), 1)
        client.bio_write(transport.writes[0])
        self.assertRaises(SSL.WantReadError, client.recv, 100)
