"""NotificationListModel and NotificationFilterProxy, without any window."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex

from backend.protocol import Notification
from desktop_agent.ui.notification_model import (
    NotificationFilterProxy,
    NotificationListModel,
    Role,
)

Make = Callable[..., Notification]


def ids(model: Any) -> list[str]:
    return [model.index(r, 0).data(Role.Id) for r in range(model.rowCount())]


def test_model_passes_qtmodeltester_while_rows_arrive(
    qtmodeltester: Any, make_notification: Make
) -> None:
    model = NotificationListModel()
    qtmodeltester.check(model)
    model.upsert([make_notification(s) for s in (3, 1, 2)])
    model.upsert([make_notification(5), make_notification(4, category="ticket")])
    model.mark_read(["n1"])
    model.add_history([make_notification(0)])
    model.remove(["n2"])
    qtmodeltester.check(model)


def test_rows_are_newest_first_whatever_the_arrival_order(make_notification: Make) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(s) for s in (2, 7, 4)])
    model.upsert([make_notification(9)])
    model.add_history([make_notification(1)])
    model.upsert([make_notification(5), make_notification(3)])
    assert ids(model) == ["n9", "n7", "n5", "n4", "n3", "n2", "n1"]
    assert model.oldest_seq() == 1
    assert model.newest_seq() == 9


def test_replayed_notification_updates_its_row_instead_of_adding_one(
    make_notification: Make,
) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(1), make_notification(2)])
    changed: list[int] = []
    model.dataChanged.connect(lambda first, last, roles: changed.append(first.row()))
    model.upsert([make_notification(1, read=True, title="Updated")])
    assert model.rowCount() == 2
    assert model.index(1, 0).data(Role.Title) == "Updated"
    assert model.index(1, 0).data(Role.Read) is True
    assert changed == [1]


def test_a_contiguous_batch_is_inserted_with_one_insert(make_notification: Make) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(s) for s in range(100, 200)])
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda parent, first, last: inserts.append((first, last)))
    model.add_history([make_notification(s) for s in range(0, 100)])
    model.upsert([make_notification(s) for s in range(200, 250)])
    assert inserts == [(100, 199), (0, 49)]


def test_a_scattered_batch_is_inserted_once_per_gap(make_notification: Make) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(s) for s in (10, 20)])
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda parent, first, last: inserts.append((first, last)))
    model.upsert([make_notification(s) for s in (25, 24, 15, 14, 5)])
    assert len(inserts) == 3
    assert [model.index(r, 0).data(Role.Seq) for r in range(7)] == [25, 24, 20, 15, 14, 10, 5]


def test_roles_expose_every_field(make_notification: Make) -> None:
    model = NotificationListModel()
    item = make_notification(3, url="https://desk.example/c/3")
    model.upsert([item])
    index = model.index(0, 0)
    assert index.data(Role.Id) == "n3"
    assert index.data(Role.Seq) == 3
    assert index.data(Role.Kind) == "chat.message.created"
    assert index.data(Role.Category) == "chat"
    assert index.data(Role.Title) == item.title
    assert index.data(Role.Body) == item.body
    assert index.data(Role.ConversationId) == "c3"
    assert index.data(Role.Url) == "https://desk.example/c/3"
    assert index.data(Role.CreatedAt) == item.created_at
    assert index.data(Role.Created).isoformat() == item.created_at
    assert index.data(Role.Read) is False
    assert index.data(Role.Data) == {}
    assert index.data(Role.IsChat) is True
    assert index.data(Role.Notification) is item
    assert b"conversationId" in model.roleNames().values()


def test_mark_read_by_ids_by_conversation_and_by_category(make_notification: Make) -> None:
    model = NotificationListModel()
    model.upsert(
        [
            make_notification(1, conversation_id="a"),
            make_notification(2, conversation_id="a"),
            make_notification(3, conversation_id="b"),
            make_notification(4, category="ticket"),
            make_notification(5, category="billing"),
        ]
    )
    assert model.unread_count() == 5
    model.mark_read(["n5", "unknown"])
    assert model.unread_count("billing") == 0
    model.mark_conversation_read("a")
    assert [model.get(i).read for i in ("n1", "n2", "n3")] == [True, True, False]  # type: ignore[union-attr]
    model.mark_category_read("chat")
    assert model.unread_count("chat") == 0
    assert model.unread_categories() == ["ticket"]
    model.mark_category_read(None)
    assert model.unread_count() == 0


def test_unread_counts_signal_fires_only_when_counts_change(
    qtbot: Any, make_notification: Make
) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(1)])
    with qtbot.waitSignal(model.unreadCountsChanged):
        model.mark_read(["n1"])
    with qtbot.assertNotEmitted(model.unreadCountsChanged):
        model.mark_read(["n1"])


def test_hundred_thousand_rows_load_and_mark_read_quickly(make_notification: Make) -> None:
    items = [make_notification(s, category="chat" if s % 3 else "ticket") for s in range(100_000)]
    model = NotificationListModel()
    started = time.perf_counter()
    for page in range(0, 100_000, 200):  # pages arrive newest first, like history
        model.add_history(items[99_800 - page : 100_000 - page])
    model.mark_category_read("ticket")
    elapsed = time.perf_counter() - started
    assert model.rowCount() == 100_000
    assert model.row_of("n0") == 99_999
    assert elapsed < 5.0


# ----------------------------------------------------------------- proxy


def proxy_over(model: NotificationListModel) -> NotificationFilterProxy:
    proxy = NotificationFilterProxy()
    proxy.setSourceModel(model)
    return proxy


def sample(make_notification: Make) -> NotificationListModel:
    model = NotificationListModel()
    model.upsert(
        [
            make_notification(1, title="Dana Smith · Support", body="My ORDER is late"),
            make_notification(2, category="ticket", title="Ticket #12 updated", body="order 5521"),
            make_notification(3, title="Lee · Sales", body="pricing question"),
            make_notification(4, category="system", title="Maintenance tonight", body=""),
        ]
    )
    return model


def test_proxy_passes_qtmodeltester(qtmodeltester: Any, make_notification: Make) -> None:
    model = sample(make_notification)
    proxy = proxy_over(model)
    qtmodeltester.check(proxy)
    proxy.set_mode("all")
    proxy.set_search_text("order")
    model.upsert([make_notification(9, body="another order")])
    qtmodeltester.check(proxy)


def test_chat_is_the_default_tab(make_notification: Make) -> None:
    proxy = proxy_over(sample(make_notification))
    assert proxy.mode() == "chat"
    assert ids(proxy) == ["n3", "n1"]


def test_all_and_other_tabs(make_notification: Make) -> None:
    proxy = proxy_over(sample(make_notification))
    proxy.set_mode("all")
    assert ids(proxy) == ["n4", "n3", "n2", "n1"]
    proxy.set_mode("other")
    assert ids(proxy) == ["n4", "n2"]


def test_search_matches_title_and_body_ignoring_case(make_notification: Make) -> None:
    proxy = proxy_over(sample(make_notification))
    proxy.set_mode("all")
    proxy.set_search_text("  Order ")
    assert ids(proxy) == ["n2", "n1"]
    proxy.set_search_text("dana")
    assert ids(proxy) == ["n1"]
    proxy.set_search_text("")
    assert proxy.rowCount() == 4


def test_new_rows_show_up_live_in_the_matching_tab(make_notification: Make) -> None:
    model = sample(make_notification)
    proxy = proxy_over(model)
    model.upsert([make_notification(10), make_notification(11, category="ticket")])
    assert ids(proxy)[0] == "n10"
    assert "n11" not in ids(proxy)


def test_a_row_whose_text_changes_is_filtered_again(make_notification: Make) -> None:
    model = sample(make_notification)
    proxy = proxy_over(model)
    proxy.set_mode("all")
    proxy.set_search_text("order")
    assert "n1" in ids(proxy)
    model.upsert([make_notification(1, title="Dana Smith", body="a question about pricing")])
    assert "n1" not in ids(proxy)


def test_reading_rows_does_not_filter_them_again(make_notification: Make) -> None:
    """Read state is in no filter: marking 2,000 rows read must not re-check 100,000."""
    model = NotificationListModel()
    model.upsert([make_notification(seq) for seq in range(1, 3001)])
    checked: list[int] = []

    class CountingProxy(NotificationFilterProxy):
        def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
            checked.append(source_row)
            return super().filterAcceptsRow(source_row, source_parent)

    proxy = CountingProxy()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == 3000  # the proxy maps (and filters) every row once
    checked.clear()
    model.mark_read([f"n{seq}" for seq in range(1, 3001, 3)])
    assert checked == []
    assert proxy.rowCount() == 3000


def test_unknown_mode_is_refused(make_notification: Make) -> None:
    proxy = proxy_over(sample(make_notification))
    try:
        proxy.set_mode("tickets")  # type: ignore[arg-type]
    except ValueError as exc:
        assert "chat, all or other" in str(exc)
    else:
        raise AssertionError("expected ValueError")
    assert proxy.index(0, 0, QModelIndex()).isValid()


# ----------------------------------------------------------- property


@st.composite
def batches(draw: st.DrawFn) -> list[list[tuple[int, int, bool, str]]]:
    item = st.tuples(
        st.integers(0, 15),  # id
        st.integers(1, 40),  # seq (a replay may even move a row)
        st.booleans(),  # read
        st.sampled_from(["chat", "ticket", "system"]),
    )
    return draw(st.lists(st.lists(item, max_size=12), max_size=8))


@settings(max_examples=150, deadline=None)
@given(batches(), st.lists(st.integers(0, 15), max_size=5))
def test_any_sequence_of_upserts_keeps_one_row_per_id_newest_first(
    steps: list[list[tuple[int, int, bool, str]]], read_ids: list[int]
) -> None:
    model = NotificationListModel()
    expected: dict[str, Notification] = {}
    for batch in steps:
        items = [
            Notification(
                id=f"n{i}",
                seq=seq,
                kind=f"{cat}.x",
                category=cat,
                title="t",
                body="b",
                conversation_id=None,
                url=None,
                created_at="2026-03-10T15:00:00+00:00",
                read=read,
            )
            for i, seq, read, cat in batch
        ]
        model.upsert(items)
        for item in items:
            expected[item.id] = item
    model.mark_read([f"n{i}" for i in read_ids])
    for i in read_ids:
        if f"n{i}" in expected:
            expected[f"n{i}"] = msgspec.structs.replace(expected[f"n{i}"], read=True)

    rows = [model.notification_at(r) for r in range(model.rowCount())]
    assert sorted(r.id for r in rows) == sorted(expected)
    assert [r.seq for r in rows] == sorted((n.seq for n in expected.values()), reverse=True)
    assert all(model.row_of(n.id) == r for r, n in enumerate(rows))
    assert {r.id: r for r in rows} == expected
    for category in ("chat", "ticket", "system"):
        want = sum(1 for n in expected.values() if n.category == category and not n.read)
        assert model.unread_count(category) == want
