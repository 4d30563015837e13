# -*- test-case-name: tests.test_binding -*-
"""
The bindings securetcp ships: HL7 v2 over MLLP, the DICOM upper layer and
MQTT, each an L{IIdentityBinding} over a reader of L{securetcp.protocols}::

    >>> BINDINGS["mqtt"].claimKeys["mqttClientId"]
    'the client identifier of the CONNECT packet'
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Union

from zope.interface import implementer

from securetcp.binding.interface import FirstMessage, IIdentityBinding, IMessageStream
from securetcp.protocols import MalformedMessage, dicom, hl7, mqtt


@implementer(IIdentityBinding)
class HL7Binding:
    """
    HL7 v2 over MLLP: the sender (MSH-3, MSH-4) and the receiver it names
    (MSH-5, MSH-6) of every message, each field as sent (components
    included): the first message admits the connection, and each later one
    is judged (L{stream}) before the application sees it.  A refusal is the application reject acknowledgement
    (MSA-1 C{AR}) when the policy's C{hl7RejectAck} asks for it, else
    nothing: the connection is just closed.
    """

    name = "hl7"
    claimKeys: Mapping[str, str] = {
        "hl7SendingApplication": "MSH-3, the sending application",
        "hl7SendingFacility": "MSH-4, the sending facility",
        "hl7ReceivingApplication": "MSH-5, the receiving application",
        "hl7ReceivingFacility": "MSH-6, the receiving facility",
    }
    maxBytes = hl7.MAX_HEADER

    def read(self, data: bytes) -> Optional[FirstMessage]:
        header = hl7.parseFirstMessage(data)
        return None if header is None else _claims(header)

    def stream(self) -> IMessageStream:
        """
        A reader of every MLLP-framed message of one connection.
        """
        return _HL7Stream()

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        if not getattr(policy, "hl7RejectAck", False):
            return b""
        stamp = time.strftime("%Y%m%d%H%M%S+0000", time.gmtime(now))
        return hl7.rejectACK(message.message, f"SECURETCP{int(now * 1000)}", stamp,
                             "sender not authorized for this certificate")


def _claims(header: hl7.MessageHeader) -> FirstMessage:
    return FirstMessage({
        "hl7SendingApplication": header.sendingApplication,
        "hl7SendingFacility": header.sendingFacility,
        "hl7ReceivingApplication": header.receivingApplication,
        "hl7ReceivingFacility": header.receivingFacility,
    }, header)


@implementer(IMessageStream)
class _HL7Stream:
    """
    L{hl7.MLLPStream}, its headers read as claims.
    """

    def __init__(self) -> None:
        self._stream = hl7.MLLPStream()

    def receive(self, data: bytes) -> List[Union[bytes, FirstMessage, MalformedMessage]]:
        return [_claims(item) if isinstance(item, hl7.MessageHeader) else item
                for item in self._stream.receive(data)]


@implementer(IIdentityBinding)
class DICOMBinding:
    """
    The DICOM upper layer: the calling and called AE titles of the
    A-ASSOCIATE-RQ (spaces stripped).  A refusal is an A-ASSOCIATE-RJ,
    rejected permanently by the service user: calling AE title not
    recognised, or called AE title not recognised when that is the claim
    refused.
    """

    name = "dicom"
    claimKeys: Mapping[str, str] = {
        "dicomCallingAE": "the calling AE title of the A-ASSOCIATE-RQ",
        "dicomCalledAE": "the called AE title of the A-ASSOCIATE-RQ",
    }
    maxBytes = dicom.MAX_ASSOCIATE_RQ

    def read(self, data: bytes) -> Optional[FirstMessage]:
        request = dicom.parseAssociateRequest(data)
        if request is None:
            return None
        return FirstMessage({"dicomCallingAE": request.callingAE,
                             "dicomCalledAE": request.calledAE}, request)

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        if claim == "dicomCalledAE":
            return dicom.associateReject(dicom.CALLED_AE_NOT_RECOGNIZED)
        return dicom.associateReject(dicom.CALLING_AE_NOT_RECOGNIZED)


@implementer(IIdentityBinding)
class MQTTBinding:
    """
    MQTT 3.1, 3.1.1 and 5: the client identifier and user name of the
    CONNECT packet (never its password).  A refusal is the CONNACK "not
    authorized" of the client's protocol level.
    """

    name = "mqtt"
    claimKeys: Mapping[str, str] = {
        "mqttClientId": "the client identifier of the CONNECT packet",
        "mqttUsername": "the user name of the CONNECT packet",
    }
    maxBytes = mqtt.MAX_CONNECT

    def read(self, data: bytes) -> Optional[FirstMessage]:
        connect = mqtt.parseConnect(data)
        if connect is None:
            return None
        return FirstMessage({"mqttClientId": connect.clientId,
                             "mqttUsername": connect.username}, connect)

    def refusal(self, message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        return mqtt.notAuthorized(message.message.level)


#: The bindings securetcp ships, by name.
BINDINGS: Dict[str, IIdentityBinding] = {
    b.name: b for b in (HL7Binding(), DICOMBinding(), MQTTBinding())}
