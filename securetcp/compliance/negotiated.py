# -*- test-case-name: tests.test_check -*-
"""
The checklist of a live server, for C{python -m securetcp probe}: what a
server negotiated and presented (L{ProbeFacts}, gathered by the caller),
judged item by item against a benchmark with the same verdicts as a
policy's checklist::

    >>> items = checkNegotiated(facts, BENCHMARKS["nist-800-52r2"], now=now)
    >>> [i.id for i in items if i.status == FAIL]
    []
"""

from __future__ import annotations

import datetime
from typing import List, Mapping, Optional, Tuple

import attrs

from securetcp._catalogue import TLSVersion, canonicalGroup
from securetcp.compliance.catalogue import (
    CIPHERS_KEY,
    FAIL,
    GROUPS_KEY,
    MAX_VERSION_KEY,
    MIN_VERSION_KEY,
    NOT_APPLICABLE,
    PASS,
    STAPLE_KEY,
    SUITES_KEY,
    Benchmark,
    CheckItem,
    item,
    whyCipher,
)
from securetcp.compliance.certificates import (
    CertificateFacts,
    judgeCertificateKey,
    judgeCertificateSignature,
    judgeCertificateValidity,
)


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
        C{"TLSv1.2"}, C{"nonAEAD"}), and C{"acceptsTLSv1.2"}, TLS 1.2 alone,
        for a benchmark that requires it.
    """

    main: Attempt
    group: Optional[str]
    chain: Tuple[CertificateFacts, ...]
    verifyError: Optional[str]
    hostnameError: Optional[str]
    clientCertRequested: bool
    ocspStapled: bool
    attempts: Mapping[str, Attempt]

    @property
    def leaf(self) -> Optional[CertificateFacts]:
        return self.chain[0] if self.chain else None

    @property
    def version(self) -> Optional[TLSVersion]:
        """
        The negotiated version, if one was and is known.
        """
        try:
            return TLSVersion.parse(self.main.version) if self.main.version else None
        except ValueError:
            return None


def _handshake(b: Benchmark, facts: ProbeFacts) -> List[CheckItem]:
    if facts.main.connected:
        return []
    hint = (" (the server asked for a client certificate: give --cert and --key)"
            if facts.clientCertRequested else "")
    return [item(b, "handshake", "handshake", FAIL,
                 f"the handshake failed: {facts.main.error}{hint}")]


def _version(b: Benchmark, facts: ProbeFacts) -> CheckItem:
    version, title = facts.version, "negotiated protocol version"
    if version is None:
        return item(b, "versions.minimum", title, NOT_APPLICABLE, "nothing was negotiated")
    if version < b.minVersion:
        return item(b, "versions.minimum", title, FAIL,
                    f"{version.value} is below {b.minVersion.value}", MIN_VERSION_KEY)
    if b.requireTLS13 and version < TLSVersion.TLSv1_3:
        return item(b, "versions.tls13", title, FAIL,
                    f"{version.value} although TLS 1.3 was offered: the server does not "
                    "support TLS 1.3", MAX_VERSION_KEY)
    return item(b, "versions.minimum", title, PASS, version.value, MIN_VERSION_KEY)


def _cipher(b: Benchmark, facts: ProbeFacts) -> List[CheckItem]:
    cipher, version = facts.main.cipher, facts.version
    if not cipher or version is None:
        return []
    if version is TLSVersion.TLSv1_3:
        ok, which, key = cipher in b.tls13, "ciphers.tls13", SUITES_KEY
        why = "" if ok else f"{cipher} is outside {b.name}"
    else:
        ok, which, key = cipher in b.tls12, "ciphers.tls12", CIPHERS_KEY
        why = "" if ok else f"{cipher} is outside {b.name} ({whyCipher(cipher)})"
    return [item(b, which, "negotiated cipher suite", PASS if ok else FAIL,
                 cipher if ok else why, key)]


def _group(b: Benchmark, facts: ProbeFacts) -> List[CheckItem]:
    title = "negotiated key-exchange group"
    if not facts.group:
        return [item(b, "groups", title, NOT_APPLICABLE,
                     "the group was not reported by the linked OpenSSL")] \
            if facts.main.connected else []
    try:
        group = canonicalGroup(facts.group)
    except KeyError:
        group = facts.group
    ok = group in b.groups
    return [item(b, "groups", title, PASS if ok else FAIL,
                 group if ok else f"{group} is outside {b.name}", GROUPS_KEY)]


def _certificate(b: Benchmark, facts: ProbeFacts, now: datetime.datetime) -> List[CheckItem]:
    leaf = facts.leaf
    items = [judgeCertificateKey(b, leaf, "server"),
             judgeCertificateValidity(b, leaf, now, "server"),
             judgeCertificateSignature(b, leaf, "server")]
    if leaf is not None:
        problems = [p for p in (facts.verifyError, facts.hostnameError) if p]
        items.append(item(b, "certificate.chain", "server certificate chain and name",
                          FAIL if problems else PASS,
                          "; ".join(problems) if problems else
                          f"verified: {leaf.subject}, issued by {leaf.issuer}", "--cacert"))
    return items


def _clientAuth(b: Benchmark, facts: ProbeFacts) -> CheckItem:
    title = "client authentication (mutual TLS)"
    if facts.clientCertRequested:
        return item(b, "clientAuth", title, PASS, "the server asked for a client certificate")
    return item(b, "clientAuth", title, NOT_APPLICABLE,
                "the server did not ask for a client certificate (one-way TLS)")


def _stapling(b: Benchmark, facts: ProbeFacts) -> CheckItem:
    title, leaf = "OCSP stapling (certificate status request)", facts.leaf
    if facts.ocspStapled:
        return item(b, "ocspStapling", title, PASS, "the server stapled an OCSP response")
    if leaf is not None and leaf.ocspURL:
        return item(b, "ocspStapling", title, FAIL,
                    f"no OCSP response stapled although the certificate names the responder "
                    f"{leaf.ocspURL}", STAPLE_KEY)
    return item(b, "ocspStapling", title, NOT_APPLICABLE,
                "no OCSP response stapled; the certificate names no OCSP responder")


def _refusals(b: Benchmark, facts: ProbeFacts) -> List[CheckItem]:
    wanted = [("TLSv1", "refuses.TLSv1", "TLS 1.0 refused"),
              ("TLSv1.1", "refuses.TLSv1.1", "TLS 1.1 refused")]
    if b.minVersion > TLSVersion.TLSv1_2:
        wanted.append(("TLSv1.2", "refuses.TLSv1.2", "TLS 1.2 refused"))
    wanted.append(("nonAEAD", "refuses.nonAEAD", "non-AEAD (CBC) TLS 1.2 suites refused"))
    items = []
    for name, id, title in wanted:
        attempt = facts.attempts.get(name)
        if attempt is None:
            continue
        if not attempt.offered:
            items.append(item(b, id, title, NOT_APPLICABLE,
                              f"the local OpenSSL cannot offer it ({attempt.error})"))
        elif attempt.connected:
            items.append(item(b, id, title, FAIL,
                              f"the server accepted {attempt.version} {attempt.cipher}",
                              CIPHERS_KEY if name == "nonAEAD" else MIN_VERSION_KEY))
        else:
            items.append(item(b, id, title, PASS, f"refused: {attempt.error}"))
    return items


def _acceptsTLS12(b: Benchmark, facts: ProbeFacts) -> List[CheckItem]:
    """
    Where the benchmark requires TLS 1.2: a client offering TLS 1.2 alone
    connects, with a suite of the benchmark.
    """
    attempt = facts.attempts.get("acceptsTLSv1.2")
    if not b.requireTLS12 or attempt is None:
        return []
    id, title = "accepts.TLSv1.2", "TLS 1.2 accepted"
    if not attempt.offered:
        return [item(b, id, title, NOT_APPLICABLE,
                     f"the local OpenSSL cannot offer it ({attempt.error})")]
    if not attempt.connected:
        return [item(b, id, title, FAIL, f"refused ({attempt.error}); {b.name} requires "
                     "TLS 1.2", MIN_VERSION_KEY)]
    if attempt.cipher not in b.tls12:
        return [item(b, id, title, FAIL, f"the server chose {attempt.cipher}, outside "
                     f"{b.name}", CIPHERS_KEY)]
    return [item(b, id, title, PASS, f"accepted with {attempt.cipher}")]


def checkNegotiated(facts: ProbeFacts, benchmark: Benchmark,
                    now: Optional[datetime.datetime] = None) -> List[CheckItem]:
    """
    Measure what a server negotiated and presented against C{benchmark}.
    """
    b = benchmark
    now = now or datetime.datetime.now(datetime.UTC)
    return (_handshake(b, facts) + [_version(b, facts)] + _cipher(b, facts)
            + _group(b, facts) + _certificate(b, facts, now)
            + [_clientAuth(b, facts), _stapling(b, facts)] + _acceptsTLS12(b, facts)
            + _refusals(b, facts))
