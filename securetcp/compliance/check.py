# -*- test-case-name: tests.test_check -*-
"""
The compliance checklist behind C{python -m securetcp check} and C{probe}:
how a policy (or what a live server negotiated) measures, item by item,
against NIST SP 800-52r2 and the Mozilla server-side TLS profiles.

Everything here is a pure function of values: a L{TLSPolicy}, the facts of
a certificate (L{CertificateFacts}), the groups the linked OpenSSL offers,
the time.  Reading files and opening sockets is the caller's job::

    >>> facts = certificateFacts(cert)
    >>> items = checkPolicy(policy, Role.SERVER, BENCHMARKS["nist-800-52r2"],
    ...                     certificate=facts, now=now)
    >>> exitStatus(items)          # 0 when nothing failed, 3 otherwise
    0

Each L{CheckItem} says C{pass}, C{fail} or C{n/a}, why, which document
section it is about, and which policy key changes it.
"""

from __future__ import annotations

import datetime
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from securetcp._catalogue import GROUPS, TLS12_CIPHERS, TLSVersion, canonicalGroup
from securetcp.compliance import NIST_TLS12, NIST_TLS13
from securetcp.policy import ClientAuth, Role, TLSPolicy
from securetcp.profiles import PROFILES

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "n/a"

#: The longest handshake timeout the checklist accepts, in seconds.
MAX_HANDSHAKE_TIMEOUT = 30.0

#: A certificate that expires within this many days still passes, with a note.
RENEW_WITHIN_DAYS = 30


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
    )


#: The benchmarks C{check} and C{probe} measure against, by name.
BENCHMARKS: Mapping[str, Benchmark] = {
    b.name: b for b in (
        _nistBenchmark(),
        _mozillaBenchmark("mozilla-modern", "Modern", ("secp256r1", "secp384r1"), 0),
        _mozillaBenchmark("mozilla-intermediate", "Intermediate",
                          ("secp256r1", "secp384r1"), 2048),
    )
}


# -- certificate facts -----------------------------------------------------


@attrs.frozen
class CertificateFacts:
    """
    What the checklist needs to know about a certificate.

    @ivar keyType: C{"RSA"}, C{"EC"}, C{"Ed25519"}, C{"Ed448"}, C{"DSA"}.
    @ivar keyBits: the key size in bits (the curve size for EC).
    @ivar curve: the curve's name for EC keys (e.g. C{"secp256r1"}).
    @ivar signatureHash: the signature's hash (e.g. C{"sha256"}), if any.
    @ivar extendedKeyUsage: dotted OIDs of the EKU extension, or C{None}
        when the certificate has none.
    @ivar ocspURL: the OCSP responder its issuer names (AIA), if any.
    """

    subject: str
    issuer: str
    keyType: str
    keyBits: int
    curve: Optional[str]
    signatureHash: Optional[str]
    notBefore: datetime.datetime
    notAfter: datetime.datetime
    extendedKeyUsage: Optional[Tuple[str, ...]] = None
    ocspURL: Optional[str] = None

    @property
    def keyDescription(self) -> str:
        if self.keyType == "EC":
            return f"EC {self.curve} ({self.keyBits} bits)"
        return f"{self.keyType} {self.keyBits} bits"

    def asDict(self) -> Dict[str, object]:
        return {"subject": self.subject, "issuer": self.issuer,
                "key": self.keyDescription, "signatureHash": self.signatureHash,
                "notBefore": self.notBefore.isoformat(),
                "notAfter": self.notAfter.isoformat()}


def certificateFacts(cert: x509.Certificate) -> CertificateFacts:
    """
    The L{CertificateFacts} of a certificate.
    """
    key = cert.public_key()
    curve: Optional[str] = None
    if isinstance(key, rsa.RSAPublicKey):
        kind, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        kind, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        kind, bits = "DSA", key.key_size
    else:  # pragma: no cover
        kind, bits = type(key).__name__, 0
    digest = cert.signature_hash_algorithm
    try:
        eku: Optional[Tuple[str, ...]] = tuple(
            oid.dotted_string for oid in
            cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = None
    ocsp: Optional[str] = None
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        pass
    else:
        for access in aia:
            if access.access_method == x509.oid.AuthorityInformationAccessOID.OCSP:
                ocsp = str(access.access_location.value)
                break
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        keyType=kind, keyBits=bits, curve=curve,
        signatureHash=digest.name if digest is not None else None,
        notBefore=cert.not_valid_before_utc,
        notAfter=cert.not_valid_after_utc,
        extendedKeyUsage=eku,
        ocspURL=ocsp,
    )


# -- shared judgements -------------------------------------------------------


def _item(b: Benchmark, id: str, title: str, status: str, reason: str,
          key: Optional[str] = None) -> CheckItem:
    return CheckItem(id, title, status, reason, b.ref(id), key)


def _whyCipher(name: str) -> str:
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


def judgeCertificateKey(b: Benchmark, cert: Optional[CertificateFacts],
                        whose: str = "own") -> CheckItem:
    """
    Whether a certificate's public key is of an allowed type and size.
    """
    title = f"{whose} certificate key type and size"
    if cert is None:
        return _item(b, "certificate.key", title, NOT_APPLICABLE,
                     "no certificate configured", "certKey")
    described = cert.keyDescription
    if cert.keyType == "RSA":
        if b.minRSABits == 0:
            return _item(b, "certificate.key", title, FAIL,
                         f"{described}: {b.title} specifies ECDSA certificates",
                         "certKey")
        if cert.keyBits < b.minRSABits:
            return _item(b, "certificate.key", title, FAIL,
                         f"{described} is below {b.minRSABits} bits", "certKey")
        return _item(b, "certificate.key", title, PASS,
                     f"{described} (at least {b.minRSABits})", "certKey")
    if cert.keyType == "EC":
        if cert.curve not in b.curves:
            return _item(b, "certificate.key", title, FAIL,
                         f"{described}: curve not one of {', '.join(sorted(b.curves))}",
                         "certKey")
        return _item(b, "certificate.key", title, PASS, described, "certKey")
    return _item(b, "certificate.key", title, FAIL,
                 f"{described}: not an RSA or ECDSA key of {b.title}", "certKey")


def judgeCertificateValidity(b: Benchmark, cert: Optional[CertificateFacts],
                             now: datetime.datetime, whose: str = "own") -> CheckItem:
    """
    Whether a certificate is valid at C{now} (and, for benchmarks that limit
    it, whether its lifetime is short enough).
    """
    title = f"{whose} certificate validity"
    if cert is None:
        return _item(b, "certificate.validity", title, NOT_APPLICABLE,
                     "no certificate configured", "certKey")
    if now < cert.notBefore:
        return _item(b, "certificate.validity", title, FAIL,
                     f"not valid before {cert.notBefore.isoformat()}", "certKey")
    if now >= cert.notAfter:
        return _item(b, "certificate.validity", title, FAIL,
                     f"expired on {cert.notAfter.isoformat()}", "certKey")
    lifetime = (cert.notAfter - cert.notBefore).days
    if b.maxLifetimeDays is not None and lifetime > b.maxLifetimeDays:
        return _item(b, "certificate.validity", title, FAIL,
                     f"lifetime of {lifetime} days is above {b.maxLifetimeDays}", "certKey")
    left = (cert.notAfter - now).days
    note = f"; renew soon (within {RENEW_WITHIN_DAYS} days)" if left < RENEW_WITHIN_DAYS else ""
    return _item(b, "certificate.validity", title, PASS,
                 f"valid until {cert.notAfter.isoformat()} ({left} days left){note}",
                 "certKey")


_WEAK_HASHES = ("md5", "sha1", "sha224")


def judgeCertificateSignature(b: Benchmark, cert: Optional[CertificateFacts],
                              whose: str = "own") -> CheckItem:
    """
    Whether a certificate is signed with SHA-256 or better.
    """
    title = f"{whose} certificate signature"
    if cert is None:
        return _item(b, "certificate.signature", title, NOT_APPLICABLE,
                     "no certificate configured", "certKey")
    if cert.signatureHash in _WEAK_HASHES:
        return _item(b, "certificate.signature", title, FAIL,
                     f"signed with {cert.signatureHash}; reissue it with SHA-256 or better",
                     "certKey")
    what = cert.signatureHash or f"{cert.keyType} (no separate hash)"
    return _item(b, "certificate.signature", title, PASS, f"signed with {what}", "certKey")


def _groupList(groups: Iterable[str]) -> List[str]:
    out = []
    for g in groups:
        try:
            out.append(canonicalGroup(g))
        except KeyError:
            out.append(g)
    return out


# -- the policy checklist ------------------------------------------------------


def checkPolicy(
    policy: TLSPolicy,
    role: Role,
    benchmark: Benchmark,
    certificate: Optional[CertificateFacts] = None,
    now: Optional[datetime.datetime] = None,
    offeredGroups: Optional[Sequence[str]] = None,
    hostname: Optional[str] = None,
) -> List[CheckItem]:
    """
    Measure C{policy}, used in C{role}, against C{benchmark}.

    @param certificate: the facts of the policy's own certificate, read by
        the caller (C{None}: none configured).
    @param now: the time certificates are judged at (default: now).
    @param offeredGroups: the groups the linked OpenSSL really offers under
        the policy (default: every group the policy names).
    @param hostname: (clients) the name the server's certificate is checked
        against, when the endpoint supplies it rather than the policy.
    @return: the checklist, in a fixed order.
    """
    b = benchmark
    now = now or datetime.datetime.now(datetime.UTC)
    server = role is Role.SERVER
    items: List[CheckItem] = []
    add = items.append

    if policy.legacy:
        add(_item(b, "profile", "profile", FAIL,
                  f"profile {policy.profile!r} is explicitly insecure (TLS 1.0+, CBC and "
                  "static-RSA suites)", "profile"))
    else:
        add(_item(b, "profile", "profile", PASS,
                  f"profile {policy.profile!r} is not the legacy profile", "profile"))

    # protocol versions
    low, high = policy.versions.minimum, policy.versions.maximum
    if low < b.minVersion:
        add(_item(b, "versions.minimum", "lowest protocol version", FAIL,
                  f"minVersion {low.value} is below {b.minVersion.value}", "minVersion"))
    else:
        note = ""
        if low > TLSVersion.TLSv1_2 and b.minVersion <= TLSVersion.TLSv1_2:
            note = " (TLS 1.2 is not offered: stricter than required; peers without " \
                   "TLS 1.3 cannot connect)"
        add(_item(b, "versions.minimum", "lowest protocol version", PASS,
                  f"minVersion {low.value}{note}", "minVersion"))
    if b.requireTLS13 and high < TLSVersion.TLSv1_3:
        add(_item(b, "versions.tls13", "TLS 1.3 offered", FAIL,
                  f"maxVersion {high.value}: TLS 1.3 is not offered", "maxVersion"))
    else:
        add(_item(b, "versions.tls13", "TLS 1.3 offered", PASS,
                  f"maxVersion {high.value}", "maxVersion"))

    # cipher suites
    if low > TLSVersion.TLSv1_2:
        add(_item(b, "ciphers.tls12", "TLS 1.2 cipher suites", NOT_APPLICABLE,
                  "TLS 1.2 is not negotiated (minVersion TLSv1.3)", "ciphers"))
    else:
        outside = [c for c in policy.ciphers.tls12 if c not in b.tls12]
        if outside:
            add(_item(b, "ciphers.tls12", "TLS 1.2 cipher suites", FAIL,
                      "outside " + b.name + ": " +
                      ", ".join(f"{c} ({_whyCipher(c)})" for c in outside), "ciphers"))
        else:
            add(_item(b, "ciphers.tls12", "TLS 1.2 cipher suites", PASS,
                      ", ".join(policy.ciphers.tls12) or "none", "ciphers"))
    if high < TLSVersion.TLSv1_3:
        add(_item(b, "ciphers.tls13", "TLS 1.3 cipher suites", NOT_APPLICABLE,
                  "TLS 1.3 is not negotiated (maxVersion below TLSv1.3)", "ciphersuites"))
    else:
        outside = [c for c in policy.ciphers.tls13 if c not in b.tls13]
        if outside:
            add(_item(b, "ciphers.tls13", "TLS 1.3 cipher suites", FAIL,
                      f"outside {b.name}: " + ", ".join(outside), "ciphersuites"))
        else:
            add(_item(b, "ciphers.tls13", "TLS 1.3 cipher suites", PASS,
                      ", ".join(policy.ciphers.tls13), "ciphersuites"))

    # groups
    groups = _groupList(offeredGroups if offeredGroups is not None
                        else policy.groups.optional + policy.groups.required)
    outside = [g for g in groups if g not in b.groups]
    if outside:
        add(_item(b, "groups", "key-exchange groups", FAIL,
                  f"outside {b.name}: " + ", ".join(outside), "groups"))
    else:
        add(_item(b, "groups", "key-exchange groups", PASS, ", ".join(groups), "groups"))

    # own certificate
    items.append(judgeCertificateKey(b, certificate))
    items.append(judgeCertificateValidity(b, certificate, now))
    items.append(judgeCertificateSignature(b, certificate))

    # the peer's keys
    keys = policy.keys
    if keys.minRSABits < b.minRSABits or keys.minRSABits < 2048 or keys.minECBits < 256:
        add(_item(b, "peer.keys", "minimum peer key sizes", FAIL,
                  f"peer keys accepted from RSA {keys.minRSABits} / EC {keys.minECBits} bits; "
                  "need RSA 2048 / EC 256", "profile"))
    else:
        add(_item(b, "peer.keys", "minimum peer key sizes", PASS,
                  f"RSA >= {keys.minRSABits}, EC >= {keys.minECBits} bits in the peer's chain",
                  "profile"))

    # authentication of the peer
    verifiesPeer = True
    if server:
        mode = policy.peer.clientAuth
        if mode is ClientAuth.REQUIRED:
            add(_item(b, "clientAuth", "client authentication (mutual TLS)", PASS,
                      "clientAuth=required: every client presents a certificate from the "
                      "trusted CAs" + (f"; allow-list of {len(policy.peer.allow)} rule(s)"
                                       if policy.peer.allow else ""), "clientAuth"))
        elif mode is ClientAuth.OPTIONAL:
            add(_item(b, "clientAuth", "client authentication (mutual TLS)", PASS,
                      "clientAuth=optional: a certificate is verified when presented, "
                      "clients without one are accepted", "clientAuth"))
        else:
            verifiesPeer = False
            add(_item(b, "clientAuth", "client authentication (mutual TLS)", NOT_APPLICABLE,
                      "clientAuth=none: clients are not authenticated by TLS; set "
                      "clientAuth=required (or use mtls:) to authenticate devices",
                      "clientAuth"))
        if not verifiesPeer:
            add(_item(b, "trust", "trust anchors for client certificates", NOT_APPLICABLE,
                      "no client certificates are verified", "caCerts"))
        elif policy.trust.system:
            add(_item(b, "trust", "trust anchors for client certificates", FAIL,
                      "systemCAs=true: any certificate from a public CA would be accepted "
                      "as a client", "systemCAs"))
        elif policy.trust.private:
            add(_item(b, "trust", "trust anchors for client certificates", PASS,
                      "only the configured CAs: " + ", ".join(
                          p for p in (policy.trust.caFile, policy.trust.caDir) if p),
                      "caCerts"))
        else:
            add(_item(b, "trust", "trust anchors for client certificates", FAIL,
                      "no CA configured to verify client certificates", "caCerts"))
    else:
        name = hostname or policy.peer.hostname
        if name or policy.peer.pins or policy.peer.allow:
            what = [f"hostname {name}"] if name else []
            if policy.peer.pins:
                what.append(f"{len(policy.peer.pins)} SPKI pin(s)")
            if policy.peer.allow:
                what.append(f"allow-list of {len(policy.peer.allow)} rule(s)")
            add(_item(b, "serverAuth", "server authentication", PASS,
                      "chain verified against the trust anchors, and " + ", ".join(what),
                      "hostname"))
        else:
            add(_item(b, "serverAuth", "server authentication", FAIL,
                      "the chain is verified but no hostname, pin or allow-list says "
                      "which server is meant", "hostname"))
        trust = policy.trust
        anchors = ", ".join(p for p in (trust.caFile, trust.caDir) if p)
        if trust.system:
            anchors = (anchors + ", " if anchors else "") + "the system store"
        add(_item(b, "trust", "trust anchors for the server certificate", PASS,
                  anchors or "the system store (no caCerts given)", "caCerts"))

    # revocation
    rev = policy.revocation
    crlOn = bool(rev.crlFiles or rev.crlDirs)
    ocspMode = getattr(rev, "ocsp", None)  # None: this version has no OCSP checking
    ocspOn = ocspMode not in (None, "off") or bool(getattr(rev, "requireStaple", False))
    if server and not verifiesPeer:
        add(_item(b, "revocation", "revocation checking", NOT_APPLICABLE,
                  "no client certificates are verified", "crl"))
    elif not crlOn and not ocspOn:
        whose = "client" if server else "server"
        how = "set crl=FILE" + (" or ocsp=require" if ocspMode is not None else
                                " (OCSP is not available in this version)")
        add(_item(b, "revocation", "revocation checking", FAIL,
                  f"no CRL or OCSP configured: a revoked {whose} certificate would be "
                  f"accepted; {how}", "crl"))
    else:
        parts = []
        if crlOn:
            parts.append(f"CRLs {', '.join(rev.crlFiles + rev.crlDirs)} with revocation="
                         f"{rev.mode}, scope {rev.scope}")
        if ocspOn:
            parts.append(f"OCSP ocsp={ocspMode}")
        soft = (crlOn and rev.mode == "soft") or (not crlOn and ocspMode == "prefer")
        note = ("; a peer whose status cannot be established is accepted and audited with "
                "a warning (hard / require are stricter)" if soft else
                "; a peer whose status cannot be established is rejected")
        add(_item(b, "revocation", "revocation checking", PASS, "; ".join(parts) + note,
                  "revocation" if soft else "crl"))

    # extensions and protocol features
    staple = getattr(rev, "staple", None)
    title = "OCSP stapling (certificate status request)"
    if staple is None:
        add(_item(b, "ocspStapling", title, NOT_APPLICABLE,
                  "not available in this version: securetcp cannot staple OCSP responses; "
                  "if your CA runs an OCSP responder this requirement is NOT met"))
    elif server:
        if staple:
            add(_item(b, "ocspStapling", title, PASS, "staple=true", "staple"))
        elif certificate is not None and certificate.ocspURL:
            add(_item(b, "ocspStapling", title, FAIL,
                      f"the certificate names the OCSP responder {certificate.ocspURL} but "
                      "staple=false: servers whose CA supports OCSP staple its response",
                      "staple"))
        else:
            add(_item(b, "ocspStapling", title, NOT_APPLICABLE,
                      "the certificate names no OCSP responder, so there is nothing to "
                      "staple", "staple"))
    elif ocspOn:
        add(_item(b, "ocspStapling", title, PASS,
                  f"the client asks for the server's status (ocsp={ocspMode}"
                  + (", requireStaple=true)" if getattr(rev, "requireStaple", False) else ")"),
                  "ocsp"))
    else:
        add(_item(b, "ocspStapling", title, NOT_APPLICABLE,
                  "ocsp=off: the client does not use the server's OCSP status", "ocsp"))
    add(_item(b, "renegotiation", "renegotiation", PASS,
              "always off (SSL_OP_NO_RENEGOTIATION); not configurable"))
    add(_item(b, "compression", "TLS compression", PASS,
              "always off (SSL_OP_NO_COMPRESSION); not configurable"))
    add(_item(b, "resumption", "session resumption and 0-RTT", PASS,
              "0-RTT early data is never enabled; resumption stays within the context of "
              "this policy"))
    if policy.handshakeTimeout > MAX_HANDSHAKE_TIMEOUT:
        add(_item(b, "handshakeTimeout", "handshake timeout", FAIL,
                  f"{policy.handshakeTimeout:g} s lets slow peers hold connections; use at "
                  f"most {MAX_HANDSHAKE_TIMEOUT:g} s", "handshakeTimeout"))
    else:
        add(_item(b, "handshakeTimeout", "handshake timeout", PASS,
                  f"{policy.handshakeTimeout:g} s", "handshakeTimeout"))
    return items


# -- what a live server negotiated ------------------------------------------------


@attrs.frozen
class Attempt:
    """
    The outcome of one handshake attempt made by C{probe}.

    @ivar connected: whether the handshake completed.
    @ivar error: why it did not, as OpenSSL said.
    @ivar offered: whether the local OpenSSL could offer what was asked
        (C{False}: the attempt proves nothing).
    """

    connected: bool
    error: Optional[str] = None
    version: Optional[str] = None
    cipher: Optional[str] = None
    offered: bool = True


@attrs.frozen
class ProbeFacts:
    """
    What C{probe} learned from a server.

    @ivar main: the full handshake, offering everything the local OpenSSL
        allows.
    @ivar group: the negotiated key-exchange group, if known.
    @ivar chain: the certificates the server presented, leaf first.
    @ivar verifyError: why the chain did not verify against the CA given,
        or C{None} if it did.
    @ivar hostnameError: why the leaf is not valid for the name, or C{None}.
    @ivar clientCertRequested: whether the server asked for a client
        certificate.
    @ivar ocspStapled: whether the server stapled an OCSP response.
    @ivar attempts: the refusal tests by name (C{"TLSv1"}, C{"TLSv1.1"},
        C{"TLSv1.2"}, C{"nonAEAD"}).
    """

    main: Attempt
    group: Optional[str]
    chain: Tuple[CertificateFacts, ...]
    verifyError: Optional[str]
    hostnameError: Optional[str]
    clientCertRequested: bool
    ocspStapled: bool
    attempts: Mapping[str, Attempt]


def checkNegotiated(facts: ProbeFacts, benchmark: Benchmark,
                    now: Optional[datetime.datetime] = None) -> List[CheckItem]:
    """
    Measure what a server negotiated and presented against C{benchmark}.
    """
    b = benchmark
    now = now or datetime.datetime.now(datetime.UTC)
    items: List[CheckItem] = []
    add = items.append
    main = facts.main
    if not main.connected:
        add(_item(b, "handshake", "handshake", FAIL,
                  f"the handshake failed: {main.error}" + (
                      " (the server asked for a client certificate: give --cert and --key)"
                      if facts.clientCertRequested else "")))
    version: Optional[TLSVersion] = None
    if main.version:
        try:
            version = TLSVersion.parse(main.version)
        except ValueError:
            version = None
    if version is None:
        add(_item(b, "versions.minimum", "negotiated protocol version", NOT_APPLICABLE,
                  "nothing was negotiated"))
    elif version < b.minVersion:
        add(_item(b, "versions.minimum", "negotiated protocol version", FAIL,
                  f"{version.value} is below {b.minVersion.value}", "minVersion"))
    elif b.requireTLS13 and version < TLSVersion.TLSv1_3:
        add(_item(b, "versions.tls13", "negotiated protocol version", FAIL,
                  f"{version.value} although TLS 1.3 was offered: the server does not "
                  "support TLS 1.3", "maxVersion"))
    else:
        add(_item(b, "versions.minimum", "negotiated protocol version", PASS, version.value,
                  "minVersion"))
    if main.cipher and version is not None:
        if version is TLSVersion.TLSv1_3:
            ok, which, key = main.cipher in b.tls13, "ciphers.tls13", "ciphersuites"
            why = "" if ok else f"{main.cipher} is outside {b.name}"
        else:
            ok, which, key = main.cipher in b.tls12, "ciphers.tls12", "ciphers"
            why = "" if ok else f"{main.cipher} is outside {b.name} ({_whyCipher(main.cipher)})"
        add(_item(b, which, "negotiated cipher suite", PASS if ok else FAIL,
                  main.cipher if ok else why, key))
    if facts.group:
        try:
            group = canonicalGroup(facts.group)
        except KeyError:
            group = facts.group
        ok = group in b.groups
        add(_item(b, "groups", "negotiated key-exchange group", PASS if ok else FAIL,
                  group if ok else f"{group} is outside {b.name}", "groups"))
    elif main.connected:
        add(_item(b, "groups", "negotiated key-exchange group", NOT_APPLICABLE,
                  "the group was not reported by the linked OpenSSL"))
    leaf = facts.chain[0] if facts.chain else None
    items.append(judgeCertificateKey(b, leaf, "server"))
    items.append(judgeCertificateValidity(b, leaf, now, "server"))
    items.append(judgeCertificateSignature(b, leaf, "server"))
    if leaf is not None:
        problems = [p for p in (facts.verifyError, facts.hostnameError) if p]
        add(_item(b, "certificate.chain", "server certificate chain and name",
                  FAIL if problems else PASS,
                  "; ".join(problems) if problems else
                  f"verified: {leaf.subject}, issued by {leaf.issuer}", "--cacert"))
    if facts.clientCertRequested:
        add(_item(b, "clientAuth", "client authentication (mutual TLS)", PASS,
                  "the server asked for a client certificate"))
    else:
        add(_item(b, "clientAuth", "client authentication (mutual TLS)", NOT_APPLICABLE,
                  "the server did not ask for a client certificate (one-way TLS)"))
    title = "OCSP stapling (certificate status request)"
    if facts.ocspStapled:
        add(_item(b, "ocspStapling", title, PASS, "the server stapled an OCSP response"))
    elif leaf is not None and leaf.ocspURL:
        add(_item(b, "ocspStapling", title, FAIL,
                  f"no OCSP response stapled although the certificate names the responder "
                  f"{leaf.ocspURL}", "staple"))
    else:
        add(_item(b, "ocspStapling", title, NOT_APPLICABLE,
                  "no OCSP response stapled; the certificate names no OCSP responder"))
    wanted = [("TLSv1", "refuses.TLSv1", "TLS 1.0 refused"),
              ("TLSv1.1", "refuses.TLSv1.1", "TLS 1.1 refused")]
    if b.minVersion > TLSVersion.TLSv1_2:
        wanted.append(("TLSv1.2", "refuses.TLSv1.2", "TLS 1.2 refused"))
    wanted.append(("nonAEAD", "refuses.nonAEAD", "non-AEAD (CBC) TLS 1.2 suites refused"))
    for name, id, title in wanted:
        attempt = facts.attempts.get(name)
        if attempt is None:
            continue
        if not attempt.offered:
            add(_item(b, id, title, NOT_APPLICABLE,
                      f"the local OpenSSL cannot offer it ({attempt.error})"))
        elif attempt.connected:
            key = "ciphers" if name == "nonAEAD" else "minVersion"
            add(_item(b, id, title, FAIL,
                      f"the server accepted {attempt.version} {attempt.cipher}", key))
        else:
            add(_item(b, id, title, PASS, f"refused: {attempt.error}"))
    return items


# -- summaries -----------------------------------------------------------------


def failed(items: Iterable[CheckItem]) -> List[CheckItem]:
    return [i for i in items if i.status == FAIL]


def exitStatus(items: Iterable[CheckItem]) -> int:
    """
    C{0} when no item failed, C{3} when any did.
    """
    return 3 if failed(items) else 0


def renderText(items: Sequence[CheckItem]) -> str:
    """
    The checklist as aligned text, one item per line with its fix.
    """
    lines = []
    for item in items:
        status = {PASS: "PASS", FAIL: "FAIL"}.get(item.status, "N/A ")
        lines.append(f"{status}  {item.title}: {item.reason}")
        detail = f"      [{item.reference}]"
        if item.key and item.status != PASS:
            detail += f" change: {item.key}"
        lines.append(detail)
    counts = {s: sum(1 for i in items if i.status == s) for s in (PASS, FAIL, NOT_APPLICABLE)}
    lines.append(f"{counts[PASS]} passed, {counts[FAIL]} failed, "
                 f"{counts[NOT_APPLICABLE]} not applicable")
    return "\n".join(lines) + "\n"
