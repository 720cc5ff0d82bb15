"""Call-auction uncross: one price for everything collected, chosen by the BIST rules.

During a call phase (opening auction, closing auction, the auction that follows a circuit-breaker
halt) orders are collected without trading. At the uncross the exchange picks one price and
executes as much as possible there. BIST, like Xetra, Euronext and ASX, picks it by:

1. **maximum executable volume**: at price p the demand D(p) is every buy willing to pay p
   (market orders and limits >= p) and the supply S(p) every sell willing to accept p; the
   executable volume is min(D, S);
2. **minimum surplus**: among those prices, the smallest |D - S| (the quantity left unmatched);
3. **market pressure**: if the surplus is on the buy side at every remaining price, the highest
   price; on the sell side at every one, the lowest;
4. **reference price**: otherwise (surplus on both sides, or none) the price closest to the
   reference price (the base price at the open, the last price at the close, the last trade
   before a halt).

Which prices are eligible differs between exchanges. Xetra considers the limit prices of the
collected orders (and the reference price); ASX and Nasdaq's platforms, on which BISTECH is
built, consider every price on the tick grid. Demand and supply only change at limit prices, so
the grid adds nothing on volume, but between a limit with a buy surplus and one with a sell
surplus a grid price can have a smaller surplus than either. ``equilibrium(..., grid=schedule)``
evaluates every grid price (as ranges between consecutive limit prices, not one by one); without
a grid only the limits and the reference price compete. Every candidate is clamped into the
phase's price band, so a limit beyond the band competes at the band's edge; when only market
orders meet, the reference price is the only candidate.

The executed volume is then allocated in priority order on each side: market orders first, then
better limits, then earlier entry; whoever is on the short side fills completely. The allocation
pairs buys and sells in that order, which gives each order its executions at the one price.

Prices are integer price units, as in the book. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from quant.execution.orders import Side
from quant.market.ticks import TickSchedule


@dataclass(frozen=True, slots=True)
class AuctionOrder:
    """A collected order as the auction sees it."""

    order_id: str
    side: Side
    qty: int
    limit: int | None
    """Limit price in units; None for market (and market-to-limit) orders."""
    seq: int
    """Entry time priority: lower is earlier."""


@dataclass(frozen=True, slots=True)
class AuctionFill:
    buy_id: str
    sell_id: str
    qty: int


@dataclass(frozen=True, slots=True)
class Equilibrium:
    """The uncross price and what the rules saw there."""

    price: int
    volume: int
    """Executable volume min(D, S) at ``price``."""
    surplus: int
    """D - S at ``price``: positive is unmatched demand, negative unmatched supply."""
    rule: int
    """Which step (1-4) settled the price: useful to explain an auction."""


@dataclass(frozen=True, slots=True)
class AuctionResult:
    price: int | None
    """The uncross price; None when nothing can trade (the book does not cross)."""
    volume: int
    surplus: int
    fills: tuple[AuctionFill, ...]
    rule: int = 0


def _clamp(price: int, lower: int | None, upper: int | None) -> int:
    if lower is not None and price < lower:
        return lower
    if upper is not None and price > upper:
        return upper
    return price


def equilibrium(
    orders: Sequence[AuctionOrder],
    reference: int,
    lower: int | None = None,
    upper: int | None = None,
    grid: TickSchedule | None = None,
) -> Equilibrium | None:
    """The uncross price of ``orders``, or None if no volume can execute.

    ``reference`` is the tie-breaking reference price; ``lower``/``upper`` bound the price (the
    band of the phase), so a limit beyond the band competes at the band's edge. With ``grid``
    every price on that tick grid is eligible (ASX and Nasdaq style), otherwise only the limit
    prices and the reference price are (Xetra style); see the module docstring.
    """
    mkt_buy = mkt_sell = 0
    buys: dict[int, int] = {}
    sells: dict[int, int] = {}
    for o in orders:
        if o.qty <= 0:
            continue
        if o.limit is None:
            if o.side is Side.BUY:
                mkt_buy += o.qty
            else:
                mkt_sell += o.qty
        elif o.side is Side.BUY:
            buys[o.limit] = buys.get(o.limit, 0) + o.qty
        else:
            sells[o.limit] = sells.get(o.limit, 0) + o.qty
    if (mkt_buy == 0 and not buys) or (mkt_sell == 0 and not sells):
        return None
    ref = _clamp(reference, lower, upper)
    points = sorted({_clamp(p, lower, upper) for p in (*buys, *sells)} | {ref})
    # Each candidate is a closed range of prices with the same demand and supply: a single
    # limit (or reference) price, or, on a grid, the grid prices strictly between two of them.
    cands = [(p, p) for p in points]
    if grid is not None:
        for a, b in itertools.pairwise(points):
            lo, hi = a + grid.tick_units(a), b - grid.tick_units(b - 1)
            if lo <= hi:
                cands.append((lo, hi))
        cands.sort()

    buy_px = sorted(buys)
    buy_suffix = list(itertools.accumulate(reversed([buys[p] for p in buy_px])))[::-1]
    sell_px = sorted(sells)
    sell_prefix = list(itertools.accumulate(sells[p] for p in sell_px))

    def demand(p: int) -> int:
        i = bisect.bisect_left(buy_px, p)
        return mkt_buy + (buy_suffix[i] if i < len(buy_px) else 0)

    def supply(p: int) -> int:
        i = bisect.bisect_right(sell_px, p)
        return mkt_sell + (sell_prefix[i - 1] if i > 0 else 0)

    d = [demand(lo) for lo, _ in cands]
    s = [supply(lo) for lo, _ in cands]
    volume = [min(x, y) for x, y in zip(d, s, strict=True)]
    best = max(volume)
    if best == 0:
        return None
    tied = [k for k, v in enumerate(volume) if v == best]
    rule = 1
    if len(tied) > 1:
        rule = 2
        least = min(abs(d[k] - s[k]) for k in tied)
        tied = [k for k in tied if abs(d[k] - s[k]) == least]
    if len(tied) == 1 and cands[tied[0]][0] == cands[tied[0]][1]:
        k = tied[0]
        return Equilibrium(cands[k][0], volume[k], d[k] - s[k], rule)
    surpluses = [d[k] - s[k] for k in tied]
    if all(x > 0 for x in surpluses):
        k, price, rule = tied[-1], cands[tied[-1]][1], 3
    elif all(x < 0 for x in surpluses):
        k, price, rule = tied[0], cands[tied[0]][0], 3
    else:
        rule = 4
        # The point of each tied range closest to the reference; the closest range wins. The
        # tied ranges are contiguous, so equal distances mean the reference itself; ties go up.
        k, price = min(
            ((k, _clamp(ref, *cands[k])) for k in tied),
            key=lambda kp: (abs(kp[1] - ref), -kp[1]),
        )
    return Equilibrium(price, volume[k], d[k] - s[k], rule)


def _priority(o: AuctionOrder) -> tuple[int, int, int]:
    if o.limit is None:
        return (0, 0, o.seq)
    return (1, -o.limit if o.side is Side.BUY else o.limit, o.seq)


def allocate(orders: Sequence[AuctionOrder], price: int, volume: int) -> list[AuctionFill]:
    """Executions at ``price`` for ``volume`` shares, in price-time priority on both sides."""
    buys = sorted(
        (
            o
            for o in orders
            if o.side is Side.BUY and o.qty > 0 and (o.limit is None or o.limit >= price)
        ),
        key=_priority,
    )
    sells = sorted(
        (
            o
            for o in orders
            if o.side is Side.SELL and o.qty > 0 and (o.limit is None or o.limit <= price)
        ),
        key=_priority,
    )
    fills: list[AuctionFill] = []
    bi = si = 0
    b_left = buys[0].qty if buys else 0
    s_left = sells[0].qty if sells else 0
    left = volume
    while left > 0 and bi < len(buys) and si < len(sells):
        q = min(b_left, s_left, left)
        fills.append(AuctionFill(buys[bi].order_id, sells[si].order_id, q))
        left -= q
        b_left -= q
        s_left -= q
        if b_left == 0:
            bi += 1
            b_left = buys[bi].qty if bi < len(buys) else 0
        if s_left == 0:
            si += 1
            s_left = sells[si].qty if si < len(sells) else 0
    return fills


def uncross(
    orders: Sequence[AuctionOrder],
    reference: int,
    lower: int | None = None,
    upper: int | None = None,
    grid: TickSchedule | None = None,
) -> AuctionResult:
    """Price the auction and allocate its executions (nothing trades if the book does not cross)."""
    eq = equilibrium(orders, reference, lower, upper, grid)
    if eq is None:
        return AuctionResult(None, 0, 0, ())
    fills = allocate(orders, eq.price, eq.volume)
    return AuctionResult(eq.price, eq.volume, eq.surplus, tuple(fills), eq.rule)
