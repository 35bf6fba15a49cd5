"""Request and response bodies of the HTTP API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Stored datetimes are naive UTC; responses say so explicitly (``+00:00``)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]


def _check_text(value: str | None, *, allow_blank: bool = True) -> str | None:
    """Reject what the database or the model cannot take, with a reason for the message."""
    if value is None:
        return None
    try:
        # JSON escapes can smuggle lone surrogates ("\ud800") that are not valid UTF-8.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 (found a lone surrogate)") from None
    if "\x00" in value:  # PostgreSQL text columns cannot store NUL
        raise ValueError("must not contain NUL characters")
    if not allow_blank and not value.strip():
        raise ValueError("must not be empty")
    return value


class ReviewIn(BaseModel):
    """One review as posted by the streaming platform."""

    model_config = ConfigDict(extra="forbid")

    title_id: str = Field(min_length=1, max_length=200, description="the show or film's id")
    title_name: str | None = Field(default=None, max_length=500)
    user_id: str | None = Field(default=None, max_length=200)
    text: str = Field(description="the review text (not empty)")
    rating: float | None = Field(default=None, ge=0, le=10, strict=True, description="0-10")
    created_at: dt.datetime | None = Field(
        default=None, description="when the viewer wrote it (ISO 8601; default: now)"
    )

    @field_validator("title_id", "text")
    @classmethod
    def _required_text(cls, v: str) -> str:
        return _check_text(v, allow_blank=False)  # type: ignore[return-value]

    @field_validator("title_name", "user_id")
    @classmethod
    def _optional_text(cls, v: str | None) -> str | None:
        return _check_text(v)


class ReviewBatchIn(BaseModel):
    """Several reviews in one request (up to the server's ``max_batch_reviews``)."""

    model_config = ConfigDict(extra="forbid")

    reviews: list[ReviewIn] = Field(min_length=1)


class ReviewOut(BaseModel):
    id: int
    title_id: str
    label: Literal["negative", "positive"]
    score: float = Field(description="probability of the predicted label")
    prob_negative: float
    flagged: bool
    flag_id: int | None
    truncated: bool = Field(description="the text was longer than the model's max_length")
    model_version: str
    created_at: UtcDatetime


class IngestResponse(BaseModel):
    reviews: list[ReviewOut]
    threshold: float


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1)

    @field_validator("texts")
    @classmethod
    def _texts(cls, v: list[str]) -> list[str]:
        for i, t in enumerate(v):
            try:
                _check_text(t, allow_blank=False)
            except ValueError as e:
                raise ValueError(f"texts[{i}] {e}") from None
        return v


class PredictionOut(BaseModel):
    label: Literal["negative", "positive"]
    score: float
    prob_negative: float
    prob_positive: float
    truncated: bool
    flagged: bool = Field(description="P(negative) >= threshold")


class ClassifyResponse(BaseModel):
    predictions: list[PredictionOut]
    model_version: str
    threshold: float


class FlagOut(BaseModel):
    id: int
    review_id: int
    title_id: str
    title_name: str | None
    user_id: str | None
    text: str
    rating: float | None
    prob_negative: float
    threshold: float
    status: Literal["open", "resolved"]
    created_at: UtcDatetime
    resolved_at: UtcDatetime | None
    resolved_by: str | None
    note: str | None


class FlagPage(BaseModel):
    items: list[FlagOut]
    next_cursor: int | None = Field(description="pass as ?cursor= for the next (older) page")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=10_000)

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        return _check_text(v)


class DailyPoint(BaseModel):
    date: dt.date
    reviews: int
    positive: int
    positive_share: float | None


class TitleOut(BaseModel):
    title_id: str
    name: str | None
    first_seen_at: UtcDatetime
    reviews: int
    positive: int
    negative: int
    positive_share: float | None
    reviews_7d: int
    positive_share_7d: float | None
    positive_share_prev_7d: float | None
    trend_7d: float | None = Field(description="positive share: last 7 days minus the 7 before")
    daily: list[DailyPoint] = Field(default_factory=list)


class TitlePage(BaseModel):
    items: list[TitleOut]
    sort: str
    limit: int
    offset: int


class TitleSentiment(BaseModel):
    title_id: str
    name: str | None
    first_seen_at: UtcDatetime
    reviews: int
    positive: int
    negative: int
    positive_share: float | None
    mean_rating: float | None
    open_flags: int
    daily: list[DailyPoint]


class UserOut(BaseModel):
    """One viewer in the support view."""

    user_id: str
    reviews: int
    negative: int
    negative_share: float | None
    last_review_at: UtcDatetime
    open_flags: int


class UserPage(BaseModel):
    items: list[UserOut]
    sort: str
    since: UtcDatetime | None
    limit: int
    offset: int


class UserReviewOut(BaseModel):
    id: int
    title_id: str
    title_name: str | None
    text: str
    rating: float | None
    label: Literal["negative", "positive"]
    prob_negative: float
    created_at: UtcDatetime
    flag_id: int | None
    flag_status: Literal["open", "resolved"] | None


class UserReviewPage(BaseModel):
    user_id: str
    items: list[UserReviewOut]
    next_cursor: int | None = Field(description="pass as ?cursor= for the next (older) page")
