"""RiskEngine: trading states driven by the guards, kill switch, order flow counters, snapshots."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.market import Instrument, PriceBand
from quant.risk import (
    ACCEPT,
    DailyLossLimit,
    DrawdownGuard,
    RiskContext,
    RiskEngine,
    RiskEventKind,
    RiskLimits,
    TradingState,
    session_day,
)

S = 1_000_000_000  # one second in ns
DAY = date(2024, 3, 1)
LAST = {"GARAN": 100.0, "AKBNK": 50.0}
OFF = dict(
    price_collar_pct=None,
    fat_finger_price_pct=None,
    fat_finger_adv_pct=None,
    max_gross_exposure_pct=None,
    max_net_exposure_pct=None,
    max_order_to_trade_ratio=None,
)
_ids = itertools.count()


def make_order(**kw: Any) -> Order:
    base: dict[str, Any] = dict(
        client_order_id=f"e{next(_ids)}",
        symbol="GARAN",
        side=Side.BUY,
        quantity=100,
        order_type=OrderType.LIMIT,
        limit_price=100.0,
        ts_ns=S,
        strategy_id="s1",
    )
    base.update(kw)
    return Order(**base)


def make_ctx(**kw: Any) -> RiskContext:
    base: dict[str, Any] = dict(
        day=DAY,
        instruments={s: Instrument(s, sector="banks") for s in LAST},
        last_prices=dict(LAST),
        bands={s: PriceBand().daily(p, DAY) for s, p in LAST.items()},
        equity=1_000_000.0,
    )
    base.update(kw)
    return RiskContext(**base)


def _ts(y: int, m: int, d: int, hh: int = 8) -> int:
    return int(datetime(y, m, d, hh, tzinfo=UTC).timestamp()) * S


def test_drawdown_moves_active_reducing_halted_and_reducing_lets_reductions_through() -> None:
    engine = RiskEngine(RiskLimits(**OFF), [DrawdownGuard(reduce_at=0.05, halt_at=0.10)])
    ctx = make_ctx(positions={"GARAN": 1_000})
    assert engine.on_equity(1_000_000.0, 1, DAY) is TradingState.ACTIVE
    assert engine.on_equity(951_000.0, 2, DAY) is TradingState.ACTIVE  # 4.9%
    assert engine.events == []

    assert engine.on_equity(950_000.0, 3, DAY) is TradingState.REDUCING  # exactly 5%
    (event,) = engine.events
    assert event.kind is RiskEventKind.STATE_CHANGED
    assert (event.previous_state, event.state) == (TradingState.ACTIVE, TradingState.REDUCING)
    assert event.source == "drawdown" and "5%" in event.reason and event.ts_ns == 3

    sell_part = engine.check(make_order(side=Side.SELL, quantity=500), ctx)
    sell_all = engine.check(make_order(side=Side.SELL, quantity=1_000), ctx)
    assert sell_part is ACCEPT and sell_all is ACCEPT
    buy = engine.check(make_order(side=Side.BUY, quantity=1), ctx)
    assert buy.code is RejectCode.DRAWDOWN and "reduce-only" in buy.reason
    through_flat = engine.check(make_order(side=Side.SELL, quantity=1_001), ctx)
    assert through_flat.code is RejectCode.DRAWDOWN
    other = engine.check(make_order(symbol="AKBNK", limit_price=50.0, side=Side.BUY), ctx)
    assert other.code is RejectCode.DRAWDOWN

    # Latched: a bounce does not re-open trading.
    assert engine.on_equity(999_000.0, 4, DAY) is TradingState.REDUCING
    assert engine.on_equity(900_000.0, 5, DAY) is TradingState.HALTED  # 10% from the peak
    assert [e.state for e in engine.events] == [TradingState.REDUCING, TradingState.HALTED]
    halted = engine.check(make_order(side=Side.SELL, quantity=500), ctx)
    assert halted.code is RejectCode.DRAWDOWN and "halted" in halted.reason

    engine.reset_guards(ts_ns=6, reason="risk manager re-arms after review")
    assert engine.trading_state is TradingState.ACTIVE
    last = engine.events[-1]
    assert last.kind is RiskEventKind.GUARDS_RESET and last.source == "operator"
    assert engine.check(make_order(), ctx) is ACCEPT
    # The peak restarted at the last mark (900,000): 5% below it reduces again.
    assert engine.on_equity(855_000.0, 7, DAY) is TradingState.REDUCING


def test_daily_loss_limit_in_percent_reduces_then_halts_and_rearms_next_day() -> None:
    engine = RiskEngine(RiskLimits(**OFF), [DailyLossLimit(limit_pct=0.02)])
    ctx = make_ctx(positions={"GARAN": 1_000})
    day1, day2 = date(2024, 3, 1), date(2024, 3, 4)
    assert engine.on_equity(1_000_000.0, 1, day1) is TradingState.ACTIVE
    assert engine.on_equity(990_001.0, 2, day1) is TradingState.ACTIVE
    assert engine.on_equity(990_000.0, 3, day1) is TradingState.REDUCING  # half the limit
    assert engine.check(make_order(side=Side.SELL, quantity=300), ctx) is ACCEPT
    assert engine.check(make_order(), ctx).code is RejectCode.DRAWDOWN
    assert engine.on_equity(980_000.0, 4, day1) is TradingState.HALTED
    assert "daily loss limit of 2% of 1,000,000.00 TRY" in engine.events[-1].reason
    assert engine.check(make_order(side=Side.SELL, quantity=300), ctx).code is RejectCode.DRAWDOWN
    # The next session day starts from that day's first mark.
    assert engine.on_equity(975_000.0, 5, day2) is TradingState.ACTIVE
    event = engine.events[-1]
    assert event.state is TradingState.ACTIVE and event.source == "daily_loss"
    assert engine.check(make_order(), ctx) is ACCEPT
    assert engine.on_equity(965_250.0, 6, day2) is TradingState.REDUCING  # 1% of 975,000


def test_daily_loss_limit_in_try_halts_at_exactly_the_limit() -> None:
    guard = DailyLossLimit(limit_try=10_000.0, reduce_fraction=None)
    engine = RiskEngine(guards=[guard])
    engine.on_equity(500_000.0, 1, DAY)
    assert engine.on_equity(490_000.01, 2, DAY) is TradingState.ACTIVE
    assert engine.on_equity(490_000.0, 3, DAY) is TradingState.HALTED


def test_on_equity_derives_the_istanbul_session_day() -> None:
    # 22:30 UTC on 1 March is 01:30 on 2 March in Istanbul.
    late = int(datetime(2024, 3, 1, 22, 30, tzinfo=UTC).timestamp()) * S
    assert session_day(late) == date(2024, 3, 2)
    guard = DailyLossLimit(limit_pct=0.01)
    engine = RiskEngine(guards=[guard])
    engine.on_equity(100.0, _ts(2024, 3, 1))
    engine.on_equity(99.0, _ts(2024, 3, 1, 14))
    assert engine.trading_state is TradingState.HALTED
    engine.on_equity(99.0, late)
    assert guard.day == date(2024, 3, 2) and engine.trading_state is TradingState.ACTIVE


def test_most_severe_of_operator_and_guards_wins() -> None:
    engine = RiskEngine(RiskLimits(**OFF), [DrawdownGuard(reduce_at=0.05, halt_at=0.10)])
    ctx = make_ctx(positions={"GARAN": 1_000})
    engine.set_trading_state(TradingState.REDUCING, "end of month de-risking", ts_ns=1)
    reject = engine.check(make_order(), ctx)
    assert reject.code is RejectCode.TRADING_HALTED and "de-risking" in reject.reason
    assert engine.check(make_order(side=Side.SELL), ctx) is ACCEPT
    engine.on_equity(100.0, 2, DAY)
    engine.on_equity(90.0, 3, DAY)
    assert engine.trading_state is TradingState.HALTED
    assert engine.check(make_order(side=Side.SELL), ctx).code is RejectCode.DRAWDOWN
    engine.set_trading_state(TradingState.ACTIVE, "month over", ts_ns=4)
    assert engine.trading_state is TradingState.HALTED  # the guard still holds it
    engine.set_trading_state(TradingState.HALTED, "exchange connectivity lost", ts_ns=5)
    engine.reset_guards(ts_ns=6, reason="reviewed", equity=90.0)
    assert engine.trading_state is TradingState.HALTED
    assert engine.check(make_order(side=Side.SELL), ctx).code is RejectCode.TRADING_HALTED
    engine.set_trading_state(TradingState.ACTIVE, "connectivity back", ts_ns=7)
    assert engine.check(make_order(), ctx) is ACCEPT
    states = [(e.kind, e.state, e.source) for e in engine.events]
    assert states == [
        (RiskEventKind.STATE_CHANGED, TradingState.REDUCING, "operator"),
        (RiskEventKind.STATE_CHANGED, TradingState.HALTED, "drawdown"),
        (RiskEventKind.GUARDS_RESET, TradingState.HALTED, "operator"),
        (RiskEventKind.STATE_CHANGED, TradingState.ACTIVE, "operator"),
    ]


def test_kill_switch_rejects_everything_until_released() -> None:
    engine = RiskEngine(RiskLimits(**OFF))
    ctx = make_ctx(positions={"GARAN": 1_000})
    engine.engage_kill_switch("runaway strategy s1", ts_ns=10)
    engine.engage_kill_switch("pressed twice", ts_ns=11)
    for order in (make_order(), make_order(side=Side.SELL, quantity=10), make_order(quantity=1)):
        decision = engine.check(order, ctx)
        assert decision.code is RejectCode.KILL_SWITCH
        assert "runaway strategy s1" in decision.reason
    assert engine.kill_switch_engaged and engine.trading_state is TradingState.ACTIVE
    engine.release_kill_switch(ts_ns=20, reason="strategy s1 disabled")
    assert not engine.kill_switch_engaged
    assert engine.check(make_order(), ctx) is ACCEPT
    kinds = [(e.kind, e.ts_ns, e.reason) for e in engine.drain_events()]
    assert kinds == [
        (RiskEventKind.KILL_SWITCH_ENGAGED, 10, "runaway strategy s1"),
        (RiskEventKind.KILL_SWITCH_RELEASED, 20, "strategy s1 disabled"),
    ]
    assert engine.events == []


def test_kill_switch_is_checked_before_the_trading_state_but_after_structure() -> None:
    engine = RiskEngine(guards=[DrawdownGuard()])
    engine.on_equity(100.0, 1, DAY)
    engine.on_equity(50.0, 2, DAY)
    engine.engage_kill_switch("stop", ts_ns=3)
    assert engine.check(make_order(), make_ctx()).code is RejectCode.KILL_SWITCH
    assert engine.check(make_order(quantity=0), make_ctx()).code is RejectCode.INVALID_ORDER


def test_throttle_sliding_window_on_order_time_stamps() -> None:
    limits = RiskLimits(**{**OFF, "max_orders_per_window": 3, "throttle_window_ns": S})
    engine = RiskEngine(limits)
    ctx = make_ctx()

    def go(t: float, **kw: object) -> RejectCode | None:
        return engine.check(make_order(ts_ns=round(t * S), **kw), ctx).code

    assert [go(0.0), go(0.2), go(0.4)] == [None, None, None]
    assert go(0.6) is RejectCode.THROTTLE  # 4th within one second
    assert go(0.6, symbol="AKBNK", limit_price=50.0) is None  # another symbol: its own window
    assert go(0.6, strategy_id="s2") is None  # another strategy: its own window
    assert go(1.0) is None  # (0.0, 1.0] holds 0.2 and 0.4; the rejected 0.6 never counted
    assert go(1.1) is RejectCode.THROTTLE  # (0.1, 1.1] holds 0.2, 0.4 and 1.0
    assert go(1.2) is None  # 0.2 left the window
    # Far later: the window is empty again, whatever the wall clock says.
    assert [go(100.0), go(100.0), go(100.0), go(100.0)] == [None, None, None, RejectCode.THROTTLE]


def test_order_to_trade_ratio_counts_fills_cancels_and_resets_per_day() -> None:
    engine = RiskEngine(RiskLimits(**{**OFF, "max_order_to_trade_ratio": 5.0}))
    ctx = make_ctx()
    orders = [make_order() for _ in range(5)]
    assert all(engine.check(o, ctx) is ACCEPT for o in orders)
    assert engine.check(make_order(), ctx).code is RejectCode.ORDER_TO_TRADE_RATIO
    first = orders[0].client_order_id
    engine.on_execution_report(
        ExecutionReport(first, OrderStatus.FILLED, 5, last_qty=100, last_price=100.0)
    )
    # 6 orders to 1 trade is still above 5:1.
    assert engine.check(make_order(), ctx).code is RejectCode.ORDER_TO_TRADE_RATIO
    second = orders[1].client_order_id
    engine.on_execution_report(
        ExecutionReport(second, OrderStatus.PARTIALLY_FILLED, 6, last_qty=50, last_price=100.0)
    )
    assert engine.check(make_order(), ctx) is ACCEPT  # 6 orders to 2 trades
    for _ in range(4):
        engine.record_cancel(second)  # 10 messages to 2 trades: at the limit
    assert engine.check(make_order(), ctx).code is RejectCode.ORDER_TO_TRADE_RATIO
    # Reports for orders the engine never accepted change nothing.
    engine.on_execution_report(
        ExecutionReport("stranger", OrderStatus.FILLED, 7, last_qty=1, last_price=100.0)
    )
    assert engine.check(make_order(), ctx).code is RejectCode.ORDER_TO_TRADE_RATIO
    # A new session day starts from zero.
    assert engine.check(make_order(), make_ctx(day=date(2024, 3, 4))) is ACCEPT


def _busy_engine() -> RiskEngine:
    limits = RiskLimits(max_orders_per_window=2, max_order_quantity=5_000)
    engine = RiskEngine(
        limits, [DrawdownGuard(reduce_at=0.05, halt_at=0.2), DailyLossLimit(limit_try=100_000.0)]
    )
    ctx = make_ctx(positions={"GARAN": 1_000})
    engine.on_equity(1_000_000.0, 1, DAY)
    engine.on_equity(940_000.0, 2, DAY)  # 6% drawdown: REDUCING
    assert engine.check(make_order(side=Side.SELL, ts_ns=3 * S), ctx) is ACCEPT
    assert engine.check(make_order(side=Side.SELL, ts_ns=3 * S + 1), ctx) is ACCEPT
    engine.set_trading_state(TradingState.ACTIVE, "operator ok", ts_ns=4)
    engine.engage_kill_switch("test", ts_ns=5)
    return engine


def test_snapshot_round_trip_preserves_state_and_behaviour() -> None:
    engine = _busy_engine()
    snap = json.loads(json.dumps(engine.to_dict()))
    restored = RiskEngine.from_dict(snap)
    assert restored.to_dict() == engine.to_dict()
    assert restored.trading_state is TradingState.REDUCING
    assert restored.kill_switch_engaged
    assert restored.events == engine.events
    ctx = make_ctx(positions={"GARAN": 1_000})
    for e in (engine, restored):
        e.release_kill_switch(ts_ns=6)
        # The throttle window survived: a third sell in the same second is refused.
        third = e.check(make_order(side=Side.SELL, ts_ns=3 * S + 2), ctx)
        assert third.code is RejectCode.THROTTLE
        assert e.on_equity(790_000.0, 7, DAY) is TradingState.HALTED  # 21% from the peak
    assert restored.to_dict() == engine.to_dict()


def test_snapshot_rejects_an_unknown_version() -> None:
    snap = RiskEngine().to_dict()
    snap["version"] = 99
    with pytest.raises(ValueError, match="version"):
        RiskEngine.from_dict(snap)


def test_guard_configuration_is_validated() -> None:
    with pytest.raises(ValueError):
        DrawdownGuard(reduce_at=0.2, halt_at=0.1)
    with pytest.raises(ValueError):
        DailyLossLimit()
    with pytest.raises(ValueError, match="unique"):
        RiskEngine(guards=[DrawdownGuard(), DrawdownGuard()])


def test_limits_change_is_an_event() -> None:
    engine = RiskEngine()
    engine.set_limits(RiskLimits(max_order_quantity=10), ts_ns=9, reason="new desk limits")
    assert engine.check(make_order(quantity=11), make_ctx()).code is RejectCode.ORDER_SIZE
    (event,) = engine.events
    assert event.kind is RiskEventKind.LIMITS_CHANGED and event.reason == "new desk limits"
