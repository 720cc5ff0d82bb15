"""A price-time priority limit order book for one symbol, in integer price units.

Prices are ``quant.market.ticks`` units (1/10,000 TRY) so that levels are exact dictionary keys and
comparisons never meet float noise. Each side keeps its prices in a sorted list and each level
is an insertion-ordered ``dict`` of resting orders: the dict's order *is* time priority, a cancel
is O(1) and the oldest order is ``next(iter(level))``.

The book knows nothing of order types, sessions or reports. It answers "what trades if this much
hits that side up to that price" (``match``), keeps resting orders (``add``, ``cancel``,
``amend``) and lets an auction reduce orders it filled (``fill``). The matching engine wraps it
with the exchange's rules; keeping the book this small is what lets the engine's continuous
matching and the auction uncross share one structure.

Amend rules follow BIST (and most price-time venues): a lower quantity keeps the order's place in
the queue, a price change or a higher quantity sends it to the back, because otherwise a trader
could reserve a queue place with a small order and grow it later.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple

from quant.execution.orders import Side
from quant.market.ticks import from_units


@dataclass(slots=True)
class RestingOrder:
    """One order resting on the book: ``qty`` is what is left to trade (the leaves quantity)."""

    order_id: str
    side: Side
    price: int
    """Limit price in price units."""
    qty: int
    seq: int
    """Time priority: lower is earlier. Assigned by the book on entry and on loss of priority."""
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Match:
    """One execution between an incoming (taker) order and a resting (maker) order."""

    maker_id: str
    taker_id: str
    price: int
    """Trade price in price units."""
    qty: int
    maker_leaves: int
    """What is left of the maker after this execution (0 means it left the book)."""


class BookLevel(NamedTuple):
    """Aggregated quantity at one price (``price`` in units; ``price_try`` in TRY)."""

    price: int
    qty: int
    orders: int

    @property
    def price_try(self) -> float:
        return from_units(self.price)


class _Side:
    """One side of the book: sorted prices, FIFO levels and per-level totals."""

    __slots__ = ("levels", "prices", "totals")

    def __init__(self) -> None:
        self.prices: list[int] = []
        """Ascending; the best bid is the last element, the best ask the first."""
        self.levels: dict[int, dict[str, RestingOrder]] = {}
        self.totals: dict[int, int] = {}


class OrderBook:
    """Resting orders of one symbol with price-time priority."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _Side()
        self._asks = _Side()
        self._orders: dict[str, RestingOrder] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def get(self, order_id: str) -> RestingOrder | None:
        return self._orders.get(order_id)

    def _side(self, side: Side) -> _Side:
        return self._bids if side is Side.BUY else self._asks

    def next_seq(self) -> int:
        """A fresh time-priority number (also used for orders held outside the book)."""
        self._seq += 1
        return self._seq

    # -- resting orders -------------------------------------------------------------------

    def add(self, order_id: str, side: Side, price: int, qty: int, ts_ns: int) -> RestingOrder:
        """Rest an order at the back of its price level. The caller checked it does not cross
        (in continuous trading) or is collecting an auction (where a crossed book is normal)."""
        if order_id in self._orders:
            raise ValueError(f"order {order_id} is already on the {self.symbol} book")
        if qty <= 0:
            raise ValueError(f"cannot rest {qty} shares")
        resting = RestingOrder(order_id, side, price, qty, self.next_seq(), ts_ns)
        self._insert(resting)
        return resting

    def _insert(self, resting: RestingOrder) -> None:
        s = self._side(resting.side)
        level = s.levels.get(resting.price)
        if level is None:
            level = s.levels[resting.price] = {}
            s.totals[resting.price] = 0
            bisect.insort(s.prices, resting.price)
        level[resting.order_id] = resting
        s.totals[resting.price] += resting.qty
        self._orders[resting.order_id] = resting

    def _remove(self, resting: RestingOrder) -> None:
        s = self._side(resting.side)
        level = s.levels[resting.price]
        del level[resting.order_id]
        s.totals[resting.price] -= resting.qty
        if not level:
            self._drop_level(s, resting.price)
        del self._orders[resting.order_id]

    @staticmethod
    def _drop_level(s: _Side, price: int) -> None:
        del s.levels[price]
        del s.totals[price]
        i = bisect.bisect_left(s.prices, price)
        del s.prices[i]

    def cancel(self, order_id: str) -> RestingOrder | None:
        """Take an order off the book; None if it is not resting."""
        resting = self._orders.get(order_id)
        if resting is not None:
            self._remove(resting)
        return resting

    def amend(
        self, order_id: str, qty: int | None = None, price: int | None = None, ts_ns: int = 0
    ) -> bool:
        """Change a resting order's leaves quantity and/or price; True if it lost time priority.

        A decrease in quantity at the same price keeps the order where it is; anything else
        (new price, larger quantity) re-queues it behind every order at its (new) level.
        """
        resting = self._orders[order_id]
        new_qty = resting.qty if qty is None else qty
        new_price = resting.price if price is None else price
        if new_qty <= 0:
            raise ValueError(f"cannot amend {order_id} to {new_qty} shares")
        if new_price == resting.price and new_qty <= resting.qty:
            self._side(resting.side).totals[resting.price] -= resting.qty - new_qty
            resting.qty = new_qty
            return False
        self._remove(resting)
        resting.qty, resting.price = new_qty, new_price
        resting.seq, resting.ts_ns = self.next_seq(), ts_ns
        self._insert(resting)
        return True

    def fill(self, order_id: str, qty: int) -> int:
        """Reduce a resting order by ``qty`` executed elsewhere (an auction); returns its leaves."""
        resting = self._orders[order_id]
        if not 0 < qty <= resting.qty:
            raise ValueError(f"cannot fill {qty} of {order_id} with {resting.qty} resting")
        if qty == resting.qty:
            self._remove(resting)
            resting.qty = 0
            return 0
        self._side(resting.side).totals[resting.price] -= qty
        resting.qty -= qty
        return resting.qty

    def clear(self) -> list[RestingOrder]:
        """Remove everything (end of session); returns what was resting, in priority order."""
        out = self.orders(Side.BUY) + self.orders(Side.SELL)
        self._bids, self._asks, self._orders = _Side(), _Side(), {}
        return out

    # -- inspection -----------------------------------------------------------------------

    def best_bid(self) -> int | None:
        prices = self._bids.prices
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self._asks.prices
        return prices[0] if prices else None

    def best(self, side: Side) -> int | None:
        """Best price on ``side`` (highest bid, lowest ask)."""
        return self.best_bid() if side is Side.BUY else self.best_ask()

    def level_qty(self, side: Side, price: int) -> int:
        return self._side(side).totals.get(price, 0)

    def depth(self, side: Side, levels: int = 5) -> list[BookLevel]:
        """The best ``levels`` price levels of ``side``, best first."""
        s = self._side(side)
        prices = s.prices[::-1][:levels] if side is Side.BUY else s.prices[:levels]
        return [BookLevel(p, s.totals[p], len(s.levels[p])) for p in prices]

    def orders(self, side: Side) -> list[RestingOrder]:
        """Resting orders of ``side`` in priority order (best price first, then oldest)."""
        s = self._side(side)
        prices = reversed(s.prices) if side is Side.BUY else s.prices
        return [o for p in prices for o in s.levels[p].values()]

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    # -- matching -------------------------------------------------------------------------

    def executable_qty(
        self, side: Side, limit: int | None, stop: int | None = None, cap: int | None = None
    ) -> int:
        """How much an incoming ``side`` order could execute now, up to ``cap``.

        ``limit`` is the taker's worst acceptable price (None: any); ``stop`` is the first price
        the taker must not reach (a circuit-breaker threshold), exclusive of trading.
        """
        buying = side is Side.BUY
        s = self._asks if buying else self._bids
        prices = s.prices if buying else reversed(s.prices)
        total = 0
        for p in prices:
            if buying:
                if (limit is not None and p > limit) or (stop is not None and p >= stop):
                    break
            elif (limit is not None and p < limit) or (stop is not None and p <= stop):
                break
            total += s.totals[p]
            if cap is not None and total >= cap:
                return cap
        return total

    def match(
        self,
        side: Side,
        qty: int,
        limit: int | None,
        taker_id: str,
        stop: int | None = None,
        price: int | None = None,
    ) -> list[Match]:
        """Execute an incoming ``side`` order of ``qty`` against the opposite side.

        Walks levels best first and orders oldest first while the level is within ``limit``
        (None: a market order) and short of ``stop``. Trades print at the resting order's price
        unless ``price`` forces one price (trades at the closing price). Returns the executions in
        order; the taker's unfilled rest is the caller's to rest, cancel or convert.
        """
        buying = side is Side.BUY
        s = self._asks if buying else self._bids
        prices, levels, totals = s.prices, s.levels, s.totals
        orders = self._orders
        out: list[Match] = []
        remaining = qty
        while remaining > 0 and prices:
            p = prices[0] if buying else prices[-1]
            if buying:
                if (limit is not None and p > limit) or (stop is not None and p >= stop):
                    break
            elif (limit is not None and p < limit) or (stop is not None and p <= stop):
                break
            level = levels[p]
            trade_price = p if price is None else price
            while remaining > 0 and level:
                maker = next(iter(level.values()))
                take = remaining if remaining < maker.qty else maker.qty
                maker.qty -= take
                remaining -= take
                totals[p] -= take
                if maker.qty == 0:
                    del level[maker.order_id]
                    del orders[maker.order_id]
                out.append(Match(maker.order_id, taker_id, trade_price, take, maker.qty))
            if not level:
                del levels[p], totals[p]
                if buying:
                    del prices[0]
                else:
                    prices.pop()
        return out
