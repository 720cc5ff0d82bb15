"""Explanations: TreeSHAP (shap and xgboost's native contributions agree and add up to the
margin), Kernel SHAP for torch models and sequence windows (additive, and equal to
interventional TreeSHAP on a tree model), MDI, MDA over purged folds, and the figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest
from sklearn.metrics import log_loss

from quant.models import (
    MLPModel,
    SequenceModel,
    WeightedEnsemble,
    XGBClassifierModel,
    XGBRegressorModel,
    explain,
    explain_kernel,
    explain_tree,
    importance_figure,
    mda_importance,
    mdi_importance,
    shap_summary_figure,
    xgb_native_contributions,
)
from quant.models.explanations import _shap

FEATURES = ["x1", "x2", "x3", "x4", "x5"]


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 1500
    x = rng.normal(size=(n, len(FEATURES)))
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    target = 2.0 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n)
    return pl.DataFrame(x, schema=FEATURES, orient="row"), y, target


@pytest.fixture(scope="module")
def xgb_clf(data) -> XGBClassifierModel:
    X, y, _ = data
    return XGBClassifierModel(n_estimators=40, max_depth=3, learning_rate=0.2).fit(X, y)


# --------------------------------------------------------------------------- trees


def test_tree_shap_adds_up_to_the_margin_and_matches_native(data, xgb_clf) -> None:
    X, _, _ = data
    rows = X[:200]
    expl = explain_tree(xgb_clf, rows)
    margin = xgb_clf.predict_margin(rows)
    np.testing.assert_allclose(expl.explained_output, margin, atol=1e-5)
    native, bias = xgb_native_contributions(xgb_clf, rows)
    np.testing.assert_allclose(expl.values, native, atol=1e-5)
    np.testing.assert_allclose(expl.base_values, bias, atol=1e-6)
    same = explain_tree(xgb_clf, rows, method="native")
    np.testing.assert_allclose(same.explained_output, margin, atol=1e-5)
    assert expl.output == "log-odds of class 1"
    # the label depends on x1 only
    assert expl.global_importance()["feature"][0] == "x1"
    top = expl.contributions(0)
    assert top.columns == ["feature", "value", "contribution"]
    assert abs(top["contribution"][0]) == np.abs(expl.values[0]).max()
    assert expl.to_frame().columns == ["base_value", *FEATURES]


def test_tree_shap_for_multiclass_and_regression(data) -> None:
    X, y, target = data
    three = np.where(X["x1"].to_numpy() > 0.5, 1, np.where(X["x1"].to_numpy() < -0.5, -1, 0))
    multi = XGBClassifierModel(n_estimators=20).fit(X, three)
    with pytest.raises(ValueError, match="pass class_index"):
        explain_tree(multi, X[:10])
    for k in range(3):
        expl = explain_tree(multi, X[:100], class_index=k)
        np.testing.assert_allclose(
            expl.explained_output, multi.predict_margin(X[:100])[:, k], atol=1e-5
        )
        native, _ = xgb_native_contributions(multi, X[:100], class_index=k)
        np.testing.assert_allclose(expl.values, native, atol=1e-5)
    reg = XGBRegressorModel(n_estimators=30).fit(X, target)
    expl = explain(reg, X[:100])
    np.testing.assert_allclose(expl.explained_output, reg.predict(X[:100]), atol=1e-4)
    assert set(expl.global_importance()["feature"][:2]) == {"x1", "x2"}
    with pytest.raises(TypeError, match="needs an XGBoost model"):
        explain_tree(MLPModel(epochs=1).fit(X, y), X[:5])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- kernel


def test_kernel_shap_equals_interventional_tree_shap(data) -> None:
    """With every coalition enumerated, Kernel SHAP is the exact interventional Shapley value,
    which shap's TreeExplainer computes by another algorithm from the same background."""
    X, _, target = data
    reg = XGBRegressorModel(n_estimators=30).fit(X, target)
    background = X[500:530]
    kern = explain_kernel(reg, X[:6], background)
    tree = _shap().TreeExplainer(
        reg.booster,
        data=background.to_numpy(),
        feature_perturbation="interventional",
        model_output="raw",
    )
    np.testing.assert_allclose(kern.values, tree.shap_values(X[:6].to_numpy()), atol=1e-5)
    np.testing.assert_allclose(kern.base_values, tree.expected_value, atol=1e-5)


def test_kernel_shap_is_additive_for_torch_and_ensembles(data, xgb_clf) -> None:
    X, y, _ = data
    mlp = MLPModel(epochs=3).fit(X, y)
    background = X[1000:1040]
    expl = explain_kernel(mlp, X, background, rows=[0, 5, 17, 300])
    np.testing.assert_allclose(
        expl.explained_output, mlp.predict_proba(X[[0, 5, 17, 300]])[:, 1], atol=1e-7
    )
    np.testing.assert_allclose(
        expl.base_values, mlp.predict_proba(background)[:, 1].mean(), atol=1e-7
    )
    assert expl.output == "probability of class 1"
    assert expl.global_importance()["feature"][0] == "x1"
    ens = WeightedEnsemble([mlp, xgb_clf], [1, 1])
    e2 = explain(ens, X[:4], background)  # 4 rows, 5 features: row/column orientation matters
    np.testing.assert_allclose(e2.explained_output, ens.predict_proba(X[:4])[:, 1], atol=1e-7)
    with pytest.raises(ValueError, match="needs a background"):
        explain(mlp, X[:4])


def test_kernel_shap_on_sequence_windows(data) -> None:
    X, y, _ = data
    seq = SequenceModel(lookback=3, hidden=8, epochs=2).fit(X, y)
    rows = [2, 40, 99]
    expl = explain_kernel(seq, X[:100], X[600:700], rows=rows, max_background=8)
    assert expl.lag_values.shape == (3, 3, len(FEATURES))
    np.testing.assert_allclose(expl.lag_values.sum(axis=1), expl.values)
    np.testing.assert_allclose(
        expl.explained_output, seq.predict_proba(X[:100])[rows, 1], atol=1e-6
    )
    # the newest lag of x1 carries the label's information
    newest = np.abs(expl.lag_values[:, -1, 0]).mean()
    assert newest == np.abs(expl.lag_values).mean(axis=0).max()
    # a row without history (row 2 has 2 earlier rows of 3) is explained over padded windows
    assert expl.values.shape == (3, len(FEATURES))


def test_kernel_shap_is_deterministic_when_sampling(data) -> None:
    X, y, _ = data
    mlp = MLPModel(epochs=2).fit(X, y)
    a = explain_kernel(mlp, X[:3], X[900:920], nsamples=12, seed=4)
    b = explain_kernel(mlp, X[:3], X[900:920], nsamples=12, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    state = np.random.get_state()[1].copy()
    explain_kernel(mlp, X[:3], X[900:920], nsamples=12, seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched


# --------------------------------------------------------------------------- MDI / MDA


def purged_folds(n: int, k: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous test blocks; training rows within ``gap`` of a block are dropped."""
    out = []
    for test in np.array_split(np.arange(n), k):
        lo, hi = test[0] - gap, test[-1] + gap
        train = np.r_[np.arange(0, max(lo, 0)), np.arange(min(hi + 1, n), n)]
        out.append((train, test))
    return out


def test_mdi_ranks_the_informative_feature_first(xgb_clf) -> None:
    table = mdi_importance(xgb_clf)
    assert table["feature"][0] == "x1"
    assert table["importance"].sum() == pytest.approx(1.0)
    assert table["importance"][0] > 0.5
    gain = xgb_clf.booster.get_score(importance_type="total_gain")
    assert table.filter(pl.col("feature") == "x1")["importance"][0] == pytest.approx(
        gain["f0"] / sum(gain.values())
    )


def test_mda_ranks_the_informative_feature_first(data) -> None:
    X, y, _ = data
    template = XGBClassifierModel(n_estimators=30, max_depth=3, learning_rate=0.2)
    folds = purged_folds(len(y), 4, gap=5)
    result = mda_importance(template, X, y, folds, scoring="log_loss", seed=1)
    assert not template.is_fitted  # each fold fits a clone
    table = result.importance
    assert table["feature"][0] == "x1"
    assert table["mean"][0] > 0.3
    noise = table.filter(pl.col("feature") != "x1")["mean"].to_numpy()
    assert np.all(np.abs(noise) < 0.05)
    assert result.per_fold.shape == (4, len(FEATURES))
    assert result.baseline_score > -np.log(2)  # better than a coin
    again = mda_importance(template, X, y, folds, scoring="log_loss", seed=1)
    assert again.importance.equals(table)
    acc = mda_importance(template, X, y, folds, scoring="accuracy", seed=1)
    assert acc.importance["feature"][0] == "x1"


def test_mda_follows_afml_snippet_8_3(data) -> None:
    """Recompute one fold by hand: fit, score, permute each column with the same draws."""
    X, y, _ = data
    template = XGBClassifierModel(n_estimators=10)
    train, test = purged_folds(len(y), 3, gap=0)[1]
    result = mda_importance(template, X, y, [(train, test)], seed=7)
    fitted = template.clone().fit(X[train], y[train])
    X1, y1 = X[test].to_pandas(), y[test]
    scr0 = -log_loss(y1, fitted.predict_proba(X1), labels=[0, 1])
    assert result.fold_scores[0] == pytest.approx(scr0)
    rng = np.random.default_rng(7)
    for name in FEATURES:
        shuffled = X1.copy()
        shuffled[name] = X1[name].to_numpy()[rng.permutation(len(test))]
        scr1 = -log_loss(y1, fitted.predict_proba(shuffled), labels=[0, 1])
        assert result.per_fold[name][0] == pytest.approx((scr0 - scr1) / -scr1)
    assert result.importance["std"].is_nan().all()  # one fold: no standard error


def test_mda_rejects_bad_folds(data, xgb_clf) -> None:
    X, y, target = data
    with pytest.raises(ValueError, match="overlap"):
        mda_importance(xgb_clf, X, y, [(np.arange(10), np.arange(5, 20))])
    with pytest.raises(ValueError, match="at least one"):
        mda_importance(xgb_clf, X, y, [])
    with pytest.raises(ValueError, match="needs a classifier"):
        mda_importance(XGBRegressorModel(), X, target, purged_folds(len(y), 2, 0))
    reg = mda_importance(
        XGBRegressorModel(n_estimators=20), X, target, purged_folds(len(y), 2, 0), scoring="neg_mse"
    )
    assert reg.importance["feature"][0] == "x1"


# --------------------------------------------------------------------------- figures


def test_summary_figures(data, xgb_clf) -> None:
    X, _, _ = data
    expl = explain_tree(xgb_clf, X[:300])
    bar = shap_summary_figure(expl, kind="bar", max_features=3)
    assert isinstance(bar, go.Figure)
    assert len(bar.data) == 1 and len(bar.data[0].y) == 3
    assert bar.data[0].y[-1] == "x1"  # the largest bar is drawn at the top
    bees = shap_summary_figure(expl, kind="beeswarm")
    assert len(bees.data) == len(FEATURES)
    assert all(len(t.x) == 300 for t in bees.data)
    assert bees.to_json() == shap_summary_figure(expl, kind="beeswarm").to_json()
    with pytest.raises(ValueError, match="kind must be"):
        shap_summary_figure(expl, kind="pie")  # type: ignore[arg-type]
    fig = importance_figure(mdi_importance(xgb_clf), value="importance", error=None)
    assert fig.data[0].y[-1] == "x1"
