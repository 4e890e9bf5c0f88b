"""Single sign-on through the whole tray app, end to end, with nothing faked.

The app's sign-in window asks the server how to sign in and offers "Sign in with
Example Co"; a click opens the "system browser" (headless Chromium, which signs in at a
real oidc-provider and consents); the provider redirects to the app's loopback
listener; the app redeems the code, the backend checks the ID token and answers with an
agent token; the app keeps it in the Secret Service keyring (gnome-keyring on a private
D-Bus) and connects with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import SecretService
from pytestqt.qtbot import QtBot

from desktop_agent import __version__
from desktop_agent.cli import CliOptions
from desktop_agent.platform.tokens import service_name
from tests.backend.widget.harness import LiveBackend
from tests.desktop.app.conftest import Apps
from tests.support.desktop_session import DesktopSession
from tests.support.desktop_session import keyring_session as keyring_session  # a fixture
from tests.support.oidc import (
    CLIENT_ID,
    SCOPES,
    BrowserStep,
    Provider,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

AGENT_EMAIL = "alex@example.org"
WAIT_MS = 60_000


def secret_service() -> Any:
    return SecretService.Keyring()  # type: ignore[no-untyped-call]


@pytest.fixture
def sso_backend(tmp_path: Path, provider: Provider) -> Iterator[LiveBackend]:
    live = LiveBackend(
        tmp_path / "deskbell.sqlite3",
        sso_issuer=provider.issuer,
        sso_client_id=CLIENT_ID,
        sso_label="Example Co",
        sso_scopes=SCOPES,
        password_sign_in=False,
    )
    live.start()

    async def seed(backend: Any) -> None:
        await backend.service.store.add_inbox("Support")
        await backend.service.add_agent(AGENT_EMAIL, "Alex Doe", ["Support"], None)

    live.call(seed)
    try:
        yield live
    finally:
        live.stop()


def test_sign_in_with_the_company_account_keeps_the_token_in_the_keyring_and_connects(
    apps: Apps,
    qtbot: QtBot,
    sso_backend: LiveBackend,
    chromium: Any,
    keyring_session: DesktopSession,
) -> None:
    browser = BrowserStep(chromium, "alex")
    with keyring_session.activated():
        app = apps.start(
            CliOptions(server_url=sso_backend.ws_url),
            keyring_backend=secret_service(),
            open_browser=browser,
        )
        dialog = app.signin_dialog
        assert dialog is not None
        # The server takes no passwords here: only the company button is offered.
        qtbot.waitUntil(dialog.sso_button.isVisible, timeout=WAIT_MS)
        assert dialog.sso_button.text() == "Sign in with Example Co"
        assert not dialog.password_edit.isVisible()

        with qtbot.waitSignal(app.signedIn, timeout=WAIT_MS) as signed_in:
            dialog.sso_button.click()
        browser.join()

        assert signed_in.args == [AGENT_EMAIL]
        assert app.connection is not None and app.connection.state == "connected"
        assert app.signin_dialog is None
        # In the Secret Service, read back by a fresh backend as a restart would.
        token = secret_service().get_password(service_name(sso_backend.ws_url), AGENT_EMAIL)
    assert token is not None and token.startswith("dbat_")
    agent, _ = sso_backend.call(lambda b: b.service.agent_for_token(token))
    assert agent.email == AGENT_EMAIL
    # The handshake told the server which app version connected.
    assert sso_backend.backend is not None

    def versions() -> list[str]:
        seen = sso_backend.call(lambda b: b.service.client_versions("2000-01-01T00:00:00.000Z"))
        return [v.version for v in seen.get(agent.id, [])]

    wait_until(lambda: versions() == [__version__], what="the app version recorded")
