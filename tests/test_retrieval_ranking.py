"""Ranking: hard filters, SUDS and dimension fit, repeats, reasons -- as tables over plain data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ketai.models import Contraindication, Dimension, Exercise, ExerciseKind, ExerciseTiming, Protocol
from ketai.retrieval.index import ExerciseIndex
from ketai.retrieval.ranking import PatientContext, rank, recommend
from ketai.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"


def make(exercise_id: str, **fields: Any) -> Exercise:
    base: dict[str, Any] = {
        "id": exercise_id,
        "title": f"Exercise {exercise_id}",
        "dimensions": [Dimension.CHECKING],
        "kind": ExerciseKind.RITUAL_DELAY,
        "suds_min": 20,
        "suds_max": 60,
        "duration_minutes": 10,
        "timing": [ExerciseTiming.SAME_EVENING, ExerciseTiming.NEXT_DAYS],
        "companion_role": "none",
        "rationale": "A rationale long enough for the schema.",
        "summary": "A short summary.",
        "body": "Do the thing.",
    }
    base.update(fields)
    return Exercise.model_validate(base)


def ids(exercises: list[Exercise], similarities: dict[str, float], context: PatientContext) -> list[str]:
    return [item.exercise.id for item in rank(exercises, similarities, context).ranked]


CI = Contraindication


@pytest.mark.parametrize(
    ("exercise", "context", "reason"),
    [
        (make("sedated", contraindications=[CI.NOT_WHILE_SEDATED]), {"sedated": True}, "medicine"),
        (
            make("post-suds", contraindications=[CI.HIGH_POST_SESSION_SUDS], max_post_session_suds=40),
            {"current_suds": 55},
            "above this exercise's limit of 40",
        ),
        (
            make("companion", contraindications=[CI.NEEDS_COMPANION]),
            {"companion_available": False},
            "companion",
        ),
        (make("suicide", contraindications=[CI.ACTIVE_SUICIDE_RISK]), {"suicide_risk_open": True}, "suicide"),
        (
            make("drive", contraindications=[CI.NO_DRIVING_DOSING_DAY], timing=[ExerciseTiming.SAME_EVENING]),
            {"dosing_day": True},
            "driving",
        ),
        (
            make("alone", contraindications=[CI.NOT_ALONE_DOSING_DAY], timing=[ExerciseTiming.SAME_EVENING]),
            {"dosing_day": True},
            "going out alone",
        ),
        (make("intense", suds_min=70, suds_max=90), {"suds_ceiling": 60}, "ceiling of 60"),
        (make("hierarchy", contraindications=[CI.NEEDS_THERAPIST_HIERARCHY]), {}, "hierarchy"),
        (make("recent"), {"recently_assigned": ["recent"]}, "recent session"),
    ],
    ids=lambda value: value.id if isinstance(value, Exercise) else None,
)
def test_hard_filters(exercise: Exercise, context: dict[str, Any], reason: str) -> None:
    ranking = rank([exercise], {exercise.id: 0.9}, PatientContext(**context))
    assert ranking.ranked == []
    assert len(ranking.excluded) == 1
    assert any(reason in text for text in ranking.excluded[0].reasons), ranking.excluded[0].reasons


@pytest.mark.parametrize(
    ("exercise", "context"),
    [
        (make("sedated", contraindications=[CI.NOT_WHILE_SEDATED]), {"sedated": False}),
        (
            make("post-suds", contraindications=[CI.HIGH_POST_SESSION_SUDS], max_post_session_suds=40),
            {"current_suds": 40},
        ),
        (make("companion", contraindications=[CI.NEEDS_COMPANION]), {"companion_available": True}),
        (make("suicide", contraindications=[CI.ACTIVE_SUICIDE_RISK]), {"suicide_risk_open": False}),
        (
            make("drive", contraindications=[CI.NO_DRIVING_DOSING_DAY], timing=[ExerciseTiming.NEXT_DAYS]),
            {"dosing_day": True},
        ),
        (
            make(
                "drive2", contraindications=[CI.NO_DRIVING_DOSING_DAY], timing=[ExerciseTiming.SAME_EVENING]
            ),
            {},
        ),
        (make("intense", suds_min=60, suds_max=90), {"suds_ceiling": 60}),
        (
            make("hierarchy", contraindications=[CI.NEEDS_THERAPIST_HIERARCHY]),
            {"therapist_hierarchy_on_file": True},
        ),
        (make("recent"), {"recently_assigned": ["recent"], "allow_repeats": True}),
        (make("other"), {"recently_assigned": ["recent"]}),
    ],
    ids=lambda value: value.id if isinstance(value, Exercise) else None,
)
def test_allowed_when_the_condition_does_not_apply(exercise: Exercise, context: dict[str, Any]) -> None:
    ranking = rank([exercise], {exercise.id: 0.5}, PatientContext(**context))
    assert [item.exercise.id for item in ranking.ranked] == [exercise.id]
    assert ranking.excluded == []


def test_repeat_is_explained_when_allowed() -> None:
    context = PatientContext(recently_assigned=["again"], allow_repeats=True)
    item = rank([make("again")], {"again": 0.5}, context).ranked[0]
    assert any("repeated because repeats were asked for" in reason for reason in item.reasons)


def test_dosing_day_timing_notes() -> None:
    tonight = make("tonight", timing=[ExerciseTiming.SAME_EVENING])
    later = make("later", timing=[ExerciseTiming.NEXT_DAYS], contraindications=[CI.NO_DRIVING_DOSING_DAY])
    ranked = rank([tonight, later], {"tonight": 0.5, "later": 0.5}, PatientContext(dosing_day=True)).ranked
    notes = {item.exercise.id: " ".join(item.reasons) for item in ranked}
    assert "this evening" in notes["tonight"]
    assert "not for tonight" in notes["later"]


@pytest.mark.parametrize(
    ("current", "expected_order"),
    [
        # inside the range beats outside; far above the range falls below everything else
        (15, ["calm", "middle", "intense"]),
        (45, ["middle", "intense", "calm"]),
        (80, ["intense", "middle", "calm"]),
    ],
)
def test_suds_fit_orders_equally_similar_exercises(current: int, expected_order: list[str]) -> None:
    exercises = [
        make("calm", suds_min=0, suds_max=25),
        make("middle", suds_min=30, suds_max=55),
        make("intense", suds_min=50, suds_max=85),
    ]
    similarities = dict.fromkeys(("calm", "middle", "intense"), 0.5)
    assert ids(exercises, similarities, PatientContext(current_suds=current)) == expected_order


def test_suds_reasons_say_where_the_rating_falls() -> None:
    exercise = make("middle", suds_min=30, suds_max=55)
    above = rank([exercise], {"middle": 0.5}, PatientContext(current_suds=90)).ranked[0]
    inside = rank([exercise], {"middle": 0.5}, PatientContext(current_suds=40)).ranked[0]
    unknown = rank([exercise], {"middle": 0.5}, PatientContext()).ranked[0]
    assert above.suds_fit < 0 < inside.suds_fit
    assert any("above its range 30-55" in reason for reason in above.reasons)
    assert any("within its range 30-55" in reason for reason in inside.reasons)
    assert any("ask for a SUDS rating" in reason for reason in unknown.reasons)


def test_dimension_fit_prefers_the_clinicians_dimensions_then_general_skills() -> None:
    exercises = [
        make("contamination", dimensions=[Dimension.CONTAMINATION]),
        make("checking", dimensions=[Dimension.CHECKING]),
        make("defusion", dimensions=[Dimension.DEFUSION]),
    ]
    similarities = {"contamination": 0.50, "checking": 0.46, "defusion": 0.47}
    context = PatientContext(dimensions=[Dimension.CHECKING])
    assert ids(exercises, similarities, context) == ["checking", "defusion", "contamination"]
    ranked = {item.exercise.id: item for item in rank(exercises, similarities, context).ranked}
    assert any("clinician's focus: checking" in reason for reason in ranked["checking"].reasons)
    assert any("general skill" in reason for reason in ranked["defusion"].reasons)
    # With no dimensions on the protocol, only the similarity decides.
    assert ids(exercises, similarities, PatientContext()) == ["contamination", "defusion", "checking"]


def test_a_much_better_semantic_match_still_wins_over_dimension_fit() -> None:
    exercises = [make("on-topic", dimensions=[Dimension.SOMATIC]), make("in-protocol")]
    context = PatientContext(dimensions=[Dimension.CHECKING])
    assert ids(exercises, {"on-topic": 0.75, "in-protocol": 0.35}, context)[0] == "on-topic"


def test_reasons_report_the_similarity() -> None:
    strong = rank([make("aaa")], {"aaa": 0.61}, PatientContext()).ranked[0]
    weak = rank([make("aaa")], {"aaa": 0.12}, PatientContext()).ranked[0]
    assert strong.reasons[0] == "close to what was said (similarity 0.61)"
    assert weak.reasons[0].startswith("only a loose match")


def test_from_protocol_takes_dimensions_and_ceiling() -> None:
    protocol = Protocol(
        patient_id="p1",
        patient_name="Sam",
        clinic_name="Clinic",
        prescriber="Dr A",
        dose_text="as prescribed",
        formulation="troche",
        hold_minutes=10,
        after_hold="spit",
        bp_max_systolic=140,
        bp_max_diastolic=90,
        bp_emergency_systolic=180,
        bp_emergency_diastolic=120,
        fasting_hours=3,
        no_substances_hours=24,
        companion_name="Alex",
        on_call_hours="weekdays",
        on_call_contact="555",
        min_peak_minutes=60,
        checkin_interval_minutes=15,
        dimensions=[Dimension.CONTAMINATION],
        suds_ceiling=50,
    )
    context = PatientContext.from_protocol(protocol, current_suds=30, companion_available=True)
    assert context.dimensions == [Dimension.CONTAMINATION]
    assert context.suds_ceiling == 50 and context.current_suds == 30 and context.companion_available


def test_context_rejects_unknown_fields_and_bad_suds() -> None:
    with pytest.raises(ValueError):
        PatientContext(current_suds=130)
    with pytest.raises(ValueError):
        PatientContext(companion=True)  # type: ignore[call-arg]


def test_recommend_over_the_real_store(tmp_path: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(FIXTURES, library)
    index = ExerciseIndex.open(Settings(home=tmp_path / "home", chroma_mode="persistent"), library)
    said = "I spent the afternoon re-washing my hands after touching the bin"
    context = PatientContext(dimensions=[Dimension.CONTAMINATION], current_suds=35)
    top = recommend(said, context, k=2, index=index)
    assert top[0].exercise.id == "fixture-bin-touch"
    assert len(top) == 2 and top[0].score > top[1].score
    assert any("clinician's focus: contamination" in reason for reason in top[0].reasons)

    still_sedated = context.model_copy(update={"sedated": True})
    assert "fixture-bin-touch" not in [
        item.exercise.id for item in recommend(said, still_sedated, index=index)
    ]
    too_distressed = context.model_copy(update={"current_suds": 75})
    assert "fixture-bin-touch" not in [
        item.exercise.id for item in recommend(said, too_distressed, index=index)
    ]
    assigned = context.model_copy(update={"recently_assigned": ["fixture-bin-touch"]})
    assert "fixture-bin-touch" not in [item.exercise.id for item in recommend(said, assigned, index=index)]
    assert recommend(said, context, k=0, index=index) == []
    # Nothing said yet: dimension and SUDS fit alone decide.
    opening = recommend("", context, k=3, index=index)
    assert opening[0].exercise.id == "fixture-bin-touch" and opening[0].similarity == 0.0
