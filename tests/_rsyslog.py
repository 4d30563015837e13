"""
rsyslog as a real syslog-over-TLS collector for the tests: the
configuration of C{docs/export.md} (read from the page, so the tests run
what the documentation shows), with the paths, port and address of a
test's temporary directory, run unprivileged with its own work directory
and pid file, started and stopped with the reactor.

    collector = RsyslogCollector(directory, pki.path("ca.pem"),
                                 pki.path("server.pem"), pki.path("server.key"))
    yield collector.start()
    ...
    collector.lines()          # what it wrote, one message a line
    yield collector.stop()
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SkipTest

from ._net import freePort
from ._peers import PeerProcess, sleep, waitUntil

RSYSLOGD: Optional[str] = shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
_DRIVERS = "/usr/lib/x86_64-linux-gnu/rsyslog"
_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")

#: What the line of a message in C{RSYSLOG_SyslogProtocol23Format} holds.
LINE = re.compile(r'<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) '
                  r'\[securetcp@32473 node="([^"]+)" seq="(\d+)" hash="([0-9a-f]{64})"\] (.*)\Z')


def documentedConfiguration(marker: str = "rsyslog-collector") -> str:
    """
    An rsyslog configuration of C{docs/export.md}: the first fenced block
    after the C{<!-- MARKER -->} line (C{rsyslog-collector}, C{rsyslog-relay}).
    """
    path = os.path.join(_DOCS, "export.md")
    if not os.path.exists(path):
        raise SkipTest(f"{path} is not available (docs are not next to the tests)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = re.search(rf"<!-- {marker} -->\n```text\n(.*?)```", text, re.S)
    assert found is not None, f"docs/export.md has no {marker} block"
    return found.group(1)


def needRsyslog(driver: str = "ossl") -> str:
    """
    The path of C{rsyslogd}; skip the test without it or its TLS driver.
    """
    if RSYSLOGD is None:
        raise SkipTest("rsyslogd is not installed (Debian: rsyslog)")
    module = f"lmnsd_{driver}.so"
    if not any(os.path.exists(os.path.join(d, module))
               for d in (_DRIVERS, "/usr/lib/rsyslog", "/usr/lib64/rsyslog")):
        raise SkipTest(f"rsyslog's {driver} TLS driver ({module}) is not installed")
    return RSYSLOGD


class RsyslogCollector:
    """
    One rsyslogd configured from the documentation, in C{directory}.

    @ivar port: its TLS port on 127.0.0.1 (kept across restarts).
    @ivar log: the file it writes the messages to.
    """

    def __init__(self, directory: str, caFile: str, certFile: str, keyFile: str,
                 driver: str = "ossl", authMode: str = "x509/certvalid",
                 permittedPeers: Tuple[str, ...] = ()) -> None:
        self.binary = needRsyslog(driver)
        self.driver = driver
        self.directory = os.path.abspath(directory)
        os.makedirs(os.path.join(self.directory, "work"), exist_ok=True)
        self.port = freePort()
        self.log = os.path.join(self.directory, "fleet.log")
        self.conf = os.path.join(self.directory, "rsyslog.conf")
        self.pidFile = os.path.join(self.directory, "rsyslogd.pid")
        self.process: Optional[PeerProcess] = None
        replacements: Dict[str, str] = {
            "/var/spool/rsyslog": os.path.join(self.directory, "work"),
            "/etc/rsyslog-tls/nodes-ca.pem": caFile,
            "/etc/rsyslog-tls/collector.pem": certFile,
            "/etc/rsyslog-tls/collector.key": keyFile,
            "/var/log/securetcp/fleet.log": self.log,
            'port="6514"': f'port="{self.port}"',
            'address="0.0.0.0"': 'address="127.0.0.1"',
            '"ossl"': f'"{driver}"',
            'authMode="x509/certvalid"': f'authMode="{authMode}"' + (
                " permittedPeer=[" + ", ".join(f'"{p}"' for p in permittedPeers) + "]"
                if permittedPeers else ""),
        }
        self.write(documentedConfiguration(), replacements)

    def write(self, text: str, replacements: Dict[str, str]) -> None:
        """
        Write the configuration C{text} with its documented values replaced.
        """
        for old, new in replacements.items():
            assert old in text, f"docs/export.md's rsyslog configuration lost {old}"
            text = text.replace(old, new)
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text)

    def relayTo(self, collector: RsyslogCollector, caFile: str, certFile: str,
                keyFile: str) -> None:
        """
        Make this rsyslogd the relay of C{docs/export.md} instead: plain TCP
        in on L{port}, forwarded over TLS to C{collector} (presenting
        C{certFile}, checking that the collector is C{localhost}).
        """
        self.write(documentedConfiguration("rsyslog-relay"), {
            "/var/spool/rsyslog-relay": os.path.join(self.directory, "work"),
            "/etc/rsyslog-tls/collector-ca.pem": caFile,
            "/etc/rsyslog-tls/relay.pem": certFile,
            "/etc/rsyslog-tls/relay.key": keyFile,
            'port="601"': f'port="{self.port}"',
            'target="siem.example" port="6514"': f'target="127.0.0.1" port="{collector.port}"',
            'streamDriverPermittedPeers="siem.example"': 'streamDriverPermittedPeers="localhost"',
            '"ossl"': f'"{self.driver}"',
        })

    def argv(self) -> List[str]:
        """
        The command line of rsyslogd in the foreground with this
        configuration (for a test that runs it without the reactor).
        """
        return [self.binary, "-n", "-f", self.conf, "-i", self.pidFile]

    @inlineCallbacks
    def start(self) -> Any:
        """
        Start rsyslogd in the foreground and wait until it listens.
        """
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.process = PeerProcess.spawn(self.argv(), env=env, timeout=120)
        yield waitUntil(lambda: self._listening() or not self.process.running, 10,
                        "rsyslogd to listen")
        if not self.process.running:
            raise AssertionError(f"rsyslogd did not start: {self.process.describe()}")

    def listening(self) -> bool:
        """
        Whether rsyslogd accepts connections on L{port}.
        """
        return self._listening()

    def _listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    @inlineCallbacks
    def stop(self) -> Any:
        """
        Stop rsyslogd (SIGTERM: it writes what it has received) and wait
        until it has exited.
        """
        process, self.process = self.process, None
        if process is None or not process.running:
            return
        process.transport.signalProcess(signal.SIGTERM)
        yield waitUntil(lambda: not process.running, 10, "rsyslogd to exit")
        yield sleep(0)

    def lines(self) -> List[str]:
        """
        The lines rsyslogd has written so far.
        """
        try:
            with open(self.log, encoding="utf-8") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def messages(self) -> List[Tuple[str, int, str, str]]:
        """
        Each line as C{(node, seq, msgid, msg)}; a line that is not one of
        the export's messages fails the test.
        """
        parsed = []
        for line in self.lines():
            found = LINE.match(line)
            assert found is not None, f"not an export message: {line!r}"
            parsed.append((found.group(7), int(found.group(8)), found.group(6),
                           found.group(10)))
        return parsed

    def unique(self) -> List[Tuple[str, int, str, str]]:
        """
        L{messages} without repeats (the same node, seq and message), as a
        collector-side verifier sees them: at least once becomes once.
        """
        seen, kept = set(), []
        for message in self.messages():
            if message not in seen:
                seen.add(message)
                kept.append(message)
        return kept

