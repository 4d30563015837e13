"""
Small helpers for tests that start real servers: a free port below the
ephemeral range, escaping a value for an endpoint string, one line
exchanged over mutual TLS with Python's C{ssl}, and whether a port listens
(asked of the kernel, without connecting).
"""

from __future__ import annotations

import random
import socket
import ssl


def freePort() -> int:
    """
    A port in 20000-32000 (below the ephemeral range) that 127.0.0.1 can
    bind right now.
    """
    for _ in range(100):
        port = random.randint(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise AssertionError("no free port in 20000-32000")


def listeningOn(port: int) -> bool:
    """
    Whether something listens on 127.0.0.1:C{port}, according to
    C{/proc/net/tcp}: without connecting, which a proxy such as HAProxy
    would relay to its backend.
    """
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:  # pragma: no cover - not Linux
        return True
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


def escape(value: str) -> str:
    """
    Escape C{value} (a path, a URL) for use in an endpoint string.
    """
    return value.replace("\\", "\\\\").replace(":", "\\:")


def exchangeLine(caFile: str, certFile: str, keyFile: str, port: int, line: bytes,
                 timeout: float) -> bytes:
    """
    One mutual-TLS connection to C{127.0.0.1:port} from Python's C{ssl},
    trusting C{caFile}, presenting C{certFile}/C{keyFile} and checking the
    name C{localhost}: send C{line} and a newline, read until the answer ends
    with a newline (or the server closes), then close.
    """
    context = ssl.create_default_context(cafile=caFile)
    context.load_cert_chain(certFile, keyFile)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(line + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    return answer
