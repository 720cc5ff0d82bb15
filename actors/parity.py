"""Parity: a day replayed through the actors against the backtest of the same day.

``backtest_day(config)`` is the reference. It runs ``quant.sim.backtest.run_backtest`` on the
day's 1-minute bars built with ``time_bars`` from the very trades the feed replays, after the
same warm-up (the ``WARMUP_DAYS`` of lake bars before the day: closes and bands, ADV and daily
volatility), with the predictions ``batch_predictions`` computes from the same model over the
same research history, the same strategy (``PredictionStrategy`` with the trial's threshold,
position size and side rule, and the live strategy id, so client order ids line up), the same
risk limits, BIST costs, participation cap and initial cash.

``compare(live, backtest)`` matches the two runs' orders and fills and explains each
difference:

* orders are matched by client order id when both sides sent that id for the same symbol,
  side and decision time, otherwise by ``(decision time, symbol, side)`` (so one extra order
  does not shift every later id into a mismatch);
* an order is identical when symbol, side, quantity, limit price and the risk verdict
  (accepted, or rejected) agree; a fill when it belongs to matched orders, comes in the same
  place of the order's fills and has the same quantity, price and time;
* every other pairing is a ``ParityDifference`` with a cause and the values on both sides:

  ``risk_state``       one side's risk layer rejected the order (a limit that depends on the
                       account's state: exposure, order-to-trade, position), the other did not;
  ``funds``            one side rejected it for buying power;
  ``quantity``         same decision, another size (the position it traded from differed);
  ``fill_price``       the same fill at another price (the slippage inputs differed);
  ``partial_fill``     another fill quantity (participation cap, a different bar volume);
  ``fill_time``        the fill came on another bar;
  ``late_tick``        a missing order or fill of a symbol whose ticks the live stream
                       dropped as late or malformed (the bars differ, so the decisions may);
  ``missing_in_live`` / ``missing_in_backtest``  an order or fill only one side has.

The identical share is ``identical / (matched + unmatched)`` over orders and fills together;
parity holds at ``PARITY_TARGET`` (99%).
"""

from __future__ import annotations

import html
import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from actors.pipeline import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    STATS_LOOKBACK,
    WARMUP_DAYS,
    PipelineConfig,
    ReplayResult,
    replay_history,
)

PARITY_TARGET = 0.99
PRICE_TOLERANCE = 1e-9
"""Relative: prices are on the tick grid or priced by the same slippage formula."""

CAUSES: dict[str, str] = {
    "risk_state": "one side's risk checks rejected the order (account state differed)",
    "funds": "one side rejected the order for buying power",
    "quantity": "same decision, another quantity (the position traded from differed)",
    "fill_price": "the same fill at another price (slippage inputs differed)",
    "partial_fill": "another fill quantity (participation cap or bar volume differed)",
    "fill_time": "the fill came on another bar",
    "late_tick": "the live stream dropped ticks of the symbol (late or malformed)",
    "missing_in_live": "only the backtest has it",
    "missing_in_backtest": "only the live replay has it",
}

_FUNDS_CODES = frozenset({"INSUFFICIENT_FUNDS"})


# ------------------------------------------------------------------------------- the backtest


@dataclass
class BacktestDay:
    """The reference run of one day: orders and fills in the replay's columns."""

    day: date
    orders: pl.DataFrame
    fills: pl.DataFrame
    predictions: pl.DataFrame
    result: Any
    seconds: float


def day_trades(config: PipelineConfig) -> pl.DataFrame:
    """The trades the feed of ``config`` replays (the same adapter, read whole)."""
    frame = config.feed.adapter().frame
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


def backtest_day(
    config: PipelineConfig,
    *,
    trades: pl.DataFrame | None = None,
    history: pl.DataFrame | None = None,
) -> BacktestDay:
    """Backtest ``config``'s day as the replay runs it (see the module docstring).

    ``trades``: the day's trades (default: those the feed replays); ``history``: 1-minute bars
    before the day (default: the ``WARMUP_DAYS`` the lake holds before it, for a lake feed)."""
    from actors.signals import batch_predictions
    from actors.stream_processor import STRATEGY_ID, build_model
    from quant.data.bars import time_bars
    from quant.data.schema import DataKind, conform
    from quant.research.signals import PredictionStrategy
    from quant.risk.limits import RiskLimits
    from quant.sim.backtest import BacktestConfig, FrameBarSource, run_backtest

    started = time.perf_counter()
    day = config.day
    model, params = build_model(config.model)
    trades = trades if trades is not None else day_trades(config)
    if history is None and config.feed.kind == "lake":
        history = replay_history(
            config.feed.lake_path, config.symbols, day, params.bar_interval
        ).bars
    bars = conform(time_bars(trades, "1m"), DataKind.BARS)
    start_ns = int(datetime.combine(day, datetime.min.time()).timestamp() * 1e9)
    predictions = batch_predictions(model, params, bars, start_ns, history=config.warmup)
    strategy = PredictionStrategy(
        predictions,
        params.prob_threshold,
        position_notional=params.position_weight * config.initial_cash,
        long_only=params.long_only,
        strategy_id=STRATEGY_ID,
    )
    frame = bars
    if history is not None and history.height:
        past = conform(history, DataKind.BARS).filter(pl.col("ts") < bars["ts"].min())
        frame = pl.concat([past.select(bars.columns), bars])
    bt = BacktestConfig(
        start=day,
        end=day + timedelta(days=1),
        symbols=list(config.symbols),
        initial_cash=config.initial_cash,
        costs=config.costs,
        calendar=config.calendar,
        max_participation=config.max_participation,
        risk=RiskLimits.model_validate(config.risk_limits or {}),
        warmup_days=WARMUP_DAYS,
        stats_lookback=STATS_LOOKBACK,
        tca=False,
    )
    source = FrameBarSource(frame, None, bt.start, bt.end)
    result = run_backtest(bt, strategy, source)
    return BacktestDay(
        day,
        backtest_orders(result.orders),
        backtest_fills(result.fills),
        predictions,
        result,
        time.perf_counter() - started,
    )


def _ns(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("ns").cast(pl.Int64)


def _side(column: str) -> pl.Expr:
    return pl.when(pl.col(column) > 0).then(pl.lit("BUY")).otherwise(pl.lit("SELL"))


def backtest_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """A backtest's ``orders`` (``ORDER_SCHEMA``) in the replay's columns."""
    if orders.height == 0:
        return pl.DataFrame(schema=ORDER_COLUMNS)
    return orders.select(
        "client_order_id",
        "symbol",
        _side("side").alias("side"),
        "quantity",
        "limit_price",
        _ns("ts").alias("ts_ns"),
        "status",
        pl.col("filled_qty").alias("filled"),
        pl.col("avg_price").fill_null(0.0),
        "reject_code",
        pl.col("reason").fill_null(""),
    ).cast(ORDER_COLUMNS)


def backtest_fills(fills: pl.DataFrame) -> pl.DataFrame:
    """A backtest's ``fills`` (``FILL_SCHEMA``) in the replay's columns."""
    if fills.height == 0:
        return pl.DataFrame(schema=FILL_COLUMNS)
    return fills.select(
        "client_order_id",
        "symbol",
        _side("side").alias("side"),
        pl.col("quantity").alias("last_qty"),
        pl.col("price").alias("last_price"),
        "fees",
        _ns("ts").alias("ts_ns"),
    ).cast(FILL_COLUMNS)


# ------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class ParityDifference:
    """One order or fill that is not identical on both sides, with its cause."""

    kind: str
    """``order`` or ``fill``."""
    cause: str
    symbol: str
    side: str
    ts_ns: int
    live: dict[str, Any] | None
    backtest: dict[str, Any] | None
    detail: str = ""

    @property
    def client_order_id(self) -> str:
        row = self.live or self.backtest or {}
        return str(row.get("client_order_id", ""))


@dataclass
class ParityReport:
    """How far a replayed day reproduces its backtest (see the module docstring)."""

    day: date | None
    orders_live: int
    orders_backtest: int
    orders_matched: int
    orders_identical: int
    fills_live: int
    fills_backtest: int
    fills_matched: int
    fills_identical: int
    differences: list[ParityDifference] = field(default_factory=list)
    id_mismatches: int = 0
    """Matched orders whose client order ids differ (the id sequences drifted)."""
    target: float = PARITY_TARGET
    info: dict[str, Any] = field(default_factory=dict)
    """Context for the reader: model, symbols, ticks, durations, prediction agreement."""

    @property
    def compared(self) -> int:
        """Orders and fills on either side, a matched pair counted once."""
        return (
            self.orders_live
            + self.orders_backtest
            - self.orders_matched
            + self.fills_live
            + self.fills_backtest
            - self.fills_matched
        )

    @property
    def identical(self) -> int:
        return self.orders_identical + self.fills_identical

    @property
    def identical_share(self) -> float:
        return self.identical / self.compared if self.compared else 1.0

    @property
    def passed(self) -> bool:
        return self.identical_share >= self.target

    def causes(self) -> dict[str, int]:
        return dict(Counter(d.cause for d in self.differences).most_common())

    def headline(self) -> str:
        if self.compared == 0:
            return (
                f"parity: no orders on either side to compare (the model sent none); "
                f"signals {self._signals_text()}"
            )
        verdict = "parity holds" if self.passed else "parity FAILS"
        causes = ", ".join(f"{c} {n}" for c, n in self.causes().items()) or "none"
        return (
            f"parity {self.identical_share:.2%} identical ({self.identical:,} of "
            f"{self.compared:,} orders and fills; orders {self.orders_live:,} live / "
            f"{self.orders_backtest:,} backtest, fills {self.fills_live:,} / "
            f"{self.fills_backtest:,}); {verdict} (target {self.target:.0%}); "
            f"differences: {causes}; signals {self._signals_text()}"
        )

    def _signals_text(self) -> str:
        p = self.info.get("predictions") or {}
        if "matched" not in p:
            return "not compared"
        same = p.get("identical", p["matched"])
        return f"{same:,} of {max(p['live'], p['backtest']):,} identical"

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "identical_share": round(self.identical_share, 6),
            "identical": self.identical,
            "compared": self.compared,
            "target": self.target,
            "passed": self.passed,
            "orders": {
                "live": self.orders_live,
                "backtest": self.orders_backtest,
                "matched": self.orders_matched,
                "identical": self.orders_identical,
                "id_mismatches": self.id_mismatches,
            },
            "fills": {
                "live": self.fills_live,
                "backtest": self.fills_backtest,
                "matched": self.fills_matched,
                "identical": self.fills_identical,
            },
            "causes": self.causes(),
            "differences": [asdict(d) for d in self.differences],
            "info": self.info,
        }


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.iter_rows(named=True)) if frame.height else []


def _rejected(row: dict[str, Any]) -> bool:
    return str(row.get("status") or "").lower() == "rejected"


def _same_price(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= PRICE_TOLERANCE * max(abs(a), abs(b), 1.0)


def _match_orders(
    live: list[dict[str, Any]], back: list[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Pairs by client order id (same symbol, side and time), then by (time, symbol, side)."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    by_id = {r["client_order_id"]: r for r in back}
    used_live: set[int] = set()
    used_back: set[int] = set()
    for i, r in enumerate(live):
        b = by_id.get(r["client_order_id"])
        if (
            b is not None
            and id(b) not in used_back
            and (b["ts_ns"], b["symbol"], b["side"]) == (r["ts_ns"], r["symbol"], r["side"])
        ):
            pairs.append((r, b))
            used_live.add(i)
            used_back.add(id(b))
    waiting: dict[tuple[int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for b in back:
        if id(b) not in used_back:
            waiting[(b["ts_ns"], b["symbol"], b["side"])].append(b)
    only_live = []
    for i, r in enumerate(live):
        if i in used_live:
            continue
        queue = waiting.get((r["ts_ns"], r["symbol"], r["side"]))
        if queue:
            b = queue.pop(0)
            pairs.append((r, b))
            used_back.add(id(b))
        else:
            only_live.append(r)
    only_back = [b for b in back if id(b) not in used_back]
    return pairs, only_live, only_back


def _order_values(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("client_order_id", "symbol", "side", "quantity", "limit_price", "ts_ns", "status")
    out = {k: row.get(k) for k in keys}
    out.update(
        filled=row.get("filled"),
        reject_code=row.get("reject_code"),
        reason=row.get("reason") or "",
    )
    return out


def _fill_values(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("client_order_id", "symbol", "side", "last_qty", "last_price", "fees", "ts_ns")
    return {k: row.get(k) for k in keys}


def _order_cause(live: dict[str, Any], back: dict[str, Any]) -> tuple[str, str] | None:
    """Why a matched pair of orders is not identical (None: it is)."""
    lr, br = _rejected(live), _rejected(back)
    if lr != br:
        code = (live if lr else back).get("reject_code") or ""
        who = "live" if lr else "backtest"
        reason = (live if lr else back).get("reason") or ""
        cause = "funds" if code in _FUNDS_CODES else "risk_state"
        return cause, f"rejected by the {who} side only ({code}: {reason})"
    if live["quantity"] != back["quantity"]:
        return "quantity", f"quantity {live['quantity']} live vs {back['quantity']} backtest"
    if not _same_price(live.get("limit_price"), back.get("limit_price")):
        return (
            "quantity",
            f"limit price {live.get('limit_price')} live vs {back.get('limit_price')} backtest",
        )
    return None


def _missing_cause(side_has: str, symbol: str, dropped: set[str]) -> str:
    if symbol in dropped:
        return "late_tick"
    return "missing_in_backtest" if side_has == "live" else "missing_in_live"


def compare(
    live: ReplayResult | tuple[pl.DataFrame, pl.DataFrame],
    backtest: BacktestDay | tuple[pl.DataFrame, pl.DataFrame],
    *,
    dropped_symbols: set[str] | frozenset[str] = frozenset(),
    day: date | None = None,
    info: dict[str, Any] | None = None,
) -> ParityReport:
    """Match and explain (see the module docstring). ``live`` and ``backtest`` are runs or
    ``(orders, fills)`` frames in ``ORDER_COLUMNS`` / ``FILL_COLUMNS``; ``dropped_symbols``:
    symbols whose ticks the live stream dropped (late or quarantined)."""
    l_orders, l_fills = (live.orders, live.fills) if isinstance(live, ReplayResult) else live
    b_orders, b_fills = (
        (backtest.orders, backtest.fills) if isinstance(backtest, BacktestDay) else backtest
    )
    if day is None:
        day = getattr(live, "day", None) or getattr(backtest, "day", None)
    dropped = set(dropped_symbols)
    lo, bo = _rows(l_orders), _rows(b_orders)
    pairs, only_live, only_back = _match_orders(lo, bo)
    diffs: list[ParityDifference] = []
    identical_orders = 0
    id_mismatch = 0
    for lrow, brow in pairs:
        if lrow["client_order_id"] != brow["client_order_id"]:
            id_mismatch += 1
        found = _order_cause(lrow, brow)
        if found is None:
            identical_orders += 1
            continue
        cause, detail = found
        diffs.append(
            ParityDifference(
                "order",
                cause,
                lrow["symbol"],
                lrow["side"],
                lrow["ts_ns"],
                _order_values(lrow),
                _order_values(brow),
                detail,
            )
        )
    for side_has, rows in (("live", only_live), ("backtest", only_back)):
        for r in rows:
            cause = _missing_cause(side_has, r["symbol"], dropped)
            diffs.append(
                ParityDifference(
                    "order",
                    cause,
                    r["symbol"],
                    r["side"],
                    r["ts_ns"],
                    _order_values(r) if side_has == "live" else None,
                    _order_values(r) if side_has == "backtest" else None,
                    f"order sent by the {side_has} side only ({r.get('status')})",
                )
            )

    # fills: per matched order, in the order's own sequence
    lf: dict[str, list[dict[str, Any]]] = defaultdict(list)
    bf: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(_rows(l_fills), key=lambda r: r["ts_ns"]):
        lf[r["client_order_id"]].append(r)
    for r in sorted(_rows(b_fills), key=lambda r: r["ts_ns"]):
        bf[r["client_order_id"]].append(r)
    fills_matched = identical_fills = 0
    seen_live: set[str] = set()
    seen_back: set[str] = set()
    for lrow, brow in pairs:
        lid, bid = lrow["client_order_id"], brow["client_order_id"]
        seen_live.add(lid)
        seen_back.add(bid)
        a, b = lf.get(lid, []), bf.get(bid, [])
        order_cause = _order_cause(lrow, brow)
        for k in range(max(len(a), len(b))):
            x = a[k] if k < len(a) else None
            y = b[k] if k < len(b) else None
            if x is not None and y is not None:
                fills_matched += 1
                cause = None
                detail = ""
                if x["last_qty"] != y["last_qty"]:
                    cause = "partial_fill"
                    detail = f"fill quantity {x['last_qty']} live vs {y['last_qty']} backtest"
                elif not _same_price(x["last_price"], y["last_price"]):
                    cause = "fill_price"
                    detail = f"fill price {x['last_price']} live vs {y['last_price']} backtest"
                elif x["ts_ns"] != y["ts_ns"]:
                    cause = "fill_time"
                    detail = "filled on another bar"
                if cause is None:
                    identical_fills += 1
                    continue
                diffs.append(
                    ParityDifference(
                        "fill",
                        cause,
                        x["symbol"],
                        x["side"],
                        x["ts_ns"],
                        _fill_values(x),
                        _fill_values(y),
                        detail,
                    )
                )
                continue
            present = x if x is not None else y
            assert present is not None
            has = "live" if x is not None else "backtest"
            if order_cause is not None:
                cause = order_cause[0]
                detail = f"order differs ({order_cause[1]})"
            elif present["symbol"] in dropped:
                cause = "late_tick"
                detail = f"fill on the {has} side only"
            else:
                cause = "partial_fill"
                detail = f"the order filled in more parts on the {has} side"
            diffs.append(
                ParityDifference(
                    "fill",
                    cause,
                    present["symbol"],
                    present["side"],
                    present["ts_ns"],
                    _fill_values(x) if x is not None else None,
                    _fill_values(y) if y is not None else None,
                    detail,
                )
            )
    for has, groups, seen in (("live", lf, seen_live), ("backtest", bf, seen_back)):
        for cid, rows in groups.items():
            if cid in seen:
                continue
            for r in rows:
                diffs.append(
                    ParityDifference(
                        "fill",
                        _missing_cause(has, r["symbol"], dropped),
                        r["symbol"],
                        r["side"],
                        r["ts_ns"],
                        _fill_values(r) if has == "live" else None,
                        _fill_values(r) if has == "backtest" else None,
                        f"fill of an order only the {has} side sent",
                    )
                )
    diffs.sort(key=lambda d: (d.ts_ns, d.symbol, d.kind))
    return ParityReport(
        day=day,
        orders_live=len(lo),
        orders_backtest=len(bo),
        orders_matched=len(pairs),
        orders_identical=identical_orders,
        fills_live=sum(len(v) for v in lf.values()),
        fills_backtest=sum(len(v) for v in bf.values()),
        fills_matched=fills_matched,
        fills_identical=identical_fills,
        differences=diffs,
        id_mismatches=id_mismatch,
        info=dict(info or {}),
    )


def compare_predictions(live: pl.DataFrame, batch: pl.DataFrame) -> dict[str, Any]:
    """How many predictions (``symbol, ts, p_up``) the stream and the batch agree on: the
    first place a signal difference would show (identical: within 1e-12)."""
    keys = ["symbol", "ts"]
    joined = live.select(*keys, pl.col("p_up").alias("a")).join(
        batch.select(*keys, pl.col("p_up").alias("b")), on=keys, how="inner"
    )
    gap = (joined["a"] - joined["b"]).abs() if joined.height else pl.Series([], dtype=pl.Float64)
    return {
        "live": live.height,
        "backtest": batch.height,
        "matched": joined.height,
        "identical": int((gap <= 1e-12).sum()) if joined.height else 0,
        "max_abs_diff": float(gap.max() or 0.0) if joined.height else 0.0,
    }


def live_predictions(journal_path: str | Path) -> pl.DataFrame:
    """The predictions the stream processor journaled (``signal`` events)."""
    from actors.journal import Journal

    with Journal(journal_path) as j:
        events = j.events(kinds=["signal"])
    rows = [(e.payload["symbol"], int(e.ts_ns), float(e.payload["extra"]["p_up"])) for e in events]
    return pl.DataFrame(
        rows, schema={"symbol": pl.String, "ts": pl.Int64, "p_up": pl.Float64}, orient="row"
    )


def dropped_symbols(status: dict[str, Any]) -> set[str]:
    """Symbols the live stream dropped ticks of (late or quarantined), from its status.

    Only per-symbol counts (``late_by_symbol``, ``quarantined_by_symbol``) name symbols; the
    stream's totals alone do not, and then nothing is attributed to ``late_tick`` (the totals
    are in the report's ``info``: a difference stays ``missing_in_*`` rather than guessed)."""
    stream = (status.get("actors") or {}).get("stream") or {}
    ticks = stream.get("ticks") or {}
    out: set[str] = set()
    for key in ("late_by_symbol", "quarantined_by_symbol"):
        out.update(s for s, n in (ticks.get(key) or {}).items() if n)
    return out


# ------------------------------------------------------------------------------- a whole run


def follow_replay(
    config: PipelineConfig,
    console: Any = None,
    *,
    total_ticks: int | None = None,
    timeout_s: float = 900.0,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Wait for the feed of ``config`` to finish, showing the ticks processed as it goes on
    ``console`` (a live bar on a terminal, a line per quarter otherwise); returns its status."""
    from actors import pipeline as pipe

    deadline = time.monotonic() + timeout_s
    bar = None
    task = None
    if console is not None and getattr(console, "is_terminal", False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(
            TextColumn(f"replaying {config.day}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ticks"),
            console=console,
            transient=False,
        )
        task = bar.add_task("ticks", total=total_ticks)
        bar.start()
    shown = 0
    try:
        while True:
            feed = pipe.feed_status(config.pipeline)
            sent = int(feed.get("rows_sent") or 0)
            if bar is not None and task is not None:
                bar.update(task, completed=sent)
            elif console is not None and total_ticks:
                quarter = min(4, 4 * sent // total_ticks)
                if quarter > shown:
                    shown = quarter
                    console.print(
                        f"replaying {config.day}: {sent:,} of {total_ticks:,} ticks processed",
                        highlight=False,
                    )
            if feed["state"] in ("finished", "failed", "stopped"):
                return feed
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay of {config.day} still feeding after {timeout_s:g} s")
            time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.stop()


def check_parity(
    config: PipelineConfig, final_status: dict[str, Any], seconds: float
) -> tuple[ReplayResult, BacktestDay, ParityReport]:
    """The finished replay of ``config`` (its journal and final status) against its backtest."""
    from actors import pipeline as pipe

    live = pipe.collect_result(config.journal_path, config.day, final_status, seconds)
    reference = backtest_day(config)
    report = compare(
        live,
        reference,
        dropped_symbols=dropped_symbols(final_status),
        info=parity_info(config, live, reference),
    )
    return live, reference, report


def replay_parity(
    config: PipelineConfig,
    console: Any = None,
    *,
    timeout_s: float = 900.0,
    poll_s: float = 0.5,
) -> tuple[ReplayResult, BacktestDay, ParityReport]:
    """Replay ``config``'s day through the actors (progress on ``console``), backtest the same
    day, and compare them. The pipeline is stopped at the end, whatever happens."""
    from actors import pipeline as pipe

    started = time.perf_counter()
    total = day_trades(config).height if console is not None else None
    pipe.start_pipeline(config)
    try:
        feed = follow_replay(config, console, total_ticks=total, timeout_s=timeout_s, poll_s=poll_s)
        final = pipe.status(config.pipeline)
    finally:
        pipe.stop(config.pipeline)
    if feed["state"] != "finished":
        raise RuntimeError(f"the replay of {config.day} ended {feed['state']}: {feed.get('error')}")
    return check_parity(config, final, time.perf_counter() - started)


def parity_info(
    config: PipelineConfig, live: ReplayResult, reference: BacktestDay
) -> dict[str, Any]:
    """What the report says about the run besides the comparison."""
    stream = (live.status.get("actors") or {}).get("stream") or {}
    ticks = stream.get("ticks") or {}
    info: dict[str, Any] = {
        "model": stream.get("model"),
        "symbols": len(config.symbols),
        "ticks": ticks.get("received"),
        "ticks_quarantined": ticks.get("quarantined"),
        "ticks_late": ticks.get("late"),
        "risk_rejections": {
            "live": _rejections(live.orders),
            "backtest": _rejections(reference.orders),
        },
        "replay_seconds": round(live.seconds, 2),
        "backtest_seconds": round(reference.seconds, 2),
        "journal": str(config.journal_path),
    }
    try:
        info["predictions"] = compare_predictions(
            live_predictions(config.journal_path), reference.predictions
        )
    except Exception as exc:  # the comparison stands without this diagnostic
        info["predictions"] = {"error": f"{type(exc).__name__}: {exc}"}
    return info


def _rejections(orders: pl.DataFrame) -> dict[str, int]:
    """Rejected orders by reject code."""
    if orders.height == 0:
        return {}
    rejected = orders.filter(pl.col("status").str.to_lowercase() == "rejected")
    counts = rejected.group_by("reject_code").len().sort("reject_code")
    return {str(c): int(n) for c, n in counts.iter_rows()}


# ------------------------------------------------------------------------------- rendering


def _fmt_ts(ts_ns: int) -> str:
    if not ts_ns:
        return ""
    return datetime.fromtimestamp(ts_ns / 1e9).astimezone().strftime("%H:%M")


def _cell(values: dict[str, Any] | None, kind: str) -> str:
    if values is None:
        return "-"
    if kind == "fill":
        return f"{values['last_qty']} @ {values['last_price']:.4f}"
    text = f"{values['quantity']} {values.get('status') or ''}"
    if values.get("reject_code"):
        text += f" ({values['reject_code']})"
    return text


def parity_table(report: ParityReport, limit: int = 20) -> Any:
    """A Rich table: the figures, then the first ``limit`` differences with their causes."""
    from rich.table import Table

    table = Table(title=f"parity {report.day}: live replay vs backtest", show_lines=False)
    for column in ("", "live", "backtest", "matched", "identical"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row(
        "orders",
        f"{report.orders_live:,}",
        f"{report.orders_backtest:,}",
        f"{report.orders_matched:,}",
        f"{report.orders_identical:,}",
    )
    table.add_row(
        "fills",
        f"{report.fills_live:,}",
        f"{report.fills_backtest:,}",
        f"{report.fills_matched:,}",
        f"{report.fills_identical:,}",
    )
    if not report.differences:
        return table
    diffs = Table(title=f"differences ({len(report.differences)})")
    for column in ("time", "kind", "symbol", "side", "cause", "live", "backtest"):
        diffs.add_column(column)
    for d in report.differences[:limit]:
        diffs.add_row(
            _fmt_ts(d.ts_ns),
            d.kind,
            d.symbol,
            d.side,
            d.cause,
            _cell(d.live, d.kind),
            _cell(d.backtest, d.kind),
        )
    from rich.console import Group

    return Group(table, diffs)


def print_parity(report: ParityReport, console: Any, limit: int = 20) -> None:
    console.print(parity_table(report, limit))
    style = "green" if report.passed else "red"
    console.print(f"[{style}]{report.headline()}[/]", highlight=False)
    if len(report.differences) > limit:
        console.print(f"({len(report.differences) - limit} more differences in the parity report)")


def parity_html(report: ParityReport) -> str:
    """The parity result as an HTML fragment (the demo report's section, the file's body)."""
    e = html.escape
    head = (
        f"<p><b>{report.identical_share:.2%}</b> of {report.compared:,} orders and fills "
        f"identical in symbol, side, quantity and price (target {report.target:.0%}): "
        f"<b>{'parity holds' if report.passed else 'parity fails'}</b>.</p>"
    )
    info = report.info
    if info:
        head += (
            "<p>"
            + e(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in info.items() if k != "journal"))
            + "</p>"
        )
    rows = "".join(
        f"<tr><td>{k}</td><td>{a:,}</td><td>{b:,}</td><td>{m:,}</td><td>{i:,}</td></tr>"
        for k, a, b, m, i in (
            (
                "orders",
                report.orders_live,
                report.orders_backtest,
                report.orders_matched,
                report.orders_identical,
            ),
            (
                "fills",
                report.fills_live,
                report.fills_backtest,
                report.fills_matched,
                report.fills_identical,
            ),
        )
    )
    table = (
        "<table><tr><th></th><th>live</th><th>backtest</th><th>matched</th>"
        f"<th>identical</th></tr>{rows}</table>"
    )
    if report.differences:
        diff_rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{e(str(v))}</td>"
                for v in (
                    _fmt_ts(d.ts_ns),
                    d.kind,
                    d.symbol,
                    d.side,
                    d.cause,
                    _cell(d.live, d.kind),
                    _cell(d.backtest, d.kind),
                    d.detail,
                )
            )
            + "</tr>"
            for d in report.differences[:200]
        )
        table += (
            "<h3>Differences and their causes</h3><table><tr><th>time</th><th>kind</th>"
            "<th>symbol</th><th>side</th><th>cause</th><th>live</th><th>backtest</th>"
            f"<th>detail</th></tr>{diff_rows}</table>"
        )
    else:
        table += "<p>No differences.</p>"
    return head + table


def write_parity(
    report: ParityReport, directory: str | Path, tag: str | None = None
) -> tuple[Path, Path]:
    """``parity-<day>[-<tag>].json`` and ``.html`` under ``directory``; returns both."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"parity-{report.day.isoformat() if report.day else 'run'}"
    if tag:
        stem += "-" + "".join(c if c.isalnum() else "-" for c in tag)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    html_path = out / f"{stem}.html"
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>parity "
        f"{report.day}</title><style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;"
        "text-align:right}}table{{border-collapse:collapse}}</style></head><body>"
        f"<h1>Parity {report.day}: live replay vs backtest</h1>{parity_html(report)}"
        "</body></html>"
    )
    return json_path, html_path
