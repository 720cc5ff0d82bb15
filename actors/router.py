"""``OrderRouter``: hosts ``quant.execution.routing.RoutingCore`` in front of the venue actors.

What the actor adds to the core:

* **Outbox** (``actors.journal``): an order is staged in the journal before anything can reach
  a venue, and each send is claimed (``mark_sent``) right before the venue call
  (``OutboxVenue``); a refused claim sends nothing. The one legitimate second send of an id to
  the same venue (the core re-sends only after that venue's ``status`` said it does not hold
  the order) goes through the journal's explicit rule: the venue's "not held" answer is
  journaled (``reclaim_after_absent``) and allows exactly one more claim. Every execution
  report a venue returns is journaled before the caller sees it.
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
* **FIX venue** (``fix=``): a ``FixVenue`` session held by this actor (``actors.fix.link``),
  routed to like any venue. Its logon credentials are secret references from the config,
  resolved here (``cluster.secrets``), never passed as values. Reports the exchange sends
  outside a request are queued by the session and journaled on the router's next call.
  Reconciliation asks the exchange the ``status`` of each order the journal has working there.
* **Parent orders** (``submit_parent``): a ``ParentOrderSlicer`` (TWAP / VWAP / POV) sliced on
  the bar clock (``on_bars``); children are staged and routed like any order. The slicer's
  inputs are journaled with the children they produced, in one transaction, so a restarted
  router replays them, regenerates the same child ids and sends none of them again
  (``actors.parent_orders``).

Market data does not pass through the router: the stream processor shows the paper venues
each bar slice and journals what they fill; the router catches up with those reports from the
journal (``_catch_up``, before it acts on or reports its book) and gets the slice as its bar
clock (``on_bars``: held-back orders re-driven, parents sliced).

Consumers read the reports from the journal (by offset), not from the router's answers, so a
router restart loses nothing they have not read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actors.common import LagMeter, WallClock, freeze_startup_objects
from actors.context import report_key as _report_key
from actors.journal import ORDER_HELD, REPORT_KINDS, report_from_dict
from actors.parent_orders import (
    PARENT_EVENT,
    PARENT_STARTED,
    PARENT_STOPPED,
    AlgoSpec,
    ParentSpecError,
    event_from_dict,
    event_to_dict,
    markets_from_bars,
    started_from_payload,
    started_payload,
)
from quant.execution.algos.base import AlgoStatus
from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    OrderStatus,
)
from quant.execution.routing import (
    CancelRequest,
    CircuitBreaker,
    CommandOutcome,
    ParentOrderSlicer,
    RetryPolicy,
    RouteOutcome,
    RouteStatus,
    RoutingCore,
    TokenBucket,
    TransientVenueError,
    VenueUnavailable,
    answer_batch,
)
from quant.sim.matching import is_request_answer
from quant.sim.paper import is_held
from quant.sim.strategy import Bar

HELD = ORDER_HELD
PARENT_CLOCK = "router:parent_ts"
"""Checkpoint: the last bar slice the parents were sliced on (a retried slice slices nothing)."""

NS = 1_000_000_000


class VenueActorClient:
    """A venue actor behind the ``Venue`` protocol, with a per-call timeout (see the module
    docstring). A ``None`` answer is the venue's way of dropping a request it did not process."""

    def __init__(self, name: str, handle: Any, timeout_s: float) -> None:
        self.name = name
        self.handle = handle
        self.timeout_s = timeout_s
        self._dropped = 0
        """The venue's count of dropped requests when last seen (``status``)."""

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

    def batch(self, requests: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Many requests in one round trip; a timeout fails them all (each may have arrived)."""
        return self._get(self.handle.batch.remote(requests), f"a batch of {len(requests)}")

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
            # the venue answers None both for "unknown order" and for a request it dropped
            # unprocessed; "unknown" is evidence the router acts on (it may resend the order
            # there), a drop is not: the drop counter, read after the answer, tells them apart
            state = ray.get(self.handle.status.remote(client_order_id), timeout=self.timeout_s)
            info = (
                ray.get(self.handle.info.remote(), timeout=self.timeout_s)
                if state is None
                else None
            )
        except GetTimeoutError:
            raise TransientVenueError(f"{self.name} did not answer a status request") from None
        except RayActorError as exc:
            raise TransientVenueError(f"{self.name} died: {exc}") from None
        if info is not None and (
            not info.get("answering", True) or info.get("dropped_requests", 0) > self._dropped
        ):
            self._dropped = info.get("dropped_requests", 0)
            raise TransientVenueError(f"{self.name} dropped a status request unanswered")
        return state


class OutboxVenue:
    """A venue behind the journal's outbox rule, as the routing core sees it.

    ``submit`` claims the send in the journal first and sends only a claim the journal grants;
    a refused claim sends nothing and is answered ``TransientVenueError(maybe_received=True)``,
    so the core treats the order as possibly at this venue and asks its ``status`` before
    anything else. ``status`` journals a "not held" answer as the evidence that allows one more
    claim (``Journal.reclaim_after_absent``): that, and only that, lets the core re-send an id
    to a venue it went to before. Errors of the status call itself prove nothing and record
    nothing.
    """

    def __init__(
        self,
        name: str,
        inner: Any,
        journal: Callable[..., Any],
        clock: WallClock,
        journal_batch: Callable[[list[Any]], list[Any]],
    ) -> None:
        self.name = name
        self.inner = inner
        self._j = journal
        self._j_batch = journal_batch
        self.clock = clock
        self.refused_claims = 0
        self.absent_answers = 0

    def submit(self, order: Order) -> list[ExecutionReport]:
        if not self._j("mark_sent", order.client_order_id, self.name, self.clock.now_ns()):
            raise self._refused(order.client_order_id)
        return self.inner.submit(order)

    def _refused(self, cid: str) -> TransientVenueError:
        self.refused_claims += 1
        return TransientVenueError(
            f"{self.name}: the journal holds a send of {cid} here and no answer that the"
            " venue lacks it: not sent again",
            maybe_received=True,
        )

    def batch(self, requests: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """``submit``'s rule for a batch: every send claimed in one journal commit first; a
        refused claim answers its request with the error and sends nothing; the rest go to the
        venue in one call when it takes batches (``answer_batch`` otherwise)."""
        now = self.clock.now_ns()
        claims = [
            ("mark_sent", (args[0].client_order_id, self.name, now), {})
            for method, args in requests
            if method == "submit"
        ]
        granted = iter(self._j_batch(claims) if claims else [])
        answers: list[Any] = [None] * len(requests)
        forward: list[int] = []
        for i, (method, args) in enumerate(requests):
            if method == "submit" and not next(granted):
                answers[i] = self._refused(args[0].client_order_id)
            else:
                forward.append(i)
        sub = [requests[i] for i in forward]
        inner_batch = getattr(self.inner, "batch", None)
        if sub and inner_batch is not None:
            try:
                results = list(inner_batch(sub))
            except Exception as exc:  # the call failed: every forwarded request with it
                results = [exc] * len(sub)
            if len(results) != len(sub):
                lost = TransientVenueError(f"{self.name} answered {len(results)} of {len(sub)}")
                results = [lost] * len(sub)
        else:
            results = answer_batch(self.inner, sub)
        for i, result in zip(forward, results, strict=True):
            answers[i] = result
        return answers

    def status(self, client_order_id: str) -> OrderState | None:
        state = self.inner.status(client_order_id)
        if state is None:
            self.absent_answers += 1
            self._j(
                "reclaim_after_absent",
                client_order_id,
                self.name,
                f"status: {self.name} does not hold {client_order_id}",
                self.clock.now_ns(),
            )
        return state

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        return self.inner.cancel(client_order_id, ts_ns)

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        return self.inner.cancel_all(ts_ns, symbol)

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        return self.inner.replace(client_order_id, ts_ns, quantity, limit_price)


class UnavailableVenue:
    """A configured venue that could not be set up (e.g. its credentials' vault is unreachable
    at start): every request is refused ``VenueUnavailable`` with the reason, so its circuit
    opens and orders go elsewhere, and ``status`` shows why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise VenueUnavailable(f"{self.name}: {self.reason}")

    submit = cancel = cancel_all = replace = status = _refuse


def fix_link(spec: Mapping[str, Any]) -> Any:
    """The FIX venue of ``spec`` (``settings``: ``cluster.config.FixVenueSettings`` fields,
    ``vault``: ``VaultSettings`` fields, ``data_dir``: the session's store and message log,
    ``name``). The references are resolved here, in the process that logs on."""
    from actors.fix.link import FixLink
    from cluster.config import FixVenueSettings, VaultSettings
    from cluster.secrets import SecretError, SecretResolver

    name = str(spec.get("name", "fix"))
    settings = FixVenueSettings.model_validate(spec.get("settings") or {})
    try:
        resolver = SecretResolver.from_settings(
            VaultSettings.model_validate(spec.get("vault") or {})
        )
    except SecretError as exc:
        return UnavailableVenue(name, f"vault credentials unavailable: {exc}")
    return FixLink(
        settings,
        resolver=resolver,
        data_dir=Path(spec["data_dir"]),
        name=name,
        logon_timeout_s=float(spec.get("logon_timeout_s", 2.0)),
        retry_s=float(spec.get("retry_s", 1.0)),
    )


class OrderRouter:
    """Routes orders to the paper and FIX venues; see the module docstring."""

    def __init__(
        self,
        journal: Any,
        venues: Mapping[str, Any],
        *,
        preference: list[str] | None = None,
        fix: Mapping[str, Any] | None = None,
        calendar: str | None = "XIST",
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

        from actors.journal_actor import JournalClient

        self.journal = JournalClient.of(journal)  # local SQLite on the journal's node
        self.venue_handles = dict(venues)
        self.clock = WallClock()
        self.calendar = calendar
        clients: dict[str, Any] = {
            n: VenueActorClient(n, h, timeout_s) for n, h in self.venue_handles.items()
        }
        self.fix: Any = None
        self.fix_name: str | None = None
        if fix is not None:
            self.fix_name = str(fix.get("name", "fix"))
            self.fix = fix_link({**fix, "name": self.fix_name})
            clients[self.fix_name] = self.fix
        self.clients = clients
        self.outboxes = {
            n: OutboxVenue(n, c, self._j, self.clock, self._batch) for n, c in clients.items()
        }
        self.timeout_s = timeout_s
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
            self.outboxes,
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
        )
        self.preferred = (preference or list(self.clients))[0]
        self.orders: dict[str, OrderState] = {}
        self.pending: dict[str, Order] = {}
        """Orders the core asked to retry later (or in doubt): re-driven on every call."""
        self.seen: set[str] = set()
        self.held: set[str] = set()
        """Orders a venue answered "held" (it has them, they enter at a later phase)."""
        self.slicer = ParentOrderSlicer()
        self.parents: dict[str, AlgoSpec] = {}
        self.parent_logged: dict[str, int] = {}
        """Slicer events of each parent already journaled (the next one's number)."""
        self.parent_clock = 0
        self.parents_cancelled: set[str] = set()
        self.last_bar_ts = 0
        self.report_offset = 0
        """Journal offset of the last report applied (``_catch_up``)."""
        self.counters = {
            "submitted": 0,
            "repeats": 0,
            "routed": 0,
            "rejected": 0,
            "recovered": 0,
            "resent_after_restart": 0,
            "reports": 0,
            "bar_slices": 0,
            "unsolicited_reports": 0,
            "parents": 0,
            "children": 0,
        }
        self.submit_latency = LagMeter()
        self.breaks: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] = {}
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self._recover()
        freeze_startup_objects()

    # --- journal helpers -------------------------------------------------------------------------

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.journal.call(method, *args, **kwargs)

    def _batch(self, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
        return self.journal.batch(calls) if calls else []

    def _record(self, reports: list[ExecutionReport] | tuple[ExecutionReport, ...]) -> None:
        """Journal reports a venue answered the router, then apply them to the router's book
        (journal first). Children's reports go to their parent's algorithm, and its inputs
        are journaled in the same transaction as the reports."""
        fresh = [r for r in reports if _report_key(r) not in self.seen]
        if fresh:
            self._apply(fresh, [("record_venue_reports", (fresh,), {})])

    def _catch_up(self) -> None:
        """Apply the reports others journaled since the last look: the fills the stream
        processor journals as the paper venues answer its bars (it shows them the market;
        ``on_bars``), and an operator's cancels. Each is applied once (``seen``)."""
        events = self._j("events", self.report_offset, kinds=[str(k) for k in REPORT_KINDS])
        if not events:
            return
        self.report_offset = events[-1].seq
        fresh = [
            r
            for r in (report_from_dict(e.payload) for e in events)
            if _report_key(r) not in self.seen
        ]
        if fresh:
            self._apply(fresh, [])

    def _apply(
        self,
        reports: list[ExecutionReport],
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    ) -> None:
        """Apply journaled (or being journaled by ``calls``) reports to the book and the
        parents' algorithms; the algorithms' new inputs are journaled with ``calls``."""
        held = [r for r in reports if is_held(r)]
        changes = [r for r in reports if not is_held(r) and not is_request_answer(r)]
        for r in changes:
            if self.slicer.parent_of(r.client_order_id) is not None:
                self.slicer.on_report(r)
        logged = self._parent_event_calls()
        self._batch(calls + logged[0])
        self.parent_logged.update(logged[1])
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

    def _drain(self) -> None:
        """Journal what the FIX exchange sent outside a request (fills of resting orders)."""
        if self.fix is None or not hasattr(self.fix, "take_reports"):
            return
        reports = self.fix.take_reports()
        if reports:
            self.counters["unsolicited_reports"] += len(reports)
            self._record(reports)

    # --- recovery --------------------------------------------------------------------------------

    def _recover(self) -> None:
        state = self._j("rebuild")
        self.report_offset = state.last_seq
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
        parents = self._restore_parents()
        self.recovery = {
            "orders": len(state.orders),
            "restored_at_venue": restored,
            "confirmed": confirmed,
            "in_doubt": restored - confirmed,
            "unsent": len(unsent),
            "positions": dict(state.positions),
            "problems": list(state.problems),
            **parents,
        }
        if self.pending:
            self.counters["resent_after_restart"] += len(unsent)
            self._drive_pending()
        self.reconcile()

    def _restore_parents(self) -> dict[str, Any]:
        """Rebuild every parent from its journaled inputs; the children it regenerates carry
        the ids they had and are already in the outbox (staged with the input that made them)."""
        self.parent_clock = int(self._j("checkpoint", PARENT_CLOCK, 0))
        stopped = {
            e.key: str(e.payload.get("reason", "stopped"))
            for e in self._j("events", 0, kinds=[PARENT_STOPPED])
        }
        regenerated = 0
        unknown: list[str] = []
        for started in self._j("events", 0, kinds=[PARENT_STARTED]):
            parent, spec = started_from_payload(started.payload)
            pid = parent.client_order_id
            events = self._j("events", 0, kinds=[PARENT_EVENT], key=pid)
            try:
                algo = spec.build()
                start, end = spec.window()
                context = spec.context()
            except ParentSpecError:
                continue  # refused when submitted; nothing was sliced
            inputs = [event_from_dict(e.payload) for e in events]
            children = self.slicer.resume(parent, algo, start, end, context, inputs)
            self.parents[pid] = spec
            self.parent_logged[pid] = len(events)
            # children's reports journaled (by the stream processor, as the venue answered its
            # bars) but not yet as the parent's inputs when the router stopped: fed now, and
            # journaled as inputs with the next reports
            known = {_report_key(i.report) for i in inputs if i.report is not None}
            for child in children:
                state = self.orders.get(child.client_order_id)
                for r in state.history if state is not None else ():
                    if _report_key(r) not in known:
                        self.slicer.on_report(r)
            if pid in stopped:
                self.slicer.stop(pid, stopped[pid])
            regenerated += len(children)
            unknown += [c.client_order_id for c in children if c.client_order_id not in self.orders]
        return {
            "parents": len(self.parents),
            "children_regenerated": regenerated,
            "children_not_in_journal": unknown,
        }

    def reconcile(self) -> list[dict[str, Any]]:
        """Compare the journal with every venue's open orders (the FIX exchange's through the
        status of each order the router has there); keeps and returns the breaks."""
        import ray

        self._drain()
        self._catch_up()
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
        if self.fix_name is not None:
            fix_views = self._fix_views()
            if fix_views is None:
                unreachable.append(self.fix_name)
            else:
                views.extend(fix_views)
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

    def _fix_views(self) -> list[OrderState] | None:
        """The FIX exchange's state of every open order the router has there (None when the
        exchange cannot be asked)."""
        assert self.fix_name is not None
        out = []
        for cid, st in self.orders.items():
            if st.status.is_terminal or self.core.venue_of(cid) != self.fix_name:
                continue
            try:
                state = self.fix.status(cid)
            except Exception:
                return None
            if state is not None and state.status.is_open:
                out.append(state)
        return out

    def _venue_of(self, cid: str) -> str | None:
        return self.core.venue_of(cid)

    # --- orders ----------------------------------------------------------------------------------

    def ready(self) -> bool:
        return True

    def submit(self, order: Order) -> ExecutionReport:
        """Route one order; idempotent by client order id (a retried call sends nothing)."""
        started = time.time_ns()
        self._drain()
        self._catch_up()
        cid = order.client_order_id
        known = self.orders.get(cid)
        if known is not None and (known.history or cid in self.pending or cid in self.held):
            self.counters["repeats"] += 1
            return self._answer(known)
        self.counters["submitted"] += 1
        if known is None:
            self._j("stage_order", order, self.preferred, order.ts_ns or None)
            self.orders[cid] = OrderState(order)
        answer = self._dispatch(order)
        self.submit_latency.observe(time.time_ns() - started)
        return answer

    def execute(self, actions: list[Order | CancelRequest]) -> list[Any]:
        """A bar slice's orders and cancels, in order, with one journal commit for the
        staging, one for the send claims, one venue call per venue and one commit for the
        reports (``RoutingCore.execute``). Answers, per action: an order's deciding report, as
        ``submit`` answers; a cancel's ``CommandOutcome``. Idempotent like ``submit``: a
        repeated order is answered from the book and not sent again."""
        started = time.time_ns()
        self._drain()
        self._catch_up()
        answers: list[Any] = [None] * len(actions)
        todo: list[int] = []
        staging: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for i, action in enumerate(actions):
            if isinstance(action, CancelRequest):
                todo.append(i)
                continue
            cid = action.client_order_id
            known = self.orders.get(cid)
            if known is not None and (known.history or cid in self.pending or cid in self.held):
                self.counters["repeats"] += 1
                answers[i] = self._answer(known)
                continue
            if any(isinstance(actions[j], Order) and actions[j] == action for j in todo):
                self.counters["repeats"] += 1  # the same order twice in one call: sent once
                continue
            self.counters["submitted"] += 1
            if known is None:
                staging.append(("stage_order", (action, self.preferred, action.ts_ns or None), {}))
                self.orders[cid] = OrderState(action)
            todo.append(i)
        self._batch(staging)  # journaled before anything can reach a venue (outbox)
        outcomes = self.core.execute([actions[i] for i in todo])
        self._record([r for outcome in outcomes for r in outcome.reports])
        for i, outcome in zip(todo, outcomes, strict=True):
            action = actions[i]
            if isinstance(outcome, CommandOutcome):
                answers[i] = outcome
                continue
            self._settle(action, outcome, record=False)
            if outcome.status in (RouteStatus.RETRY, RouteStatus.IN_DOUBT):
                answers[i] = self._dispatch(action)  # waits out the retries, as submit does
            else:
                answers[i] = self._answer(self.orders[action.client_order_id])
        for i, action in enumerate(actions):
            if answers[i] is None:  # a repeat within the call
                answers[i] = self._answer(self.orders[action.client_order_id])
        if any(isinstance(a, CancelRequest) and a.client_order_id in self.pending for a in actions):
            # a cancel reached the venue an order is in doubt at: it answers, so ask it now
            self._drive_pending()
        self.submit_latency.observe(time.time_ns() - started)
        return answers

    def _dispatch(self, order: Order) -> ExecutionReport:
        """Route a staged order; an unresolved one is kept and answered "held by the router"."""
        cid = order.client_order_id
        outcome = self._route(order)
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

    def _settle(self, order: Order, outcome: RouteOutcome, *, record: bool = True) -> None:
        cid = order.client_order_id
        if record and outcome.reports:
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

    # --- parent orders ---------------------------------------------------------------------------

    def submit_parent(self, parent: Order, algo: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Work ``parent`` with ``algo`` (twap, vwap, pov; ``actors.parent_orders.AlgoSpec``
        gives the parameters) from the next bar slice on. Idempotent by the parent's id: a
        repeated call changes nothing and answers the parent's state."""
        pid = parent.client_order_id
        if pid in self.parents:
            return {**self.parent_status(pid), "repeat": True}
        spec = AlgoSpec(str(algo), dict(params))
        try:
            algo_obj = spec.build()
            start, end = spec.window()
            context = spec.context()
        except ParentSpecError as exc:
            return {"parent_id": pid, "status": str(AlgoStatus.INVALID), "reason": str(exc)}
        if pid in self.orders:
            why = f"client order id {pid!r} is already used by an order"
            return {"parent_id": pid, "status": str(AlgoStatus.INVALID), "reason": why}
        ts = parent.ts_ns or self.clock.now_ns()
        self._j("append", PARENT_STARTED, pid, started_payload(parent, spec), ts, f"parent:{pid}")
        self.slicer.start(parent, algo_obj, start, end, context)
        self.parents[pid] = spec
        self.parent_logged[pid] = 0
        self.counters["parents"] += 1
        return self.parent_status(pid)

    def _parent_event_calls(
        self,
    ) -> tuple[list[tuple[str, tuple[Any, ...], dict[str, Any]]], dict[str, int]]:
        """Journal appends for the slicer inputs not journaled yet, and the new counts."""
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        counts: dict[str, int] = {}
        for pid in self.parents:
            events = self.slicer.events(pid)
            done = self.parent_logged.get(pid, 0)
            if len(events) <= done:
                continue
            for i in range(done, len(events)):
                e = events[i]
                payload = {"i": i, **event_to_dict(e)}
                calls.append(
                    ("append", (PARENT_EVENT, pid, payload, e.ts_ns, f"parent:{pid}:{i}"), {})
                )
            counts[pid] = len(events)
        return calls, counts

    def _slice_parents(self, bars: list[Bar], ts_ns: int) -> int:
        """The bar clock: children due at ``ts_ns`` are journaled (with the slicer input that
        made them, and the slice time) in one transaction, then routed like any order."""
        if not self.parents or ts_ns <= self.parent_clock:
            return 0
        children = self.slicer.on_time(ts_ns, markets_from_bars(bars, ts_ns, self.calendar))
        calls, counts = self._parent_event_calls()
        for child in children:
            calls.append(("stage_order", (child, self.preferred, child.ts_ns), {}))
        calls.append(("set_checkpoint", (PARENT_CLOCK, ts_ns), {}))
        self._batch(calls)
        self.parent_logged.update(counts)
        self.parent_clock = ts_ns
        for child in children:
            self.orders[child.client_order_id] = OrderState(child)
            self.counters["children"] += 1
            self._dispatch(child)
        self._cancel_finished_parents()
        return len(children)

    def _cancel_finished_parents(self) -> None:
        """A parent whose window ended (or that stopped) cancels its working children."""
        for pid in self.parents:
            algo = self.slicer.algo(pid)
            if algo is None or pid in self.parents_cancelled:
                continue
            if algo.status in (AlgoStatus.EXPIRED, AlgoStatus.STOPPED):
                self.parents_cancelled.add(pid)
                for cid in algo.open_children:
                    self.cancel(cid)

    def parent_status(self, parent_id: str) -> dict[str, Any]:
        self._catch_up()
        algo = self.slicer.algo(parent_id)
        spec = self.parents.get(parent_id)
        if algo is None or algo.parent is None or spec is None:
            return {"parent_id": parent_id, "status": "unknown", "reason": "no such parent"}
        return {
            "parent_id": parent_id,
            "algo": spec.algo,
            "status": str(algo.status),
            "reason": algo.reason,
            "quantity": algo.parent.quantity,
            "filled": algo.filled,
            "working": algo.working,
            "remaining": algo.remaining,
            "done": algo.done,
            "children": [c.client_order_id for c in algo.children],
            "open_children": list(algo.open_children),
        }

    # --- market data and session -----------------------------------------------------------------

    def on_bars(self, bars: list[Bar], ts_ns: int) -> int:
        """The bar clock: the slice closing at ``ts_ns`` was shown to the paper venues by the
        stream processor, which journaled what filled (market data goes to the venues
        directly, one round trip, not through the router). Here the router catches up with
        those reports, re-drives held-back orders and slices the parent orders on the slice
        (once: a slice at or before the last one seen is ignored). Returns the children sent."""
        if ts_ns <= self.last_bar_ts:
            return 0
        self._drain()
        self._catch_up()
        if self.pending:
            self._drive_pending()
        children = self._slice_parents(bars, ts_ns)
        self.last_bar_ts = ts_ns
        self._j("set_checkpoint", "router:last_bar_ts", ts_ns)
        self.counters["bar_slices"] += 1
        return children

    def start_session(self, day: Any, previous_closes: dict[str, float], ts_ns: int) -> int:
        """Open the session at every paper venue (idempotent; the FIX exchange runs its own
        session); journals what it caused."""
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
        """DAY orders expire at every paper venue; journals the expiries."""
        import ray

        self._drain()
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
        self._drain()
        self._catch_up()
        out = self.core.cancel(client_order_id)
        self._record(list(out.reports))
        return list(out.reports)

    def stop_parents(self, symbol: str | None = None, reason: str = "operator") -> list[str]:
        """Stop slicing every running parent (of ``symbol``): no child is sent after this
        returns. Journaled (``PARENT_STOPPED``), so a restarted router does not resume them.
        Their working children are left to the caller (``cancel_all`` cancels them)."""
        stopped = []
        for pid in self.parents:
            algo = self.slicer.algo(pid)
            if algo is None or algo.parent is None:
                continue
            if symbol is not None and algo.parent.symbol != symbol:
                continue
            if self.slicer.stop(pid, reason):
                stopped.append(pid)
        if stopped:
            now = self.clock.now_ns()
            self._batch(
                [
                    ("append", (PARENT_STOPPED, pid, {"reason": reason}, now, f"stop:{pid}"), {})
                    for pid in stopped
                ]
            )
        return stopped

    def cancel_all(self, symbol: str | None = None, reason: str = "cancel-all") -> dict[str, Any]:
        """Stop the parents (of ``symbol``), then cancel every open order (of ``symbol``) at
        every venue; journals the cancels."""
        started = time.time_ns()
        self._drain()
        self._catch_up()
        parents_stopped = self.stop_parents(symbol, reason)
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
            "parents_stopped": parents_stopped,
            "still_open": open_left,
            "complete": out.complete and not open_left,
            "elapsed_ms": (time.time_ns() - started) / 1e6,
        }

    def close(self) -> bool:
        """Log the FIX session out (the actor is about to be stopped); idempotent."""
        if self.fix is not None and hasattr(self.fix, "close"):
            self.fix.close()
        return True

    # --- status ----------------------------------------------------------------------------------

    def open_orders(self) -> list[OrderState]:
        self._catch_up()
        return [st for st in self.orders.values() if not st.status.is_terminal]

    def positions(self) -> dict[str, int]:
        self._catch_up()
        pos: dict[str, int] = dict(self.recovery.get("base_positions", {}))
        for st in self.orders.values():
            if st.filled_qty:
                signed = st.order.side.sign * st.filled_qty
                pos[st.order.symbol] = pos.get(st.order.symbol, 0) + signed
        return {s: q for s, q in pos.items() if q}

    def breaker_transitions(self, venue: str) -> list[tuple[int, str]]:
        """(ts_ns, state) of every change of ``venue``'s circuit breaker."""
        return [(t, str(s)) for t, s in self.core.breakers[venue].transitions]

    def status(self) -> dict[str, Any]:
        self._drain()
        self._catch_up()
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
            "outbox": {
                n: {"refused_claims": o.refused_claims, "absent_answers": o.absent_answers}
                for n, o in self.outboxes.items()
            },
            "fix": self.fix.info() if hasattr(self.fix, "info") else None,
            "parents": {pid: self.parent_status(pid) for pid in self.parents},
            "breaks": self.breaks,
            "recovery": self.recovery,
            "submit_latency": self.submit_latency.snapshot(),
            "last_bar_ts": self.last_bar_ts,
        }
