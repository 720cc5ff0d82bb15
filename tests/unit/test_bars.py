"""Bar builders: time bars against hand computations and polars' group_by_dynamic,
volume and dollar bars against worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant.data.bars import dollar_bars, parse_every, time_bars, volume_bars
from quant.data.schema import polars_schema

T0 = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)  # 10:00 Istanbul


def trades(rows: list[tuple[float, str, float, int]]) -> pl.DataFrame:
    """(seconds after T0, symbol, price, size) -> trades in the lake layout."""
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(seconds=s) for s, _, _, _ in rows],
            "symbol": [sym for _, sym, _, _ in rows],
            "price": [p for _, _, p, _ in rows],
            "size": [q for _, _, _, q in rows],
            "seq": list(range(len(rows))),
            "side": 0,
            "condition": "C",
        }
    ).cast(dict(polars_schema("trades")))


def random_trades(n: int, symbols: int, days: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(symbols):
        offsets = np.sort(rng.integers(0, days * 86_400 * 10**9, n))
        frames.append(
            pl.DataFrame(
                {
                    "ts": pl.Series(offsets + 1_709_510_400 * 10**9).cast(pl.Datetime("ns", "UTC")),
                    "symbol": f"S{s}",
                    "price": np.round(20 + rng.random(n) * 5, 2),
                    "size": rng.integers(1, 500, n),
                    "seq": np.arange(n),
                    "side": np.zeros(n, dtype=np.int8),
                    "condition": "C",
                }
            )
        )
    return pl.concat(frames)


def test_one_minute_bars_by_hand():
    frame = trades(
        [
            (0.5, "AKBNK", 10.00, 100),
            (20.0, "AKBNK", 10.20, 300),
            (59.9, "AKBNK", 9.90, 100),
            (61.0, "AKBNK", 10.10, 50),  # next minute
            (185.0, "AKBNK", 10.30, 10),  # minutes 2 has no trade: no bar
            (30.0, "GARAN", 50.00, 7),
        ]
    )
    out = time_bars(frame, "1m")
    assert out.schema == polars_schema("bars")
    akbnk = out.filter(pl.col("symbol") == "AKBNK")
    assert akbnk.get_column("ts").to_list() == [
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=3),
    ]
    assert akbnk.get_column("ts_end").to_list() == [T0 + timedelta(minutes=m) for m in (1, 2, 4)]
    first = akbnk.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (10.0, 10.2, 9.9, 9.9)
    assert (first["volume"], first["trade_count"]) == (500, 3)
    assert first["vwap"] == pytest.approx((10.0 * 100 + 10.2 * 300 + 9.9 * 100) / 500)
    garan = out.filter(pl.col("symbol") == "GARAN").row(0, named=True)
    assert (garan["open"], garan["close"], garan["volume"], garan["trade_count"]) == (
        50.0,
        50.0,
        7,
        1,
    )


@pytest.mark.parametrize("every", ["1s", "30s", "1m", "5m", "1h", "1d"])
def test_time_bars_equal_polars_group_by_dynamic(every):
    frame = random_trades(3_000, symbols=3, days=2)
    reference = (
        frame.group_by_dynamic("ts", every=every, group_by="symbol")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            vwap=(pl.col("price") * pl.col("size")).sum() / pl.col("size").sum(),
            trade_count=pl.len().cast(pl.Int64),
        )
        .sort("symbol", "ts")
    )
    out = time_bars(frame, every)
    assert out.height == reference.height
    exact = ["ts", "symbol", "open", "high", "low", "close", "volume", "trade_count"]
    assert out.select(exact).equals(reference.select(exact))
    assert out.get_column("vwap").to_numpy() == pytest.approx(
        reference.get_column("vwap").to_numpy(), rel=1e-12
    )
    assert (out.get_column("ts_end") - out.get_column("ts")).unique().to_list() == [
        parse_every(every)
    ]


def test_daily_bars_are_utc_dates_which_hold_a_whole_bist_session():
    frame = trades(
        [(-20 * 60, "AKBNK", 10.0, 1), (8 * 3600 + 9 * 60, "AKBNK", 11.0, 1)]
    )  # 09:40, 18:09
    out = time_bars(frame, timedelta(days=1))
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["ts"] == datetime(2024, 3, 4, tzinfo=UTC)
    assert row["ts_end"] == datetime(2024, 3, 5, tzinfo=UTC)
    assert (row["open"], row["close"], row["trade_count"]) == (10.0, 11.0, 2)


def test_lazy_in_lazy_out():
    frame = random_trades(500, symbols=2, days=1)
    lazy = time_bars(frame.lazy(), "5m")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(time_bars(frame, "5m"))


@pytest.mark.parametrize(
    "every", ["1mo", "0s", "7m", "2d", "500ms", "abc", timedelta(milliseconds=10)]
)
def test_bar_intervals_outside_one_second_to_one_day_are_refused(every):
    with pytest.raises(ValueError, match="bar interval"):
        parse_every(every)


def test_parse_every_accepts_compound_durations():
    assert parse_every("1m30s") == timedelta(seconds=90)
    assert parse_every(timedelta(hours=4)) == timedelta(hours=4)


def test_volume_bars_close_on_the_trade_that_reaches_the_threshold():
    frame = trades([(i, "AKBNK", 10.0 + i, q) for i, q in enumerate([3, 4, 5, 2, 6])])
    out = volume_bars(frame, 7)
    assert out.get_column("volume").to_list() == [7, 7]  # [3, 4], [5, 2]; [6] is unfinished
    assert out.get_column("open").to_list() == [10.0, 12.0]
    assert out.get_column("close").to_list() == [11.0, 13.0]
    assert out.get_column("ts").to_list() == [T0, T0 + timedelta(seconds=2)]
    # ts_end = last trade + 1 ns: [0 s, 1 s] and [2 s, 3 s]
    lengths = (out.get_column("ts_end") - out.get_column("ts")).dt.total_nanoseconds()
    assert lengths.to_list() == [1_000_000_001, 1_000_000_001]
    with_partial = volume_bars(frame, 7, include_partial=True)
    assert with_partial.get_column("volume").to_list() == [7, 7, 6]


def test_a_large_trade_overshoots_and_the_next_bar_starts_fresh():
    frame = trades([(i, "AKBNK", 10.0, q) for i, q in enumerate([10, 1, 1, 5, 7])])
    out = volume_bars(frame, 7)
    assert out.get_column("volume").to_list() == [10, 7, 7]
    assert out.get_column("trade_count").to_list() == [1, 3, 1]


def test_volume_bars_are_per_symbol():
    frame = trades([(0, "A", 10.0, 4), (1, "B", 20.0, 4), (2, "A", 11.0, 4), (3, "B", 21.0, 4)])
    out = volume_bars(frame, 8)
    assert out.select("symbol", "open", "close", "volume").rows() == [
        ("A", 10.0, 11.0, 8),
        ("B", 20.0, 21.0, 8),
    ]


def test_dollar_bars_use_traded_value():
    frame = trades([(0, "A", 10.0, 50), (1, "A", 20.0, 30), (2, "A", 5.0, 100), (3, "A", 10.0, 1)])
    out = dollar_bars(frame, 1_000.0)  # 500 + 600 = 1,100 -> bar; 500 + 10 unfinished
    assert out.select("open", "close", "volume", "trade_count").rows() == [(10.0, 20.0, 80, 2)]
    assert out.row(0, named=True)["vwap"] == pytest.approx(1_100 / 80)
    assert out.schema == polars_schema("bars")


def test_threshold_bars_refuse_bad_thresholds_and_unvalidated_trades():
    frame = trades([(0, "A", 10.0, 5)])
    with pytest.raises(ValueError, match="must be > 0"):
        volume_bars(frame, 0)
    with pytest.raises(ValueError, match="positive prices and sizes"):
        dollar_bars(frame.with_columns(size=pl.lit(-1, pl.Int64)), 100.0)


def test_no_trades_no_bars():
    empty = pl.DataFrame(schema=polars_schema("trades"))
    assert time_bars(empty, "1m").height == 0
    assert volume_bars(empty, 10).schema == polars_schema("bars")
