"""Marshmallow schemas for the Anthropic Messages request bodies.

Unknown top-level fields are tolerated (Claude Code adds new ones often); content blocks
must carry a ``type``, and the block types the gateway acts on are checked for their
required fields. Other block types (server tool results, containers...) are ignored.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("source",),
    "document": ("source",),
    "tool_use": ("id", "name"),
    "tool_result": ("tool_use_id",),
    "thinking": (),
    "redacted_thinking": (),
}


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class BlocksField(fields.Field):
    """A string, or a list of content blocks each with a ``type``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("Must be a string or a list of content blocks.")
        for index, block in enumerate(value):
            _check_block(index, block)
        return value


def _check_block(index: int, block: Any) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise ValidationError({index: ["Each content block needs a string 'type'."]})
    missing = [name for name in BLOCK_FIELDS.get(block["type"], ()) if name not in block]
    if missing:
        raise ValidationError({index: [f"A {block['type']} block needs '{missing[0]}'."]})
    if block["type"] == "text" and not isinstance(block["text"], str):
        raise ValidationError({index: ["A text block's 'text' must be a string."]})


class MessageSchema(_Lenient):
    # Claude Code (2.1.197, on newer models) also sends mid-conversation system messages.
    role = fields.Str(required=True, validate=validate.OneOf(("user", "assistant", "system")))
    content = BlocksField(required=True)


class ToolSchema(_Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="")
    input_schema = fields.Dict(load_default=dict)
    type = fields.Str(allow_none=True)


class ThinkingSchema(_Lenient):
    type = fields.Str(
        required=True, validate=validate.OneOf(("enabled", "adaptive", "disabled"))
    )
    budget_tokens = fields.Int(strict=True, allow_none=True)


class ToolChoiceSchema(_Lenient):
    type = fields.Str(required=True, validate=validate.OneOf(("auto", "any", "tool", "none")))
    name = fields.Str(allow_none=True)


class MessagesSchema(_Lenient):
    model = fields.Str(required=True, validate=validate.Length(min=1))
    max_tokens = fields.Int(required=True, strict=True, validate=validate.Range(min=1))
    messages = fields.List(fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1))
    system = BlocksField(allow_none=True)
    stop_sequences = fields.List(fields.Str(), allow_none=True)
    stream = fields.Bool(load_default=False, allow_none=True)
    thinking = fields.Nested(ThinkingSchema, allow_none=True)
    tools = fields.List(fields.Dict(), allow_none=True)
    tool_choice = fields.Nested(ToolChoiceSchema, allow_none=True)
    metadata = fields.Dict(allow_none=True)
    output_config = fields.Dict(allow_none=True)


class CountTokensSchema(MessagesSchema):
    max_tokens = fields.Int(strict=True, allow_none=True)
