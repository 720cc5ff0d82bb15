"""What every actor of the trading pipeline shares: the namespace, actor names, options, clocks.

The pipeline runs as *detached named* actors in one Ray namespace, so it outlives the command
that started it and any later command (``paper status``, ``kill-switch``) finds it by name.
A pipeline has an id (``paper`` by default); each actor is named ``{pipeline}:{role}``, which
lets tests run several pipelines side by side on one Ray.

The wall clock lives here, not in ``quant/``: actors inject it (or an event-time clock when they
replay a recorded day) into the core objects they host.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

NAMESPACE = "smart-trader"
"""The Ray namespace of every trading actor."""

DEFAULT_PIPELINE = "paper"


class Role(StrEnum):
    """The actors of one pipeline; ``actor_name(pipeline, role)`` is the Ray name."""

    JOURNAL = "journal"
    FEED = "feed"
    STREAM = "stream"
    RISK = "risk"
    ROUTER = "router"
    VENUE = "venue"
    """A paper venue; a pipeline may have several (``venue-a``, ``venue-b``)."""
    SUPERVISOR = "supervisor"


def actor_name(pipeline: str, role: Role | str) -> str:
    return f"{pipeline}:{role}"


class WallClock:
    """The system's UTC time in nanoseconds (the live ``quant.clock.Clock``)."""

    def now_ns(self) -> int:
        return time.time_ns()


class EventClock:
    """Event time: moves with the data being replayed, never backwards.

    A replayed day runs on the time stamps of its own ticks and bars, so the paper exchange and
    the risk checks see the same instants as the backtest of that day, however fast the replay.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns > self._now:
            self._now = int(ts_ns)


@dataclass(frozen=True, slots=True)
class StageLag:
    """Lag of one stage: how far behind event time (or the producer) it runs, in ms."""

    last_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0
    samples: int = 0


class LagMeter:
    """Running last / max / mean of a lag in milliseconds (cheap: no histogram kept)."""

    __slots__ = ("last", "max", "n", "total")

    def __init__(self) -> None:
        self.last = 0.0
        self.max = 0.0
        self.total = 0.0
        self.n = 0

    def observe(self, lag_ns: int | float) -> None:
        ms = float(lag_ns) / 1e6
        self.last = ms
        self.max = max(self.max, ms)
        self.total += ms
        self.n += 1

    def snapshot(self) -> dict[str, float]:
        mean = self.total / self.n if self.n else 0.0
        return {"last_ms": self.last, "max_ms": self.max, "mean_ms": mean, "samples": self.n}


class StageTimers:
    """Wall time spent per stage of a hot path: total, calls, mean and max (cheap: a dict of
    three numbers per stage). ``mark = timers.add("stage", mark)`` times from ``mark`` to now
    and returns now, so consecutive stages chain without extra clock reads."""

    __slots__ = ("stages",)

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}

    @staticmethod
    def now() -> int:
        return time.perf_counter_ns()

    def add(self, stage: str, since_ns: int) -> int:
        now = time.perf_counter_ns()
        elapsed = now - since_ns
        rec = self.stages.get(stage)
        if rec is None:
            self.stages[stage] = [float(elapsed), 1.0, float(elapsed)]
        else:
            rec[0] += elapsed
            rec[1] += 1
            if elapsed > rec[2]:
                rec[2] = float(elapsed)
        return now

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {
            stage: {
                "total_ms": total / 1e6,
                "calls": int(n),
                "mean_ms": total / n / 1e6 if n else 0.0,
                "max_ms": peak / 1e6,
            }
            for stage, (total, n, peak) in self.stages.items()
        }


def actor_options(
    pipeline: str,
    role: Role | str,
    *,
    max_restarts: int = -1,
    max_task_retries: int = 0,
    detached: bool = True,
    num_cpus: float = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Options for a pipeline actor: named, in the project namespace, restartable.

    ``num_cpus=0`` by default: the actors mostly wait on each other, and a two-core machine
    must still fit the whole pipeline plus the driver. ``max_task_retries`` is set only for
    actors whose methods are idempotent (a retried call after a restart changes nothing twice).
    """
    options: dict[str, Any] = {
        "name": actor_name(pipeline, role),
        "namespace": NAMESPACE,
        "max_restarts": max_restarts,
        "max_task_retries": max_task_retries,
        "num_cpus": num_cpus,
        "get_if_exists": True,
    }
    if detached:
        options["lifetime"] = "detached"
    return options | extra


def lookup(pipeline: str, role: Role | str) -> Any:
    """The handle of a running pipeline actor, or ``LookupError`` naming what is missing."""
    import ray

    name = actor_name(pipeline, role)
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        raise LookupError(
            f"no actor {name!r} in namespace {NAMESPACE!r}: is the pipeline {pipeline!r} running?"
        ) from None


def kill_actors(handles: Iterable[Any]) -> None:
    """Kill actors for good (no restart); already-dead ones are ignored."""
    import ray

    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:
            continue


def freeze_startup_objects() -> None:
    """Keep Python's cyclic garbage collector off what an actor loaded to start (modules,
    numpy, polars, Ray itself: most of its objects): a full collection otherwise walks all of
    them, a pause of tens of milliseconds in the middle of a trading path, which showed up as
    the odd 100 ms tick-to-ack. Called once, at the end of an actor's set-up; objects made
    afterwards are collected as usual."""
    import gc

    gc.collect()
    gc.freeze()
