"""Pre-trade checks: every reject code with an order that breaks it and a near miss that passes.

Limits are inclusive, so each near miss sits exactly on its limit where the limit is a number.
Each case runs through ``RiskEngine.check`` with every other limit switched off, so the case
isolates its own check; a separate test runs the defaults.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.market import Instrument, PriceBand
from quant.risk import (
    ACCEPT,
    DrawdownGuard,
    OpenQuantity,
    RiskContext,
    RiskDecision,
    RiskEngine,
    RiskLimits,
    TradingState,
    check_exposure,
    check_position,
    check_price_collar,
    check_short_sale,
    check_tick,
    is_reducing,
    open_quantities,
    run_pre_trade_checks,
)
from quant.risk.checks import ActivityCounters

DAY = date(2024, 3, 1)  # the eight-tier tick table is in force
SECTORS = {"GARAN": "banks", "AKBNK": "banks", "THYAO": "transport", "PGSUS": "transport"}
INSTRUMENTS = {s: Instrument(s, sector=sec) for s, sec in SECTORS.items()}
LAST = {"GARAN": 100.0, "AKBNK": 50.0, "THYAO": 300.0, "PGSUS": 800.0}
BANDS = {s: PriceBand().daily(p, DAY) for s, p in LAST.items()}

OFF = dict(
    price_collar_pct=None,
    fat_finger_price_pct=None,
    fat_finger_adv_pct=None,
    max_gross_exposure_pct=None,
    max_net_exposure_pct=None,
    max_order_to_trade_ratio=None,
)
"""Every limit that is on by default, switched off."""

_ids = itertools.count()


def make_order(**kw: Any) -> Order:
    base: dict[str, Any] = dict(
        client_order_id=f"o{next(_ids)}",
        symbol="GARAN",
        side=Side.BUY,
        quantity=100,
        order_type=OrderType.LIMIT,
        limit_price=100.0,
        ts_ns=1_000_000_000,
        strategy_id="s1",
    )
    base.update(kw)
    if base["order_type"] is not OrderType.LIMIT and "limit_price" not in kw:
        base["limit_price"] = None
    return Order(**base)


def make_ctx(**kw: Any) -> RiskContext:
    base: dict[str, Any] = dict(
        day=DAY,
        instruments=INSTRUMENTS,
        last_prices=dict(LAST),
        bands=dict(BANDS),
        equity=1_000_000.0,
    )
    base.update(kw)
    return RiskContext(**base)


def fill_counters(n: int, ts0: int = 0, step: int = 200_000_000) -> Callable[[RiskEngine], None]:
    """Prepare an engine that has already accepted ``n`` GARAN orders ``step`` ns apart."""

    def prepare(engine: RiskEngine) -> None:
        ctx = make_ctx()
        for i in range(n):
            assert engine.check(make_order(ts_ns=ts0 + i * step), ctx) is ACCEPT

    return prepare


@dataclass
class Case:
    name: str
    code: RejectCode
    breaking: dict[str, Any]
    passing: dict[str, Any]
    limits: dict[str, Any] = field(default_factory=dict)
    ctx: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[RiskEngine], None] | None = None
    guards: tuple[Callable[[], Any], ...] = ()
    reason_has: tuple[str, ...] = ()
    passing_ctx: dict[str, Any] | None = None
    """Context for the near miss when it differs from the breaking one."""


def _kill(engine: RiskEngine) -> None:
    engine.engage_kill_switch("operator pressed stop", ts_ns=1)


def _drawdown(engine: RiskEngine) -> None:
    engine.on_equity(1_000_000.0, ts_ns=1, day=DAY)
    engine.on_equity(900_000.0, ts_ns=2, day=DAY)
    assert engine.trading_state is TradingState.HALTED


CASES = [
    Case(
        "quantity zero",
        RejectCode.INVALID_ORDER,
        breaking=dict(quantity=0),
        passing=dict(quantity=1),
        reason_has=("quantity must be positive",),
    ),
    Case(
        "limit without price",
        RejectCode.INVALID_ORDER,
        breaking=dict(limit_price=None),
        passing=dict(limit_price=100.0),
    ),
    Case(
        "fractional shares",
        RejectCode.INVALID_ORDER,
        breaking=dict(quantity=1.5),
        passing=dict(quantity=2),
    ),
    Case(
        "unknown symbol",
        RejectCode.UNKNOWN_SYMBOL,
        breaking=dict(symbol="NOSUCH"),
        passing=dict(symbol="GARAN"),
        reason_has=("NOSUCH",),
    ),
    Case(
        "order size",
        RejectCode.ORDER_SIZE,
        limits=dict(max_order_quantity=1000),
        breaking=dict(quantity=1001),
        passing=dict(quantity=1000),
        reason_has=("1,001", "1,000"),
    ),
    Case(
        "order notional",
        RejectCode.NOTIONAL,
        limits=dict(max_order_notional=100_000.0),
        breaking=dict(quantity=1001),
        passing=dict(quantity=1000),
        reason_has=("100,100", "100,000"),
    ),
    Case(
        "market order notional at the last price",
        RejectCode.NOTIONAL,
        limits=dict(max_order_notional=100_000.0),
        breaking=dict(quantity=1001, order_type=OrderType.MARKET),
        passing=dict(quantity=1000, order_type=OrderType.MARKET),
    ),
    Case(
        "collar above",
        RejectCode.PRICE_COLLAR,
        limits=dict(price_collar_pct=0.05),
        breaking=dict(limit_price=105.1),
        passing=dict(limit_price=105.0),
        reason_has=("105.1", "5%", "100.0"),
    ),
    Case(
        "collar below",
        RejectCode.PRICE_COLLAR,
        limits=dict(price_collar_pct=0.05),
        breaking=dict(limit_price=94.9, side=Side.SELL),
        passing=dict(limit_price=95.0, side=Side.SELL),
        ctx=dict(positions={"GARAN": 1_000}),
    ),
    Case(
        "market order without a last price",
        RejectCode.PRICE_COLLAR,
        ctx=dict(last_prices={"GARAN": 100.0}),
        breaking=dict(symbol="AKBNK", order_type=OrderType.MARKET),
        passing=dict(symbol="GARAN", order_type=OrderType.MARKET),
        reason_has=("no last price",),
    ),
    Case(
        "off the 0.10 grid",
        RejectCode.OFF_TICK,
        breaking=dict(limit_price=100.05),
        passing=dict(limit_price=100.1),
        reason_has=("100.05", "0.1"),
    ),
    Case(
        "off the 0.25 grid of the 2023 table",
        RejectCode.OFF_TICK,
        breaking=dict(symbol="THYAO", limit_price=300.1),
        passing=dict(symbol="THYAO", limit_price=300.25),
    ),
    Case(
        "above the band",
        RejectCode.OUTSIDE_BAND,
        breaking=dict(limit_price=110.1),
        passing=dict(limit_price=110.0),
        reason_has=("110.1", "[90.0, 110.0]"),
    ),
    Case(
        "below the band",
        RejectCode.OUTSIDE_BAND,
        breaking=dict(limit_price=89.9),
        passing=dict(limit_price=90.0),
    ),
    Case(
        "position shares, open buys included",
        RejectCode.POSITION_LIMIT,
        limits=dict(max_position_shares=1000),
        ctx=dict(positions={"GARAN": 400}, open_orders={"GARAN": OpenQuantity(buy=100)}),
        breaking=dict(quantity=501),
        passing=dict(quantity=500),
        reason_has=("1,001", "1,000"),
    ),
    Case(
        "position shares, short side",
        RejectCode.POSITION_LIMIT,
        limits=dict(max_position_shares=1000, allow_short=True),
        ctx=dict(positions={"GARAN": -400}),
        breaking=dict(side=Side.SELL, quantity=601),
        passing=dict(side=Side.SELL, quantity=600),
    ),
    Case(
        "position notional",
        RejectCode.POSITION_LIMIT,
        limits=dict(max_position_notional=100_000.0),
        breaking=dict(quantity=1001),
        passing=dict(quantity=1000),
        reason_has=("100,100", "100,000"),
    ),
    Case(
        "portfolio gross exposure",
        RejectCode.EXPOSURE,
        limits=dict(max_gross_exposure_pct=1.0),
        ctx=dict(positions={"AKBNK": 5_000}),  # 250,000 TRY
        breaking=dict(quantity=7_501),
        passing=dict(quantity=7_500),
        reason_has=("portfolio gross", "100%"),
    ),
    Case(
        "sector gross exposure",
        RejectCode.EXPOSURE,
        limits=dict(max_sector_gross_pct=0.5),
        ctx=dict(positions={"AKBNK": 5_000, "THYAO": 1_000}),
        breaking=dict(quantity=2_501),
        passing=dict(quantity=2_500),
        reason_has=("sector banks",),
    ),
    Case(
        "sector net exposure",
        RejectCode.EXPOSURE,
        limits=dict(max_sector_net_pct=0.2, allow_short=True),
        ctx=dict(positions={"AKBNK": 5_000}),  # +250,000 net in banks
        breaking=dict(side=Side.SELL, quantity=4_501),  # net -200,100
        passing=dict(side=Side.SELL, quantity=4_500),  # net -200,000
        reason_has=("sector banks net",),
    ),
    Case(
        "portfolio net exposure, long side",
        RejectCode.EXPOSURE,
        limits=dict(max_net_exposure_pct=0.1, allow_short=True),
        ctx=dict(positions={"AKBNK": -5_000, "THYAO": 1_000}),  # -250k + 300k = +50k
        breaking=dict(quantity=501),
        passing=dict(quantity=500),
        reason_has=("portfolio net",),
    ),
    Case(
        "portfolio net exposure, short side",
        RejectCode.EXPOSURE,
        limits=dict(max_net_exposure_pct=0.1, allow_short=True),
        ctx=dict(positions={"AKBNK": -5_000, "THYAO": 1_000}),
        breaking=dict(side=Side.SELL, quantity=1_501),
        passing=dict(side=Side.SELL, quantity=1_500),
    ),
    Case(
        "symbol exposure",
        RejectCode.EXPOSURE,
        limits=dict(max_symbol_exposure_pct=0.1),
        breaking=dict(quantity=1_001),
        passing=dict(quantity=1_000),
        reason_has=("symbol GARAN",),
    ),
    Case(
        "exposure without equity",
        RejectCode.EXPOSURE,
        limits=dict(max_gross_exposure_pct=1.0),
        ctx=dict(equity=None, positions={"GARAN": 500}),
        breaking=dict(side=Side.BUY),
        passing=dict(side=Side.SELL),
        reason_has=("positive equity",),
    ),
    Case(
        "throttle",
        RejectCode.THROTTLE,
        limits=dict(max_orders_per_window=2, throttle_window_ns=1_000_000_000),
        prepare=fill_counters(2, ts0=0),  # accepted at 0.0 s and 0.2 s
        breaking=dict(ts_ns=999_999_999),  # both still in the window: a third
        passing=dict(ts_ns=1_000_000_000),  # the order at 0.0 s has left the window
        reason_has=("3 orders", "limit of 2"),
    ),
    Case(
        "order-to-trade ratio",
        RejectCode.ORDER_TO_TRADE_RATIO,
        limits=dict(max_order_to_trade_ratio=5.0),
        prepare=fill_counters(5),
        breaking=dict(symbol="GARAN"),  # 6 orders, no trade
        passing=dict(symbol="AKBNK", limit_price=50.0),  # other symbol: its first order
        reason_has=("6 orders", "5"),
    ),
    Case(
        "fat finger price",
        RejectCode.FAT_FINGER,
        limits=dict(fat_finger_price_pct=0.2),
        ctx=dict(bands={}),
        breaking=dict(limit_price=120.1),
        passing=dict(limit_price=120.0),
        reason_has=("120.1", "20%"),
    ),
    Case(
        "fat finger against ADV",
        RejectCode.FAT_FINGER,
        limits=dict(fat_finger_adv_pct=0.25),
        ctx=dict(adv={"GARAN": 10_000}),
        breaking=dict(quantity=2_501),
        passing=dict(quantity=2_500),
        reason_has=("2,501", "25%"),
    ),
    Case(
        "fat finger notional",
        RejectCode.FAT_FINGER,
        limits=dict(fat_finger_notional=1_000_000.0),
        breaking=dict(quantity=10_001),
        passing=dict(quantity=10_000),
    ),
    Case(
        "market-wide halt",
        RejectCode.TRADING_HALTED,
        ctx=dict(market_halted=True),
        passing_ctx=dict(market_halted=False),
        breaking=dict(),
        passing=dict(),
    ),
    Case(
        "single-stock halt",
        RejectCode.TRADING_HALTED,
        ctx=dict(halted_symbols=frozenset({"GARAN"})),
        breaking=dict(symbol="GARAN"),
        passing=dict(symbol="AKBNK", limit_price=50.0),
    ),
    Case(
        "kill switch",
        RejectCode.KILL_SWITCH,
        prepare=_kill,
        breaking=dict(),
        passing=dict(),
        reason_has=("operator pressed stop",),
    ),
    Case(
        "drawdown halt",
        RejectCode.DRAWDOWN,
        guards=(lambda: DrawdownGuard(reduce_at=0.05, halt_at=0.10),),
        prepare=_drawdown,
        breaking=dict(),
        passing=dict(),
        reason_has=("drawdown 10%",),
    ),
    Case(
        "buying power",
        RejectCode.INSUFFICIENT_FUNDS,
        ctx=dict(buying_power=100_000.0),
        breaking=dict(quantity=1_001),
        passing=dict(quantity=1_000),
        reason_has=("100,100", "100,000"),
    ),
    Case(
        "short sale disabled",
        RejectCode.SHORT_SALE,
        ctx=dict(positions={"GARAN": 100}, open_orders={"GARAN": OpenQuantity(sell=40)}),
        breaking=dict(side=Side.SELL, quantity=61),
        passing=dict(side=Side.SELL, quantity=60),
        reason_has=("61", "60 shares free"),
    ),
    Case(
        "uptick rule: at the last price after a downtick",
        RejectCode.SHORT_SALE,
        limits=dict(allow_short=True),
        ctx=dict(index_drop_pct=0.02, last_tick_direction={"GARAN": -1}),
        breaking=dict(side=Side.SELL, limit_price=100.0),
        passing=dict(side=Side.SELL, limit_price=100.1),
        reason_has=("uptick rule", "2%"),
    ),
    Case(
        "uptick rule: market short sale",
        RejectCode.SHORT_SALE,
        limits=dict(allow_short=True),
        ctx=dict(index_drop_pct=0.03, positions={"GARAN": 100}),
        breaking=dict(side=Side.SELL, order_type=OrderType.MARKET, quantity=101),
        passing=dict(side=Side.SELL, order_type=OrderType.MARKET, quantity=100),
    ),
]

REQUIRED_CODES = {
    RejectCode.INVALID_ORDER,
    RejectCode.UNKNOWN_SYMBOL,
    RejectCode.ORDER_SIZE,
    RejectCode.NOTIONAL,
    RejectCode.PRICE_COLLAR,
    RejectCode.OFF_TICK,
    RejectCode.OUTSIDE_BAND,
    RejectCode.POSITION_LIMIT,
    RejectCode.EXPOSURE,
    RejectCode.THROTTLE,
    RejectCode.ORDER_TO_TRADE_RATIO,
    RejectCode.FAT_FINGER,
    RejectCode.TRADING_HALTED,
    RejectCode.KILL_SWITCH,
    RejectCode.DRAWDOWN,
    RejectCode.INSUFFICIENT_FUNDS,
    RejectCode.SHORT_SALE,
}


def test_every_required_code_has_a_case() -> None:
    assert {c.code for c in CASES} >= REQUIRED_CODES


def _engine(case: Case) -> RiskEngine:
    engine = RiskEngine(RiskLimits(**{**OFF, **case.limits}), [g() for g in case.guards])
    if case.prepare is not None:
        case.prepare(engine)
    return engine


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_breaking_order_is_rejected_with_its_code(case: Case) -> None:
    decision = _engine(case).check(make_order(**case.breaking), make_ctx(**case.ctx))
    assert not decision.accepted
    assert decision.code is case.code, decision.reason
    assert decision.reason
    for text in case.reason_has:
        assert text in decision.reason, decision.reason


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.code not in (RejectCode.KILL_SWITCH, RejectCode.DRAWDOWN)],
    ids=lambda c: c.name,
)
def test_near_miss_passes(case: Case) -> None:
    ctx = make_ctx(**(case.ctx if case.passing_ctx is None else case.passing_ctx))
    decision = _engine(case).check(make_order(**case.passing), ctx)
    assert decision is ACCEPT, decision.reason


def test_kill_switch_and_drawdown_pass_once_released() -> None:
    for case in (c for c in CASES if c.code in (RejectCode.KILL_SWITCH, RejectCode.DRAWDOWN)):
        engine = _engine(case)
        engine.release_kill_switch(ts_ns=3)
        engine.reset_guards(ts_ns=3, reason="operator re-arms", equity=900_000.0)
        assert engine.check(make_order(**case.passing), make_ctx(**case.ctx)) is ACCEPT


def test_default_limits_accept_an_ordinary_order_and_collar_a_wild_one() -> None:
    engine = RiskEngine()
    ctx = make_ctx(adv={"GARAN": 1_000_000})
    assert engine.check(make_order(quantity=1_000, limit_price=101.0), ctx) is ACCEPT
    wild = engine.check(make_order(limit_price=108.0), ctx)
    assert wild.code is RejectCode.PRICE_COLLAR
    too_big = engine.check(make_order(quantity=10_001), ctx)  # 1,000,100 TRY > equity
    assert too_big.code is RejectCode.EXPOSURE
    naked_short = engine.check(make_order(side=Side.SELL), ctx)
    assert naked_short.code is RejectCode.SHORT_SALE


def test_fat_finger_wins_over_band_for_a_typo_price() -> None:
    engine = RiskEngine(RiskLimits(**{**OFF, "fat_finger_price_pct": 0.2}))
    decision = engine.check(make_order(limit_price=1000.0), make_ctx())
    assert decision.code is RejectCode.FAT_FINGER


def test_reducing_orders_pass_position_and_exposure_limits_when_over() -> None:
    # A book pushed over its limits by prices must still be able to sell down.
    limits = RiskLimits(
        **{
            **OFF,
            "max_position_shares": 1_000,
            "max_gross_exposure_pct": 0.1,
            "max_symbol_exposure_pct": 0.05,
        }
    )
    ctx = make_ctx(positions={"GARAN": 5_000})
    sell = make_order(side=Side.SELL, quantity=1_000)
    assert check_position(sell, ctx, limits) is ACCEPT
    assert check_exposure(sell, ctx, limits) is ACCEPT
    buy = make_order(quantity=1)
    assert check_position(buy, ctx, limits).code is RejectCode.POSITION_LIMIT
    assert check_exposure(buy, ctx, limits).code is RejectCode.EXPOSURE


def test_exposure_needs_prices_for_every_position() -> None:
    limits = RiskLimits(**{**OFF, "max_gross_exposure_pct": 1.0})
    ctx = make_ctx(positions={"THYAO": 10}, last_prices={"GARAN": 100.0})
    decision = check_exposure(make_order(), ctx, limits)
    assert decision.code is RejectCode.EXPOSURE
    assert "THYAO" in decision.reason


def test_unclassified_symbols_share_a_sector() -> None:
    instruments = {**INSTRUMENTS, "XYZ": Instrument("XYZ"), "QQQ": Instrument("QQQ")}
    last = {**LAST, "XYZ": 10.0, "QQQ": 10.0}
    ctx = make_ctx(instruments=instruments, last_prices=last, positions={"XYZ": 20_000})
    limits = RiskLimits(**{**OFF, "max_sector_gross_pct": 0.3})
    fits = make_order(symbol="QQQ", limit_price=10.0, quantity=10_000)
    assert check_exposure(fits, ctx, limits) is ACCEPT
    over = make_order(symbol="QQQ", limit_price=10.0, quantity=10_001)
    blocked = check_exposure(over, ctx, limits)
    assert blocked.code is RejectCode.EXPOSURE and "(unclassified)" in blocked.reason


def test_tick_check_uses_the_table_in_force_on_the_day() -> None:
    limits = RiskLimits()
    order = make_order(symbol="THYAO", limit_price=300.1)
    assert check_tick(order, make_ctx(day=date(2022, 6, 1)), limits) is ACCEPT  # 0.10 grid
    assert check_tick(order, make_ctx(), limits).code is RejectCode.OFF_TICK  # 0.25 grid


def test_uptick_rule_variants() -> None:
    limits = RiskLimits(allow_short=True)
    at_last = make_order(side=Side.SELL, limit_price=100.0)
    below = make_order(side=Side.SELL, limit_price=99.9)
    up = make_ctx(index_drop_pct=0.025, last_tick_direction={"GARAN": 1})
    assert check_short_sale(at_last, up, limits) is ACCEPT  # zero-plus tick
    assert check_short_sale(below, up, limits).code is RejectCode.SHORT_SALE
    calm = make_ctx(index_drop_pct=0.0199, last_tick_direction={"GARAN": -1})
    assert check_short_sale(below, calm, limits) is ACCEPT  # rule not in force
    # A sell covered by the long position is not a short sale, whatever the index does.
    long = make_ctx(index_drop_pct=0.05, positions={"GARAN": 100})
    assert check_short_sale(below, long, limits) is ACCEPT


def test_collar_measures_from_the_last_price_not_the_band() -> None:
    limits = RiskLimits(price_collar_pct=0.01)
    ctx = make_ctx(last_prices={**LAST, "GARAN": 104.0})
    assert check_price_collar(make_order(limit_price=105.0), ctx, limits) is ACCEPT
    assert check_price_collar(make_order(limit_price=105.1), ctx, limits).code is (
        RejectCode.PRICE_COLLAR
    )


def test_is_reducing() -> None:
    ctx = make_ctx(
        positions={"GARAN": 100, "AKBNK": -50}, open_orders={"GARAN": OpenQuantity(sell=30)}
    )
    assert is_reducing(make_order(side=Side.SELL, quantity=70), ctx)
    assert not is_reducing(make_order(side=Side.SELL, quantity=71), ctx)  # would cross flat
    assert not is_reducing(make_order(side=Side.BUY, quantity=1), ctx)
    assert is_reducing(make_order(symbol="AKBNK", side=Side.BUY, quantity=50), ctx)
    assert not is_reducing(make_order(symbol="THYAO", side=Side.SELL, quantity=1), ctx)


def test_open_quantities_sums_leaves_of_open_orders() -> None:
    a = OrderState(make_order(quantity=100))
    a.apply(ExecutionReport(a.order.client_order_id, OrderStatus.ACCEPTED, 1))
    a.apply(
        ExecutionReport(
            a.order.client_order_id, OrderStatus.PARTIALLY_FILLED, 2, last_qty=40, last_price=100.0
        )
    )
    b = OrderState(make_order(side=Side.SELL, quantity=70))
    c = OrderState(make_order(quantity=500))
    c.apply(ExecutionReport(c.order.client_order_id, OrderStatus.REJECTED, 1))
    assert open_quantities([a, b, c]) == {"GARAN": OpenQuantity(buy=60, sell=70)}


def test_bad_input_never_raises() -> None:
    engine = RiskEngine()
    ctx = make_ctx()
    weird = [
        make_order(client_order_id=""),
        make_order(quantity=-5),
        make_order(limit_price=float("nan")),
        make_order(limit_price=-1.0),
        make_order(order_type=OrderType.MARKET, limit_price=100.0),
        make_order(quantity="100"),
        make_order(symbol=""),
        make_order(limit_price=float("inf")),
        make_order(side="BUY"),
        make_order(ts_ns=1.5),
        make_order(symbol=None),
    ]
    for order in weird:
        decision = engine.check(order, ctx)
        assert isinstance(decision, RiskDecision) and not decision.accepted
        assert decision.code in (RejectCode.INVALID_ORDER, RejectCode.UNKNOWN_SYMBOL)


def test_run_pre_trade_checks_matches_the_engine_when_active() -> None:
    limits = RiskLimits(max_order_quantity=500)
    ctx = make_ctx(adv={"GARAN": 1_000_000})
    for kw in (dict(quantity=501), dict(limit_price=100.05), dict(symbol="X"), dict()):
        order = make_order(**kw)
        pure = run_pre_trade_checks(order, ctx, limits, ActivityCounters())
        hosted = RiskEngine(limits).check(order, ctx)
        assert pure == hosted


def test_a_check_that_cannot_evaluate_fails_closed_with_its_code() -> None:
    # A host bug (a price that is not a number) must reject, not raise into the trading path.
    ctx = make_ctx(last_prices={**LAST, "GARAN": "100"})
    decision = RiskEngine().check(make_order(), ctx)
    assert not decision.accepted
    assert decision.code is RejectCode.FAT_FINGER
    assert "could not evaluate" in decision.reason
