"""
Tests for L{securetcp._reasons}: the closed list of rejection reasons and
the mappings from OpenSSL's verification codes and error strings onto it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp import _reasons
from securetcp._reasons import (
    _ERROR_STRINGS,
    _VERIFY_CODES,
    REJECTION_REASONS,
    reasonForErrorString,
    reasonForVerifyCode,
)
from securetcp.audit import records as audit


def _openSSLVerifyString(code: int) -> str:
    """
    OpenSSL's own text for a verification code, from pyOpenSSL's binding.
    """
    from OpenSSL._util import ffi, lib  # type: ignore[attr-defined]

    return ffi.string(lib.X509_verify_cert_error_string(code)).decode("ascii").lower()


class RejectionReasonsTests(SynchronousTestCase):
    """
    Tests for L{REJECTION_REASONS}.
    """

    def test_names(self) -> None:
        """
        Every reason is a lower-case snake_case name with a description.
        """
        for name, meaning in REJECTION_REASONS.items():
            self.assertRegex(name, r"^[a-z]+(_[a-z]+)*$")
            self.assertTrue(meaning.strip(), name)

    def test_documentedReasons(self) -> None:
        """
        The reasons the design names are all there.
        """
        for name in ["unknown_ca", "expired", "revoked", "identity_not_allowed",
                     "protocol_version_refused", "no_shared_cipher",
                     "handshake_timeout", "not_tls", "bad_certificate"]:
            self.assertIn(name, REJECTION_REASONS)

    def test_publicName(self) -> None:
        """
        L{securetcp.audit.REJECTION_REASONS} is the same list.
        """
        self.assertIs(audit.REJECTION_REASONS, REJECTION_REASONS)


class VerifyCodeTests(SynchronousTestCase):
    """
    Tests for L{reasonForVerifyCode}.
    """

    def test_everyCodeMapsToAReason(self) -> None:
        """
        Every mapped verification code maps onto a known reason.
        """
        for code, reason in _VERIFY_CODES.items():
            self.assertIn(reason, REJECTION_REASONS, code)
            self.assertEqual(reasonForVerifyCode(code), reason)

    def test_wellKnownCodes(self) -> None:
        """
        The codes a deployment meets most map to the obvious reasons.
        """
        table = {
            2: "unknown_ca", 18: "unknown_ca", 19: "unknown_ca", 20: "unknown_ca",
            21: "unknown_ca", 7: "bad_signature", 9: "not_yet_valid", 10: "expired",
            23: "revoked", 26: "wrong_key_usage", 62: "hostname_mismatch",
            63: "hostname_mismatch", 64: "hostname_mismatch",
        }
        for code, reason in table.items():
            self.assertEqual(reasonForVerifyCode(code), reason, code)

    def test_unknownCode(self) -> None:
        """
        A code securetcp does not know is C{bad_certificate}.
        """
        for code in (0, 1, 15, 999, -1):
            self.assertEqual(reasonForVerifyCode(code), "bad_certificate")

    @given(st.integers())
    def test_anyCode(self, code: int) -> None:
        """
        Any integer maps onto a known reason.
        """
        self.assertIn(reasonForVerifyCode(code), REJECTION_REASONS)

    def test_agreesWithOpenSSL(self) -> None:
        """
        The linked OpenSSL describes the key codes the way the mapping
        assumes.
        """
        try:
            _openSSLVerifyString(10)
        except (ImportError, AttributeError):  # pragma: no cover
            raise self.skipTest("pyOpenSSL's binding lacks X509_verify_cert_error_string")
        table = {
            2: "issuer", 7: "signature", 9: "not yet valid", 10: "expired",
            18: "self-signed", 19: "self-signed", 20: "local issuer", 23: "revoked",
            26: "purpose", 62: "hostname", 63: "email", 64: "ip address",
        }
        for code, words in table.items():
            self.assertIn(words, _openSSLVerifyString(code), code)


class ErrorStringTests(SynchronousTestCase):
    """
    Tests for L{reasonForErrorString}.
    """

    def test_everyEntryMapsToAReason(self) -> None:
        """
        Every error-string entry maps onto a known reason.
        """
        for needle, reason in _ERROR_STRINGS:
            self.assertIn(reason, REJECTION_REASONS, needle)

    def test_everyEntryReachable(self) -> None:
        """
        No entry is shadowed by an earlier, less specific one: each needle
        on its own gives its own reason.
        """
        for needle, reason in _ERROR_STRINGS:
            self.assertEqual(reasonForErrorString(needle), reason, needle)

    def test_needlesAreLowerCase(self) -> None:
        """
        Needles are lower case, since the text is lowered before matching.
        """
        for needle, _ in _ERROR_STRINGS:
            self.assertEqual(needle, needle.lower())

    def test_caseInsensitive(self) -> None:
        """
        Matching ignores case.
        """
        self.assertEqual(reasonForErrorString("NO SHARED CIPHER"), "no_shared_cipher")

    def test_openSSLTexts(self) -> None:
        """
        Error texts as OpenSSL really writes them (with library and function
        codes around the reason) map onto the right reason.
        """
        table = {
            "error:0A0000C1:SSL routines::no shared cipher": "no_shared_cipher",
            "error:0A000076:SSL routines::no suitable signature algorithm": "no_shared_cipher",
            "error:0A000102:SSL routines::unsupported protocol": "protocol_version_refused",
            "error:0A00018C:SSL routines::version too low": "protocol_version_refused",
            "error:0A00042E:SSL routines::tlsv1 alert protocol version":
                "protocol_version_refused",
            "error:0A0000C7:SSL routines::peer did not return a certificate":
                "no_client_certificate",
            "error:0A00045C:SSL routines::tlsv13 alert certificate required":
                "no_client_certificate",
            "error:0A000410:SSL routines::sslv3 alert handshake failure": "peer_rejected",
            "error:0A000418:SSL routines::tlsv1 alert unknown ca": "unknown_ca",
            "error:0A000415:SSL routines::sslv3 alert certificate expired": "expired",
            "error:0A000414:SSL routines::sslv3 alert certificate revoked": "revoked",
            "error:0A000412:SSL routines::sslv3 alert bad certificate": "bad_certificate",
            "error:0A000416:SSL routines::sslv3 alert certificate unknown": "bad_certificate",
            "error:0A000413:SSL routines::sslv3 alert unsupported certificate":
                "wrong_key_usage",
            "error:0A000433:SSL routines::tlsv1 alert decrypt error": "bad_signature",
            "error:0A000438:SSL routines::tlsv1 alert internal error": "peer_rejected",
            "error:0A0000F4:SSL routines::unexpected message; ... alert": "peer_rejected",
            "error:0A00009C:SSL routines::http request": "not_tls",
            "error:0A00010B:SSL routines::wrong version number": "not_tls",
            "error:0A0000C6:SSL routines::packet length too long": "not_tls",
            "error:0A000126:SSL routines::unexpected eof while reading": "peer_closed",
        }
        for text, reason in table.items():
            self.assertEqual(reasonForErrorString(text), reason, text)

    def test_mostSpecificFirst(self) -> None:
        """
        The handshake-failure alert from the peer is C{peer_rejected}, while
        our own handshake failure is C{no_shared_cipher}.
        """
        self.assertEqual(reasonForErrorString("sslv3 alert handshake failure"),
                         "peer_rejected")
        self.assertEqual(reasonForErrorString("handshake failure"), "no_shared_cipher")

    def test_unknownText(self) -> None:
        """
        Text that says nothing known gives C{None}.
        """
        for text in ["", "something else entirely", "bad record mac"]:
            self.assertIsNone(reasonForErrorString(text))

    @given(st.text())
    def test_anyText(self, text: str) -> None:
        """
        Any text gives a known reason or C{None}.
        """
        reason = reasonForErrorString(text)
        self.assertTrue(reason is None or reason in REJECTION_REASONS)

    def test_docExample(self) -> None:
        """
        The module docstring's example holds.
        """
        self.assertIn("reasonForVerifyCode(10)\n    'expired'", _reasons.__doc__ or "")
        self.assertEqual(reasonForVerifyCode(10), "expired")
