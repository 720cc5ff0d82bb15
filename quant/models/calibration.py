"""Probability calibration on held-out data: isotonic regression or Platt's sigmoid.

Boosted trees and networks rank well but their probabilities are often over- or
under-confident; bet sizing (AFML ch. 10) reads a probability as a probability, so it is mapped
through a monotone calibrator fitted on rows **the model was not fitted on**. Calibrating on the
training rows would learn the model's in-sample confidence, which is exactly the bias to undo.
Two ways in, both leak-free by construction:

- :meth:`CalibratedModel.fit` fits the wrapped model on the first rows and the calibrator on the
  last ``calibration_fraction`` of them (rows in time order), skipping ``gap`` rows between the
  two so that labels whose horizons straddle the cut do not leak (set ``gap`` to the label
  horizon in rows, as a purge).
- :meth:`CalibratedModel.calibrate` calibrates an already fitted model on a held-out set the
  caller chose (e.g. the validation fold of a walk-forward split).

The calibrators are scikit-learn's, as ``CalibratedClassifierCV`` uses them: one-vs-rest
``IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)`` on each class's probability, or
``_SigmoidCalibration`` (Platt 2000, with his smoothed targets) on each class's log-odds; for more
than two classes the calibrated columns are renormalised to sum to one. Only the fitted numbers
(isotonic knots, sigmoid slope and intercept) are kept and applied here, so an artifact holds
plain numbers, not a pickled estimator; the tests check the outputs against
``CalibratedClassifierCV(FrozenEstimator(model))``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
from scipy.special import expit, logit
from sklearn.calibration import _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression

from quant.models.base import (
    EvalSet,
    FeatureInput,
    Model,
    TargetInput,
    Task,
    check_weights,
    model_from_bytes,
    n_rows,
    to_vector,
)

CalibrationMethod = Literal["isotonic", "sigmoid"]

PROBA_EPS = 1e-12
"""Probabilities are clipped to [eps, 1 - eps] before taking log-odds for the sigmoid."""


def calibration_inputs(proba: np.ndarray, method: CalibrationMethod) -> np.ndarray:
    """What each class's calibrator sees: the probability (isotonic) or its log-odds (sigmoid).

    Binary models are calibrated on the last class only, as scikit-learn does; the result has one
    column then, one per class otherwise.
    """
    cols = proba[:, 1:2] if proba.shape[1] == 2 else proba
    if method == "sigmoid":
        return logit(np.clip(cols, PROBA_EPS, 1.0 - PROBA_EPS))
    return cols


def _take_rows(X: FeatureInput, rows: slice) -> FeatureInput:
    if isinstance(X, np.ndarray):
        return X[rows]
    if hasattr(X, "iloc"):
        return X.iloc[rows]  # pandas
    return X[rows]  # polars


class CalibratedModel(Model):
    """A classifier whose probabilities pass through calibrators fitted on held-out rows."""

    task: ClassVar[Task] = "classification"

    def __init__(
        self,
        model: Model,
        method: CalibrationMethod = "isotonic",
        calibration_fraction: float = 0.2,
        gap: int = 0,
    ) -> None:
        if method not in ("isotonic", "sigmoid"):
            raise ValueError(f"method must be 'isotonic' or 'sigmoid', got {method!r}")
        if model.task != "classification":
            raise ValueError(f"only classifiers can be calibrated, not a {type(model).__name__}")
        if not 0.0 < calibration_fraction < 1.0:
            raise ValueError(f"calibration_fraction must be in (0, 1), got {calibration_fraction}")
        if gap < 0:
            raise ValueError(f"gap must be >= 0, got {gap}")
        self.model = model
        self.method: CalibrationMethod = method
        self.calibration_fraction = float(calibration_fraction)
        self.gap = int(gap)
        self.calibrators: list[dict[str, Any]] | None = None
        self.calibration_rows = 0

    @property
    def params(self) -> dict[str, Any]:
        return {
            "model": {"kind": type(self.model).__name__, "params": self.model.params},
            "method": self.method,
            "calibration_fraction": self.calibration_fraction,
            "gap": self.gap,
        }

    def clone(self) -> Self:
        return type(self)(self.model.clone(), self.method, self.calibration_fraction, self.gap)

    @property
    def is_fitted(self) -> bool:
        return self.calibrators is not None

    @property
    def feature_names(self) -> list[str]:
        return self.model.feature_names

    def fit(
        self,
        X: FeatureInput,
        y: TargetInput,
        sample_weight: TargetInput | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        """Fit the model on the head of the rows and the calibrator on the tail.

        Rows ``[0, n_fit)`` fit the model, ``[n_fit + gap, n)`` calibrate it, with ``n - n_fit``
        being ``calibration_fraction`` of the rows. ``eval_set`` goes to the wrapped model (for
        early stopping); it must not overlap the calibration rows.
        """
        n = n_rows(X)
        target = to_vector(y)
        assert target is not None
        if len(target) != n:
            raise ValueError(f"y has {len(target)} rows for {n} feature rows")
        weights = check_weights(sample_weight, n)
        n_fit = round(n * (1.0 - self.calibration_fraction))
        cal_start = n_fit + self.gap
        if n_fit < 1 or cal_start >= n:
            raise ValueError(
                f"{n} rows leave nothing to fit or to calibrate on "
                f"(calibration_fraction={self.calibration_fraction}, gap={self.gap})"
            )
        head, tail = slice(0, n_fit), slice(cal_start, n)
        self.model.fit(
            _take_rows(X, head),
            target[head],
            sample_weight=None if weights is None else weights[head],
            eval_set=eval_set,
        )
        return self.calibrate(
            _take_rows(X, tail), target[tail], None if weights is None else weights[tail]
        )

    def calibrate(
        self, X: FeatureInput, y: TargetInput, sample_weight: TargetInput | None = None
    ) -> Self:
        """Fit only the calibrators, on held-out rows of an already fitted model."""
        if not self.model.is_fitted:
            raise ValueError("calibrate() needs a fitted model; use fit() to fit both")
        target = to_vector(y)
        assert target is not None
        classes = self.model.classes_
        assert classes is not None
        n = len(target)
        weights = check_weights(sample_weight, n)
        present = set(np.unique(target).tolist())
        unknown = present - set(classes.tolist())
        if unknown:
            raise ValueError(f"calibration labels {sorted(unknown)} are not model classes")
        absent = [c for c in classes.tolist() if c not in present]
        if absent:
            raise ValueError(
                f"calibration rows hold no example of class {absent}: need every class "
                f"{classes.tolist()} to calibrate"
            )
        inputs = calibration_inputs(self.model.predict_proba(X), self.method)
        targets = classes[1:] if len(classes) == 2 else classes
        fitted: list[dict[str, Any]] = []
        for k, cls_label in enumerate(targets):
            hit = (target == cls_label).astype(np.float64)
            if self.method == "isotonic":
                iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
                iso.fit(inputs[:, k], hit, sample_weight=weights)
                fitted.append(
                    {
                        "x": np.asarray(iso.X_thresholds_, dtype=np.float64).tolist(),
                        "y": np.asarray(iso.y_thresholds_, dtype=np.float64).tolist(),
                    }
                )
            else:
                sig = _SigmoidCalibration().fit(inputs[:, k], hit, sample_weight=weights)
                fitted.append({"a": float(sig.a_), "b": float(sig.b_)})
        self.calibrators = fitted
        self.classes_ = classes
        self._feature_names = self.model.feature_names
        self.calibration_rows = n
        return self

    def _apply(self, k: int, values: np.ndarray) -> np.ndarray:
        assert self.calibrators is not None
        cal = self.calibrators[k]
        if self.method == "isotonic":
            # Linear interpolation between knots, flat beyond them: IsotonicRegression.predict
            # with out_of_bounds="clip".
            return np.interp(values, np.asarray(cal["x"]), np.asarray(cal["y"]))
        return expit(-(cal["a"] * values + cal["b"]))

    def predict_proba(self, X: FeatureInput) -> np.ndarray:
        self._require_fitted()
        assert self.classes_ is not None
        inputs = calibration_inputs(self.model.predict_proba(X), self.method)
        n_classes = len(self.classes_)
        if n_classes == 2:
            p1 = self._apply(0, inputs[:, 0])
            proba = np.column_stack([1.0 - p1, p1])
        else:
            proba = np.column_stack([self._apply(k, inputs[:, k]) for k in range(n_classes)])
            total = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / n_classes)
            proba = np.divide(proba, total, out=uniform, where=total != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def predict(self, X: FeatureInput) -> np.ndarray:
        return self._labels_from_proba(self.predict_proba(X))

    def _archive(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        fields = {"calibrators": self.calibrators, "calibration_rows": self.calibration_rows}
        return fields, {"base.qm": self.model.to_bytes()}

    @classmethod
    def _from_archive(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        p = meta["params"]
        model = cls(
            model_from_bytes(blobs["base.qm"]), p["method"], p["calibration_fraction"], p["gap"]
        )
        model.calibrators = meta["calibrators"]
        model.calibration_rows = int(meta.get("calibration_rows", 0))
        model._restore_common(meta)
        return model
