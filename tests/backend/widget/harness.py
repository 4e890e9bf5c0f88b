"""What the widget tests drive: the real backend in a thread, an agent on /agent, and
where to find headless Chromium.

The backend runs in a thread with its own event loop so that the test body, the
Selenium driver and the agent's WebSocket client can all simply block. Every wait is on
a condition (WebDriverWait, a receive with a timeout); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from websockets.sync.client import ClientConnection, connect

from backend.app import Backend, open_service, running_backend
from backend.config import Config

T = TypeVar("T")

INBOX = "Support"
AGENT_EMAIL = "ann@example.org"
WAIT_SECONDS = 20.0

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=500,700",
)


class LiveBackend:
    """``running_backend`` in a thread of its own, stoppable and restartable on the same
    database and port (a restart as operators do it: clients get 1001 and come back)."""

    def __init__(self, db: Path, **config: Any):
        self.db = db
        self.config = config
        self.port = 0
        self.backend: Backend | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(ready),), name="deskbell-backend", daemon=True
        )
        self._thread.start()
        if not ready.wait(WAIT_SECONDS):
            raise TimeoutError("the backend did not start")
        if self._error is not None:
            raise RuntimeError("the backend failed to start") from self._error

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            config = Config(db=str(self.db), port=self.port, **self.config)
            async with running_backend(config) as backend:
                self.backend = backend
                self.port = backend.server.port
                ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self.backend = None
            ready.set()

    def call(self, make: Callable[[Backend], Coroutine[Any, Any, T]]) -> T:
        """Run ``make(backend)`` on the backend's loop and return its result."""
        assert self._loop is not None and self.backend is not None
        future = asyncio.run_coroutine_threadsafe(make(self.backend), self._loop)
        return future.result(WAIT_SECONDS)

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), "the backend did not stop"
        self._thread = None


class AgentClient:
    """An agent on /agent: resumes, collects pushes, makes requests."""

    def __init__(self, ws_url: str, token: str):
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                ws_url + "/agent",
                subprotocols=["deskbell.v1"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=WAIT_SECONDS,
            )
        )
        self.pushes: list[dict[str, Any]] = []
        self._next_id = 1
        welcome = self._recv()
        assert welcome["type"] == "welcome", welcome
        self.request({"type": "resume", "after_seq": welcome["last_seq"]})

    def _recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.ws.recv(timeout=WAIT_SECONDS))
        return frame

    def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send ``frame`` with a fresh id; return its ``ok`` (pushes meanwhile are kept)."""
        request_id = self._next_id
        self._next_id += 1
        self.ws.send(json.dumps({**frame, "id": request_id}))
        while True:
            reply = self._recv()
            if reply.get("id") == request_id and reply["type"] in ("ok", "error"):
                assert reply["type"] == "ok", reply
                return reply
            self.pushes.append(reply)

    def notification(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first notification, kept or still to come, for which ``predicate`` holds."""
        index = 0
        while True:
            while index < len(self.pushes):
                frame = self.pushes[index]
                index += 1
                if frame["type"] == "notification" and predicate(frame["notification"]):
                    notification: dict[str, Any] = frame["notification"]
                    return notification
            self.pushes.append(self._recv())

    def reply(self, conversation_id: str, body: str, client_msg_id: str) -> dict[str, Any]:
        ok = self.request(
            {
                "type": "reply",
                "conversation_id": conversation_id,
                "body": body,
                "client_msg_id": client_msg_id,
            }
        )
        message: dict[str, Any] = ok["message"]
        return message

    def close(self) -> None:
        self._stack.close()


def add_agent(live: LiveBackend, name: str = "Ann Lee", email: str = AGENT_EMAIL) -> str:
    """Add an agent of ``Support``; return a fresh token of theirs."""

    async def seed(backend: Backend) -> str:
        await backend.service.add_agent(email, name, [INBOX], "correct horse battery")
        token, _ = await backend.service.issue_agent_token(email)
        return token

    return live.call(seed)


def browser_paths() -> tuple[str, str] | None:
    """Chromium and its chromedriver: ``$DESKBELL_CHROMIUM`` and ``$DESKBELL_CHROMEDRIVER``
    when set, else found on PATH; None when either is missing."""

    def find(variable: str, names: tuple[str, ...]) -> str | None:
        chosen = os.environ.get(variable)
        if chosen:
            return chosen if os.access(chosen, os.X_OK) else None
        return next(filter(None, map(shutil.which, names)), None)

    chromium = find("DESKBELL_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    driver = find("DESKBELL_CHROMEDRIVER", ("chromedriver",))
    return (chromium, driver) if chromium and driver else None


def seed_inbox(db: Path) -> None:
    """Create the inbox ``Support`` in the database at ``db`` (no server needed)."""

    async def seed() -> None:
        async with open_service(Config(db=str(db))) as service:
            await service.store.add_inbox(INBOX)

    asyncio.run(seed())
