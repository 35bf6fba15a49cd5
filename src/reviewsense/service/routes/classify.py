"""POST /v1/classify: predictions for texts, nothing stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from reviewsense.metrics import is_flagged
from reviewsense.service.deps import (
    State,
    check_text_limits,
    parse_json,
    read_body,
    require_role,
    validate,
)
from reviewsense.service.schemas import ClassifyIn, ClassifyResponse, PredictionOut
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    summary="Classify texts without storing them",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ClassifyIn.model_json_schema()}},
        }
    },
    responses={413: {"description": "body, batch or a text too large"}},
)
async def classify(
    request: Request,
    state: State,
    principal: Annotated[Principal, Depends(require_role("ingest"))],
) -> ClassifyResponse:
    """Body: ``{"texts": [...]}`` (up to ``max_batch_reviews`` texts)."""
    s = state.settings
    data = parse_json(await read_body(request, max_bytes=s.max_body_bytes))
    if isinstance(data, dict) and isinstance(data.get("texts"), list):
        if len(data["texts"]) > s.max_batch_reviews:
            raise HTTPException(
                413,
                f"texts: {len(data['texts'])} texts, over the limit of {s.max_batch_reviews}",
            )
    body = validate(ClassifyIn, data)
    check_text_limits(body.texts, max_chars=s.max_text_chars, field="texts[{i}]")
    predictions = await state.batcher.submit(body.texts)
    state.metrics.observe_predictions(predictions, source="classify")
    return ClassifyResponse(
        model_version=state.model_version or "",
        threshold=state.threshold,
        predictions=[
            PredictionOut(
                label=p.label,
                score=p.score,
                prob_negative=p.prob_negative,
                prob_positive=p.prob_positive,
                truncated=p.truncated,
                flagged=bool(is_flagged(p.prob_negative, state.threshold)),
            )
            for p in predictions
        ],
    )
