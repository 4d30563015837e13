# -*- test-case-name: tests.test_auditsyslog -*-
"""
The audit trail as syslog messages: one RFC 5424 message per sealed record
of an audit file, framed by octet counting (RFC 5425 over TLS, RFC 6587
over plain TCP).  Pure functions of values; no I/O::

    identity = SyslogIdentity(node="mri-gw-1", hostname="mri-gw-1.example", procid="4242")
    message = syslogMessage(line, identity)          # bytes, without framing
    stream.write(octetFrame(message))                # b"123 <85>1 2026-..."

The wire contract (the collector side, C{audit verify} on a collector's
file, parses exactly this)::

    <PRI>1 TIMESTAMP HOSTNAME securetcp PROCID MSGID [securetcp@32473 node="NODE" seq="N" hash="HEX"] MSG

  - C{PRI}: facility 10 (security/authorization, as IHE ITI-20 asks),
    severity 4 (warning) for the events in L{WARNING_EVENTS}, else 5
    (notice);
  - C{TIMESTAMP}: the record's own C{time} (UTC, microseconds);
  - C{MSGID}: the record's event name (C{connection.accepted}, ...);
  - the structured data element C{securetcp@32473} carries the node id,
    the record's C{seq} and its chain C{hash};
  - C{MSG}: for the C{json} format, the record's sealed line exactly as
    the local audit file holds it (canonical JSON with C{seq}, C{prev} and
    C{hash}, no newline, no BOM); for C{atna}, the DICOM audit message.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Dict, Optional, Tuple

import attrs

__all__ = [
    "ENTERPRISE_ID", "FACILITY", "SD_ID", "WARNING_EVENTS", "SyslogIdentity", "octetFrame",
    "readFrames", "severityOf", "syslogMessage", "validNodeId",
]

#: The private enterprise number of the structured data element's name.
ENTERPRISE_ID = 32473
#: The structured data element every message carries.
SD_ID = f"securetcp@{ENTERPRISE_ID}"
#: security/authorization messages (RFC 5424 facility 10).
FACILITY = 10
#: Events sent with severity 4 (warning); every other event is 5 (notice).
WARNING_EVENTS = frozenset({
    "handshake.rejected", "connection.revoked", "policy.reload_refused",
    "revocation.crl_refused", "revocation.crl_expired", "revocation.crl_expiring",
    "certificate.expiring", "proxy.backend_failed", "chain.gap", "export.dropped",
})

#: RFC 5424 PRINTUSASCII, 1 to 255 characters (HOSTNAME), 1 to 128 (PROCID).
_PRINTABLE = re.compile(r"[\x21-\x7e]+\Z")
#: what a node id may be: printable ASCII without the characters a
#: structured data value would need to escape
_NODE = re.compile(r"[\x21-\x7e]{1,255}\Z")
_SD_ESCAPED = frozenset('"\\]')
_SD_ESCAPE = re.compile(r'["\\\]]')


@attrs.frozen
class SyslogIdentity:
    """
    Who sends the messages.

    @ivar node: the node id in the structured data (the collector groups
        records by it: every audit file sending to one collector needs its
        own).
    @ivar hostname: RFC 5424 HOSTNAME (the FQDN, or C{-}).
    @ivar procid: RFC 5424 PROCID (the process id, or C{-}).
    """

    node: str = attrs.field()
    hostname: str = "-"
    procid: str = "-"

    @node.validator
    def _checkNode(self, attribute: Any, value: str) -> None:
        if not validNodeId(value):
            raise ValueError(f"node id {value!r} must be 1 to 255 printable ASCII characters "
                             'without spaces, quotes, backslashes or "]"')


def validNodeId(node: str) -> bool:
    """
    Whether C{node} can be a node id: 1 to 255 printable ASCII characters
    with none of C{"}, C{\\}, C{]} (so it is written as it is).
    """
    return bool(_NODE.match(node)) and not (_SD_ESCAPED & set(node))


def severityOf(event: str) -> int:
    """
    The RFC 5424 severity of a record's event: 4 (warning) or 5 (notice).
    """
    return 4 if event in WARNING_EVENTS else 5


def _header(value: str, most: int) -> str:
    value = value[:most]
    return value if _PRINTABLE.match(value) else "-"


def _sdValue(value: str) -> str:
    return _SD_ESCAPE.sub(r"\\\g<0>", value)


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z\Z")


def _timestamp(time: Any) -> str:
    """
    The record's C{time} as an RFC 5424 TIMESTAMP (it already is one:
    C{2026-12-06T07:32:07.123456Z}), or C{-}.
    """
    if isinstance(time, str) and _TIMESTAMP.match(time):
        return time
    return "-"


@functools.lru_cache(maxsize=64)
def _eventHeader(event: str) -> Tuple[str, str]:
    """
    C{<PRI>1}, then the MSGID, of an event (the events are few: cached).
    """
    return f"<{FACILITY * 8 + severityOf(event)}>1", _header(event, 32)


@functools.lru_cache(maxsize=16)
def _identityParts(identity: SyslogIdentity) -> Tuple[str, str]:
    """
    What an identity puts in every message: C{HOSTNAME securetcp PROCID}
    and the node parameter (the same for every message: cached).
    """
    return (f"{_header(identity.hostname, 255)} securetcp {_header(identity.procid, 128)}",
            f'[{SD_ID} node="{_sdValue(identity.node)}"')


def syslogMessage(line: bytes, identity: SyslogIdentity, *,
                  record: Optional[Dict[str, Any]] = None,
                  msg: Optional[bytes] = None) -> bytes:
    """
    The RFC 5424 message of one sealed line of an audit file.

    @param line: the line as written (with or without its newline).
    @param record: the line's record, if the caller has decoded it already.
    @param msg: the MSG to send instead of the line (the C{atna} format's
        XML); by default the line itself.
    """
    line = line.rstrip(b"\n")
    if record is None:
        record = json.loads(line)
    pri, msgid = _eventHeader(str(record.get("event", "-")))
    who, node = _identityParts(identity)
    digest = record["hash"]
    if not isinstance(digest, str) or _SD_ESCAPE.search(digest):
        digest = _sdValue(str(digest))
    head = (f'{pri} {_timestamp(record.get("time"))} {who} {msgid} '
            f'{node} seq="{int(record["seq"])}" hash="{digest}"] ')
    return head.encode("ascii") + (line if msg is None else msg)


def octetFrame(message: bytes) -> bytes:
    """
    One message framed by octet counting (RFC 5425 section 4.3, RFC 6587
    section 3.4.1): its length in decimal, a space, the message.
    """
    return b"%d %s" % (len(message), message)


def readFrames(data: bytes) -> Tuple[list[bytes], bytes]:
    """
    The whole octet-counted messages at the start of C{data}, and what is
    left (the start of a message not complete yet).

    @raise ValueError: if C{data} is not an octet-counted stream.
    """
    messages = []
    while data:
        space = data.find(b" ", 0, 12)
        if space == -1:
            if len(data) >= 12 or not data.isdigit():
                raise ValueError(f"not an octet-counted frame: {data[:20]!r}")
            break
        length = data[:space]
        if not length.isdigit() or length.startswith(b"0"):
            raise ValueError(f"not an octet-counted frame: {data[:20]!r}")
        end = space + 1 + int(length)
        if len(data) < end:
            break
        messages.append(data[space + 1:end])
        data = data[end:]
    return messages, data
