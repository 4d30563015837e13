"""
Bindings offered by installed distributions (the C{securetcp.bindings}
entry-point group), named from policies, endpoint strings and a real
C{twistd securetcp terminate} like the shipped ones.  The distributions
are written by the tests: a package and its C{.dist-info} (metadata and
C{entry_points.txt}) in a directory put on C{sys.path}, which is what
installing a wheel leaves behind.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Dict, List

from twisted.trial.unittest import SynchronousTestCase

from securetcp import PolicyError, buildPolicy
from securetcp.binding import installed
from securetcp.config import loadPolicyFile

from ._net import escape
from ._programs import subprocessEnvironment
from ._twistd import PEER_TIMEOUT, TapProcessMixin

#: the binding of docs/bindings.md: a first line HELLO NAME claims NAME
HELLO = '''
from zope.interface import implementer
from securetcp.binding import FirstMessage, IIdentityBinding
from securetcp.protocols import MalformedMessage

@implementer(IIdentityBinding)
class HelloBinding:
    name = "hello"
    claimKeys = {"helloName": "the NAME of the HELLO line"}
    maxBytes = 256

    def read(self, data):
        line, newline, _ = data.partition(b"\\n")
        if not newline:
            return None
        if not line.startswith(b"HELLO "):
            raise MalformedMessage("hello", "the first line is not HELLO NAME")
        return FirstMessage({"helloName": line[6:].decode("ascii", "replace")})

    def refusal(self, message, claim, policy, now):
        return b"DENIED\\n"

class NotABinding:
    name = "broken"

class Failing:
    def __init__(self):
        raise RuntimeError("no licence for this binding")

WRONG_NAME = HelloBinding()
WRONG_NAME.name = "goodbye"
'''

RULE = "uri:spiffe://hospital.example/ward3/*, helloName={cn}"


def writeDistribution(directory: str, name: str, module: str, source: str,
                      entryPoints: Dict[str, str]) -> None:
    """
    Write, in C{directory}, the package C{module} (its C{__init__.py} is
    C{source}) and the C{.dist-info} of distribution C{name} offering
    C{entryPoints} in the C{securetcp.bindings} group.
    """
    os.makedirs(os.path.join(directory, module), exist_ok=True)
    with open(os.path.join(directory, module, "__init__.py"), "w") as f:
        f.write(source)
    info = os.path.join(directory, f"{name.replace('-', '_')}-1.0.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[securetcp.bindings]\n" + "".join(f"{k} = {v}\n" for k, v in entryPoints.items()))


class InstalledDistributionMixin:
    """
    A distribution C{hospital-bindings} (package C{hospital_bindings})
    installed for the test: on C{sys.path}, and forgotten afterwards.
    """

    def installHello(self, extra: Dict[str, str] = {}) -> str:  # noqa: B006
        directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        writeDistribution(directory, "hospital-bindings", "hospital_bindings", HELLO,
                          {"hello": "hospital_bindings:HelloBinding", **extra})
        self.useDirectory(directory)
        return directory

    def useDirectory(self, directory: str) -> None:
        sys.path.insert(0, directory)
        importlib.invalidate_caches()
        self.addCleanup(self.forget, directory)  # type: ignore[attr-defined]

    def forget(self, directory: str) -> None:
        sys.path.remove(directory)
        for name in [m for m in sys.modules if m.split(".")[0].startswith("hospital_bindings")]:
            del sys.modules[name]
        installed._loaded.clear()
        importlib.invalidate_caches()


class InstalledBindingTests(InstalledDistributionMixin, SynchronousTestCase):
    """
    L{securetcp.binding.installed}: what an installed distribution offers
    is found by name, checked once, and refused with the distribution named
    when it cannot serve.
    """

    def test_namedLikeAShippedOne(self) -> None:
        """
        C{binding=hello} takes the installed binding, whose claims the rules
        may name; the shipped names still mean the shipped bindings.
        """
        self.installHello()
        policy = buildPolicy(binding="hello", bind=RULE, clientAuth="required")
        self.assertEqual(policy.binding.protocol.name, "hello")
        self.assertIn("hello", installed.installedNames())
        self.assertEqual(buildPolicy(binding="mqtt", clientAuth="required").binding.protocol.name,
                         "mqtt")

    def test_policyFile(self) -> None:
        """
        A policy file names it as it names a shipped binding, with its
        rules in C{[[bind]]} tables.
        """
        self.installHello()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('clientAuth = "required"\nbinding = "hello"\n[[bind]]\n'
                    'peer = "uri:spiffe://hospital.example/ward3/*"\nhelloName = "{cn}"\n')
        policy = loadPolicyFile(path)
        self.assertEqual(policy.binding.protocol.name, "hello")
        self.assertEqual(len(policy.binding.rules), 1)

    def test_loadedOnce(self) -> None:
        """
        Every policy that names it gets the same provider.
        """
        self.installHello()
        first = buildPolicy(binding="hello", bind=RULE, clientAuth="required")
        second = buildPolicy(binding="HELLO", bind=RULE, clientAuth="required")
        self.assertIs(first.binding.protocol, second.binding.protocol)

    def test_unknownListsInstalled(self) -> None:
        """
        An unknown name is refused, listing the shipped and the installed
        bindings and how to offer another.
        """
        self.installHello()
        e = self.assertRaises(PolicyError, buildPolicy, binding="hellp", clientAuth="required")
        self.assertIn("hl7, dicom, mqtt, hello", str(e))
        self.assertIn("securetcp.bindings entry-point group", str(e))

    def assertRefused(self, name: str, *words: str) -> None:
        e = self.assertRaises(PolicyError, buildPolicy, binding=name, clientAuth="required")
        for word in words:
            self.assertIn(word, str(e))

    def test_cannotLoad(self) -> None:
        """
        An entry point whose object cannot be made is refused, naming it,
        the distribution and the error.
        """
        self.installHello({"failing": "hospital_bindings:Failing",
                           "missing": "hospital_bindings.nowhere:Missing"})
        self.assertRefused("failing", "hospital_bindings:Failing (hospital-bindings 1.0)",
                           "cannot be loaded", "no licence for this binding")
        self.assertRefused("missing", "hospital_bindings.nowhere:Missing", "cannot be loaded",
                           "No module named")

    def test_notABinding(self) -> None:
        """
        An object that does not provide L{IIdentityBinding} is refused.
        """
        self.installHello({"broken": "hospital_bindings:NotABinding"})
        self.assertRefused("broken", "does not provide IIdentityBinding", "hospital-bindings 1.0")

    def test_otherName(self) -> None:
        """
        A binding that calls itself otherwise than its entry point is
        refused: audit records and errors would name another protocol.
        """
        self.installHello({"wrongname": "hospital_bindings:WRONG_NAME"})
        self.assertRefused("wrongname", "is called 'goodbye'")

    def test_twoDistributions(self) -> None:
        """
        Two distributions offering different objects under one name are
        refused, both named: neither is picked silently.
        """
        self.installHello()
        other = os.path.abspath(self.mktemp())
        writeDistribution(other, "other-bindings", "hospital_bindings_other",
                          "from hospital_bindings import HelloBinding\n",
                          {"hello": "hospital_bindings_other:HelloBinding"})
        self.useDirectory(other)
        self.assertRefused("hello", "two installed distributions", "hospital-bindings 1.0",
                           "other-bindings 1.0")


class InstalledBindingPeerTests(InstalledDistributionMixin, TapProcessMixin,
                                SynchronousTestCase):
    """
    A real C{twistd securetcp terminate} whose endpoint string names an
    installed binding, with C{openssl s_client} as the peer.
    """

    environment: Dict[str, str]

    def setUp(self) -> None:
        TapProcessMixin.setUp(self)
        directory = self.installHello()
        self.environment = {"PYTHONPATH": directory + os.pathsep
                            + subprocessEnvironment()["PYTHONPATH"]}

    def lines(self, port: int, first: bytes, last: bytes) -> List[bytes]:
        """
        Connect as C{client}, send C{first} and a line, wait for C{last} to
        come back, close; the lines that came back.
        """
        peer = self.sClient(port)
        peer.send(first + b"\n" + b"ping\n")
        peer.waitFor(last + b"\n", PEER_TIMEOUT, repr(last))
        peer.closeStdin()
        peer.waitExit()
        return peer.out.splitlines()

    def test_terminate(self) -> None:
        """
        C{binding=hello} in a C{--listen} string: the client whose
        certificate's CN it claims gets through to the backend; one that
        claims another name is answered C{DENIED} and audited, and the
        backend never sees it.
        """
        backendPort, _, count = self.backend()

        def listen(port: int) -> List[str]:
            flag, description = self.mtlsListen(port)
            return [flag, description + ":binding=hello:bind=" + escape(RULE)]

        port, _ = self.twistd("terminate", "--backend", f"tcp:127.0.0.1:{backendPort}",
                              "--audit-log", self.audit, listen=listen)
        self.assertEqual(self.lines(port, b"HELLO PUMP-0042", b"backend:ping"),
                         [b"backend:HELLO PUMP-0042", b"backend:ping"])
        self.assertEqual(self.lines(port, b"HELLO PUMP-0043", b"DENIED"), [b"DENIED"])
        record = self.waitForEvent("handshake.rejected", reason="protocol_identity_mismatch")[0]
        self.assertEqual(record["binding"]["claims"], {"helloName": "PUMP-0043"})
        with open(count) as f:
            self.assertEqual(f.read(), "1")
