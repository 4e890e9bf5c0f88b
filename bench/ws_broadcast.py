"""The reference for the fan-out benchmark: a bare Python ``websockets`` broadcast server.

    python bench/ws_broadcast.py --port 9000

What a WebSocket fan-out in Python costs with nothing of Deskbell's: no sign-in, no
storage, no sequence numbers. ``/sub`` connections are subscribers (each gets a ``hi``
message once it is in the set); each text message on ``/pub`` goes to every subscriber
with ``websockets.broadcast()`` and is answered with ``ok`` (so the publisher can count
acknowledgements as it does for Deskbell). Same library, event loop and settings as
``deskbell-server serve`` (no compression, the same keepalive, ``backlog`` 4096).
Prints ``listening`` once it accepts connections; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int) -> None:
    subscribers: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if path == "/sub":
            subscribers.add(ws)
            try:
                await ws.send("hi")
                await ws.wait_closed()
            finally:
                subscribers.discard(ws)
        elif path == "/pub":
            async for message in ws:
                broadcast(subscribers, message)
                await ws.send("ok")

    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, compression=None, ping_interval=20.0, backlog=4096
    ):
        print("listening", flush=True)
        await stop


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    asyncio.run(main(p.parse_args().port))
