# -*- test-case-name: tests.test_sendnow,tests.test_splice -*-
"""
Writing to a TCP transport at once: a relay that writes what it has just
read (the TLS transport its records, the splice its backend's bytes) hands
them to the socket in the same reactor iteration when nothing is queued
before them, rather than queueing them and asking the reactor to wake it
when the socket is writable (two C{epoll_ctl} calls and a reactor
iteration per write)::

    sendNow(transport, data)     # what the socket does not take is queued
    widen(transport)             # larger reads, later back-pressure

Anything that is not a plain Twisted TCP connection with an empty queue
gets an ordinary C{write()}, and so does whatever the socket does not take
at once, so ordering, back-pressure (a registered producer is paused when
the queue grows) and error reporting stay Twisted's.  It reads the private
names of Twisted's TCP transport listed in L{TWISTED_TCP_NAMES}; a test
checks that the installed Twisted still has them.
"""

from __future__ import annotations

from typing import Any, Tuple

from twisted.internet import tcp

#: The private names of Twisted's C{tcp.Connection} that L{sendNow} reads:
#: C{(name, what it is needed for)}.
TWISTED_TCP_NAMES: Tuple[Tuple[str, str], ...] = (
    ("dataBuffer", "whether bytes are queued before ours"),
    ("_tempDataBuffer", "whether bytes are queued before ours"),
    ("_writeDisconnecting", "no bytes go out after loseWriteConnection()"),
    ("socket", "sending at once"),
    ("bufferSize", "how much one read takes and how much may be queued"),
)

#: a relay's read size and send queue before its producer is paused
#: (Twisted's own is 64 KiB)
RELAY_BUFFER = 1 << 18


def sendNow(transport: Any, data: bytes) -> None:
    """
    C{transport.write(data)}, with as much of C{data} as the socket takes
    sent at once when C{transport} is a TCP connection with nothing queued.
    """
    if (type(transport) in (tcp.Server, tcp.Client) and not transport.dataBuffer
            and not transport._tempDataBuffer and transport.connected
            and not transport.disconnecting and not transport._writeDisconnecting
            and not transport.TLS and data):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # the socket is full, or broken: the ordinary write queues the
            # bytes, and its doWrite reports the error as Twisted does
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def widen(transport: Any) -> None:
    """
    Give the TCP connection under C{transport} (itself, or under a TLS
    transport) L{RELAY_BUFFER}: each read takes up to that much, and a
    producer writing to it is paused only once that much is queued.
    """
    while transport is not None and not isinstance(transport, tcp.Connection):
        transport = getattr(transport, "transport", None)
    if transport is not None:
        transport.bufferSize = RELAY_BUFFER
