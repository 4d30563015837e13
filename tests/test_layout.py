"""
The shape of the securetcp package, read from its source with L{ast}
(nothing is imported): its import graph has no cycle and flows one way down
the layers of L{LAYERS}; only the TLS layer imports OpenSSL; the dropin
imports only the plugin objects; every module's C{test-case-name} header
names test modules that exist; modules and functions stay small; and no
test module imports another.

Every import statement counts, at module level or inside a function or
class (a function-level import is a dependency all the same).  An import
names the module it names: C{from securetcp.audit import records} depends
on C{securetcp.audit.records}, C{from securetcp.audit import
AuditLogObserver} on C{securetcp.audit} (its C{__init__}).

Where today's code does not meet a rule yet, the violation is listed in
L{KNOWN_VIOLATIONS}: the tests pass now, fail on any new violation, and
fail on an entry that no longer applies, so the list can only shrink.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

import attrs
from twisted.trial.unittest import SynchronousTestCase

import securetcp

PACKAGE = "securetcp"

#: The layers of the package, lowest first, each with the modules and
#: packages in it (a package stands for every module inside it, unless a
#: longer name is listed elsewhere).  A module may import from its own
#: layer and the layers below it, never from a layer above.
LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("foundation", ("securetcp.errors", "securetcp._reasons", "securetcp._catalogue",
                    "securetcp._interfaces", "securetcp.policy", "securetcp.profiles",
                    "securetcp.options", "securetcp.audit.records")),
    ("loading and judging", ("securetcp.config", "securetcp.materials", "securetcp.identity",
                             "securetcp.revocation", "securetcp.compliance", "securetcp.audit",
                             "securetcp._pki")),
    ("TLS", ("securetcp._tls",)),
    ("connections", ("securetcp._below", "securetcp.gate")),
    ("endpoints", ("securetcp.endpoints", "securetcp._parsers", "securetcp._plugins")),
    ("commands", ("securetcp._twistd", "securetcp._cli")),
    ("public face", ("securetcp", "securetcp.__main__")),
)

#: Only these may import the development and provisioning CA.
PKI_USERS = ("securetcp._pki", "securetcp._cli", "securetcp._twistd")
#: These may import nothing of the audit trail but its records (the audit
#: sink is given to them, typed by an interface).
AUDIT_FREE = ("securetcp.gate", "securetcp._tls")
#: Only this package imports C{OpenSSL}.
OPENSSL_HOME = "securetcp._tls"
#: The dropin may import only this (and Twisted).
DROPIN_IMPORTS = ("securetcp._plugins",)
DROPIN = "twisted.plugins.securetcp_plugins"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: What today's code does not meet yet, one entry per violation, as the
#: tests below name them.  Remove an entry when its violation is gone (the
#: stale-entry test insists); never add one for new code.
KNOWN_VIOLATIONS: FrozenSet[Tuple[str, ...]] = frozenset({
    # policy.py (foundation) judges compliance and matches peer identities
    # itself; both belong to the layer above it.
    ("direction", "securetcp.policy", "securetcp.compliance"),
    ("direction", "securetcp.policy", "securetcp.identity"),
    # python -m securetcp has no test-case-name header.
    ("no header", "securetcp.__main__"),
    # Modules over MAX_MODULE_LINES lines.
    ("module size", "securetcp.endpoints"),
    ("module size", "securetcp.gate"),
    ("module size", "securetcp.policy"),
    ("module size", "securetcp.revocation.ocsp"),
    ("module size", "securetcp.compliance.check"),
    ("module size", "securetcp.audit.file"),
    ("module size", "securetcp._twistd.tap"),
    ("module size", "securetcp._tls.context"),
    ("module size", "securetcp._cli"),
    # Functions over MAX_FUNCTION_LINES lines.
    ("function size", "securetcp.config:policyFromOptions"),
    ("function size", "securetcp.materials:loadCredentials"),
    ("function size", "securetcp.policy:TLSPolicy.requireFor"),
    ("function size", "securetcp.revocation.crl:loadCRLs"),
    ("function size", "securetcp.revocation.ocsp:validateResponse"),
    ("function size", "securetcp.compliance.check:checkPolicy"),
    ("function size", "securetcp.compliance.check:checkNegotiated"),
    ("function size", "securetcp.audit.verify:verifyFiles"),
    ("function size", "securetcp.audit.verify:buildReport"),
    ("function size", "securetcp._tls.context:_verifyCallback"),
    ("function size", "securetcp._tls.context:_setVerify"),
    ("function size", "securetcp._tls.context:buildContext"),
    ("function size", "securetcp._tls.context:probeHandshake"),
    ("function size", "securetcp._cli:_check"),
    ("function size", "securetcp._cli:_probe"),
    ("function size", "securetcp._cli:buildParser"),
})

Violations = Dict[Tuple[str, ...], str]


# -- reading the source -----------------------------------------------------------


@attrs.frozen
class Import:
    """
    One import statement's dependency.

    @ivar target: the module imported, dotted; for a module outside the
        package, its top-level name (C{OpenSSL}, C{twisted}).
    @ivar line: where the statement is.
    @ivar atBottom: whether it is a module-level import (not inside a
        function or class) after the module's first function or class.
    """

    target: str
    line: int
    atBottom: bool


@attrs.frozen
class Module:
    """
    One module's source.

    @ivar name: its dotted name (a package's C{__init__} is the package).
    @ivar path: its file.
    @ivar isPackage: whether it is a package's C{__init__}.
    """

    name: str
    path: str
    isPackage: bool
    source: str = attrs.field(repr=False)

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.source, self.path)

    @property
    def package(self) -> str:
        """
        The package relative imports start from.
        """
        return self.name if self.isPackage else self.name.rpartition(".")[0]


def readPackage(directory: str, name: str = PACKAGE) -> Dict[str, Module]:
    """
    Every module of the package in C{directory}, by dotted name.
    """
    found: Dict[str, Module] = {}
    for folder, subfolders, files in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for filename in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, filename)
            parts = [name] + os.path.relpath(path, directory)[:-3].split(os.sep)
            isPackage = parts[-1] == "__init__"
            dotted = ".".join(parts[:-1] if isPackage else parts)
            with open(path, encoding="utf-8") as f:
                found[dotted] = Module(dotted, path, isPackage, f.read())
    return found


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _importStatements(tree: ast.Module) -> Iterable[Tuple[ast.stmt, bool]]:
    """
    Every import statement in C{tree}, at any depth, each with whether it
    is at the bottom: at module level, after the first definition.
    """
    firstDefinition: Optional[int] = None
    pending: List[Tuple[ast.AST, bool]] = [(node, True) for node in tree.body]
    while pending:
        node, moduleLevel = pending.pop(0)
        if moduleLevel and isinstance(node, _DEFINITIONS) and firstDefinition is None:
            firstDefinition = node.lineno
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, (moduleLevel and firstDefinition is not None
                         and node.lineno > firstDefinition)
        nested = moduleLevel and not isinstance(node, _DEFINITIONS)
        pending.extend((child, nested) for child in ast.iter_child_nodes(node))


def importsOf(module: Module, known: Iterable[str],
              root: Optional[str] = None) -> List[Import]:
    """
    Every import statement in C{module}, at any depth, resolved: a name in
    the package C{root} (by default, C{module}'s own top-level package) to
    the longest module of C{known} it names, anything else to its top-level
    name.
    """
    known = set(known)
    found: List[Import] = []
    root = root or module.name.split(".")[0]

    def add(name: str, line: int, atBottom: bool) -> None:
        if name.split(".")[0] == root:
            while name not in known and "." in name:
                name = name.rpartition(".")[0]
        else:
            name = name.split(".")[0]
        found.append(Import(name, line, atBottom))

    for node, atBottom in _importStatements(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, atBottom)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if source == "__future__":
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                add(submodule if submodule in known else source, node.lineno, atBottom)
    return found


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """
    The module a C{from ... import} imports from, relative ones resolved
    against C{module}'s package.
    """
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def importGraph(modules: Dict[str, Module]) -> Dict[str, Dict[str, int]]:
    """
    The package's import graph: for each module, the modules of the
    package it imports, with the line of the first such import.
    """
    graph: Dict[str, Dict[str, int]] = {name: {} for name in modules}
    for name, module in modules.items():
        for imported in importsOf(module, modules):
            if imported.target in modules and imported.target != name:
                graph[name].setdefault(imported.target, imported.line)
    return graph


def cycles(graph: Dict[str, Dict[str, int]]) -> List[List[str]]:
    """
    One shortest cycle through each strongly connected part of C{graph}
    that has more than one module, as the path C{[a, b, ..., a]} starting
    at the part's first module by name.
    """
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    parts: List[Set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                part.add(member)
                if member == node:
                    break
            parts.append(part)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_shortestCycle(graph, part) for part in parts if len(part) > 1]


def _shortestCycle(graph: Dict[str, Dict[str, int]], part: Set[str]) -> List[str]:
    start = min(part)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    return paths[node] + [start]
                if successor in part and successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def layerOf(name: str) -> Optional[int]:
    """
    The index in L{LAYERS} of the layer C{name} is in, by the longest name
    listed there that is C{name} or a package holding it; C{None} if none
    is.
    """
    best: Optional[Tuple[int, int]] = None
    for number, (_, members) in enumerate(LAYERS):
        for member in members:
            holds = name == member or (member != PACKAGE and name.startswith(member + "."))
            if holds and (best is None or len(member) > best[1]):
                best = (number, len(member))
    return best[0] if best is not None else None


def within(name: str, packages: Sequence[str]) -> bool:
    """
    Whether C{name} is one of C{packages} or inside one.
    """
    return any(name == p or name.startswith(p + ".") for p in packages)


# -- the rules --------------------------------------------------------------------


def cycleViolations(graph: Dict[str, Dict[str, int]]) -> Violations:
    """
    Each import cycle, keyed by its modules, described as the path with the
    line of each import.
    """
    found: Violations = {}
    for path in cycles(graph):
        steps = " -> ".join(f"{a} (line {graph[a][b]})"
                            for a, b in zip(path, path[1:], strict=False))
        found[("cycle", *sorted(set(path)))] = f"import cycle: {steps} -> {path[-1]}"
    return found


def directionViolations(graph: Dict[str, Dict[str, int]]) -> Violations:
    """
    Each module in no layer, and each import of a module in a higher layer.
    """
    found: Violations = {}
    for name in sorted(graph):
        mine = layerOf(name)
        if mine is None:
            found[("no layer", name)] = f"{name} is in no layer: add it to LAYERS"
            continue
        for imported, line in sorted(graph[name].items()):
            theirs = layerOf(imported)
            if theirs is not None and theirs > mine:
                found[("direction", name, imported)] = (
                    f"{name} (layer {LAYERS[mine][0]!r}) imports {imported} (layer "
                    f"{LAYERS[theirs][0]!r}, above it) at line {line}")
    return found


def boundaryViolations(modules: Dict[str, Module]) -> Violations:
    """
    Imports across the package's fences: OpenSSL outside the TLS layer, the
    audit trail (but its records) in the gate or the TLS layer, the CA
    outside the commands, and any import after a module's first function
    or class.
    """
    found: Violations = {}
    for name, module in sorted(modules.items()):
        for imported in importsOf(module, modules):
            where = f"{name} line {imported.line}"
            if imported.target == "OpenSSL" and not within(name, [OPENSSL_HOME]):
                found[("openssl", name)] = f"{where} imports OpenSSL outside {OPENSSL_HOME}"
            if (within(name, AUDIT_FREE) and within(imported.target, ["securetcp.audit"])
                    and imported.target != "securetcp.audit.records"):
                found[("audit", name, imported.target)] = (
                    f"{where} imports {imported.target}: only securetcp.audit.records may be "
                    "imported here; take the audit sink as a constructor argument")
            if within(imported.target, ["securetcp._pki"]) and not within(name, PKI_USERS):
                found[("pki", name)] = (f"{where} imports {imported.target}, which only "
                                        f"{', '.join(PKI_USERS[1:])} may use")
            if imported.atBottom:
                found[("bottom import", name, imported.target)] = (
                    f"{where} imports {imported.target} after the first function or class "
                    "of the module: move it to the top")
    return found


_HEADER = re.compile(r"^# -\*- test-case-name: (?P<names>\S+) -\*-$")


def _docstringOnly(module: Module) -> bool:
    body = module.tree.body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
               for node in body)


def headerViolations(modules: Dict[str, Module]) -> Violations:
    """
    Each module with code but no C{test-case-name} header, and each test
    module a header names that does not exist.
    """
    found: Violations = {}
    for name, module in sorted(modules.items()):
        match = _HEADER.match(module.source.split("\n", 1)[0])
        if match is None:
            if not _docstringOnly(module):
                found[("no header", name)] = (
                    f"{module.path}: no '# -*- test-case-name: tests.test_x -*-' first line")
            continue
        for testModule in match.group("names").split(","):
            if importlib.util.find_spec(testModule) is None:
                found[("header", name, testModule)] = (
                    f"{module.path}: its test-case-name {testModule} does not exist")
    return found


def sizeViolations(modules: Dict[str, Module]) -> Violations:
    """
    Each module over L{MAX_MODULE_LINES} lines and each function (or
    method) over L{MAX_FUNCTION_LINES}, from its C{def} line to its last.
    """
    found: Violations = {}
    for name, module in sorted(modules.items()):
        lines = len(module.source.splitlines())
        if lines > MAX_MODULE_LINES:
            found[("module size", name)] = (
                f"{module.path} has {lines} lines (at most {MAX_MODULE_LINES})")
        for qualified, node in _functions(module.tree, ""):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            if span > MAX_FUNCTION_LINES:
                found[("function size", f"{name}:{qualified}")] = (
                    f"{module.path} line {node.lineno}: {qualified} has {span} lines "
                    f"(at most {MAX_FUNCTION_LINES})")
    return found


def _functions(node: ast.AST, prefix: str) -> Iterable[Tuple[str, ast.AST]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def dropinViolations(dropin: Module, known: Iterable[str]) -> Violations:
    """
    Each import of the dropin other than L{DROPIN_IMPORTS} and Twisted
    (C{known}: the package's modules).
    """
    found: Violations = {}
    for imported in importsOf(dropin, known, PACKAGE):
        if imported.target not in DROPIN_IMPORTS + ("twisted",):
            found[("dropin", imported.target)] = (
                f"{dropin.path} line {imported.line} imports {imported.target}: the dropin "
                f"may import only {', '.join(DROPIN_IMPORTS)} (and Twisted)")
    return found


def testImportViolations(directory: str) -> Violations:
    """
    Each import of a test module by another module of the tests package in
    C{directory}: what they share belongs in a helper module C{tests/_*.py}.
    """
    tests = readPackage(directory, "tests")
    found: Violations = {}
    for name, module in sorted(tests.items()):
        for imported in importsOf(module, tests):
            testModule = imported.target.rpartition(".")[2].startswith("test_")
            if testModule and imported.target in tests:
                found[("test import", name, imported.target)] = (
                    f"{name} line {imported.line} imports the test module {imported.target}: "
                    "move what they share into a helper module tests/_*.py")
    return found


# -- the tests --------------------------------------------------------------------


def _package() -> Dict[str, Module]:
    return readPackage(os.path.dirname(os.path.abspath(securetcp.__file__)))


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
    for part in (cycleViolations(graph), directionViolations(graph),
                 boundaryViolations(modules), headerViolations(modules),
                 sizeViolations(modules), dropinViolations(_dropin(), modules),
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
        self.assertNoNewViolations(directionViolations(importGraph(_package())))

    def test_boundaries(self) -> None:
        """
        Only C{securetcp._tls} imports OpenSSL; the gate and the TLS layer
        import nothing of the audit trail but its records; only the commands
        use the CA; no import comes after a module's first function or
        class.
        """
        self.assertNoNewViolations(boundaryViolations(_package()))

    def test_dropin(self) -> None:
        """
        The dropin imports only the plugin objects of C{securetcp._plugins}
        (and Twisted), so nothing heavy is imported at plugin-scan time.
        """
        self.assertNoNewViolations(dropinViolations(_dropin(), _package()))


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
        self.assertNoNewViolations(sizeViolations(_package()))


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
        return readPackage(directory)

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
        self.assertEqual(layerOf("securetcp.audit.records"), names.index("foundation"))
        self.assertEqual(layerOf("securetcp.audit.file"), names.index("loading and judging"))
        self.assertEqual(layerOf("securetcp"), names.index("public face"))
        self.assertIsNone(layerOf("securetcp.somethingNew"))

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
        found = set(directionViolations(importGraph(modules)))
        found |= set(boundaryViolations(modules))
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
        self.assertEqual(set(sizeViolations(modules)), {
            ("module size", "securetcp.big"), ("function size", "securetcp.klass:K.long")})
