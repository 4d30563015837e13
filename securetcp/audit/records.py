# -*- test-case-name: tests.test_auditrecords,tests.test_auditlog,tests.test_docs -*-
"""
The audit schema in one place: the event names, the schema version, and a
pure builder for every record.  A builder is a function of values (the
time is a parameter: no clock, no I/O) returning the JSON-ready dict that
an L{securetcp._interfaces.IAuditSink} emits::

    connection = AuditConnection(
        connectionId=newConnectionId(), role=Role.SERVER, local="10.0.0.5:6661",
        peer="10.0.3.17:43856", policy=policy.name, profile=policy.profile,
        session=SessionFacts(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256"))
    sink.emit(connectionAccepted(connection, time=clock.seconds()))

Every event travels through L{twisted.logger} in the C{securetcp.audit} namespace, the
record under the event key C{securetcp_audit}.  The events (C{record["event"]}) are
L{EVENTS}; the audit file adds L{CHAIN_EVENTS}.  A connection produces either
C{handshake.rejected}, or C{connection.accepted} then C{connection.closed}; a connection
decided below TLS (a bad PROXY header, a plaintext client in permissive mode) gets the same
records from the same builders, with a connection that has no TLS session.  No record ever
contains application data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence

from securetcp._reasons import REJECTION_REASONS
from securetcp.audit.connection import (
    AuditConnection,
    PolicyNames,
    SessionFacts,
    addressText,
    localAddressText,
    newConnectionId,
    utcTimestamp,
)
from securetcp.compliance import connectionCompliance, plaintextCompliance
from securetcp.compliance.verdict import policyVerdict
from securetcp.policy import Role

if TYPE_CHECKING:  # pragma: no cover
    from cryptography import x509

    from securetcp.policy import TLSPolicy

__all__ = [
    "AUDIT_NAMESPACE", "BUILDERS", "CHAIN_EVENTS", "EVENTS", "REJECTION_REASONS", "SCHEMA_VERSION",
    "AuditConnection", "SessionFacts", "addressText", "backendFailed", "certificateExpiring",
    "chainCheckpoint", "chainClosed", "chainGap", "chainResumed", "chainRotated", "chainStarted",
    "connectionAccepted", "connectionClosed", "connectionRevoked", "crlExpired", "crlExpiring",
    "crlLoaded", "crlRefused", "exportDropped", "handshakeRejected", "localAddressText",
    "newConnectionId", "policyLoaded", "policyReloadRefused", "policyReloaded", "utcTimestamp",
]
AUDIT_NAMESPACE = "securetcp.audit"

#: The version of the record schema: every record (and every line of an
#: audit file) carries it as C{schema}.
SCHEMA_VERSION = 1

EVENTS = {
    "connection.accepted": "the peer was verified and authorised and handed to the application",
    "handshake.rejected": "the connection failed a check and never reached the application",
    "connection.closed": "an accepted connection ended",
    "policy.loaded": "a server endpoint started listening under a policy",
    "revocation.crl_loaded": "new CRLs were verified and are in force for new handshakes",
    "revocation.crl_refused": "new CRL files were refused; the previous CRLs stay in force",
    "revocation.crl_expired": "a CRL in force has passed its nextUpdate",
    "revocation.crl_expiring": "a CRL in force reaches its nextUpdate within a warning threshold",
    "certificate.expiring": "our certificate or a CA certificate expires within a warning threshold",
    "connection.revoked": "a connected peer was revoked by a reloaded CRL and disconnected",
    "policy.reloaded": "certificates, keys, CAs, CRLs and policy were re-read and are in force",
    "policy.reload_refused": "a reload failed validation; the running configuration stays",
    "proxy.backend_failed": "the backend could not be reached or failed; the TLS peer was closed",
    "export.dropped": "the audit export's queue was full: records were not queued for the collector",
}

#: Records the audit file itself adds to keep the chain verifiable.
CHAIN_EVENTS = {
    "chain.started": "first record of a new chain",
    "chain.resumed": "the writer restarted and continues the chain (reason: restart after "
                     "chain.closed, crash without it, or torn_record)",
    "chain.checkpoint": "a signature over the head of the chain (coversSeq, coversHash)",
    "chain.closed": "the writer stopped cleanly; the next start resumes with reason restart",
    "chain.rotated": "first record of a new file after rotation; names the previous file",
    "chain.gap": "records were lost while the file could not be written (lost: how many; "
                 "refused: connections refused audit_unavailable among them)",
}

#: The fields of a C{handshake.rejected} record that a revocation adds.
_REVOCATION_FIELDS = ("revocationReason", "revocationTime")


# -- connection records ----------------------------------------------------


def _record(event: str, time: float, **fields: Any) -> Dict[str, Any]:
    record: Dict[str, Any] = {"event": event, "time": utcTimestamp(time)}
    record.update(fields)
    record["schema"] = SCHEMA_VERSION
    return record


def _connectionRecord(event: str, connection: AuditConnection, time: float,
                      compliance: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    # one dict, keys in _record's order (event, time, the fields, schema)
    session, identity = connection.session, connection.peerIdentity
    record: Dict[str, Any] = {
        "event": event, "time": utcTimestamp(time), "connection": connection.connectionId,
        "role": connection.role.value, "local": connection.local, "peer": connection.peer,
        "proxy": connection.proxy, "sni": session.sni, "version": session.version,
        "cipher": session.cipher, "group": session.group, "alpn": session.alpn,
        "resumed": session.resumed, "revocationWarning": session.revocationWarning,
        "ocsp": session.ocsp,
        "peerIdentity": identity.asRecord() if identity is not None else None,
        "policy": connection.policy, "profile": connection.profile, "compliance": compliance,
    }
    if connection.plaintext:
        record["plaintext"] = True
    if connection.binding is not None:
        record["binding"] = dict(connection.binding)
    record["schema"] = SCHEMA_VERSION
    return record


def _verdict(connection: AuditConnection) -> Dict[str, Any]:
    if connection.plaintext:
        return plaintextCompliance()
    session = connection.session
    verdict = connectionCompliance(session.version, session.cipher, session.group,
                                   connection.legacy)
    if connection.policyReasons is not None:
        # besides what was negotiated: the policy's own verdict, as check
        # and policy.loaded give it (policyVerdict), with what fails
        verdict["policy"] = {"compliant": not connection.policyReasons,
                             "reasons": list(connection.policyReasons)}
    return verdict


def connectionAccepted(connection: AuditConnection, time: float) -> Dict[str, Any]:
    """
    C{connection.accepted}: the peer was verified and authorised (or, in
    permissive mode, spoke plaintext) and the application has it.
    """
    return _connectionRecord("connection.accepted", connection, time, _verdict(connection))


def connectionClosed(connection: AuditConnection, time: float, duration: float,
                     bytesIn: int, bytesOut: Optional[int], closeReason: Optional[str] = None,
                     refused: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """
    C{connection.closed}: an accepted connection ended after C{duration}
    seconds with C{bytesIn} and C{bytesOut} application bytes;
    C{closeReason} is C{None} for a normal close.  C{refused}: the later
    message of an identity binding that closed it (C{reason}, one of
    L{REJECTION_REASONS}, C{detail}, C{message}: its number, C{claims}).
    """
    record = _connectionRecord("connection.closed", connection, time, _verdict(connection))
    record.update(closeReason=closeReason, duration=duration, bytesIn=bytesIn,
                  bytesOut=bytesOut)
    if refused is not None:
        record["refused"] = dict(refused)
    return record


def handshakeRejected(connection: AuditConnection, time: float, reason: str, detail: str,
                      revocation: Mapping[str, Any] = {}) -> Dict[str, Any]:
    """
    C{handshake.rejected}: the connection never reached the application.
    No data was protected, so there is no compliance verdict.

    @param reason: one of L{REJECTION_REASONS}.
    @param revocation: for a revoked peer, the C{revocationReason} and
        C{revocationTime} its CRL entry (or OCSP answer) gives; other keys
        are ignored.
    @raise ValueError: for a reason that is not one of L{REJECTION_REASONS}.
    """
    if reason not in REJECTION_REASONS:
        raise ValueError(f"{reason!r} is not one of the audit schema's rejection reasons")
    record = _connectionRecord("handshake.rejected", connection, time, None)
    record.update(reason=reason, detail=detail)
    record.update({k: revocation[k] for k in _REVOCATION_FIELDS if k in revocation})
    return record


def connectionRevoked(connection: AuditConnection, time: float, detail: str) -> Dict[str, Any]:
    """
    C{connection.revoked}: a connected peer was revoked by a reloaded CRL
    and disconnected.
    """
    record = _connectionRecord("connection.revoked", connection, time, _verdict(connection))
    record["detail"] = detail
    return record


# -- policy and revocation records -----------------------------------------


def _policyRecord(event: str, policy: PolicyNames, role: Role, time: float,
                  **fields: Any) -> Dict[str, Any]:
    return _record(event, time, role=role.value, policy=policy.name, profile=policy.profile,
                   **fields)


def policyLoaded(policy: TLSPolicy, role: Role, mutual: bool, endpoint: str,
                 time: float, leaf: Optional[x509.Certificate] = None) -> Dict[str, Any]:
    """
    C{policy.loaded}: an endpoint (described by C{endpoint}, without
    secrets) started using C{policy} (with its certificate C{leaf}); its
    verdict is C{check}'s (L{policyVerdict}).
    """
    return _policyRecord(
        "policy.loaded", policy, role, time, endpoint=endpoint, mutual=mutual,
        minVersion=policy.versions.minimum.value, maxVersion=policy.versions.maximum.value,
        ciphers=list(policy.ciphers.tls12), ciphersuites=list(policy.ciphers.tls13),
        clientAuth=policy.peer.clientAuth.value,
        compliance=policyVerdict(policy, role, leaf))


def policyReloaded(policy: TLSPolicy, time: float, role: Role = Role.SERVER,
                   changed: Optional[Sequence[str]] = None,
                   certificateBefore: Optional[str] = None,
                   certificateAfter: Optional[str] = None,
                   leaf: Optional[x509.Certificate] = None) -> Dict[str, Any]:
    """
    C{policy.reloaded}: an explicit reload put C{policy} (with its
    certificate C{leaf}) in force; its verdict is C{check}'s.

    @param changed: what the reload changed (e.g. C{["certificate",
        "key"]}), or C{None} if not known.
    @param certificateBefore: the SHA-256 fingerprint (hex) of our
        certificate before the reload.
    @param certificateAfter: and after it.
    """
    return _policyRecord(
        "policy.reloaded", policy, role, time,
        compliance=policyVerdict(policy, role, leaf),
        changed=list(changed) if changed is not None else None,
        certificateBefore=certificateBefore, certificateAfter=certificateAfter)


def policyReloadRefused(policy: PolicyNames, detail: str, time: float,
                        role: Role = Role.SERVER) -> Dict[str, Any]:
    """
    C{policy.reload_refused}: a reload failed (C{detail} names the file and
    the fix); C{policy}, the running one, stays in force.
    """
    return _policyRecord("policy.reload_refused", policy, role, time, detail=detail)


def crlLoaded(policy: PolicyNames, files: Sequence[str], crls: int, revoked: int,
              time: float, role: Role = Role.SERVER) -> Dict[str, Any]:
    """C{revocation.crl_loaded}: C{crls} CRLs from C{files} (C{revoked} serials) are in force."""
    return _policyRecord("revocation.crl_loaded", policy, role, time, files=list(files),
                         crls=crls, revoked=revoked)


def crlRefused(policy: PolicyNames, detail: str, file: Optional[str], time: float,
               role: Role = Role.SERVER) -> Dict[str, Any]:
    """C{revocation.crl_refused}: new CRL files (C{file}, if one is to blame) were refused."""
    return _policyRecord("revocation.crl_refused", policy, role, time, detail=detail,
                         file=file)


def crlExpired(policy: PolicyNames, detail: str, mode: str, time: float,
               role: Role = Role.SERVER) -> Dict[str, Any]:
    """C{revocation.crl_expired}: a CRL in force is past its nextUpdate (C{mode}: hard/soft)."""
    return _policyRecord("revocation.crl_expired", policy, role, time, detail=detail,
                         mode=mode)


def certificateExpiring(policy: PolicyNames, kind: str, subject: str, notAfter: float,
                        daysLeft: int, threshold: int, time: float,
                        role: Role = Role.SERVER) -> Dict[str, Any]:
    """
    C{certificate.expiring}: our certificate (C{kind} C{certificate}) or a
    CA's (C{ca}), C{subject}, expires at C{notAfter}, C{daysLeft} days
    away (negative: past), within the warning C{threshold} (days).
    """
    return _policyRecord("certificate.expiring", policy, role, time, kind=kind, subject=subject,
                         notAfter=utcTimestamp(notAfter), daysLeft=daysLeft, threshold=threshold)


def crlExpiring(policy: PolicyNames, issuer: str, nextUpdate: float, daysLeft: int,
                threshold: int, time: float, role: Role = Role.SERVER) -> Dict[str, Any]:
    """C{revocation.crl_expiring}: C{issuer}'s CRL reaches C{nextUpdate} in C{daysLeft} days."""
    return _policyRecord("revocation.crl_expiring", policy, role, time, issuer=issuer,
                         nextUpdate=utcTimestamp(nextUpdate), daysLeft=daysLeft,
                         threshold=threshold)


def backendFailed(backend: str, peer: Optional[str], detail: str, time: float,
                  connectionId: Optional[str] = None) -> Dict[str, Any]:
    """
    C{proxy.backend_failed}: C{twistd securetcp terminate}/C{originate}
    could not reach the far side C{backend} (an endpoint description
    without secrets) for the accepted C{peer}, whose connection id (if it
    has one) is C{connectionId}.
    """
    return _record("proxy.backend_failed", time, connection=connectionId, backend=backend,
                   peer=peer, detail=detail)


def exportDropped(collector: str, dropped: int, firstSeq: int, lastSeq: int,
                  time: float) -> Dict[str, Any]:
    """C{export.dropped}: the export queue was full; records C{firstSeq}-C{lastSeq} stayed local."""
    return _record("export.dropped", time, collector=collector, dropped=dropped,
                   firstSeq=firstSeq, lastSeq=lastSeq)


# -- the audit file's own records ------------------------------------------


def chainStarted(time: float, algorithm: str) -> Dict[str, Any]:
    """C{chain.started}: the first record of a chain hashed with C{algorithm}."""
    return _record("chain.started", time, algorithm=algorithm)


def chainResumed(time: float, previousSeq: int, tornBytes: Optional[int] = None,
                 tornFile: Optional[str] = None, clean: bool = True) -> Dict[str, Any]:
    """
    C{chain.resumed}: a writer continues the chain after record
    C{previousSeq}; with C{tornBytes}, after moving a torn last line of
    that many bytes aside to C{tornFile}.  Its C{reason} is C{restart}
    when the chain ended C{clean}ly (with C{chain.closed}), C{crash}
    when the writer before stopped without closing it, and
    C{torn_record} with C{tornBytes}.
    """
    if tornBytes is None:
        return _record("chain.resumed", time, reason="restart" if clean else "crash",
                       previousSeq=previousSeq)
    return _record("chain.resumed", time, reason="torn_record", tornBytes=tornBytes,
                   tornFile=tornFile, previousSeq=previousSeq)


def chainCheckpoint(time: float, coversSeq: int, coversHash: str, algorithm: str,
                    keyId: str, signature: str, trigger: str) -> Dict[str, Any]:
    """
    C{chain.checkpoint}: C{signature} (hex), by the key C{keyId} with
    C{algorithm} (C{ed25519} or C{hmac-sha256}), over the head of the
    chain: the record C{coversSeq} whose hash is C{coversHash} (the record
    just before this one).  C{trigger} says why it was written: C{count},
    C{interval} or C{shutdown}.
    """
    return _record("chain.checkpoint", time, coversSeq=coversSeq, coversHash=coversHash,
                   algorithm=algorithm, keyId=keyId, signature=signature, trigger=trigger)


def chainClosed(time: float) -> Dict[str, Any]:
    """C{chain.closed}: the writer closed the chain cleanly (a stopped writer's last record)."""
    return _record("chain.closed", time)


def chainRotated(time: float, previousFile: str) -> Dict[str, Any]:
    """C{chain.rotated}: the first record of a file; C{previousFile} has those before."""
    return _record("chain.rotated", time, previousFile=previousFile)


def chainGap(time: float, lost: int, since: Optional[float],
             refused: int = 0) -> Dict[str, Any]:
    """
    C{chain.gap}: C{lost} records could not be written, since C{since}
    (seconds); C{refused} connections were refused (C{audit_unavailable})
    because their records could not be written.
    """
    return _record("chain.gap", time, lost=lost,
                   since=utcTimestamp(since) if since is not None else None,
                   refused=refused)


#: The builder of every event, by name.
BUILDERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "connection.accepted": connectionAccepted,
    "handshake.rejected": handshakeRejected,
    "connection.closed": connectionClosed,
    "connection.revoked": connectionRevoked,
    "policy.loaded": policyLoaded,
    "policy.reloaded": policyReloaded,
    "policy.reload_refused": policyReloadRefused,
    "revocation.crl_loaded": crlLoaded,
    "revocation.crl_refused": crlRefused,
    "revocation.crl_expired": crlExpired,
    "revocation.crl_expiring": crlExpiring,
    "certificate.expiring": certificateExpiring,
    "proxy.backend_failed": backendFailed,
    "chain.started": chainStarted,
    "chain.resumed": chainResumed,
    "chain.rotated": chainRotated,
    "chain.gap": chainGap,
    "chain.checkpoint": chainCheckpoint,
    "chain.closed": chainClosed,
    "export.dropped": exportDropped,
}
