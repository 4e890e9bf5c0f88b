"""The backend's exceptions.

Every error the service layer raises on purpose is a :class:`DeskbellError`. Each
carries a protocol error ``code`` and a ``message`` written for a person, so the
channel handlers turn it into an ``error`` frame and the CLI into a one-line reason
without knowing what went wrong. Anything else that escapes is a bug: handlers log it
with its traceback and answer ``internal``.
"""

from __future__ import annotations

from backend.protocol import ErrorCode


class DeskbellError(Exception):
    """Root of the backend's deliberate errors."""

    code: ErrorCode = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(DeskbellError):
    code: ErrorCode = "bad_request"


class Unauthorized(DeskbellError):
    code: ErrorCode = "unauthorized"


class Forbidden(DeskbellError):
    code: ErrorCode = "forbidden"


class NotFound(DeskbellError):
    code: ErrorCode = "not_found"


class Conflict(DeskbellError):
    code: ErrorCode = "conflict"


class RateLimited(DeskbellError):
    code: ErrorCode = "rate_limited"


class StoreUnavailable(DeskbellError):
    """The store cannot be reached or cannot write (disk full, database down)."""

    code: ErrorCode = "unavailable"


class ProviderUnavailable(DeskbellError):
    """The single sign-on provider's discovery document or keys cannot be fetched."""

    code: ErrorCode = "unavailable"


class CannotListen(DeskbellError):
    """The server cannot listen where it was told to (port in use, no permission)."""

    code: ErrorCode = "unavailable"


SCALE_EXTRA_HINT = (
    "install the scale extra (asyncpg, redis): in a checkout, uv sync --frozen --extra scale; "
    "into an environment of your own, pip install '/path/to/checkout[scale]'"
)
"""How to get PostgreSQL and Redis support, for the error that says it is missing (the
package is on no index, and the .deb holds the tray app only)."""

SSO_EXTRA_HINT = (
    "install the sso extra (PyJWT): in a checkout, uv sync --frozen --extra sso; "
    "into an environment of your own, pip install '/path/to/checkout[sso]'"
)
"""How to get single sign-on support, for the error that says it is missing."""


class ConfigError(DeskbellError):
    """A configuration file or option cannot be used."""

    code: ErrorCode = "bad_request"
