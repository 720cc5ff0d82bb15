"""A research sweep on Ray Tune: Optuna (seeded TPE) proposes, ASHA prunes, every CPU evaluates.

``run_sweep(settings, SweepConfig(...))`` does the whole job:

1. **Before any trial** (on the driver, before Ray starts): the search space is validated and
   translated (``tune.space``; a space that cannot be sampled is a ``SearchSpaceError`` naming
   the parameter), the data window is read from the lake into a ``ResearchDataset`` and its
   sessions are counted against the folds (a window too short is a ``DataWindowError`` saying
   how many sessions it needs).
2. **Trials** run as ``tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), ...)`` with
   ``OptunaSearch`` and ``ASHAScheduler`` on the running score, folds completed as ASHA's time,
   ``max_concurrent_trials`` = the cluster's CPUs by default, and ``FailureConfig`` retries for
   trials whose worker died (they resume from their last fold checkpoint). Results persist to
   ``storage_path/name`` (a local directory by default, any pyarrow filesystem URI on a
   cluster), next to ``sweep.json``: the sweep's config and data hash.
3. **Resume**: ``run_sweep(..., resume=True)`` restores the experiment
   (``tune.Tuner.restore(resume_unfinished=True, resume_errored=True)``) with the stored
   config, checks the data has not changed, and finishes it. Finished trials are not run
   again; interrupted ones continue from their last completed fold.
4. **Selection**: every trial's ``TrialResult`` is read back from its last checkpoint.
   ``select_by_deflated_sharpe`` chooses among the trials that completed every fold (PBO needs
   the same out-of-sample days for all); N for the deflated Sharpe ratio counts every trial
   that was tried, pruned and failed ones included: they were part of the search.
5. **The winner** is retrained on the full window (``train_final``) and registered as a
   candidate (``register_winner``) with its lineage: sweep name, storage path, Tune trial id.

A trial that raises (a fold with one class, too few samples ...) is retried up to
``max_failures`` times, then recorded with its error; the sweep completes with the others.
Only when no trial completes does ``run_sweep`` raise (``SweepError``), after every result
has been written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from cluster.config import Settings
from quant.data.lake import Lake
from quant.models.base import Model
from quant.models.registry import ModelRegistry, ModelVersion, git_commit
from quant.research.dataset import DataWindowError, ResearchDataset
from quant.research.evaluate import MIN_TEST_SESSIONS, CvKind, TrialResult
from quant.research.final import register_winner, train_final
from quant.research.params import (
    DEFAULT_SEARCH_SPACE,
    SearchSpaceError,
    TrialParams,
    params_from_config,
)
from quant.research.selection import Selection, select_by_deflated_sharpe
from tune.space import optuna_searcher, optuna_space
from tune.trainable import (
    FIXED_KEY,
    TIME_ATTR,
    DatasetHandle,
    TrialSetup,
    read_checkpoint,
    sweep_trainable,
)

SWEEP_FILE = "sweep.json"
METRIC = "score"
MODE = "max"


class SweepError(RuntimeError):
    """A sweep that could not produce a result (no trial completed, nothing to resume ...)."""


class SweepConfig(BaseModel):
    """What to search, on which data, how to evaluate, where to keep the results.

    ``space`` is a research search space (``quant.research.params``); ``base`` fixes trial
    parameters that are not searched. ``fixed_trials`` replaces the search by an explicit list
    of trials (parameter dicts on top of ``base``): every one is run, no sampler, no pruning
    (benchmarks, reproductions). ``name`` defaults to a hash of everything that shapes the
    results, so the same command names the same sweep (and ``--resume`` finds it).
    """

    model_config = ConfigDict(extra="forbid")

    symbols: list[str] | None = None
    """None: every symbol in the lake."""
    start: date | None = None
    end: date | None = None
    """End day, exclusive."""
    bar_interval: str = "15m"
    space: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))
    base: dict[str, Any] = Field(default_factory=dict)
    fixed_trials: list[dict[str, Any]] | None = None
    num_samples: int = Field(default=16, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    """Trials in flight at once; None: the cluster's CPUs / ``cpus_per_trial``."""
    cpus_per_trial: float = Field(default=1.0, gt=0)
    cv: CvKind = "walk_forward"
    n_splits: int = Field(default=4, ge=1)
    n_test_groups: int = Field(default=2, ge=1)
    pct_embargo: float = Field(default=0.01, ge=0, lt=1)
    costs: Literal["bist", "none"] = "bist"
    backtest_bars: Literal["minute", "research"] = "minute"
    initial_cash: float = Field(default=1_000_000.0, gt=0)
    seed: int = Field(default=0, ge=0)
    name: str | None = None
    storage_path: str | None = None
    """Where the sweep persists: a directory or a pyarrow filesystem URI (default: settings)."""
    asha: bool = True
    grace_period: int = Field(default=2, ge=1)
    """Folds every trial completes before ASHA may stop it."""
    reduction_factor: float = Field(default=3.0, gt=1)
    max_failures: int = Field(default=2, ge=0)
    """Retries of a trial whose worker or node died (or that raised), from its checkpoint."""
    time_budget_s: float | None = Field(default=None, gt=0)
    """Wall-clock bound on the trials (Tune's ``time_budget_s``): when it runs out, the trials
    in flight are stopped (keeping the folds they checkpointed) and no more start; they count
    as stopped early (``pruned``) and selection uses the trials that completed every fold.
    None: no bound. Not part of the name (it does not change what a trial computes)."""
    register_model: bool = True
    model_name: str = "research"
    registry_path: str | None = None
    """Registry root (directory or URI); default ``settings.home / "registry"``."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or "/" in value or "\\" in value or value.startswith(".")
        ):
            raise ValueError(f"a sweep name is one path component, got {value!r}")
        return value

    def identity(self) -> dict[str, Any]:
        """What shapes the results (the default name hashes it)."""
        keep = (
            "symbols", "start", "end", "bar_interval", "space", "base", "fixed_trials",
            "num_samples", "cv", "n_splits", "n_test_groups", "pct_embargo", "costs",
            "backtest_bars", "initial_cash", "seed", "asha", "grace_period", "reduction_factor",
        )  # fmt: skip
        return self.model_dump(mode="json", include=set(keep))

    def sweep_name(self) -> str:
        if self.name:
            return self.name
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return "sweep-" + hashlib.sha256(text.encode()).hexdigest()[:10]

    def base_params(self) -> TrialParams:
        return params_from_config({"bar_interval": self.bar_interval, **self.base})

    def setup(self) -> TrialSetup:
        """How each trial is evaluated; validates the space (or the fixed trials) first."""
        base = self.base_params()
        if self.fixed_trials is not None:
            if not self.fixed_trials:
                raise SearchSpaceError("fixed_trials is empty: give at least one trial")
            for k, trial in enumerate(self.fixed_trials):
                try:
                    params_from_config(trial, base)
                except ValueError as exc:
                    raise SearchSpaceError(f"fixed trial {k}: {exc}") from None
            space = None
        else:
            space = optuna_space(self.space, base)
        return TrialSetup(
            base=base,
            space=space,
            cv=self.cv,
            n_splits=self.n_splits,
            n_test_groups=self.n_test_groups,
            pct_embargo=self.pct_embargo,
            costs=self.costs,
            backtest_bars=self.backtest_bars,
            initial_cash=self.initial_cash,
        )

    @property
    def n_folds(self) -> int:
        return math.comb(self.n_splits, self.n_test_groups) if self.cv == "cpcv" else self.n_splits

    @property
    def n_trials(self) -> int:
        return len(self.fixed_trials) if self.fixed_trials is not None else self.num_samples


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands, sent to the ``progress`` callable as trials start and finish."""

    event: str
    """started, finished, errored, retrying or restored."""
    trial_id: str
    total: int
    finished: int
    """Trials that will not run again (completed, pruned or failed)."""
    running: int
    errored: int
    score: float | None = None
    best_score: float | None = None


class _Run:
    """The sweep being run in this process: where Tune callbacks send progress.

    Tune pickles its run config (callbacks included) into the experiment and restores it on
    resume, so the callback keeps no reference to the caller's objects: it looks them up here.
    """

    sink: Callable[[SweepProgress], None] | None = None
    total: int = 0
    failures: dict[str, int] = {}  # noqa: RUF012  (reset per run)
    status: dict[str, str] = {}  # noqa: RUF012


class SweepCallback(Callback):
    """Turns Tune's trial events into ``SweepProgress`` (see ``_Run``)."""

    def _emit(self, event: str, trials: list[Any], trial: Any) -> None:
        for t in trials:
            _Run.status[t.trial_id] = t.status
            _Run.failures[t.trial_id] = t.num_failures
        if _Run.sink is None:
            return
        # Tune calls these hooks before it updates the trial's status: apply the event here.
        final = {"finished": "TERMINATED", "errored": "ERROR"}.get(event)
        status = {t.trial_id: t.status for t in trials}
        if final is not None:
            status[trial.trial_id] = final
        elif event == "started":
            status[trial.trial_id] = "RUNNING"
        finished = sum(s in ("TERMINATED", "ERROR") for s in status.values())
        scores = [
            t.last_result.get(METRIC)
            for t in trials
            if status[t.trial_id] == "TERMINATED" and t.last_result.get("complete")
        ]
        scores = [s for s in scores if isinstance(s, int | float) and math.isfinite(s)]
        score = trial.last_result.get(METRIC) if trial.last_result else None
        _Run.sink(
            SweepProgress(
                event=event,
                trial_id=trial.trial_id,
                total=max(_Run.total, len(trials)),
                finished=finished,
                running=sum(s == "RUNNING" for s in status.values()),
                errored=sum(s == "ERROR" for s in status.values()),
                score=score if isinstance(score, int | float) else None,
                best_score=max(scores) if scores else None,
            )
        )

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any):
        self._emit("started", trials, trial)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any):
        self._emit("finished", trials, trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any):
        self._emit("errored", trials, trial)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any):
        self._emit("retrying", trials, trial)

    def on_experiment_end(self, trials: list[Any], **info: Any):
        for t in trials:
            _Run.status[t.trial_id] = t.status
            _Run.failures[t.trial_id] = t.num_failures


@contextmanager
def _no_tensorboard() -> Iterator[None]:
    """Tune adds a TensorBoard logger by default, whose import of torch costs the driver
    seconds per sweep; the sweep passes the JSON and CSV loggers it uses explicitly."""
    key = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
    previous = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def _trial_dirname(trial: Any) -> str:
    """Short trial directories (Tune's default puts the whole config in the name)."""
    return f"trial_{trial.trial_id}"


# --------------------------------------------------------------------------- outcome


@dataclass
class TrialRecord:
    """One trial of the sweep as it ended."""

    tune_trial_id: str
    status: Literal["complete", "pruned", "errored"]
    params: TrialParams | None
    folds_done: int
    n_folds: int
    score: float | None
    nodes: list[str]
    failures: int
    """Times the trial's run failed (retried up to ``max_failures`` times, then errored)."""
    error: str | None
    path: str
    result: TrialResult | None = None

    def row(self) -> dict[str, Any]:
        r = self.result
        return {
            "tune_trial_id": self.tune_trial_id,
            "status": self.status,
            "params_id": self.params.trial_id if self.params else None,
            "score": self.score,
            "sharpe": r.sharpe if r else None,
            "total_return": r.total_return if r else None,
            "trades": r.trades if r else None,
            "folds_done": self.folds_done,
            "n_folds": self.n_folds,
            "failures": self.failures,
            "nodes": ",".join(self.nodes),
            "error": self.error,
            "params": json.dumps(self.params.model_dump(mode="json"), sort_keys=True)
            if self.params
            else None,
        }


@dataclass
class SweepOutcome:
    """What a sweep produced: the selection, the registered winner, every trial, the paths."""

    name: str
    path: str
    """The experiment: ``storage_path/name`` (Tune's results, ``sweep.json``)."""
    storage_path: str
    config: SweepConfig
    data_hash: str
    trials: list[TrialRecord]
    selection: Selection
    registered: ModelVersion | None
    registry_path: str | None
    resumed: bool
    seconds: float
    max_concurrent: int
    errors: list[str] = field(default_factory=list)
    final_model: Model | None = field(default=None, repr=False)
    """The winner retrained on the full window (what was registered), when registered."""
    dataset: ResearchDataset | None = field(default=None, repr=False)
    """The sweep's data set on the driver (for explanations and reports; not serialised)."""

    @property
    def winner(self) -> TrialRecord:
        best = self.selection.best
        return next(t for t in self.trials if t.result is best)

    @property
    def winner_params(self) -> TrialParams:
        return self.selection.best.params

    @property
    def table(self) -> pl.DataFrame:
        rows = [t.row() for t in self.trials]
        return pl.DataFrame(rows, infer_schema_length=None).sort(
            pl.col("score").fill_null(-math.inf), descending=True
        )

    def counts(self) -> dict[str, int]:
        out = {"complete": 0, "pruned": 0, "errored": 0}
        for t in self.trials:
            out[t.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        selection = self.selection.to_dict()
        selection.pop("trials", None)
        registered = None
        if self.registered is not None:
            registered = {
                "name": self.registered.name,
                "version": self.registered.version,
                "stage": self.registered.stage,
                "registry": self.registry_path,
            }
        return _json_safe(
            {
                "name": self.name,
                "path": self.path,
                "storage_path": self.storage_path,
                "resumed": self.resumed,
                "seconds": round(self.seconds, 2),
                "max_concurrent": self.max_concurrent,
                "data_hash": self.data_hash,
                "trials": self.counts(),
                "winner": {
                    "tune_trial_id": self.winner.tune_trial_id,
                    "params_id": self.winner_params.trial_id,
                    "params": self.winner_params.model_dump(mode="json"),
                    "score": self.selection.best.score,
                },
                "deflated_sharpe": self.selection.deflated_sharpe,
                "pbo": self.selection.pbo,
                "selection": selection,
                "registered": registered,
                "errors": self.errors,
                "table": self.table.to_dicts(),
            }
        )

    def result_line(self) -> str:
        """One line with the headline figures (what a job's log is grepped for)."""
        reg = (
            f"registered {self.registered.name} v{self.registered.version} as candidate"
            if self.registered
            else "not registered"
        )
        counts = self.counts()
        dsr = self.selection.deflated_sharpe
        pbo = self.selection.pbo
        return (
            f"sweep {self.name}: {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['errored']} failed; winner {self.winner.tune_trial_id} score "
            f"{self.selection.best.score:.3f}, DSR "
            f"{'n/a' if dsr is None else f'{dsr:.3f}'}, PBO "
            f"{'n/a' if pbo is None else f'{pbo:.3f}'}; {reg}"
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- storage


def _join(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if "://" in storage else str(Path(storage) / name)


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def _read_sweep_file(experiment: str) -> dict[str, Any] | None:
    fs, root = _filesystem(experiment)
    target = f"{root}/{SWEEP_FILE}"
    if fs.get_file_info(target).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(target) as f:
        return json.loads(f.read().decode())


def _write_sweep_file(experiment: str, payload: dict[str, Any]) -> None:
    fs, root = _filesystem(experiment)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{SWEEP_FILE}") as f:
        f.write(json.dumps(payload, indent=2, sort_keys=True).encode())


def _storage_of(settings: Settings, config: SweepConfig) -> str:
    storage = config.storage_path or settings.storage_path
    if storage is None:  # Settings fills it in; kept for a Settings built without defaults
        storage = str((settings.home / "sweeps").resolve())
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


# --------------------------------------------------------------------------- running


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip()
    if cause is error and "\n" in text:  # a wrapped traceback: keep its last line
        text = text.splitlines()[-1].strip()
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _collect(grid: Any, setup: TrialSetup, n_folds: int) -> list[TrialRecord]:
    records = []
    for result in grid:
        metrics = result.metrics or {}
        tune_id = metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        params = None
        try:
            params = setup.params(result.config)
        except (ValueError, KeyError):
            params = None
        folds, trial = [], None
        if result.checkpoint is not None:
            with result.checkpoint.as_directory() as directory:
                folds, trial = read_checkpoint(directory)
        nodes: list[str] = []
        try:
            frame = result.metrics_dataframe
            if frame is not None and "node_id" in frame.columns:
                nodes = sorted({str(n) for n in frame["node_id"].dropna()})
        except Exception:  # a trial that never reported has no metrics file
            nodes = []
        error = _error_text(result.error)
        if trial is not None:
            status: Literal["complete", "pruned", "errored"] = "complete"
        elif error is not None:
            status = "errored"
        else:
            status = "pruned"
        score = trial.score if trial is not None else metrics.get(METRIC)
        records.append(
            TrialRecord(
                tune_trial_id=tune_id,
                status=status,
                params=params,
                folds_done=len(folds),
                n_folds=n_folds,
                score=float(score) if isinstance(score, int | float) else None,
                nodes=nodes,
                failures=_Run.failures.get(tune_id, 0),
                error=error,
                path=str(result.path),
                result=trial,
            )
        )
    return records


def preflight(dataset: ResearchDataset, config: SweepConfig) -> None:
    """Fail before any trial when the window is too short for the folds.

    Only the session count is checked here (the rule of ``quant.research.evaluate.plan_folds``):
    whether the labels leave enough samples and classes depends on each trial's parameters,
    and computing them on the driver would only repeat what the trials do.
    """
    sessions = dataset.sessions
    if config.cv == "walk_forward":
        needed = MIN_TEST_SESSIONS * (config.n_splits + 1)
        shape = (
            f"walk-forward with {config.n_splits} test folds needs at least {needed} sessions "
            f"({config.n_splits + 1} blocks of {MIN_TEST_SESSIONS}: a first training block and "
            f"{config.n_splits} test folds)"
        )
    else:
        needed = MIN_TEST_SESSIONS * config.n_splits
        shape = (
            f"CPCV with {config.n_splits} groups needs at least {needed} sessions "
            f"({MIN_TEST_SESSIONS} per group)"
        )
    if len(sessions) < needed:
        span = f"{sessions[0]} to {sessions[-1]}" if sessions else "empty"
        raise DataWindowError(f"{shape}; the window has {len(sessions)} ({span})")


def run_sweep(
    settings: Settings,
    config: SweepConfig,
    resume: bool = False,
    progress: Callable[[SweepProgress], None] | None = None,
    *,
    created_at: datetime | None = None,
    quiet: bool = True,
) -> SweepOutcome:
    """Run (or, with ``resume=True``, finish) a sweep; see the module docstring.

    ``progress`` is called as trials start and finish. ``created_at`` stamps the registered
    model (default: now, UTC). ``quiet`` silences Tune's own console reporter.
    """
    began = time.perf_counter()
    storage = _storage_of(settings, config)
    name = config.sweep_name()
    experiment = _join(storage, name)
    stored = _read_sweep_file(experiment)
    if resume:
        if stored is None:
            raise SweepError(f"no sweep to resume at {experiment}")
        config = SweepConfig.model_validate(
            {**stored["config"], "storage_path": config.storage_path, "name": name}
        )
    elif stored is not None:
        raise SweepError(
            f"a sweep named {name} already exists at {experiment}: resume it (--resume) or "
            "give another name"
        )
    setup = config.setup()  # a bad space or bad fixed trials fail here, before Ray
    dataset = ResearchDataset.from_lake(
        Lake(settings.lake_path), config.symbols, config.start, config.end, config.bar_interval
    )
    if resume and stored.get("data_hash") != dataset.data_hash:
        raise SweepError(
            f"the data of sweep {name} changed since it started (data hash "
            f"{stored.get('data_hash')} then, {dataset.data_hash} now): start a new sweep"
        )
    preflight(dataset, config)
    setup = replace(setup, dataset_key=f"{name}:{dataset.data_hash[:16]}")
    if not resume:
        _write_sweep_file(
            experiment,
            {
                "name": name,
                "config": config.model_dump(mode="json"),
                "data_hash": dataset.data_hash,
                "dataset": dataset.describe(),
            },
        )

    from ray import tune

    from cluster.runtime import start_ray

    if quiet:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
        # failed trials are reported in the outcome; Tune would also log their tracebacks
        for logger in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
    start_ray(settings)
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    max_concurrent = config.max_concurrent or max(1, int(cpus // config.cpus_per_trial))
    # the data set goes to the object store once; trials get a handle and each worker fetches
    # it on its first trial only (tune.trainable.DatasetHandle)
    handle = DatasetHandle.put(setup.dataset_key or name, dataset)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_trainable, setup=setup, dataset=handle),
        {"cpu": config.cpus_per_trial},
    )
    _Run.sink, _Run.total, _Run.failures, _Run.status = progress, config.n_trials, {}, {}
    try:
        if resume and tune.Tuner.can_restore(experiment):
            tuner = tune.Tuner.restore(
                experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
            )
        else:  # a new sweep, or one interrupted before Tune saved anything: start it afresh
            tuner = _new_tuner(config, setup, trainable, storage, name, max_concurrent)
        with _no_tensorboard():
            grid = tuner.fit()
        records = _collect(grid, setup, config.n_folds)
    finally:
        _Run.sink = None

    errors = [f"trial {r.tune_trial_id}: {r.error}" for r in records if r.error]
    complete = [r for r in records if r.result is not None]
    if not complete:
        raise SweepError(
            f"no trial of sweep {name} completed ({len(records)} tried, {len(errors)} failed)"
            + (f"; first error: {errors[0]}" if errors else "")
            + f"; results are kept in {experiment}"
        )
    results = [r.result for r in complete]
    selection = select_by_deflated_sharpe(results, n_trials=len(records))  # type: ignore[arg-type]
    winner = complete[selection.best_index]

    registered = None
    registry_root = None
    model = None
    if config.register_model:
        registry_root = config.registry_path or str((settings.home / "registry").resolve())
        model = train_final(selection.best.params, dataset)
        registered = register_winner(
            ModelRegistry(registry_root),
            model,
            selection,
            dataset,
            name=config.model_name,
            created_at=created_at or datetime.now(UTC),
            git_commit=git_commit(Path(__file__).resolve().parent.parent),
            extra={
                "sweep": {
                    "name": name,
                    "path": experiment,
                    "storage_path": storage,
                    "tune_trial_id": winner.tune_trial_id,
                    "search": "fixed" if config.fixed_trials is not None else "optuna-tpe",
                    "seed": config.seed,
                    "trials": len(records),
                    "complete": len(complete),
                    "errored": len(errors),
                    "cv": config.cv,
                    "n_splits": config.n_splits,
                    "costs": config.costs,
                }
            },
        )
    return SweepOutcome(
        name=name,
        path=experiment,
        storage_path=storage,
        config=config,
        data_hash=dataset.data_hash,
        trials=records,
        selection=selection,
        registered=registered,
        registry_path=registry_root,
        resumed=resume,
        seconds=time.perf_counter() - began,
        max_concurrent=max_concurrent,
        errors=errors,
        final_model=model,
        dataset=dataset,
    )


def _new_tuner(
    config: SweepConfig,
    setup: TrialSetup,
    trainable: Any,
    storage: str,
    name: str,
    max_concurrent: int,
) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    n_folds = config.n_folds
    param_space: dict[str, Any] = {}
    search_alg = None
    scheduler = None
    if config.fixed_trials is not None:
        trials = [params_from_config(t, setup.base) for t in config.fixed_trials]
        param_space = {FIXED_KEY: tune.grid_search([p.model_dump(mode="json") for p in trials])}
        num_samples = 1  # grid_search runs every listed trial once
    else:
        assert setup.space is not None
        search_alg = optuna_searcher(setup.space, seed=config.seed)
        num_samples = config.num_samples
        if config.asha and n_folds > 1:
            scheduler = ASHAScheduler(
                time_attr=TIME_ATTR,
                max_t=n_folds,
                grace_period=min(config.grace_period, n_folds),
                reduction_factor=config.reduction_factor,
            )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            time_budget_s=config.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            callbacks=[SweepCallback(), JsonLoggerCallback(), CSVLoggerCallback()],
            verbose=0,
        ),
    )


def describe_progress(p: SweepProgress) -> str:
    """A short line for a progress display."""
    best = "" if p.best_score is None else f", best score {p.best_score:.3f}"
    failed = f", {p.errored} failed" if p.errored else ""
    return f"trials: {p.finished}/{p.total} done, {p.running} running{failed}{best}"


__all__ = [
    "SweepConfig",
    "SweepError",
    "SweepOutcome",
    "SweepProgress",
    "TrialRecord",
    "describe_progress",
    "run_sweep",
]
