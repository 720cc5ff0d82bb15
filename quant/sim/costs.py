"""Trading costs as small pluggable models, after LEAN's ``IFeeModel`` and ``ISlippageModel``.

A fill costs twice: the price moves against the trader (slippage: spread, market impact) and the
venue, the broker and the tax office take fees. The two are separate interfaces so a backtest can
swap one without touching the other, and the live path charges the very same fee model the
backtest charged (one definition, two runtimes).

Fees
----
``FeeModel.fee(symbol, side, quantity, price, liquidity)`` is the fee in TRY for executing
``quantity`` shares at ``price``. Money leaves the account in kuruş, so every fee is rounded to
0.01 TRY by this rule (:func:`round_kurus`):

* the traded value is computed exactly in decimal (``Decimal(repr(price)) * quantity``), so the
  binary noise of ``45.2 * 1000`` never decides a rounding;
* each fee line is rounded **half up** to the kuruş on its own (0.005 -> 0.01), the way an
  invoice rounds each line, and never with banker's rounding;
* a tax on a fee (BSMV) is computed on the **rounded** fee, as on an invoice, and rounded again.

BIST costs (BIST.md): the exchange fee is about 0.003% of the traded value per side, plus 5%
BSMV (Banka ve Sigorta Muameleleri Vergisi) on the fee; the broker commission is negotiable,
about 1-4 bp for algorithmic flow. BIST.md states BSMV on "fees"; BSMV is a tax on the fee and
commission income of banks and brokers, and Turkish broker schedules quote commission as
"komisyon + BSMV", so :func:`bist_default_fees` applies 5% BSMV to the broker commission too.

Slippage
--------
``SlippageModel.price(side, quantity, reference_price, market)`` is the execution price before
rounding to the tick grid; :func:`round_adverse` (or :meth:`CostModel.fill_price`) puts it on the
grid against the trader (up for buys, down for sells) so rounding never flatters a backtest.

Impact models:

* :class:`SquareRootImpact`: ``ΔP / P = Y · σ · sqrt(Q / ADV)``, the square-root law
  (Tóth, Lempérière, Deremble, de Lataillade, Kockelkorn and Bouchaud 2011, "Anomalous price
  impact and the critical nature of liquidity in financial markets", Phys. Rev. X 1, 021006;
  Bouchaud, Bonart, Donier and Gould 2018, *Trades, Quotes and Prices*, ch. 12), with ``Y`` of
  order one, ``σ`` the daily volatility and ``ADV`` the average daily volume.
* :class:`AlmgrenChrissImpact`: linear temporary impact ``h(v) = ε·sgn(n) + η·v`` and permanent
  impact ``g(v) = γ·v`` of Almgren and Chriss (2000), "Optimal execution of portfolio
  transactions", J. Risk 3(2), 5-39, with the expected cost and variance of a trajectory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol, runtime_checkable

from quant.execution.orders import Side
from quant.market.calendar import ISTANBUL
from quant.market.ticks import RoundingMode, TickSizeTable

KURUS = Decimal("0.01")
"""The smallest unit of TRY that moves between accounts."""

TAKER = "taker"
MAKER = "maker"


def _dec(x: float | int | Decimal) -> Decimal:
    """A float as the decimal its shortest repr denotes (45.2 -> Decimal('45.2'), exactly)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    return Decimal(repr(float(x)))


def round_kurus(amount: float | Decimal) -> float:
    """``amount`` TRY rounded half up to the kuruş (0.01), as a float.

    Half up on the decimal value: 0.015 -> 0.02 (``round(0.015, 2)`` gives 0.01 because the
    binary 0.015 is slightly below it).
    """
    return float(_dec(amount).quantize(KURUS, rounding=ROUND_HALF_UP))


def _kurus(amount: Decimal) -> Decimal:
    return amount.quantize(KURUS, rounding=ROUND_HALF_UP)


def traded_value(quantity: int, price: float) -> Decimal:
    """``quantity × price`` exactly, in decimal TRY."""
    return _dec(price) * int(quantity)


# --------------------------------------------------------------------------------------- fees


@runtime_checkable
class FeeModel(Protocol):
    """Fees in TRY for one order's execution, rounded to the kuruş.

    ``fee`` is pure: it may read state (a tiered commission reads the month-to-date traded value)
    but never changes it. ``on_fill`` is told about every fill so a stateful model can update
    (stateless models ignore it); keeping the two apart lets a risk check or a scheduler ask
    "what would this cost" without booking anything. ``ts_ns`` (UTC ns) lets a dated model pick
    the state in force at that time (a new month resets a volume tier).
    """

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float: ...

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None: ...


class ZeroFees:
    """No fees at all: for comparing against libraries that run without costs."""

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float:
        return 0.0

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None:
        return None

    def __repr__(self) -> str:
        return "ZeroFees()"


@dataclass(frozen=True, slots=True)
class CommissionTier:
    """From ``monthly_value`` TRY traded this month (inclusive), commission is ``bps``."""

    monthly_value: float
    bps: float


@dataclass(slots=True)
class TierState:
    """The state a tiered commission depends on: the month and the value traded in it so far.

    Explicit (and serialisable with :meth:`to_dict`) so a backtest is deterministic and the live
    router can journal it and restore it after a restart.
    """

    month: str | None = None
    """Istanbul calendar month, ``YYYY-MM``; None before the first fill."""
    traded_value: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "traded_value": self.traded_value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TierState:
        month = data.get("month")
        return cls(
            month=None if month is None else str(month),
            traded_value=float(data["traded_value"]),
        )


def istanbul_month(ts_ns: int) -> str:
    """The Istanbul calendar month (``YYYY-MM``) of a UTC-ns time stamp."""
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=ISTANBUL).strftime("%Y-%m")


class CommissionModel:
    """Broker commission: ``bps`` of the traded value, at least ``minimum`` TRY per order.

    ``tiers`` lower the rate as the month's traded value grows: the tier with the highest
    ``monthly_value`` not above the value traded *before* this order (this Istanbul calendar
    month) sets the rate for the whole order, and ``bps`` applies below the first tier. The
    month-to-date value lives in :attr:`state` (a :class:`TierState`), advanced by ``on_fill``
    and reset when a fill falls in a new month; ``fee(..., ts_ns=...)`` in a later month than the
    state's prices at the first tier (month-to-date value 0). ``maker_bps`` (default: ``bps``)
    is the rate for passive fills where a broker distinguishes them (BIST brokers usually do
    not; with tiers the tier rate applies to both). ``bsmv_rate`` adds BSMV on the rounded
    commission.

    ``fee`` is for one order: an order filled in several parts should be charged with
    :func:`incremental_fee` so the minimum and the rounding apply once per order.
    """

    def __init__(
        self,
        bps: float,
        minimum: float = 0.0,
        tiers: Sequence[CommissionTier] = (),
        bsmv_rate: float = 0.0,
        maker_bps: float | None = None,
        state: TierState | None = None,
    ) -> None:
        if bps < 0 or minimum < 0 or bsmv_rate < 0 or (maker_bps is not None and maker_bps < 0):
            raise ValueError("commission rates, minimum and BSMV must be non-negative")
        ordered = tuple(sorted(tiers, key=lambda t: t.monthly_value))
        if len({t.monthly_value for t in ordered}) != len(ordered):
            raise ValueError("commission tiers need distinct monthly_value thresholds")
        if any(t.bps < 0 or t.monthly_value < 0 for t in ordered):
            raise ValueError("commission tiers need non-negative thresholds and rates")
        self.bps = float(bps)
        self.minimum = float(minimum)
        self.tiers = ordered
        self.bsmv_rate = float(bsmv_rate)
        self.maker_bps = None if maker_bps is None else float(maker_bps)
        self.state = state if state is not None else TierState()

    def __repr__(self) -> str:
        return (
            f"CommissionModel(bps={self.bps}, minimum={self.minimum}, tiers={self.tiers}, "
            f"bsmv_rate={self.bsmv_rate}, maker_bps={self.maker_bps})"
        )

    def month_to_date(self, ts_ns: int | None = None) -> float:
        """Value traded this month before now (0 when ``ts_ns`` is in a later month)."""
        month = self.state.month
        if ts_ns is not None and month is not None and istanbul_month(ts_ns) != month:
            return 0.0
        return self.state.traded_value

    def rate_bps(self, liquidity: str = TAKER, ts_ns: int | None = None) -> float:
        """The rate in basis points that the next order would pay."""
        if self.tiers:
            mtd = self.month_to_date(ts_ns)
            rate = self.bps
            for tier in self.tiers:
                if mtd >= tier.monthly_value:
                    rate = tier.bps
                else:
                    break
            return rate
        if liquidity == MAKER and self.maker_bps is not None:
            return self.maker_bps
        return self.bps

    def commission(
        self, quantity: int, price: float, liquidity: str = TAKER, ts_ns: int | None = None
    ) -> Decimal:
        """The commission before BSMV, rounded to the kuruş, with the minimum applied."""
        if quantity <= 0:
            return Decimal(0)
        raw = traded_value(quantity, price) * _dec(self.rate_bps(liquidity, ts_ns)) / 10_000
        return max(_kurus(raw), _kurus(_dec(self.minimum)))

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float:
        base = self.commission(quantity, price, liquidity, ts_ns)
        tax = _kurus(base * _dec(self.bsmv_rate))
        return float(base + tax)

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None:
        """Add the fill's value to the month-to-date total (a new month starts from zero)."""
        if not self.tiers:
            return
        month = istanbul_month(ts_ns)
        if month != self.state.month:
            self.state.month = month
            self.state.traded_value = 0.0
        self.state.traded_value += float(traded_value(quantity, price))


class ExchangeFeeModel:
    """Borsa Istanbul's trading fee: ``rate`` of the traded value per side, plus BSMV on it.

    Defaults from BIST.md: 0.003% (``rate=0.00003``) and 5% BSMV. ``maker_rate`` (default:
    ``rate``) is there for venues that price passive liquidity differently; BIST equities do not.
    """

    def __init__(
        self, rate: float = 0.00003, bsmv_rate: float = 0.05, maker_rate: float | None = None
    ) -> None:
        if rate < 0 or bsmv_rate < 0 or (maker_rate is not None and maker_rate < 0):
            raise ValueError("exchange fee and BSMV rates must be non-negative")
        self.rate = float(rate)
        self.bsmv_rate = float(bsmv_rate)
        self.maker_rate = None if maker_rate is None else float(maker_rate)

    def __repr__(self) -> str:
        return f"ExchangeFeeModel(rate={self.rate}, bsmv_rate={self.bsmv_rate})"

    def exchange_fee(self, quantity: int, price: float, liquidity: str = TAKER) -> Decimal:
        """The exchange fee before BSMV, rounded to the kuruş."""
        if quantity <= 0:
            return Decimal(0)
        rate = self.maker_rate if liquidity == MAKER and self.maker_rate is not None else self.rate
        return _kurus(traded_value(quantity, price) * _dec(rate))

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float:
        base = self.exchange_fee(quantity, price, liquidity)
        return float(base + _kurus(base * _dec(self.bsmv_rate)))

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None:
        return None


class CompositeFeeModel:
    """The sum of several fee models (each already rounded to the kuruş)."""

    def __init__(self, models: Sequence[FeeModel]) -> None:
        self.models = tuple(models)

    def __repr__(self) -> str:
        return f"CompositeFeeModel({list(self.models)!r})"

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float:
        total = sum(
            (_dec(m.fee(symbol, side, quantity, price, liquidity, ts_ns)) for m in self.models),
            Decimal(0),
        )
        return float(_kurus(total))

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None:
        for m in self.models:
            m.on_fill(symbol, side, quantity, price, ts_ns)


BSMV_RATE = 0.05
"""Banka ve Sigorta Muameleleri Vergisi on fees and commissions (BIST.md)."""


def bist_default_fees(
    commission_bps: float = 2.0, commission_minimum: float = 0.0, bsmv_rate: float = BSMV_RATE
) -> CompositeFeeModel:
    """BIST.md defaults: broker commission (2 bp, within the 1-4 bp quoted for algorithmic flow)
    plus 5% BSMV on it, and the 0.003% exchange fee plus 5% BSMV on it."""
    return CompositeFeeModel(
        [
            CommissionModel(commission_bps, minimum=commission_minimum, bsmv_rate=bsmv_rate),
            ExchangeFeeModel(rate=0.00003, bsmv_rate=bsmv_rate),
        ]
    )


def incremental_fee(
    model: FeeModel,
    symbol: str,
    side: Side,
    previous_quantity: int,
    previous_value: float,
    last_quantity: int,
    last_price: float,
    liquidity: str = TAKER,
    ts_ns: int | None = None,
) -> float:
    """The fee to charge on a partial fill so the order in total pays the fee of one order.

    ``fee(whole order so far) - fee(order before this fill)``, each priced at the order's
    average price: the per-order minimum is paid once and the kuruş rounding happens once on the
    cumulative value, as a broker's order-level confirmation does. The average price is passed
    as a float, so the cumulative value can differ from the exact one by float noise; that only
    matters for a value exactly on a half kuruş of fee.
    """
    total_qty = previous_quantity + last_quantity
    total_value = _dec(previous_value) + traded_value(last_quantity, last_price)
    after = _dec(
        model.fee(symbol, side, total_qty, float(total_value / total_qty), liquidity, ts_ns)
    )
    before = (
        _dec(
            model.fee(
                symbol,
                side,
                previous_quantity,
                float(_dec(previous_value) / previous_quantity),
                liquidity,
                ts_ns,
            )
        )
        if previous_quantity > 0
        else Decimal(0)
    )
    return float(_kurus(after - before))


# ----------------------------------------------------------------------------------- slippage


@dataclass(frozen=True, slots=True)
class MarketConditions:
    """What a slippage model may know about the market at the moment of a fill.

    Unknown values are NaN (the default); each model says what it does without them.
    """

    mid: float = math.nan
    spread: float = math.nan
    """Best ask minus best bid, TRY."""
    volatility: float = math.nan
    """Daily volatility of returns, as a fraction (0.02 = 2% a day)."""
    adv: float = math.nan
    """Average daily volume, shares."""
    bar_volume: float = math.nan
    """Volume of the current bar, shares."""


@runtime_checkable
class SlippageModel(Protocol):
    """The execution price of ``quantity`` shares against ``reference_price``, before ticks."""

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float: ...


def _finite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


class NoSlippage:
    """Fill at the reference price."""

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        return float(reference_price)

    def __repr__(self) -> str:
        return "NoSlippage()"


@dataclass(frozen=True, slots=True)
class SpreadSlippage:
    """Cross half the spread: a buy pays ``reference + spread/2``, a sell gets ``reference -
    spread/2``. The reference should be the mid; with a last or close price as reference this is
    the usual bar-level approximation. When the spread is unknown (NaN or negative) the model
    charges ``fallback_bps`` of the reference as the half spread, rather than nothing."""

    fallback_bps: float = 0.0

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        spread = market.spread
        if math.isfinite(spread) and spread >= 0:
            half = spread / 2
        else:
            half = reference_price * self.fallback_bps / 10_000
        return reference_price + int(side) * half


@dataclass(frozen=True, slots=True)
class FixedBpsSlippage:
    """A fixed ``bps`` against the trader: ``reference × (1 ± bps/10,000)``."""

    bps: float

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        return reference_price * (1 + int(side) * self.bps / 10_000)


@dataclass(frozen=True, slots=True)
class SquareRootImpact:
    """Square-root market impact: ``ΔP / P = coefficient · σ · sqrt(Q / ADV)``.

    ``σ`` is ``market.volatility`` (daily, fraction), ``Q`` the order quantity and ``ADV`` the
    average daily volume in shares (Tóth et al. 2011; Bouchaud et al. 2018, ch. 12: the
    coefficient ``Y`` is of order one; 0.5 is the default here, a middle value of the
    0.1-1 range used in practice). The relative impact is capped at ``max_impact`` (default 10%,
    the BIST daily band: no fill can move further). With no usable ``σ`` or ``ADV`` the
    model cannot estimate the impact and charges the cap, so a backtest of an illiquid name with
    no history is penalised, not flattered.
    """

    coefficient: float = 0.5
    max_impact: float = 0.10

    def impact(self, quantity: int, market: MarketConditions) -> float:
        """The relative impact (fraction of price) of ``quantity`` shares."""
        if quantity <= 0:
            return 0.0
        if not (_finite_positive(market.adv) and math.isfinite(market.volatility)):
            return self.max_impact
        rel = self.coefficient * abs(market.volatility) * math.sqrt(quantity / market.adv)
        return min(rel, self.max_impact)

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        return reference_price * (1 + int(side) * self.impact(quantity, market))


@dataclass(frozen=True, slots=True)
class AlmgrenChrissImpact:
    """Linear impact of Almgren and Chriss (2000), in TRY per share.

    Temporary impact of trading ``n`` shares in an interval of length ``tau`` (rate
    ``v = n / tau``): ``h(v) = epsilon + eta · v``. It affects only that trade's price. Permanent
    impact: ``g(v) = gamma · v`` per unit time, i.e. the unaffected price moves by
    ``gamma · n`` after the trade and stays there (the caller applies
    :meth:`permanent_impact` to the reference of later trades). ``eta`` is in TRY per
    (share / time unit), ``gamma`` in TRY per share, ``tau`` in the time unit ``eta`` uses
    (e.g. days, or bars).
    """

    eta: float
    gamma: float
    epsilon: float = 0.0
    tau: float = 1.0

    def temporary_impact(self, quantity: float, tau: float | None = None) -> float:
        """``h(n/τ) = ε·sgn(n) + η·n/τ`` for ``n`` shares traded in one interval (TRY/share)."""
        t = self.tau if tau is None else tau
        if quantity == 0:
            return 0.0
        return math.copysign(self.epsilon, quantity) + self.eta * quantity / t

    def permanent_impact(self, quantity: float) -> float:
        """``τ·g(n/τ) = γ·n``: how far the unaffected price moves after ``n`` shares (TRY)."""
        return self.gamma * quantity

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        return reference_price + int(side) * self.temporary_impact(abs(quantity))

    def expected_cost(self, holdings: Sequence[float], tau: float | None = None) -> float:
        """Expected implementation shortfall ``E[x]`` of a trajectory (TRY).

        ``holdings`` are ``x_0 = X, x_1, ..., x_N`` (shares still to trade at each of the
        ``N + 1`` times ``t_k = k·τ``, usually ending at 0), ``n_k = x_{k-1} - x_k``. Almgren and
        Chriss (2000), section 2.2::

            E[x] = Σ_k τ·x_k·g(n_k/τ) + Σ_k n_k·h(n_k/τ)
                 = Σ_k γ·x_k·n_k + ε·Σ_k |n_k| + (η/τ)·Σ_k n_k²

        Computed as the sums over the trajectory (not the closed forms) so any trajectory can be
        priced; the tests check it against the paper's closed forms for the linear and the
        optimal trajectories. For a purchase, pass the shares still to buy: the cost is the same
        by symmetry.
        """
        t = self.tau if tau is None else tau
        x = [float(v) for v in holdings]
        if len(x) < 2:
            raise ValueError("a trajectory needs at least the start and one more holding")
        cost = 0.0
        for k in range(1, len(x)):
            n = x[k - 1] - x[k]
            cost += self.gamma * x[k] * n + self.epsilon * abs(n) + self.eta * n * n / t
        return cost

    def cost_variance(
        self, holdings: Sequence[float], sigma: float, tau: float | None = None
    ) -> float:
        """Variance of the shortfall, ``V[x] = σ² · Σ_k τ · x_k²`` (Almgren and Chriss 2000).

        ``sigma`` is the absolute volatility of the price, TRY per sqrt(time unit).
        """
        t = self.tau if tau is None else tau
        x = [float(v) for v in holdings]
        return sigma * sigma * t * sum(v * v for v in x[1:])


class CompositeSlippage:
    """Several slippage effects added: ``reference + Σ (model price - reference)``.

    Typical: half the spread plus square-root impact.
    """

    def __init__(self, models: Sequence[SlippageModel]) -> None:
        self.models = tuple(models)

    def __repr__(self) -> str:
        return f"CompositeSlippage({list(self.models)!r})"

    def price(
        self, side: Side, quantity: int, reference_price: float, market: MarketConditions
    ) -> float:
        shift = 0.0
        for m in self.models:
            shift += m.price(side, quantity, reference_price, market) - reference_price
        return reference_price + shift


def round_adverse(price: float, side: Side, tick_table: TickSizeTable, day: date) -> float:
    """``price`` on the tick grid, rounded against the trader: up for buys, down for sells."""
    mode = RoundingMode.UP if side is Side.BUY else RoundingMode.DOWN
    return tick_table.round_to_tick(price, day, mode)


# ---------------------------------------------------------------------------------- the bundle


@dataclass
class CostModel:
    """Fees and slippage for a backtest or a paper venue.

    The engine asks :meth:`fill_price` for the execution price of a fill (slippage, then the
    tick grid, adversely), charges :meth:`fee` (or :func:`incremental_fee` for partial fills of
    one order) and reports the fill with :meth:`on_fill` so stateful fee models advance.
    """

    fees: FeeModel = field(default_factory=ZeroFees)
    slippage: SlippageModel = field(default_factory=NoSlippage)

    def fill_price(
        self,
        side: Side,
        quantity: int,
        reference_price: float,
        market: MarketConditions,
        tick_table: TickSizeTable | None = None,
        day: date | None = None,
    ) -> float:
        """Execution price after slippage; on the grid of ``tick_table`` (adverse) if given."""
        raw = self.slippage.price(side, quantity, reference_price, market)
        if tick_table is None:
            return raw
        if day is None:
            raise ValueError("rounding to the tick grid needs the trading day")
        return round_adverse(raw, side, tick_table, day)

    def fee(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        liquidity: str = TAKER,
        ts_ns: int | None = None,
    ) -> float:
        return self.fees.fee(symbol, side, quantity, price, liquidity, ts_ns)

    def on_fill(self, symbol: str, side: Side, quantity: int, price: float, ts_ns: int) -> None:
        self.fees.on_fill(symbol, side, quantity, price, ts_ns)


def bist_default_costs(
    commission_bps: float = 2.0, impact_coefficient: float = 0.5, spread_fallback_bps: float = 5.0
) -> CostModel:
    """BIST fees (:func:`bist_default_fees`) with half the spread plus square-root impact.

    ``spread_fallback_bps`` is the half spread charged when the quotes are unknown (bar-level
    backtests without L1 data).
    """
    return CostModel(
        fees=bist_default_fees(commission_bps),
        slippage=CompositeSlippage(
            [SpreadSlippage(spread_fallback_bps), SquareRootImpact(impact_coefficient)]
        ),
    )


def no_costs() -> CostModel:
    """Zero fees and no slippage, for comparisons with libraries run without costs."""
    return CostModel(ZeroFees(), NoSlippage())
