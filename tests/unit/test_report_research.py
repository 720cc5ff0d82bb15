"""The research sections of a report: what the selection, the trials and SHAP put on the page."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import numpy as np
import polars as pl

from quant.models.explanations import Explanation
from quant.report.research import (
    SECTION_OOS,
    SECTION_SHAP,
    SECTION_TRIALS,
    research_sections,
)
from quant.research import TrialParams, TrialResult, select_by_deflated_sharpe


def trial(mean: float, seed: int) -> TrialResult:
    r = np.random.default_rng(seed).normal(mean, 0.01, 80)
    sr = float(r.mean() / r.std(ddof=1))
    params = TrialParams(seed=seed)
    return TrialResult(
        params=params,
        trial_id=params.trial_id,
        cv="walk_forward",
        n_splits=1,
        n_test_groups=2,
        pct_embargo=0.0,
        costs="none",
        backtest_bars="minute",
        folds=[],
        days=[date(2024, 1, 1) + timedelta(days=k) for k in range(r.size)],
        returns=r.tolist(),
        sharpe=sr,
        sharpe_annual=sr * math.sqrt(252),
        n_obs=r.size,
        skewness=0.0,
        kurtosis=3.0,
        total_return=float(np.prod(1 + r) - 1),
        path_sharpes=[sr],
        accuracy=None,
        log_loss=None,
        fees=0.0,
        trades=0,
        score=sr * math.sqrt(252),
    )


def three_trials() -> list[TrialResult]:
    return [trial(0.0005, 0), trial(0.002, 1), trial(-0.001, 2)]


def test_sections_show_the_selection_the_trials_and_shap() -> None:
    trials = three_trials()
    selection = select_by_deflated_sharpe(trials, n_trials=4)
    table = pl.DataFrame(
        {
            "tune_trial_id": ["a", "b", "c", "d"],
            "status": ["complete", "complete", "complete", "errored"],
            "score": [t.score for t in trials] + [None],
            "total_return": [t.total_return for t in trials] + [None],
            "trades": [0, 0, 0, None],
            "folds_done": [1, 1, 1, 0],
            "params": [json.dumps({"max_depth": 3, "pt_sl": [1.5, 1.5]})] * 4,
        }
    )
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 3)) * np.array([0.5, 0.1, 0.01])
    explanation = Explanation(
        values=values,
        base_values=np.zeros(50),
        data=rng.normal(size=(50, 3)),
        feature_names=["rsi_14", "log_return_1", "rv_cc_20"],
        output="log-odds of class 1",
        method="tree-shap",
    )
    sections = research_sections(
        selection, table, trials, explanation, searched=["max_depth", "pt_sl"],
        notes={SECTION_OOS: "Selected <b>x</b>"},
    )  # fmt: skip
    assert [t for t, _ in sections] == [SECTION_OOS, SECTION_TRIALS, SECTION_SHAP]
    oos, listing, shap = (body for _, body in sections)
    assert selection.best.trial_id in oos
    assert f"{selection.deflated_sharpe:.2f}" in oos and f"{selection.pbo:.2f}" in oos
    assert "Selected &lt;b&gt;x&lt;/b&gt;" in oos  # notes are text, escaped
    assert oos.count("growth of 1") >= 1 and "other trials (2)" in oos
    assert "max_depth=3, pt_sl=1.5/1.5" in listing and "errored" in listing
    # features in order of mean |SHAP|
    assert shap.index("<td>rsi_14</td>") < shap.index("<td>log_return_1</td>")
    assert shap.index("<td>log_return_1</td>") < shap.index("<td>rv_cc_20</td>")
    # no SHAP section without an explanation
    assert [t for t, _ in research_sections(selection, table, trials)] == [
        SECTION_OOS,
        SECTION_TRIALS,
    ]
