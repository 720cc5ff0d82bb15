"""The risk engine: every order passes here on its way from a strategy to a venue.

A plain, deterministic object (no Ray, no clock: times come in with the orders and equity
marks), so the backtest hosts it in-process and the live ``RiskGuard`` actor hosts the very same
class; replaying the live day's events through it reproduces the live decisions.

``check(order, context)`` runs, stopping at the first refusal:

1. INVALID_ORDER: ``Order.problems()`` (structure, quantity, limit price).
2. UNKNOWN_SYMBOL: not in the context's universe.
3. KILL_SWITCH: the kill switch is engaged; nothing goes out.
4. Trading state: HALTED refuses everything; REDUCING refuses anything that does not reduce the
   absolute position (DRAWDOWN when a portfolio guard set the state, TRADING_HALTED when the
   operator did).
5. TRADING_HALTED: a market-wide or single-stock halt in the context.
6. The price, size, book and flow checks of ``quant.risk.checks.PRE_TRADE_CHECKS``: OFF_TICK,
   FAT_FINGER, OUTSIDE_BAND, PRICE_COLLAR, ORDER_SIZE, NOTIONAL, SHORT_SALE, POSITION_LIMIT,
   EXPOSURE, INSUFFICIENT_FUNDS, THROTTLE, ORDER_TO_TRADE_RATIO.

An accepted order is counted in the throttle window and in the day's order-to-trade ratio; a
rejected one is not (it never reaches the exchange). Fills come back through
``on_execution_report`` and count as trades; cancels and replaces through ``record_cancel`` /
``record_replace`` count as order messages, as BIST counts them.

Every change of trading state and of the kill switch is appended to ``events`` as a
``RiskEvent``; the live host drains them (``drain_events``) into its journal. ``to_dict`` /
``from_dict`` snapshot the whole engine so a restarted actor resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from quant.execution.orders import ExecutionReport, Order, RejectCode, Side
from quant.risk.checks import (
    ACCEPT,
    PRE_TRADE_CHECKS,
    ActivityCounters,
    RiskContext,
    RiskDecision,
    check_market_halts,
    check_order_structure,
    check_symbol,
    is_reducing,
    throttle_key,
)
from quant.risk.guards import (
    PortfolioGuard,
    TradingState,
    guard_from_dict,
    most_severe,
    session_day,
)
from quant.risk.limits import RiskLimits

SNAPSHOT_VERSION = 1


class RiskEventKind(StrEnum):
    STATE_CHANGED = "state_changed"
    KILL_SWITCH_ENGAGED = "kill_switch_engaged"
    KILL_SWITCH_RELEASED = "kill_switch_released"
    GUARDS_RESET = "guards_reset"
    LIMITS_CHANGED = "limits_changed"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something the risk engine decided that is not about one order, for the journal."""

    ts_ns: int
    kind: RiskEventKind
    state: TradingState
    """The trading state after the event."""
    previous_state: TradingState
    source: str
    """Who caused it: a guard's name, ``operator`` or ``kill_switch``."""
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"], d["state"], d["previous_state"] = (
            str(self.kind),
            str(self.state),
            str(self.previous_state),
        )
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskEvent:
        return cls(
            ts_ns=int(data["ts_ns"]),
            kind=RiskEventKind(data["kind"]),
            state=TradingState(data["state"]),
            previous_state=TradingState(data["previous_state"]),
            source=data["source"],
            reason=data["reason"],
        )


@dataclass(frozen=True, slots=True)
class KillSwitch:
    reason: str
    ts_ns: int


def _safe_is_reducing(order: Order, context: RiskContext) -> bool:
    """``is_reducing``, failing closed (not reducing) if the context cannot answer."""
    try:
        return is_reducing(order, context)
    except Exception:
        return False


def _switched_off(limits: RiskLimits) -> set[RejectCode]:
    """Checks these limits switch off entirely: they return ACCEPT for any order without
    reading the order or the context."""
    skip = set()
    if limits.max_order_quantity is None:
        skip.add(RejectCode.ORDER_SIZE)
    if limits.max_orders_per_window is None:
        skip.add(RejectCode.THROTTLE)
    if limits.max_order_to_trade_ratio is None:
        skip.add(RejectCode.ORDER_TO_TRADE_RATIO)
    if limits.max_order_notional is None:
        skip.add(RejectCode.NOTIONAL)
    if limits.max_position_shares is None and limits.max_position_notional is None:
        skip.add(RejectCode.POSITION_LIMIT)
    if all(
        x is None
        for x in (
            limits.max_symbol_exposure_pct,
            limits.max_sector_gross_pct,
            limits.max_sector_net_pct,
            limits.max_gross_exposure_pct,
            limits.max_net_exposure_pct,
        )
    ):
        skip.add(RejectCode.EXPOSURE)
    if not limits.check_buying_power:
        skip.add(RejectCode.INSUFFICIENT_FUNDS)
    return skip


def _not_applicable(limits: RiskLimits, priced: bool, sell: bool) -> set[RejectCode]:
    """Checks that return ACCEPT at once for an order with (``priced``) or without a limit
    price, on the sell (``sell``) or buy side, under ``limits``."""
    skip = set()
    if not priced:
        skip.add(RejectCode.OFF_TICK)
        skip.add(RejectCode.OUTSIDE_BAND)
        if limits.fat_finger_adv_pct is None and limits.fat_finger_notional is None:
            skip.add(RejectCode.FAT_FINGER)
    else:
        if not limits.check_tick:
            skip.add(RejectCode.OFF_TICK)
        if not limits.check_band:
            skip.add(RejectCode.OUTSIDE_BAND)
        if limits.price_collar_pct is None:
            skip.add(RejectCode.PRICE_COLLAR)
        if (
            limits.fat_finger_price_pct is None
            and limits.fat_finger_adv_pct is None
            and limits.fat_finger_notional is None
        ):
            skip.add(RejectCode.FAT_FINGER)
    if sell:
        skip.add(RejectCode.INSUFFICIENT_FUNDS)
    else:
        skip.add(RejectCode.SHORT_SALE)
    return skip


class RiskEngine:
    """Pre-trade checks, trading state, portfolio guards and kill switch for one account."""

    def __init__(
        self,
        limits: RiskLimits | None = None,
        guards: Sequence[PortfolioGuard] = (),
    ) -> None:
        self.limits = limits if limits is not None else RiskLimits()
        names = [g.name for g in guards]
        if len(set(names)) != len(names):
            raise ValueError(f"guard names must be unique, got {names}")
        self.guards: list[PortfolioGuard] = list(guards)
        self.counters = ActivityCounters()
        self.events: list[RiskEvent] = []
        self._operator_state = TradingState.ACTIVE
        self._operator_reason = ""
        self._kill: KillSwitch | None = None
        self._order_keys: dict[str, tuple[str, str]] = {}
        self._last_equity: float | None = None
        self._state = TradingState.ACTIVE
        self._plan_limits: RiskLimits | None = None
        self._plans: dict[tuple[bool, bool] | None, tuple[tuple[RejectCode, Any], ...]] = {}
        self._reads: dict[tuple[bool, bool], tuple[bool, bool]] = {}

    # --- state -------------------------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        return self._state

    @property
    def kill_switch_engaged(self) -> bool:
        return self._kill is not None

    @property
    def kill_switch(self) -> KillSwitch | None:
        return self._kill

    def _cause(self) -> tuple[str, str, RejectCode]:
        """Who holds the current state: (source, reason, reject code)."""
        for g in self.guards:
            if g.state is self._state and g.state is not TradingState.ACTIVE:
                return g.name, g.reason, RejectCode.DRAWDOWN
        return "operator", self._operator_reason, RejectCode.TRADING_HALTED

    def _refresh(
        self,
        ts_ns: int,
        kind: RiskEventKind = RiskEventKind.STATE_CHANGED,
        source: str = "",
        reason: str = "",
    ) -> None:
        """Recompute the state; record an event if it changed.

        An escalation names the guard (or the operator) now holding the state; a de-escalation
        names whoever released it (``source`` / ``reason`` from the caller).
        """
        new = most_severe(self._operator_state, *(g.state for g in self.guards))
        if new is self._state:
            return
        previous, self._state = self._state, new
        if new.severity > previous.severity or not source:
            source, reason, _ = self._cause()
            if new is TradingState.ACTIVE:
                source, reason = "operator", "every guard and the operator allow trading"
        self.events.append(RiskEvent(ts_ns, kind, new, previous, source, reason))

    def set_trading_state(self, state: TradingState, reason: str, ts_ns: int) -> None:
        """The operator's choice of state; guards can still make it more severe."""
        self._operator_state = TradingState(state)
        self._operator_reason = reason
        self._refresh(ts_ns, source="operator", reason=reason)

    def on_equity(self, equity: float, ts_ns: int, day: date | None = None) -> TradingState:
        """A new equity mark: update every guard and the trading state it implies.

        ``day`` is the session day (default: the Istanbul date of ``ts_ns``); a daily loss
        limit re-arms when it changes.
        """
        if not self.guards:  # the operator's state is the state: nothing to update
            self._last_equity = float(equity)
            if self._operator_state is not self._state:
                self._refresh(ts_ns)
            return self._state
        day = day if day is not None else session_day(ts_ns)
        self._last_equity = float(equity)
        released: list[str] = []
        for g in self.guards:
            before = g.state
            g.update(float(equity), ts_ns, day)
            if g.state.severity < before.severity:
                released.append(g.name)
        reason = f"re-armed for session day {day}: {', '.join(released)}" if released else ""
        self._refresh(ts_ns, source=", ".join(released), reason=reason)
        return self._state

    def reset_guards(self, ts_ns: int, reason: str, equity: float | None = None) -> None:
        """Re-arm every guard (an operator decision); the drawdown peak restarts from
        ``equity`` (default: the last equity mark)."""
        equity = equity if equity is not None else self._last_equity
        for g in self.guards:
            g.reset(equity)
        previous = self._state
        self._refresh(ts_ns, RiskEventKind.GUARDS_RESET, source="operator", reason=reason)
        if self._state is previous:
            self.events.append(
                RiskEvent(
                    ts_ns, RiskEventKind.GUARDS_RESET, self._state, previous, "operator", reason
                )
            )

    def engage_kill_switch(self, reason: str, ts_ns: int) -> None:
        """Stop every order until ``release_kill_switch``; engaging twice keeps the first."""
        if self._kill is not None:
            return
        self._kill = KillSwitch(reason=reason, ts_ns=ts_ns)
        self.events.append(
            RiskEvent(
                ts_ns,
                RiskEventKind.KILL_SWITCH_ENGAGED,
                self._state,
                self._state,
                "kill_switch",
                reason,
            )
        )

    def release_kill_switch(self, ts_ns: int, reason: str = "") -> None:
        if self._kill is None:
            return
        self._kill = None
        self.events.append(
            RiskEvent(
                ts_ns,
                RiskEventKind.KILL_SWITCH_RELEASED,
                self._state,
                self._state,
                "kill_switch",
                reason or "released",
            )
        )

    def set_limits(self, limits: RiskLimits, ts_ns: int, reason: str = "") -> None:
        self.limits = limits
        self.events.append(
            RiskEvent(
                ts_ns,
                RiskEventKind.LIMITS_CHANGED,
                self._state,
                self._state,
                "operator",
                reason or "limits changed",
            )
        )

    def drain_events(self) -> list[RiskEvent]:
        """Hand the pending events to the journal and forget them."""
        out, self.events = self.events, []
        return out

    # --- orders ------------------------------------------------------------------------------

    def check(self, order: Order, context: RiskContext) -> RiskDecision:
        """Accept or reject ``order`` against ``context``; never raises on a bad order."""
        self.counters.roll_day(context.day)
        for decision in (check_order_structure(order), check_symbol(order, context)):
            if not decision.accepted:
                return decision
        if self._kill is not None:
            return RiskDecision.reject(
                RejectCode.KILL_SWITCH, f"the kill switch is engaged: {self._kill.reason}"
            )
        if self._state is not TradingState.ACTIVE:
            source, reason, code = self._cause()
            if self._state is TradingState.HALTED:
                return RiskDecision.reject(code, f"trading is halted by {source}: {reason}")
            if not _safe_is_reducing(order, context):
                return RiskDecision.reject(
                    code,
                    f"trading is reduce-only ({source}: {reason}); a {order.side.name} of "
                    f"{order.quantity:,} with position {context.position(order.symbol):,} "
                    f"does not reduce it",
                )
        decision = check_market_halts(order, context)
        if not decision.accepted:
            return decision
        limits, counters = self.limits, self.counters
        for code, check in self._checks_for(limits, order):
            try:  # as ``guarded``: a check that cannot evaluate rejects with its own code
                decision = check(order, context, limits, counters)
            except Exception as exc:
                decision = RiskDecision.reject(
                    code, f"could not evaluate the {code} check: {exc!r}"
                )
            if not decision.accepted:
                return decision
        self._record_accepted(order)
        return ACCEPT

    def _checks_for(
        self, limits: RiskLimits, order: Order | None = None
    ) -> tuple[tuple[RejectCode, Any], ...]:
        """``PRE_TRADE_CHECKS`` less the ones that would return ACCEPT for ``order`` without
        reading anything: limits switched off entirely, price checks for an order without a
        limit price, side-specific checks for the other side. Worked out once per limits
        object and kind of order (limit price or not, buy or sell); None: every kind."""
        if self._plan_limits is not limits:
            self._plans = {}
            self._reads = {}
            self._plan_limits = limits
        key = None if order is None else (order.limit_price is not None, order.side is Side.SELL)
        plan = self._plans.get(key)
        if plan is None:
            skip = _switched_off(limits)
            if key is not None:
                priced, sell = key
                skip |= _not_applicable(limits, priced, sell)
            plan = self._plans[key] = tuple((c, f) for c, f in PRE_TRADE_CHECKS if c not in skip)
        return plan

    def reads_account(self, order: Order) -> tuple[bool, bool]:
        """Whether ``check(order, ...)`` reads the context's (equity, buying power): a host
        can skip working out what no check will read. ``order`` must be well formed (a
        ``Side``; the structure check refuses anything else before these are read)."""
        limits = self.limits
        key = (order.limit_price is not None, order.side is Side.SELL)
        if self._plan_limits is limits:
            reads = self._reads.get(key)
            if reads is not None:
                return reads
        codes = {c for c, _ in self._checks_for(limits, order)}
        reads = self._reads[key] = (
            RejectCode.EXPOSURE in codes,
            RejectCode.INSUFFICIENT_FUNDS in codes,
        )
        return reads

    def _record_accepted(self, order: Order) -> None:
        self.counters.record_order(
            throttle_key(order, self.limits), order.ts_ns, self.limits.throttle_window_ns
        )
        self.counters.record_message(order.strategy_id, order.symbol)
        self._order_keys[order.client_order_id] = (order.strategy_id, order.symbol)

    def on_execution_report(self, report: ExecutionReport) -> None:
        """Count fills as trades (order-to-trade ratio); forget orders that are done."""
        key = self._order_keys.get(report.client_order_id)
        if key is None:
            return
        if report.last_qty > 0:  # (``report.is_fill``)
            self.counters.record_trade(*key)
        if report.status.is_terminal:
            del self._order_keys[report.client_order_id]

    def record_cancel(self, client_order_id: str) -> None:
        """A cancel request sent for an accepted order: an order message for the ratio."""
        key = self._order_keys.get(client_order_id)
        if key is not None:
            self.counters.record_message(*key)

    def record_replace(self, client_order_id: str) -> None:
        """A replace (modify) request: an order message for the ratio."""
        self.record_cancel(client_order_id)

    def check_all(self, orders: Iterable[Order], context: RiskContext) -> list[RiskDecision]:
        """``check`` each order in turn (each accepted order counts for the next)."""
        return [self.check(o, context) for o in orders]

    # --- snapshot ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of limits, guards, state, kill switch and counters."""
        return {
            "version": SNAPSHOT_VERSION,
            "limits": self.limits.model_dump(mode="json"),
            "guards": [g.to_dict() for g in self.guards],
            "operator_state": str(self._operator_state),
            "operator_reason": self._operator_reason,
            "state": str(self._state),
            "kill_switch": (
                {"reason": self._kill.reason, "ts_ns": self._kill.ts_ns} if self._kill else None
            ),
            "counters": self.counters.to_dict(),
            "order_keys": {k: list(v) for k, v in self._order_keys.items()},
            "last_equity": self._last_equity,
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskEngine:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported risk engine snapshot version {data.get('version')!r}")
        engine = cls(
            limits=RiskLimits.model_validate(data["limits"]),
            guards=[guard_from_dict(g) for g in data["guards"]],
        )
        engine._operator_state = TradingState(data["operator_state"])
        engine._operator_reason = data["operator_reason"]
        engine._state = TradingState(data["state"])
        ks = data["kill_switch"]
        engine._kill = KillSwitch(reason=ks["reason"], ts_ns=int(ks["ts_ns"])) if ks else None
        engine.counters = ActivityCounters.from_dict(data["counters"])
        engine._order_keys = {k: (v[0], v[1]) for k, v in data["order_keys"].items()}
        engine._last_equity = data["last_equity"]
        engine.events = [RiskEvent.from_dict(e) for e in data["events"]]
        return engine
