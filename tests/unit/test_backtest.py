"""The event-driven backtest engine: timing, sessions, settlement, corporate actions, risk
rejects, strategy errors, determinism, no look-ahead and streaming memory."""

from __future__ import annotations

import json
import math
import random
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from quant.data.lake import Lake
from quant.data.schema import conform, polars_schema
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.market.bands import PriceBand
from quant.risk.limits import RiskLimits
from quant.sim.backtest import BacktestConfig, FrameBarSource, HaltWindow, run_backtest
from quant.sim.costs import bist_default_fees
from quant.sim.result import BacktestResult, round_trips
from quant.sim.strategy import Bar, CorporateActionEvent, Strategy, StrategyContext
from quant.strategies import MovingAverageCrossover

ISTANBUL = ZoneInfo("Europe/Istanbul")
NS = 1_000_000_000
D1, D2, D3 = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)  # XIST Mon, Tue, Wed


def local_ns(day: date, hhmm: str) -> int:
    moment = datetime.combine(day, time.fromisoformat(hhmm), ISTANBUL).astimezone(UTC)
    return int(moment.timestamp()) * NS


def bars(symbol: str, day: date, rows: list[tuple]) -> pl.DataFrame:
    """1-minute bars; each row ``(local open "HH:MM", open, high, low, close[, volume])``."""
    data = []
    for row in rows:
        hhmm, o, h, lo, c = row[:5]
        volume = row[5] if len(row) > 5 else 10_000
        ts = local_ns(day, hhmm)
        data.append((ts, ts + 60 * NS, symbol, o, h, lo, c, volume, c, 10))
    frame = pl.DataFrame(
        data,
        schema=["ts", "ts_end", "symbol", "open", "high", "low", "close", "volume", "vwap", "n"],
        orient="row",
    ).rename({"n": "trade_count"})
    frame = frame.with_columns(pl.col("ts", "ts_end").cast(pl.Datetime("ns", "UTC")))
    return conform(frame, "bars")


def session(symbol: str, day: date, base: float, closing: float | None = None) -> pl.DataFrame:
    """A BIST-like day: the opening print (09:59), ten continuous minutes from 10:00 with opens
    rising by 0.1 from ``base + 0.1``, the last continuous minute (17:59), the closing uncross
    (18:05) and one trade-at-close minute (18:08), both at ``closing``."""
    closing = closing if closing is not None else round(base + 1.0, 2)
    rows = [("09:59", base, base, base, base)]
    for k in range(10):
        o = round(base + 0.1 * (k + 1), 2)
        rows.append((f"10:{k:02d}", o, round(o + 0.2, 2), round(o - 0.2, 2), round(o + 0.1, 2)))
    rows.append(("17:59", closing, closing, closing, closing))
    rows.append(("18:05", closing, closing, closing, closing))
    rows.append(("18:08", closing, closing, closing, closing))
    return bars(symbol, day, rows)


def clock(ts_ns: int) -> tuple[date, str]:
    moment = datetime.fromtimestamp(ts_ns / NS, tz=UTC).astimezone(ISTANBUL)
    return moment.date(), moment.strftime("%H:%M")


Action = Callable[[StrategyContext, Bar | None], object]


class Script(Strategy):
    """Runs the planned actions at the close of given bars (key: symbol, day, local close
    time) or at a session end (key: "end", day), and records what it was told."""

    name = "script"

    def __init__(self, plan: dict[tuple, Action] | None = None) -> None:
        super().__init__()
        self.plan = plan or {}
        self.returned: list[object] = []
        self.fills: list[ExecutionReport] = []
        self.updates: list[ExecutionReport] = []
        self.events: list[CorporateActionEvent] = []
        self.seen: list[tuple[int, str]] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.seen.append((bar.ts_end_ns, bar.symbol))
        day, hhmm = clock(bar.ts_end_ns)
        action = self.plan.get((bar.symbol, day, hhmm))
        if action is not None:
            self.returned.append(action(ctx, bar))

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        action = self.plan.get(("end", day))
        if action is not None:
            self.returned.append(action(ctx, None))

    def on_fill(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self.fills.append(report)

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self.updates.append(report)

    def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
        self.events.append(event)


def market(symbol: str, side: Side, qty: int, tif: TimeInForce = TimeInForce.DAY) -> Action:
    return lambda ctx, bar: ctx.submit(ctx.market_order(symbol, side, qty, tif))


def limit(symbol: str, side: Side, qty: int, price: float, tif=TimeInForce.DAY) -> Action:
    return lambda ctx, bar: ctx.submit(ctx.limit_order(symbol, side, qty, price, tif))


def config(**kw) -> BacktestConfig:
    base = {"costs": "none", "initial_cash": 1_000_000.0, "mark_interval_minutes": None}
    base.update(kw)
    return BacktestConfig(**base)


def run(frame: pl.DataFrame, strategy: Strategy, actions=None, **kw) -> BacktestResult:
    halts = kw.pop("halts", ())
    return run_backtest(
        config(**kw), strategy, FrameBarSource(frame, actions, chunk_sessions=1), halts=halts
    )


def fills_of(result: BacktestResult) -> list[tuple]:
    return [
        (clock(ts)[1], sym, side, qty, price)
        for ts, sym, side, qty, price in result.fills.select(
            pl.col("ts").dt.epoch("ns"), "symbol", "side", "quantity", "price"
        ).iter_rows()
    ]


# ------------------------------------------------------------------------- timing of fills


def test_market_order_fills_at_the_next_bars_open_never_on_its_own_bar() -> None:
    data = pl.concat([session("SYMA", D1, 100.0), session("SYMB", D1, 50.0)])
    plan = {("SYMA", D1, "10:01"): market("SYMA", Side.BUY, 10)}
    strat = Script(plan)
    result = run(data, strat)
    ack = strat.returned[0]
    assert ack.status is OrderStatus.ACCEPTED
    # decided on the bar 10:00-10:01 (open 100.1): fills at the 10:01 bar's open, stamped at
    # that bar's close
    assert fills_of(result) == [("10:02", "SYMA", 1, 10, 100.2)]
    assert strat.fills[0].last_price == 100.2
    assert result.orders["status"].to_list() == ["filled"]


def test_exchange_rules_hold_orders_in_no_order_phases_and_refuse_market_at_the_close() -> None:
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), session("SYMA", D2, 101.5, 102.0)])
    plan = {
        # sent at 18:00 (closing price publication): held, enters the closing auction at 18:01
        ("SYMA", D1, "18:00"): market("SYMA", Side.BUY, 10),
        # sent at 18:06 (closing uncross): the next phase takes limit orders only
        ("SYMA", D1, "18:06"): market("SYMA", Side.BUY, 7),
        # sent in trades at the close: a market order is refused by the exchange
        ("SYMA", D1, "18:09"): market("SYMA", Side.BUY, 3),
        # after the close: an off-session order for the next opening auction
        ("end", D1): market("SYMA", Side.BUY, 5),
    }
    strat = Script(plan)
    result = run(data, strat)
    held, refused, at_close, off = strat.returned
    assert held.status is OrderStatus.NEW and "closing_auction" in held.reason
    assert refused.status is OrderStatus.REJECTED
    assert refused.reject_code is RejectCode.OUTSIDE_SESSION
    assert at_close.status is OrderStatus.REJECTED
    assert at_close.reject_code is RejectCode.OUTSIDE_SESSION
    assert off.status is OrderStatus.NEW and "next session" in off.reason
    assert fills_of(result) == [
        ("18:06", "SYMA", 1, 10, 101.0),  # the closing uncross bar (18:05) at the close price
        ("10:00", "SYMA", 1, 5, 101.5),  # day 2's opening print
    ]
    # the held orders' acknowledgements reached the strategy when they entered
    accepted = [r for r in strat.updates if r.status is OrderStatus.ACCEPTED]
    assert [clock(r.ts_ns)[1] for r in accepted] == ["18:01", "09:40"]


def test_ioc_orders_are_never_held_outside_continuous_trading() -> None:
    data = session("SYMA", D1, 100.0)
    plan = {
        ("end", D1): market("SYMA", Side.BUY, 5, TimeInForce.IOC),
        ("SYMA", D1, "18:00"): limit("SYMA", Side.BUY, 5, 100.0, TimeInForce.FOK),
    }
    strat = Script(plan)
    result = run(data, strat)
    assert [r.reject_code for r in strat.returned] == [RejectCode.OUTSIDE_SESSION] * 2
    assert result.fills.height == 0


def test_bars_rules_fill_every_order_at_the_next_bar_whatever_the_phase() -> None:
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), session("SYMA", D2, 101.5, 102.0)])
    plan = {
        ("SYMA", D1, "18:06"): market("SYMA", Side.BUY, 7),  # next bar: trades at close
        ("SYMA", D1, "18:09"): market("SYMA", Side.BUY, 3),  # last bar: next day's first
    }
    result = run(data, Script(plan), session_rules="bars")
    assert fills_of(result) == [("18:09", "SYMA", 1, 7, 101.0), ("10:00", "SYMA", 1, 3, 101.5)]


def test_day_orders_expire_at_the_session_end() -> None:
    data = pl.concat([session("SYMA", D1, 100.0), session("SYMA", D2, 101.5)])
    plan = {("SYMA", D1, "10:01"): limit("SYMA", Side.BUY, 10, 96.0)}
    strat = Script(plan)
    result = run(data, strat)
    assert result.fills.height == 0
    expired = [r for r in strat.updates if r.status is OrderStatus.EXPIRED]
    assert len(expired) == 1
    assert clock(expired[0].ts_ns) == (D1, "18:10")  # the last trade time of the session
    assert result.orders["status"].to_list() == ["expired"]


def test_limit_orders_fill_only_when_the_bar_trades_through() -> None:
    data = session("SYMA", D1, 100.0)
    plan = {
        ("SYMA", D1, "10:01"): limit("SYMA", Side.BUY, 10, 100.1),  # 10:01 low is 100.0
        ("SYMA", D1, "10:02"): limit("SYMA", Side.SELL, 10, 100.7),  # 10:03 high 100.6, 10:04 100.7
    }
    result = run(data, Script(plan))
    assert fills_of(result) == [("10:02", "SYMA", 1, 10, 100.1), ("10:06", "SYMA", -1, 10, 100.7)]


# ------------------------------------------------------------------------------ multi-symbol


def test_bars_of_many_symbols_are_delivered_in_time_order_then_symbol_order() -> None:
    m = SyntheticMarket(SyntheticMarketConfig(n_symbols=4, n_sessions=3, seed=11))
    frame = m.minute_bars()
    strat = Script()
    result = run_backtest(config(), strat, FrameBarSource(frame))
    assert len(strat.seen) == frame.height == result.extra["bars"]
    assert strat.seen == sorted(strat.seen)
    assert {s for _, s in strat.seen} == set(m.symbols)
    assert result.daily.height == 3


# ------------------------------------------------------------------------------ settlement


def _t2_plan() -> dict:
    return {
        ("SYMA", D1, "10:01"): market("SYMA", Side.BUY, 90),
        ("SYMA", D1, "10:05"): market("SYMA", Side.SELL, 90),
        ("SYMA", D2, "10:01"): market("SYMA", Side.BUY, 50),
        ("SYMA", D3, "10:01"): market("SYMA", Side.BUY, 50),
    }


def test_t_plus_2_buying_power_is_respected() -> None:
    data = pl.concat([session("SYMA", d, 100.0) for d in (D1, D2, D3)])
    strat = Script(_t2_plan())
    result = run(data, strat, initial_cash=10_000.0, use_unsettled_proceeds=False)
    buy1, sell1, buy2, buy3 = strat.returned
    assert buy1.status is OrderStatus.ACCEPTED and sell1.status is OrderStatus.ACCEPTED
    # Tuesday: the sale of Monday settles on Wednesday, so only ~1,000 TRY can be spent
    assert buy2.status is OrderStatus.REJECTED
    assert buy2.reject_code is RejectCode.INSUFFICIENT_FUNDS
    assert buy3.status is OrderStatus.ACCEPTED  # Wednesday: settled
    assert result.orders["reject_code"].to_list() == [None, None, "INSUFFICIENT_FUNDS", None]


def test_t_plus_2_netting_lets_unsettled_proceeds_buy() -> None:
    data = pl.concat([session("SYMA", d, 100.0) for d in (D1, D2, D3)])
    strat = Script(_t2_plan())
    run(data, strat, initial_cash=10_000.0, use_unsettled_proceeds=True)
    assert [r.status for r in strat.returned] == [OrderStatus.ACCEPTED] * 4


# ------------------------------------------------------------------------ corporate actions


def _actions(*rows: tuple) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows, schema=["symbol", "ex_date", "kind", "ratio", "price", "amount"], orient="row"
    )
    return frame.cast(dict(polars_schema("corporate_actions")))


def test_a_split_moves_the_position_cancels_pending_orders_and_keeps_equity() -> None:
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), session("SYMA", D2, 50.5, 51.0)])
    actions = _actions(("SYMA", D2, "split", 2.0, None, None))
    plan = {
        ("SYMA", D1, "10:01"): market("SYMA", Side.BUY, 10),
        ("end", D1): limit("SYMA", Side.SELL, 10, 101.0),  # priced before the split
    }
    strat = Script(plan)
    result = run(data, strat, actions)
    assert result.error is None
    (event,) = strat.events
    assert (event.kind, event.share_factor, event.price_factor) == ("split", 2.0, 0.5)
    cancelled = [r for r in strat.updates if r.status is OrderStatus.CANCELLED]
    assert len(cancelled) == 1 and "corporate action" in cancelled[0].reason
    assert result.orders["status"].to_list() == ["filled", "cancelled"]
    # 10 shares became 20; marked at 51 on day 2 (the split price of day 1's 101 is 50.5)
    eq1, eq2 = result.daily["equity"].to_list()
    cash = 1_000_000.0 - 10 * 100.2
    assert eq1 == pytest.approx(cash + 10 * 101.0)
    assert eq2 == pytest.approx(cash + 20 * 51.0)
    # the round trip is still open (no exit), so none is listed
    assert result.round_trips.height == 0


def test_a_dividend_is_paid_net_of_withholding_and_lowers_the_band_reference() -> None:
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), session("SYMA", D2, 99.1, 99.5)])
    actions = _actions(("SYMA", D2, "dividend", None, None, 2.0))
    plan = {
        ("SYMA", D1, "10:01"): market("SYMA", Side.BUY, 10),
        # day 2's band comes from 101 - 2 = 99: its upper limit is 108.9
        ("SYMA", D2, "10:01"): limit("SYMA", Side.BUY, 1, 109.0),
    }
    strat = Script(plan)
    result = run(data, strat, actions, risk=RiskLimits(price_collar_pct=None))
    assert result.stats["dividends"] == pytest.approx(10 * 2.0 * 0.85)
    assert result.stats["withholding_tax"] == pytest.approx(10 * 2.0 * 0.15)
    (event,) = strat.events
    assert event.price_factor == pytest.approx(99.0 / 101.0)
    band = PriceBand().daily(99.0, D2)
    assert band.upper == 108.9
    assert strat.returned[1].reject_code is RejectCode.OUTSIDE_BAND


# ------------------------------------------------------------------------------- rejects


def test_bad_orders_are_rejected_with_codes_never_raised() -> None:
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), session("SYMA", D2, 101.5, 102.0)])

    def order(**kw) -> Action:
        def act(ctx: StrategyContext, bar: Bar | None) -> ExecutionReport:
            fields = {
                "client_order_id": ctx.next_order_id(),
                "symbol": "SYMA",
                "side": Side.BUY,
                "quantity": 10,
                "order_type": OrderType.MARKET,
                "ts_ns": ctx.now_ns(),
                "strategy_id": ctx.strategy_id,
            }
            fields.update(kw)
            return ctx.submit(Order(**fields))

        return act

    def twice(ctx: StrategyContext, bar: Bar | None) -> list[ExecutionReport]:
        o = ctx.market_order("SYMA", Side.BUY, 1)
        return [ctx.submit(o), ctx.submit(o)]

    plan = {
        ("SYMA", D2, "10:01"): order(quantity=0),
        ("SYMA", D2, "10:02"): order(quantity=-5),
        ("SYMA", D2, "10:03"): order(quantity=1.5),
        ("SYMA", D2, "10:04"): order(symbol="NOPE"),
        ("SYMA", D2, "10:05"): order(order_type=OrderType.LIMIT, limit_price=101.53),
        ("SYMA", D2, "10:06"): order(order_type=OrderType.LIMIT, limit_price=120.0),
        ("SYMA", D2, "10:07"): order(),  # inside the halt window
        ("SYMA", D2, "10:09"): twice,
        ("SYMA", D1, "10:01"): lambda ctx, bar: ctx.submit("buy 10 SYMA"),  # type: ignore
        ("SYMA", D1, "10:02"): order(side=1),
        ("end", D2): order(time_in_force=TimeInForce.IOC),
    }
    halt = HaltWindow("SYMA", local_ns(D2, "10:06"), local_ns(D2, "10:08"))
    strat = Script(plan)
    result = run(data, strat, halts=[halt])
    assert result.error is None
    assert [r.reject_code for r in strat.returned[:2]] == [RejectCode.INVALID_ORDER] * 2
    assert "not an Order" in strat.returned[0].reason
    codes = [r.reject_code for r in strat.returned[2:-2]]
    assert codes == [
        RejectCode.INVALID_ORDER,
        RejectCode.INVALID_ORDER,
        RejectCode.INVALID_ORDER,
        RejectCode.UNKNOWN_SYMBOL,
        RejectCode.OFF_TICK,
        RejectCode.OUTSIDE_BAND,
        RejectCode.TRADING_HALTED,
    ]
    first, again = strat.returned[-2]
    assert first.status is OrderStatus.ACCEPTED
    assert again.reject_code is RejectCode.DUPLICATE_ORDER_ID
    assert strat.returned[-1].reject_code is RejectCode.OUTSIDE_SESSION
    rejected = result.orders.filter(pl.col("status") == "rejected")
    assert rejected.height == 11
    assert rejected["reason"].str.len_chars().min() > 0
    assert result.stats["rejects"] == 11


def test_a_market_wide_halt_rejects_every_symbol() -> None:
    data = pl.concat([session("SYMA", D1, 100.0), session("SYMB", D1, 50.0)])
    plan = {
        ("SYMA", D1, "10:03"): market("SYMA", Side.BUY, 1),
        ("SYMB", D1, "10:03"): market("SYMB", Side.BUY, 1),
    }
    halt = HaltWindow(None, local_ns(D1, "10:02"), local_ns(D1, "10:30"))
    strat = Script(plan)
    run(data, strat, halts=[halt])
    assert [r.reject_code for r in strat.returned] == [RejectCode.TRADING_HALTED] * 2


def test_the_drawdown_guard_stops_new_risk() -> None:
    crash = bars(
        "SYMA",
        D2,
        [("09:59", 90.0, 90, 90, 90)] + [(f"10:{k:02d}", 90.0, 90.0, 90.0, 90.0) for k in range(5)],
    )
    data = pl.concat([session("SYMA", D1, 100.0, 101.0), crash])
    plan = {
        ("SYMA", D1, "10:01"): market("SYMA", Side.BUY, 9000),
        ("SYMA", D2, "10:03"): market("SYMA", Side.BUY, 10),
        ("SYMA", D2, "10:04"): market("SYMA", Side.SELL, 10),
    }
    strat = Script(plan)
    result = run(
        data, strat, drawdown_reduce_at=0.05, drawdown_halt_at=0.5, mark_interval_minutes=1
    )
    buy, sell = strat.returned[1:]
    assert buy.reject_code is RejectCode.DRAWDOWN  # reduce-only: buying adds risk
    assert sell.status is OrderStatus.ACCEPTED  # selling reduces it
    assert any(e["state"] == "reducing" for e in result.extra["risk_events"])


# ------------------------------------------------------------------------------------ costs


def test_bist_fees_are_charged_once_per_order_across_partial_fills() -> None:
    rows = [("09:59", 100.0, 100.0, 100.0, 100.0, 10_000)] + [
        (f"10:{k:02d}", 100.0, 100.0, 100.0, 100.0, 3_000) for k in range(8)
    ]
    data = bars("SYMA", D1, rows)
    plan = {("SYMA", D1, "10:00"): market("SYMA", Side.BUY, 1_000)}
    result = run(data, Script(plan), costs="bist", max_participation=0.1)
    fills = result.fills
    assert fills["quantity"].to_list() == [300, 300, 300, 100]
    # the slippage model moved every price up, on the grid
    assert all(p > 100.0 and round(p * 10) == p * 10 for p in fills["price"].to_list())
    avg = (fills["quantity"] * fills["price"]).sum() / 1_000
    one_order = bist_default_fees().fee("SYMA", Side.BUY, 1_000, avg)
    assert fills["fees"].sum() == pytest.approx(one_order, abs=1e-9)
    assert result.orders["fees"][0] == pytest.approx(one_order, abs=1e-9)
    cash = 1_000_000.0 - (fills["quantity"] * fills["price"]).sum() - one_order
    equity = result.equity.filter(pl.col("ts") == pl.col("ts").max())
    assert equity["cash"][0] == pytest.approx(cash, abs=0.011)


# ----------------------------------------------------------------------- strategy errors


class Exploding(Strategy):
    name = "exploding"

    def __init__(self, at: tuple[str, date, str], where: str = "on_bar") -> None:
        super().__init__("boom-1")
        self.at = at
        self.where = where

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        day, hhmm = clock(bar.ts_end_ns)
        if (bar.symbol, day, hhmm) == ("SYMA", D1, "10:01"):
            ctx.submit(ctx.market_order("SYMA", Side.BUY, 10))
        if (bar.symbol, day, hhmm) == self.at and self.where == "on_bar":
            raise ZeroDivisionError("division by zero in the signal")

    def on_fill(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        if self.where == "on_fill":
            raise KeyError("missing state")


def test_a_strategy_that_raises_stops_the_run_and_keeps_what_was_computed() -> None:
    data = pl.concat([session("SYMA", D1, 100.0), session("SYMA", D2, 101.5)])
    result = run(data, Exploding(("SYMA", D2, "10:03")))
    assert result.error is not None
    for needle in ("'boom-1'", "Exploding", "ZeroDivisionError", "on_bar", "SYMA"):
        assert needle in result.error
    assert "2024-03-05T07:03:00+00:00" in result.error  # 10:03 Istanbul
    assert result.fills.height == 1  # the fill of day 1 is kept
    assert result.daily["day"].to_list() == [D1, D2]  # day 1 and the part of day 2 that ran
    assert result.extra["bars"] == 14 + 4


def test_an_error_in_on_fill_names_the_callback() -> None:
    data = session("SYMA", D1, 100.0)
    result = run(data, Exploding(("x", D1, "x"), where="on_fill"))
    assert result.error is not None
    assert "on_fill" in result.error and "KeyError" in result.error
    assert result.fills.height == 1


# ------------------------------------------------------------- determinism and look-ahead


@pytest.fixture(scope="module")
def synthetic() -> tuple[pl.DataFrame, pl.DataFrame]:
    m = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=5, n_sessions=8, seed=21, splits_per_year=30)
    )
    return m.minute_bars(), m.corporate_actions()


def _strategy() -> MovingAverageCrossover:
    return MovingAverageCrossover(fast=8, slow=40, target_notional=50_000.0, long_only=False)


def test_a_backtest_run_twice_gives_identical_results(synthetic) -> None:
    frame, actions = synthetic
    cfg = BacktestConfig(costs="bist", risk=RiskLimits(allow_short=True))
    a = run_backtest(cfg, _strategy(), FrameBarSource(frame, actions))
    b = run_backtest(cfg, _strategy(), FrameBarSource(frame, actions))
    assert a.fills.height > 50
    for name in ("equity", "daily", "orders", "fills", "round_trips", "tca", "tca_by_strategy"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert json.dumps(a.to_json_summary(), sort_keys=True) == json.dumps(
        b.to_json_summary(), sort_keys=True
    )


def test_changing_bars_after_t_does_not_change_anything_before_t(synthetic) -> None:
    frame, actions = synthetic
    cut = frame["ts"].sort()[frame.height // 2]
    rng = random.Random(5)
    later = frame.filter(pl.col("ts") >= cut)
    shuffled = []
    for (_,), part in later.group_by("symbol", maintain_order=True):
        prices = list(part.select("open", "high", "low", "close", "vwap").iter_rows())
        rng.shuffle(prices)
        shuffled.append(
            part.with_columns(
                pl.Series(name, [p[k] for p in prices])
                for k, name in enumerate(("open", "high", "low", "close", "vwap"))
            )
        )
    changed = pl.concat([frame.filter(pl.col("ts") < cut), *shuffled])
    assert not changed.sort("symbol", "ts").equals(frame.sort("symbol", "ts"))
    cfg = BacktestConfig(costs="bist", risk=RiskLimits(allow_short=True))
    a = run_backtest(cfg, _strategy(), FrameBarSource(frame, actions))
    b = run_backtest(cfg, _strategy(), FrameBarSource(changed, actions))
    before = pl.col("ts") < cut
    assert a.orders.filter(before).height > 10
    assert (
        a.orders.filter(before)
        .drop("status", "filled_qty", "avg_price", "fees")
        .equals(b.orders.filter(before).drop("status", "filled_qty", "avg_price", "fees"))
    )
    fills_before = pl.col("ts") <= cut
    assert a.fills.filter(fills_before).equals(b.fills.filter(fills_before))
    assert not a.fills.equals(b.fills)  # the future did change


# ------------------------------------------------------------------------- result records


def test_the_result_frames_have_the_contract_columns(synthetic, tmp_path: Path) -> None:
    frame, actions = synthetic
    cfg = BacktestConfig(costs="bist", risk=RiskLimits(allow_short=True))
    result = run_backtest(cfg, _strategy(), FrameBarSource(frame, actions))
    assert result.equity.columns == [
        "ts",
        "cash",
        "market_value",
        "equity",
        "gross_exposure",
        "net_exposure",
    ]
    assert result.daily.columns == [
        "day",
        "equity",
        "returns",
        "gross_exposure",
        "net_exposure",
        "turnover",
    ]
    assert result.orders.columns[:4] == ["client_order_id", "strategy_id", "symbol", "side"]
    assert result.fills.columns == [
        "ts",
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "price",
        "fees",
        "liquidity",
    ]
    assert result.round_trips.columns == [
        "symbol",
        "side",
        "quantity",
        "entry_ts",
        "exit_ts",
        "entry_price",
        "exit_price",
        "pnl",
        "return",
    ]
    daily = result.daily
    assert daily["returns"][0] == pytest.approx(daily["equity"][0] / 1_000_000.0 - 1)
    assert daily["returns"][1] == pytest.approx(daily["equity"][1] / daily["equity"][0] - 1)
    # intraday marks every 30 minutes plus the close, every session
    per_day = result.equity.group_by(pl.col("ts").dt.date()).len()["len"]
    assert per_day.min() >= 16
    assert result.synthetic is True and result.strategy == "ma_crossover"
    assert result.tca.height == result.orders.height
    assert result.tca_by_strategy["n_orders"][0] == result.orders.height
    # fills add up to the portfolio's fees and the orders' fills
    assert result.stats["fees"] == pytest.approx(result.fills["fees"].sum())
    assert result.orders["filled_qty"].sum() == result.fills["quantity"].sum()
    saved = result.save(tmp_path / "run")
    loaded = BacktestResult.load(saved)
    for name in ("equity", "daily", "orders", "fills", "round_trips", "tca"):
        assert getattr(loaded, name).equals(getattr(result, name)), name
    summary = json.loads((saved / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["error"] is None
    assert summary["config"]["strategy"]["parameters"]["fast"] == 8


def test_round_trips_run_flat_to_flat_through_zero_crossings_and_splits() -> None:
    def ts(k: int) -> datetime:
        return datetime(2024, 3, 4, 7, k, tzinfo=UTC)

    fills = pl.DataFrame(
        [
            (ts(0), "a", "X", 1, 100, 10.0, 1.0, "taker"),
            (ts(1), "b", "X", -1, 150, 12.0, 1.5, "taker"),  # closes 100, opens a 50 short
            (ts(2), "c", "X", 1, 50, 11.0, 0.5, "taker"),
            (ts(3), "d", "Y", 1, 10, 100.0, 0.0, "taker"),
            (ts(5), "e", "Y", -1, 20, 55.0, 0.0, "taker"),  # after a 2:1 split
        ],
        schema=[
            "ts",
            "client_order_id",
            "symbol",
            "side",
            "quantity",
            "price",
            "fees",
            "liquidity",
        ],
        orient="row",
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")), pl.col("side").cast(pl.Int8))
    split_ns = int(ts(4).timestamp()) * NS
    trips = round_trips(fills, [(split_ns, "Y", 2.0)])
    rows = trips.select("symbol", "side", "quantity", "entry_price", "exit_price", "pnl").rows()
    assert rows[0] == ("X", 1, 100, 10.0, 12.0, pytest.approx(200.0 - 1.0 - 1.0))
    assert rows[1] == ("X", -1, 50, 12.0, 11.0, pytest.approx(50.0 - 0.5 - 0.5))
    assert rows[2] == ("Y", 1, 20, 50.0, 55.0, pytest.approx(100.0))
    assert trips["return"][2] == pytest.approx(0.1)


# ------------------------------------------------------------------------ streaming memory


def _peak_python_memory(lake: Lake, end: date) -> int:
    cfg = BacktestConfig(end=end, costs="bist")
    tracemalloc.start()
    try:
        result = run_backtest(cfg, MovingAverageCrossover(fast=30, slow=120), lake)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error is None and result.fills.height > 0
    return peak


@pytest.mark.slow
def test_memory_stays_flat_as_the_history_grows(tmp_path: Path) -> None:
    m = SyntheticMarket(SyntheticMarketConfig(n_symbols=10, n_sessions=64, seed=3))
    lake = Lake(tmp_path / "lake")
    for chunk in m.iter_minute_bars(sessions_per_chunk=16):
        lake.write("bars", chunk)
    days = m.sessions()
    one_month = _peak_python_memory(lake, days[21])
    three_months = _peak_python_memory(lake, days[63])
    assert three_months < 2 * one_month, (one_month, three_months)
    assert math.isfinite(one_month)
