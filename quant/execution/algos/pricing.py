"""How an execution algorithm prices its child orders: on the tick grid, inside the band.

Every child is a limit order. Its price comes from a ``PricingPolicy`` (join the own side of the
book, cross the spread by some ticks, or rest at the parent's limit), is capped by the parent's
limit when that is tighter, is rounded onto the tick grid in force that day (a buy rounded down
and a sell up, so rounding never makes a child more aggressive than asked) and is finally clipped
into the day's price band, because the exchange rejects anything outside it. When the parent's
limit lies on the wrong side of the band no valid price exists and the child is not sent; the
reason is returned instead of raised, as on every trading path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from quant.execution.orders import Order, Side, TimeInForce
from quant.market.bands import Band
from quant.market.ticks import RoundingMode, TickSizeTable, from_units, to_units


class PriceReference(StrEnum):
    """The market price a child's limit starts from."""

    NEAR = "near"
    """The own side of the book: a buy at the bid, a sell at the ask (passive, joins the queue)."""
    FAR = "far"
    """The opposite side: a buy at the ask, a sell at the bid (takes liquidity)."""
    LAST = "last"
    """The last traded price."""
    PARENT_LIMIT = "parent_limit"
    """The parent order's own limit price (rests there until the market comes)."""


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    """Where children are priced.

    ``offset_ticks`` moves the price that many ticks from the reference in the aggressive
    direction (up for a buy, down for a sell; negative values are more passive). Ticks are
    stepped on the grid itself, so stepping across a tier boundary uses the tick of the tier it
    lands in (one tick below 50.00 is 49.98, one above is 50.05).
    """

    reference: PriceReference = PriceReference.NEAR
    offset_ticks: int = 0
    time_in_force: TimeInForce = TimeInForce.DAY

    @classmethod
    def passive(cls, time_in_force: TimeInForce = TimeInForce.DAY) -> PricingPolicy:
        """Join the own side of the book: a buy at the bid, a sell at the ask."""
        return cls(PriceReference.NEAR, 0, time_in_force)

    @classmethod
    def cross(cls, ticks: int = 0, time_in_force: TimeInForce = TimeInForce.DAY) -> PricingPolicy:
        """Take the far touch, ``ticks`` beyond it (a buy at ask + ticks, a sell at bid - ticks)."""
        return cls(PriceReference.FAR, ticks, time_in_force)

    @classmethod
    def at_limit(cls, time_in_force: TimeInForce = TimeInForce.DAY) -> PricingPolicy:
        """Rest every child at the parent's limit price."""
        return cls(PriceReference.PARENT_LIMIT, 0, time_in_force)


def step_ticks(table: TickSizeTable, price: float, day: date, ticks: int) -> float | None:
    """``price`` (on the grid) moved ``ticks`` grid steps up (positive) or down (negative).

    Returns None when stepping down would leave the positive price range.
    """
    schedule = table.schedule_on(day)
    units = to_units(price)
    for _ in range(abs(ticks)):
        if ticks > 0:
            units += schedule.tick_units(units)
        else:
            # The step below a tier boundary is the tick of the tier underneath.
            units -= schedule.tick_units(units - 1)
            if units <= 0:
                return None
    return from_units(units)


def child_price(
    policy: PricingPolicy,
    parent: Order,
    day: date,
    table: TickSizeTable,
    *,
    bid: float | None,
    ask: float | None,
    last: float | None,
    band: Band | None,
) -> tuple[float | None, str]:
    """The limit price of the next child of ``parent``, or ``(None, why)`` if none is valid.

    The result is on ``table``'s grid for ``day``, never more aggressive than the parent's limit
    and inside ``band`` (when a band is given).
    """
    buy = parent.side is Side.BUY
    mode = RoundingMode.DOWN if buy else RoundingMode.UP
    limit = parent.limit_price
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        return None, f"parent limit price {limit!r} is not a positive price"

    if policy.reference is PriceReference.PARENT_LIMIT:
        if limit is None:
            return None, "pricing at the parent's limit needs a parent with a limit price"
        ref = limit
    else:
        near, far = (bid, ask) if buy else (ask, bid)
        if policy.reference is PriceReference.NEAR:
            ref = near
        elif policy.reference is PriceReference.FAR:
            ref = far
        else:
            ref = last
        if not _valid(ref):
            ref = last  # no quote on that side (e.g. a one-sided book): fall back to the last
        if not _valid(ref):
            return None, f"no {policy.reference} price and no last price to price a child"

    price = table.round_to_tick(ref, day, mode)
    if policy.offset_ticks:
        stepped = step_ticks(table, price, day, policy.offset_ticks * (1 if buy else -1))
        if stepped is None:
            return None, f"{policy.offset_ticks} ticks from {price} leaves the price range"
        price = stepped
    if limit is not None:
        price = table.round_to_tick(min(price, limit) if buy else max(price, limit), day, mode)

    if band is None:
        return price, ""
    lower = table.round_to_tick(band.lower, day, RoundingMode.UP)
    upper = table.round_to_tick(band.upper, day, RoundingMode.DOWN)
    if lower > upper:
        return None, f"the band [{band.lower}, {band.upper}] holds no price on the grid"
    if buy:
        if price > upper:
            price = upper
        elif price < lower:
            if limit is not None and limit < lower - 1e-9:
                return None, f"buy limit {limit} is below the band's lower limit {lower}"
            price = lower
    elif price < lower:
        price = lower
    elif price > upper:
        if limit is not None and limit > upper + 1e-9:
            return None, f"sell limit {limit} is above the band's upper limit {upper}"
        price = upper
    return price, ""


def _valid(price: float | None) -> bool:
    return price is not None and math.isfinite(price) and price > 0
