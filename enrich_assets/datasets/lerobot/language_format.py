"""One language row as lerobot (>= 0.6) stores it, and which column each style goes to.

The routing table matches lerobot's `lerobot.datasets.language`: persistent styles are
repeated on every frame of an episode (`language_persistent`), event styles and speech
atoms (style None, a `say` tool call) sit only on the frame of their timestamp
(`language_events`). Only vqa/trace rows name a camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LANGUAGE_PERSISTENT = "language_persistent"
LANGUAGE_EVENTS = "language_events"

PERSISTENT_STYLES = frozenset({"subtask", "plan", "memory", "motion", "task_aug"})
EVENT_STYLES = frozenset({"interjection", "vqa", "trace"})
VIEW_DEPENDENT_STYLES = frozenset({"vqa", "trace"})

# The staging files lerobot's layout has, one per module. The modules themselves (their
# column, styles, prompts) are declared in enrich/language/registry.py, a layer above this
# one; a test holds the registry to these names.
MODULES = ("plan", "interjections", "vqa")

SAY_TOOL_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "say",
        "description": "Speak a short utterance to the user via the TTS executor.",
        "parameters": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The verbatim text to speak."}
            },
            "required": ["text"],
        },
    },
}


def column_for_style(style: str | None) -> str:
    if style is None or style in EVENT_STYLES:
        return LANGUAGE_EVENTS
    if style in PERSISTENT_STYLES:
        return LANGUAGE_PERSISTENT
    raise ValueError(f"unknown language style {style!r}")


@dataclass(frozen=True)
class LanguageRow:
    """A staged row. `timestamp` is a source frame timestamp, copied, never computed."""

    role: str
    content: str | None
    style: str | None
    timestamp: float | None
    camera: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "style": self.style,
            "timestamp": self.timestamp,
            "camera": self.camera,
            "tool_calls": self.tool_calls,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LanguageRow:
        if "role" not in data:
            raise ValueError(f"language row without a role: {data!r}")
        ts = data.get("timestamp")
        return cls(
            role=data["role"],
            content=data.get("content"),
            style=data.get("style"),
            timestamp=None if ts is None else float(ts),
            camera=data.get("camera"),
            tool_calls=data.get("tool_calls"),
        )


def speech_atom(timestamp: float, text: str) -> LanguageRow:
    """The robot saying `text`: a `say` tool call, no content, no style."""
    call = {"type": "function", "function": {"name": "say", "arguments": {"text": text}}}
    return LanguageRow("assistant", None, None, timestamp, tool_calls=[call])


def is_speech_atom(row: LanguageRow) -> bool:
    return row.style is None and row.tool_calls is not None
