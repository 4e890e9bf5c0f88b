"""SingleInstance: one Deskbell per user; a second launch hands its arguments over.

The first instance listens on a local socket (a Unix socket on Linux and macOS, a named
pipe on Windows). A second instance -- for example the one the browser starts for a
``deskbell://conversation/c_123`` link -- connects, sends its argv, waits for an
acknowledgement and exits; the first one emits `argumentsReceived(list)`.

A socket file left behind by a crashed instance is detected (nobody accepts a
connection on it) and replaced. Two instances started within the same few
milliseconds can both become first; the later listener then owns the name.

Wire format: one JSON object ``{"argv": [...]}`` and a newline; the answer is ``ok\\n``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from desktop_agent import APP_ID

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SOCKET_PATH_BYTES = 100
"""A Unix socket path must fit sockaddr_un (108 bytes on Linux, 104 on macOS)."""
ACK = b"ok\n"


def default_socket_name(
    app_id: str = APP_ID, user: str | None = None, scope: Path | None = None
) -> str:
    """The per-user socket name (or, on Linux with XDG_RUNTIME_DIR, full socket path).

    XDG_RUNTIME_DIR is private to the user (mode 0700), so no other user can squat the
    name; elsewhere the name carries the user name and Qt picks the folder.

    ``scope`` is the app's data folder: one instance per data folder, not per user, so
    a Deskbell with its own folders (``scripts/demo`` sets XDG_DATA_HOME and the other
    XDG folders) runs beside the user's own instead of handing its arguments to it.
    """
    user = user if user is not None else getpass.getuser()
    label = f"{app_id}-{user}"
    if scope is not None:
        digest = hashlib.sha256(str(Path(scope).expanduser().absolute()).encode()).hexdigest()
        label += f"-{digest[:10]}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", label)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if sys.platform.startswith("linux") and runtime_dir and Path(runtime_dir).is_dir():
        path = str(Path(runtime_dir) / f"{name}.sock")
        if len(path.encode()) <= MAX_SOCKET_PATH_BYTES:
            return path
    return name


def instance_answers(socket_name: str, timeout_ms: int = 1000) -> bool:
    """Whether a Deskbell listens on ``socket_name`` (``deskbell --status`` asks this:
    a recorded process id can be stale or reused, the listening socket cannot)."""
    probe = QLocalSocket()
    probe.connectToServer(socket_name)
    alive = probe.waitForConnected(timeout_ms)
    probe.abort()
    return alive


def encode_arguments(argv: list[str]) -> bytes:
    """The message a second instance sends."""
    return json.dumps({"argv": argv}).encode() + b"\n"


def decode_arguments(data: bytes) -> list[str] | None:
    """The argv in a message, or None when the message is malformed."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    argv = message.get("argv") if isinstance(message, dict) else None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return None
    return argv


class SingleInstance(QObject):
    """Decides whether this process is the first Deskbell of the user.

    Args:
      socket_name: the local socket name or path; default `default_socket_name()`.
      connect_timeout_ms: how long a second instance waits for the first to answer.
    """

    argumentsReceived = Signal(list)
    """argv (list[str]) sent by a later instance; emitted in the first instance."""

    def __init__(
        self,
        socket_name: str | None = None,
        *,
        connect_timeout_ms: int = 2000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.socket_name = socket_name or default_socket_name()
        self._timeout_ms = connect_timeout_ms
        self._server: QLocalServer | None = None
        self._buffers: dict[QLocalSocket, bytearray] = {}

    @property
    def is_primary(self) -> bool:
        """True once `acquire()` made this the listening (first) instance."""
        return self._server is not None

    def acquire(self) -> bool:
        """Become the first instance; False when another live instance already is.

        A stale socket from a crashed instance is removed and taken over.
        """
        if self._server is not None:
            return True
        # Ask first: listen() does not reliably fail on a name in use (with socket options
        # Qt binds a temporary socket and renames it over the old one on Unix, and a
        # Windows pipe name can have several server instances).
        if self._primary_is_alive():
            return False
        server = QLocalServer(self)
        if sys.platform == "win32":
            # Pipe ACL for this user only; on Unix the socket's folder and mode do that.
            server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.socket_name):
            # Nobody answered, so the socket file is left over from a crashed instance.
            logger.info("removing a stale single-instance socket %s", self.socket_name)
            QLocalServer.removeServer(self.socket_name)
            if not server.listen(self.socket_name):
                error = server.errorString()
                server.deleteLater()
                raise OSError(f"cannot listen on {self.socket_name}: {error}")
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def send_to_primary(self, argv: list[str]) -> bool:
        """Hand `argv` to the first instance and wait for its acknowledgement.

        Blocks up to the connect timeout (this runs before any event loop). Returns
        False when no first instance answered.
        """
        socket = QLocalSocket()
        socket.connectToServer(self.socket_name)
        if not socket.waitForConnected(self._timeout_ms):
            return False
        try:
            socket.write(encode_arguments(argv))
            if not socket.waitForBytesWritten(self._timeout_ms):
                return False
            answer = b""
            while not answer.endswith(b"\n"):
                if not socket.waitForReadyRead(self._timeout_ms):
                    return False
                answer += bytes(socket.readAll().data())
            return answer == ACK
        finally:
            socket.disconnectFromServer()

    def release(self) -> None:
        """Stop listening and remove the socket (on quit)."""
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None

    def _primary_is_alive(self) -> bool:
        return instance_answers(self.socket_name, self._timeout_ms)

    def _accept(self) -> None:
        assert self._server is not None
        while (connection := self._server.nextPendingConnection()) is not None:
            self._buffers[connection] = bytearray()
            connection.readyRead.connect(lambda c=connection: self._read(c))
            connection.disconnected.connect(lambda c=connection: self._drop(c))
            if connection.bytesAvailable():
                self._read(connection)

    def _read(self, connection: QLocalSocket) -> None:
        buffer = self._buffers.get(connection)
        if buffer is None:
            return
        buffer += bytes(connection.readAll().data())
        if b"\n" not in buffer:
            if len(buffer) > MAX_MESSAGE_BYTES:
                logger.warning("dropping an oversized single-instance message")
                self._drop(connection)
            return
        line = bytes(buffer.split(b"\n", 1)[0])
        self._buffers.pop(connection, None)
        argv = decode_arguments(line)
        if argv is None:
            logger.warning("ignoring a malformed single-instance message")
            connection.disconnectFromServer()
            return
        connection.write(ACK)
        connection.flush()
        connection.disconnectFromServer()
        self.argumentsReceived.emit(argv)

    def _drop(self, connection: QLocalSocket) -> None:
        self._buffers.pop(connection, None)
        connection.deleteLater()
