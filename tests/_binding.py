"""
What the tests of identity bindings share: HL7 and MQTT first messages
with patient data to look for in the audit log, and an in-memory mTLS
server with a binding and securetcp's client on one clock::

    class Tests(InspectionTestCase):
        def test_x(self):
            connection = self.connect(hl7(b"WARD3"), binding="hl7", bind=...)
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.records import AUDIT_NAMESPACE
from securetcp.config import buildPolicy
from securetcp.endpoints import SecureClientEndpoint, SecureServerEndpoint
from securetcp.protocols.hl7 import frame

from ._iosim import connectEndpoints
from ._pki import sharedPKI
from ._recording import RecordingFactory

#: A message whose PID segment must never reach the audit log.
PID = b"PID|1||PID-4711-XYZ^^^HOSP^MR||Doe^Jane||19700101|F\r"


def hl7(facility: bytes) -> bytes:
    """
    An MLLP-framed HL7 v2 message from sending facility C{facility}.
    """
    return frame(b"MSH|^~\\&|PUMP|" + facility + b"|HIS|HOSP|20260101120000||ORU^R01|MSG42|P|2.5\r"
                 + PID)


def mqttConnect(clientId: bytes) -> bytes:
    """
    An MQTT 5 CONNECT with client identifier C{clientId}.
    """
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(clientId).to_bytes(2, "big") + clientId
    return b"\x10" + bytes([len(body)]) + body



WARD3 = "uri:spiffe://hospital.example/ward3/*"


class InspectionTestCase(SynchronousTestCase):
    """
    An mTLS server with a binding, securetcp's client, one clock, the
    server's audit records.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.clock = Clock()
        self.events: List[Dict[str, Any]] = []
        self.emitter = AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                                           observer=self.events.append))

    def serverRecords(self) -> List[Dict[str, Any]]:
        return [e["securetcp_audit"] for e in self.events
                if e["securetcp_audit"]["role"] == "server"]

    def connect(self, first: bytes, cert: str = "client", **binding: Any) -> Any:
        """
        Connect a client with certificate C{cert} that sends C{first} as
        soon as it is connected to a server with the C{binding} options.
        """
        pki = self.pki
        server = self.server = getattr(self, "server", None) or SecureServerEndpoint(
            self.clock, None, buildPolicy(
                certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                caCerts=pki.path("ca.pem"), **binding), mutual=True, clock=self.clock,
            emitter=self.emitter)
        client = SecureClientEndpoint(self.clock, None, buildPolicy(
            caCerts=pki.path("ca.pem"), certKey=pki.path(f"{cert}.pem"),
            privateKey=pki.path(f"{cert}.key")), hostname="localhost", mutual=True,
            clock=self.clock)
        self.serverApp = RecordingFactory()
        self.clientApp = RecordingFactory(greeting=first)
        connection = connectEndpoints(server, client, self.serverApp, self.clientApp,
                                      self.clock)
        connection.pump.flush()
        return connection

    def assertRefused(self, reason: str) -> Dict[str, Any]:
        """
        The server application was never built and the server audited one
        rejection for C{reason}, with no patient data; return the record.
        """
        self.assertEqual(self.serverApp.built, [])
        records = self.serverRecords()
        self.assertEqual([(r["event"], r.get("reason")) for r in records],
                         [("handshake.rejected", reason)])
        self.assertNotIn("PID-4711", json.dumps(records))
        self.assertNotIn("Doe", json.dumps(records))
        return records[0]

    def clientReceived(self) -> bytes:
        return b"".join(self.clientApp.received)
