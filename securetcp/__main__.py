# -*- test-case-name: tests.test_cli_docs,tests.test_check -*-
"""
C{python -m securetcp}; see L{securetcp._cli}.
"""

from securetcp._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
