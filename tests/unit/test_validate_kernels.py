"""The compiled validation kernels agree with plain numpy/Python formulations of the same rules.

Validation's verdicts must not depend on which implementation computed them, so each kernel is
checked against a direct (slow, obvious) version on random inputs that include the edges: dead
rows, ties, negative epochs, prices off the grid, below the first tier or too large for int64.
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pytest

from quant.data.schema import DataKind
from quant.data.validate import ValidationConfig
from quant.data.validate import kernels as k
from quant.data.validate.checks.band import BandCheck
from quant.data.validate.checks.outliers import calm_bounds, reference_prices
from quant.data.validate.checks.ticks import table_arrays
from quant.market.bands import PriceBand
from quant.market.ticks import BIST_SHARE_TICKS, PRICE_SCALE, TickSizeTable

DAY = 86_400 * 10**9


def groups_of(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    gid = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    return starts, gid


def test_local_clock_matches_floor_division_including_before_1970() -> None:
    rng = np.random.default_rng(1)
    epoch = np.sort(rng.integers(-5 * DAY, 5 * DAY, 5000)).astype(np.int64)
    epoch[:3] = [-DAY - 1, -DAY, -1]
    for offset in (0, 3 * 3600 * 10**9, -5 * 3600 * 10**9):
        day, tod = k.local_clock(epoch, offset)
        local = epoch + offset
        np.testing.assert_array_equal(day, local // DAY)
        np.testing.assert_array_equal(tod, local - (local // DAY) * DAY)


def test_symbol_day_runs() -> None:
    day = np.array([5, 5, 6, 6, 6, 5, 7, 7], dtype=np.int64)
    runs = np.array([5, 3], dtype=np.int64)  # symbol A: rows 0-4, symbol B: rows 5-7
    gid, starts, run_of = k.symbol_day_runs(runs, day)
    np.testing.assert_array_equal(starts, [0, 2, 5, 6])
    np.testing.assert_array_equal(gid, [0, 0, 1, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(run_of, [0, 0, 1, 1])


def reference_off_tick(prices: np.ndarray, schedule: int, table: TickSizeTable) -> np.ndarray:
    """Row by row, in Python integers."""
    lowers = [round(t.lower * PRICE_SCALE) for t in table.schedules[schedule].tiers]
    ticks = [round(t.tick * PRICE_SCALE) for t in table.schedules[schedule].tiers]
    out = []
    for p in prices.tolist():
        scaled = p * PRICE_SCALE
        units = float(np.rint(scaled))
        if not (abs(scaled - units) < 1e-6 and units > 0):
            out.append(True)
            continue
        u = int(units) if units < 2.0**63 else -(2**63)
        tier = max(0, max((i for i, lo in enumerate(lowers) if lo <= u), default=0))
        out.append((u - lowers[tier]) % ticks[tier] != 0)
    return np.array(out)


def test_off_tick_matches_integer_reference() -> None:
    rng = np.random.default_rng(2)
    on_grid = np.round(rng.uniform(0.01, 3000, 3000), 2)
    prices = np.concatenate(
        [
            on_grid,
            on_grid + 0.001,
            [19.98, 20.0, 20.01, 20.02, 49.95, 50.0, 50.05, 2500.0, 2502.5, 2501.0],
            [0.0, -1.0, np.nan, np.inf, 1e300, 1e15, 0.00005, 0.01],
        ]
    )
    start, lowers, ticks = table_arrays(BIST_SHARE_TICKS)
    for schedule in range(len(BIST_SHARE_TICKS.schedules)):
        sizes = [500] * (prices.size // 500) + [prices.size % 500]
        _, gid = groups_of([s for s in sizes if s])
        schedule_of_group = np.full(gid.max() + 1, schedule, dtype=np.int64)
        with np.errstate(invalid="ignore", over="ignore"):
            got = k.off_tick(prices, gid, schedule_of_group, start, lowers, ticks, PRICE_SCALE)
            want = reference_off_tick(prices, schedule, BIST_SHARE_TICKS)
        np.testing.assert_array_equal(got, want)
    # No schedule in force: not flagged.
    _, gid = groups_of([prices.size])
    none = k.off_tick(prices, gid, np.array([-1]), start, lowers, ticks, PRICE_SCALE)
    assert not none.any()


def test_outside_windows_instants_and_overlaps() -> None:
    tod = np.array([5, 10, 19, 20, 30, 5, 5], dtype=np.int64)
    end = np.array([6, 11, 25, 21, 31, 11, 6], dtype=np.int64)
    gid = np.array([0, 0, 0, 0, 0, 1, 2], dtype=np.int64)
    window_start = np.array([0, 1, 1, 1], dtype=np.int64)  # day 0: [10, 20); days 1, 2: none
    lo, hi = np.array([10]), np.array([20])
    in_range = np.array([True, True, False])
    points = k.outside_windows(tod, tod, False, gid, window_start, lo, hi, in_range)
    np.testing.assert_array_equal(points, [True, False, False, True, True, True, False])
    spans = k.outside_windows(tod, end, True, gid, window_start, lo, hi, in_range)
    np.testing.assert_array_equal(spans, [True, False, False, True, True, True, False])
    spans = k.outside_windows(tod + 1, end + 5, True, gid, window_start, lo, hi, in_range)
    np.testing.assert_array_equal(spans, [False, False, True, True, True, True, False])


def reference_late(values, starts, alive, strict):
    bounds = [*starts.tolist(), values.size]
    out = []
    for a, b in itertools.pairwise(bounds):
        top = None
        for i in range(a, b):
            if not alive[i]:
                continue
            if top is not None and (values[i] < top or (strict and values[i] == top)):
                out.append((i, top))
            top = values[i] if top is None else max(top, values[i])
    return out


def test_late_rows_match_running_maxima_over_alive_rows() -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 40, 60).tolist()
    starts, _ = groups_of(sizes)
    n = sum(sizes)
    ts = rng.integers(0, 50, n).astype(np.int64)
    seq = rng.integers(0, 50, n).astype(np.int64)
    alive = rng.random(n) > 0.2
    for strict in (False, True):
        positions, late, before_ts, before_seq = k.late_rows(ts, seq, starts, alive, strict)
        by_ts = dict(reference_late(ts, starts, alive, strict))
        by_seq = dict(reference_late(seq, starts, alive, True))
        assert positions.tolist() == sorted(set(by_ts) | set(by_seq))
        for p, is_late, bt, bs in zip(positions, late, before_ts, before_seq, strict=True):
            assert is_late == (p in by_ts)
            assert bt == by_ts.get(p, 0) and bs == by_seq.get(p, 0)
        positions, late, before_ts, _ = k.late_rows(ts, None, starts, alive, strict)
        assert positions.tolist() == sorted(by_ts) and late.all()
        assert before_ts.tolist() == [by_ts[p] for p in positions.tolist()]


def test_last_alive_and_outside_band() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    starts = np.array([0, 3, 5], dtype=np.int64)
    alive = np.array([True, True, False, False, False, True])
    count, last = k.last_alive(values, starts, alive)
    np.testing.assert_array_equal(count, [2, 0, 1])
    np.testing.assert_array_equal(last, [2.0, np.nan, 6.0])
    gid = np.array([0, 0, 0, 1, 1, 2], dtype=np.int64)
    lower, upper = np.array([1.5, 0.0, np.nan]), np.array([2.0, 9.0, np.nan])
    positions = k.outside_band(values, values, gid, alive, lower, upper)
    np.testing.assert_array_equal(positions, [0])  # 1.0 < 1.5; 2.0 is on the limit


def reference_stale(scope, alive, ts, columns, cap, limit):
    live = np.flatnonzero(alive)
    out = []
    run_first, run_len = None, 0
    for j, i in enumerate(live):
        prev = live[j - 1] if j else None
        same = prev is not None and scope[i] == scope[prev]
        same = same and all(c[i] == c[prev] for c in columns)
        run_first, run_len = (run_first, run_len + 1) if same else (i, 1)
        if run_len > cap and ts[i] - ts[run_first] > limit:
            out.append((i, run_len, ts[i] - ts[run_first]))
    return out


def test_stale_rows_match_runs_over_alive_rows() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    scope = np.repeat(np.arange(8), n // 8).astype(np.int64)
    price = rng.choice([10.0, 10.01], n, p=[0.9, 0.1])
    size = rng.choice([100, 200], n, p=[0.95, 0.05]).astype(np.int64)
    side = rng.choice([1, -1], n, p=[0.97, 0.03]).astype(np.int8)
    ts = np.cumsum(rng.integers(1, 10**9, n)).astype(np.int64)
    alive = rng.random(n) > 0.05
    positions, numbers, elapsed = k.stale_rows(
        scope, alive, ts, price, size, side, side, side, 5, 3 * 10**9
    )
    want = reference_stale(scope, alive, ts, [price, size, side], 5, 3 * 10**9)
    assert want, "the random data should hold stale runs"
    assert list(zip(positions.tolist(), numbers.tolist(), elapsed.tolist(), strict=True)) == [
        (int(a), int(b), int(c)) for a, b, c in want
    ]


def test_outlier_screen_certifies_only_days_without_a_possible_outlier() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 60, 300).tolist()
    starts, _ = groups_of(sizes)
    n = sum(sizes)
    # Tick-like prices (many repeats of the median) with jumps and spikes.
    ticks = np.round(rng.normal(0, 0.6, n)).cumsum() * 0.01
    prices = 5.0 + np.abs(ticks)
    prices[rng.integers(0, n, 30)] *= rng.choice([0.97, 1.01, 1.03], 30)
    alive = rng.random(n) > 0.1
    z, floor = 8.0, 0.002
    got_sizes, calm = k.outlier_screen(prices, starts, alive, calm_bounds(z, floor))
    live = np.flatnonzero(alive)
    p = prices[live]
    scope = np.searchsorted(starts, live, side="right") - 1
    new = np.r_[True, scope[1:] != scope[:-1]]
    first = np.flatnonzero(new)
    pos = np.arange(p.size) - first[np.cumsum(new) - 1]
    r = np.log(p / reference_prices(p, first, pos))
    for g in range(len(sizes)):
        mine = r[scope == g][1:]  # a day's first price has no return
        assert got_sizes[g] == mine.size + (1 if (scope == g).any() else 0)
        if calm[g] and mine.size:  # all finite and within z * floor of their median
            assert np.isfinite(mine).all()
            assert (np.abs(mine - np.median(mine)) <= z * floor).all()
    assert calm.any() and not calm.all()


@pytest.mark.parametrize("table", [BIST_SHARE_TICKS, TickSizeTable.fixed(0.05)])
def test_vectorised_daily_bands_equal_price_band(table: TickSizeTable) -> None:
    rng = np.random.default_rng(6)
    closes = np.round(rng.uniform(0.01, 3000, 2000), 2)
    closes = np.r_[closes, [0.0, -3.0, np.nan, np.inf, 2e9, 0.01, 0.02, 19.99, 20.0, 2500.0]]
    days = [date(2023, 8, 25), date(2023, 8, 28)] * (closes.size // 2)
    band_check = BandCheck(DataKind.TRADES, ValidationConfig(tick_table=table))
    lower, upper, base = band_check.daily_bands(closes, days)
    band = PriceBand(ticks=table)
    for i, (close, day) in enumerate(zip(closes.tolist(), days, strict=True)):
        try:
            b = band.daily(close, day)
        except ValueError:
            assert np.isnan(lower[i]) and np.isnan(upper[i]) and np.isnan(base[i])
            continue
        assert (lower[i], upper[i], base[i]) == (b.lower, b.upper, b.reference), close
