"""
docs/cli.md documents every command line securetcp has: each subcommand,
option, positional argument, choice and default of C{python -m securetcp}
(walked from L{securetcp._cli.buildParser}) and of C{twistd securetcp}
(walked from L{securetcp._twistd.tap.Options} and its subcommands), and every key
of a C{--config} file.  Nothing in the page is generated, so this test is
what keeps it from drifting.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any, Iterator, List, Tuple

from twisted.python import reflect
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._cli import buildParser
from securetcp._twistd import tap as _tap
from securetcp._twistd.config import LISTENER_KEYS, TOP_KEYS

_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
_HEADING = re.compile(r"^(#+) (.*)$", re.M)


def _page() -> str:
    path = os.path.join(_DOCS, "cli.md")
    if not os.path.exists(path):
        raise SkipTest(f"{path} is not available (docs are not next to the tests)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def section(text: str, title: str) -> str:
    """
    The text of the section whose heading is C{title} (exactly), up to the
    next heading of the same or a higher level; subsections included.
    """
    headings = list(_HEADING.finditer(text))
    for i, m in enumerate(headings):
        if m.group(2).strip() == title:
            level = len(m.group(1))
            end = len(text)
            for later in headings[i + 1:]:
                if len(later.group(1)) <= level:
                    end = later.start()
                    break
            return text[m.end():end]
    raise AssertionError(f"docs/cli.md has no section {title!r}")


def ownSection(text: str, title: str) -> str:
    """
    Like L{section}, but without its subsections.
    """
    body = section(text, title)
    m = _HEADING.search(body)
    return body[:m.start()] if m else body


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[Tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def commands(parser: argparse.ArgumentParser,
             prefix: str = "python -m securetcp") -> Iterator[Tuple[str, argparse.ArgumentParser]]:
    """
    Every leaf command of C{parser}, as (C{"python -m securetcp pki init"},
    its parser).
    """
    subs = list(_subparsers(parser))
    if not subs:
        yield prefix, parser
    for name, sub in subs:
        yield from commands(sub, f"{prefix} {name}")


def _defaultText(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _documentedIn(text: str, word: str) -> bool:
    """
    Whether C{word} appears in C{text} in backticks, alone or as the
    start of a code span (C{`--dir DIR`}) or a list inside one.
    """
    pattern = re.compile(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])")
    return any(pattern.search(span) for span in re.findall(r"`([^`\n]+)`", text))


class PythonCommandLineTests(SynchronousTestCase):
    """
    docs/cli.md documents every command and option of C{python -m securetcp}.
    """

    def test_parserHasCommands(self) -> None:
        """
        The walk finds every command the CLI has (so an empty walk cannot
        pass the other tests).
        """
        found = {name for name, _ in commands(buildParser())}
        self.assertEqual(found, {f"python -m securetcp {c}" for c in (
            "demo", "profiles", "check", "probe", "audit verify", "audit report",
            "pki init", "pki issue-server", "pki issue-client", "pki issue-node", "pki sign-csr",
            "pki revoke", "pki crl")})

    def test_everyCommandHasASection(self) -> None:
        """
        Each leaf command has a section headed C{`python -m securetcp ...`}.
        """
        text = _page()
        for name, _ in commands(buildParser()):
            section(text, f"`{name}`")

    def test_everyOption(self) -> None:
        """
        Each command's section names every option string (C{--json},
        C{--trust-domain}, ...) and every positional argument, in backticks.
        """
        text = _page()
        missing: List[str] = []
        for name, parser in commands(buildParser()):
            body = ownSection(text, f"`{name}`")
            for action in parser._actions:
                if isinstance(action, argparse._HelpAction):
                    continue
                words = list(action.option_strings) or [action.metavar or action.dest]
                for word in words:
                    if not _documentedIn(body, str(word)):
                        missing.append(f"{name} {word}")
        self.assertEqual(missing, [])

    def test_everyChoiceAndDefault(self) -> None:
        """
        Each option's choices, and its default when it has one worth
        stating, appear in its command's section.
        """
        text = _page()
        missing: List[str] = []
        for name, parser in commands(buildParser()):
            body = ownSection(text, f"`{name}`")
            for action in parser._actions:
                for choice in action.choices or ():
                    if not _documentedIn(body, str(choice)):
                        missing.append(f"{name} {action.dest} choice {choice}")
                default = action.default
                if default in (None, False, [], argparse.SUPPRESS):
                    continue
                if not _documentedIn(body, _defaultText(default)):
                    missing.append(f"{name} {action.dest} default {default!r}")
        self.assertEqual(missing, [])


def _options(cls: type) -> List[Tuple[str, Any, Any]]:
    """
    (long name, short name, default) of every parameter and flag of a
    L{twisted.python.usage.Options} class, including inherited ones.
    """
    params: List[Any] = []
    flags: List[Any] = []
    reflect.accumulateClassList(cls, "optParameters", params)
    reflect.accumulateClassList(cls, "optFlags", flags)
    out = [(p[0], p[1], p[2] if len(p) > 2 else None) for p in params]
    out += [(f[0], f[1] if len(f) > 1 else None, None) for f in flags]
    return out


class TwistdCommandLineTests(SynchronousTestCase):
    """
    docs/cli.md documents every mode and option of C{twistd securetcp}.
    """

    def test_modes(self) -> None:
        """
        Each subcommand of L{_tap.Options} has a section headed
        C{`twistd securetcp MODE`} that names each of its options (long and
        short) and states each non-empty default.
        """
        text = _page()
        self.assertTrue(_tap.Options.subCommands)
        missing: List[str] = []
        for mode, _, cls, _ in _tap.Options.subCommands:
            body = ownSection(text, f"`twistd securetcp {mode}`")
            for long, short, default in _options(cls):
                # options shared through _CommonOptions are described once,
                # in their own section, and linked from each mode's
                common = long in {o[0] for o in _options(_tap._CommonOptions)}
                where = section(text, "Options of `terminate`, `originate` and `serve`") \
                    if common else body
                if not _documentedIn(body, f"--{long}"):
                    missing.append(f"{mode} --{long}")
                if short and not _documentedIn(body, f"-{short}"):
                    missing.append(f"{mode} -{short}")
                if default not in (None, "") and not _documentedIn(where, str(default)):
                    missing.append(f"{mode} --{long} default {default!r}")
        self.assertEqual(missing, [])

    def test_topLevelOptions(self) -> None:
        """
        The options of C{twistd securetcp} itself (C{--config},
        C{--workers}) are in the C{`twistd securetcp`} section.
        """
        text = _page()
        body = ownSection(text, "`twistd securetcp`")
        options = _options(_tap.Options)
        self.assertIn("config", [o[0] for o in options])
        missing = [f"--{long}" for long, short, _ in options
                   if not _documentedIn(body, f"--{long}")]
        missing += [f"-{short}" for long, short, _ in options
                    if short and not _documentedIn(body, f"-{short}")]
        self.assertEqual(missing, [])

    def test_configKeys(self) -> None:
        """
        Every top-level and listener key of a C{--config} file is in the
        C{`twistd securetcp --config`} section.
        """
        body = section(_page(), "`twistd securetcp --config`")
        missing = [k for k in list(TOP_KEYS) + list(LISTENER_KEYS)
                   if not _documentedIn(body, k)]
        self.assertEqual(missing, [])
