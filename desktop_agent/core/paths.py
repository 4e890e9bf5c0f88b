"""The app's folders on this OS (platformdirs): settings, runtime state, logs."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "deskbell"


def config_dir() -> Path:
    """Where the user's settings file lives (e.g. ``~/.config/deskbell``)."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False)


def data_dir() -> Path:
    """Where runtime state such as the stream cursor lives (e.g. ``~/.local/share/deskbell``)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def log_dir() -> Path:
    """Where the rotating log file goes (e.g. ``~/.local/state/deskbell/log``)."""
    return platformdirs.user_log_path(APP_NAME, appauthor=False)
