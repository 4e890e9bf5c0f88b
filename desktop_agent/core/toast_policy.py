"""ToastPolicy: which notifications become toasts, and how they are grouped.

Pure decisions, no Qt and no clock: every call takes ``now``. The rules, in order:

1. Only unread notifications of the chosen categories (chat by default) toast.
2. Nothing toasts during do-not-disturb, for the conversation the agent has open and
   focused, or for what the agent did themselves.
3. A burst in one conversation is one toast, updated in place ("3 new messages from Dana").
4. More than ``rate_limit`` new toasts within ``rate_window`` turn into one summary
   toast, updated while the flood lasts.
5. After a reconnect, what arrived while away is one summary toast, not a flood.
6. Escalations (``chat.conversation.waiting``) are urgent: they replace the
   conversation's toast, are never folded into a summary, and toast even for a muted
   inbox (IT's escalation policy addressed them to this agent); muted inboxes toast
   nothing else.

Toast text is plain text; the toaster escapes it for notification servers that read markup.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backend.protocol import (
    KIND_CONVERSATION_ASSIGNED,
    KIND_CONVERSATION_CREATED,
    KIND_CONVERSATION_WAITING,
    KIND_MESSAGE_CREATED,
    Notification,
)
from desktop_agent.core.display_text import shorten
from desktop_agent.core.dnd import DoNotDisturb

PREVIEW_CHARS = 160
TITLE_NAME_CHARS = 48
"""A toast title's visitor name is cut to this many characters."""
TITLE_INBOX_CHARS = 32
SUMMARY_KEY = "summary"
RESUME_KEY = "resume"
MAX_NAMES = 3


@dataclass(frozen=True)
class ShowToast:
    """Show (or, with ``replaces``, update in place) the toast of one conversation or item.

    Attributes:
        key: stable per conversation (``conversation:<id>``) or per notification.
        title: visitor name and inbox ("Dana Smith · Support"), or the notification's title.
        body: plain-text preview.
        conversation_id: what a click opens, if anything.
        replaces: the key of the toast this one updates, or None for a new toast.
        notification_ids: the notifications this toast stands for (for ``seen``).
        urgent: an escalation: shown as critical, with a sound.
        inbox: the inbox's name, when known (per-inbox sound).
        kind: the kind of the newest notification behind it.
    """

    key: str
    title: str
    body: str
    conversation_id: str | None
    replaces: str | None = None
    notification_ids: tuple[str, ...] = ()
    urgent: bool = False
    inbox: str | None = None
    kind: str = ""


@dataclass(frozen=True)
class SummaryToast:
    """One toast standing for many notifications; a click opens the notification window.

    Attributes:
        key: ``summary`` (rate cap) or ``resume`` (what arrived while away).
        replaces: the key of the summary toast this one updates, or None.
    """

    key: str
    title: str
    body: str
    replaces: str | None = None
    notification_ids: tuple[str, ...] = ()


ToastDecision = ShowToast | SummaryToast


@dataclass
class _Burst:
    count: int
    last_at: datetime
    ids: list[str] = field(default_factory=list)


@dataclass
class _Summary:
    count: int
    last_at: datetime
    names: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


class ToastPolicy:
    """Turns notifications into toast decisions.

    Args:
        categories: notification categories that toast.
        dnd: the do-not-disturb state (shared with the tray, which changes it).
        self_agent_id: the signed-in agent; notifications whose ``data`` names them as the
            actor do not toast.
        rate_limit, rate_window: at most this many new toasts in this window; past it,
            a summary.
        burst_window: messages of one conversation this close together update one toast.
        own_action_window: how long after the agent's own action in a conversation an
            echo of it (e.g. "assigned to you") is held back.
    """

    def __init__(
        self,
        *,
        categories: Iterable[str] = ("chat",),
        dnd: DoNotDisturb | None = None,
        self_agent_id: str | None = None,
        rate_limit: int = 5,
        rate_window: timedelta = timedelta(seconds=10),
        burst_window: timedelta = timedelta(minutes=2),
        own_action_window: timedelta = timedelta(seconds=30),
    ) -> None:
        self.categories = frozenset(categories)
        self.dnd = dnd if dnd is not None else DoNotDisturb()
        self.self_agent_id = self_agent_id
        self._rate_limit = rate_limit
        self._rate_window = rate_window
        self._burst_window = burst_window
        self._own_action_window = own_action_window
        self._focused: str | None = None
        self._bursts: dict[str, _Burst] = {}
        self._on_screen: set[str] = set()
        self._shown_at: deque[datetime] = deque()
        self._summary: _Summary | None = None
        self._own_actions: dict[str, datetime] = {}
        self.muted_inboxes: frozenset[str] = frozenset()
        """Inbox names whose notifications do not toast (escalations still do)."""

    # ------------------------------------------------------------------ inputs

    def set_focused_conversation(self, conversation_id: str | None) -> None:
        """The conversation window now open and focused (None: none is)."""
        self._focused = conversation_id
        if conversation_id is not None:
            self._bursts.pop(conversation_id, None)

    def note_own_action(self, conversation_id: str, now: datetime) -> None:
        """The agent just acted on a conversation (e.g. "Assign to me")."""
        self._own_actions[conversation_id] = now

    def conversation_read(self, conversation_id: str) -> None:
        """The conversation's notifications were read: its next message starts a new toast."""
        self._bursts.pop(conversation_id, None)

    def toast_closed(self, key: str) -> None:
        """The toast with ``key`` was dismissed or withdrawn: the next one is new, not an update."""
        self._on_screen.discard(key)
        if key.startswith("conversation:"):
            self._bursts.pop(key.removeprefix("conversation:"), None)
        if key == SUMMARY_KEY:
            self._summary = None

    # --------------------------------------------------------------- decisions

    def wants_toast(self, notification: Notification, now: datetime) -> bool:
        """True when ``notification`` may toast at all (rules 1 and 2)."""
        if notification.read or notification.category not in self.categories:
            return False
        if self.dnd.active(now):
            return False
        urgent = notification.kind == KIND_CONVERSATION_WAITING
        if not urgent and _inbox_name(notification.data) in self.muted_inboxes:
            return False
        conversation_id = notification.conversation_id
        if conversation_id is not None and conversation_id == self._focused:
            return False
        return not self._caused_by_agent(notification, now)

    def on_notification(self, notification: Notification, now: datetime) -> ToastDecision | None:
        """Decide on one live notification; None means no toast."""
        if not self.wants_toast(notification, now):
            return None
        conversation_id = notification.conversation_id
        if conversation_id is not None and notification.kind == KIND_CONVERSATION_WAITING:
            return self._escalation_toast(notification, now)
        if conversation_id is not None:
            burst = self._bursts.get(conversation_id)
            if burst is not None and now - burst.last_at <= self._burst_window:
                burst.count += 1
                burst.last_at = now
                burst.ids.append(notification.id)
                return self._conversation_toast(notification, burst.count, burst.ids)
        if self._summarizing(now):
            return self._add_to_summary(notification, now)
        self._shown_at.append(now)
        if conversation_id is not None:
            self._bursts[conversation_id] = _Burst(count=1, last_at=now, ids=[notification.id])
            return self._conversation_toast(notification, 1, [notification.id])
        key = f"notification:{notification.id}"
        return self._show(
            key, notification.title, _preview(notification.body), None, ids=(notification.id,)
        )

    def on_resumed(
        self,
        notifications: list[Notification],
        now: datetime,
        *,
        after_gap: bool = False,
        truncated: bool = False,
    ) -> ToastDecision | None:
        """Decide on what a resume brought: one summary toast, or nothing.

        A resume that repaired a gap in the live stream and brought a single notification
        is treated as that live notification.
        """
        wanted = [n for n in notifications if self.wants_toast(n, now)]
        if not wanted:
            return None
        if after_gap and not truncated and len(wanted) == 1:
            return self.on_notification(wanted[0], now)
        self._shown_at.append(now)
        count = len(wanted)
        people = _names(wanted)
        noun = "message" if all(n.category == "chat" for n in wanted) else "notification"
        plural = "s" if count > 1 else ""
        more = "+" if truncated else ""
        title = f"{count}{more} new {noun}{plural} while you were away"
        body = f"From {people}. Open Deskbell to read them."
        replaces = RESUME_KEY if RESUME_KEY in self._on_screen else None
        self._on_screen.add(RESUME_KEY)
        return SummaryToast(RESUME_KEY, title, body, replaces, tuple(n.id for n in wanted))

    # ----------------------------------------------------------------- helpers

    def _caused_by_agent(self, notification: Notification, now: datetime) -> bool:
        actor = _actor_id(notification.data)
        if actor is not None and actor == self.self_agent_id:
            return True
        conversation_id = notification.conversation_id
        acted_at = self._own_actions.get(conversation_id) if conversation_id else None
        return (
            acted_at is not None
            and now - acted_at <= self._own_action_window
            and notification.kind == KIND_CONVERSATION_ASSIGNED
        )

    def _summarizing(self, now: datetime) -> bool:
        summary = self._summary
        if summary is not None and now - summary.last_at <= self._rate_window:
            return True
        self._summary = None
        while self._shown_at and now - self._shown_at[0] > self._rate_window:
            self._shown_at.popleft()
        return len(self._shown_at) >= self._rate_limit

    def _add_to_summary(self, notification: Notification, now: datetime) -> SummaryToast:
        summary = self._summary
        if summary is None:
            summary = self._summary = _Summary(count=0, last_at=now)
        summary.count += 1
        summary.last_at = now
        summary.ids.append(notification.id)
        name = _visitor_name(notification)
        if name not in summary.names:
            summary.names.append(name)
        count = summary.count
        title = f"{count} more new notification{'s' if count > 1 else ''}"
        body = f"From {_join_names(summary.names)}. Open Deskbell to see them all."
        replaces = SUMMARY_KEY if SUMMARY_KEY in self._on_screen else None
        self._on_screen.add(SUMMARY_KEY)
        return SummaryToast(SUMMARY_KEY, title, body, replaces, tuple(summary.ids))

    def _escalation_toast(self, notification: Notification, now: datetime) -> ShowToast:
        """An escalation: urgent, in place of the conversation's toast, never summarized.

        It ends the conversation's burst: the next message is news again, not "4 new".
        """
        assert notification.conversation_id is not None
        self._bursts.pop(notification.conversation_id, None)
        waited = notification.data.get("waited_s")
        minutes = waited // 60 if isinstance(waited, int) and not isinstance(waited, bool) else 0
        visitor = shorten(_visitor_name(notification), TITLE_NAME_CHARS)
        inbox = _inbox_name(notification.data)
        title = (
            f"Still waiting ({minutes} min): {visitor}" if minutes else f"Still waiting: {visitor}"
        )
        if inbox:
            title += f" · {shorten(inbox, TITLE_INBOX_CHARS)}"
        body = _preview(notification.body) or "Nobody has answered this visitor yet."
        return self._show(
            f"conversation:{notification.conversation_id}",
            title,
            body,
            notification.conversation_id,
            ids=(notification.id,),
            urgent=True,
            inbox=inbox,
            kind=notification.kind,
        )

    def _conversation_toast(
        self, notification: Notification, count: int, ids: list[str]
    ) -> ShowToast:
        assert notification.conversation_id is not None
        visitor = _visitor_name(notification)
        inbox = _inbox_name(notification.data)
        # The notification server draws the title on one line it does not always elide:
        # a 120-character name must not push the inbox (or the toast) off the screen.
        title = shorten(visitor, TITLE_NAME_CHARS)
        if inbox:
            title += f" · {shorten(inbox, TITLE_INBOX_CHARS)}"
        preview = _preview(notification.body)
        body = preview
        if count > 1:
            body = f"{count} new messages from {visitor}. Latest: {preview}"
        key = f"conversation:{notification.conversation_id}"
        return self._show(
            key,
            title,
            body,
            notification.conversation_id,
            ids=tuple(ids),
            inbox=inbox,
            kind=notification.kind,
        )

    def _show(
        self,
        key: str,
        title: str,
        body: str,
        conversation_id: str | None,
        *,
        ids: tuple[str, ...] = (),
        urgent: bool = False,
        inbox: str | None = None,
        kind: str = "",
    ) -> ShowToast:
        replaces = key if key in self._on_screen else None
        self._on_screen.add(key)
        return ShowToast(key, title, body, conversation_id, replaces, ids, urgent, inbox, kind)


CLAIMABLE_KINDS = frozenset(
    {KIND_CONVERSATION_CREATED, KIND_MESSAGE_CREATED, KIND_CONVERSATION_WAITING}
)
"""Kinds whose toast offers Accept while the conversation has no assignee."""


def offers_accept(kind: str, assigned: bool) -> bool:
    """Whether a conversation toast of ``kind`` shows an Accept button.

    ``assigned``: the conversation has an assignee (as the waiting queue last said).
    """
    return kind in CLAIMABLE_KINDS and not assigned


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= PREVIEW_CHARS:
        return flat
    return flat[: PREVIEW_CHARS - 1].rstrip() + "…"


def _visitor_name(notification: Notification) -> str:
    data = notification.data
    for candidate in (data.get("visitor_name"), _name_of(data.get("visitor"))):
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())
    return " ".join(notification.title.split()) or "Someone"


def _inbox_name(data: dict[str, Any]) -> str | None:
    for candidate in (data.get("inbox_name"), _name_of(data.get("inbox")), data.get("inbox")):
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())
    return None


def _name_of(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else None


def _actor_id(data: dict[str, Any]) -> str | None:
    actor = data.get("actor_id")
    if actor is None and isinstance(data.get("actor"), dict):
        actor = data["actor"].get("id")
    return actor if isinstance(actor, str) else None


def _names(notifications: list[Notification]) -> str:
    counts: dict[str, int] = {}
    for n in notifications:
        name = shorten(_visitor_name(n), TITLE_NAME_CHARS)
        counts[name] = counts.get(name, 0) + 1
    labelled = [f"{name} ({count})" if count > 1 else name for name, count in counts.items()]
    return _join_names(labelled)


def _join_names(names: list[str]) -> str:
    if len(names) <= MAX_NAMES:
        if len(names) == 1:
            return names[0]
        return ", ".join(names[:-1]) + " and " + names[-1]
    rest = len(names) - MAX_NAMES
    return ", ".join(names[:MAX_NAMES]) + f" and {rest} other{'s' if rest > 1 else ''}"
