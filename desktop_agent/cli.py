"""Command-line arguments of ``deskbell``: parsing only; the app acts on the result.

    deskbell [--server URL] [--token-file PATH] [deskbell://conversation/<id>]
    deskbell --selftest | --status | --version

Bad usage exits with status 2 and the usage text on stderr (argparse's behaviour).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from desktop_agent import __version__
from desktop_agent.core.server_url import normalize_server_url
from desktop_agent.errors import DeskbellError

PROG = "deskbell"
LINK_SCHEME = "deskbell"
_ID = re.compile(r"^[A-Za-z0-9_.~-]{1,200}$")


@dataclass(frozen=True)
class CliOptions:
    """What the command line asked for.

    Attributes:
        server_url: ``--server``, canonical (see ``normalize_server_url``), or None.
        token_file: ``--token-file``: sign in with the admin-issued token in this file.
        conversation_id: from a ``deskbell://conversation/<id>`` link: open it.
        selftest: ``--selftest``: check the installation and exit.
        status: ``--status``: print the health view (connection, keyring, policy) and exit.
        login: ``--login``: started by a system-wide login item (the packages install
            one); quit at once when launch at login is off for this person or by policy.
    """

    server_url: str | None = None
    token_file: Path | None = None
    conversation_id: str | None = None
    selftest: bool = False
    status: bool = False
    login: bool = False


class TokenFileError(DeskbellError):
    """The ``--token-file`` could not be used."""


def conversation_from_link(link: str) -> str:
    """Return the conversation id of a ``deskbell://conversation/<id>`` link.

    Raises:
        ValueError: not such a link; the message says what is expected.
    """
    parts = urlsplit(link.strip())
    ident = parts.path.strip("/")
    if (
        parts.scheme.lower() != LINK_SCHEME
        or parts.netloc.lower() != "conversation"
        or parts.query
        or parts.fragment
        or not _ID.match(ident)
    ):
        raise ValueError(f"{link!r} is not a link like deskbell://conversation/<id>")
    return ident


def _server_url(text: str) -> str:
    try:
        return normalize_server_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``deskbell`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Deskbell: helpdesk chat notifications in your tray.",
        epilog="A second start hands its link to the running Deskbell and exits.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--server",
        metavar="URL",
        type=_server_url,
        help="server address, e.g. wss://deskbell.example.org (overrides your settings "
        "unless your organisation locks it)",
    )
    parser.add_argument(
        "--login",
        action="store_true",
        help="started at login by the system: do nothing if launch at login is off",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        type=Path,
        help="sign in with the agent token in this file (issued by an administrator); "
        "the token is then kept in the system keyring",
    )
    checks = parser.add_mutually_exclusive_group()
    checks.add_argument(
        "--selftest",
        action="store_true",
        help="check this installation (Qt, keyring, notifications, settings and policy) "
        "without a display, print what was found, then exit",
    )
    checks.add_argument(
        "--status",
        action="store_true",
        help="print the connection, server, agent, keyring and policy sources, then exit",
    )
    parser.add_argument(
        "link",
        nargs="?",
        metavar="deskbell://conversation/<id>",
        help="open this conversation",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> CliOptions:
    """Parse ``argv`` (default: ``sys.argv[1:]``).

    Raises:
        SystemExit: 0 after ``--version`` or ``--help``; 2 with usage on stderr for bad
            arguments.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    conversation_id = None
    if args.link is not None:
        try:
            conversation_id = conversation_from_link(args.link)
        except ValueError as exc:
            parser.error(str(exc))
    return CliOptions(
        server_url=args.server,
        token_file=args.token_file,
        conversation_id=conversation_id,
        selftest=args.selftest,
        status=args.status,
        login=args.login,
    )


def read_token_file(path: Path) -> str:
    """Read an agent token from ``path``: one line, surrounding whitespace ignored.

    Raises:
        TokenFileError: unreadable, empty, or not a token; the message says which.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"Could not read the token file {path}: {exc}.") from None
    token = text.strip()
    if not token:
        raise TokenFileError(
            f"The token file {path} is empty. Put the token from "
            "'deskbell-server token issue' in it."
        )
    if any(ch.isspace() for ch in token) or token.startswith("-"):
        raise TokenFileError(
            f"The token file {path} does not hold one token. It should hold just the token "
            "from 'deskbell-server token issue', on one line."
        )
    return token
