# -*- test-case-name: tests.test_cli_docs,tests.test_check,tests.test_pki -*-
"""
C{python -m securetcp}: the command line, one module per command.

    python -m securetcp demo              # an mTLS echo server with a dev PKI
    python -m securetcp profiles          # list profiles
    python -m securetcp profiles nist-800-52r2   # one profile's exact content
    python -m securetcp check ENDPOINT_OR_POLICY_FILE [--client] [--json]
    python -m securetcp probe HOST:PORT [--cacert CA] [--cert C --key K]
    python -m securetcp audit verify|report FILE...
    python -m securetcp pki init|issue-server|issue-client|revoke|crl --dir CA ...

From Python, L{main} runs it with an argument list and an output stream
and returns the exit status::

    status = main(["check", "--json", "policy.toml"], out=io.StringIO())

Each command's module (L{securetcp._cli.check}, C{probe}, C{audit}, C{pki},
C{demo}, C{profiles}) adds its parser with C{addParser} and names its
handler; L{run} is the C{securetcp} console script.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence, TextIO

from securetcp._cli.audit import addParser as addAuditParser
from securetcp._cli.check import addParser as addCheckParser
from securetcp._cli.demo import addParser as addDemoParser
from securetcp._cli.pki import addParser as addPKIParser
from securetcp._cli.probe import addParser as addProbeParser
from securetcp._cli.profiles import addParser as addProfilesParser

#: what adds each command's parser, in the order the help lists them
COMMANDS = (addDemoParser, addProfilesParser, addCheckParser, addProbeParser, addAuditParser,
            addPKIParser)


def buildParser() -> argparse.ArgumentParser:
    """
    The parser of C{python -m securetcp}, with every subcommand and option
    (docs/cli.md documents each; C{tests.test_cli_docs} checks it does).
    """
    parser = argparse.ArgumentParser(prog="python -m securetcp",
                                     description="securetcp: hardened TLS and mTLS for Twisted")
    sub = parser.add_subparsers(dest="command", required=True)
    for addParser in COMMANDS:
        addParser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """
    Run the command line; returns the exit status.
    """
    args = buildParser().parse_args(argv)
    status: int = args.handler(args, out or sys.stdout)
    return status


def run(argv: Optional[List[str]] = None) -> None:
    """
    The C{securetcp} console script: run, and exit with the status.
    """
    sys.exit(main(argv))
