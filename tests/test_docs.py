"""
The reference documentation covers everything the code defines: every
endpoint argument, policy key, profile entry, audit event and rejection
reason appears in C{docs/}, and the option reference tables are the option
table's (L{securetcp.options}).
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from securetcp._optionviews import (
    MARKED_TABLE,
    TABLES,
    referenceRows,
    referenceTable,
    refreshTables,
)
from securetcp._parsers import CLIENT_ARGUMENTS, SERVER_ARGUMENTS
from securetcp.audit.records import CHAIN_EVENTS, EVENTS, REJECTION_REASONS
from securetcp.config import POLICY_OPTIONS
from securetcp.profiles import PROFILES

_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def _read(name: str) -> str:
    path = os.path.join(_DOCS, name)
    if not os.path.exists(path):
        raise SkipTest(f"{path} is not available (docs are not next to the tests)")
    with open(path, encoding="utf-8") as f:
        return f.read()


class ReferenceCoverageTests(SynchronousTestCase):
    """
    Each reference page names every item of the code's own tables.
    """

    def assertAllMentioned(self, page: str, names: object) -> None:
        text = _read(page)
        missing = [n for n in names if f"`{n}`" not in text and f"`{n}=" not in text]  # type: ignore[attr-defined]
        self.assertEqual(missing, [], f"{page} does not document {missing}")

    def test_endpointArguments(self) -> None:
        """
        docs/endpoints.md documents every server and client argument and
        every policy option usable as an argument.
        """
        self.assertAllMentioned("endpoints.md", list(SERVER_ARGUMENTS) + list(CLIENT_ARGUMENTS))
        self.assertAllMentioned("endpoints.md", POLICY_OPTIONS)

    def test_policyKeys(self) -> None:
        """
        docs/policy.md documents every policy key.
        """
        self.assertAllMentioned("policy.md", POLICY_OPTIONS)

    def test_auditEvents(self) -> None:
        """
        docs/audit.md documents every audit event, chain record and
        rejection reason.
        """
        self.assertAllMentioned("audit.md", list(EVENTS) + list(CHAIN_EVENTS))
        self.assertAllMentioned("audit.md", REJECTION_REASONS)

    def test_profileContent(self) -> None:
        """
        docs/profiles.md lists each profile with every cipher, suite and group
        it contains.
        """
        text = _read("profiles.md")
        for profile in PROFILES.values():
            self.assertIn(f"`{profile.name}`", text)
            names = profile.tls12 + profile.tls13 + profile.groups + profile.optionalGroups
            missing = [n for n in names if not re.search(re.escape(n), text)]
            self.assertEqual(missing, [], f"profiles.md misses {missing} of {profile.name}")


#: which page carries which reference table of the option table
_OPTION_PAGES = {"policy.md": ("policy",), "endpoints.md": ("server", "client", "arguments")}


def _optionTables(page: str) -> dict[str, str]:
    """
    The option reference tables of a page, by name, as written.
    """
    found = {}
    for m in MARKED_TABLE.finditer(_read(page)):
        if m.group("name") in found:
            raise AssertionError(f"{page} has two options tables {m.group('name')!r}")
        found[m.group("name")] = m.group("table").strip() + "\n"
    return found


def _documentedRows(table: str) -> dict[str, str]:
    """
    The rows of a Markdown table (after its heading and rule) by the name
    in their first cell.
    """
    rows = {}
    for line in table.splitlines()[2:]:
        name = line.split("|")[1].strip().strip("`")
        rows[name] = line
    return rows


class OptionTableDocsTests(SynchronousTestCase):
    """
    The option reference tables of docs/policy.md and docs/endpoints.md are
    the option table's: every row documented with its type and default,
    nothing documented that is not a row.
    """

    def test_pagesHaveTheirTables(self) -> None:
        """
        Each page carries exactly its reference tables, and together they
        are every table there is.
        """
        for page, names in _OPTION_PAGES.items():
            self.assertEqual(sorted(_optionTables(page)), sorted(names), page)
        self.assertEqual(sorted(sum(_OPTION_PAGES.values(), ())), sorted(TABLES))

    def test_rowsMatchTheTable(self) -> None:
        """
        Every option of a table is documented, with the meaning, type and
        default the table declares; no other row is documented; the order
        and headings are the table's.
        """
        for page, names in _OPTION_PAGES.items():
            tables = _optionTables(page)
            for name in names:
                documented = _documentedRows(tables[name])
                wanted = referenceRows(name)
                missing = sorted(set(wanted) - set(documented))
                extra = sorted(set(documented) - set(wanted))
                different = [n for n in wanted if n in documented
                             and documented[n] != wanted[n]]
                self.assertEqual(
                    (missing, extra, different), ([], [], []),
                    f"{page}, options table {name!r}: missing, not options, different; "
                    f"it should read:\n{referenceTable(name)}")
                self.assertEqual(tables[name], referenceTable(name), f"{page} {name}")
            text = _read(page)
            self.assertEqual(refreshTables(text), text,
                             f"{page}: run python -m securetcp._optionviews docs/{page}")

    def test_rowsCarryTypeAndDefault(self) -> None:
        """
        Each documented row states the option's type and default (so a
        table without those columns cannot pass the test above).
        """
        for name in TABLES:
            heading = referenceTable(name).splitlines()[0]
            self.assertIn("| type |", heading)
            self.assertIn("| default |", heading)

