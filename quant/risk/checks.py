"""Pre-trade checks: pure functions from (order, view of the world, limits) to a decision.

Each check answers one question and returns ``ACCEPT`` or a ``RiskDecision`` carrying a
``RejectCode`` and a reason that names the offending value and the limit it broke, so a trader
reading the journal knows what to change without re-running anything. Checks never raise on bad
orders or missing data: an order that cannot be judged is rejected with a reason, because in the
trading path an exception is an outage and a silent pass is a loss.

The world is a ``RiskContext``: the backtest fills it from its portfolio and matching engine, the
live ``RiskGuard`` actor from the journal and the feed, so both judge orders by the same code.
Order-flow counts (throttle windows, order-to-trade ratios) live in ``ActivityCounters``, which the
``RiskEngine`` updates as orders are accepted and filled.

Conventions: positions are signed share counts; an order is valued at its limit price, or at the
last trade price when it has none (market and market-to-limit orders); limits compare inclusively
(a value exactly at its limit passes). Projections assume the order and every open order on the
same side fill in full, which is the worst case a limit must hold against. Orders that do not
increase the absolute position are never rejected by position or exposure limits, so a book that
drifted over a limit through prices can always be brought back under it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from quant.execution.orders import (
    Order,
    OrderState,
    OrderType,
    RejectCode,
    Side,
    fast_frozen_init,
)
from quant.market.bands import Band
from quant.market.instrument import Instrument
from quant.risk.limits import RiskLimits, ThrottleKey

_REL_TOL = 1e-9


def _exceeds(value: float, limit: float) -> bool:
    """``value > limit`` with float noise forgiven, so a value exactly at its limit passes."""
    return value > limit + _REL_TOL * max(1.0, abs(limit))


def _fmt(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".") if isinstance(x, float) else f"{x:,}"


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The answer to "may this order go out?": accepted, or a reject code and a reason."""

    accepted: bool
    code: RejectCode | None = None
    reason: str = ""

    @classmethod
    def reject(cls, code: RejectCode, reason: str) -> RiskDecision:
        return cls(accepted=False, code=code, reason=reason)


ACCEPT = RiskDecision(accepted=True)
"""The one accept decision (checks return this singleton, so ``is ACCEPT`` works)."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class OpenQuantity:
    """Shares still working in open orders of one symbol, per side."""

    buy: int = 0
    sell: int = 0


def open_quantities(states: Iterable[OrderState]) -> dict[str, OpenQuantity]:
    """Sum the leaves of open orders per symbol and side (for ``RiskContext.open_orders``)."""
    buys: dict[str, int] = {}
    sells: dict[str, int] = {}
    for st in states:
        if st.status.is_terminal:
            continue
        book = buys if st.order.side is Side.BUY else sells
        book[st.order.symbol] = book.get(st.order.symbol, 0) + st.leaves_qty
    return {
        s: OpenQuantity(buy=buys.get(s, 0), sell=sells.get(s, 0)) for s in sorted({*buys, *sells})
    }


@dataclass(slots=True)
class RiskContext:
    """What pre-trade checks need to know about the market and the book at one instant.

    The host (backtest or live ``RiskGuard``) keeps one per account and updates it as prices,
    fills and equity arrive. Missing entries switch the checks that need them off only where the
    exchange enforces the same rule anyway (no band: the venue still checks bands); where a
    limit cannot be evaluated without the data (a market order with no last price, exposure with
    no equity) the order is rejected with a reason instead.
    """

    day: date
    """The session day: picks the tick table in force and keys the daily counters."""
    instruments: Mapping[str, Instrument]
    """The tradable universe; an order for anything else is UNKNOWN_SYMBOL."""
    last_prices: Mapping[str, float] = field(default_factory=dict)
    bands: Mapping[str, Band] = field(default_factory=dict)
    """The price band in force now (daily, or closing in the closing session)."""
    positions: Mapping[str, int] = field(default_factory=dict)
    """Signed shares held per symbol."""
    open_orders: Mapping[str, OpenQuantity] = field(default_factory=dict)
    sectors: Mapping[str, str] = field(default_factory=dict)
    """Sector per symbol; overrides ``Instrument.sector`` where given."""
    equity: float | None = None
    """Account equity (TRY), the base of percentage exposure limits."""
    buying_power: float | None = None
    """TRY available for new buys, net of open buy orders and unsettled sales (T+2)."""
    adv: Mapping[str, float] = field(default_factory=dict)
    """Average daily volume (shares) per symbol, for the fat-finger size check."""
    halted_symbols: frozenset[str] = frozenset()
    """Symbols in a single-stock halt (circuit breaker, suspension)."""
    market_halted: bool = False
    """A market-wide halt is in force."""
    index_drop_pct: float = 0.0
    """Fall of the BIST 100 from its previous close, as a positive fraction (0.02 = down 2%)."""
    last_tick_direction: Mapping[str, int] = field(default_factory=dict)
    """+1 if the symbol's last price change was up, -1 if down (0 or missing: unknown)."""

    def position(self, symbol: str) -> int:
        return int(self.positions.get(symbol, 0))

    def open_quantity(self, symbol: str) -> OpenQuantity:
        return self.open_orders.get(symbol, _NO_OPEN)

    def sector_of(self, symbol: str) -> str:
        sector = self.sectors.get(symbol)
        if sector is None:
            inst = self.instruments.get(symbol)
            sector = inst.sector if inst is not None else ""
        return sector or UNCLASSIFIED


UNCLASSIFIED = "(unclassified)"
"""The sector of symbols with none: grouped together, so they stay under a sector limit."""

_NO_OPEN = OpenQuantity()


_KEYS: dict[tuple[str, str, ThrottleKey], str] = {}
_KEYS_MAX = 1 << 16


def _key_of(strategy_id: str, symbol: str, mode: ThrottleKey) -> str:
    """The counter key of a strategy and symbol (made once per pair and mode: every
    accepted order and every fill looks one up)."""
    if type(strategy_id) is not str or type(symbol) is not str or type(mode) is not ThrottleKey:
        return _make_key(strategy_id, symbol, mode)
    k = (strategy_id, symbol, mode)
    key = _KEYS.get(k)
    if key is None:
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        key = _KEYS[k] = _make_key(strategy_id, symbol, mode)
    return key


def _make_key(strategy_id: str, symbol: str, mode: ThrottleKey) -> str:
    if mode is ThrottleKey.STRATEGY_SYMBOL:
        return f"{strategy_id}|{symbol}"
    if mode is ThrottleKey.STRATEGY:
        return f"{strategy_id}|*"
    if mode is ThrottleKey.SYMBOL:
        return f"*|{symbol}"
    return "*|*"


@dataclass(slots=True)
class ActivityCounters:
    """Order-flow counts: accepted-order times per throttle key and a session day's orders and
    trades per (strategy, symbol) for the order-to-trade ratio.

    Time is the orders' own ``ts_ns`` (never the wall clock), so a backtest and a live replay of
    the same orders throttle identically.
    """

    order_times: dict[str, deque[int]] = field(default_factory=dict)
    day: date | None = None
    orders: dict[str, int] = field(default_factory=dict)
    """Order messages (new, cancel, replace) this session day per ``strategy|symbol``."""
    trades: dict[str, int] = field(default_factory=dict)
    """Executions this session day per ``strategy|symbol``."""

    def roll_day(self, day: date) -> None:
        """Start a new session day's order-to-trade counts when ``day`` changes."""
        if self.day != day:
            self.day = day
            self.orders.clear()
            self.trades.clear()

    def orders_in_window(self, key: str, ts_ns: int, window_ns: int) -> int:
        """Accepted orders under ``key`` stamped in ``(ts_ns - window_ns, ts_ns]``."""
        times = self.order_times.get(key)
        if not times:
            return 0
        start = ts_ns - window_ns
        return sum(1 for t in times if start < t <= ts_ns)

    def record_order(self, key: str, ts_ns: int, window_ns: int) -> None:
        """Remember an accepted order's time and drop times that can no longer count."""
        times = self.order_times.get(key)
        if times is None:
            times = self.order_times[key] = deque()
        times.append(int(ts_ns))
        horizon = max(times) - window_ns
        while times and times[0] <= horizon:
            times.popleft()

    def record_message(self, strategy_id: str, symbol: str, n: int = 1) -> None:
        k = _key_of(strategy_id, symbol, ThrottleKey.STRATEGY_SYMBOL)
        self.orders[k] = self.orders.get(k, 0) + n

    def record_trade(self, strategy_id: str, symbol: str, n: int = 1) -> None:
        k = _key_of(strategy_id, symbol, ThrottleKey.STRATEGY_SYMBOL)
        self.trades[k] = self.trades.get(k, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_times": {k: list(v) for k, v in self.order_times.items()},
            "day": self.day.isoformat() if self.day else None,
            "orders": dict(self.orders),
            "trades": dict(self.trades),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActivityCounters:
        return cls(
            order_times={k: deque(int(t) for t in v) for k, v in data["order_times"].items()},
            day=date.fromisoformat(data["day"]) if data["day"] else None,
            orders={k: int(v) for k, v in data["orders"].items()},
            trades={k: int(v) for k, v in data["trades"].items()},
        )


# --- helpers -----------------------------------------------------------------------------------


def order_price(order: Order, ctx: RiskContext) -> float | None:
    """The price an order is valued at: its limit, else the last trade price (None if unknown)."""
    if order.limit_price is not None:
        return float(order.limit_price)
    last = ctx.last_prices.get(order.symbol)
    return float(last) if last is not None and last > 0 else None


def projected_position(order: Order, ctx: RiskContext) -> int:
    """Position after this order and every open order on its side fill (the worst case)."""
    pos = ctx.position(order.symbol)
    open_q = ctx.open_quantity(order.symbol)
    if order.side is Side.BUY:
        return pos + open_q.buy + order.quantity
    return pos - open_q.sell - order.quantity


def is_reducing(order: Order, ctx: RiskContext) -> bool:
    """True if the order (with open orders on its side) only shrinks the absolute position.

    This is what a REDUCING trading state lets through: a sell against a long, a buy against a
    short, never crossing through flat.
    """
    pos = ctx.position(order.symbol)
    open_q = ctx.open_quantity(order.symbol)
    if order.side is Side.SELL:
        return pos > 0 and open_q.sell + order.quantity <= pos
    return pos < 0 and open_q.buy + order.quantity <= -pos


def _increases(order: Order, ctx: RiskContext) -> bool:
    return abs(projected_position(order, ctx)) > abs(ctx.position(order.symbol))


# --- the checks --------------------------------------------------------------------------------


def check_order_structure(order: Order) -> RiskDecision:
    """INVALID_ORDER: the order is meaningless (``Order.problems()``, plus the field types and a
    finite limit price, which the rest of the checks rely on)."""
    try:
        problems = list(order.problems())
        if not isinstance(order.side, Side):
            problems.append(f"side must be a Side, got {order.side!r}")
        if not isinstance(order.order_type, OrderType):
            problems.append(f"order type must be an OrderType, got {order.order_type!r}")
        if not isinstance(order.symbol, str):
            problems.append(f"symbol must be a string, got {order.symbol!r}")
        if not isinstance(order.ts_ns, int) or isinstance(order.ts_ns, bool):
            problems.append(f"ts_ns must be integer nanoseconds, got {order.ts_ns!r}")
        if order.limit_price is not None and not math.isfinite(order.limit_price):
            problems.append(f"limit price must be finite, got {order.limit_price}")
    except Exception as exc:  # a malformed object must not escape the trading path
        problems = [f"malformed order: {exc!r}"]
    if problems:
        return RiskDecision.reject(RejectCode.INVALID_ORDER, "; ".join(dict.fromkeys(problems)))
    return ACCEPT


def check_symbol(order: Order, ctx: RiskContext) -> RiskDecision:
    """UNKNOWN_SYMBOL: the symbol is not in the context's universe."""
    if order.symbol not in ctx.instruments:
        return RiskDecision.reject(
            RejectCode.UNKNOWN_SYMBOL, f"symbol {order.symbol!r} is not in the tradable universe"
        )
    return ACCEPT


def check_market_halts(order: Order, ctx: RiskContext) -> RiskDecision:
    """TRADING_HALTED: a market-wide halt, or a halt of this symbol, is in force."""
    if ctx.market_halted:
        return RiskDecision.reject(RejectCode.TRADING_HALTED, "a market-wide halt is in force")
    if order.symbol in ctx.halted_symbols:
        return RiskDecision.reject(
            RejectCode.TRADING_HALTED, f"trading in {order.symbol} is halted"
        )
    return ACCEPT


def check_tick(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """OFF_TICK: the limit price is not on the instrument's tick grid for the day."""
    if not limits.check_tick or order.limit_price is None:
        return ACCEPT
    inst = ctx.instruments.get(order.symbol)
    if inst is None:
        return ACCEPT
    table = inst.tick_table
    try:
        on_tick = table.is_on_tick(order.limit_price, ctx.day)
        tick = table.tick_size(order.limit_price, ctx.day)
    except ValueError as exc:  # no schedule in force on the day
        return RiskDecision.reject(RejectCode.OFF_TICK, f"cannot check the tick grid: {exc}")
    if not on_tick:
        return RiskDecision.reject(
            RejectCode.OFF_TICK,
            f"limit price {order.limit_price} is not on the {tick} TRY tick grid "
            f"of {order.symbol} on {ctx.day}",
        )
    return ACCEPT


def check_fat_finger(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """FAT_FINGER: a price or size so far from the market that it is a typo, not a decision."""
    last = ctx.last_prices.get(order.symbol)
    if limits.fat_finger_price_pct is not None and order.limit_price is not None and last:
        dev = abs(order.limit_price - last) / last
        if _exceeds(dev, limits.fat_finger_price_pct):
            return RiskDecision.reject(
                RejectCode.FAT_FINGER,
                f"limit price {order.limit_price} is {_pct(dev)} from the last price {last}, "
                f"beyond the fat-finger limit of {_pct(limits.fat_finger_price_pct)}",
            )
    adv = ctx.adv.get(order.symbol) if limits.fat_finger_adv_pct is not None else None
    if limits.fat_finger_adv_pct is not None and adv:
        cap = limits.fat_finger_adv_pct * adv
        if _exceeds(order.quantity, cap):
            return RiskDecision.reject(
                RejectCode.FAT_FINGER,
                f"order quantity {order.quantity:,} is {_pct(order.quantity / adv)} of the "
                f"average daily volume {_fmt(float(adv))}, beyond the fat-finger limit of "
                f"{_pct(limits.fat_finger_adv_pct)} ({_fmt(cap)} shares)",
            )
    if limits.fat_finger_notional is not None:
        price = order_price(order, ctx)
        if price is not None:
            notional = price * order.quantity
            if _exceeds(notional, limits.fat_finger_notional):
                return RiskDecision.reject(
                    RejectCode.FAT_FINGER,
                    f"order notional {_fmt(notional)} TRY exceeds the fat-finger limit of "
                    f"{_fmt(limits.fat_finger_notional)} TRY",
                )
    return ACCEPT


def check_band(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """OUTSIDE_BAND: the limit price is outside the price band in force (limits inclusive)."""
    if not limits.check_band or order.limit_price is None:
        return ACCEPT
    band = ctx.bands.get(order.symbol)
    if band is None or band.contains(order.limit_price):
        return ACCEPT
    return RiskDecision.reject(
        RejectCode.OUTSIDE_BAND,
        f"limit price {order.limit_price} is outside the band "
        f"[{band.lower}, {band.upper}] of {order.symbol}",
    )


def check_price_collar(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """PRICE_COLLAR: the limit price is too far from the last price, or a market order has no
    last price to be valued against.

    A limit order for a symbol with no last price yet (before its first trade) is not collared:
    there is nothing to collar it to, and the band and fat-finger checks still bound it.
    """
    last = ctx.last_prices.get(order.symbol)
    if order.limit_price is None:
        if last is None or not last > 0:
            return RiskDecision.reject(
                RejectCode.PRICE_COLLAR,
                f"no last price for {order.symbol}: a {order.order_type} order cannot be valued",
            )
        return ACCEPT
    if limits.price_collar_pct is None or last is None or not last > 0:
        return ACCEPT
    dev = abs(order.limit_price - last) / last
    if _exceeds(dev, limits.price_collar_pct):
        return RiskDecision.reject(
            RejectCode.PRICE_COLLAR,
            f"limit price {order.limit_price} is {_pct(dev)} from the last price {last}, "
            f"outside the collar of {_pct(limits.price_collar_pct)}",
        )
    return ACCEPT


def check_order_size(order: Order, limits: RiskLimits) -> RiskDecision:
    """ORDER_SIZE: too many shares in one order."""
    cap = limits.max_order_quantity
    if cap is not None and order.quantity > cap:
        return RiskDecision.reject(
            RejectCode.ORDER_SIZE,
            f"order quantity {order.quantity:,} exceeds the limit of {cap:,} shares",
        )
    return ACCEPT


def check_notional(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """NOTIONAL: too much TRY in one order."""
    cap = limits.max_order_notional
    price = order_price(order, ctx)
    if cap is None or price is None:
        return ACCEPT
    notional = price * order.quantity
    if _exceeds(notional, cap):
        return RiskDecision.reject(
            RejectCode.NOTIONAL,
            f"order notional {_fmt(notional)} TRY exceeds the limit of {_fmt(cap)} TRY",
        )
    return ACCEPT


def check_short_sale(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """SHORT_SALE: a sell beyond the free long position when shorting is off, or a short sale
    that breaks BIST's uptick rule (in force once the BIST 100 is down 2% or more).

    Under the uptick rule a short sale must be priced above the last price, or at it when the
    last price change was up (the zero-plus tick); a market order has no price to test and is
    refused.
    """
    if order.side is not Side.SELL:
        return ACCEPT
    pos = ctx.position(order.symbol)
    open_sell = ctx.open_quantity(order.symbol).sell
    free_long = max(pos - open_sell, 0)
    short_qty = order.quantity - free_long
    if short_qty <= 0:
        return ACCEPT
    if not limits.allow_short:
        return RiskDecision.reject(
            RejectCode.SHORT_SALE,
            f"sell of {order.quantity:,} exceeds the {free_long:,} shares free to sell "
            f"(position {pos:,}, open sells {open_sell:,}) and short sales are disabled",
        )
    threshold = limits.uptick_rule_index_drop_pct
    if ctx.index_drop_pct + _REL_TOL < threshold:
        return ACCEPT
    rule = (
        f"the uptick rule is in force (BIST 100 down {_pct(ctx.index_drop_pct)}, "
        f"threshold {_pct(threshold)})"
    )
    last = ctx.last_prices.get(order.symbol)
    if order.limit_price is None:
        return RiskDecision.reject(
            RejectCode.SHORT_SALE, f"{rule}: a short sale needs a limit price"
        )
    if last is None:
        return RiskDecision.reject(
            RejectCode.SHORT_SALE, f"{rule}: no last price for {order.symbol} to test against"
        )
    if order.limit_price > last + 1e-9:
        return ACCEPT
    if abs(order.limit_price - last) <= 1e-9 and ctx.last_tick_direction.get(order.symbol, 0) > 0:
        return ACCEPT
    return RiskDecision.reject(
        RejectCode.SHORT_SALE,
        f"{rule}: short sale at {order.limit_price} must be above the last price {last} "
        f"(or at it after an uptick)",
    )


def check_position(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """POSITION_LIMIT: the projected absolute position in the symbol, in shares or TRY."""
    if not _increases(order, ctx):
        return ACCEPT
    projected = projected_position(order, ctx)
    cap = limits.max_position_shares
    if cap is not None and abs(projected) > cap:
        return RiskDecision.reject(
            RejectCode.POSITION_LIMIT,
            f"projected position {projected:,} shares in {order.symbol} exceeds the limit "
            f"of {cap:,} shares",
        )
    cap_try = limits.max_position_notional
    price = order_price(order, ctx)
    if cap_try is not None and price is not None:
        value = abs(projected) * price
        if _exceeds(value, cap_try):
            return RiskDecision.reject(
                RejectCode.POSITION_LIMIT,
                f"projected position value {_fmt(value)} TRY in {order.symbol} exceeds the "
                f"limit of {_fmt(cap_try)} TRY",
            )
    return ACCEPT


def _book_values(
    order: Order, ctx: RiskContext, members: Callable[[str], bool]
) -> tuple[float, float] | str:
    """(gross, net) exposure in TRY over the selected symbols once the order fills.

    Every open order is assumed to fill too: net takes the open orders on the order's side (the
    direction the order pushes), gross takes whichever side of each symbol is larger. The order's
    symbol is valued at the order's price, others at their last price. Returns a reason string
    when a position cannot be valued.
    """
    price = order_price(order, ctx)
    gross = net = 0.0
    names = {s for s, q in ctx.positions.items() if q} | set(ctx.open_orders) | {order.symbol}
    for sym in sorted(names):
        if not members(sym):
            continue
        pos = ctx.position(sym)
        open_q = ctx.open_quantity(sym)
        long_case = pos + open_q.buy
        short_case = pos - open_q.sell
        if sym == order.symbol:
            px: float | None = price
            if order.side is Side.BUY:
                long_case += order.quantity
            else:
                short_case -= order.quantity
        else:
            px = ctx.last_prices.get(sym)
        if long_case == 0 and short_case == 0:
            continue
        if px is None or not px > 0:
            return f"no last price to value the position in {sym}"
        gross += max(abs(long_case), abs(short_case)) * px
        net += (long_case if order.side is Side.BUY else short_case) * px
    return gross, net


def check_exposure(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """EXPOSURE: symbol, sector and portfolio gross and net exposure as fractions of equity.

    Only an order that increases the absolute position in its symbol can breach these limits;
    a net limit is breached only on the side the order pushes towards.
    """
    scopes: list[tuple[str, Callable[[str], bool], float | None, float | None]] = []
    if limits.max_symbol_exposure_pct is not None:
        scopes.append(
            (
                f"symbol {order.symbol}",
                lambda s: s == order.symbol,
                limits.max_symbol_exposure_pct,
                None,
            )
        )
    sector = ctx.sector_of(order.symbol)
    if limits.max_sector_gross_pct is not None or limits.max_sector_net_pct is not None:
        scopes.append(
            (
                f"sector {sector}",
                lambda s: ctx.sector_of(s) == sector,
                limits.max_sector_gross_pct,
                limits.max_sector_net_pct,
            )
        )
    if limits.max_gross_exposure_pct is not None or limits.max_net_exposure_pct is not None:
        gross_cap, net_cap = limits.max_gross_exposure_pct, limits.max_net_exposure_pct
        scopes.append(("portfolio", lambda s: True, gross_cap, net_cap))
    if not scopes or not _increases(order, ctx):
        return ACCEPT
    equity = ctx.equity
    if equity is None or not equity > 0:
        return RiskDecision.reject(
            RejectCode.EXPOSURE, f"equity is {equity!r}: exposure limits need a positive equity"
        )
    sign = order.side.sign
    for name, members, gross_cap, net_cap in scopes:
        values = _book_values(order, ctx, members)
        if isinstance(values, str):
            return RiskDecision.reject(RejectCode.EXPOSURE, values)
        gross, net = values
        if gross_cap is not None and _exceeds(gross / equity, gross_cap):
            return RiskDecision.reject(
                RejectCode.EXPOSURE,
                f"projected {name} gross exposure {_fmt(gross)} TRY is {_pct(gross / equity)} "
                f"of equity {_fmt(float(equity))} TRY, above the limit of {_pct(gross_cap)}",
            )
        if net_cap is not None and sign * net > 0 and _exceeds(abs(net) / equity, net_cap):
            return RiskDecision.reject(
                RejectCode.EXPOSURE,
                f"projected {name} net exposure {_fmt(net)} TRY is {_pct(abs(net) / equity)} "
                f"of equity {_fmt(float(equity))} TRY, above the limit of {_pct(net_cap)}",
            )
    return ACCEPT


def check_buying_power(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """INSUFFICIENT_FUNDS: a buy worth more than the buying power the context reports."""
    if not limits.check_buying_power or order.side is not Side.BUY or ctx.buying_power is None:
        return ACCEPT
    price = order_price(order, ctx)
    if price is None:
        return ACCEPT
    cost = price * order.quantity
    if _exceeds(cost, ctx.buying_power):
        return RiskDecision.reject(
            RejectCode.INSUFFICIENT_FUNDS,
            f"buy worth {_fmt(cost)} TRY exceeds the buying power of "
            f"{_fmt(float(ctx.buying_power))} TRY",
        )
    return ACCEPT


def throttle_key(order: Order, limits: RiskLimits) -> str:
    return _key_of(order.strategy_id, order.symbol, limits.throttle_key)


def check_throttle(order: Order, limits: RiskLimits, counters: ActivityCounters) -> RiskDecision:
    """THROTTLE: more than ``max_orders_per_window`` accepted orders in the sliding window
    ending at the order's own time stamp."""
    cap = limits.max_orders_per_window
    if cap is None:
        return ACCEPT
    key = throttle_key(order, limits)
    n = counters.orders_in_window(key, order.ts_ns, limits.throttle_window_ns)
    if n + 1 > cap:
        return RiskDecision.reject(
            RejectCode.THROTTLE,
            f"{n + 1} orders for {key} within {limits.throttle_window_ns / 1e9:g} s "
            f"exceed the limit of {cap}",
        )
    return ACCEPT


def check_order_to_trade(
    order: Order, limits: RiskLimits, counters: ActivityCounters
) -> RiskDecision:
    """ORDER_TO_TRADE_RATIO: the session day's order messages per trade for the strategy and
    symbol would exceed the limit (the first trade's denominator counts as one)."""
    cap = limits.max_order_to_trade_ratio
    if cap is None:
        return ACCEPT
    key = _key_of(order.strategy_id, order.symbol, ThrottleKey.STRATEGY_SYMBOL)
    orders = counters.orders.get(key, 0) + 1
    trades = counters.trades.get(key, 0)
    ratio = orders / max(trades, 1)
    if _exceeds(ratio, cap):
        return RiskDecision.reject(
            RejectCode.ORDER_TO_TRADE_RATIO,
            f"{orders} orders to {trades} trades today for {key} is a ratio of {ratio:.4g}, "
            f"above the limit of {cap:g}",
        )
    return ACCEPT


Check = Callable[[Order, RiskContext, RiskLimits, ActivityCounters], RiskDecision]

PRE_TRADE_CHECKS: tuple[tuple[RejectCode, Check], ...] = (
    (RejectCode.OFF_TICK, lambda o, c, lim, n: check_tick(o, c, lim)),
    (RejectCode.FAT_FINGER, lambda o, c, lim, n: check_fat_finger(o, c, lim)),
    (RejectCode.OUTSIDE_BAND, lambda o, c, lim, n: check_band(o, c, lim)),
    (RejectCode.PRICE_COLLAR, lambda o, c, lim, n: check_price_collar(o, c, lim)),
    (RejectCode.ORDER_SIZE, lambda o, c, lim, n: check_order_size(o, lim)),
    (RejectCode.NOTIONAL, lambda o, c, lim, n: check_notional(o, c, lim)),
    (RejectCode.SHORT_SALE, lambda o, c, lim, n: check_short_sale(o, c, lim)),
    (RejectCode.POSITION_LIMIT, lambda o, c, lim, n: check_position(o, c, lim)),
    (RejectCode.EXPOSURE, lambda o, c, lim, n: check_exposure(o, c, lim)),
    (RejectCode.INSUFFICIENT_FUNDS, lambda o, c, lim, n: check_buying_power(o, c, lim)),
    (RejectCode.THROTTLE, lambda o, c, lim, n: check_throttle(o, lim, n)),
    (RejectCode.ORDER_TO_TRADE_RATIO, lambda o, c, lim, n: check_order_to_trade(o, lim, n)),
)
"""The price, size, book and flow checks in the order they run, after the order's structure,
its symbol, the trading state and market halts. Cheap, certain refusals come first: a price
must be a valid price before it is collared, an order must be sane before it is sized against
the book, and the flow counters run last so that they only meter orders that would otherwise go
out. The collar runs before anything that values an order, so a market order without a last
price never reaches the valuation checks."""


def run_pre_trade_checks(
    order: Order, ctx: RiskContext, limits: RiskLimits, counters: ActivityCounters
) -> RiskDecision:
    """The stateless checks in order: structure, symbol, market halts, then ``PRE_TRADE_CHECKS``.

    The trading-state checks (kill switch, REDUCING / HALTED) belong to ``RiskEngine``; this is
    the part a research tool can run on its own to see why an order would be refused.
    """
    for decision in (
        check_order_structure(order),
        check_symbol(order, ctx),
        check_market_halts(order, ctx),
    ):
        if not decision.accepted:
            return decision
    for code, check in PRE_TRADE_CHECKS:
        decision = guarded(code, check, order, ctx, limits, counters)
        if not decision.accepted:
            return decision
    return ACCEPT


def guarded(
    code: RejectCode,
    check: Check,
    order: Order,
    ctx: RiskContext,
    limits: RiskLimits,
    counters: ActivityCounters,
) -> RiskDecision:
    """Run one check and fail closed: a check that cannot evaluate (malformed context data, a
    bug) rejects with its own code and the error, instead of raising into the trading path."""
    try:
        return check(order, ctx, limits, counters)
    except Exception as exc:
        return RiskDecision.reject(code, f"could not evaluate the {code} check: {exc!r}")
