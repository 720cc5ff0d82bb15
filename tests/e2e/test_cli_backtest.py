"""`smart-trader backtest` as a user runs it: a real process on a small synthetic lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

BIN = Path(sys.executable).parent / "smart-trader"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_TRADER_")}
    return subprocess.run(
        [str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-backtest")
    result = run(
        root,
        "data",
        "generate",
        "--symbols",
        "4",
        "--sessions",
        "8",
        "--tick-sessions",
        "0",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return root


def test_backtest_writes_the_tearsheet_and_the_results(workdir: Path) -> None:
    result = run(
        workdir,
        "backtest",
        "--strategy",
        "ma_crossover",
        "--from",
        "2024-01-02",
        "--to",
        "2024-01-12",
        "--param",
        "fast=5",
        "--param",
        "slow=30",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["synthetic"] is True and payload["error"] is None
    assert payload["first_day"] == "2024-01-02" and payload["last_day"] == "2024-01-11"
    for key in ("total_return", "cagr", "sharpe_ratio", "max_drawdown", "fees", "rejects"):
        assert key in payload["headline"]
    assert payload["headline"]["fills"] > 0 and payload["headline"]["fees"] > 0
    directory = workdir / payload["directory"]
    assert directory.parent == workdir / "var" / "reports" / "backtests"
    assert directory.name.startswith("ma_crossover-")
    for name in ("equity", "daily", "orders", "fills", "round_trips", "tca", "tca_by_strategy"):
        assert (directory / f"{name}.parquet").is_file(), name
    fills = pl.read_parquet(directory / "fills.parquet")
    assert fills.height == payload["headline"]["fills"]
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["config"]["strategy"]["parameters"]["slow"] == 30
    page = (workdir / payload["tearsheet"]).read_text()
    assert page.startswith("<!DOCTYPE html>") or page.lstrip().lower().startswith("<!doctype")
    assert "SYNTHETIC" in page


def test_backtest_prints_the_headline_figures(workdir: Path) -> None:
    result = run(
        workdir,
        "backtest",
        "--strategy",
        "momentum",
        "--param",
        "lookback=3",
        "--param",
        "top_k=2",
        "--costs",
        "none",
        "--capital",
        "500000",
    )
    assert result.returncode == 0, result.stderr
    for text in (
        "total return",
        "CAGR",
        "Sharpe ratio",
        "max drawdown",
        "trades",
        "fees",
        "rejected orders",
        "tearsheet:",
        "SYNTHETIC",
    ):
        assert text in result.stdout, text


@pytest.mark.slow
def test_backtest_fails_in_one_line(workdir: Path) -> None:
    one_line_error(run(workdir, "backtest", "--strategy", "nope"), "unknown strategy", "momentum")
    one_line_error(
        run(workdir, "backtest", "--strategy", "momentum", "--symbols", "SYN01,NOPE"),
        "unknown symbol",
        "NOPE",
    )
    one_line_error(
        run(
            workdir,
            "backtest",
            "--strategy",
            "momentum",
            "--from",
            "2024-02-01",
            "--to",
            "2024-01-01",
        ),
        "empty date range",
    )
    one_line_error(
        run(
            workdir,
            "backtest",
            "--strategy",
            "momentum",
            "--from",
            "2025-01-01",
            "--to",
            "2025-02-01",
        ),
        "no bars",
    )
    one_line_error(
        run(
            workdir,
            "backtest",
            "--strategy",
            "ma_crossover",
            "--param",
            "fast=9",
            "--param",
            "slow=3",
        ),
        "fast < slow",
    )
    one_line_error(run(workdir, "backtest", "--strategy", "momentum", "--fast"), "--fast")
