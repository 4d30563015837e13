# -*- test-case-name: tests.test_checkpoint_fronts,tests.test_options,tests.test_endpointaudit_close -*-
"""
The C{auditLog=} arguments of C{securessl:}/C{mtls:} endpoint strings: the
audit file and its signed checkpoints (C{auditCheckpointKey},
C{auditCheckpointEvery}, C{auditCheckpointInterval}, as the writer's
C{checkpoint*} options of L{securetcp.audit.file.auditLogObserver})::

    emitter = emitterFor({"auditLog": "audit.jsonl",
                          "auditCheckpointKey": "checkpoint.key"}, Role.SERVER, reactor)

The writer ends its chain (C{chain.closed}) when C{reactor} shuts down.
Every problem is an L{EndpointArgumentError} naming the argument.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from twisted.internet.interfaces import IReactorCore

import securetcp._fields as _fields
from securetcp._fields import Role
from securetcp.audit.emitter import AuditEmitter
from securetcp.errors import AuditLogError, EndpointArgumentError
from securetcp.options import ownArguments

#: The checkpoint arguments, as the writer's options.
CHECKPOINT_ARGUMENTS = {"auditCheckpointKey": "checkpointKey",
                        "auditCheckpointEvery": "checkpointEvery",
                        "auditCheckpointInterval": "checkpointInterval"}


def emitterFor(kwargs: Dict[str, Any], role: Role,
               reactor: Any = None) -> Optional[AuditEmitter]:
    """
    An emitter that also writes to the C{auditLog=} file, if one is named,
    with its checkpoint arguments; C{None} without one.

    The endpoint is one user of the file's writer (from
    L{securetcp.audit.file.globalAuditFiles}, shared by everyone naming the
    file); it stops using it after C{reactor} (an C{IReactorCore}) has shut
    down, so the last user closes the chain with C{chain.closed} after the
    records of the connections the shutdown dropped.  (A process that
    C{twistd} ends with the signal that stopped it never runs its C{atexit}
    handlers, which otherwise close the writers still open.)

    @raise EndpointArgumentError: naming the argument.
    """
    path = kwargs.get("auditLog")
    given = [name for name in CHECKPOINT_ARGUMENTS if name in kwargs]
    if not path:
        if given:
            raise EndpointArgumentError(given[0], kwargs[given[0]],
                                        "applies to the auditLog= file only",
                                        "add auditLog=FILE, or leave it out")
        return None
    from securetcp.audit.file import auditLogObserver, globalAuditFiles

    options = _checkpointOptions(kwargs, role)
    try:
        observer = auditLogObserver(path, **options)
    except AuditLogError as e:
        raise EndpointArgumentError("auditLog", path, e.problem, e.fix) from None
    if IReactorCore.providedBy(reactor):
        reactor.addSystemEventTrigger("after", "shutdown", globalAuditFiles.release, observer)
    return AuditEmitter(observers=[observer])


def _checkpointOptions(kwargs: Dict[str, Any], role: Role) -> Dict[str, Any]:
    """
    The writer's checkpoint options; the key file is read here, so that a
    bad one is named as C{auditCheckpointKey}.
    """
    from securetcp.audit.checkpoint import checkpointSigner

    key = kwargs.get("auditCheckpointKey")
    if key is None:
        for name in ("auditCheckpointEvery", "auditCheckpointInterval"):
            if name in kwargs:
                raise EndpointArgumentError(name, kwargs[name],
                                            "applies to signed checkpoints only",
                                            "add auditCheckpointKey=FILE, or leave it out")
        return {}
    try:
        checkpointSigner(key)
    except AuditLogError as e:
        raise EndpointArgumentError("auditCheckpointKey", key, e.problem,
                                    e.fix) from None
    options: Dict[str, Any] = {"checkpointKey": key}
    if "auditCheckpointEvery" in kwargs:
        value = kwargs["auditCheckpointEvery"]
        low, high = ownArguments(role)["auditCheckpointEvery"].bounds or (1, 1)
        try:
            every = _fields.asciiInteger(value)
            if not low <= every <= high:
                raise ValueError
        except ValueError:
            raise EndpointArgumentError("auditCheckpointEvery", value,
                                        f"not a number of records from {low} to {high}",
                                        "write e.g. auditCheckpointEvery=100") from None
        options["checkpointEvery"] = every
    if "auditCheckpointInterval" in kwargs:
        value = kwargs["auditCheckpointInterval"]
        try:
            seconds = _fields.asciiNumber(value)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError
        except ValueError:
            raise EndpointArgumentError("auditCheckpointInterval", value,
                                        "not a positive number of seconds",
                                        "write e.g. auditCheckpointInterval=60") from None
        options["checkpointInterval"] = seconds
    return options
