"""The backtest benchmark runs end to end on a tiny input and writes sane figures.

Timings are not asserted (the machine is shared); what is checked is that the four engines
(our event engine and fast path, backtrader, vectorbt) made the very same trades, that the
figures the goals are read from are there, and that each memory run was a child process of its
own that measured its own peak. The crossing rule the benchmark gives backtrader and vectorbt is
checked on a hand-worked path with ties.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "backtest_bench", ROOT / "benchmarks" / "backtest_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # backtrader's metaclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_crossings_follow_backtrader_rule_through_ties() -> None:
    bench = load_bench()
    # SMA(2) - SMA(3) from bar 2: +1/2, +1/3, 0, +1/6, +1/6, -1/2, -1/3, 0, +1/6, +1/2, +1/2
    # "+, 0, +" (bars 3-5) is no cross; "-, 0, +" (bars 8-10) crosses up at bar 10, and the
    # first sign (bar 2) only sets the state
    closes = np.array([10.0, 11.0, 12.0, 12.0, 12.0, 13.0, 12.0, 11.0, 11.0, 11.0, 12.0, 13.0])
    up, down = bench.crossings(closes, 2, 3)
    assert np.flatnonzero(up).tolist() == [10]
    assert np.flatnonzero(down).tolist() == [7]
    assert bench.exact_ties(closes, 2, 3) == 2
    # a tie on the tick grid that float averages miss (backtrader's SMA is fsum / period):
    # SMA(2) = SMA(4) = 4.925 exactly, yet the float difference is 8.9e-16
    ticks = [4.92, 4.93, 4.94, 4.91]
    assert math.fsum(ticks[2:]) / 2 - math.fsum(ticks) / 4 != 0
    assert bench.exact_ties(np.array(ticks), 2, 4) == 1
    up, down = bench.crossings(np.array([*ticks, 4.95]), 2, 4)
    assert not up.any() and not down.any()  # the tie sets no state: nothing to cross from


@pytest.mark.slow
def test_backtest_bench_smoke(tmp_path: Path) -> None:
    bench = load_bench()
    out = tmp_path / "figures.json"
    argv = [
        "--quick",
        "--repeat",
        "1",
        "--daily-bars",
        "300",
        "--sessions",
        "3",
        "--memory-symbols",
        "3",
        "--memory-short",
        "2",
        "--memory-long",
        "4",
        "--dir",
        str(tmp_path),
        "--out",
        str(out),
    ]
    result = bench.main(argv)
    written = json.loads(out.read_text())
    assert written["command"] == "python benchmarks/backtest_bench.py " + " ".join(argv)
    assert written["trades_identical"] is True and result["trades_identical"] is True
    assert written["versions"]["backtrader"].startswith("1.9.78")
    assert written["versions"]["vectorbt"] == "1.2.0"

    speed = written["speed"]
    assert set(speed) == {"daily", "minute"}
    assert speed["daily"]["data"]["bars"] == 300
    assert speed["daily"]["data"]["symbol"] == "AAPL"
    assert speed["minute"]["data"]["symbol"] == "SYN01"
    for name, figures in speed.items():
        trades = figures["trades"]
        assert trades["identical"] is True, (name, trades["problems"])
        assert trades["problems"] == []
        assert trades["compared_engines"] == ["event", "fast", "backtrader", "vectorbt"]
        assert trades["fills"] > 2, name  # something to compare
        # long only, alternating: every exit closes the entry before it
        assert trades["round_trips"] + trades["open_at_end"] == (trades["fills"] + 1) // 2
        first = trades["first_fills"][0]
        assert first["quantity"] == bench.QUANTITY and first["price"] > 0
        engines = figures["engines"]
        expected = {
            "event",
            "fast",
            "backtrader",
            "vectorbt",
            "backtrader_stock",
            "event_full",
            "fast_full",
        }
        if name == "daily":
            expected.add("event_default_chunks")
        assert set(engines) == expected
        for engine, e in engines.items():
            assert len(e["samples_seconds"]) == 1
            assert e["best_seconds"] > 0 and e["median_seconds"] >= e["best_seconds"]
            assert e["bars_per_second_best"] == pytest.approx(
                figures["data"]["bars"] / e["best_seconds"]
            )
            if engine != "backtrader_stock":
                assert e["trades_identical_to_event"] is True, engine
                assert e["fills"] == trades["fills"]
        ratios = figures["ratios"]
        assert ratios["event_vs_backtrader_best"] == pytest.approx(
            engines["event"]["bars_per_second_best"] / engines["backtrader"]["bars_per_second_best"]
        )
        assert ratios["fast_vs_vectorbt_best"] == pytest.approx(
            engines["fast"]["best_seconds"] / engines["vectorbt"]["best_seconds"]
        )

    memory = written["memory"]
    assert memory["lake"]["symbols"] == 3 and memory["lake"]["sessions"] == 4
    assert (Path(memory["lake"]["path"]) / ".complete").exists()
    short, long = memory["runs"]["short"], memory["runs"]["long"]
    assert (short["sessions"], long["sessions"]) == (2, 4)
    assert short["symbols"] == long["symbols"] == 3
    assert 0 < short["bars"] < long["bars"] == memory["lake"]["bars"]
    for run in (short, long):
        assert run["error"] is None
        # each child measured its own address space (VmHWM), not what it inherited
        assert run["peak_rss_bytes"] >= run["rss_before_bytes"] > 0
        assert len(run["rss_by_decile_bytes"]) == 10

    goals = written["goals"]
    assert len(goals) == 8
    assert [g["met"] for g in goals if g["goal"] == "identical"] == [True, True]
    assert all(isinstance(g["met"], bool) for g in goals)
    assert "| ours, event engine (`run_backtest`) |" in bench.table(written)
