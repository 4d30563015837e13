"""
Tests for the purpose of our own certificate: a server certificate whose
extended key usage (EKU) leaves out serverAuth, or a client certificate
whose EKU leaves out clientAuth, is refused when the materials are loaded
(so C{twistd securetcp} refuses to start, in one line naming the file, and
C{python -m securetcp check} reports it), because every TLS peer refuses it
(C{openssl verify -purpose sslserver}, curl's "unsuitable certificate
purpose").  A certificate without an EKU extension may serve any purpose.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess

import attrs
from cryptography import x509
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._cli import main
from securetcp.compliance.catalogue import BENCHMARKS, FAIL, NOT_APPLICABLE, PASS
from securetcp.compliance.certificates import certificateFacts, judgeCertificatePurpose
from securetcp.config import buildPolicy
from securetcp.errors import CredentialError
from securetcp.materials import loadMaterials
from securetcp.policy import Role

from ._net import escape, freePort
from ._pki import VALID, TestPKI, cachedKey, craftCertificate, sharedPKI, testName
from ._programs import OPENSSL, TWISTD
from ._twistd import START_TIMEOUT, Program, TapProcessMixin

NIST = BENCHMARKS["nist-800-52r2"]


def _policy(pki: TestPKI, name: str) -> object:
    return buildPolicy(certKey=pki.path(f"{name}.pem"), privateKey=pki.path(f"{name}.key"),
                       caCerts=pki.path("ca.pem"))


class LoadPurposeTests(SynchronousTestCase):
    """
    L{loadMaterials} refuses our certificate in a role its EKU excludes.
    """

    def setUp(self) -> None:
        self.pki = sharedPKI()

    def test_serverWithoutServerAuth(self) -> None:
        """
        A certificate whose only EKU is clientAuth cannot be our server
        certificate: a L{CredentialError} names the file, the EKU it has and
        the one it lacks.
        """
        error = self.assertRaises(CredentialError, loadMaterials,
                                  _policy(self.pki, "server-eku"), Role.SERVER)
        self.assertEqual(error.path, self.pki.path("server-eku.pem"))
        self.assertIn("server-eku.pem", str(error))
        self.assertIn("(clientAuth) does not include serverAuth", str(error))

    def test_clientWithoutClientAuth(self) -> None:
        """
        A certificate whose only EKU is serverAuth cannot be our client
        certificate, and the error names the file.
        """
        error = self.assertRaises(CredentialError, loadMaterials,
                                  _policy(self.pki, "client-eku"), Role.CLIENT)
        self.assertEqual(error.path, self.pki.path("client-eku.pem"))
        self.assertIn("does not include clientAuth", str(error))

    def test_rightPurposeLoads(self) -> None:
        """
        A serverAuth certificate loads as a server's, a clientAuth one as a
        client's (each the role its EKU names).
        """
        server = loadMaterials(_policy(self.pki, "server"), Role.SERVER)
        client = loadMaterials(_policy(self.pki, "client"), Role.CLIENT)
        self.assertEqual((server.leaf is not None, client.leaf is not None), (True, True))

    def test_noEKUServesAnyPurpose(self) -> None:
        """
        A certificate without an EKU extension loads in both roles.
        """
        pki = TestPKI.create(os.path.abspath(self.mktemp()))
        key = cachedKey("ec", 256, "no-eku")
        cert = craftCertificate(testName("localhost"), key, pki.authority, VALID)
        pki.writeCredential("no-eku", cert, key)
        for role in (Role.SERVER, Role.CLIENT):
            self.assertIsNotNone(loadMaterials(_policy(pki, "no-eku"), role).leaf)

    def test_judge(self) -> None:
        """
        The checklist's C{certificate.purpose} item fails a certificate
        whose EKU leaves out its role's purpose, passes one that has it or
        has no EKU, and does not apply without a certificate.
        """
        with open(self.pki.path("server-eku.pem"), "rb") as f:
            wrong = certificateFacts(x509.load_pem_x509_certificate(f.read()))
        self.assertEqual(judgeCertificatePurpose(NIST, wrong, "server").status, FAIL)
        self.assertIn("lacks serverAuth", judgeCertificatePurpose(NIST, wrong, "server").reason)
        self.assertEqual(judgeCertificatePurpose(NIST, wrong, "client").status, PASS)
        self.assertEqual(judgeCertificatePurpose(
            NIST, attrs.evolve(wrong, extendedKeyUsage=None), "server").status, PASS)
        self.assertEqual(judgeCertificatePurpose(NIST, None, "server").status, NOT_APPLICABLE)

    def test_checkRefuses(self) -> None:
        """
        C{python -m securetcp check} on an endpoint with a clientAuth-only
        server certificate fails (status 1, a configuration error), naming
        the file and the missing serverAuth; with the right certificate the
        checklist shows the purpose item passing.
        """
        def check(name: str) -> tuple[int, str]:
            out, err = io.StringIO(), io.StringIO()
            target = (f"mtls:6661:certKey={escape(self.pki.path(name + '.pem'))}"
                      f":privateKey={escape(self.pki.path(name + '.key'))}"
                      f":caCerts={escape(self.pki.path('ca.pem'))}")
            with contextlib.redirect_stderr(err):
                status = main(["check", target], out)
            return status, out.getvalue() + err.getvalue()

        status, text = check("server-eku")
        self.assertEqual(status, 1, text)
        self.assertIn("server-eku.pem", text)
        self.assertIn("does not include serverAuth", text)
        status, text = check("server")
        self.assertIn("includes serverAuth", text)


class PeersRefuseTests(SynchronousTestCase):
    """
    What the refusal prevents: real TLS peers refuse such a certificate.
    """

    def test_opensslVerifyRefuses(self) -> None:
        """
        C{openssl verify -purpose sslserver} refuses the clientAuth-only
        certificate and accepts the serverAuth one; C{-purpose sslclient}
        refuses the serverAuth-only client certificate.
        """
        if OPENSSL is None:
            raise SkipTest("the openssl binary is not installed")
        pki = sharedPKI()

        def verify(purpose: str, name: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([OPENSSL, "verify", "-purpose", purpose, "-CAfile",
                                   pki.path("ca.pem"), pki.path(f"{name}.pem")],
                                  capture_output=True, timeout=30)

        refused = verify("sslserver", "server-eku")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn(b"unsuitable certificate purpose", refused.stdout + refused.stderr)
        self.assertEqual(verify("sslserver", "server").returncode, 0)
        self.assertNotEqual(verify("sslclient", "client-eku").returncode, 0)
        self.assertEqual(verify("sslclient", "client").returncode, 0)


class TwistdRefusesTests(TapProcessMixin, SynchronousTestCase):
    """
    C{twistd securetcp} refuses to start with a server certificate that is
    not for servers.
    """

    def test_oneLine(self) -> None:
        """
        twistd exits non-zero at start, never listening, and the first line
        of its output is the problem naming the certificate file.
        """
        assert TWISTD is not None
        port = freePort()
        listen = ["--listen", f"mtls:{port}:interface=127.0.0.1"
                  f":certKey={escape(self.pki.path('server-eku.pem'))}"
                  f":privateKey={escape(self.pki.path('server-eku.key'))}"
                  f":caCerts={escape(self.pki.path('ca.pem'))}"]
        program = Program(self, [TWISTD, "-n", "--pidfile=", "securetcp", "terminate"]
                          + listen + ["--backend", "tcp:127.0.0.1:1"], "twistd-eku")
        self.assertEqual(program.waitExit(START_TIMEOUT), 1, program.describe())
        output = (program.err + program.out).decode()
        first = output.splitlines()[0]
        self.assertIn("server-eku.pem", first)
        self.assertIn("does not include serverAuth", first)
        self.assertNotIn("starting on", output)
        self.assertNotIn("Options:", output)

