"""What the tray app tells the server about itself in the /agent handshake.

IT asks "who runs which version?": the server records these headers and
``deskbell-server agent list`` shows them (docs/protocol.md, "Agent channel").
"""

from __future__ import annotations

import platform

from backend.protocol import CLIENT_OS_HEADER, CLIENT_VERSION_HEADER
from desktop_agent import __version__


def os_description(
    system: str | None = None, release: str | None = None, machine: str | None = None
) -> str:
    """``Linux 6.1.0-18-amd64 x86_64``, ``Windows 10 AMD64``, ``Darwin 23.4.0 arm64``."""
    parts = (
        platform.system() if system is None else system,
        platform.release() if release is None else release,
        platform.machine() if machine is None else machine,
    )
    return " ".join(part for part in parts if part) or "unknown"


def client_headers(version: str = __version__, os: str | None = None) -> dict[str, str]:
    """The version and OS headers of every /agent handshake."""
    return {
        CLIENT_VERSION_HEADER: version,
        CLIENT_OS_HEADER: os_description() if os is None else os,
    }
