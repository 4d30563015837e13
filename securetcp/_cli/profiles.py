# -*- test-case-name: tests.test_cli_docs -*-
"""
C{python -m securetcp profiles [NAME]}: list the named profiles, or show
one's exact content as JSON::

    python -m securetcp profiles
    python -m securetcp profiles nist-800-52r2
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from securetcp.profiles import PROFILES


def addParser(sub: Any) -> None:
    """
    Add the C{profiles} command to the subcommands C{sub}.
    """
    profiles = sub.add_parser("profiles", help="list profiles or show one's exact content")
    profiles.add_argument("name", nargs="?")
    profiles.set_defaults(handler=profilesCommand)


def profilesCommand(args: argparse.Namespace, out: TextIO) -> int:
    """
    Print every profile with its description, or one profile's content.
    """
    if not args.name:
        for p in PROFILES.values():
            print(f"{p.name:22} {p.description}", file=out)
        return 0
    if args.name not in PROFILES:
        print(f"securetcp: unknown profile {args.name!r}; use one of "
              + ", ".join(PROFILES), file=sys.stderr)
        return 2
    p = PROFILES[args.name]
    print(json.dumps({
        "name": p.name, "description": p.description,
        "minVersion": p.minVersion.value, "maxVersion": p.maxVersion.value,
        "ciphers": list(p.tls12), "ciphersuites": list(p.tls13),
        "optionalGroups": list(p.optionalGroups), "groups": list(p.groups),
        "minRSABits": p.minRSABits, "minECBits": p.minECBits, "legacy": p.legacy,
    }, indent=2), file=out)
    return 0
