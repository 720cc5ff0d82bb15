"""Feature importance beyond SHAP: MDI (in-sample, from the trees) and MDA (out of sample).

López de Prado, *Advances in Financial Machine Learning*, ch. 8:

- **MDI** (mean decrease impurity, 8.3.1): how much the trees' splits on a feature reduced the
  loss, here xgboost's ``total_gain`` (``gain`` is the same divided by the number of splits),
  normalised to sum to one. Fast, in-sample, and biased towards features with many distinct
  values; use it to screen, not to decide.
- **MDA** (mean decrease accuracy, snippet 8.3): fit on each training fold, score the test fold,
  then permute one feature's column in the test fold and score again; a feature matters as much
  as the score falls. Folds come in as ``(train_index, test_index)`` pairs from a *purged and
  embargoed* splitter (``quant.cv``): with overlapping labels, unpurged folds leak and every
  feature looks useful. The importance of feature j in fold i is AFML's normalised drop::

      log-loss (and MSE):  (score0_i - score1_ij) / -score1_ij
      accuracy:            (score0_i - score1_ij) / (1 - score1_ij)

  with scores oriented so that higher is better (negative log-loss); the table reports the mean
  over folds and its standard error (std · folds^-1/2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import polars as pl
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

from quant.models.base import (
    FeatureInput,
    Model,
    TargetInput,
    check_weights,
    default_feature_names,
    to_vector,
)
from quant.models.xgb import IMPORTANCE_TYPES, _XGBModel

Scoring = Literal["log_loss", "accuracy", "neg_mse"]


def mdi_importance(model: _XGBModel, importance_type: str = "total_gain") -> pl.DataFrame:
    """xgboost split importance per feature, normalised to sum to one, largest first.

    Columns ``feature`` and ``importance``; features never split on have 0.
    """
    if not isinstance(model, _XGBModel):
        raise TypeError(f"MDI needs a tree model, not {type(model).__name__}")
    if importance_type not in IMPORTANCE_TYPES:
        raise ValueError(f"importance_type must be one of {IMPORTANCE_TYPES}")
    raw = model.feature_importance(importance_type)
    values = np.array(list(raw.values()), dtype=np.float64)
    total = values.sum()
    if total > 0:
        values = values / total
    return pl.DataFrame({"feature": list(raw), "importance": values}).sort(
        ["importance", "feature"], descending=[True, False]
    )


@dataclass(frozen=True)
class MDAResult:
    """MDA per feature (``importance``: ``feature``, ``mean``, ``std``; largest mean first),
    the per-fold importances (rows = folds), and the unpermuted score of each fold."""

    importance: pl.DataFrame
    per_fold: pl.DataFrame
    fold_scores: np.ndarray
    scoring: str

    @property
    def baseline_score(self) -> float:
        """Mean out-of-sample score before any permutation (higher is better)."""
        return float(self.fold_scores.mean())


def _as_polars(X: FeatureInput, names: Sequence[str] | None) -> pl.DataFrame:
    if isinstance(X, pl.DataFrame):
        return X
    if isinstance(X, pd.DataFrame):
        return pl.from_pandas(X.rename(columns={c: str(c) for c in X.columns}))
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"features must be 2-d, got shape {arr.shape}")
    cols = list(names) if names is not None else default_feature_names(arr.shape[1])
    return pl.DataFrame(arr, schema=cols, orient="row")


def _score(
    model: Model, X: pl.DataFrame, y: np.ndarray, w: np.ndarray | None, scoring: Scoring
) -> float:
    if scoring == "log_loss":
        assert model.classes_ is not None
        return -float(log_loss(y, model.predict_proba(X), sample_weight=w, labels=model.classes_))
    if scoring == "accuracy":
        return float(accuracy_score(y, model.predict(X), sample_weight=w))
    return -float(mean_squared_error(y, model.predict(X), sample_weight=w))


def mda_importance(
    model: Model,
    X: FeatureInput,
    y: TargetInput,
    folds: Iterable[tuple[Sequence[int] | np.ndarray, Sequence[int] | np.ndarray]],
    sample_weight: TargetInput | None = None,
    scoring: Scoring = "log_loss",
    n_repeats: int = 1,
    seed: int = 0,
) -> MDAResult:
    """Permutation importance out of sample over purged folds (AFML snippet 8.3).

    ``model`` is a template: each fold fits ``model.clone()`` on its training rows (with their
    sample weights), so the caller's model is left as it was. ``n_repeats`` permutations per
    feature and fold are averaged (AFML uses one). Permutations come from ``seed``.
    """
    if scoring not in ("log_loss", "accuracy", "neg_mse"):
        raise ValueError(f"scoring must be 'log_loss', 'accuracy' or 'neg_mse', got {scoring!r}")
    if scoring != "neg_mse" and model.task != "classification":
        raise ValueError(f"scoring {scoring!r} needs a classifier; use 'neg_mse' for a regressor")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    frame = _as_polars(X, getattr(model, "requested_features", None))
    target = to_vector(y)
    assert target is not None
    if len(target) != frame.height:
        raise ValueError(f"y has {len(target)} rows for {frame.height} feature rows")
    weights = check_weights(sample_weight, frame.height)
    fold_list = [
        (np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in folds
    ]
    if not fold_list:
        raise ValueError("MDA needs at least one (train, test) fold")
    rng = np.random.default_rng(seed)
    base_scores: list[float] = []
    rows: list[dict[str, float]] = []
    features: list[str] | None = None
    for i, (train, test) in enumerate(fold_list):
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"fold {i} has an empty train or test set")
        if np.intersect1d(train, test).size:
            raise ValueError(f"fold {i}: train and test rows overlap")
        fitted = model.clone().fit(
            frame[train], target[train], sample_weight=None if weights is None else weights[train]
        )
        features = fitted.feature_names
        X1, y1 = frame[test], target[test]
        w1 = None if weights is None else weights[test]
        scr0 = _score(fitted, X1, y1, w1, scoring)
        base_scores.append(scr0)
        row: dict[str, float] = {}
        for name in features:
            column = X1.get_column(name)
            drops = []
            for _ in range(n_repeats):
                permuted = X1.with_columns(column.gather(rng.permutation(len(test))).alias(name))
                scr1 = _score(fitted, permuted, y1, w1, scoring)
                denom = (1.0 - scr1) if scoring == "accuracy" else -scr1
                drops.append((scr0 - scr1) / denom if denom != 0 else 0.0)
            row[name] = float(np.mean(drops))
        rows.append(row)
    assert features is not None
    per_fold = pl.DataFrame(rows).select(features)
    values = per_fold.to_numpy()
    mean = values.mean(axis=0)
    std = (
        values.std(axis=0, ddof=1) * len(values) ** -0.5
        if len(values) > 1
        else np.full(len(mean), np.nan)
    )
    table = pl.DataFrame({"feature": features, "mean": mean, "std": std}).sort(
        ["mean", "feature"], descending=[True, False]
    )
    return MDAResult(table, per_fold, np.asarray(base_scores), scoring)


def importance_figure(
    table: pl.DataFrame,
    value: str = "mean",
    error: str | None = "std",
    title: str = "Feature importance",
    max_features: int = 20,
) -> go.Figure:
    """Horizontal bars of an importance table (MDI, MDA or mean |SHAP|), largest at the top."""
    top = table.sort(value, descending=True).head(max_features).reverse()
    err = None
    if error is not None and error in top.columns:
        err = {"type": "data", "array": top[error].fill_nan(0.0).fill_null(0.0).to_list()}
    fig = go.Figure(
        go.Bar(
            x=top[value].to_list(),
            y=top["feature"].to_list(),
            orientation="h",
            error_x=err,
            marker_color="#1f5fbf",
        )
    )
    fig.update_layout(
        template="plotly_white",
        title=title,
        height=max(320, 28 * top.height + 120),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        xaxis_title=value,
    )
    return fig
