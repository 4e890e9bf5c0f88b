"""Fixtures for single sign-on: a real OpenID provider, headless Chromium, a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backend.widget.harness import LiveBackend
from tests.support.oidc import CLIENT_ID, SCOPES, Provider

INBOX = "Support"
AGENT_EMAIL = "alex@example.org"


@pytest.fixture
def make_backend(tmp_path: Path, provider: Provider) -> Iterator[Callable[..., LiveBackend]]:
    """A backend whose single sign-on trusts ``provider`` for the tray app's client id,
    with the inbox ``Support`` and the agent alex@example.org; ``config`` overrides."""
    started: list[LiveBackend] = []

    def make(**config: Any) -> LiveBackend:
        settings: dict[str, Any] = {
            "sso_issuer": provider.issuer,
            "sso_client_id": CLIENT_ID,
            "sso_label": "Example Co",
            "sso_scopes": SCOPES,
            "sso_groups_claim": "groups",
            **config,
        }
        live = LiveBackend(tmp_path / f"deskbell-{len(started)}.sqlite3", **settings)
        live.start()
        started.append(live)

        async def seed(backend: Any) -> None:
            await backend.service.store.add_inbox(INBOX)
            await backend.service.add_agent(AGENT_EMAIL, "Alex Doe", [INBOX], None)

        live.call(seed)
        return live

    yield make
    for live in started:
        live.stop()
