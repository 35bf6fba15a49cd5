"""GET /v1/me: the calling key's id and role (the dashboard shows what the key may do)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from reviewsense.service.deps import require_role
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1", tags=["keys"])


@router.get("/me", summary="Who am I: key id and role")
async def me(
    principal: Annotated[Principal, Depends(require_role("ingest", "support", "read"))],
) -> dict:
    return {"key_id": principal.key_id, "role": principal.role}
