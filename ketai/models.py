"""Shared pydantic types: the project's contracts. No I/O lives here.

Everything that crosses a layer boundary (machine, guardrails, retrieval,
responders, store, engine, interfaces) is one of these types.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """Who wrote a turn."""

    PATIENT = "patient"
    COMPANION = "companion"
    KETAI = "ketai"
    CLINICIAN = "clinician"
    SYSTEM = "system"


class Phase(StrEnum):
    """Session phases (contract)."""

    PRE_SESSION = "pre_session"
    DOSING = "dosing"
    PEAK = "peak"
    INTEGRATION = "integration"
    COMPLETE = "complete"
    SAFETY_HOLD = "safety_hold"
    ABORTED = "aborted"


TERMINAL_PHASES: frozenset[Phase] = frozenset({Phase.COMPLETE, Phase.ABORTED})


class EscalationLevel(StrEnum):
    """The escalation ladder (contract), ordered none < monitor < companion < clinician < emergency."""

    NONE = "none"
    MONITOR = "monitor"
    COMPANION = "companion"
    CLINICIAN = "clinician"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, EscalationLevel):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, EscalationLevel):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, EscalationLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, EscalationLevel):
            return NotImplemented
        return self.rank < other.rank

    @staticmethod
    def highest(levels: list[EscalationLevel] | tuple[EscalationLevel, ...]) -> EscalationLevel:
        """The highest level in ``levels`` (``none`` for an empty list)."""
        best = EscalationLevel.NONE
        for level in levels:
            if level.rank > best.rank:
                best = level
        return best


_LEVEL_RANK: dict[EscalationLevel, int] = {
    EscalationLevel.NONE: 0,
    EscalationLevel.MONITOR: 1,
    EscalationLevel.COMPANION: 2,
    EscalationLevel.CLINICIAN: 3,
    EscalationLevel.EMERGENCY: 4,
}


class SignalName(StrEnum):
    """Safety signal names (contract)."""

    SUICIDE_RISK = "suicide_risk"
    SELF_HARM = "self_harm"
    MEDICAL_EMERGENCY = "medical_emergency"
    ADVERSE_EFFECT = "adverse_effect"
    DOSING_REQUEST = "dosing_request"
    SUBSTANCE_MIX = "substance_mix"
    MEDICATION_CHANGE = "medication_change"
    PSYCHOSIS_OR_SEVERE_DISTRESS = "psychosis_or_severe_distress"
    COMPANION_ABSENT = "companion_absent"
    REASSURANCE_SEEKING = "reassurance_seeking"
    INTRUSIVE_THOUGHT = "intrusive_thought"
    HARM_TO_OTHERS = "harm_to_others"
    ABUSE_OR_UNSAFE_HOME = "abuse_or_unsafe_home"
    UNSAFE_ACTIVITY = "unsafe_activity"
    PROMPT_INJECTION = "prompt_injection"


class Signal(BaseModel):
    """One detected safety signal."""

    model_config = ConfigDict(frozen=True)

    name: SignalName
    score: float = Field(ge=0.0, le=1.0)
    """Detector confidence in [0, 1]."""
    detector: str
    """Which layer fired: e.g. ``rules``, ``classifier``, ``llm_judge``, ``memory``."""
    level: EscalationLevel
    """Level this signal alone asks for, after phase and context rules."""
    evidence: str = ""
    """Rule id, matched span or short reason, for the clinician."""


class Assessment(BaseModel):
    """Result of screening one incoming message."""

    signals: list[Signal] = Field(default_factory=list)
    level: EscalationLevel = EscalationLevel.NONE
    """Highest level any layer gave."""
    memory_note: str | None = None
    """Why session risk memory raised the level, if it did."""
    notes: list[str] = Field(default_factory=list)
    """Other context (phase allowances applied, negations found, ...)."""

    def names(self) -> set[SignalName]:
        return {s.name for s in self.signals}

    def has(self, name: SignalName) -> bool:
        return any(s.name == name for s in self.signals)


class OutputVerdict(BaseModel):
    """Result of checking one draft reply before it is sent."""

    verdict: Literal["pass", "replace"]
    rules: list[str] = Field(default_factory=list)
    """Ids of output rules that fired."""
    replacement: str | None = None
    """Safe text to send instead (clinician-written), when ``verdict == "replace"``."""


class MeasurementKind(StrEnum):
    SUDS = "suds"  # subjective distress 0-100
    OCD_VAS = "ocd_vas"  # obsession intensity 0-10 (our own item, OCD-VAS-like)
    BP_SYSTOLIC = "bp_systolic"
    BP_DIASTOLIC = "bp_diastolic"
    PULSE = "pulse"


class Measurement(BaseModel):
    kind: MeasurementKind
    value: float
    phase: Phase
    at: datetime
    label: str = ""
    """e.g. ``baseline``, ``post_session``."""


# --- Integration exercises -------------------------------------------------


class Dimension(StrEnum):
    """OCD symptom dimensions and transdiagnostic skills an exercise serves."""

    CONTAMINATION = "contamination"
    HARM = "harm"  # harm / responsibility
    CHECKING = "checking"
    SYMMETRY = "symmetry"  # symmetry / just-right / ordering
    TABOO = "taboo"  # unacceptable aggressive or sexual thoughts
    SCRUPULOSITY = "scrupulosity"  # religious / moral
    RELATIONSHIP = "relationship"
    SOMATIC = "somatic"  # health / body-focused
    UNCERTAINTY = "uncertainty"  # uncertainty tolerance (transdiagnostic)
    DEFUSION = "defusion"  # ACT defusion (transdiagnostic)
    SELF_COMPASSION = "self_compassion"  # transdiagnostic
    VALUES = "values"  # values-based action (transdiagnostic)


class ExerciseKind(StrEnum):
    EXPOSURE_PLANNING = "exposure_planning"
    HIERARCHY = "hierarchy"  # building and climbing a hierarchy
    IMAGINAL_SCRIPT = "imaginal_script"
    RESPONSE_PREVENTION = "response_prevention"
    RITUAL_DELAY = "ritual_delay"
    URGE_SURFING = "urge_surfing"
    JOURNALING = "journaling"  # reflective journaling
    COMPANION_PRACTICE = "companion_practice"  # companion-supported practice
    SKILL_PRACTICE = "skill_practice"  # defusion, self-compassion, values drills


EXPOSURE_KINDS: frozenset[ExerciseKind] = frozenset(
    {ExerciseKind.EXPOSURE_PLANNING, ExerciseKind.IMAGINAL_SCRIPT, ExerciseKind.HIERARCHY}
)


class ExerciseTiming(StrEnum):
    SAME_EVENING = "same_evening"  # after effects have worn off, same day
    NEXT_DAYS = "next_days"
    BETWEEN_SESSIONS = "between_sessions"


class Contraindication(StrEnum):
    NOT_WHILE_SEDATED = "not_while_sedated"
    HIGH_POST_SESSION_SUDS = "high_post_session_suds"  # see Exercise.max_post_session_suds
    NEEDS_THERAPIST_HIERARCHY = "needs_therapist_hierarchy"  # only items the therapist put on the hierarchy
    NO_DRIVING_DOSING_DAY = "no_driving_dosing_day"
    NOT_ALONE_DOSING_DAY = "not_alone_dosing_day"
    ACTIVE_SUICIDE_RISK = "active_suicide_risk"  # hold while a suicide signal is open
    NEEDS_COMPANION = "needs_companion"


class Exercise(BaseModel):
    """One ERP-aligned integration exercise (front matter of ``integration_exercises/<id>.md``).

    Exposure-type exercises follow inhibitory learning: they name the feared
    outcome to test, ask for the expectancy before and after, list safety
    behaviours to drop and vary contexts.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{2,63}$")
    title: str = Field(min_length=3, max_length=120)
    version: int = Field(ge=1, default=1)
    dimensions: list[Dimension] = Field(min_length=1)
    kind: ExerciseKind
    suds_min: int = Field(ge=0, le=100)
    """Lowest current distress (SUDS 0-100) this exercise suits."""
    suds_max: int = Field(ge=0, le=100)
    """Highest current distress (SUDS 0-100) this exercise suits."""
    duration_minutes: int = Field(ge=1, le=240)
    timing: list[ExerciseTiming] = Field(min_length=1)
    companion_role: str = Field(min_length=3)
    """What the companion does (or ``none``), in plain words."""
    contraindications: list[Contraindication] = Field(default_factory=list)
    max_post_session_suds: int | None = Field(default=None, ge=0, le=100)
    """Do not offer when post-session SUDS is above this (with HIGH_POST_SESSION_SUDS)."""
    rationale: str = Field(min_length=20)
    """Short clinical rationale a clinician can check."""
    summary: str = Field(min_length=10, max_length=300)
    """One plain-words sentence offered to the patient."""
    keywords: list[str] = Field(default_factory=list)
    """Things a patient might say that this exercise fits (aids retrieval)."""
    # Inhibitory-learning fields (required for exposure kinds; see validator in ketai.content).
    feared_outcome: str | None = None
    expectancy_prompt: str | None = None
    """How to ask for the 0-100 expectancy before and after."""
    safety_behaviours_to_drop: list[str] = Field(default_factory=list)
    contexts: list[str] = Field(default_factory=list)
    """Variants / places to vary the practice."""
    retrieval_cue: str | None = None
    body: str = ""
    """Markdown instructions (the file body)."""


# --- The clinician-written protocol ---------------------------------------


class Protocol(BaseModel):
    """One patient's protocol as written by the prescribing clinic.

    Code holds no clinical defaults: every number here comes from the
    clinic's file for this patient. KetAI never computes or changes a dose;
    ``dose_text`` is shown verbatim.
    """

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(min_length=1, max_length=64)
    patient_name: str = Field(min_length=1, max_length=80)
    clinic_name: str = Field(min_length=1)
    prescriber: str = Field(min_length=1)
    dose_text: str = Field(min_length=1)
    """Exactly as on the prescription, e.g. a troche strength and count. Displayed, never parsed."""
    formulation: Literal["troche", "rdt", "odt", "tablet"]
    hold_minutes: float = Field(gt=0, le=60)
    after_hold: Literal["spit", "swallow"]
    bp_max_systolic: int = Field(ge=80, le=200)
    bp_max_diastolic: int = Field(ge=40, le=130)
    bp_emergency_systolic: int = Field(ge=120, le=260)
    bp_emergency_diastolic: int = Field(ge=70, le=160)
    fasting_hours: float = Field(ge=0, le=24)
    no_substances_hours: float = Field(ge=0, le=168)
    """No alcohol, cannabis or sedatives within this many hours before dosing."""
    companion_name: str = Field(min_length=1, max_length=80)
    locale: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    on_call_hours: str = Field(min_length=1)
    """Plain words, e.g. ``weekdays 8:00-18:00 Eastern``; shown so nobody assumes a human is watching."""
    on_call_contact: str = Field(min_length=1)
    min_peak_minutes: float = Field(gt=0, le=240)
    checkin_interval_minutes: float = Field(gt=0, le=60)
    dimensions: list[Dimension] = Field(default_factory=list)
    """The patient's OCD dimensions, from the clinician."""
    suds_ceiling: int = Field(default=100, ge=0, le=100)
    """Therapist-set ceiling for exercises offered."""
    therapist_hierarchy_on_file: bool = False
    """The ERP therapist has written this patient's exposure hierarchy (needed by high-SUDS exposures)."""
    session_number: int = Field(default=1, ge=1)
