"""Route dependencies: the service state, API-key authentication, bounded JSON bodies, limits.

Imports core modules only (state, errors, ingest, security), never the app or a route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from reviewsense.service.errors import validation_errors
from reviewsense.service.ingest import text_over_limit
from reviewsense.service.security import Principal
from reviewsense.service.state import ServiceState

# auto_error=False: we answer 401 (not FastAPI's 403) for a missing key, per the API contract.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")

# Query parameters that look like a key: refused, so keys do not end up in access logs.
_KEY_QUERY_PARAMS = {"api_key", "apikey", "key", "x-api-key", "token"}


def get_state(request: Request) -> ServiceState:
    return request.app.state.svc


State = Annotated[ServiceState, Depends(get_state)]


def require_role(*roles: str) -> Callable[..., Any]:
    """Dependency: a valid key (else 401) whose role is one of ``roles`` (else 403)."""

    async def _dep(
        request: Request, key: Annotated[str | None, Depends(api_key_header)]
    ) -> Principal:
        if _KEY_QUERY_PARAMS & {k.lower() for k in request.query_params}:
            raise HTTPException(400, "send the API key in the X-API-Key header, never in the URL")
        state: ServiceState = request.app.state.svc
        # A cache hit costs a hash; a miss is a DB lookup, off the event loop.
        principal = state.verifier.cached(key) or await run_in_threadpool(
            state.verifier.verify, key
        )
        if principal is None:
            raise HTTPException(
                401,
                "missing, unknown or revoked API key (send it in the X-API-Key header)",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if principal.role not in roles:
            raise HTTPException(
                403, f"a {principal.role!r} key may not do this (needs {' or '.join(roles)})"
            )
        return principal

    return _dep


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body, refusing (413) more than ``max_bytes`` before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise HTTPException(413, f"body: larger than the limit of {max_bytes} bytes")
        except ValueError:
            raise HTTPException(400, "Content-Length header is not a number") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:  # chunked uploads have no Content-Length: count as we go
            raise HTTPException(413, f"body: larger than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, *, required: bool = True) -> Any:
    """Decode UTF-8 strictly and parse JSON; 400 with where it went wrong."""
    if not raw.strip():
        if not required:
            return None
        raise HTTPException(400, "body: empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPException(400, f"body: invalid UTF-8 at byte {e.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise HTTPException(
            400, f"body: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise HTTPException(400, "body: JSON nested too deeply") from None


def validate(model: type[BaseModel], data: Any, *, prefix: tuple = ()) -> Any:
    """Validate parsed JSON; 422 naming each bad field (``reviews[3].text: ...``)."""
    if not isinstance(data, dict):
        raise HTTPException(422, f"body: expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = [{**err, "loc": prefix + tuple(err["loc"])} for err in e.errors()]
        detail, _ = validation_errors(errors)
        raise HTTPException(422, detail) from None


def check_text_limits(texts: list[str], *, max_chars: int, field: str) -> None:
    """413 for a text over the hard cap; ``field`` is a format string like ``texts[{i}]``."""
    for i, t in enumerate(texts):
        reason = text_over_limit(t, max_chars)
        if reason is not None:
            raise HTTPException(413, f"{field.format(i=i)}: {reason}")
