# -*- test-case-name: tests.test_endpoints_strings,tests.test_endpoints -*-
"""
The C{securessl:} and C{mtls:} endpoint-string parsers, for servers and
clients.  They turn a description into a L{TLSPolicy} (through
L{securetcp.config}) and an inner endpoint, and build the endpoint classes of
L{securetcp.endpoints}::

    serverFromString(reactor, "mtls:6661:certKey=server.pem:"
                              "privateKey=server.key:caCerts=devices-ca.pem")

The arguments each takes are the option table's (L{securetcp.options}): the
endpoint's own (L{SERVER_ARGUMENTS}, L{CLIENT_ARGUMENTS}) and every policy
option.  Every error in an endpoint string is raised when it is parsed, as
L{EndpointArgumentError} naming the argument as it was written (an error of
a policy part, which names a field, is translated through the table).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Tuple

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
from twisted.plugin import IPlugin
from zope.interface import implementer

import securetcp._fields as _fields
from securetcp._auditarguments import emitterFor
from securetcp._description import callingDescription, repeated
from securetcp._fields import Role
from securetcp._filewatch import reloadInterval
from securetcp._spelling import inUserSpelling
from securetcp.config import loadPolicyFile, policyFromOptions
from securetcp.endpoints import Limits, SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import EndpointArgumentError, PolicyError
from securetcp.options import (
    OPTIONS,
    Option,
    endpointArguments,
    ownArguments,
)
from securetcp.options import parseBool as _bool
from securetcp.policy import TLSPolicy

#: The server endpoint's own arguments (beyond the policy options), with
#: their descriptions, from L{securetcp.options}.
SERVER_ARGUMENTS: Dict[str, str] = {
    name: option.doc for name, option in ownArguments(Role.SERVER).items()}
#: The client endpoint's own arguments.
CLIENT_ARGUMENTS: Dict[str, str] = {
    name: option.doc for name, option in ownArguments(Role.CLIENT).items()}


def _fail(argument: Optional[str], value: Any, problem: str, fix: str = "",
          valid: Tuple[str, ...] = ()) -> EndpointArgumentError:
    return EndpointArgumentError(argument, value, problem, fix, valid)


def _policyFor(prefix: str, kwargs: Dict[str, Any], serverDefaults: bool) -> TLSPolicy:
    options = {k: v for k, v in kwargs.items() if k in OPTIONS}
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
    error = inUserSpelling(error)
    wrapped = EndpointArgumentError(error.field, error.value, error.problem, error.fix)
    wrapped.cause = error
    wrapped.path = getattr(error, "path", None)
    return wrapped


def _checkArguments(prefix: str, kwargs: Dict[str, Any], role: Role) -> Mapping[str, Option]:
    """
    Refuse an argument an endpoint for C{role} does not take, or an empty
    value where empty means nothing.

    @return: the arguments the endpoint takes, by name.
    """
    arguments = endpointArguments(role)
    valid = tuple(arguments)
    for key in kwargs:
        if key not in arguments:
            raise _fail(key, kwargs[key], f"unknown {prefix}: argument",
                        "valid arguments: " + ", ".join(valid), valid)
    for key, value in kwargs.items():
        if value == "" and not arguments[key].emptyAllowed:
            raise _fail(key, value, "empty value", f"give a value after {key}=")
    return arguments


def _refuseRepeats(prefix: str, role: Role, args: Tuple[Any, ...],
                   kwargs: Dict[str, Any]) -> None:
    """
    Refuse an argument written more than once, which Twisted would reduce
    to its last value, when the description can be read back
    (L{securetcp._description}).
    """
    description = callingDescription(args, kwargs)
    if description is None:
        return
    for name, values in repeated(description):
        option = endpointArguments(role).get(name)
        hidden = option is not None and option.kind.hidden
        shown = "(hidden)" if hidden else ", ".join(map(repr, values))
        together = ", with its values comma-separated" if option and option.kind.many else ""
        raise _fail(name, "(hidden)" if hidden else values[-1],
                    f"given {len(values)} times ({shown}); {prefix}: takes each argument once",
                    f"write {name}= once{together}")


def _int(option: Option, value: Any) -> int:
    """
    An integer argument, within the option's bounds: ASCII digits only
    (Python's C{int} would also take full-width and other digits, and
    C{_} between them).
    """
    assert option.bounds is not None
    low, high = option.bounds
    try:
        number = _fields.asciiInteger(value)
    except ValueError:
        raise _fail(option.name, value, "not an integer in the digits 0-9",
                    "write it in ASCII digits, e.g. " + (option.example or "10")) from None
    if not low <= number <= high:
        raise _fail(option.name, value, f"must be between {low} and {high}")
    return number


def _tooMany(prefix: str, role: Role, args: Tuple[Any, ...], kwargs: Dict[str, Any],
             expected: int, fix: str) -> EndpointArgumentError:
    """
    The error for positional arguments beyond C{expected}: most often the
    rest of a value whose colons were not escaped, so name the argument
    that takes such values, when one was given, and show it escaped.
    """
    extra = [str(a) for a in args[expected:]]
    arguments = endpointArguments(role)
    for name, value in kwargs.items():
        option = arguments.get(name)
        if option is not None and option.colons:
            whole = ":".join([str(value)] + extra)
            return _fail(name, whole, "its colons were not escaped, so it was cut at the first "
                         "one and the rest read as positional arguments",
                         f"write {name}={whole.replace(':', chr(92) + ':')}")
    return _fail(None, ":".join(map(str, args)), "too many positional arguments", fix)


def _inner(parse: Any, reactor: Any, description: str) -> Any:
    """
    The endpoint of an C{endpoint=} argument, whose own arguments are
    each written once (Twisted's parser for it would keep the last).
    """
    try:
        twice = repeated(description)
    except (RuntimeError, UnicodeError):
        twice = []  # Twisted's own parsing below reports what is wrong
    for name, values in twice:
        raise _fail("endpoint", description, f"its argument {name} is given {len(values)} "
                    "times", f"write {name}= once in the inner endpoint string")
    try:
        return parse(reactor, description)
    except Exception as e:  # any failure of a foreign parser is this argument's
        raise _fail("endpoint", description, f"invalid inner endpoint string: {e}",
                    "escape its colons as '\\:'") from None


def _serverInner(reactor: Any, prefix: str, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any]) -> IStreamServerEndpoint:
    if len(args) > 1:
        raise _tooMany(prefix, Role.SERVER, args, kwargs, 0 if "port" in kwargs else 1,
                       f"write {prefix}:PORT:name=value:... (escape ':' in values as '\\:')")
    if "endpoint" in kwargs:
        if args or "port" in kwargs or "interface" in kwargs:
            raise _fail("endpoint", kwargs["endpoint"],
                        "cannot be combined with a port or interface",
                        "put the port and interface in the inner endpoint string")
        return _inner(serverFromString, reactor, kwargs["endpoint"])  # type: ignore[no-any-return]
    if args and "port" in kwargs:
        raise _fail("port", kwargs["port"], "given twice (positional and port=)")
    if not args and "port" not in kwargs:
        raise _fail("port", None, "no port", f"write {prefix}:PORT:...")
    own = ownArguments(Role.SERVER)
    port = _int(own["port"], args[0] if args else kwargs["port"])
    backlog = _int(own["backlog"], kwargs.get("backlog", own["backlog"].default))
    interface = kwargs.get("interface", "")
    if ":" in interface:
        return TCP6ServerEndpoint(reactor, port, backlog, interface)
    return TCP4ServerEndpoint(reactor, port, backlog, interface)


def _timeout(value: Any) -> float:
    """
    The C{timeout=} of a client: a positive, finite number of seconds.
    """
    try:
        seconds = _fields.asciiNumber(value)
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError
    except ValueError:
        raise _fail("timeout", value, "not a positive number of seconds") from None
    return seconds


def _clientInner(reactor: Any, prefix: str, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any]) -> Tuple[Any, Optional[str]]:
    if len(args) > 2:
        raise _tooMany(prefix, Role.CLIENT, args, kwargs,
                       2 - len({"host", "port"} & set(kwargs)),
                       f"write {prefix}:HOST:PORT:name=value:...")
    if "endpoint" in kwargs:
        if args or "host" in kwargs or "port" in kwargs:
            raise _fail("endpoint", kwargs["endpoint"],
                        "cannot be combined with host or port",
                        "put them in the inner endpoint string")
        return _inner(clientFromString, reactor, kwargs["endpoint"]), None
    positional = dict(zip(("host", "port"), args, strict=False))
    for key in positional:
        if key in kwargs:
            raise _fail(key, kwargs[key], "given twice (positional and named)")
    merged = {**kwargs, **positional}
    if not merged.get("host"):
        raise _fail("host", None, "no host", f"write {prefix}:HOST:PORT or host=HOST")
    if "port" not in merged:
        raise _fail("port", None, "no port", f"write {prefix}:HOST:PORT or port=PORT")
    own = ownArguments(Role.CLIENT)
    port = _int(own["port"], merged["port"])
    timeout = _timeout(merged.get("timeout", own["timeout"].default))
    bind = merged.get("bindAddress")
    host = str(merged["host"])
    try:
        _fields.hostname(host)
    except PolicyError as e:
        raise _fail("host", host, e.problem, "give a DNS name or an IP address") from None
    try:
        return HostnameEndpoint(reactor, host.encode("idna") if not _isIPText(host) else host,
                                port, timeout=timeout,
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
            _refuseRepeats(self.prefix, Role.SERVER, args, kwargs)
            arguments = _checkArguments(self.prefix, kwargs, Role.SERVER)
            inner = _serverInner(reactor, self.prefix, args, kwargs)
            policy = _policyFor(self.prefix, kwargs, serverDefaults=True)
            return SecureServerEndpoint(
                reactor, inner, policy, self.mutual, proxyProtocol=kwargs.get("proxyProtocol"),
                permissive=_bool("permissive", kwargs.get("permissive", False)),
                insecurelyAllowPlaintext=_bool(
                    "insecurelyAllowPlaintext", kwargs.get("insecurelyAllowPlaintext", False)),
                limits=Limits(*(_int(arguments[name], kwargs[name]) if name in kwargs
                                else None for name in ("maxConnections", "maxHandshakes"))),
                emitter=emitterFor(kwargs, Role.SERVER, reactor),
                rereadPolicy=lambda: _policyFor(self.prefix, kwargs, serverDefaults=True),
                reloadPoll=reloadInterval(kwargs.get("reload"), kwargs.get("reloadPoll")))
        except PolicyError as e:
            raise _asArgumentError(self.prefix, e) from None  # its cause is kept as .cause


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
            _refuseRepeats(self.prefix, Role.CLIENT, args, kwargs)
            _checkArguments(self.prefix, kwargs, Role.CLIENT)
            inner, host = _clientInner(reactor, self.prefix, args, kwargs)
            policy = _policyFor(self.prefix, kwargs, serverDefaults=False)
            hostname = policy.peer.hostname or host
            return SecureClientEndpoint(reactor, inner, policy, hostname, self.mutual,
                                        emitter=emitterFor(kwargs, Role.CLIENT, reactor))
        except PolicyError as e:
            raise _asArgumentError(self.prefix, e) from None  # its cause is kept as .cause
