"""
Property tests for the C{securessl:} and C{mtls:} endpoint-string parsers:
whatever an operator writes, parsing it either gives an endpoint or raises
L{EndpointArgumentError} -- never another exception.

The strings come from a grammar of plausible and garbage arguments: known
argument names with plausible or random values, unknown names, escaped
colons (and backslashes and equals signs), empty values, extra positional
arguments and raw garbage segments.

What Twisted itself rejects
===========================

Twisted tokenizes a description (C{twisted.internet.endpoints._parse})
before it even looks up the plugin for the prefix, so two kinds of string
never reach securetcp's parser and cannot be turned into an
L{EndpointArgumentError}:

  - a string ending in an unpaired backslash: the tokenizer calls
    C{next()} for the escaped character inside a generator, and the
    C{StopIteration} becomes a C{RuntimeError} (PEP 479);
  - an argument I{name} with non-ASCII characters: C{_parse} passes names
    through C{nativeString}, which raises C{UnicodeEncodeError}.

The grammar keeps argument names and raw garbage ASCII, so the second never
arises in the property (it has its own test below); the first can, and for
exactly those strings the property expects Twisted's C{RuntimeError}
instead.  Values may be any text.
"""

from __future__ import annotations

import os
import string
import warnings
from typing import Any, Callable, Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import _parse, clientFromString, serverFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._parsers import CLIENT_ARGUMENTS, SERVER_ARGUMENTS
from securetcp.config import POLICY_OPTIONS, buildPolicy
from securetcp.errors import EndpointArgumentError, PolicyError
from securetcp.policy import LegacyProfileWarning

from ._pki import TestPKI, sharedPKI


def _addPolicyFiles(pki: TestPKI) -> None:
    """
    Add a valid and an invalid policy file, a file that holds no PEM and
    empty directories to C{pki}.
    """
    pki.write("good.toml", b'name = "fuzz"\nclientAuth = "none"\n')
    pki.write("legacy.toml", b'profile = "legacy"\n')
    pki.write("bad.toml", b'name = "unterminated\n')
    pki.write("unknown.toml", b'bogus = 1\n')
    pki.write("notpem.txt", b"not pem\n")
    os.makedirs(pki.path("empty"))
    os.makedirs(pki.path("audit"))


def _pki() -> TestPKI:
    """
    One test PKI for the whole module, made on first use, with a valid and
    an invalid policy file and an empty directory.
    """
    return sharedPKI("strings", _addPolicyFiles)


def _escape(text: str) -> str:
    """
    Escape a value so that Twisted's tokenizer gives it back unchanged.
    """
    return "".join("\\" + c if c in "\\:=" else c for c in text)


def _plausible(pki: TestPKI) -> Dict[str, List[str]]:
    """
    Plausible values, good and bad, for the arguments securetcp knows.
    """
    p = pki.path
    files = [p("server.pem"), p("server.key"), p("client.pem"), p("client.key"),
             p("ca.pem"), p("notpem.txt"), p("nope.pem"), pki.directory, "server.pem",
             "a\x00b"]
    return {
        "port": ["0", "443", "6661", "65535", "65536", "-1", "x", "1.5",
                 "\N{FULLWIDTH DIGIT SIX}\N{FULLWIDTH DIGIT ONE}", "6_661"],
        "interface": ["127.0.0.1", "::1", "", "0.0.0.0", "lo"],
        "backlog": ["50", "0", "1", "lots"],
        "endpoint": ["tcp:0", "tcp6:0:interface=::1", "unix:" + p("sock"), "bogus:1",
                     "tcp:notaport", "ssl:0:privateKey=" + p("nope.pem"),
                     "systemd:domain=INET:index=99", "securessl:0", "tcp:0\\",
                     "tcp:localhost:443", "unix:" + p("sock") + ":timeout=x", ""],
        "policy": [p("good.toml"), p("legacy.toml"), p("bad.toml"), p("unknown.toml"),
                   p("nope.toml"), pki.directory, "a\x00b"],
        "auditLog": [p("audit/log.jsonl"), p("nope/log.jsonl"), p("audit"),
                     p("audit/other.jsonl")],
        "host": ["localhost", "127.0.0.1", "::1", "[::1]", "a..b", "xn--a", "",
                 "lab.example.org", "\N{SNOWMAN}.example", "-x-"],
        "timeout": ["30", "0.5", "0", "-1", "nan", "inf", "x"],
        "bindAddress": ["127.0.0.1", "::1", "garbage"],
        "profile": ["nist-800-52r2", "mozilla-modern", "mozilla-intermediate", "legacy",
                    "nist-800-52r3"],
        "minVersion": ["TLSv1", "TLSv1.2", "1.3", "TLSv9"],
        "maxVersion": ["TLSv1.2", "TLSv1.3", "tls1.1", "SSLv3"],
        "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256,"
                    "ECDHE-RSA-AES256-GCM-SHA384", "AES128-SHA", "RC4-MD5",
                    "ECDHE-RSA-CHACHA20-POLY1305"],
        "ciphersuites": ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
                         "TLS_AES_512_GCM_SHA512"],
        "groups": ["P-256", "?SecP256r1MLKEM768,P-256", "X25519:P-384", "bogus", "?bogus",
                   "?X25519MLKEM768"],
        "caCerts": files,
        "caCertsDir": [pki.directory, p("empty"), p("nope")],
        "systemCAs": ["true", "false", "maybe"],
        "certKey": files,
        "privateKey": files,
        "extraCertChain": files,
        "pkcs12": files,
        "passphrase": ["pass:x", "env:SECURETCP_NOT_SET", "file:" + p("nope"),
                       "file:" + p("ca.pem"), "hunter2"],
        "dhParameters": files,
        "clientAuth": ["none", "optional", "required", "always"],
        "hostname": ["localhost", "127.0.0.1", "[::1]", "a b", "a..b"],
        "allowPeers": ["dns:*.example", "uri:spiffe://x/*", "ip:10.0.0.0/8",
                       "cn:PUMP-0042,email:*@x.example", "bogus", "dns:a..b"],
        "pinSPKI": ["sha256/" + "A" * 43 + "=", "ab" * 32, "bad"],
        "handshakeTimeout": ["10", "0", "601", "nan", "x", "\N{FULLWIDTH DIGIT FIVE}"],
        "name": ["hl7-inbound", "Station S\N{LATIN SMALL LETTER U WITH DIAERESIS}d",
                 "a\N{RIGHT-TO-LEFT OVERRIDE}b", "x" * 129, "a\nb"],
        "alpn": ["h2,http/1.1", "x" * 300, "mllp"],
        "crl": [p("ca.pem"), p("notpem.txt"), p("nope.crl")],
        "crlDir": [pki.directory, p("empty"), p("nope")],
        "revocation": ["hard", "soft", "maybe"],
        "revocationScope": ["leaf", "chain", "tree"],
        "crlReload": ["60", "0", "-1", "x"],
        "crlEnforceLive": ["true", "no", "x"],
    }


_ASCII_NAME = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z")
_GARBAGE = st.text(alphabet=string.ascii_letters + string.digits + ":=\\/.-_ ", max_size=12)


def _segments(own: Dict[str, str], messy: bool) -> Any:
    """
    A strategy for the argument segments of a description, for an endpoint
    kind whose own arguments are C{own}.  Unless C{messy}, only known
    argument names are used (with plausible or random values), so that the
    string gets past the argument-name check to the values.
    """
    names = sorted(set(own) | set(POLICY_OPTIONS))
    kinds = (["known"] * 3 + ["random", "unknown", "empty", "positional", "garbage"]
             if messy else ["known"] * 4 + ["random"])

    @st.composite
    def segments(draw: Any) -> List[str]:
        plausible = _plausible(_pki())
        out: List[str] = []
        for _ in range(draw(st.integers(0, 5 if messy else 3))):
            kind = draw(st.sampled_from(kinds))
            if kind in ("known", "random", "empty"):
                name = draw(st.sampled_from(names))
                if kind == "known" and name in plausible:
                    value = draw(st.sampled_from(plausible[name]))
                elif kind == "empty" or name == "auditLog":
                    # auditLog creates files: only ever give it known paths
                    value = "" if kind == "empty" else plausible["auditLog"][0]
                else:
                    value = draw(st.text(max_size=15))
                out.append(f"{name}={_escape(value)}")
            elif kind == "unknown":
                name = draw(_ASCII_NAME.filter(lambda n: n not in names))
                out.append(f"{name}={_escape(draw(st.text(max_size=8)))}")
            elif kind == "positional":
                out.append(_escape(draw(st.one_of(
                    st.sampled_from(["0", "443", "localhost", "127.0.0.1", "", "x"]),
                    st.text(max_size=8)))))
            else:
                out.append(draw(_GARBAGE))
        return out

    return segments()


@st.composite
def _serverDescriptions(draw: Any) -> str:
    pki = _pki()
    prefix = draw(st.sampled_from(["securessl", "mtls"]))
    messy = draw(st.booleans())
    base: List[str] = []
    if not messy or draw(st.booleans()):
        base.append(draw(st.sampled_from(["0", "6661", "port=0"])))
    if not messy or draw(st.booleans()):
        base += [f"certKey={_escape(pki.path('server.pem'))}",
                 f"privateKey={_escape(pki.path('server.key'))}"]
    if (not messy and prefix == "mtls") or draw(st.booleans()):
        base.append(f"caCerts={_escape(pki.path('ca.pem'))}")
    segments = base + draw(_segments(SERVER_ARGUMENTS, messy))
    if messy:
        segments = draw(st.permutations(segments))
    return ":".join([prefix] + segments)


@st.composite
def _clientDescriptions(draw: Any) -> str:
    pki = _pki()
    prefix = draw(st.sampled_from(["securessl", "mtls"]))
    messy = draw(st.booleans())
    base: List[str] = []
    if not messy or draw(st.booleans()):
        base += draw(st.sampled_from([["localhost", "443"], ["127.0.0.1", "port=6661"],
                                      ["host=localhost", "port=443"]]))
    if (not messy and prefix == "mtls") or draw(st.booleans()):
        base += [f"certKey={_escape(pki.path('client.pem'))}",
                 f"privateKey={_escape(pki.path('client.key'))}"]
    if draw(st.booleans()):
        base.append(f"caCerts={_escape(pki.path('ca.pem'))}")
    # positional host and port come first, to mean host and port
    return ":".join([prefix] + base + draw(_segments(CLIENT_ARGUMENTS, messy)))


def _twistedRejects(description: str) -> bool:
    """
    Whether Twisted's own tokenizer fails on C{description}: it ends in an
    unpaired backslash.
    """
    trailing = len(description) - len(description.rstrip("\\"))
    return trailing % 2 == 1


class EndpointStringProperties(SynchronousTestCase):
    """
    Parsing any endpoint string gives an endpoint or an
    L{EndpointArgumentError}.
    """

    def checkParse(self, parse: Callable[[Any, str], Any], interface: Any,
                   description: str, outcomes: Dict[str, int]) -> None:
        if _twistedRejects(description):
            self.assertRaises(RuntimeError, parse, MemoryReactor(), description)
            outcomes["twisted"] += 1
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LegacyProfileWarning)
            try:
                endpoint = parse(MemoryReactor(), description)
            except EndpointArgumentError as e:
                self.assertIsInstance(e, PolicyError)
                self.assertIsInstance(e, ValueError)
                self.assertTrue(str(e))
                outcomes["error"] += 1
                return
        self.assertTrue(interface.providedBy(endpoint), description)
        outcomes["endpoint"] += 1

    def assertMixedOutcomes(self, outcomes: Dict[str, int]) -> None:
        """
        The grammar is not vacuous: it produced working endpoints and
        errors.
        """
        self.assertGreater(outcomes["endpoint"], 0, outcomes)
        self.assertGreater(outcomes["error"], 0, outcomes)

    def test_server(self) -> None:
        """
        Any C{securessl:} or C{mtls:} server string parses into a server
        endpoint or raises L{EndpointArgumentError} (or, for a string ending
        in a lone backslash, Twisted's own C{RuntimeError}).
        """
        outcomes = {"endpoint": 0, "error": 0, "twisted": 0}

        @settings(max_examples=250)
        @given(_serverDescriptions())
        def prop(description: str) -> None:
            self.checkParse(serverFromString, IStreamServerEndpoint, description, outcomes)

        prop()
        self.assertMixedOutcomes(outcomes)

    def test_client(self) -> None:
        """
        Any C{securessl:} or C{mtls:} client string parses into a client
        endpoint or raises L{EndpointArgumentError} (or, for a string ending
        in a lone backslash, Twisted's own C{RuntimeError}).
        """
        outcomes = {"endpoint": 0, "error": 0, "twisted": 0}

        @settings(max_examples=250)
        @given(_clientDescriptions())
        def prop(description: str) -> None:
            self.checkParse(clientFromString, IStreamClientEndpoint, description, outcomes)

        prop()
        self.assertMixedOutcomes(outcomes)

    @given(st.text(max_size=30))
    def test_escapeRoundTrip(self, value: str) -> None:
        """
        The grammar's escaping gives any value back unchanged through
        Twisted's tokenizer, as a value and as a positional argument.
        """
        self.assertEqual(_parse(f"securessl:k={_escape(value)}"),
                         (["securessl"], {"k": value}))
        self.assertEqual(_parse(f"securessl:{_escape(value)}"), (["securessl", value], {}))


class TwistedRejectsTests(SynchronousTestCase):
    """
    The strings Twisted's tokenizer rejects before securetcp sees them.
    """

    def test_trailingBackslash(self) -> None:
        """
        A string ending in an unpaired backslash raises C{RuntimeError} in
        Twisted's tokenizer; a paired one does not.
        """
        self.assertRaises(RuntimeError, _parse, "securessl:0:certKey=a\\")
        self.assertTrue(_twistedRejects("securessl:0:certKey=a\\"))
        self.assertFalse(_twistedRejects("securessl:0:certKey=a\\\\"))
        self.assertEqual(_parse("securessl:0:certKey=a\\\\")[1], {"certKey": "a\\"})
        self.assertRaises(RuntimeError, serverFromString, MemoryReactor(), "securessl:0\\")
        self.assertRaises(RuntimeError, clientFromString, MemoryReactor(), "mtls:h:1\\")

    def test_nonASCIIName(self) -> None:
        """
        A non-ASCII argument name raises C{UnicodeEncodeError} in Twisted's
        parser; non-ASCII values are fine.
        """
        self.assertRaises(UnicodeEncodeError, _parse, "securessl:0:caf\N{LATIN SMALL LETTER E WITH ACUTE}=1")
        self.assertRaises(UnicodeEncodeError, serverFromString, MemoryReactor(),
                          "securessl:0:caf\N{LATIN SMALL LETTER E WITH ACUTE}=1")
        self.assertEqual(_parse("securessl:name=caf\N{LATIN SMALL LETTER E WITH ACUTE}")[1],
                         {"name": "caf\N{LATIN SMALL LETTER E WITH ACUTE}"})

    def test_unknownNonASCIIValueReachesUs(self) -> None:
        """
        A non-ASCII value does reach securetcp, which reports it as an
        L{EndpointArgumentError}.
        """
        self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                          "securessl:0:profile=n\N{LATIN SMALL LETTER I WITH DIAERESIS}st")


class UnescapedColonTests(SynchronousTestCase):
    """
    A value whose colons were not escaped is cut by Twisted's tokenizer;
    the error names the argument the option table says takes colons, and
    shows the value escaped.
    """

    def test_server(self) -> None:
        """
        An unescaped C{allowPeers} rule on a server string is reported as
        that argument, whole, with the escaped form as the fix.
        """
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  "mtls:21701:allowPeers=uri:spiffe://hospital.example/*")
        self.assertEqual((error.argument, error.value),
                         ("allowPeers", "uri:spiffe://hospital.example/*"))
        self.assertIn("allowPeers=uri\\:spiffe\\://hospital.example/*", error.fix)

    def test_client(self) -> None:
        """
        On a client string the host and port come first; the rest of an
        unescaped C{ocspResponder} URL is given back to it.
        """
        error = self.assertRaises(EndpointArgumentError, clientFromString, MemoryReactor(),
                                  "mtls:lab.example:6661:ocspResponder=http://ocsp:2560")
        self.assertEqual((error.argument, error.value),
                         ("ocspResponder", "http://ocsp:2560"))
        self.assertIn("http\\://ocsp\\:2560", error.fix)

    def test_otherwiseTooMany(self) -> None:
        """
        Without an argument that takes colons, extra positional arguments
        are reported as such, naming no argument.
        """
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  "securessl:8443:9")
        self.assertIsNone(error.argument)
        self.assertIn("too many positional arguments", str(error))


class RepeatedArgumentTests(SynchronousTestCase):
    """
    An argument written twice is refused, naming it, though Twisted hands
    the parser only the last value (L{securetcp._description}).
    """

    def server(self, *arguments: str) -> str:
        pki = _pki()
        return ":".join(["mtls:0", f"certKey={_escape(pki.path('server.pem'))}",
                         f"privateKey={_escape(pki.path('server.key'))}", *arguments])

    def test_server(self) -> None:
        """
        C{caCerts=A:caCerts=B} on a server string is an
        L{EndpointArgumentError} naming C{caCerts}, showing both values.
        """
        pki = _pki()
        error = self.assertRaises(
            EndpointArgumentError, serverFromString, MemoryReactor(),
            self.server(f"caCerts={_escape(pki.path('ca.pem'))}",
                        f"caCerts={_escape(pki.path('other-ca.pem'))}"))
        self.assertEqual(error.argument, "caCerts")
        self.assertIn("given 2 times", error.problem)
        self.assertIn(repr(pki.path("ca.pem")), error.problem)
        self.assertIn(repr(pki.path("other-ca.pem")), error.problem)
        self.assertEqual(error.fix, "write caCerts= once")

    def test_client(self) -> None:
        """
        A repeated argument of a client string is refused as well; for an
        argument that takes a list, the fix says to comma-separate.
        """
        error = self.assertRaises(EndpointArgumentError, clientFromString, MemoryReactor(),
                                  "securessl:localhost:443:alpn=h2:alpn=http/1.1")
        self.assertEqual(error.argument, "alpn")
        self.assertIn("comma-separated", error.fix)

    def test_hiddenValues(self) -> None:
        """
        The values of a repeated C{passphrase} are not shown.
        """
        error = self.assertRaises(
            EndpointArgumentError, serverFromString, MemoryReactor(),
            self.server("passphrase=pass\\:first-secret", "passphrase=pass\\:second-secret"))
        self.assertEqual(error.argument, "passphrase")
        self.assertNotIn("secret", str(error))

    def test_firstRepeatNamed(self) -> None:
        """
        With several repeated arguments, the first one written is named,
        before any other problem of the string is looked at.
        """
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  "mtls:0:bogus=1:crl=a:name=x:crl=b:name=y")
        self.assertEqual(error.argument, "crl")

    def test_twistedCallers(self) -> None:
        """
        The repeat is seen however Twisted's C{serverFromString} is reached:
        through C{twisted.application.strports}, as C{twistd web --listen}
        does.
        """
        from twisted.application import strports
        from twisted.internet.protocol import Factory

        error = self.assertRaises(EndpointArgumentError, strports.service,
                                  self.server("name=a", "name=b"), Factory(),
                                  reactor=MemoryReactor())
        self.assertEqual(error.argument, "name")

    def test_twistdWeb(self) -> None:
        """
        C{twistd web --listen} with a repeated argument exits with an error
        naming it, and serves nothing.
        """
        import subprocess

        from ._programs import TWISTD, subprocessEnvironment

        if TWISTD is None:
            raise SkipTest("twistd is not installed")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        done = subprocess.run([TWISTD, "-n", "--pidfile=", "web", "--listen",
                               "mtls:0:caCerts=a.pem:caCerts=b.pem", "--path", directory],
                              capture_output=True, env=subprocessEnvironment(), cwd=directory,
                              timeout=30)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn(b"caCerts='b.pem': given 2 times ('a.pem', 'b.pem')",
                      done.stdout + done.stderr)

    def test_innerEndpoint(self) -> None:
        """
        The string of C{endpoint=} (which Twisted's own parser may read,
        keeping the last of a repeated argument) is checked for repeats too,
        and the arguments of the outer string are not mistaken for its own.
        """
        ca = f"caCerts={_escape(_pki().path('ca.pem'))}"
        endpoint = serverFromString(MemoryReactor(), self.server(
            "endpoint=tcp\\:0\\:interface=127.0.0.1", ca).replace(":0:", ":", 1))
        self.assertTrue(IStreamServerEndpoint.providedBy(endpoint))
        error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                  self.server("endpoint=tcp\\:0\\:backlog=1\\:backlog=2", ca)
                                  .replace(":0:", ":", 1))
        self.assertEqual((error.argument, error.value), ("endpoint", "tcp:0:backlog=1:backlog=2"))
        self.assertIn("backlog is given 2 times", error.problem)

    def test_calledDirectly(self) -> None:
        """
        A parser called with keyword arguments, not by Twisted's
        C{serverFromString}, has no description to check and parses as
        before.
        """
        from securetcp._parsers import SecureServerParser

        pki = _pki()
        endpoint = SecureServerParser("mtls", True).parseStreamServer(
            MemoryReactor(), "0", certKey=pki.path("server.pem"),
            privateKey=pki.path("server.key"), caCerts=pki.path("ca.pem"))
        self.assertTrue(IStreamServerEndpoint.providedBy(endpoint))

    def test_description(self) -> None:
        """
        L{split} keeps every argument in order as Twisted's tokenizer
        splits it, escapes undone; L{repeated} lists each one given more
        than once with its values.
        """
        from securetcp._description import repeated, split

        description = "mtls:6661:crl=a\\:b:name=x=y:crl=c:6662:crl=d"
        self.assertEqual(split(description),
                         (["mtls", "6661", "6662"],
                          [("crl", "a:b"), ("name", "x=y"), ("crl", "c"), ("crl", "d")]))
        self.assertEqual(repeated(description), [("crl", ["a:b", "c", "d"])])
        self.assertEqual(repeated("mtls:6661:crl=a:name=b"), [])
        positional, named = split(description)
        self.assertEqual((positional, dict(named)), tuple(_parse(description)))

    def test_twistedPrivateNames(self) -> None:
        """
        The private names of Twisted that L{securetcp._description} relies
        on are still there: C{_tokenize} and its token kinds, and the
        C{description} parameter of C{serverFromString} and
        C{clientFromString}.
        """
        from twisted.internet import endpoints

        from securetcp._description import TWISTED_PRIVATE

        for name in TWISTED_PRIVATE:
            function, _, parameter = name.partition("(")
            self.assertTrue(hasattr(endpoints, function), name)
            if parameter:
                code = getattr(endpoints, function).__code__
                self.assertEqual(code.co_varnames[:code.co_argcount].index(parameter[:-1]), 1)


class ASCIIDigitTests(SynchronousTestCase):
    """
    Integers and numbers of seconds are read in the ASCII digits only,
    though Python's C{int} and C{float} read any Unicode digit.
    """

    def test_fullWidthPort(self) -> None:
        """
        C{mtls:２１４６１} is refused naming C{port}, on servers and
        clients; so are other digits and C{_} between digits.
        """
        pki = _pki()
        keys = (f"certKey={_escape(pki.path('server.pem'))}:"
                f"privateKey={_escape(pki.path('server.key'))}:"
                f"caCerts={_escape(pki.path('ca.pem'))}")
        for port in ("\N{FULLWIDTH DIGIT TWO}\N{FULLWIDTH DIGIT ONE}\N{FULLWIDTH DIGIT FOUR}"
                     "\N{FULLWIDTH DIGIT SIX}\N{FULLWIDTH DIGIT ONE}",
                     "\N{ARABIC-INDIC DIGIT FOUR}\N{ARABIC-INDIC DIGIT FOUR}\N{ARABIC-INDIC DIGIT THREE}",
                     "6_661", " 6661", "+6661"):
            error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                      f"mtls:{port}:{keys}")
            self.assertEqual((error.argument, error.value), ("port", port))
            self.assertIn("digits 0-9", error.problem)
            error = self.assertRaises(EndpointArgumentError, clientFromString, MemoryReactor(),
                                      f"securessl:localhost:{port}")
            self.assertEqual(error.argument, "port")

    def test_everyInteger(self) -> None:
        """
        C{backlog}, C{maxConnections} and C{maxHandshakes} take ASCII
        digits only, as the port does.
        """
        pki = _pki()
        keys = (f"certKey={_escape(pki.path('server.pem'))}:"
                f"privateKey={_escape(pki.path('server.key'))}")
        five = "\N{FULLWIDTH DIGIT FIVE}"
        for name in ("backlog", "maxConnections", "maxHandshakes", "port"):
            port = "port=0:" if name != "port" else ""
            error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                      f"securessl:{port}{name}={five}:{keys}")
            self.assertEqual((error.argument, error.value), (name, five))

    def test_seconds(self) -> None:
        """
        Numbers of seconds, in endpoint strings and policy values alike,
        take ASCII only; ASCII decimals and exponents still work.
        """
        five = "\N{FULLWIDTH DIGIT FIVE}"
        error = self.assertRaises(EndpointArgumentError, clientFromString, MemoryReactor(),
                                  f"securessl:localhost:443:timeout={five}")
        self.assertEqual(error.argument, "timeout")
        for name in ("handshakeTimeout", "crlReload", "ocspTimeout"):
            error = self.assertRaises(PolicyError, buildPolicy, **{name: five})
            self.assertEqual(error.field, name)
        self.assertEqual(buildPolicy(handshakeTimeout="2.5").handshakeTimeout, 2.5)
        self.assertEqual(buildPolicy(crlReload="1e2").revocation.reloadInterval, 100.0)


class NameArgumentTests(SynchronousTestCase):
    """
    C{name=}, copied into every audit record, is bounded and printable.
    """

    def test_refused(self) -> None:
        """
        A name over 128 characters, or with a right-to-left override, a NUL
        or a newline, is refused naming C{name}, without echoing a long
        value whole.
        """
        for bad, problem in [("x" * 100_000, "longer than 128 characters"),
                             ("ward\N{RIGHT-TO-LEFT OVERRIDE}3", "RIGHT-TO-LEFT OVERRIDE"),
                             ("a\x00b", "U+0000"), ("a\nb", "U+000A")]:
            error = self.assertRaises(EndpointArgumentError, serverFromString, MemoryReactor(),
                                      f"securessl:0:certKey=a.pem:name={_escape(bad)}")
            self.assertEqual(error.argument, "name")
            self.assertIn(problem, error.problem)
            self.assertLess(len(str(error)), 400)

    def test_accepted(self) -> None:
        """
        A name of 128 printable characters, letters of any script and
        blanks included, is taken as written.
        """
        pki = _pki()
        for name in ("x" * 128, "Station S\N{LATIN SMALL LETTER U WITH DIAERESIS}d 3"):
            endpoint = serverFromString(
                MemoryReactor(), f"securessl:0:certKey={_escape(pki.path('server.pem'))}:"
                f"privateKey={_escape(pki.path('server.key'))}:name={name}")
            self.assertEqual(endpoint.policy.name, name)  # type: ignore[attr-defined]
