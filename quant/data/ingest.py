"""Validated ingestion: data reaches the lake only through the quality rules.

Every path into the lake (the synthetic market, file imports, later live recordings) runs the
same validation, writes the clean rows and, in the same atomic step, the rejected rows with
their rule codes to the quarantine. That is what makes the lake "validated": research never
reads a row that broke a BIST rule, and nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from quant.data.lake import Lake, WriteResult
from quant.data.quality_report import QualityReport
from quant.data.schema import DataKind
from quant.data.synthetic import SyntheticMarket
from quant.data.validate import ValidationConfig, validate_stream

Progress = Callable[[str, int], None]
"""Called as ``progress(task, n_done_increment)``; the CLI turns it into progress bars."""


@dataclass
class IngestResult:
    """What one kind of data did on its way into the lake."""

    kind: DataKind
    report: QualityReport
    rows_written: int = 0
    rows_duplicate: int = 0
    rows_conflicting: int = 0
    rows_quarantined: int = 0
    partitions: int = 0

    def add(self, write: WriteResult) -> None:
        self.rows_written += write.rows_written
        self.rows_duplicate += write.rows_duplicate
        self.rows_conflicting += write.rows_conflicting
        self.rows_quarantined += write.rows_quarantined
        self.partitions += len(write.partitions)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "rows": self.report.rows,
            "clean": self.report.clean,
            "rows_written": self.rows_written,
            "rows_duplicate": self.rows_duplicate,
            "rows_conflicting": self.rows_conflicting,
            "rows_quarantined": self.rows_quarantined,
            "partitions": self.partitions,
            "score": round(self.report.score, 4),
        }


def ingest_chunks(
    chunks: Iterable[pl.DataFrame],
    kind: DataKind | str,
    lake: Lake,
    *,
    config: ValidationConfig | None = None,
    corporate_actions: pl.DataFrame | None = None,
    source: str,
    synthetic: bool = False,
) -> IngestResult:
    """Validate ``chunks`` (complete symbol-days, chronological) and write them to ``lake``.

    Each chunk's clean rows and quarantined rows are committed together, so an interruption
    leaves whole chunks in the lake, never half of one.
    """
    kind = DataKind(kind)
    writes: list[WriteResult] = []

    def sink(clean: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        if clean.height or quarantine.height:
            writes.append(lake.write(kind, clean, quarantine=quarantine, source=source))

    validation = validate_stream(
        chunks,
        kind,
        config,
        sink=sink,
        corporate_actions=corporate_actions,
        source_label=source,
        synthetic=synthetic,
    )
    result = IngestResult(kind=kind, report=validation.report)
    for write in writes:
        result.add(write)
    return result


@dataclass
class SyntheticIngest:
    """The synthetic market as written to the lake, kind by kind."""

    results: dict[DataKind, IngestResult] = field(default_factory=dict)
    bar_sessions: list[date] = field(default_factory=list)
    tick_sessions: list[date] = field(default_factory=list)
    corporate_actions: int = 0


def ingest_synthetic(
    market: SyntheticMarket,
    lake: Lake,
    *,
    tick_sessions: int,
    progress: Progress | None = None,
    config: ValidationConfig | None = None,
) -> SyntheticIngest:
    """Write the synthetic market: 1-minute bars for every session, ticks for the last few.

    Bars cover the whole horizon (research needs history); trades and L1 quotes cover the last
    ``tick_sessions`` sessions (replay and execution research need ticks, and a year of ticks
    would be tens of millions of rows). Everything goes through validation.
    """
    notify = progress or (lambda _task, _n: None)
    sessions = market.sessions()
    ticks_from = sessions[-min(tick_sessions, len(sessions))] if tick_sessions > 0 else None
    actions = market.corporate_actions()
    source = f"synthetic seed {market.config.seed}"
    out = SyntheticIngest(bar_sessions=sessions)
    out.corporate_actions = lake.write(DataKind.CORPORATE_ACTIONS, actions).rows_in

    def bar_chunks() -> Iterator[pl.DataFrame]:
        for chunk in market.iter_minute_bars(sessions_per_chunk=10):
            notify("bars", chunk.select(pl.col("ts").dt.date().n_unique()).item())
            yield chunk

    out.results[DataKind.BARS] = ingest_chunks(
        bar_chunks(),
        DataKind.BARS,
        lake,
        config=config,
        corporate_actions=actions,
        source=source,
        synthetic=True,
    )
    if ticks_from is None:
        return out
    out.tick_sessions = [d for d in sessions if d >= ticks_from]
    for kind in (DataKind.TRADES, DataKind.QUOTES):

        def tick_chunks(kind: DataKind = kind) -> Iterator[pl.DataFrame]:
            for day in market.iter_days(start=ticks_from):
                notify(kind.value, 1)
                yield day.trades if kind is DataKind.TRADES else day.quotes

        out.results[kind] = ingest_chunks(
            tick_chunks(),
            kind,
            lake,
            config=config,
            corporate_actions=actions,
            source=source,
            synthetic=True,
        )
    return out
