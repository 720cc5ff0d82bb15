"""The journal: append-only log, idempotency, outbox exactly-once, consumers, recovery."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actors.journal import (
    Break,
    BreakKind,
    EventKind,
    Journal,
    JournalError,
    JournalEvent,
    NewEvent,
    decision_from_dict,
    decision_to_dict,
    order_from_dict,
    order_to_dict,
    reconcile,
    report_from_dict,
    report_to_dict,
)
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.risk.checks import ACCEPT, RiskDecision

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "journal.sqlite"


@pytest.fixture
def journal(path: Path):
    j = Journal(path, clock=_Clock())
    yield j
    j.close()


class _Clock:
    """A deterministic journal clock (the journal's own stamps: staging, sends, dead letters)."""

    def __init__(self) -> None:
        self.t = 1_000

    def __call__(self) -> int:
        self.t += 1
        return self.t


def _order(cid: str, side: Side = Side.BUY, qty: int = 100, symbol: str = "THYAO") -> Order:
    return Order(cid, symbol, side, qty, OrderType.LIMIT, 250.0, ts_ns=10)


def _report(
    order: Order,
    status: OrderStatus,
    ts: int,
    last_qty: int = 0,
    price: float = 0.0,
    cum: int = 0,
    fees: float = 0.0,
    exec_id: str = "",
    **kw,
) -> ExecutionReport:
    return ExecutionReport(
        order.client_order_id,
        status,
        ts,
        symbol=order.symbol,
        side=order.side,
        exec_id=exec_id or f"E-{order.client_order_id}-{ts}",
        last_qty=last_qty,
        last_price=price,
        cum_qty=cum,
        leaves_qty=0 if status.is_terminal else order.quantity - cum,
        fees=fees,
        **kw,
    )


# ------------------------------------------------------------------ storage mode


def test_wal_mode_and_full_sync_by_default(journal: Journal, path: Path) -> None:
    assert journal.journal_mode == "wal"
    assert journal.synchronous == "FULL"
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_normal_sync_can_be_chosen_and_nonsense_cannot(tmp_path: Path) -> None:
    with Journal(tmp_path / "n.sqlite", synchronous="normal") as j:
        assert j.synchronous == "NORMAL"
    with pytest.raises(ValueError, match="synchronous"):
        Journal(tmp_path / "o.sqlite", synchronous="OFF")


def test_closed_journal_refuses_work(path: Path) -> None:
    j = Journal(path)
    j.close()
    j.close()  # idempotent
    assert j.closed
    with pytest.raises(JournalError, match="closed"):
        j.append("k", "a", {}, 1)


# ------------------------------------------------------------------ the event log


def test_append_assigns_a_global_sequence_without_gaps(journal: Journal) -> None:
    assert journal.last_seq() == 0
    s1 = journal.append("signal", "THYAO", {"v": 1.5}, 100)
    s2 = journal.append("custom", "GARAN", {"nested": {"a": [1, 2]}}, 101, "k-2")
    again = journal.append("custom", "GARAN", {"nested": "different"}, 999, "k-2")
    s3 = journal.append("custom", "AKBNK", {}, 102)
    assert (s1, s2, again, s3) == (1, 2, 2, 3)  # a duplicate key consumes no number
    events = journal.events()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1] == JournalEvent(2, 101, "custom", "GARAN", {"nested": {"a": [1, 2]}}, "k-2")
    assert journal.events(after=1, kinds=["custom"], key="AKBNK") == [events[2]]
    assert journal.events(limit=1) == [events[0]]
    assert journal.last_seq() == 3


def test_events_cannot_be_updated_or_deleted(journal: Journal, path: Path) -> None:
    journal.append("k", "a", {"x": 1}, 1)
    with sqlite3.connect(path) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE events SET payload = '{}'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
    assert journal.events()[0].payload == {"x": 1}


def test_append_many_is_atomic(journal: Journal) -> None:
    seqs = journal.append_many(
        [NewEvent("tick", "S", {"i": i}, i, f"t{i}") for i in range(5)]
        + [NewEvent("tick", "S", {"i": 0}, 0, "t0")]
    )
    assert seqs == [1, 2, 3, 4, 5, 1]
    with pytest.raises(TypeError):
        journal.append_many([NewEvent("tick", "S", {}, 6), NewEvent("tick", "S", {}, 7.5)])  # type: ignore[arg-type]
    assert journal.last_seq() == 5  # the good first event of the failed batch is not there


def test_transaction_groups_and_rolls_back(journal: Journal) -> None:
    with journal.transaction():
        journal.append("a", "k", {}, 1)
        with pytest.raises(RuntimeError), journal.transaction():
            journal.append("b", "k", {}, 2)
            raise RuntimeError("inner fails")
        journal.append("c", "k", {}, 3)
    assert [e.kind for e in journal.events()] == ["a", "c"]
    with pytest.raises(RuntimeError), journal.transaction():
        journal.append("d", "k", {}, 4)
        raise RuntimeError("outer fails")
    assert [e.kind for e in journal.events()] == ["a", "c"]


def test_numpy_values_are_journaled_as_python_numbers(journal: Journal) -> None:
    journal.append("k", "a", {"q": np.int64(7), "p": np.float32(1.5)}, np.int64(5))
    event = journal.events()[0]
    assert event.payload == {"q": 7, "p": 1.5}
    assert event.ts_ns == 5
    with pytest.raises(TypeError, match="JSON"):
        journal.append("k", "a", {"bad": object()}, 6)


def test_record_signal_is_idempotent_per_model_symbol_and_time(journal: Journal) -> None:
    s1 = journal.record_signal("THYAO", np.float64(0.25), 500, model="xgb@3", extra={"h": 5})
    s2 = journal.record_signal("THYAO", 0.25, 500, model="xgb@3")
    s3 = journal.record_signal("THYAO", 0.30, 501, model="xgb@3")
    assert s1 == s2 != s3
    event = journal.events()[0]
    assert (event.kind, event.key) == (EventKind.SIGNAL, "THYAO")
    assert event.payload == {"symbol": "THYAO", "value": 0.25, "model": "xgb@3", "extra": {"h": 5}}


def test_reports_are_written_once_and_split_into_fills_and_updates(journal: Journal) -> None:
    o = _order("A")
    acc = _report(o, OrderStatus.ACCEPTED, 20, exec_id="X1")
    fill = _report(o, OrderStatus.PARTIALLY_FILLED, 21, 40, 250.0, 40, 1.2, exec_id="X2")
    assert journal.record_reports([acc, fill]) == [1, 2]
    assert journal.record_report(fill) == 2  # a resent report
    # A resend with the same execution id but a new timestamp is still the same report.
    assert journal.record_report(dataclasses.replace(fill, ts_ns=99)) == 2
    assert [e.kind for e in journal.events()] == [EventKind.ORDER_UPDATE, EventKind.FILL]
    assert report_from_dict(journal.events()[1].payload) == fill


# ------------------------------------------------------------------ codecs


def test_codecs_round_trip_every_field() -> None:
    order = Order(
        "C-1",
        "GARAN",
        Side.SELL,
        300,
        OrderType.MARKET_TO_LIMIT,
        None,
        TimeInForce.IOC,
        ts_ns=123,
        strategy_id="s1",
        parent_id="P-1",
    )
    data = order_to_dict(order)
    assert data["side"] == "SELL" and data["order_type"] == "market_to_limit"
    assert order_from_dict(data) == order
    assert order_from_dict({**data, "side": -1, "new_field_from_the_future": 1}) == order

    report = ExecutionReport(
        "C-1",
        OrderStatus.REJECTED,
        9,
        symbol="GARAN",
        side=Side.SELL,
        exec_id="E9",
        venue_order_id="V1",
        last_qty=0,
        last_price=0.0,
        cum_qty=0,
        leaves_qty=0,
        avg_price=0.0,
        fees=0.0,
        reject_code=RejectCode.OUTSIDE_BAND,
        reason="beyond the band",
        liquidity="",
    )
    assert report_from_dict(report_to_dict(report)) == report
    assert report_from_dict(report_to_dict(ExecutionReport("x", OrderStatus.NEW, 1))).side is None

    decision = RiskDecision.reject(RejectCode.NOTIONAL, "too big")
    assert decision_from_dict(decision_to_dict(decision)) == decision
    assert decision_from_dict(decision_to_dict(ACCEPT)) == ACCEPT
    with pytest.raises(ValueError, match="whole number"):
        order_from_dict({**data, "quantity": 10.5})


# ------------------------------------------------------------------ outbox


class _RecordingVenue:
    """Counts every client order id it receives (a venue must never see one twice)."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def submit(self, order: Order) -> None:
        self.received.append(order.client_order_id)


def _router_pass(journal: Journal, venue: _RecordingVenue, name: str = "paper") -> None:
    """What a restarted router does with the outbox: send each unsent order through the claim."""
    for entry in journal.unsent():
        if journal.mark_sent(entry.order.client_order_id, name):
            venue.submit(entry.order)


def test_stage_and_claim_are_each_once(journal: Journal) -> None:
    o = _order("A")
    assert journal.stage_order(o, "paper") is True
    assert journal.stage_order(o, "paper") is False
    assert journal.stage_order(_order("A", qty=5), "fix") is False  # an id is staged once
    assert [e.order for e in journal.unsent()] == [o]
    assert not journal.was_sent("A")
    assert journal.mark_sent("A", "paper") is True
    assert journal.mark_sent("A", "paper") is False
    assert journal.was_sent("A") and journal.was_sent("A", "paper")
    assert not journal.was_sent("A", "fix")
    assert journal.unsent() == []
    entry = journal.staged_order("A")
    assert entry is not None and entry.sent_to == ("paper",) and entry.venue == "paper"
    assert journal.staged_order("nope") is None
    kinds = [(e.kind, e.key) for e in journal.events()]
    assert kinds == [(EventKind.ORDER_STAGED, "A"), (EventKind.ORDER_SENT, "A")]
    with pytest.raises(JournalError, match="never staged"):
        journal.mark_sent("B", "paper")


def test_outbox_sends_exactly_once_across_a_crash(path: Path) -> None:
    venue = _RecordingVenue()
    j = Journal(path)
    orders = [_order(f"O{i}", qty=10 * (i + 1)) for i in range(4)]
    for o in orders:
        j.stage_order(o, "paper")
    # The router sends the first one, claims the second and dies before sending it.
    assert j.mark_sent("O0", "paper")
    venue.submit(orders[0])
    assert j.mark_sent("O1", "paper")
    j.close()  # crash

    j = Journal(path)
    assert [e.order for e in j.unsent()] == orders[2:]
    assert [e.order.client_order_id for e in j.in_doubt()] == ["O0", "O1"]
    _router_pass(j, venue)
    j.close()
    j = Journal(path)  # a second restart sends nothing again
    _router_pass(j, venue)
    assert j.unsent() == []
    assert venue.received == ["O0", "O2", "O3"]  # O1 is in doubt, never resent blindly
    # Once the venue answers for an order, it is no longer in doubt.
    j.record_report(_report(orders[0], OrderStatus.ACCEPTED, 50))
    assert [e.order.client_order_id for e in j.in_doubt()] == ["O1", "O2", "O3"]
    j.close()


def test_concurrent_claims_let_exactly_one_thread_send(path: Path) -> None:
    j = Journal(path)
    j.stage_order(_order("A"), "paper")
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        wins.append(j.mark_sent("A", "paper"))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
    # A second process-level handle on the same file sees the claim.
    with Journal(path) as other:
        assert other.mark_sent("A", "paper") is False
    j.close()


def test_a_second_claim_needs_the_venues_absent_answer(path: Path) -> None:
    """The venue said it does not hold a claimed order: exactly one more claim is allowed there,
    and the answer is journaled as the reason; without one, the refusal stands."""
    j = Journal(path, clock=_Clock())
    j.stage_order(_order("A"), "fix")
    assert j.reclaim_after_absent("A", "fix", "status: unknown") is False  # never claimed
    assert j.mark_sent("A", "fix") is True
    assert j.mark_sent("A", "fix") is False  # no evidence: refused, however often asked
    assert j.mark_sent("A", "fix") is False
    assert j.reclaim_after_absent("A", "fix", "status: unknown order 'A'") is True
    # asking again before the resend writes nothing (a retried call, a second status check)
    assert j.reclaim_after_absent("A", "fix", "status: unknown order 'A'") is True
    # the allowance is for that venue only
    assert j.mark_sent("A", "paper") is True  # a first claim elsewhere needs no evidence
    assert j.mark_sent("A", "paper") is False
    assert j.mark_sent("A", "fix") is True  # the one allowed resend ...
    assert j.mark_sent("A", "fix") is False  # ... consumed
    with pytest.raises(ValueError, match="evidence"):
        j.reclaim_after_absent("A", "fix", "")
    with pytest.raises(JournalError, match="never staged"):
        j.reclaim_after_absent("B", "fix", "status: unknown")
    trail = [(e.kind, e.payload["venue"]) for e in j.send_claims("A")]
    assert trail == [
        (EventKind.ORDER_SENT, "fix"),
        (EventKind.ORDER_ABSENT, "fix"),
        (EventKind.ORDER_SENT, "paper"),
        (EventKind.ORDER_SENT, "fix"),
    ]
    absent = j.send_claims("A")[1]
    assert absent.payload["evidence"] == "status: unknown order 'A'"
    resent = j.send_claims("A")[3]
    assert resent.payload["after_absent"] == absent.seq
    # the latest claim decides where a restarted router looks for the order
    assert j.rebuild().sent["A"] == ("paper", "fix")
    j.close()
    # the rule survives a restart: the consumed allowance stays consumed, a new answer adds one
    with Journal(path) as again:
        assert again.mark_sent("A", "fix") is False
        assert again.reclaim_after_absent("A", "fix", "status: unknown again") is True
        assert again.mark_sent("A", "fix") is True
        assert [e.payload["claims"] for e in again.events(kinds=[EventKind.ORDER_ABSENT])] == [
            1,
            2,
        ]


def test_a_resend_after_absent_reaches_the_venue_once_across_a_crash(path: Path) -> None:
    """The router dies after recording the venue's answer and again after the resend's claim:
    whatever restarts happen, the id goes to that venue once per absent answer."""
    venue = _RecordingVenue()
    j = Journal(path)
    o = _order("A")
    j.stage_order(o, "paper")
    assert j.mark_sent("A", "paper")  # claimed, then the router died before sending
    j.close()
    j = Journal(path)
    assert [e.order.client_order_id for e in j.in_doubt()] == ["A"]
    assert "A" not in venue.received  # the venue answers status: unknown
    assert j.reclaim_after_absent("A", "paper", "status: unknown order")
    j.close()  # crash before the resend
    for _ in range(3):  # every restart tries to resend; only one claim wins
        j = Journal(path)
        if j.mark_sent("A", "paper"):
            venue.submit(o)
        j.close()
    assert venue.received == ["A"]


# ------------------------------------------------------------------ consumers


def test_consumer_offsets_writes_and_dead_letters(path: Path) -> None:
    j = Journal(path, clock=_Clock())
    for i in range(5):
        j.append("tick", "S", {"i": i}, 100 + i)
    seen: list[int] = []

    def handler(event: JournalEvent) -> None:
        if event.payload.get("i") == 2:
            j.append("derived", "S", {"from": event.seq}, event.ts_ns)  # rolled back
            raise ValueError("cannot score tick 2")
        seen.append(event.seq)
        j.append("derived", "S", {"from": event.seq}, event.ts_ns, f"d{event.seq}")
        j.set_checkpoint("stream:S", event.payload["i"])

    r = j.consume("scorer", handler, batch=3, kinds=["tick"])
    assert (r.delivered, r.dead_lettered, r.offset, r.processed) == (2, 1, 3, 3)
    assert j.offset("scorer") == 3
    assert j.checkpoint("stream:S") == 1
    (dl,) = j.dead_letters()
    assert (dl.consumer, dl.seq, dl.kind, dl.payload, dl.ts_ns) == (
        "scorer",
        3,
        "tick",
        {"i": 2},
        102,
    )
    assert dl.reason == "ValueError: cannot score tick 2"
    assert dl.recorded_ns > 1_000
    j.close()

    j = Journal(path)  # offsets survive a restart; processed events are not redelivered
    r = j.consume("scorer", handler, batch=100, kinds=["tick"])
    assert (r.delivered, r.dead_lettered, r.offset) == (2, 0, 5)
    assert j.consume("scorer", handler, kinds=["tick"]).processed == 0
    assert seen == [1, 2, 4, 5]
    derived = [e.payload["from"] for e in j.events(kinds=["derived"])]
    assert derived == [1, 2, 4, 5]  # the failed event's write is gone
    assert j.checkpoint("stream:S") == 4
    assert j.checkpoint("missing", default=-1) == -1
    # Another consumer has its own offset and sees everything (derived events included).
    assert j.consume("auditor", lambda e: None, batch=1000).delivered == 9
    assert j.dead_letters("auditor") == []
    assert len(j.dead_letters("scorer")) == 1
    j.close()


def test_remote_consumers_poll_and_commit_atomically(journal: Journal) -> None:
    for i in range(4):
        journal.append("signal", "S", {"i": i}, 10 + i)
    polled = journal.poll("risk", batch=3)
    assert [e.seq for e in polled] == [1, 2, 3]
    assert journal.poll("risk", batch=3) == polled  # polling consumes nothing
    made = [NewEvent("risk_decision", "S", {"from": e.seq}, e.ts_ns) for e in polled[:2]]
    assert journal.commit_offset(
        "risk", 3, events=made, failed={3: "bad signal"}, checkpoints={"risk:seq": 3}
    )
    # The same commit retried (say after a timeout) is recognised and writes nothing.
    assert not journal.commit_offset("risk", 3, events=made, failed={3: "bad signal"})
    assert [e.kind for e in journal.events()].count("risk_decision") == 2
    assert journal.offset("risk") == 3 and journal.checkpoint("risk:seq") == 3
    (dl,) = journal.dead_letters("risk")
    assert (dl.seq, dl.reason, dl.payload) == (3, "bad signal", {"i": 2})
    assert [e.seq for e in journal.poll("risk", kinds=["signal"])] == [4]
    # A commit naming an event that does not exist changes nothing at all.
    with pytest.raises(JournalError, match="no such event"):
        journal.commit_offset("risk", 4, events=made[:1], failed={99: "?"})
    assert journal.offset("risk") == 3 and journal.last_seq() == 6


class _Crash(BaseException):
    """A process dying mid-batch (not an ordinary handler failure)."""


def test_a_crash_mid_batch_redelivers_the_batch_and_loses_its_writes(journal: Journal) -> None:
    for i in range(4):
        journal.append("tick", "S", {"i": i}, i)
    calls: list[int] = []

    def dying(event: JournalEvent) -> None:
        calls.append(event.seq)
        journal.set_checkpoint("last", event.seq)
        if event.seq == 3:
            raise _Crash

    with pytest.raises(_Crash):
        journal.consume("c", dying, batch=10)
    assert journal.offset("c") == 0 and journal.checkpoint("last") is None
    assert journal.consume("c", lambda e: calls.append(e.seq), batch=10).delivered == 4
    assert calls == [1, 2, 3, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        journal.consume("c", lambda e: None, batch=0)


# ------------------------------------------------------------------ rebuild


def _scenario(journal: Journal) -> dict[str, OrderState]:
    """Journal a day's orders and return the states an in-memory OrderState sequence reaches."""
    a = _order("A", Side.BUY, 100)  # partial, partial, filled
    b = _order("B", Side.SELL, 50, "GARAN")  # partial then cancelled
    c = _order("C", Side.BUY, 10)  # rejected by the venue
    d = _order("D", Side.BUY, 30, "AKBNK")  # accepted, still open
    e = _order("E", Side.SELL, 40)  # partial, still open
    f = _order("F", Side.BUY, 20)  # staged, never sent
    g = Order("G", "THYAO", Side.BUY, 5, OrderType.LIMIT, 250.0, ts_ns=11)  # risk-rejected
    reports = [
        _report(a, OrderStatus.ACCEPTED, 20, venue_order_id="V-A"),
        _report(b, OrderStatus.ACCEPTED, 21),
        _report(a, OrderStatus.PARTIALLY_FILLED, 22, 30, 250.0, 30, 0.75),
        _report(c, OrderStatus.REJECTED, 23, reject_code=RejectCode.OUTSIDE_BAND, reason="band"),
        _report(b, OrderStatus.PARTIALLY_FILLED, 24, 20, 60.5, 20, 0.24),
        _report(a, OrderStatus.PARTIALLY_FILLED, 25, 50, 250.25, 80, 1.25),
        _report(d, OrderStatus.ACCEPTED, 26),
        _report(b, OrderStatus.CANCELLED, 27, cum=20),
        _report(e, OrderStatus.ACCEPTED, 28),
        _report(a, OrderStatus.FILLED, 29, 20, 250.5, 100, 0.5),
        _report(e, OrderStatus.PARTIALLY_FILLED, 30, 15, 251.0, 15, 0.4),
        _report(g, OrderStatus.REJECTED, 31, reject_code=RejectCode.NOTIONAL, reason="risk"),
    ]
    for o in (a, b, c, d, e):
        journal.record_risk_decision(o, ACCEPT)
        journal.stage_order(o, "paper")
        journal.mark_sent(o.client_order_id, "paper")
    journal.record_risk_decision(f, ACCEPT)
    journal.stage_order(f, "paper")
    journal.record_risk_decision(g, RiskDecision.reject(RejectCode.NOTIONAL, "risk"))
    expected = {o.client_order_id: OrderState(o) for o in (a, b, c, d, e, f, g)}
    for r in reports:
        expected[r.client_order_id].apply(r)
        journal.record_report(r)
    return expected


def test_rebuild_reproduces_the_order_state_machine(journal: Journal) -> None:
    expected = _scenario(journal)
    journal.set_checkpoint("stream:THYAO", 1234)
    journal.consume("risk", lambda e: None, batch=5)
    state = journal.rebuild()
    assert set(state.orders) == set(expected)
    for cid, want in expected.items():
        got = state.orders[cid]
        assert got.order == want.order
        assert (got.status, got.filled_qty, got.leaves_qty) == (
            want.status,
            want.filled_qty,
            want.leaves_qty,
        ), cid
        assert got.avg_price == pytest.approx(want.avg_price)
        assert got.fees == pytest.approx(want.fees)
        assert (got.venue_order_id, got.reject_code, got.reason) == (
            want.venue_order_id,
            want.reject_code,
            want.reason,
        )
        assert got.history == want.history
    assert set(state.open_orders) == {"D", "E", "F"}
    assert state.positions == {"THYAO": 100 - 15, "GARAN": -20}
    bought = 30 * 250.0 + 50 * 250.25 + 20 * 250.5
    sold = 20 * 60.5 + 15 * 251.0
    fees = 0.75 + 0.24 + 1.25 + 0.5 + 0.4
    assert state.fees == pytest.approx(fees)
    assert state.cash == pytest.approx(sold - bought - fees)
    assert state.risk_decisions["G"] == RiskDecision.reject(RejectCode.NOTIONAL, "risk")
    assert state.risk_decisions["A"] == ACCEPT
    assert state.sent == {cid: ("paper",) for cid in "ABCDE"}
    assert state.unsent == ["F"]
    assert state.checkpoints == {"stream:THYAO": 1234}
    assert state.consumer_offsets == {"risk": 5}
    assert state.last_seq == journal.last_seq()
    assert state.problems == []


def test_rebuild_lists_reports_the_state_machine_refuses(journal: Journal) -> None:
    o = _order("A")
    journal.stage_order(o, "paper")
    journal.record_report(_report(o, OrderStatus.ACCEPTED, 1))
    journal.record_report(_report(o, OrderStatus.CANCELLED, 2))
    journal.record_report(_report(o, OrderStatus.PARTIALLY_FILLED, 3, 10, 250.0, 10))  # too late
    journal.record_report(
        ExecutionReport("ghost", OrderStatus.FILLED, 4, last_qty=5, last_price=1.0)
    )
    state = journal.rebuild()
    assert state.orders["A"].status is OrderStatus.CANCELLED
    assert state.positions == {}  # the refused fill moved nothing
    assert len(state.problems) == 2
    assert "cancelled -> partially_filled is not allowed" in state.problems[0]
    assert "unknown order ghost" in state.problems[1]


def test_positions_start_from_the_last_snapshot(journal: Journal) -> None:
    o = _order("A", Side.SELL, 10)
    journal.record_positions({"THYAO": 500, "GARAN": 7}, 1, cash=1_000.0)
    journal.record_positions({"THYAO": 300}, 2, cash=2_000.0)
    journal.stage_order(o, "paper")
    journal.record_report(_report(o, OrderStatus.ACCEPTED, 3))
    journal.record_report(_report(o, OrderStatus.FILLED, 4, 10, 100.0, 10, 1.0))
    state = journal.rebuild()
    assert state.positions == {"THYAO": 290}
    assert state.cash == pytest.approx(2_000.0 + 1_000.0 - 1.0)
    with pytest.raises(TypeError, match="whole shares"):
        journal.record_positions({"X": 1.5}, 5)  # type: ignore[dict-item]


# ------------------------------------------------------------------ reconcile


def _venue_state(order: Order, *reports: ExecutionReport) -> OrderState:
    st = OrderState(order)
    for r in reports:
        st.apply(r)
    return st


def test_reconcile_finds_every_kind_of_break(journal: Journal) -> None:
    expected = _scenario(journal)
    state = journal.rebuild()
    d = expected["D"].order
    a = expected["A"].order
    stranger = _order("Z", qty=7)
    venue_orders = [
        _venue_state(a, *expected["A"].history),  # agrees
        # D: the venue filled 10 that the journal never heard about.
        _venue_state(
            d,
            _report(d, OrderStatus.ACCEPTED, 26),
            _report(d, OrderStatus.PARTIALLY_FILLED, 40, 10, 80.0, 10),
        ),
        # E is missing at the venue; Z is unknown to the journal.
        _venue_state(stranger, _report(stranger, OrderStatus.ACCEPTED, 41)),
    ]
    breaks = reconcile(state, venue_orders, {"THYAO": 85, "GARAN": -25, "AKBNK": 10})
    assert breaks == [
        Break(BreakKind.STATUS_MISMATCH, "D", "accepted", "partially_filled"),
        Break(BreakKind.FILLED_QTY_MISMATCH, "D", 0, 10, "AKBNK BUY"),
        Break(BreakKind.MISSING_AT_VENUE, "E", "partially_filled", None, breaks[2].detail),
        Break(BreakKind.UNKNOWN_AT_VENUE, "Z", None, "accepted", "THYAO BUY 7"),
        Break(BreakKind.POSITION_MISMATCH, "AKBNK", 0, 10),
        Break(BreakKind.POSITION_MISMATCH, "GARAN", -20, -25),
    ]
    assert "paper" in breaks[2].detail
    # F was never sent and B/C are terminal: none is a break though the venue lists neither.
    assert {b.key for b in breaks}.isdisjoint({"B", "C", "F"})
    # A venue that agrees: no breaks (positions omitted are not compared).
    agreeing = [_venue_state(s.order, *s.history) for s in state.orders.values() if s.history]
    assert journal.reconcile(agreeing) == []
    assert journal.reconcile(agreeing, {"THYAO": 85, "GARAN": -20, "ASELS": 0}) == []


# ------------------------------------------------------------------ concurrency and crashes


def test_threads_share_one_journal(journal: Journal) -> None:
    def writer(n: int) -> None:
        for i in range(50):
            journal.append("t", str(n), {"i": i}, i, f"{n}:{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.seq for e in journal.events()] == list(range(1, 201))


_CHILD = textwrap.dedent(
    """
    import sys
    from actors.journal import Journal, NewEvent

    journal = Journal(sys.argv[1])
    i = 0
    while True:
        if i % 10 == 9:  # some batches too
            seqs = journal.append_many(
                [NewEvent("tick", "S", {"i": i, "b": k}, i, f"{i}:{k}") for k in range(3)]
            )
            print(*seqs, flush=True)
        else:
            print(journal.append("tick", "S", {"i": i}, i, f"{i}"), flush=True)
        i += 1
    """
)


def test_events_committed_before_a_sigkill_survive(path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "proto")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    acknowledged: list[int] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < 300:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child exited"
            acknowledged += [int(s) for s in line.split()]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        out, _ = child.communicate(timeout=30)
        acknowledged += [int(s) for s in out.split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Journal(path) as j:
        events = j.events()
        seqs = [e.seq for e in events]
        # Every acknowledged append is there, in order, and nothing else but at most the
        # batch that committed before its acknowledgement was printed.
        assert seqs[: len(acknowledged)] == acknowledged == list(range(1, len(acknowledged) + 1))
        assert len(seqs) - len(acknowledged) <= 3
        assert all(e.kind == "tick" for e in events)
        # A producer that retries the last acknowledged append after the crash writes nothing.
        last = events[len(acknowledged) - 1]
        assert j.append("tick", "S", last.payload, last.ts_ns, last.idempotency_key) == last.seq
        assert j.last_seq() == len(seqs)


# ------------------------------------------------------------------ the router's use of the rule


class _LossyVenue:
    """A venue whose first submit fails as scripted: "lost" (timeout, the order never arrived)
    or "received" (timeout, it arrived and only the answer was lost)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.received: list[str] = []
        self.orders: dict[str, OrderState] = {}

    def submit(self, order: Order) -> list[ExecutionReport]:
        from quant.execution.routing import TransientVenueError

        fault, self.fault = self.fault, "ok"
        if fault == "lost":
            raise TransientVenueError("timeout")
        self.received.append(order.client_order_id)
        state = OrderState(order)
        ack = _report(order, OrderStatus.ACCEPTED, 100)
        state.apply(ack)
        self.orders[order.client_order_id] = state
        if fault == "received":
            raise TransientVenueError("timeout")
        return [ack]

    def status(self, client_order_id: str) -> OrderState | None:
        return self.orders.get(client_order_id)

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        return []

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        return []

    def replace(self, client_order_id: str, ts_ns: int, quantity=None, limit_price=None):
        return []


def _core(journal: Journal, venue: _LossyVenue, clock: Any) -> tuple[Any, Any]:
    """A routing core over one venue behind the router's outbox (``actors.router.OutboxVenue``)
    writing to this journal."""
    from actors.router import OutboxVenue
    from quant.execution.routing import RetryPolicy, RoutingCore

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(journal, method)(*args, **kwargs)

    def batch(calls: list[Any]) -> list[Any]:
        with journal.transaction():
            return [call(m, *a, **k) for m, a, k in calls]

    outbox = OutboxVenue("fix", venue, call, clock, batch)
    retry = RetryPolicy(max_attempts=3, base_ns=1, cap_ns=10)
    return RoutingCore({"fix": outbox}, clock, retry=retry), outbox


def _routed(journal: Journal, fault: str) -> tuple[Any, _LossyVenue, Any]:
    """``_core`` over a venue failing as scripted, the order staged as the router stages it."""
    from quant.clock import SimulatedClock

    clock = SimulatedClock(10**12)
    venue = _LossyVenue(fault)
    core, _ = _core(journal, venue, clock)
    journal.stage_order(_order("A"), "fix")
    return core, venue, clock


def _sleep(clock: Any) -> Any:
    return lambda ns: clock.advance_to(clock.now_ns() + ns)


def test_router_resends_a_lost_order_only_on_the_venues_absent_answer(journal: Journal) -> None:
    from quant.execution.routing import RouteStatus

    core, venue, clock = _routed(journal, "lost")
    out = core.route_blocking(_order("A"), _sleep(clock))
    assert out.status is RouteStatus.ROUTED and not out.recovered
    assert venue.received == ["A"]
    trail = [(e.kind, e.payload.get("after_absent")) for e in journal.send_claims("A")]
    absent_seq = journal.send_claims("A")[1].seq
    assert trail == [
        (EventKind.ORDER_SENT, None),
        (EventKind.ORDER_ABSENT, None),
        (EventKind.ORDER_SENT, absent_seq),
    ]


def test_router_never_resends_an_order_the_venue_holds(journal: Journal) -> None:
    from quant.execution.routing import RouteStatus

    core, venue, clock = _routed(journal, "received")
    out = core.route_blocking(_order("A"), _sleep(clock))
    assert out.status is RouteStatus.ROUTED and out.recovered  # found through status
    assert venue.received == ["A"]
    assert [e.kind for e in journal.send_claims("A")] == [EventKind.ORDER_SENT]


def test_a_router_that_forgot_a_send_is_refused_by_the_journal(journal: Journal) -> None:
    """A router that lost its memory of a send (nothing restored) routes the order again: the
    journal refuses the claim, nothing is sent, and the venue's status settles it."""
    from quant.execution.routing import RouteStatus

    core, venue, clock = _routed(journal, "ok")
    assert core.route(_order("A")).status is RouteStatus.ROUTED
    forgetful, outbox = _core(journal, venue, clock)
    out = forgetful.route_blocking(_order("A"), _sleep(clock))
    assert out.status is RouteStatus.ROUTED and out.recovered
    assert outbox.refused_claims == 1 and outbox.absent_answers == 0
    assert venue.received == ["A"]  # once
    assert [e.kind for e in journal.send_claims("A")] == [EventKind.ORDER_SENT]


def test_venue_answers_that_change_nothing_are_kept_apart_from_state_changes(
    journal: Journal,
) -> None:
    """A venue's "held" answer and its refusal of a cancel ("cannot cancel: order is
    cancelled", status unchanged with a reject code) are journaled for the record but never
    applied: an order whose acknowledgement was lost is not broken by a refused cancel, and a
    refusal journaled twice is written once."""
    from actors.journal import ORDER_HELD, REQUEST_ANSWER
    from quant.sim.paper import is_held

    a, b = _order("A"), _order("B")
    journal.stage_order(a, "paper", 1)
    journal.stage_order(b, "paper", 1)
    held = ExecutionReport(
        "A",
        OrderStatus.NEW,
        5,
        symbol="THYAO",
        side=Side.BUY,
        leaves_qty=100,
        reason="held by the venue until the session opens",
    )
    assert is_held(held)
    refused = ExecutionReport(
        "B",
        OrderStatus.CANCELLED,
        6,
        symbol="THYAO",
        side=Side.BUY,
        reject_code=RejectCode.INVALID_ORDER,
        reason="cannot cancel: order is cancelled",
    )
    accepted = _report(a, OrderStatus.ACCEPTED, 7)
    journal.record_venue_reports([held, refused, accepted])
    journal.record_venue_reports([refused])  # delivered twice
    state = journal.rebuild()
    assert not state.problems, state.problems
    assert state.orders["A"].status is OrderStatus.ACCEPTED
    assert "B" not in state.orders or state.orders["B"].status is OrderStatus.NEW
    assert [e.key for e in journal.events(kinds=[ORDER_HELD])] == ["A"]
    assert [e.key for e in journal.events(kinds=[REQUEST_ANSWER])] == ["B"]
