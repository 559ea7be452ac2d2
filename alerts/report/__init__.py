"""The weekly cost report by e-mail (design.md §1, §5): per team and company-wide, spend against
last week and budget, top lists and movers, caching, latency against SLO, incidents, savings
opportunities and data quality, as HTML with inline charts, plain text and a CSV.

`send_weekly_reports` (in `alerts.report.job`) is the job; `llmledger report weekly` its command
line. Imported lazily here so the CLI starts without loading Plotly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunSummary", "Week", "send_weekly_reports"]


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "send_weekly_reports"):
        from alerts.report import job

        return getattr(job, name)
    if name == "Week":
        from alerts.report.week import Week

        return Week
    raise AttributeError(name)
