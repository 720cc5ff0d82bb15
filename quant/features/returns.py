"""Log returns over horizons counted in events (bars or ticks) of the same symbol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from quant.features import kernels
from quant.features.base import Feature, check_window, lag


@dataclass(frozen=True)
class LogReturn(Feature):
    """``ln(v_t / v_{t-k})`` with ``v`` = ``column`` (a bar's close by default, a trade's price
    on ticks) and k = ``horizon`` rows of the same symbol; null for the first k rows.

    Log returns add over time and across horizons, which the labels and the market factor rely
    on. The horizon counts rows, not clock time: on 1-minute bars with a missing minute (no
    trade), a 5-bar return spans six minutes; build time bars first for clock horizons.
    """

    horizon: int = 1
    column: str = "close"

    def __post_init__(self) -> None:
        check_window("horizon", self.horizon)

    @property
    def name(self) -> str:
        suffix = "" if self.column == "close" else f"_{self.column}"
        return f"log_return_{self.horizon}{suffix}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.column,)

    def expr(self) -> pl.Expr:
        v = pl.col(self.column).cast(pl.Float64)
        return (v / lag(v, self.horizon)).log()

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (
            kernels.OP_LOG_RETURN,
            [slots[self.column], self.horizon],
            kernels.window_size(self.horizon),
        )
