"""Fixtures for the platform tests: private desktop sessions from tests/support."""

from tests.support.desktop_session import (  # noqa: F401 -- pytest finds fixtures by name
    bus_session,
    display_session,
    keyring_session,
    notification_session,
)
