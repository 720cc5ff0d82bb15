"""Realised volatility estimators over a rolling window of n bars, per bar (not annualised).

Range-based estimators use each bar's open, high, low and close, and reach a given precision
with several times fewer bars than close-to-close; Yang-Zhang also accounts for the gap
between one bar's close and the next bar's open (the overnight return on daily bars). Notation:
O, H, L, C of bar i, C_{i-1} the previous bar's close, sums over the last n bars.

- Close-to-close: sigma^2 = 1/(n-1) sum (r_i - rbar)^2, r_i = ln(C_i / C_{i-1}).
- Parkinson (1980): sigma^2 = 1/(4 n ln 2) sum ln(H_i / L_i)^2.
- Garman and Klass (1980): sigma^2 = 1/n sum [ 1/2 ln(H_i/L_i)^2 - (2 ln 2 - 1) ln(C_i/O_i)^2 ].
- Yang and Zhang (2000): sigma^2 = sigma_o^2 + k sigma_c^2 + (1 - k) sigma_rs^2 where
  sigma_o^2 is the sample variance (ddof 1) of o_i = ln(O_i / C_{i-1}), sigma_c^2 that of
  c_i = ln(C_i / O_i), sigma_rs^2 = 1/n sum [ln(H/C) ln(H/O) + ln(L/C) ln(L/O)] (Rogers and
  Satchell 1991) and k = 0.34 / (1.34 + (n + 1)/(n - 1)).

Each returns sigma (the square root). Estimators needing the previous close (close-to-close,
Yang-Zhang) are null for the first n bars, the others for the first n - 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from quant.features import kernels
from quant.features.base import Feature, check_window, lag, per_symbol, windowed

_O, _H, _L, _C = (pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close"))


def _sqrt_non_negative(var: pl.Expr) -> pl.Expr:
    """sqrt, with a variance a rounding error made negative read as 0."""
    return var.clip(lower_bound=0.0).sqrt()


def mean_of_non_negative(terms: pl.Expr, n: int) -> pl.Expr:
    """Rolling mean of terms that are >= 0, exactly 0 when all of them are.

    polars' rolling sums add and subtract as the window slides (compensated, accurate to a few
    ulps of the values that passed through), so a window of zeros after non-zero values can
    read +-1e-21 instead of 0, and its square root 3e-11 instead of 0. The exact rolling
    maximum tells the all-zero windows apart; the kernels sum each window afresh and get 0.
    """
    all_zero = windowed(terms.rolling_max(n), n) == 0.0
    return pl.when(all_zero).then(0.0).otherwise(per_symbol(terms.rolling_mean(n)))


def variance(values: pl.Expr, n: int) -> pl.Expr:
    """Rolling sample variance (ddof 1), exactly 0 on windows of equal values (the kernels'
    ``_var`` does the same)."""
    flat = windowed(values.rolling_min(n) == values.rolling_max(n), n)
    return pl.when(flat).then(0.0).otherwise(per_symbol(values.rolling_var(n)))


def yang_zhang_k(n: int) -> float:
    """Yang and Zhang's weight on the open-to-close variance, the one that minimises the
    estimator's variance: k = alpha / (1 + alpha + (n + 1) / (n - 1)) with alpha = 0.34."""
    return 0.34 / (1.34 + (n + 1) / (n - 1))


@dataclass(frozen=True)
class CloseToCloseVol(Feature):
    """Sample standard deviation of the last ``window`` close-to-close log returns."""

    window: int = 20

    def __post_init__(self) -> None:
        check_window("window", self.window, 2)

    @property
    def name(self) -> str:
        return f"rv_cc_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("close",)

    def expr(self) -> pl.Expr:
        r = (_C / lag(_C)).log()
        return _sqrt_non_negative(variance(r, self.window))

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (
            kernels.OP_CLOSE_VOL,
            [slots["close"], self.window],
            2 + kernels.window_size(self.window),
        )


@dataclass(frozen=True)
class ParkinsonVol(Feature):
    """Parkinson's high-low estimator: sqrt(mean(ln(H/L)^2) / (4 ln 2))."""

    window: int = 20

    def __post_init__(self) -> None:
        check_window("window", self.window)

    @property
    def name(self) -> str:
        return f"rv_parkinson_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("high", "low")

    def expr(self) -> pl.Expr:
        u = (_H / _L).log()
        mean = mean_of_non_negative(u * u, self.window)
        return _sqrt_non_negative(mean * kernels.PARKINSON_FACTOR)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (
            kernels.OP_PARKINSON,
            [slots["high"], slots["low"], self.window],
            kernels.window_size(self.window),
        )


@dataclass(frozen=True)
class GarmanKlassVol(Feature):
    """Garman-Klass: sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))."""

    window: int = 20

    def __post_init__(self) -> None:
        check_window("window", self.window)

    @property
    def name(self) -> str:
        return f"rv_gk_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("open", "high", "low", "close")

    def expr(self) -> pl.Expr:
        hl = (_H / _L).log()
        co = (_C / _O).log()
        term = 0.5 * (hl * hl) - kernels.GARMAN_KLASS_FACTOR * (co * co)
        return _sqrt_non_negative(mean_of_non_negative(term, self.window))

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (
            kernels.OP_GARMAN_KLASS,
            [slots["open"], slots["high"], slots["low"], slots["close"], self.window],
            kernels.window_size(self.window),
        )


@dataclass(frozen=True)
class YangZhangVol(Feature):
    """Yang-Zhang: overnight variance + k open-to-close variance + (1 - k) Rogers-Satchell."""

    window: int = 20

    def __post_init__(self) -> None:
        check_window("window", self.window, 2)

    @property
    def name(self) -> str:
        return f"rv_yz_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("open", "high", "low", "close")

    def expr(self) -> pl.Expr:
        n = self.window
        k = yang_zhang_k(n)
        overnight = (_O / lag(_C)).log()
        open_close = (_C / _O).log()
        rs = (_H / _C).log() * (_H / _O).log() + (_L / _C).log() * (_L / _O).log()
        var = (
            variance(overnight, n)
            + k * variance(open_close, n)
            + (1.0 - k) * mean_of_non_negative(rs, n)
        )
        return _sqrt_non_negative(var)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        n = self.window
        return (
            kernels.OP_YANG_ZHANG,
            [slots["open"], slots["high"], slots["low"], slots["close"], n, yang_zhang_k(n)],
            2 + 3 * kernels.window_size(n),
        )
