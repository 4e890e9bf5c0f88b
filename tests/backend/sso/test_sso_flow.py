"""Single sign-on against a real OpenID provider, with Chromium doing the browser step.

The app's flow object (:class:`SsoFlow`) runs its real loopback listener; Chromium signs
in at oidc-provider and is redirected back to it; the backend checks the ID token
against the provider's JWKS. The end to end through the whole tray app and the Secret
Service keyring is tests/desktop/app/test_sso_sign_in.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.sso import IdTokenVerifier
from desktop_agent.connection import sign_in, sign_in_options, sso_sign_in
from desktop_agent.errors import AuthRejected, RequestFailed, SsoFailed
from desktop_agent.shell.sso import SsoFlow
from tests.backend.sso.conftest import AGENT_EMAIL, INBOX
from tests.backend.widget.harness import LiveBackend
from tests.support.backend import free_port
from tests.support.oidc import OTHER_CLIENT_ID, BrowserStep, Provider

pytestmark = pytest.mark.slow

MakeBackend = Callable[..., LiveBackend]


async def flow_for(live: LiveBackend, browser: BrowserStep, **info_changes: Any) -> SsoFlow:
    """The flow as the app builds it: from what the server advertises."""
    options = await sign_in_options(live.ws_url)
    assert options.sso is not None
    info = options.sso
    for name, value in info_changes.items():
        setattr(info, name, value)

    async def exchange(id_token: str, nonce_secret: str) -> tuple[str, Any]:
        return await sso_sign_in(live.ws_url, id_token, nonce_secret, device="test")

    return SsoFlow(info, browser, exchange, browser_timeout=60)


async def test_the_server_advertises_its_provider_and_whether_passwords_work(
    make_backend: MakeBackend, provider: Provider
) -> None:
    live = make_backend()
    options = await sign_in_options(live.ws_url)
    assert options.password is True
    assert options.sso is not None
    assert options.sso.issuer == provider.issuer
    assert options.sso.label == "Example Co"
    assert "openid" in options.sso.scopes


async def test_signing_in_with_the_company_account_gives_a_working_agent_token(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend()
    browser = BrowserStep(chromium, "alex")
    flow = await flow_for(live, browser)
    token, agent = await browser.run_with(flow.run())
    browser.join()
    assert agent.email == AGENT_EMAIL
    assert token.startswith("dbat_")
    # The browser was sent to the provider with PKCE (S256) and our loopback redirect.
    assert "code_challenge_method=S256" in browser.opened[0]
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in browser.opened[0]
    assert "You can close this tab" in chromium.page_source
    found = live.call(lambda b: b.service.agent_for_token(token))
    assert found[0].email == AGENT_EMAIL


async def test_a_token_made_for_another_application_is_refused(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend()
    browser = BrowserStep(chromium, "alex")
    # The provider signs a perfectly valid token, for another client id (audience).
    flow = await flow_for(live, browser, client_id=OTHER_CLIENT_ID)
    with pytest.raises(AuthRejected, match="made for another application"):
        await browser.run_with(flow.run())
    browser.join()


async def test_an_expired_token_is_refused(make_backend: MakeBackend, chromium: Any) -> None:
    live = make_backend()
    # The server's clock is two hours ahead: the provider's one-hour ID token has expired.
    assert live.backend is not None
    verifier = live.backend.service.sso
    assert verifier is not None
    live.backend.service.sso = IdTokenVerifier(
        verifier.settings, clock=lambda: time.time() + 2 * 3600
    )
    browser = BrowserStep(chromium, "alex")
    flow = await flow_for(live, browser)
    with pytest.raises(AuthRejected, match="expired"):
        await browser.run_with(flow.run())
    browser.join()


async def test_a_replayed_code_and_a_replayed_id_token_are_refused(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend()
    browser = BrowserStep(chromium, "alex")
    flow = await flow_for(live, browser)
    code = await browser.run_with(flow.authorize())
    browser.join()
    id_token = await flow.redeem(code)
    token, _ = await sso_sign_in(live.ws_url, id_token, flow.nonce_secret)
    assert token.startswith("dbat_")

    # The provider redeems a code once (and revokes what it gave for it).
    with pytest.raises(SsoFailed, match="did not accept the sign-in"):
        await flow.redeem(code)
    # The server exchanges an ID token once, whoever presents it again.
    with pytest.raises(AuthRejected, match="already used"):
        await sso_sign_in(live.ws_url, id_token, flow.nonce_secret)


async def test_an_id_token_without_its_nonce_secret_is_refused(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend()
    browser = BrowserStep(chromium, "alex")
    flow = await flow_for(live, browser)
    id_token = await flow.redeem(await browser.run_with(flow.authorize()))
    browser.join()
    # Whoever intercepted the ID token sees its nonce, not the secret behind it.
    with pytest.raises(AuthRejected, match="does not belong to this sign-in"):
        await sso_sign_in(live.ws_url, id_token, "an intercepted token's guess at it")
    token, _ = await sso_sign_in(live.ws_url, id_token, flow.nonce_secret)
    assert token.startswith("dbat_")


async def test_an_email_with_no_agent_is_refused(make_backend: MakeBackend, chromium: Any) -> None:
    live = make_backend()
    browser = BrowserStep(chromium, "robin")
    flow = await flow_for(live, browser)
    with pytest.raises(AuthRejected, match=r"robin@example\.org .*no Deskbell account"):
        await browser.run_with(flow.run())
    browser.join()
    assert live.call(lambda b: b.service.store.agent_by_email("robin@example.org")) is None


async def test_with_agent_creation_on_an_unknown_email_becomes_an_agent_of_its_groups(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend(sso_create_agents=True)
    browser = BrowserStep(chromium, "robin")
    flow = await flow_for(live, browser)
    token, agent = await browser.run_with(flow.run())
    browser.join()
    assert agent.email == "robin@example.org"
    assert agent.name == "Robin Roe"
    created = live.call(lambda b: b.service.store.agent_by_email("robin@example.org"))
    assert created is not None
    # Groups that name an inbox become its inboxes; other groups are left out.
    assert live.call(lambda b: b.service.store.list_agents())[-1].inboxes == (INBOX,)
    assert token.startswith("dbat_")


async def test_with_password_sign_in_off_only_single_sign_on_works(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend(password_sign_in=False)
    options = await sign_in_options(live.ws_url)
    assert options.password is False
    with pytest.raises(RequestFailed, match="does not accept passwords") as refused:
        await sign_in(live.ws_url, AGENT_EMAIL, "any password")
    assert refused.value.code == "forbidden"
    browser = BrowserStep(chromium, "alex")
    token, _ = await browser.run_with((await flow_for(live, browser)).run())
    browser.join()
    assert token.startswith("dbat_")


@pytest.mark.parametrize(
    "id_token",
    [
        "not-a-token",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # alg "none", unsigned
        "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vLXN1Y2gta2V5In0.e30.c2ln",  # an unknown key id
    ],
)
async def test_a_forged_or_malformed_id_token_is_refused_as_unverifiable(
    make_backend: MakeBackend, id_token: str
) -> None:
    live = make_backend()
    with pytest.raises(AuthRejected, match="could not be verified"):
        await sso_sign_in(live.ws_url, id_token, "a nonce secret of some length")


async def test_an_unreachable_provider_is_a_clear_temporary_refusal(tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    live = LiveBackend(tmp_path / "alone.sqlite3", sso_issuer=gone, sso_client_id="deskbell")
    live.start()
    try:
        with pytest.raises(RequestFailed, match="cannot reach your company's sign-in") as refused:
            await sso_sign_in(live.ws_url, "a.b.c", "a nonce secret of some length")
        assert refused.value.code == "unavailable"
        # The app, for its part, cannot even start the browser step.
        options = await sign_in_options(live.ws_url)
        assert options.sso is not None

        def never(url: str) -> None:
            raise AssertionError("no browser should open")

        flow = SsoFlow(options.sso, never, sso_sign_in)
        with pytest.raises(SsoFailed, match="Could not reach your company's sign-in service"):
            await flow.run()
    finally:
        live.stop()


async def test_a_disabled_agent_cannot_sign_in_with_the_company_either(
    make_backend: MakeBackend, chromium: Any
) -> None:
    live = make_backend(sso_create_agents=True)
    live.call(lambda b: b.service.set_agent_disabled(AGENT_EMAIL, True))
    browser = BrowserStep(chromium, "alex")
    flow = await flow_for(live, browser)
    with pytest.raises(RequestFailed, match="disabled") as refused:
        await browser.run_with(flow.run())
    assert refused.value.code == "forbidden"
