"""Showing text that visitors and operators typed: one line, never blank, isolated.

Names arrive from the server as typed (up to ``MAX_NAME_CHARS``): they may be long, all
spaces, span lines, or mix scripts of both directions. Everything the app shows of them
goes through here, so a name never leaves a row empty and an Arabic name never turns
the English around it right-to-left.

Bidirectional isolation follows the Unicode Bidirectional Algorithm (UAX #9, rules
X5c and X6a): text between FIRST STRONG ISOLATE (U+2068) and POP DIRECTIONAL ISOLATE
(U+2069) takes its own direction from its first strong character and is laid out as
one neutral unit, so it neither reorders the text around it nor sets the paragraph's
direction (rule P2 skips isolated text).
"""

from __future__ import annotations

FSI = "\u2068"
"""FIRST STRONG ISOLATE: start an isolate whose direction is its first strong character's."""
PDI = "\u2069"
"""POP DIRECTIONAL ISOLATE: end the isolate."""
ELLIPSIS = "…"
UNNAMED_VISITOR = "Visitor"
"""Shown for a visitor whose name is blank (the widget allows a name of only spaces)."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines, tabs) turned into one space."""
    return " ".join(text.split())


def display_name(name: str | None, fallback: str = UNNAMED_VISITOR) -> str:
    """A name fit for one line: whitespace collapsed, ``fallback`` when nothing is left."""
    return one_line(name or "") or fallback


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut.

    For places where the OS draws the text and cannot elide it to a width (window
    titles, toasts); widgets elide to their pixel width instead.

    Raises:
        ValueError: ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def isolate(text: str) -> str:
    """``text`` as a bidirectional isolate (FSI … PDI), for embedding in other text."""
    return f"{FSI}{text}{PDI}" if text else text


def isolate_within(text: str, part: str) -> str:
    """``text`` with the first occurrence of ``part`` (e.g. a visitor's name) isolated.

    Returns ``text`` unchanged when ``part`` is empty or absent.
    """
    if not part:
        return text
    start = text.find(part)
    if start < 0:
        return text
    end = start + len(part)
    return text[:start] + isolate(part) + text[end:]


WORD_JOINER = "\u2060"
"""Forbids a line break on either side (UAX #14 class WJ) and draws nothing."""


def keep_words_whole(text: str) -> str:
    """``text`` wrappable only at spaces: no break after "/" or "-" inside a word.

    Line breaking (UAX #14) may break after a slash or a hyphen, which cuts paths
    ("/etc/deskbell/ policies") and names ("D- Bus") in two when a label wraps.
    """
    return text.replace("/", "/" + WORD_JOINER).replace("-", "-" + WORD_JOINER)


def without_format_controls(text: str) -> str:
    """``text`` without the isolates and word joiners added here (for tooltips, copies)."""
    return text.replace(FSI, "").replace(PDI, "").replace(WORD_JOINER, "")
