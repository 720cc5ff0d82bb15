"""Meta-labels (AFML 3.6): the side comes from a primary model, the size from a secondary one.

A primary model (a rule, a crossover, an ML classifier) decides long or short. Meta-labelling
asks a second question the primary model cannot: *was that trade worth taking?* Each event's
trade in the primary model's direction is run through the triple barrier with asymmetric
profit-take and stop-loss set by the side, and labelled 1 when it reached its profit-take
first, else 0. A secondary classifier trained on these labels outputs the probability that a
trade succeeds, which :func:`meta_bet_size` turns into a position size (AFML 10.1): the
primary model keeps high recall, the secondary one filters false positives and sizes bets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from quant.labels._series import PriceLike
from quant.labels.triple_barrier import PROFIT_TAKE, VerticalBarrier, triple_barrier


def meta_labels(
    prices: PriceLike,
    events: pd.Index | pd.Series | list,
    side: int | pd.Series,
    *,
    target: float | pd.Series,
    pt_sl: tuple[float, float] = (1.0, 1.0),
    vertical_barrier: VerticalBarrier = None,
    min_ret: float = 0.0,
    vertical_positive: bool = False,
) -> pd.DataFrame:
    """Label 1 when the primary model's trade hit its profit-take first, else 0.

    ``side``: the primary model's direction per event (+1 long, -1 short, 0 no trade: the
    event is dropped), a Series indexed by event time or a constant. Barriers as in
    :func:`triple_barrier`, applied in the side's direction (``pt_sl[0]`` is always the
    profit-take). By default a trade closed by the vertical barrier is a 0 even with a gain:
    it did not reach the target the sizing assumes. ``vertical_positive=True`` instead
    labels by the sign of the return as AFML snippet 3.7 (``bin = ret > 0``) does.

    Returns the :func:`triple_barrier` frame (``ret`` already in the side's terms) with
    ``label`` in {0, 1}.
    """
    if side is None:
        raise ValueError("meta-labels need the primary model's side")
    out = triple_barrier(
        prices,
        events,
        target=target,
        pt_sl=pt_sl,
        vertical_barrier=vertical_barrier,
        min_ret=min_ret,
        side=side,
    )
    won = (out["barrier"] == PROFIT_TAKE).to_numpy()
    if vertical_positive:
        won = won | (out["ret"].to_numpy() > 0)
    out["label"] = won.astype(np.int8)
    return out


def meta_bet_size(
    probability: np.ndarray | pd.Series | float,
    side: np.ndarray | pd.Series | float = 1.0,
) -> np.ndarray | pd.Series | float:
    """Signed position size in [-1, 1] from a meta-model's probability of success (AFML 10.1).

    With p the predicted probability that the trade succeeds (label 1), the test statistic
    of H0: p = 1/2 is z = (p - 1/2) / sqrt(p (1 - p)) and the size is ``2 Φ(z) - 1``. As in
    AFML snippet 10.1 for meta-labelling, a trade predicted to fail (p <= 1/2: predicted
    label 0) gets size 0, and the size is signed by the primary model's ``side``.
    """
    p = np.asarray(probability, dtype=np.float64)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p - 0.5) / np.sqrt(p * (1.0 - p))
    size = np.where(p > 0.5, 2.0 * ndtr(z) - 1.0, 0.0)
    size = size * np.asarray(side, dtype=np.float64)
    if isinstance(probability, pd.Series):
        return pd.Series(size, index=probability.index, name="size")
    if np.ndim(size) == 0:
        return float(size)
    return size
