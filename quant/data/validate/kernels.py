"""Compiled row passes of market-data validation (numba), one sequential pass each.

Validation has to cost a small multiple of merely reading the data (issue 2: at most 3x a bare
Parquet scan for 20 million trades). Written with numpy, each rule is several whole-array
passes that allocate full-length temporaries (a running maximum keyed by symbol-day, masks,
gathers), and memory traffic, not arithmetic, dominates. Each kernel here does one rule's work
in one pass over rows arranged by symbol-day (``starts``: first row of each symbol-day; ``gid``:
the symbol-day of each row) and gives exactly the verdicts of the numpy formulation it replaced
(``tests/unit/test_validate_kernels.py`` checks each against a plain reference): the same IEEE
operations, and integer arithmetic (or a float quotient proven exact) where a rule is exact.
``outlier_screen`` is the exception by design: it only certifies which symbol-days cannot hold
an outlier, and the others are scored by the exact numpy path.

Shapes that keep the loops tight (measured here: several times faster than the obvious ones):
full-length outputs are passed in, so the caller can reuse them from chunk to chunk; the few
rows a rule rejects are written into a buffer sized for the worst case, of which only the
written pages are ever touched; the loops carry no arrays that grow.

Kernels are compiled on first use and cached on disk (``cache=True``): a machine pays the
compilation once (about 5 s), a process then loads them in a fraction of a second. None of them
holds the GIL (``nogil=True``), so a worker thread can run them beside the caller's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_INT64_MIN = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
DAY_NS = 86_400 * 10**9
_TWO_52 = 2**52
_TWO_63 = 9.223372036854775808e18
"""2**63: float prices in units at or above this do not fit an int64 (numpy casts them to the
smallest int64, which the tick kernel reproduces)."""


# -- clock and grouping ----------------------------------------------------------------------


def local_clock(
    epoch: np.ndarray, offset: int, day: np.ndarray | None = None, tod: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Local day number and time of day (ns) of UTC epoch-ns stamps in a fixed-offset zone
    (into ``day`` and ``tod`` when given)."""
    day = np.empty(epoch.shape[0], np.int64) if day is None else day
    tod = np.empty(epoch.shape[0], np.int64) if tod is None else tod
    _local_clock(epoch, offset, day, tod)
    return day, tod


@njit(cache=True, nogil=True)
def _local_clock(epoch: np.ndarray, offset: int, day: np.ndarray, tod: np.ndarray) -> None:
    lo = 1
    hi = 0
    d = 0
    for i in range(epoch.shape[0]):
        local = epoch[i] + offset
        if local < lo or local >= hi:  # rows of one day follow each other: divide on change
            d = local // DAY_NS
            lo = d * DAY_NS
            hi = lo + DAY_NS
        day[i] = d
        tod[i] = local - lo


def symbol_day_runs(
    symbol_runs: np.ndarray, day: np.ndarray, gid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol-days of rows grouped by symbol-day: (symbol-day of each row (into ``gid`` when
    given), first row of each symbol-day, symbol run of each symbol-day).

    ``symbol_runs`` are the lengths of the runs of equal symbols, in order; a new symbol-day
    starts where a run starts or the day changes.
    """
    n = day.shape[0]
    gid = np.empty(n, np.int64) if gid is None else gid
    starts = np.empty(n, np.int64)  # room for the worst case; only what is written is touched
    run_of = np.empty(n, np.int64)
    count = _symbol_days(symbol_runs, day, gid, starts, run_of)
    return gid, starts[:count].copy(), run_of[:count].copy()


@njit(cache=True, nogil=True)
def _symbol_days(
    symbol_runs: np.ndarray,
    day: np.ndarray,
    gid: np.ndarray,
    starts: np.ndarray,
    run_of: np.ndarray,
) -> int:
    k = -1
    i = 0
    for r in range(symbol_runs.shape[0]):
        end = i + symbol_runs[r]
        for j in range(i, end):
            if j == i or day[j] != day[j - 1]:
                k += 1
                starts[k] = j
                run_of[k] = r
            gid[j] = k
        i = end
    return k + 1


# -- row-level rules -------------------------------------------------------------------------


def off_tick(
    prices: np.ndarray,
    gid: np.ndarray,
    schedule_of_group: np.ndarray,
    schedule_start: np.ndarray,
    lowers: np.ndarray,
    ticks: np.ndarray,
    scale: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """True where a price is not exactly on the tick grid of its symbol-day's schedule.

    Schedule ``s`` owns tiers ``schedule_start[s]:schedule_start[s + 1]`` of ``lowers`` and
    ``ticks`` (integer price units). A price is on the grid when ``price * scale`` is within
    1e-6 of a positive whole number of units ``u`` and ``u - lower`` is a multiple of the tick
    of the tier holding ``u``. Symbol-days without a schedule (``-1``) are not flagged.
    """
    out = np.empty(prices.shape[0], np.bool_) if out is None else out
    _off_tick(prices, gid, schedule_of_group, schedule_start, lowers, ticks, scale, out)
    return out


@njit(cache=True, nogil=True)
def _off_tick(
    prices: np.ndarray,
    gid: np.ndarray,
    schedule_of_group: np.ndarray,
    schedule_start: np.ndarray,
    lowers: np.ndarray,
    ticks: np.ndarray,
    scale: float,
    off: np.ndarray,
) -> None:
    last_g = -1
    s = -1
    first = last = 0  # the schedule's tiers
    low_u = 0  # units in [low_u, high_u) lie in the current tier
    high_u = -1
    lower = 0
    tick = 1
    float_tick = 1.0
    for i in range(prices.shape[0]):
        g = gid[i]
        if g != last_g:
            last_g = g
            s = schedule_of_group[g]
            if s >= 0:
                first = schedule_start[s]
                last = schedule_start[s + 1]
            high_u = -1  # look the tier up again
        if s < 0:
            off[i] = False
            continue
        scaled = prices[i] * scale
        units = np.rint(scaled)
        if not (abs(scaled - units) < 1e-6 and units > 0):
            off[i] = True
            continue
        u = np.int64(units) if units < _TWO_63 else _INT64_MIN
        if u < low_u or u >= high_u:
            tier = first
            for t in range(last - 1, first - 1, -1):
                if lowers[t] <= u:
                    tier = t
                    break
            lower = lowers[tier]
            tick = ticks[tier]
            float_tick = float(tick)
            low_u = lower if tier > first else _INT64_MIN  # below the first tier: the first
            high_u = lowers[tier + 1] if tier + 1 < last else _INT64_MAX
        r = u - lower
        if 0 <= r < _TWO_52:
            # Exact: a quotient of integers below 2**52 is an integer only if it divides.
            off[i] = np.int64(float(r) / float_tick) * tick != r
        else:
            off[i] = r % tick != 0


def outside_windows(
    tod: np.ndarray,
    end: np.ndarray,
    overlap: bool,
    gid: np.ndarray,
    window_start: np.ndarray,
    window_lo: np.ndarray,
    window_hi: np.ndarray,
    in_range: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """True where a row lies in no window of its symbol-day (and the day is in range).

    Symbol-day ``g`` owns windows ``window_start[g]:window_start[g + 1]``. A row is inside a
    window [lo, hi) when ``lo <= tod < hi``; with ``overlap`` (bars), when [tod, end) overlaps it.
    """
    out = np.empty(tod.shape[0], np.bool_) if out is None else out
    _outside_windows(tod, end, overlap, gid, window_start, window_lo, window_hi, in_range, out)
    return out


@njit(cache=True, nogil=True)
def _outside_windows(
    tod: np.ndarray,
    end: np.ndarray,
    overlap: bool,
    gid: np.ndarray,
    window_start: np.ndarray,
    window_lo: np.ndarray,
    window_hi: np.ndarray,
    in_range: np.ndarray,
    out: np.ndarray,
) -> None:
    for i in range(tod.shape[0]):
        g = gid[i]
        hit = False
        for k in range(window_start[g], window_start[g + 1]):
            if overlap:
                if tod[i] < window_hi[k] and end[i] > window_lo[k]:
                    hit = True
                    break
            elif tod[i] >= window_lo[k] and tod[i] < window_hi[k]:
                hit = True
                break
        out[i] = (not hit) and in_range[g]


# -- sequence ----------------------------------------------------------------------------------


def late_rows(
    ts: np.ndarray, seq: np.ndarray | None, starts: np.ndarray, alive: np.ndarray, strict: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Alive rows whose ``ts`` is below (``strict``: not above) the maximum ts of the earlier
    alive rows of their symbol-day, or whose ``seq`` is not above their maximum seq.

    Returns (positions, late in ts?, earlier maximum ts, earlier maximum seq); a maximum is 0
    where the row is not late in that field.
    """
    n = ts.shape[0]
    positions = np.empty(n, np.int64)  # room for the worst case; only what is written is touched
    late_ts = np.empty(n, np.bool_)
    before_ts = np.empty(n, np.int64)
    before_seq = np.empty(n, np.int64)
    check_seq = seq is not None
    found = _late_rows(
        ts,
        seq if seq is not None else ts,
        check_seq,
        starts,
        alive,
        strict,
        positions,
        late_ts,
        before_ts,
        before_seq,
    )
    return (
        positions[:found].copy(),
        late_ts[:found].copy(),
        before_ts[:found].copy(),
        before_seq[:found].copy(),
    )


@njit(cache=True, nogil=True)
def _late_rows(
    ts: np.ndarray,
    seq: np.ndarray,
    check_seq: bool,
    starts: np.ndarray,
    alive: np.ndarray,
    strict: bool,
    positions: np.ndarray,
    late_ts: np.ndarray,
    before_ts: np.ndarray,
    before_seq: np.ndarray,
) -> int:
    n = ts.shape[0]
    n_groups = starts.shape[0]
    found = 0
    for g in range(n_groups):
        end = starts[g + 1] if g + 1 < n_groups else n
        have = False
        top_ts = 0
        top_seq = 0
        for i in range(starts[g], end):
            if not alive[i]:
                continue
            t = ts[i]
            q = seq[i]
            if have:
                ts_late = t < top_ts or (strict and t == top_ts)
                seq_late = check_seq and q <= top_seq
                if ts_late or seq_late:
                    positions[found] = i
                    late_ts[found] = ts_late
                    before_ts[found] = top_ts if ts_late else 0
                    before_seq[found] = top_seq if seq_late else 0
                    found += 1
                if t > top_ts:
                    top_ts = t
                if q > top_seq:
                    top_seq = q
            else:
                have = True
                top_ts = t
                top_seq = q
    return found


# -- band --------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def last_alive(
    values: np.ndarray, starts: np.ndarray, alive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol-day: the number of alive rows and the value of the last one (NaN if none)."""
    n = values.shape[0]
    n_groups = starts.shape[0]
    count = np.zeros(n_groups, np.int64)
    last = np.full(n_groups, np.nan)
    for g in range(n_groups):
        end = starts[g + 1] if g + 1 < n_groups else n
        c = 0
        for i in range(starts[g], end):
            if alive[i]:
                c += 1
        count[g] = c
        for i in range(end - 1, starts[g] - 1, -1):
            if alive[i]:
                last[g] = values[i]
                break
    return count, last


def outside_band(
    low: np.ndarray,
    high: np.ndarray,
    gid: np.ndarray,
    alive: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """Positions of alive rows below their symbol-day's lower band or above its upper band
    (1e-9 slack); symbol-days without a band (NaN) are not flagged."""
    positions = np.empty(low.shape[0], np.int64)  # only what is written is touched
    found = _outside_band(low, high, gid, alive, lower, upper, positions)
    return positions[:found].copy()


@njit(cache=True, nogil=True)
def _outside_band(
    low: np.ndarray,
    high: np.ndarray,
    gid: np.ndarray,
    alive: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    positions: np.ndarray,
) -> int:
    found = 0
    for i in range(low.shape[0]):
        if alive[i]:
            g = gid[i]
            if low[i] < lower[g] - 1e-9 or high[i] > upper[g] + 1e-9:
                positions[found] = i
                found += 1
    return found


# -- stale -------------------------------------------------------------------------------------


def stale_rows(
    scope: np.ndarray,
    alive: np.ndarray,
    ts: np.ndarray,
    v1: np.ndarray,
    v2: np.ndarray,
    v3: np.ndarray,
    v4: np.ndarray,
    v5: np.ndarray,
    cap: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows beyond ``cap`` in a run of identical values and more than ``limit`` ns after the
    run's first row: (positions, row number within the run, elapsed ns).

    Runs are over alive rows only and end where the scope or any of ``v1``..``v5`` changes
    (pass a column twice when there are fewer than five).
    """
    n = scope.shape[0]
    positions = np.empty(n, np.int64)  # only what is written is touched
    numbers = np.empty(n, np.int64)
    elapsed = np.empty(n, np.int64)
    found = _stale_rows(
        scope, alive, ts, v1, v2, v3, v4, v5, cap, limit, positions, numbers, elapsed
    )
    return positions[:found].copy(), numbers[:found].copy(), elapsed[:found].copy()


@njit(cache=True, nogil=True)
def _stale_rows(
    scope: np.ndarray,
    alive: np.ndarray,
    ts: np.ndarray,
    v1: np.ndarray,
    v2: np.ndarray,
    v3: np.ndarray,
    v4: np.ndarray,
    v5: np.ndarray,
    cap: int,
    limit: int,
    positions: np.ndarray,
    numbers: np.ndarray,
    elapsed: np.ndarray,
) -> int:
    found = 0
    prev = -1
    run_first = 0
    run_len = 0
    for i in range(scope.shape[0]):
        if not alive[i]:
            continue
        p = prev if prev >= 0 else i
        # Non-short-circuit: values change about half the time, a branch would mispredict.
        same = (
            (prev >= 0)
            & (scope[i] == scope[p])
            & (v1[i] == v1[p])
            & (v2[i] == v2[p])
            & (v3[i] == v3[p])
            & (v4[i] == v4[p])
            & (v5[i] == v5[p])
        )
        if same:
            run_len += 1
        else:
            run_first = i
            run_len = 1
        if run_len > cap:
            e = ts[i] - ts[run_first]
            if e > limit:
                positions[found] = i
                numbers[found] = run_len
                elapsed[found] = e
                found += 1
        prev = i
    return found


# -- outliers ----------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _median_of_five(a: float, b: float, c: float, d: float, e: float) -> float:
    """The min/max network of ``validate.median_of_five`` on scalars."""
    f = max(min(a, b), min(c, d))
    g = min(max(a, b), max(c, d))
    return max(min(e, f), min(max(e, f), g))


@njit(cache=True, nogil=True)
def outlier_screen(
    prices: np.ndarray,
    starts: np.ndarray,
    alive: np.ndarray,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol-day: alive rows, and whether the day is *calm*: provably free of outliers.

    Each alive price but a day's first is compared with the median of the (up to) five alive
    prices before it, as a ratio q. ``bounds`` is a 4 x 4 table, one row per level: (inner
    low, inner high, outer low, outer high). Level k certifies a day when more than half of
    its ratios lie in its inner interval (level 0: q exactly 1) and all of them in its outer
    one. See ``checks.outliers.outlier_findings`` for why that excludes an outlier.
    """
    n = prices.shape[0]
    n_groups = starts.shape[0]
    lo1, hi1, lo2, hi2, lo3, hi3 = (
        bounds[1, 0],
        bounds[1, 1],
        bounds[2, 0],
        bounds[2, 1],
        bounds[3, 0],
        bounds[3, 1],
    )
    sizes = np.zeros(n_groups, np.int64)
    calm = np.zeros(n_groups, np.bool_)
    inf = np.inf
    for g in range(n_groups):
        end = starts[g + 1] if g + 1 < n_groups else n
        p1 = p2 = p3 = p4 = p5 = 0.0  # the last five alive prices, most recent first
        k = 0
        in0 = in1 = in2 = in3 = 0  # ratios inside each level's inner interval
        q_min = inf
        q_max = -inf
        for i in range(starts[g], end):
            if not alive[i]:
                continue
            p = prices[i]
            if k >= 1:
                if k >= 5:
                    ref = _median_of_five(p1, p2, p3, p4, p5)
                else:  # padded as in validate._reference_prices
                    ref = _median_of_five(
                        p1,
                        p2 if k >= 2 else inf,
                        p3 if k >= 3 else -inf,
                        p4 if k >= 4 else inf,
                        -inf,
                    )
                q = p / ref
                q_min = q if not q >= q_min else q_min  # a NaN sticks: no certificate
                q_max = q if not q <= q_max else q_max
                in0 += q == 1.0
                in1 += (q > lo1) & (q < hi1)
                in2 += (q > lo2) & (q < hi2)
                in3 += (q > lo3) & (q < hi3)
            p5, p4, p3, p2, p1 = p4, p3, p2, p1, p
            k += 1
        sizes[g] = k
        if k <= 1:
            calm[g] = True  # no return: nothing to score
            continue
        half = (k - 1) // 2 + 1
        counts = (in0, in1, in2, in3)
        for level in range(4):
            if counts[level] >= half and q_min > bounds[level, 2] and q_max < bounds[level, 3]:
                calm[g] = True
                break
    return sizes, calm
