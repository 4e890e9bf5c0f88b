"""Plain HTTP on the WebSocket port: health, metrics, widget, 404."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.backend import BackendHarness, in_process_backend


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(tmp_path) as harness:
        yield harness


async def get(server: BackendHarness, path: str) -> tuple[int, dict[str, str], bytes]:
    def fetch() -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    return await asyncio.to_thread(fetch)


async def test_healthz_reports_ok_and_version(server: BackendHarness) -> None:
    status, headers, body = await get(server, "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert data["status"] == "ok" and data["version"]


async def test_healthz_is_503_while_the_store_is_unreachable(
    server: BackendHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.errors import StoreUnavailable

    async def down() -> None:
        raise StoreUnavailable("database down")

    monkeypatch.setattr(server.service.store, "ping", down)
    status, _, body = await get(server, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "unavailable"


async def test_metrics_count_connections_and_deliveries(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    await server.visitor_start("Support", "Dana", "Hi")
    await ann.push("notification")
    await ann.send_raw("nonsense")
    await ann.push("error")
    status, headers, body = await get(server, "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'deskbell_connections{channel="agent"} 1.0' in text
    assert "deskbell_notifications_stored_total 1.0" in text
    assert "deskbell_notifications_delivered_total 1.0" in text
    assert "deskbell_delivery_latency_seconds_count 1.0" in text
    assert 'deskbell_errors_total{code="bad_request"} 1.0' in text


async def test_widget_is_served_with_a_strict_content_policy(server: BackendHarness) -> None:
    status, headers, body = await get(server, "/widget/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"<" in body


@pytest.mark.parametrize("path", ["/", "/nope", "/widget/../backend/app.py", "/widget/.hidden"])
async def test_anything_else_is_404(server: BackendHarness, path: str) -> None:
    status, _, _ = await get(server, path)
    assert status == 404
