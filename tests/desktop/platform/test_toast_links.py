"""Toast clicks after a restart: the Windows toast opens the conversation's link by
protocol activation; a toast's identifier carries its conversation for macOS, which
hands a click to a relaunched app with nothing but that identifier."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.cli import parse_args
from desktop_agent.platform.toast_links import (
    MAX_TAG_LENGTH,
    WINDOWS_BUTTON_PREFIX,
    conversation_link,
    conversation_of,
    toast_identifier,
    windows_toast_xml,
)
from desktop_agent.platform.toasts import DesktopNotifierToaster

CONVERSATION = "c_01M97VK45NK3WN4QEJZN36RFGM"

link_ids = st.from_regex(r"[A-Za-z0-9_.~-]{1,200}", fullmatch=True)


@given(link_ids)
def test_identifier_carries_the_conversation_when_it_fits_windows_tags(
    conversation_id: str,
) -> None:
    identifier = toast_identifier(conversation_id)
    assert len(identifier) <= MAX_TAG_LENGTH
    assert conversation_of(identifier) in (conversation_id, None)
    if len(conversation_id) <= MAX_TAG_LENGTH - 33:
        assert conversation_of(identifier) == conversation_id


def test_identifiers_differ_and_need_no_conversation() -> None:
    assert toast_identifier(CONVERSATION) != toast_identifier(CONVERSATION)
    assert conversation_of(toast_identifier(None)) is None
    assert conversation_of("not-one-of-ours") is None


def _toast(conversation_id: str | None, **kwargs: Any) -> ET.Element:
    return ET.fromstring(
        windows_toast_xml(
            title=kwargs.pop("title", "Dana Smith · Support"),
            message=kwargs.pop("message", "Where is my parcel?"),
            conversation_id=conversation_id,
            buttons=kwargs.pop("buttons", [("Open", "open"), ("Mark read", "mark_read")]),
            **kwargs,
        )
    )


def test_windows_toast_body_opens_the_link_even_when_deskbell_is_closed() -> None:
    toast = _toast(CONVERSATION)
    assert toast.get("activationType") == "protocol"
    launch = toast.get("launch", "")
    assert launch == conversation_link(CONVERSATION)
    # What the MSI's deskbell:// command line ("deskbellw.exe" "%1") then does:
    assert parse_args([launch]).conversation_id == CONVERSATION


def test_windows_toast_buttons_open_by_link_or_reach_the_running_app() -> None:
    open_button, mark_read = _toast(CONVERSATION).iterfind("actions/action")
    assert open_button.attrib == {
        "content": "Open",
        "activationType": "protocol",
        "arguments": conversation_link(CONVERSATION),
    }
    assert mark_read.attrib == {
        "content": "Mark read",
        "activationType": "background",
        "arguments": WINDOWS_BUTTON_PREFIX + "mark_read",
    }


def test_windows_toast_without_a_conversation_is_an_ordinary_toast() -> None:
    toast = _toast(None, buttons=[("Open", "open")])
    assert toast.get("launch") == "default"
    assert toast.get("activationType") is None
    (button,) = toast.iterfind("actions/action")
    assert button.get("activationType") == "background"


def test_windows_toast_shows_visitor_text_literally_and_is_silent_unless_asked() -> None:
    toast = _toast(CONVERSATION, message="<b>hi</b> & <script>x</script>")
    texts = [node.text for node in toast.iterfind("visual/binding/text")]
    assert texts == ["Dana Smith · Support", "<b>hi</b> & <script>x</script>"]
    assert toast.find("visual/binding/text/b") is None
    assert toast.find("audio").attrib == {"silent": "true"}  # type: ignore[union-attr]
    loud = _toast(CONVERSATION, sound=True)
    assert loud.find("audio").attrib == {"src": "ms-winsoundevent:Notification.Default"}  # type: ignore[union-attr]


class FakeNotifier:
    """Stands in for desktop_notifier.DesktopNotifier where only its handlers matter."""

    on_clicked: Any = None


def test_a_click_on_a_toast_from_before_a_restart_opens_its_conversation() -> None:
    clicks: list[tuple[str, str | None]] = []
    notifier = FakeNotifier()
    DesktopNotifierToaster(
        lambda key, conversation: clicks.append((key, conversation)),
        lambda key, conversation: None,
        notifier=notifier,
        server_query=None,
    )
    # The OS relaunched Deskbell and hands it the identifier of a toast an earlier run showed.
    notifier.on_clicked(toast_identifier(CONVERSATION))
    notifier.on_clicked(toast_identifier(None))
    assert clicks == [("", CONVERSATION), ("", None)]
