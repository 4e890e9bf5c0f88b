"""Instructions the server spends per delivery of a fan-out, counted by callgrind.

    python bench/fanout_instructions.py --agents 1000 --events 20

Wall-clock and CPU-time figures need a quiet machine; instruction counts do not. This
seeds a fresh SQLite file with ``agents`` agents of one inbox, starts ``deskbell-server
serve`` under ``valgrind --tool=callgrind`` with instrumentation off, connects and
resumes every agent (real WebSocket connections on loopback, from the load generator
in this process), turns instrumentation on, publishes ``events`` events to the inbox
and waits for every delivery, then dumps the counts. Everything the server did in that
window counts: the service request, the commit (every row stored), the bus, the
gateway, the frames and the socket writes.

``--window 1`` (the default) publishes one event at a time and waits for all of its
deliveries before the next, so each commit holds one event; a larger window keeps that
many publishes unacknowledged, so the writer may commit several events at once.

Prints the instructions per delivery (and per event); ``--keep DIR`` keeps the
callgrind output (``callgrind_annotate DIR/callgrind.out``) and the server's log.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import loadgen
from loadgen import BenchError, Loop, Recorder
from processes import (
    BACKEND_ENV,
    INBOX,
    free_port,
    seed,
    server_exe,
    summarize_profile,
    use_backend_from,
)


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def totals(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no totals in {path}")


def run(args: argparse.Namespace, folder: Path) -> int:
    seeded = seed(folder, args.agents)
    port = free_port()
    out = folder / "callgrind.out"
    measure = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    measure += ["--separate-threads=yes"] if args.threads else []
    cmd = [
        *([] if args.py_spy else measure),
        sys.executable,
        server_exe(),
        "serve",
        "--db",
        str(seeded.db),
        "--port",
        str(port),
    ]
    log = folder / "server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=BACKEND_ENV)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the server did not come up in 300 s") from None
                time.sleep(0.2)
        rec = Recorder(args.agents, args.events)
        state = {"live": 0, "closed": 0}
        loop = Loop()
        loadgen.connect_all(
            loop,
            lambda i: loadgen.AgentClient(
                i, "127.0.0.1", port, seeded.tokens[i], False, rec, state
            ),
            args.agents,
            state,
            timeout=600,
        )
        pub = loadgen.DeskbellPublisher(
            "127.0.0.1",
            port,
            seeded.service_token,
            args.events,
            [f"inbox:{INBOX}"],
            args.pad,
            True,
            args.agents,
        )
        loop.add(pub)
        loop.run_until(lambda: pub.open, time.monotonic() + 120, "the publisher")
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    *("record", "--pid", str(proc.pid), "--rate", "250"),
                    *("--format", "raw", "--output", str(args.py_spy)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)  # py-spy attaches
        else:
            callgrind(proc.pid, "--instr=on")
        k = 0
        deadline = time.monotonic() + 1800
        while k < args.events:
            while k < args.events and pub.outstanding < args.window:
                pub.publish(k)
                k += 1
            if args.window == 1:
                want = k * args.agents
                loop.run_until(
                    lambda: rec.received >= want and pub.outstanding == 0,  # noqa: B023
                    deadline,
                    f"event {k}",
                )
            else:
                loop.run_once(0.05)
        loop.run_until(
            lambda: rec.received >= args.events * args.agents and pub.outstanding == 0,
            deadline,
            "the last deliveries",
        )
        if args.py_spy:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            print(summarize_profile(args.py_spy, 40))
        else:
            callgrind(proc.pid, "--dump")
            callgrind(proc.pid, "--instr=off")
        lost = rec.lost(args.events)
        if pub.errors or lost or rec.duplicates or rec.out_of_order or state["closed"]:
            raise BenchError(
                f"errors {pub.errors} ({pub.first_error}), lost {lost}, duplicates "
                f"{rec.duplicates}, out of order {rec.out_of_order}, closed {state['closed']}"
            )
        loop.close()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(120)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if args.py_spy:
        return 0
    deliveries = args.events * args.agents
    if args.threads:
        # One file per thread of the dump: <out>.1-01 (the event loop's), -02, ...
        parts = sorted(Path(p) for p in glob.glob(f"{out}.1-*"))
        counts = [totals(part) for part in parts]
        for part, count in zip(parts, counts, strict=True):
            if count:
                thread = part.name.rsplit("-", 1)[1]
                print(f"thread {thread}: {count / deliveries:,.0f} instructions per delivery")
        instructions = sum(counts)
    else:
        dumps = sorted(glob.glob(f"{out}*"), key=lambda p: Path(p).stat().st_mtime)
        dumped = [Path(p) for p in dumps if Path(p).name != out.name] or [out]
        instructions = totals(dumped[0])
    print(
        f"agents {args.agents}, events {args.events}, window {args.window}: "
        f"{instructions:,} instructions, {instructions / deliveries:,.0f} per delivery, "
        f"{instructions / args.events:,.0f} per event"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--window", type=int, default=1, help="publishes awaiting their ok")
    p.add_argument("--pad", type=int, default=330, help="body bytes per event")
    p.add_argument("--keep", type=Path, help="keep the database, log and callgrind output")
    p.add_argument(
        "--threads",
        action="store_true",
        help="also print the instructions of each thread (event loop, SQLite writer, readers)",
    )
    p.add_argument("--backend-path", type=Path, help="run the server's backend from DIR")
    p.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="instead of counting: run the server natively and sample it with py-spy "
        "while it publishes (raw stacks to FILE, a summary printed)",
    )
    args = p.parse_args(argv)
    if args.backend_path:
        use_backend_from(args.backend_path)
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            return run(args, args.keep)
        with tempfile.TemporaryDirectory(prefix="deskbell-instr-") as tmp:
            return run(args, Path(tmp))
    except BenchError as exc:
        print(f"fanout_instructions: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
