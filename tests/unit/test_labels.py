"""Labels: CUSUM events, volatility, triple barrier, meta-labels and sample weights (AFML 2-4).

Hand-worked cases are written out literally; the vectorised implementations are also checked
against plain transcriptions of the book's snippets (loops over events and bars) on random
paths, and the weights against the worked example of AFML section 4.5.3.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant.labels import (
    average_uniqueness,
    close_series,
    concurrency,
    cusum_filter,
    daily_volatility,
    ewm_volatility,
    indicator_matrix,
    indicator_uniqueness,
    label_spans,
    meta_bet_size,
    meta_labels,
    return_attribution_weights,
    sequential_bootstrap,
    sequential_bootstrap_probabilities,
    time_decay,
    triple_barrier,
)

UTC = dt.UTC


def minutes(n: int, start: str = "2024-01-02 07:00") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="min", tz="UTC")


def random_path(n: int, seed: int, tick: float | None = 0.01) -> pd.Series:
    rng = np.random.default_rng(seed)
    p = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    if tick:
        p = np.round(p / tick) * tick
    return pd.Series(p, index=minutes(n))


# --------------------------------------------------------------------------- references


def afml_cusum(g_raw: pd.Series, h: float) -> list:
    """AFML snippet 2.4 (getTEvents) on log prices, as printed."""
    t_events, s_pos, s_neg = [], 0.0, 0.0
    diff = np.log(g_raw).diff()
    for i in diff.index[1:]:
        s_pos, s_neg = max(0.0, s_pos + diff.loc[i]), min(0.0, s_neg + diff.loc[i])
        if s_neg < -h:
            s_neg = 0.0
            t_events.append(i)
        elif s_pos > h:
            s_pos = 0.0
            t_events.append(i)
    return t_events


def afml_daily_vol(close: pd.Series, span0: int = 100) -> pd.Series:
    """AFML snippet 3.1 (getDailyVol), as printed (positional lookups spelled with .iloc)."""
    df0 = close.index.searchsorted(close.index - pd.Timedelta(days=1))
    df0 = df0[df0 > 0]
    df0 = pd.Series(close.index[df0 - 1], index=close.index[close.shape[0] - df0.shape[0] :])
    df0 = close.loc[df0.index] / close.loc[df0.to_numpy()].to_numpy() - 1
    return df0.ewm(span=span0).std()


def reference_triple_barrier(close, events, trgt, pt_sl, vertical, side=None):
    """AFML snippets 3.2-3.4 as a loop over events and bars, with the touch (>=, <=) rule.

    Vertical barrier: ``close.index.searchsorted(t0 + delta)`` for a duration (snippet 3.4),
    t0's position + n for n bars; unresolved events (no touch, vertical beyond data) dropped.
    """
    rows = []
    n = len(close)
    for t0 in events:
        s = close.index.get_loc(t0)
        target = trgt.loc[t0] if isinstance(trgt, pd.Series) else trgt
        if not target > 0:
            continue
        sd = 1 if side is None else int(side.loc[t0])
        by_bars = isinstance(vertical, int)
        v = s + vertical if by_bars else close.index.searchsorted(t0 + vertical)
        path_end = min(v, n - 1)
        t1, label, barrier = None, None, None
        for j in range(s + 1, path_end + 1):
            r = (close.iloc[j] / close.iloc[s] - 1) * sd
            if pt_sl[0] > 0 and r >= pt_sl[0] * target:
                t1, label, barrier = j, 1, "profit_take"
                break
            if pt_sl[1] > 0 and r <= -pt_sl[1] * target:
                t1, label, barrier = j, -1, "stop_loss"
                break
        if t1 is None:
            if v > n - 1:
                continue
            t1, label, barrier = v, 0, "vertical"
        ret = (close.iloc[t1] / close.iloc[s] - 1) * sd
        rows.append((t0, close.index[t1], ret, label, barrier))
    return pd.DataFrame(rows, columns=["t0", "t1", "ret", "label", "barrier"]).set_index("t0")


def afml_avg_uniqueness(ind_m: pd.DataFrame) -> pd.Series:
    """AFML snippet 4.4 (getAvgUniqueness), as printed."""
    c = ind_m.sum(axis=1)
    u = ind_m.div(c, axis=0)
    return u[u > 0].mean()


def afml_seq_bootstrap(ind_m: pd.DataFrame, s_length: int, uniforms: np.ndarray) -> list[int]:
    """AFML snippet 4.5 (seqBootstrap) with its np.random.choice replaced by given uniforms."""
    phi: list[int] = []
    while len(phi) < s_length:
        avg_u = pd.Series(0.0, index=ind_m.columns)
        for i in ind_m:
            ind_m_ = ind_m[[*phi, i]]
            avg_u.loc[i] = afml_avg_uniqueness(ind_m_).iloc[-1]
        prob = avg_u / avg_u.sum()
        cum = np.cumsum(prob.to_numpy())
        u = uniforms[len(phi)]
        pick = min(int(np.searchsorted(cum, u * cum[-1], side="right")), len(cum) - 1)
        phi.append(int(ind_m.columns[pick]))
    return phi


# --------------------------------------------------------------------------- CUSUM


def test_cusum_hand_worked_events():
    # log returns 0.02, 0.02, -0.05, 0.01, 0.03, 0.03 and h = 0.035:
    # S+ reaches 0.04 at bar 2 (event, reset); S- reaches -0.05 at bar 3 (event, reset);
    # S+ = 0.01, then 0.04 at bar 5 (event); bar 6 leaves S+ at 0.03.
    log_p = np.log(100.0) + np.cumsum([0.0, 0.02, 0.02, -0.05, 0.01, 0.03, 0.03])
    prices = pd.Series(np.exp(log_p), index=minutes(7))
    events = cusum_filter(prices, 0.035)
    assert list(events) == list(prices.index[[2, 3, 5]])


def test_cusum_matches_afml_snippet_on_random_path():
    prices = random_path(3000, seed=11)
    ours = cusum_filter(prices, 0.004)
    assert len(ours) > 50
    assert list(ours) == afml_cusum(prices, 0.004)


def test_cusum_time_varying_threshold_is_read_at_each_bar():
    prices = random_path(2000, seed=12)
    vol = ewm_volatility(prices, span=50)
    threshold = 2.0 * vol
    events = cusum_filter(prices, threshold)
    # No event before the threshold exists (the first two bars have no std yet).
    assert events[0] >= vol.first_valid_index()
    # A constant threshold Series gives the scalar result.
    constant = pd.Series(0.004, index=prices.index)
    assert list(cusum_filter(prices, constant)) == list(cusum_filter(prices, 0.004))


def test_cusum_rejects_non_positive_threshold():
    with pytest.raises(ValueError, match="positive"):
        cusum_filter(random_path(10, seed=1), 0.0)


# --------------------------------------------------------------------------- volatility


def test_ewm_volatility_is_ewm_std_of_bar_returns():
    prices = random_path(500, seed=3)
    expected = prices.pct_change().ewm(span=20).std()
    pd.testing.assert_series_equal(
        ewm_volatility(prices, span=20), expected, check_names=False, rtol=1e-12
    )


def test_daily_volatility_matches_afml_snippet_3_1():
    # Irregular bars over several days, with overnight gaps, so the one-day look-back lands
    # between bars.
    rng = np.random.default_rng(5)
    days = [pd.Timestamp("2024-03-04", tz="UTC") + pd.Timedelta(days=d) for d in range(6)]
    stamps = []
    for day in days:
        offsets = np.sort(rng.choice(480, size=40, replace=False))
        stamps.extend(day + pd.Timedelta(hours=7) + pd.to_timedelta(offsets, unit="min"))
    index = pd.DatetimeIndex(stamps)
    prices = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.003, len(index)))), index=index)
    ours = daily_volatility(prices, span=30)
    reference = afml_daily_vol(prices, span0=30)
    assert ours.index.equals(prices.index)
    assert ours.loc[: reference.index[0]].iloc[:-1].isna().all()
    pd.testing.assert_series_equal(
        ours.loc[reference.index], reference, check_names=False, rtol=1e-12
    )


# --------------------------------------------------------------------------- triple barrier

HAND_PRICES = [100.0, 102.0, 104.0, 106.0, 103.0, 100.0, 96.0, 97.0, 98.0, 99.0, 100.0, 101.0]


def hand_series(index: pd.Index | None = None) -> pd.Series:
    return pd.Series(HAND_PRICES, index=pd.RangeIndex(12) if index is None else index)


def test_triple_barrier_hand_worked_case():
    # target 5%, symmetric barriers, 3-bar vertical barrier.
    # e0 (100): 102, 104, 106 (+6%) -> profit-take at bar 3
    # e2 (104): 106 (+1.9%), 103, 100 (-3.8%) -> vertical at bar 5, return -3.85%
    # e3 (106): 103, 100 (-5.7%) -> stop-loss at bar 5
    # e5 (100): 96, 97, 98 -> vertical at bar 8, -2%
    # e6 (96): 97, 98, 99 -> vertical at bar 9, +3.1%
    # e8 (98): 99, 100, 101 -> vertical at bar 11 (the last bar), +3.1%
    # e9 (99): 100, 101, then the data end before the vertical bar: unresolved, dropped.
    prices = hand_series()
    out = triple_barrier(prices, [0, 2, 3, 5, 6, 8, 9], target=0.05, vertical_barrier=3)
    assert list(out.index) == [0, 2, 3, 5, 6, 8]
    assert list(out["t1"]) == [3, 5, 5, 8, 9, 11]
    assert list(out["label"]) == [1, 0, -1, 0, 0, 0]
    assert list(out["barrier"]) == [
        "profit_take",
        "vertical",
        "stop_loss",
        "vertical",
        "vertical",
        "vertical",
    ]
    np.testing.assert_allclose(
        out["ret"], [0.06, 100 / 104 - 1, 100 / 106 - 1, -0.02, 99 / 96 - 1, 101 / 98 - 1]
    )
    assert (out["side"] == 1).all()
    assert (out["target"] == 0.05).all()

    signed = triple_barrier(
        prices, [0, 2, 3, 5, 6, 8], target=0.05, vertical_barrier=3, vertical_label="sign"
    )
    assert list(signed["label"]) == [1, -1, -1, -1, 1, 1]


def test_triple_barrier_short_side_and_asymmetric_barriers():
    prices = hand_series()
    # Short from 106 at bar 3: the price falls to 100 (-5.7%), a +5.7% gain for the short.
    out = triple_barrier(prices, [3], target=0.05, vertical_barrier=3, side=-1)
    assert out["t1"].tolist() == [5]
    assert out["label"].tolist() == [1]
    assert out["barrier"].tolist() == ["profit_take"]
    assert out["ret"].iloc[0] == pytest.approx(-(100 / 106 - 1))
    # Long from 100 at bar 0 with profit-take at 2x5% = 10% and stop at 1x1% = 1%: the path
    # 102, 104, 106, 103, 100 never gains 10% nor loses 1% -> vertical at bar 5, return 0.
    out = triple_barrier(prices, [0], target=0.01, pt_sl=(10, 1), vertical_barrier=5)
    assert out["barrier"].tolist() == ["vertical"]
    assert out["ret"].iloc[0] == 0.0
    # A short from 96 (bar 6) with pt 1x3% / sl 1x3%: 97, 98, 99 (+3.1%) stops it out.
    out = triple_barrier(prices, [6], target=0.03, vertical_barrier=3, side=-1)
    assert out["barrier"].tolist() == ["stop_loss"]
    assert out["t1"].tolist() == [9]
    assert out["ret"].iloc[0] == pytest.approx(-(99 / 96 - 1))


def test_exact_touch_counts_and_horizontal_wins_at_the_vertical_bar():
    # 125 / 100 - 1 = 0.25 exactly in binary floating point: the barrier is touched
    # (the book's strict '>' would not count it).
    prices = pd.Series([100.0, 110.0, 125.0, 90.0], index=pd.RangeIndex(4))
    out = triple_barrier(prices, [0], target=0.25, vertical_barrier=2)
    assert out["t1"].tolist() == [2]
    assert out["barrier"].tolist() == ["profit_take"]
    assert out["label"].tolist() == [1]


def test_disabled_barriers_and_no_vertical_barrier():
    prices = hand_series()
    # pt = 0: only the stop-loss and the vertical barrier; e0 rises 6% -> vertical at 3.
    out = triple_barrier(prices, [0], target=0.05, pt_sl=(0, 1), vertical_barrier=3)
    assert out["barrier"].tolist() == ["vertical"]
    # No vertical barrier: e0 runs until 106 (+6%) -> profit-take; e9 never touches -> dropped.
    out = triple_barrier(prices, [0, 9], target=0.05)
    assert out.index.tolist() == [0]
    with pytest.raises(ValueError, match="no barrier"):
        triple_barrier(prices, [0], target=0.05, pt_sl=(0, 0))


def test_targets_missing_or_not_above_min_ret_drop_events():
    prices = hand_series()
    target = pd.Series(np.nan, index=prices.index)
    target.iloc[[2, 3]] = [0.001, 0.05]
    out = triple_barrier(prices, [0, 2, 3], target=target, vertical_barrier=3, min_ret=0.002)
    assert out.index.tolist() == [3]


def test_time_vertical_barrier_is_first_bar_at_or_after_t0_plus_delta():
    # Two sessions: 07:00-07:04 on day 1 and 07:00-07:04 on day 2 (overnight gap).
    day1 = minutes(5, "2024-01-02 07:00")
    day2 = minutes(5, "2024-01-03 07:00")
    index = day1.append(day2)
    prices = pd.Series([100.0, 100.5, 100.2, 100.1, 100.3, 100.4, 100.6, 100.2, 100.0, 99.9])
    prices.index = index
    out = triple_barrier(
        prices, index[[0, 3]], target=0.5, vertical_barrier=dt.timedelta(minutes=2)
    )
    # 07:00 + 2 min is a bar; 07:03 + 2 min = 07:05 is not: the next bar is day 2's first.
    assert out["t1"].tolist() == [index[2], index[5]]
    assert out["barrier"].tolist() == ["vertical", "vertical"]


@pytest.mark.parametrize(
    ("pt_sl", "vertical", "with_side"),
    [
        ((1.0, 1.0), 20, False),
        ((2.0, 0.5), 60, True),
        ((0.0, 1.0), 15, False),
        ((1.0, 0.0), 15, True),
        ((1.5, 1.5), dt.timedelta(minutes=45), True),
        ((1.0, 2.0), 700, False),
    ],
)
def test_triple_barrier_matches_reference_loop(pt_sl, vertical, with_side):
    prices = random_path(2500, seed=21)
    target = ewm_volatility(prices, span=50) * 4
    events = cusum_filter(prices, 0.003)
    rng = np.random.default_rng(4)
    side = pd.Series(rng.choice([-1, 1], len(events)), index=events) if with_side else None
    ours = triple_barrier(
        prices, events, target=target, pt_sl=pt_sl, vertical_barrier=vertical, side=side
    )
    ref = reference_triple_barrier(prices, events, target, pt_sl, vertical, side)
    assert len(ours) > 100
    assert ours.index.equals(ref.index)
    assert (ours["t1"].to_numpy() == ref["t1"].to_numpy()).all()
    assert ours["label"].tolist() == ref["label"].tolist()
    assert ours["barrier"].tolist() == ref["barrier"].tolist()
    np.testing.assert_array_equal(ours["ret"].to_numpy(), ref["ret"].to_numpy())


def test_triple_barrier_accepts_polars_bars_and_stamps_at_ts_end():
    prices = random_path(300, seed=8)
    bars = pl.from_pandas(
        pd.DataFrame(
            {
                "ts": prices.index - pd.Timedelta(minutes=1),
                "ts_end": prices.index,
                "symbol": "AKBNK",
                "close": prices.to_numpy(),
            }
        )
    )
    series = close_series(bars)
    assert series.index.equals(prices.index)
    events = prices.index[10::7]
    from_polars = triple_barrier(bars, events, target=0.002, vertical_barrier=10)
    from_pandas = triple_barrier(prices, events, target=0.002, vertical_barrier=10)
    pd.testing.assert_frame_equal(from_polars, from_pandas)
    two = pl.concat([bars, bars.with_columns(pl.lit("GARAN").alias("symbol"))])
    with pytest.raises(ValueError, match="2 symbols"):
        close_series(two)
    assert close_series(two, symbol="GARAN").index.equals(prices.index)


def test_triple_barrier_rejects_bad_input():
    prices = random_path(50, seed=1)
    with pytest.raises(ValueError, match="not close times"):
        triple_barrier(
            prices, [prices.index[3] + pd.Timedelta(seconds=1)], target=0.01, vertical_barrier=5
        )
    with pytest.raises(ValueError, match="duplicate"):
        triple_barrier(prices, prices.index[[3, 3]], target=0.01, vertical_barrier=5)
    with pytest.raises(ValueError, match="tz-aware"):
        naive = prices.tz_localize(None)
        triple_barrier(naive, naive.index[[3]], target=0.01, vertical_barrier=5)
    with pytest.raises(ValueError, match="side"):
        triple_barrier(prices, prices.index[[3]], target=0.01, vertical_barrier=5, side=2)
    with pytest.raises(ValueError, match="at least 1 bar"):
        triple_barrier(prices, prices.index[[3]], target=0.01, vertical_barrier=0)


# --------------------------------------------------------------------------- meta-labels


def test_meta_labels_are_one_only_when_profit_take_is_hit_first():
    prices = hand_series()
    # Long at e0 (profit-take), short at e3 (profit-take: 106 -> 100), long at e6 (vertical
    # with a gain), no trade at e8 (dropped). A long at e3 would have been stopped out.
    events = [0, 3, 6, 8]
    side = pd.Series([1, -1, 1, 0], index=events)
    out = meta_labels(prices, events, side, target=0.05, vertical_barrier=3)
    assert out.index.tolist() == [0, 3, 6]
    assert out["barrier"].tolist() == ["profit_take", "profit_take", "vertical"]
    assert out["label"].tolist() == [1, 1, 0]
    assert out["side"].tolist() == [1, -1, 1]
    # AFML snippet 3.7's rule (bin = ret > 0) counts the vertical exit with a gain.
    afml = meta_labels(
        prices, events, side, target=0.05, vertical_barrier=3, vertical_positive=True
    )
    assert afml["label"].tolist() == [1, 1, 1]
    long_only = meta_labels(prices, [3], 1, target=0.05, vertical_barrier=3)
    assert long_only["label"].tolist() == [0]


def test_meta_bet_size_follows_afml_10_1():
    def expected(p: float) -> float:
        # 2 Phi(z) - 1 = erf(z / sqrt(2)), z = (p - 1/2) / sqrt(p (1 - p))
        z = (p - 0.5) / math.sqrt(p * (1 - p))
        return math.erf(z / math.sqrt(2))

    assert meta_bet_size(0.6) == pytest.approx(expected(0.6), rel=1e-12)
    assert meta_bet_size(0.6) == pytest.approx(0.161743, abs=1e-6)
    assert meta_bet_size(0.5) == 0.0
    assert meta_bet_size(0.3) == 0.0  # predicted failure: no bet
    assert meta_bet_size(1.0) == 1.0
    sizes = meta_bet_size(np.array([0.9, 0.9, 0.2]), side=np.array([1, -1, -1]))
    np.testing.assert_allclose(sizes, [expected(0.9), -expected(0.9), 0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        meta_bet_size(1.2)


# --------------------------------------------------------------------------- weights: AFML 4.5.3

# AFML section 4.5.3 / snippet 4.7: three labels, t1 = {0: 2, 2: 3, 4: 5} over bars 0..5.
TOY_T1 = pd.Series([2, 3, 5], index=[0, 2, 4])
TOY_BARS = pd.RangeIndex(6)


def test_indicator_matrix_of_the_book_example():
    ind_m = indicator_matrix(TOY_BARS, TOY_T1)
    expected = np.array(
        [
            [1, 0, 0],
            [1, 0, 0],
            [1, 1, 0],
            [0, 1, 0],
            [0, 0, 1],
            [0, 0, 1],
        ]
    )
    np.testing.assert_array_equal(ind_m.to_numpy(), expected)
    start, end = label_spans(TOY_BARS, TOY_T1)
    assert start.tolist() == [0, 2, 4]
    assert end.tolist() == [2, 3, 5]


def test_concurrency_and_average_uniqueness_by_hand():
    # Bar 2 is shared by labels 0 and 1; every other bar has one label.
    assert concurrency(TOY_BARS, TOY_T1).tolist() == [1, 1, 2, 1, 1, 1]
    # u0 = (1 + 1 + 1/2) / 3 = 5/6, u1 = (1/2 + 1) / 2 = 3/4, u2 = 1.
    u = average_uniqueness(TOY_BARS, TOY_T1)
    np.testing.assert_allclose(u.to_numpy(), [5 / 6, 3 / 4, 1.0], rtol=1e-15)
    assert u.index.tolist() == [0, 2, 4]
    np.testing.assert_allclose(indicator_uniqueness(indicator_matrix(TOY_BARS, TOY_T1)), u)
    np.testing.assert_allclose(
        afml_avg_uniqueness(indicator_matrix(TOY_BARS, TOY_T1)).to_numpy(), u
    )


def test_concurrency_on_timestamps_by_hand():
    bars = minutes(8)
    t1 = pd.Series(bars[[3, 4, 4, 7]], index=bars[[0, 1, 4, 5]])
    # label 0: bars 0-3, label 1: 1-4, label 2: 4-4, label 3: 5-7
    assert concurrency(bars, t1).tolist() == [1, 2, 2, 2, 2, 1, 1, 1]
    u = average_uniqueness(bars, t1).to_numpy()
    np.testing.assert_allclose(u, [(1 + 0.5 * 3) / 4, (0.5 * 4) / 4, 0.5, 1.0])


def test_sequential_bootstrap_probabilities_of_the_book_example():
    # Book: after drawing label 2 (index 1 here), delta = (5/14, 3/14, 6/14); after drawing
    # label 3 as well, delta = (5/11, 3/11, 3/11).
    np.testing.assert_allclose(
        sequential_bootstrap_probabilities(TOY_BARS, TOY_T1, []), [1 / 3] * 3
    )
    np.testing.assert_allclose(
        sequential_bootstrap_probabilities(TOY_BARS, TOY_T1, [1]), [5 / 14, 3 / 14, 6 / 14]
    )
    np.testing.assert_allclose(
        sequential_bootstrap_probabilities(TOY_BARS, TOY_T1, [1, 2]), [5 / 11, 3 / 11, 3 / 11]
    )


def test_sequential_bootstrap_matches_afml_snippet_with_the_same_draws():
    ind_m = indicator_matrix(TOY_BARS, TOY_T1)
    for seed in range(5):
        ours = sequential_bootstrap(TOY_BARS, TOY_T1, n_draws=6, rng=seed)
        uniforms = np.random.default_rng(seed).random(6)
        assert ours.tolist() == afml_seq_bootstrap(ind_m, 6, uniforms)
    # Deterministic for a seed; a Generator is consumed one uniform per draw.
    a = sequential_bootstrap(TOY_BARS, TOY_T1, n_draws=20, rng=7)
    b = sequential_bootstrap(TOY_BARS, TOY_T1, n_draws=20, rng=np.random.default_rng(7))
    assert a.tolist() == b.tolist()


def test_sequential_bootstrap_incremental_weights_match_direct_computation():
    # The incremental update must track sequential_bootstrap_probabilities exactly enough that
    # replaying the same uniforms picks the same labels on a larger random problem.
    rng = np.random.default_rng(3)
    bars = pd.RangeIndex(400)
    t0 = np.sort(rng.choice(380, size=60, replace=False))
    t1 = pd.Series(np.minimum(t0 + rng.integers(0, 30, size=60), 399), index=t0)
    draws = sequential_bootstrap(bars, t1, n_draws=60, rng=11)
    uniforms = np.random.default_rng(11).random(60)
    replay: list[int] = []
    for u in uniforms:
        cum = np.cumsum(sequential_bootstrap_probabilities(bars, t1, replay))
        replay.append(min(int(np.searchsorted(cum, u * cum[-1], side="right")), 59))
    assert draws.tolist() == replay


def test_sequential_bootstrap_is_more_unique_than_standard_bootstrap():
    # AFML 4.5.4's Monte Carlo: the sequential bootstrap's samples have a higher average
    # uniqueness than the standard bootstrap's.
    rng = np.random.default_rng(0)
    bars = pd.RangeIndex(200)
    t0 = np.sort(rng.choice(190, size=30, replace=False))
    t1 = pd.Series(np.minimum(t0 + rng.integers(1, 25, size=30), 199), index=t0)
    ind_m = indicator_matrix(bars, t1).to_numpy()
    seq, std = [], []
    for seed in range(40):
        phi = sequential_bootstrap(bars, t1, rng=seed)
        seq.append(indicator_uniqueness(ind_m[:, phi]).mean())
        draw = np.random.default_rng(1000 + seed).integers(0, 30, size=30)
        std.append(indicator_uniqueness(ind_m[:, draw]).mean())
    assert np.mean(seq) > np.mean(std) + 0.03


def test_return_attribution_weights_by_hand():
    prices = pd.Series([100.0, 110.0, 99.0, 99.0, 108.9, 108.9], index=TOY_BARS)
    r = [0.0, math.log(1.1), math.log(0.9), 0.0, math.log(1.1), 0.0]
    c = [1, 1, 2, 1, 1, 1]
    raw = [
        abs(r[0] / c[0] + r[1] / c[1] + r[2] / c[2]),
        abs(r[2] / c[2] + r[3] / c[3]),
        abs(r[4] / c[4] + r[5] / c[5]),
    ]
    expected = np.array(raw) * 3 / sum(raw)
    w = return_attribution_weights(prices, TOY_T1)
    np.testing.assert_allclose(w.to_numpy(), expected, rtol=1e-12)
    assert w.sum() == pytest.approx(3.0)


def test_time_decay_by_hand():
    u = pd.Series([1.0, 1.0, 1.0, 1.0], index=[0, 1, 2, 3])
    np.testing.assert_allclose(time_decay(u, 1.0), [1, 1, 1, 1])
    np.testing.assert_allclose(time_decay(u, 0.5), [0.625, 0.75, 0.875, 1.0])
    np.testing.assert_allclose(time_decay(u, 0.0), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(time_decay(u, -0.5), [0.0, 0.0, 0.5, 1.0])
    # Unequal uniqueness: cumulative 0.5, 1.5, 2.0; c = 0 -> weights cum / 2.
    shuffled = pd.Series([1.0, 0.5, 0.5], index=[1, 0, 2])
    np.testing.assert_allclose(time_decay(shuffled, 0.0), [0.75, 0.25, 1.0])
    with pytest.raises(ValueError, match="c must"):
        time_decay(u, -1.0)


def test_weights_reject_bad_label_windows():
    with pytest.raises(ValueError, match="end before"):
        concurrency(TOY_BARS, pd.Series([2, 1], index=[0, 2]))
    with pytest.raises(ValueError, match="missing"):
        concurrency(minutes(5), pd.Series([pd.NaT], index=minutes(1)))
    with pytest.raises(ValueError, match="all be timestamps"):
        concurrency(minutes(5), pd.Series([3], index=[0]))
