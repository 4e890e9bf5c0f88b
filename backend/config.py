"""Server configuration: flags win over ``DESKBELL_*`` environment over a TOML file.

Every key has the same name in all three places: ``port`` is ``--port``,
``DESKBELL_PORT`` and ``port = 8765`` in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from backend import protocol
from backend.errors import ConfigError
from backend.files import data_dir


def default_db() -> str:
    """``deskbell.sqlite3`` in the platform's data folder for this user."""
    return str(data_dir() / "deskbell.sqlite3")


@dataclass
class Config:
    db: str = ""
    host: str = "127.0.0.1"
    port: int = protocol.DEFAULT_PORT
    bus: str = "local"
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "INFO"
    node: str = ""
    visitor_origins: tuple[str, ...] = ()
    max_message_bytes: int = protocol.MAX_MESSAGE_BYTES
    ping_interval: float = 20.0
    visitor_messages_per_minute: int = 20
    visitor_starts_per_address: int = 10
    login_attempts_per_email: int = 10
    login_attempts_per_address: int = 50
    token_checks_per_minute: int = 60
    """Visitor ``attach`` and ``logout`` requests one address may make per minute."""
    trusted_proxy: tuple[str, ...] = ()
    """Networks (CIDRs) of the reverse proxies whose ``proxy_header`` is believed."""
    proxy_header: str = "x-forwarded-for"
    """The header the trusted proxies set: ``x-forwarded-for`` or ``forwarded``."""
    anonymous_idle_timeout: float = 60.0
    anonymous_connections_per_address: int = 100
    anonymous_connections: int = 0
    """Anonymous connections one node holds at most; 0: half its file limit."""
    compression: str = "off"
    """permessage-deflate: "off" (default: notifications are small, and deflating each
    recipient's frame would cost more CPU than the fan-out itself) or "deflate"."""
    send_buffer_limit: int = 4 * 1024 * 1024
    """Unsent bytes a connection may hold before it is dropped as too slow."""
    stream_sweep_seconds: float = 5.0
    """With a bus to other nodes: how often a node compares its sessions' streams with
    the store, to send what another node committed but never put on the bus (it died
    first). 0 turns it off."""
    drain_seconds: float = 10.0
    """On SIGTERM: the most a stop takes (stop accepting, 1001 to every client, finish
    commits, close); connections still open near the end are dropped."""
    password_sign_in: bool = True
    """False: /auth refuses ``login`` (agents sign in through single sign-on only)."""
    sso_issuer: str | None = None
    """The OpenID provider's issuer URL; set, the sign-in window offers single sign-on."""
    sso_client_id: str | None = None
    """The client id the tray app was registered with at the provider (the ID token's aud)."""
    sso_label: str = ""
    """The button says "Sign in with <label>" (default: the issuer's host name)."""
    sso_scopes: tuple[str, ...] = ("openid", "email", "profile")
    sso_email_claim: str = "email"
    """The ID token claim that holds the agent's email address."""
    sso_create_agents: bool = False
    """True: a valid sign-in with an email no agent has creates that agent."""
    sso_groups_claim: str | None = None
    """A claim listing group names: a created agent joins the inboxes of those names."""

    def __post_init__(self) -> None:
        if not self.db:
            self.db = default_db()


def config_keys() -> frozenset[str]:
    """Every configuration key (each is also a flag and a ``DESKBELL_*`` variable)."""
    return frozenset(f.name for f in fields(Config))


_PORT_RANGE = range(0, 65536)


def _coerce(name: str, value: Any, kind: Any, source: str) -> Any:
    text = str(kind)
    try:
        if "tuple" in text:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if text == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if text == "int":
            return int(value)
        if text == "float":
            return float(value)
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} must be a {text}, not {value!r}") from None


def load_config(
    flags: Mapping[str, Any], config_file: str | None, environ: Mapping[str, str] | None = None
) -> Config:
    """Merge the three sources into a :class:`Config`.

    Raises:
        ConfigError: an unreadable or invalid file, or a value of the wrong type.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Config)}
    path = config_file or environ.get("DESKBELL_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[name] = _coerce(name, value, known[name], f"config file {path}")
    for name, kind in known.items():
        env_value = environ.get(f"DESKBELL_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(name, env_value, kind, f"DESKBELL_{name.upper()}")
    for name, value in flags.items():
        if value is not None and name in known:
            values[name] = _coerce(name, value, known[name], f"--{name.replace('_', '-')}")
    port = values.get("port", protocol.DEFAULT_PORT)
    if port not in _PORT_RANGE:
        raise ConfigError(f"port {port} is not a port number: use 1 to 65535 (0 picks a free one)")
    config = Config(**values)
    if bool(config.sso_issuer) != bool(config.sso_client_id):
        raise ConfigError("single sign-on needs both sso_issuer and sso_client_id")
    if not config.password_sign_in and not config.sso_issuer:
        raise ConfigError(
            "password_sign_in = false needs single sign-on (sso_issuer and sso_client_id), "
            "or no agent could sign in"
        )
    return config
