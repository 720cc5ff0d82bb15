"""No look-ahead, for every feature: change the future (every row stamped after t: prices
scaled, sizes redrawn, rows shuffled, in every symbol) and no value stamped at or before t may
move, in the vectorised mode (the one that sees the whole history at once) and in the replayed
stream. The checker itself is shown to catch a feature that peeks one row ahead."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
import pytest

from quant.data.bars import time_bars
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.features import (
    Feature,
    FeaturePipeline,
    OrderFlowImbalance,
    TradeSignImbalance,
    bar_features,
    quote_features,
    trade_features,
)
from quant.features.base import lag


@cache
def market() -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketConfig(n_symbols=4, n_sessions=2, seed=23))


@cache
def frames() -> dict[str, pl.DataFrame]:
    m = market()
    day = m.day(m.sessions()[1])
    bars = m.minute_bars()
    return {
        "bars": bars,
        "trades": day.trades.filter(pl.col("symbol") != "SYN04").head(6000),
        "quotes": day.quotes.head(6000),
    }


PRICE_COLUMNS = {
    "bars": ("open", "high", "low", "close", "vwap"),
    "trades": ("price",),
    "quotes": ("bid_price", "ask_price"),
}
SIZE_COLUMNS = {"bars": ("volume",), "trades": ("size",), "quotes": ("bid_size", "ask_size")}


def change_the_future(frame: pl.DataFrame, source: str, cut, seed: int) -> pl.DataFrame:
    """Every row stamped after ``cut``: values shuffled among those rows (within each symbol),
    prices scaled by a random factor per row (a bar's OHLC together), sizes redrawn."""
    stamp = "ts_end" if source == "bars" else "ts"
    rng = np.random.default_rng(seed)
    future = pl.col(stamp) > cut
    values = [*PRICE_COLUMNS[source], *SIZE_COLUMNS[source]]
    if source == "trades":
        values.append("side")
    parts = []
    for symbol_frame in frame.partition_by("symbol", maintain_order=True):
        past = symbol_frame.filter(~future)
        later = symbol_frame.filter(future)
        if later.height:
            order = rng.permutation(later.height)
            shuffled = later.select(values)[order]
            factor = rng.uniform(0.7, 1.4, later.height)
            later = later.with_columns(
                *(pl.Series(c, shuffled[c].to_numpy() * factor) for c in PRICE_COLUMNS[source]),
                *(
                    pl.Series(c, rng.integers(1, 10_000, later.height), dtype=pl.Int64)
                    for c in SIZE_COLUMNS[source]
                ),
            )
            if source == "trades":
                later = later.with_columns(
                    side=pl.Series(rng.choice([-1, 0, 1], later.height), dtype=pl.Int8)
                )
        parts.append(pl.concat([past, later]))
    return pl.concat(parts)


def moved_before(pipeline: FeaturePipeline, frame: pl.DataFrame, cuts, replay=False) -> list[str]:
    """Names of features whose values at or before some cut change with the future."""
    run = pipeline.replay if replay else pipeline.batch
    source = str(pipeline.source)
    base = run(frame)
    moved = []
    for i, cut in enumerate(cuts):
        changed = run(change_the_future(frame, source, cut, seed=i))
        past = base["ts"] <= cut
        assert past.any() and (~past).any()
        for name in pipeline.names:
            if not base.filter(past)[name].equals(changed.filter(past)[name]):
                moved.append(f"{name} at cut {cut}")
    return moved


def cut_points(frame: pl.DataFrame, source: str) -> list:
    stamps = frame[("ts_end" if source == "bars" else "ts")].sort()
    return [stamps[int(q * (stamps.len() - 1))] for q in (0.3, 0.55, 0.8)]


def all_features() -> list[tuple[str, Feature]]:
    extra_quotes = [OrderFlowImbalance(7)]
    extra_trades = [TradeSignImbalance(20, sign="tick_rule", weighted=False)]
    return (
        [("bars", f) for f in bar_features()]
        + [("quotes", f) for f in [*quote_features(), *extra_quotes]]
        + [("trades", f) for f in [*trade_features(), *extra_trades]]
    )


@pytest.mark.parametrize(("source", "feature"), all_features(), ids=lambda x: getattr(x, "name", x))
def test_changing_the_future_moves_nothing_before_it(source, feature):
    frame = frames()[source]
    pipeline = FeaturePipeline([feature], source=source)
    cuts = cut_points(frame, source)
    assert moved_before(pipeline, frame, cuts) == []
    # the change did reach the future (except for features of the clock alone)
    if not set(feature.inputs) <= {"time_of_day", "minutes_since_open", "phase", "session"}:
        base = pipeline.batch(frame)
        changed = pipeline.batch(change_the_future(frame, source, cuts[0], seed=0))
        later = base["ts"] > cuts[0]
        assert not base.filter(later)[feature.name].equals(changed.filter(later)[feature.name])


@pytest.mark.parametrize("source", ["bars", "quotes", "trades"])
def test_the_replayed_stream_is_point_in_time_too(source):
    frame = frames()[source]
    features = {"bars": bar_features, "quotes": quote_features, "trades": trade_features}[source]()
    pipeline = FeaturePipeline(features, source=source)
    assert moved_before(pipeline, frame, cut_points(frame, source)[:1], replay=True) == []


def test_real_e_mini_bars_have_no_look_ahead():
    """On the real E-mini ticks turned into 1-minute bars (one symbol)."""
    from test_feature_parity import es_trades

    bars = time_bars(es_trades().slice(0, 120_000), "1m")
    pipeline = FeaturePipeline(bar_features())
    assert moved_before(pipeline, bars, cut_points(bars, "bars")) == []


@dataclass(frozen=True)
class PeeksAhead(Feature):
    """A broken feature: next row's close, i.e. tomorrow's news today."""

    @property
    def name(self) -> str:
        return "peeks_ahead"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("close",)

    def expr(self) -> pl.Expr:
        return pl.col("close").shift(-1)

    def kernel(self, slots):
        raise NotImplementedError


@dataclass(frozen=True)
class MixesSymbols(Feature):
    """A broken feature: a plain shift, which reads the previous symbol's last row."""

    @property
    def name(self) -> str:
        return "mixes_symbols"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("close",)

    def expr(self) -> pl.Expr:
        return pl.col("close").shift(1)

    def kernel(self, slots):
        raise NotImplementedError


def test_the_checker_catches_a_feature_that_peeks_ahead():
    frame = frames()["bars"]
    pipeline = FeaturePipeline([PeeksAhead()])
    moved = moved_before(pipeline, frame, cut_points(frame, "bars"))
    assert len(moved) == 3 and all(m.startswith("peeks_ahead") for m in moved)


def test_lag_keeps_shifts_inside_the_symbol():
    """Rows are sorted symbol by symbol: a bare shift leaks the previous symbol's (later)
    prices into the next symbol's first row; ``lag`` does not."""
    frame = frames()["bars"]
    out = FeaturePipeline([MixesSymbols()]).batch(frame)
    first_rows = out.group_by("symbol", maintain_order=True).first()
    assert first_rows["mixes_symbols"].null_count() == 1  # only the very first symbol
    lagged = frame.sort("symbol", "ts_end").with_columns(
        _position=pl.int_range(pl.len()).over("symbol")
    )
    values = (
        lagged.select(lag(pl.col("close")).alias("v"), "symbol")
        .group_by("symbol", maintain_order=True)
        .first()
    )
    assert values["v"].null_count() == values.height
