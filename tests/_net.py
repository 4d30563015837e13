"""
Small helpers for tests that start real servers: a free port below the
ephemeral range, and escaping a value for an endpoint string.
"""

from __future__ import annotations

import random
import socket


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


def escape(value: str) -> str:
    """
    Escape C{value} (a path, a URL) for use in an endpoint string.
    """
    return value.replace("\\", "\\\\").replace(":", "\\:")
