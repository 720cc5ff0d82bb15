"""Labels for supervised learning on prices (López de Prado, AFML ch. 2-4, 10).

Per symbol, over closes indexed by the time they are known (a bar's ``ts_end``):

- :func:`cusum_filter` picks event times (AFML 2.4);
- :func:`ewm_volatility` / :func:`daily_volatility` scale the barriers (AFML 3.1);
- :func:`triple_barrier` labels each event by the first barrier its path touches (AFML 3);
- :func:`meta_labels` and :func:`meta_bet_size`: side from a primary model, size from a
  secondary one (AFML 3.6, 10.1);
- :mod:`quant.labels.weights`: concurrency, average uniqueness, sequential bootstrap,
  return-attribution and time-decay weights (AFML 4).

``triple_barrier(...)["t1"]`` maps each sample's start to its label's end: the input of the
purged splitters in :mod:`quant.cv` and of the weights here.
"""

from quant.labels._series import close_series
from quant.labels.cusum import cusum_filter
from quant.labels.meta import meta_bet_size, meta_labels
from quant.labels.triple_barrier import (
    PROFIT_TAKE,
    STOP_LOSS,
    VERTICAL,
    daily_volatility,
    ewm_volatility,
    triple_barrier,
    vertical_barrier_positions,
)
from quant.labels.weights import (
    average_uniqueness,
    concurrency,
    indicator_matrix,
    indicator_uniqueness,
    label_spans,
    return_attribution_weights,
    sequential_bootstrap,
    sequential_bootstrap_probabilities,
    time_decay,
)

__all__ = [
    "PROFIT_TAKE",
    "STOP_LOSS",
    "VERTICAL",
    "average_uniqueness",
    "close_series",
    "concurrency",
    "cusum_filter",
    "daily_volatility",
    "ewm_volatility",
    "indicator_matrix",
    "indicator_uniqueness",
    "label_spans",
    "meta_bet_size",
    "meta_labels",
    "return_attribution_weights",
    "sequential_bootstrap",
    "sequential_bootstrap_probabilities",
    "time_decay",
    "triple_barrier",
    "vertical_barrier_positions",
]
