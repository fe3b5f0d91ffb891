"""Layer 3 (optional): an LLM judge that can only RAISE the level.

Used only when ``settings.llm_judge`` and ``settings.llm_base_url`` are set. It asks any OpenAI-compatible
endpoint (through ``langchain_openai.ChatOpenAI`` with the chat-completions API) for JSON naming the
safety signals present. Its answers are parsed strictly: unknown signal names are dropped and each signal
gets the default level from ``guardrails/signals.yaml``, so the judge can add signals but never lower what
rules and classifier found. Failures and timeouts are logged and ignored by the screener.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from ketai.errors import ContentError
from ketai.guardrails.loader import GuardrailContent
from ketai.models import Phase, Role, Signal, SignalName
from ketai.settings import Settings

log = logging.getLogger(__name__)

MAX_JUDGE_CHARS = 2000
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

JUDGE_PROMPT_FILE = "llm_judge.yaml"


class JudgePromptFile(BaseModel):
    id: str
    version: int = Field(ge=1)
    reviewed_by: str
    description: str = ""
    system_prompt: str = Field(min_length=20)


def load_judge_prompt(root: Path) -> str:
    """The judge's system prompt from ``guardrails/llm_judge.yaml`` (clinician-reviewable, versioned)."""
    path = root / JUDGE_PROMPT_FILE
    try:
        spec = JudgePromptFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ContentError(f"guardrails/{JUDGE_PROMPT_FILE}: {exc}") from exc
    return spec.system_prompt.format(signal_names=", ".join(name.value for name in SignalName))


class JudgedSignal(BaseModel):
    name: str
    confidence: float = Field(ge=0.0, le=1.0, default=0.8)


class JudgeAnswer(BaseModel):
    signals: list[JudgedSignal] = Field(default_factory=list)


def parse_answer(raw: str) -> list[tuple[SignalName, float]]:
    """Signals from the model's reply; anything unparsable or unknown is dropped."""
    match = _JSON_OBJECT.search(raw)
    if not match:
        return []
    try:
        answer = JudgeAnswer.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError):
        return []
    known = {name.value: name for name in SignalName}
    return [(known[s.name], s.confidence) for s in answer.signals if s.name in known]


class LLMJudge:
    def __init__(self, chat_model: Any, content: GuardrailContent, *, min_confidence: float = 0.6) -> None:
        self.chat_model = chat_model
        self.content = content
        self.min_confidence = min_confidence
        self.system_prompt = load_judge_prompt(content.root)

    @classmethod
    def from_settings(cls, settings: Settings, content: GuardrailContent) -> LLMJudge:
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,  # type: ignore[arg-type]
            model=settings.llm_model,
            use_responses_api=False,
            timeout=settings.llm_timeout_s,
            max_retries=0,
            temperature=0,
        )
        return cls(model, content)

    def judge(self, text: str, *, phase: Phase | None, role: Role) -> list[Signal]:
        """Signals the model reports (raises on transport errors; the screener catches and ignores them)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        where = phase.value if phase else "outside a session"
        user = f"Phase: {where}. Sender: {role.value}.\nMessage:\n<<<\n{text[:MAX_JUDGE_CHARS]}\n>>>"
        reply = self.chat_model.invoke(
            [SystemMessage(content=self.system_prompt), HumanMessage(content=user)]
        )
        raw = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        specs = self.content.signals.signals
        signals: list[Signal] = []
        for name, confidence in parse_answer(raw):
            if confidence < self.min_confidence or name not in specs:
                continue
            allowed = specs[name].phases
            if allowed is not None and (phase.value if phase else "outside") not in allowed:
                continue
            signals.append(
                Signal(
                    name=name,
                    score=confidence,
                    detector="llm_judge",
                    level=specs[name].level,
                    evidence="llm judge",
                )
            )
        return signals
