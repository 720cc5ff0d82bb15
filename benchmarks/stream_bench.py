"""Streaming pipeline benchmark (issue 5, "Speed"): the actor pipeline next to its floor.

Goals on this two-core machine:

1. at least 20,000 ticks/s sustained through the actor pipeline, micro-batched, with no drops
   (every tick fed is accepted or quarantined: ``received == accepted + quarantined == fed``);
2. p99 tick-to-order-acknowledgement under 10 ms with the feed paced at 5,000 ticks/s;
3. the kill switch cancels every open order within 100 ms.

Each is measured twice in the same run on the same ticks (one synthetic BIST session:
``SimulatedBistFeed``, 30 symbols by default):

* **the floor**: the same components called in one process, no Ray: ``TickStreamProcessor``,
  ``LiveSignals`` and the research strategy in a ``LiveContext``, ``RiskEngine``,
  ``RoutingCore`` in front of a ``PaperExchange``, and the SQLite ``Journal`` (same
  ``synchronous`` setting, same writes: signals, risk decisions, staging and send claims,
  reports, the per-batch checkpoint). It is what the actors cost on top of the work itself;
* **the actors**: the pipeline of ``actors.pipeline`` on a local Ray (feed, stream processor,
  risk guard, router, paper venue, journal: six processes on two cores).

What is timed:

* throughput: the feed as fast as backpressure allows (``max_in_flight`` batches in flight),
  from the first batch leaving the feed to the end of the session processed;
* latency: the feed paced at ``--rate`` ticks/s in batches of ``--latency-batch-rows``; for
  each order routed, from the wall time its tick batch left the feed (``TickBatch.sent_ns``) to
  the wall time the venue's acknowledgement, answered through the router, reached the risk
  guard (the floor: the batch handed to the pipeline, the router's answer returned). Waiting
  for a batch to fill is not included (a batch of 50 ticks at 5,000 ticks/s is 10 ms of
  market time);
* kill switch: ``N`` resting orders (1-share market orders after the last bar, which fill only
  on a later bar) at the venue; from the command sent to the risk guard to its answer, which
  comes after the router has journaled every venue cancel; the open orders are then checked
  to be none.

Run: ``.venv/bin/python benchmarks/stream_bench.py`` (``--quick``: a tiny market, for the smoke
test). Figures go to ``var/bench/stream_bench.json`` and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.common import EventClock, StageTimers, WallClock  # noqa: E402
from actors.context import LiveContext  # noqa: E402
from actors.feed import SimulatedBistFeed  # noqa: E402
from actors.journal import Journal, NewEvent  # noqa: E402
from actors.risk_guard import context_from_view  # noqa: E402
from actors.signals import LivePredictionStrategy, LiveSignals  # noqa: E402
from actors.stream_processor import (  # noqa: E402
    STRATEGY_ID,
    bar_slices,
    build_model,
    latency_summary,
    signals_bars_state,
    signals_state,
    split_at_bar,
)
from quant.data.stream import TickStreamProcessor  # noqa: E402
from quant.execution.orders import (  # noqa: E402
    ExecutionReport,
    Order,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.execution.routing import RouteStatus, RoutingCore  # noqa: E402
from quant.risk.checks import RiskDecision  # noqa: E402
from quant.risk.engine import RiskEngine  # noqa: E402
from quant.risk.limits import RiskLimits  # noqa: E402
from quant.sim.strategy import Bar  # noqa: E402

DEFAULT_OUT = ROOT / "var" / "bench" / "stream_bench.json"
GOALS = {"ticks_per_s": 20_000.0, "p99_ms": 10.0, "kill_switch_ms": 100.0}
MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.55},
}
"""The transparent momentum rule on 5-minute research bars: it trades often (the point of a
latency benchmark is orders)."""
SYNCHRONOUS = "NORMAL"
"""The pipeline's journal setting (see ``actors.journal_actor``), used by the floor too."""
KILL_LIMITS = {"max_order_to_trade_ratio": None}
"""The kill-switch drill parks many orders without trades; the ratio check would refuse them."""


# --------------------------------------------------------------------------------------------
# The floor: the same components in one process
# --------------------------------------------------------------------------------------------


class EventTimeVenue:
    """The paper exchange on event time behind the router (as ``PaperVenueActor`` on event
    time): cancels stamped with the router's wall clock are taken at the venue's own now."""

    def __init__(self, exchange: Any, clock: EventClock) -> None:
        self.exchange = exchange
        self.clock = clock

    def submit(self, order: Order) -> list[ExecutionReport]:
        self.clock.advance_to(order.ts_ns)
        return self.exchange.submit(order)

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        return self.exchange.cancel(client_order_id, self.clock.now_ns())

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        return self.exchange.cancel_all(self.clock.now_ns(), symbol)

    def replace(self, client_order_id: str, ts_ns: int, **changes: Any) -> list[ExecutionReport]:
        return self.exchange.replace(client_order_id, self.clock.now_ns(), **changes)

    def status(self, client_order_id: str) -> Any:
        return self.exchange.status(client_order_id)


class InProcessPipeline:
    """``StreamProcessor`` + ``RiskGuard`` + ``OrderRouter`` + paper venue + journal, as plain
    calls in one process, doing the same work per batch, slice and order."""

    def __init__(
        self,
        symbols: list[str],
        day: date,
        journal_path: Path,
        *,
        model: dict[str, Any],
        risk_limits: dict[str, Any] | None = None,
        initial_cash: float = 1_000_000.0,
        calendar: str | None = "XIST",
    ) -> None:
        from quant.market.calendar import TradingCalendar
        from quant.market.instrument import Instrument
        from quant.sim.costs import bist_default_costs
        from quant.sim.paper import PaperExchange

        self.day = day
        self.journal = Journal(journal_path, synchronous=SYNCHRONOUS)
        self.venue_clock = EventClock()
        self.exchange = PaperExchange(
            [Instrument(s) for s in symbols],
            self.venue_clock,
            calendar=TradingCalendar(calendar) if calendar else None,
            costs=bist_default_costs(),
            max_participation=0.1,
            name="paper",
        )
        self.wall = WallClock()
        venue = EventTimeVenue(self.exchange, self.venue_clock)
        self.core = RoutingCore({"paper": venue}, self.wall, before_send=self._claim)
        self.engine = RiskEngine(RiskLimits.model_validate(risk_limits or {}), [])
        self.instruments = {s: Instrument(s) for s in symbols}
        self.model, self.params = build_model(model)
        self.signals = LiveSignals(self.model, self.params)
        self.signals.prepare()  # as the stream processor does before its first batch
        self.strategy = LivePredictionStrategy(
            self.params.prob_threshold,
            position_notional=self.params.position_weight * initial_cash,
            long_only=self.params.long_only,
            strategy_id=STRATEGY_ID,
        )
        self.ctx = LiveContext(
            STRATEGY_ID,
            symbols,
            day,
            initial_cash=initial_cash,
            submit=self._submit,
            cancel=self._cancel,
            calendar=calendar,
        )
        self.ticks = TickStreamProcessor(symbols)
        self.started = False
        self.finished = False
        self.last_slice_ts = 0
        self.stages = StageTimers()
        self.batch_start_ns = 0
        self.signals_saved = -1
        self.ack_ms: list[float] = []
        self.first_ack_ms: list[float] = []
        self._slice_acks = 0
        self.counters = {"orders": 0, "routed": 0, "rejected": 0, "fills": 0, "slices": 0}

    # --- the router's and the risk guard's work ------------------------------------------------

    def _claim(self, order: Order, venue: str) -> None:
        self.journal.mark_sent(order.client_order_id, venue, self.wall.now_ns())

    def _record(self, reports: Sequence[ExecutionReport]) -> None:
        """Journal reports; the risk engine counts them (order-to-trade), as the risk guard
        does when it catches up with the journal."""
        if reports:
            self.journal.record_reports(list(reports))
            for r in reports:
                self.engine.on_execution_report(r)

    def _check(self, order: Order, view: dict[str, Any]) -> RiskDecision:
        try:
            decision = self.engine.check(order, context_from_view(view, self.instruments))
        except Exception as exc:
            decision = RiskDecision.reject(RejectCode.INVALID_ORDER, f"malformed order: {exc}")
        with self.journal.transaction():
            self.journal.record_risk_decision(order, decision, order.ts_ns or None)
            for event in self.engine.drain_events():
                self.journal.append(
                    "risk_event", str(event.kind), event.to_dict(), event.ts_ns, None
                )
            self.journal.set_checkpoint("risk:engine", {"engine": self.engine.to_dict()})
        return decision

    def _submit(self, order: Order, view: dict[str, Any]) -> ExecutionReport:
        self.counters["orders"] += 1
        decision = self._check(order, view)
        if not decision.accepted:
            self.counters["rejected"] += 1
            return ExecutionReport(
                client_order_id=order.client_order_id,
                status=OrderStatus.REJECTED,
                ts_ns=order.ts_ns,
                symbol=order.symbol,
                side=order.side,
                reject_code=decision.code or RejectCode.INVALID_ORDER,
                reason=decision.reason,
            )
        self.journal.stage_order(order, "paper", order.ts_ns or None)
        outcome = self.core.route(order)
        self._record(outcome.reports)
        if self.batch_start_ns:
            latency = (time.time_ns() - self.batch_start_ns) / 1e6
            self.ack_ms.append(latency)
            if not self._slice_acks:
                self.first_ack_ms.append(latency)
            self._slice_acks += 1
        self.counters["routed"] += outcome.status is RouteStatus.ROUTED
        if outcome.reports:
            return outcome.reports[0]
        return ExecutionReport(
            client_order_id=order.client_order_id,
            status=OrderStatus.NEW,
            ts_ns=order.ts_ns,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=order.quantity,
            reason=f"held by the router: {outcome.reason}",
        )

    def _cancel(self, client_order_id: str | None, symbol: str | None) -> list[ExecutionReport]:
        if client_order_id is not None:
            out = self.core.cancel(client_order_id)
            self._record(out.reports)
            return list(out.reports)
        reports = list(self.core.cancel_all(symbol).reports)
        self._record(reports)
        return reports

    def _apply(self, reports: Sequence[ExecutionReport]) -> None:
        for r in self.ctx.apply_reports(list(reports)):
            if r.last_qty:
                self.counters["fills"] += 1
                self.strategy.on_fill(self.ctx, r)
            else:
                self.strategy.on_order_update(self.ctx, r)

    # --- the stream processor's work -----------------------------------------------------------

    def process(self, trades: Any, *, last: bool = False, sent_ns: int = 0) -> None:
        self.batch_start_ns = sent_ns or time.time_ns()
        mark = self.stages.now()
        if not self.started:
            self.started = True
            t0 = self.ctx.session.first_order_ns or int(trades["ts"].min())
            self.ctx.now = t0
            self.venue_clock.advance_to(t0)
            self._record(self.exchange.start_session(self.day, {}))
            self.strategy.on_start(self.ctx)
            self.strategy.on_session_start(self.ctx, self.day)
        out = self.ticks.flush() if last else self.ticks.process(trades)
        bars = [b for b in out.bars if b.ts_end_ns > self.last_slice_ts]
        mark = self.stages.add("ingest", mark)
        for t, group in bar_slices(bars):
            self._slice(group, t)
        if last and not self.finished:
            self._end_session()
        mark = self.stages.now()
        with self.journal.transaction():  # one commit, as the stream processor's batch
            self.journal.set_checkpoint(
                "stream:state",
                {
                    "ticks": self.ticks.snapshot(),
                    "last_slice_ts": self.last_slice_ts,
                    "order_seq": self.ctx._order_seq,
                    "targets": self.strategy.targets,
                    "last": self.ctx.last,
                    "research_bars": signals_bars_state(self.signals),
                },
            )
            # the features' state only when they moved (a research bar scored), as there
            if self.signals.scored != self.signals_saved:
                self.journal.set_checkpoint("stream:signals", signals_state(self.signals))
                self.signals_saved = self.signals.scored
        self.stages.add("checkpoint", mark)

    def _slice(self, bars: list[Bar], t: int) -> None:
        stages = self.stages
        mark = stages.now()
        self.ctx.now = t
        self.venue_clock.advance_to(t)
        reports: list[ExecutionReport] = []
        for bar in bars:
            reports.extend(self.exchange.on_bar(bar.symbol, bar))
        self._record(reports)
        self.journal.set_checkpoint("router:last_bar_ts", t)
        mark = stages.add("venue", mark)
        # as the stream processor: fills at this slice's bars are applied at their own bar,
        # just before its decision; earlier reports now
        at_bar, earlier = split_at_bar(reports, bars, t)
        self._apply(earlier)
        mark = stages.add("reports", mark)
        predictions = self.signals.on_minute_bars(bars, t)
        if predictions:
            self.journal.append_many(
                NewEvent(
                    "signal",
                    s,
                    {"symbol": s, "value": u - d, "model": self.model.name},
                    ts,
                    f"signal:{self.model.name}:{s}:{ts}",
                )
                for s, ts, u, d, _ in predictions
            )
            self.strategy.extend(predictions)
        mark = stages.add("signals", mark)
        self._slice_acks = 0
        for bar in bars:
            fills = at_bar.pop(bar.symbol, None)
            if fills:
                self._apply(fills)
            self.ctx.last[bar.symbol] = bar.close
            self.strategy.on_bar(self.ctx, bar)
        stages.add("strategy+orders", mark)
        self.last_slice_ts = t
        self.counters["slices"] += 1

    def _end_session(self) -> None:
        predictions = self.signals.flush()
        if predictions:
            self.strategy.extend(predictions)
        end = max(self.ctx.session.last_trade_ns or self.last_slice_ts, self.last_slice_ts)
        self.ctx.now = end
        self.venue_clock.advance_to(end)
        reports = self.exchange.end_session(end)
        self._record(reports)
        self._apply(reports)
        self.strategy.on_session_end(self.ctx, self.day)
        self.finished = True

    def close(self) -> None:
        self.journal.close()


def _batches(frame: Any, rows: int) -> list[Any]:
    return [frame.slice(o, rows) for o in range(0, frame.height, rows)]


def floor_throughput(frame: Any, symbols: list[str], day: date, tmp: Path, rows: int) -> dict:
    pipe = InProcessPipeline(symbols, day, tmp / "floor-throughput.sqlite", model=MODEL)
    batches = _batches(frame, rows)
    started = time.perf_counter()
    for b in batches:
        pipe.process(b)
    pipe.process(frame.clear(), last=True)
    seconds = time.perf_counter() - started
    counts = pipe.ticks.snapshot_counts()
    pipe.close()
    return {
        "ticks": frame.height,
        "seconds": seconds,
        "ticks_per_s": frame.height / seconds,
        "batch_rows": rows,
        "accepted": counts["accepted"],
        "quarantined": counts["quarantined"],
        "counters": dict(pipe.counters),
        "stages": pipe.stages.snapshot(),
    }


def floor_latency(
    frame: Any, symbols: list[str], day: date, tmp: Path, rows: int, rate: float
) -> dict:
    pipe = InProcessPipeline(symbols, day, tmp / "floor-latency.sqlite", model=MODEL)
    wall0 = time.monotonic_ns()
    sent = 0
    for b in _batches(frame, rows):
        due = wall0 + sent * 1e9 / rate
        now = time.monotonic_ns()
        if due > now:
            time.sleep((due - now) / 1e9)
        pipe.process(b, sent_ns=time.time_ns())
        sent += b.height
    pipe.process(frame.clear(), last=True, sent_ns=time.time_ns())
    pipe.close()
    return {
        "rate": rate,
        "batch_rows": rows,
        **latency_summary(pipe.ack_ms),
        "first_of_slice": latency_summary(pipe.first_ack_ms),
        "orders_per_slice": _orders_per_slice(len(pipe.ack_ms), len(pipe.first_ack_ms)),
    }


def _drill_ticks(frame: Any) -> Any:
    """The morning the kill-switch drill runs in: continuous trading, market orders taken."""
    return frame.head(max(1, min(2000, frame.height // 3)))


def _resting_orders(n: int, symbols: list[str], ts_ns: int, tag: str) -> list[Order]:
    return [
        Order(
            client_order_id=f"kill-{tag}-{i}",
            symbol=symbols[i % len(symbols)],
            side=Side.BUY,
            quantity=1,
            order_type=OrderType.MARKET,
            ts_ns=ts_ns,
            strategy_id="bench",
        )
        for i in range(n)
    ]


def _view(day: date, last: dict[str, float]) -> dict[str, Any]:
    return {
        "day": day.isoformat(),
        "last_prices": dict(last),
        "bands": {},
        "positions": {},
        "open_buy": {},
        "open_sell": {},
        "equity": 1e9,
        "buying_power": 1e9,
        "halted": [],
    }


def floor_kill_switch(
    frame: Any, symbols: list[str], day: date, tmp: Path, sizes: list[int]
) -> list[dict]:
    out = []
    head = _drill_ticks(frame)
    for n in sizes:
        pipe = InProcessPipeline(
            symbols, day, tmp / f"floor-kill-{n}.sqlite", model=MODEL, risk_limits=KILL_LIMITS
        )
        pipe.process(head)
        ts = int(pipe.last_slice_ts) or int(head["ts"].max())
        view = _view(day, pipe.ctx.last)
        placed = sum(
            pipe._submit(o, view).status is not OrderStatus.REJECTED
            for o in _resting_orders(n, symbols, ts, f"floor{n}")
        )
        started = time.perf_counter()
        pipe.engine.engage_kill_switch("bench", time.time_ns())
        pipe.journal.set_checkpoint("risk:engine", {"engine": pipe.engine.to_dict()})
        result = pipe.core.cancel_all(None)
        pipe._record(result.reports)
        ms = (time.perf_counter() - started) * 1e3
        left = [st for st in pipe.exchange.open_orders()]
        out.append({"orders": n, "placed": placed, "ms": ms, "still_open": len(left)})
        pipe.close()
    return out


# --------------------------------------------------------------------------------------------
# The actors
# --------------------------------------------------------------------------------------------


def _pipeline_config(
    synthetic: dict[str, Any], tmp: Path, name: str, rows: int, in_flight: int, **extra: Any
) -> Any:
    from actors import pipeline as pl_
    from actors.feed import FeedSpec

    feed = SimulatedBistFeed(**synthetic)
    symbols = sorted(feed.frame["symbol"].unique().to_list())
    return pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(synthetic)),
        journal_path=str(tmp / f"{name}.sqlite"),
        symbols=symbols,
        day=feed.day,
        pipeline=name,
        model=MODEL,
        batch_rows=rows,
        max_in_flight=in_flight,
        detached=True,
        autostart=False,
        **extra,
    )


def _run_feed(config: Any, rate: float | None, timeout_s: float) -> tuple[dict, dict]:
    import ray

    from actors import pipeline as pl_
    from actors.common import Role, lookup

    pl_.start_pipeline(config)
    feed = lookup(config.pipeline, Role.FEED)
    ray.get(feed.set_pace.remote(None, rate))
    ray.get(feed.start.remote())
    state = pl_.wait_until_finished(config.pipeline, timeout_s=timeout_s, poll_s=0.1)
    status = pl_.status(config.pipeline)
    return state, status


def actors_throughput(synthetic: dict, tmp: Path, rows: int, in_flight: int, ticks: int) -> dict:
    from actors import pipeline as pl_

    config = _pipeline_config(synthetic, tmp, f"bench-tp-{os.getpid()}", rows, in_flight)
    try:
        feed, status = _run_feed(config, None, timeout_s=900)
    finally:
        pl_.stop(config.pipeline)
    stream = status["actors"]["stream"]
    counts = stream["ticks"]
    seconds = (feed["finished_ns"] - feed["started_ns"]) / 1e9
    return {
        "state": feed["state"],
        "ticks": ticks,
        "fed": feed["rows_sent"],
        "received": counts["received"],
        "accepted": counts["accepted"],
        "quarantined": counts["quarantined"],
        "no_drops": counts["received"] == counts["accepted"] + counts["quarantined"]
        and counts["received"] == feed["rows_sent"] == ticks,
        "seconds": seconds,
        "ticks_per_s": feed["rows_sent"] / seconds if seconds > 0 else 0.0,
        "batch_rows": rows,
        "max_in_flight": in_flight,
        "max_in_flight_seen": feed["max_in_flight_seen"],
        "waits_for_downstream": feed["waits_for_downstream"],
        "counters": stream["counters"],
        "stages": stream["stages"],
        "lag": status["lag"],
        "journal": stream.get("journal"),
    }


def actors_latency(synthetic: dict, tmp: Path, rows: int, rate: float) -> dict:
    import ray

    from actors import pipeline as pl_
    from actors.common import Role, lookup

    config = _pipeline_config(synthetic, tmp, f"bench-lat-{os.getpid()}", rows, 4)
    try:
        feed, status = _run_feed(config, rate, timeout_s=900)
        stream = lookup(config.pipeline, Role.STREAM)
        samples = ray.get(stream.latency_samples.remote())
        first = ray.get(stream.latency_samples.remote(True))
    finally:
        pl_.stop(config.pipeline)
    return {
        "state": feed["state"],
        "rate": rate,
        "batch_rows": rows,
        "achieved_rate": feed["rows_sent"] / ((feed["finished_ns"] - feed["started_ns"]) / 1e9),
        "pace_lag": feed["pace_lag"],
        **latency_summary(samples),
        "first_of_slice": latency_summary(first),
        "orders_per_slice": _orders_per_slice(len(samples), len(first)),
        "stages": status["actors"]["stream"]["stages"],
    }


def _orders_per_slice(orders: int, slices: int) -> float | None:
    return orders / slices if slices else None


def actors_kill_switch(synthetic: dict, tmp: Path, sizes: list[int]) -> list[dict]:
    import ray

    from actors import pipeline as pl_
    from actors.common import Role, lookup
    from actors.feed import TickBatch

    config = _pipeline_config(
        synthetic, tmp, f"bench-kill-{os.getpid()}", 500, 1, risk_limits=KILL_LIMITS
    )
    out = []
    try:
        pl_.start_pipeline(config)
        stream = lookup(config.pipeline, Role.STREAM)
        risk = lookup(config.pipeline, Role.RISK)
        router = lookup(config.pipeline, Role.ROUTER)
        head = _drill_ticks(SimulatedBistFeed(**synthetic).frame)
        ray.get(stream.process.remote(TickBatch(0, head, sent_ns=time.time_ns())))
        st = ray.get(stream.status.remote())
        ts = int(st["last_slice_ts"]) or int(head["ts"].max())
        last = {s: float(p) for s, p in zip(*_last_prices(head), strict=True)}
        for n in sizes:
            orders = _resting_orders(n, config.symbols, ts, f"actors{n}")
            answers = ray.get(
                risk.submit_many.remote([(o, _view(config.day, last)) for o in orders])
            )
            placed = sum(r.status is not OrderStatus.REJECTED for r, _ in answers)
            open_before = len(ray.get(router.status.remote())["open_orders"])
            started = time.perf_counter()
            result = ray.get(risk.engage_kill_switch.remote("bench"))
            ms = (time.perf_counter() - started) * 1e3
            left = ray.get(router.status.remote())["open_orders"]
            out.append(
                {
                    "orders": n,
                    "placed": placed,
                    "open_before": open_before,
                    "ms": ms,
                    "complete": bool(result["cancel_all"]["complete"]),
                    "cancelled": len(result["cancel_all"]["cancelled"]),
                    "router_elapsed_ms": result["cancel_all"].get("elapsed_ms"),
                    "still_open": len(left),
                }
            )
            ray.get(risk.release_kill_switch.remote("bench"))
    finally:
        pl_.stop(config.pipeline)
    return out


def _last_prices(frame: Any) -> tuple[list[str], list[float]]:
    import polars as pl

    agg = frame.group_by("symbol", maintain_order=True).agg(pl.col("price").last())
    return agg["symbol"].to_list(), agg["price"].to_list()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    a, f = result["actors"], result["floor"]
    tp = a["throughput"]
    lat = a["latency"]
    kill = max(a["kill_switch"], key=lambda k: k["orders"]) if a["kill_switch"] else {}
    fkill = max(f["kill_switch"], key=lambda k: k["orders"]) if f["kill_switch"] else {}
    return [
        {
            "what": "sustained ticks/s, no drops",
            "goal": f">= {GOALS['ticks_per_s']:,.0f}",
            "actors": tp["ticks_per_s"],
            "floor": f["throughput"]["ticks_per_s"],
            "ratio": f["throughput"]["ticks_per_s"] / tp["ticks_per_s"]
            if tp["ticks_per_s"]
            else None,
            "met": tp["ticks_per_s"] >= GOALS["ticks_per_s"] and tp["no_drops"],
        },
        {
            "what": f"p99 tick-to-ack ms at {lat['rate']:,.0f} ticks/s",
            "goal": f"< {GOALS['p99_ms']:g}",
            "actors": lat.get("p99_ms"),
            "floor": f["latency"].get("p99_ms"),
            "ratio": _ratio(lat.get("p99_ms"), f["latency"].get("p99_ms")),
            "met": lat.get("p99_ms") is not None and lat["p99_ms"] < GOALS["p99_ms"],
        },
        {
            "what": f"kill switch ms, {kill.get('orders', 0)} open orders",
            "goal": f"< {GOALS['kill_switch_ms']:g}",
            "actors": kill.get("ms"),
            "floor": fkill.get("ms"),
            "ratio": _ratio(kill.get("ms"), fkill.get("ms")),
            "met": bool(kill)
            and all(
                k["ms"] < GOALS["kill_switch_ms"] and k["still_open"] == 0 for k in a["kill_switch"]
            ),
        },
    ]


def _ratio(actors: float | None, floor: float | None) -> float | None:
    if actors is None or not floor:
        return None
    return actors / floor


def table(result: dict[str, Any]) -> str:
    """Markdown table: actors, floor, actors/floor (slowdown), goal, met."""
    lines = [
        "| measure | actors | floor (one process) | actors / floor | goal | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for g in result["goals"]:
        fmt = "{:,.0f}" if "ticks/s" in g["what"] and "ack" not in g["what"] else "{:,.2f}"
        ratio = g["ratio"]
        if "ticks/s, no" in g["what"]:
            ratio_text = f"1/{ratio:.1f}" if ratio else "-"
        else:
            ratio_text = f"{ratio:.1f}x" if ratio else "-"
        lines.append(
            f"| {g['what']} | {_fmt(fmt, g['actors'])} | {_fmt(fmt, g['floor'])} | {ratio_text}"
            f" | {g['goal']} | {'met' if g['met'] else 'NOT met'} |"
        )
    lat, flat = result["actors"]["latency"], result["floor"]["latency"]
    for q in ("p50_ms", "p95_ms"):
        lines.append(
            f"| {q[:3]} tick-to-ack ms | {_fmt('{:,.2f}', lat.get(q))} |"
            f" {_fmt('{:,.2f}', flat.get(q))} | {_fmt('{:.1f}x', _ratio(lat.get(q), flat.get(q)))}"
            " | - | - |"
        )
    first, ffirst = lat.get("first_of_slice", {}), flat.get("first_of_slice", {})
    lines.append(
        f"| p99 tick-to-ack ms, first order of a slice | {_fmt('{:,.2f}', first.get('p99_ms'))} |"
        f" {_fmt('{:,.2f}', ffirst.get('p99_ms'))} |"
        f" {_fmt('{:.1f}x', _ratio(first.get('p99_ms'), ffirst.get('p99_ms')))} | - | - |"
    )
    return "\n".join(lines)


def _fmt(fmt: str, value: float | None) -> str:
    return "-" if value is None else fmt.format(value)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--symbols", type=int, default=30)
    p.add_argument("--trades-per-day", type=int, default=3000, help="per symbol")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch-rows", type=int, default=2000, help="throughput micro-batch")
    p.add_argument("--max-in-flight", type=int, default=4)
    p.add_argument("--rate", type=float, default=5000.0, help="paced ticks/s for latency")
    p.add_argument("--latency-batch-rows", type=int, default=50)
    p.add_argument("--kill-orders", default="10,100,1000")
    p.add_argument("--quick", action="store_true", help="a tiny market (smoke test)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--dir", type=Path, default=None, help="journals (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.symbols, args.trades_per_day = 3, 300
        args.batch_rows, args.latency_batch_rows, args.kill_orders = 200, 20, "5"
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from cluster.config import Settings
    from cluster.runtime import start_ray, stop_ray

    synthetic = {
        "n_symbols": args.symbols,
        "seed": args.seed,
        "trades_per_day": args.trades_per_day,
        "n_sessions": 3,
    }
    feed = SimulatedBistFeed(**synthetic)
    frame = feed.frame
    symbols = sorted(frame["symbol"].unique().to_list())
    sizes = [int(x) for x in str(args.kill_orders).split(",") if x]
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="stream-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = _uptime()
    floor = {
        "throughput": floor_throughput(frame, symbols, feed.day, tmp, args.batch_rows),
        "latency": floor_latency(frame, symbols, feed.day, tmp, args.latency_batch_rows, args.rate),
        "kill_switch": floor_kill_switch(frame, symbols, feed.day, tmp, sizes),
    }
    import ray

    owned = not ray.is_initialized()
    if owned:
        start_ray(Settings(), num_cpus=2)
    try:
        actors = {
            "throughput": actors_throughput(
                synthetic, tmp, args.batch_rows, args.max_in_flight, frame.height
            ),
            "latency": actors_latency(synthetic, tmp, args.latency_batch_rows, args.rate),
            "kill_switch": actors_kill_switch(synthetic, tmp, sizes),
        }
    finally:
        if owned:
            stop_ray()
    result: dict[str, Any] = {
        "command": " ".join(["python benchmarks/stream_bench.py", *args.argv]).strip(),
        "utc": started_utc,
        "load_before": load_before,
        "load_after": _uptime(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "market": {**synthetic, "ticks": frame.height, "symbols": len(symbols)},
        "journal_synchronous": SYNCHRONOUS,
        "floor": floor,
        "actors": actors,
    }
    result["goals"] = goals(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=_json_default))
    print(table(result))
    print(f"figures: {args.out}")
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    main()
