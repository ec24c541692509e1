"""Shared pieces of the tool-calling tests: a tool, scripted upstream answers, checks."""

from __future__ import annotations

import json

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
    "required": ["city"],
}


def call_block(*calls: tuple[str, dict], before: str = "") -> str:
    """An upstream answer that calls tools in the gateway's convention."""
    items = [{"name": name, "arguments": arguments} for name, arguments in calls]
    return f"{before}<tool_calls>\n{json.dumps(items)}\n</tool_calls>"


def tool_answer(surface: str, *calls: tuple[str, dict], before: str = "", **extra: object) -> dict:
    """A scripted upstream answer that calls tools, as the surface answers it: the web
    surfaces in the gateway's text convention, the code surface with native tool_use."""
    if surface == "code":
        return {"text": before, "tool_calls": [{"name": name, "input": args} for name, args in calls], **extra}
    return {"text": call_block(*calls, before=before), **extra}


def weather(city: str, unit: str = "C") -> str:
    return json.dumps({"city": city, "temperature": 21, "unit": unit})
