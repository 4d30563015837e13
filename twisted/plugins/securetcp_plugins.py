"""
Twisted plugin dropin for securetcp: endpoint-string parsers only.

Nothing heavy is imported at plugin-scan time; the parser classes import
OpenSSL when they are used.
"""

from securetcp._plugins import (
    SecureClientParserPlugin,
    SecureServerParserPlugin,
)

secureSSLServer = SecureServerParserPlugin("securessl", mutual=False)
secureSSLClient = SecureClientParserPlugin("securessl", mutual=False)
mtlsServer = SecureServerParserPlugin("mtls", mutual=True)
mtlsClient = SecureClientParserPlugin("mtls", mutual=True)

from twisted.application.service import ServiceMaker  # noqa: E402

securetcpService = ServiceMaker(
    "securetcp",
    "securetcp._twistd.tap",
    "Hardened TLS and mutual TLS in front of (or behind) any TCP service",
    "securetcp",
)
