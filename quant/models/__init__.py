"""Models behind one interface, the model registry, and explanations.

- :mod:`~quant.models.base`: the :class:`Model` interface (``fit``, ``predict``,
  ``predict_proba``, ``save``, ``load``, ``feature_names``, ``params``) and the artifact format.
- :mod:`~quant.models.xgb`: XGBoost classifier and regressor.
- :mod:`~quant.models.torch_models`: an MLP and a sequence model (causal TCN or LSTM) in torch.
- :mod:`~quant.models.ensemble`: weighted probability averages.
- :mod:`~quant.models.calibration`: isotonic or sigmoid calibration on held-out rows.
- :mod:`~quant.models.registry`: versioned artifacts with manifests, stages and rollback on a
  local directory or any pyarrow filesystem URI.
- :mod:`~quant.models.explanations` and :mod:`~quant.models.importance`: SHAP (tree and kernel),
  MDI and MDA, and their Plotly figures.

Names are imported on first use (PEP 562): ``import quant.models.registry``, all a model server
needs to look a version up, does not pay for torch, xgboost and scikit-learn until a model is
built or loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "MODEL_KINDS": "base",
    "Model": "base",
    "NotFittedError": "base",
    "load_model": "base",
    "model_from_bytes": "base",
    "CalibratedModel": "calibration",
    "WeightedEnsemble": "ensemble",
    "normalize_weights": "ensemble",
    "AdditivityError": "explanations",
    "Explanation": "explanations",
    "explain": "explanations",
    "explain_kernel": "explanations",
    "explain_tree": "explanations",
    "shap_summary_figure": "explanations",
    "xgb_native_contributions": "explanations",
    "MDAResult": "importance",
    "importance_figure": "importance",
    "mda_importance": "importance",
    "mdi_importance": "importance",
    "STAGES": "registry",
    "CorruptArtifactError": "registry",
    "ModelManifest": "registry",
    "ModelRegistry": "registry",
    "ModelVersion": "registry",
    "RegistryKeyError": "registry",
    "StageChange": "registry",
    "git_commit": "registry",
    "hash_frame": "registry",
    "MLPModel": "torch_models",
    "SequenceModel": "torch_models",
    "deterministic_torch": "torch_models",
    "XGBClassifierModel": "xgb",
    "XGBRegressorModel": "xgb",
}

__all__ = [
    "MODEL_KINDS",
    "STAGES",
    "AdditivityError",
    "CalibratedModel",
    "CorruptArtifactError",
    "Explanation",
    "MDAResult",
    "MLPModel",
    "Model",
    "ModelManifest",
    "ModelRegistry",
    "ModelVersion",
    "NotFittedError",
    "RegistryKeyError",
    "SequenceModel",
    "StageChange",
    "WeightedEnsemble",
    "XGBClassifierModel",
    "XGBRegressorModel",
    "deterministic_torch",
    "explain",
    "explain_kernel",
    "explain_tree",
    "git_commit",
    "hash_frame",
    "importance_figure",
    "load_model",
    "mda_importance",
    "mdi_importance",
    "model_from_bytes",
    "normalize_weights",
    "shap_summary_figure",
    "xgb_native_contributions",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quant.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"quant.models.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from quant.models.base import MODEL_KINDS, Model, NotFittedError, load_model, model_from_bytes
    from quant.models.calibration import CalibratedModel
    from quant.models.ensemble import WeightedEnsemble, normalize_weights
    from quant.models.explanations import (
        AdditivityError,
        Explanation,
        explain,
        explain_kernel,
        explain_tree,
        shap_summary_figure,
        xgb_native_contributions,
    )
    from quant.models.importance import (
        MDAResult,
        importance_figure,
        mda_importance,
        mdi_importance,
    )
    from quant.models.registry import (
        STAGES,
        CorruptArtifactError,
        ModelManifest,
        ModelRegistry,
        ModelVersion,
        RegistryKeyError,
        StageChange,
        git_commit,
        hash_frame,
    )
    from quant.models.torch_models import MLPModel, SequenceModel, deterministic_torch
    from quant.models.xgb import XGBClassifierModel, XGBRegressorModel
