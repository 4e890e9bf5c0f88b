import pytest

from desktop_agent.core.server_url import channel_url, normalize_server_url


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("ws://h:8765", "ws://h:8765"),
        ("ws://h:8765/", "ws://h:8765"),
        ("http://h:8765", "ws://h:8765"),
        ("HTTPS://h", "wss://h"),
        ("h.example.org:8765", "ws://h.example.org:8765"),
        ("  wss://h/deskbell/ ", "wss://h/deskbell"),
    ],
)
def test_typed_addresses_become_one_canonical_form(typed: str, canonical: str) -> None:
    assert normalize_server_url(typed) == canonical


@pytest.mark.parametrize("typed", ["", "ftp://h", "ws://", "ws://h:99999", "ws://h/?a=1"])
def test_unusable_addresses_are_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        normalize_server_url(typed)


def test_channel_urls_hang_off_the_server_address() -> None:
    assert channel_url("https://h/deskbell/", "agent") == "wss://h/deskbell/agent"
    assert channel_url("ws://127.0.0.1:1234", "/auth") == "ws://127.0.0.1:1234/auth"
