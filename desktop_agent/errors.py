"""Errors of the desktop agent: one hierarchy, rooted at :class:`DeskbellError`.

Lower layers (the connection service, settings, sign-in helpers) raise these; the
composition root and the windows decide what a person sees. Every ``str()`` of these
errors is written for a person: what happened and, where it helps, what to do next.

Hierarchy::

    DeskbellError
    ├── NotConnected            no live connection to send a request on
    │   └── ConnectionLost      the connection dropped while a request was waiting
    ├── ServerUnreachable       the server could not be reached at all (sign-in)
    ├── AuthRejected            the server refused the credentials or the token
    ├── RequestFailed           the server answered a request with an ``error`` frame
    ├── SsoFailed               single sign-on in the browser did not complete
    ├── RequestTimedOut         no reply within the time allowed
    ├── ServerProtocolError     the server sent something this client cannot read
    └── SettingsError
        ├── SettingsFileError   a settings or policy file could not be read or written
        ├── SettingLocked       the organisation's policy sets this value
        └── InvalidSetting      a value does not fit the setting
"""

from __future__ import annotations


class DeskbellError(Exception):
    """Root of every error the desktop agent raises on purpose.

    Catch this at the top (a slot, a task's done-callback) to show ``str(error)``
    to a person; anything else that escapes is a bug and is logged with its traceback.
    """


class NotConnected(DeskbellError):
    """A request was made while there is no live connection to the server."""

    def __init__(
        self,
        message: str = "Not connected to the Deskbell server; "
        "the app keeps trying to reconnect. Try again in a moment.",
    ) -> None:
        super().__init__(message)


class ConnectionLost(NotConnected):
    """The connection dropped after a request was sent and before its reply came."""

    def __init__(
        self,
        message: str = "The connection to the Deskbell server dropped "
        "before it answered. Try again once the app shows it is connected.",
    ) -> None:
        super().__init__(message)


class ServerUnreachable(DeskbellError):
    """The server could not be reached (DNS, refused, TLS, not a Deskbell server)."""


class AuthRejected(DeskbellError):
    """The server refused the credentials or the token.

    Attributes:
        reason: the same text as ``str(error)``, for a person.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestFailed(DeskbellError):
    """The server answered a request with an ``error`` frame.

    Attributes:
        code: the protocol error code (``not_found``, ``rate_limited``, ...), for programs.
        message: the server's text, for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RequestFailed(code={self.code!r}, message={self.message!r})"


class SsoFailed(DeskbellError):
    """Single sign-on did not complete: the provider refused, the browser step was
    cancelled or timed out, or the provider could not be reached. The text says which,
    for a person."""


class RequestTimedOut(DeskbellError):
    """The server did not answer a request in time."""


class ServerProtocolError(DeskbellError):
    """The server sent a frame this client cannot read (a bug on one side)."""


class SettingsError(DeskbellError):
    """Base of errors about settings and policy."""


class SettingsFileError(SettingsError):
    """A settings or policy file could not be read or written.

    Attributes:
        path: the file.
        detail: what was wrong (the parser's message, the OS error).
    """

    def __init__(self, path: object, detail: str, hint: str = "") -> None:
        message = f"Could not use the settings file {path}: {detail}."
        if hint:
            message = f"{message} {hint}"
        super().__init__(message)
        self.path = path
        self.detail = detail


class SettingLocked(SettingsError):
    """A value set by the organisation's policy cannot be changed here."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"The setting {key!r} is set by your organisation and cannot be changed here. "
            "Ask your IT department if it needs to change."
        )
        self.key = key


class InvalidSetting(SettingsError):
    """A value does not fit its setting (wrong type, unknown choice, bad URL)."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"The setting {key!r} cannot be used: {detail}.")
        self.key = key
        self.detail = detail
