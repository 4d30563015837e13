"""
Tests for the verify callback that L{securetcp._tls.verify} installs through
the binding (L{securetcp._tls._binding}): the X509 verify code of a
rejection reaches the peer as its alert, each certificate is worked out once
per context, and an exception in the check rejects the certificate instead
of escaping into OpenSSL.

The handshakes run in memory between two C{OpenSSL.SSL.Connection}s: the
server from L{securetcp._tls.context.ServerConnectionCreator}, the client a
plain pyOpenSSL context with a client certificate.
"""

from __future__ import annotations

import base64
from typing import Any, List, Optional, Tuple

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from securetcp._tls import _binding, session, verify
from securetcp._tls.context import ServerConnectionCreator
from securetcp.config import buildPolicy
from securetcp.identity import spkiDigest
from securetcp.materials import loadMaterials
from securetcp.policy import Role, TLSPolicy

from ._pki import TestPKI, sharedPKI


def _pki() -> TestPKI:
    return sharedPKI("verify")


def _certificate(name: str) -> x509.Certificate:
    with open(_pki().path(f"{name}.pem"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


class _Holder:
    """
    Stands in for Twisted's TLS protocol, which carries the connection's
    facts.
    """

    securetcpFacts: Any = None


def _handshake(policy: TLSPolicy, clientName: str, version: int = SSL.TLS1_2_VERSION,
               creator: Optional[ServerConnectionCreator] = None,
               ) -> Tuple[Optional[str], Optional[str], Any]:
    """
    One in-memory handshake of a client presenting C{clientName}'s
    certificate.

    @return: the server's error (or C{None}), the client's error (or
        C{None}), and the server connection's facts.
    """
    pki = _pki()
    creator = creator or _creator(policy)
    holder = _Holder()
    holder.securetcpFacts = session.ConnectionFacts(Role.SERVER)
    server = creator.serverConnectionForTLS(holder)
    clientContext = SSL.Context(SSL.TLS_METHOD)
    clientContext.set_min_proto_version(version)
    clientContext.set_max_proto_version(version)
    clientContext.use_certificate_file(pki.path(f"{clientName}.pem"))
    clientContext.use_privatekey_file(pki.path(f"{clientName}.key"))
    client = SSL.Connection(clientContext, None)
    client.set_connect_state()
    errors: List[Optional[str]] = [None, None]
    for _ in range(20):
        moved = False
        for index, (side, other) in enumerate(((client, server), (server, client))):
            if errors[index] is None:
                try:
                    side.do_handshake()
                except SSL.WantReadError:
                    pass
                except SSL.Error as e:
                    errors[index] = str(e)
            try:
                data = side.bio_read(65536)
            except SSL.WantReadError:
                continue
            other.bio_write(data)
            moved = True
        if not moved:
            break
    return errors[1], errors[0], holder.securetcpFacts


def _creator(policy: TLSPolicy) -> ServerConnectionCreator:
    return ServerConnectionCreator(policy, loadMaterials(policy, Role.SERVER))


class VerifyCallbackTests(SynchronousTestCase):
    def policy(self, **options: Any) -> TLSPolicy:
        pki = _pki()
        return buildPolicy(clientAuth="required", caCerts=pki.path("ca.pem"),
                           certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                           **options)

    def test_goodClient(self) -> None:
        """
        A valid client certificate is accepted, and the verified chain is
        recorded leaf first.
        """
        serverError, clientError, facts = _handshake(self.policy(), "client")
        self.assertIsNone(serverError)
        self.assertIsNone(clientError)
        self.assertEqual(facts.peerLeaf, _certificate("client"))
        self.assertEqual(facts.chain[0], _certificate("client"))
        self.assertEqual(facts.chain[1], _pki().ca)
        self.assertIsNone(facts.verifyCode)

    def test_weakPeerKey(self) -> None:
        """
        A client certificate whose key is below the policy's minimum (P-224
        under the default profile) is rejected during the handshake: the
        facts say why (C{weak_key}), and the client is told by an alert
        (OpenSSL's own check would have accepted it).
        """
        serverError, clientError, facts = _handshake(self.policy(), "client-p224")
        self.assertIsNotNone(serverError)
        self.assertIn("alert", clientError or "")
        self.assertIn("depth 0", facts.weakKey)
        self.assertIn("secp224r1", facts.weakKey)
        reason, detail = session.classifyFailure(SSL.Error([]), _Connection(facts))
        self.assertEqual(reason, "weak_key")
        self.assertIn("depth 0", detail)

    def test_untrustedAlert(self) -> None:
        """
        OpenSSL's own rejection keeps its verify code: an untrusted issuer is
        recorded as code 20 and the client gets the C{unknown ca} alert.
        """
        serverError, clientError, facts = _handshake(self.policy(), "client-other")
        self.assertIsNotNone(serverError)
        self.assertIn("unknown ca", clientError or "")
        self.assertEqual(facts.verifyCode, 20)
        self.assertEqual(facts.verifyDepth, 0)

    def test_identityRefusedInHandshake(self) -> None:
        """
        A client that matches no C{allowPeers} rule is refused in the verify
        step of its leaf: the client gets the C{bad certificate} alert, and
        the facts keep C{identity_not_allowed}, which the failure is
        classified as.
        """
        policy = self.policy(allowPeers="uri:spiffe://hospital.example/ward3/*")
        serverError, clientError, facts = _handshake(policy, "client2")
        self.assertIsNotNone(serverError)
        self.assertIn("bad certificate", clientError or "")
        self.assertEqual(facts.refusal[0], "identity_not_allowed")
        self.assertFalse(facts.authorised)
        self.assertEqual((facts.verifyCode, facts.verifyDepth), (28, 0))
        reason, detail = session.classifyFailure(SSL.Error([]), _Connection(facts))
        self.assertEqual(reason, "identity_not_allowed")
        self.assertIn("PUMP-0099", detail)

    def test_pinOnIssuerInHandshake(self) -> None:
        """
        A pin on the CA's key is matched in the verify step of the CA (above
        the leaf), so the leaf is authorised; a pin matching no certificate
        of the chain is C{pin_mismatch}, with the alert.
        """
        caPin = "sha256/" + base64.b64encode(spkiDigest(_pki().ca)).decode("ascii")
        serverError, _, facts = _handshake(self.policy(pinSPKI=caPin), "client2")
        self.assertIsNone(serverError)
        self.assertTrue(facts.authorised)
        self.assertTrue(facts.pinned)
        leafPin = "sha256/" + base64.b64encode(
            spkiDigest(_certificate("client"))).decode("ascii")
        serverError, clientError, facts = _handshake(self.policy(pinSPKI=leafPin), "client2")
        self.assertIsNotNone(serverError)
        self.assertIn("bad certificate", clientError or "")
        self.assertEqual(facts.refusal[0], "pin_mismatch")

    def test_certificatesWorkedOutOnce(self) -> None:
        """
        The second handshake of the same client through the same context
        converts and checks no certificate again.
        """
        calls: List[Any] = []
        original = verify.SeenCertificate.of

        def counting(certificate: Any, strength: Any) -> Any:
            calls.append(certificate.subject)
            return original(certificate, strength)

        self.patch(verify.SeenCertificate, "of", staticmethod(counting))
        creator = _creator(self.policy())
        self.assertIsNone(_handshake(self.policy(), "client", creator=creator)[0])
        self.assertEqual(len(calls), 2)  # the leaf and the CA
        serverError, _, facts = _handshake(self.policy(), "client", creator=creator)
        self.assertIsNone(serverError)
        self.assertEqual(len(calls), 2)
        self.assertEqual(facts.peerLeaf, _certificate("client"))
        self.assertIsNone(_handshake(self.policy(), "client2", creator=creator)[0])
        self.assertEqual(len(calls), 3)  # only the new leaf

    def test_cacheKeyedByDERDigest(self) -> None:
        """
        Each certificate the verify callback sees is known by the SHA-256 of
        its whole DER (what its cache is keyed by), so a certificate that
        differs in any byte is worked out, and judged, afresh.
        """
        seen: List[Optional[bytes]] = []
        original = _binding.VerifyStep.fingerprint

        def recording(step: Any) -> Optional[bytes]:
            seen.append(original(step))
            return seen[-1]

        self.patch(_binding.VerifyStep, "fingerprint", recording)
        self.assertIsNone(_handshake(self.policy(), "client")[0])
        expected = []
        for name in ("ca", "client"):
            digest = hashes.Hash(hashes.SHA256())
            digest.update(_certificate(name).public_bytes(serialization.Encoding.DER))
            expected.append(digest.finalize())
        self.assertEqual(seen, expected)

    def test_cacheBounded(self) -> None:
        """
        The per-context cache is bounded by L{verify.VERIFY_CACHE_SIZE}:
        when full it starts again, and handshakes still verify correctly.
        """
        self.patch(verify, "VERIFY_CACHE_SIZE", 1)
        creator = _creator(self.policy())
        for name in ("client", "client2", "client", "client-other"):
            serverError = _handshake(self.policy(), name, creator=creator)[0]
            if name == "client-other":
                self.assertIsNotNone(serverError)
            else:
                self.assertIsNone(serverError, name)

    def test_exceptionRejects(self) -> None:
        """
        An exception while checking a certificate rejects it (never accepts,
        never escapes into OpenSSL); it is logged with its traceback and
        audited as C{internal_error}.
        """
        def broken(certificate: Any, strength: Any) -> Any:
            raise RuntimeError("boom")

        self.patch(verify.SeenCertificate, "of", staticmethod(broken))
        logged: List[Any] = []
        self.patch(verify._log, "observer", logged.append)
        serverError, clientError, facts = _handshake(self.policy(), "client")
        self.assertIsNotNone(serverError)
        self.assertIsNotNone(clientError)
        self.assertEqual(facts.verifyCode, 1)
        self.assertIn("internal error in the verify callback", facts.verifyMessage)
        self.assertIn("boom", facts.verifyMessage)
        # audited as securetcp's fault, not the peer's, and logged with the traceback
        reason, detail = session.classifyFailure(SSL.Error([]), _Connection(facts))
        self.assertEqual(reason, "internal_error")
        self.assertIn("boom", detail)
        self.assertEqual(len(logged), 1)
        self.assertIn("boom", str(logged[0]["log_failure"].value))


class _Connection:
    """
    The part of C{OpenSSL.SSL.Connection} that
    L{session.connectionFacts} reads.
    """

    def __init__(self, facts: Any) -> None:
        holder = _Holder()
        holder.securetcpFacts = facts
        self._holder = holder

    def get_app_data(self) -> Any:
        return self._holder


class FallbackTests(SynchronousTestCase):
    """
    Without the binding's pieces (a pyOpenSSL that lacks them), the check is
    installed with C{Context.set_verify}: verification is the same, only
    the peer's alert is generic.
    """

    def setUp(self) -> None:
        def missing() -> Any:
            raise AttributeError("no SSL_CTX_set_verify in this binding")

        self.patch(_binding, "verifyPieces", missing)

    def policy(self) -> TLSPolicy:
        return VerifyCallbackTests.policy(self)  # type: ignore[arg-type]

    def test_sameVerdicts(self) -> None:
        """
        A good client is accepted; an untrusted one and a weak key are
        rejected, with the same facts as through the binding.
        """
        creator = _creator(self.policy())
        self.assertFalse(hasattr(creator.context, "_securetcpVerify"))
        self.assertEqual(_handshake(self.policy(), "client", creator=creator)[:2], (None, None))
        serverError, _, facts = _handshake(self.policy(), "client-other", creator=creator)
        self.assertIsNotNone(serverError)
        self.assertEqual(facts.verifyCode, 20)
        serverError, _, facts = _handshake(self.policy(), "client-p224", creator=creator)
        self.assertIsNotNone(serverError)
        self.assertIn("secp224r1", facts.weakKey)


class NoCurrentCertificateTests(SynchronousTestCase):
    """
    A verify step for which OpenSSL names no current certificate is never
    accepted: securetcp cannot check what it cannot see.
    """

    def test_rejected(self) -> None:
        """
        With the binding's C{X509_STORE_CTX_get_current_cert} answering
        C{NULL}, a client OpenSSL itself would accept is rejected, and the
        facts record the rejection (code 1, unspecified).
        """
        real = _binding.verifyPieces

        def withoutCurrent() -> Any:
            return attrs.evolve(real(), getCurrentCert=lambda store: _binding.ffi.NULL)

        self.patch(_binding, "verifyPieces", withoutCurrent)
        serverError, clientError, facts = _handshake(
            VerifyCallbackTests.policy(self), "client")  # type: ignore[arg-type]
        self.assertIsNotNone(serverError)
        self.assertIsNotNone(clientError)
        self.assertEqual(facts.verifyCode, 1)
        self.assertIsNone(facts.peerLeaf)
