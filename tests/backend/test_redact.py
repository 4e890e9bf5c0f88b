"""backend.redact: what every log line and message that shows a URL goes through."""

from __future__ import annotations

import pytest

from backend.redact import redact_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:s3cret@db:5432/x", "postgresql://ann:***@db:5432/x"),
        ("postgresql://ann:p@ss@db/x", "postgresql://ann:***@db/x"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://user:s3cret@cache/0?channel=c", "rediss://user:***@cache/0?channel=c"),
        (
            "postgresql://ann@db/x?sslmode=require&password=s3cret&pool_size=4",
            "postgresql://ann@db/x?sslmode=require&password=***&pool_size=4",
        ),
        ("postgresql://db/x?sslpassword=s3cret", "postgresql://db/x?sslpassword=***"),
        ("redis://cache/0?password=s3cret#frag", "redis://cache/0?password=***#frag"),
        ("postgresql://ann:s3cret@h1:5432,h2:5432/x", "postgresql://ann:***@h1:5432,h2:5432/x"),
        ("postgresql://ann@db/x", "postgresql://ann@db/x"),
        ("/var/lib/deskbell/deskbell.sqlite3", "/var/lib/deskbell/deskbell.sqlite3"),
        ("local", "local"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_every_secret_of_a_url_is_masked_and_the_rest_kept(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_the_secrets_of_urls_wherever_a_message_repeats_them() -> None:
    url = "postgresql://ann:pw1@db/x?password=top%20secret"
    message = "connect failed: password 'top secret' rejected for pw1 (top%20secret)"
    assert scrub(message, [url, "local"]) == "connect failed: password '***' rejected for *** (***)"
