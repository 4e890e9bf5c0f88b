"""``serve``'s proxy options, as an operator meets them: a mistake stops the server
with one line saying what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server_cli import run_server_cli


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (["--trusted-proxy", "proxy.internal"], {}, "'proxy.internal' is not an address"),
        ([], {"DESKBELL_TRUSTED_PROXY": "10.0.0.0/8,nonsense"}, "'nonsense' is not an address"),
        (
            ["--tls-cert", "c.pem", "--tls-key", "k.pem"],
            {"DESKBELL_PROXY_HEADER": "proxy-protocol"},
            "needs TLS to end at the proxy",
        ),
        ([], {"DESKBELL_PROXY_HEADER": "x-real-ip"}, "'x-real-ip' is not one of"),
    ],
)
def test_a_bad_proxy_setting_stops_serve_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], reason: str
) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    result = run_server_cli("serve", "--db", db, "--port", "0", *args, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deskbell-server: error: ")
    assert reason in lines[0]
