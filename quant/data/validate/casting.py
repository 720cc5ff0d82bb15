"""Reading the input as the lake schema: the whole-input SCHEMA check and the casts.

Values that cannot be read become null and are flagged (``_v_schema_<col>``) for the SCHEMA
rule; the original values are kept (``_v_orig_<col>``) so that the quarantine shows the rows
as they were received.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import polars as pl

from quant.data.schema import DataKind, polars_schema

PREFIX = "_v_"
"""Prefix of the helper columns validation adds (reserved: an input column may not use it)."""
QUARANTINE_COLUMNS = ("rule", "reason", "input_row")
"""Columns the quarantine adds to the input's own columns."""


@functools.cache
def lake_schema(kind: DataKind) -> pl.Schema:
    """The lake schema of ``kind``, built once (callers must not modify it)."""
    return polars_schema(kind)


def check_columns(columns: Sequence[str], kind: DataKind, reserved: bool = True) -> None:
    """The whole-input SCHEMA check: every schema column present, no name clash with ours."""
    missing = [c for c in lake_schema(kind).names() if c not in columns]
    if missing:
        raise ValueError(f"SCHEMA: {kind} data is missing required column(s): {', '.join(missing)}")
    clash = [c for c in columns if c in QUARANTINE_COLUMNS or c.startswith(PREFIX)]
    if clash and reserved:
        raise ValueError(f"SCHEMA: input column name(s) reserved by validation: {', '.join(clash)}")


_CASTABLE = (
    pl.Boolean,
    pl.String,
    pl.Null,
    pl.Date,
    pl.Datetime,
    pl.Categorical,
    pl.Enum,
    pl.Decimal,
)


def _castable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or isinstance(dtype, _CASTABLE) or dtype in _CASTABLE


def as_utc(series: pl.Series) -> pl.Series:
    """Any timestamp-like column as Datetime(ns, UTC); unreadable values become null.

    Naive timestamps are taken as UTC (as ``TradingCalendar.phase_at`` does); integers are
    nanoseconds since the epoch; strings are parsed with polars' format inference.
    """
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        out = series
    elif dtype == pl.String:
        try:
            out = series.str.to_datetime(time_unit="ns", strict=False)
        except pl.exceptions.PolarsError:
            out = pl.Series(series.name, [None] * series.len(), dtype=pl.Datetime("ns"))
    elif dtype == pl.Date:
        out = series.cast(pl.Datetime("ns"))
    else:
        out = series.cast(pl.Int64, strict=False).cast(pl.Datetime("ns"))
    assert isinstance(out.dtype, pl.Datetime)
    if out.dtype.time_zone is None:
        out = out.dt.replace_time_zone("UTC")
    elif out.dtype.time_zone != "UTC":
        out = out.dt.convert_time_zone("UTC")
    return out.dt.cast_time_unit("ns").alias(series.name)


def cast(frame: pl.DataFrame, kind: DataKind) -> tuple[pl.DataFrame, list[str]]:
    """Cast schema columns to the lake types, keeping originals of the columns that changed.

    Returns the frame with typed schema columns, ``_v_schema_<col>`` flags for values that could
    not be read, ``_v_orig_<col>`` with the original values (for the quarantine), and the list of
    columns that needed a cast. Data already in the lake types passes through untouched.
    """
    check_columns(frame.columns, kind, reserved=False)
    schema = lake_schema(kind)
    bad_types = [
        f"{c} ({frame.schema[c]})" for c in schema.names() if not _castable(frame.schema[c])
    ]
    if bad_types:
        raise ValueError(f"SCHEMA: column(s) of a type that cannot be read: {', '.join(bad_types)}")
    cast_columns = [c for c, target in schema.items() if frame.schema[c] != target]
    if not cast_columns:
        return frame, []
    typed: list[pl.Series] = []
    flags: list[pl.Expr] = []
    for name in cast_columns:
        target, source = schema[name], frame.schema[name]
        col = frame[name]
        if isinstance(target, pl.Datetime):
            typed.append(as_utc(col))
        elif target.is_integer() and source.is_float():
            whole = pl.col(name).is_finite() & (pl.col(name) == pl.col(name).floor())
            typed.append(
                frame.select(pl.when(whole).then(pl.col(name)).cast(target, strict=False))
                .to_series()
                .alias(name)
            )
        else:
            typed.append(col.cast(target, strict=False))
        orig = pl.col(f"{PREFIX}orig_{name}")
        if target.is_integer() and source.is_float():
            # NaN/inf are NULL findings; a fraction cannot be read as an integer.
            flag = orig.is_finite() & (orig != orig.floor())
        else:
            flag = orig.is_not_null() & pl.col(name).is_null()
        flags.append(flag.fill_null(False).alias(f"{PREFIX}schema_{name}"))
    out = frame.with_columns([frame[c].alias(f"{PREFIX}orig_{c}") for c in cast_columns] + typed)
    return out.with_columns(flags), cast_columns
