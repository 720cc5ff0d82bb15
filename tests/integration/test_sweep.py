"""Research sweeps on Ray Tune with the real evaluator, on a tiny synthetic BIST lake.

Every trial here is a real walk-forward evaluation: XGBoost fitted per fold, costed backtests
of the out-of-sample sessions on 1-minute bars. The checks are on what a user relies on: the
selection (DSR, PBO) and the registered winner, a trial that fails without sinking the sweep,
bad input refused before any trial, and a sweep whose driver is killed finishing on resume
without re-running what was finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.config import Settings
from quant.data.lake import Lake
from quant.models.registry import ModelRegistry
from quant.research.dataset import DataWindowError, ResearchDataset
from quant.research.params import SearchSpaceError
from tune.sweep import SweepConfig, SweepOutcome, run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_SPACE: dict[str, Any] = {
    "learning_rate": ("loguniform", 0.005, 0.02),
    "max_depth": ("int", 6, 8),
    "prob_threshold": ("uniform", 0.5, 0.6),
}
"""Trials of a few seconds (2,000 trees per fold) for the interruption test."""


def settings_for(home: Path, lake: Path) -> Settings:
    return Settings(home=home, lake_path=lake)


def same_evaluation(outcome: SweepOutcome, lake: Path, tune_trial_id: str) -> None:
    """The trial's result equals a plain in-process ``evaluate_trial`` of its parameters."""
    record = next(t for t in outcome.trials if t.tune_trial_id == tune_trial_id)
    assert record.result is not None and record.params is not None
    config = outcome.config
    dataset = ResearchDataset.from_lake(
        Lake(lake), config.symbols, config.start, config.end, config.bar_interval
    )
    direct = config.setup().evaluate(record.params, dataset)
    assert record.result.days == direct.days
    assert record.result.returns == direct.returns
    assert record.result.score == direct.score
    assert [f.model_dump() for f in record.result.folds] == [f.model_dump() for f in direct.folds]


def test_sweep_selects_by_deflated_sharpe_and_registers_the_winner(
    ray_session: None, tiny_lake: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, tiny_lake)
    seen: list[Any] = []
    config = SweepConfig(num_samples=4, n_splits=3, grace_period=3, seed=3, name="small")
    outcome = run_sweep(settings, config, progress=seen.append)

    assert [t.status for t in outcome.trials] == ["complete"] * 4
    assert {t.folds_done for t in outcome.trials} == {3}
    assert len({t.tune_trial_id for t in outcome.trials}) == 4
    assert outcome.errors == []
    # progress arrived as trials started and finished, ending with all four done
    assert [p.event for p in seen].count("finished") == 4
    assert seen[-1].finished == 4 and seen[-1].total == 4

    selection = outcome.selection
    assert selection.n_trials == 4
    assert selection.deflated_sharpe is not None and 0.0 <= selection.deflated_sharpe <= 1.0
    assert selection.pbo is not None and 0.0 <= selection.pbo <= 1.0
    assert selection.aligned_days == selection.best.n_obs > 0
    complete_sharpes = [t.result.sharpe for t in outcome.trials if t.result.sharpe is not None]
    assert selection.best.sharpe == max(complete_sharpes)

    # the winner was retrained on the whole window and registered as a candidate, with lineage
    registry = ModelRegistry(tmp_path / "registry")
    version = registry.get("research", outcome.registered.version)
    assert version.stage == "candidate"
    manifest = version.manifest
    assert manifest.deflated_sharpe == pytest.approx(selection.deflated_sharpe)
    assert manifest.cv_metrics["pbo"] == pytest.approx(selection.pbo)
    sweep = manifest.extra["sweep"]
    assert sweep["name"] == "small"
    assert sweep["tune_trial_id"] == outcome.winner.tune_trial_id
    assert sweep["path"] == outcome.path == str(tmp_path.resolve() / "sweeps" / "small")
    assert manifest.extra["trial_id"] == outcome.winner_params.trial_id
    model = registry.load("research", outcome.registered.version)
    assert model.feature_names == list(manifest.features)

    # Tune computed exactly what the evaluator computes in a plain loop
    same_evaluation(outcome, tiny_lake, outcome.winner.tune_trial_id)
    payload = outcome.as_dict()
    json.dumps(payload)
    assert payload["registered"]["version"] == outcome.registered.version
    assert "DSR" in outcome.result_line() and "PBO" in outcome.result_line()

    # the same sweep again is refused rather than mixed with the finished one
    with pytest.raises(Exception, match="already exists"):
        run_sweep(settings, config)


def test_a_failing_trial_is_reported_and_the_sweep_completes(
    ray_session: None, tiny_lake: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, tiny_lake)
    config = SweepConfig(
        fixed_trials=[{}, {"cusum_k": 1000.0}, {"max_depth": 4}],
        n_splits=3,
        max_failures=1,
        register_model=False,
        name="with-failure",
    )
    outcome = run_sweep(settings, config)

    by_k = {t.params.cusum_k: t for t in outcome.trials}
    failed = by_k[1000.0]
    assert failed.status == "errored"
    assert "DataWindowError" in failed.error and "no labelled events" in failed.error
    assert failed.failures == 2  # the first run and its one retry
    assert [t.status for t in outcome.trials if t is not failed] == ["complete", "complete"]
    assert len(outcome.errors) == 1 and "cusum_k" in outcome.errors[0]
    # the failed trial counts as a try in the deflated Sharpe ratio
    assert outcome.selection.n_trials == 3
    assert outcome.registered is None


def test_bad_input_is_refused_before_any_trial(tiny_lake: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, tiny_lake)
    bad_space = SweepConfig(space={"max_depth": ("int", 0, 6)}, name="bad-space")
    with pytest.raises(SearchSpaceError, match="'max_depth'"):
        run_sweep(settings, bad_space)
    unknown = SweepConfig(space={"depth": ("int", 2, 6)}, name="unknown")
    with pytest.raises(SearchSpaceError, match="'depth' is not a trial parameter"):
        run_sweep(settings, unknown)
    too_short = SweepConfig(n_splits=20, name="too-short")
    with pytest.raises(DataWindowError, match="needs at least 42 sessions"):
        run_sweep(settings, too_short)
    # nothing was started or written for any of them
    assert not (tmp_path / "sweeps").exists()


# --------------------------------------------------------------------------- resume

DRIVER = """
import json, sys
from cluster.config import Settings
from tune.sweep import SweepConfig, run_sweep
args = json.loads(sys.argv[1])
run_sweep(Settings(home=args["home"], lake_path=args["lake"]),
          SweepConfig.model_validate(args["config"]))
print("FINISHED")
"""


def experiment_state(experiment: Path) -> dict[str, dict[str, Any]]:
    """Trial id -> {status, last_result} from Tune's newest experiment state file."""
    files = sorted(experiment.glob("experiment_state-*.json"))
    if not files:
        return {}
    try:
        raw = json.loads(files[-1].read_text())
    except (ValueError, OSError):  # being replaced right now
        return {}
    out = {}
    for trial_json, runtime in raw["trial_data"]:
        trial = json.loads(trial_json)
        meta = json.loads(runtime)
        out[trial["trial_id"]] = {"status": trial["status"], "last": meta.get("last_result", {})}
    return out


def test_a_killed_sweep_resumes_without_rerunning_finished_trials(
    no_shared_ray: None,
    tiny_lake: Path,
    tmp_path: Path,
    short_tmp: Path,
    processes_in: Callable[[Path | str], list[int]],
) -> None:
    name = "killed"
    config = SweepConfig(
        space=SLOW_SPACE,
        base={"n_estimators": 2000},
        num_samples=6,
        n_splits=3,
        grace_period=3,
        max_concurrent=2,
        seed=11,
        name=name,
    )
    args = {"home": str(tmp_path), "lake": str(tiny_lake), "config": config.model_dump(mode="json")}
    log = (tmp_path / "driver.log").open("w")
    env = dict(os.environ, TMPDIR=str(short_tmp), TUNE_GLOBAL_CHECKPOINT_S="1")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(args)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    experiment = tmp_path / "sweeps" / name
    state: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 240
    try:
        # Kill the driver once two trials have finished and another is part-way through.
        while time.monotonic() < deadline and driver.poll() is None:
            state = experiment_state(experiment)
            finished = [t for t, s in state.items() if s["status"] == "TERMINATED"]
            partial = [
                t
                for t, s in state.items()
                if s["status"] == "RUNNING"
                and s["last"].get("folds_done", 0) >= 1
                and not s["last"].get("complete")
            ]
            if len(finished) >= 2 and partial:
                break
            time.sleep(0.2)
        assert driver.poll() is None, (
            "the sweep ended before it could be interrupted: "
            + (tmp_path / "driver.log").read_text()[-2000:]
        )
        assert time.monotonic() < deadline, f"never reached the interruption point: {state}"
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait()
        log.close()
    for _ in range(50):  # Ray's workers notice their raylet is gone within seconds
        if not processes_in(short_tmp):
            break
        time.sleep(0.2)
    # anything left is killed by the short_tmp fixture; the run must not have printed success
    assert "FINISHED" not in (tmp_path / "driver.log").read_text()

    finished = sorted(t for t, s in state.items() if s["status"] == "TERMINATED")
    partial = {
        t: s["last"]["folds_done"]
        for t, s in state.items()
        if s["status"] == "RUNNING"
        and s["last"].get("folds_done", 0) >= 1
        and not s["last"].get("complete")
    }
    before = {t: (experiment / f"trial_{t}" / "result.json").read_text() for t in finished}
    assert len(finished) >= 2 and partial

    outcome = run_sweep(settings_for(tmp_path, tiny_lake), SweepConfig(name=name), resume=True)

    assert outcome.resumed
    assert outcome.config.num_samples == 6 and outcome.config.base == {"n_estimators": 2000}
    assert len(outcome.trials) == 6
    assert [t.status for t in outcome.trials] == ["complete"] * 6
    ids = {t.tune_trial_id for t in outcome.trials}
    assert set(finished) <= ids
    for trial_id, text in before.items():  # finished trials were not run again
        assert (experiment / f"trial_{trial_id}" / "result.json").read_text() == text
    for trial_id, folds_done in partial.items():  # interrupted ones continued from their folds
        rows = [
            json.loads(line)
            for line in (experiment / f"trial_{trial_id}" / "result.json").read_text().splitlines()
        ]
        # A fold's checkpoint reaches the disk before Tune's experiment snapshot records it; a
        # kill in between makes Tune restart that trial from scratch (Tune's own semantics). When
        # the snapshot had it, the trial must continue from at least the folds it had done.
        resumed_rows = [r for r in rows if r.get("restored_folds", 0) >= 1]
        if resumed_rows:
            assert min(r["restored_folds"] for r in resumed_rows) >= folds_done
        assert rows[-1]["complete"] is True
        # and the resumed trial's result is the one an uninterrupted evaluation gives
        same_evaluation(outcome, tiny_lake, trial_id)
    assert outcome.registered is not None
    assert outcome.selection.n_trials == 6


def test_a_search_space_maps_onto_optuna_and_samples_decode_to_trials() -> None:
    import optuna

    from tune.space import optuna_space

    space = optuna_space(
        {
            "max_depth": ("int", 2, 7, 2),
            "learning_rate": ("loguniform", 0.01, 0.3),
            "n_estimators": ("logint", 20, 400),
            "return_windows": ("choice", [[1, 4], [2, 8, 32]]),
            "model": ("fixed", "xgb"),
        }
    )
    assert space.fixed == {"model": "xgb"}
    assert space.distributions["max_depth"] == optuna.distributions.IntDistribution(2, 6, step=2)
    assert space.distributions["learning_rate"].log
    # tuples are searched over labels (Optuna needs primitive choices) and decoded back
    assert sorted(space.labels["return_windows"]) == ["[1,4]", "[2,8,32]"]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask(fixed_distributions=space.distributions)
        params = space.params(trial.params)
        study.tell(trial, float(params.max_depth))
        assert params.max_depth in (2, 4, 6) and 20 <= params.n_estimators <= 400
        assert 0.01 <= params.learning_rate <= 0.3 and params.model == "xgb"
        seen.add(params.return_windows)
    assert seen == {(1, 4), (2, 8, 32)}

    with pytest.raises(SearchSpaceError, match="fixes every parameter"):
        optuna_space({"model": ("fixed", "xgb")})
    with pytest.raises(SearchSpaceError, match=r"'learning_rate'.*loguniform"):
        optuna_space({"learning_rate": ("loguniform", 0.0, 0.3)})
