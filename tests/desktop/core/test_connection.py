"""ConnectionService against a real WebSocket server on a free port (no sleeps)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from core_agent_server import AGENT, GOOD_TOKEN, AgentServer, FreezableProxy
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.protocol import (
    Conversation,
    ConversationOk,
    Error,
    HistoryOk,
    InboxRef,
    MarkRead,
    Message,
    MessageOk,
    MessagePush,
    Presence,
    ReadPush,
    UnreadOk,
    UnreadPush,
    Visitor,
    encode,
)
from desktop_agent.connection import ConnectionService, sign_in, sign_out
from desktop_agent.core.session import ResumeResult
from desktop_agent.core.state import CursorStore
from desktop_agent.errors import (
    AuthRejected,
    ConnectionLost,
    NotConnected,
    RequestFailed,
    ServerUnreachable,
)
from tests.support.backend import in_process_backend


class Recorder:
    """Records every signal of a ConnectionService and lets a test wait for a condition."""

    def __init__(self, service: ConnectionService) -> None:
        self.states: list[str] = []
        self.welcomes: list[Any] = []
        self.live: list[Any] = []
        self.resumes: list[ResumeResult] = []
        self.unread: list[dict[str, int]] = []
        self.reads: list[list[str]] = []
        self.messages: list[tuple[str, Any]] = []
        self.auth_failures: list[str] = []
        self.delivered: list[int] = []  # seqs in the order the signals carried them
        self.changed = asyncio.Event()
        service.stateChanged.connect(lambda s: self._add(self.states, s))
        service.welcomed.connect(lambda w: self._add(self.welcomes, w))
        service.notificationReceived.connect(lambda n: self._add(self.live, n))
        service.resumed.connect(lambda r: self._add(self.resumes, r))
        service.notificationReceived.connect(lambda n: self.delivered.append(n.seq))
        service.resumed.connect(lambda r: self.delivered.extend(n.seq for n in r.notifications))
        service.unreadChanged.connect(lambda u: self._add(self.unread, u))
        service.readChanged.connect(lambda ids: self._add(self.reads, ids))
        service.messageReceived.connect(lambda c, m: self._add(self.messages, (c, m)))
        service.authFailed.connect(lambda r: self._add(self.auth_failures, r))

    def _add(self, target: list[Any], item: Any) -> None:
        target.append(item)
        self.changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def seen_seqs(self) -> list[int]:
        """Every notification delivered, replayed or live, in the order delivered."""
        order: list[int] = []
        for name, item in self._timeline():
            if name == "live":
                order.append(item.seq)
            else:
                order.extend(n.seq for n in item.notifications)
        return order

    def _timeline(self) -> Iterator[tuple[str, Any]]:
        # Signals are recorded in separate lists; rebuild the delivery order from seqs.
        items: list[tuple[int, str, Any]] = [(n.seq, "live", n) for n in self.live]
        items += [
            (r.notifications[0].seq if r.notifications else 0, "resume", r) for r in self.resumes
        ]
        for _, name, item in sorted(items, key=lambda t: t[0]):
            yield name, item


def no_wait() -> Iterator[float]:
    return itertools.repeat(0.0)


def forever() -> Iterator[float]:
    return itertools.repeat(3600.0)


@pytest.fixture
async def server() -> AsyncIterator[AgentServer]:
    async with AgentServer() as running:
        yield running


@pytest.fixture
def cursors(tmp_path: Path) -> CursorStore:
    return CursorStore(tmp_path)


def make_service(
    server: AgentServer,
    cursors: CursorStore,
    *,
    token: str = GOOD_TOKEN,
    delays: Callable[[], Iterator[float]] = no_wait,
    **kwargs: Any,
) -> ConnectionService:
    kwargs.setdefault("quick_delay", lambda: 0.0)
    return ConnectionService(
        server.url, token, cursors, delays=delays, ping_interval=None, **kwargs
    )


@pytest.fixture
async def connected(
    server: AgentServer, cursors: CursorStore
) -> AsyncIterator[tuple[ConnectionService, Recorder]]:
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    yield service, recorder
    await service.stop()


# --- connecting and resuming ------------------------------------------------------


async def test_the_token_never_reaches_the_logs_even_at_debug_level(
    server: AgentServer, cursors: CursorStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    await service.stop()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("desktop_agent")]
    assert any("Authorization" in line for line in ours)  # the header was logged...
    assert not any(GOOD_TOKEN in line for line in ours)  # ...without its value


async def test_it_connects_with_the_token_and_subprotocol_and_resumes(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    service, recorder = connected
    assert recorder.states[:2] == ["connecting", "connected"]
    assert recorder.welcomes[0].agent == AGENT
    assert service.agent == AGENT
    assert server.sessions[0].ws.subprotocol == "deskbell.v1"
    assert len(server.resumes) == 1


async def test_a_first_start_resumes_after_the_servers_last_seq_without_replaying_old_ones(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.store(3)
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert server.resumes[0].after_seq == 3
    assert recorder.resumes[0].notifications == []
    await service.stop()


async def test_a_known_cursor_replays_what_was_missed_as_one_resume(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.store(5)
    cursors.save(server.url, AGENT.id, 2)
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert server.resumes[0].after_seq == 2
    assert [n.seq for n in recorder.resumes[0].notifications] == [3, 4, 5]
    assert recorder.live == []
    assert cursors.load(server.url, AGENT.id) == 5
    await service.stop()


async def test_a_truncated_replay_says_so(server: AgentServer, cursors: CursorStore) -> None:
    server.store(10)
    cursors.save(server.url, AGENT.id, 1)
    service = make_service(server, cursors, resume_limit=4)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    result = recorder.resumes[0]
    assert result.truncated
    assert [n.seq for n in result.notifications] == [7, 8, 9, 10]
    assert len(server.resumes) == 1  # a truncation is not a gap
    await service.stop()


async def test_live_notifications_arrive_in_order_with_their_unread_counts(
    server: AgentServer, connected: tuple[ConnectionService, Recorder], cursors: CursorStore
) -> None:
    _, recorder = connected
    await server.publish(3)
    await recorder.wait_until(lambda: len(recorder.live) == 3)
    assert [n.seq for n in recorder.live] == [1, 2, 3]
    assert recorder.unread[-1] == {"total": 3, "chat": 3}


async def test_the_cursor_is_saved_while_streaming_and_when_stopping(
    server: AgentServer, cursors: CursorStore, tmp_path: Path
) -> None:
    saves: list[int] = []
    saved = asyncio.Event()

    class WatchedStore(CursorStore):
        def save(self, server_url: str, agent_id: str, last_seq: int) -> None:
            super().save(server_url, agent_id, last_seq)
            saves.append(last_seq)
            saved.set()

    service = make_service(server, WatchedStore(tmp_path), cursor_save_delay=0.0)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    await server.publish(2)
    await recorder.wait_until(lambda: len(recorder.live) == 2)
    async with asyncio.timeout(5):
        while 2 not in saves:
            saved.clear()
            await saved.wait()
    assert CursorStore(tmp_path).load(server.url, AGENT.id) == 2
    slow = make_service(server, cursors, cursor_save_delay=3600.0)
    slow_recorder = Recorder(slow)
    await service.stop()
    slow.start()
    await slow_recorder.wait_until(lambda: len(slow_recorder.resumes) == 1)
    await server.publish(1)
    await slow_recorder.wait_until(lambda: len(slow_recorder.live) == 1)
    await slow.stop()  # an hour before the next timed save: stopping must write it
    assert CursorStore(tmp_path).load(server.url, AGENT.id) == 3


async def test_a_lost_live_frame_is_fetched_again_and_nothing_is_delivered_twice(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    _, recorder = connected
    await server.publish(1)
    await server.publish(1, lose=True)  # seq 2 never reaches the socket
    await server.publish(1)  # seq 3 arrives: the client sees the gap
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    gap_resume = recorder.resumes[1]
    assert gap_resume.after_gap
    assert [n.seq for n in gap_resume.notifications] == [2, 3]
    assert server.resumes[-1].after_seq == 1
    await server.publish(1)
    await recorder.wait_until(lambda: len(recorder.live) == 2)
    assert [n.seq for n in recorder.live] == [1, 4]
    assert recorder.seen_seqs() == [1, 2, 3, 4]


async def test_a_replay_that_misses_a_frame_is_asked_for_again(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.store(4)
    cursors.save(server.url, AGENT.id, 0)
    server.drop_from_replay = {3}
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    assert [n.seq for n in recorder.resumes[0].notifications] == [1, 2]
    assert [n.seq for n in recorder.resumes[1].notifications] == [3, 4]
    assert [r.after_seq for r in server.resumes] == [0, 2]
    await service.stop()


# --- losing the connection ---------------------------------------------------------


async def test_after_a_dropped_connection_it_reconnects_and_resumes_where_it_was(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    _, recorder = connected
    await server.publish(2)
    await recorder.wait_until(lambda: len(recorder.live) == 2)
    await server.close_all(1011, "boom")
    await recorder.wait_until(lambda: "disconnected" in recorder.states)
    server.store(3)  # arrive while the agent is away
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    assert server.resumes[-1].after_seq == 2
    assert [n.seq for n in recorder.resumes[-1].notifications] == [3, 4, 5]
    assert recorder.states[-1] == "connected"
    await server.publish(1)
    await recorder.wait_until(lambda: len(recorder.live) == 3)
    assert recorder.seen_seqs() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("code", [1001, 1013])
async def test_a_going_away_close_reconnects_quickly_without_backoff(
    server: AgentServer, cursors: CursorStore, code: int
) -> None:
    quick_calls: list[None] = []

    def quick() -> float:
        quick_calls.append(None)
        return 0.0

    service = make_service(server, cursors, delays=forever, quick_delay=quick)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    await server.close_all(code, "restarting")
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    assert quick_calls == [None]
    assert server.handshakes == 2
    await service.stop()


async def test_other_closes_wait_for_the_backoff_delay_and_a_wake_up_cuts_it_short(
    server: AgentServer, cursors: CursorStore
) -> None:
    service = make_service(server, cursors, delays=forever)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    await server.close_all(1011, "internal")
    await recorder.wait_until(lambda: recorder.states[-1] == "disconnected")
    # An hour of backoff ahead; the network coming back must not wait for it.
    assert server.handshakes == 1
    service.network_changed()
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    assert server.handshakes == 2
    await service.stop()


async def test_an_unreachable_server_is_retried_with_the_injected_delays(
    cursors: CursorStore,
) -> None:
    async with AgentServer() as server:
        url = server.url
    given: list[float] = []

    def delays() -> Iterator[float]:
        for delay in itertools.repeat(0.0):
            given.append(delay)
            yield delay

    service = ConnectionService(url, GOOD_TOKEN, cursors, delays=delays, ping_interval=None)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: recorder.states.count("disconnected") >= 3)
    assert len(given) >= 2
    assert "connected" not in recorder.states
    await service.stop()


async def test_a_revoked_token_close_signs_out_and_stops_reconnecting(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    service, recorder = connected
    await server.close_all(4001, "token revoked")
    await recorder.wait_until(lambda: recorder.auth_failures != [])
    assert recorder.states[-1] == "signed_out"
    assert "Sign in again" in recorder.auth_failures[0]
    assert not service.running
    assert server.handshakes == 1


async def test_a_server_that_is_not_ready_is_retried_not_treated_as_sign_out(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.unavailable = True
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await server.wait_until(lambda: server.handshakes >= 2)
    server.unavailable = False
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert recorder.auth_failures == []
    await service.stop()


async def test_the_backoff_starts_again_after_a_connection_that_got_as_far_as_welcome(
    server: AgentServer, cursors: CursorStore
) -> None:
    generators: list[None] = []

    def delays() -> Iterator[float]:
        generators.append(None)
        return itertools.repeat(0.0)

    service = make_service(server, cursors, delays=delays)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert len(generators) == 1
    await server.close_all(1011)
    await recorder.wait_until(lambda: len(recorder.resumes) == 2)
    assert len(generators) == 2
    await service.stop()


async def test_after_signing_in_again_the_same_service_reconnects_with_the_new_token(
    server: AgentServer, cursors: CursorStore
) -> None:
    service = make_service(server, cursors, token="dbat_revoked")
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: recorder.states[-1:] == ["signed_out"])
    service.set_token(GOOD_TOKEN)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert recorder.states[-1] == "connected"
    await service.stop()


async def test_a_refused_token_at_the_handshake_signs_out(
    server: AgentServer, cursors: CursorStore
) -> None:
    service = make_service(server, cursors, token="dbat_revoked")
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: recorder.auth_failures != [])
    assert recorder.states == ["connecting", "signed_out"]
    assert server.rejected_handshakes == 1
    assert not service.running


async def test_a_dead_link_is_noticed_by_keepalive_pings_and_replaced(
    server: AgentServer, cursors: CursorStore
) -> None:
    async with FreezableProxy(server.port) as proxy:
        service = ConnectionService(
            proxy.url,
            GOOD_TOKEN,
            cursors,
            delays=no_wait,
            ping_interval=0.05,
            ping_timeout=0.2,
            close_timeout=0.1,
        )
        recorder = Recorder(service)
        service.start()
        await recorder.wait_until(lambda: len(recorder.resumes) == 1)
        proxy.freeze_open_links()
        await recorder.wait_until(lambda: len(recorder.resumes) == 2)
        assert recorder.states[-3:] == ["disconnected", "connecting", "connected"]
        await service.stop()


async def test_a_wake_up_checks_the_link_and_replaces_a_dead_one_at_once(
    server: AgentServer, cursors: CursorStore
) -> None:
    async with FreezableProxy(server.port) as proxy:
        service = ConnectionService(
            proxy.url,
            GOOD_TOKEN,
            cursors,
            delays=no_wait,
            ping_interval=None,
            probe_timeout=0.2,
        )
        recorder = Recorder(service)
        service.start()
        await recorder.wait_until(lambda: len(recorder.resumes) == 1)
        proxy.freeze_open_links()
        service.wake()  # keep-alive is off: only the wake-up probe can notice
        await recorder.wait_until(lambda: len(recorder.resumes) == 2)
        await service.stop()


async def test_a_cursor_from_before_a_server_reset_does_not_swallow_new_notifications(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.store(3)
    cursors.save(server.url, AGENT.id, 500)
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert server.resumes[0].after_seq == 3
    await server.publish(1)
    await recorder.wait_until(lambda: len(recorder.live) == 1)
    assert recorder.live[0].seq == 4
    await service.stop()


async def test_unread_counts_of_notifications_newer_than_welcome_are_applied_after_replay(
    server: AgentServer, cursors: CursorStore
) -> None:
    server.store(2)
    cursors.save(server.url, AGENT.id, 0)
    server.unread_in_replay = True
    server.before_replay = lambda: server.store(1)  # arrives between welcome and resume
    service = make_service(server, cursors)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)
    assert recorder.unread[0] == {"total": 2, "chat": 2}  # from welcome
    assert recorder.unread[-1] == {"total": 3, "chat": 3}
    await service.stop()


async def test_frames_it_cannot_read_are_skipped_without_dropping_the_connection(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    _, recorder = connected
    ws = server.sessions[0].ws
    await ws.send("{not json", text=True)
    await ws.send('{"type":"something_new","x":1}', text=True)
    await ws.send('{"type":"error","id":null,"code":"bad_request","message":"x"}', text=True)
    await ws.send('{"type":"notification","notification":{"seq":"x"}}', text=True)
    await server.publish(1)
    await recorder.wait_until(lambda: len(recorder.live) == 1)
    assert server.handshakes == 1


STEPS = ["live", "lost", "drop_link", "going_away", "away", "burst"]


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=10))
def test_any_mix_of_lost_frames_and_reconnects_delivers_each_notification_once_in_order(
    steps: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run_steps(steps, Path(folder)))


async def _run_steps(steps: list[str], folder: Path) -> None:
    async with AgentServer() as server:
        service = make_service(server, CursorStore(folder))
        recorder = Recorder(service)
        service.start()

        def caught_up() -> bool:
            done = recorder.delivered[-1:] == [len(server.stored)] or not server.stored
            return done and service.state == "connected" and server.live_sessions() == 1

        await recorder.wait_until(caught_up)
        for step in steps:
            if step == "live":
                await server.publish(1)
            elif step == "burst":
                await server.publish(5)
            elif step == "lost":
                await server.publish(1, lose=True)
                await server.publish(1)
            elif step == "drop_link":
                await server.close_all(1011)
            elif step == "going_away":
                await server.close_all(1001)
            elif step == "away":
                await server.close_all(1011)
                server.store(2)
            await recorder.wait_until(caught_up)
        await service.stop()
    assert recorder.delivered == list(range(1, len(server.stored) + 1))


# --- pushes and requests ------------------------------------------------------------


async def test_read_unread_and_message_pushes_become_signals(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    _, recorder = connected
    message = Message(id="m_1", author=_visitor(), body="hello", created_at="2026-11-25T10:00:00Z")
    await server.push(ReadPush(ids=["n_1", "n_2"]))
    await server.push(UnreadPush(unread={"total": 0, "chat": 0}))
    await server.push(MessagePush(conversation_id="c_1", message=message))
    await recorder.wait_until(lambda: len(recorder.messages) == 1)
    assert recorder.reads == [["n_1", "n_2"]]
    assert recorder.unread[-1] == {"total": 0, "chat": 0}
    assert recorder.messages == [("c_1", message)]


async def test_replies_are_matched_to_requests_by_id_even_out_of_order(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    service, _ = connected
    held: list[Any] = []

    async def slow_history(request: Any) -> bytes | None:
        held.append(request)
        return None  # answered later, after the next request

    async def mark_read(request: Any) -> bytes:
        return encode(UnreadOk(id=request.id, unread={"total": 1, "chat": 1}))

    server.handlers = {"history": slow_history, "mark_read": mark_read}
    history = asyncio.create_task(service.history(before_seq=10, limit=2))
    await server.wait_until(lambda: bool(held))
    assert await service.mark_read(ids=["n_1"]) == {"total": 1, "chat": 1}
    ws = server.sessions[0].ws
    await ws.send(encode(HistoryOk(id=held[0].id, items=[], more=False)), text=True)
    page = await history
    assert page.more is False
    sent = server.sessions[0].received
    assert any(isinstance(f, MarkRead) and f.ids == ["n_1"] for f in sent)


async def test_an_error_reply_raises_request_failed_with_code_and_message(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    service, _ = connected

    async def not_found(request: Any) -> bytes:
        return encode(Error(id=request.id, code="not_found", message="no such conversation"))

    server.handlers = {"conversation": not_found}
    with pytest.raises(RequestFailed) as caught:
        await service.conversation("c_404")
    assert caught.value.code == "not_found"
    assert caught.value.message == "no such conversation"


async def test_conversation_reply_and_assign_return_protocol_objects(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    service, _ = connected
    convo = Conversation(
        id="c_1",
        inbox=InboxRef(id="i_1", name="Support"),
        status="open",
        assignee=None,
        visitor=Visitor(name="Dana"),
        messages=[],
    )
    stored = Message(id="m_9", author=_visitor(), body="ok", created_at="2026-11-25T10:00:00Z")

    async def conversation(request: Any) -> bytes:
        return encode(ConversationOk(id=request.id, conversation=convo))

    async def reply(request: Any) -> bytes:
        return encode(MessageOk(id=request.id, message=stored))

    server.handlers = {"conversation": conversation, "reply": reply}
    assert await service.conversation("c_1") == convo
    assert await service.reply("c_1", "ok", "cm_1") == stored
    await service.assign("c_1", "a_1")
    await service.presence("dnd")
    received = server.sessions[0].received
    await server.wait_until(lambda: any(isinstance(f, Presence) for f in received))
    kinds = [type(f).__name__ for f in received]
    assert kinds[1:] == ["GetConversation", "Reply", "Assign", "Presence"]


async def test_requests_without_a_connection_raise_not_connected(
    server: AgentServer, cursors: CursorStore
) -> None:
    service = make_service(server, cursors)
    with pytest.raises(NotConnected):
        await service.mark_all_read()
    with pytest.raises(NotConnected):
        await service.presence("away")


async def test_a_request_waiting_when_the_connection_drops_fails_with_connection_lost(
    server: AgentServer, cursors: CursorStore
) -> None:
    service = make_service(server, cursors, delays=forever)
    recorder = Recorder(service)
    service.start()
    await recorder.wait_until(lambda: len(recorder.resumes) == 1)

    async def never(request: Any) -> None:
        return None

    server.handlers = {"history": never}
    pending = asyncio.create_task(service.history())
    await server.wait_until(lambda: len(server.sessions[0].received) == 2)
    await server.close_all(1011)
    with pytest.raises(ConnectionLost):
        await pending
    await service.stop()


# --- sign-in ---------------------------------------------------------------------------


async def test_sign_in_returns_the_token_and_agent(server: AgentServer) -> None:
    token, agent = await sign_in(server.url, "ada@example.org", "right", "laptop")
    assert token == GOOD_TOKEN
    assert agent == AGENT


async def test_a_wrong_password_is_rejected_with_a_reason_for_a_person(server: AgentServer) -> None:
    with pytest.raises(AuthRejected, match="email or password"):
        await sign_in(server.url, "ada@example.org", "wrong")


async def test_too_many_attempts_say_what_the_server_said_about_when_to_try_again(
    tmp_path: Path,
) -> None:
    """The real server's refusal names the wait (it depends on the window); the app
    passes it on instead of a fixed "ten minutes"."""
    async with in_process_backend(tmp_path) as backend:
        await backend.seed({"ada@example.org": ["Support"]}, password="right")
        refusal: RequestFailed | None = None
        for _ in range(50):  # the per-email limit is well below this
            try:
                await sign_in(backend.url, "ada@example.org", "wrong")
            except AuthRejected:
                continue
            except RequestFailed as exc:
                refusal = exc
                break
    assert refusal is not None and refusal.code == "rate_limited"
    assert "ten minutes" not in str(refusal)
    assert re.fullmatch(r"Too many sign-in attempts; try again in [0-9]+ \w+\.", str(refusal))


async def test_sign_out_revokes_the_token_on_the_server(server: AgentServer) -> None:
    await sign_out(server.url, GOOD_TOKEN)
    assert server.logged_out == [GOOD_TOKEN]


async def test_an_unreachable_server_is_reported_plainly() -> None:
    async with AgentServer() as gone:
        url = gone.url
    with pytest.raises(ServerUnreachable, match="Check the address"):
        await sign_in(url, "ada@example.org", "right")


def _visitor() -> Any:
    from backend.protocol import Author

    return Author(kind="visitor", id=None, name="Dana")


async def test_text_from_the_server_is_cleaned_before_anything_shows_it(
    server: AgentServer, connected: tuple[ConnectionService, Recorder]
) -> None:
    _, recorder = connected
    await server.publish(1, title="\u202eDana\x00\nSmith", body="Hi\x1b[31m\r\nthere\u200b")
    await recorder.wait_until(lambda: len(recorder.live) == 1)
    assert (recorder.live[0].title, recorder.live[0].body) == ("Dana Smith", "Hi[31m\nthere")
