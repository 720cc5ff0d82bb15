"""A killed ``StreamProcessor`` comes back with its features, not cold.

The processor checkpoints the streaming features' kernel state and the research bars being
built with its tick-stream snapshot; a restarted one (Ray re-creates it, ``max_restarts``)
loads them and resumes after the last processed sequence number. The proof: the signals it
journals after the restart equal, value for value, those of a run that was never interrupted
(a cold restart would score the later research bars from warm-up state and differ).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from actors import pipeline as pl_  # noqa: E402
from actors.common import Role, lookup  # noqa: E402
from actors.feed import FeedSpec, SimulatedBistFeed  # noqa: E402
from actors.journal import Journal  # noqa: E402

SYNTHETIC = {"n_symbols": 3, "seed": 11, "trades_per_day": 400, "n_sessions": 3}
MODEL = {"kind": "momentum", "scale": 400.0, "params": {"bar_interval": "5m"}}
_names = itertools.count()


def _config(tmp_path: Path, tag: str) -> pl_.PipelineConfig:
    feed = SimulatedBistFeed(**SYNTHETIC)
    return pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(SYNTHETIC)),
        journal_path=str(tmp_path / f"{tag}.sqlite"),
        symbols=sorted(feed.frame["symbol"].unique().to_list()),
        day=feed.day,
        pipeline=f"rec-{tag}-{next(_names)}-{int(time.time() * 1000) % 100000}",
        model=MODEL,
        batch_rows=40,
        max_in_flight=1,
        detached=True,
        autostart=False,
        router={"timeout_s": 2.0},
    )


def _signals(path: str) -> dict[str, Any]:
    with Journal(path) as j:
        return {e.idempotency_key: e.payload for e in j.events(kinds=["signal"])}


def test_a_restarted_stream_processor_resumes_with_its_features(
    tmp_path: Path, ray_session: None
) -> None:
    clean = _config(tmp_path, "clean")
    killed = _config(tmp_path, "killed")
    try:
        pl_.start_pipeline(clean)
        ray.get(lookup(clean.pipeline, Role.FEED).start.remote())
        assert pl_.wait_until_finished(clean.pipeline, timeout_s=300)["state"] == "finished"
        expected = _signals(clean.journal_path)
        assert len(expected) > 10

        pl_.start_pipeline(killed)
        stream = lookup(killed.pipeline, Role.STREAM)
        ray.get(lookup(killed.pipeline, Role.FEED).start.remote())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(_signals(killed.journal_path)) >= len(expected) // 3:
                break
            time.sleep(0.05)
        before = len(_signals(killed.journal_path))
        assert 0 < before < len(expected), "kill the processor mid-stream, after some signals"
        ray.kill(stream, no_restart=False)
        state = pl_.wait_until_finished(killed.pipeline, timeout_s=300)
        assert state["state"] == "finished", state
        status = ray.get(lookup(killed.pipeline, Role.STREAM).status.remote())
        assert status["restarted"]
        assert status["signals_restored"]
        assert status["ticks"]["resumed_skip"] >= 0
        got = _signals(killed.journal_path)
        assert got.keys() == expected.keys()
        assert got == expected
        with Journal(killed.journal_path) as j:
            rebuilt = j.rebuild()
        assert not rebuilt.problems
        assert status["positions"] == {s: q for s, q in rebuilt.positions.items() if q}
    finally:
        pl_.stop(clean.pipeline)
        pl_.stop(killed.pipeline)
