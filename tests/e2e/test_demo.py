"""`smart-trader demo` as a user runs it, on a small market: data, research, backtest, a paper
replay through the Ray actors with its parity check, report.

The research step starts a local Ray in the demo's own process and runs a real (small) walk-
forward sweep on Ray Tune + Optuna; the checks are on what the user gets: the selection
printed plainly, the model in the registry with its manifest and in production, and the report
with its out-of-sample and SHAP sections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant.models.registry import ModelRegistry
from quant.report.research import SECTION_OOS, SECTION_SHAP, SECTION_TRIALS

BIN = Path(sys.executable).parent / "smart-trader"

SMALL_RESEARCH = {
    "SMART_TRADER_DEMO__RESEARCH__TRIALS": "3",
    "SMART_TRADER_DEMO__RESEARCH__N_SPLITS": "3",
    "SMART_TRADER_DEMO__RESEARCH__MAX_ESTIMATORS": "50",
}
"""Three trials of three folds with 50 trees: the whole research step in seconds."""

SMALL_MARKET = ("--symbols", "4", "--sessions", "30", "--tick-sessions", "1")


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_TRADER_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_selects_registers_and_reports_the_research(tmp_path: Path) -> None:
    result = run(tmp_path, "demo", *SMALL_MARKET, env=SMALL_RESEARCH)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "SYNTHETIC" in out and "demo report:" in out
    assert "step 2/5: research" in out
    summary = json.loads((tmp_path / "var/reports/demo/summary.json").read_text())
    assert summary["quality_passed"] is True and summary["synthetic"] is True
    research = summary["research"]
    assert research["trials"]["complete"] + research["trials"]["pruned"] == 3
    assert len(research["table"]) == 3

    # the selection is printed plainly: which trial, its deflated Sharpe and PBO
    dsr, pbo = research["deflated_sharpe"], research["pbo"]
    winner = research["winner"]["tune_trial_id"]
    assert f"selected trial {winner}" in out
    assert f"deflated Sharpe {dsr:.2f}" in out
    assert f"PBO {pbo:.2f}" in out
    assert ("survives the search" in out) == (dsr >= 0.95)

    # the winner is in the registry, in production, with its manifest and a loadable artifact
    production = research["production"]
    assert production["name"] == "demo" and production["stage"] == "production"
    registry = ModelRegistry(tmp_path / "var/registry")
    version = registry.get("demo", stage="production")
    assert version.version == production["version"]
    manifest = version.manifest
    assert manifest.deflated_sharpe == pytest.approx(dsr)
    assert manifest.cv_metrics["pbo"] == pytest.approx(pbo)
    assert manifest.cv_metrics["n_trials"] == 3
    assert len(manifest.cv_metrics["folds"]) == 3
    assert manifest.features and manifest.data_hash and manifest.git_commit is not None
    assert manifest.train_start_ns < manifest.train_end_ns
    assert manifest.extra["sweep"]["name"] == research["name"]
    assert manifest.extra["synthetic"] is True
    model = registry.load("demo", stage="production")
    assert model.feature_names == manifest.features
    assert [c.to_stage for c in registry.history("demo")] == ["candidate", "staging", "production"]

    # the report holds the backtest and the research: OOS results, trials, SHAP
    html = Path(tmp_path, summary["report_html"]).read_text()
    for title in (SECTION_OOS, SECTION_TRIALS, SECTION_SHAP):
        assert f"<h2>{title}</h2>" in html
    assert research["report_sections"] == [SECTION_OOS, SECTION_TRIALS, SECTION_SHAP]
    assert 'id="research-shap-bar"' in html and 'id="research-oos-equity"' in html
    assert research["winner"]["params_id"] in html
    top_feature = next(iter(research["shap"]["mean_abs_shap"]))
    assert top_feature in manifest.features and top_feature in html

    # the paper step replayed the last recorded day through the actors with the production
    # model (and the momentum rule if the model barely traded) and printed the parity
    assert "step 4/5: paper trading" in out
    paper = summary["paper"]
    assert paper["day"] == summary["tick_sessions"][1]
    runs = paper["runs"]
    assert runs[0]["label"] == "production model"
    assert runs[0]["model"] == f"demo:v{production['version']}"
    assert all(r["passed"] and r["identical_share"] >= 0.99 for r in runs)
    assert any(r["orders"]["live"] > 0 and r["fills"]["live"] > 0 for r in runs)
    for r in runs:
        assert r["headline"] in out
        assert r["info"]["predictions"]["identical"] == r["info"]["predictions"]["matched"]
        assert Path(tmp_path, r["files"][0]).exists()
    assert html.count("<h2>Paper replay and parity") == len(runs)

    # a second run is a new sweep and a new version, which replaces the first in production
    again = run(tmp_path, "demo", *SMALL_MARKET, env=SMALL_RESEARCH)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "var/reports/demo/summary.json").read_text())["research"]
    assert second["name"] != research["name"]
    assert second["production"]["version"] == production["version"] + 1
    assert registry.get("demo", production["version"]).stage == "archived"
    assert registry.get("demo", stage="production").version == production["version"] + 1


@pytest.mark.slow
def test_demo_without_research_and_a_window_too_short_for_it(tmp_path: Path) -> None:
    tiny = ("--symbols", "3", "--sessions", "8", "--tick-sessions", "1")
    skipped = run(tmp_path, "demo", *tiny, env={"SMART_TRADER_DEMO__RESEARCH__ENABLED": "false"})
    assert skipped.returncode == 0, skipped.stderr
    assert "research" not in skipped.stdout.split("step 1/4")[1].split("step 2/4")[0]
    summary = json.loads((tmp_path / "var/reports/demo/summary.json").read_text())
    assert summary["research"] is None and summary["backtest"] is not None
    # no registered model: the paper replay trades the momentum rule, in parity with its backtest
    assert "step 3/4: paper trading" in skipped.stdout
    (only,) = summary["paper"]["runs"]
    assert only["label"] == "momentum rule" and only["passed"]
    assert only["orders"]["live"] == only["orders"]["backtest"] > 0
    assert f"parity {only['identical_share']:.2%} identical" in skipped.stdout

    # with research on, eight sessions cannot hold four walk-forward folds: one clear line
    failed = run(tmp_path, "demo", *tiny)
    assert failed.returncode == 1
    lines = [ln for ln in failed.stderr.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and "walk-forward with 4 test folds" in lines[-1]
    assert not (tmp_path / "var/registry/demo").exists()
