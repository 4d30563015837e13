# -*- test-case-name: tests.test_policy -*-
"""
The values of L{securetcp.policy}'s fields: the enumerations, the choices
and the converters that check and normalise each field when a policy part is
built.

Every error here names the field as the policy spells it, by its path from
L{securetcp.policy.TLSPolicy} (C{"versions.minimum"}, C{"peer.allow"}); the
front ends (L{securetcp.config}, L{securetcp._parsers}) translate it into the
option the user wrote, through L{securetcp.options}::

    >>> convertVersion("1.3", "versions.minimum")
    <TLSVersion.TLSv1_3: 'TLSv1.3'>
    >>> splitNames("a, b:a")
    ('a', 'b')
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
import unicodedata
from typing import Any, Optional, Tuple

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLS13_SUITES, TLSVersion, canonicalGroup
from securetcp.errors import PolicyError
from securetcp.identity import IdentityPattern, parseIdentityPattern, parsePin
from securetcp.profiles import PROFILES


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


REVOCATION_MODES = ("hard", "soft")
REVOCATION_SCOPES = ("leaf", "chain")
OCSP_MODES = ("off", "prefer", "require")
#: how a server lets clients resume a TLS session (L{securetcp.policy.TLSPolicy.resumption})
RESUMPTION_MODES = ("cache", "tickets", "off")
#: the longest session lifetime TLS 1.3 allows (RFC 8446, 4.6.1): seven days
MAX_RESUMPTION_LIFETIME = 7 * 24 * 3600
PASSPHRASE_SOURCES = ("env:", "file:", "pass:")


def asTuple(value: Any) -> Tuple[Any, ...]:
    """
    C{value} as a tuple: C{None} is empty, a collection its items, anything
    else one item.
    """
    if value is None:
        return ()
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return (value,)


def splitNames(value: Any) -> Tuple[str, ...]:
    """
    Names from text (split on commas, colons and blanks) or a collection,
    without duplicates, in order.
    """
    if isinstance(value, str):
        items = [v for v in re.split(r"[:,\s]+", value) if v]
    else:
        items = [str(v).strip() for v in asTuple(value)]
    return tuple(dict.fromkeys(items))


def convertVersion(value: Any, field: str) -> TLSVersion:
    """
    A L{TLSVersion} from any spelling L{TLSVersion.parse} accepts.
    """
    if isinstance(value, TLSVersion):
        return value
    try:
        return TLSVersion.parse(str(value))
    except ValueError:
        raise PolicyError(
            field, value, "unknown TLS version",
            "use one of " + ", ".join(v.value for v in TLSVersion),
        ) from None


def minimumVersion(value: Any) -> TLSVersion:
    return convertVersion(value, "versions.minimum")


def maximumVersion(value: Any) -> TLSVersion:
    return convertVersion(value, "versions.maximum")


def tls12Ciphers(value: Any) -> Tuple[str, ...]:
    names = splitNames(value)
    for name in names:
        if name not in TLS12_CIPHERS:
            raise PolicyError(
                "ciphers.tls12", name, "unknown TLS 1.2 cipher suite name",
                "use OpenSSL names such as ECDHE-ECDSA-AES128-GCM-SHA256; "
                "securetcp knows: " + ", ".join(sorted(TLS12_CIPHERS)),
            )
    return names


def tls13Suites(value: Any) -> Tuple[str, ...]:
    names = splitNames(value)
    for name in names:
        if name not in TLS13_SUITES:
            raise PolicyError(
                "ciphers.tls13", name, "unknown TLS 1.3 cipher suite name",
                "use one of " + ", ".join(TLS13_SUITES),
            )
    return names


def _groups(value: Any, field: str) -> Tuple[str, ...]:
    out = []
    for name in splitNames(value):
        try:
            canonical = canonicalGroup(name)
        except KeyError:
            raise PolicyError(
                field, name, "unknown key-exchange group",
                "use one of " + ", ".join(GROUPS) + " (or P-256, P-384)",
            ) from None
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def requiredGroups(value: Any) -> Tuple[str, ...]:
    return _groups(value, "groups.required")


def optionalGroups(value: Any) -> Tuple[str, ...]:
    return _groups(value, "groups.optional")


def optionalPath(value: Any) -> Optional[str]:
    """
    A path, or C{None} for nothing (C{None} or empty).
    """
    if value is None or value == "":
        return None
    return str(value)


def clientAuthMode(value: Any) -> ClientAuth:
    if isinstance(value, ClientAuth):
        return value
    try:
        return ClientAuth(str(value).lower())
    except ValueError:
        raise PolicyError(
            "peer.clientAuth", value, "unknown client-certificate mode",
            "use none, optional or required",
        ) from None


def _commaList(value: Any) -> Tuple[Any, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return asTuple(value)


def identityPatterns(value: Any) -> Tuple[IdentityPattern, ...]:
    return tuple(
        v if isinstance(v, IdentityPattern) else parseIdentityPattern(v, "peer.allow")
        for v in _commaList(value)
    )


def spkiPins(value: Any) -> Tuple[bytes, ...]:
    return tuple(
        v if isinstance(v, bytes) and len(v) == 32 else parsePin(str(v), "peer.pins")
        for v in _commaList(value)
    )


_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)


def hostname(value: Any) -> Optional[str]:
    """
    A DNS name or an IP address (IPv6 possibly in brackets), or C{None}.
    """
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
            "peer.hostname", value, "not a DNS name or IP address",
            "give the name the server's certificate is issued for",
        )
    return text


def paths(value: Any) -> Tuple[str, ...]:
    return tuple(str(v).strip() for v in _commaList(value))


def _choice(field: str, choices: Tuple[str, ...], value: Any) -> str:
    text = str(value).lower()
    if text not in choices:
        raise PolicyError(field, value, "unknown value", "use " + " or ".join(choices))
    return text


def revocationMode(value: Any) -> str:
    return _choice("revocation.mode", REVOCATION_MODES, value)


def revocationScope(value: Any) -> str:
    return _choice("revocation.scope", REVOCATION_SCOPES, value)


def ocspMode(value: Any) -> str:
    return _choice("revocation.ocsp", OCSP_MODES, value)


def resumptionMode(value: Any) -> str:
    return _choice("resumption", RESUMPTION_MODES, value)


def resumptionLifetime(value: Any) -> int:
    number = _seconds("resumptionLifetime", value, "write e.g. 3600")
    if not 1 <= number <= MAX_RESUMPTION_LIFETIME or number != int(number):
        raise PolicyError("resumptionLifetime", value,
                          "a whole number of seconds from 1 to 604800 (TLS 1.3's seven days)",
                          "write e.g. 3600, or resumption=off for no resumption")
    return int(number)


_ASCII_INTEGER = re.compile(r"-?[0-9]+")
_ASCII_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def asciiInteger(value: Any) -> int:
    """
    An integer, or text of one in the ASCII digits 0-9 (an optional C{-}
    first).  Python's C{int} also reads full-width and other Unicode
    digits, C{_} between digits and blanks around them, which an operator
    never means and a reviewer may misread.

    @raise ValueError: for anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _ASCII_INTEGER.fullmatch(value):
        return int(value)
    raise ValueError(f"not an integer in ASCII digits: {value!r}")


def asciiNumber(value: Any) -> float:
    """
    A number, or text of one in ASCII (C{10}, C{2.5}, C{1e3}), for the same
    reason as L{asciiInteger}.

    @raise ValueError: for anything else (also C{inf} and C{nan}).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _ASCII_NUMBER.fullmatch(value):
        return float(value)
    raise ValueError(f"not a number in ASCII digits: {value!r}")


def _seconds(field: str, value: Any, fix: str) -> float:
    try:
        return asciiNumber(value)
    except ValueError:
        raise PolicyError(field, value, "not a number of seconds", fix) from None


def reloadInterval(value: Any) -> float:
    number = _seconds("revocation.reloadInterval", value, "write e.g. 60")
    if not 0 <= number <= 86400:
        raise PolicyError("revocation.reloadInterval", value,
                          "must be between 0 (off) and 86400 seconds", "write e.g. 60")
    return number


def responderURL(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    text = str(value)
    if not text.startswith(("http://", "https://")):
        raise PolicyError("revocation.ocspResponder", value, "not an http:// or https:// URL",
                          "write e.g. http://ocsp.hospital.example:2560")
    return text


def ocspTimeout(value: Any) -> float:
    try:
        number = asciiNumber(value)
    except ValueError:
        number = math.nan
    if not 0 < number <= 60:
        raise PolicyError("revocation.ocspTimeout", value,
                          "must be more than 0 and at most 60 seconds", "write e.g. 5")
    return number


def handshakeTimeout(value: Any) -> float:
    number = _seconds("handshakeTimeout", value, "write e.g. 10 or 2.5")
    if not 0 < number <= 600:
        raise PolicyError(
            "handshakeTimeout", value,
            "must be more than 0 and at most 600 seconds",
            "a handshake timeout is always on; pick e.g. 10",
        )
    return number


def alpnNames(value: Any) -> Tuple[str, ...]:
    names = splitNames(value) if isinstance(value, str) else tuple(
        str(v) for v in asTuple(value)
    )
    for name in names:
        if not name or len(name.encode("utf-8")) > 255:
            raise PolicyError("alpn", name,
                              "an ALPN protocol name is 1 to 255 bytes",
                              "write e.g. h2,http/1.1")
    return names


#: The longest policy name: it is copied into every audit record.
MAX_NAME_LENGTH = 128


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def policyName(value: Any) -> str:
    """
    The policy's C{name}: 1 to L{MAX_NAME_LENGTH} printable characters.
    It labels every audit record, so a control character (NUL, a newline),
    a bidirectional override or another invisible format character (which
    make a log line read differently from what it holds) is refused.
    """
    fix = f"write 1 to {MAX_NAME_LENGTH} printable characters, e.g. hl7-inbound"
    if not isinstance(value, str):
        raise PolicyError("name", value, "expected a string", fix)
    if not value:
        raise PolicyError("name", value, "empty", fix)
    if len(value) > MAX_NAME_LENGTH:
        raise PolicyError("name", _shown(value),
                          f"longer than {MAX_NAME_LENGTH} characters", fix)
    for position, character in enumerate(value):
        if not character.isprintable():
            category = unicodedata.category(character)
            what = unicodedata.name(character, "a control character" if category == "Cc"
                                    else f"category {category}")
            raise PolicyError("name", _shown(value),
                              f"holds U+{ord(character):04X} ({what}) at position {position}, "
                              "which is not printable", fix)
    return value


def profileName(value: Any) -> str:
    if value not in PROFILES:
        raise PolicyError(
            "profile", value, "unknown profile",
            "use one of " + ", ".join(PROFILES),
        )
    return str(value)
