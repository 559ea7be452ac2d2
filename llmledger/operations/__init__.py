"""Operations: the work a CLI verb does, written once and run either on the store or in the service.

An operation is a function `func(ctx, params) -> JSON-shaped result`, registered with the HTTP
method and path the service answers it on, the scope a caller needs and a pydantic model of its
parameters:

    class Params(BaseModel):
        since: datetime

    @operation("things.count", "GET", "/v1/things/count", Params, scope=READ)
    def count_things(ctx: OpContext, p: Params) -> dict[str, int]:
        return {"things": queries.count(ctx.wh, ctx.scope, p.since)}

The service adds one route per registered operation (`llmledger.service.routes.operations`): GET
parameters come from the query string, POST ones from a JSON body (from the query string for an
`upload` operation, whose body is a file). The CLI runs one with `perform("things.count", api,
since=...)` (`llmledger.dispatch`): on the store when it is free, through the service's route
when the service holds it or `--api` names one, and gets the same result either way. Long
operations (`long=True`) report progress on `ctx.feed`; through the service it streams back.

Modules of operations import their heavy dependencies inside the functions, so importing the
registry keeps the CLI fast.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llmledger.progress import SILENT, Feed

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ingest.pipeline import Pipeline
    from llmledger.settings import Settings
    from warehouse.client import Warehouse
    from warehouse.queries.scope import Scope

READ, ADMIN, OPERATOR = "read", "admin", "operator"  # operator: admin, not bound to a project
MODULES = ("admin", "alerting", "files", "jobs", "reports", "routing")


@dataclass
class OpContext:
    """What an operation runs with."""

    wh: Warehouse | None  # None for an operation that needs only settings (`store=False`)
    settings: Settings
    scope: Scope  # what the caller may read (all projects from the CLI)
    feed: Feed = SILENT
    upload: Path | None = None  # the file of an upload operation, on the machine that runs it
    pipeline: Pipeline | None = None  # the service's writer (shares its lock with pushes); None: make one
    writer_lock: AbstractContextManager[object] | None = None  # the service's writer lock
    run_job: Callable[[str], Any] | None = None  # the service's scheduler; None: run it here
    in_service: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """A registered operation."""

    name: str
    method: str
    path: str
    params: type[BaseModel]
    func: Callable[[OpContext, Any], Any]
    scope: str
    long: bool
    upload: bool
    store: bool  # False: needs only settings (run here when no service runs, without opening the store)
    summary: str


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, method: str, path: str, params: type[BaseModel], *, scope: str, long: bool = False,
              upload: bool = False, store: bool = True,
              ) -> Callable[[Callable[[OpContext, Any], Any]], Callable[[OpContext, Any], Any]]:
    """Register `func` as the operation `name` (see the module docstring)."""

    def register(func: Callable[[OpContext, Any], Any]) -> Callable[[OpContext, Any], Any]:
        summary = (func.__doc__ or name).strip().splitlines()[0]
        OPERATIONS[name] = Operation(name, method, path, params, func, scope, long, upload, store, summary)
        return func

    return register


def get(name: str) -> Operation:
    """The operation `name` (its module imported on first use)."""
    if name not in OPERATIONS:
        module = name.split(".", 1)[0]
        importlib.import_module(f"llmledger.operations.{_MODULE_OF.get(module, module)}")
    return OPERATIONS[name]


def load_all() -> dict[str, Operation]:
    """Every operation (the service registers a route for each)."""
    for module in MODULES:
        importlib.import_module(f"llmledger.operations.{module}")
    return OPERATIONS


def to_json(value: Any) -> str:
    """JSON with exact decimals (as strings), ISO 8601 times and paths as text: what an operation's
    result looks like on the wire, and (read back) to the CLI on either path."""

    def default(item: Any) -> Any:
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, Decimal | Path):
            return str(item)
        if isinstance(item, set | frozenset | tuple):
            return list(item)
        return str(item)

    return json.dumps(value, default=default)


# the module of each operation name's first part, where they differ
_MODULE_OF = {"ingest": "files", "import": "files", "signals": "alerting", "alerts": "alerting",
              "prices": "admin", "migrations": "admin", "demo": "admin", "summary": "admin",
              "collectors": "jobs", "rollups": "jobs", "report": "reports"}
