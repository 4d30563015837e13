# -*- test-case-name: tests.test_policy -*-
"""
Facts about TLS protocol versions, cipher suites and key-exchange groups, as
pure data.

The policy validates names against this catalogue (so a typo is caught
without touching OpenSSL), and the compliance verdict of the audit log reads
the properties of a negotiated suite from it::

    >>> TLS12_CIPHERS["ECDHE-RSA-AES128-GCM-SHA256"].aead
    True
"""

from __future__ import annotations

import enum
from typing import Dict, Mapping

import attrs


class TLSVersion(enum.Enum):
    """
    A TLS protocol version, ordered by age.  Values are the names OpenSSL
    reports for a negotiated connection.
    """

    TLSv1 = "TLSv1"
    TLSv1_1 = "TLSv1.1"
    TLSv1_2 = "TLSv1.2"
    TLSv1_3 = "TLSv1.3"

    @property
    def rank(self) -> int:
        return _VERSION_ORDER.index(self)

    def __lt__(self, other: TLSVersion) -> bool:
        return self.rank < other.rank

    def __le__(self, other: TLSVersion) -> bool:
        return self.rank <= other.rank

    def __gt__(self, other: TLSVersion) -> bool:
        return self.rank > other.rank

    def __ge__(self, other: TLSVersion) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> TLSVersion:
        """
        Accept the spellings people write: C{TLSv1.2}, C{TLSv1_2}, C{1.2},
        C{tls1.2}, C{TLS1_2}.

        @raise ValueError: for anything else.
        """
        key = text.strip().lower().replace("_", ".").replace("tlsv", "")
        key = key.replace("tls", "")
        if key == "1.0":
            key = "1"
        for version in cls:
            if version.value.lower().replace("tlsv", "") == key:
                return version
        raise ValueError(text)


_VERSION_ORDER = list(TLSVersion)

VERSION_NAMES = tuple(v.value for v in TLSVersion)


@attrs.frozen
class CipherInfo:
    """
    What a TLS 1.2 (or older) cipher suite is made of.
    """

    name: str
    iana: str
    kx: str  # "ECDHE", "DHE" or "RSA"
    auth: str  # "ECDSA" or "RSA"
    enc: str  # "AESGCM", "AESCCM", "CHACHA20", "AESCBC"
    aead: bool


def _c(name: str, iana: str, kx: str, auth: str, enc: str) -> CipherInfo:
    return CipherInfo(name, iana, kx, auth, enc, enc != "AESCBC")


TLS12_CIPHERS: Mapping[str, CipherInfo] = {
    c.name: c
    for c in [
        _c("ECDHE-ECDSA-AES128-GCM-SHA256",
           "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE", "ECDSA", "AESGCM"),
        _c("ECDHE-ECDSA-AES256-GCM-SHA384",
           "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE", "ECDSA", "AESGCM"),
        _c("ECDHE-RSA-AES128-GCM-SHA256",
           "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE", "RSA", "AESGCM"),
        _c("ECDHE-RSA-AES256-GCM-SHA384",
           "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE", "RSA", "AESGCM"),
        _c("ECDHE-ECDSA-AES128-CCM",
           "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE", "ECDSA", "AESCCM"),
        _c("ECDHE-ECDSA-AES256-CCM",
           "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ECDHE", "ECDSA", "AESCCM"),
        _c("ECDHE-ECDSA-CHACHA20-POLY1305",
           "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE", "ECDSA",
           "CHACHA20"),
        _c("ECDHE-RSA-CHACHA20-POLY1305",
           "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE", "RSA",
           "CHACHA20"),
        _c("DHE-RSA-AES128-GCM-SHA256",
           "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE", "RSA", "AESGCM"),
        _c("DHE-RSA-AES256-GCM-SHA384",
           "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE", "RSA", "AESGCM"),
        _c("DHE-RSA-CHACHA20-POLY1305",
           "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE", "RSA",
           "CHACHA20"),
        _c("ECDHE-ECDSA-AES128-SHA256",
           "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE", "ECDSA", "AESCBC"),
        _c("ECDHE-RSA-AES128-SHA256",
           "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE", "RSA", "AESCBC"),
        _c("ECDHE-ECDSA-AES256-SHA384",
           "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE", "ECDSA", "AESCBC"),
        _c("ECDHE-RSA-AES256-SHA384",
           "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE", "RSA", "AESCBC"),
        _c("ECDHE-ECDSA-AES128-SHA",
           "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE", "ECDSA", "AESCBC"),
        _c("ECDHE-RSA-AES128-SHA",
           "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE", "RSA", "AESCBC"),
        _c("ECDHE-ECDSA-AES256-SHA",
           "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE", "ECDSA", "AESCBC"),
        _c("ECDHE-RSA-AES256-SHA",
           "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE", "RSA", "AESCBC"),
        _c("DHE-RSA-AES128-SHA256",
           "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE", "RSA", "AESCBC"),
        _c("DHE-RSA-AES256-SHA256",
           "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE", "RSA", "AESCBC"),
        _c("AES128-GCM-SHA256",
           "TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "RSA", "AESGCM"),
        _c("AES256-GCM-SHA384",
           "TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "RSA", "AESGCM"),
        _c("AES128-SHA256",
           "TLS_RSA_WITH_AES_128_CBC_SHA256", "RSA", "RSA", "AESCBC"),
        _c("AES256-SHA256",
           "TLS_RSA_WITH_AES_256_CBC_SHA256", "RSA", "RSA", "AESCBC"),
        _c("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "RSA", "AESCBC"),
        _c("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "RSA", "AESCBC"),
    ]
}

#: TLS 1.3 suites by their (IANA and OpenSSL) name -> bulk cipher.
TLS13_SUITES: Mapping[str, str] = {
    "TLS_AES_128_GCM_SHA256": "AESGCM",
    "TLS_AES_256_GCM_SHA384": "AESGCM",
    "TLS_CHACHA20_POLY1305_SHA256": "CHACHA20",
    "TLS_AES_128_CCM_SHA256": "AESCCM",
    "TLS_AES_128_CCM_8_SHA256": "AESCCM8",
}


@attrs.frozen
class GroupInfo:
    """
    A key-exchange group: its canonical OpenSSL name and whether every part
    of it is a NIST-approved curve or KEM (SP 800-52r2 / SP 800-186 /
    FIPS 203).
    """

    name: str
    nist: bool
    hybrid: bool


GROUPS: Mapping[str, GroupInfo] = {
    g.name: g
    for g in [
        GroupInfo("SecP256r1MLKEM768", True, True),
        GroupInfo("SecP384r1MLKEM1024", True, True),
        GroupInfo("X25519MLKEM768", False, True),
        GroupInfo("secp256r1", True, False),
        GroupInfo("secp384r1", True, False),
        GroupInfo("secp521r1", True, False),
        GroupInfo("X25519", False, False),
        GroupInfo("X448", False, False),
        GroupInfo("ffdhe2048", True, False),
        GroupInfo("ffdhe3072", True, False),
        GroupInfo("ffdhe4096", True, False),
    ]
}

_GROUP_ALIASES: Dict[str, str] = {
    "p-256": "secp256r1",
    "prime256v1": "secp256r1",
    "p-384": "secp384r1",
    "p-521": "secp521r1",
}


def canonicalGroup(name: str) -> str:
    """
    The canonical OpenSSL name of a group, accepting the NIST spellings
    (C{P-256}) and OpenSSL's aliases (C{prime256v1}), case-insensitively.

    @raise KeyError: for an unknown group.
    """
    key = name.strip()
    lowered = key.lower()
    if lowered in _GROUP_ALIASES:
        return _GROUP_ALIASES[lowered]
    for canonical in GROUPS:
        if canonical.lower() == lowered:
            return canonical
    raise KeyError(name)


#: The TLS 1.2 cipher suites and TLS 1.3 suites NIST SP 800-52r2 allows
#: (sections 3.3.1.1 and 3.3.1.2), which the C{nist-800-52r2} verdicts use.
NIST_TLS12 = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-AES256-CCM",
})
NIST_TLS13 = frozenset({
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_CCM_SHA256",
})
