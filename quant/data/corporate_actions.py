"""Corporate actions and back-adjusted prices (CRSP / Yahoo conventions).

The lake stores what the exchange printed. Research needs a series without the artificial jumps
that splits, bonus issues (bedelsiz), rights issues (bedelli) and cash dividends leave in it, so
prices before each ex-date are multiplied by a factor that makes the last pre-event close
comparable with the first post-event one:

==============  =============================================  ===============
action          price factor                                   volume factor
==============  =============================================  ===============
split K:1       1 / K          (``ratio`` = shares after/before)  K
bonus           1 / B          (B = 1.5 for a 50% bonus)          B
rights          TERP / P,  TERP = (P + r·S) / (1 + r)            1
dividend D      (P - D) / P                                      1
==============  =============================================  ===============

``P`` is the last close before the ex-date (the cum price); ``r`` new shares per old one are
offered at ``S``. Volumes follow the Yahoo convention: only changes in the number of shares
outstanding for free (splits, bonus) rescale them; cash events do not. Factors compound: a row
of day ``t`` gets the product of the factors of every ex-date strictly after ``t``. A row's day
is :func:`trading_day`: the UTC date of a trade's ``ts``, or of a bar's middle (a BIST session,
06:40-15:10 UTC, sits inside one UTC date; a daily bar stamped at local midnight, which for
Istanbul is 21:00 UTC the day before, is dated by its middle, i.e. its own trading day). The
latest prices stay raw.

Actions of one symbol on one ex-date are combined as Borsa Istanbul does for simultaneous
bonus, rights and dividend (each entitlement counted on the old share)::

    theoretical price = (P - D + r·S) / (1 + r + b) / K,  factor = theoretical / P

(``b = B - 1``), which reduces to the single-action formulas above.
Adjusted prices are generally off the tick grid: they are for research, never for orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

import polars as pl

from quant.data.schema import CorporateActionKind, DataKind, conform

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

FACTOR_SCHEMA = {
    "symbol": pl.String,
    "ex_date": pl.Date,
    "reference_close": pl.Float64,
    "price_factor": pl.Float64,
    "volume_factor": pl.Float64,
}
"""Columns of :func:`adjustment_factors`: one row per symbol and ex-date."""

_KINDS = [k.value for k in CorporateActionKind]
_DAY = timedelta(days=1)


def trading_day(columns: Sequence[str]) -> pl.Expr:
    """The UTC date a row belongs to: of ``ts`` for trades and quotes, of the middle of a bar.

    The middle is taken at most half a day after ``ts``, so a bar's day is the date of ``ts`` or
    the next one; intraday bars of a BIST session keep the date of ``ts``.
    """
    ts = pl.col("ts")
    if "ts_end" not in columns:
        return ts.dt.date()
    length = pl.min_horizontal(
        pl.max_horizontal(pl.col("ts_end") - ts, pl.lit(timedelta(0))), pl.lit(_DAY)
    )
    return (ts + length / 2).dt.date()


_MAX_LISTED = 5


def _problem(rows: pl.DataFrame, message: str) -> str | None:
    if rows.height == 0:
        return None
    shown = "; ".join(
        f"{r['symbol']} {r['ex_date']} {r['kind']}"
        for r in rows.head(_MAX_LISTED).iter_rows(named=True)
    )
    more = f" (and {rows.height - _MAX_LISTED} more)" if rows.height > _MAX_LISTED else ""
    return f"{message}: {shown}{more}"


def validate_actions(actions: pl.DataFrame) -> pl.DataFrame:
    """Actions conformed to the lake schema and checked, sorted by symbol, ex-date and kind.

    Raises ``ValueError`` naming the offending actions: an unknown kind, a missing or
    non-positive ratio / price / amount, a bonus ratio not above 1, or two actions of one kind
    on the same symbol and ex-date.
    """
    frame = conform(actions, DataKind.CORPORATE_ACTIONS)
    nulls = [c for c in ("symbol", "ex_date", "kind") if frame.get_column(c).null_count()]
    if nulls:
        raise ValueError(f"corporate actions with null {', '.join(nulls)}")
    kind = pl.col("kind")

    def bad(column: str) -> pl.Expr:
        value = pl.col(column)
        return value.is_null() | value.is_nan() | value.is_infinite() | (value <= 0)

    checks = [
        (~kind.is_in(_KINDS), f"unknown kind (expected one of {', '.join(_KINDS)})"),
        (kind.is_in(["split", "bonus", "rights"]) & bad("ratio"), "ratio must be a number > 0"),
        ((kind == "bonus") & (pl.col("ratio") <= 1), "bonus ratio is shares after/before: > 1"),
        ((kind == "rights") & bad("price"), "rights issue needs a subscription price > 0"),
        ((kind == "dividend") & bad("amount"), "cash dividend needs an amount > 0"),
        (
            pl.struct("symbol", "ex_date", "kind").is_duplicated(),
            "more than one action of a kind on one symbol and ex-date",
        ),
    ]
    problems = [_problem(frame.filter(mask), text) for mask, text in checks]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError("invalid corporate actions: " + " | ".join(problems))
    return frame.sort("symbol", "ex_date", "kind")


def _daily_closes(closes: pl.DataFrame) -> pl.DataFrame:
    """Last close per symbol and day from rows with ``ts`` (bars, trades) or ``date``."""
    if "close" not in closes.columns and "price" in closes.columns:
        closes = closes.rename({"price": "close"})
    if "ts" in closes.columns:
        day = trading_day(closes.columns)
        ordered = closes.sort("symbol", "ts", maintain_order=True)
    elif "date" in closes.columns:
        day = pl.col("date").cast(pl.Date)
        ordered = closes.sort("symbol", "date", maintain_order=True)
    else:
        raise ValueError("closes need a 'ts' or 'date' column beside 'symbol' and 'close'")
    return ordered.group_by("symbol", day.alias("day"), maintain_order=True).agg(
        pl.col("close").last()
    )


def adjustment_factors(actions: pl.DataFrame, closes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Price and volume factor per (symbol, ex-date), with the close ``P`` used.

    ``closes`` has ``symbol``, ``ts`` (or ``date``) and ``close`` (or ``price``): bars or trades.
    Rights issues and dividends need ``P`` = the last close on a day before the ex-date; when no
    such close exists the factor is null (it applies to no stored row, and applying it to rows
    raises). Raises ``ValueError`` when a dividend is not below ``P`` or a rights subscription
    price is not below ``P`` (the right would be worthless and TERP would exceed ``P``).
    """
    acts = validate_actions(actions)
    if acts.height == 0:
        return pl.DataFrame(schema=FACTOR_SCHEMA)
    kind = pl.col("kind")
    per = acts.group_by("symbol", "ex_date", maintain_order=True).agg(
        dividend=pl.col("amount").filter(kind == "dividend").sum(),
        rights_ratio=pl.col("ratio").filter(kind == "rights").sum(),
        rights_price=pl.col("price").filter(kind == "rights").first(),
        bonus=(pl.col("ratio") - 1.0).filter(kind == "bonus").sum(),
        split=pl.col("ratio").filter(kind == "split").product(),
    )
    needs = (pl.col("dividend") > 0) | (pl.col("rights_ratio") > 0)
    if closes is not None and closes.height:
        daily = _daily_closes(closes)
        reference = (
            per.select("symbol", "ex_date")
            .join(daily, on="symbol")
            .filter(pl.col("day") < pl.col("ex_date"))
            .group_by("symbol", "ex_date")
            .agg(reference_close=pl.col("close").sort_by("day").last())
        )
        per = per.join(reference, on=["symbol", "ex_date"], how="left", maintain_order="left")
    else:
        per = per.with_columns(reference_close=pl.lit(None, dtype=pl.Float64))
    per = per.with_columns(reference_close=pl.when(needs).then(pl.col("reference_close")))

    p = pl.col("reference_close")
    too_big = per.filter(
        p.is_not_null()
        & (
            ((pl.col("dividend") > 0) & (pl.col("dividend") >= p))
            | ((pl.col("rights_ratio") > 0) & (pl.col("rights_price") >= p))
        )
    )
    if too_big.height:
        shown = "; ".join(
            f"{r['symbol']} {r['ex_date']} (close before {r['reference_close']}, dividend "
            f"{r['dividend']}, rights price {r['rights_price']})"
            for r in too_big.head(_MAX_LISTED).iter_rows(named=True)
        )
        raise ValueError(
            "a dividend or rights subscription price is not below the close before the ex-date: "
            + shown
        )
    shares = 1.0 + pl.col("rights_ratio") + pl.col("bonus")
    theoretical = (
        p - pl.col("dividend") + pl.col("rights_ratio") * pl.col("rights_price").fill_null(0.0)
    ) / shares
    price_factor = pl.when(needs).then(theoretical / p).otherwise(
        1.0 / (1.0 + pl.col("bonus"))
    ) / pl.col("split")
    return (
        per.select(
            "symbol",
            "ex_date",
            "reference_close",
            price_factor.alias("price_factor"),
            ((1.0 + pl.col("bonus")) * pl.col("split")).alias("volume_factor"),
        )
        .cast(FACTOR_SCHEMA)
        .sort("symbol", "ex_date")
    )


def cumulative_factors(frame: pl.DataFrame, factors: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``_price_factor`` and ``_volume_factor``: the product over later ex-dates."""
    day = trading_day(frame.columns).alias("_day")
    days = frame.select("symbol", day).unique()
    later = days.join(factors, on="symbol").filter(pl.col("ex_date") > pl.col("_day"))
    unpriced = later.filter(pl.col("price_factor").is_null()).select("symbol", "ex_date").unique()
    if unpriced.height:
        shown = ", ".join(
            f"{s} {d}" for s, d in unpriced.sort("symbol", "ex_date").head(5).iter_rows()
        )
        raise ValueError(
            f"cannot back-adjust across {shown}: no close before the ex-date to price the "
            "rights issue or dividend"
        )
    per_day = later.group_by("symbol", "_day").agg(
        _price_factor=pl.col("price_factor").product(),
        _volume_factor=pl.col("volume_factor").product(),
    )
    return (
        frame.with_columns(day)
        .join(per_day, on=["symbol", "_day"], how="left", maintain_order="left")
        .with_columns(pl.col("_price_factor", "_volume_factor").fill_null(1.0))
        .drop("_day")
    )


def _adjust(
    frame: Frame,
    actions: pl.DataFrame,
    closes: pl.DataFrame | None,
    prices: list[str],
    volumes: list[str],
    close_column: str,
) -> Frame:
    lazy = isinstance(frame, pl.LazyFrame)
    data = frame.collect() if lazy else frame
    columns = data.columns
    if closes is None:
        times = [c for c in ("ts", "ts_end") if c in columns]
        closes = data.select("symbol", *times, pl.col(close_column).alias("close"))
    factors = adjustment_factors(
        actions.filter(pl.col("symbol").is_in(data["symbol"].unique().to_list())), closes
    )
    out = (
        cumulative_factors(data, factors)
        .with_columns(
            *[(pl.col(c) * pl.col("_price_factor")).alias(c) for c in prices],
            *[
                (pl.col(c) * pl.col("_volume_factor")).round().cast(data.schema[c]).alias(c)
                for c in volumes
            ],
        )
        .select(columns)
    )
    return out.lazy() if lazy else out


def adjust_bars(bars: Frame, actions: pl.DataFrame, closes: pl.DataFrame | None = None) -> Frame:
    """Back-adjusted bars: OHLC and VWAP times the price factor, volume times the volume factor.

    ``closes`` prices the rights issues and dividends; by default the bars' own closes (pass
    more history when the bars do not reach back to the day before each ex-date). Volumes are
    rounded to whole shares.
    """
    return _adjust(
        bars, actions, closes, ["open", "high", "low", "close", "vwap"], ["volume"], "close"
    )


def adjust_trades(
    trades: Frame, actions: pl.DataFrame, closes: pl.DataFrame | None = None
) -> Frame:
    """Back-adjusted trades: price times the price factor, size times the volume factor.

    ``closes`` defaults to the trades themselves (the last trade of a day is its close).
    """
    return _adjust(trades, actions, closes, ["price"], ["size"], "price")
