"""Warehouse errors: driver exceptions are translated once, here, into this small hierarchy.

`WarehouseError.user_message` is safe to show to an API user; `str(err)` may include SQL and
engine detail meant for logs and operators.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base of every warehouse failure."""

    user_message = "warehouse error"


class StoreLocked(WarehouseError):
    """The embedded store is held by another live process."""

    user_message = "the embedded warehouse is in use by another process"


class QueryFailed(WarehouseError):
    """A statement failed; the message names the statement (first line, shortened) and the engine error."""

    user_message = "query failed"

    def __init__(self, statement: str, detail: str, *, code: int | None = None) -> None:
        self.statement = statement
        self.detail = detail
        self.code = code
        super().__init__(f"{detail}\n  in statement: {_excerpt(statement)}")


class SchemaMismatch(WarehouseError):
    """Migrations on disk and in the warehouse disagree (an applied file was edited or is missing)."""

    user_message = "warehouse schema does not match this version of llmledger"


class ConnectionFailed(WarehouseError):
    """The ClickHouse server could not be reached or refused the credentials."""

    user_message = "cannot reach the warehouse"


def _excerpt(statement: str, limit: int = 300) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
