# -*- test-case-name: tests.test_check -*-
"""
The catalogue of the compliance checklist: the verdicts, the checklist line
(L{CheckItem}), and the benchmarks C{check} and C{probe} measure against
(L{BENCHMARKS}: NIST SP 800-52r2 and the Mozilla server-side TLS profiles),
each with the section of its document every item is about::

    >>> BENCHMARKS["nist-800-52r2"].ref("compression")
    'SP 800-52r2 3.7 (compression methods)'
    >>> item(BENCHMARKS["nist-800-52r2"], "compression", "TLS compression", PASS,
    ...      "always off").reference
    'SP 800-52r2 3.7 (compression methods)'

The judges of a policy are in L{securetcp.compliance.judges}, those of a
negotiated connection in L{securetcp.compliance.negotiated}.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

import attrs

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLSVersion
from securetcp.compliance import NIST_TLS12, NIST_TLS13
from securetcp.options import OPTIONS_BY_FIELD
from securetcp.profiles import PROFILES

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "n/a"

#: The longest handshake timeout the checklist accepts, in seconds.
MAX_HANDSHAKE_TIMEOUT = 30.0

#: A certificate that expires within this many days still passes, with a note.
RENEW_WITHIN_DAYS = 30


# -- the options that change the items' outcomes, as the option table spells them

def _option(field: str) -> str:
    """
    The name of the option that sets C{field}.
    """
    return OPTIONS_BY_FIELD[field].name


PROFILE_KEY = _option("profile")
MIN_VERSION_KEY = _option("versions.minimum")
MAX_VERSION_KEY = _option("versions.maximum")
CIPHERS_KEY = _option("ciphers.tls12")
SUITES_KEY = _option("ciphers.tls13")
GROUPS_KEY = _option("groups")
CA_FILE_KEY = _option("trust.caFile")
SYSTEM_CAS_KEY = _option("trust.system")
CLIENT_AUTH_KEY = _option("peer.clientAuth")
HOSTNAME_KEY = _option("peer.hostname")
CRL_KEY = _option("revocation.crlFiles")
REVOCATION_KEY = _option("revocation.mode")
OCSP_KEY = _option("revocation.ocsp")
STAPLE_KEY = _option("revocation.staple")
REQUIRE_STAPLE_KEY = _option("revocation.requireStaple")
HANDSHAKE_TIMEOUT_KEY = _option("handshakeTimeout")
RESUMPTION_KEY = _option("resumption")


@attrs.frozen
class CheckItem:
    """
    One line of the checklist.

    @ivar id: a stable identifier, e.g. C{"versions.minimum"}.
    @ivar title: what is checked, for people.
    @ivar status: L{PASS}, L{FAIL} or L{NOT_APPLICABLE}.
    @ivar reason: why, naming the values involved.
    @ivar reference: the section of the benchmark the item is about.
    @ivar key: the policy key (or command-line option) that changes the
        outcome, or C{None} when nothing configurable does.
    """

    id: str
    title: str
    status: str
    reason: str
    reference: str
    key: Optional[str] = None

    def asDict(self) -> Dict[str, Optional[str]]:
        return {"id": self.id, "title": self.title, "status": self.status,
                "reason": self.reason, "reference": self.reference, "key": self.key}


@attrs.frozen
class Benchmark:
    """
    What one benchmark (a standard or a published profile) allows.

    @ivar minVersion: the lowest protocol version allowed.
    @ivar requireTLS13: whether TLS 1.3 must be offered.
    @ivar tls12: allowed TLS 1.2 cipher suites (OpenSSL names).
    @ivar tls13: allowed TLS 1.3 suites.
    @ivar groups: allowed key-exchange groups (canonical names).
    @ivar minRSABits: the smallest RSA key allowed (0: RSA not allowed).
    @ivar curves: allowed curves of EC certificate keys (cryptography names).
    @ivar maxLifetimeDays: the longest certificate lifetime, if limited.
    @ivar references: item id -> section of the benchmark.
    @ivar requireTLS12: whether TLS 1.2 must be offered (a TLS 1.3-only
        policy fails).
    @ivar serverTLS13: TLS 1.3 suites a server must offer, all of them (and
        a client offering TLS 1.3 at least one); empty when the benchmark
        names none.
    @ivar serverTLS13Note: what the benchmark requires of servers that
        securetcp cannot do, said where servers pass.
    @ivar ticketKeysChanged: whether the benchmark asks for session ticket
        keys changed regularly (BCP 195, RFC 9325 3.4; Mozilla's profiles
        turn tickets off), which a key that lives as long as the TLS
        context does not meet.
    """

    name: str
    title: str
    minVersion: TLSVersion
    requireTLS13: bool
    tls12: frozenset[str]
    tls13: frozenset[str]
    groups: frozenset[str]
    minRSABits: int
    curves: frozenset[str]
    maxLifetimeDays: Optional[int]
    references: Mapping[str, str]
    requireTLS12: bool = False
    serverTLS13: frozenset[str] = frozenset()
    serverTLS13Note: str = ""
    ticketKeysChanged: bool = False

    def ref(self, item: str) -> str:
        return self.references.get(item, self.references.get("*", self.title))


_NIST_REFS = {
    "profile": "SP 800-52r2 3.1, 3.3",
    "versions.minimum": "SP 800-52r2 3.1 (protocol version support)",
    "versions.tls13": "SP 800-52r2 3.1 (TLS 1.3 support by 1 January 2024)",
    "ciphers.tls12": "SP 800-52r2 3.3.1 (cipher suites, TLS 1.2)",
    "ciphers.tls13": "SP 800-52r2 3.3.1 (cipher suites, TLS 1.3)",
    "groups": "SP 800-52r2 3.3, 3.4 (supported groups, key share)",
    "certificate.key": "SP 800-52r2 3.2.1 / 4.2.1 (certificate profile: key)",
    "certificate.validity": "SP 800-52r2 3.2.1 / 4.2.1 (certificate profile: validity)",
    "certificate.signature": "SP 800-52r2 3.2.1 / 4.2.1 (certificate profile: signature)",
    "certificate.purpose": "SP 800-52r2 3.2.1 / 4.2.1 (certificate profile: extended key usage)",
    "certificate.chain": "SP 800-52r2 4.5.1 (server certificate path validation)",
    "peer.keys": "SP 800-52r2 3.5.3 / 4.5.3 (checking the peer's key size)",
    "clientAuth": "SP 800-52r2 3.5 (client authentication)",
    "trust": "SP 800-52r2 3.5.2 / 4.5.2 (trust anchor store)",
    "serverAuth": "SP 800-52r2 4.5 (server authentication)",
    "revocation": "SP 800-52r2 3.2.2 / 4.2.2 (revocation status of the peer's certificate)",
    "ocspStapling": "SP 800-52r2 3.4.1 (certificate status request, OCSP stapling)",
    "renegotiation": "SP 800-52r2 3.4.1 (renegotiation indication)",
    "resumption": "SP 800-52r2 3.6 (session resumption and early data)",
    "compression": "SP 800-52r2 3.7 (compression methods)",
    "handshakeTimeout": "securetcp hardening (not an SP 800-52r2 requirement)",
    "refuses.TLSv1": "SP 800-52r2 3.1 (TLS 1.0 shall not be used)",
    "refuses.TLSv1.1": "SP 800-52r2 3.1 (TLS 1.1 should not be used)",
    "refuses.TLSv1.2": "SP 800-52r2 3.1",
    "refuses.nonAEAD": "SP 800-52r2 3.3.1 (AEAD, ephemeral key exchange)",
}


def _mozillaRefs(level: str) -> Dict[str, str]:
    base = f"Mozilla Server Side TLS 6.0, {level}"
    refs = {k: f"{base}: {k.split('.')[0]}" for k in _NIST_REFS}
    refs.update({
        "*": base,
        "versions.minimum": f"{base}: protocols",
        "versions.tls13": f"{base}: protocols",
        "ciphers.tls12": f"{base}: TLS 1.2 cipher suites",
        "ciphers.tls13": f"{base}: TLS 1.3 cipher suites",
        "groups": f"{base}: TLS curves",
        "certificate.key": f"{base}: certificate type",
        "certificate.validity": f"{base}: certificate lifespan",
        "certificate.signature": f"{base}: certificate signature",
        "ocspStapling": f"{base}: OCSP stapling",
        "resumption": f"{base}: session tickets",
        "handshakeTimeout": "securetcp hardening (not a Mozilla requirement)",
        "peer.keys": "securetcp hardening (peer key minimums)",
        "clientAuth": "securetcp (mutual TLS; Mozilla does not cover client certificates)",
        "trust": "securetcp (trust anchors for peer certificates)",
        "revocation": "securetcp (revocation of peer certificates)",
    })
    return refs


def _nistBenchmark() -> Benchmark:
    return Benchmark(
        name="nist-800-52r2",
        title="NIST SP 800-52 rev. 2",
        minVersion=TLSVersion.TLSv1_2,
        requireTLS13=True,
        tls12=NIST_TLS12,
        tls13=NIST_TLS13,
        groups=frozenset(g.name for g in GROUPS.values() if g.nist),
        minRSABits=2048,
        curves=frozenset({"secp256r1", "secp384r1", "secp521r1"}),
        maxLifetimeDays=None,
        references=_NIST_REFS,
    )


def _mozillaBenchmark(name: str, level: str, curves: Iterable[str],
                      minRSABits: int) -> Benchmark:
    p = PROFILES[name]
    return Benchmark(
        name=name,
        title=f"Mozilla Server Side TLS 6.0, {level}",
        minVersion=p.minVersion,
        requireTLS13=True,
        tls12=frozenset(p.tls12),
        tls13=frozenset(p.tls13),
        groups=frozenset(p.groups + p.optionalGroups),
        minRSABits=minRSABits,
        curves=frozenset(curves),
        maxLifetimeDays=366,
        references=_mozillaRefs(level),
        ticketKeysChanged=True,
    )


def _dicomRefs(section: str, extra: Mapping[str, str]) -> Dict[str, str]:
    base = f"DICOM PS3.15 {section}"
    refs = {
        "*": base,
        "versions.minimum": f"{base} (TLS 1.2 shall be supported); RFC 8996 (no TLS 1.0/1.1)",
        "versions.tls13": f"{base} (TLS 1.3 may be supported; preferred when offered)",
        "accepts.TLSv1.2": f"{base} (servers and clients shall support TLS 1.2)",
        "refuses.TLSv1": f"{base}; RFC 8996 (TLS 1.0 must not be negotiated)",
        "refuses.TLSv1.1": f"{base}; RFC 8996 (TLS 1.1 must not be negotiated)",
        "refuses.nonAEAD": f"{base}; RFC 9325 4.2 (AEAD suites with forward secrecy)",
        "ciphers.tls12": f"{base}; RFC 9325 4.1, 4.2 (cipher suites, TLS 1.2)",
        "ciphers.tls13": f"{base}; RFC 9325 4.3 (cipher suites, TLS 1.3)",
        "groups": f"{base}; RFC 9325 4.2.1 (curves)",
        "certificate.key": f"{base}; RFC 9325 4.5 (public key length)",
        "peer.keys": f"{base}; RFC 9325 4.5 (public key length)",
        "renegotiation": f"{base}; RFC 9325 3.5 (renegotiation)",
        "compression": f"{base}; RFC 9325 3.3 (compression)",
        "resumption": f"{base}; RFC 9325 3.4, 3.9 (resumption, 0-RTT)",
        "handshakeTimeout": "securetcp hardening (not a PS3.15 requirement)",
        "clientAuth": f"{base} (certificates identify the peers; PS3.15 leaves policy to the site)",
        "trust": "securetcp (trust anchors for peer certificates)",
        "revocation": "securetcp (revocation of peer certificates)",
    }
    refs.update(extra)
    return refs


def _dicomBenchmark(name: str, section: str, title: str, tls13: Iterable[str],
                    groups: Iterable[str], serverTLS13: Iterable[str],
                    extra: Mapping[str, str], serverTLS13Note: str = "") -> Benchmark:
    p = PROFILES[name]
    return Benchmark(
        name=name,
        title=f"DICOM PS3.15 {section} {title}",
        minVersion=TLSVersion.TLSv1_2,
        requireTLS13=False,
        tls12=frozenset(p.tls12),
        tls13=frozenset(tls13),
        groups=frozenset(groups),
        minRSABits=2048,
        curves=frozenset({"secp256r1", "secp384r1", "secp521r1"}),
        maxLifetimeDays=None,
        references=_dicomRefs(section, extra),
        requireTLS12=True,
        serverTLS13=frozenset(serverTLS13),
        serverTLS13Note=serverTLS13Note,
        ticketKeysChanged=True,
    )


_MODIFIED_TLS13 = PROFILES["dicom-bcp195-rfc8996-modified"].tls13


#: The benchmarks C{check} and C{probe} measure against, by name.
BENCHMARKS: Mapping[str, Benchmark] = {
    b.name: b for b in (
        _nistBenchmark(),
        _mozillaBenchmark("mozilla-modern", "Modern", ("secp256r1", "secp384r1"), 0),
        _mozillaBenchmark("mozilla-intermediate", "Intermediate",
                          ("secp256r1", "secp384r1"), 2048),
        _dicomBenchmark(
            "dicom-bcp195-rfc8996", "B.12", "BCP 195 RFC 8996 TLS Secure Transport "
            "Connection Profile",
            tls13=PROFILES["dicom-bcp195-rfc8996"].tls13 + ("TLS_AES_128_CCM_SHA256",),
            groups=("X25519", "X448", "secp256r1", "secp384r1", "secp521r1",
                    "X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024"),
            serverTLS13=(), extra={}),
        _dicomBenchmark(
            "dicom-bcp195-rfc8996-modified", "B.13", "Modified BCP 195 RFC 8996 TLS "
            "Secure Transport Connection Profile",
            tls13=_MODIFIED_TLS13 + ("TLS_AES_128_CCM_8_SHA256",),
            groups=("secp256r1", "secp384r1", "secp521r1"),
            serverTLS13=_MODIFIED_TLS13,
            serverTLS13Note="TLS_AES_128_CCM_8_SHA256, also listed by B.13, cannot be offered: "
                            "OpenSSL refuses its 64-bit tag at security level 2",
            extra={
                "ciphers.tls12": "DICOM PS3.15 B.13 (only the permitted algorithms)",
                "ciphers.tls13": "DICOM PS3.15 B.13 (TLS 1.3 cipher suites: servers support "
                                 "every one, clients at least one)",
                "groups": "DICOM PS3.15 B.13 (ECDHE key length of 256 bits or more)",
            }),
    )
}


def item(b: Benchmark, id: str, title: str, status: str, reason: str,
         key: Optional[str] = None) -> CheckItem:
    """
    A checklist line for item C{id}, with C{b}'s reference for it.
    """
    return CheckItem(id, title, status, reason, b.ref(id), key)


def whyCipher(name: str) -> str:
    """
    Why a TLS 1.2 cipher suite is outside a benchmark, from its make-up.
    """
    info = TLS12_CIPHERS.get(name)
    if info is None:
        return "unknown"
    if info.kx == "RSA":
        return "static RSA key exchange: no forward secrecy"
    if not info.aead:
        return "CBC mode, not AEAD"
    if info.enc == "CHACHA20":
        return "ChaCha20-Poly1305 is not NIST-approved"
    if info.kx == "DHE":
        return "finite-field DHE"
    return "not in the benchmark's list"
