"""TokenStore against gnome-keyring's Secret Service and with no keyring at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import SecretService, fail
from keyring.errors import KeyringLocked

from desktop_agent.platform.tokens import SESSION_ONLY_NAME, TokenStore
from tests.support.desktop_session import DesktopSession

SERVER = "wss://help.example.com"
TOKEN = "dbat_s3cr3t-token-value-4f9a"


def new_secret_service() -> Any:
    """A fresh Secret Service backend (keyring's constructors carry no type hints)."""
    return SecretService.Keyring()  # type: ignore[no-untyped-call]


def new_fail_keyring() -> Any:
    return fail.Keyring()  # type: ignore[no-untyped-call]


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


@pytest.fixture
def secret_service(keyring_session: DesktopSession) -> Iterator[Any]:
    with keyring_session.activated():
        backend = new_secret_service()
        assert backend.priority > 0, "Secret Service on the private bus is not usable"
        yield backend


@pytest.mark.desktop
def test_token_round_trips_through_the_secret_service(secret_service: Any) -> None:
    store = TokenStore(secret_service)
    store.save(SERVER, "dana@example.com", TOKEN)
    assert store.persistent
    assert store.backend_name() == secret_service.name
    # A new store (as after a restart) reads it back from the daemon.
    assert TokenStore(new_secret_service()).load(SERVER, "dana@example.com") == TOKEN
    assert secret_service.get_password(f"Deskbell {SERVER}", "dana@example.com") == TOKEN


@pytest.mark.desktop
def test_tokens_are_kept_apart_per_server_and_email(secret_service: Any) -> None:
    store = TokenStore(secret_service)
    store.save(SERVER, "a@example.com", "dbat_a")
    store.save(SERVER, "b@example.com", "dbat_b")
    store.save("wss://other.example.com", "a@example.com", "dbat_other")
    assert store.load(SERVER, "a@example.com") == "dbat_a"
    assert store.load(SERVER, "b@example.com") == "dbat_b"
    assert store.load("wss://other.example.com", "a@example.com") == "dbat_other"


@pytest.mark.desktop
def test_delete_removes_the_token_and_tolerates_a_missing_one(secret_service: Any) -> None:
    store = TokenStore(secret_service)
    store.save(SERVER, "gone@example.com", TOKEN)
    store.delete(SERVER, "gone@example.com")
    store.delete(SERVER, "gone@example.com")
    assert store.load(SERVER, "gone@example.com") is None


@pytest.mark.desktop
def test_secret_service_keeps_no_plain_copy_of_the_token(
    keyring_session: DesktopSession, secret_service: Any
) -> None:
    TokenStore(secret_service).save(SERVER, "plain@example.com", TOKEN)
    assert files_containing(keyring_session.home, TOKEN) == []


def test_no_keyring_means_session_only_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    store = TokenStore(new_fail_keyring())
    assert not store.persistent
    assert store.backend_name() == SESSION_ONLY_NAME
    assert "sign in again" in store.unavailable_reason
    store.save(SERVER, "dana@example.com", TOKEN)
    assert store.load(SERVER, "dana@example.com") == TOKEN
    assert files_containing(tmp_path, TOKEN) == []
    store.delete(SERVER, "dana@example.com")
    assert store.load(SERVER, "dana@example.com") is None


def test_default_backend_on_a_headless_machine_is_session_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keyring

    monkeypatch.setattr(keyring, "get_keyring", new_fail_keyring)
    assert not TokenStore().persistent


class LockedKeyring:
    """Duck-typed keyring backend that exists but refuses every access, like a locked one."""

    name = "Locked test keyring"

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the keyring is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the keyring is locked")


def test_keyring_failure_on_save_keeps_the_token_for_this_session() -> None:
    store = TokenStore(LockedKeyring())
    assert store.persistent
    store.save(SERVER, "dana@example.com", TOKEN)
    assert not store.persistent
    assert "KeyringLocked" in store.unavailable_reason
    assert store.load(SERVER, "dana@example.com") == TOKEN


def test_keyring_failure_on_load_reads_as_no_token() -> None:
    store = TokenStore(LockedKeyring())
    assert store.load(SERVER, "dana@example.com") is None
    assert not store.persistent
