# -*- test-case-name: tests.test_endpoints -*-
"""
Light plugin objects for the dropin: they provide the parser interfaces and
import the real parsers (and OpenSSL) only when a string is parsed, so a
plugin scan stays cheap.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import (
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamServerEndpointStringParser)
class SecureServerParserPlugin:
    """
    The C{securessl:} or C{mtls:} server endpoint-string parser.
    """

    def __init__(self, prefix: str, mutual: bool) -> None:
        self.prefix = prefix
        self.mutual = mutual

    def parseStreamServer(self, reactor: Any, *args: Any, **kwargs: Any) -> Any:
        from securetcp._parsers import SecureServerParser

        return SecureServerParser(self.prefix, self.mutual).parseStreamServer(
            reactor, *args, **kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class SecureClientParserPlugin:
    """
    The C{securessl:} or C{mtls:} client endpoint-string parser.
    """

    def __init__(self, prefix: str, mutual: bool) -> None:
        self.prefix = prefix
        self.mutual = mutual

    def parseStreamClient(self, reactor: Any, *args: Any, **kwargs: Any) -> Any:
        from securetcp._parsers import SecureClientParser

        return SecureClientParser(self.prefix, self.mutual).parseStreamClient(
            reactor, *args, **kwargs)
