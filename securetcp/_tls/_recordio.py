# -*- test-case-name: tests.test_recordio,tests.test_halfclose -*-
"""
The TLS transport's data path, many records per Python call: all the
plaintext OpenSSL can give now in one C{bytes}, and a whole write encrypted
with every record it makes read out of the memory BIO at once, where
pyOpenSSL's C{recv}, C{send} and C{bio_read} take one record each (and a
fresh buffer, and an exception to say that nothing is left)::

    feed(connection, received)               # the peer's TLS bytes
    data, stop = readPlaintext(connection)   # stop: what ended the read
    taken, pieces, stop = encrypt(connection, plaintext)

Errors are pyOpenSSL's own: what ended a read is the exception its
C{recv} would have raised there, built at once, while OpenSSL's error
state still describes it; a write that OpenSSL stops short leaves the rest
to the caller, who writes it the ordinary way to meet the same condition.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from OpenSSL import SSL

from securetcp._tls._binding import ffi, lib, raiseSSLError, recordPointers

#: the most plaintext one read returns, and the most ciphertext one BIO
#: read takes (one buffer of this size, shared: the reactor is one thread)
CHUNK = 1 << 18

#: what one SSL_write is given at most: one record, as Twisted writes
RECORD = 1 << 14

_scratch: Any = None


def _buffer() -> Any:
    global _scratch
    if _scratch is None:
        _scratch = ffi.new("char[]", CHUNK)
    return _scratch


def feed(connection: SSL.Connection, data: bytes) -> None:
    """
    Give C{connection} the TLS bytes C{data} the peer sent, as pyOpenSSL's
    C{bio_write} does (and with its exception if the BIO refuses them).
    """
    if data and lib.BIO_write(recordPointers(connection)[1], data, len(data)) <= 0:
        connection.bio_write(data)  # pragma: no cover (a memory BIO takes it all)


#: what ended a read when the buffered records ran out (where pyOpenSSL's
#: C{recv} raises C{WantReadError})
EXHAUSTED = SSL.WantReadError("the buffered records ran out")


def readPlaintext(connection: SSL.Connection) -> Tuple[bytes, Optional[BaseException]]:
    """
    The plaintext of every record C{connection} has buffered (up to
    L{CHUNK} bytes), and what ended the read: L{EXHAUSTED} when the records
    ran out; the exception pyOpenSSL's C{recv} raises at that point for
    anything else (C{ZeroReturnError} at a close_notify, a TLS error); or
    C{None} when L{CHUNK} bytes were read and more may follow.
    """
    ssl = recordPointers(connection)[0]
    buffer, read = _scratch if _scratch is not None else _buffer(), lib.SSL_read
    got = 0
    while got < CHUNK:
        result = read(ssl, buffer + got, CHUNK - got)
        if result <= 0:
            if lib.SSL_get_error(ssl, result) == lib.SSL_ERROR_WANT_READ:
                # (pyOpenSSL would first re-raise what one of its callbacks
                # raised; a callback that raises fails the handshake step,
                # which is an error, not this)
                return ffi.buffer(buffer, got)[:], EXHAUSTED
            return ffi.buffer(buffer, got)[:], _stopped(connection, result)
        got += result
    return ffi.buffer(buffer, got)[:], None


def encrypt(connection: SSL.Connection,
            data: bytes) -> Tuple[int, List[bytes], Optional[BaseException]]:
    """
    Encrypt C{data} on C{connection}, one record per C{SSL_write}, until
    it is all taken or OpenSSL stops; then read every TLS record waiting in
    the outgoing memory BIO.

    @return: how many bytes of C{data} OpenSSL took; the records to send,
        in order, in one or more pieces (none if there are none); and, if OpenSSL stopped short, the exception
        pyOpenSSL's C{send} raises there (C{WantReadError} in a
        renegotiation, a TLS error), else C{None}.
    """
    ssl, _, outgoing = recordPointers(connection)
    taken, size, write = 0, len(data), lib.SSL_write
    stop: Optional[BaseException] = None
    with ffi.from_buffer(data) as source:
        while taken < size:
            result = write(ssl, source + taken, min(size - taken, RECORD))
            if result <= 0:
                stop = _stopped(connection, result)
                break
            taken += result
    return taken, _drain(outgoing), stop


def _stopped(connection: SSL.Connection, result: int) -> BaseException:
    """
    The exception pyOpenSSL raises for C{result}, an C{SSL_read} or
    C{SSL_write} that did not go through.
    """
    try:
        raiseSSLError(connection, result)
    except Exception as e:
        return e
    return SSL.WantReadError()  # pragma: no cover (OpenSSL said nothing more)


def pendingRecords(connection: SSL.Connection) -> List[bytes]:
    """
    The TLS records waiting in C{connection}'s outgoing memory BIO (a
    handshake flight, a close_notify, a session ticket), as L{encrypt}
    returns them.
    """
    return _drain(recordPointers(connection)[2])


def _drain(outgoing: Any) -> List[bytes]:
    """
    Everything in the outgoing memory BIO C{outgoing}, in pieces of up to
    L{CHUNK} bytes (sent one after the other, rather than copied once more
    into one).
    """
    buffer, read = _scratch if _scratch is not None else _buffer(), lib.BIO_read
    pieces: List[bytes] = []
    while True:
        got = read(outgoing, buffer, CHUNK)
        if got <= 0:
            return pieces
        pieces.append(ffi.buffer(buffer, got)[:])
        if got < CHUNK:
            return pieces
