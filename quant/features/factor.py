"""The market factor: an equal-weighted market return, each symbol's rolling beta to it and its
residual momentum.

The market return at t is the mean of the log returns ``ln(C_t / C_prev)`` of every symbol
that has a bar stamped t (its close ``ts_end``) and a previous bar; a symbol without a trade in
that interval has no bar, so it is left out at t in both modes. It is computable at t: every
input is a bar that closed at t.

- Vectorised: the frame holds all symbols; the return is averaged over rows sharing a stamp.
- Streaming: bars arrive as *slices*, every symbol's bar stamped t together (the bar builder
  publishes all bars of an interval when it closes, LEAN's ``Slice``); the stream keeps each
  symbol's previous close, turns the slice into the market return and hands it to each
  symbol's kernels with its bar (``StreamingFeatures.update_slice``, compiled in
  ``kernels.step_slices``).

The equal-weighted cross-section is meant for time bars, whose stamps line up across
symbols; volume or dollar bars close at their own instants, so give them an index's return
instead: with ``FeaturePipeline(..., market="given")`` the frame (or each event) carries a
``market_return`` column that is used as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from quant.features import kernels
from quant.features.base import (
    MARKET_RETURN,
    POSITION,
    Feature,
    check_window,
    lag,
    per_symbol,
    scratch,
    windowed,
)


def log_return_expr(column: str = "close") -> pl.Expr:
    """One-row log return of ``column`` within the symbol; null on its first row and where the
    return is not finite (a non-positive price), which leaves it out of the market return."""
    c = pl.col(column).cast(pl.Float64)
    r = (c / lag(c)).log()
    return pl.when(r.is_finite()).then(r)


def with_market_return(
    frame: pl.DataFrame, stamp: str = "ts_end", column: str = "close"
) -> pl.DataFrame:
    """``frame`` (all symbols, sorted by symbol then time, with ``POSITION``) with the
    equal-weighted ``market_return`` of the symbols with a bar at each ``stamp``."""
    if POSITION not in frame.columns:
        raise ValueError(f"the frame needs the {POSITION} column (FeaturePipeline adds it)")
    return (
        frame.with_columns(_symbol_return=log_return_expr(column))
        .with_columns(pl.col("_symbol_return").mean().over(stamp).alias(MARKET_RETURN))
        .drop("_symbol_return")
    )


_SUMS = ("sx", "sy", "sxx", "sxy", "flat")


def _beta_sums(window: int, column: str) -> dict[str, pl.Expr]:
    """Rolling sums of the (market, symbol) return pairs over ``window`` rows, as intermediate
    columns: a pair with either return missing makes the window null, as in the kernel."""
    r = log_return_expr(column)
    m = pl.col(MARKET_RETURN).cast(pl.Float64)
    valid = r.is_not_null() & m.is_not_null()
    x = pl.when(valid).then(m)
    y = pl.when(valid).then(r)
    n = window
    stats = (
        per_symbol(x.rolling_sum(n)),
        per_symbol(y.rolling_sum(n)),
        per_symbol((x * x).rolling_sum(n)),
        per_symbol((x * y).rolling_sum(n)),
        # var(m) = 0 exactly, whatever the sums say
        windowed(x.rolling_min(n) == x.rolling_max(n), n),
    )
    return {
        scratch("beta", window, column, name): stat for name, stat in zip(_SUMS, stats, strict=True)
    }


def _beta_from_sums(window: int, column: str) -> pl.Expr:
    """OLS slope (Sxy - Sx Sy / n) / (Sxx - Sx^2 / n); null when var(m) is 0."""
    sx, sy, sxx, sxy, flat = (pl.col(scratch("beta", window, column, k)) for k in _SUMS)
    n = window
    den = sxx - sx * sx / n
    return pl.when(flat | (den <= 0.0)).then(None).otherwise((sxy - sx * sy / n) / den)


@dataclass(frozen=True)
class MarketBeta(Feature):
    """Rolling OLS beta: cov(r, m) / var(m) over the last ``window`` bars, r the symbol's log
    return and m the market return at the same stamps."""

    window: int = 60
    column: str = "close"

    def __post_init__(self) -> None:
        check_window("window", self.window, 2)

    @property
    def name(self) -> str:
        return f"beta_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column, MARKET_RETURN)

    def intermediates(self) -> dict[str, pl.Expr]:
        return _beta_sums(self.window, self.column)

    def expr(self) -> pl.Expr:
        return _beta_from_sums(self.window, self.column)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots[self.column], slots[MARKET_RETURN], self.window]
        return (kernels.OP_BETA, params, 2 + 2 * kernels.window_size(self.window))


@dataclass(frozen=True)
class ResidualMomentum(Feature):
    """Cumulative residual return over the last ``window`` bars: sum of r_s - beta_{s-1} m_s,
    with beta_{s-1} the ``beta_window`` rolling beta as of the bar before s.

    Taking the hedge ratio from before the bar keeps a bar's own shock out of its own residual
    (the in-window OLS residuals would sum to zero by construction); the feature is the
    momentum the market does not explain (Blitz, Huij and Martens 2011, on bars).
    """

    window: int = 20
    beta_window: int = 60
    column: str = "close"

    def __post_init__(self) -> None:
        check_window("window", self.window)
        check_window("beta_window", self.beta_window, 2)

    @property
    def name(self) -> str:
        return f"residual_momentum_{self.window}_{self.beta_window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column, MARKET_RETURN)

    def intermediates(self) -> dict[str, pl.Expr]:
        return _beta_sums(self.beta_window, self.column)

    def expr(self) -> pl.Expr:
        r = log_return_expr(self.column)
        m = pl.col(MARKET_RETURN).cast(pl.Float64)
        residual = r - lag(_beta_from_sums(self.beta_window, self.column)) * m
        return per_symbol(residual.rolling_sum(self.window))

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots[self.column], slots[MARKET_RETURN], self.beta_window, self.window]
        size = 4 + 2 * kernels.window_size(self.beta_window) + kernels.window_size(self.window)
        return (kernels.OP_RESIDUAL_MOMENTUM, params, size)
