"""A tiny Deskbell stand-in for single-instance tests, run as a separate process.

    python -m tests.support.single_instance_probe SOCKET_NAME [ARG ...]

First instance: prints "primary", then prints each argv it receives as a JSON line
and quits after the first one. Later instance: sends its ARGs, prints "sent" and
exits 0, or prints "failed" and exits 1.
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QCoreApplication

from desktop_agent.platform.single_instance import SingleInstance


def main(argv: list[str]) -> int:
    app = QCoreApplication([])
    instance = SingleInstance(argv[0])
    if not instance.acquire():
        sent = instance.send_to_primary(argv[1:])
        print("sent" if sent else "failed", flush=True)
        return 0 if sent else 1

    def received(arguments: list[str]) -> None:
        print(json.dumps(arguments), flush=True)
        app.quit()

    instance.argumentsReceived.connect(received)
    print("primary", flush=True)
    app.exec()
    instance.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
