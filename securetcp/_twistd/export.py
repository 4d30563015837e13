# -*- test-case-name: tests.test_tap_export -*-
"""
The audit export of C{twistd securetcp} (L{securetcp.auditexport}): its
options on the command line (C{--audit-syslog ...}) and in C{--config}
files (the same names as keys), checked the same way, and the service
added beside the audit file::

    settings = exportSettings({"audit-syslog": "tls://siem.example:6514", ...},
                              auditLog="/var/log/securetcp/audit.jsonl", fail=fail)
    addExport(top, reactor, settings)
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Callable, Dict, Mapping, NoReturn, Optional

import attrs

__all__ = ["EXPORT_KEYS", "EXPORT_PARAMETERS", "ExportSettings", "addExport",
           "exportSettings", "forWorker", "parseSize"]

#: The options, as C{twisted.python.usage} parameters.
EXPORT_PARAMETERS = [
    ["audit-syslog", None, None, "send the --audit-log records to this syslog collector: "
     "tls://HOST:PORT (RFC 5425) or tcp://HOST:PORT (a local relay)"],
    ["audit-syslog-policy", None, None, "client policy file (TOML: certKey, privateKey, "
     "caCerts, ...) for a tls:// collector"],
    ["audit-syslog-format", None, None, "json (the sealed record; the default) or atna "
     "(DICOM audit messages)"],
    ["audit-syslog-node", None, None, "node id the collector groups records by (default: "
     "the host name; one per audit file)"],
    ["audit-syslog-site", None, None, "with --audit-syslog-format atna: the "
     "AuditEnterpriseSiteID (hospital, department)"],
    ["audit-syslog-queue", None, None, "disk queue directory (default: AUDITLOG.export)"],
    ["audit-syslog-queue-size", None, None, "bound of the disk queue: bytes, or with K, M, "
     "G (default 64M)"],
]

#: The same as C{--config} keys, with their meaning.
EXPORT_KEYS: Dict[str, str] = {str(p[0]): str(p[3]) for p in EXPORT_PARAMETERS}

#: The keys whose value is a path (taken from a C{--config} file's directory).
_PATHS = ("audit-syslog-policy", "audit-syslog-queue")

_SIZE = re.compile(r"(\d+)\s*([kKmMgG]?)[bB]?\Z")

#: Called with the option, the problem and the fix; must raise.
Fail = Callable[[str, str, str], NoReturn]


@attrs.frozen
class ExportSettings:
    """
    The checked options of one export.
    """

    collector: str
    policy: Optional[str]
    format: str
    node: Optional[str]
    site: Optional[str]
    queue: str
    queueBytes: int
    auditLog: str


def parseSize(value: Any) -> int:
    """
    A size in bytes: a whole number, or one with C{K}, C{M} or C{G}.

    @raise ValueError: for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    found = _SIZE.match(str(value).strip())
    if found is None:
        raise ValueError(value)
    return int(found.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[
        found.group(2).lower()]


def exportSettings(values: Mapping[str, Any], auditLog: Optional[str], fail: Fail,
                   baseDir: Optional[str] = None) -> Optional[ExportSettings]:
    """
    The export's settings from the options (or C{--config} keys) in
    C{values}; C{None} without C{audit-syslog}.

    @param baseDir: a C{--config} file's directory, which its paths are
        taken from.
    """
    collector = values.get("audit-syslog")
    for key in EXPORT_KEYS:
        value = values.get(key)
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)
                                  or value == ""):
            fail(key, f"{value!r} is not a value", "write a non-empty string")
    if collector is None:
        for key in EXPORT_KEYS:
            if values.get(key) is not None:
                fail(key, "applies to the audit export only, which is off without "
                     "audit-syslog", "give the collector too (--audit-syslog on the command "
                     "line, audit-syslog in --config), or leave this out")
        return None
    if not auditLog:
        fail("audit-syslog", "exports the records of the audit file",
             "give the audit file too (--audit-log FILE, or audit-log in --config)")
    from securetcp.auditexport import FORMATS, parseCollector
    from securetcp.errors import AuditExportError

    try:
        parseCollector(str(collector))
    except AuditExportError as e:
        fail("audit-syslog", e.problem, e.fix)
    format = str(values.get("audit-syslog-format") or "json")
    if format not in FORMATS:
        fail("audit-syslog-format", f"unknown format {format!r}", "use " + " or ".join(FORMATS))
    try:
        size = parseSize(values.get("audit-syslog-queue-size") or "64M")
    except ValueError:
        fail("audit-syslog-queue-size", f"{values.get('audit-syslog-queue-size')!r} is not a "
             "size", "write bytes, or a number with K, M or G, e.g. 64M")
    paths = {key: _path(values.get(key), baseDir) for key in _PATHS}
    assert auditLog is not None
    site = values.get("audit-syslog-site")
    if site is not None and format != "atna":
        fail("audit-syslog-site", "applies to the atna format only",
             "give audit-syslog-format atna, or leave the site out")
    return ExportSettings(str(collector), paths["audit-syslog-policy"], format,
                          values.get("audit-syslog-node"), site,
                          paths["audit-syslog-queue"] or os.path.abspath(auditLog) + ".export",
                          size, auditLog)


def _path(value: Any, baseDir: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    return os.path.join(baseDir, str(value)) if baseDir else str(value)


def forWorker(settings: ExportSettings, index: int, auditLog: str) -> ExportSettings:
    """
    With C{--workers}, the export of worker C{index}: its own audit file
    C{auditLog} (C{FILE.worker-K}), as the node C{NODE/worker-K}, queued in
    C{QUEUE/worker-K} (by default C{FILE.worker-K.export}).
    """
    default = os.path.abspath(settings.auditLog) + ".export"
    queue = (os.path.abspath(auditLog) + ".export" if settings.queue == default
             else os.path.join(settings.queue, f"worker-{index}"))
    node = f"{settings.node or socket.gethostname()}/worker-{index}"
    return attrs.evolve(settings, auditLog=auditLog, node=node, queue=queue)


def addExport(top: Any, reactor: Any, settings: ExportSettings) -> Any:
    """
    Add the export to C{top} (a L{securetcp._twistd.service.SecureTCPService},
    which opens the audit file before its children start); with
    C{--workers}, the export of this worker's file (L{forWorker}).

    @raise AuditExportError: naming the option and the fix.
    """
    from securetcp.auditexport import auditSyslogExport

    if top.auditFields is not None:
        settings = forWorker(settings, top.auditFields["worker"], top.auditLog)

    export = auditSyslogExport(reactor, settings.auditLog, settings.collector,
                               policyFile=settings.policy, format=settings.format,
                               node=settings.node, siteId=settings.site,
                               queueDir=settings.queue,
                               queueBytes=settings.queueBytes, emitter=top.emitter)
    export.setServiceParent(top)
    return export
