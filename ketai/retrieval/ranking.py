"""Which integration exercises to offer a patient now, and why.

``recommend(query, context, k)`` is what the session engine calls in the integration phase.
The scoring itself (``rank``) is a pure function of the exercises, their similarity to what
the patient said and the patient's context, so it is tested with plain tables.

Order of decisions, as a clinician would make them:

1. Hard filters (never offered, whatever the match): contraindications that apply now, a
   starting SUDS above the therapist's ceiling, therapist-hierarchy-only steps with no hierarchy
   on file, and exercises assigned in recent sessions unless repeats were asked for.
2. Score = semantic similarity to the patient's words (cosine, about 0.1-0.8)
   + ``DIMENSION_WEIGHT`` x fit to the clinician's dimensions (1 direct, 0.5 general skill, 0 other)
   + ``SUDS_WEIGHT`` x fit of the current SUDS to the exercise's range (1 inside, falling off outside,
   negative when the patient is far more distressed than the exercise suits).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ketai.models import Contraindication, Dimension, Exercise, ExerciseTiming
from ketai.models import Protocol as ClinicProtocol

DIMENSION_WEIGHT = 0.15
SUDS_WEIGHT = 0.10
# SUDS points outside an exercise's range at which its SUDS fit has fallen to zero.
SUDS_FALLOFF_ABOVE = 20
SUDS_FALLOFF_BELOW = 40
LOOSE_MATCH = 0.25


class ExerciseSource(Protocol):
    """What ranking needs from an index (``ketai.retrieval.index.ExerciseIndex`` is one)."""

    @property
    def exercises(self) -> dict[str, Exercise]: ...

    def similarities(self, text: str, where: dict[str, Any] | None = None) -> dict[str, float]: ...


TRANSDIAGNOSTIC: frozenset[Dimension] = frozenset(
    {Dimension.UNCERTAINTY, Dimension.DEFUSION, Dimension.SELF_COMPASSION, Dimension.VALUES}
)


class PatientContext(BaseModel):
    """What the ranking may know about the patient right now (all from the protocol or the session).

    Defaults are the cautious reading of "not known": no companion assumed, no therapist
    hierarchy assumed, no repeats.
    """

    model_config = ConfigDict(extra="forbid")

    dimensions: list[Dimension] = Field(default_factory=list)
    """The patient's OCD dimensions from the clinician's protocol."""
    current_suds: int | None = Field(default=None, ge=0, le=100)
    """Distress now (SUDS 0-100), or None when not asked yet."""
    suds_ceiling: int = Field(default=100, ge=0, le=100)
    """Therapist-set ceiling: no exercise that starts above it."""
    sedated: bool = False
    """Still feeling the medicine (drowsy, unsteady, foggy)."""
    dosing_day: bool = False
    """Today is a dosing day (no driving, not out alone)."""
    suicide_risk_open: bool = False
    """A suicide-risk signal is open in this session or not yet reviewed by a clinician."""
    companion_available: bool = False
    """The sober companion is present and willing to help with this exercise."""
    therapist_hierarchy_on_file: bool = False
    """The ERP therapist has written this patient's exposure hierarchy (needed by some exposures)."""
    recently_assigned: list[str] = Field(default_factory=list)
    """Exercise ids assigned in the last sessions."""
    allow_repeats: bool = False
    """The patient or clinician asked to repeat a recent exercise."""

    @classmethod
    def from_protocol(cls, protocol: ClinicProtocol, **session_facts: object) -> PatientContext:
        """Dimensions and SUDS ceiling from the clinician's protocol, plus facts from the session."""
        return cls.model_validate(
            {"dimensions": protocol.dimensions, "suds_ceiling": protocol.suds_ceiling, **session_facts}
        )


class RankedExercise(BaseModel):
    exercise: Exercise
    score: float
    reasons: list[str]
    """Why it was offered, in words a clinician can check."""
    similarity: float = 0.0
    dimension_fit: float = 0.0
    suds_fit: float = 0.0


class ExcludedExercise(BaseModel):
    exercise_id: str
    reasons: list[str]


class Ranking(BaseModel):
    ranked: list[RankedExercise]
    excluded: list[ExcludedExercise]


def exclusion_reasons(exercise: Exercise, context: PatientContext) -> list[str]:
    """Why ``exercise`` must not be offered in ``context`` (empty: it may be offered)."""
    flags = set(exercise.contraindications)
    reasons: list[str] = []
    if context.sedated and Contraindication.NOT_WHILE_SEDATED in flags:
        reasons.append("not while still feeling the medicine")
    if (
        Contraindication.HIGH_POST_SESSION_SUDS in flags
        and context.current_suds is not None
        and exercise.max_post_session_suds is not None
        and context.current_suds > exercise.max_post_session_suds
    ):
        reasons.append(
            f"distress {context.current_suds} is above this exercise's limit "
            f"of {exercise.max_post_session_suds}"
        )
    if Contraindication.NEEDS_COMPANION in flags and not context.companion_available:
        reasons.append("needs the companion, who is not available")
    if Contraindication.ACTIVE_SUICIDE_RISK in flags and context.suicide_risk_open:
        reasons.append("on hold while a suicide-risk signal is open")
    outing = flags & {Contraindication.NO_DRIVING_DOSING_DAY, Contraindication.NOT_ALONE_DOSING_DAY}
    if context.dosing_day and outing and set(exercise.timing) == {ExerciseTiming.SAME_EVENING}:
        what = "driving" if Contraindication.NO_DRIVING_DOSING_DAY in outing else "going out alone"
        reasons.append(f"involves {what}, which is not for a dosing day")
    if exercise.suds_min > context.suds_ceiling:
        reasons.append(
            f"starts at SUDS {exercise.suds_min}, above the therapist's ceiling of {context.suds_ceiling}"
        )
    if Contraindication.NEEDS_THERAPIST_HIERARCHY in flags and not context.therapist_hierarchy_on_file:
        reasons.append("only for steps on the therapist's hierarchy, and none is on file")
    if exercise.id in context.recently_assigned and not context.allow_repeats:
        reasons.append("assigned in a recent session")
    return reasons


def dimension_fit(exercise: Exercise, context: PatientContext) -> tuple[float, str | None]:
    """1 for a dimension the clinician named, 0.5 for a general skill, 0 otherwise (no dimensions: 0)."""
    if not context.dimensions:
        return 0.0, None
    shared = [dimension for dimension in exercise.dimensions if dimension in context.dimensions]
    if shared:
        return 1.0, "fits the clinician's focus: " + ", ".join(dimension.value for dimension in shared)
    general = [dimension for dimension in exercise.dimensions if dimension in TRANSDIAGNOSTIC]
    if general and len(general) == len(exercise.dimensions):
        return 0.5, "a general skill (" + ", ".join(d.value for d in general) + ") that suits any OCD theme"
    return 0.0, "outside the dimensions on the protocol (" + ", ".join(
        d.value for d in exercise.dimensions
    ) + ")"


def suds_fit(exercise: Exercise, current: int | None) -> tuple[float, str]:
    """How well the current SUDS suits the exercise's range (1 inside; negative when far above)."""
    span = f"{exercise.suds_min}-{exercise.suds_max}"
    if current is None:
        return 0.0, f"suits distress {span}; ask for a SUDS rating before starting"
    if exercise.suds_min <= current <= exercise.suds_max:
        return 1.0, f"current distress {current} is within its range {span}"
    if current > exercise.suds_max:
        fit = max(-1.0, 1.0 - (current - exercise.suds_max) / SUDS_FALLOFF_ABOVE)
        return fit, f"current distress {current} is above its range {span}: better once distress is lower"
    fit = max(0.0, 1.0 - (exercise.suds_min - current) / SUDS_FALLOFF_BELOW)
    return fit, f"current distress {current} is below its usual range {span}"


def _timing_note(exercise: Exercise, context: PatientContext) -> str | None:
    if not context.dosing_day:
        return None
    if ExerciseTiming.SAME_EVENING in exercise.timing:
        return "can be done this evening, once the effects have fully worn off"
    return "for the coming days, not for tonight"


def rank(exercises: list[Exercise], similarities: dict[str, float], context: PatientContext) -> Ranking:
    """Filter and score ``exercises`` (pure). Missing similarities count as 0."""
    ranked: list[RankedExercise] = []
    excluded: list[ExcludedExercise] = []
    for exercise in exercises:
        blocked = exclusion_reasons(exercise, context)
        if blocked:
            excluded.append(ExcludedExercise(exercise_id=exercise.id, reasons=blocked))
            continue
        similarity = similarities.get(exercise.id, 0.0)
        dim_score, dim_reason = dimension_fit(exercise, context)
        suds_score, suds_reason = suds_fit(exercise, context.current_suds)
        score = similarity + DIMENSION_WEIGHT * dim_score + SUDS_WEIGHT * suds_score
        match = "close to" if similarity >= LOOSE_MATCH else "only a loose match for"
        reasons = [f"{match} what was said (similarity {similarity:.2f})"]
        reasons += [reason for reason in (dim_reason, suds_reason, _timing_note(exercise, context)) if reason]
        if exercise.id in context.recently_assigned:
            reasons.append("assigned recently; repeated because repeats were asked for")
        ranked.append(
            RankedExercise(
                exercise=exercise,
                score=round(score, 4),
                reasons=reasons,
                similarity=round(similarity, 4),
                dimension_fit=dim_score,
                suds_fit=round(suds_score, 4),
            )
        )
    ranked.sort(key=lambda item: (-item.score, item.exercise.id))
    return Ranking(ranked=ranked, excluded=excluded)


def recommend(
    query: str, context: PatientContext, k: int = 3, *, index: ExerciseSource | None = None
) -> list[RankedExercise]:
    """The ``k`` best exercises to offer for what the patient said, in this context.

    ``index`` defaults to the process-wide index for the current settings (built lazily).
    Returns fewer than ``k`` (possibly none) when the filters leave fewer.
    """
    from ketai.retrieval.index import default_index

    chosen = index if index is not None else default_index()
    # Nothing said yet (e.g. the integration phase opens): rank on dimensions and SUDS alone.
    similarities = chosen.similarities(query) if query.strip() else {}
    return rank(list(chosen.exercises.values()), similarities, context).ranked[: max(k, 0)]
