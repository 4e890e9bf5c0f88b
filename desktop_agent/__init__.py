"""Deskbell desktop agent: the PySide6 tray notifier (``deskbell``)."""

APP_ID = "dev.deskbell.Deskbell"
"""The app's identity: toast AppUserModelID, D-Bus names, macOS bundle id."""


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importlib.metadata takes tens of
    # milliseconds, before ``deskbell`` has its Ctrl+C handler in place.
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("deskbell")
        except metadata.PackageNotFoundError:  # running from a source tree without install
            version = "0.0.0+source"
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
