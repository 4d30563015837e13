# -*- test-case-name: tests.test_policy -*-
"""
L{TLSPolicy}: one immutable value that says everything securetcp enforces on
a connection.

A policy is composed of parts (versions, ciphers, groups, trust anchors, own
credentials, peer verification, key strength, revocation; defined in
L{securetcp._parts} and exported here), each a frozen attrs class that
validates itself; L{TLSPolicy} then rejects invalid I{combinations} in one
place.  Change a policy with L{attrs.evolve} or the
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
from typing import Any, Tuple

import attrs

import securetcp._fields as _fields
from securetcp._catalogue import GROUPS, NIST_TLS12, NIST_TLS13, TLS12_CIPHERS, TLSVersion
from securetcp._fields import ClientAuth, Role
from securetcp._parts import (
    Ciphers,
    Credentials,
    Groups,
    KeyStrength,
    PeerVerification,
    Revocation,
    TrustAnchors,
    Versions,
)
from securetcp._spelling import inUserSpelling
from securetcp.binding.part import IdentityBinding
from securetcp.errors import PolicyError
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
    "IdentityBinding",
    "TLSPolicy",
    "LegacyProfileWarning",
]


class LegacyProfileWarning(UserWarning):
    """
    A policy allows protocol versions or ciphers below NIST SP 800-52r2.
    """


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

    @ivar name: a label for the audit log (e.g. C{"hl7-inbound"}): 1 to 128
        printable characters (L{securetcp._fields.policyName}).
    @ivar profile: the profile the policy started from.
    @ivar resumption: (servers) how clients may resume a session:
        C{"cache"} (the default: the server keeps its sessions in memory
        and gives clients only their ids), C{"tickets"} (the session,
        encrypted under a key of this context, travels in the client's
        ticket) or C{"off"}.
    @ivar resumptionLifetime: (servers) seconds a session may be resumed.
    @ivar legacy: whether weaker-than-NIST settings were explicitly allowed
        (true only under the C{legacy} profile).
    """

    name: str = attrs.field(default="default", converter=_fields.policyName)
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
    resumption: str = attrs.field(default="cache", converter=_fields.resumptionMode)
    resumptionLifetime: int = attrs.field(default=7200, converter=_fields.resumptionLifetime)
    revocation: Revocation = attrs.field(factory=Revocation)
    binding: IdentityBinding = attrs.field(factory=IdentityBinding)
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
    binding = policy.binding
    if binding.protocol is None and binding.file:
        raise PolicyError("binding.file", binding.file, "no protocol to read the rules for",
                          "name it with binding.protocol=hl7, dicom or mqtt")
    if binding.protocol is not None and policy.peer.clientAuth is not ClientAuth.REQUIRED:
        raise PolicyError("binding.protocol", binding.protocol.name,
                          "binds claims to the client's certificate, which is not required",
                          "use mtls: or peer.clientAuth=required")
    if binding.protocol is not None and not (binding.rules or binding.file):
        raise PolicyError("binding.protocol", binding.protocol.name,
                          "no rule says what any peer may claim, so every peer would be "
                          "refused", "give binding.rules or binding.file")
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
    if policy.binding.protocol is not None:
        raise PolicyError("binding.protocol", policy.binding.protocol.name,
                          "only servers read their peer's first message",
                          "set binding.protocol on the server's policy")
    if policy.peer.clientAuth is not ClientAuth.NONE:
        raise PolicyError("peer.clientAuth", policy.peer.clientAuth.value,
                          "only servers ask for client certificates",
                          "remove peer.clientAuth from the client's policy")
    for field, default in (("resumption", "cache"), ("resumptionLifetime", 7200)):
        if getattr(policy, field) != default:
            raise PolicyError(field, getattr(policy, field),
                              "only servers decide how their sessions resume",
                              f"remove {field} from the client's policy")
    if not policy.trust.configured:
        policy = attrs.evolve(policy, trust=attrs.evolve(policy.trust, system=True))
    return policy
