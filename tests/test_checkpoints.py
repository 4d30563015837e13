# -*- test-case-name: tests.test_checkpoints -*-
"""
Tests for signed checkpoints (L{securetcp.audit.checkpoint},
L{securetcp.audit.anchor}) and the clean end of a chain: a writer signs
the head every N records, T seconds (timed by the scheduler it is given)
and at close; a verifier holding the public key checks them and finds a
chain rewritten before the last checkpoint; C{chain.closed} makes the next
start say C{restart}, its absence C{crash}; and a real C{twistd securetcp
terminate --audit-log F --audit-checkpoint-key K} killed with C{SIGKILL}
or stopped cleanly.
"""

from __future__ import annotations

import io
import json
import os
import signal
from typing import Any, Callable, Dict, List, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.trial.unittest import SynchronousTestCase

from securetcp._cli import main
from securetcp.audit.chain import seal
from securetcp.audit.checkpoint import (
    CheckpointChecker,
    CheckpointError,
    CheckpointSigner,
    checkpointMessage,
    loadCheckpointSigner,
)
from securetcp.audit.file import AuditFiles
from securetcp.audit.verify import verifyFiles
from securetcp.audit.writer import AuditLogObserver
from securetcp.errors import AuditLogError

from ._twistd import PEER_TIMEOUT, TapProcessMixin, auditRecords, blockUntil

NOON = 1793530800.0


def _accepted(n: int) -> Dict[str, Any]:
    return {"event": "connection.accepted", "time": "2026-11-01T10:00:00.000000Z",
            "connection": f"{n:016x}", "peer": f"127.0.0.1:{40000 + n}"}


def _closed(n: int) -> Dict[str, Any]:
    return dict(_accepted(n), event="connection.closed")


def _records(path: str) -> List[Dict[str, Any]]:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def _cli(*argv: str) -> Tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _writeKeys(directory: str, name: str) -> Tuple[str, str, Ed25519PrivateKey]:
    """
    An Ed25519 key pair as PEM files C{NAME.key} and C{NAME.pub}.
    """
    key = Ed25519PrivateKey.generate()
    private = os.path.join(directory, name + ".key")
    public = os.path.join(directory, name + ".pub")
    with open(private, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, key


class _Scheduled:
    """
    A writer's C{schedule}: remembers the calls, fired by the test.
    """

    def __init__(self) -> None:
        self.calls: List[Tuple[float, Callable[[], None], List[bool]]] = []

    def __call__(self, delay: float, call: Callable[[], None]) -> Any:
        cancelled = [False]
        self.calls.append((delay, call, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def fire(self) -> None:
        delay, call, cancelled = self.calls[-1]
        if not cancelled[0]:
            call()


class _Keys(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "audit.jsonl")
        self.keyFile, self.pubFile, self.key = _writeKeys(self.directory, "checkpoint")
        self.otherKeyFile, self.otherPubFile, self.otherKey = _writeKeys(self.directory, "other")
        self.clock = [NOON]
        self.scheduled = _Scheduled()

    def writer(self, **options: Any) -> AuditLogObserver:
        options.setdefault("checkpointKey", self.keyFile)
        writer = AuditLogObserver(self.path, fsync="off", now=lambda: self.clock[0],
                                  schedule=self.scheduled, **options)
        self.addCleanup(writer.close)
        return writer

    def checker(self, public: Any = None) -> CheckpointChecker:
        return CheckpointChecker(public=public or self.key.public_key())


class CheckpointTests(_Keys):
    """
    A writer with a checkpoint key signs the head of its chain.
    """

    def test_everyNRecords(self) -> None:
        """
        With C{checkpointEvery=3}, every third record is followed by a
        C{chain.checkpoint} that covers the record just before it, signed
        with Ed25519 by the given key.
        """
        writer = self.writer(checkpointEvery=3)
        for n in range(5):
            writer.write(_accepted(n))
        records = _records(self.path)
        self.assertEqual([r["event"] for r in records],
                         ["chain.started", "connection.accepted", "connection.accepted",
                          "chain.checkpoint", "connection.accepted", "connection.accepted",
                          "connection.accepted", "chain.checkpoint"])
        for index in (3, 7):
            checkpoint, covered = records[index], records[index - 1]
            self.assertEqual((checkpoint["coversSeq"], checkpoint["coversHash"]),
                             (covered["seq"], covered["hash"]))
            self.assertEqual((checkpoint["algorithm"], checkpoint["trigger"]),
                             ("ed25519", "count"))
            self.key.public_key().verify(
                bytes.fromhex(checkpoint["signature"]),
                checkpointMessage(covered["seq"], covered["hash"]))
        self.assertEqual(writer.lastCheckpoint["seq"], 8)

    def test_interval(self) -> None:
        """
        The first record a checkpoint is to cover times one
        C{checkpointInterval} seconds later; when it fires, a checkpoint
        (trigger C{interval}) is written with the writer's clock.
        """
        writer = self.writer(checkpointInterval=30.0)
        writer.write(_accepted(1))
        writer.write(_accepted(2))
        self.assertEqual([c[0] for c in self.scheduled.calls], [30.0])
        self.clock[0] += 30
        self.scheduled.fire()
        checkpoint = _records(self.path)[-1]
        self.assertEqual((checkpoint["event"], checkpoint["trigger"], checkpoint["coversSeq"]),
                         ("chain.checkpoint", "interval", 3))
        self.assertEqual(checkpoint["time"], "2026-11-01T11:00:30.000000Z")
        # nothing new to cover: no other checkpoint, no timer
        self.assertIsNone(writer.checkpoint())
        self.assertEqual(len(self.scheduled.calls), 1)

    def test_close(self) -> None:
        """
        Closing writes a last checkpoint (trigger C{shutdown}), then
        C{chain.closed}; reopening resumes with reason C{restart}.
        """
        writer = self.writer()
        writer.write(_accepted(1))
        writer.close()
        records = _records(self.path)
        self.assertEqual([r["event"] for r in records][-2:], ["chain.checkpoint", "chain.closed"])
        self.assertEqual(records[-2]["trigger"], "shutdown")
        again = self.writer()
        again.write(_closed(1))
        again.close()
        resumed = [r for r in _records(self.path) if r["event"] == "chain.resumed"]
        self.assertEqual([r["reason"] for r in resumed], ["restart"])
        result = verifyFiles([self.path], checker=self.checker())
        self.assertEqual(result.status, "complete", result.problems)
        self.assertEqual((result.checkpoints, result.checkpointsVerified), (2, 2))

    def test_hmacFallback(self) -> None:
        """
        A chain with an HMAC key and no checkpoint key gets checkpoints
        signed with HMAC-SHA256 under that key, checked by a verifier with
        the key.
        """
        key = b"chain secret"
        writer = self.writer(checkpointKey=None, key=key, checkpointEvery=2)
        writer.write(_accepted(1))
        writer.close()
        checkpoints = [r for r in _records(self.path) if r["event"] == "chain.checkpoint"]
        self.assertEqual([c["algorithm"] for c in checkpoints], ["hmac-sha256"])
        result = verifyFiles([self.path], key=key)
        self.assertTrue(result.ok, result.problems)
        self.assertEqual(result.checkpointsVerified, 1)
        self.assertRaises(CheckpointError, CheckpointChecker(hmacKey=b"other").check,
                          checkpoints[0])

    def test_noKeyNoCheckpoints(self) -> None:
        """
        A plain SHA-256 chain has no checkpoints, but still ends with
        C{chain.closed}.
        """
        writer = self.writer(checkpointKey=None, checkpointEvery=1)
        writer.write(_accepted(1))
        writer.close()
        self.assertEqual([r["event"] for r in _records(self.path)],
                         ["chain.started", "connection.accepted", "chain.closed"])

    def test_badKeyFile(self) -> None:
        """
        A checkpoint key that is not an Ed25519 private key is refused with
        an L{AuditLogError} naming the file.
        """
        ecKey = os.path.join(self.directory, "ec.key")
        with open(ecKey, "wb") as f:
            f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        for bad, text in ((ecKey, "is not an Ed25519 private key"),
                          (self.pubFile, "is not an unencrypted PEM private key"),
                          (ecKey + ".missing", "cannot read the checkpoint key")):
            error = self.assertRaises(AuditLogError, loadCheckpointSigner, bad)
            self.assertEqual(error.path, bad)
            self.assertIn(text, str(error))

    def test_auditFilesOptions(self) -> None:
        """
        L{AuditFiles.open} takes the checkpoint options; naming the file
        again with the same key gives the same writer, with another key an
        L{AuditLogError}.
        """
        files = AuditFiles()
        self.addCleanup(files.closeAll)
        writer = files.open(self.path, fsync="off", checkpointKey=self.keyFile,
                            checkpointEvery=7)
        self.assertEqual(writer.checkpointEvery, 7)
        self.assertIs(files.open(self.path, checkpointKey=self.key), writer)
        error = self.assertRaises(AuditLogError, files.open, self.path,
                                  checkpointKey=self.otherKeyFile)
        self.assertIn("checkpoint key ed25519:", str(error))


class VerifyCheckpointTests(_Keys):
    """
    A verifier holding the public key checks every checkpoint, and so finds
    a chain rewritten before its last checkpoint.
    """

    def setUp(self) -> None:
        super().setUp()
        writer = self.writer(checkpointEvery=3)
        for n in range(4):
            writer.write(_accepted(n))
        for n in range(4):
            writer.write(_closed(n))
        writer.close()
        self.records = _records(self.path)

    def test_verifiedWithPublicKey(self) -> None:
        """
        With the public key (C{--checkpoint-key}), every checkpoint verifies
        and the chain is intact and complete.
        """
        result = verifyFiles([self.path], checker=self.checker())
        self.assertEqual(result.status, "complete", result.problems)
        self.assertEqual(result.checkpointsVerified, result.checkpoints)
        self.assertGreaterEqual(result.checkpoints, 3)
        status, out = _cli("audit", "verify", "--checkpoint-key", self.pubFile, self.path)
        self.assertEqual(status, 0, out)
        self.assertIn(f"checkpoints: {result.checkpoints} ({result.checkpoints} signature(s) "
                      "verified)", out)

    def test_refusedWithAnotherKey(self) -> None:
        """
        With another public key, the first checkpoint is refused: it was
        signed by another key (exit status 1).
        """
        result = verifyFiles([self.path], checker=self.checker(self.otherKey.public_key()))
        self.assertFalse(result.ok)
        self.assertIn("not by the given public key", result.problems[0].message)
        status, out = _cli("audit", "verify", "--checkpoint-key", self.otherPubFile, self.path)
        self.assertEqual(status, 1, out)

    def test_forgedSignature(self) -> None:
        """
        A checkpoint that claims the right key id but was signed by another
        key does not verify.
        """
        record = next(r for r in self.records if r["event"] == "chain.checkpoint")
        forged = dict(record, signature=self.otherKey.sign(
            checkpointMessage(record["coversSeq"], record["coversHash"])).hex())
        error = self.assertRaises(CheckpointError, self.checker().check, forged)
        self.assertIn("does not verify", str(error))

    def rewrite(self, change: Callable[[List[Dict[str, Any]]], None],
                signer: Any = None) -> None:
        """
        Rewrite the chain as an attacker without the signing key would:
        C{change} the records, then renumber, re-hash and re-link all of
        them (checkpoints re-pointed at the new heads; re-signed only with
        C{signer}).
        """
        records = [{k: v for k, v in r.items() if k not in ("seq", "prev", "hash")}
                   for r in self.records]
        change(records)
        prev, lines = "0" * 64, []
        for seq, record in enumerate(records, 1):
            if record["event"] == "chain.checkpoint":
                record.update(coversSeq=seq - 1, coversHash=prev)
                if signer is not None:
                    record["signature"] = signer.sign(checkpointMessage(seq - 1, prev))
            line, prev = seal(record, seq, prev)
            lines.append(line)
        with open(self.path, "wb") as f:
            f.write(b"".join(lines))

    def test_rewriteBeforeCheckpoint(self) -> None:
        """
        Removing a record before the last checkpoint and recomputing the
        whole chain (which a bare hash chain cannot detect) breaks the
        checkpoints' signatures for a verifier with the public key.
        """
        self.rewrite(lambda records: records.pop(2))
        self.assertTrue(verifyFiles([self.path]).ok)  # without the key: undetectable
        result = verifyFiles([self.path], checker=self.checker())
        self.assertFalse(result.ok)
        self.assertIn("checkpoint: the signature does not verify", result.problems[0].message)
        self.assertEqual(_cli("audit", "verify", "--checkpoint-key", self.pubFile,
                              self.path)[0], 1)

    def test_rewriteWithoutCheckpoints(self) -> None:
        """
        A chain rewritten without its checkpoints is refused by a verifier
        holding the public key: it is not anchored.
        """
        self.rewrite(lambda records: records.__setitem__(slice(None), [
            r for r in records if r["event"] != "chain.checkpoint"]))
        result = verifyFiles([self.path], checker=self.checker())
        self.assertFalse(result.ok)
        self.assertIn("no checkpoint signed by the given public key",
                      result.problems[0].message)

    def test_rewriteResignedWithOwnKey(self) -> None:
        """
        An attacker who signs the rewritten chain with a key of their own is
        refused: the checkpoints are not signed by the operator's key.
        """
        self.rewrite(lambda records: records.pop(2),
                     signer=CheckpointSigner.ed25519(self.otherKey))
        result = verifyFiles([self.path], checker=self.checker())
        self.assertFalse(result.ok)

    def test_tailAfterCheckpoint(self) -> None:
        """
        Removing records after the last checkpoint is not seen from the
        file alone (the documented limit); the last checkpoint, copied
        elsewhere and given as C{--expect-head-file}, finds a cut before it.
        """
        lines = open(self.path, "rb").readlines()
        checkpoints = [i for i, r in enumerate(self.records) if r["event"] == "chain.checkpoint"]
        anchorFile = os.path.join(self.directory, "copied-checkpoints.jsonl")
        with open(anchorFile, "wb") as f:
            f.write(b"".join(lines[i] for i in checkpoints))
        with open(self.path, "wb") as f:
            f.write(b"".join(lines[:checkpoints[-1] + 1]))  # cut after the last checkpoint
        self.assertEqual(_cli("audit", "verify", "--checkpoint-key", self.pubFile,
                              self.path)[0], 0)
        status, out = _cli("audit", "verify", "--checkpoint-key", self.pubFile,
                           "--expect-head-file", anchorFile, self.path)
        self.assertEqual(status, 0, out)
        with open(self.path, "wb") as f:
            f.write(b"".join(lines[:checkpoints[-1]]))  # and the last checkpoint too
        status, out = _cli("audit", "verify", "--checkpoint-key", self.pubFile,
                           "--expect-head-file", anchorFile, self.path)
        self.assertEqual(status, 1, out)
        self.assertIn("records were removed from its end", out)


class RestartReasonTests(SynchronousTestCase):
    """
    C{chain.resumed} says C{restart} only after a clean close.
    """

    def test_crash(self) -> None:
        """
        A file whose writer never closed it (its lock given up as by a
        killed process) resumes with reason C{crash}; one closed cleanly
        with C{restart}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "audit.jsonl")
        crashed = AuditLogObserver(path, fsync="off")
        crashed.write(_accepted(1))
        crashed._unlock()  # the kernel drops a killed process's lock; nothing else happens
        second = AuditLogObserver(path, fsync="off")
        second.close()
        third = AuditLogObserver(path, fsync="off")
        third.close()
        self.assertEqual([r["reason"] for r in _records(path) if r["event"] == "chain.resumed"],
                         ["crash", "restart"])
        result = verifyFiles([path])
        self.assertEqual(result.completeness.restarts, {"crash": 1, "restart": 1})
        # the connection open at the crash never got its close record
        self.assertEqual(len(result.completeness.unclosed), 1)


class TwistdRestartTests(TapProcessMixin, SynchronousTestCase):
    """
    A real C{twistd -n securetcp terminate --audit-log F
    --audit-checkpoint-key K}: a clean stop ends the chain with a
    checkpoint and C{chain.closed}, so the next start resumes with
    C{restart}; after C{kill -9} the next start resumes with C{crash}.
    """

    def test_killAndCleanStop(self) -> None:
        """
        Clean stop, then C{restart}; C{kill -9}, then C{crash}; the whole
        chain verifies with the public key, and not with another key.
        """
        key, public, _ = _writeKeys(self.workdir, "checkpoint")
        _, otherPublic, _ = _writeKeys(self.workdir, "other")
        backendPort, backend, count = self.backend()

        def run(port: Any = None) -> Any:
            return self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                               "--audit-log", self.audit, "--audit-checkpoint-key", key,
                               "--audit-checkpoint-every", "3", listen=self.mtlsListen,
                               port=port)

        port, first = run()
        self.exchange(port, b"first")
        self.waitForEvent("connection.closed", 1)
        first.stop()
        self.assertEqual([r["event"] for r in auditRecords(self.audit)][-2:],
                         ["chain.checkpoint", "chain.closed"])

        port, second = run(port)
        self.assertEqual(self.waitForEvent("chain.resumed", 1)[0]["reason"], "restart")
        self.exchange(port, b"second")
        self.waitForEvent("connection.closed", 2)
        second.process.send_signal(signal.SIGKILL)
        second.process.wait(PEER_TIMEOUT)
        self.assertNotEqual(auditRecords(self.audit)[-1]["event"], "chain.closed")

        port, third = run(port)
        resumed = self.waitForEvent("chain.resumed", 2)
        self.assertEqual([r["reason"] for r in resumed], ["restart", "crash"])
        self.exchange(port, b"third")
        self.waitForEvent("connection.closed", 3)
        third.stop()
        blockUntil(lambda: auditRecords(self.audit)[-1]["event"] == "chain.closed",
                   PEER_TIMEOUT, "chain.closed")

        status, out = _cli("audit", "verify", "--checkpoint-key", public, self.audit)
        self.assertEqual(status, 0, out)
        self.assertIn("INTACT", out)
        result = verifyFiles([self.audit], checker=CheckpointChecker(
            public=serialization.load_pem_public_key(open(public, "rb").read())))
        self.assertGreaterEqual(result.checkpointsVerified, 3)
        self.assertEqual(_cli("audit", "verify", "--checkpoint-key", otherPublic,
                              self.audit)[0], 1)


class TwistdOptionsTests(SynchronousTestCase):
    """
    C{twistd securetcp}'s C{--audit-checkpoint-*} options.
    """

    def parse(self, *extra: str) -> Any:
        from securetcp._twistd.options import SecureTCPOptions

        options = SecureTCPOptions()
        options.parseOptions(["terminate", "--listen", "mtls:6661", "--backend",
                              "tcp:127.0.0.1:2575", *extra])
        return options.subOptions

    def test_defaults(self) -> None:
        """
        Without them, the writer gets the default numbers and no key.
        """
        from securetcp._twistd.options import auditOptions

        self.assertEqual(auditOptions(self.parse("--audit-log", "a.jsonl")),
                         {"checkpointKey": None, "checkpointEvery": 100,
                          "checkpointInterval": 60.0})

    def test_given(self) -> None:
        """
        The key file and numbers given reach the writer's options.
        """
        from securetcp._twistd.options import auditOptions

        sub = self.parse("--audit-log", "a.jsonl", "--audit-checkpoint-key", "k.pem",
                         "--audit-checkpoint-every", "5", "--audit-checkpoint-interval", "2.5")
        self.assertEqual(auditOptions(sub), {"checkpointKey": "k.pem", "checkpointEvery": 5,
                                             "checkpointInterval": 2.5})

    def test_refused(self) -> None:
        """
        A key without C{--audit-log}, or numbers out of range, are usage
        errors naming the option.
        """
        from twisted.python.usage import UsageError

        error = self.assertRaises(UsageError, self.parse, "--audit-checkpoint-key", "k.pem")
        self.assertIn("--audit-log", str(error))
        for bad in (["--audit-checkpoint-every", "0"], ["--audit-checkpoint-every", "x"],
                    ["--audit-checkpoint-interval", "0"]):
            error = self.assertRaises(UsageError, self.parse, "--audit-log", "a.jsonl", *bad)
            self.assertIn(bad[0], str(error))


class TwistdStopTests(TapProcessMixin, SynchronousTestCase):
    """
    A clean stop of C{twistd securetcp} writes the close records of the
    connections still open before it closes the chain.
    """

    def test_openConnectionClosedBeforeChain(self) -> None:
        """
        A client still connected when twistd is stopped (SIGTERM) gets its
        C{connection.closed} before C{chain.closed}: the chain is intact and
        complete.
        """
        backendPort, backend, count = self.backend()
        port, twistd = self.terminate(backendPort)
        peer = self.sClient(port)
        peer.send(b"still here\n")
        peer.waitFor(b"backend:still here\n", PEER_TIMEOUT, "the backend's answer")
        self.waitForEvent("connection.accepted", 1)
        twistd.stop()
        events = [r["event"] for r in auditRecords(self.audit)]
        self.assertEqual(events[-2:], ["connection.closed", "chain.closed"], events)
        status, out = _cli("audit", "verify", self.audit)
        self.assertEqual(status, 0, out)
        self.assertIn("INTACT", out)
