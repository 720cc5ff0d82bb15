"""The rules that apply to corporate actions: SCHEMA, NULL, NON_POSITIVE, HOLIDAY, DUPLICATE.

Corporate actions are few and have no intraday structure, so they are checked in one polars
pass per chunk rather than through the stages of market data.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from quant.data.schema import KEYS, CorporateActionKind, DataKind
from quant.data.validate.calendar import Calendar
from quant.data.validate.casting import cast, lake_schema
from quant.data.validate.checks.base import Check, any_broken, first_reason, fmt
from quant.data.validate.checks.row import schema_checks
from quant.data.validate.quarantine import quarantine_rows, split
from quant.data.validate.report import NULL_SYMBOL, rule_counts
from quant.data.validate.rules import RuleCode, ValidationConfig


def check_corporate_actions(
    raw: pl.DataFrame,
    config: ValidationConfig,
    calendar: Calendar | None,
    input_columns: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """SCHEMA, NULL, NON_POSITIVE, HOLIDAY and DUPLICATE for a chunk of corporate actions (with
    an ``input_row`` column): (clean, quarantine, stats)."""
    frame, cast_columns = cast(raw, DataKind.CORPORATE_ACTIONS)
    kinds = [k.value for k in CorporateActionKind]
    checks = schema_checks(DataKind.CORPORATE_ACTIONS, cast_columns)
    checks.append(
        Check(
            RuleCode.SCHEMA,
            ~pl.col("kind").is_in(kinds),
            pl.format("kind '{}' is not one of {}", fmt(pl.col("kind")), pl.lit(", ".join(kinds))),
        )
    )
    checks += [
        Check(RuleCode.NULL, pl.col(c).is_null(), pl.lit(f"{c} is null"))
        for c in ("symbol", "ex_date", "kind")
    ]
    needs = [
        ("split", "ratio"),
        ("bonus", "ratio"),
        ("rights", "ratio"),
        ("rights", "price"),
        ("dividend", "amount"),
    ]
    checks += [
        Check(
            RuleCode.NULL,
            (pl.col("kind") == k) & ~pl.col(c).is_finite().fill_null(False),
            pl.format("{} of a {} is {}", pl.lit(c), pl.lit(k), fmt(pl.col(c))),
        )
        for k, c in needs
    ]
    if config.enabled(RuleCode.NON_POSITIVE):
        checks += [
            Check(
                RuleCode.NON_POSITIVE,
                pl.col(c) <= 0,
                pl.format("{} {} is not positive", pl.lit(c), fmt(pl.col(c))),
            )
            for c in ("ratio", "price", "amount")
        ]
    if calendar is not None and config.enabled(RuleCode.HOLIDAY):
        closed = [
            d
            for d in frame["ex_date"].drop_nulls().unique().to_list()
            if calendar.facts(d).in_range and not calendar.facts(d).is_session
        ]
        checks.append(
            Check(
                RuleCode.HOLIDAY,
                pl.col("ex_date").is_in(pl.Series(closed, dtype=pl.Date).implode()),
                pl.format(
                    "ex-date {} is not a {} session",
                    fmt(pl.col("ex_date")),
                    pl.lit(calendar.name),
                ),
            )
        )
    passed, bad = split(frame, any_broken(checks))
    rule, reason = first_reason(checks)
    bad = bad.with_columns(rule.alias("rule"), reason.alias("reason"))
    if config.enabled(RuleCode.DUPLICATE) and passed.height:
        keys = list(KEYS[DataKind.CORPORATE_ACTIONS])
        passed, dups = split(passed, ~pl.struct(keys).is_first_distinct())
        dups = dups.with_columns(
            pl.lit(RuleCode.DUPLICATE.value).alias("rule"),
            pl.format(
                "same key ({}) = ({}) as an earlier row",
                pl.lit(", ".join(keys)),
                pl.concat_str([fmt(pl.col(k)) for k in keys], separator=", "),
            ).alias("reason"),
        )
        bad = pl.concat([bad, dups], how="diagonal_relaxed")
    quarantine = quarantine_rows(bad, input_columns, cast_columns).sort("input_row")
    clean = passed.select(lake_schema(DataKind.CORPORATE_ACTIONS).names())
    symbol = pl.col("symbol").cast(pl.String).fill_null(NULL_SYMBOL)
    rows = pl.concat(
        [
            passed.select(
                symbol, pl.col("ex_date").alias("day"), pl.lit(None, pl.String).alias("rule")
            ),
            bad.select(symbol, pl.col("ex_date").alias("day"), pl.col("rule")),
        ]
    )
    clean_rows = pl.col("rule").is_null().sum().cast(pl.Int64)
    stats = rows.group_by("symbol", "day", maintain_order=True).agg(rule_counts(clean_rows))
    return clean, quarantine, stats
