"""
Sphinx configuration for the securetcp documentation.

The pages are the Markdown files in this directory (read with myst-parser);
C{contents.md} is the root with the table of contents, C{index.md} the
overview.  The API reference (C{api.md}) is generated from the docstrings of
the names in C{securetcp.__all__} by the small C{securetcp-api} directive
below: the docstrings are epytext, which autodoc would misread, so the
directive shows each name's signature and its description with the epytext
markup (C{L{...}}, C{C{...}}, C{I{...}}, C{@param} fields) rendered simply.

    sphinx-build -W -b html docs docs/_build/html     # what tox -e docs runs
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, List

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import securetcp  # noqa: F401  (the installed package, under tox)
except ImportError:  # a checkout
    sys.path.insert(0, _ROOT)

project = "securetcp"
author = "securetcp contributors"
copyright = "securetcp contributors"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "contents"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "alabaster"
html_title = "securetcp"
highlight_language = "none"


_MARKUP = re.compile(r"([LCIBU])\{((?:[^{}]|\{[^{}]*\})*)\}")


def _inline(text: str) -> List[nodes.Node]:
    """
    Epytext inline markup to docutils nodes: C{x} and L{x} become literals,
    I{x} emphasis, B{x} strong, U{x} plain text.
    """
    out: List[nodes.Node] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        if m.start() > pos:
            out.append(nodes.Text(text[pos:m.start()]))
        kind, body = m.group(1), m.group(2)
        if kind in "CL":
            out.append(nodes.literal(body, body))
        elif kind == "I":
            out.append(nodes.emphasis(body, body))
        elif kind == "B":
            out.append(nodes.strong(body, body))
        else:
            out.append(nodes.Text(body))
        pos = m.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


def _description(obj: Any) -> tuple[List[str], List[tuple[str, str]]]:
    """
    The description paragraphs and the C{@field name: text} entries of an
    epytext docstring.
    """
    doc = inspect.getdoc(obj) or ""
    paragraphs: List[str] = []
    fields: List[tuple[str, str]] = []
    current: List[str] = []
    for line in doc.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("@"):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            head, _, rest = stripped[1:].partition(":")
            fields.append((head.strip(), rest.strip()))
        elif fields and stripped and line.startswith((" ", "\t")):
            fields[-1] = (fields[-1][0], fields[-1][1] + " " + stripped)
        elif not stripped:
            if current:
                paragraphs.append(" ".join(current))
            current = []
        elif not fields:
            current.append(stripped)
    return paragraphs, fields


def _signature(name: str, obj: Any) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:
            return name + str(inspect.signature(obj))
        except (TypeError, ValueError):
            return name
    return f"{name} = {type(obj).__name__}"


class SecureTCPAPI(SphinxDirective):
    """
    C{```{securetcp-api}```}: one section per name of C{securetcp.__all__},
    in alphabetical order, with its signature and documentation.
    """

    has_content = False

    def run(self) -> List[nodes.Node]:
        import securetcp as package

        result: List[nodes.Node] = []
        for name in sorted(package.__all__, key=str.lower):
            obj = getattr(package, name)
            section = nodes.section(ids=[f"api-{name.lower()}"], names=[name.lower()])
            section += nodes.title(name, name)
            signature = _signature(name, obj)
            section += nodes.literal_block(signature, signature)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
                paragraphs, fields = _description(obj)
            else:
                paragraphs, fields = [f"A {type(obj).__name__} of securetcp."], []
            for text in paragraphs:
                section += nodes.paragraph("", "", *_inline(text))
            if fields:
                items = nodes.bullet_list()
                for head, text in fields:
                    para = nodes.paragraph("", "", nodes.strong(head, head), nodes.Text(": "),
                                           *_inline(text))
                    items += nodes.list_item("", para)
                section += items
            result.append(section)
        return result


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("securetcp-api", SecureTCPAPI)
    return {"parallel_read_safe": True}
