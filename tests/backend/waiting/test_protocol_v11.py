"""The v1.1 frames and objects (waiting visitors) decode and encode as PROTOCOL.md says."""

from __future__ import annotations

import json

import msgspec
import pytest

from backend import protocol


def _decode(frame: dict[str, object]) -> object:
    return protocol.agent_decoder.decode(json.dumps(frame))


def test_queue_claim_resolve_decode_to_typed_requests() -> None:
    assert _decode({"type": "queue", "id": 1}) == protocol.Queue(id=1)
    assert _decode({"type": "claim", "id": "c", "conversation_id": "c_1"}) == protocol.Claim(
        id="c", conversation_id="c_1"
    )
    assert _decode({"type": "resolve", "id": 2, "conversation_id": "c_1"}) == protocol.Resolve(
        id=2, conversation_id="c_1"
    )


def test_seen_needs_no_id_and_takes_shown_or_clicked() -> None:
    seen = _decode({"type": "seen", "ids": ["n_1", "n_2"], "how": "clicked"})
    assert seen == protocol.Seen(ids=["n_1", "n_2"], how="clicked")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "seen", "ids": ["n_1"], "how": "read"},
        {"type": "seen", "ids": "n_1", "how": "shown"},
        {"type": "seen", "how": "shown"},
        {"type": "claim", "id": 1},
        {"type": "resolve", "conversation_id": "c_1"},
        {"type": "queue"},
    ],
)
def test_malformed_v11_frames_are_bad_request(frame: dict[str, object]) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        _decode(frame)
    assert caught.value.code == "bad_request"


def test_conversation_object_carries_waiting_since_and_old_objects_still_decode() -> None:
    old = {
        "id": "c_1",
        "inbox": {"id": "i_1", "name": "Sales"},
        "status": "open",
        "assignee": None,
        "visitor": {"name": "Dana"},
        "messages": [],
    }
    assert protocol.decode_as(json.dumps(old), protocol.Conversation).waiting_since is None
    new = protocol.decode_as(
        json.dumps(old | {"waiting_since": "2026-12-07T10:00:00.000Z"}), protocol.Conversation
    )
    assert json.loads(protocol.encode(new))["waiting_since"] == "2026-12-07T10:00:00.000Z"


def test_queue_changed_and_withdraw_pushes_round_trip() -> None:
    entry = protocol.QueueEntry(
        id="c_1",
        inbox=protocol.InboxRef("i_1", "Sales"),
        visitor=protocol.Visitor("Dana"),
        assignee=None,
        waiting_since=None,
        last_message=protocol.Message(
            "m_1", protocol.Author("visitor", None, "Dana"), "hi", "2026-12-07T10:00:00.000Z"
        ),
    )
    push = protocol.QueueChangedPush(conversation=entry, waiting=False)
    raw = protocol.encode(push)
    assert json.loads(raw)["type"] == "queue_changed"
    assert protocol.decode_as(raw, protocol.QueueChangedPush) == push
    withdraw = protocol.WithdrawPush(
        ids=["n_1"], reason="claimed", by=protocol.AgentRef("a_1", "Ann")
    )
    assert json.loads(protocol.encode(withdraw)) == {
        "type": "withdraw",
        "ids": ["n_1"],
        "reason": "claimed",
        "by": {"id": "a_1", "name": "Ann"},
    }
    ok = protocol.QueueOk(id=3, conversations=[entry])
    assert protocol.decode_as(protocol.encode(ok), protocol.QueueOk) == ok


def test_waiting_data_says_early_only_when_it_was() -> None:
    on_time = protocol.WaitingData(waiting_since="t", step=1, waited_s=60)
    assert json.loads(protocol.encode(on_time)) == {
        "waiting_since": "t",
        "step": 1,
        "waited_s": 60,
    }
    early = protocol.WaitingData(waiting_since="t", step=2, waited_s=31, early=True)
    assert json.loads(protocol.encode(early))["early"] is True


def test_the_waiting_kind_cannot_be_published_by_an_integration() -> None:
    with pytest.raises(protocol.ProtocolError, match="made by the backend"):
        protocol.decode_event(
            {
                "kind": protocol.KIND_CONVERSATION_WAITING,
                "recipients": ["a@x"],
                "title": "t",
            }
        )
    assert protocol.category_of(protocol.KIND_CONVERSATION_WAITING) == "chat"


@pytest.mark.parametrize("target", ["inbox", "inbox:Support", "ann@example.com"])
def test_escalation_steps_take_the_three_target_forms(target: str) -> None:
    policy = msgspec.convert(
        {"inbox": "Sales", "escalate": [{"after_s": 60, "to": target}]}, protocol.InboxPolicy
    )
    assert policy.escalate[0].to == target
    assert policy.unseen_after_s == protocol.DEFAULT_UNSEEN_AFTER_S


@pytest.mark.parametrize(
    "step", [{"after_s": 0}, {"after_s": -5}, {"after_s": 1.5}, {"after_s": 10, "to": "team"}]
)
def test_escalation_steps_refuse_what_the_contract_does_not_allow(step: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(step, protocol.EscalationStep)
