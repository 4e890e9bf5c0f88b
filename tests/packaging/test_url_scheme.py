"""``deskbell://conversation/<id>`` links start Deskbell and open the conversation, on a
Linux desktop, through the desktop entry the .deb installs.

The packaged ``packaging/linux/deskbell.desktop`` is installed as it is into a private
desktop session (Xvfb, D-Bus, gnome-keyring, its own HOME); ``deskbell`` on PATH is the
source tree's launcher. ``xdg-mime`` must name the entry as the scheme's handler, and
``xdg-open`` on a link, with Deskbell not running, must start it signed in (token from
the keyring, as after any earlier sign-in) with that conversation's window open.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.backend import BackendHarness, ServerProcess, seed_db
from tests.support.desktop_session import desktop_session, missing_binaries
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DESKTOP_ENTRY = ROOT / "packaging" / "linux" / "deskbell.desktop"
AGENT = "ann@example.org"

pytestmark = pytest.mark.desktop


def test_desktop_entry_declares_the_link_scheme() -> None:
    text = DESKTOP_ENTRY.read_text(encoding="utf-8")
    assert "MimeType=x-scheme-handler/deskbell;" in text.splitlines()
    assert "Exec=deskbell %u" in text.splitlines()


def _conversation(server: ServerProcess, db: str) -> str:
    async def start() -> str:
        harness = BackendHarness(None, server.port, db)
        client, reply = await harness.visitor_start("Support", "Dana Smith", "Where is my parcel?")
        await client.close()
        return str(reply["conversation"]["id"])

    return asyncio.run(start())


def _window_titled(title: str, env: dict[str, str]) -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--name", title], env=env, capture_output=True, text=True
    )
    return found.returncode == 0 and bool(found.stdout.strip())


@pytest.mark.slow
def test_xdg_open_on_a_link_starts_deskbell_and_opens_the_conversation(tmp_path: Path) -> None:
    missing = missing_binaries("xdg-open", "xdg-mime", "update-desktop-database", "xdotool")
    if missing:
        pytest.skip(
            f"missing: {', '.join(missing)} (apt-get install xdg-utils desktop-file-utils xdotool)"
        )
    db = str(tmp_path / "deskbell.sqlite3")
    tokens = asyncio.run(seed_db(db, {AGENT: ["Support"]}))
    server = ServerProcess(db)
    server.start()
    try:
        conversation_id = _conversation(server, db)
        with desktop_session(display_server=True, keyring=True) as session:
            env = dict(session.env)
            for name in ("XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION"):
                env.pop(name, None)
            bin_dir = session.home / "bin"
            bin_dir.mkdir()
            launcher = bin_dir / "deskbell"
            launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m desktop_agent "$@"\n')
            launcher.chmod(0o755)
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
            env["PYTHONPATH"] = str(ROOT)
            env["QT_QPA_PLATFORM"] = "xcb"

            # What an earlier sign-in left: the account, and its token in the keyring.
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys\n"
                    "from desktop_agent.core import paths\n"
                    "from desktop_agent.platform.tokens import TokenStore\n"
                    "from desktop_agent.shell.account import Account, AccountStore\n"
                    "url, email, token = sys.argv[1:]\n"
                    "assert TokenStore().persistent\n"
                    "TokenStore().save(url, email, token)\n"
                    "AccountStore(paths.data_dir()).save(Account(url, email))\n",
                    server.url,
                    AGENT,
                    tokens[AGENT],
                ],
                env=env,
                cwd=ROOT,
                check=True,
                timeout=60,
            )

            applications = Path(env["XDG_DATA_HOME"]) / "applications"
            applications.mkdir(parents=True, exist_ok=True)
            shutil.copy(DESKTOP_ENTRY, applications / "deskbell.desktop")
            subprocess.run(["update-desktop-database", str(applications)], env=env, check=True)

            handler = subprocess.run(
                ["xdg-mime", "query", "default", "x-scheme-handler/deskbell"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            assert handler.stdout.strip() == "deskbell.desktop"

            status_file = Path(env["XDG_DATA_HOME"]) / "deskbell" / "status.json"
            assert not status_file.exists()  # Deskbell is not running
            # A regular expression: the title wraps names in invisible bidi isolates.
            title = "Dana Smith.*Support.*Deskbell"
            # In a session without a desktop environment xdg-open runs the handler in
            # the foreground, so it lives as long as Deskbell does.
            with (session.home / "xdg-open.log").open("w") as opener_log:
                opener = subprocess.Popen(
                    ["xdg-open", f"deskbell://conversation/{conversation_id}"],
                    env=env,
                    stdout=opener_log,
                    stderr=subprocess.STDOUT,
                )
            pid = 0
            try:
                wait_until(status_file.exists, timeout=60, what="Deskbell to start")
                pid = int(json.loads(status_file.read_text())["pid"])
                wait_until(
                    lambda: _window_titled(title, env),
                    timeout=60,
                    what="the conversation window",
                )
            finally:
                if not pid and status_file.exists():
                    pid = int(json.loads(status_file.read_text()).get("pid", 0))
                if pid:
                    os.kill(pid, signal.SIGTERM)
                try:
                    opener.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    opener.kill()
                    opener.wait()
    finally:
        server.stop()
