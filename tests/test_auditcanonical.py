# -*- test-case-name: tests.test_auditcanonical -*-
"""
Tests for L{securetcp.audit._canonical}: the sealed canonical JSON built
from templates is, byte for byte, what one encoding of the whole record
gives, for the records of connections and for anything else a writer is
given.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Dict, List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit import _canonical
from securetcp.audit._canonical import referenceBody, sealedBody
from securetcp.audit.chain import openLine, referenceSeal, seal
from securetcp.audit.records import (
    AuditConnection,
    SessionFacts,
    chainGap,
    connectionAccepted,
    connectionClosed,
    connectionRevoked,
    handshakeRejected,
)
from securetcp.identity import PeerIdentity
from securetcp.policy import Role

_text = st.text(max_size=12)
_maybeText = st.none() | _text
_scalars = st.none() | st.booleans() | st.integers(-2, 2) | st.floats(-1.0, 1.0) | _text
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=3), max_leaves=8)

_identities = st.builds(
    PeerIdentity, subject=st.sampled_from(["CN=PUMP-0042", "CN=pump-\u00e9", "CN=a\"b"]),
    dns=st.lists(st.sampled_from(["a.example", "b.example"]), max_size=2).map(tuple),
    uri=st.lists(st.sampled_from(["spiffe://x/1", "spiffe://x/2"]), max_size=1).map(tuple),
    serial=st.sampled_from(["01", "02"]), sha256=st.sampled_from(["ab" * 32, "cd" * 32, ""]))

_sessions = st.builds(
    SessionFacts, sni=_maybeText, version=st.sampled_from([None, "TLSv1.3", "TLSv1.2", "x"]),
    cipher=st.sampled_from([None, "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-RC4-SHA"]),
    group=st.sampled_from([None, "secp256r1", "X25519"]), alpn=_maybeText,
    resumed=st.none() | st.booleans(), revocationWarning=_maybeText,
    ocsp=st.sampled_from([None, "good (stapled)"]))

_connections = st.builds(
    AuditConnection, connectionId=st.sampled_from(["d2a0ada86907809d", "0000000000000001"]),
    role=st.sampled_from(list(Role)), local=_maybeText, peer=_maybeText,
    policy=st.sampled_from(["default", "hl7"]), profile=st.sampled_from(["nist-800-52r2"]),
    proxy=_maybeText, legacy=st.booleans(), session=_sessions,
    peerIdentity=st.none() | _identities, plaintext=st.booleans(),
    policyReasons=st.none() | st.lists(_text, max_size=2).map(tuple),
    binding=st.none() | st.dictionaries(_text, _json, max_size=2))


def _build(kind: int, connection: AuditConnection, time: float) -> Dict[str, Any]:
    if kind == 0:
        return connectionAccepted(connection, time)
    if kind == 1:
        return connectionClosed(connection, time, duration=time / 7, bytesIn=int(time),
                                bytesOut=None, closeReason="peer reset" if time > 5 else None,
                                refused={"reason": "x"} if time > 9 else None)
    if kind == 2:
        return handshakeRejected(connection, time, "unknown_ca", "no \u00e9 issuer",
                                 revocation={"revocationReason": "keyCompromise"})
    return connectionRevoked(connection, time, "revoked by a reloaded CRL")


_builtRecords = st.builds(_build, st.integers(0, 3), _connections,
                          st.floats(0, 2e9, allow_nan=False))


#: an equal value of another type, which the encoder writes otherwise
_LOOKALIKE: Dict[type, Callable[[Any], Any]] = {
    bool: int, int: float, float: lambda v: -v if v == 0 else int(v) if v == int(v) else -v}


def _leaves(value: Any) -> List[Tuple[Any, Any]]:
    """
    Every (container, key or index) of the values inside C{value}.
    """
    found: List[Tuple[Any, Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        if isinstance(inner, (dict, list)):
            found.extend(_leaves(inner))
        else:
            found.append((value, key))
    return found


def _mutations(record: Dict[str, Any]) -> st.SearchStrategy[Dict[str, Any]]:
    """
    The record, or a copy with one member replaced, added or removed, or a
    value inside a nested member replaced (same-looking values of other
    types included: C{1} for C{True}, C{1.0} for C{1}, C{-0.0} for C{0.0}).
    """
    names = sorted(record)

    def change(name: str, value: Any) -> Dict[str, Any]:
        changed = copy.deepcopy(record)
        changed[name] = value
        return changed

    def drop(name: str) -> Dict[str, Any]:
        changed = dict(record)
        changed.pop(name, None)
        return changed

    def inner(name: str, value: Any) -> Dict[str, Any]:
        changed = copy.deepcopy(record)
        nested = changed.get(name)
        if isinstance(nested, dict) and nested:
            nested[sorted(nested)[0]] = value
        return changed

    def retype(nth: int) -> Dict[str, Any]:
        changed = copy.deepcopy(record)
        leaves = [(holder, key) for holder, key in _leaves(changed)
                  if type(holder[key]) in (bool, int, float)]
        if leaves:
            holder, key = leaves[nth % len(leaves)]
            holder[key] = _LOOKALIKE[type(holder[key])](holder[key])
        return changed

    lookalikes = st.sampled_from([1, 0, 1.0, 0.0, -0.0, True, False, "true", None])
    return st.one_of(
        st.just(copy.deepcopy(record)),
        st.builds(change, st.sampled_from(names + ["hash", "seq", "prev", "z\u00e9", "x\"y"]),
                  _json | lookalikes),
        st.builds(drop, st.sampled_from(names)),
        st.builds(retype, st.integers(0, 5)),
        st.builds(inner, st.sampled_from(["peerIdentity", "compliance", "binding"]),
                  _json | lookalikes))


#: a record as built, then the same changed (the first makes the templates
#: and encoded values the second may wrongly reuse)
_pairs = _builtRecords.flatmap(lambda r: st.tuples(st.just(r), _mutations(r)))


def _outcome(seal: Callable[[Dict[str, Any], int, str], bytes], record: Dict[str, Any],
             seq: int, prev: str) -> Tuple[str, Any]:
    try:
        return "bytes", seal(record, seq, prev)
    except Exception as e:  # the same kind of error either way
        return "error", type(e)


class SealedBodyTests(SynchronousTestCase):
    """
    L{sealedBody} gives exactly what L{referenceBody} gives.
    """

    @given(st.lists(_pairs, min_size=1, max_size=4), st.integers(0, 2**40),
           st.text(max_size=3) | st.just("ab" * 32))
    def test_sameBytes(self, pairs: List[Tuple[Dict[str, Any], Dict[str, Any]]], seq: int,
                       prev: str) -> None:
        """
        For any sequence of records (connection records as built, each
        followed by a copy changed in some way), each sealed body is the
        reference encoding's bytes, or the same kind of error, whatever the
        templates and encoded values kept from the records before.
        """
        for record in [r for pair in pairs for r in pair]:
            kept = copy.deepcopy(record)
            self.assertEqual(_outcome(sealedBody, record, seq, prev),
                             _outcome(referenceBody, kept, seq, prev))
            self.assertEqual(record, kept)

    @given(_builtRecords, st.integers(1, 2**40))
    def test_seal(self, record: Dict[str, Any], seq: int) -> None:
        """
        L{seal} writes the line L{referenceSeal} writes, with and without
        an HMAC key, and L{openLine} reads it back.
        """
        for key in (None, b"k" * 32):
            line, digest = seal(record, seq, "ab" * 32, key)
            self.assertEqual((line, digest), referenceSeal(record, seq, "ab" * 32, key))
            opened = openLine(line[:-1], key)
            self.assertEqual((opened["seq"], opened["hash"]), (seq, digest))

    def test_mutatedAfterTemplate(self) -> None:
        """
        A record whose repeated members changed since a template (or an
        encoded nested value) was made from an equal one is encoded as it
        is now: a changed nested value, C{1} for C{True}, C{-0.0} for
        C{0.0}.
        """
        identity = PeerIdentity(subject="CN=PUMP-0042", sha256="ab" * 32)
        connection = AuditConnection(
            connectionId="d2a0ada86907809d", role=Role.SERVER, local="10.0.0.5:6661",
            peer="10.0.3.17:43856", policy="hl7", profile="nist-800-52r2",
            session=SessionFacts(version="TLSv1.3", resumed=True), peerIdentity=identity)
        first = connectionAccepted(connection, 1.0)
        sealedBody(first, 1, "0" * 64)
        changes: List[Callable[[Dict[str, Any]], None]] = [
            lambda r: r["peerIdentity"]["san"]["dns"].append("x.example"),
            lambda r: r["compliance"].__setitem__("compliant", 1),
            lambda r: r.__setitem__("resumed", 1),
            lambda r: r["compliance"]["policy"].__setitem__("compliant", 0.0)
            if r["compliance"].get("policy") else None,
            lambda r: r.__setitem__("connection", -0.0),
        ]
        for change in changes:
            record = connectionAccepted(connection, 2.0)
            change(record)
            self.assertEqual(sealedBody(record, 2, "0" * 64), referenceBody(record, 2, "0" * 64))

    def test_otherRecords(self) -> None:
        """
        Records of other events, and records that are not plain dicts, are
        encoded the reference way.
        """
        gap = chainGap(1.0, 2, None)
        self.assertEqual(sealedBody(gap, 3, "0" * 64), referenceBody(gap, 3, "0" * 64))

        class Record(dict):  # type: ignore[type-arg]
            pass

        record = Record(event="connection.accepted", time="t")
        self.assertEqual(sealedBody(record, 1, "p"), referenceBody(record, 1, "p"))

    def test_bounded(self) -> None:
        """
        The templates, shapes and encoded nested values kept are bounded:
        many distinct records do not grow them without limit.
        """
        for n in range(_canonical._MAX_TEMPLATES + _canonical._MAX_NESTED + 10):
            record = {"event": "connection.accepted", "policy": f"p{n}", f"k{n % 100}": 1,
                      "peerIdentity": {"sha256": f"{n}"}}
            self.assertEqual(json.loads(sealedBody(record, 1, "p"))["policy"], f"p{n}")
        self.assertLessEqual(len(_canonical._shapes), _canonical._MAX_SHAPES)
        self.assertLessEqual(len(_canonical._nested), _canonical._MAX_NESTED)
        for shape in _canonical._shapes.values():
            if shape is not None:
                self.assertLessEqual(len(shape.templates), _canonical._MAX_TEMPLATES)
