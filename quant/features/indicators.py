"""Technical indicators (RSI, MACD, ATR), distance to the session VWAP and the volume z-score.

Seeding conventions matter for the first few hundred values of any exponential average, so
they are fixed here and match TA-Lib / talipp where those agree:

- RSI and ATR use Wilder's smoothing, an EMA with alpha = 1/n seeded by the simple mean of the
  first n values (Wilder 1978). RSI's first value needs n price changes (n + 1 bars); ATR's
  first value is the mean of the first n true ranges, the first bar's true range being H - L
  (no previous close), so it needs n bars (talipp's convention; TA-Lib skips the first bar).
- MACD's EMAs (alpha = 2/(n + 1)) are each seeded by the mean of their first n inputs: the
  line fast EMA - slow EMA starts at bar ``slow``; the signal (an EMA of the line) is seeded by
  the mean of the first ``signal`` line values, so it and the histogram start at bar
  ``slow + signal - 1`` (talipp's convention; TA-Lib delays the fast EMA's seed to align it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

from quant.features import kernels
from quant.features.base import (
    SESSION,
    Feature,
    check_window,
    lag,
    per_symbol,
    scratch,
    seeded_ewm,
    windowed,
)


@dataclass(frozen=True)
class RSI(Feature):
    """Wilder's Relative Strength Index: 100 - 100 / (1 + avg gain / avg loss), in [0, 100];
    100 when the average loss is 0."""

    window: int = 14
    column: str = "close"

    def __post_init__(self) -> None:
        check_window("window", self.window)

    @property
    def name(self) -> str:
        suffix = "" if self.column == "close" else f"_{self.column}"
        return f"rsi_{self.window}{suffix}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column,)

    def _averages(self) -> tuple[str, str]:
        return scratch("rsi_gain", self.window, self.column), scratch(
            "rsi_loss", self.window, self.column
        )

    def intermediates(self) -> dict[str, pl.Expr]:
        c = pl.col(self.column).cast(pl.Float64)
        d = c - lag(c)
        n = self.window
        gain, loss = self._averages()
        return {
            gain: seeded_ewm(d.clip(lower_bound=0.0), n, 1.0 / n, lead=1),
            loss: seeded_ewm((-d).clip(lower_bound=0.0), n, 1.0 / n, lead=1),
        }

    def expr(self) -> pl.Expr:
        gain, loss = (pl.col(c) for c in self._averages())
        return pl.when(loss == 0.0).then(100.0).otherwise(100.0 - 100.0 / (1.0 + gain / loss))

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (kernels.OP_RSI, [slots[self.column], self.window, 1.0 / self.window], 8)


MacdOutput = Literal["line", "signal", "histogram"]
_MACD_OUTPUTS: dict[str, int] = {"line": 0, "signal": 1, "histogram": 2}


@dataclass(frozen=True)
class MACD(Feature):
    """Moving average convergence/divergence (Appel): ``line`` = EMA_fast - EMA_slow of the
    close, ``signal`` = EMA_signal of the line, ``histogram`` = line - signal. In price units."""

    fast: int = 12
    slow: int = 26
    signal: int = 9
    output: MacdOutput = "line"
    column: str = "close"

    def __post_init__(self) -> None:
        for name in ("fast", "slow", "signal"):
            check_window(name, getattr(self, name))
        if not self.fast < self.slow:
            raise ValueError(f"MACD needs fast < slow, got {self.fast} and {self.slow}")
        if self.output not in _MACD_OUTPUTS:
            raise ValueError(f"MACD output must be one of {sorted(_MACD_OUTPUTS)}")

    @property
    def name(self) -> str:
        part = {"line": "macd", "signal": "macd_signal", "histogram": "macd_hist"}[self.output]
        suffix = "" if self.column == "close" else f"_{self.column}"
        return f"{part}_{self.fast}_{self.slow}_{self.signal}{suffix}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def _line(self) -> str:
        return scratch("macd_line", self.fast, self.slow, self.column)

    def intermediates(self) -> dict[str, pl.Expr]:
        c = pl.col(self.column).cast(pl.Float64)
        fast = seeded_ewm(c, self.fast, 2.0 / (self.fast + 1), lead=0)
        slow = seeded_ewm(c, self.slow, 2.0 / (self.slow + 1), lead=0)
        return {self._line: fast - slow}

    def expr(self) -> pl.Expr:
        line = pl.col(self._line)
        if self.output == "line":
            return line
        signal = seeded_ewm(line, self.signal, 2.0 / (self.signal + 1), lead=self.slow - 1)
        return signal if self.output == "signal" else line - signal

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [
            slots[self.column],
            self.fast,
            self.slow,
            self.signal,
            _MACD_OUTPUTS[self.output],
            2.0 / (self.fast + 1),
            2.0 / (self.slow + 1),
            2.0 / (self.signal + 1),
        ]
        return (kernels.OP_MACD, params, 9)


@dataclass(frozen=True)
class ATR(Feature):
    """Wilder's Average True Range, in price units: TR = max(H - L, |H - C_prev|, |L - C_prev|)."""

    window: int = 14

    def __post_init__(self) -> None:
        check_window("window", self.window)

    @property
    def name(self) -> str:
        return f"atr_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("high", "low", "close")

    def expr(self) -> pl.Expr:
        h, lo, c = (pl.col(x).cast(pl.Float64) for x in ("high", "low", "close"))
        prev = lag(c)
        tr = pl.max_horizontal(h - lo, (h - prev).abs(), (lo - prev).abs())
        n = self.window
        return seeded_ewm(tr, n, 1.0 / n, lead=0)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots["high"], slots["low"], slots["close"], self.window, 1.0 / self.window]
        return (kernels.OP_ATR, params, 5)


@dataclass(frozen=True)
class VwapDistance(Feature):
    """Relative distance of the price to the session VWAP: ``price / VWAP - 1``, with VWAP =
    sum(value_price * volume) / sum(volume) over the symbol's rows since the session opened
    (the Istanbul trading day), this row included.

    On bars (the default) each bar contributes its own VWAP times its volume, i.e. exactly its
    traded value, so the session VWAP is the true VWAP of every trade so far. On trades use
    ``VwapDistance(price="price", value_price="price", volume="size")``.
    """

    price: str = "close"
    value_price: str = "vwap"
    volume: str = "volume"

    @property
    def name(self) -> str:
        return "vwap_distance" if self.price == "close" else f"vwap_distance_{self.price}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.price, self.value_price, self.volume, SESSION)

    def expr(self) -> pl.Expr:
        volume = pl.col(self.volume).cast(pl.Float64)
        value = pl.col(self.value_price).cast(pl.Float64) * volume
        vwap = (value.cum_sum() / volume.cum_sum()).over("symbol", SESSION)
        return pl.col(self.price).cast(pl.Float64) / vwap - 1.0  # no volume yet: 0/0, null

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots[self.price], slots[self.value_price], slots[self.volume], slots[SESSION]]
        return (kernels.OP_VWAP_DISTANCE, params, 4)


@dataclass(frozen=True)
class VolumeZScore(Feature):
    """(v_t - mean) / std of the last ``window`` volumes (this row included, sample std);
    null when the window's volumes are all equal."""

    window: int = 20
    column: str = "volume"

    def __post_init__(self) -> None:
        check_window("window", self.window, 2)

    @property
    def name(self) -> str:
        suffix = "" if self.column == "volume" else f"_{self.column}"
        return f"volume_z_{self.window}{suffix}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column,)

    def expr(self) -> pl.Expr:
        v = pl.col(self.column).cast(pl.Float64)
        n = self.window
        z = (v - per_symbol(v.rolling_mean(n))) / per_symbol(v.rolling_var(n)).sqrt()
        flat = windowed(v.rolling_min(n) == v.rolling_max(n), n)
        return pl.when(~flat).then(z)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (
            kernels.OP_VOLUME_Z,
            [slots[self.column], self.window],
            kernels.window_size(self.window),
        )
