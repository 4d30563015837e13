# -*- test-case-name: tests.test_tap -*-
"""
C{twistd securetcp}: put TLS in front of (or behind) any plaintext TCP
service.

    twistd -n securetcp terminate --listen "mtls:6661:certKey=server.pem:privateKey=server.key:caCerts=devices-ca.pem" --backend tcp:127.0.0.1:2575 --audit-log audit.jsonl
    twistd -n securetcp originate --listen tcp:2576:interface=127.0.0.1 --connect "mtls:host=hl7.example:port=6661:caCerts=ca.pem:certKey=device.pem:privateKey=device.key"
    twistd -n securetcp serve --listen "mtls:6661:..." --app mypackage.hl7:factory
    twistd -n securetcp demo

C{ssl:} is accepted as an alias of C{securessl:} here.  SIGHUP re-reads
certificates, keys, CAs, CRLs and policy files and swaps them in for new
connections; a reload that fails keeps the running configuration.
"""

from __future__ import annotations

import importlib
import os
import signal
from typing import Any, Callable, List, Optional

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger, globalLogPublisher
from twisted.python import usage

from .audit import AuditEmitter, utcTimestamp

_log = Logger(namespace="securetcp.tap")


def _secureString(description: str, policyFile: Optional[str], auditLog: Optional[str]) -> str:
    """
    Accept C{ssl:} as an alias of C{securessl:}; add C{policy=} from
    C{--policy} unless the string names one.
    """
    if description.startswith("ssl:"):
        description = "securessl:" + description[len("ssl:"):]
    if not description.startswith(("securessl:", "mtls:")):
        raise usage.UsageError(
            f"{description!r} is not a securessl: or mtls: endpoint string "
            "(the TLS side must be one)")
    if policyFile and ":policy=" not in description:
        description += ":policy=" + policyFile.replace(":", "\\:")
    return description


class _CommonOptions(usage.Options):
    optParameters = [
        ["policy", None, None, "TOML policy file for the TLS side"],
        ["audit-log", None, None, "write audit records to this file as a hash chain"],
        ["idle-timeout", None, "0", "close connections idle for this many seconds (0: never)"],
    ]

    def postOptions(self) -> None:
        try:
            self["idle-timeout"] = float(self["idle-timeout"])
        except ValueError:
            raise usage.UsageError("--idle-timeout must be a number of seconds") from None


class TerminateOptions(_CommonOptions):
    synopsis = "--listen SECURE_ENDPOINT --backend PLAIN_ENDPOINT"
    longdesc = "Accept TLS (securessl: or mtls:) and forward plaintext to a backend."
    optParameters = [
        ["listen", "l", None, "securessl: or mtls: server endpoint string"],
        ["backend", "b", None, "plaintext client endpoint string, e.g. tcp:127.0.0.1:2575"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "backend"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")


class OriginateOptions(_CommonOptions):
    synopsis = "--listen PLAIN_ENDPOINT --connect SECURE_ENDPOINT"
    longdesc = "Accept plaintext locally and connect out over TLS (securessl: or mtls:)."
    optParameters = [
        ["listen", "l", None, "plaintext server endpoint string, e.g. tcp:2576:interface=127.0.0.1"],
        ["connect", "c", None, "securessl: or mtls: client endpoint string"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "connect"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")


class ServeOptions(_CommonOptions):
    synopsis = "--listen SECURE_ENDPOINT --app MODULE:FACTORY"
    longdesc = "Run an application protocol factory, unchanged, behind the policy endpoint."
    optParameters = [
        ["listen", "l", None, "securessl: or mtls: server endpoint string"],
        ["app", "a", None, "package.module:name of a protocol factory (or a callable returning one)"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "app"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")


class DemoOptions(usage.Options):
    longdesc = ("An mTLS echo server under the NIST profile with a development CA and "
                "certificates (development only), an audit log, and the client commands.")
    optParameters = [
        ["dir", None, "securetcp-demo", "state directory for the development PKI and audit log"],
        ["port", None, "6661", "port on 127.0.0.1"],
    ]


class Options(usage.Options):
    synopsis = "securetcp (terminate|originate|serve|demo) [options]"
    longdesc = __doc__
    subCommands = [
        ["terminate", None, TerminateOptions, "TLS in front of a plaintext backend"],
        ["originate", None, OriginateOptions, "plaintext in, TLS out"],
        ["serve", None, ServeOptions, "an application factory behind TLS"],
        ["demo", None, DemoOptions, "mTLS echo demo with a development PKI"],
    ]

    def __init__(self, build: bool = True) -> None:
        """
        @param build: build the service while parsing (what twistd does),
            so configuration errors are usage errors; C{False} only parses.
        """
        super().__init__()
        self._build = build
        self.service: Optional[service.IService] = None

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("give a mode: terminate, originate, serve or demo")
        if not self._build:
            return
        # Build the service now, so that a bad certificate, key, policy file
        # or endpoint string is reported by twistd as a usage error (one
        # clear line, before anything starts) rather than as a traceback.
        try:
            self.service = makeService(self)
        except usage.UsageError:
            raise
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


# -- the proxy --------------------------------------------------------------


class _Half(Protocol):
    """
    One side of a spliced connection; writes what it reads to the other
    side, with flow control both ways.
    """

    other: Optional[_Half] = None
    idle: Any = None

    def link(self, other: _Half) -> None:
        self.other = other
        other.other = self
        # back-pressure: a side that cannot keep up pauses the other's reading
        self.transport.registerProducer(other.transport, True)  # type: ignore[union-attr]
        other.transport.registerProducer(self.transport, True)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.write(data)
        if self.idle is not None:
            self.idle.reset()

    def connectionLost(self, reason: Any = None) -> None:
        other, self.other = self.other, None
        if other is not None:
            other.other = None
            if other.transport is not None:
                try:
                    other.transport.unregisterProducer()  # type: ignore[attr-defined]
                except Exception:
                    pass
                other.transport.loseConnection()
        if self.idle is not None:
            self.idle.stop()


class _IdleTimer:
    def __init__(self, clock: Any, seconds: float, onIdle: Callable[[], None]) -> None:
        self._clock, self._seconds, self._onIdle = clock, seconds, onIdle
        self._call = clock.callLater(seconds, onIdle) if seconds > 0 else None

    def reset(self) -> None:
        if self._call is not None and self._call.active():
            self._call.reset(self._seconds)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class _Front(_Half):
    """
    The accepted side; connects to the far side when it arrives.
    """

    def __init__(self, factory: SpliceFactory) -> None:
        self.factory = factory
        self.pending: List[bytes] = []

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.pauseProducing()  # type: ignore[attr-defined]
        if self.factory.idleTimeout:
            self.idle = _IdleTimer(self.factory.clock, self.factory.idleTimeout,
                                   self.transport.loseConnection)
        far = Factory.forProtocol(_Half)
        far.noisy = False
        d = self.factory.connectFar(far)
        d.addCallbacks(self._connected, self._failed)

    def _connected(self, far: _Half) -> None:
        if self.transport is None or not getattr(self.transport, "connected", True):
            far.transport.loseConnection()  # type: ignore[union-attr]
            return
        far.idle = self.idle
        self.link(far)
        for data in self.pending:
            far.transport.write(data)  # type: ignore[union-attr]
        self.pending = []
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def _failed(self, failure: Any) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self.factory.emitter.emit({
            "event": "proxy.backend_failed",
            "time": utcTimestamp(self.factory.clock.seconds()),
            "backend": self.factory.farDescription,
            "peer": f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}",
            "detail": failure.getErrorMessage(),
        })
        if self.transport is not None:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.other is None:
            self.pending.append(data)
        else:
            super().dataReceived(data)


class SpliceFactory(Factory):
    """
    For every accepted connection, connect to the far side with
    C{connectFar(factory)} and splice the two.
    """

    noisy = False

    def __init__(self, connectFar: Callable[[Any], Any], farDescription: str, clock: Any,
                 emitter: AuditEmitter, idleTimeout: float = 0) -> None:
        self.connectFar = connectFar
        self.farDescription = farDescription
        self.clock = clock
        self.emitter = emitter
        self.idleTimeout = idleTimeout

    def buildProtocol(self, addr: Any) -> _Front:
        front = _Front(self)
        front.factory = self
        return front


# -- the service ------------------------------------------------------------


class SecureTCPService(service.MultiService):
    """
    The twistd service: listening endpoints, the audit log observer and
    SIGHUP reload.
    """

    def __init__(self, reactor: Any, auditLog: Optional[str],
                 emitter: Optional[AuditEmitter] = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.auditLog = auditLog
        self.emitter = emitter or AuditEmitter()
        self.secureEndpoints: List[Any] = []
        self.listenDescriptions: List[str] = []
        self._observer: Any = None
        self._previousHandler: Any = None

    def startService(self) -> None:
        if self.auditLog:
            from ._auditfile import auditLogObserver

            self._observer = auditLogObserver(self.auditLog)
            globalLogPublisher.addObserver(self._observer)
        if hasattr(signal, "SIGHUP"):
            self._previousHandler = signal.signal(
                signal.SIGHUP, lambda *a: self.reactor.callFromThread(self.reload))
        super().startService()

    def stopService(self) -> Any:
        d = super().stopService()

        def cleanup(result: Any) -> Any:
            if self._observer is not None:
                globalLogPublisher.removeObserver(self._observer)
                self._observer.close()
                self._observer = None
            return result

        if self._previousHandler is not None and hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._previousHandler)
        if d is None:
            return cleanup(None)
        return d.addBoth(cleanup)

    def reload(self) -> bool:
        """
        Re-read every secure server endpoint's files and swap in the new
        configuration; keep the running one if anything is wrong.

        @return: whether every endpoint reloaded.
        """
        from twisted.internet.endpoints import serverFromString

        from .errors import PolicyError

        ok = True
        for endpoint, description in zip(self.secureEndpoints, self.listenDescriptions,
                                         strict=True):
            try:
                fresh = serverFromString(self.reactor, description)
            except (PolicyError, ValueError) as e:
                # the files were read (and refused) while parsing, before the
                # endpoint saw a policy: audit the refusal here
                self.emitter.emit({"event": "policy.reload_refused",
                                   "time": utcTimestamp(self.reactor.seconds()),
                                   "role": "server", "policy": endpoint.policy.name,
                                   "profile": endpoint.policy.profile, "detail": str(e)})
                ok = False
                _log.error("securetcp: reload refused, running configuration kept: {error}",
                           error=str(e))
                continue
            try:
                endpoint.reload(fresh.policy)  # audits reloaded or reload_refused itself
            except (PolicyError, ValueError) as e:
                ok = False
                _log.error("securetcp: reload refused, running configuration kept: {error}",
                           error=str(e))
            else:
                _log.info("securetcp: reloaded {description}", description=_redact(description))
        return ok


def _redact(description: str) -> str:
    parts = description.split(":")
    return ":".join("passphrase=***" if p.startswith("passphrase=") else p for p in parts)


def _loadApp(spec: str) -> IProtocolFactory:
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise usage.UsageError(f"--app {spec!r}: write package.module:name")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise usage.UsageError(f"--app {spec!r}: cannot import {module}: {e}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise usage.UsageError(f"--app {spec!r}: {module} has no {name}")
        obj = getattr(obj, part)
    if IProtocolFactory.providedBy(obj):
        return obj  # type: ignore[no-any-return]
    if callable(obj):
        try:
            made = obj()
        except TypeError as e:  # needs arguments: not a factory-returning callable
            raise usage.UsageError(f"--app {spec!r} is neither a protocol factory nor "
                                   f"returns one when called without arguments: {e}") from None
        if IProtocolFactory.providedBy(made):
            return made  # type: ignore[no-any-return]
    raise usage.UsageError(f"--app {spec!r} is neither a protocol factory nor returns one")


def _parseServer(reactor: Any, description: str) -> Any:
    from twisted.internet.endpoints import serverFromString

    try:
        return serverFromString(reactor, description)
    except ValueError as e:
        raise usage.UsageError(f"--listen: {e}") from None


def makeService(options: Options, reactor: Any = None) -> service.IService:
    """
    Build the service for C{twistd securetcp}.
    """
    if reactor is None:
        built = getattr(options, "service", None)
        if built is not None:
            return built  # type: ignore[no-any-return]
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    mode = options.subCommand
    sub = options.subOptions
    emitter = AuditEmitter()
    if mode == "demo":
        return _demoService(reactor, sub)
    top = SecureTCPService(reactor, sub["audit-log"], emitter)
    if mode in ("terminate", "serve"):
        listen = _secureString(sub["listen"], sub["policy"], None)
        endpoint = _parseServer(reactor, listen)
        top.secureEndpoints.append(endpoint)
        top.listenDescriptions.append(listen)
        if mode == "terminate":
            from twisted.internet.endpoints import clientFromString

            try:
                backend = clientFromString(reactor, sub["backend"])
            except ValueError as e:
                raise usage.UsageError(f"--backend: {e}") from None
            factory: Any = SpliceFactory(backend.connect, sub["backend"], reactor, emitter,
                                         sub["idle-timeout"])
        else:
            factory = _loadApp(sub["app"])
    else:  # originate
        from twisted.internet.endpoints import clientFromString

        secure = _secureString(sub["connect"], sub["policy"], None)
        try:
            remote = clientFromString(reactor, secure)
        except ValueError as e:
            raise usage.UsageError(f"--connect: {e}") from None
        endpoint = _parseServer(reactor, sub["listen"])
        factory = SpliceFactory(remote.connect, _redact(secure), reactor, emitter,
                                sub["idle-timeout"])
    StreamServerEndpointService(endpoint, factory).setServiceParent(top)
    return top


def _demoService(reactor: Any, sub: Any) -> service.IService:
    from twisted.internet.endpoints import TCP4ServerEndpoint

    from ._devpki import ensureDevelopmentPKI
    from .config import buildPolicy
    from .endpoints import serverEndpoint

    try:
        port = int(sub["port"])
    except ValueError:
        raise usage.UsageError("--port must be a number") from None
    directory = os.path.abspath(sub["dir"])
    paths = ensureDevelopmentPKI(directory)
    policy = buildPolicy(name="demo", certKey=paths["serverCert"], privateKey=paths["serverKey"],
                         caCerts=paths["ca"], clientAuth="required")
    endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, port, interface="127.0.0.1"),
                              policy, mutual=True)

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    top = SecureTCPService(reactor, os.path.join(directory, "audit.jsonl"))
    StreamServerEndpointService(endpoint, Factory.forProtocol(Echo)).setServiceParent(top)
    _log.info("securetcp demo: mTLS echo on 127.0.0.1:{port}; DEVELOPMENT certificates in "
              "{d}; audit log {d}/audit.jsonl", port=port, d=directory)
    _log.info("connect with: openssl s_client -connect 127.0.0.1:{port} -CAfile {d}/dev-ca.pem "
              "-cert {d}/client.pem -key {d}/client.key", port=port, d=directory)
    return top
