# -*- test-case-name: tests.test_policy -*-
"""
L{TLSPolicy}: one immutable value that says everything securetcp enforces on
a connection.

A policy is composed of parts (versions, ciphers, groups, trust anchors, own
credentials, peer verification, key strength, revocation), each a frozen
attrs class that validates itself; L{TLSPolicy} then rejects invalid
I{combinations} in one place.  Change a policy with L{attrs.evolve} or the
helpers on it::

    >>> policy = TLSPolicy.fromProfile("nist-800-52r2")
    >>> policy = policy.withTrust(TrustAnchors(caFile="ca.pem"))
    >>> policy = policy.withPeer(PeerVerification(clientAuth=ClientAuth.REQUIRED))

A L{PolicyError} raised here names the field by its path from L{TLSPolicy}
(C{versions.minimum}, C{trust.caFile}); the front ends that read options
(L{securetcp.config}, the endpoint-string parsers) say it in the user's
spelling (C{minVersion}, C{caCerts}), through L{securetcp.options}.

Files are not read here: L{securetcp.materials} loads them when a context is
built, which happens when an endpoint is created, so a wrong path still fails
at parse or listen time.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import attrs

from securetcp import _fields
from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLSVersion
from securetcp._fields import ClientAuth, Role
from securetcp._spelling import inUserSpelling
from securetcp.compliance import NIST_TLS12, NIST_TLS13
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern
from securetcp.profiles import DEFAULT_PROFILE, PROFILES, Profile

__all__ = [
    "ClientAuth",
    "Role",
    "TLSVersion",
    "Versions",
    "Ciphers",
    "Groups",
    "TrustAnchors",
    "Credentials",
    "PeerVerification",
    "KeyStrength",
    "Revocation",
    "TLSPolicy",
    "LegacyProfileWarning",
]


class LegacyProfileWarning(UserWarning):
    """
    A policy allows protocol versions or ciphers below NIST SP 800-52r2.
    """


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


def _defaultCiphers() -> Ciphers:
    return Ciphers(PROFILES[DEFAULT_PROFILE].tls12, PROFILES[DEFAULT_PROFILE].tls13)


def _defaultGroups() -> Groups:
    return Groups(PROFILES[DEFAULT_PROFILE].groups, PROFILES[DEFAULT_PROFILE].optionalGroups)


@attrs.frozen
class TLSPolicy:
    """
    Everything securetcp enforces on a connection.  Build one with
    L{TLSPolicy.fromProfile} (or C{TLSPolicy()} for the default profile) and
    change it with the C{with*} helpers or L{attrs.evolve}; every invalid
    combination raises L{PolicyError} at construction.

    @ivar name: a label for the audit log (e.g. C{"hl7-inbound"}).
    @ivar profile: the profile the policy started from.
    @ivar legacy: whether weaker-than-NIST settings were explicitly allowed
        (true only under the C{legacy} profile).
    """

    name: str = "default"
    profile: str = attrs.field(default=DEFAULT_PROFILE, converter=_fields.profileName)
    versions: Versions = attrs.field(factory=Versions)
    ciphers: Ciphers = attrs.field(factory=_defaultCiphers)
    groups: Groups = attrs.field(factory=_defaultGroups)
    trust: TrustAnchors = attrs.field(factory=TrustAnchors)
    credentials: Credentials = attrs.field(factory=Credentials)
    peer: PeerVerification = attrs.field(factory=PeerVerification)
    keys: KeyStrength = attrs.field(factory=KeyStrength)
    handshakeTimeout: float = attrs.field(default=10.0, converter=_fields.handshakeTimeout)
    alpn: Tuple[str, ...] = attrs.field(default=(), converter=_fields.alpnNames)
    revocation: Revocation = attrs.field(factory=Revocation)
    legacy: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.legacy:
            _refuseBelowNIST(self)
        _refuseInconsistent(self)

    @classmethod
    def fromProfile(cls, profile: str = DEFAULT_PROFILE, **changes: Any) -> TLSPolicy:
        """
        A policy with a named profile's content; C{changes} are L{TLSPolicy}
        fields that replace the profile's.

        @raise PolicyError: for an unknown profile or invalid changes.
        """
        p: Profile = PROFILES[_fields.profileName(profile)]
        if p.legacy:
            warnings.warn(
                f"securetcp profile {p.name!r} is insecure: {p.description}",
                LegacyProfileWarning,
                stacklevel=2,
            )
        fields: dict[str, Any] = dict(
            profile=p.name,
            versions=Versions(p.minVersion, p.maxVersion),
            ciphers=Ciphers(p.tls12, p.tls13),
            groups=Groups(p.groups, p.optionalGroups),
            keys=KeyStrength(p.minRSABits, p.minECBits),
            legacy=p.legacy,
        )
        fields.update(changes)
        return cls(**fields)

    def withVersions(self, minimum: Any = None, maximum: Any = None) -> TLSPolicy:
        return attrs.evolve(self, versions=Versions(
            minimum if minimum is not None else self.versions.minimum,
            maximum if maximum is not None else self.versions.maximum,
        ))

    def withTrust(self, trust: TrustAnchors) -> TLSPolicy:
        return attrs.evolve(self, trust=trust)

    def withCredentials(self, credentials: Credentials) -> TLSPolicy:
        return attrs.evolve(self, credentials=credentials)

    def withPeer(self, peer: PeerVerification) -> TLSPolicy:
        return attrs.evolve(self, peer=peer)

    def requireFor(self, role: Role, mutual: bool = False) -> TLSPolicy:
        """
        Check that this policy can be used for C{role}, and return it
        (adjusted for C{mutual} TLS: a server then requires a client
        certificate; a client without trust anchors trusts the system
        store).

        This is where a policy meets an endpoint, so its errors name the
        option an endpoint's user writes (C{caCerts}, not C{trust.caFile}).

        @raise PolicyError: when something the role needs is missing.
        """
        try:
            if role is Role.SERVER:
                return _forServer(self, mutual)
            return _forClient(self, mutual)
        except PolicyError as e:
            raise inUserSpelling(e) from None

    @property
    def compliant(self) -> bool:
        """
        Whether every setting of this policy stays within C{nist-800-52r2}.
        """
        return (
            not self.legacy
            and self.versions.minimum >= TLSVersion.TLSv1_2
            and set(self.ciphers.tls12) <= NIST_TLS12
            and set(self.ciphers.tls13) <= NIST_TLS13
            and all(GROUPS[g].nist for g in self.groups.required + self.groups.optional)
            and self.keys.minRSABits >= 2048
            and self.keys.minECBits >= 256
        )


def _refuseBelowNIST(policy: TLSPolicy) -> None:
    """
    Refuse, outside the legacy profile, what only the legacy profile allows.
    """
    if policy.versions.minimum < TLSVersion.TLSv1_2:
        raise PolicyError(
            "versions.minimum", policy.versions.minimum.value,
            "TLS below 1.2 is insecure and refused outside the legacy profile",
            "use TLSv1.2 or later, or profile=legacy for old peers",
        )
    for name in policy.ciphers.tls12:
        info = TLS12_CIPHERS[name]
        if not info.aead or info.kx == "RSA":
            raise PolicyError(
                "ciphers.tls12", name,
                "is not a forward-secret AEAD suite; refused outside the legacy profile",
                "use ECDHE with AES-GCM, or profile=legacy for old peers",
            )
    if policy.keys.minRSABits < 2048:
        raise PolicyError(
            "keys.minRSABits", policy.keys.minRSABits,
            "RSA keys below 2048 bits are refused outside the legacy profile",
            "use 2048 or more, or profile=legacy",
        )


def _refuseInconsistent(policy: TLSPolicy) -> None:
    """
    Refuse settings that contradict each other.
    """
    revocation, timeout = policy.revocation, policy.handshakeTimeout
    if revocation.ocspEnabled and revocation.ocspTimeout >= timeout:
        raise PolicyError(
            "revocation.ocspTimeout", revocation.ocspTimeout,
            f"must be shorter than handshakeTimeout ({timeout}s), which also bounds the "
            "wait for the OCSP answer",
            "lower revocation.ocspTimeout or raise handshakeTimeout")
    if policy.versions.minimum <= TLSVersion.TLSv1_2 and not policy.ciphers.tls12:
        raise PolicyError(
            "ciphers.tls12", "",
            f"no TLS 1.2 cipher, but versions.minimum is {policy.versions.minimum.value}",
            "list TLS 1.2 ciphers, or set versions.minimum=TLSv1.3",
        )
    if policy.versions.maximum == TLSVersion.TLSv1_3 and not policy.ciphers.tls13:
        raise PolicyError(
            "ciphers.tls13", "",
            "no TLS 1.3 suite, but versions.maximum is TLSv1.3",
            "list TLS 1.3 suites, or set versions.maximum=TLSv1.2",
        )


def _forServer(policy: TLSPolicy, mutual: bool) -> TLSPolicy:
    """
    L{TLSPolicy.requireFor} a server, in field names.
    """
    if not policy.credentials.configured:
        raise PolicyError("credentials.certificate", None,
                          "a TLS server needs its own certificate and key",
                          "give credentials.certificate=CERT.pem and "
                          "credentials.privateKey=KEY.pem")
    peer = policy.peer
    if mutual and peer.clientAuth is ClientAuth.OPTIONAL:
        raise PolicyError("peer.clientAuth", "optional",
                          "mutual TLS always requires a client certificate",
                          "use one-way TLS with peer.clientAuth=optional instead")
    if mutual and peer.clientAuth is ClientAuth.NONE:
        policy = attrs.evolve(policy, peer=attrs.evolve(peer, clientAuth=ClientAuth.REQUIRED))
    if policy.peer.clientAuth is not ClientAuth.NONE and not policy.trust.private:
        raise PolicyError("trust.caFile", None,
                          "a server that verifies client certificates needs the CA that "
                          "issues them", "give trust.caFile=CA.pem (or trust.caDir=DIR)")
    revocation = policy.revocation
    if revocation.requireStaple:
        raise PolicyError("revocation.requireStaple", True,
                          "only clients require a stapled OCSP response",
                          "servers staple their own with revocation.staple=true")
    if revocation.crlEnabled and not policy.trust.private:
        raise PolicyError("revocation.crlFiles",
                          ",".join(revocation.crlFiles + revocation.crlDirs),
                          "CRLs are verified against the CAs that issued them, and no CA is "
                          "configured", "give trust.caFile=CA.pem")
    if policy.peer.hostname:
        raise PolicyError("peer.hostname", policy.peer.hostname,
                          "only clients verify a hostname",
                          "authorise clients with peer.allow instead")
    return policy


def _forClient(policy: TLSPolicy, mutual: bool) -> TLSPolicy:
    """
    L{TLSPolicy.requireFor} a client, in field names.
    """
    if mutual and not policy.credentials.configured:
        raise PolicyError("credentials.certificate", None,
                          "a mutual-TLS client must present a certificate",
                          "give credentials.certificate=CERT.pem and "
                          "credentials.privateKey=KEY.pem")
    if policy.revocation.staple:
        raise PolicyError("revocation.staple", True, "only servers staple OCSP responses",
                          "clients use revocation.requireStaple=true")
    if policy.peer.clientAuth is not ClientAuth.NONE:
        raise PolicyError("peer.clientAuth", policy.peer.clientAuth.value,
                          "only servers ask for client certificates",
                          "remove peer.clientAuth from the client's policy")
    if not policy.trust.configured:
        policy = attrs.evolve(policy, trust=attrs.evolve(policy.trust, system=True))
    return policy
