"""Delivery of the weekly report: failures are recorded in `report_sends` and retried on the next
run, never blocking the other audiences; STARTTLS with login; credentials only from the
environment. Real SMTP servers (aiosmtpd) on localhost, real warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.report.job import send_weekly_reports
from alerts.report.week import Week
from ingest.pipeline import Pipeline
from llmledger.settings import ReportSettings, Settings, SmtpSettings
from tests.factories import frame, make_call
from tests.service_support import free_port
from tests.smtp_server import CERT, smtp_server
from warehouse.client import Warehouse
from warehouse.queries import report_sends
from warehouse.queries.scope import Scope

WEEK = Week.parse("2025-W45")
NOW = datetime(2025, 11, 12, tzinfo=UTC)


@pytest.fixture
def calls(pipeline: Pipeline) -> None:
    """A few calls of two teams in 2025-W45 and the week before."""
    rows = [make_call(ts=f"2025-11-0{d}T1{h}:00:00Z", team=team, route=f"/{team}", user_id=f"u-{team}")
            for d in (3, 4, 5) for h in (0, 1) for team in ("search", "billing")]
    rows += [make_call(ts="2025-10-28T10:00:00Z", team="search", route="/search")]
    assert pipeline.ingest_frame(frame(rows), source="test").written == len(rows)


def configured(settings: Settings, port: int, **smtp: Any) -> Settings:
    return settings.model_copy(update={
        "report": ReportSettings(recipients={"search": ["s@example.com"], "billing": ["b@example.com"]},
                                 company=["all@example.com"]),
        "smtp": SmtpSettings(host="127.0.0.1", port=port, security=smtp.pop("security", "none"),
                             sender="llmledger@example.com", attempts=2, backoff_s=0, **smtp),
    })


def ledger(wh: Warehouse) -> dict[str, tuple[str, int, str]]:
    states = report_sends.send_states(wh, Scope.all(), report="weekly", period=WEEK.label)
    return {r["audience"]: (r["status"], r["attempts"], r["error_kind"]) for r in states.to_dicts()}


def test_server_down_is_recorded_then_retried_on_the_next_run(wh: Warehouse, settings: Settings, calls: None) -> None:
    down = configured(settings, free_port())  # nothing listens there
    summary = send_weekly_reports(down, wh, week=WEEK, now=NOW)
    assert summary.count("failed") == 3
    assert ledger(wh) == {"*": ("failed", 1, "unavailable"), "search": ("failed", 1, "unavailable"),
                          "billing": ("failed", 1, "unavailable")}
    with smtp_server() as (controller, handler):
        summary = send_weekly_reports(configured(settings, controller.port), wh, week=WEEK, now=NOW)
        assert summary.count("sent") == 3 and len(handler.received) == 3
    assert ledger(wh) == {"*": ("sent", 2, ""), "search": ("sent", 2, ""), "billing": ("sent", 2, "")}


def test_one_refused_audience_does_not_block_the_others(wh: Warehouse, settings: Settings, calls: None) -> None:
    with smtp_server() as (controller, handler):
        handler.refuse_rcpt = {"b@example.com"}
        summary = send_weekly_reports(configured(settings, controller.port), wh, week=WEEK, now=NOW)
        assert {o.audience: o.status for o in summary.outcomes} == {"*": "sent", "search": "sent", "billing": "failed"}
        assert ledger(wh)["billing"] == ("failed", 1, "refused")
        handler.refuse_rcpt = set()
        summary = send_weekly_reports(configured(settings, controller.port), wh, week=WEEK, now=NOW)
        assert {o.audience: o.status for o in summary.outcomes} == {"*": "skipped", "search": "skipped",
                                                                    "billing": "sent"}
        assert [sorted(r.rcpt_tos) for r in handler.received] == [["all@example.com"], ["s@example.com"],
                                                                  ["b@example.com"]]


def test_temporary_failure_is_retried_within_the_run(wh: Warehouse, settings: Settings, calls: None) -> None:
    with smtp_server() as (controller, handler):
        handler.fail_data = True
        summary = send_weekly_reports(configured(settings, controller.port), wh, week=WEEK, now=NOW, team="search")
        assert [(o.status, o.error_kind) for o in summary.outcomes] == [("failed", "unavailable")]
        assert "451" in summary.outcomes[0].error
        handler.fail_data = False
        assert send_weekly_reports(configured(settings, controller.port), wh, week=WEEK, now=NOW,
                                   team="search").count("sent") == 1
    assert ledger(wh)["search"] == ("sent", 2, "")


def test_starttls_and_login_with_the_password_from_the_environment(
    wh: Warehouse, settings: Settings, calls: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(starttls=True, user="reporter", password="s3cret") as (controller, handler):
        tls = {"security": "starttls", "username": "reporter", "ca_file": CERT, "password_env": "TEST_SMTP_PASSWORD"}
        monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
        summary = send_weekly_reports(configured(settings, controller.port, **tls), wh, week=WEEK, now=NOW,
                                      team="search")
        assert [(o.status, o.error_kind) for o in summary.outcomes] == [("failed", "config")]
        assert "TEST_SMTP_PASSWORD" in summary.outcomes[0].error

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        summary = send_weekly_reports(configured(settings, controller.port, **tls), wh, week=WEEK, now=NOW,
                                      team="search")
        assert [(o.status, o.error_kind) for o in summary.outcomes] == [("failed", "auth")]
        assert "wrong" not in summary.outcomes[0].error  # never the secret in the ledger

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        summary = send_weekly_reports(configured(settings, controller.port, **tls), wh, week=WEEK, now=NOW)
        assert summary.count("sent") == 3 and len(handler.received) == 3
    assert {status for status, _, _ in ledger(wh).values()} == {"sent"}


def test_a_server_without_starttls_is_refused_not_sent_in_the_clear(
    wh: Warehouse, settings: Settings, calls: None
) -> None:
    with smtp_server() as (controller, handler):
        summary = send_weekly_reports(configured(settings, controller.port, security="starttls"), wh, week=WEEK,
                                      now=NOW, team="billing")
        assert [(o.status, o.error_kind) for o in summary.outcomes] == [("failed", "tls")]
        assert handler.received == []


def test_dry_run_writes_files_and_records_nothing(wh: Warehouse, settings: Settings, calls: None,
                                                  tmp_path: Any) -> None:
    summary = send_weekly_reports(configured(settings, free_port()), wh, week=WEEK, now=NOW, dry_run_dir=tmp_path)
    assert {o.audience: o.status for o in summary.outcomes} == {"*": "written", "search": "written",
                                                                "billing": "written"}
    folder = tmp_path / WEEK.label / "search"
    names = {p.name for p in folder.iterdir()}
    assert {"email.html", "preview.html", "email.txt", "message.eml", "subject.txt",
            f"llm-cost-{WEEK.label}-search.csv", "daily-spend.png"} <= names
    preview = (folder / "preview.html").read_text()
    assert "cid:" not in preview and 'src="daily-spend.png"' in preview
    assert ledger(wh) == {}


def test_the_message_id_is_recorded_before_data_and_a_retry_after_a_crash_reuses_it(
        wh: Warehouse, settings: Settings, calls: None) -> None:
    import email
    import email.policy

    ledger_at_data: list[tuple[str, set[tuple[str, str, str]]]] = []
    with smtp_server() as (controller, handler):
        accept = handler.handle_DATA

        async def handle_data(server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.original_content or envelope.content,
                                               policy=email.policy.default)
            rows = report_sends.send_states(wh, Scope.all(), report="weekly", period=WEEK.label).to_dicts()
            ledger_at_data.append((message["Message-ID"], {(r["audience"], r["status"], r["message_id"]) for r in rows}))
            return await accept(server, session, envelope)

        handler.handle_DATA = handle_data  # type: ignore[method-assign]
        s = configured(settings, controller.port)
        assert send_weekly_reports(s, wh, week=WEEK, now=NOW).count("sent") == 3
        # when each mail's DATA arrived, the ledger already held its Message-ID as `sending`
        assert len(ledger_at_data) == 3
        for msg_id, rows in ledger_at_data:
            assert any(status == "sending" and mid == msg_id for _, status, mid in rows), (msg_id, rows)
        # a crash after the server accepted the search team's mail, before `sent` was recorded
        search = next(r for r in handler.received if r.rcpt_tos == ["s@example.com"])
        report_sends.record_send(wh, report="weekly", period=WEEK.label, audience="search",
                                 recipients=["s@example.com"], status="sending", attempt=2,
                                 message_id=search.message["Message-ID"], attempted_at=datetime.now(UTC))
        again = send_weekly_reports(s, wh, week=WEEK, now=NOW)
        assert (again.count("sent"), again.count("skipped")) == (1, 2)
        resent = handler.received[-1]
        # the same mail again (at-least-once), under the same Message-ID, so clients show it once
        assert resent.rcpt_tos == ["s@example.com"] and resent.message["Message-ID"] == search.message["Message-ID"]
    assert ledger(wh)["search"][0] == "sent"
