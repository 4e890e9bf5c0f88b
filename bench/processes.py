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
    """Server (or broker) RSS and CPU, and this process's CPU, around a run.

    Several pids (the nodes of a scaled-out run): RSS and CPU are their sums."""

    def __init__(self, pid: int, *more: int):
        self.procs = [psutil.Process(p) for p in (pid, *more)]
        self.proc = self.procs[0]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def rss(self) -> int:
        return sum(int(p.memory_info().rss) for p in self.procs)

    def cpu(self) -> float:
        total = 0.0
        for p in self.procs:
            t = p.cpu_times()
            total += float(t.user + t.system)
        return total


class SideMeter:
    """CPU of processes a scaled-out run depends on but does not start per node: the
    PostgreSQL backends serving the run's database (found by their process title) and
    the run's own redis-server. Backends that appear during the run count from 0."""

    def __init__(self, pg_database: str | None = None, redis_pid: int | None = None):
        self.pg_database = pg_database
        self.redis = psutil.Process(redis_pid) if redis_pid else None
        self._pg0: dict[int, float] = {}
        self._redis0 = 0.0

    def _pg(self) -> dict[int, float]:
        if not self.pg_database:
            return {}
        mark = f" {self.pg_database} "
        out = {}
        for p in psutil.process_iter(["cmdline"]):
            try:
                title = " ".join(p.info["cmdline"] or [])
                if title.startswith("postgres:") and mark in title:
                    t = p.cpu_times()
                    out[p.pid] = float(t.user + t.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def _redis(self) -> float:
        if self.redis is None:
            return 0.0
        t = self.redis.cpu_times()
        return float(t.user + t.system)

    def start(self) -> None:
        self._pg0, self._redis0 = self._pg(), self._redis()

    def stop(self) -> tuple[float, float, int]:
        """(PostgreSQL backends' CPU s, redis-server's CPU s, backends seen)."""
        pg1 = self._pg()
        pg = sum(v - self._pg0.get(pid, 0.0) for pid, v in pg1.items())
        return pg, self._redis() - self._redis0, len(pg1)


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


def cli(db: Path | str, *args: str) -> dict:
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
    db: Path | str
    tokens: list[str]
    tput_token: str
    service_token: str


def seed(folder: Path, agents: int, url: str | None = None) -> Seeded:
    """A fresh database: ``agents`` agents of one inbox, one more alone in another.

    SQLite in ``folder`` unless ``url`` names another (an empty PostgreSQL database)."""
    db: Path | str = url or folder / "bench.sqlite3"
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
    """``deskbell-server serve`` pinned to one core (``core`` None: not pinned), on a
    fixed free port, restartable. ``extra`` goes on its command line (``--bus …``)."""

    def __init__(self, db: Path | str, core: int | None, log: Path, extra: tuple[str, ...] = ()):
        self.db, self.core, self.log, self.extra = db, core, log, extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start and wait until ``/healthz`` answers."""
        cmd = ["nice", "-n", str(NICE[0])]
        if self.core is not None:
            cmd += ["taskset", "-c", str(self.core)]
        cmd += [server_exe(), "serve", "--db", str(self.db), "--port", str(self.port)]
        cmd += list(self.extra)
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
def deskbell_server(
    db: Path | str, core: int | None, log: Path, extra: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    """A started :class:`ServerProcess`, stopped on exit."""
    server = ServerProcess(db, core, log, extra)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def deskbell_nodes(
    db: str, cores: list[int | None], folder: Path, extra: tuple[str, ...]
) -> Iterator[list[ServerProcess]]:
    """Several started nodes on one database and bus (``node<i>.log`` each), stopped on
    exit. The first one starts alone, so that it runs the migrations by itself."""
    nodes: list[ServerProcess] = []
    try:
        for i, core in enumerate(cores):
            node = ServerProcess(db, core, folder / f"node{i}.log", extra)
            nodes.append(node)
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.stop()


# ------------------------------------------------------------------------------ PostgreSQL, Redis
@contextlib.contextmanager
def postgres_database(admin_url: str, pool_size: int) -> Iterator[tuple[str, str]]:
    """A fresh database ``deskbell_bench_<random>`` on the server of ``admin_url``,
    dropped on exit. Yields (its URL with ``?pool_size=``, its name)."""
    import asyncio
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = "deskbell_bench_" + os.urandom(6).hex()

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    parts = urlsplit(admin_url)
    url = urlunsplit(parts._replace(path="/" + name, query=f"pool_size={pool_size}"))
    try:
        yield url, name
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@dataclass
class RedisServer:
    url: str
    pid: int | None
    """The private redis-server's pid; None when the run uses a Redis given to it."""


@contextlib.contextmanager
def redis_server(url: str | None, folder: Path) -> Iterator[RedisServer]:
    """``url`` as given (its own channel added), or a private ``redis-server`` on a free
    port of 127.0.0.1, without persistence, stopped on exit."""
    channel = "deskbell-bench-" + os.urandom(4).hex()
    if url:
        sep = "&" if "?" in url else "?"
        yield RedisServer(f"{url}{sep}channel={channel}", None)
        return
    exe = shutil.which("redis-server")
    if not exe:
        raise BenchError("redis-server is not installed (or pass --redis-url)")
    port = free_port()
    cmd = ["nice", "-n", str(NICE[0]), exe, "--bind", "127.0.0.1", "--port", str(port)]
    cmd += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    with (folder / "redis.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("redis-server did not start: see redis.log")
            time.sleep(0.05)
        # nice execs redis-server: the pid is redis-server's.
        yield RedisServer(f"redis://127.0.0.1:{port}/0?channel={channel}", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
