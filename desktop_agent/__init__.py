"""Deskbell desktop agent: the PySide6 tray notifier (``deskbell``)."""

from importlib import metadata

try:
    __version__ = metadata.version("deskbell")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

APP_ID = "dev.deskbell.Deskbell"
"""The app's identity: toast AppUserModelID, D-Bus names, macOS bundle id."""
