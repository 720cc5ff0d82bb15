"""The data benchmark runs end to end on a tiny input and writes sane figures.

Timings are not asserted (the machine is shared); what is checked is that every step ran in its
own process, measured something, agreed on the row counts, and that the bars we build equal
polars' own.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "data_bench", ROOT / "benchmarks" / "data_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_data_bench_smoke(tmp_path: Path) -> None:
    bench = load_bench()
    out = tmp_path / "figures.json"
    rows = 200_000
    argv = ["--rows", str(rows), "--sessions", "2", "--repeat", "1"]
    result = bench.main([*argv, "--dir", str(tmp_path), "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["rows"] == rows == result["rows"]
    assert written["command"].startswith("python benchmarks/data_bench.py --rows 200000")
    best = written["best"]
    assert set(best) == {"scan", "validate", "bars", "group_by_dynamic", "synthetic"}
    for step, figures in best.items():
        assert figures["seconds"] > 0, step
        assert figures["peak_rss_bytes"] >= figures["rss_before_bytes"] > 0, step
    assert best["scan"]["rows"] == rows
    validate = best["validate"]
    assert validate["rows"] == validate["clean"] + validate["quarantined"] == rows
    # The injected faults (about 1e-5 of the rows) are all caught: 2 rows at this size.
    assert validate["quarantined"] >= 2
    assert best["bars"]["bars"] == best["group_by_dynamic"]["bars"] > 0
    assert written["trade_file"]["bars_equal_to_group_by_dynamic"] is True
    assert best["synthetic"]["sessions"] == 2 and best["synthetic"]["bars"] > 0
    goals = {g["what"].split(" ")[0]: g for g in written["goals"]}
    assert len(written["goals"]) == 4
    assert goals["validate"]["ratio"] == pytest.approx(
        validate["seconds"] / best["scan"]["seconds"]
    )
    assert goals["synthetic"]["met"] is None  # two sessions are not the year the goal is about
    assert "| validate 200,000 trades" in bench.table(written)


def test_injected_faults_are_deterministic_and_counted() -> None:
    import polars as pl

    bench = load_bench()
    n = 10_000
    trades = pl.DataFrame(
        {
            "ts": pl.Series(range(n), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "symbol": ["A"] * n,
            "price": [10.0] * n,
            "size": [5] * n,
            "seq": list(range(n)),
            "side": pl.Series([1] * n, dtype=pl.Int8),
            "condition": ["C"] * n,
        }
    )
    a = bench.inject_faults(trades, 0.001, 3)
    b = bench.inject_faults(trades, 0.001, 3)
    assert a.equals(b)
    changed = (a != trades).select(pl.any_horizontal(pl.all())).to_series()
    assert changed.sum() == 10  # ten faults, two of each kind
    duplicates = a.filter(pl.struct("ts", "seq").is_duplicated())
    assert duplicates.height == 4  # two rows copied over their successors
    assert (a["size"] == 0).sum() == 2
