"""
The documentation's commands and code samples, executed.

A fenced block in C{docs/*.md} or C{README.md} is run when an HTML comment
right before it says how:

    <!-- file: NAME -->            write the block to NAME in the page's directory
    <!-- run -->                   run the block with bash -e; it must exit 0
    <!-- run: exit N -->          ... it must exit N
    <!-- run: expect "TEXT" -->    ... and its output must contain TEXT (repeatable)
    <!-- run: background PORT --> start it, wait until PORT accepts connections,
                                   stop it when the page is done (or when a later
                                   background block of the page takes PORT)
    <!-- test -->                  a python block: run it with this interpreter
                                   (takes C{exit N} and C{expect "TEXT"} too)
    <!-- not run: REASON -->       not executed, and the page says why

Each page's blocks run in order in one fresh temporary directory, with
C{python} and C{twistd} from this interpreter's environment first on the
C{PATH} and the example ports (6661, 2575, 2576, 6443, 8443) replaced by free
ones.  Every C{sh} and C{python} block must carry one of these comments
(L{CoverageTests}), so no command or sample escapes silently; an unlabelled
block that starts with a command must be labelled C{sh} (and run) or
C{text} (a synopsis).

The reference pages assume certificates and files that a reader already
has; L{fixture} makes them in the page's directory before its first block
runs, for the pages in L{FIXTURE_PAGES}.  The tutorial, the how-tos, the
compliance page, docs/pki.md and docs/cli.md make their own, from an empty
directory, as a reader would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import attrs
from twisted.trial.unittest import SkipTest, SynchronousTestCase

import securetcp

from ._net import freePort

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DOCS = os.path.join(_ROOT, "docs")
_README = "README.md"
# where the securetcp package (and, in a checkout, the twisted/plugins dropin) lives
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(securetcp.__file__)))
_BLOCK = re.compile(
    r"(?:^[ \t]*<!--\s*(?P<kind>file|run|test|not run)(?::\s*(?P<options>.*?))?\s*-->"
    r"[ \t]*\n)?"
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.S | re.M)
_EXAMPLE_PORTS = ("6661", "2575", "2576", "6443", "8443")
#: languages of blocks that are commands or code, which must be run or say why not
_CODE_LANGS = ("sh", "bash", "shell", "console", "python", "py", "pycon")
_COMMANDS = ("python ", "python3 ", "twistd ", "openssl ", "curl ", "pip ", "tox ", "kill ",
             "trial ")
STEP_TIMEOUT = 120.0


@attrs.frozen
class Block:
    """
    One fenced block of a page and how the comment before it says to run it.
    """

    page: str
    line: int
    kind: Optional[str]
    options: str
    lang: str
    body: str

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> List[str]:
    """
    The pages of C{docs/}, and C{README.md} when it is next to them (tox
    copies it with the docs).
    """
    if not os.path.isdir(_DOCS):
        raise SkipTest(f"{_DOCS} is not available (docs are not next to the tests)")
    found = sorted(n for n in os.listdir(_DOCS) if n.endswith(".md"))
    if os.path.exists(os.path.join(_ROOT, _README)):
        found.append(_README)
    return found


def pagePath(page: str) -> str:
    return os.path.join(_ROOT if page == _README else _DOCS, page)


def _dedent(body: str, indent: str) -> str:
    return "".join(line[len(indent):] if line.startswith(indent) else line
                   for line in body.splitlines(True))


def blocks(page: str) -> List[Block]:
    """
    Every fenced block of C{page}, in order (an indented block, in a list
    item, is dedented).
    """
    with open(pagePath(page), encoding="utf-8") as f:
        text = f.read()
    return [Block(page, text.count("\n", 0, m.start("body")), m.group("kind"),
                  m.group("options") or "", m.group("lang"),
                  _dedent(m.group("body"), m.group("indent")))
            for m in _BLOCK.finditer(text)]


#: the pages whose samples assume the files L{fixture} makes
FIXTURE_PAGES = ("index.md", "endpoints.md", "policy.md", "revocation.md",
                 "twistd.md", "audit.md", "errors.md", "bindings.md")

_FIXTURE_POLICY = """\
name = "hl7-inbound"
certKey = "server.pem"
privateKey = "server.key"
caCerts = "devices-ca.pem"
clientAuth = "required"
crl = "devices.crl"
allowPeers = ["uri:spiffe://hospital.example/ward3/*"]
"""


def fixture(directory: str) -> None:
    """
    The files the reference pages take for granted, made in C{directory}
    with L{tests._pki.TestPKI} (one CA issues everything):

      - C{ca.pem}, C{devices-ca.pem}: the CA (the CA of the servers and
        the CA of the devices are the same here);
      - C{server.pem}/C{server.key}: a server certificate for C{localhost}
        and C{127.0.0.1};
      - C{client.pem}/C{client.key} and its copy C{device.pem}/C{device.key}:
        a device certificate with SAN URI
        C{spiffe://hospital.example/ward3/pump-0042};
      - C{devices.crl}: an empty CRL of the CA;
      - C{hl7-inbound.toml}: an mTLS policy file using them;
      - C{tls/}: the same server certificate, CA and CRL, with the key
        encrypted under the passphrase in C{tls/passphrase}, for the policy
        file of docs/policy.md;
      - C{site/index.html}: a page for C{twistd web} to serve.
    """
    import datetime

    from cryptography.hazmat.primitives import serialization

    from tests._pki import TestPKI

    pki = TestPKI.create(directory)
    for source, copy in (("ca.pem", "devices-ca.pem"), ("client.pem", "device.pem"),
                         ("client.key", "device.key")):
        shutil.copyfile(pki.path(source), pki.path(copy))
    now = datetime.datetime.now(datetime.UTC)
    pki.write("devices.crl", pki.crl(lastUpdate=now - datetime.timedelta(hours=1),
                                     nextUpdate=now + datetime.timedelta(days=30)))
    pki.write("hl7-inbound.toml", _FIXTURE_POLICY.encode("ascii"))
    os.makedirs(pki.path("tls"))
    for name in ("server.pem", "devices-ca.pem", "devices.crl"):
        shutil.copyfile(pki.path(name), pki.path(os.path.join("tls", name)))
    with open(pki.path("server.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    pki.write(os.path.join("tls", "server.key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse")))
    pki.write(os.path.join("tls", "passphrase"), b"correct horse\n")
    os.makedirs(pki.path("site"))
    pki.write(os.path.join("site", "index.html"), b"<h1>It works</h1>\n")


class PageRunner:
    """
    Runs the marked blocks of one page in a temporary directory.
    """

    def __init__(self, test: SynchronousTestCase, page: str) -> None:
        self.test = test
        self.page = page
        self.directory = os.path.abspath(test.mktemp())
        os.makedirs(self.directory)
        self.ports: Dict[str, str] = {p: str(freePort()) for p in _EXAMPLE_PORTS}
        binDir = os.path.dirname(sys.executable)
        self.env = dict(os.environ)
        self.env["PATH"] = binDir + os.pathsep + self.env.get("PATH", "")
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_SOURCE_ROOT, self.env.get("PYTHONPATH")) if p)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.executed = 0
        #: how to stop the background server on each port
        self.servers: Dict[str, Callable[[], None]] = {}

    def substitute(self, text: str) -> str:
        for example, real in self.ports.items():
            text = re.sub(rf"(?<!\d){example}(?!\d)", real, text)
        return text

    def run(self) -> int:
        if self.page in FIXTURE_PAGES:
            fixture(self.directory)
        for block in blocks(self.page):
            if block.kind is None or block.kind == "not run":
                continue
            self.executed += 1
            body = self.substitute(block.body)
            if block.kind == "file":
                path = os.path.join(self.directory, block.options.strip())
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(body)
                continue
            words = shlex.split(block.options)
            if block.kind == "run" and words[:1] == ["background"]:
                self.background(block, body, self.substitute(words[1]))
                continue
            exit, expects = 0, []
            while words:
                word = words.pop(0)
                if word == "exit":
                    exit = int(words.pop(0))
                elif word == "expect":
                    expects.append(self.substitute(words.pop(0)))
                else:
                    raise AssertionError(f"{block.where()}: unknown option {word!r}")
            if block.kind == "test":
                self.script(block, [sys.executable, "-c", body], exit, expects)
            else:
                self.script(block, ["bash", "-e", "-c", body], exit, expects)
        return self.executed

    def script(self, block: Block, argv: List[str], exit: int, expects: List[str]) -> None:
        try:
            done = subprocess.run(argv, cwd=self.directory, env=self.env, capture_output=True,
                                  timeout=STEP_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{block.where()} did not finish in {STEP_TIMEOUT}s") from None
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        self.test.assertEqual(done.returncode, exit,
                              f"{block.where()} exited {done.returncode}:\n{output}")
        for text in expects:
            self.test.assertIn(text, output, f"{block.where()} output:\n{output}")

    def background(self, block: Block, body: str, port: str) -> None:
        if port in self.servers:
            self.servers.pop(port)()  # the reader stops the previous server first
        log = open(os.path.join(self.directory, f"background-{block.line}.log"), "wb")
        proc = subprocess.Popen(["bash", "-e", "-c", "exec " + body.strip()],
                                cwd=self.directory, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

        def stop() -> None:
            # the whole process group: twistd's workers too, even if it exited
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(10)
                    break
                except subprocess.TimeoutExpired:
                    continue
            log.close()

        self.test.addCleanup(stop)
        self.servers[port] = stop
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                return
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        with open(log.name, encoding="utf-8", errors="replace") as f:
            raise AssertionError(f"{block.where()} is not listening on {port}:\n{f.read()}")


def _needOpenSSL() -> None:
    if shutil.which("openssl") is None:
        raise SkipTest("the openssl binary is not installed")


class MarkerTests(SynchronousTestCase):
    """
    The run markers of the pages are well formed.
    """

    def test_markersParse(self) -> None:
        """
        Every marked block has a known kind, a file name for C{file}, a
        port for C{background}, and C{test} marks only python blocks.
        """
        for page in pages():
            for block in blocks(page):
                if block.kind == "file":
                    self.assertTrue(block.options.strip(), block.where())
                elif block.kind == "test":
                    self.assertEqual(block.lang, "python", block.where())
                elif block.kind == "run" and block.options.startswith("background"):
                    self.assertEqual(len(block.options.split()), 2, block.where())
                elif block.kind == "not run":
                    self.assertTrue(block.options.strip(), f"{block.where()}: give a reason")

    def test_executedPages(self) -> None:
        """
        The tutorial, the how-tos and the compliance page each have executed
        examples.
        """
        for page in ("tutorial.md", "howto.md", "compliance.md"):
            if page in pages():
                self.assertTrue([b for b in blocks(page) if b.kind], page)


class CoverageTests(SynchronousTestCase):
    """
    Every command and code sample of the docs and the README is executed,
    or says why it is not.
    """

    def test_readmeIncluded(self) -> None:
        """
        README.md is one of the pages when it is next to the docs.
        """
        if not os.path.exists(os.path.join(_ROOT, _README)):
            raise SkipTest("README.md is not next to the docs")
        self.assertIn(_README, pages())

    def test_everyCodeBlockRunOrExplained(self) -> None:
        """
        Each C{sh} or C{python} block is run (C{run}, C{test}, or written
        by C{file} for a later step) or carries C{not run: REASON}.
        """
        escaped = [f"{b.where()} ({b.lang})" for page in pages() for b in blocks(page)
                   if b.lang in _CODE_LANGS and b.kind is None]
        self.assertEqual(escaped, [], "mark these blocks <!-- run -->, <!-- test --> "
                         "or <!-- not run: REASON -->")

    def test_noUnlabelledCommands(self) -> None:
        """
        An unlabelled block does not start with a command (which would
        escape the check above): label commands C{sh}, synopses C{text}.
        """
        unlabelled = [b.where() for page in pages() for b in blocks(page)
                      if not b.lang and b.body.lstrip().startswith(_COMMANDS)]
        self.assertEqual(unlabelled, [])

    def test_notRunIsOnlyForCode(self) -> None:
        """
        Every C{not run} marker is on a C{sh} or C{python} block (elsewhere
        it would only hide a typo in a marker).
        """
        misplaced = [b.where() for page in pages() for b in blocks(page)
                     if b.kind == "not run" and b.lang not in _CODE_LANGS]
        self.assertEqual(misplaced, [])


class CitedTestsExistTests(SynchronousTestCase):
    """
    The tests docs/compliance.md cites as proof exist.
    """

    def test_citedTestsExist(self) -> None:
        """
        Every C{test_module.ClassName} named in docs/compliance.md is a test
        class in C{tests/}.
        """
        import importlib

        if "compliance.md" not in pages():
            raise SkipTest("docs/compliance.md is not available")
        with open(os.path.join(_DOCS, "compliance.md"), encoding="utf-8") as f:
            text = f.read()
        cited = set(re.findall(r"\b(test_\w+)\.([A-Z]\w+)\b", text))
        self.assertGreater(len(cited), 10)
        missing = []
        for module, name in sorted(cited):
            try:
                found = hasattr(importlib.import_module(f"tests.{module}"), name)
            except ImportError:
                found = False
            if not found:
                missing.append(f"{module}.{name}")
        self.assertEqual(missing, [])


class PageExampleTests(SynchronousTestCase):
    """
    Each page's marked commands and samples run as documented.
    """

    def runPage(self, page: str) -> None:
        if page not in pages():
            raise SkipTest(f"docs/{page} is not available")
        _needOpenSSL()
        self.assertGreater(PageRunner(self, page).run(), 0)

    def test_tutorial(self) -> None:
        """
        docs/tutorial.md runs end to end: the MLLP service, the openssl CA
        and certificates, C{check}, C{twistd securetcp terminate}, both
        devices, C{probe}, the revocation of one device and the audit trail.
        """
        self.runPage("tutorial.md")

    def test_howto(self) -> None:
        """
        docs/howto.md's marked commands run as documented.
        """
        self.runPage("howto.md")

    def test_compliance(self) -> None:
        """
        docs/compliance.md's verification commands run as documented.
        """
        self.runPage("compliance.md")

    def test_readme(self) -> None:
        """
        README.md's quick start (the demo and a device connecting to it),
        the C{twistd web} and Python examples and the terminating proxy with
        its audit trail run as shown.
        """
        self.runPage(_README)

    def test_cli(self) -> None:
        """
        docs/cli.md's examples: profiles, a CA made with C{pki}, C{check}
        passing and failing, and the documented exit statuses.
        """
        self.runPage("cli.md")

    def test_pki(self) -> None:
        """
        docs/pki.md's walk-through: CA, certificates, CRL, the server, a
        device connecting, and the revocation.
        """
        self.runPage("pki.md")

    def test_twistd(self) -> None:
        """
        docs/twistd.md's terminate, originate, demo and workers commands
        start and listen.
        """
        self.runPage("twistd.md")

    def test_endpoints(self) -> None:
        """
        docs/endpoints.md's strings, C{twistd web} with curl and the Python
        examples run as shown.
        """
        self.runPage("endpoints.md")

    def test_policy(self) -> None:
        """
        docs/policy.md's policy file, pin computation, C{twistd web} and
        Python API examples run as shown.
        """
        self.runPage("policy.md")

    def test_audit(self) -> None:
        """
        docs/audit.md's observer, audit file and C{audit verify} / C{report}
        examples run as shown.
        """
        self.runPage("audit.md")

    def test_otherPages(self) -> None:
        """
        Marked examples on any other page run too.
        """
        _needOpenSSL()
        own = ("tutorial.md", "howto.md", "compliance.md", _README, "cli.md", "pki.md",
               "twistd.md", "endpoints.md", "policy.md", "audit.md")
        for page in pages():
            if page not in own and any(
                    b.kind and b.kind != "not run" for b in blocks(page)):
                PageRunner(self, page).run()
