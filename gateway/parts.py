"""The neutral model of a chat and of its answer stream (below the chat core and the
upstream package, which both speak it).

Every dialect translates its request *into* a :class:`ChatRequest` and renders the
:data:`Event` stream *out* into its own wire format; no dialect ever goes through
another dialect's format. All values are plain frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import GatewayError

Role = Literal["system", "user", "assistant", "tool"]
#: How hard the model should think: each dialect's knob mapped onto one scale; "none"
#: asks for no thinking where the model allows it, None leaves it to the model.
Effort = Literal["none", "low", "medium", "high", "xhigh", "max"]
#: A thinking budget in tokens (Anthropic ``budget_tokens``, Gemini ``thinkingBudget``)
#: up to each size, as an effort; larger ones are ``xhigh``.
BUDGET_EFFORTS: tuple[tuple[int, Effort], ...] = ((2048, "low"), (8192, "medium"), (32768, "high"))


def effort_for_budget(budget: int) -> Effort:
    """The effort a positive thinking budget asks for."""
    return next((effort for limit, effort in BUDGET_EFFORTS if budget <= limit), "xhigh")
#: ``function`` tools take JSON arguments; ``custom`` (freeform) tools take one raw text input.
ToolKind = Literal["function", "custom"]
FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence", "content_filter"]


# -- request parts ---------------------------------------------------------------------
@dataclass(frozen=True)
class TextPart:
    text: str
    #: The client marked a prompt-cache breakpoint here (Anthropic ``cache_control``);
    #: an upstream that caches prompts is told, the others ignore it.
    cache: bool = False


@dataclass(frozen=True)
class ReasoningPart:
    """Earlier reasoning the client sends back (kept out of a folded prompt; replayed to
    an upstream that reasons natively only when it carries that upstream's signature)."""

    text: str
    signature: str | None = None


@dataclass(frozen=True)
class MediaPart:
    """An image or document: inline bytes or a URL to fetch."""

    mime_type: str
    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class ToolCallPart:
    """A call the assistant made earlier (or makes now); a custom tool's call carries its
    raw ``input`` instead of arguments."""

    id: str
    name: str
    arguments: dict[str, Any]
    input: str | None = None


@dataclass(frozen=True)
class ToolResultPart:
    call_id: str
    content: str
    name: str | None = None
    is_error: bool = False


Part = TextPart | ReasoningPart | MediaPart | ToolCallPart | ToolResultPart


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


def last_user_text(messages: tuple[Message, ...]) -> str:
    return next((m.text for m in reversed(messages) if m.role == "user"), "")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    kind: ToolKind = "function"
    #: A custom tool's input format (e.g. a Lark grammar), told to the model as it is.
    grammar: str | None = None


@dataclass(frozen=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class ResponseFormat:
    """``json`` asks for a JSON answer, optionally matching ``schema``."""

    kind: Literal["text", "json"] = "text"
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One offered model (limits in tokens; 0 when unknown)."""

    id: str
    context: int = 0
    output: int = 0
    label: str = ""


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    max_output_tokens: int | None = None
    stop: tuple[str, ...] = ()
    response_format: ResponseFormat = ResponseFormat()
    web_search: bool = False
    #: The search is a hosted tool the client merely offers: used where a surface has one,
    #: else the request is answered without it (rather than refused).
    web_search_optional: bool = False
    #: A client-chosen id pinning the upstream conversation this request continues.
    conversation_id: str | None = None
    reasoning_effort: Effort | None = None


# -- stream events ---------------------------------------------------------------------
@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ReasoningSignature:
    """The upstream's signature of the reasoning just streamed (it ends that reasoning
    block). Only a dialect that returns thinking blocks to be replayed shows it."""

    signature: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    #: A custom tool's raw input (its ``arguments`` are then empty).
    input: str | None = None


@dataclass(frozen=True)
class AgentStep:
    """A finished upstream agent step (e.g. a web search) and its output."""

    name: str
    content: str


@dataclass(frozen=True)
class Source:
    """One web page a search step found."""

    url: str
    title: str = ""
    snippet: str = ""


@dataclass(frozen=True)
class SearchResults:
    """The results of an upstream web search step, for the dialect's citations."""

    query: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    stop_sequence: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    """Nothing new yet; dialects that can send keep-alive frames do so."""


@dataclass(frozen=True)
class StreamError:
    """A failure after the stream began; always the last event."""

    error: GatewayError


Event = (
    TextDelta | ReasoningDelta | ReasoningSignature | ToolCall | AgentStep | SearchResults | Usage | Finish
    | Heartbeat | StreamError
)


@dataclass
class ChatResult:
    """A whole answer, collected from the event stream for non-stream replies."""

    text: str = ""
    reasoning: str = ""
    #: The upstream's signature of the reasoning (the last one, when it sent several).
    reasoning_signature: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    steps: list[AgentStep] = field(default_factory=list)
    searches: list[SearchResults] = field(default_factory=list)
    usage: Usage = Usage(0, 0)
    finish: Finish = Finish("stop")


def collect(events: Any) -> ChatResult:
    """Fold an event stream into a :class:`ChatResult`; a :class:`StreamError` is raised."""
    result = ChatResult()
    text: list[str] = []
    reasoning: list[str] = []
    for event in events:
        match event:
            case TextDelta(text=delta):
                text.append(delta)
            case ReasoningDelta(text=delta):
                reasoning.append(delta)
            case ReasoningSignature(signature=signature):
                result.reasoning_signature = signature
            case ToolCall():
                result.tool_calls.append(event)
            case AgentStep():
                result.steps.append(event)
            case SearchResults():
                result.searches.append(event)
            case Usage():
                result.usage = event
            case Finish():
                result.finish = event
            case StreamError(error=error):
                raise error
    result.text, result.reasoning = "".join(text), "".join(reasoning)
    return result
