"""``GET /openapi.json``: a structurally valid OpenAPI 3.1 document that documents every
route of the app's URL map, with request bodies from the marshmallow schemas and the
error shape of each dialect; and the homepage links it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from gateway import create_app, i18n
from gateway.config import Settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
ERROR_SHAPES = {"OpenAI": "OpenAIError", "Anthropic": "AnthropicError", "Gemini": "GeminiError"}


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(Settings())


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_structure_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "xApiKey", "xGoogApiKey", "keyQuery"}
    for path, method, op in operations(document):
        assert op["responses"], (path, method)
        for name in path.split("{")[1:]:
            param = name.split("}")[0]
            assert any(p["name"] == param and p["in"] == "path" for p in op.get("parameters", [])), (path, param)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found
    for ref in found:
        assert isinstance(resolve(document, ref), dict), ref


def test_every_public_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    documented = {(op["x-flask-rule"], method) for _, method, op in operations(document)}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in set(rule.methods or ()) - {"HEAD", "OPTIONS"}:
            assert (rule.rule, method.lower()) in documented, f"{method} {rule.rule} missing from /openapi.json"


def test_every_readme_endpoint_family_is_there(document: dict[str, Any]) -> None:
    paths = set(document["paths"])
    for action in ("generateContent", "streamGenerateContent", "countTokens"):
        assert "/{version}/models/{model}:" + action in paths
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/responses/{response_id}", "/v1/messages",
                 "/v1/messages/count_tokens", "/v1/models",
                 "/v1beta/models", "/v1/audio/speech", "/v1/audio/transcriptions", "/token/check", "/",
                 "/ping", "/healthz", "/readyz", "/metrics", "/openapi.json", "/admin", "/admin/accounts"):
        assert path in paths, path


def test_chat_completions_body_comes_from_the_schema(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    schema = resolve(document, body["schema"]["$ref"])
    assert {"messages", "model"} <= set(schema["properties"])
    assert {"messages", "model"} <= set(schema["required"])


@pytest.mark.parametrize("path, method, dialect", [
    ("/v1/chat/completions", "post", "OpenAI"),
    ("/v1/responses", "post", "OpenAI"),
    ("/v1/messages", "post", "Anthropic"),
    ("/{version}/models/{model}:generateContent", "post", "Gemini"),
])
def test_errors_use_the_dialect_shape(document: dict[str, Any], path: str, method: str, dialect: str) -> None:
    responses = document["paths"][path][method]["responses"]
    for status in ("400", "401", "404", "413", "429", "502", "503", "504"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{ERROR_SHAPES[dialect]}"
    shape = document["components"]["schemas"][ERROR_SHAPES[dialect]]
    if dialect == "Anthropic":
        assert shape["properties"]["type"] == {"const": "error"}
        assert set(shape["properties"]["error"]["properties"]) == {"type", "message"}
    else:
        inner = {"OpenAI": {"message", "type", "param", "code"}, "Gemini": {"code", "message", "status"}}
        assert set(shape["properties"]["error"]["properties"]) == inner[dialect]


def test_streams_document_event_stream(document: dict[str, Any]) -> None:
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/{version}/models/{model}:streamGenerateContent"):
        assert "text/event-stream" in document["paths"][path]["post"]["responses"]["200"]["content"], path


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_homepage_links_the_document(app: Flask, lang: i18n.Lang) -> None:
    page = app.test_client().get(f"/?lang={lang}", headers={"Accept": "text/html"}).get_data(as_text=True)
    match = re.search(r'<p id="openapi-link">([^<]*)<a href="([^"]*)"', page)
    assert match, "no link to /openapi.json on the homepage"
    assert match.group(2).endswith("/openapi.json")
    assert match.group(1).strip() == i18n.MESSAGES["page.endpoints.openapi"].get(lang)


def test_validates_against_the_openapi_3_1_meta_schema(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


@pytest.mark.parametrize("path, name, required", [
    ("/v1/chat/completions", "OpenAIChatCompletionResponse", {"id", "object", "created", "model", "choices"}),
    ("/v1/responses", "ResponsesResponse", {"id", "object", "created_at", "status", "model", "output"}),
    ("/v1/messages", "AnthropicMessageResponse", {"id", "type", "role", "model", "content", "stop_reason", "usage"}),
    ("/{version}/models/{model}:generateContent", "GeminiGenerateContentResponse", {"candidates"}),
    ("/v1/messages/count_tokens", "AnthropicTokenCount", {"input_tokens"}),
    ("/{version}/models/{model}:countTokens", "GeminiTokenCount", {"totalTokens"}),
    ("/token/check", "TokenCheckReport", {"live", "credits", "surface", "failed_stage", "likely_cause", "stages",
                                          "surfaces", "seconds"}),
    ("/v1/audio/transcriptions", "OpenAITranscription", {"text"}),
])
def test_answers_have_their_own_schema(document: dict[str, Any], path: str, name: str, required: set[str]) -> None:
    body = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{name}"}
    assert set(resolve(document, body["$ref"])["required"]) == required


@pytest.mark.parametrize("path, names", [
    ("/v1beta/models", ["GeminiModelList"]),
    ("/v1beta/models/{model}", ["GeminiModel"]),
    ("/v1/models", ["OpenAIModelList", "AnthropicModelList", "GeminiModelList", "CodexModelCatalogue"]),
    ("/v1/responses/{response_id}", ["ResponsesResponse"]),
    ("/v1/models/{model_id}", ["OpenAIModel", "AnthropicModel", "GeminiModel"]),
    ("/healthz", ["Health"]),
    ("/readyz", ["Readiness"]),
    ("/openapi.json", ["OpenAPIDocument"]),
    ("/admin/accounts", ["AdminOverview"]),
    ("/", ["Homepage"]),
])
def test_get_answers_have_their_own_schema(document: dict[str, Any], path: str, names: list[str]) -> None:
    body = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    found = [form["$ref"] for form in body.get("anyOf", [body])]
    assert found == [f"#/components/schemas/{name}" for name in names]
    for ref in found:
        assert resolve(document, ref)["required"]


def test_every_answer_is_documented(document: dict[str, Any]) -> None:
    """Each 200 names its media types, each with a schema; a JSON answer's schema names
    components (itself, its alternatives or its items) that resolve."""
    for path, method, op in operations(document):
        content = op["responses"]["200"].get("content")
        assert content, (path, method)
        for media, entry in content.items():
            schema = entry.get("schema")
            assert isinstance(schema, dict) and schema, (path, method, media)
            if media != "application/json":
                continue
            forms = schema.get("anyOf") or [schema.get("items", schema)]
            named = [form.get("$ref") for form in forms]
            assert named and all(isinstance(ref, str) and ref.startswith("#/components/schemas/") for ref in named), \
                (path, method, schema)
            assert all(resolve(document, ref) for ref in named), (path, method, schema)


def test_a_gemini_stream_without_alt_is_a_json_array_of_responses(document: dict[str, Any]) -> None:
    content = document["paths"]["/{version}/models/{model}:streamGenerateContent"]["post"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/GeminiGenerateContentResponse"}


def test_stream_schemas_describe_each_event(document: dict[str, Any]) -> None:
    event = document["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["type"] == "object" and event["required"] == ["data"]


@pytest.mark.parametrize("path, method, name", [
    ("/{version}/models/{model}:streamGenerateContent", "post", "alt"),
    ("/v1/messages", "post", "beta"),
    ("/v1/models", "get", "client_version"),
    ("/v1/messages/count_tokens", "post", "beta"),
    ("/", "get", "lang"),
    ("/admin", "get", "lang"),
])
def test_query_parameters_are_documented(document: dict[str, Any], path: str, method: str, name: str) -> None:
    params = document["paths"][path][method]["parameters"]
    assert any(p["name"] == name and p["in"] == "query" and not p["required"] for p in params), params


@pytest.mark.parametrize("path, method, listed, absent", [
    ("/v1/chat/completions", "post", {"400", "401", "429", "502", "503", "504"}, set()),
    ("/v1/responses", "post", {"400", "401", "404", "429", "502", "503", "504"}, set()),
    ("/v1/responses/{response_id}", "delete", {"401", "404"}, {"400", "502"}),
    ("/v1/messages/count_tokens", "post", {"400", "401"}, {"502", "503", "504"}),
    ("/{version}/models/{model}:countTokens", "post", {"400", "404"}, {"502", "503", "504"}),
    ("/v1/models/{model_id}", "get", {"404"}, {"400", "502"}),
    ("/admin", "get", {"404"}, {"502"}),
    ("/readyz", "get", {"503"}, set()),
    ("/ping", "get", set(), {"400", "404", "502"}),
])
def test_each_route_lists_the_statuses_it_returns(document: dict[str, Any], path: str, method: str,
                                                   listed: set[str], absent: set[str]) -> None:
    statuses = set(document["paths"][path][method]["responses"])
    assert listed <= statuses and not absent & statuses, statuses


def test_message_content_is_a_string_or_a_list(document: dict[str, Any]) -> None:
    content = document["components"]["schemas"]["AnthropicMessage"]["properties"]["content"]
    assert [form["type"] for form in content["anyOf"]] == ["string", "array"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages",
                                  "/{version}/models/{model}:generateContent",
                                  "/{version}/models/{model}:streamGenerateContent"])
def test_chat_bodies_carry_an_answerable_example(document: dict[str, Any], path: str) -> None:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    schema = resolve(document, body["schema"]["$ref"])
    assert set(schema["required"]) <= set(body["example"])
