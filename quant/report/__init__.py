"""Reports of backtests: the self-contained HTML tearsheet (``write_tearsheet``)."""

from quant.report.tearsheet import (
    SECTION_TITLES,
    BacktestResultLike,
    Metric,
    headline_metrics,
    headline_stats,
    monthly_table,
    reject_counts,
    render_tearsheet,
    tca_summary,
    write_tearsheet,
)

__all__ = [
    "SECTION_TITLES",
    "BacktestResultLike",
    "Metric",
    "headline_metrics",
    "headline_stats",
    "monthly_table",
    "reject_counts",
    "render_tearsheet",
    "tca_summary",
    "write_tearsheet",
]
