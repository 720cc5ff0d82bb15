"""SHAP explanations: which features moved each prediction, and by how much.

Two explainers cover every model here:

- :func:`explain_tree` runs TreeSHAP on an XGBoost booster (shap's ``TreeExplainer``, exact and
  fast; ``method="native"`` uses xgboost's own ``pred_contribs=True``, the same algorithm, and the
  tests check the two agree). It explains the **margin** (log-odds for a classifier), where
  contributions add up: ``base_value + sum(contributions) == predict_margin(x)``.
- :func:`explain_kernel` runs Kernel SHAP against a background sample and works for any model
  (torch networks, ensembles, calibrated models). It explains the model's **probability** of one
  class (or a regressor's prediction), with the same additivity against the background mean.
  With up to ``EXACT_KERNEL_MAX_FEATURES`` inputs every coalition is enumerated, so the values
  are the exact (interventional) Shapley values and no random sampling is involved; above that
  shap samples coalitions, from a seeded generator. A :class:`~quant.models.torch_models.
  SequenceModel` is explained over its whole input window (every lag of every feature), and the
  lags of a feature are summed into one contribution: sums keep additivity. The per-lag values
  are kept in ``Explanation.lag_values``.

Gradient-based explainers (shap's Deep/GradientExplainer) are not used: their torch hooks track
torch's internals and break across releases, while Kernel SHAP only calls ``predict_proba``.

:meth:`Explanation.global_importance` is the mean absolute SHAP value per feature;
:meth:`Explanation.contributions` is one prediction's breakdown; :func:`shap_summary_figure`
draws either as a Plotly figure for reports.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import polars as pl

from quant.models.base import FeatureInput, Model, n_rows, to_matrix
from quant.models.torch_models import SequenceModel
from quant.models.xgb import _XGBModel

EXACT_KERNEL_MAX_FEATURES = 12
"""Kernel SHAP enumerates all 2^M coalitions up to this many inputs (4,094 model calls per
background row and explained row at 12)."""

ADDITIVITY_RTOL = 1e-4


def _shap() -> Any:
    """shap, imported on first use (it takes a second) and without the deprecation noise its
    colour maps raise on import under recent matplotlib."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap


class AdditivityError(AssertionError):
    """Contributions plus base value do not reproduce the model output they explain."""


@dataclass(frozen=True)
class Explanation:
    """SHAP values of some rows: ``base_values + values.sum(axis=1)`` is the explained output.

    ``values`` and ``data`` are (n_rows, n_features); ``output`` names what is explained (e.g.
    ``"log-odds of class 1"``); ``lag_values`` (sequence models only) is
    (n_rows, lookback, n_features), oldest lag first, summing to ``values`` over the lag axis.
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    output: str
    method: str
    lag_values: np.ndarray | None = None

    @property
    def explained_output(self) -> np.ndarray:
        """What the contributions add up to, per row."""
        return self.base_values + self.values.sum(axis=1)

    def global_importance(self) -> pl.DataFrame:
        """Mean |SHAP| per feature, largest first (columns ``feature``, ``mean_abs_shap``)."""
        imp = (
            np.abs(self.values).mean(axis=0)
            if len(self.values)
            else np.zeros(len(self.feature_names))
        )
        return pl.DataFrame(
            {"feature": self.feature_names, "mean_abs_shap": imp.astype(np.float64)}
        ).sort(["mean_abs_shap", "feature"], descending=[True, False])

    def contributions(self, row: int) -> pl.DataFrame:
        """One row's breakdown: ``feature``, its ``value`` and its ``contribution``, the largest
        in absolute size first; the base value and the output are in :attr:`base_values` and
        :attr:`explained_output`."""
        return pl.DataFrame(
            {
                "feature": self.feature_names,
                "value": self.data[row].astype(np.float64),
                "contribution": self.values[row].astype(np.float64),
            }
        ).sort(pl.col("contribution").abs(), descending=True)

    def to_frame(self) -> pl.DataFrame:
        """One row per explained row: ``base_value`` and one SHAP column per feature."""
        cols: dict[str, Any] = {"base_value": self.base_values.astype(np.float64)}
        for j, name in enumerate(self.feature_names):
            cols[name] = self.values[:, j].astype(np.float64)
        return pl.DataFrame(cols)


def _class_index(model: Model, class_index: int | None) -> int | None:
    """Which output column to explain: the last class of a binary classifier by default; a
    multi-class model must be told (an arbitrary default would mislead)."""
    if model.task != "classification":
        return None
    classes = model.classes_
    assert classes is not None
    if class_index is None:
        if len(classes) == 2:
            return 1
        raise ValueError(
            f"the model has {len(classes)} classes {classes.tolist()}: pass class_index= "
            "to choose which one to explain"
        )
    if not 0 <= class_index < len(classes):
        raise ValueError(f"class_index {class_index} out of range for classes {classes.tolist()}")
    return class_index


def _check_additivity(expected: np.ndarray, expl: Explanation, atol: float) -> None:
    got = expl.explained_output
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    err = float(np.abs(got - expected).max(initial=0.0))
    if err > max(atol, ADDITIVITY_RTOL * scale):
        raise AdditivityError(
            f"{expl.method} SHAP values do not add up to the model output: max error {err:.3g}"
        )


# --------------------------------------------------------------------------- trees


def xgb_native_contributions(
    model: _XGBModel, X: FeatureInput, class_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(contributions, bias) from xgboost's ``pred_contribs=True`` (exact TreeSHAP)."""
    import xgboost as xgb

    model._require_fitted()
    assert model.booster is not None
    dm = xgb.DMatrix(to_matrix(X, model.feature_names), nthread=model.nthread)
    contribs = np.asarray(model.booster.predict(dm, pred_contribs=True), dtype=np.float64)
    if contribs.ndim == 3:  # (n, classes, features + 1)
        assert class_index is not None
        contribs = contribs[:, class_index, :]
    return contribs[:, :-1], contribs[:, -1]


def explain_tree(
    model: _XGBModel,
    X: FeatureInput,
    class_index: int | None = None,
    method: Literal["shap", "native"] = "shap",
    check_additivity: bool = True,
) -> Explanation:
    """TreeSHAP of an XGBoost model's margin for the rows of ``X``.

    For a binary classifier the margin is the log-odds of the last class; for a multi-class one,
    the raw score of ``class_index``; for a regressor, the prediction (squared error).
    """
    if not isinstance(model, _XGBModel):
        raise TypeError(f"explain_tree needs an XGBoost model, not {type(model).__name__}")
    model._require_fitted()
    k = _class_index(model, class_index)
    n_classes = 0 if model.classes_ is None else len(model.classes_)
    multi = n_classes > 2
    matrix = to_matrix(X, model.feature_names)
    if method == "native":
        values, base = xgb_native_contributions(model, X, k if multi else None)
    elif method == "shap":
        explainer = _shap().TreeExplainer(model.booster)
        raw = np.asarray(explainer.shap_values(matrix, check_additivity=False), dtype=np.float64)
        expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(-1)
        if multi:
            raw = raw[:, :, k] if raw.shape[-1] == n_classes else raw[k]
            expected = expected[k : k + 1]
        values, base = raw, np.full(len(matrix), float(expected[0]))
    else:
        raise ValueError(f"method must be 'shap' or 'native', got {method!r}")
    if model.task == "classification":
        label = model.classes_[k] if model.classes_ is not None else k  # type: ignore[index]
        output = f"log-odds of class {label}" if not multi else f"raw score of class {label}"
    else:
        output = "prediction"
    expl = Explanation(values, base, matrix, model.feature_names, output, f"tree-{method}")
    if check_additivity:
        margin = model.predict_margin(X)
        if multi:
            margin = margin[:, k]
        _check_additivity(margin, expl, atol=1e-4)
    return expl


# --------------------------------------------------------------------------- kernel


def _pick_background(background: FeatureInput, max_rows: int) -> np.ndarray:
    idx = np.arange(n_rows(background))
    if len(idx) > max_rows:
        idx = np.unique(np.linspace(0, len(idx) - 1, max_rows).round().astype(int))
    return idx


def _take(X: FeatureInput, idx: np.ndarray) -> FeatureInput:
    if isinstance(X, pl.DataFrame):
        return X[idx]
    if hasattr(X, "iloc"):
        return X.iloc[idx]  # type: ignore[union-attr]
    return np.asarray(X)[idx]


def _kernel_values(
    f: Any, data: np.ndarray, background: np.ndarray, nsamples: int | None, seed: int
) -> tuple[np.ndarray, float]:
    shap = _shap()
    n_inputs = data.shape[1]
    if nsamples is None:
        nsamples = 2**n_inputs - 2 if n_inputs <= EXACT_KERNEL_MAX_FEATURES else 2 * n_inputs + 2048
    # KernelExplainer draws coalitions from numpy's global generator; seed it for this call
    # and put the caller's state back.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        explainer = shap.KernelExplainer(f, background, link="identity")
        values = explainer.shap_values(data, nsamples=nsamples, l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    return np.asarray(values, dtype=np.float64).reshape(len(data), n_inputs), float(
        np.asarray(explainer.expected_value).reshape(-1)[0]
    )


def explain_kernel(
    model: Model,
    X: FeatureInput,
    background: FeatureInput,
    *,
    rows: Sequence[int] | np.ndarray | None = None,
    class_index: int | None = None,
    max_background: int = 50,
    nsamples: int | None = None,
    seed: int = 0,
    check_additivity: bool = True,
) -> Explanation:
    """Kernel SHAP of any model's probability of one class (or a regressor's prediction).

    ``background`` stands for "feature unknown": contributions are measured against the mean
    output over it (at most ``max_background`` of its rows, evenly spaced, are used: the cost
    grows linearly with it). ``rows`` picks which rows of ``X`` to explain (all by default);
    for a :class:`SequenceModel`, ``X`` must include each explained row's history, and the
    background rows are taken with their windows from ``background``.
    """
    model._require_fitted()
    k = _class_index(model, class_index)
    explain_rows = np.arange(n_rows(X)) if rows is None else np.asarray(rows, dtype=np.int64)
    bg_rows = _pick_background(background, max_background)
    if model.task == "classification":
        assert model.classes_ is not None
        output = f"probability of class {model.classes_[k]}"  # type: ignore[index]
    else:
        output = "prediction"

    if isinstance(model, SequenceModel):
        win = model.windows(X)[explain_rows]
        bg = model.windows(background)[bg_rows]
        shape = win.shape[1:]
        col = 0 if k is None else k

        def f_windows(flat: np.ndarray) -> np.ndarray:
            return model.predict_proba_windows(flat.reshape(-1, *shape))[:, col]

        flat_values, base = _kernel_values(
            f_windows, win.reshape(len(win), -1), bg.reshape(len(bg), -1), nsamples, seed
        )
        lag_values = flat_values.reshape(len(win), *shape)
        data = to_matrix(_take(X, explain_rows), model.feature_names)
        expl = Explanation(
            lag_values.sum(axis=1),
            np.full(len(win), base),
            data,
            model.feature_names,
            output,
            "kernel-window",
            lag_values,
        )
        expected = f_windows(win.reshape(len(win), -1))
    else:
        names = model.feature_names
        data = to_matrix(_take(X, explain_rows), names)
        bg = to_matrix(_take(background, bg_rows), names)

        def f_rows(A: np.ndarray) -> np.ndarray:
            frame = pl.DataFrame(np.asarray(A, dtype=np.float64), schema=names, orient="row")
            if k is None:
                return np.asarray(model.predict(frame), dtype=np.float64)
            return model.predict_proba(frame)[:, k]

        values, base = _kernel_values(f_rows, data, bg, nsamples, seed)
        expl = Explanation(values, np.full(len(data), base), data, names, output, "kernel")
        expected = f_rows(data)
    if check_additivity:
        _check_additivity(expected, expl, atol=1e-6)
    return expl


def explain(
    model: Model,
    X: FeatureInput,
    background: FeatureInput | None = None,
    **kwargs: Any,
) -> Explanation:
    """TreeSHAP for XGBoost models, Kernel SHAP (against ``background``) for everything else."""
    if isinstance(model, _XGBModel):
        return explain_tree(model, X, **kwargs)
    if background is None:
        raise ValueError(f"explaining a {type(model).__name__} needs a background sample")
    return explain_kernel(model, X, background, **kwargs)


# --------------------------------------------------------------------------- plots


def shap_summary_figure(
    explanation: Explanation,
    kind: Literal["bar", "beeswarm"] = "bar",
    max_features: int = 20,
    title: str | None = None,
    seed: int = 0,
) -> go.Figure:
    """The SHAP summary for a report: mean |SHAP| bars, or a beeswarm-like dot plot.

    The beeswarm puts one dot per explained row on each feature's line at its SHAP value,
    coloured by the feature's value (its rank within the explained rows, low blue to high red)
    and jittered vertically (a seeded jitter: the same explanation gives the same figure).
    """
    imp = explanation.global_importance().head(max_features)
    features = imp["feature"].to_list()[::-1]  # largest at the top
    where = {n: j for j, n in enumerate(explanation.feature_names)}
    fig = go.Figure()
    if kind == "bar":
        fig.add_trace(
            go.Bar(
                x=imp["mean_abs_shap"].to_list()[::-1],
                y=features,
                orientation="h",
                marker_color="#1f5fbf",
                hovertemplate="%{y}: %{x:.4g}<extra></extra>",
            )
        )
        x_title = f"mean |SHAP| ({explanation.output})"
    elif kind == "beeswarm":
        rng = np.random.default_rng(seed)
        for pos, name in enumerate(features):
            j = where[name]
            vals = explanation.values[:, j]
            feat = explanation.data[:, j]
            finite = np.isfinite(feat)
            colour = np.full(len(feat), 0.5)
            if finite.sum() > 1:
                ranks = np.argsort(np.argsort(feat[finite]))
                colour[finite] = ranks / (finite.sum() - 1)
            fig.add_trace(
                go.Scattergl(
                    x=vals,
                    y=pos + rng.uniform(-0.3, 0.3, len(vals)),
                    mode="markers",
                    name=name,
                    showlegend=False,
                    marker={
                        "size": 5,
                        "color": colour,
                        "colorscale": "RdBu_r",
                        "cmin": 0.0,
                        "cmax": 1.0,
                        "showscale": pos == len(features) - 1,
                        "colorbar": {
                            "title": "feature value",
                            "tickvals": [0, 1],
                            "ticktext": ["low", "high"],
                        },
                    },
                    text=[f"{name} = {v:.4g}" for v in feat],
                    hovertemplate="%{text}<br>SHAP %{x:.4g}<extra></extra>",
                )
            )
        fig.update_yaxes(tickvals=list(range(len(features))), ticktext=features)
        fig.add_vline(x=0.0, line_color="#667085", line_width=1)
        x_title = f"SHAP value ({explanation.output})"
    else:
        raise ValueError(f"kind must be 'bar' or 'beeswarm', got {kind!r}")
    fig.update_layout(
        template="plotly_white",
        title=title or f"SHAP summary ({explanation.method})",
        height=max(320, 28 * len(features) + 120),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        xaxis_title=x_title,
    )
    return fig
