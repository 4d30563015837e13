# -*- test-case-name: tests.test_binding -*-
"""
Binding the identity an application protocol claims to the peer's
certificate: a server reads the first message of the protocol (HL7 v2 over
MLLP, DICOM, MQTT, or one of your own), and refuses a peer whose message
claims an identity its C{[[bind]]} rules do not allow, before the
application (or the backend) sees a byte::

    policy = buildPolicy(certKey="server.pem", privateKey="server.key",
                         caCerts="devices-ca.pem", clientAuth="required",
                         binding="hl7",
                         bind="uri:spiffe://hospital.example/ward3/*, "
                              "hl7SendingFacility=WARD3")

See C{docs/bindings.md}.
"""

from __future__ import annotations

from securetcp.binding.interface import FirstMessage, IIdentityBinding, IMessageStream
from securetcp.binding.part import IdentityBinding, judge
from securetcp.binding.protocols import BINDINGS, DICOMBinding, HL7Binding, MQTTBinding
from securetcp.binding.rules import BindingRule, ClaimPattern, bindingRules

__all__ = [
    "BINDINGS", "BindingRule", "ClaimPattern", "DICOMBinding", "FirstMessage", "HL7Binding",
    "IIdentityBinding", "IMessageStream", "IdentityBinding", "MQTTBinding", "bindingRules",
    "judge",
]
