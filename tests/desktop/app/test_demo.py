"""The demo: the visitor simulator against a real server, and scripts/demo end to end."""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_agent.demo import Plan, Simulator
from tests.support.backend import in_process_backend

ROOT = Path(__file__).resolve().parents[3]


async def test_simulated_visitors_open_chats_and_print_agent_replies(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path) as server:
        tokens = await server.seed({"alex@example.org": ["Support"]})
        agent = await server.agent(tokens["alex@example.org"])
        out = io.StringIO()
        simulator = Simulator(
            server.url,
            "Support",
            Plan(every=0.01, follow_up_after=60, stay=60),
            rng=random.Random(7),
            out=out,
        )
        run = asyncio.create_task(simulator.run(count=2))

        first, second = await agent.notifications(2)
        assert {first["title"], second["title"]} == {"Dana Smith", "Lee Wong"}
        reply = await agent.request(
            {
                "type": "reply",
                "conversation_id": first["conversation_id"],
                "body": "Happy to help!",
                "client_msg_id": "r1",
            }
        )
        assert reply["type"] == "ok"
        await asyncio.wait_for(simulator.replied.wait(), 10)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await agent.close()

    # (Whether the simulator has read its second "ok" yet is a race; the agent's
    # two notifications above are the proof that both chats were opened.)
    assert simulator.started >= 1
    assert f"agent    Alex → {first['title']}: Happy to help!" in out.getvalue()


@pytest.mark.slow
def test_scripts_demo_runs_everything_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DESKBELL_VENV": str(Path(sys.executable).parent.parent),
        "DESKBELL_DEMO_EVERY": "0.5",
        "QT_QPA_PLATFORM": "offscreen",
        "TMPDIR": str(tmp_path),
    }
    env.pop("DISPLAY", None)
    demo = subprocess.Popen(
        [str(ROOT / "scripts" / "demo")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert demo.stderr is not None and demo.stdout is not None
        banner = ""
        for line in demo.stderr:
            banner += line
            if "Press Ctrl+C" in line:
                break
        assert "Deskbell demo is running." in banner, banner
        widget = re.search(r"http://127\.0\.0\.1:\d+/widget/\?inbox=Support", banner)
        assert widget is not None, banner
        work = Path(re.search(r"log: (\S+)/server\.log", banner).group(1))  # type: ignore[union-attr]
        assert work.is_dir()
        for line in demo.stdout:
            if line.startswith("visitor  "):
                break

        demo.send_signal(signal.SIGINT)  # what Ctrl+C does to the script
        assert demo.wait(timeout=60) == 130
        rest = demo.stderr.read()
        assert "demo: stopped" in rest, rest
        assert not work.exists()
        leftovers = subprocess.run(
            ["pgrep", "-s", str(demo.pid)], capture_output=True, text=True
        ).stdout.split()
        assert leftovers == []
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
