"""Instruments: what is traded and which rule tables govern it."""

from __future__ import annotations

from dataclasses import dataclass, field

from quant.market.ticks import BIST_SHARE_TICKS, TickSizeTable


@dataclass(frozen=True)
class Instrument:
    """A listed equity. Quantities are whole lots; a BIST share lot is one share."""

    symbol: str
    name: str = ""
    sector: str = ""
    currency: str = "TRY"
    lot_size: int = 1
    tick_table: TickSizeTable = field(default=BIST_SHARE_TICKS, compare=False)
    isin: str | None = None

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"invalid symbol {self.symbol!r}")
        if self.lot_size < 1:
            raise ValueError(f"lot size must be a positive integer, got {self.lot_size}")
