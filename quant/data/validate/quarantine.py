"""The quarantine: rejected rows as received, with the rule they broke and a reason.

Nothing is dropped silently: each rejected row keeps its original columns (values as read,
before any cast) plus ``rule``, ``reason`` and ``input_row`` (0-based position in the input).
The report keeps a few rows per rule as samples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate.calendar import DayFacts
from quant.data.validate.casting import PREFIX, lake_schema
from quant.data.validate.checks.base import Finding
from quant.data.validate.checks.row import RowChecks
from quant.data.validate.groups import Groups, PerGroup, to_dates
from quant.data.validate.rules import CODE, ROW_LEVEL


def quarantine_schema(raw: pl.DataFrame, input_columns: Sequence[str]) -> pl.Schema:
    """The quarantine's columns for an input shaped like ``raw``."""
    template = raw.head(0).select(
        *input_columns,
        pl.lit(None, pl.String).alias("rule"),
        pl.lit(None, pl.String).alias("reason"),
        pl.lit(None, pl.Int64).alias("input_row"),
    )
    return template.schema


def empty_quarantine(kind: DataKind, schema: pl.Schema | None) -> pl.DataFrame:
    """No rejected rows, with the columns the quarantine has for this input (``schema``), or
    for an input of exactly the lake schema when no input was seen."""
    if schema is not None:
        return pl.DataFrame(schema=schema)
    columns = dict(lake_schema(kind))
    columns.update({"rule": pl.String, "reason": pl.String, "input_row": pl.Int64})
    return pl.DataFrame(schema=columns)


def quarantine_rows(
    rejected: pl.DataFrame, input_columns: Sequence[str], cast_columns: Sequence[str]
) -> pl.DataFrame:
    """Rejected rows as received: original columns + rule, reason, input_row."""
    cols = [
        pl.col(f"{PREFIX}orig_{c}").alias(c) if c in cast_columns else pl.col(c)
        for c in input_columns
    ]
    return rejected.select(*cols, pl.col("rule"), pl.col("reason"), pl.col("input_row"))


def label_rejected(
    frame: pl.DataFrame,
    cast_columns: Sequence[str],
    rejected_sorted: np.ndarray,
    rejected_input: np.ndarray,
    code: np.ndarray,
    flags: dict[str, np.ndarray | PerGroup],
    findings: list[Finding],
    groups: Groups,
    facts: list[DayFacts] | None,
    day: np.ndarray,
    tod: np.ndarray,
    first_row: int | None,
    row_checks: RowChecks,
) -> pl.DataFrame | None:
    """The rejected rows (input order) with their rule, reason and symbol-day.

    Row-level rejections are worded here, on the rejected rows only, by the first check each
    breaks; the other stages' ``findings`` carry their own reasons.
    """
    if rejected_input.size == 0:
        return None
    rows = frame[rejected_input].with_columns(
        pl.Series(f"{PREFIX}gid", groups.gid[rejected_sorted], dtype=pl.Int64)
    )
    if "input_row" not in rows.columns:
        assert first_row is not None
        rows = rows.with_columns(pl.Series("input_row", first_row + rejected_input, dtype=pl.Int64))
    k = f"{PREFIX}k"
    parts: list[pl.DataFrame] = []
    row_level = np.flatnonzero(code[rejected_sorted] == ROW_LEVEL)
    if row_level.size:
        sub_sorted = rejected_sorted[row_level]
        sub = rows[row_level].with_columns(
            [pl.Series(f"{PREFIX}{name}", f[sub_sorted]) for name, f in flags.items()]
            + [
                pl.Series(f"{PREFIX}day", to_dates(day[rejected_input[row_level]]), pl.Date),
                pl.Series(f"{PREFIX}tod", tod[rejected_input[row_level]], pl.Int64),
            ]
        )
        sub = row_checks.reason_columns(sub, groups, facts)
        rule, reason = row_checks.reasons(cast_columns, facts is not None)
        parts.append(
            sub.select(
                pl.Series(k, row_level, dtype=pl.Int64),
                rule.alias("rule"),
                reason.alias("reason"),
            )
        )
    # Findings are in sorted space; ``rows`` are in input order.
    names = {v: r.value for r, v in CODE.items()}
    by_sorted = np.argsort(rejected_sorted)
    ascending = rejected_sorted[by_sorted]
    for f in findings:
        if not f.positions.size:
            continue
        where = by_sorted[np.searchsorted(ascending, f.positions)]
        parts.append(
            pl.DataFrame(
                {
                    k: pl.Series(where, dtype=pl.Int64),
                    "rule": pl.Series([names[c] for c in f.codes.tolist()], dtype=pl.String),
                    "reason": f.reasons.cast(pl.String),
                }
            )
        )
    labels = pl.concat(parts).sort(k)
    return rows.with_columns(labels["rule"], labels["reason"])


def add_samples(samples: dict[str, list[dict[str, Any]]], quarantine: pl.DataFrame, n: int) -> None:
    """Keep up to ``n`` rejected rows per rule (JSON-friendly) in ``samples``."""
    if not n or not quarantine.height:
        return
    for rule in quarantine["rule"].unique().sort().to_list():
        have = samples.setdefault(rule, [])
        if len(have) < n:
            rows = quarantine.filter(pl.col("rule") == rule).head(n - len(have))
            have.extend(
                {k: _jsonable(v) for k, v in row.items()} for row in rows.iter_rows(named=True)
            )


_SLICE_LIMIT = 64
"""Up to this many rejected rows, clean rows are taken as slices between them (no copy)."""


def without(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """``frame`` without the rows at ``rows`` (ascending positions)."""
    if rows.size == 0:
        return frame
    if rows.size > _SLICE_LIMIT:
        keep = np.ones(frame.height, dtype=bool)
        keep[rows] = False
        return frame.filter(pl.Series(keep))
    bounds = np.r_[-1, rows, frame.height].tolist()
    pieces = [frame.slice(a + 1, b - a - 1) for a, b in itertools.pairwise(bounds) if b - a > 1]
    return pl.concat(pieces) if pieces else frame.clear()


def split(frame: pl.DataFrame, mask: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows where ``mask`` is False or null, rows where it is True)."""
    flag = frame.select(mask.fill_null(False)).to_series()
    if not flag.any():
        return frame, frame.clear()
    return frame.filter(~flag), frame.filter(flag)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
