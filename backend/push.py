"""Notification frames for many recipients, and WebSocket text frames, built cheaply.

One event goes to thousands of agents, and their frames differ only in the
notification's ``id`` and ``seq`` and in the ``unread`` counts. :class:`PushTemplate`
encodes the shared part once per event; each recipient's frame is then a join of
bytes, equal byte for byte to ``protocol.encode(NotificationPush(...))`` (the tests
hold it to that). :func:`text_frame` is the unmasked server-to-client frame RFC 6455
defines, for connections without extensions.
"""

from __future__ import annotations

import struct

import msgspec

from backend import ids, protocol

_encode = protocol.encode
_MARK = b'"id":"","seq":0,'
_NO_UNREAD = b"null}"


def id_prefix(agent_public_id: str) -> bytes:
    """The JSON of an agent's notification id up to its seq: ``"n_<key>_``."""
    sample = protocol.encode(ids.notification_id(agent_public_id, 0))
    return sample[: -len(b'0"')]


class PushTemplate:
    """The ``notification`` push of one event, encoded once, for any recipient."""

    __slots__ = ("_head", "_tail")

    def __init__(self, notification: protocol.Notification) -> None:
        """``notification``: the event's content (its ``id``, ``seq`` and ``read`` are
        replaced per recipient: ``read`` is always false in a push)."""
        shared = msgspec.structs.replace(notification, id="", seq=0, read=False)
        sample = protocol.encode(protocol.NotificationPush(notification=shared))
        # The id and seq come first in the notification, before any content, so the
        # first match is theirs; the push ends with its unread counts.
        at = sample.index(_MARK)
        if not sample.endswith(_NO_UNREAD):
            raise ValueError("unexpected notification push layout")
        self._head = sample[:at] + b'"id":'
        self._tail = sample[at + len(_MARK) : -len(_NO_UNREAD)]

    def frame(self, prefix: bytes, seq: int, unread: protocol.Unread) -> bytes:
        """The push for one recipient: ``prefix`` from :func:`id_prefix` of the agent."""
        digits = b"%d" % seq
        return b"".join(
            (
                self._head,
                prefix,
                digits,
                b'","seq":',
                digits,
                b",",
                self._tail,
                _encode(unread),
                b"}",
            )
        )


_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, final WebSocket text frame (no extensions)."""
    n = len(payload)
    if n < 126:
        return _SHORT.pack(_FIN_TEXT, n) + payload
    if n < 65536:
        return _MEDIUM.pack(_FIN_TEXT, 126, n) + payload
    return _LONG.pack(_FIN_TEXT, 127, n) + payload


def text_frames(payloads: list[bytes]) -> bytes:
    """Several :func:`text_frame` in one buffer, in order."""
    return b"".join([text_frame(payload) for payload in payloads])
