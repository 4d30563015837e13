# -*- test-case-name: tests.test_failclosed -*-
"""
Fail-closed auditing with real processes: C{twistd securetcp terminate}
whose audit file is on a small filesystem that fills up while real TLS
clients connect (every client that got a byte from the backend has its
C{connection.accepted} record, and every refusal is counted), and whose
backend is down (the client's connection is closed at once, nothing is left
in CLOSE-WAIT, and the close is recorded exactly once); audit logs that
cannot be used at start (one line naming the file and the fix); and
C{--workers} under concurrent clients (one whole-line chain per worker).

Only 127.0.0.1 is used; every wait is bounded; every process is stopped and
every filesystem mounted here is unmounted in cleanup.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from typing import Any, Dict, List, Optional, Tuple

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._twistd.service import _tagging
from securetcp._twistd.workers import workerAuditPath
from securetcp.audit.emitter import AuditEmitter
from securetcp.audit.file import globalAuditFiles
from securetcp.audit.writer import AuditLogObserver
from securetcp.errors import AuditLogError

from ._net import escape, freePort
from ._programs import TWISTD, subprocessEnvironment
from ._twistd import (
    PEER_TIMEOUT,
    START_TIMEOUT,
    TapProcessMixin,
    auditEvents,
    auditRecords,
    blockUntil,
)

#: How many clients at most try while the filesystem fills up.
CLIENTS = 400

#: How often the filesystem is filled up and freed again.
ROUNDS = 6

#: TCP state CLOSE_WAIT in /proc/net/tcp.
CLOSE_WAIT = "08"


def _mountTmpfs(test: SynchronousTestCase, size: str) -> str:
    """
    Mount a tmpfs of C{size} on a new directory, unmounted in cleanup.

    @raise SkipTest: where mounting is not permitted here.
    """
    mount = shutil.which("mount")
    if mount is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise SkipTest("mounting a small tmpfs needs root and mount(8); "
                       "the full-disk test runs where it is permitted (CI as root)")
    directory = os.path.abspath(test.mktemp())
    os.makedirs(directory)
    done = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        raise SkipTest("mounting a tmpfs is not permitted here: "
                       + done.stderr.decode("utf-8", "replace").strip())

    def unmount() -> None:
        done = subprocess.run(["umount", directory], capture_output=True, timeout=30)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", directory], capture_output=True, timeout=30)

    test.addCleanup(unmount)
    return directory


def _closeWaiting(port: int) -> List[str]:
    """
    The TCP connections in CLOSE-WAIT whose local port is C{port}.
    """
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == CLOSE_WAIT:
                found.append(line.strip())
    return found


def _tlsClient(pki: Any, port: int, line: bytes) -> Tuple[int, bytes]:
    """
    One TLS client (Python's ssl, with C{pki}'s client certificate): send
    C{line}, read until the backend's answer or the end.

    @return: its local port and what it received.
    """
    context = ssl.create_default_context(cafile=pki.path("ca.pem"))
    context.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
    received = b""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
    local = sock.getsockname()[1]
    try:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(line + b"\n")
            while not received.endswith(b"\n"):
                data = tls.recv(4096)
                if not data:
                    break
                received += data
    except (OSError, ssl.SSLError):
        pass
    finally:
        sock.close()
    return local, received


class FullDiskTests(TapProcessMixin, SynchronousTestCase):
    """
    The audit file of C{twistd securetcp terminate} on a 64 KB tmpfs that
    fills up while real clients connect.
    """

    def test_fullDisk(self) -> None:
        """
        While the filesystem holding the audit file is full, clients are
        refused (C{audit_unavailable}); every client that got a byte from
        the backend has a C{connection.accepted} record naming it; once
        space is freed clients are served again, and every refused client
        is accounted for: by its own C{handshake.rejected} record, or in
        the C{refused} count of a C{chain.gap} record.
        """
        mounted = _mountTmpfs(self, "64k")
        self.audit = os.path.join(mounted, "audit.jsonl")
        backendPort, _backend, _count = self.backend()
        port, twistd = self.terminate(backendPort)

        served: List[int] = []
        refused: List[int] = []
        n = 0
        for fill in range(ROUNDS):
            # fill the filesystem but for a few records' room, and connect
            # until clients are refused: each round ends a write at another
            # place in a page
            filler = os.path.join(mounted, f"filler-{fill}")
            room = os.statvfs(mounted)
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, room.f_bavail * room.f_frsize - 6 * 1024))
            refusedBefore = len(refused)
            while len(refused) - refusedBefore < 3 and n < CLIENTS:
                n += 1
                local, received = _tlsClient(self.pki, port, b"hello %d" % n)
                if received:
                    self.assertEqual(received, b"backend:hello %d\n" % n)
                    served.append(local)
                else:
                    refused.append(local)
            self.assertEqual(len(refused) - refusedBefore, 3,
                             f"the filesystem did not fill up after {CLIENTS} clients")
            os.unlink(filler)
            for _again in range(2):
                n += 1
                local, received = _tlsClient(self.pki, port, b"hello %d" % n)
                self.assertEqual(received, b"backend:hello %d\n" % n,
                                 "a client refused after space was freed")
                served.append(local)
        records = blockUntil(lambda: self._settled(served), PEER_TIMEOUT,
                             "the records of the last clients", twistd.describe)

        accepted = {r["peer"]: r for r in records if r["event"] == "connection.accepted"}
        for local in served:
            self.assertIn(f"127.0.0.1:{local}", accepted,
                          f"a client served with no connection.accepted record: {local}")
        rejections = [r for r in records if r["event"] == "handshake.rejected"]
        self.assertEqual({r["reason"] for r in rejections}, {"audit_unavailable"}
                         if rejections else set())
        gaps = [r for r in records if r["event"] == "chain.gap"]
        self.assertTrue(gaps)
        self.assertEqual(len(rejections) + sum(g["refused"] for g in gaps), len(refused),
                         (rejections, gaps))
        # intact, and incomplete: the chain says what it lost
        self.assertVerifies(self.audit, complete=False)

    def _settled(self, served: List[int]) -> Optional[List[Dict[str, Any]]]:
        """
        The audit records, once every served client's connection has its
        C{connection.accepted} record and the last one is closed.
        """
        records = auditRecords(self.audit)
        peers = {r["peer"] for r in records if r["event"] == "connection.accepted"}
        if records and records[-1]["event"] == "connection.closed" \
                and peers >= {f"127.0.0.1:{local}" for local in served[-2:]}:
            return records
        return None


class BackendDownTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate} whose backend cannot be reached.
    """

    def test_noCloseWait(self) -> None:
        """
        The client's connection is closed at once (it reads the server's
        close_notify and ends; the server reads the client's end): nothing
        is left in CLOSE-WAIT on the server's port.  The connection has one
        C{connection.accepted} and exactly one C{connection.closed} record,
        whose C{closeReason} names the backend; C{proxy.backend_failed}
        carries the same connection id.
        """
        backendPort = freePort()  # nothing listens there
        port, twistd = self.terminate(backendPort)
        peer = self.sClient(port)
        peer.send(b"hello\n")
        self.assertEqual(peer.waitExit(PEER_TIMEOUT), 0, peer.describe())
        [closed] = self.waitForEvent("connection.closed")
        blockUntil(lambda: not _closeWaiting(port), PEER_TIMEOUT,
                   "no connection in CLOSE-WAIT", lambda: "\n".join(_closeWaiting(port)))
        records = auditRecords(self.audit)
        [accepted] = [r for r in records if r["event"] == "connection.accepted"]
        [failed] = [r for r in records if r["event"] == "proxy.backend_failed"]
        self.assertEqual([r for r in records if r["event"] == "connection.closed"], [closed])
        self.assertEqual(failed["connection"], accepted["connection"])
        self.assertEqual(closed["connection"], accepted["connection"])
        self.assertIn(f"tcp:127.0.0.1:{backendPort}", closed["closeReason"])
        self.assertIn("could not be reached", closed["closeReason"])
        self.assertVerifies(self.audit)


class StartupErrorTests(TapProcessMixin, SynchronousTestCase):
    """
    An audit log that cannot be used stops C{twistd securetcp ...
    --audit-log F} and C{twistd web --listen ...:auditLog=F} at start with
    one line naming the file and the fix, never a traceback.
    """

    def assertOneLine(self, path: str, problem: str) -> None:
        """
        Both commands exit non-zero, their output has no traceback, and one
        line names C{path}, C{problem} and a fix.
        """
        listen = self.mtlsListen(freePort())[1]
        commands = {
            "terminate": [TWISTD, "-n", "--pidfile=", "securetcp", "terminate",
                          "--listen", listen, "--backend", f"tcp:127.0.0.1:{freePort()}",
                          "--audit-log", path],
            "web": [TWISTD, "-n", "--pidfile=", "web", "--listen",
                    f"{listen}:auditLog={escape(path)}", "--path", self.workdir],
        }
        for name, argv in commands.items():
            done = subprocess.run(argv, capture_output=True, timeout=START_TIMEOUT,
                                  env=subprocessEnvironment(), cwd=self.workdir)
            output = (done.stdout + done.stderr).decode("utf-8", "replace")
            self.assertNotEqual(done.returncode, 0, (name, output))
            self.assertNotIn("Traceback", output, name)
            [line] = [text for text in output.splitlines() if path in text]
            self.assertIn(problem, line, name)
            self.assertIn("fix:", line, name)

    def test_missingDirectory(self) -> None:
        """
        The directory of the audit file does not exist.
        """
        self.assertOneLine(os.path.join(self.workdir, "missing", "audit.jsonl"),
                           "the directory does not exist")

    def test_directory(self) -> None:
        """
        The audit file is a directory.
        """
        path = os.path.join(self.workdir, "adir")
        os.makedirs(path)
        self.assertOneLine(path, "is a directory")

    def test_garbage(self) -> None:
        """
        The audit file holds something that is not an audit chain.
        """
        path = os.path.join(self.workdir, "garbage.jsonl")
        with open(path, "wb") as f:
            f.write(b"this is not an audit record\n")
        self.assertOneLine(path, "does not verify")

    def test_immutable(self) -> None:
        """
        The audit file is immutable (C{chattr +i}).
        """
        path = os.path.join(self.workdir, "immutable.jsonl")
        open(path, "wb").close()
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", path],
                                            capture_output=True).returncode != 0:
            raise SkipTest("chattr +i is not possible here (needs root and a filesystem "
                           "with the immutable attribute)")
        self.addCleanup(subprocess.run, [chattr, "-i", path], capture_output=True)
        self.assertOneLine(path, "Operation not permitted")

    def test_fullDisk(self) -> None:
        """
        The filesystem of the audit file is full.
        """
        mounted = _mountTmpfs(self, "16k")
        with open(os.path.join(mounted, "filler"), "wb") as f:
            try:
                f.write(b"\0" * 65536)
            except OSError:
                pass
        self.assertOneLine(os.path.join(mounted, "audit.jsonl"), "No space left on device")


class WorkersTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp terminate --workers 2 --audit-log F} under
    concurrent clients: one file per worker, each with one writer.
    """

    def test_concurrentClients(self) -> None:
        """
        Clients connecting at once, spread over both workers, leave two
        files, C{F.worker-0} and C{F.worker-1} (no unsuffixed one): every
        line of each is a whole JSON record (no line torn by concurrent
        writers), each chain verifies on its own, every client has one
        C{connection.accepted} and one C{connection.closed} record in one
        of them, and while the workers run no other writer can open their
        files (each is locked by its one writer).
        """
        backendPort, _backend, _count = self.backend()
        port, twistd = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                                   "--audit-log", self.audit, "--workers", "2",
                                   listen=self.mtlsListen)
        pattern = re.compile(rb"worker 1 \(pid \d+\): [^\n]*starting on %d" % port)
        blockUntil(lambda: pattern.search(twistd.out + twistd.err), START_TIMEOUT,
                   "worker 1 to listen", twistd.describe)
        paths = [workerAuditPath(self.audit, k) for k in (0, 1)]

        served: List[int] = []
        failures: List[str] = []

        def clients(first: int) -> None:
            for n in range(first, first + 6):
                local, received = _tlsClient(self.pki, port, b"c%d" % n)
                if received == b"backend:c%d\n" % n:
                    served.append(local)
                else:
                    failures.append(f"client {n}: {received!r}")

        threads = [threading.Thread(target=clients, args=(k * 6,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PEER_TIMEOUT * 6)
        self.assertEqual(failures, [])
        self.assertEqual(len(served), 48)
        for path in paths:
            with self.assertRaises(AuditLogError) as raised:
                AuditLogObserver(path)
            self.assertIn("another audit log writer", str(raised.exception))

        def recorded() -> Optional[Dict[str, int]]:
            counts = {"connection.accepted": 0, "connection.closed": 0}
            for path in paths:
                for record in auditRecords(path):
                    if record["event"] in counts:
                        counts[record["event"]] += 1
            return counts if set(counts.values()) == {48} else None

        blockUntil(recorded, PEER_TIMEOUT, "every client's records", twistd.describe)
        twistd.stop()
        self.assertFalse(os.path.exists(self.audit), "no unsuffixed audit file with workers")
        peers: List[str] = []
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            self.assertTrue(data.endswith(b"\n"), path)
            for line in data.split(b"\n")[:-1]:
                record = json.loads(line)
                if record["event"] == "connection.accepted":
                    peers.append(record["peer"])
            self.assertVerifies(path)
        self.assertEqual(sorted(peers), sorted(f"127.0.0.1:{p}" for p in served))
        self.assertTrue(all(auditEvents(p, "connection.accepted") for p in paths),
                        "not both workers accepted connections")


class _Breakable:
    """
    What a writer opens its file with: real files whose writes fail with
    ENOSPC while L{broken} is true.
    """

    broken = False

    def __call__(self, path: str, mode: str) -> Any:
        real = open(path, mode)  # noqa: SIM115
        opener = self

        class File:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def write(self, data: bytes) -> int:
                if opener.broken:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return int(real.write(data))

        return File()


class WorkerTaggingTests(SynchronousTestCase):
    """
    The twistd service's tagging observer (each worker's records carry
    C{worker} and C{pid}) keeps the fail-closed check working.
    """

    def test_taggedRecordIsAsked(self) -> None:
        """
        The writer behind the tagging observer writes the emitted record
        itself, tagged: the emitter can ask it whether that record was
        written, and so learns that it was not when the file fails (the
        gate then refuses the connection).
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        disk = _Breakable()
        # as twistd securetcp --workers wires it: the writer is one of the
        # process's audit files, reached through the global log publisher
        # by the tagging observer only
        self.patch(globalAuditFiles, "_opener",
                   lambda path, **options: AuditLogObserver(path, openFile=disk, **options))
        writer = globalAuditFiles.open(os.path.join(directory, "audit.jsonl"))
        self.addCleanup(globalAuditFiles.release, writer)
        tagged = _tagging(writer, {"worker": 1, "pid": 4242})
        globalLogPublisher.addObserver(tagged)
        self.addCleanup(globalLogPublisher.removeObserver, tagged)
        emitter = AuditEmitter()
        self.assertIn(writer, emitter.consulted())
        record = {"event": "connection.accepted", "connection": "00" * 8}
        self.assertTrue(emitter.emit(record))
        self.assertEqual((record["worker"], record["pid"]), (1, 4242))
        self.assertIs(writer.wrote(record), True)
        disk.broken = True
        failed = {"event": "connection.accepted", "connection": "01" * 8}
        self.assertFalse(emitter.emit(failed))
        self.assertIs(writer.wrote(failed), False)
