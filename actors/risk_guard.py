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
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from actors.common import LagMeter
from actors.journal import REPORT_KINDS, report_from_dict
from quant.execution.orders import ExecutionReport, Order, OrderStatus, RejectCode
from quant.market.bands import Band
from quant.market.instrument import Instrument
from quant.risk.checks import OpenQuantity, RiskContext, RiskDecision
from quant.risk.engine import RiskEngine
from quant.risk.guards import DailyLossLimit, DrawdownGuard, PortfolioGuard, TradingState
from quant.risk.limits import RiskLimits

SNAPSHOT = "risk:engine"


def context_from_view(view: dict[str, Any], instruments: dict[str, Instrument]) -> RiskContext:
    """A ``RiskContext`` from the plain account view the stream processor sends."""
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
    ) -> None:
        import ray

        self.journal = journal
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
        self._catch_up()

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        return ray.get(self.journal.call.remote(method, *args, **kwargs))

    def _catch_up(self) -> None:
        """Count the fills journaled since the snapshot (order-to-trade ratio, open orders)."""
        events = self._j("events", self.offset, kinds=[str(k) for k in REPORT_KINDS])
        for e in events:
            self.engine.on_execution_report(report_from_dict(e.payload))
            self.offset = e.seq

    def _snapshot(self) -> None:
        self._drain_events()
        self._j(
            "set_checkpoint", SNAPSHOT, {"engine": self.engine.to_dict(), "offset": self.offset}
        )

    def _drain_events(self) -> None:
        for event in self.engine.drain_events():
            data = event.to_dict()
            self._j(
                "append",
                "risk_event",
                str(event.kind),
                data,
                event.ts_ns,
                f"risk_event:{event.kind}:{event.ts_ns}:{event.state}",
            )

    def ready(self) -> bool:
        return True

    # --- orders ----------------------------------------------------------------------------------

    def submit(self, order: Order, view: dict[str, Any]) -> ExecutionReport:
        """Check ``order``; journal the decision; send an accepted order to the router."""
        import ray

        started = time.time_ns()
        cid = getattr(order, "client_order_id", "")
        decision = self.decisions.get(cid) if cid else None
        if decision is None and cid:
            staged = self._j("events", 0, kinds=["risk_decision"], key=cid, limit=1)
            if staged:
                from actors.journal import decision_from_dict

                decision = decision_from_dict(staged[0].payload["decision"])
        if decision is not None:
            self.counters["repeats"] += 1
        else:
            self._catch_up()
            try:
                context = context_from_view(view, self.instruments)
                decision = self.engine.check(order, context)
            except Exception as exc:
                decision = RiskDecision.reject(RejectCode.INVALID_ORDER, f"malformed order: {exc}")
            self.counters["checked"] += 1
            if isinstance(order, Order) and cid:
                self._j("record_risk_decision", order, decision, order.ts_ns or None)
            self._snapshot()
        if cid:
            self.decisions[cid] = decision
        self.check_latency.observe(time.time_ns() - started)
        if not decision.accepted:
            code = decision.code or RejectCode.INVALID_ORDER
            self.counters["rejected"] += 1
            self.rejects_by_code[str(code)] = self.rejects_by_code.get(str(code), 0) + 1
            return ExecutionReport(
                client_order_id=cid,
                status=OrderStatus.REJECTED,
                ts_ns=getattr(order, "ts_ns", 0),
                symbol=getattr(order, "symbol", ""),
                side=getattr(order, "side", None),
                reject_code=code,
                reason=decision.reason,
            )
        self.counters["accepted"] += 1
        return ray.get(self.router.submit.remote(order))

    # --- trading state and kill switch -------------------------------------------------------

    def engage_kill_switch(self, reason: str = "operator") -> dict[str, Any]:
        """Stop every new order, then cancel every open order at every venue."""
        import ray

        now = time.time_ns()
        self.engine.engage_kill_switch(reason, now)
        self._snapshot()
        cancel = ray.get(self.router.cancel_all.remote(None))
        return {"kill_switch": True, "reason": reason, "cancel_all": cancel}

    def release_kill_switch(self, reason: str = "operator") -> dict[str, Any]:
        self.engine.release_kill_switch(time.time_ns(), reason)
        self._snapshot()
        return {"kill_switch": False, "reason": reason}

    def set_trading_state(self, state: str, reason: str = "operator") -> str:
        self.engine.set_trading_state(TradingState(state), reason, time.time_ns())
        self._snapshot()
        return str(self.engine.trading_state)

    def on_equity(self, equity: float, ts_ns: int) -> str:
        """An equity mark (the guards' input); returns the trading state it implies."""
        before = (self.engine.trading_state, self.engine.to_dict()["guards"])
        state = self.engine.on_equity(equity, ts_ns)
        if (state, self.engine.to_dict()["guards"]) != before:
            self._snapshot()
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
            "journal_offset": self.offset,
        }
