"""Combinatorial purged cross-validation with backtest paths (AFML ch. 12).

Walk-forward tests one history; K-fold one path. CPCV splits the samples into N contiguous
groups and tests every choice of k of them: C(N, k) splits, each training on the other N - k
groups (purged and embargoed against every test group). Every group is tested in
C(N-1, k-1) splits, so the out-of-sample predictions stitch into

    phi = k / N * C(N, k) = C(N-1, k-1)

complete backtest paths, each covering every group exactly once. A strategy is then judged
on a distribution of out-of-sample Sharpe ratios instead of one number.

Path assembly follows the usual convention (also skfolio's ``get_path_ids``): splits are the
combinations in lexicographic order; the j-th split (in that order) that tests group g
supplies group g of path j.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from quant.cv.purged import (
    SampleWindows,
    T1Like,
    check_pct_embargo,
    embargo_size,
    purged_train,
)

MAX_SPLITS = 100_000
"""C(N, k) above this is almost surely a misconfiguration: each split is a model fit."""


class CombinatorialPurgedCV:
    """All C(N, k) choices of k test groups among N, purged and embargoed, with paths.

    scikit-learn compatible (``split`` yields ``(train, test)`` position arrays; ``test`` is
    the union of the split's test groups, sorted). Groups are ``np.array_split`` of the
    samples in time order. Purge and embargo per contiguous stretch of test groups, with the
    rules of :mod:`quant.cv.purged`.
    """

    def __init__(
        self,
        n_groups: int = 6,
        n_test_groups: int = 2,
        t1: T1Like | None = None,
        pct_embargo: float = 0.0,
    ) -> None:
        if t1 is None:
            raise ValueError("CombinatorialPurgedCV needs t1, the label end time of every sample")
        if not isinstance(n_groups, int | np.integer) or n_groups < 2:
            raise ValueError(f"n_groups must be an integer >= 2, got {n_groups}")
        if not isinstance(n_test_groups, int | np.integer) or not 1 <= n_test_groups < n_groups:
            raise ValueError(
                f"n_test_groups must be an integer in [1, n_groups), got {n_test_groups}"
            )
        if math.comb(n_groups, n_test_groups) > MAX_SPLITS:
            raise ValueError(
                f"C({n_groups}, {n_test_groups}) = {math.comb(n_groups, n_test_groups):,} "
                f"splits exceeds {MAX_SPLITS:,}: each split is a model fit"
            )
        self.n_groups = int(n_groups)
        self.n_test_groups = int(n_test_groups)
        self.t1 = t1
        self.pct_embargo = check_pct_embargo(pct_embargo)
        self._windows = SampleWindows(t1)
        if len(self._windows) < self.n_groups:
            raise ValueError(f"{len(self._windows)} samples are too few for {self.n_groups} groups")

    # ------------------------------------------------------------------ structure

    @property
    def n_samples(self) -> int:
        return len(self._windows)

    @property
    def n_paths(self) -> int:
        """phi = k / N * C(N, k) = C(N - 1, k - 1)."""
        return math.comb(self.n_groups - 1, self.n_test_groups - 1)

    @property
    def test_group_sets(self) -> list[tuple[int, ...]]:
        """The test groups of each split, in split order (lexicographic combinations)."""
        return list(combinations(range(self.n_groups), self.n_test_groups))

    @property
    def groups(self) -> list[np.ndarray]:
        """Sample positions of each group."""
        return np.array_split(np.arange(self.n_samples), self.n_groups)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return math.comb(self.n_groups, self.n_test_groups)

    def paths(self) -> list[list[tuple[int, int]]]:
        """For each backtest path, its (split index, group) pairs for groups 0..N-1."""
        testing: list[list[int]] = [[] for _ in range(self.n_groups)]
        for split, test_groups in enumerate(self.test_group_sets):
            for g in test_groups:
                testing[g].append(split)
        return [
            [(testing[g][path], g) for g in range(self.n_groups)] for path in range(self.n_paths)
        ]

    # ------------------------------------------------------------------ splitting

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        windows = self._windows
        windows.check(X)
        h = embargo_size(self.n_samples, self.pct_embargo)
        group_positions = self.groups
        for split, test_groups in enumerate(self.test_group_sets):
            test = np.concatenate([group_positions[g] for g in test_groups])
            train = purged_train(windows, test, h)
            if train.size == 0:
                raise ValueError(
                    f"split {split} (test groups {test_groups}): purging and embargo leave "
                    f"no training sample"
                )
            yield train, test

    def assemble_paths(self, split_predictions: Sequence[Any]) -> np.ndarray:
        """Stitch out-of-sample predictions into full backtest paths.

        ``split_predictions[s]`` holds split s's predictions for its ``test`` positions, in
        that order (what ``model.predict(X[test])`` returns). Returns an array of shape
        ``(n_paths, n_samples, ...)``: row j is path j's prediction for every sample.
        """
        n_splits = self.get_n_splits()
        if len(split_predictions) != n_splits:
            raise ValueError(
                f"expected predictions for {n_splits} splits, got {len(split_predictions)}"
            )
        group_positions = self.groups
        sets = self.test_group_sets
        # Where each group sits inside each split's test array.
        offsets: dict[tuple[int, int], slice] = {}
        for split, test_groups in enumerate(sets):
            at = 0
            for g in test_groups:
                size = group_positions[g].size
                offsets[(split, g)] = slice(at, at + size)
                at += size
        preds = [np.asarray(p) for p in split_predictions]
        for split, p in enumerate(preds):
            expected = sum(group_positions[g].size for g in sets[split])
            if p.shape[0] != expected:
                raise ValueError(
                    f"split {split}: {p.shape[0]} predictions for {expected} test samples"
                )
        tail = preds[0].shape[1:]
        dtype = np.result_type(*preds)
        out = np.empty((self.n_paths, self.n_samples, *tail), dtype=dtype)
        for j, path in enumerate(self.paths()):
            for split, g in path:
                out[j, group_positions[g]] = preds[split][offsets[(split, g)]]
        return out

    def __repr__(self) -> str:
        return (
            f"CombinatorialPurgedCV(n_groups={self.n_groups}, "
            f"n_test_groups={self.n_test_groups}, n_samples={self.n_samples}, "
            f"pct_embargo={self.pct_embargo})"
        )
