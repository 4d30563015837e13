# -*- test-case-name: tests -*-
"""
securetcp: hardened TLS and mutual TLS for any Twisted TCP service, under a
written policy, with an audit trail.

    from securetcp import TLSPolicy, buildPolicy, serverEndpoint

    policy = buildPolicy(certKey="server.pem", privateKey="server.key",
                         caCerts="devices-ca.pem", clientAuth="required")
    endpoint = serverEndpoint(reactor, TCP4ServerEndpoint(reactor, 6661),
                              policy, mutual=True)

or, from any Twisted program that takes endpoint strings::

    mtls:6661:certKey=server.pem:privateKey=server.key:caCerts=devices-ca.pem
"""

from securetcp._catalogue import TLSVersion
from securetcp.audit import (
    AUDIT_NAMESPACE,
    EVENTS,
    REJECTION_REASONS,
    AuditEmitter,
    AuditLogObserver,
    atnaMessage,
    auditLogObserver,
    verifyCollector,
    verifyFiles,
)
from securetcp.auditexport import AuditSyslogExport, auditSyslogExport
from securetcp.binding import IdentityBinding, IIdentityBinding
from securetcp.config import POLICY_OPTIONS, buildPolicy, loadPolicyFile
from securetcp.endpoints import (
    Limits,
    SecureClientEndpoint,
    SecureServerEndpoint,
    clientEndpoint,
    serverEndpoint,
)
from securetcp.errors import (
    AuditExportError,
    AuditLogError,
    CredentialError,
    EndpointArgumentError,
    HandshakeRejected,
    PKIError,
    PolicyError,
    PolicyFileError,
    SecureTCPError,
    ServiceConfigError,
    UnsupportedByOpenSSLError,
)
from securetcp.identity import IdentityPattern, PeerIdentity, parseIdentityPattern
from securetcp.policy import (
    Ciphers,
    ClientAuth,
    Credentials,
    Groups,
    KeyStrength,
    LegacyProfileWarning,
    PeerVerification,
    Revocation,
    Role,
    TLSPolicy,
    TrustAnchors,
    Versions,
)
from securetcp.profiles import DEFAULT_PROFILE, PROFILES, Profile

__version__ = "0.1.0"

__all__ = [
    "AUDIT_NAMESPACE",
    "AuditEmitter",
    "AuditExportError",
    "AuditLogError",
    "AuditLogObserver",
    "AuditSyslogExport",
    "Ciphers",
    "ClientAuth",
    "CredentialError",
    "Credentials",
    "DEFAULT_PROFILE",
    "EVENTS",
    "EndpointArgumentError",
    "Groups",
    "HandshakeRejected",
    "IIdentityBinding",
    "IdentityBinding",
    "IdentityPattern",
    "KeyStrength",
    "LegacyProfileWarning",
    "Limits",
    "PKIError",
    "POLICY_OPTIONS",
    "PROFILES",
    "PeerIdentity",
    "PeerVerification",
    "PolicyError",
    "PolicyFileError",
    "Profile",
    "REJECTION_REASONS",
    "Revocation",
    "Role",
    "SecureClientEndpoint",
    "SecureServerEndpoint",
    "SecureTCPError",
    "ServiceConfigError",
    "TLSPolicy",
    "TLSVersion",
    "TrustAnchors",
    "UnsupportedByOpenSSLError",
    "Versions",
    "atnaMessage",
    "auditLogObserver",
    "auditSyslogExport",
    "buildPolicy",
    "clientEndpoint",
    "loadPolicyFile",
    "parseIdentityPattern",
    "serverEndpoint",
    "verifyCollector",
    "verifyFiles",
]
