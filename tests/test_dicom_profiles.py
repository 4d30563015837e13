"""
The DICOM PS3.15 profiles (C{dicom-bcp195-rfc8996}, C{...-modified})
against dcmtk on both sides, over loopback: our C{terminate} in front of a
plain C{storescp}, with C{storescu +tls} as the client; and our
C{originate} to C{storescp +tls}, with a plain C{storescu} behind it.  A
dcmtk peer limited to what a profile forbids is refused and audited.

dcmtk 3.6.8 and later have the profiles themselves (C{--profile-8996},
C{--profile-8996-mod}); with an older dcmtk the tests use its closest ones
(L{dcmtkProfile}) and say so in their output.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any, Dict, List, Sequence, Tuple

from twisted.trial.unittest import SynchronousTestCase

from ._dcmtk import STORESCP, STORESCU, dicomFile, needDcmtk, storescuHelp
from ._net import escape, freePort
from ._twistd import (
    PEER_TIMEOUT,
    START_TIMEOUT,
    Program,
    TapProcessMixin,
    auditEvents,
    blockUntil,
)

B12 = "dicom-bcp195-rfc8996"
B13 = "dicom-bcp195-rfc8996-modified"
#: How long one dcmtk transfer may take.
TRANSFER_TIMEOUT = 30.0


def dcmtkProfile(profile: str, tls12: bool = False) -> List[str]:
    """
    The dcmtk options closest to C{profile}: C{--profile-8996} (B.12) or
    C{--profile-8996-mod} (B.13) where the installed dcmtk has them (3.6.8
    and later); otherwise (dcmtk 3.6.7 and older) C{--profile-bcp195-nd}
    (TLS 1.2 and 1.3, never lower; its TLS 1.2 suites are ECDHE-RSA and
    DHE-RSA AES-GCM).  With C{tls12}, C{--profile-bcp195-ex} in every
    version (TLS 1.2 only, ECDHE-ECDSA, ECDHE-RSA and DHE-RSA AES-GCM): dcmtk
    has no other way to keep to TLS 1.2, and it negotiates TLS 1.2 with an
    ECDSA certificate.
    """
    help = storescuHelp()
    if tls12:
        return ["--profile-bcp195-ex"]
    if profile == B13 and "--profile-8996-mod" in help:
        return ["--profile-8996-mod"]
    if profile in (B12, B13) and "--profile-8996" in help:
        return ["--profile-8996"]
    return ["--profile-bcp195-nd"]


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class DcmtkProfileMixin(TapProcessMixin):
    """
    dcmtk's storescp and storescu, with the test PKI, next to
    C{twistd securetcp terminate} and C{originate}.
    """

    def setUp(self) -> None:
        needDcmtk()
        super().setUp()
        self.image = dicomFile(os.path.join(self.workdir, "images"))

    def tlsOptions(self, name: str) -> List[str]:
        """
        dcmtk's options to use C{name}'s key and certificate, trusting the
        test CA (and requiring the peer's certificate: its default).
        """
        return ["+tls", self.pki.path(f"{name}.key"), self.pki.path(f"{name}.pem"),
                "+cf", self.pki.path("ca.pem")]

    def storescp(self, *options: str) -> Tuple[int, Program, str]:
        """
        storescp on a free port of 127.0.0.1, storing into a fresh
        directory, started and accepting.

        @return: the port, the L{Program} and the directory.
        """
        assert STORESCP is not None
        received = os.path.join(self.workdir, f"received-{next(self.counter)}")
        os.makedirs(received)
        port = freePort()
        program = Program(self, [STORESCP, *options, "-od", received, str(port)],  # type: ignore[arg-type]
                          "storescp")
        blockUntil(lambda: _connectable(port) or not program.running, START_TIMEOUT,
                   "storescp to listen", program.describe)
        self.assertTrue(program.running, program.describe())  # type: ignore[attr-defined]
        return port, program, received

    def storescu(self, port: int, *options: str) -> Program:
        """
        Send the test image with storescu to 127.0.0.1:C{port} as C{CT01}
        calling C{ARCHIVE}, and wait for it to end.
        """
        assert STORESCU is not None
        program = Program(self, [STORESCU, *options, "-aet", "CT01", "-aec", "ARCHIVE",  # type: ignore[arg-type]
                                 "127.0.0.1", str(port), self.image], "storescu")
        program.waitExit(TRANSFER_TIMEOUT)
        return program

    def assertStored(self, received: str, program: Program) -> None:
        """
        storescu ended well and storescp stored one image.
        """
        self.assertEqual(program.process.returncode, 0, program.describe())  # type: ignore[attr-defined]
        blockUntil(lambda: os.listdir(received), PEER_TIMEOUT, "the stored image")
        self.assertEqual(len(os.listdir(received)), 1)  # type: ignore[attr-defined]

    def terminateInFront(self, backendPort: int, profile: str) -> int:
        """
        C{twistd securetcp terminate} under C{profile}, C{mtls:} with the
        PKI's server certificate, in front of 127.0.0.1:C{backendPort}.
        """
        self.audit = os.path.join(self.workdir, f"audit-{next(self.counter)}.jsonl")

        def listen(p: int) -> List[str]:
            [flag, string] = self.mtlsListen(p)
            return [flag, f"{string}:profile={profile}"]

        port, _ = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                              "--audit-log", self.audit, listen=listen)
        return int(port)

    def originateTo(self, serverPort: int, profile: str) -> int:
        """
        C{twistd securetcp originate} under C{profile}: a plaintext port on
        127.0.0.1 connected out over C{mtls:} with the PKI's client
        certificate to 127.0.0.1:C{serverPort}, expecting C{localhost}.
        """
        self.audit = os.path.join(self.workdir, f"audit-{next(self.counter)}.jsonl")
        connect = (f"mtls:host=127.0.0.1:port={serverPort}:hostname=localhost"
                   f":caCerts={escape(self.pki.path('ca.pem'))}"
                   f":certKey={escape(self.pki.path('client.pem'))}"
                   f":privateKey={escape(self.pki.path('client.key'))}:profile={profile}")
        port, _ = self.twistd("originate", "--connect", connect, "--audit-log", self.audit,
                              listen=lambda p: ["--listen", f"tcp:{p}:interface=127.0.0.1"])
        return int(port)


def _negotiated(record: Any) -> Tuple[str, str, str]:
    return record["version"], record["cipher"], record["group"]


class OurServerTests(DcmtkProfileMixin, SynchronousTestCase):
    """
    storescu +tls through our terminate, under each DICOM profile, to a
    plain storescp.
    """

    def _store(self, profile: str, dcmtk: Sequence[str]) -> Any:
        scpPort, _, received = self.storescp()
        port = self.terminateInFront(scpPort, profile)
        client = self.storescu(port, *self.tlsOptions("client"), *dcmtk)
        self.assertStored(received, client)
        [accepted] = self.waitForEvent("connection.accepted")
        self.assertEqual(accepted["profile"], profile)
        return accepted

    def test_b12TLS13(self) -> None:
        """
        Under B.12, storescu with dcmtk's B.12 profile (or, before dcmtk
        3.6.8, its non-downgrading BCP 195 profile) stores an image over
        TLS 1.3.
        """
        accepted = self._store(B12, dcmtkProfile(B12))
        self.assertEqual(accepted["version"], "TLSv1.3")
        self.assertIn(accepted["cipher"], ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256"))

    def test_b12TLS12(self) -> None:
        """
        Under B.12, a storescu limited to TLS 1.2 stores an image with one of
        the four RFC 9325 suites.
        """
        version, cipher, group = _negotiated(self._store(B12, dcmtkProfile(B12, tls12=True)))
        self.assertEqual(version, "TLSv1.2")
        self.assertIn(cipher, ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"))

    def test_b13(self) -> None:
        """
        Under B.13, storescu stores an image over TLS 1.3 and over TLS 1.2,
        always on a NIST curve (storescu's first key share, X25519, is
        refused by a HelloRetryRequest).
        """
        for tls12, version in ((False, "TLSv1.3"), (True, "TLSv1.2")):
            scpPort, _, received = self.storescp()
            port = self.terminateInFront(scpPort, B13)
            client = self.storescu(port, *self.tlsOptions("client"),
                                   *dcmtkProfile(B13, tls12=tls12))
            self.assertStored(received, client)
            accepted = self.waitForEvent("connection.accepted", profile=B13, version=version)
            self.assertIn(accepted[0]["group"], ("secp256r1", "secp384r1", "secp521r1"))

    def test_forbiddenCipherRefused(self) -> None:
        """
        A storescu limited to the retired AES profile (static RSA with
        AES-CBC and SHA-1, no TLS 1.3) is refused under either profile,
        before storescp sees a byte, and audited as no_shared_cipher.
        """
        for profile in (B12, B13):
            scpPort, scp, received = self.storescp()
            port = self.terminateInFront(scpPort, profile)
            client = self.storescu(port, *self.tlsOptions("client"), "--profile-aes")
            self.assertNotEqual(client.process.returncode, 0, client.describe())
            [rejected] = self.waitForEvent("handshake.rejected", profile=profile)
            self.assertEqual(rejected["reason"], "no_shared_cipher")
            self.assertEqual(auditEvents(self.audit, "connection.accepted"), [])
            self.assertEqual(os.listdir(received), [])

    def test_tls11Refused(self) -> None:
        """
        A client limited to TLS 1.1 (openssl s_client: dcmtk cannot cap its
        version) is refused under either profile and audited as
        protocol_version_refused.
        """
        scpPort, _, _ = self.storescp()
        for profile in (B12, B13):
            port = self.terminateInFront(scpPort, profile)
            peer = self.sClient(port, "client", None, "-tls1_1", "-cipher", "ALL@SECLEVEL=0")
            self.assertNotEqual(peer.waitExit(), 0, peer.describe())
            [rejected] = self.waitForEvent("handshake.rejected", profile=profile)
            self.assertEqual(rejected["reason"], "protocol_version_refused")


class DifferencesTests(DcmtkProfileMixin, SynchronousTestCase):
    """
    Where B.12 and B.13 differ, live (openssl s_client stands in for a peer
    dcmtk cannot narrow): B.13 refuses X25519, the only curve below 256
    bits B.12 has; B.13 servers offer the AES-CCM TLS 1.3 suite too.
    """

    def _try(self, profile: str, *options: str) -> Tuple[int, Any]:
        scpPort, _, _ = self.storescp()
        port = self.terminateInFront(scpPort, profile)
        peer = self.sClient(port, "client", None, *options)
        peer.closeStdin()
        status = peer.waitExit()
        [record] = blockUntil(
            lambda: auditEvents(self.audit, "connection.accepted")
            + auditEvents(self.audit, "handshake.rejected"), PEER_TIMEOUT, "an audit record")
        return status, record

    def test_x25519(self) -> None:
        """
        A client offering only X25519 is accepted under B.12 and refused
        under B.13.
        """
        status, record = self._try(B12, "-groups", "X25519")
        self.assertEqual((status, record["event"], record["group"]),
                         (0, "connection.accepted", "x25519"))
        status, record = self._try(B13, "-groups", "X25519")
        self.assertNotEqual(status, 0)
        self.assertEqual((record["event"], record["reason"]),
                         ("handshake.rejected", "no_shared_cipher"))

    def test_ccm(self) -> None:
        """
        A TLS 1.3 client offering only TLS_AES_128_CCM_SHA256 is accepted
        under B.13 and refused under B.12.
        """
        only = ("-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256")
        status, record = self._try(B13, *only)
        self.assertEqual((status, record["event"], record["cipher"]),
                         (0, "connection.accepted", "TLS_AES_128_CCM_SHA256"))
        status, record = self._try(B12, *only)
        self.assertNotEqual(status, 0)
        self.assertEqual((record["event"], record["reason"]),
                         ("handshake.rejected", "no_shared_cipher"))


class ProbeDcmtkTests(DcmtkProfileMixin, SynchronousTestCase):
    """
    C{python -m securetcp probe --profile dicom-bcp195-rfc8996} measures a
    live storescp +tls.
    """

    def _probe(self, *dcmtk: str) -> Dict[str, str]:
        port, _, _ = self.storescp(*self.tlsOptions("server"), *dcmtk)
        probe = Program(self, [sys.executable, "-m", "securetcp", "probe", "--json",  # type: ignore[arg-type]
                               "--profile", B12, "--cacert", self.pki.path("ca.pem"),
                               "--cert", self.pki.path("client.pem"),
                               "--key", self.pki.path("client.key"), f"127.0.0.1:{port}"],
                        "probe")
        probe.waitExit(TRANSFER_TIMEOUT)
        return {i["id"]: i["status"] for i in json.loads(probe.out)["items"]}

    def test_tls12Only(self) -> None:
        """
        storescp limited to TLS 1.2 with ECDSA suites passes every B.12 item
        probe can see.
        """
        items = self._probe(*dcmtkProfile(B12, tls12=True))
        self.assertEqual({k: v for k, v in items.items() if v == "fail"}, {})
        self.assertEqual(items["accepts.TLSv1.2"], "pass")

    def test_default(self) -> None:
        """
        storescp with dcmtk's B.12 profile passes too; with dcmtk 3.6.7's
        closest (non-downgrading BCP 195) and an ECDSA certificate it
        negotiates TLS 1.3 but fails accepts.TLSv1.2: its TLS 1.2 suites
        are all RSA-authenticated, so it cannot speak the TLS 1.2 that B.12
        requires with that certificate.
        """
        items = self._probe(*dcmtkProfile(B12))
        for id in ("versions.minimum", "ciphers.tls13", "groups", "refuses.TLSv1.1"):
            self.assertEqual(items[id], "pass", id)
        expected = "pass" if "--profile-8996" in storescuHelp() else "fail"
        self.assertEqual(items["accepts.TLSv1.2"], expected)


class OurClientTests(DcmtkProfileMixin, SynchronousTestCase):
    """
    A plain storescu through our originate, under each DICOM profile, to
    storescp +tls.
    """

    def test_b12AndB13(self) -> None:
        """
        Under each profile our client stores an image in a storescp running
        dcmtk's closest profile, over TLS 1.3 and (dcmtk limited to it) over
        TLS 1.2.
        """
        for profile in (B12, B13):
            for tls12, version in ((False, "TLSv1.3"), (True, "TLSv1.2")):
                scpPort, _, received = self.storescp(*self.tlsOptions("server"),
                                                     *dcmtkProfile(profile, tls12=tls12))
                port = self.originateTo(scpPort, profile)
                self.assertStored(received, self.storescu(port))
                self.waitForEvent("connection.accepted", profile=profile, version=version)

    def test_forbiddenCipherRefused(self) -> None:
        """
        A storescp limited to the retired AES profile shares no suite with
        our client under either profile: storescp aborts the handshake, our
        client audits that as peer_rejected, and the plain storescu behind
        it sees its association fail.
        """
        for profile in (B12, B13):
            scpPort, _, received = self.storescp(*self.tlsOptions("server"), "--profile-aes")
            port = self.originateTo(scpPort, profile)
            client = self.storescu(port)
            self.assertNotEqual(client.process.returncode, 0, client.describe())
            self.assertIn(b"Association Request Failed", client.out + client.err)
            [rejected] = self.waitForEvent("handshake.rejected", profile=profile)
            self.assertEqual(rejected["reason"], "peer_rejected")
            self.assertEqual(auditEvents(self.audit, "connection.accepted"), [])
            self.assertEqual(os.listdir(received), [])
