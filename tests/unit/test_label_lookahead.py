"""Look-ahead tests for labels: a label depends only on the closes from its t0 to its t1.

For every label, the prices strictly after its t1 are replaced by a different future and the
whole pipeline (volatility target, CUSUM events, triple barrier) is run again: the label must
not move. Likewise prices strictly before t0 (with the target, an input known at t0, held
fixed). A control proves the test can fail: changing prices inside (t0, t1] does move labels.
Data: synthetic BIST minute bars (tick-grid closes, with flat stretches and exact touches).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.labels import (
    close_series,
    cusum_filter,
    daily_volatility,
    ewm_volatility,
    meta_labels,
    triple_barrier,
)

COLUMNS = ["t1", "ret", "label", "barrier", "target", "side"]


@pytest.fixture(scope="module")
def closes() -> pd.Series:
    bars = SyntheticMarket(SyntheticMarketConfig(n_symbols=1, n_sessions=4, seed=7)).minute_bars()
    return close_series(bars)


def pipeline(prices: pd.Series, config: dict, target: pd.Series | None = None) -> pd.DataFrame:
    """Volatility target -> CUSUM events -> labels, as a research run would do it."""
    vol = ewm_volatility(prices, span=60)
    if target is None:
        target = vol * 3
    events = cusum_filter(prices, 0.006)
    if config.get("meta"):
        side = pd.Series(np.where(np.arange(len(events)) % 3 == 0, -1, 1), index=events)
        return meta_labels(prices, events, side, target=target, vertical_barrier=config["vertical"])
    return triple_barrier(
        prices,
        events,
        target=target,
        pt_sl=config["pt_sl"],
        vertical_barrier=config["vertical"],
        side=config.get("side"),
    )


CONFIGS = {
    "bars": {"pt_sl": (1.0, 1.0), "vertical": 30},
    "duration": {"pt_sl": (2.0, 1.0), "vertical": dt.timedelta(hours=1)},
    "short": {"pt_sl": (1.0, 1.5), "vertical": 45, "side": -1},
    "meta": {"meta": True, "vertical": 30},
}


def other_future(prices: pd.Series, after: int, seed: int) -> pd.Series:
    """``prices`` with every close at positions > ``after`` replaced (positive, different)."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    n_new = len(prices) - after - 1
    out.iloc[after + 1 :] = prices.iloc[after + 1 :].to_numpy() * np.exp(
        rng.normal(0.0, 0.03, n_new)
    )
    return out


def other_past(prices: pd.Series, before: int, seed: int) -> pd.Series:
    """``prices`` with every close at positions < ``before`` replaced."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    out.iloc[:before] = prices.iloc[:before].to_numpy() * np.exp(rng.normal(0.0, 0.03, before))
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_prices_after_t1_never_move_a_label(closes, name):
    config = CONFIGS[name]
    labels = pipeline(closes, config)
    assert len(labels) >= 100
    assert set(labels["barrier"]) == {"profit_take", "stop_loss", "vertical"}
    position = closes.index.get_indexer(labels["t1"])
    for k, cut in enumerate(np.unique(position)):
        changed = pipeline(other_future(closes, cut, seed=k), config)
        known = labels[position <= cut]
        assert len(known) >= 1
        pd.testing.assert_frame_equal(changed.loc[known.index, COLUMNS], known[COLUMNS])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_prices_before_t0_never_move_a_label(closes, name):
    config = CONFIGS[name]
    # The barrier target at t0 is an input known at t0 (a volatility estimate of the past);
    # hold it fixed so that only the label's own dependence on past prices is tested.
    target = ewm_volatility(closes, span=60) * 3
    labels = pipeline(closes, config, target=target)
    events = labels.index
    start = closes.index.get_indexer(events)
    for k, cut in enumerate(np.unique(start)):
        past_changed = other_past(closes, cut, seed=100 + k)
        if config.get("meta"):
            side = labels["side"]
            changed = meta_labels(
                past_changed, events, side, target=target, vertical_barrier=config["vertical"]
            )
        else:
            changed = triple_barrier(
                past_changed,
                events,
                target=target,
                pt_sl=config["pt_sl"],
                vertical_barrier=config["vertical"],
                side=config.get("side"),
            )
        later = labels[start >= cut]
        pd.testing.assert_frame_equal(changed.loc[later.index, COLUMNS], later[COLUMNS])


def test_prices_inside_the_window_do_move_labels(closes):
    # Control: the tests above would catch a label that ignored its own window.
    config = CONFIGS["bars"]
    target = ewm_volatility(closes, span=60) * 3
    labels = pipeline(closes, config, target=target)
    touched = labels[labels["barrier"] != "vertical"]
    moved = 0
    for t0, row in touched.iloc[:20].iterrows():
        flat = closes.copy()
        flat.loc[(flat.index > t0) & (flat.index <= row["t1"])] = closes.loc[t0]
        again = triple_barrier(
            flat, [t0], target=target, pt_sl=config["pt_sl"], vertical_barrier=config["vertical"]
        )
        same = (
            not again.empty
            and again["t1"].iloc[0] == row["t1"]
            and again["barrier"].iloc[0] == row["barrier"]
        )
        moved += int(not same)
    assert len(touched) >= 20
    assert moved == 20


@pytest.mark.parametrize("estimator", ["ewm", "daily", "cusum"])
def test_volatility_and_events_use_only_the_past(closes, estimator):
    def compute(prices: pd.Series):
        if estimator == "ewm":
            return ewm_volatility(prices, span=60)
        if estimator == "daily":
            return daily_volatility(prices, span=20)
        return pd.Series(1, index=cusum_filter(prices, 0.006))

    full = compute(closes)
    for k, cut in enumerate(range(50, len(closes) - 1, 97)):
        changed = compute(other_future(closes, cut, seed=200 + k))
        limit = closes.index[cut]
        pd.testing.assert_series_equal(changed.loc[:limit], full.loc[:limit])
