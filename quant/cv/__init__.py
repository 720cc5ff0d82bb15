"""Cross-validation for overlapping financial labels (López de Prado, AFML ch. 7 and 12).

scikit-learn compatible splitters (``split(X, y=None, groups=None)`` yields ``(train, test)``
position arrays; ``get_n_splits()``), all purged and embargoed by the rules documented in
:mod:`quant.cv.purged`:

- :class:`PurgedKFold`: K contiguous folds, each sample tested once (AFML 7.3);
- :class:`CombinatorialPurgedCV`: all C(N, k) test-group choices, with backtest-path
  reconstruction (AFML 12);
- :class:`WalkForward`: anchored or rolling, training only on the past.

Each takes ``t1``: a pandas Series mapping every sample's start time t0 (index, in the order
of the rows of X) to its label's end time, e.g. ``triple_barrier(...)["t1"]``, or a pair of
arrays ``(t0, t1)``.
"""

from quant.cv.cpcv import CombinatorialPurgedCV
from quant.cv.purged import PurgedKFold, SampleWindows, purged_train
from quant.cv.walk_forward import WalkForward

__all__ = ["CombinatorialPurgedCV", "PurgedKFold", "SampleWindows", "WalkForward", "purged_train"]
