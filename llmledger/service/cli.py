"""`llmledger up` and `llmledger keys …`: the service's commands (registered in `llmledger.cli`).

Key commands open the warehouse directly when it is free; while the service holds the embedded
store they go through its admin API instead (`--api`, with an admin key in `LLMLEDGER_API_KEY`).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmledger.settings import get_settings

app = typer.Typer(help="The llmledger service.")
keys_app = typer.Typer(help="API keys of the service (scopes ingest, read, admin).", no_args_is_help=True)
console = Console()
notices = Console(stderr=True)  # stdout stays machine-readable (`keys create` prints JSON)

_API = Annotated[str | None, typer.Option("--api", help="Service URL to use instead of opening the store "
                                          "(default: automatic when the store is held by the service).")]


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Seed simulated traffic when the store is empty.")] = False,
    host: Annotated[str | None, typer.Option(help="Interface (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8787).")] = None,
    dashboard: Annotated[bool | None, typer.Option(help="Start the Streamlit dashboard beside the service "
                                                   "(default from settings: yes).")] = None,
    dashboard_port: Annotated[int | None, typer.Option(help="Dashboard port (default from settings: 8501).")] = None,
    calls_per_day: Annotated[int | None, typer.Option(help="With --demo: simulated calls a day "
                                                      "(default from settings: 30000).")] = None,
) -> None:
    """Migrate and run the service (push ingest, read API, background jobs) and the dashboard, until Ctrl-C."""
    import logging

    from llmledger.service.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    dash = {"enabled": dashboard, "port": dashboard_port}
    service = {"demo_calls_per_day": calls_per_day}
    if any(v is not None for v in (*dash.values(), *service.values())):
        settings = settings.model_copy(update={
            "dashboard": settings.dashboard.model_copy(update={k: v for k, v in dash.items() if v is not None}),
            "service": settings.service.model_copy(update={k: v for k, v in service.items() if v is not None}),
        })
    serve(settings, host=host, port=port, demo=demo)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Interface; beyond localhost every visitor signs in with a read key.")]
    = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8501).")] = None,
    api: Annotated[str | None, typer.Option("--api", help="The service's URL (default: the configured "
                                            "host and port).")] = None,
) -> None:
    """Run only the dashboard, as a client of a service that runs elsewhere (`llmledger up` starts both)."""
    from llmledger.service import dashboard as board
    from llmledger.service.server import local_url
    from llmledger.service.state import is_loopback

    settings = get_settings()
    url = api or local_url(settings.service.host, settings.service.port)
    env = board.environment(settings, api_url=url, exposed=not is_loopback(host))
    command = board.command(host=host, port=port or settings.dashboard.port)
    os.execvpe(command[0], command, env)


def _api_call(api: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    token = os.environ.get("LLMLEDGER_API_KEY")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, api.rstrip("/") + path, json=body, headers=headers, timeout=30)
    if response.status_code >= 400:
        notices.print(f"[red]{response.status_code}: {response.text}[/red]")
        raise typer.Exit(1)
    return response.json()


def _with_store(api: str | None, local, remote):  # noqa: ANN001, ANN202
    """Run `local(KeyStore)` on the store, or `remote(api_url)` when it is held by the service."""
    from warehouse.errors import StoreLocked

    settings = get_settings()
    if api is None:
        from llmledger.runtime import open_warehouse
        from llmledger.service.keys import KeyStore

        try:
            with open_warehouse(settings) as wh:
                return local(KeyStore(wh))
        except StoreLocked:
            api = _service_url(settings)
            notices.print(f"[dim]store is held by the service; using {api}[/dim]")
    return remote(api)


def _service_url(settings: Any) -> str:
    """Where this machine's service listens (for CLI commands while it holds the store)."""
    return f"http://{settings.service.host}:{settings.service.port}"


def _key_dict(key: Any) -> dict[str, Any]:
    return {"key_id": key.key_id, "name": key.name, "scopes": list(key.scopes), "project": key.project,
            "created_at": key.created_at.isoformat(), "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, read or admin (repeatable).")],
    project: Annotated[str | None, typer.Option(help="Bind the key to one project.")] = None,
    name: Annotated[str, typer.Option(help="A label.")] = "",
    api: _API = None,
) -> None:
    """Create a key and print its token (shown once)."""
    from llmledger.service.keys import KeyScope

    try:
        scopes = [KeyScope(s) for s in scope]
    except ValueError:
        notices.print("[red]scopes are ingest, read and admin[/red]")
        raise typer.Exit(2) from None

    def local(store):  # noqa: ANN001, ANN202
        key, token = store.create(scopes, project=project, name=name)
        return {**_key_dict(key), "token": token}

    def remote(url):  # noqa: ANN001, ANN202
        return _api_call(url, "POST", "/v1/keys", {"scopes": [s.value for s in scopes], "project": project, "name": name})

    created = _with_store(api, local, remote)
    print(json.dumps(created))


@keys_app.command("list")
def keys_list(api: _API = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (never their secrets)."""
    keys = _with_store(api, lambda store: [_key_dict(k) for k in store.list()],
                       lambda url: _api_call(url, "GET", "/v1/keys"))
    if as_json:
        print(json.dumps(keys))
        return
    table = Table("key_id", "name", "scopes", "project", "created_at", "revoked_at")
    for k in keys:
        table.add_row(k["key_id"], k["name"], ",".join(k["scopes"]), k["project"] or "(all)", str(k["created_at"]),
                      str(k["revoked_at"] or ""))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], api: _API = None) -> None:
    """Revoke a key."""

    def local(store):  # noqa: ANN001, ANN202
        key = store.revoke(key_id)
        if key is None:
            notices.print(f"[red]no such key: {key_id}[/red]")
            raise typer.Exit(1)
        return _key_dict(key)

    revoked = _with_store(api, local, lambda url: _api_call(url, "DELETE", f"/v1/keys/{key_id}"))
    console.print(f"revoked {revoked['key_id']}")


app.add_typer(keys_app, name="keys")
