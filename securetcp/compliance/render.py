# -*- test-case-name: tests.test_check -*-
"""
Summaries of a checklist: the items that failed, the exit status of
C{check} and C{probe}, and the checklist as aligned text::

    >>> exitStatus(items)          # 0 when nothing failed, 3 otherwise
    0
    >>> print(renderText(items))
    PASS  profile: profile 'nist-800-52r2' is not the legacy profile
          [SP 800-52r2 3.1, 3.3]
    ...
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

from securetcp.compliance.catalogue import FAIL, NOT_APPLICABLE, PASS, CheckItem


def failed(items: Iterable[CheckItem]) -> List[CheckItem]:
    """
    The items that failed.
    """
    return [i for i in items if i.status == FAIL]


def exitStatus(items: Iterable[CheckItem]) -> int:
    """
    C{0} when no item failed, C{3} when any did.
    """
    return 3 if failed(items) else 0


def renderText(items: Sequence[CheckItem]) -> str:
    """
    The checklist as aligned text, one item per line with its fix.
    """
    lines = []
    for item in items:
        status = {PASS: "PASS", FAIL: "FAIL"}.get(item.status, "N/A ")
        lines.append(f"{status}  {item.title}: {item.reason}")
        detail = f"      [{item.reference}]"
        if item.key and item.status != PASS:
            detail += f" change: {item.key}"
        lines.append(detail)
    counts = {s: sum(1 for i in items if i.status == s) for s in (PASS, FAIL, NOT_APPLICABLE)}
    lines.append(f"{counts[PASS]} passed, {counts[FAIL]} failed, "
                 f"{counts[NOT_APPLICABLE]} not applicable")
    return "\n".join(lines) + "\n"
