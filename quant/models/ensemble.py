"""Weighted ensembles: the probability (or prediction) average of several models.

Averaging probabilities, not votes, keeps the ensemble's output a probability that calibration,
bet sizing and log-loss scoring can use. Weights are normalised to sum to one, so Optuna may
search them on any positive scale; :meth:`WeightedEnsemble.with_weights` re-weights fitted
members without refitting them, which is what a weight search needs.

Members may use different features: each selects its own columns by name from the frame it is
given, and the ensemble's ``feature_names`` is their union in first-seen order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from quant.models.base import (
    EvalSet,
    FeatureInput,
    Model,
    TargetInput,
    Task,
    model_from_bytes,
    to_matrix,
)


def normalize_weights(weights: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray:
    """Non-negative weights scaled to sum to one; equal weights when ``None``."""
    if n < 1:
        raise ValueError("an ensemble needs at least one model")
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} models")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w / w.sum()


class WeightedEnsemble(Model):
    """``sum_i w_i * member_i`` over probabilities (classifiers) or predictions (regressors).

    All members must be of one task; classifiers must share their class labels (checked when
    the members are fitted). ``fit`` fits every member on the same data, in place.
    """

    task: ClassVar[Task]

    def __init__(self, models: Sequence[Model], weights: Sequence[float] | None = None) -> None:
        members = list(models)
        self.weights = normalize_weights(weights, len(members))
        tasks = {m.task for m in members}
        if len(tasks) != 1:
            raise ValueError(f"ensemble members mix tasks: {sorted(tasks)}")
        self.task = tasks.pop()  # type: ignore[misc]
        self.models = members
        if all(m.is_fitted for m in members):
            self._adopt_members()

    @property
    def params(self) -> dict[str, Any]:
        return {
            "models": [{"kind": type(m).__name__, "params": m.params} for m in self.models],
            "weights": self.weights.tolist(),
        }

    def clone(self) -> Self:
        return type(self)([m.clone() for m in self.models], self.weights)

    def with_weights(self, weights: Sequence[float]) -> WeightedEnsemble:
        """The same (fitted) members under new weights; the members are shared, not copied."""
        return WeightedEnsemble(self.models, weights)

    def _adopt_members(self) -> None:
        names: list[str] = []
        for m in self.models:
            names += [n for n in m.feature_names if n not in names]
        if self.task == "classification":
            first = self.models[0].classes_
            assert first is not None
            for m in self.models[1:]:
                assert m.classes_ is not None
                if m.classes_.tolist() != first.tolist():
                    raise ValueError(
                        f"ensemble members disagree on classes: {first.tolist()} vs "
                        f"{m.classes_.tolist()}"
                    )
            self.classes_ = first
        self._feature_names = names

    def fit(
        self,
        X: FeatureInput,
        y: TargetInput,
        sample_weight: TargetInput | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        for m in self.models:
            m.fit(X, y, sample_weight=sample_weight, eval_set=eval_set)
        self._adopt_members()
        return self

    def _frame(self, X: FeatureInput) -> FeatureInput:
        """A numpy array becomes a frame named by the ensemble's features, so each member can
        pick its own columns."""
        if isinstance(X, np.ndarray):
            return pl.DataFrame(
                to_matrix(X, self.feature_names), schema=self.feature_names, orient="row"
            )
        return X

    def member_outputs(self, X: FeatureInput) -> np.ndarray:
        """Each member's probabilities (n_models, n_rows, n_classes) or predictions
        (n_models, n_rows): what a weight search scores without re-predicting."""
        self._require_fitted()
        frame = self._frame(X)
        if self.task == "classification":
            return np.stack([m.predict_proba(frame) for m in self.models])
        return np.stack([np.asarray(m.predict(frame), dtype=np.float64) for m in self.models])

    def predict_proba(self, X: FeatureInput) -> np.ndarray:
        if self.task != "classification":
            return super().predict_proba(X)
        return np.tensordot(self.weights, self.member_outputs(X), axes=1)

    def predict(self, X: FeatureInput) -> np.ndarray:
        if self.task == "classification":
            return self._labels_from_proba(self.predict_proba(X))
        return np.tensordot(self.weights, self.member_outputs(X), axes=1)

    def _archive(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        blobs = {f"members/{i:03d}.qm": m.to_bytes() for i, m in enumerate(self.models)}
        return {"n_members": len(self.models)}, blobs

    @classmethod
    def _from_archive(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        members = [model_from_bytes(blobs[f"members/{i:03d}.qm"]) for i in range(meta["n_members"])]
        model = cls(members, meta["params"]["weights"])
        # The stored weights are already normalised: dividing by their float sum again could
        # move them by an ulp, and a loaded model must predict exactly as the saved one.
        model.weights = np.asarray(meta["params"]["weights"], dtype=np.float64)
        model._restore_common(meta)
        return model
