"""
The reference documentation covers everything the code defines: every
endpoint argument, policy key, profile entry, audit event and rejection
reason appears in C{docs/}.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SkipTest, SynchronousTestCase

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
