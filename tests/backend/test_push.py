"""Frames built from a template are the frames the protocol encoder builds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from backend import ids, protocol, push

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@given(
    public_id=st.from_regex(r"a_[0-9A-Za-z]{1,26}", fullmatch=True) | text,
    seq=st.integers(0, 2**53),
    kind=text,
    category=text,
    title=text,
    body=text,
    conversation_id=st.none() | text,
    url=st.none() | text,
    created_at=text,
    data=st.dictionaries(text, json_values, max_size=4),
    unread=st.dictionaries(text, st.integers(0, 2**31), max_size=4),
)
def test_a_template_frame_equals_the_encoded_push(
    public_id: str,
    seq: int,
    kind: str,
    category: str,
    title: str,
    body: str,
    conversation_id: str | None,
    url: str | None,
    created_at: str,
    data: dict[str, object],
    unread: dict[str, int],
) -> None:
    def note(id_: str, seq_: int, read: bool) -> protocol.Notification:
        return protocol.Notification(
            id=id_,
            seq=seq_,
            kind=kind,
            category=category,
            title=title,
            body=body,
            conversation_id=conversation_id,
            url=url,
            created_at=created_at,
            read=read,
            data=data,
        )

    template = push.PushTemplate(note("ignored", 7, True))
    expected = protocol.encode(
        protocol.NotificationPush(
            notification=note(ids.notification_id(public_id, seq), seq, False), unread=unread
        )
    )
    assert template.frame(push.id_prefix(public_id), seq, unread) == expected


def test_text_frames_are_the_frames_websockets_writes() -> None:
    for size in (0, 1, 125, 126, 127, 65535, 65536, 70000):
        payload = b"x" * size
        expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
        assert push.text_frame(payload) == expected
