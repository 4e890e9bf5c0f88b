"""A lean load generator: thousands of subscribers and one publisher in one epoll loop.

The point is that the measuring side must be much cheaper per delivery than the server
it measures, so it does not use asyncio or any client library: blocking sockets that are
only read when epoll says they are readable, a hand-written frame parser for each
protocol (WebSocket, MQTT 3.1.1, NATS), and arrival times written into one preallocated
array. The same machinery drives Deskbell and the reference brokers, so whatever it costs
weighs equally on both sides of each ratio.

Every published message carries ``#<event index>@<time_ns() at send>|`` in its text; a
receiver computes ``arrival - stamp`` on the same clock.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import socket
import struct
import time
import zlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

time_ns = time.time_ns
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; also SCM_TIMESTAMPNS
_TIMESPEC = struct.Struct("qq")
INFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.2: removed by the sender


class BenchError(Exception):
    """The benchmark could not run as asked (a refused connection, a protocol error)."""


def stamp_text(k: int, pad: int) -> bytes:
    """The marker a publisher puts in event ``k``, padded with ``pad`` filler bytes."""
    return b"#%d@%d|" % (k, time_ns()) + b"x" * max(0, pad)


def parse_stamp(payload: bytes, start: int) -> tuple[int, int]:
    """(event index, stamp ns) from the marker at or after ``start``."""
    i = payload.index(b"#", start)
    j = payload.index(b"@", i)
    e = payload.index(b"|", j)
    return int(payload[i + 1 : j]), int(payload[j + 1 : e])


# ------------------------------------------------------------------------------ recording
class Recorder:
    """Latency of every (event, subscriber) pair, plus loss/duplicate/order counters."""

    def __init__(self, subscribers: int, events: int):
        self.n = subscribers
        self.events = events
        self.latency = array("q", [-1]) * (subscribers * events)
        self.read_latency = array("q", [-1]) * (subscribers * events)
        self.last_k = array("q", [-1]) * subscribers
        self.last_seq = array("q", [0]) * subscribers
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.seq_gaps = 0
        self.foreign = 0
        self.frame_bytes = 0

    def record(self, sub: int, k: int, stamp: int, now: int, read: int) -> None:
        """Event ``k`` reached subscriber ``sub``: in its socket at ``now`` (kernel
        time), read by this process at ``read``."""
        if not 0 <= k < self.events:
            self.foreign += 1
            return
        i = k * self.n + sub
        if self.latency[i] >= 0:
            self.duplicates += 1
            return
        self.latency[i] = now - stamp
        self.read_latency[i] = read - stamp
        self.received += 1
        if k != self.last_k[sub] + 1:
            self.out_of_order += 1
        self.last_k[sub] = k

    def check_seq(self, sub: int, seq: int) -> None:
        if seq != self.last_seq[sub] + 1:
            self.seq_gaps += 1
        self.last_seq[sub] = seq

    def lost(self, upto: int) -> int:
        return upto * self.n - self.received


# ------------------------------------------------------------------------------ the loop
class Conn:
    """One client socket in the loop. ``on_readable`` is called when epoll says so."""

    sock: socket.socket
    loop: Loop
    connecting = False
    read_ns = 0
    """When this process read the last data (user space, after any queueing here)."""

    def receive(self) -> tuple[bytes, int]:
        """Read what is there; returns it with the kernel's receive time of the data
        (SO_TIMESTAMPNS, CLOCK_REALTIME like ``time_ns``), so that time spent waiting
        for this loop to get round to the socket is not counted as latency."""
        data, ancillary, _, _ = self.sock.recvmsg(262144, 64)
        self.read_ns = time_ns()
        for _level, kind, raw in ancillary:
            if kind == SO_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                return data, sec * 1_000_000_000 + nsec
        return data, self.read_ns

    def on_readable(self) -> None:
        raise NotImplementedError

    def on_connect(self) -> None:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class Loop:
    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.conns: dict[int, Conn] = {}

    def add(self, conn: Conn) -> None:
        conn.loop = self
        fd = conn.sock.fileno()
        self.conns[fd] = conn
        self.epoll.register(fd, select.EPOLLIN)

    def remove(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if self.conns.pop(fd, None) is not None:
            self.epoll.unregister(fd)
        conn.sock.close()

    def add_connecting(self, conn: Conn) -> None:
        """Add a socket whose non-blocking connect is under way."""
        conn.loop = self
        fd = conn.sock.fileno()
        self.conns[fd] = conn
        self.epoll.register(fd, select.EPOLLOUT)

    def connected(self, conn: Conn) -> None:
        self.epoll.modify(conn.sock.fileno(), select.EPOLLIN)

    def run_once(self, timeout: float) -> None:
        conns = self.conns
        for fd, _ in self.epoll.poll(timeout):
            conn = conns.get(fd)
            if conn is not None:
                if conn.connecting:
                    conn.on_connect()
                else:
                    conn.on_readable()

    def run_until(self, done: Callable[[], bool], deadline: float, what: str) -> None:
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"timed out waiting for {what}")
            self.run_once(min(left, 0.05))

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self.remove(conn)
        self.epoll.close()


def tcp_nonblocking(host: str, port: int) -> socket.socket:
    """A socket whose connect is started, not finished (for a storm of connects)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.connect_ex((host, port))
    return sock


def tcp(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)  # blocking: reads happen only after epoll reports data
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


# ------------------------------------------------------------------------------ WebSocket
def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame: masked, as RFC 6455 requires, with the all-zero key so that the
    payload goes out unchanged (any key is valid; the server unmasks whatever it is)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


class WsClient(Conn):
    """A WebSocket client: handshake, then frames to ``on_message``."""

    def __init__(
        self, host: str, port: int, path: str, token: str, deflate: bool, storm: bool = False
    ):
        self.buf = b""
        self.open = False
        self.inflate: zlib._Decompress | None = None
        key = base64.b64encode(os.urandom(16)).decode()
        extension = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        self.handshake = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: deskbell.v1\r\n"
            f"{extension if deflate else ''}Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        if storm:
            self.sock = tcp_nonblocking(host, port)
            self.connecting = True
        else:
            self.sock = tcp(host, port)
            self.sock.sendall(self.handshake)

    def on_connect(self) -> None:
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise BenchError(f"connect failed: {os.strerror(error)}")
        self.sock.setblocking(True)
        self.connecting = False
        self.loop.connected(self)
        self.sock.sendall(self.handshake)

    def on_readable(self) -> None:
        data, now = self.receive()
        if not data:
            self.loop.remove(self)
            self.on_close()
            return
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head = data[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 101"):
                raise BenchError(f"handshake refused: {head.splitlines()[0]}")
            if "permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-15)
            self.open = True
            data = data[end + 4 :]
        pos = 0
        size = len(data)
        while size - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1] & 0x7F
            h = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(data[h : h + 2], "big")
                h += 2
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(data[h : h + 8], "big")
                h += 8
            if size - h < n:
                break
            payload = data[h : h + n]
            pos = h + n
            opcode = b0 & 0x0F
            if opcode == 0x1:
                if b0 & 0x40 and self.inflate is not None:  # RSV1: compressed message
                    payload = self.inflate.decompress(payload + INFLATE_TAIL)
                self.on_message(payload, now)
            elif opcode == 0x9:
                self.send(ws_frame(payload, 0xA))
            elif opcode == 0x8:
                # Answer the close handshake (RFC 6455 section 5.5.1) so the server's
                # graceful stop does not wait for us, then drop the socket.
                with contextlib.suppress(OSError):
                    self.send(ws_frame(payload[:2], 0x8))
                self.loop.remove(self)
                self.on_close()
                return
        if pos < size:
            self.buf = data[pos:]

    def on_message(self, payload: bytes, now: int) -> None:
        raise NotImplementedError

    def on_close(self) -> None:
        pass


class AgentClient(WsClient):
    """An agent on ``/agent``: welcome, resume after ``last_seq``, then live."""

    def __init__(
        self,
        index: int,
        host: str,
        port: int,
        token: str,
        deflate: bool,
        rec: Recorder,
        state: dict[str, int],
        reconnect: bool = False,
    ):
        super().__init__(host, port, "/agent", token, deflate, storm=reconnect)
        self.index = index
        self.rec = rec
        self.state = state
        self.reconnect = reconnect
        """Resume after the last seq this agent saw (a reconnect), not ``welcome``'s."""
        self.phase = 0  # 0 = waiting for welcome, 1 = resuming, 2 = live

    def on_message(self, payload: bytes, now: int) -> None:
        if self.phase:
            i = payload.find(b'"body":"#')
            if i >= 0:  # live, or replayed by the resume
                rec = self.rec
                k, stamp = parse_stamp(payload, i)
                rec.record(self.index, k, stamp, now, self.read_ns)
                s = payload.index(b'"seq":') + 6
                rec.check_seq(self.index, int(payload[s : payload.index(b",", s)]))
                rec.frame_bytes += len(payload)
                return
            if self.phase == 2:
                return
        frame = json.loads(payload)
        if self.phase == 0 and frame["type"] == "welcome":
            if not self.reconnect:
                self.rec.last_seq[self.index] = frame["last_seq"]
            resume = {"type": "resume", "id": "r", "after_seq": self.rec.last_seq[self.index]}
            self.send(ws_frame(json.dumps(resume).encode()))
            self.phase = 1
        elif self.phase == 1 and frame["type"] == "ok" and frame.get("id") == "r":
            if frame.get("truncated"):
                self.state["truncated"] = self.state.get("truncated", 0) + 1
            self.phase = 2
            self.state["live"] += 1
        elif frame["type"] == "error":
            raise BenchError(f"agent {self.index}: {frame}")

    def on_close(self) -> None:
        self.state["closed"] += 1


@dataclass
class Publisher:
    """What every publisher records: send stamps and acknowledgement latencies."""

    events: int
    sent: int = 0
    acked: int = 0
    errors: int = 0
    first_error: str = ""
    max_late: float = 0.0
    """Longest delay of a publish past its due time: how long the loop was busy."""
    late_total: float = 0.0
    send_ns: array = field(default_factory=lambda: array("q"))
    ack_ns: array = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        self.send_ns = array("q", [0]) * self.events
        self.ack_ns = array("q", [-1]) * self.events

    @property
    def outstanding(self) -> int:
        return self.sent - self.acked - self.errors

    def acknowledged(self, k: int, now: int) -> None:
        if 0 <= k < self.events and self.ack_ns[k] < 0:
            self.ack_ns[k] = now - self.send_ns[k]
            self.acked += 1


class DeskbellPublisher(WsClient, Publisher):
    """A service on ``/service`` publishing ``ticket.assigned`` events to one inbox."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        events: int,
        recipients: list[str],
        pad: int,
        keys: bool,
        expect: int,
    ):
        Publisher.__init__(self, events)
        WsClient.__init__(self, host, port, "/service", token, deflate=False)
        self.recipients = recipients
        self.pad = pad
        self.keys = keys
        self.expect = expect
        self.prefix = (
            '{"type":"publish","event":{"kind":"ticket.assigned","recipients":'
            + json.dumps(recipients)
            + ',"title":"Ticket assigned","url":null,"body":"'
        ).encode()
        self.run_id = os.urandom(4).hex()

    def publish(self, k: int) -> None:
        body = stamp_text(k, self.pad)
        key = b',"key":"%s-%d"' % (self.run_id.encode(), k) if self.keys else b""
        self.send_ns[k] = time_ns()
        self.send(ws_frame(self.prefix + body + b'"},"id":%d%s}' % (k, key)))
        self.sent += 1

    def on_message(self, payload: bytes, now: int) -> None:
        i = payload.find(b'"id":')
        if payload.startswith(b'{"type":"ok"') and i >= 0:
            e = i + 5
            while payload[e] in b"0123456789":
                e += 1
            k = int(payload[i + 5 : e])
            n = payload.find(b'"notifications":')
            if n >= 0 and self.expect and int(payload[n + 16 :].split(b"}")[0]) != self.expect:
                self.errors += 1
                self.first_error = self.first_error or payload.decode()
            self.acknowledged(k, now)
        elif payload.startswith(b'{"type":"error"'):
            self.errors += 1
            self.first_error = self.first_error or payload.decode()


class BroadcastSubscriber(WsClient):
    """A subscriber of bench/ws_broadcast.py (the bare websockets reference)."""

    def __init__(self, index: int, host: str, port: int, rec: Recorder, state: dict[str, int]):
        super().__init__(host, port, "/sub", "-", deflate=False)
        self.index = index
        self.rec = rec
        self.state = state

    def on_message(self, payload: bytes, now: int) -> None:
        if payload == b"hi":
            self.state["live"] += 1
            return
        k, stamp = parse_stamp(payload, 0)
        self.rec.record(self.index, k, stamp, now, self.read_ns)
        self.rec.frame_bytes += len(payload)

    def on_close(self) -> None:
        self.state["closed"] += 1


class BroadcastPublisher(WsClient, Publisher):
    """The publisher of bench/ws_broadcast.py: its ``ok`` answers come in publish order."""

    def __init__(self, host: str, port: int, events: int, pad: int):
        Publisher.__init__(self, events)
        WsClient.__init__(self, host, port, "/pub", "-", deflate=False)
        self.pad = pad

    def publish(self, k: int) -> None:
        self.send_ns[k] = time_ns()
        self.send(ws_frame(stamp_text(k, self.pad)))
        self.sent += 1

    def on_message(self, payload: bytes, now: int) -> None:
        self.acknowledged(self.acked + self.errors, now)


class SpreadPublisher:
    """One publisher over several connections (one per node of a scaled-out run): each
    event goes to a node picked at random (seeded, so runs are comparable) or in turn.
    The parts share the send and acknowledgement arrays; counts are their sums."""

    def __init__(self, parts: list[DeskbellPublisher], how: str = "random", seed: int = 1):
        import random

        self.parts = parts
        self.events = parts[0].events
        self.send_ns = parts[0].send_ns
        self.ack_ns = parts[0].ack_ns
        for part in parts[1:]:
            part.send_ns, part.ack_ns = self.send_ns, self.ack_ns
        self.max_late = 0.0
        self.late_total = 0.0
        self.per_part = [0] * len(parts)
        self._pick = (
            (lambda k: k % len(parts))
            if how == "alternate"
            else (lambda k, r=random.Random(seed): r.randrange(len(parts)))
        )

    @property
    def open(self) -> bool:
        return all(p.open for p in self.parts)

    @property
    def sent(self) -> int:
        return sum(p.sent for p in self.parts)

    @property
    def acked(self) -> int:
        return sum(p.acked for p in self.parts)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.parts)

    @property
    def first_error(self) -> str:
        return next((p.first_error for p in self.parts if p.first_error), "")

    @property
    def outstanding(self) -> int:
        return self.sent - self.acked - self.errors

    def publish(self, k: int) -> None:
        i = self._pick(k)
        self.per_part[i] += 1
        self.parts[i].publish(k)


# ------------------------------------------------------------------------------ MQTT 3.1.1
def _remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def mqtt_connect(client_id: str) -> bytes:
    body = _mqtt_str(b"MQTT") + bytes((4, 0x02)) + (300).to_bytes(2, "big")
    body += _mqtt_str(client_id.encode())
    return b"\x10" + _remaining(len(body)) + body


class MqttClient(Conn):
    """MQTT 3.1.1 packets to ``on_packet(first byte, body, now)``."""

    def __init__(self, host: str, port: int, client_id: str):
        self.sock = tcp(host, port)
        self.buf = b""
        self.send(mqtt_connect(client_id))

    def on_readable(self) -> None:
        data, now = self.receive()
        if not data:
            self.loop.remove(self)
            raise BenchError("the broker closed a connection")
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos = 0
        size = len(data)
        while size - pos >= 2:
            h = pos + 1
            n = 0
            shift = 0
            while h < size:
                byte = data[h]
                n |= (byte & 0x7F) << shift
                h += 1
                shift += 7
                if not byte & 0x80:
                    break
            else:
                break
            if size - h < n:
                break
            self.on_packet(data[pos], data[h : h + n], now)
            pos = h + n
        if pos < size:
            self.buf = data[pos:]

    def on_packet(self, b0: int, body: bytes, now: int) -> None:
        raise NotImplementedError


class MqttSubscriber(MqttClient):
    def __init__(
        self,
        index: int,
        host: str,
        port: int,
        topic: str,
        qos: int,
        rec: Recorder,
        state: dict[str, int],
    ):
        super().__init__(host, port, f"dbb-{os.getpid()}-{index}")
        self.index = index
        self.rec = rec
        self.state = state
        topic_b = topic.encode()
        body = (1).to_bytes(2, "big") + _mqtt_str(topic_b) + bytes((qos,))
        self.send(b"\x82" + _remaining(len(body)) + body)

    def on_packet(self, b0: int, body: bytes, now: int) -> None:
        kind = b0 & 0xF0
        if kind == 0x30:
            start = 2 + int.from_bytes(body[:2], "big")
            if b0 & 0x06:
                pid = body[start : start + 2]
                start += 2
                self.send(b"\x40\x02" + pid)
            k, stamp = parse_stamp(body, start)
            self.rec.record(self.index, k, stamp, now, self.read_ns)
            self.rec.frame_bytes += len(body)
        elif kind == 0x90:
            if body[2] == 0x80:
                raise BenchError("the broker refused the subscription")
            self.state["live"] += 1
        elif kind == 0x20 and body[1] != 0:
            raise BenchError(f"the broker refused the connection (code {body[1]})")


class MqttPublisher(MqttClient, Publisher):
    def __init__(self, host: str, port: int, topic: str, qos: int, events: int, pad: int):
        Publisher.__init__(self, events)
        MqttClient.__init__(self, host, port, f"dbb-{os.getpid()}-pub")
        self.topic = _mqtt_str(topic.encode())
        self.qos = qos
        self.pad = pad
        self.connected = False
        self.pid_to_k: dict[int, int] = {}

    def publish(self, k: int) -> None:
        payload = stamp_text(k, self.pad)
        if self.qos:
            pid = k % 65535 + 1
            self.pid_to_k[pid] = k
            body = self.topic + pid.to_bytes(2, "big") + payload
        else:
            body = self.topic + payload
        self.send_ns[k] = time_ns()
        self.send(bytes((0x30 | self.qos << 1,)) + _remaining(len(body)) + body)
        self.sent += 1
        if not self.qos:
            self.acked += 1  # QoS 0 has no acknowledgement: "sent" is all there is

    def on_packet(self, b0: int, body: bytes, now: int) -> None:
        kind = b0 & 0xF0
        if kind == 0x40:
            k = self.pid_to_k.pop(int.from_bytes(body[:2], "big"), -1)
            self.acknowledged(k, now)
        elif kind == 0x20:
            self.connected = body[1] == 0


# ------------------------------------------------------------------------------ NATS
class NatsClient(Conn):
    def __init__(self, host: str, port: int):
        self.sock = tcp(host, port)
        self.buf = b""
        self.send(b'CONNECT {"verbose":false,"pedantic":false,"echo":false}\r\n')

    def on_readable(self) -> None:
        data, now = self.receive()
        if not data:
            self.loop.remove(self)
            raise BenchError("the NATS server closed a connection")
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos = 0
        size = len(data)
        while pos < size:
            e = data.find(b"\r\n", pos)
            if e < 0:
                break
            if data.startswith(b"MSG ", pos):
                n = int(data[data.rfind(b" ", pos, e) + 1 : e])
                if size - (e + 2) < n + 2:
                    break
                self.on_msg(data[e + 2 : e + 2 + n], now)
                pos = e + 4 + n
                continue
            line = data[pos:e]
            pos = e + 2
            if line == b"PING":
                self.send(b"PONG\r\n")
            elif line == b"PONG":
                self.on_pong()
            elif line.startswith(b"-ERR"):
                raise BenchError(f"NATS: {line.decode()}")
        if pos < size:
            self.buf = data[pos:]

    def on_msg(self, payload: bytes, now: int) -> None:
        pass

    def on_pong(self) -> None:
        pass


class NatsSubscriber(NatsClient):
    def __init__(
        self, index: int, host: str, port: int, subject: str, rec: Recorder, state: dict[str, int]
    ):
        super().__init__(host, port)
        self.index = index
        self.rec = rec
        self.state = state
        self.send(b"SUB %s 1\r\nPING\r\n" % subject.encode())

    def on_msg(self, payload: bytes, now: int) -> None:
        k, stamp = parse_stamp(payload, 0)
        self.rec.record(self.index, k, stamp, now, self.read_ns)
        self.rec.frame_bytes += len(payload)

    def on_pong(self) -> None:
        self.state["live"] += 1


class NatsPublisher(NatsClient, Publisher):
    def __init__(self, host: str, port: int, subject: str, events: int, pad: int):
        Publisher.__init__(self, events)
        NatsClient.__init__(self, host, port)
        self.subject = subject.encode()
        self.pad = pad
        self.connected = False
        self.send(b"PING\r\n")

    def on_pong(self) -> None:
        self.connected = True

    def publish(self, k: int) -> None:
        payload = stamp_text(k, self.pad)
        self.send_ns[k] = time_ns()
        self.send(b"PUB %s %d\r\n%s\r\n" % (self.subject, len(payload), payload))
        self.sent += 1
        self.acked += 1  # core NATS has no publish acknowledgement


# ------------------------------------------------------------------------------ driving
def connect_all(
    loop: Loop,
    make: Callable[[int], Conn],
    count: int,
    state: dict[str, int],
    in_flight: int = 64,
    timeout: float = 120.0,
) -> None:
    """Open ``count`` subscribers, at most ``in_flight`` of them still handshaking."""
    deadline = time.monotonic() + timeout
    opened = 0
    while opened < count:
        while opened < count and opened - state["live"] < in_flight:
            loop.add(make(opened))
            opened += 1
        loop.run_once(0.01)
        if time.monotonic() > deadline:
            raise BenchError(f"only {state['live']} of {count} subscribers came up")
    loop.run_until(lambda: state["live"] >= count, deadline, "the last subscribers")


QUIET_SECONDS = 15.0


@dataclass
class PaceResult:
    started_ns: int
    finished_ns: int


def pace(
    loop: Loop,
    pub: Publisher,
    publish: Callable[[int], None],
    rate: float,
    window: int,
    drained: Callable[[], bool],
    progress_of: Callable[[], int],
    drain_timeout: float,
    max_seconds: float = 0,
) -> PaceResult:
    """Publish ``pub.events`` events at ``rate`` per second (0: as fast as ``window``
    outstanding acknowledgements allow; stop early after ``max_seconds`` if set), then
    wait for ``drained``."""
    start = time.monotonic()
    stop_at = start + max_seconds if max_seconds else float("inf")
    started_ns = time_ns()
    k = 0
    events = pub.events
    while k < events and (rate or time.monotonic() < stop_at):
        if rate:
            due = start + k / rate
            left = due - time.monotonic()
            if left > 0:
                loop.run_once(min(left, 0.05))
                continue
        if pub.outstanding >= window:
            loop.run_once(0.05)
            continue
        if rate:
            late = time.monotonic() - due
            if late > pub.max_late:
                pub.max_late = late
            pub.late_total += late
        publish(k)
        k += 1
        if not rate:
            loop.run_once(0)
    # Wait for the stragglers: as long as deliveries keep coming (a server that fell
    # behind is slow, not lossy), but never longer than ``drain_timeout``.
    deadline = time.monotonic() + drain_timeout
    quiet_since = time.monotonic()
    seen = -1
    while not drained() and time.monotonic() < deadline:
        loop.run_once(0.05)
        progress = progress_of()
        if progress != seen:
            seen, quiet_since = progress, time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_SECONDS:
            break
    return PaceResult(started_ns, time_ns())


def percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[i])
