"""API key administration (`admin` scope): create, list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from llmledger.service.auth import Admin, Principal, State, authenticate
from llmledger.service.keys import ApiKey, KeyScope
from llmledger.service.models import KeyCreated, KeyIn, KeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"])
whoami_router = APIRouter(prefix="/v1", tags=["keys"])


@whoami_router.get("/whoami", summary="The calling key")
async def whoami(state: State, who: Annotated[Principal, Depends(authenticate)]) -> dict[str, object]:
    """The key this request was made with: its id, scopes and project (401 for a key the service
    refuses); `auth` says whether the service requires keys at all."""
    return {"key_id": who.key_id, "scopes": sorted(who.scopes), "project": who.project,
            "auth": state.auth_mode()["detail"]}


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(key_id=key.key_id, name=key.name, scopes=list(key.scopes), project=key.project,
                  created_at=key.created_at, revoked_at=key.revoked_at)


@router.post("", response_model=KeyCreated, status_code=201, summary="Create an API key")
def create_key(body: KeyIn, state: State, who: Admin) -> KeyCreated:
    """The token is in this answer only; llmledger stores its hash."""
    try:
        scopes = [KeyScope(s) for s in body.scopes]
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "scopes are ingest, read and admin") from None
    if who.project is not None and body.project != who.project:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a project-bound admin key can create keys for its project only")
    key, token = state.keys.create(scopes, project=body.project, name=body.name)
    return KeyCreated(**_out(key).model_dump(), token=token)


@router.get("", response_model=list[KeyOut], summary="List API keys")
def list_keys(state: State, who: Admin) -> list[KeyOut]:
    """Every key (revoked ones too), oldest first; a project-bound admin sees its project's keys."""
    return [_out(k) for k in state.keys.list() if who.project is None or k.project == who.project]


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke an API key")
def revoke_key(key_id: Annotated[str, Path(max_length=64)], state: State, who: Admin) -> KeyOut:
    """Revoked keys stop working within the key cache delay (immediately in this process)."""
    existing = {k.key_id: k for k in state.keys.list()}.get(key_id)
    if existing is None or (who.project is not None and existing.project != who.project):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such key")
    key = state.keys.revoke(key_id)
    assert key is not None
    return _out(key)
