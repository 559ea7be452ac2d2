"""The service's log: one line per thing worth knowing (started, a key in place, an alert, a failed
job), nothing per heartbeat. APScheduler's per-run lines ("Running job …", "… executed
successfully", every 15 s for alert delivery) are the scheduler's heartbeat, shown with `--debug`
only; job outcomes are logged by llmledger's own runner."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HEARTBEATS = ("apscheduler.scheduler", "apscheduler.executors.default", "apscheduler.jobstores.default")
# libraries that narrate their routine work at INFO (kaleido starting Chromium for each report chart)
CHATTY = ("choreographer", "kaleido", "httpx")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the moment: while progress bars are drawn they stand in
    for it and print each line above themselves instead of being overwritten by them."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(*, debug: bool = False) -> None:
    """Log INFO and up to stderr (DEBUG with `debug`), heartbeats only when debugging."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=FORMAT, handlers=[_Stderr()])
    for name in (*HEARTBEATS, *CHATTY):
        logging.getLogger(name).setLevel(logging.DEBUG if debug and name in HEARTBEATS else logging.WARNING)
    if debug:  # the libraries' own debug chatter is not ours to show
        for name in ("httpcore", "urllib3", "asyncio", "python_multipart", "watchdog"):
            logging.getLogger(name).setLevel(logging.INFO)
