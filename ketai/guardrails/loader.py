"""Load and validate every YAML file under ``guardrails/`` once.

A bad file raises one ``ContentError`` naming the file and the field, e.g.
``guardrails/ladder.yaml: field signals.suicide_risk.texts.emergency: unknown text id 'sr_emergncy'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ketai.content.paths import content_dir
from ketai.errors import ContentError
from ketai.guardrails.schema import (
    CuesFile,
    LexiconFile,
    MemoryFile,
    ModifiersFile,
    NormaliseFile,
    SignalsFile,
)
from ketai.guardrails.schema_texts import (
    AlertsFile,
    CrisisFile,
    ErpFile,
    LadderFile,
    OutputPolicyFile,
    SuicideScreenFile,
    TextsFile,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
_MACRO = re.compile(r"%([a-z_]+)%")


@dataclass(frozen=True)
class GuardrailContent:
    root: Path
    normalise: NormaliseFile
    modifiers: ModifiersFile
    signals: SignalsFile
    cues: CuesFile
    memory: MemoryFile
    ladder: LadderFile
    crisis: CrisisFile
    erp: ErpFile
    suicide_screen: SuicideScreenFile
    output_policy: OutputPolicyFile
    texts: dict[str, tuple[str, str]]
    """Text id -> (to patient, to companion), merged from ``texts/*.yaml``."""
    alerts: dict[str, str]
    lexicons: dict[str, LexiconFile]
    """File name -> lexicon."""

    def expand(self, regex: str, where: str) -> str:
        """Replace ``%macro%`` references; unknown macros are a content error."""

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.normalise.macros:
                raise ContentError(f"{where}: unknown macro %{name}%")
            return f"(?:{self.normalise.macros[name]})"

        expanded = regex
        for _ in range(5):  # macros may use other macros; five levels is plenty and stops cycles
            if not _MACRO.search(expanded):
                return expanded
            expanded = _MACRO.sub(replace, expanded)
        raise ContentError(f"{where}: macros nest too deeply (a cycle?)")

    def compile(self, regex: str, where: str) -> re.Pattern[str]:
        expanded = self.expand(regex, where)
        try:
            return re.compile(expanded)
        except re.error as exc:
            raise ContentError(f"{where}: invalid regex ({exc}): {regex!r}") from exc


def _read(path: Path, model: type[ModelT], root: Path) -> ModelT:
    shown = path.relative_to(root.parent) if root.parent in path.parents else path
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(f"{shown}: file missing") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{shown}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ContentError(f"{shown}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ContentError(f"{shown}: field {field}: {first['msg']}") from exc


def _merge_texts(root: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    texts: dict[str, tuple[str, str]] = {}
    alerts: dict[str, str] = {}
    for path in sorted((root / "texts").glob("*.yaml")):
        if path.name.startswith("companion_alerts"):
            alerts.update(_read(path, AlertsFile, root).alerts)
            continue
        for text_id, text in _read(path, TextsFile, root).texts.items():
            if text_id in texts:
                raise ContentError(
                    f"{path.relative_to(root.parent)}: field texts.{text_id}: duplicate text id"
                )
            texts[text_id] = (text.patient, text.companion)
    return texts, alerts


def _check_references(content: GuardrailContent) -> None:
    ladder_file = "guardrails/ladder.yaml"
    for signal, actions in content.ladder.signals.items():
        for level, text_id in actions.texts.items():
            if text_id not in content.texts:
                raise ContentError(
                    f"{ladder_file}: field signals.{signal}.texts.{level}: unknown text id {text_id!r}"
                )
        for level, alert_id in actions.alerts.items():
            if alert_id not in content.alerts:
                raise ContentError(
                    f"{ladder_file}: field signals.{signal}.alerts.{level}: unknown alert id {alert_id!r}"
                )
    for level, text_id in content.ladder.default_texts.items():
        if text_id not in content.texts:
            raise ContentError(f"{ladder_file}: field default_texts.{level}: unknown text id {text_id!r}")
    for level, alert_id in content.ladder.default_alerts.items():
        if alert_id not in content.alerts:
            raise ContentError(f"{ladder_file}: field default_alerts.{level}: unknown alert id {alert_id!r}")
    for level, timeout in content.ladder.ack_timeout.items():
        if timeout.patient_text and timeout.patient_text not in content.texts:
            raise ContentError(f"{ladder_file}: field ack_timeout.{level}.patient_text: unknown text id")
    for rule_id, text_id in content.output_policy.rule_fallbacks.items():
        if text_id not in content.texts:
            raise ContentError(
                f"guardrails/output_policy.yaml: field rule_fallbacks.{rule_id}: unknown text id"
            )
    crisis = content.crisis
    for key in (crisis.default_locale, crisis.fallback_locale):
        if key not in crisis.locales:
            raise ContentError(f"guardrails/crisis_resources.yaml: field locales: missing {key!r}")
    cue_names = set(content.cues.cues)
    for index, escalation in enumerate(content.cues.escalations):
        for cue in escalation.cues:
            if cue not in cue_names:
                raise ContentError(
                    f"guardrails/cues.yaml: field escalations.{index}.cues: unknown cue {cue!r}"
                )
    for index, rule in enumerate(content.memory.rules):
        for field, cues in (("cues", rule.cues), ("unless_cues", rule.unless_cues)):
            for cue in cues:
                if cue not in cue_names:
                    raise ContentError(
                        f"guardrails/memory.yaml: field rules.{index}.{field}: unknown cue {cue!r}"
                    )


def load_content(root: Path | None = None) -> GuardrailContent:
    """Read and validate the whole ``guardrails/`` folder (call once per process)."""
    base = root or content_dir("guardrails")
    texts, alerts = _merge_texts(base)
    lexicons = {
        path.name: _read(path, LexiconFile, base) for path in sorted((base / "lexicons").glob("*.yaml"))
    }
    if not lexicons:
        raise ContentError(f"{base}/lexicons: no lexicon files found")
    content = GuardrailContent(
        root=base,
        normalise=_read(base / "normalise.yaml", NormaliseFile, base),
        modifiers=_read(base / "modifiers.yaml", ModifiersFile, base),
        signals=_read(base / "signals.yaml", SignalsFile, base),
        cues=_read(base / "cues.yaml", CuesFile, base),
        memory=_read(base / "memory.yaml", MemoryFile, base),
        ladder=_read(base / "ladder.yaml", LadderFile, base),
        crisis=_read(base / "crisis_resources.yaml", CrisisFile, base),
        erp=_read(base / "erp_replies.yaml", ErpFile, base),
        suicide_screen=_read(base / "suicide_screen.yaml", SuicideScreenFile, base),
        output_policy=_read(base / "output_policy.yaml", OutputPolicyFile, base),
        texts=texts,
        alerts=alerts,
        lexicons=lexicons,
    )
    _check_references(content)
    return content
