# -*- test-case-name: tests.test_options -*-
"""
THE option table: one L{Option} per name a user writes, in an endpoint
string (C{mtls:6661:minVersion=TLSv1.3}), a TOML policy file
(C{minVersion = "TLSv1.3"}) or a L{securetcp.config.buildPolicy} keyword.

Each row says which L{securetcp.policy.TLSPolicy} field the option sets,
its kind (which values it takes and how they are checked), its default, a
one-line description and where it applies.  Everything that speaks about
options reads this table: the endpoint-string parsers (their accepted
arguments), L{securetcp.config} (TOML keys and type checks),
C{python -m securetcp check} (the effective policy it prints) and the
reference tables of C{docs/policy.md} and C{docs/endpoints.md} (a test
holds them to it)::

    >>> OPTIONS["minVersion"].field
    'versions.minimum'
    >>> OPTIONS["crl"].kind.many
    True
    >>> list(endpointArguments(Role.SERVER))[:3]
    ['port', 'interface', 'backlog']

The endpoint's own arguments (C{port}, C{backlog}, C{auditLog}, ...) are
rows too, with no field (L{ENDPOINT_ROWS}).  The policy classes speak in
field paths; L{securetcp._spelling} reads the table backwards to turn their
errors into the option names users wrote, and L{securetcp._optionviews}
shows a policy, and the docs' reference tables, from it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import attrs

from securetcp._catalogue import VERSION_NAMES
from securetcp._fields import (
    OCSP_MODES,
    RESUMPTION_MODES,
    REVOCATION_MODES,
    REVOCATION_SCOPES,
    ClientAuth,
    Role,
)
from securetcp._kinds import (  # the kinds of values, re-exported
    BIND_RULES,
    BINDING,
    BOOL,
    CHOICE,
    ENDPOINT,
    GROUPS,
    INTEGER,
    LABEL,
    NAMES,
    PATH,
    PATHS,
    PINS,
    RULES,
    SECONDS,
    SECRET,
    TEXT,
    URL,
    VERSION,
    Kind,
)
from securetcp.errors import PolicyError
from securetcp.profiles import DEFAULT_PROFILE, PROFILES

#: the default of an option whose value comes from the profile
FROM_PROFILE = "the profile's"

BOTH: Tuple[Role, ...] = (Role.SERVER, Role.CLIENT)
SERVER: Tuple[Role, ...] = (Role.SERVER,)
CLIENT: Tuple[Role, ...] = (Role.CLIENT,)


@attrs.frozen
class Option:
    """
    One option.

    @ivar name: as users write it.
    @ivar kind: the L{Kind} of its values.
    @ivar doc: what it does, in one line.
    @ivar field: the L{TLSPolicy} field it sets, as a dotted path
        (C{"revocation.crlFiles"}); C{None} for an endpoint's own argument.
    @ivar default: its default value, L{FROM_PROFILE}, or C{None} (nothing).
    @ivar defaultNote: what the docs add to the default.
    @ivar roles: the roles it applies to.
    @ivar choices: the values it takes, for a choice.
    @ivar clears: fields that giving it resets to C{None} (C{pkcs12}
        replaces C{certKey}, and the other way round).
    @ivar bounds: the range of an integer.
    @ivar emptyAllowed: whether an empty value means something.
    @ivar colons: whether values hold colons, which an endpoint string
        must escape (C{uri\\:spiffe\\://...}).
    @ivar example: a value, as written in an endpoint string.
    """

    name: str
    kind: Kind
    doc: str
    field: Optional[str] = None
    default: Any = None
    defaultNote: str = ""
    roles: Tuple[Role, ...] = BOTH
    choices: Tuple[str, ...] = ()
    clears: Tuple[str, ...] = ()
    bounds: Optional[Tuple[int, int]] = None
    emptyAllowed: bool = False
    colons: bool = False
    example: str = ""

    @property
    def endpointOnly(self) -> bool:
        """
        Whether only endpoint strings take it (it is not a policy option).
        """
        return self.field is None

    @property
    def places(self) -> Tuple[str, ...]:
        """
        Where it may be written.
        """
        if self.endpointOnly:
            return ("endpoint string",)
        return ("endpoint string", "policy file", "buildPolicy")


_PROFILE_NAMES = tuple(PROFILES)
_CLIENT_AUTH = tuple(mode.value for mode in ClientAuth)

#: Every policy option, in the order the docs and error messages list them.
POLICY_ROWS: Tuple[Option, ...] = (
    Option("name", LABEL, "label of the policy in the audit log", "name", "default",
           example="hl7-inbound"),
    Option("profile", CHOICE, "named profile to start from",
           "profile", DEFAULT_PROFILE, choices=_PROFILE_NAMES, example="mozilla-modern",
           defaultNote="(sets versions, ciphers, groups and key sizes)"),
    Option("minVersion", VERSION, "lowest protocol version (TLSv1.2, TLSv1.3)",
           "versions.minimum", FROM_PROFILE, choices=VERSION_NAMES, example="TLSv1.3"),
    Option("maxVersion", VERSION, "highest protocol version", "versions.maximum",
           FROM_PROFILE, choices=VERSION_NAMES, example="TLSv1.2"),
    Option("ciphers", NAMES, "TLS 1.2 cipher suites, OpenSSL names, comma-separated",
           "ciphers.tls12", FROM_PROFILE, example="ECDHE-ECDSA-AES128-GCM-SHA256"),
    Option("ciphersuites", NAMES, "TLS 1.3 suites, comma-separated", "ciphers.tls13",
           FROM_PROFILE, example="TLS_AES_256_GCM_SHA384"),
    Option("groups", GROUPS, "key-exchange groups in order; prefix ? for 'only if available'",
           "groups", FROM_PROFILE, example="?SecP384r1MLKEM1024,P-384"),
    Option("caCerts", PATH, "PEM file of CA certificates that vouch for peers",
           "trust.caFile", example="devices-ca.pem"),
    Option("caCertsDir", PATH, "directory of CA certificate files", "trust.caDir",
           example="/etc/securetcp/cas"),
    Option("systemCAs", BOOL, "also trust the operating system's CA store",
           "trust.system", False, defaultNote="(clients with no other trust: `true`)",
           example="true"),
    Option("certKey", PATH, "PEM file with our certificate (and chain)",
           "credentials.certificate", defaultNote="the `privateKey` file",
           clears=("credentials.pkcs12",), example="server.pem"),
    Option("privateKey", PATH, "PEM file with our private key", "credentials.privateKey",
           defaultNote="the `certKey` file (a server string with neither, nor `pkcs12`: "
                       "`server.pem`, as `ssl:`)",
           clears=("credentials.pkcs12",), example="server.key"),
    Option("extraCertChain", PATH, "PEM file with intermediate certificates to send",
           "credentials.extraChain", example="intermediates.pem"),
    Option("pkcs12", PATH, "PKCS#12 bundle with our certificate and key",
           "credentials.pkcs12",
           clears=("credentials.certificate", "credentials.privateKey"),
           example="server.p12"),
    Option("passphrase", SECRET,
           "where the key's passphrase comes from: env:NAME, file:PATH, pass:TEXT",
           "credentials.passphrase", colons=True, example="env\\:KEY_PASSPHRASE"),
    Option("dhParameters", PATH, "PEM DH parameters file, for DHE-RSA-* TLS 1.2 suites",
           "credentials.dhParameters", example="dh2048.pem"),
    Option("clientAuth", CHOICE, "whether a server asks clients for a certificate",
           "peer.clientAuth", "none", defaultNote="(`mtls:`: `required`)", roles=SERVER,
           choices=_CLIENT_AUTH, example="required"),
    Option("hostname", TEXT, "the name or IP address the server's certificate must be valid for",
           "peer.hostname", defaultNote="none (endpoint strings: the host connected to)",
           roles=CLIENT, colons=True, example="pacs.hospital.example"),
    Option("allowPeers", RULES, "identity allow-list: dns:, ip:, uri:, email:, cn: rules",
           "peer.allow", (), defaultNote="(any verified peer)",
           colons=True, example="uri\\:spiffe\\://hospital.example/ward3/*"),
    Option("pinSPKI", PINS, "SHA-256 SPKI pins (sha256/BASE64 or hex)", "peer.pins", (),
           example="sha256/" + "A" * 43 + "="),
    Option("handshakeTimeout", SECONDS, "seconds from TCP connection to a verified, authorised handshake",
           "handshakeTimeout", 10.0, example="5"),
    Option("alpn", NAMES, "ALPN protocol names in preference order", "alpn", (),
           example="h2,http/1.1"),
    Option("resumption", CHOICE,
           "session resumption: cache (sessions kept by the server), tickets (the session "
           "encrypted into the client's ticket) or off",
           "resumption", "cache", roles=SERVER, choices=RESUMPTION_MODES, example="tickets"),
    Option("resumptionLifetime", SECONDS, "seconds a session may be resumed",
           "resumptionLifetime", 7200, roles=SERVER, example="3600"),
    Option("crl", PATHS, "CRL files (PEM or DER), comma-separated; enables revocation checking",
           "revocation.crlFiles", (), defaultNote="(no revocation checking)",
           example="devices.crl"),
    Option("crlDir", PATHS, "directories of CRL files, comma-separated",
           "revocation.crlDirs", (), example="/var/lib/securetcp/crls"),
    Option("revocation", CHOICE,
           "hard: reject a peer whose status is unknown; soft: accept it, audit a warning",
           "revocation.mode", "hard", choices=REVOCATION_MODES, example="soft"),
    Option("revocationScope", CHOICE,
           "which certificates of the peer's chain to check",
           "revocation.scope", "leaf", choices=REVOCATION_SCOPES, example="chain"),
    Option("crlReload", SECONDS,
           "seconds between checks of the CRL files for changes (0: off)",
           "revocation.reloadInterval", 60.0, example="30"),
    Option("crlEnforceLive", BOOL,
           "close connected peers that a reloaded CRL revokes",
           "revocation.enforceOnLive", False, example="true"),
    Option("ocsp", CHOICE,
           "ask the peer certificate's OCSP responder: off, prefer or require an answer",
           "revocation.ocsp", "off", choices=OCSP_MODES, example="require"),
    Option("ocspResponder", URL, "OCSP responder URL overriding the certificates' AIA",
           "revocation.ocspResponder", defaultNote="none (the certificate's AIA)",
           colons=True, example="http\\://ocsp.hospital.example\\:2560"),
    Option("ocspTimeout", SECONDS, "seconds to wait for an OCSP responder (less than handshakeTimeout)",
           "revocation.ocspTimeout", 5.0, example="2"),
    Option("ocspNonce", BOOL, "send a nonce in OCSP requests and check the echo",
           "revocation.ocspNonce", True, example="false"),
    Option("staple", BOOL, "fetch our own OCSP response and staple it",
           "revocation.staple", False, roles=SERVER, example="true"),
    Option("requireStaple", BOOL,
           "reject a server without a valid stapled OCSP response",
           "revocation.requireStaple", False, roles=CLIENT, example="true"),
    Option("binding", BINDING, "read the first message of this protocol (HL7: every "
           "message) and bind its claims to the certificate (docs/bindings.md)",
           "binding.protocol",
           defaultNote="off", roles=SERVER, choices=("hl7", "dicom", "mqtt"), example="hl7"),
    Option("bind", BIND_RULES, "what each peer may claim: PEER, CLAIM=PATTERN|PATTERN; ...",
           "binding.rules", (), roles=SERVER, colons=True,
           example="cn\\:PUMP-*, hl7SendingFacility=WARD3"),
    Option("bindings", PATH, "TOML file of [[bind]] rules, after those of bind",
           "binding.file", roles=SERVER, example="/etc/securetcp/bindings.toml"),
    Option("bindingTimeout", SECONDS, "seconds the first message may take after the handshake",
           "binding.timeout", 10.0, roles=SERVER, example="5"),
    Option("hl7RejectAck", BOOL, "answer a refused HL7 sender with a reject ACK (MSA-1 AR)",
           "binding.hl7RejectAck", False, roles=SERVER, example="true"),
)

_PORT = (0, 65535)
_LIMIT = (1, 10_000_000)

#: The endpoint's own arguments (not policy options), for servers and clients.
ENDPOINT_ROWS: Tuple[Option, ...] = (
    Option("port", INTEGER, "TCP port to listen on (also the first positional argument)",
           roles=SERVER, bounds=_PORT, defaultNote="required unless `endpoint=`",
           example="6661"),
    Option("interface", TEXT, "address to listen on; an IPv6 address (colons escaped) listens on IPv6",
           roles=SERVER, emptyAllowed=True, defaultNote="all IPv4 addresses",
           colons=True, example="127.0.0.1"),
    Option("backlog", INTEGER, "listen queue length", default=50,
           roles=SERVER, bounds=(1, 65535), example="200"),
    Option("endpoint", ENDPOINT,
           "listen on another server endpoint string instead of TCP (tcp6:, unix:, systemd:, ...)",
           roles=SERVER, colons=True, example="unix\\:/run/hl7.sock"),
    Option("policy", PATH, "TOML policy file; the other arguments override its keys",
           roles=SERVER, example="/etc/securetcp/hl7-inbound.toml"),
    Option("auditLog", PATH,
           "write the audit records to this file as a hash chain (AuditLogObserver)",
           roles=SERVER, example="/var/log/securetcp/audit.jsonl"),
    Option("auditCheckpointKey", PATH,
           "sign chain.checkpoint records of the auditLog file with this Ed25519 private key "
           "(PEM file)", roles=SERVER, defaultNote="no checkpoints",
           example="/etc/securetcp/checkpoint.key"),
    Option("auditCheckpointEvery", INTEGER,
           "records between checkpoints of the auditLog file (with auditCheckpointKey)",
           default=100, roles=SERVER, bounds=(1, 1000000), example="500"),
    Option("auditCheckpointInterval", SECONDS,
           "seconds from the first record a checkpoint is to cover to that checkpoint "
           "(with auditCheckpointKey)", default=60.0, roles=SERVER, example="10"),
    Option("proxyProtocol", CHOICE,
           "read a PROXY protocol header (below TLS) naming the real client",
           roles=SERVER, choices=("v1", "v2", "any"), defaultNote="off", example="v2"),
    Option("permissive", BOOL,
           "also accept plaintext on this port (migration mode, audited non-compliant)",
           default=False, roles=SERVER, example="true"),
    Option("insecurelyAllowPlaintext", BOOL,
           "let permissive mode run under the nist-800-52r2 profile",
           default=False, roles=SERVER, example="true"),
    Option("reload", CHOICE,
           "watch the certificate, key and CA files (inotify, and polling) and reload them "
           "when they change, keeping open connections",
           roles=SERVER, choices=("watch",), defaultNote="off", example="watch"),
    Option("reloadPoll", SECONDS, "seconds between polls of the files with reload=watch",
           default=5.0, roles=SERVER, example="2"),
    Option("maxConnections", INTEGER,
           "refuse (and audit) connections beyond this many open at once",
           roles=SERVER, bounds=_LIMIT, defaultNote="no limit", example="2000"),
    Option("maxHandshakes", INTEGER,
           "refuse (and audit) connections beyond this many handshakes in progress",
           roles=SERVER, bounds=_LIMIT, defaultNote="no limit", example="200"),
    Option("host", TEXT, "server host name or address (also the first positional argument)",
           roles=CLIENT, defaultNote="required unless `endpoint=`", colons=True, example="lab.example"),
    Option("port", INTEGER, "server port (also the second positional argument)",
           roles=CLIENT, bounds=(1, 65535), defaultNote="required unless `endpoint=`",
           example="6661"),
    Option("timeout", SECONDS, "seconds to wait for the TCP connection",
           default=30.0, roles=CLIENT, example="5"),
    Option("bindAddress", TEXT, "local address to connect from", roles=CLIENT,
           defaultNote="any", colons=True, example="10.0.0.2"),
    Option("endpoint", ENDPOINT,
           "connect over another client endpoint string instead of TCP (unix:, tcp6:, ...)",
           roles=CLIENT, colons=True, example="unix\\:path=/run/pacs.sock"),
    Option("policy", PATH, "TOML policy file; the other arguments override its keys",
           roles=CLIENT, example="device.toml"),
    Option("auditLog", PATH,
           "write the audit records to this file as a hash chain (AuditLogObserver)",
           roles=CLIENT, example="device-audit.jsonl"),
    Option("auditCheckpointKey", PATH,
           "sign chain.checkpoint records of the auditLog file with this Ed25519 private key "
           "(PEM file)", roles=CLIENT, defaultNote="no checkpoints",
           example="device-checkpoint.key"),
    Option("auditCheckpointEvery", INTEGER,
           "records between checkpoints of the auditLog file (with auditCheckpointKey)",
           default=100, roles=CLIENT, bounds=(1, 1000000), example="500"),
    Option("auditCheckpointInterval", SECONDS,
           "seconds from the first record a checkpoint is to cover to that checkpoint "
           "(with auditCheckpointKey)", default=60.0, roles=CLIENT, example="10"),
)

#: The policy options by name.
OPTIONS: Mapping[str, Option] = {o.name: o for o in POLICY_ROWS}

#: The policy options by the field they set.
OPTIONS_BY_FIELD: Mapping[str, Option] = {o.field or "": o for o in POLICY_ROWS}

#: Fields no option sets, and where their value comes from.
DERIVED: Mapping[str, str] = {
    "keys.minRSABits": "the profile's; changed from Python only (KeyStrength)",
    "keys.minECBits": "the profile's; changed from Python only (KeyStrength)",
    "legacy": "true under the legacy profile only",
}


def ownArguments(role: Role) -> Mapping[str, Option]:
    """
    An endpoint's own arguments for C{role}, by name, in order.
    """
    return {o.name: o for o in ENDPOINT_ROWS if role in o.roles}


def endpointArguments(role: Role) -> Mapping[str, Option]:
    """
    Every argument an endpoint string for C{role} takes: its own, then the
    policy options.
    """
    return {**ownArguments(role), **OPTIONS}


def checkValue(option: Option, value: Any) -> None:
    """
    Refuse a value of the wrong type for C{option} (a number where names
    are expected, a list for a single path) before any part looks at it.

    @raise PolicyError: naming the option.
    """
    if value is None:
        return
    kind = option.kind
    if kind.many:
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and
                                      all(kind.item(v) for v in value)):
            return
        raise PolicyError(option.name, value, "expected a string or a list of strings",
                          'write e.g. "A,B" or ["A", "B"]')
    if isinstance(value, kind.accepts) and (bool in kind.accepts or
                                            not isinstance(value, bool)):
        return
    raise PolicyError(option.name, "(hidden)" if kind.hidden else value, kind.expected,
                      kind.fix.format(name=option.name))


def parseBool(name: str, value: Any) -> bool:
    """
    C{true}/C{false} (also C{1}/C{0}, C{yes}/C{no}, C{on}/C{off}).

    @raise PolicyError: naming C{name} for anything else.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise PolicyError(name, value, "not a boolean", "write true or false")
