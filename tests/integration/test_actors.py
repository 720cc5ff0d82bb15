"""The trading actors on a local Ray: a synthetic session through feed -> stream -> risk ->
router -> paper venue, with the journal as the record; faults injected mid-stream.

Each test runs its own pipeline (a unique name, its own journal file) on the shared Ray, and
stops it at the end. The feed is the synthetic BIST market (``SimulatedBistFeed``): three
symbols, a few hundred trades each; the signal model is the transparent momentum rule, which
trades often enough on such a day to exercise orders and fills.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from actors import pipeline as pl_  # noqa: E402
from actors.common import Role, lookup  # noqa: E402
from actors.feed import FeedSpec, SimulatedBistFeed  # noqa: E402
from actors.journal import Journal  # noqa: E402

_names = itertools.count()

SYNTHETIC = {"n_symbols": 3, "seed": 11, "trades_per_day": 400, "n_sessions": 3}
MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.55},
}


def _config(tmp_path: Path, **options: Any) -> pl_.PipelineConfig:
    feed = SimulatedBistFeed(**SYNTHETIC)
    symbols = sorted(feed.frame["symbol"].unique().to_list())
    defaults: dict[str, Any] = {
        "pipeline": f"t{next(_names)}-{int(time.time() * 1000) % 100000}",
        "model": MODEL,
        "batch_rows": 200,
        "max_in_flight": 2,
        "detached": True,
        "router": {"timeout_s": 2.0},
    }
    defaults.update(options)
    return pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(SYNTHETIC)),
        journal_path=str(tmp_path / "journal.sqlite"),
        symbols=symbols,
        day=feed.day,
        **defaults,
    )


@pytest.fixture
def pipelines(ray_session: None) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for name in started:
        pl_.stop(name)


def _venue(name: str, venue: str = "paper") -> Any:
    return lookup(name, f"{Role.VENUE}-{venue}")


def _journal_state(path: str) -> Any:
    with Journal(path) as j:
        return j.rebuild(), j.events(kinds=["fill"]), j.events(kinds=["risk_decision"])


def _assert_consistent(config: pl_.PipelineConfig, venues: list[str]) -> dict[str, int]:
    """Every order at most once at each venue, journal positions = the strategy's book."""
    state, _, _ = _journal_state(config.journal_path)
    received: dict[str, int] = {}
    for v in venues:
        got = ray.get(_venue(config.pipeline, v).received_ids.remote())
        assert all(n == 1 for n in got.values()), f"duplicates at {v}: {got}"
        overlap = set(got) & set(received)
        assert not overlap, f"orders at two venues: {overlap}"
        received.update(got)
    sent = {cid for cid, vs in state.sent.items()}
    assert set(received) <= sent, "a venue holds an order the journal never claimed"
    stream = ray.get(lookup(config.pipeline, Role.STREAM).status.remote())
    assert stream["positions"] == {s: q for s, q in state.positions.items() if q}
    assert not state.problems, state.problems
    return received


def test_replay_through_the_actors_journals_orders_and_fills(tmp_path: Path, pipelines: list[str]):
    config = _config(tmp_path)
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    feed = pl_.wait_until_finished(config.pipeline, timeout_s=300)
    assert feed["state"] == "finished", feed
    status = pl_.status(config.pipeline)
    stream = status["actors"]["stream"]
    assert stream["finished"]
    assert stream["counters"]["bars"] > 0
    assert stream["counters"]["signals"] > 0
    assert stream["ticks"]["received"] == feed["rows_sent"]
    assert feed["max_in_flight_seen"] <= config.max_in_flight
    received = _assert_consistent(config, ["paper"])
    state, fills, decisions = _journal_state(config.journal_path)
    assert received, "the strategy sent no order to the venue"
    assert fills, "no fill was journaled"
    assert len(decisions) >= len(received)
    # every fill came from a bar after the one its order was decided on
    orders = {cid: st.order for cid, st in state.orders.items()}
    for e in fills:
        assert e.ts_ns > orders[e.key].ts_ns
    result = pl_.collect_result(config.journal_path, config.day, status, 0.0)
    assert result.fills.height == len(fills)
    assert result.orders.height == len(state.orders)


def test_malformed_ticks_are_quarantined_and_counted(tmp_path: Path, pipelines: list[str]):
    config = _config(tmp_path, autostart=False)
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    stream = lookup(config.pipeline, Role.STREAM)
    good = SimulatedBistFeed(**SYNTHETIC).frame
    head = good.head(50)
    first = head.row(10, named=True)
    bad = pl.DataFrame(
        [
            first | {"seq": 10_000, "price": float("nan")},
            first | {"seq": 10_001, "price": -5.0},
            first | {"seq": 10_002, "symbol": "NOPE"},
            first | {"seq": 10_003, "size": 0},
            head.row(3, named=True),  # a duplicate sequence number
        ],
        schema=head.schema,
    )
    late = head.row(0, named=True) | {"seq": 10_004}  # older than the watermark
    from actors.feed import TickBatch

    ray.get(stream.process.remote(TickBatch(0, head)))
    ray.get(stream.process.remote(TickBatch(1, bad)))
    ray.get(stream.process.remote(TickBatch(2, pl.DataFrame([late], schema=head.schema))))
    ray.get(stream.process.remote(TickBatch(3, "not a frame")))  # type: ignore[arg-type]
    status = ray.get(stream.status.remote())
    ticks = status["ticks"]
    assert ticks["quarantined.NON_POSITIVE"] >= 2  # negative price, zero size
    assert ticks["quarantined.UNKNOWN_SYMBOL"] == 1
    assert ticks["quarantined.DUPLICATE"] == 1
    assert ticks["quarantined.LATE"] == 1
    assert ticks["quarantined.SCHEMA"] >= 1
    assert ticks["quarantined"] >= 7
    assert ticks["accepted"] == 50
    assert ray.get(stream.ready.remote())  # still alive, nothing crashed


def test_killing_risk_guard_and_router_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, pipelines: list[str]
):
    config = _config(tmp_path, speed=None, batch_rows=50, max_in_flight=1)
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    feed = lookup(config.pipeline, Role.FEED)
    risk = lookup(config.pipeline, Role.RISK)
    router = lookup(config.pipeline, Role.ROUTER)
    venue = _venue(config.pipeline)

    def orders_at_venue() -> int:
        return len(ray.get(venue.received_ids.remote()))

    deadline = time.monotonic() + 120
    while orders_at_venue() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert orders_at_venue() >= 2, "no order reached the venue before the kill"
    ray.kill(risk, no_restart=False)
    time.sleep(0.3)
    ray.kill(router, no_restart=False)
    state = pl_.wait_until_finished(config.pipeline, timeout_s=300)
    assert state["state"] == "finished", state
    status = pl_.status(config.pipeline)
    assert status["actors"]["risk"]["restarted"]
    assert status["actors"]["router"]["restarted"]
    received = _assert_consistent(config, ["paper"])
    _, _, decisions = _journal_state(config.journal_path)
    accepted = {e.key for e in decisions if e.payload["decision"]["accepted"]}
    assert accepted == set(received), "an accepted order never reached the venue"
    assert len(received) > 2
    assert not status["actors"]["router"]["breaks"], status["actors"]["router"]["breaks"]
    assert ray.get(feed.status.remote())["error"] is None


def test_kill_switch_cancels_open_orders_and_blocks_new_ones(tmp_path: Path, pipelines: list[str]):
    config = _config(tmp_path, batch_rows=50, max_in_flight=1, autostart=False)
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    risk = lookup(config.pipeline, Role.RISK)
    router = lookup(config.pipeline, Role.ROUTER)
    stream = lookup(config.pipeline, Role.STREAM)
    feed = lookup(config.pipeline, Role.FEED)
    ray.get(feed.start.remote())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ray.get(router.status.remote())["open_orders"]:
            break
        time.sleep(0.02)
    out = ray.get(risk.engage_kill_switch.remote("test drill"))
    assert out["cancel_all"]["complete"], out
    assert ray.get(router.status.remote())["open_orders"] == []
    before = len(ray.get(_venue(config.pipeline).received_ids.remote()))
    pl_.wait_until_finished(config.pipeline, timeout_s=300)
    after = ray.get(_venue(config.pipeline).received_ids.remote())
    assert len(after) == before, "an order reached the venue with the kill switch engaged"
    risk_status = ray.get(risk.status.remote())
    assert risk_status["kill_switch"]["reason"] == "test drill"
    stream_status = ray.get(stream.status.remote())
    assert stream_status["open_orders"] == []
    if stream_status["counters"]["orders_rejected"]:
        assert risk_status["rejects_by_code"].get("KILL_SWITCH", 0) >= 1


def test_a_venue_that_stops_answering_opens_its_circuit_and_orders_reroute(
    tmp_path: Path, pipelines: list[str]
):
    config = _config(
        tmp_path,
        venues=["a", "b"],
        batch_rows=50,
        max_in_flight=1,
        autostart=False,
        venue_stall_s=1.0,
        router={
            "timeout_s": 0.3,
            "breaker_failures": 2,
            "breaker_reset_s": 60.0,
            "retry_attempts": 2,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.05,
            "max_wait_s": 3.0,
        },
    )
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    a, b = _venue(config.pipeline, "a"), _venue(config.pipeline, "b")
    router = lookup(config.pipeline, Role.ROUTER)
    ray.get(a.set_answering.remote(False))
    ray.get(lookup(config.pipeline, Role.FEED).start.remote())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = ray.get(router.status.remote())["venues"]
        if health["a"]["breaker"] == "open" and ray.get(b.received_ids.remote()):
            break
        time.sleep(0.05)
    status = ray.get(router.status.remote())
    assert status["venues"]["a"]["breaker"] == "open", status["venues"]
    assert ray.get(b.received_ids.remote()), "nothing was re-routed to venue b"
    ray.get(a.set_answering.remote(True))
    pl_.wait_until_finished(config.pipeline, timeout_s=300)
    received = _assert_consistent(config, ["a", "b"])
    assert received
