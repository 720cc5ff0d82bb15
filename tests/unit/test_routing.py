"""Routing: token buckets, seeded backoff, circuit breakers, re-routing, idempotency by client
order id (no venue ever sees an id twice, and no id reaches two venues), cancel-all, slicing.

No Ray and no wall clock: a ``SimulatedClock`` and in-memory venues with scripted faults.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.clock import SimulatedClock
from quant.execution.algos import POV, TWAP, MarketState
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.execution.routing import (
    BreakerState,
    CancelRequest,
    CircuitBreaker,
    ParentOrderSlicer,
    RetryPolicy,
    RouteStatus,
    RoutingCore,
    TokenBucket,
    TransientVenueError,
    VenueUnavailable,
    answer_batch,
)
from quant.market import ISTANBUL, Instrument
from quant.sim.matching import MatchingEngine, to_ns

MS = 1_000_000
S = 1_000_000_000


class FakeVenue:
    """An in-memory venue whose next calls fail as scripted.

    ``submit_script`` entries, consumed one per submit (then "ok"):
    "ok"; "down" (VenueUnavailable, nothing received); "throttled" (transient, not received);
    "lost" (timeout, the order never arrived); "received" (timeout, the order arrived and only
    the answer was lost). ``status_script``: "ok" or "timeout", one per status call.
    ``down``: every call raises VenueUnavailable. ``received`` lists every client order id
    that reached the venue, duplicates included (the fake accepts them, so a test sees them).
    """

    def __init__(self, name: str, clock: SimulatedClock) -> None:
        self.name = name
        self.clock = clock
        self.submit_script: list[str] = []
        self.status_script: list[str] = []
        self.down = False
        self.received: list[str] = []
        self.orders: dict[str, OrderState] = {}
        self.submit_calls = 0
        self.status_calls = 0
        self.cancel_all_calls = 0
        self.replaced: list[tuple[str, int | None, float | None]] = []
        self._n = 0

    def _gate(self) -> None:
        if self.down:
            raise VenueUnavailable(f"{self.name} session down")

    def submit(self, order: Order) -> list[ExecutionReport]:
        self.submit_calls += 1
        self._gate()
        fault = self.submit_script.pop(0) if self.submit_script else "ok"
        if fault == "down":
            raise VenueUnavailable("not logged on")
        if fault == "throttled":
            raise TransientVenueError("throttled", maybe_received=False)
        if fault == "lost":
            raise TransientVenueError("timeout")
        self.received.append(order.client_order_id)
        self._n += 1
        state = OrderState(order)
        ack = ExecutionReport(
            order.client_order_id,
            OrderStatus.ACCEPTED,
            self.clock.now_ns(),
            symbol=order.symbol,
            side=order.side,
            venue_order_id=f"{self.name}-{self._n}",
            leaves_qty=order.quantity,
        )
        state.apply(ack)
        self.orders[order.client_order_id] = state
        if fault == "received":
            raise TransientVenueError("timeout")
        return [ack]

    def status(self, client_order_id: str) -> OrderState | None:
        self.status_calls += 1
        self._gate()
        fault = self.status_script.pop(0) if self.status_script else "ok"
        if fault == "timeout":
            raise TransientVenueError("status timeout")
        return self.orders.get(client_order_id)

    def _cancel(self, state: OrderState) -> ExecutionReport:
        report = ExecutionReport(
            state.order.client_order_id,
            OrderStatus.CANCELLED,
            self.clock.now_ns(),
            symbol=state.order.symbol,
        )
        state.apply(report)
        return report

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        self._gate()
        state = self.orders.get(client_order_id)
        if state is None or not state.status.is_open:
            return [
                ExecutionReport(
                    client_order_id,
                    OrderStatus.REJECTED,
                    ts_ns,
                    reject_code=RejectCode.INVALID_ORDER,
                    reason="unknown or closed order",
                )
            ]
        return [self._cancel(state)]

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        self.cancel_all_calls += 1
        self._gate()
        return [
            self._cancel(s)
            for s in self.orders.values()
            if s.status.is_open and (symbol is None or s.order.symbol == symbol)
        ]

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        self._gate()
        state = self.orders[client_order_id]
        self.replaced.append((client_order_id, quantity, limit_price))
        return [ExecutionReport(client_order_id, state.status, ts_ns, reason="replaced")]


def order(cid: str, symbol: str = "AAA", qty: int = 100, px: float = 10.0) -> Order:
    return Order(cid, symbol, Side.BUY, qty, OrderType.LIMIT, px)


def sleeper(clock: SimulatedClock) -> Callable[[int], None]:
    return lambda ns: clock.advance_to(clock.now_ns() + ns)


def setup(
    n: int = 2,
    *,
    threshold: int = 3,
    reset_ns: int = 10 * S,
    retry: RetryPolicy | None = None,
    throttles: dict[str, tuple[float, int]] | None = None,
    **kwargs,
) -> tuple[SimulatedClock, dict[str, FakeVenue], RoutingCore]:
    clock = SimulatedClock(1_000 * S)
    venues = {name: FakeVenue(name, clock) for name in "ABCD"[:n]}
    core = RoutingCore(
        venues,
        clock,
        breakers={v: CircuitBreaker(threshold, reset_ns, 1, clock) for v in venues},
        throttles={v: TokenBucket(r, b, clock) for v, (r, b) in (throttles or {}).items()},
        retry=retry or RetryPolicy(max_attempts=3, base_ns=10 * MS, cap_ns=100 * MS, seed=7),
        **kwargs,
    )
    return clock, venues, core


def assert_no_duplicates(venues: dict[str, FakeVenue]) -> None:
    """No venue saw an id twice, and no id reached two venues."""
    seen: dict[str, str] = {}
    for name, v in venues.items():
        assert len(v.received) == len(set(v.received)), f"{name} saw a duplicate: {v.received}"
        for cid in v.received:
            assert cid not in seen, f"{cid} reached both {seen[cid]} and {name}"
            seen[cid] = name


# --- token bucket ---------------------------------------------------------------------------


def test_token_bucket_burst_then_rate():
    clock = SimulatedClock(0)
    bucket = TokenBucket(10, 3, clock)  # 10 a second: one every 100 ms
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_ns() == 100 * MS
    assert bucket.wait_ns(2) == 200 * MS
    clock.advance_to(100 * MS - 1)
    assert not bucket.try_take()
    clock.advance_to(100 * MS)
    assert bucket.try_take() and not bucket.try_take()
    clock.advance_to(100 * S)  # a long idle time banks no more than the burst
    assert bucket.tokens == 3
    assert bucket.try_take(3) and not bucket.try_take()
    with pytest.raises(ValueError):
        bucket.wait_ns(4)


def test_token_bucket_wait_is_exact_for_awkward_rates():
    clock = SimulatedClock(0)
    bucket = TokenBucket(3, 2, clock)  # a token every 333,333,333.33 ns
    assert bucket.try_take(2)
    for _ in range(30):
        wait = bucket.wait_ns()
        assert wait in (333_333_333, 333_333_334)
        clock.advance_to(clock.now_ns() + wait - 1)
        assert not bucket.try_take()  # one nanosecond early is too early
        clock.advance_to(clock.now_ns() + 1)
        assert bucket.try_take()
    # no drift: 30 tokens at 3 a second took exactly 10 s (the fractions carried over)
    assert clock.now_ns() == 10 * S


# --- retry policy ---------------------------------------------------------------------------


def test_backoff_ceilings_double_up_to_the_cap():
    policy = RetryPolicy(max_attempts=8, base_ns=100, cap_ns=1000)
    assert [policy.ceiling_ns(k) for k in range(1, 8)] == [100, 200, 400, 800, 1000, 1000, 1000]
    assert policy.can_retry(7) and not policy.can_retry(8)


def test_full_jitter_bounds_spread_and_determinism():
    policy = RetryPolicy(max_attempts=10, base_ns=10 * MS, cap_ns=500 * MS, seed=42)
    keys = [f"o{i}" for i in range(500)]
    for k in range(1, 11):
        c = policy.ceiling_ns(k)
        delays = [policy.delay_ns(k, key) for key in keys]
        assert all(0 <= d <= c for d in delays)
        # uniform on [0, c]: the mean is c/2 (500 draws: within 10%)
        assert sum(delays) / len(delays) == pytest.approx(c / 2, rel=0.1)
        assert len(set(delays)) > 450  # decorrelated across orders
    sequence = [policy.delay_ns(k, "o1") for k in range(1, 11)]
    assert sequence == [
        RetryPolicy(10, 10 * MS, 500 * MS, "full", 42).delay_ns(k, "o1") for k in range(1, 11)
    ]
    assert sequence != [
        RetryPolicy(10, 10 * MS, 500 * MS, seed=43).delay_ns(k, "o1") for k in range(1, 11)
    ]


def test_equal_jitter_keeps_half_the_backoff():
    policy = RetryPolicy(max_attempts=6, base_ns=1000, cap_ns=16_000, jitter="equal", seed=1)
    for k in range(1, 7):
        c = policy.ceiling_ns(k)
        for i in range(200):
            assert c - c // 2 <= policy.delay_ns(k, str(i)) <= c


def test_retry_policy_rejects_bad_configuration():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_ns=10, cap_ns=5)
    with pytest.raises(ValueError):
        RetryPolicy(jitter="none")  # type: ignore[arg-type]


# --- circuit breaker ------------------------------------------------------------------------


def test_breaker_transitions():
    clock = SimulatedClock(0)
    br = CircuitBreaker(
        failure_threshold=3, reset_timeout_ns=5 * S, half_open_max_calls=1, clock=clock
    )
    br.record_failure()
    br.record_failure()
    br.record_success()  # a success resets the count: failures must be consecutive
    br.record_failure()
    br.record_failure()
    assert br.state is BreakerState.CLOSED and br.allow()
    br.record_failure("timeout")
    assert br.state is BreakerState.OPEN and not br.allow()
    assert br.retry_in_ns() == 5 * S
    clock.advance_to(5 * S - 1)
    assert br.state is BreakerState.OPEN
    clock.advance_to(5 * S)
    assert br.state is BreakerState.HALF_OPEN
    assert br.allow() and not br.allow()  # one trial at a time
    br.record_failure("still down")
    assert br.state is BreakerState.OPEN and br.retry_in_ns() == 5 * S
    clock.advance_to(10 * S)
    assert br.allow()
    br.record_success()
    assert br.state is BreakerState.CLOSED and br.consecutive_failures == 0
    assert [s for _, s in br.transitions] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_breaker_trip_opens_at_once_and_lost_trials_do_not_wedge_it():
    clock = SimulatedClock(0)
    br = CircuitBreaker(5, S, 2, clock)
    br.trip("session down")
    assert br.state is BreakerState.OPEN and br.last_error == "session down"
    clock.advance_to(S)
    assert br.allow() and br.allow() and not br.allow()  # two trials
    clock.advance_to(2 * S)  # the trials never reported back
    assert br.allow()


# --- routing --------------------------------------------------------------------------------


def test_routes_to_the_first_venue_and_is_idempotent():
    _clock, venues, core = setup()
    o = order("c1")
    out = core.route(o)
    assert out.status is RouteStatus.ROUTED and out.venue == "A"
    assert [r.status for r in out.reports] == [OrderStatus.ACCEPTED]
    again = core.route(o)
    assert again.status is RouteStatus.ROUTED and again.repeat and again.reports == ()
    clash = core.route(order("c1", qty=200))
    assert clash.status is RouteStatus.REJECTED
    assert clash.reject_code is RejectCode.DUPLICATE_ORDER_ID
    assert core.venue_of("c1") == "A"  # the first order is untouched
    assert venues["A"].received == ["c1"] and venues["B"].received == []


def test_invalid_order_is_rejected_without_reaching_a_venue():
    _clock, venues, core = setup()
    out = core.route(Order("bad", "AAA", Side.BUY, 0, OrderType.LIMIT, 10.0))
    assert out.status is RouteStatus.REJECTED and out.reject_code is RejectCode.INVALID_ORDER
    assert venues["A"].submit_calls == 0


def test_reroutes_when_a_venue_is_unavailable_and_opens_its_circuit():
    _clock, venues, core = setup()
    venues["A"].down = True
    out = core.route(order("c1"))
    assert out.status is RouteStatus.ROUTED and out.venue == "B"
    assert core.breakers["A"].state is BreakerState.OPEN  # session down: tripped at once
    calls = venues["A"].submit_calls
    out2 = core.route(order("c2"))
    assert out2.venue == "B" and venues["A"].submit_calls == calls  # A not even tried
    assert "circuit open" in [e.result for e in out2.events]
    assert core.venue_health()["A"].breaker is BreakerState.OPEN
    assert core.venue_health()["B"].held == 2
    assert_no_duplicates(venues)


def test_transient_errors_retry_the_same_venue_with_the_policy_backoff():
    clock, venues, core = setup()
    venues["A"].submit_script = ["throttled", "throttled"]
    o = order("c1")
    t0 = clock.now_ns()
    first = core.route(o)
    assert first.status is RouteStatus.RETRY and first.venue == "A"
    assert first.delay_ns == max(core.retry.delay_ns(1, "c1"), 1)
    assert core.route(o).status is RouteStatus.RETRY  # too early: nothing happens
    assert venues["A"].submit_calls == 1
    clock.advance_to(first.retry_at_ns)
    second = core.route(o)
    assert second.status is RouteStatus.RETRY
    assert second.delay_ns == max(core.retry.delay_ns(2, "c1"), 1)
    clock.advance_to(second.retry_at_ns)
    third = core.route(o)
    assert third.status is RouteStatus.ROUTED and third.venue == "A"
    assert clock.now_ns() - t0 == first.delay_ns + second.delay_ns
    assert venues["A"].received == ["c1"] and venues["B"].submit_calls == 0


def test_repeated_transient_failures_open_the_breaker_and_reroute():
    clock, venues, core = setup(threshold=3)
    venues["A"].submit_script = ["throttled"] * 3
    out = core.route_blocking(order("c1"), sleeper(clock))
    assert out.status is RouteStatus.ROUTED and out.venue == "B"
    assert venues["A"].submit_calls == 3  # max_attempts on A, then B
    assert core.breakers["A"].state is BreakerState.OPEN
    assert_no_duplicates(venues)


def test_timeout_after_the_venue_got_the_order_sends_no_duplicate():
    clock, venues, core = setup()
    venues["A"].submit_script = ["received"]
    o = order("c1")
    first = core.route(o)
    assert first.status is RouteStatus.RETRY and first.venue == "A"
    assert core.in_doubt() == {"c1": "A"}
    assert core.venue_of("c1") == "A"  # a cancel now would go to A
    clock.advance_to(first.retry_at_ns)
    out = core.route(o)
    assert out.status is RouteStatus.ROUTED and out.venue == "A" and out.recovered
    assert [r.status for r in out.reports] == [OrderStatus.ACCEPTED]  # the lost answer
    assert venues["A"].received == ["c1"] and venues["A"].submit_calls == 1
    assert venues["B"].submit_calls == 0 and venues["B"].status_calls == 0
    assert core.in_doubt() == {}


def test_timeout_where_the_order_was_lost_is_sent_again_after_the_status_check():
    clock, venues, core = setup()
    venues["A"].submit_script = ["lost"]
    out = core.route_blocking(order("c1"), sleeper(clock))
    assert out.status is RouteStatus.ROUTED and out.venue == "A" and not out.recovered
    assert venues["A"].status_calls == 1 and venues["A"].submit_calls == 2
    assert venues["A"].received == ["c1"]


def test_an_order_in_doubt_is_never_rerouted_while_its_venue_cannot_answer():
    clock, venues, core = setup(threshold=100)
    venues["A"].submit_script = ["received"]
    venues["A"].status_script = ["timeout"] * 50
    out = core.route_blocking(order("c1"), sleeper(clock))
    assert out.status is RouteStatus.IN_DOUBT and out.venue == "A"
    assert "may hold the order" in out.reason
    assert venues["B"].submit_calls == 0
    # still pinned on later tries; then A answers and the order is found there
    clock.advance_to(out.retry_at_ns)
    assert core.route(order("c1")).status is RouteStatus.IN_DOUBT
    venues["A"].status_script = []
    clock.advance_to(clock.now_ns() + 10 * S)
    found = core.route(order("c1"))
    assert found.status is RouteStatus.ROUTED and found.venue == "A" and found.recovered
    assert venues["B"].received == [] and venues["A"].received == ["c1"]


def test_in_doubt_at_a_venue_whose_session_went_down_stays_pinned():
    clock, venues, core = setup()
    venues["A"].submit_script = ["received"]
    o = order("c1")
    core.route(o)
    venues["A"].down = True
    out = core.route_blocking(o, sleeper(clock))
    assert out.status is RouteStatus.IN_DOUBT and out.venue == "A"
    assert venues["B"].submit_calls == 0
    venues["A"].down = False
    clock.advance_to(clock.now_ns() + 60 * S)
    assert core.route(o).status is RouteStatus.ROUTED
    assert_no_duplicates(venues)


def test_no_healthy_venue_rejects_with_a_reason():
    _clock, venues, core = setup()
    venues["A"].down = True
    venues["B"].down = True
    out = core.route(order("c1"))
    assert out.status is RouteStatus.REJECTED and out.reject_code is RejectCode.VENUE
    assert "A unavailable" in out.reason and "B unavailable" in out.reason
    (report,) = out.reports
    assert report.status is OrderStatus.REJECTED and report.reject_code is RejectCode.VENUE
    OrderState(order("c1")).apply(report)  # a legal NEW -> REJECTED transition
    out2 = core.route(order("c2"))  # both circuits open now: not even tried
    assert out2.status is RouteStatus.REJECTED and "circuit open" in out2.reason
    assert venues["A"].submit_calls == venues["B"].submit_calls == 1
    assert core.route(order("c1")).repeat  # the rejection stands; nothing is sent later


def test_venue_comes_back_half_open_then_closed():
    clock, venues, core = setup(reset_ns=10 * S)
    venues["A"].down = True
    assert core.route(order("c1")).venue == "B"
    assert core.route(order("c2")).venue == "B"
    venues["A"].down = False
    clock.advance_to(clock.now_ns() + 10 * S)
    assert core.venue_health()["A"].breaker is BreakerState.HALF_OPEN
    out = core.route(order("c3"))  # the trial call
    assert out.venue == "A"
    assert core.breakers["A"].state is BreakerState.CLOSED
    assert core.route(order("c4")).venue == "A"
    assert [s for _, s in core.breakers["A"].transitions] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]
    assert venues["A"].received == ["c3", "c4"] and venues["B"].received == ["c1", "c2"]


def test_failed_half_open_trial_reopens_and_reroutes():
    clock, venues, core = setup(reset_ns=10 * S)
    venues["A"].down = True
    core.route(order("c1"))
    clock.advance_to(clock.now_ns() + 10 * S)
    out = core.route(order("c2"))
    assert out.venue == "B"
    assert [s for _, s in core.breakers["A"].transitions] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
    ]


def test_throttle_reroutes_then_waits_then_rejects():
    _clock, _venues, core = setup(throttles={"A": (10, 1)}, route_timeout_ns=250 * MS)
    assert core.route(order("c1")).venue == "A"
    assert core.route(order("c2")).venue == "B"  # A has no token: next venue
    _, venues1, core1 = setup(1, throttles={"A": (10, 1)}, route_timeout_ns=250 * MS)
    clock1 = core1.clock
    assert core1.route(order("c1")).venue == "A"
    wait = core1.route(order("c2"))
    assert wait.status is RouteStatus.RETRY and wait.delay_ns == 100 * MS
    assert core1.route(order("c3")).delay_ns == 100 * MS
    clock1.advance_to(wait.retry_at_ns)
    assert core1.route(order("c2")).status is RouteStatus.ROUTED
    assert core1.route(order("c3")).status is RouteStatus.RETRY  # token went to c2
    clock1.advance_to(clock1.now_ns() + 100 * MS)
    assert core1.route(order("c3")).status is RouteStatus.ROUTED
    # c4 keeps losing the race for tokens: rejected THROTTLE once it waited too long
    c4 = order("c4")
    assert core1.route(c4).status is RouteStatus.RETRY
    for k in range(5, 8):
        clock1.advance_to(clock1.now_ns() + 100 * MS)
        assert core1.route(order(f"c{k}")).status is RouteStatus.ROUTED
    out = core1.route(c4)
    assert out.status is RouteStatus.REJECTED and out.reject_code is RejectCode.THROTTLE
    assert_no_duplicates(venues1)


def test_cancel_and_replace_go_to_the_venue_holding_the_order():
    _clock, venues, core = setup()
    venues["A"].down = True
    core.route(order("c1"))
    venues["A"].down = False
    out = core.replace("c1", quantity=50)
    assert out.ok and out.venue == "B" and venues["B"].replaced == [("c1", 50, None)]
    out = core.cancel("c1")
    assert out.ok and out.venue == "B"
    assert [r.status for r in out.reports] == [OrderStatus.CANCELLED]
    assert venues["B"].orders["c1"].status is OrderStatus.CANCELLED
    assert not core.cancel("nope").ok


def test_cancelling_an_order_waiting_for_a_retry_stops_it_being_sent():
    clock, venues, core = setup()
    venues["A"].submit_script = ["throttled"]
    o = order("c1")
    first = core.route(o)
    assert first.status is RouteStatus.RETRY
    out = core.cancel("c1")
    assert out.ok and out.venue is None and out.reason == "cancelled locally"
    clock.advance_to(first.retry_at_ns)
    assert core.route(o).status is RouteStatus.REJECTED
    assert venues["A"].received == [] and venues["B"].received == []


def test_cancel_all_across_venues_skips_open_circuits_and_reports_them():
    clock, venues, core = setup(3)
    core.preference = ["A", "B", "C"]
    assert core.route(order("a1")).venue == "A"
    venues["A"].down = True
    assert core.route(order("b1")).venue == "B"  # A tripped
    assert core.route(order("b2", symbol="BBB")).venue == "B"
    venues["B"].submit_script = ["throttled"]
    held = core.route(order("x1"))  # B throttles it: held back for a retry
    assert held.status is RouteStatus.RETRY
    out = core.cancel_all()
    assert out.cancelled_at == ("B", "C")
    assert set(out.skipped) == {"A"} and "open" in out.skipped["A"]
    assert not out.complete
    assert out.held_back == ("x1",)
    assert {r.client_order_id for r in out.reports} == {"b1", "b2"}
    assert venues["A"].cancel_all_calls == 0
    clock.advance_to(held.retry_at_ns)
    assert core.route(order("x1")).status is RouteStatus.REJECTED  # never sent after kill
    assert_no_duplicates(venues)


def test_cancel_all_by_symbol():
    _clock, venues, core = setup()
    core.route(order("a1"))
    core.route(order("a2", symbol="BBB"))
    out = core.cancel_all("BBB")
    assert out.complete and [r.client_order_id for r in out.reports] == ["a2"]
    assert venues["A"].orders["a1"].status is OrderStatus.ACCEPTED


def test_restart_restores_in_doubt_orders_and_checks_before_sending():
    clock, venues, core = setup()
    journal: list[tuple[str, str]] = []
    core.before_send = lambda o, v: journal.append((o.client_order_id, v))
    venues["A"].submit_script = ["received"]
    core.route(order("c1"))
    core.route(order("c2"))
    assert journal == [("c1", "A"), ("c2", "A")]
    # the router dies; a new one rebuilds from the journal: c2's answer was journaled, c1's not
    fresh = RoutingCore(venues, clock, retry=core.retry)
    fresh.restore(order("c1"), "A", confirmed=False)
    fresh.restore(order("c2"), "A", confirmed=True)
    assert fresh.in_doubt() == {"c1": "A"}
    out = fresh.route(order("c1"))
    assert out.status is RouteStatus.ROUTED and out.recovered
    assert fresh.route(order("c2")).repeat
    assert venues["A"].received == ["c1", "c2"]


def test_preference_function_ranks_per_order():
    _clock, _venues, core = setup()
    core.preference = lambda o: ["B", "A"] if o.symbol == "BBB" else ["A", "B"]
    assert core.route(order("c1")).venue == "A"
    assert core.route(order("c2", symbol="BBB")).venue == "B"


# --- against the real matching engine -------------------------------------------------------


class FlakyEngine:
    """The simulator's matching engine behind a link that loses the next answer."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.lose_next_answer = False
        self.received: list[str] = []

    def submit(self, o: Order) -> list[ExecutionReport]:
        self.received.append(o.client_order_id)
        reports = self.engine.submit(o)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TransientVenueError("FIX ack timeout")
        return reports

    def status(self, cid: str) -> OrderState | None:
        return self.engine.status(cid)

    def cancel(self, cid: str, ts_ns: int) -> list[ExecutionReport]:
        return self.engine.cancel(cid, ts_ns)

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        return self.engine.cancel_all(ts_ns, symbol)

    def replace(self, cid, ts_ns, quantity=None, limit_price=None):
        return self.engine.replace(cid, ts_ns, quantity, limit_price)


def test_lost_acknowledgement_from_the_matching_engine_is_recovered_not_resent():
    day = date(2024, 1, 3)
    clock = SimulatedClock(to_ns(datetime.combine(day, time(11, 0), ISTANBUL)))
    engine = MatchingEngine([Instrument("AAA")], clock=clock, name="SIM")
    engine.start_session(day, {"AAA": 10.0})
    venue = FlakyEngine(engine)
    core = RoutingCore({"SIM": venue}, clock)
    venue.lose_next_answer = True
    out = core.route_blocking(order("c1"), sleeper(clock))
    assert out.status is RouteStatus.ROUTED and out.recovered
    assert [r.status for r in out.reports] == [OrderStatus.ACCEPTED]
    assert out.reports[0].venue_order_id.startswith("SIM-")
    assert venue.received == ["c1"]
    assert core.cancel("c1").reports[0].status is OrderStatus.CANCELLED


# --- property: no duplicates under random failure scripts -----------------------------------

FAULTS = st.sampled_from(["ok", "ok", "down", "throttled", "lost", "received"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.lists(FAULTS, max_size=12), min_size=3, max_size=3),
    status_faults=st.lists(
        st.lists(st.sampled_from(["ok", "timeout"]), max_size=8), min_size=3, max_size=3
    ),
    n_orders=st.integers(1, 12),
    repeats=st.lists(st.integers(0, 11), max_size=6),
    cancel_all_at=st.one_of(st.none(), st.integers(0, 11)),
)
def test_no_venue_ever_sees_a_duplicate_client_order_id(
    scripts, status_faults, n_orders, repeats, cancel_all_at
):
    clock, venues, core = setup(3, threshold=2, reset_ns=S)
    for v, script, sfaults in zip(venues.values(), scripts, status_faults, strict=True):
        v.submit_script = list(script)
        v.status_script = list(sfaults)
    orders = [order(f"o{i}") for i in range(n_orders)]
    outcomes = {}
    for i, o in enumerate(orders):
        outcomes[o.client_order_id] = core.route_blocking(o, sleeper(clock))
        if cancel_all_at == i:
            core.cancel_all()
    for i in repeats:  # callers repeating themselves (a restarted strategy, a retried RPC)
        if i < n_orders:
            core.route_blocking(orders[i], sleeper(clock))
    # the venues recover; everything in doubt gets resolved, nothing new is sent twice
    for v in venues.values():
        v.submit_script.clear()
        v.status_script.clear()
    clock.advance_to(clock.now_ns() + 60 * S)
    for o in orders:
        out = core.route_blocking(o, sleeper(clock))
        assert out.status in (RouteStatus.ROUTED, RouteStatus.REJECTED)
        outcomes[o.client_order_id] = out
    assert_no_duplicates(venues)
    holder = {cid: name for name, v in venues.items() for cid in v.received}
    for cid, out in outcomes.items():
        if out.status is RouteStatus.ROUTED:
            assert holder[cid] == out.venue == core.venue_of(cid)
        else:
            assert cid not in holder  # rejected: no venue has it


# --- slicing --------------------------------------------------------------------------------

DAY = date(2024, 1, 3)
T0 = to_ns(datetime.combine(DAY, time(10, 0), ISTANBUL))
MIN = 60 * S
MKT = MarketState(day=DAY, last=49.90, bid=49.90, ask=50.00)


def fill(child: Order, n: int) -> ExecutionReport:
    return ExecutionReport(
        child.client_order_id,
        OrderStatus.FILLED,
        child.ts_ns + 1,
        symbol=child.symbol,
        exec_id=f"E{n}",
        last_qty=child.quantity,
        last_price=50.0,
        cum_qty=child.quantity,
    )


def run_slicer(slicer: ParentOrderSlicer, times: list[int], fills: bool = True) -> list[Order]:
    sent = []
    for t in times:
        for child in slicer.on_time(t, {"SYN": MKT}):
            sent.append(child)
            if fills:
                slicer.on_report(fill(child, len(sent)))
    return sent


def test_slicer_child_ids_are_deterministic_and_survive_a_restart():
    parent = Order("P7", "SYN", Side.BUY, 1000, OrderType.MARKET)
    times = [T0 + k * 15 * MIN for k in range(4)]
    whole = ParentOrderSlicer()
    whole.start(parent, TWAP(slices=4), T0, T0 + 60 * MIN)
    expected = run_slicer(whole, times)
    assert [c.client_order_id for c in expected] == ["P7-1", "P7-2", "P7-3", "P7-4"]
    assert sum(c.quantity for c in expected) == 1000
    assert {c.parent_id for c in expected} == {"P7"}

    before = ParentOrderSlicer()
    before.start(parent, TWAP(slices=4), T0, T0 + 60 * MIN)
    sent_before = run_slicer(before, times[:2])
    log = before.events(parent.client_order_id)
    # restart: a new slicer and a new algorithm, fed the journaled events
    after = ParentOrderSlicer()
    regenerated = after.resume(parent, TWAP(slices=4), T0, T0 + 60 * MIN, None, log)
    assert regenerated == tuple(sent_before)
    assert after.algo("P7").filled == before.algo("P7").filled == 500
    rest = run_slicer(after, times[2:])
    assert sent_before + rest == expected
    assert after.parent_of("P7-4") == "P7"


def test_slicer_resume_replays_pov_volume_exactly():
    parent = Order("P9", "SYN", Side.SELL, 5000, OrderType.MARKET)
    volumes = [10_000, 11_000, 13_000, 13_500, 16_500, 18_000, 19_000]

    def tick(slicer: ParentOrderSlicer, k: int) -> list[Order]:
        mkt = MarketState(day=DAY, last=49.9, bid=49.9, ask=50.0, cumulative_volume=volumes[k])
        out = slicer.on_time(T0 + k * MIN, mkt)
        for c in out:
            slicer.on_report(fill(c, k))
        return out

    whole = ParentOrderSlicer()
    whole.start(parent, POV(rate=0.1, min_slice=100), T0, T0 + 60 * MIN)
    expected = [c for k in range(len(volumes)) for c in tick(whole, k)]
    assert len(expected) >= 3

    before = ParentOrderSlicer()
    before.start(parent, POV(rate=0.1, min_slice=100), T0, T0 + 60 * MIN)
    first = [c for k in range(4) for c in tick(before, k)]
    after = ParentOrderSlicer()
    after.resume(parent, POV(rate=0.1, min_slice=100), T0, T0 + 60 * MIN, None, before.events("P9"))
    rest = [c for k in range(4, len(volumes)) for c in tick(after, k)]
    assert first + rest == expected


def test_slicer_children_route_once_even_when_regenerated():
    _clock, venues, core = setup()
    parent = Order("P1", "SYN", Side.BUY, 300, OrderType.MARKET)
    slicer = ParentOrderSlicer()
    slicer.start(parent, TWAP(slices=3), T0, T0 + 30 * MIN)
    children = run_slicer(slicer, [T0, T0 + 10 * MIN], fills=False)
    for c in children:
        assert core.route(c).status is RouteStatus.ROUTED
    again = ParentOrderSlicer()
    regenerated = again.resume(parent, TWAP(slices=3), T0, T0 + 30 * MIN, None, slicer.events("P1"))
    for c in regenerated:
        assert core.route(c).repeat
    assert venues["A"].received == ["P1-1", "P1-2"]
    assert slicer.start(parent, TWAP(slices=3), T0, T0 + 30 * MIN).value == "invalid"


# --- execute: a slice's orders and cancels in one venue call --------------------------------


class BatchVenue(FakeVenue):
    """A ``FakeVenue`` that also takes batches (``answer_batch``), counting the calls;
    ``fail_batch`` makes the next batch raise (the request may have arrived: a timeout)."""

    def __init__(self, name: str, clock: SimulatedClock) -> None:
        super().__init__(name, clock)
        self.batches: list[list[str]] = []
        self.fail_batch: BaseException | None = None

    def batch(self, requests):
        self.batches.append([method for method, _ in requests])
        if self.fail_batch is not None:
            error, self.fail_batch = self.fail_batch, None
            for method, args in requests:  # the requests arrived; only the answer is lost
                if method == "submit":
                    super().submit(*args)
            raise error
        return answer_batch(self, requests)


def batch_setup(n: int = 2) -> tuple[SimulatedClock, dict[str, BatchVenue], RoutingCore]:
    clock = SimulatedClock(1_000 * S)
    venues = {name: BatchVenue(name, clock) for name in "ABCD"[:n]}
    core = RoutingCore(
        venues,
        clock,
        breakers={v: CircuitBreaker(3, 10 * S, 1, clock) for v in venues},
        retry=RetryPolicy(max_attempts=3, base_ns=10 * MS, cap_ns=100 * MS, seed=7),
    )
    return clock, venues, core


def test_execute_sends_orders_and_cancels_in_one_batch_with_the_answers_route_would_give():
    _clock, venues, core = batch_setup()
    core.route(order("old1"))
    core.route(order("old2", symbol="BBB"))
    venues["A"].batches.clear()
    actions = [
        CancelRequest("old1"),
        order("n1"),
        CancelRequest("old2"),
        order("n2", symbol="BBB"),
    ]
    outcomes = core.execute(actions)
    assert venues["A"].batches == [["cancel", "submit", "cancel", "submit"]]  # one call
    assert [type(o).__name__ for o in outcomes] == [
        "CommandOutcome",
        "RouteOutcome",
        "CommandOutcome",
        "RouteOutcome",
    ]
    assert outcomes[0].ok and outcomes[0].reports[0].status is OrderStatus.CANCELLED
    assert outcomes[1].status is RouteStatus.ROUTED and outcomes[1].venue == "A"
    assert outcomes[1].reports[0].status is OrderStatus.ACCEPTED
    # the same actions one by one on a twin core give the same answers
    _, twins, twin = batch_setup()
    twin.route(order("old1"))
    twin.route(order("old2", symbol="BBB"))
    one_by_one = [
        twin.cancel(a.client_order_id) if isinstance(a, CancelRequest) else twin.route(a)
        for a in actions
    ]
    assert outcomes == one_by_one
    assert twins["A"].received == venues["A"].received
    assert core.execute([order("n1")])[0].repeat  # idempotent: nothing sent again
    assert venues["A"].received.count("n1") == 1


def test_execute_cancel_of_an_order_in_the_same_list_waits_for_its_answer():
    _clock, venues, core = batch_setup()
    venues["A"].down = True  # the order goes to B: its cancel must go there too
    outcomes = core.execute([order("x"), CancelRequest("x")])
    assert outcomes[0].venue == "B"
    assert outcomes[1].ok and outcomes[1].venue == "B"
    assert outcomes[1].reports[0].status is OrderStatus.CANCELLED
    assert venues["B"].batches == []  # two rounds of one request each: no batch needed


def test_execute_a_failed_batch_puts_every_order_in_doubt_and_none_is_sent_twice():
    clock, venues, core = batch_setup()
    venues["A"].fail_batch = TransientVenueError("timeout")
    outcomes = core.execute([order("a"), order("b"), order("c")])
    assert [o.status for o in outcomes] == [RouteStatus.RETRY] * 3
    assert core.in_doubt() == {"a": "A", "b": "A", "c": "A"}
    assert core.breakers["A"].state is BreakerState.OPEN  # three failures in a row
    clock.advance_to(clock.now_ns() + 20 * S)  # past the breaker's reset
    for cid in "abc":
        out = core.route_blocking(order(cid), sleeper(clock))
        assert out.status is RouteStatus.ROUTED and out.recovered and out.venue == "A"
    assert sorted(venues["A"].received) == ["a", "b", "c"]
    assert_no_duplicates(venues)


def test_execute_without_batch_support_calls_the_venue_request_by_request():
    _clock, venues, core = setup()
    outcomes = core.execute([order("a"), order("b"), CancelRequest("a")])
    assert [o.status for o in outcomes[:2]] == [RouteStatus.ROUTED] * 2
    assert outcomes[2].ok
    assert venues["A"].submit_calls == 2 and venues["A"].received == ["a", "b"]


def test_answer_batch_keeps_going_after_a_failing_request():
    clock = SimulatedClock(1_000 * S)
    venue = FakeVenue("A", clock)
    venue.submit_script = ["ok", "down", "ok"]
    answers = answer_batch(
        venue,
        [
            ("submit", (order("a"),)),
            ("submit", (order("b"),)),
            ("submit", (order("c"),)),
            ("explode", ()),
        ],
    )
    assert answers[0][0].status is OrderStatus.ACCEPTED
    assert isinstance(answers[1], VenueUnavailable)
    assert answers[2][0].status is OrderStatus.ACCEPTED
    assert isinstance(answers[3], ValueError)


def test_a_stopped_parent_slices_no_more_children():
    from quant.execution.algos.base import AlgoStatus

    slicer = ParentOrderSlicer()
    parent = Order("P", "AAA", Side.BUY, 600, OrderType.MARKET, ts_ns=T0)
    slicer.start(parent, TWAP(slices=6), T0, T0 + 60 * MIN)
    assert len(slicer.on_time(T0, MKT)) == 1
    assert slicer.stop("P", "kill switch")
    assert not slicer.stop("P", "again")  # already stopped
    assert slicer.algo("P").status is AlgoStatus.STOPPED
    assert slicer.algo("P").reason == "kill switch"
    assert slicer.on_time(T0 + 30 * MIN, MKT) == []  # its later children were due
    assert not slicer.stop("nobody", "x")
