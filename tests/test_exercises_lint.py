"""The exercise loader and lint: the shipped library is clean, and every kind of bad file gives
exactly one clear problem (never an exception)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ketai.content.exercises import lint_library, load_library, parse_exercise_file, split_front_matter
from ketai.errors import ContentError
from ketai.models import Dimension, ExerciseKind

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"

GOOD = """---
id: {id}
title: Delay the door re-check
dimensions: [checking]
kind: ritual_delay
suds_min: 20
suds_max: 60
duration_minutes: 15
timing: [same_evening]
companion_role: none
rationale: Delaying a check weakens the link between doubt and checking.
summary: Set a ten-minute timer before any re-check of the door.
---
Notice the urge and start the timer.
"""

EXPOSURE = """---
id: {id}
title: Touch the doorknob and wait
dimensions: [contamination]
kind: exposure_planning
suds_min: 20
suds_max: 60
duration_minutes: 15
timing: [next_days]
companion_role: none
rationale: Tests the prediction that touching a doorknob leads to illness.
summary: Touch a doorknob and wait thirty minutes before washing.
feared_outcome: I will get ill.
expectancy_prompt: How likely, 0-100, is it that you get ill?
safety_behaviours_to_drop: [sanitiser]
contexts: [front door, office door]
---
{body}
"""


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_shipped_library_is_clean_and_covers_every_dimension_and_kind() -> None:
    result = lint_library()
    assert [problem.render() for problem in result.problems] == []
    assert len(result.exercises) >= 80
    dimensions = {dimension for exercise in result.exercises for dimension in exercise.dimensions}
    kinds = {exercise.kind for exercise in result.exercises}
    assert set(Dimension) - dimensions == set()
    assert set(ExerciseKind) - kinds == set()


def test_fixture_library_loads() -> None:
    ids = sorted(exercise.id for exercise in load_library(FIXTURES))
    assert ids == ["fixture-bin-touch", "fixture-door-delay", "fixture-thought-label"]


@pytest.mark.parametrize(
    ("content", "field", "reason"),
    [
        (GOOD.format(id="bad-file").replace("title: Delay the door re-check\n", ""), "title", "required"),
        (GOOD.format(id="bad-file").replace("kind: ritual_delay", "kind: flying"), "kind", "flying"),
        (GOOD.format(id="bad-file").replace("suds_max: 60", "suds_max: 160"), "suds_max", "100"),
        (
            GOOD.format(id="bad-file").replace("dimensions: [checking]", "dimensions: [checking"),
            "front_matter",
            "YAML",
        ),
        (GOOD.format(id="bad-file").replace("timing:", "timings:"), "timing", "required"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "file", "UTF-8"),
        (b"---\nid: bad-file\x00\x00\n---\n", "file", "NUL"),
        ("# Just a heading\n\nNo front matter here.\n", "front_matter", "---"),
        ("---\n- a list\n- not a mapping\n---\nbody\n", "front_matter", "mapping"),
        (GOOD.format(id="bad-file").replace("---\nNotice", "body: inline\n---\nNotice"), "body", "Markdown"),
    ],
    ids=[
        "missing-field",
        "bad-enum",
        "out-of-range",
        "bad-yaml",
        "misspelt-field",
        "binary-garbage",
        "nul-bytes",
        "no-front-matter",
        "not-a-mapping",
        "body-in-front-matter",
    ],
)
def test_bad_file_gives_one_clear_problem(
    tmp_path: Path, content: str | bytes, field: str, reason: str
) -> None:
    path = write(tmp_path, "bad-file.md", content)
    exercise, problems = parse_exercise_file(path)
    assert exercise is None
    if field == "timing":  # a misspelt field is reported twice: unknown name, and the missing real one
        assert {problem.field for problem in problems} == {"timing", "timings"}
        return
    assert len(problems) == 1, problems
    assert problems[0].field == field
    assert reason in problems[0].reason
    assert problems[0].file.endswith("bad-file.md")


@pytest.mark.parametrize(
    ("name", "content", "fields", "reason"),
    [
        ("other-name.md", GOOD.format(id="door-delay"), ["id"], "file name"),
        (
            "door-delay.md",
            GOOD.format(id="door-delay").replace("suds_min: 20", "suds_min: 70"),
            ["suds_min"],
            "above",
        ),
        (
            "door-delay.md",
            GOOD.format(id="door-delay").replace(
                "companion_role: none", "companion_role: none\ncontraindications: [high_post_session_suds]"
            ),
            ["max_post_session_suds"],
            "required",
        ),
        (
            "knob.md",
            EXPOSURE.format(id="knob", body="Touch it.").replace("feared_outcome: I will get ill.\n", ""),
            ["feared_outcome"],
            "feared outcome",
        ),
        (
            "knob.md",
            EXPOSURE.format(id="knob", body="Touch it.")
            .replace("safety_behaviours_to_drop: [sanitiser]\n", "")
            .replace("contexts: [front door, office door]\n", ""),
            ["safety_behaviours_to_drop", "contexts"],
            "must list",
        ),
        ("knob.md", EXPOSURE.format(id="knob", body="Touch it, it's safe."), ["body"], "reassurance"),
        ("knob.md", EXPOSURE.format(id="knob", body="Do this and you will be cured."), ["body"], "cure"),
        (
            "knob.md",
            EXPOSURE.format(id="knob", body="Use the learning window after ketamine to practise."),
            ["body"],
            "hypothesis",
        ),
        ("knob.md", EXPOSURE.format(id="knob", body=""), ["body"], "empty"),
    ],
    ids=[
        "id-not-file-name",
        "suds-min-above-max",
        "post-session-limit-missing",
        "exposure-without-feared-outcome",
        "exposure-without-safety-behaviours-and-contexts",
        "reassurance",
        "cure-promise",
        "window-not-hypothesis",
        "empty-body",
    ],
)
def test_clinical_rules(tmp_path: Path, name: str, content: str, fields: list[str], reason: str) -> None:
    path = write(tmp_path, name, content)
    _, problems = parse_exercise_file(path)
    assert [problem.field for problem in problems] == fields
    assert all(reason in problem.reason for problem in problems)


@pytest.mark.parametrize(
    "body",
    [
        "Touch the window sill, then your face.",
        "Some people call the days after a session a learning window; that is a hypothesis, not a fact.",
        "The aim is not to feel calm or certain: let the doubt stay.",
    ],
)
def test_allowed_wording(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, "knob.md", EXPOSURE.format(id="knob", body=body))
    exercise, problems = parse_exercise_file(path)
    assert problems == []
    assert exercise is not None and exercise.body == body


def test_library_reports_every_problem_and_duplicate_ids(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "lib")
    library = tmp_path / "lib"
    (library / "fixture-door-delay.md").write_text(
        (library / "fixture-door-delay.md").read_text().replace("kind: ritual_delay", "kind: nope")
    )
    write(library, "copy.md", (library / "fixture-bin-touch.md").read_text())
    write(library, "README.md", "not an exercise")
    result = lint_library(library)
    assert result.files == 4
    assert sorted(exercise.id for exercise in result.exercises) == [
        "fixture-bin-touch",
        "fixture-thought-label",
    ]
    rendered = sorted(problem.render() for problem in result.problems)
    assert len(rendered) == 3, rendered
    assert any("copy.md: id: duplicate id 'fixture-bin-touch'" in line for line in rendered)
    assert any(
        "copy.md: id: id 'fixture-bin-touch' must equal the file name 'copy'" in line for line in rendered
    )
    assert any(line.startswith("fixture-door-delay.md: kind:") for line in rendered)
    with pytest.raises(ContentError, match="3 problem"):
        load_library(library)


def test_split_front_matter() -> None:
    assert split_front_matter("---\na: 1\n---\n\nbody\n") == ("a: 1\n", "body")
    assert split_front_matter("\ufeff---\na: 1\n---\n") == ("a: 1\n", "")
    assert split_front_matter("---\na: 1\n") is None
    assert split_front_matter("a: 1\n") is None
