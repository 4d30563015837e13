"""
The shape of the securetcp package, read from its source by
L{tests._imports} (nothing is imported) and held to the rules of
L{tests._layout}: its import graph has no cycle and flows one way down the
layers of L{LAYERS}; only the TLS layer imports OpenSSL; the dropin
imports only the plugin objects; every module's C{test-case-name} header
names test modules that exist; modules and functions stay small; and no
test module imports another.

Every import statement counts, at module level or inside a function or
class (a function-level import is a dependency all the same).

Where today's code does not meet a rule yet, the violation is listed in
L{KNOWN_VIOLATIONS}: the tests pass now, fail on any new violation, and
fail on an entry that no longer applies, so the list can only shrink.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
from typing import Dict, FrozenSet, Tuple

from twisted.trial.unittest import SynchronousTestCase

import securetcp

from ._imports import Module, cycles, importGraph, importsOf, readPackage
from ._layout import (
    Layout,
    Violations,
    boundaryViolations,
    cycleViolations,
    directionViolations,
    dropinViolations,
    headerViolations,
    sizeViolations,
    testImportViolations,
)

PACKAGE = "securetcp"

#: The layers of the package, lowest first, each with the modules and
#: packages in it (a package stands for every module inside it, unless a
#: longer name is listed elsewhere).  A module may import from its own
#: layer and the layers below it, never from a layer above.
LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("foundation", ("securetcp.errors", "securetcp._reasons", "securetcp._catalogue",
                    "securetcp._interfaces", "securetcp.identity", "securetcp._fields",
                    "securetcp._parts", "securetcp.policy", "securetcp.profiles",
                    "securetcp._kinds", "securetcp.options", "securetcp._spelling",
                    "securetcp.protocols",
                    "securetcp.binding")),
    ("loading and judging", ("securetcp.audit.records", "securetcp.config", "securetcp._optionviews", "securetcp.materials",
                             "securetcp._readers",
                             "securetcp.revocation", "securetcp.compliance", "securetcp.audit",
                             "securetcp._pki", "securetcp.metrics", "securetcp._filewatch",
                             "securetcp._livemetrics", "securetcp._metricsfiles")),
    ("TLS", ("securetcp._tls",)),
    ("connections", ("securetcp._below", "securetcp.gate", "securetcp._gateprotocol",
                     "securetcp._firstmessage", "securetcp._everymessage",
                     "securetcp._limits")),
    ("endpoints", ("securetcp.endpoints", "securetcp._parsers", "securetcp._plugins",
                   "securetcp._description", "securetcp.auditexport", "securetcp._auditarguments",
                   "securetcp._exportsender")),
    ("commands", ("securetcp._twistd", "securetcp._cli")),
    ("public face", ("securetcp", "securetcp.__main__")),
)

#: Only these may import the development and provisioning CA.
PKI_USERS = ("securetcp._pki", "securetcp._cli", "securetcp._twistd")
#: These may import nothing of the audit trail but its records (the audit
#: sink is given to them, typed by an interface).
AUDIT_FREE = ("securetcp.gate", "securetcp._gateprotocol", "securetcp._tls")
#: Only this package imports C{OpenSSL}.
OPENSSL_HOME = "securetcp._tls"
#: The dropin may import only this (and Twisted).
DROPIN_IMPORTS = ("securetcp._plugins",)
DROPIN = "twisted.plugins.securetcp_plugins"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

LAYOUT = Layout(PACKAGE, LAYERS, opensslHome=OPENSSL_HOME, auditFree=AUDIT_FREE,
                pkiUsers=PKI_USERS, dropinImports=DROPIN_IMPORTS,
                maxModuleLines=MAX_MODULE_LINES, maxFunctionLines=MAX_FUNCTION_LINES)

#: What today's code does not meet yet, one entry per violation, as the
#: tests below name them.  Remove an entry when its violation is gone (the
#: stale-entry test insists); never add one for new code.
KNOWN_VIOLATIONS: FrozenSet[Tuple[str, ...]] = frozenset()


# -- the tests --------------------------------------------------------------------


def _package() -> Dict[str, Module]:
    return readPackage(os.path.dirname(os.path.abspath(securetcp.__file__)), PACKAGE)


def _dropin() -> Module:
    spec = importlib.util.find_spec(DROPIN)
    if spec is None or spec.origin is None:
        raise AssertionError(f"{DROPIN} cannot be found: is twisted/plugins packaged?")
    with open(spec.origin, encoding="utf-8") as f:
        return Module(DROPIN, spec.origin, False, f.read())


def allViolations() -> Violations:
    """
    Every violation of every rule, by key.
    """
    modules = _package()
    graph = importGraph(modules)
    found: Violations = {}
    for part in (cycleViolations(graph), directionViolations(graph, LAYOUT),
                 boundaryViolations(modules, LAYOUT), headerViolations(modules),
                 sizeViolations(modules, LAYOUT), dropinViolations(_dropin(), modules, LAYOUT),
                 testImportViolations(os.path.dirname(os.path.abspath(__file__)))):
        found.update(part)
    return found


class RuleTestCase(SynchronousTestCase):
    """
    Asserts one rule over the package, allowing L{KNOWN_VIOLATIONS}.
    """

    def assertNoNewViolations(self, found: Violations) -> None:
        new = [message for key, message in sorted(found.items()) if key not in KNOWN_VIOLATIONS]
        if new:
            self.fail("\n".join([f"{len(new)} new layout violation(s):", *new]))


class ImportGraphTests(RuleTestCase):
    """
    The package's imports flow one way, down the layers, with no cycle.
    """

    def test_noCycles(self) -> None:
        """
        No module of the package imports, directly or through others, a
        module that imports it.
        """
        self.assertNoNewViolations(cycleViolations(importGraph(_package())))

    def test_layersOneWay(self) -> None:
        """
        Every module is in a layer of L{LAYERS}, and imports only from its
        own layer and the layers below.
        """
        self.assertNoNewViolations(directionViolations(importGraph(_package()), LAYOUT))

    def test_boundaries(self) -> None:
        """
        Only C{securetcp._tls} imports OpenSSL; the gate and the TLS layer
        import nothing of the audit trail but its records; only the commands
        use the CA; no import comes after a module's first function or
        class.
        """
        self.assertNoNewViolations(boundaryViolations(_package(), LAYOUT))

    def test_dropin(self) -> None:
        """
        The dropin imports only the plugin objects of C{securetcp._plugins}
        (and Twisted), so nothing heavy is imported at plugin-scan time.
        """
        self.assertNoNewViolations(dropinViolations(_dropin(), _package(), LAYOUT))


class HeaderTests(RuleTestCase):
    """
    Every module maps to its tests with a C{test-case-name} first line.
    """

    def test_testCaseNames(self) -> None:
        """
        Every module with code has a C{# -*- test-case-name: ... -*-} first
        line, and every test module it names exists.
        """
        self.assertNoNewViolations(headerViolations(_package()))


class SizeTests(RuleTestCase):
    """
    Small rooms: modules and functions stay short enough to read whole.
    """

    def test_sizes(self) -> None:
        """
        No module is over L{MAX_MODULE_LINES} lines and no function over
        L{MAX_FUNCTION_LINES}.
        """
        self.assertNoNewViolations(sizeViolations(_package(), LAYOUT))


class TestModuleTests(RuleTestCase):
    """
    The tests read like the code: shared helpers live in C{tests/_*.py}.
    """

    def test_noTestModuleImportsAnother(self) -> None:
        """
        No module of the tests package imports a test module.
        """
        self.assertNoNewViolations(
            testImportViolations(os.path.dirname(os.path.abspath(__file__))))


class KnownViolationsTests(SynchronousTestCase):
    """
    L{KNOWN_VIOLATIONS} only shrinks.
    """

    def test_noStaleEntries(self) -> None:
        """
        Every entry of L{KNOWN_VIOLATIONS} is still violated; one that is
        not must be removed, so the violation cannot come back unnoticed.
        """
        stale = sorted(KNOWN_VIOLATIONS - set(allViolations()))
        if stale:
            self.fail("\n".join(["no longer violated; remove from KNOWN_VIOLATIONS:",
                                 *map(repr, stale)]))


class AnalysisTests(SynchronousTestCase):
    """
    The analysis the rules rest on: reading imports, finding cycles and
    placing modules in layers.
    """

    def package(self, files: Dict[str, str]) -> Dict[str, Module]:
        """
        A package written from C{files} (relative path: source).
        """
        directory = os.path.abspath(self.mktemp())
        for path, source in files.items():
            full = os.path.join(directory, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(source)
        return readPackage(directory, PACKAGE)

    def test_importsEverywhere(self) -> None:
        """
        Imports at module level, inside functions and methods, relative
        ones, and names of submodules are all read; a module-level import
        after the first function or class is marked as at the bottom.
        """
        modules = self.package({
            "__init__.py": "",
            "a.py": "from securetcp import b\n",
            "b.py": "import OpenSSL.SSL\n\ndef f():\n    from .sub import c\n",
            "sub/__init__.py": "from .c import X\n",
            "sub/c.py": "class K:\n    def m(self):\n        import securetcp.a\n",
            "sub/d.py": "def f():\n    pass\n\nif f:\n    from .. import a\n",
        })
        found = {name: [(i.target, i.atBottom) for i in importsOf(module, modules)]
                 for name, module in modules.items()}
        self.assertEqual(found["securetcp.a"], [("securetcp.b", False)])
        self.assertEqual(found["securetcp.b"], [("OpenSSL", False), ("securetcp.sub.c", False)])
        self.assertEqual(found["securetcp.sub"], [("securetcp.sub.c", False)])
        self.assertEqual(found["securetcp.sub.c"], [("securetcp.a", False)])
        self.assertEqual(found["securetcp.sub.d"], [("securetcp.a", True)])

    def test_cyclesAsPaths(self) -> None:
        """
        Each import cycle is reported once, as the shortest path from its
        first module back to it, with the line of each import.
        """
        graph = {"securetcp.a": {"securetcp.b": 3}, "securetcp.b": {"securetcp.c": 5},
                 "securetcp.c": {"securetcp.a": 7, "securetcp.d": 8}, "securetcp.d": {}}
        self.assertEqual(cycles(graph), [["securetcp.a", "securetcp.b", "securetcp.c",
                                          "securetcp.a"]])
        [(key, message)] = cycleViolations(graph).items()
        self.assertEqual(key, ("cycle", "securetcp.a", "securetcp.b", "securetcp.c"))
        self.assertEqual(message, "import cycle: securetcp.a (line 3) -> securetcp.b (line 5)"
                                  " -> securetcp.c (line 7) -> securetcp.a")
        self.assertEqual(cycles({"securetcp.a": {"securetcp.b": 1}, "securetcp.b": {}}), [])

    def test_layerOf(self) -> None:
        """
        A module is in the layer of the longest listed name holding it; the
        package itself is the top layer, which holds nothing else.
        """
        names = [name for name, _ in LAYERS]
        self.assertEqual(LAYOUT.layerOf("securetcp.audit.records"),
                         names.index("loading and judging"))
        self.assertEqual(LAYOUT.layerOf("securetcp.policy"), names.index("foundation"))
        self.assertEqual(LAYOUT.layerOf("securetcp.audit.file"),
                         names.index("loading and judging"))
        self.assertEqual(LAYOUT.layerOf("securetcp"), names.index("public face"))
        self.assertIsNone(LAYOUT.layerOf("securetcp.somethingNew"))

    def test_directionAndBoundaries(self) -> None:
        """
        An import of a higher layer, a module in no layer, OpenSSL outside
        the TLS layer, the audit file in the gate and the CA in an endpoint
        are each reported.
        """
        modules = self.package({
            "__init__.py": "",
            "errors.py": "from securetcp import gate\n",
            "gate.py": "import OpenSSL\nfrom securetcp.audit import file\n",
            "audit/__init__.py": "", "audit/file.py": "",
            "endpoints.py": "from securetcp._pki import authority\n",
            "_pki/__init__.py": "", "_pki/authority.py": "",
            "novel.py": "",
        })
        found = set(directionViolations(importGraph(modules), LAYOUT))
        found |= set(boundaryViolations(modules, LAYOUT))
        self.assertEqual(found, {
            ("direction", "securetcp.errors", "securetcp.gate"),
            ("no layer", "securetcp.novel"),
            ("openssl", "securetcp.gate"),
            ("audit", "securetcp.gate", "securetcp.audit.file"),
            ("pki", "securetcp.endpoints"),
        })

    def test_testImports(self) -> None:
        """
        A test module imported by another module of the tests package, by
        a relative or an absolute name, is reported; a helper module is not.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        for name, source in {"__init__.py": "", "_helpers.py": "",
                             "test_a.py": "from ._helpers import x\nfrom .test_b import y\n",
                             "test_b.py": "def f():\n    import tests.test_a\n"}.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                f.write(source)
        self.assertEqual(set(testImportViolations(directory)), {
            ("test import", "tests.test_a", "tests.test_b"),
            ("test import", "tests.test_b", "tests.test_a")})

    def test_headersAndSizes(self) -> None:
        """
        A module with code but no header, a header naming a missing test
        module, a long module and a long method are reported; a module
        holding only its docstring needs no header.
        """
        method = "    def long(self):\n" + "        pass\n" * MAX_FUNCTION_LINES
        modules = self.package({
            "__init__.py": '"""\nA package.\n"""\n',
            "bare.py": "X = 1\n",
            "named.py": "# -*- test-case-name: tests.test_layout,tests.test_nothing -*-\n",
            "big.py": "# -*- test-case-name: tests.test_layout -*-\n" + "\n" * MAX_MODULE_LINES,
            "klass.py": "# -*- test-case-name: tests -*-\nclass K:\n" + method,
        })
        self.assertEqual(set(headerViolations(modules)), {
            ("no header", "securetcp.bare"),
            ("header", "securetcp.named", "tests.test_nothing")})
        self.assertEqual(set(sizeViolations(modules, LAYOUT)), {
            ("module size", "securetcp.big"), ("function size", "securetcp.klass:K.long")})


class PublicFaceTests(SynchronousTestCase):
    """
    The package's public names, as C{securetcp.__all__} lists them.
    """

    def test_allSortedAndPresent(self) -> None:
        """
        C{securetcp.__all__} is sorted, has no repeats, and every name in it
        is importable from C{securetcp}.
        """
        names = list(securetcp.__all__)
        self.assertEqual(names, sorted(set(names)))
        self.assertEqual([n for n in names if not hasattr(securetcp, n)], [])


class DistributionTests(SynchronousTestCase):
    """
    What the wheel ships: every package of the source tree.
    """

    def test_everyPackageShipped(self) -> None:
        """
        Every module and package of L{LAYERS} imports (from the installed
        wheel under tox), and, from a checkout, every directory of
        C{securetcp} with an C{__init__.py} is listed in C{setup.cfg}'s
        C{packages}: a package left out imports from a checkout and fails
        once installed.
        """
        for _, names in LAYERS:
            for name in names:
                importlib.import_module(name)
        root = os.path.dirname(os.path.abspath(securetcp.__file__))
        setupCfg = os.path.join(os.path.dirname(root), "setup.cfg")
        if not os.path.exists(setupCfg):
            return  # installed: the imports above are the check
        parser = configparser.ConfigParser()
        parser.read(setupCfg)
        listed = set(parser.get("options", "packages").split())
        found = {
            "securetcp" + directory[len(root):].replace(os.sep, ".")
            for directory, _, files in os.walk(root) if "__init__.py" in files
        }
        self.assertEqual(sorted(found - listed), [])
