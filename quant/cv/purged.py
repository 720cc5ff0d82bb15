"""Purged K-fold with embargo (AFML ch. 7), and the purge/embargo rules the splitters share.

Financial labels span time: a sample born at t0 has a label that is only known at t1. If a
training sample's label window overlaps a test sample's, the model has seen part of the test
outcome; if a training sample starts right after the test set, its features are serially
correlated with the test labels. Standard K-fold ignores both and overstates skill.

**Samples.** ``t1`` maps each sample's start ``t0`` (the Series index, the time its features
are stamped) to its label's end ``t1`` (the values), e.g. ``triple_barrier(...)["t1"]``, or is
a pair ``(t0, t1)`` of arrays. Samples must be in ``t0`` order (ties allowed, e.g. a panel of
symbols) in the same order as the rows of ``X``. Times are tz-aware timestamps or integers.

**Purge.** A test block (a contiguous run of test samples) covers the interval
``[a, b]`` = [its first t0, the latest t1 of its samples]. A training sample is dropped when
its label window overlaps it: ``t1_i > a and t0_i < b``. Bounds follow AFML snippet 7.3
exactly: a training label ending *at* the first test start (``t1_i == a``) is kept (the
snippet keeps ``t1 <= t0``), and a sample starting *at* the last test label's end
(``t0_i == b``) is kept (the snippet's ``searchsorted`` keeps it). Read as return windows
``(t0, t1]``, touching windows share no return.

**Embargo.** With ``h = int(pct_embargo * n_samples)`` (as the snippet), the first h samples
starting at or after ``b`` are dropped from training too, and so is any sample tied in ``t0``
with the last of them. This is the snippet's ``indices[maxT1Idx + mbrg:]``: the embargo is
counted from the end of the test labels, not from the last test start.

**Full purge.** The book's snippet 7.3 keeps, of the samples before the test fold, those with
``t1 <= a``, and of those after, the ones from ``searchsorted(b) + h`` on. Here every training
sample is tested against every test block by the overlap rule above (the full purge of
snippet 7.1 with 7.3's bounds), so the rule also holds for several test blocks (CPCV), for
unsorted label ends and for ties; on a single sorted fold it gives the snippet's indices
(``tests/unit/test_cv.py`` checks that against a transcription of the snippet). One case
differs: a zero-length label (t1 == t0) at a fold's start, which the snippet's ``t1 <= t0``
would put in both the test and the training set; here test samples never train.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

T1Like = pd.Series | tuple[Any, Any]
"""Label windows: a Series t0 -> t1 or a pair (t0, t1) of arrays of equal length."""


def _times(values: Any, what: str) -> tuple[np.ndarray, bool]:
    """int64 times (UTC ns for timestamps) and whether they are timestamps."""
    if isinstance(values, pl.Series):
        values = values.to_pandas()
    index = pd.Index(values)
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is None:
            raise ValueError(f"{what} must be tz-aware (UTC) timestamps, got naive datetimes")
        if index.hasnans:
            raise ValueError(f"{what} has {int(index.isna().sum())} missing time(s)")
        return index.as_unit("ns").asi8.copy(), True
    if pd.api.types.is_integer_dtype(index):
        return index.to_numpy(dtype=np.int64), False
    raise ValueError(f"{what} must be timestamps or integers, got {index.dtype}")


class SampleWindows:
    """The (t0, t1) window of every sample, as int64 arrays, validated once."""

    __slots__ = ("is_time", "t0", "t0_index", "t1")

    def __init__(self, t1: T1Like) -> None:
        if isinstance(t1, pd.Series):
            start, end, index = t1.index, t1, pd.Index(t1.index)
        elif isinstance(t1, tuple) and len(t1) == 2:
            start, end, index = t1[0], t1[1], None
        else:
            raise TypeError("t1 must be a pandas Series t0 -> t1 or a pair (t0, t1) of arrays")
        self.t0, k0 = _times(start, "t0")
        self.t1, k1 = _times(end, "t1")
        if k0 != k1:
            raise ValueError("t0 and t1 must both be timestamps or both be integers")
        if self.t0.shape != self.t1.shape:
            raise ValueError(f"t0 has {self.t0.size} samples but t1 has {self.t1.size}")
        if self.t0.size and (np.diff(self.t0) < 0).any():
            raise ValueError("samples must be in t0 order (sort them by their start time)")
        if (self.t1 < self.t0).any():
            raise ValueError(f"{int((self.t1 < self.t0).sum())} sample(s) have t1 before t0")
        self.is_time = k0
        self.t0_index = index

    def __len__(self) -> int:
        return int(self.t0.size)

    def check(self, X: Any) -> None:
        """``X`` must have one row per sample; a time-indexed pandas X must match t0."""
        if X is None:
            return
        n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
        if n_rows != len(self):
            raise ValueError(f"X has {n_rows} rows but t1 describes {len(self)} samples")
        index = getattr(X, "index", None)
        if isinstance(index, pd.DatetimeIndex) and self.is_time:
            x_t0, _ = _times(index, "X's index")
            if not np.array_equal(x_t0, self.t0):
                raise ValueError("X's index does not match t1's start times (t0)")

    def blocks(self, test: np.ndarray) -> list[tuple[int, int]]:
        """Contiguous runs [start, stop) of the sorted test positions."""
        if test.size == 0:
            return []
        breaks = np.flatnonzero(np.diff(test) != 1) + 1
        starts = np.concatenate(([0], breaks))
        stops = np.concatenate((breaks, [test.size]))
        return [(int(test[i]), int(test[j - 1]) + 1) for i, j in zip(starts, stops, strict=True)]

    def purge(self, train: np.ndarray, start: int, stop: int, a: int | None = None) -> None:
        """Clear in the ``train`` mask every sample whose window overlaps [a, b].

        The block is positions [start, stop); ``a`` defaults to its first t0 and b is the
        latest t1 of its samples. Overlap: ``t1_i > a and t0_i < b``.
        """
        a = int(self.t0[start]) if a is None else a
        b = self.t1[start:stop].max()
        train &= ~((self.t1 > a) & (self.t0 < b))

    def embargo(self, train: np.ndarray, start: int, stop: int, h: int) -> None:
        """Clear the first ``h`` samples starting at or after the block's latest t1."""
        if h <= 0:
            return
        b = self.t1[start:stop].max()
        first = int(np.searchsorted(self.t0, b, side="left"))
        if first >= len(self):
            return
        last_t0 = self.t0[min(first + h, len(self)) - 1]
        train &= ~((self.t0 >= b) & (self.t0 <= last_t0))


def embargo_size(n_samples: int, pct_embargo: float) -> int:
    """``int(pct_embargo * n_samples)``, as AFML snippet 7.3 sizes the embargo."""
    return int(n_samples * pct_embargo)


def check_pct_embargo(pct_embargo: float) -> float:
    pct = float(pct_embargo)
    if not 0.0 <= pct < 1.0:
        raise ValueError(f"pct_embargo must lie in [0, 1), got {pct_embargo}")
    return pct


def purged_train(
    windows: SampleWindows, test: np.ndarray, h: int, purge: bool = True
) -> np.ndarray:
    """Training positions: all samples not in ``test``, minus purge and embargo per block."""
    train = np.ones(len(windows), dtype=bool)
    train[test] = False
    for start, stop in windows.blocks(test):
        if purge:
            windows.purge(train, start, stop)
        windows.embargo(train, start, stop, h)
    return np.flatnonzero(train)


class PurgedKFold:
    """K contiguous test folds in time order, training purged and embargoed (AFML 7.3).

    scikit-learn compatible: ``split(X, y=None, groups=None)`` yields ``(train, test)``
    position arrays, ``get_n_splits()`` their count, so it can be passed as ``cv=`` to
    ``cross_val_score`` or ``GridSearchCV``. Folds are ``np.array_split`` of the samples (the
    first ``n % k`` folds one sample longer), never shuffled; every sample is tested once.
    Purge and embargo rules: see the module docstring. A fold left with no training sample
    is an error naming it, not an empty array for the model to choke on.
    """

    def __init__(self, n_splits: int = 5, t1: T1Like | None = None, pct_embargo: float = 0.0):
        if t1 is None:
            raise ValueError("PurgedKFold needs t1, the label end time of every sample")
        if not isinstance(n_splits, int | np.integer) or n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {n_splits}")
        self.n_splits = int(n_splits)
        self.t1 = t1
        self.pct_embargo = check_pct_embargo(pct_embargo)
        self._windows = SampleWindows(t1)
        if len(self._windows) < self.n_splits:
            raise ValueError(f"{len(self._windows)} samples are too few for {self.n_splits} folds")

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        windows = self._windows
        windows.check(X)
        n = len(windows)
        h = embargo_size(n, self.pct_embargo)
        for k, test in enumerate(np.array_split(np.arange(n), self.n_splits)):
            train = purged_train(windows, test, h)
            if train.size == 0:
                raise ValueError(
                    f"fold {k}: purging and embargo leave no training sample "
                    f"(labels too long for {self.n_splits} folds, or pct_embargo too large)"
                )
            yield train, test

    def __repr__(self) -> str:
        return (
            f"PurgedKFold(n_splits={self.n_splits}, n_samples={len(self._windows)}, "
            f"pct_embargo={self.pct_embargo})"
        )
