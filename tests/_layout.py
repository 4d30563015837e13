"""
The rules a package's layout is held to (L{Layout}: its layers, fences
and size limits), each a function returning the violations it finds in
the modules and imports L{tests._imports} reads, keyed for
L{tests.test_layout.KNOWN_VIOLATIONS}.

    modules = readPackage(os.path.dirname(securetcp.__file__), "securetcp")
    graph = importGraph(modules)
    cycleViolations(graph), directionViolations(graph, layout), sizeViolations(modules, layout)
"""

from __future__ import annotations

import ast
import importlib.util
import re
from typing import Dict, Iterable, Optional, Tuple

import attrs

from ._imports import Module, cycles, importsOf, readPackage, within

#: A rule's findings: a message for each violation, by a key naming it.
Violations = Dict[Tuple[str, ...], str]


@attrs.frozen
class Layout:
    """
    The rules a package's layout is held to.

    @ivar package: the package's name.
    @ivar layers: its layers, lowest first, each a name and the modules and
        packages in it (a package stands for every module inside it, unless
        a longer name is listed elsewhere).  A module may import from its
        own layer and the layers below it, never from a layer above.
    @ivar opensslHome: the only package that may import C{OpenSSL}.
    @ivar auditFree: these may import nothing of C{package.audit} but
        C{package.audit.records}.
    @ivar pkiUsers: only these may import C{package._pki}.
    @ivar dropinImports: all the dropin may import (and Twisted).
    @ivar maxModuleLines: how long a module may be.
    @ivar maxFunctionLines: how long a function may be, from its C{def}
        line to its last.
    """

    package: str
    layers: Tuple[Tuple[str, Tuple[str, ...]], ...]
    opensslHome: str
    auditFree: Tuple[str, ...]
    pkiUsers: Tuple[str, ...]
    dropinImports: Tuple[str, ...]
    maxModuleLines: int
    maxFunctionLines: int

    def layerOf(self, name: str) -> Optional[int]:
        """
        The index in L{layers} of the layer C{name} is in, by the longest
        name listed there that is C{name} or a package holding it (the
        package itself holds only itself); C{None} if none is.
        """
        best: Optional[Tuple[int, int]] = None
        for number, (_, members) in enumerate(self.layers):
            for member in members:
                holds = name == member or (member != self.package
                                           and name.startswith(member + "."))
                if holds and (best is None or len(member) > best[1]):
                    best = (number, len(member))
        return best[0] if best is not None else None


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


def directionViolations(graph: Dict[str, Dict[str, int]], layout: Layout) -> Violations:
    """
    Each module in no layer, and each import of a module in a higher layer.
    """
    found: Violations = {}
    for name in sorted(graph):
        mine = layout.layerOf(name)
        if mine is None:
            found[("no layer", name)] = f"{name} is in no layer: add it to one"
            continue
        for imported, line in sorted(graph[name].items()):
            theirs = layout.layerOf(imported)
            if theirs is not None and theirs > mine:
                found[("direction", name, imported)] = (
                    f"{name} (layer {layout.layers[mine][0]!r}) imports {imported} (layer "
                    f"{layout.layers[theirs][0]!r}, above it) at line {line}")
    return found


def boundaryViolations(modules: Dict[str, Module], layout: Layout) -> Violations:
    """
    Imports across the package's fences: OpenSSL outside the TLS layer, the
    audit trail (but its records) in the gate or the TLS layer, the CA
    outside the commands, and any import after a module's first function
    or class.
    """
    found: Violations = {}
    audit, pki = f"{layout.package}.audit", f"{layout.package}._pki"
    for name, module in sorted(modules.items()):
        for imported in importsOf(module, modules):
            where = f"{name} line {imported.line}"
            if imported.target == "OpenSSL" and not within(name, [layout.opensslHome]):
                found[("openssl", name)] = (
                    f"{where} imports OpenSSL outside {layout.opensslHome}")
            if (within(name, layout.auditFree) and within(imported.target, [audit])
                    and imported.target != f"{audit}.records"):
                found[("audit", name, imported.target)] = (
                    f"{where} imports {imported.target}: only {audit}.records may be "
                    "imported here; take the audit sink as a constructor argument")
            if within(imported.target, [pki]) and not within(name, layout.pkiUsers):
                found[("pki", name)] = (f"{where} imports {imported.target}, which only "
                                        f"{', '.join(layout.pkiUsers)} may use")
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


def sizeViolations(modules: Dict[str, Module], layout: Layout) -> Violations:
    """
    Each module longer than the layout allows, and each function (or
    method).
    """
    found: Violations = {}
    for name, module in sorted(modules.items()):
        lines = len(module.source.splitlines())
        if lines > layout.maxModuleLines:
            found[("module size", name)] = (
                f"{module.path} has {lines} lines (at most {layout.maxModuleLines})")
        for qualified, node in _functions(module.tree, ""):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            if span > layout.maxFunctionLines:
                found[("function size", f"{name}:{qualified}")] = (
                    f"{module.path} line {node.lineno}: {qualified} has {span} lines "
                    f"(at most {layout.maxFunctionLines})")
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


def dropinViolations(dropin: Module, known: Iterable[str], layout: Layout) -> Violations:
    """
    Each import of the dropin other than the layout's C{dropinImports} and
    Twisted (C{known}: the package's modules).
    """
    found: Violations = {}
    for imported in importsOf(dropin, known, layout.package):
        if imported.target not in layout.dropinImports + ("twisted",):
            found[("dropin", imported.target)] = (
                f"{dropin.path} line {imported.line} imports {imported.target}: the dropin "
                f"may import only {', '.join(layout.dropinImports)} (and Twisted)")
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
