"""Server addresses: what a person types, and the WebSocket URLs derived from it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def normalize_server_url(text: str) -> str:
    """Return the canonical form of a server address: ``ws[s]://host[:port][/prefix]``.

    ``http``/``https`` become ``ws``/``wss`` (the same server serves both), a missing
    scheme means ``ws``, and a trailing slash is dropped, so equal servers compare equal.

    Raises:
        ValueError: not a usable address; the message says what to type instead.
    """
    candidate = text.strip()
    if not candidate:
        raise ValueError(
            "the server address is empty; enter one like ws://deskbell.example.org:8765"
        )
    if "://" not in candidate:
        candidate = f"ws://{candidate}"
    parts = urlsplit(candidate)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(
            f"the server address must start with ws://, wss://, http:// or https://, "
            f"not {parts.scheme}://"
        )
    if not parts.hostname:
        raise ValueError(
            "the server address has no host name; enter one like ws://deskbell.example.org:8765"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("the port in the server address is not a number from 1 to 65535") from None
    if parts.query or parts.fragment:
        raise ValueError("the server address cannot have ?query or #fragment parts")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def channel_url(server_url: str, channel: str) -> str:
    """Return the WebSocket URL of one channel (``"agent"``, ``"auth"``) of a server.

    Raises:
        ValueError: as :func:`normalize_server_url`.
    """
    return f"{normalize_server_url(server_url)}/{channel.strip('/')}"
