"""Research evaluation without Ray: what a sweep runs per trial, and what it does with the best.

- :mod:`~quant.research.params`: ``TrialParams`` (every knob of a trial) and search spaces
  (``validate_space``, ``sample_params``, ``params_from_config``).
- :mod:`~quant.research.dataset`: ``ResearchDataset`` (bars of a window -> research bars,
  features, CUSUM events, triple-barrier labels, weights; raw minute bars for backtests).
- :mod:`~quant.research.signals`: ``PredictionStrategy``, probabilities as target positions
  for the backtest engine and its fast path.
- :mod:`~quant.research.evaluate`: ``evaluate_trial`` (walk-forward or CPCV over sessions, a
  model and a costed backtest per fold, resumable) -> ``TrialResult``.
- :mod:`~quant.research.selection`: ``select_by_deflated_sharpe`` (DSR and PBO).
- :mod:`~quant.research.final`: ``train_final`` and ``register_winner``.

The Ray Tune sweeps in ``tune/`` call these; nothing here imports Ray.
"""

from quant.research.dataset import (
    DataWindowError,
    ResearchDataset,
    Samples,
    feature_pipeline,
    feature_set,
    resample_bars,
)
from quant.research.evaluate import (
    FoldError,
    FoldResult,
    TrialResult,
    build_model,
    evaluate_trial,
    partial_score,
    plan_folds,
)
from quant.research.final import register_winner, train_final
from quant.research.params import (
    DEFAULT_SEARCH_SPACE,
    SearchSpace,
    SearchSpaceError,
    TrialParams,
    params_from_config,
    sample_params,
    validate_space,
)
from quant.research.selection import Selection, select_by_deflated_sharpe
from quant.research.signals import PredictionStrategy

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "DataWindowError",
    "FoldError",
    "FoldResult",
    "PredictionStrategy",
    "ResearchDataset",
    "Samples",
    "SearchSpace",
    "SearchSpaceError",
    "Selection",
    "TrialParams",
    "TrialResult",
    "build_model",
    "evaluate_trial",
    "feature_pipeline",
    "feature_set",
    "params_from_config",
    "partial_score",
    "plan_folds",
    "register_winner",
    "resample_bars",
    "sample_params",
    "select_by_deflated_sharpe",
    "train_final",
    "validate_space",
]
