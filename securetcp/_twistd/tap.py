# -*- test-case-name: tests.test_tap -*-
"""
C{twistd securetcp}: put TLS in front of (or behind) any plaintext TCP
service.

    twistd -n securetcp terminate --listen "mtls:6661:certKey=server.pem:privateKey=server.key:caCerts=devices-ca.pem" --backend tcp:127.0.0.1:2575 --audit-log audit.jsonl
    twistd -n securetcp originate --listen tcp:2576:interface=127.0.0.1 --connect "mtls:host=hl7.example:port=6661:caCerts=ca.pem:certKey=device.pem:privateKey=device.key"
    twistd -n securetcp serve --listen "mtls:6661:..." --app mypackage.hl7:factory
    twistd -n securetcp demo
    twistd -n securetcp --config /etc/securetcp/listeners.toml
    twistd -n securetcp terminate --workers 4 --listen ... --backend ...

C{ssl:} is accepted as an alias of C{securessl:} here.  SIGHUP re-reads
certificates, keys, CAs, CRLs and policy files and swaps them in for new
connections; a reload that fails keeps the running configuration.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger, globalLogPublisher
from twisted.python import usage

from securetcp._twistd.splice import SpliceFactory
from securetcp.audit.records import AUDIT_NAMESPACE, AuditEmitter, utcTimestamp

_log = Logger(namespace="securetcp.tap")


class _JobError(Exception):
    """
    A problem with one option of a job (C{listen}, C{backend}, C{app},
    ...); reported as C{--OPTION: ...} on the command line and with the
    file, listener and key for C{--config}.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _secureString(description: str, policyFile: Optional[str], auditLog: Optional[str],
                  key: str = "listen") -> str:
    """
    Accept C{ssl:} as an alias of C{securessl:}; add C{policy=} from
    C{--policy} unless the string names one.
    """
    if description.startswith("ssl:"):
        description = "securessl:" + description[len("ssl:"):]
    if not description.startswith(("securessl:", "mtls:")):
        raise _JobError(key,
                        f"{description!r} is not a securessl: or mtls: endpoint string "
                        "(the TLS side must be one)")
    if policyFile and ":policy=" not in description:
        description += ":policy=" + policyFile.replace(":", "\\:")
    return description


def _workersOption(options: usage.Options) -> None:
    from securetcp._twistd.config import checkWorkers

    def fail(problem: str, fix: str) -> NoReturn:
        raise usage.UsageError(f"--workers: {problem} ({fix})")

    options["workers"] = checkWorkers(options["workers"], fail)


class _CommonOptions(usage.Options):
    optParameters = [
        ["policy", None, None, "TOML policy file for the TLS side"],
        ["audit-log", None, None, "write audit records to this file as a hash chain "
         "(with --workers, one file per worker: FILE.worker-K)"],
        ["idle-timeout", None, "0", "close connections idle for this many seconds (0: never)"],
        ["workers", None, "1", "processes sharing the listening socket (default 1)"],
        ["watch", None, "5", "seconds between checks of the certificate, key, CA and policy "
         "files for changes, which reload them like SIGHUP (0: only on SIGHUP)"],
    ]

    def postOptions(self) -> None:
        try:
            self["idle-timeout"] = float(self["idle-timeout"])
        except ValueError:
            raise usage.UsageError("--idle-timeout must be a number of seconds") from None
        try:
            self["watch"] = float(self["watch"])
            if self["watch"] < 0:
                raise ValueError
        except ValueError:
            raise usage.UsageError("--watch must be a number of seconds (0: off)") from None
        _workersOption(self)


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
        ["workers", None, "1", "processes sharing the listening socket (default 1)"],
    ]

    def postOptions(self) -> None:
        _workersOption(self)


class Options(usage.Options):
    synopsis = ("securetcp (terminate|originate|serve|demo) [options]\n"
                "       twistd [twistd options] securetcp --config FILE [--workers N]")
    longdesc = __doc__
    optParameters = [
        ["config", None, None, "TOML file with several listeners (instead of a mode)"],
        ["workers", None, None, "with --config: processes sharing the listening sockets "
         "(overrides the file's workers)"],
    ]
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
        #: the arguments after C{securetcp}, which worker processes parse again
        self.argv: List[str] = []
        #: set in a worker process (L{securetcp._twistd.worker})
        self.worker: Any = None

    def parseOptions(self, options: Optional[Sequence[str]] = None) -> None:
        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)  # type: ignore[arg-type]

    def postOptions(self) -> None:
        if self["config"] is not None:
            if self.subCommand is not None:
                raise usage.UsageError(f"--config replaces the mode: give either --config "
                                       f"FILE or {self.subCommand} with its options")
            if self["workers"] is not None:
                _workersOption(self)
        elif self.subCommand is None:
            raise usage.UsageError("give a mode: terminate, originate, serve or demo, "
                                   "or --config FILE")
        elif self["workers"] is not None:
            raise usage.UsageError(f"--workers goes after the mode: securetcp "
                                   f"{self.subCommand} --workers N ...")
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
        #: with --workers: C{{"worker": K}}, added (with C{pid}) to every record
        self.auditFields: Optional[Dict[str, Any]] = None
        #: with --workers, in the parent: the L{WorkerSupervisor}
        self.supervisor: Any = None
        #: seconds between checks of the files the policies name (0: off)
        self.watchInterval = 5.0
        self._watch: Any = None
        self._seen: Any = None
        self._candidate: Any = None
        self._observer: Any = None
        self._published: Any = None
        self._previousHandler: Any = None

    def _openAuditLog(self) -> None:
        if self.auditLog and self._observer is None:
            from securetcp.audit.file import auditLogObserver

            self._observer = auditLogObserver(self.auditLog)
            self._published = self._observer
            if self.auditFields is not None:
                self._published = _tagging(self._observer,
                                           {**self.auditFields, "pid": os.getpid()})
            globalLogPublisher.addObserver(self._published)

    def privilegedStartService(self) -> None:
        # twistd starts listening (and each endpoint emits policy.loaded)
        # here, before startService: the audit file must already be open
        self._openAuditLog()
        super().privilegedStartService()

    def startService(self) -> None:
        self._openAuditLog()
        if hasattr(signal, "SIGHUP"):
            self._previousHandler = signal.signal(
                signal.SIGHUP, lambda *a: self.reactor.callFromThread(self._hangup))
        super().startService()
        if self.watchInterval > 0 and self.secureEndpoints:
            from twisted.internet.task import LoopingCall

            self._seen = self.fileSignatures()
            self._watch = LoopingCall(self._checkFiles)
            self._watch.clock = self.reactor
            self._watch.start(self.watchInterval, now=False)

    def watchedFiles(self) -> List[str]:
        """
        The certificate, key, CA and policy files the secure endpoints were
        built from (CRLs have their own watcher).
        """
        paths: List[str] = []
        for endpoint, description in zip(self.secureEndpoints, self.listenDescriptions,
                                         strict=False):
            policy = endpoint.policy
            credentials = policy.credentials
            for path in (credentials.certificateFile, credentials.keyFile,
                         credentials.extraChain, credentials.pkcs12, credentials.dhParameters,
                         policy.trust.caFile, policy.trust.caDir, _policyFileOf(description)):
                if path and path not in paths:
                    paths.append(path)
        return paths

    def fileSignatures(self) -> Dict[str, Any]:
        signatures: Dict[str, Any] = {}
        for path in self.watchedFiles():
            try:
                st = os.stat(path)
                signatures[path] = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
            except OSError:
                signatures[path] = None
        return signatures

    def _checkFiles(self) -> None:
        """
        Reload when a watched file changed and has stayed the same for one
        interval (so a file being written is not read half-way).
        """
        now = self.fileSignatures()
        if now == self._seen:
            return
        if self._candidate != now:
            self._candidate = now  # changed: wait one interval for it to settle
            return
        self._candidate = None
        self._seen = now
        _log.info("securetcp: certificate, key, CA or policy files changed; reloading")
        self.reload()

    def _hangup(self) -> None:
        if self._watch is not None:
            # what this reload reads, the watcher need not read again
            self._seen, self._candidate = self.fileSignatures(), None
        self.reload()
        if self.supervisor is not None:
            self.supervisor.signalAll(signal.SIGHUP)

    def stopService(self) -> Any:
        d = super().stopService()

        def cleanup(result: Any) -> Any:
            if self._observer is not None:
                globalLogPublisher.removeObserver(self._published)
                self._observer.close()
                self._observer = self._published = None
            return result

        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self._watch = None
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

        from securetcp.errors import PolicyError

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


def _policyFileOf(description: str) -> Optional[str]:
    """
    The C{policy=} file named in an endpoint string, if any.
    """
    parts = re.split(r"(?<!\\):", description)
    for part in parts:
        if part.startswith("policy="):
            return part[len("policy="):].replace("\\:", ":")
    return None


def _tagging(observer: Any, fields: Dict[str, Any]) -> Callable[[Dict[str, Any]], None]:
    """
    An observer that adds C{fields} to every audit record before
    C{observer} writes it.
    """
    def tag(event: Dict[str, Any]) -> None:
        record = event.get("securetcp_audit")
        if record is not None and event.get("log_namespace") == AUDIT_NAMESPACE:
            event = dict(event, securetcp_audit={**record, **fields})
        observer(event)

    return tag


def _redact(description: str) -> str:
    parts = description.split(":")
    return ":".join("passphrase=***" if p.startswith("passphrase=") else p for p in parts)


def _loadApp(spec: str) -> IProtocolFactory:
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise _JobError("app", f"{spec!r}: write package.module:name")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise _JobError("app", f"{spec!r}: cannot import {module}: {e}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise _JobError("app", f"{spec!r}: {module} has no {name}")
        obj = getattr(obj, part)
    if IProtocolFactory.providedBy(obj):
        return obj  # type: ignore[no-any-return]
    if callable(obj):
        try:
            made = obj()
        except TypeError as e:  # needs arguments: not a factory-returning callable
            raise _JobError("app", f"{spec!r} is neither a protocol factory nor "
                            f"returns one when called without arguments: {e}") from None
        if IProtocolFactory.providedBy(made):
            return made  # type: ignore[no-any-return]
    raise _JobError("app", f"{spec!r} is neither a protocol factory nor returns one")


def _parseServer(reactor: Any, description: str) -> Any:
    from twisted.internet.endpoints import serverFromString

    try:
        return serverFromString(reactor, description)
    except ValueError as e:
        raise _JobError("listen", str(e)) from None


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
    worker = getattr(options, "worker", None)
    if options["config"] is not None:
        return _configService(reactor, options, worker)
    mode = options.subCommand
    sub = options.subOptions
    if mode == "demo":
        return _demoService(reactor, sub, options, worker)
    top, listenReactor = _topService(reactor, sub["audit-log"], sub["workers"], options,
                                     worker)
    top.watchInterval = sub.get("watch", 5.0)
    try:
        _addJob(top, reactor, listenReactor, mode, sub["listen"], sub.get("backend"),
                sub.get("connect"), sub.get("app"), sub["policy"], sub["idle-timeout"])
    except _JobError as e:
        raise usage.UsageError(f"--{e.key}: {e.problem}") from None
    return _finish(top)


def _topService(reactor: Any, auditLog: Optional[str], workers: int, options: Options,
                worker: Any) -> Tuple[SecureTCPService, Any]:
    """
    The top service, and the reactor listening endpoints are made with:
    the real one, or with C{--workers} (or in a worker) one whose
    C{listenTCP} shares sockets between the processes.
    """
    from securetcp._twistd.workers import (
        ListeningReactor,
        SharedListeners,
        WorkerSupervisor,
        workerAuditPath,
    )

    if worker is None and workers <= 1:
        return SecureTCPService(reactor, auditLog), reactor
    index = worker.index if worker is not None else 0
    listeners = SharedListeners(worker.fds if worker is not None else None)
    top = SecureTCPService(reactor, workerAuditPath(auditLog, index) if auditLog else None)
    top.auditFields = {"worker": index}
    if worker is None:
        top.supervisor = WorkerSupervisor(reactor, listeners, options.argv, workers)
    return top, ListeningReactor(reactor, listeners)


def _finish(top: SecureTCPService) -> SecureTCPService:
    if top.supervisor is not None:
        # last, so the workers start after the parent listens and stop first
        top.supervisor.setServiceParent(top)
    return top


def _addJob(top: SecureTCPService, reactor: Any, listenReactor: Any, mode: Optional[str],
            listen: str, backend: Optional[str], connect: Optional[str], app: Optional[str],
            policy: Optional[str], idleTimeout: float) -> None:
    """
    Add one terminate, originate or serve job to C{top}.

    @raise _JobError: naming the option that is wrong.
    """
    from twisted.internet.endpoints import clientFromString

    emitter = top.emitter
    if mode in ("terminate", "serve"):
        description = _secureString(listen, policy, None)
        if top.auditFields is not None and re.search(r"(^|:)auditLog=", description):
            raise _JobError("listen", "an auditLog= argument cannot be shared by worker "
                            "processes; use --audit-log (one chain per worker)")
        endpoint = _parseServer(listenReactor, description)
        top.secureEndpoints.append(endpoint)
        top.listenDescriptions.append(description)
        if mode == "terminate":
            assert backend is not None
            try:
                far = clientFromString(reactor, backend)
            except ValueError as e:
                raise _JobError("backend", str(e)) from None
            factory: Any = SpliceFactory(far.connect, backend, reactor, emitter, idleTimeout)
        else:
            assert app is not None
            factory = _loadApp(app)
    else:  # originate
        assert connect is not None
        secure = _secureString(connect, policy, None, key="connect")
        try:
            remote = clientFromString(reactor, secure)
        except ValueError as e:
            raise _JobError("connect", str(e)) from None
        endpoint = _parseServer(listenReactor, listen)
        factory = SpliceFactory(remote.connect, _redact(secure), reactor, emitter, idleTimeout)
    StreamServerEndpointService(endpoint, factory).setServiceParent(top)


def _configService(reactor: Any, options: Options, worker: Any) -> service.IService:
    """
    The service of C{--config FILE}: every listener of the file in one
    service, sharing one audit log.
    """
    from securetcp._twistd.config import loadServiceConfig
    from securetcp.errors import ServiceConfigError

    config = loadServiceConfig(options["config"])
    workers = options["workers"] if options["workers"] is not None else config.workers
    top, listenReactor = _topService(reactor, config.auditLog, workers, options, worker)
    for listener in config.listeners:
        try:
            _addJob(top, reactor, listenReactor, listener.mode, listener.listen,
                    listener.backend, listener.connect, listener.app, listener.policy,
                    listener.idleTimeout)
        except _JobError as e:
            raise ServiceConfigError(config.path, listener.label, e.key, e.problem) from None
    return _finish(top)


def _demoService(reactor: Any, sub: Any, options: Options, worker: Any) -> service.IService:
    from twisted.internet.endpoints import TCP4ServerEndpoint

    from securetcp._pki.development import ensureDevelopmentPKI
    from securetcp.config import buildPolicy
    from securetcp.endpoints import serverEndpoint

    try:
        port = int(sub["port"])
    except ValueError:
        raise usage.UsageError("--port must be a number") from None
    directory = os.path.abspath(sub["dir"])
    paths = ensureDevelopmentPKI(directory)
    policy = buildPolicy(name="demo", certKey=paths["serverCert"], privateKey=paths["serverKey"],
                         caCerts=paths["ca"], clientAuth="required")
    top, listenReactor = _topService(reactor, os.path.join(directory, "audit.jsonl"),
                                     sub["workers"], options, worker)
    # a backlog for bursts of devices reconnecting at once (Twisted's
    # default of 50 drops connections in a storm and they then time out)
    endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(listenReactor, port, backlog=1024,
                                                          interface="127.0.0.1"),
                              policy, mutual=True)

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    StreamServerEndpointService(endpoint, Factory.forProtocol(Echo)).setServiceParent(top)
    _finish(top)
    if worker is not None:
        return top
    _log.info("securetcp demo: mTLS echo on 127.0.0.1:{port}; DEVELOPMENT certificates in "
              "{d}; audit log {d}/audit.jsonl", port=port, d=directory)
    _log.info("connect with: openssl s_client -connect 127.0.0.1:{port} -CAfile {d}/dev-ca.pem "
              "-cert {d}/client.pem -key {d}/client.key", port=port, d=directory)
    return top
