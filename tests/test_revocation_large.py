"""
Large CRLs are checked by securetcp's verify callback rather than by
OpenSSL (see L{securetcp._context.LARGE_CRL_ENTRIES}): the same behaviour
(revoked, unknown status under hard and soft fail, chain scope), except
that the peer is refused with a generic alert.  These tests rerun the
in-memory revocation handshake tests with the threshold at 0, so every CRL
takes that path.
"""

from __future__ import annotations

from securetcp import _context

from .test_revocation import HandshakeTests as _HandshakeTests


class LargeCRLHandshakeTests(_HandshakeTests):
    """
    L{tests.test_revocation.HandshakeTests} with every CRL checked by the
    verify callback.
    """

    revokedAlertReason = "peer_rejected"

    def setUp(self) -> None:
        self.patch(_context, "LARGE_CRL_ENTRIES", 0)
        return super().setUp()  # type: ignore[func-returns-value]
