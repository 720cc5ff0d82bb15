"""``RiskGuard``: every order passes ``quant.risk.RiskEngine.check`` here before the router.

The actor holds the trading state (ACTIVE / REDUCING / HALTED) and the kill switch, journals
every decision (``record_risk_decision``: one per client order id) and every state change
(``risk_event``), and snapshots the engine (``RiskEngine.to_dict``) into the journal after each
change. A restarted guard loads the snapshot, then replays the fills journaled after the
snapshot's offset (the order-to-trade counters), so it resumes exactly where it stopped.

Idempotent by client order id: a call retried after a restart finds the journaled decision and
repeats it (an accepted order goes to the router again, which is idempotent too), so a killed
guard can neither lose an order nor count or send it twice.

The account view (positions, open quantities, equity, buying power, last prices, bands) comes
with each order from the stream processor that hosts the strategy: it is the strategy's own
book, fed by the journaled fills.

Batches (``submit_many``): the stream processor sends the orders a bar slice decided in one
call. They are checked in the order the strategy sent them, their decisions, the risk events
and the engine's snapshot are journaled in one commit, and only then are the accepted ones sent
to the router, with the slice's cancels in their places, in one call (``OrderRouter.execute``:
one venue round trip for the whole slice instead of one per order or cancel). The
strategy's book counted each order of the batch as open from the moment it was submitted, as
it does in the one-order path when the order is accepted; for an order the guard rejects the
later views of the batch are corrected (its open quantity and buying-power reservation taken
out), so each check sees exactly the view the one-order path would have given it. One
difference remains: a *venue's* reject of an earlier order of the batch is not known when the
later ones are checked (they are checked before the venue answers), so they count it as open,
which can only make a limit bind sooner, never later.

Journal access goes through ``JournalClient``: local SQLite on the journal's node (about 0.1 ms
a commit), the ``JournalActor`` elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from actors.common import LagMeter, freeze_startup_objects
from actors.journal import REPORT_KINDS, decision_from_dict, report_from_dict
from actors.journal_actor import JournalClient
from quant.execution.orders import ExecutionReport, Order, OrderStatus, RejectCode
from quant.execution.routing import CancelRequest
from quant.market.bands import Band
from quant.market.instrument import Instrument
from quant.risk.checks import OpenQuantity, RiskContext, RiskDecision
from quant.risk.engine import RiskEngine
from quant.risk.guards import DailyLossLimit, DrawdownGuard, PortfolioGuard, TradingState
from quant.risk.limits import RiskLimits

SNAPSHOT = "risk:engine"


def context_from_view(
    view: dict[str, Any],
    instruments: dict[str, Instrument],
    adv: dict[str, float] | None = None,
) -> RiskContext:
    """A ``RiskContext`` from the plain account view the stream processor sends; ``adv``: the
    day's average daily volumes (the fat-finger check), as the backtest's context has them."""
    for s in view.get("last_prices", {}):
        if s not in instruments:
            try:
                instruments[s] = Instrument(s)
            except ValueError:
                continue
    symbols = set(view.get("open_buy", {})) | set(view.get("open_sell", {}))
    return RiskContext(
        day=date.fromisoformat(view["day"]),
        instruments=instruments,
        last_prices=dict(view.get("last_prices", {})),
        bands={s: Band(*b) for s, b in view.get("bands", {}).items()},
        positions=dict(view.get("positions", {})),
        open_orders={
            s: OpenQuantity(
                buy=int(view.get("open_buy", {}).get(s, 0)),
                sell=int(view.get("open_sell", {}).get(s, 0)),
            )
            for s in symbols
        },
        equity=view.get("equity"),
        buying_power=view.get("buying_power"),
        halted_symbols=frozenset(view.get("halted", ())),
        adv=dict(view.get("adv") or adv or {}),
    )


class RiskGuard:
    """Pre-trade risk, trading state and kill switch (see the module docstring)."""

    def __init__(
        self,
        journal: Any,
        router: Any,
        symbols: list[str],
        *,
        limits: dict[str, Any] | None = None,
        drawdown_reduce_at: float | None = None,
        drawdown_halt_at: float | None = None,
        daily_loss_pct: float | None = None,
        adv: dict[str, float] | None = None,
    ) -> None:
        import ray

        self.adv = dict(adv or {})
        """Average daily volume per symbol as of the day's start (the fat-finger check)."""
        self.journal = JournalClient.of(journal)
        self.router = router
        self.instruments = {s: Instrument(s) for s in symbols}
        snapshot = self._j("checkpoint", SNAPSHOT, None)
        if snapshot is not None:
            self.engine = RiskEngine.from_dict(snapshot["engine"])
            self.offset = int(snapshot["offset"])
        else:
            guards: list[PortfolioGuard] = []
            if drawdown_reduce_at is not None or drawdown_halt_at is not None:
                guards.append(DrawdownGuard(drawdown_reduce_at, drawdown_halt_at))
            if daily_loss_pct is not None:
                guards.append(DailyLossLimit(limit_pct=daily_loss_pct))
            self.engine = RiskEngine(RiskLimits.model_validate(limits or {}), guards)
            self.offset = 0
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self.counters = {"checked": 0, "accepted": 0, "rejected": 0, "repeats": 0}
        self.rejects_by_code: dict[str, int] = {}
        self.check_latency = LagMeter()
        self.decisions: dict[str, RiskDecision] = {}
        self.batches = 0
        self._load_decisions()
        self._catch_up()
        freeze_startup_objects()

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.journal.call(method, *args, **kwargs)

    def _catch_up(self) -> None:
        """Count the fills journaled since the snapshot (order-to-trade ratio, open orders)."""
        events = self._j("events", self.offset, kinds=[str(k) for k in REPORT_KINDS])
        for e in events:
            self.engine.on_execution_report(report_from_dict(e.payload))
            self.offset = e.seq

    def _snapshot(self, calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]] = ()) -> None:
        """Journal ``calls`` (decisions), the risk events since the last snapshot and the
        engine's state, in one commit."""
        batch = list(calls)
        for event in self.engine.drain_events():
            batch.append(
                (
                    "append",
                    (
                        "risk_event",
                        str(event.kind),
                        event.to_dict(),
                        event.ts_ns,
                        f"risk_event:{event.kind}:{event.ts_ns}:{event.state}",
                    ),
                    {},
                )
            )
        batch.append(
            (
                "set_checkpoint",
                (SNAPSHOT, {"engine": self.engine.to_dict(), "offset": self.offset}),
                {},
            )
        )
        self.journal.batch(batch)

    def ready(self) -> bool:
        return True

    # --- orders ----------------------------------------------------------------------------------

    def submit(self, order: Order, view: dict[str, Any]) -> ExecutionReport:
        """Check ``order``; journal the decision; send an accepted order to the router."""
        return self.submit_many([(order, view)])[0][0]

    def submit_many(
        self, items: list[tuple[Order, dict[str, Any]] | CancelRequest]
    ) -> list[tuple[Any, int]]:
        """Check the orders of one bar slice in order, journal every decision in one commit,
        then send the accepted ones, with the slice's cancels in their places, to the router
        in one call (``OrderRouter.execute``; see the module docstring). Cancels are not
        checked: they only reduce risk, and pass even with the kill switch engaged. Returns,
        per item, the answer and the wall time (ns) it reached this guard: for an order, its
        deciding report (the router's acknowledgement, or the guard's reject, stamped at the
        check); for a cancel, the router's ``CommandOutcome``."""
        import ray

        started = time.time_ns()
        decisions: list[RiskDecision | None] = []
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        rejected: list[Order] = []
        caught_up = False
        n_orders = 0
        for item in items:
            if isinstance(item, CancelRequest):
                decisions.append(None)
                continue
            order, view = item
            n_orders += 1
            cid = getattr(order, "client_order_id", "")
            decision = self._known_decision(cid)
            if decision is not None:
                self.counters["repeats"] += 1
            else:
                if not caught_up:
                    self._catch_up()
                    caught_up = True
                try:
                    context = context_from_view(
                        _without(view, rejected), self.instruments, self.adv
                    )
                    decision = self.engine.check(order, context)
                except Exception as exc:
                    decision = RiskDecision.reject(
                        RejectCode.INVALID_ORDER, f"malformed order: {exc}"
                    )
                self.counters["checked"] += 1
                if isinstance(order, Order) and cid:
                    calls.append(
                        ("record_risk_decision", (order, decision, order.ts_ns or None), {})
                    )
            if cid:
                self.decisions[cid] = decision
            if not decision.accepted and isinstance(order, Order):
                rejected.append(order)
            decisions.append(decision)
        if caught_up:
            self._snapshot(calls)  # decisions journaled before any order reaches the router
        checked = time.time_ns()
        if n_orders:
            self.check_latency.observe((checked - started) / n_orders)
        sent = [
            i
            for i, (item, d) in enumerate(zip(items, decisions, strict=True))
            if d is None or d.accepted
        ]
        routed: dict[int, Any] = {}
        if sent:
            actions = [
                items[i] if isinstance(items[i], CancelRequest) else items[i][0]  # type: ignore[index]
                for i in sent
            ]
            answers = ray.get(self.router.execute.remote(actions))
            routed = dict(zip(sent, answers, strict=True))
        acked = time.time_ns()
        out: list[tuple[Any, int]] = []
        for i, (item, decision) in enumerate(zip(items, decisions, strict=True)):
            if i in routed:
                if decision is not None:
                    self.counters["accepted"] += 1
                out.append((routed[i], acked))
                continue
            assert decision is not None
            order = item[0]  # type: ignore[index]
            code = decision.code or RejectCode.INVALID_ORDER
            self.counters["rejected"] += 1
            self.rejects_by_code[str(code)] = self.rejects_by_code.get(str(code), 0) + 1
            report = ExecutionReport(
                client_order_id=getattr(order, "client_order_id", ""),
                status=OrderStatus.REJECTED,
                ts_ns=getattr(order, "ts_ns", 0),
                symbol=getattr(order, "symbol", ""),
                side=getattr(order, "side", None),
                reject_code=code,
                reason=decision.reason,
            )
            out.append((report, checked))
        self.batches += 1
        return out

    def submit_parent(
        self, parent: Order, algo: str, params: dict[str, Any], view: dict[str, Any]
    ) -> dict[str, Any]:
        """Check a parent order (TWAP / VWAP / POV) before the router works it: the whole
        parent as one order, so every limit applies to the full quantity its children can add
        up to; journal the decision; hand an accepted parent to the router
        (``OrderRouter.submit_parent``). Its children are slices of an accepted parent and are
        not checked again one by one (the router never calls the guard, which keeps the two
        free of deadlock); what stops them is the kill switch and a halt, which stop every
        parent at the router (``OrderRouter.stop_parents``). Idempotent by the parent's id."""
        import ray

        cid = parent.client_order_id
        decision = self._known_decision(cid)
        if decision is None:
            self._catch_up()
            try:
                decision = self.engine.check(
                    parent, context_from_view(view, self.instruments, self.adv)
                )
            except Exception as exc:
                decision = RiskDecision.reject(RejectCode.INVALID_ORDER, f"malformed: {exc}")
            self.counters["checked"] += 1
            self.decisions[cid] = decision
            self._snapshot([("record_risk_decision", (parent, decision, parent.ts_ns or None), {})])
        if not decision.accepted:
            code = decision.code or RejectCode.INVALID_ORDER
            self.counters["rejected"] += 1
            self.rejects_by_code[str(code)] = self.rejects_by_code.get(str(code), 0) + 1
            return {
                "parent_id": cid,
                "status": "rejected",
                "reject_code": str(code),
                "reason": decision.reason,
            }
        self.counters["accepted"] += 1
        return ray.get(self.router.submit_parent.remote(parent, algo, dict(params)))

    def _halt_parents(self, reason: str) -> None:
        """A halted account slices no more children (see ``submit_parent``)."""
        import ray

        if self.engine.trading_state is TradingState.HALTED:
            ray.get(self.router.stop_parents.remote(None, f"trading halted: {reason}"))

    def _known_decision(self, cid: str) -> RiskDecision | None:
        """The decision already made for ``cid`` (a retried call, a restarted guard): every
        decision this guard journaled is in ``decisions``, loaded from the journal at start
        (``_load_decisions``), so no order costs a journal query."""
        return self.decisions.get(cid) if cid else None

    def _load_decisions(self) -> None:
        """The decisions journaled before this start, first one per order as journaled."""
        for e in self._j("events", 0, kinds=["risk_decision"]):
            if e.key and e.key not in self.decisions:
                self.decisions[e.key] = decision_from_dict(e.payload["decision"])

    # --- trading state and kill switch -------------------------------------------------------

    def engage_kill_switch(self, reason: str = "operator") -> dict[str, Any]:
        """Stop every new order, then cancel every open order at every venue."""
        import ray

        now = time.time_ns()
        self.engine.engage_kill_switch(reason, now)
        self._snapshot()
        cancel = ray.get(self.router.cancel_all.remote(None, f"kill switch: {reason}"))
        return {"kill_switch": True, "reason": reason, "cancel_all": cancel}

    def release_kill_switch(self, reason: str = "operator") -> dict[str, Any]:
        self.engine.release_kill_switch(time.time_ns(), reason)
        self._snapshot()
        return {"kill_switch": False, "reason": reason}

    def set_trading_state(self, state: str, reason: str = "operator") -> str:
        self.engine.set_trading_state(TradingState(state), reason, time.time_ns())
        self._snapshot()
        self._halt_parents(reason)
        return str(self.engine.trading_state)

    def on_equity(self, equity: float, ts_ns: int) -> str:
        """An equity mark (the guards' input); returns the trading state it implies."""
        before = (self.engine.trading_state, self.engine.to_dict()["guards"])
        state = self.engine.on_equity(equity, ts_ns)
        if (state, self.engine.to_dict()["guards"]) != before:
            self._snapshot()
            if state is not before[0]:
                self._halt_parents("an equity guard")
        return str(state)

    def status(self) -> dict[str, Any]:
        kill = self.engine.kill_switch
        return {
            "restarted": self.restarted,
            "trading_state": str(self.engine.trading_state),
            "kill_switch": None if kill is None else {"reason": kill.reason, "ts_ns": kill.ts_ns},
            "counters": dict(self.counters),
            "rejects_by_code": dict(self.rejects_by_code),
            "check_latency": self.check_latency.snapshot(),
            "batches": self.batches,
            "journal": self.journal.mode,
            "journal_offset": self.offset,
        }


def _without(view: dict[str, Any], rejected: list[Order]) -> dict[str, Any]:
    """``view`` without the earlier orders of the batch the guard rejected: the strategy's book
    counted them as open (open quantity, and buying power reserved for a buy at its limit or the
    last price, as ``LiveContext.buying_power`` does), the one-order path never would have."""
    if not rejected:
        return view
    buys = dict(view.get("open_buy", {}))
    sells = dict(view.get("open_sell", {}))
    last = view.get("last_prices", {})
    power = view.get("buying_power")
    for order in rejected:
        book = buys if order.side.sign > 0 else sells
        left = book.get(order.symbol, 0) - order.quantity
        if left > 0:
            book[order.symbol] = left
        else:
            book.pop(order.symbol, None)
        if order.side.sign > 0 and power is not None:
            power += order.quantity * (order.limit_price or last.get(order.symbol, 0.0))
    return {**view, "open_buy": buys, "open_sell": sells, "buying_power": power}
