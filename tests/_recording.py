"""
Recorders for assertions: audit records kept in memory, the lines of an
audit file as bytes (to tamper with them), and application protocols and
factories that keep what happened to them (what they received, whether
they were connected, how they were lost).

    audit = AuditRecorder()
    endpoint = serverEndpoint(reactor, inner, policy, emitter=audit.emitter())
    app = RecordingFactory(echo=True)
    ...
    [record] = audit.events("connection.accepted")
    [protocol] = app.built
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from securetcp import AUDIT_NAMESPACE, AuditEmitter

#: Every key each connection audit record carries.
RECORD_KEYS = (
    "schema", "event", "time", "connection", "role", "local", "peer", "sni",
    "version", "cipher", "group", "alpn", "peerIdentity", "policy", "profile",
    "compliance",
)


@implementer(IPushProducer)
class RecordingProducer:
    """
    A streaming producer that only records what it is told.
    """

    def __init__(self) -> None:
        self.calls: List[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class AuditRecorder:
    """
    Collects audit records emitted through an L{AuditEmitter} it makes.
    """

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def __call__(self, event: Dict[str, Any]) -> None:
        record = event.get("securetcp_audit")
        if record is not None:
            self.records.append(record)

    def emitter(self) -> AuditEmitter:
        """
        An L{AuditEmitter} whose records this recorder keeps.
        """
        return AuditEmitter(Logger(namespace=AUDIT_NAMESPACE, observer=self))

    def events(self, name: str) -> List[Dict[str, Any]]:
        """
        The records of event C{name}, in the order they were emitted.
        """
        return [r for r in self.records if r["event"] == name]

    def finished(self) -> int:
        """
        How many connections have ended (rejected, or accepted and closed).
        """
        return len(self.events("handshake.rejected")) + len(self.events("connection.closed"))


# -- server applications ------------------------------------------------------


class Echo(LineReceiver):
    """
    Echoes each line; counts how often the application was connected.
    """

    delimiter = b"\n"

    def makeConnection(self, transport: Any) -> None:
        self.factory.made += 1
        super().makeConnection(transport)

    def lineReceived(self, line: bytes) -> None:
        self.sendLine(line)


class CountingEchoFactory(Factory):
    """
    Builds L{Echo}s and counts C{buildProtocol} and C{makeConnection} calls.
    """

    protocol = Echo
    noisy = False

    def __init__(self) -> None:
        self.built = 0
        self.made = 0

    def buildProtocol(self, addr: Any) -> Any:
        self.built += 1
        return super().buildProtocol(addr)


class RecordingProtocol(Protocol):
    """
    An application protocol that records what happens to it (what it
    received, here and on its factory; whether the handshake was complete
    when it was connected; the peer's certificate; how it was lost),
    optionally echoes, and optionally writes a greeting when connected.
    """

    def __init__(self, factory: RecordingFactory) -> None:
        self.factory = factory
        self.received: List[bytes] = []
        self.lost: Any = None
        self.handshakeDoneAtMakeConnection: Optional[bool] = None
        self.peerCertificate: Any = None

    def makeConnection(self, transport: Any) -> None:
        # The peer's Finished message has been processed only once the
        # handshake is complete.
        handle = transport.getHandle()
        self.handshakeDoneAtMakeConnection = (
            handle.get_peer_finished() is not None
            and handle.get_finished() is not None
        )
        super().makeConnection(transport)

    def connectionMade(self) -> None:
        self.peerCertificate = self.transport.getPeerCertificate()
        if self.factory.greeting:
            self.transport.write(self.factory.greeting)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.factory.received.append(data)
        if self.factory.echo:
            self.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = reason


class RecordingFactory(Factory):
    """
    Builds L{RecordingProtocol}s and keeps every one it built, and every
    chunk of data any of them received, in order.
    """

    noisy = False

    def __init__(self, echo: bool = False, greeting: bytes = b"") -> None:
        self.echo = echo
        self.greeting = greeting
        self.built: List[RecordingProtocol] = []
        self.received: List[bytes] = []

    def buildProtocol(self, addr: Any) -> RecordingProtocol:
        protocol = RecordingProtocol(self)
        self.built.append(protocol)
        return protocol


# -- client applications ------------------------------------------------------


class Collector(Protocol):
    """
    A client application protocol that keeps what it receives.
    """

    def __init__(self) -> None:
        self.data = b""
        self.lost: Deferred[None] = Deferred()
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure) -> None:
        if not self.lost.called:
            self.lost.callback(None)


class CollectorFactory(Factory):
    """
    Builds L{Collector}s and keeps every one it built.
    """

    protocol = Collector
    noisy = False

    def __init__(self) -> None:
        self.protocols: List[Collector] = []

    def buildProtocol(self, addr: Any) -> Collector:
        p = Collector()
        p.factory = self
        self.protocols.append(p)
        return p


def fileLines(path: str) -> List[bytes]:
    """
    The lines of the file C{path}, as written (with their newlines).
    """
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def writeFileLines(path: str, lines: Sequence[bytes]) -> None:
    """
    Replace the file C{path} with C{lines} (each with its own newline).
    """
    with open(path, "wb") as f:
        f.write(b"".join(lines))
