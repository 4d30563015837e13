# -*- test-case-name: tests.test_check -*-
"""
Probing a live server for C{python -m securetcp probe}: one blocking client
handshake that records what the server negotiated, presented and asked for,
without failing on what it finds.  Never used to serve connections.

    result = probeHandshake("lab.example", 6661, caFile="ca.pem")
    result.version, result.cipher, result.verifyError
"""

from __future__ import annotations

import select
import socket
from typing import Any, List, Optional, Tuple

import attrs
from cryptography import x509
from OpenSSL import SSL, crypto

from securetcp._catalogue import TLSVersion
from securetcp._tls import _binding
from securetcp._tls.context import PROTOCOLS, isIP
from securetcp._tls.session import classifyFailure


@attrs.frozen
class ProbedHandshake:
    """
    One client handshake made by L{probeHandshake}: what it negotiated,
    what the server presented and asked for.
    """

    connected: bool
    error: Optional[str]
    offered: bool
    version: Optional[str]
    cipher: Optional[str]
    group: Optional[str]
    chain: Tuple[x509.Certificate, ...]
    verifyError: Optional[str]
    clientCertRequested: bool
    ocspStapled: bool


@attrs.define
class _Observed:
    """
    What the probe's callbacks saw during the handshake.
    """

    verifyErrors: List[str] = attrs.field(factory=list)
    stapled: List[bool] = attrs.field(factory=list)
    requested: List[bool] = attrs.field(factory=list)


def _probeContext(caFile: Optional[str], certFile: Optional[str], keyFile: Optional[str],
                  versions: Optional[Tuple[TLSVersion, TLSVersion]], cipherList: str,
                  seen: _Observed) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    low, high = versions or (TLSVersion.TLSv1, TLSVersion.TLSv1_3)
    ctx.set_min_proto_version(PROTOCOLS[low])
    ctx.set_max_proto_version(PROTOCOLS[high])
    ctx.set_cipher_list(cipherList.encode("ascii"))
    if caFile:
        ctx.load_verify_locations(caFile)
    else:
        ctx.set_default_verify_paths()
    if certFile:
        ctx.use_certificate_chain_file(certFile)
        ctx.use_privatekey_file(keyFile or certFile)

    def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int,
               ok: int) -> bool:
        if not ok and not seen.verifyErrors:
            seen.verifyErrors.append(f"{_binding.verifyErrorString(errno)} (X509 verify code "
                                     f"{errno}, depth {depth})")
        return True

    def ocsp(conn: SSL.Connection, data: bytes, _: Any) -> bool:
        seen.stapled.append(bool(data))
        return True

    ctx.set_verify(SSL.VERIFY_PEER, verify)
    ctx.set_ocsp_client_callback(ocsp)
    return ctx


def _handshake(conn: SSL.Connection, sock: socket.socket, timeout: float) -> Optional[str]:
    """
    Drive the handshake to its end; the error, if any.
    """
    try:
        while True:
            try:
                conn.do_handshake()
                return None
            except SSL.WantReadError:
                if not select.select([sock], [], [], timeout)[0]:
                    raise TimeoutError("no answer from the server") from None
    except SSL.Error as e:
        return classifyFailure(e, None)[1]
    except OSError as e:
        return str(e) or type(e).__name__


def probeHandshake(host: str, port: int, *, serverName: Optional[str] = None,
                   caFile: Optional[str] = None, certFile: Optional[str] = None,
                   keyFile: Optional[str] = None,
                   versions: Optional[Tuple[TLSVersion, TLSVersion]] = None,
                   cipherList: str = "DEFAULT:@SECLEVEL=0",
                   timeout: float = 10.0) -> ProbedHandshake:
    """
    Make one blocking client handshake with C{host:port}, offering
    C{versions} (default: everything the linked OpenSSL can) and
    C{cipherList} for TLS 1.2 and older.  The chain is verified against
    C{caFile} (default: the system store) but a failure is recorded, not
    fatal, so that what the server presented can still be reported.
    """
    seen = _Observed()
    ctx = _probeContext(caFile, certFile, keyFile, versions, cipherList, seen)

    def info(conn: SSL.Connection, where: int, ret: int) -> None:
        if b"certificate request" in conn.get_state_string():
            seen.requested.append(True)

    sock = socket.create_connection((host, port), timeout=timeout)
    conn = SSL.Connection(ctx, sock)
    conn.set_info_callback(info)
    name = serverName or (None if isIP(host) else host)
    if name:
        conn.set_tlsext_host_name(name.encode("idna"))
    conn.request_ocsp()
    conn.set_connect_state()
    error = _handshake(conn, sock, timeout)
    connected = error is None
    result = ProbedHandshake(
        connected=connected, error=error,
        offered=not (error and ("no protocols available" in error
                                or "no ciphers available" in error)),
        version=conn.get_protocol_version_name() if connected else None,
        cipher=conn.get_cipher_name() if connected else None,
        group=conn.get_group_name() if connected else None,
        chain=tuple(conn.get_peer_cert_chain(as_cryptography=True) or ()),
        verifyError=seen.verifyErrors[0] if seen.verifyErrors else None,
        clientCertRequested=bool(seen.requested), ocspStapled=any(seen.stapled),
    )
    try:
        if connected:
            conn.shutdown()
    except (SSL.Error, OSError):
        pass
    sock.close()
    return result
