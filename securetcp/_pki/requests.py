# -*- test-case-name: tests.test_pki -*-
"""
Certificate signing requests (CSRs): read one, check that it is signed by
the key it asks to certify and that the key is one securetcp accepts, and
read the names it asks for, each with an error that names the file.

    request = readRequest("pump-0042.csr")          # PEM or DER
    key = requestKey("pump-0042.csr", request)       # signature and key checked
    subject, sans = requestNames("pump-0042.csr", request, "client")

A request carries its own key, made on the device, which never leaves it.
The names a request asks for are the device's claim: the CA takes them only
when the operator says so (C{pki sign-csr --accept-csr-names}); otherwise
the names come from the command line, as for C{issue-*}.  Nothing else a
request asks for (basic constraints, key usages, other extensions) is ever
copied: those are the CA's to decide.
"""

from __future__ import annotations

from typing import Any, List, Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from securetcp._pki.authority import PublicKey, checkPublicKey
from securetcp._pki.names import Names, checkDNSName
from securetcp.errors import PKIError

#: The kinds of subject alternative name a request may ask for.
_SAN_KINDS = (x509.DNSName, x509.IPAddress, x509.UniformResourceIdentifier)


def readRequest(path: str) -> x509.CertificateSigningRequest:
    """
    The certificate signing request (PEM or DER) in C{path}.

    @raise PKIError: if it cannot be read or holds no request.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PKIError(path, f"cannot be read: {e.strerror}",
                       "give the CSR file the device made (openssl req -new ...)") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise PKIError(path, "is not a certificate signing request (PEM or DER)",
                       "make one with openssl req -new -key KEY -out FILE.csr") from None


def requestKey(path: str, request: x509.CertificateSigningRequest) -> PublicKey:
    """
    The public key C{request} asks to certify, once its signature shows the
    requester holds the private key, and if the key is strong enough.

    @raise PKIError: naming C{path}, for a bad signature or a key that
        L{checkPublicKey} refuses.
    """
    try:
        valid = request.is_signature_valid
        key = request.public_key()
    except (ValueError, TypeError) as e:  # an unsupported key or signature algorithm
        raise PKIError(path, f"cannot be checked: {e}",
                       "make the request with an ECDSA P-256 or RSA key") from None
    if not valid:
        raise PKIError(path, "its signature does not verify: it was not signed by the key "
                       "it asks to certify, or it was altered",
                       "make the request again on the device, and copy it unchanged")
    try:
        return checkPublicKey(key)
    except PKIError as e:
        raise PKIError(path, f"asks to certify an {e.path}, which {e.problem}",
                       e.fix) from None


def _requestedSANs(path: str, request: x509.CertificateSigningRequest
                   ) -> List[x509.GeneralName]:
    try:
        extension = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    sans: List[x509.GeneralName] = []
    for name in extension.value:
        if not isinstance(name, _SAN_KINDS):
            raise PKIError(path, f"asks for a {type(name).__name__} subject alternative name, "
                           "which securetcp does not use",
                           "give the names on the command line instead of "
                           "--accept-csr-names")
        if isinstance(name, x509.DNSName):
            checkDNSName(path, name.value, "its subjectAltName DNS")
        sans.append(name)
    return sans


def requestNames(path: str, request: x509.CertificateSigningRequest, kind: str) -> Names:
    """
    The names C{request} asks for, for a certificate of C{kind}
    (C{"server"}, C{"client"} or C{"node"}): its subject, as it is, and its
    DNS, IP and URI subject alternative names.

    @raise PKIError: naming C{path}, for a name of another kind, a
        malformed DNS name, a server or node request without a DNS name or
        IP address, or a request with neither a subject common name nor a
        subject alternative name.
    """
    sans = _requestedSANs(path, request)
    subject = request.subject
    if kind in ("server", "node") and not any(
            isinstance(n, (x509.DNSName, x509.IPAddress)) for n in sans):
        raise PKIError(path, f"asks for no DNS name or IP address, which a {kind} "
                       "certificate needs (peers check them)",
                       "give --dns/--ip on the command line instead of --accept-csr-names")
    if not sans and not subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise PKIError(path, "asks for no name (no subject common name, no subjectAltName)",
                       "give the names on the command line instead of --accept-csr-names")
    return subject, sans


def refuseGivenNames(path: str, given: Mapping[str, Any]) -> None:
    """
    Refuse names C{given} on the command line (by option) along with the
    request's own, taken by C{--accept-csr-names}.

    @raise PKIError: naming the request and the options given.
    """
    named = [option for option, value in given.items() if value]
    if named:
        raise PKIError(path, "--accept-csr-names takes the request's names, and "
                       f"{', '.join(named)} was given too",
                       "give the names on the command line or --accept-csr-names, not both")
