# -*- test-case-name: tests.test_check -*-
"""
The judges of a policy: one small pure function per checklist item, each
given the L{Situation} (the policy, its role, the benchmark, the facts of
its own certificate, the time) and returning that item's L{CheckItem}, or
C{None} when the item does not concern the role.  L{POLICY_JUDGES} is the
checklist, in its order; L{securetcp.compliance.check.checkPolicy} runs it::

    >>> situation = Situation(policy, Role.SERVER, BENCHMARKS["nist-800-52r2"])
    >>> judgeHandshakeTimeout(situation).status
    'pass'

Each item names the option that changes its outcome, spelled as the option
table (L{securetcp.options}) spells it (the names are in
L{securetcp.compliance.catalogue}).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from securetcp._catalogue import TLSVersion
from securetcp.compliance.catalogue import (
    CA_FILE_KEY,
    CIPHERS_KEY,
    CLIENT_AUTH_KEY,
    CRL_KEY,
    FAIL,
    GROUPS_KEY,
    HANDSHAKE_TIMEOUT_KEY,
    HOSTNAME_KEY,
    MAX_HANDSHAKE_TIMEOUT,
    MAX_VERSION_KEY,
    MIN_VERSION_KEY,
    NOT_APPLICABLE,
    OCSP_KEY,
    PASS,
    PROFILE_KEY,
    REQUIRE_STAPLE_KEY,
    RESUMPTION_KEY,
    REVOCATION_KEY,
    STAPLE_KEY,
    SUITES_KEY,
    SYSTEM_CAS_KEY,
    CheckItem,
    item,
    whyCipher,
)
from securetcp.compliance.certificates import (
    judgeCertificateKey,
    judgeCertificatePurpose,
    judgeCertificateSignature,
    judgeCertificateValidity,
)
from securetcp.compliance.situation import Situation
from securetcp.policy import ClientAuth

Judge = Callable[[Situation], Optional[CheckItem]]


def judgeProfile(s: Situation) -> CheckItem:
    """
    The legacy profile fails; every other passes.
    """
    policy, b = s.policy, s.benchmark
    if policy.legacy:
        return item(b, "profile", "profile", FAIL,
                    f"profile {policy.profile!r} is explicitly insecure (TLS 1.0+, CBC and "
                    "static-RSA suites)", PROFILE_KEY)
    return item(b, "profile", "profile", PASS,
                f"profile {policy.profile!r} is not the legacy profile", PROFILE_KEY)


def judgeMinimumVersion(s: Situation) -> CheckItem:
    """
    The lowest protocol version is the benchmark's or later.
    """
    b, low = s.benchmark, s.policy.versions.minimum
    title = "lowest protocol version"
    if low < b.minVersion:
        return item(b, "versions.minimum", title, FAIL,
                    f"{MIN_VERSION_KEY} {low.value} is below {b.minVersion.value}", MIN_VERSION_KEY)
    note = ""
    if low > TLSVersion.TLSv1_2 and b.requireTLS12:
        return item(b, "versions.minimum", title, FAIL,
                    f"{MIN_VERSION_KEY} {low.value}: TLS 1.2 is not offered, and "
                    f"{b.name} requires it", MIN_VERSION_KEY)
    if low > TLSVersion.TLSv1_2 and b.minVersion <= TLSVersion.TLSv1_2:
        note = " (TLS 1.2 is not offered: stricter than required; peers without " \
               "TLS 1.3 cannot connect)"
    return item(b, "versions.minimum", title, PASS, f"{MIN_VERSION_KEY} {low.value}{note}",
                MIN_VERSION_KEY)


def judgeTLS13(s: Situation) -> CheckItem:
    """
    TLS 1.3 is offered, where the benchmark requires it.
    """
    b, high = s.benchmark, s.policy.versions.maximum
    if b.requireTLS13 and high < TLSVersion.TLSv1_3:
        return item(b, "versions.tls13", "TLS 1.3 offered", FAIL,
                    f"{MAX_VERSION_KEY} {high.value}: TLS 1.3 is not offered", MAX_VERSION_KEY)
    return item(b, "versions.tls13", "TLS 1.3 offered", PASS, f"{MAX_VERSION_KEY} {high.value}",
                MAX_VERSION_KEY)


def judgeTLS12Ciphers(s: Situation) -> CheckItem:
    """
    Every TLS 1.2 cipher suite is one the benchmark allows.
    """
    b, policy = s.benchmark, s.policy
    title = "TLS 1.2 cipher suites"
    if policy.versions.minimum > TLSVersion.TLSv1_2:
        return item(b, "ciphers.tls12", title, NOT_APPLICABLE,
                    f"TLS 1.2 is not negotiated ({MIN_VERSION_KEY} TLSv1.3)", CIPHERS_KEY)
    outside = [c for c in policy.ciphers.tls12 if c not in b.tls12]
    if outside:
        return item(b, "ciphers.tls12", title, FAIL,
                    f"outside {b.name}: " + ", ".join(f"{c} ({whyCipher(c)})" for c in outside),
                    CIPHERS_KEY)
    return item(b, "ciphers.tls12", title, PASS, ", ".join(policy.ciphers.tls12) or "none",
                CIPHERS_KEY)


def judgeTLS13Suites(s: Situation) -> CheckItem:
    """
    Every TLS 1.3 suite is one the benchmark allows; and a server offers
    TLS 1.3 with every suite the benchmark requires of servers, if it names
    any (a client's suites, all allowed, then include one of them).
    """
    b, policy = s.benchmark, s.policy
    title = "TLS 1.3 cipher suites"
    offersTLS13 = policy.versions.maximum >= TLSVersion.TLSv1_3
    required = sorted(b.serverTLS13) if s.server else []
    missing = [c for c in required if not offersTLS13 or c not in policy.ciphers.tls13]
    if missing:
        return item(b, "ciphers.tls13", title, FAIL,
                    f"a server under {b.name} offers TLS 1.3 with every suite of the profile; "
                    "missing: " + ", ".join(missing), SUITES_KEY if offersTLS13 else MAX_VERSION_KEY)
    if not offersTLS13:
        return item(b, "ciphers.tls13", title, NOT_APPLICABLE,
                    f"TLS 1.3 is not negotiated ({MAX_VERSION_KEY} below TLSv1.3)", SUITES_KEY)
    outside = [c for c in policy.ciphers.tls13 if c not in b.tls13]
    if outside:
        return item(b, "ciphers.tls13", title, FAIL, f"outside {b.name}: " + ", ".join(outside),
                    SUITES_KEY)
    note = ""
    if required:
        note = " (every suite the profile requires of servers" + (
            f"; {b.serverTLS13Note})" if b.serverTLS13Note else ")")
    return item(b, "ciphers.tls13", title, PASS, ", ".join(policy.ciphers.tls13) + note,
                SUITES_KEY)


def judgeGroups(s: Situation) -> CheckItem:
    """
    Every key-exchange group offered is one the benchmark allows.
    """
    b, groups = s.benchmark, s.groups
    outside = [g for g in groups if g not in b.groups]
    if outside:
        return item(b, "groups", "key-exchange groups", FAIL,
                    f"outside {b.name}: " + ", ".join(outside), GROUPS_KEY)
    return item(b, "groups", "key-exchange groups", PASS, ", ".join(groups), GROUPS_KEY)


def judgeOwnKey(s: Situation) -> CheckItem:
    return judgeCertificateKey(s.benchmark, s.certificate)


def judgeOwnValidity(s: Situation) -> CheckItem:
    return judgeCertificateValidity(s.benchmark, s.certificate, s.now)


def judgeOwnSignature(s: Situation) -> CheckItem:
    return judgeCertificateSignature(s.benchmark, s.certificate)


def judgeOwnPurpose(s: Situation) -> CheckItem:
    return judgeCertificatePurpose(s.benchmark, s.certificate, s.role.value)


def judgePeerKeys(s: Situation) -> CheckItem:
    """
    The peer's chain is held to RSA 2048 / EC 256 bits (and the
    benchmark's RSA minimum).
    """
    b, keys = s.benchmark, s.policy.keys
    if keys.minRSABits < b.minRSABits or keys.minRSABits < 2048 or keys.minECBits < 256:
        return item(b, "peer.keys", "minimum peer key sizes", FAIL,
                    f"peer keys accepted from RSA {keys.minRSABits} / EC {keys.minECBits} "
                    "bits; need RSA 2048 / EC 256", PROFILE_KEY)
    return item(b, "peer.keys", "minimum peer key sizes", PASS,
                f"RSA >= {keys.minRSABits}, EC >= {keys.minECBits} bits in the peer's chain",
                PROFILE_KEY)


def judgeClientAuth(s: Situation) -> Optional[CheckItem]:
    """
    (Servers) whether clients are authenticated by certificate.
    """
    if not s.server:
        return None
    b, peer = s.benchmark, s.policy.peer
    title = "client authentication (mutual TLS)"
    if peer.clientAuth is ClientAuth.REQUIRED:
        allow = f"; allow-list of {len(peer.allow)} rule(s)" if peer.allow else ""
        return item(b, "clientAuth", title, PASS,
                    f"{CLIENT_AUTH_KEY}=required: every client presents a certificate from the "
                    f"trusted CAs{allow}", CLIENT_AUTH_KEY)
    if peer.clientAuth is ClientAuth.OPTIONAL:
        return item(b, "clientAuth", title, PASS,
                    f"{CLIENT_AUTH_KEY}=optional: a certificate is verified when presented, "
                    "clients without one are accepted", CLIENT_AUTH_KEY)
    return item(b, "clientAuth", title, NOT_APPLICABLE,
                f"{CLIENT_AUTH_KEY}=none: clients are not authenticated by TLS; set "
                f"{CLIENT_AUTH_KEY}=required (or use mtls:) to authenticate devices", CLIENT_AUTH_KEY)


def judgeServerAuth(s: Situation) -> Optional[CheckItem]:
    """
    (Clients) whether something says which server is meant: a hostname,
    pins or an allow-list.
    """
    if s.server:
        return None
    b, peer = s.benchmark, s.policy.peer
    name = s.hostname or peer.hostname
    if not (name or peer.pins or peer.allow):
        return item(b, "serverAuth", "server authentication", FAIL,
                    "the chain is verified but no hostname, pin or allow-list says "
                    "which server is meant", HOSTNAME_KEY)
    what = [f"hostname {name}"] if name else []
    if peer.pins:
        what.append(f"{len(peer.pins)} SPKI pin(s)")
    if peer.allow:
        what.append(f"allow-list of {len(peer.allow)} rule(s)")
    return item(b, "serverAuth", "server authentication", PASS,
                "chain verified against the trust anchors, and " + ", ".join(what), HOSTNAME_KEY)


def judgeTrust(s: Situation) -> CheckItem:
    """
    Servers: only private CAs vouch for clients.  Clients: which anchors
    vouch for the server.
    """
    b, trust = s.benchmark, s.policy.trust
    anchors = ", ".join(p for p in (trust.caFile, trust.caDir) if p)
    if not s.server:
        if trust.system:
            anchors = (anchors + ", " if anchors else "") + "the system store"
        return item(b, "trust", "trust anchors for the server certificate", PASS,
                    anchors or f"the system store (no {CA_FILE_KEY} given)", CA_FILE_KEY)
    title = "trust anchors for client certificates"
    if not s.verifiesPeer:
        return item(b, "trust", title, NOT_APPLICABLE, "no client certificates are verified",
                    CA_FILE_KEY)
    if trust.system:
        return item(b, "trust", title, FAIL,
                    f"{SYSTEM_CAS_KEY}=true: any certificate from a public CA would be accepted "
                    "as a client", SYSTEM_CAS_KEY)
    if trust.private:
        return item(b, "trust", title, PASS, "only the configured CAs: " + anchors, CA_FILE_KEY)
    return item(b, "trust", title, FAIL, "no CA configured to verify client certificates",
                CA_FILE_KEY)


def judgeRevocation(s: Situation) -> CheckItem:
    """
    The peer's revocation status is checked (CRL or OCSP), and how strictly.
    """
    b, rev = s.benchmark, s.policy.revocation
    title = "revocation checking"
    if not s.verifiesPeer:
        return item(b, "revocation", title, NOT_APPLICABLE,
                    "no client certificates are verified", CRL_KEY)
    if not rev.crlEnabled and not rev.ocspEnabled:
        whose = "client" if s.server else "server"
        return item(b, "revocation", title, FAIL,
                    f"no CRL or OCSP configured: a revoked {whose} certificate would be "
                    f"accepted; set {CRL_KEY}=FILE or {OCSP_KEY}=require", CRL_KEY)
    parts = []
    if rev.crlEnabled:
        parts.append(f"CRLs {', '.join(rev.crlFiles + rev.crlDirs)} with {REVOCATION_KEY}="
                     f"{rev.mode}, scope {rev.scope}")
    if rev.ocspEnabled:
        parts.append(f"OCSP {OCSP_KEY}={rev.ocsp}")
    soft = (rev.crlEnabled and rev.mode == "soft") or (not rev.crlEnabled
                                                       and rev.ocsp == "prefer")
    note = ("; a peer whose status cannot be established is accepted and audited with "
            "a warning (hard / require are stricter)" if soft else
            "; a peer whose status cannot be established is rejected")
    return item(b, "revocation", title, PASS, "; ".join(parts) + note,
                REVOCATION_KEY if soft else CRL_KEY)


def judgeStapling(s: Situation) -> CheckItem:
    """
    Servers staple when their certificate names an OCSP responder; clients
    use the server's OCSP status when they check OCSP.
    """
    b, rev, cert = s.benchmark, s.policy.revocation, s.certificate
    title = "OCSP stapling (certificate status request)"
    if s.server and rev.staple:
        return item(b, "ocspStapling", title, PASS, f"{STAPLE_KEY}=true", STAPLE_KEY)
    if s.server and cert is not None and cert.ocspURL:
        return item(b, "ocspStapling", title, FAIL,
                    f"the certificate names the OCSP responder {cert.ocspURL} but "
                    f"{STAPLE_KEY}=false: servers whose CA supports OCSP staple its response",
                    STAPLE_KEY)
    if s.server:
        return item(b, "ocspStapling", title, NOT_APPLICABLE,
                    "the certificate names no OCSP responder, so there is nothing to "
                    "staple", STAPLE_KEY)
    if rev.ocspEnabled:
        required = f", {REQUIRE_STAPLE_KEY}=true)" if rev.requireStaple else ")"
        return item(b, "ocspStapling", title, PASS,
                    f"the client asks for the server's status ({OCSP_KEY}={rev.ocsp}" + required,
                    OCSP_KEY)
    return item(b, "ocspStapling", title, NOT_APPLICABLE,
                f"{OCSP_KEY}=off: the client does not use the server's OCSP status", OCSP_KEY)


def judgeRenegotiation(s: Situation) -> CheckItem:
    return item(s.benchmark, "renegotiation", "renegotiation", PASS,
                "always off (SSL_OP_NO_RENEGOTIATION); not configurable")


def judgeCompression(s: Situation) -> CheckItem:
    return item(s.benchmark, "compression", "TLS compression", PASS,
                "always off (SSL_OP_NO_COMPRESSION); not configurable")


def judgeResumption(s: Situation) -> CheckItem:
    """
    0-RTT is never enabled.  Session tickets under OpenSSL's built-in key
    (made with the TLS context, kept until a reload or restart replaces it)
    fail the benchmarks that ask for regularly changed ticket keys
    (L{Benchmark.ticketKeysChanged}); elsewhere they pass with the same
    caveat.
    """
    b, policy = s.benchmark, s.policy
    title = "session resumption and 0-RTT"
    base = ("0-RTT early data is never enabled; resumption stays within the context of "
            "this policy")
    if not s.server:
        return item(b, "resumption", title, PASS, base)
    if policy.resumption != "tickets":
        return item(b, "resumption", title, PASS,
                    f"{base}; {RESUMPTION_KEY}={policy.resumption}", RESUMPTION_KEY)
    caveat = (f"{RESUMPTION_KEY}=tickets: the ticket key is made with the TLS context and "
              "changed only when a reload or restart replaces it, and whoever obtains it "
              "can open every unexpired ticket (a TLS 1.2 ticket holds the master secret of "
              f"its session); {RESUMPTION_KEY}=cache (the default) keeps sessions in the "
              "server, with no such key")
    status = FAIL if b.ticketKeysChanged else PASS
    return item(b, "resumption", title, status, f"{base}; {caveat}", RESUMPTION_KEY)


def judgeHandshakeTimeout(s: Situation) -> CheckItem:
    """
    A handshake may not hold a connection longer than the checklist allows.
    """
    b, timeout = s.benchmark, s.policy.handshakeTimeout
    if timeout > MAX_HANDSHAKE_TIMEOUT:
        return item(b, "handshakeTimeout", "handshake timeout", FAIL,
                    f"{timeout:g} s lets slow peers hold connections; use at most "
                    f"{MAX_HANDSHAKE_TIMEOUT:g} s", HANDSHAKE_TIMEOUT_KEY)
    return item(b, "handshakeTimeout", "handshake timeout", PASS, f"{timeout:g} s",
                HANDSHAKE_TIMEOUT_KEY)


#: The checklist of a policy: its judges, in the order of the items.
POLICY_JUDGES: Tuple[Judge, ...] = (
    judgeProfile,
    judgeMinimumVersion,
    judgeTLS13,
    judgeTLS12Ciphers,
    judgeTLS13Suites,
    judgeGroups,
    judgeOwnKey,
    judgeOwnValidity,
    judgeOwnSignature,
    judgeOwnPurpose,
    judgePeerKeys,
    judgeClientAuth,
    judgeServerAuth,
    judgeTrust,
    judgeRevocation,
    judgeStapling,
    judgeRenegotiation,
    judgeCompression,
    judgeResumption,
    judgeHandshakeTimeout,
)
