"""The research data set: bars in, samples (X, y, t1, weights) out, raw bars kept for backtests.

A ``ResearchDataset`` holds the 1-minute bars of a window as stored (raw prices) and the
corporate actions of its symbols. From them, for each trial's parameters:

1. **Research bars**: the minute bars resampled to ``bar_interval`` (``resample_bars``: open
   first, high max, low min, close last, volumes and trade counts summed, VWAP
   volume-weighted; a bar opens on the interval grid, aligned on the UTC epoch like
   ``quant.data.bars.time_bars``, and closes at ``ts + interval``, the instant its values are
   known even when its last minutes saw no trade). Then back-adjusted for the corporate actions
   that fall *inside* the window, so a split is not a return. Actions after the window would
   only multiply every price by a constant, which changes no feature or label here (they are
   scale-free, below), and leaving them out keeps future actions out of past values.
2. **Features** (``feature_set``): a ``quant.features.FeaturePipeline`` over the research bars,
   stamped at each bar's ``ts_end``. The set is deliberately scale-free (log returns, realised
   volatilities, RSI, distance to the session VWAP, volume z-score, time of day, market beta,
   residual momentum): the model pools symbols priced from 5 to 2,800 TRY, and a value that
   does not depend on the price level does not depend on back-adjustment factors either.
3. **Events and labels**, per symbol: CUSUM events at ``cusum_k`` x the EWM volatility of bar
   returns, triple-barrier labels scaled by that volatility over the holding period
   (``TrialParams`` says exactly how), average-uniqueness sample weights over the symbol's own
   bars; then all symbols concatenated and sorted by ``t0`` (ties by symbol).
4. **Samples**: the features at each event's ``t0`` (the bar close the event fired on), the
   label, ``t1`` (the purged splitters' input), the weights, and the session each event
   belongs to.

The raw minute bars stay for the backtests: trading uses raw prices and the engine applies
the corporate actions itself. Samples are cached per parameter set (features and labels
separately), so trials that differ only in model or strategy share them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from quant.data.bars import parse_every
from quant.data.corporate_actions import adjust_bars, trading_day
from quant.data.lake import Lake
from quant.data.schema import DataKind, conform, polars_schema
from quant.features import (
    RSI,
    CloseToCloseVol,
    Feature,
    FeaturePipeline,
    LogReturn,
    MarketBeta,
    ParkinsonVol,
    ResidualMomentum,
    TimeOfDay,
    VolumeZScore,
    VwapDistance,
)
from quant.labels import average_uniqueness, close_series, cusum_filter, ewm_volatility
from quant.labels import triple_barrier as triple_barrier_labels
from quant.research.params import TrialParams

_CACHE_SIZE = 4
_NS_PER_MINUTE = 60_000_000_000


class DataWindowError(ValueError):
    """The data cannot support the requested evaluation (too short, too few samples ...)."""


# --------------------------------------------------------------------------- bars


def resample_bars(bars: pl.DataFrame, every: str) -> pl.DataFrame:
    """BARS to coarser BARS (see the module docstring), sorted by symbol and ``ts``.

    Every input bar must be no longer than ``every`` (they are grouped by the interval their
    ``ts`` falls in); bars already on the ``every`` grid come back unchanged.
    """
    interval = parse_every(every)
    seconds = int(interval.total_seconds())
    missing = [c for c in polars_schema(DataKind.BARS).names() if c not in bars.columns]
    if missing:
        raise ValueError(f"bars are missing column(s): {', '.join(missing)}")
    if bars.height == 0:
        return conform(bars.clear(), DataKind.BARS)
    longest = bars.select((pl.col("ts_end") - pl.col("ts")).max()).item()
    if longest is not None and longest > interval:
        raise ValueError(
            f"cannot resample {longest} bars to {every}: research bars must be at least as long "
            "as the stored bars"
        )
    volume = pl.col("volume").sum()
    out = (
        bars.lazy()
        .sort("symbol", "ts")
        .group_by("symbol", pl.col("ts").dt.truncate(f"{seconds}s"), maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            volume.alias("volume"),
            pl.when(volume > 0)
            .then((pl.col("vwap") * pl.col("volume")).sum() / volume)
            .otherwise(pl.col("close").last())
            .alias("vwap"),
            pl.col("trade_count").sum(),
        )
        .with_columns(ts_end=pl.col("ts") + pl.duration(seconds=seconds))
        .collect()
    )
    return conform(out, DataKind.BARS).sort("symbol", "ts")


def with_day(bars: pl.DataFrame) -> pl.DataFrame:
    """``bars`` with the trading ``day`` each belongs to (as the backtest engine assigns it)."""
    return bars.with_columns(trading_day(bars.columns).alias("day"))


# --------------------------------------------------------------------------- features


def feature_set(params: TrialParams) -> list[Feature]:
    """The trial's features: scale-free by design (see the module docstring)."""
    features: list[Feature] = [LogReturn(h) for h in params.return_windows]
    features += [
        CloseToCloseVol(params.vol_window),
        ParkinsonVol(params.vol_window),
        RSI(params.rsi_window),
        VwapDistance(),
        VolumeZScore(params.volume_window),
        TimeOfDay("sin"),
        TimeOfDay("cos"),
        MarketBeta(params.beta_window),
        ResidualMomentum(params.momentum_window, params.beta_window),
    ]
    return features


def feature_pipeline(params: TrialParams) -> FeaturePipeline:
    """The pipeline computing ``feature_set(params)`` over bars (batch and stream): what a live
    signal service rebuilds from a registered model's ``trial_params``."""
    return FeaturePipeline(feature_set(params), source="bars")


def feature_spec(params: TrialParams) -> list[dict[str, Any]]:
    """The features as ``{"name", "class", "params"}`` records (for manifests)."""
    return [
        {"name": f.name, "class": type(f).__name__, "params": f.params} for f in feature_set(params)
    ]


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Samples:
    """Labelled events of all symbols, sorted by ``t0`` (then symbol), with aligned features.

    ``events`` has one row per sample: ``symbol``, ``t0`` (the event's bar close), ``t1`` (the
    label's end), ``day`` (the session of t0), ``label``, ``ret`` (the label's return),
    ``target`` (the barrier scale) and ``weight`` (average uniqueness within the symbol).
    ``X`` holds the feature columns only, row for row.
    """

    events: pl.DataFrame
    X: pl.DataFrame
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.events.height

    @property
    def y(self) -> np.ndarray:
        return self.events["label"].to_numpy()

    @property
    def weights(self) -> np.ndarray:
        return self.events["weight"].to_numpy()

    @property
    def t0_ns(self) -> np.ndarray:
        return self.events["t0"].dt.epoch("ns").to_numpy()

    @property
    def t1_ns(self) -> np.ndarray:
        return self.events["t1"].dt.epoch("ns").to_numpy()

    @property
    def t1(self) -> pd.Series:
        """t0 -> t1 as the purged splitters take it (tz-aware UTC, in sample order)."""
        t0 = pd.DatetimeIndex(pd.to_datetime(self.t0_ns, utc=True), name="t0")
        return pd.Series(pd.to_datetime(self.t1_ns, utc=True), index=t0, name="t1")

    @property
    def days(self) -> list[date]:
        return self.events["day"].to_list()

    @property
    def classes(self) -> list[int]:
        return sorted(set(self.y.tolist()))


def _labels_for_symbol(bars: pl.DataFrame, params: TrialParams) -> pd.DataFrame | None:
    """Events, labels and uniqueness weights of one symbol's research bars."""
    close = close_series(bars)
    if close.size < 3:
        return None
    vol = ewm_volatility(close, span=params.vol_span, min_periods=max(2, params.vol_span // 2))
    threshold = vol * params.cusum_k
    events = cusum_filter(close, threshold)
    if len(events) == 0:
        return None
    target = vol * math.sqrt(params.vertical_bars)
    labels = triple_barrier_labels(
        close,
        events,
        target=target,
        pt_sl=params.pt_sl,
        vertical_barrier=params.vertical_bars,
        vertical_label=params.vertical_label,
    )
    if params.vertical_label == "sign":
        # a vertical touch with exactly zero return (prices sit on a tick grid) has no sign:
        # in sign mode the model is binary, up or down, and such an event is no sample
        labels = labels[labels["label"] != 0]
    if labels.empty:
        return None
    labels["weight"] = average_uniqueness(close.index, labels["t1"]).to_numpy()
    return labels


def build_samples(bars: pl.DataFrame, params: TrialParams, features: pl.DataFrame) -> Samples:
    """Samples from adjusted research bars (with ``day``) and their feature frame."""
    pieces = []
    for (symbol,), group in bars.group_by("symbol", maintain_order=True):
        labels = _labels_for_symbol(group.drop("day"), params)
        if labels is None:
            continue
        pieces.append(
            pl.DataFrame(
                {
                    "symbol": [symbol] * len(labels),
                    "t0": _utc(labels.index),
                    "t1": _utc(labels["t1"]),
                    "label": labels["label"].to_numpy().astype(np.int64),
                    "ret": labels["ret"].to_numpy(),
                    "target": labels["target"].to_numpy(),
                    "weight": labels["weight"].to_numpy(),
                }
            )
        )
    names = tuple(c for c in features.columns if c not in ("symbol", "ts"))
    if not pieces:
        empty = pl.DataFrame(
            schema={
                "symbol": pl.String,
                "t0": pl.Datetime("ns", "UTC"),
                "t1": pl.Datetime("ns", "UTC"),
                "label": pl.Int64,
                "ret": pl.Float64,
                "target": pl.Float64,
                "weight": pl.Float64,
                "day": pl.Date,
            }
        )
        return Samples(empty, features.select(names).clear(), names)
    events = pl.concat(pieces).sort("t0", "symbol")
    days = bars.select("symbol", pl.col("ts_end").alias("t0"), "day")
    events = events.join(days, on=["symbol", "t0"], how="left", maintain_order="left")
    joined = events.join(
        features.rename({"ts": "t0"}), on=["symbol", "t0"], how="left", maintain_order="left"
    )
    if joined.height != events.height or joined["day"].null_count():
        raise RuntimeError("events do not line up with the research bars")  # a bug, not input
    return Samples(joined.select(events.columns), joined.select(names), names)


def _utc(values: Any) -> pl.Series:
    index = pd.DatetimeIndex(values)
    return pl.Series(index.as_unit("ns").asi8).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")


# --------------------------------------------------------------------------- the data set


@dataclass
class ResearchDataset:
    """Bars of a window, ready for trials (see the module docstring).

    Build with ``from_lake`` or ``from_frame``. ``minute_bars`` are raw (as stored, sorted by
    symbol and ``ts``); ``corporate_actions`` those of the symbols (any dates).
    """

    minute_bars: pl.DataFrame
    corporate_actions: pl.DataFrame
    bar_interval: str = "15m"
    synthetic: bool = False
    _research: OrderedDict[str, tuple[pl.DataFrame, pl.DataFrame]] = field(
        default_factory=OrderedDict, repr=False
    )
    _features: OrderedDict[tuple[Any, ...], pl.DataFrame] = field(
        default_factory=OrderedDict, repr=False
    )
    _samples: OrderedDict[tuple[Any, ...], Samples] = field(default_factory=OrderedDict, repr=False)
    _hash: str | None = field(default=None, repr=False)
    _minute_days: Any = field(default=None, repr=False)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_frame(
        cls,
        bars: pl.DataFrame,
        corporate_actions: pl.DataFrame | None = None,
        bar_interval: str = "15m",
        *,
        synthetic: bool | None = None,
    ) -> ResearchDataset:
        """From bars in memory (BARS layout, raw prices, bars of at most ``bar_interval``)."""
        if not isinstance(bars, pl.DataFrame):
            raise TypeError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
        if bars.height == 0:
            raise DataWindowError("no bars: the research window is empty")
        TrialParams(bar_interval=bar_interval)  # validates the interval
        frame = conform(bars, DataKind.BARS).sort("symbol", "ts")
        actions = (
            corporate_actions
            if corporate_actions is not None
            else pl.DataFrame(schema=polars_schema(DataKind.CORPORATE_ACTIONS))
        )
        symbols = frame["symbol"].unique().to_list()
        if synthetic is None:
            synthetic = bool(symbols) and all(str(s).startswith("SYN") for s in symbols)
        dataset = cls(frame, actions, bar_interval, synthetic)
        dataset.research_bars()  # fail early on bars that cannot be resampled
        return dataset

    @classmethod
    def from_lake(
        cls,
        lake: Lake | str,
        symbols: Iterable[str] | None = None,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        bar_interval: str = "15m",
    ) -> ResearchDataset:
        """Raw bars of ``symbols`` in ``[start, end)`` and their corporate actions from a lake."""
        lake = Lake(lake) if isinstance(lake, str) else lake
        wanted = None if symbols is None else sorted(symbols)
        try:
            bars = lake.read_bars(wanted, start, end, adjusted=False)
        except ValueError as exc:
            if not str(exc).startswith("no bars data"):
                raise
            bars = pl.DataFrame()
        if bars.height == 0:
            raise DataWindowError(
                f"no bars in the lake for {', '.join(wanted) if wanted else 'any symbol'} "
                f"from {start or 'the beginning'} to {end or 'the end'}"
            )
        actions = lake.read_corporate_actions(bars["symbol"].unique().to_list())
        return cls.from_frame(bars, actions, bar_interval)

    # -- what it holds --------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        return sorted(self.minute_bars["symbol"].unique().to_list())

    @property
    def sessions(self) -> list[date]:
        """Trading days of the window, in order."""
        return self.research_bars()["day"].unique().sort().to_list()

    @property
    def data_hash(self) -> str:
        """sha256 of the raw bars and corporate actions (``quant.models.hash_frame``): the
        data snapshot a registered model names."""
        if self._hash is None:
            from quant.models.registry import hash_frame

            bars = hash_frame(self.minute_bars)
            actions = hash_frame(self.corporate_actions.sort(self.corporate_actions.columns))
            self._hash = hash_frame(
                pl.DataFrame({"part": ["bars", "actions"], "hash": [bars, actions]})
            )
        return self._hash

    def describe(self) -> dict[str, Any]:
        sessions = self.sessions
        return {
            "symbols": self.symbols,
            "sessions": len(sessions),
            "first_session": str(sessions[0]) if sessions else None,
            "last_session": str(sessions[-1]) if sessions else None,
            "minute_bars": self.minute_bars.height,
            "bar_interval": self.bar_interval,
            "synthetic": self.synthetic,
        }

    # -- derived frames (cached) ----------------------------------------------------------

    def _research_pair(self, interval: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        hit = self._research.get(interval)
        if hit is not None:
            self._research.move_to_end(interval)
            return hit
        raw = with_day(resample_bars(self.minute_bars, interval))
        first, last = raw["day"].min(), raw["day"].max()
        actions = self.corporate_actions.filter(
            (pl.col("ex_date") > first)
            & (pl.col("ex_date") <= last)
            & pl.col("symbol").is_in(raw["symbol"].unique().to_list())
        )
        adjusted = (
            adjust_bars(raw.drop("day"), actions).with_columns(raw["day"])
            if actions.height
            else raw
        )
        pair = (raw, adjusted)
        _remember(self._research, interval, pair)
        return pair

    def research_bars(self, interval: str | None = None, adjusted: bool = True) -> pl.DataFrame:
        """Bars at ``interval`` (default: the data set's) with a ``day`` column, back-adjusted
        for the actions inside the window (``adjusted=False``: raw prices)."""
        raw, adj = self._research_pair(interval or self.bar_interval)
        return adj if adjusted else raw

    def features(self, params: TrialParams) -> pl.DataFrame:
        """``feature_set(params)`` over the research bars: ``symbol, ts`` (bar close) and one
        column per feature."""
        key = params.feature_key()
        hit = self._features.get(key)
        if hit is None:
            bars = self.research_bars(params.bar_interval)
            hit = feature_pipeline(params).batch(bars.drop("day"))
            _remember(self._features, key, hit)
        return hit

    def samples(self, params: TrialParams) -> Samples:
        """The labelled, weighted events with their features (cached)."""
        key = (params.label_key(), params.feature_key())
        hit = self._samples.get(key)
        if hit is None:
            bars = self.research_bars(params.bar_interval)
            hit = build_samples(bars, params, self.features(params))
            _remember(self._samples, key, hit)
        return hit

    def minute_window(self, first: date, last: date, warmup_sessions: int = 0) -> pl.DataFrame:
        """Raw minute bars of sessions ``[first, last]``, preceded by up to ``warmup_sessions``
        earlier sessions (what a backtest of that window reads to seed its statistics)."""
        sessions = self.sessions
        k = sessions.index(first) if first in sessions else 0
        start = sessions[max(0, k - warmup_sessions)]
        if self._minute_days is None:
            self._minute_days = self.minute_bars.select(trading_day(self.minute_bars.columns))
            self._minute_days = self._minute_days.to_series()
        return self.minute_bars.filter(self._minute_days.is_between(start, last))


def _remember(cache: OrderedDict, key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
