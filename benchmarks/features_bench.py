"""Features benchmark (issue 4, "Speed"): streaming features cost at most 2x the vectorised
computation per row.

For each default feature set (1-minute bars, L1 quotes, trades) the same synthetic BIST data
is computed as the research and the live paths do:

- vectorised: ``FeaturePipeline.batch(frame)`` over the whole history (polars, all threads);
- streaming, event by event: a fresh ``StreamingFeatures`` fed the rows one at a time, as the
  live stream processor receives them: each event a ``dict`` of plain Python values (time
  stamps as UTC epoch nanoseconds); bars come as slices (``update_slice``: every symbol's bar
  of one minute together, which the market-factor features need), ticks one by one
  (``update``);
- streaming, micro-batched: the same rows in arrival order, handed over as columnar batches
  (``update_batch``: a mapping of numpy column arrays, what an Arrow record batch from the feed
  gives) of ``--batch`` ticks, or one slice of bars each. Same kernels, same state, same values
  (the parity tests check it); the per-event Python work is paid once per batch.

Turning the frame into dicts or column batches is the feed's work and is not timed. Cost per
row = wall time / rows; ratios are streaming over vectorised. Runs are interleaved and each
figure is the best of ``--repeat`` runs, the usual estimate on a shared machine where
interference only adds time; every sample is kept in the JSON. A first untimed run loads the
compiled kernels (numba's on-disk cache) and the calendar.

Run: ``.venv/bin/python benchmarks/features_bench.py`` (``--quick`` for a smaller market,
``--polars-threads 1`` to give polars a single core as the stream has). Figures go to
``var/bench/features_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_JSON = ROOT / "var" / "bench" / "features_bench.json"
GOAL = 2.0
"""Streaming cost per row at most this multiple of the vectorised cost per row."""
SEED = 7


def _data(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    bars_market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=args.symbols, n_sessions=args.sessions, seed=SEED)
    )
    tick_market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=args.symbols, n_sessions=args.tick_days, seed=SEED)
    )
    days = [tick_market.day(d) for d in tick_market.sessions()]
    return {
        "bars": bars_market.minute_bars(),
        "trades": pl.concat([d.trades for d in days]),
        "quotes": pl.concat([d.quotes for d in days]),
    }


def _ordered(frame: Any, source: str) -> Any:
    """The rows in arrival order, time stamps as UTC epoch nanoseconds."""
    import polars as pl

    stamps = ["ts", "ts_end"] if source == "bars" else ["ts"]
    order = ["ts_end", "symbol"] if source == "bars" else ["ts", "seq", "symbol"]
    return frame.with_columns(pl.col(c).dt.epoch("ns") for c in stamps).sort(order)


def _events(frame: Any, source: str) -> list[Any]:
    """The rows as the live feed hands them over one by one: ``(symbol, dict)`` per tick,
    ``{symbol: dict}`` per bar slice."""
    rows = _ordered(frame, source).iter_rows(named=True)
    if source != "bars":
        return [(row["symbol"], row) for row in rows]
    slices: list[dict[str, dict[str, Any]]] = []
    at = None
    for row in rows:
        if row["ts_end"] != at:
            slices.append({})
            at = row["ts_end"]
        slices[-1][row["symbol"]] = row
    return slices


def _batches(frame: Any, source: str, size: int) -> list[dict[str, Any]]:
    """The rows in arrival order as columnar batches (numpy arrays per column): ``size`` ticks
    each, or one slice of bars each."""
    ordered = _ordered(frame, source)
    if source == "bars":
        pieces = ordered.partition_by("ts_end", maintain_order=True)
    else:
        pieces = [ordered.slice(i, size) for i in range(0, ordered.height, size)]
    return [{c: piece.get_column(c).to_numpy() for c in piece.columns} for piece in pieces]


def _stream(pipeline: Any, events: list[Any], source: str) -> None:
    stream = pipeline.stream()
    if source == "bars":
        update_slice = stream.update_slice
        for piece in events:
            update_slice(piece)
    else:
        update = stream.update
        for symbol, event in events:
            update(symbol, event)


def _stream_batches(pipeline: Any, batches: list[dict[str, Any]]) -> None:
    update_batch = pipeline.stream().update_batch
    for batch in batches:
        update_batch(batch)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    from quant.features import FeaturePipeline, bar_features, quote_features, trade_features

    started = time.perf_counter()
    data = _data(args)
    generation = time.perf_counter() - started
    sets = {"bars": bar_features(), "quotes": quote_features(), "trades": trade_features()}
    results: dict[str, Any] = {}
    for source, features in sets.items():
        frame = data[source]
        pipeline = FeaturePipeline(features, source=source)
        events = _events(frame, source)
        batches = _batches(frame, source, args.batch)
        # warm-up: compiled kernels, calendar, polars thread pool
        pipeline.batch(frame.head(2000))
        _stream(pipeline, events[:200], source)
        _stream_batches(pipeline, batches[:20])
        timings: dict[str, list[float]] = {"vectorised": [], "events": [], "batches": []}
        for _ in range(args.repeat):
            t = time.perf_counter()
            pipeline.batch(frame)
            timings["vectorised"].append(time.perf_counter() - t)
            t = time.perf_counter()
            _stream(pipeline, events, source)
            timings["events"].append(time.perf_counter() - t)
            t = time.perf_counter()
            _stream_batches(pipeline, batches)
            timings["batches"].append(time.perf_counter() - t)
        rows = frame.height
        per_row = {mode: min(samples) / rows * 1e9 for mode, samples in timings.items()}
        base = per_row["vectorised"]
        results[source] = {
            "rows": rows,
            "symbols": frame["symbol"].n_unique(),
            "features": len(features),
            "batch_rows": "one slice" if source == "bars" else args.batch,
            "ns_per_row": per_row,
            "ratio_events": per_row["events"] / base,
            "ratio_batches": per_row["batches"] / base,
            "seconds": timings,
        }
        print(
            f"  {source:7s} {rows:>9,} rows {len(features):>3} features   "
            f"vectorised {base:6.0f} ns/row   "
            f"streaming: events {per_row['events']:6.0f} ns/row (x{per_row['events'] / base:.2f})"
            f", batches {per_row['batches']:6.0f} ns/row (x{per_row['batches'] / base:.2f})",
            flush=True,
        )
    return {
        "goal_ratio": GOAL,
        "results": results,
        "config": {
            "symbols": args.symbols,
            "bar_sessions": args.sessions,
            "tick_days": args.tick_days,
            "repeat": args.repeat,
            "tick_batch": args.batch,
            "polars_threads": pl.thread_pool_size(),
            "generation_seconds": generation,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "polars": pl.__version__,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=20, help="sessions of 1-minute bars")
    parser.add_argument("--tick-days", type=int, default=2, help="sessions of trades and quotes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="ticks per micro-batch")
    parser.add_argument("--quick", action="store_true", help="5 sessions of bars, 1 of ticks")
    parser.add_argument("--polars-threads", type=int, default=0, help="0: polars' default")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.tick_days, args.repeat = 5, 1, 3
    if args.polars_threads:
        if "polars" in sys.modules:
            raise SystemExit("--polars-threads must be set before polars is imported")
        os.environ["POLARS_MAX_THREADS"] = str(args.polars_threads)
    print(
        f"features benchmark: {args.symbols} symbols, {args.sessions} sessions of bars, "
        f"{args.tick_days} of ticks, best of {args.repeat}",
        flush=True,
    )
    report = run(args)
    report["command"] = " ".join(["python benchmarks/features_bench.py", *(argv or sys.argv[1:])])
    for mode in ("events", "batches"):
        worst = max(r[f"ratio_{mode}"] for r in report["results"].values())
        verdict = "meets" if worst <= GOAL else "misses"
        print(
            f"streaming ({mode}) / vectorised per row: worst x{worst:.2f}, {verdict} the goal "
            f"(<= {GOAL:g})"
        )
    print(f"polars threads: {report['config']['polars_threads']}")
    report["met"] = {
        mode: max(r[f"ratio_{mode}"] for r in report["results"].values()) <= GOAL
        for mode in ("events", "batches")
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"figures: {args.json}")
    return report


if __name__ == "__main__":
    main()
