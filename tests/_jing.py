"""
Validating XML documents against the DICOM audit message schema (DICOM
PS3.15 A.5.1.1, kept in C{tests/data}) with an independent validator,
Debian's C{jing}, started once for a whole batch (each start is a JVM
start)::

    problems = validateAudit(["<?xml ...?><AuditMessage>...</AuditMessage>", ...])
    self.assertEqual(problems, [])
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import List, Optional, Sequence

from twisted.trial.unittest import SkipTest

#: The C{jing} binary, or C{None} if it is not installed.
JING: Optional[str] = shutil.which("jing")

#: The schema of DICOM PS3.15 A.5.1.1 (RELAX NG compact syntax).
AUDIT_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                            "dicom-audit-message.rnc")


def needJing() -> str:
    """
    The C{jing} binary; skip the calling test if it is not installed.
    """
    if JING is None:
        raise SkipTest("jing (Debian package jing) is not installed")
    return JING


def validateAudit(documents: Sequence[str]) -> List[str]:
    """
    Validate every document in one C{jing -c} run.

    @return: jing's complaints, each prefixed with the index of the document
        it is about (empty: every document is valid).
    @raise AssertionError: if jing fails without naming a document.
    """
    jing = needJing()
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for index, document in enumerate(documents):
            path = os.path.join(directory, f"{index}.xml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(document)
            paths.append(path)
        done = subprocess.run([jing, "-c", AUDIT_SCHEMA, *paths], capture_output=True,
                              text=True, timeout=300)
        # jing reports on stdout; stderr holds the JVM's classpath warnings
        problems = [line.replace(directory + os.sep, "document ")
                    for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 and not problems:
        raise AssertionError(f"jing failed ({done.returncode}) without naming a document:\n"
                             f"{done.stderr}")
    if done.returncode == 0 and problems:
        raise AssertionError(f"jing succeeded but printed:\n{done.stdout}")
    return problems
