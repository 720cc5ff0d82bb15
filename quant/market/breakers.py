"""Circuit-breaker and short-sale parameters, as dated rules."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta


@dataclass(frozen=True)
class MarketWideStage:
    """BIST 100 falling ``drop_pct`` from its previous close halts equities for ``halt``."""

    drop_pct: float
    halt: timedelta


@dataclass(frozen=True)
class CircuitBreakerRule:
    effective_from: date
    single_stock_move_pct: float
    """A move this large from the reference price (last auction or base price) halts the stock."""
    single_stock_auction: timedelta
    """Order collection time of the call auction the halted stock moves to."""
    market_wide_stages: tuple[MarketWideStage, ...]
    market_wide_last_resume: time
    """After this local time a market-wide halt resumes through the closing session."""
    short_sale_uptick_index_drop_pct: float
    """The uptick rule applies to short sales once the BIST 100 is down this much."""
    source: str = ""


BIST_CIRCUIT_BREAKER_RULES: tuple[CircuitBreakerRule, ...] = (
    CircuitBreakerRule(
        effective_from=date(2000, 1, 1),
        single_stock_move_pct=0.05,
        single_stock_auction=timedelta(minutes=5),
        market_wide_stages=(
            MarketWideStage(0.05, timedelta(minutes=30)),
            MarketWideStage(0.07, timedelta(minutes=30)),
        ),
        market_wide_last_resume=time(17, 30),
        short_sale_uptick_index_drop_pct=0.02,
        source=(
            "BIST rules before 1 September 2025: two market-wide stages (-5%, -7%); the"
            " single-stock auction length before then is an assumption (not in BIST.md)"
        ),
    ),
    CircuitBreakerRule(
        effective_from=date(2025, 9, 1),
        single_stock_move_pct=0.05,
        single_stock_auction=timedelta(minutes=10),
        market_wide_stages=(MarketWideStage(0.06, timedelta(minutes=10)),),
        market_wide_last_resume=time(17, 30),
        short_sale_uptick_index_drop_pct=0.02,
        source="BIST rules since 1 September 2025: one market-wide stage at -6%, 10 minutes",
    ),
)


class CircuitBreakers:
    """Looks up the circuit-breaker parameters in force on a day."""

    def __init__(self, rules: Sequence[CircuitBreakerRule] = BIST_CIRCUIT_BREAKER_RULES) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.effective_from))
        self._starts = [r.effective_from for r in self.rules]

    def rule_on(self, day: date) -> CircuitBreakerRule:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise ValueError(f"no circuit-breaker rule is in force on {day}")
        return self.rules[i]

    def single_stock_triggered(self, price: float, reference: float, on: date) -> bool:
        """True when ``price`` has moved at least the trigger fraction away from ``reference``."""
        return abs(price / reference - 1.0) >= self.rule_on(on).single_stock_move_pct - 1e-12
