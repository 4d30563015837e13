"""
Tests for the fences around the private names securetcp depends on:
pyOpenSSL's binding (L{securetcp._tls._binding.PYOPENSSL_PRIVATE_NAMES}) and
Twisted's TLS transport (L{securetcp._tls._halfclose.TWISTED_PRIVATE_NAMES}).
Each name listed must exist in the installed release, and no other module
of securetcp may use one.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any, List

import OpenSSL
from twisted.copyright import version as twistedVersion
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementedBy, providedBy

import securetcp
from securetcp._tls import _binding, _halfclose
from securetcp._tls.context import ClientConnectionCreator, ServerConnectionCreator
from securetcp.config import buildPolicy
from securetcp.materials import loadMaterials
from securetcp.policy import Role

from ._pki import sharedPKI


def _pyOpenSSLProblems() -> List[str]:
    return [f"pyOpenSSL {OpenSSL.__version__} no longer has {entry.owner}.{name}: "
            f"securetcp needs it for {entry.purpose} (securetcp/_tls/_binding.py)"
            for entry, name in _binding.missingPrivateNames()]


def _connectedTransport() -> BufferingTLSTransport:
    """
    Twisted's TLS transport, connected to a string transport, as securetcp's
    L{_halfclose.GatedTLSProtocol} finds it.
    """
    pki = sharedPKI("fences")
    policy = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"))
    creator = ServerConnectionCreator(policy, loadMaterials(policy, Role.SERVER))
    factory = TLSMemoryBIOFactory(creator, False, Factory.forProtocol(Protocol))
    factory.protocol = BufferingTLSTransport
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    protocol.makeConnection(StringTransport())
    return protocol  # type: ignore[return-value]


def _twistedProblems(transport: Any) -> List[str]:
    problems = []
    for name, purpose in _halfclose.TWISTED_PRIVATE_NAMES:
        if name.startswith("__init__:"):
            parameter = name.split(":", 1)[1]
            present = parameter in inspect.signature(BufferingTLSTransport.__init__).parameters
        else:
            owner: Any = transport
            present = True
            for part in name.split("."):
                if not hasattr(owner, part):
                    present = False
                    break
                owner = getattr(owner, part)
        if not present:
            problems.append(f"Twisted {twistedVersion} no longer has "
                            f"BufferingTLSTransport.{name}: securetcp needs it for {purpose} "
                            "(securetcp/_tls/_halfclose.py)")
    return problems


class PyOpenSSLFenceTests(SynchronousTestCase):
    """
    L{_binding.PYOPENSSL_PRIVATE_NAMES} is everything securetcp takes from
    pyOpenSSL's private binding, and the installed pyOpenSSL has it all.
    """

    def test_everyNamePresent(self) -> None:
        """
        The installed pyOpenSSL has every private name securetcp uses; a
        release that dropped one fails here, naming it and what it is for.
        """
        problems = _pyOpenSSLProblems()
        self.assertEqual(problems, [], "\n".join(problems))

    def test_missingNameNamed(self) -> None:
        """
        A name that is gone is reported with the pyOpenSSL version, the name
        and what securetcp needs it for.
        """
        self.patch(_binding, "PYOPENSSL_PRIVATE_NAMES", (
            _binding.PrivateName("lib", ("SSL_no_such_function",), "a test"),
            _binding.PrivateName("ffi", ("callback", "no_such_helper"), "another test")))
        self.assertEqual(_pyOpenSSLProblems(), [
            f"pyOpenSSL {OpenSSL.__version__} no longer has lib.SSL_no_such_function: "
            "securetcp needs it for a test (securetcp/_tls/_binding.py)",
            f"pyOpenSSL {OpenSSL.__version__} no longer has ffi.no_such_helper: "
            "securetcp needs it for another test (securetcp/_tls/_binding.py)"])

    def test_aliasEnough(self) -> None:
        """
        Where two names are listed (a function and its older alias), either
        one will do.
        """
        self.patch(_binding, "PYOPENSSL_PRIVATE_NAMES", (
            _binding.PrivateName("lib", ("SSL_no_such_function", "SSL_CTX_set_verify"),
                                 "a test"),))
        self.assertEqual(_pyOpenSSLProblems(), [])


class TwistedFenceTests(SynchronousTestCase):
    """
    L{_halfclose.TWISTED_PRIVATE_NAMES} is everything securetcp's TLS
    transport takes from Twisted's, and the installed Twisted has it all.
    """

    def test_everyNamePresent(self) -> None:
        """
        A connected Twisted TLS transport has every private name
        L{_halfclose.GatedTLSProtocol} overrides or reads; a release that
        dropped one fails here, naming it and what it is for.
        """
        problems = _twistedProblems(_connectedTransport())
        self.assertEqual(problems, [], "\n".join(problems))

    def test_missingNameNamed(self) -> None:
        """
        A name that is gone is reported with the Twisted version, the name
        and what securetcp needs it for.
        """
        self.patch(_halfclose, "TWISTED_PRIVATE_NAMES", (
            ("_noSuchAttribute", "a test"), ("_aggregator.noSuchMethod", "another test"),
            ("__init__:_noSuchParameter", "a third test")))
        self.assertEqual(_twistedProblems(_connectedTransport()), [
            f"Twisted {twistedVersion} no longer has BufferingTLSTransport.{name}: "
            f"securetcp needs it for {purpose} (securetcp/_tls/_halfclose.py)"
            for name, purpose in (("_noSuchAttribute", "a test"),
                                  ("_aggregator.noSuchMethod", "another test"),
                                  ("__init__:_noSuchParameter", "a third test"))])

    def test_overridesListed(self) -> None:
        """
        Every private method L{_halfclose.GatedTLSProtocol} overrides is
        listed.
        """
        listed = {name for name, _ in _halfclose.TWISTED_PRIVATE_NAMES}
        overridden = {name for name in vars(_halfclose.GatedTLSProtocol)
                      if name.startswith("_") and not name.startswith("__")
                      and hasattr(BufferingTLSTransport, name)}
        self.assertEqual(overridden - listed, set())

    def test_makeConnectionUnchanged(self) -> None:
        """
        Twisted's C{TLSMemoryBIOProtocol.makeConnection}, which
        L{_halfclose.GatedTLSProtocol.makeConnection} repeats without its
        loop over the transport's interfaces, still reads and calls exactly
        the names securetcp's copy was written against.
        """
        from twisted.protocols.tls import TLSMemoryBIOProtocol
        names = set(TLSMemoryBIOProtocol.makeConnection.__code__.co_names)
        self.assertEqual(names, set(_halfclose.TWISTED_MAKE_CONNECTION_NAMES),
                         f"Twisted {twistedVersion} changed TLSMemoryBIOProtocol."
                         "makeConnection: check GatedTLSProtocol.makeConnection against it")

    def test_makeConnectionSameInterfaces(self) -> None:
        """
        A connected L{_halfclose.GatedTLSProtocol} provides exactly what
        Twisted's own TLS transport provides once connected to the same
        transport (its own interfaces and every one of the transport's), and
        has started the handshake (its OpenSSL connection is made and the
        ClientHello awaited: nothing written by a server).
        """
        twisted = _connectedTransport()
        pki = sharedPKI("fences")
        policy = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"))
        creator = ServerConnectionCreator(policy, loadMaterials(policy, Role.SERVER))
        factory = _halfclose.GatedTLSFactory(creator, False, Factory.forProtocol(Protocol),
                                             Clock())
        gated = factory.buildProtocol(None)
        assert gated is not None
        transport = StringTransport()
        gated.makeConnection(transport)
        fromTransport = set(providedBy(transport))
        self.assertEqual(set(providedBy(twisted)),
                         fromTransport | set(implementedBy(BufferingTLSTransport)))
        self.assertEqual(set(providedBy(gated)),
                         fromTransport | set(implementedBy(_halfclose.GatedTLSProtocol)))
        self.assertTrue(set(implementedBy(BufferingTLSTransport)) <= set(providedBy(gated)))
        self.assertIn(gated, factory.protocols)
        self.assertIsNotNone(gated.getHandle())
        self.assertIs(gated.transport, transport)
        self.assertIsInstance(gated.wrappedProtocol.transport, _halfclose.GatedTLSProtocol)
        self.assertEqual(transport.value(), b"")

    def test_creatorMakesWholeConnection(self) -> None:
        """
        L{_halfclose.GatedTLSFactory} takes the OpenSSL connection of
        securetcp's own server or client creator as it is: OpenSSL's accept
        (or connect) state is set once per connection, by the creator, and
        the connection's app data is the TLS transport.
        """
        pki = sharedPKI("fences")
        calls: List[str] = []
        for name in ("set_accept_state", "set_connect_state"):
            original = getattr(OpenSSL.SSL.Connection, name)

            def counted(connection: Any, original: Any = original, name: str = name) -> None:
                calls.append(name)
                original(connection)
            self.patch(OpenSSL.SSL.Connection, name, counted)
        server = buildPolicy(certKey=pki.path("server.pem"), privateKey=pki.path("server.key"))
        client = buildPolicy(caCerts=pki.path("ca.pem"))
        creators = [(ServerConnectionCreator(server, loadMaterials(server, Role.SERVER)), False,
                     "set_accept_state"),
                    (ClientConnectionCreator(client, loadMaterials(client, Role.CLIENT),
                                             "localhost"), True, "set_connect_state")]
        for creator, isClient, state in creators:
            del calls[:]
            factory = _halfclose.GatedTLSFactory(creator, isClient,
                                                 Factory.forProtocol(Protocol), Clock())
            gated = factory.buildProtocol(None)
            assert gated is not None
            gated.makeConnection(StringTransport())
            self.assertEqual(calls, [state])
            self.assertIs(gated.getHandle().get_app_data(), gated)


#: Spellings of private names that only the fence modules may contain.
_FENCED = {
    os.path.join("_tls", "_binding.py"): [
        r"OpenSSL\._util", r"\._context\b", r"\._ssl\b", r"_reverse_mapping",
        r"_from_raw_x509_ptr"],
    os.path.join("_tls", "_halfclose.py"): [
        r"\._tlsConnection\b", r"_flushReceiveBIO", r"_flushSendBIO", r"_lostTLSConnection",
        r"_shutdownTLS", r"_tlsShutdownFinished", r"\._aggregator\b", r"_appSendBuffer",
        r"_handshakeDone"],
}


#: The modules that only list a fence's private names (for its check of the
#: installed pyOpenSSL), by fence.
_FENCE_LISTS = {os.path.join("_tls", "_binding.py"): (os.path.join("_tls", "_privatenames.py"),)}


class OnlyTheFencesTests(SynchronousTestCase):
    """
    No module of securetcp outside the two fences spells one of the private
    names they hold.
    """

    def test_noOtherModule(self) -> None:
        """
        pyOpenSSL's binding and private attributes appear only in
        C{_tls/_binding.py} (and, listed, in C{_tls/_privatenames.py}); Twisted's TLS transport internals only in
        C{_tls/_halfclose.py}.
        """
        root = os.path.dirname(os.path.abspath(securetcp.__file__))
        found = []
        for directory, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, root)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for fence, patterns in _FENCED.items():
                    if relative in (fence, *_FENCE_LISTS.get(fence, ())):
                        continue
                    found.extend(f"{relative}: {p}" for p in patterns if re.search(p, text))
        self.assertEqual(found, [])
