"""Walk-forward splits, anchored or rolling, purged and embargoed: the live-trading replay.

Each split trains only on the past and tests on the block that follows, the way a model
retrained on a schedule would have traded. The last ``n_splits * test_size`` samples form
``n_splits`` consecutive test blocks (``test_size`` defaults to ``n // (n_splits + 1)``, as
scikit-learn's ``TimeSeriesSplit``); the training set of a block is every earlier sample
(``anchored=True``) or the ``train_size`` samples just before it (rolling).

**Purge** (``purge=True``): a training sample whose label ends after the test block starts
(``t1_i > a``, a = first test t0) is dropped: at time a its outcome was not known yet, so a
live model could not have trained on it. A label ending exactly at a is kept (AFML 7.3's
bound; see :mod:`quant.cv.purged`).

**Embargo** (``pct_embargo``): AFML's embargo drops training samples that *follow* a test set;
walk-forward has none. Here it is the mirror image, a safety gap before the test block: the
h = ``int(pct_embargo * n)`` samples just before the test block are dropped, and with
``purge=True`` training labels must also end by the first of them (the test interval is
extended back by h samples). With ``purge=False`` it is a plain gap, as ``TimeSeriesSplit``'s
``gap``. A rolling window is placed before purge and gap, which then shorten it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from quant.cv.purged import SampleWindows, T1Like, check_pct_embargo, embargo_size


class WalkForward:
    """Anchored or rolling walk-forward splitter with purge and a pre-test embargo gap.

    scikit-learn compatible: ``split(X, y=None, groups=None)`` yields ``(train, test)``
    position arrays in time order (test blocks advance; every training sample precedes its
    test block).
    """

    def __init__(
        self,
        n_splits: int = 5,
        t1: T1Like | None = None,
        test_size: int | None = None,
        train_size: int | None = None,
        anchored: bool = True,
        pct_embargo: float = 0.0,
        purge: bool = True,
    ) -> None:
        if t1 is None:
            raise ValueError("WalkForward needs t1, the label end time of every sample")
        if not isinstance(n_splits, int | np.integer) or n_splits < 1:
            raise ValueError(f"n_splits must be an integer >= 1, got {n_splits}")
        if not anchored and (train_size is None or train_size < 1):
            raise ValueError("a rolling walk-forward (anchored=False) needs train_size >= 1")
        if anchored and train_size is not None:
            raise ValueError("train_size is for rolling windows: pass anchored=False with it")
        self.n_splits = int(n_splits)
        self.t1 = t1
        self.anchored = bool(anchored)
        self.train_size = None if train_size is None else int(train_size)
        self.pct_embargo = check_pct_embargo(pct_embargo)
        self.purge = bool(purge)
        self._windows = SampleWindows(t1)
        n = len(self._windows)
        self.test_size = n // (self.n_splits + 1) if test_size is None else int(test_size)
        if self.test_size < 1:
            raise ValueError(
                f"{n} samples are too few for {self.n_splits} walk-forward test blocks"
            )
        if n - self.n_splits * self.test_size < 1:
            raise ValueError(
                f"{self.n_splits} test blocks of {self.test_size} samples leave no training "
                f"window in {n} samples"
            )

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        windows = self._windows
        windows.check(X)
        n = len(windows)
        h = embargo_size(n, self.pct_embargo)
        first_test = n - self.n_splits * self.test_size
        for k in range(self.n_splits):
            start = first_test + k * self.test_size
            stop = start + self.test_size
            lo = 0 if self.anchored else max(0, start - self.train_size)
            train = np.zeros(n, dtype=bool)
            train[lo:start] = True
            gap_start = max(start - h, 0)
            train[gap_start:start] = False
            if self.purge:
                windows.purge(train, start, stop, a=int(windows.t0[gap_start]))
            positions = np.flatnonzero(train)
            if positions.size == 0:
                raise ValueError(
                    f"split {k}: purging and the embargo gap leave no training sample "
                    f"before test block [{start}, {stop})"
                )
            yield positions, np.arange(start, stop)

    def __repr__(self) -> str:
        window = "anchored" if self.anchored else f"rolling train_size={self.train_size}"
        return (
            f"WalkForward(n_splits={self.n_splits}, test_size={self.test_size}, {window}, "
            f"n_samples={len(self._windows)}, pct_embargo={self.pct_embargo}, "
            f"purge={self.purge})"
        )
