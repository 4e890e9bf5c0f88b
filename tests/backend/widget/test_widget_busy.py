"""The widget's honest "our team is busy" line, in headless Chromium.

The backend decides when nobody can answer soon (the wait escalated past its last step:
tests/backend/waiting/test_escalation.py) and publishes a ``VisitorStatus`` on its bus;
the gateway turns it into the visitor's ``team_status`` push (docs/protocol.md, visitor
channel). Here that bus event is published on a real backend, so the widget is tested
exactly as it will receive it; one test writes a frame to the socket itself, to show a
push for another conversation is ignored.
"""

from __future__ import annotations

import json
from typing import Any

from selenium.webdriver.common.by import By

from backend.app import Backend
from backend.bus import VisitorStatus
from tests.backend.widget.harness import AgentClient, LiveBackend, add_agent
from tests.backend.widget.test_widget_browser import (
    open_widget,
    settled,
    start_chat,
    visible_text,
    wait_until,
)

BUSY = "Our team is busy; we will answer here as soon as we can."


def push_to_visitor(live: LiveBackend, conversation_id: str, frame: dict[str, Any]) -> None:
    """Send ``frame`` on every visitor socket watching the conversation."""

    async def send(backend: Backend) -> int:
        socks = backend.gateway._conversations.get(conversation_id, set())
        data = json.dumps(frame).encode()
        return sum(1 for sock in socks if sock.send(data))

    assert live.call(send) >= 1, "no visitor socket watches the conversation"


def tell_visitor(live: LiveBackend, news: VisitorStatus) -> None:
    """Publish ``news`` on the backend's bus, as the escalation loop and resolve do."""

    async def publish(backend: Backend) -> None:
        await backend.service.bus.publish(news)

    live.call(publish)


def test_busy_shows_the_honest_line_and_an_answer_takes_it_away(
    make_backend: Any, browser: Any
) -> None:
    live: LiveBackend = make_backend()
    agent = AgentClient(live.ws_url, add_agent(live))
    open_widget(browser, live)
    start_chat(browser, "Dana Smith", "Is anyone there?")
    created = agent.notification(lambda n: n["kind"] == "chat.conversation.created")
    cid = created["conversation_id"]
    assert visible_text(browser, "busy-line") == ""

    tell_visitor(live, VisitorStatus(cid, busy=True))
    wait_until(browser, lambda: visible_text(browser, "busy-line") == BUSY, "the busy line")
    line = browser.find_element(By.ID, "busy-line")
    assert line.get_attribute("role") == "status"  # read out by screen readers
    # The visitor can still write while the team is busy.
    assert browser.find_element(By.ID, "composer").is_displayed()

    tell_visitor(live, VisitorStatus(cid, busy=False))
    wait_until(browser, lambda: visible_text(browser, "busy-line") == "", "the line to go")

    tell_visitor(live, VisitorStatus(cid, busy=True))
    wait_until(browser, lambda: visible_text(browser, "busy-line") == BUSY, "the busy line")
    agent.request({"type": "conversation", "conversation_id": cid})
    agent.reply(cid, "Sorry for the wait, Dana!", "r1")
    wait_until(browser, lambda: settled(browser, "Sorry for the wait, Dana!"), "the reply")
    assert visible_text(browser, "busy-line") == ""


def test_a_busy_push_for_another_conversation_is_ignored(make_backend: Any, browser: Any) -> None:
    live: LiveBackend = make_backend()
    agent = AgentClient(live.ws_url, add_agent(live))
    open_widget(browser, live)
    start_chat(browser, "Dana Smith", "Hello")
    cid = agent.notification(lambda n: n["kind"] == "chat.conversation.created")["conversation_id"]
    push_to_visitor(
        live, cid, {"type": "team_status", "conversation_id": "c_someone_else", "busy": True}
    )
    push_to_visitor(live, cid, {"type": "status", "conversation_id": cid, "status": "open"})
    # The status push is handled after the ignored one: the page has seen both.
    wait_until(
        browser,
        lambda: (
            browser.execute_script("return document.getElementById('composer').hidden") is False
        ),
        "the status push",
    )
    assert visible_text(browser, "busy-line") == ""


def test_a_visitor_who_starts_while_nobody_is_online_sees_the_line_at_once(
    make_backend: Any, browser: Any
) -> None:
    live: LiveBackend = make_backend()
    token = add_agent(live)  # the inbox has an agent, who is not signed in
    open_widget(browser, live)
    start_chat(browser, "Dana Smith", "Is anyone there?")
    wait_until(browser, lambda: visible_text(browser, "busy-line") == BUSY, "the busy line")
    assert browser.find_element(By.ID, "composer").is_displayed()

    agent = AgentClient(live.ws_url, token)  # she signs in, sees the chat, answers
    cid = agent.request({"type": "history", "limit": 1})["items"][0]["conversation_id"]
    agent.request({"type": "conversation", "conversation_id": cid})
    agent.reply(cid, "Here now, Dana!", "r1")
    wait_until(browser, lambda: settled(browser, "Here now, Dana!"), "the reply")
    assert visible_text(browser, "busy-line") == ""
