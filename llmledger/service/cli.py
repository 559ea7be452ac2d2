"""`llmledger up`, `llmledger dashboard` and `llmledger keys …`: the service's commands (registered
in `llmledger.cli`).

Key commands open the warehouse directly when it is free; while the service holds the embedded
store they go through its admin API by themselves (`llmledger.dispatch`); `--api URL` with a key
in `LLMLEDGER_API_KEY` reaches any service.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from llmledger.dispatch import ApiOption, notice, settings, store_or_service

app = typer.Typer(help="The llmledger service.")
keys_app = typer.Typer(help="API keys of the service (scopes ingest, read, admin).", no_args_is_help=True)


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Seed simulated traffic when the store is empty.")] = False,
    host: Annotated[str | None, typer.Option(help="Interface (default from settings: 127.0.0.1). Beyond "
                                             "localhost it needs an API key to exist.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8787).")] = None,
    dashboard: Annotated[bool | None, typer.Option(help="Start the dashboard beside the service "
                                                   "(default from settings: yes).")] = None,
    dashboard_port: Annotated[int | None, typer.Option(help="Dashboard port (default from settings: 8501).")] = None,
    calls_per_day: Annotated[int | None, typer.Option(min=100, help="With --demo: simulated calls a day "
                                                      "(default from settings: 30000).")] = None,
) -> None:
    """Migrate and run the service (push ingest, read API, background jobs) and the dashboard, until Ctrl-C."""
    from llmledger.logs import configure
    from llmledger.progress import bars
    from llmledger.service.server import serve

    configure(debug=bool(os.environ.get("LLMLEDGER_DEBUG")))
    config = settings()
    dash = {"enabled": dashboard, "port": dashboard_port}
    service = {"demo_calls_per_day": calls_per_day}
    if any(v is not None for v in (*dash.values(), *service.values())):
        config = config.model_copy(update={
            "dashboard": config.dashboard.model_copy(update={k: v for k, v in dash.items() if v is not None}),
            "service": config.service.model_copy(update={k: v for k, v in service.items() if v is not None}),
        })
    serve(config, host=host, port=port, demo=demo, progress=bars)


@app.command("dashboard")
def dashboard_command(
    host: Annotated[str, typer.Option(help="Interface; beyond localhost every visitor signs in with a read key.")]
    = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8501).")] = None,
    api: Annotated[str | None, typer.Option("--api", metavar="URL", help="The service's URL (default: the "
                                            "service holding this machine's store, else the configured host "
                                            "and port).")] = None,
) -> None:
    """Run only the dashboard, as a client of a service that runs elsewhere (`llmledger up` starts both)."""
    from llmledger.dispatch import find_service
    from llmledger.service import dashboard as board
    from llmledger.service.server import local_url
    from llmledger.service.state import is_loopback

    config = settings()
    found = find_service(api, config)
    url = found.url if found is not None else local_url(config.service.host, config.service.port)
    # beside this machine's service, read with the read key it made for its dashboards
    key = _local_dashboard_key(config) if found is not None and found.found else None
    env = board.environment(config, api_url=url, exposed=not is_loopback(host), key=key)
    command = board.command(host=host, port=port or config.dashboard.port)
    notice(f"dashboard on http://{host}:{port or config.dashboard.port}, reading {url}")
    os.execvpe(command[0], command, env)


def _service_url(config: Any) -> str:
    """The service holding this machine's store, else the configured host and port. (For commands
    not yet routed through `llmledger.dispatch.store_or_service`.)"""
    from llmledger.dispatch import find_service

    found = find_service(None, config)
    return found.url if found is not None else f"http://{config.service.host}:{config.service.port}"


def _api_call(api: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One request to the service at `api` (`path` may carry its query), with the key in
    LLMLEDGER_API_KEY — or, for this machine's service, the token it left in the lock file. Failures
    are `UserError`s. (For commands not yet routed through `llmledger.dispatch.store_or_service`.)"""
    from llmledger.dispatch import find_service
    from llmledger.remote import API_KEY_ENV, ServiceClient

    local = find_service(None, settings())
    client = local if local is not None and local.url == api else ServiceClient(api, os.environ.get(API_KEY_ENV) or None)
    if client.found:
        notice(f"through the llmledger service at {client.url}")
    return client.request(method, path, body=body)


def _local_dashboard_key(config: Any) -> str | None:
    from warehouse.lock import holder

    held = holder(config.warehouse_path.resolve())
    return held.fields.get("dashboard_token") if held is not None else None


def _key_dict(key: Any) -> dict[str, Any]:
    return {"key_id": key.key_id, "name": key.name, "scopes": list(key.scopes), "project": key.project,
            "created_at": key.created_at.isoformat(), "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def _keys(api: str | None, local: Any, remote: Any) -> Any:
    """Run `local(KeyStore)` on the store, or `remote(service)` through the service."""

    def on_store(wh: Any, _: Any) -> Any:
        from llmledger.service.keys import KeyStore

        return local(KeyStore(wh))

    return store_or_service(api, local=on_store, remote=remote)


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, read or admin (repeatable).")],
    project: Annotated[str | None, typer.Option(help="Bind the key to one project.")] = None,
    name: Annotated[str, typer.Option(help="A label.")] = "",
    api: ApiOption = None,
) -> None:
    """Create a key and print its token (shown once)."""
    from llmledger.service.keys import KeyScope

    try:
        scopes = [KeyScope(s) for s in scope]
    except ValueError:
        raise typer.BadParameter("scopes are ingest, read and admin", param_hint="--scope") from None

    def local(store: Any) -> dict[str, Any]:
        key, token = store.create(scopes, project=project, name=name)
        return {**_key_dict(key), "token": token}

    created = _keys(api, local, lambda service: service.post(
        "/v1/keys", {"scopes": [s.value for s in scopes], "project": project, "name": name}))
    print(json.dumps(created))


@keys_app.command("list")
def keys_list(api: ApiOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (never their secrets)."""
    from rich.console import Console
    from rich.table import Table

    keys = _keys(api, lambda store: [_key_dict(k) for k in store.list()], lambda service: service.get("/v1/keys"))
    if as_json:
        print(json.dumps(keys))
        return
    table = Table("key_id", "name", "scopes", "project", "created_at", "revoked_at")
    for k in keys:
        table.add_row(k["key_id"], k["name"], ",".join(k["scopes"]), k["project"] or "(all)", str(k["created_at"]),
                      str(k["revoked_at"] or ""))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], api: ApiOption = None) -> None:
    """Revoke a key."""
    from llmledger.errors import UserError

    def local(store: Any) -> dict[str, Any]:
        key = store.revoke(key_id)
        if key is None:
            raise UserError(f"no such key: {key_id}", "`llmledger keys list` shows them")
        return _key_dict(key)

    revoked = _keys(api, local, lambda service: service.delete(f"/v1/keys/{key_id}"))
    print(f"revoked {revoked['key_id']}")


app.add_typer(keys_app, name="keys")
