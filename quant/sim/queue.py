"""Queue-position models: where our resting order stands in its price level's queue.

Replaying recorded trades and quotes cannot show our own order in the book, so a fill simulator
must estimate how much quantity is ahead of it. These are the models of hftbacktest
(``RiskAdverseQueueModel`` and ``ProbQueueModel``, after Rigtorp's and the quant.stackexchange
estimates): a ``QueuePosition`` holds ``front``, the quantity ahead of us; trades at our price
eat into it; when it goes negative, the excess traded through to us and is our fill.

* ``RiskAverseQueue``: only trades move us forward. A shrinking level is assumed to be
  cancellations *behind* us, except that the quantity ahead can never exceed what the level
  shows (``front = min(front, level)``): that much is a logical necessity, not optimism.
* ``ProbabilisticQueue``: a level decrease not explained by trades is split between the front
  and the back of the queue. The share attributed to the *back* is
  ``p = f(back) / (f(back) + f(front))`` with ``f(x) = x**n`` (``PowerProbability``) or
  ``f(x) = log(1 + x)`` (``LogProbability``): the further back we are, the more likely a cancel
  is ahead of us, so the more we advance. As in hftbacktest, trade quantity seen since the last
  depth update is subtracted from the next decrease so a trade is not counted twice.

Unlike hftbacktest, a depth change never takes ``front`` below zero: a cancellation can move us
to the head of the queue but cannot execute us.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class QueuePosition:
    front: float
    """Quantity ahead of our order (``math.inf`` when the level has not been seen yet)."""
    cum_trade: float = 0.0
    """Traded quantity at our price since the last depth update (probabilistic model)."""


class QueueModel(Protocol):
    def new_order(self, level_qty: float) -> QueuePosition:
        """Our order joins the back of a level showing ``level_qty``."""
        ...

    def on_trade(self, pos: QueuePosition, qty: float) -> None:
        """``qty`` traded at our price against our side."""
        ...

    def on_depth(self, pos: QueuePosition, prev_qty: float, new_qty: float) -> None:
        """The level's displayed quantity changed from ``prev_qty`` to ``new_qty``."""
        ...


def level_seen(pos: QueuePosition, qty: float) -> None:
    """The level becomes visible (e.g. it became the best price) showing ``qty``.

    With no earlier observation to difference against, all that is known is that no more than
    ``qty`` can be ahead of us.
    """
    pos.front = min(pos.front, qty)
    pos.cum_trade = 0.0


def filled_qty(pos: QueuePosition, lot: int = 1) -> int:
    """Whole lots traded through to our order (what is beyond the queue ahead)."""
    if pos.front >= 0:
        return 0
    return math.floor(-pos.front / lot + 1e-9) * lot


def consume(pos: QueuePosition, qty: int) -> None:
    """Record that ``qty`` of the traded-through quantity filled our order."""
    pos.front = min(pos.front + qty, 0.0)


class RiskAverseQueue:
    """Advance only on trades at our price (hftbacktest's ``RiskAdverseQueueModel``)."""

    def new_order(self, level_qty: float) -> QueuePosition:
        return QueuePosition(front=float(level_qty))

    def on_trade(self, pos: QueuePosition, qty: float) -> None:
        pos.front -= qty

    def on_depth(self, pos: QueuePosition, prev_qty: float, new_qty: float) -> None:
        if pos.front > new_qty:
            pos.front = float(new_qty)


class PowerProbability:
    """``f(x) = x ** n``: larger ``n`` puts more of a decrease on the longer side of the queue."""

    def __init__(self, n: float = 3.0) -> None:
        if n <= 0:
            raise ValueError("the power must be positive")
        self.n = n

    def __call__(self, front: float, back: float) -> float:
        fb, ff = max(back, 0.0) ** self.n, max(front, 0.0) ** self.n
        return 1.0 if fb + ff == 0 else fb / (fb + ff)


class LogProbability:
    """``f(x) = log(1 + x)``: a gentle preference for the longer side."""

    def __call__(self, front: float, back: float) -> float:
        fb, ff = math.log1p(max(back, 0.0)), math.log1p(max(front, 0.0))
        return 1.0 if fb + ff == 0 else fb / (fb + ff)


class ProbabilisticQueue:
    """hftbacktest's ``ProbQueueModel``: split unexplained decreases front/back by probability."""

    def __init__(self, probability: PowerProbability | LogProbability | None = None) -> None:
        self.probability = probability if probability is not None else PowerProbability(3.0)

    def new_order(self, level_qty: float) -> QueuePosition:
        return QueuePosition(front=float(level_qty))

    def on_trade(self, pos: QueuePosition, qty: float) -> None:
        pos.front -= qty
        pos.cum_trade += qty

    def on_depth(self, pos: QueuePosition, prev_qty: float, new_qty: float) -> None:
        # Trades already moved us; only the rest of the decrease is cancellations.
        chg = prev_qty - new_qty - pos.cum_trade
        pos.cum_trade = 0.0
        if pos.front <= 0:
            return
        if chg < 0:
            pos.front = min(pos.front, new_qty)
            return
        front = pos.front
        back = prev_qty - front
        p = self.probability(front, back)
        est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
        pos.front = max(min(est, new_qty), 0.0)
