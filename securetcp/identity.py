# -*- test-case-name: tests.test_identity -*-
"""
A peer's identity, read from its verified certificate, and the allow-list
rules matched against it.

Rules are written C{KIND:PATTERN}::

    dns:device-*.ward3.hospital.example
    ip:10.20.0.0/16
    uri:spiffe://hospital.example/ward3/*
    email:*@lab.hospital.example
    cn:PUMP-0042

In a pattern, C{*} matches any run of characters within one label: it never
crosses a C{.} in a DNS name or e-mail domain, nor a C{/} in a URI.

    >>> rule = parseIdentityPattern("dns:*.ward3.hospital.example")
    >>> rule.matches(PeerIdentity(dns=("pump1.ward3.hospital.example",)))
    True
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import re
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from securetcp.errors import PolicyError

IDENTITY_KINDS = ("dns", "ip", "uri", "email", "cn")

_IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@attrs.frozen
class PeerIdentity:
    """
    Who a peer is, as its leaf certificate says.
    """

    subject: str = ""
    commonName: Tuple[str, ...] = ()
    dns: Tuple[str, ...] = ()
    ip: Tuple[str, ...] = ()
    uri: Tuple[str, ...] = ()
    email: Tuple[str, ...] = ()
    serial: str = ""
    issuer: str = ""
    sha256: str = ""
    spkiSHA256: str = ""
    notAfter: str = ""

    def asRecord(self) -> Dict[str, Any]:
        """
        The identity as a JSON-ready dict for the audit log.
        """
        return {
            "subject": self.subject,
            "san": {
                "dns": list(self.dns),
                "ip": list(self.ip),
                "uri": list(self.uri),
                "email": list(self.email),
            },
            "serial": self.serial,
            "issuer": self.issuer,
            "sha256": self.sha256,
            "spkiSHA256": self.spkiSHA256,
            "notAfter": self.notAfter,
        }


@functools.lru_cache(maxsize=4096)
def spkiDigest(certificate: x509.Certificate) -> bytes:
    """
    The SHA-256 digest of a certificate's DER SubjectPublicKeyInfo, as used
    by SPKI pins.
    """
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(der).digest()


@functools.lru_cache(maxsize=4096)
def identityFromCertificate(certificate: x509.Certificate) -> PeerIdentity:
    """
    Read a L{PeerIdentity} from a certificate.  Cached: devices reconnect
    with the same certificate, and a certificate's identity never changes.
    """
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        emails = tuple(san.get_values_for_type(x509.RFC822Name))
    except x509.ExtensionNotFound:
        dns = ips = uris = emails = ()
    cns = tuple(
        str(a.value)
        for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    return PeerIdentity(
        subject=certificate.subject.rfc4514_string(),
        commonName=cns,
        dns=dns,
        ip=ips,
        uri=uris,
        email=emails,
        serial=format(certificate.serial_number, "x"),
        issuer=certificate.issuer.rfc4514_string(),
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        spkiSHA256=base64.b64encode(spkiDigest(certificate)).decode("ascii"),
        notAfter=certificate.not_valid_after_utc.isoformat(),
    )


def _glob(pattern: str, separator: str) -> str:
    anyLabel = "[^" + re.escape(separator) + "]*"
    return anyLabel.join(re.escape(p) for p in pattern.split("*"))


def _globRegex(pattern: str, separator: str) -> re.Pattern[str]:
    return re.compile("^" + _glob(pattern, separator) + "$", re.IGNORECASE)


def _emailRegex(pattern: str) -> re.Pattern[str]:
    # The local part is not a domain: there * may cross a "." but not the "@".
    local, _, domain = pattern.partition("@")
    return re.compile(
        "^" + _glob(local, "@") + "@" + _glob(domain, ".") + "$", re.IGNORECASE
    )


@attrs.frozen
class IdentityPattern:
    """
    One allow-list rule: a kind (C{dns}, C{ip}, C{uri}, C{email}, C{cn}) and
    a pattern.  Build it with L{parseIdentityPattern}.
    """

    kind: str
    pattern: str
    _regex: Optional[re.Pattern[str]] = attrs.field(
        default=None, eq=False, repr=False
    )
    _network: Optional[_IPNetwork] = attrs.field(
        default=None, eq=False, repr=False
    )

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}"

    def matches(self, identity: PeerIdentity) -> bool:
        """
        Does this rule admit C{identity}?
        """
        if self.kind == "ip":
            assert self._network is not None
            for text in identity.ip:
                try:
                    if ipaddress.ip_address(text) in self._network:
                        return True
                except ValueError:
                    continue
            return False
        assert self._regex is not None
        values: Sequence[str] = {
            "dns": identity.dns,
            "uri": identity.uri,
            "email": identity.email,
            "cn": identity.commonName,
        }[self.kind]
        return any(self._regex.match(v) for v in values)


_DNS_PATTERN = re.compile(r"^[A-Za-z0-9*_-]+(\.[A-Za-z0-9*_-]+)*\.?$")


def parseIdentityPattern(text: str, field: str = "allowPeers") -> IdentityPattern:
    """
    Parse one C{KIND:PATTERN} allow-list rule.

    @raise PolicyError: naming C{field} when the rule is malformed.
    """
    if not isinstance(text, str) or ":" not in text:
        raise PolicyError(
            field, text, "an allow-list rule must be KIND:PATTERN",
            "write e.g. dns:device-*.example.org, ip:10.0.0.0/8, "
            "uri:spiffe://example.org/*, email:*@example.org or cn:NAME",
        )
    kind, _, pattern = text.partition(":")
    kind = kind.strip().lower()
    pattern = pattern.strip()
    if kind not in IDENTITY_KINDS:
        raise PolicyError(
            field, text, f"unknown identity kind {kind!r}",
            "use one of " + ", ".join(IDENTITY_KINDS),
        )
    if not pattern:
        raise PolicyError(field, text, "the pattern is empty",
                          "write what to match after the colon")
    if kind == "ip":
        try:
            network = ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            raise PolicyError(
                field, text, "not an IP address or CIDR network",
                "write e.g. ip:10.0.0.7 or ip:10.0.0.0/8",
            ) from None
        return IdentityPattern(kind, pattern, None, network)
    if kind == "dns":
        if not _DNS_PATTERN.match(pattern) or "**" in pattern:
            raise PolicyError(
                field, text, "not a DNS name pattern",
                "use letters, digits, '-', '.' and '*' within one label",
            )
        return IdentityPattern(kind, pattern, _globRegex(pattern.rstrip("."), "."))
    if kind == "uri":
        if "://" not in pattern and not pattern.startswith("urn:"):
            raise PolicyError(
                field, text, "a URI pattern needs a scheme",
                "write e.g. uri:spiffe://hospital.example/ward3/*",
            )
        return IdentityPattern(kind, pattern, _globRegex(pattern, "/"))
    if kind == "email":
        if pattern.count("@") != 1:
            raise PolicyError(
                field, text, "an e-mail pattern needs exactly one '@'",
                "write e.g. email:*@lab.example.org",
            )
        return IdentityPattern(kind, pattern, _emailRegex(pattern))
    return IdentityPattern(kind, pattern, _globRegex(pattern, "\x00"))


def parsePin(text: str, field: str = "pinSPKI") -> bytes:
    """
    Parse an SPKI SHA-256 pin: C{sha256/BASE64} (the HPKP form), bare
    base64, or 64 hex digits.

    @return: the 32-byte digest.
    @raise PolicyError: when it is none of those.
    """
    raw = text.strip()
    if raw.lower().startswith("sha256/"):
        raw = raw[len("sha256/"):]
    digest: Optional[bytes] = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        digest = bytes.fromhex(raw)
    else:
        try:
            digest = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            digest = None
    if digest is None or len(digest) != 32:
        raise PolicyError(
            field, text, "not a SHA-256 SPKI pin",
            "write sha256/BASE64 (openssl x509 -pubkey -noout | openssl pkey "
            "-pubin -outform der | openssl dgst -sha256 -binary | base64) "
            "or 64 hex digits",
        )
    return digest


def authorise(
    identity: PeerIdentity,
    chainSPKI: Sequence[bytes],
    allow: Sequence[IdentityPattern],
    pins: Sequence[bytes],
) -> Optional[Tuple[str, str]]:
    """
    Decide whether a verified peer may connect.

    @param chainSPKI: the SPKI digests of every certificate in the peer's
        verified chain, leaf first.

    @return: C{None} if allowed, else C{(reason, detail)} with reason
        C{"pin_mismatch"} or C{"identity_not_allowed"}.
    """
    if pins and not any(d in pins for d in chainSPKI):
        return ("pin_mismatch",
                "no certificate in the peer's chain matches a pinned SPKI")
    if allow and not any(rule.matches(identity) for rule in allow):
        return ("identity_not_allowed",
                f"peer {identity.subject or '(no subject)'} matches no rule of "
                "allowPeers")
    return None
