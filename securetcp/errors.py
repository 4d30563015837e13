# -*- test-case-name: tests.test_policy -*-
"""
Every error a securetcp user can catch.

Configuration errors subclass L{ValueError} and carry the data they are
about, so a caller can report them precisely::

    try:
        policy = buildPolicy(profile="nist-800-52r3")
    except PolicyError as e:
        print(e.field, e.value, e.fix)

Connection-time failures on the client side (the server could not be
verified or authorised) are L{HandshakeRejected}, which carries the
machine-readable reason also written to the audit log.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


class SecureTCPError(Exception):
    """
    Base class of every securetcp error.
    """


class PolicyError(SecureTCPError, ValueError):
    """
    A policy value or combination of values is invalid.

    @ivar field: the policy field or option name the problem is about.
    @ivar value: the offending value.
    @ivar problem: what is wrong with it.
    @ivar fix: how to correct it.
    """

    def __init__(
        self, field: str, value: Any, problem: str, fix: str = ""
    ) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        message = f"{self.field}={self.value!r}: {self.problem}"
        if self.fix:
            message += f" (fix: {self.fix})"
        return message


class CredentialError(PolicyError):
    """
    A certificate, key, CA or PKCS#12 file cannot be used.

    @ivar path: the file (or directory) the problem is about.
    """

    def __init__(
        self, field: str, path: str, problem: str, fix: str = ""
    ) -> None:
        self.path = path
        super().__init__(field, path, problem, fix)


class UnsupportedByOpenSSLError(PolicyError):
    """
    The policy asks for something the linked OpenSSL (or its Python binding)
    cannot do.  Raised rather than silently ignoring the setting.
    """


class EndpointArgumentError(PolicyError):
    """
    An endpoint string (or one of its arguments) is invalid.

    @ivar argument: the argument name, or C{None} when the string as a whole
        is malformed.
    @ivar valid: the valid argument names, when the problem is an unknown one.
    @ivar cause: the underlying L{PolicyError} (for example a
        L{CredentialError}), when there is one.
    @ivar path: the file the problem is about, when there is one.
    """

    def __init__(
        self,
        argument: Optional[str],
        value: Any,
        problem: str,
        fix: str = "",
        valid: Sequence[str] = (),
    ) -> None:
        self.argument = argument
        self.valid = tuple(valid)
        self.cause: Optional[PolicyError] = None
        self.path: Optional[str] = None
        super().__init__(argument or "endpoint", value, problem, fix)


class PolicyFileError(PolicyError):
    """
    A TOML policy file is invalid.

    @ivar path: the policy file.
    @ivar key: the key the problem is about, or C{None} for the file itself.
    """

    def __init__(
        self,
        path: str,
        key: Optional[str],
        value: Any,
        problem: str,
        fix: str = "",
    ) -> None:
        self.path = path
        self.key = key
        super().__init__(key or "policy", value, problem, fix)

    def _message(self) -> str:
        where = f"{self.path}"
        if self.key:
            where += f": key {self.key!r}"
        message = f"{where}: {self.problem}"
        if self.value is not None and self.key:
            message += f" (got {self.value!r})"
        if self.fix:
            message += f" (fix: {self.fix})"
        return message


class _PathProblem(SecureTCPError, ValueError):
    """
    A problem with a file or directory: C{path}, C{problem}, C{fix}.
    """

    _prefix = "{path}: "

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        message = self._prefix.format(path=path) + problem
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)


class AuditLogError(_PathProblem):
    """
    An audit log file cannot be used (missing directory, unreadable, a last
    record that does not verify, an invalid option).

    @ivar path: the audit file.
    @ivar problem: what is wrong.
    @ivar fix: how to correct it.
    """

    _prefix = "audit log {path}: "


class PKIError(_PathProblem):
    """
    A C{python -m securetcp pki} operation cannot be done (no CA in the
    directory, a CA already there, a certificate this CA did not issue, a
    file that would be overwritten, an invalid argument).

    @ivar path: the CA directory or file the problem is about.
    @ivar problem: what is wrong.
    @ivar fix: how to correct it.
    """


class ServiceConfigError(SecureTCPError, ValueError):
    """
    A C{twistd securetcp --config} file is invalid.

    @ivar path: the configuration file.
    @ivar listener: which listener (C{"listener 2 ('hl7')"}), or C{None}
        for the file's top level.
    @ivar key: the key the problem is about, or C{None}.
    @ivar problem: what is wrong.
    @ivar fix: how to correct it.
    """

    def __init__(self, path: str, listener: Optional[str], key: Optional[str],
                 problem: str, fix: str = "") -> None:
        self.path = path
        self.listener = listener
        self.key = key
        self.problem = problem
        self.fix = fix
        where = [path]
        if listener:
            where.append(listener)
        if key:
            where.append(f"key {key!r}")
        message = ": ".join(where) + f": {problem}"
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)


class AuditExportError(SecureTCPError, ValueError):
    """
    The audit export cannot be configured or started: a bad collector
    address, a missing client policy file, a queue directory that cannot
    be written, an invalid node id or bound.

    @ivar argument: the option or argument the problem is about
        (C{--audit-syslog}, C{audit-syslog-queue}, C{node}, ...).
    @ivar value: the offending value.
    @ivar problem: what is wrong.
    @ivar fix: how to correct it.
    """

    def __init__(self, argument: str, value: Any, problem: str, fix: str = "") -> None:
        self.argument = argument
        self.value = value
        self.problem = problem
        self.fix = fix
        message = f"{argument} {value!r}: {problem}"
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)


class HandshakeRejected(SecureTCPError):
    """
    A TLS connection was refused by securetcp's checks or by the peer.

    @ivar reason: the machine-readable reason, one of
        L{securetcp.audit.REJECTION_REASONS}.
    @ivar detail: a human-readable explanation.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


__all__ = [
    "SecureTCPError",
    "PolicyError",
    "CredentialError",
    "UnsupportedByOpenSSLError",
    "EndpointArgumentError",
    "PolicyFileError",
    "HandshakeRejected",
    "AuditLogError",
    "AuditExportError",
    "PKIError",
    "ServiceConfigError",
]
