# -*- test-case-name: tests.test_gate,tests.test_auditlog,tests.test_fences,tests.test_auditemitter,tests.test_metrics -*-
"""
The small interfaces that collaborators are typed by when they are passed to
a constructor, so that no module needs to import the one that implements them:

    gate = GateFactory(application, Role.SERVER, clock, sink, creator,
                       ocsp=checker, crlWatcher=watcher, limits=limits)

where C{sink} provides L{IAuditSink} (an L{securetcp.audit.AuditEmitter}, or a
test's recorder), C{creator} L{IMaterialsInForce}, C{checker} L{IOCSPChecker}
and C{watcher} L{ICRLWatcher}.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from twisted.logger import ILogObserver
from zope.interface import Attribute, Interface


class IAuditSink(Interface):
    """
    Where audit records go.  The gate and the endpoints emit through it and
    ask it whether a new connection may proceed (fail closed).
    """

    def emit(record: Dict[str, Any]) -> bool:
        """
        Emit one audit record (a JSON-ready dict built by
        L{securetcp.audit.records}).

        @return: whether it reached every audit destination that refuses
            connections while it fails (written there under its
            durability settings).  The gate lets a connection through only
            when its C{connection.accepted} record did.
        """

    def accepting() -> bool:
        """
        Whether new connections may proceed: every audit destination that
        refuses connections while it fails can be written now.
        """


class IMaterialsInForce(Interface):
    """
    What new connections use now: a policy and the
    L{securetcp.materials.Materials} loaded for it.  Both change on an
    explicit reload; the materials' CRLs change on a CRL reload.  A
    connection creator provides it; the gate reads the CRLs and trust
    anchors in force through it.
    """

    policy = Attribute("The L{securetcp.policy.TLSPolicy} in force.")
    materials = Attribute("The L{securetcp.materials.Materials} in force.")


class ICRLTarget(IMaterialsInForce):
    """
    What a CRL reload puts new CRLs into (a connection creator): built off
    the reactor thread, installed on it.
    """

    def prepareCRLs(crls: Any) -> Any:
        """
        Build, without installing, what new connections need to use C{crls}
        (a L{securetcp.revocation.crl.CRLSet}) with the materials in force.
        Reads no file and shares nothing yet: safe off the reactor thread.
        """

    def install(prepared: Any) -> None:
        """
        Use what L{prepareCRLs} built for new connections (one reference
        swap, on the reactor thread).
        """


class IOCSPChecker(Interface):
    """
    Asks OCSP responders about certificates, with a cache (a
    L{securetcp.revocation.ocsp.OCSPChecker}).
    """

    def check(leaf: Any, issuer: Any) -> Any:
        """
        A Deferred firing with the L{securetcp.revocation.ocsp.OCSPStatus}
        of C{leaf} issued by C{issuer}; never fails.
        """

    def remember(leaf: Any, issuer: Any, status: Any) -> None:
        """
        Cache C{status} (from a stapled response) for C{leaf}.
        """

    def now() -> Any:
        """
        The current time (a timezone-aware C{datetime}), from the checker's
        clock.
        """


class IStapler(Interface):
    """
    Keeps a server's own OCSP response fresh for stapling (a
    L{securetcp.revocation.ocsp.StapleFetcher}).
    """

    def start() -> Any:
        """
        Fetch now and keep refreshing (when the server starts listening).
        """

    def stop() -> None:
        """
        Stop refreshing (when the server stops listening).
        """

    def current() -> bytes:
        """
        The DER response to staple now, or C{b""}.
        """

    def useCertificate(leaf: Any, issuer: Any) -> None:
        """
        Staple for a new certificate C{leaf} issued by C{issuer} (after an
        explicit reload read a new one).
        """


class ICRLWatcher(Interface):
    """
    Reloads the CRLs in force when their files change (a
    L{securetcp.revocation.crl.CRLWatcher}).
    """

    def start() -> None:
        """
        Start the periodic check, for one more listening port.
        """

    def stop() -> None:
        """
        Stop it when the last listening port that started it stops.
        """

    def reload() -> Any:
        """
        Read the CRL files now; a Deferred firing with whether new CRLs are
        in force.
        """


class ICredentialWatcher(Interface):
    """
    Reloads a server's certificate, key and CA files when they change
    (C{reload=watch}: a L{securetcp._filewatch.CredentialWatcher}).
    """

    def start() -> None:
        """
        Start watching, for one more listening port.
        """

    def stop() -> None:
        """
        Stop when the last listening port that started it stops.
        """


class IAuditFile(ILogObserver):
    """
    A log observer that writes audit records to a file, and knows whether
    connections may proceed as far as that file is concerned (an
    L{securetcp.audit.writer.AuditLogObserver}).  An
    L{securetcp.audit.emitter.AuditEmitter} is given the ones it writes to.
    """

    def accepting() -> bool:
        """
        Whether new connections may try to proceed: C{False} while the file
        cannot be written and its policy is to refuse connections then.
        May write the C{chain.gap} record it owes (a probe), but a probe
        never declares the file healthy: only a real record written does.
        """

    def wrote(record: Dict[str, Any]) -> Any:
        """
        Whether this file wrote C{record} (that very dict, recently given
        to it): C{True} or C{False}; C{None} if it was not given it, or
        does not refuse connections when it fails.
        """


class IGateMetrics(Interface):
    """
    What a server gate counts, for one listener (a
    L{securetcp.metrics.ListenerMetrics}; by default nothing counts).
    Called once or twice per connection: implementations only increment.
    """

    def admitted(seconds: float) -> None:
        """
        A connection reached the application, C{seconds} after it was
        accepted.
        """

    def rejected(reason: str, seconds: float) -> None:
        """
        A connection ended without reaching the application, for C{reason}
        (a rejection reason of L{securetcp._reasons}), C{seconds} after it
        was accepted.
        """

    def closed(bytesIn: int, bytesOut: Any, refused: Optional[str] = None) -> None:
        """
        An admitted connection closed after receiving C{bytesIn} and sending
        C{bytesOut} (or C{None}: not known) application bytes; C{refused}:
        the rejection reason of the later message its identity binding
        refused, when that closed it.
        """

    def ocspAnswered(answer: str) -> None:
        """
        The OCSP status of a peer was established: C{answer} is what its
        audit record says (C{"good (responder)"}, C{"revoked (stapled)"},
        C{"unknown (none)"}, C{"missing"}...).
        """

    def gateStarted(gate: Any) -> None:
        """
        C{gate} (a L{securetcp.gate.GateFactory}) counts for this listener:
        its open connections and live bytes are read when scraped.
        """
