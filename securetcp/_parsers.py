# -*- test-case-name: tests.test_endpoints_strings,tests.test_endpoints -*-
"""
The C{securessl:} and C{mtls:} endpoint-string parsers, for servers and
clients.  They turn a description into a L{TLSPolicy} (through
L{securetcp.config}) and an inner endpoint, and build the endpoint classes of
L{securetcp.endpoints}::

    serverFromString(reactor, "mtls:6661:certKey=server.pem:"
                              "privateKey=server.key:caCerts=devices-ca.pem")

Every error in an endpoint string is raised when it is parsed, as
L{EndpointArgumentError} naming the argument.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    clientFromString,
    serverFromString,
)
from twisted.internet.interfaces import (
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from securetcp.audit.records import AuditEmitter
from securetcp.config import POLICY_OPTIONS, loadPolicyFile, policyFromOptions
from securetcp.endpoints import Limits, SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import EndpointArgumentError, PolicyError
from securetcp.policy import TLSPolicy

SERVER_ARGUMENTS: Dict[str, str] = {
    "port": "TCP port to listen on (also the first positional argument)",
    "interface": "address to listen on (default all IPv4 addresses)",
    "backlog": "listen queue length (default 50)",
    "endpoint": "wrap another server endpoint string instead (tcp6:, unix:, systemd:, ...)",
    "policy": "TOML policy file; the other arguments override its keys",
    "auditLog": "write the audit records to this file as a hash chain (AuditLogObserver)",
    "proxyProtocol": "v1, v2 or any: read a PROXY protocol header (below TLS) naming the real client",
    "permissive": "true: also accept plaintext on this port (migration mode, audited non-compliant)",
    "insecurelyAllowPlaintext": "true: let permissive mode run under the nist-800-52r2 profile",
    "maxConnections": "refuse (and audit) connections beyond this many open at once",
    "maxHandshakes": "refuse (and audit) connections beyond this many handshakes in progress",
}
CLIENT_ARGUMENTS: Dict[str, str] = {
    "host": "server host name or address (also the first positional argument)",
    "port": "server port (also the second positional argument)",
    "timeout": "seconds to wait for the TCP connection (default 30)",
    "bindAddress": "local address to connect from",
    "endpoint": "wrap another client endpoint string instead (unix:, tcp6:, ...)",
    "policy": "TOML policy file; the other arguments override its keys",
    "auditLog": "write the audit records to this file as a hash chain (AuditLogObserver)",
}


def _emitterFor(kwargs: Dict[str, Any]) -> Optional[AuditEmitter]:
    """
    An emitter that also writes to the C{auditLog=} file, if one is named.
    """
    path = kwargs.get("auditLog")
    if not path:
        return None
    from twisted.logger import LogPublisher, globalLogPublisher

    from securetcp.audit.file import auditLogObserver
    from securetcp.audit.records import AUDIT_NAMESPACE
    from securetcp.errors import AuditLogError

    try:
        observer = auditLogObserver(path)
    except AuditLogError as e:
        raise _fail("auditLog", path, e.problem, e.fix) from None
    return AuditEmitter(Logger(namespace=AUDIT_NAMESPACE,
                               observer=LogPublisher(globalLogPublisher, observer)))


def _fail(argument: Optional[str], value: Any, problem: str, fix: str = "",
          valid: Tuple[str, ...] = ()) -> EndpointArgumentError:
    return EndpointArgumentError(argument, value, problem, fix, valid)


def _policyFor(prefix: str, kwargs: Dict[str, Any], serverDefaults: bool) -> TLSPolicy:
    options = {k: v for k, v in kwargs.items() if k in POLICY_OPTIONS}
    base = None
    if "policy" in kwargs:
        base = loadPolicyFile(kwargs["policy"])
    if serverDefaults and not options.get("certKey") and not options.get("privateKey") \
            and not options.get("pkcs12") and not (base and base.credentials.configured):
        # Twisted's ssl: defaults privateKey to server.pem
        options["privateKey"] = "server.pem"
    return policyFromOptions(options, base)


def _asArgumentError(prefix: str, error: PolicyError) -> EndpointArgumentError:
    """
    Every problem found while parsing an endpoint string is reported as an
    L{EndpointArgumentError} naming the argument; the original error (for
    example a L{securetcp.errors.CredentialError} with its C{path}) is kept as
    C{cause}.
    """
    if isinstance(error, EndpointArgumentError):
        return error
    from securetcp.errors import PolicyFileError

    if isinstance(error, PolicyFileError):
        # keep the file and key in the message: "policy=FILE: key 'x': ..."
        where = error.path + (f": key {error.key!r}" if error.key else "")
        problem = error.problem + (f" (got {error.value!r})" if error.key and
                                   error.value is not None else "")
        wrapped = EndpointArgumentError("policy", where, problem, error.fix)
        wrapped.cause = error
        wrapped.path = error.path
        return wrapped
    argument = {"version": "minVersion"}.get(error.field, error.field)
    wrapped = EndpointArgumentError(argument, error.value, error.problem, error.fix)
    wrapped.cause = error
    wrapped.path = getattr(error, "path", None)
    return wrapped


def _checkArguments(prefix: str, kwargs: Dict[str, Any], own: Dict[str, str]) -> None:
    valid = tuple(own) + tuple(POLICY_OPTIONS)
    for key in kwargs:
        if key not in valid:
            raise _fail(key, kwargs[key], f"unknown {prefix}: argument",
                        "valid arguments: " + ", ".join(valid), valid)
    for key, value in kwargs.items():
        if value == "" and key not in ("interface",):
            raise _fail(key, value, "empty value", f"give a value after {key}=")


def _int(argument: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise _fail(argument, value, "not an integer") from None
    if not low <= number <= high:
        raise _fail(argument, value, f"must be between {low} and {high}")
    return number


def _serverInner(reactor: Any, prefix: str, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any]) -> IStreamServerEndpoint:
    if len(args) > 1:
        raise _fail(None, ":".join(map(str, args)),
                    "too many positional arguments",
                    f"write {prefix}:PORT:name=value:... (escape ':' in values as '\\:')")
    if "endpoint" in kwargs:
        if args or "port" in kwargs or "interface" in kwargs:
            raise _fail("endpoint", kwargs["endpoint"],
                        "cannot be combined with a port or interface",
                        "put the port and interface in the inner endpoint string")
        try:
            return serverFromString(reactor, kwargs["endpoint"])
        except Exception as e:  # any failure of a foreign parser is this argument's
            raise _fail("endpoint", kwargs["endpoint"],
                        f"invalid inner endpoint string: {e}",
                        "escape its colons as '\\:'") from None
    if args and "port" in kwargs:
        raise _fail("port", kwargs["port"], "given twice (positional and port=)")
    if not args and "port" not in kwargs:
        raise _fail("port", None, "no port", f"write {prefix}:PORT:...")
    port = _int("port", args[0] if args else kwargs["port"], 0, 65535)
    backlog = _int("backlog", kwargs.get("backlog", 50), 1, 65535)
    interface = kwargs.get("interface", "")
    if ":" in interface:
        return TCP6ServerEndpoint(reactor, port, backlog, interface)
    return TCP4ServerEndpoint(reactor, port, backlog, interface)


def _clientInner(reactor: Any, prefix: str, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any]) -> Tuple[Any, Optional[str]]:
    if len(args) > 2:
        raise _fail(None, ":".join(map(str, args)), "too many positional arguments",
                    f"write {prefix}:HOST:PORT:name=value:...")
    if "endpoint" in kwargs:
        if args or "host" in kwargs or "port" in kwargs:
            raise _fail("endpoint", kwargs["endpoint"],
                        "cannot be combined with host or port",
                        "put them in the inner endpoint string")
        try:
            return clientFromString(reactor, kwargs["endpoint"]), None
        except Exception as e:  # any failure of a foreign parser is this argument's
            raise _fail("endpoint", kwargs["endpoint"],
                        f"invalid inner endpoint string: {e}",
                        "escape its colons as '\\:'") from None
    positional = dict(zip(("host", "port"), args, strict=False))
    for key in positional:
        if key in kwargs:
            raise _fail(key, kwargs[key], "given twice (positional and named)")
    merged = {**kwargs, **positional}
    if not merged.get("host"):
        raise _fail("host", None, "no host", f"write {prefix}:HOST:PORT or host=HOST")
    if "port" not in merged:
        raise _fail("port", None, "no port", f"write {prefix}:HOST:PORT or port=PORT")
    port = _int("port", merged["port"], 1, 65535)
    timeout = merged.get("timeout", 30)
    try:
        timeoutSeconds = float(timeout)
        if not (math.isfinite(timeoutSeconds) and timeoutSeconds > 0):
            raise ValueError
    except ValueError:
        raise _fail("timeout", timeout, "not a positive number of seconds") from None
    bind = merged.get("bindAddress")
    host = str(merged["host"])
    from securetcp.policy import _hostname

    try:
        _hostname(host)
    except PolicyError as e:
        raise _fail("host", host, e.problem, "give a DNS name or an IP address") from None
    try:
        return HostnameEndpoint(reactor, host.encode("idna") if not _isIPText(host) else host,
                                port, timeout=timeoutSeconds,
                                bindAddress=(bind, 0) if bind else None), host
    except UnicodeError as e:
        raise _fail("host", host, f"not a valid host name: {e}",
                    "give a DNS name or an IP address") from None


def _isIPText(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@implementer(IPlugin, IStreamServerEndpointStringParser)
class SecureServerParser:
    """
    Parses C{securessl:} (one-way TLS) or C{mtls:} (mutual TLS) server
    endpoint strings.
    """

    def __init__(self, prefix: str, mutual: bool) -> None:
        self.prefix = prefix
        self.mutual = mutual

    def parseStreamServer(self, reactor: Any, *args: Any, **kwargs: Any) -> SecureServerEndpoint:
        try:
            _checkArguments(self.prefix, kwargs, SERVER_ARGUMENTS)
            inner = _serverInner(reactor, self.prefix, args, kwargs)
            policy = _policyFor(self.prefix, kwargs, serverDefaults=True)
            from securetcp.config import _bool

            return SecureServerEndpoint(
                reactor, inner, policy, self.mutual, proxyProtocol=kwargs.get("proxyProtocol"),
                permissive=_bool("permissive", kwargs.get("permissive", False)),
                insecurelyAllowPlaintext=_bool(
                    "insecurelyAllowPlaintext", kwargs.get("insecurelyAllowPlaintext", False)),
                limits=Limits(*(_int(name, kwargs[name], 1, 10_000_000) if name in kwargs
                                else None for name in ("maxConnections", "maxHandshakes"))),
                emitter=_emitterFor(kwargs),
                rereadPolicy=lambda: _policyFor(self.prefix, kwargs, serverDefaults=True))
        except PolicyError as e:
            raise _asArgumentError(self.prefix, e) from e


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class SecureClientParser:
    """
    Parses C{securessl:} or C{mtls:} client endpoint strings.
    """

    def __init__(self, prefix: str, mutual: bool) -> None:
        self.prefix = prefix
        self.mutual = mutual

    def parseStreamClient(self, reactor: Any, *args: Any, **kwargs: Any) -> SecureClientEndpoint:
        try:
            _checkArguments(self.prefix, kwargs, CLIENT_ARGUMENTS)
            inner, host = _clientInner(reactor, self.prefix, args, kwargs)
            policy = _policyFor(self.prefix, kwargs, serverDefaults=False)
            hostname = policy.peer.hostname or host
            return SecureClientEndpoint(reactor, inner, policy, hostname, self.mutual,
                                        emitter=_emitterFor(kwargs))
        except PolicyError as e:
            raise _asArgumentError(self.prefix, e) from e
