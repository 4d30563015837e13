"""
Tests for L{securetcp.endpoints} and the C{securessl:} / C{mtls:} endpoint
string plugins: for each prefix, server and client, the trio of Twisted's
own C{test_endpoints.py} (plugin discovery, C{verifyObject}, a string
description parsed against a memory reactor), plus the C{ssl:}-compatible
argument names, C{endpoint=} wrapping and C{policy=} files.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, List

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
    clientFromString,
    serverFromString,
)
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.plugin import IPlugin, getPlugins
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from securetcp import AuditEmitter, buildPolicy
from securetcp._catalogue import TLSVersion
from securetcp._interfaces import IAuditSink, ICRLTarget, ICRLWatcher, IOCSPChecker, IStapler
from securetcp._plugins import SecureClientParserPlugin, SecureServerParserPlugin
from securetcp._tls._halfclose import GatedTLSProtocol
from securetcp.endpoints import Limits, SecureClientEndpoint, SecureServerEndpoint
from securetcp.errors import EndpointArgumentError
from securetcp.gate import ClientGateFactory, GateFactory
from securetcp.policy import ClientAuth

from ._iosim import connectEndpoints
from ._pki import FFDHE2048, TestPKI
from ._pki import sharedPKI as _sharedPKI


def _addEndpointFiles(pki: TestPKI) -> None:
    """
    Add C{dh.pem} (L{FFDHE2048}) and C{cadir/ca.pem} (a CA directory) to
    C{pki}.
    """
    pki.write("dh.pem", FFDHE2048)
    os.makedirs(pki.path("cadir"))
    shutil.copy(pki.path("ca.pem"), pki.path("cadir/ca.pem"))


def sharedPKI() -> TestPKI:
    """
    One read-only test PKI (with absolute paths), DH parameters and a CA
    directory, for the whole module.
    """
    return _sharedPKI("endpoints", _addEndpointFiles)


class Echo(Protocol):
    """
    Keeps what it receives in C{received} and, if its factory says so,
    echoes it.
    """

    def connectionMade(self) -> None:
        self.received: List[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        if self.factory.echo:
            self.transport.write(data)


class Collector(Factory):
    """
    Builds L{Echo}s and keeps them in C{built}.
    """

    protocol = Echo

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.built: List[Echo] = []

    def buildProtocol(self, addr: Any) -> Echo:
        p = Echo()
        p.factory = self
        self.built.append(p)
        return p


def _pluginsFor(interface: Any, prefix: str) -> List[Any]:
    return [p for p in getPlugins(interface) if getattr(p, "prefix", None) == prefix]


class _PrefixMixin:
    """
    What differs between C{securessl:} and C{mtls:}: the prefix, whether it
    is mutual, and the arguments that make a valid string.
    """

    prefix: str
    mutual: bool

    def setUp(self) -> None:
        self.pki = sharedPKI()
        self.reactor = MemoryReactorClock()

    def path(self, name: str) -> str:
        return self.pki.path(name)

    def serverArgs(self) -> str:
        args = f"certKey={self.path('server.pem')}:privateKey={self.path('server.key')}"
        if self.mutual:
            args += f":caCerts={self.path('ca.pem')}"
        return args

    def clientArgs(self) -> str:
        args = f"caCerts={self.path('ca.pem')}"
        if self.mutual:
            args += f":certKey={self.path('client.pem')}:privateKey={self.path('client.key')}"
        return args


class _ServerTestsMixin(_PrefixMixin):
    """
    The server parser of one prefix.
    """

    def test_pluginDiscovery(self) -> None:
        """
        Exactly one L{IStreamServerEndpointStringParser} plugin has the
        prefix, and it is securetcp's (mutual for C{mtls:} only).
        """
        [plugin] = _pluginsFor(IStreamServerEndpointStringParser, self.prefix)
        self.assertIsInstance(plugin, SecureServerParserPlugin)
        self.assertEqual(plugin.mutual, self.mutual)

    def test_interfacePlugin(self) -> None:
        """
        The plugin provides L{IPlugin} and
        L{IStreamServerEndpointStringParser}.
        """
        [plugin] = _pluginsFor(IStreamServerEndpointStringParser, self.prefix)
        self.assertTrue(verifyObject(IPlugin, plugin))
        self.assertTrue(verifyObject(IStreamServerEndpointStringParser, plugin))

    def test_interfaceEndpoint(self) -> None:
        """
        A parsed string is an L{IStreamServerEndpoint} whose connection
        creator provides L{IOpenSSLServerConnectionCreator}.
        """
        endpoint = serverFromString(self.reactor, f"{self.prefix}:8443:{self.serverArgs()}")
        self.assertIsInstance(endpoint, SecureServerEndpoint)
        self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, endpoint.creator))

    def test_stringDescription(self) -> None:
        """
        C{PREFIX:PORT:interface=...:backlog=...} listens on that TCP port,
        interface and backlog, with a L{TLSMemoryBIOFactory} (and the gate)
        in front of the application's factory.
        """
        endpoint = serverFromString(
            self.reactor,
            f"{self.prefix}:8443:interface=127.0.0.1:backlog=7:{self.serverArgs()}")
        app = Collector()
        self.successResultOf(endpoint.listen(app))
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, backlog, interface), (8443, 7, "127.0.0.1"))
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        self.assertIs(factory.protocol, GatedTLSProtocol)
        self.assertIsInstance(factory.wrappedFactory, GateFactory)
        self.assertIs(factory.wrappedFactory.wrappedFactory, app)

    def test_parseAgainstMemoryReactor(self) -> None:
        """
        Parsing needs nothing of the reactor beyond what Twisted's plain
        L{MemoryReactor} offers: the string becomes a TCP server endpoint
        with the given port, backlog and interface.
        """
        reactor = MemoryReactor()
        endpoint = serverFromString(
            reactor, f"{self.prefix}:8443:interface=127.0.0.1:backlog=7:{self.serverArgs()}")
        self.assertIsInstance(endpoint._inner, TCP4ServerEndpoint)
        self.assertIs(endpoint._inner._reactor, reactor)
        self.assertEqual(
            (endpoint._inner._port, endpoint._inner._backlog, endpoint._inner._interface),
            (8443, 7, "127.0.0.1"))

    def test_defaults(self) -> None:
        """
        Without C{interface} and C{backlog}, the endpoint listens on every
        IPv4 address with a backlog of 50, as C{ssl:} does.
        """
        endpoint = serverFromString(self.reactor, f"{self.prefix}:8443:{self.serverArgs()}")
        endpoint.listen(Collector())
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, backlog, interface), (8443, 50, ""))

    def test_namedPort(self) -> None:
        """
        C{port=} may be given by name instead of positionally.
        """
        endpoint = serverFromString(self.reactor, f"{self.prefix}:port=8444:{self.serverArgs()}")
        endpoint.listen(Collector())
        self.assertEqual(self.reactor.tcpServers[0][0], 8444)

    def test_mutual(self) -> None:
        """
        C{mtls:} requires a client certificate; C{securessl:} does not ask
        for one.
        """
        endpoint = serverFromString(self.reactor, f"{self.prefix}:8443:{self.serverArgs()}")
        expected = ClientAuth.REQUIRED if self.mutual else ClientAuth.NONE
        self.assertEqual(endpoint.policy.peer.clientAuth, expected)

    def test_everySSLArgument(self) -> None:
        """
        Every argument C{ssl:} accepts for servers (port, interface,
        backlog, privateKey, certKey, extraCertChain, dhParameters) is
        accepted with the same meaning.
        """
        endpoint = serverFromString(
            self.reactor,
            f"{self.prefix}:port=8443:interface=127.0.0.1:backlog=9"
            f":privateKey={self.path('server.key')}:certKey={self.path('server.pem')}"
            f":extraCertChain={self.path('ca.pem')}:dhParameters={self.path('dh.pem')}"
            + (f":caCerts={self.path('ca.pem')}" if self.mutual else ""))
        credentials = endpoint.policy.credentials
        self.assertEqual(credentials.privateKey, self.path("server.key"))
        self.assertEqual(credentials.certificate, self.path("server.pem"))
        self.assertEqual(credentials.extraChain, self.path("ca.pem"))
        self.assertEqual(credentials.dhParameters, self.path("dh.pem"))
        endpoint.listen(Collector())
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, backlog, interface), (8443, 9, "127.0.0.1"))

    def test_endpointTCP6(self) -> None:
        """
        C{endpoint=} wraps another server endpoint string, here C{tcp6:}.
        """
        endpoint = serverFromString(
            self.reactor,
            f"{self.prefix}:endpoint=tcp6\\:8443\\:interface=\\\\\\:\\\\\\:1:{self.serverArgs()}")
        self.assertIsInstance(endpoint._inner, TCP6ServerEndpoint)
        endpoint.listen(Collector())
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (8443, "::1"))
        self.assertIsInstance(factory, TLSMemoryBIOFactory)

    def test_endpointTCP6Default(self) -> None:
        """
        C{endpoint=tcp6\\:PORT} listens on every IPv6 address.
        """
        endpoint = serverFromString(
            self.reactor, f"{self.prefix}:endpoint=tcp6\\:8443:{self.serverArgs()}")
        endpoint.listen(Collector())
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (8443, "::"))

    def test_endpointUNIX(self) -> None:
        """
        C{endpoint=} wraps a C{unix:} server endpoint.
        """
        socket = os.path.join(self.pki.directory, "tls.sock")
        endpoint = serverFromString(
            self.reactor, f"{self.prefix}:endpoint=unix\\:{socket}:{self.serverArgs()}")
        self.assertIsInstance(endpoint._inner, UNIXServerEndpoint)
        endpoint.listen(Collector())
        [(address, factory, backlog, mode, wantPID)] = self.reactor.unixServers
        self.assertEqual(address, socket)
        self.assertIsInstance(factory, TLSMemoryBIOFactory)

    def test_endpointWithPort(self) -> None:
        """
        C{endpoint=} cannot be combined with a port.
        """
        error = self.assertRaises(
            EndpointArgumentError, serverFromString, self.reactor,
            f"{self.prefix}:8443:endpoint=tcp6\\:8443:{self.serverArgs()}")
        self.assertEqual(error.argument, "endpoint")

    def test_policyFile(self) -> None:
        """
        C{policy=} reads a TOML policy file (relative paths taken from its
        directory); the string's other arguments override its keys.
        """
        toml = self.pki.write(f"{self.prefix}-server.toml", (
            b'name = "hl7-inbound"\n'
            b'certKey = "server.pem"\n'
            b'privateKey = "server.key"\n'
            b'caCerts = "ca.pem"\n'
            b'minVersion = "TLSv1.2"\n'
            b'handshakeTimeout = 5\n'
            b'allowPeers = ["uri:spiffe://hospital.example/ward3/*"]\n'
        ))
        endpoint = serverFromString(
            self.reactor,
            f"{self.prefix}:8443:policy={toml}:minVersion=TLSv1.3:handshakeTimeout=7")
        policy = endpoint.policy
        self.assertEqual(policy.name, "hl7-inbound")
        self.assertEqual(policy.credentials.certificate, self.path("server.pem"))
        self.assertEqual(policy.trust.caFile, self.path("ca.pem"))
        self.assertEqual(policy.versions.minimum, TLSVersion.TLSv1_3)
        self.assertEqual(policy.handshakeTimeout, 7.0)
        self.assertEqual([str(p) for p in policy.peer.allow],
                         ["uri:spiffe://hospital.example/ward3/*"])

    def test_privateKeyDefaultsToServerPem(self) -> None:
        """
        As with C{ssl:}, without C{certKey} and C{privateKey} the key and
        certificate are read from C{server.pem} in the current directory.
        """
        self.inDirectory()
        shutil.copy(self.path("server-bundle.pem"), "server.pem")
        extra = f":caCerts={self.path('ca.pem')}" if self.mutual else ""
        endpoint = serverFromString(self.reactor, f"{self.prefix}:8443{extra}")
        self.assertEqual(endpoint.policy.credentials.privateKey, "server.pem")
        self.assertEqual(endpoint.policy.credentials.certificateFile, "server.pem")

    def test_privateKeyDefaultMissing(self) -> None:
        """
        Without C{certKey}, C{privateKey} and a C{server.pem}, parsing fails
        with an L{EndpointArgumentError} naming C{privateKey} and the file.
        """
        self.inDirectory()
        extra = f":caCerts={self.path('ca.pem')}" if self.mutual else ""
        error = self.assertRaises(EndpointArgumentError, serverFromString,
                                  self.reactor, f"{self.prefix}:8443{extra}")
        self.assertEqual(error.argument, "privateKey")
        self.assertEqual(error.path, "server.pem")

    def test_unknownArgument(self) -> None:
        """
        An argument neither C{ssl:} nor the policy knows is refused when the
        string is parsed, naming it.
        """
        error = self.assertRaises(EndpointArgumentError, serverFromString, self.reactor,
                                  f"{self.prefix}:8443:sslmethod=TLSv1:{self.serverArgs()}")
        self.assertEqual(error.argument, "sslmethod")

    def inDirectory(self) -> None:
        """
        Run the rest of the test in a new, empty current directory.
        """
        directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(directory)
        self.addCleanup(os.chdir, os.getcwd())  # type: ignore[attr-defined]
        os.chdir(directory)


class _ClientTestsMixin(_PrefixMixin):
    """
    The client parser of one prefix.
    """

    def test_pluginDiscovery(self) -> None:
        """
        Exactly one L{IStreamClientEndpointStringParserWithReactor} plugin
        has the prefix, and it is securetcp's (mutual for C{mtls:} only).
        """
        [plugin] = _pluginsFor(IStreamClientEndpointStringParserWithReactor, self.prefix)
        self.assertIsInstance(plugin, SecureClientParserPlugin)
        self.assertEqual(plugin.mutual, self.mutual)

    def test_interfacePlugin(self) -> None:
        """
        The plugin provides L{IPlugin} and
        L{IStreamClientEndpointStringParserWithReactor}.
        """
        [plugin] = _pluginsFor(IStreamClientEndpointStringParserWithReactor, self.prefix)
        self.assertTrue(verifyObject(IPlugin, plugin))
        self.assertTrue(verifyObject(IStreamClientEndpointStringParserWithReactor, plugin))

    def test_interfaceEndpoint(self) -> None:
        """
        A parsed string is an L{IStreamClientEndpoint} whose connection
        creator provides L{IOpenSSLClientConnectionCreator}.
        """
        endpoint = clientFromString(self.reactor,
                                    f"{self.prefix}:127.0.0.1:8443:{self.clientArgs()}")
        self.assertIsInstance(endpoint, SecureClientEndpoint)
        self.assertTrue(verifyObject(IStreamClientEndpoint, endpoint))
        self.assertTrue(verifyObject(IOpenSSLClientConnectionCreator, endpoint.creator))

    def test_stringDescription(self) -> None:
        """
        C{PREFIX:HOST:PORT} connects to that host and port (through
        L{HostnameEndpoint}) with a L{TLSMemoryBIOFactory} and the client
        gate in front of the application's factory; the address is also the
        name the server's certificate must match.
        """
        endpoint = clientFromString(self.reactor,
                                    f"{self.prefix}:127.0.0.1:8443:{self.clientArgs()}")
        self.assertIsInstance(endpoint._inner, HostnameEndpoint)
        app = Collector()
        d = endpoint.connect(app)
        self.reactor.advance(0)
        [(host, port, factory, timeout, bindAddress)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout, bindAddress), ("127.0.0.1", 8443, 30, None))
        tls = factory._wrappedFactory
        self.assertIsInstance(tls, TLSMemoryBIOFactory)
        self.assertIs(tls.protocol, GatedTLSProtocol)
        self.assertIsInstance(tls.wrappedFactory, ClientGateFactory)
        self.assertIs(tls.wrappedFactory.wrappedFactory, app)
        self.assertEqual(endpoint.hostname, "127.0.0.1")
        self.assertNoResult(d)

    def test_parseAgainstMemoryReactor(self) -> None:
        """
        Parsing a client string against Twisted's plain L{MemoryReactor}
        gives a L{HostnameEndpoint} for the host and port, and the host is
        the name the server's certificate must match.
        """
        reactor = MemoryReactor()
        endpoint = clientFromString(
            reactor, f"{self.prefix}:127.0.0.1:8443:timeout=9:{self.clientArgs()}")
        self.assertIsInstance(endpoint._inner, HostnameEndpoint)
        self.assertEqual((endpoint._inner._hostText, endpoint._inner._port,
                          endpoint._inner._timeout), ("127.0.0.1", 8443, 9.0))
        self.assertEqual(endpoint.hostname, "127.0.0.1")

    def test_hostNameResolved(self) -> None:
        """
        A DNS host name is resolved (here by the memory reactor's resolver)
        and is the name the server's certificate must match.
        """
        endpoint = clientFromString(self.reactor,
                                    f"{self.prefix}:localhost:8443:{self.clientArgs()}")
        endpoint.connect(Collector())
        self.reactor.advance(0)
        [(host, port, factory, timeout, bindAddress)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 8443))
        self.assertEqual(endpoint.hostname, "localhost")

    def test_everySSLArgument(self) -> None:
        """
        Every argument C{ssl:} accepts for clients (host, port, timeout,
        bindAddress, certKey, privateKey, caCertsDir, hostname) is accepted
        with the same meaning.
        """
        endpoint = clientFromString(
            self.reactor,
            f"{self.prefix}:host=127.0.0.1:port=8443:timeout=7:bindAddress=127.0.0.1"
            f":certKey={self.path('client.pem')}:privateKey={self.path('client.key')}"
            f":caCertsDir={self.path('cadir')}:hostname=localhost")
        policy = endpoint.policy
        self.assertEqual(policy.credentials.certificate, self.path("client.pem"))
        self.assertEqual(policy.credentials.privateKey, self.path("client.key"))
        self.assertEqual(policy.trust.caDir, self.path("cadir"))
        self.assertEqual(endpoint.hostname, "localhost")
        endpoint.connect(Collector())
        self.reactor.advance(0)
        [(host, port, factory, timeout, bindAddress)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout, bindAddress),
                         ("127.0.0.1", 8443, 7.0, ("127.0.0.1", 0)))

    def test_endpointTCP(self) -> None:
        """
        C{endpoint=} wraps another client endpoint string, here C{tcp:};
        C{hostname=} names the server.
        """
        endpoint = clientFromString(
            self.reactor,
            f"{self.prefix}:endpoint=tcp\\:127.0.0.1\\:8443:hostname=localhost:"
            f"{self.clientArgs()}")
        self.assertIsInstance(endpoint._inner, TCP4ClientEndpoint)
        self.assertEqual(endpoint.hostname, "localhost")
        endpoint.connect(Collector())
        [(host, port, factory, timeout, bindAddress)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 8443))

    def test_endpointUNIX(self) -> None:
        """
        C{endpoint=} wraps a C{unix:} client endpoint.
        """
        socket = os.path.join(self.pki.directory, "tls.sock")
        endpoint = clientFromString(
            self.reactor,
            f"{self.prefix}:endpoint=unix\\:path={socket}:hostname=localhost:"
            f"{self.clientArgs()}")
        self.assertIsInstance(endpoint._inner, UNIXClientEndpoint)
        endpoint.connect(Collector())
        [(address, factory, timeout, checkPID)] = self.reactor.unixClients
        self.assertEqual(address, socket)
        self.assertIsInstance(factory._wrappedFactory, TLSMemoryBIOFactory)

    def test_policyFile(self) -> None:
        """
        C{policy=} reads a TOML policy file; the string's other arguments
        override its keys.
        """
        lines = ['name = "hl7-outbound"\n', 'caCerts = "ca.pem"\n',
                 'hostname = "elsewhere.example"\n', 'maxVersion = "TLSv1.3"\n']
        if self.mutual:
            lines += ['certKey = "client.pem"\n', 'privateKey = "client.key"\n']
        toml = self.pki.write(f"{self.prefix}-client.toml", "".join(lines).encode())
        endpoint = clientFromString(
            self.reactor,
            f"{self.prefix}:127.0.0.1:8443:policy={toml}:hostname=localhost:"
            "minVersion=TLSv1.3")
        self.assertEqual(endpoint.policy.name, "hl7-outbound")
        self.assertEqual(endpoint.policy.trust.caFile, self.path("ca.pem"))
        self.assertEqual(endpoint.policy.versions.minimum, TLSVersion.TLSv1_3)
        self.assertEqual(endpoint.hostname, "localhost")

    def test_unknownArgument(self) -> None:
        """
        An argument neither C{ssl:} nor the policy knows is refused when the
        string is parsed, naming it.
        """
        error = self.assertRaises(
            EndpointArgumentError, clientFromString, self.reactor,
            f"{self.prefix}:127.0.0.1:8443:verify=no:{self.clientArgs()}")
        self.assertEqual(error.argument, "verify")

    def test_connectsInMemory(self) -> None:
        """
        A server and a client parsed from strings of this prefix complete a
        handshake in memory, and the client's bytes come back.
        """
        server = serverFromString(self.reactor, f"{self.prefix}:8443:{self.serverArgs()}")
        client = clientFromString(self.reactor,
                                  f"{self.prefix}:localhost:8443:{self.clientArgs()}")
        serverApp, clientApp = Collector(echo=True), Collector()
        connection = connectEndpoints(server, client, serverApp, clientApp, self.reactor)
        self.successResultOf(connection.clientGate.whenReady)
        clientApp.built[0].transport.write(b"ping")
        connection.pump.flush()
        self.assertEqual(b"".join(serverApp.built[0].received), b"ping")
        self.assertEqual(b"".join(clientApp.built[0].received), b"ping")
        certificate = serverApp.built[0].transport.getPeerCertificate()
        if self.mutual:
            self.assertIn(b"PUMP-0042", certificate.get_subject().CN.encode())
        else:
            self.assertIsNone(certificate)


class SecureSSLServerTests(_ServerTestsMixin, SynchronousTestCase):
    """
    The C{securessl:} server endpoint parser.
    """

    prefix = "securessl"
    mutual = False


class MutualTLSServerTests(_ServerTestsMixin, SynchronousTestCase):
    """
    The C{mtls:} server endpoint parser.
    """

    prefix = "mtls"
    mutual = True

    def test_caRequired(self) -> None:
        """
        An C{mtls:} server without C{caCerts} is refused when parsed,
        naming C{caCerts}.
        """
        error = self.assertRaises(
            EndpointArgumentError, serverFromString, self.reactor,
            f"mtls:8443:certKey={self.path('server.pem')}:privateKey={self.path('server.key')}")
        self.assertEqual(error.argument, "caCerts")


class SecureSSLClientTests(_ClientTestsMixin, SynchronousTestCase):
    """
    The C{securessl:} client endpoint parser.
    """

    prefix = "securessl"
    mutual = False


class MutualTLSClientTests(_ClientTestsMixin, SynchronousTestCase):
    """
    The C{mtls:} client endpoint parser.
    """

    prefix = "mtls"
    mutual = True

    def test_certificateRequired(self) -> None:
        """
        An C{mtls:} client without its own certificate is refused when
        parsed, naming C{certKey}.
        """
        error = self.assertRaises(
            EndpointArgumentError, clientFromString, self.reactor,
            f"mtls:127.0.0.1:8443:caCerts={self.path('ca.pem')}")
        self.assertEqual(error.argument, "certKey")


class ParserObjectTests(SynchronousTestCase):
    """
    The real parsers behind the light plugin objects provide the same
    interfaces.
    """

    def test_interfaces(self) -> None:
        """
        L{securetcp._parsers.SecureServerParser} and
        L{securetcp._parsers.SecureClientParser} provide the parser
        interfaces.
        """
        from securetcp._parsers import SecureClientParser, SecureServerParser

        self.assertTrue(verifyObject(IStreamServerEndpointStringParser,
                                     SecureServerParser("mtls", True)))
        self.assertTrue(verifyObject(IStreamClientEndpointStringParserWithReactor,
                                     SecureClientParser("mtls", True)))


def _emptyCRL(pki: TestPKI) -> str:
    """
    Write an empty CRL of the test CA and return its path.
    """
    return pki.write("empty.crl", pki.crl())


class CollaboratorTests(SynchronousTestCase):
    """
    A server endpoint builds its collaborators from the policy and hands
    them to each gate it makes, by constructor; each provides the small
    interface it is typed by.
    """

    def test_gateCollaborators(self) -> None:
        """
        The gate of a server with CRLs, OCSP and stapling gets the
        endpoint's connection creator (the policy and materials in force),
        OCSP checker, staple fetcher, CRL watcher, limits and audit sink,
        each verified against its interface.
        """
        pki = sharedPKI()
        clock = Clock()
        emitter = AuditEmitter()
        limits = Limits(maxConnections=10, maxHandshakes=5)
        endpoint = SecureServerEndpoint(
            clock, None, buildPolicy(  # type: ignore[arg-type]
                certKey=pki.path("server.pem"), privateKey=pki.path("server.key"),
                caCerts=pki.path("ca.pem"), crl=_emptyCRL(pki), ocsp="prefer", staple=True,
                ocspResponder="http://ocsp.invalid/"),
            mutual=True, clock=clock, emitter=emitter, limits=limits,
            ocspPost=lambda url, body, timeout: Deferred())
        gate = endpoint.wrapFactory(Factory.forProtocol(Protocol)).wrappedFactory
        self.assertIs(gate.inForce, endpoint.creator)
        self.assertTrue(verifyObject(ICRLTarget, gate.inForce))
        self.assertIs(gate.ocsp, endpoint.ocsp)
        self.assertTrue(verifyObject(IOCSPChecker, gate.ocsp))
        self.assertIs(gate.stapler, endpoint.stapler)
        self.assertTrue(verifyObject(IStapler, gate.stapler))
        self.assertIs(gate.crlWatcher, endpoint.crlWatcher)
        self.assertTrue(verifyObject(ICRLWatcher, gate.crlWatcher))
        self.assertIs(gate.emitter, emitter)
        self.assertTrue(verifyObject(IAuditSink, gate.emitter))
        self.assertEqual((gate.limits, gate.clock), (limits, clock))

    def test_clientCollaborators(self) -> None:
        """
        A client's gate gets the endpoint's connection creator, OCSP checker
        and hostname; it has no staple fetcher, CRL watcher or limits.
        """
        pki = sharedPKI()
        clock = Clock()
        endpoint = SecureClientEndpoint(
            clock, None, buildPolicy(caCerts=pki.path("ca.pem"),  # type: ignore[arg-type]
                                     ocsp="require"),
            hostname="localhost", clock=clock,
            ocspPost=lambda url, body, timeout: Deferred())
        _, gate = endpoint.wrapFactory(Factory.forProtocol(Protocol))
        self.assertIs(gate.inForce, endpoint.creator)
        self.assertTrue(verifyObject(IOCSPChecker, gate.ocsp))
        self.assertEqual((gate.hostname, gate.stapler, gate.crlWatcher, gate.limits),
                         ("localhost", None, None, Limits()))
