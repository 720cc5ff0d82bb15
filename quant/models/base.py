"""One interface for every model: fit, predict, predict_proba, save, load.

The research pipeline, the sweeps (``tune/``), the backtest and the serving layer never care
which learner sits behind a signal; they hold a :class:`Model`. Everything a model needs to
predict again (its hyperparameters, the feature names it was fitted on, the class labels, the
scaling it learned and the learner's own weights) travels in one self-describing artifact, a
zip archive with a ``meta.json`` and binary entries. No pickle: an artifact names its kind, the
kind must be one of the registered :class:`Model` subclasses, and each subclass rebuilds itself
from JSON and its learner's native format (xgboost UBJSON, torch ``state_dict`` loaded with
``weights_only=True``), so loading an artifact never runs code stored in it.

Features are named. A model learns the names from the columns of the polars or pandas frame it
is fitted on (or from ``feature_names=`` with a numpy array) and, when predicting on a frame,
selects its columns by name, so a frame with extra or reordered columns is safe. A numpy array
must have exactly the fitted columns, in the fitted order.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import tempfile
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import polars as pl

FORMAT = "quant.models/1"
"""Version of the artifact layout; bumped when a stored field changes meaning."""

Task = Literal["classification", "regression"]
FeatureInput = pl.DataFrame | pd.DataFrame | np.ndarray
TargetInput = np.ndarray | pl.Series | pd.Series | Sequence[Any]
EvalSet = tuple[Any, Any] | Sequence[tuple[Any, Any]]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Fixed entry time stamp: the same model gives the same artifact bytes."""

MODEL_KINDS: dict[str, type[Model]] = {}
"""Every concrete :class:`Model` subclass by class name: what an artifact may name as its kind."""


class NotFittedError(RuntimeError):
    """A model was asked to predict or save before it was fitted."""


# --------------------------------------------------------------------------- inputs


def default_feature_names(n: int) -> list[str]:
    return [f"f{i}" for i in range(n)]


def frame_columns(X: FeatureInput) -> list[str] | None:
    """Column names of a frame, or None for a numpy array."""
    if isinstance(X, pl.DataFrame):
        return list(X.columns)
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return None


def n_rows(X: FeatureInput) -> int:
    if isinstance(X, pl.DataFrame | pd.DataFrame):
        return len(X)
    return int(np.asarray(X).shape[0])


def resolve_feature_names(X: FeatureInput, requested: Sequence[str] | None) -> list[str]:
    """The feature names a fit on ``X`` will use.

    ``requested`` (the model's ``feature_names=``) wins; otherwise a frame's columns, or
    ``f0..f{n-1}`` for a numpy array.
    """
    if requested is not None:
        names = [str(n) for n in requested]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names are not unique: {names}")
        return names
    cols = frame_columns(X)
    if cols is not None:
        return cols
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-d array, got shape {arr.shape}")
    return default_feature_names(arr.shape[1])


def to_matrix(X: FeatureInput, feature_names: Sequence[str]) -> np.ndarray:
    """``X`` as a float64 matrix whose columns are ``feature_names`` in that order.

    Frames are selected by name (a missing column is an error naming it); a numpy array must
    have exactly ``len(feature_names)`` columns. Nulls become NaN.
    """
    names = list(feature_names)
    if isinstance(X, pl.DataFrame):
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"features missing from the frame: {missing} (it has {X.columns})")
        sub = X.select(names)
        bad = [c for c, t in sub.schema.items() if not (t.is_numeric() or t == pl.Boolean)]
        if bad:
            raise ValueError(f"feature columns must be numeric or boolean, not {bad}")
        return sub.cast(pl.Float64).to_numpy().astype(np.float64, copy=False).reshape(len(sub), -1)
    if isinstance(X, pd.DataFrame):
        cols = {str(c): c for c in X.columns}
        missing = [n for n in names if n not in cols]
        if missing:
            raise ValueError(f"features missing from the frame: {missing} (it has {list(cols)})")
        sub = X[[cols[n] for n in names]]
        try:
            return sub.to_numpy(dtype=np.float64, na_value=np.nan).reshape(len(sub), -1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature columns must be numeric: {exc}") from exc
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-d array, got shape {arr.shape}")
    if arr.shape[1] != len(names):
        raise ValueError(
            f"expected {len(names)} feature columns {names}, got an array with {arr.shape[1]}"
        )
    return arr


def to_vector(y: TargetInput | None, name: str = "y") -> np.ndarray | None:
    """A 1-d numpy array from a numpy array, a polars or pandas Series or a list."""
    if y is None:
        return None
    if isinstance(y, pl.Series):
        arr = y.to_numpy()
    elif isinstance(y, pl.DataFrame | pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"{name} must be one column, got {y.shape[1]}")
        arr = np.asarray(y.to_numpy()).reshape(-1)
    elif isinstance(y, pd.Series):
        arr = y.to_numpy()
    else:
        arr = np.asarray(y)
    arr = np.asarray(arr)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    return arr


def check_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    w = to_vector(sample_weight, "sample_weight")
    if w is None:
        return None
    w = w.astype(np.float64)
    if len(w) != n:
        raise ValueError(f"sample_weight has {len(w)} values for {n} rows")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return w


def encode_classes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): sorted distinct labels and each row's index into them.

    A classifier needs two classes at least; a fold whose labels hold one class is an error
    that names the class, not a model that silently predicts a constant.
    """
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError("classification labels contain NaN")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        only = classes.tolist()
        raise ValueError(f"training labels hold a single class {only}: a classifier needs two")
    return classes, codes.astype(np.int64)


def check_regression_target(y: np.ndarray) -> np.ndarray:
    out = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError("regression target contains NaN or infinite values")
    return out


def normalize_eval_set(eval_set: EvalSet | None) -> list[tuple[Any, Any]]:
    """``(X, y)`` or a list of them, as a list; xgboost's convention: the last one stops early."""
    if eval_set is None:
        return []
    if isinstance(eval_set, tuple) and len(eval_set) == 2 and not isinstance(eval_set[0], tuple):
        return [eval_set]
    out = list(eval_set)
    for item in out:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ValueError("eval_set must be (X, y) or a list of (X, y) pairs")
    return [tuple(item) for item in out]  # type: ignore[misc]


def classes_to_json(classes: np.ndarray) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


def classes_from_json(values: list[Any]) -> np.ndarray:
    return np.asarray(values)


# --------------------------------------------------------------------------- archive


def _json_scalar(value: Any) -> Any:
    """numpy scalars and arrays in hyperparameters become plain JSON; anything else is an error
    (an artifact must not depend on how some object happens to print)."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in a model artifact")


def pack(meta: Mapping[str, Any], blobs: Mapping[str, bytes] | None = None) -> bytes:
    """A model artifact: ``meta.json`` plus named binary entries, with fixed time stamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        text = json.dumps(
            dict(meta), sort_keys=True, indent=1, allow_nan=False, default=_json_scalar
        )
        entries = {"meta.json": text.encode("utf-8"), **dict(blobs or {})}
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return buf.getvalue()


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(meta, blobs) of an artifact; a clear error when the bytes are not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if "meta.json" not in names:
                raise ValueError("not a model artifact: no meta.json entry")
            meta = json.loads(zf.read("meta.json").decode("utf-8"))
            blobs = {n: zf.read(n) for n in names if n != "meta.json"}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a model artifact (bad zip: {exc})") from exc
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown model artifact format {meta.get('format')!r}, want {FORMAT!r}")
    return meta, blobs


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write through a temporary file in the same directory and ``os.replace``: a reader never
    sees half an artifact, and a failed write leaves any previous file as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


_KIND_MODULES = {
    "XGBClassifierModel": "quant.models.xgb",
    "XGBRegressorModel": "quant.models.xgb",
    "MLPModel": "quant.models.torch_models",
    "SequenceModel": "quant.models.torch_models",
    "WeightedEnsemble": "quant.models.ensemble",
    "CalibratedModel": "quant.models.calibration",
}
"""Where each artifact kind is defined, imported on its first load and not before: reading an
XGBoost artifact never imports torch, and code that only reads manifests imports neither."""


def model_from_bytes(data: bytes) -> Model:
    """Rebuild whichever registered model an artifact holds."""
    meta, blobs = unpack(data)
    kind = meta.get("kind")
    if kind in _KIND_MODULES and kind not in MODEL_KINDS:
        importlib.import_module(_KIND_MODULES[str(kind)])
    cls = MODEL_KINDS.get(str(kind))
    if cls is None:
        raise ValueError(
            f"artifact holds unknown model kind {kind!r}; known: {sorted(_KIND_MODULES)}"
        )
    return cls._from_archive(meta, blobs)


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load any model saved with :meth:`Model.save`."""
    return model_from_bytes(Path(path).read_bytes())


# --------------------------------------------------------------------------- interface


class Model(ABC):
    """A fitted-or-not learner behind the common interface.

    Subclasses set ``task`` and implement :meth:`fit`, :meth:`predict`, :meth:`params`,
    :meth:`_archive` and :meth:`_from_archive`; classifiers also :meth:`predict_proba` and
    ``classes_``. ``fit`` returns the model itself, so ``m = XGBClassifierModel().fit(X, y)``
    reads naturally.
    """

    task: ClassVar[Task]
    classes_: np.ndarray | None = None
    _feature_names: list[str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ABCMeta computes __abstractmethods__ only after this hook runs, so abstract
        # intermediate classes are kept out by name: they start with an underscore.
        if not cls.__name__.startswith("_"):
            MODEL_KINDS[cls.__name__] = cls

    # -- the interface -----------------------------------------------------------------

    @abstractmethod
    def fit(
        self,
        X: FeatureInput,
        y: TargetInput,
        sample_weight: TargetInput | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        """Fit on ``X`` (rows in time order where that matters) and targets ``y``.

        ``eval_set`` is ``(X_val, y_val)`` or a list of them; models that stop early watch the
        last one. It must be data the model may look at: early stopping *selects* on it.
        """

    @abstractmethod
    def predict(self, X: FeatureInput) -> np.ndarray:
        """Class labels (classifiers) or values (regressors), one per row."""

    def predict_proba(self, X: FeatureInput) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes_`` order."""
        raise TypeError(f"{type(self).__name__} is a regressor: it has no predict_proba")

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The constructor arguments: ``type(m)(**m.params)`` is an unfitted copy."""

    @property
    def feature_names(self) -> list[str]:
        """The features the model was fitted on, in its column order."""
        if self._feature_names is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: it has no feature names")
        return list(self._feature_names)

    @property
    def is_fitted(self) -> bool:
        return self._feature_names is not None

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    def clone(self) -> Self:
        """An unfitted model with the same hyperparameters (for cross-validation folds)."""
        return type(self)(**self.params)

    # -- persistence -------------------------------------------------------------------

    @abstractmethod
    def _archive(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """(meta fields, binary entries) that rebuild the fitted model."""

    @classmethod
    @abstractmethod
    def _from_archive(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        """Inverse of :meth:`_archive`."""

    def to_bytes(self) -> bytes:
        """The artifact as bytes (what :meth:`save` writes and the registry stores)."""
        self._require_fitted()
        fields, blobs = self._archive()
        meta = {
            "format": FORMAT,
            "kind": type(self).__name__,
            "task": self.task,
            "params": self.params,
            "feature_names": self.feature_names,
            "classes": None if self.classes_ is None else classes_to_json(self.classes_),
            **fields,
        }
        return pack(meta, blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        model = model_from_bytes(data)
        if not isinstance(model, cls):
            raise TypeError(f"artifact holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the artifact atomically to ``path`` (one file); returns the path."""
        return write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a saved model; ``Model.load`` returns whichever kind the file holds."""
        return cls.from_bytes(Path(path).read_bytes())

    # -- helpers for subclasses ----------------------------------------------------------

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet")

    def _restore_common(self, meta: dict[str, Any]) -> None:
        self._feature_names = list(meta["feature_names"])
        classes = meta.get("classes")
        self.classes_ = None if classes is None else classes_from_json(classes)

    def _labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        assert self.classes_ is not None
        return self.classes_[np.argmax(proba, axis=1)]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
