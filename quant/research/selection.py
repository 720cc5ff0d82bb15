"""Choosing among trials without fooling ourselves: deflated Sharpe ratio and PBO.

A sweep keeps the trial with the best out-of-sample Sharpe ratio, and that maximum is inflated
by the search itself. ``select_by_deflated_sharpe`` reports, besides the winner:

- its **deflated Sharpe ratio** (Bailey and López de Prado 2014): the probability that its
  true Sharpe ratio is above zero once the selection among N trials is accounted for, with
  ``quant.metrics.deflated_sharpe_ratio``: the winner's per-period (daily) Sharpe ratio, its
  sample length, skewness and non-excess kurtosis, N = the number of trials (every trial
  evaluated counts as a try, also those whose Sharpe ratio is undefined because they never
  traded; pass ``n_trials`` to count failed trials too) and V = the sample variance (ddof=1)
  of the trials' defined per-period Sharpe ratios;
- the **probability of backtest overfitting** by CSCV (Bailey, Borwein, López de Prado and
  Zhu 2014) over the T x N matrix of the trials' daily out-of-sample returns. Trials are
  aligned by day: a day missing from any trial (trials tested on different windows, e.g.
  with different fold counts) is dropped, and how many were dropped is reported. The matrix is
  cut into S blocks (``n_submatrices``; by default the largest even number up to 16 that
  leaves every block two days at least); PBO is not computed (None, with the reason) for
  fewer than two trials or fewer than four aligned days.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quant.metrics import (
    BacktestOverfitting,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probability_of_backtest_overfitting,
)
from quant.research.evaluate import TrialResult

MAX_SUBMATRICES = 16


@dataclass(frozen=True)
class Selection:
    """The chosen trial and how much of its Sharpe ratio survives the search."""

    best: TrialResult
    best_index: int
    """Position of the winner in the trials given."""
    n_trials: int
    sharpe_variance: float
    """Sample variance of the trials' per-period Sharpe ratios (V)."""
    expected_max_sharpe: float
    """SR0: the per-period Sharpe ratio the best of N unskilled trials is expected to reach."""
    deflated_sharpe: float | None
    pbo: float | None
    pbo_note: str | None
    """Why PBO was not computed, when it was not."""
    overfitting: BacktestOverfitting | None
    aligned_days: int
    dropped_days: int
    table: pl.DataFrame
    """One row per trial, best first: its figures and its parameters (JSON)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (NaN as None), for reports, the registry and the CLI."""
        overfit = None
        if self.overfitting is not None:
            o = self.overfitting
            overfit = {
                "pbo": o.pbo,
                "n_submatrices": o.n_submatrices,
                "n_combinations": o.n_combinations,
                "rows_dropped": o.rows_dropped,
                "prob_oos_loss": o.prob_oos_loss,
                "logit_mean": float(np.mean(o.logits[np.isfinite(o.logits)]))
                if np.isfinite(o.logits).any()
                else None,
            }
        return _json_safe(
            {
                "best_index": self.best_index,
                "best_trial_id": self.best.trial_id,
                "best_params": self.best.params.model_dump(mode="json"),
                "best_score": self.best.score,
                "best_sharpe": self.best.sharpe,
                "best_sharpe_annual": self.best.sharpe_annual,
                "n_trials": self.n_trials,
                "sharpe_variance": self.sharpe_variance,
                "expected_max_sharpe": self.expected_max_sharpe,
                "deflated_sharpe": self.deflated_sharpe,
                "pbo": self.pbo,
                "pbo_note": self.pbo_note,
                "overfitting": overfit,
                "aligned_days": self.aligned_days,
                "dropped_days": self.dropped_days,
                "trials": self.table.to_dicts(),
            }
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _sharpe(trial: TrialResult) -> float:
    return math.nan if trial.sharpe is None else float(trial.sharpe)


def returns_matrix(trials: Sequence[TrialResult]) -> tuple[pl.DataFrame, int]:
    """The trials' daily out-of-sample returns side by side (``day``, ``t0``, ``t1`` ...) on
    the days every trial has, and how many days of the union were dropped."""
    frames = [t.oos_returns.rename({"returns": f"t{k}"}) for k, t in enumerate(trials)]
    days: set[Any] = set()
    for frame in frames:
        days.update(frame["day"].to_list())
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on="day", how="inner")
    joined = joined.sort("day")
    return joined, len(days) - joined.height


def default_submatrices(n_days: int) -> int:
    """The largest even S <= 16 leaving every block two days at least (0 if none)."""
    s = min(MAX_SUBMATRICES, n_days // 2)
    return s - (s % 2)


def select_by_deflated_sharpe(
    trials: Sequence[TrialResult],
    *,
    n_trials: int | None = None,
    n_submatrices: int | None = None,
) -> Selection:
    """The best trial by out-of-sample Sharpe ratio, with its DSR and the sweep's PBO."""
    trials = list(trials)
    if not trials:
        raise ValueError("no trials to select from")
    n = len(trials) if n_trials is None else int(n_trials)
    if n < len(trials):
        raise ValueError(f"n_trials={n_trials} is fewer than the {len(trials)} trials given")
    sharpes = np.array([_sharpe(t) for t in trials])
    finite = np.isfinite(sharpes)
    if finite.any():
        best_index = int(np.argmax(np.where(finite, sharpes, -np.inf)))
    else:  # nobody traded: every score is 0, keep the first
        best_index = int(np.argmax([t.score for t in trials]))
    best = trials[best_index]
    variance = float(np.var(sharpes[finite], ddof=1)) if finite.sum() > 1 else 0.0
    sr0 = expected_max_sharpe(n, variance)
    dsr = None
    if best.sharpe is not None and best.skewness is not None and best.kurtosis is not None:
        value = deflated_sharpe_ratio(
            best.sharpe, n, variance, best.n_obs, best.skewness, best.kurtosis
        )
        dsr = value if math.isfinite(value) else None

    matrix, dropped = returns_matrix(trials)
    aligned = matrix.height
    pbo: float | None = None
    note: str | None = None
    overfitting: BacktestOverfitting | None = None
    s = default_submatrices(aligned) if n_submatrices is None else int(n_submatrices)
    if len(trials) < 2:
        note = "PBO needs two trials at least"
    elif s < 2:
        note = f"PBO needs four aligned days at least, the trials share {aligned}"
    else:
        values = matrix.drop("day").to_numpy()
        overfitting = probability_of_backtest_overfitting(values, n_submatrices=s)
        pbo = overfitting.pbo

    order = sorted(
        range(len(trials)),
        key=lambda k: (-(sharpes[k]) if finite[k] else math.inf, k),
    )
    rows = []
    for rank, k in enumerate(order, start=1):
        t = trials[k]
        rows.append(
            {
                "rank": rank,
                "index": k,
                "trial_id": t.trial_id,
                "score": t.score,
                "sharpe": t.sharpe,
                "sharpe_annual": t.sharpe_annual,
                "n_obs": t.n_obs,
                "skewness": t.skewness,
                "kurtosis": t.kurtosis,
                "total_return": t.total_return,
                "accuracy": t.accuracy,
                "log_loss": t.log_loss,
                "trades": t.trades,
                "fees": t.fees,
                "model": t.params.model,
                "params": json.dumps(t.params.model_dump(mode="json"), sort_keys=True),
            }
        )
    schema = {
        "rank": pl.Int64,
        "index": pl.Int64,
        "trial_id": pl.String,
        "score": pl.Float64,
        "sharpe": pl.Float64,
        "sharpe_annual": pl.Float64,
        "n_obs": pl.Int64,
        "skewness": pl.Float64,
        "kurtosis": pl.Float64,
        "total_return": pl.Float64,
        "accuracy": pl.Float64,
        "log_loss": pl.Float64,
        "trades": pl.Int64,
        "fees": pl.Float64,
        "model": pl.String,
        "params": pl.String,
    }
    return Selection(
        best=best,
        best_index=best_index,
        n_trials=n,
        sharpe_variance=variance,
        expected_max_sharpe=sr0,
        deflated_sharpe=dsr,
        pbo=pbo,
        pbo_note=note,
        overfitting=overfitting,
        aligned_days=aligned,
        dropped_days=dropped,
        table=pl.DataFrame(rows, schema=schema, orient="row"),
    )
