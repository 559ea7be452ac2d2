"""Side by side: the same attribution questions on PostgreSQL in LiteLLM's spend-log schema and on
llmledger's read API, over the same calls, interleaved. Not part of CI.

1. PostgreSQL: Debian's `postgresql` (installed with apt-get where absent) runs a private cluster
   under bench/out/pg (`shared_buffers` 4 GB, `work_mem` 256 MB, 2 parallel workers per gather,
   Unix socket only). The calls of a growth-benchmark store (`bench.growth`, default 10M) are loaded
   into `"LiteLLM_SpendLogs"` as LiteLLM's proxy writes them: route and feature as `request_tags`,
   team and the provider's cache tokens in `metadata` jsonb, the table's own indexes (`startTime`,
   (`startTime`, `request_id`), `end_user`, `session_id`), then `VACUUM ANALYZE`.
2. llmledger: `llmledger up` on the same store in a child process, read over HTTP.
3. The seven questions, each asked of both alternately, `--repeat` times after a warm-up; p50 /
   p95 of both and the ratio. Each answer pair is checked to agree (totals, top users).

Usage: python -m bench.postgres_side_by_side [--calls 10000000] [--repeat 10] [--keep] [--only QUESTION ...] [--section NAME]
(needs the `bench` extra: pip install -e '.[bench]')
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PG_DIR = OUT / "pg"
TABLE = '"LiteLLM_SpendLogs"'
TEAM = "data"  # the team of question 5
SETTINGS = {"shared_buffers": "4GB", "work_mem": "256MB", "max_parallel_workers_per_gather": "2"}

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    request_id text PRIMARY KEY,
    call_type text NOT NULL,
    api_key text NOT NULL DEFAULT '',
    spend double precision NOT NULL DEFAULT 0,
    total_tokens integer NOT NULL DEFAULT 0,
    prompt_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    "startTime" timestamp(3) NOT NULL,
    "endTime" timestamp(3) NOT NULL,
    request_duration_ms integer,
    "completionStartTime" timestamp(3),
    model text NOT NULL DEFAULT '',
    model_id text DEFAULT '',
    model_group text DEFAULT '',
    custom_llm_provider text DEFAULT '',
    api_base text DEFAULT '',
    "user" text DEFAULT '',
    metadata jsonb DEFAULT '{{}}',
    cache_hit text DEFAULT '',
    cache_key text DEFAULT '',
    request_tags jsonb DEFAULT '[]',
    team_id text,
    organization_id text,
    end_user text,
    requester_ip_address text,
    messages jsonb DEFAULT '{{}}',
    response jsonb DEFAULT '{{}}',
    proxy_server_request jsonb DEFAULT '{{}}',
    session_id text,
    status text,
    mcp_namespaced_tool_name text,
    agent_id text
)
"""
INDEXES = (f'CREATE INDEX IF NOT EXISTS spendlogs_starttime ON {TABLE} ("startTime")',
           f'CREATE INDEX IF NOT EXISTS spendlogs_starttime_request ON {TABLE} ("startTime", request_id)',
           f"CREATE INDEX IF NOT EXISTS spendlogs_end_user ON {TABLE} (end_user)",
           f"CREATE INDEX IF NOT EXISTS spendlogs_session ON {TABLE} (session_id)")
COLUMNS = ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
           '"startTime"', '"endTime"', "request_duration_ms", '"completionStartTime"', "model", "model_group",
           "custom_llm_provider", '"user"', "metadata", "cache_hit", "request_tags", "end_user", "session_id", "status")

# The calls as LiteLLM's proxy logs them (one row per call; a CSV for COPY).
EXPORT = """
SELECT event_id AS request_id, 'acompletion' AS call_type, api_key_id AS api_key, toFloat64(cost_usd) AS spend,
    input_tokens + output_tokens AS total_tokens, input_tokens AS prompt_tokens, output_tokens AS completion_tokens,
    formatDateTime(ts, '%Y-%m-%d %H:%i:%S.%f') AS start_time,
    formatDateTime(ts + toIntervalMillisecond(ifNull(latency_ms, 0)), '%Y-%m-%d %H:%i:%S.%f') AS end_time,
    latency_ms AS request_duration_ms,
    if(ttft_ms IS NULL, NULL, formatDateTime(ts + toIntervalMillisecond(assumeNotNull(ttft_ms)), '%Y-%m-%d %H:%i:%S.%f'))
        AS completion_start_time,
    toString(model) AS model_name, toString(model) AS model_group, toString(provider) AS custom_llm_provider,
    user_id AS user,
    concat('{"user_api_key_team_alias":', toJSONString(toString(team)), ',"user_api_key_team_id":',
           toJSONString(toString(team)), ',"user_api_key_user_id":', toJSONString(user_id),
           ',"additional_usage_values":{"cache_read_input_tokens":', toString(cache_read_tokens),
           ',"cache_creation_input_tokens":', toString(cache_write_5m_tokens + cache_write_1h_tokens), '}}') AS metadata,
    'False' AS cache_hit,
    concat('[', toJSONString(concat('route:', toString(route))), ',', toJSONString(concat('feature:', toString(feature))),
           ']') AS request_tags,
    user_id AS end_user, session_id AS session, if(status = 'ok', 'success', 'failure') AS litellm_status
FROM calls
"""


def _pg_bin() -> Path:
    """The PostgreSQL server binaries, installing Debian's `postgresql` where absent."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


class Postgres:
    """A private PostgreSQL cluster under bench/out/pg, reached over its Unix socket."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.data, self.socket = PG_DIR / "data", PG_DIR / "socket"

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            PG_DIR.mkdir(parents=True, exist_ok=True)
            self.socket.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(PG_DIR, "postgres", "postgres")
                shutil.chown(self.socket, "postgres", "postgres")
            subprocess.run(_as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                        "--no-sync"), check=True, capture_output=True)
        options = " ".join(f"-c {k}={v}" for k, v in {**SETTINGS, "listen_addresses": "''",
                                                        "unix_socket_directories": str(self.socket)}.items())
        subprocess.run(_as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(PG_DIR / "server.log"),
                                    "-o", options, "-w", "start"), check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(_as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"),
                       capture_output=True)

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(host=str(self.socket), user="postgres", dbname="postgres", autocommit=True)


def load(pg: Postgres, store: Path) -> int:
    """The store's calls into `"LiteLLM_SpendLogs"` (once); returns the rows there."""
    with pg.connect() as conn:
        conn.execute(DDL)
        if conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'spendlogs_session'").fetchone()[0]:
            return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # loaded by an earlier run
        conn.execute(f"TRUNCATE {TABLE}")  # a load that did not finish
    from warehouse.client import Warehouse

    csv = OUT / "spendlogs-day.csv"  # one day at a time: the disk holds a day's CSV, not the month's
    with Warehouse.embedded(store, "llmledger") as wh, pg.connect() as conn:
        days = [d for (d,) in wh.query_rows("SELECT DISTINCT toDate(ts) AS d FROM calls ORDER BY d")]
        for day in days:
            wh.command(f"INSERT INTO FUNCTION file('{csv}', 'CSV') {EXPORT} WHERE toDate(ts) = {{d:Date}} ORDER BY ts "
                       "SETTINGS engine_file_truncate_on_insert = 1", {"d": day})
            with conn.cursor().copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy, \
                    csv.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        csv.unlink(missing_ok=True)
        for statement in INDEXES:
            conn.execute(statement)
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])


@dataclass(frozen=True)
class Question:
    """One question: its PostgreSQL SQL (bound `%(start)s` / `%(end)s`) and its read-API call."""

    name: str
    days: float
    sql: str
    path: str
    params: tuple[tuple[str, str], ...]


_ROUTE = "(SELECT substr(t, 7) FROM jsonb_array_elements_text(request_tags) AS t WHERE t LIKE 'route:%%' LIMIT 1)"
_RANGE = '"startTime" >= %(start)s AND "startTime" < %(end)s'
QUESTIONS = (
    Question("spend per user, 30 days", 30,
             f"SELECT end_user, sum(spend) AS spend FROM {TABLE} WHERE {_RANGE} GROUP BY end_user ORDER BY spend DESC",
             "/v1/usage", (("dimension", "user_id"), ("limit", "100000"), ("measure", "cost_usd"))),
    Question("spend per model per day, 30 days", 30,
             f"SELECT date_trunc('day', \"startTime\") AS day, model, sum(spend) FROM {TABLE} WHERE {_RANGE} "
             "GROUP BY day, model ORDER BY day, model",
             "/v1/timeseries", (("grain", "day"), ("measure", "cost_usd"), ("dimension", "model"), ("top", "100"))),
    Question("spend per team, last 7 days", 7,
             f"SELECT metadata->>'user_api_key_team_alias' AS team, sum(spend) AS spend FROM {TABLE} WHERE {_RANGE} "
             "GROUP BY team ORDER BY spend DESC",
             "/v1/usage", (("dimension", "team"), ("measure", "cost_usd"))),
    Question("p99 latency per model, 30 days", 30,
             "SELECT model, percentile_cont(0.99) WITHIN GROUP (ORDER BY request_duration_ms) FROM "
             f"{TABLE} WHERE {_RANGE} AND status = 'success' GROUP BY model ORDER BY model",
             "/v1/latency", (("dimension", "model"),)),
    Question("spend per route within one team, 30 days", 30,
             f"SELECT {_ROUTE} AS route, sum(spend) AS spend FROM {TABLE} WHERE {_RANGE} "
             f"AND metadata->>'user_api_key_team_alias' = '{TEAM}' GROUP BY route ORDER BY spend DESC",
             "/v1/usage", (("dimension", "route"), ("filter", f"team:{TEAM}"), ("measure", "cost_usd"))),
    Question("top 20 users, last 24 hours", 1,
             f"SELECT end_user, sum(spend) AS spend FROM {TABLE} WHERE {_RANGE} GROUP BY end_user "
             "ORDER BY spend DESC LIMIT 20",
             "/v1/top", (("dimension", "user_id"), ("n", "20"))),
    Question("cache hit ratio per route, weekly, 30 days", 30,
             f"SELECT date_trunc('week', \"startTime\") AS week, {_ROUTE} AS route, "
             "sum((metadata->'additional_usage_values'->>'cache_read_input_tokens')::bigint)::float8 / "
             "nullif(sum((metadata->'additional_usage_values'->>'cache_read_input_tokens')::bigint "
             "+ (metadata->'additional_usage_values'->>'cache_creation_input_tokens')::bigint), 0) "
             f"FROM {TABLE} WHERE {_RANGE} GROUP BY week, route ORDER BY week, route",
             "/v1/cache", (("grain", "week"), ("dimension", "route"))),
)


def _agree(question: Question, pg_rows: list[tuple], api: dict[str, Any]) -> bool:
    """Whether both answers say the same (money to a millionth of a dollar, top users as a set)."""
    rows = api["rows"]
    if question.path == "/v1/usage" or question.path == "/v1/top":
        field = "cost_usd"
        theirs = {str(r[0]): float(r[1]) for r in pg_rows}
        ours = {str(r["key"]): float(r[field]) for r in rows}
        if question.path == "/v1/top":
            return set(theirs) == set(ours)
        return theirs.keys() == ours.keys() and all(abs(theirs[k] - ours[k]) < 1e-6 * max(1, abs(ours[k]))
                                                    for k in ours)
    if question.path == "/v1/timeseries":
        return abs(sum(float(r[2]) for r in pg_rows) - sum(float(r["value"]) for r in rows)) < 1e-3
    if question.path == "/v1/latency":
        return {str(r[0]) for r in pg_rows} == {str(r["key"]) for r in rows}
    return len(pg_rows) == len(rows)


def _serve(store: Path, out: Path = OUT) -> tuple[subprocess.Popen[bytes], str]:
    """`llmledger up` on `store` (scheduler off), its home and log under `out`; its process and URL."""
    from bench.growth import _port, wait_healthy

    port = _port()
    env = {**os.environ, "LLMLEDGER_HOME": str(out / "pg-llmledger-home"), "LLMLEDGER_WAREHOUSE__PATH": str(store),
           "LLMLEDGER_SCHEDULER__ENABLED": "false", "PYTHONPATH": str(ROOT)}
    env.pop("LLMLEDGER_CONFIG", None)
    service = subprocess.Popen([sys.executable, "-m", "llmledger", "up", "--no-dashboard", "--host", "127.0.0.1",
                                "--port", str(port)], cwd=ROOT, env=env, stdout=(out / "pg-llmledger.log").open("wb"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, out / "pg-llmledger.log")
    return service, url


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def run(calls: int, repeat: int, questions: tuple[Question, ...] = QUESTIONS) -> dict[str, Any]:
    import httpx

    from bench.growth import LoadSampler, store_of
    from warehouse.client import Warehouse

    store = store_of(calls)
    if not store.exists():
        raise SystemExit(f"no store at {store}: build it first (python -m bench.growth --sizes {calls} --build-only)")
    with Warehouse.embedded(store, "llmledger") as wh:
        last = wh.query_rows("SELECT max(ts) FROM calls")[0][0].replace(tzinfo=UTC)
    end = last + timedelta(milliseconds=1)
    pg = Postgres()
    pg.start()
    try:
        began = time.perf_counter()
        rows = load(pg, store)
        load_seconds = time.perf_counter() - began
        service, url = _serve(store)
    except BaseException:
        pg.stop()
        raise
    timings: dict[str, dict[str, list[float]]] = {q.name: {"pg": [], "llmledger": []} for q in questions}
    agree: dict[str, bool] = {}
    try:
        with pg.connect() as conn, httpx.Client(base_url=url, timeout=600) as http, LoadSampler() as load_avg:
            size = conn.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()[0]

            def ask_pg(q: Question) -> list[tuple]:
                start = end - timedelta(days=q.days)
                bounds = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
                return conn.execute(q.sql, bounds).fetchall()

            def ask_api(q: Question) -> dict[str, Any]:
                start = end - timedelta(days=q.days)
                params = (("start", start.isoformat()), ("end", end.isoformat()), *q.params)
                response = http.get(q.path, params=params)
                response.raise_for_status()
                return response.json()  # type: ignore[no-any-return]

            def timed(fn: Callable[[Question], Any], q: Question) -> tuple[float, Any]:
                at = time.perf_counter()
                answer = fn(q)
                return (time.perf_counter() - at) * 1000, answer

            for q in questions:  # warm-up, and the answers compared
                agree[q.name] = _agree(q, timed(ask_pg, q)[1], timed(ask_api, q)[1])
            for i in range(repeat):
                for q in questions:
                    order = (("pg", ask_pg), ("llmledger", ask_api)) if i % 2 == 0 else (("llmledger", ask_api), ("pg", ask_pg))
                    for side, fn in order:
                        timings[q.name][side].append(timed(fn, q)[0])
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)
        pg.stop()
    results = {}
    for name, sides in timings.items():
        results[name] = {side: {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(_percentile(s, 0.95), 1)}
                         for side, s in sides.items()}
        results[name]["ratio_p50"] = round(results[name]["pg"]["p50_ms"] / results[name]["llmledger"]["p50_ms"], 1)
        results[name]["agree"] = agree[name]
    return {"rows": rows, "pg_bytes": size, "load_seconds": round(load_seconds), "questions": results,
            "load": load_avg.summary(), "end": end.isoformat()}


def report(result: dict[str, Any], repeat: int) -> str:
    lines = [f"| {name} | {r['pg']['p50_ms']:,} / {r['pg']['p95_ms']:,} | {r['llmledger']['p50_ms']} / "
             f"{r['llmledger']['p95_ms']} | **{r['ratio_p50']:,}×** | {'yes' if r['agree'] else '**no**'} |"
             for name, r in result["questions"].items()]
    worst = min(result["questions"].items(), key=lambda kv: kv[1]["ratio_p50"])
    return f"""
{result['rows']:,} simulated calls (the growth benchmark's store) in PostgreSQL 15 as LiteLLM's proxy logs
them — `"LiteLLM_SpendLogs"`, route and feature as `request_tags`, team and cache tokens in `metadata`
jsonb, LiteLLM's indexes (`startTime`, (`startTime`, `request_id`), `end_user`, `session_id`),
`shared_buffers` 4 GB, `work_mem` 256 MB, 2 parallel workers per gather, {result['pg_bytes'] / 2**30:.1f} GiB
with indexes — against llmledger's read API over HTTP (`llmledger up`, embedded chDB, its own process), same
machine, same calls; the spend questions ask `/v1/usage` for spend alone (`measure=cost_usd`: key, calls,
spend), as PostgreSQL is asked for it. Each question asked of both alternately {repeat} times after a warm-up
(ranges end at the last call). Machine load during the run: mean {result['load']['mean']}, max {result['load']['max']}.

| question | PostgreSQL p50 / p95 ms | llmledger p50 / p95 ms | ratio (p50) | same answer |
| --- | ---: | ---: | ---: | :---: |
{chr(10).join(lines)}

**Smallest ratio: {worst[1]['ratio_p50']}×** ({worst[0]}; target ≥ 50×).
"""


SECTION = "PostgreSQL (LiteLLM spend logs) side by side"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000_000, help="the growth store to use")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL cluster for another run")
    parser.add_argument("--only", action="append", default=[], metavar="QUESTION",
                        help="ask only this question (repeatable; a name from the table)")
    parser.add_argument("--section", default=SECTION, help="the BENCHMARKS.md section to (re)write")
    args = parser.parse_args()
    unknown = set(args.only) - {q.name for q in QUESTIONS}
    if unknown:
        parser.error(f"unknown question(s) {sorted(unknown)}: choose among {[q.name for q in QUESTIONS]}")
    result = run(args.calls, args.repeat, tuple(q for q in QUESTIONS if not args.only or q.name in args.only))
    print(json.dumps(result, indent=1))
    if not args.keep:
        shutil.rmtree(PG_DIR, ignore_errors=True)
    body = report(result, args.repeat)
    print(body)
    record(args.section, body)


if __name__ == "__main__":
    main()
