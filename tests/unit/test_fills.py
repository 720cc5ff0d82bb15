"""Bar-level fills: open/limit fill prices, participation caps with carry-over, IOC/FOK,
market-to-limit, slippage on the tick grid inside the band, fees, and a cross-check of the fill
prices against backtrader's broker."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from quant.execution.orders import (
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.market import Band, Instrument
from quant.sim.fills import BarFillModel, BarView, accept, utc_day

B, S = Side.BUY, Side.SELL
T0 = 1_704_265_200_000_000_000  # 2024-01-03 07:00 UTC (10:00 Istanbul)
MIN = 60 * 10**9


def bar(k: int, o: float, h: float, lo: float, c: float, v: int, symbol: str = "AAA") -> BarView:
    return BarView(symbol, T0 + k * MIN, T0 + (k + 1) * MIN, o, h, lo, c, v, (o + c) / 2)


def working(
    oid: str,
    side: Side,
    qty: int,
    price: float | None = None,
    order_type: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.DAY,
    symbol: str = "AAA",
) -> OrderState:
    state = OrderState(Order(oid, symbol, side, qty, order_type, price, tif, T0))
    accept(state, T0)
    return state


def test_market_order_fills_at_the_open_capped_by_participation_and_carries_over() -> None:
    model = BarFillModel(max_participation=0.1)
    state = working("m", B, 250, order_type=OrderType.MARKET)
    fills = [
        model.fill_on_bar([state], bar(k, 10.0 + 0.01 * k, 10.2, 9.9, 10.1, 1000)) for k in range(3)
    ]
    # 10% of 1,000 shares per bar: 100, 100, then the last 50, each at that bar's open.
    assert [(r.last_qty, r.last_price, r.status) for (r,) in fills] == [
        (100, 10.00, OrderStatus.PARTIALLY_FILLED),
        (100, 10.01, OrderStatus.PARTIALLY_FILLED),
        (50, 10.02, OrderStatus.FILLED),
    ]
    assert fills[0][0].ts_ns == T0 + MIN  # stamped when the bar is known
    assert fills[0][0].liquidity == "taker"
    assert state.avg_price == pytest.approx((100 * 10.0 + 100 * 10.01 + 50 * 10.02) / 250)
    assert model.fill_on_bar([state], bar(3, 10, 10, 10, 10, 1000)) == []  # filled: skipped


@pytest.mark.parametrize(
    ("o", "h", "lo", "expected"),
    [
        (10.10, 10.20, 10.00, None),  # low only touches 10.00: no fill
        (10.10, 10.20, 9.98, 10.00),  # trades through: at the limit
        (9.95, 10.05, 9.90, 9.95),  # opens below the limit: at the open
        (10.00, 10.05, 9.99, 10.00),  # opens at the limit and trades through
    ],
)
def test_limit_buy_fills_when_the_bar_trades_through(
    o: float, h: float, lo: float, expected: float | None
) -> None:
    model = BarFillModel(max_participation=1.0)
    state = working("b", B, 100, 10.00)
    out = model.fill_on_bar([state], bar(0, o, h, lo, o, 10_000))
    assert [r.last_price for r in out] == ([] if expected is None else [expected])
    if expected is not None:
        assert out[0].liquidity == "maker"


def test_limit_sell_mirror_and_fill_on_touch() -> None:
    strict = BarFillModel(max_participation=1.0)
    touch = BarFillModel(max_participation=1.0, fill_on_touch=True)
    a, b = working("a", S, 100, 10.20), working("b", S, 100, 10.20)
    b_ = bar(0, 10.0, 10.20, 9.9, 10.1, 5000)  # the high touches 10.20
    assert strict.fill_on_bar([a], b_) == []
    assert [r.last_price for r in touch.fill_on_bar([b], b_)] == [10.20]
    gap = bar(1, 10.30, 10.40, 10.25, 10.3, 5000)  # opens above the sell limit
    assert [r.last_price for r in strict.fill_on_bar([a], gap)] == [10.30]


def test_participation_is_shared_by_orders_of_a_side_in_the_given_order() -> None:
    model = BarFillModel(max_participation=0.2)
    first = working("first", B, 150, 10.10)
    second = working("second", B, 150, 10.10)
    seller = working("seller", S, 150, 9.90)
    other = working("other", B, 100, 10.10, symbol="BBB")
    out = model.fill_on_bar([first, second, seller, other], bar(0, 10.0, 10.2, 9.8, 10.0, 1000))
    # 200 shares a side: first takes 150, second the remaining 50; the sell side has its own
    # 200; the BBB order is not this bar's symbol.
    assert [(r.client_order_id, r.last_qty) for r in out] == [
        ("first", 150),
        ("second", 50),
        ("seller", 150),
    ]
    assert other.status is OrderStatus.ACCEPTED
    assert model.fill_on_bar([first], bar(1, 10, 10, 10, 10, 0)) == []  # no volume, no fill
    # The cap is floor(participation x volume) without float noise: 0.29 x 100 = 29.
    odd = working("odd", B, 100, order_type=OrderType.MARKET)
    (r,) = BarFillModel(max_participation=0.29).fill_on_bar([odd], bar(2, 10, 10, 10, 10, 100))
    assert r.last_qty == 29


def test_ioc_and_fok_on_a_bar() -> None:
    model = BarFillModel(max_participation=0.1)
    ioc = working("ioc", B, 300, 10.10, tif=TimeInForce.IOC)
    fok = working("fok", B, 300, 10.10, tif=TimeInForce.FOK)
    small_fok = working("small", S, 50, 9.90, tif=TimeInForce.FOK)
    out = model.fill_on_bar([ioc, fok, small_fok], bar(0, 10.0, 10.2, 9.8, 10.0, 2000))
    # 200 a side: the IOC fills 200 and cancels 100; the FOK (300 > 0 left) is killed; the
    # 50-share sell FOK fits in the sell side's 200.
    assert [(r.client_order_id, r.status, r.last_qty) for r in out] == [
        ("ioc", OrderStatus.PARTIALLY_FILLED, 200),
        ("ioc", OrderStatus.CANCELLED, 0),
        ("fok", OrderStatus.CANCELLED, 0),
        ("small", OrderStatus.FILLED, 50),
    ]
    # An IOC whose limit the bar does not reach is cancelled too, as is one on an empty bar.
    far = working("far", B, 10, 9.00, tif=TimeInForce.IOC)
    (r,) = model.fill_on_bar([far], bar(1, 10.0, 10.2, 9.8, 10.0, 2000))
    assert r.status is OrderStatus.CANCELLED and far.filled_qty == 0
    idle = working("idle", B, 10, 10.50, tif=TimeInForce.IOC)
    (r,) = model.fill_on_bar([idle], bar(2, 10.0, 10.0, 10.0, 10.0, 0))
    assert r.status is OrderStatus.CANCELLED


def test_market_to_limit_becomes_a_limit_at_its_first_fill_price() -> None:
    model = BarFillModel(max_participation=0.1)
    mtl = working("mtl", B, 200, order_type=OrderType.MARKET_TO_LIMIT)
    (r,) = model.fill_on_bar([mtl], bar(0, 10.05, 10.2, 10.0, 10.1, 1000))
    assert (r.last_qty, r.last_price) == (100, 10.05)
    assert model.fill_on_bar([mtl], bar(1, 10.10, 10.2, 10.05, 10.1, 1000)) == []  # above 10.05
    (r,) = model.fill_on_bar([mtl], bar(2, 10.06, 10.1, 10.00, 10.0, 1000))
    assert (r.last_qty, r.last_price, r.status) == (100, 10.05, OrderStatus.FILLED)


def test_slippage_is_rounded_against_us_onto_the_grid_and_kept_in_the_band() -> None:
    def slip(side: Side, qty: int, price: float, b: BarView) -> float:
        return price * (1 + 0.0013 * side.sign)

    model = BarFillModel(max_participation=1.0, slippage=slip)
    buy = working("b", B, 100, order_type=OrderType.MARKET)
    sell = working("s", S, 100, order_type=OrderType.MARKET)
    (rb, rs) = model.fill_on_bar([buy, sell], bar(0, 10.00, 10.1, 9.9, 10.0, 10_000))
    assert rb.last_price == 10.02  # 10.013 rounded up
    assert rs.last_price == 9.98  # 9.987 rounded down
    capped = working("c", B, 100, order_type=OrderType.MARKET)
    band = Band(lower=9.00, upper=11.00, reference=10.0)
    (rc,) = model.fill_on_bar([capped], bar(1, 10.99, 11.0, 10.9, 11.0, 10_000), band)
    assert rc.last_price == 11.00  # 11.004 -> 11.01 on the grid, held at the band's 11.00
    # A limit order never gets slippage: it fills at its limit or better.
    lim = working("l", B, 100, 10.00)
    (rl,) = model.fill_on_bar([lim], bar(2, 10.05, 10.1, 9.9, 10.0, 10_000))
    assert rl.last_price == 10.00


def test_fees_are_charged_per_fill_in_kurus() -> None:
    model = BarFillModel(
        max_participation=1.0, fee_model=lambda sym, side, q, p, liq: q * p * 0.0004
    )
    state = working("m", B, 333, order_type=OrderType.MARKET)
    (r,) = model.fill_on_bar([state], bar(0, 12.34, 12.5, 12.3, 12.4, 10_000))
    assert r.fees == 1.64  # 333 x 12.34 x 4 bp = 1.6437 TRY
    assert state.fees == 1.64


def test_submit_shares_the_exchange_checks_and_expire_ends_the_day() -> None:
    model = BarFillModel()
    band = Band(9.00, 11.00, 10.00)
    inst = Instrument("AAA")
    cases = [
        (Order("t", "AAA", B, 100, limit_price=10.005), RejectCode.OFF_TICK),
        (Order("o", "AAA", B, 100, limit_price=11.50), RejectCode.OUTSIDE_BAND),
        (Order("z", "AAA", B, 0, limit_price=10.00), RejectCode.INVALID_ORDER),
    ]
    for order, code in cases:
        state = OrderState(order)
        r = model.submit(state, T0, instrument=inst, band=band)
        assert (r.status, r.reject_code) == (OrderStatus.REJECTED, code)
        assert state.status is OrderStatus.REJECTED
    ok = OrderState(Order("ok", "AAA", B, 100, limit_price=10.00))
    assert model.submit(ok, T0, instrument=inst, band=band).status is OrderStatus.ACCEPTED
    (r,) = model.expire([ok], T0 + 9 * 3600 * 10**9)
    assert r.status is OrderStatus.EXPIRED and ok.status is OrderStatus.EXPIRED
    assert utc_day(T0) == date(2024, 1, 3)


def test_deterministic() -> None:
    def run() -> list:
        model = BarFillModel(max_participation=0.05)
        rng = np.random.default_rng(1)
        states = [
            working(f"o{k}", B if k % 2 else S, 100 * (k + 1), 10.00 + 0.01 * (k % 5 - 2))
            for k in range(10)
        ]
        out = []
        price = 10.0
        for k in range(50):
            step = round(float(rng.normal(0, 0.02)), 2)
            o, c = price, round(price + step, 2)
            out += model.fill_on_bar(
                states, bar(k, o, max(o, c) + 0.01, min(o, c) - 0.01, c, int(rng.integers(0, 3000)))
            )
            price = c
        return out

    first = run()
    assert first and first == run()


def test_limit_and_market_fill_prices_agree_with_backtrader() -> None:
    """Uncapped and on-touch, the model's rule is backtrader's: a buy limit fills at the open
    if the bar opens at or below it, else at the limit if the low reaches it; a market order
    fills at the next bar's open. Same random bars and orders, same (bar, price) per order."""
    bt = pytest.importorskip("backtrader")
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 120
    close = np.round(10 + np.cumsum(rng.normal(0, 0.05, n)), 2)
    opens = np.round(np.r_[10.0, close[:-1]] + rng.normal(0, 0.02, n), 2)
    highs = np.round(np.maximum(opens, close) + np.abs(rng.normal(0, 0.03, n)), 2)
    lows = np.round(np.minimum(opens, close) - np.abs(rng.normal(0, 0.03, n)), 2)
    index = pd.date_range("2024-01-03", periods=n, freq="D")
    frame = pd.DataFrame(
        {"open": opens, "high": highs, "low": lows, "close": close, "volume": 1e9}, index=index
    )
    plan = {}  # bar index at which an order is placed -> (side, type, limit)
    for k in range(0, n - 5, 3):
        side = B if rng.random() < 0.5 else S
        if rng.random() < 0.25:
            plan[k] = (side, OrderType.MARKET, None)
        else:
            off = round(float(rng.integers(-8, 9)) * 0.01, 2)
            plan[k] = (side, OrderType.LIMIT, round(float(close[k]) + off, 2))

    fills_bt: dict[int, tuple[int, float]] = {}

    class Plan(bt.Strategy):
        def __init__(self) -> None:
            self.refs: dict[int, int] = {}

        def next(self) -> None:
            k = len(self) - 1
            if k in plan:
                side, otype, limit = plan[k]
                kind = bt.Order.Market if otype is OrderType.MARKET else bt.Order.Limit
                make = self.buy if side is B else self.sell
                self.refs[make(size=100, exectype=kind, price=limit).ref] = k

        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                fills_bt[self.refs[order.ref]] = (len(self) - 1, round(order.executed.price, 2))

    cerebro = bt.Cerebro()
    cerebro.broker.setcash(1e12)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Plan)
    cerebro.run()

    model = BarFillModel(max_participation=1.0, fill_on_touch=True)
    states: dict[int, OrderState] = {}
    ours: dict[int, tuple[int, float]] = {}
    for j in range(n):
        b_ = BarView("AAA", j, j + 1, opens[j], highs[j], lows[j], close[j], 10**9)
        for r in model.fill_on_bar(list(states.values()), b_):
            ours[int(r.client_order_id)] = (j, r.last_price)
        if j in plan:
            side, otype, limit = plan[j]
            states[j] = working(str(j), side, 100, limit, otype)
    assert len(ours) > 20
    assert ours == fills_bt
