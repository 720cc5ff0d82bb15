"""Transaction cost analysis on hand-built orders, reports and market data, every number worked
out by hand in the comments."""

from __future__ import annotations

import math

import polars as pl
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
from quant.metrics import TCA_COLUMNS, order_tca, square_root_impact_bp, tca_by_strategy

SEC = 1_000_000_000
T0 = 1_717_400_000 * SEC  # 2024-06-03 07:33:20 UTC, inside the BIST session
SYM = "AKBNK"


def quotes(*rows: tuple[int, float, float], symbol: str = SYM) -> pl.DataFrame:
    """(seconds after T0, bid, ask) rows in the lake's quote schema (ts as UTC datetime)."""
    return pl.DataFrame(
        {
            "ts": [T0 + s * SEC for s, _, _ in rows],
            "symbol": [symbol] * len(rows),
            "bid_price": [b for _, b, _ in rows],
            "bid_size": [1000] * len(rows),
            "ask_price": [a for _, _, a in rows],
            "ask_size": [1000] * len(rows),
            "seq": list(range(len(rows))),
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


def trades(*rows: tuple[int, float, int], symbol: str = SYM) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [T0 + s * SEC for s, _, _ in rows],  # integer nanoseconds are accepted too
            "symbol": [symbol] * len(rows),
            "price": [p for _, p, _ in rows],
            "size": [q for _, _, q in rows],
        }
    )


def order(
    oid: str, side: Side, qty: int, strategy: str = "s1", at: int = 0, symbol: str = SYM
) -> Order:
    return Order(
        oid, symbol, side, qty, OrderType.MARKET, None, ts_ns=T0 + at * SEC, strategy_id=strategy
    )


class Reports:
    """Builds an order's reports and applies them to an ``OrderState``, so every sequence a
    test uses is one the order state machine accepts."""

    def __init__(self, o: Order) -> None:
        self.state = OrderState(o)
        self.list: list[ExecutionReport] = []

    def _add(self, status: OrderStatus, at: float, **kw) -> Reports:
        o = self.state.order
        r = ExecutionReport(o.client_order_id, status, int(T0 + at * SEC), o.symbol, o.side, **kw)
        self.state.apply(r)
        self.list.append(r)
        return self

    def accept(self, at: float) -> Reports:
        return self._add(OrderStatus.ACCEPTED, at)

    def fill(self, at: float, qty: int, price: float, fees: float = 0.0) -> Reports:
        cum = self.state.filled_qty + qty
        status = (
            OrderStatus.FILLED if cum == self.state.order.quantity else OrderStatus.PARTIALLY_FILLED
        )
        return self._add(status, at, last_qty=qty, last_price=price, cum_qty=cum, fees=fees)

    def cancel(self, at: float) -> Reports:
        return self._add(OrderStatus.CANCELLED, at)

    def reject(self, at: float, code: RejectCode) -> Reports:
        return self._add(OrderStatus.REJECTED, at, reject_code=code, reason="test")


def row(frame: pl.DataFrame, oid: str) -> dict:
    return frame.filter(pl.col("client_order_id") == oid).row(0, named=True)


# --------------------------------------------------------------------------- the worked buy


@pytest.fixture
def worked_buy():
    """Buy 1,000 arriving at mid 10.00; fills 600 @ 10.02 (t+20 s) and 400 @ 10.05 (t+40 s)."""
    buy = order("B1", Side.BUY, 1000)
    reps = Reports(buy).accept(0.001).fill(20, 600, 10.02, fees=1.20).fill(40, 400, 10.05, 0.80)
    q = quotes(
        (-1, 9.99, 10.01),  # arrival mid 10.00
        (10, 10.00, 10.02),  # prevailing before fill 1: mid 10.01
        (30, 10.03, 10.05),  # prevailing before fill 2: mid 10.04
        (40, 10.04, 10.06),  # stamped with fill 2 itself: not its benchmark
        (90, 10.05, 10.07),  # 60 s after the last fill: mid 10.06
    )
    t = trades(
        (-5, 9.90, 700),  # before the order: outside the interval
        (5, 10.00, 500),
        (25, 10.03, 1000),
        (35, 10.06, 500),
        (50, 11.00, 1000),  # after the last fill: outside
    )
    return buy, reps.list, q, t


def test_worked_buy_by_hand(worked_buy):
    buy, reps, q, t = worked_buy
    out = order_tca(
        [buy],
        reps,
        quotes=q,
        trades=t,
        impact_horizon_ns=60 * SEC,
        adv={SYM: 1_000_000},
        daily_volatility={SYM: 0.02},
    )
    assert out.schema == pl.Schema(TCA_COLUMNS)
    r = out.row(0, named=True)
    assert (r["status"], r["rejected"], r["n_fills"], r["filled_qty"]) == ("filled", False, 2, 1000)
    assert r["fill_rate"] == 1.0
    assert r["avg_price"] == pytest.approx((600 * 10.02 + 400 * 10.05) / 1000)  # 10.032
    assert r["notional_try"] == pytest.approx(10_032.0)
    assert (r["arrival_price"], r["arrival_source"]) == (pytest.approx(10.00), "mid")
    # shortfall: (10.032 - 10.00) x 1,000 = 32 TRY = 32 bp of 10,000 TRY arrival notional
    assert r["is_try"] == pytest.approx(32.0)
    assert r["is_bp"] == pytest.approx(32.0)
    assert r["fees_try"] == pytest.approx(2.0)
    assert r["opportunity_cost_try"] == 0.0
    assert r["total_shortfall_try"] == pytest.approx(34.0)
    # interval VWAP of 500 @ 10.00, 1,000 @ 10.03, 500 @ 10.06 = 10.03; 0.002 / 10.03 = 1.994 bp
    assert r["interval_vwap"] == pytest.approx(10.03)
    assert r["vwap_slippage_bp"] == pytest.approx(0.002 / 10.03 * 1e4)
    # spread: 600 x (10.02 - 10.01) + 400 x (10.05 - 10.04) = 10 TRY over 10,022 TRY of mid value
    assert r["spread_paid_try"] == pytest.approx(10.0)
    assert r["spread_paid_bp"] == pytest.approx(10.0 / (600 * 10.01 + 400 * 10.04) * 1e4)
    # post-trade: mid 10.06 sixty seconds after the last fill, 60 bp above arrival
    assert r["impact_post_bp"] == pytest.approx(60.0)
    # square root: 0.02 x sqrt(1,000 / 1,000,000) = 6.3246 bp
    assert r["impact_model_bp"] == pytest.approx(0.02 * math.sqrt(0.001) * 1e4)
    assert out["ts"].dt.epoch("ns")[0] == T0 and out["end_ts"].dt.epoch("ns")[0] == T0 + 40 * SEC


def test_vwap_from_bars_and_arrival_from_last_price_without_quotes(worked_buy):
    buy, reps, _, _ = worked_buy
    minute = 60 * SEC
    bars = pl.DataFrame(
        {
            "ts": [T0 - minute, T0, T0 + minute],
            "ts_end": [T0, T0 + minute, T0 + 2 * minute],
            "symbol": [SYM] * 3,
            "open": [9.95, 10.00, 10.04],
            "high": [10.00, 10.06, 10.08],
            "low": [9.94, 9.99, 10.02],
            "close": [9.98, 10.05, 10.07],
            "volume": [1000, 3000, 2000],
            "vwap": [9.97, 10.03, 10.05],
            "trade_count": [10, 30, 20],
        }
    )
    r = order_tca([buy], reps, bars=bars, impact_horizon_ns=60 * SEC).row(0, named=True)
    # arrival = close of the last bar complete at T0 (ts_end <= T0); no quotes: "last"
    assert (r["arrival_price"], r["arrival_source"]) == (pytest.approx(9.98), "last")
    assert r["is_try"] == pytest.approx((10.032 - 9.98) * 1000)
    # fills end at T0 + 40 s: only the bar [T0, T0 + 1 min) meets the interval
    assert r["interval_vwap"] == pytest.approx(10.03)
    assert r["spread_paid_bp"] is None and r["spread_paid_try"] is None  # needs quotes
    # T0 + 100 s: the last complete bar closed at T0 + 1 min at 10.05
    assert r["impact_post_bp"] == pytest.approx((10.05 - 9.98) / 9.98 * 1e4)
    assert r["impact_model_bp"] is None  # no ADV / volatility given


def test_an_instant_fill_at_a_bar_open_uses_that_bar():
    minute = 60 * SEC
    o = order("I1", Side.BUY, 100)
    reps = Reports(o).accept(0).fill(0, 100, 10.10).list
    bars = pl.DataFrame(
        {
            "ts": [T0 - minute, T0],
            "ts_end": [T0, T0 + minute],
            "symbol": [SYM, SYM],
            "close": [10.0, 10.2],
            "volume": [500, 800],
            "vwap": [9.9, 10.1],
        }
    )
    r = order_tca([o], reps, bars=bars).row(0, named=True)
    assert r["interval_vwap"] == pytest.approx(
        10.1
    )  # the bar that starts at T0, not the one before
    assert r["vwap_slippage_bp"] == pytest.approx(0.0, abs=1e-9)


# --------------------------------------------------------------------------- signs


def test_sell_signs_positive_is_cost():
    q = quotes((-1, 9.99, 10.01), (1, 9.97, 9.99), (30, 9.95, 9.97))
    worse = order("S1", Side.SELL, 1000)
    better = order("S2", Side.SELL, 1000)
    reps = [
        *Reports(worse).accept(0).fill(2, 1000, 9.98).list,
        *Reports(better).accept(0).fill(2, 1000, 10.03).list,
    ]
    out = order_tca([worse, better], reps, quotes=q, impact_horizon_ns=30 * SEC)
    w, b = row(out, "S1"), row(out, "S2")
    assert w["side"] == -1
    # sold at 9.98 against 10.00: 20 bp, 20 TRY of cost
    assert w["is_bp"] == pytest.approx(20.0) and w["is_try"] == pytest.approx(20.0)
    # sold at 10.03: a 30 bp gain is a negative cost
    assert b["is_bp"] == pytest.approx(-30.0) and b["is_try"] == pytest.approx(-30.0)
    # prevailing mid at the fill is 9.98: selling at the mid costs no spread
    assert w["spread_paid_try"] == pytest.approx(0.0, abs=1e-9)
    assert b["spread_paid_try"] == pytest.approx(-(10.03 - 9.98) * 1000)
    # 30 s after the sale the mid is 9.96: a price pushed down by a seller is +40 bp of impact
    assert w["impact_post_bp"] == pytest.approx(40.0)


# --------------------------------------------------------------------------- rejects, no fills


def test_rejects_and_unfilled_orders():
    q = quotes((-1, 9.99, 10.01), (100, 10.05, 10.07))
    filled = order("F1", Side.BUY, 1000, "s2")
    rejected = order("R1", Side.BUY, 300, "s2")
    unfilled = order("N1", Side.BUY, 500, "s2")
    other = order("X1", Side.SELL, 200, "s1")
    reps = [
        *Reports(filled).accept(0).fill(10, 1000, 10.02, fees=2.0).list,
        *Reports(rejected).reject(0, RejectCode.OUTSIDE_BAND).list,
        *Reports(unfilled).accept(0).cancel(200).list,
        *Reports(other).accept(0).fill(5, 100, 9.99).cancel(300).list,
    ]
    out = order_tca([filled, rejected, unfilled, other], reps, quotes=q)
    r = row(out, "R1")
    assert (r["status"], r["rejected"], r["reject_code"]) == ("rejected", True, "OUTSIDE_BAND")
    assert r["fill_rate"] == 0.0 and r["avg_price"] is None and r["is_bp"] is None
    assert r["is_try"] == 0.0
    n = row(out, "N1")
    assert (n["status"], n["rejected"], n["filled_qty"], n["n_fills"]) == ("cancelled", False, 0, 0)
    assert n["interval_vwap"] is None and n["spread_paid_try"] is None
    # 500 shares never bought while the mid rose from 10.00 to 10.06 by the cancel: 30 TRY
    assert n["opportunity_cost_try"] == pytest.approx(0.06 * 500)
    assert n["total_shortfall_try"] == pytest.approx(30.0)
    x = row(out, "X1")
    assert x["fill_rate"] == pytest.approx(0.5)
    # sold 100 at 9.99 vs 10.00 (1 TRY); 100 unsold while the mid rose 0.06 (a gain of 6 TRY)
    assert x["is_try"] == pytest.approx(1.0)
    assert x["opportunity_cost_try"] == pytest.approx(-6.0)

    agg = tca_by_strategy(out)
    assert agg["strategy_id"].to_list() == ["s1", "s2"]
    s2 = agg.row(1, named=True)
    assert (s2["n_orders"], s2["n_rejected"], s2["n_filled"]) == (3, 1, 1)
    assert s2["reject_rate"] == pytest.approx(1 / 3)
    assert s2["ordered_qty"] == 1800 and s2["filled_qty"] == 1000
    assert s2["fill_rate"] == pytest.approx(1000 / 1500)  # rejects are counted by reject_rate
    assert s2["is_try"] == pytest.approx(20.0)
    assert s2["is_bp"] == pytest.approx(20.0)  # 20 TRY over 10,000 TRY arrival notional
    assert s2["fees_try"] == pytest.approx(2.0)
    assert s2["fees_bp"] == pytest.approx(2.0 / 10_020 * 1e4)
    assert s2["opportunity_cost_try"] == pytest.approx(30.0)
    s1 = agg.row(0, named=True)
    assert (s1["n_orders"], s1["n_rejected"], s1["reject_rate"]) == (1, 0, 0.0)


def test_strategy_figures_are_notional_weighted():
    q = quotes((-1, 9.99, 10.01))
    small = order("A", Side.BUY, 100)
    large = order("B", Side.BUY, 900)
    reps = [
        *Reports(small).accept(0).fill(1, 100, 10.10).list,  # 100 bp on 1,000 TRY
        *Reports(large).accept(0).fill(1, 900, 10.00).list,  # 0 bp on 9,000 TRY
    ]
    agg = tca_by_strategy(order_tca([small, large], reps, quotes=q)).row(0, named=True)
    assert agg["is_bp"] == pytest.approx(10.0)  # 10 TRY over 10,000 TRY, not the mean 50 bp
    # per-order spread: 100 bp on 1,010 TRY traded, 0 bp on 9,000 TRY
    assert agg["spread_paid_bp"] == pytest.approx(100.0 * 1010 / 10_010)
    assert agg["spread_paid_try"] == pytest.approx(10.0)
    assert agg["impact_model_bp"] is None  # nothing to weight


# --------------------------------------------------------------------------- edges


def test_order_without_time_uses_first_report_and_unknown_reports_raise():
    q = quotes((-1, 9.99, 10.01), (5, 10.09, 10.11))
    o = Order("Z1", SYM, Side.BUY, 100, OrderType.MARKET, strategy_id="s1")  # ts_ns = 0
    reps = Reports(o).accept(0).fill(10, 100, 10.12).list
    r = order_tca([o], reps, quotes=q).row(0, named=True)
    assert r["arrival_price"] == pytest.approx(10.00)  # mid at the acceptance, T0
    stray = ExecutionReport("nope", OrderStatus.ACCEPTED, T0)
    with pytest.raises(ValueError, match="not given"):
        order_tca([o], [*reps, stray], quotes=q)
    with pytest.raises(ValueError, match="duplicate"):
        order_tca([o, o], reps, quotes=q)


def test_no_market_data_and_no_orders():
    o = order("M1", Side.BUY, 100)
    r = order_tca([o], Reports(o).accept(0).fill(1, 100, 10.0).list).row(0, named=True)
    assert r["arrival_price"] is None and r["arrival_source"] is None
    assert r["is_bp"] is None and r["is_try"] is None and r["total_shortfall_try"] is None
    assert r["fill_rate"] == 1.0  # what needs no market data is still there
    empty = order_tca([], [])
    assert empty.height == 0 and empty.schema == pl.Schema(TCA_COLUMNS)
    assert tca_by_strategy(empty).height == 0
    with pytest.raises(ValueError, match="missing column"):
        order_tca([o], [], quotes=pl.DataFrame({"ts": [T0], "symbol": [SYM]}))


def test_square_root_impact():
    assert square_root_impact_bp(10_000, 1_000_000, 0.02) == pytest.approx(20.0)
    assert square_root_impact_bp(40_000, 1_000_000, 0.02, coefficient=0.5) == pytest.approx(20.0)
    assert math.isnan(square_root_impact_bp(100, 0, 0.02))


def test_same_instant_quotes_follow_seq():
    q = quotes((0, 9.99, 10.01), (0, 10.09, 10.11))  # seq 0 then 1 at the same instant
    o = order("Q1", Side.BUY, 10, at=0)
    reps = Reports(o).accept(1).list
    forward = order_tca([o], reps, quotes=q).row(0, named=True)
    backward = order_tca([o], reps, quotes=q.reverse()).row(0, named=True)
    assert forward["arrival_price"] == backward["arrival_price"] == pytest.approx(10.10)


def test_lookups_agree_with_polars_asof_joins_on_synthetic_lake_data():
    """Aggressive buys filled at the prevailing ask of a synthetic BIST day: the spread paid is
    the half-spread, and every lookup matches an independent polars as-of join."""
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=1, n_sessions=1, seed=5))
    day = market.day(market.sessions()[0])
    q, t = day.quotes, day.trades
    sym = q["symbol"][0]
    start = int(q["ts"].dt.epoch("ns").min()) + 3600 * SEC
    fill_times = [start + k * 600 * SEC + 1 for k in range(1, 4)]
    prevailing = (
        pl.DataFrame({"ts": fill_times})
        .with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
        .join_asof(q.sort("ts", "seq"), on="ts", strategy="backward", allow_exact_matches=False)
    )
    o = Order("SYN-B", sym, Side.BUY, 3000, OrderType.MARKET, ts_ns=start, strategy_id="syn")
    reps = Reports(o).accept(0)
    for ts, ask in zip(fill_times, prevailing["ask_price"], strict=True):
        reps.fill((ts - T0) / SEC, 1000, ask)
    r = order_tca([o], reps.list, quotes=q, trades=t).row(0, named=True)

    half_spread = ((prevailing["ask_price"] - prevailing["bid_price"]) / 2 * 1000).sum()
    assert r["spread_paid_try"] == pytest.approx(half_spread)
    known = q.filter(pl.col("ts").dt.epoch("ns") <= start).sort("ts", "seq").tail(1)
    arrival = known.select((pl.col("bid_price") + pl.col("ask_price")) / 2).item()
    assert r["arrival_price"] == pytest.approx(arrival)
    window = t.filter(pl.col("ts").dt.epoch("ns").is_between(start, fill_times[-1]))
    vwap = (window["price"] * window["size"]).sum() / window["size"].sum()
    assert r["interval_vwap"] == pytest.approx(vwap)
    assert r["is_try"] == pytest.approx((r["avg_price"] - arrival) * 3000)
