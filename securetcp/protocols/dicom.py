# -*- test-case-name: tests.test_protocols_dicom -*-
"""
The DICOM upper layer's first message, sans-IO: read an A-ASSOCIATE-RQ PDU
(DICOM PS3.8 section 9.3.2) for the AE titles it claims, and build the
A-ASSOCIATE-RJ PDU (PS3.8 section 9.3.4) that refuses it politely.

    request = parseAssociateRequest(buffered)
    if request is None:
        ...  # need more bytes
    elif request.callingAE not in allowed:
        transport.write(associateReject(CALLING_AE_NOT_RECOGNIZED))

L{parseAssociateRequest} reads only what it is given and keeps nothing; a
caller feeds it everything received so far. It is bounded: a PDU that
declares more than L{MAX_ASSOCIATE_RQ} bytes is refused from its 6-byte
header, before the rest is buffered.

AE titles are held to the standard's repertoire (ISO 646 G0 without the
backslash, no control characters): a title padded with NUL bytes, as some
non-conforming devices send, is refused rather than trimmed, because an
acceptor that reads the field as a C string would see another title than
the one judged here (C{"PUMP3<NUL>ICU"} would be C{"PUMP3"} to it).
"""

from __future__ import annotations

import struct
from typing import Iterator, Optional, Tuple

import attrs

from securetcp.protocols import MalformedMessage

__all__ = [
    "AssociateRequest", "parseAssociateRequest", "associateReject",
    "MAX_ASSOCIATE_RQ", "DICOM_APPLICATION_CONTEXT",
    "NO_REASON_GIVEN", "APPLICATION_CONTEXT_NOT_SUPPORTED", "CALLING_AE_NOT_RECOGNIZED",
    "CALLED_AE_NOT_RECOGNIZED",
]

#: The largest A-ASSOCIATE-RQ, header included, that L{parseAssociateRequest}
#: reads: 1 MiB. It is dcmtk's default bound for association PDUs
#: (C{dcmAssociatePDUSizeLimit}, since 3.6.4), so a request a dcmtk acceptor
#: takes is never refused here. Real requests are far smaller (dcmtk's
#: C{storescu} proposing 128 presentation contexts sends about 20 KiB); the
#: largest legitimate ones carry 128 contexts with several transfer syntaxes
#: each (about 100 KiB at the 64-character UID maximum) and a user identity
#: token of up to 2 x 64 KiB (a SAML assertion or JWT, PS3.8 D.3.3.7).
MAX_ASSOCIATE_RQ = 1024 * 1024

#: The DICOM Application Context Name (PS3.7 annex A.2.1), the only one
#: defined.
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

#: A-ASSOCIATE-RJ reasons when the source is the service user (1).
NO_REASON_GIVEN = 1
APPLICATION_CONTEXT_NOT_SUPPORTED = 2
CALLING_AE_NOT_RECOGNIZED = 3
CALLED_AE_NOT_RECOGNIZED = 7

_PROTOCOL = "dicom"
_ASSOCIATE_RQ = 0x01
_ASSOCIATE_RJ = 0x03
_HEADER = 6  # PDU type, reserved, 4-byte length
_FIXED = 68  # version, reserved, called AE, calling AE, 32 reserved bytes
_VERSION_1 = 0x0001

_APPLICATION_CONTEXT_ITEM = 0x10
_PRESENTATION_CONTEXT_ITEM = 0x20
_USER_INFORMATION_ITEM = 0x50

#: Reasons PS3.8 table 9-21 defines, by source: 1 the service user, 2 the
#: service provider (ACSE), 3 the service provider (presentation).
_REASONS = {1: frozenset({1, 2, 3, 7}), 2: frozenset({1, 2}), 3: frozenset({1, 2})}
_MAX_UID = 64
_UID_CHARACTERS = frozenset("0123456789.")


def _malformed(problem: str) -> MalformedMessage:
    return MalformedMessage(_PROTOCOL, problem)


@attrs.frozen
class AssociateRequest:
    """
    What an A-ASSOCIATE-RQ claims.

    @ivar calledAE: the AE title the requestor calls, without the padding
        (leading and trailing spaces are not significant, PS3.8 9.3.2).
    @ivar callingAE: the AE title the requestor calls itself, without the
        padding.
    @ivar protocolVersion: the protocol-version bit field (bit 0, version 1,
        is always set in a parsed request).
    @ivar applicationContext: the application context name, a UID.
    """

    calledAE: str
    callingAE: str
    protocolVersion: int = _VERSION_1
    applicationContext: str = DICOM_APPLICATION_CONTEXT


def parseAssociateRequest(data: bytes) -> Optional[AssociateRequest]:
    """
    Read the A-ASSOCIATE-RQ PDU at the start of C{data}.

    Bytes after the PDU are not read (a requestor sends nothing more before
    the acceptor answers). While the PDU is incomplete only its header and
    fixed fields are checked, so calling this again on a growing buffer
    costs constant time until the PDU is complete; the variable items are
    checked once, when it is.

    @param data: everything received on the connection so far.
    @return: the request; or C{None} if C{data} is a valid but incomplete
        start of one.
    @raise MalformedMessage: if C{data} does not start an A-ASSOCIATE-RQ (PDU
        type 0x01), declares a length that cannot hold one or exceeds
        L{MAX_ASSOCIATE_RQ}, lacks protocol version 1, has an AE title that
        is empty or outside the DICOM default character repertoire (ISO 646
        G0 without backslash or control characters), or has variable items
        that do not tile the PDU exactly or lack the application context,
        a presentation context or the user information.
    """
    if not data:
        return None
    if data[0] != _ASSOCIATE_RQ:
        raise _malformed(f"PDU type 0x{data[0]:02x} is not A-ASSOCIATE-RQ (0x01)")
    if len(data) < _HEADER:
        return None
    (length,) = struct.unpack_from(">I", data, 2)
    if length < _FIXED:
        raise _malformed(f"PDU length {length} is shorter than the {_FIXED} fixed bytes")
    if _HEADER + length > MAX_ASSOCIATE_RQ:
        raise _malformed(f"PDU length {length} exceeds the bound of "
                         f"{MAX_ASSOCIATE_RQ - _HEADER} bytes")
    calledAE, callingAE, version = _fixedFields(data)
    end = _HEADER + length
    if len(data) < end:
        return None
    context = _variableItems(data[_HEADER + _FIXED:end])
    assert calledAE is not None and callingAE is not None and version is not None
    return AssociateRequest(calledAE=calledAE, callingAE=callingAE,
                            protocolVersion=version, applicationContext=context)


def _fixedFields(data: bytes) -> Tuple[Optional[str], Optional[str], Optional[int]]:
    """
    Check the fixed fields present in C{data} (the version, then each AE
    title once all of its 16 bytes are there).

    @return: the protocol version, called and calling AE titles, or C{None}
        for each not received yet.
    """
    version = calledAE = callingAE = None
    if len(data) >= _HEADER + 2:
        (version,) = struct.unpack_from(">H", data, _HEADER)
        if not version & _VERSION_1:
            raise _malformed(f"protocol version 0x{version:04x} lacks version 1")
    if len(data) >= 26:
        calledAE = _aeTitle(data[10:26], "called")
    if len(data) >= 42:
        callingAE = _aeTitle(data[26:42], "calling")
    return calledAE, callingAE, version


def _aeTitle(field: bytes, which: str) -> str:
    """
    Decode a 16-byte AE title field (PS3.8 9.3.2, PS3.5 6.2 VR AE).

    @raise MalformedMessage: if a byte is outside ISO 646 G0 (0x20-0x7e) or
        is a backslash, or the title is all spaces.
    """
    for byte in field:
        if not 0x20 <= byte <= 0x7E or byte == 0x5C:
            raise _malformed(f"{which} AE title has the byte 0x{byte:02x}, not allowed "
                             f"in an AE title")
    title = field.decode("ascii").strip(" ")
    if not title:
        raise _malformed(f"{which} AE title is all spaces")
    return title


def _items(data: bytes, where: str) -> Iterator[Tuple[int, bytes]]:
    """
    Split C{data} into items (or sub-items): a type byte, a reserved byte, a
    2-byte length and that many bytes, which must tile C{data} exactly.
    """
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise _malformed(f"{len(data) - offset} stray bytes at the end of {where}")
        itemType, length = data[offset], struct.unpack_from(">H", data, offset + 2)[0]
        start = offset + 4
        if start + length > len(data):
            raise _malformed(f"item 0x{itemType:02x} in {where} declares {length} bytes, "
                             f"{len(data) - start} remain")
        yield itemType, data[start:start + length]
        offset = start + length


def _variableItems(data: bytes) -> str:
    """
    Check the variable items of an A-ASSOCIATE-RQ (PS3.8 9.3.2): one
    application context, one or more presentation contexts, one user
    information item, in any order, each with sub-items that tile it.

    @return: the application context name.
    """
    context: Optional[str] = None
    presentations = users = 0
    for itemType, value in _items(data, "the A-ASSOCIATE-RQ"):
        if itemType == _APPLICATION_CONTEXT_ITEM:
            if context is not None:
                raise _malformed("more than one application context item")
            context = _uid(value, "application context name")
        elif itemType == _PRESENTATION_CONTEXT_ITEM:
            if len(value) < 4:
                raise _malformed("presentation context item shorter than 4 bytes")
            for _ in _items(value[4:], "a presentation context item"):
                pass
            presentations += 1
        elif itemType == _USER_INFORMATION_ITEM:
            for _ in _items(value, "the user information item"):
                pass
            users += 1
        else:
            raise _malformed(f"item type 0x{itemType:02x} is not allowed in an "
                             f"A-ASSOCIATE-RQ")
    if context is None:
        raise _malformed("no application context item")
    if not presentations:
        raise _malformed("no presentation context item")
    if users != 1:
        raise _malformed(f"{users} user information items, not one")
    return context


def _uid(value: bytes, what: str) -> str:
    """
    Decode a UID (digits and dots, at most 64, PS3.8 annex F), tolerating one
    trailing NUL of even-length padding.
    """
    if value.endswith(b"\x00"):
        value = value[:-1]
    if not 0 < len(value) <= _MAX_UID or not set(value.decode("latin-1")) <= _UID_CHARACTERS:
        raise _malformed(f"{what} is not a UID")
    return value.decode("ascii")


def associateReject(reason: int, *, result: int = 1, source: int = 1) -> bytes:
    """
    An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4).

    @param reason: the reason/diagnostic: for source 1 (service user)
        L{NO_REASON_GIVEN}, C{APPLICATION_CONTEXT_NOT_SUPPORTED} (2),
        L{CALLING_AE_NOT_RECOGNIZED} or L{CALLED_AE_NOT_RECOGNIZED}; for
        source 2 (ACSE) 1 or 2 (protocol version not supported); for source
        3 (presentation) 1 (temporary congestion) or 2 (local limit
        exceeded).
    @param result: 1, rejected permanently; 2, rejected transiently.
    @param source: who rejects: 1 the service user, 2 the service provider's
        ACSE part, 3 its presentation part.
    @raise ValueError: for a result, source or reason PS3.8 does not define.
    """
    if result not in (1, 2):
        raise ValueError(f"A-ASSOCIATE-RJ result {result!r} is not 1 or 2")
    if source not in _REASONS:
        raise ValueError(f"A-ASSOCIATE-RJ source {source!r} is not 1, 2 or 3")
    if reason not in _REASONS[source]:
        raise ValueError(f"A-ASSOCIATE-RJ reason {reason!r} is not defined for "
                         f"source {source}: use one of {sorted(_REASONS[source])}")
    return struct.pack(">BBIBBBB", _ASSOCIATE_RJ, 0, 4, 0, result, source, reason)
