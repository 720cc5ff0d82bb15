"""Import market data files (CSV, CSV.gz, Parquet) into the lake.

What an import does, in order, writing nothing until every step has succeeded:

1. **Read** the file by its extension: ``.csv`` / ``.tsv`` / ``.txt``, optionally ``.gz`` (every
   cell read as text, so a bad value is kept exactly as written) or ``.parquet`` (native types).
   The delimiter is taken from the header line (``,`` ``;`` tab or ``|``). ``layout="wide"``
   (bars only) reads a time column plus one close column per symbol; empty / NaN cells mean "no
   value for that symbol and time" and are counted in ``empty_cells``, not quarantined.
2. **Map columns** to lake columns: an explicit ``mapping`` (source column -> lake column) first,
   then case-insensitive aliases (``timestamp``/``time``/``datetime``/``date`` -> ``ts``,
   ``qty``/``quantity``/``volume`` -> ``size`` for trades, ``adj close`` -> ``close`` for bars,
   ...). A column named exactly like a lake column wins over an alias; when two columns still
   claim one lake column the import stops and asks for a mapping. Separate ``date`` and
   ``time`` columns are joined. Columns left unmapped are reported in ``ignored_columns``.
3. **Parse** every value. Naive timestamps are local times in ``tz`` (DST gaps and repeated
   hours cannot be placed and are quarantined), aware ones are converted; everything is stored
   in UTC. Missing optional columns are filled and reported in ``filled``: ``seq`` numbers the
   rows of each symbol and UTC day in file order (so a file must hold whole days of a symbol),
   ``side`` = 0 (unknown), ``condition`` = "C" (continuous). Bars given as dates are daily bars
   from local midnight to the next local midnight; intraday bars without ``ts_end`` last
   ``bar_interval`` (default: the most common step between bars). Bars with only a close
   (adjusted closes, say) get open = high = low = vwap = close (``close_only``); OHLC bars
   without a vwap get the typical price (high + low + close) / 3; a missing volume or trade
   count is 0, meaning unknown.
4. **Quarantine** rows that cannot be represented, one rule code per row (the first problem)
   and a reason naming every problem: ``NULL`` (empty required value), ``UNPARSABLE`` (not a
   number / time / known code, fractional share count, symbol unusable as a partition name),
   ``NON_FINITE`` (NaN, inf), ``NON_POSITIVE`` (price or size <= 0), ``NEGATIVE`` (bar volume or
   trade count < 0), ``BAD_LOCAL_TIME`` (local time that does not exist or is ambiguous in
   ``tz``). Market rules (tick grid, bands, sessions, OHLC consistency) are *not* checked here:
   that is ``quant.data.validate``.
5. **Write** the clean rows and the rejects in one atomic, idempotent lake write.

Every problem with the file itself (missing, unreadable, malformed, empty, unknown kind, missing
or ambiguous columns, every row rejected) raises one ``FileNotFoundError`` / ``ValueError``
naming it, and the lake is left unchanged.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from quant.data.bars import parse_every
from quant.data.lake import Lake, check_symbol, parse_kind
from quant.data.quality_report import QualityReport
from quant.data.schema import DataKind, TradeCondition, polars_schema
from quant.data.validate import ValidationConfig, validate

NULL = "NULL"
UNPARSABLE = "UNPARSABLE"
NON_FINITE = "NON_FINITE"
NON_POSITIVE = "NON_POSITIVE"
NEGATIVE = "NEGATIVE"
BAD_LOCAL_TIME = "BAD_LOCAL_TIME"
RULES = (NULL, UNPARSABLE, NON_FINITE, NON_POSITIVE, NEGATIVE, BAD_LOCAL_TIME)
"""Structural rule codes used by the import quarantine."""

IMPORTABLE = (DataKind.TRADES, DataKind.QUOTES, DataKind.BARS)
Layout = Literal["long", "wide"]

_SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-^&+]*")
_DATE_ONLY = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
_TIME_DIRECTIVES = re.compile(r"%[HIMSTRXcsfpklr]")
_MAX_EXACT = 2**53

_COMMON_ALIASES = {
    "ts": "ts",
    "timestamp": "ts",
    "time": "ts",
    "datetime": "ts",
    "date_time": "ts",
    "date": "ts",
    "dt": "ts",
    "symbol": "symbol",
    "ticker": "symbol",
    "sym": "symbol",
    "instrument": "symbol",
    "code": "symbol",
    "seq": "seq",
    "sequence": "seq",
    "seq_no": "seq",
}
ALIASES: dict[DataKind, dict[str, str]] = {
    DataKind.TRADES: {
        **_COMMON_ALIASES,
        "price": "price",
        "px": "price",
        "last": "price",
        "last_price": "price",
        "trade_price": "price",
        "size": "size",
        "qty": "size",
        "quantity": "size",
        "volume": "size",
        "vol": "size",
        "trade_size": "size",
        "side": "side",
        "aggressor": "side",
        "aggressor_side": "side",
        "condition": "condition",
        "cond": "condition",
        "trade_condition": "condition",
    },
    DataKind.QUOTES: {
        **_COMMON_ALIASES,
        "bid": "bid_price",
        "bid_price": "bid_price",
        "bidprice": "bid_price",
        "best_bid": "bid_price",
        "bid_px": "bid_price",
        "bid_size": "bid_size",
        "bidsize": "bid_size",
        "bid_qty": "bid_size",
        "bid_volume": "bid_size",
        "ask": "ask_price",
        "ask_price": "ask_price",
        "askprice": "ask_price",
        "offer": "ask_price",
        "offer_price": "ask_price",
        "best_ask": "ask_price",
        "ask_px": "ask_price",
        "ask_size": "ask_size",
        "asksize": "ask_size",
        "ask_qty": "ask_size",
        "ask_volume": "ask_size",
        "offer_size": "ask_size",
    },
    DataKind.BARS: {
        **{k: v for k, v in _COMMON_ALIASES.items() if v != "seq"},
        "ts_end": "ts_end",
        "end": "ts_end",
        "end_time": "ts_end",
        "close_time": "ts_end",
        "open": "open",
        "o": "open",
        "high": "high",
        "h": "high",
        "low": "low",
        "l": "low",
        "close": "close",
        "c": "close",
        "last": "close",
        "price": "close",
        "adj_close": "close",
        "adjclose": "close",
        "adjusted_close": "close",
        "volume": "volume",
        "vol": "volume",
        "v": "volume",
        "vwap": "vwap",
        "trade_count": "trade_count",
        "trades": "trade_count",
        "n_trades": "trade_count",
        "num_trades": "trade_count",
        "count": "trade_count",
    },
}
"""Normalised source column name (lower case, non-alphanumerics as ``_``) -> lake column."""

REQUIRED: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("ts", "price", "size"),
    DataKind.QUOTES: ("ts", "bid_price", "bid_size", "ask_price", "ask_size"),
    DataKind.BARS: ("ts", "close"),
}

_FLOAT_POSITIVE = {"price", "bid_price", "ask_price", "open", "high", "low", "close", "vwap"}
_INT_POSITIVE = {"size", "bid_size", "ask_size"}
_INT_NON_NEGATIVE = {"volume", "trade_count"}
_SIDES = {"1": 1, "+1": 1, "B": 1, "BUY": 1, "-1": -1, "S": -1, "SELL": -1, "0": 0, "U": 0}
_CONDITIONS = [c.value for c in TradeCondition]


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    ``rows_read = rows_written + rows_duplicate + rows_conflicting + rows_quarantined``. In the
    wide layout a row is one (time, symbol) cell that holds a value; empty cells are counted in
    ``empty_cells``.
    """

    path: Path
    kind: DataKind
    source: str
    layout: str
    rows_read: int
    rows_written: int
    rows_duplicate: int
    rows_conflicting: int
    rows_quarantined: int
    """Rows rejected by the structural checks (``rules`` counts them per rule code)."""
    symbols: tuple[str, ...]
    first_ts: datetime | None
    last_ts: datetime | None
    columns: dict[str, str]
    """Source column -> lake column, as used."""
    ignored_columns: tuple[str, ...]
    filled: dict[str, str]
    """Lake columns the file did not have, and what they were filled with."""
    close_only: bool = False
    bar_interval: timedelta | None = None
    empty_cells: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    quality: QualityReport | None = None
    """The quality report when the import ran the validation rules."""


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _read(path: Path) -> pl.DataFrame:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            return pl.read_parquet(path)
        except Exception as error:
            raise ValueError(f"{path} is not a readable Parquet file: {error}") from None
    if not name.removesuffix(".gz").endswith((".csv", ".tsv", ".txt")):
        raise ValueError(
            f"{path}: unsupported file type; expected .csv, .tsv or .txt (optionally .gz) "
            "or .parquet"
        )
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    try:
        header = _first_line(path)
        separator = max([",", ";", "\t", "|"], key=header.count)
        frame = pl.read_csv(path, infer_schema=False, separator=separator, raise_if_empty=True)
    except pl.exceptions.NoDataError:
        raise ValueError(f"{path} is empty") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError, EOFError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a well-formed CSV file: {detail}") from None
    return frame


def _first_line(path: Path) -> str:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            return handle.readline()
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline()


@dataclass
class _Table:
    """The file's rows in long form, with the source column feeding each lake column."""

    frame: pl.DataFrame
    """Original columns (text for CSV) plus ``row``, the 0-based data row in the file."""
    source_of: dict[str, str]
    """Lake column -> column of ``frame``."""
    columns: dict[str, str]
    """Source column -> lake column, as reported."""
    ignored: list[str]
    empty_cells: int = 0


def _resolve_columns(
    frame: pl.DataFrame,
    kind: DataKind,
    mapping: Mapping[str, str] | None,
    layout: Layout,
    name: str,
) -> dict[str, str]:
    """Source column -> lake column: the explicit mapping, then aliases (exact names first)."""
    targets = ["ts"] if layout == "wide" else list(polars_schema(kind).names())
    found = ", ".join(frame.columns)
    by_lower = {c.lower(): c for c in frame.columns}
    rename: dict[str, str] = {}
    for source, target in (mapping or {}).items():
        column = source if source in frame.columns else by_lower.get(str(source).lower())
        if column is None:
            raise ValueError(
                f"{name}: mapped column {source!r} is not in the file; columns found: {found}"
            )
        if target not in targets:
            allowed = (
                "the wide layout maps only its time column (to ts)"
                if layout == "wide"
                else (f"{kind} columns are {', '.join(targets)}")
            )
            raise ValueError(f"{name}: mapping {source!r} -> {target!r}: {allowed}")
        rename[column] = target
    repeated = sorted(t for t, n in Counter(rename.values()).items() if n > 1)
    if repeated:
        raise ValueError(f"{name}: the mapping sends more than one column to {', '.join(repeated)}")
    claims: dict[str, list[str]] = {}
    for column in frame.columns:
        target = ALIASES[kind].get(_normalise(column))
        if column not in rename and target in targets and target not in rename.values():
            claims.setdefault(target, []).append(column)
    for target, columns in claims.items():
        if len(columns) > 1:
            if target == "ts" and sorted(_normalise(c) for c in columns) == ["date", "time"]:
                continue  # separate date and time columns: joined by _long_table
            exact = [c for c in columns if _normalise(c) == target]
            if len(exact) != 1:
                raise ValueError(
                    f"{name}: columns {', '.join(columns)} could each be the {kind} column "
                    f"{target!r}; say which with a mapping, e.g. {{{columns[0]!r}: {target!r}}}"
                )
            columns = exact
        rename[columns[0]] = target
    return rename


def _long_table(
    raw: pl.DataFrame, kind: DataKind, mapping: Mapping[str, str] | None, layout: Layout, name: str
) -> _Table:
    if "row" in raw.columns:
        raise ValueError(
            f"{name}: a source column may not be called 'row' (the quarantine uses it for row "
            "numbers); rename it"
        )
    rename = _resolve_columns(raw, kind, mapping, layout, name)
    frame = raw.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    columns = dict(rename)
    if "ts" not in rename.values():
        pair = {_normalise(c): c for c in raw.columns if _normalise(c) in ("date", "time")}
        if len(pair) == 2:
            frame = frame.with_columns(
                pl.concat_str(
                    [pl.col(pair["date"]).cast(pl.String), pl.col(pair["time"]).cast(pl.String)],
                    separator=" ",
                ).alias("date_time")
            )
            rename["date_time"] = "ts"
            columns.update({pair["date"]: "ts", pair["time"]: "ts"})
    used = set(columns)
    if layout == "long":
        return _Table(
            frame=frame,
            source_of={target: source for source, target in rename.items()},
            columns=columns,
            ignored=[c for c in raw.columns if c not in used],
        )
    ts_source = next((s for s, t in rename.items() if t == "ts"), None)
    if ts_source is None:
        raise ValueError(
            f"{name}: no time column for the wide layout; columns found: "
            f"{', '.join(raw.columns)}; map one to ts, e.g. {{'Date': 'ts'}}"
        )
    symbols = [c for c in raw.columns if c not in used]
    if not symbols:
        raise ValueError(f"{name}: the wide layout needs one close column per symbol")
    cells = frame.select("row", ts_source, *[pl.col(c).cast(pl.String) for c in symbols]).unpivot(
        index=["row", ts_source], variable_name="symbol", value_name="close"
    )
    text = pl.col("close").str.strip_chars()
    empty = text.is_null() | text.str.to_lowercase().is_in(["", "nan", "na", "n/a", "null", "none"])
    empty_cells = int(cells.select(empty.sum()).item())
    cells = cells.filter(~empty).sort("row", maintain_order=True)
    if cells.height == 0:
        raise ValueError(f"{name}: every cell is empty")
    return _Table(
        frame=cells,
        source_of={"ts": ts_source, "symbol": "symbol", "close": "close"},
        columns={
            **{c: t for c, t in columns.items() if t == "ts"},
            **dict.fromkeys(symbols, "close"),
        },
        ignored=[],
        empty_cells=empty_cells,
    )


def _check_required(table: _Table, kind: DataKind, symbol: str | None, name: str) -> bool:
    """Raise naming the lake columns nothing feeds; return whether bars are close-only."""
    present = set(table.source_of)
    missing = [c for c in REQUIRED[kind] if c not in present]
    if "symbol" not in present and symbol is None:
        missing.append("symbol (or pass symbol=)")
    close_only = False
    if kind is DataKind.BARS:
        ohl = [c for c in ("open", "high", "low") if c in present]
        if 0 < len(ohl) < 3:
            missing.extend(c for c in ("open", "high", "low") if c not in present)
        close_only = not ohl
    if missing:
        found = ", ".join(c for c in table.frame.columns if c not in ("row", "date_time"))
        raise ValueError(
            f"{name}: no column for {kind} field(s) {', '.join(missing)}; columns found: {found}; "
            "name them with a mapping, e.g. {'Price': 'price'}"
        )
    if "symbol" in present and symbol is not None:
        raise ValueError(
            f"{name} has a symbol column ({table.source_of['symbol']}); do not also pass symbol="
        )
    return close_only


def _shown(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).fill_null("null")


def _number(
    source: pl.Expr, dtype: pl.DataType, integer: bool
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(value, missing, unparsable, non-finite) for a numeric lake column from any source type."""
    if dtype == pl.String:
        text = source.str.strip_chars()
        missing = text.is_null() | (text == "")
        as_float = text.cast(pl.Float64, strict=False)
    elif dtype.is_numeric():
        missing = source.is_null()
        as_float = source.cast(pl.Float64)
    else:
        raise ValueError(f"holds {dtype} values, not numbers")
    non_finite = as_float.is_nan() | as_float.is_infinite()
    if not integer:
        return as_float, missing, ~missing & as_float.is_null(), non_finite
    if dtype.is_integer():
        return source.cast(pl.Int64), missing, pl.lit(False), pl.lit(False)
    whole = as_float.is_finite() & (as_float == as_float.floor()) & (as_float.abs() < _MAX_EXACT)
    exact = text.cast(pl.Int64, strict=False) if dtype == pl.String else pl.lit(None, pl.Int64)
    value = pl.coalesce(exact, pl.when(whole).then(as_float.cast(pl.Int64)))
    return value, missing, ~missing & value.is_null() & ~non_finite, non_finite


class _Checks:
    """Per-row problems as (mask, rule, reason), in column order: the first gives the rule."""

    def __init__(self) -> None:
        self.items: list[tuple[pl.Expr, str, pl.Expr]] = []

    def add(self, mask: pl.Expr, rule: str, reason: pl.Expr) -> None:
        self.items.append((mask.fill_null(False), rule, reason))

    def time(self, column: str, parsed: str, unplaced: str, tz: str) -> None:
        text = pl.col(column).cast(pl.String).str.strip_chars()
        missing = text.is_null() | (text == "")
        self.add(missing, NULL, pl.lit(f"{column}: empty"))
        self.add(
            ~missing & ~pl.col(parsed),
            UNPARSABLE,
            pl.format(f"{column}: cannot read time {{}}", _shown(column)),
        )
        self.add(
            pl.col(unplaced),
            BAD_LOCAL_TIME,
            pl.format(
                f"{column}: local time {{}} does not exist or is ambiguous in {tz}", _shown(column)
            ),
        )

    def rule(self) -> pl.Expr:
        whens = [pl.when(m).then(pl.lit(r)) for m, r, _ in self.items]
        return pl.coalesce(whens) if whens else pl.lit(None, dtype=pl.String)

    def reason(self) -> pl.Expr:
        texts = [pl.when(m).then(t) for m, _, t in self.items]
        if not texts:
            return pl.lit(None, dtype=pl.String)
        return pl.concat_str(texts, separator="; ", ignore_nulls=True)


def _parse_times(
    series: pl.Series, tz: str, fmt: str | None
) -> tuple[pl.Series, pl.Series, pl.Series, bool]:
    """(UTC ns times, 'read as a time' mask, 'local time cannot be placed' mask, date-only)."""
    dtype = series.dtype
    date_only = False
    if dtype == pl.String:
        text = series.str.strip_chars()
        values = text.drop_nulls().filter(text.drop_nulls() != "")
        if fmt is not None:
            date_only = not _TIME_DIRECTIVES.search(fmt)
        else:
            date_only = values.len() > 0 and bool(
                values.str.contains(f"^(?:{_DATE_ONLY.pattern})$").all()
            )
        try:
            if date_only:
                local = text.str.to_date(fmt, strict=False).cast(pl.Datetime("ns"))
            else:
                local = text.str.to_datetime(fmt, time_unit="ns", strict=False)
        except pl.exceptions.PolarsError as error:
            raise ValueError(
                f"cannot read times like {values.head(1).to_list()}"
                f"{' with format ' + repr(fmt) if fmt else ''} ({str(error).splitlines()[0]}); "
                "pass timestamp_format"
            ) from None
    elif isinstance(dtype, pl.Datetime):
        local = series.cast(pl.Datetime("ns", dtype.time_zone))
    elif dtype == pl.Date:
        date_only = True
        local = series.cast(pl.Datetime("ns"))
    else:
        raise ValueError(f"holds {dtype} values, not times")
    parsed = local.is_not_null()
    zone = local.dtype.time_zone  # type: ignore[attr-defined]
    aware = (
        local.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
        if zone is None
        else local
    )
    utc = aware.dt.convert_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
    return utc, parsed, parsed & utc.is_null(), date_only


def _next_local_midnight(utc: pl.Expr, tz: str) -> pl.Expr:
    """The end of a daily bar opening at local midnight ``utc``: the next local midnight."""
    next_day = (utc.dt.convert_time_zone(tz).dt.date() + timedelta(days=1)).cast(pl.Datetime("ns"))
    return next_day.dt.replace_time_zone(
        tz, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def _infer_interval(frame: pl.DataFrame, name: str) -> timedelta:
    """The most common positive step between consecutive bars of a symbol."""
    steps = (
        frame.select("_v_symbol", "_v_ts")
        .drop_nulls()
        .unique()
        .sort("_v_symbol", "_v_ts")
        .select(pl.col("_v_ts").diff().over("_v_symbol").alias("step"))
        .drop_nulls()
        .filter(pl.col("step") > timedelta(0))
    )
    if steps.height == 0:
        raise ValueError(
            f"{name}: cannot tell the bar interval (fewer than two bars per symbol and no ts_end "
            "column); pass bar_interval"
        )
    return steps.get_column("step").mode().sort().item(0)


@dataclass
class _Parsed:
    frame: pl.DataFrame
    """The table plus ``_v_{lake column}`` values, ``_rule`` and ``_reason``."""
    filled: dict[str, str]
    bar_interval: timedelta | None


def _parse(
    table: _Table,
    kind: DataKind,
    *,
    symbol: str | None,
    tz: str,
    fmt: str | None,
    close_only: bool,
    interval: timedelta | None,
    name: str,
) -> _Parsed:
    frame, source_of = table.frame, table.source_of
    checks = _Checks()
    values: dict[str, pl.Expr] = {}
    filled: dict[str, str] = {}
    schema = polars_schema(kind)

    ts_date_only = False
    for target in ("ts", "ts_end"):
        if target not in source_of:
            continue
        column = source_of[target]
        try:
            utc, parsed, unplaced, date_only = _parse_times(frame.get_column(column), tz, fmt)
        except ValueError as error:
            raise ValueError(f"{name}: column {column!r} ({target}) {error}") from None
        frame = frame.with_columns(
            utc.alias(f"_v_{target}"), parsed.alias(f"_p_{target}"), unplaced.alias(f"_u_{target}")
        )
        checks.time(column, f"_p_{target}", f"_u_{target}", tz)
        if target == "ts":
            ts_date_only = date_only

    if symbol is not None:
        values["symbol"] = pl.lit(symbol)
        filled["symbol"] = f"{symbol!r} (symbol=)"
    else:
        column = source_of["symbol"]
        text = pl.col(column).cast(pl.String).str.strip_chars()
        missing = text.is_null() | (text == "")
        checks.add(missing, NULL, pl.lit(f"{column}: empty"))
        checks.add(
            ~missing & ~text.str.contains(f"^{_SYMBOL_RE.pattern}$"),
            UNPARSABLE,
            pl.format(f"{column}: symbol {{}} cannot name a lake partition", _shown(column)),
        )
        values["symbol"] = text

    for target, dtype in schema.items():
        if target in ("ts", "ts_end", "symbol", "side", "condition") or target not in source_of:
            continue
        column = source_of[target]
        integer = dtype == pl.Int64
        try:
            value, missing, unparsable, non_finite = _number(
                pl.col(column), frame.schema[column], integer
            )
        except ValueError as error:
            raise ValueError(f"{name}: column {column!r} ({target}) {error}") from None
        what = "a whole number" if integer else "a number"
        checks.add(missing, NULL, pl.lit(f"{column}: empty"))
        checks.add(
            unparsable, UNPARSABLE, pl.format(f"{column}: {{}} is not {what}", _shown(column))
        )
        checks.add(
            non_finite, NON_FINITE, pl.format(f"{column}: {{}} is not finite", _shown(column))
        )
        if target in _FLOAT_POSITIVE or target in _INT_POSITIVE:
            checks.add(
                value <= 0,
                NON_POSITIVE,
                pl.format(f"{column}: {{}} is not positive", _shown(column)),
            )
        elif target in _INT_NON_NEGATIVE:
            checks.add(
                value < 0, NEGATIVE, pl.format(f"{column}: {{}} is negative", _shown(column))
            )
        values[target] = value

    if kind is DataKind.TRADES:
        values.update(_trade_codes(source_of, checks, filled))

    frame = frame.with_columns(
        *[expr.alias(f"_v_{target}") for target, expr in values.items()],
        _rule=checks.rule(),
        _reason=checks.reason(),
    )

    if kind in (DataKind.TRADES, DataKind.QUOTES) and "seq" not in source_of:
        placed = pl.col("_v_ts").is_not_null() & pl.col("_v_symbol").is_not_null()
        frame = frame.with_columns(
            _v_seq=pl.when(placed).then(
                pl.int_range(pl.len(), dtype=pl.Int64).over(
                    "_v_symbol", pl.col("_v_ts").dt.date(), placed
                )
            )
        )
        filled["seq"] = "row number within symbol and UTC day, in file order"

    step = None
    if kind is DataKind.BARS:
        frame, step = _complete_bars(
            frame, source_of, filled, close_only, ts_date_only, interval, tz, name
        )
    return _Parsed(frame=frame, filled=filled, bar_interval=step)


def _trade_codes(
    source_of: dict[str, str], checks: _Checks, filled: dict[str, str]
) -> dict[str, pl.Expr]:
    """``side`` and ``condition``: parsed when present (blank = unknown / continuous) or filled."""
    values: dict[str, pl.Expr] = {}
    if "side" in source_of:
        column = source_of["side"]
        text = pl.col(column).cast(pl.String).str.strip_chars().str.to_uppercase()
        side = text.replace_strict(_SIDES, default=None, return_dtype=pl.Int8)
        bad = text.is_not_null() & (text != "") & side.is_null()
        checks.add(
            bad,
            UNPARSABLE,
            pl.format(f"{column}: side {{}} is not 1/B/BUY, -1/S/SELL or 0", _shown(column)),
        )
        values["side"] = side.fill_null(0)
    else:
        values["side"] = pl.lit(0, dtype=pl.Int8)
        filled["side"] = "0 (unknown aggressor)"
    if "condition" in source_of:
        column = source_of["condition"]
        text = pl.col(column).cast(pl.String).str.strip_chars().str.to_uppercase()
        blank = text.is_null() | (text == "")
        checks.add(
            ~blank & ~text.is_in(_CONDITIONS),
            UNPARSABLE,
            pl.format(
                f"{column}: trade condition {{}} is not one of {'/'.join(_CONDITIONS)}",
                _shown(column),
            ),
        )
        values["condition"] = (
            pl.when(blank).then(pl.lit(TradeCondition.CONTINUOUS.value)).otherwise(text)
        )
    else:
        values["condition"] = pl.lit(TradeCondition.CONTINUOUS.value)
        filled["condition"] = "'C' (continuous trading)"
    return values


def _complete_bars(
    frame: pl.DataFrame,
    source_of: dict[str, str],
    filled: dict[str, str],
    close_only: bool,
    date_only: bool,
    interval: timedelta | None,
    tz: str,
    name: str,
) -> tuple[pl.DataFrame, timedelta | None]:
    """Fill the bar columns the file lacks: ts_end, OHL of close-only bars, vwap, counts."""
    step = None
    if "ts_end" not in source_of:
        if date_only and interval in (None, timedelta(days=1)):
            step = timedelta(days=1)
            frame = frame.with_columns(_v_ts_end=_next_local_midnight(pl.col("_v_ts"), tz))
            filled["ts_end"] = f"next local midnight in {tz} (daily bars)"
        else:
            step = interval or _infer_interval(frame, name)
            frame = frame.with_columns(_v_ts_end=pl.col("_v_ts") + step)
            how = "bar_interval" if interval else "the most common step between bars"
            filled["ts_end"] = f"ts + {step} ({how})"
    close = pl.col("_v_close")
    if close_only:
        frame = frame.with_columns(_v_open=close, _v_high=close, _v_low=close)
        filled.update(open="close", high="close", low="close")
    if "vwap" not in source_of:
        if close_only:
            frame = frame.with_columns(_v_vwap=close)
            filled["vwap"] = "close"
        else:
            frame = frame.with_columns(_v_vwap=(pl.col("_v_high") + pl.col("_v_low") + close) / 3.0)
            filled["vwap"] = "typical price (high + low + close) / 3"
    for column in ("volume", "trade_count"):
        if column not in source_of:
            frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(f"_v_{column}"))
            filled[column] = "0 (unknown)"
    return frame, step


def import_file(
    path: str | Path,
    kind: DataKind | str,
    lake: Lake,
    *,
    symbol: str | None = None,
    mapping: Mapping[str, str] | None = None,
    tz: str = "Europe/Istanbul",
    layout: Layout = "long",
    timestamp_format: str | None = None,
    source_name: str | None = None,
    bar_interval: str | timedelta | None = None,
    validation: ValidationConfig | None = None,
) -> ImportResult:
    """Import one CSV / CSV.gz / Parquet file of ``kind`` into ``lake`` (see the module docs).

    ``symbol`` names the instrument of a file without a symbol column. ``layout="wide"`` (bars
    only) reads one close column per symbol beside a time column. ``bar_interval`` gives the
    length of intraday bars when the file has no ``ts_end`` column (default: the most common
    step between consecutive bars; date-only rows are daily bars). ``source_name`` labels the
    rows in the quarantine (default: the file name).
    """
    path = Path(path)
    kind = parse_kind(kind)
    if kind not in IMPORTABLE:
        raise ValueError(
            f"cannot import {kind} files; expected one of: {', '.join(k.value for k in IMPORTABLE)}"
        )
    if layout not in ("long", "wide"):
        raise ValueError(f"layout must be 'long' or 'wide', not {layout!r}")
    if layout == "wide" and kind is not DataKind.BARS:
        raise ValueError("the wide layout (one close column per symbol) is for bars only")
    if layout == "wide" and symbol is not None:
        raise ValueError("symbol= does not apply to the wide layout: its columns name the symbols")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}; use an IANA name like 'Europe/Istanbul'"
        ) from None
    if symbol is not None:
        check_symbol(symbol)
    interval = parse_every(bar_interval) if bar_interval is not None else None
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    name = path.name
    source = source_name or name

    raw = _read(path)
    if raw.height == 0:
        raise ValueError(f"{path} has a header but no data rows")
    table = _long_table(raw, kind, mapping, layout, name)
    close_only = _check_required(table, kind, symbol, name)
    parsed = _parse(
        table,
        kind,
        symbol=symbol,
        tz=tz,
        fmt=timestamp_format,
        close_only=close_only,
        interval=interval,
        name=name,
    )
    frame = parsed.frame
    ok = pl.col("_rule").is_null()
    schema = polars_schema(kind)
    clean = frame.filter(ok).select(
        [pl.col(f"_v_{column}").cast(dtype).alias(column) for column, dtype in schema.items()]
    )
    originals = [c for c in table.frame.columns if c not in ("row", "date_time")]
    rejected = frame.filter(~ok).select(
        "row", pl.col("_rule").alias("rule"), pl.col("_reason").alias("reason"), *originals
    )
    if clean.height == 0:
        sample = " | ".join(rejected.get_column("reason").head(3).to_list())
        raise ValueError(
            f"{name}: none of its {rejected.height} rows can be imported as {kind} (first "
            f"problems: {sample}); check the mapping, tz and timestamp_format"
        )

    report = None
    if validation is not None:
        file_rows = frame.filter(ok).get_column("row")
        clean, rejected, report = _validate_rows(
            clean, file_rows, rejected, kind, lake, validation, source
        )
        if clean.height == 0:
            raise ValueError(
                f"{name}: every row failed validation ({report.summary().splitlines()[-2]}); "
                "nothing was written. Is it BIST data? Try --no-market-rules or --calendar"
            )

    written = lake.write(kind, clean, quarantine=rejected, source=source)
    first, last = clean.select(
        pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")
    ).row(0)
    return ImportResult(
        path=path,
        kind=kind,
        source=source,
        layout=layout,
        rows_read=frame.height,
        rows_written=written.rows_written,
        rows_duplicate=written.rows_duplicate,
        rows_conflicting=written.rows_conflicting,
        rows_quarantined=rejected.height,
        symbols=tuple(sorted(clean.get_column("symbol").unique().to_list())),
        first_ts=first,
        last_ts=last,
        columns=table.columns,
        ignored_columns=tuple(table.ignored),
        filled=parsed.filled,
        close_only=close_only,
        bar_interval=parsed.bar_interval,
        empty_cells=table.empty_cells,
        rules=dict(sorted(rejected.group_by("rule").len().iter_rows())),
        quality=report,
    )


def _validate_rows(
    clean: pl.DataFrame,
    file_rows: pl.Series,
    rejected: pl.DataFrame,
    kind: DataKind,
    lake: Lake,
    config: ValidationConfig,
    source: str,
) -> tuple[pl.DataFrame, pl.DataFrame, QualityReport]:
    """Run the quality rules on parsed rows; their rejects join the structural ones.

    ``file_rows`` holds the file row number of each row of ``clean``, so a rejected row is
    reported under the same row number whichever check rejected it.
    """
    symbols = clean.get_column("symbol").unique().to_list()
    stored = (
        lake.read_corporate_actions(symbols) if kind is not DataKind.CORPORATE_ACTIONS else None
    )
    result = validate(
        clean.with_row_index("_clean_row"),
        kind,
        config,
        corporate_actions=stored if stored is not None and stored.height else None,
        source_label=source,
    )
    failed = result.quarantine.drop("input_row")
    if failed.height:
        failed = failed.select(
            pl.col("_clean_row")
            .replace_strict(
                pl.Series(range(file_rows.len()), dtype=pl.UInt32), file_rows.cast(pl.Int64)
            )
            .alias("row"),
            "rule",
            "reason",
            *[
                pl.col(c).cast(pl.String)
                for c in failed.columns
                if c not in ("_clean_row", "rule", "reason")
            ],
        )
        rejected = pl.concat(
            [
                rejected.with_columns(pl.col("row").cast(pl.Int64)),
                failed.with_columns(pl.col("row").cast(pl.Int64)),
            ],
            how="diagonal_relaxed",
        )
    return result.clean, rejected, result.report
