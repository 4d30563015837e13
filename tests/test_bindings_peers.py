"""
Identity binding against real peers, over loopback, through C{twistd
securetcp terminate}: PyPI's C{hl7} MLLP client to an MLLP backend,
C{mosquitto_pub} to a C{mosquitto} broker, dcmtk's C{storescu +tls} to
C{storescp}; each with a claim its certificate may make (it gets through)
and one it may not (the backend sees nothing, the peer gets the protocol's
refusal, the audit file names the claim and never the patient data).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ._dcmtk import ECHOSCU, PATIENT_ID, PATIENT_NAME, STORESCP, STORESCU, dicomFile, needDcmtk
from ._net import escape, freePort
from ._twistd import PEER_TIMEOUT, START_TIMEOUT, Program, TapProcessMixin, auditEvents, blockUntil

MOSQUITTO = shutil.which("mosquitto")
MOSQUITTO_PUB = shutil.which("mosquitto_pub")
MOSQUITTO_SUB = shutil.which("mosquitto_sub")

WARD3 = r"uri\:spiffe\://hospital.example/ward3/*"

#: An MLLP backend: it counts its connections in a file, appends every
#: message it receives to another and acknowledges each (MSA-1 AA).
HL7_BACKEND = r'''
import asyncio, sys
port, count, received = int(sys.argv[1]), sys.argv[2], sys.argv[3]
connections = 0
async def serve(reader, writer):
    global connections
    connections += 1
    open(count, "w").write(str(connections))
    data = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
        while b"\x1c\r" in data:
            message, data = data.split(b"\x1c\r", 1)
            open(received, "ab").write(message + b"\n")
            writer.write(b"\x0bMSH|^~\\&|HIS|HOSP|PUMP|WARD3|20260101||ACK|A1|P|2.5\rMSA|AA|MSG42\r\x1c\r")
            await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print("backend listening on %d" % port, flush=True)
    await server.serve_forever()
asyncio.run(main())
'''

#: PyPI hl7's asyncio MLLP client with a client certificate: on one
#: connection it sends a message from each facility given in turn (control
#: IDs MSG42, MSG43...) and prints each acknowledgement's MSA segment, or
#: CLOSED when the server closes without one.
HL7_CLIENT = r'''
import asyncio, ssl, sys
import hl7
from hl7.mllp import open_hl7_connection
port, ca, cert, key = sys.argv[1:5]
async def main():
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    reader, writer = await asyncio.wait_for(open_hl7_connection(
        "localhost", int(port), ssl=context), 10)
    for number, facility in enumerate(sys.argv[5:], 42):
        message = hl7.parse("MSH|^~\\&|PUMP|%s|HIS|HOSP|20260101120000||ORU^R01|MSG%d|P|2.5\r"
                            "PID|1||PID-4711-XYZ^^^HOSP^MR||Doe^Jane||19700101|F\r"
                            "OBX|1|NM|8867-4^Heart rate^LN||72|/min\r" % (facility, number))
        try:
            writer.writemessage(message)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), 10)
            print("ACK", str(ack.segment("MSA")), flush=True)
        except (asyncio.IncompleteReadError, ConnectionError):
            print("CLOSED", flush=True)
            break
    writer.close()
asyncio.run(main())
'''


class BindingPeersTestCase(TapProcessMixin, SynchronousTestCase):
    """
    C{terminate} with a binding in front of a backend.
    """

    def terminateWith(self, backendPort: int, binding: str) -> int:
        """
        Start C{terminate} whose C{mtls:} listener adds C{binding} (endpoint
        arguments) in front of 127.0.0.1:C{backendPort}; return its port.
        """
        def listen(port: int) -> List[str]:
            flag, description = self.mtlsListen(port)
            return [flag, description + ":" + binding]

        port, _ = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                              "--audit-log", self.audit, listen=listen)
        return port  # type: ignore[no-any-return]

    def assertNoPatientData(self, *values: str) -> None:
        """
        The audit file holds none of C{values}.
        """
        with open(self.audit, encoding="utf-8") as f:
            text = f.read()
        for value in values:
            self.assertNotIn(value, text)

    def mismatch(self, **fields: Any) -> Any:
        record = self.waitForEvent("handshake.rejected", reason="protocol_identity_mismatch")[-1]
        for key, value in fields.items():
            self.assertEqual(record["binding"]["claims"][key], value)
        self.assertEqual(record["peerIdentity"]["san"]["uri"],
                         ["spiffe://hospital.example/ward3/pump-0042"])
        return record


class HL7Tests(BindingPeersTestCase):
    """
    PyPI's C{hl7} MLLP client, sending as the right and a wrong facility.
    """

    def setUp(self) -> None:
        super().setUp()
        try:
            import hl7.mllp  # noqa: F401
        except ImportError:
            raise SkipTest("the hl7 package (PyPI) is not installed") from None

    def send(self, port: int, *facilities: str) -> Program:
        script = os.path.join(self.workdir, "hl7client.py")
        with open(script, "w") as f:
            f.write(HL7_CLIENT)
        pki = self.pki
        client = Program(self, [sys.executable, script, str(port), pki.path("ca.pem"),
                                pki.path("client.pem"), pki.path("client.key"), *facilities],
                         "hl7client")
        self.assertEqual(client.waitExit(), 0, client.describe())
        return client

    def backend(self) -> Any:
        """
        Start the MLLP backend; return its port, and the files it counts
        its connections in and appends the messages it receives to.
        """
        script = os.path.join(self.workdir, "hl7backend.py")
        with open(script, "w") as f:
            f.write(HL7_BACKEND)
        count = os.path.join(self.workdir, "hl7-connections")
        received = os.path.join(self.workdir, "hl7-received")
        backendPort, _ = self.startListening(
            lambda p: [sys.executable, script, str(p), count, received], "hl7backend",
            lambda p: b"backend listening on %d" % p)
        return backendPort, count, received

    def test_laterMessage(self) -> None:
        """
        Every message on a connection is judged: a device that sends a
        message as C{WARD3} and then, on the same connection, one as
        C{WARD9} gets the first to the backend (acknowledged) and the
        reject ACK of the second, which the backend never sees; the
        connection's close is audited with the refused claim, never the
        patient.
        """
        backendPort, count, received = self.backend()
        port = self.terminateWith(backendPort, f"bind={WARD3}, hl7SendingFacility=WARD3"
                                               ":hl7RejectAck=true")
        client = self.send(port, "WARD3", "WARD9", "WARD3")
        self.assertEqual(client.out.splitlines(),
                         [b"ACK MSA|AA|MSG42", b"ACK MSA|AR|MSG43|sender not authorized for "
                          b"this certificate", b"CLOSED"], client.describe())
        [closed] = self.waitForEvent("connection.closed")
        self.assertEqual((closed["refused"]["reason"], closed["refused"]["message"]),
                         ("protocol_identity_mismatch", 2))
        self.assertEqual(closed["refused"]["claims"]["hl7SendingFacility"], "WARD9")
        self.assertEqual(closed["binding"]["claims"]["hl7SendingFacility"], "WARD3")
        self.assertEqual(self.connectionCount(count), 1)
        with open(received, "rb") as f:
            messages = f.read()
        self.assertIn(b"|PUMP|WARD3|", messages)
        self.assertNotIn(b"WARD9", messages)
        self.assertNotIn(b"MSG43", messages)
        self.assertNotIn(b"MSG44", messages)
        self.assertNoPatientData("PID-4711", "Doe^Jane", "Heart rate", "19700101")

    def test_facility(self) -> None:
        """
        A message from MSH-4 C{WARD3} reaches the MLLP backend whole and is
        acknowledged; one from C{WARD9} by the same device is refused with
        an application reject ACK (C{hl7RejectAck}), the backend never sees
        a connection, and the audit names the claim, never the patient.
        """
        backendPort, count, received = self.backend()
        port = self.terminateWith(backendPort, f"bind={WARD3}, hl7SendingFacility=WARD3"
                                               ":hl7RejectAck=true")

        self.assertIn(b"ACK MSA|AA|MSG42", self.send(port, "WARD3").out)
        with open(received, "rb") as f:
            self.assertIn(b"|PUMP|WARD3|", f.read())
        self.assertEqual(self.connectionCount(count), 1)

        refused = self.send(port, "WARD9")
        self.assertIn(b"ACK MSA|AR|MSG42|", refused.out)
        self.mismatch(hl7SendingFacility="WARD9")
        self.assertEqual(self.connectionCount(count), 1)
        with open(received, "rb") as f:
            self.assertNotIn(b"WARD9", f.read())
        self.assertNoPatientData("PID-4711", "Doe^Jane", "Heart rate", "19700101")


class MQTTTests(BindingPeersTestCase):
    """
    C{mosquitto_pub} with the right and a wrong client identifier, to a
    real C{mosquitto} broker.
    """

    def setUp(self) -> None:
        super().setUp()
        if None in (MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_SUB):
            raise SkipTest("mosquitto and mosquitto-clients are not installed")

    def broker(self) -> Any:
        config = os.path.join(self.workdir, "mosquitto.conf")

        def argv(port: int) -> List[str]:
            with open(config, "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_dest stderr\nlog_type all\nconnection_messages true\n")
            return [MOSQUITTO or "", "-c", config]

        return self.startListening(argv, "mosquitto", lambda p: b"running")

    def publish(self, port: int, clientId: str, *extra: str) -> Program:
        pki = self.pki
        return Program(self, [MOSQUITTO_PUB or "", "-h", "localhost", "-p", str(port),
                              "--cafile", pki.path("ca.pem"), "--cert", pki.path("client.pem"),
                              "--key", pki.path("client.key"), "-i", clientId,
                              "-t", "ward3/pump", "-m", f"from {clientId}", *extra], "pub")

    def test_clientId(self) -> None:
        """
        A device whose client identifier is its certificate's CN (the
        rule of a bindings file shared with other protocols' listeners)
        publishes through to the broker; one claiming another device's
        identifier gets CONNACK "not authorized" (MQTT 3.1.1 and 5) and the
        broker never sees its connection.
        """
        brokerPort, broker = self.broker()
        registry = os.path.join(self.workdir, "devices.toml")
        with open(registry, "w") as f:  # one registry for every protocol's listener
            f.write('[[bind]]\npeer = "cn:CT-*"\ndicomCallingAE = ["{cn}"]\n'
                    '[[bind]]\npeer = "uri:spiffe://hospital.example/ward3/*"\n'
                    'hl7SendingFacility = ["WARD3"]\ndicomCallingAE = ["PUMP3*"]\n'
                    'mqttClientId = ["{cn}"]\n')
        port = self.terminateWith(brokerPort, f"binding=mqtt:bindings={escape(registry)}")
        subscriber = Program(self, [MOSQUITTO_SUB or "", "-h", "127.0.0.1", "-p",
                                    str(brokerPort), "-t", "ward3/#", "-C", "1", "-W", "10"],
                             "sub")
        broker.waitFor(b"New client connected", what="the subscriber")
        self.assertEqual(self.publish(port, "PUMP-0042").waitExit(), 0)
        self.assertEqual(subscriber.waitExit(), 0, subscriber.describe())
        self.assertIn(b"from PUMP-0042", subscriber.out)

        for extra, answer in [((), b"not authorised"), (("-V", "mqttv5"), b"Not authorized")]:
            refused = self.publish(port, "PUMP-0099", *extra)
            self.assertNotEqual(refused.waitExit(), 0)
            self.assertIn(answer, refused.err)
        self.assertEqual(len(auditEvents(self.audit, "handshake.rejected")), 2)
        self.mismatch(mqttClientId="PUMP-0099")
        self.assertEqual(broker.err.count(b"New connection from"), 2, broker.describe())
        self.assertNotIn(b"PUMP-0099", broker.err)


class DICOMTests(BindingPeersTestCase):
    """
    dcmtk's C{storescu +tls} with the right and a wrong calling AE title,
    to C{storescp}.
    """

    def setUp(self) -> None:
        super().setUp()
        needDcmtk()

    def store(self, port: int, callingAE: str, image: str) -> Program:
        pki = self.pki
        return Program(self, [STORESCU or "", "+tls", pki.path("client.key"),
                              pki.path("client.pem"), "+cf", pki.path("ca.pem"),
                              "-aet", callingAE, "-aec", "STORESCP", "localhost", str(port),
                              image], "storescu")

    def test_callingAE(self) -> None:
        """
        A calling AE title the rule allows stores the image in
        C{storescp}; another is rejected with A-ASSOCIATE-RJ (calling AE
        title not recognised), which storescu reports, and C{storescp}
        sees no association.
        """
        image = dicomFile(os.path.join(self.workdir, "image"))
        stored = os.path.join(self.workdir, "stored")
        os.makedirs(stored)
        backendPort = freePort()
        scp = Program(self, [STORESCP or "", "-v", "-od", stored, str(backendPort)], "storescp")

        def answers() -> bool:
            # storescp says nothing when it listens: an echo tells
            echo = subprocess.run([ECHOSCU or "", "127.0.0.1", str(backendPort)],
                                  capture_output=True, timeout=PEER_TIMEOUT)
            return echo.returncode == 0

        blockUntil(answers, START_TIMEOUT, "storescp to listen", scp.describe)
        port = self.terminateWith(backendPort, f"bind={WARD3}, dicomCallingAE=PUMP3*")

        good = self.store(port, "PUMP3A", image)
        self.assertEqual(good.waitExit(30), 0, good.describe())
        self.assertEqual(len(os.listdir(stored)), 1)
        associations = (scp.out + scp.err).count(b"Association Received")
        self.assertGreaterEqual(associations, 2, scp.describe())  # an echo, the store

        bad = self.store(port, "CT1", image)
        self.assertNotEqual(bad.waitExit(30), 0)
        self.assertIn(b"Association Rejected", bad.err + bad.out)
        self.assertIn(b"Calling AE Title Not Recognized", bad.err + bad.out)
        self.mismatch(dicomCallingAE="CT1", dicomCalledAE="STORESCP")
        self.assertEqual((scp.out + scp.err).count(b"Association Received"), associations,
                         scp.describe())
        self.assertEqual(len(os.listdir(stored)), 1)
        self.assertNoPatientData(PATIENT_ID, PATIENT_NAME)
