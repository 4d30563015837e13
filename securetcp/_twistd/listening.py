# -*- test-case-name: tests.test_listenfail -*-
"""
L{ListeningService}: the service of one listening endpoint of C{twistd
securetcp}.  Unlike Twisted's C{StreamServerEndpointService}, which logs
an C{Unhandled Error} and lets twistd run on with nothing listening, a
port that is taken or an interface that does not resolve ends the process
at start with status 1 and one line naming the endpoint (L{CannotListen})::

    ListeningService(endpoint, factory, "mtls:6661:...").setServiceParent(top)

A listen that fails later (after the reactor started, e.g. an endpoint
that resolves its interface asynchronously) is logged as that one line and
the process stops with status 1 as well.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from twisted.application import service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

_log = Logger(namespace="securetcp.tap")


class CannotListen(SystemExit):
    """
    An endpoint of C{twistd securetcp} cannot listen: the process ends with
    status 1 (a L{SystemExit}, so twistd prints no traceback and runs
    nothing).

    @ivar description: the endpoint string, as given (passphrases hidden).
    @ivar reason: why, as the operating system said.
    """

    def __init__(self, description: str, reason: str) -> None:
        super().__init__(1)
        self.description = description
        self.reason = reason

    def __str__(self) -> str:
        return f"securetcp: cannot listen on {self.description}: {self.reason}"


class ListeningService(service.Service):
    """
    Listen on C{endpoint} with C{factory} while running; refuse to run
    without listening.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory,
                 description: str, reactor: Any = None,
                 report: Optional[Callable[[str], None]] = None) -> None:
        """
        @param description: how the endpoint is named in the error (with
            any passphrase hidden).
        @param reactor: the reactor stopped when a listen fails after start
            (the global one by default).
        @param report: says the one line of a failure (by default, in the
            log and on standard error).
        """
        self.endpoint = endpoint
        self.factory = factory
        self.description = description
        self._reactor = reactor
        self._report = report or _report
        self.port: Optional[IListeningPort] = None
        self._listening: Optional[Deferred[IListeningPort]] = None
        self._waiting: list[Deferred[None]] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if self._listening is None:
            self._listen()

    def _listen(self) -> None:
        """
        Listen; a failure now raises L{CannotListen}, a failure later stops
        the reactor and ends the process with status 1.
        """
        now: list[Failure] = []
        starting = True

        def failed(failure: Failure) -> None:
            if starting:
                now.append(failure)
            else:
                self._failedLater(failure)

        self._listening = self.endpoint.listen(self.factory)
        self._listening.addCallbacks(self._listened, failed)
        starting = False
        if now:
            error = CannotListen(self.description, now[0].getErrorMessage())
            self._report(str(error))
            raise error

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def whenListening(self) -> Deferred[None]:
        """
        Fires once the port listens (at once if it does already).
        """
        if self.port is not None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def _failedLater(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        self._report(str(CannotListen(self.description, failure.getErrorMessage())))
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        reactor.stop()

    def stopService(self) -> Any:
        super().stopService()
        listening, self._listening = self._listening, None
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        if listening is not None:
            listening.cancel()
        return None


def _report(line: str) -> None:
    """
    Say why, once in the log (the log file of a daemon) and once on
    standard error (the terminal or the service manager's journal).
    """
    _log.critical("{error}", error=line)
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:  # pragma: no cover - no standard error at all
        pass
