# -*- test-case-name: tests.test_auditpackage -*-
"""
The shape of L{securetcp.audit}: its modules import one another without a
cycle, counting imports inside functions too.
"""

from __future__ import annotations

import ast
import os
from typing import Dict, List, Set

from twisted.trial.unittest import SynchronousTestCase

import securetcp.audit

_PACKAGE = os.path.dirname(os.path.abspath(securetcp.audit.__file__))

#: Imports that are allowed to close a cycle for now: the names that moved
#: out of securetcp.audit.records, re-exported there (inside its module
#: __getattr__) until the gate, the endpoints and the twistd service import
#: them from securetcp.audit.emitter.
_TRANSITIONAL: set = set()


def _auditImports() -> Dict[str, Set[str]]:
    """
    For each module of the package, the package's modules it imports,
    wherever the import statement is (module level, function, class), but
    not under C{if TYPE_CHECKING:}.
    """
    graph: Dict[str, Set[str]] = {}
    for name in sorted(os.listdir(_PACKAGE)):
        if not name.endswith(".py"):
            continue
        module = "securetcp.audit" + ("" if name == "__init__.py" else "." + name[:-3])
        with open(os.path.join(_PACKAGE, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        typeChecking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                        and "TYPE_CHECKING" in ast.unparse(node.test)
                        for n in ast.walk(node)}
        targets: Set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typeChecking:
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                # "from P import name": the module P.name if there is one, else P
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for imported in names:
                parts = imported.split(".")
                if parts[:2] != ["securetcp", "audit"]:
                    continue
                if len(parts) > 2 and os.path.exists(os.path.join(_PACKAGE, parts[2] + ".py")):
                    targets.add(".".join(parts[:3]))
                else:
                    targets.add("securetcp.audit")  # a name of the package's own
        graph[module] = {t for t in targets if t != module
                         and (module, t) not in _TRANSITIONAL}
    return graph


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """
    One import cycle of C{graph}, or C{[]}.
    """
    done: Set[str] = set()

    def visit(module: str, path: List[str]) -> List[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return []
        for target in sorted(graph.get(module, ())):
            found = visit(target, path + [module])
            if found:
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return []


class ImportCycleTests(SynchronousTestCase):
    """
    No module of L{securetcp.audit} needs itself through its imports.
    """

    def test_noCycle(self) -> None:
        """
        The modules of L{securetcp.audit} import one another without a
        cycle, counting imports made inside functions.
        """
        graph = _auditImports()
        self.assertIn("securetcp.audit.records", graph["securetcp.audit.writer"])
        self.assertEqual(_cycle(graph), [])

    def test_findsCycles(self) -> None:
        """
        The cycle finder names a cycle when there is one.
        """
        self.assertEqual(_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertEqual(_cycle({"a": {"b"}, "b": set()}), [])

    def test_recordsImportNoWriter(self) -> None:
        """
        The schema (L{securetcp.audit.records}) and the chain encoding
        import neither the file writer nor the emitter: they are pure.
        """
        graph = _auditImports()
        for module in ("securetcp.audit.records", "securetcp.audit.chain"):
            self.assertEqual(graph[module] & {"securetcp.audit.file", "securetcp.audit.writer",
                                              "securetcp.audit.emitter"}, set(), module)
