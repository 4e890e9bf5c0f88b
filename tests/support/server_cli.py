"""``deskbell-server`` run as an operator runs it, in a child process.

Every run turns warnings into errors (``python -W error``): a library warning that
would be printed in front of an operator's output fails the test instead (issue 9:
redis-py's Retry warning sat above ``check``'s one-line error).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def run_server_cli(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    inherit_deskbell_env: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``deskbell-server ARGS`` and wait for it.

    Args:
        stdin: text for its standard input (``--password-stdin``), or None for none.
        env: variables added to this process's environment.
        inherit_deskbell_env: False drops every ``DESKBELL_*`` variable of this process
            first, so only ``env`` and the flags configure the command.
    """
    base = {
        key: value
        for key, value in os.environ.items()
        if inherit_deskbell_env or not key.startswith("DESKBELL_")
    }
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "backend", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )
