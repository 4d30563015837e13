"""
The external programs the tests run, found once: C{openssl}, C{curl} and
C{twistd}, the directory a subprocess needs on C{PYTHONPATH} to import
this checkout's C{securetcp}, and running C{openssl} to completion.

    needOpenSSL()                      # SkipTest without the binary
    runOpenSSL("crl", "-in", path, "-outform", "DER", "-out", out)
    subprocess.run([TWISTD, "--help"], env=subprocessEnvironment())
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Dict, Optional

from twisted.trial.unittest import SkipTest

import securetcp

#: The C{openssl} and C{curl} binaries, or C{None} if not installed.
OPENSSL: Optional[str] = shutil.which("openssl")
CURL: Optional[str] = shutil.which("curl")

_TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
#: The C{twistd} next to this Python (the one with securetcp installed), or
#: any on C{PATH}, or C{None}.
TWISTD: Optional[str] = _TWISTD if os.path.exists(_TWISTD) else shutil.which("twistd")

#: The directory holding the securetcp package (and, in a checkout, the
#: twisted/plugins dropin); subprocesses get it on C{PYTHONPATH}.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(securetcp.__file__)))


def needOpenSSL() -> None:
    """
    Skip the calling test if the C{openssl} binary is not installed.
    """
    if OPENSSL is None:
        raise SkipTest("the openssl binary is not installed")


def runOpenSSL(*argv: str) -> None:
    """
    Run the C{openssl} binary to completion, blocking (so never while a
    test's own server is listening in the reactor); fail with its output if
    it fails.
    """
    needOpenSSL()
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *argv], capture_output=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(argv)} failed ({done.returncode}):\n"
                             f"{done.stdout.decode()}\n{done.stderr.decode()}")


def subprocessEnvironment() -> Dict[str, str]:
    """
    This process's environment with L{SOURCE_ROOT} first on C{PYTHONPATH}.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = SOURCE_ROOT + (os.pathsep + env["PYTHONPATH"]
                                       if env.get("PYTHONPATH") else "")
    return env
