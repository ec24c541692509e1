"""Marshmallow schemas for the Anthropic Messages request bodies.

The whole request is validated here, down to each content block, media source, tool
spec, tool choice and output format, so :mod:`gateway.anthropic.translate` only maps
valid data. Unknown fields are tolerated (Claude Code adds new ones often); content
blocks must carry a ``type``, and the block types the gateway acts on are checked for
their fields. Other block types (redacted thinking, server tool results, containers...)
are accepted and ignored. Base64 sources are decoded while validating.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from gateway.validation import (
    MAX_TOKENS_LIMIT,
    Base64Bytes,
    JsonObject,
    JsonSchema,
    Lenient,
    Metadata,
    Tagged,
    TextOrList,
    check_declared_image,
)

ROLES = ("user", "assistant", "system")


# -- content blocks --------------------------------------------------------------------
class OtherBlockSchema(Lenient):
    """A block the gateway does not act on: only its ``type`` is kept."""


class TextBlockSchema(Lenient):
    text = fields.Str(required=True)
    #: A prompt-cache breakpoint, told to an upstream that caches (MiniMax Code).
    cache_control = fields.Dict(allow_none=True)


class Base64SourceSchema(Lenient):
    media_type = fields.Str(allow_none=True)
    data = Base64Bytes(required=True)

    @validates_schema
    def _image_bytes(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_declared_image(data.get("media_type"), data.get("data"))


class UrlSourceSchema(Lenient):
    url = fields.Str(required=True)


class TextSourceSchema(Lenient):
    media_type = fields.Str(allow_none=True)
    data = fields.Str(required=True)


SOURCE_SCHEMAS: dict[str, type[Lenient]] = {
    "base64": Base64SourceSchema,
    "url": UrlSourceSchema,
    "text": TextSourceSchema,
}


class MediaBlockSchema(Lenient):
    """``image`` and ``document`` blocks."""

    source = Tagged(SOURCE_SCHEMAS, required=True)
    title = fields.Str(allow_none=True)


class ToolUseBlockSchema(Lenient):
    id = fields.Str(required=True)
    name = fields.Str(required=True)
    input = JsonObject(load_default=dict)


#: What a tool result may hold: text blocks are kept, other blocks tolerated.
RESULT_CONTENT = Tagged({"text": TextBlockSchema}, other=OtherBlockSchema)


class ToolResultBlockSchema(Lenient):
    tool_use_id = fields.Str(required=True)
    content = TextOrList(RESULT_CONTENT, "content blocks", allow_none=True)
    is_error = fields.Bool(allow_none=True)


class ThinkingBlockSchema(Lenient):
    thinking = fields.Str(allow_none=True)
    signature = fields.Str(allow_none=True)


BLOCK_SCHEMAS: dict[str, type[Lenient]] = {
    "text": TextBlockSchema,
    "image": MediaBlockSchema,
    "document": MediaBlockSchema,
    "tool_use": ToolUseBlockSchema,
    "tool_result": ToolResultBlockSchema,
    "thinking": ThinkingBlockSchema,
}


def blocks(**kwargs: Any) -> TextOrList:
    """A string, or a list of content blocks each with a ``type``."""
    return TextOrList(Tagged(BLOCK_SCHEMAS, other=OtherBlockSchema), "content blocks", **kwargs)


class MessageSchema(Lenient):
    # Claude Code (2.1.197, on newer models) also sends mid-conversation system messages.
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    content = blocks(required=True)


# -- tools and output ------------------------------------------------------------------
class ToolSchema(Lenient):
    """A custom tool (no ``type``, or ``custom``) or a server/client tool such as web_search."""

    type = fields.Str(allow_none=True)
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="", allow_none=True)
    input_schema = JsonSchema(load_default=dict, allow_none=True)


class ThinkingSchema(Lenient):
    type = fields.Str(
        required=True, validate=validate.OneOf(("enabled", "adaptive", "disabled"))
    )
    budget_tokens = fields.Int(strict=True, allow_none=True)


class ToolChoiceSchema(Lenient):
    type = fields.Str(required=True, validate=validate.OneOf(("auto", "any", "tool", "none")))
    name = fields.Str(allow_none=True)

    @validates_schema
    def _named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("type") == "tool" and not data.get("name"):
            raise ValidationError("tool_choice of type 'tool' needs a 'name'.", field_name="name")


class OutputFormatSchema(Lenient):
    type = fields.Str(required=True)
    schema = fields.Dict(allow_none=True)


class OutputConfigSchema(Lenient):
    format = fields.Nested(OutputFormatSchema, allow_none=True)
    #: low … max, as Claude Code sends it; other words leave the effort to the model.
    effort = fields.Str(allow_none=True)


class MessagesSchema(Lenient):
    model = fields.Str(required=True, validate=validate.Length(min=1))
    max_tokens = fields.Int(required=True, strict=True, validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT))
    messages = fields.List(fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1))
    system = blocks(allow_none=True)
    stop_sequences = fields.List(fields.Str(), allow_none=True)
    stream = fields.Bool(load_default=False, allow_none=True)
    thinking = fields.Nested(ThinkingSchema, allow_none=True)
    tools = fields.List(fields.Nested(ToolSchema), allow_none=True)
    tool_choice = fields.Nested(ToolChoiceSchema, allow_none=True)
    metadata = fields.Nested(Metadata, allow_none=True)
    output_config = fields.Nested(OutputConfigSchema, allow_none=True)


class CountTokensSchema(MessagesSchema):
    max_tokens = fields.Int(strict=True, allow_none=True)
