# -*- test-case-name: tests.test_checkpoints -*-
"""
Signed checkpoints of an audit chain: a C{chain.checkpoint} record signs
the head of the chain (the C{seq} and C{hash} of the record before it), so
that nobody without the signing key can rewrite the records before it,
and a copy kept elsewhere anchors the head::

    signer = loadCheckpointSigner("/etc/securetcp/audit-checkpoint.key")
    signature = signer.sign(checkpointMessage(41, head))
    checker = loadCheckpointChecker("/etc/securetcp/audit-checkpoint.pub")
    checker.check(record)      # raises CheckpointError if it does not verify

Checkpoints are signed with Ed25519 (a PEM private key the operator gives;
verifiers need only the public key), or, for a chain written with an HMAC
key and no Ed25519 key, with HMAC-SHA256 under that key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Dict, Optional

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securetcp.errors import AuditLogError

#: What a checkpoint signs is prefixed with this, so that its signature
#: means nothing anywhere else.
_DOMAIN = b"securetcp audit checkpoint v1\n"


def checkpointMessage(seq: int, digest: str) -> bytes:
    """
    The bytes a checkpoint over record C{seq} with hash C{digest} signs.
    """
    return _DOMAIN + f"{seq}:{digest}".encode("ascii")


class CheckpointError(ValueError):
    """
    A checkpoint that does not verify.
    """


def _publicId(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _hmacId(key: bytes) -> str:
    return "hmac:" + hashlib.sha256(b"securetcp checkpoint key id\n" + key).hexdigest()[:16]


@attrs.frozen
class CheckpointSigner:
    """
    Signs checkpoints with an Ed25519 private key, or with an HMAC key.

    @ivar algorithm: C{ed25519} or C{hmac-sha256}.
    @ivar keyId: names the key in checkpoint records (a hash of the
        public key, or of the HMAC key): never the key itself.
    """

    algorithm: str
    keyId: str
    _ed25519: Optional[Ed25519PrivateKey] = attrs.field(default=None, repr=False, eq=False)
    _hmac: Optional[bytes] = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def ed25519(cls, key: Ed25519PrivateKey) -> CheckpointSigner:
        return cls("ed25519", _publicId(key.public_key()), ed25519=key)

    @classmethod
    def hmacSHA256(cls, key: bytes) -> CheckpointSigner:
        return cls("hmac-sha256", _hmacId(key), hmac=key)

    def sign(self, message: bytes) -> str:
        """
        The signature of C{message}, in hex.
        """
        if self._ed25519 is not None:
            return self._ed25519.sign(message).hex()
        assert self._hmac is not None
        return hmac.new(self._hmac, message, hashlib.sha256).hexdigest()


@attrs.frozen
class CheckpointChecker:
    """
    Checks the signatures of checkpoints: with an Ed25519 public key, and/or
    the HMAC key of a keyed chain.
    """

    public: Optional[Ed25519PublicKey] = attrs.field(default=None, eq=False)
    hmacKey: Optional[bytes] = attrs.field(default=None, repr=False, eq=False)

    @property
    def keyId(self) -> Optional[str]:
        """
        The key id of the public key, if there is one.
        """
        return _publicId(self.public) if self.public is not None else None

    def canCheck(self, record: Dict[str, Any]) -> bool:
        """
        Whether this checker holds the key for C{record}'s algorithm.
        """
        algorithm = record.get("algorithm")
        return ((algorithm == "ed25519" and self.public is not None)
                or (algorithm == "hmac-sha256" and bool(self.hmacKey)))

    def check(self, record: Dict[str, Any]) -> None:
        """
        Check the signature of the checkpoint C{record}.

        @raise CheckpointError: if it does not verify with this checker's
            key, or was made by another key or algorithm.
        """
        try:
            message = checkpointMessage(int(record["coversSeq"]), str(record["coversHash"]))
            signature = bytes.fromhex(str(record["signature"]))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError("malformed checkpoint (coversSeq, coversHash, signature)") \
                from None
        algorithm = record.get("algorithm")
        if algorithm == "ed25519" and self.public is not None:
            if record.get("keyId") != self.keyId:
                raise CheckpointError(f"signed by key {record.get('keyId')}, not by the given "
                                      f"public key ({self.keyId})")
            try:
                self.public.verify(signature, message)
            except InvalidSignature:
                raise CheckpointError("the signature does not verify with the given "
                                      "public key") from None
        elif algorithm == "hmac-sha256" and self.hmacKey:
            expected = hmac.new(self.hmacKey, message, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                raise CheckpointError("the HMAC does not verify with the given key")
        else:
            raise CheckpointError(f"no key to check a {algorithm!r} checkpoint with")


def loadCheckpointSigner(path: str) -> CheckpointSigner:
    """
    The checkpoint signer of the Ed25519 private key in the PEM file C{path}
    (unencrypted; make it readable by the service only).

    @raise AuditLogError: naming the file, if it is not such a key.
    """
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except OSError as e:
        raise AuditLogError(path, f"cannot read the checkpoint key: {e.strerror}",
                            "give a readable PEM Ed25519 private key") from None
    except (ValueError, TypeError) as e:
        raise AuditLogError(path, f"is not an unencrypted PEM private key ({e})",
                            "make one with `openssl genpkey -algorithm ed25519 -out "
                            "FILE`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditLogError(path, "is not an Ed25519 private key",
                            "make one with `openssl genpkey -algorithm ed25519 -out FILE`")
    return CheckpointSigner.ed25519(key)


def loadCheckpointPublicKey(path: str) -> Ed25519PublicKey:
    """
    The Ed25519 public key in the PEM file C{path} (as written by C{openssl
    pkey -pubout}).

    @raise AuditLogError: naming the file, if it is not such a key.
    """
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_public_key(f.read())
    except OSError as e:
        raise AuditLogError(path, f"cannot read the checkpoint public key: {e.strerror}",
                            "give a readable PEM Ed25519 public key") from None
    except (ValueError, TypeError) as e:
        raise AuditLogError(path, f"is not a PEM public key ({e})",
                            "extract it with `openssl pkey -in KEY -pubout -out FILE`") \
            from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditLogError(path, "is not an Ed25519 public key",
                            "extract it with `openssl pkey -in KEY -pubout -out FILE`")
    return key


def checkpointSigner(value: Any, hmacKey: Optional[bytes] = None
                     ) -> Optional[CheckpointSigner]:
    """
    The signer for a writer's C{checkpointKey} option: a L{CheckpointSigner},
    an C{Ed25519PrivateKey}, or the path of a PEM file holding one; without
    one, an HMAC signer with the chain's C{hmacKey}, if it has one.

    @raise AuditLogError: for a key file that is not an Ed25519 key.
    @raise TypeError: for anything else.
    """
    if value is None:
        return CheckpointSigner.hmacSHA256(hmacKey) if hmacKey else None
    if isinstance(value, CheckpointSigner):
        return value
    if isinstance(value, Ed25519PrivateKey):
        return CheckpointSigner.ed25519(value)
    if isinstance(value, str):
        return loadCheckpointSigner(value)
    raise TypeError(f"checkpointKey must be an Ed25519 private key or the path of one, "
                    f"not {type(value).__name__}")


@attrs.frozen
class Anchor:
    """
    A head of a chain kept elsewhere: the chain must contain a record with
    this C{hash} (at C{seq}, if known).
    """

    seq: Optional[int]
    hash: str


_HEX64 = frozenset("0123456789abcdef")


def parseAnchor(text: str) -> Anchor:
    """
    An anchor from C{HASH} or C{SEQ:HASH} (as C{audit verify} prints the
    last hash), or from the JSON of a record of the chain (a copied
    C{chain.checkpoint}, say: its own C{seq} and C{hash}, else the
    C{coversSeq} and C{coversHash} it signs).

    @raise ValueError: naming what is wrong.
    """
    text = text.strip()
    if text.startswith("{"):
        record = json.loads(text)
        if "seq" in record and "hash" in record:
            return _anchor(record["seq"], record["hash"])
        if "coversSeq" in record and "coversHash" in record:
            return _anchor(record["coversSeq"], record["coversHash"])
        raise ValueError("the record has neither seq and hash nor coversSeq and coversHash")
    seq, _, digest = text.rpartition(":")
    return _anchor(int(seq) if seq else None, digest)


def _anchor(seq: Any, digest: Any) -> Anchor:
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX64):
        raise ValueError(f"{digest!r} is not a SHA-256 hash (64 lower-case hex digits)")
    if seq is not None and (not isinstance(seq, int) or seq < 1):
        raise ValueError(f"{seq!r} is not a record number")
    return Anchor(seq, digest)


def readAnchor(path: str) -> Anchor:
    """
    The anchor in the last non-empty line of the file C{path} (see
    L{parseAnchor}): a file of copied checkpoints gives its last one.

    @raise AuditLogError: naming the file, if it holds no anchor.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        if not lines:
            raise ValueError("the file is empty")
        return parseAnchor(lines[-1])
    except OSError as e:
        raise AuditLogError(path, f"cannot read the anchor: {e.strerror}",
                            "give a file holding a copied checkpoint record or a hash") \
            from None
    except ValueError as e:
        raise AuditLogError(path, f"holds no anchor ({e})",
                            "give a file whose last line is a copied checkpoint record, "
                            "a record of the chain, or SEQ:HASH") from None
