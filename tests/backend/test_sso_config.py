"""Single sign-on settings: read like every other setting, refused when they cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.config import load_config
from backend.errors import ConfigError
from backend.sso import SsoSettings, nonce_hash


def test_sso_settings_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config_file = tmp_path / "deskbell.toml"
    config_file.write_text(
        'sso_issuer = "https://login.example.org/"\n'
        'sso_client_id = "deskbell-desktop"\n'
        'sso_scopes = ["openid", "email", "groups"]\n'
        "sso_create_agents = true\n"
    )
    config = load_config(
        {}, str(config_file), {"DESKBELL_PASSWORD_SIGN_IN": "off", "DESKBELL_SSO_LABEL": "Acme"}
    )
    assert config.password_sign_in is False
    assert config.sso_create_agents is True
    settings = SsoSettings.from_config(config)
    assert settings is not None
    assert settings.issuer == "https://login.example.org"
    assert settings.label == "Acme"
    assert settings.scopes == ("openid", "email", "groups")


def test_the_label_defaults_to_the_issuer_host() -> None:
    config = load_config(
        {},
        None,
        {"DESKBELL_SSO_ISSUER": "https://login.example.org", "DESKBELL_SSO_CLIENT_ID": "c"},
    )
    settings = SsoSettings.from_config(config)
    assert settings is not None and settings.label == "login.example.org"
    assert SsoSettings.from_config(load_config({}, None, {})) is None


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"DESKBELL_SSO_ISSUER": "https://login.example.org"}, "needs both"),
        ({"DESKBELL_PASSWORD_SIGN_IN": "false"}, "no agent could sign in"),
        ({"DESKBELL_SSO_CREATE_AGENTS": "perhaps"}, "must be a bool"),
    ],
)
def test_settings_that_cannot_work_are_refused(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config({}, None, environ)


def test_the_nonce_is_the_base64url_sha256_of_the_secret() -> None:
    # echo -n secret | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d =
    assert nonce_hash("secret") == "K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols"
