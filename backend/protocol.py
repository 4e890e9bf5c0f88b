"""The Deskbell wire protocol, v1: every frame of every channel, in one place.

This module is the backend's published contract (docs/protocol.md says it in words).
It does no I/O and knows nothing of the server: it imports only the standard library
and msgspec, so the desktop app and third-party tools can import it on its own.

Decoding never raises anything but :class:`ProtocolError`, whose ``code`` is one of
:data:`ERROR_CODES` and whose ``request_id`` is the frame's ``id`` when one could be
read, so a server can always answer a bad frame with an ``error`` frame.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

SUBPROTOCOL: Final = "deskbell.v1"
DEFAULT_PORT: Final = 8765
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_BODY_CHARS: Final = 8000
"""Longest message text a visitor or agent may send (characters)."""
MAX_NAME_CHARS: Final = 120
RESUME_DEFAULT_LIMIT: Final = 500
RESUME_MAX_LIMIT: Final = 1000
HISTORY_MAX_LIMIT: Final = 200
MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer any field takes: every JSON client (JavaScript's included) holds it
exactly, and every store column (64-bit) has room for it."""
MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of arrays and objects a frame may have."""

AGENT_TOKEN_PREFIX: Final = "dbat_"  # noqa: S105 - a prefix, not a token
SERVICE_TOKEN_PREFIX: Final = "dbst_"  # noqa: S105 - a prefix, not a token
VISITOR_TOKEN_PREFIX: Final = "dbvt_"  # noqa: S105 - a prefix, not a token

CLIENT_VERSION_HEADER: Final = "Deskbell-Client-Version"
"""Handshake header on /agent: the tray app's version (``0.1.0``)."""
CLIENT_OS_HEADER: Final = "Deskbell-Client-OS"
"""Handshake header on /agent: the tray app's operating system (``Linux 6.1.0 x86_64``)."""
MAX_CLIENT_HEADER_CHARS: Final = 100
"""Longer version or OS header values are cut to this length by the server."""

CLOSE_GOING_AWAY: Final = 1001
CLOSE_TOO_LARGE: Final = 1009
CLOSE_TRY_AGAIN_LATER: Final = 1013
"""Sent to a client whose send buffer overflowed: it should reconnect and resume."""
CLOSE_TOKEN_REVOKED: Final = 4001

ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "too_large",
    "unavailable",
    "internal",
]
ERROR_CODES: Final[frozenset[str]] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]

SafeInt = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
RequestId = str | SafeInt
PresenceStatus = Literal["online", "away", "dnd"]
ConversationStatus = Literal["open", "resolved"]
AuthorKind = Literal["visitor", "agent", "system"]

NonNegative = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER)]
"""A seq, a count: every integer field of every frame is bounded (see MAX_SAFE_INTEGER)."""
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

# ------------------------------------------------------------------ untrusted text
# Visitor text reaches toasts, terminals and logs. Removed from it (docs/protocol.md,
# "Untrusted text"): C0 and C1 controls (terminal escapes, NUL) except tab and line
# breaks in message text; the bidi embeddings, overrides and isolates U+202A-U+202E and
# U+2066-U+2069, which reorder what follows them (a name that reads backwards, a fake
# file extension); zero-width characters that have no use in running text (U+200B,
# U+2060-U+2064, U+FEFF) and interlinear annotations (U+FFF9-U+FFFB). Kept: ZWJ and ZWNJ
# (emoji sequences, Persian and Indic scripts) and the marks LRM/RLM/ALM, which cannot
# reorder text. Every line break (CR LF, CR, NEL, U+2028, U+2029) becomes LF.
_LINE_BREAKS = ("\r\n", "\r", "\x85", "\u2028", "\u2029")
_REMOVED = (
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
    + [0x200B, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB]
)
_REMOVED_TABLE: Final = dict.fromkeys(_REMOVED)
_UNSAFE = re.compile("[" + "".join(f"\\u{c:04x}" for c in _REMOVED) + "\\u2028\\u2029]")


def clean_text(text: str, *, single_line: bool) -> str:
    """``text`` without the characters listed above, safe to show anywhere as plain text.

    Args:
        single_line: for names and titles: every run of whitespace (tabs and line breaks
            included) becomes one space, and the ends are trimmed. Otherwise (message
            bodies) tabs and line breaks are kept, every line break as LF.
    """
    if _UNSAFE.search(text) is not None:
        for line_break in _LINE_BREAKS:
            text = text.replace(line_break, "\n")
        text = text.translate(_REMOVED_TABLE)
    if single_line:
        return " ".join(text.split())
    return text


def _visible(value: str, what: str, *, single_line: bool) -> str:
    """``value`` cleaned; ValueError (a ``bad_request``) when nothing visible is left."""
    cleaned = clean_text(value, single_line=single_line)
    if not cleaned.strip():
        raise ValueError(f"{what} must contain visible text")
    return cleaned


# Kinds the backend itself makes.
KIND_CONVERSATION_CREATED: Final = "chat.conversation.created"
KIND_MESSAGE_CREATED: Final = "chat.message.created"
KIND_CONVERSATION_ASSIGNED: Final = "chat.conversation.assigned"
KIND_CONVERSATION_WAITING: Final = "chat.conversation.waiting"
"""v1.1: an escalation step fired (see :class:`WaitingData`)."""
BACKEND_ONLY_KINDS: Final = frozenset({KIND_CONVERSATION_ASSIGNED, KIND_CONVERSATION_WAITING})
"""Kinds only the backend makes: an integration cannot publish them."""
KIND_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
Kind = Annotated[str, msgspec.Meta(pattern=KIND_PATTERN, max_length=100)]


def category_of(kind: str) -> str:
    """Return the category of a notification kind: the part before the first dot."""
    return kind.split(".", 1)[0]


class ProtocolError(Exception):
    """A frame that cannot be accepted; answer it with an ``error`` frame.

    Attributes:
        code: one of :data:`ERROR_CODES`.
        message: what was wrong, written for a person.
        request_id: the frame's ``id`` when it could be read, else None.
    """

    def __init__(self, code: ErrorCode, message: str, request_id: RequestId | None = None):
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.request_id = request_id


class _Frame(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of every frame: a JSON object with a string field ``type``."""


# --------------------------------------------------------------------------- objects


class AgentRef(msgspec.Struct):
    id: str
    name: str


class AgentInfo(msgspec.Struct):
    id: str
    name: str
    email: str


class InboxRef(msgspec.Struct):
    id: str
    name: str


class Author(msgspec.Struct):
    kind: AuthorKind
    id: str | None
    name: str


class Message(msgspec.Struct):
    id: str
    author: Author
    body: str
    created_at: str


class Visitor(msgspec.Struct):
    name: str


class Conversation(msgspec.Struct):
    id: str
    inbox: InboxRef
    status: ConversationStatus
    assignee: AgentRef | None
    visitor: Visitor
    messages: list[Message]
    waiting_since: str | None = None
    """v1.1: when the visitor message that no agent reply has followed was sent, else null."""


# ------------------------------------------------------------- v1.1: waiting visitors

EscalationTarget = Annotated[
    str, msgspec.Meta(pattern=r"^(inbox|inbox:.+|[^\s@]+@[^\s@]+)$", max_length=254)
]
"""``inbox`` (the assignee, else the conversation's inbox), ``inbox:<name>``, an email."""
DEFAULT_UNSEEN_AFTER_S: Final = 30
MAX_STEP_SECONDS: Final = 365 * 24 * 3600
"""Longest wait a step (or unseen_after_s) may name: a year."""
SeenHow = Literal["shown", "clicked"]
WithdrawReason = Literal["claimed", "assigned"]


class EscalationStep(msgspec.Struct):
    after_s: Annotated[int, msgspec.Meta(ge=1, le=MAX_STEP_SECONDS)]
    to: EscalationTarget = "inbox"


class InboxPolicy(msgspec.Struct):
    """An inbox's escalation policy, as ``deskbell-server inbox policy`` prints it."""

    inbox: str
    escalate: list[EscalationStep]
    unseen_after_s: Annotated[int, msgspec.Meta(ge=1, le=MAX_STEP_SECONDS)] = DEFAULT_UNSEEN_AFTER_S


class WaitingData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The ``data`` of a ``chat.conversation.waiting`` notification."""

    waiting_since: str
    step: Annotated[int, msgspec.Meta(ge=1)]
    waited_s: NonNegative
    early: bool = False


class QueueEntry(msgspec.Struct):
    """A conversation as the queue shows it (``queue`` and ``queue_changed``)."""

    id: str
    inbox: InboxRef
    visitor: Visitor
    assignee: AgentRef | None
    waiting_since: str | None
    last_message: Message | None


class Notification(msgspec.Struct):
    """One notification of one agent. ``title`` and ``body`` are plain text."""

    id: str
    seq: NonNegative
    kind: str
    category: str
    title: str
    body: str
    conversation_id: str | None
    url: str | None
    created_at: str
    read: bool
    data: dict[str, Any] = {}


class ServerInfo(msgspec.Struct):
    version: str
    node: str


Unread = dict[str, NonNegative]
"""Unread counts by category; ``total`` and ``chat`` are always present."""


def unread_object(by_category: dict[str, int]) -> Unread:
    """Build the wire form of unread counts: total, chat, and every category above 0."""
    out: Unread = {"total": 0, "chat": 0}
    total = 0
    for category, count in by_category.items():
        if count > 0:
            out[category] = count
            total += count
    out["total"] = total
    return out


# --------------------------------------------------------------- agent channel: client


class Resume(_Frame, tag="resume"):
    id: RequestId
    after_seq: NonNegative
    limit: Annotated[int, msgspec.Meta(ge=1, le=RESUME_MAX_LIMIT)] = RESUME_DEFAULT_LIMIT


class History(_Frame, tag="history"):
    id: RequestId
    before_seq: NonNegative | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=HISTORY_MAX_LIMIT)] = 50
    category: str | None = None
    unread_only: bool = False


class MarkRead(_Frame, tag="mark_read"):
    """Either ``ids`` or ``conversation_id``, not both."""

    id: RequestId
    ids: Annotated[list[str], msgspec.Meta(max_length=1000)] | None = None
    conversation_id: str | None = None

    def __post_init__(self) -> None:
        if (self.ids is None) == (self.conversation_id is None):
            raise ValueError("give either `ids` or `conversation_id`")


class MarkAllRead(_Frame, tag="mark_all_read"):
    id: RequestId
    category: str | None = None


class GetConversation(_Frame, tag="conversation"):
    id: RequestId
    conversation_id: str


class Reply(_Frame, tag="reply"):
    id: RequestId
    conversation_id: str
    body: Body
    client_msg_id: ShortText

    def __post_init__(self) -> None:
        self.body = _visible(self.body, "the message", single_line=False)


class Assign(_Frame, tag="assign"):
    id: RequestId
    conversation_id: str
    agent_id: str


class Presence(_Frame, tag="presence"):
    status: PresenceStatus
    id: RequestId | None = None


class Queue(_Frame, tag="queue"):
    """v1.1: the waiting conversations of my inboxes; then ``queue_changed`` pushes."""

    id: RequestId


class Claim(_Frame, tag="claim"):
    """v1.1: assign the conversation to me unless another agent has it."""

    id: RequestId
    conversation_id: str


class Resolve(_Frame, tag="resolve"):
    """v1.1: the conversation is done; its wait ends."""

    id: RequestId
    conversation_id: str


class Seen(_Frame, tag="seen"):
    """v1.1: the desktop showed (or the agent clicked) these notifications. No reply."""

    ids: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=1000)
    ]
    how: SeenHow
    id: RequestId | None = None


AgentRequest = (
    Resume
    | History
    | MarkRead
    | MarkAllRead
    | GetConversation
    | Reply
    | Assign
    | Presence
    | Queue
    | Claim
    | Resolve
    | Seen
)

# ------------------------------------------------------------------------ sign-in


class Login(_Frame, tag="login"):
    id: RequestId
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    device: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Logout(_Frame, tag="logout"):
    id: RequestId
    token: str


class SignInOptions(_Frame, tag="sign_in_options"):
    """Ask how this server lets agents sign in (before showing the sign-in window)."""

    id: RequestId


class SsoLogin(_Frame, tag="sso_login"):
    """Exchange an ID token from the server's OpenID provider for an agent token.

    ``nonce`` is the secret whose SHA-256 (base64url, no padding) the client put in
    the authorization request as ``nonce``: only the client that started the sign-in
    knows it, so an ID token alone cannot be exchanged by whoever intercepted it.
    """

    id: RequestId
    id_token: Annotated[str, msgspec.Meta(min_length=1, max_length=16_000)]
    nonce: Annotated[str, msgspec.Meta(min_length=16, max_length=200)]
    device: Annotated[str, msgspec.Meta(max_length=200)] | None = None


AuthRequest = Login | Logout | SignInOptions | SsoLogin

# ---------------------------------------------------------------- service channel


class Publish(_Frame, tag="publish"):
    """``event`` is checked by :func:`decode_event` once the envelope is read."""

    id: RequestId
    event: dict[str, Any]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


ServiceRequest = Publish


class ExternalConversationNew(msgspec.Struct):
    external_id: ShortText
    visitor_name: Name

    def __post_init__(self) -> None:
        self.visitor_name = _visible(self.visitor_name, "the visitor's name", single_line=True)


class ExternalConversationRef(msgspec.Struct):
    external_id: ShortText


class VisitorAuthor(msgspec.Struct):
    kind: Literal["visitor"]
    name: Name

    def __post_init__(self) -> None:
        self.name = _visible(self.name, "the visitor's name", single_line=True)


class ConversationCreatedEvent(msgspec.Struct, tag_field="kind", tag=KIND_CONVERSATION_CREATED):
    inbox: Name
    conversation: ExternalConversationNew
    text: Body

    def __post_init__(self) -> None:
        self.text = _visible(self.text, "the message", single_line=False)


class MessageCreatedEvent(msgspec.Struct, tag_field="kind", tag=KIND_MESSAGE_CREATED):
    conversation: ExternalConversationRef
    author: VisitorAuthor
    text: Body

    def __post_init__(self) -> None:
        self.text = _visible(self.text, "the message", single_line=False)


class GenericEvent(msgspec.Struct, kw_only=True):
    """Any kind outside the chat category, sent to explicit recipients.

    ``recipients`` entries are agent emails, agent ids, or ``inbox:<name>``.
    """

    kind: Kind
    recipients: Annotated[list[ShortText], msgspec.Meta(min_length=1, max_length=10000)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    body: Annotated[str, msgspec.Meta(max_length=MAX_BODY_CHARS)] = ""
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    data: dict[str, Any] = {}

    def __post_init__(self) -> None:
        self.title = _visible(self.title, "the title", single_line=True)
        self.body = clean_text(self.body, single_line=False)


ServiceEvent = ConversationCreatedEvent | MessageCreatedEvent | GenericEvent

# ---------------------------------------------------------------- visitor channel
# Not part of PROTOCOL.md: the widget's own channel, documented in docs/protocol.md.


class VisitorStart(_Frame, tag="start"):
    id: RequestId
    inbox: Name
    name: Name
    text: Body

    def __post_init__(self) -> None:
        self.name = _visible(self.name, "your name", single_line=True)
        self.text = _visible(self.text, "the message", single_line=False)


class VisitorAttach(_Frame, tag="attach"):
    id: RequestId
    token: str


class VisitorSend(_Frame, tag="send"):
    id: RequestId
    text: Body
    client_msg_id: ShortText

    def __post_init__(self) -> None:
        self.text = _visible(self.text, "the message", single_line=False)


VisitorRequest = VisitorStart | VisitorAttach | VisitorSend


class VisitorConversation(msgspec.Struct):
    """What a visitor sees of their conversation: no agent emails, no internals."""

    id: str
    inbox: str
    status: ConversationStatus
    messages: list[Message]
    busy: bool = False
    """v1.1: the visitor waits and no agent who could answer is online (the widget
    shows its honest line, as for ``team_status`` ``busy``)."""


# ---------------------------------------------------------------- server frames


class Welcome(_Frame, tag="welcome"):
    agent: AgentInfo
    last_seq: NonNegative
    unread: Unread
    server: ServerInfo


class Ok(_Frame, tag="ok"):
    """A reply with no result fields beyond ``id``."""

    id: RequestId | None


class ResumeOk(_Frame, tag="ok"):
    id: RequestId
    last_seq: NonNegative
    truncated: bool


class HistoryOk(_Frame, tag="ok"):
    id: RequestId
    items: list[Notification]
    more: bool


class UnreadOk(_Frame, tag="ok"):
    id: RequestId
    unread: Unread


class ConversationOk(_Frame, tag="ok"):
    id: RequestId
    conversation: Conversation


class MessageOk(_Frame, tag="ok"):
    id: RequestId
    message: Message


class LoginOk(_Frame, tag="ok"):
    id: RequestId
    token: str
    agent: AgentInfo


class SsoInfo(msgspec.Struct):
    """How to reach the server's OpenID provider (``sign_in_options``)."""

    issuer: str
    client_id: str
    label: str
    """The button's text: "Sign in with <label>"."""
    scopes: list[str]


class SignInOptionsOk(_Frame, tag="ok"):
    id: RequestId
    password: bool
    sso: SsoInfo | None = None


class QueueOk(_Frame, tag="ok"):
    id: RequestId
    conversations: list[QueueEntry]


class PublishOk(_Frame, tag="ok"):
    id: RequestId
    notifications: NonNegative


class VisitorSessionOk(_Frame, tag="ok"):
    id: RequestId
    token: str
    conversation: VisitorConversation


class Error(_Frame, tag="error"):
    id: RequestId | None
    code: ErrorCode
    message: str


class NotificationPush(_Frame, tag="notification"):
    """A new notification. ``unread`` carries the counts after it (see docs/protocol.md)."""

    notification: Notification
    unread: Unread | None = None


class UnreadPush(_Frame, tag="unread"):
    unread: Unread


class ReadPush(_Frame, tag="read"):
    ids: list[str]


class MessagePush(_Frame, tag="message"):
    conversation_id: str
    message: Message


class ConversationStatusPush(_Frame, tag="status"):
    """Visitor channel: the conversation was resolved or reopened."""

    conversation_id: str
    status: ConversationStatus


class QueueChangedPush(_Frame, tag="queue_changed"):
    """v1.1: a conversation of my inboxes started or stopped waiting, changed assignee,
    or got a visitor message while waiting (``waiting`` false: it left the queue)."""

    conversation: QueueEntry
    waiting: bool


class WithdrawPush(_Frame, tag="withdraw"):
    """v1.1: these notifications are taken care of by ``by``; ``read`` follows."""

    ids: list[str]
    reason: WithdrawReason
    by: AgentRef


class TeamStatusPush(_Frame, tag="team_status"):
    """Visitor channel: whether the team can answer soon (``busy``: the wait escalated
    past the last step of its inbox's policy)."""

    conversation_id: str
    busy: bool


ServerPush = (
    NotificationPush
    | UnreadPush
    | ReadPush
    | MessagePush
    | ConversationStatusPush
    | TeamStatusPush
    | QueueChangedPush
    | WithdrawPush
)
Reply_ = (
    Ok
    | ResumeOk
    | HistoryOk
    | UnreadOk
    | ConversationOk
    | MessageOk
    | LoginOk
    | SignInOptionsOk
    | PublishOk
    | VisitorSessionOk
    | QueueOk
)

# ------------------------------------------------------------------ encode / decode

_encoder = msgspec.json.Encoder()
encode = _encoder.encode
"""Encode any frame or object to UTF-8 JSON bytes."""

T = TypeVar("T")


class _Envelope(msgspec.Struct):
    type: Any = ""
    id: Any = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_object_decoder = msgspec.json.Decoder(dict[str, Any])

# What a nesting check looks at: JSON strings (which may hold any bracket) are dropped,
# then everything that is not a bracket.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted"


def _too_deep(data: bytes | str) -> bool:
    """True when ``data`` nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`.

    A decoder recursing into 30,000 levels would exhaust the interpreter's stack; this
    check runs first, costs two counts for an ordinary frame, and stays linear (C-speed
    passes, at most MAX_JSON_DEPTH of them) for a hostile one.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(MAX_JSON_DEPTH):
        # Each pass removes every innermost pair: one level of nesting.
        reduced = brackets.replace("[]", "").replace("{}", "")
        if reduced == brackets:
            return False  # fully reduced, or brackets that do not match (the decoder says so)
        brackets = reduced
    return "[]" in brackets or "{}" in brackets


def _describe(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError) and (
        "Object missing required field `type`" in text or "at `$.type`" in text
    ):
        return "every frame needs a string field `type`"
    return text.replace("Invalid enum value", "Unknown value")


def _request_id(data: bytes | str) -> RequestId | None:
    """The frame's ``id`` when it is a valid request id, whatever else is wrong."""
    try:
        envelope = _envelope_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return _valid_id(envelope.id)


def _valid_id(value: Any) -> RequestId | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None
    return None


class FrameDecoder:
    """Decodes one channel's client frames into typed requests.

    Args:
        frame_type: the union of frame types the channel accepts.
        channel: the channel's name, used in error messages.
    """

    def __init__(self, frame_type: Any, channel: str):
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(frame_type)
        self._channel = channel
        members = getattr(frame_type, "__args__", (frame_type,))
        self._known = sorted(t.__struct_config__.tag for t in members)

    def decode(self, data: bytes | str) -> Any:
        """Return the typed frame.

        Raises:
            ProtocolError: ``bad_request`` for anything that is not a valid frame of
                this channel, with the reason and the frame's id when it has one.
        """
        if not isinstance(data, str):
            # Binary frames are not part of the protocol, even if they hold JSON.
            raise ProtocolError("bad_request", "binary frames are not accepted; send text JSON")
        if _too_deep(data):
            raise ProtocolError("bad_request", _TOO_DEEP)
        try:
            return self._decoder.decode(data)
        except RecursionError:  # brackets that do not match, nested past the check
            raise ProtocolError("bad_request", _TOO_DEEP) from None
        except msgspec.ValidationError as exc:
            request_id = _request_id(data)
            text = str(exc)
            if "Invalid value" in text and "`$.type`" in text:
                try:
                    frame = _envelope_decoder.decode(data).type
                except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as inner:
                    # msgspec stops at the first problem: the rest may not even be JSON.
                    raise ProtocolError(
                        "bad_request", f"not valid JSON: {inner}", request_id
                    ) from None
                message = (
                    f"unknown frame type {frame!r} on {self._channel}; "
                    f"expected one of {', '.join(self._known)}"
                )
            else:
                message = _describe(exc)
            raise ProtocolError("bad_request", message, request_id) from None
        except msgspec.DecodeError as exc:
            text = str(exc)
            if text.startswith("Input data was truncated") or "JSON is malformed" in text:
                message = f"not valid JSON: {text}"
            else:
                message = f"frame must be a JSON object: {text}"
            raise ProtocolError("bad_request", message, _request_id(data)) from None


agent_decoder = FrameDecoder(AgentRequest, "/agent")
auth_decoder = FrameDecoder(AuthRequest, "/auth")
service_decoder = FrameDecoder(ServiceRequest, "/service")
visitor_decoder = FrameDecoder(VisitorRequest, "/visitor")

_chat_event_types: dict[str, type[msgspec.Struct]] = {
    KIND_CONVERSATION_CREATED: ConversationCreatedEvent,
    KIND_MESSAGE_CREATED: MessageCreatedEvent,
}


def decode_event(event: dict[str, Any], request_id: RequestId | None = None) -> ServiceEvent:
    """Validate a published event (the ``event`` of a ``publish`` frame).

    Raises:
        ProtocolError: ``bad_request`` with the reason.
    """
    kind = event.get("kind")
    if not isinstance(kind, str):
        raise ProtocolError("bad_request", "event needs a string field `kind`", request_id)
    if kind in BACKEND_ONLY_KINDS:
        raise ProtocolError(
            "bad_request", f"{kind} is made by the backend and cannot be published", request_id
        )
    event_type: type[ServiceEvent] = _chat_event_types.get(kind, GenericEvent)  # type: ignore[assignment]
    try:
        result: ServiceEvent = msgspec.convert(event, event_type)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$.", "`event.")
        raise ProtocolError("bad_request", message, request_id) from None
    if isinstance(result, GenericEvent) and category_of(kind) == "chat":
        raise ProtocolError(
            "bad_request",
            f"unknown chat event kind {kind!r}; publish {KIND_CONVERSATION_CREATED} "
            f"or {KIND_MESSAGE_CREATED}",
            request_id,
        )
    return result


class ServerFrame(msgspec.Struct):
    """What a client reads first from any server frame: its type and id.

    ``raw`` keeps the whole frame so a client can decode it fully with
    :func:`decode_as` once it knows what it expects.
    """

    type: str
    id: RequestId | None
    raw: bytes


def peek(data: bytes | str) -> ServerFrame:
    """Read the type and id of a server frame.

    Raises:
        ProtocolError: the frame is not a JSON object with a string ``type``.
    """
    raw = data.encode() if isinstance(data, str) else data
    if _too_deep(raw):
        raise ProtocolError("bad_request", f"unreadable frame from server: {_TOO_DEEP}")
    try:
        envelope = _envelope_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError("bad_request", f"unreadable frame from server: {exc}") from None
    if not isinstance(envelope.type, str) or not envelope.type:
        raise ProtocolError("bad_request", "frame from server has no string `type`")
    return ServerFrame(envelope.type, _valid_id(envelope.id), raw)


_typed_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode_as(raw: bytes | str, frame_type: type[T]) -> T:
    """Decode a frame (or object) as a known type.

    Raises:
        ProtocolError: it does not have that shape.
    """
    decoder = _typed_decoders.get(frame_type)
    if decoder is None:
        decoder = _typed_decoders[frame_type] = msgspec.json.Decoder(frame_type)
    if _too_deep(raw):
        raise ProtocolError("bad_request", f"unexpected frame shape: {_TOO_DEEP}")
    try:
        result: T = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError("bad_request", f"unexpected frame shape: {exc}") from None
    return result


def decode_object(raw: bytes | str) -> dict[str, Any]:
    """Decode any JSON object, for generic tools.

    Raises:
        ProtocolError: not a JSON object.
    """
    if _too_deep(raw):
        raise ProtocolError("bad_request", f"not a JSON object: {_TOO_DEEP}")
    try:
        return _object_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError("bad_request", f"not a JSON object: {exc}") from None


def error_frame(exc: ProtocolError) -> bytes:
    """Encode the ``error`` frame that answers a :class:`ProtocolError`."""
    return encode(Error(id=exc.request_id, code=exc.code, message=exc.message))
