"""A bounded, seeded fuzz of the gateway's own OpenAPI document (issue 12, part 3).

schemathesis reads ``/openapi.json`` from a gunicorn gateway on the simulator and
generates, for every documented operation, valid requests (which reach the upstream and
are answered) and invalid ones (which must be refused). Every request carries a valid
credential in its dialect's header, so the fuzz gets past authentication to validation
and the upstream. Each response must be no 5xx (the simulator is told no fault), conform
to the document (status, content type, body schema) and, when it is an error of an API
route, have that dialect's error shape. Afterwards the gateway is healthy and no
upstream chat is left behind. Every response goes to the secrets sweep.

Negative cases include ones schemathesis makes by leaving the credential out: their 401
is checked like any other error. The CI share is fixed: a seed, an example budget per
operation and generation mode, no shrinking, cases drawn once for both surfaces, request
schemas kept shallow in the fuzz's copy of the document (see :func:`bounded`), and every
body read whole (a stream too) under a timeout.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.secrets import SECRETS_GROUP, record_response, record_text
from tests.simulator.control import SimulatorControl

# A stream that never ended would pass the per-read timeout: the test's own bounds it.
pytestmark = [pytest.mark.xdist_group(SECRETS_GROUP), pytest.mark.timeout(150)]

#: The fuzz's fixed seed: the same requests on every run and machine.
FUZZ_SEED = 20261203
#: Examples per operation and generation mode; chat routes get more (they hold the most
#: schema), system routes fewer (they take no input but their query and headers).
EXAMPLES: dict[str, int] = {
    "/v1/chat/completions": 30,
    "/v1/responses": 20,
    "/v1/messages": 30,
    "/{version}/models/{model}:generateContent": 20,
    "/{version}/models/{model}:streamGenerateContent": 15,
}
DEFAULT_EXAMPLES = 6
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
#: A short, fast default answer: valid bodies are answered without slowing the run.
ANSWER: dict[str, Any] = {"text": "{\"answer\": \"fuzzed\"}", "cps": 20000, "first_delay": 0.0}
REQUEST_TIMEOUT = 30.0
#: Routes the seeded draw must get at least one answer from: the fuzz reaches the upstream.
ANSWERED = ("POST /v1/chat/completions", "POST /v1/messages", "POST /{version}/models/{model}:generateContent",
            "POST /{version}/models/{model}:streamGenerateContent")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def dialect_headers(tags: list[str], credential: str) -> dict[str, str]:
    """The credential where the operation's dialect reads it (OpenAI's bearer elsewhere)."""
    if "Anthropic" in tags:
        return {"x-api-key": credential, "anthropic-version": "2023-06-01"}
    if "Gemini" in tags:
        return {"x-goog-api-key": credential}
    return {"Authorization": f"Bearer {credential}"}


# The shapes of gateway/{openai,anthropic,gemini}/errors.py, checked field by field.
def openai_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


def anthropic_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and body.get("type") == "error"
            and isinstance(error.get("type"), str) and isinstance(error.get("message"), str))


def gemini_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and isinstance(error.get("code"), int)
            and isinstance(error.get("message"), str) and isinstance(error.get("status"), str))


SHAPES: dict[str, Callable[[Any], bool]] = {
    "OpenAI": openai_shaped, "Anthropic": anthropic_shaped, "Gemini": gemini_shaped}


def shape_problem(tags: list[str], response: requests.Response) -> str | None:
    """Why an error response of a dialect route is not in that dialect's shape (None: it is)."""
    dialect = next((tag for tag in tags if tag in SHAPES), None)
    if dialect is None or response.status_code < 400:
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(response.url).path)
    if path.startswith("/v1/models/") and ":" in path:
        dialect = "Gemini"  # a model id never holds ':': that is google-genai's v1 method URL
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    return None if SHAPES[dialect](body) else f"not {dialect}-shaped: {json.dumps(body)[:300]}"


@dataclass
class Tally:
    """What the fuzz saw: responses per (operation, status), and every problem."""

    statuses: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, label: str, status: int) -> None:
        self.statuses[(label, status)] = self.statuses.get((label, status), 0) + 1

    def answered(self, label: str) -> int:
        return self.statuses.get((label, 200), 0)


@dataclass(frozen=True)
class Target:
    """Where and as whom the fuzz sends."""

    base_url: str
    credential: str
    session: requests.Session


def send(target: Target, case: Case) -> requests.Response:
    """Send ``case`` and read the whole body (a stream to its end) under a timeout."""
    headers = dialect_headers(case.operation.tags or [], target.credential)
    kwargs = case.as_transport_kwargs(base_url=target.base_url, headers=headers)
    return target.session.request(**kwargs, timeout=REQUEST_TIMEOUT, allow_redirects=False)


def exercise(target: Target, tally: Tally, case: Case) -> None:
    """One generated request: sent, recorded, checked; a problem is noted, never raised
    (hypothesis would stop the operation at the first one)."""
    label = f"{case.method} {case.path}"
    try:
        response = send(target, case)
    except requests.RequestException as exc:
        record_text(f"fuzz {label}", str(exc))
        tally.problems.append(f"{label}: {type(exc).__name__}: {exc}\n  {case.as_curl_command()}")
        return
    record_response(f"fuzz {label}", response)
    tally.count(label, response.status_code)
    problems = []
    shape = shape_problem(case.operation.tags or [], response)
    if shape:
        problems.append(shape)
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        problems.extend(str(failure.title) + ": " + str(failure.message)[:300] for failure in group.exceptions)
    for problem in problems:
        tally.problems.append(f"{label} -> {response.status_code}: {problem}\n  {response.text[:300]}\n  "
                              f"{case.as_curl_command(headers={'Authorization': 'Bearer CRED'})[:600]}")


def generated(operation: APIOperation, mode: GenerationMode, examples: int) -> list[Case]:
    """The cases hypothesis draws for one operation in one mode, with the fixed budget."""
    drawn: list[Case] = []

    @seed(FUZZ_SEED)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def draw(case: Case) -> None:
        drawn.append(case)

    try:
        draw()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        pass
    return drawn


#: The cases, drawn once for the run: generating is most of the cost (Gemini's nested
#: schemas above all), and both surfaces get the same requests.
DRAWN: dict[str, list[Case]] = {}


#: What a free-form value (schema ``{}``) or an undeclared property is drawn as in the
#: fuzz's copy of the document: hypothesis spends seconds per request on deep arbitrary
#: JSON that the gateway only passes along or drops.
SHALLOW: dict[str, Any] = {"type": ["string", "integer", "boolean", "null"], "maxLength": 8}
#: Arrays drawn no longer than this (nested lists of parts and tools grow the bodies,
#: and the draw time, by powers).
MAX_ITEMS = 3


def shallow(node: Any) -> Any:
    """A request schema with free-form values and extra properties kept shallow."""
    if isinstance(node, list):
        return [shallow(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node == {}:
        return dict(SHALLOW)
    found = {key: shallow(value) if key != "properties" else {name: shallow(sub) for name, sub in value.items()}
             for key, value in node.items()}
    if found.get("type") == "object" or "properties" in found:
        found.setdefault("additionalProperties", dict(SHALLOW))
    if "items" in found:
        found.setdefault("maxItems", max(MAX_ITEMS, found.get("minItems", 0)))
    return found


def bounded(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its request schemas kept shallow; answers and errors untouched
    (they are what the responses are checked against)."""
    answers = {ref.rsplit("/", 1)[1] for ref in refs(document["paths"], under_responses=False)}
    # Request bodies are all $refs to components (apispec's doing): only those change.
    schemas = {name: schema if name in answers else shallow(schema)
               for name, schema in document["components"]["schemas"].items()}
    return {**document, "components": {**document["components"], "schemas": schemas}}


def refs(node: Any, under_responses: bool) -> Iterator[str]:
    """The $refs under the "responses" of ``node`` (and what they reach is not followed)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and under_responses:
                yield value
            else:
                yield from refs(value, under_responses or key == "responses")
    elif isinstance(node, list):
        for value in node:
            yield from refs(value, under_responses)


def cases_of(document: dict[str, Any]) -> list[Case]:
    """Every operation's cases in both modes, drawn on the first call for a document."""
    key = json.dumps(document, sort_keys=True)
    if key not in DRAWN:
        schema = schemathesis.openapi.from_dict(bounded(document))
        operations = [result.ok() for result in schema.get_all_operations()]
        DRAWN[key] = [case for operation in operations for mode in MODES
                      for case in generated(operation, mode, EXAMPLES.get(operation.path, DEFAULT_EXAMPLES))]
    return DRAWN[key]


#: On the code surface the draw's OpenAI chats are nearly all refused upstream with their
#: reason (a 400: tool messages without their call, which the web surfaces fold into text
#: but Anthropic Messages refuses), so an answer there is not required of the seeded draw.
ANSWERED_ON_CODE = tuple(label for label in ANSWERED if label != "POST /v1/chat/completions")


def test_fuzz(gateway: str, sim: SimulatorControl, credential: str, surface: str) -> None:
    """No 5xx, every answer as documented, every error in its dialect's shape; then a
    healthy gateway and no upstream chat left."""
    sim.set_default(ANSWER)
    document = requests.get(gateway + "/openapi.json", timeout=10).json()
    tally = Tally()
    with requests.Session() as session:
        target = Target(gateway, credential, session)
        for case in cases_of(document):
            exercise(target, tally, case)
    # Shown with -s, and on failure: which statuses the draw met, per operation.
    print(json.dumps({f"{k[0]} {k[1]}": v for k, v in sorted(tally.statuses.items())}, indent=1))
    assert not tally.problems, f"{len(tally.problems)} problems:\n" + "\n".join(tally.problems[:40])
    assert all(tally.answered(label) for label in (ANSWERED_ON_CODE if surface == "code" else ANSWERED)), \
        tally.statuses
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200
    assert sim.wait_idle(30)["chats_alive"] == 0
