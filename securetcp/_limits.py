# -*- test-case-name: tests.test_limits -*-
"""
L{Limits}: how many connections a server gate lets in::

    GateFactory(appFactory, Role.SERVER, clock, sink, creator,
                limits=Limits(maxConnections=1000, maxHandshakes=200))
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from securetcp.errors import PolicyError


def _limit(name: str) -> Callable[[Any, Any, Optional[int]], None]:
    def check(instance: Any, attribute: Any, value: Optional[int]) -> None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise PolicyError(name, value, "must be a positive integer",
                              f"give {name}=N with N >= 1, or leave it out")
    return check


@attrs.frozen
class Limits:
    """
    How many connections a server gate lets in; beyond them a new
    connection is refused and audited.  C{None}: no limit.

    @ivar maxConnections: connections open at once.
    @ivar maxHandshakes: handshakes in progress at once.
    """

    maxConnections: Optional[int] = attrs.field(default=None,
                                                validator=_limit("maxConnections"))
    maxHandshakes: Optional[int] = attrs.field(default=None, validator=_limit("maxHandshakes"))
