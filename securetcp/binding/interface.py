# -*- test-case-name: tests.test_binding -*-
"""
What a protocol binding is: L{IIdentityBinding}, a pure reader of the first
message of one application protocol that says which identities the message
claims, and what to answer when the claim is refused.

A binding does no I/O: the connection layer (L{securetcp._firstmessage})
feeds it the bytes received so far and acts on its answers::

    message = binding.read(data)       # None: more bytes, please
    message.claims["mqttClientId"]     # 'pump-0042'
    transport.write(binding.refusal(message, "mqttClientId", policy, now))

A protocol whose every message claims an identity (HL7 v2: every message
has its own MSH-3/MSH-4) also provides C{stream()}: a reader of every
message of one connection (L{IMessageStream}), so each is judged before the
application sees it.  DICOM and MQTT name their identity once per
connection: their bindings have no C{stream}, and the connection layer
steps out of the data path once the first message is judged.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Union

import attrs
from zope.interface import Attribute, Interface

from securetcp.protocols import MalformedMessage


@attrs.frozen
class FirstMessage:
    """
    What a binding read from the first message (or, for a binding with a
    C{stream}, from any message).

    @ivar claims: the identities the message claims, by claim key
        (C{"hl7SendingFacility"}): every key of the binding's C{claimKeys},
        C{None} for one the message leaves out (an MQTT CONNECT without a
        user name).  The rules that name none of these keys do not apply.
        Identifiers only: they are written to the audit log.
    @ivar message: the protocol reader's own value (an HL7 header, an MQTT
        CONNECT), for the binding's L{IIdentityBinding.refusal}.
    """

    claims: Mapping[str, Optional[str]]
    message: Any = None


class IIdentityBinding(Interface):
    """
    Reads the first message of one application protocol for the
    identities it claims.  Providers are pure (no I/O, no clock: the time is
    given) and hold no per-connection state: one provider serves every
    connection.
    """

    name = Attribute("The protocol's short name (C{\"hl7\"}), as C{binding=} names it.")
    claimKeys = Attribute(
        "The claims it reads: a mapping of claim key (C{\"hl7SendingFacility\"}) to what it "
        "is, in words; a C{[[bind]]} rule may constrain only these.")
    maxBytes = Attribute(
        "The most bytes it ever needs to decide: the connection is refused as oversized "
        "beyond them, whatever L{read} says.")

    def read(data: bytes) -> Optional[FirstMessage]:
        """
        Read the bytes received so far.

        @return: the first message's claims, or C{None} when more bytes
            are needed.
        @raise securetcp.protocols.MalformedMessage: when C{data} is not
            the start of the first message the protocol expects
            (C{protocol_malformed}), or it is too long: then its problem
            says C{"exceeds the bound"} (C{protocol_oversized}).
        """

    def refusal(message: FirstMessage, claim: str, policy: Any, now: float) -> bytes:
        """
        What to send the peer before closing when C{claim} (a claim key, or
        C{""} when no rule names the peer at all) of C{message} is refused:
        the protocol's polite refusal, or C{b""} to just close.

        @param policy: the L{securetcp.binding.IdentityBinding} in force
            (its C{hl7RejectAck}, for example).
        @param now: the time, in seconds since the epoch.
        """


class IMessageStream(Interface):
    """
    Every message of one connection, for a binding whose protocol claims an
    identity in every message: an optional C{stream()} method of an
    L{IIdentityBinding} returns a new provider for each connection.
    """

    def receive(data: bytes) -> List[Union[bytes, FirstMessage, MalformedMessage]]:
        """
        Read the next bytes of the connection (from its very first byte).

        @return: in stream order, the bytes to pass on unchanged, and a
            L{FirstMessage} for each message whose claims are read, before
            any byte of that message (so the connection layer judges it
            before it passes the message on); a L{MalformedMessage} (whose
            problem says C{"exceeds the bound"} when the message is too
            long to judge within the binding's C{maxBytes}) is the last
            item of a stream that cannot go on.  Nothing unjudged is held
            beyond C{maxBytes}.
        """
