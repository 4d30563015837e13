# -*- test-case-name: tests.test_config -*-
"""
Policy options -> L{TLSPolicy}: one validating path for endpoint-string
arguments, TOML policy files and flat Python keyword arguments.

The option names are the same everywhere::

    policy = buildPolicy(profile="nist-800-52r2", caCerts="ca.pem",
                         certKey="server.pem", privateKey="server.key",
                         clientAuth="required")
    policy = loadPolicyFile("hl7-inbound.toml")

A policy file is flat TOML with the same keys; lists may be TOML arrays::

    name = "hl7-inbound"
    profile = "nist-800-52r2"
    certKey = "server.pem"
    privateKey = "server.key"
    caCerts = "devices-ca.pem"
    clientAuth = "required"
    allowPeers = ["uri:spiffe://hospital.example/ward3/*"]

Relative paths in a policy file are taken from the file's directory.

The options, their kinds (which values and TOML types each takes) and the
policy fields they set are the rows of L{securetcp.options}; building a
policy is table-driven: check each value against its kind, resolve relative
paths, start from the profile (or a base policy), set each option's field.
An error of a policy part, which names a field (C{versions.minimum}), is
raised in the option's name (C{minVersion}).
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import attrs

from securetcp._spelling import inUserSpelling
from securetcp.binding import BindingRule, IIdentityBinding, bindingRules
from securetcp.binding.part import checkClaims
from securetcp.errors import CredentialError, PolicyError, PolicyFileError
from securetcp.options import (
    BIND_RULES,
    BOOL,
    GROUPS,
    LABEL,
    OPTIONS,
    POLICY_ROWS,
    Kind,
    checkValue,
    parseBool,
)
from securetcp.policy import Groups, TLSPolicy
from securetcp.profiles import DEFAULT_PROFILE

#: Every policy option, with a one-line description; derived from
#: L{securetcp.options}, which the docs reference is checked against.
POLICY_OPTIONS: Mapping[str, str] = {o.name: o.doc for o in POLICY_ROWS}

#: The fields a profile sets: a C{profile} over a base policy replaces
#: these and keeps the base's others.
PROFILE_FIELDS = ("profile", "versions", "ciphers", "groups", "keys", "legacy")


def _groupsOption(name: str, value: Any) -> Groups:
    """
    The C{groups} option: names in order, C{?NAME} for an optional one.
    """
    if isinstance(value, str):
        items = [v for v in value.replace(":", ",").split(",") if v.strip()]
    else:
        items = [str(v) for v in value or ()]
    required = tuple(v.strip() for v in items if not v.strip().startswith("?"))
    optional = tuple(v.strip()[1:] for v in items if v.strip().startswith("?"))
    return Groups(required, optional)


#: How values of a kind become field values (others are given as written,
#: and the policy part converts them).
_CONVERTERS: Mapping[Kind, Callable[[str, Any], Any]] = {
    BOOL: parseBool,
    GROUPS: _groupsOption,
    LABEL: lambda name, value: str(value),
}


def buildPolicy(**options: Any) -> TLSPolicy:
    """
    Build a policy from flat options (the names of L{POLICY_OPTIONS}).

    @raise PolicyError: for an unknown option or an invalid value, naming
        the option.
    """
    return policyFromOptions(options)


def policyFromOptions(
    options: Mapping[str, Any],
    base: Optional[TLSPolicy] = None,
    baseDir: Optional[str] = None,
) -> TLSPolicy:
    """
    Apply C{options} on top of C{base} (or of the options' C{profile}).

    @param baseDir: directory relative paths are resolved against.
    @raise PolicyError: for an unknown option or an invalid value, naming
        the option as it was written.
    """
    _refuseUnknown(options)
    for name, value in options.items():
        checkValue(OPTIONS[name], value)
    values = _resolvePaths(options, baseDir) if baseDir is not None else dict(options)
    try:
        return _apply(_start(values, base), values)
    except PolicyError as e:
        raise inUserSpelling(e) from None


def _refuseUnknown(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise PolicyError(
            unknown[0], options[unknown[0]], "unknown policy option",
            "valid options: " + ", ".join(OPTIONS),
        )


def _resolvePaths(options: Mapping[str, Any], baseDir: str) -> Dict[str, Any]:
    """
    C{options} with relative paths taken from C{baseDir}: path options,
    path lists and a C{file:} passphrase source.
    """

    def resolve(path: Any) -> str:
        return path if os.path.isabs(str(path)) else os.path.join(baseDir, str(path))

    values = dict(options)
    for name, value in options.items():
        how = OPTIONS[name].kind.paths
        if not value or not how:
            continue
        if how == "one":
            values[name] = resolve(value)
        elif how == "many":
            items = [i for i in value.split(",") if i.strip()] if isinstance(value, str) \
                else value
            values[name] = [resolve(i) for i in items]
        elif str(value).startswith("file:"):
            values[name] = "file:" + resolve(str(value)[len("file:"):])
    return values


def _start(values: Mapping[str, Any], base: Optional[TLSPolicy]) -> TLSPolicy:
    """
    The policy the options apply to: C{base}, or the named profile's policy
    keeping what C{base} says beyond the profile's content.
    """
    if "profile" not in values and base is not None:
        return base
    policy = TLSPolicy.fromProfile(values.get("profile", DEFAULT_PROFILE))
    if base is None:
        return policy
    kept = {f.name: getattr(base, f.name) for f in attrs.fields(TLSPolicy)
            if f.name not in PROFILE_FIELDS}
    return attrs.evolve(policy, **kept)


def _apply(policy: TLSPolicy, values: Mapping[str, Any]) -> TLSPolicy:
    """
    C{policy} with the field each option sets changed to its value (and
    the fields it clears reset).
    """
    changes: Dict[str, Any] = {}
    for name in values:
        changes.update(dict.fromkeys(OPTIONS[name].clears))
    for name, value in values.items():
        option = OPTIONS[name]
        if option.field != "profile":
            convert = _CONVERTERS.get(option.kind)
            changes[option.field or ""] = convert(name, value) if convert else value
    return _evolve(policy, changes)


def _evolve(policy: TLSPolicy, changes: Mapping[str, Any]) -> TLSPolicy:
    """
    C{policy} with dotted C{changes} (C{{"versions.minimum": "1.3"}}); each
    changed part is built again, so its converters and checks run.
    """
    whole: Dict[str, Any] = {}
    leaves: Dict[str, Dict[str, Any]] = {}
    for field, value in changes.items():
        part, dot, leaf = field.partition(".")
        if dot:
            leaves.setdefault(part, {})[leaf] = value
        else:
            whole[part] = value
    top: Dict[str, Any] = {}
    for f in attrs.fields(TLSPolicy):  # in the policy's order, so errors come in it
        if f.name in whole:
            top[f.name] = whole[f.name]
        elif f.name in leaves:
            top[f.name] = attrs.evolve(getattr(policy, f.name), **leaves[f.name])
    return attrs.evolve(policy, **top) if top else policy


def _checkTOMLValue(path: str, key: str, value: Any) -> None:
    if isinstance(value, dict):
        raise PolicyFileError(path, key, None, "tables are not policy options",
                              "write flat keys (see docs/policy.md)")
    if isinstance(value, list) and key in OPTIONS and OPTIONS[key].kind is BIND_RULES:
        return  # [[bind]] tables, or inline rules: the binding part checks them
    if isinstance(value, list):
        if key in OPTIONS and not OPTIONS[key].kind.many:
            raise PolicyFileError(path, key, value, "takes one value, not a list",
                                  "write a single string")
        for item in value:
            if not isinstance(item, str):
                raise PolicyFileError(path, key, value, "lists may hold only strings",
                                      "quote every item")
    elif not isinstance(value, (str, int, float, bool)):
        raise PolicyFileError(path, key, value, "unsupported value type",
                              "use a string, number, boolean or list of strings")


def readPolicyFile(path: str) -> Tuple[Dict[str, Any], str]:
    """
    Read a TOML policy file's options.

    @return: the options and the directory paths in them are relative to.
    @raise PolicyFileError: naming the file, for a missing, unreadable or
        malformed file.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise PolicyFileError(path, None, None, "policy file does not exist",
                              "check the path given to policy=") from None
    except IsADirectoryError:
        raise PolicyFileError(path, None, None, "policy path is a directory",
                              "give the .toml file itself") from None
    except OSError as e:
        raise PolicyFileError(path, None, None, f"cannot read: {e.strerror}",
                              "fix the file's permissions") from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyFileError(path, None, None, f"not valid TOML: {e}",
                              "fix the syntax at the position shown") from None
    except UnicodeDecodeError as e:
        raise PolicyFileError(path, None, None, f"not UTF-8 text: {e.reason} at byte {e.start}",
                              "save the policy file as UTF-8") from None
    except ValueError as e:  # e.g. an embedded NUL in the path
        raise PolicyFileError(path, None, None, f"not a usable path: {e}",
                              "check the path given to policy=") from None
    for key, value in data.items():
        _checkTOMLValue(path, key, value)
    return data, os.path.dirname(os.path.abspath(path))


def readBindingsFile(path: str, protocol: IIdentityBinding) -> Tuple[BindingRule, ...]:
    """
    The C{[[bind]]} rules of a bindings file (C{bindings=}), checked
    against the claims of C{protocol}.  Read with the other files an
    endpoint needs (L{securetcp.materials}), so its errors are theirs.

    @raise CredentialError: naming C{bindings}, the file and the problem,
        for a missing or malformed file, another key than C{bind}, or a
        bad rule.
    """
    try:
        options, _ = readPolicyFile(path)
        for key in options:
            if key != "bind":
                raise PolicyFileError(path, key, None, "a bindings file holds only [[bind]] "
                                      "rules", "move other options to the policy")
        rules = bindingRules(options.get("bind", ()), "bind")
        checkClaims(protocol, rules, "bind")
        return rules
    except PolicyError as e:
        where = f"key {e.key!r}: " if isinstance(e, PolicyFileError) and e.key else ""
        if not isinstance(e, PolicyFileError):
            where = f"[[bind]] {e.value}: "
        raise CredentialError("bindings", path, where + e.problem.replace("policy ", "bindings "),
                              e.fix.replace("policy=", "bindings=")) from None


def loadPolicyFile(path: str, base: Optional[TLSPolicy] = None) -> TLSPolicy:
    """
    Build a policy from a TOML policy file.

    @raise PolicyFileError: naming the file, the key and the problem.
    """
    options, baseDir = readPolicyFile(path)
    return _inFile(path, lambda: policyFromOptions(options, base, baseDir))


def _inFile(path: str, build: Callable[[], TLSPolicy]) -> TLSPolicy:
    try:
        return build()
    except PolicyFileError:
        raise
    except PolicyError as e:
        raise PolicyFileError(path, e.field, e.value, e.problem, e.fix) from None
