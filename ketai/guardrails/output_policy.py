"""Output policy: every draft reply is checked before it is sent (``guardrails/output_policy.yaml``).

Unsafe drafts (dose or medication advice, diagnosis, reassurance of OCD content, efficacy claims,
minimising risk, permission for unsafe activity, or missing crisis resources after a crisis assessment)
are replaced by a clinician-written fallback for the phase, or the rule's own text. The replacement is
guaranteed to carry crisis resources whenever the assessment needs them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from ketai.guardrails import text as textmod
from ketai.guardrails.context import ContextChecker
from ketai.guardrails.ladder import Ladder
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.output_classifier import CRISIS_ANSWER, OutputClassifier
from ketai.guardrails.schema import phase_key
from ketai.guardrails.schema_texts import OutputRule
from ketai.models import Assessment, EscalationLevel, OutputVerdict, Phase, Role

_NUMBER = re.compile(r"\b\d(?:[\d-]*\d)?\b")
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
UNCHECKED_LANGUAGE = "unchecked_language"
MISSING_CRISIS_TEXT = "missing_crisis_text"
MAX_DRAFT_CHARS = 8000
"""Drafts are checked on their first 8000 characters (a reply longer than that is itself a problem)."""


class ScriptedText:
    """Recognises a draft that is one of our clinician-written scripted prompts, rendered.

    The statistical draft classifier may not replace such a draft (it has no way to know the text was reviewed,
    and a replaced checklist question breaks the session); every regex rule and the crisis-text check still
    apply to it, and tests keep each prompt passing them."""

    def __init__(self, templates: list[str]) -> None:
        self.patterns = [self._compile(t) for t in templates if t.strip()]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        parts: list[str] = []
        for literal, field, _, _ in string.Formatter().parse(template.strip()):
            words = [re.escape(w) for w in literal.split()]
            if words:
                lead = r"\s*" if literal[:1].isspace() else ""
                tail = r"\s*" if literal[-1:].isspace() else ""
                parts.append(lead + r"\s+".join(words) + tail)
            elif literal:
                parts.append(r"\s*")
            if field is not None:
                parts.append(r".{1,300}?")
        return re.compile("".join(parts), re.DOTALL)

    def matches(self, draft: str) -> bool:
        text = draft.strip()
        return any(p.fullmatch(text) for p in self.patterns)


@dataclass(frozen=True)
class CompiledRule:
    spec: OutputRule
    patterns: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...]
    sentence_unless: tuple[re.Pattern[str], ...] = ()

    @property
    def reported(self) -> str:
        return self.spec.id.split(".")[0]


class OutputPolicy:
    def __init__(
        self,
        content: GuardrailContent,
        context: ContextChecker,
        ladder: Ladder,
        substitutions: textmod.Substitutions,
        classifier: OutputClassifier | None = None,
        scripted: ScriptedText | None = None,
    ) -> None:
        self.classifier = classifier
        self.scripted = scripted
        self._numbers: dict[str, tuple[re.Pattern[str], ...]] = {}
        self.content = content
        self.context = context
        self.ladder = ladder
        self.substitutions = substitutions
        where = "guardrails/output_policy.yaml"
        self.rules = [
            CompiledRule(
                rule,
                tuple(content.compile(p, f"{where}: rule {rule.id}") for p in rule.patterns),
                tuple(content.compile(p, f"{where}: rule {rule.id} unless") for p in rule.unless),
                tuple(
                    content.compile(p, f"{where}: rule {rule.id} sentence_unless")
                    for p in rule.sentence_unless
                ),
            )
            for rule in content.output_policy.rules
        ]
        self.must_mention = [re.compile(p, re.IGNORECASE) for p in content.crisis.must_mention]
        language = content.output_policy.checked_language
        self._english_words = frozenset(w.lower() for w in language.english)
        self._other_words = frozenset(w.lower() for w in language.other) - self._english_words
        self.crisis_reference = [
            content.compile(p, f"{where}: crisis_reference.{i}")
            for i, p in enumerate(content.output_policy.crisis_reference)
        ]
        self.veto = [
            content.compile(p, f"{where}: classifier_veto.{i}")
            for i, p in enumerate(content.output_policy.classifier_veto)
        ]
        self.classifier_topics = {
            name: tuple(
                content.compile(p, f"{where}: classifier_topics.{name}.{i}") for i, p in enumerate(patterns)
            )
            for name, patterns in content.output_policy.classifier_topics.items()
        }
        self.classifier_phases = self._classifier_phases(self.rules)

    @staticmethod
    def _classifier_phases(rules: list[CompiledRule]) -> dict[str, frozenset[str] | None]:
        """Per reported rule, the phases where the classifier may report it: every phase any of its rules covers
        (``None``: all). Several rules share a reported name (``dose_advice``, ``dose_advice.stance``, ...); the
        last one's phases alone would silently narrow the classifier's reach."""
        union: dict[str, frozenset[str] | None] = {}
        for rule in rules:
            name, phases = rule.reported, rule.spec.phases
            if name in union and union[name] is None:
                continue
            union[name] = None if phases is None else frozenset(phases) | (union.get(name) or frozenset())
        return union

    def has_crisis_resources(self, text: str, locale: str = "US") -> bool:
        """Where we hold verified numbers for the locale, one of them must be named ("call emergency
        services" alone leaves a frightened person to find the number); elsewhere the generic wording counts."""
        numbers = self._locale_numbers(locale.upper())
        if numbers:
            return any(p.search(text) for p in numbers)
        return any(p.search(text) for p in self.must_mention)

    def _locale_numbers(self, locale: str) -> tuple[re.Pattern[str], ...]:
        """The locale's verified numbers as patterns (988 and 9-8-8 are the same line); built once per locale."""
        if locale not in self._numbers:
            entry = self.content.crisis.locales.get(locale)
            found: list[str] = []
            if entry is not None:
                found = [entry.emergency_number] if _NUMBER.fullmatch(entry.emergency_number) else []
                for words in (entry.crisis_line, entry.text_line):
                    found += _NUMBER.findall(words)
            digits = sorted({"-?".join(n.replace("-", "")) for n in found})
            self._numbers[locale] = tuple(re.compile(rf"(?<![\d-]){d}(?![\d-])") for d in digits)
        return self._numbers[locale]

    def needs_crisis(self, rule: OutputRule, assessment: Assessment | None) -> bool:
        if assessment is None or assessment.level < rule.min_level:
            return False
        if assessment.level == EscalationLevel.EMERGENCY or not assessment.signals:
            return True  # level-only assessments (e.g. from `ketai screen`) are treated conservatively
        return any(s.name in rule.signals and s.level >= rule.min_level for s in assessment.signals)

    def _fires(
        self, rule: CompiledRule, text: str, draft: str, assessment: Assessment | None, locale: str = "US"
    ) -> bool:
        spec = rule.spec
        if spec.kind == "missing_crisis":
            return self.needs_crisis(spec, assessment) and not self.has_crisis_resources(draft, locale)
        level = assessment.level if assessment else EscalationLevel.NONE
        if level < spec.min_level or any(p.search(text) for p in rule.unless):
            return False
        for pattern in rule.patterns:
            for match in pattern.finditer(text):
                if spec.negation_cancels and self.context.negated(text, match.start(), match.end()):
                    continue
                if rule.sentence_unless and self._deferred(rule, text, match.start(), match.end()):
                    continue
                return True
        return False

    @staticmethod
    def _deferred(rule: CompiledRule, text: str, start: int, end: int) -> bool:
        """Whether the sentence(s) holding the match also defer or decline ('only your prescriber decides')."""
        first, _ = textmod.sentence_bounds(text, start)
        _, last = textmod.sentence_bounds(text, max(start, end - 1))
        sentence = text[first:last]
        return any(p.search(sentence) for p in rule.sentence_unless)

    def unchecked_language(self, draft: str) -> bool:
        """Whether the draft is mostly in a language our English rules cannot check."""
        spec = self.content.output_policy.checked_language
        words = [w.lower() for w in _WORDS.findall(draft[:MAX_DRAFT_CHARS])]
        other = sum(1 for w in words if w in self._other_words)
        english = sum(1 for w in words if w in self._english_words)
        return other >= spec.min_other and other > english

    def references_crisis(self, text: str) -> bool:
        """Whether the (normalised) draft itself speaks of a current crisis, not negated ('crisis_reference')."""
        for pattern in self.crisis_reference:
            for match in pattern.finditer(text):
                if not self.context.negated(text, match.start(), match.end()):
                    return True
        return False

    def effective_assessment(self, text: str, assessment: Assessment | None) -> Assessment | None:
        """The assessment the draft is checked against. Without one (a contract line of ``ketai screen``), a
        draft that speaks of a current crisis is read as answering a clinician-level one."""
        if assessment is None and self.references_crisis(text):
            return Assessment(level=EscalationLevel.CLINICIAN)
        return assessment

    def fired_rules(
        self, draft: str, *, phase: Phase | None, assessment: Assessment | None, locale: str = "US"
    ) -> list[str]:
        return self._check(draft, phase, assessment, locale)[0]

    def _check(
        self, draft: str, phase: Phase | None, given: Assessment | None, locale: str
    ) -> tuple[list[str], Assessment | None]:
        """The rules that fire on the draft, and the assessment they were checked against (``given``, or the one
        read from the draft itself when none was given)."""
        text = textmod.normalise(draft[:MAX_DRAFT_CHARS], self.substitutions)
        assessment = self.effective_assessment(text, given)
        key = phase_key(phase)
        fired: list[str] = [UNCHECKED_LANGUAGE] if self.unchecked_language(draft) else []
        for rule in self.rules:
            if rule.spec.phases is not None and key not in rule.spec.phases:
                continue
            if rule.reported not in fired and self._fires(rule, text, draft, assessment, locale):
                fired.append(rule.reported)
        if (
            self.classifier is not None
            and not fired  # a rule already replaces the draft: the embedding would only add latency
            and text.strip()
            and not any(v.search(text) for v in self.veto)
            and not (self.scripted is not None and self.scripted.matches(draft[:MAX_DRAFT_CHARS]))
        ):
            phases = self.classifier_phases
            if given is None:
                # No assessment came with the draft; whether crisis text is missing is left to the rule, which
                # sees what the draft itself says.
                found = self.classifier.predict_blind(text, phase)
                found.pop(MISSING_CRISIS_TEXT, None)
                if found.pop(CRISIS_ANSWER, None) is not None and not self.has_crisis_resources(
                    draft, locale
                ):
                    # Read as answering a crisis and naming no crisis line: the draft is checked as answering a
                    # clinician-level one, as when it names the crisis itself (effective_assessment).
                    found[MISSING_CRISIS_TEXT] = 1.0
                    assessment = assessment or Assessment(level=EscalationLevel.CLINICIAN)
            else:
                found = self.classifier.predict(text, phase, given.level)
                found.pop(CRISIS_ANSWER, None)  # with the level known, the rule decides
            for name in found:
                allowed = phases.get(name)
                topics = self.classifier_topics.get(name)
                if (
                    name not in fired
                    and (allowed is None or key in allowed)
                    and (topics is None or any(t.search(text) for t in topics))
                ):
                    fired.append(name)
        return fired, assessment

    def screen(
        self,
        draft: str,
        *,
        phase: Phase | None,
        assessment: Assessment | None,
        locale: str = "US",
        role: Role = Role.PATIENT,
    ) -> OutputVerdict:
        fired, assessment = self._check(draft, phase, assessment, locale)
        if not fired:
            return OutputVerdict(verdict="pass")
        return OutputVerdict(
            verdict="replace",
            rules=fired,
            replacement=self.replacement(fired, phase, assessment, locale, role),
        )

    def replacement(
        self, fired: list[str], phase: Phase | None, assessment: Assessment | None, locale: str, role: Role
    ) -> str:
        policy = self.content.output_policy
        text_id = next((policy.rule_fallbacks[r] for r in fired if r in policy.rule_fallbacks), None)
        if text_id == "generic_emergency" and assessment is not None:
            actions = self.ladder.actions_for(assessment, phase=phase, role=role, locale=locale)
            replacement = actions.patient_text or self.ladder.text(text_id, role, locale)
        elif text_id is not None:
            replacement = self.ladder.text(text_id, role, locale)
        else:
            replacement = policy.fallbacks.get(phase_key(phase)) or policy.fallbacks["outside"]
        crisis_rule = next((r.spec for r in self.rules if r.spec.kind == "missing_crisis"), None)
        if (
            crisis_rule
            and self.needs_crisis(crisis_rule, assessment)
            and not self.has_crisis_resources(replacement, locale)
        ):
            replacement = f"{replacement} {self.ladder.locale_values(locale)['crisis_block']}"
        return replacement
