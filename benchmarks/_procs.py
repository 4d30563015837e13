"""
Starting, pinning, measuring and always stopping the processes of a run.

    with Processes() as procs:
        server = procs.start("mtls", [...], core=0)
        waitListening(server, port)
        cpuSeconds(server.pid), residentKiB(server.pid)

Every process started here is stopped (SIGTERM, then SIGKILL) by its own
pid when the block ends, whatever happens.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


#: every CPU this process may use, before the harness pins itself
ALL_CPUS = frozenset(os.sched_getaffinity(0))


def pinned(core: Optional[int]) -> Any:
    """
    A C{preexec_fn} that pins the child to C{core} (to every CPU if
    C{None}) and raises its open-file limit to the hard limit (for the
    idle-connection test).
    """
    def setup() -> None:
        os.sched_setaffinity(0, {core} if core is not None else set(ALL_CPUS))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return setup


def cpuSeconds(pid: int) -> float:
    """
    User + system CPU time of process C{pid} (all its threads, including
    threads that have exited) from C{/proc/PID/stat}.
    """
    return sum(cpuSplit(pid))


def cpuSplit(pid: int) -> Tuple[float, float]:
    """
    The user and the system (kernel) CPU time of process C{pid}, apart.
    """
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def descendants(pid: int) -> List[int]:
    """
    C{pid} and every process below it (read from /proc).
    """
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            parents[int(entry)] = int(data[data.rindex(")") + 2:].split()[1])
    found, todo = [pid], [pid]
    while todo:
        current = todo.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        todo += children
    return found


def treeCPUSeconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpuSeconds(pid)
        except OSError:
            pass
    return total


def residentKiB(pid: int) -> int:
    """
    The resident set size (VmRSS) of C{pid} in KiB.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def freePort() -> int:
    """
    A free TCP port on 127.0.0.1 below 32768 (outside the ephemeral range).
    """
    import random

    for _ in range(500):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


class Processes:
    """
    The processes of one run; all stopped on exit.
    """

    def __init__(self) -> None:
        self._running: List[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in reversed(self._running):
            self.stop(proc)

    def start(self, args: Sequence[str], core: Optional[int], env: Optional[Dict[str, str]] = None,
              cwd: Optional[str] = None, log: Optional[str] = None,
              stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(list(args), stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, preexec_fn=pinned(core))
        if log:
            out.close()  # type: ignore[union-attr]
        self._running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc in self._running:
            self._running.remove(proc)


def waitListening(proc: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> None:
    """
    Wait until something accepts TCP connections on 127.0.0.1:C{port}.

    @raise RuntimeError: if C{proc} exits or C{timeout} passes first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")



def releaseHeld(client: subprocess.Popen[bytes]) -> None:
    """
    Tell the load generator holding idle connections (C{loadgen hold}) to
    let them go: it closes them once it reads C{done} on its standard input.
    A generator that already exited is fine.
    """
    if client.stdin is None:
        return
    try:
        client.stdin.write(b"done\n")
        client.stdin.close()
    except OSError:
        pass

def runJSON(args: Sequence[str], core: Optional[int], timeout: float) -> Dict[str, Any]:
    """
    Run a load generator command pinned to C{core} and parse the JSON object
    it prints last.
    """
    result = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout, preexec_fn=pinned(core), check=False)
    lines = [line for line in result.stdout.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(args)} printed no result (exit {result.returncode}): "
                           f"{result.stderr.decode()[-500:]}")
    data: Dict[str, Any] = json.loads(lines[-1])
    data["exit"] = result.returncode
    return data
