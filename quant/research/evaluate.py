"""One trial, evaluated out of sample: purged folds, a model per fold, a costed backtest per fold.

``evaluate_trial(params, dataset, cv=...)`` is what a sweep runs per trial:

1. **Samples** from the data set (``ResearchDataset.samples``): features at each CUSUM event,
   triple-barrier labels, ``t1``, average-uniqueness weights.
2. **Folds over sessions.** The splitters of ``quant.cv`` (``WalkForward``, or
   ``CombinatorialPurgedCV`` for ``cv="cpcv"``) run over the window's *sessions*, not over
   samples: each session is one unit whose window runs from its first bar's open to the latest
   of its last bar's close and its samples' label ends. A fold is then a set of whole
   sessions, so its backtest trades whole days, the daily returns of the folds stitch
   together without overlap, and a fold's boundaries do not depend on how many events the
   future holds. Purging at session level removes every sample the sample-level rule would
   remove (a training sample overlapping a test label lies in a session whose window
   overlaps the test window), and the rest of its session with it; the embargo is
   ``int(pct_embargo x sessions)`` sessions (walk-forward: a gap before each test block;
   CPCV: after each test block, as AFML 7.3).
3. **Per fold**: the model (``TrialParams.model``) is fitted on the training samples with their
   weights and predicts p(up), p(down) for the test samples; the test sessions are backtested
   with costs on the **raw 1-minute bars** by the fast path (``quant.sim.fast.run_fast``,
   the event engine's fills) with ``signals.PredictionStrategy``: each prediction is acted on
   at the next bar (the first minute bar opening at or after its research bar's close),
   filled on a later bar, and closed when its label's barrier is touched. Each contiguous block of
   test sessions is one backtest starting from ``initial_cash`` (positions still open at the
   block's last close are marked, not liquidated). ``backtest_bars="research"`` backtests on
   the research bars instead (raw prices): about ``interval`` times fewer bars, fills at the
   next research bar's open, faster and coarser. ``engine="event"`` runs the event-driven
   engine (``run_backtest``) instead of the fast path: the same fills, slower; for checks.
4. **The trial**: walk-forward stitches the test folds' daily returns into one out-of-sample
   series; CPCV stitches them into ``phi`` backtest paths with
   ``CombinatorialPurgedCV.assemble_paths`` (each session once per path), reports every
   path's Sharpe ratio, and takes the average path (the mean return of each session across
   paths) as the trial's series. ``score``, what a sweep maximises, is that series'
   annualised Sharpe ratio after costs (0 when it has no dispersion, e.g. never traded).

Deterministic given the parameters (model seeds, one thread per fit, a deterministic engine).
Resumable: ``completed_folds`` (restored from a checkpoint) are checked against the plan and
not recomputed; ``on_fold`` is called after each newly computed fold, in fold order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from pydantic import BaseModel, ConfigDict

from quant.cv import CombinatorialPurgedCV, WalkForward
from quant.metrics import kurtosis, sharpe_ratio, skewness, total_return
from quant.models.base import Model
from quant.research.dataset import DataWindowError, ResearchDataset, Samples
from quant.research.params import TrialParams
from quant.research.signals import PredictionStrategy
from quant.risk.limits import RiskLimits
from quant.sim.backtest import BacktestConfig, run_backtest
from quant.sim.fast import run_fast

CvKind = Literal["walk_forward", "cpcv"]
BacktestBars = Literal["minute", "research"]
Engine = Literal["fast", "event"]

PERIODS_PER_YEAR = 252
MIN_TEST_SESSIONS = 2
"""A test fold needs two sessions at least: a Sharpe ratio needs two daily returns."""
MIN_TRAIN_SAMPLES = 30
"""Fewer training samples than this is not a model worth backtesting."""
WARMUP_SESSIONS = 20
"""Sessions before a test block that its backtest reads (not trades) for ADV and volatility."""


class FoldError(ValueError):
    """A fold that cannot be evaluated (one class, too few samples); the message names it."""


# --------------------------------------------------------------------------- records


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class FoldResult(BaseModel):
    """What one fold produced (JSON-serialisable: a sweep checkpoints these)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fold: int
    test_groups: tuple[int, ...]
    """Session groups tested (CPCV); the walk-forward block number otherwise."""
    train_start: datetime | None
    train_end: datetime | None
    """First and last training sample start (``t0``)."""
    test_start: date
    test_end: date
    """First and last test session."""
    test_sessions: int
    n_train: int
    n_test: int
    accuracy: float | None
    log_loss: float | None
    sharpe: float | None
    """Per-period (daily) Sharpe ratio of the fold's out-of-sample returns after costs."""
    sharpe_annual: float | None
    total_return: float
    trades: int
    """Fills."""
    round_trips: int
    fees: float
    turnover: float
    """Mean daily turnover (value traded / equity at the session start, two-sided)."""
    rejects: int
    days: list[date]
    returns: list[float]
    """Daily returns of the test sessions, in order."""

    def metrics(self) -> dict[str, float | int]:
        """Flat numbers for a sweep's intermediate report (None as NaN); the fold's Sharpe
        ratios are ``fold_sharpe`` and ``fold_sharpe_annual``, apart from the trial's."""
        out: dict[str, float | int] = {"fold": self.fold, "n_train": self.n_train}
        for key in ("n_test", "trades", "round_trips", "rejects", "test_sessions"):
            out[key] = getattr(self, key)
        for key in ("accuracy", "log_loss", "sharpe", "sharpe_annual", "total_return", "fees"):
            value = getattr(self, key)
            out[f"fold_{key}" if key in ("sharpe", "sharpe_annual") else key] = (
                math.nan if value is None else value
            )
        out["turnover"] = self.turnover
        return out


class TrialResult(BaseModel):
    """One trial's out-of-sample evaluation (JSON-serialisable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: TrialParams
    trial_id: str
    cv: CvKind
    n_splits: int
    n_test_groups: int
    pct_embargo: float
    costs: str
    backtest_bars: BacktestBars
    folds: list[FoldResult]
    days: list[date]
    returns: list[float]
    """The out-of-sample daily returns (CPCV: the average path)."""
    sharpe: float | None
    """Per-period (daily) Sharpe ratio of ``returns``."""
    sharpe_annual: float | None
    n_obs: int
    skewness: float | None
    kurtosis: float | None
    """Non-excess (3 for normal returns), as the deflated Sharpe ratio takes it."""
    total_return: float
    path_sharpes: list[float | None]
    """Per-period Sharpe ratio of each CPCV path (walk-forward: the one path)."""
    accuracy: float | None
    log_loss: float | None
    fees: float
    trades: int
    score: float
    """What a sweep maximises: the annualised out-of-sample Sharpe ratio after costs."""

    @property
    def oos_returns(self) -> pl.DataFrame:
        """``[day, returns]``: the stitched out-of-sample daily returns."""
        return pl.DataFrame(
            {"day": self.days, "returns": self.returns},
            schema={"day": pl.Date, "returns": pl.Float64},
        )

    def metrics(self) -> dict[str, float | int]:
        """Flat numbers for a sweep's final report (None as NaN)."""
        out: dict[str, float | int] = {"score": self.score, "n_obs": self.n_obs}
        for key in ("sharpe", "sharpe_annual", "skewness", "kurtosis", "accuracy", "log_loss"):
            value = getattr(self, key)
            out[key] = math.nan if value is None else value
        out.update(total_return=self.total_return, fees=self.fees, trades=self.trades)
        sharpes = [s for s in self.path_sharpes if s is not None]
        if sharpes:
            out.update(
                path_sharpe_mean=float(np.mean(sharpes)),
                path_sharpe_min=float(np.min(sharpes)),
                path_sharpe_max=float(np.max(sharpes)),
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialResult:
        return cls.model_validate(raw)


# --------------------------------------------------------------------------- models


def build_model(params: TrialParams) -> Model:
    """An unfitted model for the trial: one thread, seeded, so a fit is reproducible."""
    if params.model == "xgb":
        from quant.models.xgb import XGBClassifierModel

        return XGBClassifierModel(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            learning_rate=params.learning_rate,
            subsample=params.subsample,
            colsample_bytree=0.8,
            seed=params.seed,
            nthread=1,
        )
    from quant.models.torch_models import MLPModel

    return MLPModel(
        hidden=[params.hidden] * params.layers,
        epochs=params.epochs,
        learning_rate=params.mlp_learning_rate,
        seed=params.seed,
        num_threads=1,
    )


def up_down(model: Model, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p(label = 1) and p(label = -1) from ``predict_proba`` (0 for a class the model lacks)."""
    classes = np.asarray(model.classes_).tolist()
    zeros = np.zeros(proba.shape[0])
    p_up = proba[:, classes.index(1)] if 1 in classes else zeros
    p_down = proba[:, classes.index(-1)] if -1 in classes else zeros
    return p_up, p_down


def _classification_metrics(
    model: Model, proba: np.ndarray, y: np.ndarray
) -> tuple[float | None, float | None]:
    if y.size == 0:
        return None, None
    classes = np.asarray(model.classes_)
    predicted = classes[np.argmax(proba, axis=1)]
    accuracy = float(np.mean(predicted == y))
    index = {c: k for k, c in enumerate(classes.tolist())}
    eps = 1e-15
    p_true = np.array([proba[i, index[c]] if c in index else 0.0 for i, c in enumerate(y.tolist())])
    log_loss = float(-np.mean(np.log(np.clip(p_true, eps, 1.0))))
    return accuracy, log_loss


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Fold:
    """One split: sample positions to train and test on, and the sessions it tests."""

    index: int
    train: np.ndarray
    test: np.ndarray
    test_groups: tuple[int, ...]
    test_units: np.ndarray
    """Positions into ``FoldPlan.sessions`` of the tested sessions, in order."""
    blocks: tuple[tuple[date, date], ...]
    """Contiguous runs of test sessions ``(first, last)``: one backtest each."""


@dataclass(frozen=True)
class FoldPlan:
    """The folds of a trial, validated before any model is fitted."""

    samples: Samples
    sessions: list[date]
    folds: list[Fold]
    cv: CvKind
    n_splits: int
    n_test_groups: int
    splitter: WalkForward | CombinatorialPurgedCV

    @property
    def n_paths(self) -> int:
        return self.splitter.n_paths if isinstance(self.splitter, CombinatorialPurgedCV) else 1


def _session_windows(
    dataset: ResearchDataset, params: TrialParams, samples: Samples, sessions: list[date]
) -> tuple[pd.Series, np.ndarray]:
    """Each session's window (first bar open -> latest of last bar close and label ends) as a
    Series t0 -> t1 for the splitters, and the session of every sample."""
    bars = dataset.research_bars(params.bar_interval)
    spans = (
        bars.group_by("day")
        .agg(pl.col("ts").min().alias("t0"), pl.col("ts_end").max().alias("t1"))
        .sort("day")
    )
    t0 = spans["t0"].dt.epoch("ns").to_numpy()
    t1 = spans["t1"].dt.epoch("ns").to_numpy().copy()
    day_index = np.array(sessions, dtype="datetime64[D]")
    unit = np.searchsorted(day_index, np.array(samples.days, dtype="datetime64[D]"))
    if unit.size:
        np.maximum.at(t1, unit, samples.t1_ns)
    index = pd.DatetimeIndex(pd.to_datetime(t0, utc=True), name="t0")
    return pd.Series(pd.to_datetime(t1, utc=True), index=index, name="t1"), unit


def _blocks(units: np.ndarray, sessions: list[date]) -> tuple[tuple[date, date], ...]:
    if units.size == 0:
        return ()
    breaks = np.flatnonzero(np.diff(units) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [units.size]))
    return tuple(
        (sessions[int(units[a])], sessions[int(units[b - 1])])
        for a, b in zip(starts, stops, strict=True)
    )


def plan_folds(
    params: TrialParams,
    dataset: ResearchDataset,
    cv: CvKind = "walk_forward",
    n_splits: int = 4,
    pct_embargo: float = 0.01,
    *,
    n_test_groups: int = 2,
    min_train_samples: int = MIN_TRAIN_SAMPLES,
) -> FoldPlan:
    """The folds of a trial, or a ``DataWindowError`` / ``FoldError`` saying what is missing.

    ``cv="walk_forward"``: ``n_splits`` test blocks after a first training block (anchored).
    ``cv="cpcv"``: ``n_splits`` session groups, every choice of ``n_test_groups`` of them tested.
    """
    if cv not in ("walk_forward", "cpcv"):
        raise ValueError(f"cv must be 'walk_forward' or 'cpcv', got {cv!r}")
    least = 2 if cv == "cpcv" else 1
    if not isinstance(n_splits, int) or n_splits < least:
        raise ValueError(f"n_splits must be an integer >= {least}, got {n_splits}")
    sessions = dataset.research_bars(params.bar_interval)["day"].unique().sort().to_list()
    n_sessions = len(sessions)
    span = f"{sessions[0]} to {sessions[-1]}" if sessions else "empty"
    if cv == "walk_forward":
        needed = MIN_TEST_SESSIONS * (n_splits + 1)
        shape = (
            f"walk-forward with {n_splits} test folds needs at least {needed} sessions "
            f"({n_splits + 1} blocks of {MIN_TEST_SESSIONS}: a first training block and "
            f"{n_splits} test folds)"
        )
    else:
        needed = MIN_TEST_SESSIONS * n_splits
        shape = (
            f"CPCV with {n_splits} groups needs at least {needed} sessions "
            f"({MIN_TEST_SESSIONS} per group)"
        )
    if n_sessions < needed:
        raise DataWindowError(f"{shape}; the window has {n_sessions} ({span})")
    samples = dataset.samples(params)
    if len(samples) == 0:
        raise DataWindowError(
            f"no labelled events in the window ({span}, {n_sessions} sessions): lower cusum_k "
            f"(now {params.cusum_k}) or use a longer window"
        )
    windows, unit = _session_windows(dataset, params, samples, sessions)
    if cv == "walk_forward":
        splitter: WalkForward | CombinatorialPurgedCV = WalkForward(
            n_splits, t1=windows, pct_embargo=pct_embargo
        )
        groups = None
    else:
        splitter = CombinatorialPurgedCV(
            n_splits, n_test_groups, t1=windows, pct_embargo=pct_embargo
        )
        groups = splitter.test_group_sets
    y = samples.y
    folds = []
    for k, (train_units, test_units) in enumerate(splitter.split()):
        train = np.flatnonzero(np.isin(unit, train_units))
        test = np.flatnonzero(np.isin(unit, test_units))
        blocks = _blocks(np.sort(test_units), sessions)
        where = ", ".join(f"{a}..{b}" for a, b in blocks)
        name = f"fold {k} (test sessions {where})"
        if train.size < min_train_samples:
            raise FoldError(
                f"{name} has {train.size} training samples after purging and embargo; at least "
                f"{min_train_samples} are needed ({len(samples)} samples over {n_sessions} "
                f"sessions): use a longer window, fewer folds or a lower cusum_k"
            )
        classes = np.unique(y[train])
        if classes.size < 2:
            raise FoldError(
                f"{name}: its {train.size} training labels are all of class {classes.tolist()}; "
                "a classifier needs two: widen the window or change the barriers (pt_sl)"
            )
        folds.append(
            Fold(
                index=k,
                train=train,
                test=test,
                test_groups=tuple(groups[k]) if groups is not None else (k,),
                test_units=np.sort(test_units),
                blocks=blocks,
            )
        )
    return FoldPlan(samples, sessions, folds, cv, n_splits, n_test_groups, splitter)


# --------------------------------------------------------------------------- one fold


def fold_predictions(
    plan: FoldPlan, fold: Fold, params: TrialParams
) -> tuple[pl.DataFrame, Model, np.ndarray]:
    """Fit on the fold's training samples, predict its test samples.

    Returns the predictions (``symbol, ts, p_up, p_down, expires`` with ``ts`` the event time
    and ``expires`` its label's end), the fitted model and the probability matrix.
    """
    samples = plan.samples
    model = build_model(params)
    X_train = samples.X[fold.train]
    try:
        model.fit(X_train, samples.y[fold.train], sample_weight=samples.weights[fold.train])
    except ValueError as exc:
        raise FoldError(f"fold {fold.index}: {exc}") from exc
    X_test = samples.X[fold.test]
    proba = (
        model.predict_proba(X_test) if fold.test.size else np.zeros((0, len(model.classes_)))  # type: ignore[arg-type]
    )
    p_up, p_down = up_down(model, proba)
    events = samples.events[fold.test]
    predictions = pl.DataFrame(
        {
            "symbol": events["symbol"],
            "ts": events["t0"],
            "p_up": p_up,
            "p_down": p_down,
            "expires": events["t1"],
            "day": events["day"],
        }
    )
    return predictions, model, proba


def _backtest_block(
    dataset: ResearchDataset,
    params: TrialParams,
    predictions: pl.DataFrame,
    first: date,
    last: date,
    *,
    costs: str,
    initial_cash: float,
    backtest_bars: BacktestBars,
    engine: Engine,
    label: str,
) -> Any:
    if backtest_bars == "minute":
        bars = dataset.minute_window(first, last, WARMUP_SESSIONS)
    else:
        raw = dataset.research_bars(params.bar_interval, adjusted=False)
        sessions = dataset.sessions
        k = sessions.index(first)
        start = sessions[max(0, k - WARMUP_SESSIONS)]
        bars = raw.filter(pl.col("day").is_between(start, last)).drop("day")
    block = predictions.filter(pl.col("day").is_between(first, last)).drop("day")
    strategy = PredictionStrategy(
        block,
        params.prob_threshold,
        position_notional=params.position_weight * initial_cash,
        long_only=params.long_only,
        strategy_id="research",
    )
    config = BacktestConfig(
        start=first,
        end=last + timedelta(days=1),
        costs=costs,
        initial_cash=initial_cash,
        risk=RiskLimits(allow_short=not params.long_only),
        mark_interval_minutes=None,
        tca=False,
        name=label,
    )
    run = run_fast if engine == "fast" else run_backtest
    result = run(config, strategy, bars, corporate_actions=dataset.corporate_actions)
    if result.error is not None:
        raise RuntimeError(f"{label}: the backtest stopped: {result.error}")
    return result


def evaluate_fold(
    plan: FoldPlan,
    fold: Fold,
    params: TrialParams,
    dataset: ResearchDataset,
    *,
    costs: str = "bist",
    initial_cash: float = 1_000_000.0,
    backtest_bars: BacktestBars = "minute",
    engine: Engine = "fast",
) -> tuple[FoldResult, pl.DataFrame]:
    """Train, predict and backtest one fold; returns its result and its predictions."""
    predictions, model, proba = fold_predictions(plan, fold, params)
    accuracy, log_loss = _classification_metrics(model, proba, plan.samples.y[fold.test])
    days: list[date] = []
    returns: list[float] = []
    turnover: list[float] = []
    trades = round_trips = rejects = 0
    fees = 0.0
    for first, last in fold.blocks:
        result = _backtest_block(
            dataset,
            params,
            predictions,
            first,
            last,
            costs=costs,
            initial_cash=initial_cash,
            backtest_bars=backtest_bars,
            engine=engine,
            label=f"fold {fold.index} {first}..{last}",
        )
        daily = result.daily
        days += daily["day"].to_list()
        returns += daily["returns"].to_list()
        turnover += daily["turnover"].fill_null(0.0).to_list()
        trades += result.fills.height
        round_trips += result.round_trips.height
        rejects += int(result.orders.filter(pl.col("status") == "REJECTED").height)
        fees += float(result.fills["fees"].sum()) if result.fills.height else 0.0
    expected = [plan.sessions[int(u)] for u in fold.test_units]
    if days != expected:
        raise RuntimeError(
            f"fold {fold.index}: the backtest returned sessions {days[:3]}... for the test "
            f"sessions {expected[:3]}..."
        )
    train_t0 = plan.samples.events["t0"][fold.train]
    r = np.asarray(returns, dtype=float)
    fold_result = FoldResult(
        fold=fold.index,
        test_groups=fold.test_groups,
        train_start=train_t0.min() if train_t0.len() else None,
        train_end=train_t0.max() if train_t0.len() else None,
        test_start=expected[0],
        test_end=expected[-1],
        test_sessions=len(expected),
        n_train=int(fold.train.size),
        n_test=int(fold.test.size),
        accuracy=accuracy,
        log_loss=log_loss,
        sharpe=_finite(sharpe_ratio(r, periods_per_year=1)),
        sharpe_annual=_finite(sharpe_ratio(r, periods_per_year=PERIODS_PER_YEAR)),
        total_return=float(total_return(r)),
        trades=trades,
        round_trips=round_trips,
        fees=round(fees, 2),
        turnover=float(np.mean(turnover)) if turnover else 0.0,
        rejects=rejects,
        days=days,
        returns=[float(x) for x in returns],
    )
    return fold_result, predictions


# --------------------------------------------------------------------------- the trial


def _check_completed(fold: Fold, done: FoldResult, plan: FoldPlan) -> None:
    expected = (
        plan.sessions[int(fold.test_units[0])],
        plan.sessions[int(fold.test_units[-1])],
        int(fold.train.size),
        int(fold.test.size),
        fold.test_groups,
    )
    found = (done.test_start, done.test_end, done.n_train, done.n_test, tuple(done.test_groups))
    if expected != found:
        raise ValueError(
            f"completed fold {fold.index} does not belong to this trial's plan (test "
            f"{found[0]}..{found[1]}, {found[2]} train / {found[3]} test samples; the plan has "
            f"{expected[0]}..{expected[1]}, {expected[2]} / {expected[3]}): it was computed "
            "with other parameters or data"
        )


def evaluate_trial(
    params: TrialParams,
    dataset: ResearchDataset,
    cv: CvKind = "walk_forward",
    n_splits: int = 4,
    pct_embargo: float = 0.01,
    costs: str = "bist",
    on_fold: Callable[[FoldResult], None] | None = None,
    *,
    completed_folds: Sequence[FoldResult] = (),
    n_test_groups: int = 2,
    initial_cash: float = 1_000_000.0,
    backtest_bars: BacktestBars = "minute",
    min_train_samples: int = MIN_TRAIN_SAMPLES,
    engine: Engine = "fast",
) -> TrialResult:
    """Evaluate ``params`` out of sample on ``dataset`` (see the module docstring)."""
    if costs not in ("bist", "none"):
        raise ValueError(f"costs must be 'bist' or 'none', got {costs!r}")
    if backtest_bars not in ("minute", "research"):
        raise ValueError(f"backtest_bars must be 'minute' or 'research', got {backtest_bars!r}")
    if engine not in ("fast", "event"):
        raise ValueError(f"engine must be 'fast' or 'event', got {engine!r}")
    plan = plan_folds(
        params,
        dataset,
        cv,
        n_splits,
        pct_embargo,
        n_test_groups=n_test_groups,
        min_train_samples=min_train_samples,
    )
    done = {f.fold: f for f in completed_folds}
    unknown = sorted(set(done) - {f.index for f in plan.folds})
    if unknown:
        raise ValueError(f"completed folds {unknown} are not folds of this plan")
    results: list[FoldResult] = []
    for fold in plan.folds:
        previous = done.get(fold.index)
        if previous is not None:
            _check_completed(fold, previous, plan)
            results.append(previous)
            continue
        result, _ = evaluate_fold(
            plan,
            fold,
            params,
            dataset,
            costs=costs,
            initial_cash=initial_cash,
            backtest_bars=backtest_bars,
            engine=engine,
        )
        results.append(result)
        if on_fold is not None:
            on_fold(result)
    return assemble_trial(params, plan, results, pct_embargo, costs, backtest_bars)


def partial_score(folds: Sequence[FoldResult]) -> float:
    """The annualised Sharpe ratio of the daily returns of ``folds`` stitched in order (0
    without dispersion): a walk-forward trial's score so far, for early stopping (ASHA)."""
    r = np.array([x for f in folds for x in f.returns], dtype=float)
    value = _finite(sharpe_ratio(r, periods_per_year=PERIODS_PER_YEAR))
    return 0.0 if value is None else value


def assemble_trial(
    params: TrialParams,
    plan: FoldPlan,
    folds: Sequence[FoldResult],
    pct_embargo: float,
    costs: str,
    backtest_bars: BacktestBars,
) -> TrialResult:
    """The trial's figures from its folds alone (so a resumed trial equals an uninterrupted one)."""
    if isinstance(plan.splitter, CombinatorialPurgedCV):
        per_split = []
        for fold, result in zip(plan.folds, folds, strict=True):
            by_day = dict(zip(result.days, result.returns, strict=True))
            per_split.append(np.array([by_day[plan.sessions[int(u)]] for u in fold.test_units]))
        paths = plan.splitter.assemble_paths(per_split)
        days = list(plan.sessions)
        series = paths.mean(axis=0)
        path_sharpes = [_finite(sharpe_ratio(p, periods_per_year=1)) for p in paths]
    else:
        days = [d for f in folds for d in f.days]
        series = np.array([r for f in folds for r in f.returns], dtype=float)
        path_sharpes = [_finite(sharpe_ratio(series, periods_per_year=1))]
    n_test = sum(f.n_test for f in folds)
    accuracy = (
        sum(f.accuracy * f.n_test for f in folds if f.accuracy is not None) / n_test
        if n_test
        else None
    )
    log_loss = (
        sum(f.log_loss * f.n_test for f in folds if f.log_loss is not None) / n_test
        if n_test
        else None
    )
    sharpe_annual = _finite(sharpe_ratio(series, periods_per_year=PERIODS_PER_YEAR))
    return TrialResult(
        params=params,
        trial_id=params.trial_id,
        cv=plan.cv,
        n_splits=plan.n_splits,
        n_test_groups=plan.n_test_groups,
        pct_embargo=pct_embargo,
        costs=costs,
        backtest_bars=backtest_bars,
        folds=list(folds),
        days=days,
        returns=[float(x) for x in series],
        sharpe=_finite(sharpe_ratio(series, periods_per_year=1)),
        sharpe_annual=sharpe_annual,
        n_obs=int(series.size),
        skewness=_finite(skewness(series)),
        kurtosis=_finite(kurtosis(series)),
        total_return=float(total_return(series)),
        path_sharpes=path_sharpes,
        accuracy=accuracy,
        log_loss=log_loss,
        fees=round(sum(f.fees for f in folds), 2),
        trades=sum(f.trades for f in folds),
        score=sharpe_annual if sharpe_annual is not None else 0.0,
    )


__all__ = [
    "MIN_TEST_SESSIONS",
    "MIN_TRAIN_SAMPLES",
    "Fold",
    "FoldError",
    "FoldPlan",
    "FoldResult",
    "TrialResult",
    "assemble_trial",
    "build_model",
    "evaluate_fold",
    "evaluate_trial",
    "fold_predictions",
    "partial_score",
    "plan_folds",
    "up_down",
]
