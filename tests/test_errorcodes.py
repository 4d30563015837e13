# -*- test-case-name: tests.test_errorcodes -*-
"""
Tests for the classification of TLS failures from OpenSSL's error codes
(library, reason): L{securetcp._reasons.reasonForErrorCode},
L{securetcp._tls._binding.errorCode} and
L{securetcp._tls.session.classifyFailure}, under the OpenSSL of the
C{cryptography} wheel and the system's OpenSSL 3 (its C{libssl.so.3}).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Optional

from OpenSSL import SSL
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._reasons import (
    _PEER_ALERTS,
    _SSL_REASONS,
    ALERT_REASON_OFFSET,
    REJECTION_REASONS,
    SSL_LIBRARY,
    reasonForErrorCode,
    reasonForErrorString,
)
from securetcp._tls import _binding
from securetcp._tls.session import classifyFailure


def _systemLibSSL() -> Any:
    """
    The system's OpenSSL 3 C{libssl} (and through it C{libcrypto}), or skip.
    """
    try:
        libssl = ctypes.CDLL("libssl.so.3")
        libcrypto = ctypes.CDLL("libcrypto.so.3")
    except OSError as e:
        raise SkipTest(f"no system OpenSSL 3 libssl: {e}")
    libssl.OPENSSL_init_ssl(ctypes.c_uint64(0x00200000 | 0x00000002), None)  # load strings
    libcrypto.ERR_reason_error_string.restype = ctypes.c_char_p
    libcrypto.ERR_reason_error_string.argtypes = [ctypes.c_ulong]
    return libcrypto


def _systemText(libcrypto: Any, reason: int) -> Optional[str]:
    text = libcrypto.ERR_reason_error_string((SSL_LIBRARY << 23) | reason)
    return text.decode("ascii") if text else None


def _wheelText(reason: int) -> Optional[str]:
    table = {code: text for text, code in _binding._sslReasonTable().items()}
    return table.get(reason)


def _unprefixed(text: str) -> str:
    for prefix in ("sslv3 alert ", "tlsv13 alert ", "tlsv1 alert ", "tls alert "):
        text = text.replace(prefix, "")
    return text


def _error(text: str, library: str = "SSL routines") -> SSL.Error:
    return SSL.Error([(library, "", text)])


class ReasonForErrorCodeTests(SynchronousTestCase):
    """
    Tests for L{reasonForErrorCode}.
    """

    def test_reasonsKnown(self) -> None:
        """
        Every code maps to a reason of L{REJECTION_REASONS}.
        """
        for reason in list(_PEER_ALERTS.values()) + list(_SSL_REASONS.values()):
            self.assertIn(reason, REJECTION_REASONS)

    def test_peerAlerts(self) -> None:
        """
        A received alert is its reason code less 1000 (OpenSSL's
        C{SSL_AD_REASON_OFFSET}): C{handshake_failure} is C{peer_rejected},
        C{unknown_ca} C{unknown_ca}, TLS 1.3's C{certificate_required}
        C{no_client_certificate}, and an alert not listed C{peer_rejected}.
        """
        for alert, reason in [(40, "peer_rejected"), (48, "unknown_ca"),
                              (116, "no_client_certificate"), (45, "expired"),
                              (49, "peer_rejected"), (120, "peer_rejected")]:
            self.assertEqual(reasonForErrorCode(SSL_LIBRARY, ALERT_REASON_OFFSET + alert),
                             reason, alert)

    def test_ownVerdicts(self) -> None:
        """
        OpenSSL's own verdicts: C{no shared cipher} (193) is
        C{no_shared_cipher}, C{http request} (156) C{not_tls}.
        """
        self.assertEqual(reasonForErrorCode(SSL_LIBRARY, 193), "no_shared_cipher")
        self.assertEqual(reasonForErrorCode(SSL_LIBRARY, 156), "not_tls")

    def test_unknownCodes(self) -> None:
        """
        A code of another library, or an SSL reason not listed, gives
        C{None} (the text is then the fallback).
        """
        self.assertIsNone(reasonForErrorCode(6, 193))  # ERR_LIB_EVP
        self.assertIsNone(reasonForErrorCode(SSL_LIBRARY, 229))  # ssl handshake failure


class CodesAcrossOpenSSLTests(SynchronousTestCase):
    """
    The codes classified are OpenSSL's stable numbers: the same meaning
    under the wheel's OpenSSL (4 here) and the system's OpenSSL 3, whatever
    the text.
    """

    def test_sameCodesBothVersions(self) -> None:
        """
        Every code of the tables has a string in both OpenSSLs (but the
        record-layer failure, new in OpenSSL 3.2), and the two name the same
        thing: equal, or differing only in the alert's C{sslv3}/C{tls}
        prefix.
        """
        libcrypto = _systemLibSSL()
        codes = list(_SSL_REASONS) + [ALERT_REASON_OFFSET + a for a in _PEER_ALERTS]
        for code in codes:
            wheel, system = _wheelText(code), _systemText(libcrypto, code)
            self.assertIsNotNone(wheel, code)
            if system is None:
                self.assertEqual(code, 313, wheel)
                continue
            self.assertEqual(_unprefixed(wheel or ""), _unprefixed(system), code)

    def test_handshakeFailureSpelledTwoWays(self) -> None:
        """
        The peer's C{handshake_failure} alert (reason 1040): OpenSSL 3
        spells it C{sslv3 alert handshake failure}; both spellings are
        C{peer_rejected}: the wheel's by its code, OpenSSL 3's by the
        documented text fallback.
        """
        libcrypto = _systemLibSSL()
        self.assertEqual(_systemText(libcrypto, 1040), "sslv3 alert handshake failure")
        wheel = _wheelText(1040)
        assert wheel is not None
        self.assertEqual(_binding.errorCode("SSL routines", wheel), (SSL_LIBRARY, 1040))
        self.assertEqual(classifyFailure(_error(wheel), None)[0], "peer_rejected")
        self.assertEqual(classifyFailure(_error("sslv3 alert handshake failure"), None)[0],
                         "peer_rejected")

    def test_openSSL4Spelling(self) -> None:
        """
        OpenSSL 4's C{tls alert handshake failure} is C{peer_rejected}, not
        C{no_shared_cipher} (what matching C{handshake failure} gave).
        """
        self.assertEqual(classifyFailure(_error("tls alert handshake failure"), None),
                         ("peer_rejected", "tls alert handshake failure"))


class ErrorCodeTests(SynchronousTestCase):
    """
    Tests for L{_binding.errorCode} and its use by L{classifyFailure}.
    """

    def test_roundTrip(self) -> None:
        """
        Every string of the SSL library's table gives back its code.
        """
        for text, code in _binding._sslReasonTable().items():
            self.assertEqual(_binding.errorCode("SSL routines", text), (SSL_LIBRARY, code))

    def test_otherLibrary(self) -> None:
        """
        An entry of another library, or a string OpenSSL does not have,
        has no code.
        """
        self.assertIsNone(_binding.errorCode("digital envelope routines", "no shared cipher"))
        self.assertIsNone(_binding.errorCode("SSL routines", "not an OpenSSL string"))

    def test_fallbackToText(self) -> None:
        """
        Without a code (another library), L{classifyFailure} falls back to
        the text.
        """
        error = _error("tlsv1 alert unknown ca", library="some provider")
        self.assertEqual(classifyFailure(error, None)[0], "unknown_ca")
        self.assertEqual(reasonForErrorString("tlsv1 alert unknown ca"), "unknown_ca")

    def test_firstKnownCodeWins(self) -> None:
        """
        The first entry with a classified code decides; the detail keeps
        every entry's text.
        """
        error = SSL.Error([("SSL routines", "", "ssl handshake failure"),
                           ("SSL routines", "", "tlsv1 alert unknown ca")])
        self.assertEqual(classifyFailure(error, None),
                         ("unknown_ca", "ssl handshake failure; tlsv1 alert unknown ca"))
