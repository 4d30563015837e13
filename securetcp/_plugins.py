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
        from securetcp.errors import SecureTCPError

        try:
            return SecureServerParser(self.prefix, self.mutual).parseStreamServer(
                reactor, *args, **kwargs)
        except SecureTCPError:
            _briefUncaught()
            raise


def _briefUncaught() -> None:
    """
    Let a securetcp error that nobody catches end the program with its own
    one line (which names the argument, the file and the fix), not a
    traceback: C{twistd web --listen mtls:...} parses its strings where
    twistd catches nothing.  Other uncaught exceptions are shown as before.
    """
    import sys

    from securetcp.errors import SecureTCPError

    previous = sys.excepthook
    if getattr(previous, "securetcpBrief", False):
        return

    def hook(kind: Any, value: Any, traceback: Any) -> None:
        if isinstance(value, SecureTCPError):
            sys.stderr.write(f"{sys.argv[0] if sys.argv else 'python'}: {value}\n")
        else:
            previous(kind, value, traceback)

    hook.securetcpBrief = True  # type: ignore[attr-defined]
    sys.excepthook = hook


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
