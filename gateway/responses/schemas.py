"""Marshmallow schemas for the Responses API request bodies the gateway accepts.

The whole request is validated here, down to each input item, content part and tool, so
:mod:`gateway.responses.translate` only maps valid data. Unknown fields are dropped
(``include``, ``prompt_cache_key``, ``client_metadata``, ``service_tier``, …), and so
are item, content and tool kinds the gateway cannot act on (hosted tools other than web
search, item references): clients such as Codex send them on every turn. A message item
may omit its ``type`` (the "easy" input form). Inline data (data: URLs, base64) is
decoded while validating.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from gateway.openai_family import Arguments
from gateway.validation import (
    MAX_TOKENS_LIMIT,
    InlineData,
    JsonSchema,
    Lenient,
    Link,
    Metadata,
    Tagged,
    TextOrList,
)

ROLES = ("user", "assistant", "system", "developer")
TOOL_CHOICE_MODES = ("none", "auto", "required")
#: Hosted tool types that mean "search the web" (the upstream's own search).
WEB_SEARCH_TYPES = ("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11")
#: Longest ``previous_response_id`` (it names a record, it is not content).
MAX_RESPONSE_ID = 200


class Ignored(Lenient):
    """A kind the gateway accepts and drops (only its ``type`` is kept)."""


# -- content parts ---------------------------------------------------------------------
class TextPartSchema(Lenient):
    text = fields.Str(required=True)


class RefusalPartSchema(Lenient):
    refusal = fields.Str(required=True)


class ImagePartSchema(Lenient):
    image_url = Link(allow_none=True)
    file_id = fields.Str(allow_none=True)
    detail = fields.Str(allow_none=True)

    @validates_schema
    def _has_url(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("image_url"):
            raise ValidationError("Send the image as image_url (a URL or data: URL); file ids are not supported.",
                                  field_name="image_url")


class FilePartSchema(Lenient):
    file_data = InlineData(bare_base64=True, allow_none=True)
    file_url = Link(allow_none=True)
    filename = fields.Str(allow_none=True)
    file_id = fields.Str(allow_none=True)

    @validates_schema
    def _has_data(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("file_data") and not data.get("file_url"):
            raise ValidationError("Send the file as file_data or file_url; file ids are not supported.",
                                  field_name="file_data")


CONTENT_PARTS: dict[str, type[Lenient]] = {
    "input_text": TextPartSchema,
    "output_text": TextPartSchema,
    "text": TextPartSchema,
    "refusal": RefusalPartSchema,
    "input_image": ImagePartSchema,
    "input_file": FilePartSchema,
}


def content_field(**kwargs: Any) -> TextOrList:
    return TextOrList(Tagged(CONTENT_PARTS, other=Ignored), "content parts", **kwargs)


# -- input items -----------------------------------------------------------------------
class MessageItemSchema(Lenient):
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    content = content_field(required=True)


class FunctionCallItemSchema(Lenient):
    call_id = fields.Str(required=True)
    name = fields.Str(required=True, validate=validate.Length(min=1))
    arguments = Arguments(load_default=dict, allow_none=True)
    namespace = fields.Str(allow_none=True)


class CustomToolCallItemSchema(Lenient):
    call_id = fields.Str(required=True)
    name = fields.Str(required=True, validate=validate.Length(min=1))
    input = fields.Str(required=True)
    namespace = fields.Str(allow_none=True)


class ToolOutputItemSchema(Lenient):
    call_id = fields.Str(required=True)
    output = content_field(required=True)


class SummarySchema(Lenient):
    text = fields.Str(required=True)


class ReasoningItemSchema(Lenient):
    summary = fields.List(fields.Nested(SummarySchema), load_default=list)
    content = fields.List(fields.Nested(SummarySchema), allow_none=True)
    encrypted_content = fields.Str(allow_none=True)


ITEMS: dict[str, type[Lenient]] = {
    "message": MessageItemSchema,
    "function_call": FunctionCallItemSchema,
    "function_call_output": ToolOutputItemSchema,
    "custom_tool_call": CustomToolCallItemSchema,
    "custom_tool_call_output": ToolOutputItemSchema,
    "reasoning": ReasoningItemSchema,
}


class InputItem(Tagged):
    """An input item, told apart by ``type``; a bare ``{role, content}`` is a message."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, dict) and "type" not in value and "role" in value:
            value = {**value, "type": "message"}
        return super()._deserialize(value, attr, data, **kwargs)


def input_field(**kwargs: Any) -> TextOrList:
    return TextOrList(InputItem(ITEMS, other=Ignored), "input items", **kwargs)


# -- tools -----------------------------------------------------------------------------
class FunctionToolSchema(Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="", allow_none=True)
    parameters = JsonSchema(load_default=dict, allow_none=True)
    strict = fields.Bool(allow_none=True)


class CustomFormatSchema(Lenient):
    type = fields.Str(load_default="text")
    syntax = fields.Str(allow_none=True)
    definition = fields.Str(allow_none=True)


class CustomToolSchema(Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="", allow_none=True)
    format = fields.Nested(CustomFormatSchema, allow_none=True)


NAMESPACED_TOOLS: dict[str, type[Lenient]] = {"function": FunctionToolSchema, "custom": CustomToolSchema}


class NamespaceToolSchema(Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="", allow_none=True)
    tools = fields.List(Tagged(NAMESPACED_TOOLS, other=Ignored), load_default=list)


class WebSearchToolSchema(Lenient):
    external_web_access = fields.Bool(allow_none=True)


TOOLS: dict[str, type[Lenient]] = {
    **NAMESPACED_TOOLS,
    "namespace": NamespaceToolSchema,
    **{kind: WebSearchToolSchema for kind in WEB_SEARCH_TYPES},
}


class NamedToolChoiceSchema(Lenient):
    type = fields.Str(required=True)
    name = fields.Str(allow_none=True)
    mode = fields.Str(allow_none=True)

    @validates_schema
    def _named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["type"] in ("function", "custom") and not data.get("name"):
            raise ValidationError("A named tool choice needs the tool's name.", field_name="name")


class ToolChoiceField(fields.Field[Any]):
    """``tool_choice``: ``none``, ``auto``, ``required``, or an object naming a tool or mode."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value in TOOL_CHOICE_MODES:
            return value
        if isinstance(value, dict):
            return NamedToolChoiceSchema().load(value)
        raise ValidationError("tool_choice must be 'none', 'auto', 'required' or an object naming a tool.")


# -- the request -----------------------------------------------------------------------
class TextFormatSchema(Lenient):
    type = fields.Str(required=True, validate=validate.OneOf(("text", "json_object", "json_schema")))
    schema = fields.Dict(allow_none=True)
    name = fields.Str(allow_none=True)
    strict = fields.Bool(allow_none=True)


class TextConfigSchema(Lenient):
    format = fields.Nested(TextFormatSchema, allow_none=True)
    verbosity = fields.Str(allow_none=True)


class ReasoningSchema(Lenient):
    effort = fields.Str(allow_none=True)
    summary = fields.Str(allow_none=True)


class ResponsesSchema(Lenient):
    model = fields.Str(required=True, validate=validate.Length(min=1))
    input = input_field(load_default=None, allow_none=True)
    instructions = fields.Str(allow_none=True)
    previous_response_id = fields.Str(allow_none=True, validate=validate.Length(min=1, max=MAX_RESPONSE_ID))
    stream = fields.Bool(load_default=False, allow_none=True)
    store = fields.Bool(load_default=True, allow_none=True)
    max_output_tokens = fields.Int(strict=True, allow_none=True,
                                   validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT))
    temperature = fields.Float(allow_none=True)
    top_p = fields.Float(allow_none=True)
    text = fields.Nested(TextConfigSchema, allow_none=True)
    reasoning = fields.Nested(ReasoningSchema, allow_none=True)
    tools = fields.List(Tagged(TOOLS, other=Ignored), allow_none=True)
    tool_choice = ToolChoiceField(allow_none=True)
    parallel_tool_calls = fields.Bool(allow_none=True)
    metadata = fields.Nested(Metadata, allow_none=True)


class HistorySchema(Lenient):
    """The items a stored response holds (validated again when a later request continues it)."""

    input = input_field(required=True)
