"""Parent orders in the OrderRouter: a TWAP parent sliced on the bar clock of a replayed day,
the router killed mid-parent, no child sent twice, the parent completed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from actors import pipeline as pl_  # noqa: E402
from actors.common import Role, lookup  # noqa: E402
from actors.feed import FeedSpec, SimulatedBistFeed  # noqa: E402
from actors.journal import EventKind, Journal  # noqa: E402
from actors.parent_orders import AlgoSpec, markets_from_bars  # noqa: E402
from quant.data.lake import Lake  # noqa: E402
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig  # noqa: E402
from quant.execution.orders import Order, OrderType, RejectCode, Side  # noqa: E402
from quant.market.calendar import ISTANBUL  # noqa: E402
from quant.sim.matching import to_ns  # noqa: E402

SYNTHETIC = {"n_symbols": 3, "seed": 11, "trades_per_day": 400, "n_sessions": 3}
QUIET_MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.95},
}
"""The strategy stays (almost) out of the way: the parent is what is being tested."""
SYMBOL = "SYN02"
OTHER = "SYN01"


@pytest.fixture
def pipelines(ray_session: None) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for name in started:
        pl_.stop(name)


def _expected_children(feed: SimulatedBistFeed, parent: Order, spec: AlgoSpec) -> list[Order]:
    """The children the TWAP owes on the day's one-minute bars, computed without actors: the
    same algorithm on the bars the stream processor builds, at each bar slice's close."""
    from quant.data.stream import TickStreamProcessor

    ticks = TickStreamProcessor(sorted(feed.frame["symbol"].unique().to_list()))
    bars = ticks.process(feed.frame).bars + ticks.flush().bars
    slices: dict[int, list[Any]] = {}
    for bar in bars:
        slices.setdefault(bar.ts_end_ns, []).append(bar)
    algo = spec.build()
    start, end = spec.window()
    algo.start(parent, start, end, spec.context())
    out: list[Order] = []
    for ts in sorted(slices):
        market = markets_from_bars(slices[ts], ts).get(parent.symbol)
        if market is not None:
            out += algo.on_time(ts, market)
    return out


def _config(tmp_path: Path, feed: SimulatedBistFeed, prefix: str, **extra: Any) -> Any:
    """A replay of the synthetic day, fast, one small batch in flight, started by the test."""
    return pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(SYNTHETIC)),
        journal_path=str(tmp_path / "journal.sqlite"),
        symbols=sorted(feed.frame["symbol"].unique().to_list()),
        day=feed.day,
        pipeline=f"{prefix}-{int(time.time() * 1000) % 100000}",
        model=QUIET_MODEL,
        speed=2000.0,
        batch_rows=50,
        max_in_flight=1,
        max_participation=1.0,
        autostart=False,
        router={"timeout_s": 2.0},
        **extra,
    )


def test_a_twap_parent_survives_a_router_restart_without_duplicate_children(
    tmp_path: Path, pipelines: list[str]
) -> None:
    feed = SimulatedBistFeed(**SYNTHETIC)
    day = feed.day
    start = to_ns(datetime.combine(day, clock_time(10, 30), ISTANBUL))
    end = to_ns(datetime.combine(day, clock_time(17, 30), ISTANBUL))
    spec = AlgoSpec(
        "twap",
        {
            "slices": 6,
            "start_ns": start,
            "end_ns": end,
            "pricing": {"reference": "last", "offset_ticks": 3},
        },
    )
    parent = Order("PARENT-1", SYMBOL, Side.BUY, 600, order_type=OrderType.MARKET, ts_ns=start)
    expected = _expected_children(feed, parent, spec)
    assert len(expected) == 6  # one child per slice: the symbol trades in every slice
    config = _config(tmp_path, feed, "par")
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    router = lookup(config.pipeline, Role.ROUTER)
    venue = lookup(config.pipeline, f"{Role.VENUE}-paper")
    accepted = ray.get(router.submit_parent.remote(parent, spec.algo, dict(spec.params)))
    assert accepted["status"] == "pending", accepted
    again = ray.get(router.submit_parent.remote(parent, spec.algo, dict(spec.params)))
    assert again["repeat"] and again["children"] == []
    ray.get(lookup(config.pipeline, Role.FEED).start.remote())

    deadline = time.monotonic() + 120
    while len(ray.get(router.parent_status.remote(parent.client_order_id))["children"]) < 2:
        assert time.monotonic() < deadline, "the parent sent no second child"
        time.sleep(0.02)
    sent_before_kill = ray.get(router.parent_status.remote(parent.client_order_id))["children"]
    assert len(sent_before_kill) < len(expected)  # killed mid-parent
    ray.kill(router, no_restart=False)

    state = pl_.wait_until_finished(config.pipeline, timeout_s=300)
    assert state["state"] == "finished", state
    status = ray.get(router.status.remote())
    assert status["restarted"]
    recovery = status["recovery"]
    assert recovery["parents"] == 1
    assert recovery["children_regenerated"] >= len(sent_before_kill)
    assert recovery["children_not_in_journal"] == []

    # the children, on schedule: what the algorithm owes on the same bars, ids and all
    with Journal(config.journal_path) as j:
        staged = [
            e.payload["order"]
            for e in j.events(kinds=[EventKind.ORDER_STAGED])
            if e.key.startswith(parent.client_order_id + "-")
        ]
        claims = [
            e.key
            for e in j.events(kinds=[EventKind.ORDER_SENT])
            if e.key.startswith(parent.client_order_id + "-")
        ]
        journal_state = j.rebuild()
    got = [(o["client_order_id"], o["ts_ns"], o["quantity"], o["limit_price"]) for o in staged]
    want = [(c.client_order_id, c.ts_ns, c.quantity, c.limit_price) for c in expected]
    assert got == want
    assert sorted(claims) == sorted(c.client_order_id for c in expected)  # each sent once
    received = ray.get(venue.received_ids.remote())
    children = {c.client_order_id for c in expected}
    assert {cid: n for cid, n in received.items() if cid in children} == dict.fromkeys(children, 1)

    # the parent completed: every share filled, through its children
    final = status["parents"][parent.client_order_id]
    assert final["status"] == "completed", final
    assert final["filled"] == parent.quantity and final["done"]
    assert sum(journal_state.orders[cid].filled_qty for cid in children) == parent.quantity
    assert not journal_state.problems


def test_parents_pass_the_risk_guard_and_the_kill_switch_stops_them(
    tmp_path: Path, pipelines: list[str]
) -> None:
    """A parent is checked whole by the risk guard (one over the order-size limit is refused
    with its reject code and never reaches the router); an accepted one is sliced until the
    kill switch, which stops it: no child is staged after the switch, and the stop is
    journaled so a restarted router keeps it stopped."""
    feed = SimulatedBistFeed(**SYNTHETIC)
    day = feed.day
    start = to_ns(datetime.combine(day, clock_time(10, 30), ISTANBUL))
    config = _config(tmp_path, feed, "pks", risk_limits={"max_order_quantity": 1_000})
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    risk = lookup(config.pipeline, Role.RISK)
    router = lookup(config.pipeline, Role.ROUTER)
    stream = lookup(config.pipeline, Role.STREAM)
    ray.get(lookup(config.pipeline, Role.FEED).start.remote())
    deadline = time.monotonic() + 120
    while ray.get(stream.account_view.remote())["now_ns"] < start:  # the session is under way
        assert time.monotonic() < deadline, "the stream processor saw no bar"
        time.sleep(0.02)

    # as `smart-trader paper parent submit` does: the window from the pipeline's now
    refused = pl_.submit_parent(
        config.pipeline,
        SYMBOL,
        "buy",
        5_000,
        "twap",
        {"slices": 12},
        minutes=300,
        parent_id="PARENT-BIG",
    )
    assert refused["status"] == "rejected", refused
    assert refused["reject_code"] == str(RejectCode.ORDER_SIZE), refused
    assert ray.get(router.parent_status.remote("PARENT-BIG"))["status"] == "unknown"
    accepted = pl_.submit_parent(
        config.pipeline,
        SYMBOL,
        "buy",
        600,
        "twap",
        {"slices": 12},
        minutes=300,
        parent_id="PARENT-K",
    )
    assert accepted["status"] in ("pending", "working"), accepted
    # a VWAP parent as `paper parent submit --algo vwap` sends it: its volume profile learned
    # from the lake's bars of the sessions before the day
    lake = tmp_path / "lake"
    market = SyntheticMarket(
        SyntheticMarketConfig(
            n_symbols=SYNTHETIC["n_symbols"],
            n_sessions=SYNTHETIC["n_sessions"],
            seed=SYNTHETIC["seed"],
            trades_per_day=SYNTHETIC["trades_per_day"],
        )
    )
    Lake(lake).write("bars", market.minute_bars())
    vwap = pl_.submit_parent(
        config.pipeline,
        OTHER,
        "buy",
        300,
        "vwap",
        {},
        minutes=300,
        parent_id="PARENT-V",
        lake_path=lake,
    )
    assert vwap["status"] in ("pending", "working"), vwap
    with pytest.raises(ValueError, match="vwap needs a volume profile"):
        pl_.submit_parent(config.pipeline, OTHER, "buy", 300, "vwap", {}, minutes=300)
    while len(ray.get(router.parent_status.remote("PARENT-K"))["children"]) < 2:
        assert time.monotonic() < deadline, "the parent sent no second child"
        time.sleep(0.02)
    switched = ray.get(risk.engage_kill_switch.remote("drill"))
    assert sorted(switched["cancel_all"]["parents_stopped"]) == ["PARENT-K", "PARENT-V"]
    at_switch = ray.get(router.parent_status.remote("PARENT-K"))
    assert at_switch["status"] == "stopped" and at_switch["working"] == 0, at_switch
    vwap_at_switch = ray.get(router.parent_status.remote("PARENT-V"))
    assert vwap_at_switch["status"] == "stopped" and vwap_at_switch["children"], vwap_at_switch

    state = pl_.wait_until_finished(config.pipeline, timeout_s=300)
    assert state["state"] == "finished", state
    after = ray.get(router.parent_status.remote("PARENT-K"))
    assert after["children"] == at_switch["children"]  # nothing sliced after the switch
    assert after["filled"] < 600
    vwap_after = ray.get(router.parent_status.remote("PARENT-V"))
    assert vwap_after["children"] == vwap_at_switch["children"]
    with Journal(config.journal_path) as j:
        staged = [
            e.key for e in j.events(kinds=[EventKind.ORDER_STAGED]) if e.key.startswith("PARENT-")
        ]
        stops = [e.key for e in j.events(kinds=["parent_stopped"])]
        started = {e.key: e.payload for e in j.events(kinds=["parent_started"])}
        decisions = {e.key for e in j.events(kinds=["risk_decision"])}
    assert sorted(staged) == sorted(at_switch["children"] + vwap_at_switch["children"])
    assert sorted(stops) == ["PARENT-K", "PARENT-V"]
    assert len(started["PARENT-V"]["params"]["full_day"]) == 288  # 5-minute buckets
    assert {"PARENT-BIG", "PARENT-K"} <= decisions

    ray.kill(router, no_restart=False)  # a restarted router replays the stop
    deadline = time.monotonic() + 60
    while True:
        try:
            restored = ray.get(router.parent_status.remote("PARENT-K"), timeout=10)
            break
        except ray.exceptions.RayActorError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert restored["status"] == "stopped" and restored["children"] == at_switch["children"]
