# -*- test-case-name: tests.test_policy -*-
"""
The parts of a L{securetcp.policy.TLSPolicy}: versions, ciphers, groups,
trust anchors, own credentials, peer verification, key strength and
revocation.  Each is a frozen attrs class whose converters (from
L{securetcp._fields}) check and normalise its fields, and which refuses
contradictions among them; L{securetcp.policy} exports them::

    >>> Versions("1.2", "TLSv1.3").includes(TLSVersion.TLSv1_3)
    True
    >>> Groups("P-256, X25519").required
    ('secp256r1', 'X25519')

Errors name the field by its path from L{TLSPolicy} (C{versions.minimum}).
"""

from __future__ import annotations

from typing import Optional, Tuple

import attrs

import securetcp._fields as _fields
from securetcp._catalogue import TLSVersion
from securetcp._fields import ClientAuth
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern


@attrs.frozen
class Versions:
    """
    The range of protocol versions a policy negotiates.
    """

    minimum: TLSVersion = attrs.field(
        default=TLSVersion.TLSv1_2, converter=_fields.minimumVersion
    )
    maximum: TLSVersion = attrs.field(
        default=TLSVersion.TLSv1_3, converter=_fields.maximumVersion
    )

    def __attrs_post_init__(self) -> None:
        if self.minimum > self.maximum:
            raise PolicyError(
                "versions.minimum", self.minimum.value,
                f"is above versions.maximum {self.maximum.value}",
                "lower versions.minimum or raise versions.maximum",
            )

    def raiseMinimumTo(self, version: TLSVersion) -> Versions:
        """
        A copy whose minimum is at least C{version}.
        """
        return attrs.evolve(self, minimum=max(self.minimum, _fields.minimumVersion(version)))

    def includes(self, version: TLSVersion) -> bool:
        return self.minimum <= version <= self.maximum


@attrs.frozen
class Ciphers:
    """
    The TLS 1.2 (and older) cipher list and the TLS 1.3 suites, in order of
    preference.  Names are OpenSSL's; unknown names are rejected.
    """

    tls12: Tuple[str, ...] = attrs.field(converter=_fields.tls12Ciphers, default=())
    tls13: Tuple[str, ...] = attrs.field(converter=_fields.tls13Suites, default=())


@attrs.frozen
class Groups:
    """
    Key-exchange groups in order of preference.  C{optional} groups come
    first but are used only when the linked OpenSSL has them; C{required}
    groups must all be available or building a context fails.
    """

    required: Tuple[str, ...] = attrs.field(converter=_fields.requiredGroups, default=())
    optional: Tuple[str, ...] = attrs.field(converter=_fields.optionalGroups, default=())

    def __attrs_post_init__(self) -> None:
        if not self.required and not self.optional:
            raise PolicyError("groups", (), "no key-exchange group",
                              "name at least one group, e.g. P-256")


@attrs.frozen
class TrustAnchors:
    """
    Which certificate authorities a policy trusts to vouch for peers: a PEM
    file, a hashed directory (C{openssl rehash}), and/or the system store.
    """

    caFile: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    caDir: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    system: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.caFile or self.caDir or self.system)

    @property
    def private(self) -> bool:
        return bool(self.caFile or self.caDir)


@attrs.frozen
class Credentials:
    """
    Our own certificate chain and private key.

    @ivar certificate: PEM file with the certificate (and optionally its
        chain); defaults to C{privateKey}'s file, as Twisted's C{ssl:} does.
    @ivar privateKey: PEM file with the private key.
    @ivar extraChain: PEM file with intermediate certificates to send.
    @ivar pkcs12: a PKCS#12 bundle instead of C{certificate}/C{privateKey}.
    @ivar passphrase: where the key's passphrase comes from: C{env:NAME},
        C{file:PATH} or C{pass:TEXT}.
    @ivar dhParameters: PEM DH parameters for DHE suites (legacy peers).
    """

    certificate: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    privateKey: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    extraChain: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    pkcs12: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    passphrase: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)
    dhParameters: Optional[str] = attrs.field(default=None, converter=_fields.optionalPath)

    def __attrs_post_init__(self) -> None:
        if self.pkcs12 and (self.certificate or self.privateKey):
            raise PolicyError(
                "credentials.pkcs12", self.pkcs12,
                "cannot be combined with credentials.certificate/credentials.privateKey",
                "give either a PKCS#12 bundle or a certificate and key",
            )
        if self.passphrase and not self.passphrase.startswith(_fields.PASSPHRASE_SOURCES):
            raise PolicyError(
                "credentials.passphrase", "(hidden)",
                "unknown passphrase source",
                "write env:VARIABLE, file:PATH or pass:TEXT",
            )

    @property
    def configured(self) -> bool:
        return bool(self.certificate or self.privateKey or self.pkcs12)

    @property
    def certificateFile(self) -> Optional[str]:
        return self.certificate or self.privateKey

    @property
    def keyFile(self) -> Optional[str]:
        return self.privateKey or self.certificate


@attrs.frozen
class PeerVerification:
    """
    How the peer is verified and authorised.

    @ivar clientAuth: (servers) whether to ask for a client certificate.
    @ivar hostname: (clients) the DNS name or IP address the server's
        certificate must be valid for.
    @ivar allow: identity allow-list; empty means any peer with a valid chain.
    @ivar pins: SHA-256 SPKI digests; when given, some certificate in the
        peer's chain must match one.
    """

    clientAuth: ClientAuth = attrs.field(
        default=ClientAuth.NONE, converter=_fields.clientAuthMode
    )
    hostname: Optional[str] = attrs.field(default=None, converter=_fields.hostname)
    allow: Tuple[IdentityPattern, ...] = attrs.field(
        default=(), converter=_fields.identityPatterns
    )
    pins: Tuple[bytes, ...] = attrs.field(default=(), converter=_fields.spkiPins)


@attrs.frozen
class KeyStrength:
    """
    The smallest keys accepted, for our own certificate and the peer's chain.
    """

    minRSABits: int = 2048
    minECBits: int = 256

    def __attrs_post_init__(self) -> None:
        if self.minRSABits < 1024:
            raise PolicyError("keys.minRSABits", self.minRSABits,
                              "RSA keys below 1024 bits are never accepted",
                              "use 2048 or more")
        if self.minECBits < 224:
            raise PolicyError("keys.minECBits", self.minECBits,
                              "EC keys below 224 bits are never accepted",
                              "use 256 or more")


@attrs.frozen
class Revocation:
    """
    Certificate revocation checking of the peer's chain.

    @ivar crlFiles: CRL files (PEM, possibly several per file, or DER).
    @ivar crlDirs: directories whose every file is read as CRLs.
    @ivar mode: C{"hard"}: a peer whose revocation status cannot be
        established (no CRL for its issuer, CRL expired) is rejected;
        C{"soft"}: it is accepted and the audit record carries a warning.
    @ivar scope: C{"leaf"}: check the peer's certificate; C{"chain"}: every
        certificate in the chain below the trust anchor.
    @ivar reloadInterval: seconds between checks of the CRL files for
        changes (0: only on demand).
    @ivar enforceOnLive: when a reload revokes a connected peer, close it.
    @ivar ocsp: C{"off"}; C{"prefer"}: ask the OCSP responder (from the
        certificate's AIA or C{ocspResponder}), reject a revoked peer, and
        accept with a warning when no answer can be had; C{"require"}: a
        C{good} answer is needed (no answer: rejected under C{mode="hard"},
        accepted with a warning under C{"soft"}).
    @ivar ocspResponder: a responder URL that overrides the certificates'.
    @ivar ocspTimeout: seconds to wait for a responder.
    @ivar ocspNonce: send a nonce (and check the echo) in OCSP requests.
    @ivar staple: (servers) fetch our own OCSP response and staple it.
    @ivar requireStaple: (clients) reject a server that staples no valid
        OCSP response.
    """

    crlFiles: Tuple[str, ...] = attrs.field(default=(), converter=_fields.paths)
    crlDirs: Tuple[str, ...] = attrs.field(default=(), converter=_fields.paths)
    mode: str = attrs.field(default="hard", converter=_fields.revocationMode)
    scope: str = attrs.field(default="leaf", converter=_fields.revocationScope)
    reloadInterval: float = attrs.field(default=60.0, converter=_fields.reloadInterval)
    enforceOnLive: bool = False
    ocsp: str = attrs.field(default="off", converter=_fields.ocspMode)
    ocspResponder: Optional[str] = attrs.field(default=None, converter=_fields.responderURL)
    ocspTimeout: float = attrs.field(default=5.0, converter=_fields.ocspTimeout)
    ocspNonce: bool = True
    staple: bool = False
    requireStaple: bool = False

    @property
    def crlEnabled(self) -> bool:
        """
        Whether CRLs are checked.
        """
        return bool(self.crlFiles or self.crlDirs)

    @property
    def ocspEnabled(self) -> bool:
        """
        Whether the peer's status is asked of an OCSP responder (or read
        from a stapled response).
        """
        return self.ocsp != "off" or self.requireStaple

    @property
    def enabled(self) -> bool:
        """
        Whether any revocation checking is on.
        """
        return self.crlEnabled or self.ocspEnabled
