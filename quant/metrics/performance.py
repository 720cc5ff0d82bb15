"""Performance statistics of a return series, with the conventions of the open libraries.

Everything here is a plain function over one series of per-period **simple** returns
(``r_t = V_t / V_{t-1} - 1``), so the backtest, the tearsheet, the sweep and a notebook all get
the same number for the same series. The conventions are those of empyrical-reloaded and
quantstats, and the unit tests check agreement with both on real prices:

- **Periods.** Daily returns by default; ``periods_per_year=252`` annualises (BIST has about
  250 sessions a year; 252 is kept because every published figure and library uses it; pass
  your own when it matters). Annualised mean = per-period mean x P; annualised volatility =
  per-period standard deviation x sqrt(P); CAGR = terminal wealth ** (P / n) - 1 with n the
  number of observed periods (not calendar days).
- **Dispersion.** Sample standard deviation (``ddof=1``) everywhere except the higher moments
  (skewness, kurtosis), which are population moments as in Bailey and López de Prado's PSR.
- **Risk-free rate.** ``risk_free`` is a per-period rate (as in empyrical). From an annual
  rate ``y`` use ``(1 + y) ** (1 / P) - 1`` (what quantstats does internally with its annual
  ``rf``).
- **Signs.** Drawdowns, VaR and CVaR are returns: negative numbers are losses.
- **Missing values.** NaN (or null) marks a period with no observation: statistics are computed
  on the observed periods only (as quantstats does; empyrical counts NaN periods in the CAGR
  year count). Series outputs (drawdown, rolling Sharpe) stay aligned with the input: a NaN
  period compounds as a flat period. Infinite returns raise ``ValueError``: they come from a
  division by a zero price or zero equity and must be fixed upstream, not averaged away.
- **Degenerate input.** Too few observations, or a zero denominator, give NaN, never an
  exception, so a tearsheet of a strategy that never traded still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from scipy.special import ndtri
from scipy.stats import norm

TRADING_DAYS_PER_YEAR = 252
"""Default periods per year (daily returns), the convention of empyrical and quantstats."""

ReturnsLike = np.ndarray | pd.Series | pl.Series | Sequence[float]
"""A 1-D series of per-period simple returns: numpy array, pandas or polars Series, or a list."""

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_NAN = float("nan")


# --------------------------------------------------------------------------- input handling


def as_float_array(values: Any, name: str = "returns") -> np.ndarray:
    """A 1-D float64 copy of ``values``; nulls become NaN; infinities raise ``ValueError``."""
    if isinstance(values, pl.Series):
        arr = values.cast(pl.Float64).fill_null(_NAN).to_numpy()
    elif isinstance(values, pd.Series | pd.Index):
        arr = pd.to_numeric(values, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=float)
    arr = np.array(arr, dtype=np.float64, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(np.isinf(arr))
    if bad.size:
        raise ValueError(f"{name} has infinite values at positions {bad[:5].tolist()}")
    return arr


def _observed(returns: ReturnsLike) -> np.ndarray:
    arr = as_float_array(returns)
    return arr[~np.isnan(arr)]


def _wrap_like(template: Any, values: np.ndarray, name: str) -> Any:
    """``values`` in the container type of ``template`` (a pandas index is kept)."""
    if isinstance(template, pl.Series):
        return pl.Series(template.name or name, values, dtype=pl.Float64)
    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index, name=template.name or name)
    return values


# --------------------------------------------------------------------------- moments


def skewness(returns: ReturnsLike) -> float:
    """Population skewness m3 / m2^1.5 (``scipy.stats.skew`` with ``bias=True``)."""
    r = _observed(returns)
    if r.size < 3:
        return _NAN
    d = r - r.mean()
    m2 = np.mean(d**2)
    if m2 <= 0:
        return _NAN
    return float(np.mean(d**3) / m2**1.5)


def kurtosis(returns: ReturnsLike) -> float:
    """Population kurtosis m4 / m2^2, **not** excess: 3 for a normal distribution.

    Non-excess because that is the form the PSR/DSR formulas take (their γ4).
    """
    r = _observed(returns)
    if r.size < 4:
        return _NAN
    d = r - r.mean()
    m2 = np.mean(d**2)
    if m2 <= 0:
        return _NAN
    return float(np.mean(d**4) / m2**2)


# --------------------------------------------------------------------------- return and risk


def total_return(returns: ReturnsLike) -> float:
    """Compounded return over the whole series: prod(1 + r) - 1."""
    r = _observed(returns)
    if r.size == 0:
        return _NAN
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns: ReturnsLike, periods_per_year: float = TRADING_DAYS_PER_YEAR) -> float:
    """Compound annual growth rate: (prod(1 + r)) ** (P / n) - 1, n = observed periods.

    Years are counted in periods (n / P), as empyrical's ``cagr`` and quantstats' ``cagr`` do,
    not in calendar days. Terminal wealth below zero (possible only with returns below -100%)
    has no real growth rate and gives NaN.
    """
    r = _observed(returns)
    if r.size == 0:
        return _NAN
    wealth = float(np.prod(1.0 + r))
    if wealth < 0:
        return _NAN
    return wealth ** (periods_per_year / r.size) - 1.0


def annual_volatility(
    returns: ReturnsLike, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> float:
    """Sample standard deviation (ddof=1) of the returns x sqrt(P)."""
    r = _observed(returns)
    if r.size < 2:
        return _NAN
    return float(np.std(r, ddof=1) * np.sqrt(periods_per_year))


def sharpe_ratio(
    returns: ReturnsLike,
    risk_free: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float:
    """Annualised Sharpe ratio: mean(r - rf) / std(r - rf, ddof=1) x sqrt(P).

    ``risk_free`` is per period. ``periods_per_year=1`` gives the per-period (non-annualised)
    ratio that the probabilistic and deflated Sharpe ratios take. NaN with fewer than two
    observations or no dispersion.
    """
    r = _observed(returns) - risk_free
    if r.size < 2:
        return _NAN
    sd = float(np.std(r, ddof=1))
    if sd == 0 or not np.isfinite(sd):
        return _NAN
    return float(r.mean() / sd * np.sqrt(periods_per_year))


def downside_risk(
    returns: ReturnsLike,
    required_return: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float:
    """Annualised downside deviation: sqrt(mean(min(r - MAR, 0)^2)) x sqrt(P).

    The mean runs over **all** observations, not only the losing ones (Sortino and Price's
    target semideviation, as in empyrical and quantstats).
    """
    r = _observed(returns) - required_return
    if r.size == 0:
        return _NAN
    return float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(periods_per_year))


def sortino_ratio(
    returns: ReturnsLike,
    required_return: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float:
    """Annualised Sortino ratio: mean(r - MAR) x P / downside_risk(r, MAR).

    ``required_return`` (minimum acceptable return) is per period. NaN when there is no
    downside at all (quantstats' choice; empyrical returns inf), so a table of ratios stays
    finite.
    """
    r = _observed(returns)
    if r.size < 2:
        return _NAN
    dr = downside_risk(r, required_return, periods_per_year)
    if not dr > 0:
        return _NAN
    return float(np.mean(r - required_return) * periods_per_year / dr)


def drawdown_series(returns: ReturnsLike) -> Any:
    """Drawdown at each period: wealth / running peak - 1 (0 at a new high, negative below).

    Wealth starts at 1 before the first return, so a loss in the first period is a drawdown
    (empyrical and quantstats anchor the same way). A NaN period compounds as flat. Returned in
    the container type of the input (numpy, pandas with its index, or polars).
    """
    arr = as_float_array(returns)
    wealth = np.cumprod(1.0 + np.nan_to_num(arr, nan=0.0))
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    dd = wealth / peak - 1.0
    return _wrap_like(returns, dd, "drawdown")


def max_drawdown(returns: ReturnsLike) -> float:
    """Worst peak-to-trough loss as a (negative) return; 0 if the series never fell."""
    arr = as_float_array(returns)
    if np.isnan(arr).all():
        return _NAN
    return float(np.min(np.asarray(drawdown_series(arr))))


@dataclass(frozen=True, slots=True)
class DrawdownDuration:
    """How long the series stayed under water, in periods."""

    longest: int
    """Longest run of consecutive periods below the previous peak."""
    current: int
    """Periods below the peak at the end of the series (0 if it ends at a high)."""


def drawdown_duration(returns: ReturnsLike) -> DrawdownDuration:
    """Longest and current drawdown durations, counting periods spent below the running peak.

    A period is under water when its wealth is below the highest wealth so far (the starting
    wealth of 1 included); the run ends at the first period that regains the peak.
    """
    under = np.asarray(drawdown_series(as_float_array(returns))) < 0
    if not under.any():
        return DrawdownDuration(longest=0, current=0)
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return DrawdownDuration(longest=int(runs.max()), current=int(runs[-1]) if under[-1] else 0)


def calmar_ratio(returns: ReturnsLike, periods_per_year: float = TRADING_DAYS_PER_YEAR) -> float:
    """CAGR / |max drawdown|; NaN when there was no drawdown (empyrical's convention)."""
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return _NAN
    return cagr(returns, periods_per_year) / abs(mdd)


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    # 1 - 0.95 is 0.050000000000000044 in binary; rounding keeps tail sizes exact.
    return round(1.0 - confidence, 12)


def value_at_risk(
    returns: ReturnsLike,
    confidence: float = 0.95,
    method: Literal["historical", "parametric"] = "historical",
) -> float:
    """One-period value at risk as a return (negative = loss) at ``confidence``.

    ``historical``: the (1 - confidence) empirical quantile with linear interpolation
    (``numpy.percentile``; empyrical's ``value_at_risk``). ``parametric``: the normal quantile
    with the sample mean and standard deviation (quantstats' variance-covariance VaR).
    """
    alpha = _alpha(confidence)
    r = _observed(returns)
    if r.size == 0:
        return _NAN
    if method == "historical":
        return float(np.percentile(r, 100.0 * alpha))
    if method == "parametric":
        if r.size < 2:
            return _NAN
        return float(r.mean() + np.std(r, ddof=1) * ndtri(alpha))
    raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")


def conditional_value_at_risk(
    returns: ReturnsLike,
    confidence: float = 0.95,
    method: Literal["historical", "parametric"] = "historical",
) -> float:
    """Expected shortfall: the mean return in the worst (1 - confidence) tail (negative = loss).

    ``historical``: the mean of the ``floor((n - 1) * (1 - confidence)) + 1`` lowest returns
    (empyrical's definition; quantstats' ``method="historical"`` gives the same tail unless
    returns tie at the cut). ``parametric``: the closed-form normal expected shortfall
    mu - sigma * phi(z) / alpha (quantstats' default).
    """
    alpha = _alpha(confidence)
    r = _observed(returns)
    if r.size == 0:
        return _NAN
    if method == "historical":
        k = int((r.size - 1) * alpha)
        return float(np.mean(np.partition(r, k)[: k + 1]))
    if method == "parametric":
        if r.size < 2:
            return _NAN
        sd = float(np.std(r, ddof=1))
        return float(r.mean() - sd * norm.pdf(ndtri(alpha)) / alpha)
    raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")


# --------------------------------------------------------------------------- trading figures


def hit_ratio(returns: ReturnsLike) -> float:
    """Share of winning periods among periods that moved: #(r > 0) / #(r != 0).

    Flat periods (no position) are left out, as in quantstats' ``win_rate``. Pass per-trade
    PnL instead of period returns to get the hit ratio of trades.
    """
    r = _observed(returns)
    moved = r[r != 0]
    if moved.size == 0:
        return _NAN
    return float(np.count_nonzero(moved > 0) / moved.size)


def profit_factor(returns: ReturnsLike) -> float:
    """Sum of gains / |sum of losses|; inf with gains and no losses; NaN with neither.

    Works on period returns (quantstats' ``profit_factor``) or on per-trade PnL.
    """
    r = _observed(returns)
    gains = float(r[r > 0].sum())
    losses = float(-r[r < 0].sum())
    if losses == 0:
        return float("inf") if gains > 0 else _NAN
    return gains / losses


def turnover(
    traded_value: ReturnsLike,
    portfolio_value: ReturnsLike,
    periods_per_year: float | None = None,
) -> float:
    """Average two-sided turnover: mean over periods of traded notional / portfolio value.

    ``traded_value`` is the absolute notional bought plus sold in each period (TRY) and
    ``portfolio_value`` the equity it is measured against (same length). Two-sided: a full
    switch from one stock to another is 2.0 (halve it for the one-sided convention). With
    ``periods_per_year`` the figure is annualised (x P). Periods with NaN or non-positive
    equity are skipped.
    """
    traded = as_float_array(traded_value, "traded_value")
    equity = as_float_array(portfolio_value, "portfolio_value")
    if traded.shape != equity.shape:
        raise ValueError(f"traded_value {traded.shape} and portfolio_value {equity.shape} differ")
    ok = ~np.isnan(traded) & ~np.isnan(equity) & (equity > 0)
    if not ok.any():
        return _NAN
    per_period = float(np.mean(np.abs(traded[ok]) / equity[ok]))
    return per_period * periods_per_year if periods_per_year else per_period


def exposure(positions: Any, portfolio_value: ReturnsLike, net: bool = False) -> np.ndarray:
    """Exposure per period as a fraction of equity: gross sum(|v|) or net sum(v).

    ``positions`` holds signed position market values (TRY): 1-D (one instrument, or an
    already-summed book) or 2-D (periods x instruments). Returns a float array aligned with
    ``portfolio_value``; periods with non-positive equity give NaN.
    """
    if isinstance(positions, pl.DataFrame | pd.DataFrame):
        pos = positions.to_numpy().astype(float)
    elif np.ndim(positions) == 1:
        pos = as_float_array(positions, "positions")
    else:
        pos = np.asarray(positions, dtype=float)
    equity = as_float_array(portfolio_value, "portfolio_value")
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.shape[0] != equity.shape[0]:
        raise ValueError(f"{pos.shape[0]} position rows for {equity.shape[0]} equity values")
    book = np.nansum(pos, axis=1) if net else np.nansum(np.abs(pos), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(equity > 0, book / equity, np.nan)


def time_in_market(returns: ReturnsLike) -> float:
    """Share of observed periods with a non-zero return (quantstats' ``exposure``, unrounded)."""
    r = _observed(returns)
    if r.size == 0:
        return _NAN
    return float(np.count_nonzero(r) / r.size)


# --------------------------------------------------------------------------- series for reports


def rolling_sharpe(
    returns: ReturnsLike,
    window: int = 126,
    risk_free: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> Any:
    """Annualised Sharpe ratio over a trailing window of ``window`` periods.

    The first ``window - 1`` values, and any window that contains a NaN, are NaN. Returned in
    the container type of the input. Matches quantstats' ``rolling_sharpe`` (126 periods,
    about six months, by default).
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    arr = as_float_array(returns) - risk_free
    out = np.full(arr.shape, np.nan)
    n = arr.size
    if n >= window:
        missing = np.isnan(arr)
        # Centring on the overall mean keeps the running sums well conditioned; the variance
        # is shift-invariant and the centre is added back to the window means.
        centre = float(arr[~missing].mean()) if (~missing).any() else 0.0
        x = np.where(missing, 0.0, arr - centre)
        c1 = np.concatenate(([0.0], np.cumsum(x)))
        c2 = np.concatenate(([0.0], np.cumsum(x * x)))
        cn = np.concatenate(([0], np.cumsum(missing)))
        s1 = c1[window:] - c1[:-window]
        s2 = c2[window:] - c2[:-window]
        nan_in = (cn[window:] - cn[:-window]) > 0
        sd = np.sqrt(np.maximum(s2 - s1 * s1 / window, 0.0) / (window - 1))
        mean = s1 / window + centre
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = np.where((sd > 0) & ~nan_in, mean / sd * np.sqrt(periods_per_year), np.nan)
        out[window - 1 :] = vals
    return _wrap_like(returns, out, "rolling_sharpe")


def _timestamps_of(returns: Any, timestamps: Any) -> pl.Series:
    """UTC ``Datetime(ns)`` time stamps for each return, from the argument or a pandas index."""
    if timestamps is None:
        if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex):
            timestamps = returns.index
        else:
            raise ValueError(
                "monthly_returns needs time stamps: pass timestamps= or a pandas Series "
                "with a DatetimeIndex"
            )
    if isinstance(timestamps, pd.DatetimeIndex | pd.Series):
        idx = pd.DatetimeIndex(timestamps)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        ns = idx.as_unit("ns").asi8
        return pl.Series("ts", ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    if isinstance(timestamps, pl.Series):
        if timestamps.dtype.is_integer():
            return timestamps.cast(pl.Int64).cast(pl.Datetime("ns", "UTC")).alias("ts")
        if isinstance(timestamps.dtype, pl.Datetime):
            s = timestamps.cast(pl.Datetime("ns", timestamps.dtype.time_zone))
            s = s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s
            return s.dt.convert_time_zone("UTC").alias("ts")
        if timestamps.dtype == pl.Date:
            return timestamps.cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias("ts")
        raise ValueError(f"unsupported time stamp dtype {timestamps.dtype}")
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.integer):
        return pl.Series("ts", arr.astype(np.int64)).cast(pl.Datetime("ns", "UTC"))
    return _timestamps_of(returns, pd.DatetimeIndex(arr))


def monthly_returns(
    returns: ReturnsLike,
    timestamps: Any = None,
    time_zone: str = "UTC",
) -> pl.DataFrame:
    """Compounded returns per calendar month: one row per year, columns ``Jan`` .. ``Dec``.

    The table behind the tearsheet's heat map. ``timestamps`` (one per return: datetimes,
    polars/pandas datetimes, or UTC nanosecond ints) are needed unless ``returns`` is a pandas
    Series with a ``DatetimeIndex``; naive times are taken as UTC and months are cut in
    ``time_zone``. A month with no observation is null (quantstats writes 0, which reads as a
    flat month that never happened). ``year`` is the compounded return of the year's observed
    periods. NaN returns are skipped.
    """
    r = as_float_array(returns)
    ts = _timestamps_of(returns, timestamps)
    if ts.len() != r.size:
        raise ValueError(f"{ts.len()} time stamps for {r.size} returns")
    frame = (
        pl.DataFrame({"ts": ts, "r": r})
        .with_columns(pl.col("r").fill_nan(None), pl.col("ts").dt.convert_time_zone(time_zone))
        .drop_nulls("r")
        .with_columns(pl.col("ts").dt.year().alias("year"), pl.col("ts").dt.month().alias("month"))
    )
    schema = {"year": pl.Int32, **dict.fromkeys(MONTHS, pl.Float64), "year_total": pl.Float64}
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    growth = ((pl.col("r") + 1.0).product() - 1.0).alias("ret")
    by_month = frame.group_by("year", "month").agg(growth)
    by_year = frame.group_by("year").agg(growth.alias("year_total"))
    table = (
        by_month.with_columns(
            pl.col("month").replace_strict(dict(enumerate(MONTHS, start=1)), return_dtype=pl.String)
        )
        .pivot(on="month", index="year", values="ret")
        .join(by_year, on="year")
    )
    for m in MONTHS:
        if m not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(m))
    return table.select(list(schema)).cast(schema).sort("year")


# --------------------------------------------------------------------------- summary


def summary_stats(
    returns: ReturnsLike,
    *,
    risk_free: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
    confidence: float = 0.95,
) -> dict[str, float | int]:
    """The headline figures of a return series, keyed by name, for reports and the CLI.

    All figures follow the module conventions (per-period ``risk_free``; Sharpe and Sortino
    annualised; drawdowns, VaR and CVaR as negative returns; kurtosis non-excess;
    ``psr`` = probability that the true Sharpe ratio exceeds zero).
    """
    from quant.metrics.overfitting import probabilistic_sharpe_ratio  # imports this module

    r = _observed(returns)
    dur = drawdown_duration(r)
    return {
        "n_periods": int(r.size),
        "total_return": total_return(r),
        "cagr": cagr(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe_ratio": sharpe_ratio(r, risk_free, periods_per_year),
        "sortino_ratio": sortino_ratio(r, risk_free, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "calmar_ratio": calmar_ratio(r, periods_per_year),
        "longest_drawdown_periods": dur.longest,
        "current_drawdown_periods": dur.current,
        "value_at_risk": value_at_risk(r, confidence),
        "conditional_value_at_risk": conditional_value_at_risk(r, confidence),
        "hit_ratio": hit_ratio(r),
        "profit_factor": profit_factor(r),
        "time_in_market": time_in_market(r),
        "skewness": skewness(r),
        "kurtosis": kurtosis(r),
        "psr": probabilistic_sharpe_ratio(r, risk_free=risk_free),
    }
