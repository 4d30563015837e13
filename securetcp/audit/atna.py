# -*- test-case-name: tests.test_atna -*-
"""
IHE ATNA audit messages: a sealed audit record as a DICOM PS3.15 A.5
C{AuditMessage} (XML), for the events ATNA asks of a Secure Node, and
C{None} for the others::

    for line in open("/var/log/securetcp/audit.jsonl", "rb"):
        xml = atnaMessage(json.loads(line), sourceId="gw-radiology-1",
                          siteId="St. Elsewhere")
        if xml is not None:
            send(xml)

Pure: no I/O, no clock; the message is a function of the record and the
two names.  Which record becomes which message (L{ATNA_EVENTS}), and where
each field's value comes from, is the conformance statement in
C{docs/atna.md}.  Every message carries the record's C{seq}, C{prev} and
C{hash} in a participant object of type C{audit-record} (code system
C{securetcp}), so a message in an Audit Record Repository can be matched
to its place in the node's hash chain.  No record holds application data,
so no message does.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import attrs

from securetcp.audit._atnaxml import (
    AuditMessage,
    AuditSource,
    Code,
    EventIdentification,
    Participant,
    ParticipantObject,
)

__all__ = ["ATNA_EVENTS", "atnaMessage"]

# -- codes (DICOM PS3.16, code system DCM) ---------------------------------

APPLICATION_ACTIVITY = Code("110100", "DCM", "Application Activity")
SECURITY_ALERT = Code("110113", "DCM", "Security Alert")
APPLICATION_START = Code("110120", "DCM", "Application Start")
APPLICATION_STOP = Code("110121", "DCM", "Application Stop")
NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")
SECURITY_CONFIGURATION = Code("110129", "DCM", "Security Configuration")
AUDIT_RECORDING_STOPPED = Code("110133", "DCM", "Audit Recording Stopped")
APPLICATION = Code("110150", "DCM", "Application")
DESTINATION = Code("110152", "DCM", "Destination Role ID")
SOURCE = Code("110153", "DCM", "Source Role ID")
NODE_ID = Code("110182", "DCM", "Node ID")
#: securetcp's own participant object ID types
AUDIT_RECORD = Code("audit-record", "securetcp", "securetcp audit record")
POLICY = Code("policy", "securetcp", "securetcp security policy")

#: The UserID of the reporting application.
APPLICATION_ID = "securetcp"

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = 0, 4, 8
#: ParticipantObjectTypeCode 2 (system object), TypeCodeRole 13 (security resource)
_SYSTEM, _SECURITY_RESOURCE = "2", "13"


# -- values from a record --------------------------------------------------


def _dateTime(record: Mapping[str, Any]) -> str:
    """
    The record's C{time} as an xsd:dateTime in UTC.

    @raise ValueError: if it is not an ISO 8601 time.
    """
    text = record.get("time")
    try:
        moment = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"audit record {record.get('seq')!r}: time {text!r} is not "
                         "an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _host(address: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    """
    The network access point of a record's address (C{host:port},
    C{[v6]:port}, C{unix:PATH}): the host and its type code (2: IP
    address, 1: machine name), or C{(None, None)}.
    """
    if not address or address.startswith("unix:"):
        return None, None
    host = address
    if address.startswith("[") and "]" in address:
        host = address[1:address.index("]")]
    elif address.count(":") == 1:
        host = address.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host, 1
    return host, 2


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _details(record: Mapping[str, Any], *names: str) -> Tuple[Tuple[str, str], ...]:
    return tuple((name, _text(record[name])) for name in names
                 if record.get(name) not in (None, "", []))


def _recordObject(record: Mapping[str, Any]) -> List[ParticipantObject]:
    """
    The record itself, for matching the message to the chain: C{seq},
    C{prev} and C{hash} (nothing for an unsealed record).
    """
    if "hash" not in record or "seq" not in record:
        return []
    return [ParticipantObject(
        idType=AUDIT_RECORD, objectId=str(record["hash"]),
        name=f"{record.get('event')} {record['seq']}", typeCode=_SYSTEM,
        role=_SECURITY_RESOURCE,
        details=_details(record, "event", "seq", "prev", "hash", "connection"))]


def _policyObject(record: Mapping[str, Any], *names: str) -> List[ParticipantObject]:
    """
    The security policy a record names, with the record's fields C{names}.
    """
    if not record.get("policy"):
        return []
    compliance = record.get("compliance")
    details = _details(record, "profile", "role", *names)
    if isinstance(compliance, Mapping) and "compliant" in compliance:
        details += (("compliant", _text(compliance["compliant"])),)
    return [ParticipantObject(idType=POLICY, objectId=str(record["policy"]),
                              name=str(record["policy"]), typeCode=_SYSTEM,
                              role=_SECURITY_RESOURCE, details=details)]


def _application(record: Mapping[str, Any], requestor: bool,
                 roles: Tuple[Code, ...] = ()) -> Participant:
    napId, napType = _host(record.get("local"))
    return Participant(userId=APPLICATION_ID, requestor=requestor, roles=roles,
                       napId=napId, napType=napType)


# -- the messages ----------------------------------------------------------


@attrs.frozen
class _Parts:
    """
    What a record's message says besides its time, source and record object.
    """

    eventId: Code
    types: Tuple[Code, ...]
    outcome: int
    description: Optional[str]
    participants: Tuple[Participant, ...]
    objects: Tuple[ParticipantObject, ...] = ()


def _peer(record: Mapping[str, Any], requestor: bool, role: Code) -> Participant:
    """
    The peer of a connection: its certificate subject (or, without one,
    its address) as UserID, its first subjectAltName as AlternativeUserID,
    its address as the network access point.
    """
    identity = record.get("peerIdentity") or {}
    napId, napType = _host(record.get("peer"))
    san = identity.get("san") or {}
    names = [n for kind in ("uri", "dns", "email", "ip") for n in san.get(kind) or ()]
    return Participant(userId=str(identity.get("subject") or record.get("peer") or "unknown"),
                       requestor=requestor, roles=(role,),
                       alternativeUserId=names[0] if names else None,
                       napId=napId, napType=napType)


def _alertSubject(record: Mapping[str, Any], description: str) -> ParticipantObject:
    """
    The node the alert is about: the peer, by address, with what is known
    of its connection and certificate.
    """
    identity = record.get("peerIdentity") or {}
    napId, _ = _host(record.get("peer"))
    name = identity.get("subject") or record.get("peer") or "unknown peer"
    details: Tuple[Tuple[str, str], ...] = (("Alert Description", description),)
    details += _details(record, "peer", "proxy", "local", "sni", "version", "cipher",
                        "group", "revocationReason", "revocationTime")
    details += _details(identity, "subject", "issuer", "serial", "sha256", "notAfter")
    return ParticipantObject(idType=NODE_ID, objectId=str(napId or record.get("peer") or name),
                             name=str(name), typeCode=_SYSTEM, details=details)


def _nodeAuthentication(record: Mapping[str, Any]) -> _Parts:
    """
    A refused handshake (or a connection closed because its peer was
    revoked, or because a later message of its identity binding was
    refused): Security Alert, Node Authentication, minor failure.  The
    requestor is the side that connected: the peer when we serve.
    """
    serving = record.get("role") != "client"
    refused = record.get("refused") or {}
    reason = record.get("reason") or refused.get("reason") or "revoked"
    detail = record.get("detail") or refused.get("detail")
    description = f"{reason}: {detail}" if detail else str(reason)
    if record.get("event") == "connection.revoked":
        description = f"connection closed, the peer was revoked: {record.get('detail')}"
    elif refused:
        description = f"connection closed, message {refused.get('message')} refused: " \
                      f"{description}"
    return _Parts(
        SECURITY_ALERT, (NODE_AUTHENTICATION,), MINOR_FAILURE, description,
        (_application(record, not serving, (DESTINATION if serving else SOURCE,)),
         _peer(record, serving, SOURCE if serving else DESTINATION)),
        (_alertSubject(record, description), *_policyObject(record)))


_CONFIGURATION_FIELDS = {
    "policy.loaded": ("endpoint", "mutual", "minVersion", "maxVersion", "clientAuth"),
    "policy.reloaded": ("changed", "certificateBefore", "certificateAfter"),
    "policy.reload_refused": ("detail",),
    "revocation.crl_loaded": ("files", "crls", "revoked"),
    "revocation.crl_refused": ("file", "detail"),
}


def _configuration(record: Mapping[str, Any]) -> _Parts:
    """
    A security configuration put in force (or refused): Security Alert,
    Security Configuration; success, or minor failure for a refusal (the
    running configuration stays).
    """
    event = str(record.get("event"))
    refused = event.endswith("_refused")
    summary = {
        "policy.loaded": f"a {record.get('role')} endpoint ({record.get('endpoint')}) "
                         f"started under policy {record.get('policy')}",
        "policy.reloaded": f"policy {record.get('policy')} reloaded and in force "
                           f"(changed: {_text(record.get('changed') or 'not known')})",
        "revocation.crl_loaded": f"{record.get('crls')} CRL(s) with {record.get('revoked')} "
                                 "revoked serial(s) in force",
    }.get(event) or f"refused, the running configuration stays: {record.get('detail')}"
    return _Parts(SECURITY_ALERT, (SECURITY_CONFIGURATION,),
                  MINOR_FAILURE if refused else SUCCESS, f"{event}: {summary}",
                  (_application(record, True, (APPLICATION,)),),
                  tuple(_policyObject(record, *_CONFIGURATION_FIELDS[event])))


def _auditGap(record: Mapping[str, Any]) -> _Parts:
    """
    Records lost while the audit file could not be written: Security
    Alert, Audit Recording Stopped, serious failure.
    """
    description = (f"{record.get('lost')} audit record(s) lost since {record.get('since')}"
                   f" ({record.get('refused') or 0} connection(s) refused for want of an "
                   "audit log); recording resumed with this record")
    return _Parts(SECURITY_ALERT, (AUDIT_RECORDING_STOPPED,), SERIOUS_FAILURE, description,
                  (_application(record, True, (APPLICATION,)),))


def _exportDropped(record: Mapping[str, Any]) -> _Parts:
    """
    Records the export could not queue for the collector (they stay in the
    local file): Security Alert, Audit Recording Stopped, minor failure.
    """
    description = (f"{record.get('dropped')} audit record(s) ({record.get('firstSeq')}.."
                   f"{record.get('lastSeq')}) not sent to the collector "
                   f"{record.get('collector')}: the export queue was full; they stay in the "
                   "local audit file")
    return _Parts(SECURITY_ALERT, (AUDIT_RECORDING_STOPPED,), MINOR_FAILURE, description,
                  (_application(record, True, (APPLICATION,)),))


_RESUMED = {
    "restart": "the audit chain resumes after a clean stop",
    "crash": "the audit chain resumes; the run before ended without closing it (crash)",
    "torn_record": "the audit chain resumes; a torn last record was moved aside",
}


def _applicationActivity(record: Mapping[str, Any]) -> _Parts:
    """
    The audit writer started (C{chain.started}, C{chain.resumed}) or
    stopped (C{chain.closed}): Application Activity, Application
    Start/Stop; a start after a crash or a torn record is a minor failure.
    """
    event = record.get("event")
    outcome, stopping = SUCCESS, event == "chain.closed"
    if stopping:
        description = "the audit chain was closed cleanly"
    elif event == "chain.started":
        description = f"a new audit chain started ({record.get('algorithm')})"
    else:
        reason = str(record.get("reason"))
        description = _RESUMED.get(reason, f"the audit chain resumes ({reason})")
        outcome = SUCCESS if reason == "restart" else MINOR_FAILURE
    return _Parts(APPLICATION_ACTIVITY, (APPLICATION_STOP if stopping else APPLICATION_START,),
                  outcome, description, (_application(record, False, (APPLICATION,)),))


_BUILDERS: Dict[str, Callable[[Mapping[str, Any]], _Parts]] = {
    "handshake.rejected": _nodeAuthentication,
    "connection.revoked": _nodeAuthentication,
    "policy.loaded": _configuration,
    "policy.reloaded": _configuration,
    "policy.reload_refused": _configuration,
    "revocation.crl_loaded": _configuration,
    "revocation.crl_refused": _configuration,
    "chain.gap": _auditGap,
    "export.dropped": _exportDropped,
    "chain.started": _applicationActivity,
    "chain.resumed": _applicationActivity,
    "chain.closed": _applicationActivity,
}

#: Every event of the audit schema and the ATNA message it becomes
#: (C{None}: none; the record stays in the local file and the json export).
#: One exception: a C{connection.closed} with C{refused} (a later message
#: of an identity binding refused) is a Node Authentication alert too.
ATNA_EVENTS: Mapping[str, Optional[str]] = {
    "handshake.rejected": "Security Alert (110113) / Node Authentication (110126)",
    "connection.revoked": "Security Alert (110113) / Node Authentication (110126)",
    "policy.loaded": "Security Alert (110113) / Security Configuration (110129)",
    "policy.reloaded": "Security Alert (110113) / Security Configuration (110129)",
    "policy.reload_refused": "Security Alert (110113) / Security Configuration (110129)",
    "revocation.crl_loaded": "Security Alert (110113) / Security Configuration (110129)",
    "revocation.crl_refused": "Security Alert (110113) / Security Configuration (110129)",
    "chain.gap": "Security Alert (110113) / Audit Recording Stopped (110133)",
    "export.dropped": "Security Alert (110113) / Audit Recording Stopped (110133)",
    "chain.started": "Application Activity (110100) / Application Start (110120)",
    "chain.resumed": "Application Activity (110100) / Application Start (110120)",
    "chain.closed": "Application Activity (110100) / Application Stop (110121)",
    "connection.accepted": None,
    "connection.closed": None,
    "revocation.crl_expired": None,
    "revocation.crl_expiring": None,
    "certificate.expiring": None,
    "proxy.backend_failed": None,
    "chain.checkpoint": None,
    "chain.rotated": None,
}


def atnaMessage(record: Mapping[str, Any], *, sourceId: str,
                siteId: Optional[str] = None) -> Optional[str]:
    """
    The DICOM PS3.15 A.5 audit message (an XML document, on one line) for
    the sealed audit C{record}, or C{None} for an event ATNA does not ask
    for (see L{ATNA_EVENTS}).

    @param sourceId: the AuditSourceID: the name of this node.
    @param siteId: the AuditEnterpriseSiteID (hospital, department), if any.
    @raise ValueError: if the record's C{time} is not an ISO 8601 time, or
        C{sourceId} is empty.
    """
    if not sourceId or not sourceId.strip():
        raise ValueError("the AuditSourceID (sourceId) must name this node, e.g. its host name")
    build = _BUILDERS.get(str(record.get("event")))
    if record.get("event") == "connection.closed" and record.get("refused"):
        build = _nodeAuthentication  # closed for a refused message: an alert all the same
    if build is None:
        return None
    parts = build(record)
    event = EventIdentification(eventId=parts.eventId, action="E",
                                dateTime=_dateTime(record), outcome=parts.outcome,
                                types=parts.types, description=parts.description)
    return AuditMessage(event=event, participants=parts.participants,
                        source=AuditSource(sourceId=sourceId, siteId=siteId),
                        objects=parts.objects + tuple(_recordObject(record))).toXML()
