# -*- test-case-name: tests.test_tap_config -*-
"""
A worker process of C{twistd securetcp --workers N}; started by
L{securetcp._twistd.workers.WorkerSupervisor}, never by hand:

    python -m securetcp._twistd.worker '{"worker": 1, "workers": 2, "argv": [...], "fds": [3]}'

It builds the same service as the parent from the same C{securetcp}
arguments, but adopts the inherited listening descriptors instead of
binding, writes its own audit chain, logs plain lines to standard output
(the parent relays them into its log) and stops when its standard input
(a pipe from the parent) closes or on SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, List, Optional

from twisted.internet.interfaces import IReadDescriptor
from twisted.python import usage
from zope.interface import implementer


@implementer(IReadDescriptor)
class _ParentWatch:
    """
    Reads the worker's standard input; its end means the parent is gone.
    """

    def __init__(self, onGone: Any) -> None:
        self._onGone = onGone

    def fileno(self) -> int:
        return 0

    def doRead(self) -> Any:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            from twisted.internet.main import CONNECTION_DONE

            return CONNECTION_DONE
        return None

    def connectionLost(self, reason: Any) -> None:
        self._onGone()

    def logPrefix(self) -> str:
        return "parent"


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    from twisted.internet import fdesc, reactor
    from twisted.logger import eventAsText, globalLogBeginner

    from securetcp._twistd import tap as _tap
    from securetcp._twistd.workers import WorkerRole

    def plain(event: Any) -> None:
        text = eventAsText(event, includeTimestamp=False, includeSystem=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    globalLogBeginner.beginLoggingTo([plain], redirectStandardIO=False)  # type: ignore[list-item]
    try:
        options = _tap.Options(build=False, worker=WorkerRole(
            int(spec["worker"]), int(spec["workers"]), [int(fd) for fd in spec["fds"]]))
        options.parseOptions(spec["argv"])
        top = _tap.makeService(options, reactor)
    except (usage.UsageError, ValueError) as e:
        print(f"securetcp worker {spec.get('worker')}: {e}", file=sys.stderr)
        return 1

    def parentGone() -> None:
        if reactor.running:  # type: ignore[attr-defined]
            reactor.stop()  # type: ignore[attr-defined]

    fdesc.setNonBlocking(0)
    reactor.addReader(_ParentWatch(parentGone))  # type: ignore[attr-defined]
    reactor.callWhenRunning(top.startService)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
