# -*- test-case-name: tests.test_fleetverify -*-
"""
Reading the lines a syslog collector stores: one RFC 5424 message per line,
as rsyslog's C{RSYSLOG_SyslogProtocol23Format} template writes them, and
the securetcp structured-data element an exported audit record travels
with::

    line = parseSyslogLine(b'<110>1 2026-12-06T07:00:00.000000+00:00 gw-1 securetcp '
                           b'4242 chain.closed [securetcp@32473 node="gw-1" seq="9" '
                           b'hash="..."] {"event":"chain.closed",...}')
    exported = exportedRecord(line)   # node, seq, hash and the record's line

The wire contract (docs/audit.md): C{<PRI>1 TIMESTAMP HOSTNAME securetcp
PROCID MSGID [securetcp@32473 node="NODE" seq="N" hash="HEX"] MSG}, the
MSGID the record's event, and in the C{json} format the MSG the record's
sealed line exactly as in the node's audit file.  Pure: bytes in, values out.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

import attrs

__all__ = [
    "APP_NAME", "SD_ID", "ExportedRecord", "SyslogLine", "SyslogLineError",
    "exportedRecord", "parseSyslogLine",
]

#: The APP-NAME of securetcp's messages.
APP_NAME = "securetcp"
#: The ID of the structured-data element that carries node, seq and hash
#: (32473 is the private enterprise number RFC 5612 reserves for examples
#: and documentation).
SD_ID = "securetcp@32473"

_HEADER = re.compile(rb"<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ")
_SD_NAME = re.compile(rb'[!#-~]+?(?=[= \]"])')  # PRINTUSASCII except = SP ] "
_BOM = b"\xef\xbb\xbf"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


class SyslogLineError(ValueError):
    """
    A line that is not an RFC 5424 message, or whose securetcp element is
    malformed; the text says what and where.
    """


@attrs.frozen
class SyslogLine:
    """
    One RFC 5424 message: its header fields (C{None} for the NILVALUE
    C{-}), its structured data (element ID to parameters), and its MSG
    (without a leading BOM).
    """

    priority: int
    timestamp: Optional[str]
    hostname: Optional[str]
    appName: Optional[str]
    procId: Optional[str]
    msgId: Optional[str]
    structuredData: Dict[str, Dict[str, str]]
    message: bytes


def _field(value: bytes) -> Optional[str]:
    return None if value == b"-" else value.decode("ascii", "replace")


def _value(raw: bytes, at: int) -> Tuple[str, int]:
    """
    A quoted PARAM-VALUE starting at C{raw[at]} (the opening quote),
    unescaped (C{\\"}, C{\\\\}, C{\\]}), and the offset after its closing quote.
    """
    out = bytearray()
    i = at + 1
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"\\" and raw[i + 1:i + 2] in (b'"', b"\\", b"]"):
            out += raw[i + 1:i + 2]
            i += 2
        elif c == b'"':
            try:
                return out.decode("utf-8"), i + 1
            except UnicodeDecodeError:
                raise SyslogLineError(f"a structured-data value at column {at + 1} is not "
                                      "UTF-8") from None
        else:
            out += c
            i += 1
    raise SyslogLineError(f"a structured-data value at column {at + 1} has no closing quote")


def _element(raw: bytes, at: int) -> Tuple[str, Dict[str, str], int]:
    """
    One SD-ELEMENT starting at C{raw[at]} (its C{[}): its ID, its
    parameters, and the offset after its C{]}.
    """
    name = _SD_NAME.match(raw, at + 1)
    if name is None:
        raise SyslogLineError(f"a structured-data element at column {at + 1} has no ID")
    sdId, i = name.group().decode("ascii"), name.end()
    params: Dict[str, str] = {}
    while raw[i:i + 1] == b" ":
        param = _SD_NAME.match(raw, i + 1)
        if param is None or raw[param.end():param.end() + 2] != b'="':
            raise SyslogLineError(f"structured-data element {sdId}: expected NAME=\"VALUE\" "
                                  f"at column {i + 2}")
        value, i = _value(raw, param.end() + 1)
        params[param.group().decode("ascii")] = value
    if raw[i:i + 1] != b"]":
        raise SyslogLineError(f"structured-data element {sdId}: expected ']' at "
                              f"column {i + 1}")
    return sdId, params, i + 1


def parseSyslogLine(raw: bytes) -> SyslogLine:
    """
    The message of one line (without its newline).

    @raise SyslogLineError: if it is not an RFC 5424 message.
    """
    header = _HEADER.match(raw)
    if header is None:
        raise SyslogLineError("not an RFC 5424 message (<PRI>VERSION TIMESTAMP HOSTNAME "
                              "APP-NAME PROCID MSGID STRUCTURED-DATA MSG)")
    data: Dict[str, Dict[str, str]] = {}
    i = header.end()
    if raw[i:i + 1] == b"-":
        i += 1
    elif raw[i:i + 1] == b"[":
        while raw[i:i + 1] == b"[":
            sdId, params, i = _element(raw, i)
            data.setdefault(sdId, params)
    else:
        raise SyslogLineError(f"expected structured data ('-' or '[') at column {i + 1}")
    if i < len(raw) and raw[i:i + 1] != b" ":
        raise SyslogLineError(f"expected a space before the message at column {i + 1}")
    message = raw[i + 1:]
    if message.startswith(_BOM):
        message = message[len(_BOM):]
    timestamp, hostname, appName, procId, msgId = (_field(header.group(n))
                                                   for n in range(3, 8))
    return SyslogLine(priority=int(header.group(1)), timestamp=timestamp, hostname=hostname,
                      appName=appName, procId=procId, msgId=msgId, structuredData=data,
                      message=message)


@attrs.frozen
class ExportedRecord:
    """
    A record as a collector received it: the node it came from, its seq
    and hash (from the structured data), its event (the MSGID) and the
    MSG (the sealed line, in the C{json} format).
    """

    node: str
    seq: int
    hash: str
    event: Optional[str]
    message: bytes


def exportedRecord(line: SyslogLine) -> Optional[ExportedRecord]:
    """
    The securetcp record C{line} carries, or C{None} for another program's
    message (another APP-NAME, or no securetcp element).

    @raise SyslogLineError: if its securetcp element lacks C{node}, or its
        C{seq} or C{hash} is malformed.
    """
    params = line.structuredData.get(SD_ID)
    if line.appName != APP_NAME or params is None:
        return None
    node, seq, digest = params.get("node"), params.get("seq", ""), params.get("hash", "")
    if not node:
        raise SyslogLineError(f"the {SD_ID} element has no node")
    if not seq.isdigit() or not seq.isascii():
        raise SyslogLineError(f"the {SD_ID} element's seq {seq!r} is not a sequence number")
    if not _HEX64.match(digest):
        raise SyslogLineError(f"the {SD_ID} element's hash {digest!r} is not 64 hex digits")
    return ExportedRecord(node=node, seq=int(seq), hash=digest, event=line.msgId,
                          message=line.message)
