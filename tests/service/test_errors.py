"""Error bodies: field locations as users write them, one-line details."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError

from reviewsense.service.errors import format_loc, validation_errors


def test_format_loc_reads_like_the_json_path():
    assert format_loc(("body", "reviews", 3, "text")) == "reviews[3].text"
    assert format_loc(("query", "limit")) == "query parameter limit"
    assert format_loc(("body",)) == "body"
    assert format_loc(()) == "body"


def test_validation_errors_name_each_field_without_pydantic_noise():
    class M(BaseModel):
        a: int
        b: str = Field(min_length=2)

    try:
        M.model_validate({"a": "x", "b": "y"})
    except ValidationError as e:
        detail, items = validation_errors(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        )
    assert [i["field"] for i in items] == ["a", "b"]
    assert detail.startswith("a: ") and "; b: " in detail and "Value error" not in detail
