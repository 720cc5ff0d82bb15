"""Purged K-fold, CPCV and walk-forward splitters: hand-worked cases and independent checks.

Expected index arrays are written out literally. Bounds (AFML snippet 7.3): a training label
ending exactly at the test start is kept, one ending after it is purged; a sample starting
exactly at the test labels' last end is kept unless the embargo takes it. PurgedKFold is
compared with a transcription of the book's snippet 7.3 and CPCV with skfolio's
``CombinatorialPurgedCV`` on cases where their conventions coincide.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant.cv import CombinatorialPurgedCV, PurgedKFold, WalkForward


def int_t1(ends: list[int]) -> pd.Series:
    """Samples starting at bars 0..n-1 with the given label end bars."""
    return pd.Series(ends, index=range(len(ends)))


def splits_of(cv, X=None) -> list[tuple[list[int], list[int]]]:
    return [(train.tolist(), test.tolist()) for train, test in cv.split(X)]


def overlaps(t0: np.ndarray, t1: np.ndarray, i: int, a: int, b: int) -> bool:
    return bool(t1[i] > a and t0[i] < b)


# --------------------------------------------------------------------------- PurgedKFold by hand

# Ten samples at bars 0..9, three folds [0-3], [4-6], [7-9]. Label ends chosen to sit on the
# fold borders: sample 2 ends at 5 (inside fold 1), sample 3 ends at 4 (exactly at fold 1's
# start), sample 1 ends at 3 (before it), sample 7 starts inside fold 1's label span.
BORDER_T1 = int_t1([1, 3, 5, 4, 5, 6, 8, 8, 9, 9])


def test_purged_kfold_overlapping_labels_at_fold_borders():
    cv = PurgedKFold(n_splits=3, t1=BORDER_T1)
    assert splits_of(cv) == [
        # test [0..3] spans [0, 5]: sample 4 starts at 4 < 5 -> purged; 5 starts at 5 -> kept
        ([5, 6, 7, 8, 9], [0, 1, 2, 3]),
        # test [4..6] spans [4, 8]: sample 2 (ends 5, inside) purged; sample 3 (ends exactly
        # at 4) and 1 (ends at 3) kept; sample 7 (starts 7 < 8) purged; 8 (starts 8) kept
        ([0, 1, 3, 8, 9], [4, 5, 6]),
        # test [7..9] spans [7, 9]: sample 6 (ends 8) purged; sample 5 (ends 6) kept
        ([0, 1, 2, 3, 4, 5], [7, 8, 9]),
    ]


def test_purged_kfold_embargo_after_a_middle_fold():
    # 20 one-bar labels (t1 = t0 + 1), 4 folds of 5, embargo 10% -> h = 2 samples.
    cv = PurgedKFold(n_splits=4, t1=int_t1([i + 1 for i in range(20)]), pct_embargo=0.1)
    splits = splits_of(cv)
    # Middle fold 1: test [5..9] spans [5, 10]. Sample 4 ends at 5 = the test start: kept.
    # Samples 10 and 11 (the first two starting at or after 10) are embargoed; 12.. kept.
    assert splits[1] == ([0, 1, 2, 3, 4, *range(12, 20)], [5, 6, 7, 8, 9])
    # Middle fold 2: test [10..14] spans [10, 15] -> embargo 15, 16; everything before kept.
    assert splits[2] == ([*range(10), 17, 18, 19], [10, 11, 12, 13, 14])
    # Last fold: its labels end at 20, past the data: nothing after it to embargo.
    assert splits[3] == (list(range(15)), [15, 16, 17, 18, 19])
    assert splits[0] == (list(range(7, 20)), [0, 1, 2, 3, 4])


def test_purged_kfold_embargo_with_overlapping_labels():
    cv = PurgedKFold(n_splits=3, t1=BORDER_T1, pct_embargo=0.2)  # h = 2
    assert splits_of(cv) == [
        ([7, 8, 9], [0, 1, 2, 3]),  # embargo 5, 6 after the span's end at 5
        ([0, 1, 3], [4, 5, 6]),  # embargo 8, 9 after 8; before the fold only the purge
        ([0, 1, 2, 3, 4, 5], [7, 8, 9]),  # span ends at 9: only sample 9 (test) follows
    ]


def test_purged_kfold_on_timestamps_matches_bar_numbers():
    times = pd.date_range("2024-05-02 07:00", periods=10, freq="min", tz="UTC")
    t1 = pd.Series(times[BORDER_T1.to_numpy()], index=times)
    X = pd.DataFrame({"x": np.arange(10.0)}, index=times)
    timed = splits_of(PurgedKFold(3, t1, pct_embargo=0.2), X)
    assert timed == splits_of(PurgedKFold(3, BORDER_T1, pct_embargo=0.2))
    # A pair of arrays (e.g. polars columns) works as well as a Series.
    pair = (pl.from_pandas(pd.Series(times)), pl.from_pandas(t1.reset_index(drop=True)))
    assert splits_of(PurgedKFold(3, pair, pct_embargo=0.2)) == timed


def random_windows(n: int, seed: int, max_h: int = 12) -> pd.Series:
    """Unique sorted starts with gaps, label lengths 1..2*max_h bars (ends not monotone).

    Lengths are at least one bar, as triple-barrier labels are (t1 is a later bar than t0):
    with a zero-length label at a test fold's start, snippet 7.3 would also put that test
    sample into the training set (it keeps every sample with ``t1 <= t0`` of the fold).
    """
    rng = np.random.default_rng(seed)
    t0 = np.cumsum(rng.integers(1, 4, size=n))
    t1 = t0 + rng.integers(1, max_h, size=n) * rng.integers(1, 3, size=n)
    return pd.Series(t1, index=t0)


def afml_purged_kfold(t1: pd.Series, n_splits: int, pct_embargo: float):
    """AFML snippet 7.3 (PurgedKFold.split), transcribed; positional lookups via .iloc."""
    n = t1.shape[0]
    indices = np.arange(n)
    mbrg = int(n * pct_embargo)
    test_starts = [(i[0], i[-1] + 1) for i in np.array_split(np.arange(n), n_splits)]
    for i, j in test_starts:
        t0 = t1.index[i]
        test_indices = indices[i:j]
        max_t1_idx = t1.index.searchsorted(t1.iloc[test_indices].max())
        train_indices = t1.index.searchsorted(t1[t1 <= t0].index)
        if max_t1_idx < n:
            train_indices = np.concatenate((train_indices, indices[max_t1_idx + mbrg :]))
        yield train_indices, test_indices


@pytest.mark.parametrize(
    ("seed", "n_splits", "pct"),
    [(0, 3, 0.0), (1, 5, 0.01), (2, 4, 0.05), (3, 7, 0.02), (4, 10, 0.0)],
)
def test_purged_kfold_matches_afml_snippet_7_3(seed, n_splits, pct):
    t1 = random_windows(300, seed)
    ours = list(PurgedKFold(n_splits, t1, pct_embargo=pct).split(np.zeros((300, 1))))
    book = list(afml_purged_kfold(t1, n_splits, pct))
    assert len(ours) == len(book) == n_splits
    for (train, test), (b_train, b_test) in zip(ours, book, strict=True):
        np.testing.assert_array_equal(test, b_test)
        np.testing.assert_array_equal(train, np.sort(b_train))


@pytest.mark.parametrize("seed", range(4))
def test_purged_kfold_properties_on_random_windows(seed):
    t1 = random_windows(200, seed)
    t0v, t1v = t1.index.to_numpy(), t1.to_numpy()
    cv = PurgedKFold(5, t1, pct_embargo=0.03)
    tested = []
    for train, test in cv.split():
        assert np.intersect1d(train, test).size == 0
        a, b = t0v[test[0]], t1v[test].max()
        assert not any(overlaps(t0v, t1v, i, a, b) for i in train)
        # Embargo: no training sample among the first h = 6 starting at or after b.
        after = np.flatnonzero(t0v >= b)[:6]
        assert np.intersect1d(train, after).size == 0
        tested.extend(test.tolist())
    assert sorted(tested) == list(range(200))  # every sample tested exactly once


def test_purged_kfold_is_a_scikit_learn_splitter():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import check_cv, cross_val_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=120) > 0).astype(int)
    t1 = int_t1([min(i + 3, 119) for i in range(120)])
    cv = PurgedKFold(4, t1, pct_embargo=0.02)
    assert check_cv(cv) is cv
    scores = cross_val_score(LogisticRegression(), X, y, cv=cv)
    assert scores.shape == (4,)
    assert cv.get_n_splits() == 4
    assert "PurgedKFold(n_splits=4" in repr(cv)


def test_purged_kfold_rejects_bad_input():
    with pytest.raises(ValueError, match="t0 order"):
        PurgedKFold(2, pd.Series([3, 4, 5], index=[0, 2, 1]))
    with pytest.raises(ValueError, match="t1 before t0"):
        PurgedKFold(2, pd.Series([0, 0, 5], index=[0, 1, 2]))
    with pytest.raises(ValueError, match="too few"):
        PurgedKFold(5, int_t1([1, 2, 3]))
    with pytest.raises(ValueError, match="pct_embargo"):
        PurgedKFold(2, int_t1([1, 2, 3]), pct_embargo=1.0)
    with pytest.raises(ValueError, match="tz-aware"):
        naive = pd.date_range("2024-01-01", periods=4, freq="min")
        PurgedKFold(2, pd.Series(naive, index=naive))
    cv = PurgedKFold(2, int_t1([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="X has 5 rows"):
        next(cv.split(np.zeros((5, 2))))
    times = pd.date_range("2024-01-01", periods=4, freq="min", tz="UTC")
    timed = PurgedKFold(2, pd.Series(times, index=times))
    with pytest.raises(ValueError, match="does not match"):
        next(timed.split(pd.DataFrame({"x": range(4)}, index=times + pd.Timedelta(seconds=1))))
    # Every label spans the whole history: no fold can train.
    # (fold 0 keeps sample 9, which starts exactly when the fold's labels end)
    with pytest.raises(ValueError, match="fold 1: purging"):
        list(PurgedKFold(2, int_t1([9] * 10)).split())


# --------------------------------------------------------------------------- CPCV


def test_cpcv_counts_and_paths_for_six_groups_two_tests():
    cv = CombinatorialPurgedCV(6, 2, int_t1(list(range(1, 61))))
    assert cv.get_n_splits() == 15 == math.comb(6, 2)
    assert cv.n_paths == 5 == 2 * 15 // 6
    assert cv.test_group_sets == list(itertools.combinations(range(6), 2))
    paths = cv.paths()
    assert len(paths) == 5
    assert paths[0] == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert paths[1] == [(1, 0), (5, 1), (5, 2), (6, 3), (7, 4), (8, 5)]
    assert paths[4] == [(4, 0), (8, 1), (11, 2), (13, 3), (14, 4), (14, 5)]
    for path in paths:
        assert [g for _, g in path] == list(range(6))  # each group once per path
        for split, g in path:
            assert g in cv.test_group_sets[split]
    used = [pair for path in paths for pair in path]
    assert len(used) == len(set(used)) == 15 * 2  # every (split, test group) used once


def test_cpcv_splits_by_hand_with_purge_and_embargo():
    # 12 samples, 4 groups of 3, labels 2 bars long (t1 = t0 + 2, capped at 11), 2 test
    # groups, embargo h = int(12 * 0.1) = 1.
    t1 = int_t1([min(i + 2, 11) for i in range(12)])
    cv = CombinatorialPurgedCV(4, 2, t1, pct_embargo=0.1)
    assert splits_of(cv) == [
        # tests 0,1 ([0..5], span to 7): purge 6 (starts 6 < 7), embargo 7
        ([8, 9, 10, 11], [0, 1, 2, 3, 4, 5]),
        # tests 0,2: block [0..2] spans to 4 -> purge 3, embargo 4; block [6..8] spans
        # [6, 10] -> purge 5 (ends 7 > 6), 9; embargo 10
        ([11], [0, 1, 2, 6, 7, 8]),
        # tests 0,3: purge 3, embargo 4; block [9..11] spans [9, 11] -> purge 8 (ends 10)
        ([5, 6, 7], [0, 1, 2, 9, 10, 11]),
        # tests 1,2 ([3..8] spans [3, 10]): purge 2 (ends 4 > 3), 9; embargo 10
        ([0, 1, 11], [3, 4, 5, 6, 7, 8]),
        # tests 1,3: block [3..5] spans [3, 7] -> purge 2, 6; embargo 7; block [9..11] ->
        # purge 8
        ([0, 1], [3, 4, 5, 9, 10, 11]),
        # tests 2,3 ([6..11] spans [6, 11]): purge 5 (ends 7)
        ([0, 1, 2, 3, 4], [6, 7, 8, 9, 10, 11]),
    ]


def test_cpcv_assembles_predictions_into_full_paths():
    t1 = int_t1(list(range(1, 31)))
    cv = CombinatorialPurgedCV(5, 2, t1)
    # Each split "predicts" 1000 * split + sample position, so the stitched paths reveal
    # which split supplied each sample.
    predictions = [1000 * s + test for s, (_, test) in enumerate(cv.split())]
    paths = cv.assemble_paths(predictions)
    assert paths.shape == (cv.n_paths, 30) == (4, 30)
    groups = cv.groups
    for j, path in enumerate(cv.paths()):
        for split, g in path:
            np.testing.assert_array_equal(paths[j, groups[g]], 1000 * split + groups[g])
    # Probabilities (2 columns) keep their trailing shape.
    proba = [np.stack([p, -p], axis=1) for p in predictions]
    assert cv.assemble_paths(proba).shape == (4, 30, 2)
    with pytest.raises(ValueError, match="10 splits"):
        cv.assemble_paths(predictions[:3])


@pytest.mark.parametrize(
    ("n", "n_groups", "k", "horizon", "pct"),
    [(60, 6, 2, 3, 0.05), (60, 6, 3, 1, 0.0), (80, 8, 2, 4, 0.025), (90, 5, 2, 2, 0.0)],
)
def test_cpcv_matches_skfolio_where_conventions_coincide(n, n_groups, k, horizon, pct):
    """skfolio purges and embargoes by sample counts around each contiguous test stretch.

    Its conventions differ from ours: it ignores label times (``purged_size`` samples are
    dropped on both sides of a test stretch whatever their labels), counts the embargo after
    those purged samples, needs ``n_test_folds >= 2``, and gives the last fold the remainder
    of ``n // n_folds`` where we use ``np.array_split``. With labels exactly ``horizon``
    samples long, n divisible by the group count and ``purged_size = horizon - 1``, both
    describe the same splits; they must then agree sample for sample, paths included.
    """
    from skfolio.model_selection import CombinatorialPurgedCV as SkfolioCPCV

    t1 = int_t1([min(i + horizon, n - 1) for i in range(n)])
    ours = CombinatorialPurgedCV(n_groups, k, t1, pct_embargo=pct)
    theirs = SkfolioCPCV(
        n_folds=n_groups, n_test_folds=k, purged_size=horizon - 1, embargo_size=int(n * pct)
    )
    X = np.zeros((n, 1))
    assert ours.get_n_splits() == theirs.get_n_splits()
    assert ours.n_paths == theirs.n_test_paths
    for (train, test), (s_train, s_tests) in zip(ours.split(X), theirs.split(X), strict=True):
        np.testing.assert_array_equal(train, s_train)
        np.testing.assert_array_equal(test, np.concatenate(s_tests))
    path_ids = theirs.get_path_ids()  # [split, j] = path of the split's j-th test group
    for j, path in enumerate(ours.paths()):
        for split, g in path:
            position = ours.test_group_sets[split].index(g)
            assert path_ids[split, position] == j


@pytest.mark.parametrize("seed", range(3))
def test_cpcv_training_never_overlaps_any_test_group(seed):
    t1 = random_windows(150, seed, max_h=8)
    t0v, t1v = t1.index.to_numpy(), t1.to_numpy()
    cv = CombinatorialPurgedCV(6, 2, t1, pct_embargo=0.02)
    groups = cv.groups
    for (train, test), test_groups in zip(cv.split(), cv.test_group_sets, strict=True):
        assert np.intersect1d(train, test).size == 0
        for g in test_groups:
            a, b = t0v[groups[g][0]], t1v[groups[g]].max()
            assert not any(overlaps(t0v, t1v, i, a, b) for i in train)


def test_cpcv_rejects_bad_configuration():
    t1 = int_t1(list(range(1, 13)))
    with pytest.raises(ValueError, match="n_test_groups"):
        CombinatorialPurgedCV(4, 4, t1)
    with pytest.raises(ValueError, match="too few"):
        CombinatorialPurgedCV(20, 2, t1)
    with pytest.raises(ValueError, match="exceeds"):
        CombinatorialPurgedCV(40, 20, int_t1(list(range(1, 41))))


# --------------------------------------------------------------------------- walk-forward


def test_walk_forward_anchored_by_hand():
    # 20 samples, labels 2 bars long; 3 test blocks of 4: [8..11], [12..15], [16..19].
    t1 = int_t1([min(i + 2, 19) for i in range(20)])
    wf = WalkForward(3, t1, test_size=4)
    assert splits_of(wf) == [
        # sample 7 ends at 9 > 8: purged; sample 6 ends at 8 = the test start: kept
        (list(range(7)), [8, 9, 10, 11]),
        (list(range(11)), [12, 13, 14, 15]),
        (list(range(15)), [16, 17, 18, 19]),
    ]
    unpurged = WalkForward(3, t1, test_size=4, purge=False)
    assert [train.tolist() for train, _ in unpurged.split()] == [
        list(range(8)),
        list(range(12)),
        list(range(16)),
    ]


def test_walk_forward_rolling_and_embargo_gap_by_hand():
    t1 = int_t1([min(i + 2, 19) for i in range(20)])
    rolling = WalkForward(3, t1, test_size=4, train_size=6, anchored=False)
    assert splits_of(rolling) == [
        ([2, 3, 4, 5, 6], [8, 9, 10, 11]),
        ([6, 7, 8, 9, 10], [12, 13, 14, 15]),
        ([10, 11, 12, 13, 14], [16, 17, 18, 19]),
    ]
    # Embargo h = int(20 * 0.1) = 2: the two samples before each test block are dropped and
    # training labels must end by the first of them (test interval extended back to it).
    gapped = WalkForward(3, t1, test_size=4, pct_embargo=0.1)
    assert [train.tolist() for train, _ in gapped.split()] == [
        [0, 1, 2, 3, 4],  # gap 6, 7; sample 5 ends at 7 > 6: purged
        list(range(9)),
        list(range(13)),
    ]
    plain_gap = WalkForward(3, t1, test_size=4, pct_embargo=0.1, purge=False)
    assert next(iter(plain_gap.split()))[0].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("anchored", [True, False])
def test_walk_forward_is_in_time_order_and_purged(anchored):
    t1 = random_windows(300, seed=9)
    t0v, t1v = t1.index.to_numpy(), t1.to_numpy()
    wf = WalkForward(
        5, t1, train_size=None if anchored else 80, anchored=anchored, pct_embargo=0.01
    )
    previous_test_end = -1
    for train, test in wf.split(np.zeros((300, 2))):
        assert np.all(np.diff(test) == 1)
        assert test[0] > previous_test_end
        previous_test_end = test[-1]
        assert train.max() < test.min()
        # Point in time: every training label is known by the time the test block starts.
        assert t1v[train].max() <= t0v[test[0]]
        if not anchored:
            assert train.size <= 80
    assert previous_test_end == 299
    if anchored:
        sizes = [train.size for train, _ in wf.split()]
        assert sizes == sorted(sizes)


def test_walk_forward_rejects_bad_configuration():
    t1 = int_t1(list(range(1, 11)))
    with pytest.raises(ValueError, match="train_size"):
        WalkForward(2, t1, anchored=False)
    with pytest.raises(ValueError, match="leave no training window"):
        WalkForward(3, t1, test_size=4)
    with pytest.raises(ValueError, match="split 0"):
        next(WalkForward(2, int_t1([9] * 10), test_size=3).split())
