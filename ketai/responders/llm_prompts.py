"""Loads the LLM responder's system prompts from ``prompts/llm/*.md``.

Each file is Markdown with YAML front matter (``id``, ``version``,
``reviewed_by``). One file has no ``phase``: the shared base rules, which also
list the scripted prompt ids that are always sent word for word
(``keep_verbatim``). Every other file adds the rules for one phase. The
system prompt for a phase is the base text followed by the phase text, so a
clinician reviews the shared rules once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ketai.content.paths import content_dir
from ketai.errors import ContentError
from ketai.models import Phase

LLM_PHASES: tuple[Phase, ...] = (Phase.PRE_SESSION, Phase.DOSING, Phase.PEAK, Phase.INTEGRATION)
"""Phases the LLM may rephrase in; every other phase always uses the scripted text."""

_FENCE = "---"


class LLMPromptMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^llm\.[a-z_]+$")
    version: int = Field(ge=1)
    reviewed_by: str = Field(min_length=1)
    description: str = ""
    phase: Phase | None = None
    """None for the shared base file."""
    max_chars: int = Field(default=700, ge=80, le=2000)
    """Longest reply accepted from the model in this phase (a longer one falls back to the script)."""
    keep_verbatim: list[str] = Field(default_factory=list)
    """Base file only: scripted prompt ids (or id prefixes) that are never rephrased."""
    exact_questions: list[str] = Field(default_factory=list)
    """Base file only: scripted ids whose closing question must come back word for word."""


class LLMPrompt(BaseModel):
    meta: LLMPromptMeta
    body: str
    file_name: str


class LLMPromptSet:
    """The base rules plus one prompt per LLM phase."""

    def __init__(self, base: LLMPrompt, phases: dict[Phase, LLMPrompt]) -> None:
        missing = [p.value for p in LLM_PHASES if p not in phases]
        if missing:
            raise ContentError(f"prompts/llm: no system prompt for phase(s) {', '.join(missing)}")
        self.base = base
        self.phases = phases

    def for_phase(self, phase: Phase) -> LLMPrompt | None:
        return self.phases.get(phase)

    def system_prompt(self, phase: Phase) -> str:
        prompt = self.phases[phase]
        return f"{self.base.body}\n\n{prompt.body}"

    def keep_verbatim(self, scripted_id: str) -> bool:
        """True when a scripted text must be sent unchanged (matched on id or dotted prefix)."""
        return any(_id_matches(prefix, scripted_id) for prefix in self.base.meta.keep_verbatim)

    def exact_question(self, scripted_id: str) -> bool:
        """True when the question in this scripted text must be repeated word for word."""
        return any(_id_matches(prefix, scripted_id) for prefix in self.base.meta.exact_questions)


def _id_matches(prefix: str, scripted_id: str) -> bool:
    return scripted_id == prefix or scripted_id.startswith((prefix + ".", prefix + "["))


def parse_prompt_file(path: Path) -> LLMPrompt:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(f"{path.name}: cannot be read ({exc})") from exc
    lines = raw.splitlines()
    if not lines or lines[0].strip() != _FENCE:
        raise ContentError(f"{path.name}: must start with YAML front matter between '---' lines")
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == _FENCE)
    except StopIteration:
        raise ContentError(f"{path.name}: front matter is not closed with '---'") from None
    try:
        data = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise ContentError(f"{path.name}: front matter is not valid YAML ({exc})") from exc
    try:
        meta = LLMPromptMeta.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "front matter"
        raise ContentError(f"{path.name}: field {field!r}: {first['msg']}") from exc
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise ContentError(f"{path.name}: the prompt text after the front matter is empty")
    return LLMPrompt(meta=meta, body=body, file_name=path.name)


@lru_cache(maxsize=4)
def load_llm_prompts(folder: Path | None = None) -> LLMPromptSet:
    root = folder or content_dir("prompts") / "llm"
    files = sorted(root.glob("*.md"))
    if not files:
        raise ContentError(f"no LLM system prompts (*.md) in {root}")
    base: LLMPrompt | None = None
    phases: dict[Phase, LLMPrompt] = {}
    for path in files:
        prompt = parse_prompt_file(path)
        phase = prompt.meta.phase
        if phase is None:
            if base is not None:
                raise ContentError(
                    f"{path.name}: a second base prompt (no 'phase'); {base.file_name} is the first"
                )
            base = prompt
        elif phase not in LLM_PHASES:
            raise ContentError(f"{path.name}: phase {phase.value!r} never uses the LLM responder")
        elif phase in phases:
            raise ContentError(f"{path.name}: phase {phase.value!r} already has {phases[phase].file_name}")
        else:
            if prompt.meta.keep_verbatim or prompt.meta.exact_questions:
                raise ContentError(
                    f"{path.name}: 'keep_verbatim'/'exact_questions' belong in the base prompt only"
                )
            phases[phase] = prompt
    if base is None:
        raise ContentError(f"prompts/llm: no base prompt (a file without 'phase') in {root}")
    return LLMPromptSet(base, phases)
