"""The order book and the matching engine: priority, order types, replace rules, every reject
code, auctions through the session, the circuit breaker, half days, expiry and determinism."""

from __future__ import annotations

import inspect
from datetime import date, datetime, time

import pytest

from quant.clock import SimulatedClock
from quant.data.schema import TradeCondition
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.execution.venue import Venue
from quant.market import ISTANBUL, CircuitBreakers, Instrument, SessionPhase
from quant.market.ticks import to_units
from quant.sim.book import OrderBook
from quant.sim.matching import MatchingEngine, is_request_answer, to_ns

DAY = date(2024, 1, 3)  # a full Wednesday session
HALF = date(2024, 4, 9)  # eve of Ramadan Bayram: continuous trading ends at 12:30
B, S = Side.BUY, Side.SELL
LIMIT, MARKET, MTL = OrderType.LIMIT, OrderType.MARKET, OrderType.MARKET_TO_LIMIT
IOC, FOK = TimeInForce.IOC, TimeInForce.FOK


def at(hh: int, mm: int, ss: int = 0, day: date = DAY) -> int:
    return to_ns(datetime.combine(day, time(hh, mm, ss), ISTANBUL))


class Exchange:
    """An engine on a simulated clock, with a log of every report per order."""

    def __init__(self, day: date = DAY, refs: dict[str, float] | None = None, fee_model=None):
        self.clock = SimulatedClock()
        self.engine = MatchingEngine(
            [Instrument("AAA"), Instrument("BBB"), Instrument("CCC")],
            clock=self.clock,
            fee_model=fee_model,
        )
        self.day = day
        self.reports: list[ExecutionReport] = []
        self.reports += self.engine.start_session(day, refs or {"AAA": 10.00, "BBB": 100.0})
        self._n = 0

    def to(self, hh: int, mm: int, ss: int = 0) -> list[ExecutionReport]:
        self.clock.advance_to(at(hh, mm, ss, self.day))
        out = self.engine.on_time()
        self.reports += out
        return out

    def send(
        self,
        side: Side,
        qty: int,
        price: float | None = None,
        order_type: OrderType = LIMIT,
        tif: TimeInForce = TimeInForce.DAY,
        symbol: str = "AAA",
        oid: str | None = None,
    ) -> tuple[str, list[ExecutionReport]]:
        self._n += 1
        oid = oid or f"o{self._n}"
        order = Order(oid, symbol, side, qty, order_type, price, tif, self.clock.now_ns())
        out = self.engine.submit(order)
        self.reports += out
        return oid, out

    def of(self, oid: str) -> list[ExecutionReport]:
        return [r for r in self.reports if r.client_order_id == oid]

    def fills(self, oid: str) -> list[tuple[int, float]]:
        return [(r.last_qty, r.last_price) for r in self.of(oid) if r.last_qty]

    def status(self, oid: str) -> OrderStatus:
        state = self.engine.status(oid)
        assert state is not None
        return state.status

    def now(self) -> int:
        return self.engine.now_ns


def continuous(**kw) -> Exchange:
    ex = Exchange(**kw)
    ex.to(10, 0, 1)
    return ex


def only_reject(out: list[ExecutionReport]) -> ExecutionReport:
    assert len(out) == 1 and out[0].status is OrderStatus.REJECTED, out
    return out[0]


# -- the book -----------------------------------------------------------------------------


def test_book_price_then_time_priority_and_partial_fills() -> None:
    book = OrderBook("AAA")
    book.add("a1", S, to_units(10.10), 100, 1)
    book.add("a2", S, to_units(10.00), 100, 2)
    book.add("a3", S, to_units(10.00), 100, 3)
    assert book.best_ask() == to_units(10.00)
    assert [(lv.price_try, lv.qty, lv.orders) for lv in book.depth(S)] == [
        (10.00, 200, 2),
        (10.10, 100, 1),
    ]
    matches = book.match(B, 250, to_units(10.10), "t")
    # Better price first (both 10.00 orders, oldest first), then 10.10 partially.
    assert [(m.maker_id, m.qty, m.price, m.maker_leaves) for m in matches] == [
        ("a2", 100, to_units(10.00), 0),
        ("a3", 100, to_units(10.00), 0),
        ("a1", 50, to_units(10.10), 50),
    ]
    assert book.depth(S) == [(to_units(10.10), 50, 1)]
    assert "a2" not in book and book.get("a1").qty == 50  # type: ignore[union-attr]


def test_book_limit_and_stop_bound_a_match() -> None:
    book = OrderBook("AAA")
    for k, p in enumerate((10.0, 10.1, 10.2)):
        book.add(f"a{k}", S, to_units(p), 100, k)
    assert book.executable_qty(B, to_units(10.1)) == 200
    assert book.executable_qty(B, None, stop=to_units(10.2)) == 200
    assert book.executable_qty(B, None, cap=150) == 150
    assert sum(m.qty for m in book.match(B, 1000, None, "t", stop=to_units(10.1))) == 100


def test_book_amend_priority_rules() -> None:
    book = OrderBook("AAA")
    p = to_units(10.0)
    book.add("x", B, p, 300, 1)
    book.add("y", B, p, 300, 2)
    assert book.amend("x", qty=200) is False  # smaller: keeps its place
    assert [r.order_id for r in book.orders(B)] == ["x", "y"]
    assert book.level_qty(B, p) == 500
    assert book.amend("x", qty=400) is True  # larger: to the back
    assert [r.order_id for r in book.orders(B)] == ["y", "x"]
    assert book.amend("y", price=to_units(10.01)) is True  # new price: back of the new level
    assert book.best_bid() == to_units(10.01)
    assert book.level_qty(B, p) == 400


# -- continuous trading -------------------------------------------------------------------


def test_engine_price_time_priority_and_partial_fills() -> None:
    ex = continuous()
    first, _ = ex.send(S, 300, 10.05)
    second, _ = ex.send(S, 300, 10.05)
    better, _ = ex.send(S, 100, 10.04)
    taker, out = ex.send(B, 500, 10.05)
    assert ex.fills(taker) == [(100, 10.04), (300, 10.05), (100, 10.05)]
    assert ex.fills(better) == [(100, 10.04)]
    assert ex.fills(first) == [(300, 10.05)]
    assert ex.fills(second) == [(100, 10.05)]
    assert ex.status(taker) is OrderStatus.FILLED
    assert ex.status(second) is OrderStatus.PARTIALLY_FILLED
    last = ex.of(taker)[-1]
    assert last.avg_price == pytest.approx((100 * 10.04 + 400 * 10.05) / 500)
    assert {r.liquidity for r in out if r.client_order_id == taker and r.last_qty} == {"taker"}
    assert ex.engine.book("AAA").depth(S) == [(to_units(10.05), 200, 1)]
    assert [p.condition for p in ex.engine.prints] == [TradeCondition.CONTINUOUS] * 3
    assert [p.aggressor for p in ex.engine.prints] == [1, 1, 1]


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    ex = continuous()
    ex.send(S, 200, 10.05)
    ioc, _ = ex.send(B, 500, 10.05, tif=IOC)
    assert ex.fills(ioc) == [(200, 10.05)]
    assert ex.of(ioc)[-1].status is OrderStatus.CANCELLED
    assert ex.engine.book("AAA").best_bid() is None  # nothing rested


def test_fok_fills_in_full_or_not_at_all() -> None:
    ex = continuous()
    ex.send(S, 200, 10.05)
    ex.send(S, 200, 10.06)
    killed, _ = ex.send(B, 500, 10.06, tif=FOK)
    assert ex.fills(killed) == []
    assert [r.status for r in ex.of(killed)] == [OrderStatus.ACCEPTED, OrderStatus.CANCELLED]
    assert ex.engine.book("AAA").level_qty(S, to_units(10.05)) == 200  # untouched
    filled, _ = ex.send(B, 400, 10.06, tif=FOK)
    assert ex.fills(filled) == [(200, 10.05), (200, 10.06)]
    assert ex.status(filled) is OrderStatus.FILLED


def test_market_order_takes_liquidity_and_cancels_its_rest() -> None:
    ex = continuous()
    ex.send(S, 100, 10.05)
    ex.send(S, 100, 10.10)
    mkt, _ = ex.send(B, 300, order_type=MARKET)
    assert ex.fills(mkt) == [(100, 10.05), (100, 10.10)]
    assert ex.of(mkt)[-1].status is OrderStatus.CANCELLED
    assert ex.of(mkt)[-1].cum_qty == 200
    empty, _ = ex.send(S, 100, order_type=MARKET)  # no bids at all
    assert [r.status for r in ex.of(empty)] == [OrderStatus.ACCEPTED, OrderStatus.CANCELLED]


def test_market_to_limit_trades_at_the_best_price_and_rests_there() -> None:
    ex = continuous()
    ex.send(S, 100, 10.05)
    ex.send(S, 100, 10.10)
    mtl, _ = ex.send(B, 300, order_type=MTL)
    # Only the best level (10.05) trades; the rest becomes a 10.05 bid, below the 10.10 ask.
    assert ex.fills(mtl) == [(100, 10.05)]
    assert ex.status(mtl) is OrderStatus.PARTIALLY_FILLED
    assert ex.engine.book("AAA").depth(B) == [(to_units(10.05), 200, 1)]
    seller, _ = ex.send(S, 50, 10.05)
    assert ex.fills(mtl)[-1] == (50, 10.05) and ex.fills(seller) == [(50, 10.05)]
    lonely, _ = ex.send(S, 10, order_type=MTL, symbol="BBB")
    assert ex.of(lonely)[-1].status is OrderStatus.CANCELLED


def test_replace_priority_rules_on_bist() -> None:
    ex = continuous()
    a, _ = ex.send(B, 300, 10.00)
    b, _ = ex.send(B, 300, 10.00)
    # Smaller quantity: keeps time priority.
    out = ex.engine.replace(a, ex.now(), quantity=200)
    assert out[0].reason == "replaced (time priority kept)" and out[0].leaves_qty == 200
    assert is_request_answer(out[0])
    ex.send(S, 100, 10.00)
    assert ex.fills(a) == [(100, 10.00)] and ex.fills(b) == []
    # Larger quantity: to the back of the queue.
    out = ex.engine.replace(a, ex.now(), quantity=500)
    assert out[0].reason == "replaced (time priority lost)" and out[0].leaves_qty == 400
    ex.send(S, 100, 10.00)
    assert ex.fills(b) == [(100, 10.00)] and len(ex.fills(a)) == 1
    # New price: loses priority, and crossing the book executes at once as a taker.
    ex.send(S, 50, 10.02)
    state = ex.engine.status(a)
    assert state is not None and state.order.quantity == 500
    out = ex.engine.replace(a, ex.now(), limit_price=10.02)
    ex.reports += out
    assert out[0].reason.startswith("replaced")
    assert ex.fills(a)[-1] == (50, 10.02)
    assert [r.liquidity for r in out if r.client_order_id == a and r.last_qty] == ["taker"]
    assert ex.engine.book("AAA").depth(B)[0] == (to_units(10.02), 350, 1)
    assert state.order.limit_price == 10.02


def test_replace_refusals_change_nothing() -> None:
    ex = continuous()
    a, _ = ex.send(B, 300, 10.00)
    ex.send(S, 100, 10.00)  # a has 100 filled
    for kwargs, code in [
        ({"quantity": 100}, RejectCode.INVALID_ORDER),  # not above the filled 100
        ({"limit_price": 10.005}, RejectCode.OFF_TICK),
        ({"limit_price": 11.50}, RejectCode.OUTSIDE_BAND),
        ({}, RejectCode.INVALID_ORDER),
    ]:
        (answer,) = ex.engine.replace(a, ex.now(), **kwargs)
        assert answer.reject_code is code, kwargs
        assert answer.status is OrderStatus.PARTIALLY_FILLED and is_request_answer(answer)
    state = ex.engine.status(a)
    assert state is not None and state.order.quantity == 300 and state.order.limit_price == 10.00
    (unknown,) = ex.engine.replace("nope", ex.now(), quantity=5)
    assert unknown.status is OrderStatus.REJECTED and is_request_answer(unknown)


def test_cancel_and_cancel_all() -> None:
    ex = continuous()
    a, _ = ex.send(B, 100, 10.00)
    b, _ = ex.send(S, 100, 10.10)
    c, _ = ex.send(B, 100, 99.0, symbol="BBB")
    (done,) = ex.engine.cancel(a, ex.now())
    assert done.status is OrderStatus.CANCELLED and done.leaves_qty == 0
    assert ex.engine.book("AAA").best_bid() is None
    (again,) = ex.engine.cancel(a, ex.now())  # already cancelled: refused, not an error
    assert again.status is OrderStatus.CANCELLED and again.reject_code is RejectCode.INVALID_ORDER
    (unknown,) = ex.engine.cancel("ghost", ex.now())
    assert (
        unknown.status is OrderStatus.REJECTED and unknown.reject_code is RejectCode.INVALID_ORDER
    )
    out = ex.engine.cancel_all(ex.now(), symbol="BBB")
    assert [(r.client_order_id, r.status) for r in out] == [(c, OrderStatus.CANCELLED)]
    out = ex.engine.cancel_all(ex.now())
    assert [(r.client_order_id, r.status) for r in out] == [(b, OrderStatus.CANCELLED)]
    assert ex.engine.open_orders() == []


# -- reject codes -------------------------------------------------------------------------


def test_structural_unknown_duplicate_tick_and_band_rejects() -> None:
    ex = continuous()
    assert only_reject(ex.send(B, 0, 10.00)[1]).reject_code is RejectCode.INVALID_ORDER
    assert only_reject(ex.send(B, 100)[1]).reject_code is RejectCode.INVALID_ORDER  # no price
    assert only_reject(ex.send(B, 100, float("nan"))[1]).reject_code is RejectCode.INVALID_ORDER
    assert only_reject(ex.send(B, 100, float("inf"))[1]).reject_code is RejectCode.INVALID_ORDER
    r = only_reject(ex.send(B, 100, 10.00, symbol="ZZZ")[1])
    assert r.reject_code is RejectCode.UNKNOWN_SYMBOL
    r = only_reject(ex.engine.submit(Order(7, "AAA", B, 100, LIMIT, 10.00)))  # type: ignore[arg-type]
    assert r.reject_code is RejectCode.INVALID_ORDER
    r = only_reject(ex.engine.submit(Order("x", "AAA", 1, 100, LIMIT, 10.00)))  # type: ignore[arg-type]
    assert r.reject_code is RejectCode.INVALID_ORDER and r.side is None
    # Tick 0.01 below 20 TRY, 0.10 from 100 TRY (the August 2023 table).
    assert only_reject(ex.send(B, 100, 10.005)[1]).reject_code is RejectCode.OFF_TICK
    r = only_reject(ex.send(B, 100, 100.05, symbol="BBB")[1])
    assert r.reject_code is RejectCode.OFF_TICK
    # Band around the 10.00 base: [9.00, 11.00], inclusive.
    assert only_reject(ex.send(B, 100, 11.01)[1]).reject_code is RejectCode.OUTSIDE_BAND
    assert only_reject(ex.send(S, 100, 8.99)[1]).reject_code is RejectCode.OUTSIDE_BAND
    edge, out = ex.send(S, 100, 11.00)
    assert out[0].status is OrderStatus.ACCEPTED
    # A duplicate id is refused and leaves the original order alone.
    out = ex.send(B, 5, 10.00, oid=edge)[1]
    assert only_reject(out).reject_code is RejectCode.DUPLICATE_ORDER_ID
    assert ex.status(edge) is OrderStatus.ACCEPTED


def test_quantity_must_be_whole_lots() -> None:
    clock = SimulatedClock(at(11, 0))
    engine = MatchingEngine([Instrument("LOT", lot_size=100)], clock=clock)
    engine.start_session(DAY, {"LOT": 50.0})
    r = only_reject(engine.submit(Order("a", "LOT", B, 150, LIMIT, 50.0)))
    assert r.reject_code is RejectCode.INVALID_ORDER and "lots" in r.reason
    assert engine.submit(Order("b", "LOT", B, 200, LIMIT, 50.0))[0].status is OrderStatus.ACCEPTED


def test_zero_and_negative_quantities_are_rejected_not_raised() -> None:
    clock = SimulatedClock(at(11, 0))
    engine = MatchingEngine([Instrument("QTY")], clock=clock)
    engine.start_session(DAY, {"QTY": 50.0})
    for i, qty in enumerate((0, -5)):
        r = only_reject(engine.submit(Order(f"q{i}", "QTY", B, qty, LIMIT, 50.0)))
        assert r.reject_code is RejectCode.INVALID_ORDER and r.status is OrderStatus.REJECTED
        assert engine.status(f"q{i}").status is OrderStatus.REJECTED


def test_session_rejects() -> None:
    ex = Exchange(refs={"AAA": 10.00})
    ex.to(9, 30)  # before the opening auction
    r = only_reject(ex.send(B, 100, 10.00)[1])
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    ex.to(9, 45)  # opening auction: no IOC/FOK
    r = only_reject(ex.send(B, 100, 10.00, tif=IOC)[1])
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    waiting, _ = ex.send(B, 100, 9.50)
    ex.to(9, 56)  # the uncross window takes no orders, and no cancels either
    assert only_reject(ex.send(B, 100, 10.00)[1]).reject_code is RejectCode.OUTSIDE_SESSION
    (refused,) = ex.engine.cancel(waiting, ex.now())
    assert refused.reject_code is RejectCode.OUTSIDE_SESSION and is_request_answer(refused)
    assert ex.status(waiting) is OrderStatus.ACCEPTED
    ex.to(10, 30)  # BBB has no reference price today: it does not trade
    r = only_reject(ex.send(B, 100, 100.0, symbol="BBB")[1])
    assert r.reject_code is RejectCode.OUTSIDE_SESSION
    ex.to(18, 0, 30)  # closing price publication
    assert only_reject(ex.send(B, 100, 10.00)[1]).reject_code is RejectCode.OUTSIDE_SESSION
    ex.to(18, 30)  # after the session
    assert only_reject(ex.send(B, 100, 10.00)[1]).reject_code is RejectCode.OUTSIDE_SESSION
    # An engine that never started a session rejects too.
    idle = MatchingEngine([Instrument("AAA")], clock=SimulatedClock(at(11, 0)))
    out = idle.submit(Order("x", "AAA", B, 1, LIMIT, 10.0))
    assert only_reject(out).reject_code is RejectCode.OUTSIDE_SESSION


def test_every_report_went_through_the_order_state_machine() -> None:
    ex = continuous()
    ids = [ex.send(S, 100, 10.00 + 0.01 * k)[0] for k in range(3)]
    taker, _ = ex.send(B, 250, 10.02)
    ex.engine.cancel(ids[2], ex.now())
    for oid in [*ids, taker]:
        state = ex.engine.status(oid)
        assert state is not None
        mirror = OrderState(state.order)
        for report in state.history:
            if not is_request_answer(report):
                mirror.apply(report)
        assert (mirror.status, mirror.filled_qty) == (state.status, state.filled_qty)
        assert mirror.avg_price == pytest.approx(state.avg_price)


# -- auctions through the session ---------------------------------------------------------


def test_opening_auction_uncross_hand_worked() -> None:
    # Base 10.00. Collected: buys 1000 @ 10.20, 500 @ 10.10, 800 @ 10.00 and a 200-share
    # market buy; sells 700 @ 9.90, 600 @ 10.00, 900 @ 10.20.
    #   price   demand  supply  volume  surplus
    #   9.90     2500     700     700   +1800
    #  10.00     2500    1300    1300   +1200
    #  10.01-09  1700    1300    1300    +400
    #  10.10     1700    1300    1300    +400
    #  10.20     1200    2200    1200   -1000
    # Buy pressure over 10.01-10.10: the open is 10.10 on 1300 shares.
    ex = Exchange(refs={"AAA": 10.00})
    ex.to(9, 41)
    b1, _ = ex.send(B, 1000, 10.20)
    b2, _ = ex.send(B, 500, 10.10)
    b3, _ = ex.send(B, 800, 10.00)
    mb, _ = ex.send(B, 200, order_type=MARKET)
    s1, _ = ex.send(S, 700, 9.90)
    s2, _ = ex.send(S, 600, 10.00)
    s3, _ = ex.send(S, 900, 10.20)
    assert ex.engine.prints == [] and ex.engine.book("AAA").is_crossed()
    ex.to(9, 55)
    assert sum(p.qty for p in ex.engine.prints) == 1300
    assert {p.price for p in ex.engine.prints} == {10.10}
    assert {p.condition for p in ex.engine.prints} == {TradeCondition.OPENING_AUCTION}
    # Market first, then price priority: MB 200, B1 1000, B2 100.
    assert ex.fills(mb) == [(200, 10.10)]
    assert sum(q for q, _ in ex.fills(b1)) == 1000
    assert ex.fills(b2) == [(100, 10.10)]
    assert ex.fills(b3) == [] and ex.fills(s3) == []
    assert sum(q for q, _ in ex.fills(s1) + ex.fills(s2)) == 1300
    assert {r.liquidity for r in ex.reports if r.last_qty} == {"auction"}
    # The static reference of the circuit breaker is now the opening price.
    assert ex.engine.reference_price("AAA") == 10.10
    assert not ex.engine.book("AAA").is_crossed()


def test_collected_market_and_mtl_orders_settle_at_the_uncross() -> None:
    ex = Exchange(refs={"AAA": 10.00})
    ex.to(9, 41)
    ex.send(S, 100, 10.00)
    mkt, _ = ex.send(B, 300, order_type=MARKET)
    mtl, _ = ex.send(B, 300, order_type=MTL)
    # Demand 600 (all market) against 100: 100 trade at the reference 10.00. The market order
    # (earlier) takes them; its rest is cancelled; the MTL order's rest bids 10.00.
    ex.to(9, 55)
    assert ex.fills(mkt) == [(100, 10.00)]
    assert ex.of(mkt)[-1].status is OrderStatus.CANCELLED
    assert ex.fills(mtl) == [] and ex.status(mtl) is OrderStatus.ACCEPTED
    assert ex.engine.book("AAA").depth(B) == [(to_units(10.00), 300, 1)]


def test_closing_auction_band_uncross_and_trades_at_close() -> None:
    ex = continuous(refs={"AAA": 10.00})
    ex.send(S, 100, 10.20)
    ex.send(B, 100, 10.20)  # last continuous price 10.20
    ex.to(18, 1)
    # Closing band: 10.20 ± 3% -> [9.90 (9.894 up), 10.50 (10.506 down)].
    band = ex.engine.band("AAA")
    assert band is not None and (band.lower, band.upper) == (9.90, 10.50)
    assert only_reject(ex.send(B, 100, 10.60)[1]).reject_code is RejectCode.OUTSIDE_BAND
    assert only_reject(ex.send(S, 100, 9.80)[1]).reject_code is RejectCode.OUTSIDE_BAND
    # Collected: buys 400 @ 10.30, 300 @ 10.25; sells 500 @ 10.25, 300 @ 10.35.
    #   price   demand  supply  volume  surplus
    #  10.25      700     500     500    +200
    #  10.26-29   400     500     400
    #  10.30      400     500     400
    #  10.35        0     800       0
    # Maximum volume 500 at 10.25 only: the closing price.
    b1, _ = ex.send(B, 400, 10.30)
    b2, _ = ex.send(B, 300, 10.25)
    s1, _ = ex.send(S, 500, 10.25)
    s2, _ = ex.send(S, 300, 10.35)
    ex.to(18, 5)
    assert ex.engine.closing_price("AAA") == 10.25
    assert ex.fills(b1) == [(400, 10.25)] and ex.fills(b2) == [(100, 10.25)]
    assert ex.fills(s1) == [(400, 10.25), (100, 10.25)] and ex.fills(s2) == []
    closing = [p for p in ex.engine.prints if p.condition is TradeCondition.CLOSING_AUCTION]
    assert sum(p.qty for p in closing) == 500
    # Trades at close: only the closing price; b2's 200-share rest at 10.25 is matched first.
    ex.to(18, 8)
    r = only_reject(ex.send(S, 100, 10.24)[1])
    assert r.reject_code is RejectCode.OUTSIDE_BAND
    assert only_reject(ex.send(S, 100, order_type=MARKET)[1]).reject_code is (
        RejectCode.OUTSIDE_SESSION
    )
    tac, _ = ex.send(S, 250, 10.25)
    assert ex.fills(tac) == [(200, 10.25)]
    assert ex.engine.prints[-1].condition is TradeCondition.TRADES_AT_CLOSE
    # End of session: what is left expires.
    out = ex.to(18, 10)
    assert sorted(r.client_order_id for r in out) == sorted([s2, tac])
    assert {r.status for r in out} == {OrderStatus.EXPIRED}
    assert ex.engine.open_orders() == []


def test_closing_price_falls_back_to_the_last_price() -> None:
    ex = continuous(refs={"AAA": 10.00})
    ex.send(S, 100, 10.20)
    ex.send(B, 100, 10.20)
    ex.to(18, 2)
    ex.send(B, 100, 10.00)  # does not cross
    ex.to(18, 6)
    assert ex.engine.closing_price("AAA") == 10.20


# -- circuit breaker ----------------------------------------------------------------------


def test_circuit_breaker_halts_into_an_auction_and_uncrosses() -> None:
    ex = continuous(refs={"AAA": 10.00})
    # No opening trade: the reference stays at the 10.00 base; a 5% move is 10.50 / 9.50.
    rule = CircuitBreakers().rule_on(DAY)
    assert rule.single_stock_move_pct == 0.05
    for k, p in enumerate((10.20, 10.40, 10.50, 10.60)):
        ex.send(S, 100, p, oid=f"ask{k}")
    taker, _ = ex.send(B, 400, 10.60)
    # 10.20 and 10.40 trade; 10.50 would be a 5% move: the stock halts before that trade.
    assert ex.fills(taker) == [(100, 10.20), (100, 10.40)]
    assert ex.engine.is_halted("AAA")
    halted_at = ex.now()
    assert ex.engine.halt_end_ns("AAA") == halted_at + 5 * 60 * 10**9  # 2024 rule: 5 minutes
    # The taker's rest (200 @ 10.60) waits in the halt auction; the book is crossed now.
    assert ex.engine.book("AAA").is_crossed()
    assert only_reject(ex.send(B, 10, 10.60, tif=IOC)[1]).reject_code is RejectCode.TRADING_HALTED
    r = only_reject(ex.send(B, 10, order_type=MARKET)[1])
    assert r.reject_code is RejectCode.TRADING_HALTED
    late, out = ex.send(S, 150, 10.45)  # a limit order joins the auction without trading
    assert [x.status for x in out] == [OrderStatus.ACCEPTED] and ex.fills(late) == []
    ex.to(10, 4)
    assert ex.engine.is_halted("AAA")
    # Halt auction at 10:05:01: buys 200 @ 10.60; sells 150 @ 10.45, 100 @ 10.50, 100 @ 10.60.
    #   price   demand  supply  volume  surplus
    #  10.45      200     150     150     +50
    #  10.46-49   200     150     150     +50
    #  10.50      200     250     200     -50
    #  10.51-59   200     250     200     -50
    #  10.60      200     350     200    -150
    # Maximum 200 over 10.50-10.59, sell surplus 50 at each: the lowest, 10.50.
    ex.to(10, 6)
    assert not ex.engine.is_halted("AAA")
    halt_prints = [p for p in ex.engine.prints if p.condition is TradeCondition.HALT_AUCTION]
    assert [(p.price, p.qty) for p in halt_prints] == [(10.50, 150), (10.50, 50)]
    assert halt_prints[0].ts_ns == halted_at + 5 * 60 * 10**9
    assert ex.fills(taker)[2:] == [(150, 10.50), (50, 10.50)]
    assert ex.status(taker) is OrderStatus.FILLED
    assert ex.fills("ask2") == [(50, 10.50)]
    # The halt auction price is the new reference: trading resumes and a 5% band around 10.50.
    assert ex.engine.reference_price("AAA") == 10.50
    fresh, _ = ex.send(B, 50, 10.60)
    assert ex.fills(fresh) == [(50, 10.50)]


def test_circuit_breaker_on_the_way_down_and_fok() -> None:
    ex = continuous(refs={"AAA": 10.00})
    ex.send(B, 100, 9.60, oid="bid1")
    ex.send(B, 100, 9.50, oid="bid2")
    fok, _ = ex.send(S, 200, 9.50, tif=FOK)
    # The full 200 needs the 9.50 bid, a 5% fall: the FOK is killed and the stock halts.
    assert ex.fills(fok) == [] and ex.of(fok)[-1].status is OrderStatus.CANCELLED
    assert ex.engine.is_halted("AAA")


def test_a_halt_running_into_the_close_uncrosses_at_the_end_of_continuous_trading() -> None:
    ex = Exchange(refs={"AAA": 10.00})
    ex.to(17, 58)
    ex.send(S, 100, 10.60)
    ex.send(B, 100, 10.60)  # would be +6%: halts at 17:58 until 18:00 (capped)
    assert ex.engine.halt_end_ns("AAA") == at(18, 0)
    ex.to(18, 0, 30)
    prints = [p for p in ex.engine.prints if p.condition is TradeCondition.HALT_AUCTION]
    assert [(p.price, p.qty, p.ts_ns) for p in prints] == [(10.60, 100, at(18, 0))]
    band = ex.engine.band("AAA")
    assert band is not None and band.reference == 10.60  # the closing band starts from it


# -- half days, expiry, fees, determinism --------------------------------------------------


def test_half_day_closes_continuous_trading_at_half_past_twelve() -> None:
    ex = Exchange(day=HALF, refs={"AAA": 10.00})
    ex.to(12, 29)
    assert ex.engine.phase is SessionPhase.CONTINUOUS
    resting, _ = ex.send(B, 100, 10.00)
    ex.to(12, 30, 30)
    assert ex.engine.phase is SessionPhase.CLOSING_PRICE_PUBLICATION
    assert only_reject(ex.send(B, 100, 10.00)[1]).reject_code is RejectCode.OUTSIDE_SESSION
    ex.to(12, 32)
    assert ex.engine.phase is SessionPhase.CLOSING_AUCTION
    ex.send(S, 60, 10.00)
    ex.to(12, 35)
    assert ex.fills(resting) == [(60, 10.00)]
    assert ex.engine.prints[-1].condition is TradeCondition.CLOSING_AUCTION
    out = ex.to(12, 40)
    assert [(r.client_order_id, r.status) for r in out] == [(resting, OrderStatus.EXPIRED)]
    assert ex.engine.phase is SessionPhase.CLOSED
    # The same wall-clock time on a full day is plain continuous trading.
    full = Exchange(refs={"AAA": 10.00})
    full.to(12, 45)
    assert full.engine.phase is SessionPhase.CONTINUOUS


def test_day_orders_expire_when_the_next_session_starts() -> None:
    ex = continuous(refs={"AAA": 10.00})
    a, _ = ex.send(B, 100, 9.90)
    out = ex.engine.start_session(date(2024, 1, 4), {"AAA": 10.00})
    assert [(r.client_order_id, r.status) for r in out] == [(a, OrderStatus.EXPIRED)]
    assert out[0].ts_ns == at(18, 10)
    # The new session starts clean: ids are unique per session, as FIX ClOrdIDs are per day.
    assert ex.engine.status(a) is None and ex.engine.open_orders() == []


def test_fees_come_from_the_callback_rounded_to_kurus() -> None:
    calls = []

    def fee(symbol: str, side: Side, qty: int, price: float, liquidity: str) -> float:
        calls.append((symbol, side, qty, price, liquidity))
        return qty * price * 0.0000333

    ex = continuous(fee_model=fee)
    maker, _ = ex.send(S, 1000, 10.05)
    taker, _ = ex.send(B, 1000, 10.05)
    assert calls == [("AAA", B, 1000, 10.05, "taker"), ("AAA", S, 1000, 10.05, "maker")]
    assert ex.of(taker)[-1].fees == 0.33  # 0.33467 TRY -> 0.33
    state = ex.engine.status(maker)
    assert state is not None and state.fees == 0.33


def test_fee_model_objects_are_charged_and_told_of_each_fill() -> None:
    class Tiered:
        """The shape of quant.sim.costs fee models: ``fee`` prices, ``on_fill`` books."""

        def __init__(self) -> None:
            self.booked: list[tuple[str, Side, int, float, int]] = []

        def fee(self, symbol, side, qty, price, liquidity="taker", ts_ns=None) -> float:
            return 0.125 if liquidity == "maker" else 0.135

        def on_fill(self, symbol, side, qty, price, ts_ns) -> None:
            self.booked.append((symbol, side, qty, price, ts_ns))

    model = Tiered()
    ex = continuous(fee_model=model)
    maker, _ = ex.send(S, 100, 10.05)
    taker, _ = ex.send(B, 100, 10.05)
    # Half up to the kuruş, as an invoice rounds: 0.125 -> 0.13 and 0.135 -> 0.14.
    assert ex.of(maker)[-1].fees == 0.13 and ex.of(taker)[-1].fees == 0.14
    assert model.booked == [("AAA", B, 100, 10.05, ex.now()), ("AAA", S, 100, 10.05, ex.now())]
    with pytest.raises(TypeError):
        MatchingEngine([Instrument("AAA")], fee_model=42)


def _scripted_day() -> list[ExecutionReport]:
    ex = Exchange(refs={"AAA": 10.00, "BBB": 100.0}, fee_model=lambda *a: a[2] * a[3] * 1e-4)
    ex.to(9, 45)
    for k in range(6):
        ex.send(B if k % 2 else S, 100 * (k + 1), 10.00 + 0.01 * (k % 3))
    ex.to(10, 1)
    for k in range(20):
        side = B if k % 3 else S
        price = 10.00 + 0.02 * ((k * 7) % 5) * side.sign
        ex.send(side, 50 + 10 * k, price, tif=IOC if k % 4 == 0 else TimeInForce.DAY)
    ex.send(B, 300, order_type=MARKET, symbol="BBB")
    ex.engine.replace("o8", ex.now(), quantity=500)
    ex.to(18, 2)
    ex.send(S, 500, 10.00)
    ex.to(18, 20)
    return ex.reports


def test_same_inputs_give_identical_reports() -> None:
    first, second = _scripted_day(), _scripted_day()
    assert len(first) > 40
    assert first == second


def test_engine_has_the_venue_signatures() -> None:
    engine: Venue = MatchingEngine([Instrument("AAA")])
    for name in ("submit", "cancel", "cancel_all", "replace", "status"):
        want = inspect.signature(getattr(Venue, name)).parameters
        got = inspect.signature(getattr(MatchingEngine, name)).parameters
        assert list(got) == list(want), name
    assert engine.status("nothing") is None
