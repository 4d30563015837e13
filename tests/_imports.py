"""
A package's modules and imports, read from its source with L{ast}
(nothing is imported): every import statement, at module level or inside
a function or class; the import graph; and the cycles in it.

    modules = readPackage(os.path.dirname(securetcp.__file__), "securetcp")
    graph = importGraph(modules)        # {"securetcp.gate": {"securetcp.errors": 12, ...}}
    cycles(graph)                       # [["securetcp.a", "securetcp.b", "securetcp.a"], ...]

An import names the module it names: C{from securetcp.audit import
records} depends on C{securetcp.audit.records}, C{from securetcp.audit
import AuditLogObserver} on C{securetcp.audit} (its C{__init__}).
"""

from __future__ import annotations

import ast
import os
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import attrs


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


def readPackage(directory: str, name: str) -> Dict[str, Module]:
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


def within(name: str, packages: Sequence[str]) -> bool:
    """
    Whether C{name} is one of C{packages} or inside one.
    """
    return any(name == p or name.startswith(p + ".") for p in packages)
