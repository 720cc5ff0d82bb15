"""Fractionally differentiated prices with a fixed-width window (López de Prado, *Advances in
Financial Machine Learning*, ch. 5, "FFD").

Integer differencing (returns) makes a price series stationary but erases its memory; a
fractional order 0 < d < 1 keeps most of the memory while removing enough of the trend for
models that assume stationarity. The weights of (1 - B)^d are

    w_0 = 1,   w_k = -w_{k-1} (d - k + 1) / k     (AFML eq. 5.1 and snippet 5.3)

and the fixed-width window keeps every weight with |w_k| >= threshold, so that every value uses
the same weights (the expanding-window variant drifts as its window grows). The value at t is
sum_{k=0}^{K-1} w_k x_{t-k}, null until K values have been seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant.features import kernels
from quant.features.base import Feature, windowed

MAX_WIDTH = 10_000
"""Refuse thresholds so small that the window outgrows any realistic history."""


def ffd_weights(d: float, threshold: float = 1e-4, max_width: int = MAX_WIDTH) -> np.ndarray:
    """FFD weights w_0, w_1, ..., w_{K-1} (newest value first), stopping before the first
    weight with |w_k| < threshold (AFML snippet 5.3, ``getWeights_FFD``)."""
    if not d > 0:
        raise ValueError(f"fractional order d must be > 0, got {d!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    weights = [1.0]
    k = 1
    while True:
        w = -weights[-1] * (d - k + 1) / k
        if abs(w) < threshold:
            break
        weights.append(w)
        if len(weights) > max_width:
            raise ValueError(
                f"FFD window for d={d} and threshold={threshold} exceeds {max_width} weights: "
                "raise the threshold"
            )
        k += 1
    return np.asarray(weights, dtype=np.float64)


@dataclass(frozen=True)
class FracDiff(Feature):
    """Fixed-width fractional difference of order ``d`` of ``column`` (of its logarithm when
    ``log``, the usual choice for prices)."""

    d: float = 0.4
    threshold: float = 1e-4
    column: str = "close"
    log: bool = True

    def __post_init__(self) -> None:
        ffd_weights(self.d, self.threshold)  # validates

    @property
    def weights(self) -> np.ndarray:
        return ffd_weights(self.d, self.threshold)

    @property
    def width(self) -> int:
        return int(self.weights.size)

    @property
    def name(self) -> str:
        base = "ffd" if self.log else "ffd_level"
        suffix = "" if self.column == "close" else f"_{self.column}"
        return f"{base}_{self.d:g}_{self.threshold:g}{suffix}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column,)

    def expr(self) -> pl.Expr:
        x = pl.col(self.column).cast(pl.Float64)
        if self.log:
            x = x.log()
        w = self.weights
        # polars applies weights to the window oldest value first
        return windowed(x.rolling_sum(w.size, weights=w[::-1].tolist()), w.size)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        w = self.weights
        params = [slots[self.column], 1.0 if self.log else 0.0, w.size, *w[::-1].tolist()]
        return (kernels.OP_FFD, params, kernels.window_size(w.size))
