"""Sample weights for overlapping labels (AFML ch. 4): concurrency, uniqueness, bootstrap.

Triple-barrier labels overlap in time: two labels whose windows share bars share returns, so
they are not independent draws, and a model (or a bagging ensemble) that treats them as such
overweights crowded periods. AFML's remedies, implemented here:

- **concurrency** c_t (snippet 4.1): how many labels are alive at bar t;
- **average uniqueness** (4.2): the mean of 1/c_t over a label's bars (1 = shares nothing);
- **indicator matrix** and its uniqueness (4.3, 4.4), for small problems and checks;
- **sequential bootstrap** (4.5, 4.6): draws that favour labels overlapping little with the
  ones already drawn, deterministic given the ``rng`` seed or Generator;
- **return attribution** (4.10): weight by the absolute log return a label owns, each bar's
  return split among its concurrent labels, normalised to sum to the number of labels;
- **time decay** (4.11): weights that decline with cumulative uniqueness into the past.

Bar convention, as in the book: a label occupies every bar from t0 to t1, **both included**
(``closeIdx[tIn:tOut]``), so the bar at t0 counts towards concurrency and its return towards
the return attribution. ``close_index`` is the bar axis (the price series' index, close times);
``t1`` a Series mapping each label's t0 (index) to its t1 (values), e.g.
``triple_barrier(...)["t1"]``. Labels keep their input order in every output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant.labels._series import axis_values, time_values


def _bar_axis(close_index: pd.Index | pd.Series) -> pd.Index:
    index = close_index.index if isinstance(close_index, pd.Series) else pd.Index(close_index)
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("close_index must be strictly increasing")
    return index


def label_spans(close_index: pd.Index | pd.Series, t1: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """First and last bar position (both included) of each label's [t0, t1] window."""
    index = _bar_axis(close_index)
    if not isinstance(t1, pd.Series):
        raise TypeError("t1 must be a pandas Series mapping t0 (index) to t1 (values)")
    if t1.isna().any():
        raise ValueError(f"t1 has {int(t1.isna().sum())} missing end time(s)")
    times, k_bars = axis_values(index, "close_index")
    t0_v, k_t0 = axis_values(t1.index, "t1's index (t0)")
    t1_v, k_t1 = axis_values(t1, "t1's values")
    if not k_bars == k_t0 == k_t1:
        raise ValueError("close_index, t0 and t1 must all be timestamps or all be bar numbers")
    if (t1_v < t0_v).any():
        raise ValueError(f"{int((t1_v < t0_v).sum())} label(s) end before they start")
    start = np.searchsorted(times, t0_v, side="left")
    end = np.searchsorted(times, t1_v, side="right") - 1
    if (end < start).any():
        raise ValueError(f"{int((end < start).sum())} label(s) cover no bar of close_index")
    return start.astype(np.int64), end.astype(np.int64)


def _concurrency_counts(n_bars: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    delta = np.zeros(n_bars + 1, dtype=np.int64)
    np.add.at(delta, start, 1)
    np.add.at(delta, end + 1, -1)
    return np.cumsum(delta[:-1])


def concurrency(close_index: pd.Index | pd.Series, t1: pd.Series) -> pd.Series:
    """Number of labels alive at each bar (AFML snippet 4.1), 0 where none is."""
    index = _bar_axis(close_index)
    start, end = label_spans(index, t1)
    return pd.Series(_concurrency_counts(len(index), start, end), index=index, name="concurrency")


def _span_means(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each [start, end] bar span, by prefix sums."""
    prefix = np.concatenate(([0.0], np.cumsum(values)))
    return (prefix[end + 1] - prefix[start]) / (end - start + 1)


def average_uniqueness(close_index: pd.Index | pd.Series, t1: pd.Series) -> pd.Series:
    """Mean of 1/c_t over each label's bars (AFML snippet 4.2), indexed by t0."""
    index = _bar_axis(close_index)
    start, end = label_spans(index, t1)
    counts = _concurrency_counts(len(index), start, end)
    inverse = np.divide(1.0, counts, out=np.zeros(counts.shape), where=counts > 0)
    return pd.Series(_span_means(inverse, start, end), index=t1.index, name="uniqueness")


def indicator_matrix(close_index: pd.Index | pd.Series, t1: pd.Series) -> pd.DataFrame:
    """Dense bars x labels 0/1 matrix: 1 where the label is alive (AFML snippet 4.3).

    Memory is bars x labels: meant for small problems and checks; the functions here work on
    spans and never build it.
    """
    index = _bar_axis(close_index)
    start, end = label_spans(index, t1)
    bars = np.arange(len(index))[:, None]
    matrix = ((bars >= start[None, :]) & (bars <= end[None, :])).astype(np.int8)
    return pd.DataFrame(matrix, index=index, columns=range(len(t1)))


def indicator_uniqueness(ind_m: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Average uniqueness of each column of an indicator matrix (AFML snippet 4.4).

    Columns may repeat (a bootstrap sample): each copy counts towards concurrency.
    """
    m = np.asarray(ind_m, dtype=np.float64)
    c = m.sum(axis=1, keepdims=True)
    u = np.divide(m, c, out=np.zeros_like(m), where=c > 0)
    alive = m > 0
    return np.where(alive, u, 0.0).sum(axis=0) / alive.sum(axis=0)


# --------------------------------------------------------------------------- sequential bootstrap


def _rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError("rng must be a numpy Generator or an integer seed")


def sequential_bootstrap_probabilities(
    close_index: pd.Index | pd.Series, t1: pd.Series, drawn: list[int] | np.ndarray
) -> np.ndarray:
    """Probability of drawing each label next, given the labels ``drawn`` so far (AFML 4.5).

    Label i's weight is its average uniqueness within ``drawn + [i]`` (repeats count), i.e.
    the mean over its bars of 1/(c_t + 1) with c_t the drawn labels alive at t; the
    probabilities are the weights normalised to sum to 1.
    """
    index = _bar_axis(close_index)
    start, end = label_spans(index, t1)
    drawn = np.asarray(drawn, dtype=np.int64)
    counts = _concurrency_counts(len(index), start[drawn], end[drawn])
    u = _span_means(1.0 / (counts + 1.0), start, end)
    return u / u.sum()


def sequential_bootstrap(
    close_index: pd.Index | pd.Series,
    t1: pd.Series,
    n_draws: int | None = None,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """Positions (into ``t1``) of a sequential bootstrap sample (AFML snippets 4.5-4.6).

    Each draw picks label i with probability proportional to its average uniqueness given
    the labels drawn so far (see :func:`sequential_bootstrap_probabilities`), so the sample
    is closer to IID than a standard bootstrap. ``n_draws`` defaults to the number of labels.
    Deterministic for a given seed or Generator state: one ``rng.random()`` per draw.

    Cost: O(labels) per draw plus the overlapping labels' bars, so O(labels^2) per sample,
    the same order as the book's algorithm, without its bars x labels matrix.
    """
    index = _bar_axis(close_index)
    start, end = label_spans(index, t1)
    n = start.size
    if n == 0:
        raise ValueError("no labels to bootstrap")
    n_draws = n if n_draws is None else int(n_draws)
    if n_draws < 1:
        raise ValueError(f"n_draws must be positive, got {n_draws}")
    gen = _rng(rng)
    length = (end - start + 1).astype(np.float64)
    counts = np.zeros(len(index), dtype=np.float64)
    # sums[i] = sum over label i's bars of 1 / (c_t + 1), updated as labels are drawn.
    sums = length.copy()
    drawn = np.empty(n_draws, dtype=np.int64)
    for d in range(n_draws):
        cum = np.cumsum(sums / length)
        j = min(int(np.searchsorted(cum, gen.random() * cum[-1], side="right")), n - 1)
        drawn[d] = j
        a, b = start[j], end[j]
        old = counts[a : b + 1]
        gain = 1.0 / (old + 2.0) - 1.0 / (old + 1.0)
        counts[a : b + 1] += 1.0
        prefix = np.concatenate(([0.0], np.cumsum(gain)))
        hit = np.flatnonzero((start <= b) & (end >= a))
        lo = np.maximum(start[hit], a) - a
        hi = np.minimum(end[hit], b) - a
        sums[hit] += prefix[hi + 1] - prefix[lo]
    return drawn


# --------------------------------------------------------------------------- weights


def return_attribution_weights(prices: pd.Series, t1: pd.Series) -> pd.Series:
    """AFML snippet 4.10: |sum of r_t / c_t over the label's bars|, scaled to sum to N.

    r_t is the log return into bar t (0 at the first bar), c_t the concurrency. Labels that
    own large absolute returns, shared with few others, weigh more; the scaling keeps the
    mean weight at 1 so a classifier's effective sample size is unchanged.
    """
    if not isinstance(prices, pd.Series):
        raise TypeError("prices must be a pandas Series indexed by close time")
    index = _bar_axis(prices)
    start, end = label_spans(index, t1)
    counts = _concurrency_counts(len(index), start, end)
    log_ret = np.diff(np.log(prices.to_numpy(dtype=np.float64)), prepend=np.nan)
    log_ret[0] = 0.0
    share = np.divide(log_ret, counts, out=np.zeros(counts.shape), where=counts > 0)
    prefix = np.concatenate(([0.0], np.cumsum(share)))
    w = np.abs(prefix[end + 1] - prefix[start])
    total = w.sum()
    if not total > 0:
        raise ValueError("labels own no return: return-attribution weights are undefined")
    return pd.Series(w * (w.size / total), index=t1.index, name="weight")


def time_decay(uniqueness: pd.Series, c: float = 1.0) -> pd.Series:
    """AFML snippet 4.11: weights decaying linearly in cumulative uniqueness into the past.

    The newest label (by t0) gets 1. ``c`` sets the oldest end: ``c = 1`` no decay;
    ``0 <= c < 1`` the weights fall linearly to ``c`` at the oldest (0 included);
    ``-1 < c < 0`` the oldest ``|c|`` share of cumulative uniqueness gets weight 0.
    Returns weights in the input's order.
    """
    if not -1.0 < c <= 1.0:
        raise ValueError(f"c must lie in (-1, 1], got {c}")
    order = np.argsort(time_values(uniqueness.index), kind="stable")
    cum = np.cumsum(uniqueness.to_numpy(dtype=np.float64)[order])
    total = cum[-1]
    slope = (1.0 - c) / total if c >= 0 else 1.0 / ((c + 1.0) * total)
    const = 1.0 - slope * total
    decayed = np.maximum(const + slope * cum, 0.0)
    out = np.empty_like(decayed)
    out[order] = decayed
    return pd.Series(out, index=uniqueness.index, name="weight")
