# -*- test-case-name: tests.test_options,tests.test_docs -*-
"""
The option table shown: a policy's effective value of every option (what
C{python -m securetcp check} prints) and the reference tables of
C{docs/policy.md} and C{docs/endpoints.md} (which C{tests.test_docs} holds
to the table)::

    >>> effectiveOptions(TLSPolicy())["minVersion"]
    'TLSv1.2'
    >>> print(referenceTable("server").splitlines()[0])
    | argument | meaning | type | default | example |

In the docs, each reference table stands between C{<!-- options table:
NAME ... -->} and C{<!-- end of options table -->}; after changing the
option table, rewrite them with::

    python -m securetcp._optionviews docs/policy.md docs/endpoints.md
"""

from __future__ import annotations

import base64
import functools
import re
import sys
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

from securetcp.options import (
    BINDING,
    FROM_PROFILE,
    GROUPS,
    PINS,
    POLICY_ROWS,
    SECRET,
    Option,
    Role,
    ownArguments,
)
from securetcp.policy import TLSPolicy


def fieldValue(policy: Any, field: str) -> Any:
    """
    The value of a dotted C{field} of C{policy}.
    """
    return functools.reduce(getattr, field.split("."), policy)


def shownValue(option: Option, value: Any) -> Any:
    """
    A field's value as JSON shows it, in the spelling the option is
    written in (enumerations by value, pins as C{sha256/BASE64}, optional
    groups with their C{?}); a C{pass:} passphrase is hidden.
    """
    if option.kind is GROUPS:
        return ["?" + g for g in value.optional] + list(value.required)
    if option.kind is BINDING:
        return value.name if value is not None else None
    if option.kind is PINS:
        return ["sha256/" + base64.b64encode(p).decode("ascii") for p in value]
    if option.kind.many:
        return [str(v) for v in value]
    if option.kind is SECRET and value is not None and value.startswith("pass:"):
        return "pass:(hidden)"
    return getattr(value, "value", value)


def effectiveOptions(policy: TLSPolicy) -> Dict[str, Any]:
    """
    Every policy option's effective value in C{policy}, by option name.
    """
    return {o.name: shownValue(o, fieldValue(policy, o.field or "")) for o in POLICY_ROWS}


def defaultText(option: Option) -> str:
    """
    An option's default as the reference docs state it: its value, then
    its note; a note alone when there is no value.
    """
    value, note = option.default, option.defaultNote
    if value is None:
        return note or "none"
    if value is FROM_PROFILE:
        text = FROM_PROFILE
    elif value == ():
        text = "empty"
    elif isinstance(value, bool):
        text = "`true`" if value else "`false`"
    elif isinstance(value, float):
        text = f"`{value:g}`"
    else:
        text = f"`{value}`"
    return f"{text} {note}" if note else text


def typeText(option: Option) -> str:
    """
    An option's type as the reference docs state it: its kind, with its
    choices or its range.
    """
    if option.choices:
        return f"{option.kind.name}: " + ", ".join(f"`{c}`" for c in option.choices)
    if option.bounds is not None:
        low, high = option.bounds
        return f"{option.kind.name}, {low} to {high}"
    return option.kind.name


_ROLES: Mapping[Tuple[Role, ...], str] = {(Role.SERVER,): "server", (Role.CLIENT,): "client"}

#: The columns of the reference tables: heading, and the cell of a row.
_COLUMNS: Mapping[str, Callable[[Option], str]] = {
    "option": lambda o: f"`{o.name}`",
    "argument": lambda o: f"`{o.name}`",
    "meaning": lambda o: o.doc,
    "type": typeText,
    "default": defaultText,
    "sets": lambda o: f"`{o.field}`",
    "for": lambda o: _ROLES.get(o.roles, "both"),
    "example": lambda o: f"`{o.name}={o.example}`",
}


def _tables() -> Mapping[str, Tuple[Tuple[str, ...], Iterable[Option]]]:
    return {
        "policy": (("option", "meaning", "type", "default", "sets", "for"), POLICY_ROWS),
        "arguments": (("argument", "meaning", "type", "default", "for"), POLICY_ROWS),
        "server": (("argument", "meaning", "type", "default", "example"),
                   ownArguments(Role.SERVER).values()),
        "client": (("argument", "meaning", "type", "default", "example"),
                   ownArguments(Role.CLIENT).values()),
    }


#: The reference tables there are, by the name the docs' markers use.
TABLES = ("policy", "arguments", "server", "client")


def referenceRows(name: str) -> Dict[str, str]:
    """
    The rows of the reference table C{name} (one of L{TABLES}), as
    Markdown table lines by option name.
    """
    columns, options = _tables()[name]
    return {o.name: "| " + " | ".join(_COLUMNS[c](o).replace("|", "\\|") for c in columns)
            + " |" for o in options}


def referenceTable(name: str) -> str:
    """
    The reference table C{name} as Markdown: heading, rule and rows.
    """
    columns = _tables()[name][0]
    lines: List[str] = ["| " + " | ".join(columns) + " |",
                        "|" + "---|" * len(columns)]
    return "\n".join(lines + list(referenceRows(name).values())) + "\n"


#: a reference table in a docs page, between its markers
MARKED_TABLE = re.compile(
    r"(?P<start>^<!-- options table: (?P<name>[\w-]+)[^\n]*-->\n)(?P<table>.*?)"
    r"(?P<end>\n<!-- end of options table -->$)", re.M | re.S)


def refreshTables(text: str) -> str:
    """
    C{text} (a docs page) with every marked reference table rendered anew
    from the option table.
    """
    return MARKED_TABLE.sub(lambda m: m.group("start") + referenceTable(m.group("name"))
                            + m.group("end"), text)


if __name__ == "__main__":
    for page in sys.argv[1:]:
        with open(page, encoding="utf-8") as f:
            before = f.read()
        with open(page, "w", encoding="utf-8") as f:
            f.write(refreshTables(before))

