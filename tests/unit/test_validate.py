"""Validation rules, the quarantine invariant, the quality report and the streaming path.

Every rule has a row that breaks it and, where the rule has an edge, a near miss that passes:
a price exactly on the band limit, prices either side of a tick-table boundary, the opening
auction against the uncross, a half day, a holiday.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant.data.quality_report import QualityReport, SymbolDayQuality
from quant.data.schema import KEYS, polars_schema
from quant.data.validate import (
    ParquetSink,
    RuleCode,
    ValidationConfig,
    median_of_five,
    validate,
    validate_parquet,
    validate_stream,
)

FRI = date(2024, 4, 5)
MON = date(2024, 4, 8)
HALF = date(2024, 4, 9)  # half day: continuous trading ends 12:30
HOLIDAY = date(2024, 4, 10)  # Ramazan Bayramı
AFTER_HOLIDAYS = date(2024, 4, 15)  # previous session: 2024-04-09


def ist(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    """Istanbul local time (UTC+3 all year since 2016) as a UTC datetime."""
    return datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=UTC) - timedelta(hours=3)


def trades(rows: list[dict]) -> pl.DataFrame:
    """Trades with defaults: symbol AKBNK, size 100, side 1, condition C, seq counting up."""
    seq = itertools.count(1)
    full = [
        {
            "symbol": "AKBNK",
            "size": 100,
            "side": 1,
            "condition": "C",
            **r,
            "seq": r.get("seq", next(seq)),
        }
        for r in rows
    ]
    return pl.DataFrame(full).select(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("symbol").cast(pl.String),
        pl.col("price").cast(pl.Float64),
        pl.col("size").cast(pl.Int64),
        pl.col("seq").cast(pl.Int64),
        pl.col("side").cast(pl.Int8),
        pl.col("condition").cast(pl.String),
    )


def day_of_trades(
    day: date, prices: list[float], symbol: str = "AKBNK", start: tuple[int, int] = (10, 0)
) -> list[dict]:
    """One trade per minute from ``start`` (continuous trading), seq from 1."""
    t0 = ist(day, *start)
    return [
        {"ts": t0 + timedelta(minutes=i), "symbol": symbol, "price": p, "seq": i + 1}
        for i, p in enumerate(prices)
    ]


def quotes(rows: list[dict]) -> pl.DataFrame:
    seq = itertools.count(1)
    full = [
        {"symbol": "AKBNK", "bid_size": 10, "ask_size": 10, **r, "seq": next(seq)} for r in rows
    ]
    return pl.DataFrame(full).select(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("symbol").cast(pl.String),
        pl.col("bid_price").cast(pl.Float64),
        pl.col("bid_size").cast(pl.Int64),
        pl.col("ask_price").cast(pl.Float64),
        pl.col("ask_size").cast(pl.Int64),
        pl.col("seq").cast(pl.Int64),
    )


def bars(rows: list[dict], minutes: int = 1) -> pl.DataFrame:
    """Bars with defaults (a flat 10.00 bar of ``minutes`` minutes)."""
    full = []
    for r in rows:
        b = {"symbol": "AKBNK", "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0}
        b.update(volume=1000, vwap=r.get("close", 10.0), trade_count=10)
        b.update(r)
        b.setdefault("ts_end", b["ts"] + timedelta(minutes=minutes))
        full.append(b)
    return pl.DataFrame(full).select(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("ts_end").cast(pl.Datetime("ns", "UTC")),
        pl.col("symbol").cast(pl.String),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")),
        pl.col("volume").cast(pl.Int64),
        pl.col("vwap").cast(pl.Float64),
        pl.col("trade_count").cast(pl.Int64),
    )


def rules_of(result) -> dict[int, str]:
    """input_row -> rule code of the quarantined rows."""
    q = result.quarantine
    return dict(zip(q["input_row"].to_list(), q["rule"].to_list(), strict=True))


def row_counts(frame: pl.DataFrame) -> Counter:
    """Whole rows as a multiset (NaN made comparable)."""
    return Counter(
        tuple("NaN" if isinstance(v, float) and v != v else v for v in row)
        for row in frame.iter_rows()
    )


def assert_conserved(frame: pl.DataFrame, result, kind: str) -> None:
    """Rows in = clean + quarantined, as multisets of whole rows: none lost, none in both."""
    schema_cols = polars_schema(kind).names()
    q = result.quarantine
    assert result.clean.height + q.height == frame.height
    assert q["input_row"].n_unique() == q.height
    assert q["rule"].null_count() == 0 and q["reason"].null_count() == 0
    original = row_counts(frame.select(schema_cols))
    clean = row_counts(result.clean.select(schema_cols))
    rejected = row_counts(frame[q["input_row"].to_list()].select(schema_cols))
    assert clean + rejected == original
    # The quarantine holds each rejected row as received, in input order.
    assert q["input_row"].is_sorted()
    assert row_counts(q.select(schema_cols)) == rejected


# -- row-level rules ------------------------------------------------------------------------------


def test_missing_column_is_a_whole_input_schema_error() -> None:
    frame = trades(day_of_trades(MON, [10.0])).drop("seq", "side")
    with pytest.raises(ValueError, match=r"SCHEMA.*seq, side"):
        validate(frame, "trades")


def test_unreadable_values_are_schema_rows_and_kept_as_received() -> None:
    base = trades(day_of_trades(MON, [10.0, 10.01, 10.02, 10.03]))
    frame = base.with_columns(
        pl.Series("price", ["10.0", "abc", "10.02", "10.03"]),
        pl.Series("size", [100.0, 100.0, 1.5, 2.0]),
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {1: "SCHEMA", 2: "SCHEMA"}
    q = result.quarantine
    assert q["price"].to_list() == ["abc", "10.02"]  # original strings, not casts
    assert "price value 'abc' cannot be read as Float64" in q["reason"][0]
    assert "size value '1.5'" in q["reason"][1]
    assert result.clean["size"].to_list() == [100, 2]  # 2.0 is a whole number of shares


def test_side_and_condition_outside_their_domain_are_schema() -> None:
    frame = trades(
        [
            {"ts": ist(MON, 10, 0), "price": 10.0, "side": 2},
            {"ts": ist(MON, 10, 1), "price": 10.0, "condition": "Z"},
            {"ts": ist(MON, 10, 2), "price": 10.0, "side": -1, "condition": "O"},
        ]
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {0: "SCHEMA", 1: "SCHEMA"}
    assert "side 2 is not one of" in result.quarantine["reason"][0]


def test_null_nan_and_infinite_values() -> None:
    frame = trades(day_of_trades(MON, [10.0, float("nan"), float("inf"), 10.0])).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("size")).alias("size")
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {1: "NULL", 2: "NULL", 3: "NULL"}
    assert result.quarantine["reason"].to_list() == ["price is NaN", "price is inf", "size is null"]


def test_rows_without_symbol_or_time_are_quarantined_not_dropped() -> None:
    frame = trades(day_of_trades(MON, [10.0, 10.0, 10.0])).with_columns(
        pl.Series("symbol", ["AKBNK", None, "AKBNK"]),
        pl.Series("ts", [ist(MON, 10, 0), ist(MON, 10, 1), None], dtype=pl.Datetime("ns", "UTC")),
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {1: "NULL", 2: "NULL"}
    assert_conserved(frame, result, "trades")
    by_symbol = {(d.symbol, d.day): d for d in result.report.symbol_days}
    assert by_symbol[("<null>", MON)].rejected == {"NULL": 1}
    assert by_symbol[("AKBNK", None)].rejected == {"NULL": 1}


def test_non_positive_price_or_size() -> None:
    frame = trades(
        [
            {"ts": ist(MON, 10, 0), "price": 0.0},
            {"ts": ist(MON, 10, 1), "price": 10.0, "size": -5},
            {"ts": ist(MON, 10, 2), "price": 0.01, "size": 1},  # smallest valid price and size
        ]
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {0: "NON_POSITIVE", 1: "NON_POSITIVE"}
    assert result.quarantine["reason"].to_list() == [
        "price 0.0 is not positive",
        "size -5 is not positive",
    ]


def test_off_tick_at_the_tier_boundary() -> None:
    # 19.99 is on the 0.01 grid; from 20.00 the tick is 0.02: 20.00 and 20.02 pass, 20.01 fails.
    frame = trades(day_of_trades(MON, [19.99, 20.00, 20.01, 20.02, 19.995]))
    result = validate(frame, "trades")
    assert rules_of(result) == {2: "OFF_TICK", 4: "OFF_TICK"}
    assert result.quarantine["reason"][0] == (
        "price 20.01 is not on the 0.02 TRY tick grid in force on 2024-04-08"
    )


def test_off_tick_uses_the_table_in_force_on_the_day() -> None:
    # 250.10 is on the 0.10 grid of the old table, not on the 0.25 grid since 2023-08-28.
    old = trades(day_of_trades(date(2023, 8, 25), [250.10]))
    new = trades(day_of_trades(date(2023, 8, 28), [250.10, 250.25]))
    assert validate(old, "trades").quarantine.height == 0
    assert rules_of(validate(new, "trades")) == {0: "OFF_TICK"}


def test_holiday_and_weekend_rows() -> None:
    frame = trades(
        [
            {"ts": ist(MON, 10, 0), "price": 10.0},
            {"ts": ist(HOLIDAY, 10, 0), "price": 10.0, "seq": 1},
            {"ts": ist(date(2024, 4, 6), 11, 0), "price": 10.0, "seq": 1},
        ]
    )
    result = validate(frame, "trades")
    assert rules_of(result) == {1: "HOLIDAY", 2: "HOLIDAY"}
    assert result.quarantine["reason"].to_list() == [
        "2024-04-10 (Wednesday) is not a XIST session",
        "2024-04-06 (Saturday) is not a XIST session",
    ]


def test_trades_only_in_trading_phases() -> None:
    times = [
        (9, 50, 0),  # opening auction, order collection: no trades
        (9, 55, 0),  # opening uncross
        (10, 0, 0),  # continuous
        (18, 0, 30),  # closing price publication
        (18, 3, 0),  # closing auction collection
        (18, 6, 0),  # closing uncross
        (18, 9, 59),  # trades at the close
        (18, 10, 0),  # closed (end is exclusive)
    ]
    frame = trades([{"ts": ist(MON, *t), "price": 10.0} for t in times])
    result = validate(frame, "trades")
    assert rules_of(result) == {
        0: "OUTSIDE_SESSION",
        3: "OUTSIDE_SESSION",
        4: "OUTSIDE_SESSION",
        7: "OUTSIDE_SESSION",
    }
    assert result.quarantine["reason"][0] == (
        "at 09:50:00.000 local time on 2024-04-08 is outside the trading windows "
        "09:55-18:00, 18:05-18:10"
    )


def test_half_day_ends_continuous_trading_at_1230() -> None:
    frame = trades(
        [
            {"ts": ist(HALF, 12, 20), "price": 10.0},
            {"ts": ist(HALF, 12, 39), "price": 10.0},  # trades at the close of a half day
            {"ts": ist(HALF, 13, 0), "price": 10.0},
        ]
    )
    assert rules_of(validate(frame, "trades")) == {2: "OUTSIDE_SESSION"}


def test_quotes_may_update_whenever_orders_are_accepted() -> None:
    rows = [
        {"ts": ist(MON, 9, 30), "bid_price": 9.99, "ask_price": 10.01},  # before the open
        {"ts": ist(MON, 9, 45), "bid_price": 9.99, "ask_price": 10.01},  # opening auction
        {"ts": ist(MON, 18, 0, 30), "bid_price": 9.99, "ask_price": 10.01},  # publication
        {"ts": ist(MON, 18, 3), "bid_price": 9.99, "ask_price": 10.01},  # closing auction
    ]
    result = validate(quotes(rows), "quotes")
    assert rules_of(result) == {0: "OUTSIDE_SESSION", 2: "OUTSIDE_SESSION"}
    windows = "order-entry windows 09:40-09:55, 10:00-18:00, 18:01-18:05, 18:08-18:10"
    assert windows in result.quarantine["reason"][0]


def test_crossed_and_locked_quotes() -> None:
    rows = [
        {"ts": ist(MON, 10, 0), "bid_price": 10.00, "ask_price": 10.00},  # locked
        {"ts": ist(MON, 10, 1), "bid_price": 10.02, "ask_price": 10.01},  # crossed
        {"ts": ist(MON, 10, 2), "bid_price": 10.00, "ask_price": 10.01},  # one tick wide
    ]
    result = validate(quotes(rows), "quotes")
    assert rules_of(result) == {0: "CROSSED", 1: "CROSSED"}
    assert result.quarantine["reason"][1] == "bid 10.02 is at or above ask 10.01"


def test_inconsistent_bars() -> None:
    t = ist(MON, 10, 0)
    m = timedelta(minutes=1)
    rows = [
        {"ts": t, "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.2, "vwap": 10.0},
        {"ts": t + m, "open": 9.8, "high": 10.1, "low": 9.9, "close": 10.0, "vwap": 10.0},
        {"ts": t + 2 * m, "open": 10.0, "high": 9.9, "low": 10.1, "close": 10.0, "vwap": 10.0},
        {"ts": t + 3 * m, "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "vwap": 10.2},
        {"ts": t + 4 * m, "ts_end": t + 4 * m},
        # Near miss: vwap exactly at the high is inside [low, high].
        {"ts": t + 5 * m, "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "vwap": 10.1},
    ]
    result = validate(bars(rows), "bars")
    assert rules_of(result) == {0: "OHLC", 1: "OHLC", 2: "OHLC", 3: "OHLC", 4: "OHLC"}
    assert result.quarantine["reason"].to_list() == [
        "high 10.1 is below max(open, close) 10.2",
        "low 9.9 is above min(open, close) 9.8",
        "low 10.1 is above high 9.9",
        "vwap 10.2 is outside [low 9.9, high 10.1]",
        "ts_end 2024-04-08 07:04:00 UTC is not after ts 2024-04-08 07:04:00 UTC",
    ]


def test_bars_must_overlap_a_trading_phase() -> None:
    rows = [
        {"ts": ist(MON, 9, 50)},  # 09:50-09:51: order collection only
        {"ts": ist(MON, 9, 55)},  # 09:55-09:56: the uncross
        {"ts": ist(MON, 17, 59)},
    ]
    assert rules_of(validate(bars(rows), "bars")) == {0: "OUTSIDE_SESSION"}
    five = bars([{"ts": ist(MON, 9, 50)}, {"ts": ist(MON, 9, 55)}], minutes=5)
    assert rules_of(validate(five, "bars")) == {0: "OUTSIDE_SESSION"}  # ends as the uncross starts


# -- sequence rules -------------------------------------------------------------------------------


def test_duplicates_keep_the_first_occurrence() -> None:
    rows = day_of_trades(MON, [10.0, 10.01, 10.02])
    rows.append(dict(rows[1]))  # same symbol, ts and seq as row 1
    rows.append({**rows[2], "seq": 4, "price": 10.03})  # same ts, new seq: a distinct trade
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {3: "DUPLICATE"}
    assert result.quarantine["reason"][0] == (
        "same key (symbol, ts, seq) = (AKBNK, 2024-04-08 07:01:00 UTC, 2) as an earlier row"
    )
    assert result.clean.height == 4


def test_first_valid_occurrence_is_kept_when_the_first_copy_is_bad() -> None:
    rows = day_of_trades(MON, [20.01])  # off tick
    rows.append({**rows[0], "price": 20.02})  # same key, valid price
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {0: "OFF_TICK"}
    assert result.clean["price"].to_list() == [20.02]


def test_out_of_order_time_and_sequence() -> None:
    rows = day_of_trades(MON, [10.0, 10.0, 10.0, 10.0, 10.0])
    rows[2]["ts"] = rows[0]["ts"] - timedelta(seconds=1)  # earlier than what came before
    rows[3]["seq"] = 2  # sequence number going backwards
    rows.append({**rows[4], "seq": 6, "price": 10.01})  # same ts, higher seq: fine
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {2: "OUT_OF_ORDER", 3: "OUT_OF_ORDER"}
    reasons = result.quarantine["reason"].to_list()
    assert reasons[0].startswith("ts 2024-04-08 06:59:59 UTC is earlier than 2024-04-08 07:01:00")
    assert reasons[1] == "seq 2 does not increase (highest so far 3)"


def test_a_rejected_row_does_not_move_the_ordering_reference() -> None:
    rows = day_of_trades(MON, [10.0] * 4)
    rows[1]["ts"] = rows[3]["ts"] + timedelta(minutes=5)  # a bad stamp far in the future...
    rows[1]["price"] = float("nan")  # ...on a row rejected earlier (NULL)
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {1: "NULL"}  # rows 2 and 3 are compared with row 0, not row 1


def test_bars_out_of_order_and_duplicate() -> None:
    t = ist(MON, 10, 0)
    m = timedelta(minutes=1)
    frame = bars([{"ts": t}, {"ts": t + 2 * m}, {"ts": t + m}, {"ts": t + 2 * m, "close": 10.0}])
    assert rules_of(validate(frame, "bars")) == {2: "OUT_OF_ORDER", 3: "DUPLICATE"}


# -- price band -----------------------------------------------------------------------------------


def test_band_exactly_on_the_limit_passes_one_tick_beyond_fails() -> None:
    rows = day_of_trades(FRI, [10.05, 10.00])  # previous close 10.00: band [9.00, 11.00]
    rows += day_of_trades(MON, [11.00, 11.01, 9.00, 8.99, 10.50])
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {3: "OUTSIDE_BAND", 5: "OUTSIDE_BAND"}
    assert result.quarantine["reason"][0] == (
        "price 11.01 is outside the daily band [9.0, 11.0] around base 10.0 (previous close)"
    )
    days = {d.day: d for d in result.report.symbol_days}
    assert days[FRI].unchecked["OUTSIDE_BAND"] == 2  # first day: no base, said so
    assert "OUTSIDE_BAND" not in days[MON].unchecked


def test_band_base_is_the_previous_session_across_holidays() -> None:
    rows = day_of_trades(HALF, [10.00])  # last session before the Bayram holidays
    rows += day_of_trades(AFTER_HOLIDAYS, [11.00, 11.02])
    assert rules_of(validate(trades(rows), "trades")) == {2: "OUTSIDE_BAND"}


def test_band_not_checked_after_a_missing_session_or_on_an_ex_date() -> None:
    rows = day_of_trades(FRI, [10.00]) + day_of_trades(HALF, [12.00])  # MON missing
    result = validate(trades(rows), "trades")
    assert result.quarantine.height == 0
    assert {d.day: d.unchecked.get("OUTSIDE_BAND") for d in result.report.symbol_days}[HALF] == 1
    split = pl.DataFrame({"symbol": ["AKBNK"], "ex_date": [MON], "kind": ["split"], "ratio": [2.0]})
    halved = trades(day_of_trades(FRI, [10.00]) + day_of_trades(MON, [5.00]))
    assert rules_of(validate(halved, "trades")) == {1: "OUTSIDE_BAND"}
    assert validate(halved, "trades", corporate_actions=split).quarantine.height == 0


def test_band_state_carries_across_stream_chunks() -> None:
    fri = trades(day_of_trades(FRI, [10.00]))
    mon = trades(day_of_trades(MON, [11.00, 11.01]))
    result = validate_stream([fri, mon], "trades")
    assert rules_of(result) == {2: "OUTSIDE_BAND"}


def test_a_close_outside_its_own_band_is_not_the_next_base() -> None:
    # A fat-finger last print on Monday is rejected; Tuesday's band must come from Monday's
    # last valid price (10.20: band [9.18, 11.22]), not from the bad print (101.00).
    rows = day_of_trades(FRI, [10.00])
    rows += day_of_trades(MON, [10.10, 10.20, 101.00])
    rows += day_of_trades(HALF, [10.25, 10.30, 11.25])
    result = validate(trades(rows), "trades")
    assert rules_of(result) == {3: "OUTSIDE_BAND", 6: "OUTSIDE_BAND"}
    assert result.quarantine["reason"][1] == (
        "price 11.25 is outside the daily band [9.18, 11.22] around base 10.2 (previous close)"
    )
    by_day = [trades(day_of_trades(d, p)) for d, p in ((FRI, [10.0]), (MON, [10.1, 10.2, 101.0]))]
    by_day.append(trades(day_of_trades(HALF, [10.25, 10.30, 11.25])))
    assert rules_of(validate_stream(by_day, "trades")) == {3: "OUTSIDE_BAND", 6: "OUTSIDE_BAND"}


def test_daily_bars_band_from_the_previous_close() -> None:
    rows = [
        {"ts": ist(FRI, 0, 0), "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0},
        {"ts": ist(MON, 0, 0), "open": 10.5, "high": 11.0, "low": 10.5, "close": 10.9},
        {"ts": ist(HALF, 0, 0), "open": 11.0, "high": 12.1, "low": 11.0, "close": 12.0},
    ]
    frame = bars(rows, minutes=24 * 60)
    result = validate(frame, "bars")
    # Base for 2024-04-09 is 10.90: band [9.81, 11.99]; the high of 12.10 is outside.
    assert rules_of(result) == {2: "OUTSIDE_BAND"}
    assert result.report.config["bar_interval_used"] == "1 day, 0:00:00"


# -- stale series and outliers --------------------------------------------------------------------


def test_stale_rows_beyond_the_allowed_run() -> None:
    cfg = ValidationConfig(stale_max_run=20, stale_max_duration=timedelta(minutes=30))
    frozen = [
        {"ts": ist(MON, 10, 0) + timedelta(minutes=2 * i), "price": 10.0, "seq": i + 1}
        for i in range(25)
    ]  # 25 identical prints over 48 minutes
    result = validate(trades(frozen), "trades", cfg)
    # Rows 21+ are beyond the run of 20; those more than 30 minutes after the first also.
    assert set(rules_of(result)) == {20, 21, 22, 23, 24}
    assert set(rules_of(result).values()) == {"STALE"}
    assert result.quarantine["reason"][0] == (
        "row 21 of a run of identical values lasting 40.0 min (allowed: 20 rows or 30.0 min)"
    )
    # Near misses: the same 25 prints within 10 minutes, or only 20 prints over two hours.
    quick = [{**r, "ts": ist(MON, 10, 0) + timedelta(seconds=20 * i)} for i, r in enumerate(frozen)]
    assert validate(trades(quick), "trades", cfg).quarantine.height == 0
    slow = [
        {**r, "ts": ist(MON, 10, 0) + timedelta(minutes=6 * i)} for i, r in enumerate(frozen[:20])
    ]
    assert validate(trades(slow), "trades", cfg).quarantine.height == 0


def test_outlier_flags_the_spike_not_its_honest_successor() -> None:
    prices = [round(10.0 + 0.01 * (i % 3), 2) for i in range(60)]
    prices[30] = 10.50  # a 5% print in the middle of a quiet day
    result = validate(trades(day_of_trades(MON, prices)), "trades")
    assert rules_of(result) == {30: "OUTLIER"}
    assert result.quarantine["reason"][0] == (
        "price 10.5: log return 0.04779 from the median of the previous prices 10.01 has robust z"
        " 23.9, beyond ±8.0; the next prices are as far the other way: robust z -23.9"
    )
    # The same day without the spike: a one-tick market has no outliers.
    prices[30] = 10.01
    assert validate(trades(day_of_trades(MON, prices)), "trades").quarantine.height == 0


def test_two_print_spike_is_caught_and_the_return_is_not() -> None:
    prices = [round(10.0 + 0.01 * (i % 2), 2) for i in range(60)]
    prices[30] = prices[31] = 10.60
    assert rules_of(validate(trades(day_of_trades(MON, prices)), "trades")) == {
        30: "OUTLIER",
        31: "OUTLIER",
    }


def test_a_genuine_jump_is_confirmed_by_later_prices_and_kept() -> None:
    quiet = [round(10.0 + 0.01 * (i % 2), 2) for i in range(30)]
    after = [round(10.6 + 0.01 * (i % 2), 2) for i in range(30)]
    assert validate(trades(day_of_trades(MON, quiet + after)), "trades").quarantine.height == 0
    # A crash in two legs: the first leg is far from both sides, but not a print that comes back.
    legs = quiet + [9.4] + [round(8.8 + 0.01 * (i % 2), 2) for i in range(29)]
    assert validate(trades(day_of_trades(MON, legs)), "trades").quarantine.height == 0
    # The same jump on the last print of the day has no later price to confirm it.
    result = validate(trades(day_of_trades(MON, [*quiet, 10.6])), "trades")
    assert rules_of(result) == {30: "OUTLIER"}
    assert result.quarantine["reason"][0].endswith("no later price")


def test_outliers_need_enough_returns_and_say_so() -> None:
    prices = [10.0, 10.01, 10.6, 10.0, 10.01]
    result = validate(trades(day_of_trades(MON, prices)), "trades")
    assert result.quarantine.height == 0
    assert result.report.symbol_days[0].unchecked["OUTLIER"] == 5


def test_median_of_five_is_the_median() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for perm in itertools.permutations(values):
        cols = [np.array([v]) for v in perm]
        assert median_of_five(*cols)[0] == 3.0
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 1000))
    np.testing.assert_array_equal(median_of_five(*data), np.median(data, axis=0))


# -- gaps -----------------------------------------------------------------------------------------


def test_missing_session_is_a_gap_with_score_zero() -> None:
    rows = day_of_trades(FRI, [10.0] * 4) + day_of_trades(HALF, [10.0] * 4)  # MON missing
    result = validate(trades(rows), "trades")
    assert result.quarantine.height == 0
    days = {d.day: d for d in result.report.symbol_days}
    assert days[MON].missing_session and days[MON].rows == 0 and days[MON].missing == 4
    assert days[MON].score == 0.0
    assert result.report.score == pytest.approx(100 * 8 / 12)
    assert result.report.rule_counts["GAP"] == 4
    assert not result.report.passed()
    # A stray row on a holiday does not make the sessions before it expected.
    stray = trades(day_of_trades(FRI, [10.0]) + day_of_trades(HOLIDAY, [10.0]))
    assert validate(stray, "trades").report.missing == 0


def test_missing_intraday_bars_lower_the_score() -> None:
    t0 = ist(MON, 10, 0)
    minutes = [i for i in range(480) if i not in range(100, 110)]  # 10 bars missing
    frame = bars([{"ts": t0 + timedelta(minutes=i)} for i in minutes])
    result = validate(frame, "bars", ValidationConfig().without("STALE"))
    day = result.report.symbol_days[0]
    assert (day.rows, day.clean, day.missing) == (470, 470, 10)
    assert day.score == pytest.approx(100 * 470 / 480)


# -- the invariant, the report, configuration -----------------------------------------------------


def messy_trades() -> pl.DataFrame:
    rows = day_of_trades(FRI, [10.0, 10.01, 10.0]) + day_of_trades(MON, [10.02] * 3)
    rows += day_of_trades(MON, [20.0], symbol="GARAN")
    rows += [
        {"ts": ist(MON, 10, 30), "price": 10.005, "seq": 10},  # OFF_TICK
        {"ts": ist(MON, 9, 45), "price": 10.0, "seq": 11},  # OUTSIDE_SESSION
        {"ts": ist(HOLIDAY, 11, 0), "price": 10.0, "seq": 1},  # HOLIDAY
        {"ts": ist(MON, 10, 40), "price": 12.0, "seq": 12},  # OUTSIDE_BAND
        {"ts": ist(MON, 10, 41), "price": float("nan"), "seq": 13},  # NULL
        {"ts": ist(MON, 10, 42), "price": 10.01, "seq": 13},  # fine
        {"ts": ist(MON, 10, 42), "price": 10.01, "seq": 13},  # DUPLICATE
        {"ts": ist(MON, 10, 1), "price": 10.01, "seq": 14},  # OUT_OF_ORDER
        {"ts": ist(MON, 10, 50), "price": -1.0, "seq": 15},  # NON_POSITIVE
    ]
    return trades(rows)


def test_every_row_is_clean_or_quarantined_never_both() -> None:
    frame = messy_trades()
    result = validate(frame, "trades")
    assert_conserved(frame, result, "trades")
    assert Counter(result.quarantine["rule"].to_list()) == {
        "OFF_TICK": 1,
        "OUTSIDE_SESSION": 1,
        "HOLIDAY": 1,
        "OUTSIDE_BAND": 1,
        "NULL": 1,
        "DUPLICATE": 1,
        "OUT_OF_ORDER": 1,
        "NON_POSITIVE": 1,
    }
    assert result.report.rows == frame.height
    assert result.report.clean == result.clean.height
    assert result.report.quarantined == result.quarantine.height


def test_empty_input_validates_to_an_empty_report_that_does_not_pass() -> None:
    result = validate(trades(day_of_trades(MON, [10.0])).clear(), "trades")
    assert result.clean.height == 0 and result.quarantine.height == 0
    assert result.report.rows == 0 and not result.report.passed()


def test_extra_input_columns_stay_with_quarantined_rows() -> None:
    frame = trades(day_of_trades(MON, [10.0, 20.01])).with_columns(
        pl.Series("venue", ["BIST", "BIST"])
    )
    result = validate(frame, "trades")
    assert result.quarantine.columns == [*frame.columns, "rule", "reason", "input_row"]
    assert result.quarantine["venue"].to_list() == ["BIST"]
    assert result.clean.columns == polars_schema("trades").names()


def test_clean_rows_follow_the_schema() -> None:
    result = validate(messy_trades(), "trades")
    assert result.clean.schema == polars_schema("trades")


def test_interleaved_input_gives_the_same_verdicts() -> None:
    frame = messy_trades()
    # Round-robin across symbols, each symbol's rows keeping their own order.
    rank = pl.int_range(pl.len()).over("symbol").alias("rank")
    interleaved = frame.with_columns(rank).sort("rank", "symbol", maintain_order=True).drop("rank")
    assert interleaved["symbol"].to_list() != frame["symbol"].to_list()
    a = validate(frame, "trades")
    b = validate(interleaved, "trades")
    key = ["symbol", "ts", "seq", "rule", "reason"]
    assert sorted(a.quarantine.select(key).rows(), key=str) == sorted(
        b.quarantine.select(key).rows(), key=str
    )
    assert a.report.symbol_days == b.report.symbol_days
    assert_conserved(interleaved, b, "trades")


def test_report_json_round_trip(tmp_path: Path) -> None:
    report = validate(messy_trades(), "trades", source_label="unit", synthetic=True).report
    again = QualityReport.from_json(report.to_json())
    assert again == report
    path = report.write_json(tmp_path / "q.json")
    data = json.loads(path.read_text())
    assert data["rows"] == report.rows and data["score"] == report.score
    assert data["symbol_days"][0]["score"] == report.symbol_days[0].score
    assert QualityReport.from_json(path.read_text()) == report


def test_html_report_names_symbols_scores_and_synthetic_source(tmp_path: Path) -> None:
    report = validate(messy_trades(), "trades", source_label="seed 7", synthetic=True).report
    page = report.write_html(tmp_path / "q.html").read_text()
    worst = report.worst(1)[0]
    assert "GARAN" in page and "AKBNK" in page
    assert f"{worst.score:.2f}" in page and f"{report.score:.2f}" in page
    assert "SYNTHETIC DATA" in page and "seed 7" in page
    assert "OUTSIDE_BAND" in page and "price 12.0 is outside the daily band" in page
    plain = validate(messy_trades(), "trades", source_label="vendor.csv").report
    assert "SYNTHETIC" not in plain.write_html(tmp_path / "p.html").read_text()


def test_passed_threshold_behaviour() -> None:
    def report(clean: int, rows: int = 100) -> QualityReport:
        day = SymbolDayQuality(symbol="X", day=MON, rows=rows, clean=clean)
        return QualityReport(kind="trades", symbol_days=[day])

    assert report(96).passed(95.0) and not report(96).passed(97.0)
    assert report(95).passed(95.0)  # at the threshold passes
    assert not report(94).passed()
    assert not QualityReport(kind="trades").passed()  # nothing validated proves nothing
    worst = validate(messy_trades(), "trades").report.worst(2)
    assert worst[0].score <= worst[1].score


def test_non_bist_data_with_market_rules_off() -> None:
    # US stock prints: on a cent grid (off BIST's 0.10 grid above 100) at 15:30 in New York,
    # 22:30 in Istanbul.
    t0 = datetime(2024, 4, 8, 19, 30, tzinfo=UTC)
    rows = [
        {"ts": t0 + timedelta(minutes=i), "symbol": "AAPL", "price": 168.37 + i / 100}
        for i in range(5)
    ]
    frame = trades(rows)
    bist = validate(frame, "trades")
    assert set(bist.quarantine["rule"].to_list()) == {"OFF_TICK", "OUTSIDE_SESSION"}
    us = validate(frame, "trades", ValidationConfig.non_bist())
    assert us.quarantine.height == 0 and us.clean.height == 5
    assert not {"OFF_TICK", "OUTSIDE_BAND", "OUTSIDE_SESSION"} & set(us.report.rules)
    # The NYSE calendar still finds holidays: Good Friday 2024.
    friday = trades(
        [{"ts": datetime(2024, 3, 29, 15, 0, tzinfo=UTC), "symbol": "AAPL", "price": 170.0}]
    )
    assert rules_of(validate(friday, "trades", ValidationConfig.non_bist())) == {0: "HOLIDAY"}


def test_rules_can_be_switched_off_but_not_schema_or_null() -> None:
    cfg = ValidationConfig().without(RuleCode.OFF_TICK, "SCHEMA", "NULL")
    frame = trades(day_of_trades(MON, [20.01, float("nan")]))
    assert rules_of(validate(frame, "trades", cfg)) == {1: "NULL"}


def test_corporate_actions() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["AKBNK", "AKBNK", "GARAN", "THYAO", "THYAO"],
            "ex_date": [MON, MON, HOLIDAY, MON, FRI],
            "kind": ["split", "split", "dividend", "bonus", "merger"],
            "ratio": [2.0, 2.0, None, None, 1.0],
            "price": [None, None, None, None, None],
            "amount": [None, None, 1.5, None, None],
        },
        schema_overrides={"price": pl.Float64},
    )
    result = validate(frame, "corporate_actions")
    assert rules_of(result) == {1: "DUPLICATE", 2: "HOLIDAY", 3: "NULL", 4: "SCHEMA"}
    assert_conserved(frame, result, "corporate_actions")


# -- streaming ------------------------------------------------------------------------------------


def many_days() -> pl.DataFrame:
    """Three symbols over five sessions (one missing for one symbol), with a few bad rows."""
    rng = np.random.default_rng(11)
    sessions = [date(2024, 4, d) for d in (1, 2, 3, 4, 5)]
    rows = []
    for symbol, level in (("AKBNK", 30.0), ("GARAN", 80.0), ("THYAO", 300.0)):
        tick = {30.0: 0.02, 80.0: 0.05, 300.0: 0.25}[level]
        for day in sessions:
            if symbol == "GARAN" and day == sessions[2]:
                continue
            steps = rng.integers(-1, 2, size=60).cumsum()
            prices = [round(level + tick * s, 2) for s in steps]
            rows += day_of_trades(day, prices, symbol=symbol)
    rows[10]["price"] += 0.001  # off tick
    rows[70]["seq"] = 1  # out of order
    rows[400]["price"] *= 1.3  # outlier and outside the band
    rows.append(dict(rows[500]))  # duplicate
    return trades(rows)


@pytest.mark.parametrize("order", ["symbol", "time"])
def test_validate_parquet_matches_in_memory(tmp_path: Path, order: str) -> None:
    frame = many_days()
    if order == "time":
        frame = frame.sort("ts", maintain_order=True)
    path = tmp_path / "trades.parquet"
    frame.write_parquet(path, row_group_size=97)
    memory = validate(frame, "trades")
    streamed = validate_parquet(path, "trades", batch_rows=150)
    assert streamed.quarantine.height > 0
    assert streamed.quarantine.equals(memory.quarantine)
    assert sorted(streamed.clean.rows()) == sorted(memory.clean.rows())
    assert streamed.report.symbol_days == memory.report.symbol_days
    assert any(d.missing_session for d in streamed.report.symbol_days)


def test_validate_parquet_with_a_sink_holds_nothing(tmp_path: Path) -> None:
    frame = many_days()
    path = tmp_path / "trades.parquet"
    frame.write_parquet(path, row_group_size=200)
    sink = ParquetSink(tmp_path / "out")
    result = validate_parquet(path, "trades", sink=sink, batch_rows=300, source_label="file")
    assert result.streamed and result.clean.height == 0 and result.quarantine.height == 0
    clean = pl.read_parquet(tmp_path / "out" / "clean")
    quarantine = pl.read_parquet(tmp_path / "out" / "quarantine")
    assert clean.height + quarantine.height == frame.height
    assert clean.height == result.report.clean and quarantine.height == result.report.quarantined
    assert result.report.source_label == "file"


def test_validate_stream_of_partitions_matches_in_memory() -> None:
    frame = many_days()
    partitions = frame.with_columns(pl.col("ts").dt.date().alias("d")).partition_by(
        "symbol", "d", maintain_order=True
    )
    streamed = validate_stream((p.drop("d") for p in partitions), "trades")
    memory = validate(frame, "trades")
    assert streamed.report.symbol_days == memory.report.symbol_days
    assert sorted(streamed.quarantine.drop("input_row").rows(), key=str) == sorted(
        memory.quarantine.drop("input_row").rows(), key=str
    )


def test_keys_used_for_duplicates_are_the_schema_keys() -> None:
    assert KEYS["trades"] == ("symbol", "ts", "seq")
    assert RuleCode.DUPLICATE.description.startswith("same key")
    assert not RuleCode.GAP.quarantines
