"""Execution algorithms: exact quantities, prices on the grid and in the band, fills, schedules.

The Almgren-Chriss checks use the parameters of the example in Almgren & Chriss (2000), section
on the efficient frontier: X = 10⁶ shares, T = 5 days, N = 5, σ = 0.95 $/share/√day (30% a
year on a $50 stock), ε = 1/16, η = 2.5·10⁻⁶, γ = 2.5·10⁻⁷, with the arithmetic written out.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.execution.algos import (
    POV,
    TWAP,
    VWAP,
    AlgoContext,
    AlgoStatus,
    AlmgrenChriss,
    MarketState,
    PricingPolicy,
    VolumeProfile,
    ac_cost,
    allocate_lots,
    almgren_chriss_trajectory,
    child_price,
    learn_volume_profile,
    step_ticks,
)
from quant.execution.orders import ExecutionReport, Order, OrderStatus, OrderType, Side
from quant.market import (
    BIST_SHARE_TICKS,
    ISTANBUL,
    Band,
    PriceBand,
    SessionPhase,
    TradingCalendar,
)

DAY = date(2024, 1, 3)  # a full session under the August 2023 tick table
HALF_DAY = date(2024, 4, 9)
MIN = 60 * 10**9


def ns(day: date, hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime.combine(day, time(hh, mm, ss), ISTANBUL).timestamp()) * 10**9


T0, T1 = ns(DAY, 10, 0), ns(DAY, 11, 0)


def parent(
    qty: int = 1001, side: Side = Side.BUY, limit: float | None = None, oid: str = "P1"
) -> Order:
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    return Order(oid, "SYN01", side, qty, kind, limit, strategy_id="s1")


def market(
    bid: float = 49.90, ask: float = 50.00, day: date = DAY, band: Band | None = None, **kw
) -> MarketState:
    return MarketState(day=day, last=bid, bid=bid, ask=ask, band=band, **kw)


def report(child: Order, qty: int, cum: int, status: OrderStatus | None = None, n: int = 0):
    if status is None:
        status = OrderStatus.FILLED if cum == child.quantity else OrderStatus.PARTIALLY_FILLED
    return ExecutionReport(
        child.client_order_id,
        status,
        child.ts_ns,
        exec_id=f"{child.client_order_id}-x{n}" if qty else "",
        last_qty=qty,
        last_price=child.limit_price or 0.0,
        cum_qty=cum,
        leaves_qty=child.quantity - cum,
    )


def drive(algo, times, state=None, fill: bool = True) -> list[Order]:
    """Call ``on_time`` at each time; fill every child at once when ``fill``."""
    sent = []
    for t in times:
        for child in algo.on_time(t, state if state is not None else market()):
            sent.append(child)
            if fill:
                algo.on_fill(report(child, child.quantity, child.quantity))
    return sent


def minutes(start: int, end: int, step: int = MIN) -> list[int]:
    return list(range(start, end, step))


# --- largest-remainder allocation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "n", "lot"),
    [(1001, 7, 1), (1000, 7, 1), (1, 7, 1), (10_007, 3, 1), (999_999, 13, 1), (1000, 7, 10)],
)
def test_allocation_sums_exactly(total, n, lot):
    parts = allocate_lots(total, [1.0] * n, lot)
    assert sum(parts) == total
    assert all(p % lot == 0 and p >= 0 for p in parts)
    assert max(parts) - min(parts) <= lot  # equal weights: at most one lot apart


def test_allocation_by_hand():
    # 1000 / 7 = 142.857...: floors of 142 leave 6 shares for the six largest (equal)
    # remainders, the earliest first.
    assert allocate_lots(1000, [1] * 7) == [143] * 6 + [142]
    # quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 and the one share left goes to the 0.5 remainder
    assert allocate_lots(7, [0.5, 0.3, 0.2]) == [4, 2, 1]
    # in lots of 100: 1300 = 13 lots, quotas 6.5, 3.9, 2.6 -> 6, 3, 2 + 2 lots to .9 and .6
    assert allocate_lots(1300, [0.5, 0.3, 0.2], lot=100) == [600, 400, 300]
    with pytest.raises(ValueError):
        allocate_lots(1001, [1, 1], lot=10)


# --- TWAP: exact slices, ids, phases ------------------------------------------------------------


@pytest.mark.parametrize(("qty", "slices"), [(1001, 7), (1000, 7), (5, 7), (1_000_003, 9)])
def test_twap_children_sum_to_parent(qty, slices):
    algo = TWAP(slices=slices)
    algo.start(parent(qty), T0, T1)
    assert sum(q for _, q in algo.schedule) == qty
    sent = drive(algo, minutes(T0, T1))
    assert sum(c.quantity for c in sent) == qty
    assert all(isinstance(c.quantity, int) and c.quantity > 0 for c in sent)
    assert algo.remaining == 0 and algo.done and algo.status is AlgoStatus.COMPLETED


def test_twap_schedule_by_hand():
    algo = TWAP(slices=7)
    algo.start(parent(1000), T0, ns(DAY, 10, 7))
    assert algo.schedule == tuple((T0 + i * MIN, 143 if i < 6 else 142) for i in range(7))
    # one slice per 10 minutes over 25 minutes: the short last interval gets half a slice
    algo = TWAP(interval_ns=10 * MIN)
    algo.start(parent(1000), T0, ns(DAY, 10, 25))
    assert algo.schedule == ((T0, 400), (T0 + 10 * MIN, 400), (T0 + 20 * MIN, 200))


def test_children_have_deterministic_ids_and_parent_fields():
    def run():
        algo = TWAP(slices=4)
        algo.start(parent(1001, Side.SELL, oid="ORD-9"), T0, T1)
        return drive(algo, minutes(T0, T1, 7 * MIN))

    first, second = run(), run()
    assert first == second
    assert [c.client_order_id for c in first] == [f"ORD-9-{i}" for i in range(1, 5)]
    assert all(c.parent_id == "ORD-9" and c.strategy_id == "s1" for c in first)
    assert all(c.side is Side.SELL and c.symbol == "SYN01" for c in first)
    assert all(c.order_type is OrderType.LIMIT and not c.problems() for c in first)
    assert [c.ts_ns for c in first] == [T0, T0 + 21 * MIN, T0 + 35 * MIN, T0 + 49 * MIN]


def test_twap_waits_in_auctions_and_halts_then_catches_up():
    algo = TWAP(slices=4)  # slices due at 10:00, 10:15, 10:30, 10:45
    algo.start(parent(400), T0, T1)
    auction = market(phase=SessionPhase.OPENING_UNCROSS)
    assert algo.on_time(T0, auction) == []
    assert algo.status is AlgoStatus.PAUSED and "opening_uncross" in algo.reason
    assert algo.on_time(ns(DAY, 10, 20), market(halted=True)) == []
    assert algo.status is AlgoStatus.PAUSED and "halted" in algo.reason
    # back to continuous trading at 10:20: the two slices missed go out together
    (child,) = algo.on_time(ns(DAY, 10, 20, 1), market())
    assert child.quantity == 200
    assert algo.on_time(ns(DAY, 10, 25), market()) == []  # nothing more due yet
    # the window ends with 200 never sent: expired, and done once nothing works
    assert algo.on_time(T1, market()) == []
    assert algo.status is AlgoStatus.EXPIRED and "400 unfilled (200 working)" in algo.reason
    assert not algo.done  # the 200 sent are still working
    algo.on_fill(report(child, 0, 0, OrderStatus.CANCELLED))
    assert algo.done and algo.remaining == 400


def test_nothing_before_start():
    algo = TWAP(slices=2)
    algo.start(parent(10), T0, T1)
    assert algo.on_time(T0 - MIN, market()) == []
    assert algo.status is AlgoStatus.PENDING


# --- fills: remaining, never over-send ----------------------------------------------------------


def test_fills_reduce_remaining_and_count_once():
    algo = TWAP(slices=2)
    algo.start(parent(100), T0, T1)
    (c1,) = algo.on_time(T0, market())
    assert c1.quantity == 50 and algo.working == 50 and algo.remaining == 100
    assert algo.on_fill(report(c1, 20, 20, n=1))
    assert algo.remaining == 80 and algo.filled == 20 and algo.working == 30
    algo.on_fill(report(c1, 20, 20, n=1))  # the same execution again (same exec id)
    algo.on_fill(report(c1, 20, 20, n=2))  # a new exec id but a cum_qty already counted
    assert algo.filled == 20
    algo.on_fill(report(c1, 500, 50, n=3))  # more than the child's leaves: capped
    assert algo.filled == 50 and algo.working == 0 and algo.remaining == 50
    assert not algo.on_fill(report(parent(1, oid="OTHER"), 1, 1))  # not our child
    assert algo.filled == 50


def test_cancelled_leaves_are_sent_again_and_never_more_than_the_parent():
    algo = TWAP(slices=2)
    algo.start(parent(100), T0, T1)
    (c1,) = algo.on_time(T0, market())
    algo.on_fill(report(c1, 10, 10, n=1))
    # before the second slice is due nothing goes out: 10 filled + 40 working = target 50
    assert algo.on_time(T0 + MIN, market()) == []
    algo.on_fill(report(c1, 0, 10, OrderStatus.CANCELLED))
    (c2,) = algo.on_time(T0 + 2 * MIN, market())  # the 40 released are sent again
    assert c2.quantity == 40 and c2.client_order_id == "P1-2"
    (c3,) = algo.on_time(ns(DAY, 10, 30), market())
    assert c3.quantity == 50
    # everything is working now: whatever the events, nothing more is sent
    assert drive(algo, minutes(ns(DAY, 10, 31), T1), fill=False) == []
    assert algo.filled + algo.working == 100


def test_random_fills_and_cancels_never_over_send():
    rng = np.random.default_rng(3)
    for trial in range(20):
        algo = TWAP(slices=int(rng.integers(1, 12)))
        qty = int(rng.integers(1, 5000))
        algo.start(parent(qty), T0, T1)
        open_orders: dict[str, list] = {}
        for t in minutes(T0, T1 + MIN, MIN // 2):
            for child in algo.on_time(t, market()):
                open_orders[child.client_order_id] = [child, 0]
            for cid in list(open_orders):
                child, cum = open_orders[cid]
                u = rng.random()
                if u < 0.3:
                    part = int(rng.integers(1, child.quantity - cum + 1))
                    cum += part
                    algo.on_fill(report(child, part, cum, n=cum))
                    open_orders[cid][1] = cum
                    if cum == child.quantity:
                        del open_orders[cid]
                elif u < 0.4:
                    algo.on_fill(report(child, 0, cum, OrderStatus.CANCELLED))
                    del open_orders[cid]
            assert algo.filled + algo.working <= qty, trial
            assert algo.working == sum(c.quantity - f for c, f in open_orders.values())
        assert algo.filled <= qty


def test_consecutive_rejects_stop_the_algorithm():
    algo = TWAP(slices=60)
    algo.start(parent(600), T0, T1, AlgoContext(max_consecutive_rejects=3))
    for k in range(3):
        (child,) = algo.on_time(T0 + k * MIN, market())
        reject = ExecutionReport(
            child.client_order_id, OrderStatus.REJECTED, child.ts_ns, reason="outside band"
        )
        algo.on_fill(reject)
    assert algo.status is AlgoStatus.STOPPED and "3 children rejected" in algo.reason
    assert algo.on_time(T0 + 5 * MIN, market()) == [] and algo.done


@pytest.mark.parametrize(
    ("bad", "start", "end", "lot", "why"),
    [
        (parent(0), T0, T1, 1, "quantity must be positive"),
        (parent(100), T1, T0, 1, "before it starts"),
        (parent(105), T0, T1, 10, "not a whole number of lots"),
        (parent(100, limit=-1.0), T0, T1, 1, "limit price must be positive"),
    ],
)
def test_bad_parents_are_invalid_not_exceptions(bad, start, end, lot, why):
    algo = TWAP(slices=3)
    algo.start(bad, start, end, AlgoContext(lot_size=lot))
    assert algo.status is AlgoStatus.INVALID and why in algo.reason
    assert algo.on_time(T0, market()) == [] and algo.done


def test_lot_size_is_respected():
    algo = TWAP(slices=7)
    algo.start(parent(1000), T0, T1, AlgoContext(lot_size=10))
    sent = drive(algo, minutes(T0, T1))
    assert sum(c.quantity for c in sent) == 1000
    assert all(c.quantity % 10 == 0 for c in sent)


# --- prices: tick grid, rounding direction, band -----------------------------------------------

WIDE = Band(lower=1.0, upper=10_000.0, reference=100.0)


@pytest.mark.parametrize(
    ("side", "policy", "bid", "ask", "limit", "expected"),
    [
        # 49.99 is off the 0.02 grid of the 20-50 tier: a buy rounds down, a sell up
        (Side.BUY, PricingPolicy.passive(), 49.99, 50.05, None, 49.98),
        (Side.SELL, PricingPolicy.passive(), 49.90, 49.99, None, 50.00),
        # one tick across the 50.00 boundary: up from 49.98 is 50.00, down from 50.00 is 49.98
        (Side.BUY, PricingPolicy.cross(1), 49.96, 49.98, None, 50.00),
        (Side.SELL, PricingPolicy.cross(1), 50.00, 50.05, None, 49.98),
        (Side.BUY, PricingPolicy.cross(2), 49.96, 49.98, None, 50.05),
        # the 2,500 boundary: 1.00 ticks below, 2.50 above
        (Side.BUY, PricingPolicy.cross(1), 2498.0, 2499.0, None, 2500.0),
        (Side.BUY, PricingPolicy.cross(2), 2498.0, 2499.0, None, 2502.5),
        (Side.SELL, PricingPolicy.cross(1), 2500.0, 2502.5, None, 2499.0),
        (Side.BUY, PricingPolicy.passive(), 2499.5, 2502.5, None, 2499.0),
        (Side.SELL, PricingPolicy.passive(), 2497.0, 2499.5, None, 2500.0),
        # a tighter parent limit wins, itself rounded the safe way
        (Side.BUY, PricingPolicy.cross(2), 50.00, 50.05, 50.03, 50.00),
        (Side.SELL, PricingPolicy.cross(2), 49.96, 49.98, 49.97, 49.98),
        (Side.BUY, PricingPolicy.at_limit(), 49.00, 49.10, 2501.0, 2500.0),
        (Side.SELL, PricingPolicy.at_limit(), 49.00, 49.10, 2499.2, 2500.0),
    ],
)
def test_child_prices_on_the_grid(side, policy, bid, ask, limit, expected):
    p = parent(100, side, limit)
    price, why = child_price(
        policy, p, DAY, BIST_SHARE_TICKS, bid=bid, ask=ask, last=bid, band=WIDE
    )
    assert why == "" and price == pytest.approx(expected, abs=1e-9)
    assert BIST_SHARE_TICKS.is_on_tick(price, DAY)


def test_step_ticks_across_tier_boundaries():
    assert step_ticks(BIST_SHARE_TICKS, 49.98, DAY, 1) == 50.00
    assert step_ticks(BIST_SHARE_TICKS, 50.00, DAY, -1) == 49.98
    assert step_ticks(BIST_SHARE_TICKS, 2499.0, DAY, 2) == 2502.5
    assert step_ticks(BIST_SHARE_TICKS, 2502.5, DAY, -2) == 2499.0
    assert step_ticks(BIST_SHARE_TICKS, 0.01, DAY, -1) is None
    # before August 2023 there was no 2.50 tier: 0.10 steps above 100
    assert step_ticks(BIST_SHARE_TICKS, 2499.9, date(2022, 6, 1), 1) == 2500.0


def test_children_are_clipped_into_the_band():
    band = PriceBand().daily(50.00, DAY)  # base 50.00: [45.00, 55.00]
    assert (band.lower, band.upper) == (45.0, 55.0)
    p = parent(100, Side.BUY)
    price, _ = child_price(
        PricingPolicy.cross(3), p, DAY, BIST_SHARE_TICKS, bid=54.9, ask=54.95, last=54.9, band=band
    )
    assert price == 55.0  # 54.95 + 3 ticks = 55.10 is above the band: the upper limit instead
    s = parent(100, Side.SELL)
    price, _ = child_price(
        PricingPolicy.cross(3), s, DAY, BIST_SHARE_TICKS, bid=45.02, ask=45.1, last=45.02, band=band
    )
    assert price == 45.0
    # a band given off the grid is rounded inward before clipping
    odd = Band(lower=45.01, upper=54.99, reference=50.0)
    price, _ = child_price(
        PricingPolicy.cross(3), p, DAY, BIST_SHARE_TICKS, bid=54.9, ask=54.95, last=54.9, band=odd
    )
    assert price == 54.95 and odd.contains(price)


def test_parent_limit_outside_the_band_blocks_with_a_reason():
    band = PriceBand().daily(50.00, DAY)
    algo = TWAP(slices=2, pricing=PricingPolicy.at_limit())
    algo.start(parent(100, Side.BUY, limit=44.0), T0, T1)
    assert algo.on_time(T0, market(band=band)) == []
    assert algo.status is AlgoStatus.BLOCKED
    assert "buy limit 44.0 is below the band's lower limit 45.0" in algo.reason
    algo = TWAP(slices=2, pricing=PricingPolicy.passive())
    algo.start(parent(100, Side.SELL, limit=56.0), T0, T1)
    assert algo.on_time(T0, market(band=band)) == []
    assert algo.status is AlgoStatus.BLOCKED and "above the band's upper limit" in algo.reason
    # no market price at all: blocked, not an exception
    algo.start(parent(100, Side.BUY), T0, T1)
    assert algo.on_time(T0, MarketState(day=DAY)) == []
    assert algo.status is AlgoStatus.BLOCKED and "no near price" in algo.reason


@pytest.mark.parametrize("prev_close", [19.99, 20.0, 49.99, 50.0, 99.95, 249.9, 2499.0, 2500.0])
def test_every_child_on_grid_in_band_and_rounded_the_safe_way(prev_close):
    """Random quotes around tier boundaries, every policy and side, with and without limits."""
    rng = np.random.default_rng(int(prev_close * 100))
    band = PriceBand().daily(prev_close, DAY)
    policies = [PricingPolicy.passive(), PricingPolicy.cross(0), PricingPolicy.cross(2)]
    policies += [PricingPolicy.cross(7), PricingPolicy.at_limit()]
    for _ in range(300):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        mid = prev_close * float(rng.uniform(0.88, 1.12))
        spread = prev_close * float(rng.uniform(0.0, 0.004))
        bid, ask = mid - spread / 2, mid + spread / 2
        limit = prev_close * float(rng.uniform(0.85, 1.15)) if rng.random() < 0.7 else None
        policy = policies[int(rng.integers(len(policies)))]
        p = parent(100, side, limit)
        price, why = child_price(
            policy, p, DAY, BIST_SHARE_TICKS, bid=bid, ask=ask, last=mid, band=band
        )
        if price is None:
            assert why
            # only a limit on the wrong side of the band, or no limit to price at, blocks
            assert limit is None or limit < band.lower or limit > band.upper
            continue
        assert BIST_SHARE_TICKS.is_on_tick(price, DAY), price
        assert band.lower - 1e-9 <= price <= band.upper + 1e-9
        if limit is not None:  # never more aggressive than the parent's limit
            assert (price <= limit + 1e-9) if side is Side.BUY else (price >= limit - 1e-9)


def test_algorithm_children_near_tier_boundaries_are_valid():
    for bid, ask in [(49.96, 49.99), (49.99, 50.05), (2498.0, 2499.0), (2499.0, 2500.0)]:
        band = PriceBand().daily(bid, DAY)
        for side in Side:
            for policy in (PricingPolicy.passive(), PricingPolicy.cross(1)):
                algo = TWAP(slices=5, pricing=policy)
                algo.start(parent(1001, side), T0, T1)
                sent = drive(algo, minutes(T0, T1, 5 * MIN), market(bid, ask, band=band))
                assert sum(c.quantity for c in sent) == 1001
                for c in sent:
                    assert BIST_SHARE_TICKS.is_on_tick(c.limit_price, DAY)
                    assert band.contains(c.limit_price)
                    ref = bid if side is Side.BUY else ask
                    if policy.offset_ticks == 0:  # passive: never through the own touch
                        assert (
                            (c.limit_price <= ref) if side is Side.BUY else (c.limit_price >= ref)
                        )


# --- VWAP: the learned profile and its schedule ------------------------------------------------


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=10)).minute_bars()


@pytest.fixture(scope="module")
def profile(bars) -> VolumeProfile:
    return learn_volume_profile(bars, "5m")


def _bucket(hh: int, mm: int, width: int = 5) -> int:
    return (hh * 60 + mm) // width


def test_profile_sums_to_one_and_is_u_shaped(profile):
    assert profile.n_buckets == 288 and profile.n_full_days == 30 and profile.n_half_days == 0
    assert profile.full_day.sum() == pytest.approx(1.0, abs=1e-12)
    assert profile.half_day.sum() == pytest.approx(1.0, abs=1e-12)
    f = profile.full_day
    first_half_hour = f[_bucket(10, 0) : _bucket(10, 30)].mean()
    midday = f[_bucket(12, 0) : _bucket(16, 0)].mean()
    last_half_hour = f[_bucket(17, 30) : _bucket(18, 0)].mean()
    assert first_half_hour > 1.3 * midday and last_half_hour > 1.3 * midday
    assert f[: _bucket(9, 55)].sum() == 0 and f[_bucket(18, 10) :].sum() == 0
    assert f[_bucket(9, 55)] > 0 and f[_bucket(18, 5)] > 0  # the auction prints


def test_profile_matches_an_independent_pandas_computation(bars, profile):
    df = bars.select("ts", "symbol", "volume").to_pandas()
    local = pd.to_datetime(df["ts"]).dt.tz_convert("Europe/Istanbul")
    df["day"] = local.dt.date
    df["bucket"] = (local.dt.hour * 60 + local.dt.minute) // 5
    per = df.groupby(["symbol", "day", "bucket"])["volume"].sum()
    frac = per / per.groupby(level=["symbol", "day"]).transform("sum")
    table = frac.unstack("bucket", fill_value=0.0)
    expected = np.zeros(288)
    expected[table.columns.to_numpy()] = table.mean(axis=0).to_numpy()
    np.testing.assert_allclose(profile.full_day, expected, rtol=1e-10, atol=1e-15)


def test_half_day_profile_is_the_full_day_compressed(profile):
    f, h = profile.full_day, profile.half_day
    assert profile.half_day_source == "scaled"
    assert h[_bucket(12, 40) :].sum() == 0  # nothing after the half day's last trade
    # the opening is untouched, the continuous session keeps its share of the day, and the
    # closing sequence moves from 18:00-18:10 to 12:30-12:40
    assert h[_bucket(9, 55)] == pytest.approx(f[_bucket(9, 55)])
    cont_full = f[_bucket(10, 0) : _bucket(18, 0)].sum()
    assert h[_bucket(10, 0) : _bucket(12, 30)].sum() == pytest.approx(cont_full)
    assert h[_bucket(12, 35)] == pytest.approx(f[_bucket(18, 5)])
    # still U-shaped: 30 half-day buckets stand for 96 full-day ones
    cont = h[_bucket(10, 0) : _bucket(12, 30)]
    assert cont[0] > 1.3 * cont[10:20].mean() and cont[-1] > 1.3 * cont[10:20].mean()


def test_half_days_are_learned_apart_when_there_are_enough():
    sim = SyntheticMarket(SyntheticMarketConfig(n_symbols=2, n_sessions=3, start=HALF_DAY))
    bars = sim.minute_bars()
    assert TradingCalendar().is_half_day(HALF_DAY)
    learned = learn_volume_profile(bars, "15m", min_half_days=1)
    assert learned.half_day_source == "learned"
    assert learned.n_half_days == 2 and learned.n_full_days == 4
    assert learned.half_day[_bucket(12, 45, 15) :].sum() == 0
    assert learned.full_day[_bucket(13, 0, 15) : _bucket(18, 0, 15)].sum() > 0.3
    scaled = learn_volume_profile(bars, "15m")  # default: too few half days, scaled
    assert scaled.half_day_source == "scaled"
    np.testing.assert_allclose(scaled.full_day, learned.full_day)


def test_vwap_slices_follow_the_profile_by_hand():
    weights = np.zeros(24)
    weights[10:18] = [3, 2, 1, 1, 1, 1, 2, 3]  # hourly buckets 10:00 ... 17:00
    prof = VolumeProfile.from_fractions(60, weights)
    session = TradingCalendar().session(DAY)
    algo = VWAP(prof)
    algo.start(parent(1400), ns(DAY, 9, 40), ns(DAY, 18, 10), AlgoContext(session=session))
    hours = [ns(DAY, h, 0) for h in range(10, 18)]
    assert algo.schedule == tuple(zip(hours, [300, 200, 100, 100, 100, 100, 200, 300], strict=True))
    # a window from 10:30 to 12:00 gets half the 10:00 bucket: weights 1.5, 2 -> 600, 800
    algo.start(parent(1400), ns(DAY, 10, 30), ns(DAY, 12, 0))
    assert algo.schedule == ((ns(DAY, 10, 30), 600), (ns(DAY, 11, 0), 800))
    sent = drive(algo, minutes(ns(DAY, 10, 30), ns(DAY, 12, 0)))
    assert [c.quantity for c in sent] == [600, 800]


def test_vwap_on_a_learned_profile(profile):
    session = TradingCalendar().session(DAY)
    algo = VWAP(profile)
    algo.start(parent(100_003), ns(DAY, 9, 40), ns(DAY, 18, 10), AlgoContext(session=session))
    qty = [q for _, q in algo.schedule]
    assert sum(qty) == 100_003 and len(qty) == 96  # continuous 10:00-18:00 only
    assert algo.schedule[0][0] == ns(DAY, 10, 0)
    assert qty[0] > 1.5 * np.median(qty) and qty[-1] > 1.5 * np.median(qty)
    sent = drive(algo, minutes(ns(DAY, 9, 40), ns(DAY, 18, 10)))
    assert sum(c.quantity for c in sent) == 100_003


def test_vwap_uses_the_half_day_profile_on_half_days(profile):
    session = TradingCalendar().session(HALF_DAY)
    algo = VWAP(profile)
    algo.start(
        parent(10_000), ns(HALF_DAY, 9, 40), ns(HALF_DAY, 18, 0), AlgoContext(session=session)
    )
    assert algo.status is AlgoStatus.PENDING
    assert len(algo.schedule) == 30 and algo.schedule[-1][0] == ns(HALF_DAY, 12, 25)
    assert sum(q for _, q in algo.schedule) == 10_000


def test_vwap_refuses_windows_it_cannot_trade(profile):
    algo = VWAP(profile)
    algo.start(parent(100), ns(DAY, 17, 0), ns(DAY + timedelta(days=1), 11, 0))
    assert algo.status is AlgoStatus.INVALID and "one trading day" in algo.reason
    session = TradingCalendar().session(DAY)
    algo.start(parent(100), ns(DAY, 18, 1), ns(DAY, 18, 10), AlgoContext(session=session))
    assert algo.status is AlgoStatus.INVALID and "continuous trading" in algo.reason


# --- POV -------------------------------------------------------------------------------------


def _pov_run(algo, cumulative, fill=True, **kw):
    sent = []
    for i, cum in enumerate(cumulative):
        t = T0 + i * MIN
        for c in algo.on_time(t, market(cumulative_volume=cum, **kw)):
            sent.append(c)
            if fill:
                algo.on_fill(report(c, c.quantity, c.quantity))
    return sent


def test_pov_tracks_the_rate_on_a_hand_made_sequence():
    algo = POV(rate=0.1, min_slice=100)
    algo.start(parent(10_000), T0, T1)
    # volume since the previous event: -, 1000, 2000, 500, 3000, 100, 2000
    sent = _pov_run(algo, [50_000, 51_000, 53_000, 53_500, 56_500, 56_600, 58_600])
    # 10% of it: 100, 200, 50 (< 100: waits), 50 + 300, 10 (waits), 10 + 200
    assert [c.quantity for c in sent] == [100, 200, 350, 210]
    assert sum(c.quantity for c in sent) == pytest.approx(0.1 * (58_600 - 50_000))
    assert algo.market_volume == 8_600


def test_pov_max_slice_without_and_with_catch_up():
    volumes = [0, 1000, 5000, 5100, 5200, 5300]  # increments 1000, 4000, 100, 100, 100
    stay = POV(rate=0.1, min_slice=10, max_slice=250)
    stay.start(parent(10_000), T0, T1)
    # 100; 400 capped at 250 and the other 150 forgone; 10, 10, 10
    assert [c.quantity for c in _pov_run(stay, volumes)] == [100, 250, 10, 10, 10]
    catch = POV(rate=0.1, min_slice=10, max_slice=250, catch_up=True)
    catch.start(parent(10_000), T0, T1)
    # 100; 250 with 150 owed; 150 + 10 = 160; 10; 10
    assert [c.quantity for c in _pov_run(catch, volumes)] == [100, 250, 160, 10, 10]


def test_pov_ignores_auction_volume_and_finishes_the_parent():
    algo = POV(rate=0.5, min_slice=1)
    algo.start(parent(700), T0, T1)
    assert _pov_run(algo, [0]) == []
    assert _pov_run(algo, [1000], phase=SessionPhase.OPENING_UNCROSS) == []
    assert algo.entitlement == 0  # auction volume earns nothing
    sent = []
    for i, cum in enumerate([1200, 1600, 3000]):
        for c in algo.on_time(T0 + (i + 1) * MIN, market(cumulative_volume=cum)):
            sent.append(c)
            algo.on_fill(report(c, c.quantity, c.quantity))
    # 50% of 200, 400, then 1400 capped by the 300 left of the parent
    assert [c.quantity for c in sent] == [100, 200, 400]
    assert algo.status is AlgoStatus.COMPLETED and algo.done


def test_pov_never_over_sends_while_children_work():
    algo = POV(rate=0.5)
    algo.start(parent(500), T0, T1)
    # 50% of 400 a minute, nothing fills: 200, 200, then only the 100 the parent has left
    sent = _pov_run(algo, [0, 400, 800, 1200, 1600, 2000], fill=False)
    assert [c.quantity for c in sent] == [200, 200, 100]
    assert algo.working == 500 and algo.filled == 0
    algo.on_fill(report(sent[0], 50, 50, n=1))
    algo.on_fill(report(sent[0], 0, 50, OrderStatus.CANCELLED))  # 150 released
    (again,) = algo.on_time(T0 + 6 * MIN, market(cumulative_volume=2400))
    assert again.quantity == 150 and algo.filled + algo.working == 500


def test_pov_stays_behind_when_the_market_is_quiet():
    algo = POV(rate=0.2, min_slice=50)
    algo.start(parent(1000), T0, T0 + 3 * MIN)
    sent = _pov_run(algo, [0, 1000, 1200, 1300])  # the last event is at the window's end
    assert [c.quantity for c in sent] == [200]
    assert algo.status is AlgoStatus.EXPIRED and algo.remaining == 800 and algo.done


def test_pov_interval_volume_and_random_sequences():
    algo = POV(rate=0.07, min_slice=30)
    algo.start(parent(10**9), T0, T1)
    sent = []
    for i, v in enumerate([400, 0, 1000, 15, 900]):
        sent += algo.on_time(T0 + i * MIN, market(interval_volume=v))
    # 28 (waits), 28, 98 -> 98 sent, 1.05 + 63 = 64.05 -> 64 (fraction carried)
    assert [c.quantity for c in sent] == [98, 64]
    rng = np.random.default_rng(11)
    for _ in range(10):
        rate = float(rng.uniform(0.01, 0.5))
        algo = POV(rate=rate, min_slice=int(rng.integers(1, 200)))
        algo.start(parent(10**9), T0, T1)
        cum = np.cumsum(rng.integers(0, 5000, 59))
        sent = _pov_run(algo, [0, *cum.tolist()])
        total = sum(c.quantity for c in sent)
        assert rate * cum[-1] - algo.min_slice - 1 <= total <= rate * cum[-1]


# --- Almgren-Chriss --------------------------------------------------------------------------

AC = {"X": 1e6, "T": 5.0, "n": 5, "sigma": 0.95, "eta": 2.5e-6, "gamma": 2.5e-7}


def test_ac_zero_risk_aversion_is_linear():
    traj = almgren_chriss_trajectory(**AC, lam=0.0, epsilon=0.0625)
    np.testing.assert_allclose(traj.holdings, [1e6, 8e5, 6e5, 4e5, 2e5, 0.0], rtol=1e-12)
    # E = ½γX² + εX + η̃X²/T = 125,000 + 62,500 + 2.375e-6 · 1e12 / 5 = 662,500
    # (the same example in the DROP library's Almgren-Chriss coverage run prints a mean cost of
    # 0.6625 million and a variance of about 1.08e12 at its smallest λ)
    assert traj.expected_cost == pytest.approx(662_500.0, rel=1e-12)
    # V = σ²τ Σx_k² = 0.9025 · (0.8² + 0.6² + 0.4² + 0.2²) · 1e12 = 1.083e12
    assert traj.variance == pytest.approx(1.083e12, rel=1e-12)
    tiny = almgren_chriss_trajectory(**AC, lam=1e-14)
    np.testing.assert_allclose(tiny.holdings, traj.holdings, rtol=1e-6)


def test_ac_larger_risk_aversion_front_loads():
    trajs = [almgren_chriss_trajectory(**AC, lam=lam) for lam in (0, 1e-7, 1e-6, 1e-5, 1e-3)]
    for lo, hi in itertools.pairwise(trajs):
        assert hi.kappa > lo.kappa
        assert hi.trades[0] > lo.trades[0]
        assert np.all(hi.holdings[1:-1] < lo.holdings[1:-1])
        assert hi.variance < lo.variance and hi.expected_cost > lo.expected_cost
    huge = almgren_chriss_trajectory(**AC, lam=1e3)  # κτ ≈ 19.8: no overflow, all at once
    assert np.all(np.isfinite(huge.holdings)) and huge.trades[0] == pytest.approx(1e6, rel=1e-8)


def test_ac_worked_example_matches_the_closed_forms():
    lam, eps = 1e-6, 0.0625
    traj = almgren_chriss_trajectory(**AC, lam=lam, epsilon=eps)
    X, T, N, sigma, eta, gamma = 1e6, 5.0, 5, 0.95, 2.5e-6, 2.5e-7
    tau = T / N  # 1 day
    eta_t = eta - 0.5 * gamma * tau  # 2.5e-6 - 1.25e-7 = 2.375e-6
    # cosh(κτ) = 1 + λσ²τ²/(2η̃) = 1 + 1e-6 · 0.9025 / 4.75e-6 = 1.19
    assert lam * sigma**2 * tau**2 / (2 * eta_t) == pytest.approx(0.19, rel=1e-12)
    # κ = arccosh(1.19) = ln(1.19 + √(1.19² − 1)) = ln(1.19 + 0.645058) = 0.607076 per day
    assert traj.kappa == pytest.approx(0.607076, abs=1e-6)
    k = traj.kappa
    x = [X * math.sinh(k * (T - j * tau)) / math.sinh(k * T) for j in range(N + 1)]
    np.testing.assert_allclose(traj.holdings, x, rtol=1e-12)
    assert traj.holdings[1] == pytest.approx(541_955.55, abs=0.01)
    # n_j = 2 sinh(κτ/2) / sinh(κT) · cosh(κ(T − t_{j−1/2})) · X
    n = [
        2 * math.sinh(k * tau / 2) / math.sinh(k * T) * math.cosh(k * (T - (j - 0.5) * tau)) * X
        for j in range(1, N + 1)
    ]
    np.testing.assert_allclose(traj.trades, n, rtol=1e-12)
    # the paper's closed forms of E and V for the optimal trajectory
    e_closed = (
        0.5 * gamma * X**2
        + eps * X
        + eta_t
        * X**2
        * math.tanh(0.5 * k * tau)
        * (tau * math.sinh(2 * k * T) + 2 * T * math.sinh(k * tau))
        / (2 * tau**2 * math.sinh(k * T) ** 2)
    )
    v_closed = (
        0.5
        * sigma**2
        * X**2
        * (tau * math.sinh(k * T) * math.cosh(k * (T - tau)) - T * math.sinh(k * tau))
        / (math.sinh(k * T) ** 2 * math.sinh(k * tau))
    )
    assert traj.expected_cost == pytest.approx(e_closed, rel=1e-10)
    assert traj.variance == pytest.approx(v_closed, rel=1e-10)
    assert traj.expected_cost == pytest.approx(911_227.0, abs=1.0)


def test_ac_trajectory_solves_the_first_order_conditions():
    """Minimise (η̃/τ)Σn_k² + λσ²τΣx_k² directly: the interior holdings solve
    (η̃/τ)(2x_j − x_{j−1} − x_{j+1}) + λσ²τ x_j = 0, a tridiagonal system."""
    for lam, n in [(1e-6, 5), (3e-5, 12), (1e-8, 40)]:
        params = {**AC, "n": n}
        traj = almgren_chriss_trajectory(**params, lam=lam)
        tau = params["T"] / n
        eta_t = params["eta"] - 0.5 * params["gamma"] * tau
        a = eta_t / tau
        m = n - 1
        A = np.diag(np.full(m, 2 * a + lam * params["sigma"] ** 2 * tau))
        A += np.diag(np.full(m - 1, -a), 1) + np.diag(np.full(m - 1, -a), -1)
        b = np.zeros(m)
        b[0] = a * params["X"]
        np.testing.assert_allclose(traj.holdings[1:-1], np.linalg.solve(A, b), rtol=1e-9)
        # and it beats the straight line on E + λV
        line = np.linspace(params["X"], 0.0, n + 1)
        e, v = ac_cost(line, tau, params["sigma"], params["eta"], params["gamma"])
        assert traj.objective(lam) < e + lam * v


def test_ac_algorithm_schedule():
    twap = TWAP(slices=5)
    twap.start(parent(1001), T0, T1)
    flat = AlmgrenChriss(0.0, sigma=0.5, eta=1e-3, gamma=1e-5, n_slices=5)
    flat.start(parent(1001), T0, T1)
    assert flat.schedule == twap.schedule  # λ = 0 is TWAP
    algo = AlmgrenChriss(5e-3, sigma=0.5, eta=1e-3, gamma=1e-5, n_slices=5)
    algo.start(parent(1001, Side.SELL), T0, T1)
    qty = [q for _, q in algo.schedule]
    assert sum(qty) == 1001 and qty == sorted(qty, reverse=True) and qty[0] > qty[-1]
    assert algo.trajectory is not None
    np.testing.assert_allclose(np.cumsum(qty), 1001 - algo.trajectory.holdings[1:], atol=1.0)
    sent = drive(algo, minutes(T0, T1))
    assert sum(c.quantity for c in sent) == 1001 and algo.done
    # γ too large for the period (η̃ = η − γτ/2 ≤ 0): refused with a reason, no exception
    bad = AlmgrenChriss(1e-3, sigma=0.5, eta=1e-6, gamma=1.0, n_slices=2)
    bad.start(parent(100), T0, T1)
    assert bad.status is AlgoStatus.INVALID and "η̃" in bad.reason


def test_configuration_errors_raise_at_construction():
    with pytest.raises(ValueError):
        TWAP()
    with pytest.raises(ValueError):
        TWAP(slices=0)
    with pytest.raises(ValueError):
        POV(rate=1.5)
    with pytest.raises(ValueError):
        POV(rate=0.1, min_slice=100, max_slice=10)
    with pytest.raises(ValueError):
        AlmgrenChriss(-1.0, 0.1, 1e-3, 0.0, 5)


def test_profile_input_forms(bars, profile):
    as_int = bars.with_columns(pl.col("ts").dt.epoch("ns"))
    np.testing.assert_allclose(learn_volume_profile(as_int, "5m").full_day, profile.full_day)
    hourly = learn_volume_profile(bars, timedelta(hours=1))
    assert hourly.bucket_minutes == 60 and hourly.full_day.sum() == pytest.approx(1.0)
    assert learn_volume_profile(bars, "1h").full_day == pytest.approx(hourly.full_day)
    # coarser buckets add the finer ones up
    np.testing.assert_allclose(hourly.full_day, profile.full_day.reshape(24, 12).sum(axis=1))
    with pytest.raises(ValueError, match="divide the day"):
        learn_volume_profile(bars, "7m")
    with pytest.raises(ValueError, match="no bars"):
        learn_volume_profile(bars.head(0))
