"""The streaming benchmark runs end to end on a tiny market and writes sane figures.

Timings are not asserted (the machine is shared): what is checked is that the floor and the
actor pipeline both ran on the same ticks, that no tick was dropped, that orders were
acknowledged and timed on both sides, and that the kill-switch drill left no order open.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("ray")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "stream_bench", ROOT / "benchmarks" / "stream_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stream_bench_smoke(tmp_path: Path, ray_session: None) -> None:
    bench = load_bench()
    out = tmp_path / "stream.json"
    journals = tmp_path / "journals"
    result = bench.main(["--quick", "--out", str(out), "--dir", str(journals)])
    written = json.loads(out.read_text())
    command = f"python benchmarks/stream_bench.py --quick --out {out} --dir {journals}"
    assert written["command"] == command
    assert written["market"]["ticks"] == result["market"]["ticks"] > 0
    ticks = written["market"]["ticks"]

    floor, actors = written["floor"], written["actors"]
    assert floor["throughput"]["ticks"] == ticks
    assert floor["throughput"]["accepted"] + floor["throughput"]["quarantined"] == ticks
    tp = actors["throughput"]
    assert tp["state"] == "finished"
    assert tp["fed"] == tp["received"] == ticks
    assert tp["accepted"] + tp["quarantined"] == tp["received"]
    assert tp["no_drops"] is True
    assert tp["ticks_per_s"] > 0 and floor["throughput"]["ticks_per_s"] > 0
    assert tp["max_in_flight_seen"] <= tp["max_in_flight"]
    # the same components made the same decisions on both sides
    assert tp["counters"]["orders"] == floor["throughput"]["counters"]["orders"] > 0
    assert tp["counters"]["fills"] == floor["throughput"]["counters"]["fills"]
    assert tp["journal"] == "local"

    lat = actors["latency"]
    assert lat["state"] == "finished"
    assert lat["samples"] > 0 and floor["latency"]["samples"] > 0
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]

    for side in (actors["kill_switch"], floor["kill_switch"]):
        assert side, "no kill-switch drill ran"
        for drill in side:
            assert drill["placed"] == drill["orders"]
            assert drill["still_open"] == 0
            assert drill["ms"] > 0
    for d in actors["kill_switch"]:  # the strategy's own working orders are cancelled too
        assert d["complete"] and d["cancelled"] == d["open_before"] >= d["orders"]

    goals = written["goals"]
    assert [g["what"].split(" ")[0] for g in goals] == ["sustained", "p99", "kill"]
    assert all(isinstance(g["met"], bool) for g in goals)
    assert "| sustained ticks/s, no drops |" in bench.table(written)
