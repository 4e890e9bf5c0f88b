"""What one idle agent connection costs the server: memory held, and the work to set it up.

    python bench/connection_cost.py --agents 1000               # memory, with a breakdown
    python bench/connection_cost.py --agents 1000 --callgrind   # instructions per set-up

Two servers, the same client (``bench/loadgen.py``'s agents: handshake with a Bearer
token, ``welcome``, ``resume`` after its ``last_seq``, the ``ok``), one after the other
in one run:

- **deskbell**: ``deskbell-server serve`` on a fresh SQLite file seeded with the agents,
  run from this script (``--child``) so that it can report on itself: the same
  ``backend.cli.main`` the installed command runs, with a control thread that answers
  ``mark`` and ``report`` on stdin;
- **bare**: a plain ``websockets`` server with websockets' defaults (but no compression:
  the clients do not offer it), whose handler sends a ``welcome`` and answers every
  frame with the ``ok`` of a resume. The floor any Python server on websockets pays.

Memory: with the N agents idle (live, resumed), the server's RSS growth over N; then
the same again with ``tracemalloc`` on: the Python allocations still held, grouped by
the file and line that made them, and the objects the cyclic collector tracks, by type.

``--callgrind``: each server under ``valgrind --tool=callgrind`` with instrumentation
on only while the N agents connect and resume (64 handshakes under way at once, as
``bench/backend_fanout.py`` connects them): the instructions of set-up per connection,
everything the server did in that window (accept, HTTP, token check, ``welcome``,
``resume``, logging). ``--keep DIR`` keeps the callgrind output
(``callgrind_annotate DIR/deskbell.callgrind.1``) and the server's log.

``--profile``: each server natively, with cProfile on its event loop's thread during
the same window; prints the functions by own and by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import gc
import glob
import io
import json
import os
import pstats
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loadgen
from fanout_instructions import callgrind, totals
from loadgen import BenchError, Loop, Recorder
from processes import BACKEND_ENV, free_port, seed, workdir

PAGE = os.sysconf("SC_PAGE_SIZE")
TARGETS = ("bare", "deskbell")


# ------------------------------------------------------------------------- in the server
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _types() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


class _Control:
    """Answers the parent on stdin/stdout: ``mark`` takes the baseline, ``report N``
    prints what was added since, per connection, as one JSON line."""

    def __init__(self, trace: bool):
        self.trace = trace
        self.loop: asyncio.AbstractEventLoop | None = None
        """The server's event loop, once it is serving (for ``profile``)."""
        self.profile = cProfile.Profile()
        self.base_rss = 0
        self.base_types: collections.Counter[str] = collections.Counter()
        self.base_snap: tracemalloc.Snapshot | None = None

    def serve(self) -> None:
        for line in sys.stdin:
            command, *rest = line.split()
            gc.collect()
            if command == "mark":
                self.base_rss, self.base_types = _rss(), _types()
                if self.trace:
                    self.base_snap = tracemalloc.take_snapshot()
                print(json.dumps({"ok": True}), flush=True)
            elif command == "report":
                print(json.dumps(self.report(int(rest[0]))), flush=True)
            elif command == "profile":
                # cProfile sees only the thread that enables it: the loop's.
                self.on_loop(self.profile.enable if rest[0] == "on" else self.profile.disable)
                if rest[0] == "off":
                    text = io.StringIO()
                    stats = pstats.Stats(self.profile, stream=text)
                    stats.sort_stats("tottime").print_stats(30)
                    stats.sort_stats("cumulative").print_stats(60)
                    Path(rest[1]).write_text(text.getvalue())
                print(json.dumps({"ok": True}), flush=True)

    def on_loop(self, call: Callable[[], object]) -> None:
        assert self.loop is not None, "the server is not serving yet"
        done = threading.Event()

        def run() -> None:
            call()
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(60)

    def report(self, n: int) -> dict[str, Any]:
        types = _types()
        types.subtract(self.base_types)
        out: dict[str, Any] = {
            "rss": (_rss() - self.base_rss) / n,
            "objects": sum(types.values()) / n,
            "types": [(name, c / n) for name, c in types.most_common(25) if c > 0],
        }
        if self.base_snap is not None:
            snap = tracemalloc.take_snapshot()
            skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
            diff = snap.filter_traces(skip).compare_to(self.base_snap.filter_traces(skip), "lineno")
            out["traced"] = sum(d.size_diff for d in diff) / n
            out["lines"] = [
                (f"{_short(d.traceback[0].filename)}:{d.traceback[0].lineno}", d.size_diff / n)
                for d in diff[:40]
                if d.size_diff > 0
            ]
            by_file: collections.Counter[str] = collections.Counter()
            for d in diff:
                by_file[_short(d.traceback[0].filename)] += d.size_diff
            out["files"] = [(f, s / n) for f, s in by_file.most_common(20) if s > 0]
        return out


def _short(filename: str) -> str:
    for mark in ("site-packages/", "/lib/python3.11/", "/backend/", "/bench/"):
        if mark in filename:
            head = "backend/" if mark == "/backend/" else ""
            return head + filename.split(mark, 1)[1]
    return filename


def _child(target: str, port: int, db: str, trace: bool) -> int:
    if trace:
        tracemalloc.start(1)
    control = _Control(trace)
    threading.Thread(target=control.serve, daemon=True).start()
    if target == "deskbell":
        from backend import app, cli

        tune_gc = app._tune_gc

        def serving() -> None:  # called on the loop once the server listens
            control.loop = asyncio.get_running_loop()
            tune_gc()

        app._tune_gc = serving
        return cli.main(["serve", "--db", db, "--port", str(port)])
    asyncio.run(_bare(port, control))
    return 0


async def _bare(port: int, control: _Control) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    control.loop = asyncio.get_running_loop()

    welcome = json.dumps({"type": "welcome", "last_seq": 0})
    ok = json.dumps({"type": "ok", "id": "r", "last_seq": 0})

    async def handler(ws: ServerConnection) -> None:
        await ws.send(welcome)
        async for _ in ws:
            await ws.send(ok)

    async with serve(
        handler, "127.0.0.1", port, subprotocols=["deskbell.v1"], compression=None, backlog=4096
    ) as server:
        await server.serve_forever()


# ---------------------------------------------------------------------------- the client
class Server:
    """One server child (``--child``), optionally under callgrind."""

    def __init__(
        self, target: str, folder: Path, db: Path, trace: bool, callgrind: Path | None = None
    ):
        self.port = free_port()
        self.callgrind = callgrind
        cmd = [sys.executable, __file__, "--child", target, "--port", str(self.port)]
        cmd += ["--db", str(db)] + (["--trace"] if trace else [])
        if callgrind is not None:
            measure = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            cmd = [*measure, f"--callgrind-out-file={callgrind}", *cmd]
        self.log = folder / f"{target}.log"
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**BACKEND_ENV, "PYTHONPATH": _pythonpath()},
                text=True,
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the server did not come up in 300 s") from None
                time.sleep(0.2)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the server did not answer: {self.log.read_text()[-2000:]}")
        return dict(json.loads(line))

    def instrument(self, on: bool) -> None:
        callgrind(self.proc.pid, "--instr=on" if on else "--dump")

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(120)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pythonpath() -> str:
    here = Path(__file__).resolve().parent
    parts = [str(here), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(parts)


def connect(port: int, tokens: list[str]) -> Loop:
    """Connect and resume every agent; return the loop that holds them open."""
    n = len(tokens)
    rec = Recorder(n, 1)
    state = {"live": 0, "closed": 0}
    loop = Loop()
    loadgen.connect_all(
        loop,
        lambda i: loadgen.AgentClient(i, "127.0.0.1", port, tokens[i], False, rec, state),
        n,
        state,
        timeout=900,
    )
    if state["closed"]:
        raise BenchError(f"{state['closed']} agents were closed while connecting")
    return loop


def settle(loop: Loop, seconds: float = 1.0) -> None:
    """Let the server finish what the set-up started (background writes, say)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        loop.run_once(0.05)


def memory(args: argparse.Namespace, folder: Path, db: Path, tokens: list[str]) -> None:
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for target in args.targets:
        results[target] = {}
        for trace in (False, True):
            server = Server(target, folder, db, trace)
            try:
                settle_loop = Loop()
                settle(settle_loop, 0.5)
                server.ask("mark")
                loop = connect(server.port, tokens)
                settle(loop)
                results[target]["traced" if trace else "plain"] = server.ask(
                    f"report {len(tokens)}"
                )
                loop.close()
            finally:
                server.stop()
    n = len(tokens)
    print(f"memory per idle connection, {n} agents connected and resumed")
    print(f"{'':10}{'RSS':>12}{'traced':>12}{'gc objects':>12}")
    for target, got in results.items():
        rss = got["plain"]["rss"] / 1024
        traced = got["traced"]["traced"] / 1024
        print(f"{target:10}{rss:10.1f} KiB{traced:8.1f} KiB{got['plain']['objects']:12.1f}")
    if set(results) == set(TARGETS):
        d, b = results["deskbell"], results["bare"]
        print(
            f"ratio deskbell/bare: RSS {d['plain']['rss'] / b['plain']['rss']:.2f}, "
            f"traced {d['traced']['traced'] / b['traced']['traced']:.2f}"
        )
    for target, got in results.items():
        print(f"\n{target}: traced bytes per connection by file")
        for name, size in got["traced"]["files"]:
            print(f"  {size:8.0f}  {name}")
        print(f"{target}: by line (top)")
        for name, size in got["traced"]["lines"][: args.lines]:
            print(f"  {size:8.0f}  {name}")
        print(f"{target}: gc-tracked objects per connection by type")
        for name, count in got["plain"]["types"]:
            print(f"  {count:8.2f}  {name}")


def instructions(args: argparse.Namespace, folder: Path, db: Path, tokens: list[str]) -> None:
    counts: dict[str, int] = {}
    for target in args.targets:
        out = folder / f"{target}.callgrind"
        server = Server(target, folder, db, False, callgrind=out)
        try:
            server.instrument(True)
            loop = connect(server.port, tokens)
            settle(loop)
            server.instrument(False)
            loop.close()
        finally:
            server.stop()
        dumps = sorted(glob.glob(f"{out}.*"), key=lambda p: Path(p).stat().st_mtime)
        counts[target] = totals(Path(dumps[0]) if dumps else out)
    n = len(tokens)
    print(f"instructions per connection set up (handshake, welcome, resume), {n} agents")
    for target, total in counts.items():
        print(f"  {target:10}{total / n:14,.0f}")
    if set(counts) == set(TARGETS):
        print(f"  ratio deskbell/bare: {counts['deskbell'] / counts['bare']:.2f}")


def profile(args: argparse.Namespace, folder: Path, db: Path, tokens: list[str]) -> None:
    for target in args.targets:
        server = Server(target, folder, db, False)
        out = folder / f"{target}.profile.txt"
        try:
            settle(Loop(), 0.5)
            server.ask("profile on")
            loop = connect(server.port, tokens)
            settle(loop)
            server.ask(f"profile off {out}")
            loop.close()
        finally:
            server.stop()
        print(f"{target}: cProfile of the server's loop while {len(tokens)} agents set up")
        print(out.read_text())


def run(args: argparse.Namespace, folder: Path) -> int:
    seeded = seed(folder, args.agents)
    tokens = seeded.tokens
    print(f"$ python bench/connection_cost.py {' '.join(sys.argv[1:])}")
    if args.callgrind:
        instructions(args, folder, Path(seeded.db), tokens)
    elif args.profile:
        profile(args, folder, Path(seeded.db), tokens)
    else:
        memory(args, folder, Path(seeded.db), tokens)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--targets", default="bare,deskbell", type=lambda s: s.split(","))
    p.add_argument("--callgrind", action="store_true", help="count set-up instructions")
    p.add_argument(
        "--profile", action="store_true", help="cProfile the server's loop during set-up"
    )
    p.add_argument("--lines", type=int, default=25, help="source lines to show")
    p.add_argument("--keep", type=Path, help="keep the database, logs and callgrind output")
    p.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args.child, args.port, args.db, args.trace)
    try:
        with workdir(args.keep) as folder:
            return run(args, Path(folder))
    except BenchError as exc:
        print(f"connection_cost: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
