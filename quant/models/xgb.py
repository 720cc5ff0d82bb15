"""Gradient-boosted trees (XGBoost) behind the common model interface.

Built on xgboost's native ``train``/``Booster`` API rather than its scikit-learn wrapper: the
booster is the whole fitted state, it serialises to UBJSON without pickle, and TreeSHAP runs on
it directly. Determinism: with a fixed ``seed`` and ``nthread`` the ``hist`` tree method builds
the same trees run after run (row and column subsampling draw from the seeded generator); the
default ``nthread=1`` suits sweeps that give each trial one CPU.

Features reach xgboost by position (``f0``, ``f1``, ...), never by name: xgboost refuses names
holding ``[``, ``]`` or ``<``, and feature columns are named by researchers. The model keeps the
names and maps importances back to them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import xgboost as xgb

from quant.models.base import (
    EvalSet,
    FeatureInput,
    Model,
    TargetInput,
    Task,
    check_regression_target,
    check_weights,
    encode_classes,
    normalize_eval_set,
    resolve_feature_names,
    to_matrix,
    to_vector,
)

IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")


class _XGBModel(Model):
    """Shared fitting, prediction and persistence of the classifier and the regressor."""

    task: ClassVar[Task]
    _DEFAULT_OBJECTIVE: ClassVar[str]

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        max_bin: int = 256,
        early_stopping_rounds: int | None = None,
        objective: str | None = None,
        seed: int = 0,
        nthread: int = 1,
        feature_names: list[str] | None = None,
        extra_params: dict[str, Any] | None = None,
    ) -> None:
        if n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {n_estimators}")
        if early_stopping_rounds is not None and early_stopping_rounds < 1:
            raise ValueError(f"early_stopping_rounds must be >= 1, got {early_stopping_rounds}")
        if nthread < 1:
            raise ValueError(f"nthread must be >= 1, got {nthread}")
        self.n_estimators = int(n_estimators)
        self.max_depth = int(max_depth)
        self.learning_rate = float(learning_rate)
        self.subsample = float(subsample)
        self.colsample_bytree = float(colsample_bytree)
        self.min_child_weight = float(min_child_weight)
        self.reg_lambda = float(reg_lambda)
        self.reg_alpha = float(reg_alpha)
        self.gamma = float(gamma)
        self.max_bin = int(max_bin)
        self.early_stopping_rounds = early_stopping_rounds
        self.objective = objective
        self.seed = int(seed)
        self.nthread = int(nthread)
        self.requested_features = None if feature_names is None else list(feature_names)
        self.extra_params = dict(extra_params or {})
        self.booster: xgb.Booster | None = None
        self.best_iteration: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "reg_alpha": self.reg_alpha,
            "gamma": self.gamma,
            "max_bin": self.max_bin,
            "early_stopping_rounds": self.early_stopping_rounds,
            "objective": self.objective,
            "seed": self.seed,
            "nthread": self.nthread,
            "feature_names": self.requested_features,
            "extra_params": dict(self.extra_params),
        }

    def _booster_params(self, n_classes: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "gamma": self.gamma,
            "max_bin": self.max_bin,
            "tree_method": "hist",
            "seed": self.seed,
            "nthread": self.nthread,
            "verbosity": 0,
        }
        if n_classes is None:
            params["objective"] = self.objective or self._DEFAULT_OBJECTIVE
        elif n_classes == 2:
            params["objective"] = self.objective or "binary:logistic"
            params["eval_metric"] = "logloss"
        else:
            params["objective"] = self.objective or "multi:softprob"
            params["num_class"] = n_classes
            params["eval_metric"] = "mlogloss"
        params.update(self.extra_params)
        return params

    def fit(
        self,
        X: FeatureInput,
        y: TargetInput,
        sample_weight: TargetInput | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        names = resolve_feature_names(X, self.requested_features)
        matrix = to_matrix(X, names)
        target = to_vector(y)
        assert target is not None
        if len(target) != len(matrix):
            raise ValueError(f"y has {len(target)} rows for {len(matrix)} feature rows")
        if len(matrix) == 0:
            raise ValueError("cannot fit on zero rows")
        weights = check_weights(sample_weight, len(matrix))
        if self.task == "classification":
            classes, label = encode_classes(target)
            n_classes: int | None = len(classes)
        else:
            classes, label, n_classes = None, check_regression_target(target), None
        dtrain = xgb.DMatrix(matrix, label=label, weight=weights, nthread=self.nthread)
        evals = []
        for i, (X_val, y_val) in enumerate(normalize_eval_set(eval_set)):
            evals.append(
                (
                    xgb.DMatrix(
                        to_matrix(X_val, names),
                        label=self._encode_eval(np.asarray(to_vector(y_val)), classes),
                        nthread=self.nthread,
                    ),
                    f"eval_{i}",
                )
            )
        if self.early_stopping_rounds is not None and not evals:
            raise ValueError("early_stopping_rounds needs an eval_set to watch")
        booster = xgb.train(
            self._booster_params(n_classes),
            dtrain,
            num_boost_round=self.n_estimators,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds if evals else None,
            verbose_eval=False,
        )
        self.best_iteration = None
        if self.early_stopping_rounds is not None:
            # Keep only the trees up to the best round: predictions, SHAP values and the
            # saved artifact then all describe the same model.
            self.best_iteration = int(booster.best_iteration)
            booster = booster[: self.best_iteration + 1]
        self.booster = booster
        self.classes_ = classes
        self._feature_names = names
        return self

    def _encode_eval(self, y: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        if classes is None:
            return check_regression_target(y)
        codes = np.searchsorted(classes, y)
        codes = np.clip(codes, 0, len(classes) - 1)
        unknown = classes[codes] != y
        if unknown.any():
            raise ValueError(
                f"eval_set labels {np.unique(y[unknown]).tolist()} are not among the training "
                f"classes {classes.tolist()}"
            )
        return codes

    def _dmatrix(self, X: FeatureInput) -> xgb.DMatrix:
        self._require_fitted()
        return xgb.DMatrix(to_matrix(X, self.feature_names), nthread=self.nthread)

    def predict_margin(self, X: FeatureInput) -> np.ndarray:
        """Raw scores before the link: log-odds of the last class (binary), one column per class
        (multi-class), the prediction itself (squared-error regression). TreeSHAP explains this."""
        dm = self._dmatrix(X)
        assert self.booster is not None
        return np.asarray(self.booster.predict(dm, output_margin=True), dtype=np.float64)

    def feature_importance(self, importance_type: str = "total_gain") -> dict[str, float]:
        """xgboost's split importance by feature name (0 for features never split on)."""
        self._require_fitted()
        if importance_type not in IMPORTANCE_TYPES:
            raise ValueError(f"importance_type must be one of {IMPORTANCE_TYPES}")
        assert self.booster is not None
        scores = self.booster.get_score(importance_type=importance_type)
        names = self.feature_names
        out = dict.fromkeys(names, 0.0)
        for key, value in scores.items():
            out[names[int(key[1:])]] = float(value)  # keys are "f{position}"
        return out

    def _archive(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        assert self.booster is not None
        raw = bytes(self.booster.save_raw(raw_format="ubj"))
        return {"best_iteration": self.best_iteration}, {"booster.ubj": raw}

    @classmethod
    def _from_archive(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls(**meta["params"])
        booster = xgb.Booster()
        booster.load_model(bytearray(blobs["booster.ubj"]))
        booster.set_param({"nthread": model.nthread})
        model.booster = booster
        model.best_iteration = meta.get("best_iteration")
        model._restore_common(meta)
        return model


class XGBClassifierModel(_XGBModel):
    """XGBoost classifier over any label set (e.g. triple-barrier {-1, 0, 1} or meta {0, 1}).

    Labels are kept as given: ``classes_`` holds them sorted, ``predict`` returns them and
    ``predict_proba`` has one column per class in that order.
    """

    task: ClassVar[Task] = "classification"
    _DEFAULT_OBJECTIVE = "binary:logistic"

    def predict_proba(self, X: FeatureInput) -> np.ndarray:
        dm = self._dmatrix(X)
        assert self.booster is not None and self.classes_ is not None
        raw = np.asarray(self.booster.predict(dm), dtype=np.float64)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: FeatureInput) -> np.ndarray:
        return self._labels_from_proba(self.predict_proba(X))


class XGBRegressorModel(_XGBModel):
    """XGBoost regressor (squared error unless ``objective=`` says otherwise)."""

    task: ClassVar[Task] = "regression"
    _DEFAULT_OBJECTIVE = "reg:squarederror"

    def predict(self, X: FeatureInput) -> np.ndarray:
        dm = self._dmatrix(X)
        assert self.booster is not None
        return np.asarray(self.booster.predict(dm), dtype=np.float64)
