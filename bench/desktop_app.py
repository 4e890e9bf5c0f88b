"""Benchmark: the tray app's own costs -- start to tray icon, idle footprint, event to toast.

    python bench/desktop_app.py                          # 2000 events at 100/s
    python bench/desktop_app.py --events 2000 --rate 100 --write-doc
    python bench/desktop_app.py --report-from raw.json --write-doc  # re-render saved figures

Everything runs on a private desktop made here (tests/support/desktop_session.py): a
private session D-Bus with nothing auto-started, Xvfb, an unlocked gnome-keyring in a
temporary HOME (so the app's XDG config, data, cache and keyring are throwaway), a
StatusNotifierWatcher in this process (tests/support/sni_watcher.py; Qt on xcb then
registers its tray icon there) and a small fake ``org.freedesktop.Notifications`` server
in its own process that stamps every ``Notify`` it receives. The backend is a real
``deskbell-server serve`` on a free port over a seeded SQLite file.

1. Start-up, 5 interleaved repeats: ``python -m desktop_agent --server URL --token-file F``
   from exec to the ``RegisterStatusNotifierItem`` call arriving at the watcher (the tray
   icon exists for the desktop), and to the tooltip saying "Connected" (signed in, welcomed).
   Reference: a minimal PySide6 app with one QSystemTrayIcon, nothing else.
2. Idle: app and reference both started and connected, then 30 s with no events: CPU
   time of the process over the window (psutil, user + system) and RSS at its end.
3. Event to toast: N chat events at R/s published on ``/service`` into the app agent's
   inbox (one new conversation in ten, the rest visitor messages). The app runs with
   timing hooks (``--_probe-app``: the real ``desktop_agent.__main__.main`` after wrapping
   a few functions from outside; nothing in the app is changed) that stamp each
   notification frame when its last byte is handed to websockets (``data_received`` on
   the qasync loop), when the connection service starts on it, when the model, the toast
   decision and the badge are done (CPU time too), and when the toast worker calls
   ``Toaster.show``; the fake server stamps ``Notify``. A witness (a second session of the
   same agent, plain asyncio, nothing else to do) stamps the same frames: the server
   pushes to both at once, so the earlier of the two stamps is when the frame reached the
   app's socket, even while the app's loop is too busy to read it. All stamps are
   CLOCK_MONOTONIC, shared by every process on the machine.
   Reference: a plain asyncio websockets client (no Qt) that calls ``Notify`` on the same
   fake server for every notification frame, same hooks and witness, same events into
   its own inbox.
4. Where the memory and start-up CPU go: RSS and CPU after each group of imports the app
   needs (``--_import-footprint``).

Figures print as Markdown tables with the command; ``--write-doc`` puts them in
docs/benchmarks-desktop.md between this script's markers (one block per ``--rate``),
``--json`` keeps the raw results and ``--report-from`` renders them again.

The budgets (DESIGN.md): idle RSS under 90 MB, idle CPU under 0.5 %, start to tray icon
under 1.5 s; event to toast (the app's own path, up to the OS notification call) p99
under 50 ms.
"""

import argparse
import asyncio
import contextlib
import html
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Annotated, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DOC = REPO_ROOT / "docs" / "benchmarks-desktop.md"
SECTION_START = "<!-- bench/desktop_app.py: start -->"
SECTION_END = "<!-- bench/desktop_app.py: end -->"

BUDGET_RSS_MB = 90.0
BUDGET_CPU_PCT = 0.5
BUDGET_START_S = 1.5
BUDGET_TOAST_P99_MS = 50.0

APP_INBOX = "Support"
REF_INBOX = "Reference"
APP_AGENT = "dana@bench.example"
REF_AGENT = "rick@bench.example"
REF_APP_NAME = "deskbell-bench-reference"
NEW_CONVERSATION_EVERY = 10
"""One event in this many opens a new conversation; the rest are visitor messages."""

Results = dict[str, Any]
NONE = "\u2013"  # an en dash: no figure
TIMES = "\u00d7"  # the ratio's multiplication sign


def now_ns() -> int:
    return time.monotonic_ns()


def ms(ns: float) -> float:
    return round(ns / 1e6, 2)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# ---------------------------------------------------------------- timing hooks


def install_frame_stamps() -> None:
    """Stamp each received WebSocket message with the time its last byte was handed in.

    ``data_received`` runs when the event loop reads the socket; the message(s) it
    completes get that time. ``recv`` then leaves the stamp of the message it returns
    in ``connection.bench_rx_ns``, for the caller that processes it.
    """
    from websockets.asyncio import connection as wsc
    from websockets.frames import DATA_OPCODES  # text, binary and continuation

    original_data_received = wsc.Connection.data_received
    original_process_event = wsc.Connection.process_event
    original_recv = wsc.Connection.recv

    def data_received(self: Any, data: bytes) -> None:
        self.bench_chunk_ns = now_ns()
        original_data_received(self, data)

    def process_event(self: Any, event: Any) -> None:
        opcode = getattr(event, "opcode", None)
        if opcode in DATA_OPCODES and event.fin:
            self.__dict__.setdefault("bench_stamps", deque()).append(self.bench_chunk_ns)
        original_process_event(self, event)

    async def recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = await original_recv(self, *args, **kwargs)
        stamps = self.__dict__.get("bench_stamps")
        self.bench_rx_ns = stamps.popleft() if stamps else None
        return message

    wsc.Connection.data_received = data_received  # type: ignore[method-assign]
    wsc.Connection.process_event = process_event  # type: ignore[method-assign]
    wsc.Connection.recv = recv  # type: ignore[method-assign]


def _time_calls(spans: dict[str, list[int]], cls: Any, name: str, label: str) -> None:
    """Record how long each call of ``cls.name`` takes (ns), under ``label``."""
    original = getattr(cls, name)
    durations = spans.setdefault(label, [])
    cpu = spans.setdefault(label + " [cpu]", [])
    if asyncio.iscoroutinefunction(original):

        async def timed_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            # Wall time only: other tasks run while this one awaits.
            start = now_ns()
            try:
                return await original(self, *args, **kwargs)
            finally:
                durations.append(now_ns() - start)

        setattr(cls, name, timed_async)
    else:

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            start, start_cpu = now_ns(), time.thread_time_ns()
            try:
                return original(self, *args, **kwargs)
            finally:
                durations.append(now_ns() - start)
                cpu.append(time.thread_time_ns() - start_cpu)

        setattr(cls, name, timed)


def probe_app(out: Path, app_args: list[str]) -> int:
    """Run the real app (``desktop_agent.__main__.main``) with timing hooks; dump at exit."""
    install_frame_stamps()
    from desktop_agent import connection as dc
    from desktop_agent import controller as ctl
    from desktop_agent.platform import toasts

    events: list[dict[str, Any]] = []
    shows: list[dict[str, Any]] = []
    decisions: list[str] = []
    spans: dict[str, list[int]] = {}
    current: list[dict[str, Any] | None] = [None]
    origin_of: dict[int, tuple[Any, dict[str, Any]]] = {}

    original_on_notification = dc.ConnectionService._on_notification

    async def on_notification(self: Any, ws: Any, push: Any) -> None:
        record = {
            "seq": push.notification.seq,
            "body": push.notification.body[:48],
            "rx": getattr(ws, "bench_rx_ns", None),
            "dispatch": now_ns(),
        }
        start_cpu = time.thread_time_ns()
        current[0] = record
        try:
            # Emits notificationReceived (model upsert, toast decision, queueing) and
            # unreadChanged (badge): direct Qt connections, so all of it runs in here.
            await original_on_notification(self, ws, push)
        finally:
            current[0] = None
            record["done"] = now_ns()
            record["cpu"] = time.thread_time_ns() - start_cpu
            events.append(record)

    original_enqueue = ctl.Controller._enqueue_toast

    def enqueue(self: Any, item: Any) -> None:
        if current[0] is not None and not isinstance(item, str):
            origin_of[id(item)] = (item, current[0])
        original_enqueue(self, item)

    original_show = toasts.DesktopNotifierToaster.show

    async def show(self: Any, request: Any) -> None:
        origin = origin_of.pop(id(request), (None, None))[1]
        record = {
            "title": request.title,
            "key": request.key,
            "start": now_ns(),
            "end": None,
            "seq": origin["seq"] if origin else None,
            "rx": origin["rx"] if origin else None,
        }
        shows.append(record)
        await original_show(self, request)
        record["end"] = now_ns()

    original_toast = ctl.Controller._toast

    def toast(self: Any, decision: Any) -> None:
        decisions.append(type(decision).__name__)
        original_toast(self, decision)

    dc.ConnectionService._on_notification = on_notification  # type: ignore[method-assign]
    from desktop_agent.core.toast_policy import ToastPolicy
    from desktop_agent.ui.notification_model import NotificationListModel
    from desktop_agent.ui.tray import TrayController

    _time_calls(spans, NotificationListModel, "upsert", "model upsert")
    _time_calls(spans, ToastPolicy, "on_notification", "toast decision")
    _time_calls(spans, ctl.Controller, "render_badge", "badge: render_badge")
    _time_calls(spans, TrayController, "_render", "badge: TrayController._render (all of it)")
    _time_calls(spans, TrayController, "icon", "badge: drawing the icon (make_tray_icon)")
    _time_calls(spans, toasts.DesktopNotifierToaster, "withdraw", "toast: withdraw the old one")
    _time_calls(
        spans, toasts.DesktopNotifierToaster, "_body_needs_escaping", "toast: capabilities check"
    )
    ctl.Controller._toast = toast  # type: ignore[method-assign]
    ctl.Controller._enqueue_toast = enqueue  # type: ignore[method-assign]
    toasts.DesktopNotifierToaster.show = show  # type: ignore[method-assign]

    from desktop_agent.__main__ import main

    try:
        return main(app_args)
    finally:
        out.write_text(
            json.dumps({"events": events, "shows": shows, "decisions": decisions, "spans": spans})
        )


# --------------------------------------------------------- the reference processes


def reference_tray() -> int:
    """A minimal PySide6 tray app: one QSystemTrayIcon with an icon, nothing else."""
    from PySide6.QtGui import QColor, QIcon, QPixmap
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor("#2f6fdf"))
    tray = QSystemTrayIcon(QIcon(pixmap))
    tray.show()
    # Let Python see SIGTERM while Qt's loop runs.
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.start(500)
    timer.timeout.connect(lambda: None)
    return app.exec()


async def reference_client(url: str, token_file: Path, out: Path, notify: bool = True) -> int:
    """A plain asyncio websockets client that calls ``Notify`` for every notification.

    With ``notify=False`` it is a witness: a second session of the app's agent that only
    stamps each notification frame as it arrives. The server pushes the same frame to
    every session of an agent in one go, so a lightly loaded witness tells when the frame
    reached the app's socket, even while the app's own loop is too busy to read it.
    """
    install_frame_stamps()
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus
    from websockets.asyncio.client import connect

    bus = await MessageBus().connect()
    token = token_file.read_text().strip()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    records: list[dict[str, Any]] = []
    async with connect(
        f"{url}/agent",
        subprotocols=["deskbell.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        welcome = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "resume", "id": 1, "after_seq": welcome["last_seq"]}))

        async def read() -> None:
            while True:
                frame = json.loads(await ws.recv())
                rx = getattr(ws, "bench_rx_ns", None)
                if frame["type"] == "ok" and frame.get("id") == 1:
                    print("ready", flush=True)
                if frame["type"] != "notification":
                    continue
                notification = frame["notification"]
                record = {
                    "seq": notification["seq"],
                    "body": notification["body"][:48],
                    "title": notification["title"],
                    "rx": rx,
                    "dispatch": now_ns(),
                }
                records.append(record)
                if not notify:
                    record["done"] = record["dispatch"]
                    continue
                await bus.call(
                    Message(
                        destination="org.freedesktop.Notifications",
                        path="/org/freedesktop/Notifications",
                        interface="org.freedesktop.Notifications",
                        member="Notify",
                        signature="susssasa{sv}i",
                        body=[
                            REF_APP_NAME,
                            0,
                            "",
                            notification["title"],
                            html.escape(notification["body"], quote=False),
                            [],
                            {},
                            -1,
                        ],
                    )
                )
                record["done"] = now_ns()

        reader = asyncio.create_task(read())
        await stop.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
    bus.disconnect()
    out.write_text(json.dumps({"events": records}))
    return 0


async def fake_notification_server(out: Path) -> int:
    """``org.freedesktop.Notifications`` that answers like dunst and stamps each Notify."""
    from dbus_fast import RequestNameReply
    from dbus_fast.aio import MessageBus
    from dbus_fast.annotations import DBusSignature
    from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

    Str = Annotated[str, DBusSignature("s")]
    UInt = Annotated[int, DBusSignature("u")]
    Int = Annotated[int, DBusSignature("i")]
    StrList = Annotated[list[str], DBusSignature("as")]
    Hints = Annotated[dict[str, Any], DBusSignature("a{sv}")]
    Info = Annotated[list[str], DBusSignature("ssss")]
    Closed = Annotated[list[int], DBusSignature("uu")]
    Action = Annotated[list[Any], DBusSignature("us")]

    log = out.open("w", buffering=1)

    class Notifications(ServiceInterface):
        def __init__(self) -> None:
            super().__init__("org.freedesktop.Notifications")
            self.last_id = 0

        @dbus_method()
        def Notify(
            self,
            app_name: Str,
            replaces_id: UInt,
            app_icon: Str,
            summary: Str,
            body: Str,
            actions: StrList,
            hints: Hints,
            expire_timeout: Int,
        ) -> UInt:
            stamp = now_ns()
            self.last_id += 1
            log.write(json.dumps([stamp, app_name, summary, body[:60]]) + "\n")
            return self.last_id

        @dbus_method()
        def CloseNotification(self, ident: UInt) -> None:
            self.NotificationClosed(ident, 3)

        @dbus_method()
        def GetCapabilities(self) -> StrList:
            return ["actions", "body", "body-markup", "body-hyperlinks", "icon-static"]

        @dbus_method()
        def GetServerInformation(self) -> Info:
            return ["bench-fake", "deskbell", "1.0", "1.2"]

        @dbus_signal()
        def NotificationClosed(self, ident: int, reason: int) -> Closed:
            return [ident, reason]

        @dbus_signal()
        def ActionInvoked(self, ident: int, key: str) -> Action:
            return [ident, key]

    bus = await MessageBus().connect()
    bus.export("/org/freedesktop/Notifications", Notifications())
    reply = await bus.request_name("org.freedesktop.Notifications")
    if reply is not RequestNameReply.PRIMARY_OWNER:
        print(f"could not own the name: {reply}", flush=True)
        return 1
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    log.close()
    return 0


def import_footprint() -> int:
    """Print the RSS (MB) after each step of what the app loads, one JSON list."""
    import importlib

    import psutil

    me = psutil.Process()
    steps: list[tuple[str, float, float]] = [
        (
            "python, psutil and this script's imports",
            me.memory_info().rss / 2**20,
            time.process_time(),
        )
    ]

    def step(name: str, *modules: str) -> None:
        for module in modules:
            importlib.import_module(module)
        steps.append((name, me.memory_info().rss / 2**20, time.process_time()))

    step(
        "+ PySide6 QtCore, QtGui, QtWidgets", "PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"
    )
    from PySide6.QtGui import QColor, QIcon, QPixmap
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    app = QApplication([sys.argv[0]])
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor("#2f6fdf"))
    tray = QSystemTrayIcon(QIcon(pixmap))
    tray.show()
    app.processEvents()
    steps.append(
        (
            "+ QApplication on xcb and a QSystemTrayIcon shown",
            me.memory_info().rss / 2**20,
            time.process_time(),
        )
    )
    step(
        "+ qasync, websockets, msgspec, backend.protocol",
        "qasync",
        "websockets.asyncio.client",
        "msgspec",
        "backend.protocol",
    )
    step("+ PySide6 QtNetwork, QtDBus", "PySide6.QtNetwork", "PySide6.QtDBus")
    step("+ keyring (Secret Service backend)", "keyring", "keyring.backends.SecretService")
    import keyring

    keyring.get_keyring()
    steps.append(("+ keyring.get_keyring()", me.memory_info().rss / 2**20, time.process_time()))
    step("+ desktop_notifier, dbus_fast", "desktop_notifier", "dbus_fast.aio")
    step("+ the rest of desktop_agent (app, windows, models)", "desktop_agent.app")
    print(json.dumps(steps))
    del tray
    return 0


# ----------------------------------------------------------------- orchestration


class Bench:
    """The private desktop, the backend and the measurements."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.python = sys.executable
        self.results: Results = {"loadavg": {}}
        self.children: list[subprocess.Popen[bytes]] = []

    # -- processes ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(self.session.env)
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("QT_QPA_PLATFORMTHEME", None)
        return env

    def spawn(
        self, argv: list[str], log_name: str, stdout_pipe: bool = False
    ) -> "subprocess.Popen[bytes]":
        log = (self.root / f"{log_name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env=self.env(),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        self.children.append(proc)
        return proc

    async def read_ready(
        self, proc: "subprocess.Popen[bytes]", what: str, timeout: float = 30
    ) -> None:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        if line.strip() != b"ready":
            raise RuntimeError(f"{what} did not start: {line!r}; see logs in {self.root}")

    async def end(self, proc: "subprocess.Popen[bytes]", timeout: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except TimeoutError:
            proc.kill()
            proc.wait()
        if proc in self.children:
            self.children.remove(proc)

    def app_argv(self, probe_out: Path | None = None) -> list[str]:
        app = ["--server", self.server.url, "--token-file", str(self.token_file)]
        if probe_out is None:
            return [self.python, "-m", "desktop_agent", *app]
        return [
            self.python,
            str(Path(__file__).resolve()),
            "--_probe-app",
            str(probe_out),
            "--",
            *app,
        ]

    def reference_argv(self) -> list[str]:
        return [self.python, str(Path(__file__).resolve()), "--_reference-tray"]

    # -- set-up -----------------------------------------------------------------------

    async def setup(self) -> None:
        from tests.support.backend import ServerProcess, seed_db, service_token
        from tests.support.desktop_session import DesktopSession

        self.session = DesktopSession(self.root / "desktop", display_server=True, keyring=True)
        self.session.start()
        self.notify_log = self.root / "notify.jsonl"
        self.fake = self.spawn(
            [
                self.python,
                str(Path(__file__).resolve()),
                "--_fake-notifications",
                str(self.notify_log),
            ],
            "fake-notifications",
            stdout_pipe=True,
        )
        await self.read_ready(self.fake, "the fake notification server")

        db = str(self.root / "deskbell.sqlite3")
        tokens = await seed_db(db, {APP_AGENT: [APP_INBOX], REF_AGENT: [REF_INBOX]})
        self.service_token = await service_token(db, "bench")
        self.token_file = self.root / "agent.token"
        self.token_file.write_text(tokens[APP_AGENT] + "\n")
        self.ref_token_file = self.root / "reference.token"
        self.ref_token_file.write_text(tokens[REF_AGENT] + "\n")
        self.server = ServerProcess(db)
        self.server.start()

        from tests.support.sni_watcher import SniWatcher

        class StampingWatcher(SniWatcher):
            """Records when each item's RegisterStatusNotifierItem arrived."""

            registered_ns: dict[str, int] = {}

            def _register(self, sender: str, service: str) -> None:
                self.registered_ns.setdefault(sender, now_ns())
                super()._register(sender, service)

        self.watcher = StampingWatcher(self.session.dbus_address)
        await self.watcher.start()

    async def teardown(self) -> None:
        for proc in list(self.children):
            if proc is not self.fake:
                await self.end(proc)
        with contextlib.suppress(Exception):
            self.watcher.stop()
        with contextlib.suppress(Exception):
            await self.end(self.fake)
        with contextlib.suppress(Exception):
            self.server.stop()
        self.session.stop()

    # -- start-up -----------------------------------------------------------------------

    async def wait_registered(self, known: set[str], timeout: float = 30) -> tuple[Any, int]:
        deadline = time.monotonic() + timeout
        while True:
            for item in self.watcher.items:
                owner = self.watcher._owners.get(item.bus_name, item.bus_name)
                if owner not in known and owner in self.watcher.registered_ns:
                    return item, self.watcher.registered_ns[owner]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no tray icon registered in {timeout} s; logs in {self.root}")
            await asyncio.sleep(0.02)  # the stamp is taken on arrival, not here

    async def wait_tooltip(self, item: Any, text: str, timeout: float = 30) -> int:
        # Polled every 10 ms: the tooltip is what a person reads; a NewToolTip signal
        # comes before the text can be read back, and polling costs the app little.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                tip = await self.watcher.tooltip(item)
                if text in tip.text or text in tip.title:
                    return now_ns()
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the tooltip never said {text!r}; logs in {self.root}")

    async def launch(self, argv: list[str], log_name: str, connected: bool) -> dict[str, Any]:
        known = set(self.watcher.registered_ns)
        started = now_ns()
        proc = self.spawn(argv, log_name)
        item, registered = await self.wait_registered(known)
        import psutil

        # CPU the process used until the icon was there (read a moment later): unlike the
        # wall time, it hardly depends on how many other processes share the cores.
        times = psutil.Process(proc.pid).cpu_times()
        run = {
            "proc": proc,
            "item": item,
            "tray_s": (registered - started) / 1e9,
            "tray_cpu_s": times.user + times.system,
        }
        if connected:
            run["connected_s"] = (await self.wait_tooltip(item, "Connected") - started) / 1e9
        return run

    async def measure_startup(self, repeats: int) -> None:
        app_runs: list[dict[str, Any]] = []
        ref_runs: list[dict[str, Any]] = []
        for i in range(repeats):
            # Interleaved, so a change in the machine's load hits both alike.
            for runs, argv, name, connected in (
                (app_runs, self.app_argv(), "app-start", True),
                (ref_runs, self.reference_argv(), "reference-tray", False),
            ):
                run = await self.launch(argv, name, connected)
                await self.end(run.pop("proc"))
                await self.watcher.wait_for_no_items(timeout=20)
                run.pop("item")
                runs.append(run)
                print(
                    f"  start {i + 1}/{repeats} {name}: tray {run['tray_s']:.3f} s"
                    + (f", connected {run['connected_s']:.3f} s" if connected else ""),
                    flush=True,
                )
        self.results["startup"] = {"app": app_runs, "reference": ref_runs}
        self.results["loadavg"]["startup"] = loadavg()

    # -- idle ---------------------------------------------------------------------------

    async def measure_idle(self, seconds: float) -> None:
        import psutil

        self.probe_out = self.root / "probe.json"
        app = await self.launch(self.app_argv(self.probe_out), "app-probe", connected=True)
        ref = await self.launch(self.reference_argv(), "reference-tray-idle", connected=False)
        self.app_proc, self.app_item = app["proc"], app["item"]
        # Let the first history page, the keyring write and start-up GC settle.
        await asyncio.sleep(5)
        procs = {
            "app": psutil.Process(app["proc"].pid),
            "reference": psutil.Process(ref["proc"].pid),
        }
        before = {k: (p.cpu_times(), time.monotonic()) for k, p in procs.items()}
        peak = dict.fromkeys(procs, 0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for k, p in procs.items():
                peak[k] = max(peak[k], p.memory_info().rss)
            await asyncio.sleep(1)
        idle: Results = {}
        for k, p in procs.items():
            times, t0 = before[k]
            after = p.cpu_times()
            wall = time.monotonic() - t0
            cpu = (after.user - times.user) + (after.system - times.system)
            memory = p.memory_info()
            idle[k] = {
                "cpu_pct": 100 * cpu / wall,
                "cpu_s": cpu,
                "wall_s": wall,
                "rss_mb": memory.rss / 2**20,
                "peak_rss_mb": max(peak[k], memory.rss) / 2**20,
                "uss_mb": p.memory_full_info().uss / 2**20,
            }
        self.results["idle"] = idle
        self.results["loadavg"]["idle"] = loadavg()
        await self.end(ref["proc"])
        print(
            f"  idle: app {idle['app']['rss_mb']:.1f} MB {idle['app']['cpu_pct']:.3f} %, "
            f"reference {idle['reference']['rss_mb']:.1f} MB {idle['reference']['cpu_pct']:.3f} %",
            flush=True,
        )

    async def measure_imports(self) -> None:
        """Where the idle memory goes: RSS after each group of what the app loads."""
        proc = await asyncio.create_subprocess_exec(
            self.python,
            str(Path(__file__).resolve()),
            "--_import-footprint",
            env=self.env(),
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        self.results["imports"] = json.loads(out.decode().strip().splitlines()[-1])

    # -- events -------------------------------------------------------------------------

    async def publish(self, inbox: str, tag: str, count: int, rate: float) -> dict[int, int]:
        """Publish ``count`` chat events at ``rate``/s; returns event index -> send time."""
        from websockets.asyncio.client import connect

        sent: dict[int, int] = {}
        acked: dict[int, int] = {}
        errors: list[dict[str, Any]] = []
        async with connect(
            f"{self.server.url}/service",
            subprotocols=["deskbell.v1"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {self.service_token}"},
        ) as ws:

            async def read() -> None:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("type") == "ok":
                        acked[frame["id"]] = now_ns()
                    else:
                        errors.append(frame)
                        acked[frame.get("id", -2)] = now_ns()

            reader = asyncio.create_task(read())
            # Visitor messages go to the newest conversation whose creation the server has
            # acknowledged (a message for one not yet committed is refused); one is made
            # before the clock starts so the first messages have somewhere to go.
            created: dict[int, int] = {}  # publish id -> conversation number
            newest_acked = 0
            await ws.send(
                json.dumps(
                    {
                        "type": "publish",
                        "id": -1,
                        "key": f"{tag}-c0",
                        "event": self.chat_event(tag, 0, None, "first"),
                    }
                )
            )
            async with asyncio.timeout(30):
                while -1 not in acked:
                    await asyncio.sleep(0.01)
            start = time.monotonic()
            conversation = 0
            for i in range(count):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                text = f"{tag} event {i}: is anyone there? My order has not arrived."
                for ident, number in list(created.items()):
                    if ident in acked:
                        newest_acked = max(newest_acked, number)
                        del created[ident]
                if i % NEW_CONVERSATION_EVERY == 0:
                    conversation += 1
                    created[i] = conversation
                    event = self.chat_event(tag, conversation, None, text)
                else:
                    event = self.chat_event(tag, newest_acked, "message", text)
                sent[i] = now_ns()
                await ws.send(
                    json.dumps({"type": "publish", "id": i, "event": event, "key": f"{tag}-{i}"})
                )
            async with asyncio.timeout(60):
                while len(acked) < count + 1:
                    await asyncio.sleep(0.05)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self.results.setdefault("publish", {})[tag] = {
            "ack_ms": [ms(acked[i] - sent[i]) for i in sent if i in acked],
            "errors": errors,
            "seconds": (max(sent.values()) - min(sent.values())) / 1e9,
        }
        return sent

    @staticmethod
    def chat_event(tag: str, conversation: int, message: str | None, text: str) -> dict[str, Any]:
        """A chat event as an external chat system publishes it (PROTOCOL.md)."""
        external_id = f"{tag}-{conversation}"
        visitor = f"Visitor {conversation}"
        if message is None:
            inbox = APP_INBOX if tag == "app" else REF_INBOX
            return {
                "kind": "chat.conversation.created",
                "inbox": inbox,
                "conversation": {"external_id": external_id, "visitor_name": visitor},
                "text": text,
            }
        return {
            "kind": "chat.message.created",
            "conversation": {"external_id": external_id},
            "author": {"kind": "visitor", "name": visitor},
            "text": text,
        }

    def notifies(self, app_name: str) -> list[list[Any]]:
        lines = self.notify_log.read_text().splitlines()
        return [row for row in map(json.loads, lines) if row[1] == app_name]

    async def settle(
        self, app_name: str, expected: int, quiet: float = 30.0, timeout: float = 600
    ) -> None:
        """Wait for ``expected`` Notify calls from ``app_name``, or for ``quiet`` seconds
        with none new once some came. Every event of this workload makes a toast
        decision, so ``expected`` is the event count; a backlogged app goes quiet for
        seconds while it works through its socket backlog before its toast queue runs."""
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.notifies(app_name))
            if now >= expected:
                return
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since > quiet and now > 0:
                return
            await asyncio.sleep(0.2)

    async def start_client(self, mode: str, token_file: Path, name: str) -> tuple[Any, Path]:
        out = self.root / f"{name}.json"
        proc = self.spawn(
            [
                self.python,
                str(Path(__file__).resolve()),
                mode,
                self.server.url,
                str(token_file),
                str(out),
            ],
            name,
            stdout_pipe=True,
        )
        await self.read_ready(proc, name)
        return proc, out

    async def measure_events(self, count: int, rate: float) -> None:
        # The app: already running (from the idle phase) with its timing hooks; a witness
        # session of the same agent stamps when each frame reached the sockets.
        witness, witness_out = await self.start_client("--_witness", self.token_file, "witness-app")
        before = len(self.notifies("Deskbell"))
        sent = await self.publish(APP_INBOX, "app", count, rate)
        self.results["loadavg"]["events_app"] = loadavg()
        await self.settle("Deskbell", expected=before + count + 1)
        await self.end(self.app_proc)
        await self.end(witness)
        socket_ns = {r["seq"]: r["rx"] for r in json.loads(witness_out.read_text())["events"]}
        probe = json.loads(self.probe_out.read_text())
        notifies = self.notifies("Deskbell")[before:]
        self.results["events_app"] = self.event_figures(probe["events"], sent, "app", socket_ns)
        self.results["toasts_app"] = self.toast_figures(probe["shows"], notifies, socket_ns)
        self.results["spans_app"] = {
            k: stats([ms(v) for v in vs]) for k, vs in probe["spans"].items()
        }
        self.results["decisions_app"] = {
            d: probe["decisions"].count(d) for d in set(probe["decisions"])
        }

        # The reference client, same events into its own inbox, with its own witness.
        witness, witness_out = await self.start_client(
            "--_witness", self.ref_token_file, "witness-reference"
        )
        ref, ref_out = await self.start_client(
            "--_reference-client", self.ref_token_file, "reference-client"
        )
        sent = await self.publish(REF_INBOX, "ref", count, rate)
        self.results["loadavg"]["events_reference"] = loadavg()
        await self.settle(REF_APP_NAME, expected=count + 1)
        await self.end(ref)
        await self.end(witness)
        socket_ns = {r["seq"]: r["rx"] for r in json.loads(witness_out.read_text())["events"]}
        reference = json.loads(ref_out.read_text())
        ref_notifies = self.notifies(REF_APP_NAME)
        self.results["events_reference"] = self.event_figures(
            reference["events"], sent, "ref", socket_ns
        )
        # The reference calls Notify once per frame, in order: pair them up.
        shows = [
            {
                "title": r.get("title", ""),
                "key": "",
                "start": r["dispatch"],
                "end": r["done"],
                "seq": r["seq"],
                "rx": r["rx"],
            }
            for r in reference["events"]
        ]
        self.results["toasts_reference"] = self.toast_figures(shows, ref_notifies, socket_ns)

    @staticmethod
    def event_index(body: str, tag: str) -> int | None:
        prefix = f"{tag} event "
        if not body.startswith(prefix):
            return None
        return int(body[len(prefix) :].split(":", 1)[0])

    def event_figures(
        self,
        records: list[dict[str, Any]],
        sent: dict[int, int],
        tag: str,
        socket_ns: dict[int, int],
    ) -> Results:
        rows = []
        for rec in records:
            index = self.event_index(rec["body"], tag)
            if index is None or rec["rx"] is None or rec["seq"] not in socket_ns:
                continue
            # The frame was at the socket by the earlier of the two reads.
            rows.append((index, rec, min(socket_ns[rec["seq"]], rec["rx"])))
        return {
            "count": len(rows),
            "published": len(sent),
            "publish_to_socket_ms": [ms(sock - sent[i]) for i, _, sock in rows],
            "socket_to_rx_ms": [ms(rec["rx"] - sock) for _, rec, sock in rows],
            "socket_to_done_ms": [ms(rec["done"] - sock) for _, rec, sock in rows],
            "rx_to_dispatch_ms": [ms(rec["dispatch"] - rec["rx"]) for _, rec, _ in rows],
            "dispatch_to_done_ms": [ms(rec["done"] - rec["dispatch"]) for _, rec, _ in rows],
            "handler_cpu_ms": [ms(rec["cpu"]) for _, rec, _ in rows if "cpu" in rec],
        }

    @staticmethod
    def toast_figures(
        shows: list[dict[str, Any]], notifies: list[list[Any]], socket_ns: dict[int, int]
    ) -> Results:
        # The toast worker shows one request at a time, in order, each with one Notify:
        # the k-th show of the run is the k-th Notify. Titles are checked to be sure.
        mismatched = sum(
            1 for s, n in zip(shows, notifies, strict=False) if s["title"] and s["title"] != n[2]
        )
        pairs = [
            (s, n, min(socket_ns[s["seq"]], s["rx"]))
            for s, n in zip(shows, notifies, strict=False)
            if s["rx"] is not None and s["seq"] in socket_ns
        ]
        return {
            "shows": len(shows),
            "notifies": len(notifies),
            "title_mismatches": mismatched,
            "count": len(pairs),
            "socket_to_notify_ms": [ms(n[0] - sock) for _, n, sock in pairs],
            "rx_to_notify_ms": [ms(n[0] - s["rx"]) for s, n, _ in pairs],
            "socket_to_show_ms": [ms(s["start"] - sock) for s, _, sock in pairs],
            "show_ms": [ms(s["end"] - s["start"]) for s, _, _ in pairs if s["end"]],
            "kinds": {
                "conversation": sum(1 for s, _, _ in pairs if s["key"].startswith("conversation:")),
                "summary": sum(1 for s, _, _ in pairs if s["key"] == "summary"),
            },
        }


# -------------------------------------------------------------------------- report


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: Results, command: str) -> str:
    """The figures as Markdown (printed, and with --write-doc put in the doc)."""
    s_app = results["startup"]["app"]
    s_ref = results["startup"]["reference"]
    tray_app = [r["tray_s"] for r in s_app]
    tray_ref = [r["tray_s"] for r in s_ref]
    connected = [r["connected_s"] for r in s_app]
    idle = results["idle"]
    ev, ev_ref = results["events_app"], results["events_reference"]
    toast, toast_ref = results["toasts_app"], results["toasts_reference"]
    la = results["loadavg"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}{TIMES}" if b else NONE

    def row(
        name: str,
        app: float,
        ref: float | None,
        unit: str,
        budget: float | None,
        load: str,
        digits: int = 2,
    ) -> str:
        cells = [name, f"{app:.{digits}f} {unit}"]
        cells.append(f"{ref:.{digits}f} {unit}" if ref is not None else NONE)
        cells.append(ratio(app, ref) if ref is not None else "")
        cells.append(f"< {budget:g} {unit}" if budget is not None else "")
        cells.append(verdict(app < budget) if budget is not None else "")
        cells.append(load)
        return "| " + " | ".join(cells) + " |"

    header = [
        "| figure | Deskbell | reference | ratio | budget | | load average (1/5/15 min) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    n = len(tray_app)
    ia, ir = idle["app"], idle["reference"]
    footprint = [
        *header,
        row(
            f"start → tray icon registered, median of {n}",
            statistics.median(tray_app),
            statistics.median(tray_ref),
            "s",
            BUDGET_START_S,
            la["startup"],
            3,
        ),
        row(
            f"start → tray icon registered, max of {n}",
            max(tray_app),
            max(tray_ref),
            "s",
            BUDGET_START_S,
            la["startup"],
            3,
        ),
        row(
            f"CPU used by then (user + system, read just after), median of {n}",
            statistics.median([r["tray_cpu_s"] for r in s_app]),
            statistics.median([r["tray_cpu_s"] for r in s_ref]),
            "s",
            None,
            la["startup"],
            3,
        ),
        row(
            f"start → connected (tooltip says so), median of {n}",
            statistics.median(connected),
            None,
            "s",
            None,
            la["startup"],
            3,
        ),
        row(
            f"idle RSS at the end of {ia['wall_s']:.0f} s connected",
            ia["rss_mb"],
            ir["rss_mb"],
            "MB",
            BUDGET_RSS_MB,
            la["idle"],
            1,
        ),
        row(
            "idle USS (pages only this process holds)",
            ia["uss_mb"],
            ir["uss_mb"],
            "MB",
            None,
            la["idle"],
            1,
        ),
        row(
            f"idle CPU over {ia['wall_s']:.0f} s (share of one core)",
            ia["cpu_pct"],
            ir["cpu_pct"],
            "%",
            BUDGET_CPU_PCT,
            la["idle"],
            3,
        ),
    ]
    load_ev = f"{la['events_app']} / {la['events_reference']}"
    t_app, t_ref = stats(toast["socket_to_notify_ms"]), stats(toast_ref["socket_to_notify_ms"])
    d_app, d_ref = stats(ev["socket_to_done_ms"]), stats(ev_ref["socket_to_done_ms"])
    own_app, own_ref = stats(toast["rx_to_notify_ms"]), stats(toast_ref["rx_to_notify_ms"])
    pick_app, pick_ref = stats(ev["socket_to_rx_ms"]), stats(ev_ref["socket_to_rx_ms"])
    latency = [
        *header,
        row(
            f"event → toast: frame at the socket → Notify at the server, p50 "
            f"({t_app['n']} / {t_ref['n']} toasts)",
            t_app["p50"],
            t_ref["p50"],
            "ms",
            None,
            load_ev,
            1,
        ),
        row(
            "event → toast, p99", t_app["p99"], t_ref["p99"], "ms", BUDGET_TOAST_P99_MS, load_ev, 1
        ),
        row("event → toast, max", t_app["max"], t_ref["max"], "ms", None, load_ev, 1),
        row(
            "event → model and badge updated, every event, p50 "
            f"({d_app['n']} / {d_ref['n']} events; reference: handler entered)",
            d_app["p50"],
            d_ref["p50"],
            "ms",
            None,
            load_ev,
            2,
        ),
        row(
            "event → model and badge updated, p99",
            d_app["p99"],
            d_ref["p99"],
            "ms",
            None,
            load_ev,
            2,
        ),
        row(
            "frame at the socket → read by the loop (`data_received`), p50",
            pick_app["p50"],
            pick_ref["p50"],
            "ms",
            None,
            load_ev,
            2,
        ),
        row(
            "frame at the socket → read by the loop, p99",
            pick_app["p99"],
            pick_ref["p99"],
            "ms",
            None,
            load_ev,
            2,
        ),
        row(
            "frame read by the loop → Notify at the server, p50",
            own_app["p50"],
            own_ref["p50"],
            "ms",
            None,
            load_ev,
            1,
        ),
        row(
            "frame read by the loop → Notify at the server, p99",
            own_app["p99"],
            own_ref["p99"],
            "ms",
            None,
            load_ev,
            1,
        ),
    ]
    spans = results["spans_app"]
    show = stats(toast["show_ms"])
    queue = stats(toast["socket_to_show_ms"])
    work = stats(ev["dispatch_to_done_ms"])
    work_cpu = stats(ev["handler_cpu_ms"])
    breakdown = [
        "| step in the app (per call) | calls | wall p50 | wall p99 | wall max "
        "| CPU p50 | CPU p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| notification handler: model, toast decision, queueing, badge | {work['n']} | "
        f"{work['p50']:.2f} ms | {work['p99']:.2f} ms | {work['max']:.2f} ms | "
        f"{work_cpu['p50']:.2f} ms | {work_cpu['p99']:.2f} ms |",
    ]
    for name, st in sorted(spans.items()):
        if st["n"] and not name.endswith(" [cpu]"):
            cpu = spans.get(name + " [cpu]", {"n": 0})
            cpu_cells = (
                f"{cpu['p50']:.2f} ms | {cpu['p99']:.2f} ms" if cpu["n"] else f"{NONE} | {NONE}"
            )
            breakdown.append(
                f"| {name} | {st['n']} | {st['p50']:.2f} ms | {st['p99']:.2f} ms | "
                f"{st['max']:.2f} ms | {cpu_cells} |"
            )
    breakdown += [
        f"| `Toaster.show` (withdraw, capabilities, Notify) | {show['n']} | {show['p50']:.2f} ms | "
        f"{show['p99']:.2f} ms | {show['max']:.2f} ms | {NONE} | {NONE} |",
        f"| frame at the socket → `Toaster.show` starts (toast queue wait) | {queue['n']} | "
        f"{queue['p50']:.1f} ms | {queue['p99']:.1f} ms | {queue['max']:.1f} ms "
        f"| {NONE} | {NONE} |",
    ]
    pub_app, pub_ref = stats(ev["publish_to_socket_ms"]), stats(ev_ref["publish_to_socket_ms"])
    names = {
        "NoneType": "no toast",
        "ShowToast": "a conversation toast",
        "SummaryToast": "a summary toast",
    }
    decisions = ", ".join(
        f"{v} {TIMES} {names.get(k, k)}" for k, v in sorted(results["decisions_app"].items())
    )
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    errors = len(results["publish"]["app"]["errors"]) + len(results["publish"]["ref"]["errors"])
    imports = [
        "| loaded, in order (one process, `--_import-footprint`) | RSS | step | CPU of the step |",
        "| --- | ---: | ---: | ---: |",
    ]
    previous, previous_cpu = 0.0, 0.0
    for name, rss, cpu in results.get("imports", []):
        imports.append(
            f"| {name} | {rss:.1f} MB | {rss - previous:+.1f} MB | "
            f"{1000 * (cpu - previous_cpu):.0f} ms |"
        )
        previous, previous_cpu = rss, cpu
    lines = [
        f"Command: `{command}` ({machine}).",
        "",
        f"Events: {ev['published']} published at the set rate into each inbox "
        f"({errors} refused); the app received {ev['count']}, decided {decisions}, called "
        f"`Toaster.show` {toast['shows']} times ({toast['kinds']['conversation']} conversation "
        f"toasts and updates, {toast['kinds']['summary']} summary updates) and the server got "
        f"{toast['notifies']} Notify calls ({toast['title_mismatches']} show/Notify title "
        f"mismatches); the reference received {ev_ref['count']} and called Notify "
        f"{toast_ref['notifies']} times. Backend, publish sent → frame at the socket, p50 / p99: "
        f"{pub_app['p50']:.1f} / {pub_app['p99']:.1f} ms (app phase), "
        f"{pub_ref['p50']:.1f} / {pub_ref['p99']:.1f} ms (reference phase).",
        "",
        *footprint,
        "",
        *latency,
        "",
        *breakdown,
        "",
        *imports,
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str, rate: float) -> None:
    """Put ``section`` between this script's markers for ``rate`` (appended the first time)."""
    text = DOC.read_text() if DOC.exists() else "# Desktop app benchmarks\n"
    start, end = (
        SECTION_START.replace(": start", f" --rate {rate:g}: start"),
        SECTION_END.replace(": end", f" --rate {rate:g}: end"),
    )
    block = f"{start}\n### At {rate:g} events/s\n\n{section}{end}\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    DOC.write_text(text)


async def run(args: argparse.Namespace) -> Results:
    with tempfile.TemporaryDirectory(prefix="dbapp-") as tmp:
        root = Path(tmp)
        if args.workdir:
            root = Path(args.workdir)
            root.mkdir(parents=True, exist_ok=True)
        bench = Bench(args, root)
        try:
            await bench.setup()
            print(f"private desktop in {root}; backend {bench.server.url}", flush=True)
            await bench.measure_startup(args.repeats)
            await bench.measure_idle(args.idle)
            await bench.measure_imports()
            await bench.measure_events(args.events, args.rate)
        finally:
            await bench.teardown()
        return bench.results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_probe-app"]:
        rest = argv[2:]
        return probe_app(Path(argv[1]), rest[1:] if rest[:1] == ["--"] else rest)
    if argv[:1] == ["--_reference-tray"]:
        return reference_tray()
    if argv[:1] == ["--_reference-client"]:
        return asyncio.run(reference_client(argv[1], Path(argv[2]), Path(argv[3])))
    if argv[:1] == ["--_import-footprint"]:
        return import_footprint()
    if argv[:1] == ["--_witness"]:
        return asyncio.run(reference_client(argv[1], Path(argv[2]), Path(argv[3]), notify=False))
    if argv[:1] == ["--_fake-notifications"]:
        return asyncio.run(fake_notification_server(Path(argv[1])))

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--repeats", type=int, default=5, help="start-up repeats")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    parser.add_argument("--workdir", help="keep logs, database and raw stamps here")
    parser.add_argument("--json", help="write the raw results to this file")
    parser.add_argument("--write-doc", action="store_true", help=f"update {DOC.name}")
    parser.add_argument(
        "--report-from", metavar="JSON", help="measure nothing: report the raw results of --json"
    )
    args = parser.parse_args(argv)
    if args.report_from:
        results = json.loads(Path(args.report_from).read_text())
        args.rate = results["rate"]
    else:
        results = asyncio.run(run(args))
        results["command"] = "python bench/desktop_app.py " + " ".join(argv)
        results["rate"] = args.rate
    section = report(results, results["command"])
    print()
    print(section)
    if args.json and not args.report_from:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.write_doc:
        write_doc(section, args.rate)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
