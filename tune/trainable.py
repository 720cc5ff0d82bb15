"""The Ray Tune trainable of a research sweep: one trial = one ``evaluate_trial``, fold by fold.

A trial reports after every fold it computes (``tune.report``) with a checkpoint holding the
folds completed so far as JSON. That is what makes trials resumable and cheap to retry: when a
trial is restarted (the driver was killed and the sweep resumed, a worker node died and
``FailureConfig`` retries it, ...) it restores its completed folds from ``tune.get_checkpoint()``
and ``evaluate_trial`` computes only the folds that are missing, checking the restored ones
against the trial's fold plan.

The report after the last fold carries the assembled ``TrialResult`` (``trial.json`` in the
checkpoint, ``complete=True`` in the metrics), so a finished trial's result is on the sweep's
storage the moment it finishes, whatever happens to the driver later. Earlier reports carry the
running score (the annualised Sharpe ratio of the folds so far) that ASHA compares at its rungs,
with ``folds_done`` as the time attribute, and the id of the node that ran the fold.

The data set is put in Ray's object store once by the driver; each trial receives, through
``tune.with_parameters``, a ``DatasetHandle`` (its key and object reference, a few bytes) and a
small ``TrialSetup`` that says how to turn the sampler's config into ``TrialParams`` and how to
evaluate them. A worker fetches the data set on its first trial and keeps it for the trials it
runs next (``reuse_actors``): the object is about as large as the raw minute bars (90 MB for 8
symbols x 240 sessions), and fetching and unpickling it again for every trial would cost a
tenth of a second each, besides dropping the research bars, features and labels cached on it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quant.metrics import sharpe_ratio
from quant.research.dataset import ResearchDataset
from quant.research.evaluate import (
    MIN_TRAIN_SAMPLES,
    PERIODS_PER_YEAR,
    BacktestBars,
    CvKind,
    FoldPlan,
    FoldResult,
    TrialResult,
    assemble_trial,
    evaluate_trial,
    plan_folds,
)
from quant.research.params import TrialParams, params_from_config
from tune.space import OptunaSpace

FOLDS_FILE = "folds.json"
TRIAL_FILE = "trial.json"
PARAMS_FILE = "params.json"
REPORT_FILE = "report.json"
"""The metrics reported with the checkpoint (node, pid, folds done): written with the
checkpoint straight to the sweep's storage, while Tune's result files follow on its syncs."""
FIXED_KEY = "params"
"""The config key of a fixed trial (no search): the full ``TrialParams`` as JSON."""
TIME_ATTR = "folds_done"
"""ASHA's time attribute: folds completed, 1..n_folds."""


@dataclass(frozen=True)
class TrialSetup:
    """How every trial of a sweep is evaluated; small, shipped to each trial with the data."""

    base: TrialParams
    space: OptunaSpace | None
    """None for fixed trials (the config then holds the parameters under ``"params"``)."""
    cv: CvKind = "walk_forward"
    n_splits: int = 4
    n_test_groups: int = 2
    pct_embargo: float = 0.01
    costs: str = "bist"
    backtest_bars: BacktestBars = "minute"
    initial_cash: float = 1_000_000.0
    min_train_samples: int = MIN_TRAIN_SAMPLES
    dataset_key: str | None = None
    """Identifies the sweep's data set within a worker process (see ``_local_dataset``)."""

    def params(self, config: Mapping[str, Any]) -> TrialParams:
        """The trial's parameters from Tune's config."""
        if self.space is None:
            return params_from_config(config[FIXED_KEY], self.base)
        return self.space.params(config, self.base)

    def evaluate(
        self,
        params: TrialParams,
        dataset: ResearchDataset,
        on_fold: Any = None,
        completed_folds: Sequence[FoldResult] = (),
    ) -> TrialResult:
        """``evaluate_trial`` with this setup (also what a plain loop calls)."""
        return evaluate_trial(
            params,
            dataset,
            cv=self.cv,
            n_splits=self.n_splits,
            pct_embargo=self.pct_embargo,
            costs=self.costs,
            on_fold=on_fold,
            completed_folds=completed_folds,
            n_test_groups=self.n_test_groups,
            initial_cash=self.initial_cash,
            backtest_bars=self.backtest_bars,
            min_train_samples=self.min_train_samples,
        )

    def plan(self, params: TrialParams, dataset: ResearchDataset) -> FoldPlan:
        """The trial's folds (raises ``DataWindowError`` / ``FoldError`` before any fit)."""
        return plan_folds(
            params,
            dataset,
            self.cv,
            self.n_splits,
            self.pct_embargo,
            n_test_groups=self.n_test_groups,
            min_train_samples=self.min_train_samples,
        )


def running_score(folds: Sequence[FoldResult]) -> float:
    """Annualised Sharpe ratio of the folds' daily returns so far (0 when undefined), what
    ASHA compares before the trial is complete."""
    returns = np.array([r for f in folds for r in f.returns], dtype=float)
    value = sharpe_ratio(returns, periods_per_year=PERIODS_PER_YEAR) if returns.size else math.nan
    return float(value) if math.isfinite(value) else 0.0


def read_checkpoint(
    directory: str | os.PathLike[str],
) -> tuple[list[FoldResult], TrialResult | None]:
    """The folds and, when the trial finished, the ``TrialResult`` stored in a checkpoint."""
    path = Path(directory)
    folds: list[FoldResult] = []
    if (path / FOLDS_FILE).is_file():
        folds = [FoldResult.model_validate(f) for f in json.loads((path / FOLDS_FILE).read_text())]
    trial = None
    if (path / TRIAL_FILE).is_file():
        trial = TrialResult.from_dict(json.loads((path / TRIAL_FILE).read_text()))
    return folds, trial


_DATASETS: dict[str, ResearchDataset] = {}


@dataclass(frozen=True)
class DatasetHandle:
    """The sweep's data set in Ray's object store, fetched at most once per worker process.

    ``refs`` holds the one ``ObjectRef`` inside a tuple: Ray resolves a reference passed as a
    task argument, not one nested in an argument, so a trial receives the handle (a few bytes)
    and fetches the data set only when its worker has not got it yet (``get``). The driver
    keeps the reference alive for the whole sweep (it owns it), and Ray keeps it alive inside
    the stored parameters as long as Tune holds them.
    """

    key: str
    """Identifies the data set (sweep name and data hash): a worker keeps one at a time."""
    refs: tuple[Any, ...]

    @classmethod
    def put(cls, key: str, dataset: ResearchDataset) -> DatasetHandle:
        import ray

        return cls(key, (ray.put(dataset),))

    def get(self) -> ResearchDataset:
        """This worker's copy: the one it fetched for an earlier trial, or a fresh one."""
        hit = _DATASETS.get(self.key)
        if hit is None:
            import ray

            hit = ray.get(self.refs[0])
            _DATASETS.clear()  # one sweep per worker at a time
            _DATASETS[self.key] = hit
        return hit


def _local_dataset(setup: TrialSetup, dataset: ResearchDataset | DatasetHandle) -> ResearchDataset:
    """The sweep's data set in this worker (see ``DatasetHandle``).

    A worker reused for several trials (``reuse_actors``) keeps one copy, with its cached
    research bars, features and labels, which trials differing only in model or strategy
    parameters share, as a plain loop would. A data set passed by value (the trainable called
    directly, or an experiment stored before handles existed) is kept the same way: the first
    copy received for ``setup.dataset_key`` wins.
    """
    if isinstance(dataset, DatasetHandle):
        return dataset.get()
    if setup.dataset_key is None:
        return dataset
    hit = _DATASETS.get(setup.dataset_key)
    if hit is None:
        _DATASETS.clear()  # one sweep per worker at a time
        _DATASETS[setup.dataset_key] = hit = dataset
    return hit


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities as None: Tune stores them, but Optuna refuses NaN scores."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def sweep_trainable(
    config: dict[str, Any], setup: TrialSetup, dataset: ResearchDataset | DatasetHandle
) -> None:
    """Evaluate one trial, reporting and checkpointing after each fold (module docstring)."""
    from ray import tune

    params = setup.params(config)
    dataset = _local_dataset(setup, dataset)
    restored: list[FoldResult] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            restored, _ = read_checkpoint(directory)
    plan = setup.plan(params, dataset)
    n_folds = len(plan.folds)
    done: list[FoldResult] = list(restored)
    node = _node_id()
    reported = False

    def report(trial: TrialResult | None, last: FoldResult | None) -> None:
        nonlocal reported
        metrics: dict[str, Any] = {}
        if last is not None:
            metrics.update(last.metrics())
        metrics.update(
            {
                TIME_ATTR: len(done),
                "n_folds": n_folds,
                "score": running_score(done),
                "complete": trial is not None,
                "node_id": node,
                "pid": os.getpid(),
                "params_id": params.trial_id,
                "restored_folds": len(restored),
            }
        )
        if trial is not None:
            metrics.update(trial.metrics())
            metrics["score"] = trial.score
        reported_metrics = _finite(metrics)
        with tempfile.TemporaryDirectory(prefix="sweep-ckpt-") as directory:
            path = Path(directory)
            ordered = sorted(done, key=lambda f: f.fold)
            path.joinpath(FOLDS_FILE).write_text(
                json.dumps([f.model_dump(mode="json") for f in ordered])
            )
            path.joinpath(PARAMS_FILE).write_text(json.dumps(params.model_dump(mode="json")))
            path.joinpath(REPORT_FILE).write_text(json.dumps(reported_metrics))
            if trial is not None:
                path.joinpath(TRIAL_FILE).write_text(json.dumps(trial.to_dict()))
            tune.report(reported_metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        reported = True

    def on_fold(fold: FoldResult) -> None:
        done.append(fold)
        trial = None
        if len(done) == n_folds:
            ordered = sorted(done, key=lambda f: f.fold)
            trial = assemble_trial(
                params, plan, ordered, setup.pct_embargo, setup.costs, setup.backtest_bars
            )
        report(trial, fold)

    result = setup.evaluate(params, dataset, on_fold=on_fold, completed_folds=restored)
    if not reported:
        # Every fold was restored (the trial had finished its folds when it was interrupted):
        # report the result once so that this run's last result is the complete one.
        report(result, None)
