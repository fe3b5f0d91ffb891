"""Pydantic shapes of the text-bearing files in ``guardrails/``: ladder, texts, crisis resources,
ERP replies, suicide screen and output policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ketai.guardrails.schema import Header, PhaseKey, Strict
from ketai.models import EscalationLevel, SignalName

# --- ladder -----------------------------------------------------------------------------------


class LevelActions(Strict):
    companion_alert: bool = False
    ack_required: bool = False
    clinician_notice: bool = False
    safety_hold: bool = False


class SignalActions(Strict):
    texts: dict[EscalationLevel, str] = Field(default_factory=dict)
    """Level -> text id in ``texts/*.yaml`` for the sender."""
    alerts: dict[EscalationLevel, str] = Field(default_factory=dict)
    """Level -> companion alert id."""
    start_suicide_screen: bool = False


class BlockDosing(Strict):
    phases: list[PhaseKey]
    signals: list[SignalName]
    min_level: EscalationLevel


class AckTimeout(Strict):
    escalate_to: EscalationLevel
    resend_alert: bool
    clinician_notice: bool
    patient_text: str | None = None
    """Text id shown to the patient when the alert went unanswered."""
    reason: str


class LadderFile(Header):
    levels: dict[EscalationLevel, LevelActions]
    signals: dict[SignalName, SignalActions]
    default_texts: dict[EscalationLevel, str]
    default_alerts: dict[EscalationLevel, str]
    block_dosing: BlockDosing
    ack_timeout: dict[EscalationLevel, AckTimeout]

    @model_validator(mode="after")
    def _every_level(self) -> LadderFile:
        missing = [level.value for level in EscalationLevel if level not in self.levels]
        if missing:
            raise ValueError(f"levels missing: {', '.join(missing)}")
        return self


# --- texts ------------------------------------------------------------------------------------


class RoleText(Strict):
    patient: str = Field(min_length=10)
    companion: str = Field(min_length=10)
    """Same safety content addressed to the companion (when the companion wrote the message)."""


class TextsFile(Header):
    texts: dict[str, RoleText]


class AlertsFile(Header):
    alerts: dict[str, str]


class CrisisLocale(Strict):
    name: str
    emergency_number: str
    crisis_line: str
    """How to reach the crisis line, in words (call/text/chat)."""
    text_line: str = ""
    block: str = Field(min_length=20)
    """The full crisis-resources paragraph; may use {emergency_number}, {crisis_line}, {text_line}."""


class CrisisFile(Header):
    default_locale: str
    fallback_locale: str
    """Used for a locale we have no verified numbers for (names no number it cannot vouch for)."""
    locales: dict[str, CrisisLocale]
    must_mention: list[str]
    """Regexes; a reply after a crisis assessment must match one of these (output policy)."""


# --- ERP replies ------------------------------------------------------------------------------


class ErpFile(Header):
    reassurance: dict[str, list[str]]
    """Topic -> replies by repeat count (1st, 2nd, 3rd and later). ``general`` is required."""
    intrusive_thought: list[str]
    suicidal_intrusion: str
    """For ego-dystonic suicidal thoughts: acknowledges OCD can do this, never says 'just OCD'."""

    @model_validator(mode="after")
    def _general_topic(self) -> ErpFile:
        if "general" not in self.reassurance:
            raise ValueError("reassurance needs a 'general' topic")
        for topic, replies in self.reassurance.items():
            if len(replies) < 3:
                raise ValueError(f"reassurance.{topic} needs replies for repeat 1, 2 and 3+")
        return self


# --- suicide screen ---------------------------------------------------------------------------

ScreenItem = Literal["wish_dead", "thoughts", "method", "intent", "plan", "behaviour", "behaviour_recent"]


class ScreenQuestion(Strict):
    id: ScreenItem
    text: str = Field(min_length=10)
    ask_if_yes: ScreenItem | None = None
    """Ask only when this earlier item was answered yes (or unclear)."""


class SuicideScreenFile(Header):
    intro: str
    questions: list[ScreenQuestion] = Field(min_length=7, max_length=7)
    unclear_retry: str
    max_retries: int = Field(ge=0, le=3)
    yes_words: list[str]
    no_words: list[str]
    emergency_items: list[ScreenItem]
    urgent_items: list[ScreenItem]
    clinician_items: list[ScreenItem]
    closing: dict[EscalationLevel, str]


# --- output policy ----------------------------------------------------------------------------


class OutputRule(Strict):
    id: str
    """Reported rule id: the part before the first dot ("minimising_risk.context" -> "minimising_risk")."""
    kind: Literal["pattern", "missing_crisis"] = "pattern"
    patterns: list[str] = Field(default_factory=list)
    negation_cancels: bool = True
    phases: list[PhaseKey] | None = None
    """Phases where this rule applies (None = all)."""
    unless: list[str] = Field(default_factory=list)
    """Regexes that, found anywhere in the draft, exempt it (e.g. grounding at peak)."""
    sentence_unless: list[str] = Field(default_factory=list)
    """Regexes that cancel a match when found in the same sentence ('only your prescriber decides')."""
    signals: list[SignalName] = Field(default_factory=list)
    """For ``missing_crisis``: assessment signals that require crisis resources."""
    min_level: EscalationLevel = EscalationLevel.NONE
    """The rule applies only when the assessment is at least this level (``missing_crisis``: required)."""
    examples: list[str] = Field(default_factory=list)
    non_examples: list[str] = Field(default_factory=list)


class CheckedLanguage(Strict):
    """The policy's regexes and draft classifier read English only; a draft mostly in another language cannot
    be checked, so it is replaced (reported as ``unchecked_language``)."""

    english: list[str] = Field(min_length=1)
    """Common English function words (whole words, lower case)."""
    other: list[str] = Field(min_length=1)
    """Common function words of other languages that are not also English words."""
    min_other: int = Field(ge=1, le=20)
    """A draft is unchecked when it has at least this many ``other`` words and more of them than English ones."""


class OutputPolicyFile(Header):
    rules: list[OutputRule]
    checked_language: CheckedLanguage
    fallbacks: dict[PhaseKey, str]
    """Phase-appropriate clinician-written reply used in place of an unsafe draft."""
    classifier_veto: list[str] = Field(default_factory=list)
    """Declining or deferring language ('I won't answer that', 'only your prescriber decides', 'no driving
    today'): when present, the draft classifier alone may not replace the draft (regex rules still can)."""
    classifier_topics: dict[str, list[str]] = Field(default_factory=dict)
    """Reported rule -> patterns: the draft classifier alone may report that rule only when the draft matches one
    of them (its topic). Short calm lines ('Your companion is nearby if you need them.') read as unsafe-activity
    permission to every draft classifier we trained; a permission names what it permits. Rules without an entry
    need no topic."""
    crisis_reference: list[str] = Field(default_factory=list)
    """A draft that itself speaks of a current crisis (suicidal thoughts, self-harm, a medical emergency, danger
    at home): screened without its assessment, it is read as answering a clinician-level crisis, so it must
    carry crisis resources and may not play the risk down. A negated match does not count."""
    rule_fallbacks: dict[str, str] = Field(default_factory=dict)
    """Rule id -> text id in texts/*.yaml when one rule needs its own reply (e.g. dosing)."""

    @model_validator(mode="after")
    def _outside_fallback(self) -> OutputPolicyFile:
        if "outside" not in self.fallbacks:
            raise ValueError("fallbacks needs an 'outside' entry")
        return self
