"""Secrets out of anything shown: the one function every log line and message that
shows a database or bus URL goes through."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"

_SECRET_OPTION = re.compile(r"pass|secret|token|key$", re.IGNORECASE)
"""Query options that hold a secret: ``password`` and ``sslpassword`` (libpq), Redis's
``password``, anything like them. ``sslkey`` names a file, but is masked all the same."""

_USERINFO = re.compile(r"(://)([^/?#]*)@")  # to the last @: a password may hold one


def redact_url(url: str) -> str:
    """``url`` with every secret replaced by ``***``: the password of its user part
    (``postgresql://ann:***@db/x``, ``redis://:***@cache``) and the value of every query
    option that holds one (``?password=***``). A file path or ``local`` comes back as it
    is. Never raises, whatever the text: it is meant for error paths too.
    """
    if "://" not in url:
        return url
    head, sep, fragment = url.partition("#")
    base, qmark, query = head.partition("?")
    base = _USERINFO.sub(_mask_userinfo, base, count=1)
    if query:
        query = "&".join(_mask_option(part) for part in query.split("&"))
    return base + qmark + query + sep + fragment


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, password = match.group(2).partition(":")
    if not colon:
        return match.group(0)
    return f"{match.group(1)}{user}:{MASK if password else ''}@"


def _mask_option(part: str) -> str:
    name, equals, value = part.partition("=")
    if equals and value and _SECRET_OPTION.search(unquote(name)):
        return f"{name}={MASK}"
    return part


def scrub(text: str, urls: Iterable[str]) -> str:
    """``text`` (a library's error message, say) with every secret of ``urls`` masked,
    wherever it appears."""
    for url in urls:
        for secret in _secrets(url):
            text = text.replace(secret, MASK)
    return text


def _secrets(url: str) -> list[str]:
    found = []
    if "://" in url:
        head = url.partition("#")[0]
        base, _, query = head.partition("?")
        match = _USERINFO.search(base)
        if match:
            found.append(match.group(2).partition(":")[2])
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if _SECRET_OPTION.search(unquote(name)):
                found += [value, unquote(value)]
    # Longest first, so a secret that contains another is masked whole.
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)
