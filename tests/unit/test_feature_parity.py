"""Batch == stream: every feature computed vectorised over history (polars) and replayed event
by event through the live path (``StreamingFeatures``) agrees, on the real E-mini tick file of
mlfinpy (as trades and as 1-minute bars) and on synthetic BIST bars, trades and quotes; fed
as columnar micro-batches (``update_batch``) the stream gives exactly the same values.

Agreement means: the same rows are null, and every other value matches to 1e-9 relative to
the larger of the two values and the feature's typical magnitude (its median absolute value),
so that a value crossing zero (a MACD histogram) is compared at its own scale. In practice the
differences are a few ulps (EWMA recursions are evaluated in the same form; windows differ only
in summation order).
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant.data.bars import time_bars
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.features import (
    RSI,
    FeaturePipeline,
    LogReturn,
    MarketBeta,
    TradeSignImbalance,
    VolumeZScore,
    VwapDistance,
    bar_features,
    quote_features,
    trade_features,
)

RTOL = 1e-9
INSTALL_HINT = "install the test data: `pip install --no-deps mlfinpy` (the Makefile does it)"


def mlfinpy_ticks() -> Path:
    """mlfinpy's real E-mini S&P 500 tick file, found without importing mlfinpy."""
    try:
        files = importlib.metadata.files("mlfinpy") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"mlfinpy is not installed: {INSTALL_HINT}")
    found = [f for f in files if f.name == "tick_data.csv"]
    if not found:
        pytest.fail(f"mlfinpy has no tick_data.csv: {INSTALL_HINT}")
    return Path(found[0].locate())


@cache
def es_trades() -> pl.DataFrame:
    """The 500,000 E-mini ticks in the TRADES layout (Chicago time stamps to UTC; the feed has
    no aggressor side, so side is 0)."""
    raw = pl.read_csv(mlfinpy_ticks())
    return raw.select(
        pl.col("DateTime")
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="ns")
        .dt.replace_time_zone("America/Chicago")
        .dt.convert_time_zone("UTC")
        .alias("ts"),
        pl.lit("ES").alias("symbol"),
        pl.col("Price").cast(pl.Float64).alias("price"),
        pl.col("Volume").cast(pl.Int64).alias("size"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("seq"),
        pl.lit(0, dtype=pl.Int8).alias("side"),
        pl.lit("C").alias("condition"),
    )


@cache
def synthetic() -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketConfig(n_symbols=6, n_sessions=3, seed=17))


def assert_parity(
    pipeline: FeaturePipeline, frame: pl.DataFrame, batch_rows: int = 97
) -> pl.DataFrame:
    """batch == replay event by event, and the micro-batched replay (``update_batch``) is
    the event-by-event one exactly (same kernels, same inputs, same order)."""
    batch = pipeline.batch(frame)
    replay = pipeline.replay(frame)
    assert pipeline.replay(frame, batch_rows=batch_rows).equals(replay)
    assert batch.columns == replay.columns
    keys = [c for c in ("symbol", "ts", "seq") if c in batch.columns]
    assert batch.select(keys).equals(replay.select(keys))
    for name in pipeline.names:
        a, b = batch[name], replay[name]
        assert a.dtype == b.dtype == pl.Float64, name
        assert (a.is_null() == b.is_null()).all(), f"{name}: null rows differ"
        assert not a.is_nan().any() and not b.is_nan().any(), f"{name}: NaN instead of null"
        x = a.drop_nulls().to_numpy()
        y = b.drop_nulls().to_numpy()
        if x.size == 0:
            continue
        scale = max(float(np.median(np.abs(x))), 1e-300)
        bound = RTOL * np.maximum(np.maximum(np.abs(x), np.abs(y)), scale)
        worst = np.max(np.abs(x - y) - bound)
        assert worst <= 0, f"{name}: differs beyond {RTOL} relative (by {worst:.3g})"
    return batch


def valid_count(frame: pl.DataFrame, names) -> dict[str, int]:
    return {n: frame[n].len() - frame[n].null_count() for n in names}


# ------------------------------------------------------------------------------ real data


def test_parity_on_real_e_mini_ticks():
    ticks = es_trades().slice(45_000, 25_000)
    features = [
        *trade_features(),
        TradeSignImbalance(200, sign="tick_rule", weighted=False),
        LogReturn(500, "price"),
    ]
    pipeline = FeaturePipeline(features, source="trades")
    out = assert_parity(pipeline, ticks)
    counts = valid_count(out, pipeline.names)
    assert counts["trade_imbalance_50_tick"] > 24_000
    assert counts["rsi_14_price"] > 24_000
    # Monday 2 September 2013 around 15:10 UTC, the BIST close: ticks on both sides of it
    assert 0 < counts["minutes_since_open"] < ticks.height


def test_parity_on_real_e_mini_one_minute_bars():
    bars = time_bars(es_trades(), "1m")
    assert bars.height > 2000
    pipeline = FeaturePipeline(bar_features())
    out = assert_parity(pipeline, bars)
    counts = valid_count(out, pipeline.names)
    for name, valid in counts.items():
        assert valid > 0, name
    assert counts["ffd_0.4_0.0001"] == bars.height - 281


# ------------------------------------------------------------------------------ synthetic


def test_parity_on_synthetic_bars_of_many_symbols():
    bars = synthetic().minute_bars()
    assert bars["symbol"].n_unique() == 6
    pipeline = FeaturePipeline(
        [*bar_features(), MarketBeta(20), RSI(5), VolumeZScore(5), LogReturn(2, "vwap")]
    )
    out = assert_parity(pipeline, bars)
    assert out["beta_20"].drop_nulls().len() > 0.9 * bars.height


def test_parity_on_synthetic_trades_and_quotes():
    market = synthetic()
    day = market.day(market.sessions()[1])
    trades = assert_parity(FeaturePipeline(trade_features(), source="trades"), day.trades)
    assert trades["trade_imbalance_50"].drop_nulls().len() > 0.9 * day.trades.height
    quotes = assert_parity(FeaturePipeline(quote_features(), source="quotes"), day.quotes)
    assert quotes["ofi_100"].drop_nulls().len() > 0.9 * day.quotes.height
    vwap = FeaturePipeline(
        [VwapDistance(price="price", value_price="price", volume="size")], "trades"
    )
    assert_parity(vwap, day.trades)


def test_parity_of_each_single_feature_stream():
    """``feature.stream().update(**row)`` (one feature, one symbol) is the same definition."""
    bars = synthetic().minute_bars().filter(pl.col("symbol") == "SYN01").head(400)
    rows = bars.rows(named=True)
    for feature in bar_features():
        if feature.cross_sectional:
            continue
        batch = feature.batch(bars).to_list()
        stream = feature.stream()
        streamed = [stream.update(**row) for row in rows]
        for a, b in zip(batch, streamed, strict=True):
            assert (a is None) == (b is None), feature.name
            if a is not None:
                assert a == pytest.approx(b, rel=RTOL, abs=1e-12), feature.name


def test_parity_with_a_given_market_return():
    bars = synthetic().minute_bars()
    index = (
        bars.group_by("ts_end")
        .agg(pl.col("close").log().mean().alias("level"))
        .sort("ts_end")
        .with_columns(market_return=pl.col("level").diff())
    )
    with_market = bars.join(index.select("ts_end", "market_return"), on="ts_end")
    pipeline = FeaturePipeline([f for f in bar_features() if f.cross_sectional], market="given")
    assert_parity(pipeline, with_market)


def test_micro_batches_refuse_what_would_break_the_cross_section():
    bars = synthetic().minute_bars().sort("ts_end", "symbol")
    stream = FeaturePipeline([MarketBeta(5)]).stream()
    with pytest.raises(ValueError, match="time order"):
        stream.update_batch(bars.head(20).reverse())
    doubled = pl.concat([bars.head(1), bars.head(1)])
    with pytest.raises(ValueError, match="repeats"):
        stream.update_batch(doubled)
    with pytest.raises(ValueError, match="lack column"):
        stream.update_batch(bars.head(3).drop("close"))
    assert stream.update_batch(bars.head(0)).shape == (0, 1)
