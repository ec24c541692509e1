"""Marshmallow schemas for Gemini ``generateContent`` and ``countTokens`` bodies.

The whole request is validated here, down to each part, function declaration, tool
config and generation config, so :mod:`gateway.gemini.translate` only maps valid data.
Unknown fields are ignored. Google's API accepts both camelCase and snake_case field
names; :func:`camelize` normalises names to camelCase first (the top-level schemas do it
before loading), without touching user data (function arguments, function responses,
JSON schemas), so one schema serves both spellings. Inline data is decoded while
validating.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from gateway.validation import (
    MAX_TOKENS_LIMIT,
    Base64Bytes,
    JsonObject,
    JsonSchema,
    Lenient,
    check_declared_image,
)

#: Fields whose values are the caller's own data: their keys are never renamed.
OPAQUE_FIELDS = frozenset({
    "args", "response", "parameters", "parametersJsonSchema", "responseSchema",
    "responseJsonSchema", "metadata", "labels",
})
PART_KINDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
              "executableCode", "codeExecutionResult")
ROLES = ("user", "model", "function")
TOOL_MODES = ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED")
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


class _Camelized(Lenient):
    """A top-level body: either spelling of the field names is accepted."""

    @pre_load
    def _camelize(self, data: Any, **kwargs: Any) -> Any:
        return camelize(data)


# -- parts -----------------------------------------------------------------------------
class BlobSchema(Lenient):
    mimeType = fields.Str(allow_none=True)
    data = Base64Bytes(required=True)

    @validates_schema
    def _image_bytes(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_declared_image(data.get("mimeType"), data.get("data"))


class FileDataSchema(Lenient):
    mimeType = fields.Str(allow_none=True)
    fileUri = fields.Str(required=True)


class FunctionCallSchema(Lenient):
    id = fields.Str(allow_none=True)
    name = fields.Str(required=True)
    args = JsonObject(load_default=dict)


class FunctionResponseSchema(Lenient):
    id = fields.Str(allow_none=True)
    name = fields.Str(required=True)
    response = fields.Raw(load_default=dict, allow_none=True)


class PartSchema(Lenient):
    """One part, carrying one known kind of data (the first of :data:`PART_KINDS` wins)."""

    text = fields.Str()
    thought = fields.Bool(allow_none=True)
    inlineData = fields.Nested(BlobSchema)
    fileData = fields.Nested(FileDataSchema)
    functionCall = fields.Nested(FunctionCallSchema)
    functionResponse = fields.Nested(FunctionResponseSchema)
    executableCode = fields.Raw(allow_none=True)
    codeExecutionResult = fields.Raw(allow_none=True)

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not any(kind in data for kind in PART_KINDS):
            raise ValidationError(f"Each part needs one of {', '.join(PART_KINDS)}.")


class ContentSchema(Lenient):
    role = fields.Str(load_default="user", validate=validate.OneOf(ROLES))
    parts = fields.List(fields.Nested(PartSchema), required=True)


class InstructionSchema(ContentSchema):
    """``systemInstruction``: a Content object, or (leniently) a plain string."""

    @pre_load
    def _plain_text(self, data: Any, **kwargs: Any) -> Any:
        return {"parts": [{"text": data}]} if isinstance(data, str) else data


# -- tools and configs -----------------------------------------------------------------
class FunctionDeclarationSchema(Lenient):
    name = fields.Str(required=True)
    description = fields.Str(load_default="", allow_none=True)
    parameters = JsonSchema(any_case_types=True, allow_none=True)
    parametersJsonSchema = JsonSchema(allow_none=True)


class ToolSchema(Lenient):
    """Function declarations, Google Search; other tools (code execution...) are ignored."""

    functionDeclarations = fields.List(fields.Nested(FunctionDeclarationSchema), allow_none=True)
    googleSearch = fields.Raw(allow_none=True)
    googleSearchRetrieval = fields.Raw(allow_none=True)


class FunctionCallingConfigSchema(Lenient):
    mode = fields.Str(load_default="AUTO", allow_none=True, validate=validate.OneOf(TOOL_MODES))
    allowedFunctionNames = fields.List(fields.Str(), allow_none=True)

    @pre_load
    def _upper_mode(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("mode"), str):
            return {**data, "mode": data["mode"].upper()}
        return data


class ToolConfigSchema(Lenient):
    functionCallingConfig = fields.Nested(FunctionCallingConfigSchema, allow_none=True)


class ThinkingConfigSchema(Lenient):
    includeThoughts = fields.Bool(load_default=False)
    thinkingBudget = fields.Int(allow_none=True)
    thinkingLevel = fields.Str(allow_none=True)


class GenerationConfigSchema(Lenient):
    stopSequences = fields.List(fields.Str(), allow_none=True)
    maxOutputTokens = fields.Int(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT))
    responseMimeType = fields.Str(allow_none=True)
    responseSchema = fields.Dict(allow_none=True)
    responseJsonSchema = fields.Dict(allow_none=True)
    candidateCount = fields.Int(
        strict=True, allow_none=True,
        validate=validate.Equal(1, error="Only candidateCount=1 is supported."),
    )
    thinkingConfig = fields.Nested(ThinkingConfigSchema, allow_none=True)


# -- bodies ----------------------------------------------------------------------------
class GenerateContentSchema(_Camelized):
    contents = fields.List(fields.Nested(ContentSchema), required=True, validate=validate.Length(min=1))
    systemInstruction = fields.Nested(InstructionSchema, allow_none=True)
    generationConfig = fields.Nested(GenerationConfigSchema, load_default=dict)
    tools = fields.List(fields.Nested(ToolSchema), allow_none=True)
    toolConfig = fields.Nested(ToolConfigSchema, allow_none=True)


class CountTokensSchema(_Camelized):
    """Either ``contents`` alone, or a whole ``generateContentRequest``."""

    contents = fields.List(fields.Nested(ContentSchema), allow_none=True)
    generateContentRequest = fields.Nested(GenerateContentSchema, allow_none=True)

    @validates_schema
    def _something_to_count(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("generateContentRequest") and not data.get("contents"):
            raise ValidationError("Shorter than minimum length 1.", field_name="contents")
