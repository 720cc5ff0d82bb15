"""Transaction cost analysis: what each order cost against the market it met.

Given the orders a strategy sent, the execution reports that answered them and the market data
of the period, ``order_tca`` gives one row per order and ``tca_by_strategy`` one row per
strategy. The same function runs on a backtest's journal and on a live day's, which is how the
cost model of the simulator is checked against what trading really paid.

Sign convention: **positive = cost** for every cost column. For a buy, paying above the
benchmark is a cost; for a sell, receiving below it is. Each per-share difference is multiplied
by the order side (+1 buy, -1 sell). Basis points are of the benchmark price.

Measures per order:

- **Arrival price**: the mid quote in force at the order time (latest quote with ts <= order
  ts); without quotes, the last price known then (last trade, or the close of the latest bar
  with ``ts_end`` <= order ts). ``arrival_source`` says which ("mid" / "last").
- **Implementation shortfall** (Perold 1988): execution cost of the filled shares
  ``side x (avg fill price - arrival) x filled`` in TRY and in bp of the arrival notional;
  fees separately; the opportunity cost of the shares never filled,
  ``side x (price at the order's end - arrival) x unfilled`` (null while the order is still
  open); and their sum.
- **Interval VWAP slippage**: ``side x (avg fill - VWAP) / VWAP`` over the market between the
  order time and its last fill: trades printed in [start, end], or else the bars that meet it
  (a bar [ts, ts_end) counts if ts_end > start and it started before the last fill, or at the
  start instant for an instant fill), weighted by volume with each bar's VWAP. The market data
  is taken as other participants' flow: a simulator's own fills are not in it.
- **Spread paid**: ``side x (fill price - mid)`` of each fill against the mid prevailing just
  before it (latest quote with ts < fill ts, the usual TAQ convention, so a quote the fill
  itself caused is not the benchmark); needs quotes, null without them.
- **Fill rate**: filled / ordered quantity. **Rejects**: an order whose reports end in
  REJECTED, with its code.
- **Impact**, two estimates: ``impact_post_bp``, the signed move of the benchmark price from
  arrival to ``impact_horizon_ns`` after the last fill (the same price source as the arrival,
  so a mid is never compared with a last trade); it includes market drift, so read it over
  many orders. ``impact_model_bp``, the square-root law ``Y x sigma_daily x sqrt(Q / ADV)`` in
  bp (Almgren et al. 2005; Y ~ 1) for the filled quantity, when ``adv`` and
  ``daily_volatility`` are given for the symbol.

Orders stamped without a time (``ts_ns == 0``) are timed by their first report. Reports for an
order that is not in ``orders`` raise ``ValueError``: a cost table that silently leaves out
executions would understate costs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant.execution.orders import ExecutionReport, Order, OrderStatus

BP = 1e4

TCA_COLUMNS: dict[str, pl.DataType] = {
    "client_order_id": pl.String(),
    "strategy_id": pl.String(),
    "parent_id": pl.String(),
    "symbol": pl.String(),
    "side": pl.Int8(),
    "ts": pl.Datetime("ns", "UTC"),
    "end_ts": pl.Datetime("ns", "UTC"),
    "status": pl.String(),
    "rejected": pl.Boolean(),
    "reject_code": pl.String(),
    "quantity": pl.Int64(),
    "filled_qty": pl.Int64(),
    "fill_rate": pl.Float64(),
    "n_fills": pl.Int64(),
    "avg_price": pl.Float64(),
    "notional_try": pl.Float64(),
    "arrival_price": pl.Float64(),
    "arrival_source": pl.String(),
    "is_bp": pl.Float64(),
    "is_try": pl.Float64(),
    "fees_try": pl.Float64(),
    "opportunity_cost_try": pl.Float64(),
    "total_shortfall_try": pl.Float64(),
    "interval_vwap": pl.Float64(),
    "vwap_slippage_bp": pl.Float64(),
    "spread_paid_bp": pl.Float64(),
    "spread_paid_try": pl.Float64(),
    "impact_post_bp": pl.Float64(),
    "impact_model_bp": pl.Float64(),
}
"""The columns of ``order_tca``'s frame, in order, with their types."""


def square_root_impact_bp(
    quantity: float, adv: float, daily_volatility: float, coefficient: float = 1.0
) -> float:
    """Square-root market impact in bp: ``coefficient x daily_volatility x sqrt(Q / ADV)``.

    ``daily_volatility`` is the standard deviation of daily returns (0.02 = 2%), ``adv`` the
    average daily volume in shares. NaN when ADV is not positive.
    """
    if not adv > 0 or quantity < 0:
        return float("nan")
    return coefficient * daily_volatility * math.sqrt(quantity / adv) * BP


# --------------------------------------------------------------------------- market lookups


def _ns(col: str, frame: pl.DataFrame) -> pl.Expr:
    dtype = frame.schema[col]
    if isinstance(dtype, pl.Datetime):
        return pl.col(col).dt.epoch("ns")
    if dtype.is_integer():
        return pl.col(col).cast(pl.Int64)
    raise ValueError(f"column {col!r} must be a datetime or integer nanoseconds, got {dtype}")


def _require(frame: pl.DataFrame, kind: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{kind} frame is missing column(s): {', '.join(missing)}")


@dataclass(slots=True)
class _Series:
    ts: np.ndarray
    values: dict[str, np.ndarray]


def _by_symbol(frame: pl.DataFrame, sort_col: str, cols: dict[str, pl.Expr]) -> dict[str, _Series]:
    # within one instant the lake's ``seq`` orders events; "latest" means the highest seq
    seq = pl.col("seq") if "seq" in frame.columns else pl.lit(0)
    tidy = frame.select(
        pl.col("symbol").cast(pl.String),
        _ns(sort_col, frame).alias("_t"),
        seq.alias("_seq"),
        **cols,
    ).sort("symbol", "_t", "_seq", maintain_order=True)
    out: dict[str, _Series] = {}
    for part in tidy.partition_by("symbol", maintain_order=True):
        sym = part["symbol"][0]
        out[sym] = _Series(
            ts=part["_t"].to_numpy(),
            values={k: part[k].to_numpy() for k in cols},  # floats (null -> NaN) or int ns
        )
    return out


class _Market:
    """Point-in-time lookups over quotes, trades and bars, per symbol (sorted arrays)."""

    def __init__(
        self,
        quotes: pl.DataFrame | None,
        trades: pl.DataFrame | None,
        bars: pl.DataFrame | None,
    ) -> None:
        self.quotes: dict[str, _Series] = {}
        self.trades: dict[str, _Series] = {}
        self.bars_by_end: dict[str, _Series] = {}
        self.bars_by_start: dict[str, _Series] = {}
        if quotes is not None and quotes.height:
            _require(quotes, "quotes", ("ts", "symbol", "bid_price", "ask_price"))
            bid, ask = pl.col("bid_price"), pl.col("ask_price")
            valid = (bid > 0) & (ask > 0) & (ask >= bid)
            mid = pl.when(valid).then((bid + ask) / 2).otherwise(None).cast(pl.Float64)
            self.quotes = _by_symbol(quotes, "ts", {"mid": mid})
        if trades is not None and trades.height:
            _require(trades, "trades", ("ts", "symbol", "price", "size"))
            self.trades = _by_symbol(
                trades,
                "ts",
                {
                    "price": pl.col("price").cast(pl.Float64),
                    "size": pl.col("size").cast(pl.Float64),
                },
            )
        if bars is not None and bars.height:
            _require(bars, "bars", ("ts", "ts_end", "symbol", "close", "volume", "vwap"))
            close = pl.col("close").cast(pl.Float64)
            self.bars_by_end = _by_symbol(bars, "ts_end", {"close": close})
            self.bars_by_start = _by_symbol(
                bars,
                "ts",
                {
                    "ts_end": _ns("ts_end", bars),
                    "volume": pl.col("volume").cast(pl.Float64),
                    "vwap": pl.col("vwap").cast(pl.Float64),
                },
            )

    @staticmethod
    def _latest(series: _Series | None, key: str, t: int, strict: bool = False) -> float | None:
        if series is None:
            return None
        i = int(np.searchsorted(series.ts, t, side="left" if strict else "right")) - 1
        if i < 0:
            return None
        v = series.values[key][i]
        return None if math.isnan(v) else float(v)

    def mid(self, symbol: str, t: int, strict: bool = False) -> float | None:
        return self._latest(self.quotes.get(symbol), "mid", t, strict)

    def last(self, symbol: str, t: int) -> float | None:
        px = self._latest(self.trades.get(symbol), "price", t)
        if px is None:
            px = self._latest(self.bars_by_end.get(symbol), "close", t)
        return px

    def price(self, symbol: str, t: int, source: str) -> float | None:
        return self.mid(symbol, t) if source == "mid" else self.last(symbol, t)

    def arrival(self, symbol: str, t: int) -> tuple[float | None, str | None]:
        m = self.mid(symbol, t)
        if m is not None:
            return m, "mid"
        px = self.last(symbol, t)
        return (px, "last") if px is not None else (None, None)

    def vwap(self, symbol: str, start: int, end: int) -> float | None:
        tr = self.trades.get(symbol)
        if tr is not None:
            lo = int(np.searchsorted(tr.ts, start, side="left"))
            hi = int(np.searchsorted(tr.ts, end, side="right"))
            size = tr.values["size"][lo:hi]
            if size.sum() > 0:
                return float(np.dot(tr.values["price"][lo:hi], size) / size.sum())
        bars = self.bars_by_start.get(symbol)
        if bars is not None:
            # bars [ts, ts_end) that meet [start, end]; see the module docstring
            hi = int(np.searchsorted(bars.ts, max(end, start + 1), side="left"))
            ends = bars.values["ts_end"][:hi]
            keep = ends > start
            vol = bars.values["volume"][:hi][keep]
            if vol.sum() > 0:
                return float(np.dot(bars.values["vwap"][:hi][keep], vol) / vol.sum())
        return None


# --------------------------------------------------------------------------- per order


def _bp(numerator: float, denominator: float) -> float | None:
    return numerator / denominator * BP if denominator else None


def order_tca(
    orders: Iterable[Order],
    reports: Iterable[ExecutionReport],
    *,
    quotes: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    bars: pl.DataFrame | None = None,
    impact_horizon_ns: int = 5 * 60 * 1_000_000_000,
    adv: Mapping[str, float] | None = None,
    daily_volatility: Mapping[str, float] | None = None,
    impact_coefficient: float = 1.0,
) -> pl.DataFrame:
    """One row per order with the measures of the module docstring (columns: ``TCA_COLUMNS``).

    Market data frames use the lake schemas (``quant.data.schema``): quotes need ``ts, symbol,
    bid_price, ask_price``; trades ``ts, symbol, price, size``; bars ``ts, ts_end, symbol,
    close, volume, vwap``. Time stamps are UTC datetimes or integer nanoseconds. Any of them
    may be missing; a measure that needs absent data is null, never guessed.
    """
    order_list = list(orders)
    by_id: dict[str, Order] = {}
    for o in order_list:
        if o.client_order_id in by_id:
            raise ValueError(f"duplicate client_order_id {o.client_order_id!r} in orders")
        by_id[o.client_order_id] = o
    grouped: dict[str, list[ExecutionReport]] = defaultdict(list)
    unknown: list[str] = []
    for r in reports:
        if r.client_order_id in by_id:
            grouped[r.client_order_id].append(r)
        else:
            unknown.append(r.client_order_id)
    if unknown:
        raise ValueError(f"reports for orders not given: {sorted(set(unknown))[:5]}")

    market = _Market(quotes, trades, bars)
    rows = []
    for order in order_list:
        history = sorted(grouped.get(order.client_order_id, []), key=lambda r: r.ts_ns)
        rows.append(
            _order_row(
                order,
                history,
                market,
                impact_horizon_ns,
                adv or {},
                daily_volatility or {},
                impact_coefficient,
            )
        )
    raw_schema = {
        k: (pl.Int64() if isinstance(v, pl.Datetime) else v) for k, v in TCA_COLUMNS.items()
    }
    frame = pl.DataFrame(rows, schema=raw_schema, orient="row")
    return frame.with_columns(pl.col("ts", "end_ts").cast(pl.Datetime("ns", "UTC")))


def _order_row(
    order: Order,
    history: list[ExecutionReport],
    market: _Market,
    horizon: int,
    adv: Mapping[str, float],
    vol: Mapping[str, float],
    coefficient: float,
) -> tuple:
    sign = order.side.sign
    sym = order.symbol
    start = order.ts_ns if order.ts_ns > 0 or not history else history[0].ts_ns
    status = history[-1].status if history else OrderStatus.NEW
    end = history[-1].ts_ns if history else start
    fills = [r for r in history if r.last_qty > 0]
    reject_code = next(
        (str(r.reject_code) for r in reversed(history) if r.reject_code is not None), None
    )
    filled = sum(r.last_qty for r in fills)
    fees = float(sum(r.fees for r in history))
    unfilled = order.quantity - filled
    avg = sum(r.last_price * r.last_qty for r in fills) / filled if filled else None
    notional = avg * filled if avg is not None else 0.0

    arrival, source = market.arrival(sym, start)
    is_try = is_bp = None
    if arrival is not None and filled:
        is_try = sign * (avg - arrival) * filled
        is_bp = _bp(is_try, arrival * filled)
    elif not filled:
        is_try = 0.0

    opportunity = None
    if unfilled == 0:
        opportunity = 0.0
    elif arrival is not None and status.is_terminal:
        px_end = market.price(sym, end, source)
        if px_end is not None:
            opportunity = sign * (px_end - arrival) * unfilled
    total = None
    if is_try is not None and opportunity is not None:
        total = is_try + fees + opportunity

    last_fill = fills[-1].ts_ns if fills else None
    vwap = slip = None
    if fills:
        vwap = market.vwap(sym, start, last_fill)
        if vwap is not None:
            slip = _bp(sign * (avg - vwap), vwap)

    spread_try = spread_bp = None
    mids = [market.mid(sym, r.ts_ns, strict=True) for r in fills]
    if fills and all(m is not None for m in mids):
        pairs = list(zip(fills, mids, strict=True))
        spread_try = sum(sign * (r.last_price - m) * r.last_qty for r, m in pairs)
        spread_bp = _bp(spread_try, sum(m * r.last_qty for r, m in pairs))

    impact_post = None
    if fills and arrival is not None:
        px_after = market.price(sym, last_fill + horizon, source)
        if px_after is not None:
            impact_post = _bp(sign * (px_after - arrival), arrival)
    impact_model = None
    if filled and sym in adv and sym in vol:
        value = square_root_impact_bp(filled, adv[sym], vol[sym], coefficient)
        impact_model = None if math.isnan(value) else value

    return (
        order.client_order_id,
        order.strategy_id,
        order.parent_id,
        sym,
        sign,
        start,
        end,
        str(status),
        status is OrderStatus.REJECTED,
        reject_code,
        order.quantity,
        filled,
        filled / order.quantity if order.quantity > 0 else None,
        len(fills),
        avg,
        notional,
        arrival,
        source,
        is_bp,
        is_try,
        fees,
        opportunity,
        total,
        vwap,
        slip,
        spread_bp,
        spread_try,
        impact_post,
        impact_model,
    )


# --------------------------------------------------------------------------- per strategy


def _weighted(col: str, weight: pl.Expr) -> pl.Expr:
    """Weight-averaged ``col`` over rows where it is known; null if no weight."""
    w = pl.when(pl.col(col).is_not_null()).then(weight).otherwise(0.0)
    den = w.sum()
    return pl.when(den > 0).then((pl.col(col).fill_null(0.0) * w).sum() / den).otherwise(None)


def tca_by_strategy(per_order: pl.DataFrame) -> pl.DataFrame:
    """One row per ``strategy_id`` from ``order_tca``'s frame.

    Counts (orders, rejected, filled), ``reject_rate`` = rejected / orders, ``fill_rate`` =
    filled / ordered quantity over the orders that were not rejected (rejects have their own
    rate), sums in TRY, and bp figures weighted by traded notional (implementation shortfall
    by arrival notional), so a large order weighs what it cost.
    """
    notional = pl.col("notional_try")
    arrival_notional = pl.col("arrival_price") * pl.col("filled_qty")
    accepted = ~pl.col("rejected")
    accepted_qty = pl.col("quantity").filter(accepted).sum()
    is_den = pl.when(pl.col("is_try").is_not_null() & (pl.col("filled_qty") > 0))
    is_den = is_den.then(arrival_notional).otherwise(0.0).sum()
    fees_den = notional.sum()
    agg = per_order.group_by("strategy_id", maintain_order=True).agg(
        pl.len().alias("n_orders"),
        pl.col("rejected").sum().cast(pl.Int64).alias("n_rejected"),
        (pl.col("filled_qty") > 0).sum().cast(pl.Int64).alias("n_filled"),
        (pl.col("rejected").sum() / pl.len()).alias("reject_rate"),
        pl.col("quantity").sum().alias("ordered_qty"),
        pl.col("filled_qty").sum().alias("filled_qty"),
        pl.when(accepted_qty > 0)
        .then(pl.col("filled_qty").filter(accepted).sum() / accepted_qty)
        .otherwise(None)
        .alias("fill_rate"),
        notional.sum().alias("notional_try"),
        pl.col("is_try").sum().alias("is_try"),
        pl.when(is_den > 0)
        .then(pl.col("is_try").filter(pl.col("filled_qty") > 0).sum() / is_den * BP)
        .otherwise(None)
        .alias("is_bp"),
        pl.col("fees_try").sum().alias("fees_try"),
        pl.when(fees_den > 0)
        .then(pl.col("fees_try").sum() / fees_den * BP)
        .otherwise(None)
        .alias("fees_bp"),
        pl.col("opportunity_cost_try").sum().alias("opportunity_cost_try"),
        _weighted("vwap_slippage_bp", notional).alias("vwap_slippage_bp"),
        pl.col("spread_paid_try").sum().alias("spread_paid_try"),
        _weighted("spread_paid_bp", notional).alias("spread_paid_bp"),
        _weighted("impact_post_bp", notional).alias("impact_post_bp"),
        _weighted("impact_model_bp", notional).alias("impact_model_bp"),
    )
    return agg.sort("strategy_id")
