"""Who is calling: the API key of a request, its scopes and project binding.

Without any active key the service is open but bound to localhost (see `ServiceState.auth_mode`);
with keys, every request needs `Authorization: Bearer <key>` (or `X-API-Key`). A key bound to a
project writes only that project and reads `Scope.of(project)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from llmledger.service.keys import KeyScope
from llmledger.service.state import ServiceState
from warehouse.queries.scope import Scope


@dataclass(frozen=True)
class Principal:
    """The caller."""

    key_id: str | None
    scopes: frozenset[str]
    project: str | None

    def allows(self, scope: KeyScope) -> bool:
        return scope.value in self.scopes or KeyScope.ADMIN.value in self.scopes

    @property
    def read_scope(self) -> Scope:
        """The projects this caller may read."""
        return Scope.of(self.project) if self.project else Scope.all()


ANONYMOUS = Principal(None, frozenset(s.value for s in KeyScope), None)


# Dependencies are `async def` on purpose: a plain `def` dependency costs a worker-thread hop per
# request, which at small push requests was a measurable share of the service's CPU.


async def get_state(request: Request) -> ServiceState:
    """The running service's state (set by the lifespan)."""
    return request.app.state.service  # type: ignore[no-any-return]


State = Annotated[ServiceState, Depends(get_state)]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


async def authenticate(request: Request, state: State) -> Principal:
    """The caller's principal; 401 when a key is required and missing or wrong. (The key table is
    re-read at most every `key_cache_s`, a few ms on the event loop.)"""
    token = _token(request)
    local = state.local_keys.verify(token) if token and state.local_keys is not None else None
    if local is not None:
        return Principal(local.key_id, frozenset(local.scopes), None)
    mode = state.auth_mode()
    if not mode["required"]:
        return ANONYMOUS
    key = state.keys.verify(token) if token else None
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API key is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return Principal(key.key_id, frozenset(key.scopes), key.project)


def require(scope: KeyScope):  # noqa: ANN201 - a FastAPI dependency
    """A dependency returning the caller if it has `scope`, else 403."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks the {scope.value!r} scope")
        return principal

    return check


Ingester = Annotated[Principal, Depends(require(KeyScope.INGEST))]
Reader = Annotated[Principal, Depends(require(KeyScope.READ))]
Admin = Annotated[Principal, Depends(require(KeyScope.ADMIN))]


async def operator(principal: Admin) -> Principal:
    """An admin key not bound to a project: for work that touches every project (re-pricing,
    imports, jobs, the weekly report)."""
    if principal.project is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "this touches every project: use an admin key not bound to a project")
    return principal


Operator = Annotated[Principal, Depends(operator)]
