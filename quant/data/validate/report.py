"""Counts per symbol-day and the quality report built from them.

Each chunk contributes a small frame of counts per symbol-day (rows, clean, rejected and
unchecked by rule, missing); the report sums them, so a chunked run reports exactly what an
in-memory run would.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from quant.data.quality_report import QualityReport, SymbolDayQuality
from quant.data.schema import DataKind
from quant.data.validate.casting import PREFIX
from quant.data.validate.groups import Groups
from quant.data.validate.rules import CODE, PRECEDENCE, QUARANTINE_RULES, RuleCode, ValidationConfig

NULL_SYMBOL = "<null>"
"""The symbol under which rows without one are counted."""


def chunk_stats(
    groups: Groups,
    rejected: pl.DataFrame | None,
    unplaced: pl.DataFrame | None,
    unchecked: dict[RuleCode, np.ndarray],
    missing: np.ndarray,
    tz: ZoneInfo | None,
) -> pl.DataFrame:
    """Counts per symbol-day: rows, clean, rejected and unchecked by rule, missing."""
    n = groups.n
    per_rule = np.zeros((n, len(PRECEDENCE) + 1), dtype=np.int64)
    if rejected is not None and rejected.height:
        g = rejected[f"{PREFIX}gid"].to_numpy()
        k = rejected["rule"].replace_strict({r.value: i for r, i in CODE.items()}).to_numpy()
        np.add.at(per_rule, (g, k), 1)
    cols: dict[str, Any] = {
        "symbol": pl.Series(groups.symbols, dtype=pl.String),
        "day": pl.Series(groups.days, dtype=pl.Date),
        "rows": pl.Series(groups.rows, dtype=pl.Int64),
        "clean": pl.Series(groups.rows - per_rule.sum(axis=1), dtype=pl.Int64),
        "missing": pl.Series(missing, dtype=pl.Int64),
    }
    for rule in QUARANTINE_RULES:
        cols[f"rej_{rule.value}"] = pl.Series(per_rule[:, CODE[rule]], dtype=pl.Int64)
        u = unchecked.get(rule)
        cols[f"unc_{rule.value}"] = pl.Series(
            u if u is not None else np.zeros(n, dtype=np.int64), dtype=pl.Int64
        )
    stats = pl.DataFrame(cols)
    if unplaced is not None and unplaced.height:
        # Rows with no symbol or no timestamp: one entry per symbol (or "<null>") and day.
        day = (
            pl.col("ts").dt.convert_time_zone(tz.key).dt.date()
            if tz is not None
            else pl.col("ts").dt.date()
        )
        extra = unplaced.group_by(
            pl.col("symbol").cast(pl.String).fill_null(NULL_SYMBOL).alias("symbol"),
            day.alias("day"),
            maintain_order=True,
        ).agg(rule_counts(clean=pl.lit(0, pl.Int64)))
        stats = pl.concat([stats, extra.select(stats.columns)], how="vertical_relaxed")
    return stats


def rule_counts(clean: pl.Expr) -> list[pl.Expr]:
    """Aggregations giving the stats columns of rows that carry a ``rule`` column (null: clean)
    per group; ``clean`` counts the clean rows."""
    agg = [
        pl.len().cast(pl.Int64).alias("rows"),
        clean.alias("clean"),
        pl.lit(0, pl.Int64).alias("missing"),
    ]
    for rule in QUARANTINE_RULES:
        agg += [
            (pl.col("rule") == rule.value).sum().cast(pl.Int64).alias(f"rej_{rule.value}"),
            pl.lit(0, pl.Int64).alias(f"unc_{rule.value}"),
        ]
    return agg


def combined_stats(parts: list[pl.DataFrame]) -> pl.DataFrame | None:
    """The chunks' counts summed per symbol-day; None when there are none."""
    stats = pl.concat(parts, how="vertical_relaxed") if parts else None
    if stats is None or not stats.height:
        return None
    return stats.group_by("symbol", "day", maintain_order=True).sum()


def symbol_day_records(stats: pl.DataFrame) -> list[SymbolDayQuality]:
    """One report record per row of ``combined_stats``."""
    symbol_days: list[SymbolDayQuality] = []
    names = [r.value for r in QUARANTINE_RULES]
    rejected = _by_row(names, stats.select([f"rej_{n}" for n in names]).to_numpy())
    unchecked = _by_row(names, stats.select([f"unc_{n}" for n in names]).to_numpy())
    columns = zip(
        stats["symbol"].to_list(),
        stats["day"].to_list(),
        stats["rows"].to_list(),
        stats["clean"].to_list(),
        stats["missing"].to_list(),
        strict=True,
    )
    for i, (symbol, day, rows, clean, missing) in enumerate(columns):
        # Counts come from validation itself, so the records skip pydantic's validation.
        symbol_days.append(
            SymbolDayQuality.model_construct(
                symbol=symbol,
                day=day,
                rows=rows,
                clean=clean,
                rejected=rejected[i],
                missing=missing,
                missing_session=False,
                unchecked=unchecked[i],
            )
        )
    return symbol_days


def quality_report(
    kind: DataKind,
    config: ValidationConfig,
    symbol_days: list[SymbolDayQuality],
    samples: dict[str, list[dict[str, Any]]],
    interval_ns: int | None,
    source_label: str,
    synthetic: bool,
) -> QualityReport:
    """The report of a run: ``symbol_days`` in (symbol, day) order, rules and settings used."""
    keys = [(d.symbol, d.day or date.max) for d in symbol_days]
    order = sorted(range(len(symbol_days)), key=keys.__getitem__)
    symbol_days = [symbol_days[i] for i in order]
    interval = str(timedelta(microseconds=interval_ns / 1000)) if interval_ns else None
    return QualityReport(
        kind=kind.value,
        source_label=source_label,
        synthetic=synthetic,
        rules={r.value: r.description for r in PRECEDENCE if config.enabled(r)},
        config=config.summary() | {"bar_interval_used": interval},
        symbol_days=symbol_days,
        samples={r.value: samples[r.value] for r in PRECEDENCE if r.value in samples},
    )


def _by_row(names: list[str], counts: np.ndarray) -> list[dict[str, int]]:
    """Per row of ``counts`` (rows x names): the non-zero counts by name, in name order.

    Column by column, so the Python work follows the non-zero entries, not the rows.
    """
    out: list[dict[str, int]] = [{} for _ in range(counts.shape[0])]
    for j, name in enumerate(names):
        rows = np.flatnonzero(counts[:, j])
        for i, value in zip(rows.tolist(), counts[rows, j].tolist(), strict=True):
            out[i][name] = value
    return out
