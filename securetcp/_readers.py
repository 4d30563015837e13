# -*- test-case-name: tests.test_credentials,tests.test_materials,tests.test_purpose -*-
"""
The file readers that L{securetcp.materials} builds its one L{Materials}
value from: certificates, keys (encrypted, PKCS#12), DH parameters, CA files
and directories, each with a L{CredentialError} naming the file and the fix.
Only L{securetcp.materials} calls them (and tools that look at one file)::

    own = loadCredentials(policy.credentials, policy.keys)
    own.chain[0].subject
"""

from __future__ import annotations

import base64
import datetime
import functools
import os
import re
from typing import List, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from securetcp.errors import CredentialError
from securetcp.policy import Credentials, KeyStrength, TrustAnchors


@attrs.frozen
class LoadedCredentials:
    """
    A certificate chain (leaf first) and its private key, checked to match.
    """

    chain: Sequence[x509.Certificate]
    key: PrivateKeyTypes



MAX_FILE_BYTES = 64 * 2**20


def _read(field: str, path: str, what: str) -> bytes:
    if not os.path.exists(path):
        raise CredentialError(
            field, path, f"{what} file does not exist",
            "check the path (relative paths are taken from the current "
            f"directory, {os.getcwd()!r}, or from the policy file's directory)",
        )
    if os.path.isdir(path):
        raise CredentialError(field, path, f"{what} path is a directory, not a file",
                              "give the PEM file itself")
    if not os.path.isfile(path):
        raise CredentialError(field, path, f"{what} path is not a regular file",
                              "give the PEM file itself")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise CredentialError(field, path,
                              f"{what} file is larger than {MAX_FILE_BYTES // 2**20} MiB",
                              "check that this is the right file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CredentialError(field, path, f"{what} file cannot be read: {e.strerror}",
                              "fix the file's permissions for this user") from None


def readPassphrase(source: Optional[str]) -> Optional[bytes]:
    """
    Resolve a passphrase source (C{env:NAME}, C{file:PATH}, C{pass:TEXT}).

    @raise CredentialError: when the variable or file is missing.
    """
    if source is None:
        return None
    kind, _, rest = source.partition(":")
    if kind == "env":
        value = os.environ.get(rest)
        if value is None:
            raise CredentialError("passphrase", source,
                                  f"environment variable {rest!r} is not set",
                                  "export it before starting, or use file:PATH")
        return value.encode("utf-8")
    if kind == "file":
        lines = _read("passphrase", rest, "passphrase").splitlines()
        return lines[0] if lines else b""
    return rest.encode("utf-8")


def loadCertificates(field: str, path: str, what: str = "certificate") -> List[x509.Certificate]:
    """
    Every certificate in a PEM (or single DER) file.

    @raise CredentialError: if there is none.
    """
    data = _read(field, path, what)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CredentialError(
            field, path, f"{what} file holds no readable certificate",
            "give a PEM file with -----BEGIN CERTIFICATE----- blocks",
        ) from None
    return certs


def loadDHParameters(path: str) -> bytes:
    """
    The PEM DH parameters in C{path}, checked to be DH parameters.

    @raise CredentialError: naming the file, when it cannot be read or
        holds no DH parameters.
    """
    data = _read("dhParameters", path, "DH parameters")
    match = _DH_PEM.search(data)
    try:
        if match is None:
            raise ValueError("no DH PARAMETERS block")
        base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except ValueError:
        raise CredentialError("dhParameters", path, "not a PEM DH parameters file",
                              "make one with openssl dhparam -out dh.pem 2048") from None
    return data


#: A PEM block of DH parameters (OpenSSL parses them when it uses them:
#: C{cryptography} deprecates finite-field DH).
_DH_PEM = re.compile(rb"-----BEGIN (?:X9\.42 )?DH PARAMETERS-----(.*?)"
                     rb"-----END (?:X9\.42 )?DH PARAMETERS-----", re.DOTALL)


def _loadKey(field: str, path: str, passphrase: Optional[bytes]) -> PrivateKeyTypes:
    data = _read(field, path, "private key")
    if b"PRIVATE KEY-----" not in data:
        raise CredentialError(field, path, "holds no PEM private key",
                              "give the key's PEM file (BEGIN PRIVATE KEY)")
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        if passphrase is None:
            raise CredentialError(
                field, path, "the private key is encrypted and no passphrase was given",
                "give passphrase=env:VARIABLE or passphrase=file:PATH",
            ) from None
        raise CredentialError(field, path, f"cannot load the key: {e}",
                              "check the passphrase") from None
    except ValueError:
        if passphrase is not None:
            raise CredentialError(field, path,
                                  "cannot decrypt the private key: wrong passphrase?",
                                  "check the passphrase source") from None
        raise CredentialError(field, path, "the private key cannot be parsed",
                              "give an unencrypted or PKCS#8 PEM key") from None


def publicKeyBytes(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


@functools.lru_cache(maxsize=4096)
def certificateKeyProblem(certificate: x509.Certificate, strength: KeyStrength) -> Optional[str]:
    """
    L{keyProblem} for a certificate's key, cached per certificate (the
    verify callback asks for every certificate of every handshake).
    """
    return keyProblem(certificate.public_key(), strength)


def keyProblem(publicKey: object, strength: KeyStrength) -> Optional[str]:
    """
    Why a public key is too weak for C{strength}, or C{None}.
    """
    if isinstance(publicKey, rsa.RSAPublicKey):
        if publicKey.key_size < strength.minRSABits:
            return f"RSA key of {publicKey.key_size} bits is below {strength.minRSABits}"
    elif isinstance(publicKey, ec.EllipticCurvePublicKey):
        if publicKey.curve.key_size < strength.minECBits:
            return (f"EC key on {publicKey.curve.name} ({publicKey.curve.key_size} "
                    f"bits) is below {strength.minECBits}")
    elif isinstance(publicKey, dsa.DSAPublicKey):
        return "DSA keys are not accepted"
    elif isinstance(publicKey, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return None
    return None


def _loadPKCS12(path: str, passphrase: Optional[bytes]
                ) -> Tuple[List[x509.Certificate], PrivateKeyTypes]:
    data = _read("pkcs12", path, "PKCS#12")
    try:
        bundle = pkcs12.load_pkcs12(data, passphrase)
    except (ValueError, TypeError):
        raise CredentialError(
            "pkcs12", path, "cannot open the PKCS#12 bundle (wrong passphrase or not PKCS#12)",
            "check the file and passphrase source",
        ) from None
    if bundle.cert is None or bundle.key is None:
        raise CredentialError("pkcs12", path, "the bundle lacks a certificate or a key",
                              "export it with both")
    chain = [bundle.cert.certificate] + [c.certificate for c in bundle.additional_certs]
    return chain, bundle.key


def _checkLeaf(leaf: x509.Certificate, strength: KeyStrength, field: str, path: str,
               now: datetime.datetime) -> None:
    problem = keyProblem(leaf.public_key(), strength)
    if problem:
        raise CredentialError(field, path, f"own key too weak: {problem}",
                              "issue a certificate with a stronger key")
    if leaf.not_valid_after_utc < now:
        raise CredentialError(
            field, path,
            f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            "renew it; peers would reject every connection",
        )
    if leaf.not_valid_before_utc > now:
        raise CredentialError(
            field, path,
            f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check the clock or the certificate",
        )


#: The extended key usage our own certificate needs in each role, and the
#: words that name it (C{openssl x509 -purpose} and curl refuse the rest).
PURPOSES = {
    "server": (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth", "TLS server"),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth", "TLS client"),
}


def purposeProblem(certificate: x509.Certificate, role: str) -> Optional[str]:
    """
    Why C{certificate} cannot be ours in C{role} (C{"server"} or
    C{"client"}): its extended key usage extension leaves out the purpose
    (TLS peers refuse it: curl says "unsuitable certificate purpose").  A
    certificate without the extension may serve any purpose.
    """
    oid, name, what = PURPOSES[role]
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if oid in usages:
        return None
    given = ", ".join(getattr(u, "_name", None) or u.dotted_string for u in usages) or "none"
    return (f"the certificate's extended key usage ({given}) does not include {name}: "
            f"every peer would refuse it as a {what} certificate")


def loadCredentials(
    credentials: Credentials,
    strength: KeyStrength,
    now: Optional[datetime.datetime] = None,
    role: Optional[str] = None,
) -> LoadedCredentials:
    """
    Load and check our own chain and key (each file read once).

    @param role: C{"server"} or C{"client"}: the certificate must be for
        that purpose (L{purposeProblem}); C{None}: not checked.
    @raise CredentialError: naming the file, when a file is missing or
        unreadable, the key is encrypted without a passphrase, the key does
        not match the certificate, the key is too weak, the certificate is
        not valid now or not for C{role}.
    """
    passphrase = readPassphrase(credentials.passphrase)
    if credentials.pkcs12:
        chain, key = _loadPKCS12(credentials.pkcs12, passphrase)
        certField, certPath = "pkcs12", credentials.pkcs12
    else:
        certPath = credentials.certificateFile or ""
        certField = "certKey" if credentials.certificate else "privateKey"
        chain = loadCertificates(certField, certPath)
        key = _loadKey("privateKey", credentials.keyFile or "", passphrase)
        if credentials.extraChain:
            chain = chain + loadCertificates("extraCertChain", credentials.extraChain)
    if publicKeyBytes(chain[0]) != publicKeyBytes(key):
        raise CredentialError(
            "privateKey", credentials.keyFile or certPath,
            f"the private key does not match the certificate in {certPath}",
            "give the key that was generated with this certificate",
        )
    _checkLeaf(chain[0], strength, certField, certPath,
               now or datetime.datetime.now(datetime.UTC))
    problem = purposeProblem(chain[0], role) if role is not None else None
    if problem and role is not None:
        raise CredentialError(certField, certPath, problem,
                              f"issue a certificate with the {PURPOSES[role][1]} extended "
                              "key usage (or without that extension)")
    return LoadedCredentials(chain, key)


def loadTrust(trust: TrustAnchors) -> List[x509.Certificate]:
    """
    The CA certificates of C{trust}'s C{caCerts} file and C{caCertsDir}.
    """
    caCerts: List[x509.Certificate] = []
    if trust.caFile:
        caCerts = loadCAFile(trust.caFile)
    if trust.caDir:
        caCerts = caCerts + loadCADir(trust.caDir)
    return caCerts


def loadCAFile(path: str, field: str = "caCerts") -> List[x509.Certificate]:
    """
    The CA certificates in a PEM bundle.
    """
    return loadCertificates(field, path, "CA certificate")


def loadCADir(path: str, field: str = "caCertsDir") -> List[x509.Certificate]:
    """
    The CA certificates in every PEM or DER file of a directory (as Twisted's
    C{ssl:} client reads C{caCertsDir}); other files are skipped.

    @raise CredentialError: if the directory does not exist or holds no
        certificate.
    """
    if not os.path.isdir(path):
        raise CredentialError(
            field, path,
            "is not a directory" if os.path.exists(path) else "directory does not exist",
            "give a directory of CA certificate files, or use caCerts=FILE",
        )
    found: List[x509.Certificate] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            continue
        try:
            found.extend(loadCertificates(field, full, "CA certificate"))
        except CredentialError:
            continue
    if not found:
        raise CredentialError(field, path, "directory holds no CA certificate",
                              "put PEM CA certificates in it")
    return found
