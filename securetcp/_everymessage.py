# -*- test-case-name: tests.test_everymessage -*-
"""
Every message of an admitted connection, for an identity binding whose
protocol claims an identity in every message (HL7 v2: each message has its
own MSH-3/MSH-4): the gate hands what it receives to a L{MessageGuard}
instead of the application, and the guard judges each message by the same
C{[[bind]]} rules as the first before the application sees any of it::

    guard = inspection.guard(application)    # None for DICOM, MQTT
    guard.dataReceived(data)                 # the gate's data, in order

The guard costs a C{bytes.find} per chunk (it looks for the protocol's
frame delimiters, never at each byte in Python); it keeps only the start of
a message until its claims can be read (at most the binding's C{maxBytes});
and it passes on the bytes of a message as soon as the message is allowed,
never holding them beyond its frame.

A message that claims an identity the rules refuse (or that cannot be read,
or is too long to judge) ends the connection: the protocol's refusal is
sent when the policy asks for it (HL7's reject ACK with C{hl7RejectAck}),
nothing of that message nor of what follows reaches the application (the
messages before it did), and the connection's C{connection.closed} record
says why in its C{refused} part (L{lost}).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IProtocol
from twisted.logger import Logger

from securetcp.binding import FirstMessage, IdentityBinding, IMessageStream
from securetcp.protocols import MalformedMessage

_log = Logger()


class Inspection(TypingProtocol):
    """
    What the guard uses of the connection's
    L{securetcp._firstmessage.FirstMessageInspection}.
    """

    connection: Any
    binding: IdentityBinding

    def claims(self, message: FirstMessage) -> Dict[str, Optional[str]]: ...

    def problem(self, e: MalformedMessage) -> Tuple[str, str]: ...

    def verdict(self, message: FirstMessage) -> Optional[Tuple[str, bytes]]: ...


class MessageGuard:
    """
    The messages of one admitted connection, each judged before it is
    passed on to the application.

    @ivar messages: how many messages have been read (the first, judged
        before admission, included).
    @ivar refused: once a message has been refused, what the audit record
        says of it: C{reason} (a rejection reason), C{detail}, C{message}
        (its number on the connection, from 1) and C{claims} (identifiers
        only, C{None} when they could not be read).
    """

    def __init__(self, inspection: Inspection, stream: IMessageStream,
                 application: IProtocol) -> None:
        self.inspection = inspection
        self.stream = stream
        self.application = application
        self.messages = 0
        self.refused: Optional[Dict[str, Any]] = None
        self._dropTimer: Any = None

    def dataReceived(self, data: bytes) -> None:
        """
        The peer sent C{data}: pass on what belongs to allowed messages.
        """
        if self.refused is not None:
            return  # the connection is closing: nothing more reaches the application
        try:
            items = self.stream.receive(data)
        except Exception:
            _log.failure("the identity binding's message stream failed")
            self._refuse("internal_error", "the identity binding's message stream failed")
            return
        for item in items:
            if isinstance(item, bytes):
                self.application.dataReceived(item)
            elif isinstance(item, FirstMessage):
                self.messages += 1
                # the first message was judged before the connection was admitted
                if self.messages > 1 and not self._allowed(item):
                    return
            else:
                self.messages += 1
                self._refuse(*self.inspection.problem(item))
                return

    def _allowed(self, message: FirstMessage) -> bool:
        verdict = self.inspection.verdict(message)
        if verdict is None:
            return True
        detail, answer = verdict
        self._refuse("protocol_identity_mismatch", detail, answer,
                     self.inspection.claims(message))
        return False

    def _refuse(self, reason: str, detail: str, answer: bytes = b"",
                claims: Optional[Dict[str, Optional[str]]] = None) -> None:
        self.refused = {"reason": reason, "detail": detail, "message": self.messages,
                        "claims": claims}
        connection = self.inspection.connection
        transport = connection.transport
        if answer:
            transport.write(answer)
        # the application is done with the connection: a producer it
        # registered (terminate's backend) would hold the TLS close back,
        # and a paused read would hide the peer's own close
        if getattr(transport, "_producer", None) is not None:  # a GatedTLSProtocol's
            transport.unregisterProducer()
        transport.resumeProducing()
        transport.loseConnection()
        # a peer that does not finish the TLS close is dropped
        self._dropTimer = connection.gate.clock.callLater(self.inspection.binding.timeout,
                                                          self._drop)

    def _drop(self) -> None:
        self._dropTimer = None
        self.inspection.connection.transport.abortConnection()

    def lost(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """
        The connection is closed.

        @return: when it was closed for a refused message, the close
            reason and the C{refused} part of its C{connection.closed}
            record; else C{None}.
        """
        if self._dropTimer is not None and self._dropTimer.active():
            self._dropTimer.cancel()
        self._dropTimer = None
        if self.refused is None:
            return None
        refused = self.refused
        return f"{refused['reason']}: {refused['detail']}", refused
