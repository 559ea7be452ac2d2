"""The weekly report job: `send_weekly_reports(settings, wh, week=…, dry_run_dir=…)` — what the
scheduler calls every week and `llmledger report weekly` runs by hand.

For each audience (the company-wide list and each team with recipients) it builds, renders and
sends one e-mail and records the attempt in `report_sends`. An audience whose report for the
week was already sent is skipped, so a restart or a second run sends nothing twice; a failed one
is tried again on the next run. One audience failing (building, SMTP down, login refused) never
stops the others. `dry_run_dir` writes the e-mails to files instead and records nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.report.charts import ChartRenderer, render_charts
from alerts.report.content import build_report, report_scope
from alerts.report.errors import SendFailed
from alerts.report.message import build_message, message_id
from alerts.report.model import COMPANY, Audience
from alerts.report.render import Rendered, content_id, render
from alerts.report.smtp import SmtpSender
from alerts.report.week import Week
from alerts.settings import ReportingSettings
from common.progress import SILENT, Feed
from warehouse.client import Warehouse
from warehouse.queries import attribution, report_sends
from warehouse.queries.scope import Scope

log = logging.getLogger(__name__)

REPORT = "weekly"


@dataclass(frozen=True)
class Outcome:
    """What happened to one audience's report in one run."""

    audience: str
    recipients: tuple[str, ...]
    status: str  # sent | failed | skipped (sent before) | written (dry run)
    message_id: str = ""
    error_kind: str = ""
    error: str = ""
    path: Path | None = None


@dataclass
class RunSummary:
    """One run of the job."""

    week: Week
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Audiences that ended in `status`."""
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, for the scheduler's job record and `--json`."""
        return {"week": self.week.label, "sent": self.count("sent"), "failed": self.count("failed"),
                "skipped": self.count("skipped"), "written": self.count("written"),
                "outcomes": [{"audience": o.audience, "status": o.status, "recipients": list(o.recipients),
                              "message_id": o.message_id, "error_kind": o.error_kind, "error": o.error,
                              **({"path": str(o.path)} if o.path else {})} for o in self.outcomes]}


def audiences(settings: ReportingSettings, wh: Warehouse, week: Week, *, team: str | None = None,
              dry_run: bool = False) -> list[Audience]:
    """Who gets the week's report: the company-wide list (when it has addresses) and every team
    with recipients. A dry run also covers the company and every team that spent that week, so
    reports can be previewed before anyone is configured. `team` keeps that one team only."""
    cfg = settings.report
    found: dict[str, Audience] = {}
    if cfg.company or (dry_run and team is None):
        found[COMPANY] = Audience(COMPANY, tuple(cfg.company))
    for name, recipients in cfg.recipients.items():
        if recipients:
            found[name] = Audience(name, tuple(recipients))
    if dry_run:
        spent = attribution.usage_by(wh, report_scope(settings), "team", week.start, week.end, tag="job:report:teams")
        for name in spent["key"].to_list():
            if name and name not in found:
                found[name] = Audience(name, ())
    if team is not None:
        return [found.get(team, Audience(team, ()))]
    teams = sorted((a for k, a in found.items() if k != COMPANY), key=lambda a: a.key)
    return [found[COMPANY], *teams] if COMPANY in found else teams


def send_weekly_reports(
    settings: ReportingSettings,
    wh: Warehouse,
    *,
    week: Week | str | None = None,
    dry_run_dir: Path | None = None,
    team: str | None = None,
    now: datetime | None = None,
    fence: Any = None,
    feed: Feed = SILENT,
) -> RunSummary:
    """Send (or, with `dry_run_dir`, write) the weekly reports of `week` (default: the last
    complete ISO week). Never raises for one audience's failure: each is recorded (status
    `failed`, with its kind) and retried on the next run; see the returned summary. `feed` shows
    the audiences done."""
    now = now or datetime.now(UTC)
    week = Week.parse(week) if isinstance(week, str) else (week or Week.last_complete(now))
    dry_run = dry_run_dir is not None
    summary = RunSummary(week)
    # the ledger is platform data, read with the all-projects scope
    states = {} if dry_run else {
        row["audience"]: row for row in
        report_sends.send_states(wh, Scope.all(), report=REPORT, period=week.label).to_dicts()
    }
    renderer = ChartRenderer(settings.report.browser_path)
    sender = SmtpSender(settings.smtp)
    chosen = audiences(settings, wh, week, team=team, dry_run=dry_run)
    advance = feed.task(f"weekly report {week.label} (audiences)", len(chosen))
    for audience in chosen:
        state = states.get(audience.key)
        if state is not None and state["status"] == "sent":
            summary.outcomes.append(Outcome(audience.key, audience.recipients, "skipped", state["message_id"]))
            advance(1)
            continue
        attempt = 1 + (int(state["attempts"]) if state else 0)
        summary.outcomes.append(_one(settings, wh, week, audience, now=now, renderer=renderer, sender=sender,
                                     dry_run_dir=dry_run_dir, attempt=attempt, fence=fence))
        advance(1)
    log.info("weekly report %s: %s", week.label, {k: v for k, v in summary.as_dict().items() if k != "outcomes"})
    return summary


def _one(settings: ReportingSettings, wh: Warehouse, week: Week, audience: Audience, *, now: datetime,
         renderer: ChartRenderer, sender: SmtpSender, dry_run_dir: Path | None, attempt: int,
         fence: Any = None) -> Outcome:
    msg_id = message_id(REPORT, week.label, audience.key, settings.smtp.sender)
    try:
        report = build_report(wh, settings, week, audience, now=now)
        rendered = render(report, render_charts(report, renderer))
        msg = build_message(rendered, sender=settings.smtp.sender, recipients=audience.recipients, msg_id=msg_id,
                            date=now)
    except Exception as err:  # noqa: BLE001 - one audience's failure must not stop the others
        log.exception("weekly report %s for %s could not be built", week.label, audience.key)
        return _failed(wh, week, audience, msg_id, attempt, "build", f"{err.__class__.__name__}: {err}",
                       record=dry_run_dir is None)
    if dry_run_dir is not None:
        folder = write_dry_run(dry_run_dir, week, audience, rendered, msg.as_bytes())
        return Outcome(audience.key, audience.recipients, "written", msg_id, path=folder)
    if not audience.recipients:  # `--team` naming a team nobody subscribed: nothing to record
        return _failed(wh, week, audience, msg_id, attempt, "config", "no recipients configured", record=False)
    if fence is not None:
        fence.check(settings.smtp.timeout_s * sender.attempts)  # LeaseLost ends the run before this mail
    # the Message-ID is recorded before DATA: after a crash the retry carries the same one, so mail
    # clients that collapse duplicates by Message-ID show it once (delivery itself is at-least-once:
    # SMTP cannot be asked whether a message it accepted before the crash went out)
    report_sends.record_send(wh, report=REPORT, period=week.label, audience=audience.key,
                             recipients=audience.recipients, status="sending", attempt=attempt, message_id=msg_id,
                             attempted_at=datetime.now(UTC), error_kind="", error="")
    try:
        refused = sender.send(msg)
    except SendFailed as err:
        log.warning("weekly report %s for %s not sent (%s): %s", week.label, audience.key, err.kind, err)
        return _failed(wh, week, audience, msg_id, attempt, err.kind, str(err))
    except Exception as err:  # noqa: BLE001
        log.exception("weekly report %s for %s not sent", week.label, audience.key)
        return _failed(wh, week, audience, msg_id, attempt, "error", f"{err.__class__.__name__}: {err}")
    note = f"refused by the server: {', '.join(sorted(refused))}" if refused else ""
    report_sends.record_send(wh, report=REPORT, period=week.label, audience=audience.key,
                             recipients=audience.recipients, status="sent", attempt=attempt, message_id=msg_id,
                             attempted_at=datetime.now(UTC), error_kind="partial" if refused else "", error=note)
    return Outcome(audience.key, audience.recipients, "sent", msg_id, error=note)


def _failed(wh: Warehouse, week: Week, audience: Audience, msg_id: str, attempt: int, kind: str, error: str, *,
            record: bool = True) -> Outcome:
    if record:
        report_sends.record_send(wh, report=REPORT, period=week.label, audience=audience.key,
                                 recipients=audience.recipients, status="failed", attempt=attempt,
                                 message_id=msg_id, attempted_at=datetime.now(UTC), error_kind=kind, error=error)
    return Outcome(audience.key, audience.recipients, "failed", msg_id, kind, error)


def write_dry_run(root: Path, week: Week, audience: Audience, rendered: Rendered, eml: bytes) -> Path:
    """Write one report's files under `root/<week>/<audience>/`: email.html (as sent, `cid:`
    images), preview.html (images as files, for a browser), email.txt, the charts as PNG, the CSV
    and message.eml (the whole message). Returns the folder."""
    folder = root / week.label / ("company" if audience.team is None else _safe(audience.key))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text(rendered.subject + "\n", encoding="utf-8")
    (folder / "email.html").write_text(rendered.html, encoding="utf-8")
    preview = rendered.html
    for chart in rendered.charts:
        (folder / f"{chart.name}.png").write_bytes(chart.png)
        preview = preview.replace(f"cid:{content_id(chart)}", f"{chart.name}.png")
    (folder / "preview.html").write_text(preview, encoding="utf-8")
    (folder / "email.txt").write_text(rendered.text, encoding="utf-8")
    (folder / rendered.csv_name).write_text(rendered.csv, encoding="utf-8")
    (folder / "message.eml").write_bytes(eml)
    return folder


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"
