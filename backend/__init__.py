"""Deskbell backend: the chat and notification service (``deskbell-server``)."""

from importlib import metadata

try:
    __version__ = metadata.version("deskbell")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
