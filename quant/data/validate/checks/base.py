"""What a check is, what a stage finds, and the text helpers every reason uses.

Row-level rules are declarative ``Check``s: a polars mask and a reason expression, with an
optional numpy shortcut for the mask. The mask runs on every row; the reason only on the
rejected ones. Stages that compare rows with each other return ``Finding``s instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quant.data.validate.groups import Columns
from quant.data.validate.rules import RuleCode


@dataclass
class Check:
    """One way to break a rule: a mask (True = broken) and the reason text for such rows.

    ``flag`` names a numpy-computed flag (tick grid, calendar): the mask then reads that column,
    which exists only on the rejected rows; other checks are polars expressions over any row.
    """

    rule: RuleCode
    mask: pl.Expr
    reason: pl.Expr
    flag: str | None = None
    null_of: str | None = None
    """Set when the check is "column is null": it cannot fire on a column without nulls."""
    fast: Callable[[Columns], np.ndarray] | None = None
    """The same mask from numpy columns in sorted order, exact on rows without nulls (a row
    with a null is caught by the null check of that column anyway)."""
    domain: tuple[str, tuple[Any, ...]] | None = None
    """(column, allowed values) when the check is "value not among these" on a text column:
    only rows that differ from the first (most common) value need the membership test."""


@dataclass
class Finding:
    """Rows a stage rejected: sorted positions, rule codes and reasons."""

    positions: np.ndarray
    codes: np.ndarray
    reasons: pl.Series


def fmt(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).fill_null("null")


def first_reason(checks: Sequence[Check]) -> tuple[pl.Expr, pl.Expr]:
    """When-chains giving the first broken rule and its reason (evaluated on rejected rows)."""
    rule: Any = pl
    reason: Any = pl
    for c in checks:
        rule = rule.when(c.mask.fill_null(False)).then(pl.lit(c.rule.value))
        reason = reason.when(c.mask.fill_null(False)).then(c.reason)
    if not checks:
        return pl.lit(None, pl.String), pl.lit(None, pl.String)
    return rule.otherwise(pl.lit(None, pl.String)), reason.otherwise(pl.lit(None, pl.String))


def any_broken(checks: Sequence[Check]) -> pl.Expr:
    """True where a row breaks any of ``checks``."""
    expr = pl.lit(False)
    for c in checks:
        expr = expr | c.mask.fill_null(False)
    return expr


def ts_fmt(expr: pl.Expr) -> pl.Expr:
    """A UTC timestamp as text, with as many fractional digits as it needs."""
    text = expr.dt.strftime("%Y-%m-%d %H:%M:%S%.9f").str.replace(r"\.?0+$", "")
    return (text + pl.lit(" UTC")).fill_null("null")
