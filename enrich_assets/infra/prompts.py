"""Prompt files under prompts/: a system part, a user template and few-shot examples.

A prompt file holds a `# System` section and a `# User` section; the user template uses
`$name` placeholders (string.Template, so JSON braces in the text need no escaping) and
may contain `$examples`, filled from prompts/examples/<name>.json (a list of
{"input": ..., "output": ...}). `prompt_hash` is what the Dagster layer uses as
code_version: change a prompt, an example, the model or a sampling parameter and the
hash changes, so exactly the affected partitions go stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from enrich_assets.infra.paths import PROMPTS_DIR, prompts_dir  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    template: str
    examples: tuple[dict[str, Any], ...]
    source: bytes  # the prompt file and its examples file, as read: what prompt_hash hashes

    def render(self, **fields: object) -> str:
        """The user prompt with every `$name` filled; a missing field is an error."""
        try:
            return Template(self.template).substitute(examples=self.examples_text(), **fields)
        except KeyError as err:
            raise ValueError(f"prompt {self.name!r} needs field {err.args[0]!r}") from err

    def examples_text(self) -> str:
        if not self.examples:
            return ""
        blocks = []
        for i, example in enumerate(self.examples, 1):
            output = example["output"]
            shown = output if isinstance(output, str) else json.dumps(output)
            blocks.append(f"Example {i}\nInput: {example['input']}\nOutput: {shown}")
        return "Examples (the images are described in words here):\n\n" + "\n\n".join(blocks)


def _sections(name: str, text: str) -> tuple[str, str]:
    head, sep, user = text.partition("\n# User\n")
    if not sep or not head.startswith("# System\n"):
        raise ValueError(f"prompt {name!r}: expected a '# System' then a '# User' section")
    return head.removeprefix("# System\n").strip(), user.strip()


def load_prompt(name: str, root: Path | None = None) -> Prompt:
    root = root or prompts_dir()
    path = root / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    raw = path.read_bytes()
    system, template = _sections(name, raw.decode("utf-8"))
    examples_path = root / "examples" / f"{name}.json"
    examples_raw = examples_path.read_bytes() if examples_path.is_file() else b""
    examples = json.loads(examples_raw) if examples_raw else []
    if not isinstance(examples, list) or not all(
        isinstance(e, dict) and {"input", "output"} <= e.keys() for e in examples
    ):
        raise ValueError(f"{examples_path}: expected a list of {{'input', 'output'}} objects")
    return Prompt(name, system, template, tuple(examples), raw + b"\0" + examples_raw)


def prompt_hash(
    names: Sequence[str], model: str, params: Mapping[str, Any], root: Path | None = None
) -> str:
    """sha256 over the named prompts (text + examples), the model id and the parameters."""
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + load_prompt(name, root).source + b"\0")
    digest.update(model.encode() + b"\0")
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()
