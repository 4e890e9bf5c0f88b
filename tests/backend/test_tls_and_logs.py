"""Optional TLS, and what the logs may not contain."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.backend import SUBPROTOCOL, ServerProcess, seed_db


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_serves_wss_and_logs_hold_no_secrets_or_bodies(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    db = str(tmp_path / "tls.sqlite3")
    tokens = await seed_db(db, {"ann@x.org": ["Support"]})
    server = ServerProcess(db, extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"wss://127.0.0.1:{server.port}"
        async with connect(
            f"{url}/agent",
            ssl=context,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {tokens['ann@x.org']}"},
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
        async with connect(f"{url}/visitor", ssl=context, subprotocols=[SUBPROTOCOL]) as visitor:  # type: ignore[list-item]
            await visitor.send(
                json.dumps(
                    {
                        "type": "start",
                        "id": 1,
                        "inbox": "Support",
                        "name": "Dana",
                        "text": "my card number is 4111",
                    }
                )
            )
            reply = json.loads(await visitor.recv())
            assert reply["type"] == "ok"
        with pytest.raises(Exception):  # noqa: B017 - any handshake failure will do
            await connect(
                f"{url}/agent",
                ssl=context,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                additional_headers={"Authorization": "Bearer dbat_wrong"},
            )
    finally:
        assert server.terminate() == 0
    log = "".join(server.log)
    assert "event=open channel=agent" in log and "event=auth_failed" in log
    assert tokens["ann@x.org"] not in log
    assert reply["token"] not in log
    assert "4111" not in log
