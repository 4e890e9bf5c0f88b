"""Fan-out benchmark: Deskbell against Mosquitto (QoS 0 and 1) and NATS, same workload.

    python bench/backend_fanout.py --agents 1000 --rate 50 --seconds 20
    python bench/backend_fanout.py --agents 5000 --rate 10 --seconds 20
    python bench/backend_fanout.py --agents 1000 --rate 15 --seconds 20 \
        --db postgresql --bus redis --nodes 2

Starts ``deskbell-server serve`` on a fresh SQLite file and a free port, pinned to one
core (``taskset``); the load generator (bench/loadgen.py, one epoll loop) pins itself to
the other. N agents of one inbox connect and resume; a service publishes
``ticket.assigned`` events to ``inbox:<name>`` at the given rate and counts the
acknowledgements. Then the same subscribers, publisher and payload size run against the
brokers already on this machine (pinned to the server's core for the run, restored
after). Last, acknowledged publishes per second with a pipelined publisher.

With ``--db postgresql --bus redis --nodes 2``, also runs the same workload on two
``deskbell-server`` processes (each pinned to its own core, or unpinned with
``--node-cores none``) sharing a fresh PostgreSQL database (created for the run,
dropped after) and a private redis-server: agents spread evenly over the nodes, each
publish sent to a node picked at random. Its table puts the scaled-out run first, with
ratios to the single-node SQLite run and the brokers of the same run; CPU and RSS are
summed over the nodes, and the CPU of the PostgreSQL backends and redis-server is shown
beside them. ``--targets scaled`` runs the scaled-out setup alone.

With ``--restart``, also restarts the server under every connected agent and times the
reconnect storm. Prints a table with the command line, the machine load and, for each
figure, the ratio Deskbell/reference and the DESIGN.md budget. Exits 1 if Deskbell lost,
duplicated or reordered a delivery, or a publish failed.

Modules: loadgen (the clients), processes (server, brokers, py-spy), fanout_report
(figures and tables).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
from fanout_report import ROWS, SCALE_ROWS, TPUT_ROWS, Result, summarize, table
from loadgen import BenchError, Loop, Recorder
from processes import (
    BACKEND_ENV,
    INBOX,
    NICE,
    TPUT_INBOX,
    Meter,
    RedisServer,
    Seeded,
    ServerProcess,
    SideMeter,
    autogroup_nice,
    backend_source,
    broker_pid,
    deskbell_nodes,
    deskbell_server,
    free_port,
    loadavg,
    own_cpu,
    pinned,
    postgres_database,
    redis_server,
    seed,
    start_profile,
    summarize_profile,
    use_backend_from,
    workdir,
)

MARKER_BYTES = 30  # "#<k>@<19-digit ns>|" is about this long


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
    side: SideMeter | None = None,
) -> Result:
    """Connect ``agents`` subscribers, publish, and measure.

    ``meter`` may cover several server processes (the nodes of a scaled-out run): CPU
    and RSS are their sums, and ``profile`` gets one py-spy per process (``.node<i>``
    added to the name after the first). ``side``: also the CPU of PostgreSQL and Redis."""
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
        for part in getattr(pub, "parts", [pub]):
            loop.add(part)  # type: ignore[arg-type]
        loop.run_until(
            lambda: bool(getattr(pub, "open", False) or getattr(pub, "connected", False)),
            time.monotonic() + 10,
            "the publisher",
        )
        time.sleep(0.5)
        loop.run_once(0)
        res.rss_per_conn_kib = (meter.rss() - rss0) / agents / 1024
        spies = [
            start_profile(
                pid,
                profile if i == 0 or profile is None else profile.with_suffix(f".node{i}.txt"),
                max_seconds or events / max(rate, 1),
            )
            for i, pid in enumerate(meter.pids)
        ]
        if side is not None:
            side.start()
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
        side_cpu = side.stop() if side is not None else None
        for i, spy in enumerate(spies):
            if spy is not None and profile is not None:
                spy.wait()
                out = profile if i == 0 else profile.with_suffix(f".node{i}.txt")
                res.notes.append(f"profile: {out}\n" + summarize_profile(out))
        res.server_cpu_pct = 100 * cpu / wall
        res.loadgen_cpu_pct = 100 * (own_cpu() - own0) / wall
        summarize(res, rec, pub, warmup)
        res.cpu_us_per_delivery = cpu / max(1, res.received) * 1e6
        res.loadgen_us_per_delivery = (own_cpu() - own0) / max(1, res.received) * 1e6
        if side_cpu is not None:
            pg, bus, backends = side_cpu
            res.store_cpu_us_per_delivery = pg / max(1, res.received) * 1e6
            res.bus_cpu_us_per_delivery = bus / max(1, res.received) * 1e6
            res.all_cpu_us_per_delivery = (cpu + pg + bus) / max(1, res.received) * 1e6
            res.notes.append(
                f"{backends} PostgreSQL backends of the run's database at the end; over the "
                f"run PostgreSQL used {100 * pg / wall:.0f} % and redis-server "
                f"{100 * bus / wall:.0f} % of a core, the nodes {100 * cpu / wall:.0f} % "
                "(summed)"
            )
        if hasattr(pub, "per_part"):
            res.notes.append(f"publishes per node: {pub.per_part}")
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


def node_cores(args: argparse.Namespace) -> list[int | None]:
    """The core of each node: ``--node-cores 0,1`` puts node i on the i-th (cycling);
    ``none`` leaves them to the scheduler."""
    if args.node_cores == "none":
        return [None] * args.nodes
    cores = [int(c) for c in args.node_cores.split(",")]
    return [cores[i % len(cores)] for i in range(args.nodes)]


def scaled_name(args: argparse.Namespace) -> str:
    return f"deskbell-{args.nodes}n-pg"


def run_scaled(
    args: argparse.Namespace, folder: Path, report: Callable[[Result], None]
) -> tuple[list[Result], float]:
    """The same fan-out (and throughput) against ``--nodes`` deskbell-server processes
    on one fresh PostgreSQL database and one Redis: agent i on node i mod N, each
    publish to a node picked at random (``--publish-to``). CPU and RSS are summed over
    the nodes; the PostgreSQL backends and redis-server are measured beside them."""
    name = scaled_name(args)
    results = []
    local = contextlib.nullcontext(RedisServer("local", None))
    with (
        postgres_database(args.pg_url, args.pool_size) as (url, dbname),
        redis_server(args.redis_url, folder) if args.bus == "redis" else local as bus,
    ):
        seeded = seed(folder, args.agents, url)
        cores = node_cores(args)
        with deskbell_nodes(url, cores, folder, ("--bus", bus.url)) as nodes:
            ports = [node.port for node in nodes]
            meter = Meter(*(node.pid for node in nodes))
            side = SideMeter(dbname, bus.pid)
            events = int(args.rate * args.seconds)
            print(
                f"  {name}: nodes on ports {ports}, cores "
                f"{[c if c is not None else 'any' for c in cores]}; database {dbname} "
                f"(pool_size {args.pool_size}); bus {bus.url}"
                + (" (private redis-server)" if bus.pid else ""),
                flush=True,
            )

            def spread(token: str, count: int, inbox: str, expect: int) -> loadgen.SpreadPublisher:
                return loadgen.SpreadPublisher(
                    [
                        loadgen.DeskbellPublisher(
                            "127.0.0.1",
                            port,
                            token,
                            count,
                            [f"inbox:{inbox}"],
                            args.pad,
                            args.keys,
                            expect,
                        )
                        for port in ports
                    ],
                    args.publish_to,
                )

            res = fanout(
                name,
                args.agents,
                args.rate,
                events,
                int(args.rate * args.warmup),
                lambda i, rec, state: loadgen.AgentClient(
                    i,
                    "127.0.0.1",
                    ports[i % len(ports)],
                    seeded.tokens[i],
                    args.deflate,
                    rec,
                    state,
                ),
                lambda: spread(seeded.service_token, events, INBOX, args.agents),  # type: ignore[arg-type,return-value]
                meter,
                args.window,
                profile=args.profile / "scaled-fanout.txt" if args.profile else None,
                side=side,
            )
            report(res)
            results.append(res)
            frame = res.frame_bytes
            if args.throughput_seconds:
                cap = 200_000
                res = fanout(
                    name,
                    1,
                    0,
                    cap,
                    0,
                    lambda i, rec, state: loadgen.AgentClient(
                        i, "127.0.0.1", ports[0], seeded.tput_token, args.deflate, rec, state
                    ),
                    lambda: spread(seeded.service_token, cap, TPUT_INBOX, 1),  # type: ignore[arg-type,return-value]
                    meter,
                    args.window,
                    max_seconds=args.throughput_seconds,
                    profile=args.profile / "scaled-throughput.txt" if args.profile else None,
                    side=side,
                )
                report(res)
                results.append(res)
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


def run_broadcast(
    args: argparse.Namespace, pad: int, report: Callable[[Result], None]
) -> list[Result]:
    """The same workload on bench/ws_broadcast.py: websockets' ``broadcast()`` alone."""
    port = free_port()
    cmd = [
        "nice",
        "-n",
        str(NICE[0]),
        sys.executable,
        str(Path(__file__).with_name("ws_broadcast.py")),
    ]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.PIPE, text=True, env=BACKEND_ENV
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "listening":
            raise BenchError("bench/ws_broadcast.py did not start")
        events = int(args.rate * args.seconds)
        with pinned(proc.pid, args.server_core):
            res = fanout(
                "ws-bcast",
                args.agents,
                args.rate,
                events,
                int(args.rate * args.warmup),
                lambda i, rec, state: loadgen.BroadcastSubscriber(i, "127.0.0.1", port, rec, state),
                lambda: loadgen.BroadcastPublisher("127.0.0.1", port, events, pad),
                Meter(proc.pid),
                args.window,
            )
    finally:
        proc.terminate()
        proc.wait(10)
    report(res)
    return [res]


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
        default="deskbell,mqtt0,mqtt1,nats,ws",
        help="comma-separated: deskbell, mqtt0, mqtt1, nats, ws (websockets broadcast(), "
        "bench/ws_broadcast.py) (with --db postgresql the "
        "scaled-out run comes after deskbell; --targets scaled runs it alone)",
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
    p.add_argument(
        "--client-core", type=int, default=1, help="load generator's core; -1: not pinned"
    )
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
    scale = p.add_argument_group(
        "scale-out",
        "with --db postgresql, also run --nodes deskbell-server processes on one fresh "
        "PostgreSQL database and one Redis, after the single-node SQLite run (target "
        "deskbell) and before the brokers; its table puts it first, with ratios to each",
    )
    scale.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: add the scaled-out run (needs --bus redis when --nodes > 1)",
    )
    scale.add_argument("--bus", choices=("local", "redis"), default="local")
    scale.add_argument("--nodes", type=int, default=1, help="server processes (scaled-out run)")
    scale.add_argument(
        "--node-cores",
        default="0,1",
        help="cores of the nodes, node i on the i-th (cycling), or 'none' to leave them unpinned",
    )
    scale.add_argument(
        "--publish-to",
        choices=("random", "alternate"),
        default="random",
        help="which node each event is published to",
    )
    scale.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an existing database of the PostgreSQL server to use: the run creates "
        "deskbell_bench_<random> there and drops it at the end",
    )
    scale.add_argument("--pool-size", type=int, default=10, help="each node's pool_size")
    scale.add_argument(
        "--redis-url",
        help="a Redis to share (a private channel is added); default: a private "
        "redis-server on a free port",
    )
    args = p.parse_args(argv)
    if args.db == "postgresql" and args.nodes > 1 and args.bus != "redis":
        p.error("--nodes > 1 needs --bus redis")
    if args.db == "sqlite" and (args.nodes > 1 or args.bus != "local"):
        p.error("--nodes and --bus redis need --db postgresql (SQLite is one process's)")
    if args.client_core >= 0:
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
    scaled = scaled_name(args) if args.db == "postgresql" else None
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
        f"both at nice {args.nice}"
        + (
            f"; {args.nodes} node(s) on cores {args.node_cores} with PostgreSQL + {args.bus} bus"
            if scaled
            else ""
        ),
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
            if scaled:
                out, frame = run_scaled(args, Path(tmp), report)
                results += out
            pad = max(0, round(frame) - MARKER_BYTES)
            if "mqtt0" in targets:
                results += run_mqtt(args, 0, pad, report)
            if "mqtt1" in targets:
                results += run_mqtt(args, 1, pad, report)
            if "nats" in targets:
                results += run_nats(args, pad, report)
            if "ws" in targets:
                results += run_broadcast(args, pad, report)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            for log in [Path(tmp) / "server.log", *sorted(Path(tmp).glob("node*.log"))]:
                if log.exists():
                    print(f"--- {log.name}", file=sys.stderr)
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
        + (
            f"Scaled out ({scaled}): {args.nodes} nodes on cores {args.node_cores}, "
            f"one fresh PostgreSQL database (pool_size {args.pool_size} per node), "
            f"{args.redis_url or 'a private redis-server'}; agent i on node i mod "
            f"{args.nodes}; each publish to "
            + ("a node picked at random" if args.publish_to == "random" else "the nodes in turn")
            + "; CPU and RSS summed over the nodes\n"
            if scaled
            else ""
        )
    )
    if scaled and any(r.target == scaled for r in fan):
        print(table(fan, ROWS + SCALE_ROWS, args.window, main=scaled))
    elif any(r.target == "deskbell" for r in fan):
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
    main = scaled if scaled and any(r.target == scaled for r in tput) else "deskbell"
    if any(r.target == main for r in tput):
        print(
            f"\n### Acknowledged publishes, one recipient, pipelined "
            f"(window {args.window}, {args.throughput_seconds:g} s)\n"
        )
        print(
            table(tput, TPUT_ROWS + (SCALE_ROWS if main != "deskbell" else []), args.window, main)
        )
    for r in results:
        for note in r.notes:
            print(f"note: {r.target}: {note}")
        if r.ack_timeline:
            print(
                f"note: {r.target}: publish ack p50/max (ms) by second of publishing: "
                + r.ack_timeline
            )
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
        if not r.clean and not r.target.startswith("deskbell"):
            print(
                f"warning: the reference {r.target} lost {r.lost}, duplicated "
                f"{r.duplicates}, reordered {r.order_errors}",
                file=sys.stderr,
            )
    bad: list[Result | Storm] = [
        r for r in results if not r.clean and r.target.startswith("deskbell")
    ]
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
