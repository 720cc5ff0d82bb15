"""Call-auction uncross: hand-worked books and published examples, with the price and volume
expected at every step written out next to each case."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from quant.execution.orders import Side
from quant.market.ticks import BIST_SHARE_TICKS, to_units
from quant.sim.auction import AuctionFill, AuctionOrder, allocate, equilibrium, uncross

GRID = BIST_SHARE_TICKS.schedule_on(date(2024, 1, 2))
"""0.01 TRY ticks below 20 TRY: the same 1-cent grid as the ASX example."""

B, S = Side.BUY, Side.SELL
_seq = iter(range(1, 10_000))


def o(oid: str, side: Side, qty: int, price: float | None) -> AuctionOrder:
    """An auction order; entry (time) priority is the order of creation."""
    return AuctionOrder(oid, side, qty, None if price is None else to_units(price), next(_seq))


def u(price: float) -> int:
    return to_units(price)


def test_maximum_volume_then_minimum_surplus_then_pressure() -> None:
    #   price   demand  supply  volume  surplus
    #   9.90     2300     700     700   +1600
    #  10.00     2300    1300    1300   +1000
    #  10.01-09  1500    1300    1300    +200   (grid prices between the limits)
    #  10.10     1500    1300    1300    +200
    #  10.20     1000    2200    1000   -1200
    # Volume ties at 10.00-10.10; the smallest surplus (200) leaves 10.01-10.10, all with a
    # buy surplus, so market pressure picks the highest: 10.10, 1300 shares.
    book = [
        o("B1", B, 1000, 10.20),
        o("B2", B, 500, 10.10),
        o("B3", B, 800, 10.00),
        o("S1", S, 700, 9.90),
        o("S2", S, 600, 10.00),
        o("S3", S, 900, 10.20),
    ]
    eq = equilibrium(book, u(10.00), grid=GRID)
    assert eq is not None
    assert (eq.price, eq.volume, eq.surplus, eq.rule) == (u(10.10), 1300, 200, 3)
    # Limit prices only: 10.10 is already the single smallest surplus (rule 2).
    eq = equilibrium(book, u(10.00))
    assert eq is not None
    assert (eq.price, eq.volume, eq.rule) == (u(10.10), 1300, 2)
    # Sells at or below 10.10 fill completely; buys in price priority: B1 1000, then B2 300.
    result = uncross(book, u(10.00), grid=GRID)
    assert result.fills == (
        AuctionFill("B1", "S1", 700),
        AuctionFill("B1", "S2", 300),
        AuctionFill("B2", "S2", 300),
    )


def test_sell_pressure_takes_the_lowest_price() -> None:
    #   price   demand  supply  volume  surplus
    #   9.90      300     500     300    -200
    #   9.91-99   300     500     300    -200
    #  10.00      300     500     300    -200
    #  10.01-09   200     500     200
    #  10.10      200     500     200
    # Every max-volume price has a sell surplus of 200: the lowest, 9.90.
    book = [o("S1", S, 500, 9.90), o("B1", B, 200, 10.10), o("B2", B, 100, 10.00)]
    eq = equilibrium(book, u(10.00), grid=GRID)
    assert eq is not None
    assert (eq.price, eq.volume, eq.surplus, eq.rule) == (u(9.90), 300, -200, 3)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (10.00, 10.00),  # inside the tied range: the reference itself
        (10.30, 10.10),  # above it: the highest tied price
        (9.50, 9.90),  # below it: the lowest tied price
    ],
)
def test_no_surplus_goes_to_the_price_closest_to_the_reference(
    reference: float, expected: float
) -> None:
    # 400 @ 10.10 against 400 @ 9.90: every price from 9.90 to 10.10 trades 400 with no
    # surplus, so only the reference price can decide.
    book = [o("B1", B, 400, 10.10), o("S1", S, 400, 9.90)]
    eq = equilibrium(book, u(reference), grid=GRID)
    assert eq is not None
    assert (eq.price, eq.volume, eq.surplus, eq.rule) == (u(expected), 400, 0, 4)


def test_grid_prices_between_limits_can_have_the_smallest_surplus() -> None:
    #   price   demand  supply  volume  surplus
    #  10.00      200     100     100    +100
    #  10.01-09   100     100     100       0   <- only on the grid
    #  10.10      100     200     100    -100
    # On the grid 10.01-10.09 win on surplus and the reference (9.50) picks 10.01. Among the
    # limit prices only, 10.00 (+100) and 10.10 (-100) tie with mixed pressure and the
    # reference picks 10.00.
    book = [
        o("B1", B, 100, 10.10),
        o("B2", B, 100, 10.00),
        o("S1", S, 100, 10.00),
        o("S2", S, 100, 10.10),
    ]
    on_grid = equilibrium(book, u(9.50), grid=GRID)
    limits_only = equilibrium(book, u(9.50))
    assert on_grid is not None and limits_only is not None
    assert (on_grid.price, on_grid.volume, on_grid.surplus, on_grid.rule) == (u(10.01), 100, 0, 4)
    assert (limits_only.price, limits_only.surplus, limits_only.rule) == (u(10.00), 100, 4)


def test_market_orders_alone_trade_at_the_reference_price() -> None:
    book = [o("MB", B, 300, None), o("MS", S, 200, None)]
    result = uncross(book, u(10.00), grid=GRID)
    assert (result.price, result.volume, result.surplus) == (u(10.00), 200, 100)
    assert result.fills == (AuctionFill("MB", "MS", 200),)


def test_a_book_that_does_not_cross_does_not_trade() -> None:
    assert equilibrium([o("B", B, 100, 9.90), o("S", S, 100, 10.00)], u(10.0), grid=GRID) is None
    assert equilibrium([o("B", B, 100, 9.90), o("B2", B, 5, None)], u(10.0)) is None
    result = uncross([o("B", B, 100, 9.90), o("S", S, 100, 10.00)], u(10.0))
    assert (result.price, result.volume, result.fills) == (None, 0, ())


def test_the_price_stays_inside_the_band() -> None:
    # A 200-share buy at 12.00 against 100 @ 10.80: a buy surplus at every price, so the
    # highest price wins: 12.00 without a band, the band's upper limit 11.00 with one.
    book = [o("B1", B, 200, 12.00), o("S1", S, 100, 10.80)]
    free = equilibrium(book, u(10.00), grid=GRID)
    banded = equilibrium(book, u(10.00), lower=u(9.00), upper=u(11.00), grid=GRID)
    assert free is not None and banded is not None
    assert (free.price, free.rule) == (u(12.00), 3)
    assert (banded.price, banded.volume, banded.rule) == (u(11.00), 100, 3)


def test_allocation_market_first_then_price_then_time() -> None:
    #  10.00: demand 600 (M 100, B3 100, B1 200, B2 200), supply 450 -> 450 shares at 10.00
    book = [
        o("B1", B, 200, 10.00),
        o("B2", B, 200, 10.00),
        o("M", B, 100, None),
        o("B3", B, 100, 10.10),
        o("S1", S, 450, 10.00),
    ]
    result = uncross(book, u(10.00), grid=GRID)
    assert (result.price, result.volume, result.rule) == (u(10.00), 450, 1)
    assert result.fills == (
        AuctionFill("M", "S1", 100),
        AuctionFill("B3", "S1", 100),
        AuctionFill("B1", "S1", 200),
        AuctionFill("B2", "S1", 50),
    )


def test_published_asx_example() -> None:
    # ASX's description of its call-auction algorithm (reproduced in the UNSW trading-engine
    # course notes): maximum volume 1,000 between $6.10 and $6.39, minimum surplus 500 from
    # $6.35 to $6.39, buy pressure at each, so the auction price is $6.39 (Principle 3).
    # The last orders matched were broker 227's buy at $6.39 and broker 606's sell at $6.10.
    book = [
        o("199", B, 500, 6.40),
        o("227", B, 500, 6.39),
        o("298", B, 500, 6.39),
        o("288", B, 1000, 6.34),
        o("144", B, 500, 6.33),
        o("606", S, 1000, 6.10),
        o("317", S, 500, 6.40),
        o("150", S, 520, 6.41),
        o("203", S, 550, 6.42),
        o("202", S, 519, 6.43),
    ]
    result = uncross(book, u(6.30), grid=GRID)
    assert (result.price, result.volume, result.surplus, result.rule) == (u(6.39), 1000, 500, 3)
    assert result.fills == (AuctionFill("199", "606", 500), AuctionFill("227", "606", 500))


def test_published_marketgrid_example() -> None:
    # MarketGrid's single-price auction example: bid and ask volumes per price, cumulative
    # sums, and a maximum executable volume of 290 at 12,400 (price units as published).
    bids = {13000: 45, 12900: 95, 12800: 25, 12700: 35, 12600: 25, 12500: 55, 12400: 200,
            12300: 80, 12200: 60}  # fmt: skip
    asks = {13100: 35, 13000: 50, 12900: 10, 12800: 15, 12700: 10, 12600: 20, 12500: 90,
            12400: 155, 12300: 125, 12200: 10}  # fmt: skip
    book = [AuctionOrder(f"b{p}", B, q, p, k) for k, (p, q) in enumerate(bids.items())]
    book += [AuctionOrder(f"a{p}", S, q, p, 100 + k) for k, (p, q) in enumerate(asks.items())]
    eq = equilibrium(book, 12600)
    assert eq is not None
    assert (eq.price, eq.volume, eq.surplus, eq.rule) == (12400, 290, 480 - 290, 1)


def _brute_force(book: list[AuctionOrder], ref: int, tick: int) -> tuple[int, int] | None:
    """The four rules applied literally to every grid price in range (independent check)."""
    limits = [x.limit for x in book if x.limit is not None] + [ref]
    rows = []
    for p in range(min(limits), max(limits) + tick, tick):
        d = sum(x.qty for x in book if x.side is B and (x.limit is None or x.limit >= p))
        s = sum(x.qty for x in book if x.side is S and (x.limit is None or x.limit <= p))
        rows.append((p, min(d, s), d - s))
    best = max(v for _, v, _ in rows)
    if best == 0:
        return None
    rows = [r for r in rows if r[1] == best]
    least = min(abs(r[2]) for r in rows)
    rows = [r for r in rows if abs(r[2]) == least]
    if all(r[2] > 0 for r in rows):
        return rows[-1][0], best
    if all(r[2] < 0 for r in rows):
        return rows[0][0], best
    return min(rows, key=lambda r: (abs(r[0] - ref), -r[0]))[0], best


def test_agrees_with_brute_force_over_every_grid_price() -> None:
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(1, 12))
        book = []
        for k in range(n):
            side = B if rng.random() < 0.5 else S
            price = None if rng.random() < 0.1 else 10.00 + 0.01 * int(rng.integers(-15, 16))
            book.append(o(f"o{k}", side, int(rng.integers(1, 20)) * 100, price))
        ref = u(10.00 + 0.01 * int(rng.integers(-20, 21)))
        expected = _brute_force(book, ref, 100)
        got = equilibrium(book, ref, grid=GRID)
        assert (None if got is None else (got.price, got.volume)) == expected
        if got is not None:
            checked += 1
            # After allocation nothing executable is left: the residual book does not cross.
            fills = allocate(book, got.price, got.volume)
            done: dict[str, int] = {}
            for f in fills:
                done[f.buy_id] = done.get(f.buy_id, 0) + f.qty
                done[f.sell_id] = done.get(f.sell_id, 0) + f.qty
            assert sum(f.qty for f in fills) == got.volume
            rest = [
                AuctionOrder(x.order_id, x.side, x.qty - done.get(x.order_id, 0), x.limit, x.seq)
                for x in book
                if x.limit is not None and x.qty > done.get(x.order_id, 0)
            ]
            assert equilibrium(rest, ref, grid=GRID) is None
    assert checked > 100
