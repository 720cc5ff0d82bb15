"""``OrderRouter``: hosts ``quant.execution.routing.RoutingCore`` in front of the venue actors.

What the actor adds to the core:

* **Outbox** (``actors.journal``): an order is staged in the journal before anything can reach
  a venue, and each send is claimed (``mark_sent``) right before the venue call (the core's
  ``before_send`` hook). Every execution report a venue returns is journaled before the caller
  sees it.
* **Recovery**: on (re)start the router rebuilds its book from the journal. An order whose send
  was claimed and answered is restored as held at its venue; one claimed but never answered is
  restored *in doubt*, so the core asks the venue's status before doing anything with it; one
  staged but never claimed (the router died between the two) is routed now, once. Then it
  reconciles the journal with the venues' open orders and keeps the breaks for ``status``.
* **Waiting**: the core never sleeps; when it answers RETRY the actor waits the backoff (up to
  ``max_wait_s`` inside one call) and routes again. An order still unresolved after that is
  answered NEW ("held by the router") and re-driven on every later call.
* **Venue clients**: ``VenueActorClient`` makes a venue actor look like a ``Venue`` to the core,
  turning a call that does not answer within ``timeout_s`` into
  ``TransientVenueError(maybe_received=True)`` (the request may have arrived).

Consumers read the reports from the journal (by offset), not from the router's answers, so a
router restart loses nothing they have not read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from actors.common import LagMeter, WallClock
from actors.context import report_key as _report_key
from actors.journal import report_to_dict
from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    OrderStatus,
)
from quant.execution.routing import (
    CircuitBreaker,
    RetryPolicy,
    RouteOutcome,
    RouteStatus,
    RoutingCore,
    TokenBucket,
    TransientVenueError,
    VenueUnavailable,
)
from quant.sim.paper import is_held
from quant.sim.strategy import Bar

HELD = "order_held"
"""Journal kind of a venue's "held for a later phase" answer (status NEW, not a transition)."""

NS = 1_000_000_000


class VenueActorClient:
    """A venue actor behind the ``Venue`` protocol, with a per-call timeout (see the module
    docstring). A ``None`` answer is the venue's way of dropping a request it did not process."""

    def __init__(self, name: str, handle: Any, timeout_s: float) -> None:
        self.name = name
        self.handle = handle
        self.timeout_s = timeout_s

    def _get(self, ref: Any, what: str) -> Any:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            answer = ray.get(ref, timeout=self.timeout_s)
        except GetTimeoutError:
            ray.cancel(ref, force=False)
            raise TransientVenueError(
                f"{self.name} did not answer {what} within {self.timeout_s:g} s"
            ) from None
        except RayActorError as exc:
            raise TransientVenueError(f"{self.name} died during {what}: {exc}") from None
        if answer is None:
            raise TransientVenueError(f"{self.name} dropped {what}")
        return answer

    def submit(self, order: Order) -> list[ExecutionReport]:
        return self._get(self.handle.submit.remote(order), f"submit {order.client_order_id}")

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        return self._get(self.handle.cancel.remote(client_order_id, ts_ns), "cancel")

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        return self._get(self.handle.cancel_all.remote(ts_ns, symbol), "cancel-all")

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        raise VenueUnavailable(f"{self.name}: replace is not offered by the paper venue actor")

    def status(self, client_order_id: str) -> OrderState | None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            # the venue answers None both for "unknown order" and for a dropped request:
            # ask for the status together with a liveness token to tell them apart
            state, alive = ray.get(
                [self.handle.status.remote(client_order_id), self.handle.ready.remote()],
                timeout=self.timeout_s,
            )
        except GetTimeoutError:
            raise TransientVenueError(f"{self.name} did not answer a status request") from None
        except RayActorError as exc:
            raise TransientVenueError(f"{self.name} died: {exc}") from None
        return state if alive else None


class OrderRouter:
    """Routes orders to the paper (and FIX) venues; see the module docstring."""

    def __init__(
        self,
        journal: Any,
        venues: Mapping[str, Any],
        *,
        preference: list[str] | None = None,
        timeout_s: float = 1.0,
        max_wait_s: float = 5.0,
        rate_per_s: float | None = None,
        burst: int = 50,
        breaker_failures: int = 3,
        breaker_reset_s: float = 30.0,
        retry_attempts: int = 3,
        retry_base_s: float = 0.05,
        retry_cap_s: float = 1.0,
        seed: int = 0,
    ) -> None:
        import ray

        self.journal = journal
        self.venue_handles = dict(venues)
        self.clock = WallClock()
        self.clients = {n: VenueActorClient(n, h, timeout_s) for n, h in self.venue_handles.items()}
        self.max_wait_s = max_wait_s
        throttles = (
            {n: TokenBucket(rate_per_s, burst, self.clock) for n in self.clients}
            if rate_per_s
            else None
        )
        breakers = {
            n: CircuitBreaker(breaker_failures, int(breaker_reset_s * NS), 1, clock=self.clock)
            for n in self.clients
        }
        self.core = RoutingCore(
            self.clients,
            self.clock,
            preference=preference,
            throttles=throttles,
            breakers=breakers,
            retry=RetryPolicy(
                max_attempts=retry_attempts,
                base_ns=int(retry_base_s * NS),
                cap_ns=int(retry_cap_s * NS),
                seed=seed,
            ),
            before_send=self._before_send,
        )
        self.preferred = (preference or list(self.clients))[0]
        self.orders: dict[str, OrderState] = {}
        self.pending: dict[str, Order] = {}
        """Orders the core asked to retry later (or in doubt): re-driven on every call."""
        self.seen: set[str] = set()
        self.held: set[str] = set()
        """Orders a venue answered "held" (it has them, they enter at a later phase)."""
        self.last_bar_ts = 0
        self.counters = {
            "submitted": 0,
            "repeats": 0,
            "routed": 0,
            "rejected": 0,
            "recovered": 0,
            "resent_after_restart": 0,
            "reports": 0,
            "bar_slices": 0,
        }
        self.submit_latency = LagMeter()
        self.breaks: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] = {}
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self._recover()

    # --- journal helpers -------------------------------------------------------------------------

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        return ray.get(self.journal.call.remote(method, *args, **kwargs))

    def _before_send(self, order: Order, venue: str) -> None:
        # the claim is journaled before the venue can see the order; a second claim for the
        # same venue (a resend after the venue said it does not hold the order) is refused by
        # the journal and allowed here: the core resends only on that proof
        self._j("mark_sent", order.client_order_id, venue, self.clock.now_ns())

    def _record(self, reports: list[ExecutionReport] | tuple[ExecutionReport, ...]) -> None:
        """Journal reports, then apply them to the router's book (journal first)."""
        fresh = [r for r in reports if _report_key(r) not in self.seen]
        if not fresh:
            return
        # a venue holding an order for a later phase answers NEW ("held"): not a state
        # transition, so it is journaled as its own kind, outside the order state machine
        held = [r for r in fresh if is_held(r)]
        changes = [r for r in fresh if not is_held(r)]
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
            (
                "append",
                (HELD, r.client_order_id, report_to_dict(r), r.ts_ns, "held:" + _report_key(r)),
                {},
            )
            for r in held
        ]
        if changes:
            calls.append(("record_reports", (changes,), {}))
        import ray

        ray.get(self.journal.batch.remote(calls))
        self.held.update(r.client_order_id for r in held)
        for r in changes:
            self.seen.add(_report_key(r))
            state = self.orders.get(r.client_order_id)
            if state is None:
                continue
            try:
                state.apply(r)
            except IllegalTransition:
                continue
            self.counters["reports"] += 1

    # --- recovery --------------------------------------------------------------------------------

    def _recover(self) -> None:
        state = self._j("rebuild")
        self.held = {e.key for e in self._j("events", 0, kinds=[HELD])}
        restored = confirmed = 0
        for cid, st in state.orders.items():
            self.orders[cid] = st
            for r in st.history:
                self.seen.add(_report_key(r))
            venues = state.sent.get(cid, ())
            if not venues:
                continue
            venue = venues[-1]
            if venue not in self.clients:
                continue
            answered = bool(st.history) or cid in self.held
            self.core.restore(st.order, venue, confirmed=answered)
            restored += 1
            confirmed += answered
            if not answered:
                self.pending[cid] = st.order
        unsent = list(state.unsent)
        for cid in unsent:
            self.pending[cid] = self.orders[cid].order
        self.last_bar_ts = int(self._j("checkpoint", "router:last_bar_ts", 0))
        self.recovery = {
            "orders": len(state.orders),
            "restored_at_venue": restored,
            "confirmed": confirmed,
            "in_doubt": restored - confirmed,
            "unsent": len(unsent),
            "positions": dict(state.positions),
            "problems": list(state.problems),
        }
        if self.pending:
            self.counters["resent_after_restart"] += len(unsent)
            self._drive_pending()
        self.reconcile()

    def reconcile(self) -> list[dict[str, Any]]:
        """Compare the journal with every venue's open orders; keeps and returns the breaks."""
        import ray

        views: list[OrderState] = []
        unreachable = []
        for name, handle in self.venue_handles.items():
            try:
                open_orders = ray.get(
                    handle.open_orders.remote(), timeout=self.clients[name].timeout_s
                )
            except Exception:
                open_orders = None
            if open_orders is None:
                unreachable.append(name)
                continue
            views.extend(open_orders)
        breaks = self._j("reconcile", views)
        self.breaks = [
            {
                "kind": str(b.kind),
                "key": b.key,
                "journal": b.journal,
                "venue": b.venue,
                "detail": b.detail,
            }
            for b in breaks
            if not (b.kind == "missing_at_venue" and self._venue_of(b.key) in unreachable)
        ]
        return self.breaks

    def _venue_of(self, cid: str) -> str | None:
        return self.core.venue_of(cid)

    # --- orders ----------------------------------------------------------------------------------

    def ready(self) -> bool:
        return True

    def submit(self, order: Order) -> ExecutionReport:
        """Route one order; idempotent by client order id (a retried call sends nothing)."""
        started = time.time_ns()
        cid = order.client_order_id
        known = self.orders.get(cid)
        if known is not None and (known.history or cid in self.pending or cid in self.held):
            self.counters["repeats"] += 1
            return self._answer(known)
        self.counters["submitted"] += 1
        if known is None:
            self._j("stage_order", order, self.preferred, order.ts_ns or None)
            self.orders[cid] = OrderState(order)
        outcome = self._route(order)
        self.submit_latency.observe(time.time_ns() - started)
        if outcome.status in (RouteStatus.RETRY, RouteStatus.IN_DOUBT):
            self.pending[cid] = order
            return ExecutionReport(
                client_order_id=cid,
                status=OrderStatus.NEW,
                ts_ns=order.ts_ns,
                symbol=order.symbol,
                side=order.side,
                leaves_qty=order.quantity,
                reason=f"held by the router: {outcome.reason}",
            )
        return self._answer(self.orders[cid])

    def _answer(self, state: OrderState) -> ExecutionReport:
        if state.history:
            first = state.history[0]
            return first
        order = state.order
        return ExecutionReport(
            client_order_id=order.client_order_id,
            status=OrderStatus.NEW,
            ts_ns=order.ts_ns,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=order.quantity,
            reason="held by the router: waiting for a venue",
        )

    def _route(self, order: Order) -> RouteOutcome:
        """Route, waiting out RETRY answers for up to ``max_wait_s``."""
        deadline = time.monotonic() + self.max_wait_s
        while True:
            outcome = self.core.route(order)
            self._settle(order, outcome)
            if outcome.status is not RouteStatus.RETRY:
                return outcome
            wait = outcome.delay_ns / NS
            if time.monotonic() + wait > deadline:
                return outcome
            time.sleep(wait)

    def _settle(self, order: Order, outcome: RouteOutcome) -> None:
        cid = order.client_order_id
        if outcome.reports:
            self._record(list(outcome.reports))
        if outcome.status is RouteStatus.ROUTED:
            if not outcome.repeat:
                self.counters["routed"] += 1
            if outcome.recovered:
                self.counters["recovered"] += 1
            self.pending.pop(cid, None)
        elif outcome.status is RouteStatus.REJECTED:
            if not outcome.repeat:
                self.counters["rejected"] += 1
            self.pending.pop(cid, None)

    def _drive_pending(self) -> None:
        for order in list(self.pending.values()):
            outcome = self.core.route(order)
            self._settle(order, outcome)

    # --- market data and session -----------------------------------------------------------------

    def on_bars(self, bars: list[Bar], ts_ns: int) -> int:
        """Show every venue the bar slice closing at ``ts_ns`` (once: a slice at or before the
        last one seen is ignored, so a restarted stream processor cannot fill orders twice);
        journals what filled. Returns the number of reports."""
        import ray

        if ts_ns <= self.last_bar_ts:
            return 0
        if self.pending:
            self._drive_pending()
        refs = {n: h.on_bars.remote(bars, ts_ns) for n, h in self.venue_handles.items()}
        reports: list[ExecutionReport] = []
        for name, ref in refs.items():
            try:
                answer = ray.get(ref, timeout=self.clients[name].timeout_s)
            except Exception:
                answer = None
            if answer:
                reports.extend(answer)
        self._record(reports)
        self.last_bar_ts = ts_ns
        self._j("set_checkpoint", "router:last_bar_ts", ts_ns)
        self.counters["bar_slices"] += 1
        return len(reports)

    def start_session(self, day: Any, previous_closes: dict[str, float], ts_ns: int) -> int:
        """Open the session at every venue (idempotent); journals what it caused."""
        import ray

        reports: list[ExecutionReport] = []
        for name, handle in self.venue_handles.items():
            try:
                answer = ray.get(
                    handle.start_session.remote(day, previous_closes, ts_ns),
                    timeout=self.clients[name].timeout_s,
                )
            except Exception:
                answer = None
            if answer:
                reports.extend(answer)
        self._record(reports)
        return len(reports)

    def end_session(self, ts_ns: int) -> int:
        """DAY orders expire at every venue; journals the expiries."""
        import ray

        reports: list[ExecutionReport] = []
        for name, handle in self.venue_handles.items():
            try:
                answer = ray.get(
                    handle.end_session.remote(ts_ns), timeout=self.clients[name].timeout_s
                )
            except Exception:
                answer = None
            if answer:
                reports.extend(answer)
        self._record(reports)
        return len(reports)

    def cancel(self, client_order_id: str) -> list[ExecutionReport]:
        out = self.core.cancel(client_order_id)
        self._record(list(out.reports))
        return list(out.reports)

    def cancel_all(self, symbol: str | None = None) -> dict[str, Any]:
        """Cancel every open order (of ``symbol``) at every venue; journals the cancels."""
        started = time.time_ns()
        out = self.core.cancel_all(symbol)
        self._record(list(out.reports))
        for cid in out.held_back:
            self.pending.pop(cid, None)
        open_left = [
            cid
            for cid, st in self.orders.items()
            if st.status.is_open and (symbol is None or st.order.symbol == symbol)
        ]
        return {
            "cancelled": [
                r.client_order_id for r in out.reports if r.status is OrderStatus.CANCELLED
            ],
            "venues": list(out.cancelled_at),
            "skipped": dict(out.skipped),
            "failed": dict(out.failed),
            "held_back": list(out.held_back),
            "still_open": open_left,
            "complete": out.complete and not open_left,
            "elapsed_ms": (time.time_ns() - started) / 1e6,
        }

    # --- status ----------------------------------------------------------------------------------

    def open_orders(self) -> list[OrderState]:
        return [st for st in self.orders.values() if not st.status.is_terminal]

    def positions(self) -> dict[str, int]:
        pos: dict[str, int] = dict(self.recovery.get("base_positions", {}))
        for st in self.orders.values():
            if st.filled_qty:
                signed = st.order.side.sign * st.filled_qty
                pos[st.order.symbol] = pos.get(st.order.symbol, 0) + signed
        return {s: q for s, q in pos.items() if q}

    def status(self) -> dict[str, Any]:
        return {
            "restarted": self.restarted,
            "counters": dict(self.counters),
            "open_orders": [
                {
                    "client_order_id": st.order.client_order_id,
                    "symbol": st.order.symbol,
                    "side": st.order.side.name,
                    "quantity": st.order.quantity,
                    "filled": st.filled_qty,
                    "status": str(st.status),
                    "venue": self.core.venue_of(st.order.client_order_id),
                }
                for st in self.open_orders()
            ],
            "pending": sorted(self.pending),
            "positions": self.positions(),
            "venues": {n: h.to_dict() for n, h in self.core.venue_health().items()},
            "breaks": self.breaks,
            "recovery": self.recovery,
            "submit_latency": self.submit_latency.snapshot(),
            "last_bar_ts": self.last_bar_ts,
        }
