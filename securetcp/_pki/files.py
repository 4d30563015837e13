# -*- test-case-name: tests.test_pki -*-
"""
The certificate authority's files: written atomically with their modes,
the two files an C{issue-*} command writes, reading the CA, its CRL
number and a certificate to revoke, each with an error that names the
file and says what to do.

    certPath, keyPath = outPaths("pump-0042")       # pump-0042.pem, pump-0042.key
    writeAtomically(keyPath, keyPEM(key), 0o600)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Dict, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from securetcp.errors import PKIError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
INDEX = "index.json"


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


def readCA(directory: str) -> Tuple[x509.Certificate,
                                    Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey],
                                    Dict[str, Any]]:
    """
    The CA certificate, its key and the index in C{directory}.

    @raise PKIError: if there is no CA there, or its files are unusable.
    """
    if not os.path.isdir(directory):
        raise PKIError(directory, "CA directory does not exist",
                       "create a CA first: python -m securetcp pki init --dir "
                       f"{directory} --name NAME")
    for name in (CA_CERT, CA_KEY, INDEX):
        if not os.path.isfile(os.path.join(directory, name)):
            raise PKIError(directory, f"holds no CA ({name} is missing)",
                           "give the --dir of `pki init`, or run `pki init` there")
    try:
        with open(os.path.join(directory, CA_CERT), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(directory, CA_KEY), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        with open(os.path.join(directory, INDEX), encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError, TypeError) as e:
        raise PKIError(directory, f"cannot read the CA: {e}",
                       "restore ca.pem, ca.key and index.json from your backup") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PKIError(os.path.join(directory, CA_KEY), "is not an ECDSA or RSA key")
    return cert, key, index


def readCRLNumber(path: str) -> int:
    """
    The number of the last CRL written, kept in C{path} (0 if it is gone).

    @raise PKIError: if it does not hold a number.
    """
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or "0")
    except FileNotFoundError:
        return 0
    except ValueError:
        raise PKIError(path, "does not hold a number",
                       "write the number of the last CRL issued into it") from None
