"""The weekly cost report on demand: send it (each audience at most once a week), or with `dry_run`
render every audience's e-mail into files, returned as a zip so the caller unpacks them where it
runs (the CLI's `--dry-run DIR`), wherever the service is."""

from __future__ import annotations

import base64
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmledger.operations import OPERATOR, OpContext, operation


class WeeklyParams(BaseModel):
    model_config = {"extra": "forbid"}
    week: str | None = Field(default=None, pattern=r"^\d{4}-?W\d{1,2}$", description="ISO week (default: the last complete one).")
    team: str | None = Field(default=None, max_length=200, description="Only this team's report.")
    dry_run: bool = Field(default=False, description="Render the e-mails into files (returned zipped) instead of sending.")


@operation("report.weekly", "POST", "/v1/reports/weekly", WeeklyParams, scope=OPERATOR, long=True)
def weekly(ctx: OpContext, p: WeeklyParams) -> dict[str, Any]:
    """Send (or render) the week's cost reports to each team and the company-wide list."""
    from alerts.report.job import send_weekly_reports
    from alerts.report.week import Week

    week = Week.parse(p.week) if p.week else None
    if not p.dry_run:
        return send_weekly_reports(ctx.settings, ctx.wh, week=week, team=p.team, feed=ctx.feed).as_dict()
    with tempfile.TemporaryDirectory(prefix="llmledger-report-") as scratch:
        root = Path(scratch)
        summary = send_weekly_reports(ctx.settings, ctx.wh, week=week, team=p.team, dry_run_dir=root,
                                      feed=ctx.feed).as_dict()
        for outcome in summary["outcomes"]:
            if outcome.get("path"):
                outcome["path"] = str(Path(outcome["path"]).relative_to(root))
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    zipped.write(path, path.relative_to(root).as_posix())
    return {**summary, "archive": base64.b64encode(archive.getvalue()).decode()}


def unpack(result: dict[str, Any], target: Path) -> None:
    """Write a dry run's files under `target` and point each outcome's `path` there."""
    data = result.pop("archive", None)
    if not data:
        return
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(data))) as zipped:
        for name in zipped.namelist():
            if name.startswith("/") or ".." in Path(name).parts:
                continue  # only files under the target
            out = target / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zipped.read(name))
    for outcome in result.get("outcomes", []):
        if outcome.get("path"):
            outcome["path"] = str(target / outcome["path"])
