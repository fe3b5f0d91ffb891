"""Pydantic shapes of the clinician-reviewable files in ``guardrails/``.

Every file carries ``id``, ``version`` and ``reviewed_by`` so a transcript can say exactly which
reviewed text or rule produced a decision.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ketai.models import EscalationLevel, Phase, SignalName

PhaseKey = Literal[
    "pre_session", "dosing", "peak", "integration", "complete", "safety_hold", "aborted", "outside"
]
"""A phase name, or ``outside`` for messages with no phase (outside a session)."""
ALTERED_PHASES: frozenset[PhaseKey] = frozenset({"dosing", "peak"})
"""Phases in which the medicine is acting: dramatic words and bodily effects are read in that light."""

Modifier = Literal["negation", "past", "fiction", "other_person", "future_plan", "dystonic"]
"""Context that can cancel or lower a lexicon match (see ``guardrails/modifiers.yaml``)."""


def phase_key(phase: Phase | None) -> PhaseKey:
    return "outside" if phase is None else phase.value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{2,80}$")
    version: int = Field(ge=1)
    reviewed_by: str = Field(min_length=3)
    description: str = ""


# --- normalisation and modifiers -------------------------------------------------------------


class NormaliseFile(Header):
    substitutions: dict[str, str]
    """Whole-word rewrites applied after contractions (texting shorthand, slang)."""
    macros: dict[str, str]
    """``%name%`` inside any pattern is replaced by this regex fragment (wrapped in a group)."""


class Idiom(Strict):
    regex: str
    means: str
    """Plain paraphrase put in place of the idiom, so neither rules nor classifier see 'kill' or 'die'."""
    examples: list[str] = Field(default_factory=list)


class ModifiersFile(Header):
    negation_before: list[str]
    negation_after: list[str]
    negation_window_tokens: int = Field(ge=1, le=12)
    pseudo_negation: list[str]
    """Cues that look like negation but are not ('can not stop thinking about')."""
    past_remote: list[str]
    past_recent: list[str]
    past_resolved: list[str]
    fiction: list[str]
    media: list[str]
    conditional: list[str]
    """'What should I do if I feel sick?': a protocol question, not a report
    (adverse effect, medical emergency, unsafe activity, companion absent)."""
    resolved_now: list[str]
    """'It has passed now', 'she is back': the effect or absence is over
    (adverse effect, companion absent)."""
    future_plan: list[str]
    other_person: list[str]
    first_person: list[str]
    dystonic: list[str]
    ordinary_purpose: list[str]
    accidental_injury: list[str] = []
    """A cut or burn with a concrete everyday cause ("chopping onions", "cut myself shaving", "burned it on the
    pan"): the classifier alone may not read it as self-harm (the rules still read every word)."""
    deliberate_injury: list[str] = []
    """Beside an everyday cause, words that make the injury deliberate, repeated or a reaction ("wasn't an
    accident", "again", "after the fight"): the classifier then keeps its say."""
    """An everyday reason beside a preparation-like act (a class, a tradition, the lawyer's advice, a move)."""
    intrusion_distress: list[str]
    """Reactions that, beside an intrusive thought, describe the intrusion, not a drug effect."""
    intrusion_disgust: list[str] = []
    """Disgust or dread at an intrusive thought in words that also name a drug effect ("sick to my stomach",
    "nearly threw up", "cold panic"): read as the intrusion only away from dosing and peak."""
    earlier_session: list[str] = []
    """An adverse effect placed in an earlier session or day ("last session I was sick once"): history for the
    clinician, not something the companion must handle now."""
    still_now: list[str] = []
    """Words that bring an earlier effect into the present ("again", "still", "right now")."""
    conversation_question: list[str] = []
    """A whole short message that only asks about the conversation ("what do you mean?", "can you repeat
    that?"): the classifier alone may not read a crisis into it."""
    reported_question: list[str] = []
    """Someone else's screening question told in the same sentence before a match ("the screener asked if I want
    to die"); with an ``answer_no`` right after it, the match is the question, denied, not a disclosure."""
    answer_no: list[str] = []
    """The patient's "no" to a reported question, at the start of the text after the match ("... No.", "... I
    said no")."""
    syntonic: list[str]
    idioms: list[Idiom]


# --- lexicons ---------------------------------------------------------------------------------


class LexiconPattern(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{2,80}$")
    regex: str
    level: EscalationLevel
    score: float = Field(default=0.95, ge=0.0, le=1.0)
    kind: str = ""
    """Free label used by phase allowances and escalations (e.g. ``dissociation``, ``passive``)."""
    ignore: list[Modifier] = Field(default_factory=list)
    """Modifiers that do NOT cancel this pattern (e.g. suicide content ignores ``dystonic``)."""
    subject_check: bool = False
    """For patterns without an explicit 'I'/'myself': drop when the subject is someone else."""
    purpose_check: bool = False
    """For preparation and farewell patterns: drop when the same or next sentence gives an ordinary purpose
    ('bought a rope for the climbing class', 'made a will because the lawyer said to after the baby')."""
    phases: list[PhaseKey] | None = None
    """Only apply in these phases (None = everywhere)."""
    roles: list[Literal["patient", "companion"]] | None = None
    """Only apply to messages from these roles (None = both)."""
    phase_levels: dict[PhaseKey, EscalationLevel] = Field(default_factory=dict)
    """Level override per phase; ``none`` means an expected effect in that phase (signal dropped)."""
    past_level: EscalationLevel | None = None
    """Level for a remote-past mention that is not clearly resolved (None: unchanged)."""
    topic: str | None = None
    probe: bool = False
    """A broad topic mention: never flags by itself, but when its context cancels it (negated, past,
    fiction, someone else) the classifier may not add this signal either."""
    clears: list[SignalName] = Field(default_factory=list)
    """For ``level: none`` all-clear patterns ('breathing fine'): signals the classifier may not add."""
    examples: list[str] = Field(default_factory=list)
    """Messages this pattern must flag (checked by tests)."""
    non_examples: list[str] = Field(default_factory=list)
    """Look-alikes this pattern alone must not flag (checked by tests)."""


class LexiconFile(Header):
    signal: SignalName
    patterns: list[LexiconPattern] = Field(min_length=1)


# --- signals, cues and escalations -----------------------------------------------------------


class SignalSpec(Strict):
    level: EscalationLevel
    """Default level when a detector without its own level (classifier, judge) reports this signal."""
    crisis: bool = False
    phases: list[PhaseKey] | None = None
    """Phases where the classifier may report this signal (None = all)."""
    priority: int = Field(ge=0, le=1000)
    """Which signal's text leads when several fire at the same level (higher first)."""
    classifier_gate: list[str] = Field(default_factory=list)
    """The classifier may only report this signal when one of these topic regexes matches (empty: always)."""


class SignalsFile(Header):
    signals: dict[SignalName, SignalSpec]
    reassurance_topics: dict[str, list[str]]
    """Topic -> keyword regexes; used to count repeats per topic."""
    bp_reading: str
    bp_companion: tuple[int, int]
    bp_clinician: tuple[int, int]
    bp_emergency: tuple[int, int]


class Escalation(Strict):
    id: str
    signal: SignalName
    cues: list[str] = Field(min_length=1)
    """Any of these cue names (from ``cues``) present raises the signal."""
    scope: Literal["sentence", "message"] = "message"
    level: EscalationLevel
    raises: SignalName | None = None
    """Signal to raise (default: the same signal)."""
    only_kinds: list[str] = Field(default_factory=list)
    """Restrict to matches of these pattern kinds (empty: any)."""
    phases: list[PhaseKey] | None = None


class CuesFile(Header):
    cues: dict[str, list[str]]
    escalations: list[Escalation]


# --- memory -----------------------------------------------------------------------------------


class MemoryRule(Strict):
    id: str
    after_signals: list[SignalName]
    min_level: EscalationLevel
    within_turns: int = Field(ge=1)
    cues: list[str]
    unless_cues: list[str] = []
    """Cues that stop the rule for this message (e.g. the emergency is over: help arrived, she is awake now)."""
    stored: bool = True
    """Whether what this rule raises is remembered as a new risk event (False for a carried-over level, so the
    carry-over ends after ``within_turns`` instead of renewing itself)."""
    raises: SignalName | None = None
    """Signal to raise (None: the earlier signal that triggered the rule)."""
    level: EscalationLevel
    note: str
    """Explanation stored as ``Assessment.memory_note``; ``{signal}``, ``{turn}``, ``{cue}`` are filled in."""


class MemoryFile(Header):
    remember_signals: list[SignalName]
    rules: list[MemoryRule]
