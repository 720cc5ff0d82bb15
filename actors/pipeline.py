"""The supervisor: start, find, wire, inspect and stop the actors of one trading pipeline.

``start_pipeline(config)`` creates (or finds, ``get_if_exists``) the named, detached actors of
pipeline ``config.pipeline`` in the ``smart-trader`` namespace and wires them:

    FeedActor -process-> StreamProcessor -submit-> RiskGuard -submit-> OrderRouter
                               |                                             |
                               +-on_bars (bar slices)----------------------->+-> PaperVenueActor(s)
    every actor -> JournalActor (SQLite WAL)

Restart policy: every actor has ``max_restarts=-1`` (Ray re-creates it with the same
arguments, and it recovers its state from the journal). ``max_task_retries=-1`` where calls
are idempotent: the journal (idempotency keys, outbox claims), the router (by client order id,
bar slices by time), the risk guard (by client order id) and the stream processor (ticks by
sequence number, slices by time); so a call in flight when an actor dies is retried on the
new instance and changes nothing twice. The feed is not retried (it is the driver of the
stream and resumes after the processor's checkpoint instead).

``status(pipeline)`` gathers every actor's state; ``stop(pipeline)`` stops the feed and kills
the actors for good (the journal file stays: it is the record). ``replay_day`` runs a recorded
day to the end and returns the orders and fills (the parity check and the demo use it).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from actors.common import (
    DEFAULT_PIPELINE,
    NAMESPACE,
    Role,
    actor_name,
    actor_options,
    kill_actors,
    lookup,
)
from actors.feed import FeedSpec


@dataclass(frozen=True)
class WarmupSource:
    """The research-bar history of a replayed day, read from the lake when an actor starts."""

    lake_path: str
    symbols: tuple[str, ...]
    day: date
    interval: str
    warmup_sessions: int = 5

    def load(self) -> pl.DataFrame | None:
        return replay_history(
            self.lake_path,
            list(self.symbols),
            self.day,
            self.interval,
            warmup_sessions=self.warmup_sessions,
        ).research


@dataclass
class PipelineConfig:
    """Everything that shapes one pipeline run (plain data: it travels to the actors)."""

    feed: FeedSpec
    journal_path: str
    symbols: list[str]
    day: date
    pipeline: str = DEFAULT_PIPELINE
    venues: list[str] = field(default_factory=lambda: ["paper"])
    model: dict[str, Any] = field(default_factory=dict)
    speed: float | None = None
    batch_rows: int = 500
    max_in_flight: int = 4
    initial_cash: float = 1_000_000.0
    costs: str = "bist"
    max_participation: float = 0.1
    calendar: str | None = "XIST"
    allowed_lateness_ms: int = 0
    late_policy: str = "drop"
    risk_limits: dict[str, Any] = field(default_factory=dict)
    router: dict[str, Any] = field(default_factory=dict)
    venue_stall_s: float = 2.0
    previous_closes: dict[str, float] = field(default_factory=dict)
    adv: dict[str, float] = field(default_factory=dict)
    """Average daily volume per symbol as of the day's start (the paper venue's impact model
    and the fat-finger check need it, as the backtest's daily statistics provide it)."""
    volatility: dict[str, float] = field(default_factory=dict)
    """Daily volatility per symbol as of the day's start (symbols absent: the default)."""
    warmup: Any = None
    """Research bars before the day (features need history), or None."""
    warmup_source: WarmupSource | None = None
    """Where the stream processor reads ``warmup`` itself. Ray keeps a large constructor
    argument in the object store, and a restarted actor whose argument is gone (the command
    that started a detached pipeline has exited) cannot be rebuilt: the actor gets this small
    recipe instead of the frame."""
    fix: dict[str, Any] | None = None
    """The FIX venue when ``venues`` names ``FIX_VENUE``: ``settings`` (``venues.fix``, secret
    references only), ``vault`` (how to reach the vault, references only) and ``data_dir``;
    the router logs on with them (``actors.router.fix_link``)."""
    placement: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Extra Ray actor options by role (e.g. ``{"stream": {"resources": {"worker": 1}}}``)."""
    detached: bool = True
    autostart: bool = True


FIX_VENUE = "fix"
"""The venue name that is the FIX session held by the router (not a paper venue actor)."""


def _venue_role(name: str) -> str:
    return f"{Role.VENUE}-{name}"


def _placed(config: PipelineConfig, role: Role | str) -> dict[str, Any]:
    return dict(config.placement.get(str(role), {}))


def start_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Create (or find) and wire the pipeline's actors; starts the feed if ``autostart``."""
    import ray

    from actors.feed import FeedActor
    from actors.journal_actor import JournalActor
    from actors.paper_venue import PaperVenueActor
    from actors.risk_guard import RiskGuard
    from actors.router import OrderRouter
    from actors.stream_processor import StreamProcessor

    p, detached = config.pipeline, config.detached
    journal = (
        ray.remote(JournalActor)
        .options(
            **actor_options(p, Role.JOURNAL, max_task_retries=-1, detached=detached)
            | _placed(config, Role.JOURNAL)
        )
        .remote(str(config.journal_path))
    )
    venues = {
        name: ray.remote(PaperVenueActor)
        .options(
            **actor_options(p, _venue_role(name), detached=detached, max_concurrency=8)
            | _placed(config, Role.VENUE)
        )
        .remote(
            name,
            config.symbols,
            max_participation=config.max_participation,
            costs=config.costs,
            calendar=config.calendar,
            stall_s=config.venue_stall_s,
            adv=config.adv,
            volatility=config.volatility,
        )
        for name in config.venues
        if name != FIX_VENUE
    }
    ray.get([journal.ready.remote(), *[v.ready.remote() for v in venues.values()]])
    fix = {"name": FIX_VENUE, **(config.fix or {})} if FIX_VENUE in config.venues else None
    router = (
        ray.remote(OrderRouter)
        .options(
            **actor_options(p, Role.ROUTER, max_task_retries=-1, detached=detached)
            | _placed(config, Role.ROUTER)
        )
        .remote(journal, venues, preference=list(config.venues), fix=fix, **config.router)
    )
    risk = (
        ray.remote(RiskGuard)
        .options(
            **actor_options(p, Role.RISK, max_task_retries=-1, detached=detached)
            | _placed(config, Role.RISK)
        )
        .remote(journal, router, config.symbols, limits=config.risk_limits, adv=config.adv)
    )
    stream = (
        ray.remote(StreamProcessor)
        .options(
            **actor_options(p, Role.STREAM, max_task_retries=-1, detached=detached)
            | _placed(config, Role.STREAM)
        )
        .remote(
            journal,
            risk,
            router,
            config.symbols,
            config.day,
            model=config.model,
            initial_cash=config.initial_cash,
            allowed_lateness_ms=config.allowed_lateness_ms,
            late_policy=config.late_policy,
            calendar=config.calendar,
            previous_closes=config.previous_closes,
            warmup=config.warmup_source if config.warmup_source is not None else config.warmup,
            venues=venues,
            venue_timeout_s=float(config.router.get("timeout_s", 1.0)),
        )
    )
    ray.get([router.ready.remote(), risk.ready.remote(), stream.ready.remote()])
    feed = (
        ray.remote(FeedActor)
        .options(
            **actor_options(p, Role.FEED, detached=detached, max_concurrency=4)
            | _placed(config, Role.FEED)
        )
        .remote(
            config.feed,
            stream,
            batch_rows=config.batch_rows,
            max_in_flight=config.max_in_flight,
            speed=config.speed,
            autostart=False,
        )
    )
    if config.autostart:
        ray.get(feed.start.remote())
    return {
        "pipeline": p,
        "namespace": NAMESPACE,
        "actors": [actor_name(p, r) for r in _roles(config.venues)],
        "day": config.day.isoformat(),
        "symbols": config.symbols,
    }


def _roles(venues: list[str]) -> list[str]:
    return [
        str(Role.JOURNAL),
        *[_venue_role(v) for v in venues if v != FIX_VENUE],
        str(Role.ROUTER),
        str(Role.RISK),
        str(Role.STREAM),
        str(Role.FEED),
    ]


def running_actors(pipeline: str = DEFAULT_PIPELINE) -> dict[str, Any]:
    """The live actors of ``pipeline`` by role (those Ray knows by name)."""
    from ray.util import list_named_actors

    prefix = f"{pipeline}:"
    found = {}
    for entry in list_named_actors(all_namespaces=True):
        if entry.get("namespace") != NAMESPACE or not entry["name"].startswith(prefix):
            continue
        role = entry["name"][len(prefix) :]
        try:
            found[role] = lookup(pipeline, role)
        except LookupError:
            continue
    return found


def status(pipeline: str = DEFAULT_PIPELINE, timeout_s: float = 10.0) -> dict[str, Any]:
    """Every actor's state, counters and lag; trading state, open orders and positions."""
    import ray

    actors = running_actors(pipeline)
    if not actors:
        raise LookupError(f"no pipeline {pipeline!r} is running in namespace {NAMESPACE!r}")
    methods = {
        "journal": "status",
        "router": "status",
        "risk": "status",
        "stream": "status",
        "feed": "status",
    }
    refs = {}
    for role, handle in actors.items():
        method = methods.get(role, "info" if role.startswith("venue-") else None)
        if method:
            refs[role] = getattr(handle, method).remote()
    out: dict[str, Any] = {"pipeline": pipeline, "actors": {}}
    for role, ref in refs.items():
        try:
            out["actors"][role] = {"alive": True, **ray.get(ref, timeout=timeout_s)}
        except Exception as exc:
            out["actors"][role] = {"alive": False, "error": f"{type(exc).__name__}: {exc}"}
    risk = out["actors"].get("risk", {})
    router = out["actors"].get("router", {})
    stream = out["actors"].get("stream", {})
    feed = out["actors"].get("feed", {})
    out["trading_state"] = risk.get("trading_state")
    out["kill_switch"] = risk.get("kill_switch")
    out["open_orders"] = router.get("open_orders", [])
    out["positions"] = router.get("positions", {})
    out["feed_state"] = feed.get("state")
    out["finished"] = bool(stream.get("finished"))
    out["lag"] = {
        "feed_pace": feed.get("pace_lag"),
        "feed_round_trip": feed.get("round_trip"),
        **(stream.get("lag") or {}),
        "router_submit": router.get("submit_latency"),
        "risk_check": risk.get("check_latency"),
    }
    return out


def wait_until_finished(
    pipeline: str = DEFAULT_PIPELINE, timeout_s: float = 600.0, poll_s: float = 0.2
) -> dict[str, Any]:
    """Block until the feed has delivered its last batch (or failed); returns its status."""
    import ray

    feed = lookup(pipeline, Role.FEED)
    deadline = time.monotonic() + timeout_s
    while True:
        state = ray.get(feed.status.remote())
        if state["state"] in ("finished", "failed", "stopped"):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"pipeline {pipeline!r} still feeding after {timeout_s:g} s")
        time.sleep(poll_s)


def feed_status(pipeline: str = DEFAULT_PIPELINE) -> dict[str, Any]:
    """The feed's state and counters (rows sent, batches done): progress of a replay."""
    import ray

    return ray.get(lookup(pipeline, Role.FEED).status.remote())


def stop(pipeline: str = DEFAULT_PIPELINE) -> list[str]:
    """Stop the feed, log the router's FIX session out, then kill every actor of
    ``pipeline`` for good; returns their names."""
    import ray

    actors = running_actors(pipeline)
    feed = actors.get(str(Role.FEED))
    if feed is not None:
        with contextlib.suppress(Exception):  # a dead feed is stopped already
            ray.get(feed.stop.remote(), timeout=30)
    router = actors.get(str(Role.ROUTER))
    if router is not None:
        with contextlib.suppress(Exception):  # a FIX counterparty sees a Logout, not a drop
            ray.get(router.close.remote(), timeout=10)
    order = [str(Role.FEED), str(Role.STREAM), str(Role.RISK), str(Role.ROUTER)]
    ordered = [actors[r] for r in order if r in actors]
    ordered += [h for r, h in actors.items() if r not in order]
    kill_actors(ordered)
    return [actor_name(pipeline, r) for r in actors]


def kill_switch(
    pipeline: str = DEFAULT_PIPELINE, *, release: bool = False, reason: str = "operator"
) -> dict[str, Any]:
    import ray

    risk = lookup(pipeline, Role.RISK)
    if release:
        return ray.get(risk.release_kill_switch.remote(reason))
    return ray.get(risk.engage_kill_switch.remote(reason))


def cancel_all(pipeline: str = DEFAULT_PIPELINE, symbol: str | None = None) -> dict[str, Any]:
    import ray

    return ray.get(lookup(pipeline, Role.ROUTER).cancel_all.remote(symbol))


def submit_parent(
    pipeline: str,
    symbol: str,
    side: str,
    quantity: int,
    algo: str,
    params: dict[str, Any],
    *,
    minutes: float | None = None,
    parent_id: str | None = None,
    limit_price: float | None = None,
    lake_path: str | Path | None = None,
    profile_sessions: int = 20,
) -> dict[str, Any]:
    """Work a parent order with ``algo`` (twap, vwap, pov; ``actors.parent_orders.AlgoSpec``
    names the parameters) through the risk guard, which checks the whole parent against the
    strategy's account (the stream processor's view) before the router slices it. The window
    starts at the pipeline's now (its event time in a replay) and lasts ``minutes``, unless
    ``params`` give ``start_ns`` and ``end_ns``.

    A VWAP parent without a volume profile in ``params`` gets one learned from ``lake_path``:
    the symbol's bars in the ``profile_sessions`` sessions before the pipeline's day."""
    import ray

    from actors.parent_orders import ParentSpecError, vwap_profile_params
    from quant.execution.orders import Order, OrderType, Side

    stream = lookup(pipeline, Role.STREAM)
    view = ray.get(stream.account_view.remote())
    ts = int(view.get("now_ns") or 0)
    try:
        order_side = Side[side.upper()]
    except KeyError:
        raise ValueError(f"side must be buy or sell, got {side!r}") from None
    parent = Order(
        parent_id or f"PARENT-{symbol}-{ts}",
        symbol,
        order_side,
        int(quantity),
        OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
        limit_price,
        ts_ns=ts,
        strategy_id="operator",
    )
    problems = parent.problems()
    if problems:
        raise ValueError("; ".join(problems))
    params = dict(params)
    if algo == "vwap" and "full_day" not in params:
        if lake_path is None:
            raise ParentSpecError(
                "vwap needs a volume profile: give bucket_minutes and full_day, or a lake to "
                "learn it from"
            )
        day = date.fromisoformat(view["day"])
        params = {
            **vwap_profile_params(
                lake_path,
                symbol,
                day,
                sessions=profile_sessions,
                bucket_minutes=int(params.get("bucket_minutes", 5)),
            ),
            **{k: v for k, v in params.items() if k != "bucket_minutes"},
        }
    params.setdefault("start_ns", ts)
    if "end_ns" not in params and minutes is not None:
        params["end_ns"] = int(params["start_ns"]) + int(minutes * 60 * 1_000_000_000)
    risk = lookup(pipeline, Role.RISK)
    return ray.get(risk.submit_parent.remote(parent, algo, params, view))


def parent_status(pipeline: str, parent_id: str) -> dict[str, Any]:
    import ray

    return ray.get(lookup(pipeline, Role.ROUTER).parent_status.remote(parent_id))


# --- building a config from the lake ------------------------------------------------------------


WARMUP_DAYS = 45
"""Calendar days of bars before the day read for closes, bands, ADV and volatility (the
backtest's ``BacktestConfig.warmup_days``)."""
STATS_LOOKBACK = 20
"""Sessions behind the ADV and volatility (``BacktestConfig.stats_lookback``)."""
DEFAULT_VOLATILITY = 0.02


@dataclass
class ReplayHistory:
    """What a replayed day knows of the sessions before it, computed as the backtest does.

    ``bars``: the raw 1-minute bars of the ``WARMUP_DAYS`` before the day (the backtest of the
    day reads the same ones as its warm-up); ``research``: the last ``warmup_sessions`` of them
    as research bars (the features' history); ``closes``: each symbol's last close (bands);
    ``adv`` / ``volatility``: the backtest's ``DailyStats`` over the same sessions.
    """

    bars: pl.DataFrame
    research: pl.DataFrame | None
    closes: dict[str, float]
    adv: dict[str, float]
    volatility: dict[str, float]


def replay_history(
    lake_path: str | Path,
    symbols: list[str],
    day: date,
    interval: str,
    *,
    warmup_sessions: int = 5,
    warmup_days: int = WARMUP_DAYS,
    stats_lookback: int = STATS_LOOKBACK,
) -> ReplayHistory:
    """The history of ``day`` from the lake (see ``ReplayHistory``)."""
    from quant.data.lake import Lake
    from quant.research.dataset import resample_bars
    from quant.sim.backtest import DailyStats, _daily_aggregates, _with_day

    start = datetime.combine(day, datetime.min.time())
    try:
        history = Lake(lake_path).read_bars(
            symbols, start - timedelta(days=warmup_days), start, adjusted=False
        )
    except ValueError:
        history = pl.DataFrame()
    if history.height == 0:
        return ReplayHistory(history, None, {}, {}, {})
    daily = _daily_aggregates(_with_day(history))
    stats = DailyStats(stats_lookback, universe=len(symbols))
    closes: dict[str, float] = {}
    for (_d,), part in daily.group_by("day", maintain_order=True):
        names = part["symbol"].to_list()
        vols = dict(zip(names, part["volume"].to_list(), strict=True))
        last = dict(zip(names, part["close"].to_list(), strict=True))
        stats.end_session(vols, last)
        closes.update(last)
    adv = {s: a for s in symbols if (a := stats.adv(s)) is not None and a > 0}
    volatility = {s: v for s in symbols if (v := stats.volatility(s)) is not None}
    days = history.with_columns(pl.col("ts").dt.date().alias("_d"))
    keep = sorted(days["_d"].unique().to_list())[-warmup_sessions:] if warmup_sessions else []
    recent = days.filter(pl.col("_d").is_in(keep)).drop("_d")
    research = resample_bars(recent, interval) if recent.height else None
    return ReplayHistory(history, research, closes, adv, volatility)


def model_interval(model: dict[str, Any]) -> str:
    """The research bar interval of a model spec (the features' history is in that unit)."""
    from actors.stream_processor import build_model

    _, params = build_model(model)
    return params.bar_interval


def lake_replay_config(
    lake_path: str | Path,
    day: date,
    journal_path: str | Path,
    *,
    symbols: list[str] | None = None,
    warmup_sessions: int = 5,
    **options: Any,
) -> PipelineConfig:
    """A pipeline replaying ``day``'s trades from the lake: symbols with trades that day, the
    previous session's closes (price bands), the ADV and volatility of the sessions before
    (impact, fat-finger check) and research bars of the last sessions (feature warm-up), as
    the backtest of the day has them."""
    from quant.data.lake import Lake

    lake = Lake(lake_path)
    start = datetime.combine(day, datetime.min.time())
    trades = (
        lake.scan("trades", symbols, start, start + timedelta(days=1)).select("symbol").collect()
    )
    if trades.height == 0:
        raise ValueError(f"the lake at {lake_path} has no trades on {day}")
    found = sorted(trades["symbol"].unique().to_list())
    model = options.get("model") or {}
    source = WarmupSource(str(lake_path), tuple(found), day, model_interval(model), warmup_sessions)
    history = replay_history(
        lake_path, found, day, source.interval, warmup_sessions=warmup_sessions
    )
    return PipelineConfig(
        feed=FeedSpec("lake", str(lake_path), day, found),
        journal_path=str(journal_path),
        symbols=found,
        day=day,
        previous_closes=history.closes,
        adv=history.adv,
        volatility=history.volatility,
        warmup=history.research,
        warmup_source=source,
        **options,
    )


@dataclass
class ReplayResult:
    """A replayed day: every order the pipeline decided and every fill, from the journal."""

    day: date
    orders: pl.DataFrame
    fills: pl.DataFrame
    status: dict[str, Any]
    seconds: float


ORDER_COLUMNS = {
    "client_order_id": pl.String,
    "symbol": pl.String,
    "side": pl.String,
    "quantity": pl.Int64,
    "limit_price": pl.Float64,
    "ts_ns": pl.Int64,
    "status": pl.String,
    "filled": pl.Int64,
    "avg_price": pl.Float64,
    "reject_code": pl.String,
    "reason": pl.String,
}
"""Orders of a run, live or backtest (``actors.parity`` compares them): one row per order the
strategy sent, risk rejections included, in the order sent."""
FILL_COLUMNS = {
    "client_order_id": pl.String,
    "symbol": pl.String,
    "side": pl.String,
    "last_qty": pl.Int64,
    "last_price": pl.Float64,
    "fees": pl.Float64,
    "ts_ns": pl.Int64,
}


def collect_result(
    journal_path: str | Path, day: date, status_: dict[str, Any], seconds: float
) -> ReplayResult:
    """Orders (risk decisions, staging and their reports) and fills of a run, from its journal.

    An order the risk guard rejected never reaches the router's outbox; it is listed from its
    journaled decision (status REJECTED with the guard's code), as the backtest lists it."""
    from actors.journal import Journal, decision_from_dict, order_from_dict
    from quant.execution.orders import OrderStatus

    with Journal(journal_path) as j:
        state = j.rebuild()
        fills = [e.payload for e in j.events(kinds=["fill"])]
        decisions = j.events(kinds=["risk_decision"])
    rows: dict[str, dict[str, Any]] = {}
    for e in decisions:
        order = order_from_dict(e.payload["order"])
        decision = decision_from_dict(e.payload["decision"])
        if decision.accepted:
            continue
        rows[order.client_order_id] = {
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side.name,
            "quantity": order.quantity,
            "limit_price": order.limit_price,
            "ts_ns": order.ts_ns,
            "status": str(OrderStatus.REJECTED),
            "filled": 0,
            "avg_price": 0.0,
            "reject_code": _text(decision.code),
            "reason": decision.reason or "",
        }
    for cid, st in state.orders.items():
        rows[cid] = {
            "client_order_id": cid,
            "symbol": st.order.symbol,
            "side": st.order.side.name,
            "quantity": st.order.quantity,
            "limit_price": st.order.limit_price,
            "ts_ns": st.order.ts_ns,
            "status": str(st.status),
            "filled": st.filled_qty,
            "avg_price": st.avg_price,
            "reject_code": _text(st.reject_code),
            "reason": st.reason or "",
        }
    ordered = sorted(rows.values(), key=lambda r: (r["ts_ns"], r["client_order_id"]))
    orders = pl.DataFrame(ordered or None, schema=ORDER_COLUMNS)
    fill_frame = pl.DataFrame(
        [
            {
                "client_order_id": f["client_order_id"],
                "symbol": f.get("symbol", ""),
                "side": _side_name(f.get("side")),
                "last_qty": int(f["last_qty"]),
                "last_price": float(f["last_price"]),
                "fees": float(f.get("fees", 0.0)),
                "ts_ns": int(f["ts_ns"]),
            }
            for f in fills
        ]
        or None,
        schema=FILL_COLUMNS,
    )
    return ReplayResult(day, orders, fill_frame, status_, seconds)


def _side_name(side: Any) -> str:
    """``Side`` as journaled (its name, its value or the enum) to ``BUY`` / ``SELL``."""
    from quant.execution.orders import Side

    if isinstance(side, Side):
        return side.name
    if isinstance(side, str):
        return Side[side].name if side in Side.__members__ else side
    if isinstance(side, int):
        return Side(side).name
    return "" if side is None else str(side)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def replay_day(
    config: PipelineConfig, timeout_s: float = 900.0, keep: bool = False
) -> ReplayResult:
    """Run ``config``'s day through the actors to the end; returns orders and fills."""
    started = time.monotonic()
    start_pipeline(config)
    try:
        wait_until_finished(config.pipeline, timeout_s)
        final = status(config.pipeline)
    finally:
        if not keep:
            stop(config.pipeline)
    return collect_result(config.journal_path, config.day, final, time.monotonic() - started)


def model_spec(settings: Any) -> dict[str, Any]:
    """The registry's production model of ``settings.paper.model_name`` if there is one, else
    the transparent momentum rule (said so in ``status``: the model's name is reported)."""
    from quant.models.registry import ModelRegistry

    root = Path(settings.home) / "registry"
    name = settings.paper.model_name
    if root.exists():
        try:
            ModelRegistry(str(root)).get(name, stage="production")
        except (KeyError, ValueError):
            pass
        else:
            return {"kind": "registry", "root": str(root.resolve()), "name": name}
    return {"kind": "momentum"}


def last_trade_day(lake_path: str | Path) -> date:
    """The last day with trades in the lake (what ``paper start`` replays by default)."""
    from quant.data.lake import Lake

    parts = Lake(lake_path).partitions("trades")
    if not parts:
        raise ValueError(
            f"the lake at {lake_path} holds no trades to replay; run `smart-trader data generate`"
        )
    days = Lake(lake_path).summary().filter(pl.col("kind") == "trades")
    return max(days["last_day"].to_list())


def paper_config(
    settings: Any,
    day: date | None = None,
    speed: float | None = None,
    *,
    detached: bool = True,
    model: dict[str, Any] | None = None,
) -> PipelineConfig:
    """The pipeline ``smart-trader paper start`` runs: a lake day replayed through the actors,
    with a fresh journal per run under ``home/paper/``; ``model`` overrides the production
    model (``model_spec``)."""
    paper = settings.paper
    day = day or last_trade_day(settings.lake_path)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    journal = Path(settings.home) / "paper" / f"{paper.pipeline}-{day.isoformat()}-{stamp}.sqlite"
    return lake_replay_config(
        settings.lake_path,
        day,
        journal.resolve(),
        pipeline=paper.pipeline,
        model=model if model is not None else model_spec(settings),
        speed=speed if speed is not None else paper.speed,
        batch_rows=paper.batch_rows,
        max_in_flight=paper.max_in_flight,
        initial_cash=paper.initial_cash,
        venues=list(paper.venues),
        allowed_lateness_ms=paper.allowed_lateness_ms,
        late_policy=paper.late_policy,
        router={
            "timeout_s": paper.venue_timeout_s,
            "breaker_failures": paper.breaker_failures,
            "breaker_reset_s": paper.breaker_reset_s,
        },
        fix=fix_spec(settings, journal.parent) if FIX_VENUE in paper.venues else None,
        detached=detached,
    )


def fix_spec(settings: Any, data_dir: Path) -> dict[str, Any]:
    """The router's FIX venue from ``settings.venues.fix`` and ``settings.vault``: references
    only (the router resolves them when it logs on)."""
    return {
        "settings": settings.venues.fix.model_dump(),
        "vault": settings.vault.model_dump(),
        "data_dir": str((Path(data_dir) / "fix").resolve()),
    }
