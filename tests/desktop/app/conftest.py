"""End-to-end fixtures: a real backend process, the whole app on a qasync loop, offscreen.

The qasync loop is created "already running": pytest-qt's waits (``qtbot.waitUntil``,
``waitSignal``) spin Qt's event loop, which runs the loop's callbacks, so a sync test
can drive async code with :meth:`Loop.run` and never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from keyring.backend import KeyringBackend
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from backend.app import open_service
from backend.config import Config
from desktop_agent.app import AppEnvironment, DeskbellApp
from desktop_agent.cli import CliOptions
from desktop_agent.platform.toasts import RecordingToaster, ToastCallback
from tests.support.backend import BackendHarness, ServerProcess, WsClient
from tests.support.desktop_session import notification_session  # noqa: F401 - a fixture
from tests.support.qt_loops import TestQEventLoop

T = TypeVar("T")

INBOX = "Support"
AGENT = "alex@example.org"
OTHER_AGENT = "sam@example.org"
PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend: the OS keyring's interface, nothing on disk."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.secrets.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class Loop:
    """The test's qasync loop, and a way to run a coroutine on it to the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, qtbot: QtBot) -> None:
        self.loop = loop
        self.qtbot = qtbot

    def run(self, coro: Coroutine[Any, Any, T], timeout_ms: int = WAIT_MS) -> T:
        task = self.loop.create_task(coro)
        self.qtbot.waitUntil(task.done, timeout=timeout_ms)
        return task.result()


@pytest.fixture
def loop(qapp: QApplication, qtbot: QtBot) -> Iterator[Loop]:
    event_loop = TestQEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(event_loop)
    try:
        yield Loop(event_loop, qtbot)
    finally:
        tasks = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
        for task in tasks:
            task.cancel()
        qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=WAIT_MS)
        # Not loop.stop(): that would call QApplication.exit() and leave Qt's quit flag set.
        asyncio.events._set_running_loop(None)
        event_loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
        event_loop.close()
        asyncio.set_event_loop(None)


class Backend:
    """A ``deskbell-server serve`` process with one inbox and two agents seeded."""

    def __init__(self, tmp_path: Path, loop: Loop) -> None:
        self.db = str(tmp_path / "deskbell.sqlite3")
        self.tokens = loop.run(_seed(self.db, [AGENT, OTHER_AGENT]))
        self.process = ServerProcess(self.db)
        self.process.start()
        self.url = self.process.url
        self.harness = BackendHarness(None, self.process.port, self.db)
        self.clients: list[WsClient] = []
        self._loop = loop

    def visitor(self, name: str, text: str) -> tuple[WsClient, dict[str, Any]]:
        """A visitor opens a conversation; returns the client and the ``ok`` reply."""
        client, reply = self._loop.run(self.harness.visitor_start(INBOX, name, text))
        self.clients.append(client)
        return client, reply

    def agent_session(self, email: str = AGENT) -> WsClient:
        """Another session (another device) of an agent, resumed to live."""
        client = self._loop.run(self.harness.agent(self.tokens[email]))
        self.clients.append(client)
        return client

    def kill(self) -> None:
        """SIGKILL the server process: no goodbye, no flush."""
        self.process.kill()

    def start_again(self) -> None:
        """Start the server again on the same port and database."""
        self.process = ServerProcess(self.db, port=self.process.port)
        self.process.start()

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):  # a dead client is fine at teardown
                self._loop.run(client.close(), timeout_ms=5000)
        self.process.stop()


async def _seed(db: str, emails: list[str]) -> dict[str, str]:
    """One inbox, agents with PASSWORD; returns email -> an issued token."""
    async with open_service(Config(db=db)) as service:
        await service.store.add_inbox(INBOX)
        tokens = {}
        for email in emails:
            await service.add_agent(email, email.split("@")[0].title(), [INBOX], PASSWORD)
            tokens[email] = (await service.issue_agent_token(email))[0]
        return tokens


@pytest.fixture
def backend(tmp_path: Path, loop: Loop) -> Iterator[Backend]:
    server = Backend(tmp_path, loop)
    try:
        yield server
    finally:
        server.close()


class Apps:
    """Builds DeskbellApps wired to recording toasters and an in-memory keyring."""

    def __init__(self, tmp_path: Path, loop: Loop) -> None:
        self.tmp_path = tmp_path
        self.loop = loop
        self.keyring = MemoryKeyring()
        self.toasters: list[RecordingToaster] = []
        self.started: list[DeskbellApp] = []

    def make_toaster(self, on_activated: ToastCallback, on_mark_read: ToastCallback) -> Any:
        toaster = RecordingToaster(on_activated, on_mark_read)
        self.toasters.append(toaster)
        return toaster

    def environment(self, **overrides: Any) -> AppEnvironment:
        values: dict[str, Any] = {
            "config_dir": self.tmp_path / "config",
            "data_dir": self.tmp_path / "data",
            "log_dir": self.tmp_path / "log",
            "keyring_backend": self.keyring,
            "make_toaster": self.make_toaster,
            "tray_available": False,
            "watch_network": False,
            # A quick first retry keeps the reconnect test short; the schedule's shape
            # (doubling, jitter) is the core's and tested there.
            "connection_options": {"delays": _fast_delays, "quick_delay": lambda: 0.05},
        }
        values.update(overrides)
        return AppEnvironment(**values)

    def start(self, options: CliOptions, **overrides: Any) -> DeskbellApp:
        app = DeskbellApp(options, self.environment(**overrides))
        app.start()
        self.started.append(app)
        return app

    def signed_in(self, backend: Backend, email: str = AGENT, **overrides: Any) -> DeskbellApp:
        """An app started with ``--server URL --token-file FILE``, resumed and live."""
        token_file = self.tmp_path / f"{email}.token"
        token_file.write_text(backend.tokens[email] + "\n", encoding="utf-8")
        app = self.start(CliOptions(server_url=backend.url, token_file=token_file), **overrides)
        assert app.connection is not None
        resumed: list[object] = []
        app.connection.resumed.connect(resumed.append)
        self.loop.qtbot.waitUntil(lambda: bool(resumed), timeout=WAIT_MS)
        return app

    def close(self) -> None:
        for app in self.started:
            self.loop.run(app.shutdown())
        self.started.clear()
        self.toasters.clear()
        # Deferred deletes and collection now, between tests, not during the next one.
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()


def _fast_delays() -> Iterator[float]:
    while True:
        yield 0.1


@pytest.fixture
def apps(tmp_path: Path, loop: Loop) -> Iterator[Apps]:
    factory = Apps(tmp_path, loop)
    try:
        yield factory
    finally:
        factory.close()
