"""The three ways into validation: a frame in memory, a stream of chunks, Parquet files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import polars as pl

from quant.data.schema import DataKind
from quant.data.validate.casting import check_columns
from quant.data.validate.parquet import StatsPlanner, expand_paths
from quant.data.validate.results import ChunkSink, ValidationResult
from quant.data.validate.rules import ValidationConfig
from quant.data.validate.runner import Run


def validate(
    frame: pl.DataFrame | pl.LazyFrame,
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str = "",
    synthetic: bool = False,
) -> ValidationResult:
    """Validate an in-memory frame of ``kind`` (trades, quotes, bars or corporate actions).

    ``corporate_actions`` (lake schema) tells the band rule where the exchange adjusted the base
    price: on a symbol's ex-date the band is not checked (counted unchecked), nor the daily-bar
    return across it. Raises ``ValueError`` when a required column is missing or has a type that
    cannot hold the field at all.
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    run = Run(DataKind(kind), config or ValidationConfig(), corporate_actions, sink=None)
    try:
        run.feed(frame)
        return run.finish(source_label, synthetic)
    finally:
        run.close()


def validate_stream(
    chunks: Iterable[pl.DataFrame],
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    sink: ChunkSink | None = None,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str = "",
    synthetic: bool = False,
) -> ValidationResult:
    """Validate chunks that each hold complete symbol-days, chronological per symbol.

    This is the way to validate the lake partition by partition (a partition is a symbol-day).
    A symbol-day split across chunks is still validated, but duplicates and ordering are then
    only checked within each piece. With a ``sink``, results go to it chunk by chunk and memory
    stays bounded by the chunk size; daily bars are small and validated in one piece at the end.
    """
    run = Run(DataKind(kind), config or ValidationConfig(), corporate_actions, sink=sink)
    try:
        for chunk in chunks:
            run.feed(chunk)
        return run.finish(source_label, synthetic)
    finally:
        run.close()


def validate_parquet(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    sink: ChunkSink | None = None,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str | None = None,
    synthetic: bool = False,
    batch_rows: int = 1_000_000,
) -> ValidationResult:
    """Validate Parquet files larger than memory in one sequential read.

    The files are read in batches of ``batch_rows``; rows wait in a buffer until their
    symbol-day is complete, which the Parquet row-group statistics (symbol and ts min/max) prove
    once no unread row group can hold that symbol-day. Files sorted by symbol or by time (as the
    lake and most vendors write them) therefore stream with a buffer of about one batch; files
    without statistics are held until the end. Give a ``sink`` to keep memory bounded.
    """
    kind = DataKind(kind)
    paths = expand_paths(source)
    run = Run(kind, config or ValidationConfig(), corporate_actions, sink=sink)
    try:
        return _feed_parquet(run, paths, kind, source_label, synthetic, batch_rows)
    finally:
        run.close()


def _feed_parquet(
    run: Run,
    paths: list[str],
    kind: DataKind,
    source_label: str | None,
    synthetic: bool,
    batch_rows: int,
) -> ValidationResult:
    lf = pl.scan_parquet(paths)
    available = lf.collect_schema().names()
    check_columns(available, kind)
    label = source_label if source_label is not None else ", ".join(str(p) for p in paths)
    if kind is DataKind.CORPORATE_ACTIONS:
        run.feed(lf.collect())
        return run.finish(label, synthetic)
    planner = StatsPlanner(paths, run)
    for batch in lf.collect_batches(chunk_size=batch_rows):
        for ready in planner.add(batch):
            run.feed(ready)
    for ready in planner.flush():
        run.feed(ready)
    return run.finish(label, synthetic)
