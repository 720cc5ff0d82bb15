"""Losing the worker node that hosts the StreamProcessor, on a multi-node Ray cluster.

``ray.cluster_utils.Cluster`` on 127.0.0.1: a head holding the journal, feed, risk guard, router
and paper venue (custom resource ``head``), and two worker nodes able to host the stream
processor (custom resource ``stream_host``). The node running the processor is removed
mid-stream; Ray restarts the actor on the other worker, where it restores its checkpoint from
the journal, and the call in flight is retried there. What must hold: the stream resumes after
the last processed sequence number (every tick accepted exactly once, every bar built once)
and no order reaches the venue twice.
"""

from __future__ import annotations

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
from cluster.runtime import loopback_only  # noqa: E402

SYNTHETIC = {"n_symbols": 3, "seed": 11, "trades_per_day": 400, "n_sessions": 3}
MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.55},
}
ON_HEAD = {"resources": {"head": 1}}


@pytest.fixture
def three_nodes(
    no_shared_ray: None, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[Any]]]:
    """A head for the pipeline's other actors and two worker nodes for the stream processor,
    all on 127.0.0.1; the driver is connected to it."""
    from ray.cluster_utils import Cluster

    (short_tmp / "ray").mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(short_tmp))
    loopback_only()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"head": 100}, "include_dashboard": False},
    )
    try:
        workers = [cluster.add_node(num_cpus=0, resources={"stream_host": 1}) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def _node_of(handle: Any) -> str:
    return ray.get(
        handle.__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
    )


def _expected(feed: SimulatedBistFeed) -> tuple[int, int, dict[str, int]]:
    """Ticks accepted, minute bars built and last sequence number per symbol when the day is
    processed once, without actors."""
    from quant.data.stream import TickStreamProcessor

    symbols = sorted(feed.frame["symbol"].unique().to_list())
    ticks = TickStreamProcessor(symbols)
    bars = len(ticks.process(feed.frame).bars) + len(ticks.flush().bars)
    last = feed.frame.group_by("symbol").agg(pl.col("seq").max())
    last_seq = dict(zip(last["symbol"].to_list(), last["seq"].to_list(), strict=True))
    return feed.frame.height, bars, last_seq


def test_losing_the_stream_processors_node_resumes_after_the_last_sequence_number(
    three_nodes: tuple[Any, list[Any]], tmp_path: Path
) -> None:
    cluster, workers = three_nodes
    feed = SimulatedBistFeed(**SYNTHETIC)
    rows, bars, last_seq = _expected(feed)
    config = pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(SYNTHETIC)),
        journal_path=str(tmp_path / "journal.sqlite"),
        symbols=sorted(feed.frame["symbol"].unique().to_list()),
        day=feed.day,
        pipeline=f"node-{int(time.time() * 1000) % 100000}",
        model=MODEL,
        speed=1000.0,
        batch_rows=25,
        max_in_flight=1,
        autostart=False,
        router={"timeout_s": 5.0},
        placement={
            "journal": ON_HEAD,
            "venue": ON_HEAD,
            "router": ON_HEAD,
            "risk": ON_HEAD,
            "feed": ON_HEAD,
            "stream": {"resources": {"stream_host": 1}},
        },
    )
    try:
        pl_.start_pipeline(config)
        stream = lookup(config.pipeline, Role.STREAM)
        feed_actor = lookup(config.pipeline, Role.FEED)
        venue = lookup(config.pipeline, f"{Role.VENUE}-paper")
        first_node = _node_of(stream)
        victim = next(w for w in workers if w.node_id == first_node)
        ray.get(feed_actor.start.remote())

        # mid-stream: some batches processed, most of the day still to come
        deadline = time.monotonic() + 180
        while ray.get(stream.status.remote())["counters"]["batches"] < 8:
            assert time.monotonic() < deadline, "the stream processed nothing"
            time.sleep(0.05)
        at_kill = ray.get(stream.checkpoints.remote())
        assert sum(at_kill.values()) < sum(last_seq.values())
        cluster.remove_node(victim)

        state = pl_.wait_until_finished(config.pipeline, timeout_s=600)
        assert state["state"] == "finished", state
        assert state["error"] is None
        status = ray.get(stream.status.remote())
        assert status["restarted"]
        assert _node_of(stream) != first_node  # restarted on the surviving worker
        # resumed after the last processed sequence number: nothing skipped, nothing twice
        final = ray.get(stream.checkpoints.remote())
        assert final == last_seq
        assert all(final[s] >= at_kill.get(s, -1) for s in final)
        ticks = status["ticks"]
        assert ticks["accepted"] == rows
        assert ticks.get("quarantined.LATE", 0) == 0
        assert status["counters"]["bars"] == bars
        assert status["finished"]

        # no order reached the venue twice, and every accepted order reached it
        received = ray.get(venue.received_ids.remote())
        assert all(n == 1 for n in received.values()), received
        with Journal(config.journal_path) as j:
            decisions = j.events(kinds=["risk_decision"])
            journal_state = j.rebuild()
        accepted = {e.key for e in decisions if e.payload["decision"]["accepted"]}
        assert accepted == set(received)
        assert not journal_state.problems, journal_state.problems
        assert status["positions"] == {s: q for s, q in journal_state.positions.items() if q}
    finally:
        pl_.stop(config.pipeline)
