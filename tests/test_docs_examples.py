"""
The documentation's commands and code samples, executed.

A fenced block in C{docs/*.md} is run when an HTML comment right before it
says how:

    <!-- file: NAME -->            write the block to NAME in the page's directory
    <!-- run -->                   run the block with bash -e; it must exit 0
    <!-- run: exit N -->          ... it must exit N
    <!-- run: expect "TEXT" -->    ... and its output must contain TEXT (repeatable)
    <!-- run: background PORT --> start it, wait until PORT accepts connections,
                                   stop it when the page is done
    <!-- test -->                  a python block: run it with this interpreter

Each page's blocks run in order in one fresh temporary directory, with
C{python} and C{twistd} from this interpreter's environment first on the
C{PATH} and the example ports (6661, 2575, 8443) replaced by free ones.
Blocks without a comment are not executed; the test counts them so that a
page can't silently lose its executed examples.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

import attrs
from twisted.trial.unittest import SkipTest, SynchronousTestCase

import securetcp

_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
# where the securetcp package (and, in a checkout, the twisted/plugins dropin) lives
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(securetcp.__file__)))
_BLOCK = re.compile(
    r"(?:<!--\s*(?P<kind>file|run|test)(?::\s*(?P<options>.*?))?\s*-->\s*\n)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```\s*$",
    re.S | re.M)
_EXAMPLE_PORTS = ("6661", "2575", "8443")
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
    if not os.path.isdir(_DOCS):
        raise SkipTest(f"{_DOCS} is not available (docs are not next to the tests)")
    return sorted(n for n in os.listdir(_DOCS) if n.endswith(".md"))


def blocks(page: str) -> List[Block]:
    """
    Every fenced block of C{page}, in order.
    """
    with open(os.path.join(_DOCS, page), encoding="utf-8") as f:
        text = f.read()
    return [Block(page, text.count("\n", 0, m.start("body")), m.group("kind"),
                  m.group("options") or "", m.group("lang"), m.group("body"))
            for m in _BLOCK.finditer(text)]


def freePort() -> int:
    """
    A port in 20000-32000 that 127.0.0.1 can bind now.
    """
    for _ in range(100):
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise AssertionError("no free port")


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

    def substitute(self, text: str) -> str:
        for example, real in self.ports.items():
            text = re.sub(rf"(?<!\d){example}(?!\d)", real, text)
        return text

    def run(self) -> int:
        for block in blocks(self.page):
            if block.kind is None:
                continue
            self.executed += 1
            body = self.substitute(block.body)
            if block.kind == "file":
                with open(os.path.join(self.directory, block.options.strip()), "w",
                          encoding="utf-8") as f:
                    f.write(body)
            elif block.kind == "test":
                self.script(block, [sys.executable, "-c", body], 0, [])
            else:
                words = shlex.split(block.options)
                if words[:1] == ["background"]:
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
        log = open(os.path.join(self.directory, f"background-{block.line}.log"), "wb")
        proc = subprocess.Popen(["bash", "-e", "-c", "exec " + body.strip()],
                                cwd=self.directory, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

        def stop() -> None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            log.close()

        self.test.addCleanup(stop)
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

    def test_executedPages(self) -> None:
        """
        The tutorial, the how-tos and the compliance page each have executed
        examples.
        """
        for page in ("tutorial.md", "howto.md", "compliance.md"):
            if page in pages():
                self.assertTrue([b for b in blocks(page) if b.kind], page)


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

    def test_otherPages(self) -> None:
        """
        Marked examples on any other page run too.
        """
        _needOpenSSL()
        for page in pages():
            if page not in ("tutorial.md", "howto.md", "compliance.md") and any(
                    b.kind for b in blocks(page)):
                PageRunner(self, page).run()
