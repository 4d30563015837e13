# -*- test-case-name: tests.test_config -*-
"""
Policy options -> L{TLSPolicy}: one validating path for endpoint-string
arguments, TOML policy files and flat Python keyword arguments.

The option names are the same everywhere::

    policy = buildPolicy(profile="nist-800-52r2", caCerts="ca.pem",
                         certKey="server.pem", privateKey="server.key",
                         clientAuth="required")
    policy = loadPolicyFile("hl7-inbound.toml")

A policy file is flat TOML with the same keys; lists may be TOML arrays::

    name = "hl7-inbound"
    profile = "nist-800-52r2"
    certKey = "server.pem"
    privateKey = "server.key"
    caCerts = "devices-ca.pem"
    clientAuth = "required"
    allowPeers = ["uri:spiffe://hospital.example/ward3/*"]

Relative paths in a policy file are taken from the file's directory.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import attrs

from securetcp.errors import PolicyError, PolicyFileError
from securetcp.policy import (
    Ciphers,
    Credentials,
    Groups,
    KeyStrength,
    PeerVerification,
    Revocation,
    TLSPolicy,
    TrustAnchors,
    Versions,
)

#: Every policy option, with a one-line description (the docs reference is
#: generated from the same names and checked by a test).
POLICY_OPTIONS: Mapping[str, str] = {
    "name": "label of the policy in the audit log",
    "profile": "named profile to start from (default nist-800-52r2)",
    "minVersion": "lowest protocol version (TLSv1.2, TLSv1.3)",
    "maxVersion": "highest protocol version",
    "ciphers": "TLS 1.2 cipher suites, OpenSSL names, comma-separated",
    "ciphersuites": "TLS 1.3 suites, comma-separated",
    "groups": "key-exchange groups in order; prefix ? for 'only if available'",
    "caCerts": "PEM file of CA certificates that vouch for peers",
    "caCertsDir": "directory of CA certificate files",
    "systemCAs": "also trust the operating system's CA store (true/false)",
    "certKey": "PEM file with our certificate (and chain)",
    "privateKey": "PEM file with our private key",
    "extraCertChain": "PEM file with intermediate certificates to send",
    "pkcs12": "PKCS#12 bundle with our certificate and key",
    "passphrase": "where the key's passphrase comes from: env:NAME, file:PATH, pass:TEXT",
    "dhParameters": "PEM DH parameters file, for DHE-RSA-* TLS 1.2 suites",
    "clientAuth": "server: none, optional or required client certificate",
    "hostname": "client: the name or IP the server's certificate must match",
    "allowPeers": "identity allow-list: dns:, ip:, uri:, email:, cn: rules",
    "pinSPKI": "SHA-256 SPKI pins (sha256/BASE64 or hex)",
    "handshakeTimeout": "seconds a handshake may take (default 10)",
    "alpn": "ALPN protocol names in preference order",
    "crl": "CRL files (PEM or DER), comma-separated; enables revocation checking",
    "crlDir": "directories of CRL files, comma-separated",
    "revocation": "hard (default: reject when status is unknown) or soft (accept, audit a warning)",
    "revocationScope": "leaf (default) or chain: which certificates of the peer's chain to check",
    "crlReload": "seconds between checks of the CRL files for changes (default 60; 0: off)",
    "crlEnforceLive": "close connected peers that a reloaded CRL revokes (true/false)",
    "ocsp": "off (default), prefer or require: ask the peer certificate's OCSP responder",
    "ocspResponder": "OCSP responder URL overriding the certificates' AIA",
    "ocspTimeout": "seconds to wait for an OCSP responder (default 5)",
    "ocspNonce": "send a nonce in OCSP requests and check it (default true)",
    "staple": "server: fetch our own OCSP response and staple it (true/false)",
    "requireStaple": "client: reject a server without a valid stapled OCSP response (true/false)",
}

_PATH_OPTIONS = ("caCerts", "caCertsDir", "certKey", "privateKey",
                 "extraCertChain", "pkcs12", "dhParameters")
_PATH_LIST_OPTIONS = ("crl", "crlDir")
#: The options that may be TOML arrays in a policy file.
_LIST_OPTIONS = ("ciphers", "ciphersuites", "groups", "allowPeers", "pinSPKI", "alpn",
                 "crl", "crlDir")


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise PolicyError(key, value, "not a boolean", "write true or false")


def _groupsOption(value: Any) -> Groups:
    if isinstance(value, str):
        items = [v for v in value.replace(":", ",").split(",") if v.strip()]
    else:
        items = [str(v) for v in value]
    required = tuple(v.strip() for v in items if not v.strip().startswith("?"))
    optional = tuple(v.strip()[1:] for v in items if v.strip().startswith("?"))
    return Groups(required, optional)


_NUMBER_OPTIONS = ("handshakeTimeout", "crlReload", "ocspTimeout")
_BOOL_OPTIONS = ("systemCAs", "crlEnforceLive", "ocspNonce", "staple", "requireStaple")


def _checkType(key: str, value: Any) -> None:
    """
    Refuse a value of the wrong type for C{key} (e.g. a number where names
    are expected) with a L{PolicyError}, before any part looks at it.
    """
    if value is None:
        return
    if key in _LIST_OPTIONS:
        if isinstance(value, str):
            return
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bytes)) or
                                                    (key == "allowPeers" and not
                                                     isinstance(v, (int, float, bool)))
                                                    for v in value):
            return
        raise PolicyError(key, value, "expected a string or a list of strings",
                          'write e.g. "A,B" or ["A", "B"]')
    if key in _NUMBER_OPTIONS:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise PolicyError(key, value, "expected a number of seconds", "write e.g. 10")
        return
    if key in _BOOL_OPTIONS:
        if not isinstance(value, (bool, str)):
            raise PolicyError(key, value, "expected true or false", "write true or false")
        return
    if key in ("minVersion", "maxVersion") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return  # 1.3 means TLSv1.3
    if not isinstance(value, str) and key in POLICY_OPTIONS:
        if key == "passphrase":
            raise PolicyError(key, "(hidden)", "expected a string",
                              "write env:NAME, file:PATH or pass:TEXT")
        raise PolicyError(key, value, "expected a string", f'write {key} = "..."')


def buildPolicy(**options: Any) -> TLSPolicy:
    """
    Build a policy from flat options (the names of L{POLICY_OPTIONS}).

    @raise PolicyError: for an unknown option or an invalid value.
    """
    return policyFromOptions(options)


def policyFromOptions(
    options: Mapping[str, Any],
    base: Optional[TLSPolicy] = None,
    baseDir: Optional[str] = None,
) -> TLSPolicy:
    """
    Apply C{options} on top of C{base} (or of the options' C{profile}).

    @param baseDir: directory relative paths are resolved against.
    @raise PolicyError: for an unknown option or an invalid value.
    """
    unknown = sorted(set(options) - set(POLICY_OPTIONS))
    if unknown:
        raise PolicyError(
            unknown[0], options[unknown[0]], "unknown policy option",
            "valid options: " + ", ".join(POLICY_OPTIONS),
        )
    opts: Dict[str, Any] = dict(options)
    for key, value in opts.items():
        _checkType(key, value)
    if baseDir is not None:
        for key in _PATH_OPTIONS:
            if opts.get(key) and not os.path.isabs(str(opts[key])):
                opts[key] = os.path.join(baseDir, str(opts[key]))
        for key in _PATH_LIST_OPTIONS:
            if opts.get(key):
                items = opts[key]
                if isinstance(items, str):
                    items = [i for i in items.split(",") if i.strip()]
                opts[key] = [i if os.path.isabs(str(i)) else os.path.join(baseDir, str(i))
                             for i in items]
        if str(opts.get("passphrase", "")).startswith("file:"):
            path = opts["passphrase"][5:]
            if not os.path.isabs(path):
                opts["passphrase"] = "file:" + os.path.join(baseDir, path)

    if "profile" in opts or base is None:
        policy = TLSPolicy.fromProfile(opts.get("profile", "nist-800-52r2"))
        if base is not None:
            # keep what the base said beyond the profile's content
            policy = attrs.evolve(
                policy, name=base.name, trust=base.trust,
                credentials=base.credentials, peer=base.peer, revocation=base.revocation,
                handshakeTimeout=base.handshakeTimeout, alpn=base.alpn,
            )
    else:
        policy = base

    changes: Dict[str, Any] = {}
    if "name" in opts:
        changes["name"] = str(opts["name"])
    if "minVersion" in opts or "maxVersion" in opts:
        changes["versions"] = Versions(
            opts.get("minVersion", policy.versions.minimum),
            opts.get("maxVersion", policy.versions.maximum),
        )
    if "ciphers" in opts or "ciphersuites" in opts:
        changes["ciphers"] = Ciphers(
            opts.get("ciphers", policy.ciphers.tls12),
            opts.get("ciphersuites", policy.ciphers.tls13),
        )
    if "groups" in opts:
        changes["groups"] = _groupsOption(opts["groups"])
    trustKeys = ("caCerts", "caCertsDir", "systemCAs")
    if any(k in opts for k in trustKeys):
        changes["trust"] = TrustAnchors(
            caFile=opts.get("caCerts", policy.trust.caFile),
            caDir=opts.get("caCertsDir", policy.trust.caDir),
            system=_bool("systemCAs", opts.get("systemCAs", policy.trust.system)),
        )
    credKeys = {"certKey": "certificate", "privateKey": "privateKey",
                "extraCertChain": "extraChain", "pkcs12": "pkcs12",
                "passphrase": "passphrase", "dhParameters": "dhParameters"}
    if any(k in opts for k in credKeys):
        current = attrs.asdict(policy.credentials)
        if "pkcs12" in opts:
            current["certificate"] = current["privateKey"] = None
        if "certKey" in opts or "privateKey" in opts:
            current["pkcs12"] = None
        for key, field in credKeys.items():
            if key in opts:
                current[field] = opts[key]
        changes["credentials"] = Credentials(**current)
    peerKeys = {"clientAuth": "clientAuth", "hostname": "hostname",
                "allowPeers": "allow", "pinSPKI": "pins"}
    if any(k in opts for k in peerKeys):
        peer = policy.peer
        changes["peer"] = PeerVerification(
            clientAuth=opts.get("clientAuth", peer.clientAuth),
            hostname=opts.get("hostname", peer.hostname),
            allow=opts.get("allowPeers", peer.allow),
            pins=opts.get("pinSPKI", peer.pins),
        )
    revocationKeys = ("crl", "crlDir", "revocation", "revocationScope", "crlReload",
                      "crlEnforceLive", "ocsp", "ocspResponder", "ocspTimeout", "ocspNonce",
                      "staple", "requireStaple")
    if any(k in opts for k in revocationKeys):
        revocation = policy.revocation
        changes["revocation"] = Revocation(
            crlFiles=opts.get("crl", revocation.crlFiles),
            crlDirs=opts.get("crlDir", revocation.crlDirs),
            mode=opts.get("revocation", revocation.mode),
            scope=opts.get("revocationScope", revocation.scope),
            reloadInterval=opts.get("crlReload", revocation.reloadInterval),
            enforceOnLive=_bool("crlEnforceLive",
                                opts.get("crlEnforceLive", revocation.enforceOnLive)),
            ocsp=opts.get("ocsp", revocation.ocsp),
            ocspResponder=opts.get("ocspResponder", revocation.ocspResponder),
            ocspTimeout=opts.get("ocspTimeout", revocation.ocspTimeout),
            ocspNonce=_bool("ocspNonce", opts.get("ocspNonce", revocation.ocspNonce)),
            staple=_bool("staple", opts.get("staple", revocation.staple)),
            requireStaple=_bool("requireStaple",
                                opts.get("requireStaple", revocation.requireStaple)),
        )
    if "handshakeTimeout" in opts:
        changes["handshakeTimeout"] = opts["handshakeTimeout"]
    if "alpn" in opts:
        changes["alpn"] = opts["alpn"]
    if "keys" in changes:  # pragma: no cover
        changes["keys"] = KeyStrength(**changes["keys"])
    return attrs.evolve(policy, **changes) if changes else policy


def _checkTOMLValue(path: str, key: str, value: Any) -> None:
    if isinstance(value, dict):
        raise PolicyFileError(path, key, None, "tables are not policy options",
                              "write flat keys (see docs/policy.md)")
    if isinstance(value, list):
        if key in POLICY_OPTIONS and key not in _LIST_OPTIONS:
            raise PolicyFileError(path, key, value, "takes one value, not a list",
                                  "write a single string")
        for item in value:
            if not isinstance(item, str):
                raise PolicyFileError(path, key, value, "lists may hold only strings",
                                      "quote every item")
    elif not isinstance(value, (str, int, float, bool)):
        raise PolicyFileError(path, key, value, "unsupported value type",
                              "use a string, number, boolean or list of strings")


def readPolicyFile(path: str) -> Tuple[Dict[str, Any], str]:
    """
    Read a TOML policy file's options.

    @return: the options and the directory paths in them are relative to.
    @raise PolicyFileError: naming the file, for a missing, unreadable or
        malformed file.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise PolicyFileError(path, None, None, "policy file does not exist",
                              "check the path given to policy=") from None
    except IsADirectoryError:
        raise PolicyFileError(path, None, None, "policy path is a directory",
                              "give the .toml file itself") from None
    except OSError as e:
        raise PolicyFileError(path, None, None, f"cannot read: {e.strerror}",
                              "fix the file's permissions") from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyFileError(path, None, None, f"not valid TOML: {e}",
                              "fix the syntax at the position shown") from None
    except UnicodeDecodeError as e:
        raise PolicyFileError(path, None, None, f"not UTF-8 text: {e.reason} at byte {e.start}",
                              "save the policy file as UTF-8") from None
    except ValueError as e:  # e.g. an embedded NUL in the path
        raise PolicyFileError(path, None, None, f"not a usable path: {e}",
                              "check the path given to policy=") from None
    for key, value in data.items():
        _checkTOMLValue(path, key, value)
    return data, os.path.dirname(os.path.abspath(path))


def loadPolicyFile(path: str, base: Optional[TLSPolicy] = None) -> TLSPolicy:
    """
    Build a policy from a TOML policy file.

    @raise PolicyFileError: naming the file, the key and the problem.
    """
    options, baseDir = readPolicyFile(path)
    return _inFile(path, lambda: policyFromOptions(options, base, baseDir))


def _inFile(path: str, build: Callable[[], TLSPolicy]) -> TLSPolicy:
    try:
        return build()
    except PolicyFileError:
        raise
    except PolicyError as e:
        raise PolicyFileError(path, e.field, e.value, e.problem, e.fix) from None
