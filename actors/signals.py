"""Live signals: research bars from the streamed minute bars, research features, a model score,
and the research strategy fed one prediction at a time.

The chain is the research one, run incrementally:

1. ``ResearchBarBuilder`` folds the minute bars the stream processor emits into research bars
   (``TrialParams.bar_interval``, 15 minutes by default) exactly as
   ``quant.research.dataset.resample_bars`` does: intervals on the UTC epoch grid, open first,
   high max, low min, close last, volume and trade count summed, VWAP volume-weighted, and
   ``ts_end = ts + interval``. A research bar is complete once a minute slice at or after its
   end has been seen.
2. ``quant.research.dataset.feature_pipeline(params).stream()`` computes the research features
   slice by slice (``update_slice``: the factor features need every symbol of the instant).
3. A ``SignalModel`` scores the feature rows: ``predict_proba(X) -> (p_up, p_down)``. The
   registry's production model (``RegistrySignalModel``) is the default; a Ray Serve handle can
   stand in behind the same two attributes later.
4. Each score becomes a prediction ``(symbol, ts, p_up, p_down, expires)`` stamped at the
   research bar's close and valid for ``vertical_bars`` research bars (the label's vertical
   barrier: the horizon the model was trained to predict), and is appended to a
   ``LivePredictionStrategy``, the research ``PredictionStrategy`` that accepts predictions as
   they are made. A prediction acts on minute bars opening at or after its ``ts``, so adding it
   before the next minute slice is processed gives the strategy exactly the targets it would
   have had with every prediction known up front; ``batch_predictions`` computes the same
   predictions over a whole frame (the backtest side of the parity check).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

from quant.data.bars import parse_every
from quant.data.schema import DataKind, conform
from quant.research.params import TrialParams
from quant.research.signals import PredictionStrategy, SymbolSignals
from quant.sim.strategy import Bar


class SignalModel(Protocol):
    """What the stream processor needs of a model (a Serve handle wrapper can implement it)."""

    name: str
    feature_names: Sequence[str]

    def predict_proba(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p_up, p_down)`` for each row of ``features`` (columns in ``feature_names``)."""
        ...


class RegistrySignalModel:
    """A registered model version (production by default) and the trial it was trained with."""

    def __init__(self, registry_root: str, name: str, stage: str | None = "production") -> None:
        from quant.models.registry import ModelRegistry

        registry = ModelRegistry(registry_root)
        version = registry.get(name, stage=stage)  # type: ignore[arg-type]
        self.version = version
        self.model = registry.load(name, version.version)
        manifest = version.manifest
        self.name = f"{name}:v{version.version}"
        self.feature_names = list(manifest.features)
        raw = manifest.extra.get("trial_params")
        if raw is None:
            raise ValueError(
                f"model {self.name} has no trial_params in its manifest: the live features "
                "cannot be rebuilt"
            )
        self.params = TrialParams.model_validate(raw)

    def predict_proba(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from quant.research.evaluate import up_down

        proba = self.model.predict_proba(features)
        return up_down(self.model, proba)


class MomentumSignalModel:
    """A transparent rule model: p(up) = logistic(k x the last research-bar log return).

    Used when no model is registered (and in tests): it reads one research feature, so what it
    does is obvious from the data, and it exercises the same path a trained model takes.
    """

    def __init__(self, scale: float = 400.0, feature: str = "log_return_1") -> None:
        self.name = f"momentum:{feature}:{scale:g}"
        self.scale = scale
        self.feature_names = [feature]

    def predict_proba(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.nan_to_num(np.asarray(features, dtype=float)[:, 0], nan=0.0)
        p_up = 1.0 / (1.0 + np.exp(-self.scale * x))
        return p_up, 1.0 - p_up


@dataclass(slots=True)
class _Bucket:
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    notional: float
    trade_count: int


class ResearchBarBuilder:
    """Minute bars in, research bars out (see the module docstring, step 1)."""

    def __init__(self, interval: str) -> None:
        self.every_ns = int(parse_every(interval).total_seconds()) * 1_000_000_000
        self.open: dict[str, _Bucket] = {}

    def add(self, bars: Iterable[Bar]) -> None:
        step = self.every_ns
        for bar in bars:
            start = bar.ts_ns // step * step
            b = self.open.get(bar.symbol)
            if b is not None and b.ts != start:
                raise ValueError(
                    f"minute bar of {bar.symbol} at {bar.ts_ns} arrived before its research bar "
                    "closed: call close_until first"
                )
            vwap = bar.vwap if bar.vwap == bar.vwap else bar.close
            if b is None:
                self.open[bar.symbol] = _Bucket(
                    start,
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    int(bar.volume),
                    vwap * bar.volume,
                    int(getattr(bar, "trade_count", 0)),
                )
                continue
            b.high = max(b.high, bar.high)
            b.low = min(b.low, bar.low)
            b.close = bar.close
            b.volume += int(bar.volume)
            b.notional += vwap * bar.volume
            b.trade_count += int(getattr(bar, "trade_count", 0))

    def close_until(self, ts_ns: int) -> list[dict[str, Any]]:
        """Research bars ending at or before ``ts_ns``, as feature events, by (ts_end, symbol)."""
        done = []
        for symbol in sorted(self.open):
            b = self.open[symbol]
            end = b.ts + self.every_ns
            if end <= ts_ns:
                done.append(self._event(symbol, b))
        for e in done:
            del self.open[e["symbol"]]
        done.sort(key=lambda e: (e["ts_end"], e["symbol"]))
        return done

    def flush(self) -> list[dict[str, Any]]:
        return self.close_until(2**62)

    def _event(self, symbol: str, b: _Bucket) -> dict[str, Any]:
        vwap = b.notional / b.volume if b.volume > 0 else b.close
        return {
            "symbol": symbol,
            "ts": b.ts,
            "ts_end": b.ts + self.every_ns,
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
            "vwap": vwap,
            "trade_count": b.trade_count,
        }


class LivePredictionStrategy(PredictionStrategy):
    """``PredictionStrategy`` that takes its predictions as they are made (``extend``)."""

    name = "live_prediction"

    def __init__(
        self,
        threshold: float = 0.55,
        *,
        position_notional: float = 50_000.0,
        long_only: bool = True,
        strategy_id: str | None = None,
    ) -> None:
        super().__init__(
            _empty_predictions(),
            threshold,
            position_notional=position_notional,
            long_only=long_only,
            strategy_id=strategy_id,
        )
        self._rows: list[tuple[str, int, float, float, int]] = []

    def extend(self, predictions: Sequence[tuple[str, int, float, float, int]]) -> None:
        """Append predictions ``(symbol, ts, p_up, p_down, expires)`` made after every
        prediction already held for their symbol (time order keeps the cursors of
        ``target_on_bar`` valid). Only the new ones are validated and indexed (``_index``),
        then appended per symbol: re-indexing the whole day at every research bar grew with
        the square of the day's predictions."""
        if not predictions:
            return
        fresh = self._index_rows(predictions)
        for symbol, new in fresh.items():
            held = self._signals.get(symbol)
            if held is not None and held.ts.size and new.ts[0] <= held.ts[-1]:
                raise ValueError(
                    f"a prediction for {symbol} at {np.datetime64(int(new.ts[0]), 'ns')} is not "
                    f"after the last one held ({np.datetime64(int(held.ts[-1]), 'ns')})"
                )
        for symbol, new in fresh.items():
            held = self._signals.get(symbol)
            self._signals[symbol] = (
                new
                if held is None
                else SymbolSignals(
                    np.concatenate([held.ts, new.ts]),
                    np.concatenate([held.side, new.side]),
                    np.concatenate([held.expires, new.expires]),
                )
            )
        self._rows.extend(predictions)
        self.n_predictions = len(self._rows)

    def predictions(self) -> pl.DataFrame:
        return _prediction_frame(self._rows)


_PREDICTION_SCHEMA = {
    "symbol": pl.String,
    "ts": pl.Int64,
    "p_up": pl.Float64,
    "p_down": pl.Float64,
    "expires": pl.Int64,
}


def _prediction_frame(rows: Sequence[tuple[str, int, float, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=_PREDICTION_SCHEMA, orient="row")


def _empty_predictions() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"symbol": pl.String, "ts": pl.Int64, "p_up": pl.Float64, "p_down": pl.Float64}
    )


class LiveSignals:
    """Research bars -> streaming features -> model -> predictions (steps 1 to 4)."""

    def __init__(self, model: SignalModel, params: TrialParams) -> None:
        from quant.research.dataset import feature_pipeline

        self.model = model
        self.params = params
        self.builder = ResearchBarBuilder(params.bar_interval)
        self.pipeline = feature_pipeline(params)
        self.features = self.pipeline.stream()
        names = list(self.pipeline.names)
        missing = [f for f in model.feature_names if f not in names]
        if missing:
            raise ValueError(f"model {model.name} needs features the pipeline lacks: {missing}")
        self.columns = [names.index(f) for f in model.feature_names]
        self.horizon_ns = params.vertical_bars * self.builder.every_ns
        self.scored = 0

    def prepare(self) -> None:
        """Load what the first research bar would otherwise load on the clock: the feature
        kernels (numba's compiled code, read from its cache on first call, about a third of a
        second) and the model's first prediction. A live process does this before the open;
        the features of a throwaway stream are fed, so the real ones are untouched."""
        ts = 0
        row = {
            "symbol": "__prepare__",
            "ts": ts,
            "ts_end": ts + self.builder.every_ns,
            "open": 10.0,
            "high": 10.0,
            "low": 10.0,
            "close": 10.0,
            "volume": 1.0,
            "vwap": 10.0,
            "trade_count": 1,
        }
        values = self.pipeline.stream().update_slice({row["symbol"]: row})
        X = np.array([values[row["symbol"]][self.columns]])
        self.model.predict_proba(np.nan_to_num(X))

    def warm_up(self, research_bars: pl.DataFrame) -> int:
        """Feed history (research bars, sorted by ts_end then symbol) through the features
        without scoring; returns the slices fed."""
        if research_bars.height == 0:
            return 0
        frame = research_bars
        if isinstance(frame.schema["ts"], pl.Datetime):
            frame = frame.with_columns(pl.col("ts", "ts_end").dt.epoch("ns"))
        n = 0
        for (_end,), part in frame.sort("ts_end", "symbol").group_by("ts_end", maintain_order=True):
            self.features.update_slice({r["symbol"]: r for r in part.iter_rows(named=True)})
            n += 1
        return n

    def on_minute_bars(
        self, bars: list[Bar], ts_ns: int
    ) -> list[tuple[str, int, float, float, int]]:
        """Fold in the minute bars of the slice closing at ``ts_ns`` and score the research
        bars complete by then (those ending at or before ``ts_ns``)."""
        out = self._close(min((b.ts_ns for b in bars), default=ts_ns))
        self.builder.add(bars)
        return out + self._close(ts_ns)

    def flush(self) -> list[tuple[str, int, float, float, int]]:
        return self._close(2**62)

    def _close(self, ts_ns: int) -> list[tuple[str, int, float, float, int]]:
        done = self.builder.close_until(ts_ns)
        out: list[tuple[str, int, float, float, int]] = []
        start = 0
        while start < len(done):
            end = start
            stamp = done[start]["ts_end"]
            while end < len(done) and done[end]["ts_end"] == stamp:
                end += 1
            group = done[start:end]
            values = self.features.update_slice({e["symbol"]: e for e in group})
            symbols = list(values)
            X = np.array([values[s][self.columns] for s in symbols])
            p_up, p_down = self.model.predict_proba(X)
            for s, u, d in zip(symbols, p_up, p_down, strict=True):
                if math.isfinite(u) and math.isfinite(d):
                    out.append((s, int(stamp), float(u), float(d), int(stamp) + self.horizon_ns))
            self.scored += len(symbols)
            start = end
        return out


def batch_predictions(
    model: SignalModel,
    params: TrialParams,
    minute_bars: pl.DataFrame,
    warmup_until_ns: int,
    history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The predictions ``LiveSignals`` makes, computed over a whole frame of minute bars (the
    backtest side of the parity check): scores research bars ending after ``warmup_until_ns``.

    ``history``: research bars before the frame (what ``LiveSignals.warm_up`` was given), put
    in front of the frame's own research bars so the features see the same past."""
    from quant.research.dataset import feature_pipeline, resample_bars

    research = resample_bars(minute_bars, params.bar_interval)
    if history is not None and history.height:
        past = conform(history, DataKind.BARS)
        first = research["ts"].min() if research.height else None
        if first is not None:
            past = past.filter(pl.col("ts") < first)
        research = pl.concat([past.select(research.columns), research]).sort("symbol", "ts")
    features = feature_pipeline(params).batch(research)
    names = list(model.feature_names)
    ends = (
        features["ts"].dt.epoch("ns")
        if isinstance(features.schema["ts"], pl.Datetime)
        else features["ts"]
    )
    scored = features.with_columns(ends.alias("_end")).filter(pl.col("_end") > warmup_until_ns)
    if scored.height == 0:
        return _empty_predictions().with_columns(pl.lit(0, pl.Int64).alias("expires"))
    p_up, p_down = model.predict_proba(scored.select(names).to_numpy())
    horizon = params.vertical_bars * int(parse_every(params.bar_interval).total_seconds()) * 10**9
    out = pl.DataFrame(
        {
            "symbol": scored["symbol"],
            "ts": scored["_end"],
            "p_up": p_up,
            "p_down": p_down,
        }
    ).with_columns((pl.col("ts") + horizon).alias("expires"))
    return out.filter(pl.col("p_up").is_finite() & pl.col("p_down").is_finite())
