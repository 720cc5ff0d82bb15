"""Parent orders in the ``OrderRouter``: the journaled form of ``ParentOrderSlicer`` work.

The router hosts ``quant.execution.routing.ParentOrderSlicer`` (TWAP / VWAP / POV). What has to
survive a router restart is small and exact: the parent, the algorithm's name and parameters,
its window, and the slicer's inputs (``SliceEvent``: the market state of each bar slice that
produced a child, or that POV observed, and every child report), in order. Replaying those
inputs into a fresh algorithm regenerates the same children with the same ids (the algorithms
are deterministic in their inputs) and ends in the same state, so slicing carries on where it
stopped; the children themselves are in the journal's outbox, so none is sent twice.

This module is plain data in and out (no Ray): how an algorithm is named and parameterised
(``AlgoSpec``), how slicer events and market states are written to and read from the journal,
and the market state the router derives from a slice of one-minute bars.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from quant.execution.algos import (
    POV,
    TWAP,
    VWAP,
    AlgoContext,
    ExecutionAlgorithm,
    MarketState,
    PriceReference,
    PricingPolicy,
    VolumeProfile,
)
from quant.execution.orders import Order, TimeInForce
from quant.execution.routing import SliceEvent
from quant.market.bands import Band
from quant.market.calendar import SessionPhase
from quant.sim.strategy import Bar

PARENT_STARTED = "parent_started"
"""Journal kind: a parent order and its algorithm were accepted by the router."""
PARENT_EVENT = "parent_event"
"""Journal kind: one slicer input of a parent (a market event or a child's report), numbered."""
PARENT_STOPPED = "parent_stopped"
"""Journal kind: a parent stopped before its end (kill switch, halt, cancel-all): a restarted
router replays it and keeps it stopped."""

ALGOS = ("twap", "vwap", "pov")

NS = 1_000_000_000


class ParentSpecError(ValueError):
    """The parent order's algorithm or parameters cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class AlgoSpec:
    """An execution algorithm by name with its parameters, as plain (JSON-safe) data.

    ``params`` (all plain numbers and strings):

    - every algorithm: ``start_ns``, ``end_ns`` (the window, UTC ns; required), ``lot_size``
      (default 1), ``pricing`` (``{"reference": "near"|"far"|"last"|"parent_limit",
      "offset_ticks": 0, "time_in_force": "DAY"}``; default: ``last``, on the tick grid);
    - ``twap``: ``slices`` or ``interval_s``;
    - ``vwap``: ``bucket_minutes`` and ``full_day`` (volume fractions per bucket from local
      midnight), optionally ``half_day``;
    - ``pov``: ``rate`` (0-1], optionally ``min_slice``, ``max_slice``, ``catch_up``.
    """

    algo: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def window(self) -> tuple[int, int]:
        try:
            return int(self.params["start_ns"]), int(self.params["end_ns"])
        except (KeyError, TypeError, ValueError):
            raise ParentSpecError("a parent order needs params start_ns and end_ns") from None

    def build(self) -> ExecutionAlgorithm:
        """A fresh algorithm object (``ParentSpecError`` naming what is wrong)."""
        p = dict(self.params)
        pricing = _pricing(p.get("pricing"))
        try:
            if self.algo == "twap":
                interval = p.get("interval_s")
                return TWAP(
                    slices=int(p["slices"]) if p.get("slices") is not None else None,
                    interval_ns=int(float(interval) * NS) if interval is not None else None,
                    pricing=pricing,
                )
            if self.algo == "vwap":
                profile = VolumeProfile.from_fractions(
                    int(p["bucket_minutes"]),
                    p["full_day"],
                    p.get("half_day"),
                )
                return VWAP(profile, pricing=pricing)
            if self.algo == "pov":
                max_slice = p.get("max_slice")
                return POV(
                    float(p["rate"]),
                    min_slice=int(p.get("min_slice", 1)),
                    max_slice=int(max_slice) if max_slice is not None else None,
                    catch_up=bool(p.get("catch_up", False)),
                    pricing=pricing,
                )
        except KeyError as exc:
            raise ParentSpecError(f"{self.algo}: missing parameter {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ParentSpecError(f"{self.algo}: {exc}") from None
        raise ParentSpecError(f"unknown algorithm {self.algo!r}; one of {', '.join(ALGOS)}")

    def context(self) -> AlgoContext:
        lot = self.params.get("lot_size", 1)
        if not isinstance(lot, int) or isinstance(lot, bool) or lot < 1:
            raise ParentSpecError(f"lot_size must be a positive integer, got {lot!r}")
        return AlgoContext(lot_size=lot)

    def to_dict(self) -> dict[str, Any]:
        return {"algo": self.algo, "params": dict(self.params)}


def vwap_profile_params(
    lake_path: str | Path,
    symbol: str,
    day: date,
    *,
    sessions: int = 20,
    bucket_minutes: int = 5,
) -> dict[str, Any]:
    """VWAP's ``bucket_minutes``, ``full_day`` and ``half_day``, learned from the lake's
    one-minute bars of ``symbol`` in the last ``sessions`` sessions before ``day``.

    The day being traded is never part of its own profile (its volume is not known when the
    parent starts). ``ParentSpecError`` when the lake has no such bars.
    """
    import polars as pl

    from quant.data.corporate_actions import trading_day
    from quant.data.lake import Lake
    from quant.data.schema import DataKind
    from quant.execution.algos import learn_volume_profile

    if sessions < 1:
        raise ParentSpecError(f"vwap: profile sessions must be >= 1, got {sessions}")
    # two calendar days per session and a margin hold ``sessions`` sessions across holidays
    start = day - timedelta(days=2 * sessions + 10)
    try:
        bars = Lake(lake_path).read(DataKind.BARS, symbol, start, day)
    except ValueError as exc:
        raise ParentSpecError(
            f"vwap: no volume profile for {symbol} before {day.isoformat()}: {exc}"
        ) from None
    bars = bars.with_columns(trading_day(bars.columns).alias("_day")).filter(pl.col("_day") < day)
    days = bars.get_column("_day").unique().sort().tail(sessions)
    bars = bars.filter(pl.col("_day").is_in(days.implode()))
    if bars.height == 0 or float(bars.get_column("volume").sum()) <= 0:
        raise ParentSpecError(
            f"vwap: no traded volume of {symbol} in the lake before {day.isoformat()} to learn "
            "a volume profile from"
        )
    try:
        profile = learn_volume_profile(bars.drop("_day"), bucket_minutes)
    except ValueError as exc:
        raise ParentSpecError(f"vwap: {exc}") from None
    return {
        "bucket_minutes": profile.bucket_minutes,
        "full_day": profile.full_day.tolist(),
        "half_day": profile.half_day.tolist(),
        "profile_sessions": int(days.len()),
    }


def _pricing(spec: Any) -> PricingPolicy:
    if spec is None:
        return PricingPolicy(PriceReference.LAST)
    if not isinstance(spec, Mapping):
        raise ParentSpecError(f"pricing must be a mapping, got {type(spec).__name__}")
    try:
        return PricingPolicy(
            PriceReference(spec.get("reference", "last")),
            int(spec.get("offset_ticks", 0)),
            TimeInForce[spec.get("time_in_force", "DAY")],
        )
    except (KeyError, ValueError) as exc:
        raise ParentSpecError(f"pricing {dict(spec)!r}: {exc}") from None


# --- journal codecs ---------------------------------------------------------------------------


def market_to_dict(market: MarketState) -> dict[str, Any]:
    band = market.band
    return {
        "day": market.day.isoformat(),
        "last": market.last,
        "bid": market.bid,
        "ask": market.ask,
        "band": None if band is None else [band.lower, band.upper, band.reference],
        "cumulative_volume": market.cumulative_volume,
        "interval_volume": market.interval_volume,
        "phase": str(market.phase),
        "halted": market.halted,
    }


def market_from_dict(data: Mapping[str, Any]) -> MarketState:
    band = data.get("band")
    return MarketState(
        day=date.fromisoformat(data["day"]),
        last=data.get("last"),
        bid=data.get("bid"),
        ask=data.get("ask"),
        band=None if band is None else Band(*band),
        cumulative_volume=data.get("cumulative_volume"),
        interval_volume=data.get("interval_volume"),
        phase=SessionPhase(data.get("phase", "continuous")),
        halted=bool(data.get("halted", False)),
    )


def event_to_dict(event: SliceEvent) -> dict[str, Any]:
    from actors.journal import report_to_dict

    return {
        "ts_ns": event.ts_ns,
        "market": None if event.market is None else market_to_dict(event.market),
        "report": None if event.report is None else report_to_dict(event.report),
    }


def event_from_dict(data: Mapping[str, Any]) -> SliceEvent:
    from actors.journal import report_from_dict

    market = data.get("market")
    report = data.get("report")
    return SliceEvent(
        int(data["ts_ns"]),
        market=None if market is None else market_from_dict(market),
        report=None if report is None else report_from_dict(report),
    )


def started_payload(parent: Order, spec: AlgoSpec) -> dict[str, Any]:
    from actors.journal import order_to_dict

    return {"order": order_to_dict(parent), **spec.to_dict()}


def started_from_payload(payload: Mapping[str, Any]) -> tuple[Order, AlgoSpec]:
    from actors.journal import order_from_dict

    return order_from_dict(payload["order"]), AlgoSpec(payload["algo"], payload["params"])


# --- the bar clock ----------------------------------------------------------------------------


@functools.cache
def _calendar(name: str) -> Any:
    from quant.market.calendar import TradingCalendar

    return TradingCalendar(name)


def phase_at(ts_ns: int, calendar: str | None) -> tuple[date, SessionPhase]:
    """The trading day and session phase at ``ts_ns`` (continuous without a calendar)."""
    from datetime import UTC, datetime

    from quant.market.calendar import ISTANBUL

    local = datetime.fromtimestamp(ts_ns / NS, tz=UTC).astimezone(ISTANBUL)
    if calendar is None:
        return local.date(), SessionPhase.CONTINUOUS
    info = _calendar(calendar).session(local.date())
    if info is None:
        return local.date(), SessionPhase.CLOSED
    return local.date(), info.phase_at_local(local.time())


def markets_from_bars(
    bars: Sequence[Bar], ts_ns: int, calendar: str | None = "XIST"
) -> dict[str, MarketState]:
    """What a parent's algorithm may know at the close of a bar slice: the last price and the
    bar's volume per symbol, in the session phase of that instant. No quotes (the bars carry
    none: pricing falls back to the last price) and no band (the venue enforces it)."""
    day, phase = phase_at(ts_ns, calendar)
    return {
        bar.symbol: MarketState(
            day=day,
            last=float(bar.close),
            interval_volume=int(bar.volume),
            phase=phase,
        )
        for bar in bars
    }
