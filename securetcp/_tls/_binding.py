# -*- test-case-name: tests.test_fences -*-
"""
The one module that touches pyOpenSSL's private names: its CFFI binding
(C{OpenSSL._util.lib} and C{ffi}) and the pointers inside its objects.  Each
is listed in L{PYOPENSSL_PRIVATE_NAMES}, with what securetcp needs it for;
a test checks that the installed pyOpenSSL still has every one and says
which is gone if a release drops one.

    setGroups(context, b"X25519:P-256")             # no public setter
    verifyErrorString(20)                          # OpenSSL's text for a code
    errorCode("SSL routines", "no shared cipher")  # (20, 193): ERR_LIB_SSL, SSL_R_*
    installVerifyCallback(context, mode, callback)  # sets the verify code

Nothing else in securetcp imports C{OpenSSL._util} or reads a private
attribute of a pyOpenSSL object; the list itself is in
L{securetcp._tls._privatenames}.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import attrs
from cryptography import x509
from OpenSSL import SSL, crypto

from securetcp._tls._privatenames import PYOPENSSL_PRIVATE_NAMES, PrivateName
from securetcp.errors import UnsupportedByOpenSSLError

try:
    from OpenSSL._util import ffi, lib  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    ffi = lib = None


def _owners() -> dict[str, Any]:
    scratch = SSL.Context(SSL.TLS_METHOD)
    return {"OpenSSL._util": _util(), "lib": lib, "ffi": ffi,
            "OpenSSL.SSL.Context": scratch,
            "OpenSSL.SSL.Connection": SSL.Connection(scratch, None),
            "OpenSSL.crypto.X509": crypto.X509}


def _util() -> Any:
    try:
        import OpenSSL._util as util  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover
        return None
    return util


def missingPrivateNames() -> Tuple[Tuple[PrivateName, str], ...]:
    """
    Each entry of L{PYOPENSSL_PRIVATE_NAMES} the installed pyOpenSSL lacks,
    with the name that was looked for.  For C{ffi}, every name is needed;
    elsewhere one of C{names} is enough.
    """
    owners = _owners()
    missing: list[Tuple[PrivateName, str]] = []
    for entry in PYOPENSSL_PRIVATE_NAMES:
        owner = owners[entry.owner]
        present = [n for n in entry.names if owner is not None and hasattr(owner, n)]
        if entry.owner == "ffi":
            missing.extend((entry, n) for n in entry.names if n not in present)
        elif not present:
            missing.append((entry, entry.names[0]))
    return tuple(missing)


# -- what the rest of _tls asks of the binding --------------------------


def setGroups(context: SSL.Context, groups: bytes) -> bool:
    """
    Set the key-exchange groups of C{context} (C{b"X25519:P-256"}).

    @return: whether OpenSSL accepted every name.
    @raise UnsupportedByOpenSSLError: when the binding has no setter.
    """
    for name in ("SSL_CTX_set1_groups_list", "SSL_CTX_set1_curves_list"):
        function = getattr(lib, name, None)
        if function is not None:
            return bool(function(context._context, groups) == 1)  # type: ignore[attr-defined]
    raise UnsupportedByOpenSSLError(
        "groups", None,
        "this pyOpenSSL/cryptography build exposes no way to set key-exchange groups",
        "install a pyOpenSSL and cryptography release listed in setup.cfg",
    )


def verifyErrorString(code: int) -> str:
    """
    OpenSSL's description of the X509 verify code C{code}.
    """
    try:
        text = ffi.string(lib.X509_verify_cert_error_string(code))
        return str(text.decode("ascii", "replace"))
    except Exception:  # pragma: no cover
        return f"X509 verify code {code}"


#: OpenSSL's C{ERR_LIB_SSL}, and how OpenSSL 3 and later pack an error code
#: (C{ERR_PACK}: the library above bit 23, the reason below it).
_SSL_LIBRARY = 20
_LIBRARY_SHIFT = 23
#: The SSL library's reason codes run below this (alerts: 1000 + the alert).
_LAST_SSL_REASON = 1300

_sslReasons: Optional[dict[str, int]] = None


def _sslReasonTable() -> dict[str, int]:
    """
    OpenSSL's reason strings of the SSL library to their codes, read once
    from OpenSSL's own table (the first code of a string wins).
    """
    global _sslReasons
    if _sslReasons is None:
        SSL.Context(SSL.TLS_METHOD)  # OpenSSL loads the SSL library's strings
        table: dict[str, int] = {}
        for reason in range(1, _LAST_SSL_REASON):
            text = lib.ERR_reason_error_string((_SSL_LIBRARY << _LIBRARY_SHIFT) | reason)
            if text != ffi.NULL:
                table.setdefault(ffi.string(text).decode("ascii", "replace"), reason)
        _sslReasons = table
    return _sslReasons


def errorCode(library: str, reason: str) -> Optional[Tuple[int, int]]:
    """
    The error code C{(library, reason)} of one entry of a pyOpenSSL
    C{SSL.Error} (C{(library text, function text, reason text)}): pyOpenSSL
    empties OpenSSL's error queue and keeps only the strings, so the codes
    are found again in the string table of the OpenSSL that wrote them, by
    exact match.  Only the SSL library's codes are looked up.

    @return: the code, or C{None} if the strings are not the SSL library's
        (or the binding cannot read the table).
    """
    try:
        sslLibrary = ffi.string(lib.ERR_lib_error_string(_SSL_LIBRARY << _LIBRARY_SHIFT))
        if library != sslLibrary.decode("ascii", "replace"):
            return None
        code = _sslReasonTable().get(reason)
    except Exception:  # pragma: no cover
        return None
    return None if code is None else (_SSL_LIBRARY, code)


def sessionReused(connection: SSL.Connection) -> Optional[bool]:
    """
    Whether C{connection}'s handshake resumed a session (C{None} if the
    binding cannot tell).
    """
    try:
        return bool(lib.SSL_session_reused(connection._ssl))  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover
        return None


def recordPointers(connection: SSL.Connection) -> Tuple[Any, Any, Any]:
    """
    What L{securetcp._tls._recordio} reads and writes records with: the
    connection's C{SSL} pointer, its incoming memory BIO (what C{bio_write}
    fills) and its outgoing one.
    """
    return connection._ssl, connection._into_ssl, connection._from_ssl


def raiseSSLError(connection: SSL.Connection, result: int) -> None:
    """
    Raise what pyOpenSSL raises for C{result}, an C{SSL_read} or
    C{SSL_write} of C{connection} that did not go through.
    """
    connection._raise_ssl_error(connection._ssl, result)


#: the binding's C{SSL_get1_peer_certificate} (or its older name), once looked up
_getPeer: Any = None


def peerCertificate(connection: SSL.Connection, known: Dict[bytes, x509.Certificate]
                    ) -> Optional[x509.Certificate]:
    """
    C{connection.get_peer_certificate(as_cryptography=True)}, converted only
    if C{known} (the conversions so far, by the SHA-256 of the DER: the
    caller bounds it) lacks it.
    """
    global _getPeer
    if _getPeer is None:  # looked up once: a name the binding lacks costs an exception
        _getPeer = getattr(lib, "SSL_get1_peer_certificate", None) or lib.SSL_get_peer_certificate
    pointer = _getPeer(connection._ssl)  # type: ignore[attr-defined]
    if pointer == ffi.NULL:
        return None
    out = ffi.new("unsigned char[32]")
    if lib.X509_digest(pointer, lib.EVP_get_digestbyname(b"sha256"), out, ffi.NULL) != 1:
        lib.X509_free(pointer)
        raise ValueError("X509_digest failed")
    key = bytes(ffi.buffer(out, 32))
    certificate = known.get(key)
    if certificate is not None:
        lib.X509_free(pointer)
        return certificate
    # the X509 owns the pointer (and frees it) from here on
    certificate = crypto.X509._from_raw_x509_ptr(pointer).to_cryptography()  # type: ignore
    known[key] = certificate
    return certificate


def useDHParameters(context: SSL.Context, pem: bytes) -> bool:
    """
    Use the PEM DH parameters C{pem} (in memory: pyOpenSSL's
    C{load_tmp_dh} reads a file).

    @return: whether OpenSSL accepted them.
    """
    bio = lib.BIO_new_mem_buf(pem, len(pem))
    if bio == ffi.NULL:  # pragma: no cover
        return False
    bio = ffi.gc(bio, lib.BIO_free)
    parameters = lib.PEM_read_bio_DHparams(bio, ffi.NULL, ffi.NULL, ffi.NULL)
    if parameters == ffi.NULL:
        return False
    parameters = ffi.gc(parameters, lib.DH_free)
    return bool(lib.SSL_CTX_set_tmp_dh(context._context, parameters) == 1)  # type: ignore[attr-defined]


# -- the verify callback --------------------------------------------------


@attrs.frozen
class VerifyPieces:
    """
    What L{installVerifyCallback} needs of the binding, looked up once per
    context.
    """

    reverse: Any
    index: Any
    sha256: Any
    getData: Callable[[Any, Any], Any]
    getCurrentCert: Callable[[Any], Any]
    getError: Callable[[Any], int]
    getDepth: Callable[[Any], int]
    setError: Callable[[Any, int], None]
    digest: Callable[..., int]
    upRef: Callable[[Any], int]
    fromPointer: Callable[[Any], crypto.X509]
    setVerify: Callable[[Any, int, Any], None]
    verifyOK: int


def verifyPieces() -> VerifyPieces:
    """
    The binding's pieces for the verify callback.

    @raise AttributeError: (or C{ImportError}) if any is missing.
    """
    if lib is None:  # pragma: no cover
        raise ImportError("pyOpenSSL has no OpenSSL._util binding")
    return VerifyPieces(
        SSL.Connection._reverse_mapping,  # type: ignore[attr-defined]
        lib.SSL_get_ex_data_X509_STORE_CTX_idx(), lib.EVP_get_digestbyname(b"sha256"),
        lib.X509_STORE_CTX_get_ex_data, lib.X509_STORE_CTX_get_current_cert,
        lib.X509_STORE_CTX_get_error, lib.X509_STORE_CTX_get_error_depth,
        lib.X509_STORE_CTX_set_error, lib.X509_digest, lib.X509_up_ref,
        crypto.X509._from_raw_x509_ptr,  # type: ignore[attr-defined]
        lib.SSL_CTX_set_verify, lib.X509_V_OK)


class VerifyStep:
    """
    One step of OpenSSL's chain verification, as the verify callback sees
    it: the connection, the certificate at this depth, OpenSSL's error.

    @ivar error: OpenSSL's X509 verify code for this step (0: none).
    @ivar depth: the depth of this step's certificate (0: the leaf).
    """

    __slots__ = ("_pieces", "_store", "error", "depth")

    def __init__(self, pieces: VerifyPieces, store: Any) -> None:
        self._pieces = pieces
        self._store = store
        self.error: int = pieces.getError(store)
        self.depth: int = pieces.getDepth(store)

    def connection(self) -> SSL.Connection:
        """
        The connection being verified.

        @raise KeyError: if pyOpenSSL does not know it.
        """
        pieces = self._pieces
        result: SSL.Connection = pieces.reverse[pieces.getData(self._store, pieces.index)]
        return result

    def fingerprint(self) -> Optional[bytes]:
        """
        The SHA-256 of the current certificate's DER, or C{None} when
        OpenSSL names no current certificate.
        """
        pieces = self._pieces
        pointer = pieces.getCurrentCert(self._store)
        if pointer == ffi.NULL:
            return None
        out = ffi.new("unsigned char[32]")  # SHA-256's size (OpenSSL need not say it)
        if pieces.digest(pointer, pieces.sha256, out, ffi.NULL) != 1:
            raise ValueError("X509_digest failed")
        return bytes(ffi.buffer(out, 32))

    def certificate(self) -> x509.Certificate:
        """
        The current certificate (there must be one: see L{fingerprint}).
        """
        pieces = self._pieces
        pointer = pieces.getCurrentCert(self._store)
        pieces.upRef(pointer)
        return pieces.fromPointer(pointer).to_cryptography()

    def setError(self, code: Optional[int]) -> int:
        """
        Accept (C{code} is C{None}) or reject with the X509 verify code
        C{code}; the result is what the callback returns to OpenSSL.
        """
        if code is None:
            self._pieces.setError(self._store, self._pieces.verifyOK)
            return 1
        self._pieces.setError(self._store, code)
        return 0


#: The verify callback securetcp installs: C{(ok, step)} to OpenSSL's answer
#: (use L{VerifyStep.setError}); it must never raise.
RawVerify = Callable[[int, VerifyStep], int]


def installVerifyCallback(context: SSL.Context, mode: int, callback: RawVerify,
                          pieces: VerifyPieces) -> None:
    """
    Make C{callback} the verify callback of C{context} through the binding
    (pyOpenSSL's C{set_verify} cannot set the verify code, so the peer would
    get a generic alert).  The callback lives as long as the context.
    """
    def raw(ok: int, store: Any) -> int:
        step = VerifyStep(pieces, store)
        try:
            return callback(ok, step)
        except Exception:  # never let an exception cross into OpenSSL
            return step.setError(1)

    function = ffi.callback("int (*)(int, X509_STORE_CTX *)", raw)
    context._securetcpVerify = function  # type: ignore[attr-defined]
    pieces.setVerify(context._context, mode, function)  # type: ignore[attr-defined]
