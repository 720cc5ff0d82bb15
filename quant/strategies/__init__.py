"""Reference strategies, by registry name (``smart-trader backtest --strategy NAME``)."""

from __future__ import annotations

from typing import Any

from quant.sim.strategy import Strategy
from quant.strategies.ma_crossover import MovingAverageCrossover
from quant.strategies.momentum import CrossSectionalMomentum

STRATEGIES: dict[str, type[Strategy]] = {
    MovingAverageCrossover.name: MovingAverageCrossover,
    CrossSectionalMomentum.name: CrossSectionalMomentum,
}
"""Registry name -> strategy class."""


def make_strategy(name: str, **parameters: Any) -> Strategy:
    """A strategy by registry name; ``ValueError`` naming the known ones if it is unknown."""
    cls = STRATEGIES.get(name)
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; known strategies: {known}")
    return cls(**parameters)


__all__ = ["STRATEGIES", "CrossSectionalMomentum", "MovingAverageCrossover", "make_strategy"]
