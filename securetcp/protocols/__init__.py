# -*- test-case-name: tests.test_protocols -*-
"""
Sans-IO readers of the first message of the application protocols that
securetcp binds to the peer's certificate (HL7 v2 over MLLP, the DICOM
upper layer, MQTT): each module reads bytes and returns the identity the
message claims, asks for more bytes, or raises L{MalformedMessage}.

No module here does I/O or imports Twisted or OpenSSL; the connection layer
feeds them.
"""

from __future__ import annotations


class MalformedMessage(ValueError):
    """
    Bytes that are not the first message the protocol expects, or that
    exceed the bound a reader keeps.

    @ivar protocol: the protocol's short name (C{"hl7"}, C{"dicom"},
        C{"mqtt"}).
    @ivar problem: what is wrong, in words; never the message's content.
    """

    def __init__(self, protocol: str, problem: str) -> None:
        super().__init__(f"{protocol}: {problem}")
        self.protocol = protocol
        self.problem = problem
