"""Models behind one interface: learning a real signal, determinism, save/load, ensembles and
calibration (cross-checked against scikit-learn's CalibratedClassifierCV)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
import xgboost as xgb
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss

from quant.models import (
    CalibratedModel,
    MLPModel,
    Model,
    NotFittedError,
    SequenceModel,
    WeightedEnsemble,
    XGBClassifierModel,
    XGBRegressorModel,
    deterministic_torch,
    load_model,
)
from quant.models.base import FORMAT, model_from_bytes, pack
from quant.models.torch_models import window_indices

FEATURES = ["x1", "x2", "x3", "x4"]


def make_data(n: int = 1500, seed: int = 7) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Seeded AR(1) features; the label is whether x1 (plus a little noise) is above zero."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=(n, len(FEATURES)))
    x = np.empty_like(eps)
    x[0] = eps[0]
    for t in range(1, n):
        x[t] = 0.3 * x[t - 1] + eps[t]
    y = (x[:, 0] + 0.25 * rng.normal(size=n) > 0).astype(np.int64)
    target = 2.0 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n)
    return pl.DataFrame(x, schema=FEATURES, orient="row"), y, target


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    return make_data()


def small_models() -> dict[str, Model]:
    return {
        "xgb": XGBClassifierModel(n_estimators=40, max_depth=3, learning_rate=0.2),
        "mlp": MLPModel(hidden=(16,), epochs=6, batch_size=128, learning_rate=5e-3),
        "tcn": SequenceModel(lookback=6, hidden=8, epochs=4, batch_size=128, learning_rate=5e-3),
        "lstm": SequenceModel(
            lookback=5,
            cell="lstm",
            hidden=8,
            layers=1,
            epochs=3,
            batch_size=128,
            learning_rate=1e-2,
        ),
    }


TRAIN = slice(0, 1100)
TEST = slice(1100, None)


@pytest.mark.parametrize("kind", ["xgb", "mlp", "tcn", "lstm"])
def test_classifiers_learn_the_signal_and_are_deterministic(kind: str, data) -> None:
    X, y, _ = data
    a = small_models()[kind].fit(X[TRAIN], y[TRAIN])
    b = small_models()[kind].fit(X[TRAIN], y[TRAIN])
    proba = a.predict_proba(X[TEST])
    assert proba.shape == (len(y[TEST]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    # y is x1 > 0 with a little noise: a model that learned anything gets most rows right.
    assert (a.predict(X[TEST]) == y[TEST]).mean() > 0.8
    np.testing.assert_array_equal(proba, b.predict_proba(X[TEST]))
    assert a.feature_names == FEATURES
    assert a.classes_.tolist() == [0, 1]


def test_regressors_learn_and_are_deterministic(data) -> None:
    X, _, target = data
    for make in (
        lambda: XGBRegressorModel(n_estimators=60, max_depth=3, learning_rate=0.2),
        lambda: MLPModel(task="regression", hidden=(16,), epochs=15, learning_rate=5e-3),
    ):
        a = make().fit(X[TRAIN], target[TRAIN])
        pred = a.predict(X[TEST])
        resid = target[TEST] - pred
        assert 1 - resid.var() / target[TEST].var() > 0.8  # R^2
        np.testing.assert_array_equal(pred, make().fit(X[TRAIN], target[TRAIN]).predict(X[TEST]))
        with pytest.raises(TypeError, match="regressor"):
            a.predict_proba(X[TEST])


def _fitted_models(data) -> dict[str, Model]:
    X, y, target = data
    models = small_models()
    fitted: dict[str, Model] = {k: m.fit(X[TRAIN], y[TRAIN]) for k, m in models.items()}
    fitted["xgb_reg"] = XGBRegressorModel(n_estimators=20).fit(X[TRAIN], target[TRAIN])
    fitted["mlp_reg"] = MLPModel(task="regression", epochs=2).fit(X[TRAIN], target[TRAIN])
    fitted["ensemble"] = WeightedEnsemble([fitted["xgb"], fitted["mlp"]], [1.0, 3.0])
    fitted["iso"] = CalibratedModel(XGBClassifierModel(n_estimators=20), method="isotonic").fit(
        X[TRAIN], y[TRAIN]
    )
    fitted["sig"] = CalibratedModel(MLPModel(epochs=2), method="sigmoid").fit(X[TRAIN], y[TRAIN])
    return fitted


def test_save_load_round_trip_gives_identical_predictions(data, tmp_path) -> None:
    X, _, _ = data
    for name, model in _fitted_models(data).items():
        path = model.save(tmp_path / f"{name}.qm")
        for loaded in (type(model).load(path), Model.load(path), load_model(path)):
            assert type(loaded) is type(model)
            assert loaded.feature_names == model.feature_names
            assert loaded.params == model.params
            np.testing.assert_array_equal(loaded.predict(X[TEST]), model.predict(X[TEST]))
            if model.is_classifier:
                np.testing.assert_array_equal(
                    loaded.predict_proba(X[TEST]), model.predict_proba(X[TEST])
                )
        # Same model, same bytes: artifacts are reproducible (fixed zip time stamps).
        assert model.to_bytes() == type(model).load(path).to_bytes()


def test_load_rejects_the_wrong_kind_and_garbage(data, tmp_path) -> None:
    X, y, _ = data
    path = XGBClassifierModel(n_estimators=5).fit(X, y).save(tmp_path / "m.qm")
    with pytest.raises(TypeError, match="holds a XGBClassifierModel, not a MLPModel"):
        MLPModel.load(path)
    (tmp_path / "junk.qm").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a model artifact"):
        load_model(tmp_path / "junk.qm")


def test_artifacts_name_only_known_kinds() -> None:
    """An artifact cannot make the loader build an arbitrary class: no pickle, known kinds."""
    forged = pack({"format": FORMAT, "kind": "Popen", "params": {}})
    with pytest.raises(ValueError, match="unknown model kind 'Popen'"):
        model_from_bytes(forged)
    with pytest.raises(ValueError, match="unknown model artifact format"):
        model_from_bytes(pack({"format": "other/9", "kind": "MLPModel"}))


def test_clone_is_unfitted_with_the_same_params() -> None:
    for model in small_models().values():
        twin = model.clone()
        assert twin.params == model.params and not twin.is_fitted
    calibrated = CalibratedModel(MLPModel(epochs=1), method="sigmoid", gap=3)
    assert calibrated.clone().params == calibrated.params


def test_features_are_selected_by_name(data) -> None:
    X, y, _ = data
    model = XGBClassifierModel(n_estimators=20).fit(X[TRAIN], y[TRAIN])
    expected = model.predict_proba(X[TEST])
    shuffled = X[TEST].select(["x3", "x1", "x4", "x2"]).with_columns(extra=pl.lit(1.0))
    np.testing.assert_array_equal(model.predict_proba(shuffled), expected)
    np.testing.assert_array_equal(model.predict_proba(X[TEST].to_pandas()), expected)
    np.testing.assert_array_equal(model.predict_proba(X[TEST].to_numpy()), expected)
    with pytest.raises(ValueError, match=r"missing from the frame: \['x2'\]"):
        model.predict(X[TEST].drop("x2"))
    with pytest.raises(ValueError, match="expected 4 feature columns"):
        model.predict(X[TEST].to_numpy()[:, :3])
    with pytest.raises(NotFittedError):
        XGBClassifierModel().predict(X)


def test_numpy_features_take_names_from_the_model(data) -> None:
    X, y, _ = data
    model = MLPModel(epochs=1, feature_names=["a", "b", "c", "d"]).fit(X.to_numpy(), y)
    assert model.feature_names == ["a", "b", "c", "d"]
    assert XGBClassifierModel(n_estimators=2).fit(X.to_numpy(), y).feature_names == [
        "f0", "f1", "f2", "f3",
    ]  # fmt: skip


def test_labels_are_kept_and_multiclass_works(data) -> None:
    X, y, _ = data
    signed = np.where(y == 1, 1, -1)
    model = XGBClassifierModel(n_estimators=10).fit(X, signed)
    assert set(np.unique(model.predict(X))) <= {-1, 1}
    three = np.where(X["x1"].to_numpy() > 0.5, 1, np.where(X["x1"].to_numpy() < -0.5, -1, 0))
    for m in (XGBClassifierModel(n_estimators=20), MLPModel(epochs=5, learning_rate=1e-2)):
        m.fit(X[TRAIN], three[TRAIN])
        proba = m.predict_proba(X[TEST])
        assert proba.shape[1] == 3
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert m.classes_.tolist() == [-1, 0, 1]
        assert (m.predict(X[TEST]) == three[TEST]).mean() > 0.7


def test_bad_training_input_is_a_clear_error(data) -> None:
    X, y, _ = data
    with pytest.raises(ValueError, match=r"single class \[1\]"):
        XGBClassifierModel().fit(X, np.ones(len(y), dtype=int))
    with pytest.raises(ValueError, match=r"single class \[0\]"):
        MLPModel().fit(X, np.zeros(len(y), dtype=int))
    with pytest.raises(ValueError, match="sample_weight has 3 values"):
        XGBClassifierModel().fit(X, y, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="y has 10 rows"):
        MLPModel().fit(X, y[:10])
    with pytest.raises(ValueError, match="needs an eval_set"):
        XGBClassifierModel(early_stopping_rounds=5).fit(X, y)
    with pytest.raises(ValueError, match="must be numeric"):
        XGBClassifierModel().fit(X.with_columns(s=pl.lit("a")), y)


def test_xgb_matches_xgboosts_own_sklearn_wrapper(data) -> None:
    """Same hyperparameters through xgboost's XGBClassifier give the same probabilities."""
    X, y, _ = data
    ours = XGBClassifierModel(n_estimators=30, max_depth=3, learning_rate=0.1, seed=3)
    ours.fit(X[TRAIN], y[TRAIN])
    ref = xgb.XGBClassifier(
        n_estimators=30, max_depth=3, learning_rate=0.1, subsample=0.8, colsample_bytree=0.8,
        min_child_weight=1.0, reg_lambda=1.0, reg_alpha=0.0, gamma=0.0, max_bin=256,
        tree_method="hist", random_state=3, n_jobs=1,
    ).fit(X[TRAIN].to_numpy(), y[TRAIN])  # fmt: skip
    np.testing.assert_allclose(
        ours.predict_proba(X[TEST]), ref.predict_proba(X[TEST].to_numpy()), atol=1e-6
    )


def test_xgb_early_stopping_keeps_the_best_trees(data) -> None:
    X, y, _ = data
    val = (X[1100:1300], y[1100:1300])
    model = XGBClassifierModel(
        n_estimators=300, learning_rate=0.3, max_depth=6, early_stopping_rounds=5
    ).fit(X[:1100], y[:1100], eval_set=val)
    assert model.best_iteration is not None and model.best_iteration < 299
    assert model.booster.num_boosted_rounds() == model.best_iteration + 1
    # The sliced booster predicts what the full run predicts up to the best round.
    full = xgb.train(
        model._booster_params(2),
        xgb.DMatrix(X[:1100].to_numpy(), label=y[:1100]),
        num_boost_round=model.best_iteration + 1,
    )
    np.testing.assert_allclose(
        model.predict_proba(X[1300:])[:, 1], full.predict(xgb.DMatrix(X[1300:].to_numpy()))
    )


def test_torch_early_stopping_restores_the_best_epoch(data) -> None:
    X, y, _ = data
    model = MLPModel(hidden=(64, 64), epochs=30, learning_rate=3e-2, patience=3)
    model.fit(X[:600], y[:600], eval_set=(X[600:900], y[600:900]))
    losses = [h["eval_loss"] for h in model.history]
    assert model.best_epoch == int(np.argmin(losses))
    logp = np.log(model.predict_proba(X[600:900])[np.arange(300), y[600:900]])
    np.testing.assert_allclose(-logp.mean(), min(losses), rtol=1e-5)


def test_deterministic_torch_leaves_global_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    with deterministic_torch(seed=5, num_threads=1):
        assert torch.are_deterministic_algorithms_enabled()
        torch.rand(10)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


def test_window_indices_stay_inside_each_series() -> None:
    groups = np.array([0, 1, 0, 1, 0, 0])  # two interleaved series
    got = window_indices(groups, 3)
    pad = 6
    expected = np.array(
        [[pad, pad, 0], [pad, pad, 1], [pad, 0, 2], [pad, 1, 3], [0, 2, 4], [2, 4, 5]]
    )
    np.testing.assert_array_equal(got, expected)


def test_sequence_model_never_looks_ahead(data) -> None:
    """Changing rows after t leaves every prediction at or before t unchanged."""
    X, y, _ = data
    model = SequenceModel(lookback=6, hidden=8, epochs=2).fit(X[TRAIN], y[TRAIN])
    base = model.predict_proba(X[:400])
    future = X[:400].with_columns(
        pl.when(pl.int_range(pl.len()) > 250).then(pl.col(c) * -3 + 1).otherwise(pl.col(c))
        for c in FEATURES
    )
    moved = model.predict_proba(future)
    np.testing.assert_array_equal(moved[:251], base[:251])
    assert not np.allclose(moved[251:], base[251:])


def test_sequence_model_groups_do_not_mix(data) -> None:
    X, y, _ = data
    a, b = X[:300], X[300:600]
    panel = pl.concat(
        [a.with_columns(symbol=pl.lit("AKBNK")), b.with_columns(symbol=pl.lit("THYAO"))]
    )
    # interleave the two series row by row: windows must still follow each symbol alone
    order = np.argsort(
        np.r_[np.arange(300), np.arange(300)] * 2 + np.r_[np.zeros(300), np.ones(300)]
    )
    interleaved = panel[order]
    labels = np.r_[y[:300], y[300:600]][order]
    model = SequenceModel(lookback=4, hidden=8, epochs=2, group_column="symbol")
    model.fit(interleaved, labels)
    assert model.feature_names == FEATURES
    together = model.predict_proba(interleaved)
    alone = model.predict_proba(a.with_columns(symbol=pl.lit("AKBNK")))
    np.testing.assert_allclose(
        together[interleaved["symbol"].to_numpy() == "AKBNK"], alone, atol=1e-6
    )
    with pytest.raises(ValueError, match="needs a frame with that column"):
        model.predict(a)


def test_pandas_input_is_accepted(data) -> None:
    X, y, _ = data
    pdf = X.to_pandas()
    m1 = MLPModel(epochs=2).fit(pdf, pd.Series(y))
    m2 = MLPModel(epochs=2).fit(X, y)
    np.testing.assert_array_equal(m1.predict_proba(X), m2.predict_proba(pdf))


# --------------------------------------------------------------------------- ensemble


def test_ensemble_is_the_normalised_weighted_average(data) -> None:
    X, y, _ = data
    a = XGBClassifierModel(n_estimators=20).fit(X[TRAIN], y[TRAIN])
    b = MLPModel(epochs=3).fit(X[TRAIN], y[TRAIN])
    ens = WeightedEnsemble([a, b], weights=[2.0, 6.0])
    np.testing.assert_allclose(ens.weights, [0.25, 0.75])
    expected = 0.25 * a.predict_proba(X[TEST]) + 0.75 * b.predict_proba(X[TEST])
    np.testing.assert_allclose(ens.predict_proba(X[TEST]), expected, atol=1e-15)
    np.testing.assert_array_equal(ens.predict(X[TEST]), np.argmax(expected, axis=1))
    only_a = ens.with_weights([1.0, 0.0])
    np.testing.assert_allclose(only_a.predict_proba(X[TEST]), a.predict_proba(X[TEST]))
    assert only_a.models[0] is a  # re-weighting does not refit
    # numpy input works: the ensemble names the columns for its members (and reads the array
    # by rows even when it is square: 4 rows of 4 features)
    np.testing.assert_allclose(ens.predict_proba(X[TEST].to_numpy()), expected, atol=1e-15)
    square = X[TEST][:4]
    np.testing.assert_array_equal(ens.predict_proba(square.to_numpy()), ens.predict_proba(square))


def test_ensemble_fit_members_with_their_own_features(data) -> None:
    X, y, _ = data
    ens = WeightedEnsemble(
        [
            XGBClassifierModel(n_estimators=10, feature_names=["x1", "x2"]),
            XGBClassifierModel(n_estimators=10, feature_names=["x3", "x1"]),
        ]
    ).fit(X, y)
    assert ens.feature_names == ["x1", "x2", "x3"]
    assert ens.predict_proba(X).shape == (len(X), 2)
    clone = ens.clone()
    assert not clone.is_fitted and clone.params == ens.params


def test_ensemble_rejects_bad_members_and_weights(data) -> None:
    X, y, target = data
    clf = XGBClassifierModel(n_estimators=5).fit(X, y)
    reg = XGBRegressorModel(n_estimators=5).fit(X, target)
    with pytest.raises(ValueError, match="mix tasks"):
        WeightedEnsemble([clf, reg])
    with pytest.raises(ValueError, match="non-negative"):
        WeightedEnsemble([clf, clf], [1.0, -1.0])
    with pytest.raises(ValueError, match="2 weights for 1 models"):
        WeightedEnsemble([clf], [1.0, 2.0])
    other = XGBClassifierModel(n_estimators=5).fit(X, y * 2)
    with pytest.raises(ValueError, match="disagree on classes"):
        WeightedEnsemble([clf, other])
    avg = WeightedEnsemble([reg, XGBRegressorModel(n_estimators=9).fit(X, target)], [1, 1])
    np.testing.assert_allclose(
        avg.predict(X), 0.5 * (reg.predict(X) + avg.models[1].predict(X)), atol=1e-12
    )


# --------------------------------------------------------------------------- calibration


class _Proba(ClassifierMixin, BaseEstimator):
    """scikit-learn face of a fitted model, for CalibratedClassifierCV(FrozenEstimator(...))."""

    def __init__(self, model: Model | None = None) -> None:
        self.model = model

    def fit(self, X, y):  # never called: the estimator is frozen
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def classes_(self):
        return self.model.classes_

    def predict(self, X):
        return self.model.predict(X)

    def predict_proba(self, X):
        return self.model.predict_proba(X)


class _Logit(_Proba):
    def decision_function(self, X):
        p = self.model.predict_proba(X)
        cols = p[:, 1] if p.shape[1] == 2 else p
        return logit(np.clip(cols, 1e-12, 1 - 1e-12))


def _noisy(n: int = 6000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    p = 1.0 / (1.0 + np.exp(-1.5 * X[:, 0]))
    return X, (rng.uniform(size=n) < p).astype(np.int64)


def _overconfident() -> XGBClassifierModel:
    return XGBClassifierModel(
        n_estimators=200, max_depth=8, learning_rate=0.3, subsample=1.0, colsample_bytree=1.0
    )


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_matches_sklearn_and_improves_brier(method: str) -> None:
    X, y = _noisy()
    fit, cal, test = slice(0, 3000), slice(3000, 4500), slice(4500, None)
    raw = _overconfident().fit(X[fit], y[fit])
    calibrated = CalibratedModel(raw, method=method).calibrate(X[cal], y[cal])
    adapter = _Proba(raw) if method == "isotonic" else _Logit(raw)
    sk = CalibratedClassifierCV(FrozenEstimator(adapter), method=method).fit(X[cal], y[cal])
    ours = calibrated.predict_proba(X[test])
    np.testing.assert_allclose(ours, sk.predict_proba(X[test]), atol=1e-12)
    before = brier_score_loss(y[test], raw.predict_proba(X[test])[:, 1])
    after = brier_score_loss(y[test], ours[:, 1])
    assert after < before - 0.02  # deep boosted trees on noisy labels are overconfident


def test_multiclass_calibration_matches_sklearn() -> None:
    X, y2 = _noisy(4000, seed=2)
    y = np.where(X[:, 1] > 0.8, 2, y2)
    raw = XGBClassifierModel(n_estimators=50, max_depth=6, learning_rate=0.3).fit(
        X[:2000], y[:2000]
    )
    ours = CalibratedModel(raw, method="sigmoid").calibrate(X[2000:3000], y[2000:3000])
    sk = CalibratedClassifierCV(FrozenEstimator(_Logit(raw)), method="sigmoid")
    sk.fit(X[2000:3000], y[2000:3000])
    np.testing.assert_allclose(ours.predict_proba(X[3000:]), sk.predict_proba(X[3000:]), atol=1e-12)


def test_calibrated_fit_never_shows_the_calibration_rows_to_the_model() -> None:
    X, y = _noisy(2000)
    cm = CalibratedModel(XGBClassifierModel(n_estimators=30), calibration_fraction=0.25, gap=10)
    cm.fit(X, y)
    # The wrapped model is exactly a model fitted on the first 75% of the rows ...
    head = XGBClassifierModel(n_estimators=30).fit(X[:1500], y[:1500])
    np.testing.assert_array_equal(cm.model.predict_proba(X), head.predict_proba(X))
    # ... and the calibrator saw the rows after the gap only.
    assert cm.calibration_rows == 2000 - 1500 - 10
    ref = CalibratedModel(head).calibrate(X[1510:], y[1510:])
    np.testing.assert_array_equal(cm.predict_proba(X), ref.predict_proba(X))


def test_calibration_rejects_bad_input(data) -> None:
    X, y, _ = data
    with pytest.raises(ValueError, match="only classifiers"):
        CalibratedModel(XGBRegressorModel())
    with pytest.raises(ValueError, match="needs a fitted model"):
        CalibratedModel(XGBClassifierModel()).calibrate(X, y)
    fitted = XGBClassifierModel(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match=r"no example of class \[1\]"):
        CalibratedModel(fitted).calibrate(X[:50], np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="method must be"):
        CalibratedModel(fitted, method="beta")  # type: ignore[arg-type]
