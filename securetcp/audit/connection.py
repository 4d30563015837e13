# -*- test-case-name: tests.test_auditrecords -*-
"""
The values the audit record builders (L{securetcp.audit.records}) are
given: a connection as the audit log describes it (L{AuditConnection}, with
its L{SessionFacts}), and the text forms of times and addresses::

    connection = AuditConnection(connectionId=newConnectionId(), role=Role.SERVER,
                                 local="127.0.0.1:6661", peer="127.0.0.1:40000",
                                 proxy=None, policy="hl7", profile="nist-800-52r2",
                                 legacy=False, session=SessionFacts(), peerIdentity=None)
    utcTimestamp(0.0) == "1970-01-01T00:00:00.000000Z"
"""

from __future__ import annotations

import datetime
import math
import os
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple

import attrs
from twisted.internet.interfaces import IAddress

from securetcp.policy import Role


class PolicyNames(Protocol):
    """What a record says about the policy in force: a L{TLSPolicy} is one."""

    @property
    def name(self) -> str: ...

    @property
    def profile(self) -> str: ...


class IdentityRecord(Protocol):
    """A peer identity for the audit log: a L{securetcp.identity.PeerIdentity} is one."""

    def asRecord(self) -> Dict[str, Any]: ...


# -- values ----------------------------------------------------------------


#: the last whole second L{utcTimestamp} formatted, and its text (one
#: tuple, replaced whole, so threads never see half of an update)
_lastSecond: Tuple[float, str] = (float("nan"), "")


def utcTimestamp(seconds: float) -> str:
    """
    ISO 8601 UTC time with microseconds and a C{Z}: the C{time} of records.

    The text is C{datetime}'s (microseconds rounded half to even, as
    C{fromtimestamp} does); the date and time of day are formatted once per
    second, as records come many to a second.
    """
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1000000:
        whole, micro = whole + 1, micro - 1000000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1000000
    global _lastSecond
    last = _lastSecond
    if last[0] != whole:
        moment = datetime.datetime.fromtimestamp(whole, datetime.UTC)
        last = _lastSecond = (whole, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{last[1]}{micro:06d}Z"


def addressText(address: Optional[IAddress]) -> Optional[str]:
    """
    An address as audit records write it: C{host:port}, C{[v6]:port} or
    C{unix:PATH}.
    """
    if address is None:
        return None
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return f"unix:{name.decode() if isinstance(name, bytes) else name}"
    return str(address)


#: the text of each local address seen (see L{localAddressText}), bounded
_localTexts: Dict[IAddress, Optional[str]] = {}


def localAddressText(address: Optional[IAddress]) -> Optional[str]:
    """
    L{addressText} of a connection's local address, one copy per address:
    every connection of a listener has the same one, and an idle
    connection then holds no text of its own for it.
    """
    try:
        text = _localTexts.get(address)  # type: ignore[arg-type]
    except TypeError:  # an address that cannot be a key
        return addressText(address)
    if text is None:
        text = addressText(address)
        if len(_localTexts) >= 64:  # a bound; a process listens on a few addresses
            _localTexts.clear()
        _localTexts[address] = text  # type: ignore[index]
    return text


def newConnectionId() -> str:
    """
    A fresh connection id (16 random hex digits) for a connection's records.
    """
    return os.urandom(8).hex()


@attrs.frozen
class SessionFacts:
    """
    What a TLS handshake negotiated, as far as it got; every field C{None}
    for a connection decided below TLS.
    """

    sni: Optional[str] = None
    version: Optional[str] = None
    cipher: Optional[str] = None
    group: Optional[str] = None
    alpn: Optional[str] = None
    resumed: Optional[bool] = None
    #: why the peer's revocation status could not be established although
    #: it was accepted
    revocationWarning: Optional[str] = None
    #: the OCSP answer and where it came from, e.g. C{good (stapled)}
    ocsp: Optional[str] = None

    @classmethod
    def fromMapping(cls, session: Mapping[str, Any]) -> SessionFacts:
        """
        The facts from a mapping with (some of) the same keys; others are ignored.
        """
        return cls(*map(session.get, _SESSION_FIELDS))


#: the names of L{SessionFacts}' fields, read once
_SESSION_FIELDS = tuple(f.name for f in attrs.fields(SessionFacts))


@attrs.frozen
class AuditConnection:
    """
    One connection as its records describe it.

    @ivar legacy: whether it runs under a legacy (explicitly insecure)
        policy, which no connection complies with.
    @ivar plaintext: a plaintext connection of permissive migration mode.
    @ivar policyReasons: what the policy's checklist fails
        (L{securetcp.compliance.verdict.policyVerdict}; C{None}: not
        judged); the records' C{compliance} carries it as C{policy}.
    """

    connectionId: str
    role: Role
    local: Optional[str]
    peer: Optional[str]
    policy: str
    profile: str
    proxy: Optional[str] = None
    legacy: bool = False
    session: SessionFacts = SessionFacts()
    peerIdentity: Optional[IdentityRecord] = None
    plaintext: bool = False
    policyReasons: Optional[Tuple[str, ...]] = None
    #: the identity binding: its protocol and the claims the peer made
    binding: Optional[Mapping[str, Any]] = None
