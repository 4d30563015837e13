# -*- test-case-name: tests.test_sdnotify -*-
"""
The systemd notify protocol (C{sd_notify(3)}) without libsystemd: one
datagram of C{KEY=VALUE} lines to the C{AF_UNIX} socket named by
C{NOTIFY_SOCKET} (a path, or an abstract socket written with a leading
C{@}).  C{twistd securetcp} says C{READY=1} once every listener listens,
C{RELOADING=1} (with C{MONOTONIC_USEC}, as C{Type=notify-reload} requires)
then C{READY=1} around a reload, C{STOPPING=1} at shutdown, and
C{WATCHDOG=1} every half C{WATCHDOG_USEC} when systemd asks for it::

    notifier = SystemdNotifier.fromEnvironment(os.environ)
    if notifier is not None:
        notifier.notify(READY="1", STATUS="listening")
        notifier.watchdogInterval    # seconds between WATCHDOG=1, or None

Outside systemd (no C{NOTIFY_SOCKET}) there is no notifier and nothing is
sent.  L{SystemdLifecycle} is what the twistd service runs while it runs:
C{READY=1} once its listeners listen, the watchdog, C{STOPPING=1}.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterable, Mapping, Optional

import attrs
from twisted.internet.defer import gatherResults
from twisted.internet.task import LoopingCall

from securetcp._twistd.listening import ListeningService


def notifyMessage(**fields: str) -> bytes:
    """
    The datagram that says C{fields}, one C{KEY=VALUE} line each, in order.

    @raise ValueError: a value with a newline (it would say another field).
    """
    lines = []
    for key, value in fields.items():
        if "\n" in value or "\n" in key or "=" in key:
            raise ValueError(f"sd_notify field {key!r} cannot carry {value!r}")
        lines.append(f"{key}={value}\n")
    return "".join(lines).encode("utf-8")


def socketAddress(notifySocket: str) -> str:
    """
    The C{AF_UNIX} address of a C{NOTIFY_SOCKET} value: a leading C{@}
    names an abstract socket (a leading NUL byte).
    """
    if notifySocket.startswith("@"):
        return "\0" + notifySocket[1:]
    return notifySocket


def watchdogSeconds(environ: Mapping[str, str], pid: int) -> Optional[float]:
    """
    Seconds between two C{WATCHDOG=1}: half of C{WATCHDOG_USEC}, when it is
    set (and C{WATCHDOG_PID}, if set, is C{pid}); otherwise C{None}.
    """
    usec = environ.get("WATCHDOG_USEC")
    watchdogPid = environ.get("WATCHDOG_PID")
    if not usec or (watchdogPid and watchdogPid != str(pid)):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


def monotonicUsec() -> str:
    """
    C{CLOCK_MONOTONIC} now in microseconds, as C{MONOTONIC_USEC} wants it.
    """
    return str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)


@attrs.define
class SystemdNotifier:
    """
    Sends notify datagrams to one C{NOTIFY_SOCKET}.  A datagram that cannot
    be sent is dropped (systemd may have gone): the service runs on.

    @ivar address: the socket's C{AF_UNIX} address.
    @ivar watchdogInterval: seconds between C{WATCHDOG=1}, or C{None}.
    @ivar monotonic: C{MONOTONIC_USEC} now (a parameter for the tests).
    """

    address: str
    watchdogInterval: Optional[float] = None
    monotonic: Callable[[], str] = monotonicUsec

    @classmethod
    def fromEnvironment(cls, environ: Mapping[str, str]) -> Optional[SystemdNotifier]:
        """
        The notifier C{environ} asks for, or C{None} outside systemd.
        """
        notifySocket = environ.get("NOTIFY_SOCKET")
        if not notifySocket or notifySocket[0] not in "/@":
            return None
        return cls(socketAddress(notifySocket), watchdogSeconds(environ, os.getpid()))

    def notify(self, **fields: str) -> bool:
        """
        Send C{fields} in one datagram; whether it was sent.
        """
        message = notifyMessage(**fields)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(message, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        """
        C{READY=1}: the service is up (or a reload has finished).
        """
        return self.notify(READY="1", STATUS=status)

    def reloading(self) -> bool:
        """
        C{RELOADING=1} with C{MONOTONIC_USEC} (C{Type=notify-reload}).
        """
        return self.notify(RELOADING="1", MONOTONIC_USEC=self.monotonic(),
                           STATUS="reloading")

    def stopping(self) -> bool:
        """
        C{STOPPING=1}: the service is shutting down.
        """
        return self.notify(STOPPING="1", STATUS="stopping")

    def watchdog(self) -> bool:
        """
        C{WATCHDOG=1}: the reactor is turning.
        """
        return self.notify(WATCHDOG="1")


class SystemdLifecycle:
    """
    While a service runs under systemd: C{READY=1} once every
    L{ListeningService} among its children listens, C{WATCHDOG=1} at the
    notifier's interval on C{clock}, and C{STOPPING=1} when L{stop}ped.
    """

    def __init__(self, notifier: SystemdNotifier, clock: Any,
                 parent: Iterable[Any]) -> None:
        self.notifier = notifier
        self._watchdog: Optional[LoopingCall] = None
        listeners = [s for s in parent if isinstance(s, ListeningService)]
        gatherResults([s.whenListening() for s in listeners]).addCallback(
            lambda _: notifier.ready(f"listening on {len(listeners)} endpoint(s)"))
        if notifier.watchdogInterval is not None:
            self._watchdog = LoopingCall(notifier.watchdog)
            self._watchdog.clock = clock
            self._watchdog.start(notifier.watchdogInterval, now=True)

    def stop(self) -> None:
        """
        Stop feeding the watchdog and say C{STOPPING=1}.
        """
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self.notifier.stopping()
