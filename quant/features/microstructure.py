"""Features from L1 quotes (spread, microprice, order-flow imbalance) and from trades (signed
trade imbalance). Windows count events (quote updates, trades), not clock time: a count window
is exact and identical in both modes; for clock windows, aggregate to time bars first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

from quant.features import kernels
from quant.features.base import Feature, check_window, lag, per_symbol, windowed

_BID, _ASK = pl.col("bid_price").cast(pl.Float64), pl.col("ask_price").cast(pl.Float64)
_BID_SIZE, _ASK_SIZE = pl.col("bid_size").cast(pl.Float64), pl.col("ask_size").cast(pl.Float64)
_QUOTE = ("bid_price", "bid_size", "ask_price", "ask_size")


@dataclass(frozen=True)
class RelativeSpread(Feature):
    """Quoted spread relative to the mid: (ask - bid) / ((ask + bid) / 2)."""

    @property
    def name(self) -> str:
        return "rel_spread"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("bid_price", "ask_price")

    def expr(self) -> pl.Expr:
        return (_ASK - _BID) / ((_ASK + _BID) * 0.5)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (kernels.OP_REL_SPREAD, [slots["bid_price"], slots["ask_price"]], 0)


@dataclass(frozen=True)
class Microprice(Feature):
    """The size-weighted mid (Stoikov's weighted mid-price):
    P = (bid * ask_size + ask * bid_size) / (bid_size + ask_size), which leans toward the side
    with less depth, where the next move is more likely. With ``relative`` (default) the feature
    is P / mid - 1, scale-free for models; otherwise the price itself. Null with no depth.
    """

    relative: bool = True

    @property
    def name(self) -> str:
        return "microprice_rel" if self.relative else "microprice"

    @property
    def inputs(self) -> tuple[str, ...]:
        return _QUOTE

    def expr(self) -> pl.Expr:
        price = (_BID * _ASK_SIZE + _ASK * _BID_SIZE) / (_BID_SIZE + _ASK_SIZE)  # no depth: null
        if self.relative:
            price = price / ((_ASK + _BID) * 0.5) - 1.0
        return price

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots[c] for c in _QUOTE] + [1.0 if self.relative else 0.0]
        return (kernels.OP_MICROPRICE, params, 0)


def ofi_event() -> pl.Expr:
    """e_n of Cont, Kukanov and Stoikov (2014), eq. (2), for each L1 update after the first:

    e_n = 1{P^B_n >= P^B_{n-1}} q^B_n - 1{P^B_n <= P^B_{n-1}} q^B_{n-1}
          - 1{P^A_n <= P^A_{n-1}} q^A_n + 1{P^A_n >= P^A_{n-1}} q^A_{n-1}

    Positive when bids are added or lifted higher / asks cancelled or pushed away (buying
    pressure). Null for a symbol's first quote.
    """
    bid, bid_size, ask, ask_size = _BID, _BID_SIZE, _ASK, _ASK_SIZE
    pb, pbs, pa, pas = (lag(e) for e in (bid, bid_size, ask, ask_size))
    zero = pl.lit(0.0)
    e = (
        pl.when(bid >= pb).then(bid_size).otherwise(zero)
        - pl.when(bid <= pb).then(pbs).otherwise(zero)
        - pl.when(ask <= pa).then(ask_size).otherwise(zero)
        + pl.when(ask >= pa).then(pas).otherwise(zero)
    )
    return pl.when(pb.is_not_null()).then(e)


@dataclass(frozen=True)
class OrderFlowImbalance(Feature):
    """L1 order-flow imbalance (Cont, Kukanov and Stoikov 2014): sum of e_n over the last
    ``window`` quote updates, in shares. Integer arithmetic, exact in both modes."""

    window: int = 1

    def __post_init__(self) -> None:
        check_window("window", self.window)

    @property
    def name(self) -> str:
        return f"ofi_{self.window}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return _QUOTE

    def expr(self) -> pl.Expr:
        n = self.window
        # sums of whole shares: exact, so no rounding state to carry between symbols
        return windowed(ofi_event().rolling_sum(n), n)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [slots[c] for c in _QUOTE] + [self.window]
        return (kernels.OP_OFI, params, 5 + kernels.exact_window_size(self.window))


SignSource = Literal["side", "tick_rule"]


def tick_rule_sign(price: str = "price") -> pl.Expr:
    """Lee-Ready tick test: +1 on an uptick, -1 on a downtick, the previous sign on a zero tick;
    null until the first price change."""
    p = pl.col(price).cast(pl.Float64)
    d = p - lag(p)
    return per_symbol(pl.when(d > 0.0).then(1.0).when(d < 0.0).then(-1.0).forward_fill())


@dataclass(frozen=True)
class TradeSignImbalance(Feature):
    """Imbalance of signed trades over the last ``window`` trades, in [-1, 1]:
    sum(sign * size) / sum(size) (``weighted``, default) or mean(sign).

    ``sign="side"`` takes the aggressor side from the data (1 buy, -1 sell, 0 unknown or
    auction, which counts in the denominator only); ``sign="tick_rule"`` infers it from price
    changes, for feeds without a side (such as the E-mini ticks).
    """

    window: int = 50
    sign: SignSource = "side"
    weighted: bool = True

    def __post_init__(self) -> None:
        check_window("window", self.window)
        if self.sign not in ("side", "tick_rule"):
            raise ValueError("sign must be 'side' or 'tick_rule'")

    @property
    def name(self) -> str:
        kind = "" if self.sign == "side" else "_tick"
        weight = "" if self.weighted else "_count"
        return f"trade_imbalance_{self.window}{kind}{weight}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("price", "size") if self.sign == "tick_rule" else ("price", "size", "side")

    def expr(self) -> pl.Expr:
        sign = tick_rule_sign() if self.sign == "tick_rule" else pl.col("side").cast(pl.Float64)
        n = self.window
        if self.weighted:
            size = pl.col("size").cast(pl.Float64)
            num, total = (sign * size).rolling_sum(n), size.rolling_sum(n)
        else:
            num, total = sign.rolling_sum(n), pl.lit(float(n))
        # sums of whole shares (or of signs): exact, so the whole frame can be slid at once;
        # no volume in the window: 0/0, null
        return windowed(num / total, n)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        params = [
            slots["price"],
            slots["size"],
            slots.get("side", -1),
            self.window,
            1.0 if self.weighted else 0.0,
            1.0 if self.sign == "tick_rule" else 0.0,
        ]
        return (kernels.OP_TRADE_SIGN, params, 3 + 2 * kernels.exact_window_size(self.window))
