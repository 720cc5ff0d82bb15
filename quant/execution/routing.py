"""Order routing: throttles, retries, circuit breakers and idempotent re-routing across venues.

Pure logic (no Ray, no wall clock, no sleeping): the ``OrderRouter`` actor hosts a
``RoutingCore`` and injects the clock. The core never waits; when an order must be tried again
later it answers ``RouteStatus.RETRY`` with the instant to try at, and the host awaits that
(``asyncio.sleep`` in the actor, a simulated clock in tests) and calls ``route`` again with the
same order. That keeps every decision deterministic and testable without threads or time.

The one rule everything else serves: **a client order id reaches at most one venue, at most
once.** A venue that times out may still have received the order, so after a timeout the core
asks that venue for the order's ``status`` before it sends again or sends anywhere else; until
the venue answers, the order stays pinned to it (``IN_DOUBT``), never re-routed. Only an answer
that the venue does not hold the order, or an error that proves nothing was sent
(``VenueUnavailable``, ``TransientVenueError(maybe_received=False)``), frees it to go elsewhere.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from quant.clock import Clock
from quant.execution.orders import ExecutionReport, Order, OrderState, OrderStatus, RejectCode
from quant.execution.venue import Venue

if TYPE_CHECKING:  # the slicer's types; imported lazily so the venues' import of the errors
    # here stays light (the algorithms pull in numpy and polars)
    from quant.execution.algos.base import (
        AlgoContext,
        AlgoStatus,
        ExecutionAlgorithm,
        MarketState,
    )

NS_PER_S = 1_000_000_000
_T = TypeVar("_T")
_START = object()
"""``_drive_many``: a step generator not started yet."""

# --- errors -------------------------------------------------------------------------------------


class VenueError(Exception):
    """A venue could not process a request; the subclass says whether trying again can help."""


class TransientVenueError(VenueError):
    """Retryable: a timeout, throttled by the venue, a connection reset.

    ``maybe_received`` says whether the request may have reached the venue. It must be True
    whenever the bytes may have left (a timeout waiting for the answer, a reset after sending):
    the router then asks the venue for the order's status before sending it again. Only a
    failure known to happen before anything was sent (the venue's throttle refused it locally,
    connection refused) may say False.
    """

    def __init__(self, message: str = "", *, maybe_received: bool = True) -> None:
        super().__init__(message)
        self.maybe_received = maybe_received


class VenueUnavailable(VenueError):
    """The venue session is down (not logged on, disconnected): nothing was sent or received.

    Raise it only when the request certainly did not leave; a session that drops while a
    request is on the wire is a ``TransientVenueError`` with ``maybe_received=True``.
    """


# --- token bucket ---------------------------------------------------------------------------


class TokenBucket:
    """A token bucket: ``rate_per_s`` tokens a second, at most ``burst`` banked; starts full.

    Exact integer arithmetic: the rate becomes a fraction ``num/den`` and the level is kept in
    units of ``1 / (den * 1e9)`` token, so that one nanosecond adds exactly ``num`` units. Float
    levels drift, and a bucket that says "wait 1 ms" and then still refuses after 1 ms would
    make the router spin.
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Clock) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s!r}")
        if not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive integer, got {burst!r}")
        rate = Fraction(rate_per_s).limit_denominator(1_000_000)
        if rate <= 0:
            raise ValueError(f"rate_per_s {rate_per_s!r} is too small")
        self.rate_per_s = float(rate_per_s)
        self.burst = burst
        self._clock = clock
        self._per_ns = rate.numerator
        self._unit = rate.denominator * NS_PER_S
        """Units per token."""
        self._capacity = burst * self._unit
        self._level = self._capacity
        self._last = clock.now_ns()

    def _refill(self) -> None:
        now = self._clock.now_ns()
        if now > self._last:
            self._level = min(self._capacity, self._level + (now - self._last) * self._per_ns)
            self._last = now

    @property
    def tokens(self) -> float:
        """Tokens available now (for status reports)."""
        self._refill()
        return self._level / self._unit

    def try_take(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they are there now; never blocks."""
        self._refill()
        need = n * self._unit
        if self._level >= need:
            self._level -= need
            return True
        return False

    def wait_ns(self, n: int = 1) -> int:
        """Nanoseconds until ``n`` tokens are available (0: now). ``n > burst`` never is."""
        if n > self.burst:
            raise ValueError(f"{n} tokens never fit a bucket of {self.burst}")
        self._refill()
        short = n * self._unit - self._level
        return 0 if short <= 0 else -(-short // self._per_ns)


# --- retry policy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, seeded so every delay is reproducible.

    Attempt ``k`` (1 = the first retry, after the first failure) has the ceiling
    ``c = min(cap_ns, base_ns * 2**(k-1))``, and the delay is, as in "Exponential Backoff And
    Jitter" (M. Brooker, AWS Architecture Blog, 2015):

    - ``full``:  ``uniform(0, c)`` - spreads retries of many clients the most; least total
      work for the venue;
    - ``equal``: ``c/2 + uniform(0, c/2)`` - never retries almost immediately.

    Jitter exists to decorrelate clients that failed together (a venue hiccup fails every
    in-flight order at once), so the "random" draw is a hash of ``(seed, key, attempt)``, the
    key being the client order id: the same order gets the same delays after a restart, and
    different orders get different ones. ``max_attempts`` counts sends to one venue, the first
    included.
    """

    max_attempts: int = 4
    base_ns: int = 50_000_000
    cap_ns: int = 2_000_000_000
    jitter: Literal["full", "equal"] = "full"
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive integer, got {self.max_attempts!r}")
        if self.base_ns <= 0 or self.cap_ns < self.base_ns:
            raise ValueError(f"need 0 < base_ns <= cap_ns, got {self.base_ns}, {self.cap_ns}")
        if self.jitter not in ("full", "equal"):
            raise ValueError(f"jitter must be 'full' or 'equal', got {self.jitter!r}")

    def ceiling_ns(self, attempt: int) -> int:
        """The backoff before jitter for retry ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        doublings = min(attempt - 1, 62)  # beyond 2**62 every realistic cap has been reached
        return min(self.cap_ns, self.base_ns << doublings)

    def delay_ns(self, attempt: int, key: str = "") -> int:
        """Nanoseconds to wait before retry ``attempt`` (1-based) of the request ``key``."""
        c = self.ceiling_ns(attempt)
        digest = hashlib.blake2b(f"{self.seed}|{key}|{attempt}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big")  # uniform in [0, 2**64)
        if self.jitter == "full":
            return (u * (c + 1)) >> 64  # uniform integer in [0, c]
        half = c // 2
        return c - half + ((u * (half + 1)) >> 64)  # uniform integer in [c - c//2, c]

    def can_retry(self, attempts_made: int) -> bool:
        return attempts_made < self.max_attempts


# --- circuit breaker ------------------------------------------------------------------------


class BreakerState(StrEnum):
    CLOSED = "closed"
    """Calls flow; consecutive failures are counted."""
    OPEN = "open"
    """Calls are refused until the reset timeout passes."""
    HALF_OPEN = "half_open"
    """A few trial calls may go; one success closes the circuit, one failure opens it again."""


class CircuitBreaker:
    """Per-venue circuit breaker: stop sending to a venue that keeps failing, probe it later.

    CLOSED -> OPEN after ``failure_threshold`` consecutive failures (or ``trip``); OPEN ->
    HALF_OPEN once ``reset_timeout_ns`` has passed (read lazily from the clock: no timers);
    HALF_OPEN lets ``half_open_max_calls`` trial calls through (``allow`` reserves a slot, the
    next ``record_*`` releases it) and goes CLOSED on a success, OPEN on a failure. Failing fast
    matters because a dead venue otherwise costs every order a full timeout before re-routing.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_ns: int = 30 * NS_PER_S,
        half_open_max_calls: int = 1,
        clock: Clock | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_timeout_ns <= 0 or half_open_max_calls < 1:
            raise ValueError("breaker threshold, timeout and half-open calls must be positive")
        if clock is None:
            raise ValueError("a circuit breaker needs a clock")
        self.failure_threshold = failure_threshold
        self.reset_timeout_ns = reset_timeout_ns
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0
        self._half_open_at = 0
        self._trials = 0
        self.last_error = ""
        self.transitions: list[tuple[int, BreakerState]] = []
        """(ts_ns, new state) for every change, for status reports and tests."""

    def _to(self, state: BreakerState, now: int) -> None:
        self._state = state
        self.transitions.append((now, state))

    @property
    def state(self) -> BreakerState:
        now = self._clock.now_ns()
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.reset_timeout_ns:
            self._to(BreakerState.HALF_OPEN, now)
            self._half_open_at = now
            self._trials = 0
        elif (
            self._state is BreakerState.HALF_OPEN
            and self._trials
            and now >= self._half_open_at + self.reset_timeout_ns
        ):
            # A trial whose result was never recorded must not wedge the breaker half-open.
            self._half_open_at = now
            self._trials = 0
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in_ns(self) -> int:
        """Nanoseconds until an open breaker lets a trial call through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0
        return self._opened_at + self.reset_timeout_ns - self._clock.now_ns()

    def would_allow(self) -> bool:
        """Whether ``allow`` would say yes now, without reserving a half-open trial."""
        state = self.state
        if state is BreakerState.HALF_OPEN:
            return self._trials < self.half_open_max_calls
        return state is BreakerState.CLOSED

    def allow(self) -> bool:
        """May one call go to the venue now? In HALF_OPEN a yes reserves a trial slot."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trials = 0
        if self._state is not BreakerState.CLOSED:
            self._to(BreakerState.CLOSED, self._clock.now_ns())

    def record_failure(self, error: str = "") -> None:
        state = self.state
        self._failures += 1
        if error:
            self.last_error = error
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._open()

    def trip(self, error: str = "") -> None:
        """Open now: the venue said its session is down, no need to count failures."""
        self._failures = max(self._failures + 1, self.failure_threshold)
        if error:
            self.last_error = error
        if self.state is not BreakerState.OPEN:
            self._open()

    def _open(self) -> None:
        now = self._clock.now_ns()
        self._opened_at = now
        self._trials = 0
        self._to(BreakerState.OPEN, now)


# --- routing outcomes -----------------------------------------------------------------------


class RouteStatus(StrEnum):
    ROUTED = "routed"
    """A venue holds the order; its answer is in ``reports`` (a venue reject included)."""
    RETRY = "retry"
    """Nothing final yet: call ``route`` again with the same order at ``retry_at_ns``."""
    IN_DOUBT = "in_doubt"
    """A venue may hold the order and cannot say: the order stays pinned to that venue.
    Retries are used up; alert, and keep calling ``route`` at ``retry_at_ns`` (or reconcile)."""
    REJECTED = "rejected"
    """The router refused the order; no venue holds it. ``reports`` has the REJECTED report."""


@dataclass(frozen=True, slots=True)
class RouteEvent:
    """One thing the router did for an order, for the journal and for diagnosis."""

    ts_ns: int
    venue: str
    action: str
    """"submit", "status", "skip"."""
    result: str
    """"ok", "unavailable", "transient", "in_doubt", "held", "absent", "error", or a skip
    reason ("circuit open", "throttled", ...)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    client_order_id: str
    status: RouteStatus
    venue: str | None = None
    """The venue holding the order (ROUTED), pinned to it (IN_DOUBT), or last tried (RETRY)."""
    reports: tuple[ExecutionReport, ...] = ()
    retry_at_ns: int | None = None
    delay_ns: int = 0
    """``retry_at_ns - now``: what the host awaits before calling ``route`` again."""
    reject_code: RejectCode | None = None
    reason: str = ""
    recovered: bool = False
    """The venue was found holding the order through ``status`` after a timeout; ``reports``
    is the venue's history of it (what the lost answer would have said, and fills since)."""
    repeat: bool = False
    """``route`` was called for an order it had already finished with: nothing was sent."""
    events: tuple[RouteEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """The answer to a cancel or replace."""

    client_order_id: str
    ok: bool
    venue: str | None = None
    reports: tuple[ExecutionReport, ...] = ()
    reason: str = ""
    retry_at_ns: int | None = None
    """Set when a transient failure makes trying again later worthwhile."""


@dataclass(frozen=True, slots=True)
class CancelAllOutcome:
    reports: tuple[ExecutionReport, ...]
    cancelled_at: tuple[str, ...]
    """Venues that took the cancel-all."""
    skipped: Mapping[str, str]
    """Venues not asked (circuit open), with why: their orders may still be working."""
    failed: Mapping[str, str]
    """Venues that were asked and failed, with the error."""
    held_back: tuple[str, ...]
    """Orders waiting in the router for a retry, now never to be sent."""

    @property
    def complete(self) -> bool:
        """Every venue confirmed the cancel-all."""
        return not self.skipped and not self.failed


@dataclass(frozen=True, slots=True)
class VenueHealth:
    venue: str
    breaker: BreakerState
    consecutive_failures: int
    retry_in_ns: int
    tokens: float | None
    """Throttle tokens available now (None: the venue is not throttled)."""
    held: int
    """Orders the router has at this venue."""
    in_doubt: int
    last_error: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "breaker": str(self.breaker),
            "consecutive_failures": self.consecutive_failures,
            "retry_in_ns": self.retry_in_ns,
            "tokens": self.tokens,
            "held": self.held,
            "in_doubt": self.in_doubt,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A cancel among the actions of ``RoutingCore.execute``: the order to cancel, and the
    decision time to stamp it with (0: the router's clock)."""

    client_order_id: str
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class VenueRequest:
    """One call the core needs a venue to answer: ``method`` (``submit``, ``cancel``,
    ``replace``) with ``args``, as the ``Venue`` protocol names them. A venue that offers
    ``batch(requests)`` gets many at once, as ``(method, args)`` pairs, and answers each with
    its reports or the exception it raised."""

    venue: str
    method: Literal["submit", "cancel", "replace"]
    args: tuple[Any, ...]

    def call(self, venue: Venue) -> list[ExecutionReport]:
        return getattr(venue, self.method)(*self.args)


def answer_batch(venue: Venue, requests: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """A venue's ``batch``: each request answered in order, with its reports or the exception
    it raised (one failing request does not stop the others)."""
    out: list[Any] = []
    for method, args in requests:
        if method not in ("submit", "cancel", "replace"):
            out.append(ValueError(f"unknown venue request {method!r}"))
            continue
        try:
            out.append(getattr(venue, method)(*args))
        except Exception as exc:
            out.append(exc)
    return out


class _Phase(StrEnum):
    PENDING = "pending"
    """No venue holds it: nothing sent, or every send proven not received."""
    IN_DOUBT = "in_doubt"
    HELD = "held"
    REJECTED = "rejected"


@dataclass(slots=True)
class _Route:
    order: Order
    first_ns: int
    phase: _Phase = _Phase.PENDING
    venue: str | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    exhausted: set[str] = field(default_factory=set)
    """Venues known not to hold the order that it will not be sent to again."""
    checks: int = 0
    """Failed status checks since the order went in doubt."""
    not_before_ns: int = 0
    cancel_requested: bool = False
    final: RouteOutcome | None = None


Ranking = Sequence[str] | Callable[[Order], Sequence[str]]


class RoutingCore:
    """Routes orders to venues in preference order, healthy venues only, never twice.

    ``preference``: venue names best first, or a function of the order giving them (per-symbol
    or per-size routing); default: the order of ``venues``. ``throttles``: a ``TokenBucket`` per
    venue (a venue without one is not throttled). ``breakers``: a ``CircuitBreaker`` per venue
    (default: ``CircuitBreaker(5, 30 s, 1)`` on ``clock``). ``route_timeout_ns``: how long an
    order may wait for a throttle token before it is rejected THROTTLE (stale orders are worse
    than rejected ones). ``before_send(order, venue)`` is called right before each submit: the
    host journals it (outbox), so that after a crash an order whose answer never came back is
    restored ``IN_DOUBT`` at that venue (``restore``) instead of being sent again blindly.

    Error handling per submit:

    - the venue answers (accept, fill or its own reject) -> ROUTED, breaker success;
    - ``VenueUnavailable`` -> breaker tripped open, venue excluded for this order, next venue
      tried at once (nothing was sent);
    - ``TransientVenueError(maybe_received=False)`` -> breaker failure, RETRY after backoff on
      the same venue while ``retry.max_attempts`` allows, then the next venue;
    - ``TransientVenueError(maybe_received=True)`` or any other exception -> breaker failure,
      the order goes IN_DOUBT at that venue, RETRY after backoff; the next ``route`` asks the
      venue's ``status``: held -> ROUTED (recovered); not held -> send again (or re-route once
      the venue's attempts are used up); the status call fails -> RETRY with backoff, and
      IN_DOUBT once ``max_attempts`` checks have failed (still pinned, never re-routed).

    No healthy venue (every circuit open or every venue used up) -> REJECTED with
    ``RejectCode.VENUE`` and a reason naming each venue's state.

    Not thread-safe: one caller at a time (an async actor runs one coroutine at a time, and
    no call here awaits). The host drives retries like this::

        outcome = core.route(child)
        while outcome.status is RouteStatus.RETRY:
            await asyncio.sleep(outcome.delay_ns / 1e9)  # other orders route meanwhile
            outcome = core.route(child)
        # ROUTED: apply outcome.reports (dedup by exec_id: a recovered order's reports are the
        # venue's history); REJECTED: apply the reject report; IN_DOUBT: alert, re-check later.
    """

    def __init__(
        self,
        venues: Mapping[str, Venue],
        clock: Clock,
        *,
        preference: Ranking | None = None,
        throttles: Mapping[str, TokenBucket] | None = None,
        breakers: Mapping[str, CircuitBreaker] | None = None,
        retry: RetryPolicy | None = None,
        route_timeout_ns: int = 5 * NS_PER_S,
        before_send: Callable[[Order, str], None] | None = None,
    ) -> None:
        if not venues:
            raise ValueError("a router needs at least one venue")
        self.venues: dict[str, Venue] = dict(venues)
        self.clock = clock
        self.preference: Ranking = list(self.venues) if preference is None else preference
        if not callable(self.preference):
            unknown = [v for v in self.preference if v not in self.venues]
            if unknown:
                raise ValueError(f"preference names unknown venues {unknown}")
        self.throttles: dict[str, TokenBucket] = dict(throttles or {})
        self.breakers: dict[str, CircuitBreaker] = {
            v: (breakers or {}).get(v) or CircuitBreaker(clock=clock) for v in self.venues
        }
        for name in (*self.throttles, *(breakers or {})):
            if name not in self.venues:
                raise ValueError(f"throttle or breaker for unknown venue {name!r}")
        self.retry = retry if retry is not None else RetryPolicy()
        self.route_timeout_ns = route_timeout_ns
        self.before_send = before_send
        self._routes: dict[str, _Route] = {}

    # --- routing ------------------------------------------------------------------------------

    def route(self, order: Order) -> RouteOutcome:
        """Send ``order`` to the best healthy venue, or say when to try again, or reject it.

        Idempotent by client order id: calling again with the same order after ROUTED or
        REJECTED sends nothing and repeats the answer (``repeat=True``); calling before
        ``retry_at_ns`` does nothing. A different order under a used id is rejected
        DUPLICATE_ORDER_ID without touching the first.
        """
        return self._drive(self._route_steps(order))

    def execute(
        self, actions: Sequence[Order | CancelRequest]
    ) -> list[RouteOutcome | CommandOutcome]:
        """Route orders and cancel orders as ``route`` and ``cancel`` would, one by one, with
        one venue call per venue for the whole list instead of one per action.

        Every decision (venue choice, throttle, breaker, outbox claim through ``before_send``)
        is taken for all actions first, then each venue gets its requests in one ``batch``
        call (in the actions' order; a venue without ``batch`` is called request by request),
        then the answers are applied. A venue that fails a batch fails every request in it,
        as it would have failed each of them. An action about an order an earlier action of
        the list already concerns (a cancel of an order submitted in the same list) waits for
        that one's answer, so it reaches the venue the order went to. This is how a slice's
        orders and cancels cost one round trip to the venue instead of one each.
        """
        outcomes: list[RouteOutcome | CommandOutcome | None] = [None] * len(actions)
        start = 0
        while start < len(actions):
            seen: set[str] = set()
            end = start
            while end < len(actions):
                cid = actions[end].client_order_id
                if cid in seen:
                    break
                seen.add(cid)
                end += 1
            steps = [
                self._route_steps(a) if isinstance(a, Order) else self._cancel_steps(a)
                for a in actions[start:end]
            ]
            for i, outcome in enumerate(self._drive_many(steps)):
                outcomes[start + i] = outcome
            start = end
        return outcomes  # type: ignore[return-value]

    # --- driving the steps: a step generator yields the venue requests it needs answered ----

    def _drive(self, steps: Generator[VenueRequest, Any, _T]) -> _T:
        """Run one action's steps, calling the venue for each request it yields."""
        try:
            request = next(steps)
            while True:
                try:
                    answer = request.call(self.venues[request.venue])
                except Exception as exc:
                    request = steps.throw(exc)
                else:
                    request = steps.send(answer)
        except StopIteration as stop:
            return stop.value

    def _drive_many(self, steps: list[Generator[VenueRequest, Any, Any]]) -> list[Any]:
        """Run several actions' steps in lockstep: each round, every request waiting for a
        venue goes to it in one batch (see ``execute``)."""
        results: list[Any] = [None] * len(steps)
        waiting: dict[int, VenueRequest] = {}

        def advance(i: int, answer: Any = _START, error: BaseException | None = None) -> None:
            try:
                if error is not None:
                    request = steps[i].throw(error)
                elif answer is _START:
                    request = next(steps[i])
                else:
                    request = steps[i].send(answer)
            except StopIteration as stop:
                results[i] = stop.value
                return
            waiting[i] = request

        for i in range(len(steps)):
            advance(i)
        while waiting:
            rounds, waiting = waiting, {}
            by_venue: dict[str, list[int]] = {}
            for i in sorted(rounds):
                by_venue.setdefault(rounds[i].venue, []).append(i)
            for name, indices in by_venue.items():
                answers = self._call_batch(name, [rounds[i] for i in indices])
                for i, answer in zip(indices, answers, strict=True):
                    if isinstance(answer, BaseException):
                        advance(i, error=answer)
                    elif answer is None:
                        advance(i, error=TransientVenueError(f"{name} gave no answer"))
                    else:
                        advance(i, answer=list(answer))
        return results

    def _call_batch(self, name: str, requests: list[VenueRequest]) -> list[Any]:
        """The venue's answer (reports) or the exception, per request."""
        venue = self.venues[name]
        batch = getattr(venue, "batch", None)
        if batch is not None and len(requests) > 1:
            try:
                answers = list(batch([(r.method, r.args) for r in requests]))
            except Exception as exc:  # the whole batch failed: so did each request in it
                return [exc] * len(requests)
            if len(answers) != len(requests):
                lost = TransientVenueError(
                    f"{name} answered {len(answers)} of {len(requests)} batched requests"
                )
                return [lost] * len(requests)
            return answers
        out: list[Any] = []
        for r in requests:
            try:
                out.append(r.call(venue))
            except Exception as exc:
                out.append(exc)
        return out

    def _route_steps(self, order: Order) -> Generator[VenueRequest, Any, RouteOutcome]:
        """``route``'s logic; yields each venue submit it needs answered."""
        now = self.clock.now_ns()
        cid = order.client_order_id
        rec = self._routes.get(cid)
        if rec is None:
            rec = self._routes[cid] = _Route(order, first_ns=now)
            problems = order.problems()
            if problems:
                return self._reject(rec, now, RejectCode.INVALID_ORDER, "; ".join(problems), [])
        elif rec.order != order:
            # The report is for the caller's new order only; the first order is untouched.
            code = RejectCode.DUPLICATE_ORDER_ID
            why = f"client order id {cid!r} is already used by a different order"
            return RouteOutcome(
                cid,
                RouteStatus.REJECTED,
                reports=(self._reject_report(order, now, code, why),),
                reject_code=code,
                reason=why,
                repeat=True,
            )
        if rec.final is not None:
            return replace(rec.final, repeat=True, reports=(), events=())
        if now < rec.not_before_ns:
            return self._retry(rec, now, rec.not_before_ns - now, rec.venue, "too early", [])
        events: list[RouteEvent] = []
        if rec.phase is _Phase.IN_DOUBT:
            resolved = self._resolve(rec, now, events)
            if resolved is not None:
                return resolved
        if rec.cancel_requested:
            return self._reject(
                rec, now, RejectCode.VENUE, "cancelled before it reached a venue", events
            )
        return (yield from self._send(rec, now, events))

    def route_blocking(self, order: Order, sleep: Callable[[int], None]) -> RouteOutcome:
        """``route`` until the answer is not RETRY, calling ``sleep(ns)`` in between.

        For synchronous hosts and tests (``sleep`` advances a simulated clock); the async
        actor loops itself with ``await asyncio.sleep(outcome.delay_ns / 1e9)`` instead.
        """
        outcome = self.route(order)
        while outcome.status is RouteStatus.RETRY:
            sleep(max(outcome.delay_ns, 1))
            outcome = self.route(order)
        return outcome

    def _resolve(self, rec: _Route, now: int, events: list[RouteEvent]) -> RouteOutcome | None:
        """Ask the venue that may hold an in-doubt order; None when it says it does not."""
        assert rec.venue is not None
        name, cid = rec.venue, rec.order.client_order_id
        breaker = self.breakers[name]
        if not breaker.allow():
            rec.checks += 1
            events.append(RouteEvent(now, name, "status", "skipped", "circuit open"))
            wait = max(breaker.retry_in_ns(), self.retry.delay_ns(rec.checks, "?" + cid))
            return self._doubt(rec, now, wait, "its circuit is open", events)
        try:
            state = self.venues[name].status(cid)
        except Exception as exc:  # any failure leaves the doubt unresolved
            breaker.record_failure(_describe(exc))
            rec.checks += 1
            events.append(RouteEvent(now, name, "status", "error", _describe(exc)))
            wait = self.retry.delay_ns(rec.checks, "?" + cid)
            return self._doubt(rec, now, wait, f"status failed: {_describe(exc)}", events)
        breaker.record_success()
        rec.checks = 0
        if state is not None:
            events.append(RouteEvent(now, name, "status", "held", str(state.status)))
            rec.phase = _Phase.HELD
            out = RouteOutcome(
                cid,
                RouteStatus.ROUTED,
                venue=name,
                reports=tuple(_history(state)),
                recovered=True,
                events=tuple(events),
            )
            rec.final = out
            return out
        events.append(RouteEvent(now, name, "status", "absent"))
        rec.phase = _Phase.PENDING
        if not self.retry.can_retry(rec.attempts.get(name, 0)):
            rec.exhausted.add(name)
        return None

    def _doubt(
        self, rec: _Route, now: int, wait: int, why: str, events: list[RouteEvent]
    ) -> RouteOutcome:
        assert rec.venue is not None
        cid = rec.order.client_order_id
        if self.retry.can_retry(rec.checks):
            return self._retry(rec, now, wait, rec.venue, f"in doubt at {rec.venue}: {why}", events)
        wait = max(wait, self.retry.cap_ns)
        rec.not_before_ns = now + wait
        return RouteOutcome(
            cid,
            RouteStatus.IN_DOUBT,
            venue=rec.venue,
            retry_at_ns=now + wait,
            delay_ns=wait,
            reason=f"{rec.venue} may hold the order and cannot say ({why}): not re-routed",
            events=tuple(events),
        )

    def _send(
        self, rec: _Route, now: int, events: list[RouteEvent]
    ) -> Generator[VenueRequest, Any, RouteOutcome]:
        order, cid = rec.order, rec.order.client_order_id
        skipped: dict[str, str] = {}
        throttle_wait: int | None = None
        for name in self._candidates(rec):
            if name in rec.exhausted:
                skipped[name] = "already tried"
                continue
            breaker = self.breakers[name]
            if not breaker.would_allow():
                why = f"circuit {breaker.state} ({breaker.last_error or 'failing'})"
                skipped[name] = why
                events.append(RouteEvent(now, name, "skip", "circuit open", why))
                continue
            bucket = self.throttles.get(name)
            if bucket is not None:
                wait = bucket.wait_ns()
                if wait > 0:
                    throttle_wait = wait if throttle_wait is None else min(throttle_wait, wait)
                    skipped[name] = f"throttled for {wait} ns"
                    events.append(RouteEvent(now, name, "skip", "throttled", str(wait)))
                    continue
            if not breaker.allow():  # pragma: no cover - would_allow just said yes
                continue
            if bucket is not None:
                bucket.try_take()
            attempt = rec.attempts.get(name, 0) + 1
            rec.attempts[name] = attempt
            rec.venue = name
            # The send may be received even if it raises: from here on the order is in doubt
            # at this venue until the venue answers one way or the other.
            rec.phase = _Phase.IN_DOUBT
            if self.before_send is not None:
                self.before_send(order, name)
            try:
                reports = yield VenueRequest(name, "submit", (order,))
            except VenueUnavailable as exc:
                breaker.trip(_describe(exc))
                rec.phase = _Phase.PENDING
                rec.exhausted.add(name)
                rec.venue = None
                skipped[name] = f"unavailable: {_describe(exc)}"
                events.append(RouteEvent(now, name, "submit", "unavailable", _describe(exc)))
                continue
            except TransientVenueError as exc:
                breaker.record_failure(_describe(exc))
                if exc.maybe_received:
                    events.append(RouteEvent(now, name, "submit", "in_doubt", _describe(exc)))
                    rec.checks = 0
                    wait = self.retry.delay_ns(attempt, cid)
                    why = f"{name} timed out, checking its status next: {_describe(exc)}"
                    return self._retry(rec, now, wait, name, why, events)
                rec.phase = _Phase.PENDING
                events.append(RouteEvent(now, name, "submit", "transient", _describe(exc)))
                if self.retry.can_retry(attempt):
                    wait = self.retry.delay_ns(attempt, cid)
                    why = f"{name} failed transiently: {_describe(exc)}"
                    return self._retry(rec, now, wait, name, why, events)
                rec.exhausted.add(name)
                rec.venue = None
                skipped[name] = f"failed {attempt} times: {_describe(exc)}"
                continue
            except Exception as exc:  # unknown failure: assume it may have arrived
                breaker.record_failure(_describe(exc))
                events.append(RouteEvent(now, name, "submit", "in_doubt", _describe(exc)))
                rec.checks = 0
                wait = self.retry.delay_ns(attempt, cid)
                why = f"{name} raised {_describe(exc)}, checking its status next"
                return self._retry(rec, now, wait, name, why, events)
            breaker.record_success()
            rec.phase = _Phase.HELD
            events.append(RouteEvent(now, name, "submit", "ok"))
            out = RouteOutcome(
                cid, RouteStatus.ROUTED, venue=name, reports=tuple(reports), events=tuple(events)
            )
            rec.final = out
            return out
        if throttle_wait is not None:
            if now + throttle_wait <= rec.first_ns + self.route_timeout_ns:
                return self._retry(rec, now, throttle_wait, None, "throttled", events)
            only_throttled = all(
                w.startswith("throttled") or w == "already tried" for w in skipped.values()
            )
            if only_throttled:
                why = "throttled past the route timeout: " + _reasons(skipped)
                return self._reject(rec, now, RejectCode.THROTTLE, why, events)
        why = "no healthy venue: " + (_reasons(skipped) or "none configured for the order")
        return self._reject(rec, now, RejectCode.VENUE, why, events)

    def _candidates(self, rec: _Route) -> list[str]:
        ranked = self.preference(rec.order) if callable(self.preference) else self.preference
        names = [v for v in dict.fromkeys(ranked) if v in self.venues]
        # Retry where we were before trying elsewhere: that is what "retry" means to a venue's
        # operator, and it keeps an order's fate on one venue while that venue is healthy.
        if rec.venue in names and rec.venue not in rec.exhausted:
            names.remove(rec.venue)
            names.insert(0, rec.venue)
        return names

    def _retry(
        self,
        rec: _Route,
        now: int,
        wait: int,
        venue: str | None,
        why: str,
        events: list[RouteEvent],
    ) -> RouteOutcome:
        wait = max(int(wait), 1)
        rec.not_before_ns = now + wait
        return RouteOutcome(
            rec.order.client_order_id,
            RouteStatus.RETRY,
            venue=venue,
            retry_at_ns=now + wait,
            delay_ns=wait,
            reason=why,
            events=tuple(events),
        )

    def _reject(
        self, rec: _Route, now: int, code: RejectCode, why: str, events: list[RouteEvent]
    ) -> RouteOutcome:
        rec.phase = _Phase.REJECTED
        rec.venue = None
        out = RouteOutcome(
            rec.order.client_order_id,
            RouteStatus.REJECTED,
            reports=(self._reject_report(rec.order, now, code, why),),
            reject_code=code,
            reason=why,
            events=tuple(events),
        )
        rec.final = out
        return out

    @staticmethod
    def _reject_report(order: Order, now: int, code: RejectCode, why: str) -> ExecutionReport:
        return ExecutionReport(
            client_order_id=order.client_order_id,
            status=OrderStatus.REJECTED,
            ts_ns=now,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=0,
            reject_code=code,
            reason=why,
        )

    # --- commands on routed orders ----------------------------------------------------------

    def venue_of(self, client_order_id: str) -> str | None:
        """The venue holding (or possibly holding) the order, None if no venue can."""
        rec = self._routes.get(client_order_id)
        if rec is None or rec.phase not in (_Phase.HELD, _Phase.IN_DOUBT):
            return None
        return rec.venue

    def cancel(self, client_order_id: str) -> CommandOutcome:
        """Cancel at the venue holding the order (or that may hold it).

        An order the router is still holding back (waiting for a retry, never received by any
        venue) is cancelled locally: its next ``route`` rejects it instead of sending it.
        """
        return self._drive(self._cancel_steps(CancelRequest(client_order_id)))

    def _cancel_steps(self, request: CancelRequest) -> Generator[VenueRequest, Any, CommandOutcome]:
        now = self.clock.now_ns()
        client_order_id = request.client_order_id
        rec = self._routes.get(client_order_id)
        if rec is None:
            return CommandOutcome(client_order_id, False, reason="unknown client order id")
        rec.cancel_requested = True
        if rec.phase is _Phase.REJECTED:
            return CommandOutcome(client_order_id, False, reason="the order was rejected")
        if rec.phase is _Phase.PENDING:
            self._reject(rec, now, RejectCode.VENUE, "cancelled before it reached a venue", [])
            assert rec.final is not None
            return CommandOutcome(
                client_order_id, True, reports=rec.final.reports, reason="cancelled locally"
            )
        assert rec.venue is not None
        call = VenueRequest(rec.venue, "cancel", (client_order_id, request.ts_ns or now))
        return (yield from self._command(call, client_order_id, throttled=False))

    def replace(
        self,
        client_order_id: str,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> CommandOutcome:
        """Replace at the venue holding the order; throttled like new orders."""
        now = self.clock.now_ns()
        rec = self._routes.get(client_order_id)
        if rec is None or rec.phase not in (_Phase.HELD, _Phase.IN_DOUBT) or rec.venue is None:
            return CommandOutcome(client_order_id, False, reason="no venue holds the order")
        call = VenueRequest(rec.venue, "replace", (client_order_id, now, quantity, limit_price))
        return self._drive(self._command(call, client_order_id, throttled=True))

    def _command(
        self, call: VenueRequest, cid: str, *, throttled: bool
    ) -> Generator[VenueRequest, Any, CommandOutcome]:
        now = self.clock.now_ns()
        name = call.venue
        breaker = self.breakers[name]
        if not breaker.would_allow():
            retry_at = now + max(breaker.retry_in_ns(), 1)
            why = f"circuit {breaker.state} at {name}"
            return CommandOutcome(cid, False, name, reason=why, retry_at_ns=retry_at)
        bucket = self.throttles.get(name) if throttled else None
        if bucket is not None and not bucket.try_take():
            wait = max(bucket.wait_ns(), 1)
            return CommandOutcome(cid, False, name, reason="throttled", retry_at_ns=now + wait)
        breaker.allow()
        try:
            reports = yield call
        except VenueUnavailable as exc:
            breaker.trip(_describe(exc))
            why = f"unavailable: {_describe(exc)}"
            return CommandOutcome(cid, False, name, reason=why, retry_at_ns=now + 1)
        except Exception as exc:  # cancel and replace are safe to repeat
            breaker.record_failure(_describe(exc))
            wait = self.retry.delay_ns(1, "!" + cid)
            return CommandOutcome(cid, False, name, reason=_describe(exc), retry_at_ns=now + wait)
        breaker.record_success()
        return CommandOutcome(cid, True, name, reports=tuple(reports))

    def cancel_all(self, symbol: str | None = None) -> CancelAllOutcome:
        """Cancel every open order (of ``symbol``) on every venue, and every held-back order.

        Venues whose circuit is open are not asked (they failed recently and a call would cost
        a timeout) but are listed in ``skipped``: the caller must not report the cancel-all as
        complete. Throttles do not apply: cancelling reduces risk.
        """
        now = self.clock.now_ns()
        held_back = []
        for cid, rec in self._routes.items():
            if symbol is not None and rec.order.symbol != symbol:
                continue
            if rec.phase in (_Phase.PENDING, _Phase.IN_DOUBT):
                rec.cancel_requested = True
            if rec.phase is _Phase.PENDING:
                self._reject(rec, now, RejectCode.VENUE, "cancelled before it reached a venue", [])
                held_back.append(cid)
        reports: list[ExecutionReport] = []
        done: list[str] = []
        skipped: dict[str, str] = {}
        failed: dict[str, str] = {}
        for name, venue in self.venues.items():
            breaker = self.breakers[name]
            if not breaker.allow():
                skipped[name] = f"circuit {breaker.state}: {breaker.last_error or 'failing'}"
                continue
            try:
                reports += venue.cancel_all(now, symbol)
            except VenueUnavailable as exc:
                breaker.trip(_describe(exc))
                failed[name] = _describe(exc)
                continue
            except Exception as exc:  # report it, and go on to the other venues
                breaker.record_failure(_describe(exc))
                failed[name] = _describe(exc)
                continue
            breaker.record_success()
            done.append(name)
        return CancelAllOutcome(tuple(reports), tuple(done), skipped, failed, tuple(held_back))

    # --- state, health, recovery --------------------------------------------------------------

    def venue_health(self) -> dict[str, VenueHealth]:
        held = dict.fromkeys(self.venues, 0)
        doubt = dict.fromkeys(self.venues, 0)
        for rec in self._routes.values():
            if rec.venue is None:
                continue
            if rec.phase is _Phase.HELD:
                held[rec.venue] += 1
            elif rec.phase is _Phase.IN_DOUBT:
                doubt[rec.venue] += 1
        out = {}
        for name in self.venues:
            br = self.breakers[name]
            bucket = self.throttles.get(name)
            out[name] = VenueHealth(
                venue=name,
                breaker=br.state,
                consecutive_failures=br.consecutive_failures,
                retry_in_ns=br.retry_in_ns(),
                tokens=None if bucket is None else bucket.tokens,
                held=held[name],
                in_doubt=doubt[name],
                last_error=br.last_error,
            )
        return out

    def in_doubt(self) -> dict[str, str]:
        """Orders that a venue may hold and has not confirmed: client order id -> venue."""
        return {
            cid: rec.venue
            for cid, rec in self._routes.items()
            if rec.phase is _Phase.IN_DOUBT and rec.venue is not None
        }

    def restore(self, order: Order, venue: str, *, confirmed: bool) -> None:
        """Rebuild after a restart from the journal: ``order`` was sent to ``venue``.

        ``confirmed``: the venue's answer was journaled, so it holds the order. Otherwise only
        the intent to send was (outbox): the order is in doubt at ``venue`` and the next
        ``route(order)`` asks that venue's status before doing anything else.
        """
        if venue not in self.venues:
            raise ValueError(f"unknown venue {venue!r}")
        now = self.clock.now_ns()
        rec = _Route(order, first_ns=now, venue=venue, attempts={venue: 1})
        if confirmed:
            rec.phase = _Phase.HELD
            rec.final = RouteOutcome(order.client_order_id, RouteStatus.ROUTED, venue=venue)
        else:
            rec.phase = _Phase.IN_DOUBT
        self._routes[order.client_order_id] = rec

    def forget(self, client_order_id: str) -> None:
        """Drop a finished order's record (memory); only once the journal keeps its id, since
        the journal is then what stops the id being routed again."""
        rec = self._routes.get(client_order_id)
        if rec is not None and rec.phase in (_Phase.HELD, _Phase.REJECTED):
            del self._routes[client_order_id]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reasons(skipped: Mapping[str, str]) -> str:
    return "; ".join(f"{venue} {why}" for venue, why in skipped.items())


def _history(state: OrderState) -> list[ExecutionReport]:
    return list(state.history)


# --- parent order slicing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SliceEvent:
    """One input to a parent's algorithm: a timer/market event or a child's report."""

    ts_ns: int
    market: MarketState | None = None
    report: ExecutionReport | None = None


@dataclass(slots=True)
class _Parent:
    algo: ExecutionAlgorithm
    log: list[SliceEvent]
    compact: bool


class ParentOrderSlicer:
    """Hosts one execution algorithm (TWAP / VWAP / POV / ...) per parent order.

    The algorithms already name children ``f"{parent}-{n}"`` in send order and are
    deterministic in their inputs. The slicer keeps each parent's inputs (``events``), which
    the host journals; after a restart ``resume`` replays them into a fresh algorithm, which
    regenerates the same children with the same ids and ends in the same state (filled,
    working), so slicing carries on where it stopped. Regenerated children were sent before the
    crash: the router's record (restored from the journal) answers ``route`` for them without
    sending anything, and they are not returned as new work.

    For schedule-based algorithms (TWAP, VWAP) only the events that produced a child and the
    reports are kept: their state depends on nothing else. POV observes volume on every event,
    so every event is kept.
    """

    def __init__(self) -> None:
        self._parents: dict[str, _Parent] = {}
        self._child_parent: dict[str, str] = {}

    def start(
        self,
        parent: Order,
        algo: ExecutionAlgorithm,
        start_ns: int,
        end_ns: int,
        context: AlgoContext | None = None,
    ) -> AlgoStatus:
        """Start working ``parent``; an id already being worked is refused (INVALID)."""
        from quant.execution.algos.base import AlgoStatus, ScheduledAlgorithm

        pid = parent.client_order_id
        if pid in self._parents:
            return AlgoStatus.INVALID
        algo.start(parent, start_ns, end_ns, context)
        self._parents[pid] = _Parent(algo, [], isinstance(algo, ScheduledAlgorithm))
        return algo.status

    def resume(
        self,
        parent: Order,
        algo: ExecutionAlgorithm,
        start_ns: int,
        end_ns: int,
        context: AlgoContext | None,
        events: Iterable[SliceEvent],
    ) -> tuple[Order, ...]:
        """Rebuild a parent after a restart by replaying its journaled ``events``; returns the
        children it had sent (same ids as before the crash)."""
        self._parents.pop(parent.client_order_id, None)
        self.start(parent, algo, start_ns, end_ns, context)
        for event in events:
            if event.report is not None:
                self.on_report(event.report)
            elif event.market is not None:
                self._tick(parent.client_order_id, event.ts_ns, event.market)
        return algo.children

    def on_time(self, ts_ns: int, markets: Mapping[str, MarketState] | MarketState) -> list[Order]:
        """Children due now across every parent; ``markets`` by symbol (or one for all)."""
        from quant.execution.algos.base import MarketState

        out: list[Order] = []
        for pid, p in self._parents.items():
            parent = p.algo.parent
            if parent is None or p.algo.done:
                continue
            market = markets if isinstance(markets, MarketState) else markets.get(parent.symbol)
            if market is None:
                continue
            out += self._tick(pid, ts_ns, market)
        return out

    def _tick(self, pid: str, ts_ns: int, market: MarketState) -> list[Order]:
        p = self._parents[pid]
        children = p.algo.on_time(ts_ns, market)
        if children or not p.compact:
            p.log.append(SliceEvent(ts_ns, market=market))
        for child in children:
            self._child_parent[child.client_order_id] = pid
        return children

    def on_report(self, report: ExecutionReport) -> bool:
        """Give a child's execution report to its parent's algorithm."""
        pid = self._child_parent.get(report.client_order_id)
        if pid is None:
            return False
        p = self._parents[pid]
        p.log.append(SliceEvent(report.ts_ns, report=report))
        return p.algo.on_fill(report)

    def parent_of(self, child_id: str) -> str | None:
        return self._child_parent.get(child_id)

    def algo(self, parent_id: str) -> ExecutionAlgorithm | None:
        p = self._parents.get(parent_id)
        return None if p is None else p.algo

    def events(self, parent_id: str) -> tuple[SliceEvent, ...]:
        """The parent's inputs so far, what ``resume`` needs (the host journals them)."""
        p = self._parents.get(parent_id)
        return () if p is None else tuple(p.log)

    def open_children(self, parent_id: str) -> tuple[str, ...]:
        p = self._parents.get(parent_id)
        return () if p is None else p.algo.open_children

    def stop(self, parent_id: str, reason: str) -> bool:
        """Stop slicing ``parent_id`` (see ``ExecutionAlgorithm.stop``); True if it was
        running. Its children already sent are listed by ``open_children``."""
        p = self._parents.get(parent_id)
        return p is not None and p.algo.stop(reason)

    def remove(self, parent_id: str) -> None:
        """Forget a finished parent (its children's reports are then ignored)."""
        p = self._parents.pop(parent_id, None)
        if p is not None:
            for child in p.algo.children:
                self._child_parent.pop(child.client_order_id, None)
