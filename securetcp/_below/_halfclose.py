# -*- test-case-name: tests.test_halfclose,tests.test_proxyprotocol,tests.test_permissive -*-
"""
Half-closes for the wrappers below TLS (PROXY header, permissive sniffing),
which the TCP transport sees as its protocol: pass TCP's read and write
shutdowns to the protocol above if it takes half-closes.

    def readConnectionLost(self):
        passReadConnectionLost(self.transport, self.wrappedProtocol)
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IHalfCloseableProtocol, IProtocol


def passReadConnectionLost(transport: Any, above: Optional[IProtocol]) -> None:
    """
    For the wrappers below TLS (PROXY header, permissive sniffing), which
    the TCP transport sees as its protocol: TCP's read side ended.  Pass it
    to the protocol above if it takes half-closes (the TLS transport always
    does); else close, as TCP would have.
    """
    halfCloseable = IHalfCloseableProtocol(above, None) if above is not None else None
    if halfCloseable is None:
        transport.loseConnection()
    else:
        halfCloseable.readConnectionLost()


def passWriteConnectionLost(above: Optional[IProtocol]) -> None:
    """
    For the wrappers below TLS: TCP's write side was shut down; tell the
    protocol above if it takes half-closes.
    """
    halfCloseable = IHalfCloseableProtocol(above, None) if above is not None else None
    if halfCloseable is not None:
        halfCloseable.writeConnectionLost()
