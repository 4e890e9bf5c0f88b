"""Fan-out benchmark: Deskbell against Mosquitto (QoS 0 and 1) and NATS, same workload.

    python bench/backend_fanout.py --agents 1000 --rate 50 --seconds 20
    python bench/backend_fanout.py --agents 5000 --rate 10 --seconds 20

Starts ``deskbell-server serve`` on a fresh SQLite file and a free port, pinned to one
core (``taskset``); the load generator (bench/loadgen.py, one epoll loop) pins itself to
the other. N agents of one inbox connect and resume; a service publishes
``ticket.assigned`` events to ``inbox:<name>`` at the given rate and counts the
acknowledgements. Then the same subscribers, publisher and payload size run against the
brokers already on this machine (pinned to the server's core for the run, restored
after). Last, acknowledged publishes per second with a pipelined publisher.

Prints a table with the command line, the machine load and, for each figure, the ratio
Deskbell/reference and the DESIGN.md budget. Exits 1 if any delivery was lost,
duplicated or out of order, or a publish failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
from loadgen import BenchError, Loop, Recorder

INBOX = "Support"
TPUT_INBOX = "Throughput"
MARKER_BYTES = 30  # "#<k>@<19-digit ns>|" is about this long


# ------------------------------------------------------------------------------ results
@dataclass
class Result:
    target: str
    agents: int
    rate: float
    events: int = 0
    deliveries: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    seq_gaps: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    last_median_ms: float = float("nan")
    last_p99_ms: float = float("nan")
    read_p50_ms: float = float("nan")
    read_p99_ms: float = float("nan")
    read_last_median_ms: float = float("nan")
    ack_p50_ms: float = float("nan")
    ack_p99_ms: float = float("nan")
    publish_errors: int = 0
    first_error: str = ""
    frame_bytes: float = 0.0
    rss_per_conn_kib: float = float("nan")
    cpu_us_per_delivery: float = float("nan")
    server_cpu_pct: float = float("nan")
    loadgen_cpu_pct: float = float("nan")
    loadgen_us_per_delivery: float = float("nan")
    publish_late_max_ms: float = float("nan")
    publish_late_mean_ms: float = float("nan")
    connect_s: float = float("nan")
    acked_per_s: float = float("nan")
    load: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def order_errors(self) -> int:
        """Deskbell promises one ordered stream per agent by ``seq``: pipelined publishes
        are committed concurrently, so publish order is not delivery order and does not
        count. The brokers promise publish order per publisher and topic."""
        return self.seq_gaps if self.target == "deskbell" else self.out_of_order

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.order_errors or self.publish_errors)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def summarize(res: Result, rec: Recorder, pub: loadgen.Publisher, warmup: int) -> None:
    """Fill ``res`` from the recorder: latency over events after ``warmup``."""
    n, events = rec.n, pub.sent
    res.events = events
    res.deliveries = n * events
    res.received = rec.received
    res.lost = rec.lost(events)
    res.duplicates = rec.duplicates
    res.out_of_order = rec.out_of_order
    res.seq_gaps = rec.seq_gaps
    res.publish_errors = pub.errors
    res.first_error = pub.first_error
    res.frame_bytes = rec.frame_bytes / rec.received if rec.received else 0.0
    lat = rec.latency
    values = sorted(v for v in lat[warmup * n : events * n] if v >= 0)
    res.p50_ms = loadgen.percentile(values, 0.50) / 1e6
    res.p99_ms = loadgen.percentile(values, 0.99) / 1e6
    res.max_ms = values[-1] / 1e6 if values else float("nan")
    lasts = []
    for k in range(warmup, events):
        seg = lat[k * n : (k + 1) * n]
        if min(seg) >= 0:
            lasts.append(max(seg))
    if lasts:
        res.last_median_ms = statistics.median(lasts) / 1e6
        res.last_p99_ms = loadgen.percentile(sorted(lasts), 0.99) / 1e6
    read = rec.read_latency
    values = sorted(v for v in read[warmup * n : events * n] if v >= 0)
    res.read_p50_ms = loadgen.percentile(values, 0.50) / 1e6
    res.read_p99_ms = loadgen.percentile(values, 0.99) / 1e6
    lasts = []
    for k in range(warmup, events):
        seg = read[k * n : (k + 1) * n]
        if min(seg) >= 0:
            lasts.append(max(seg))
    if lasts:
        res.read_last_median_ms = statistics.median(lasts) / 1e6
    acks = sorted(v for v in pub.ack_ns[warmup:events] if v >= 0)
    if acks and not isinstance(pub, loadgen.NatsPublisher):
        res.ack_p50_ms = loadgen.percentile(acks, 0.5) / 1e6
        res.ack_p99_ms = loadgen.percentile(acks, 0.99) / 1e6


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


# ------------------------------------------------------------------------------ one run
Factory = Callable[[int, Recorder, dict[str, int]], loadgen.Conn]


def fanout(
    target: str,
    agents: int,
    rate: float,
    events: int,
    warmup: int,
    subscriber: Factory,
    publisher: Callable[[], loadgen.Publisher],
    meter: Meter,
    window: int,
    max_seconds: float = 0,
    profile: Path | None = None,
) -> Result:
    """Connect ``agents`` subscribers, publish, and measure."""
    res = Result(target, agents, rate, load=loadavg())
    rec = Recorder(agents, events)
    state = {"live": 0, "closed": 0}
    loop = Loop()
    try:
        time.sleep(0.5)
        rss0 = meter.rss()
        t0 = time.monotonic()
        loadgen.connect_all(loop, lambda i: subscriber(i, rec, state), agents, state)
        res.connect_s = time.monotonic() - t0
        pub = publisher()
        loop.add(pub)  # type: ignore[arg-type]
        loop.run_until(
            lambda: bool(getattr(pub, "open", False) or getattr(pub, "connected", False)),
            time.monotonic() + 10,
            "the publisher",
        )
        time.sleep(0.5)
        loop.run_once(0)
        res.rss_per_conn_kib = (meter.rss() - rss0) / agents / 1024
        spy = start_profile(meter.proc.pid, profile, max_seconds or events / max(rate, 1))
        cpu0, own0, wall0 = meter.cpu(), own_cpu(), time.monotonic()

        def drained() -> bool:
            return rec.received >= pub.sent * agents and pub.acked + pub.errors >= pub.sent

        loadgen.pace(
            loop,
            pub,
            pub.publish,
            rate,
            window,
            drained,  # type: ignore[attr-defined]
            lambda: rec.received + pub.acked,
            drain_timeout=120,
            max_seconds=max_seconds,
        )
        wall = time.monotonic() - wall0
        cpu = meter.cpu() - cpu0
        if spy is not None and profile is not None:
            spy.wait()
            res.notes.append(f"profile: {profile}\n" + summarize_profile(profile))
        res.server_cpu_pct = 100 * cpu / wall
        res.loadgen_cpu_pct = 100 * (own_cpu() - own0) / wall
        summarize(res, rec, pub, warmup)
        res.cpu_us_per_delivery = cpu / max(1, res.received) * 1e6
        res.loadgen_us_per_delivery = (own_cpu() - own0) / max(1, res.received) * 1e6
        if rate:
            res.publish_late_max_ms = pub.max_late * 1e3
            res.publish_late_mean_ms = pub.late_total / max(1, pub.sent) * 1e3
        if not rate:
            last = max(
                pub.ack_ns[k] + pub.send_ns[k] for k in range(pub.sent) if pub.ack_ns[k] >= 0
            )
            res.acked_per_s = pub.acked / ((last - pub.send_ns[0]) / 1e9)
        if state["closed"]:
            res.notes.append(f"{state['closed']} connections closed by the server")
    finally:
        loop.close()
    return res


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


@dataclass
class Storm:
    """The restart budget: every agent reconnecting at once to a restarted server."""

    agents: int
    events_before: int
    events_during: int
    stop_s: float = float("nan")
    start_s: float = float("nan")
    first_resumed_s: float = float("nan")
    all_resumed_s: float = float("nan")
    all_delivered_s: float = float("nan")
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    seq_gaps: int = 0
    truncated: int = 0
    publish_errors: int = 0
    load: str = ""

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.seq_gaps or self.publish_errors)


def restart_storm(args: argparse.Namespace, seeded: Seeded, server: ServerProcess) -> Storm:
    """Connect every agent, restart the server (SIGTERM, start again on the same file and
    port), publish ``events_before`` events, then reconnect every agent at once, each
    resuming after the last seq it saw, while events keep coming at 1/s.

    Times are from the first reconnect attempt; "resumed" is the resume's ``ok``."""
    n = args.agents
    before, during = 5, int(args.restart_seconds)
    storm = Storm(n, before, during, load=loadavg())
    host, port = "127.0.0.1", server.port
    first = Recorder(n, 1)
    state = {"live": 0, "closed": 0}
    loop = Loop()
    try:
        loadgen.connect_all(
            loop,
            lambda i: loadgen.AgentClient(
                i, host, port, seeded.tokens[i], args.deflate, first, state
            ),
            n,
            state,
        )
        t0 = time.monotonic()
        server.terminate()  # the clients answer the close handshakes while it stops
        loop.run_until(lambda: state["closed"] >= n, time.monotonic() + 30, "the goodbyes")
        server.stop()
        storm.stop_s = time.monotonic() - t0
        t0 = time.monotonic()
        server.start()
        storm.start_s = time.monotonic() - t0
        events = before + during
        rec = Recorder(n, events)
        rec.last_seq = first.last_seq
        after = {"live": 0, "closed": 0}
        pub = loadgen.DeskbellPublisher(
            host,
            port,
            seeded.service_token,
            events,
            [f"inbox:{INBOX}"],
            args.pad,
            args.keys,
            n,
        )
        loop.add(pub)
        loop.run_until(lambda: pub.open, time.monotonic() + 10, "the publisher")
        for k in range(before):
            pub.publish(k)
        loop.run_until(
            lambda: pub.acked + pub.errors >= before,
            time.monotonic() + 30,
            "the publishes before the storm",
        )
        spy = start_profile(
            server.pid, args.profile / "restart.txt" if args.profile else None, during
        )
        t0 = time.monotonic()
        for i in range(n):
            loop.add_connecting(
                loadgen.AgentClient(
                    i, host, port, seeded.tokens[i], args.deflate, rec, after, reconnect=True
                )
            )
        deadline = t0 + 120
        k = before
        while time.monotonic() < deadline:
            now = time.monotonic()
            if k < events and now >= t0 + (k - before):
                pub.publish(k)
                k += 1
                continue
            loop.run_once(0.002)
            if after["live"] and storm.first_resumed_s != storm.first_resumed_s:
                storm.first_resumed_s = time.monotonic() - t0
            if after["live"] >= n and storm.all_resumed_s != storm.all_resumed_s:
                storm.all_resumed_s = time.monotonic() - t0
            if k >= events and rec.received >= events * n and after["live"] >= n:
                storm.all_delivered_s = time.monotonic() - t0
                break
        if spy is not None:
            spy.wait()
        storm.received = rec.received
        storm.lost = rec.lost(events)
        storm.duplicates = rec.duplicates
        storm.seq_gaps = rec.seq_gaps
        storm.truncated = after.get("truncated", 0)
        storm.publish_errors = pub.errors
    finally:
        loop.close()
    return storm


def run_deskbell(
    args: argparse.Namespace,
    folder: Path,
    report: Callable[[Result], None],
    storms: list[Storm],
) -> tuple[list[Result], float]:
    """Fan-out (and throughput) against a fresh deskbell-server. Returns the results and
    the mean notification frame size, so the references carry the same payload."""
    seeded = seed(folder, args.agents)
    results = []
    with deskbell_server(seeded.db, args.server_core, folder / "server.log") as server:
        port = server.port
        meter = Meter(server.pid)
        events = int(args.rate * args.seconds)
        res = fanout(
            "deskbell",
            args.agents,
            args.rate,
            events,
            int(args.rate * args.warmup),
            lambda i, rec, state: loadgen.AgentClient(
                i, "127.0.0.1", port, seeded.tokens[i], args.deflate, rec, state
            ),
            lambda: loadgen.DeskbellPublisher(
                "127.0.0.1",
                port,
                seeded.service_token,
                events,
                [f"inbox:{INBOX}"],
                args.pad,
                args.keys,
                args.agents,
            ),
            meter,
            args.window,
            profile=args.profile / "fanout.txt" if args.profile else None,
        )
        report(res)
        results.append(res)
        frame = res.frame_bytes
        if args.throughput_seconds:
            cap = 200_000
            res = fanout(
                "deskbell",
                1,
                0,
                cap,
                0,
                lambda i, rec, state: loadgen.AgentClient(
                    i, "127.0.0.1", port, seeded.tput_token, args.deflate, rec, state
                ),
                lambda: loadgen.DeskbellPublisher(
                    "127.0.0.1",
                    port,
                    seeded.service_token,
                    cap,
                    [f"inbox:{TPUT_INBOX}"],
                    args.pad,
                    args.keys,
                    1,
                ),
                meter,
                args.window,
                max_seconds=args.throughput_seconds,
                profile=args.profile / "throughput.txt" if args.profile else None,
            )
            report(res)
            results.append(res)
        if args.restart:
            storm = restart_storm(args, seeded, server)
            print(
                f"  deskbell   restart storm: {storm.agents} agents resumed in "
                f"{storm.all_resumed_s:.2f} s (first {storm.first_resumed_s:.2f} s), all "
                f"events in {storm.all_delivered_s:.2f} s; lost {storm.lost} dup "
                f"{storm.duplicates} gaps {storm.seq_gaps}; stop {storm.stop_s:.1f} s, start "
                f"{storm.start_s:.1f} s; load {storm.load}",
                flush=True,
            )
            storms.append(storm)
    return results, frame


def run_mqtt(
    args: argparse.Namespace, qos: int, pad: int, report: Callable[[Result], None]
) -> list[Result]:
    pid = broker_pid("mosquitto")
    if pid is None:
        raise BenchError("mosquitto is not running")
    topic = f"deskbell-bench/{os.getpid()}/{qos}"
    meter = Meter(pid)
    events = int(args.rate * args.seconds)
    results = []
    with pinned(pid, args.server_core):
        res = fanout(
            f"mqtt-qos{qos}",
            args.agents,
            args.rate,
            events,
            int(args.rate * args.warmup),
            lambda i, rec, state: loadgen.MqttSubscriber(
                i, args.mqtt_host, args.mqtt_port, topic, qos, rec, state
            ),
            lambda: loadgen.MqttPublisher(args.mqtt_host, args.mqtt_port, topic, qos, events, pad),
            meter,
            args.window,
        )
        report(res)
        results.append(res)
        if qos == 1 and args.throughput_seconds:
            cap = 400_000
            res = fanout(
                "mqtt-qos1",
                1,
                0,
                cap,
                0,
                lambda i, rec, state: loadgen.MqttSubscriber(
                    i, args.mqtt_host, args.mqtt_port, topic + "/t", qos, rec, state
                ),
                lambda: loadgen.MqttPublisher(
                    args.mqtt_host, args.mqtt_port, topic + "/t", qos, cap, pad
                ),
                meter,
                args.window,
                max_seconds=args.throughput_seconds,
            )
            report(res)
            results.append(res)
    return results


def run_nats(args: argparse.Namespace, pad: int, report: Callable[[Result], None]) -> list[Result]:
    pid = broker_pid("nats-server")
    if pid is None:
        raise BenchError("nats-server is not running")
    subject = f"deskbell-bench.{os.getpid()}"
    events = int(args.rate * args.seconds)
    with pinned(pid, args.server_core):
        res = fanout(
            "nats",
            args.agents,
            args.rate,
            events,
            int(args.rate * args.warmup),
            lambda i, rec, state: loadgen.NatsSubscriber(
                i, args.nats_host, args.nats_port, subject, rec, state
            ),
            lambda: loadgen.NatsPublisher(args.nats_host, args.nats_port, subject, events, pad),
            Meter(pid),
            args.window,
        )
    report(res)
    return [res]


# ------------------------------------------------------------------------------ report
BUDGETS = {
    # figure: (budget text, predicate on the Deskbell value), from DESIGN.md "Budgets"
    "p50_ms": ("< 6 ms (1,000 @ 50/s)", lambda v, a: a != 1000 or v < 6),
    "p99_ms": ("< 15 ms (1,000 @ 50/s)", lambda v, a: a != 1000 or v < 15),
    "last_median_ms": ("< 60 ms (5,000 @ 10/s)", lambda v, a: a != 5000 or v < 60),
    "cpu_us_per_delivery": ("< 15 µs", lambda v, a: v < 15),
    "acked_per_s": ("≥ 5,000/s", lambda v, a: v >= 5000),
}

ROWS = [
    ("p50_ms", "event→socket p50 (ms)", "{:.2f}"),
    ("p99_ms", "event→socket p99 (ms)", "{:.2f}"),
    ("max_ms", "event→socket max (ms)", "{:.1f}"),
    ("last_median_ms", "time to last subscriber, median (ms)", "{:.1f}"),
    ("last_p99_ms", "time to last subscriber, p99 (ms)", "{:.1f}"),
    ("read_p50_ms", "as read by the load generator: p50 (ms)", "{:.2f}"),
    ("read_p99_ms", "as read by the load generator: p99 (ms)", "{:.2f}"),
    ("read_last_median_ms", "as read by the load generator: last, median (ms)", "{:.1f}"),
    ("ack_p50_ms", "publish ack p50 (ms)", "{:.2f}"),
    ("ack_p99_ms", "publish ack p99 (ms)", "{:.2f}"),
    ("received", "deliveries received", "{:,}"),
    ("lost", "lost (not delivered when the drain ended)", "{}"),
    ("duplicates", "duplicates", "{}"),
    ("order_errors", "out of order (Deskbell: seq gaps or reversals)", "{}"),
    ("out_of_order", "arrived in other than publish order", "{}"),
    ("frame_bytes", "bytes per delivered message", "{:.0f}"),
    ("rss_per_conn_kib", "server RSS per connection (KiB)", "{:.1f}"),
    ("cpu_us_per_delivery", "server CPU per delivery (µs)", "{:.2f}"),
    ("server_cpu_pct", "server CPU during the run (% of a core)", "{:.0f}"),
    ("loadgen_cpu_pct", "load generator CPU (% of a core)", "{:.0f}"),
    ("loadgen_us_per_delivery", "load generator CPU per delivery (µs)", "{:.2f}"),
    ("publish_late_mean_ms", "publish later than due, mean (ms): load generator busy", "{:.2f}"),
    ("publish_late_max_ms", "publish later than due, max (ms)", "{:.1f}"),
    ("connect_s", "connect + subscribe/resume all (s)", "{:.1f}"),
]
TPUT_ROWS = [
    ("acked_per_s", "acknowledged publishes/s (window {window})", "{:,.0f}"),
    ("ack_p50_ms", "publish ack p50 (ms)", "{:.1f}"),
    ("ack_p99_ms", "publish ack p99 (ms)", "{:.1f}"),
    ("received", "deliveries received", "{:,}"),
    ("lost", "lost (not delivered when the drain ended)", "{}"),
    ("order_errors", "out of order (Deskbell: seq gaps or reversals)", "{}"),
    ("out_of_order", "arrived in other than publish order", "{}"),
    ("cpu_us_per_delivery", "server CPU per publish (µs)", "{:.1f}"),
    ("server_cpu_pct", "server CPU during the run (% of a core)", "{:.0f}"),
    ("loadgen_cpu_pct", "load generator CPU (% of a core)", "{:.0f}"),
]


def fmt(fmt_: str, v: float) -> str:
    if v != v:  # NaN
        return "-"
    return fmt_.format(int(v) if fmt_ in ("{}", "{:,}") else v)


def value(r: Result, key: str) -> float:
    return float(getattr(r, key))


def table(results: list[Result], rows: list[tuple[str, str, str]], window: int) -> str:
    desk = next(r for r in results if r.target == "deskbell")
    refs = [r for r in results if r.target != "deskbell"]
    head = [
        "figure",
        "Deskbell",
        *(r.target for r in refs),
        *(f"ratio /{r.target}" for r in refs),
        "budget (DESIGN.md)",
        "met",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, f in rows:
        dv = value(desk, key)
        cells = [label.format(window=window), fmt(f, dv)]
        cells += [fmt(f, value(r, key)) for r in refs]
        for r in refs:
            rv = value(r, key)
            cells.append(f"{dv / rv:.2f}" if rv and rv == rv and dv == dv else "-")
        budget = BUDGETS.get(key)
        if budget and (key != "cpu_us_per_delivery" or desk.rate):
            ok = budget[1](dv, desk.agents)
            applies = not ("(1,000" in budget[0] and desk.agents != 1000) and not (
                "(5,000" in budget[0] and desk.agents != 5000
            )
            cells += [budget[0], ("yes" if ok else "**no**") if applies else "n/a"]
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--rate", type=float, default=50, help="events per second")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of events left out of the latency figures (not of the loss counts)",
    )
    p.add_argument(
        "--targets",
        default="deskbell,mqtt0,mqtt1,nats",
        help="comma-separated: deskbell, mqtt0, mqtt1, nats",
    )
    p.add_argument(
        "--throughput-seconds",
        type=float,
        default=10,
        help="pipelined publish test length; 0 skips it",
    )
    p.add_argument("--window", type=int, default=500, help="outstanding publishes at most")
    p.add_argument("--pad", type=int, default=200, help="filler bytes in each event body")
    p.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="agents offer permessage-deflate, as the desktop app (websockets' default) does",
    )
    p.add_argument(
        "--keys",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each publish carries an idempotency key",
    )
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--nats-host", default="127.0.0.1")
    p.add_argument("--nats-port", type=int, default=4222)
    p.add_argument("--json-out", type=Path, help="also write the results here")
    p.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="nice value (process and scheduler autogroup) for the server, the brokers (during "
        "their runs) and the load "
        "generator, so that other work on a shared machine disturbs the figures less",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the database and the server log (server.log) in DIR",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="also restart the server under all agents and time their reconnect storm",
    )
    p.add_argument(
        "--restart-seconds",
        type=float,
        default=10,
        help="events published at 1/s while the agents reconnect",
    )
    p.add_argument(
        "--backend-path",
        type=Path,
        metavar="DIR",
        help="import the server's `backend` package from DIR (a patched copy)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run py-spy on deskbell-server while it publishes; stacks go to DIR",
    )
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {args.client_core})
    NICE[0] = args.nice
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except PermissionError:
        print(
            f"warning: cannot set nice {args.nice} without root; figures may suffer "
            "more from other work on the machine",
            file=sys.stderr,
        )
        NICE[0] = 0
    # This session's autogroup: the load generator and the server; restored on return.
    own_group = autogroup_nice(os.getpid(), args.nice)
    try:
        return run(args, argv)
    finally:
        if own_group is not None:
            autogroup_nice(os.getpid(), own_group)


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    targets = set(args.targets.split(","))
    command = "python bench/backend_fanout.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.agents + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        print(
            f"error: {args.agents} connections need {need} file descriptors; the hard "
            f"limit is {hard}. Raise it (ulimit -Hn) and run again.",
            file=sys.stderr,
        )
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    if args.backend_path:
        use_backend_from(args.backend_path)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    source = backend_source()
    print(
        f"# {command}\n# started {started}; load average {loadavg()}; "
        f"server on core {args.server_core}, load generator on core {args.client_core}, "
        f"both at nice {args.nice}",
        flush=True,
    )
    results: list[Result] = []

    def report(r: Result) -> None:
        kind = "throughput" if not r.rate else f"{r.agents} subscribers @ {r.rate:g}/s"
        print(
            f"  {r.target:10} {kind:28} p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
            f"last {r.last_median_ms:6.1f} ms  lost {r.lost}  dup {r.duplicates}  "
            f"order {r.order_errors}  acked/s {r.acked_per_s:,.0f}  "
            f"cpu/deliv {r.cpu_us_per_delivery:.2f} µs  lg {r.loadgen_cpu_pct:.0f}%  "
            f"load {r.load}"
            + (f"  errors {r.publish_errors}: {r.first_error[:200]}" if r.publish_errors else ""),
            flush=True,
        )

    frame = float(args.pad + 350)
    storms: list[Storm] = []
    with workdir(args.workdir) as tmp:
        try:
            if "deskbell" in targets:
                desk, frame = run_deskbell(args, Path(tmp), report, storms)
                results += desk
            pad = max(0, round(frame) - MARKER_BYTES)
            if "mqtt0" in targets:
                results += run_mqtt(args, 0, pad, report)
            if "mqtt1" in targets:
                results += run_mqtt(args, 1, pad, report)
            if "nats" in targets:
                results += run_nats(args, pad, report)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            log = Path(tmp) / "server.log"
            if log.exists():
                print(log.read_text()[-3000:], file=sys.stderr)
            return 1

    fan = [r for r in results if r.rate]
    tput = [r for r in results if not r.rate]
    print(
        f"\n## {args.agents} subscribers of one inbox/topic, {args.rate:g} events/s, "
        f"{args.seconds:g} s ({args.warmup:g} s warm-up left out of latencies)\n"
    )
    print(
        f"Command: `{command}`  \nStarted {started}; load average at each run: "
        + "; ".join(f"{r.target} {r.load}" for r in results)
        + "  \n"
        f"Agents offer permessage-deflate: {'yes' if args.deflate else 'no'}; "
        f"publishes carry idempotency keys: {'yes' if args.keys else 'no'}; "
        f"server/broker on core {args.server_core}, load generator on core "
        f"{args.client_core}, both at nice {args.nice}  \nBackend: {source}; "
        f"{psutil.cpu_count()} CPUs\n"
    )
    if any(r.target == "deskbell" for r in fan):
        print(table(fan, ROWS, args.window))
    for st in storms:
        print(
            f"\n### Restart: {st.agents} agents reconnecting at once\n\n"
            "| figure | Deskbell | budget (DESIGN.md) | met |\n|---|---|---|---|\n"
            f"| all resumed (s) | {st.all_resumed_s:.2f} | within 10 s | "
            f"{'yes' if st.all_resumed_s < 10 and st.clean else '**no**'} |\n"
            f"| first resumed (s) | {st.first_resumed_s:.2f} | | |\n"
            f"| every event at every agent (s) | {st.all_delivered_s:.2f} | | |\n"
            f"| events: before the storm / during it (1/s) | {st.events_before} / "
            f"{st.events_during} | | |\n"
            f"| lost / duplicates / seq gaps | {st.lost} / {st.duplicates} / {st.seq_gaps} "
            "| nothing missed | |\n"
            f"| graceful stop, start to /healthz (s) | {st.stop_s:.1f}, {st.start_s:.1f} | | |"
        )
    if any(r.target == "deskbell" for r in tput):
        print(
            f"\n### Acknowledged publishes, one recipient, pipelined "
            f"(window {args.window}, {args.throughput_seconds:g} s)\n"
        )
        print(table(tput, TPUT_ROWS, args.window))
    for r in results:
        for note in r.notes:
            print(f"note: {r.target}: {note}")
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "command": command,
                    "started": started,
                    "backend": source,
                    "results": [asdict(r) for r in results],
                    "restart": [asdict(st) for st in storms],
                },
                indent=1,
                default=str,
            )
        )
    for r in results:
        if not r.clean and r.target != "deskbell":
            print(
                f"warning: the reference {r.target} lost {r.lost}, duplicated "
                f"{r.duplicates}, reordered {r.order_errors}",
                file=sys.stderr,
            )
    bad: list[Result | Storm] = [r for r in results if not r.clean and r.target == "deskbell"]
    bad += [st for st in storms if not st.clean]
    for r in bad:
        what = "restart" if isinstance(r, Storm) else r.target
        print(
            f"FAILED: {what}: lost {r.lost}, duplicates {r.duplicates}, seq gaps "
            f"{r.seq_gaps}, publish errors {r.publish_errors} "
            f"{getattr(r, 'first_error', '')[:300]}",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
