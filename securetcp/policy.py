# -*- test-case-name: tests.test_policy -*-
"""
L{TLSPolicy}: one immutable value that says everything securetcp enforces on
a connection.

A policy is composed of parts (versions, ciphers, groups, trust anchors, own
credentials, peer verification, key strength), each a frozen attrs class that
validates itself; L{TLSPolicy} then rejects invalid I{combinations} in one
place.  Change a policy with L{attrs.evolve} or the helpers on it::

    >>> policy = TLSPolicy.fromProfile("nist-800-52r2")
    >>> policy = policy.withTrust(TrustAnchors(caFile="ca.pem"))
    >>> policy = policy.withPeer(PeerVerification(clientAuth=ClientAuth.REQUIRED))

Files are not read here: L{securetcp.materials} loads them when a context is
built, which happens when an endpoint is created, so a wrong path still fails
at parse or listen time.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import warnings
from typing import Any, Optional, Tuple

import attrs

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, TLSVersion, canonicalGroup
from securetcp.compliance import NIST_TLS12, NIST_TLS13
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern, parseIdentityPattern, parsePin
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


class ClientAuth(enum.Enum):
    """
    Whether a server asks clients for a certificate.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


class Role(enum.Enum):
    """
    Which side of the connection a context is for.
    """

    SERVER = "server"
    CLIENT = "client"


def _tuple(value: Any) -> Tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return (value,)


def _version(value: Any, field: str = "minVersion") -> TLSVersion:
    if isinstance(value, TLSVersion):
        return value
    try:
        return TLSVersion.parse(str(value))
    except ValueError:
        raise PolicyError(
            field, value, "unknown TLS version",
            "use one of " + ", ".join(v.value for v in TLSVersion),
        ) from None


def _maxVersion(value: Any) -> TLSVersion:
    return _version(value, "maxVersion")


@attrs.frozen
class Versions:
    """
    The range of protocol versions a policy negotiates.
    """

    minimum: TLSVersion = attrs.field(
        default=TLSVersion.TLSv1_2, converter=_version
    )
    maximum: TLSVersion = attrs.field(
        default=TLSVersion.TLSv1_3, converter=_maxVersion
    )

    def __attrs_post_init__(self) -> None:
        if self.minimum > self.maximum:
            raise PolicyError(
                "minVersion", self.minimum.value,
                f"is above maxVersion {self.maximum.value}",
                "lower minVersion or raise maxVersion",
            )

    def raiseMinimumTo(self, version: TLSVersion) -> Versions:
        """
        A copy whose minimum is at least C{version}.
        """
        return attrs.evolve(self, minimum=max(self.minimum, _version(version)))

    def includes(self, version: TLSVersion) -> bool:
        return self.minimum <= version <= self.maximum


def _ciphers12(value: Any) -> Tuple[str, ...]:
    names = _splitNames(value)
    for name in names:
        if name not in TLS12_CIPHERS:
            raise PolicyError(
                "ciphers", name, "unknown TLS 1.2 cipher suite name",
                "use OpenSSL names such as ECDHE-ECDSA-AES128-GCM-SHA256; "
                "securetcp knows: " + ", ".join(sorted(TLS12_CIPHERS)),
            )
    return names


def _suites13(value: Any) -> Tuple[str, ...]:
    names = _splitNames(value)
    for name in names:
        if name not in TLS13_SUITES:
            raise PolicyError(
                "ciphersuites", name, "unknown TLS 1.3 cipher suite name",
                "use one of " + ", ".join(TLS13_SUITES),
            )
    return names


def _splitNames(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        items = [v for v in re.split(r"[:,\s]+", value) if v]
    else:
        items = [str(v).strip() for v in _tuple(value)]
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return tuple(seen)


@attrs.frozen
class Ciphers:
    """
    The TLS 1.2 (and older) cipher list and the TLS 1.3 suites, in order of
    preference.  Names are OpenSSL's; unknown names are rejected.
    """

    tls12: Tuple[str, ...] = attrs.field(converter=_ciphers12, default=())
    tls13: Tuple[str, ...] = attrs.field(converter=_suites13, default=())


def _groups(value: Any) -> Tuple[str, ...]:
    out = []
    for name in _splitNames(value):
        try:
            canonical = canonicalGroup(name)
        except KeyError:
            raise PolicyError(
                "groups", name, "unknown key-exchange group",
                "use one of " + ", ".join(GROUPS) + " (or P-256, P-384)",
            ) from None
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


@attrs.frozen
class Groups:
    """
    Key-exchange groups in order of preference.  C{optional} groups come
    first but are used only when the linked OpenSSL has them; C{required}
    groups must all be available or building a context fails.
    """

    required: Tuple[str, ...] = attrs.field(converter=_groups, default=())
    optional: Tuple[str, ...] = attrs.field(converter=_groups, default=())

    def __attrs_post_init__(self) -> None:
        if not self.required and not self.optional:
            raise PolicyError("groups", (), "no key-exchange group",
                              "name at least one group, e.g. P-256")


def _optionalPath(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return str(value)


@attrs.frozen
class TrustAnchors:
    """
    Which certificate authorities a policy trusts to vouch for peers: a PEM
    file, a hashed directory (C{openssl rehash}), and/or the system store.
    """

    caFile: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    caDir: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    system: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.caFile or self.caDir or self.system)

    @property
    def private(self) -> bool:
        return bool(self.caFile or self.caDir)


_PASSPHRASE_SOURCES = ("env:", "file:", "pass:")


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

    certificate: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    privateKey: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    extraChain: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    pkcs12: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    passphrase: Optional[str] = attrs.field(default=None, converter=_optionalPath)
    dhParameters: Optional[str] = attrs.field(default=None, converter=_optionalPath)

    def __attrs_post_init__(self) -> None:
        if self.pkcs12 and (self.certificate or self.privateKey):
            raise PolicyError(
                "pkcs12", self.pkcs12,
                "cannot be combined with certKey/privateKey",
                "give either a PKCS#12 bundle or a certificate and key",
            )
        if self.passphrase and not self.passphrase.startswith(_PASSPHRASE_SOURCES):
            raise PolicyError(
                "passphrase", "(hidden)",
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


def _clientAuth(value: Any) -> ClientAuth:
    if isinstance(value, ClientAuth):
        return value
    try:
        return ClientAuth(str(value).lower())
    except ValueError:
        raise PolicyError(
            "clientAuth", value, "unknown client-certificate mode",
            "use none, optional or required",
        ) from None


def _patterns(value: Any) -> Tuple[IdentityPattern, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return tuple(
        v if isinstance(v, IdentityPattern) else parseIdentityPattern(v)
        for v in _tuple(value)
    )


def _pins(value: Any) -> Tuple[bytes, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return tuple(
        v if isinstance(v, bytes) and len(v) == 32 else parsePin(str(v))
        for v in _tuple(value)
    )


_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)


def _hostname(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        ipaddress.ip_address(text.strip("[]"))
        return text.strip("[]")
    except ValueError:
        pass
    if not _HOSTNAME.match(text):
        raise PolicyError(
            "hostname", value, "not a DNS name or IP address",
            "give the name the server's certificate is issued for",
        )
    return text


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
        default=ClientAuth.NONE, converter=_clientAuth
    )
    hostname: Optional[str] = attrs.field(default=None, converter=_hostname)
    allow: Tuple[IdentityPattern, ...] = attrs.field(
        default=(), converter=_patterns
    )
    pins: Tuple[bytes, ...] = attrs.field(default=(), converter=_pins)


@attrs.frozen
class KeyStrength:
    """
    The smallest keys accepted, for our own certificate and the peer's chain.
    """

    minRSABits: int = 2048
    minECBits: int = 256

    def __attrs_post_init__(self) -> None:
        if self.minRSABits < 1024:
            raise PolicyError("minRSABits", self.minRSABits,
                              "RSA keys below 1024 bits are never accepted",
                              "use 2048 or more")
        if self.minECBits < 224:
            raise PolicyError("minECBits", self.minECBits,
                              "EC keys below 224 bits are never accepted",
                              "use 256 or more")


REVOCATION_MODES = ("hard", "soft")
REVOCATION_SCOPES = ("leaf", "chain")


def _paths(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return tuple(str(v).strip() for v in _tuple(value))


def _choice(field: str, choices: Tuple[str, ...], value: Any) -> str:
    text = str(value).lower()
    if text not in choices:
        raise PolicyError(field, value, "unknown value", "use " + " or ".join(choices))
    return text


def _mode(value: Any) -> str:
    return _choice("revocation", REVOCATION_MODES, value)


def _scope(value: Any) -> str:
    return _choice("revocationScope", REVOCATION_SCOPES, value)


def _interval(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PolicyError("crlReload", value, "not a number of seconds",
                          "write e.g. 60") from None
    if not 0 <= number <= 86400:
        raise PolicyError("crlReload", value, "must be between 0 (off) and 86400 seconds",
                          "write e.g. 60")
    return number


OCSP_MODES = ("off", "prefer", "require")


def _ocspMode(value: Any) -> str:
    return _choice("ocsp", OCSP_MODES, value)


def _url(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    text = str(value)
    if not text.startswith(("http://", "https://")):
        raise PolicyError("ocspResponder", value, "not an http:// or https:// URL",
                          "write e.g. http://ocsp.hospital.example:2560")
    return text


def _ocspTimeout(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 < number <= 60:
        raise PolicyError("ocspTimeout", value, "must be more than 0 and at most 60 seconds",
                          "write e.g. 5")
    return number


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

    crlFiles: Tuple[str, ...] = attrs.field(default=(), converter=_paths)
    crlDirs: Tuple[str, ...] = attrs.field(default=(), converter=_paths)
    mode: str = attrs.field(default="hard", converter=_mode)
    scope: str = attrs.field(default="leaf", converter=_scope)
    reloadInterval: float = attrs.field(default=60.0, converter=_interval)
    enforceOnLive: bool = False
    ocsp: str = attrs.field(default="off", converter=_ocspMode)
    ocspResponder: Optional[str] = attrs.field(default=None, converter=_url)
    ocspTimeout: float = attrs.field(default=5.0, converter=_ocspTimeout)
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


def _timeout(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PolicyError("handshakeTimeout", value, "not a number of seconds",
                          "write e.g. 10 or 2.5") from None
    if not 0 < number <= 600:
        raise PolicyError(
            "handshakeTimeout", value,
            "must be more than 0 and at most 600 seconds",
            "a handshake timeout is always on; pick e.g. 10",
        )
    return number


def _alpn(value: Any) -> Tuple[str, ...]:
    names = _splitNames(value) if isinstance(value, str) else tuple(
        str(v) for v in _tuple(value)
    )
    for name in names:
        if not name or len(name.encode("utf-8")) > 255:
            raise PolicyError("alpn", name,
                              "an ALPN protocol name is 1 to 255 bytes",
                              "write e.g. h2,http/1.1")
    return names


def _profileName(value: Any) -> str:
    if value not in PROFILES:
        raise PolicyError(
            "profile", value, "unknown profile",
            "use one of " + ", ".join(PROFILES),
        )
    return str(value)


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
    profile: str = attrs.field(default=DEFAULT_PROFILE, converter=_profileName)
    versions: Versions = attrs.field(factory=Versions)
    ciphers: Ciphers = attrs.field(
        factory=lambda: Ciphers(PROFILES[DEFAULT_PROFILE].tls12,
                                PROFILES[DEFAULT_PROFILE].tls13)
    )
    groups: Groups = attrs.field(
        factory=lambda: Groups(PROFILES[DEFAULT_PROFILE].groups,
                               PROFILES[DEFAULT_PROFILE].optionalGroups)
    )
    trust: TrustAnchors = attrs.field(factory=TrustAnchors)
    credentials: Credentials = attrs.field(factory=Credentials)
    peer: PeerVerification = attrs.field(factory=PeerVerification)
    keys: KeyStrength = attrs.field(factory=KeyStrength)
    handshakeTimeout: float = attrs.field(default=10.0, converter=_timeout)
    alpn: Tuple[str, ...] = attrs.field(default=(), converter=_alpn)
    revocation: Revocation = attrs.field(factory=Revocation)
    legacy: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.legacy:
            if self.versions.minimum < TLSVersion.TLSv1_2:
                raise PolicyError(
                    "minVersion", self.versions.minimum.value,
                    "TLS below 1.2 is insecure and refused outside the "
                    "legacy profile",
                    "use TLSv1.2 or later, or profile=legacy for old peers",
                )
            for name in self.ciphers.tls12:
                info = TLS12_CIPHERS[name]
                if not info.aead or info.kx == "RSA":
                    raise PolicyError(
                        "ciphers", name,
                        "is not a forward-secret AEAD suite; refused outside "
                        "the legacy profile",
                        "use ECDHE with AES-GCM, or profile=legacy for old "
                        "peers",
                    )
            if self.keys.minRSABits < 2048:
                raise PolicyError(
                    "minRSABits", self.keys.minRSABits,
                    "RSA keys below 2048 bits are refused outside the legacy "
                    "profile", "use 2048 or more, or profile=legacy",
                )
        if self.revocation.ocspEnabled and self.revocation.ocspTimeout >= self.handshakeTimeout:
            raise PolicyError(
                "ocspTimeout", self.revocation.ocspTimeout,
                f"must be shorter than handshakeTimeout ({self.handshakeTimeout}s), which "
                "also bounds the wait for the OCSP answer",
                "lower ocspTimeout or raise handshakeTimeout")
        if self.versions.minimum <= TLSVersion.TLSv1_2 and not self.ciphers.tls12:
            raise PolicyError(
                "ciphers", "",
                f"no TLS 1.2 cipher, but minVersion is {self.versions.minimum.value}",
                "list TLS 1.2 ciphers, or set minVersion=TLSv1.3",
            )
        if self.versions.maximum == TLSVersion.TLSv1_3 and not self.ciphers.tls13:
            raise PolicyError(
                "ciphersuites", "",
                "no TLS 1.3 suite, but maxVersion is TLSv1.3",
                "list TLS 1.3 suites, or set maxVersion=TLSv1.2",
            )

    @classmethod
    def fromProfile(cls, profile: str = DEFAULT_PROFILE, **changes: Any) -> TLSPolicy:
        """
        A policy with a named profile's content; C{changes} are L{TLSPolicy}
        fields that replace the profile's.

        @raise PolicyError: for an unknown profile or invalid changes.
        """
        p: Profile = PROFILES[_profileName(profile)]
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
        certificate).

        @raise PolicyError: when something the role needs is missing.
        """
        policy = self
        if role is Role.SERVER:
            if not self.credentials.configured:
                raise PolicyError(
                    "certKey", None,
                    "a TLS server needs its own certificate and key",
                    "give certKey=CERT.pem and privateKey=KEY.pem",
                )
            if mutual:
                if self.peer.clientAuth is ClientAuth.NONE:
                    policy = attrs.evolve(self, peer=attrs.evolve(
                        self.peer, clientAuth=ClientAuth.REQUIRED))
                elif self.peer.clientAuth is ClientAuth.OPTIONAL:
                    raise PolicyError(
                        "clientAuth", "optional",
                        "mtls: always requires a client certificate",
                        "use securessl: with clientAuth=optional instead",
                    )
            if policy.peer.clientAuth is not ClientAuth.NONE and not self.trust.private:
                raise PolicyError(
                    "caCerts", None,
                    "a server that verifies client certificates needs the "
                    "CA that issues them",
                    "give caCerts=CA.pem (or caCertsDir=DIR)",
                )
            if self.revocation.requireStaple:
                raise PolicyError("requireStaple", True,
                                  "only clients require a stapled OCSP response",
                                  "servers staple their own with staple=true")
            if self.revocation.crlEnabled and not self.trust.private:
                raise PolicyError(
                    "crl", ",".join(self.revocation.crlFiles + self.revocation.crlDirs),
                    "CRLs are verified against the CAs that issued them, and no CA is "
                    "configured", "give caCerts=CA.pem")
            if policy.peer.hostname:
                raise PolicyError(
                    "hostname", policy.peer.hostname,
                    "only clients verify a hostname",
                    "authorise clients with allowPeers instead",
                )
        else:
            if mutual and not self.credentials.configured:
                raise PolicyError(
                    "certKey", None,
                    "an mtls: client must present a certificate",
                    "give certKey=CERT.pem and privateKey=KEY.pem",
                )
            if self.revocation.staple:
                raise PolicyError("staple", True, "only servers staple OCSP responses",
                                  "clients use requireStaple=true")
            if self.peer.clientAuth is not ClientAuth.NONE:
                raise PolicyError(
                    "clientAuth", self.peer.clientAuth.value,
                    "only servers ask for client certificates",
                    "remove clientAuth from the client's policy",
                )
            if not self.trust.configured:
                policy = attrs.evolve(policy, trust=attrs.evolve(
                    policy.trust, system=True))
        return policy

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
