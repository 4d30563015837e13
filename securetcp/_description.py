# -*- test-case-name: tests.test_endpoints_strings -*-
"""
The endpoint description as Twisted was given it, for what Twisted's own
parsing loses: an argument written twice.

Twisted splits a description into positional arguments and a dictionary of
keyword arguments before it calls a parser plugin, so in
C{mtls:6661:caCerts=a.pem:caCerts=b.pem} the plugin sees C{caCerts} once,
with the last value, and nothing in Twisted's plugin interfaces hands it the
string.  The string is still whole in the frame of Twisted's
C{serverFromString} or C{clientFromString} that called the plugin; this
module reads it from there and splits it again, keeping every argument::

    description = callingDescription(args, kwargs)   # None if not called by Twisted
    if description is not None:
        repeated(description)                        # [("caCerts", ["a.pem", "b.pem"])]

This is the only module that leans on Twisted's private parsing names, all
listed in L{TWISTED_PRIVATE} (a test checks they are still there):
C{twisted.internet.endpoints._tokenize} and its token kinds C{_OP} and
C{_STRING}, and the C{description} parameter of C{serverFromString} and
C{clientFromString}.  Where a parser is called otherwise (directly, with
keyword arguments, which cannot repeat), there is no description and
nothing to check.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from twisted.internet import endpoints as _endpoints

#: The private names of C{twisted.internet.endpoints} this module uses.
TWISTED_PRIVATE = ("_tokenize", "_OP", "_STRING", "serverFromString(description)",
                   "clientFromString(description)")

#: The functions whose frame holds the description a plugin was called for.
_CALLERS = (_endpoints.serverFromString.__code__, _endpoints.clientFromString.__code__)
#: How many frames up the plugin's caller may be (the dropin's lazy plugin
#: object and the parser sit between them).
_MAX_DEPTH = 12


def split(description: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """
    C{description} split as Twisted splits it, but with every keyword
    argument kept, in order: (positional arguments, the prefix first;
    (name, value) pairs).
    """
    positional: List[str] = []
    named: List[Tuple[str, str]] = []
    segment: Tuple[str, ...] = ()

    def add(parts: Tuple[str, ...]) -> None:
        if len(parts) == 1:
            positional.append(parts[0])
        else:
            named.append((parts[0], parts[1]))

    for kind, value in _endpoints._tokenize(description):  # type: ignore[attr-defined]
        if kind == _endpoints._STRING:  # type: ignore[attr-defined]
            segment += (value,)
        elif value == ":":
            add(segment)
            segment = ()
    add(segment)
    return positional, named


def repeated(description: str) -> List[Tuple[str, List[str]]]:
    """
    Each argument C{description} names more than once, with its values in
    order, in the order of first appearance.
    """
    values: Dict[str, List[str]] = {}
    for name, value in split(description)[1]:
        values.setdefault(name, []).append(value)
    return [(name, given) for name, given in values.items() if len(given) > 1]


def _twistedCaller(frame: Optional[FrameType]) -> Optional[Any]:
    """
    The C{description} of the nearest C{serverFromString} or
    C{clientFromString} frame above C{frame}, if one is near.
    """
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        if frame.f_code in _CALLERS:
            return frame.f_locals.get("description")
        frame = frame.f_back
    return None


def callingDescription(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Optional[str]:
    """
    The description Twisted's C{serverFromString} or C{clientFromString}
    was given when it called the parser plugin that calls this, with
    C{args} (after the prefix) and C{kwargs}; C{None} when the plugin was
    not called by one of them, or by one parsing another description.
    """
    frame = sys._getframe(1)
    try:
        description = _twistedCaller(frame)
    finally:
        del frame
    if not isinstance(description, str):
        return None  # a bytes description: not one securetcp's parsers take apart
    try:
        positional, named = split(description)
    except (RuntimeError, UnicodeError):
        return None
    same = list(args) == positional[1:] and dict(kwargs) == dict(named)
    return description if same else None
