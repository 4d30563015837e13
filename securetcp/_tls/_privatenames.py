# -*- test-case-name: tests.test_fences -*-
"""
The list of pyOpenSSL's private names that L{securetcp._tls._binding} (the
one module that uses them) needs, each with what for: a test checks that
the installed pyOpenSSL still has every one
(L{securetcp._tls._binding.missingPrivateNames}).
"""

from __future__ import annotations

from typing import Tuple

import attrs

__all__ = ["PYOPENSSL_PRIVATE_NAMES", "PrivateName"]


@attrs.frozen
class PrivateName:
    """
    A private name of pyOpenSSL that securetcp uses.

    @ivar owner: where it is: C{"OpenSSL._util"}, C{"lib"} (the binding's
        functions), C{"ffi"}, or a class whose instances carry it.
    @ivar names: the name; when several are given, any one of them will do
        (an older alias).
    @ivar purpose: what securetcp needs it for.
    """

    owner: str
    names: Tuple[str, ...]
    purpose: str


def _lib(*names: str, purpose: str) -> PrivateName:
    return PrivateName("lib", names, purpose)


_VERIFY = "the verify callback (it sets the X509 verify code, so the peer gets the precise alert)"

_CODES = ("the error code (library, reason) of a TLS error: pyOpenSSL keeps only "
          "OpenSSL's strings, so they are looked up in OpenSSL's own string table")

_RECORDS = ("the TLS transport's data path: many records per call, in one buffer "
            "(securetcp._tls._recordio)")

#: Every private name of pyOpenSSL securetcp uses.
PYOPENSSL_PRIVATE_NAMES: Tuple[PrivateName, ...] = (
    PrivateName("OpenSSL._util", ("lib",), "OpenSSL's functions that pyOpenSSL does not wrap"),
    PrivateName("OpenSSL._util", ("ffi",), "calling them (pointers, buffers, callbacks)"),
    PrivateName("OpenSSL.SSL.Context", ("_context",), "the SSL_CTX pointer a context wraps"),
    PrivateName("OpenSSL.SSL.Connection", ("_ssl",), "the SSL pointer a connection wraps"),
    PrivateName("OpenSSL.SSL.Connection", ("_reverse_mapping",),
                "finding the Connection a verify step belongs to"),
    PrivateName("OpenSSL.crypto.X509", ("_from_raw_x509_ptr",),
                "turning the certificate of a verify step into an X509"),
    _lib("SSL_CTX_set1_groups_list", "SSL_CTX_set1_curves_list",
         purpose="setting the key-exchange groups (pyOpenSSL has no setter for a list)"),
    _lib("X509_verify_cert_error_string", purpose="OpenSSL's text for an X509 verify code"),
    _lib("SSL_session_reused", purpose="whether a handshake resumed a session"),
    _lib("BIO_new_mem_buf", purpose="DH parameters from memory (load_tmp_dh reads a file)"),
    _lib("PEM_read_bio_DHparams", purpose="DH parameters from memory"),
    _lib("SSL_CTX_set_tmp_dh", purpose="DH parameters from memory"),
    _lib("DH_free", purpose="DH parameters from memory"),
    _lib("BIO_free", purpose="DH parameters from memory"),
    _lib("SSL_get_ex_data_X509_STORE_CTX_idx", purpose=_VERIFY),
    _lib("EVP_get_digestbyname", purpose=_VERIFY),
    _lib("X509_STORE_CTX_get_ex_data", purpose=_VERIFY),
    _lib("X509_STORE_CTX_get_current_cert", purpose=_VERIFY),
    _lib("X509_STORE_CTX_get_error", purpose=_VERIFY),
    _lib("X509_STORE_CTX_get_error_depth", purpose=_VERIFY),
    _lib("X509_STORE_CTX_set_error", purpose=_VERIFY),
    _lib("X509_digest", purpose=_VERIFY),
    _lib("X509_up_ref", purpose=_VERIFY),
    _lib("SSL_CTX_set_verify", purpose=_VERIFY),
    _lib("X509_V_OK", purpose=_VERIFY),
    _lib("SSL_get_peer_certificate", "SSL_get1_peer_certificate",
         purpose="the peer certificate of a resumed session, converted once per certificate"),
    _lib("X509_free", purpose="the peer certificate of a resumed session, when known already"),
    _lib("ERR_lib_error_string", purpose=_CODES),
    _lib("ERR_reason_error_string", purpose=_CODES),
    PrivateName("ffi", ("callback", "new", "buffer", "string", "gc", "NULL", "from_buffer"),
                "calling OpenSSL through the binding"),
    PrivateName("OpenSSL.SSL.Connection", ("_from_ssl",), _RECORDS),
    PrivateName("OpenSSL.SSL.Connection", ("_into_ssl",), _RECORDS),
    PrivateName("OpenSSL.SSL.Connection", ("_raise_ssl_error",), _RECORDS),
    _lib("SSL_read", purpose=_RECORDS),
    _lib("SSL_get_error", purpose=_RECORDS),
    _lib("SSL_ERROR_WANT_READ", purpose=_RECORDS),
    _lib("SSL_write", purpose=_RECORDS),
    _lib("BIO_read", purpose=_RECORDS),
    _lib("BIO_write", purpose=_RECORDS),
)
