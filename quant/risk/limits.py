"""Risk limits: the numbers pre-trade checks hold every order against.

One typed, immutable record so that a backtest, a sweep and the live ``RiskGuard`` run with the
same limits and a limit change is a new object (journaled), never a mutation in place. Every
limit can be switched off with ``None``; the defaults are the ones a small BIST equity book would
start with: no leverage, no shorting, a 5% collar around the last price, BIST's 5:1
order-to-trade ratio, and fat-finger bounds far enough out that only typos hit them.

Comparisons are inclusive: a value exactly at its limit passes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ThrottleKey(StrEnum):
    """What an order-rate window counts orders over."""

    STRATEGY_SYMBOL = "strategy_symbol"
    STRATEGY = "strategy"
    SYMBOL = "symbol"
    GLOBAL = "global"


class RiskLimits(BaseModel):
    """Pre-trade limits. ``None`` switches a limit off; percentages are fractions (0.05 = 5%)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- one order -----------------------------------------------------------------------------
    max_order_quantity: int | None = Field(default=None, gt=0)
    """Shares in one order."""
    max_order_notional: float | None = Field(default=None, gt=0)
    """TRY value of one order (limit price, or last price for a market order)."""

    # --- price ---------------------------------------------------------------------------------
    price_collar_pct: float | None = Field(default=0.05, gt=0)
    """A limit price may differ from the last trade price by at most this fraction (either side):
    a quote far from the market is more often a bug than a strategy."""
    check_tick: bool = True
    """Reject limit prices off the instrument's tick grid on the context's day."""
    check_band: bool = True
    """Reject limit prices outside the band the context carries for the symbol."""

    # --- fat finger ----------------------------------------------------------------------------
    fat_finger_price_pct: float | None = Field(default=0.20, gt=0)
    """A limit price this far from the last price is a typo, not a collar matter."""
    fat_finger_adv_pct: float | None = Field(default=0.25, gt=0)
    """An order for more than this fraction of the symbol's average daily volume (shares)."""
    fat_finger_notional: float | None = Field(default=None, gt=0)
    """A hard TRY ceiling on one order, above ``max_order_notional``'s everyday limit."""

    # --- position ------------------------------------------------------------------------------
    max_position_shares: int | None = Field(default=None, gt=0)
    """Absolute shares held in one symbol after the order (and open orders on its side) fill."""
    max_position_notional: float | None = Field(default=None, gt=0)
    """Absolute TRY value held in one symbol, at the order's price."""

    # --- exposure, as fractions of equity ------------------------------------------------------
    max_symbol_exposure_pct: float | None = Field(default=None, gt=0)
    max_sector_gross_pct: float | None = Field(default=None, gt=0)
    max_sector_net_pct: float | None = Field(default=None, gt=0)
    max_gross_exposure_pct: float | None = Field(default=1.0, gt=0)
    """Sum of absolute position values over equity: 1.0 means no leverage."""
    max_net_exposure_pct: float | None = Field(default=1.0, gt=0)
    """Absolute value of the signed sum of position values over equity."""

    # --- order flow ----------------------------------------------------------------------------
    max_orders_per_window: int | None = Field(default=None, gt=0)
    """Orders accepted per ``throttle_window_ns`` (sliding window on order time stamps)."""
    throttle_window_ns: int = Field(default=1_000_000_000, gt=0)
    throttle_key: ThrottleKey = ThrottleKey.STRATEGY_SYMBOL
    max_order_to_trade_ratio: float | None = Field(default=5.0, gt=0)
    """Orders (incl. cancels and replaces) per trade in a session day, per strategy and symbol;
    BIST charges above about 5:1. Before the first trade the denominator counts as one."""

    # --- funds and short sales -----------------------------------------------------------------
    check_buying_power: bool = True
    """Reject buys whose value exceeds the context's buying power (when the context has one)."""
    allow_short: bool = False
    """Allow sells beyond the long position (short sales)."""
    uptick_rule_index_drop_pct: float = Field(default=0.02, gt=0)
    """BIST's uptick rule for short sales applies once the BIST 100 is down this much."""
