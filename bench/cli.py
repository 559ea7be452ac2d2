"""How fast the CLI answers: `llmledger --help`, and commands on an existing, migrated embedded store —
opened by the command itself, and through a running `llmledger up` that holds the store. Each is
timed as a user sees it (a fresh process, wall clock), median of several runs, beside the same
commands run by another checkout of llmledger (`--baseline PATH`, e.g. the main branch) on the same
store in the same run. Targets: `--help` under 1 s, a command under 2 s.

    python -m bench.cli [--runs 7] [--baseline /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.report import record
from tests.service_support import free_port

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "summary": ["summary", "--days", "3"], "alerts list": ["alerts", "list"],
            "signals list": ["signals", "list"]}


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _env(home: Path, code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLEDGER_")}
    return {**env, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(code), "COLUMNS": "120"}


def _time(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process: user + system, its threads included)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "llmledger", *args], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"llmledger {' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    return seconds, usage.ru_utime + usage.ru_stime


def _medians(home: Path, code: Path, runs: int, names: list[str]) -> dict[str, tuple[float, float]]:
    """Per command: (median wall seconds, median CPU seconds)."""
    env = _env(home, code)
    out = {}
    for name in names:
        samples = [_time(COMMANDS[name], env, home.parent) for _ in range(runs)]
        out[name] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
    return out


def _serve(home: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {**_env(home, REPO), "LLMLEDGER_SCHEDULER__ENABLED": "false"}
    process = subprocess.Popen([sys.executable, "-m", "llmledger", "up", "--port", str(port), "--no-dashboard"],
                               env=env, cwd=home.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("llmledger up did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", type=Path, default=None, help="Another llmledger checkout to compare with.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmledger-bench-cli-") as scratch:
        home = Path(scratch) / "home"
        seeded = subprocess.run([sys.executable, "-m", "llmledger", "demo", "--days", "3", "--calls-per-day", "500"],
                                env=_env(home, REPO), cwd=scratch, capture_output=True, text=True, timeout=900,
                                check=False)
        if seeded.returncode != 0:
            raise RuntimeError(seeded.stderr[-2000:])
        load_before = _load()
        names = list(COMMANDS)
        ours = _medians(home, REPO, args.runs, names)
        base = _medians(home, args.baseline, args.runs, names) if args.baseline else {}
        service = _serve(home)
        try:
            through = _medians(home, REPO, args.runs, names[1:])
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(60)
        load_after = _load()
    def cell(pair: tuple[float, float] | None) -> str:
        return "—" if pair is None else f"{pair[0]:.2f} / {pair[1]:.2f}"

    rows = []
    for name in names:
        cells = [f"`llmledger {' '.join(COMMANDS[name])}`", cell(ours[name]), cell(through.get(name))]
        if base:
            cells += [cell(base[name]), f"{base[name][1] / ours[name][1]:.1f}×"]
        rows.append("| " + " | ".join(cells) + " |")
    head = "| command | on the store: wall / CPU (s) | through `llmledger up`: wall / CPU (s) |" + (
        " baseline on the store: wall / CPU (s) | less CPU |" if base else "")
    rule = "| --- | ---: | ---: |" + (" ---: | ---: |" if base else "")
    body = f"""Wall-clock seconds a user waits for a fresh `python -m llmledger` process, median of {args.runs} runs
each, on an existing embedded store (3 simulated days, 500 calls a day, migrated and priced): opened by
the command itself, and through a running `llmledger up` that holds the store (found from its lock file).
{"The baseline is the same commands from " + str(args.baseline) + " in the same run, on the same store." if base else ""}
Targets: `--help` under 1 s, a command under 2 s. Load average before {load_before}, after {load_after}
(2 shared cores: other engineers' work runs beside this, so wall time stretches with the load; the CPU
seconds of the command's process — user + system, all its threads — are what it costs on an idle machine,
where it waits for nothing else).

{head}
{rule}
{chr(10).join(rows)}
"""
    record("CLI start-up and commands (bench/cli.py)", body)
    print(body)


if __name__ == "__main__":
    main()
