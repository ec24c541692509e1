"""The shared schema fields of :mod:`gateway.validation` that the hostile cases rely on."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from gateway.validation import JsonSchema, check_declared_image

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class Declarations(Schema):
    parameters = JsonSchema(any_case_types=True)
    strict = JsonSchema()


def test_bytes_declared_an_image_must_be_one() -> None:
    with pytest.raises(ValidationError, match="not an image"):
        check_declared_image("image/png", b"hello world")


@pytest.mark.parametrize(("mime", "data"), [("image/png", PNG), ("text/plain", b"hi"),
                                            ("image/svg+xml", b"<svg/>"), (None, b"hi")])
def test_other_data_passes(mime: str | None, data: bytes) -> None:
    check_declared_image(mime, data)


def test_openapi_spelling_is_accepted_and_kept() -> None:
    schema = {"type": "OBJECT", "properties": {"type": {"type": "STRING", "nullable": True}},
              "required": ["type"], "minProperties": "1"}
    assert Declarations().load({"parameters": schema}) == {"parameters": schema}


@pytest.mark.parametrize("schema", [{"type": "no-such-type"}, {"type": "object", "properties": 3}])
def test_a_broken_schema_is_refused_either_way(schema: dict[str, object]) -> None:
    for field in ("parameters", "strict"):
        with pytest.raises(ValidationError, match="Not a valid JSON Schema"):
            Declarations().load({field: schema})


def test_capital_types_are_refused_without_the_option() -> None:
    with pytest.raises(ValidationError, match="Not a valid JSON Schema"):
        Declarations().load({"strict": {"type": "OBJECT"}})
