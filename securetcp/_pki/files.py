# -*- test-case-name: tests.test_pki -*-
"""
The certificate authority's files: written atomically with their modes,
the two files an C{issue-*} command writes, and reading back a
certificate to revoke, each with an error that names the file and says
what to do.

    certPath, keyPath = outPaths("pump-0042")       # pump-0042.pem, pump-0042.key
    writeAtomically(keyPath, keyPEM(key), 0o600)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Tuple

from cryptography import x509

from securetcp.errors import PKIError


def writeAtomically(path: str, data: bytes, mode: int) -> None:
    """
    Write C{data} to a temporary file in C{path}'s directory with C{mode}
    and rename it over C{path}, so a reader never sees half a file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def outPaths(out: str) -> Tuple[str, str]:
    """
    C{server} -> (C{server.pem}, C{server.key}); C{server.pem} too.
    """
    base = out[:-4] if out.endswith(".pem") else out
    if not os.path.basename(base):
        raise PKIError(out, "is not a file name", "write e.g. --out pump-0042")
    directory = os.path.dirname(os.path.abspath(base))
    if not os.path.isdir(directory):
        raise PKIError(out, f"the directory {directory} does not exist", "create it first")
    return base + ".pem", base + ".key"


def readCertificate(path: str) -> x509.Certificate:
    """
    The certificate (PEM or DER) in C{path}.

    @raise PKIError: if it cannot be read or holds no certificate.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        return (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except OSError as e:
        raise PKIError(path, f"cannot be read: {e.strerror}",
                       "give the certificate file to revoke") from None
    except ValueError:
        raise PKIError(path, "is not a certificate (PEM or DER)",
                       "give the .pem file written by issue-server or issue-client") from None
