"""Issue 11, findings 1, 2, 3 and 5: attempts that arrive together, anonymous token
look-ups, and limits keyed by the real client, against a real in-process server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support.backend import in_process_backend
from tests.support.crowd import all_at_once, close_all, open_clients

ROOM = {"anonymous_connections_per_address": 2000}
"""Enough connections from one address that the limits under test, not the connection
budget, decide."""


async def test_simultaneous_sign_ins_for_one_email_check_ten_passwords_then_refuse(
    tmp_path: Path,
) -> None:
    """Finding 1: 120 attempts at once were all checked (the 120th, right, accepted)."""
    async with in_process_backend(tmp_path, **ROOM) as server:
        await server.seed({"ann@x.org": ["Support"]}, password="right")
        clients = await open_clients([server.url], 120, "/auth")
        replies = await all_at_once(
            clients, {"type": "login", "email": "ann@x.org", "password": "wrong"}
        )
        codes = Counter(r.get("code") for r in replies)
        assert codes == {"unauthorized": 10, "rate_limited": 110}
        # An attempt over the limit never reaches the hash.
        registry = server.service.metrics.registry
        assert registry.get_sample_value("deskbell_password_checks_total") == 10
        right = await clients[0].request(
            {"type": "login", "email": "ann@x.org", "password": "right"}
        )
        assert right["code"] == "rate_limited"
        assert "try again in" in right["message"]
        await close_all(clients)


async def test_a_successful_sign_in_clears_the_emails_count(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path) as server:
        await server.seed({"ann@x.org": ["Support"]}, password="right")
        auth = await server.channel("/auth")
        login = {"type": "login", "email": "ann@x.org"}
        for _ in range(9):
            assert (await auth.request({**login, "password": "typo"}))["code"] == "unauthorized"
        assert (await auth.request({**login, "password": "right"}))["type"] == "ok"
        for _ in range(9):
            assert (await auth.request({**login, "password": "typo"}))["code"] == "unauthorized"
        await auth.close()


async def test_simultaneous_visitor_starts_from_one_address_open_ten_conversations(
    tmp_path: Path,
) -> None:
    """Finding 2: 150 starts at once created 122-150 conversations (limit 10)."""
    async with in_process_backend(tmp_path, **ROOM) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        ann = await server.agent(tokens["ann@x.org"])
        clients = await open_clients([server.url], 150, "/visitor")
        replies = await all_at_once(
            clients, {"type": "start", "inbox": "Support", "name": "D", "text": "hi"}
        )
        assert Counter(r["type"] for r in replies) == {"ok": 10, "error": 140}
        assert {r["code"] for r in replies if r["type"] == "error"} == {"rate_limited"}
        history = await ann.request({"type": "history", "limit": 200})
        assert len(history["items"]) == 10
        await close_all([*clients, ann])


async def test_anonymous_attach_and_logout_floods_are_limited_per_address(
    tmp_path: Path,
) -> None:
    """Finding 5: each anonymous attach or logout reached the database, unlimited."""
    async with in_process_backend(tmp_path, token_checks_per_minute=5) as server:
        visitor = await server.channel("/visitor")
        auth = await server.channel("/auth")
        attaches = [await visitor.request({"type": "attach", "token": f"v{n}"}) for n in range(3)]
        logouts = [await auth.request({"type": "logout", "token": f"a{n}"}) for n in range(3)]
        assert [r.get("code") for r in attaches] == ["not_found"] * 3
        assert [r["type"] for r in logouts] == ["ok", "ok", "error"]
        assert logouts[-1]["code"] == "rate_limited"
        refused = await visitor.request({"type": "attach", "token": "dbvt_x"})
        assert refused["code"] == "rate_limited"
        await close_all([visitor, auth])


async def test_behind_a_trusted_proxy_each_real_client_has_its_own_limits(
    tmp_path: Path,
) -> None:
    """Finding 3: behind a proxy everyone had the proxy's address, so 50 failed
    sign-ins by anyone locked every agent out."""
    async with in_process_backend(tmp_path, trusted_proxy=("127.0.0.1/32",)) as server:
        await server.seed({"ann@x.org": ["Support"]}, password="right")

        async def via_proxy(client: str) -> object:
            return await server.channel("/auth", additional_headers={"X-Forwarded-For": client})

        attacker = await via_proxy("198.51.100.66")
        for n in range(50):
            await attacker.request({"type": "login", "email": f"x{n}@x.org", "password": "g"})
        locked = await attacker.request({"type": "login", "email": "ann@x.org", "password": "g"})
        assert locked["code"] == "rate_limited"
        ann = await via_proxy("203.0.113.5")
        reply = await ann.request({"type": "login", "email": "ann@x.org", "password": "right"})
        assert reply["type"] == "ok"
        await close_all([attacker, ann])


async def test_a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address(
    tmp_path: Path,
) -> None:
    async with in_process_backend(
        tmp_path, trusted_proxy=("127.0.0.1/32",), visitor_starts_per_address=2
    ) as server:
        await server.seed({"ann@x.org": ["Support"]})
        start = {"type": "start", "inbox": "Support", "name": "D", "text": "hi"}
        replies = []
        for n in range(3):
            # From 127.0.0.2: not a trusted proxy, so its header is not believed.
            client = await server.channel(
                "/visitor",
                additional_headers={"X-Forwarded-For": f"198.51.100.{n}"},
                local_addr=("127.0.0.2", 0),
            )
            replies.append(await client.request(dict(start)))
            await client.close()
        assert [r["type"] for r in replies] == ["ok", "ok", "error"]
        assert replies[-1]["code"] == "rate_limited"
