"""``StreamProcessor``: ticks in, bars, signals and orders out; the hub of the pipeline.

Per micro-batch from the feed (``process``):

1. ``quant.data.stream.TickStreamProcessor`` validates, dedups, reorders and builds minute
   bars (malformed ticks are quarantined with a rule and counted; nothing raises);
2. the completed bars are grouped by close time (slices) and, slice by slice, in the
   backtest's event order:

   a. the router shows the slice to the venues, which fill working orders (orders decided on
      an earlier bar fill from this one, never from the bar they were decided on);
   b. the execution reports journaled since the last slice (fills, cancels, expiries, from
      any source: the venues, an operator's cancel-all) are read from the journal by offset
      and applied to the strategy's book (``LiveContext``), then ``on_fill`` /
      ``on_order_update``;
   c. research bars that ended are scored (``actors.signals.LiveSignals``) and the
      predictions are journaled and handed to the strategy;
   d. ``strategy.on_bar`` for each bar; its orders go to the RiskGuard (and on to the router)
      through ``LiveContext.submit``;

3. the processor checkpoints its state in the journal: the tick stream's snapshot (buffer,
   open bars, dedup memory), the last processed sequence number per symbol and the journal
   offset of the reports it has applied, so a restarted processor resumes after them and the
   feed skips what was already processed.

The processor runs one call at a time (a sync actor): the feed's bounded in-flight window is
the backpressure. Lag per stage: feed-to-processor (the batch's wall send time to now),
processing time per batch, and bar lag (event time of the slice vs the newest tick seen).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from actors.common import EventClock, LagMeter
from actors.context import LiveContext
from actors.feed import TickBatch
from actors.journal import REPORT_KINDS, report_from_dict
from actors.signals import LivePredictionStrategy, LiveSignals, MomentumSignalModel, SignalModel
from quant.data.stream import LatePolicy, TickStreamProcessor
from quant.execution.orders import ExecutionReport, Order, OrderStatus
from quant.research.params import TrialParams
from quant.sim.strategy import Bar

CHECKPOINT = "stream:state"
STRATEGY_ID = "live"


def build_model(spec: dict[str, Any]) -> tuple[SignalModel, TrialParams]:
    """The signal model named by ``spec`` (``{"kind": "registry", "root", "name"}`` or
    ``{"kind": "momentum", "scale", "params": {...}}``) and the trial parameters it runs with."""
    kind = spec.get("kind", "momentum")
    if kind == "registry":
        from actors.signals import RegistrySignalModel

        model = RegistrySignalModel(spec["root"], spec["name"], spec.get("stage", "production"))
        return model, model.params
    if kind == "momentum":
        params = TrialParams.model_validate(spec.get("params", {}))
        return MomentumSignalModel(float(spec.get("scale", 400.0))), params
    raise ValueError(f"unknown signal model kind {kind!r} (registry or momentum)")


class StreamProcessor:
    """See the module docstring."""

    def __init__(
        self,
        journal: Any,
        risk: Any,
        router: Any,
        symbols: list[str],
        day: date,
        *,
        model: dict[str, Any] | None = None,
        initial_cash: float = 1_000_000.0,
        allowed_lateness_ms: int = 0,
        late_policy: str = "drop",
        calendar: str | None = "XIST",
        previous_closes: dict[str, float] | None = None,
        warmup: Any = None,
        mark_interval_minutes: int = 30,
    ) -> None:
        import ray

        self.journal = journal
        self.risk = risk
        self.router = router
        self.symbols = list(symbols)
        self.previous_closes = dict(previous_closes or {})
        self.day = day
        self.model, self.params = build_model(model or {})
        self.signals = LiveSignals(self.model, self.params)
        if warmup is not None and getattr(warmup, "height", 0):
            self.signals.warm_up(warmup)
        self.strategy = LivePredictionStrategy(
            self.params.prob_threshold,
            position_notional=self.params.position_weight * initial_cash,
            long_only=self.params.long_only,
            strategy_id=STRATEGY_ID,
        )
        self.clock = EventClock()
        self.ctx = LiveContext(
            STRATEGY_ID,
            self.symbols,
            day,
            initial_cash=initial_cash,
            submit=self._submit,
            cancel=self._cancel,
            calendar=calendar,
            previous_closes=previous_closes,
        )
        self.mark_every_ns = mark_interval_minutes * 60 * 10**9 if mark_interval_minutes else 0
        self.next_mark = 0
        self.ticks = TickStreamProcessor(
            self.symbols,
            allowed_lateness_ns=int(allowed_lateness_ms) * 1_000_000,
            late_policy=LatePolicy(late_policy),
        )
        self.report_offset = 0
        self.last_slice_ts = 0
        self.finished = False
        self.started = False
        self.counters: dict[str, int] = {
            "batches": 0,
            "bars": 0,
            "slices": 0,
            "orders": 0,
            "orders_rejected": 0,
            "fills": 0,
            "signals": 0,
            "reports_applied": 0,
        }
        self.quarantine_sample: list[dict[str, Any]] = []
        self.lag_feed = LagMeter()
        self.lag_process = LagMeter()
        self.lag_bars = LagMeter()
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self._restore()

    # --- wiring --------------------------------------------------------------------------------

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        return ray.get(self.journal.call.remote(method, *args, **kwargs))

    def _submit(self, order: Order, view: dict[str, Any]) -> ExecutionReport:
        import ray

        self.counters["orders"] += 1
        report = ray.get(self.risk.submit.remote(order, view))
        if report.status is OrderStatus.REJECTED:
            self.counters["orders_rejected"] += 1
        return report

    def _cancel(self, client_order_id: str | None, symbol: str | None) -> list[ExecutionReport]:
        import ray

        if client_order_id is not None:
            return ray.get(self.router.cancel.remote(client_order_id))
        ray.get(self.router.cancel_all.remote(symbol))
        return self._pull_reports()

    def ready(self) -> bool:
        return True

    # --- recovery ------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Resume from the last checkpoint: the tick stream's state, the journal offset of the
        applied reports, and the strategy's book rebuilt from the journal."""
        saved = self._j("checkpoint", CHECKPOINT, None)
        if saved is None:
            return
        self.ticks = TickStreamProcessor.from_snapshot(saved["ticks"])
        self.last_slice_ts = int(saved["last_slice_ts"])
        self.counters.update(saved.get("counters", {}))
        self.ctx._order_seq = int(saved.get("order_seq", 0))
        self.strategy.targets = {s: int(q) for s, q in saved.get("targets", {}).items()}
        self.strategy._side = {s: int(q) for s, q in saved.get("sides", {}).items()}
        self.strategy.extend([tuple(p) for p in saved.get("predictions", [])])
        self.ctx.last.update(saved.get("last", {}))
        state = self._j("rebuild")
        for cid, st in state.orders.items():
            if not st.status.is_terminal and st.order.strategy_id == STRATEGY_ID:
                self.ctx.orders[cid] = st
        self.ctx.pos = dict(state.positions)
        self.ctx._cash = self.ctx.initial_cash + state.cash
        self.report_offset = state.last_seq
        self.started = True

    def _checkpoint(self) -> None:
        self._j(
            "set_checkpoint",
            CHECKPOINT,
            {
                "ticks": self.ticks.snapshot(),
                "last_slice_ts": self.last_slice_ts,
                "report_offset": self.report_offset,
                "counters": self.counters,
                "order_seq": self.ctx._order_seq,
                "targets": self.strategy.targets,
                "sides": self.strategy._side,
                "predictions": [list(p) for p in self.strategy._rows],
                "last": self.ctx.last,
                "last_seq": self.ticks.last_seq,
            },
        )

    def checkpoints(self) -> dict[str, int]:
        """The last processed sequence number per symbol (what a feed resumes after)."""
        return dict(self.ticks.last_seq)

    # --- the hot path --------------------------------------------------------------------------

    def process(self, batch: TickBatch) -> dict[str, Any]:
        """Ingest one micro-batch (see the module docstring); returns a small summary."""
        started = time.time_ns()
        if batch.sent_ns:
            self.lag_feed.observe(started - batch.sent_ns)
        if not self.started:
            self._start_session(batch)
        out = self.ticks.flush() if batch.last else self.ticks.process(batch.trades)
        for q in out.quarantined[: max(0, 50 - len(self.quarantine_sample))]:
            self.quarantine_sample.append({"rule": str(q.rule), "reason": q.reason})
        bars = [b for b in out.bars if b.ts_end_ns > self.last_slice_ts]
        if bars and out.watermark_ns is not None:
            self.lag_bars.observe(max(0, out.watermark_ns - bars[-1].ts_end_ns))
        self.counters["batches"] += 1
        self.counters["bars"] += len(bars)
        i = 0
        while i < len(bars):
            t = bars[i].ts_end_ns
            j = i
            while j < len(bars) and bars[j].ts_end_ns == t:
                j += 1
            self._slice(bars[i:j], t)
            i = j
        if batch.last and not self.finished:
            self._end_session()
        self._checkpoint()
        self.lag_process.observe(time.time_ns() - started)
        return {"bars": len(bars), "quarantined": len(out.quarantined), "buffered": out.buffered}

    def _start_session(self, batch: TickBatch) -> None:
        import ray

        self.started = True
        t0 = self.ctx.session.first_order_ns
        if t0 is None:
            t0 = int(batch.trades["ts"].min()) if batch.trades.height else 0
        self.ctx.now = t0
        ray.get(self.router.start_session.remote(self.day, self.previous_closes, t0))
        self.strategy.on_start(self.ctx)
        self.strategy.on_session_start(self.ctx, self.day)

    def _slice(self, bars: list[Bar], t: int) -> None:
        import ray

        self.clock.advance_to(t)
        self.ctx.now = t
        ray.get(self.router.on_bars.remote(bars, t))
        self._pull_reports()
        predictions = self.signals.on_minute_bars(bars, t)
        if predictions:
            self._journal_signals(predictions)
            self.strategy.extend(predictions)
        for bar in bars:
            self.ctx.last[bar.symbol] = bar.close
        if self.mark_every_ns and t >= self.next_mark:
            self.next_mark = (t // self.mark_every_ns + 1) * self.mark_every_ns
            ray.get(self.risk.on_equity.remote(self.ctx.equity, t))
        for bar in bars:
            self.strategy.on_bar(self.ctx, bar)
        self.last_slice_ts = t
        self.counters["slices"] += 1

    def _pull_reports(self) -> list[ExecutionReport]:
        events = self._j("events", self.report_offset, kinds=[str(k) for k in REPORT_KINDS])
        reports = []
        for e in events:
            reports.append(report_from_dict(e.payload))
            self.report_offset = e.seq
        applied = self.ctx.apply_reports(reports)
        for r in applied:
            self.counters["reports_applied"] += 1
            if r.last_qty:
                self.counters["fills"] += 1
                self.strategy.on_fill(self.ctx, r)
            else:
                self.strategy.on_order_update(self.ctx, r)
        return applied

    def _journal_signals(self, predictions: list[tuple[str, int, float, float, int]]) -> None:
        from actors.journal import NewEvent

        events = [
            NewEvent(
                "signal",
                symbol,
                {
                    "symbol": symbol,
                    "value": p_up - p_down,
                    "model": self.model.name,
                    "extra": {"p_up": p_up, "p_down": p_down, "expires": expires},
                },
                ts,
                f"signal:{self.model.name}:{symbol}:{ts}",
            )
            for symbol, ts, p_up, p_down, expires in predictions
        ]
        self._j("append_many", events)
        self.counters["signals"] += len(events)

    def _end_session(self) -> None:
        import ray

        predictions = self.signals.flush()
        if predictions:
            self._journal_signals(predictions)
            self.strategy.extend(predictions)
        end = self.ctx.session.last_trade_ns or self.last_slice_ts
        end = max(end, self.last_slice_ts)
        self.ctx.now = end
        ray.get(self.router.end_session.remote(end))
        self._pull_reports()
        ray.get(self.risk.on_equity.remote(self.ctx.equity, end))
        self.strategy.on_session_end(self.ctx, self.day)
        self.finished = True

    # --- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "restarted": self.restarted,
            "day": self.day.isoformat(),
            "finished": self.finished,
            "model": self.model.name,
            "counters": dict(self.counters),
            "ticks": self.ticks.snapshot_counts(),
            "watermark_ns": self.ticks.watermark_ns,
            "last_seq": dict(self.ticks.last_seq),
            "last_slice_ts": self.last_slice_ts,
            "positions": self.ctx.positions(),
            "cash": self.ctx.cash,
            "equity": self.ctx.equity,
            "open_orders": sorted(self.ctx.orders),
            "quarantine_sample": self.quarantine_sample[:10],
            "lag": {
                "feed_to_processor": self.lag_feed.snapshot(),
                "process_batch": self.lag_process.snapshot(),
                "bar_behind_watermark": self.lag_bars.snapshot(),
            },
        }

    def fills(self) -> list[ExecutionReport]:
        return list(self.ctx.fills)
