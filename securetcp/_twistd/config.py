# -*- test-case-name: tests.test_tap_config -*-
"""
The TOML file of C{twistd securetcp --config FILE}: several listeners,
each a terminate, originate or serve job, in one process (or one set of
worker processes), with one shared audit log.

    audit-log = "/var/log/securetcp/audit.jsonl"
    workers = 2

    [[listener]]
    name = "hl7"
    mode = "terminate"
    listen = "mtls:6661:certKey=server.pem:privateKey=server.key:caCerts=devices-ca.pem"
    backend = "tcp:127.0.0.1:2575"
    policy = "hl7.toml"

    [[listener]]
    name = "telemetry"
    mode = "serve"
    listen = "securessl:6443:certKey=server.pem:privateKey=server.key"
    app = "telemetry.server:factory"

    config = loadServiceConfig("listeners.toml")   # raises ServiceConfigError

The keys are the command line's option names.  C{audit-log} and each
listener's C{policy} are taken relative to the file's directory; paths
inside endpoint strings are relative to the working directory, as on the
command line.  A listener key that is also an endpoint option (C{policy},
the policy file) is declared once, in the option table
(L{securetcp.options}), which says how its value is read.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Callable, Dict, NoReturn, Optional, Tuple

import attrs

from securetcp._twistd.export import EXPORT_KEYS, ExportSettings, exportSettings
from securetcp.errors import ServiceConfigError
from securetcp.options import Option, Role, ownArguments

MODES = ("terminate", "originate", "serve")

#: every key of the file's top level, with its meaning
TOP_KEYS: Dict[str, str] = {
    "audit-log": "audit file shared by every listener (per worker with workers > 1)",
    "audit-checkpoint-key": "sign checkpoints of the audit chain with this Ed25519 private "
    "key (PEM file)",
    "audit-checkpoint-every": "records between audit checkpoints (default 100)",
    "audit-checkpoint-interval": "seconds from the first record a checkpoint is to cover to "
    "that checkpoint (default 60)",
    "workers": "number of processes sharing the listening sockets (default 1)",
    "listener": "the listeners, as [[listener]] tables",
    **EXPORT_KEYS,
}

#: every key of a [[listener]] table, with the modes that take it
LISTENER_KEYS: Dict[str, Tuple[str, ...]] = {
    "name": MODES,
    "mode": MODES,
    "listen": MODES,
    "backend": ("terminate",),
    "backend-proxy": ("terminate",),
    "connect": ("originate",),
    "app": ("serve",),
    "policy": MODES,
    "idle-timeout": ("terminate", "originate"),
}

#: the listener keys that are endpoint options too, as the option table
#: declares them
OPTION_KEYS: Dict[str, Option] = {"policy": ownArguments(Role.SERVER)["policy"]}

_REQUIRED = {"terminate": ("listen", "backend"), "originate": ("listen", "connect"),
             "serve": ("listen", "app")}

MAX_WORKERS = 256


@attrs.frozen
class ListenerConfig:
    """
    One C{[[listener]]} table, checked.

    @ivar label: how errors name it: C{listener 2 ("hl7")}.
    """

    index: int
    name: str
    mode: str
    listen: str
    backend: Optional[str] = None
    connect: Optional[str] = None
    app: Optional[str] = None
    policy: Optional[str] = None
    idleTimeout: float = 0.0
    backendProxy: Optional[str] = None

    @property
    def label(self) -> str:
        return f"listener {self.index} ({self.name!r})"


@attrs.frozen
class ServiceConfig:
    """
    A checked C{--config} file.
    """

    path: str
    listeners: Tuple[ListenerConfig, ...]
    auditLog: Optional[str] = None
    workers: int = 1
    export: Optional[ExportSettings] = None
    #: the options of the audit file's writer (C{audit-checkpoint-*})
    auditOptions: Dict[str, Any] = attrs.Factory(dict)


def checkWorkers(value: Any, fail: Callable[[str, str], NoReturn]) -> int:
    """
    A worker count from the command line or the file.

    @param fail: called with the problem and the fix; must raise.
    """
    if isinstance(value, bool):
        fail(f"{value!r} is not a number of processes", "write a whole number such as 2")
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError):
        fail(f"{value!r} is not a number of processes", "write a whole number such as 2")
    if not 1 <= number <= MAX_WORKERS:
        fail(f"{number} is out of range", f"use 1 to {MAX_WORKERS}")
    return number


def checkIdleTimeout(value: Any, fail: Callable[[str, str], NoReturn]) -> float:
    """
    An idle timeout from the command line (text) or the file (a number):
    a finite number of seconds, 0 or more (0: never).

    @param fail: called with the problem and the fix; must raise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        fail(f"{value!r} is not a number of seconds", "write 0 (never) or a positive number")
    try:
        seconds = float(value)
    except ValueError:
        fail(f"{value!r} is not a number of seconds", "write 0 (never) or a positive number")
    if not 0 <= seconds < float("inf"):
        fail(f"{value!r} is not a number of seconds", "write 0 (never) or a positive number")
    return seconds


def loadServiceConfig(path: str) -> ServiceConfig:
    """
    Read and check a C{--config} file.

    @raise ServiceConfigError: naming the file, the listener (by number and
        name) and the key, for anything wrong.
    """
    data = _readTOML(path)
    baseDir = os.path.dirname(os.path.abspath(path))

    def fail(listener: Optional[str], key: Optional[str], problem: str,
             fix: str = "") -> NoReturn:
        raise ServiceConfigError(path, listener, key, problem, fix)

    for key in data:
        if key not in TOP_KEYS:
            fail(None, key, "unknown key", "the top level takes " + ", ".join(TOP_KEYS)
                 + "; listener keys go in [[listener]] tables")
    auditLog = data.get("audit-log")
    if auditLog is not None:
        if not isinstance(auditLog, str) or not auditLog:
            fail(None, "audit-log", f"{auditLog!r} is not a file name", "write a path string")
        auditLog = os.path.join(baseDir, auditLog)
    workers = checkWorkers(data.get("workers", 1),
                           lambda problem, fix: fail(None, "workers", problem, fix))
    listeners = _listeners(data.get("listener"), baseDir, fail)
    export = exportSettings(data, auditLog, lambda key, problem, fix: fail(None, key, problem, fix),
                            baseDir)
    checkpoints = _checkpoints(data, auditLog, baseDir,
                               lambda key, problem, fix: fail(None, key, problem, fix))
    return ServiceConfig(os.path.abspath(path), listeners, auditLog, workers, export,
                         checkpoints)


def _checkpoints(data: Dict[str, Any], auditLog: Optional[str], baseDir: str,
                 fail: Callable[[str, str, str], NoReturn]) -> Dict[str, Any]:
    """
    The writer's options from the C{audit-checkpoint-*} keys; the key file
    is read now, so a bad one is refused before anything starts.
    """
    from securetcp.audit.anchor import CHECKPOINT_EVERY, CHECKPOINT_INTERVAL
    from securetcp.audit.checkpoint import checkpointSigner
    from securetcp.errors import AuditLogError

    key = data.get("audit-checkpoint-key")
    given = [k for k in ("audit-checkpoint-key", "audit-checkpoint-every",
                         "audit-checkpoint-interval") if k in data]
    if given and not auditLog:
        fail(given[0], "signs checkpoints of the audit file's chain",
             "give the audit file too (audit-log)")
    if key is None:
        if given:
            fail(given[0], "applies to signed checkpoints only",
                 "give audit-checkpoint-key too, or leave this out")
        return {}
    if not isinstance(key, str) or not key:
        fail("audit-checkpoint-key", f"{key!r} is not a file name", "write a path string")
    key = os.path.join(baseDir, key)
    try:
        checkpointSigner(key)
    except AuditLogError as e:
        fail("audit-checkpoint-key", f"{e.path}: {e.problem}", e.fix)
    every = data.get("audit-checkpoint-every", CHECKPOINT_EVERY)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        fail("audit-checkpoint-every", f"{every!r} is not a number of records",
             "write a whole number, at least 1, unquoted")
    interval = data.get("audit-checkpoint-interval", CHECKPOINT_INTERVAL)
    if (isinstance(interval, bool) or not isinstance(interval, (int, float))
            or not 0 < interval < float("inf")):
        fail("audit-checkpoint-interval", f"{interval!r} is not a number of seconds",
             "write a number more than 0, unquoted")
    return {"checkpointKey": key, "checkpointEvery": every,
            "checkpointInterval": float(interval)}


def _readTOML(path: str) -> Dict[str, Any]:
    """
    The content of a C{--config} file.

    @raise ServiceConfigError: naming the file, when it cannot be read or
        is not TOML.
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ServiceConfigError(path, None, None, "configuration file does not exist",
                                 "check the path given to --config") from None
    except IsADirectoryError:
        raise ServiceConfigError(path, None, None, "is a directory",
                                 "give the .toml file itself") from None
    except OSError as e:
        raise ServiceConfigError(path, None, None, f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ServiceConfigError(path, None, None, f"not valid TOML: {e}",
                                 "fix the syntax at the position shown") from None
    except UnicodeDecodeError as e:
        raise ServiceConfigError(path, None, None, f"not UTF-8 text: {e.reason}") from None


def _listeners(tables: Any, baseDir: str,
               fail: Callable[..., NoReturn]) -> Tuple[ListenerConfig, ...]:
    """
    The checked C{[[listener]]} tables, each with its own name.
    """
    if tables is None:
        fail(None, "listener", "no listeners", "add at least one [[listener]] table")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        fail(None, "listener", "must be an array of tables",
             "write each listener as a [[listener]] table")
    if not tables:
        fail(None, "listener", "no listeners", "add at least one [[listener]] table")
    listeners = []
    names: Dict[str, int] = {}
    for number, table in enumerate(tables, 1):
        listener = _listener(number, table, baseDir, fail)
        if listener.name in names:
            fail(listener.label, "name", f"is also the name of listener {names[listener.name]}",
                 "give every listener its own name")
        names[listener.name] = number
        listeners.append(listener)
    return tuple(listeners)


def _listener(number: int, table: Dict[str, Any], baseDir: str,
              fail: Callable[..., NoReturn]) -> ListenerConfig:
    """
    One checked C{[[listener]]} table.
    """
    name = table.get("name", str(number))
    label = f"listener {number} ({name!r})" if "name" in table else f"listener {number}"
    if not isinstance(name, str) or not name.strip():
        fail(label, "name", f"{name!r} is not a name", "write a short string")
    for key, value in table.items():
        _checkKey(label, key, value, fail)
    mode = table.get("mode")
    if mode is None:
        fail(label, "mode", "is required", "use one of " + ", ".join(MODES))
    if mode not in MODES:
        fail(label, "mode", f"unknown mode {mode!r}", "use one of " + ", ".join(MODES))
    for key in table:
        if mode not in LISTENER_KEYS[key]:
            fail(label, key, f"does not apply to mode {mode}",
                 "it applies to " + ", ".join(LISTENER_KEYS[key]))
    for key in _REQUIRED[mode]:
        if key not in table:
            fail(label, key, f"is required in mode {mode}")
    options = {key: _optionValue(OPTION_KEYS[key], table[key], baseDir)
               for key in OPTION_KEYS if key in table}
    return ListenerConfig(
        index=number, name=name, mode=mode, listen=table["listen"],
        backend=table.get("backend"), connect=table.get("connect"), app=table.get("app"),
        policy=options.get("policy"), idleTimeout=float(table.get("idle-timeout", 0)),
        backendProxy=table.get("backend-proxy"))


def _checkKey(label: str, key: str, value: Any, fail: Callable[..., NoReturn]) -> None:
    """
    Refuse a key a listener does not take, or a value of the wrong type.
    """
    if key not in LISTENER_KEYS:
        fail(label, key, "unknown key", "a listener takes " + ", ".join(LISTENER_KEYS))
    if key == "idle-timeout":
        if isinstance(value, str):
            fail(label, key, f"{value!r} is not a number of seconds",
                 "write 0 (never) or a positive number, unquoted")
        checkIdleTimeout(value, lambda problem, fix: fail(label, key, problem, fix))
    elif not isinstance(value, str) or not value:
        fail(label, key, f"{value!r} is not a non-empty string", "quote the value")
    elif key == "backend-proxy" and value != "v2":
        fail(label, key, f"{value!r} is not a PROXY protocol version securetcp sends",
             'write "v2" (v1 cannot carry the client certificate\'s identity)')


def _optionValue(option: Option, value: str, baseDir: str) -> str:
    """
    A listener's value of an endpoint option: a path is taken from the
    file's directory.
    """
    if option.kind.paths == "one":
        return os.path.join(baseDir, value)
    return value
