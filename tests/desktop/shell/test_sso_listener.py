"""The loopback listener the browser comes back to: real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from desktop_agent.shell.sso import LoopbackListener


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_the_redirect_with_the_expected_state_ends_the_wait() -> None:
    async with LoopbackListener() as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        assert listener.redirect_uri.endswith("/callback")
        listener.expected_state = "s1"
        status, page = await asyncio.to_thread(get, listener.redirect_uri + "?code=c&state=s1")
        assert (status, "You can close this tab" in page) == (200, True)
        assert await asyncio.wait_for(listener.query(), 5) == "code=c&state=s1"


async def test_a_stray_request_is_answered_and_changes_nothing() -> None:
    async with LoopbackListener() as listener:
        listener.expected_state = "s1"
        base = listener.redirect_uri.removesuffix("/callback")
        status, page = await asyncio.to_thread(get, listener.redirect_uri + "?code=x&state=bad")
        assert status == 400 and "not the sign-in" in page
        assert (await asyncio.to_thread(get, base + "/favicon.ico"))[0] == 404
        waiting = asyncio.ensure_future(listener.query())
        await asyncio.sleep(0)
        assert not waiting.done()
        await asyncio.to_thread(get, listener.redirect_uri + "?code=c&state=s1")
        assert await asyncio.wait_for(waiting, 5) == "code=c&state=s1"


async def test_the_port_is_closed_once_the_sign_in_is_over() -> None:
    async with LoopbackListener() as listener:
        url = listener.redirect_uri
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(urllib.request.urlopen, url, None, 5)
