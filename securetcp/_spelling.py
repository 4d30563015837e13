# -*- test-case-name: tests.test_options -*-
"""
The option table read backwards: from a L{TLSPolicy} field path to the
option users write for it, so that an error of a policy part reaches them
in their own words::

    >>> optionForField("peer.allow").name
    'allowPeers'
    >>> spell("lower versions.minimum or raise versions.maximum")
    'lower minVersion or raise maxVersion'
    >>> str(inUserSpelling(PolicyError("trust.caFile", None, "missing", "give trust.caFile=CA.pem")))
    "caCerts=None: missing (fix: give caCerts=CA.pem)"

The policy parts (L{securetcp.policy}) name fields by path; the front ends
(L{securetcp.config}, the endpoint-string parsers, L{TLSPolicy.requireFor}
where a policy meets an endpoint) pass their errors through
L{inUserSpelling}.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from securetcp.errors import PolicyError
from securetcp.options import OPTIONS_BY_FIELD, POLICY_ROWS, Option


@functools.cache
def optionForField(field: str) -> Optional[Option]:
    """
    The policy option that sets C{field} or the part it is in
    (C{"groups.optional"} is set by C{groups}), or C{None}.
    """
    best: Optional[Option] = None
    for option in POLICY_ROWS:
        path = option.field
        assert path is not None
        if (field == path or field.startswith(path + ".")) and (
                best is None or len(path) > len(best.field or "")):
            best = option
    return best


_FIELD_PATHS = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(o.field or "") for o in sorted(
        POLICY_ROWS, key=lambda o: -len(o.field or "")) if "." in (o.field or "")) + r")(?!\w)"
)


def spell(text: str) -> str:
    """
    C{text} with every field path that an option sets replaced by the
    option's name.
    """
    return _FIELD_PATHS.sub(lambda m: OPTIONS_BY_FIELD[m.group(1)].name, text)



def inUserSpelling(error: PolicyError) -> PolicyError:
    """
    C{error} as the user who wrote options reads it: its field, and the
    field paths in its problem and fix, become option names.  An error
    already in those terms is returned as it is.
    """
    option = optionForField(error.field)
    name = option.name if option is not None else error.field
    problem, fix = spell(error.problem), spell(error.fix)
    if (name, problem, fix) == (error.field, error.problem, error.fix):
        return error
    spelled = type(error).__new__(type(error))  # the same kind, with its data (path, ...)
    spelled.__dict__.update(error.__dict__)
    spelled.field, spelled.problem, spelled.fix = name, problem, fix
    spelled.args = (spelled._message(),)
    return spelled
