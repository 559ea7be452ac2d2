"""The dashboard process `llmledger up` runs beside the service: `streamlit run dashboards/server.py`
(the Streamlit app of `dashboards/app.py` plus its sign-in pages) as a client of the service's API
(URL and key in its environment), bound where the service is bound, stopped with it — and, on
Linux, killed by the kernel if the service dies first.

Served on localhost, the dashboard reads with a key of its own — `dashboard.api_key` when
configured, else the read key the service made for this run — so creating the first API key never
locks it out. Served beyond localhost, it holds no key: every visitor signs in with theirs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from llmledger.settings import Settings

log = logging.getLogger("llmledger.dashboard")

APP = Path(__file__).resolve().parents[2] / "dashboards" / "server.py"
URL_ENV, KEY_ENV, EXPOSED_ENV = "LLMLEDGER_API_URL", "LLMLEDGER_API_KEY", "LLMLEDGER_DASHBOARD_EXPOSED"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask the kernel to SIGTERM this child when its parent (the service) dies, even by kill -9."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Dashboard:
    """A running dashboard process."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def command(*, host: str, port: int) -> list[str]:
    """The Streamlit command line: headless, no telemetry, no file watching, no developer menu."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--global.developmentMode", "false", "--client.toolbarMode", "minimal"]


def environment(settings: Settings, *, api_url: str, exposed: bool, key: str | None = None) -> dict[str, str]:
    """The child's environment: the API URL, and a read key only while served on localhost (the
    configured `dashboard.api_key`, else `key`; beyond localhost every visitor signs in with their
    own); never a key inherited from the operator's shell."""
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    root = str(APP.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env[URL_ENV] = api_url
    env[EXPOSED_ENV] = "1" if exposed else "0"
    configured = settings.dashboard.api_key
    own = configured.get_secret_value() if configured is not None else key
    if own and not exposed:
        env[KEY_ENV] = own
    return env


def start(settings: Settings, *, api_url: str, host: str, exposed: bool, key: str | None = None) -> Dashboard | None:
    """Start the dashboard (None when disabled in settings)."""
    if not settings.dashboard.enabled:
        return None
    port = settings.dashboard.port
    process = subprocess.Popen(command(host=host, port=port), env=environment(settings, api_url=api_url,
                                                                                 exposed=exposed, key=key),
                               stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if os.name == "posix" else None)
    url = f"http://{host}:{port}"
    log.info("dashboard on %s (pid %d), reading %s%s", url, process.pid, api_url,
             "; visitors sign in with a read key" if exposed else "")
    return Dashboard(url, process)
