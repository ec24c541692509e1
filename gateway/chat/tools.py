"""Tool calling over an upstream that has none: a prompt convention and a stream parser.

The tool specifications and a strict calling convention are written into the prompt;
earlier calls and results in the history are rendered back in the same convention. The
answer is parsed as it streams: text flows at once, and only text that could be the start
of the call marker is held back, for as long as it could be one. A complete block becomes
:class:`ToolCall` events, each call's arguments checked against its tool's JSON schema.

A custom (freeform) tool is presented as taking one string argument, ``input``; its call
carries that raw text (never JSON-wrapped) as :attr:`ToolCall.input`.

A malformed or invalid block, or no call where ``tool_choice`` demands one, gets one
corrective retry in the same upstream chat; if that fails too, the text is returned as
text rather than as a broken call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from gateway.parts import (
    ChatRequest,
    Event,
    Finish,
    TextDelta,
    ToolCall,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)

OPEN = "<tool_calls>"
CLOSE = "</tool_calls>"

CONVENTION = """# Tools
You can call the tools listed below. To call tools, write a block in exactly this form, and nothing after it:
<tool_calls>
[{{"name": "<tool name>", "arguments": {{<the arguments as a JSON object>}}}}]
</tool_calls>
The block holds a JSON array with one object per call; several calls may go in one block. Text before the block is allowed. After the block, stop: the results come back in the next [Tool] message as <tool_result> elements. Never invent results yourself. If no tool is needed, answer normally without a block.
{choice}
Available tools (name, description, JSON Schema of the arguments):
{tools}"""
CHOICE_RULES = {
    "auto": "",
    "required": "In this reply you MUST call at least one tool.",
    "named": "In this reply you MUST call the tool `{name}`.",
}
RETRY_INVALID = (
    "Your tool call could not be used: {reason}. Reply again with only a corrected "
    "<tool_calls> block."
)
RETRY_MISSING = "You must call {what} now. Reply with only a <tool_calls> block."

RetryFn = Callable[[str], Iterator[Event]]
#: What the model is told a custom (freeform) tool takes: its raw input as one string.
CUSTOM_PARAMETERS: dict[str, Any] = {
    "type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"],
}


# -- prompt ----------------------------------------------------------------------------
def uses_tools(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice.mode != "none"


def instructions(tools: Sequence[ToolSpec], choice: ToolChoice) -> str:
    """The convention and the tool list, appended to the prompt."""
    listing = "\n".join(_listed(t) for t in tools)
    return CONVENTION.format(choice=choice_rule(choice), tools=listing)


def _listed(tool: ToolSpec) -> str:
    parameters = CUSTOM_PARAMETERS if tool.kind == "custom" else tool.parameters
    line = (f"- {tool.name}: {tool.description.strip() or '(no description)'}\n"
            f"  arguments schema: {json.dumps(parameters, ensure_ascii=False, separators=(',', ':'))}")
    if tool.kind == "custom":  # a freeform tool: the whole raw text goes in `input`
        line += "\n  `input` is the tool's raw input text, not JSON"
        if tool.grammar:
            line += f", in this format:\n{tool.grammar.strip()}"
    return line


def choice_rule(choice: ToolChoice) -> str:
    """This turn's rule on calling (empty for ``auto``)."""
    return CHOICE_RULES[choice.mode].format(name=choice.name) if choice.mode in CHOICE_RULES else ""


def render_calls(calls: Sequence[ToolCallPart]) -> str:
    """Earlier calls, in the convention the model is asked to use."""
    items = [{"id": c.id, "name": c.name, "arguments": c.arguments if c.input is None else {"input": c.input}}
             for c in calls]
    return f"{OPEN}\n{json.dumps(items, ensure_ascii=False)}\n{CLOSE}"


def render_result(result: ToolResultPart) -> str:
    name = f' name="{result.name}"' if result.name else ""
    error = ' is_error="true"' if result.is_error else ""
    return f'<tool_result id="{result.call_id}"{name}{error}>\n{result.content}\n</tool_result>'


# -- parsing ---------------------------------------------------------------------------
class InvalidCalls(ValueError):
    """A block that cannot become tool calls; the message says why (for the retry)."""


@dataclass(frozen=True)
class ToolRules:
    tools: tuple[ToolSpec, ...]
    choice: ToolChoice

    def parse(self, block: str) -> list[ToolCall]:
        """Tool calls from the JSON inside a block, validated, or :class:`InvalidCalls`."""
        items = _json_items(block)
        calls = [self._call(item, index) for index, item in enumerate(items)]
        if self.choice.mode == "named" and all(c.name != self.choice.name for c in calls):
            raise InvalidCalls(f"the tool `{self.choice.name}` must be called")
        return calls

    def _call(self, item: Any, index: int) -> ToolCall:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidCalls(f"call {index} has no tool name")
        spec = next((t for t in self.tools if t.name == item["name"]), None)
        if spec is None:
            raise InvalidCalls(f"there is no tool named `{item['name']}`")
        arguments = item.get("arguments", {})
        if spec.kind == "custom":
            return ToolCall(f"call_{uuid.uuid4().hex[:24]}", spec.name, {}, _custom_input(arguments, index))
        if isinstance(arguments, str):
            arguments = _loads(arguments, f"the arguments of call {index} are not JSON")
        if not isinstance(arguments, dict):
            raise InvalidCalls(f"the arguments of call {index} must be a JSON object")
        _validate(spec, arguments)
        return ToolCall(f"call_{uuid.uuid4().hex[:24]}", spec.name, arguments)

    @property
    def demands_call(self) -> bool:
        return self.choice.mode in ("required", "named")

    def missing_message(self) -> str:
        what = f"the tool `{self.choice.name}`" if self.choice.mode == "named" else "a tool"
        return RETRY_MISSING.format(what=what)


def _custom_input(arguments: Any, index: int) -> str:
    """A custom tool's raw input: ``{"input": "..."}``, or the bare string a model may write."""
    value = arguments.get("input") if isinstance(arguments, dict) else arguments
    if not isinstance(value, str):
        raise InvalidCalls(f"call {index} must give the tool's raw input as the string `input`")
    return value


def _json_items(block: str) -> list[Any]:
    text = block.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    value = _loads(text, "the block is not valid JSON")
    return value if isinstance(value, list) else [value]


def _loads(text: str, reason: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidCalls(reason) from None


def _validate(spec: ToolSpec, arguments: dict[str, Any]) -> None:
    if not spec.parameters:
        return
    try:
        validator = jsonschema.validators.validator_for(spec.parameters)
        validator.check_schema(spec.parameters)
    except jsonschema.SchemaError:
        return  # the client's schema itself is broken: nothing sound to check against
    error = jsonschema.exceptions.best_match(validator(spec.parameters).iter_errors(arguments))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        raise InvalidCalls(f"`{spec.name}` {where}: {error.message}")


# -- the stream transform --------------------------------------------------------------
@dataclass
class _Outcome:
    """What one scanned answer held: calls, or a bad block, or plain text."""

    calls: list[ToolCall] = field(default_factory=list)
    block: str | None = None
    error: str | None = None
    held: str = ""
    interrupted: bool = False  # failed or abandoned before its Finish


def tool_calls(events: Iterable[Event], rules: ToolRules, retry: RetryFn) -> Iterator[Event]:
    """Turn a ``<tool_calls>`` block in the answer into ToolCall events (see module doc)."""
    first = yield from _scan(events, rules, emit_text=True)
    if first.interrupted:
        return
    if first.calls:
        yield from _finish_with(first.calls)
        return
    if first.block is None:
        if first.held:
            yield TextDelta(first.held)
        if not rules.demands_call:
            yield Finish("stop")
            return
        prompt = rules.missing_message()
    else:
        prompt = RETRY_INVALID.format(reason=first.error)
    second = yield from _scan(retry(prompt), rules, emit_text=False)
    if second.interrupted:
        return
    if second.calls:
        yield from _finish_with(second.calls)
        return
    if first.block is not None:  # give up: the first block goes out as the text it was
        yield TextDelta(OPEN + first.block)
    yield Finish("stop")


def _finish_with(calls: list[ToolCall]) -> Iterator[Event]:
    yield from calls
    yield Finish("tool_calls")


def _scan(
    events: Iterable[Event], rules: ToolRules, emit_text: bool
) -> Generator[Event, None, _Outcome]:
    """Pass events through (text only when ``emit_text``), capturing a call block."""
    outcome = _Outcome(interrupted=True)
    block: str | None = None
    for event in events:
        if isinstance(event, Finish):
            outcome.interrupted = False
            break
        if not isinstance(event, TextDelta):
            yield event
            continue
        if block is not None:
            block += event.text
        else:
            outcome.held += event.text
            if OPEN in outcome.held:
                before, _, block = outcome.held.partition(OPEN)
                outcome.held = ""
                if before and emit_text:
                    yield TextDelta(before)
            else:
                keep = _partial_marker(outcome.held)
                if emit_text and len(outcome.held) > keep:
                    yield TextDelta(outcome.held[: len(outcome.held) - keep])
                outcome.held = outcome.held[len(outcome.held) - keep :]
        if block is not None and CLOSE in block:
            outcome.interrupted = False  # what follows the block is not needed
            break
    if block is not None:
        _parse_into(outcome, rules, block)
    return outcome


def _parse_into(outcome: _Outcome, rules: ToolRules, block: str) -> None:
    outcome.block = block
    try:
        outcome.calls = rules.parse(block.partition(CLOSE)[0])
    except InvalidCalls as error:
        outcome.error = str(error)


def _partial_marker(text: str) -> int:
    """Length of the longest suffix of ``text`` that starts the call marker."""
    for size in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if text.endswith(OPEN[:size]):
            return size
    return 0
