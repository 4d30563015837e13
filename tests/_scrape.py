"""
Reading a C{--metrics} endpoint over plain HTTP from a blocking test:
L{fetch} a page, L{parse} an exposition into samples.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Dict, Tuple

from prometheus_client.parser import text_string_to_metric_families

from ._twistd import PEER_TIMEOUT

#: C{(name, sorted labels) -> value}
Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def fetch(port: int, path: str) -> Tuple[int, str]:
    """
    GET C{path} on 127.0.0.1:C{port}: the status and the body.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=PEER_TIMEOUT) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def parse(text: str) -> Samples:
    """
    Every sample of the exposition C{text}, parsed by C{prometheus_client}.
    """
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
