"""The `smart-trader` command as a user runs it: a real process, a fresh working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

BIN = Path(sys.executable).parent / "smart-trader"


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_TRADER_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def lake_files(root: Path) -> dict[str, int]:
    lake = root / "var" / "lake"
    if not lake.exists():
        return {}
    return {str(p.relative_to(lake)): p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file()}


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic market generated once through the CLI for the tests of this module."""
    root = tmp_path_factory.mktemp("cli")
    result = run(
        root,
        "data",
        "generate",
        "--symbols",
        "3",
        "--sessions",
        "6",
        "--tick-sessions",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["synthetic"] is True
    assert set(payload["kinds"]) == {"bars", "trades", "quotes"}
    for kind in payload["kinds"].values():
        assert kind["rows"] > 0 and kind["rows"] == kind["clean"] + kind["rows_quarantined"]
        assert kind["score"] >= 95.0
    for paths in payload["reports"].values():
        html = Path(root, paths["html"]).read_text()
        assert "SYN" in html and "synthetic" in html.lower()
    return root


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["data"],
        ["data", "generate"],
        ["data", "import"],
        ["data", "validate"],
        ["data", "ls"],
        ["demo"],
    ],
)
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_generate_is_idempotent_and_listed(workdir: Path) -> None:
    before = lake_files(workdir)
    again = run(workdir, "data", "generate", "--symbols", "3", "--sessions", "6",
                "--tick-sessions", "2", "--json")  # fmt: skip
    assert again.returncode == 0, again.stderr
    kinds = json.loads(again.stdout)["kinds"]
    assert all(k["rows_written"] == 0 for k in kinds.values())  # nothing new the second time
    assert lake_files(workdir) == before  # and no file was rewritten
    listing = run(workdir, "data", "ls", "--json")
    assert listing.returncode == 0, listing.stderr
    entries = json.loads(listing.stdout)["entries"]
    assert {e["kind"] for e in entries} >= {"bars", "trades", "quotes"}
    assert {e["symbol"] for e in entries if e["kind"] == "trades"} == {"SYN01", "SYN02", "SYN03"}
    human = run(workdir, "data", "ls")
    assert human.returncode == 0 and "SYN01" in human.stdout


def test_validate_lake_passes_and_writes_reports(workdir: Path) -> None:
    result = run(workdir, "data", "validate", "--kind", "trades", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] and payload["rows"] > 0 and payload["quarantined"] == 0
    assert Path(workdir, payload["report_html"]).is_file()
    report = json.loads(Path(workdir, payload["report_json"]).read_text())
    assert report["synthetic"] is True


def test_validate_file_fails_under_threshold_and_quarantines(workdir: Path) -> None:
    trades = pl.read_parquet(next((workdir / "var/lake/trades").rglob("*.parquet")))
    broken = trades.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.col("price") + 0.003)  # off the tick grid
        .otherwise(pl.col("price"))
        .alias("price")
    )
    path = workdir / "broken.parquet"
    broken.write_parquet(path)
    reports = workdir / "broken-report"
    result = run(workdir, "data", "validate", "--kind", "trades", "--file", str(path),
                 "--report-dir", str(reports), "--json")  # fmt: skip
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert not payload["passed"] and payload["quarantined"] >= trades.height // 10
    quarantine = pl.read_parquet(reports / "quarantine.parquet")
    assert set(quarantine.get_column("rule").unique()) == {"OFF_TICK"}
    assert quarantine.height == payload["quarantined"]


def test_import_real_ticks_then_reimport_adds_nothing(tmp_path: Path) -> None:
    import importlib.metadata

    files = importlib.metadata.files("mlfinpy") or []
    ticks = next(f for f in files if f.name == "tick_data.csv").locate()
    args = ["data", "import", str(ticks), "--kind", "trades", "--symbol", "ES", "--json",
            "--tz", "America/Chicago", "--no-market-rules", "--calendar", "none"]  # fmt: skip
    first = run(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload["rows_read"] == 500_000
    assert payload["rows_written"] + payload["rows_quarantined"] == 500_000
    second = json.loads(run(tmp_path, *args).stdout)
    assert second["rows_written"] == 0 and second["rows_duplicate"] == payload["rows_written"]


def test_import_validates_against_bist_rules(tmp_path: Path) -> None:
    csv = tmp_path / "akbnk.csv"
    csv.write_text(
        "time,price,qty\n"
        "2024-01-03 10:00:01,45.20,100\n"
        "2024-01-03 10:00:02,45.21,100\n"  # off the 0.02 grid
        "2024-01-03 10:00:03,45.22,100\n"
        "2024-01-03 09:45:00,45.20,100\n"  # opening order collection: no trades allowed
    )
    result = run(tmp_path, "data", "import", str(csv), "--kind", "trades", "--symbol", "AKBNK",
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["rows_written"] == 2
    assert payload["rules"] == {"OFF_TICK": 1, "OUT_OF_ORDER": 1} or payload["rules"] == {
        "OFF_TICK": 1,
        "OUTSIDE_SESSION": 1,
    }


@pytest.mark.parametrize(
    ("content", "args", "needles"),
    [
        (None, [], ["no such file"]),
        ("", [], ["empty"]),
        ("time,price,qty\n2024-01-03 10:00:01,abc,xyz,1,2\n\x00\x01", [], []),
        ("when,cost\n2024-01-03 10:00:01,45.2\n", [], ["when"]),
        ("time,price,qty\n2024-01-03 10:00:01,45.20,100\n", ["--kind", "orders"], ["orders"]),
        ("time,price,qty\n2024-01-03 10:00:01,45.20,100\n", ["--tz", "Mars/Base"], ["Mars"]),
        ("time,price,qty\n2024-01-03 10:00:01,45.20,100\n", ["--map", "nonsense"], ["--map"]),
    ],
)
def test_bad_import_input_is_one_line_and_writes_nothing(
    workdir: Path, content: str | None, args: list[str], needles: list[str]
) -> None:
    path = workdir / "input.csv"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_text(content)
    kind = [] if "--kind" in args else ["--kind", "trades"]
    before = lake_files(workdir)
    result = run(workdir, "data", "import", str(path), *kind, "--symbol", "AKBNK", *args)
    one_line_error(result, *needles)
    assert lake_files(workdir) == before


def test_unknown_symbol_and_empty_range_are_clear_errors(workdir: Path) -> None:
    one_line_error(run(workdir, "data", "validate", "--symbols", "NOPE"), "NOPE")
    one_line_error(
        run(workdir, "data", "validate", "--from", "2030-01-01", "--to", "2030-02-01"), "2030"
    )
    one_line_error(run(workdir, "data", "validate", "--from", "yesterday"), "--from")


def test_bad_config_is_one_line(workdir: Path, tmp_path: Path) -> None:
    one_line_error(
        run(workdir, "data", "ls", env={"SMART_TRADER_RAY__NUM_CPUS": "abc"}), "ray.num_cpus"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  quality_threshold: 250\n")
    one_line_error(run(workdir, "--config", str(bad), "data", "ls"), "quality_threshold")
    one_line_error(run(workdir, "--config", str(tmp_path / "none.yaml"), "data", "ls"), "not found")
