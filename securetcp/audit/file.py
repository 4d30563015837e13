# -*- test-case-name: tests.test_auditfiles,tests.test_auditlog -*-
"""
Who owns the audit files of a process: an L{AuditFiles} opens one
L{AuditLogObserver} (writer) per file and gives it to everyone who names
that file, so they share one chain::

    files = AuditFiles()
    writer = files.open("/var/log/securetcp/audit.jsonl", fsync="always")
    same = files.open("/var/log/securetcp/audit.jsonl")   # the same writer
    files.open("/var/log/securetcp/audit.jsonl", fsync="off")  # AuditLogError
    files.release(writer); files.release(same)            # the last one closes it

The rules:

  - one writer per file: naming a file again gives the writer that has it;
    a second writer for it (built directly, by another L{AuditFiles}, or in
    another process) fails at start, because a writer locks its file;
  - options are never ignored: every option a caller names must be what
    the writer was opened with, else L{AuditLogError} names the file and
    the fix; a caller that names none takes the writer as it is;
  - one event is written once, however many routes deliver it to the
    writer (the writer remembers the events it has written).

L{globalAuditFiles} is the one L{AuditFiles} of the process for what cannot
be given an owner: the C{auditLog=} argument of endpoint strings, C{twistd
--logger=securetcp.audit.twistdLogger}, the twistd service's
C{--audit-log}, and L{auditLogObserver}.  They share its writers, and an
L{securetcp.audit.emitter.AuditEmitter} that publishes to the global log
publisher (whose events reach those writers) consults them before letting
a connection through.  Writers still open when the process exits are
closed then.
"""

from __future__ import annotations

import atexit
import hmac
import json
import os
import threading
from typing import Any, Callable, Dict, List

from securetcp.audit.chain import ZERO_HASH, recordHash
from securetcp.audit.checkpoint import checkpointSigner
from securetcp.audit.writer import AuditLogObserver
from securetcp.errors import AuditLogError

__all__ = [
    "ZERO_HASH", "AuditFiles", "AuditLogObserver", "auditLogObserver", "globalAuditFiles",
    "readChain", "recordHash",
]

#: The options a writer is opened with (see L{auditLogObserver}).
OPTIONS = ("fsync", "fsyncInterval", "maxBytes", "daily", "onFailure", "key",
           "checkpointKey", "checkpointEvery", "checkpointInterval")


def _differs(name: str, have: Any, wanted: Any) -> bool:
    if name == "key":
        return not hmac.compare_digest(have or b"", wanted or b"")
    if name == "checkpointKey":
        return _keyId(have) != _keyId(wanted)
    return bool(have != wanted)


def _keyId(value: Any) -> Any:
    signer = checkpointSigner(value)
    return signer.keyId if signer is not None else None


def _shown(name: str, value: Any) -> str:
    if name == "key":
        return "an HMAC key" if value else "no HMAC key"
    if name == "checkpointKey":
        return f"checkpoint key {_keyId(value)}" if value is not None else "no checkpoint key"
    return f"{name}={value!r}"


class AuditFiles:
    """
    The owner of audit file writers: one L{AuditLogObserver} per file,
    shared by every caller that names it, closed when the last of them
    releases it.

    @param opener: builds a writer from a path and options.
    """

    def __init__(self, opener: Callable[..., AuditLogObserver] = AuditLogObserver) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._writers: Dict[str, AuditLogObserver] = {}
        self._users: Dict[str, int] = {}
        #: changes whenever a writer is added or removed (so that who
        #: consults L{writers} can keep the answer until it changes)
        self.generation = 0

    def open(self, path: str, **options: Any) -> AuditLogObserver:
        """
        The writer of C{path}: the one already open (after checking that
        every option named here is the one it has), or a new one.

        @param options: see L{auditLogObserver}.
        @raise AuditLogError: naming the file, if it cannot be used, is
            already open with other options, or another writer has it.
        @raise TypeError: for an option that does not exist.
        """
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"unknown audit log option(s) {', '.join(unknown)}; "
                            f"the options are {', '.join(OPTIONS)}")
        real = os.path.realpath(path)
        with self._lock:
            writer = self._writers.get(real)
            if writer is not None and writer.closed:
                # closed by its owner: a new writer resumes the chain
                del self._writers[real], self._users[real]
                self.generation += 1
                writer = None
            if writer is None:
                writer = self._opener(path, **options)
                self._writers[real], self._users[real] = writer, 0
                self.generation += 1
            else:
                self._checkSame(path, writer, options)
            self._users[real] += 1
            return writer

    @staticmethod
    def _checkSame(path: str, writer: AuditLogObserver, options: Dict[str, Any]) -> None:
        settings = writer.settings()
        for name, wanted in sorted(options.items()):
            if _differs(name, settings[name], wanted):
                raise AuditLogError(
                    os.path.abspath(path),
                    f"is already open in this process with {_shown(name, settings[name])}, "
                    f"not {_shown(name, wanted)}",
                    "give this file the same options everywhere it is named (one writer "
                    "serves them all), or use another file")

    def release(self, writer: AuditLogObserver) -> None:
        """
        One caller of L{open} is done with C{writer}; the last one closes it.
        """
        with self._lock:
            for real, known in list(self._writers.items()):
                if known is writer:
                    self._users[real] -= 1
                    if self._users[real] > 0:
                        return
                    del self._writers[real], self._users[real]
                    self.generation += 1
                    break
        writer.close()

    def writers(self) -> List[AuditLogObserver]:
        """
        The writers open now.
        """
        with self._lock:
            return [w for w in self._writers.values() if not w.closed]

    def closeAll(self) -> None:
        """
        Close every writer, whoever still uses it.
        """
        with self._lock:
            writers = list(self._writers.values())
            self._writers.clear()
            self._users.clear()
            self.generation += 1
        for writer in writers:
            writer.close()


#: The audit files of this process that have no other owner (see above).
globalAuditFiles = AuditFiles()
atexit.register(globalAuditFiles.closeAll)


def auditLogObserver(path: str, **options: Any) -> AuditLogObserver:
    """
    The writer of the audit file C{path}, from L{globalAuditFiles}: every
    caller naming the same file gets the same writer, so they share one
    chain and each event is written once.

    @param options: C{fsync} ("always", "interval" (default), "off"),
        C{fsyncInterval} (seconds, default 1.0), C{maxBytes}, C{daily},
        C{onFailure} ("refuse" (default) or "continue"), C{key} (bytes, for
        an HMAC-SHA256 chain), C{checkpointKey} (an Ed25519 private key, or
        the path of its PEM file, to sign C{chain.checkpoint} records with),
        C{checkpointEvery} (records, default 100), C{checkpointInterval}
        (seconds, default 60).  When the file is already open, each option
        named must be the one it was opened with.
    @raise AuditLogError: when the file cannot be used, or is already open
        with other options.
    """
    return globalAuditFiles.open(path, **options)


def readChain(path: str) -> List[Dict[str, Any]]:
    """
    Every record of one audit file (for tests and tools that trust it).
    """
    with open(path, "rb") as f:
        return [json.loads(line) for line in f if line.strip()]
