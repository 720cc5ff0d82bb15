"""The Parquet lake: layout, idempotent merge, atomic writes, pruned reads, quarantine."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from quant.data.lake import KEY_CONFLICT, Lake
from quant.data.schema import polars_schema

ISTANBUL = ZoneInfo("Europe/Istanbul")


def trades(symbol: str, day: date, n: int, *, first_seq: int = 0, price: float = 10.0):
    """``n`` trades of ``symbol`` one second apart from 07:00 UTC (10:00 Istanbul) on ``day``."""
    start = datetime(day.year, day.month, day.day, 7, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": [start + timedelta(seconds=first_seq + i) for i in range(n)],
            "symbol": symbol,
            "price": [price + 0.01 * (first_seq + i) for i in range(n)],
            "size": [100 + first_seq + i for i in range(n)],
            "seq": list(range(first_seq, first_seq + n)),
            "side": 1,
            "condition": "C",
        }
    ).cast(dict(polars_schema("trades")))


def daily_bars(symbol: str, days: list[date], closes: list[float], tz=ISTANBUL) -> pl.DataFrame:
    """Daily bars from local midnight to the next local midnight, as the importer makes them."""
    opens = [datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC) for d in days]
    ends = [
        datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC) + timedelta(days=1)
        for d in days
    ]
    return pl.DataFrame(
        {
            "ts": opens,
            "ts_end": ends,
            "symbol": symbol,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1000] * len(days),
            "vwap": closes,
            "trade_count": [10] * len(days),
        }
    ).cast(dict(polars_schema("bars")))


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content: a snapshot to prove nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def dirs_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


D1, D2, D3 = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


def test_layout_is_kind_symbol_utc_date(tmp_path):
    lake = Lake(tmp_path)
    result = lake.write("trades", pl.concat([trades("AKBNK", D1, 3), trades("THYAO", D2, 2)]))
    assert result.rows_in == 5 and result.rows_written == 5 and result.rows_duplicate == 0
    expected = {
        tmp_path / "trades/symbol=AKBNK/date=2024-03-04/data.parquet",
        tmp_path / "trades/symbol=THYAO/date=2024-03-05/data.parquet",
    }
    assert set(result.partitions) == expected
    assert all(path.is_file() for path in expected)


def test_istanbul_session_lands_on_its_own_utc_date(tmp_path):
    """09:40 and 18:10 Istanbul are 06:40 and 15:10 UTC: one session, one partition."""
    lake = Lake(tmp_path)
    times = [
        datetime(2024, 3, 4, 9, 40, tzinfo=ISTANBUL),
        datetime(2024, 3, 4, 18, 10, tzinfo=ISTANBUL),
    ]
    frame = trades("GARAN", D1, 2).with_columns(pl.Series("ts", times).dt.convert_time_zone("UTC"))
    lake.write("trades", frame)
    assert [p.day for p in lake.partitions("trades")] == [D1]


def test_read_round_trip_in_schema_order_and_time_order(tmp_path):
    lake = Lake(tmp_path)
    frame = trades("AKBNK", D1, 50)
    lake.write("trades", frame.reverse())  # stored sorted by (ts, seq) whatever the input order
    back = lake.read("trades", "AKBNK")
    assert back.schema == polars_schema("trades")
    assert back.equals(frame)


def test_identical_rewrite_adds_nothing_and_touches_no_file(tmp_path):
    lake = Lake(tmp_path)
    frame = pl.concat([trades("AKBNK", D1, 20), trades("AKBNK", D2, 20)])
    lake.write("trades", frame)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("data.parquet")}
    again = lake.write("trades", frame)
    assert (again.rows_in, again.rows_written, again.rows_duplicate) == (40, 0, 40)
    assert again.partitions == ()
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("data.parquet")} == before
    assert lake.read("trades").height == 40


def test_duplicates_inside_one_write_are_counted_once(tmp_path):
    lake = Lake(tmp_path)
    frame = trades("AKBNK", D1, 10)
    result = lake.write("trades", pl.concat([frame, frame.head(4)]))
    assert (result.rows_in, result.rows_written, result.rows_duplicate) == (14, 10, 4)


def test_within_one_write_the_first_row_of_a_key_wins(tmp_path):
    lake = Lake(tmp_path)
    first = trades("AKBNK", D1, 1)
    other = first.with_columns(price=pl.lit(99.0))
    result = lake.write("trades", pl.concat([first, other, first, other]))
    assert (result.rows_written, result.rows_duplicate, result.rows_conflicting) == (1, 1, 2)
    assert lake.read("trades").equals(first)
    assert lake.read_quarantine("trades").get_column("price").to_list() == ["99.0"]


def test_new_rows_merge_into_the_stored_partition(tmp_path):
    lake = Lake(tmp_path)
    lake.write("trades", trades("AKBNK", D1, 10))
    result = lake.write("trades", trades("AKBNK", D1, 10, first_seq=5))  # 5 old + 5 new
    assert (result.rows_written, result.rows_duplicate) == (5, 5)
    back = lake.read("trades", "AKBNK")
    assert back.get_column("seq").to_list() == list(range(15))
    assert back.get_column("ts").is_sorted()


def test_same_key_other_values_is_quarantined_not_overwritten(tmp_path):
    lake = Lake(tmp_path)
    original = trades("AKBNK", D1, 5)
    lake.write("trades", original)
    changed = original.head(2).with_columns(price=pl.col("price") + 1.0)
    result = lake.write("trades", changed, source="vendor-fix.csv")
    assert (result.rows_written, result.rows_conflicting, result.rows_quarantined) == (0, 2, 2)
    assert lake.read("trades").equals(original)
    quarantined = lake.read_quarantine("trades")
    assert quarantined.get_column("rule").to_list() == [KEY_CONFLICT] * 2
    assert set(quarantined.get_column("source")) == {"vendor-fix.csv"}
    assert quarantined.get_column("price").to_list() == ["11.0", "11.01"]


def test_failed_write_leaves_the_lake_as_it_was(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write("trades", trades("AKBNK", D1, 5))
    snapshot, folders = files_under(tmp_path), dirs_under(tmp_path)
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def failing(self, file, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    frame = pl.concat([trades("AKBNK", D1, 8), trades("AKBNK", D2, 3), trades("GARAN", D3, 3)])
    with pytest.raises(OSError, match="disk full"):
        lake.write("trades", frame)
    assert calls["n"] == 3
    assert files_under(tmp_path) == snapshot  # no partition changed, no temp file left
    assert dirs_under(tmp_path) == folders  # and no empty directory either


def test_failure_while_renaming_removes_the_staged_files(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    real = os.replace
    calls = {"n": 0}

    def failing(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("rename failed")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="rename failed"):
        lake.write("trades", pl.concat([trades("AKBNK", D1, 3), trades("AKBNK", D2, 3)]))
    monkeypatch.setattr(os, "replace", real)
    assert not list(tmp_path.rglob("*.tmp"))
    # the one partition renamed is whole; re-running the same write completes the job
    assert lake.read("trades").height == 3
    lake.write("trades", pl.concat([trades("AKBNK", D1, 3), trades("AKBNK", D2, 3)]))
    assert lake.read("trades").height == 6


def test_write_refuses_rows_it_cannot_store(tmp_path):
    lake = Lake(tmp_path)
    with pytest.raises(ValueError, match=r"missing column.*seq"):
        lake.write("trades", trades("AKBNK", D1, 2).drop("seq"))
    with pytest.raises(ValueError, match="null price"):
        lake.write("trades", trades("AKBNK", D1, 2).with_columns(price=pl.lit(None, pl.Float64)))
    with pytest.raises(ValueError, match="cannot name a lake partition"):
        lake.write("trades", trades("../etc", D1, 2))
    with pytest.raises(ValueError, match="unknown data kind 'ticks'"):
        lake.write("ticks", trades("AKBNK", D1, 2))
    assert files_under(tmp_path) == {}


def test_scan_filters_half_open_range_with_dates_and_datetimes(tmp_path):
    lake = Lake(tmp_path)
    lake.write("trades", pl.concat([trades("AKBNK", d, 10) for d in (D1, D2, D3)]))
    assert lake.read("trades", "AKBNK", D2, D3).height == 10
    assert lake.read("trades", "AKBNK", start=D2).height == 20
    naive = lake.read(
        "trades", "AKBNK", datetime(2024, 3, 5, 7, 0, 2), datetime(2024, 3, 5, 7, 0, 5)
    )
    assert naive.get_column("seq").to_list() == [2, 3, 4]  # naive = UTC, end excluded
    local = lake.read(
        "trades",
        "AKBNK",
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=ISTANBUL),
        datetime(2024, 3, 5, 10, 0, 5, tzinfo=ISTANBUL),
    )
    assert local.equals(naive)
    assert lake.scan("trades", ["AKBNK"], D1, D2).collect_schema() == polars_schema("trades")


def test_scan_never_opens_partitions_outside_the_request(tmp_path):
    lake = Lake(tmp_path)
    lake.write(
        "trades", pl.concat([trades("AKBNK", d, 5) for d in (D1, D2)] + [trades("GARAN", D1, 5)])
    )
    (tmp_path / "trades/symbol=AKBNK/date=2024-03-05/data.parquet").write_bytes(b"not parquet")
    (tmp_path / "trades/symbol=GARAN/date=2024-03-04/data.parquet").write_bytes(b"not parquet")
    assert lake.read("trades", "AKBNK", D1, D2).height == 5  # the broken files are not read
    with pytest.raises(Exception):  # noqa: B017 - any read error proves the file was opened
        lake.read("trades", "AKBNK", D1, D3)


def test_readers_ignore_temporary_files(tmp_path):
    lake = Lake(tmp_path)
    lake.write("trades", trades("AKBNK", D1, 5))
    folder = tmp_path / "trades/symbol=AKBNK/date=2024-03-04"
    (folder / ".data.parquet.deadbeef.tmp").write_bytes(b"half written")
    assert lake.read("trades").height == 5
    assert len(lake.partitions("trades")) == 1


def test_clear_errors_for_unknown_kind_symbols_and_empty_ranges(tmp_path):
    lake = Lake(tmp_path)
    with pytest.raises(ValueError, match="holds no trades data"):
        lake.scan("trades")
    lake.write("trades", trades("AKBNK", D1, 5))
    with pytest.raises(ValueError, match=r"unknown data kind 'candles'.*trades, quotes, bars"):
        lake.scan("candles")
    with pytest.raises(
        ValueError, match=r"unknown symbol\(s\) for trades: XYZ, ABC; the lake has AKBNK"
    ):
        lake.scan("trades", ["XYZ", "AKBNK", "ABC"])
    with pytest.raises(ValueError, match="no trades data for AKBNK in \\[2025-01-01"):
        lake.scan("trades", "AKBNK", date(2025, 1, 1), date(2025, 2, 1))
    with pytest.raises(ValueError, match="no trades rows for AKBNK in \\[2024-03-04T01:00"):
        lake.read("trades", "AKBNK", datetime(2024, 3, 4, 1), datetime(2024, 3, 4, 2))
    with pytest.raises(ValueError, match="empty time range"):
        lake.scan("trades", "AKBNK", D2, D1)


def test_inventory_symbols_partitions_summary(tmp_path):
    lake = Lake(tmp_path)
    lake.write(
        "trades",
        pl.concat([trades("AKBNK", D1, 5), trades("AKBNK", D3, 7), trades("GARAN", D2, 4)]),
    )
    assert lake.symbols("trades") == ["AKBNK", "GARAN"]
    assert lake.symbols("quotes") == []
    parts = lake.partitions("trades")
    assert [(p.symbol, p.day, p.rows) for p in parts] == [
        ("AKBNK", D1, 5),
        ("AKBNK", D3, 7),
        ("GARAN", D2, 4),
    ]
    assert all(p.bytes == p.path.stat().st_size > 0 for p in parts)
    summary = lake.summary()
    assert summary.filter(pl.col("symbol") == "AKBNK").select(
        "kind", "days", "first_day", "last_day", "rows"
    ).row(0) == ("trades", 2, D1, D3, 12)


def test_quarantine_is_stored_as_text_idempotently(tmp_path):
    lake = Lake(tmp_path)
    bad = pl.DataFrame(
        {
            "row": [3, 9],
            "rule": ["NULL", "NON_POSITIVE"],
            "reason": ["price: empty", "size: -5"],
            "price": [None, 10.5],
            "size": ["100", "-5"],
        }
    )
    assert lake.write_quarantine("trades", bad, source="day1.csv") == 2
    lake.write_quarantine("trades", bad, source="day1.csv")
    stored = lake.read_quarantine("trades")
    assert stored.height == 2
    assert stored.schema["price"] == pl.String and stored.schema["row"] == pl.Int64
    assert stored.get_column("size").to_list() == ["100", "-5"]
    assert (tmp_path / "quarantine/trades/source=day1.csv/data.parquet").is_file()
    with pytest.raises(ValueError, match=r"need column.*reason"):
        lake.write_quarantine("trades", bad.drop("reason"), source="x")
    assert lake.read_quarantine("quotes").height == 0
    typed = pl.DataFrame({"input_row": [4], "rule": ["NULL"], "reason": ["x"], "price": [1.5]})
    lake.write_quarantine("quotes", typed, source="validate")
    assert lake.read_quarantine("quotes").select("input_row", "price").row(0) == (4, "1.5")


def test_daily_bars_are_filed_by_year_and_dated_by_their_trading_day(tmp_path):
    """A BIST daily bar opens at Istanbul midnight, 21:00 UTC the day before: it still belongs to
    its own trading day, and a year of them is one file, not 250."""
    lake = Lake(tmp_path)
    days = [date(2023, 12, 29), date(2024, 1, 2), date(2024, 1, 3)]
    bars = daily_bars("AKBNK", days, [40.0, 41.0, 42.0])
    assert bars.get_column("ts").dt.date().to_list()[1] == date(2024, 1, 1)
    lake.write("bars", bars)
    parts = lake.partitions("bars")
    assert [(p.year, p.rows) for p in parts] == [(2023, 1), (2024, 2)]
    assert parts[1].path == tmp_path / "bars/symbol=AKBNK/year=2024/data.parquet"
    summary = lake.summary().row(0, named=True)
    assert (summary["days"], summary["first_day"], summary["last_day"]) == (3, days[0], days[-1])
    # the range [2024-01-02, 2024-01-03) UTC holds the bar of 2 January (opened 1 Jan 21:00 UTC)
    ranged = lake.read("bars", "AKBNK", datetime(2024, 1, 1, 21, tzinfo=UTC), date(2024, 1, 2))
    assert ranged.get_column("close").to_list() == [41.0]


def test_a_symbol_keeps_one_bar_length(tmp_path):
    lake = Lake(tmp_path)
    lake.write("bars", daily_bars("AKBNK", [D1], [40.0]))
    minute = daily_bars("AKBNK", [D2], [41.0]).with_columns(
        ts=pl.col("ts") + timedelta(hours=10), ts_end=pl.col("ts") + timedelta(hours=10, minutes=1)
    )
    with pytest.raises(ValueError, match="mix daily and intraday"):
        lake.write("bars", minute)
    lake.write("bars", minute.with_columns(symbol=pl.lit("GARAN")))  # another symbol is fine
    assert lake.symbols("bars") == ["AKBNK", "GARAN"]


def test_read_bars_back_adjusts_on_read_and_keeps_storage_raw(tmp_path):
    lake = Lake(tmp_path)
    days = [date(2024, 5, d) for d in (2, 3, 6, 7)]
    raw = daily_bars("AKBNK", days, [40.0, 42.0, 21.5, 22.0])
    lake.write("bars", raw)
    actions = pl.DataFrame(
        {
            "symbol": ["AKBNK"],
            "ex_date": [date(2024, 5, 6)],
            "kind": ["split"],
            "ratio": [2.0],
            "price": [None],
            "amount": [None],
        }
    )
    lake.write("corporate_actions", actions)
    adjusted = lake.read_bars("AKBNK")
    assert adjusted.get_column("close").to_list() == [20.0, 21.0, 21.5, 22.0]
    assert adjusted.get_column("volume").to_list() == [2000, 2000, 1000, 1000]
    assert lake.read_bars("AKBNK", adjusted=False).equals(raw)
    assert lake.read("bars").equals(raw)
    # a range after the ex-date is unaffected; one before it is adjusted
    may_2 = lake.read_bars("AKBNK", datetime(2024, 5, 1, 12), datetime(2024, 5, 2, 12))
    assert may_2.get_column("close").to_list() == [20.0]


def test_read_bars_prices_a_dividend_with_a_close_outside_the_range(tmp_path):
    lake = Lake(tmp_path)
    days = [date(2024, 5, d) for d in (2, 3, 6)]
    lake.write("bars", daily_bars("AKBNK", days, [40.0, 50.0, 49.0]))
    lake.write(
        "corporate_actions",
        pl.DataFrame(
            {
                "symbol": ["AKBNK"],
                "ex_date": [date(2024, 5, 6)],
                "kind": ["dividend"],
                "ratio": [None],
                "price": [None],
                "amount": [1.0],
            }
        ),
    )
    # only 2 May is read, but the factor uses the close of 3 May: (50 - 1) / 50
    one = lake.read_bars("AKBNK", date(2024, 5, 1), datetime(2024, 5, 2, 12, tzinfo=UTC))
    assert one.get_column("close").to_list() == pytest.approx([40.0 * 49.0 / 50.0])


def test_corporate_actions_are_validated_and_idempotent(tmp_path):
    lake = Lake(tmp_path)
    actions = pl.DataFrame(
        {
            "symbol": ["AKBNK", "AKBNK"],
            "ex_date": [date(2024, 5, 6), date(2024, 6, 3)],
            "kind": ["split", "dividend"],
            "ratio": [2.0, None],
            "price": [None, None],
            "amount": [None, 1.5],
        }
    )
    assert lake.write("corporate_actions", actions).rows_written == 2
    assert lake.write("corporate_actions", actions).rows_written == 0
    assert (tmp_path / "corporate_actions/symbol=AKBNK/data.parquet").is_file()
    assert lake.read("corporate_actions", "AKBNK", date(2024, 6, 1)).height == 1
    with pytest.raises(ValueError, match="ratio must be a number > 0"):
        lake.write("corporate_actions", actions.with_columns(ratio=pl.lit(-2.0)))
