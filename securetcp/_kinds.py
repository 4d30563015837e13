# -*- test-case-name: tests.test_options -*-
"""
The kinds of option values (L{Kind}: which values an option takes and how
they are checked), for the option table, L{securetcp.options}, which
re-exports them::

    >>> PATHS.many, PATHS.paths
    (True, 'many')
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import attrs

__all__ = ["BINDING", "BIND_RULES", "BOOL", "CHOICE", "ENDPOINT", "GROUPS", "INTEGER", "Kind",
           "LABEL", "NAMES", "PATH", "PATHS", "PINS", "RULES", "SECONDS", "SECRET", "TEXT",
           "URL", "VERSION"]


def _isText(item: Any) -> bool:
    return isinstance(item, (str, bytes))


def _notANumber(item: Any) -> bool:
    return not isinstance(item, (int, float, bool))


@attrs.frozen(eq=False)
class Kind:
    """
    What values an option takes, and how they are checked before any part
    of the policy looks at them.

    @ivar name: how the reference docs name it (C{"path"}, C{"list"}).
    @ivar accepts: the Python (and TOML) types of one value; C{bool} is
        refused unless named, though it is an C{int}.
    @ivar expected: the problem when the type is wrong.
    @ivar fix: the fix then (C{{name}} is the option's name).
    @ivar many: whether a list of values (a TOML array) is accepted.
    @ivar item: whether one item of such a list is acceptable.
    @ivar paths: how relative paths in a policy file are resolved:
        C{"one"} path, C{"many"} paths, C{"source"} a C{file:} source.
    @ivar hidden: whether values are secret and never shown.

    Kinds compare by identity: two kinds that check alike may still be
    converted differently.
    """

    name: str
    accepts: Tuple[type, ...] = (str,)
    expected: str = "expected a string"
    fix: str = 'write {name} = "..."'
    many: bool = False
    item: Callable[[Any], bool] = _isText
    paths: str = ""
    hidden: bool = False


TEXT = Kind("string")
LABEL = Kind("string")
CHOICE = Kind("choice")
VERSION = Kind("TLS version", accepts=(str, int, float))
PATH = Kind("path", paths="one")
PATHS = Kind("list of paths", many=True, paths="many")
NAMES = Kind("list", many=True)
GROUPS = Kind("list of groups", many=True)
RULES = Kind("list of rules", many=True, item=_notANumber)
PINS = Kind("list of pins", many=True)
BOOL = Kind("boolean", accepts=(bool, str), expected="expected true or false",
            fix="write true or false")
SECONDS = Kind("seconds", accepts=(int, float, str), expected="expected a number of seconds",
               fix="write e.g. 10")
URL = Kind("URL")
SECRET = Kind("passphrase source", paths="source", hidden=True,
              fix="write env:NAME, file:PATH or pass:TEXT")
BINDING = Kind("protocol")
BIND_RULES = Kind("list of binding rules", many=True, item=_notANumber)
#: the endpoint's own arguments only
INTEGER = Kind("integer")
ENDPOINT = Kind("endpoint string")
