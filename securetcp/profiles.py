# -*- test-case-name: tests.test_profiles -*-
"""
Named TLS profiles, as data.

A profile fixes the protocol versions, the TLS 1.2 cipher list, the TLS 1.3
suites, the key-exchange groups and the minimum key sizes of a policy.  The
default is C{nist-800-52r2}::

    >>> PROFILES["nist-800-52r2"].tls13
    ('TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384')

C{optionalGroups} are used, in front of C{groups}, only when the linked
OpenSSL implements them (the ML-KEM hybrids need OpenSSL 3.5 or later).

C{legacy} is the only profile that allows TLS 1.0 and 1.1 and non-AEAD
ciphers; it is explicitly insecure, warned about when a policy is built from
it, and every audit event of a connection under it is marked non-compliant.
"""

from __future__ import annotations

from typing import Mapping, Tuple

import attrs

from securetcp._catalogue import TLSVersion

DEFAULT_PROFILE = "nist-800-52r2"


@attrs.frozen
class Profile:
    """
    The content of one named profile.
    """

    name: str
    description: str
    minVersion: TLSVersion
    maxVersion: TLSVersion
    tls12: Tuple[str, ...]
    tls13: Tuple[str, ...]
    optionalGroups: Tuple[str, ...]
    groups: Tuple[str, ...]
    minRSABits: int
    minECBits: int
    legacy: bool = False


_GCM12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
)
_CHACHA12 = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305")
_TLS13_ALL = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)

NIST_800_52R2 = Profile(
    name="nist-800-52r2",
    description=(
        "NIST SP 800-52 rev. 2: TLS 1.2 and 1.3; ECDHE with AES-GCM only; "
        "NIST curves (with the P-256 ML-KEM hybrid when available); RSA keys "
        ">= 2048 bits and EC keys >= P-256"
    ),
    minVersion=TLSVersion.TLSv1_2,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=_GCM12,
    tls13=("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"),
    optionalGroups=("SecP256r1MLKEM768",),
    groups=("secp256r1", "secp384r1"),
    minRSABits=2048,
    minECBits=256,
)

MOZILLA_MODERN = Profile(
    name="mozilla-modern",
    description="Mozilla Server Side TLS 6.0, Modern: TLS 1.3 only",
    minVersion=TLSVersion.TLSv1_3,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=(),
    tls13=_TLS13_ALL,
    optionalGroups=("X25519MLKEM768",),
    groups=("X25519", "secp256r1", "secp384r1"),
    minRSABits=2048,
    minECBits=256,
)

MOZILLA_INTERMEDIATE = Profile(
    name="mozilla-intermediate",
    description=(
        "Mozilla Server Side TLS 6.0, Intermediate: TLS 1.2 (ECDHE, AEAD) "
        "and TLS 1.3"
    ),
    minVersion=TLSVersion.TLSv1_2,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=_GCM12 + _CHACHA12,
    tls13=_TLS13_ALL,
    optionalGroups=("X25519MLKEM768",),
    groups=("X25519", "secp256r1", "secp384r1"),
    minRSABits=2048,
    minECBits=256,
)

LEGACY = Profile(
    name="legacy",
    description=(
        "INSECURE backward compatibility for old peers: TLS 1.0 to 1.3, CBC "
        "and static-RSA ciphers, RSA keys >= 1024 bits. Not compliant with "
        "NIST SP 800-52r2 or HIPAA guidance; every connection is audited as "
        "non-compliant"
    ),
    minVersion=TLSVersion.TLSv1,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=_GCM12 + _CHACHA12 + (
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA256",
        "AES256-SHA256",
        "AES128-SHA",
        "AES256-SHA",
    ),
    tls13=_TLS13_ALL,
    optionalGroups=("X25519MLKEM768",),
    groups=("X25519", "secp256r1", "secp384r1", "secp521r1"),
    minRSABits=1024,
    minECBits=256,
    legacy=True,
)

# DICOM PS3.15 annex B.  B.12 takes BCP 195 as it stands (RFC 8996: no TLS
# 1.0/1.1; RFC 9325: the four ECDHE AES-GCM suites it recommends for TLS
# 1.2, the TLS 1.3 suites, X25519 and P-256).  B.13 narrows it to a closed
# list of algorithms: ECDHE on curves of 256 bits or more (so not X25519),
# AES-GCM/CCM/CCM_8, ChaCha20-Poly1305 and Camellia-GCM, and every TLS 1.3
# suite on servers.  Left out: Camellia-GCM (OpenSSL does not implement it);
# the CCM_8 suites (64-bit tags: OpenSSL 3 negotiates them only at security
# level 0, which only the legacy profile uses); DHE in both (securetcp sets
# no finite-field DH parameters, and B.13 forbids DHE where their size
# cannot be set).

DICOM_BCP195_RFC8996 = Profile(
    name="dicom-bcp195-rfc8996",
    description=(
        "DICOM PS3.15 B.12 BCP 195 RFC 8996 (RFC 9325) TLS Secure Transport "
        "Connection Profile: TLS 1.2 and 1.3; ECDHE with AES-GCM (the RFC 9325 "
        "suites); X25519, P-256, P-384; RSA keys >= 2048 bits and EC keys >= P-256"
    ),
    minVersion=TLSVersion.TLSv1_2,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=_GCM12,
    tls13=_TLS13_ALL,
    optionalGroups=(),
    groups=("X25519", "secp256r1", "secp384r1"),
    minRSABits=2048,
    minECBits=256,
)

DICOM_BCP195_RFC8996_MODIFIED = Profile(
    name="dicom-bcp195-rfc8996-modified",
    description=(
        "DICOM PS3.15 B.13 Modified BCP 195 RFC 8996 (RFC 9325) TLS Secure "
        "Transport Connection Profile: TLS 1.2 and 1.3; ECDHE only, on NIST "
        "curves of 256 bits or more; AES-GCM, AES-CCM and ChaCha20-Poly1305; "
        "every TLS 1.3 suite but CCM_8; RSA keys >= 2048 bits and EC keys >= P-256"
    ),
    minVersion=TLSVersion.TLSv1_2,
    maxVersion=TLSVersion.TLSv1_3,
    tls12=_GCM12 + ("ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM") + _CHACHA12,
    tls13=_TLS13_ALL + ("TLS_AES_128_CCM_SHA256",),
    optionalGroups=(),
    groups=("secp256r1", "secp384r1", "secp521r1"),
    minRSABits=2048,
    minECBits=256,
)

PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (NIST_800_52R2, MOZILLA_MODERN, MOZILLA_INTERMEDIATE, LEGACY,
              DICOM_BCP195_RFC8996, DICOM_BCP195_RFC8996_MODIFIED)
}
