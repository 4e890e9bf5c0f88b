import pytest

from desktop_agent import errors
from desktop_agent.errors import (
    AuthRejected,
    ConnectionLost,
    DeskbellError,
    InvalidSetting,
    NotConnected,
    RequestFailed,
    SettingLocked,
    SettingsFileError,
)


def test_every_error_of_the_agent_is_a_deskbell_error() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(classes) >= 10
    assert all(issubclass(cls, DeskbellError) for cls in classes)


def test_a_failed_request_keeps_the_code_for_programs_and_the_message_for_people() -> None:
    error = RequestFailed("not_found", "That conversation is not in your inboxes.")
    assert error.code == "not_found"
    assert str(error) == "That conversation is not in your inboxes."


def test_a_lost_connection_is_a_kind_of_not_connected() -> None:
    with pytest.raises(NotConnected):
        raise ConnectionLost()


@pytest.mark.parametrize(
    "error",
    [
        NotConnected(),
        ConnectionLost(),
        AuthRejected("The email or password is not right. Check both and try again."),
        SettingLocked("server_url"),
        InvalidSetting("badge_scope", "expected one of chat, all"),
        SettingsFileError("/x/settings.toml", "line 2: bad value", "Fix it and save again."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_each_message_says_what_happened_in_a_sentence(error: DeskbellError) -> None:
    text = str(error)
    assert text[0].isupper() and text.rstrip().endswith(".")
    assert len(text.split()) >= 5
