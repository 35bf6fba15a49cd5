"""POST /v1/reviews: classify, store and flag reviews (idempotent with Idempotency-Key)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from reviewsense.service import crud, ingest
from reviewsense.service.deps import (
    State,
    check_text_limits,
    parse_json,
    read_body,
    require_role,
    validate,
)
from reviewsense.service.schemas import IngestResponse, ReviewBatchIn, ReviewIn
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1", tags=["reviews"])

MAX_IDEMPOTENCY_KEY = 200

_REVIEW_SCHEMA = ReviewIn.model_json_schema()
# Documented by hand: the body is parsed manually (size limit, UTF-8 and JSON checks first).
_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _REVIEW_SCHEMA,
                        {
                            "title": "ReviewBatchIn",
                            "type": "object",
                            "required": ["reviews"],
                            "properties": {
                                "reviews": {"type": "array", "minItems": 1, "items": _REVIEW_SCHEMA}
                            },
                        },
                    ]
                }
            }
        },
    }
}


def parse_reviews(data: object, *, max_batch: int) -> tuple[list[ReviewIn], bool]:
    """One review (object) or a batch (``{"reviews": [...]}``); returns (reviews, is_batch)."""
    if isinstance(data, dict) and "reviews" in data:
        items = data["reviews"]
        if isinstance(items, list) and len(items) > max_batch:
            raise HTTPException(
                413, f"reviews: batch of {len(items)} reviews, over the limit of {max_batch}"
            )
        return list(validate(ReviewBatchIn, data).reviews), True
    return [validate(ReviewIn, data)], False


@router.post(
    "/reviews",
    status_code=201,
    response_model=IngestResponse,
    summary="Store and classify one review or a batch",
    openapi_extra=_BODY_SCHEMA,
    responses={
        413: {"description": "body, batch or a text too large"},
        422: {"description": "invalid field (the message names it)"},
        503: {"description": "overloaded or model loading; see Retry-After"},
    },
)
async def post_reviews(
    request: Request,
    state: State,
    principal: Annotated[Principal, Depends(require_role("ingest"))],
    idempotency_key: Annotated[
        str | None,
        Header(
            description="retries with the same key store nothing twice and get the "
            "original response"
        ),
    ] = None,
) -> Response:
    """Body: one review object, or ``{"reviews": [...]}`` (up to ``max_batch_reviews``).

    Every review is stored with its prediction and flagged when P(negative) ≥ threshold. The
    response is sent after the commit: a 201 means the reviews are durably stored.
    """
    s = state.settings
    if idempotency_key is not None:
        if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY or not idempotency_key.isprintable():
            raise HTTPException(
                400, f"Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY} printable characters"
            )
    data = parse_json(await read_body(request, max_bytes=s.max_body_bytes))
    reviews, is_batch = parse_reviews(data, max_batch=s.max_batch_reviews)
    field = "reviews[{i}].text" if is_batch else "text"
    check_text_limits([r.text for r in reviews], max_chars=s.max_text_chars, field=field)
    request_hash = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()

    if idempotency_key is not None:
        # Fast path for retries: no inference when the answer is already stored.
        def _lookup():
            with state.sessionmaker() as session:
                return crud.get_idempotency(
                    session, api_key_id=principal.key_id, key=idempotency_key
                )

        rec = await run_in_threadpool(_lookup)
        if rec is not None:
            return _response(_replay(rec, request_hash))

    predictions = await state.batcher.submit([r.text for r in reviews])
    job = ingest.StoreJob(
        key_id=principal.key_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        new=ingest.to_new_reviews(reviews, predictions),
    )
    try:  # committed together with the other requests waiting to be written (group commit)
        stored = await state.writer.submit(job)
    except ingest.IdempotencyConflict as e:
        raise HTTPException(422, str(e)) from None
    if not stored.replayed:
        state.metrics.observe_predictions(predictions, source="ingest")
        if stored.n_flags:
            state.metrics.flags.inc(stored.n_flags)
            state.broadcaster.poke()
    return _response(stored)


def _replay(rec, request_hash: str) -> ingest.Stored:
    try:
        return ingest.replay(rec, request_hash)
    except ingest.IdempotencyConflict as e:
        raise HTTPException(422, str(e)) from None


def _response(stored: ingest.Stored) -> Response:
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
    # A replay answers with the original status (201): the client sees the same response.
    return Response(
        stored.body, status_code=stored.status, media_type="application/json", headers=headers
    )
