# -*- test-case-name: tests.test_tap,tests.test_tap_config,tests.test_reload_live -*-
"""
C{twistd securetcp}: put TLS in front of (or behind) any plaintext TCP
service.  The plugin's L{Options} parse the command line
(L{securetcp._twistd.options}) and build the service
(L{securetcp._twistd.service.SecureTCPService}) with L{makeService}::

    twistd -n securetcp terminate --listen "mtls:6661:certKey=server.pem:privateKey=server.key:caCerts=devices-ca.pem" --backend tcp:127.0.0.1:2575 --audit-log audit.jsonl
    twistd -n securetcp --config /etc/securetcp/listeners.toml

SIGHUP makes every secure server endpoint re-read its policy and the files
it names, and swap them in for new connections; a reload that fails keeps
the running configuration.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, Dict, Optional, Sequence, Tuple

from twisted.application import service
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python import usage

from securetcp._twistd.export import addExport
from securetcp._twistd.listening import ListeningService
from securetcp._twistd.options import JobError, SecureTCPOptions, auditOptions, secureString
from securetcp._twistd.options import _CommonOptions as _CommonOptions
from securetcp._twistd.sdnotify import SystemdNotifier
from securetcp._twistd.service import SecureTCPService, redact
from securetcp._twistd.splice import SpliceFactory
from securetcp.compliance.expiry import DEFAULT_THRESHOLDS

__all__ = ["Options", "SecureTCPService", "SpliceFactory", "makeService"]

_log = Logger(namespace="securetcp.tap")


class Options(SecureTCPOptions):
    """
    The options of the C{securetcp} twistd plugin; the service is built
    while parsing, so that a bad certificate, key, policy file or endpoint
    string is reported by twistd as a usage error (one clear line, before
    anything starts) rather than as a traceback.
    """

    def __init__(self, build: bool = True, worker: Any = None) -> None:
        """
        @param build: build the service while parsing (what twistd does);
            C{False} only parses.
        @param worker: in a worker process, its
            L{securetcp._twistd.workers.WorkerRole}.
        """
        super().__init__(worker)
        self._build = build
        self.service: Optional[service.IService] = None

    def postOptions(self) -> None:
        super().postOptions()
        if not self._build:
            return
        try:
            self.service = makeService(self)
        except usage.UsageError:
            raise
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


def _loadApp(spec: str) -> IProtocolFactory:
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise JobError("app", f"{spec!r}: write package.module:name")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise JobError("app", f"{spec!r}: cannot import {module}: {e}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise JobError("app", f"{spec!r}: {module} has no {name}")
        obj = getattr(obj, part)
    if IProtocolFactory.providedBy(obj):
        return obj  # type: ignore[no-any-return]
    if callable(obj):
        try:
            made = obj()
        except TypeError as e:  # needs arguments: not a factory-returning callable
            raise JobError("app", f"{spec!r} is neither a protocol factory nor "
                            f"returns one when called without arguments: {e}") from None
        if IProtocolFactory.providedBy(made):
            return made  # type: ignore[no-any-return]
    raise JobError("app", f"{spec!r} is neither a protocol factory nor returns one")


def _parseServer(reactor: Any, description: str) -> Any:
    from twisted.internet.endpoints import serverFromString

    try:
        return serverFromString(reactor, description)
    except ValueError as e:
        raise JobError("listen", str(e)) from None


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
    _checkCheckpointKey(sub["audit-checkpoint-key"])
    from securetcp._twistd import metricsservice as _metrics

    try:
        metrics = _metrics.newMetrics(reactor, sub["workers"], worker) if sub.get("metrics") else None
    except JobError as e:
        raise usage.UsageError(f"--{e.key}: {e.problem}") from None
    top, listenReactor = _topService(reactor, sub["audit-log"], sub["workers"], options,
                                     worker, sub.get("watch", 5.0), auditOptions(sub),
                                     sub.get("expiry-warn", DEFAULT_THRESHOLDS), metrics)
    try:
        _addJob(top, reactor, listenReactor, mode, sub["listen"], sub.get("backend"),
                sub.get("connect"), sub.get("app"), sub["policy"], sub["idle-timeout"],
                backendProxy=sub.get("backend-proxy"))
        if metrics is not None:
            _metrics.addMetrics(top, reactor, sub["metrics"], metrics, worker)
        if sub.get("export") is not None:
            export = addExport(top, reactor, sub["export"])
            if metrics is not None:
                metrics.watchExport(export)
    except JobError as e:
        _metrics.discard(metrics, worker)
        raise usage.UsageError(f"--{e.key}: {e.problem}") from None
    return _finish(top)


def _checkCheckpointKey(path: Optional[str]) -> None:
    """
    Read C{--audit-checkpoint-key} now, so that a bad key file is a usage
    error naming the option rather than a failure at start.
    """
    if path is None:
        return
    from securetcp.audit.checkpoint import checkpointSigner
    from securetcp.errors import AuditLogError

    try:
        checkpointSigner(path)
    except AuditLogError as e:
        raise usage.UsageError(f"--audit-checkpoint-key: {e.path}: {e.problem} "
                               f"({e.fix})") from None


def _topService(reactor: Any, auditLog: Optional[str], workers: int, options: Options,
                worker: Any, watchInterval: float = 5.0,
                audit: Optional[Dict[str, Any]] = None,
                expiry: Sequence[int] = DEFAULT_THRESHOLDS,
                metrics: Any = None) -> Tuple[SecureTCPService, Any]:
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

    # only the main process speaks to systemd (NotifyAccess=main)
    notifier = SystemdNotifier.fromEnvironment(os.environ) if worker is None else None
    if worker is None and workers <= 1:
        return SecureTCPService(reactor, auditLog, watchInterval=watchInterval,
                                auditOptions=audit, notifier=notifier,
                                expiryWarnings=expiry, metrics=metrics), reactor
    index = worker.index if worker is not None else 0
    listeners = SharedListeners(worker.fds if worker is not None else None)
    supervisor = (WorkerSupervisor(reactor, listeners, options.argv, workers)
                  if worker is None else None)
    top = SecureTCPService(reactor, workerAuditPath(auditLog, index) if auditLog else None,
                           auditFields={"worker": index}, supervisor=supervisor,
                           watchInterval=watchInterval, auditOptions=audit, notifier=notifier,
                           expiryWarnings=expiry, metrics=metrics)
    return top, ListeningReactor(reactor, listeners)


def _finish(top: SecureTCPService) -> SecureTCPService:
    if top.supervisor is not None:
        # last, so the workers start after the parent listens and stop first
        top.supervisor.setServiceParent(top)
    return top


def _addJob(top: SecureTCPService, reactor: Any, listenReactor: Any, mode: Optional[str],
            listen: str, backend: Optional[str], connect: Optional[str], app: Optional[str],
            policy: Optional[str], idleTimeout: float,
            backendProxy: Optional[str] = None) -> None:
    """
    Add one terminate, originate or serve job to C{top}.

    @param backendProxy: C{"v2"}: (terminate) send the backend a PROXY v2
        header with the client's address and verified certificate first.

    @raise JobError: naming the option that is wrong.
    """
    from twisted.internet.endpoints import clientFromString

    emitter = top.emitter
    if mode in ("terminate", "serve"):
        description = secureString(listen, policy, None)
        if top.auditFields is not None and re.search(r"(^|:)auditLog=", description):
            raise JobError("listen", "an auditLog= argument cannot be shared by worker "
                            "processes; use --audit-log (one chain per worker)")
        endpoint = _parseServer(listenReactor, description)
        if getattr(endpoint, "credentialWatcher", None) is not None:
            raise JobError("listen", "reload=watch: twistd securetcp already reloads changed "
                           "certificate, key and CA files (--watch SECONDS, default 5); "
                           "leave reload=watch out")
        top.addSecureEndpoint(endpoint, description)
        if mode == "terminate":
            assert backend is not None
            try:
                far = clientFromString(reactor, backend)
            except ValueError as e:
                raise JobError("backend", str(e)) from None
            factory: Any = SpliceFactory(far.connect, backend, reactor, emitter, idleTimeout,
                                         header=_backendHeader(backendProxy))
        else:
            assert app is not None
            factory = _loadApp(app)
    else:  # originate
        assert connect is not None
        secure = secureString(connect, policy, None, key="connect")
        try:
            remote = clientFromString(reactor, secure)
        except ValueError as e:
            raise JobError("connect", str(e)) from None
        description = listen
        endpoint = _parseServer(listenReactor, listen)
        factory = SpliceFactory(remote.connect, redact(secure), reactor, emitter, idleTimeout)
    ListeningService(endpoint, factory, redact(description), reactor).setServiceParent(top)


def _backendHeader(backendProxy: Optional[str]) -> Any:
    """
    What the splice sends the backend first for C{--backend-proxy}.
    """
    if backendProxy is None:
        return None
    from securetcp._twistd.backendproxy import backendProxyHeader, checkBackendProxy

    try:
        checkBackendProxy(backendProxy)
    except ValueError as e:
        raise JobError("backend-proxy", str(e)) from None
    return backendProxyHeader


def _configService(reactor: Any, options: Options, worker: Any) -> service.IService:
    """
    The service of C{--config FILE}: every listener of the file in one
    service, sharing one audit log.
    """
    from securetcp._twistd.config import loadServiceConfig
    from securetcp.errors import ServiceConfigError

    config = loadServiceConfig(options["config"])
    workers = options["workers"] if options["workers"] is not None else config.workers
    top, listenReactor = _topService(reactor, config.auditLog, workers, options, worker,
                                     audit=config.auditOptions)
    for listener in config.listeners:
        try:
            _addJob(top, reactor, listenReactor, listener.mode, listener.listen,
                    listener.backend, listener.connect, listener.app, listener.policy,
                    listener.idleTimeout, backendProxy=listener.backendProxy)
        except JobError as e:
            raise ServiceConfigError(config.path, listener.label, e.key, e.problem) from None
    _configExport(top, reactor, config)
    return _finish(top)


def _configExport(top: SecureTCPService, reactor: Any, config: Any) -> None:
    """
    Add the audit export of a C{--config} file's C{audit-syslog} keys.
    """
    from securetcp.errors import AuditExportError, ServiceConfigError

    if config.export is None:
        return
    try:
        addExport(top, reactor, config.export)
    except AuditExportError as e:
        raise ServiceConfigError(config.path, None, e.argument.lstrip("-"), e.problem,
                                 e.fix) from None


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

    ListeningService(endpoint, Factory.forProtocol(Echo), f"tcp:{port}:interface=127.0.0.1",
                     reactor).setServiceParent(top)
    _finish(top)
    if worker is not None:
        return top
    _log.info("securetcp demo: mTLS echo on 127.0.0.1:{port}; DEVELOPMENT certificates in "
              "{d}; audit log {d}/audit.jsonl", port=port, d=directory)
    _log.info("connect with: openssl s_client -connect 127.0.0.1:{port} -CAfile {d}/dev-ca.pem "
              "-cert {d}/client.pem -key {d}/client.key", port=port, d=directory)
    return top
