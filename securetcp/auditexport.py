# -*- test-case-name: tests.test_auditexport,tests.test_auditexport_rsyslog -*-
"""
The audit export: the sealed records of a local audit file, sent as RFC
5424 syslog messages to a collector (rsyslog, syslog-ng, a SIEM, an IHE
ATNA Audit Record Repository) over mutually authenticated TLS (RFC 5425)
or plain TCP (RFC 6587, for a local relay), with a disk queue in between
so that nothing is lost while the collector is down::

    from securetcp import auditLogObserver, auditSyslogExport

    writer = auditLogObserver("/var/log/securetcp/audit.jsonl")
    export = auditSyslogExport(reactor, writer, "tls://siem.example:6514",
                               policyFile="/etc/securetcp/syslog-client.toml",
                               queueDir="/var/spool/securetcp/export")
    export.setServiceParent(application)      # an IService

The TLS connection is a L{securetcp.endpoints.SecureClientEndpoint} under
the client policy file: it presents the node's certificate (the collector
authenticates the node, as IHE ITI-19 asks), verifies the collector's
chain and host name, under the NIST profile unless the file says
otherwise.  Its refusals are audited like any other handshake.

Delivery is at least once, in order.  TCP tells the sender nothing about
what the collector did with the bytes, so a message counts as delivered
when it was written to a connection that then stayed up for C{settle}
seconds (default 5), and that connection's C{TCP_USER_TIMEOUT} (Linux) is
set to 80% of C{settle}, so it would have broken had the collector's TCP
stack not acknowledged the write by then.  A collector that stops, crashes,
resets or vanishes within that time gets the messages again after the next
connect, from the first one not counted delivered.  The collector drops
the duplicates by the C{seq} and C{hash} every message carries.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Optional, Tuple

from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorThreads, IReactorTime, IStreamClientEndpoint

from securetcp._exportsender import AuditSyslogExport
from securetcp._interfaces import IAuditSink
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.exportfeed import ExportFeed, MessageFormat, atnaFormat, jsonFormat
from securetcp.audit.queue import DiskQueue
from securetcp.audit.syslog import SyslogIdentity, validNodeId
from securetcp.config import loadPolicyFile
from securetcp.endpoints import clientEndpoint
from securetcp.errors import AuditExportError, PolicyError

__all__ = ["FORMATS", "AuditSyslogExport", "auditSyslogExport", "parseCollector"]

#: The formats of the MSG part (see L{securetcp.audit.syslog}).
FORMATS = ("json", "atna")

_URL = re.compile(r"(tls|tcp)://(\[[0-9a-fA-F:.]+\]|[^:/\[\]\s]+):(\d{1,5})\Z")


def parseCollector(url: str, argument: str = "--audit-syslog") -> Tuple[str, str, int]:
    """
    The scheme (C{tls} or C{tcp}), host and port of a collector address
    C{tls://HOST:PORT} or C{tcp://HOST:PORT} (an IPv6 address in brackets).

    @raise AuditExportError: naming C{argument}, for anything else.
    """
    found = _URL.match(url or "")
    if found is None or not 0 < int(found.group(3)) < 65536:
        raise AuditExportError(argument, url, "is not a collector address",
                               "write tls://HOST:PORT (syslog over TLS, RFC 5425, usually "
                               "port 6514) or tcp://HOST:PORT (plain TCP to a local relay)")
    return found.group(1), found.group(2).strip("[]"), int(found.group(3))


def _formatFor(name: str, identity: SyslogIdentity, sourceId: str,
               siteId: Optional[str]) -> MessageFormat:
    if name == "json":
        return jsonFormat(identity)
    return atnaFormat(identity, sourceId, siteId)


def collectorEndpoint(reactor: Any, url: str, policyFile: Optional[str],
                      emitter: IAuditSink, clock: IReactorTime) -> IStreamClientEndpoint:
    """
    The client endpoint to the collector C{url}: over TLS, a
    L{securetcp.endpoints.SecureClientEndpoint} under C{policyFile} that
    presents the node's certificate and checks the collector's host name.

    @raise AuditExportError: naming the argument and the fix.
    """
    scheme, host, port = parseCollector(url)
    inner = HostnameEndpoint(reactor, host.encode("idna") if not _isAddress(host) else host,
                             port, timeout=10)
    if scheme == "tcp":
        if policyFile is not None:
            raise AuditExportError("--audit-syslog-policy", policyFile,
                                   "a client policy needs a tls:// collector",
                                   f"write tls://{host}:{port}, or give no policy")
        return inner
    if policyFile is None:
        raise AuditExportError("--audit-syslog-policy", None,
                               "a tls:// collector needs a client policy file",
                               "give a TOML policy with certKey, privateKey and caCerts: "
                               "the node's certificate and the collector's CA")
    try:
        policy = loadPolicyFile(policyFile)
        return clientEndpoint(reactor, inner, policy, hostname=host, mutual=True,
                              clock=clock, emitter=emitter)
    except PolicyError as e:
        raise AuditExportError("--audit-syslog-policy", policyFile, str(e),
                               "fix the client policy file") from None


def _isAddress(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def auditSyslogExport(reactor: Any, writer: Any, collector: str, *,
                      policyFile: Optional[str] = None, format: str = "json",
                      node: Optional[str] = None, queueDir: str,
                      queueBytes: int = 64 * 2**20, emitter: Optional[IAuditSink] = None,
                      clock: Optional[IReactorTime] = None,
                      sourceId: Optional[str] = None, siteId: Optional[str] = None,
                      **tuning: Any) -> AuditSyslogExport:
    """
    The export of the audit file of C{writer} (its writer, or its path) to
    C{collector} (C{tls://HOST:PORT} or C{tcp://HOST:PORT}), as a service.

    @param policyFile: the client policy file (TOML: C{certKey},
        C{privateKey}, C{caCerts}, ...); required for C{tls://}.
    @param format: C{json} or C{atna}.
    @param node: the node id the collector groups records by (default:
        this host's name); every audit file sending to one collector needs
        its own.
    @param queueDir: the disk queue's directory (one per exported file).
    @param queueBytes: the queue's bound in bytes.
    @param emitter: where the export's own records go (C{export.dropped},
        the TLS connection's records); by default the global log publisher.
    @param sourceId: the ATNA AuditSourceID (default: the node id).
    @param siteId: the ATNA AuditEnterpriseSiteID (hospital, department), if any.
    @param tuning: C{settle}, C{window}, C{minDelay}, C{maxDelay}, C{batch} (see
        L{AuditSyslogExport}).
    @raise AuditExportError: naming the argument and the fix.
    """
    clock = clock or reactor
    emitter = emitter or AuditEmitter()
    if format not in FORMATS:
        raise AuditExportError("--audit-syslog-format", format, "unknown format",
                               "use " + " or ".join(FORMATS))
    node = node if node is not None else socket.gethostname()
    if not validNodeId(node):
        raise AuditExportError("--audit-syslog-node", node, "is not a node id",
                               "use 1 to 255 printable ASCII characters without spaces, "
                               'quotes, backslashes or "]"')
    identity = SyslogIdentity(node=node, hostname=socket.getfqdn() or "-",
                              procid=str(os.getpid()))
    message = _formatFor(format, identity, sourceId or node, siteId)
    endpoint = collectorEndpoint(reactor, collector, policyFile, emitter, clock)
    queue = DiskQueue(queueDir, queueBytes, argument="--audit-syslog-queue")
    feed = ExportFeed(queue, message, emitter, clock, collector)
    threads = reactor if IReactorThreads.providedBy(reactor) else None
    return AuditSyslogExport(endpoint, feed, writer, clock, threads=threads, **tuning)
