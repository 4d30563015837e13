#!/usr/bin/env python3
"""
An external scan of securetcp with testssl.sh (Debian package
C{testssl.sh}): start C{twistd -n securetcp demo} (mTLS, client
certificates required, the C{nist-800-52r2} profile) on 127.0.0.1, run
C{testssl -p -E -U} against it and check that

  - only TLS 1.2 and TLS 1.3 are offered,
  - only the profile's cipher suites are offered, for each of the two,
  - no vulnerability is reported (no finding of severity LOW or worse,
    and no warning that a check could not be run),
  - client-initiated renegotiation is refused, tested over a completed
    mTLS handshake,
  - and the server's audit chain verifies afterwards.

Run it with C{tox -e testssl}, or from a checkout::

    python scans/testssl_scan.py [--testssl PATH] [--port N] [--keep DIR]

It exits 0 when every check passes, 1 with a summary of what failed, and 2
when the scan could not be run (testssl.sh or twistd missing, the server
did not start).  This file is deliberately outside C{tests/}: trial never
imports it.

testssl.sh 3.0 has no option for a client certificate (3.2 has C{--mtls}),
so testssl is pointed (C{--openssl}) at a small wrapper that adds the demo
device certificate to every C{openssl s_client} it runs.  Its own socket
probes (protocols, cipher lists, most vulnerabilities) need only the
ServerHello and run without one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

PROFILE = "nist-800-52r2"
#: Checks that a scan must have run (testssl finding ids).
VULNERABILITIES = ("heartbleed", "CCS", "ROBOT", "secure_renego", "secure_client_renego",
                   "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN",
                   "LOGJAM", "BEAST", "LUCKY13", "RC4")
BAD_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL")
START_TIMEOUT = 30.0


def _repositoryRoot() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _environment() -> Dict[str, str]:
    """
    The environment for the server: the installed securetcp if there is one
    (tox), else the checkout this script lives in.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        import securetcp  # noqa: F401
    except ImportError:
        root = _repositoryRoot()
        sys.path.insert(0, root)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
    return env


def _freePort() -> int:
    for _ in range(100):
        port = random.randint(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise SystemExit("no free port in 20000-32000")


def _twistd() -> Optional[str]:
    beside = os.path.join(os.path.dirname(sys.executable), "twistd")
    return beside if os.path.exists(beside) else shutil.which("twistd")


def _opensslWrapper(directory: str, openssl: str, cert: str, key: str) -> str:
    """
    A script that runs C{openssl}, adding our client certificate to every
    C{s_client}.
    """
    path = os.path.join(directory, "openssl-with-client-cert")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                'if [ "$1" = s_client ]; then\n'
                "    shift\n"
                f'    exec "{openssl}" s_client -cert "{cert}" -key "{key}" "$@"\n'
                "fi\n"
                f'exec "{openssl}" "$@"\n')
    os.chmod(path, 0o755)
    return path


class Server:
    """
    C{twistd -n securetcp demo} on 127.0.0.1:C{port}, output in a file.
    """

    def __init__(self, twistd: str, directory: str, port: int, env: Dict[str, str]) -> None:
        self.directory = os.path.join(directory, "demo")
        self.port = port
        self.logPath = os.path.join(directory, "twistd.log")
        self._log = open(self.logPath, "wb")
        self.process = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "securetcp", "demo", "--dir", self.directory,
             "--port", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=directory)

    def log(self) -> str:
        with open(self.logPath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def waitListening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if f"starting on {self.port}" in self.log():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def _cipherName(finding: str) -> str:
    match = re.search(r"\bx[0-9a-fA-F]+\s+(\S+)", finding)
    return match.group(1) if match else finding


def judge(findings: List[Dict[str, Any]], tls12: Tuple[str, ...],
          tls13: Tuple[str, ...]) -> Tuple[List[str], List[str]]:
    """
    Check testssl's JSON findings against the profile.

    @return: what passed and what failed, as readable lines.
    """
    passed: List[str] = []
    failed: List[str] = []
    byId = {f.get("id"): f for f in findings}

    for name, wanted in (("SSLv2", False), ("SSLv3", False), ("TLS1", False),
                         ("TLS1_1", False), ("TLS1_2", True), ("TLS1_3", True)):
        finding = byId.get(name)
        if finding is None:
            failed.append(f"protocol {name}: not tested")
            continue
        text = finding["finding"]
        offered = text.startswith("offered")
        line = f"protocol {name}: {text}"
        (passed if offered == wanted and (wanted or text.startswith("not offered"))
         else failed).append(line)

    offered: Dict[str, List[str]] = {}
    for finding in findings:
        match = re.match(r"cipher-(\w+?)_x[0-9a-fA-F]+$", str(finding.get("id")))
        if match:
            offered.setdefault(match.group(1), []).append(_cipherName(finding["finding"]))
    for protocol, allowed in (("tls1_2", tls12), ("tls1_3", tls13)):
        names = offered.pop(protocol, [])
        extra = [n for n in names if n not in allowed]
        if not names:
            failed.append(f"ciphers {protocol}: none found (was -E run?)")
        elif extra:
            failed.append(f"ciphers {protocol}: {extra} are not in {PROFILE}")
        else:
            passed.append(f"ciphers {protocol}: {', '.join(names)} (all in {PROFILE})")
    for protocol, names in offered.items():
        failed.append(f"ciphers {protocol}: offered {names} under a protocol that must be off")

    for name in VULNERABILITIES:
        finding = byId.get(name)
        if finding is None:
            failed.append(f"{name}: not tested")
    for finding in findings:
        if finding.get("severity") in BAD_SEVERITIES:
            failed.append(f"{finding['id']}: {finding['severity']}: {finding['finding']}")
    renegotiation = byId.get("secure_client_renego")
    if renegotiation is not None:
        line = (f"client-initiated renegotiation: {renegotiation['finding']} "
                f"({renegotiation['severity']})")
        ok = renegotiation["finding"].startswith("not vulnerable") and \
            renegotiation["severity"] == "OK"
        (passed if ok else failed).append(line)
    vulnerable = [f for f in findings if f.get("id") in VULNERABILITIES
                  and f.get("severity") not in BAD_SEVERITIES]
    if len(vulnerable) >= len(VULNERABILITIES):
        passed.append(f"{len(vulnerable)} vulnerability checks: none reported")
    return passed, failed


def _audit(server: Server, env: Dict[str, str]) -> Tuple[List[str], List[str]]:
    """
    The server's audit file: its policy, the mTLS handshakes testssl
    completed (so renegotiation was tried over a real connection), and
    C{audit verify}.
    """
    passed: List[str] = []
    failed: List[str] = []
    path = os.path.join(server.directory, "audit.jsonl")
    with open(path, "rb") as f:
        records = [json.loads(line) for line in f if line.strip()]
    loaded = [r for r in records if r.get("event") == "policy.loaded"]
    if loaded and loaded[0].get("profile") == PROFILE and loaded[0].get("clientAuth") == \
            "required" and loaded[0].get("mutual"):
        passed.append(f"server policy: {PROFILE}, mTLS, client certificates required")
    else:
        failed.append(f"server policy is not {PROFILE} mTLS: {loaded}")
    accepted = sum(r.get("event") == "connection.accepted" for r in records)
    rejected = sum(r.get("event") == "handshake.rejected" for r in records)
    if accepted:
        passed.append(f"audit: {accepted} mTLS connections accepted, {rejected} rejected")
    else:
        failed.append("audit: testssl completed no mTLS handshake, so renegotiation "
                      "was not tried over a real connection")
    result = subprocess.run([sys.executable, "-m", "securetcp", "audit", "verify", path],
                            capture_output=True, env=env, timeout=60)
    text = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    (passed if result.returncode == 0 else failed).append(f"audit verify: {text}")
    return passed, failed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testssl", default=None, help="the testssl.sh program")
    parser.add_argument("--openssl", default=shutil.which("openssl"),
                        help="the openssl binary testssl should use")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1")
    parser.add_argument("--keep", default=None, help="keep the scan's files in this directory")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up on testssl after this many seconds")
    options = parser.parse_args(argv)

    testssl = options.testssl or shutil.which("testssl") or shutil.which("testssl.sh")
    twistd = _twistd()
    if not testssl or not options.openssl or not twistd:
        print("cannot scan: needs testssl.sh (apt-get install testssl.sh), openssl and "
              f"twistd (found testssl={testssl}, openssl={options.openssl}, twistd={twistd})")
        return 2
    env = _environment()
    from securetcp.profiles import PROFILES

    profile = PROFILES[PROFILE]
    directory = options.keep or tempfile.mkdtemp(prefix="securetcp-testssl-")
    os.makedirs(directory, exist_ok=True)
    port = options.port or _freePort()
    started = time.monotonic()
    server = Server(twistd, directory, port, env)
    try:
        if not server.waitListening():
            print(f"cannot scan: twistd securetcp demo did not start:\n{server.log()}")
            return 2
        wrapper = _opensslWrapper(directory, options.openssl,
                                  os.path.join(server.directory, "client.pem"),
                                  os.path.join(server.directory, "client.key"))
        report = os.path.join(directory, "testssl.json")
        if os.path.exists(report):
            os.remove(report)
        argv = [testssl, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                "--openssl", wrapper, "--jsonfile", report, "-p", "-E", "-U",
                f"127.0.0.1:{port}"]
        scanStarted = time.monotonic()
        try:
            scan = subprocess.run(argv, capture_output=True, timeout=options.timeout,
                                  cwd=directory)
        except subprocess.TimeoutExpired:
            print(f"FAILED: testssl did not finish within {options.timeout:.0f}s")
            return 1
        scanSeconds = time.monotonic() - scanStarted
        with open(os.path.join(directory, "testssl.out"), "wb") as f:
            f.write(scan.stdout + scan.stderr)
        if not os.path.exists(report):
            print("cannot scan: testssl wrote no JSON report:\n"
                  + (scan.stdout + scan.stderr).decode("utf-8", "replace"))
            return 2
        with open(report) as f:
            findings = json.load(f)
        passed, failed = judge(findings, profile.tls12, profile.tls13)
        if server.process.poll() is not None:
            failed.append(f"the server ended during the scan:\n{server.log()}")
        else:
            passed.append("the server kept running through the scan")
    finally:
        server.stop()
    auditPassed, auditFailed = _audit(server, env)
    passed += auditPassed
    failed += auditFailed

    print(f"testssl scan of twistd securetcp demo ({PROFILE}, mTLS) on 127.0.0.1:{port}")
    for line in passed:
        print(f"  ok    {line}")
    for line in failed:
        print(f"  FAIL  {line}")
    print(f"testssl took {scanSeconds:.1f}s, the whole scan {time.monotonic() - started:.1f}s; "
          f"files in {directory}")
    if failed:
        print(f"FAILED: {len(failed)} check(s)")
        return 1
    print("PASSED")
    if not options.keep:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
