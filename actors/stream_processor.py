"""``StreamProcessor``: ticks in, bars, signals and orders out; the hub of the pipeline.

Per micro-batch from the feed (``process``):

1. ``quant.data.stream.TickStreamProcessor`` validates, dedups, reorders and builds minute
   bars (malformed ticks are quarantined with a rule and counted; nothing raises);
2. the completed bars are grouped by close time (slices) and, slice by slice, in the
   backtest's event order:

   a. the paper venues are shown the slice (one call each, made here: market data does not
      go through the order router), and fill working orders from it (orders decided on an
      earlier bar fill from this one, never from the bar they were decided on); what they
      answer is journaled here before anything applies it, and the router is then told the
      slice (``OrderRouter.on_bars``: it catches up with those fills from the journal and
      slices its parent orders on the bar clock; awaited before the venues see the next
      slice or this slice's orders go out, so its children always enter first);
   b. the execution reports journaled since the last slice (fills, cancels, expiries, from
      any source: the venues, an operator's cancel-all) are read from the journal by offset
      and applied to the strategy's book (``LiveContext``), then ``on_fill`` /
      ``on_order_update``;
   c. research bars that ended are scored (``actors.signals.LiveSignals``) and the
      predictions are journaled and handed to the strategy;
   d. ``strategy.on_bar`` for each bar; the orders and cancels it sends are queued (the
      strategy's book counts an order as open from its submission, as it would once
      accepted, and a cancelled order as gone at once, as the backtest's immediate cancel
      does: ``LiveContext.cancelling``) and go to the RiskGuard in one call at the end of the
      slice (``RiskGuard.submit_many``: orders checked in order, decisions journaled in one
      commit, then the accepted orders and the cancels, in their order, routed in one call
      and one venue round trip); the answers (the router's acknowledgements, rejects, the
      cancels' outcomes) are applied to the book before the next slice. A cancel the venue
      did not carry out (the order had filled) puts the order back among the working ones;

3. the processor checkpoints its state in the journal: the tick stream's snapshot (buffer,
   open bars, dedup memory), the last processed sequence number per symbol, the journal
   offset of the reports it has applied, and the signal chain's state (the streaming
   features' kernel state and the research bars being built: ``signals``), so a restarted
   processor resumes after the last processed sequence number with the features it had,
   instead of starting them cold. The features' state is written only when it changed (a
   research bar closed), in the same commit as the rest; the predictions are read back from
   the journal's signal events (they are journaled when made).

Journal access goes through ``JournalClient``: a local SQLite handle on the journal's node
(reads about 0.03 ms, commits about 0.1 ms), the ``JournalActor`` from another node; the
per-slice report reads and the per-batch checkpoint are local calls, not actor round trips.

The processor runs one call at a time (a sync actor): the feed's bounded in-flight window is
the backpressure. Measured: lag per stage (feed-to-processor: the batch's wall send time to
now; processing time per batch; bar lag: event time of the slice vs the newest tick seen), wall
time per stage of the hot path (``stages``: ingest, venue, reports, signals, strategy, orders,
checkpoint) and tick-to-acknowledgement latency per routed order (the wall time its batch left
the feed to the time the router's answer reached the RiskGuard).
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import numpy as np

from actors.common import EventClock, LagMeter, StageTimers, freeze_startup_objects
from actors.context import LiveContext
from actors.feed import TickBatch
from actors.journal import REPORT_KINDS, report_from_dict
from actors.journal_actor import JournalClient
from actors.signals import LivePredictionStrategy, LiveSignals, MomentumSignalModel, SignalModel
from quant.data.stream import LatePolicy, TickStreamProcessor
from quant.execution.orders import ExecutionReport, Order, OrderStatus
from quant.execution.routing import CancelRequest
from quant.research.params import TrialParams
from quant.sim.strategy import Bar

CHECKPOINT = "stream:state"
SIGNALS_CHECKPOINT = "stream:signals"
"""The streaming features' state: written only when it changed (a research bar closed), in
the same commit as ``CHECKPOINT``. The predictions are not checkpointed: they are journaled as
signals when made, and a restarted processor reads them back (``_journaled_predictions``)."""
STRATEGY_ID = "live"
LATENCY_SAMPLES = 200_000


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
        venues: dict[str, Any] | None = None,
        venue_timeout_s: float = 1.0,
    ) -> None:
        import ray

        self.journal = JournalClient.of(journal)
        self.risk = risk
        self.router = router
        self.venues = dict(venues or {})
        """The paper venues (actors), shown each bar slice here: see ``_slice``."""
        self.venue_timeout_s = float(venue_timeout_s)
        self._bar_clock: Any = None
        """The router's answer to the last slice (``OrderRouter.on_bars``), awaited before the
        venues see the next one: children it sliced reach them first."""
        self.symbols = list(symbols)
        self.previous_closes = dict(previous_closes or {})
        self.day = day
        self.model, self.params = build_model(model or {})
        self.signals = LiveSignals(self.model, self.params)
        if hasattr(warmup, "load"):  # a WarmupSource: read the history here, not in Ray args
            warmup = warmup.load()
        if warmup is not None and getattr(warmup, "height", 0):
            self.signals.warm_up(warmup)
        self.signals.prepare()
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
            "cancels": 0,
            "venue_errors": 0,
            "router_errors": 0,
        }
        self.quarantine_sample: list[dict[str, Any]] = []
        self.lag_feed = LagMeter()
        self.lag_process = LagMeter()
        self.lag_bars = LagMeter()
        self.stages = StageTimers()
        self.ack_latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        """Tick-to-acknowledgement per routed order (see the module docstring)."""
        self.first_ack_latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        """The same for the first routed order of each slice: no order of its own burst ahead
        of it, so it shows the pipeline's latency apart from the queue of a burst."""
        self._outgoing: list[tuple[Order, dict[str, Any]] | CancelRequest] = []
        self._marks: list[Any] = []
        """Equity marks sent to the risk guard and not yet confirmed (checked per batch)."""
        self._batch_sent_ns = 0
        self._signals_dirty = False
        self.signals_restored = False
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self._restore()
        freeze_startup_objects()

    # --- wiring --------------------------------------------------------------------------------

    def _j(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.journal.call(method, *args, **kwargs)

    def _submit(self, order: Order, view: dict[str, Any]) -> ExecutionReport:
        """Queue ``order`` for the slice's risk call (``_flush_orders``); answered NEW."""
        self.counters["orders"] += 1
        self._outgoing.append((order, view))
        return ExecutionReport(
            client_order_id=getattr(order, "client_order_id", ""),
            status=OrderStatus.NEW,
            ts_ns=getattr(order, "ts_ns", 0),
            symbol=getattr(order, "symbol", ""),
            side=getattr(order, "side", None),
            leaves_qty=getattr(order, "quantity", 0),
            reason="queued for the risk guard",
        )

    def _flush_orders(self) -> None:
        """Send the slice's queued orders and cancels to the RiskGuard in one call; apply its
        answers."""
        import ray

        if not self._outgoing:
            return
        self._await_bar_clock()  # the children the router sliced on this slice go first
        items, self._outgoing = self._outgoing, []
        answers = ray.get(self.risk.submit_many.remote(items))
        first = True
        for item, (answer, acked_ns) in zip(items, answers, strict=True):
            if isinstance(item, CancelRequest):
                self._apply_reports(list(answer.reports))
                if item.client_order_id in self.ctx.orders:  # not cancelled: working again
                    self.ctx.cancel_failed(item.client_order_id)
                continue
            report = answer
            if report.status is OrderStatus.REJECTED and report.reject_code is not None:
                self.counters["orders_rejected"] += 1
            elif self._batch_sent_ns:
                latency = (acked_ns - self._batch_sent_ns) / 1e6
                self.ack_latency_ms.append(latency)
                if first:
                    self.first_ack_latency_ms.append(latency)
                    first = False
            self.ctx.apply_reports([report])

    def _cancel(self, client_order_id: str | None, symbol: str | None) -> None:
        """Queue cancels with the slice's orders (``_flush_orders``): the strategy's book
        counts the orders as cancelled at once (``LiveContext.cancelling``), as the backtest's
        immediate cancel does, and the venue's answers are applied when the slice is sent. A
        cancel-all of the strategy cancels its own open orders, by id."""
        ids = [client_order_id] if client_order_id is not None else self.ctx.cancellable(symbol)
        self.counters["cancels"] += len(ids)
        self._outgoing.extend(CancelRequest(cid) for cid in ids)

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
        self.ctx.last.update(saved.get("last", {}))
        if saved.get("research_bars") is not None:
            load_signals_bars(self.signals, saved["research_bars"])
        signals = self._j("checkpoint", SIGNALS_CHECKPOINT, None)
        if signals is not None:
            load_signals_state(self.signals, signals)
            self.signals_restored = True
        self.strategy.extend(self._journaled_predictions(self.last_slice_ts))
        state = self._j("rebuild")
        for cid, st in state.orders.items():
            if not st.status.is_terminal and st.order.strategy_id == STRATEGY_ID:
                self.ctx.orders[cid] = st
        self.ctx.pos = dict(state.positions)
        self.ctx._cash = self.ctx.initial_cash + state.cash
        self.report_offset = state.last_seq
        self.started = True

    def _journaled_predictions(self, through_ns: int) -> list[tuple[str, int, float, float, int]]:
        """The predictions journaled up to the checkpoint, in the order they were made.

        A research bar still open after the checkpoint's slice ends after it, so every
        prediction stamped at or before ``through_ns`` was made by then, and the later ones
        (journaled before a crash, after the checkpoint) are made again by the replay.
        """
        out = []
        for e in self._j("events", 0, kinds=["signal"]):
            extra = e.payload.get("extra") or {}
            if e.ts_ns > through_ns or e.payload.get("model") != self.model.name:
                continue
            if not {"p_up", "p_down", "expires"} <= set(extra):
                continue
            out.append(
                (
                    str(e.payload["symbol"]),
                    int(e.ts_ns),
                    float(extra["p_up"]),
                    float(extra["p_down"]),
                    int(extra["expires"]),
                )
            )
        return out

    def _checkpoint(self) -> None:
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
            (
                "set_checkpoint",
                (
                    CHECKPOINT,
                    {
                        "ticks": self.ticks.snapshot(),
                        "last_slice_ts": self.last_slice_ts,
                        "report_offset": self.report_offset,
                        "counters": self.counters,
                        "order_seq": self.ctx._order_seq,
                        "targets": self.strategy.targets,
                        "sides": self.strategy._side,
                        "last": self.ctx.last,
                        "last_seq": self.ticks.last_seq,
                        "research_bars": signals_bars_state(self.signals),
                    },
                ),
                {},
            )
        ]
        if self._signals_dirty:
            calls.append(("set_checkpoint", (SIGNALS_CHECKPOINT, signals_state(self.signals)), {}))
            self._signals_dirty = False
        self.journal.batch(calls)

    def checkpoints(self) -> dict[str, int]:
        """The last processed sequence number per symbol (what a feed resumes after)."""
        return dict(self.ticks.last_seq)

    # --- the hot path --------------------------------------------------------------------------

    def process(self, batch: TickBatch) -> dict[str, Any]:
        """Ingest one micro-batch (see the module docstring); returns a small summary."""
        import ray

        started = time.time_ns()
        mark = self.stages.now()
        self._batch_sent_ns = int(getattr(batch, "sent_ns", 0) or 0)
        if self._batch_sent_ns:
            self.lag_feed.observe(started - self._batch_sent_ns)
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
        mark = self.stages.add("ingest", mark)
        for t, group in bar_slices(bars):
            self._slice(group, t)
        if batch.last and not self.finished:
            self._end_session()
        mark = self.stages.now()
        if self._marks:
            ray.get(self._marks)
            self._marks.clear()
        self._checkpoint()
        self.stages.add("checkpoint", mark)
        self.lag_process.observe(time.time_ns() - started)
        return {"bars": len(bars), "quarantined": len(out.quarantined), "buffered": out.buffered}

    def _start_session(self, batch: TickBatch) -> None:
        import ray

        self.started = True
        t0 = self.ctx.session.first_order_ns
        if t0 is None:
            trades = batch.trades
            t0 = int(trades["ts"].min()) if getattr(trades, "height", 0) else 0
        self.ctx.now = t0
        ray.get(self.router.start_session.remote(self.day, self.previous_closes, t0))
        self.strategy.on_start(self.ctx)
        self.strategy.on_session_start(self.ctx, self.day)
        self._flush_orders()

    def _slice(self, bars: list[Bar], t: int) -> None:

        stages = self.stages
        mark = stages.now()
        self.clock.advance_to(t)
        self.ctx.now = t
        self._await_bar_clock()
        # the venues fill working orders from this slice while the research bars are scored
        # here (the scores do not depend on fills); the fills are applied before on_bar
        filled = {name: venue.on_bars.remote(bars, t) for name, venue in self.venues.items()}
        scored = self.signals.scored
        predictions = self.signals.on_minute_bars(bars, t)
        if predictions:
            self._journal_signals(predictions)
            self.strategy.extend(predictions)
        if self.signals.scored != scored:  # features moved: their state goes in the checkpoint
            self._signals_dirty = True
        mark = stages.add("signals", mark)
        self._journal_fills(filled)
        self._bar_clock = self.router.on_bars.remote(bars, t)
        mark = stages.add("venue", mark)
        # parity with the backtest: the fills this slice's bars made are applied at their own
        # bar, bar by bar (fill, last price, decision) as the backtest runs, so each decision
        # (and the account view its orders carry to the risk guard) sees the account the
        # backtest's would; earlier reports (cancels, expiries) are applied now
        at_bar, earlier = split_at_bar(self._read_reports(), bars, t)
        self._apply_reports(earlier)
        mark = stages.add("reports", mark)
        if self.mark_every_ns and t >= self.next_mark:
            self.next_mark = (t // self.mark_every_ns + 1) * self.mark_every_ns
            # ordered before this slice's orders (one caller's calls to an actor run in order);
            # the answer (the trading state it implies) is not needed here
            self._marks.append(self.risk.on_equity.remote(self.ctx.equity, t))
        for bar in bars:
            fills = at_bar.pop(bar.symbol, None)
            if fills:
                self._apply_reports(fills)
            self.ctx.last[bar.symbol] = bar.close
            self.strategy.on_bar(self.ctx, bar)
        mark = stages.add("strategy", mark)
        self._flush_orders()
        stages.add("orders", mark)
        self.last_slice_ts = t
        self.counters["slices"] += 1

    def _journal_fills(self, answers: dict[str, Any]) -> None:
        """Journal what each venue answered to the slice, before anything applies it (the
        outbox rule for venue answers); a venue that fails or does not answer in time fills
        nothing from this slice (``venue_errors``) and the pipeline goes on."""
        import ray

        reports: list[ExecutionReport] = []
        for ref in answers.values():
            try:
                answer = ray.get(ref, timeout=self.venue_timeout_s)
            except Exception:
                ray.cancel(ref, force=False)
                answer = None
            if answer is None:
                self.counters["venue_errors"] += 1
            else:
                reports.extend(answer)
        if reports:
            self._j("record_venue_reports", reports)

    def _await_bar_clock(self) -> None:
        import ray

        ref, self._bar_clock = self._bar_clock, None
        if ref is None:
            return
        try:
            ray.get(ref)
        except Exception:  # a router being restarted: its retried call slices on its own
            self.counters["router_errors"] += 1

    def _pull_reports(self) -> list[ExecutionReport]:
        return self._apply_reports(self._read_reports())

    def _read_reports(self) -> list[ExecutionReport]:
        """The reports journaled since the last read (the offset moves past them)."""
        events = self._j("events", self.report_offset, kinds=[str(k) for k in REPORT_KINDS])
        reports = []
        for e in events:
            reports.append(report_from_dict(e.payload))
            self.report_offset = e.seq
        return reports

    def _apply_reports(self, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        """Apply reports to the strategy's book, then tell the strategy."""
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
            self._signals_dirty = True
        end = self.ctx.session.last_trade_ns or self.last_slice_ts
        end = max(end, self.last_slice_ts)
        self.ctx.now = end
        self._await_bar_clock()
        ray.get(self.router.end_session.remote(end))
        self._pull_reports()
        ray.get(self.risk.on_equity.remote(self.ctx.equity, end))
        self.strategy.on_session_end(self.ctx, self.day)
        self._flush_orders()
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
            "stages": self.stages.snapshot(),
            "ack_latency": latency_summary(self.ack_latency_ms),
            "first_ack_latency": latency_summary(self.first_ack_latency_ms),
            "journal": self.journal.mode,
            "signals_restored": self.signals_restored,
        }

    def account_view(self) -> dict[str, Any]:
        """The strategy's account as the risk guard checks orders against it (for an
        operator's parent order: ``actors.pipeline.submit_parent``)."""
        return self.ctx.account_view()

    def latency_samples(self, first_of_slice: bool = False) -> list[float]:
        """Tick-to-acknowledgement of every routed order so far (ms; the last 200,000), or of
        the first routed order of each slice."""
        return list(self.first_ack_latency_ms if first_of_slice else self.ack_latency_ms)

    def fills(self) -> list[ExecutionReport]:
        return list(self.ctx.fills)


# --- bar slices -------------------------------------------------------------------------------


def bar_slices(bars: list[Bar]) -> Iterator[tuple[int, list[Bar]]]:
    """Consecutive bars grouped by close time, in order: the slices the backtest steps by."""
    for t, group in itertools.groupby(bars, key=operator.attrgetter("ts_end_ns")):
        yield t, list(group)


def split_at_bar(
    reports: Iterable[ExecutionReport], bars: list[Bar], t: int
) -> tuple[dict[str, list[ExecutionReport]], list[ExecutionReport]]:
    """The reports made at this slice's bars, by symbol (applied at their own bar, just before
    its decision, as the backtest does), and the others (applied before the slice)."""
    in_slice = {b.symbol for b in bars}
    at_bar: dict[str, list[ExecutionReport]] = {}
    earlier: list[ExecutionReport] = []
    for r in reports:
        if r.ts_ns == t and r.symbol in in_slice:
            at_bar.setdefault(r.symbol, []).append(r)
        else:
            earlier.append(r)
    return at_bar, earlier


# --- the signal chain's state (see "3." in the module docstring) ------------------------------


def signals_state(signals: LiveSignals) -> dict[str, Any]:
    """The streaming features' kernel state and the count of scored rows."""
    return {"features": signals.features.state(), "scored": signals.scored}


def load_signals_state(signals: LiveSignals, state: dict[str, Any]) -> None:
    signals.features.load_state(state["features"])
    signals.scored = int(state.get("scored", 0))


def signals_bars_state(signals: LiveSignals) -> dict[str, list[Any]]:
    """The research bars being built, per symbol (they change with every minute slice)."""
    return {s: list(dataclasses.astuple(b)) for s, b in signals.builder.open.items()}


def load_signals_bars(signals: LiveSignals, state: dict[str, list[Any]]) -> None:
    from actors.signals import _Bucket

    signals.builder.open = {s: _Bucket(*values) for s, values in state.items()}


def _cancel_concerns(order: Any, client_order_id: str | None, symbol: str | None) -> bool:
    """Whether a cancel (of one order by id, or of all orders of ``symbol`` or of every symbol)
    is about ``order``."""
    if client_order_id is not None:
        return getattr(order, "client_order_id", None) == client_order_id
    return symbol is None or getattr(order, "symbol", None) == symbol


def latency_summary(samples: Any) -> dict[str, float | int]:
    """p50 / p95 / p99 / max of latencies in ms."""
    values = np.asarray(list(samples), dtype=float)
    if values.size == 0:
        return {"samples": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "samples": int(values.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(values.max()),
    }
