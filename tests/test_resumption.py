"""
Session resumption on our servers (C{resumption}, C{resumptionLifetime}),
with C{openssl s_client} saving its session and offering it again, and
C{openssl sess_id} reading what the server gave it.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import clientFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from securetcp import EndpointArgumentError, PolicyError, buildPolicy

from ._peers import PROCESS_TIMEOUT, RealPeerMixin
from ._programs import OPENSSL
from ._programs import needOpenSSL as _needOpenSSL


def _sessionText(path: str) -> str:
    """
    What C{openssl sess_id -text} says of the session file C{path}.
    """
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, "sess_id", "-in", path, "-noout", "-text"],
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=True)
    return done.stdout


def _ticketBytes(text: str) -> int:
    """
    The length of the session ticket in C{openssl sess_id -text} output.
    """
    dump = text.split("TLS session ticket:", 1)[1].split("Start Time", 1)[0]
    return len(re.findall(r"(?<![0-9a-f])[0-9a-f]{2}(?=[ -]|$)", dump, re.M))


class ResumptionModeTests(RealPeerMixin, TestCase):
    """
    What each C{resumption} mode lets a real client do, TLS 1.3 and 1.2.
    """

    def setUp(self) -> None:
        _needOpenSSL()
        super().setUp()

    @inlineCallbacks
    def twoConnections(self, version: str, **options: Any) -> Any:
        """
        Connect twice as C{client} with C{version}, saving the session the
        first time and offering it the second.

        @return: the C{resumed} flags of the C{connection.accepted}
            records, and the saved session's C{sess_id} text; if the server
            gave the client no session to save, one flag and C{None}.
        """
        port, factory, audit = yield self.listen(mutual=True, **options)
        session = os.path.abspath(self.mktemp())
        for flag in ("-sess_out", "-sess_in"):
            peer = yield self.sClient(port, version, flag, session, client="client",
                                      audit=audit)
            self.assertEchoed(peer)
            if not os.path.exists(session):
                break
        resumed = [r["resumed"] for r in audit.events("connection.accepted")]
        self.assertEqual(factory.made, len(resumed))
        return resumed, _sessionText(session) if os.path.exists(session) else None

    @inlineCallbacks
    def test_cacheIsTheDefault(self) -> Any:
        """
        By default a TLS 1.3 client resumes from the server's session cache:
        its ticket is a short session id, and nothing of the session (such
        as the client's certificate) leaves the server.
        """
        resumed, text = yield self.twoConnections("-tls1_3")
        self.assertEqual(resumed, [False, True])
        self.assertLess(_ticketBytes(text), 100, text)

    @inlineCallbacks
    def test_tickets(self) -> Any:
        """
        With C{resumption=tickets} a TLS 1.3 client resumes from a ticket
        that carries the whole session, encrypted (for mTLS with the
        client's certificate): hundreds of bytes.
        """
        resumed, text = yield self.twoConnections("-tls1_3", resumption="tickets")
        self.assertEqual(resumed, [False, True])
        self.assertGreater(_ticketBytes(text), 300, text)

    @inlineCallbacks
    def test_ticketsPerHandshake(self) -> Any:
        """
        A TLS 1.3 client is sent two tickets after a full handshake and one
        after a resumed one, in both resuming modes (what
        C{docs/performance.md} counts in a resumption's cost).
        """
        for mode in ("cache", "tickets"):
            port, _, audit = yield self.listen(mutual=True, resumption=mode)
            session = os.path.abspath(self.mktemp())
            received = []
            for flag in ("-sess_out", "-sess_in"):
                peer = yield self.sClient(port, "-tls1_3", "-msg", flag, session,
                                          client="client", audit=audit)
                self.assertEchoed(peer)
                received.append(len(re.findall(rb"^<<< TLS 1\.3, Handshake .*NewSessionTicket$",
                                               peer.out, re.M)))
            resumed = [r["resumed"] for r in audit.events("connection.accepted")]
            self.assertEqual((resumed, received), ([False, True], [2, 1]), mode)

    @inlineCallbacks
    def test_cacheTLS12(self) -> Any:
        """
        A TLS 1.2 client resumes by session id by default.
        """
        resumed, text = yield self.twoConnections("-tls1_2")
        self.assertEqual(resumed, [False, True])
        self.assertNotIn("TLS session ticket:", text)

    @inlineCallbacks
    def test_ticketsTLS12(self) -> Any:
        """
        A TLS 1.2 client resumes from a session ticket under
        C{resumption=tickets}.
        """
        resumed, text = yield self.twoConnections("-tls1_2", resumption="tickets")
        self.assertEqual(resumed, [False, True])
        self.assertIn("TLS session ticket:", text)

    @inlineCallbacks
    def test_identityInEveryMode(self) -> Any:
        """
        In both resuming modes a resumed client is judged by the allow-list
        and audited with the identity of the session's peer, its leaf
        certificate, whatever else it sent.
        """
        for mode in ("tickets", "cache"):
            resumed, _ = yield self.twoConnections(
                "-tls1_3", resumption=mode,
                allowPeers="uri:spiffe://hospital.example/ward3/*")
            self.assertEqual(resumed, [False, True], mode)

    @inlineCallbacks
    def test_off(self) -> Any:
        """
        With C{resumption=off} every connection makes a full handshake: a
        TLS 1.3 client offers the session it saved and makes a full
        handshake all the same; a TLS 1.2 client is given no session id to
        save.
        """
        resumed, _ = yield self.twoConnections("-tls1_3", resumption="off")
        self.assertEqual(resumed, [False, False])
        resumed, text = yield self.twoConnections("-tls1_2", resumption="off")
        self.assertEqual((resumed, text), ([False], None))

    @inlineCallbacks
    def test_lifetime(self) -> Any:
        """
        C{resumptionLifetime} is the lifetime the server announces in its
        TLS 1.3 tickets, in both resuming modes.
        """
        for mode in ("cache", "tickets"):
            _, text = yield self.twoConnections("-tls1_3", resumption=mode,
                                                resumptionLifetime=900)
            self.assertIn("lifetime hint: 900 (seconds)", text, mode)


class ResumptionOptionTests(SynchronousTestCase):
    """
    C{resumption} and C{resumptionLifetime} are checked when the policy is
    built.
    """

    def test_defaults(self) -> None:
        """
        A policy resumes from the server's session cache, for two hours
        (OpenSSL's own default session lifetime).
        """
        policy = buildPolicy()
        self.assertEqual((policy.resumption, policy.resumptionLifetime), ("cache", 7200))

    def test_unknownMode(self) -> None:
        """
        An unknown mode is refused, naming the option and the modes there
        are.
        """
        e = self.assertRaises(PolicyError, buildPolicy, resumption="sometimes")
        self.assertIn("resumption", str(e))
        self.assertIn("cache or tickets or off", str(e))

    def test_lifetimeBounds(self) -> None:
        """
        A lifetime is a whole number of seconds from 1 to TLS 1.3's seven
        days; anything else is refused with the fix.
        """
        for bad in ("0", "604801", "1.5", "soon"):
            e = self.assertRaises(PolicyError, buildPolicy, resumptionLifetime=bad)
            self.assertIn("resumptionLifetime", str(e), bad)
        self.assertEqual(buildPolicy(resumptionLifetime="604800").resumptionLifetime, 604800)

    def test_clientRefused(self) -> None:
        """
        A client endpoint string that sets either is refused at parse time,
        naming the argument: a server decides how its sessions resume.
        """
        for argument in ("resumption=tickets", "resumptionLifetime=60"):
            e = self.assertRaises(EndpointArgumentError, clientFromString, MemoryReactor(),
                                  "securessl:host=localhost:port=1:" + argument)
            self.assertIn(argument.split("=")[0], str(e))
            self.assertIn("only servers decide how their sessions resume", str(e))
