"""Toast clicks that still work after Deskbell was closed or restarted.

A toast's click normally reaches the process that showed it, through a callback held in
memory. When that process is gone, the OS has to start Deskbell and tell it what was
clicked:

- Windows starts the program registered for a URL: the toast's ``launch`` is the
  conversation's ``deskbell://conversation/<id>`` link with ``activationType="protocol"``,
  and the MSI registers the ``deskbell`` scheme (``HKLM\\SOFTWARE\\Classes\\deskbell``), so
  a click starts ``deskbellw.exe deskbell://conversation/<id>`` (or hands the link to the
  running one). :func:`windows_toast_xml` builds that toast; it is pure, so it is tested
  on any OS.
- macOS starts the app bundle and hands the click to the notification delegate with
  the toast's identifier; :func:`toast_identifier` carries the conversation id in it,
  so :func:`conversation_of` finds it again in the new process.

Windows limits a toast's tag (the identifier) to 64 characters, which the identifier
respects: a longer conversation id is left out (the click then opens the notification
list rather than the conversation).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final
from xml.etree.ElementTree import Element, SubElement, tostring

from desktop_agent.cli import LINK_SCHEME, conversation_from_link

MAX_TAG_LENGTH: Final = 64
"""Windows refuses a longer ToastNotification.Tag."""
_SEPARATOR: Final = "~"
"""Between the random part (hex, so never holding it) and the conversation id."""

WINDOWS_BUTTON_PREFIX: Final = "action=button&amp;id="
"""How desktop-notifier's Windows backend marks a button in a toast's arguments; the
backend maps it back to the button's callback (see windows_toasts.py, which checks it)."""


def conversation_link(conversation_id: str) -> str:
    """The ``deskbell://conversation/<id>`` link of a conversation."""
    return f"{LINK_SCHEME}://conversation/{conversation_id}"


def toast_identifier(conversation_id: str | None) -> str:
    """A fresh toast identifier that carries ``conversation_id`` when it fits."""
    random_part = uuid.uuid4().hex
    if conversation_id:
        candidate = f"{random_part}{_SEPARATOR}{conversation_id}"
        if len(candidate) <= MAX_TAG_LENGTH and _is_link_id(conversation_id):
            return candidate
    return random_part


def conversation_of(identifier: str) -> str | None:
    """The conversation id carried by a :func:`toast_identifier`, else None."""
    _random, separator, conversation_id = identifier.partition(_SEPARATOR)
    if not separator or not _is_link_id(conversation_id):
        return None
    return conversation_id


def _is_link_id(conversation_id: str) -> bool:
    try:
        return conversation_from_link(conversation_link(conversation_id)) == conversation_id
    except ValueError:
        return False


def windows_toast_xml(
    *,
    title: str,
    message: str,
    conversation_id: str | None,
    buttons: Sequence[tuple[str, str]] = (),
    sound: bool = False,
) -> str:
    """The toast XML for Windows: a body click (and an "open" button) open the
    conversation's link by protocol activation, which works whether or not Deskbell
    still runs; other buttons (``(label, identifier)``) go to the running app.

    Without a conversation the body click is an ordinary foreground activation.
    """
    toast = Element("toast")
    link = conversation_link(conversation_id) if conversation_id else None
    if link is not None:
        toast.set("launch", link)
        toast.set("activationType", "protocol")
    else:
        toast.set("launch", "default")
    visual = SubElement(toast, "visual")
    binding = SubElement(visual, "binding", {"template": "ToastGeneric"})
    # Plain text: ElementTree escapes <, > and &, and Windows shows text nodes literally.
    SubElement(binding, "text").text = title
    SubElement(binding, "text").text = message
    actions = SubElement(toast, "actions")
    for label, identifier in buttons:
        if identifier == "open" and link is not None:
            attributes = {"content": label, "activationType": "protocol", "arguments": link}
        else:
            attributes = {
                "content": label,
                "activationType": "background",
                "arguments": WINDOWS_BUTTON_PREFIX + identifier,
            }
        SubElement(actions, "action", attributes)
    audio = {"src": "ms-winsoundevent:Notification.Default"} if sound else {"silent": "true"}
    SubElement(toast, "audio", audio)
    return tostring(toast, encoding="unicode")
