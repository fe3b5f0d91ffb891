"""The clinician-reviewable guardrail files: they load, validate, and every lexicon entry does what its own
examples say. A broken file gives one clear ContentError naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ketai.content.paths import content_dir
from ketai.errors import ContentError
from ketai.guardrails import load_content
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.rules import RuleEngine
from ketai.models import Phase, Role

GUARDRAILS = content_dir("guardrails")


@pytest.fixture(scope="module")
def content() -> GuardrailContent:
    return load_content()


@pytest.fixture(scope="module")
def rules(content: GuardrailContent) -> RuleEngine:
    return RuleEngine(content)


def _example_cases() -> list[tuple[str, str, str, bool, str | None, str]]:
    """(file, pattern id, text, should flag, phase, role) for every example in every lexicon."""
    cases = []
    for path in sorted((GUARDRAILS / "lexicons").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for pattern in data["patterns"]:
            phases = pattern.get("phases") or []
            phase = (
                next((p for p in phases if p != "outside"), None)
                if phases and "outside" not in phases
                else None
            )
            role = (pattern.get("roles") or ["patient"])[0]
            for text in pattern.get("examples", []):
                cases.append((path.name, pattern["id"], text, True, phase, role))
            for text in pattern.get("non_examples", []):
                cases.append((path.name, pattern["id"], text, False, phase, role))
    return cases


@pytest.mark.parametrize(("file", "pattern_id", "text", "should_flag", "phase", "role"), _example_cases())
def test_lexicon_examples(
    rules: RuleEngine, file: str, pattern_id: str, text: str, should_flag: bool, phase: str | None, role: str
) -> None:
    signal = yaml.safe_load((GUARDRAILS / "lexicons" / file).read_text(encoding="utf-8"))["signal"]
    result = rules.screen(text, phase=Phase(phase) if phase else None, role=Role(role))
    flagged = signal in {hit.signal.value for hit in result.hits}
    assert flagged == should_flag, f"{file}:{pattern_id} on {text!r}: hits={result.hits} notes={result.notes}"


def test_every_file_is_versioned_and_pending_review() -> None:
    for path in sorted(GUARDRAILS.rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["id"] and isinstance(data["version"], int), path
        assert data["reviewed_by"] == "pending-clinician-review", path


def test_crisis_resources_by_locale(content: GuardrailContent) -> None:
    us = content.crisis.locales["US"].block
    assert "988" in us and "911" in us and "741741" in us and "HOME" in us
    ca = content.crisis.locales["CA"].block
    assert "9-8-8" in ca and "911" in ca
    fallback = content.crisis.locales[content.crisis.fallback_locale].block
    assert not any(ch.isdigit() for ch in fallback), "the fallback must not name numbers we cannot vouch for"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "guardrails"
    shutil.copytree(GUARDRAILS, target)
    return target


def test_bad_field_names_file_and_field(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    ladder = root / "ladder.yaml"
    data = yaml.safe_load(ladder.read_text(encoding="utf-8"))
    data["ack_timeout"]["companion"]["escalate_to"] = "panic"
    ladder.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ContentError, match=r"ladder\.yaml: field ack_timeout\.companion\.escalate_to"):
        load_content(root)


def test_unknown_text_reference_is_reported(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    ladder = root / "ladder.yaml"
    data = yaml.safe_load(ladder.read_text(encoding="utf-8"))
    data["signals"]["suicide_risk"]["texts"]["emergency"] = "sr_emergncy"
    ladder.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ContentError, match=r"signals\.suicide_risk\.texts\.emergency: unknown text id"):
        load_content(root)


def test_bad_regex_names_the_pattern(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lexicon = root / "lexicons" / "self_harm.yaml"
    data = yaml.safe_load(lexicon.read_text(encoding="utf-8"))
    data["patterns"][0]["regex"] = "(unclosed"
    lexicon.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ContentError, match=r"self_harm\.yaml: pattern sh-did-harm: invalid regex"):
        RuleEngine(load_content(root))


def test_not_yaml_is_reported(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "memory.yaml").write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(ContentError, match=r"memory\.yaml: not valid YAML"):
        load_content(root)
