"""Where a command runs: on the store itself, or through the service that holds it.

The embedded store has one owner. While `llmledger up` runs, it holds the store and has written
its URL and a per-run token into the store's lock file; a command finds them there and goes
through the service's API instead, without any flag. `--api URL` sends a command to any service
(its key in `LLMLEDGER_API_KEY`). With a ClickHouse server (`warehouse.url`) commands open the
warehouse themselves, as many processes may.

A command that runs a registered operation (`llmledger.operations`) routes itself with one call,

    result = perform("collectors.run", api, feed=feed, name=name, since=since)

which validates the parameters, runs the operation on the store or sends them to its route, and
returns the same JSON-shaped result either way. A verb whose endpoint was written by hand uses
the lower level:

    result = store_or_service(api,
                              local=lambda wh, settings: do_it(wh, ...),   # on the store
                              remote=lambda service: service.post("/v1/…", {...}))  # through the API
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from llmledger.errors import UserError
from llmledger.progress import SILENT, Feed
from llmledger.remote import API_KEY_ENV, ServiceClient, file_chunks

if TYPE_CHECKING:
    from llmledger.settings import Settings
    from warehouse.client import Warehouse

T = TypeVar("T")

ApiOption = Annotated[str | None, typer.Option(
    "--api", metavar="URL", show_default=False,
    help=f"Go through the llmledger service at URL (key in ${API_KEY_ENV}). Default: the service holding "
         "this machine's store, when one runs; else the store itself.")]


def settings() -> Settings:
    """The process's settings (imported on first use, so `--help` stays fast)."""
    from llmledger.settings import get_settings

    return get_settings()


def notice(text: str) -> None:
    """A dim line on stderr (stdout stays for results)."""
    from rich.console import Console

    Console(stderr=True).print(f"[dim]{text}[/dim]", highlight=False)


def find_service(api: str | None, config: Settings) -> ServiceClient | None:
    """The service to go through: `api` when given; else the live holder of this machine's embedded
    store, when it serves; None to open the store here."""
    env_key = os.environ.get(API_KEY_ENV) or None
    if api:
        return ServiceClient(api, env_key)
    if config.warehouse.url:
        return None
    from warehouse.lock import holder

    held = holder(config.warehouse_path.resolve())
    if held is None or held.pid == str(os.getpid()):  # free, or held by this very process (it may open it)
        return None
    if held.url is None:
        if held.state == "starting":
            raise UserError(f"the llmledger service ({held.describe()}) is still starting: migrating the store "
                            "or seeding the demo", "try again in a moment")
        raise UserError(f"the embedded warehouse at {config.warehouse_path} is in use by {held.describe()}",
                        "wait for it to finish, or stop it")
    return ServiceClient(held.url, env_key or held.token, found=True)


def store_or_service(api: str | None, *, local: Callable[[Warehouse, Settings], T],
                     remote: Callable[[ServiceClient], T]) -> T:
    """Run `local` on the opened store, or `remote` through the service (see the module docstring)."""
    from warehouse.errors import StoreLocked

    config = settings()
    service = find_service(api, config)
    if service is None:
        from llmledger.runtime import open_warehouse

        try:
            wh = open_warehouse(config)
        except StoreLocked:  # the service took the store between the look and the open
            service = find_service(None, config)
            if service is None:
                raise
        else:
            with wh:
                return local(wh, config)
    if service.found:
        notice(f"through the llmledger service at {service.url}")
    return remote(service)


def service_or_none(api: str | None) -> ServiceClient | None:
    """The service a command that needs no store (settings only) should ask, if one runs."""
    return find_service(api, settings())


def perform(name: str, api: str | None, /, *, feed: Feed = SILENT, upload: Path | None = None, **params: Any) -> Any:
    """Run the registered operation `name` with `params` on the store or through the service (see
    the module docstring); `upload` is the operation's file. The result is JSON-shaped both ways."""
    import json

    from pydantic import ValidationError

    from llmledger import operations

    op = operations.get(name)
    try:
        args = op.params(**params)
    except ValidationError as err:
        first = err.errors()[0]
        raise UserError(f"{'.'.join(str(p) for p in first['loc']) or 'input'}: {first['msg']}") from None

    def local(wh: Warehouse, config: Settings) -> Any:
        from warehouse.queries.scope import Scope

        try:
            result = op.func(operations.OpContext(wh, config, Scope.all(), feed=feed, upload=upload), args)
        except ValidationError as err:
            first = err.errors()[0]
            raise UserError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from err
        except (LookupError, PermissionError, ValueError) as err:
            raise UserError(str(err)) from err
        return json.loads(operations.to_json(result))

    def remote(service: ServiceClient) -> Any:
        payload = args.model_dump(mode="json", exclude_none=True)
        if op.upload:
            content = file_chunks(upload, feed, f"send {upload.name}") if upload is not None else b""
            return service.run(op.method, op.path, params=payload, content=content, feed=feed)
        if op.method == "GET":
            return service.run("GET", op.path, params=payload, feed=feed) if op.long else \
                service.request("GET", op.path, params=payload)
        return service.run(op.method, op.path, body=payload, feed=feed) if op.long else \
            service.request(op.method, op.path, body=payload)

    if not op.store:
        config = settings()
        service = find_service(api, config)
        if service is None:
            from warehouse.queries.scope import Scope

            return json.loads(operations.to_json(op.func(operations.OpContext(None, config, Scope.all()), args)))
        if service.found:
            notice(f"through the llmledger service at {service.url}")
        return remote(service)
    return store_or_service(api, local=local, remote=remote)
