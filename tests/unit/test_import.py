"""File import: real data (mlfinpy E-mini ticks, skfolio S&P 500 closes), column mapping, time
zones, structural quarantine, idempotency, and bad files that must leave the lake untouched."""

from __future__ import annotations

import csv
import gzip
import importlib.metadata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from quant.data.bars import time_bars
from quant.data.importer import import_file
from quant.data.lake import Lake

INSTALL_HINT = (
    "install the test data: `pip install -e '.[testdata]'` and `pip install --no-deps mlfinpy` "
    "(the Makefile does both)"
)


def mlfinpy_ticks() -> Path:
    """mlfinpy's real E-mini S&P 500 tick file, found without importing mlfinpy (its pins clash
    with numpy 2 / pandas 3)."""
    try:
        files = importlib.metadata.files("mlfinpy") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"mlfinpy is not installed: {INSTALL_HINT}")
    found = [f for f in files if f.name == "tick_data.csv"]
    if not found:
        pytest.fail(f"mlfinpy has no tick_data.csv: {INSTALL_HINT}")
    return Path(found[0].locate())


def sp500_closes():
    try:
        from skfolio.datasets import load_sp500_dataset
    except ImportError:
        pytest.fail(f"skfolio is not installed: {INSTALL_HINT}")
    return load_sp500_dataset()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def accounted(result) -> bool:
    return result.rows_read == (
        result.rows_written
        + result.rows_duplicate
        + result.rows_conflicting
        + result.rows_quarantined
    )


# ------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def es_lake(tmp_path_factory):
    """The E-mini ticks imported once. CME Globex prints these in Central Time (the file opens
    on Sunday 17:00, the Globex open in Chicago), so tz is America/Chicago."""
    lake = Lake(tmp_path_factory.mktemp("es") / "lake")
    result = import_file(mlfinpy_ticks(), "trades", lake, symbol="ES", tz="America/Chicago")
    return lake, result


def test_mlfinpy_ticks_import_with_every_row_accounted_for(es_lake):
    lake, result = es_lake
    with mlfinpy_ticks().open() as handle:
        data_rows = sum(1 for _ in handle) - 1
    assert data_rows == 500_000
    assert result.rows_read == data_rows
    assert accounted(result)
    assert result.rows_written + result.rows_quarantined == data_rows
    assert result.columns == {"DateTime": "ts", "Price": "price", "Volume": "size"}
    assert set(result.filled) == {"symbol", "seq", "side", "condition"}
    # 2013-09-01 17:00:00.083 CDT (UTC-5) = 22:00:00.083 UTC
    assert result.first_ts == datetime(2013, 9, 1, 22, 0, 0, 83_000, tzinfo=UTC)
    stored = lake.read("trades", "ES")
    assert stored.height == result.rows_written
    assert lake.symbols("trades") == ["ES"]


def test_mlfinpy_reimport_adds_nothing(es_lake):
    lake, first = es_lake
    before = snapshot(lake.root)
    again = import_file(mlfinpy_ticks(), "trades", lake, symbol="ES", tz="America/Chicago")
    assert again.rows_written == 0
    assert again.rows_duplicate == first.rows_written
    assert snapshot(lake.root) == before


def test_mlfinpy_one_minute_bar_matches_a_hand_computation(es_lake):
    lake, _ = es_lake
    bars = time_bars(lake.read("trades", "ES"), "1m")
    minute = "2013-09-02 08:30"  # Chicago local, inside Monday's session
    prices, sizes = [], []
    with mlfinpy_ticks().open() as handle:
        for row in csv.DictReader(handle):
            if row["DateTime"].startswith(minute):
                prices.append(float(row["Price"]))
                sizes.append(int(row["Volume"]))
    assert prices, "the chosen minute has trades in the file"
    opened = datetime(2013, 9, 2, 13, 30, tzinfo=UTC)  # 08:30 CDT
    bar = bars.filter(pl.col("ts") == opened).row(0, named=True)
    assert bar["ts_end"] == opened + timedelta(minutes=1)
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
    )
    assert (bar["volume"], bar["trade_count"]) == (sum(sizes), len(prices))
    assert bar["vwap"] == pytest.approx(
        sum(p * q for p, q in zip(prices, sizes, strict=True)) / sum(sizes)
    )


@pytest.mark.slow
def test_skfolio_sp500_closes_import_as_close_only_daily_bars(tmp_path):
    closes = sp500_closes()
    path = tmp_path / "sp500.csv"
    closes.to_csv(path)  # wide: Date, then one adjusted-close column per stock
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "bars", lake, layout="wide", tz="America/New_York")
    assert len(result.symbols) == 20 and set(result.symbols) == set(closes.columns)
    assert result.rows_read == int(closes.count().sum()) == result.rows_written
    assert result.close_only and result.bar_interval == timedelta(days=1)
    assert accounted(result) and result.rows_quarantined == 0
    bars = lake.read("bars")
    assert bars.height == result.rows_written
    aapl = bars.filter(pl.col("symbol") == "AAPL").sort("ts")
    assert aapl.height == closes["AAPL"].count()
    first = aapl.row(0, named=True)
    assert first["ts"] == datetime(1990, 1, 2, 5, tzinfo=UTC)  # New York midnight, EST
    assert first["ts_end"] == datetime(1990, 1, 3, 5, tzinfo=UTC)
    assert first["close"] == first["open"] == first["vwap"] == closes["AAPL"].iloc[0]
    assert (first["volume"], first["trade_count"]) == (0, 0)
    summer = aapl.filter(pl.col("ts").dt.date() == date(2022, 7, 1)).row(0, named=True)
    assert summer["ts"] == datetime(2022, 7, 1, 4, tzinfo=UTC)  # EDT
    assert summer["close"] == closes.loc["2022-07-01", "AAPL"]
    assert (
        lake.summary().filter(pl.col("symbol") == "AAPL").get_column("days").item() == aapl.height
    )
    assert import_file(path, "bars", lake, layout="wide", tz="America/New_York").rows_written == 0


# --------------------------------------------------------------------- mapping, zones, fills


def test_aliases_zone_and_filled_columns(tmp_path):
    path = write(
        tmp_path / "ticks.csv",
        "Timestamp,Ticker,Last,Qty\n"
        "2024-03-04 10:00:00.250,AKBNK,40.10,100\n"
        "2024-03-04 10:00:00.250,AKBNK,40.12,5\n"
        "2024-03-04 10:00:01,GARAN,80.5,7\n"
        "2024-03-05 10:00:00,AKBNK,40.2,1\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "trades", lake)  # tz defaults to Europe/Istanbul
    assert result.columns == {"Timestamp": "ts", "Ticker": "symbol", "Last": "price", "Qty": "size"}
    assert result.filled.keys() == {"seq", "side", "condition"}
    stored = lake.read("trades").sort("symbol", "ts", "seq")
    assert stored.get_column("ts").to_list()[0] == datetime(
        2024, 3, 4, 7, 0, 0, 250_000, tzinfo=UTC
    )
    assert stored.select("symbol", "seq").rows() == [
        ("AKBNK", 0),
        ("AKBNK", 1),
        ("AKBNK", 0),
        ("GARAN", 0),
    ]
    assert set(stored.get_column("side")) == {0} and set(stored.get_column("condition")) == {"C"}


def test_explicit_mapping_is_case_insensitive_and_wins_over_aliases(tmp_path):
    path = write(
        tmp_path / "t.csv",
        "when,code,px,Size,lot_size\n2024-03-04T10:00:00+03:00,THYAO,300.25,1,10\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "trades", lake, mapping={"WHEN": "ts", "lot_size": "size"})
    assert result.columns == {"when": "ts", "lot_size": "size", "code": "symbol", "px": "price"}
    assert result.ignored_columns == ("Size",)
    row = lake.read("trades").row(0, named=True)
    assert (row["ts"], row["size"]) == (datetime(2024, 3, 4, 7, tzinfo=UTC), 10)


def test_aware_timestamps_are_converted_not_relocalised(tmp_path):
    path = write(
        tmp_path / "t.csv",
        "ts,price,size\n2024-03-04T07:00:00Z,10,1\n2024-03-04T10:00:01+03:00,10,1\n",
    )
    lake = Lake(tmp_path / "lake")
    import_file(path, "trades", lake, symbol="AKBNK", tz="America/Chicago")
    assert lake.read("trades").get_column("ts").to_list() == [
        datetime(2024, 3, 4, 7, tzinfo=UTC),
        datetime(2024, 3, 4, 7, 0, 1, tzinfo=UTC),
    ]


def test_explicit_timestamp_format_and_separate_date_time_columns(tmp_path):
    path = write(
        tmp_path / "t.csv",
        "Date;Time;Price;Volume\n04.03.2024;10:00:05;40,1;3\n05.03.2024;10:00:06;40.2;4\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "trades", lake, symbol="AKBNK", timestamp_format="%d.%m.%Y %H:%M:%S")
    # ';' separated; the Turkish decimal comma is not a number: quarantined, not guessed
    assert result.rows_quarantined == 1 and result.rules == {"UNPARSABLE": 1}
    assert result.columns == {"Date": "ts", "Time": "ts", "Price": "price", "Volume": "size"}
    assert lake.read("trades").get_column("ts").to_list() == [
        datetime(2024, 3, 5, 7, 0, 6, tzinfo=UTC)
    ]
    reason = lake.read_quarantine("trades").get_column("reason").item()
    assert reason == "Price: 40,1 is not a number"


def test_gzip_and_parquet_files(tmp_path):
    text = (
        "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3\n2024-03-04 10:00:01,AKBNK,40.2,4\n"
    )
    gz = tmp_path / "t.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(text)
    lake = Lake(tmp_path / "lake")
    assert import_file(gz, "trades", lake).rows_written == 2
    parquet = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "ts": [datetime(2024, 3, 4, 10, 0, 2)],  # naive: Istanbul local
            "symbol": ["AKBNK"],
            "price": [40.3],
            "size": [5],
            "seq": [2],
        }
    ).write_parquet(parquet)
    assert import_file(parquet, "trades", lake).rows_written == 1
    assert lake.read("trades").get_column("ts").to_list()[-1] == datetime(
        2024, 3, 4, 7, 0, 2, tzinfo=UTC
    )


def test_daily_ohlcv_bars_from_dates(tmp_path):
    path = write(
        tmp_path / "d.csv",
        "Date,Open,High,Low,Close,Volume\n2024-03-04,40,42,39,41,1000\n2024-03-05,41,41.5,40,40.5,800\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "bars", lake, symbol="AKBNK")
    assert not result.close_only and result.bar_interval == timedelta(days=1)
    assert result.filled["vwap"].startswith("typical price")
    bar = lake.read("bars").row(0, named=True)
    assert bar["ts"] == datetime(2024, 3, 3, 21, tzinfo=UTC)  # Istanbul midnight
    assert bar["ts_end"] == datetime(2024, 3, 4, 21, tzinfo=UTC)
    assert bar["vwap"] == pytest.approx((42 + 39 + 41) / 3)
    assert (bar["volume"], bar["trade_count"]) == (1000, 0)
    assert [p.year for p in lake.partitions("bars")] == [2024]


def test_intraday_bars_infer_or_take_their_interval(tmp_path):
    path = write(
        tmp_path / "m.csv",
        "time,open,high,low,close,volume\n"
        "2024-03-04 10:00,40,41,39,40.5,10\n2024-03-04 10:01,40.5,41,40,41,5\n"
        "2024-03-04 10:03,41,41,41,41,1\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "bars", lake, symbol="AKBNK")
    assert result.bar_interval == timedelta(minutes=1)
    ends = lake.read("bars").select(pl.col("ts_end") - pl.col("ts")).to_series().unique().to_list()
    assert ends == [timedelta(minutes=1)]
    other = Lake(tmp_path / "other")
    assert import_file(
        path, "bars", other, symbol="AKBNK", bar_interval="5m"
    ).bar_interval == timedelta(minutes=5)


def test_close_only_long_bars(tmp_path):
    path = write(
        tmp_path / "c.csv", "date,symbol,adj close\n2024-03-04,AKBNK,40.5\n2024-03-04,GARAN,80\n"
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "bars", lake)
    assert result.close_only and result.symbols == ("AKBNK", "GARAN")
    row = lake.read("bars", "GARAN").row(0, named=True)
    assert row["open"] == row["high"] == row["low"] == row["vwap"] == row["close"] == 80.0


# ------------------------------------------------------------------- structural quarantine

BAD_ROWS = (
    "ts,symbol,price,size,side,condition\n"
    "2024-03-04 10:00:00,AKBNK,40.10,100,B,C\n"  # 0 clean
    "yesterday,AKBNK,40.10,100,B,C\n"  # 1 UNPARSABLE ts
    "2024-03-04 10:00:02,AKBNK,,100,B,C\n"  # 2 NULL price
    "2024-03-04 10:00:03,AKBNK,abc,100,S,C\n"  # 3 UNPARSABLE price
    "2024-03-04 10:00:04,AKBNK,NaN,100,S,C\n"  # 4 NON_FINITE
    "2024-03-04 10:00:05,AKBNK,inf,100,S,C\n"  # 5 NON_FINITE
    "2024-03-04 10:00:06,AKBNK,0,100,S,C\n"  # 6 NON_POSITIVE price
    "2024-03-04 10:00:07,AKBNK,40.12,-5,S,C\n"  # 7 NON_POSITIVE size
    "2024-03-04 10:00:08,AKBNK,40.12,2.5,S,C\n"  # 8 UNPARSABLE: fractional share count
    "2024-03-04 10:00:09,AKBNK,40.12,10,X,C\n"  # 9 UNPARSABLE side
    "2024-03-04 10:00:10,AKBNK,40.12,10,,Q\n"  # 10 UNPARSABLE condition
    "2024-03-04 10:00:11,AK/BNK,40.12,10,,\n"  # 11 UNPARSABLE symbol
    "2024-03-04 10:00:12,,40.12,10,,\n"  # 12 NULL symbol
    "2024-03-04 10:00:13,AKBNK,-1,0,1,K\n"  # 13 NON_POSITIVE (price and size)
    "2024-03-04 10:00:14,AKBNK,40.14,20,-1,K\n"  # 14 clean
)
EXPECTED_RULES = {
    1: "UNPARSABLE",
    2: "NULL",
    3: "UNPARSABLE",
    4: "NON_FINITE",
    5: "NON_FINITE",
    6: "NON_POSITIVE",
    7: "NON_POSITIVE",
    8: "UNPARSABLE",
    9: "UNPARSABLE",
    10: "UNPARSABLE",
    11: "UNPARSABLE",
    12: "NULL",
    13: "NON_POSITIVE",
}


def test_unrepresentable_rows_go_to_quarantine_with_rule_and_reason(tmp_path):
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "trades", lake)
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (15, 2, 13)
    assert accounted(result)
    clean = lake.read("trades")
    assert clean.select("price", "size", "side", "condition").rows() == [
        (40.10, 100, 1, "C"),
        (40.14, 20, -1, "K"),
    ]
    quarantined = lake.read_quarantine("trades").sort("row")
    assert dict(zip(quarantined["row"], quarantined["rule"], strict=True)) == EXPECTED_RULES
    assert set(quarantined.get_column("source")) == {"bad.csv"}
    by_row = {r["row"]: r for r in quarantined.iter_rows(named=True)}
    assert by_row[3]["reason"] == "price: abc is not a number"
    assert by_row[3]["price"] == "abc"  # the original text is kept
    assert by_row[8]["reason"] == "size: 2.5 is not a whole number"
    assert by_row[13]["reason"] == "price: -1 is not positive; size: 0 is not positive"
    assert "cannot name a lake partition" in by_row[11]["reason"]
    assert result.rules == {"NON_FINITE": 2, "NON_POSITIVE": 3, "NULL": 2, "UNPARSABLE": 6}


def test_local_times_lost_to_daylight_saving_are_quarantined(tmp_path):
    path = write(
        tmp_path / "dst.csv",
        "DateTime,Price,Volume\n"
        "2013-11-03 00:59:59,1700,1\n"
        "2013-11-03 01:30:00,1700,1\n"  # happens twice in Chicago: ambiguous
        "2013-03-10 02:30:00,1600,1\n"  # never happens in Chicago
        "2013-11-03 02:00:00,1701,1\n",
    )
    lake = Lake(tmp_path / "lake")
    result = import_file(path, "trades", lake, symbol="ES", tz="America/Chicago")
    assert result.rules == {"BAD_LOCAL_TIME": 2}
    reasons = lake.read_quarantine("trades").get_column("reason").to_list()
    assert all("does not exist or is ambiguous in America/Chicago" in r for r in reasons)


def test_reimport_adds_nothing_to_the_lake_or_the_quarantine(tmp_path):
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    lake = Lake(tmp_path / "lake")
    import_file(path, "trades", lake)
    before = snapshot(lake.root)
    again = import_file(path, "trades", lake)
    assert (again.rows_written, again.rows_duplicate, again.rows_quarantined) == (0, 2, 13)
    assert snapshot(lake.root) == before
    assert lake.read_quarantine("trades").height == 13


# ------------------------------------------------------------------------------ bad files


@pytest.fixture
def used_lake(tmp_path):
    """A lake that already holds data, to prove failed imports leave it byte for byte as it was."""
    lake = Lake(tmp_path / "lake")
    import_file(
        write(tmp_path / "seed.csv", "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3\n"),
        "trades",
        lake,
    )
    return lake


def expect_refusal(lake: Lake, error: type[Exception], match: str, *args, **kwargs) -> None:
    before = snapshot(lake.root)
    with pytest.raises(error, match=match):
        import_file(*args, lake=lake, **kwargs)
    assert snapshot(lake.root) == before
    assert not list(lake.root.rglob("*.tmp"))


def test_missing_file(used_lake, tmp_path):
    expect_refusal(used_lake, FileNotFoundError, "no such file", tmp_path / "nope.csv", "trades")


def test_malformed_csv(used_lake, tmp_path):
    path = write(
        tmp_path / "ragged.csv", "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3,99,1\n"
    )
    expect_refusal(used_lake, ValueError, "not a well-formed CSV file", path, "trades")


def test_unknown_or_unimportable_kind(used_lake, tmp_path):
    path = write(tmp_path / "t.csv", "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3\n")
    expect_refusal(used_lake, ValueError, "unknown data kind 'ticks'", path, "ticks")
    expect_refusal(
        used_lake, ValueError, "cannot import corporate_actions", path, "corporate_actions"
    )
    expect_refusal(
        used_lake, ValueError, "wide layout .* is for bars only", path, "trades", layout="wide"
    )


def test_missing_columns_are_named_with_the_columns_found(used_lake, tmp_path):
    path = write(tmp_path / "t.csv", "when,symbol,amount\n2024-03-04 10:00:00,AKBNK,40.1\n")
    expect_refusal(
        used_lake,
        ValueError,
        r"no column for trades field\(s\) ts, price, size; columns found: when, symbol, amount",
        path,
        "trades",
    )
    path = write(tmp_path / "b.csv", "date,open,close\n2024-03-04,1,2\n")
    expect_refusal(used_lake, ValueError, "high, low", path, "bars", symbol="AKBNK")
    path = write(tmp_path / "n.csv", "ts,price,size\n2024-03-04 10:00:00,40.1,3\n")
    expect_refusal(used_lake, ValueError, r"symbol \(or pass symbol=\)", path, "trades")


def test_wrong_columns_in_the_mapping(used_lake, tmp_path):
    path = write(tmp_path / "t.csv", "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3\n")
    expect_refusal(
        used_lake,
        ValueError,
        "mapped column 'Qty' is not in the file; columns found: ts, symbol",
        path,
        "trades",
        mapping={"Qty": "size"},
    )
    expect_refusal(
        used_lake,
        ValueError,
        "'volume'.*trades columns are ts, symbol, price",
        path,
        "trades",
        mapping={"size": "volume"},
    )
    expect_refusal(
        used_lake, ValueError, "do not also pass symbol=", path, "trades", symbol="GARAN"
    )


def test_ambiguous_columns_ask_for_a_mapping(used_lake, tmp_path):
    path = write(
        tmp_path / "t.csv",
        "ts,symbol,last,trade_price,size\n2024-03-04 10:00:00,AKBNK,40.1,40.1,3\n",
    )
    expect_refusal(
        used_lake,
        ValueError,
        "columns last, trade_price could each be the trades column 'price'",
        path,
        "trades",
    )


def test_empty_files(used_lake, tmp_path):
    expect_refusal(used_lake, ValueError, "is empty", write(tmp_path / "e.csv", ""), "trades")
    expect_refusal(
        used_lake,
        ValueError,
        "no data rows",
        write(tmp_path / "h.csv", "ts,symbol,price,size\n"),
        "trades",
    )
    expect_refusal(
        used_lake, ValueError, "unsupported file type", write(tmp_path / "t.xlsx", "x"), "trades"
    )


def test_a_file_with_no_usable_row_is_refused_not_quarantined(used_lake, tmp_path):
    path = write(
        tmp_path / "t.csv",
        "ts,symbol,price,size\n2024-03-04 10:00,AKBNK,-1,3\n2024-03-04 10:01,AKBNK,abc,1\n",
    )
    expect_refusal(
        used_lake,
        ValueError,
        "none of its 2 rows can be imported.*price: -1 is not positive",
        path,
        "trades",
    )


def test_times_in_an_unknown_format_ask_for_timestamp_format(used_lake, tmp_path):
    path = write(tmp_path / "t.csv", "ts,symbol,price,size\n04/03/2024 10h00,AKBNK,40.1,3\n")
    expect_refusal(
        used_lake,
        ValueError,
        r"cannot read times like \['04/03/2024 10h00'\].*pass timestamp_format",
        path,
        "trades",
    )


def test_unknown_time_zone(used_lake, tmp_path):
    path = write(tmp_path / "t.csv", "ts,symbol,price,size\n2024-03-04 10:00:00,AKBNK,40.1,3\n")
    expect_refusal(
        used_lake,
        ValueError,
        "unknown time zone 'Europe/Ankara'",
        path,
        "trades",
        tz="Europe/Ankara",
    )
