# -*- test-case-name: tests.test_atna -*-
"""
The parts of a DICOM PS3.15 A.5 audit message as frozen values, and their
XML text: one line, in the element order the schema of PS3.15 A.5.1.1
fixes, every character the XML 1.0 grammar forbids replaced, so any record
gives a well-formed document::

    text = AuditMessage(
        event=EventIdentification(eventId=SECURITY_ALERT, action="E",
                                  dateTime="2026-12-06T07:00:00.000000Z", outcome=4),
        participants=(Participant(userId="securetcp", requestor=False),),
        source=AuditSource(sourceId="gw-1"),
    ).toXML()

L{securetcp.audit.atna} decides what goes in them.
"""

from __future__ import annotations

import base64
import re
from typing import List, Optional, Tuple

import attrs

__all__ = [
    "AuditMessage", "AuditSource", "Code", "EventIdentification", "Participant",
    "ParticipantObject", "xmlText",
]

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
            "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_SPECIAL = re.compile('[&<>"\t\n\r]')


def xmlText(value: object) -> str:
    """
    C{value} as text for an XML attribute or element: characters XML 1.0
    cannot carry become U+FFFD, markup characters and line breaks become
    references (so the document stays on one line).
    """
    text = _NOT_XML.sub("\ufffd", str(value))
    return _SPECIAL.sub(lambda m: _ESCAPES[m.group()], text)


def _attributes(pairs: List[Tuple[str, Optional[object]]]) -> str:
    return "".join(f' {name}="{xmlText(value)}"' for name, value in pairs
                   if value is not None)


@attrs.frozen
class Code:
    """
    A coded value (CodedValueType): C{csd-code}, C{codeSystemName}, and its
    meaning as C{displayName} and C{originalText}.
    """

    code: str
    system: str
    meaning: str

    def toXML(self, element: str) -> str:
        """
        The element C{element} with this code as its attributes.
        """
        attributes = _attributes([("csd-code", self.code), ("codeSystemName", self.system),
                                  ("displayName", self.meaning),
                                  ("originalText", self.meaning)])
        return f"<{element}{attributes}/>"


@attrs.frozen
class EventIdentification:
    """
    What happened, when, and how it ended (EventOutcomeIndicator: 0
    success, 4 minor failure, 8 serious failure, 12 major failure).
    """

    eventId: Code
    action: str
    dateTime: str
    outcome: int
    types: Tuple[Code, ...] = ()
    description: Optional[str] = None

    def toXML(self) -> str:
        """
        The C{EventIdentification} element.
        """
        attributes = _attributes([("EventActionCode", self.action),
                                  ("EventDateTime", self.dateTime),
                                  ("EventOutcomeIndicator", self.outcome)])
        children = [self.eventId.toXML("EventID")]
        children += [code.toXML("EventTypeCode") for code in self.types]
        if self.description is not None:
            children.append(f"<EventOutcomeDescription>{xmlText(self.description)}"
                            "</EventOutcomeDescription>")
        return f"<EventIdentification{attributes}>{''.join(children)}</EventIdentification>"


@attrs.frozen
class Participant:
    """
    An ActiveParticipant: a process or node taking part, with its network
    access point (C{napType} 1: machine name, 2: IP address).
    """

    userId: str
    requestor: bool
    roles: Tuple[Code, ...] = ()
    alternativeUserId: Optional[str] = None
    userName: Optional[str] = None
    napId: Optional[str] = None
    napType: Optional[int] = None

    def toXML(self) -> str:
        """
        The C{ActiveParticipant} element.
        """
        attributes = _attributes([
            ("UserID", self.userId), ("AlternativeUserID", self.alternativeUserId),
            ("UserName", self.userName), ("UserIsRequestor", "true" if self.requestor
                                          else "false"),
            ("NetworkAccessPointID", self.napId),
            ("NetworkAccessPointTypeCode", self.napType if self.napId is not None else None)])
        children = "".join(code.toXML("RoleIDCode") for code in self.roles)
        if not children:
            return f"<ActiveParticipant{attributes}/>"
        return f"<ActiveParticipant{attributes}>{children}</ActiveParticipant>"


@attrs.frozen
class AuditSource:
    """
    AuditSourceIdentification: the node that writes the message (type 4:
    an application server process tier).
    """

    sourceId: str
    siteId: Optional[str] = None
    typeCode: str = "4"

    def toXML(self) -> str:
        """
        The C{AuditSourceIdentification} element.
        """
        attributes = _attributes([("AuditEnterpriseSiteID", self.siteId),
                                  ("AuditSourceID", self.sourceId)])
        code = f'<AuditSourceTypeCode csd-code="{xmlText(self.typeCode)}"/>'
        return f"<AuditSourceIdentification{attributes}>{code}</AuditSourceIdentification>"


@attrs.frozen
class ParticipantObject:
    """
    A ParticipantObjectIdentification: what the event is about, with
    details as (type, text) pairs (the value is sent base64-encoded UTF-8,
    as the schema's ValuePair asks).
    """

    idType: Code
    objectId: str
    name: str
    typeCode: Optional[str] = None
    role: Optional[str] = None
    details: Tuple[Tuple[str, str], ...] = ()

    def toXML(self) -> str:
        """
        The C{ParticipantObjectIdentification} element.
        """
        attributes = _attributes([("ParticipantObjectID", self.objectId),
                                  ("ParticipantObjectTypeCode", self.typeCode),
                                  ("ParticipantObjectTypeCodeRole", self.role)])
        children = [self.idType.toXML("ParticipantObjectIDTypeCode"),
                    f"<ParticipantObjectName>{xmlText(self.name)}</ParticipantObjectName>"]
        for kind, value in self.details:
            encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
            children.append(f"<ParticipantObjectDetail{_attributes([('type', kind)])}"
                            f' value="{encoded}"/>')
        return (f"<ParticipantObjectIdentification{attributes}>{''.join(children)}"
                "</ParticipantObjectIdentification>")


@attrs.frozen
class AuditMessage:
    """
    A whole audit message.
    """

    event: EventIdentification
    participants: Tuple[Participant, ...]
    source: AuditSource
    objects: Tuple[ParticipantObject, ...] = ()

    def toXML(self) -> str:
        """
        The document: an XML declaration and the C{AuditMessage} element,
        on one line.
        """
        parts = [self.event.toXML()]
        parts += [p.toXML() for p in self.participants]
        parts.append(self.source.toXML())
        parts += [o.toXML() for o in self.objects]
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                f"<AuditMessage>{''.join(parts)}</AuditMessage>")
