"""Text from the server is not trusted: every string of every frame is made safe to
show before any part of the app sees it.

The backend removes control, bidi-override and stray zero-width characters from
visitor text at input (docs/protocol.md, "Untrusted text"); this client does the same
again with the same function, since an older or compromised server, or an integration
it relays, could send them. Names, titles and every other field come out on one line;
message ``body`` fields keep their line breaks and tabs. Views still show all of it as
plain text.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from backend.protocol import clean_text

T = TypeVar("T")

MULTILINE_FIELDS = frozenset({"body"})
"""Fields whose text may span lines (message and notification bodies)."""


def shown(frame: T) -> T:
    """A copy of a decoded server frame (or any protocol object) that is safe to show;
    the same object when nothing needed cleaning."""
    cleaned: T = _clean(frame, single_line=True)
    return cleaned


def _clean(value: Any, *, single_line: bool) -> Any:
    if isinstance(value, str):
        cleaned = clean_text(value, single_line=single_line)
        return value if cleaned == value else cleaned
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in value.__struct_fields__:
            old = getattr(value, name)
            new = _clean(old, single_line=name not in MULTILINE_FIELDS)
            if new is not old:
                changes[name] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list):
        items = [_clean(item, single_line=single_line) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = {
            _clean(key, single_line=True): _clean(item, single_line=single_line)
            for key, item in value.items()
        }
        unchanged = pairs.keys() == value.keys() and all(
            pairs[key] is item for key, item in value.items()
        )
        return value if unchanged else pairs
    return value
