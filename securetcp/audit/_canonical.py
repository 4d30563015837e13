# -*- test-case-name: tests.test_auditcanonical,tests.test_auditverify -*-
"""
The canonical JSON of audit records (L{canonical}), and of a record sealed
into a chain (L{sealedBody}) without encoding all of it each time::

    body = sealedBody(record, seq=42, prev=previousHash)
    body == canonical(dict(record, schema=1, seq=42, prev=previousHash))   # always

A connection's records (C{connection.accepted}, C{connection.closed},
C{handshake.rejected}, C{connection.revoked}) repeat most of their
members from record to record: the role, addresses of the listener, policy,
negotiated version and cipher, compliance verdict and the peer's identity.
L{sealedBody} keeps the encoded text of those members (a template per set
of values, and the encoded C{peerIdentity} and C{compliance} per value) and
encodes only what differs (time, connection id, peer, byte counts...), then
joins the members in sorted key order.

A template is used only for a record whose repeated members are exactly
the values it was made from: strings and C{None} equal, C{True} and
C{False} the same objects, nested dicts equal to a private copy with the
same C{True}, C{False} and numbers in them.  Everything else (other
events, other types, keys that need escaping, C{hash}/C{seq}/C{prev} in the
record) goes the reference way: one call of the standard library's C
encoder over the whole record.  The result is the same bytes either way
(a property test checks it); the caches are bounded.  Records hold JSON
types only (an object that is not JSON but compares equal to a string is
not guarded against).
"""

from __future__ import annotations

import json
import operator
from json.encoder import c_make_encoder as _cEncoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii as _asciiString
from typing import Any, Callable, Dict, List, Optional, Tuple

from securetcp.audit.records import SCHEMA_VERSION

#: the standard library's JSON encoder settings of L{canonical}, built once
#: (C{json.dumps} with these arguments builds a new encoder per call)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                            allow_nan=False)


def _notJSON(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(value: Any) -> str:
    if _cEncoder is None:  # pragma: no cover (no C accelerator)
        return _ENCODER.encode(value)
    return "".join(_cEncoder({}, _notJSON, _asciiString, None, ":", ",", True, False,
                             False)(value, 0))


def canonical(record: Dict[str, Any]) -> bytes:
    """
    The canonical JSON encoding that hashes are computed over: what
    C{json.dumps(record, sort_keys=True, separators=(",", ":"),
    ensure_ascii=True, allow_nan=False)} gives, encoded as ASCII.

    With the C accelerator the encoder is made here, with a fresh set of
    the containers being encoded (the circular-reference check), without
    C{json.dumps}' Python layers.
    """
    return _encode(record).encode("ascii")


def referenceBody(record: Dict[str, Any], seq: int, prev: str) -> bytes:
    """
    The canonical JSON of C{record} sealed as record C{seq} after C{prev}:
    without C{hash}, with C{schema}, C{seq} and C{prev}; one encoding of
    the whole record.
    """
    sealed = dict(record)
    sealed.pop("hash", None)
    sealed["schema"] = SCHEMA_VERSION
    sealed["seq"] = seq
    sealed["prev"] = prev
    return canonical(sealed)


# -- templates ---------------------------------------------------------------

#: the events whose records L{sealedBody} builds from templates
TEMPLATE_EVENTS = frozenset({"connection.accepted", "connection.closed",
                             "handshake.rejected", "connection.revoked"})

#: members that differ from record to record: encoded each time
_VARYING = frozenset({"time", "connection", "peer", "duration", "bytesIn", "bytesOut",
                      "closeReason", "refused", "binding", "reason", "detail",
                      "revocationReason", "revocationTime"})

#: members whose dict values are kept encoded per value, apart from templates
_NESTED = frozenset({"peerIdentity", "compliance"})

#: what a record's shape cannot have for a template (the seal sets or drops them)
_SEALING = frozenset({"hash", "seq", "prev"})

#: bounds of the caches: shapes (key sets), templates per shape, nested values
_MAX_SHAPES = 64
_MAX_TEMPLATES = 256
_MAX_NESTED = 1024
_MAX_VARIANTS = 8

#: marks a slot of a template's parts, filled per record
_SLOT = ""


class _Fallback(Exception):
    """A record (or one of its values) the templates do not cover."""


def _member(name: str, value: Any) -> str:
    """
    One member, C{"name":value}, as the reference encoder writes it; only
    the common scalar types here, anything else through the C encoder.
    """
    kind = type(value)
    if kind is str:
        return f'"{name}":{_asciiString(value)}'
    if value is None:
        return f'"{name}":null'
    if value is True:
        return f'"{name}":true'
    if value is False:
        return f'"{name}":false'
    if kind is int:
        return f'"{name}":{int.__repr__(value)}'
    if kind is float and value - value == 0.0:  # finite; else the reference's error
        return f'"{name}":{float.__repr__(value)}'
    if kind is dict or kind is list:
        return f'"{name}":{_encode(value)}'
    raise _Fallback()


class _Shape:
    """
    The layout of the sealed records with one set of keys (in the order
    the record has them): which members a template fixes, and where the
    others go among the sorted members.
    """

    def __init__(self, names: Tuple[str, ...]) -> None:
        self.fixed = tuple(n for n in names if n not in _VARYING and n not in _NESTED
                           and n != "schema")
        members = sorted({*names, "schema", "seq", "prev"})
        #: per part: the fixed members it joins (a run), or a slot
        self.layout: List[Tuple[str, ...]] = []
        #: the slots: (part index, kind, name); kind: varying, nested, seq, prev
        slots: List[Tuple[int, str, str]] = []
        run: List[str] = []
        for name in members:
            if name in self.fixed or name == "schema":
                run.append(name)
                continue
            if run:
                self.layout.append(tuple(run))
                run = []
            kind = (name if name in ("seq", "prev") else
                    "nested" if name in _NESTED else "varying")
            slots.append((len(self.layout), kind, name))
            self.layout.append(())
        if run:
            self.layout.append(tuple(run))
        #: the varying members: (part index, name, C{"name":})
        self.varying = tuple((i, n, f'"{n}":') for i, k, n in slots if k == "varying")
        #: the nested members: (part index, name, their index among them)
        self.nested = tuple((i, n, j) for j, (i, n) in enumerate(
            (i, n) for i, k, n in slots if k == "nested"))
        self.seqAt = next(i for i, k, _ in slots if k == "seq")
        self.prevAt = next(i for i, k, _ in slots if k == "prev")
        #: the values of the fixed members of a record, as a tuple
        self.fixedOf = _getter(self.fixed)
        self.templates: Dict[Tuple[Any, ...], _Template] = {}


def _getter(names: Tuple[str, ...]) -> Callable[[Dict[str, Any]], Tuple[Any, ...]]:
    """
    A function of a record giving the values of C{names}, as a tuple.
    """
    if len(names) == 1:
        one = operator.itemgetter(names[0])
        return lambda record: (one(record),)
    if not names:
        return lambda record: ()
    return operator.itemgetter(*names)


def _shapeOf(names: Tuple[Any, ...]) -> Optional[_Shape]:
    """
    The shape of the records with these keys, if templates can cover them.
    """
    try:
        return _shapes[names]
    except KeyError:
        pass
    plain = all(type(name) is str and name not in _SEALING
                and _asciiString(name) == f'"{name}"' for name in names)
    shape = _Shape(names) if plain else None
    if len(_shapes) >= _MAX_SHAPES:
        _shapes.clear()
    _shapes[names] = shape
    return shape


class _Same:
    """
    Stands, in a template's key or a nested value's copy, for a value that
    equality alone does not pin down (C{True}, C{False}, a number): equal
    only to a value of the same type that the encoder writes the same way
    (C{1} is not C{True}, C{-0.0} is not C{0.0}).
    """

    __slots__ = ("value", "text")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = _member("", value)

    def __eq__(self, other: object) -> bool:
        return other is self.value or (type(other) is type(self.value)
                                       and _member("", other) == self.text)

    def __hash__(self) -> int:
        return hash(self.value)


def _pinned(value: Any) -> Any:
    """
    A copy of a value's containers (sharing its strings), with L{_Same} for
    every other value in them; L{_Fallback} for what is not JSON.
    """
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise _Fallback()
        return {k: _pinned(v) for k, v in value.items()}
    if kind is list:
        return [_pinned(v) for v in value]
    if kind is bool or kind is int or kind is float:
        return _Same(value)
    raise _Fallback()


class _Template:
    """
    The encoded fixed members of one shape for one set of their values,
    and the nested values last seen with it.
    """

    def __init__(self, shape: _Shape, values: Tuple[Any, ...]) -> None:
        encoded = {name: _member(name, value)
                   for name, value in zip(shape.fixed, values, strict=True)}
        encoded["schema"] = _member("schema", SCHEMA_VERSION)
        #: the key: the values, each L{_Same} where equality is not enough
        self.key = tuple(value if value is None or type(value) is str else _Same(value)
                         for value in values)
        self.parts = [",".join(encoded[n] for n in run) if run else _SLOT
                      for run in shape.layout]
        self.nested: List[Optional[_Nested]] = [None] * len(shape.nested)


# -- nested values -------------------------------------------------------------


class _Nested:
    """
    One nested value's encoded member, with the copy (L{_pinned}) a
    record's value must equal to use it.
    """

    def __init__(self, name: str, value: Dict[str, Any]) -> None:
        self.twin = _pinned(value)
        self.text = _member(name, value)


#: encoded nested values by (member name, hint): a few variants each
_nested: Dict[Tuple[str, Any], Tuple[_Nested, ...]] = {}


def _nestedMember(template: _Template, k: int, name: str, value: Any) -> str:
    """
    The member C{name} with the nested C{value}, remembered as the
    template's C{k}th nested value.
    """
    if type(value) is not dict:
        return _member(name, value)
    try:
        key = (name, value.get("sha256"))
        variants = _nested.get(key, ())
    except TypeError:  # an unhashable hint
        return _member(name, value)
    for variant in variants:
        if value == variant.twin:
            template.nested[k] = variant
            return variant.text
    made = template.nested[k] = _Nested(name, value)
    if len(_nested) >= _MAX_NESTED:
        _nested.clear()
        variants = ()
    _nested[key] = (made, *variants[:_MAX_VARIANTS - 1])
    return made.text


# -- sealing -------------------------------------------------------------------

#: the shapes seen, by the record's keys in order (C{None}: not covered)
_shapes: Dict[Tuple[Any, ...], Optional[_Shape]] = {}


def _newTemplate(shape: _Shape, values: Tuple[Any, ...]) -> _Template:
    """
    A template of C{shape} for these values of its fixed members (strings,
    C{None}, C{True} or C{False}; else L{_Fallback}), kept for the next.
    """
    for value in values:
        if value is not None and type(value) is not str and type(value) is not bool:
            raise _Fallback()
    template = _Template(shape, values)
    if len(shape.templates) >= _MAX_TEMPLATES:
        shape.templates.clear()
    shape.templates[template.key] = template
    return template


def sealedBody(record: Dict[str, Any], seq: int, prev: str) -> bytes:
    """
    What L{referenceBody} gives, from a template for a connection's record.
    """
    event = record.get("event") if type(record) is dict else None
    if (type(event) is not str or event not in TEMPLATE_EVENTS or type(seq) is not int
            or type(prev) is not str):
        return referenceBody(record, seq, prev)
    shape = _shapeOf(tuple(record))
    if shape is None:
        return referenceBody(record, seq, prev)
    try:
        values = shape.fixedOf(record)
        template = shape.templates.get(values) or _newTemplate(shape, values)
        parts = template.parts.copy()
        for i, name, start in shape.varying:
            value = record[name]
            if type(value) is str:
                parts[i] = start + _asciiString(value)
            elif value is None:
                parts[i] = start + "null"
            elif type(value) is int:
                parts[i] = start + int.__repr__(value)
            else:
                parts[i] = _member(name, value)
        last = template.nested
        for i, name, k in shape.nested:
            value = record[name]
            known = last[k]
            parts[i] = (known.text if known is not None and value == known.twin
                        else _nestedMember(template, k, name, value))
    except (_Fallback, TypeError):  # TypeError: a list or dict among the fixed members
        return referenceBody(record, seq, prev)
    parts[shape.seqAt] = f'"seq":{int.__repr__(seq)}'
    parts[shape.prevAt] = f'"prev":{_asciiString(prev)}'
    return ("{" + ",".join(parts) + "}").encode("ascii")
