"""Marshmallow schemas for the OpenAI request bodies the gateway accepts.

Unknown fields are ignored (sampling knobs, metadata, new SDK fields), as the real API
tolerates them; known fields are type-checked so a mistake names its field.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ContentField(fields.Field):
    """``content``: a string, null, or a list of typed parts."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("Must be a string or a list of content parts.")
        for index, part in enumerate(value):
            _check_part(index, part)
        return value


def _check_part(index: int, part: Any) -> None:
    if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
        raise ValidationError(
            {index: [f"Each content part needs a 'type' among {', '.join(PART_TYPES)}."]}
        )
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        raise ValidationError({index: ["A text part needs a string 'text'."]})


class StopField(fields.Field):
    """``stop``: a string, a list of up to 4 strings, or null."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValidationError("Must be a string or a list of at most 4 strings.")


class FunctionCallSchema(_Lenient):
    name = fields.Str(required=True)
    arguments = fields.Str(load_default="{}")


class ToolCallSchema(_Lenient):
    id = fields.Str(required=True)
    type = fields.Str(load_default="function")
    function = fields.Nested(FunctionCallSchema, required=True)


class MessageSchema(_Lenient):
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    content = ContentField(load_default=None, allow_none=True)
    name = fields.Str(allow_none=True)
    tool_calls = fields.List(fields.Nested(ToolCallSchema), allow_none=True)
    tool_call_id = fields.Str(allow_none=True)
    reasoning_content = fields.Str(allow_none=True)


class StreamOptionsSchema(_Lenient):
    include_usage = fields.Bool(load_default=False)


class FunctionSchema(_Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="")
    parameters = fields.Dict(load_default=dict)


class ToolSchema(_Lenient):
    type = fields.Str(load_default="function")
    function = fields.Nested(FunctionSchema, required=True)


class ResponseFormatSchema(_Lenient):
    type = fields.Str(required=True, validate=validate.OneOf(("text", "json_object", "json_schema")))
    json_schema = fields.Dict(allow_none=True)


class ChatCompletionSchema(_Lenient):
    model = fields.Str(required=True, validate=validate.Length(min=1))
    messages = fields.List(
        fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1)
    )
    stream = fields.Bool(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, allow_none=True)
    max_tokens = fields.Int(strict=True, allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = fields.Int(
        strict=True, allow_none=True, validate=validate.Range(min=1)
    )
    stop = StopField(load_default=(), allow_none=True)
    n = fields.Int(
        strict=True,
        allow_none=True,
        validate=validate.Equal(1, error="Only n=1 is supported: the upstream gives one answer."),
    )
    response_format = fields.Nested(ResponseFormatSchema, allow_none=True)
    tools = fields.List(fields.Nested(ToolSchema), allow_none=True)
    tool_choice = fields.Raw(allow_none=True)
    parallel_tool_calls = fields.Bool(allow_none=True)
    web_search_options = fields.Dict(allow_none=True)


class SpeechSchema(_Lenient):
    model = fields.Str(load_default="tts-1")
    input = fields.Str(required=True, validate=validate.Length(min=1, max=4096))
    voice = fields.Str(required=True, validate=validate.Length(min=1))
    response_format = fields.Str(
        load_default="mp3", validate=validate.OneOf(("mp3", "opus", "aac", "flac", "wav", "pcm"))
    )
    speed = fields.Float(load_default=1.0, validate=validate.Range(min=0.25, max=4.0))


class TranscriptionSchema(_Lenient):
    model = fields.Str(load_default="whisper-1")
    response_format = fields.Str(
        load_default="json", validate=validate.OneOf(("json", "text", "srt", "verbose_json", "vtt"))
    )
    language = fields.Str(load_default="")
    prompt = fields.Str(load_default="")
