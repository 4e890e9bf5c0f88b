"""The figures of a run (:class:`Result`), computed from the recorder, and their tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import loadgen
from loadgen import Recorder


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
    lost_acked: int = 0
    """Deliveries missing of publishes that were acknowledged (``lost`` also counts the
    recipients of publishes the server refused with an error)."""
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
    unanswered: int = 0
    """Publishes neither acknowledged nor refused when the drain ended (their fate is
    unknown to the run: committed later, or never)."""
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
    store_cpu_us_per_delivery: float = float("nan")
    """Scaled-out runs: the PostgreSQL backends of the run's database."""
    bus_cpu_us_per_delivery: float = float("nan")
    """Scaled-out runs: the run's redis-server."""
    all_cpu_us_per_delivery: float = float("nan")
    """Scaled-out runs: nodes + PostgreSQL backends + redis-server."""
    ack_timeline: str = ""
    """Publish acknowledgement latency by second of the run (p50 / max, ms, and refused
    publishes): when a server fell behind, and whether it recovered."""
    load: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def order_errors(self) -> int:
        """Deskbell promises one ordered stream per agent by ``seq``: pipelined publishes
        are committed concurrently, so publish order is not delivery order and does not
        count. The brokers promise publish order per publisher and topic."""
        return self.seq_gaps if self.target.startswith("deskbell") else self.out_of_order

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.order_errors or self.publish_errors)


def summarize(res: Result, rec: Recorder, pub: loadgen.Publisher, warmup: int) -> None:
    """Fill ``res`` from the recorder: latency over events after ``warmup``."""
    n, events = rec.n, pub.sent
    res.events = events
    res.deliveries = n * events
    res.received = rec.received
    res.lost = rec.lost(events)
    n_ = rec.n
    lat_ = rec.latency
    res.lost_acked = sum(
        1
        for k in range(events)
        if pub.ack_ns[k] >= 0
        for i in range(k * n_, (k + 1) * n_)
        if lat_[i] < 0
    )
    res.duplicates = rec.duplicates
    res.out_of_order = rec.out_of_order
    res.seq_gaps = rec.seq_gaps
    res.publish_errors = pub.errors
    if not isinstance(pub, loadgen.NatsPublisher) and getattr(pub, "qos", 1):
        res.unanswered = pub.sent - pub.acked - pub.errors
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
    if res.rate and events and not isinstance(pub, (loadgen.NatsPublisher, loadgen.MqttPublisher)):
        per = max(1, round(res.rate))
        parts = []
        for start in range(0, events, per):
            got = sorted(v for v in pub.ack_ns[start : start + per] if v >= 0)
            refused = sum(1 for v in pub.ack_ns[start : start + per] if v < 0)
            cell = f"{loadgen.percentile(got, 0.5) / 1e6:.0f}/{got[-1] / 1e6:.0f}" if got else "-"
            parts.append(cell + (f" ({refused} refused)" if refused else ""))
        res.ack_timeline = ", ".join(f"{i}s {c}" for i, c in enumerate(parts))
    acks = sorted(v for v in pub.ack_ns[warmup:events] if v >= 0)
    if acks and not isinstance(pub, loadgen.NatsPublisher):
        res.ack_p50_ms = loadgen.percentile(acks, 0.5) / 1e6
        res.ack_p99_ms = loadgen.percentile(acks, 0.99) / 1e6


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
    ("lost_acked", "of which of acknowledged publishes", "{}"),
    ("publish_errors", "publishes refused with an error", "{}"),
    ("unanswered", "publishes unanswered when the drain ended", "{}"),
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
SCALE_ROWS = [
    ("store_cpu_us_per_delivery", "PostgreSQL backends CPU per delivery (µs)", "{:.2f}"),
    ("bus_cpu_us_per_delivery", "redis-server CPU per delivery (µs)", "{:.2f}"),
    ("all_cpu_us_per_delivery", "nodes + PostgreSQL + Redis CPU per delivery (µs)", "{:.2f}"),
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


def table(
    results: list[Result],
    rows: list[tuple[str, str, str]],
    window: int,
    main: str = "deskbell",
) -> str:
    """One column per result, ``main`` first; ratios are ``main`` over each other one
    (with ``main`` the scaled-out run, that includes the single-node Deskbell)."""
    desk = next(r for r in results if r.target == main)
    refs = [r for r in results if r.target != main]
    head = [
        "figure",
        "Deskbell" if main == "deskbell" else main,
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
