# -*- test-case-name: tests.test_tap,tests.test_tap_config -*-
"""
The command line of C{twistd securetcp}: a mode (C{terminate}, C{originate},
C{serve}, C{demo}) with its options, or C{--config FILE}.  Parsing only;
L{securetcp._twistd.tap.Options} builds the service as twistd parses::

    options = SecureTCPOptions()
    options.parseOptions(["terminate", "--listen", "mtls:6661:...",
                          "--backend", "tcp:127.0.0.1:2575"])
    options.subCommand, options.subOptions["listen"]

C{ssl:} is accepted as an alias of C{securessl:} (L{secureString}).
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, NoReturn, Optional, Sequence

from twisted.python import usage

from securetcp._twistd.export import EXPORT_PARAMETERS

#: What C{twistd securetcp --help} says after the options, wrapped.
LONGDESC = ("Put TLS in front of (or behind) any plaintext TCP service.  ssl: is accepted "
            "as an alias of securessl: here.  SIGHUP re-reads certificates, keys, CAs, CRLs "
            "and policy files and swaps them in for new connections; a reload that fails "
            "keeps the running configuration.  Run twistd securetcp MODE --help for a "
            "mode's options.")

#: The examples C{twistd securetcp --help} shows, one a line, as they are.
EXAMPLES = (
    'twistd -n securetcp terminate --listen "mtls:6661:certKey=server.pem:'
    'privateKey=server.key:caCerts=devices-ca.pem" --backend tcp:127.0.0.1:2575 '
    '--audit-log audit.jsonl',
    'twistd -n securetcp originate --listen tcp:2576:interface=127.0.0.1 --connect '
    '"mtls:host=hl7.example:port=6661:caCerts=ca.pem:certKey=device.pem:privateKey=device.key"',
    'twistd -n securetcp serve --listen "mtls:6661:..." --app mypackage.hl7:factory',
    "twistd -n securetcp demo",
    "twistd -n securetcp --config /etc/securetcp/listeners.toml",
    "twistd -n securetcp terminate --workers 4 --listen ... --backend ...",
)


class JobError(Exception):
    """
    A problem with one option of a job (C{listen}, C{backend}, C{app},
    ...); reported as C{--OPTION: ...} on the command line and with the
    file, listener and key for C{--config}.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def secureString(description: str, policyFile: Optional[str], auditLog: Optional[str],
                  key: str = "listen") -> str:
    """
    Accept C{ssl:} as an alias of C{securessl:}; add C{policy=} from
    C{--policy} unless the string names one.
    """
    if description.startswith("ssl:"):
        description = "securessl:" + description[len("ssl:"):]
    if not description.startswith(("securessl:", "mtls:")):
        raise JobError(key,
                        f"{description!r} is not a securessl: or mtls: endpoint string "
                        "(the TLS side must be one)")
    if policyFile and ":policy=" not in description:
        description += ":policy=" + policyFile.replace(":", "\\:")
    return description


def _idleTimeoutOption(options: usage.Options) -> None:
    from securetcp._twistd.config import checkIdleTimeout

    def fail(problem: str, fix: str) -> NoReturn:
        raise usage.UsageError(f"--idle-timeout: {problem} ({fix})")

    options["idle-timeout"] = checkIdleTimeout(options["idle-timeout"], fail)


def _workersOption(options: usage.Options) -> None:
    from securetcp._twistd.config import checkWorkers

    def fail(problem: str, fix: str) -> NoReturn:
        raise usage.UsageError(f"--workers: {problem} ({fix})")

    options["workers"] = checkWorkers(options["workers"], fail)


def _checkpointOptions(options: usage.Options) -> None:
    if not options["audit-checkpoint-key"]:
        for name in ("audit-checkpoint-every", "audit-checkpoint-interval"):
            if options[name] is not None:
                raise usage.UsageError(f"--{name} applies to signed checkpoints only: give "
                                       "--audit-checkpoint-key FILE too, or leave it out")
    try:
        options["audit-checkpoint-every"] = int(options["audit-checkpoint-every"] or 100)
        options["audit-checkpoint-interval"] = float(options["audit-checkpoint-interval"] or 60)
        if options["audit-checkpoint-every"] < 1 or options["audit-checkpoint-interval"] <= 0:
            raise ValueError
    except ValueError:
        raise usage.UsageError("--audit-checkpoint-every must be a whole number of records "
                               "(at least 1), --audit-checkpoint-interval a number of seconds "
                               "(more than 0)") from None
    if options["audit-checkpoint-key"] and not options["audit-log"]:
        raise usage.UsageError("--audit-checkpoint-key signs the chain of --audit-log: "
                               "give --audit-log FILE too")


def _exportOptions(options: usage.Options) -> None:
    from securetcp._twistd.export import exportSettings

    def fail(key: str, problem: str, fix: str) -> NoReturn:
        raise usage.UsageError(f"--{key}: {problem} ({fix})")

    options["export"] = exportSettings(options, options["audit-log"], fail)


def auditOptions(options: usage.Options) -> Dict[str, Any]:
    """
    The options of the C{--audit-log} writer given by C{--audit-checkpoint-*}.
    """
    return {"checkpointKey": options["audit-checkpoint-key"],
            "checkpointEvery": options["audit-checkpoint-every"],
            "checkpointInterval": options["audit-checkpoint-interval"]}


class _CommonOptions(usage.Options):
    optParameters = [
        ["policy", None, None, "TOML policy file for the TLS side"],
        ["audit-log", None, None, "write audit records to this file as a hash chain "
         "(with --workers, one file per worker: FILE.worker-K)"],
        ["audit-checkpoint-key", None, None, "sign checkpoints of the audit chain with this "
         "Ed25519 private key (PEM file)"],
        ["audit-checkpoint-every", None, None, "records between audit checkpoints (default "
         "100)"],
        ["audit-checkpoint-interval", None, None, "seconds from the first record a checkpoint "
         "is to cover to that checkpoint (default 60)"],
        ["idle-timeout", None, "0", "close connections idle for this many seconds (0: never)"],
        ["workers", None, "1", "processes sharing the listening socket (default 1)"],
        ["watch", None, "5", "seconds between checks of the certificate, key, CA, CRL and "
         "policy files for changes, which reload them like SIGHUP (0: only on SIGHUP)"],
        ["expiry-warn", None, "30,7,1", "warn (audit and log), at start and daily, when a "
         "certificate, CA or CRL expires within these many days (0: never)"],
        ["metrics", None, None, "serve Prometheus /metrics, /healthz and /readyz on this "
         "endpoint string, e.g. tcp:9464:interface=127.0.0.1 (may be securessl: or mtls:); "
         "with --workers, of every worker"],
        *EXPORT_PARAMETERS,
    ]

    def postOptions(self) -> None:
        _idleTimeoutOption(self)
        try:
            self["watch"] = float(self["watch"])
            if self["watch"] < 0:
                raise ValueError
        except ValueError:
            raise usage.UsageError("--watch must be a number of seconds (0: off)") from None
        _checkpointOptions(self)
        _workersOption(self)
        from securetcp.compliance.expiry import parseThresholds

        try:
            self["expiry-warn"] = parseThresholds(self["expiry-warn"])
        except ValueError as e:
            raise usage.UsageError(f"--expiry-warn: {e}") from None
        _exportOptions(self)


class TerminateOptions(_CommonOptions):
    synopsis = "--listen SECURE_ENDPOINT --backend PLAIN_ENDPOINT"
    longdesc = "Accept TLS (securessl: or mtls:) and forward plaintext to a backend."
    optParameters = [
        ["listen", "l", None, "securessl: or mtls: server endpoint string"],
        ["backend", "b", None, "plaintext client endpoint string, e.g. tcp:127.0.0.1:2575"],
        ["backend-proxy", None, None,
         "send the backend a PROXY header first, with the client's address and verified "
         "certificate: v2 (the backend must accept it from securetcp only)"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "backend"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")
        from securetcp._twistd.backendproxy import checkBackendProxy

        try:
            checkBackendProxy(self["backend-proxy"])
        except ValueError as e:
            raise usage.UsageError(f"--backend-proxy: {e}") from None


class OriginateOptions(_CommonOptions):
    synopsis = "--listen PLAIN_ENDPOINT --connect SECURE_ENDPOINT"
    longdesc = "Accept plaintext locally and connect out over TLS (securessl: or mtls:)."
    optParameters = [
        ["listen", "l", None, "plaintext server endpoint string, e.g. tcp:2576:interface=127.0.0.1"],
        ["connect", "c", None, "securessl: or mtls: client endpoint string"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "connect"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")


class ServeOptions(_CommonOptions):
    synopsis = "--listen SECURE_ENDPOINT --app MODULE:FACTORY"
    longdesc = "Run an application protocol factory, unchanged, behind the policy endpoint."
    optParameters = [
        ["listen", "l", None, "securessl: or mtls: server endpoint string"],
        ["app", "a", None, "package.module:name of a protocol factory (or a callable returning one)"],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for required in ("listen", "app"):
            if not self[required]:
                raise usage.UsageError(f"--{required} is required")


class DemoOptions(usage.Options):
    longdesc = ("An mTLS echo server under the NIST profile with a development CA and "
                "certificates (development only), an audit log, and the client commands.")
    optParameters = [
        ["dir", None, "securetcp-demo", "state directory for the development PKI and audit log"],
        ["port", None, "6661", "port on 127.0.0.1"],
        ["workers", None, "1", "processes sharing the listening socket (default 1)"],
    ]

    def postOptions(self) -> None:
        _workersOption(self)


class SecureTCPOptions(usage.Options):
    synopsis = "(terminate|originate|serve|demo) [options] | --config FILE [--workers N]"
    longdesc = LONGDESC
    optParameters = [
        ["config", None, None, "TOML file with several listeners (instead of a mode)"],
        ["workers", None, None, "with --config: processes sharing the listening sockets "
         "(overrides the file's workers)"],
    ]
    subCommands = [
        ["terminate", None, TerminateOptions, "TLS in front of a plaintext backend"],
        ["originate", None, OriginateOptions, "plaintext in, TLS out"],
        ["serve", None, ServeOptions, "an application factory behind TLS"],
        ["demo", None, DemoOptions, "mTLS echo demo with a development PKI"],
    ]

    def __init__(self, worker: Any = None) -> None:
        """
        @param worker: in a worker process, its
            L{securetcp._twistd.workers.WorkerRole}.
        """
        super().__init__()
        #: the arguments after C{securetcp}, which worker processes parse again
        self.argv: List[str] = []
        self.worker = worker

    def parseOptions(self, options: Optional[Sequence[str]] = None) -> None:
        """
        Parse C{options}; a problem is a L{usage.UsageError}.  Under twistd
        (when this is twistd's subcommand), a problem is instead printed as
        one line to standard error, followed by where the help is, and
        twistd exits with status 1: twistd itself would print all of its
        help before the message.
        """
        self.argv = list(sys.argv[1:] if options is None else options)
        try:
            super().parseOptions(options)  # type: ignore[arg-type]
        except usage.UsageError as e:
            if self.parent is None:
                raise
            command = " ".join(["twistd securetcp"] + ([self.subCommand]
                                                        if self.subCommand else []))
            sys.stderr.write(f"{command}: {e}\nRun '{command} --help' for the options.\n")
            sys.stderr.flush()
            raise SystemExit(1) from None

    def getSynopsis(self) -> str:
        """
        The usage line: as a mode's parent, only the words before the mode
        (the mode's own synopsis follows).
        """
        if self.subCommand is None:
            return super().getSynopsis()
        if self.parent is None:
            return "Usage: twistd [options] securetcp"
        return f"{self.parent.getSynopsis()} {self.parent.subCommand}"

    def getUsage(self, width: Optional[int] = None) -> str:
        """
        The options, the description and the modes, then the examples one
        a line (Twisted wraps the description into one paragraph).
        """
        text = super().getUsage(width)
        if hasattr(self, "subOptions"):
            return text
        return text + "\nExamples:\n" + "".join(f"  {e}\n" for e in EXAMPLES)

    def postOptions(self) -> None:
        if self["config"] is not None:
            if self.subCommand is not None:
                raise usage.UsageError(f"--config replaces the mode: give either --config "
                                       f"FILE or {self.subCommand} with its options")
            if self["workers"] is not None:
                _workersOption(self)
        elif self.subCommand is None:
            raise usage.UsageError("give a mode: terminate, originate, serve or demo, "
                                   "or --config FILE")
        elif self["workers"] is not None:
            raise usage.UsageError(f"--workers goes after the mode: securetcp "
                                   f"{self.subCommand} --workers N ...")
