"""The winner, retrained on the whole window and registered as a candidate with its lineage.

Cross-validation chose the parameters; the model that goes to the registry is fitted once more
on every labelled sample of the window, with the same weights and seed (``train_final``).
``register_winner`` stores it as a ``candidate`` in a ``quant.models.ModelRegistry`` with
what it takes to trust and rebuild it: the data snapshot hash, the feature list, the training
window (first event to last label end), the out-of-sample metrics, the deflated Sharpe ratio
and the PBO of the sweep that chose it, the trial id and its full parameters (from which
``quant.research.dataset.feature_pipeline`` rebuilds the features live).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quant.models.base import Model
from quant.models.registry import ModelRegistry, ModelVersion, TimeLike
from quant.research.dataset import DataWindowError, ResearchDataset, feature_spec
from quant.research.evaluate import MIN_TRAIN_SAMPLES, build_model
from quant.research.params import TrialParams
from quant.research.selection import Selection


def train_final(params: TrialParams, dataset: ResearchDataset) -> Model:
    """The trial's model fitted on every sample of the window (weights: average uniqueness)."""
    samples = dataset.samples(params)
    if len(samples) < MIN_TRAIN_SAMPLES:
        raise DataWindowError(
            f"{len(samples)} labelled samples in the window; the final model needs at least "
            f"{MIN_TRAIN_SAMPLES}"
        )
    classes = np.unique(samples.y)
    if classes.size < 2:
        raise DataWindowError(
            f"every label in the window is of class {classes.tolist()}: a classifier needs two"
        )
    model = build_model(params)
    return model.fit(samples.X, samples.y, sample_weight=samples.weights)


def cv_metrics(selection: Selection) -> dict[str, Any]:
    """The winner's out-of-sample figures and the sweep's overfitting statistics."""
    best = selection.best
    folds = [
        {
            "fold": f.fold,
            "test_start": f.test_start.isoformat(),
            "test_end": f.test_end.isoformat(),
            "n_train": f.n_train,
            "n_test": f.n_test,
            "accuracy": f.accuracy,
            "log_loss": f.log_loss,
            "sharpe": f.sharpe,
            "sharpe_annual": f.sharpe_annual,
            "total_return": f.total_return,
            "trades": f.trades,
            "fees": f.fees,
            "turnover": f.turnover,
        }
        for f in best.folds
    ]
    return {
        "cv": best.cv,
        "n_splits": best.n_splits,
        "n_test_groups": best.n_test_groups,
        "pct_embargo": best.pct_embargo,
        "costs": best.costs,
        "backtest_bars": best.backtest_bars,
        "score": best.score,
        "sharpe": best.sharpe,
        "sharpe_annual": best.sharpe_annual,
        "n_obs": best.n_obs,
        "skewness": best.skewness,
        "kurtosis": best.kurtosis,
        "total_return": best.total_return,
        "accuracy": best.accuracy,
        "log_loss": best.log_loss,
        "fees": best.fees,
        "trades": best.trades,
        "path_sharpes": best.path_sharpes,
        "deflated_sharpe": selection.deflated_sharpe,
        "pbo": selection.pbo,
        "n_trials": selection.n_trials,
        "folds": folds,
    }


def register_winner(
    registry: ModelRegistry,
    model: Model,
    selection: Selection,
    dataset: ResearchDataset,
    *,
    name: str,
    created_at: TimeLike | None,
    git_commit: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register ``model`` (``train_final`` of the winner) as a candidate with its lineage."""
    params = selection.best.params
    samples = dataset.samples(params)
    if not model.is_fitted:
        raise ValueError("register_winner takes the fitted final model (see train_final)")
    if tuple(model.feature_names) != samples.feature_names:
        raise ValueError(
            f"the model's features {model.feature_names} are not the winning trial's "
            f"{list(samples.feature_names)}: train it with train_final(selection.best.params, ...)"
        )
    sessions = dataset.sessions
    lineage: dict[str, Any] = {
        "trial_id": selection.best.trial_id,
        "trial_params": params.model_dump(mode="json"),
        "selection": {
            "n_trials": selection.n_trials,
            "sharpe_variance": selection.sharpe_variance,
            "expected_max_sharpe": selection.expected_max_sharpe,
            "deflated_sharpe": selection.deflated_sharpe,
            "pbo": selection.pbo,
            "pbo_note": selection.pbo_note,
            "aligned_days": selection.aligned_days,
        },
        "feature_spec": feature_spec(params),
        "labels": {
            "cusum_k": params.cusum_k,
            "pt_sl": list(params.pt_sl),
            "vertical_bars": params.vertical_bars,
            "vol_span": params.vol_span,
            "vertical_label": params.vertical_label,
        },
        "bar_interval": params.bar_interval,
        "symbols": dataset.symbols,
        "sessions": {
            "first": sessions[0].isoformat(),
            "last": sessions[-1].isoformat(),
            "count": len(sessions),
        },
        "n_samples": len(samples),
        "synthetic": dataset.synthetic,
    }
    clash = sorted(set(lineage) & set(extra or {}))
    if clash:
        raise ValueError(f"extra may not override the lineage keys {clash}")
    lineage.update(extra or {})
    return registry.register(
        model,
        name,
        created_at=created_at,
        git_commit=git_commit,
        data_hash=dataset.data_hash,
        features=list(samples.feature_names),
        train_start=int(samples.t0_ns.min()),
        train_end=int(samples.t1_ns.max()),
        cv_metrics=cv_metrics(selection),
        deflated_sharpe=selection.deflated_sharpe,
        extra=lineage,
    )
