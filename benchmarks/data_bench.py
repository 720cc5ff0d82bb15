"""Data benchmark (issue 2, "Speed and memory"): validation, 1-minute bars, synthetic bars.

Three goals, measured side by side in one run and printed as a table with their ratios:

1. Validating N trade rows (default 20 million) costs at most 3x a bare polars read of the same
   Parquet file (``pl.scan_parquet(path).collect()``), with peak memory under 2 GB.
2. Building 1-minute bars from those trades (``quant.data.bars.time_bars``) costs at most 1.5x
   polars' own ``group_by_dynamic`` producing the same columns (checked equal).
3. One year (250 sessions) of 1-minute bars for 30 symbols generates in under 10 s
   (``SyntheticMarket.minute_bars``).

Every measured step runs in a child process of its own (this script re-invoked with
``--child``), so that one step's memory and warm caches cannot flatter or burden another: the
child times its step after its imports and its untimed input loading, and reports its own peak
resident memory (``ru_maxrss``). Steps are interleaved (scan, validate, scan, validate, ...)
and each figure is the best of ``--repeat`` runs, the usual estimate of a step's cost on a
shared machine, where interference only ever adds time; every sample is kept in the JSON.

The trade file holds realistic synthetic BIST trades: whole sessions of
``SyntheticMarket(SyntheticMarketConfig(n_symbols=30, ...)).day(d).trades`` (30 symbols, every
rule of the tick table, bands, session phases, auctions, halts and corporate actions),
concatenated session after session until N rows, sorted by symbol and time as the lake stores
them, and written once with polars' defaults (zstd, statistics) under ``var/bench/`` so reruns
skip the generation. Validation gets the market's corporate actions, as the lake would give
them, so ex-dates are not mistaken for band breaches.

Run: ``.venv/bin/python benchmarks/data_bench.py`` (``--quick`` for 2 million rows; ``--rows``
for any size). Figures go to ``var/bench/data_bench.json`` and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "var" / "bench"
DEFAULT_ROWS = 20_000_000
QUICK_ROWS = 2_000_000
GENERATOR_VERSION = 2
"""Bump when the trade file's recipe changes, so cached files are not reused."""
SEED = 7
FAULT_RATE = 1e-5
"""Bad prints injected per row: realistic data is mostly clean, not spotless, and a validator
must pay for the rows it rejects."""
N_SYMBOLS = 30
YEAR_SESSIONS = 250

GOALS = {
    "validate_vs_scan": 3.0,
    "validate_peak_gb": 2.0,
    "bars_vs_group_by_dynamic": 1.5,
    "synthetic_year_seconds": 10.0,
}


# -- the trade file --------------------------------------------------------------------------


def trade_file(rows: int, directory: Path) -> tuple[Path, Path]:
    """Paths of the cached trade file of ``rows`` rows and its corporate actions, made once."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"trades-{rows}-seed{SEED}-v{GENERATOR_VERSION}"
    trades_path = directory / f"{stem}.parquet"
    actions_path = directory / f"{stem}-corporate-actions.parquet"
    if not (trades_path.exists() and actions_path.exists()):
        _make_trade_file(rows, trades_path, actions_path)
    return trades_path, actions_path


def _make_trade_file(rows: int, trades_path: Path, actions_path: Path) -> None:
    import polars as pl

    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    # About 80,000 trades per session for 30 symbols: ask for a generous number of sessions
    # and stop generating once there are enough rows.
    sessions = max(5, math.ceil(rows / 50_000))
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=N_SYMBOLS, n_sessions=sessions, seed=SEED)
    )
    parts: list[pl.DataFrame] = []
    have = 0
    started = time.perf_counter()
    for day in market.sessions():
        trades = market.day(day).trades
        # The last session is cut at ``rows`` (its first symbols only): a whole file of
        # complete symbol-days but for the one where the cut falls.
        trades = trades.head(rows - have)
        parts.append(trades)
        have += trades.height
        if have >= rows:
            break
    if have < rows:
        raise RuntimeError(f"the synthetic market gave only {have} trades for {rows} wanted")
    n_sessions = len(parts)
    frame = pl.concat(parts).sort("symbol", "ts", "seq", maintain_order=True)
    del parts
    frame = inject_faults(frame, FAULT_RATE, SEED)
    last_day = market.sessions()[n_sessions - 1]
    actions = market.corporate_actions().filter(pl.col("ex_date") <= last_day)
    _atomic_parquet(frame, trades_path)
    _atomic_parquet(actions, actions_path)
    print(
        f"generated {frame.height:,} trades over {n_sessions} sessions in "
        f"{time.perf_counter() - started:.1f} s -> {trades_path}",
        file=sys.stderr,
    )


FAULTS = ("off_tick", "fat_finger", "duplicate", "zero_size", "late_print")


def inject_faults(trades: Any, rate: float, seed: int) -> Any:
    """Trades with about ``rate`` of their rows spoiled, in turn: a price 0.001 TRY off the
    grid, a price ten times too high, a copy of the previous print (a duplicate), a size of
    zero, a print stamped ten minutes early (out of order). Deterministic given ``seed``."""
    import numpy as np
    import polars as pl

    n = trades.height
    k = round(n * rate)
    if k == 0 or n < 2:
        return trades
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(np.arange(1, n), size=k, replace=False))
    kind = np.arange(k) % len(FAULTS)
    take = np.arange(n)
    take[rows[kind == FAULTS.index("duplicate")]] -= 1
    out = trades[take]
    price = out["price"].to_numpy().copy()
    size = out["size"].to_numpy().copy()
    ts = out["ts"].dt.epoch("ns").to_numpy().copy()
    price[rows[kind == FAULTS.index("off_tick")]] += 0.001
    price[rows[kind == FAULTS.index("fat_finger")]] *= 10
    size[rows[kind == FAULTS.index("zero_size")]] = 0
    ts[rows[kind == FAULTS.index("late_print")]] -= 600 * 10**9
    return out.with_columns(
        pl.Series("price", price),
        pl.Series("size", size),
        pl.Series("ts", ts).cast(pl.Datetime("ns", "UTC")),
    )


def _atomic_parquet(frame: Any, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


# -- measured steps (each runs in a child process) ---------------------------------------------


def _rss_bytes() -> int:
    """Current resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _step_scan(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    pl.scan_parquet(args.path).head(1000).collect()  # warm-up: metadata, thread pool
    return _timed(lambda: pl.scan_parquet(args.path).collect(), lambda out: {"rows": out.height})


def _step_validate(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    from quant.data.validate import ValidationConfig, validate, validate_parquet

    actions = pl.read_parquet(args.actions)
    config = ValidationConfig()
    # Warm-up on a small slice: loads the compiled kernels and the XIST calendar, one-time
    # costs of a process (reported separately as ``warmup_seconds``).
    started = time.perf_counter()
    validate(pl.scan_parquet(args.path).head(50_000).collect(), "trades", config)
    warmup = time.perf_counter() - started
    counts = {"clean": 0, "quarantined": 0}
    rules: dict[str, int] = {}

    def sink(clean: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        # What the CLI does: clean rows go on (to the lake), rejected rows are kept.
        counts["clean"] += clean.height
        counts["quarantined"] += quarantine.height
        for rule, n in quarantine["rule"].value_counts().iter_rows():
            rules[rule] = rules.get(rule, 0) + n

    def run() -> Any:
        return validate_parquet(
            args.path, "trades", config, sink=sink, corporate_actions=actions, synthetic=True
        )

    def facts(result: Any) -> dict[str, Any]:
        return {
            "rows": counts["clean"] + counts["quarantined"],
            **counts,
            "rules": dict(sorted(rules.items())),
            "symbol_days": len(result.report.symbol_days),
            "warmup_seconds": round(warmup, 3),
        }

    return _timed(run, facts)


def _sorted_trades(path: str) -> Any:
    """The trade file in time order within each symbol (as bar builders require; the file's
    injected late prints are out of order)."""
    import polars as pl

    return pl.read_parquet(path).sort("symbol", "ts", "seq", maintain_order=True)


def _polars_bars(trades: Any) -> Any:
    """The reference: polars' own ``group_by_dynamic``, same columns and types as ours."""
    import polars as pl

    from quant.data.schema import DataKind, polars_schema

    price, size = pl.col("price"), pl.col("size")
    bars = (
        trades.group_by_dynamic("ts", every="1m", group_by="symbol")
        .agg(
            price.first().alias("open"),
            price.max().alias("high"),
            price.min().alias("low"),
            price.last().alias("close"),
            size.sum().alias("volume"),
            ((price * size).sum() / size.sum()).alias("vwap"),
            pl.len().alias("trade_count"),
        )
        .with_columns(ts_end=pl.col("ts") + pl.duration(minutes=1))
    )
    return bars.select([pl.col(c).cast(t) for c, t in polars_schema(DataKind.BARS).items()])


def _step_bars(args: argparse.Namespace) -> dict[str, Any]:
    from quant.data.bars import time_bars

    trades = _sorted_trades(args.path)
    time_bars(trades.head(10_000), "1m")  # warm-up
    figures = _timed(lambda: time_bars(trades, "1m"), lambda out: {"bars": out.height})
    figures["equal_to_group_by_dynamic"] = _bars_equal(trades)  # after the timing
    return figures


def _step_group_by_dynamic(args: argparse.Namespace) -> dict[str, Any]:
    trades = _sorted_trades(args.path)
    _polars_bars(trades.head(10_000))  # warm-up
    return _timed(lambda: _polars_bars(trades), lambda out: {"bars": out.height})


def _bars_equal(trades: Any) -> bool:
    """Our bars equal polars' (exactly, but for vwap: summed in another order)."""
    from polars.testing import assert_frame_equal

    from quant.data.bars import time_bars

    ours = time_bars(trades, "1m")
    reference = _polars_bars(trades).sort("symbol", "ts")
    try:
        assert_frame_equal(ours.drop("vwap"), reference.drop("vwap"))
        assert_frame_equal(
            ours.select("vwap"), reference.select("vwap"), check_exact=False, rtol=1e-12
        )
    except AssertionError as e:
        print(f"bars differ from group_by_dynamic: {e}", file=sys.stderr)
        return False
    return True


def _step_synthetic(args: argparse.Namespace) -> dict[str, Any]:
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    config = SyntheticMarketConfig(n_symbols=N_SYMBOLS, n_sessions=args.sessions, seed=SEED)
    SyntheticMarket(SyntheticMarketConfig(n_symbols=2, n_sessions=2)).minute_bars()  # warm-up

    def run() -> Any:
        # The market is built inside the timing: its daily simulation is part of the cost.
        return SyntheticMarket(config).minute_bars()

    return _timed(run, lambda out: {"bars": out.height, "sessions": args.sessions})


def _timed(run: Callable[[], Any], facts: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    rss_before = _rss_bytes()
    started = time.perf_counter()
    cpu_started = time.process_time()
    out = run()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": _peak_rss_bytes(),
        **facts(out),
    }


STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "scan": _step_scan,
    "validate": _step_validate,
    "bars": _step_bars,
    "group_by_dynamic": _step_group_by_dynamic,
    "synthetic": _step_synthetic,
}


def run_child(step: str, path: Path, actions: Path, sessions: int) -> dict[str, Any]:
    """Run one step in a fresh Python process and return what it measured."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        step,
        "--path",
        str(path),
        "--actions",
        str(actions),
        "--sessions",
        str(sessions),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step {step} failed:\n{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the run ---------------------------------------------------------------------------------


def _best(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest sample (interference on a shared machine only ever adds time)."""
    return min(samples, key=lambda s: s["seconds"])


def _gb(n: float) -> float:
    return n / 1e9


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the trade file, run every step ``repeat`` times, summarise."""
    directory = Path(args.dir)
    path, actions = trade_file(args.rows, directory)
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in STEPS}
    for _ in range(args.repeat):
        # Interleaved, so that a busy spell on the machine hits both sides of a ratio.
        for step in samples:
            samples[step].append(run_child(step, path, actions, args.sessions))
            print(f"  {step:<17} {samples[step][-1]['seconds']:8.3f} s", file=sys.stderr)
    equal = all(s["equal_to_group_by_dynamic"] for s in samples["bars"])
    best = {step: _best(runs) for step, runs in samples.items()}
    scan, validate, bars, gbd, synthetic = (
        best[s] for s in ("scan", "validate", "bars", "group_by_dynamic", "synthetic")
    )
    full_year = args.sessions == YEAR_SESSIONS
    goals = [
        {
            "what": f"validate {args.rows:,} trades vs bare scan",
            "ours_seconds": validate["seconds"],
            "reference_seconds": scan["seconds"],
            "ratio": validate["seconds"] / scan["seconds"],
            # CPU time (all threads, user + sys) is less sensitive to a busy machine than
            # wall time; reported beside it, the goal is judged on wall time.
            "cpu_ratio": min(s["cpu_seconds"] for s in samples["validate"])
            / min(s["cpu_seconds"] for s in samples["scan"]),
            "goal": f"<= {GOALS['validate_vs_scan']}x",
            "met": validate["seconds"] / scan["seconds"] <= GOALS["validate_vs_scan"],
        },
        {
            "what": "validation peak memory (GB)",
            "ours_gb": _gb(max(s["peak_rss_bytes"] for s in samples["validate"])),
            "reference_gb": _gb(max(s["peak_rss_bytes"] for s in samples["scan"])),
            "goal": f"< {GOALS['validate_peak_gb']} GB",
            "met": _gb(max(s["peak_rss_bytes"] for s in samples["validate"]))
            < GOALS["validate_peak_gb"],
        },
        {
            "what": "1-minute bars: time_bars vs group_by_dynamic",
            "ours_seconds": bars["seconds"],
            "reference_seconds": gbd["seconds"],
            "ratio": bars["seconds"] / gbd["seconds"],
            "goal": f"<= {GOALS['bars_vs_group_by_dynamic']}x",
            "met": bars["seconds"] / gbd["seconds"] <= GOALS["bars_vs_group_by_dynamic"] and equal,
        },
        {
            "what": f"synthetic 1-minute bars, {N_SYMBOLS} symbols x {args.sessions} sessions",
            "ours_seconds": synthetic["seconds"],
            "goal": f"< {GOALS['synthetic_year_seconds']} s for {YEAR_SESSIONS} sessions",
            # The goal is about a year: a smaller run is a smoke test, not a verdict.
            "met": synthetic["seconds"] < GOALS["synthetic_year_seconds"] if full_year else None,
        },
    ]
    return {
        "benchmark": "data_bench",
        "issue": 2,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(["python benchmarks/data_bench.py", *args.argv]).strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "shared with other jobs: figures are the best of the repeats",
        },
        "rows": args.rows,
        "repeat": args.repeat,
        "trade_file": {
            "path": str(path),
            "bytes": path.stat().st_size,
            "recipe": (
                f"SyntheticMarket(n_symbols={N_SYMBOLS}, seed={SEED}).day(d).trades for "
                f"consecutive sessions, sorted by symbol and ts, {FAULT_RATE:g} of rows spoiled "
                f"({', '.join(FAULTS)}), polars defaults (zstd, statistics)"
            ),
            "bars_equal_to_group_by_dynamic": equal,
        },
        "best": best,
        "samples": samples,
        "goals": goals,
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table (what, ours, reference, ratio, goal, met?)."""
    best = result["best"]
    lines = [
        "| what | ours | reference | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    verdict = {True: "yes", False: "**no**", None: "n/a (not a full year)"}
    v, bars, syn = result["goals"][0], result["goals"][2], result["goals"][3]
    mem = result["goals"][1]
    lines += [
        f"| validate {result['rows']:,} trades (`validate_parquet`) | {v['ours_seconds']:.2f} s "
        f"| {v['reference_seconds']:.2f} s (`scan_parquet().collect()`) | {v['ratio']:.2f}x "
        f"| {v['goal']} | {verdict[v['met']]} |",
        f"| (same, CPU time of all threads) | | | {v['cpu_ratio']:.2f}x | | |",
        f"| validation peak memory (whole process) | {mem['ours_gb']:.2f} GB "
        f"| {mem['reference_gb']:.2f} GB (scan) | | {mem['goal']} | {verdict[mem['met']]} |",
        f"| 1-minute bars (`time_bars`) | {bars['ours_seconds']:.2f} s "
        f"| {bars['reference_seconds']:.2f} s (`group_by_dynamic`) | {bars['ratio']:.2f}x "
        f"| {bars['goal']} | {verdict[bars['met']]} |",
        f"| synthetic 1-minute bars ({best['synthetic']['bars']:,} bars) "
        f"| {syn['ours_seconds']:.2f} s | | | {syn['goal']} | {verdict[syn['met']]} |",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="trade rows to validate")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows (smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (best is kept)")
    parser.add_argument(
        "--sessions", type=int, default=YEAR_SESSIONS, help="sessions of synthetic bars"
    )
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="cache of generated files")
    parser.add_argument("--out", default=None, help="JSON figures (default: DIR/data_bench.json)")
    parser.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--actions", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = QUICK_ROWS
    if args.rows < 1000 or args.repeat < 1 or args.sessions < 1:
        parser.error("need --rows >= 1000, --repeat >= 1 and --sessions >= 1")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or, with ``--child``, one measured step) and return the figures."""
    args = parse_args(argv)
    if args.child:
        figures = STEPS[args.child](args)
        print(json.dumps(figures))
        return figures
    result = measure(args)
    out = Path(args.out) if args.out else Path(args.dir) / "data_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nfigures: {out}")
    return result


if __name__ == "__main__":
    main()
