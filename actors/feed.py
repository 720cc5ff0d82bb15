"""The feed: market data into the pipeline, in sequence order, in micro-batches, with backpressure.

A ``MarketDataAdapter`` yields tick batches (``TickBatch``: a frame of TRADES rows, in the
lake's schema, sorted by time then sequence number). Two adapters are here:

* ``LakeReplay``: a recorded day of trades from the lake (``quant.data.lake.Lake``);
* ``SimulatedBistFeed``: a session of the synthetic BIST market (``quant.data.synthetic``),
  generated on the fly: a live-like feed for tests that needs no lake.

A live broker feed is a third adapter with the same two methods.

``FeedActor`` pushes the batches to the stream processor. Two things bound it:

* **pace**: ``speed`` x real time (1.0 replays a day in a day; 60 in eight minutes), or
  ``rate`` ticks per second whatever the data's own time stamps (a load test: the benchmark's
  paced 5,000 ticks/s), or, with neither, as fast as the downstream accepts;
* **backpressure**: at most ``max_in_flight`` batches are in flight; the feed waits for the
  oldest to be processed before sending another, so a burst slows the feed down instead of
  piling batches up in memory or dropping them.

It measures the feed lag (how far behind the schedule the send is when replaying at a pace)
and the round trip of each batch through the processor.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import polars as pl

from actors.common import LagMeter

TRADE_COLUMNS = ("ts", "symbol", "price", "size", "seq", "side", "condition")


@dataclass(slots=True)
class TickBatch:
    """One micro-batch of trades: lake TRADES columns, ``ts`` as UTC epoch nanoseconds (Int64).

    ``batch_id`` counts the feed's batches from 0; ``sent_ns`` is the wall time the feed sent
    it (lag measurement); ``last`` marks the end of the feed (the session is over).
    """

    batch_id: int
    trades: pl.DataFrame
    sent_ns: int = 0
    last: bool = False
    day: date | None = None

    @property
    def rows(self) -> int:
        return self.trades.height


class MarketDataAdapter(Protocol):
    """A source of trades: a recorded day, a simulator or a live connection."""

    name: str

    def session_day(self) -> date:
        """The trading day the feed carries."""
        ...

    def batches(self, rows: int) -> Iterator[pl.DataFrame]:
        """Frames of at most ``rows`` trades (``TRADE_COLUMNS``, ``ts`` as Int64 ns), in time
        then sequence order; a live adapter blocks until data arrives."""
        ...


def as_tick_frame(trades: pl.DataFrame) -> pl.DataFrame:
    """Trades in the feed's wire form: ``TRADE_COLUMNS``, ``ts`` as Int64 UTC nanoseconds,
    sorted by time, then symbol and sequence number (the exchange's publication order)."""
    frame = trades.select(TRADE_COLUMNS)
    if isinstance(frame.schema["ts"], pl.Datetime):
        frame = frame.with_columns(pl.col("ts").dt.epoch("ns"))
    return frame.sort("ts", "symbol", "seq", maintain_order=True)


def _chunks(frame: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    for offset in range(0, frame.height, rows):
        yield frame.slice(offset, rows)


class LakeReplay:
    """A recorded day of trades from the lake, whole (a day of the demo lake is a few MB)."""

    def __init__(
        self,
        lake_path: str,
        day: date,
        symbols: list[str] | None = None,
        skip_through: Mapping[str, int] | None = None,
    ) -> None:
        from quant.data.lake import Lake

        self.name = f"lake:{day.isoformat()}"
        self.day = day
        lake = Lake(lake_path)
        start = datetime.combine(day, datetime.min.time())
        trades = lake.read("trades", symbols, start, start + timedelta(days=1))
        self.frame = skip_processed(as_tick_frame(trades), skip_through or {})

    def session_day(self) -> date:
        return self.day

    def batches(self, rows: int) -> Iterator[pl.DataFrame]:
        return _chunks(self.frame, rows)


class SimulatedBistFeed:
    """A session of the synthetic BIST market as a feed (no lake needed)."""

    def __init__(
        self,
        n_symbols: int = 3,
        seed: int = 7,
        trades_per_day: int = 300,
        session: int = -1,
        n_sessions: int = 3,
        skip_through: Mapping[str, int] | None = None,
    ) -> None:
        from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

        market = SyntheticMarket(
            SyntheticMarketConfig(
                n_symbols=n_symbols,
                n_sessions=n_sessions,
                seed=seed,
                trades_per_day=trades_per_day,
            )
        )
        self.day = market.sessions()[session]
        self.name = f"synthetic:{seed}:{self.day.isoformat()}"
        self.frame = skip_processed(as_tick_frame(market.day(self.day).trades), skip_through or {})

    def session_day(self) -> date:
        return self.day

    def batches(self, rows: int) -> Iterator[pl.DataFrame]:
        return _chunks(self.frame, rows)


def skip_processed(frame: pl.DataFrame, skip_through: Mapping[str, int]) -> pl.DataFrame:
    """Drop the trades a restarted pipeline has already processed (seq <= its checkpoint)."""
    if not skip_through or frame.height == 0:
        return frame
    marks = pl.DataFrame(
        {"symbol": list(skip_through), "_done": [int(v) for v in skip_through.values()]},
        schema={"symbol": pl.String, "_done": pl.Int64},
    )
    joined = frame.join(marks, on="symbol", how="left", maintain_order="left")
    return joined.filter(pl.col("_done").is_null() | (pl.col("seq") > pl.col("_done"))).drop(
        "_done"
    )


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What to feed, as plain data (an actor restarted by Ray rebuilds its adapter from it)."""

    kind: str = "lake"
    """``lake`` (a recorded day) or ``synthetic``."""
    lake_path: str = ""
    day: date | None = None
    symbols: list[str] | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)

    def adapter(self, skip_through: Mapping[str, int] | None = None) -> MarketDataAdapter:
        if self.kind == "lake":
            if self.day is None:
                raise ValueError("a lake replay needs a day")
            return LakeReplay(self.lake_path, self.day, self.symbols, skip_through)
        if self.kind == "synthetic":
            return SimulatedBistFeed(**self.synthetic, skip_through=skip_through)
        raise ValueError(f"unknown feed kind {self.kind!r} (lake or synthetic)")


class FeedActor:
    """Pushes an adapter's batches to ``downstream.process`` at a pace, with bounded in-flight.

    ``start()`` runs the replay on a thread of the actor, so ``status()`` and ``stop()`` answer
    while it runs. On a restart (Ray re-creates the actor with the same arguments) the feed asks
    the processor which sequence numbers it has processed and resumes after them.
    """

    def __init__(
        self,
        spec: FeedSpec,
        downstream: Any,
        *,
        batch_rows: int = 500,
        max_in_flight: int = 4,
        speed: float | None = None,
        rate: float | None = None,
        autostart: bool = False,
    ) -> None:
        if batch_rows < 1 or max_in_flight < 1:
            raise ValueError("batch_rows and max_in_flight must be at least 1")
        self.speed: float | None = None
        self.rate: float | None = None
        self.set_pace(speed, rate)
        self.spec = spec
        self.downstream = downstream
        self.batch_rows = batch_rows
        self.max_in_flight = max_in_flight
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.state = "idle"
        self.error: str | None = None
        self.batches_sent = 0
        self.rows_sent = 0
        self.batches_done = 0
        self.max_in_flight_seen = 0
        self.waits_for_downstream = 0
        self.pace_lag = LagMeter()
        self.round_trip = LagMeter()
        self.resumed_from: dict[str, int] = {}
        self.started_ns = 0
        self.finished_ns = 0
        """Wall times of the first batch sent and of the end of the stream being processed."""
        self.adapter_name = ""
        self._restarted = False
        if autostart:
            self._restarted = True
            self.start()

    def start(self) -> dict[str, Any]:
        """Start feeding (idempotent: a running feed keeps running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self.status()
            self._stop.clear()
            self.state = "starting"
            self._thread = threading.Thread(target=self._run, name="feed", daemon=True)
            self._thread.start()
        return self.status()

    def set_pace(self, speed: float | None = None, rate: float | None = None) -> dict[str, Any]:
        """Pace the feed: ``speed`` x real time, or ``rate`` ticks per second, or (neither) as
        fast as the downstream accepts. Takes effect at the next ``start``."""
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive (or None: as fast as possible), not {speed}")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be positive ticks per second (or None), not {rate}")
        if speed is not None and rate is not None:
            raise ValueError("pace by speed or by rate, not both")
        self.speed = speed
        self.rate = rate
        return {"speed": speed, "rate": rate}

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        if self.state in ("running", "starting"):
            self.state = "stopped"
        return self.status()

    def ready(self) -> bool:
        return True

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "error": self.error,
            "adapter": self.adapter_name,
            "batches_sent": self.batches_sent,
            "batches_done": self.batches_done,
            "rows_sent": self.rows_sent,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_seen": self.max_in_flight_seen,
            "waits_for_downstream": self.waits_for_downstream,
            "speed": self.speed,
            "rate": self.rate,
            "started_ns": self.started_ns,
            "finished_ns": self.finished_ns,
            "pace_lag": self.pace_lag.snapshot(),
            "round_trip": self.round_trip.snapshot(),
            "resumed_from": self.resumed_from,
        }

    def _run(self) -> None:
        import ray

        in_flight: deque[tuple[Any, int]] = deque()

        def settle(block_until: int) -> None:
            while len(in_flight) > block_until:
                ref, sent = in_flight.popleft()
                ray.get(ref)
                self.batches_done += 1
                self.round_trip.observe(time.time_ns() - sent)

        try:
            skip: dict[str, int] = {}
            with contextlib.suppress(Exception):
                skip = dict(ray.get(self.downstream.checkpoints.remote()))
            self.resumed_from = skip
            adapter = self.spec.adapter(skip)
            self.adapter_name = adapter.name
            day = adapter.session_day()
            self.state = "running"
            wall0: int | None = None
            event0: int | None = None
            counter = itertools.count()
            rows_this_run = 0
            for frame in adapter.batches(self.batch_rows):
                if self._stop.is_set():
                    break
                if frame.height == 0:
                    continue
                first_ts = int(frame["ts"][0])
                if self.rate is not None:
                    if wall0 is None:
                        wall0 = time.monotonic_ns()
                    due = wall0 + rows_this_run * 1e9 / self.rate
                    now = time.monotonic_ns()
                    if due > now:
                        self._stop.wait((due - now) / 1e9)
                    else:
                        self.pace_lag.observe(now - due)
                elif self.speed is not None:
                    if wall0 is None:
                        wall0, event0 = time.monotonic_ns(), first_ts
                    due = wall0 + (first_ts - (event0 or 0)) / self.speed
                    now = time.monotonic_ns()
                    if due > now:
                        self._stop.wait((due - now) / 1e9)
                    else:
                        self.pace_lag.observe(now - due)
                if len(in_flight) >= self.max_in_flight:
                    self.waits_for_downstream += 1
                    settle(self.max_in_flight - 1)
                sent = time.time_ns()
                if not self.started_ns:
                    self.started_ns = sent
                batch = TickBatch(next(counter), frame, sent_ns=sent, day=day)
                in_flight.append((self.downstream.process.remote(batch), sent))
                self.max_in_flight_seen = max(self.max_in_flight_seen, len(in_flight))
                self.batches_sent += 1
                self.rows_sent += frame.height
                rows_this_run += frame.height
            settle(0)
            if not self._stop.is_set():
                end = TickBatch(
                    next(counter), as_tick_frame(_empty_trades()), time.time_ns(), True, day
                )
                ray.get(self.downstream.process.remote(end))
                self.finished_ns = time.time_ns()
                self.state = "finished"
            else:
                self.state = "stopped"
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"


def _empty_trades() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "ts": pl.Int64,
            "symbol": pl.String,
            "price": pl.Float64,
            "size": pl.Int64,
            "seq": pl.Int64,
            "side": pl.Int8,
            "condition": pl.String,
        }
    )
