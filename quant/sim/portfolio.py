"""Portfolio accounting in TRY: positions, cash, T+2 settlement, PnL, marks, corporate actions.

One ``Portfolio`` object serves the backtest and the live actors (they journal it with
:meth:`Portfolio.to_dict` and rebuild it with :meth:`Portfolio.from_dict`), so the numbers a
backtest reports are the numbers live trading books.

Conventions
-----------
* **Cash** is the trade-date balance: a fill changes ``cash`` at once by its net amount
  (``-(value + fees)`` for a buy, ``value - fees`` for a sale; value and fees rounded half up to
  the kuruş). The same amount is recorded as *pending* until it settles.
* **Settlement** (Takasbank T+2): the net amount of a fill on trading day ``T`` settles at the
  start (00:00 Istanbul) of the ``settlement_days``-th XIST session after ``T``, counted on the
  ``calendar``: holidays push it out (a sale on Tuesday 2024-04-09 settles on Tuesday
  2024-04-16, as 10-12 April 2024 are holidays). Without a calendar, weekdays are counted.
  Fees settle with the trade (brokers debit them with the settlement amount).
  ``settled_cash(ts)`` = cash minus unsettled sale proceeds plus unsettled purchase payments.
* **Buying power** is cash-based (no margin; margin and short-sale limits are risk checks):
  ``settled_cash - pending purchases``, plus the pending sale proceeds when
  ``use_unsettled_proceeds`` (default True: BIST brokers net a purchase against unsettled sale
  proceeds due by the same or an earlier settlement date, the ordinary "T+2 netting"). With
  proceeds netted, buying power equals trade-date cash.
* **Short positions** are negative quantities; the sale proceeds are credited to cash. A BIST
  short sale needs borrowed shares (securities lending through Takasbank) and is subject to the
  uptick rule when the BIST 100 is down 2% or more: both are pre-trade risk checks, not
  accounting, and this class does not enforce them.
* **Realised PnL** uses the average-cost method: buying adds to the average cost; reducing a
  position realises ``(price - average cost) × closed quantity × sign``; a fill that crosses zero
  closes the old position and opens the rest at the fill price. It is gross of fees (fees are
  totalled separately), so ``equity - initial cash = realised + unrealised - fees + dividends``.
  FIFO lots are kept too (``realised_pnl_fifo``) for reporting: same cash, different split
  between realised and unrealised.
* **Marks** set the last price of held symbols and append one equity-curve record (a handful of
  floats in lists, never a DataFrame per mark); ``close=True`` tags marks at the session close.
* **Corporate actions** (``quant/data/schema.py`` CORPORATE_ACTIONS rows) are applied at the
  start of the ex-date, before that day's trading:

  - split / bonus ``ratio``: quantity × ratio (floored to whole shares; the fraction is paid as
    cash in lieu at the theoretical ex price and realised), average cost and last price ÷ ratio;
  - cash dividend ``amount`` per share, paid on the ex-date (on BIST the payment date is
    normally the ex-date): a long receives ``quantity × amount × (1 - dividend_withholding)``
    (``dividend_withholding``: BIST.md gives 10-15% as sources disagree; the default 0.15 is
    the rate Turkey has applied to dividends paid to resident individuals since December 2024,
    when it was raised from 10%: pass 0.10 for earlier periods, 0 for exempt investors such as
    funds); a short pays the lender the gross amount; the last price drops by ``amount``;
  - rights issue ``ratio`` new shares per share at ``price``: **not exercised automatically**;
    a long gets an entitlement (``pending_rights``) that :meth:`Portfolio.exercise_rights` turns
    into shares paid at the subscription price, and that lapses worthless otherwise; a short
    compensates the lender for the theoretical value of the rights, ``ratio × (TERP - price)``
    per share; the last price moves to TERP = ``(P + ratio × price) / (1 + ratio)``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

from quant.data.schema import CorporateActionKind
from quant.execution.orders import Side, fast_frozen_init
from quant.market.calendar import ISTANBUL, TradingCalendar

_NS = 1_000_000_000
_KURUS = Decimal("0.01")


def _money(x: float | Decimal) -> float:
    """TRY rounded half up to the kuruş (on the decimal value of the float's repr)."""
    d = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    return float(d.quantize(_KURUS, rounding=ROUND_HALF_UP))


def _value(quantity: int | float, price: float) -> Decimal:
    return Decimal(repr(float(price))) * Decimal(repr(quantity))


_UNITS = 10_000
"""Price units per TRY (1/10,000: every BIST tick, and every price with 4 decimals)."""
_EXACT_BELOW = 1e11
"""Below this, a float with at most 4 decimals is exactly its shortest repr's decimal value (it
has at most 15 significant digits), so integer arithmetic on its units is the decimal one."""


def _fill_amount(sign: int, qty: int, price: float, fees: float) -> float:
    """The cash a fill moves, ``_money(-(value + fees))`` for a buy or ``_money(value - fees)``
    for a sale (half up to the kuruş on the decimal values), by integer arithmetic when the
    price and the fees are exact in 1/10,000 and 1/100 units, else with ``Decimal``."""
    units = round(price * _UNITS)
    fee_kurus = round(fees * 100)
    if (
        price < _EXACT_BELOW
        and units / _UNITS == price
        and fees < _EXACT_BELOW
        and fee_kurus / 100 == fees
    ):
        gross = units * qty
        amount = -(gross + fee_kurus * 100) if sign > 0 else gross - fee_kurus * 100
        kurus = (amount + 50) // 100 if amount >= 0 else -((-amount + 50) // 100)
        return kurus / 100
    gross_d = _value(qty, price)
    fees_d = Decimal(repr(fees))
    return _money(-gross_d - fees_d if sign > 0 else gross_d - fees_d)


def _business_days_after(day: date, n: int) -> date:
    """``numpy.busday_offset(day, n, roll="forward")`` on Monday-Friday weeks."""
    wd = day.weekday()
    if wd >= 5:  # roll a weekend day forward to Monday
        day = day + timedelta(days=7 - wd)
        wd = 0
    weeks, rest = divmod(n, 5)
    days = weeks * 7 + rest
    if wd + rest >= 5:
        days += 2
    return day + timedelta(days=days)


def istanbul_date(ts_ns: int) -> date:
    """The Istanbul calendar date of a UTC-ns time stamp."""
    return datetime.fromtimestamp(ts_ns // _NS, tz=ISTANBUL).date()


def istanbul_midnight_ns(day: date) -> int:
    """00:00 Istanbul on ``day`` as UTC ns."""
    return int(datetime.combine(day, time(0), ISTANBUL).timestamp()) * _NS


_ONE_DAY = timedelta(days=1)
_INF = math.inf
_MIDNIGHTS: dict[date, int] = {}
_MIDNIGHTS_MAX = 1 << 17


def _midnight_ns(day: date) -> int:
    """``istanbul_midnight_ns`` through a process-wide cache (a time-zone conversion costs
    microseconds, and a backtest on daily bars asks for a new day at nearly every fill)."""
    out = _MIDNIGHTS.get(day)
    if out is None:
        if len(_MIDNIGHTS) >= _MIDNIGHTS_MAX:
            _MIDNIGHTS.clear()
        out = _MIDNIGHTS[day] = istanbul_midnight_ns(day)
    return out


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS_PER_DAY = 86_400 * _NS


def _istanbul_day(ts_ns: int) -> date:
    """``istanbul_date(ts_ns)`` from cached midnights: Istanbul has always been ahead of UTC
    by less than a day, so its date is the UTC date or the day after (after the next
    Istanbul midnight, 21:00 or 22:00 UTC)."""
    utc = date.fromordinal(_EPOCH_ORDINAL + ts_ns // _NS_PER_DAY)
    after = utc + _ONE_DAY
    return after if ts_ns >= _midnight_ns(after) else utc


_SESSIONS: dict[str, list[date]] = {}
_SPANS: dict[tuple[str | None, int, date], tuple[int, int, int]] = {}
"""(calendar name, settlement days, Istanbul trading day) -> (the day's first ns, its end ns,
its trades' settlement ns), process-wide: a run on daily bars trades on a new day at nearly
every fill, and sweeps repeat the same days run after run. The calendars are the exchange's,
named (``TradingCalendar`` loads its sessions by name), as ``_calendar_sessions`` assumes."""
_SPANS_MAX = 1 << 17


def _calendar_sessions(calendar: TradingCalendar) -> list[date]:
    """Every session of ``calendar`` in order, listed once per exchange calendar: asking the
    calendar for each settlement date costs about 0.2 ms (pandas), once per trading day."""
    out = _SESSIONS.get(calendar.calendar_name)
    if out is None:
        out = _SESSIONS[calendar.calendar_name] = calendar.sessions(
            calendar.first_day, calendar.last_day
        )
    return out


@dataclass(slots=True)
class Position:
    """One symbol's holding. ``quantity`` is signed (negative = short), in whole shares."""

    symbol: str
    quantity: int = 0
    avg_cost: float = 0.0
    """Average price paid (long) or received (short) for the open quantity, TRY per share."""
    realised_pnl: float = 0.0
    """Average-cost realised PnL, gross of fees."""
    realised_pnl_fifo: float = 0.0
    fees: float = 0.0
    dividends: float = 0.0
    """Net dividend cash received (negative when a short paid dividends)."""
    last_price: float = math.nan
    lots: deque[list[float]] = field(default_factory=deque)
    """FIFO lots ``[signed quantity, price]``, oldest first; all on the side of ``quantity``."""

    @property
    def price(self) -> float:
        """The mark: the last price, or the average cost before any price is known."""
        return self.avg_cost if math.isnan(self.last_price) else self.last_price

    @property
    def market_value(self) -> float:
        return self.quantity * self.price if self.quantity else 0.0

    @property
    def unrealised_pnl(self) -> float:
        return (self.price - self.avg_cost) * self.quantity if self.quantity else 0.0

    @property
    def unrealised_pnl_fifo(self) -> float:
        return sum(q * (self.price - p) for q, p in self.lots)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "avg_cost": self.avg_cost,
            "realised_pnl": self.realised_pnl,
            "realised_pnl_fifo": self.realised_pnl_fifo,
            "fees": self.fees,
            "dividends": self.dividends,
            "last_price": None if math.isnan(self.last_price) else self.last_price,
            "lots": [[int(q), p] for q, p in self.lots],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Position:
        last = d.get("last_price")
        return cls(
            symbol=str(d["symbol"]),
            quantity=int(d["quantity"]),
            avg_cost=float(d["avg_cost"]),
            realised_pnl=float(d["realised_pnl"]),
            realised_pnl_fifo=float(d["realised_pnl_fifo"]),
            fees=float(d["fees"]),
            dividends=float(d["dividends"]),
            last_price=math.nan if last is None else float(last),
            lots=deque([int(q), float(p)] for q, p in d["lots"]),
        )


@dataclass(frozen=True, slots=True)
class RightsEntitlement:
    """Unexercised rights: ``shares`` new shares may be bought at ``price`` each."""

    symbol: str
    ex_date: date
    shares: int
    price: float


@dataclass(frozen=True, slots=True)
class CorporateActionEffect:
    """What applying one corporate action did to the portfolio."""

    symbol: str
    kind: str
    quantity_before: int
    quantity_after: int
    cash: float
    """Cash credited (negative: debited): dividends, cash in lieu, short compensation."""
    withholding: float = 0.0
    rights_shares: int = 0


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class FillResult:
    """What one fill did: the cash moved, the PnL realised, when the cash settles."""

    symbol: str
    quantity_after: int
    cash: float
    realised_pnl: float
    settles_ns: int


class Portfolio:
    """Positions and TRY cash of one account; see the module docstring for every convention."""

    def __init__(
        self,
        initial_cash: float,
        settlement_days: int = 2,
        calendar: TradingCalendar | None = None,
        use_unsettled_proceeds: bool = True,
        dividend_withholding: float = 0.15,
    ) -> None:
        if not math.isfinite(initial_cash):
            raise ValueError("initial cash must be a finite number")
        if settlement_days < 0:
            raise ValueError("settlement_days must be >= 0")
        if not 0.0 <= dividend_withholding < 1.0:
            raise ValueError("dividend_withholding is a fraction in [0, 1)")
        self.initial_cash = _money(initial_cash)
        self.cash = self.initial_cash
        self.settlement_days = int(settlement_days)
        self.calendar = calendar
        self.use_unsettled_proceeds = bool(use_unsettled_proceeds)
        self.dividend_withholding = float(dividend_withholding)
        self.positions: dict[str, Position] = {}
        self.pending_rights: dict[str, RightsEntitlement] = {}
        self.withholding_tax = 0.0
        self.cash_in_lieu = 0.0
        self.last_ts_ns: int | None = None
        # settle instant (UTC ns) -> [receivable, payable], both >= 0; keys kept sorted
        self._pending: dict[int, list[float]] = {}
        self._pending_keys: list[int] = []
        self._settle_span = (0, 0, 0)
        """(first ns, end ns, settlement ns) of the Istanbul day of the last trade."""
        self._curve: list[tuple[int, float, float, float, bool]] = []
        """The equity curve's rows ``(ts, cash, market value, gross exposure, close)``: one
        append per mark (a daily run marks once a bar)."""

    # ------------------------------------------------------------------------ positions

    def position(self, symbol: str) -> Position:
        """The position in ``symbol`` (an empty one, not stored, if never traded)."""
        return self.positions.get(symbol) or Position(symbol)

    def quantity(self, symbol: str) -> int:
        p = self.positions.get(symbol)
        return p.quantity if p is not None else 0

    def open_positions(self) -> dict[str, int]:
        return {s: p.quantity for s, p in self.positions.items() if p.quantity}

    def _get(self, symbol: str) -> Position:
        p = self.positions.get(symbol)
        if p is None:
            p = self.positions[symbol] = Position(symbol)
        return p

    # ---------------------------------------------------------------------------- fills

    def apply_fill(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        fees: float = 0.0,
        ts_ns: int = 0,
    ) -> FillResult:
        """Book one execution: position, average cost, realised PnL, cash and its settlement.

        Raises ``ValueError`` on a non-positive quantity, a non-positive price or negative fees:
        a fill comes from a venue, so a malformed one is a bug to stop on, not input to reject.
        """
        qty = quantity
        if type(qty) is not int or qty <= 0:
            qty = int(quantity)
            if qty <= 0 or qty != quantity:
                raise ValueError(f"fill quantity must be a positive whole number, got {quantity!r}")
        # (for a float, ``0 < x < inf`` is ``isfinite(x) and x > 0``: NaN fails comparisons)
        if (type(price) is not float or not 0 < price < _INF) and not (
            math.isfinite(price) and price > 0
        ):
            raise ValueError(f"fill price must be positive, got {price!r}")
        if (type(fees) is not float or not 0 <= fees < _INF) and not (
            math.isfinite(fees) and fees >= 0
        ):
            raise ValueError(f"fees must be non-negative, got {fees!r}")
        if type(side) is not Side:
            side = Side(side)
        sign = side.sign
        pos = self._get(symbol)
        realised = self._trade(pos, sign * qty, float(price))
        fees = _money(fees) if fees else float(fees)
        pos.fees = round(pos.fees + fees, 2)
        amount = _fill_amount(sign, qty, price, fees)
        self.cash = round(self.cash + amount, 2)
        pos.last_price = float(price)
        settles = self._book_settlement(ts_ns, amount)
        self.last_ts_ns = ts_ns if self.last_ts_ns is None else max(self.last_ts_ns, ts_ns)
        return FillResult(symbol, pos.quantity, amount, realised, settles)

    @staticmethod
    def _trade(pos: Position, signed_qty: int, price: float) -> float:
        """Apply ``signed_qty`` at ``price`` to ``pos``; returns the average-cost PnL realised."""
        q = pos.quantity
        realised = 0.0
        if q == 0 or (q > 0) == (signed_qty > 0):
            new_q = q + signed_qty
            pos.avg_cost = (abs(q) * pos.avg_cost + abs(signed_qty) * price) / abs(new_q)
            pos.quantity = new_q
            pos.lots.append([signed_qty, price])
            return 0.0
        closed = min(abs(q), abs(signed_qty))
        direction = 1 if q > 0 else -1
        realised = (price - pos.avg_cost) * closed * direction
        pos.realised_pnl += realised
        # FIFO: consume the oldest lots
        left = closed
        fifo = 0.0
        while left and pos.lots:
            lot = pos.lots[0]
            take = min(left, abs(int(lot[0])))
            fifo += (price - lot[1]) * take * direction
            lot[0] -= take * direction
            left -= take
            if lot[0] == 0:
                pos.lots.popleft()
        pos.realised_pnl_fifo += fifo
        new_q = q + signed_qty
        pos.quantity = new_q
        if new_q == 0:
            pos.avg_cost = 0.0
            pos.lots.clear()
        elif (new_q > 0) != (q > 0):
            # crossed zero: the rest opens a new position at the fill price
            pos.avg_cost = price
            pos.lots.clear()
            pos.lots.append([new_q, price])
        return realised

    # ----------------------------------------------------------------------- settlement

    def settlement_ns(self, ts_ns: int) -> int:
        """When a trade at ``ts_ns`` settles: 00:00 Istanbul on the T+n session (UTC ns)."""
        n = self.settlement_days
        if n == 0:
            return ts_ns
        lo, hi, out = self._settle_span
        if lo <= ts_ns < hi:
            return out
        day = _istanbul_day(ts_ns)
        cal = self.calendar
        key = (cal.calendar_name if cal is not None else None, n, day)
        span = _SPANS.get(key)
        if span is None:
            if len(_SPANS) >= _SPANS_MAX:
                _SPANS.clear()
            settles = _midnight_ns(self._settlement_day(day))
            span = _SPANS[key] = (_midnight_ns(day), _midnight_ns(day + _ONE_DAY), settles)
        self._settle_span = span
        return span[2]

    def _settlement_day(self, day: date) -> date:
        """The ``settlement_days``-th session after trading day ``day`` (the calendar's, from
        its session list when ``day`` is inside it; else weekdays)."""
        cal = self.calendar
        if cal is None:
            return _business_days_after(day, self.settlement_days)
        sessions = _calendar_sessions(cal)
        i = bisect.bisect_left(sessions, day)  # ``day``, or the next session after it
        if (
            sessions
            and sessions[0] <= day <= sessions[-1]
            and i + self.settlement_days < len(sessions)
        ):
            return sessions[i + self.settlement_days]
        # the edges of the calendar: its own answer (or its error)
        t = day if cal.is_session(day) else cal.next_session(day)
        for _ in range(self.settlement_days):
            t = cal.next_session(t)
        return t

    def settlement_date(self, ts_ns: int) -> date:
        return istanbul_date(self.settlement_ns(ts_ns))

    def _book_settlement(self, ts_ns: int, amount: float) -> int:
        settles = self.settlement_ns(ts_ns)
        if self.settlement_days == 0 or amount == 0:
            return settles
        slot = self._pending.get(settles)
        if slot is None:
            slot = self._pending[settles] = [0.0, 0.0]
            bisect.insort(self._pending_keys, settles)
        if amount > 0:
            slot[0] = round(slot[0] + amount, 2)
        else:
            slot[1] = round(slot[1] - amount, 2)
        return settles

    def _unsettled(self, ts_ns: int) -> tuple[float, float]:
        receivable = payable = 0.0
        for k in reversed(self._pending_keys):
            if k <= ts_ns:
                break
            r, p = self._pending[k]
            receivable += r
            payable += p
        return round(receivable, 2), round(payable, 2)

    def pending_settlements(self) -> list[tuple[date, float, float]]:
        """``(settlement date, receivable, payable)`` not yet removed by :meth:`settle`."""
        return [(istanbul_date(k), *self._pending[k]) for k in self._pending_keys]

    def settled_cash(self, ts_ns: int) -> float:
        """Cash that has settled by ``ts_ns``: excludes unsettled sale proceeds and still holds
        the money of unsettled purchases."""
        receivable, payable = self._unsettled(ts_ns)
        return round(self.cash - receivable + payable, 2)

    def pending_purchases(self, ts_ns: int) -> float:
        return self._unsettled(ts_ns)[1]

    def pending_proceeds(self, ts_ns: int) -> float:
        return self._unsettled(ts_ns)[0]

    def buying_power(self, ts_ns: int) -> float:
        """Cash available for new purchases at ``ts_ns`` (see the module docstring)."""
        receivable, payable = self._unsettled(ts_ns)
        settled = self.cash - receivable + payable
        bp = settled - payable + (receivable if self.use_unsettled_proceeds else 0.0)
        return round(bp, 2)

    def settle(self, ts_ns: int) -> float:
        """Retire the settlements due by ``ts_ns``; returns their net amount (already in cash)."""
        net = 0.0
        while self._pending_keys and self._pending_keys[0] <= ts_ns:
            k = self._pending_keys.pop(0)
            r, p = self._pending.pop(k)
            net += r - p
        return round(net, 2)

    # ---------------------------------------------------------------------------- marks

    def mark(self, prices: Mapping[str, float], ts_ns: int, close: bool = False) -> float:
        """Mark held symbols at ``prices`` and record an equity-curve point; returns equity.

        Symbols in ``prices`` with no position are ignored; held symbols missing from ``prices``
        keep their last price. Cost is O(positions), whatever the size of ``prices``.
        """
        keys = self._pending_keys
        if keys and keys[0] <= ts_ns:
            self.settle(ts_ns)
        mv = gross = 0.0
        if self.positions:
            get = prices.get
            for sym, pos in self.positions.items():
                q = pos.quantity
                if not q:
                    continue
                p = get(sym)
                if p is not None and p == p:  # not NaN
                    pos.last_price = float(p)
                last = pos.last_price
                v = q * (pos.avg_cost if last != last else last)  # Position.price
                mv += v
                gross += abs(v)
        cash = self.cash
        self._curve.append((ts_ns, cash, mv, gross, close))
        before = self.last_ts_ns
        if before is None or ts_ns > before:
            self.last_ts_ns = ts_ns
        return cash + mv

    def mark_close(self, closes: Mapping[str, float], ts_ns: int) -> float:
        """Mark at the session's closing prices (a record tagged ``close``)."""
        return self.mark(closes, ts_ns, close=True)

    @property
    def market_value(self) -> float:
        """Net market value of the positions at their last prices (shorts negative)."""
        return sum(p.market_value for p in self.positions.values())

    @property
    def gross_exposure(self) -> float:
        return sum(abs(p.market_value) for p in self.positions.values())

    @property
    def net_exposure(self) -> float:
        return self.market_value

    @property
    def equity(self) -> float:
        return self.cash + self.market_value

    @property
    def realised_pnl(self) -> float:
        return sum(p.realised_pnl for p in self.positions.values())

    @property
    def realised_pnl_fifo(self) -> float:
        return sum(p.realised_pnl_fifo for p in self.positions.values())

    @property
    def unrealised_pnl(self) -> float:
        return sum(p.unrealised_pnl for p in self.positions.values())

    @property
    def unrealised_pnl_fifo(self) -> float:
        return sum(p.unrealised_pnl_fifo for p in self.positions.values())

    @property
    def total_fees(self) -> float:
        return round(sum(p.fees for p in self.positions.values()), 2)

    @property
    def total_dividends(self) -> float:
        return round(sum(p.dividends for p in self.positions.values()), 2)

    def _curve_columns(self) -> tuple[list[Any], ...]:
        """The curve's rows as five columns (ts, cash, market value, gross, close)."""
        if not self._curve:
            return [], [], [], [], []
        return tuple(list(col) for col in zip(*self._curve, strict=True))

    def equity_curve(self, close_only: bool = False) -> pl.DataFrame:
        """One row per mark: ts (UTC), cash, market_value, equity, gross and net exposure."""
        ts, cash, mv, gross, close = self._curve_columns()
        frame = pl.DataFrame(
            {
                "ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
                "cash": pl.Series(cash, dtype=pl.Float64),
                "market_value": pl.Series(mv, dtype=pl.Float64),
                "gross_exposure": pl.Series(gross, dtype=pl.Float64),
                "close": pl.Series(close, dtype=pl.Boolean),
            }
        )
        if close_only:
            frame = frame.filter(pl.col("close"))
        return frame.select(
            "ts",
            "cash",
            "market_value",
            (pl.col("cash") + pl.col("market_value")).alias("equity"),
            "gross_exposure",
            pl.col("market_value").alias("net_exposure"),
        )

    # ---------------------------------------------------------------- corporate actions

    def apply_corporate_action(
        self, action: Mapping[str, Any], ts_ns: int | None = None
    ) -> CorporateActionEffect:
        """Apply one CORPORATE_ACTIONS row (symbol, ex_date, kind, ratio, price, amount).

        Call it at the start of the ex-date, before that day's fills and marks. Raises
        ``ValueError`` on an unknown kind or a missing/non-positive field the kind needs.
        """
        symbol = str(action["symbol"])
        kind = CorporateActionKind(str(action["kind"]))
        ex_date = action.get("ex_date")
        pos = self.positions.get(symbol)
        q = pos.quantity if pos is not None else 0
        if kind in (CorporateActionKind.SPLIT, CorporateActionKind.BONUS):
            ratio = _positive(action, "ratio")
            if pos is None or q == 0:
                if pos is not None and not math.isnan(pos.last_price):
                    pos.last_price /= ratio
                return CorporateActionEffect(symbol, kind, 0, 0, 0.0)
            cash = self._split(pos, ratio)
            return CorporateActionEffect(symbol, kind, q, pos.quantity, cash)
        if kind is CorporateActionKind.DIVIDEND:
            amount = _positive(action, "amount")
            if pos is None:
                return CorporateActionEffect(symbol, kind, 0, 0, 0.0)
            gross = _value(q, amount)
            if q > 0:
                tax = _money(gross * Decimal(repr(self.dividend_withholding)))
                cash = _money(gross - Decimal(repr(tax)))
            else:
                tax = 0.0
                cash = _money(gross)  # negative: the short pays the gross dividend
            self.cash = round(self.cash + cash, 2)
            self.withholding_tax = round(self.withholding_tax + tax, 2)
            pos.dividends = round(pos.dividends + cash, 2)
            if not math.isnan(pos.last_price):
                pos.last_price = max(pos.last_price - amount, 0.0)
            return CorporateActionEffect(symbol, kind, q, q, cash, withholding=tax)
        # rights issue
        ratio = _positive(action, "ratio")
        sub_price = _positive(action, "price")
        if pos is None:
            return CorporateActionEffect(symbol, kind, 0, 0, 0.0)
        cum = pos.price if q else pos.last_price
        terp = (cum + ratio * sub_price) / (1 + ratio) if not math.isnan(cum) else math.nan
        cash = 0.0
        shares = 0
        if q > 0:
            shares = math.floor(q * ratio + 1e-9)
            if shares:
                day = ex_date if isinstance(ex_date, date) else _today(ts_ns, self.last_ts_ns)
                self.pending_rights[symbol] = RightsEntitlement(symbol, day, shares, sub_price)
        elif q < 0 and not math.isnan(terp):
            value_per_share = ratio * max(terp - sub_price, 0.0)
            cash = _money(_value(q, value_per_share))  # q < 0: a debit
            self.cash = round(self.cash + cash, 2)
            pos.dividends = round(pos.dividends + cash, 2)
        if not math.isnan(terp):
            pos.last_price = terp
        return CorporateActionEffect(symbol, kind, q, q, cash, rights_shares=shares)

    def apply_corporate_actions(
        self, actions: pl.DataFrame | Iterable[Mapping[str, Any]], ts_ns: int | None = None
    ) -> list[CorporateActionEffect]:
        """Apply several actions (e.g. the rows of one ex-date) in order."""
        rows = actions.iter_rows(named=True) if isinstance(actions, pl.DataFrame) else actions
        return [self.apply_corporate_action(r, ts_ns) for r in rows]

    def _split(self, pos: Position, ratio: float) -> float:
        q = pos.quantity
        sign = 1 if q > 0 else -1
        exact = abs(q) * ratio
        whole = math.floor(exact + 1e-9)
        fraction = exact - whole if exact - whole > 1e-9 else 0.0
        pos.avg_cost /= ratio
        if not math.isnan(pos.last_price):
            pos.last_price /= ratio
        # FIFO lots: scale and floor, then hand out the shares lost to flooring by the largest
        # remainder so the lots still add up to the new quantity.
        scaled = [(abs(int(lq)) * ratio, lp / ratio) for lq, lp in pos.lots]
        floors = [math.floor(s + 1e-9) for s, _ in scaled]
        missing = whole - sum(floors)
        order = sorted(range(len(scaled)), key=lambda i: -(scaled[i][0] - floors[i]))
        for i in order[: max(missing, 0)]:
            floors[i] += 1
        pos.lots = deque([sign * n, lp] for n, (_, lp) in zip(floors, scaled, strict=True) if n > 0)
        pos.quantity = sign * whole
        cash = 0.0
        if fraction:
            ex_price = pos.price
            cash = _money(_value(sign * fraction, ex_price))
            pnl = (ex_price - pos.avg_cost) * fraction * sign
            pos.realised_pnl += pnl
            pos.realised_pnl_fifo += pnl
            self.cash = round(self.cash + cash, 2)
            self.cash_in_lieu = round(self.cash_in_lieu + cash, 2)
        if pos.quantity == 0:
            pos.avg_cost = 0.0
            pos.lots.clear()
        return cash

    def exercise_rights(self, symbol: str, ts_ns: int, shares: int | None = None) -> int:
        """Subscribe to ``shares`` (default: all) of the pending rights in ``symbol``.

        Pays ``shares × subscription price`` from cash at once (no fees) and adds the shares at
        that price to the position, as a purchase would (the entitlement belongs to whoever held
        the shares on the ex-date, whatever the position is now). Returns the number of shares
        subscribed (0 if none are pending).
        """
        ent = self.pending_rights.get(symbol)
        if ent is None:
            return 0
        n = ent.shares if shares is None else min(int(shares), ent.shares)
        if n <= 0:
            return 0
        pos = self._get(symbol)
        self._trade(pos, n, ent.price)
        cash = _money(-_value(n, ent.price))
        self.cash = round(self.cash + cash, 2)
        left = ent.shares - n
        if left:
            self.pending_rights[symbol] = RightsEntitlement(symbol, ent.ex_date, left, ent.price)
        else:
            del self.pending_rights[symbol]
        self.last_ts_ns = ts_ns if self.last_ts_ns is None else max(self.last_ts_ns, ts_ns)
        return n

    def lapse_rights(self, symbol: str) -> int:
        """Let the pending rights in ``symbol`` expire; returns the shares forgone."""
        ent = self.pending_rights.pop(symbol, None)
        return 0 if ent is None else ent.shares

    # ------------------------------------------------------------------------ snapshots

    def to_dict(self, include_curve: bool = False) -> dict[str, Any]:
        """A JSON-safe snapshot of the whole state (the curve only if asked: it grows)."""
        out: dict[str, Any] = {
            "version": 1,
            "initial_cash": self.initial_cash,
            "cash": self.cash,
            "settlement_days": self.settlement_days,
            "calendar": None if self.calendar is None else self.calendar.calendar_name,
            "use_unsettled_proceeds": self.use_unsettled_proceeds,
            "dividend_withholding": self.dividend_withholding,
            "withholding_tax": self.withholding_tax,
            "cash_in_lieu": self.cash_in_lieu,
            "last_ts_ns": self.last_ts_ns,
            "positions": [p.to_dict() for p in self.positions.values()],
            "pending": [[k, *self._pending[k]] for k in self._pending_keys],
            "pending_rights": [
                {
                    "symbol": e.symbol,
                    "ex_date": e.ex_date.isoformat(),
                    "shares": e.shares,
                    "price": e.price,
                }
                for e in self.pending_rights.values()
            ],
        }
        if include_curve:
            ts, cash, mv, gross, close = self._curve_columns()
            out["curve"] = {
                "ts": ts,
                "cash": cash,
                "market_value": mv,
                "gross_exposure": gross,
                "close": close,
            }
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], calendar: TradingCalendar | None = None
    ) -> Portfolio:
        """Rebuild a portfolio from :meth:`to_dict`; the calendar is reloaded by name unless
        one is passed."""
        if int(data.get("version", 1)) != 1:
            raise ValueError(f"unknown portfolio snapshot version {data.get('version')!r}")
        cal_name = data.get("calendar")
        if calendar is None and cal_name is not None:
            calendar = TradingCalendar(str(cal_name))
        pf = cls(
            float(data["initial_cash"]),
            settlement_days=int(data["settlement_days"]),
            calendar=calendar,
            use_unsettled_proceeds=bool(data["use_unsettled_proceeds"]),
            dividend_withholding=float(data["dividend_withholding"]),
        )
        pf.cash = float(data["cash"])
        pf.withholding_tax = float(data["withholding_tax"])
        pf.cash_in_lieu = float(data["cash_in_lieu"])
        last = data.get("last_ts_ns")
        pf.last_ts_ns = None if last is None else int(last)
        for p in data["positions"]:
            pos = Position.from_dict(p)
            pf.positions[pos.symbol] = pos
        for k, r, p in data["pending"]:
            pf._pending[int(k)] = [float(r), float(p)]
        pf._pending_keys = sorted(pf._pending)
        for e in data["pending_rights"]:
            pf.pending_rights[e["symbol"]] = RightsEntitlement(
                e["symbol"], date.fromisoformat(e["ex_date"]), int(e["shares"]), float(e["price"])
            )
        curve = data.get("curve")
        if curve:
            pf._curve = list(
                zip(
                    [int(v) for v in curve["ts"]],
                    [float(v) for v in curve["cash"]],
                    [float(v) for v in curve["market_value"]],
                    [float(v) for v in curve["gross_exposure"]],
                    [bool(v) for v in curve["close"]],
                    strict=True,
                )
            )
        return pf


def _positive(action: Mapping[str, Any], key: str) -> float:
    value = action.get(key)
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(
            f"{action.get('kind')} action on {action.get('symbol')} needs {key} > 0, got {value!r}"
        )
    return float(value)


def _today(ts_ns: int | None, fallback_ns: int | None) -> date:
    ts = ts_ns if ts_ns is not None else fallback_ns
    return istanbul_date(ts) if ts is not None else date.min
