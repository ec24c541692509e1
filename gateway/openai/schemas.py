"""Marshmallow schemas for the OpenAI request bodies the gateway accepts.

The whole request is validated here, down to each content part, tool call, tool spec,
tool choice and response format, so :mod:`gateway.openai.translate` only maps valid data.
Unknown fields are ignored (sampling knobs, metadata, new SDK fields), as the real API
tolerates them; known fields are type-checked so a mistake names its JSON path. Inline
data (data: URLs, base64) is decoded while validating.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate

from gateway.openai_family import Arguments
from gateway.validation import (
    MAX_TOKENS_LIMIT,
    Base64Bytes,
    InlineData,
    JsonSchema,
    Lenient,
    Link,
    Metadata,
    Tagged,
    TextOrList,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICE_MODES = ("none", "auto", "required")


# -- content parts ---------------------------------------------------------------------
class TextPartSchema(Lenient):
    text = fields.Str(required=True)


class RefusalPartSchema(Lenient):
    refusal = fields.Str(allow_none=True)
    text = fields.Str(allow_none=True)


class ImageUrlSchema(Lenient):
    url = Link(required=True)
    detail = fields.Str(allow_none=True)

    @pre_load
    def _bare_url(self, data: Any, **kwargs: Any) -> Any:
        # Some clients send the URL itself rather than {"url": ...}.
        return {"url": data} if isinstance(data, str) else data


class ImagePartSchema(Lenient):
    image_url = fields.Nested(ImageUrlSchema, required=True)


class FileSchema(Lenient):
    file_data = InlineData(bare_base64=True, required=True)
    filename = fields.Str(allow_none=True)


class FilePartSchema(Lenient):
    file = fields.Nested(FileSchema, required=True)


class InputAudioSchema(Lenient):
    data = Base64Bytes(required=True)
    format = fields.Str(load_default="mp3", allow_none=True)


class AudioPartSchema(Lenient):
    input_audio = fields.Nested(InputAudioSchema, required=True)


PART_SCHEMAS: dict[str, type[Lenient]] = {
    "text": TextPartSchema,
    "image_url": ImagePartSchema,
    "input_audio": AudioPartSchema,
    "file": FilePartSchema,
    "refusal": RefusalPartSchema,
}


# -- messages --------------------------------------------------------------------------
class FunctionCallSchema(Lenient):
    name = fields.Str(required=True)
    arguments = Arguments(load_default=dict, allow_none=True)


class ToolCallSchema(Lenient):
    id = fields.Str(required=True)
    type = fields.Str(load_default="function")
    function = fields.Nested(FunctionCallSchema, required=True)


class MessageSchema(Lenient):
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    content = TextOrList(Tagged(PART_SCHEMAS), "content parts", load_default=None, allow_none=True)
    name = fields.Str(allow_none=True)
    tool_calls = fields.List(fields.Nested(ToolCallSchema), allow_none=True)
    tool_call_id = fields.Str(allow_none=True)
    reasoning_content = fields.Str(allow_none=True)


# -- tools and output ------------------------------------------------------------------
class FunctionSchema(Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))
    description = fields.Str(load_default="")
    parameters = JsonSchema(load_default=dict)


class ToolSchema(Lenient):
    type = fields.Str(load_default="function")
    function = fields.Nested(FunctionSchema, required=True)


class NamedFunctionSchema(Lenient):
    name = fields.Str(required=True, validate=validate.Length(min=1))


class NamedToolChoiceSchema(Lenient):
    type = fields.Str(load_default="function")
    function = fields.Nested(NamedFunctionSchema, required=True)


class ToolChoiceField(fields.Field[Any]):
    """``tool_choice``: ``none``, ``auto``, ``required`` or ``{"type": "function", "function": {name}}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value in TOOL_CHOICE_MODES:
            return value
        if isinstance(value, dict):
            return NamedToolChoiceSchema().load(value)
        raise ValidationError("tool_choice must be 'none', 'auto', 'required' or a named function.")


class JsonSchemaSchema(Lenient):
    name = fields.Str(allow_none=True)
    schema = fields.Dict(allow_none=True)
    strict = fields.Bool(allow_none=True)


class ResponseFormatSchema(Lenient):
    type = fields.Str(required=True, validate=validate.OneOf(("text", "json_object", "json_schema")))
    json_schema = fields.Nested(JsonSchemaSchema, allow_none=True)


class StopField(fields.Field[Any]):
    """``stop``: a string, a list of up to 4 strings, or null."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValidationError("Must be a string or a list of at most 4 strings.")


class StreamOptionsSchema(Lenient):
    include_usage = fields.Bool(load_default=False)


class ChatCompletionSchema(Lenient):
    model = fields.Str(required=True, validate=validate.Length(min=1))
    messages = fields.List(
        fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1)
    )
    stream = fields.Bool(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, allow_none=True)
    max_tokens = fields.Int(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT))
    max_completion_tokens = fields.Int(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_TOKENS_LIMIT)
    )
    stop = StopField(load_default=(), allow_none=True)
    n = fields.Int(
        strict=True,
        allow_none=True,
        validate=validate.Equal(1, error="Only n=1 is supported: the upstream gives one answer."),
    )
    response_format = fields.Nested(ResponseFormatSchema, allow_none=True)
    tools = fields.List(fields.Nested(ToolSchema), allow_none=True)
    tool_choice = ToolChoiceField(allow_none=True)
    parallel_tool_calls = fields.Bool(allow_none=True)
    web_search_options = fields.Dict(allow_none=True)
    metadata = fields.Nested(Metadata, allow_none=True)
    #: none … xhigh; a word the gateway does not know leaves the effort to the model.
    reasoning_effort = fields.Str(allow_none=True)


# -- audio -----------------------------------------------------------------------------
class SpeechSchema(Lenient):
    model = fields.Str(load_default="tts-1")
    input = fields.Str(required=True, validate=validate.Length(min=1, max=4096))
    voice = fields.Str(required=True, validate=validate.Length(min=1))
    response_format = fields.Str(
        load_default="mp3", validate=validate.OneOf(("mp3", "opus", "aac", "flac", "wav", "pcm"))
    )
    speed = fields.Float(load_default=1.0, validate=validate.Range(min=0.25, max=4.0))


class TranscriptionSchema(Lenient):
    model = fields.Str(load_default="whisper-1")
    response_format = fields.Str(
        load_default="json", validate=validate.OneOf(("json", "text", "srt", "verbose_json", "vtt"))
    )
    language = fields.Str(load_default="")
    prompt = fields.Str(load_default="")
