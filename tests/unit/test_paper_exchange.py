"""The paper exchange: Venue behaviour, exchange rejects, bar fills and parity with the backtest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from quant.clock import SimulatedClock
from quant.data.bars import time_bars
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
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
from quant.execution.venue import Venue
from quant.market.bands import Band
from quant.market.calendar import SessionPhase, TradingCalendar
from quant.market.instrument import Instrument
from quant.risk.limits import RiskLimits
from quant.sim.backtest import BacktestConfig, run_backtest
from quant.sim.costs import bist_default_costs
from quant.sim.matching import is_request_answer
from quant.sim.paper import PaperExchange, is_held
from quant.sim.strategy import Bar, StrategyContext
from quant.strategies import MovingAverageCrossover

ISTANBUL = ZoneInfo("Europe/Istanbul")
NS = 1_000_000_000
DAY = date(2024, 3, 5)  # an XIST Tuesday
BAR_FIELDS = ["symbol", "ts", "ts_end", "open", "high", "low", "close", "volume", "vwap"]
BAR_FIELDS.append("trade_count")


def local_ns(day: date, hhmm: str) -> int:
    moment = datetime.combine(day, time.fromisoformat(hhmm), ISTANBUL).astimezone(UTC)
    return int(moment.timestamp()) * NS


def minute_bar(symbol: str, hhmm: str, o: float, h: float, lo: float, c: float, v: int) -> Bar:
    ts = local_ns(DAY, hhmm)
    return Bar(symbol, ts, ts + 60 * NS, o, h, lo, c, v, c, 5)


def exchange(**kwargs) -> tuple[PaperExchange, SimulatedClock]:
    clock = SimulatedClock(local_ns(DAY, "09:00"))
    ex = PaperExchange(
        [Instrument("AAA"), Instrument("BBB")], clock, calendar=TradingCalendar(), **kwargs
    )
    ex.start_session(DAY, {"AAA": 100.0, "BBB": 20.0})
    return ex, clock


def order(oid: str, side: Side = Side.BUY, qty: int = 100, price: float | None = None, **kw):
    otype = OrderType.LIMIT if price is not None else OrderType.MARKET
    return Order(oid, kw.pop("symbol", "AAA"), side, qty, otype, price, **kw)


def at(clock: SimulatedClock, hhmm: str) -> None:
    clock.advance_to(local_ns(DAY, hhmm))


def test_is_a_venue_and_answers_with_reports() -> None:
    ex, clock = exchange()
    venue: Venue = ex
    at(clock, "10:30")
    (ack,) = venue.submit(order("o1", price=99.0))
    assert ack.status is OrderStatus.ACCEPTED and ack.venue_order_id
    assert venue.status("o1").status is OrderStatus.ACCEPTED
    assert venue.status("nope") is None
    (cxl,) = venue.cancel("o1", clock.now_ns())
    assert cxl.status is OrderStatus.CANCELLED
    # cancelling again is a refused request, not a transition
    (again,) = venue.cancel("o1", clock.now_ns())
    assert again.reject_code is RejectCode.INVALID_ORDER and is_request_answer(again)
    (unknown,) = venue.cancel("zzz", clock.now_ns())
    assert unknown.status is OrderStatus.REJECTED and is_request_answer(unknown)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: order("x", price=100.03), RejectCode.OFF_TICK),
        (lambda: order("x", price=150.0), RejectCode.OUTSIDE_BAND),
        (lambda: order("x", qty=0), RejectCode.INVALID_ORDER),
        (lambda: order("x", qty=-5), RejectCode.INVALID_ORDER),
        (lambda: order("x", symbol="ZZZ"), RejectCode.UNKNOWN_SYMBOL),
        (lambda: "not an order", RejectCode.INVALID_ORDER),
    ],
)
def test_rejects_with_codes_never_raises(make, code) -> None:
    ex, clock = exchange()
    at(clock, "10:30")
    reports = ex.submit(make())
    assert [r.status for r in reports] == [OrderStatus.REJECTED]
    assert reports[0].reject_code is code and reports[0].reason


def test_outside_session_and_halt_rejects() -> None:
    ex, clock = exchange()
    at(clock, "09:57")  # opening uncross: IOC cannot wait for continuous trading
    (r,) = ex.submit(order("ioc", time_in_force=TimeInForce.IOC))
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    at(clock, "18:06")  # closing uncross: a market order cannot enter trades at the close
    (r,) = ex.submit(order("mkt"))
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    ex.end_session()
    (r,) = ex.submit(order("late-ioc", time_in_force=TimeInForce.IOC))
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    # halts: market, IOC and FOK orders are refused, a DAY limit rests but does not fill
    ex2, clock2 = exchange()
    ex2.add_halt("AAA", local_ns(DAY, "11:00"), local_ns(DAY, "11:30"))
    at(clock2, "11:10")
    (r,) = ex2.submit(order("h1"))
    assert r.reject_code is RejectCode.TRADING_HALTED
    (r,) = ex2.submit(order("h2", price=101.0))
    assert r.status is OrderStatus.ACCEPTED
    assert ex2.on_bar("AAA", minute_bar("AAA", "11:10", 100, 100.5, 99, 100, 10_000)) == []
    assert not ex2.accepts_market_orders("AAA")
    fills = ex2.on_bar("AAA", minute_bar("AAA", "11:30", 100, 100.5, 99, 100, 10_000))
    assert [f.last_qty for f in fills] == [100]  # the halt ended at 11:30


def test_market_order_fills_next_bar_open_under_the_participation_cap() -> None:
    ex, clock = exchange(max_participation=0.1)
    at(clock, "10:31")
    (ack,) = ex.submit(order("m", qty=1500))
    assert ack.status is OrderStatus.ACCEPTED
    # a bar that ended when the order entered cannot fill it (the decision bar)
    assert ex.on_bar("AAA", minute_bar("AAA", "10:30", 99, 101, 98, 100, 50_000)) == []
    f1 = ex.on_bar("AAA", minute_bar("AAA", "10:31", 100.5, 101, 99, 100, 10_000))
    assert [(f.status, f.last_qty, f.last_price) for f in f1] == [
        (OrderStatus.PARTIALLY_FILLED, 1000, 100.5)
    ]
    assert f1[0].ts_ns == local_ns(DAY, "10:32")
    # a bar delivered twice is ignored
    assert ex.on_bar("AAA", minute_bar("AAA", "10:31", 100.5, 101, 99, 100, 10_000)) == []
    assert ex.stale_bars == 1
    f2 = ex.on_bar("AAA", minute_bar("AAA", "10:32", 100.7, 101, 99, 100, 10_000))
    assert [(f.status, f.last_qty, f.last_price, f.cum_qty) for f in f2] == [
        (OrderStatus.FILLED, 500, 100.7, 1500)
    ]


def test_limit_ioc_fok_and_day_expiry() -> None:
    ex, clock = exchange()
    at(clock, "10:31")
    ex.submit(order("lim", price=99.5))
    ex.submit(order("ioc", price=99.0, time_in_force=TimeInForce.IOC))
    ex.submit(order("fok", qty=5000, time_in_force=TimeInForce.FOK))
    out = ex.on_bar("AAA", minute_bar("AAA", "10:31", 100, 100.5, 99.8, 100, 10_000))
    by = {r.client_order_id: r for r in out}
    assert by["ioc"].status is OrderStatus.CANCELLED
    assert by["fok"].status is OrderStatus.CANCELLED  # 5000 > 10% of 10,000
    assert "lim" not in by  # the bar did not trade through 99.5
    out = ex.end_session()
    assert [(r.client_order_id, r.status) for r in out] == [("lim", OrderStatus.EXPIRED)]
    assert out[0].ts_ns == local_ns(DAY, "18:10")


def test_held_orders_enter_at_the_next_phase_and_off_session_at_the_next_open() -> None:
    ex, clock = exchange()
    at(clock, "09:56")  # opening uncross: held until continuous trading
    (held,) = ex.submit(order("h"))
    assert held.status is OrderStatus.NEW and is_held(held)
    assert ex.open_orders("AAA")[0].order.client_order_id == "h"
    out = ex.on_bar("AAA", minute_bar("AAA", "10:00", 100, 100.5, 99.5, 100, 10_000))
    assert [(r.status, r.ts_ns) for r in out] == [
        (OrderStatus.ACCEPTED, local_ns(DAY, "10:00")),
        (OrderStatus.FILLED, local_ns(DAY, "10:01")),
    ]
    # after the session an order waits for the next open; cancel answers ack + cancel
    ex.end_session()
    clock.advance_to(local_ns(DAY, "18:30"))
    (h2,) = ex.submit(order("next", price=100.0))
    assert is_held(h2)
    nxt = date(2024, 3, 6)
    out = ex.start_session(nxt, {"AAA": 100.0, "BBB": 20.0})
    assert [(r.client_order_id, r.status) for r in out] == [("next", OrderStatus.ACCEPTED)]
    # an order that was held and then cancelled: the router-style ack then the cancel
    ex.end_session()
    clock.advance_to(local_ns(nxt, "18:30"))
    ex.submit(order("gone"))
    out = ex.cancel_all(clock.now_ns(), "AAA")
    assert [(r.client_order_id, r.status) for r in out] == [
        ("gone", OrderStatus.ACCEPTED),
        ("gone", OrderStatus.CANCELLED),
    ]


def test_duplicate_ids_and_replace() -> None:
    ex, clock = exchange()
    at(clock, "10:30")
    ex.submit(order("a", price=99.0))
    ex.submit(order("b", price=99.0))
    (dup,) = ex.submit(order("a", price=99.0))
    assert dup.reject_code is RejectCode.DUPLICATE_ORDER_ID
    (rep,) = ex.replace("a", clock.now_ns(), limit_price=99.1)
    assert rep.reason.startswith("replaced") and is_request_answer(rep)
    assert ex.status("a").order.limit_price == 99.1
    assert [s.order.client_order_id for s in ex.working["AAA"]] == ["b", "a"]  # lost priority
    (bad,) = ex.replace("a", clock.now_ns(), limit_price=99.13)
    assert bad.reject_code is RejectCode.OFF_TICK and is_request_answer(bad)


# ------------------------------------------------------------------------------ parity


class PaperContext(StrategyContext):
    """A strategy host over a ``PaperExchange`` (what the live pipeline does across actors),
    driven in the backtest's order of events."""

    def __init__(self, ex: PaperExchange, clock: SimulatedClock, strategy_id: str) -> None:
        super().__init__(strategy_id)
        self.ex, self.clock = ex, clock
        self.pos: dict[str, int] = {}
        self.fills: list[ExecutionReport] = []

    def book(self, reports: list[ExecutionReport]) -> None:
        for r in reports:
            if r.last_qty:
                self.fills.append(r)
                self.pos[r.symbol] = self.pos.get(r.symbol, 0) + r.side.sign * r.last_qty

    def now_ns(self) -> int:
        return self.clock.now_ns()

    @property
    def day(self) -> date:
        assert self.ex.day is not None
        return self.ex.day

    def phase(self) -> SessionPhase | None:
        return self.ex.phase()

    def accepts_market_orders(self, symbol: str) -> bool:
        return self.ex.accepts_market_orders(symbol)

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self.ex.instruments

    def last_price(self, symbol: str) -> float | None:
        return self.ex.last_price(symbol)

    def band(self, symbol: str) -> Band | None:
        return self.ex.band(symbol)

    def position(self, symbol: str) -> int:
        return self.pos.get(symbol, 0)

    def positions(self) -> dict[str, int]:
        return {s: q for s, q in self.pos.items() if q}

    cash = equity = buying_power = property(lambda self: 1e12)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return self.ex.open_orders(symbol)

    def open_quantity(self, symbol: str) -> int:
        return sum(
            st.order.side.sign * (st.order.quantity - st.filled_qty)
            for st in self.ex.open_orders(symbol)
        )

    def submit(self, order: Order) -> ExecutionReport:
        reports = self.ex.submit(order)
        self.book(reports)
        return next(r for r in reports if r.client_order_id == order.client_order_id)

    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        reports = self.ex.cancel(client_order_id, self.now_ns())
        self.book(reports)
        return reports[-1] if reports else None

    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        reports = self.ex.cancel_all(self.now_ns(), symbol)
        self.book(reports)
        return reports


@pytest.fixture(scope="module")
def two_days() -> tuple[pl.DataFrame, list[date], list[str]]:
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=3, n_sessions=2, trades_per_day=600, seed=11)
    )
    days = market.sessions()
    trades = pl.concat([market.day(d).trades for d in days])
    return time_bars(trades, "1m"), days, market.symbols


@pytest.mark.parametrize("costs", ["none", "bist"])
def test_parity_with_run_backtest_on_a_synthetic_day(two_days, costs: str) -> None:
    bars, (d1, d2), symbols = two_days
    config = BacktestConfig(
        start=d2,
        costs=costs,
        max_participation=0.05,
        risk=RiskLimits(max_order_to_trade_ratio=None, fat_finger_adv_pct=None),
        mark_interval_minutes=None,
    )

    def strategy() -> MovingAverageCrossover:
        return MovingAverageCrossover(fast=3, slow=8, target_notional=150_000)

    result = run_backtest(config, strategy(), bars)
    assert result.error is None
    assert result.orders.filter(pl.col("status") == "rejected").height == 0

    # the paper side: the same bars, pushed in the backtest's merge order
    clock = SimulatedClock()
    ex = PaperExchange.from_config(config, symbols, clock)
    day1 = bars.filter(pl.col("ts").dt.date() == d1).sort("ts_end")
    closes = dict(day1.group_by("symbol").agg(pl.col("close").last()).iter_rows())
    adv = dict(day1.group_by("symbol").agg(pl.col("volume").sum()).iter_rows())
    strat = strategy()
    ctx = PaperContext(ex, clock, strat.strategy_id)
    strat.on_start(ctx)
    ctx.book(ex.start_session(d2, closes, adv=adv))
    clock.advance_to(ex.t0)
    strat.on_session_start(ctx, d2)
    day2 = (
        bars.filter(pl.col("ts").dt.date() == d2)
        .sort("ts_end", "symbol")
        .with_columns(pl.col("ts", "ts_end").dt.epoch("ns"))
    )
    for row in day2.select(BAR_FIELDS).iter_rows():
        bar = Bar(*row)
        clock.advance_to(bar.ts_end_ns)
        ctx.book(ex.on_bar(bar.symbol, bar))
        strat.on_bar(ctx, bar)
    ctx.book(ex.end_session())

    expected = result.fills.select(
        pl.col("ts").dt.epoch("ns"), "client_order_id", "symbol", "side", "quantity", "price",
        "fees",
    ).rows()  # fmt: skip
    got = [
        (r.ts_ns, r.client_order_id, r.symbol, int(r.side), r.last_qty, r.last_price, r.fees)
        for r in ctx.fills
    ]
    assert len(expected) > 10
    per_order = pl.Series([row[1] for row in expected]).value_counts()
    assert per_order["count"].max() > 1  # partial fills under the participation cap
    if costs == "bist":
        assert all(row[6] > 0 for row in expected)
    assert got == expected


def test_from_config_uses_the_backtest_costs() -> None:
    clock = SimulatedClock()
    ex = PaperExchange.from_config(BacktestConfig(costs="bist"), ["AAA"], clock)
    assert repr(ex.costs.fees) == repr(bist_default_costs(2.0).fees)
