"""Is there a newer Deskbell? The app's only update check, and a pure one.

Deskbell never downloads or installs anything: IT deploys updates with its own tools
(apt, Group Policy or Intune, an MDM). The app only compares its version with the one
the server reports in ``welcome`` and, when the server is newer, says so in the status
window. The ``DisableUpdateCheck`` policy turns even that off (docs/deployment.md).
"""

from __future__ import annotations

import re

_RELEASE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def release_of(version: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a version such as ``0.3.1`` or ``1.2.0rc1``; None for
    one that does not start with numbers (a source checkout's ``0.0.0+source`` counts)."""
    match = _RELEASE.match(version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def update_notice(app_version: str, server_version: str) -> str | None:
    """A sentence for the status window when the server runs a newer release, else None."""
    app, server = release_of(app_version), release_of(server_version)
    if app is None or server is None or server <= app:
        return None
    return (
        f"The Deskbell server runs version {server_version}; this app is {app_version}. "
        "Ask your IT team for the update."
    )
