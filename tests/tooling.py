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


def weather(city: str, unit: str = "C") -> str:
    return json.dumps({"city": city, "temperature": 21, "unit": unit})
