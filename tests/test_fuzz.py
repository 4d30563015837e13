"""
Hypothesis properties over policy files and audit log lines: valid input
round-trips; invalid input gets securetcp's documented errors only, never
another exception.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from securetcp.audit.file import AuditLogObserver
from securetcp.audit.report import buildReport
from securetcp.audit.verify import iterRecords, verifyFiles
from securetcp.config import buildPolicy, loadPolicyFile
from securetcp.errors import PolicyError
from securetcp.profiles import PROFILES

_VERSIONS = ["TLSv1.2", "TLSv1.3", "1.2", "1.3", "tls1_3"]
_NIST12 = list(PROFILES["nist-800-52r2"].tls12)
_NIST13 = list(PROFILES["nist-800-52r2"].tls13)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string is a JSON string


@st.composite
def _validOptions(draw: Any) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if draw(st.booleans()):
        options["name"] = draw(st.text(alphabet="abcdefghij-", min_size=1, max_size=12))
    low, high = sorted(draw(st.lists(st.sampled_from(["TLSv1.2", "TLSv1.3"]),
                                     min_size=2, max_size=2)))
    if draw(st.booleans()):
        options["minVersion"], options["maxVersion"] = low, high
    if draw(st.booleans()):
        options["ciphers"] = draw(st.lists(st.sampled_from(_NIST12), min_size=1, unique=True))
    if draw(st.booleans()):
        options["ciphersuites"] = draw(st.lists(st.sampled_from(_NIST13), min_size=1,
                                                unique=True))
    if draw(st.booleans()):
        options["groups"] = draw(st.lists(st.sampled_from(["P-256", "P-384", "secp256r1"]),
                                          min_size=1, unique=True))
    if draw(st.booleans()):
        options["clientAuth"] = draw(st.sampled_from(["none", "optional", "required"]))
    if draw(st.booleans()):
        options["allowPeers"] = draw(st.lists(st.sampled_from([
            "dns:*.ward3.hospital.example", "ip:10.0.0.0/8",
            "uri:spiffe://hospital.example/*", "email:*@lab.example", "cn:PUMP-0042"]),
            min_size=1, unique=True))
    if draw(st.booleans()):
        options["handshakeTimeout"] = draw(st.integers(min_value=6, max_value=600))
    if draw(st.booleans()):
        options["alpn"] = draw(st.lists(st.sampled_from(["h2", "http/1.1", "mllp"]),
                                        min_size=1, unique=True))
    return options


_KEYS = ["name", "profile", "minVersion", "maxVersion", "ciphers", "ciphersuites", "groups",
         "clientAuth", "allowPeers", "pinSPKI", "handshakeTimeout", "alpn", "revocation",
         "crlReload", "ocsp", "unknownKey", "systemCAs"]
_VALUES = st.one_of(st.text(max_size=20), st.integers(), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.lists(st.text(max_size=10), max_size=3),
                    st.sampled_from(_VERSIONS + _NIST12 + ["legacy", "soft", "P-256"]))


class PolicyFileFuzzTests(SynchronousTestCase):
    """
    Policy files: what parses round-trips; anything else is a
    L{PolicyError} naming the file.
    """

    def write(self, text: str) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(directory, ignore_errors=True))
        path = os.path.join(directory, "policy.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    @settings(max_examples=100)
    @given(_validOptions())
    def test_validRoundTrip(self, options: Dict[str, Any]) -> None:
        """
        A policy file written from valid options loads to the same policy
        as C{buildPolicy(**options)}.
        """
        path = self.write("".join(f"{k} = {_toml(v)}\n" for k, v in options.items()))
        self.assertEqual(loadPolicyFile(path), buildPolicy(**options))

    @settings(max_examples=200)
    @given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5))
    def test_anyKeysAndValues(self, options: Dict[str, Any]) -> None:
        """
        Any mix of known and unknown keys with values of any type either
        loads or raises L{PolicyError} whose message names the file.
        """
        path = self.write("".join(f"{k} = {_toml(v)}\n" for k, v in options.items()))
        try:
            loadPolicyFile(path)
        except PolicyError as e:
            self.assertIn(path, str(e))

    @settings(max_examples=200)
    @given(st.text(max_size=200))
    def test_anyText(self, text: str) -> None:
        """
        Any text at all, as a policy file, either loads or raises
        L{PolicyError} naming the file.
        """
        path = self.write(text)
        try:
            loadPolicyFile(path)
        except PolicyError as e:
            self.assertIn(path, str(e))


class AuditLineFuzzTests(SynchronousTestCase):
    """
    Audit files: a chain written by the observer verifies; any damage to a
    line is reported as a problem with a record number, never an exception.
    """

    def chain(self, records: List[Dict[str, Any]]) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(directory, ignore_errors=True))
        path = os.path.join(directory, "audit.jsonl")
        observer = AuditLogObserver(path, fsync="off")
        for record in records:
            observer.write(record)
        observer.close()
        return path

    _records = st.lists(st.fixed_dictionaries({
        "event": st.sampled_from(["connection.accepted", "handshake.rejected",
                                  "connection.closed"]),
        "peer": st.text(max_size=20),
        "reason": st.one_of(st.none(), st.text(max_size=10)),
        "bytesIn": st.integers(min_value=0, max_value=2**40),
    }), min_size=1, max_size=8)

    @settings(max_examples=100)
    @given(_records)
    def test_writtenChainVerifies(self, records: List[Dict[str, Any]]) -> None:
        """
        Whatever (JSON-ready) records are written, the file verifies and the
        report reads them back.
        """
        path = self.chain(records)
        result = verifyFiles([path])
        self.assertTrue(result.ok, result.problems)
        # chain.started, the records, chain.closed
        self.assertEqual(result.records, len(records) + 2)
        self.assertTrue(result.completeness.closedCleanly)
        buildReport(iterRecords([path]))

    @settings(max_examples=200)
    @given(_records, st.data())
    def test_damagedLines(self, records: List[Dict[str, Any]], data: Any) -> None:
        """
        Replacing any line with arbitrary bytes, or inserting arbitrary bytes
        as a line, is reported by L{verifyFiles} (with a line number), and
        never raises.
        """
        path = self.chain(records)
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        junk = data.draw(st.binary(max_size=80).filter(lambda b: b"\n" not in b))
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if data.draw(st.booleans()):
            if lines[index] == junk:
                return
            lines[index] = junk
        else:
            lines.insert(index, junk)
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        result = verifyFiles([path])
        self.assertFalse(result.ok)
        self.assertGreaterEqual(result.problems[0].line, 1)
        list(iterRecords([path]))
