"""Stage 5, OUTLIER: a price far from the prices before it *and* after it.

See ``ValidationConfig.outlier_z`` for the rule. The reference prices are medians of five
neighbours, so that one bad print does not make its honest neighbours look like outliers.
"""

from __future__ import annotations

import functools
import math
from datetime import date

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate import kernels
from quant.data.validate.checks.base import Finding
from quant.data.validate.groups import Columns, Groups, ranges
from quant.data.validate.rules import CODE, RuleCode, ValidationConfig


def outlier_findings(
    kind: DataKind,
    config: ValidationConfig,
    daily: bool,
    ex_dates: frozenset[tuple[str, date]],
    cols: Columns,
    groups: Groups,
    alive: np.ndarray,
    code: np.ndarray,
    unchecked: dict[RuleCode, np.ndarray],
) -> list[Finding]:
    """OUTLIER: see ``ValidationConfig.outlier_z``; returns are over alive rows.

    Intraday, a compiled screen first sets aside the *calm* symbol-days, which provably
    hold no outlier: with F = outlier_z * outlier_min_scale (the smallest bound a return
    can be held to), a day is calm when, for one c in (0, F/8, F/4, F/2), more than half
    of its returns lie within c of zero (so the median return does too) and all of them
    within F - c (so no return is more than F from the median). Tick data, where most prices
    equal the median of the five before them, is nearly always calm. Calm days need only
    their unchecked counts (every return but the day's first is finite); the rest (days
    with jumps, bad prints or wide spreads) are scored exactly.
    """
    if not config.enabled(RuleCode.OUTLIER):
        return []
    unchecked[RuleCode.OUTLIER] = np.zeros(groups.n, dtype=np.int64)
    if not alive.any():
        return []
    cfg = config
    if kind is DataKind.TRADES:
        prices = cols("price")
    elif kind is DataKind.QUOTES:
        prices = (cols("bid_price") + cols("ask_price")) / 2
    else:
        prices = cols("close")
    if daily:
        live = None if alive.all() else np.flatnonzero(alive)
    else:
        sizes, calm = kernels.outlier_screen(
            prices, groups.starts, alive, calm_bounds(cfg.outlier_z, cfg.outlier_min_scale)
        )
        nobs = np.maximum(sizes - 1, 0)
        enough = nobs >= cfg.outlier_min_obs
        # Too few returns: never scored, whatever they are (all rows unchecked).
        strays = ~calm & enough
        calm_unchecked = np.where(enough, sizes - nobs, sizes)
        unchecked[RuleCode.OUTLIER] += np.where(strays, 0, calm_unchecked)
        if not strays.any():
            return []
        stray = np.flatnonzero(strays)
        span = ranges(groups.starts[stray], groups.rows[stray])
        live = span[alive[span]]
        if live.size == 0:
            return []
        if live.size == alive.shape[0]:
            live = None

    def take(a: np.ndarray) -> np.ndarray:
        return a if live is None else a[live]

    p = take(prices)
    gid = take(groups.gid)
    scope = groups.symbol_id[gid] if daily else gid  # symbol-day, or symbol for daily bars
    m = p.shape[0]
    new_scope = np.empty(m, dtype=bool)
    new_scope[0] = True
    np.not_equal(scope[1:], scope[:-1], out=new_scope[1:])
    starts = np.flatnonzero(new_scope)
    scope_no = np.cumsum(new_scope) - 1
    pos = np.arange(m) - starts[scope_no]
    ref = reference_prices(p, starts, pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(p / ref)
    if daily and ex_dates:
        ex = np.array(
            [(s, d) in ex_dates for s, d in zip(groups.symbols, groups.days, strict=True)]
        )
        r[ex[gid]] = np.nan
    n_scopes = starts.shape[0]
    sizes = np.diff(np.r_[starts, m])
    finite = np.isfinite(r)
    nobs = np.add.reduceat(finite, starts) if m else np.zeros(0, dtype=np.int64)
    enough = nobs >= cfg.outlier_min_obs
    # Since |median| <= max|r|, a scope whose returns all satisfy |r| <= z * floor / 2 has
    # |r - median| <= z * floor <= z * scale for every row: no outlier is possible there,
    # and its exact median and MAD are not needed.
    with np.errstate(invalid="ignore"):
        biggest = np.fmax.reduceat(np.abs(r), starts) if m else np.zeros(0)
    suspect = np.flatnonzero(enough & (biggest > cfg.outlier_z * cfg.outlier_min_scale / 2))
    flagged = np.zeros(0, dtype=np.int64)
    med = np.zeros(n_scopes)
    scale = np.full(n_scopes, cfg.outlier_min_scale)
    if suspect.size:
        rows = ranges(starts[suspect], sizes[suspect])
        sub_scope, sub_r = scope_no[rows], r[rows]
        stats = (
            pl.DataFrame(
                [
                    pl.Series("s", sub_scope).set_sorted(),
                    pl.Series("r", sub_r, nan_to_null=True),
                ]
            )
            .group_by("s", maintain_order=True)
            .agg(
                pl.col("r").median().alias("m"),
                (pl.col("r") - pl.col("r").median()).abs().median().alias("mad"),
            )
        )
        at = stats["s"].to_numpy()
        med[at] = stats["m"].fill_null(0.0).to_numpy()
        scale[at] = np.maximum(
            1.4826 * stats["mad"].fill_null(0.0).to_numpy(), cfg.outlier_min_scale
        )
        bound = cfg.outlier_z * scale[sub_scope]
        with np.errstate(invalid="ignore"):
            far = np.abs(sub_r - med[sub_scope]) > bound
        candidates = rows[far]
        # Confirmation from the other side: a genuine jump is followed by prices near it;
        # a bad print stands alone. The last price of a scope has no later prices, so the
        # backward test alone decides there.
        ends = (starts + sizes)[scope_no[candidates]]
        forward = forward_reference(p, candidates, ends)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_next = np.log(forward / p[candidates])
            z_next = (r_next - med[scope_no[candidates]]) / scale[scope_no[candidates]]
        z_back = (r[candidates] - med[scope_no[candidates]]) / scale[scope_no[candidates]]
        # Far from both sides means above both or below both: the price comes back.
        alone = np.isnan(forward) | ((np.abs(z_next) > cfg.outlier_z) & (z_back * z_next < 0))
        flagged, z_next = candidates[alone], z_next[alone]
    # Unchecked: each scope's rows without a return, and all rows of too-small scopes.
    not_checked = np.where(enough, sizes - nobs, sizes)
    if daily:
        no_return = ~finite | ~enough[scope_no]
        unchecked[RuleCode.OUTLIER] = np.bincount(gid[no_return], minlength=groups.n)
    else:
        np.add.at(unchecked[RuleCode.OUTLIER], gid[starts], not_checked)
    if flagged.size == 0:
        return []
    positions = flagged if live is None else live[flagged]
    code[positions] = CODE[RuleCode.OUTLIER]
    alive[positions] = False
    s_of = scope_no[flagged]
    z = (r[flagged] - med[s_of]) / scale[s_of]
    detail = pl.DataFrame(
        {
            "p": p[flagged],
            "r": r[flagged].round(5),
            "ref": ref[flagged],
            "z": z.round(1),
            "next": np.round(z_next, 1),
        },
        nan_to_null=True,
    )
    confirmation = (
        pl.when(pl.col("next").is_null())
        .then(pl.lit("no later price"))
        .otherwise(pl.format("the next prices are as far the other way: robust z {}", "next"))
    )
    reasons = detail.select(
        pl.format(
            "price {}: log return {} from the median of the previous prices {} has robust z"
            " {}, beyond ±{}; {}",
            "p",
            "r",
            "ref",
            "z",
            pl.lit(cfg.outlier_z),
            confirmation,
        )
    ).to_series()
    codes = np.full(positions.size, CODE[RuleCode.OUTLIER], dtype=np.uint8)
    return [Finding(positions, codes, reasons)]


def median_of_five(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    e: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Element-wise median of five arrays with ten min/max operations (no sort, no loop).

    f = the larger of min(a, b) and min(c, d); g = the smaller of max(a, b) and max(c, d);
    the median of the five is the median of (e, f, g). Inputs are left untouched.
    """
    if out is None:
        out = np.empty(np.broadcast(a, b, c, d, e).shape)
    t1, t2 = np.empty_like(out), np.empty_like(out)
    np.minimum(a, b, out=t1)
    np.minimum(c, d, out=t2)
    np.maximum(t1, t2, out=out)  # f
    np.maximum(a, b, out=t1)
    np.maximum(c, d, out=t2)
    np.minimum(t1, t2, out=t1)  # g
    np.maximum(e, out, out=t2)  # max(e, f)
    np.minimum(t2, t1, out=t2)  # min(max(e, f), g)
    np.minimum(e, out, out=out)  # min(e, f)
    np.maximum(out, t2, out=out)
    return out


def forward_reference(p: np.ndarray, rows: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Median of up to five *next* prices of each row's scope (``ends``: scope end, exclusive).

    NaN where a row is the last of its scope. Padding as in ``reference_prices``.
    """
    pads = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf])
    window = np.empty((rows.size, 5))
    for k in range(1, 6):
        at = rows + k
        window[:, k - 1] = np.where(at < ends, p[np.minimum(at, p.shape[0] - 1)], pads[k - 1])
    ref = median_of_five(*window.T) if rows.size else np.zeros(0)
    ref[rows + 1 >= ends] = np.nan
    return ref


def reference_prices(p: np.ndarray, starts: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Median of up to five previous prices of the same scope (NaN for a scope's first row).

    Near the start of a scope, where fewer than five earlier prices exist, the missing ones
    are padded with alternating -inf/+inf so that the median is that of the prices that exist
    (the lower middle for an even count).
    """
    n = p.shape[0]
    ref = np.full(n, np.nan)
    if n > 5:
        median_of_five(p[4:-1], p[3:-2], p[2:-3], p[1:-4], p[:-5], out=ref[5:])
    # Rows with fewer than five earlier prices in their scope: a small padded median.
    head = np.flatnonzero((pos >= 1) & (pos <= 4))
    if head.size:
        pads = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf])
        window = np.empty((head.size, 5))
        for k in range(1, 6):
            window[:, k - 1] = np.where(pos[head] >= k, p[np.maximum(head - k, 0)], pads[k - 1])
        ref[head] = median_of_five(*window.T)
    ref[starts] = np.nan
    return ref


@functools.lru_cache(maxsize=16)
def calm_bounds(z: float, min_scale: float) -> np.ndarray:
    """Ratio bounds of the outlier screen's four levels, c = 0, F/8, F/4, F/2 (see
    ``outlier_findings`` and ``kernels.outlier_screen``): rows (inner low, inner high,
    outer low, outer high).

    Relative margins of 1e-9 on every bound, 1e-6 on the outer ones and 1e-12 on the median
    keep the certificate on the safe side of the rounding of the exact path's logarithms; an
    interval that cannot hold is (inf, -inf), which holds nothing.
    """
    f = z * min_scale

    def within(c: float) -> tuple[float, float]:
        if c <= 0:
            return math.inf, -math.inf
        return math.exp(-c) * (1 + 1e-9), math.exp(c) * (1 - 1e-9)

    rows = []
    for c in (0.0, f / 8, f / 4, f / 2):
        inner = (1.0, 1.0) if c == 0.0 else within(c)  # level 0 counts q == 1 exactly
        rows.append([*inner, *within(f * (1 - 1e-6) - c - 1e-12)])
    return np.array(rows)
