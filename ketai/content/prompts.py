"""Loads the scripted responder's clinician-reviewable text from ``prompts/scripted/*.yaml``.

Every sentence KetAI says in the scripted responder comes from these files.
Each rendered text carries an id (``<file id>.<step>.<key>``) and the file's
version, and the transcript records both for every reply.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from ketai.content.paths import content_dir
from ketai.errors import ContentError


class PromptFile(BaseModel):
    id: str
    version: int = Field(ge=1)
    reviewed_by: str
    description: str = ""
    steps: dict[str, dict[str, str | list[str]]]


class PromptText(BaseModel):
    id: str
    version: int
    text: str


class _Defaulting(dict[str, object]):
    """Leaves unknown placeholders visible instead of crashing a turn."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class PromptBook:
    """All scripted prompt files, indexed by step name."""

    def __init__(self, files: list[PromptFile]) -> None:
        self._index: dict[str, tuple[PromptFile, dict[str, str | list[str]]]] = {}
        for prompt_file in files:
            for step, texts in prompt_file.steps.items():
                if step in self._index:
                    raise ContentError(f"prompt step {step!r} is defined twice ({prompt_file.id})")
                self._index[step] = (prompt_file, texts)

    def has(self, step: str, key: str) -> bool:
        return step in self._index and key in self._index[step][1]

    def render(self, step: str, key: str, variables: dict[str, object], variant: int = 0) -> PromptText:
        try:
            prompt_file, texts = self._index[step]
            raw = texts[key]
        except KeyError as exc:
            raise ContentError(f"no prompt text for step {step!r}, key {key!r}") from exc
        if isinstance(raw, list):
            template = raw[variant % len(raw)]
            text_id = f"{prompt_file.id}.{step}.{key}[{variant % len(raw)}]"
        else:
            template = raw
            text_id = f"{prompt_file.id}.{step}.{key}"
        text = string.Formatter().vformat(template, (), _Defaulting(variables))
        return PromptText(id=text_id, version=prompt_file.version, text=text.strip())

    def templates(self) -> list[str]:
        """Every raw template (placeholders unfilled), for recognising our own rendered text."""
        found: list[str] = []
        for _, texts in self._index.values():
            for raw in texts.values():
                found.extend(raw if isinstance(raw, list) else [raw])
        return found

    def placeholders(self) -> set[str]:
        names: set[str] = set()
        for _, texts in self._index.values():
            for raw in texts.values():
                for template in raw if isinstance(raw, list) else [raw]:
                    names.update(f for _, f, _, _ in string.Formatter().parse(template) if f)
        return names


def load_prompt_file(path: Path) -> PromptFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContentError(f"{path.name}: not valid YAML ({exc})") from exc
    try:
        return PromptFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ContentError(f"{path.name}: field {field!r}: {first['msg']}") from exc


@lru_cache(maxsize=4)
def load_prompt_book(folder: Path | None = None) -> PromptBook:
    root = folder or content_dir("prompts") / "scripted"
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise ContentError(f"no prompt files in {root}")
    return PromptBook([load_prompt_file(p) for p in files])
