# -*- test-case-name: tests.test_revocationdocs -*-
"""
No docstring of securetcp says OCSP is missing: OCSP checks and stapling
are implemented (L{securetcp.revocation.ocsp}).
"""

from __future__ import annotations

import ast
import os
import re
from typing import Iterator, Tuple

from twisted.trial.unittest import SynchronousTestCase

import securetcp

_MISSING = re.compile(r"not (yet )?(implemented|supported|available)|unimplemented"
                      r"|to be (written|added|implemented)|\bTODO\b", re.IGNORECASE)


def _docstrings() -> Iterator[Tuple[str, str]]:
    """
    Every docstring of every module of the securetcp package, with where it is.
    """
    root = os.path.dirname(os.path.abspath(securetcp.__file__))
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                    text = ast.get_docstring(node)
                    if text:
                        where = getattr(node, "name", "module")
                        yield f"{os.path.relpath(path, root)}:{where}", text


class OCSPDocstringTests(SynchronousTestCase):
    """
    The docstrings tell the truth about OCSP.
    """

    def test_noneSaysOCSPMissing(self) -> None:
        """
        No paragraph of a docstring that names OCSP says something is not
        implemented (C{revocation/__init__.py} and C{crl.py} once did).
        """
        seen = 0
        for where, text in _docstrings():
            for paragraph in text.split("\n\n"):
                if "ocsp" in paragraph.lower():
                    seen += 1
                    self.assertIsNone(_MISSING.search(paragraph), f"{where}: {paragraph}")
        self.assertGreater(seen, 10)

    def test_revocationPackageNamesOCSP(self) -> None:
        """
        The revocation package's docstring names its OCSP modules.
        """
        from securetcp import revocation

        self.assertIn("securetcp.revocation.ocsp", revocation.__doc__ or "")
