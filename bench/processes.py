"""The processes a benchmark run measures: deskbell-server, the brokers, py-spy.

Starting, pinning and prioritising them, and reading their CPU time and memory.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from loadgen import BenchError

INBOX = "Support"
TPUT_INBOX = "Throughput"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Meter:
    """Server (or broker) RSS and CPU, and this process's CPU, around a run."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# ------------------------------------------------------------------------------ Deskbell
def server_exe() -> str:
    beside = Path(sys.executable).parent / "deskbell-server"
    found = str(beside) if beside.exists() else shutil.which("deskbell-server")
    if not found:
        raise BenchError("deskbell-server is not installed: pip install -e . first")
    return found


BACKEND_ENV: dict[str, str] = dict(os.environ)
NICE = [0]  # the nice value of the server, the brokers and the load generator


def backend_source() -> str:
    """Where the server's code comes from: folder, git commit, and whether it is modified."""
    out = subprocess.run(
        [sys.executable, "-c", "import backend, os; print(os.path.dirname(backend.__file__))"],
        capture_output=True,
        text=True,
        env=BACKEND_ENV,
        check=True,
        cwd="/",  # not this checkout's own backend/
    ).stdout.strip()
    folder = Path(out).parent
    git = ["git", "-C", str(folder)]
    rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if rev.returncode:
        return str(folder)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "backend"], capture_output=True, text=True
    ).stdout.strip()
    return f"{folder} at {rev.stdout.strip()}" + (" with uncommitted changes" if dirty else "")


def use_backend_from(folder: Path) -> None:
    """Run deskbell-server from another source tree (to measure a proposed fix)."""
    BACKEND_ENV["PYTHONPATH"] = str(folder.resolve())


def cli(db: Path, *args: str) -> dict:
    out = subprocess.run(
        [server_exe(), *args, "--db", str(db), "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=BACKEND_ENV,
    )
    return json.loads(out.stdout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Seeded:
    db: Path
    tokens: list[str]
    tput_token: str
    service_token: str


def seed(folder: Path, agents: int) -> Seeded:
    """A fresh database: ``agents`` agents of one inbox, one more alone in another."""
    db = folder / "bench.sqlite3"
    rows = folder / "agents.csv"
    with rows.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["email", "name", "inboxes"])
        for i in range(agents):
            w.writerow([f"agent{i}@bench.example", f"Agent {i}", INBOX])
        w.writerow(["tput@bench.example", "Throughput", TPUT_INBOX])
    imported = cli(db, "agent", "import", str(rows), "--issue-tokens")
    tokens = imported["tokens"]
    service = cli(db, "service-token", "issue", "bench")["token"]
    return Seeded(
        db,
        [tokens[f"agent{i}@bench.example"] for i in range(agents)],
        tokens["tput@bench.example"],
        service,
    )


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[str]:
    """A temporary folder for the database and the server log, or ``keep`` (left)."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="deskbell-bench-") as tmp:
            yield tmp
        return
    keep.mkdir(parents=True, exist_ok=True)
    for stale in keep.glob("bench.sqlite3*"):
        stale.unlink()
    yield str(keep)


class ServerProcess:
    """``deskbell-server serve`` pinned to one core, on a fixed free port, restartable."""

    def __init__(self, db: Path, core: int, log: Path):
        self.db, self.core, self.log = db, core, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start and wait until ``/healthz`` answers."""
        cmd = ["nice", "-n", str(NICE[0]), "taskset", "-c", str(self.core), server_exe()]
        cmd += ["serve", "--db", str(self.db), "--port", str(self.port)]
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=err, env=BACKEND_ENV
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"deskbell-server exited: {self.log.read_text()[-2000:]}")
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("deskbell-server did not come up in 30 s") from None
                time.sleep(0.05)

    def terminate(self) -> None:
        """Ask for the graceful stop (close 1001 to every client, commits finished)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop gracefully and wait for the process to exit."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@contextlib.contextmanager
def deskbell_server(db: Path, core: int, log: Path) -> Iterator[ServerProcess]:
    """A started :class:`ServerProcess`, stopped on exit."""
    server = ServerProcess(db, core, log)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------ brokers
def broker_pid(name: str) -> int | None:
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name:
            return int(p.pid)
    return None


def autogroup_nice(pid: int, value: int) -> int | None:
    """Set the nice value of ``pid``'s scheduler autogroup; returns the old one.

    With autogroups (the Linux default), a nice value only weighs against processes of
    the same session: other sessions on the machine are weighed by their autogroup's
    nice, so that is the one that must change to give a run priority.
    """
    path = Path(f"/proc/{pid}/autogroup")
    try:
        before = int(path.read_text().split("nice")[1])
        path.write_text(str(value))
    except (OSError, IndexError, ValueError):
        return None
    return before


@contextlib.contextmanager
def pinned(pid: int | None, core: int) -> Iterator[None]:
    """Pin a running broker to ``core`` at the benchmark's nice value for the run (as
    the Deskbell server is), then give it back the CPUs and priority it had."""
    if pid is None:
        yield
        return
    proc = psutil.Process(pid)
    before, niceness = os.sched_getaffinity(pid), proc.nice()
    group = None
    try:
        os.sched_setaffinity(pid, {core})
        proc.nice(NICE[0])
        group = autogroup_nice(pid, NICE[0])
    except (PermissionError, psutil.AccessDenied):
        before = set()
    try:
        yield
    finally:
        if before:
            os.sched_setaffinity(pid, before)
            proc.nice(niceness)
        if group is not None:
            autogroup_nice(pid, group)


def start_profile(pid: int, out: Path | None, seconds: float) -> subprocess.Popen | None:
    """py-spy on the server for the publishing phase, as collapsed stacks."""
    if out is None:
        return None
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise BenchError("--profile needs py-spy: pip install py-spy")
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--nonblocking",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_profile(path: Path, top: int = 25) -> str:
    """The functions with the most samples: inclusive (anywhere on the stack) and self."""
    if not path.exists():
        return "  (py-spy wrote nothing)"
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") if "(" in f else f
            for f in stack.split(";")[1:]
        ]
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
    out = [f"  {total} samples; inclusive:"]
    for f, n in sorted(inclusive.items(), key=lambda x: -x[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {f}")
    out.append("  self:")
    for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {f}")
    return "\n".join(out)
