"""Selection by deflated Sharpe ratio with PBO, and the final model's training and registration.

The DSR is recomputed here from its published formula (Bailey and López de Prado 2014) with
scipy, and PBO is checked on return matrices whose answer is known by construction.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.metrics import deflated_sharpe_ratio_from_trials
from quant.models import ModelRegistry
from quant.research import (
    ResearchDataset,
    TrialParams,
    TrialResult,
    evaluate_trial,
    feature_pipeline,
    register_winner,
    select_by_deflated_sharpe,
    train_final,
)
from quant.research.selection import default_submatrices

EULER = 0.5772156649015329


def fake_trial(returns: list[float], seed: int, days: list[date] | None = None) -> TrialResult:
    """A TrialResult whose figures are those of ``returns`` (computed here with numpy/scipy)."""
    r = np.asarray(returns, dtype=float)
    days = days or [date(2024, 1, 1) + timedelta(days=k) for k in range(r.size)]
    sr = float(r.mean() / r.std(ddof=1))
    return TrialResult(
        params=TrialParams(seed=seed),
        trial_id=TrialParams(seed=seed).trial_id,
        cv="walk_forward",
        n_splits=1,
        n_test_groups=2,
        pct_embargo=0.0,
        costs="none",
        backtest_bars="minute",
        folds=[],
        days=days,
        returns=r.tolist(),
        sharpe=sr,
        sharpe_annual=sr * math.sqrt(252),
        n_obs=int(r.size),
        skewness=float(stats.skew(r, bias=True)),
        kurtosis=float(stats.kurtosis(r, fisher=False, bias=True)),
        total_return=float(np.prod(1 + r) - 1),
        path_sharpes=[sr],
        accuracy=None,
        log_loss=None,
        fees=0.0,
        trades=0,
        score=sr * math.sqrt(252),
    )


def three_trials() -> list[TrialResult]:
    rng = np.random.default_rng(11)
    return [
        fake_trial((rng.normal(0.0005, 0.01, 120)).tolist(), 0),
        fake_trial((rng.normal(0.0020, 0.01, 120) + 0.004 * rng.standard_t(3, 120)).tolist(), 1),
        fake_trial((rng.normal(-0.0010, 0.01, 120)).tolist(), 2),
    ]


def test_deflated_sharpe_of_the_best_trial_by_hand():
    trials = three_trials()
    sel = select_by_deflated_sharpe(trials)
    sharpes = np.array([t.sharpe for t in trials])
    assert sel.best_index == int(np.argmax(sharpes)) == 1
    assert sel.best is trials[1]
    # the paper's formula, written out
    n, v = 3, float(np.var(sharpes, ddof=1))
    sr0 = math.sqrt(v) * (
        (1 - EULER) * stats.norm.ppf(1 - 1 / n) + EULER * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    best = trials[1]
    r = np.asarray(best.returns)
    sr, t = best.sharpe, r.size
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    dsr = stats.norm.cdf(
        (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    )
    assert sel.sharpe_variance == pytest.approx(v, rel=1e-12)
    assert sel.expected_max_sharpe == pytest.approx(sr0, rel=1e-9)
    assert sel.deflated_sharpe == pytest.approx(dsr, rel=1e-9)
    assert 0.0 < sel.deflated_sharpe < 1.0
    # the metrics module's from-trials form agrees when every trial counts
    assert sel.deflated_sharpe == pytest.approx(
        deflated_sharpe_ratio_from_trials(best.returns, sharpes), rel=1e-12
    )
    # counting failed trials too makes the bar higher and the DSR lower
    more = select_by_deflated_sharpe(trials, n_trials=10)
    assert more.expected_max_sharpe > sel.expected_max_sharpe
    assert more.deflated_sharpe < sel.deflated_sharpe
    with pytest.raises(ValueError, match="fewer than the 3 trials"):
        select_by_deflated_sharpe(trials, n_trials=2)


def test_table_ranks_trials_and_summary_is_json():
    trials = three_trials()
    sel = select_by_deflated_sharpe(trials)
    assert sel.table["index"].to_list() == [1, 0, 2]
    assert sel.table["rank"].to_list() == [1, 2, 3]
    assert sel.table["trial_id"].to_list() == [trials[k].trial_id for k in (1, 0, 2)]
    summary = sel.to_dict()
    text = json.dumps(summary)  # plain JSON: no NaN, no dates as objects
    assert "NaN" not in text
    assert summary["best_trial_id"] == trials[1].trial_id
    assert summary["pbo"] == sel.pbo
    assert summary["overfitting"]["n_submatrices"] == default_submatrices(120) == 16
    assert len(summary["trials"]) == 3


def _blocks(first: list[float], second: list[float]) -> list[float]:
    return first + second


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample():
    up = [0.02, 0.03, 0.01, 0.02]
    down = [-0.02, -0.01, -0.03, -0.02]
    flat = [0.001, -0.001, 0.002, 0.0]
    trials = [
        fake_trial(_blocks(up, down), 0),  # best in the first half, worst in the second
        fake_trial(_blocks(down, up), 1),  # the reverse
        fake_trial(_blocks(flat, flat), 2),
    ]
    sel = select_by_deflated_sharpe(trials, n_submatrices=2)
    # two combinations: train on one half, test on the other; each time the in-sample best
    # (trial 0, then trial 1) ranks last of three out of sample: omega = 1/4, logit < 0
    assert sel.pbo == 1.0
    assert sel.overfitting is not None
    np.testing.assert_allclose(sel.overfitting.relative_ranks, [0.25, 0.25])
    assert sel.overfitting.best_in_sample.tolist() == [0, 1]


def test_pbo_is_zero_when_one_trial_wins_everywhere():
    good = [0.02, 0.03, 0.01, 0.02, 0.03, 0.02, 0.025, 0.015]
    worse = [0.001, -0.001, 0.002, 0.0, 0.001, 0.0, -0.002, 0.001]
    worst = [-0.01, -0.02, -0.01, -0.015, -0.01, -0.02, -0.005, -0.01]
    sel = select_by_deflated_sharpe(
        [fake_trial(worse, 0), fake_trial(good, 1), fake_trial(worst, 2)], n_submatrices=2
    )
    assert sel.pbo == 0.0
    np.testing.assert_allclose(sel.overfitting.relative_ranks, [0.75, 0.75])


def test_trials_are_aligned_by_day_and_missing_days_dropped():
    days = [date(2024, 1, 1) + timedelta(days=k) for k in range(10)]
    rng = np.random.default_rng(3)
    a = fake_trial(rng.normal(0, 0.01, 10).tolist(), 0, days)
    b = fake_trial(rng.normal(0, 0.01, 9).tolist(), 1, days[1:])  # lacks the first day
    c = fake_trial(rng.normal(0, 0.01, 9).tolist(), 2, days[:5] + days[6:])  # lacks day 5
    sel = select_by_deflated_sharpe([a, b, c])
    assert (sel.aligned_days, sel.dropped_days) == (8, 2)
    assert sel.overfitting is not None and sel.overfitting.n_submatrices == 4
    # one trial, or too few shared days: no PBO, and the reason is given
    single = select_by_deflated_sharpe([a])
    assert single.pbo is None and "two trials" in single.pbo_note
    assert single.deflated_sharpe == pytest.approx(
        stats.norm.cdf(
            a.sharpe * 3 / math.sqrt(1 - a.skewness * a.sharpe + (a.kurtosis - 1) / 4 * a.sharpe**2)
        )
    )  # N = 1: no selection, SR0 = 0, T - 1 = 9
    short = [fake_trial([0.01, 0.02, -0.01], k) for k in range(3)]
    assert "four aligned days" in select_by_deflated_sharpe(short).pbo_note
    with pytest.raises(ValueError, match="no trials"):
        select_by_deflated_sharpe([])


# --------------------------------------------------------------------------- final model


@pytest.fixture(scope="module")
def dataset() -> ResearchDataset:
    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=40, seed=1))
    return ResearchDataset.from_frame(market.minute_bars(), market.corporate_actions(), "30m")


def test_train_final_and_register_round_trip(dataset, tmp_path):
    base = {
        "bar_interval": "30m",
        "n_estimators": 15,
        "max_depth": 2,
        "cusum_k": 1.0,
        "vol_span": 20,
        "beta_window": 20,
        "momentum_window": 10,
        "prob_threshold": 0.5,
    }
    trials = [
        evaluate_trial(TrialParams(**base, seed=s), dataset, n_splits=3, backtest_bars="research")
        for s in (0, 1)
    ]
    sel = select_by_deflated_sharpe(trials)
    params = sel.best.params
    model = train_final(params, dataset)
    samples = dataset.samples(params)
    assert model.feature_names == list(samples.feature_names)
    again = train_final(params, dataset)  # deterministic
    np.testing.assert_array_equal(model.predict_proba(samples.X), again.predict_proba(samples.X))

    registry = ModelRegistry(tmp_path / "models")
    version = register_winner(
        registry,
        model,
        sel,
        dataset,
        name="research-demo",
        created_at="2024-03-01T18:00:00Z",
        git_commit="a" * 40,
        extra={"sweep": "unit-test"},
    )
    assert (version.version, version.stage) == (1, "candidate")
    m = registry.get("research-demo").manifest
    assert m.data_hash == dataset.data_hash
    assert m.git_commit == "a" * 40
    assert m.features == list(samples.feature_names)
    assert m.train_start_ns == int(samples.t0_ns.min())
    assert m.train_end_ns == int(samples.t1_ns.max())
    assert m.deflated_sharpe == sel.deflated_sharpe
    assert m.cv_metrics["pbo"] == sel.pbo
    assert m.cv_metrics["score"] == pytest.approx(sel.best.score)
    assert len(m.cv_metrics["folds"]) == 3
    assert m.extra["trial_id"] == sel.best.trial_id
    assert m.extra["sweep"] == "unit-test"
    assert m.extra["selection"]["n_trials"] == 2
    assert TrialParams.model_validate(m.extra["trial_params"]) == params
    loaded = registry.load("research-demo", stage="candidate")
    np.testing.assert_array_equal(loaded.predict_proba(samples.X), model.predict_proba(samples.X))
    # the lineage is enough to rebuild the features the model takes
    rebuilt = feature_pipeline(TrialParams.model_validate(m.extra["trial_params"])).batch(
        dataset.research_bars(params.bar_interval).drop("day")
    )
    at_t0 = samples.events.select("symbol", pl.col("t0").alias("ts")).join(
        rebuilt, on=["symbol", "ts"], how="left", maintain_order="left"
    )
    assert at_t0.select(m.features).equals(samples.X)


def test_register_refuses_a_model_of_other_features(dataset, tmp_path):
    params = TrialParams(
        bar_interval="30m", n_estimators=5, cusum_k=1.0, vol_span=20, beta_window=20
    )
    other = TrialParams(**{**params.model_dump(), "return_windows": (1, 2)})
    trial = evaluate_trial(params, dataset, n_splits=2, backtest_bars="research")
    sel = select_by_deflated_sharpe([trial])
    wrong = train_final(other, dataset)
    with pytest.raises(ValueError, match="not the winning trial's"):
        register_winner(
            ModelRegistry(tmp_path),
            wrong,
            sel,
            dataset,
            name="x",
            created_at="2024-03-01T00:00:00Z",
        )
