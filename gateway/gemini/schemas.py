"""Marshmallow schemas for Gemini ``generateContent`` bodies.

Google's API accepts both camelCase and snake_case field names; :func:`camelize`
normalises names to camelCase first, without touching user data (function arguments,
function responses, JSON schemas), so one schema serves both spellings.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

#: Fields whose values are the caller's own data: their keys are never renamed.
OPAQUE_FIELDS = frozenset({
    "args", "response", "parameters", "parametersJsonSchema", "responseSchema",
    "responseJsonSchema", "metadata", "labels",
})
PART_KINDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
              "executableCode", "codeExecutionResult")
_SNAKE = re.compile(r"_([a-z0-9])")


def camelize(value: Any) -> Any:
    """snake_case keys to camelCase, recursively, leaving opaque values as they are."""
    if isinstance(value, list):
        return [camelize(item) for item in value]
    if not isinstance(value, dict):
        return value
    renamed = {}
    for key, item in value.items():
        name = _SNAKE.sub(lambda m: m.group(1).upper(), key) if isinstance(key, str) else key
        renamed[name] = item if name in OPAQUE_FIELDS else camelize(item)
    return renamed


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class PartsField(fields.Field):
    """A list of parts, each carrying one known kind of data."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise ValidationError("Must be a list of parts.")
        for index, part in enumerate(value):
            if not isinstance(part, dict) or not any(k in part for k in PART_KINDS):
                raise ValidationError({index: [f"Each part needs one of {', '.join(PART_KINDS)}."]})
            if "text" in part and not isinstance(part["text"], str):
                raise ValidationError({index: ["A part's 'text' must be a string."]})
        return value


class ContentSchema(_Lenient):
    role = fields.Str(load_default="user", validate=validate.OneOf(("user", "model", "function")))
    parts = PartsField(required=True)


class InstructionField(fields.Field):
    """``systemInstruction``: a Content object, or (leniently) a plain string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return {"parts": [{"text": value}]}
        if not isinstance(value, dict):
            raise ValidationError("Must be a Content object with parts.")
        return ContentSchema().load(value)


class ThinkingConfigSchema(_Lenient):
    includeThoughts = fields.Bool(load_default=False)
    thinkingBudget = fields.Int(allow_none=True)


class GenerationConfigSchema(_Lenient):
    stopSequences = fields.List(fields.Str(), allow_none=True)
    maxOutputTokens = fields.Int(strict=True, allow_none=True, validate=validate.Range(min=1))
    responseMimeType = fields.Str(allow_none=True)
    responseSchema = fields.Dict(allow_none=True)
    responseJsonSchema = fields.Dict(allow_none=True)
    candidateCount = fields.Int(
        strict=True, allow_none=True,
        validate=validate.Equal(1, error="Only candidateCount=1 is supported."),
    )
    thinkingConfig = fields.Nested(ThinkingConfigSchema, allow_none=True)


class GenerateContentSchema(_Lenient):
    contents = fields.List(fields.Nested(ContentSchema), required=True, validate=validate.Length(min=1))
    systemInstruction = InstructionField(allow_none=True)
    generationConfig = fields.Nested(GenerationConfigSchema, load_default=dict)
    tools = fields.List(fields.Dict(), allow_none=True)
    toolConfig = fields.Dict(allow_none=True)


class CountTokensSchema(_Lenient):
    contents = fields.List(fields.Nested(ContentSchema), allow_none=True)
    generateContentRequest = fields.Dict(allow_none=True)
