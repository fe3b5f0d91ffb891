"""Train the output-policy classifier: ``python -m ketai.guardrails.train_output``.

Reads only the training drafts (``evals/guardrails/outputs_train.jsonl`` and ``outputs_train_extra_<writer>.jsonl``)
and our scripted prompts. Reproducible (fixed seed, liblinear). Thresholds come from
out-of-writer probabilities (each drafted-reply writer scored by a model fitted without them), maximising F-beta
(beta 1.5: an unsafe draft that slips through is worse than a safe one replaced by clinician text), never below a
floor; the final weights are fitted on all rows. Test files are never read.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from ketai.content.paths import content_dir
from ketai.embeddings import MODEL_ID, shared_embedder
from ketai.guardrails import text as textmod
from ketai.guardrails.classifier import PHASE_KEYS, data_sha256
from ketai.guardrails.loader import load_content
from ketai.guardrails.output_classifier import (
    CRISIS_ANSWER,
    LEVEL_KEYS,
    OUTPUT_ARTIFACT_NAME,
    OUTPUT_RULES,
    DraftFeatures,
    draft_vectors,
    output_context,
)
from ketai.guardrails.output_policy import MISSING_CRISIS_TEXT
from ketai.guardrails.train import f_beta, fit, probabilities, read_rows
from ketai.models import EscalationLevel, Phase

SEED = 20261127
C = 4.0
BETA = 1.5
FLOOR = 0.5
"""No threshold below this (a sanity floor: thresholds come from out-of-writer scores)."""
FEATURES: DraftFeatures = "embedding"
UNKNOWN = "unknown"
"""``assessment_level`` of a training copy read with the level unknown."""
GRID = tuple(round(x, 2) for x in np.arange(0.3, 0.91, 0.05))


SCRIPTED_FOLDER = "scripted"
SCRIPTED_REPEATS = 3
"""Our own session prompts count three times: a replaced scripted prompt breaks the session flow, and the drafts
written to train the policy outnumber them."""
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for value in node.values() for t in _strings(value)]
    if isinstance(node, list):
        return [t for value in node for t in _strings(value)]
    return []


EXAMPLE_VALUES = {
    "bp_max_diastolic": "90", "bp_max_systolic": "140", "checkin_interval_minutes": "15", "diastolic": "82",
    "systolic": "128", "dose_text": "one 100 mg troche", "emergency_number": "911", "fasting_hours": "4",
    "hold_minutes": "15", "hold_remaining": "5 min 10 s", "no_substances_hours": "24", "on_call_hours": "24",
    "formulation": "troche", "on_call_contact": "the on-call nurse", "clinic_name": "the clinic",
    "prescriber": "Dr Lee", "exercise_list": "1. Noticing the urge", "exercise_title": "Noticing the urge",
    "intention": "to let doubt be there",
}  # fmt: skip
"""Realistic values for the scripted prompts' placeholders (names default to Sam), so the classifier learns
the sentences KetAI really sends ("Keep it in your mouth for 15 minutes"), not "for Sam minutes"."""


def _example_value(match: re.Match[str]) -> str:
    return EXAMPLE_VALUES.get(match.group(0)[1:-1], "Sam")


def scripted_rows(folder: Path) -> list[dict[str, Any]]:
    """Our own clinician-written session prompts as drafts that must pass (placeholders filled neutrally).

    The checklist's own questions ("any alcohol or sleeping pills in the last 24 hours?") share words with
    unsafe drafts; without these the classifier learns to replace the session's own script."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        phase = path.stem if path.stem in {p.value for p in Phase} else None
        for text in _strings(data.get("steps", {})):
            filled = _PLACEHOLDER.sub(_example_value, text).strip()
            if len(filled.split()) >= 3:
                rows.append({"text": filled, "phase": phase, "assessment_level": "none", "expected": "pass"})
    return rows


def training_files(folder: Path) -> list[Path]:
    """The drafts we train on: the first file and one file per later writer (never a test or unseen file)."""
    return [folder / "outputs_train.jsonl", *sorted(folder.glob("outputs_train_extra_*.jsonl"))]


def read_drafts(path: Path) -> list[dict[str, Any]]:
    """One writer's drafts. A line in the ``ketai screen`` contract format has no ``assessment_level``: its label
    was given from the draft alone, so it is read with the level unknown, never as level none."""
    return [r if "assessment_level" in r else {**r, "assessment_level": UNKNOWN} for r in read_rows(path)]


def unknown_level_copies(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of every draft with its level unknown (``ketai screen`` lines carry none), except those whose only
    fault is missing crisis text: no draft text shows that, the rule on what the draft says decides it. Drafts
    already read without a level are not copied."""
    return [
        {**r, "assessment_level": UNKNOWN}
        for r in rows
        if r.get("rule") != MISSING_CRISIS_TEXT and r.get("assessment_level") != UNKNOWN
    ]


@functools.cache
def _crisis_line_check() -> Callable[[str], bool]:
    from ketai.guardrails import build_guardrails

    return build_guardrails(use_classifier=False).output_policy.has_crisis_resources


def names_crisis_line(text: str) -> bool:
    """Whether a draft names a crisis line, by the output policy's own check (the locale's verified numbers,
    "9-8-8" as well as "988", and the crisis text line). Training asks the question the runtime gate asks, so
    the column's labels and the gate that reads it cannot disagree."""
    return _crisis_line_check()(text)


def crisis_answer_targets(rows: list[dict[str, Any]]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """The ``crisis_answer`` column: a draft answers a crisis when it names a crisis line (988, 911 or the
    text line, by the policy's own check), or when it was labelled
    ``missing_crisis_text`` from the draft alone (a contract-format line, read with the level unknown). Drafts
    labelled so only because of the level of the message they answered are not used for this column (their text
    does not show it): the second array says which rows are."""
    missing = [r.get("rule") == MISSING_CRISIS_TEXT for r in rows]
    usable = np.array(
        [not (m and r.get("assessment_level") != UNKNOWN) for r, m in zip(rows, missing, strict=True)]
    )
    target = np.array(
        [1 if m or names_crisis_line(r["text"]) else 0 for r, m in zip(rows, missing, strict=True)],
        dtype=np.int8,
    )
    return target * usable.astype(np.int8), usable


def featurise(rows: list[dict[str, Any]], kind: DraftFeatures = "embedding") -> npt.NDArray[np.float32]:
    substitutions = textmod.Substitutions.build(load_content().normalise.substitutions)
    texts = [textmod.normalise(r["text"], substitutions) for r in rows]
    # The unknown-level copies repeat their drafts' texts: embed each distinct text once.
    distinct = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(distinct)}
    vectors = draft_vectors(shared_embedder(), distinct, kind)[[position[t] for t in texts]]
    contexts = [
        output_context(
            Phase(r["phase"]) if r.get("phase") else None,
            None
            if r.get("assessment_level") == UNKNOWN
            else EscalationLevel(r.get("assessment_level") or "none"),
        )
        for r in rows
    ]
    return np.hstack([vectors, np.vstack(contexts)]).astype(np.float32)


def writer_of(row: dict[str, Any]) -> str:
    """Drafted-reply writer: the id prefix ("o4-0012" -> "o4"); our scripted prompts form one group."""
    return str(row.get("id") or "scripted").split("-", 1)[0]


def out_of_writer(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], writers: list[str], c: float
) -> npt.NDArray[np.float64]:
    """Each writer's drafts scored by a model fitted without that writer (thresholds then meet new phrasing,
    as they will with a new LLM)."""
    groups = np.array(writers)
    probs = np.zeros(y.shape, dtype=np.float64)
    for writer in sorted(set(writers)):
        held = groups == writer
        weights, intercepts = fit(x[~held], y[~held], c)
        probs[held] = probabilities(x[held], weights, intercepts)
    return probs


def best_threshold(
    scores: npt.NDArray[np.float64], target: npt.NDArray[np.int8], beta: float
) -> tuple[float, float]:
    """The grid bar (at least ``FLOOR``) with the highest F-beta of out-of-writer ``scores``, and that F-beta."""
    best = (0.0, 1.01)
    for t in GRID:
        if t < FLOOR:
            continue
        predicted = (scores >= t).astype(np.int8)
        score = f_beta(
            int((predicted & target).sum()),
            int((predicted & (1 - target)).sum()),
            int(((1 - predicted) & target).sum()),
            beta,
        )
        if score > best[0] + 1e-9:
            best = (score, float(t))
    return best[1], best[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, nargs="+", default=training_files(content_dir("evals") / "guardrails")
    )
    parser.add_argument(
        "--features",
        choices=("embedding", "state"),
        default=FEATURES,
        help="draft vector: the full sentence embedding or the pooled layer-3 state",
    )
    parser.add_argument(
        "--out", type=Path, default=content_dir("guardrails") / "classifier" / OUTPUT_ARTIFACT_NAME
    )
    parser.add_argument(
        "--known-level-only",
        action="store_true",
        help="no unknown-level copies (the artifact then reads a draft without assessment at level none)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=BETA,
        help="F-beta the thresholds maximise out of writer (higher weighs a missed unsafe draft more)",
    )
    args = parser.parse_args(argv)
    scripted = content_dir("prompts") / SCRIPTED_FOLDER
    rows = [row for path in args.data for row in read_drafts(path)] + scripted_rows(
        scripted
    ) * SCRIPTED_REPEATS
    if not args.known_level_only:
        rows += unknown_level_copies(rows)
    labels = list(OUTPUT_RULES)
    x = featurise(rows, args.features)
    y = np.array(
        [[1 if r.get("expected") == "replace" and r.get("rule") == k else 0 for k in labels] for r in rows],
        dtype=np.int8,
    )
    oof = out_of_writer(x, y, [writer_of(r) for r in rows], C)
    thresholds: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for j, label in enumerate(labels):
        bar, score = best_threshold(oof[:, j], y[:, j], args.beta)
        thresholds[label], metrics[f"out_of_writer_f{args.beta}_{label}"] = bar, round(score, 4)
    weights, intercepts = fit(x, y, C)
    answer, usable = crisis_answer_targets(rows)
    writers = [writer_of(r) for r, u in zip(rows, usable, strict=True) if u]
    answer_oof = out_of_writer(x[usable], answer[usable][:, None], writers, C)[:, 0]
    # The column only matters for drafts that name no crisis line: its bar is chosen on those alone.
    unnumbered = np.array([not names_crisis_line(r["text"]) for r, u in zip(rows, usable, strict=True) if u])
    bar, score = best_threshold(answer_oof[unnumbered], answer[usable][unnumbered], args.beta)
    answer_weights, answer_intercepts = fit(x[usable], answer[usable][:, None], C)
    labels.append(CRISIS_ANSWER)
    weights += answer_weights
    intercepts += answer_intercepts
    thresholds[CRISIS_ANSWER] = bar
    metrics[f"out_of_writer_f{args.beta}_{CRISIS_ANSWER}_unnumbered"] = round(score, 4)
    artifact = {
        "id": "output-classifier",
        "version": 1,
        "reviewed_by": "pending-clinician-review",
        "embedding_model": MODEL_ID,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "data_files": {path.name: data_sha256(path) for path in args.data}
        | {f"prompts/{SCRIPTED_FOLDER}/{p.name}": data_sha256(p) for p in sorted(scripted.glob("*.yaml"))},
        "phase_keys": list(PHASE_KEYS),
        "level_keys": list(LEVEL_KEYS),
        "labels": labels,
        "weights": [[round(v, 6) for v in row] for row in weights],
        "intercepts": [round(v, 6) for v in intercepts],
        "thresholds": thresholds,
        "c": C,
        "beta": args.beta,
        "features": args.features,
        "unknown_level": not args.known_level_only,
        "metrics": metrics,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}; thresholds: " + ", ".join(f"{k}={v}" for k, v in thresholds.items()))
    print("out of writer: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
