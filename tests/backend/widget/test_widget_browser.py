"""The visitor widget in a real headless Chromium against the real backend.

A visitor chats in the page while a test client plays the agent on /agent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from tests.backend.widget.harness import (
    INBOX,
    WAIT_SECONDS,
    AgentClient,
    LiveBackend,
    add_agent,
    seed_inbox,
)
from tests.support.backend import ServerProcess

SCRIPT_TAG = "<script>window.__pwned=1</script>"
IMG_ONERROR = '<img src=x onerror="window.__pwned=1">'

TRANSCRIPT_JS = """
return Array.from(document.querySelectorAll('#transcript > li.message')).map(li => ({
  id: li.dataset.id || null,
  kind: ['visitor', 'agent', 'system'].find(k => li.classList.contains('message-' + k)),
  author: li.querySelector('.message-author').textContent,
  body: li.querySelector('.message-body').textContent,
  pending: li.classList.contains('pending'),
  failed: li.classList.contains('failed'),
  status: li.querySelector('.message-status').textContent,
}));
"""


# ------------------------------------------------------------------ page helpers


def wait_until(driver: Any, condition: Any, what: str) -> Any:
    """Poll ``condition()`` until it returns something truthy; return that."""
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05).until(
        lambda _: condition(), message=f"timed out waiting for {what}"
    )


def open_widget(driver: Any, live: LiveBackend | ServerProcess, inbox: str | None = INBOX) -> None:
    query = "" if inbox is None else f"?inbox={quote(inbox)}"
    driver.get(f"{live.http_url}/widget/{query}")


def transcript(driver: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = driver.execute_script(TRANSCRIPT_JS)
    return rows


def bodies(driver: Any) -> list[str]:
    return [row["body"] for row in transcript(driver)]


def connection(driver: Any) -> str:
    state: str = driver.execute_script(
        "return document.getElementById('widget').dataset.connection"
    )
    return state


def visible_text(driver: Any, element_id: str) -> str:
    element = driver.find_element(By.ID, element_id)
    return str(element.text) if element.is_displayed() else ""


def type_lines(driver: Any, element_id: str, text: str) -> None:
    """Type ``text`` into a field, with Shift+Enter between lines (Enter would send)."""
    box = driver.find_element(By.ID, element_id)
    for index, line in enumerate(text.split("\n")):
        if index:
            ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(
                Keys.SHIFT
            ).perform()
        box.send_keys(line)


def start_chat(driver: Any, name: str, text: str) -> None:
    wait_until(driver, lambda: connection(driver) == "online", "the widget to connect")
    driver.find_element(By.ID, "start-name").send_keys(name)
    type_lines(driver, "start-text", text)
    driver.find_element(By.ID, "start-button").click()
    wait_until(driver, lambda: any(row["id"] for row in transcript(driver)), "the chat to start")


def send(driver: Any, text: str) -> None:
    """Type ``text`` in the composer and press Enter."""
    box = driver.find_element(By.ID, "composer-text")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def settled(driver: Any, body: str) -> bool:
    """``body`` is shown once as a message the server has stored."""
    rows = [row for row in transcript(driver) if row["body"] == body]
    return len(rows) == 1 and rows[0]["id"] is not None and not rows[0]["pending"]


def save_screenshot(driver: Any, tmp_path: Path) -> None:
    """Always into the test's folder; also to $DESKBELL_WIDGET_SCREENSHOT when set (that is
    how docs/screenshots/widget.png is made)."""
    driver.save_screenshot(str(tmp_path / "widget.png"))
    target = os.environ.get("DESKBELL_WIDGET_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(target)


# ------------------------------------------------------------------ tests


def test_visitor_chats_with_agent_live_and_keeps_it_across_reload_and_restart(
    make_backend: Any, browser: Any, tmp_path: Path
) -> None:
    live: LiveBackend = make_backend()
    agent = AgentClient(live.ws_url, add_agent(live))
    open_widget(browser, live)

    first = "Hi, my order #1234 has not arrived yet.\nCould you check where it is?"
    start_chat(browser, "Dana Smith", first)
    created = agent.notification(lambda n: n["kind"] == "chat.conversation.created")
    assert created["title"] == "Dana Smith"
    assert created["body"] == first
    assert bodies(browser) == [first]
    cid = created["conversation_id"]

    agent.request({"type": "conversation", "conversation_id": cid})
    agent.reply(cid, "Hi Dana! Let me look that up for you.", "r1")
    wait_until(
        browser, lambda: settled(browser, "Hi Dana! Let me look that up for you."), "the reply"
    )
    reply_row = transcript(browser)[-1]
    assert reply_row["kind"] == "agent" and reply_row["author"] == "Ann Lee"

    # Enter sends; Shift+Enter is a new line in the same message.
    two_lines = "Thanks!\nIt was a blue jacket."
    type_lines(browser, "composer-text", two_lines)
    browser.find_element(By.ID, "composer-text").send_keys(Keys.ENTER)
    wait_until(browser, lambda: settled(browser, two_lines), "the visitor's message to be stored")
    sent = agent.notification(lambda n: n["kind"] == "chat.message.created")
    assert sent["body"] == two_lines
    # The visitor's own message came back both in `ok` and as a push: the push of an
    # earlier message is surely handled once a later agent reply is on the page.
    agent.reply(cid, "Found it: it ships tomorrow.", "r2")
    wait_until(browser, lambda: settled(browser, "Found it: it ships tomorrow."), "second reply")
    assert bodies(browser).count(two_lines) == 1
    save_screenshot(browser, tmp_path)

    expected = [
        first,
        "Hi Dana! Let me look that up for you.",
        two_lines,
        "Found it: it ships tomorrow.",
    ]
    assert bodies(browser) == expected

    # A reload attaches to the same conversation with the stored token.
    browser.refresh()
    wait_until(browser, lambda: bodies(browser) == expected, "the transcript after reload")
    wait_until(browser, lambda: connection(browser) == "online", "the widget to reconnect")
    assert not browser.find_element(By.ID, "start-view").is_displayed()

    # The server goes away: the page says so, and keeps what the visitor types.
    agent.close()
    live.stop()
    wait_until(browser, lambda: connection(browser) == "offline", "the offline state")
    wait_until(browser, lambda: visible_text(browser, "banner"), "the banner")
    send(browser, "Are you still there?")
    wait_until(
        browser,
        lambda: transcript(browser)[-1]["status"] == "Waiting for connection…",
        "the message to wait for the connection",
    )

    # Back on the same port and database: the widget reconnects, re-attaches and sends.
    live.start()
    agent = AgentClient(live.ws_url, add_token(live))
    wait_until(browser, lambda: connection(browser) == "online", "the widget to reconnect")
    wait_until(browser, lambda: settled(browser, "Are you still there?"), "the queued message")
    assert not browser.find_element(By.ID, "banner").is_displayed()
    queued = agent.notification(lambda n: n["body"] == "Are you still there?")
    assert queued["conversation_id"] == cid
    agent.reply(cid, "Yes, still here.", "r3")
    wait_until(browser, lambda: settled(browser, "Yes, still here."), "the reply after restart")
    assert bodies(browser) == [*expected, "Are you still there?", "Yes, still here."]
    agent.close()


def add_token(live: LiveBackend) -> str:
    async def issue(backend: Any) -> str:
        token, _ = await backend.service.issue_agent_token("ann@example.org")
        return str(token)

    return live.call(issue)


def test_markup_from_visitor_and_agent_is_shown_as_text(make_backend: Any, browser: Any) -> None:
    live: LiveBackend = make_backend()
    agent = AgentClient(live.ws_url, add_agent(live, name=f"Ann {IMG_ONERROR}"))
    open_widget(browser, live)

    start_chat(browser, f"Dana {IMG_ONERROR}", SCRIPT_TAG)
    created = agent.notification(lambda n: n["kind"] == "chat.conversation.created")
    assert created["title"] == f"Dana {IMG_ONERROR}"
    cid = created["conversation_id"]
    send(browser, IMG_ONERROR)
    wait_until(browser, lambda: settled(browser, IMG_ONERROR), "the visitor's markup message")
    agent.reply(cid, f"{SCRIPT_TAG} and {IMG_ONERROR}", "x1")
    wait_until(browser, lambda: settled(browser, f"{SCRIPT_TAG} and {IMG_ONERROR}"), "the reply")

    browser.refresh()  # the same text again, this time from `attach`
    wait_until(browser, lambda: len(transcript(browser)) == 3, "the transcript after reload")

    rows = transcript(browser)
    assert [row["body"] for row in rows] == [
        SCRIPT_TAG,
        IMG_ONERROR,
        f"{SCRIPT_TAG} and {IMG_ONERROR}",
    ]
    assert rows[2]["author"] == f"Ann {IMG_ONERROR}"
    page = browser.find_element(By.ID, "widget")
    assert page.find_elements(By.CSS_SELECTOR, "#transcript img, #transcript script") == []
    assert browser.execute_script("return window.__pwned") is None
    agent.close()


def test_rate_limit_is_explained_and_the_message_can_be_retried(
    make_backend: Any, browser: Any
) -> None:
    live: LiveBackend = make_backend(visitor_messages_per_minute=1)
    open_widget(browser, live)
    start_chat(browser, "Dana", "Hello")

    send(browser, "one")
    wait_until(browser, lambda: settled(browser, "one"), "the first message")
    send(browser, "two")
    wait_until(browser, lambda: transcript(browser)[-1]["failed"], "the refusal")

    error = visible_text(browser, "composer-error")
    assert error.startswith("You are sending messages too fast; wait ")
    assert error.endswith("seconds and send again.")
    assert transcript(browser)[-1]["status"] == "Not sent. Retry"
    retry = browser.find_element(By.CSS_SELECTOR, "#transcript li.failed button")
    assert retry.text == "Retry"


def test_a_socket_closed_for_idling_stays_quiet_and_the_chat_still_starts(
    make_backend: Any, browser: Any
) -> None:
    live: LiveBackend = make_backend(anonymous_idle_timeout=0.5)

    async def held(backend: Any) -> int:
        return int(backend.server.anonymous.held)

    open_widget(browser, live)
    wait_until(browser, lambda: connection(browser) == "online", "the widget to connect")
    wait_until(browser, lambda: live.call(held) == 0, "the server to close the idle socket")
    # Not a lost connection: no banner, no offline state, no reconnect loop.
    assert connection(browser) == "online"
    assert visible_text(browser, "banner") == ""
    start_chat(browser, "Dana", "Hello after a while")
    assert bodies(browser) == ["Hello after a while"]
    assert visible_text(browser, "start-error") == ""


def test_unknown_help_desk_is_explained(make_backend: Any, browser: Any) -> None:
    live: LiveBackend = make_backend()
    open_widget(browser, live, inbox="Nowhere")
    wait_until(browser, lambda: connection(browser) == "online", "the widget to connect")
    browser.find_element(By.ID, "start-name").send_keys("Dana")
    browser.find_element(By.ID, "start-text").send_keys("Hello?")
    browser.find_element(By.ID, "start-button").click()

    wait_until(browser, lambda: visible_text(browser, "start-error"), "the error")
    assert visible_text(browser, "start-error") == "This help desk (Nowhere) does not exist."
    assert browser.find_element(By.ID, "start-view").is_displayed()


def test_page_without_an_inbox_says_it_is_not_set_up(make_backend: Any, browser: Any) -> None:
    live: LiveBackend = make_backend()
    open_widget(browser, live, inbox=None)
    wait_until(browser, lambda: visible_text(browser, "setup-view"), "the set-up notice")
    assert "This chat is not set up" in visible_text(browser, "setup-view")


def test_a_conversation_that_is_gone_offers_a_new_one(make_backend: Any, browser: Any) -> None:
    live: LiveBackend = make_backend()
    open_widget(browser, live)
    browser.execute_script(
        "localStorage.setItem('deskbell.visitor.Support',"
        " JSON.stringify({token: 'dbvt_no-such-token', name: 'Dana'}))"
    )
    browser.refresh()

    wait_until(browser, lambda: visible_text(browser, "ended"), "the widget to give up")
    assert visible_text(browser, "ended-text") == "This conversation is no longer available."
    assert not browser.find_element(By.ID, "composer").is_displayed()
    browser.find_element(By.LINK_TEXT, "Start a new conversation").click()

    wait_until(browser, lambda: browser.find_element(By.ID, "start-view").is_displayed(), "form")
    assert browser.find_element(By.ID, "start-name").get_attribute("value") == "Dana"
    assert browser.switch_to.active_element == browser.find_element(By.ID, "start-text")
    start_chat(browser, "Dana", "Hello again")
    assert bodies(browser) == ["Hello again"]


def test_widget_survives_a_killed_server(tmp_path: Path, browser: Any) -> None:
    db = tmp_path / "killed.sqlite3"
    seed_inbox(db)
    server = ServerProcess(str(db))
    server.start()
    try:
        open_widget(browser, server)
        start_chat(browser, "Dana", "Hello before the crash")

        server.kill()
        wait_until(browser, lambda: connection(browser) == "offline", "the offline state")
        wait_until(browser, lambda: visible_text(browser, "banner"), "the banner")

        server.start()  # same database, same port
        wait_until(browser, lambda: connection(browser) == "online", "the widget to reconnect")
        send(browser, "Hello after the crash")
        wait_until(browser, lambda: settled(browser, "Hello after the crash"), "re-attached send")
        assert bodies(browser) == ["Hello before the crash", "Hello after the crash"]
    finally:
        server.stop()
