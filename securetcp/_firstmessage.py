# -*- test-case-name: tests.test_firstmessage -*-
"""
The first-message inspector of an identity binding: between the gate's
verdict on the handshake and the application (or C{terminate}'s backend),
it reads the peer's first message with the policy's L{IIdentityBinding},
judges the identities it claims against the C{[[bind]]} rules, and then
either admits the connection, handing the application every byte received
so far unchanged, or refuses it (with the protocol's polite refusal, when
it has one) before the application sees anything::

    gate.inspection = FirstMessageInspection(gate)   # in GateProtocol._admit

It buffers nothing of its own: the gate keeps the bytes that arrive before
admission, and the inspection reads them, bounded in bytes (the binding's
C{maxBytes}) and in time (C{bindingTimeout}).  Once the connection is
admitted the gate passes data straight to the application, and the
inspection costs nothing afterwards; except for a binding whose protocol
claims an identity in every message (HL7 v2): then L{guard} puts a
L{securetcp._everymessage.MessageGuard} in the data path, which judges each
later message the same way.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple
from typing import Protocol as TypingProtocol

from twisted.logger import Logger

from securetcp._everymessage import MessageGuard
from securetcp.binding import FirstMessage, IdentityBinding, judge
from securetcp.binding.part import MAX_SHOWN
from securetcp.identity import PeerIdentity
from securetcp.protocols import MalformedMessage

_log = Logger()

#: What the problem of a reader's L{MalformedMessage} says when the message
#: is too long rather than wrong (every reader of L{securetcp.protocols}
#: words it so).
_BOUND = "exceeds the bound"


class Inspected(TypingProtocol):
    """
    What the inspection uses of the L{securetcp._gateprotocol.GateProtocol}
    whose connection it inspects.
    """

    gate: Any
    transport: Any
    identity: Optional[PeerIdentity]
    inspection: Optional[FirstMessageInspection]
    _buffer: Sequence[bytes]
    _timeout: Any
    _rejected: Optional[Tuple[str, str]]

    def _admit(self) -> None: ...

    def _reject(self, reason: str, detail: str) -> None: ...


class FirstMessageInspection:
    """
    One connection's first message, until it is judged.

    @ivar message: what the binding read, once it has.
    """

    def __init__(self, connection: Inspected) -> None:
        self.connection = connection
        self.binding: IdentityBinding = connection.gate.policy.binding
        self.message: Optional[FirstMessage] = None
        self._decided = False
        clock = connection.gate.clock
        # the gate cancels its timer when it admits, rejects or loses the connection
        connection._timeout = clock.callLater(self.binding.timeout, self._timedOut)
        # the gate is to know its inspection before the verdict on what
        # arrived while it waited (OCSP) admits it
        connection.inspection = self
        self.dataReceived()

    def record(self) -> Dict[str, Any]:
        """
        What the audit records say of the binding: the protocol and the
        identities the peer claimed (identifiers only, shortened).
        """
        assert self.binding.protocol is not None
        claims = None if self.message is None else self.claims(self.message)
        return {"protocol": self.binding.protocol.name, "claims": claims}

    def claims(self, message: FirstMessage) -> Dict[str, Optional[str]]:
        """
        What the audit records say of the claims of C{message}: identifiers
        only, shortened.
        """
        return {key: _short(value) for key, value in message.claims.items()}

    def guard(self, application: Any) -> Optional[MessageGuard]:
        """
        What is to read every later message for C{application}, now that
        the first admitted the connection: C{None} when the protocol claims
        an identity only once per connection (its binding has no C{stream}).
        """
        stream = getattr(self.binding.protocol, "stream", None)
        return None if stream is None else MessageGuard(self, stream(), application)

    def problem(self, e: MalformedMessage) -> Tuple[str, str]:
        """
        The rejection reason and detail of a message the binding could not read.
        """
        assert self.binding.protocol is not None
        oversized = _BOUND in e.problem
        return ("protocol_oversized" if oversized else "protocol_malformed",
                f"{self.binding.protocol.name}: {e.problem}")

    def verdict(self, message: FirstMessage) -> Optional[Tuple[str, bytes]]:
        """
        Judge C{message} by the C{[[bind]]} rules in force.

        @return: C{None} when its claims are allowed; else why not, and
            the protocol's refusal to answer with (C{b""}: none).
        """
        protocol = self.binding.protocol
        assert protocol is not None
        rules = self.binding.rules + self.connection.gate.inForce.materials.bindingRules
        verdict = judge(rules, self.connection.identity, message.claims)
        if verdict is None:
            return None
        claim, detail = verdict
        try:
            answer = protocol.refusal(message, claim, self.binding,
                                      self.connection.gate.clock.seconds())
        except Exception:
            _log.failure("the {name} identity binding's refusal failed", name=protocol.name)
            answer = b""  # refused all the same, without the protocol's answer
        return detail, answer

    def dataReceived(self) -> None:
        """
        More bytes are in the gate's buffer: read them again.
        """
        if self._decided:
            return
        protocol = self.binding.protocol
        assert protocol is not None
        data = b"".join(self.connection._buffer)
        try:
            message = protocol.read(data[:protocol.maxBytes])
        except MalformedMessage as e:
            self._refuse(*self.problem(e))
            return
        except Exception:
            _log.failure("the {name} identity binding failed", name=protocol.name)
            self._refuse("internal_error", f"the {protocol.name} identity binding failed")
            return
        if message is None:
            if len(data) >= protocol.maxBytes:
                self._refuse("protocol_oversized", f"{protocol.name}: no complete first "
                             f"message in {protocol.maxBytes} bytes")
            return
        self.message = message
        verdict = self.verdict(message)
        if verdict is None:
            self._decided = True
            self.connection._admit()
            return
        self._refuse("protocol_identity_mismatch", *verdict)

    def lost(self) -> Tuple[str, str]:
        """
        Why the connection, lost before the verdict, was refused: the peer
        closed it before its first message was complete.
        """
        self._decided = True
        assert self.binding.protocol is not None
        received = sum(map(len, self.connection._buffer))
        return ("peer_closed", f"the peer closed the connection before its first "
                f"{self.binding.protocol.name} message was complete ({received} bytes)")

    def _refuse(self, reason: str, detail: str, answer: bytes = b"") -> None:
        self._decided = True
        connection = self.connection
        connection._reject(reason, detail)
        if answer:
            connection.transport.write(answer)
        connection.transport.loseConnection()

    def _timedOut(self) -> None:
        self.connection._timeout = None
        if self._decided:
            return
        self._decided = True
        self.connection._reject("protocol_timeout", f"no complete first message within "
                                f"bindingTimeout={self.binding.timeout:g}s")
        self.connection.transport.abortConnection()


def _short(value: Optional[str]) -> Optional[str]:
    if value is None or len(value) <= MAX_SHOWN:
        return value
    return value[:MAX_SHOWN] + "..."
