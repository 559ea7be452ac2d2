"""`llmledger report weekly` as a cron user runs it: a real process with its own embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.service_support import REPO, free_port


def _run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("LLMLEDGER_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "llmledger", "report", "weekly", *args], cwd=home.parent,
                          env=environment, capture_output=True, text=True, timeout=120)


def test_dry_run_writes_the_company_report_and_a_failed_send_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _run(home, "--week", "2025-W45", "--dry-run", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["week"] == "2025-W45" and summary["written"] == 1
    folder = tmp_path / "out" / "2025-W45" / "company"
    assert (folder / "email.html").is_file() and (folder / "llm-cost-2025-W45-company.csv").is_file()
    assert "No spend this week or last" in (folder / "email.html").read_text()

    failed = _run(home, "--week", "2025-W45", "--json", env={
        "LLMLEDGER_REPORT__COMPANY": '["finops@example.com"]', "LLMLEDGER_SMTP__HOST": "127.0.0.1",
        "LLMLEDGER_SMTP__PORT": str(free_port()), "LLMLEDGER_SMTP__SECURITY": "none",
        "LLMLEDGER_SMTP__ATTEMPTS": "1"})
    assert failed.returncode == 1
    outcome = json.loads(failed.stdout.strip().splitlines()[-1])["outcomes"]
    assert [(o["audience"], o["status"], o["error_kind"]) for o in outcome] == [("*", "failed", "unavailable")]
