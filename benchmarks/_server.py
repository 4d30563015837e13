"""
The Python servers under test, one per process (TLS echo servers, and
one plain-TCP proxy):

    python -m benchmarks._server MODE PORT PKIDIR [LOGDIR [BACKEND]]

MODE is one of:

  - C{twisted-ssl}: plain Twisted, the C{ssl:} endpoint string
    (C{CertificateOptions}), one-way TLS;
  - C{twisted-mtls}: plain Twisted C{CertificateOptions} requiring and
    verifying a client certificate against the benchmark CA;
  - C{securessl}: securetcp C{securessl:} (default profile);
  - C{mtls}: securetcp C{mtls:} with the CRL and the audit log observer
    (the full policy);
  - C{mtls-noaudit}: the same without the audit log observer;
  - C{mtls-tickets}: the full policy with C{resumption=tickets};
  - C{mtls-crl100k}: the full policy with a 100,000-entry CRL;
  - C{mtls-export}: the full policy with the audit export
    (L{securetcp.auditSyslogExport}) to the collector named by the
    C{SECURETCP_BENCH_SYSLOG} environment variable (C{tls://HOST:PORT}),
    as the client whose certificate is PKIDIR/client.pem
    (C{benchmarks/export_overhead.py});
  - C{tcp-splice}: no TLS at all: the splice of C{twistd securetcp
    terminate} from plain TCP to the plaintext echo backend on port
    C{BACKEND} (a fifth argument): what a proxy costs on Twisted's reactor
    before any TLS.

The others echo what they receive.  The twisted log goes to LOGDIR/server-MODE.log
at warning level and above (as a deployment would keep it); the audit chain
goes to LOGDIR/audit-MODE.jsonl.  The harness pins the process to one core.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict

from twisted.internet.protocol import Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:")


def endpointString(mode: str, port: int, pki: Dict[str, str], logDir: str) -> str:
    """
    The endpoint string a user would write for C{mode}.
    """
    base = (f"{port}:interface=127.0.0.1:certKey={_escape(pki['serverCert'])}"
            f":privateKey={_escape(pki['serverKey'])}")
    if mode == "twisted-ssl":
        return "ssl:" + base
    if mode == "securessl":
        return "securessl:" + base
    if mode.startswith("mtls"):
        crl = pki["crlBig"] if mode == "mtls-crl100k" else pki["crl"]
        text = f"mtls:{base}:caCerts={_escape(pki['ca'])}:crl={_escape(crl)}"
        if mode == "mtls-tickets":
            text += ":resumption=tickets"
        if mode != "mtls-noaudit":
            text += ":auditLog=" + _escape(os.path.join(logDir, f"audit-{mode}.jsonl"))
        return text
    raise ValueError(mode)


def _twistedMTLS(reactor: Any, port: int, pki: Dict[str, str]) -> Any:
    from twisted.internet.endpoints import SSL4ServerEndpoint
    from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    own = PrivateCertificate.loadPEM(read(pki["serverCert"]) + read(pki["serverKey"]))
    ca = Certificate.loadPEM(read(pki["ca"]))
    options = CertificateOptions(privateKey=own.privateKey.original,
                                 certificate=own.original, verify=True,
                                 caCerts=[ca.original], requireCertificate=True)
    return SSL4ServerEndpoint(reactor, port, options, interface="127.0.0.1")


def _startExport(reactor: Any, pkiDir: str, logDir: str, auditLog: str) -> None:
    from securetcp import auditSyslogExport

    policy = os.path.join(logDir, "syslog-client.toml")
    with open(policy, "w") as f:
        f.write(f'certKey = "{os.path.join(pkiDir, "client.pem")}"\n'
                f'privateKey = "{os.path.join(pkiDir, "client.key")}"\n'
                f'caCerts = "{os.path.join(pkiDir, "ca.pem")}"\n')
    auditSyslogExport(reactor, auditLog, os.environ["SECURETCP_BENCH_SYSLOG"],
                      policyFile=policy, node="bench",
                      queueDir=os.path.join(logDir, "export-queue")).startService()


def main(argv: list[str]) -> int:
    mode, port, pkiDir = argv[0], int(argv[1]), argv[2]
    logDir = argv[3] if len(argv) > 3 else pkiDir
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    logFile = open(os.path.join(logDir, f"server-{mode}.log"), "a")  # noqa: SIM115
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(logFile),
                              [LogLevelFilterPredicate(LogLevel.warn)])],
        redirectStandardIO=False)
    names = ("ca", "serverCert", "serverKey", "crl", "crlBig")
    files = ("ca.pem", "server.pem", "server.key", "ca.crl", "ca-big.crl")
    pki = {name: os.path.join(pkiDir, f) for name, f in zip(names, files, strict=True)}
    factory: Any = Factory.forProtocol(Echo)
    if mode == "twisted-mtls":
        endpoint = _twistedMTLS(reactor, port, pki)
    elif mode == "tcp-splice":
        from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint

        from securetcp._twistd.splice import SpliceFactory
        from securetcp.audit.emitter import AuditEmitter

        if len(argv) < 5 or not argv[4].isdigit():
            raise SystemExit("tcp-splice needs BACKEND, the echo backend's port, as its "
                             "fifth argument (python -m benchmarks._server tcp-splice PORT "
                             "PKIDIR LOGDIR BACKEND)")
        backend = int(argv[4])
        endpoint = TCP4ServerEndpoint(reactor, port, interface="127.0.0.1")
        factory = SpliceFactory(TCP4ClientEndpoint(reactor, "127.0.0.1", backend).connect,
                                f"tcp:127.0.0.1:{backend}", reactor, AuditEmitter())
    else:
        endpoint = serverFromString(reactor, endpointString(mode, port, pki, logDir))
    if mode == "mtls-export":
        _startExport(reactor, pkiDir, logDir, os.path.join(logDir, f"audit-{mode}.jsonl"))
    factory.noisy = False
    endpoint.listen(factory).addErrback(lambda f: (print(f, file=sys.stderr),
                                                   reactor.stop()))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
