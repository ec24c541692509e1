"""Marshmallow building blocks shared by the dialects' request schemas.

Each dialect validates a whole request in its ``schemas`` module, down to every content
part, tool spec and response format, so its ``translate`` module only maps valid data.
The fields here are the shapes the three APIs have in common: lenient objects (unknown
fields ignored, as the real APIs do), "a string or a list", objects told apart by a tag,
inline base64 data decoded while validating. :func:`first_error` names the first bad
field by its JSON path, ``messages[2].content[0].image_url.url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from gateway.chat import data_urls
from gateway.chat.data_urls import Inline

#: Largest token count a request may ask for: beyond a 32-bit int no model has a use for
#: it, and an unbounded int only invites arithmetic on absurd numbers downstream.
MAX_TOKENS_LIMIT = 2**31 - 1
#: The key marshmallow files errors about a whole object under.
_SCHEMA_KEY = "_schema"


class Lenient(Schema):
    """Unknown fields are dropped, not refused: clients add new ones all the time."""

    class Meta:
        unknown = EXCLUDE


#: Longest conversation pin a client may send (it names a record, it is not content).
MAX_CONVERSATION_ID = 200


class Metadata(Lenient):
    """Request ``metadata``: the gateway reads only ``conversation_id`` (a pin on the
    upstream conversation to continue); the rest is the client's and ignored."""

    conversation_id = fields.Str(validate=validate.Length(min=1, max=MAX_CONVERSATION_ID), allow_none=True)


class Base64Bytes(fields.Field[bytes]):
    """Base64 text (standard or URL-safe, padding optional), loaded as its bytes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bytes:
        try:
            return data_urls.decode_base64(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


def check_declared_image(mime: Any, data: Any, field_name: str = "data") -> None:
    """Refuse base64 declared as an image whose bytes are none, as a 400 on ``field_name``
    (the upstream would answer "file is not an image", a 502 to the client)."""
    if not isinstance(mime, str) or not isinstance(data, bytes):
        return
    try:
        data_urls.check_image(mime, data)
    except ValueError as error:
        raise ValidationError(str(error), field_name=field_name) from None


class InlineData(fields.Field[Inline]):
    """A base64 ``data:`` URL, or (when ``bare_base64``) plain base64 of unknown type."""

    def __init__(self, *, bare_base64: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bare_base64 = bare_base64

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Inline:
        if not isinstance(value, str) or not value:
            raise ValidationError("Must be a data: URL or base64 text." if self.bare_base64
                                  else "Must be a data: URL.")
        try:
            if data_urls.is_data_url(value) or not self.bare_base64:
                return data_urls.parse_data_url(value)
            return Inline(data_urls.DEFAULT_MIME, data_urls.decode_base64(value))
        except ValueError as error:
            raise ValidationError(str(error)) from None


class Link(fields.Field[str | Inline]):
    """A non-empty URL; a ``data:`` URL is decoded to :class:`Inline` data."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | Inline:
        if not isinstance(value, str) or not value:
            raise ValidationError("Must be a non-empty URL.")
        if not data_urls.is_data_url(value):
            return value
        try:
            return data_urls.parse_data_url(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class JsonObject(fields.Field[dict[str, Any]]):
    """Any value, loaded as itself when it is an object and as ``{}`` otherwise.

    For values that clients fill loosely (a tool call's input, a function's args): the
    upstream needs an object, and refusing a request over them would help nobody.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}


class JsonSchema(fields.Field[dict[str, Any]]):
    """A tool's parameters: an object that is a valid JSON Schema (of the draft its
    ``$schema`` names, 2020-12 otherwise). A broken schema is the client's mistake; sent
    on, the model would be told to fill it and the answer could never be checked."""

    def __init__(self, *, any_case_types: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Gemini's OpenAPI-style ``parameters`` spell types in capitals ("OBJECT").
        self.any_case_types = any_case_types

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("Not a valid mapping type.")
        checked = _lower_types(value) if self.any_case_types else value
        try:
            jsonschema.validators.validator_for(checked).check_schema(checked)
        except jsonschema.SchemaError as error:
            where = "/".join(str(p) for p in error.absolute_path) or "the schema"
            raise ValidationError(f"Not a valid JSON Schema at {where}: {error.message}") from None
        return value


#: OpenAPI (Google's Schema proto) counts that proto3 JSON may send as strings ("1").
_COUNTS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})


def _lower_types(schema: Any) -> Any:
    """A copy of an OpenAPI-style ``schema`` as JSON Schema would spell it, for checking
    only: ``type`` names in lower case, counts sent as digit strings as numbers."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    lowered = {key: int(item) if key in _COUNTS and isinstance(item, str) and item.isdigit()
               else _lower_types(item) for key, item in schema.items()}
    kind = schema.get("type")
    if isinstance(kind, str):
        lowered["type"] = kind.lower()
    elif isinstance(kind, list):
        lowered["type"] = [k.lower() if isinstance(k, str) else k for k in kind]
    return lowered


class TextOrList(fields.Field[Any]):
    """A string, or a list whose items ``item`` validates (null too, if allowed)."""

    def __init__(self, item: fields.Field[Any], what: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items = fields.List(item)
        self.what = what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError(f"Must be a string or a list of {self.what}.")
        return self.items.deserialize(value)


class Tagged(fields.Field[dict[str, Any]]):
    """An object whose ``tag`` field picks the schema that validates the rest.

    Tags missing from ``schemas`` are refused, unless ``other`` names a schema for them
    (for objects the gateway tolerates without acting on them).
    """

    def __init__(self, schemas: Mapping[str, type[Schema]], *, tag: str = "type",
                 other: type[Schema] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = dict(schemas)
        self.tag = tag
        self.other = other

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("Must be an object.")
        kind = value.get(self.tag)
        schema = self.schemas.get(kind) if isinstance(kind, str) else None
        if schema is None and isinstance(kind, str):
            schema = self.other
        if schema is None:
            among = "" if self.other is not None else f" among {', '.join(self.schemas)}"
            raise ValidationError({self.tag: [f"Needs a string '{self.tag}'{among}."]})
        loaded: dict[str, Any] = schema().load(value)
        return {**loaded, self.tag: kind}


def first_error(messages: Any) -> tuple[str, str]:
    """The JSON path and text of the first error in marshmallow's error ``messages``.

    List indexes are written in brackets, keys after dots: ``contents[0].parts[1].text``;
    an error about the whole body is at ``body``.
    """
    path = ""
    while True:
        if isinstance(messages, dict) and messages:
            key = next(iter(messages))
            messages = messages[key]
            if isinstance(key, int):
                path += f"[{key}]"
            elif key != _SCHEMA_KEY:
                path += f".{key}" if path else str(key)
        elif isinstance(messages, list) and messages:
            messages = messages[0]
        else:
            return path or "body", str(messages).rstrip(".")
