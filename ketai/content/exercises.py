"""Load and lint the integration-exercise library (``integration_exercises/<id>.md``).

Each file is YAML front matter holding the :class:`~ketai.models.Exercise` fields, then a Markdown
body (the patient-facing instructions). Linting never raises for a bad file: every problem becomes
one :class:`LintProblem` naming the file, the field and a plain reason, so a clinician editing the
folder sees everything wrong at once.

Beyond the pydantic schema, the lint enforces the clinical rules of DOMAIN.md §3:

* exposure kinds carry the inhibitory-learning fields (feared outcome, expectancy prompt,
  safety behaviours to drop, contexts to vary);
* ``high_post_session_suds`` comes with the ``max_post_session_suds`` it refers to;
* no reassurance or efficacy promises ("it's safe", "you will be cured"), and any talk of a
  post-ketamine "window" is labelled a hypothesis.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ketai.content.paths import content_dir
from ketai.errors import ContentError
from ketai.models import EXPOSURE_KINDS, Contraindication, Exercise

EXERCISE_SUFFIX = ".md"
_FRONT_MATTER_FENCE = "---"
_SKIPPED_NAMES = frozenset({"readme.md", "index.md"})
# libyaml's safe loader parses the library ~5x faster than the pure-Python one; same results.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Phrases that reassure, promise outcomes or neutralise doubt: never in exercise text.
FORBIDDEN_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bit(?:'|’)?s\s+safe\b|\bit\s+is\s+safe\b", re.I), "reassurance ('it's safe')"),
    (re.compile(r"\bnothing\s+bad\s+will\s+happen\b", re.I), "reassurance ('nothing bad will happen')"),
    (re.compile(r"\byou\s+will\s+be\s+cured\b|\bwill\s+cure\s+(?:you|your)\b", re.I), "promise of a cure"),
    (re.compile(r"\bguarantee(?:d|s)?\b", re.I), "promise of an outcome ('guarantee')"),
    (re.compile(r"\bketamine\s+will\s+(?:work|fix|heal|cure)\b", re.I), "claim that ketamine will work"),
)
# "Window" talk about brain plasticity after ketamine must say it is a hypothesis (DOMAIN.md §3.4);
# an ordinary window (touch the window sill) is fine.
_WINDOW = re.compile(r"\bwindows?\b", re.I)
_WINDOW_CONTEXT = re.compile(r"plastic|learning|ketamine|brain|opportunit|critical|primed|rewir", re.I)
_HYPOTHESIS = re.compile(r"hypothes", re.I)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n{2,}")


class LintProblem(BaseModel):
    """One thing wrong with one exercise file."""

    file: str
    """Path of the file as found (its name is enough to open it)."""
    field: str
    """Front-matter field (dotted for nested items), ``front_matter``, ``body`` or ``file``."""
    reason: str
    """Plain words a content author can act on."""

    def render(self) -> str:
        return f"{Path(self.file).name}: {self.field}: {self.reason}"


class LibraryLint(BaseModel):
    """Everything found in one exercise folder: the valid exercises and the problems."""

    directory: str
    files: int
    exercises: list[Exercise]
    problems: list[LintProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def default_library_dir() -> Path:
    """The shipped ``integration_exercises`` folder (checkout or wheel)."""
    return content_dir("integration_exercises")


def exercise_files(directory: Path) -> list[Path]:
    """Exercise files in ``directory``, sorted by name (README/index and hidden files skipped)."""
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file()
        and path.suffix == EXERCISE_SUFFIX
        and not path.name.startswith((".", "_"))
        and path.name.lower() not in _SKIPPED_NAMES
    )


def split_front_matter(text: str) -> tuple[str, str] | None:
    """``(front_matter_yaml, body)``, or None when the text does not open with a ``---`` block."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != _FRONT_MATTER_FENCE:
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == _FRONT_MATTER_FENCE:
            return "".join(lines[1:index]), "".join(lines[index + 1 :]).strip()
    return None


def parse_exercise_file(path: Path) -> tuple[Exercise | None, list[LintProblem]]:
    """Parse and check one file: ``(exercise, [])`` when good, ``(None or exercise, problems)`` otherwise."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [LintProblem(file=name, field="file", reason=f"cannot read the file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [
            LintProblem(file=name, field="file", reason="not UTF-8 text (binary or wrong encoding)")
        ]
    if "\x00" in text:
        return None, [
            LintProblem(file=name, field="file", reason="contains NUL bytes (binary, not Markdown)")
        ]
    parts = split_front_matter(text)
    if parts is None:
        return None, [
            LintProblem(
                file=name,
                field="front_matter",
                reason="the file must start with a '---' line, YAML fields, then a closing '---' line",
            )
        ]
    front_text, body = parts
    try:
        front = yaml.load(front_text, Loader=_YAML_LOADER)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""  # +1 for 0-based, +1 for the fence
        problem = getattr(exc, "problem", None) or "unreadable YAML"
        return None, [LintProblem(file=name, field="front_matter", reason=f"invalid YAML{where}: {problem}")]
    if not isinstance(front, dict):
        return None, [
            LintProblem(
                file=name, field="front_matter", reason="front matter must be a mapping of field: value"
            )
        ]
    if "body" in front:
        return None, [
            LintProblem(file=name, field="body", reason="write the body as Markdown after the front matter")
        ]
    try:
        exercise = Exercise.model_validate({**front, "body": body})
    except ValidationError as exc:
        return None, [_problem_from_error(name, error) for error in exc.errors()]
    return exercise, clinical_problems(exercise, path)


def _problem_from_error(file: str, error: Any) -> LintProblem:
    field = ".".join(str(part) for part in error.get("loc", ())) or "front_matter"
    kind = error.get("type", "")
    if kind == "missing":
        reason = "required field is missing"
    elif kind == "extra_forbidden":
        reason = "unknown field (check the spelling against the Exercise fields)"
    else:
        reason = str(error.get("msg", "invalid value"))
        if "input" in error and kind not in {"string_too_long"}:
            reason += f" (got {error['input']!r:.60})"
    return LintProblem(file=file, field=field, reason=reason)


def clinical_problems(exercise: Exercise, path: Path) -> list[LintProblem]:
    """The rules the schema cannot express (see the module docstring)."""
    name = str(path)
    problems: list[LintProblem] = []

    def add(field: str, reason: str) -> None:
        problems.append(LintProblem(file=name, field=field, reason=reason))

    if exercise.id != path.stem:
        add("id", f"id {exercise.id!r} must equal the file name {path.stem!r}")
    if exercise.suds_min > exercise.suds_max:
        add("suds_min", f"suds_min {exercise.suds_min} is above suds_max {exercise.suds_max}")
    if exercise.kind in EXPOSURE_KINDS:
        if not (exercise.feared_outcome or "").strip():
            add("feared_outcome", f"{exercise.kind.value} exercises must name the feared outcome to test")
        if not (exercise.expectancy_prompt or "").strip():
            add("expectancy_prompt", f"{exercise.kind.value} exercises must ask for the expectancy (0-100)")
        if not exercise.safety_behaviours_to_drop:
            add("safety_behaviours_to_drop", f"{exercise.kind.value} exercises must list safety behaviours")
        if not exercise.contexts:
            add("contexts", f"{exercise.kind.value} exercises must list contexts or variants to vary")
    if (
        Contraindication.HIGH_POST_SESSION_SUDS in exercise.contraindications
        and exercise.max_post_session_suds is None
    ):
        add("max_post_session_suds", "required when contraindications include high_post_session_suds")
    if not exercise.body.strip():
        add("body", "the Markdown body (patient instructions) is empty")
    for field, text in _text_fields(exercise):
        for pattern, label in FORBIDDEN_PHRASES:
            match = pattern.search(text)
            if match:
                add(field, f"forbidden phrase {match.group(0)!r}: {label}")
        for sentence in _SENTENCE_SPLIT.split(text):
            if _WINDOW.search(sentence) and _WINDOW_CONTEXT.search(sentence) and not _HYPOTHESIS.search(text):
                add(field, "talks about a post-ketamine 'window' without calling it a hypothesis")
                break
    return problems


def _text_fields(exercise: Exercise) -> Iterable[tuple[str, str]]:
    for field in (
        "title",
        "summary",
        "rationale",
        "companion_role",
        "feared_outcome",
        "expectancy_prompt",
        "retrieval_cue",
        "body",
    ):
        value = getattr(exercise, field)
        if value:
            yield field, str(value)
    for field in ("keywords", "safety_behaviours_to_drop", "contexts"):
        for index, item in enumerate(getattr(exercise, field)):
            yield f"{field}.{index}", item


def lint_library(directory: Path | None = None) -> LibraryLint:
    """Parse every exercise file in ``directory`` (default: the shipped library); never raises for content."""
    folder = directory or default_library_dir()
    if not folder.is_dir():
        raise ContentError(f"exercise folder not found: {folder}")
    files = exercise_files(folder)
    parsed = [(path, *parse_exercise_file(path)) for path in files]
    exercises: list[Exercise] = []
    problems: list[LintProblem] = []
    # A clean file owns its id (it equals the file name); any other file using that id is a duplicate.
    owner = {exercise.id: path.name for path, exercise, found in parsed if exercise is not None and not found}
    for path, exercise, found in parsed:
        problems.extend(found)
        if exercise is None:
            continue
        if found:
            if exercise.id in owner:
                problems.append(
                    LintProblem(
                        file=str(path),
                        field="id",
                        reason=f"duplicate id {exercise.id!r} (already used by {owner[exercise.id]})",
                    )
                )
            continue
        exercises.append(exercise)
    return LibraryLint(directory=str(folder), files=len(files), exercises=exercises, problems=problems)


def load_library(directory: Path | None = None) -> list[Exercise]:
    """Valid exercises of a library; raises ContentError (listing every problem) if any file is bad."""
    result = lint_library(directory)
    if result.problems:
        listed = "; ".join(problem.render() for problem in result.problems[:10])
        more = f" (and {len(result.problems) - 10} more)" if len(result.problems) > 10 else ""
        raise ContentError(
            f"{len(result.problems)} problem(s) in {result.directory}: {listed}{more}. "
            "Run `ketai exercises lint` for the full list."
        )
    return result.exercises


def content_hash(exercise: Exercise, salt: str = "") -> str:
    """Stable digest of everything an index stores about ``exercise`` (``salt``: index format/model id)."""
    digest = hashlib.sha256()
    digest.update(salt.encode("utf-8"))
    digest.update(exercise.model_dump_json().encode("utf-8"))
    return digest.hexdigest()[:32]
